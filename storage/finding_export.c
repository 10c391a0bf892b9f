/* finding_export.c - the reads behind the exports: the fleet's open findings (the view
 * current_drift) and the findings resolved since a time, with their lifetimes, in one snapshot.
 * PQexecParams only. */
#include "storage/finding_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"

#define STAMP_SQL(col)                                                                             \
    "pg_catalog.to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define ORDER_SQL                                                                                  \
    " ORDER BY open DESC, pg_catalog.array_position("                                              \
    "     ARRAY['critical', 'high', 'medium', 'low', 'info']::text[], severity),"                  \
    "   kind COLLATE \"C\", account_id COLLATE \"C\", region COLLATE \"C\","                       \
    "   cluster_arn COLLATE \"C\" NULLS FIRST, source COLLATE \"C\", finding_id"

static const char SQL_LATEST[] =
    "SELECT scan_id FROM egressscan.scan WHERE status IN ('succeeded', 'partial')"
    " ORDER BY started_at DESC, scan_id DESC LIMIT 1";

enum {
    XF_OPEN,
    XF_ID,
    XF_SCAN,
    XF_KIND,
    XF_SEVERITY,
    XF_ACCOUNT,
    XF_REGION,
    XF_CLUSTER,
    XF_OBSERVED,
    XF_ALLOWED,
    XF_SOURCE,
    XF_DETAILS,
    XF_FIRST_SEEN,
    XF_LAST_SEEN,
    XF_RESOLVED_AT,
    XF_REASON,
    XF_ACCOUNT_NAME
};

/* $1: resolved since (NULL: none). A finding resolved by a failed or aborted scan is still open
 * (current_drift says so), hence the NOT EXISTS on the view. */
static const char SQL_EXPORT[] =
    "SELECT * FROM ("
    " SELECT true AS open, d.finding_id, d.scan_id, d.kind, d.severity, d.account_id, d.region,"
    "   d.cluster_arn, d.observed_mode, d.allowed_modes::text, d.source, d.details::text,"
    "   " STAMP_SQL("d.first_seen") ", " STAMP_SQL(
        "d.last_seen") ", NULL::text, NULL::text,"
                       "   d.account_name"
                       " FROM egressscan.current_drift d"
                       " UNION ALL"
                       " SELECT false, f.finding_id, f.last_scan_id, f.kind, f.severity, "
                       "f.account_id, f.region,"
                       "   f.cluster_arn, f.observed_mode, f.allowed_modes::text, f.source, "
                       "f.details::text,"
                       "   " STAMP_SQL("f.first_seen") ", " STAMP_SQL("f.last_seen") ", " STAMP_SQL(
                           "f.resolved_at") ",   f.resolved_reason, a.name"
                                            " FROM egressscan.finding f"
                                            " LEFT JOIN egressscan.account a ON a.account_id = "
                                            "f.account_id"
                                            " WHERE $1::timestamptz IS NOT NULL AND f.resolved_at "
                                            ">= $1::timestamptz"
                                            "   AND NOT EXISTS (SELECT 1 FROM egressscan.scan x "
                                            "WHERE x.scan_id = f.resolved_scan_id"
                                            "                   AND x.status IN ('failed', "
                                            "'aborted'))"
                                            "   AND NOT EXISTS (SELECT 1 FROM "
                                            "egressscan.current_drift d"
                                            "                   WHERE d.finding_id = f.finding_id)"
                                            ") x(open, finding_id, scan_id, kind, severity, "
                                            "account_id, region, cluster_arn,"
                                            "    observed_mode, allowed_modes, source, details, "
                                            "first_seen, last_seen, resolved_at,"
                                            "    resolved_reason, account_name)" ORDER_SQL;

static const char *value_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* The mode set of a text[] as PostgreSQL prints it; names this version does not know are left
 * out. */
static unsigned modes_of_text(const char *s)
{
    unsigned modes = 0;
    if (!s || *s++ != '{')
        return 0;
    while (*s && *s != '}') {
        size_t len = strcspn(s, ",}");
        for (int m = 0; m < EGRESS_MODES; m++) {
            const char *name = egress_mode_name((enum egress_mode)m);
            if (strlen(name) == len && strncmp(s, name, len) == 0)
                modes |= EGRESS_BIT(m);
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return modes;
}

int db_export_findings(struct db *db, const char *resolved_since, long long *scan_used,
                       db_record_fn cb, void *ud, struct err *err)
{
    int rc = -1, in_tx = 0;
    PGresult *r = NULL;
    /* one snapshot for the latest scan and the findings */
    if (db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                   "starting a read-only transaction", err) < 0)
        goto cleanup;
    in_tx = 1;
    r = db_query(db, SQL_LATEST, 0, NULL, "finding the latest finalized scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0) {
        err_set(err, "NoScan", "no scan has been finalized yet: run 'egressscan scan'");
        goto cleanup;
    }
    if (scan_used)
        *scan_used = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    const char *p[1] = {resolved_since};
    r = db_query(db, SQL_EXPORT, 1, p, "reading the findings to export", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++) {
        struct finding_record fr = {
            .finding_id = strtoll(PQgetvalue(r, i, XF_ID), NULL, 10),
            .scan_id = strtoll(PQgetvalue(r, i, XF_SCAN), NULL, 10),
            .f = {.kind = PQgetvalue(r, i, XF_KIND),
                  .severity = PQgetvalue(r, i, XF_SEVERITY),
                  .account_id = PQgetvalue(r, i, XF_ACCOUNT),
                  .region = PQgetvalue(r, i, XF_REGION),
                  .cluster_arn = value_or_null(r, i, XF_CLUSTER),
                  .observed_mode = value_or_null(r, i, XF_OBSERVED),
                  .allowed_modes = modes_of_text(value_or_null(r, i, XF_ALLOWED)),
                  .source = PQgetvalue(r, i, XF_SOURCE),
                  .details_json = PQgetvalue(r, i, XF_DETAILS)},
            .account_name = value_or_null(r, i, XF_ACCOUNT_NAME),
            .first_seen = PQgetvalue(r, i, XF_FIRST_SEEN),
            .last_seen = PQgetvalue(r, i, XF_LAST_SEEN),
            .resolved_at = value_or_null(r, i, XF_RESOLVED_AT),
            .resolved_reason = value_or_null(r, i, XF_REASON)};
        if (cb && cb(ud, &fr) != 0) {
            if (!err_isset(err))
                err_set(err, "Stopped", "reading findings stopped by the caller");
            goto cleanup;
        }
    }
    rc = 0;

cleanup:
    PQclear(r);
    if (in_tx)
        db_rollback(db); /* read only: nothing to keep */
    return rc;
}
