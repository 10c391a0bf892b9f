/* mode_dating.c - which periods a scan opened are mode changes to date (the history knows the
 * previous mode; the target's earlier results say whether a new cluster is new since a scan),
 * and recording what EKS said about them. */
#include "storage/mode_dating.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db.h"
#include "storage/db_internal.h"

/* The previous period of the cluster (the newest before this one), if any, decides. */
static const char SQL_CHANGES[] =
    "SELECT i.interval_id, i.account_id, i.region, c.cluster_name, i.egress_mode,"
    "   pg_catalog.date_part('epoch', i.valid_from), prev.found IS NULL"
    " FROM egressscan.cluster_mode_interval i"
    " JOIN egressscan.cluster c ON c.cluster_arn = i.cluster_arn"
    " LEFT JOIN LATERAL (SELECT true AS found, p.egress_mode"
    "                    FROM egressscan.cluster_mode_interval p"
    "                    WHERE p.cluster_arn = i.cluster_arn AND p.interval_id <> i.interval_id"
    "                      AND p.valid_from <= i.valid_from"
    "                    ORDER BY p.valid_from DESC, p.interval_id DESC LIMIT 1) prev ON true"
    " WHERE i.opened_scan_id = $1::bigint AND i.update_status IS NULL"
    "   AND CASE WHEN prev.found"
    "            THEN COALESCE(prev.egress_mode, 'AWS_MANAGED')"
    "                 <> COALESCE(i.egress_mode, 'AWS_MANAGED')"
    "            ELSE COALESCE(i.egress_mode, 'AWS_MANAGED') <> 'AWS_MANAGED'"
    "                 AND EXISTS (SELECT 1 FROM egressscan.target_result r"
    "                             WHERE r.account_id = i.account_id AND r.region = i.region"
    "                               AND r.status = 'ok' AND r.scan_id <> $1::bigint"
    "                               AND r.scanned_at < i.valid_from)"
    "       END"
    " ORDER BY i.interval_id";

static const char SQL_RECORD[] =
    "UPDATE egressscan.cluster_mode_interval"
    " SET update_status = $2, update_id = $3,"
    "   changed_at = CASE WHEN $4::float8 > 0 THEN pg_catalog.to_timestamp($4::float8) END"
    " WHERE interval_id = $1::bigint AND update_status IS NULL";

static char *dup_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

void db_mode_changes_free(struct mode_change *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].account_id);
        free(c[i].region);
        free(c[i].cluster_name);
        free(c[i].egress_mode);
    }
    free(c);
}

int db_mode_changes(struct db *db, long long scan_id, size_t max, struct mode_change **out,
                    size_t *n, long long *more, struct err *err)
{
    *out = NULL;
    *n = 0;
    *more = 0;
    char id[32];
    snprintf(id, sizeof id, "%lld", scan_id);
    const char *p[1] = {id};
    PGresult *r = db_query(db, SQL_CHANGES, 1, p, "finding the mode changes to date", err);
    if (!r)
        return -1;
    size_t rows = (size_t)PQntuples(r), take = rows < max ? rows : max;
    struct mode_change *c = take ? calloc(take, sizeof *c) : NULL;
    if (take && !c) {
        PQclear(r);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < take; i++) {
        int k = (int)i;
        c[i].interval_id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        c[i].account_id = dup_or_null(r, k, 1);
        c[i].region = dup_or_null(r, k, 2);
        c[i].cluster_name = dup_or_null(r, k, 3);
        c[i].egress_mode = dup_or_null(r, k, 4);
        c[i].observed_at = strtod(PQgetvalue(r, k, 5), NULL);
        c[i].first_seen = strcmp(PQgetvalue(r, k, 6), "t") == 0;
        if (!c[i].account_id || !c[i].region || !c[i].cluster_name ||
            (!PQgetisnull(r, k, 4) && !c[i].egress_mode)) {
            db_mode_changes_free(c, take);
            PQclear(r);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    PQclear(r);
    *out = c;
    *n = take;
    *more = (long long)(rows - take);
    return 0;
}

int db_record_mode_dating(struct db *db, const struct mode_dating *d, size_t n, struct err *err)
{
    if (n == 0)
        return 0;
    if (db_begin(db, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char id[32], at[48];
        snprintf(id, sizeof id, "%lld", d[i].interval_id);
        snprintf(at, sizeof at, "%.3f", d[i].changed_at);
        const char *p[4] = {id, d[i].update_status, d[i].update_id, at};
        if (db_command(db, SQL_RECORD, 4, p, "recording when a mode changed", err) < 0) {
            db_rollback(db);
            return -1;
        }
    }
    return db_commit(db, err);
}
