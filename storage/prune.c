/* prune.c - retention: deletes the raw per-scan rows (cluster observations, ok coverage rows, the
 * work queue of an enqueued scan) of scans older than a cutoff, one transaction per scan, and keeps
 * everything the views, history and findings are made of (see prune.h for the exact list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"
#include "storage/prune.h"

/* A scan whose raw rows may go: started before the cutoff (parameter P, unix seconds), not
 * running, and not the latest finalized scan (a newer succeeded/partial scan exists, or it is
 * not finalized itself), by the same order as the views coverage and current_drift. */
/* clang-format off */
#define PRUNABLE(s, P)                                                                             \
    s ".started_at < pg_catalog.to_timestamp(" P "::float8) AND " s ".status <> 'running'"         \
    " AND (" s ".status NOT IN ('succeeded', 'partial')"                                           \
    "      OR EXISTS (SELECT 1 FROM egressscan.scan n"                                             \
    "                 WHERE n.status IN ('succeeded', 'partial')"                                  \
    "                   AND (n.started_at > " s ".started_at"                                      \
    "                        OR (n.started_at = " s ".started_at AND n.scan_id > " s ".scan_id))))"

/* Candidates with something left to delete, oldest first, with what they hold. */
static const char SQL_CANDIDATES[] =
    "SELECT s.scan_id,"
    "  pg_catalog.to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "  s.status, o.n, t.n, w.n"
    " FROM egressscan.scan s"
    " CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM egressscan.cluster_observation x"
    "                     WHERE x.scan_id = s.scan_id) o"
    " CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM egressscan.target_result x"
    "                     WHERE x.scan_id = s.scan_id AND x.status = 'ok') t"
    " CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM egressscan.work_item x"
    "                     WHERE x.scan_id = s.scan_id) w"
    " WHERE " PRUNABLE("s", "$1") " AND (o.n > 0 OR t.n > 0"
    "   OR EXISTS (SELECT 1 FROM egressscan.scan_queue x WHERE x.scan_id = s.scan_id))"
    " ORDER BY s.started_at, s.scan_id";

/* Inside the scan's transaction: still prunable? (FOR SHARE: its status cannot change under us;
 * it does not block rows that merely reference the scan.) */
static const char SQL_RECHECK[] =
    "SELECT s.scan_id FROM egressscan.scan s"
    " WHERE s.scan_id = $1::bigint AND " PRUNABLE("s", "$2") " FOR SHARE OF s";
/* clang-format on */

static const char SQL_DELETE_OBSERVATIONS[] =
    "DELETE FROM egressscan.cluster_observation WHERE scan_id = $1::bigint";

static const char SQL_DELETE_OK_TARGETS[] =
    "DELETE FROM egressscan.target_result WHERE scan_id = $1::bigint AND status = 'ok'";

/* An enqueued scan's queue row and, by cascade, its work items (one per account). */
static const char SQL_DELETE_QUEUE_ITEMS[] =
    "DELETE FROM egressscan.work_item WHERE scan_id = $1::bigint";
static const char SQL_DELETE_QUEUE[] =
    "DELETE FROM egressscan.scan_queue WHERE scan_id = $1::bigint";

static const char SQL_LATEST[] =
    "SELECT scan_id FROM egressscan.scan WHERE status IN ('succeeded', 'partial')"
    " ORDER BY started_at DESC, scan_id DESC LIMIT 1";

/* Runs a DELETE and returns how many rows it removed in *n; 0 or -1. */
static int delete_rows(struct db *db, const char *sql, const char *id, const char *what,
                       long long *n, struct err *err)
{
    const char *p[1] = {id};
    PGresult *r = db_query(db, sql, 1, p, what, err);
    if (!r)
        return -1;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

/* Prunes one scan in its own transaction. *done is 0 when the scan was no longer prunable or had
 * nothing left to delete (a concurrent prune got there first). */
static int prune_one(struct db *db, const char *id, const char *cutoff, struct prune_scan *s,
                     int *done, struct err *err)
{
    *done = 0;
    if (db_begin(db, err) < 0)
        return -1;
    const char *p[2] = {id, cutoff};
    PGresult *r = db_query(db, SQL_RECHECK, 2, p, "locking the scan to prune", err);
    if (!r)
        goto fail;
    int prunable = PQntuples(r) == 1;
    PQclear(r);
    if (!prunable) {
        db_rollback(db);
        return 0;
    }
    long long queues = 0;
    if (delete_rows(db, SQL_DELETE_OBSERVATIONS, id, "deleting cluster observations",
                    &s->observations, err) < 0 ||
        delete_rows(db, SQL_DELETE_OK_TARGETS, id, "deleting ok coverage rows", &s->target_rows,
                    err) < 0 ||
        delete_rows(db, SQL_DELETE_QUEUE_ITEMS, id, "deleting work items", &s->work_items, err) <
            0 ||
        delete_rows(db, SQL_DELETE_QUEUE, id, "deleting the work queue", &queues, err) < 0 ||
        db_commit(db, err) < 0)
        goto fail;
    *done = s->observations > 0 || s->target_rows > 0 || queues > 0;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int db_prune(struct db *db, double cutoff, int dry_run, db_prune_fn cb, void *ud,
             struct prune_totals *totals, struct err *err)
{
    struct prune_totals sum = {0};
    PGresult *cand = NULL;
    int rc = -1;
    char cut[64];
    snprintf(cut, sizeof cut, "%.6f", cutoff);

    PGresult *r = db_query(db, SQL_LATEST, 0, NULL, "finding the latest finalized scan", err);
    if (!r)
        goto done;
    if (PQntuples(r) == 1)
        sum.kept_scan_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);

    const char *p[1] = {cut};
    cand = db_query(db, SQL_CANDIDATES, 1, p, "finding the scans to prune", err);
    if (!cand)
        goto done;
    for (int i = 0; i < PQntuples(cand); i++) {
        struct prune_scan s = {
            .scan_id = strtoll(PQgetvalue(cand, i, 0), NULL, 10),
            .started_at = PQgetvalue(cand, i, 1),
            .status = PQgetvalue(cand, i, 2),
            .observations = strtoll(PQgetvalue(cand, i, 3), NULL, 10),
            .target_rows = strtoll(PQgetvalue(cand, i, 4), NULL, 10),
            .work_items = strtoll(PQgetvalue(cand, i, 5), NULL, 10),
        };
        if (!dry_run) {
            int done = 0;
            if (prune_one(db, PQgetvalue(cand, i, 0), cut, &s, &done, err) < 0) {
                err_prefix(err, "scan %lld: ", s.scan_id);
                goto done;
            }
            if (!done)
                continue; /* a concurrent prune got there first */
        }
        sum.scans++;
        sum.observations += s.observations;
        sum.target_rows += s.target_rows;
        sum.work_items += s.work_items;
        if (cb && cb(ud, &s) != 0) {
            err_set(err, "Stopped", "stopped after scan %lld", s.scan_id);
            goto done;
        }
    }
    rc = 0;
done:
    PQclear(cand);
    if (totals)
        *totals = sum;
    return rc;
}
