/* test_hostile.c - member accounts that answer as attackers (SPEC section 4, issue 13): build/
 * fakeaws --hostile serves, for chosen accounts, a DescribeCluster naming another account's
 * cluster, one without an ARN, a name over 100 characters, a createdAt that is no time, an error
 * message cut mid-character by a byte-bounded copy, and a ListClusters that never ends. Each
 * scan (egressscan scan, real PostgreSQL) must end partial (exit 3) with the attacking targets
 * in error and every honest account stored exactly as the truth, its findings intact; a mixed
 * fleet of hundreds of accounts does the same under the usual AWS faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "common/utf8.h"
#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"

static struct {
    char tmp[64];
    struct pgtest pg;
    int n_databases;
} fx;

/* A migrated database of its own; its URL into url. */
static void new_database(const char *name, struct cli *c, const char *endpoint, char *url,
                         size_t cap)
{
    char dbname[64], sql[96];
    snprintf(dbname, sizeof dbname, "hostile_%s_%d", name, ++fx.n_databases);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname); /* test-only DDL */
    PGconn *admin = PQconnectdb(fx.pg.url);
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    PQclear(r);
    PQfinish(admin);
    snprintf(url, cap, "postgresql://postgres@127.0.0.1:%d/%s", fx.pg.port, dbname);
    cli_init(c, BASE_KEY, BASE_SECRET, endpoint, url);
    assert_int_equal(cli_run(c, NULL, NULL, "migrate", NULL), 0);
}

static PGresult *query(PGconn *db, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    return r;
}

static long query_long(PGconn *db, const char *sql, const char *param)
{
    PGresult *r = query(db, sql, param);
    assert_int_equal(PQntuples(r), 1);
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* One hostile account: its index in the fleet, what it does, and the code its attacked targets
 * must end with. */
struct attacker {
    int index;
    const char *kind;
    const char *code;
    int every_target; /* the attack hits targets without clusters too (listing attacks) */
};

/* "{id,id,...}" of the attackers, for = ANY($1::text[]). */
static void attacker_ids(json_t *truth, const struct attacker *at, size_t n, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(
            out + o, cap - o, "%s%s", i ? "," : "",
            jstr(json_array_get(json_object_get(truth, "accounts"), (size_t)at[i].index), "id"));
    snprintf(out + o, cap - o, "}");
}

static int is_attacker(const char *id, const char *ids)
{
    return strstr(ids, id) != NULL;
}

/* Stored clusters of every honest account against the truth's: rows that differ. */
static long diff_honest(PGconn *db, json_t *truth, const char *ids)
{
    PGresult *r = query(db,
                        "SELECT account_id || '/' || region || '/' || cluster_name || '=' || "
                        "coalesce(egress_mode, '(null)') || '@' || cluster_arn "
                        "FROM egressscan.current_clusters "
                        "WHERE NOT (account_id = ANY ($1::text[])) ORDER BY 1",
                        ids);
    json_t *want = json_object(); /* new: key -> 1 until seen */
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(truth, "clusters"), i, cl)
    {
        if (is_attacker(jstr(cl, "account_id"), ids))
            continue;
        json_t *mode = json_object_get(cl, "egress_mode");
        char key[600];
        snprintf(key, sizeof key, "%s/%s/%s=%s@%s", jstr(cl, "account_id"), jstr(cl, "region"),
                 jstr(cl, "name"), json_is_string(mode) ? json_string_value(mode) : "(null)",
                 jstr(cl, "arn"));
        json_object_set_new(want, key, json_integer(1));
    }
    long differ = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *key = PQgetvalue(r, k, 0);
        json_t *n = json_object_get(want, key);
        if (!n || json_integer_value(n) != 1) {
            fprintf(stderr, "  not in the truth (or twice): %s\n", key);
            differ++;
            continue;
        }
        json_object_set_new(want, key, json_integer(0));
    }
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        if (json_integer_value(v) != 0) {
            fprintf(stderr, "  missing: %s\n", key);
            differ++;
        }
    }
    json_decref(want);
    PQclear(r);
    return differ;
}

/* Clusters of account/region in the truth. */
static long truth_clusters(json_t *truth, const char *acct, const char *region)
{
    long n = 0;
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(truth, "clusters"), i, cl)
    {
        n += strcmp(jstr(cl, "account_id"), acct) == 0 && strcmp(jstr(cl, "region"), region) == 0;
    }
    return n;
}

/* Everything the attack may not change, after a scan that ended with rc. */
static void expect_contained(PGconn *db, json_t *truth, const struct attacker *at, size_t n_at,
                             int rc, const char *out)
{
    if (rc != 3)
        fail_msg("scan exited %d, expected 3 (partial):\n%.2000s", rc, out ? out : "");
    assert_int_equal(
        query_long(db, "SELECT count(*) FROM egressscan.scans WHERE status = 'partial'", NULL), 1);
    char ids[1024];
    attacker_ids(truth, at, n_at, ids, sizeof ids);

    /* every attacking target is error with the attack's code; its other targets are ok */
    long attacked = 0;
    for (size_t a = 0; a < n_at; a++) {
        const char *id =
            jstr(json_array_get(json_object_get(truth, "accounts"), (size_t)at[a].index), "id");
        PGresult *r = query(db,
                            "SELECT region, status, coalesce(error_code, ''), "
                            "coalesce(error_message, '') FROM egressscan.coverage "
                            "WHERE account_id = $1 ORDER BY region",
                            id);
        assert_true(PQntuples(r) > 0);
        for (int i = 0; i < PQntuples(r); i++) {
            const char *region = PQgetvalue(r, i, 0), *status = PQgetvalue(r, i, 1);
            const char *msg = PQgetvalue(r, i, 3);
            assert_true(utf8_valid(msg, strlen(msg)));
            if (at[a].every_target || truth_clusters(truth, id, region) > 0) {
                if (strcmp(status, "error") != 0 || strcmp(PQgetvalue(r, i, 2), at[a].code) != 0)
                    fail_msg("%s (%s) %s: %s %s, expected error %s", id, at[a].kind, region, status,
                             PQgetvalue(r, i, 2), at[a].code);
                attacked++;
            } else {
                assert_string_equal(status, "ok");
            }
        }
        PQclear(r);
        /* nothing the attacker said about its clusters was stored */
        assert_int_equal(
            query_long(db, "SELECT count(*) FROM egressscan.cluster WHERE account_id = $1", id), 0);
    }
    assert_true(attacked > 0);

    /* every honest target ok, every honest cluster exactly as the truth (mode, account, ARN) */
    assert_int_equal(query_long(db,
                                "SELECT count(*) FROM egressscan.coverage WHERE status <> 'ok' "
                                "AND status <> 'suspended' AND NOT (account_id = ANY ($1::text[]))",
                                ids),
                     0);
    long d = diff_honest(db, truth, ids);
    if (d != 0)
        fail_msg("%ld honest clusters differ from the truth", d);
    /* no cluster is recorded under an account its ARN does not name */
    assert_int_equal(
        query_long(db,
                   "SELECT count(*) FROM egressscan.cluster WHERE cluster_arn NOT LIKE "
                   "'%:' || account_id || ':cluster/' || cluster_name",
                   NULL),
        0);
    /* every honest AWS_MANAGED cluster (the foreign_arn attacker's victims among them) keeps its
     * noncompliant finding under its own account */
    size_t i;
    json_t *cl;
    long want = 0;
    json_array_foreach(json_object_get(truth, "clusters"), i, cl)
    {
        if (is_attacker(jstr(cl, "account_id"), ids) ||
            strcmp(jstr(cl, "egress_mode"), "AWS_MANAGED") != 0)
            continue;
        want++;
    }
    long got = query_long(db,
                          "SELECT count(*) FROM egressscan.current_drift d "
                          "JOIN egressscan.current_clusters c ON c.cluster_arn = d.cluster_arn "
                          "AND c.account_id = d.account_id WHERE d.kind = 'noncompliant_cluster' "
                          "AND c.egress_mode = 'AWS_MANAGED' "
                          "AND NOT (d.account_id = ANY ($1::text[]))",
                          ids);
    assert_int_equal(got, want);
    fprintf(stderr,
            "  %ld attacked targets in error; honest clusters equal to the truth, %ld "
            "AWS_MANAGED findings kept\n",
            attacked, want);
}

/* The declared policy: CUSTOMER_ROUTED only, everywhere under the root. */
static void write_policy(json_t *truth, char *path, size_t cap)
{
    snprintf(path, cap, "%s/policy-%d.json", fx.tmp, fx.n_databases);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"version\":1,\"rules\":[{\"id\":\"org\",\"ou\":\"%s\","
            "\"allowed_modes\":[\"CUSTOMER_ROUTED\"]}]}\n",
            jstr(json_object_get(truth, "organization"), "root_id"));
    fclose(f);
}

static void run_attacks(const char *name, const struct attacker *at, size_t n_at,
                        const char *const *fleet_args, const char *faults, int max_attempts)
{
    char spec[256];
    size_t o = 0;
    for (size_t i = 0; i < n_at; i++)
        o += (size_t)snprintf(spec + o, sizeof spec - o, "%s%d:%s", i ? "," : "", at[i].index,
                              at[i].kind);
    const char *args[32];
    size_t k = 0;
    for (; fleet_args[k]; k++)
        args[k] = fleet_args[k];
    args[k++] = "--hostile";
    args[k++] = spec;
    if (faults) {
        args[k++] = "--faults";
        args[k++] = faults;
    }
    args[k] = NULL;
    struct fakeproc f;
    if (fakeproc_start(&f, fx.tmp, name, 0, args) < 0)
        fail_msg("fakeaws %s did not start", name);
    struct cli c;
    char url[256], policy[320], attempts[8];
    new_database(name, &c, f.url, url, sizeof url);
    write_policy(f.truth, policy, sizeof policy);
    snprintf(attempts, sizeof attempts, "%d", max_attempts);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", attempts);
    cli_setenv(&c, "EGRESSSCAN_HTTP_TIMEOUT_MS", "2000");
    char *out = NULL;
    int rc = cli_run(&c, &out, NULL, "scan", "--policy", policy, "--log-format", "json",
                     "--log-level", "error", "--no-progress", NULL);
    PGconn *db = PQconnectdb(url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    expect_contained(db, f.truth, at, n_at, rc, out);
    fprintf(stderr, "  %s: %zu accounts, %zu clusters in the truth; attackers %s\n", name,
            json_array_size(json_object_get(f.truth, "accounts")),
            json_array_size(json_object_get(f.truth, "clusters")), spec);
    PQfinish(db);
    free(out);
    assert_int_equal(fakeproc_stop(&f), 0);
}

/* A small fleet: 10 accounts, 2 regions, ~2 clusters per target. */
static const char *const small_fleet[] = {"--accounts",
                                          "10",
                                          "--regions",
                                          "2",
                                          "--clusters-per-account-region-mean",
                                          "2",
                                          "--seed",
                                          "21",
                                          "--latency-ms",
                                          "1",
                                          NULL};

/* 1. Another account's cluster is neither overwritten nor hidden. */
static void test_foreign_arn(void **state)
{
    (void)state;
    const struct attacker at[] = {{3, "foreign_arn", "MalformedResponse", 0}};
    run_attacks("foreign_arn", at, 1, small_fleet, NULL, 3);
}

/* 2. A malformed answer fails its target, not the scan. */
static void test_no_arn(void **state)
{
    (void)state;
    const struct attacker at[] = {{4, "no_arn", "MalformedResponse", 0}};
    run_attacks("no_arn", at, 1, small_fleet, NULL, 3);
}

static void test_long_name(void **state)
{
    (void)state;
    const struct attacker at[] = {{5, "long_name", "MalformedResponse", 1}};
    run_attacks("long_name", at, 1, small_fleet, NULL, 3);
}

static void test_bad_created(void **state)
{
    (void)state;
    const struct attacker at[] = {{6, "bad_created", "MalformedResponse", 0}};
    run_attacks("bad_created", at, 1, small_fleet, NULL, 3);
}

/* An AWS error message with "é" at bytes 300-301, where the error decoder cuts it. */
static void test_error_message_cut(void **state)
{
    (void)state;
    const struct attacker at[] = {{7, "error_utf8", "InvalidRequestException", 1}};
    run_attacks("error_utf8", at, 1, small_fleet, NULL, 3);
}

/* 3. A listing that repeats its token ends (on the old code this scan never finished). */
static void test_loop_token(void **state)
{
    (void)state;
    const struct attacker at[] = {{8, "loop_token", "MalformedResponse", 1}};
    run_attacks("loop_token", at, 1, small_fleet, NULL, 3);
}

/* Acceptance: hundreds of accounts, six of them hostile in different ways at once, under the
 * fault mix of test_faults (throttling, 5xx, resets, truncated bodies, slow answers): every
 * honest target equals the truth. 8 attempts: an honest request fails only when all 8 draw a
 * fault (0.095^8 per request, ~1,400 requests). */
static void test_mixed_fleet(void **state)
{
    (void)state;
    const char *const fleet[] = {"--accounts",
                                 "300",
                                 "--regions",
                                 "2",
                                 "--clusters-per-account-region-mean",
                                 "0.7",
                                 "--seed",
                                 "29",
                                 "--latency-ms",
                                 "2",
                                 "--verify-sigv4",
                                 NULL};
    const struct attacker at[] = {
        {17, "foreign_arn", "MalformedResponse", 0},
        {58, "no_arn", "MalformedResponse", 0},
        {101, "long_name", "MalformedResponse", 1},
        {150, "bad_created", "MalformedResponse", 0},
        {203, "error_utf8", "InvalidRequestException", 1},
        {255, "loop_token", "MalformedResponse", 1},
    };
    run_attacks("mixed", at, sizeof at / sizeof at[0], fleet,
                "throttle=0.05,5xx=0.02,reset=0.01,truncate=0.01,slow=0.005,slow_ms=5000", 8);
}

static int group_setup(void **state)
{
    (void)state;
    if (!fakeproc_bin())
        return -1;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/egressscan-hostile-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    return pgtest_start(&fx.pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pgtest_stop(&fx.pg);
    char *rm[] = {"rm", "-rf", fx.tmp, NULL};
    procs_run(rm, NULL, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_arn),       cmocka_unit_test(test_no_arn),
        cmocka_unit_test(test_long_name),         cmocka_unit_test(test_bad_created),
        cmocka_unit_test(test_error_message_cut), cmocka_unit_test(test_loop_token),
        cmocka_unit_test(test_mixed_fleet),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
