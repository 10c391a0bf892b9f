/* test_drift_moto.c - intent and drift end to end (issue 4): an organization in moto with an
 * enforcing SCP on one OU, a gap-ridden one on another, a principal-exempt one on a third, no SCP
 * on a fourth, a cluster in the management account, a pre-existing non-compliant cluster, an
 * account that cannot be scanned, and a declared policy with a tag rule, a valid and an expired
 * exception. `egressscan drift --format json` must give exactly the findings stated below, each
 * with why; `egressscan scps` the verdicts; a second scan keeps persisting findings (same id and
 * first_seen), resolves the fixed one and reports the mode change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1,us-east-1"

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    char policy_path[64];
    struct cli cli;
} fx;

static const char *acct_id(const char *name)
{
    if (strcmp(name, "mgmt") == 0)
        return json_string_value(json_object_get(fx.seed, "management_account_id"));
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), name));
}

static const char *ou(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "ous"), name));
}

static void write_policy(void)
{
    char arn_isolated[128], arn_old[128];
    snprintf(arn_isolated, sizeof arn_isolated, "arn:aws:eks:eu-west-1:%s:cluster/exm-isolated",
             acct_id("exm1"));
    snprintf(arn_old, sizeof arn_old, "arn:aws:eks:eu-west-1:%s:cluster/enf-old", acct_id("enf1"));
    json_t *p = json_pack(
        "{s:i, s:{s:[s,s]}, s:[{s:s, s:s, s:[s], s:b}, {s:s, s:[s], s:[s]}, {s:s, s:s, s:[s], s:b},"
        " {s:s, s:s, s:[s], s:b}, {s:s, s:{s:s}, s:[s]}],"
        " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}",
        "version", 1, "default", "allowed_modes", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED", "rules",
        "id", "enforced", "ou", ou("Enforced"), "allowed_modes", "CUSTOMER_ROUTED", "require_scp",
        1, "id", "enf2-isolated", "accounts", acct_id("enf2"), "allowed_modes", "CUSTOMER_ISOLATED",
        "id", "gappy", "ou", ou("Gappy"), "allowed_modes", "CUSTOMER_ROUTED", "require_scp", 1,
        "id", "exempt", "ou", ou("Exempt"), "allowed_modes", "CUSTOMER_ROUTED", "require_scp", 1,
        "id", "restricted-data", "cluster_tags", "data-class", "restricted", "allowed_modes",
        "CUSTOMER_ROUTED", "exceptions", "cluster_arn", arn_isolated, "reason", "SEC-1", "expires",
        "2099-12-31", "cluster_arn", arn_old, "reason", "SEC-0", "expires", "2020-01-01");
    snprintf(fx.policy_path, sizeof fx.policy_path, "/tmp/egressscan-policy-XXXXXX");
    int fd = mkstemp(fx.policy_path);
    close(fd);
    json_dump_file(p, fx.policy_path, JSON_INDENT(2));
    json_decref(p);
}

static int setup(void **state)
{
    (void)state;
    if (cli_moto_fixture(&fx.moto, &fx.pg, "tests/data/fleets/drift.json", &fx.seed, &fx.cli) < 0)
        return -1;
    write_policy();
    return cli_run(&fx.cli, NULL, NULL, "migrate", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(fx.policy_path);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

struct expected {
    const char *kind, *account, *region, *cluster, *source, *reason;
    int seen;
};

static const char *reason_of(json_t *f)
{
    const char *r = json_string_value(json_object_get(json_object_get(f, "details"), "reason"));
    return r ? r : "";
}

/* Every finding of drift --format json must be one of want, and every one of want must be there. */
static json_t *check_findings(struct expected *want, size_t n_want)
{
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    json_t *doc = json_loads(out, 0, NULL);
    if (!doc)
        fail_msg("drift --format json is not JSON: %s", out);
    free(out);
    assert_true(json_is_true(json_object_get(doc, "scp_intent_known")));
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(doc, "findings"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        const char *account = json_string_value(json_object_get(f, "account_id"));
        const char *region = json_string_value(json_object_get(f, "region"));
        const char *arn = json_string_value(json_object_get(f, "cluster_arn"));
        const char *source = json_string_value(json_object_get(f, "source"));
        const char *cluster = arn ? strrchr(arn, '/') + 1 : "";
        int matched = 0;
        for (size_t w = 0; w < n_want && !matched; w++) {
            struct expected *x = &want[w];
            if (!x->seen && strcmp(x->kind, kind) == 0 &&
                strcmp(acct_id(x->account), account) == 0 && strcmp(x->region, region) == 0 &&
                strcmp(x->cluster, cluster) == 0 && strcmp(x->source, source) == 0 &&
                (!x->reason[0] || strcmp(x->reason, reason_of(f)) == 0))
                matched = x->seen = 1;
        }
        if (!matched)
            fail_msg("unexpected finding: %s %s %s %s %s reason=%s", kind, account, region, cluster,
                     source, reason_of(f));
    }
    for (size_t w = 0; w < n_want; w++)
        if (!want[w].seen)
            fail_msg("missing finding: %s %s %s %s %s %s", want[w].kind, want[w].account,
                     want[w].region, want[w].cluster, want[w].source, want[w].reason);
    return doc;
}

static json_t *finding_of(json_t *doc, const char *kind, const char *cluster)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(doc, "findings"), i, f)
    {
        const char *arn = json_string_value(json_object_get(f, "cluster_arn"));
        if (strcmp(json_string_value(json_object_get(f, "kind")), kind) == 0 && arn &&
            strcmp(strrchr(arn, '/') + 1, cluster) == 0)
            return f;
    }
    return NULL;
}

static void test_first_scan_findings(void **state)
{
    (void)state;
    char *out = NULL;
    int rc = cli_run(&fx.cli, &out, NULL, "scan", "--regions", REGIONS, "--policy", fx.policy_path,
                     "--no-progress", "--as-of", "2026-11-20T10:00:00Z", NULL);
    printf("%s", out);
    free(out);
    assert_int_equal(rc, 3); /* partial: the locked account */

    struct expected want[] = {
        /* enf-old predates the enforcing SCP: the SCP denies AWS_MANAGED and the omitted mode
         * to everyone; its exception expired in 2020, so it is judged normally */
        {"noncompliant_cluster", "enf1", "eu-west-1", "enf-old", "policy:enforced", "predates_scp",
         0},
        {"exception_expired", "enf1", "eu-west-1", "enf-old", "policy:exception", "", 0},
        /* enf2 may only have CUSTOMER_ISOLATED, which the enforcing SCP denies everywhere */
        {"scp_conflict", "enf2", "*", "", "policy:enf2-isolated", "", 0},
        /* the gap-ridden SCP denies only an explicit AWS_MANAGED: the omitted mode and
         * CUSTOMER_ISOLATED still pass, so the required enforcement is missing */
        {"unenforced_intent", "gap1", "*", "", "policy:gappy", "", 0},
        {"noncompliant_cluster", "gap1", "us-east-1", "gap-managed", "policy:gappy", "scp_gap", 0},
        /* no mode reported: judged as AWS_MANAGED (so non-compliant, same gap) and flagged */
        {"noncompliant_cluster", "gap1", "us-east-1", "gap-absent", "policy:gappy", "scp_gap", 0},
        {"unknown_mode", "gap1", "us-east-1", "gap-absent", "observation", "", 0},
        /* the BreakGlass role is exempt from the Deny: every other mode is principal-dependent */
        {"unenforced_intent", "exm1", "*", "", "policy:exempt", "", 0},
        {"noncompliant_cluster", "exm1", "eu-west-1", "exm-managed", "policy:exempt", "scp_gap", 0},
        /* exm-isolated has a valid exception: exempt, no finding */
        /* no SCP says anything about the egress mode in Open */
        {"noncompliant_cluster", "open1", "us-east-1", "open-managed", "policy:default", "no_scp",
         0},
        /* the tag rule narrows the default to CUSTOMER_ROUTED for restricted data */
        {"noncompliant_cluster", "open1", "eu-west-1", "open-restricted", "policy:restricted-data",
         "no_scp", 0},
        /* the management account: SCPs never apply there */
        {"noncompliant_cluster", "mgmt", "us-east-1", "mgmt", "policy:default",
         "management_account", 0},
        /* the scanner may not assume the role in locked */
        {"unscanned_target", "locked", "*", "", "coverage", "", 0},
    };
    json_t *doc = check_findings(want, sizeof want / sizeof want[0]);

    /* remediation with the irreversibility warning; the management account's is critical */
    json_t *old = finding_of(doc, "noncompliant_cluster", "enf-old");
    const char *remediation =
        json_string_value(json_object_get(json_object_get(old, "details"), "remediation"));
    assert_non_null(strstr(remediation, "aws eks update-cluster-config"));
    assert_non_null(strstr(remediation, "controlPlaneEgressMode=CUSTOMER_ROUTED"));
    const char *warning =
        json_string_value(json_object_get(json_object_get(old, "details"), "warning"));
    assert_non_null(strstr(warning, "irreversible"));
    assert_string_equal(json_string_value(json_object_get(
                            finding_of(doc, "noncompliant_cluster", "mgmt"), "severity")),
                        "critical");
    json_decref(doc);
}

static void test_scps_verdicts(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--format", "json", NULL), 0);
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    struct {
        const char *account;
        const char *verdicts[4]; /* AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED, omitted */
    } want[] = {
        {"enf1", {"denied", "allowed", "denied", "denied"}},
        {"gap1", {"denied", "allowed", "allowed", "allowed"}},
        {"exm1", {"principal-dependent", "allowed", "principal-dependent", "principal-dependent"}},
        {"open1", {"allowed", "allowed", "allowed", "allowed"}},
        /* SCPs do not apply to the management account: the effective verdict is "allowed", what
         * the SCPs alone would say is named scp_verdict_if_applied */
        {"mgmt", {"allowed", "allowed", "allowed", "allowed"}},
    };
    const char *modes[4] = {"AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED", "omitted"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int rows = 0;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(doc, "targets"), i, t)
        {
            if (strcmp(json_string_value(json_object_get(t, "account_id")),
                       acct_id(want[w].account)) != 0)
                continue;
            rows++;
            json_t *cc = json_object_get(t, "create_cluster");
            for (int m = 0; m < 4; m++) {
                json_t *dec = json_object_get(cc, modes[m]);
                assert_string_equal(json_string_value(json_object_get(dec, "verdict")),
                                    want[w].verdicts[m]);
                int mgmt = strcmp(want[w].account, "mgmt") == 0;
                assert_int_equal(json_is_true(json_object_get(t, "management_account_exempt")),
                                 mgmt);
                assert_int_equal(json_is_string(json_object_get(dec, "scp_verdict_if_applied")),
                                 mgmt);
            }
        }
        assert_int_equal(rows, 2); /* both scanned regions */
    }
    /* the table names the deciding statements */
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--account", acct_id("enf1"), NULL), 0);
    assert_non_null(strstr(out, "#RequireCustomerRouted"));
    free(out);
    json_decref(doc);
}

static void test_second_scan_keeps_first_seen_and_resolves(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    json_t *before = json_loads(out, 0, NULL);
    free(out);
    json_t *b = finding_of(before, "noncompliant_cluster", "open-managed");
    json_int_t id_before = json_integer_value(json_object_get(b, "finding_id"));

    /* gap-managed is fixed: switched to CUSTOMER_ROUTED */
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char *argv[] = {"python3",         "tests/support/moto_seed.py",
                    "--endpoint",      fx.moto.url,
                    "--set-mode",      (char *)acct_id("gap1"),
                    "us-east-1",       "gap-managed",
                    "CUSTOMER_ROUTED", NULL};
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    assert_int_equal(procs_run(argv, env, NULL), 0);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);

    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--policy",
                             fx.policy_path, "--no-progress", "--as-of", "2026-11-21T10:00:00Z",
                             NULL),
                     3);
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    json_t *after = json_loads(out, 0, NULL);
    free(out);
    /* the persisting finding is the same finding */
    json_t *a = finding_of(after, "noncompliant_cluster", "open-managed");
    assert_non_null(a);
    assert_int_equal(json_integer_value(json_object_get(a, "finding_id")), id_before);
    assert_string_equal(json_string_value(json_object_get(a, "first_seen")),
                        "2026-11-20T10:00:00Z");
    /* the fixed one is gone, and its change is reported (not a replacement) */
    assert_null(finding_of(after, "noncompliant_cluster", "gap-managed"));
    json_t *ch = finding_of(after, "mode_changed", "gap-managed");
    assert_non_null(ch);
    assert_false(json_is_true(json_object_get(json_object_get(ch, "details"), "replaced")));

    /* --fail-on-drift: findings remain, so exit 1 */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on-drift", NULL), 1);
    json_decref(before);
    json_decref(after);
}

static void test_policy_check(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "policy", "check", fx.policy_path, NULL), 0);
    assert_non_null(strstr(out, "restricted-data"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_scan_findings),
        cmocka_unit_test(test_scps_verdicts),
        cmocka_unit_test(test_second_scan_keeps_first_seen_and_resolves),
        cmocka_unit_test(test_policy_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
