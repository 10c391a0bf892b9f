/* queue.c - the work queue of scale-out scans: enqueue (scan_queue + work_item), claims with
 * FOR UPDATE SKIP LOCKED and leases on the database's clock, lease renewal and release, the
 * completion transaction (lease check + the account's results + done) and the finalization guard
 * (the scan's session advisory lock, as a running `scan` holds it). */
#include "storage/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "storage/db_internal.h"

#define SCAN_LOCK_ARGS DB_SCAN_LOCK_CLASS ", ($1::bigint % 2147483648)::integer"

static void ll_text(char out[32], long long v)
{
    snprintf(out, 32, "%lld", v);
}

/* {"a","b"} (backslash and double quote escaped) into b; -1 when out of memory. */
static int text_array(struct buf *b, const char *const *items, size_t n)
{
    int bad = buf_putc(b, '{') < 0;
    for (size_t i = 0; i < n && !bad; i++) {
        bad |= (i > 0 && buf_putc(b, ',') < 0) || buf_putc(b, '"') < 0;
        for (const char *s = items[i]; *s && !bad; s++)
            bad |= ((*s == '"' || *s == '\\') && buf_putc(b, '\\') < 0) || buf_putc(b, *s) < 0;
        bad |= buf_putc(b, '"') < 0;
    }
    bad |= buf_putc(b, '}') < 0;
    return bad ? -1 : 0;
}

int queue_create(struct db *db, long long scan_id, const char *options_json,
                 const char *const *accounts, size_t n, const struct scan_totals *discovery,
                 struct err *err)
{
    int rc = -1, in_tx = 0;
    struct buf ids;
    buf_init(&ids);
    char id[32], calls[32], throttled[32], retries[32];
    ll_text(id, scan_id);
    ll_text(calls, discovery ? discovery->api_calls : 0);
    ll_text(throttled, discovery ? discovery->throttled : 0);
    ll_text(retries, discovery ? discovery->retries : 0);
    if (db->locked_scan_id != scan_id) {
        err_set(err, ERR_INVALID, "scan %lld was not begun on this connection", scan_id);
        goto cleanup;
    }
    if (text_array(&ids, accounts, n) < 0) {
        err_set(err, ERR_NOMEM, "out of memory enqueuing %zu accounts", n);
        goto cleanup;
    }
    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    const char *q[5] = {id, options_json ? options_json : "{}", calls, throttled, retries};
    const char *w[2] = {id, ids.data};
    if (db_command(db,
                   "INSERT INTO egressscan.scan_queue (scan_id, options, items_total, api_calls, "
                   "throttled, retries) VALUES ($1::bigint, $2::jsonb, 0, $3::bigint, $4::bigint, "
                   "$5::bigint)",
                   5, q, "enqueuing the scan", err) < 0 ||
        db_command(db,
                   "INSERT INTO egressscan.work_item (scan_id, account_id) "
                   "SELECT DISTINCT $1::bigint, u.a FROM pg_catalog.unnest($2::text[]) AS u(a) "
                   "ON CONFLICT DO NOTHING",
                   2, w, "enqueuing work items", err) < 0 ||
        db_command(db,
                   "UPDATE egressscan.scan_queue SET items_total = (SELECT pg_catalog.count(*) "
                   "FROM egressscan.work_item WHERE scan_id = $1::bigint) "
                   "WHERE scan_id = $1::bigint",
                   1, q, "counting work items", err) < 0 ||
        /* with the queue, atomically: db_scan_begin's process-lock rule skips the scan now */
        db_command(db,
                   "UPDATE egressscan.scan SET options = options || '{\"enqueued\": true}'::jsonb "
                   "WHERE scan_id = $1::bigint",
                   1, q, "marking the scan enqueued", err) < 0 ||
        db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    /* From now on the scan is kept alive by leases: db_scan_begin leaves enqueued scans alone. */
    struct err ignored;
    if (db_command(db, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1, q,
                   "releasing the scan's lock", &ignored) == 0)
        db->locked_scan_id = 0;
    rc = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    buf_cleanup(&ids);
    return rc;
}

/* Idle = no claim, renewal or release (last_activity) and no completion (done_at) for
 * stale_after. */
int queue_abort_stale(struct db *db, int *n, struct err *err)
{
    PGresult *r = db_query(
        db,
        "UPDATE egressscan.scan s SET status = 'aborted', finished_at = pg_catalog.now(), "
        "error = 'enqueued scan abandoned: no worker worked on it for ' || q.stale_after::text "
        "FROM egressscan.scan_queue q WHERE q.scan_id = s.scan_id AND s.status = 'running' "
        "AND GREATEST(q.last_activity, (SELECT pg_catalog.max(w.done_at) "
        "FROM egressscan.work_item w WHERE w.scan_id = q.scan_id)) "
        "< pg_catalog.now() - q.stale_after RETURNING s.scan_id",
        0, NULL, "aborting abandoned enqueued scans", err);
    if (!r)
        return -1;
    if (n)
        *n = PQntuples(r);
    PQclear(r);
    return 0;
}

/* One scan: only_scan, or the oldest running enqueued scan with a claimable item. The rows are
 * locked (SKIP LOCKED: another worker's claim in flight is skipped, not waited for) and checked
 * again once locked, so an item is leased to one worker at a time. */
static const char SQL_CLAIM[] =
    "WITH target AS ("
    " SELECT w.scan_id FROM egressscan.work_item w"
    " JOIN egressscan.scan s ON s.scan_id = w.scan_id AND s.status = 'running'"
    " WHERE ($1::bigint = 0 OR w.scan_id = $1::bigint) AND w.status <> 'done'"
    "   AND (w.status = 'pending' OR w.lease_expires < pg_catalog.now())"
    " ORDER BY w.scan_id LIMIT 1"
    "), picked AS ("
    " SELECT w.scan_id, w.account_id FROM egressscan.work_item w JOIN target t USING (scan_id)"
    " WHERE w.status <> 'done' AND (w.status = 'pending' OR w.lease_expires < pg_catalog.now())"
    " ORDER BY w.account_id LIMIT $4::integer"
    " FOR UPDATE OF w SKIP LOCKED"
    ")"
    " UPDATE egressscan.work_item w SET status = 'leased', lease_owner = $2,"
    "   lease_expires = pg_catalog.now() + $3::integer * interval '1 second',"
    "   attempts = w.attempts + 1"
    " FROM picked p WHERE w.scan_id = p.scan_id AND w.account_id = p.account_id"
    " RETURNING w.scan_id, w.account_id, w.attempts";

int queue_claim(struct db *db, long long only_scan, const char *owner, int lease_s, size_t max,
                long long *scan_id, struct queue_item *items, size_t *n, struct err *err)
{
    int rc = -1, in_tx = 0;
    PGresult *r = NULL;
    *n = 0;
    *scan_id = 0;
    char only[32], lease[32], lim[32];
    ll_text(only, only_scan > 0 ? only_scan : 0);
    ll_text(lease, lease_s);
    ll_text(lim, (long long)max);
    const char *p[4] = {only, owner, lease, lim};
    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    r = db_query(db, SQL_CLAIM, 4, p, "claiming work items", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r) && (size_t)i < max; i++) {
        *scan_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        snprintf(items[i].account_id, sizeof items[i].account_id, "%s", PQgetvalue(r, i, 1));
        items[i].attempts = atoi(PQgetvalue(r, i, 2));
        (*n)++;
    }
    if (*n > 0) {
        char id[32];
        ll_text(id, *scan_id);
        const char *q[1] = {id};
        if (db_command(db,
                       "UPDATE egressscan.scan_queue SET last_activity = pg_catalog.now() "
                       "WHERE scan_id = $1::bigint",
                       1, q, "claiming work items", err) < 0)
            goto cleanup;
    }
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    rc = 0;

cleanup:
    if (in_tx) {
        db_rollback(db);
        *n = 0;
    }
    PQclear(r);
    return rc;
}

char *queue_options(struct db *db, long long scan_id, struct err *err)
{
    char id[32];
    ll_text(id, scan_id);
    const char *p[1] = {id};
    PGresult *r = db_query(db,
                           "SELECT options::text FROM egressscan.scan_queue "
                           "WHERE scan_id = $1::bigint",
                           1, p, "reading the scan's options", err);
    if (!r)
        return NULL;
    char *out = NULL;
    if (PQntuples(r) == 0)
        err_set(err, "NoScan", "scan %lld was not enqueued", scan_id);
    else if (!(out = strdup(PQgetvalue(r, 0, 0))))
        err_set(err, ERR_NOMEM, "out of memory");
    PQclear(r);
    return out;
}

int queue_renew(struct db *db, const char *owner, int lease_s, int *n, struct err *err)
{
    char lease[32];
    ll_text(lease, lease_s);
    const char *p[2] = {owner, lease};
    PGresult *r = db_query(
        db,
        "WITH renewed AS (UPDATE egressscan.work_item SET lease_expires = pg_catalog.now() + "
        "$2::integer * interval '1 second' WHERE status = 'leased' AND lease_owner = $1 "
        "RETURNING scan_id), touched AS (UPDATE egressscan.scan_queue q SET last_activity = "
        "pg_catalog.now() WHERE q.scan_id IN (SELECT scan_id FROM renewed)) "
        "SELECT pg_catalog.count(*) FROM renewed",
        2, p, "renewing leases", err);
    if (!r)
        return -1;
    if (n)
        *n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int queue_release(struct db *db, const char *owner, int *n, struct err *err)
{
    return queue_release_started(db, owner, NULL, 0, n, err);
}

int queue_release_started(struct db *db, const char *owner, const char *const *started,
                          size_t n_started, int *n, struct err *err)
{
    struct buf ids;
    buf_init(&ids);
    if (text_array(&ids, started, n_started) < 0) {
        buf_cleanup(&ids);
        return err_set(err, ERR_NOMEM, "out of memory releasing leases");
    }
    const char *p[2] = {owner, ids.data};
    PGresult *r = db_query(
        db,
        "WITH released AS (UPDATE egressscan.work_item SET status = 'pending', lease_owner = "
        "NULL, lease_expires = NULL, attempts = CASE WHEN account_id = ANY ($2::text[]) "
        "THEN attempts ELSE GREATEST(attempts - 1, 0) END "
        "WHERE status = 'leased' AND lease_owner = $1 "
        "RETURNING scan_id), touched AS (UPDATE egressscan.scan_queue q SET last_activity = "
        "pg_catalog.now() WHERE q.scan_id IN (SELECT scan_id FROM released)) "
        "SELECT pg_catalog.count(*) FROM released",
        2, p, "releasing leases", err);
    buf_cleanup(&ids);
    if (!r)
        return -1;
    if (n)
        *n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* {1,2,3} for bigint arrays. */
static int ll_array(struct buf *b, const long long *v, size_t n)
{
    int bad = buf_putc(b, '{') < 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad |= buf_printf(b, "%s%lld", i ? "," : "", v[i]) < 0;
    bad |= buf_putc(b, '}') < 0;
    return bad ? -1 : 0;
}

/* queue_complete_many's transaction; isolate: the targets are written one at a time under
 * savepoints (db_write_targets_each_tx), after the database refused them together. */
static int complete_many(struct db *db, long long scan_id, const char *owner,
                         const struct queue_completion *items, size_t n, int *lost, int isolate,
                         struct err *err)
{
    int rc = -1, in_tx = 0;
    PGresult *r = NULL;
    const char **ids = NULL, **kept_ids = NULL;
    const struct target_result **targets = NULL;
    long long *calls = NULL;
    struct buf a_ids, a_kept, a_calls, a_thr, a_ret;
    buf_init(&a_ids);
    buf_init(&a_kept);
    buf_init(&a_calls);
    buf_init(&a_thr);
    buf_init(&a_ret);
    char id[32];
    ll_text(id, scan_id);
    size_t n_targets = 0;
    for (size_t i = 0; i < n; i++) {
        n_targets += items[i].n;
        lost[i] = 1;
    }
    if (n == 0)
        return 0;
    ids = calloc(n, sizeof *ids);
    kept_ids = calloc(n, sizeof *kept_ids);
    targets = calloc(n_targets ? n_targets : 1, sizeof *targets);
    calls = calloc(3 * n, sizeof *calls);
    if (!ids || !kept_ids || !targets || !calls)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        ids[i] = items[i].account_id;
    if (text_array(&a_ids, ids, n) < 0)
        goto nomem;
    if (db_prepare_target_writes(db, err) < 0 || db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    /* The row locks taken here keep the leases ours until the commit: a claimer skips them. An
     * item whose lease is lost (another worker owns it now, or someone else did it) is dropped.
     * An item this owner already marked done was written by this very call run before, whose
     * COMMIT landed although its answer was lost (db_retry runs it again): written, not again. */
    const char *pc[3] = {id, a_ids.data, owner};
    r = db_query(db,
                 "SELECT account_id, status = 'done' FROM egressscan.work_item "
                 "WHERE scan_id = $1::bigint AND account_id = ANY ($2::text[]) AND "
                 "((status = 'leased' AND lease_owner = $3) OR (status = 'done' AND done_by = $3)) "
                 "FOR UPDATE",
                 3, pc, "checking the leases", err);
    if (!r)
        goto cleanup;
    size_t n_kept = 0, k_targets = 0;
    for (size_t i = 0; i < n; i++) {
        int written = 0;
        for (int row = 0; row < PQntuples(r); row++)
            if (strcmp(PQgetvalue(r, row, 0), items[i].account_id) == 0) {
                lost[i] = 0;
                written = strcmp(PQgetvalue(r, row, 1), "t") == 0;
            }
        if (lost[i] || written)
            continue;
        kept_ids[n_kept] = items[i].account_id;
        calls[n_kept] = items[i].calls.api_calls;
        calls[n + n_kept] = items[i].calls.throttled;
        calls[2 * n + n_kept] = items[i].calls.retries;
        n_kept++;
        for (size_t t = 0; t < items[i].n; t++)
            targets[k_targets++] = items[i].targets[t];
    }
    PQclear(r);
    r = NULL;
    if (n_kept == 0) {
        db_rollback(db); /* nothing of ours left to write (lost[] says which were done) */
        in_tx = 0;
        rc = 0;
        goto cleanup;
    }
    if (text_array(&a_kept, kept_ids, n_kept) < 0 || ll_array(&a_calls, calls, n_kept) < 0 ||
        ll_array(&a_thr, calls + n, n_kept) < 0 || ll_array(&a_ret, calls + 2 * n, n_kept) < 0)
        goto nomem;
    /* multi-argument unnest is FROM-clause syntax and cannot be schema-qualified (the session's
     * search_path is pg_catalog only, as everywhere) */
    const char *pd[6] = {id, a_kept.data, owner, a_calls.data, a_thr.data, a_ret.data};
    if ((isolate ? db_write_targets_each_tx(db, scan_id, targets, k_targets, err)
                 : db_write_targets_tx(db, scan_id, targets, k_targets, err)) < 0 ||
        db_command(db,
                   "UPDATE egressscan.work_item w SET status = 'done', done_at = "
                   "pg_catalog.now(), done_by = $3, lease_owner = NULL, lease_expires = NULL, "
                   "api_calls = u.c, throttled = u.t, retries = u.r "
                   "FROM unnest($2::text[], $4::bigint[], $5::bigint[], $6::bigint[]) "
                   "AS u(a, c, t, r) WHERE w.scan_id = $1::bigint AND w.account_id = u.a",
                   6, pd, "marking work items done", err) < 0 ||
        db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    rc = 0;
    goto cleanup;

nomem:
    err_set(err, ERR_NOMEM, "out of memory writing %zu accounts", n);
cleanup:
    if (in_tx) {
        db_rollback(db);
        for (size_t i = 0; i < n; i++)
            lost[i] = 1;
    }
    PQclear(r);
    free(ids);
    free(kept_ids);
    free(targets);
    free(calls);
    buf_cleanup(&a_ids);
    buf_cleanup(&a_kept);
    buf_cleanup(&a_calls);
    buf_cleanup(&a_thr);
    buf_cleanup(&a_ret);
    return rc;
}

int queue_complete_many(struct db *db, long long scan_id, const char *owner,
                        const struct queue_completion *items, size_t n, int *lost, struct err *err)
{
    if (complete_many(db, scan_id, owner, items, n, lost, 0, err) == 0)
        return 0;
    if (!db_refused_statement(db, err))
        return -1;
    /* one account's rows were refused: that target is recorded as rejected, the rest written */
    log_warn("queue",
             "scan %lld: completing %zu accounts was refused (%s: %s); writing their "
             "targets one at a time",
             scan_id, n, err->code, err->message);
    err_clear(err);
    if (complete_many(db, scan_id, owner, items, n, lost, 1, err) == 0)
        return 0;
    if (!db_refused_statement(db, err))
        return -1;
    if (n == 1) {
        lost[0] = QUEUE_REFUSED;
        log_warn("queue",
                 "scan %lld account %s: the database refused its results, even as errors (%s: "
                 "%s): given back to be claimed again",
                 scan_id, items[0].account_id, err->code, err->message);
        err_clear(err);
        return 0;
    }
    /* even the rows recording a target as rejected were refused: each account alone, so that
     * the one the database will not take costs only itself */
    err_clear(err);
    for (size_t i = 0; i < n; i++) {
        if (queue_complete_many(db, scan_id, owner, &items[i], 1, &lost[i], err) < 0) {
            for (size_t k = i; k < n; k++)
                lost[k] = QUEUE_LEASE_LOST;
            return -1;
        }
    }
    return 0;
}

int queue_complete(struct db *db, long long scan_id, const char *account_id, const char *owner,
                   const struct target_result *const *results, size_t n,
                   const struct scan_totals *calls, struct err *err)
{
    struct queue_completion c = {.account_id = account_id, .targets = results, .n = n};
    if (calls)
        c.calls = *calls;
    int lost = QUEUE_LEASE_LOST;
    if (queue_complete_many(db, scan_id, owner, &c, 1, &lost, err) < 0)
        return -1;
    return lost;
}

int queue_add_calls(struct db *db, long long scan_id, const struct scan_totals *calls,
                    struct err *err)
{
    char id[32], c[32], t[32], rt[32];
    ll_text(id, scan_id);
    ll_text(c, calls->api_calls);
    ll_text(t, calls->throttled);
    ll_text(rt, calls->retries);
    const char *p[4] = {id, c, t, rt};
    return db_command(db,
                      "UPDATE egressscan.scan_queue SET api_calls = api_calls + $2::bigint, "
                      "throttled = throttled + $3::bigint, retries = retries + $4::bigint "
                      "WHERE scan_id = $1::bigint",
                      4, p, "adding AWS calls", err);
}

void queue_end_finalize(struct db *db, long long scan_id)
{
    char id[32];
    ll_text(id, scan_id);
    const char *p[1] = {id};
    struct err ignored;
    db_command(db, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1, p,
               "releasing the scan's lock", &ignored);
    if (db->locked_scan_id == scan_id)
        db->locked_scan_id = 0;
}

int queue_begin_finalize(struct db *db, long long scan_id, struct scan_totals *totals,
                         struct err *err)
{
    int rc = -1, locked = 0;
    PGresult *r = NULL;
    char id[32];
    ll_text(id, scan_id);
    const char *p[1] = {id};
    if (db->locked_scan_id) {
        err_set(err, "ScanInProgress", "this connection holds the lock of scan %lld",
                db->locked_scan_id);
        goto cleanup;
    }
    /* The same lock a running `scan` holds: only one session finalizes, and a finalizer that
     * dies gives it back with its connection. */
    r = db_query(db, "SELECT pg_catalog.pg_try_advisory_lock(" SCAN_LOCK_ARGS ")", 1, p,
                 "locking the scan for finalization", err);
    if (!r)
        goto cleanup;
    locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    r = NULL;
    if (!locked) {
        rc = 0;
        goto cleanup;
    }
    /* Checked after taking the lock: a finalizer that finished before released it after
     * setting the status. */
    r = db_query(db,
                 "SELECT q.api_calls + COALESCE(w.calls, 0), q.throttled + COALESCE(w.thr, 0), "
                 "q.retries + COALESCE(w.ret, 0) FROM egressscan.scan_queue q "
                 "JOIN egressscan.scan s ON s.scan_id = q.scan_id AND s.status = 'running' "
                 "LEFT JOIN LATERAL (SELECT pg_catalog.sum(api_calls) AS calls, "
                 "pg_catalog.sum(throttled) AS thr, pg_catalog.sum(retries) AS ret, "
                 "pg_catalog.count(*) FILTER (WHERE status <> 'done') AS left_ "
                 "FROM egressscan.work_item WHERE scan_id = q.scan_id) w ON true "
                 "WHERE q.scan_id = $1::bigint AND COALESCE(w.left_, 0) = 0",
                 1, p, "checking the scan is complete", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0) {
        rc = 0;
        goto cleanup;
    }
    totals->api_calls = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    totals->throttled = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    totals->retries = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    db->locked_scan_id = scan_id; /* db_scan_finish releases it */
    rc = 1;

cleanup:
    PQclear(r);
    if (locked && rc != 1) {
        struct err ignored;
        db_command(db, "SELECT pg_catalog.pg_advisory_unlock(" SCAN_LOCK_ARGS ")", 1, p,
                   "releasing the scan's lock", &ignored);
    }
    return rc;
}

int queue_unfinalized(struct db *db, long long only_scan, long long *ids, size_t max, size_t *n,
                      struct err *err)
{
    char only[32];
    ll_text(only, only_scan > 0 ? only_scan : 0);
    const char *p[1] = {only};
    *n = 0;
    PGresult *r = db_query(db,
                           "SELECT q.scan_id FROM egressscan.scan_queue q "
                           "JOIN egressscan.scan s ON s.scan_id = q.scan_id "
                           "WHERE s.status = 'running' AND ($1::bigint = 0 OR q.scan_id = "
                           "$1::bigint) AND NOT EXISTS (SELECT 1 FROM egressscan.work_item w "
                           "WHERE w.scan_id = q.scan_id AND w.status <> 'done') "
                           "ORDER BY q.scan_id",
                           1, p, "listing complete scans", err);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r) && *n < max; i++)
        ids[(*n)++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int queue_scan_state(struct db *db, long long scan_id, struct queue_scan_state *out,
                     struct err *err)
{
    char id[32];
    ll_text(id, scan_id);
    const char *p[1] = {id};
    memset(out, 0, sizeof *out);
    PGresult *r = db_query(db,
                           "SELECT s.status, (SELECT pg_catalog.count(*) FROM "
                           "egressscan.work_item w WHERE w.scan_id = q.scan_id AND "
                           "w.status <> 'done'), pg_catalog.date_part('epoch', s.started_at), "
                           "q.items_total "
                           "FROM egressscan.scan_queue q JOIN egressscan.scan s "
                           "ON s.scan_id = q.scan_id WHERE q.scan_id = $1::bigint",
                           1, p, "reading the scan's state", err);
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        out->exists = 1;
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, 0, 0));
        out->items_left = atol(PQgetvalue(r, 0, 1));
        out->started_s = strtod(PQgetvalue(r, 0, 2), NULL);
        out->items_total = atol(PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return 0;
}

int queue_recently_ended(struct db *db, int within_s, int *yes, struct err *err)
{
    char within[32];
    ll_text(within, within_s);
    const char *p[1] = {within};
    PGresult *r = db_query(db,
                           "SELECT EXISTS (SELECT 1 FROM egressscan.scan_queue q "
                           "JOIN egressscan.scan s ON s.scan_id = q.scan_id "
                           "WHERE s.status <> 'running' AND s.finished_at > pg_catalog.now() - "
                           "$1::integer * interval '1 second')",
                           1, p, "looking for scans that just ended", err);
    if (!r)
        return -1;
    *yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return 0;
}

int queue_open_scans(struct db *db, long long only_scan, long *n, struct err *err)
{
    char only[32];
    ll_text(only, only_scan > 0 ? only_scan : 0);
    const char *p[1] = {only};
    PGresult *r = db_query(db,
                           "SELECT pg_catalog.count(*) FROM egressscan.scan_queue q "
                           "JOIN egressscan.scan s ON s.scan_id = q.scan_id "
                           "WHERE s.status = 'running' AND ($1::bigint = 0 OR q.scan_id = "
                           "$1::bigint)",
                           1, p, "listing open scans", err);
    if (!r)
        return -1;
    *n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int queue_scan_counts(struct db *db, long long scan_id, struct queue_scan_counts *out,
                      struct err *err)
{
    int rc = -1;
    char id[32];
    ll_text(id, scan_id);
    const char *p[1] = {id};
    memset(out, 0, sizeof *out);
    PGresult *r = db_query(db,
                           "SELECT status, pg_catalog.count(*) FROM egressscan.target_result "
                           "WHERE scan_id = $1::bigint GROUP BY status",
                           1, p, "counting the scan's targets", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++)
        for (int s = TARGET_OK; s < TARGET_STATUSES; s++)
            if (strcmp(PQgetvalue(r, i, 0), target_status_name((enum target_status)s)) == 0)
                out->by_status[s] = atol(PQgetvalue(r, i, 1));
    PQclear(r);
    r = db_query(db,
                 "SELECT CASE WHEN egress_mode IS NULL THEN 3 "
                 "WHEN egress_mode = 'AWS_MANAGED' THEN 0 WHEN egress_mode = 'CUSTOMER_ROUTED' "
                 "THEN 1 WHEN egress_mode = 'CUSTOMER_ISOLATED' THEN 2 ELSE 4 END, "
                 "pg_catalog.count(*) FROM egressscan.cluster_observation "
                 "WHERE scan_id = $1::bigint GROUP BY 1",
                 1, p, "counting the scan's clusters", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++)
        out->by_mode[atoi(PQgetvalue(r, i, 0))] = atol(PQgetvalue(r, i, 1));
    PQclear(r);
    r = db_query(db,
                 "SELECT (SELECT pg_catalog.count(DISTINCT account_id) FROM "
                 "egressscan.target_result WHERE scan_id = $1::bigint), "
                 "COALESCE(s.scps_known, false), COALESCE(s.scps_state, 'not_read') "
                 "FROM egressscan.scan s "
                 "WHERE s.scan_id = $1::bigint",
                 1, p, "reading the scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 1) {
        out->accounts = atol(PQgetvalue(r, 0, 0));
        out->scps_known = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
        int state = org_scps_parse(PQgetvalue(r, 0, 2));
        out->scps_state = state < 0 ? ORG_SCPS_NOT_READ : state;
    }
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}
