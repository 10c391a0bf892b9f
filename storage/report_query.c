/* report_query.c - the weekly report's reads: the public views (scans, daily_compliance,
 * cluster_history) and, for a week in the past, the tables behind current_drift and coverage
 * (scan_finding, finding, target_result) with the same definitions applied to the week's last
 * finalized scan instead of the latest one. One REPEATABLE READ snapshot; PQexecParams only. */
#include "storage/report_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"

#define STAMP_SQL(col)                                                                             \
    "pg_catalog.to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- the statements ---- */

static const char SQL_HAS_SCHEMA[] =
    "SELECT pg_catalog.to_regclass('egressscan.schema_migrations') IS NOT NULL";

/* $1 week start, $2 week end (timestamptz). */
static const char SQL_SCANS[] =
    "SELECT pg_catalog.count(*),"
    "  pg_catalog.count(*) FILTER (WHERE status = 'succeeded'),"
    "  pg_catalog.count(*) FILTER (WHERE status = 'partial'),"
    "  pg_catalog.count(*) FILTER (WHERE status = 'failed'),"
    "  pg_catalog.count(*) FILTER (WHERE status = 'aborted'),"
    "  pg_catalog.count(*) FILTER (WHERE status = 'running'),"
    "  EXISTS (SELECT 1 FROM egressscan.scans WHERE status IN ('succeeded', 'partial'))"
    " FROM egressscan.scans"
    " WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz";

/* $1 first day, $2 day after the last. daily_compliance is the public definition of a day's
 * numbers (its last finalized scan); the scan's own row says when it started and whether it
 * could read the SCPs. */
enum {
    TR_DAY,
    TR_SCAN,
    TR_CLUSTERS,
    TR_COMPLIANT,
    TR_NONCOMPLIANT,
    TR_EXEMPT,
    TR_UNKNOWN,
    TR_TARGETS_TOTAL,
    TR_TARGETS_OK,
    TR_STARTED,
    TR_STATUS,
    TR_SCPS_KNOWN
};
/* clang-format off */
static const char SQL_TREND[] =
    "SELECT pg_catalog.to_char(d.day, 'YYYY-MM-DD'), d.scan_id, d.clusters, d.compliant,"
    "  d.noncompliant, d.exempt, d.unknown, d.targets_total, d.targets_ok,"
    "  " STAMP_SQL("s.started_at") ", s.status, s.scps_known"
    " FROM egressscan.daily_compliance d"
    " JOIN egressscan.scans s ON s.scan_id = d.scan_id"
    " WHERE d.day >= $1::date AND d.day < $2::date"
    " ORDER BY d.day";
/* clang-format on */

/* $1 the week's end, $2 the week's last finalized scan (NULL: none). The periods of
 * cluster_history that hold at the end of the week ([valid_from, valid_to) contains the instant
 * just before $1); the account as that scan placed it, else as last known. */
enum { FL_OU, FL_ACCOUNT, FL_NAME, FL_MODE, FL_COUNT };
static const char SQL_FLEET[] =
    "SELECT COALESCE(sa.ou_path, a.ou_path), h.account_id, COALESCE(sa.name, a.name),"
    "  h.egress_mode, pg_catalog.count(*)"
    " FROM egressscan.cluster_history h"
    " LEFT JOIN egressscan.scan_account sa"
    "   ON sa.scan_id = $2::bigint AND sa.account_id = h.account_id"
    " LEFT JOIN egressscan.account a ON a.account_id = h.account_id"
    " WHERE h.valid_from < $1::timestamptz"
    "   AND (h.valid_to IS NULL OR h.valid_to >= $1::timestamptz)"
    " GROUP BY 1, 2, 3, 4"
    " ORDER BY h.account_id COLLATE \"C\", h.egress_mode COLLATE \"C\" NULLS LAST";

/* A one-line explanation of a finding from its details (drift.c writes them). */
/* clang-format off */
#define WHY_SQL                                                                                    \
    "CASE"                                                                                         \
    " WHEN f.kind = 'unenforced_intent' THEN (SELECT pg_catalog.string_agg("                       \
    "     COALESCE(l.v->>'mode', '?') || ': ' || COALESCE(l.v->>'verdict', '?')"                   \
    "     || COALESCE(' (' || (l.v->>'reason') || ')', ''), '; ' ORDER BY l.n)"                   \
    "   FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof("                   \
    "     f.details->'leaking_modes') = 'array' THEN f.details->'leaking_modes'"                   \
    "     ELSE '[]'::jsonb END) WITH ORDINALITY l(v, n))"                                          \
    " WHEN f.kind = 'noncompliant_cluster'"                                                        \
    "   AND pg_catalog.jsonb_typeof(f.details->'gaps') = 'array'"                                  \
    "   THEN (SELECT pg_catalog.string_agg(g.v #>> '{}', '; ' ORDER BY g.n)"                       \
    "   FROM pg_catalog.jsonb_array_elements(f.details->'gaps') WITH ORDINALITY g(v, n))"          \
    " WHEN f.kind = 'mode_changed' THEN COALESCE(f.details->>'from', 'not reported')"              \
    "   || ' -> ' || COALESCE(f.details->>'to', 'not reported')"                               \
    "   || CASE WHEN f.details->>'replaced' = 'true'"                                              \
    "      THEN ' (replaced: a CUSTOMER_ROUTED cluster never changes back)' ELSE '' END"           \
    " WHEN f.kind = 'unscanned_target' THEN COALESCE(f.details->>'status', 'not scanned')"         \
    "   || COALESCE(': ' || (f.details->>'error_code'), '')"                                       \
    " WHEN f.kind = 'exception_expired' THEN 'exception expired on '"                              \
    "   || COALESCE(f.details->>'expires', '?')"                                                   \
    " WHEN f.kind = 'unknown_mode' AND f.details->>'reason' = 'absent'"                            \
    "   THEN 'the API reported no mode (judged as AWS_MANAGED)'"                                   \
    " WHEN f.kind = 'unknown_mode' THEN 'a mode this version does not know'"                       \
    " ELSE f.details->>'note' END"
/* clang-format on */

/* $1 week start, $2 week end, $3 the week's last finalized scan (NULL: none). The findings open
 * at the week's end (raised by that scan, as current_drift for the latest one), first seen in the
 * week, or resolved in it by a scan that counts (not failed or aborted). */
enum {
    FD_ID,
    FD_KIND,
    FD_SEVERITY,
    FD_ACCOUNT,
    FD_ACCOUNT_NAME,
    FD_OU,
    FD_REGION,
    FD_ARN,
    FD_CLUSTER,
    FD_OBSERVED,
    FD_ALLOWED,
    FD_SOURCE,
    FD_REASON,
    FD_WHY,
    FD_REMEDIATION,
    FD_WARNING,
    FD_FIRST_SEEN,
    FD_RESOLVED_AT,
    FD_OPEN,
    FD_NEW,
    FD_RESOLVED,
    FD_COLUMNS
};
/* clang-format off */
static const char SQL_FINDINGS[] =
    "WITH ids AS ("
    "  SELECT sf.finding_id FROM egressscan.scan_finding sf WHERE sf.scan_id = $3::bigint"
    "  UNION SELECT f.finding_id FROM egressscan.finding f"
    "   WHERE f.first_seen >= $1::timestamptz AND f.first_seen < $2::timestamptz"
    "  UNION SELECT f.finding_id FROM egressscan.finding f"
    "   WHERE f.resolved_at >= $1::timestamptz AND f.resolved_at < $2::timestamptz)"
    " SELECT f.finding_id, f.kind, f.severity, f.account_id, COALESCE(sa.name, a.name),"
    "  COALESCE(sa.ou_path, a.ou_path), f.region, f.cluster_arn,"
    "  CASE WHEN f.cluster_arn IS NOT NULL THEN COALESCE(f.details->>'cluster',"
    "    pg_catalog.regexp_replace(f.cluster_arn, '^.*/', '')) END,"
    "  f.observed_mode, pg_catalog.array_to_string(f.allowed_modes, ', '), f.source,"
    "  f.details->>'reason', " WHY_SQL ", f.details->>'remediation', f.details->>'warning',"
    "  " STAMP_SQL("f.first_seen") ","
    "  CASE WHEN res.in_week THEN " STAMP_SQL("f.resolved_at") " END,"
    "  EXISTS (SELECT 1 FROM egressscan.scan_finding x"
    "          WHERE x.scan_id = $3::bigint AND x.finding_id = f.finding_id),"
    "  f.first_seen >= $1::timestamptz AND f.first_seen < $2::timestamptz,"
    "  res.in_week"
    " FROM ids JOIN egressscan.finding f ON f.finding_id = ids.finding_id"
    " LEFT JOIN egressscan.scan_account sa"
    "   ON sa.scan_id = $3::bigint AND sa.account_id = f.account_id"
    " LEFT JOIN egressscan.account a ON a.account_id = f.account_id"
    " CROSS JOIN LATERAL (SELECT COALESCE(f.resolved_at >= $1::timestamptz"
    "   AND f.resolved_at < $2::timestamptz"
    "   AND NOT EXISTS (SELECT 1 FROM egressscan.scan v WHERE v.scan_id = f.resolved_scan_id"
    "                   AND v.status IN ('failed', 'aborted')), false) AS in_week) res"
    " ORDER BY f.first_seen, f.finding_id";
/* clang-format on */

/* $1 the week's last finalized scan: its targets that were not scanned (the non-ok rows of the
 * coverage view when it is the latest scan). */
enum { CV_ACCOUNT, CV_NAME, CV_REGION, CV_STATUS, CV_CODE, CV_MESSAGE, CV_COLUMNS };
static const char SQL_COVERAGE[] =
    "SELECT r.account_id, COALESCE(sa.name, a.name), r.region, r.status, r.error_code,"
    "  r.error_message"
    " FROM egressscan.target_result r"
    " LEFT JOIN egressscan.scan_account sa"
    "   ON sa.scan_id = r.scan_id AND sa.account_id = r.account_id"
    " LEFT JOIN egressscan.account a ON a.account_id = r.account_id"
    " WHERE r.scan_id = $1::bigint AND r.status <> 'ok'"
    " ORDER BY r.account_id COLLATE \"C\", r.region COLLATE \"C\"";

/* ---- reading results ---- */

static const char *val(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static long num(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtol(PQgetvalue(r, row, col), NULL, 10);
}

static int flag(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void stamp_of_day(long day, char out[REPORT_STAMP_LEN])
{
    char date[REPORT_DATE_LEN];
    report_day_format(day, date);
    snprintf(out, REPORT_STAMP_LEN, "%sT00:00:00Z", date);
}

static void fill_scan(struct report_scan *s, const struct report_day *d, const PGresult *r, int row)
{
    s->scan_id = d->scan_id;
    s->counts = d->counts;
    snprintf(s->date, sizeof s->date, "%s", d->date);
    snprintf(s->started_at, sizeof s->started_at, "%s", PQgetvalue(r, row, TR_STARTED));
    snprintf(s->status, sizeof s->status, "%s", PQgetvalue(r, row, TR_STATUS));
    s->scps_known = PQgetisnull(r, row, TR_SCPS_KNOWN) ? -1 : flag(r, row, TR_SCPS_KNOWN);
}

static int load_trend(struct report *rep, const PGresult *r, struct err *err)
{
    long first = rep->trend[0].day;
    long week_first = rep->week.monday;
    for (int i = 0; i < PQntuples(r); i++) {
        long day;
        if (report_day_parse(PQgetvalue(r, i, TR_DAY), &day) < 0 || day < first ||
            day >= first + REPORT_TREND_DAYS)
            return err_set(err, "DatabaseError", "daily_compliance: unexpected day %s",
                           PQgetvalue(r, i, TR_DAY));
        struct report_day *d = &rep->trend[day - first];
        d->scanned = 1;
        d->scan_id = strtoll(PQgetvalue(r, i, TR_SCAN), NULL, 10);
        /* NULL counts: the scan's drift was not evaluated */
        d->counts.evaluated = !PQgetisnull(r, i, TR_CLUSTERS);
        d->counts.clusters = num(r, i, TR_CLUSTERS);
        d->counts.compliant = num(r, i, TR_COMPLIANT);
        d->counts.noncompliant = num(r, i, TR_NONCOMPLIANT);
        d->counts.exempt = num(r, i, TR_EXEMPT);
        d->counts.unknown = num(r, i, TR_UNKNOWN);
        d->counts.targets_total = num(r, i, TR_TARGETS_TOTAL);
        d->counts.targets_ok = num(r, i, TR_TARGETS_OK);
        /* rows come by day: the last one of each week is that week's last finalized scan */
        if (day >= week_first)
            fill_scan(&rep->last, d, r, i);
        else if (day >= week_first - REPORT_WEEK_DAYS)
            fill_scan(&rep->prev, d, r, i);
    }
    return 0;
}

static int load_fleet(struct report *rep, const PGresult *r, struct err *err)
{
    int rows = PQntuples(r), oom = 0;
    size_t n = 0;
    for (int i = 0; i < rows; i++)
        if (i == 0 || strcmp(PQgetvalue(r, i, FL_ACCOUNT), PQgetvalue(r, i - 1, FL_ACCOUNT)) != 0)
            n++;
    rep->accounts = n ? report_alloc(rep, n * sizeof *rep->accounts) : NULL;
    if (n && !rep->accounts)
        return err_set(err, ERR_NOMEM, "out of memory reading the fleet");
    rep->n_accounts = 0;
    for (int i = 0; i < rows; i++) {
        if (i == 0 || strcmp(PQgetvalue(r, i, FL_ACCOUNT), PQgetvalue(r, i - 1, FL_ACCOUNT)) != 0) {
            struct report_fleet_row *a = &rep->accounts[rep->n_accounts++];
            a->ou_path = report_strdup(rep, val(r, i, FL_OU), &oom);
            a->account_id = report_strdup(rep, val(r, i, FL_ACCOUNT), &oom);
            a->account_name = report_strdup(rep, val(r, i, FL_NAME), &oom);
        }
        struct report_fleet_row *a = &rep->accounts[rep->n_accounts - 1];
        a->by_mode[report_mode_of(val(r, i, FL_MODE))] += num(r, i, FL_COUNT);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading the fleet") : 0;
}

static int load_findings(struct report *rep, const PGresult *r, struct err *err)
{
    size_t n = (size_t)PQntuples(r);
    int oom = 0;
    rep->findings = n ? report_alloc(rep, n * sizeof *rep->findings) : NULL;
    if (n && !rep->findings)
        return err_set(err, ERR_NOMEM, "out of memory reading findings");
    rep->n_findings = n;
    for (size_t k = 0; k < n; k++) {
        int i = (int)k;
        struct report_finding *f = &rep->findings[k];
        f->finding_id = strtoll(PQgetvalue(r, i, FD_ID), NULL, 10);
        const char **fields[] = {
            [FD_KIND] = &f->kind,
            [FD_SEVERITY] = &f->severity,
            [FD_ACCOUNT] = &f->account_id,
            [FD_ACCOUNT_NAME] = &f->account_name,
            [FD_OU] = &f->ou_path,
            [FD_REGION] = &f->region,
            [FD_ARN] = &f->cluster_arn,
            [FD_CLUSTER] = &f->cluster_name,
            [FD_OBSERVED] = &f->observed_mode,
            [FD_ALLOWED] = &f->allowed_modes,
            [FD_SOURCE] = &f->source,
            [FD_REASON] = &f->reason,
            [FD_WHY] = &f->why,
            [FD_REMEDIATION] = &f->remediation,
            [FD_WARNING] = &f->warning,
            [FD_FIRST_SEEN] = &f->first_seen,
            [FD_RESOLVED_AT] = &f->resolved_at,
        };
        for (int c = FD_KIND; c <= FD_RESOLVED_AT; c++)
            *fields[c] = report_strdup(rep, val(r, i, c), &oom);
        f->open_at_end = flag(r, i, FD_OPEN);
        f->new_this_week = flag(r, i, FD_NEW);
        f->resolved_this_week = flag(r, i, FD_RESOLVED);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading findings") : 0;
}

static int load_coverage(struct report *rep, const PGresult *r, struct err *err)
{
    size_t n = (size_t)PQntuples(r);
    int oom = 0;
    rep->unscanned = n ? report_alloc(rep, n * sizeof *rep->unscanned) : NULL;
    if (n && !rep->unscanned)
        return err_set(err, ERR_NOMEM, "out of memory reading coverage");
    rep->n_unscanned = n;
    for (size_t k = 0; k < n; k++) {
        int i = (int)k;
        struct report_target *t = &rep->unscanned[k];
        t->account_id = report_strdup(rep, val(r, i, CV_ACCOUNT), &oom);
        t->account_name = report_strdup(rep, val(r, i, CV_NAME), &oom);
        t->region = report_strdup(rep, val(r, i, CV_REGION), &oom);
        t->status = report_strdup(rep, val(r, i, CV_STATUS), &oom);
        t->error_code = report_strdup(rep, val(r, i, CV_CODE), &oom);
        t->error_message = report_strdup(rep, val(r, i, CV_MESSAGE), &oom);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading coverage") : 0;
}

/* ---- the load ---- */

int db_report_load(struct db *db, struct report *rep, struct err *err)
{
    int rc = -1, in_tx = 0;
    PGresult *r = NULL;
    char week_start[REPORT_STAMP_LEN], week_end[REPORT_STAMP_LEN];
    char trend_first[REPORT_DATE_LEN], trend_end[REPORT_DATE_LEN], scan_id[32];
    stamp_of_day(rep->week.monday, week_start);
    stamp_of_day(rep->week.monday + REPORT_WEEK_DAYS, week_end);
    report_day_format(rep->trend[0].day, trend_first);
    report_day_format(rep->trend[0].day + REPORT_TREND_DAYS, trend_end);

    r = db_query(db, SQL_HAS_SCHEMA, 0, NULL, "looking for the egressscan schema", err);
    if (!r)
        goto cleanup;
    if (!flag(r, 0, 0)) {
        rep->schema_missing = 1;
        rc = report_finish(rep) < 0 ? err_set(err, ERR_NOMEM, "out of memory") : 0;
        goto cleanup;
    }
    PQclear(r);
    r = NULL;
    if (!db_schema_current(db, err))
        goto cleanup;

    /* one snapshot: a scan finishing meanwhile changes nothing in the report */
    if (db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                   "starting the report's snapshot", err) < 0)
        goto cleanup;
    in_tx = 1;

    const char *pw[2] = {week_start, week_end};
    r = db_query(db, SQL_SCANS, 2, pw, "counting the week's scans", err);
    if (!r)
        goto cleanup;
    rep->scans.total = num(r, 0, 0);
    rep->scans.succeeded = num(r, 0, 1);
    rep->scans.partial = num(r, 0, 2);
    rep->scans.failed = num(r, 0, 3);
    rep->scans.aborted = num(r, 0, 4);
    rep->scans.running = num(r, 0, 5);
    rep->any_scan = flag(r, 0, 6);
    PQclear(r);

    const char *pt[2] = {trend_first, trend_end};
    r = db_query(db, SQL_TREND, 2, pt, "reading daily_compliance", err);
    if (!r || load_trend(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);

    snprintf(scan_id, sizeof scan_id, "%lld", rep->last.scan_id);
    const char *last = rep->last.scan_id ? scan_id : NULL;
    const char *pf[2] = {week_end, last};
    r = db_query(db, SQL_FLEET, 2, pf, "reading the clusters at the week's end", err);
    if (!r || load_fleet(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);

    const char *pd[3] = {week_start, week_end, last};
    r = db_query(db, SQL_FINDINGS, 3, pd, "reading the week's findings", err);
    if (!r || load_findings(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);
    r = NULL;

    if (last) {
        const char *pc[1] = {last};
        r = db_query(db, SQL_COVERAGE, 1, pc, "reading the week's coverage", err);
        if (!r || load_coverage(rep, r, err) < 0)
            goto cleanup;
    }
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    if (report_finish(rep) < 0) {
        err_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    PQclear(r);
    return rc;
}
