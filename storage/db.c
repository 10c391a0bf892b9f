/* db.c - the PostgreSQL connection (secure search_path, no password in any message), the helpers
 * every storage file uses to run statements and keep SQLSTATEs, and the scan run lifecycle:
 * begin (marking scans whose process ended as aborted) and finish. */
#include "storage/db_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

PGconn *db_pgconn(struct db *db)
{
    return db ? db->conn : NULL;
}

/* Copies src into dst (cap bytes) without the trailing newlines libpq adds. */
static void copy_trimmed(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
    size_t n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r' || dst[n - 1] == ' '))
        dst[--n] = '\0';
}

int db_fail(struct db *db, const PGresult *r, const char *what, struct err *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[ERR_MSG_MAX];
    if (primary)
        copy_trimmed(msg, sizeof msg, primary);
    else if (r && PQresultErrorMessage(r)[0])
        copy_trimmed(msg, sizeof msg, PQresultErrorMessage(r));
    else
        copy_trimmed(msg, sizeof msg, db && db->conn ? PQerrorMessage(db->conn) : "no connection");
    const char *code = state && state[0] ? state
                       : (!db || !db->conn || PQstatus(db->conn) == CONNECTION_BAD)
                           ? ERR_DB_CONNECT
                           : "DatabaseError";
    if (detail)
        return err_set(err, code, "%s: %s (%s)", what, msg, detail);
    return err_set(err, code, "%s: %s", what, msg);
}

PGresult *db_query(struct db *db, const char *sql, int n, const char *const *params,
                   const char *what, struct err *err)
{
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    db_fail(db, r, what, err);
    PQclear(r);
    return NULL;
}

int db_command(struct db *db, const char *sql, int n, const char *const *params, const char *what,
               struct err *err)
{
    PGresult *r = db_query(db, sql, n, params, what, err);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_begin(struct db *db, struct err *err)
{
    return db_command(db, "BEGIN", 0, NULL, "BEGIN", err);
}

int db_commit(struct db *db, struct err *err)
{
    PGresult *r = db_query(db, "COMMIT", 0, NULL, "COMMIT", err);
    if (!r)
        return -1;
    /* COMMIT of a failed transaction "succeeds" as ROLLBACK: never report that as written. */
    int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
        return err_set(err, "40000", "COMMIT: the transaction was rolled back");
    return 0;
}

void db_rollback(struct db *db)
{
    PQclear(PQexecParams(db->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}

/* Server notices (e.g. from a migration) go to the log instead of stderr. */
static void on_notice(void *ud, const char *message)
{
    (void)ud;
    char line[ERR_MSG_MAX];
    copy_trimmed(line, sizeof line, message);
    log_info("db", "%s", line);
}

/* Overwrites every occurrence of secret in msg with '*' (libpq does not put passwords in its
 * messages; this is a second line of defence). */
static void redact(char *msg, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0)
        return;
    for (char *p = strstr(msg, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

/* The connection's error message with the password it was made with (if any) starred out. */
static void connect_message(PGconn *conn, char *msg, size_t cap)
{
    copy_trimmed(msg, cap, PQerrorMessage(conn));
    PQconninfoOption *used = PQconninfo(conn);
    for (PQconninfoOption *o = used; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0)
            redact(msg, o->val);
    PQconninfoFree(used);
}

/* Every statement schema-qualifies egressscan.; nothing else may be found by name. */
static int secure_search_path(struct db *db, struct err *err)
{
    return db_command(db, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)", 0,
                      NULL, "setting search_path", err);
}

struct db *db_connect(const char *url, struct err *err)
{
    struct db *db = NULL;
    PGconn *conn = NULL;
    PQconninfoOption *parsed = NULL;
    char *parse_error = NULL;

    const char *conninfo = url && url[0] ? url : getenv("DATABASE_URL");
    if (!conninfo)
        conninfo = ""; /* libpq's PG* variables and .pgpass */
    /* Parsed first because libpq's parse errors may quote pieces of the string, the password
     * among them: this message never does. */
    parsed = PQconninfoParse(conninfo, &parse_error);
    if (!parsed) {
        err_set(err, ERR_CONFIG,
                "the database URL or connection string is malformed (not shown: it may hold a "
                "password)");
        goto cleanup;
    }
    /* Defaults for what the URL does not set (it may set any of them). connect_timeout: a
     * connect that hangs (an unreachable host) must not outlast the reconnect bound. keepalives:
     * a peer that vanished (a partition, a host that died without closing the socket) is noticed
     * after ~60 s of silence instead of the kernel's two hours, even while a query is waiting for
     * its answer; then the connection counts as lost and is retried. Ignored on Unix sockets. */
    static const char *const defaults[][2] = {
        {"connect_timeout", "10"}, /* first: PGCONNECT_TIMEOUT sets it too */
        {"keepalives", "1"},           {"keepalives_idle", "30"},
        {"keepalives_interval", "10"}, {"keepalives_count", "3"},
    };
    enum { NDEFAULTS = sizeof defaults / sizeof defaults[0] };
    /* expand_dbname: conninfo (URI or key=value) is expanded in place of dbname; the keys after
     * it override what it says, so only the defaults it leaves unset follow it. */
    const char *keys[3 + NDEFAULTS + 1] = {"dbname", "application_name", "client_encoding"};
    const char *values[3 + NDEFAULTS + 1] = {conninfo, "egressscan", "UTF8"};
    size_t n = 3;
    for (size_t d = 0; d < NDEFAULTS; d++) {
        int set = 0;
        for (PQconninfoOption *o = parsed; o->keyword; o++)
            if (strcmp(o->keyword, defaults[d][0]) == 0 && o->val && o->val[0])
                set = 1;
        if (d == 0 && getenv("PGCONNECT_TIMEOUT") && getenv("PGCONNECT_TIMEOUT")[0])
            set = 1;
        if (!set) {
            keys[n] = defaults[d][0];
            values[n++] = defaults[d][1];
        }
    }
    keys[n] = values[n] = NULL;
    conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        err_set(err, ERR_NOMEM, "out of memory connecting to PostgreSQL");
        goto cleanup;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[ERR_MSG_MAX];
        connect_message(conn, msg, sizeof msg);
        for (PQconninfoOption *o = parsed; o->keyword; o++)
            if (strcmp(o->keyword, "password") == 0)
                redact(msg, o->val);
        err_set(err, ERR_DB_CONNECT, "cannot connect to PostgreSQL: %s", msg);
        goto cleanup;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);

    db = calloc(1, sizeof *db);
    if (!db) {
        err_set(err, ERR_NOMEM, "out of memory connecting to PostgreSQL");
        goto cleanup;
    }
    db->conn = conn;
    db->retry_bound_s = DB_RETRY_BOUND_S;
    conn = NULL;
    if (secure_search_path(db, err) < 0) {
        db_close(db);
        db = NULL;
    }

cleanup:
    if (conn)
        PQfinish(conn);
    PQconninfoFree(parsed);
    PQfreemem(parse_error);
    return db;
}

int db_url_has_password(const char *url)
{
    if (!url)
        return 0;
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    int found = 0;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            found = 1;
    PQconninfoFree(opts);
    return found;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    /* Ending the session releases its advisory locks (a running scan's among them). */
    PQfinish(db->conn);
    free(db);
}

/* ---- scan runs ---- */

#define SCAN_LOCK_ARGS DB_SCAN_LOCK_CLASS ", ($1::bigint % 2147483648)::integer"

/* Releases the session lock of scan id (decimal text; "" does nothing), ignoring failures. */
static void unlock_scan_quietly(struct db *db, const char *id)
{
    if (!id[0])
        return;
    const char *p[1] = {id};
    PQclear(PQexecParams(db->conn, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1,
                         NULL, p, NULL, NULL, 0));
}

int db_scan_begin(struct db *db, double started_at, const char *options_json, long long *scan_id,
                  int *aborted, struct err *err)
{
    int rc = -1, in_tx = 0, n_aborted = 0;
    long long new_id = 0;
    char held_other[32] = ""; /* a dead scan's lock taken here, until it is released */
    char own[32] = "";        /* the new scan's lock, once taken */
    PGresult *r = NULL, *t = NULL;

    if (db->locked_scan_id) {
        err_set(err, "ScanInProgress",
                "this connection is running scan %lld; finish it before beginning another",
                db->locked_scan_id);
        goto cleanup;
    }
    if (!isfinite(started_at)) {
        err_set(err, ERR_INVALID, "scan start time is not a number");
        goto cleanup;
    }
    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;

    /* A running scan holds a session lock on its id while its process lives: a lock we can
     * take means nobody will finish that scan. SKIP LOCKED: a concurrent begin handles those.
     * Enqueued scans (options.enqueued, set by queue_create) have no such process: their
     * leases say whether they live (queue_abort_stale). */
    r = db_query(db,
                 "SELECT scan_id FROM egressscan.scan WHERE status = 'running' AND "
                 "(options->>'enqueued') IS DISTINCT FROM 'true' ORDER BY scan_id "
                 "FOR UPDATE SKIP LOCKED",
                 0, NULL, "listing running scans", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *p[1] = {PQgetvalue(r, i, 0)};
        t = db_query(db, "SELECT pg_catalog.pg_try_advisory_lock(" SCAN_LOCK_ARGS ")", 1, p,
                     "probing a running scan", err);
        if (!t)
            goto cleanup;
        int owner_gone = strcmp(PQgetvalue(t, 0, 0), "t") == 0;
        PQclear(t);
        t = NULL;
        if (!owner_gone)
            continue;
        snprintf(held_other, sizeof held_other, "%s", p[0]);
        if (db_command(db,
                       "UPDATE egressscan.scan SET status = 'aborted', finished_at = "
                       "pg_catalog.now(), error = 'process ended without finalizing' "
                       "WHERE scan_id = $1",
                       1, p, "marking a scan aborted", err) < 0 ||
            db_command(db, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1, p,
                       "releasing an aborted scan's lock", err) < 0)
            goto cleanup;
        held_other[0] = '\0';
        n_aborted++;
    }
    PQclear(r);
    r = NULL;

    char when[64], pid[24], host[256];
    snprintf(when, sizeof when, "%.6f", started_at);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    if (gethostname(host, sizeof host) < 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    const char *ins[4] = {when, options_json, pid, host[0] ? host : NULL};
    r = db_query(db,
                 "INSERT INTO egressscan.scan (started_at, status, options, pid, host) "
                 "VALUES (pg_catalog.to_timestamp($1::float8), 'running', "
                 "COALESCE($2::jsonb, '{}'::jsonb), $3::integer, $4) RETURNING scan_id",
                 4, ins, "creating the scan", err);
    if (!r)
        goto cleanup;
    new_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    const char *lk[1] = {PQgetvalue(r, 0, 0)};
    /* Session level: survives the commit, held until finish or until the connection ends.
     * Taken before the commit, so no other session ever sees this scan running unlocked. */
    if (db_command(db, "SELECT pg_catalog.pg_advisory_lock(" SCAN_LOCK_ARGS ")", 1, lk,
                   "locking the scan", err) < 0)
        goto cleanup;
    snprintf(own, sizeof own, "%s", lk[0]);
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    db->locked_scan_id = new_id;
    *scan_id = new_id;
    if (aborted)
        *aborted = n_aborted;
    rc = 0;

cleanup:
    PQclear(t);
    PQclear(r);
    if (in_tx) {
        db_rollback(db);
        /* Session advisory locks ignore rollbacks: give back what this attempt took. */
        unlock_scan_quietly(db, own);
        unlock_scan_quietly(db, held_other);
    }
    return rc;
}

int db_scan_finish(struct db *db, long long scan_id, double finished_at, const char *status,
                   const struct scan_totals *totals, const char *error, struct err *err)
{
    int rc = -1;
    PGresult *r = NULL;
    if (!status || (strcmp(status, "succeeded") != 0 && strcmp(status, "partial") != 0 &&
                    strcmp(status, "failed") != 0 && strcmp(status, "aborted") != 0)) {
        err_set(err, ERR_INVALID, "a scan ends succeeded, partial, failed or aborted, not '%s'",
                status ? status : "(null)");
        goto cleanup;
    }
    if (!isfinite(finished_at)) {
        err_set(err, ERR_INVALID, "scan end time is not a number");
        goto cleanup;
    }
    char id[32], when[64], calls[32], throttled[32], retries[32];
    snprintf(id, sizeof id, "%lld", scan_id);
    snprintf(when, sizeof when, "%.6f", finished_at);
    snprintf(calls, sizeof calls, "%lld", totals ? totals->api_calls : 0);
    snprintf(throttled, sizeof throttled, "%lld", totals ? totals->throttled : 0);
    snprintf(retries, sizeof retries, "%lld", totals ? totals->retries : 0);
    const char *p[7] = {id, status, when, error, calls, throttled, retries};
    r = db_query(db,
                 "UPDATE egressscan.scan s SET status = $2, finished_at = "
                 "pg_catalog.to_timestamp($3::float8), error = $4, api_calls = $5::bigint, "
                 "throttled = $6::bigint, retries = $7::bigint, targets_total = c.total, "
                 "targets_ok = c.ok, targets_failed = c.failed, clusters_seen = c.clusters "
                 "FROM (SELECT pg_catalog.count(*)::integer AS total, "
                 "(pg_catalog.count(*) FILTER (WHERE status = 'ok'))::integer AS ok, "
                 "(pg_catalog.count(*) FILTER (WHERE status NOT IN ('ok', 'suspended')))::integer "
                 "AS failed, "
                 "COALESCE(pg_catalog.sum(clusters) FILTER (WHERE status = 'ok'), 0)::integer "
                 "AS clusters FROM egressscan.target_result WHERE scan_id = $1::bigint) c "
                 "WHERE s.scan_id = $1::bigint AND s.status = 'running' RETURNING s.scan_id",
                 7, p, "finishing the scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = db_query(db, "SELECT status FROM egressscan.scan WHERE scan_id = $1::bigint", 1, p,
                     "finishing the scan", err);
        if (!r)
            goto cleanup;
        if (PQntuples(r) == 0)
            err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        else
            err_set(err, "ScanNotRunning", "scan %lld is %s, not running: not finished again",
                    scan_id, PQgetvalue(r, 0, 0));
        goto cleanup;
    }
    if (db->locked_scan_id == scan_id) {
        struct err ignored;
        if (db_command(db, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1, p,
                       "releasing the scan's lock", &ignored) < 0)
            log_warn("db", "%s (the lock goes with the connection)", ignored.message);
        db->locked_scan_id = 0;
    }
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}

/* ---- a connection lost and found again ---- */

int db_connection_lost(const struct db *db, const struct err *err)
{
    if (db && (!db->conn || PQstatus(db->conn) == CONNECTION_BAD))
        return 1;
    if (!err)
        return 0;
    const char *c = err->code;
    return strcmp(c, ERR_DB_CONNECT) == 0 || strncmp(c, "08", 2) == 0 || strcmp(c, "57P01") == 0 ||
           strcmp(c, "57P02") == 0 || strcmp(c, "57P03") == 0;
}

int db_reconnect(struct db *db, struct err *err)
{
    int rc = -1;
    PGresult *r = NULL;
    PQreset(db->conn);     /* the same parameters; notice processor and application_name kept */
    db->staging_ready = 0; /* temp tables went with the old session */
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char msg[ERR_MSG_MAX];
        connect_message(db->conn, msg, sizeof msg);
        err_set(err, ERR_DB_CONNECT, "cannot connect to PostgreSQL: %s", msg);
        goto cleanup;
    }
    if (secure_search_path(db, err) < 0)
        goto cleanup;
    if (db->locked_scan_id) {
        /* The old session's lock went with it: take it again, so that a scan beginning now sees
         * this one as alive. (One that began while the connection was down may have marked it
         * aborted; the scan's next write finds that out.) */
        char id[32];
        snprintf(id, sizeof id, "%lld", db->locked_scan_id);
        const char *p[1] = {id};
        r = db_query(db, "SELECT pg_catalog.pg_try_advisory_lock(" SCAN_LOCK_ARGS ")", 1, p,
                     "locking the scan again", err);
        if (!r)
            goto cleanup;
        if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
            err_set(err, "ScanLockBusy",
                    "scan %lld: another session holds its lock (a scan beginning right now)",
                    db->locked_scan_id);
            goto cleanup;
        }
    }
    db->reconnects++;
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}

void db_set_retry_bound(struct db *db, double seconds)
{
    db->retry_bound_s = isfinite(seconds) && seconds > 0 ? seconds : 0;
}

double db_retry_bound(const struct db *db)
{
    return db->retry_bound_s;
}

long db_reconnect_count(const struct db *db)
{
    return db->reconnects;
}

long db_targets_rejected(const struct db *db)
{
    return db->targets_rejected;
}

int db_refused_statement(const struct db *db, const struct err *err)
{
    const char *c = err->code;
    if (strlen(c) != 5 || strspn(c, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5)
        return 0; /* not a SQLSTATE: one of ours (ScanNotRunning, OutOfMemory, ...) */
    return !db_connection_lost(db, err);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

#define RETRY_FIRST_DELAY_S 0.2
#define RETRY_MAX_DELAY_S 5.0

int db_retry(struct db *db, const char *what, db_op_fn op, void *ud, int *retries, struct err *err)
{
    int n_retries = 0, attempts = 0;
    int rc = op(db, ud, err);
    /* The bound runs from the first loss: a server that keeps failing is given up on in time. */
    double lost_at = mono_now(), delay = RETRY_FIRST_DELAY_S;
    while (rc < 0 && db_connection_lost(db, err)) {
        double left = db->retry_bound_s - (mono_now() - lost_at);
        if (left <= 0) {
            struct err last = *err; /* err_set must not read what it writes */
            err_set(err, last.code,
                    "the database was unreachable for %.1f s (%d reconnection attempts, bound "
                    "%.0f s) while %s: %s",
                    mono_now() - lost_at, attempts, db->retry_bound_s, what, last.message);
            break;
        }
        if (attempts == 0)
            log_warn("db", "connection lost while %s (%s: %s): reconnecting for up to %.0f s", what,
                     err->code, err->message, db->retry_bound_s);
        sleep_s(delay < left ? delay : left);
        delay = delay * 2 < RETRY_MAX_DELAY_S ? delay * 2 : RETRY_MAX_DELAY_S;
        attempts++;
        struct err re;
        err_clear(&re);
        if (db_reconnect(db, &re) < 0) {
            /* still down, or the scan's lock is being probed by a beginning scan: either way
             * the connection is not usable yet (the reason is kept for the final message) */
            const char *code = strcmp(re.code, "ScanLockBusy") == 0 ? ERR_DB_CONNECT : re.code;
            err_set(err, code, "%s", re.message);
            if (!db_connection_lost(db, err))
                break; /* e.g. search_path refused: not an outage */
            continue;
        }
        log_info("db", "reconnected to PostgreSQL after %.1f s (attempt %d): %s again",
                 mono_now() - lost_at, attempts, what);
        n_retries++;
        err_clear(err);
        rc = op(db, ud, err);
    }
    if (retries)
        *retries = n_retries;
    return rc;
}

int db_latest_finalized_scan(struct db *db, long long *scan_id, struct err *err)
{
    /* the same definition of "latest finalized" as the coverage view */
    PGresult *r = db_query(db,
                           "SELECT scan_id FROM egressscan.scan "
                           "WHERE status IN ('succeeded', 'partial') "
                           "ORDER BY started_at DESC, scan_id DESC LIMIT 1",
                           0, NULL, "latest finalized scan", err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0)
        rc = err_set(err, "NoScan", "no finalized scan yet: run egressscan scan first");
    else
        *scan_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

int db_scan_info(struct db *db, long long scan_id, struct scan_info *out, struct err *err)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", scan_id);
    const char *params[1] = {id};
    PGresult *r = db_query(db,
                           "SELECT status, to_char(started_at AT TIME ZONE 'UTC', "
                           "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), scps_known "
                           "FROM egressscan.scan WHERE scan_id = $1::bigint",
                           1, params, "scan info", err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0) {
        rc = err_set(err, "NoScan", "there is no scan %lld", scan_id);
    } else {
        memset(out, 0, sizeof *out);
        out->scan_id = scan_id;
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, 0, 0));
        snprintf(out->started_at, sizeof out->started_at, "%s", PQgetvalue(r, 0, 1));
        out->scps_known = PQgetisnull(r, 0, 2) ? -1 : strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    }
    PQclear(r);
    return rc;
}

/* ---- COPY FROM STDIN helpers shared by the writers ---- */

int db_copy_field(struct buf *b, const char *s, char end)
{
    if (!s)
        return buf_append(b, "\\N", 2) < 0 ? -1 : buf_putc(b, end);
    while (*s) {
        size_t run = strcspn(s, "\\\t\n\r");
        if (buf_append(b, s, run) < 0)
            return -1;
        s += run;
        if (!*s)
            break;
        char esc[2] = {'\\', *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\'};
        if (buf_append(b, esc, 2) < 0)
            return -1;
        s++;
    }
    return buf_putc(b, end);
}

#define COPY_CHUNK (64 * 1024)

int db_copy_flush(struct db *db, struct buf *b, int final, struct err *err)
{
    if (b->len == 0 || (!final && b->len < COPY_CHUNK))
        return 0;
    if (PQputCopyData(db->conn, b->data, (int)b->len) != 1)
        return db_fail(db, NULL, "sending COPY data", err);
    buf_reset(b);
    return 0;
}

int db_copy_start(struct db *db, const char *sql, struct err *err)
{
    PGresult *r = PQexecParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COPY_IN ? 0 : db_fail(db, r, "starting COPY", err);
    PQclear(r);
    return rc;
}

int db_copy_finish(struct db *db, const char *reason, const char *what, struct err *err)
{
    int rc = PQputCopyEnd(db->conn, reason) == 1 ? 0 : -1;
    if (rc < 0)
        db_fail(db, NULL, "ending COPY", err);
    PGresult *r;
    while ((r = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0 && !reason)
            rc = db_fail(db, r, what, err);
        PQclear(r);
    }
    return reason ? -1 : rc;
}
