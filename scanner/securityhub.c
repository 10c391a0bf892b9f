/* securityhub.c - findings to AWS Security Hub: the ASFF document of a finding and
 * BatchImportFindings (restJson1 POST /findings/import on securityhub.REGION.amazonaws.com, or
 * AWS_ENDPOINT_URL_SECURITYHUB / AWS_ENDPOINT_URL), its answer checked (counts, FailedFindings). */
#include "scanner/securityhub.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/jsonutil.h"
#include "common/utf8.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"

#define ASFF_SCHEMA_VERSION "2018-10-08"
#define ASFF_TYPE                                                                                  \
    "Software and Configuration Checks/AWS Security Best Practices/EKS Control Plane Egress Mode"
#define ASFF_TITLE_MAX 256
#define ASFF_DESCRIPTION_MAX 1024
#define ASFF_RECOMMENDATION_MAX 512

static int account_valid(const char *a)
{
    return a && strlen(a) == 12 && strspn(a, "0123456789") == 12;
}

int securityhub_product_arn(const struct asff_context *ctx, char *out, size_t cap, struct err *err)
{
    if (!ctx || !account_valid(ctx->account_id))
        return err_set(err, ERR_INVALID, "Security Hub: the importing account must be 12 digits");
    if (!endpoint_region_valid(ctx->region))
        return err_set(err, ERR_INVALID, "Security Hub: invalid region");
    snprintf(out, cap, "arn:%s:securityhub:%s:%s:product/%s/default",
             endpoint_partition(ctx->region), ctx->region, ctx->account_id, ctx->account_id);
    return 0;
}

/* A copy of s cut to max bytes on a character boundary, as a new JSON string. */
static json_t *jcut(const char *s, size_t max)
{
    return json_stringn(s, utf8_cut(s, max));
}

static const char *severity_label(const char *s)
{
    static const char *const from[] = {"critical", "high", "medium", "low", "info"};
    static const char *const to[] = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, from[i]) == 0)
            return to[i];
    return "INFORMATIONAL";
}

static json_t *resource_of(const struct finding_record *r)
{
    const char *region = strcmp(r->f.region, "*") == 0 ? NULL : r->f.region;
    json_t *res;
    if (finding_cluster_name(r)) {
        res = json_pack("{s:s, s:s, s:s}", "Type", "AwsEksCluster", "Id", r->f.cluster_arn,
                        "Partition", endpoint_partition(region ? region : "us-east-1"));
    } else {
        char id[64];
        snprintf(id, sizeof id, "AWS::::Account:%s", r->f.account_id);
        res = json_pack("{s:s, s:s, s:s}", "Type", "AwsAccount", "Id", id, "Partition",
                        endpoint_partition(region ? region : "us-east-1"));
    }
    if (res && region)
        json_object_set_new(res, "Region", json_string(region));
    return res;
}

void *asff_finding(const struct finding_record *r, const struct asff_context *ctx)
{
    char product_arn[160], uid[64], generator[96], title[ASFF_TITLE_MAX * 2],
        desc[ASFF_DESCRIPTION_MAX * 2], rem[ASFF_RECOMMENDATION_MAX * 2], id[32];
    if (securityhub_product_arn(ctx, product_arn, sizeof product_arn, NULL) < 0)
        return NULL;
    finding_uid(r, uid, sizeof uid);
    snprintf(generator, sizeof generator, "egressscan/%s", r->f.kind);
    finding_title(r, title, sizeof title);
    finding_description(r, desc, sizeof desc);
    finding_remediation(r, rem, sizeof rem);
    snprintf(id, sizeof id, "%lld", r->finding_id);
    int resolved = r->resolved_at != NULL;
    const char *compliance = resolved                                     ? "PASSED"
                             : strcmp(r->f.kind, "unscanned_target") == 0 ? "WARNING"
                                                                          : "FAILED";
    const char *label = severity_label(r->f.severity);
    json_t *fields = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s}", "egressscan/FindingId", id, "egressscan/Kind", r->f.kind,
        "egressscan/AccountId", r->f.account_id, "egressscan/Region", r->f.region,
        "egressscan/Source", r->f.source, "egressscan/Severity", r->f.severity);
    if (fields && r->f.observed_mode)
        json_object_set_new(fields, "egressscan/ObservedMode", jcut(r->f.observed_mode, 2048));
    if (fields && r->account_name)
        json_object_set_new(fields, "egressscan/AccountName", jcut(r->account_name, 2048));
    if (fields && r->resolved_reason)
        json_object_set_new(fields, "egressscan/ResolvedReason", json_string(r->resolved_reason));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:s, s:s, s:{s:s, s:s}, "
        "s:{s:{s:s, s:s}, s:[s]}, s:o, s:o, s:{s:{s:o}}, s:o, s:[o], s:{s:s}, s:s}",
        "SchemaVersion", ASFF_SCHEMA_VERSION, "Id", uid, "ProductArn", product_arn, "GeneratorId",
        generator, "AwsAccountId", ctx->account_id, "Types", ASFF_TYPE, "CreatedAt", r->first_seen,
        "UpdatedAt", resolved ? r->resolved_at : r->last_seen, "FirstObservedAt", r->first_seen,
        "LastObservedAt", r->last_seen, "Severity", "Label", label, "Original", r->f.severity,
        "FindingProviderFields", "Severity", "Label", label, "Original", r->f.severity, "Types",
        ASFF_TYPE, "Title", jcut(title, ASFF_TITLE_MAX), "Description",
        jcut(desc, ASFF_DESCRIPTION_MAX), "Remediation", "Recommendation", "Text",
        jcut(rem, ASFF_RECOMMENDATION_MAX), "ProductFields", fields, "Resources", resource_of(r),
        "Compliance", "Status", compliance, "RecordState", resolved ? "ARCHIVED" : "ACTIVE");
    if (o && resolved)
        json_object_set_new(o, "Workflow", json_pack("{s:s}", "Status", "RESOLVED"));
    return o;
}

static int answer_count(const json_t *doc, const char *key, long *out, struct err *err)
{
    const json_t *v = json_object_get(doc, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(err, ERR_PARSE, "BatchImportFindings answer: %s is %s, expected a count",
                       key, v ? json_type_name(v) : "missing");
    *out = (long)json_integer_value(v);
    return 0;
}

static void keep_text(char *dst, size_t cap, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        s = "";
    /* from an answer: valid UTF-8 (jansson checked), cut on a boundary */
    snprintf(dst, cap, "%.*s", (int)utf8_cut(s, cap - 1), s);
}

int securityhub_parse_import_answer(const char *body, size_t len, size_t sent,
                                    struct securityhub_result *res, struct err *err)
{
    json_error_t je;
    json_t *doc = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    int rc = -1;
    long ok = 0, failed = 0;
    if (!json_is_object(doc)) {
        err_set(err, ERR_PARSE, "BatchImportFindings answer is not a JSON object");
        goto out;
    }
    if (answer_count(doc, "SuccessCount", &ok, err) < 0 ||
        answer_count(doc, "FailedCount", &failed, err) < 0)
        goto out;
    if ((size_t)ok + (size_t)failed != sent) {
        err_set(err, ERR_PARSE,
                "BatchImportFindings answer: %ld imported + %ld failed for %zu findings sent", ok,
                failed, sent);
        goto out;
    }
    const json_t *list = json_object_get(doc, "FailedFindings");
    if (list && !json_is_array(list)) {
        err_set(err, ERR_PARSE, "BatchImportFindings answer: FailedFindings is %s",
                json_type_name(list));
        goto out;
    }
    if (json_array_size(list) != (size_t)failed) {
        err_set(err, ERR_PARSE,
                "BatchImportFindings answer: FailedCount %ld but %zu FailedFindings", failed,
                json_array_size(list));
        goto out;
    }
    size_t i;
    const json_t *f;
    json_array_foreach(list, i, f)
    {
        if (!json_is_object(f)) {
            err_set(err, ERR_PARSE, "BatchImportFindings answer: FailedFindings[%zu] is %s", i,
                    json_type_name(f));
            goto out;
        }
        if (res->n_kept < SECURITYHUB_FAILURES_KEPT) {
            struct securityhub_failure *k = &res->failures[res->n_kept++];
            keep_text(k->id, sizeof k->id, json_object_get(f, "Id"));
            keep_text(k->code, sizeof k->code, json_object_get(f, "ErrorCode"));
            keep_text(k->message, sizeof k->message, json_object_get(f, "ErrorMessage"));
        }
    }
    res->calls++;
    res->success += ok;
    res->failed += failed;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int securityhub_batch_import(struct http_engine *engine, struct aws_credentials *creds,
                             const char *region, const void *findings,
                             struct securityhub_result *res, struct err *err)
{
    size_t n = json_array_size(findings);
    if (n == 0 || n > SECURITYHUB_BATCH_MAX)
        return err_set(err, ERR_INVALID, "BatchImportFindings: %zu findings (1..%d)", n,
                       SECURITYHUB_BATCH_MAX);
    struct endpoint ep;
    if (endpoint_resolve("securityhub", region, &ep, err) < 0)
        return -1;
    char url[sizeof ep.url + 32];
    snprintf(url, sizeof url, "%s/findings/import", ep.url);
    json_t *doc = json_pack("{s:O}", "Findings", (json_t *)findings);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return err_set(err, ERR_NOMEM, "BatchImportFindings: out of memory");
    static const struct sigv4_header hdr[] = {{"Content-Type", "application/json"}};
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_REST_JSON;
    req.method = "POST";
    req.url = url;
    req.service = "securityhub";
    req.region = ep.signing_region;
    req.creds = creds;
    req.headers = hdr;
    req.n_headers = 1;
    req.body = body;
    req.body_len = strlen(body);
    req.allow_http = ep.is_override;
    struct buf answer;
    buf_init(&answer);
    long status = 0;
    int rc = -1;
    if (http_perform(engine, &req, &answer, &status, err) < 0)
        err_prefix(err, "BatchImportFindings: ");
    else
        rc = securityhub_parse_import_answer(answer.data ? answer.data : "", answer.len, n, res,
                                             err);
    buf_cleanup(&answer);
    free(body);
    return rc;
}
