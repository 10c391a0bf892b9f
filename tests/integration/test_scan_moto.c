/* test_scan_moto.c - `egressscan migrate` and `egressscan scan` end to end: a 27-account
 * organization in moto (signature checks on) scanned into a real PostgreSQL. The clusters stored
 * must be exactly those moto holds (listed independently through boto3); one account's role
 * cannot be used; history is change-based; bad config, a dead database and a killed scan are
 * handled as SPEC.md section 2 says. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1,us-east-1,ap-southeast-2"

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    PGconn *db;
    struct cli cli;
} fx;

static const char *account_id(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), name));
}

static long long query_int(const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(fx.db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "query failed: %s: %s\n", sql, PQerrorMessage(fx.db));
        PQclear(r);
        return -1;
    }
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static char *query_text(const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(fx.db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    char *s = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        s = strdup(PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

/* moto's clusters, listed through boto3 with signature checks off for the listing. */
static json_t *moto_clusters(void)
{
    if (mototest_set_auth(&fx.moto, 0) < 0)
        return NULL;
    char *argv[] = {
        "python3", "tests/support/moto_seed.py", "--endpoint", fx.moto.url, "--list", REGIONS,
        NULL};
    char data[128];
    snprintf(data, sizeof data, "AWS_DATA_PATH=tests/data/aws-models");
    char *env[] = {data, NULL};
    char *out = NULL;
    int rc = procs_run(argv, env, &out);
    mototest_set_auth(&fx.moto, 1);
    json_t *j = rc == 0 ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return j;
}

static int moto_change(const char *what, const char *acct, const char *region, const char *name,
                       const char *mode)
{
    if (mototest_set_auth(&fx.moto, 0) < 0)
        return -1;
    char *argv[] = {"python3",      "tests/support/moto_seed.py",
                    "--endpoint",   fx.moto.url,
                    (char *)what,   (char *)acct,
                    (char *)region, (char *)name,
                    (char *)mode,   NULL};
    char data[128];
    snprintf(data, sizeof data, "AWS_DATA_PATH=tests/data/aws-models");
    char *env[] = {data, NULL};
    int rc = procs_run(argv, env, NULL);
    mototest_set_auth(&fx.moto, 1);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (cli_moto_fixture(&fx.moto, &fx.pg, "tests/data/fleets/org27.json", &fx.seed, &fx.cli) < 0)
        return -1;
    fx.db = PQconnectdb(fx.pg.url);
    if (PQstatus(fx.db) != CONNECTION_OK)
        return -1;
    return cli_run(&fx.cli, NULL, NULL, "migrate", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(fx.db);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

static void test_migrate_is_idempotent(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "migrate", NULL), 0);
    assert_non_null(strstr(out, "0 migrations applied"));
    free(out);
}

static void test_scan_stores_exactly_the_clusters_moto_holds(void **state)
{
    (void)state;
    char *out = NULL;
    int rc = cli_run(&fx.cli, &out, NULL, "scan", "--regions", REGIONS, "--page-size", "2",
                     "--no-progress", NULL);
    printf("%s", out);
    assert_int_equal(rc, 3); /* partial: one account's role cannot be used */
    assert_non_null(strstr(out, "partial"));
    free(out);

    json_t *expected = moto_clusters();
    assert_non_null(expected);
    const char *denied = account_id("acct26");
    size_t i, n_expected = 0;
    json_t *c;
    json_array_foreach(expected, i, c)
    {
        const char *acct = json_string_value(json_object_get(c, "account_id"));
        const char *arn = json_string_value(json_object_get(c, "arn"));
        json_t *mode = json_object_get(c, "mode");
        if (strcmp(acct, denied) == 0) {
            assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters "
                                       "WHERE cluster_arn = $1",
                                       arn),
                             0);
            continue;
        }
        n_expected++;
        char *stored = query_text("SELECT coalesce(egress_mode, '(null)') || '|' || "
                                  "coalesce(account_name, '') FROM egressscan.current_clusters "
                                  "WHERE cluster_arn = $1",
                                  arn);
        if (!stored)
            fail_msg("cluster %s is missing from current_clusters", arn);
        char want[256];
        snprintf(want, sizeof want, "%s|%s",
                 json_is_string(mode) ? json_string_value(mode) : "(null)",
                 json_string_value(json_object_get(c, "account_name")));
        assert_string_equal(stored, want);
        free(stored);
    }
    assert_true(n_expected >= 20);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters", NULL),
                     (long long)n_expected);
    json_decref(expected);

    /* OU paths, the mode the API left out, and an unknown future value kept verbatim */
    char *path = query_text("SELECT DISTINCT ou_path FROM egressscan.current_clusters "
                            "WHERE account_name = $1",
                            "acct01");
    assert_string_equal(path, "Root/Prod/Regulated");
    free(path);
    char *eff = query_text("SELECT coalesce(egress_mode,'NULL') || ' ' || egress_mode_effective "
                           "FROM egressscan.current_clusters WHERE cluster_name = $1",
                           "no-mode");
    assert_string_equal(eff, "NULL AWS_MANAGED");
    free(eff);
    char *future = query_text("SELECT egress_mode FROM egressscan.current_clusters "
                              "WHERE cluster_name = $1",
                              "future");
    assert_string_equal(future, "FUTURE_EGRESS_MODE");
    free(future);
    /* the busy region needed three ListClusters pages of two */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters "
                               "WHERE cluster_name LIKE 'busy-%' AND region = $1",
                               "eu-west-1"),
                     5);

    /* coverage: the denied account has one account-level row; every other target is ok */
    char *why = query_text("SELECT status || ' ' || region || ' ' || coalesce(error_code, '') "
                           "FROM egressscan.coverage WHERE account_id = $1",
                           denied);
    assert_string_equal(why, "assume_role_denied * AccessDenied");
    free(why);
    assert_int_equal(
        query_int("SELECT count(*) FROM egressscan.coverage WHERE status <> 'ok'", NULL), 1);
    assert_int_equal(
        query_int("SELECT count(*) FROM egressscan.coverage WHERE status = 'ok'", NULL),
        27 * 3); /* 26 usable members + the management account, 3 regions */
    char *st =
        query_text("SELECT status FROM egressscan.scans ORDER BY scan_id DESC LIMIT 1", NULL);
    assert_string_equal(st, "partial");
    free(st);
}

static void test_second_scan_without_change_adds_no_history(void **state)
{
    (void)state;
    long long before = query_int("SELECT count(*) FROM egressscan.cluster_history", NULL);
    assert_true(before >= 20);
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--no-progress", NULL), 3);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history", NULL), before);
}

static void test_mode_change_and_deletion_update_history(void **state)
{
    (void)state;
    const char *acct = account_id("acct01");
    /* busy-0 is AWS_MANAGED; busy-1 goes away */
    assert_int_equal(moto_change("--set-mode", acct, "eu-west-1", "busy-0", "CUSTOMER_ROUTED"), 0);
    assert_int_equal(moto_change("--delete", acct, "eu-west-1", "busy-1", NULL), 0);
    char arn0[128], arn1[128];
    snprintf(arn0, sizeof arn0, "arn:aws:eks:eu-west-1:%s:cluster/busy-0", acct);
    snprintf(arn1, sizeof arn1, "arn:aws:eks:eu-west-1:%s:cluster/busy-1", acct);
    long long before = query_int("SELECT count(*) FROM egressscan.cluster_history", NULL);
    long long open_before =
        query_int("SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL", NULL);

    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--no-progress", NULL), 3);

    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history", NULL),
                     before + 1);
    /* the changed cluster: one closed AWS_MANAGED interval, one open CUSTOMER_ROUTED */
    char *h = query_text("SELECT string_agg(egress_mode || ':' || (valid_to IS NULL)::text, ',' "
                         "ORDER BY valid_from) FROM egressscan.cluster_history "
                         "WHERE cluster_arn = $1",
                         arn0);
    assert_string_equal(h, "AWS_MANAGED:false,CUSTOMER_ROUTED:true");
    free(h);
    /* the deleted one: closed, and gone from current_clusters */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history "
                               "WHERE cluster_arn = $1 AND valid_to IS NULL",
                               arn1),
                     0);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters "
                               "WHERE cluster_arn = $1",
                               arn1),
                     0);
    /* open intervals: one closed by the change and one opened, one closed by the deletion */
    assert_int_equal(
        query_int("SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL", NULL),
        open_before - 1);
}

static void test_regions_all_uses_describe_regions(void **state)
{
    (void)state;
    char *out = NULL;
    int rc = cli_run(&fx.cli, &out, NULL, "scan", "--accounts", account_id("acct03"),
                     "--no-progress", NULL);
    if (rc != 0) {
        PGresult *r = PQexec(fx.db, "SELECT region, status, error_code, error_message FROM "
                                    "egressscan.coverage WHERE status <> 'ok'");
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(stderr, "not ok: %s %s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                    PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        PQclear(r);
        fail_msg("scan exited %d: %s", rc, out);
    }
    free(out);
    /* moto enables 38 regions; the targeted scan covered them all for its account (coverage
     * holds the whole fleet: the account's rows are this scan's latest word) */
    long long regions = query_int("SELECT count(*) FROM egressscan.coverage WHERE status = 'ok' "
                                  "AND account_id = $1",
                                  account_id("acct03"));
    assert_true(regions >= 17);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.coverage WHERE region = "
                               "'eu-west-1' AND account_id = $1",
                               account_id("acct03")),
                     1);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.scans WHERE scope = $1 AND "
                               "scan_id = (SELECT max(scan_id) FROM egressscan.scans)",
                               "targeted"),
                     1);
}

static void test_scps_and_org_tree_are_stored(void **state)
{
    (void)state;
    /* the first scan ran through Organizations: its SCP snapshot has both SCPs and targets */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.scan_scp WHERE scan_id = 1 AND "
                               "name IN ('regulated-routed', 'sandbox-ifexists')",
                               NULL),
                     2);
    char *content = query_text("SELECT content FROM egressscan.scan_scp WHERE scan_id = 1 AND "
                               "name = $1",
                               "regulated-routed");
    assert_non_null(strstr(content, "eks:controlPlaneEgressMode"));
    free(content);
    const char *regulated =
        json_string_value(json_object_get(json_object_get(fx.seed, "ous"), "Regulated"));
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.scan_scp_target t "
                               "JOIN egressscan.scan_scp p USING (scan_id, policy_id) "
                               "WHERE t.scan_id = 1 AND p.name = 'regulated-routed' "
                               "AND t.target_id = $1",
                               regulated),
                     1);
}

static void test_ou_subtree_and_exclusions(void **state)
{
    (void)state;
    const char *regulated =
        json_string_value(json_object_get(json_object_get(fx.seed, "ous"), "Regulated"));
    /* Regulated holds acct01, 06, 11, 16, 21 and the denied acct26 */
    int rc = cli_run(&fx.cli, NULL, NULL, "scan", "--ou", regulated, "--exclude-accounts",
                     account_id("acct01"), "--regions", REGIONS, "--no-progress", NULL);
    assert_int_equal(rc, 3);
    /* what this targeted scan tried: the subtree less the exclusion */
#define LAST_SCAN "scan_id = (SELECT max(scan_id) FROM egressscan.scans)"
    assert_int_equal(query_int("SELECT count(DISTINCT account_id) FROM egressscan.coverage "
                               "WHERE " LAST_SCAN,
                               NULL),
                     5);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.coverage WHERE account_id = $1 "
                               "AND " LAST_SCAN,
                               account_id("acct01")),
                     0);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.coverage WHERE account_id = $1 "
                               "AND " LAST_SCAN,
                               account_id("acct06")),
                     3);
#undef LAST_SCAN
}

static void test_metrics_file_and_json_logs(void **state)
{
    (void)state;
    char metrics[] = "/tmp/egressscan-metrics-XXXXXX";
    int fd = mkstemp(metrics);
    assert_true(fd >= 0);
    close(fd);
    char *err = NULL;
    int rc = cli_run(&fx.cli, NULL, &err, "scan", "--accounts", account_id("acct03"), "--regions",
                     REGIONS, "--metrics-file", metrics, "--log-format", "json", "--log-level",
                     "debug", NULL);
    assert_int_equal(rc, 0);
    /* every log line is one JSON object */
    int lines = 0;
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            fail_msg("not a JSON log line: %s", line);
        assert_non_null(json_object_get(j, "level"));
        json_decref(j);
        lines++;
    }
    assert_true(lines >= 3);
    free(err);
    FILE *f = fopen(metrics, "r");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(metrics);
    assert_non_null(strstr(text, "egressscan_scan_status{status=\"succeeded\"} 1\n"));
    assert_non_null(strstr(text, "egressscan_targets{status=\"ok\"} 3\n"));
    assert_non_null(strstr(text, "egressscan_clusters{mode=\"CUSTOMER_ISOLATED\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE egressscan_api_calls gauge"));
}

static void test_malformed_config_exits_2_and_writes_nothing(void **state)
{
    (void)state;
    char path[] = "/tmp/egressscan-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\n  \"regions\": \"all\",\n  \"concurrency\": ,\n}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    long long scans = query_int("SELECT count(*) FROM egressscan.scans", NULL);
    char *err = NULL;
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scan", "--config", path, NULL), 2);
    char where[64];
    snprintf(where, sizeof where, "%s:3:", path);
    if (!strstr(err, where))
        fail_msg("the error does not name file:line: %s", err);
    free(err);
    /* a valid document with a wrong type names the key's line and column */
    FILE *f = fopen(path, "w");
    fputs("{\n  \"regions\": \"all\",\n    \"concurrency\": \"many\"\n}\n", f);
    fclose(f);
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scan", "--config", path, NULL), 2);
    snprintf(where, sizeof where, "%s:3:5:", path);
    if (!strstr(err, where))
        fail_msg("the error does not name file:line:column: %s", err);
    free(err);
    unlink(path);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.scans", NULL), scans);
}

static void test_database_down_exits_4(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres", procs_free_port());
    char *err = NULL;
    assert_int_equal(
        cli_run(&fx.cli, NULL, &err, "scan", "--database-url", url, "--regions", REGIONS, NULL), 4);
    assert_non_null(strstr(err, "cannot connect to the database"));
    free(err);
}

static void test_killed_scan_is_marked_aborted_by_the_next(void **state)
{
    (void)state;
    long long last = query_int("SELECT coalesce(max(scan_id), 0) FROM egressscan.scans", NULL);
    char *argv[] = {(char *)fx.cli.bin, "scan",        "--regions", REGIONS,
                    "--no-progress",    "--log-level", "error",     NULL};
    pid_t pid = procs_spawn(argv, fx.cli.env);
    assert_true(pid > 0);
    char last_s[32];
    snprintf(last_s, sizeof last_s, "%lld", last);
    int running = 0;
    for (int i = 0; i < 400 && !running; i++) {
        running = query_int("SELECT count(*) FROM egressscan.scans WHERE scan_id > $1::bigint "
                            "AND status = 'running'",
                            last_s) == 1;
        if (!running) {
            struct timespec ts = {0, 25 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(running);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char *killed = query_text("SELECT status FROM egressscan.scans WHERE scan_id > $1::bigint "
                              "ORDER BY scan_id LIMIT 1",
                              last_s);
    assert_string_equal(killed, "running");
    free(killed);

    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--accounts", account_id("acct02"),
                             "--regions", "eu-west-1", "--no-progress", NULL),
                     0);
    killed = query_text("SELECT status FROM egressscan.scans WHERE scan_id > $1::bigint "
                        "ORDER BY scan_id LIMIT 1",
                        last_s);
    assert_string_equal(killed, "aborted");
    free(killed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_is_idempotent),
        cmocka_unit_test(test_scan_stores_exactly_the_clusters_moto_holds),
        cmocka_unit_test(test_second_scan_without_change_adds_no_history),
        cmocka_unit_test(test_mode_change_and_deletion_update_history),
        cmocka_unit_test(test_regions_all_uses_describe_regions),
        cmocka_unit_test(test_scps_and_org_tree_are_stored),
        cmocka_unit_test(test_ou_subtree_and_exclusions),
        cmocka_unit_test(test_metrics_file_and_json_logs),
        cmocka_unit_test(test_malformed_config_exits_2_and_writes_nothing),
        cmocka_unit_test(test_database_down_exits_4),
        cmocka_unit_test(test_killed_scan_is_marked_aborted_by_the_next),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
