/* test_stop.c - how scans and workers stop, fail and give up (issue 16), against a slow fakeaws
 * and a real PostgreSQL: a worker whose AWS credentials cannot be reached exits 4 and its items'
 * attempts advance; an account whose results the database always refuses ends
 * WorkItemAbandoned while the rest is written; a region listed twice is scanned once; SIGTERM to
 * a worker mid-batch and to a scan mid-run stops them within the grace with nothing lost or
 * written twice; two database outages in one worker's life each get the full retry bound.
 * Durations are measured and printed, never asserted tightly (shared machines): the bounds are
 * Kubernetes' 30 s between SIGTERM and SIGKILL, and the like. */
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

#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"
#define K8S_KILL_S 30 /* terminationGracePeriodSeconds' default: SIGKILL after SIGTERM */

static struct {
    char tmp[64];
    struct pgtest pg;
    struct fakeproc fake;
    int n_db;
} fx;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- SQL helpers (test-only) ---- */

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

static void cli_for(struct cli *c, const char *database_url)
{
    cli_init(c, BASE_KEY, BASE_SECRET, fx.fake.url, database_url);
}

/* A new migrated database: its URL into url, a connection into *conn, c set up for it. */
static void fresh_db(char *url, size_t cap, PGconn **conn, struct cli *c)
{
    char name[32];
    snprintf(name, sizeof name, "es_stop_%d", ++fx.n_db);
    PGconn *admin = PQconnectdb(fx.pg.url);
    char sql[96];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name); /* test-only DDL */
    PGresult *r = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(admin);
    snprintf(url, cap, "postgresql://postgres@127.0.0.1:%d/%s", fx.pg.port, name);
    *conn = PQconnectdb(url);
    assert_int_equal(PQstatus(*conn), CONNECTION_OK);
    cli_for(c, url);
    assert_int_equal(cli_run(c, NULL, NULL, "migrate", NULL), 0);
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

/* Waits (polling, up to limit_s) for pid: its exit status, -1 when signalled, -2 when it did
 * not end (then it is killed). */
static int wait_exit(pid_t pid, int limit_s)
{
    for (int i = 0; i < limit_s * 20; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
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
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* n active accounts of the truth from the skip-th on, comma-separated, into out. */
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

static long long enqueue(struct cli *c, const char *accounts, const char *regions)
{
    char *out = NULL;
    int rc = cli_run(c, &out, NULL, "scan", "--enqueue", "--no-progress", "--accounts", accounts,
                     regions ? "--regions" : NULL, regions, NULL);
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
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/stop-itest-XXXXXX");
    if (!mkdtemp(fx.tmp) || pgtest_start(&fx.pg) < 0)
        return -1;
    /* slow: a batch is under way for seconds, so that a signal lands in the middle of it */
    const char *args[] = {"--accounts",
                          "60",
                          "--regions",
                          "3",
                          "--clusters-per-account-region-mean",
                          "1.0",
                          "--seed",
                          "1616",
                          "--latency-ms",
                          "250",
                          NULL};
    return fakeproc_start(&fx.fake, fx.tmp, "fleet", 0, args);
}

static int teardown(void **state)
{
    (void)state;
    fakeproc_stop(&fx.fake);
    pgtest_stop(&fx.pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.tmp); /* our own mkdtemp directory */
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx.tmp);
    return 0;
}

/* ---- (1) credentials that cannot be reached ---- */

/* The container credential endpoint refuses connections: the HTTP engine's ConnectionError is
 * not a lost database. The worker gives back its batch and exits 4 instead of "recovering"
 * forever; the claim counts as an attempt (work started), so that items that keep failing end
 * WorkItemAbandoned. */
static void test_unreachable_credentials_exit_4_and_attempts_advance(void **state)
{
    (void)state;
    char url[256], accounts[256];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    some_accounts(0, 3, accounts, sizeof accounts);
    long long id = enqueue(&c, accounts, "us-east-1");
    char sid[32], creds_url[96];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    snprintf(creds_url, sizeof creds_url, "http://127.0.0.1:%d/creds", procs_free_port());
    cli_setenv(&c, "AWS_ACCESS_KEY_ID", "");
    cli_setenv(&c, "AWS_SECRET_ACCESS_KEY", "");
    cli_setenv(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_url);
    char log[320];
    snprintf(log, sizeof log, "%s/nocreds.log", fx.tmp);
    double t0 = mono_now();
    pid_t pid = spawn_egressscan(&c, log, "worker", "--scan", sid, "--no-progress", NULL);
    assert_true(pid > 0);
    int rc = wait_exit(pid, 60);
    double took = mono_now() - t0;
    char *text = slurp(log);
    if (rc != 4)
        fail_msg("worker without credentials exited %d after %.1f s:\n%.3000s", rc, took, text);
    assert_null(strstr(text, "the database connection was lost"));
    free(text);
    fprintf(stderr, "unreachable credentials: worker exited 4 after %.1f s\n", took);
    /* nothing stays leased, and the failed claim counted */
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "(status <> 'pending' OR attempts <> 1)",
                            1, p),
                     0);
    PQfinish(conn);
}

/* ---- (2) a write error that always recurs ---- */

/* The database refuses every row of one account's regions (a trigger, standing for a constraint
 * or a bug that refuses the same data every time), even the rows that record the target as
 * rejected: that account alone is given back with its attempt counted, claimed again until
 * QUEUE_MAX_ATTEMPTS, then recorded WorkItemAbandoned (the region "*" row the trigger lets
 * through); the other accounts are written, and the scan ends partial. */
static void test_a_write_error_that_recurs_ends_work_item_abandoned(void **state)
{
    (void)state;
    char url[256], accounts[256];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    some_accounts(3, 3, accounts, sizeof accounts);
    char victim[16];
    snprintf(victim, sizeof victim, "%.12s", accounts + 13); /* the second */
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION public.refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.account_id = '%s' AND NEW.region <> '*' THEN RAISE EXCEPTION "
             "'refused for the test'; END IF; RETURN NEW; END $$",
             victim);
    q_exec(conn, sql, 0, NULL);
    q_exec(conn,
           "CREATE TRIGGER refuse_one BEFORE INSERT ON egressscan.target_result FOR EACH ROW "
           "EXECUTE FUNCTION public.refuse_one()",
           0, NULL);
    long long id = enqueue(&c, accounts, "us-east-1,us-east-2");
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[2] = {sid, victim};
    char log[320];
    snprintf(log, sizeof log, "%s/refused.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--scan", sid, "--no-progress", NULL);
    assert_true(pid > 0);
    int rc = wait_exit(pid, 120);
    char *text = slurp(log);
    char want[64];
    snprintf(want, sizeof want, "scan %lld partial", id);
    if (rc != 3 || !strstr(text, want))
        fail_msg("worker exited %d:\n%.4000s", rc, text);
    free(text);
    char *row = q_text(conn,
                       "SELECT string_agg(concat_ws('|', region, status, error_code), ',') FROM "
                       "egressscan.target_result WHERE scan_id = $1 AND account_id = $2",
                       2, p);
    assert_string_equal(row, "*|error|WorkItemAbandoned");
    free(row);
    assert_int_equal(q_long(conn,
                            "SELECT attempts FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "account_id = $2",
                            2, p),
                     4);
    /* the other two accounts: written, once */
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND account_id <> $2 AND status = 'ok'",
                            2, p),
                     4);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) - count(DISTINCT (account_id, region)) FROM "
                            "egressscan.target_result WHERE scan_id = $1",
                            1, p),
                     0);
    char *st = q_text(conn, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, p);
    assert_string_equal(st, "partial");
    free(st);
    PQfinish(conn);
}

/* ---- (3) a region listed twice ---- */

/* The one target's coverage rows of a scan: "account|region|status,..." */
static char *targets_of(PGconn *conn, const char *sid)
{
    const char *p[1] = {sid};
    return q_text(conn,
                  "SELECT string_agg(concat_ws('|', account_id, region, status), ',' ORDER BY "
                  "account_id, region) FROM egressscan.target_result WHERE scan_id = $1",
                  1, p);
}

/* --regions us-east-1,us-east-1 (the flag, the config file, and a worker's stored options):
 * one target per account, and the scan ends as the single-region scan does. */
static void test_a_region_listed_twice_is_scanned_once(void **state)
{
    (void)state;
    char url[256], account[32];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    some_accounts(8, 1, account, sizeof account);
    char want[64];
    snprintf(want, sizeof want, "%s|us-east-1|ok", account);

    char *out = NULL, *err = NULL;
    assert_int_equal(cli_run(&c, &out, &err, "scan", "--no-progress", "--accounts", account,
                             "--regions", "us-east-1,us-east-1", NULL),
                     0);
    if (!strstr(out, "succeeded") || !strstr(out, "targets   1: 1 ok") || strstr(err, "refused") ||
        strstr(err, "already stored"))
        fail_msg("scan of a region listed twice:\n%s\n%s", out, err);
    free(out);
    free(err);
    char *sid = q_text(conn, "SELECT max(scan_id)::text FROM egressscan.scan", 0, NULL);
    char *got = targets_of(conn, sid);
    assert_string_equal(got, want);
    free(got);
    free(sid);

    char cfg[320];
    snprintf(cfg, sizeof cfg, "%s/twice.json", fx.tmp);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "{\"regions\": [\"us-east-1\", \"us-east-1\"], \"accounts\": [\"%s\", \"%s\"]}\n",
            account, account);
    fclose(f);
    out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "scan", "--no-progress", "--config", cfg, NULL), 0);
    free(out);
    sid = q_text(conn, "SELECT max(scan_id)::text FROM egressscan.scan", 0, NULL);
    got = targets_of(conn, sid);
    assert_string_equal(got, want);
    free(got);
    free(sid);

    /* a worker reads the regions from the scan's stored options: twice there too */
    long long id = enqueue(&c, account, "us-east-1");
    char qid[32];
    snprintf(qid, sizeof qid, "%lld", id);
    const char *p[1] = {qid};
    q_exec(conn,
           "UPDATE egressscan.scan_queue SET options = jsonb_set(options, '{regions}', "
           "'[\"us-east-1\", \"us-east-1\"]') WHERE scan_id = $1",
           1, p);
    out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--scan", qid, "--no-progress", NULL), 0);
    free(out);
    got = targets_of(conn, qid);
    assert_string_equal(got, want);
    free(got);
    PQfinish(conn);
}

/* ---- (4) SIGTERM to a worker in the middle of a batch ---- */

/* One batch of 30 accounts on a slow fake: SIGTERM once the first is written. The worker starts
 * no other account, the requests under way finish within the grace, the accounts finished are
 * written (once), the ones never started are pending again without a counted attempt, it exits
 * 143 well before Kubernetes' SIGKILL; a second worker then completes the scan, every target
 * once. */
static void sigterm_worker(const char *grace)
{
    char url[256], accounts[1024];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    if (grace)
        cli_setenv(&c, "EGRESSSCAN_STOP_GRACE_SECONDS", grace);
    some_accounts(10, 30, accounts, sizeof accounts);
    long long id = enqueue(&c, accounts, NULL);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", id);
    const char *p[1] = {sid};
    char log[320];
    snprintf(log, sizeof log, "%s/sigterm-worker.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--scan", sid, "--batch", "64", "--concurrency",
                                 "3", "--no-progress", NULL);
    assert_true(pid > 0);
    long done = 0;
    for (int i = 0; i < 1200 && done == 0; i++) {
        sleep_ms(25);
        done = q_long(conn,
                      "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                      "status = 'done'",
                      1, p);
    }
    assert_true(done > 0);
    double t0 = mono_now();
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, 60);
    double took = mono_now() - t0;
    char *text = slurp(log);
    if (rc != 143 || took >= K8S_KILL_S)
        fail_msg("worker after SIGTERM: exit %d after %.1f s:\n%.4000s", rc, took, text);
    free(text);
    long done_after = q_long(conn,
                             "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                             "status = 'done'",
                             1, p);
    long never = q_long(conn,
                        "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                        "status = 'pending' AND attempts = 0",
                        1, p);
    fprintf(stderr,
            "SIGTERM to a worker (grace %s s): exit 143 %.1f s later; %ld accounts done at the "
            "signal, %ld after, %ld pending again as never claimed, of 30\n",
            grace ? grace : "default 20", took, done, done_after, never);
    /* an account cut short by the grace keeps its claim's attempt, no more */
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'pending' AND attempts > 1",
                            1, p),
                     0);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                            "status = 'leased'",
                            1, p),
                     0);
    assert_true(never > 0);
    assert_true(done_after < 30);
    /* the accounts written are whole, once; nothing else is stored */
    assert_int_equal(
        q_long(conn, "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p),
        done_after * 3);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.target_result r JOIN "
                            "egressscan.work_item w USING (scan_id, account_id) WHERE "
                            "r.scan_id = $1 AND w.status <> 'done'",
                            1, p),
                     0);
    char *st = q_text(conn, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, p);
    assert_string_equal(st, "running");
    free(st);

    char *out = NULL;
    assert_int_equal(cli_run(&c, &out, NULL, "worker", "--scan", sid, "--no-progress", NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "scan %lld succeeded", id);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                            "AND status = 'ok'",
                            1, p),
                     30 * 3);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) - count(DISTINCT (account_id, region)) FROM "
                            "egressscan.target_result WHERE scan_id = $1",
                            1, p),
                     0);
    PQfinish(conn);
}

static void test_sigterm_stops_a_worker_in_the_middle_of_a_batch(void **state)
{
    (void)state;
    sigterm_worker(NULL);
}

/* With no grace, the requests under way are cut off at once: their accounts are not written
 * (given back with the attempt counted), nothing half-done is stored. */
static void test_sigterm_with_no_grace_cuts_off_the_requests_under_way(void **state)
{
    (void)state;
    sigterm_worker("0");
}

/* ---- (5) SIGTERM to a scan ---- */

/* A scan of 30 accounts (regions from DescribeRegions) on the slow fake, SIGTERM once the first
 * targets are stored: it exits 143 within the grace; the scans row is aborted with an error that
 * says it was stopped; every target the summary reports scanned is stored (ok, with its
 * clusters), and every other account of the list is there as not scanned (Interrupted). */
static void test_sigterm_stops_a_scan_and_records_what_it_did(void **state)
{
    (void)state;
    char url[256], accounts[1024];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    some_accounts(20, 30, accounts, sizeof accounts);
    cli_setenv(&c, "EGRESSSCAN_DB_BATCH_TARGETS", "4"); /* stored as they come */
    char log[320];
    snprintf(log, sizeof log, "%s/sigterm-scan.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "scan", "--accounts", accounts, "--concurrency", "3",
                                 "--no-progress", NULL);
    assert_true(pid > 0);
    long stored = 0;
    for (int i = 0; i < 1200 && stored == 0; i++) {
        sleep_ms(25);
        stored = q_long(conn, "SELECT count(*) FROM egressscan.target_result", 0, NULL);
    }
    assert_true(stored > 0);
    double t0 = mono_now();
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, 60);
    double took = mono_now() - t0;
    char *text = slurp(log);
    if (rc != 143 || took >= K8S_KILL_S)
        fail_msg("scan after SIGTERM: exit %d after %.1f s:\n%.4000s", rc, took, text);
    char *row = q_text(conn,
                       "SELECT concat_ws('|', status, error LIKE 'stopped by SIGTERM%', "
                       "finished_at IS NOT NULL) FROM egressscan.scan",
                       0, NULL);
    assert_string_equal(row, "aborted|t|t");
    free(row);
    /* "targets   N: K ok" in the summary: what it reports is what is stored */
    const char *t = strstr(text, "targets   ");
    if (!t)
        fail_msg("no summary:\n%.4000s", text);
    long total = 0, ok = 0;
    assert_int_equal(sscanf(t, "targets   %ld: %ld ok", &total, &ok), 2);
    assert_int_equal(q_long(conn, "SELECT count(*) FROM egressscan.target_result", 0, NULL), total);
    assert_int_equal(
        q_long(conn, "SELECT count(*) FROM egressscan.target_result WHERE status = 'ok'", 0, NULL),
        ok);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.target_result WHERE status <> 'ok' "
                            "AND error_code IS DISTINCT FROM 'Interrupted'",
                            0, NULL),
                     0);
    /* the clusters of every target stored ok are there */
    assert_int_equal(q_long(conn,
                            "SELECT count(*) FROM egressscan.target_result r WHERE status = 'ok' "
                            "AND clusters <> (SELECT count(*) FROM "
                            "egressscan.cluster_observation o WHERE o.scan_id = r.scan_id AND "
                            "o.account_id = r.account_id AND o.region = r.region)",
                            0, NULL),
                     0);
    /* every account of the list: scanned, or recorded not scanned */
    long interrupted = q_long(
        conn, "SELECT count(*) FROM egressscan.target_result WHERE error_code = 'Interrupted'", 0,
        NULL);
    assert_true(interrupted > 0);
    assert_int_equal(
        q_long(conn, "SELECT count(DISTINCT account_id) FROM egressscan.target_result", 0, NULL),
        30);
    fprintf(stderr,
            "SIGTERM to a scan: exit 143 %.1f s later; %ld targets stored at the signal, %ld ok "
            "after, %ld not scanned (Interrupted)\n",
            took, stored, ok, interrupted);
    free(text);
    /* the next scan is not hindered: nothing is left running */
    assert_int_equal(
        q_long(conn, "SELECT count(*) FROM egressscan.scan WHERE status = 'running'", 0, NULL), 0);
    PQfinish(conn);
}

/* ---- (6) two outages in one worker's life ---- */

/* One worker, EGRESSSCAN_DB_RETRY_SECONDS=12, two enqueued scans. Outage 1: finalizing the first
 * (a one-account scan), the drift stage's session is killed on every try (a trigger calls
 * pg_terminate_backend) for longer than the bound: the scan is not marked failed (its results
 * are all stored) but left for a later finalizer, and the worker goes on. Outage 2: PostgreSQL
 * stopped for 8 s in the middle of the second scan: more than the 5 s the finalization's bound
 * used to drop to for good, less than the worker's bound, which it gets whole again. The worker
 * exits 0 having finalized both. */
static void test_two_outages_each_get_the_full_bound(void **state)
{
    (void)state;
    char url[256], first[32], second[1024];
    PGconn *conn;
    struct cli c;
    fresh_db(url, sizeof url, &conn, &c);
    some_accounts(40, 1, first, sizeof first);
    some_accounts(41, 16, second, sizeof second);
    long long a = enqueue(&c, first, "us-east-1");
    long long b = enqueue(&c, second, NULL);
    char sa[32], sb[32], sql[640];
    snprintf(sa, sizeof sa, "%lld", a);
    snprintf(sb, sizeof sb, "%lld", b);
    q_exec(conn, "CREATE TABLE public.kill_drift (x integer)", 0, NULL);
    q_exec(conn, "INSERT INTO public.kill_drift VALUES (1)", 0, NULL);
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION public.kill_drift() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.scan_id = %lld AND EXISTS (SELECT 1 FROM public.kill_drift) THEN PERFORM "
             "pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid()); END IF; "
             "RETURN NEW; END $$",
             a);
    q_exec(conn, sql, 0, NULL);
    q_exec(conn,
           "CREATE TRIGGER kill_drift BEFORE INSERT ON egressscan.scan_compliance FOR EACH ROW "
           "EXECUTE FUNCTION public.kill_drift()",
           0, NULL);
    cli_setenv(&c, "EGRESSSCAN_DB_RETRY_SECONDS", "12");
    char log[320];
    snprintf(log, sizeof log, "%s/two-outages.log", fx.tmp);
    pid_t pid = spawn_egressscan(&c, log, "worker", "--batch", "2", "--concurrency", "3",
                                 "--lease-seconds", "30", "--no-progress", NULL);
    assert_true(pid > 0);
    /* outage 1 is over once the first scan's finalization gave up (or, before the fix, once it
     * was marked failed) */
    const char *pa[1] = {sa}, *pb[1] = {sb};
    int over = 0;
    double t1 = mono_now();
    for (int i = 0; i < 1200 && !over; i++) {
        sleep_ms(50);
        char *text = slurp(log);
        over = strstr(text, "finalization put off") != NULL;
        free(text);
        char *st = q_text(conn, "SELECT status FROM egressscan.scan WHERE scan_id = $1", 1, pa);
        over |= st && strcmp(st, "running") != 0;
        free(st);
    }
    assert_true(over);
    q_exec(conn, "DELETE FROM public.kill_drift", 0, NULL);
    fprintf(stderr, "outage 1 (drift killed) given up on after %.1f s\n", mono_now() - t1);
    /* outage 2, in the middle of the second scan */
    long done = 0;
    for (int i = 0; i < 1200 && done == 0; i++) {
        sleep_ms(25);
        done = q_long(conn,
                      "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1 AND "
                      "status = 'done'",
                      1, pb);
    }
    assert_true(done > 0 && done < 16);
    assert_int_equal(pgtest_stop_keep(&fx.pg, "fast"), 0);
    sleep_ms(8000);
    assert_int_equal(pgtest_start_again(&fx.pg), 0);
    PQreset(conn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    int rc = wait_exit(pid, 180);
    char *text = slurp(log);
    char *st = q_text(conn,
                      "SELECT string_agg(status, ',' ORDER BY scan_id) FROM egressscan.scan "
                      "WHERE scan_id IN ($1, $2)",
                      2, (const char *const[]){sa, sb});
    if (rc != 0 || !st || strcmp(st, "succeeded,succeeded") != 0)
        fail_msg("worker exited %d, scans %s:\n%.6000s", rc, st ? st : "?", text);
    free(st);
    free(text);
    assert_int_equal(q_long(conn,
                            "SELECT count(*) - count(DISTINCT (account_id, region)) FROM "
                            "egressscan.target_result WHERE scan_id = $1",
                            1, pb),
                     0);
    PQfinish(conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_credentials_exit_4_and_attempts_advance),
        cmocka_unit_test(test_a_write_error_that_recurs_ends_work_item_abandoned),
        cmocka_unit_test(test_a_region_listed_twice_is_scanned_once),
        cmocka_unit_test(test_sigterm_stops_a_worker_in_the_middle_of_a_batch),
        cmocka_unit_test(test_sigterm_with_no_grace_cuts_off_the_requests_under_way),
        cmocka_unit_test(test_sigterm_stops_a_scan_and_records_what_it_did),
        cmocka_unit_test(test_two_outages_each_get_the_full_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
