/* test_cli_moto.c - the exit codes and refusals of the command line (SPEC.md section 2) against a
 * small organization in moto (signature checks on) and a real PostgreSQL: `--fail-on SEVERITY`
 * for scan and for the worker that finalizes an enqueued scan, at each threshold and behind
 * failed / partial; a malformed AWS setting is exit 2 with nothing written; and `scps --account`
 * for an account the scan has no verdicts for says why, with its own exit code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1"

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    PGconn *db;
    struct cli cli;
    char policy[128];
    char dir[64]; /* config files */
} fx;

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

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
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
    if (cli_moto_fixture(&fx.moto, &fx.pg, "tests/data/fleets/cli.json", &fx.seed, &fx.cli) < 0)
        return -1;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/egressscan-cli-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    /* AWS_MANAGED is not allowed anywhere: p-managed is a high noncompliant_cluster */
    snprintf(fx.policy, sizeof fx.policy, "%s/policy.json", fx.dir);
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
    return cli_run(&fx.cli, NULL, NULL, "migrate", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    const char *files[] = {"policy.json", "config.json", "aws-config", "aws-credentials"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx.dir, files[i]);
        unlink(path);
    }
    rmdir(fx.dir);
    PQfinish(fx.db);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

/* `scan` of the usable accounts (locked excluded: the scan succeeds) with extra arguments. */
static int scan_usable(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    return cli_run(&fx.cli, out, NULL, "scan", "--regions", REGIONS, "--policy", fx.policy,
                   "--no-progress", "--exclude-accounts", account_of("locked"), a1, a2, a3, a4,
                   NULL);
}

/* ---- a malformed AWS setting: exit 2, a message naming it, and no row anywhere ---- */

static void expect_refused(const char *var, const char *value, const char *says)
{
    struct cli c = fx.cli;
    cli_setenv(&c, var, value);
    long long scans = query_int("SELECT count(*) FROM egressscan.scans");
    long long queued = query_int("SELECT count(*) FROM egressscan.work_queue");
    const char *cmds[3][4] = {{"scan", "--regions", REGIONS, NULL},
                              {"scan", "--enqueue", "--regions", REGIONS},
                              {"worker", NULL, NULL, NULL}};
    for (int i = 0; i < 3; i++) {
        char *err = NULL;
        int rc = cli_run(&c, NULL, &err, cmds[i][0], cmds[i][1], cmds[i][2], cmds[i][3], NULL);
        if (rc != 2 || !err || !strstr(err, says))
            fail_msg("%s=%s: egressscan %s %s exited %d, stderr: %s (want 2 and '%s')", var, value,
                     cmds[i][0], cmds[i][1] ? cmds[i][1] : "", rc, err ? err : "", says);
        free(err);
    }
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.scans"), scans);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.work_queue"), queued);
}

static void test_malformed_aws_settings_exit_2_and_write_nothing(void **state)
{
    (void)state;
    expect_refused("AWS_ENDPOINT_URL", "localhost:5000", "AWS_ENDPOINT_URL must start with");
    expect_refused("AWS_ENDPOINT_URL", "ftp://127.0.0.1", "AWS_ENDPOINT_URL must start with");
    expect_refused("AWS_ENDPOINT_URL_EKS", "http://", "AWS_ENDPOINT_URL_EKS has no host");
    expect_refused("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:99999",
                   "AWS_ENDPOINT_URL_STS has an invalid port");
    expect_refused("AWS_ENDPOINT_URL_ORGANIZATIONS", "http://h/a b",
                   "AWS_ENDPOINT_URL_ORGANIZATIONS must be");
    expect_refused("AWS_ENDPOINT_URL_EC2", "https://user:pw@ec2.local",
                   "AWS_ENDPOINT_URL_EC2 must be");
    expect_refused("AWS_REGION", "eu west 1", "AWS_REGION \"eu west 1\" is not a region name");
    expect_refused("AWS_MAX_ATTEMPTS", "many", "AWS_MAX_ATTEMPTS");
    expect_refused("AWS_RETRY_MODE", "eager", "AWS_RETRY_MODE");

    /* a profile absent from both files, which are the ones AWS_CONFIG_FILE and
     * AWS_SHARED_CREDENTIALS_FILE name */
    char config[128], creds[128];
    snprintf(config, sizeof config, "%s/aws-config", fx.dir);
    snprintf(creds, sizeof creds, "%s/aws-credentials", fx.dir);
    write_text(config, "[profile audit]\nregion = eu-west-1\n");
    write_text(creds, "[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = x\n");
    struct cli saved = fx.cli;
    cli_setenv(&fx.cli, "AWS_CONFIG_FILE", config);
    cli_setenv(&fx.cli, "AWS_SHARED_CREDENTIALS_FILE", creds);
    expect_refused("AWS_PROFILE", "prodd", "profile 'prodd' not found");
    /* the message names the files it looked in */
    expect_refused("AWS_PROFILE", "prodd", config);
    fx.cli = saved;
}

/* ---- --fail-on ---- */

static void test_fail_on_thresholds(void **state)
{
    (void)state;
    char *out = NULL;
    /* the scan's only finding is high (p-managed): critical is above it, every other level at or
     * below it */
    assert_int_equal(scan_usable(&out, "--fail-on", "critical", NULL, NULL), 0);
    if (!strstr(out, "scan 1 succeeded") || !strstr(out, "1 noncompliant_cluster"))
        fail_msg("unexpected summary: %s", out);
    free(out);
    assert_int_equal(scan_usable(NULL, "--fail-on", "high", NULL, NULL), 1);
    assert_int_equal(scan_usable(NULL, "--fail-on", "info", NULL, NULL), 1);
    /* drift reads the same findings back with the same thresholds */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "critical", NULL), 0);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "high", NULL), 1);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "low", NULL), 1);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "severe", NULL), 2);
    /* --fail-on-drift stays: any finding */
    assert_int_equal(scan_usable(NULL, "--fail-on-drift", NULL, NULL, NULL), 1);
    /* no threshold: 0 whatever the findings */
    assert_int_equal(scan_usable(NULL, NULL, NULL, NULL, NULL), 0);

    /* the config file's fail_on, and the flag winning over it */
    char config[128];
    snprintf(config, sizeof config, "%s/config.json", fx.dir);
    write_text(config, "{\"fail_on\": \"medium\"}\n");
    assert_int_equal(scan_usable(NULL, "--config", config, NULL, NULL), 1);
    assert_int_equal(scan_usable(NULL, "--config", config, "--fail-on", "critical"), 0);

    /* usage errors */
    char *err = NULL;
    assert_int_equal(scan_usable(NULL, "--fail-on", "severe", NULL, NULL), 2);
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scan", "--enqueue", "--fail-on", "high", NULL),
                     2);
    assert_non_null(strstr(err, "egressscan worker"));
    free(err);
    write_text(config, "{\"fail_on\": \"HIGH\"}\n");
    assert_int_equal(scan_usable(NULL, "--config", config, NULL, NULL), 2);
}

/* The worker that finalizes an enqueued scan exits with the scan's code. */
static void test_fail_on_worker(void **state)
{
    (void)state;
    const char *thresholds[] = {"high", "critical"};
    const int want[] = {1, 0};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        assert_int_equal(cli_run(&fx.cli, &out, NULL, "scan", "--enqueue", "--regions", REGIONS,
                                 "--policy", fx.policy, "--exclude-accounts", account_of("locked"),
                                 NULL),
                         0);
        char scan[32];
        snprintf(scan, sizeof scan, "%lld", atoll(out));
        free(out);
        assert_int_equal(cli_run(&fx.cli, &out, NULL, "worker", "--scan", scan, "--no-progress",
                                 "--fail-on", thresholds[i], NULL),
                         want[i]);
        if (!strstr(out, "succeeded"))
            fail_msg("the worker did not finalize scan %s: %s", scan, out);
        free(out);
    }
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "worker", "--fail-on", "urgent", NULL), 2);
}

/* Findings below the threshold do not count: with p-managed fixed the scans raise only info
 * findings (mode_changed to a compliant mode). */
static void test_fail_on_below_threshold(void **state)
{
    (void)state;
    set_mode(account_of("prod1"), "p-managed", "CUSTOMER_ISOLATED");
    char *out = NULL;
    assert_int_equal(scan_usable(&out, "--fail-on", "low", NULL, NULL), 0);
    if (!strstr(out, "findings  1: 1 mode_changed"))
        fail_msg("expected one mode_changed finding: %s", out);
    free(out);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "low", NULL), 0);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "drift", "--fail-on", "info", NULL), 1);
    set_mode(account_of("prod1"), "p-managed", "CUSTOMER_ROUTED");
    assert_int_equal(scan_usable(&out, "--fail-on", "info", NULL, NULL), 1);
    if (!strstr(out, "findings  1: 1 mode_changed"))
        fail_msg("expected one mode_changed finding: %s", out);
    free(out);
    /* nothing changed since: no finding at all */
    assert_int_equal(scan_usable(NULL, "--fail-on", "info", NULL, NULL), 0);
}

/* Partial (3) wins over --fail-on (1): the locked account cannot be scanned. */
static void test_partial_wins_over_fail_on(void **state)
{
    (void)state;
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--policy",
                             fx.policy, "--no-progress", "--fail-on", "info", NULL),
                     3);
}

/* ---- scps --account for an account without verdicts ---- */

static json_t *scps_json(const char *account, int want_rc, char **err)
{
    char *out = NULL;
    assert_int_equal(
        cli_run(&fx.cli, &out, err, "scps", "--account", account, "--format", "json", NULL),
        want_rc);
    json_t *doc = json_loads(out, 0, NULL);
    if (!doc)
        fail_msg("scps --format json is not JSON: %s", out);
    free(out);
    return doc;
}

static void test_scps_account_explains_why(void **state)
{
    (void)state;
    /* the latest scan (test_partial_wins_over_fail_on) could not assume locked's role */
    char *out = NULL, *err = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", "--account", account_of("locked"), NULL),
                     3);
    assert_string_equal(out, ""); /* no empty table */
    if (!strstr(err, "none of its targets was scanned ok: * assume_role_denied (AccessDenied") ||
        !strstr(err, "latest coverage: * assume_role_denied (AccessDenied") ||
        !strstr(err, "last scanned ok: never") || !strstr(err, account_of("locked")))
        fail_msg("unexpected explanation: %s", err);
    printf("%s", err); /* what a user reads */
    free(out);
    free(err);
    json_t *doc = scps_json(account_of("locked"), 3, NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "targets")), 0);
    json_t *u = json_object_get(doc, "unscanned");
    assert_string_equal(json_string_value(json_object_get(u, "why")), "not_scanned_ok");
    assert_true(json_is_true(json_object_get(u, "in_snapshot")));
    json_t *cov = json_array_get(json_object_get(u, "latest_coverage"), 0);
    assert_string_equal(json_string_value(json_object_get(cov, "status")), "assume_role_denied");
    assert_string_equal(json_string_value(json_object_get(cov, "error_code")), "AccessDenied");
    assert_true(json_is_null(json_object_get(u, "last_ok_at")));
    json_decref(doc);

    /* the whole table says that one account is missing from it, and how to learn why */
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", NULL), 0);
    assert_non_null(strstr(out, account_of("prod1")));
    assert_null(strstr(out, account_of("locked")));
    assert_non_null(strstr(err, "1 account of scan"));
    assert_non_null(strstr(err, "scps --account ID"));
    free(out);
    free(err);

    /* a scanned account still gets its verdicts */
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--account", account_of("prod1"), NULL),
                     0);
    assert_non_null(strstr(out, account_of("prod1")));
    free(out);

    /* not an account id: 2; an account no scan ever saw: 2 */
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scps", "--account", "12345", NULL), 2);
    assert_non_null(strstr(err, "not an account id"));
    free(err);
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scps", "--account", "000000000042", NULL), 2);
    assert_non_null(strstr(err, "no scan has seen this account"));
    free(err);

    /* listed by the organization but excluded from the scan */
    assert_int_equal(scan_usable(NULL, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", "--account", account_of("locked"), NULL),
                     3);
    assert_string_equal(out, "");
    if (!strstr(err, "in the organization snapshot of scan") ||
        !strstr(err, "but not scanned by it") || !strstr(err, "last scanned ok: never"))
        fail_msg("unexpected explanation: %s", err);
    printf("%s", err); /* what a user reads */
    free(out);
    free(err);

    /* removed from the organization: not in the snapshot any more */
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char code[512];
    snprintf(code, sizeof code,
             "import boto3; boto3.client('organizations', endpoint_url='%s', "
             "region_name='us-east-1', aws_access_key_id='AKIAIOSFODNN7SEEDING', "
             "aws_secret_access_key='x').remove_account_from_organization(AccountId='%s')",
             fx.moto.url, account_of("locked"));
    char *argv[] = {"python3", "-c", code, NULL};
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    assert_int_equal(procs_run(argv, env, NULL), 0);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--policy",
                             fx.policy, "--no-progress", NULL),
                     0);
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", "--account", account_of("locked"), NULL),
                     3);
    assert_string_equal(out, "");
    if (!strstr(err, "not in the organization snapshot of scan") ||
        !strstr(err, "last seen by scan"))
        fail_msg("unexpected explanation: %s", err);
    printf("%s", err); /* what a user reads */
    free(out);
    free(err);
    doc = scps_json(account_of("locked"), 3, NULL);
    u = json_object_get(doc, "unscanned");
    assert_string_equal(json_string_value(json_object_get(u, "why")), "not_in_snapshot");
    assert_false(json_is_true(json_object_get(u, "in_snapshot")));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_aws_settings_exit_2_and_write_nothing),
        cmocka_unit_test(test_fail_on_thresholds),
        cmocka_unit_test(test_fail_on_worker),
        cmocka_unit_test(test_fail_on_below_threshold),
        cmocka_unit_test(test_partial_wins_over_fail_on),
        cmocka_unit_test(test_scps_account_explains_why),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
