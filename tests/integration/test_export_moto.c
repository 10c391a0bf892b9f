/* test_export_moto.c - the findings where security teams look, against moto (signature and IAM
 * checks on) and a real PostgreSQL: `drift --format ocsf` lines validate against the OCSF 1.3.0
 * schema of class 2003 (tests/data/ocsf/) and are exactly the open findings; `export securityhub`
 * puts exactly the open findings into Security Hub (GetFindings through boto3), a second export
 * duplicates nothing, a finding resolved by a later scan becomes ARCHIVED / RESOLVED / PASSED;
 * the ASFF of --dry-run passes botocore's model of BatchImportFindings; refusals exit 2 or 4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1"
#define SCHEMA "tests/data/ocsf/compliance_finding-1.3.0.schema.json"

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    PGconn *db;
    struct cli cli;
    char dir[64];
    char policy[128];
    char file[128]; /* scratch file for the lines to validate */
    double t0;
} fx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *account_of(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), name));
}

static long long query_int(const char *sql)
{
    PGresult *r = PQexec(fx.db, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = atoll(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "query failed: %s: %s\n", sql, PQerrorMessage(fx.db));
    PQclear(r);
    return v;
}

/* The uids ("egressscan-finding-N") of a query's finding ids, as a JSON array. */
static json_t *uids_of(const char *sql)
{
    PGresult *r = PQexec(fx.db, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        char uid[64];
        snprintf(uid, sizeof uid, "egressscan-finding-%s", PQgetvalue(r, i, 0));
        json_array_append_new(a, json_string(uid));
    }
    PQclear(r);
    return a;
}

static int has_string(const json_t *a, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Runs a python helper; returns its exit code, stdout in *out. */
static int python(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                  const char *a5, const char *a6)
{
    char *argv[] = {"python3",  (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, (char *)a5, (char *)a6, NULL};
    char key[160], secret[160];
    snprintf(key, sizeof key, "AWS_ACCESS_KEY_ID=%s",
             json_string_value(json_object_get(fx.seed, "access_key_id")));
    snprintf(secret, sizeof secret, "AWS_SECRET_ACCESS_KEY=%s",
             json_string_value(json_object_get(fx.seed, "secret_access_key")));
    char *env[] = {key, secret, "AWS_DATA_PATH=tests/data/aws-models", NULL};
    return procs_run(argv, env, out);
}

/* GetFindings through boto3, with the scanner user's keys (IAM checks on). */
static json_t *get_findings(void)
{
    char *out = NULL;
    assert_int_equal(python(&out, "tests/support/securityhub_check.py", "--endpoint", fx.moto.url,
                            "--region", REGIONS, "get-findings"),
                     0);
    json_t *list = json_loads(out, 0, NULL);
    free(out);
    assert_true(json_is_array(list));
    return list;
}

static json_t *find_by_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f) if (strcmp(json_string_value(json_object_get(f, "Id")), id) ==
                                       0) return f;
    return NULL;
}

static const char *get_path(const json_t *o, const char *k1, const char *k2)
{
    return json_string_value(json_object_get(json_object_get(o, k1), k2));
}

static int scan(void)
{
    return cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--policy", fx.policy,
                   "--no-progress", NULL);
}

/* moto_seed.py --set-mode with the signature checks off for the change. */
static void set_mode(const char *account, const char *name, const char *mode)
{
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char *argv[] = {"python3",    "tests/support/moto_seed.py",
                    "--endpoint", fx.moto.url,
                    "--set-mode", (char *)account,
                    REGIONS,      (char *)name,
                    (char *)mode, NULL};
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    assert_int_equal(procs_run(argv, env, NULL), 0);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
}

static int setup(void **state)
{
    (void)state;
    fx.t0 = now_s();
    if (cli_moto_fixture(&fx.moto, &fx.pg, "tests/data/fleets/export.json", &fx.seed, &fx.cli) < 0)
        return -1;
    cli_setenv(&fx.cli, "AWS_REGION", REGIONS);
    snprintf(fx.dir, sizeof fx.dir, "/tmp/egressscan-export-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    /* sandbox has no SCP on the egress mode: the policy makes its AWS_MANAGED cluster a finding */
    snprintf(fx.policy, sizeof fx.policy, "%s/policy.json", fx.dir);
    snprintf(fx.file, sizeof fx.file, "%s/lines.json", fx.dir);
    FILE *f = fopen(fx.policy, "w");
    if (!f)
        return -1;
    fputs("{\"version\": 1, \"default\": {\"allowed_modes\": [\"CUSTOMER_ROUTED\", "
          "\"CUSTOMER_ISOLATED\"]}}\n",
          f);
    fclose(f);
    fx.db = PQconnectdb(fx.pg.url);
    if (PQstatus(fx.db) != CONNECTION_OK)
        return -1;
    if (cli_run(&fx.cli, NULL, NULL, "migrate", NULL) != 0)
        return -1;
    /* locked cannot be scanned: partial (exit 3), with an unscanned_target finding */
    return scan() == 3 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(fx.policy);
    unlink(fx.file);
    rmdir(fx.dir);
    PQfinish(fx.db);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    printf("test_export_moto: %.1f s in all (moto and PostgreSQL started, two scans)\n",
           now_s() - fx.t0);
    return 0;
}

/* drift --format ocsf: valid OCSF 1.3.0 class 2003, one line per open finding, their uids. */
static json_t *ocsf_lines(const char *since, int expect_rc)
{
    char *out = NULL;
    int rc = since ? cli_run(&fx.cli, &out, NULL, "drift", "--format", "ocsf", "--include-resolved",
                             since, NULL)
                   : cli_run(&fx.cli, &out, NULL, "drift", "--format", "ocsf", NULL);
    assert_int_equal(rc, expect_rc);
    write_text(fx.file, out);
    char *v = NULL;
    int valid = python(&v, "tests/support/ocsf_validate.py", SCHEMA, fx.file, NULL, NULL, NULL);
    if (valid != 0)
        fail_msg("OCSF lines do not validate against %s: %s\n%s", SCHEMA, v ? v : "", out);
    free(v);
    json_t *events = json_array();
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        json_array_append_new(events, ev);
    }
    free(out);
    return events;
}

static void test_ocsf_lines_are_the_open_findings_and_valid(void **state)
{
    (void)state;
    long long open = query_int("SELECT count(*) FROM egressscan.current_drift");
    assert_true(open >= 5); /* predates_scp, unknown_mode, no_scp, management, unscanned */
    json_t *events = ocsf_lines(NULL, 0);
    assert_int_equal(json_array_size(events), open);
    json_t *uids = uids_of("SELECT finding_id FROM egressscan.current_drift");
    size_t i;
    json_t *ev;
    int warned = 0;
    json_array_foreach(events, i, ev)
    {
        const char *uid = get_path(ev, "finding_info", "uid");
        assert_true(has_string(uids, uid));
        assert_int_equal(json_integer_value(json_object_get(ev, "class_uid")), 2003);
        assert_string_equal(json_string_value(json_object_get(ev, "status")), "New");
        assert_string_equal(get_path(ev, "compliance", "status"), "Fail");
        const char *rem = get_path(ev, "remediation", "desc");
        if (strstr(rem, "aws eks update-cluster-config") && strstr(rem, "irreversible"))
            warned = 1;
    }
    /* the non-compliant clusters where CUSTOMER_ROUTED is allowed carry the command and its
     * warning */
    assert_true(warned);
    /* the management account's cluster: critical (5), its account as cloud.account.uid */
    int mgmt = 0;
    json_array_foreach(events, i, ev)
    {
        json_t *acct = json_object_get(json_object_get(ev, "cloud"), "account");
        if (strcmp(json_string_value(json_object_get(acct, "uid")),
                   json_string_value(json_object_get(fx.seed, "management_account_id"))) == 0 &&
            json_integer_value(json_object_get(ev, "severity_id")) == 5)
            mgmt = 1;
    }
    assert_true(mgmt);
    json_decref(uids);
    json_decref(events);
    /* --fail-on counts open findings as the other formats do */
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "drift", "--format", "ocsf", "--fail-on", "critical", NULL),
        1);
}

static void test_export_counts_no_duplicates_then_archived(void **state)
{
    (void)state;
    char *out = NULL;
    long long open = query_int("SELECT count(*) FROM egressscan.current_drift");
    double t = now_s();
    assert_int_equal(
        cli_run(&fx.cli, &out, NULL, "export", "securityhub", "--region", REGIONS, NULL), 0);
    printf("first export (%.2f s): %s", now_s() - t, out);
    char want[160];
    snprintf(want, sizeof want, "exported %lld findings (%lld open, 0 resolved", open, open);
    if (!strstr(out, want) || !strstr(out, "1 BatchImportFindings call"))
        fail_msg("unexpected summary: %s", out);
    free(out);
    json_t *list = get_findings();
    assert_int_equal(json_array_size(list), open);
    json_t *uids = uids_of("SELECT finding_id FROM egressscan.current_drift");
    const char *mgmt = json_string_value(json_object_get(fx.seed, "management_account_id"));
    char product[160];
    snprintf(product, sizeof product, "arn:aws:securityhub:%s:%s:product/%s/default", REGIONS, mgmt,
             mgmt);
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f)
    {
        assert_true(has_string(uids, json_string_value(json_object_get(f, "Id"))));
        assert_string_equal(json_string_value(json_object_get(f, "RecordState")), "ACTIVE");
        assert_string_equal(json_string_value(json_object_get(f, "ProductArn")), product);
        /* the importing account: AWS accepts only the caller's own with the default product */
        assert_string_equal(json_string_value(json_object_get(f, "AwsAccountId")), mgmt);
        const char *st = get_path(f, "Compliance", "Status");
        assert_true(strcmp(st, "FAILED") == 0 || strcmp(st, "WARNING") == 0);
    }
    json_decref(list);

    /* a second export: the same findings, updated, none added */
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "export", "securityhub", "--region", REGIONS, NULL), 0);
    list = get_findings();
    assert_int_equal(json_array_size(list), open);
    json_decref(list);

    /* sandbox's cluster switches to CUSTOMER_ROUTED: the next scan resolves its finding */
    PGresult *r = PQexec(fx.db, "SELECT finding_id FROM egressscan.current_drift"
                                " WHERE kind = 'noncompliant_cluster'"
                                " AND cluster_arn LIKE '%/sbx-managed'");
    assert_int_equal(PQntuples(r), 1);
    char resolved_uid[64];
    snprintf(resolved_uid, sizeof resolved_uid, "egressscan-finding-%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char before[32];
    time_t now = time(NULL) - 60;
    strftime(before, sizeof before, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    set_mode(account_of("sandbox"), "sbx-managed", "CUSTOMER_ROUTED");
    assert_int_equal(scan(), 3);
    long long open2 = query_int("SELECT count(*) FROM egressscan.current_drift");
    assert_int_equal(
        cli_run(&fx.cli, &out, NULL, "export", "securityhub", "--region", REGIONS, NULL), 0);
    printf("after the fix: %s", out);
    free(out);
    list = get_findings();
    f = find_by_id(list, resolved_uid);
    assert_non_null(f);
    assert_string_equal(json_string_value(json_object_get(f, "RecordState")), "ARCHIVED");
    assert_string_equal(get_path(f, "Workflow", "Status"), "RESOLVED");
    assert_string_equal(get_path(f, "Compliance", "Status"), "PASSED");
    /* every finding once: the old ones (one archived) and the new open ones (mode_changed) */
    long long active = 0;
    json_array_foreach(list, i, f) if (strcmp(json_string_value(json_object_get(f, "RecordState")),
                                              "ACTIVE") == 0) active++;
    assert_int_equal(active, open2);
    json_t *all = uids_of("SELECT finding_id FROM egressscan.finding");
    assert_int_equal(json_array_size(list), json_array_size(all));
    json_decref(all);
    json_decref(list);
    json_decref(uids);

    /* OCSF with --include-resolved: the resolved finding as Resolved / Close / Pass */
    json_t *events = ocsf_lines(before, 0);
    assert_int_equal(json_array_size(events), open2 + 1);
    int seen = 0;
    json_array_foreach(events, i, f)
    {
        if (strcmp(get_path(f, "finding_info", "uid"), resolved_uid) != 0)
            continue;
        seen = 1;
        assert_string_equal(json_string_value(json_object_get(f, "status")), "Resolved");
        assert_int_equal(json_integer_value(json_object_get(f, "activity_id")), 3);
        assert_string_equal(get_path(f, "compliance", "status"), "Pass");
    }
    assert_true(seen);
    json_decref(events);
}

static void test_dry_run_asff_matches_the_model(void **state)
{
    (void)state;
    char *out = NULL, *v = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "export", "securityhub", "--dry-run", "--account",
                             "111122223333", "--since", "2000-01-01T00:00:00Z", NULL),
                     0);
    write_text(fx.file, out);
    free(out);
    int rc = python(&v, "tests/support/securityhub_check.py", "validate-asff", fx.file, NULL, NULL,
                    NULL);
    if (rc != 0)
        fail_msg("ASFF does not match botocore's BatchImportFindings model: %s", v ? v : "");
    free(v);
}

static void test_refusals(void **state)
{
    (void)state;
    char *err = NULL;
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "export", "securityhub", "--since", "yesterday", NULL), 2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "export", "securityhub", "--account", "12", NULL),
                     2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "export", "elsewhere", NULL), 2);
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "drift", "--include-resolved", "2026-01-01T00:00:00Z", NULL),
        2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--format", "ocsf", "--scan", "1", NULL),
                     2);
    struct cli c = fx.cli;
    cli_setenv(&c, "AWS_ENDPOINT_URL_SECURITYHUB", "localhost:1");
    assert_int_equal(cli_run(&c, NULL, &err, "export", "securityhub", NULL), 2);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_SECURITYHUB must start with"));
    free(err);
    err = NULL;

    /* IAM denies BatchImportFindings to the scanner user: exit 4, AWS's code on stderr */
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    assert_int_equal(python(NULL, "tests/support/securityhub_check.py", "--endpoint", fx.moto.url,
                            "deny-import", "on", NULL),
                     0);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
    int rc = cli_run(&fx.cli, NULL, &err, "export", "securityhub", NULL);
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    python(NULL, "tests/support/securityhub_check.py", "--endpoint", fx.moto.url, "deny-import",
           "off", NULL);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
    assert_int_equal(rc, 4);
    if (!strstr(err, "BatchImportFindings") || !strstr(err, "not authorized") ||
        !strstr(err, "AccessDenied"))
        fail_msg("unexpected error: %s", err);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocsf_lines_are_the_open_findings_and_valid),
        cmocka_unit_test(test_dry_run_asff_matches_the_model),
        cmocka_unit_test(test_export_counts_no_duplicates_then_archived),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
