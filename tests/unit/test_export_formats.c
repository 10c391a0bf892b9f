/* test_export_formats.c - the findings where security teams look: the OCSF 1.3.0 Compliance
 * Finding event (class 2003) and the ASFF finding of a stored finding (ids, lifecycle, severity
 * mappings, resource, remediation and its warning, ASFF's length limits cut on UTF-8 boundaries),
 * the BatchImportFindings answer (FailedFindings kept, counts checked), the request on a fake
 * Security Hub (path, signing name, retry of a throttled call), and STS GetCallerIdentity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/finding_record.h"
#include "common/utf8.h"
#include "report/ocsf.h"
#include "scanner/creds.h"
#include "scanner/http.h"
#include "scanner/securityhub.h"
#include "scanner/sts.h"
#include "tests/support/fakehttp.h"

#define ARN "arn:aws:eks:eu-west-1:111122223333:cluster/pay-managed"
#define DETAILS                                                                                    \
    "{\"reason\": \"predates_scp\", \"remediation\": \"aws eks update-cluster-config --region "    \
    "'eu-west-1' --name 'pay-managed' --resources-vpc-config "                                     \
    "controlPlaneEgressMode=CUSTOMER_ROUTED\", \"remediation_in_place\": true, \"warning\": "      \
    "\"Switching to CUSTOMER_ROUTED is irreversible: the cluster can never return to "             \
    "AWS_MANAGED.\", \"remediation_permitted_by_scps\": \"allowed\"}"

static struct finding_record open_cluster(void)
{
    struct finding_record r = {.finding_id = 42,
                               .scan_id = 7,
                               .f = {.kind = "noncompliant_cluster",
                                     .severity = "high",
                                     .account_id = "111122223333",
                                     .region = "eu-west-1",
                                     .cluster_arn = ARN,
                                     .observed_mode = "AWS_MANAGED",
                                     .allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED),
                                     .source = "scp:p-abcd1234",
                                     .details_json = DETAILS},
                               .account_name = "payments",
                               .first_seen = "2026-11-30T02:15:00Z",
                               .last_seen = "2026-12-04T02:15:00Z"};
    return r;
}

static const struct asff_context CTX = {.account_id = "999988887777", .region = "eu-west-1"};

static const char *sget(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = o;
    for (char *k = strtok(buf, "."); k && v; k = strtok(NULL, "."))
        v = json_object_get(v, k);
    return json_string_value(v);
}

static json_int_t iget(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ---- OCSF ---- */

static void test_ocsf_open_cluster_finding(void **state)
{
    (void)state;
    struct finding_record r = open_cluster();
    json_t *ev = ocsf_compliance_finding(&r);
    assert_non_null(ev);
    assert_int_equal(iget(ev, "class_uid", NULL), 2003);
    assert_int_equal(iget(ev, "category_uid", NULL), 2);
    /* confirmed by a later scan than the first: Update */
    assert_int_equal(iget(ev, "activity_id", NULL), 2);
    assert_int_equal(iget(ev, "type_uid", NULL), 200302);
    assert_int_equal(iget(ev, "severity_id", NULL), 4);
    assert_string_equal(sget(ev, "severity"), "High");
    assert_int_equal(iget(ev, "status_id", NULL), 1);
    assert_string_equal(sget(ev, "status"), "New");
    assert_int_equal(iget(ev, "time", NULL), 1796350500000LL); /* last_seen, ms */
    assert_string_equal(sget(ev, "finding_info.uid"), "egressscan-finding-42");
    assert_int_equal(iget(ev, "finding_info", "first_seen_time"), 1796004900000LL);
    assert_string_equal(sget(ev, "metadata.version"), "1.3.0");
    assert_string_equal(sget(ev, "metadata.product.vendor_name"), "egressscan");
    assert_string_equal(sget(ev, "cloud.provider"), "AWS");
    assert_string_equal(sget(ev, "cloud.region"), "eu-west-1");
    assert_string_equal(sget(ev, "cloud.account.uid"), "111122223333");
    assert_string_equal(sget(ev, "cloud.account.name"), "payments");
    const json_t *res = json_array_get(json_object_get(ev, "resources"), 0);
    assert_string_equal(sget(res, "uid"), ARN);
    assert_string_equal(sget(res, "name"), "pay-managed");
    assert_string_equal(sget(res, "type"), "AwsEksCluster");
    assert_string_equal(sget(res, "region"), "eu-west-1");
    assert_string_equal(sget(res, "data.controlPlaneEgressMode"), "AWS_MANAGED");
    assert_string_equal(sget(ev, "compliance.status"), "Fail");
    assert_int_equal(iget(ev, "compliance", "status_id"), 3);
    assert_string_equal(sget(ev, "compliance.control"), "noncompliant_cluster");
    const char *rem = sget(ev, "remediation.desc");
    assert_non_null(strstr(rem, "aws eks update-cluster-config --region 'eu-west-1' --name "
                                "'pay-managed'"));
    assert_non_null(strstr(rem, "Warning: Switching to CUSTOMER_ROUTED is irreversible"));
    assert_non_null(strstr(rem, "the update is allowed"));
    assert_non_null(strstr(sget(ev, "finding_info.title"), "pay-managed"));
    json_decref(ev);

    /* first seen by the scan that last confirmed it: Create */
    r.last_seen = r.first_seen;
    ev = ocsf_compliance_finding(&r);
    assert_int_equal(iget(ev, "activity_id", NULL), 1);
    assert_int_equal(iget(ev, "type_uid", NULL), 200301);
    json_decref(ev);
}

static void test_ocsf_resolved_and_account_level(void **state)
{
    (void)state;
    struct finding_record r = open_cluster();
    r.resolved_at = "2026-12-05T02:15:00Z";
    r.resolved_reason = "not_raised";
    json_t *ev = ocsf_compliance_finding(&r);
    assert_int_equal(iget(ev, "activity_id", NULL), 3);
    assert_int_equal(iget(ev, "type_uid", NULL), 200303);
    assert_int_equal(iget(ev, "status_id", NULL), 4);
    assert_string_equal(sget(ev, "status"), "Resolved");
    assert_string_equal(sget(ev, "status_detail"), "not_raised");
    assert_string_equal(sget(ev, "compliance.status"), "Pass");
    assert_int_equal(iget(ev, "time", NULL), 1796436900000LL); /* resolved_at */
    json_decref(ev);

    struct finding_record a = {.finding_id = 9,
                               .f = {.kind = "unenforced_intent",
                                     .severity = "medium",
                                     .account_id = "111122223333",
                                     .region = "*",
                                     .source = "policy:regulated",
                                     .details_json = "{}"},
                               .first_seen = "2026-12-04T02:15:00Z",
                               .last_seen = "2026-12-04T02:15:00Z"};
    ev = ocsf_compliance_finding(&a);
    assert_null(json_object_get(json_object_get(ev, "cloud"), "region"));
    assert_null(json_object_get(json_object_get(json_object_get(ev, "cloud"), "account"), "name"));
    const json_t *res = json_array_get(json_object_get(ev, "resources"), 0);
    assert_string_equal(sget(res, "uid"), "AWS::::Account:111122223333");
    assert_string_equal(sget(res, "type"), "AwsAccount");
    assert_null(json_object_get(res, "region"));
    assert_non_null(strstr(sget(ev, "remediation.desc"), "Attach an SCP"));
    json_decref(ev);
}

static void test_ocsf_severity_ids(void **state)
{
    (void)state;
    const char *names[] = {"critical", "high", "medium", "low", "info", "bogus", NULL};
    const int ids[] = {5, 4, 3, 2, 1, 0, 0};
    for (int i = 0; i < 7; i++)
        assert_int_equal(ocsf_severity_id(names[i]), ids[i]);
}

/* one line, no raw control character or newline inside, even from a hostile name */
static void test_ocsf_line_is_one_line(void **state)
{
    (void)state;
    struct finding_record r = open_cluster();
    r.f.cluster_arn = "arn:aws:eks:eu-west-1:111122223333:cluster/x\n\033]0;owned\007";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct err e;
    err_clear(&e);
    assert_int_equal(ocsf_write_line(f, &r, &e), 0);
    fclose(f);
    assert_true(len > 2 && buf[len - 1] == '\n');
    for (size_t i = 0; i + 1 < len; i++)
        assert_true(buf[i] >= 0x20 && buf[i] < 0x7f);
    json_t *ev = json_loads(buf, 0, NULL);
    assert_non_null(ev);
    json_decref(ev);
    free(buf);
}

/* ---- ASFF ---- */

static void test_asff_open_cluster_finding(void **state)
{
    (void)state;
    struct finding_record r = open_cluster();
    json_t *o = asff_finding(&r, &CTX);
    assert_non_null(o);
    assert_string_equal(sget(o, "SchemaVersion"), "2018-10-08");
    assert_string_equal(sget(o, "Id"), "egressscan-finding-42");
    assert_string_equal(sget(o, "ProductArn"),
                        "arn:aws:securityhub:eu-west-1:999988887777:product/999988887777/default");
    assert_string_equal(sget(o, "AwsAccountId"), "999988887777");
    assert_string_equal(sget(o, "GeneratorId"), "egressscan/noncompliant_cluster");
    assert_string_equal(sget(o, "CreatedAt"), "2026-11-30T02:15:00Z");
    assert_string_equal(sget(o, "FirstObservedAt"), "2026-11-30T02:15:00Z");
    assert_string_equal(sget(o, "UpdatedAt"), "2026-12-04T02:15:00Z");
    assert_string_equal(sget(o, "LastObservedAt"), "2026-12-04T02:15:00Z");
    assert_string_equal(sget(o, "Severity.Label"), "HIGH");
    assert_string_equal(sget(o, "FindingProviderFields.Severity.Label"), "HIGH");
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(o, "Types"), 0)),
                           "Software and Configuration Checks/"));
    assert_string_equal(sget(o, "RecordState"), "ACTIVE");
    assert_string_equal(sget(o, "Compliance.Status"), "FAILED");
    assert_null(json_object_get(o, "Workflow"));
    const json_t *res = json_array_get(json_object_get(o, "Resources"), 0);
    assert_string_equal(sget(res, "Type"), "AwsEksCluster");
    assert_string_equal(sget(res, "Id"), ARN);
    assert_string_equal(sget(res, "Region"), "eu-west-1");
    assert_string_equal(sget(res, "Partition"), "aws");
    const json_t *pf = json_object_get(o, "ProductFields");
    assert_string_equal(sget(pf, "egressscan/AccountId"), "111122223333");
    assert_string_equal(sget(pf, "egressscan/FindingId"), "42");
    const char *text = sget(o, "Remediation.Recommendation.Text");
    assert_non_null(strstr(text, "update-cluster-config"));
    assert_non_null(strstr(text, "irreversible"));
    json_decref(o);
}

static void test_asff_resolved_and_warning(void **state)
{
    (void)state;
    struct finding_record r = open_cluster();
    r.resolved_at = "2026-12-05T02:15:00Z";
    r.resolved_reason = "cluster_gone";
    json_t *o = asff_finding(&r, &CTX);
    assert_string_equal(sget(o, "RecordState"), "ARCHIVED");
    assert_string_equal(sget(o, "Workflow.Status"), "RESOLVED");
    assert_string_equal(sget(o, "Compliance.Status"), "PASSED");
    assert_string_equal(sget(o, "UpdatedAt"), "2026-12-05T02:15:00Z");
    assert_string_equal(sget(json_object_get(o, "ProductFields"), "egressscan/ResolvedReason"),
                        "cluster_gone");
    json_decref(o);

    struct finding_record u = {.finding_id = 3,
                               .f = {.kind = "unscanned_target",
                                     .severity = "info",
                                     .account_id = "111122223333",
                                     .region = "*",
                                     .source = "coverage",
                                     .details_json = "{\"fix\": \"Grant the role.\"}"},
                               .first_seen = "2026-12-04T02:15:00Z",
                               .last_seen = "2026-12-04T02:15:00Z"};
    o = asff_finding(&u, &CTX);
    assert_string_equal(sget(o, "Compliance.Status"), "WARNING");
    assert_string_equal(sget(o, "Severity.Label"), "INFORMATIONAL");
    assert_string_equal(sget(o, "Remediation.Recommendation.Text"), "Grant the role.");
    const json_t *res = json_array_get(json_object_get(o, "Resources"), 0);
    assert_string_equal(sget(res, "Type"), "AwsAccount");
    assert_string_equal(sget(res, "Id"), "AWS::::Account:111122223333");
    assert_null(json_object_get(res, "Region"));
    json_decref(o);
}

/* A cluster name of 100 three-byte characters: Title (256), Description (1024) and the
 * recommendation (512) are cut on character boundaries and stay valid UTF-8. */
static void test_asff_limits_cut_on_characters(void **state)
{
    (void)state;
    char arn[512] = "arn:aws:eks:eu-west-1:111122223333:cluster/";
    char details[2048] = "{\"remediation\": \"aws eks update-cluster-config --name '";
    for (int i = 0; i < 100; i++) {
        strcat(arn, "\xe2\x82\xac");
        strcat(details, "\xe2\x82\xac\xe2\x82\xac");
    }
    strcat(details, "'\", \"warning\": \"irreversible\"}");
    struct finding_record r = open_cluster();
    r.f.cluster_arn = arn;
    r.f.details_json = details;
    json_t *o = asff_finding(&r, &CTX);
    assert_non_null(o);
    const char *fields[] = {"Title", "Description", "Remediation.Recommendation.Text"};
    const size_t max[] = {256, 1024, 512};
    for (int i = 0; i < 3; i++) {
        const char *s = sget(o, fields[i]);
        assert_non_null(s);
        assert_true(strlen(s) <= max[i]);
        assert_true(utf8_valid(s, strlen(s)));
    }
    assert_true(strlen(sget(o, "Title")) > 200); /* cut, not dropped */
    json_decref(o);
}

static void test_asff_product_arn(void **state)
{
    (void)state;
    char out[160];
    struct asff_context cn = {.account_id = "999988887777", .region = "cn-north-1"};
    assert_int_equal(securityhub_product_arn(&cn, out, sizeof out, NULL), 0);
    assert_string_equal(
        out, "arn:aws-cn:securityhub:cn-north-1:999988887777:product/999988887777/default");
    struct asff_context bad = {.account_id = "9999", .region = "eu-west-1"};
    struct err e;
    err_clear(&e);
    assert_int_equal(securityhub_product_arn(&bad, out, sizeof out, &e), -1);
    struct finding_record r = open_cluster();
    assert_null(asff_finding(&r, &bad));
}

/* ---- the answer of BatchImportFindings ---- */

static void test_import_answer(void **state)
{
    (void)state;
    struct securityhub_result res;
    memset(&res, 0, sizeof res);
    struct err e;
    err_clear(&e);
    const char *ok = "{\"FailedCount\": 0, \"SuccessCount\": 3, \"FailedFindings\": []}";
    assert_int_equal(securityhub_parse_import_answer(ok, strlen(ok), 3, &res, &e), 0);
    const char *failed =
        "{\"FailedCount\": 1, \"SuccessCount\": 1, \"FailedFindings\": [{\"Id\": "
        "\"egressscan-finding-9\", \"ErrorCode\": \"InvalidInput\", \"ErrorMessage\": \"bad\"}]}";
    assert_int_equal(securityhub_parse_import_answer(failed, strlen(failed), 2, &res, &e), 0);
    assert_int_equal(res.calls, 2);
    assert_int_equal(res.success, 4);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.n_kept, 1);
    assert_string_equal(res.failures[0].id, "egressscan-finding-9");
    assert_string_equal(res.failures[0].code, "InvalidInput");
    assert_string_equal(res.failures[0].message, "bad");
    /* counts that do not add up to what was sent, a list that disagrees, not JSON */
    const char *bad[] = {
        "{\"FailedCount\": 0, \"SuccessCount\": 2, \"FailedFindings\": []}",
        "{\"FailedCount\": 1, \"SuccessCount\": 2, \"FailedFindings\": []}",
        "{\"FailedCount\": -1, \"SuccessCount\": 4}",
        "{\"FailedCount\": 0, \"SuccessCount\": 3, \"FailedFindings\": {}}",
        "[]",
        "<xml/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_int_equal(securityhub_parse_import_answer(bad[i], strlen(bad[i]), 3, &res, &e), -1);
        assert_string_equal(e.code, ERR_PARSE);
    }
    assert_int_equal(res.calls, 2); /* refused answers add nothing */
}

/* ---- on the wire: a fake Security Hub that throttles once ---- */

struct fake {
    int seq;
};

static void fake_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    (void)ud;
    if (strcmp(req->method, "POST") != 0 || strcmp(req->target, "/findings/import") != 0 ||
        !strstr(req->headers, "/securityhub/aws4_request")) {
        fakehttp_respond(resp, 400, NULL, "{\"__type\": \"UnexpectedRequest\"}");
        return;
    }
    if (req->seq == 0) {
        fakehttp_respond(resp, 429, "Content-Type: application/json\r\n",
                         "{\"__type\": \"TooManyRequestsException\", \"message\": \"slow\"}");
        return;
    }
    json_t *doc = json_loadb(req->body, req->body_len, 0, NULL);
    size_t n = json_array_size(json_object_get(doc, "Findings"));
    json_decref(doc);
    char body[128];
    snprintf(body, sizeof body,
             "{\"FailedCount\": 0, \"SuccessCount\": %zu, \"FailedFindings\": []}", n);
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", body);
}

static void test_batch_import_retries_a_throttled_call(void **state)
{
    (void)state;
    struct fakehttp *srv = fakehttp_start(fake_handler, NULL, NULL, NULL);
    assert_non_null(srv);
    setenv("AWS_ENDPOINT_URL_SECURITYHUB", fakehttp_url(srv), 1);
    struct err e;
    err_clear(&e);
    struct http_engine_options o;
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    struct http_engine *engine = http_engine_new(&o, &e);
    assert_non_null(engine);
    struct aws_credentials *creds = creds_new("AKIDEXAMPLE", "secret", NULL, 0, "test");
    json_t *batch = json_array();
    struct finding_record r = open_cluster();
    for (int i = 0; i < 3; i++) {
        r.finding_id = i + 1;
        json_array_append_new(batch, asff_finding(&r, &CTX));
    }
    struct securityhub_result res;
    memset(&res, 0, sizeof res);
    assert_int_equal(securityhub_batch_import(engine, creds, "eu-west-1", batch, &res, &e), 0);
    assert_int_equal(res.success, 3);
    assert_int_equal(res.calls, 1);
    assert_int_equal(fakehttp_requests(srv), 2); /* throttled once, retried */
    char *text = fakehttp_request_text(srv, 1);
    assert_non_null(strstr(text, "egressscan-finding-3"));
    free(text);
    /* more than a batch is refused before anything is sent */
    for (int i = 0; i < SECURITYHUB_BATCH_MAX; i++)
        json_array_append_new(batch, json_object());
    assert_int_equal(securityhub_batch_import(engine, creds, "eu-west-1", batch, &res, &e), -1);
    assert_int_equal(fakehttp_requests(srv), 2);
    json_decref(batch);
    creds_unref(creds);
    http_engine_free(engine);
    unsetenv("AWS_ENDPOINT_URL_SECURITYHUB");
    fakehttp_stop(srv);
}

/* ---- STS GetCallerIdentity ---- */

static void test_caller_identity_answer(void **state)
{
    (void)state;
    char acct[13];
    struct err e;
    err_clear(&e);
    const char *ok = "<GetCallerIdentityResponse "
                     "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"
                     "<Arn>arn:aws:iam::123456789012:user/x</Arn><UserId>AIDA</UserId>"
                     "<Account>123456789012</Account></GetCallerIdentityResult>"
                     "</GetCallerIdentityResponse>";
    assert_int_equal(sts_parse_caller_identity(ok, strlen(ok), acct, &e), 0);
    assert_string_equal(acct, "123456789012");
    const char *bad[] = {
        "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>12</Account>"
        "</GetCallerIdentityResult></GetCallerIdentityResponse>",
        "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>12345678901x</Account>"
        "</GetCallerIdentityResult></GetCallerIdentityResponse>",
        "<GetCallerIdentityResponse/>",
        "not xml",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_int_equal(sts_parse_caller_identity(bad[i], strlen(bad[i]), acct, &e), -1);
        assert_string_equal(e.code, ERR_PARSE);
        assert_string_equal(acct, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocsf_open_cluster_finding),
        cmocka_unit_test(test_ocsf_resolved_and_account_level),
        cmocka_unit_test(test_ocsf_severity_ids),
        cmocka_unit_test(test_ocsf_line_is_one_line),
        cmocka_unit_test(test_asff_open_cluster_finding),
        cmocka_unit_test(test_asff_resolved_and_warning),
        cmocka_unit_test(test_asff_limits_cut_on_characters),
        cmocka_unit_test(test_asff_product_arn),
        cmocka_unit_test(test_import_answer),
        cmocka_unit_test(test_batch_import_retries_a_throttled_call),
        cmocka_unit_test(test_caller_identity_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
