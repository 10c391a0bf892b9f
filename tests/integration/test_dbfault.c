/* test_dbfault.c - PostgreSQL restarted or gone in the middle of a scan: egressscan scans a slow
 * fakeaws while the test restarts the server (fast, immediate, or stopped for a few seconds) or
 * stops it past the retry bound; the stored results are complete and single, or the scan fails
 * plainly and the next scan marks it aborted. COMMITs that land without an answer (commits held
 * by a missing synchronous standby, then a crash) in a target batch, the findings and the scan's
 * end are not doubled. And, on the storage API: a batch written twice lands once, and a
 * reconnection restores the session (search_path, application_name, the scan's lock). No
 * assertion depends on timing: the test waits by bounded polling only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "storage/db.h"
#include "storage/db_internal.h"
#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"
#define REGIONS "us-east-1,us-east-2"
#define N_REGIONS 2
#define T0 1790000000.0

static struct {
    char tmp[64];
    struct pgtest pg;
    struct fakeproc fake;
    long targets;             /* active accounts x regions: what a complete scan scans */
    long suspended;           /* suspended accounts: one '*' row each, not scanned */
    long clusters;            /* in the truth */
    const char *some_account; /* an active account, for a quick second scan */
    long long findings;       /* findings of the first complete scan (every one raises the same) */
} fx;

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* A query's single value as a number on a fresh connection (the server restarts under the test):
 * -1 when the server cannot be reached or the query fails. */
static long long q_num(const char *sql, int n, const char *const *params)
{
    PGconn *c = PQconnectdb(fx.pg.url);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "q_num: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

/* The single text value of a query (malloc'd), or NULL. */
static char *q_text(const char *sql, int n, const char *const *params)
{
    PGconn *c = PQconnectdb(fx.pg.url);
    char *v = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

static const char *ll(char buf[32], long long v)
{
    snprintf(buf, 32, "%lld", v);
    return buf;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = s ? fread(s, 1, (size_t)n, f) : 0;
    if (s)
        s[got] = '\0';
    fclose(f);
    return s;
}

struct run {
    pid_t pid;
    char out_path[128], err_path[128];
    char *out, *err; /* after run_wait */
    int rc;
};

/* Starts `egressscan scan` against the fake with extra environment entries (NULL-terminated
 * "K", "V" pairs) and the scan arguments; stdout and stderr go to files in fx.tmp. */
static void run_start(struct run *r, const char *name, const char *const *env_kv,
                      const char *const *args)
{
    memset(r, 0, sizeof *r);
    struct cli c;
    cli_init(&c, BASE_KEY, BASE_SECRET, fx.fake.url, fx.pg.url);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", "3");
    for (; env_kv && env_kv[0]; env_kv += 2)
        cli_setenv(&c, env_kv[0], env_kv[1]);
    const char *argv[40] = {c.bin, "scan", "--no-progress", "--regions", REGIONS};
    int n = 5;
    for (; args && *args && n < 39; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    snprintf(r->out_path, sizeof r->out_path, "%s/%s.out", fx.tmp, name);
    snprintf(r->err_path, sizeof r->err_path, "%s/%s.err", fx.tmp, name);
    int out = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0 && err >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    r->pid = procs_spawn((char *const *)argv, c.env);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    close(out);
    close(err);
    assert_true(r->pid > 0);
}

/* 1 once the scan process has exited (r->rc set, output read). */
static int run_poll(struct run *r)
{
    int st;
    if (r->pid <= 0)
        return 1;
    if (waitpid(r->pid, &st, WNOHANG) != r->pid)
        return 0;
    r->pid = 0;
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out = slurp(r->out_path);
    r->err = slurp(r->err_path);
    return 1;
}

/* Waits for the exit (bounded: 180 s, then the scan is killed and the test fails). */
static int run_wait(struct run *r)
{
    for (int i = 0; i < 1800 && !run_poll(r); i++)
        sleep_ms(100);
    if (!run_poll(r)) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        fail_msg("egressscan scan did not exit within 180 s");
    }
    return r->rc;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void run_show(const struct run *r)
{
    fprintf(stderr, "egressscan exited %d\nstdout:\n%s\nstderr (last 3000 bytes):\n%s\n", r->rc,
            r->out ? r->out : "",
            r->err ? r->err + (strlen(r->err) > 3000 ? strlen(r->err) - 3000 : 0) : "");
}

/* The running scan's id, once it has one (bounded polling), else fails. */
static long long wait_running_scan(struct run *r)
{
    for (int i = 0; i < 600; i++) {
        long long id =
            q_num("SELECT max(scan_id) FROM egressscan.scan WHERE status = 'running'", 0, NULL);
        if (id > 0)
            return id;
        if (run_poll(r)) {
            run_show(r);
            fail_msg("the scan ended before it was seen running");
        }
        sleep_ms(50);
    }
    fail_msg("no running scan after 30 s");
    return -1;
}

/* Waits until scan has at least min targets stored (bounded), while the scan still runs. */
static void wait_targets(struct run *r, long long scan, long min)
{
    char b[32];
    const char *p[1] = {ll(b, scan)};
    for (int i = 0; i < 1200; i++) {
        long long n =
            q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p);
        if (n >= min)
            return;
        if (run_poll(r)) {
            run_show(r);
            fail_msg("the scan ended with %lld targets stored, before %ld", n, min);
        }
        sleep_ms(25);
    }
    fail_msg("fewer than %ld targets stored after 30 s", min);
}

static long count_in(const char *haystack, const char *needle)
{
    long n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    log_setup(LOG_WARN, LOG_TEXT, NULL);
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/egressscan-dbfault-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    chmod(fx.tmp, 0755);
    if (pgtest_start(&fx.pg) < 0)
        return -1;
    struct err e;
    struct db *db = db_connect(fx.pg.url, &e);
    if (!db || db_migrate(db, NULL, &e) < 0) {
        fprintf(stderr, "migrate: %s\n", e.message);
        db_close(db);
        return -1;
    }
    /* An immediate shutdown is a crash: with the harness's synchronous_commit=off it would lose
     * commits already acknowledged, which no client can make up for. This database commits
     * synchronously (fsync stays off: the OS keeps what a crashed server wrote). */
    PGresult *r = PQexecParams(db_pgconn(db), "ALTER DATABASE postgres SET synchronous_commit = on",
                               0, NULL, NULL, NULL, NULL, 0);
    int altered = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    r = PQexecParams(db_pgconn(db), "CREATE TABLE public.dbfault_probe (x integer)", 0, NULL, NULL,
                     NULL, NULL, 0);
    altered &= PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    db_close(db);
    if (!altered)
        return -1;
    /* Slow enough that a scan lasts a few seconds (every answer after 100 ms, 6 requests in
     * flight), so that the server can be restarted while batches are being written. */
    const char *args[] = {"--accounts",
                          "60",
                          "--regions",
                          "2",
                          "--clusters-per-account-region-mean",
                          "0.8",
                          "--seed",
                          "2718",
                          "--latency-ms",
                          "100",
                          NULL};
    if (fakeproc_start(&fx.fake, fx.tmp, "dbfault", 0, args) < 0)
        return -1;
    size_t i;
    json_t *a;
    long active = 0;
    json_array_foreach(json_object_get(fx.fake.truth, "accounts"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") != 0) {
            fx.suspended++;
            continue;
        }
        active++;
        if (!json_is_true(json_object_get(a, "is_management")))
            fx.some_account = json_string_value(json_object_get(a, "id"));
    }
    fx.targets = active * N_REGIONS;
    fx.clusters = (long)json_array_size(json_object_get(fx.fake.truth, "clusters"));
    return fx.targets > 0 && fx.clusters > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fakeproc_stop(&fx.fake);
    pgtest_stop(&fx.pg);
    char *rm[] = {"rm", "-rf", fx.tmp, NULL};
    procs_run(rm, NULL, NULL);
    return 0;
}

/* ---- scans under a restart ---- */

static const char *const small_batches[] = {"EGRESSSCAN_DB_BATCH_TARGETS", "4", NULL};
static const char *const slow_scan[] = {"--concurrency", "6", NULL};

/* What a complete scan of the fake leaves: one coverage row per target, all ok, and one
 * 'suspended' row per suspended account; the fake's
 * clusters exactly (none missing, none twice); one observation per cluster; one history interval
 * per cluster, open (the fake's modes never change, so no scan adds one). */
static void expect_complete(long long scan)
{
    char b[32];
    const char *p[1] = {ll(b, scan)};
    assert_int_equal(
        q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p),
        fx.targets + fx.suspended);
    assert_int_equal(q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                           "AND status = 'ok'",
                           1, p),
                     fx.targets);
    assert_int_equal(q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1 "
                           "AND status = 'suspended' AND region = '*'",
                           1, p),
                     fx.suspended);
    assert_int_equal(
        q_num("SELECT sum(clusters) FROM egressscan.target_result WHERE scan_id = $1", 1, p),
        fx.clusters);
    assert_int_equal(
        q_num("SELECT count(*) FROM egressscan.cluster_observation WHERE scan_id = $1", 1, p),
        fx.clusters);
    assert_int_equal(q_num("SELECT count(*) FROM egressscan.cluster_mode_interval", 0, NULL),
                     fx.clusters);
    assert_int_equal(
        q_num("SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL", 0, NULL),
        fx.clusters);
    char *diff = NULL;
    long d = fakeproc_diff_db(&fx.fake, fx.pg.url, &diff);
    if (d != 0)
        fprintf(stderr, "stored clusters against the truth:\n%s", diff ? diff : "");
    free(diff);
    assert_int_equal(d, 0);
    char *status = q_text("SELECT status FROM egressscan.scans WHERE scan_id = $1", 1, p);
    assert_non_null(status);
    assert_string_equal(status, "succeeded");
    free(status);
    /* the drift stage ran once: one compliance row, the findings every complete scan of the fake
     * raises, none twice (the same findings persist: no new one is opened) */
    assert_int_equal(
        q_num("SELECT count(*) FROM egressscan.scan_compliance WHERE scan_id = $1", 1, p), 1);
    long long raised =
        q_num("SELECT count(*) FROM egressscan.scan_finding WHERE scan_id = $1", 1, p);
    if (!fx.findings)
        fx.findings = raised;
    assert_true(raised > 0);
    assert_int_equal(raised, fx.findings);
    assert_int_equal(q_num("SELECT count(*) FROM egressscan.finding", 0, NULL), fx.findings);
}

/* Waits until the scan's log says what (bounded), while it runs. */
static void wait_log(struct run *r, const char *what)
{
    for (int i = 0; i < 1200; i++) {
        char *err = slurp(r->err_path);
        int seen = err && strstr(err, what);
        free(err);
        if (seen)
            return;
        if (run_poll(r)) {
            run_show(r);
            fail_msg("the scan ended before it logged '%s'", what);
        }
        sleep_ms(25);
    }
    fail_msg("the scan did not log '%s' within 30 s", what);
}

/* mode: pg_ctl restart -m mode; NULL: stopped (fast) until the writer has noticed and 1.5 s more,
 * then started again, so that reconnection attempts fail first. */
static void scan_through_restart(const char *name, const char *mode)
{
    struct run r;
    run_start(&r, name, small_batches, slow_scan);
    long long scan = wait_running_scan(&r);
    /* a fifth of the targets stored: the scan is well under way */
    wait_targets(&r, scan, fx.targets / 5);
    if (mode) {
        assert_int_equal(pgtest_restart(&fx.pg, mode), 0);
    } else {
        assert_int_equal(pgtest_stop_keep(&fx.pg, "fast"), 0);
        wait_log(&r, "connection lost while");
        /* down a while longer: the first reconnections fail (the outcome does not depend on
         * how many) */
        sleep_ms(1500);
        assert_int_equal(pgtest_start_again(&fx.pg), 0);
    }
    char b[32];
    const char *p[1] = {ll(b, scan)};
    long long at_restart =
        q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p);
    int rc = run_wait(&r);
    if (rc != 0)
        run_show(&r);
    assert_int_equal(rc, 0);
    const char *again = strstr(r.err, "reconnected to PostgreSQL after");
    const char *summary = strstr(r.out, "database  reconnected");
    fprintf(stderr,
            "[%s] %ld targets (%ld clusters), %lld stored when the server was back; %.*s; %.*s\n",
            name, fx.targets, fx.clusters, at_restart, again ? (int)strcspn(again, ":") : 0,
            again ? again : "", summary ? (int)strcspn(summary, "\n") : 0, summary ? summary : "");
    /* the restart was noticed and survived, and said so */
    assert_true(at_restart < fx.targets);
    assert_true(count_in(r.err, "connection lost while") >= 1);
    assert_true(count_in(r.err, "reconnected to PostgreSQL") >= 1);
    assert_non_null(strstr(r.out, "database  reconnected"));
    expect_complete(scan);
    run_free(&r);
}

/* ---- a COMMIT that landed although its answer never came ---- */

/* A statement on a fresh connection; 0 when it ran. */
static int q_exec(const char *sql)
{
    PGconn *c = PQconnectdb(fx.pg.url);
    int ok = 0;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "q_exec %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Makes every commit that wrote something wait for a synchronous standby that does not exist: a
 * committing session has written its commit record and waits (wait_event SyncRep) for an answer
 * that never comes. Returns once a probe commit waits so (the probe is left waiting: the restart
 * ends it). */
static void hold_commits(void)
{
    assert_int_equal(q_exec("ALTER SYSTEM SET synchronous_standby_names = 'dbfault_nobody'"), 0);
    assert_int_equal(q_exec("SELECT pg_catalog.pg_reload_conf()"), 0);
    for (int i = 0; i < 100; i++) {
        PGconn *c = PQconnectdb(fx.pg.url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        char pid[32];
        const char *p[1] = {ll(pid, PQbackendPID(c))};
        assert_int_equal(PQsendQuery(c, "INSERT INTO public.dbfault_probe VALUES (1)"), 1);
        int answered = 0;
        for (int k = 0; k < 20 && !answered; k++) {
            sleep_ms(25);
            PQconsumeInput(c);
            answered = !PQisBusy(c);
        }
        int waiting = !answered && q_num("SELECT count(*) FROM pg_catalog.pg_stat_activity "
                                         "WHERE pid = $1::int AND wait_event = 'SyncRep'",
                                         1, p) == 1;
        PQfinish(c);
        if (waiting)
            return;
    }
    fail_msg("synchronous_standby_names did not take effect");
}

/* Undoes hold_commits at once (cmocka teardown: also when the test failed midway). */
static int release_commits(void **state)
{
    (void)state;
    q_exec("ALTER SYSTEM RESET synchronous_standby_names");
    q_exec("SELECT pg_catalog.pg_reload_conf()");
    return 0;
}

/* The setting goes at the next start (no reload: the waiting commit stays waiting). */
static void release_commits_at_restart(void)
{
    assert_int_equal(q_exec("ALTER SYSTEM RESET synchronous_standby_names"), 0);
}

/* Waits until egressscan's session waits in wait_event (bounded), while the scan runs. */
static void wait_backend(struct run *r, const char *wait_event, const char *query_like)
{
    const char *p[2] = {wait_event, query_like};
    for (int i = 0; i < 1200; i++) {
        if (q_num("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = "
                  "'egressscan' AND wait_event = $1 AND query LIKE $2",
                  2, p) > 0)
            return;
        if (run_poll(r)) {
            run_show(r);
            fail_msg("the scan ended before it waited on %s", wait_event);
        }
        sleep_ms(25);
    }
    fail_msg("egressscan never waited on %s (%s)", wait_event, query_like);
}

/* Waits until scan has stored the whole organization snapshot (accounts, OUs, SCPs of the fake),
 * so that what it writes next are target batches. */
static void wait_snapshot(struct run *r, long long scan)
{
    char b[32];
    const char *p[1] = {ll(b, scan)};
    long accounts = (long)json_array_size(json_object_get(fx.fake.truth, "accounts"));
    long ous = (long)json_array_size(json_object_get(fx.fake.truth, "ous"));
    long scps = (long)json_array_size(json_object_get(fx.fake.truth, "scps"));
    for (int i = 0; i < 1200; i++) {
        if (q_num("SELECT count(*) FROM egressscan.scan_account WHERE scan_id = $1", 1, p) ==
                accounts &&
            q_num("SELECT count(*) FROM egressscan.scan_org_unit WHERE scan_id = $1", 1, p) ==
                ous &&
            q_num("SELECT count(*) FROM egressscan.scan_scp WHERE scan_id = $1", 1, p) == scps)
            return;
        if (run_poll(r)) {
            run_show(r);
            fail_msg("the scan ended before its organization snapshot was stored");
        }
        sleep_ms(25);
    }
    fail_msg("the organization snapshot was not stored after 30 s");
}

/* The server stops while a batch's COMMIT is written but unanswered: after the restart the batch
 * is there, and the writer, retrying it, finds it stored and writes nothing twice. */
static void test_a_batch_whose_commit_landed_unanswered_is_not_written_twice(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, "landed", small_batches, slow_scan);
    long long scan = wait_running_scan(&r);
    wait_snapshot(&r, scan);
    wait_targets(&r, scan, fx.targets / 5);
    hold_commits();
    wait_backend(&r, "SyncRep", "COMMIT");
    release_commits_at_restart();
    /* immediate: the commit record is in the WAL, recovery keeps it. (A fast shutdown would wait
     * for ever: the killed session drops its temp tables on the way out, a commit that waits for
     * the standby as well.) */
    assert_int_equal(pgtest_restart(&fx.pg, "immediate"), 0);
    int rc = run_wait(&r);
    if (rc != 0)
        run_show(&r);
    assert_int_equal(rc, 0);
    /* the batch had landed: the retry said so and left it alone */
    if (!strstr(r.err, "were already stored, not written again"))
        run_show(&r);
    assert_non_null(strstr(r.err, "were already stored, not written again"));
    assert_true(count_in(r.err, "reconnected to PostgreSQL") >= 1);
    expect_complete(scan);
    run_free(&r);
}

/* The same in the drift stage: the findings' COMMIT lands unanswered; the retried stage takes
 * them as written (no finding twice) and the scan ends succeeded. The findings lock, held by the
 * test, stops the stage just before it writes, so that commits can be held then. */
#define FINDINGS_LOCK "7306934700486098946"

static void test_findings_whose_commit_landed_unanswered_are_not_written_twice(void **state)
{
    (void)state;
    PGconn *lock = PQconnectdb(fx.pg.url);
    assert_int_equal(PQstatus(lock), CONNECTION_OK);
    PGresult *lr = PQexec(lock, "SELECT pg_catalog.pg_advisory_lock(" FINDINGS_LOCK ")");
    assert_int_equal(PQresultStatus(lr), PGRES_TUPLES_OK);
    PQclear(lr);
    struct run r;
    run_start(&r, "findings", small_batches, slow_scan);
    long long scan = wait_running_scan(&r);
    wait_backend(&r, "advisory", "%pg_advisory_xact_lock%");
    hold_commits();
    lr = PQexec(lock, "SELECT pg_catalog.pg_advisory_unlock(" FINDINGS_LOCK ")");
    assert_int_equal(PQresultStatus(lr), PGRES_TUPLES_OK);
    PQclear(lr);
    PQfinish(lock);
    wait_backend(&r, "SyncRep", "COMMIT");
    release_commits_at_restart();
    assert_int_equal(pgtest_restart(&fx.pg, "immediate"), 0);
    int rc = run_wait(&r);
    if (rc != 0 || !strstr(r.err, "findings already written"))
        run_show(&r);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(r.err, "findings already written by an earlier attempt"));
    expect_complete(scan);
    run_free(&r);
}

/* And in the scan's end: its status UPDATE commits unanswered; the retry finds the scan
 * finalized as it meant to and ends succeeded. A share lock on the scan row, held by the test
 * while the findings are written, stops the UPDATE so that commits can be held then. */
static void test_an_end_whose_commit_landed_unanswered_is_taken_as_done(void **state)
{
    (void)state;
    PGconn *lock = PQconnectdb(fx.pg.url);
    assert_int_equal(PQstatus(lock), CONNECTION_OK);
    PGresult *lr = PQexec(lock, "SELECT pg_catalog.pg_advisory_lock(" FINDINGS_LOCK ")");
    assert_int_equal(PQresultStatus(lr), PGRES_TUPLES_OK);
    PQclear(lr);
    struct run r;
    run_start(&r, "end", small_batches, slow_scan);
    long long scan = wait_running_scan(&r);
    wait_backend(&r, "advisory", "%pg_advisory_xact_lock%");
    char b[32];
    const char *p[1] = {ll(b, scan)};
    PQclear(PQexec(lock, "BEGIN"));
    lr = PQexecParams(lock, "SELECT 1 FROM egressscan.scan WHERE scan_id = $1::bigint FOR SHARE", 1,
                      NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(lr), PGRES_TUPLES_OK);
    PQclear(lr);
    lr = PQexec(lock, "SELECT pg_catalog.pg_advisory_unlock(" FINDINGS_LOCK ")");
    assert_int_equal(PQresultStatus(lr), PGRES_TUPLES_OK);
    PQclear(lr);
    /* the findings are written (FOR SHARE goes with the test's share lock); the end waits */
    wait_backend(&r, "transactionid", "UPDATE egressscan.scan s SET status%");
    hold_commits();
    PQclear(PQexec(lock, "ROLLBACK")); /* a rollback waits for no standby */
    PQfinish(lock);
    wait_backend(&r, "SyncRep", "UPDATE egressscan.scan s SET status%");
    release_commits_at_restart();
    assert_int_equal(pgtest_restart(&fx.pg, "immediate"), 0);
    int rc = run_wait(&r);
    if (rc != 0 || !strstr(r.err, "already succeeded by the attempt"))
        run_show(&r);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(r.err, "already succeeded by the attempt before the reconnection"));
    assert_non_null(strstr(r.out, "succeeded"));
    expect_complete(scan);
    run_free(&r);
}

static void test_scan_survives_a_fast_restart(void **state)
{
    (void)state;
    scan_through_restart("fast", "fast");
}

static void test_scan_survives_an_immediate_restart(void **state)
{
    (void)state;
    scan_through_restart("immediate", "immediate");
}

static void test_scan_survives_an_outage_shorter_than_the_bound(void **state)
{
    (void)state;
    scan_through_restart("outage", NULL);
}

/* ---- the server gone past the bound ---- */

static void test_scan_fails_plainly_when_the_database_stays_down(void **state)
{
    (void)state;
    struct run r;
    const char *env[] = {"EGRESSSCAN_DB_BATCH_TARGETS", "4", "EGRESSSCAN_DB_RETRY_SECONDS", "3",
                         NULL};
    run_start(&r, "down", env, slow_scan);
    long long scan = wait_running_scan(&r);
    wait_targets(&r, scan, fx.targets / 5);
    assert_int_equal(pgtest_stop_keep(&fx.pg, "fast"), 0);
    int rc = run_wait(&r);
    if (rc != 4 || getenv("DBFAULT_SHOW"))
        run_show(&r);
    assert_int_equal(rc, 4);
    /* plainly: unreachable, and how much was scanned but not stored */
    const char *m = strstr(r.err, "the database was unreachable: ");
    if (!m)
        run_show(&r);
    assert_non_null(m);
    long not_targets = -1, not_clusters = -1;
    assert_int_equal(sscanf(m,
                            "the database was unreachable: %ld targets (%ld clusters) scanned "
                            "but not written",
                            &not_targets, &not_clusters),
                     2);
    assert_true(not_targets > 0);
    assert_true(not_clusters >= 0);
    char line[128];
    snprintf(line, sizeof line, "not written %ld targets (%ld clusters)", not_targets,
             not_clusters);
    assert_non_null(strstr(r.out, line));
    assert_non_null(strstr(r.err, "it stays running until the next scan marks it aborted"));

    assert_int_equal(pgtest_start_again(&fx.pg), 0);
    char b[32];
    const char *p[1] = {ll(b, scan)};
    long long stored =
        q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, p);
    fprintf(stderr, "[down] %lld targets stored, %ld scanned but not written, of %ld\n", stored,
            not_targets, fx.targets);
    /* every target scanned is either stored or counted as not written; the scan stopped early
     * (discovery too: the stop is what it reports, not a discovery failure) */
    const char *t = strstr(r.out, "\n  targets ");
    long scanned = -1;
    assert_non_null(t);
    assert_int_equal(sscanf(t, "\n  targets %ld:", &scanned), 1);
    assert_true(stored > 0);
    assert_int_equal(stored + not_targets, scanned);
    assert_true(scanned <= fx.targets);
    assert_non_null(strstr(r.err, "stopping: results can no longer be stored"));
    assert_null(strstr(r.err, "Organizations discovery failed"));
    /* every stored target whole: its clusters observed, as many as it says */
    assert_int_equal(q_num("SELECT count(*) FROM egressscan.target_result t WHERE t.scan_id = $1 "
                           "AND t.status = 'ok' AND t.clusters <> (SELECT count(*) FROM "
                           "egressscan.cluster_observation o WHERE o.scan_id = t.scan_id AND "
                           "o.account_id = t.account_id AND o.region = t.region)",
                           1, p),
                     0);

    /* nobody could say it failed: it is running until the next scan begins and marks it */
    char *status = q_text("SELECT status FROM egressscan.scans WHERE scan_id = $1", 1, p);
    assert_non_null(status);
    assert_string_equal(status, "running");
    free(status);
    struct run next;
    const char *one[] = {"--accounts", fx.some_account, NULL};
    run_start(&next, "next", NULL, one);
    int next_rc = run_wait(&next);
    if (next_rc != 0)
        run_show(&next);
    assert_int_equal(next_rc, 0);
    assert_non_null(strstr(next.err, "marked aborted"));
    status = q_text("SELECT status FROM egressscan.scans WHERE scan_id = $1", 1, p);
    assert_non_null(status);
    assert_string_equal(status, "aborted");
    free(status);
    run_free(&next);
    run_free(&r);
}

/* ---- the storage API directly ---- */

static struct target_result target_of(const char *account, const char *region,
                                      struct cluster *clusters, size_t n, double at)
{
    struct target_result t = {.account_id = account,
                              .region = region,
                              .status = TARGET_OK,
                              .clusters = clusters,
                              .n_clusters = n,
                              .scanned_at = at};
    return t;
}

static struct cluster cluster_of(char *arn, size_t cap, const char *account, const char *region,
                                 const char *name, const char *mode)
{
    snprintf(arn, cap, "arn:aws:eks:%s:%s:cluster/%s", region, account, name);
    struct cluster c = {.arn = arn,
                        .name = name,
                        .egress_mode = mode,
                        .endpoint_public_access = -1,
                        .endpoint_private_access = -1};
    return c;
}

static long long begin(struct db *db, double at)
{
    long long id = 0;
    struct err e;
    if (db_scan_begin(db, at, "{}", &id, NULL, &e) < 0)
        fail_msg("db_scan_begin: %s (%s)", e.message, e.code);
    return id;
}

static void test_a_batch_written_again_lands_once(void **state)
{
    (void)state;
    struct err e;
    struct db *db = db_connect(fx.pg.url, &e);
    assert_non_null(db);
    long long scan = begin(db, T0);
    char arn1[128], arn2[128], arn3[128];
    struct cluster c1 = cluster_of(arn1, sizeof arn1, "333344445555", "eu-west-1", "a", NULL);
    struct cluster c2 =
        cluster_of(arn2, sizeof arn2, "333344445555", "eu-west-1", "b", "CUSTOMER_ROUTED");
    struct cluster c3 = cluster_of(arn3, sizeof arn3, "333344445555", "eu-west-2", "c", NULL);
    struct cluster first[2] = {c1, c2};
    struct target_result t1 = target_of("333344445555", "eu-west-1", first, 2, T0 + 1);
    struct target_result t2 = target_of("333344445555", "eu-west-2", &c3, 1, T0 + 2);
    const struct target_result *batch[1] = {&t1};
    char b[32];
    const char *p[1] = {ll(b, scan)};
    const char *count_sql =
        "SELECT (SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1) * 1000000 + "
        "(SELECT count(*) FROM egressscan.cluster_observation WHERE scan_id = $1) * 1000 + "
        "(SELECT count(*) FROM egressscan.cluster_mode_interval WHERE account_id = "
        "'333344445555')";

    assert_int_equal(db_write_targets(db, scan, batch, 1, &e), 0);
    assert_int_equal(q_num(count_sql, 1, p), 1002002);
    /* the same batch again (its COMMIT landed, the answer did not): nothing doubles */
    assert_int_equal(db_write_targets(db, scan, batch, 1, &e), 0);
    assert_int_equal(q_num(count_sql, 1, p), 1002002);
    /* a batch with the stored target and a new one: only the new one is written */
    const struct target_result *both[2] = {&t1, &t2};
    assert_int_equal(db_write_targets(db, scan, both, 2, &e), 0);
    assert_int_equal(q_num(count_sql, 1, p), 2003003);
    assert_int_equal(db_scan_finish(db, scan, T0 + 10, "succeeded", NULL, NULL, &e), 0);
    db_close(db);
}

struct write_op {
    long long scan;
    const struct target_result *const *batch;
    size_t n;
    int runs;
};

static int write_op(struct db *db, void *ud, struct err *err)
{
    struct write_op *o = ud;
    o->runs++;
    return db_write_targets(db, o->scan, o->batch, o->n, err);
}

static void test_a_reconnection_restores_the_session(void **state)
{
    (void)state;
    struct err e;
    struct db *db = db_connect(fx.pg.url, &e);
    assert_non_null(db);
    db_set_retry_bound(db, 30);
    long long scan = begin(db, T0 + 100);
    char arn[128];
    struct cluster c = cluster_of(arn, sizeof arn, "444455556666", "eu-west-1", "x", NULL);
    struct target_result t1 = target_of("444455556666", "eu-west-1", &c, 1, T0 + 101);
    struct target_result t2 = target_of("444455556666", "eu-west-2", NULL, 0, T0 + 102);
    const struct target_result *b1[1] = {&t1}, *b2[1] = {&t2};
    assert_int_equal(db_write_targets(db, scan, b1, 1, &e), 0); /* staging tables exist */

    /* the session is killed under it (57P01 at the next statement) */
    char pidb[32];
    const char *pp[1] = {ll(pidb, PQbackendPID(db_pgconn(db)))};
    assert_int_equal(q_num("SELECT pg_catalog.pg_terminate_backend($1::int)::int", 1, pp), 1);
    struct write_op o = {scan, b2, 1, 0};
    int retries = -1;
    err_clear(&e);
    if (db_retry(db, "writing a test batch", write_op, &o, &retries, &e) < 0)
        fail_msg("db_retry: %s (%s)", e.message, e.code);
    assert_int_equal(retries, 1);
    assert_int_equal(o.runs, 2);
    assert_int_equal(db_reconnect_count(db), 1);

    /* what the session carried is back: search_path, application_name, the scan's lock */
    char npidb[32];
    const char *np[1] = {ll(npidb, PQbackendPID(db_pgconn(db)))};
    assert_string_not_equal(np[0], pp[0]);
    PGresult *r = PQexecParams(db_pgconn(db), "SHOW search_path", 0, NULL, NULL, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "pg_catalog");
    PQclear(r);
    char *app = q_text("SELECT application_name FROM pg_stat_activity WHERE pid = $1::int", 1, np);
    assert_non_null(app);
    assert_string_equal(app, "egressscan");
    free(app);
    char sb[32];
    const char *lp[2] = {np[0], ll(sb, scan)};
    assert_int_equal(q_num("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                           "granted AND pid = $1::int AND classid = " DB_SCAN_LOCK_CLASS
                           "::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2",
                           2, lp),
                     1);
    /* and so a scan beginning now sees this one alive: it marks nothing aborted */
    struct db *other = db_connect(fx.pg.url, &e);
    assert_non_null(other);
    long long other_scan = 0;
    int aborted = -1;
    assert_int_equal(db_scan_begin(other, T0 + 200, "{}", &other_scan, &aborted, &e), 0);
    assert_int_equal(aborted, 0);
    assert_int_equal(db_scan_finish(other, other_scan, T0 + 201, "succeeded", NULL, NULL, &e), 0);
    db_close(other);

    /* the retried batch is there once; the connection goes on */
    const char *sp[1] = {lp[1]};
    assert_int_equal(
        q_num("SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1", 1, sp), 2);
    assert_int_equal(db_scan_finish(db, scan, T0 + 110, "succeeded", NULL, NULL, &e), 0);

    /* a statement the server refuses is not retried as an outage: the batch is written again a
     * target at a time, once, and the refused target recorded as not stored (a trigger plays
     * the refusal: values the server would refuse are stopped by the writer's own checks) */
    assert_int_equal(q_exec("CREATE FUNCTION public.dbfault_refuse() RETURNS trigger "
                            "LANGUAGE plpgsql AS $f$BEGIN IF NEW.account_id = '999988887777' "
                            "THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = "
                            "'check_violation'; END IF; RETURN NEW; END$f$"),
                     0);
    assert_int_equal(q_exec("CREATE TRIGGER dbfault_refuse BEFORE INSERT ON "
                            "egressscan.target_result FOR EACH ROW EXECUTE FUNCTION "
                            "public.dbfault_refuse()"),
                     0);
    struct target_result bad = target_of("999988887777", "eu-west-1", NULL, 0, T0 + 120);
    long long scan2 = begin(db, T0 + 120);
    const struct target_result *b3[1] = {&bad};
    struct write_op o3 = {scan2, b3, 1, 0};
    err_clear(&e);
    int wrote = db_retry(db, "writing a bad batch", write_op, &o3, &retries, &e);
    q_exec("DROP TRIGGER dbfault_refuse ON egressscan.target_result");
    q_exec("DROP FUNCTION public.dbfault_refuse()");
    assert_int_equal(wrote, -1);
    assert_string_equal(e.code, "23514");
    assert_int_equal(o3.runs, 1);
    assert_int_equal(retries, 0);
    assert_int_equal(db_scan_finish(db, scan2, T0 + 121, "failed", NULL, "test", &e), 0);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* the scans first: their checks compare every stored cluster with the fake's */
        cmocka_unit_test(test_scan_survives_a_fast_restart),
        cmocka_unit_test(test_scan_survives_an_immediate_restart),
        cmocka_unit_test(test_scan_survives_an_outage_shorter_than_the_bound),
        cmocka_unit_test_teardown(test_a_batch_whose_commit_landed_unanswered_is_not_written_twice,
                                  release_commits),
        cmocka_unit_test_teardown(
            test_findings_whose_commit_landed_unanswered_are_not_written_twice, release_commits),
        cmocka_unit_test_teardown(test_an_end_whose_commit_landed_unanswered_is_taken_as_done,
                                  release_commits),
        cmocka_unit_test(test_scan_fails_plainly_when_the_database_stays_down),
        cmocka_unit_test(test_a_batch_written_again_lands_once),
        cmocka_unit_test(test_a_reconnection_restores_the_session),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
