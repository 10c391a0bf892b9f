/* test_worker.c - scale-out against fakeaws and a real PostgreSQL: `scan --enqueue` and three
 * `worker` processes, one SIGKILLed while it holds leases of unfinished items, store exactly what
 * a single-process `scan` stores (coverage and current_clusters equal, both equal to the fake's
 * --truth), with the killed worker's items taken over after their lease expired and the scan
 * finalized once; a worker on a finalized scan does nothing; `worker --wait` waits for a scan
 * enqueued later; an item claimed too often is recorded as not scanned; an enqueued scan is not
 * aborted by a later `scan`. Every wait is a bounded polling loop; no assertion on durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "storage/db.h"
#include "storage/queue.h"
#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"
#define ACCOUNTS "72"
#define LEASE "3"

static struct {
    char tmp[64];
    struct pgtest pg;
    struct fakeproc fake;
    char url_a[256], url_b[256], url_c[256], url_d[256]; /* reference, workers, small, queue */
    PGconn *a, *b, *c, *d;
} fx;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* ---- SQL helpers (test-only) ---- */

/* The first column of the first row as text (malloc'd), or NULL on error / no row. */
static char *q_text(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        out = strdup(PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "q_text: %s", PQerrorMessage(c));
    PQclear(r);
    return out;
}

static long q_long(PGconn *c, const char *sql, int n, const char *const *params)
{
    char *s = q_text(c, sql, n, params);
    if (!s)
        fail_msg("query failed: %s", sql);
    long v = atol(s);
    free(s);
    return v;
}

static void q_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static int make_db(const char *name, char *url, size_t cap, PGconn **conn)
{
    PGconn *admin = PQconnectdb(fx.pg.url);
    char sql[96];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name); /* test-only DDL */
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    snprintf(url, cap, "postgresql://postgres@127.0.0.1:%d/%s", fx.pg.port, name);
    *conn = ok ? PQconnectdb(url) : NULL;
    return ok && PQstatus(*conn) == CONNECTION_OK ? 0 : -1;
}

/* ---- egressscan ---- */

static void cli_for(struct cli *c, const char *database_url)
{
    cli_init(c, BASE_KEY, BASE_SECRET, fx.fake.url, database_url);
}

/* Starts egressscan with args (NULL-terminated) in the background, stdout and stderr into
 * out_path; its pid. */
static pid_t spawn_egressscan(struct cli *c, const char *out_path, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)c->bin;
    va_list ap;
    va_start(ap, out_path);
    for (char *a; n < 31 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    pid_t pid = procs_spawn(argv, c->env);
    dup2(so, STDOUT_FILENO);
    dup2(se, STDERR_FILENO);
    close(so);
    close(se);
    close(fd);
    return pid;
}

/* Waits (bounded: polls for up to limit_s) for pid; its exit status, -1 when signalled, -2 when
 * it did not end (then it is killed). */
static int wait_exit(pid_t pid, int limit_s)
{
    for (int i = 0; i < limit_s * 20; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -2;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static long long enqueue(const char *database_url, const char *extra1, const char *extra2)
{
    struct cli c;
    cli_for(&c, database_url);
    char *out = NULL;
    int rc = cli_run(&c, &out, NULL, "scan", "--enqueue", "--no-progress", extra1, extra2, NULL);
    assert_int_equal(rc, 0);
    long long id = atoll(out);
    assert_true(id > 0);
    free(out);
    return id;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    if (!fakeproc_bin())
        return -1;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/worker-itest-XXXXXX");
    if (!mkdtemp(fx.tmp) || pgtest_start(&fx.pg) < 0)
        return -1;
    /* busy enough that a worker is still working when it is killed */
    const char *args[] = {"--accounts",
                          ACCOUNTS,
                          "--regions",
                          "3",
                          "--clusters-per-account-region-mean",
                          "1.0",
                          "--seed",
                          "8081",
                          "--latency-ms",
                          "40",
                          "--verify-sigv4",
                          NULL};
    if (fakeproc_start(&fx.fake, fx.tmp, "fleet", 0, args) < 0)
        return -1;
    if (make_db("es_worker_a", fx.url_a, sizeof fx.url_a, &fx.a) < 0 ||
        make_db("es_worker_b", fx.url_b, sizeof fx.url_b, &fx.b) < 0 ||
        make_db("es_worker_c", fx.url_c, sizeof fx.url_c, &fx.c) < 0 ||
        make_db("es_worker_d", fx.url_d, sizeof fx.url_d, &fx.d) < 0)
        return -1;
    const char *urls[] = {fx.url_a, fx.url_b, fx.url_c, fx.url_d};
    for (int i = 0; i < 4; i++) {
        struct cli c;
        cli_for(&c, urls[i]);
        if (cli_run(&c, NULL, NULL, "migrate", NULL) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(fx.a);
    PQfinish(fx.b);
    PQfinish(fx.c);
    PQfinish(fx.d);
    fakeproc_stop(&fx.fake);
    pgtest_stop(&fx.pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.tmp); /* our own mkdtemp directory */
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx.tmp);
    return 0;
}

/* ---- comparisons ---- */

static const char SQL_COVERAGE[] =
    "SELECT coalesce(string_agg(concat_ws('|', account_id, region, status, clusters), ',' "
    "ORDER BY account_id, region), '') FROM egressscan.coverage";
static const char SQL_CLUSTERS[] =
    "SELECT coalesce(string_agg(concat_ws('|', account_id, account_name, ou_path, region, "
    "cluster_name, coalesce(egress_mode, '-'), kubernetes_version), ',' ORDER BY cluster_arn), "
    "'') FROM egressscan.current_clusters";

static void assert_same(PGconn *x, PGconn *y, const char *sql, const char *what)
{
    char *a = q_text(x, sql, 0, NULL), *b = q_text(y, sql, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    if (strcmp(a, b) != 0)
        fail_msg("%s differ:\nA: %.600s\nB: %.600s", what, a, b);
    assert_true(strlen(a) > 100);
    free(a);
    free(b);
}

/* ---- tests ---- */

static void test_three_workers_one_killed_store_what_one_scan_stores(void **state)
{
    (void)state;
    /* (a) the reference: one process */
    struct cli ca;
    cli_for(&ca, fx.url_a);
    char *out = NULL;
    assert_int_equal(cli_run(&ca, &out, NULL, "scan", "--no-progress", NULL), 0);
    free(out);
    char *diff = NULL;
    long d = fakeproc_diff_db(&fx.fake, fx.url_a, &diff);
    if (d != 0)
        fail_msg("scan into A differs from the truth (%ld):\n%s", d, diff ? diff : "");

    /* (b) enqueue, then three workers */
    long long id = enqueue(fx.url_b, NULL, NULL);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    long active = (long)json_integer_value(
        json_object_get(json_object_get(fx.fake.truth, "counts"), "active_accounts"));
    assert_true(active > 60);
    assert_int_equal(q_long(fx.b,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'pending'",
                            1, p),
                     active);
    /* nothing scanned yet: the enqueue stores only the suspended accounts' rows */
    assert_int_equal(q_long(fx.b,
                            "SELECT count(*) FROM egressscan.target_result WHERE status <> "
                            "'suspended' OR region <> '*'",
                            0, NULL),
                     0);
    assert_int_equal(q_long(fx.b, "SELECT count(*) FROM egressscan.target_result", 0, NULL),
                     (long)json_array_size(json_object_get(fx.fake.truth, "accounts")) - active);
    /* the snapshot is stored at enqueue time: names and OU paths */
    assert_int_equal(q_long(fx.b,
                            "SELECT count(*) FROM egressscan.scan_account WHERE scan_id = $1 "
                            "AND name IS NOT NULL AND ou_path IS NOT NULL",
                            1, p),
                     json_array_size(json_object_get(fx.fake.truth, "accounts")));

    struct cli cb;
    cli_for(&cb, fx.url_b);
    char logs[3][320];
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        snprintf(logs[i], sizeof logs[i], "%s/worker-%d.log", fx.tmp, i);
        pids[i] = spawn_egressscan(&cb, logs[i], "worker", "--wait", "--lease-seconds", LEASE,
                                   "--batch", "4", "--concurrency", "4", "--no-progress",
                                   "--log-level", "debug", NULL);
        assert_true(pids[i] > 0);
    }
    /* the victim: worker 0, once it holds leases of items it has not finished */
    char owner_like[64];
    snprintf(owner_like, sizeof owner_like, "%%:%ld:%%", (long)pids[0]);
    const char *po[2] = {sid, owner_like};
    char *held = NULL;
    for (int i = 0; i < 3000 && !held; i++) {
        char *s = q_text(fx.b,
                         "SELECT string_agg(account_id, ',' ORDER BY account_id) FROM "
                         "egressscan.work_item WHERE scan_id = $1 AND status = 'leased' AND "
                         "lease_owner LIKE $2",
                         2, po);
        if (s && strcmp(s, "(null)") != 0) {
            kill(pids[0], SIGKILL);
            held = s;
        } else {
            free(s);
            sleep_ms(10);
        }
    }
    assert_non_null(held);
    assert_int_equal(wait_exit(pids[0], 10), -1); /* killed */
    long left_at_kill = q_long(fx.b,
                               "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                               "status <> 'done'",
                               1, p);
    assert_true(left_at_kill > 0);

    /* the two others finish, taking the dead worker's items once its leases expire */
    int rc1 = wait_exit(pids[1], 180), rc2 = wait_exit(pids[2], 180);
    char *log1 = slurp(logs[1]), *log2 = slurp(logs[2]);
    if (rc1 != 0 || rc2 != 0)
        fail_msg("workers exited %d and %d\n--- 1:\n%.3000s\n--- 2:\n%.3000s", rc1, rc2, log1,
                 log2);
    char finalized[64];
    snprintf(finalized, sizeof finalized, "scan %lld succeeded", id);
    int summaries = (strstr(log1, finalized) != NULL) + (strstr(log2, finalized) != NULL);
    assert_int_equal(summaries, 1); /* exactly one worker finalized it */
    free(log1);
    free(log2);

    /* one finalization */
    assert_int_equal(q_long(fx.b, "SELECT count(*) FROM egressscan.scan", 0, NULL), 1);
    char *status = q_text(fx.b,
                          "SELECT concat_ws('|', status, finished_at IS NOT NULL, "
                          "coalesce(error, '-')) FROM egressscan.scans WHERE scan_id = $1",
                          1, p);
    assert_string_equal(status, "succeeded|t|-");
    free(status);
    assert_int_equal(
        q_long(fx.b, "SELECT count(*) FROM egressscan.scan_compliance WHERE scan_id = $1", 1, p),
        1);
    assert_int_equal(q_long(fx.b, "SELECT count(*) FROM egressscan.current_drift", 0, NULL),
                     q_long(fx.a, "SELECT count(*) FROM egressscan.current_drift", 0, NULL));

    /* every item done; the dead worker's unfinished items were taken over by another worker */
    assert_int_equal(q_long(fx.b,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'done'",
                            1, p),
                     active);
    const char *ph[3] = {sid, held, owner_like};
    long taken_over = q_long(fx.b,
                             "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                             "account_id = ANY (string_to_array($2, ',')) AND attempts >= 2 AND "
                             "done_by NOT LIKE $3",
                             3, ph);
    assert_true(taken_over >= 1);
    long retried = q_long(fx.b,
                          "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                          "attempts >= 2",
                          1, p);
    fprintf(stderr,
            "worker test: %ld accounts, %ld targets, killed worker held %s; %ld of them taken "
            "over, %ld items claimed twice\n",
            active, q_long(fx.b, "SELECT count(*) FROM egressscan.coverage", 0, NULL), held,
            taken_over, retried);
    free(held);

    /* coverage: one row per target, no gap, no double; the same as the single scan */
    assert_int_equal(q_long(fx.b,
                            "SELECT count(*) - count(DISTINCT (account_id, region)) FROM "
                            "egressscan.target_result WHERE scan_id = $1",
                            1, p),
                     0);
    assert_same(fx.a, fx.b, SQL_COVERAGE, "coverage");
    assert_same(fx.a, fx.b, SQL_CLUSTERS, "current_clusters");
    d = fakeproc_diff_db(&fx.fake, fx.url_b, &diff);
    if (d != 0)
        fail_msg("workers' results differ from the truth (%ld):\n%s", d, diff ? diff : "");
    /* the API calls of every worker and of the discovery add up to at least the single scan's */
    assert_true(q_long(fx.b, "SELECT api_calls FROM egressscan.scans", 0, NULL) >=
                q_long(fx.a, "SELECT api_calls FROM egressscan.scans", 0, NULL));

    /* a worker on a finalized scan does nothing */
    char *before = q_text(fx.b,
                          "SELECT concat_ws('|', status, finished_at, api_calls, "
                          "(SELECT count(*) FROM egressscan.scan_finding)) FROM egressscan.scan",
                          0, NULL);
    out = NULL;
    assert_int_equal(cli_run(&cb, &out, NULL, "worker", "--scan", sid, NULL), 0);
    assert_string_equal(out, "");
    free(out);
    out = NULL;
    assert_int_equal(cli_run(&cb, &out, NULL, "worker", NULL), 0);
    assert_string_equal(out, "");
    free(out);
    char *after = q_text(fx.b,
                         "SELECT concat_ws('|', status, finished_at, api_calls, "
                         "(SELECT count(*) FROM egressscan.scan_finding)) FROM egressscan.scan",
                         0, NULL);
    /* a Job's replacement pod started just after the scan ended has nothing to wait for */
    char relog[320];
    snprintf(relog, sizeof relog, "%s/replacement.log", fx.tmp);
    pid_t late = spawn_egressscan(&cb, relog, "worker", "--wait", "--no-progress", NULL);
    assert_true(late > 0);
    assert_int_equal(wait_exit(late, 30), 0);
    char *after2 = q_text(fx.b,
                          "SELECT concat_ws('|', status, finished_at, api_calls, "
                          "(SELECT count(*) FROM egressscan.scan_finding)) FROM egressscan.scan",
                          0, NULL);
    assert_string_equal(before, after2);
    free(after2);
    free(before);
    free(after);
}

/* Some active accounts of the truth, comma-separated, into out. */
static void some_accounts(size_t skip, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    size_t i, k = 0;
    json_t *a;
    json_array_foreach(json_object_get(fx.fake.truth, "accounts"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") != 0)
            continue;
        if (k++ < skip)
            continue;
        if (k > skip + n)
            break;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                 json_string_value(json_object_get(a, "id")));
    }
}

/* Enqueues three accounts into url for the waiting worker pid (logging to log), which must then
 * scan them, finalize the scan and exit 0. The scan id; the worker's log into *text. */
static long long enqueue_three_for(pid_t pid, const char *url, const char *log, char **text)
{
    char accounts[256];
    some_accounts(0, 3, accounts, sizeof accounts);
    long long id = enqueue(url, "--accounts", accounts);
    int rc = wait_exit(pid, 60);
    *text = slurp(log);
    char want[64];
    snprintf(want, sizeof want, "scan %lld succeeded", id);
    if (rc != 0 || !strstr(*text, want))
        fail_msg("waiting worker exited %d:\n%.3000s", rc, *text);
    return id;
}

static void test_wait_picks_up_a_scan_enqueued_later(void **state)
{
    (void)state;
    struct cli c;
    cli_for(&c, fx.url_c);
    char log[320];
    snprintf(log, sizeof log, "%s/waiting.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--wait", "--lease-seconds", LEASE,
                                 "--no-progress", NULL);
    assert_true(pid > 0);
    /* it keeps waiting while nothing is enqueued (it polls the queue) */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
        sleep_ms(100);
    }
    char *text = NULL;
    long long id = enqueue_three_for(pid, fx.url_c, log, &text);
    free(text);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    char *st = q_text(fx.c, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, p);
    assert_string_equal(st, "succeeded");
    free(st);
    assert_int_equal(q_long(fx.c,
                            "SELECT count(DISTINCT account_id) FROM egressscan.target_result "
                            "WHERE scan_id = $1",
                            1, p),
                     3);
}

static void test_item_claimed_too_often_is_recorded_and_scan_does_not_abort_the_queue(void **s)
{
    (void)s;
    char accounts[256], other[32];
    some_accounts(3, 2, accounts, sizeof accounts);
    some_accounts(5, 1, other, sizeof other);
    long long id = enqueue(fx.url_c, "--accounts", accounts);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    char first[16];
    snprintf(first, sizeof first, "%.12s", accounts);
    const char *p[2] = {sid, first};
    /* a single-process scan meanwhile: its begin must not abort the enqueued scan, which no
     * process holds a lock for */
    struct cli c;
    cli_for(&c, fx.url_c);
    char *out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "scan", "--no-progress", "--accounts", other, NULL),
                     0);
    free(out);
    char *st = q_text(fx.c, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, p);
    assert_string_equal(st, "running");
    free(st);
    /* as if three workers had died holding the first account */
    q_exec(fx.c,
           "UPDATE egressscan.work_item SET attempts = 3 WHERE scan_id = $1 AND account_id = $2", 2,
           p);
    out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--scan", sid, "--no-progress", NULL), 3);
    char want[64];
    snprintf(want, sizeof want, "scan %lld partial", id);
    assert_non_null(strstr(out, want));
    free(out);
    char *row = q_text(fx.c,
                       "SELECT concat_ws('|', region, status, error_code) FROM "
                       "egressscan.target_result WHERE scan_id = $1 AND account_id = $2",
                       2, p);
    assert_string_equal(row, "*|error|WorkItemAbandoned");
    free(row);
    assert_int_equal(q_long(fx.c,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND account_id <> $2 AND status = 'ok'",
                            2, p),
                     3);
}

static void test_an_idle_enqueued_scan_is_aborted(void **state)
{
    (void)state;
    char accounts[32];
    some_accounts(6, 1, accounts, sizeof accounts);
    long long id = enqueue(fx.url_c, "--accounts", accounts);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    q_exec(fx.c,
           "UPDATE egressscan.scan_queue SET last_activity = now() - interval '2 days' "
           "WHERE scan_id = $1",
           1, p);
    struct cli c;
    cli_for(&c, fx.url_c);
    char *out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--no-progress", NULL), 0);
    assert_string_equal(out, "");
    free(out);
    char *st = q_text(fx.c,
                      "SELECT concat_ws('|', status, error LIKE 'enqueued scan abandoned%') "
                      "FROM egressscan.scan WHERE scan_id = $1",
                      1, p);
    assert_string_equal(st, "aborted|t");
    free(st);
    assert_int_equal(
        q_long(fx.c, "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p), 0);
}

/* SIGTERM: the worker claims nothing more, finishes what it holds, gives back nothing half-done
 * and exits 143 (stopped by SIGTERM); another worker completes the scan. */
static void test_sigterm_stops_claiming_and_leaves_no_lease(void **state)
{
    (void)state;
    char accounts[256];
    some_accounts(10, 8, accounts, sizeof accounts);
    long long id = enqueue(fx.url_c, "--accounts", accounts);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    struct cli c;
    cli_for(&c, fx.url_c);
    char log[320];
    snprintf(log, sizeof log, "%s/sigterm.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--scan", sid, "--batch", "1", "--concurrency",
                                 "1", "--no-progress", NULL);
    assert_true(pid > 0);
    /* once it has written an account */
    long done = 0;
    for (int i = 0; i < 3000 && done == 0; i++) {
        done = q_long(fx.c,
                      "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                      "status = 'done'",
                      1, p);
        if (!done)
            sleep_ms(10);
    }
    assert_true(done > 0);
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, 60);
    char *text = slurp(log);
    if (rc != 143)
        fail_msg("worker after SIGTERM exited %d:\n%.3000s", rc, text);
    free(text);
    /* nothing stays leased; the rest is claimable at once, without a failed attempt */
    assert_int_equal(q_long(fx.c,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'leased'",
                            1, p),
                     0);
    long left = q_long(fx.c,
                       "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                       "status = 'pending' AND attempts = 0",
                       1, p);
    assert_true(left > 0); /* it stopped before the end */
    char *out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--scan", sid, "--no-progress", NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "scan %lld succeeded", id);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(q_long(fx.c,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND status = 'ok'",
                            1, p),
                     8 * 3);
}

/* The queue's rules through storage/queue.h, each step forced: a leased item is skipped, an
 * expired lease is claimable again, the results of a lost lease are dropped (nothing written),
 * and only one session gets to finalize, once. */
static struct db *connect_d(void)
{
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(fx.url_d, &e);
    if (!db)
        fail_msg("db_connect: %s", e.message);
    return db;
}

/* A worker's completion that the database refuses for one account's rows (its cluster's tags are
 * not JSON: 22P02) is written again a target at a time: that target is an error row
 * (StorageRejected, with the SQLSTATE), the other account is stored, both items are done. */
static void test_queue_completion_isolates_a_refused_target(void **state)
{
    (void)state;
    struct db *db = connect_d();
    struct err e;
    err_clear(&e);
    long long id = 0;
    assert_int_equal(db_scan_begin(db, (double)time(NULL), "{}", &id, NULL, &e), 0);
    const char *ids[] = {"555555555555", "666666666666"};
    assert_int_equal(queue_create(db, id, "{\"regions\":[\"us-east-1\"]}", ids, 2, NULL, &e), 0);
    struct queue_item items[4];
    size_t n = 0;
    long long got = 0;
    assert_int_equal(queue_claim(db, id, "iso", 60, 4, &got, items, &n, &e), 0);
    assert_int_equal(n, 2);
    double now = (double)time(NULL);
    struct cluster good = {.name = "good",
                           .arn = "arn:aws:eks:us-east-1:555555555555:cluster/good",
                           .egress_mode = "AWS_MANAGED",
                           .endpoint_public_access = -1,
                           .endpoint_private_access = -1,
                           .raw_json = "{}"};
    struct cluster bad = {.name = "bad",
                          .arn = "arn:aws:eks:us-east-1:666666666666:cluster/bad",
                          .egress_mode = "AWS_MANAGED",
                          .endpoint_public_access = -1,
                          .endpoint_private_access = -1,
                          .tags_json = "{not json",
                          .raw_json = "{}"};
    struct target_result t1 = {.account_id = ids[0],
                               .region = "us-east-1",
                               .status = TARGET_OK,
                               .clusters = &good,
                               .n_clusters = 1,
                               .scanned_at = now};
    struct target_result t2 = {.account_id = ids[1],
                               .region = "us-east-1",
                               .status = TARGET_OK,
                               .clusters = &bad,
                               .n_clusters = 1,
                               .scanned_at = now};
    const struct target_result *p1[1] = {&t1}, *p2[1] = {&t2};
    struct queue_completion c[2] = {{.account_id = ids[0], .targets = p1, .n = 1},
                                    {.account_id = ids[1], .targets = p2, .n = 1}};
    int lost[2] = {1, 1};
    if (queue_complete_many(db, id, "iso", c, 2, lost, &e) < 0)
        fail_msg("queue_complete_many: %s (%s)", e.message, e.code);
    assert_int_equal(lost[0], 0);
    assert_int_equal(lost[1], 0);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    assert_int_equal(q_long(fx.d,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 "
                            "AND status = 'done'",
                            1, p),
                     2);
    assert_int_equal(q_long(fx.d,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND account_id = '555555555555' AND status = 'ok' AND clusters = 1",
                            1, p),
                     1);
    assert_int_equal(q_long(fx.d,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND account_id = '666666666666' AND status = 'error' AND "
                            "error_code = 'StorageRejected' AND error_message LIKE '%22P02%'",
                            1, p),
                     1);
    assert_int_equal(q_long(fx.d,
                            "SELECT count(*) FROM egressscan.cluster WHERE account_id = "
                            "'666666666666'",
                            0, NULL),
                     0);
    /* finalized here (partial: a target failed), so that no later worker finds it open */
    struct scan_totals tot = {0, 0, 0};
    assert_int_equal(queue_begin_finalize(db, id, &tot, &e), 1);
    assert_int_equal(db_scan_finish(db, id, (double)time(NULL), "partial", &tot, NULL, &e), 0);
    db_close(db);
}

static void test_queue_leases_lost_results_and_one_finalizer(void **state)
{
    (void)state;
    struct db *one = connect_d(), *two = connect_d();
    struct err e;
    err_clear(&e);
    long long id = 0;
    assert_int_equal(db_scan_begin(one, (double)time(NULL), "{}", &id, NULL, &e), 0);
    const char *ids[] = {"111111111111", "222222222222"};
    assert_int_equal(queue_create(one, id, "{\"regions\":[\"us-east-1\"]}", ids, 2, NULL, &e), 0);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};

    struct queue_item items[4];
    size_t n = 0;
    long long got = 0;
    assert_int_equal(queue_claim(one, 0, "w1", 60, 1, &got, items, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got, id);
    assert_string_equal(items[0].account_id, ids[0]);
    assert_int_equal(items[0].attempts, 1);
    /* w1's item is leased: w2 gets the other one only */
    assert_int_equal(queue_claim(two, 0, "w2", 60, 4, &got, items, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].account_id, ids[1]);
    assert_int_equal(queue_claim(two, 0, "w3", 60, 4, &got, items, &n, &e), 0);
    assert_int_equal(n, 0);
    /* w1's lease runs out: w3 takes the item over */
    q_exec(fx.d,
           "UPDATE egressscan.work_item SET lease_expires = now() - interval '1 second' "
           "WHERE lease_owner = 'w1'",
           0, NULL);
    assert_int_equal(queue_claim(two, 0, "w3", 60, 4, &got, items, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].account_id, ids[0]);
    assert_int_equal(items[0].attempts, 2);
    /* w1 finishes late: its lease is lost, nothing of it is written */
    struct target_result t = {.account_id = ids[0],
                              .region = "us-east-1",
                              .status = TARGET_OK,
                              .scanned_at = (double)time(NULL)};
    const struct target_result *pt[1] = {&t};
    struct scan_totals calls = {7, 1, 2};
    assert_int_equal(queue_complete(one, id, ids[0], "w1", pt, 1, &calls, &e), 1);
    assert_int_equal(
        q_long(fx.d, "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p), 0);
    /* w3 writes it; not the last item yet: nobody finalizes */
    assert_int_equal(queue_complete(two, id, ids[0], "w3", pt, 1, &calls, &e), 0);
    /* the same completion run again (db_retry after a COMMIT whose answer was lost): w3 did it
     * already, so it counts as written and nothing is written twice; w1 still lost it */
    assert_int_equal(queue_complete(two, id, ids[0], "w3", pt, 1, &calls, &e), 0);
    assert_int_equal(queue_complete(one, id, ids[0], "w1", pt, 1, &calls, &e), 1);
    assert_int_equal(
        q_long(fx.d, "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p), 1);
    struct scan_totals tot = {0, 0, 0};
    assert_int_equal(queue_begin_finalize(one, id, &tot, &e), 0);
    /* renewing keeps w2's lease; releasing gives the item back, claimable at once */
    int renewed = 0, released = 0;
    assert_int_equal(queue_renew(two, "w2", 60, &renewed, &e), 0);
    assert_int_equal(renewed, 1);
    assert_int_equal(queue_release(two, "w2", &released, &e), 0);
    assert_int_equal(released, 1);
    assert_int_equal(queue_claim(one, id, "w4", 60, 4, &got, items, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].attempts, 1); /* a release is not a failed attempt */
    struct target_result t2 = t;
    t2.account_id = ids[1];
    pt[0] = &t2;
    assert_int_equal(queue_complete(one, id, ids[1], "w4", pt, 1, &calls, &e), 0);
    /* the last item is done: one session finalizes, the other does not */
    assert_int_equal(queue_begin_finalize(one, id, &tot, &e), 1);
    assert_int_equal(tot.api_calls, 14); /* the two completions; the lost one is not counted */
    assert_int_equal(queue_begin_finalize(two, id, &tot, &e), 0);
    assert_int_equal(db_scan_finish(one, id, (double)time(NULL), "succeeded", &tot, NULL, &e), 0);
    assert_int_equal(queue_begin_finalize(two, id, &tot, &e), 0);
    assert_int_equal(db_scan_finish(two, id, (double)time(NULL), "succeeded", &tot, NULL, &e), -1);
    assert_string_equal(e.code, "ScanNotRunning");
    char *row = q_text(fx.d,
                       "SELECT concat_ws('|', status, targets_total, api_calls) FROM "
                       "egressscan.scans WHERE scan_id = $1",
                       1, p);
    assert_string_equal(row, "succeeded|2|14");
    free(row);
    db_close(one);
    db_close(two);
}

/* Every item done but nobody finalized (the finalizer died, or is still at it): a worker that
 * finds nothing to claim finalizes the scan, unless another session holds its lock. */
static void test_a_complete_scan_nobody_finalized_is_finalized_by_the_next_worker(void **state)
{
    (void)state;
    struct db *db = connect_d();
    struct err e;
    err_clear(&e);
    long long id = 0;
    assert_int_equal(db_scan_begin(db, (double)time(NULL), "{}", &id, NULL, &e), 0);
    const char *ids[] = {"333333333333"};
    assert_int_equal(queue_create(db, id, "{}", ids, 1, NULL, &e), 0);
    struct queue_item items[1];
    size_t n = 0;
    long long got = 0;
    assert_int_equal(queue_claim(db, id, "dead", 60, 1, &got, items, &n, &e), 0);
    assert_int_equal(n, 1);
    struct target_result t = {.account_id = ids[0],
                              .region = "eu-west-1",
                              .status = TARGET_OK,
                              .scanned_at = (double)time(NULL)};
    const struct target_result *pt[1] = {&t};
    assert_int_equal(queue_complete(db, id, ids[0], "dead", pt, 1, NULL, &e), 0);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};

    /* a finalizer at work (this session holds the lock): the worker leaves the scan to it */
    struct scan_totals tot;
    assert_int_equal(queue_begin_finalize(db, id, &tot, &e), 1);
    struct cli c;
    cli_for(&c, fx.url_d);
    char *out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--no-progress", NULL), 0);
    assert_string_equal(out, "");
    free(out);
    char *st = q_text(fx.d, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, p);
    assert_string_equal(st, "running");
    free(st);
    /* the finalizer dies (its session ends): the next worker finalizes */
    db_close(db);
    out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--no-progress", NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "scan %lld succeeded", id);
    assert_non_null(strstr(out, want));
    free(out);
    st = q_text(fx.d,
                "SELECT concat_ws('|', status, targets_total) FROM egressscan.scans "
                "WHERE scan_id = $1",
                1, p);
    assert_string_equal(st, "succeeded|1");
    free(st);
}

/* A new database, migrated; its URL into url, a connection into *conn, c set up for it. */
static void migrated_db(const char *name, char *url, size_t cap, PGconn **conn, struct cli *c)
{
    assert_int_equal(make_db(name, url, cap, conn), 0);
    cli_for(c, url);
    assert_int_equal(cli_run(c, NULL, NULL, "migrate", NULL), 0);
}

/* pg_ctl restart -m fast, then the fixture's connections (and extra) are connected again. */
static void restart_server(PGconn *extra)
{
    assert_int_equal(pgtest_restart(&fx.pg, "fast"), 0);
    PGconn *conns[] = {fx.a, fx.b, fx.c, fx.d, extra};
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
        PQreset(conns[i]);
        assert_int_equal(PQstatus(conns[i]), CONNECTION_OK);
    }
}

/* PostgreSQL restarted (pg_ctl restart -m fast) while two workers scan: each reconnects (the
 * writer's completions and lease renewals are run again; the main loop gives its leases back and
 * claims again), both exit 0, one finalization, and the results equal the truth with no target
 * twice. Runs last: it restarts the server under the other fixtures' connections. */
static void test_workers_survive_a_database_restart(void **state)
{
    (void)state;
    char url[256];
    PGconn *e = NULL;
    struct cli c;
    migrated_db("es_worker_e", url, sizeof url, &e, &c);
    long long id = enqueue(url, NULL, NULL);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    long active = (long)json_integer_value(
        json_object_get(json_object_get(fx.fake.truth, "counts"), "active_accounts"));

    char logs[2][320];
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        snprintf(logs[i], sizeof logs[i], "%s/restart-worker-%d.log", fx.tmp, i);
        pids[i] = spawn_egressscan(&c, logs[i], "worker", "--wait", "--lease-seconds", "15",
                                   "--batch", "4", "--concurrency", "4", "--no-progress", NULL);
        assert_true(pids[i] > 0);
    }
    /* a quarter of the accounts done: both workers are well under way */
    long done = 0;
    for (int i = 0; i < 1200 && done < active / 4; i++) {
        sleep_ms(25);
        done = q_long(e,
                      "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                      "status = 'done'",
                      1, p);
    }
    assert_true(done >= active / 4);
    assert_true(done < active);
    restart_server(e);

    int rc[2];
    char *text[2];
    int lost = 0, back = 0, summaries = 0;
    char finalized[64];
    snprintf(finalized, sizeof finalized, "scan %lld succeeded", id);
    for (int i = 0; i < 2; i++) {
        rc[i] = wait_exit(pids[i], 180);
        text[i] = slurp(logs[i]);
        lost += strstr(text[i], "connection lost while") != NULL;
        back += strstr(text[i], "reconnected to PostgreSQL") != NULL;
        summaries += strstr(text[i], finalized) != NULL;
        const char *w = strstr(text[i], "connection lost while");
        fprintf(stderr, "worker %d: %.*s\n", i, w ? (int)strcspn(w, "(") : 0, w ? w : "");
    }
    if (rc[0] != 0 || rc[1] != 0 || lost < 2 || back < 2)
        fail_msg("workers exited %d and %d (%d lost, %d reconnected)\n--- 0:\n%.3000s\n--- 1:\n"
                 "%.3000s",
                 rc[0], rc[1], lost, back, text[0], text[1]);
    assert_int_equal(summaries, 1);
    free(text[0]);
    free(text[1]);

    char *status = q_text(e,
                          "SELECT concat_ws('|', status, coalesce(error, '-')) FROM "
                          "egressscan.scans WHERE scan_id = $1",
                          1, p);
    assert_string_equal(status, "succeeded|-");
    free(status);
    assert_int_equal(q_long(e,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'done'",
                            1, p),
                     active);
    assert_int_equal(
        q_long(e, "SELECT count(*) FROM egressscan.scan_compliance WHERE scan_id = $1", 1, p), 1);
    /* every target once, all ok */
    assert_int_equal(q_long(e,
                            "SELECT count(*) - count(DISTINCT (account_id, region)) FROM "
                            "egressscan.target_result WHERE scan_id = $1",
                            1, p),
                     0);
    assert_int_equal(q_long(e,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND status = 'ok'",
                            1, p),
                     active * 3);
    char *diff = NULL;
    long d = fakeproc_diff_db(&fx.fake, url, &diff);
    if (d != 0)
        fail_msg("results after the restart differ from the truth (%ld):\n%s", d, diff ? diff : "");
    fprintf(stderr,
            "worker restart test: %ld accounts, %ld done at the restart, %ld items claimed "
            "more than once, both workers exit 0\n",
            active, done,
            q_long(e,
                   "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                   "attempts >= 2",
                   1, p));
    PQfinish(e);
}

/* A worker waiting on an empty queue when the server restarts: its next poll finds the
 * connection gone, the main loop reconnects (giving back leases it might hold) and goes on
 * waiting, and it then scans a scan enqueued after the restart. */
static void test_a_waiting_worker_survives_a_database_restart(void **state)
{
    (void)state;
    char url[256];
    PGconn *f = NULL;
    struct cli c;
    migrated_db("es_worker_f", url, sizeof url, &f, &c);
    char log[320];
    snprintf(log, sizeof log, "%s/restart-waiting.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--wait", "--lease-seconds", LEASE,
                                 "--no-progress", NULL);
    assert_true(pid > 0);
    sleep_ms(1500); /* connected and polling */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    restart_server(f);
    sleep_ms(1500); /* at least one poll on the lost connection */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    char *text = NULL;
    long long id = enqueue_three_for(pid, url, log, &text);
    if (!strstr(text, "connection lost while giving back this worker's leases") ||
        !strstr(text, "reconnected to PostgreSQL"))
        fail_msg("the worker did not say it reconnected:\n%.3000s", text);
    free(text);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    assert_int_equal(q_long(f,
                            "SELECT count(DISTINCT account_id) FROM egressscan.target_result "
                            "WHERE scan_id = $1 AND status = 'ok'",
                            1, p),
                     3);
    PQfinish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_workers_one_killed_store_what_one_scan_stores),
        cmocka_unit_test(test_wait_picks_up_a_scan_enqueued_later),
        cmocka_unit_test(test_item_claimed_too_often_is_recorded_and_scan_does_not_abort_the_queue),
        cmocka_unit_test(test_an_idle_enqueued_scan_is_aborted),
        cmocka_unit_test(test_sigterm_stops_claiming_and_leaves_no_lease),
        cmocka_unit_test(test_queue_leases_lost_results_and_one_finalizer),
        cmocka_unit_test(test_queue_completion_isolates_a_refused_target),
        cmocka_unit_test(test_a_complete_scan_nobody_finalized_is_finalized_by_the_next_worker),
        cmocka_unit_test(test_workers_survive_a_database_restart),
        cmocka_unit_test(test_a_waiting_worker_survives_a_database_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
