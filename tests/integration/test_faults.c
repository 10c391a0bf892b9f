/* test_faults.c - egressscan run as a user would (migrate, scan --metrics-file --log-format json)
 * against build/fakeaws under AWS faults, with a real PostgreSQL: mixed faults (throttling, 5xx,
 * resets, truncated bodies, slow answers) end in a complete, exact scan whose counts agree with
 * what the fake injected; one hot account's throttling stays with that account; credentials
 * that expire mid-scan are refreshed; no secret reaches the output or the database; a
 * self-signed certificate is refused unless AWS_CA_BUNDLE names it; on a terminal (a
 * pseudo-terminal) the progress line shows targets done / total once discovery has ended. No
 * assertion on time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pty.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "common/buf.h"
#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"

static struct {
    char tmp[64];
    struct pgtest pg;
    int n_databases;
    char cert[320], key[320];
} fx;

/* ---- helpers: databases, files, numbers in texts ---- */

/* A migrated database of its own for one scenario; its URL into url. */
static void new_database(const char *name, struct cli *c, const char *endpoint, char *url,
                         size_t cap)
{
    char dbname[64], sql[96];
    snprintf(dbname, sizeof dbname, "faults_%s_%d", name, ++fx.n_databases);
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

static PGconn *db_open(const char *url)
{
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("connect %s: %s", url, PQerrorMessage(db));
    return db;
}

/* A query's rows (fails the test on an error). The caller PQclears. */
static PGresult *query(PGconn *db, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
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

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    assert_int_equal(buf_append(&b, "", 1), 0);
    return buf_steal(&b);
}

/* The value of metric `name` (a line "name VALUE") in a Prometheus text file. */
static long metric(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return atol(p + nl + 1);
    }
    fail_msg("metric %s not in the metrics file", name);
    return -1;
}

struct summary {
    long long scan_id;
    long api_calls, retried, throttled;
};

/* "scan N STATUS in T s" ... "api calls N (R retried, T throttled)" from scan's stdout. */
static void parse_summary(const char *out, struct summary *s)
{
    assert_non_null(out);
    assert_int_equal(sscanf(out, "scan %lld ", &s->scan_id), 1);
    const char *p = strstr(out, "api calls ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "api calls %ld (%ld retried, %ld throttled)", &s->api_calls,
                            &s->retried, &s->throttled),
                     3);
}

/* The largest "(attempt N)" of the engine's debug lines: no request made more than that. */
static int max_attempt_logged(const char *log, long *lines)
{
    int max = 0;
    *lines = 0;
    for (const char *p = log; (p = strstr(p, "(attempt ")) != NULL; p += 9) {
        int n = atoi(p + 9);
        if (n > max)
            max = n;
        (*lines)++;
    }
    return max;
}

/* Active accounts of the truth. */
static long active_accounts(json_t *truth)
{
    long n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(truth, "accounts"), i, a)
    {
        n += strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") == 0;
    }
    return n;
}

/* Coverage rows of the fleet's scanned targets (a suspended account's one row is not a target):
 * how many, how many ok, and that every other one has an explicit status with an error code. */
static long count_suspended(PGconn *db)
{
    PGresult *r = query(db,
                        "SELECT count(*) FROM egressscan.coverage WHERE status = 'suspended' "
                        "AND region = '*' AND error_code IS NULL",
                        NULL);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static long coverage_ok(PGconn *db, long *total)
{
    PGresult *r = query(db,
                        "SELECT account_id, region, status, error_code, error_message "
                        "FROM egressscan.coverage WHERE status <> 'suspended' "
                        "ORDER BY account_id, region",
                        NULL);
    long ok = 0;
    *total = PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 2), "ok") == 0) {
            ok++;
            assert_true(PQgetisnull(r, i, 3));
            continue;
        }
        fprintf(stderr, "  not ok: %s %s %s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
        assert_false(PQgetisnull(r, i, 3));
        assert_true(strlen(PQgetvalue(r, i, 3)) > 0);
    }
    PQclear(r);
    return ok;
}

/* The scans view row of scan_id agrees with the summary. */
static void expect_scans_row(PGconn *db, const struct summary *s, const char *status)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", s->scan_id);
    PGresult *r = query(db,
                        "SELECT status, api_calls, throttled, retries FROM egressscan.scans "
                        "WHERE scan_id = $1::bigint",
                        id);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), status);
    assert_int_equal(atol(PQgetvalue(r, 0, 1)), s->api_calls);
    assert_int_equal(atol(PQgetvalue(r, 0, 2)), s->throttled);
    assert_int_equal(atol(PQgetvalue(r, 0, 3)), s->retried);
    PQclear(r);
}

static void expect_same_as_truth(const struct fakeproc *f, const char *url)
{
    char *diff = NULL;
    long d = fakeproc_diff_db(f, url, &diff);
    if (d != 0)
        fail_msg("stored clusters differ from the truth (%ld):\n%s", d, diff ? diff : "");
    free(diff);
}

/* AWS requests fakeaws answered: the sum of its operation counters. */
static long fake_requests(json_t *stats)
{
    long n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(stats, "operations"), k, v)
    {
        n += (long)json_integer_value(v);
    }
    return n;
}

static void start_fake(struct fakeproc *f, const char *name, int tls, const char *const *args)
{
    if (fakeproc_start(f, fx.tmp, name, tls, args) < 0)
        fail_msg("fakeaws %s did not start", name);
    if (tls)
        snprintf(f->ca_file, sizeof f->ca_file, "%s", fx.cert);
}

/* ---- 1. mixed faults ---- */

/* The fault rates of the scenario: every attempt draws at most one fault, so an attempt fails
 * with probability P = 0.05 + 0.02 + 0.01 + 0.01 + 0.005 = 0.095, and a request fails only when
 * all of its MAX_ATTEMPTS attempts do: 0.095^8 = 6.6e-9. The fleet makes about 1,800 requests,
 * so the scan ends with every target ok with probability 1 - 1.2e-5: the test asserts it.
 * EGRESSSCAN_HTTP_TIMEOUT_MS (2 s) is below slow_ms (5 s): a slow answer is a timeout, and
 * no answer of the fake (5 ms) comes anywhere near it on a loaded machine. */
#define MIXED_FAULTS "throttle=0.05,5xx=0.02,reset=0.01,truncate=0.01,slow=0.005,slow_ms=5000"
#define MIXED_MAX_ATTEMPTS 8

static void test_mixed_faults(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *args[] = {"--accounts",
                          "200",
                          "--regions",
                          "3",
                          "--clusters-per-account-region-mean",
                          "1",
                          "--seed",
                          "7",
                          "--latency-ms",
                          "5",
                          "--verify-sigv4",
                          "--faults",
                          MIXED_FAULTS,
                          NULL};
    start_fake(&f, "mixed", 0, args);
    struct cli c;
    char url[256], metrics_path[320], attempts[8];
    new_database("mixed", &c, f.url, url, sizeof url);
    snprintf(attempts, sizeof attempts, "%d", MIXED_MAX_ATTEMPTS);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", attempts);
    cli_setenv(&c, "EGRESSSCAN_HTTP_TIMEOUT_MS", "2000");
    snprintf(metrics_path, sizeof metrics_path, "%s/mixed.prom", fx.tmp);

    char *out = NULL, *err = NULL;
    int rc = cli_run(&c, &out, &err, "scan", "--metrics-file", metrics_path, "--log-format", "json",
                     "--log-level", "debug", "--no-progress", NULL);
    json_t *stats = fakeproc_stats(&f, 0);
    assert_non_null(stats);
    long faults_throttle = fakeproc_stat(stats, "faults", "throttle");
    long faults_5xx = fakeproc_stat(stats, "faults", "5xx");
    long faults_reset = fakeproc_stat(stats, "faults", "reset");
    long faults_truncate = fakeproc_stat(stats, "faults", "truncate");
    long faults_slow = fakeproc_stat(stats, "faults", "slow");
    long faults = faults_throttle + faults_5xx + faults_reset + faults_truncate + faults_slow;
    long served = fake_requests(stats);
    fprintf(stderr,
            "  mixed: %ld AWS requests served; faults: %ld throttle, %ld 5xx, %ld reset, "
            "%ld truncate, %ld slow\n",
            served, faults_throttle, faults_5xx, faults_reset, faults_truncate, faults_slow);
    /* the fault mix really happened (each kind is expected 9 to 90 times) */
    assert_true(faults_throttle > 0 && faults_5xx > 0 && faults_reset > 0 && faults_truncate > 0 &&
                faults_slow > 0);
    assert_int_equal(fakeproc_stat(stats, "errors", "signature"), 0);

    /* the scan completed, every target ok, and stored exactly the truth */
    if (rc != 0)
        fail_msg("scan exited %d:\n%.3000s", rc, out ? out : "");
    PGconn *db = db_open(url);
    long total = 0, ok = coverage_ok(db, &total);
    assert_int_equal(total, active_accounts(f.truth) * 3);
    /* and each suspended account is one row, region '*' */
    assert_int_equal(count_suspended(db),
                     (long)json_array_size(json_object_get(f.truth, "accounts")) -
                         active_accounts(f.truth));
    assert_int_equal(ok, total);
    expect_same_as_truth(&f, url);
    fprintf(stderr, "  mixed: %ld targets, all ok; %zu clusters stored, equal to the truth\n",
            total, json_array_size(json_object_get(f.truth, "clusters")));

    /* the summary, the metrics file and the scans view tell the same story */
    struct summary s;
    parse_summary(out, &s);
    char *m = read_file(metrics_path);
    assert_int_equal(metric(m, "egressscan_api_calls"), s.api_calls);
    assert_int_equal(metric(m, "egressscan_api_retries"), s.retried);
    assert_int_equal(metric(m, "egressscan_api_throttled"), s.throttled);
    assert_int_equal(metric(m, "egressscan_targets{status=\"ok\"}"), total);
    expect_scans_row(db, &s, "succeeded");

    /* ... and the fake's: every throttle it injected was seen as one (none of them is hidden,
     * nothing else is a throttle) */
    assert_int_equal(s.throttled, faults_throttle);
    /* every attempt egressscan made reached the fake; the fake saw more only where curl itself
     * sent a request again on a fresh connection after a reset on a reused one */
    assert_true(s.api_calls <= served);
    assert_true(served - s.api_calls <= faults_reset);
    /* every failed attempt was a fault, and every fault that egressscan saw was retried: all
     * requests ended ok. Throttles, 5xx, truncated bodies and slow answers (timeouts) always
     * show; a reset shows unless curl resent it (above). */
    assert_true(s.retried <= faults);
    assert_true(s.retried >= faults_throttle + faults_5xx + faults_truncate + faults_slow);
    assert_int_equal(s.retried, faults - (served - s.api_calls));

    /* the retry budget: no request over MAX_ATTEMPTS, retries within (MAX - 1) x requests, and
     * no retry was refused for lack of retry quota (its accounting is unit-tested) */
    long lines = 0;
    int max_attempt = max_attempt_logged(err, &lines);
    assert_int_equal(lines, s.api_calls); /* one debug line per attempt */
    assert_true(max_attempt >= 2);
    assert_true(max_attempt <= MIXED_MAX_ATTEMPTS);
    long requests = s.api_calls - s.retried - metric(m, "egressscan_api_credential_refreshes");
    assert_true(s.retried <= (MIXED_MAX_ATTEMPTS - 1) * requests);
    assert_int_equal(metric(m, "egressscan_api_retry_quota_refusals"), 0);
    assert_int_equal(metric(m, "egressscan_api_credential_refreshes"), 0);
    fprintf(stderr,
            "  mixed: %ld calls for %ld requests, %ld retried, %ld throttled, max %d "
            "attempts\n",
            s.api_calls, requests, s.retried, s.throttled, max_attempt);

    free(m);
    PQfinish(db);
    json_decref(stats);
    free(out);
    free(err);
    assert_int_equal(fakeproc_stop(&f), 0);
}

/* ---- 2. one hot account ---- */

/* The account with the most clusters (not the management account): the most requests. */
static const char *busiest_account(json_t *truth)
{
    const char *best = NULL;
    size_t best_n = 0, i, j;
    json_t *a, *cl;
    json_array_foreach(json_object_get(truth, "accounts"), i, a)
    {
        if (json_is_true(json_object_get(a, "is_management")) ||
            strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") != 0)
            continue;
        const char *id = json_string_value(json_object_get(a, "id"));
        size_t n = 0;
        json_array_foreach(json_object_get(truth, "clusters"), j, cl)
        {
            n += strcmp(json_string_value(json_object_get(cl, "account_id")), id) == 0;
        }
        if (n > best_n) {
            best = id;
            best_n = n;
        }
    }
    return best;
}

/* Stored clusters of every account but `except` against the truth's: rows that differ. */
static long diff_except(PGconn *db, json_t *truth, const char *except)
{
    PGresult *r = query(db,
                        "SELECT account_id || '/' || region || '/' || cluster_name || '=' || "
                        "coalesce(egress_mode, '(null)') FROM egressscan.current_clusters "
                        "WHERE account_id <> $1 ORDER BY 1",
                        except);
    json_t *want = json_object(); /* new: key -> count */
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(truth, "clusters"), i, cl)
    {
        const char *acct = json_string_value(json_object_get(cl, "account_id"));
        if (strcmp(acct, except) == 0)
            continue;
        json_t *mode = json_object_get(cl, "egress_mode");
        char key[512];
        snprintf(key, sizeof key, "%s/%s/%s=%s", acct,
                 json_string_value(json_object_get(cl, "region")),
                 json_string_value(json_object_get(cl, "name")),
                 json_is_string(mode) ? json_string_value(mode) : "(null)");
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

static void hot_scan(const char *name, const char *const *fake_args, const char *hot, int adaptive,
                     json_t **acct_stats, char *url, size_t url_cap, json_t **truth)
{
    struct fakeproc f;
    start_fake(&f, name, 0, fake_args);
    struct cli c;
    new_database(name, &c, f.url, url, url_cap);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", "3");
    if (adaptive)
        cli_setenv(&c, "AWS_RETRY_MODE", "adaptive");
    char *out = NULL;
    /* one cluster a page: more requests for the hot account, so that it is throttled (at 0.3
     * of ~30 requests, none is throttled with probability 2e-5) */
    int rc = cli_run(&c, &out, NULL, "scan", "--page-size", "1", "--log-format", "json",
                     "--no-progress", NULL);
    /* only the hot account may end throttled (a request throttled on all 3 attempts) */
    assert_true(rc == 0 || (hot && rc == 3));
    if (out && strstr(out, "api calls "))
        fprintf(stderr, "  %s: %s", name, strstr(out, "api calls "));
    free(out);
    *acct_stats = fakeproc_stats(&f, 1);
    assert_non_null(*acct_stats);
    *truth = json_incref(f.truth);
    assert_int_equal(fakeproc_stop(&f), 0);
}

static void test_hot_account(void **state)
{
    (void)state;
    /* the fleet once without faults, to learn the hot account and every account's requests */
    const char *fleet[] = {"--accounts",
                           "60",
                           "--regions",
                           "3",
                           "--clusters-per-account-region-mean",
                           "2",
                           "--seed",
                           "11",
                           "--latency-ms",
                           "10",
                           "--verify-sigv4",
                           NULL,
                           NULL,
                           NULL};
    json_t *clean = NULL, *truth = NULL;
    char clean_url[256];
    hot_scan("clean", fleet, NULL, 0, &clean, clean_url, sizeof clean_url, &truth);
    const char *hot = busiest_account(truth);
    assert_non_null(hot);
    char spec[64];
    snprintf(spec, sizeof spec, "account=%s:throttle=0.3", hot);
    fleet[11] = "--faults";
    fleet[12] = spec;
    json_t *faulted = NULL, *truth2 = NULL;
    char url[256];
    hot_scan("hot", fleet, hot, 1, &faulted, url, sizeof url, &truth2);
    assert_true(json_equal(truth, truth2)); /* the same fleet */

    /* every target of the other accounts ok, and their clusters exactly the truth's */
    PGconn *db = db_open(url);
    PGresult *r =
        query(db, "SELECT account_id, region, status, error_code FROM egressscan.coverage", NULL);
    long hot_targets = 0, hot_throttled = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *acct = PQgetvalue(r, i, 0), *status = PQgetvalue(r, i, 2);
        if (strcmp(status, "suspended") == 0 && strcmp(PQgetvalue(r, i, 1), "*") == 0)
            continue; /* a suspended account: one row, not scanned, not a failure */
        if (strcmp(acct, hot) != 0) {
            if (strcmp(status, "ok") != 0)
                fail_msg("%s %s: %s (%s)", acct, PQgetvalue(r, i, 1), status, PQgetvalue(r, i, 3));
            continue;
        }
        hot_targets++;
        if (strcmp(status, "ok") != 0) {
            /* the hot account may end throttled: said so, with the code */
            assert_true(strcmp(status, "throttled") == 0);
            assert_false(PQgetisnull(r, i, 3));
            hot_throttled++;
        }
    }
    PQclear(r);
    assert_true(hot_targets >= 1);
    assert_int_equal(query_long(db,
                                "SELECT count(*) FROM egressscan.coverage WHERE status <> "
                                "'suspended'",
                                NULL),
                     active_accounts(truth) * 3 - (hot_throttled && hot_targets == 1 ? 2 : 0));
    assert_int_equal(diff_except(db, truth, hot), 0);
    PQfinish(db);

    /* the throttling stayed with that account: the fake throttled it and no other, and every
     * other account needed exactly the requests of the fault-free scan */
    json_t *ca = json_object_get(clean, "accounts"), *fa = json_object_get(faulted, "accounts");
    assert_int_equal(json_object_size(ca), json_object_size(fa));
    const char *id;
    json_t *v;
    long others = 0;
    json_object_foreach(fa, id, v)
    {
        long req = (long)json_integer_value(json_object_get(v, "requests"));
        long thr = (long)json_integer_value(json_object_get(v, "throttle"));
        long clean_req =
            (long)json_integer_value(json_object_get(json_object_get(ca, id), "requests"));
        if (strcmp(id, hot) == 0) {
            fprintf(stderr, "  hot account %s: %ld requests (%ld without faults), %ld throttled\n",
                    id, req, clean_req, thr);
            assert_true(thr > 0);
            assert_int_equal(thr, fakeproc_stat(faulted, "faults", "throttle"));
            /* each throttled request was sent once more, nothing else changed (unless a request
             * was throttled on every attempt: then the rest of its target was not asked for) */
            if (hot_throttled == 0)
                assert_int_equal(req, clean_req + thr);
            continue;
        }
        assert_int_equal(thr, 0);
        if (req != clean_req)
            fail_msg("account %s: %ld requests, %ld without the hot account", id, req, clean_req);
        others++;
    }
    assert_true(others >= 50);
    json_decref(clean);
    json_decref(faulted);
    json_decref(truth);
    json_decref(truth2);
}

/* ---- 3. credentials that expire mid-scan ---- */

static void test_credentials_expire_mid_scan(void **state)
{
    (void)state;
    /* 3 s credentials; 100 ms answers, one cluster per ListClusters page and 4 requests in
     * flight make the scan last several lifetimes, and an account's targets longer than one */
    struct fakeproc f;
    const char *args[] = {"--accounts",
                          "12",
                          "--regions",
                          "2",
                          "--clusters-per-account-region-mean",
                          "7",
                          "--seed",
                          "13",
                          "--latency-ms",
                          "100",
                          "--credential-lifetime-s",
                          "3",
                          "--verify-sigv4",
                          NULL};
    start_fake(&f, "expiry", 0, args);
    struct cli c;
    char url[256], metrics_path[320];
    new_database("expiry", &c, f.url, url, sizeof url);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", "3");
    snprintf(metrics_path, sizeof metrics_path, "%s/expiry.prom", fx.tmp);
    char *out = NULL;
    int rc = cli_run(&c, &out, NULL, "scan", "--metrics-file", metrics_path, "--page-size", "1",
                     "--concurrency", "4", "--log-format", "json", "--no-progress", NULL);
    json_t *stats = fakeproc_stats(&f, 0);
    assert_non_null(stats);
    long assume = fakeproc_stat(stats, "operations", "AssumeRole");
    long expired = fakeproc_stat(stats, "errors", "expired_token");
    long accounts = active_accounts(f.truth);
    char *m = read_file(metrics_path);
    long seen_expired = metric(m, "egressscan_api_expired_credentials");
    long refreshes = metric(m, "egressscan_api_credential_refreshes");
    fprintf(stderr,
            "  expiry: %ld active accounts, %ld AssumeRole, %ld requests refused as expired, "
            "%ld sent again after a refresh\n",
            accounts, assume, expired, refreshes);
    if (rc != 0)
        fail_msg("scan exited %d:\n%.3000s", rc, out ? out : "");
    fprintf(stderr, "  expiry: %.*s", (int)strcspn(out, "\n") + 1, out);
    /* no target failed for it, and the stored clusters are the truth */
    PGconn *db = db_open(url);
    long total = 0, ok = coverage_ok(db, &total);
    assert_int_equal(ok, total);
    assert_int_equal(total, accounts * 2);
    expect_same_as_truth(&f, url);
    /* credentials were refreshed mid-scan: more AssumeRole calls than accounts */
    assert_true(assume > accounts);
    /* every request refused as expired was seen as such, refreshed once and sent again; since
     * every target ended ok, each of them then succeeded */
    assert_int_equal(seen_expired, expired);
    assert_int_equal(refreshes, expired);
    assert_int_equal(fakeproc_stat(stats, "errors", "invalid_token"), 0);
    assert_int_equal(fakeproc_stat(stats, "errors", "signature"), 0);
    free(m);
    PQfinish(db);
    json_decref(stats);
    free(out);
    assert_int_equal(fakeproc_stop(&f), 0);
}

/* ---- 4. secrets: never in the output, never in the database ---- */

#define SECRET_WINDOW 16 /* any 16 characters of a secret or token count as a leak */

struct needle {
    uint64_t hash;
    const char *src; /* the secret it is part of (owned by the needles' strings) */
    size_t off;
};

struct needles {
    struct needle *v;
    size_t n, cap;
    char **strs;
    size_t n_strs;
};

static uint64_t window_hash(const char *p)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < SECRET_WINDOW; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static int cmp_needle(const void *a, const void *b)
{
    uint64_t x = ((const struct needle *)a)->hash, y = ((const struct needle *)b)->hash;
    return x < y ? -1 : x > y;
}

/* Adds every window of secret (copied). */
static void needles_add(struct needles *nd, const char *secret)
{
    size_t len = strlen(secret);
    assert_true(len >= SECRET_WINDOW);
    char *s = strdup(secret);
    assert_non_null(s);
    nd->strs = realloc(nd->strs, (nd->n_strs + 1) * sizeof *nd->strs);
    assert_non_null(nd->strs);
    nd->strs[nd->n_strs++] = s;
    for (size_t i = 0; i + SECRET_WINDOW <= len; i++) {
        if (nd->n == nd->cap) {
            nd->cap = nd->cap ? nd->cap * 2 : 4096;
            nd->v = realloc(nd->v, nd->cap * sizeof *nd->v);
            assert_non_null(nd->v);
        }
        nd->v[nd->n++] = (struct needle){window_hash(s + i), s, i};
    }
}

static void needles_ready(struct needles *nd)
{
    qsort(nd->v, nd->n, sizeof *nd->v, cmp_needle);
}

static void needles_free(struct needles *nd)
{
    for (size_t i = 0; i < nd->n_strs; i++)
        free(nd->strs[i]);
    free(nd->strs);
    free(nd->v);
}

/* Where in hay (what: for the message) a piece of a secret occurs: the count of hits (the
 * first few printed). */
static long leaks_in(const struct needles *nd, const char *hay, size_t len, const char *what)
{
    long hits = 0;
    for (size_t i = 0; i + SECRET_WINDOW <= len; i++) {
        struct needle key = {window_hash(hay + i), NULL, 0};
        const struct needle *n = bsearch(&key, nd->v, nd->n, sizeof *nd->v, cmp_needle);
        if (!n || memcmp(n->src + n->off, hay + i, SECRET_WINDOW) != 0)
            continue;
        if (hits++ < 3)
            fprintf(stderr, "  secret found in %s at %zu: ...%.40s...\n", what, i, hay + i);
        i += SECRET_WINDOW - 1;
    }
    return hits;
}

/* Every row of every table, view and materialized view of schema egressscan, as text. */
static long leaks_in_database(const struct needles *nd, const char *url, long *relations,
                              long *bytes)
{
    PGconn *db = db_open(url);
    PGresult *r = query(db,
                        "SELECT c.relname, pg_catalog.query_to_xml(pg_catalog.format("
                        "'SELECT t::text AS row FROM %I.%I t', n.nspname, c.relname), "
                        "false, false, '')::text "
                        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                        "ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'egressscan' AND c.relkind IN ('r', 'p', 'v', 'm') "
                        "ORDER BY 1",
                        NULL);
    long hits = 0;
    *relations = PQntuples(r);
    *bytes = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        char what[128];
        snprintf(what, sizeof what, "egressscan.%s", PQgetvalue(r, i, 0));
        *bytes += PQgetlength(r, i, 1);
        hits += leaks_in(nd, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), what);
    }
    PQclear(r);
    PQfinish(db);
    return hits;
}

static void test_no_secret_in_output_or_database(void **state)
{
    (void)state;
    char creds_log[320];
    snprintf(creds_log, sizeof creds_log, "%s/issued-credentials.txt", fx.tmp);
    /* short credentials, so that refreshed ones (and expired answers) are part of it too */
    struct fakeproc f;
    const char *args[] = {"--accounts",
                          "12",
                          "--regions",
                          "2",
                          "--clusters-per-account-region-mean",
                          "2",
                          "--seed",
                          "17",
                          "--latency-ms",
                          "60",
                          "--credential-lifetime-s",
                          "2",
                          "--verify-sigv4",
                          "--faults",
                          "throttle=0.05,5xx=0.03",
                          "--credentials-log",
                          creds_log,
                          NULL};
    start_fake(&f, "secrets", 0, args);
    struct cli c;
    char url[256], metrics_path[320];
    new_database("secrets", &c, f.url, url, sizeof url);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", "6");
    snprintf(metrics_path, sizeof metrics_path, "%s/secrets.prom", fx.tmp);
    char *out = NULL, *err = NULL;
    int rc = cli_run(&c, &out, &err, "scan", "--metrics-file", metrics_path, "--log-level", "debug",
                     "--log-format", "json", "--page-size", "1", "--concurrency", "8",
                     "--no-progress", NULL);
    assert_true(rc == 0 || rc == 3);
    json_t *stats = fakeproc_stats(&f, 0);
    long assume = fakeproc_stat(stats, "operations", "AssumeRole");
    json_decref(stats);

    /* the secrets in play: the base secret and every assumed-role secret and session token
     * fakeaws issued (--credentials-log: "AKID SECRET TOKEN" lines) */
    struct needles nd;
    memset(&nd, 0, sizeof nd);
    needles_add(&nd, BASE_SECRET);
    char *issued = read_file(creds_log);
    long n_issued = 0;
    for (char *save = NULL, *line = strtok_r(issued, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char akid[32], secret[64];
        static char token[4096];
        assert_int_equal(sscanf(line, "%31s %63s %4095s", akid, secret, token), 3);
        assert_int_equal(strlen(secret), 40);
        assert_true(strlen(token) >= 700);
        needles_add(&nd, secret);
        needles_add(&nd, token);
        n_issued++;
    }
    needles_ready(&nd);
    fprintf(stderr, "  secrets: %ld credentials issued (%ld AssumeRole), %zu windows\n", n_issued,
            assume, nd.n);
    assert_true(n_issued >= active_accounts(f.truth));
    assert_true(n_issued <= assume);

    /* none of them in stdout, stderr (debug level), the metrics file or the database */
    char *m = read_file(metrics_path);
    assert_true(strlen(err) > 10000); /* the debug log is there to search */
    assert_int_equal(leaks_in(&nd, out, strlen(out), "stdout"), 0);
    assert_int_equal(leaks_in(&nd, err, strlen(err), "stderr"), 0);
    assert_int_equal(leaks_in(&nd, m, strlen(m), "metrics file"), 0);
    long relations = 0, bytes = 0;
    assert_int_equal(leaks_in_database(&nd, url, &relations, &bytes), 0);
    fprintf(stderr, "  secrets: searched %zu + %zu bytes of output, %ld relations (%ld bytes)\n",
            strlen(out), strlen(err), relations, bytes);
    assert_true(relations >= 10);
    assert_true(bytes > 10000);

    /* the search finds what it looks for: a piece of a session token planted in the log and
     * a secret planted in a table of the schema */
    const char *tok = nd.strs[2]; /* the first token */
    struct buf planted;
    buf_init(&planted);
    buf_append(&planted, err, strlen(err) / 2);
    buf_printf(&planted, "{\"msg\":\"x-amz-security-token: %.20s\"}", tok + 300);
    buf_append(&planted, err + strlen(err) / 2, strlen(err) - strlen(err) / 2);
    assert_true(leaks_in(&nd, planted.data, planted.len, "planted log") >= 1);
    buf_cleanup(&planted);
    PGconn *db = db_open(url);
    PQclear(query(db, "CREATE TABLE egressscan.zz_planted (note text)", NULL));
    char note[128];
    snprintf(note, sizeof note, "secret_access_key=%s", nd.strs[1]);
    PQclear(query(db, "INSERT INTO egressscan.zz_planted VALUES ($1)", note));
    assert_true(leaks_in_database(&nd, url, &relations, &bytes) >= 1);
    PQclear(query(db, "DROP TABLE egressscan.zz_planted", NULL));
    PQfinish(db);

    needles_free(&nd);
    free(issued);
    free(m);
    free(out);
    free(err);
    assert_int_equal(fakeproc_stop(&f), 0);
}

/* ---- 5. TLS: a self-signed certificate is refused unless AWS_CA_BUNDLE names it ---- */

static void test_self_signed_certificate(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *args[] = {"--accounts",
                          "6",
                          "--regions",
                          "2",
                          "--clusters-per-account-region-mean",
                          "1.5",
                          "--seed",
                          "19",
                          "--verify-sigv4",
                          "--tls-cert",
                          fx.cert,
                          "--tls-key",
                          fx.key,
                          NULL};
    start_fake(&f, "tls", 1, args);
    assert_int_equal(strncmp(f.url, "https://", 8), 0);
    struct cli c;
    char url[256];
    new_database("tls", &c, f.url, url, sizeof url);

    /* refused: the scan fails (Organizations unreachable), the error names the certificate
     * problem, and nothing is stored as scanned */
    char *out = NULL, *err = NULL;
    int rc = cli_run(&c, &out, &err, "scan", "--no-progress", NULL);
    assert_int_equal(rc, 4);
    assert_non_null(strstr(err, "certificate"));
    PGconn *db = db_open(url);
    assert_int_equal(
        query_long(db, "SELECT count(*) FROM egressscan.scans WHERE status = 'failed'", NULL), 1);
    assert_int_equal(
        query_long(db, "SELECT count(*) FROM egressscan.coverage WHERE status = 'ok'", NULL), 0);
    assert_int_equal(query_long(db, "SELECT count(*) FROM egressscan.current_clusters", NULL), 0);
    free(out);
    free(err);
    json_t *stats = fakeproc_stats(&f, 0);
    assert_non_null(stats);
    assert_int_equal(fake_requests(stats), 0); /* not one request got through */
    json_decref(stats);

    /* the same scan with the certificate added as a CA: complete and exact */
    cli_setenv(&c, "AWS_CA_BUNDLE", fx.cert);
    rc = cli_run(&c, &out, &err, "scan", "--no-progress", NULL);
    assert_int_equal(rc, 0);
    long total = 0, ok = coverage_ok(db, &total);
    assert_int_equal(ok, total);
    assert_int_equal(total, active_accounts(f.truth) * 2);
    expect_same_as_truth(&f, url);
    PQfinish(db);
    free(out);
    free(err);
    assert_int_equal(fakeproc_stop(&f), 0);
}

/* ---- fixture ---- */

/* ---- 6. the progress line on a terminal ---- */

/* Runs egressscan scan with stderr (and stdout) on a pseudo-terminal, as a user at a terminal
 * would; everything it wrote there goes to *text (the caller frees). Returns the exit code. */
static int scan_on_pty(struct cli *c, char **text)
{
    int master = -1;
    struct winsize ws = {.ws_row = 24, .ws_col = 200};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {(char *)c->bin, "scan", "--concurrency", "8", NULL};
        execve(c->bin, argv, c->env);
        _exit(127);
    }
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    for (;;) {
        ssize_t n = read(master, chunk, sizeof chunk);
        if (n > 0) {
            assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break; /* EIO: the child closed the terminal */
    }
    close(master);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(buf_append(&b, "", 1), 0);
    *text = buf_steal(&b);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_progress_line_on_a_terminal(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *args[] = {"--accounts",
                          "30",
                          "--regions",
                          "3",
                          "--seed",
                          "11",
                          "--latency-ms",
                          "20",
                          "--clusters-per-account-region-mean",
                          "1",
                          NULL};
    start_fake(&f, "progress", 0, args);
    struct cli c;
    char url[256];
    new_database("progress", &c, f.url, url, sizeof url);
    char *text = NULL;
    int rc = scan_on_pty(&c, &text);
    assert_int_equal(fakeproc_stop(&f), 0);
    if (rc != 0)
        fail_msg("scan on a terminal exited %d:\n%s", rc, text);

    /* the scan's own count of its targets */
    PGconn *db = db_open(url);
    long total = query_long(db, "SELECT targets_total FROM egressscan.scans", NULL);
    PQfinish(db);
    assert_true(total > 30);

    /* the progress line was drawn, and its last state (the scheduler's final report) shows
     * every target of the known total and an ETA computed from it */
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, "\r\033[Kaccounts ")) != NULL; p++)
        last = p;
    if (!last)
        fail_msg("no progress line on the terminal:\n%.500s", text);
    char want[64];
    snprintf(want, sizeof want, "targets %ld/%ld (", total, total);
    const char *eol = strchr(last + 1, '\r');
    size_t len = eol ? (size_t)(eol - last) : strlen(last);
    char line[300];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), last);
    if (!strstr(line, want) || !strstr(line, "ETA 0m00s"))
        fail_msg("the last progress line does not show %s... ETA 0m00s: %s", want, line + 4);
    free(text);
}

static int group_setup(void **state)
{
    (void)state;
    if (!fakeproc_bin())
        return -1;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/egressscan-faults-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    if (fakeproc_make_cert(fx.tmp, fx.cert, sizeof fx.cert, fx.key, sizeof fx.key) < 0)
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
        cmocka_unit_test(test_mixed_faults),
        cmocka_unit_test(test_hot_account),
        cmocka_unit_test(test_credentials_expire_mid_scan),
        cmocka_unit_test(test_no_secret_in_output_or_database),
        cmocka_unit_test(test_self_signed_certificate),
        cmocka_unit_test(test_progress_line_on_a_terminal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
