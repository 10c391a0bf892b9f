/* securityhub.h - AWS Security Hub: findings in the AWS Security Finding Format (ASFF) and
 * BatchImportFindings (restJson1, POST /findings/import, at most 100 findings a call) on the
 * project's HTTP engine (SigV4, retries, endpoint overrides). */
#ifndef EGRESSSCAN_SECURITYHUB_H
#define EGRESSSCAN_SECURITYHUB_H

#include <stddef.h>

#include "common/err.h"
#include "common/finding_record.h"

struct http_engine;
struct aws_credentials;

#define SECURITYHUB_BATCH_MAX 100 /* findings per BatchImportFindings call (the API's limit) */
#define SECURITYHUB_FAILURES_KEPT 20

/* Where the findings go: the importing account (the caller's, whose `default` product receives
 * them) and the Security Hub region. */
struct asff_context {
    const char *account_id; /* 12 digits */
    const char *region;
};

/* "arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default". -1 with err (InvalidInput)
 * on a malformed account id or region. */
int securityhub_product_arn(const struct asff_context *ctx, char *out, size_t cap, struct err *err);

/* The ASFF finding of r as a new jansson object (void *: the header stays free of jansson),
 * NULL on out of memory or a bad context. Id = FINDING_UID_PREFIX + finding id (so a second
 * import updates, never duplicates); AwsAccountId = the importing account (with the default
 * product ARN AWS accepts only findings of the calling account); the finding's own account and
 * region are in the resource (the cluster's ARN, or AWS::::Account:ID) and in ProductFields. Open:
 * RecordState ACTIVE, Compliance FAILED (WARNING for an unscanned target); resolved: ARCHIVED,
 * PASSED, Workflow RESOLVED. Title, Description and Remediation text cut to ASFF's limits (256,
 * 1024, 512 bytes) on character boundaries. */
void *asff_finding(const struct finding_record *r, const struct asff_context *ctx);

/* One answer of BatchImportFindings, added up over the calls of an export. */
struct securityhub_failure {
    char id[160];
    char code[64];
    char message[256];
};

struct securityhub_result {
    long calls;    /* BatchImportFindings calls answered 2xx */
    long success;  /* SuccessCount */
    long failed;   /* FailedCount */
    size_t n_kept; /* failures[0..n_kept): the first ones */
    struct securityhub_failure failures[SECURITYHUB_FAILURES_KEPT];
};

/* Parses a BatchImportFindings answer for a call that sent `sent` findings into res (adding to
 * it). -1 with err (MalformedResponse) when it is not the expected document or its counts do
 * not add up to sent. */
int securityhub_parse_import_answer(const char *body, size_t len, size_t sent,
                                    struct securityhub_result *res, struct err *err);

/* Sends the findings (a jansson array of ASFF objects, 1..SECURITYHUB_BATCH_MAX; borrowed) to
 * BatchImportFindings in region, signed with creds, and adds the answer to res. Blocking (runs
 * the engine). -1 with err (the AWS error after the engine's retries, or a malformed answer). */
int securityhub_batch_import(struct http_engine *engine, struct aws_credentials *creds,
                             const char *region, const void *findings,
                             struct securityhub_result *res, struct err *err);

#endif
