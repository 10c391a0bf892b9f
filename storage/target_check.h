/* target_check.h - what the writer checks in a target result before staging it (storage's own
 * boundary check of SPEC section 4). Internal to storage/; no libpq, so that tests/fuzz links it
 * alone. */
#ifndef EGRESSSCAN_TARGET_CHECK_H
#define EGRESSSCAN_TARGET_CHECK_H

#include "common/err.h"
#include "common/model.h"

/* Checks one target result: account and region well formed, a known status and a scan time
 * (ERR_INVALID: a defect of the caller, the batch is refused), and, for what came from AWS
 * (ERR_PARSE: that target alone is recorded as rejected), error text valid UTF-8, every cluster
 * named by AWS's rules with the ARN arn:<partition>:eks:<region>:<account>:cluster/<name> of its
 * own target, text fields valid UTF-8 and bounded, created_at epoch seconds or ISO 8601.
 * 0, or -1 with err. */
int db_target_check(const struct target_result *t, struct err *err);

#endif
