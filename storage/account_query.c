/* account_query.c - one account's standing in the record (account_query.h): egressscan.account,
 * the scan's organization snapshot, its rows of the coverage view and its last ok target. */
#include "storage/account_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"

#define ISO_UTC(col)                                                                               \
    "pg_catalog.to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char SQL_ACCOUNT[] = "SELECT a.name, a.status, a.last_scan_id, " ISO_UTC(
    "a.last_seen") ","
                   "  sa.account_id IS NOT NULL, sa.status"
                   " FROM egressscan.account a"
                   " LEFT JOIN egressscan.scan_account sa"
                   "   ON sa.account_id = a.account_id AND sa.scan_id = $2::bigint"
                   " WHERE a.account_id = $1";

/* The public view: whatever the current definition of "the latest word" is. */
static const char SQL_COVERAGE[] =
    "SELECT c.scan_id, c.region, c.status, c.error_code, c.error_message, " ISO_UTC(
        "c.scanned_at") " FROM egressscan.coverage c WHERE c.account_id = $1"
                        " ORDER BY c.region <> '*', c.region COLLATE \"C\"";

/* Finalized scans only, as every view counts them. */
static const char SQL_LAST_OK[] =
    "SELECT " ISO_UTC("max(r.scanned_at)") " FROM egressscan.target_result r JOIN egressscan.scan "
                                           "s ON s.scan_id = r.scan_id"
                                           " WHERE r.account_id = $1 AND r.status = 'ok' AND "
                                           "s.status IN ('succeeded', 'partial')";

/* A copy of the value, NULL for SQL NULL; *failed set on ENOMEM. */
static char *value(const PGresult *r, int row, int col, int *failed)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    char *s = strdup(PQgetvalue(r, row, col));
    if (!s)
        *failed = 1;
    return s;
}

void db_account_standing_free(struct account_standing *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_coverage; i++) {
        free(s->coverage[i].region);
        free(s->coverage[i].status);
        free(s->coverage[i].error_code);
        free(s->coverage[i].error_message);
        free(s->coverage[i].scanned_at);
    }
    free(s->coverage);
    free(s->name);
    free(s->status);
    free(s->last_seen);
    free(s->snapshot_status);
    free(s->last_ok_at);
    memset(s, 0, sizeof *s);
}

int db_account_standing(struct db *db, const char *account_id, long long scan_id,
                        struct account_standing *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    char scan[32];
    snprintf(scan, sizeof scan, "%lld", scan_id);
    const char *params[2] = {account_id, scan};
    int failed = 0;

    PGresult *r = db_query(db, SQL_ACCOUNT, 2, params, "account", err);
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        out->known = 1;
        out->name = value(r, 0, 0, &failed);
        out->status = value(r, 0, 1, &failed);
        out->last_scan_id = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        out->last_seen = value(r, 0, 3, &failed);
        out->in_snapshot = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
        out->snapshot_status = value(r, 0, 5, &failed);
    }
    PQclear(r);
    if (!out->known)
        return failed ? err_set(err, ERR_NOMEM, "out of memory") : 0;

    r = db_query(db, SQL_COVERAGE, 1, params, "account coverage", err);
    if (!r)
        return -1;
    int n = PQntuples(r);
    if (n > 0 && !(out->coverage = calloc((size_t)n, sizeof *out->coverage)))
        failed = 1;
    for (int i = 0; out->coverage && i < n; i++) {
        struct account_coverage *c = &out->coverage[i];
        c->scan_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        c->region = value(r, i, 1, &failed);
        c->status = value(r, i, 2, &failed);
        c->error_code = value(r, i, 3, &failed);
        c->error_message = value(r, i, 4, &failed);
        c->scanned_at = value(r, i, 5, &failed);
        out->n_coverage++;
    }
    PQclear(r);

    r = db_query(db, SQL_LAST_OK, 1, params, "account last ok target", err);
    if (!r)
        return -1;
    if (PQntuples(r) == 1)
        out->last_ok_at = value(r, 0, 0, &failed);
    PQclear(r);
    return failed ? err_set(err, ERR_NOMEM, "out of memory") : 0;
}
