/* test_export_formats.c - the findings where security teams look: the OCSF 1.3.0 Compliance
 * Finding event (class 2003) of a stored finding (ids, lifecycle, severity mapping, resource,
 * remediation and its warning, one line whatever the names hold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/finding_record.h"
#include "report/ocsf.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocsf_open_cluster_finding),
        cmocka_unit_test(test_ocsf_resolved_and_account_level),
        cmocka_unit_test(test_ocsf_severity_ids),
        cmocka_unit_test(test_ocsf_line_is_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
