/* finding_export.h - what the exports read (drift --format ocsf, export securityhub): the open
 * findings of the fleet (current_drift) and, when asked, those resolved since a given time. */
#ifndef EGRESSSCAN_FINDING_EXPORT_H
#define EGRESSSCAN_FINDING_EXPORT_H

#include "common/err.h"
#include "common/finding_record.h"

struct db;

/* Called once per finding; the record is valid during the call only. Nonzero stops the read. */
typedef int (*db_record_fn)(void *ud, const struct finding_record *r);

/* The open findings of the fleet (current_drift: each with the scan that last confirmed it),
 * then, when resolved_since is not NULL (an ISO 8601 time PostgreSQL accepts), the findings
 * resolved at or after it by a scan that counts (not failed or aborted) and not open again under
 * the same id. Open ones first, each group by severity, kind, account, region, cluster, id.
 * *scan_used (may be NULL) gets the latest finalized scan. No finalized scan at all is code
 * "NoScan"; a resolved_since PostgreSQL cannot read is the SQLSTATE 22007/22008. */
int db_export_findings(struct db *db, const char *resolved_since, long long *scan_used,
                       db_record_fn cb, void *ud, struct err *err);

#endif
