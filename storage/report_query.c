/* report_query.c - the weekly report's reads, from the public views only (so that a login of
 * egressscan_reader makes the same report as the scanner). The record describes the fleet, not one
 * scan (SPEC.md section 5): for the week of the latest finalized scan scans, daily_compliance,
 * current_clusters, current_drift and coverage; for a week in the past the history views
 * (cluster_history, target_results, scan_accounts, findings, scan_findings: migration 0005) with
 * the same definitions applied at the week's end and its last finalized scan, each finding as
 * that week left it. One REPEATABLE READ snapshot; PQexecParams only. */
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

/* $1 week start, $2 week end: every scan started in the week, its scope and SCP state. */
enum { SL_ID, SL_STARTED, SL_STATUS, SL_SCOPE, SL_SCPS, SL_TOTAL, SL_OK, SL_FAILED };
/* clang-format off */
static const char SQL_SCAN_LIST[] =
    "SELECT scan_id, " STAMP_SQL("started_at") ", status, scope, scps_state, targets_total,"
    "  targets_ok, targets_failed"
    " FROM egressscan.scans"
    " WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz"
    " ORDER BY started_at, scan_id";
/* clang-format on */

/* The latest finalized scan, as current_drift and coverage see it (NULL row: none). */
static const char SQL_LATEST[] =
    "SELECT scan_id FROM egressscan.scans WHERE status IN ('succeeded', 'partial')"
    " ORDER BY started_at DESC, scan_id DESC LIMIT 1";

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
    TR_SCPS_KNOWN,
    TR_UNVERIFIED,
    TR_SCOPE,
    TR_SCPS_STATE
};
/* clang-format off */
static const char SQL_TREND[] =
    "SELECT pg_catalog.to_char(d.day, 'YYYY-MM-DD'), d.scan_id, d.clusters, d.compliant,"
    "  d.noncompliant, d.exempt, d.unknown, d.targets_total, d.targets_ok,"
    "  " STAMP_SQL("s.started_at") ", s.status, s.scps_known, d.unverified, s.scope,"
    "  s.scps_state"
    " FROM egressscan.daily_compliance d"
    " JOIN egressscan.scans s ON s.scan_id = d.scan_id"
    " WHERE d.day >= $1::date AND d.day < $2::date"
    " ORDER BY d.day";
/* clang-format on */

/* The fleet's latest word per target as of the scan $2 (a week in the past), as coverage and
 * fleet_target define it now: among the finalized scans started up to $2, the latest result per
 * (account, region); an account-level row ('*') is the account's word unless a regional result is
 * newer. The fleet is what the latest fleet-scope scan up to $2 tried (every region of an account
 * it answered for with a '*' row) plus what later targeted scans up to $2 tried; with no fleet
 * scan yet, everything tried. A cluster is verified at $2 when its target's word is ok and its
 * account has no account-level word: the definition of current_clusters.verified, at $2. */
/* clang-format off */
#define WORD_AT_SQL                                                                                \
    "WITH s AS (SELECT x.scan_id, x.started_at FROM egressscan.scans x"                            \
    "           WHERE x.scan_id = $2::bigint),"                                                    \
    " fin AS (SELECT x.scan_id, x.scope, x.started_at FROM egressscan.scans x, s"                  \
    "         WHERE x.status IN ('succeeded', 'partial')"                                          \
    "           AND (x.started_at, x.scan_id) <= (s.started_at, s.scan_id)),"                      \
    " fs AS (SELECT fin.scan_id, fin.started_at FROM fin WHERE fin.scope = 'fleet'"                \
    "        ORDER BY fin.started_at DESC, fin.scan_id DESC LIMIT 1),"                             \
    " tried AS (SELECT r.*, fin.started_at AS scan_started FROM egressscan.target_results r"      \
    "           JOIN fin ON fin.scan_id = r.scan_id),"                                             \
    " word AS (SELECT DISTINCT ON (t.account_id, t.region) t.* FROM tried t"                       \
    "          ORDER BY t.account_id, t.region, t.scanned_at DESC, t.scan_id DESC),"               \
    " since AS (SELECT t.account_id, t.region, t.scan_id FROM tried t, fs"                         \
    "           WHERE (t.scan_started, t.scan_id) >= (fs.started_at, fs.scan_id)),"                \
    " infleet AS (SELECT w.* FROM word w"                                                          \
    "   WHERE NOT EXISTS (SELECT 1 FROM fs)"                                                       \
    "      OR (w.account_id, w.region) IN (SELECT n.account_id, n.region FROM since n)"            \
    "      OR w.account_id IN (SELECT n.account_id FROM since n, fs"                               \
    "                          WHERE n.region = '*' AND n.scan_id = fs.scan_id)),"                 \
    " star AS (SELECT w.* FROM infleet w WHERE w.region = '*'"                                     \
    "   AND NOT EXISTS (SELECT 1 FROM infleet b WHERE b.account_id = w.account_id"                 \
    "                   AND b.region <> '*' AND b.scanned_at > w.scanned_at)),"                    \
    " verified AS (SELECT w.account_id, w.region FROM infleet w"                                   \
    "   WHERE w.status = 'ok' AND w.region <> '*'"                                                 \
    "     AND w.account_id NOT IN (SELECT x.account_id FROM star x))"
/* clang-format on */

/* The clusters at the end of the week by account and mode, verified or not: the same population
 * as the rate (verified clusters of the fleet), the others counted apart. */
enum { FL_OU, FL_ACCOUNT, FL_NAME, FL_MODE, FL_VERIFIED, FL_COUNT };
/* The week of the latest finalized scan: current_clusters. */
static const char SQL_FLEET_CURRENT[] =
    "SELECT c.ou_path, c.account_id, c.account_name, c.egress_mode, c.verified,"
    "  pg_catalog.count(*)"
    " FROM egressscan.current_clusters c"
    " GROUP BY 1, 2, 3, 4, 5"
    " ORDER BY c.account_id COLLATE \"C\", c.egress_mode COLLATE \"C\" NULLS LAST";
/* A week in the past: $1 the week's end, $2 its last finalized scan. The periods of
 * cluster_history that hold at the week's end ([valid_from, valid_to) contains the instant just
 * before $1; a cluster whose target left the fleet had its period closed then), verified as the
 * fleet's latest word at $2 says; the account as $2 placed it, else as last known. */
/* clang-format off */
static const char SQL_FLEET_AT[] =
    WORD_AT_SQL
    " SELECT COALESCE(sa.ou_path, a.ou_path), h.account_id,"
    "  COALESCE(sa.account_name, a.account_name),"
    "  h.egress_mode, v.account_id IS NOT NULL, pg_catalog.count(*)"
    " FROM egressscan.cluster_history h"
    " LEFT JOIN verified v ON v.account_id = h.account_id AND v.region = h.region"
    " LEFT JOIN egressscan.scan_accounts sa"
    "   ON sa.scan_id = $2::bigint AND sa.account_id = h.account_id"
    " LEFT JOIN egressscan.accounts a ON a.account_id = h.account_id"
    " WHERE h.valid_from < $1::timestamptz"
    "   AND (h.valid_to IS NULL OR h.valid_to >= $1::timestamptz)"
    " GROUP BY 1, 2, 3, 4, 5"
    " ORDER BY h.account_id COLLATE \"C\", h.egress_mode COLLATE \"C\" NULLS LAST";
/* clang-format on */

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

/* $1 week start, $2 week end, $3 the week's last finalized scan (NULL: none), $4 whether it is
 * the latest finalized scan. The findings open at the week's end, first seen in the week, or
 * resolved in it by a scan that counts (not failed or aborted).
 * Open at the week's end = the open findings of the fleet, whichever scan last confirmed them:
 * for the week of the latest scan exactly current_drift; for a week in the past, the same
 * definition at the week's end (first seen before it, not resolved before it except by a failed
 * or aborted scan, no newer lifetime of the same identity begun before it, not raised by such a
 * scan alone). Carried over: open, but not confirmed by $3: not raised by it (scan_finding), or,
 * for the latest week, raised without being judged again (its SCPs borrowed: last_scan_id is an
 * earlier scan's, as current_drift.scan_id shows). */
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
    FD_RESOLVED_REASON,
    FD_LAST_SEEN,
    FD_OPEN,
    FD_NEW,
    FD_RESOLVED,
    FD_RAISED,
    FD_COLUMNS
};
/* clang-format off */
#define VOID_SCAN_SQL(col) col " IN (SELECT scan_id FROM void_s)"
static const char SQL_FINDINGS[] =
    "WITH void_s AS (SELECT scan_id FROM egressscan.scans WHERE status IN ('failed', 'aborted')),"
    " open_f AS (SELECT d.finding_id FROM egressscan.current_drift d WHERE $4::boolean"
    " UNION SELECT f.finding_id FROM egressscan.findings f"
    " WHERE NOT $4::boolean AND $3::bigint IS NOT NULL"
    " AND f.first_seen < $2::timestamptz"
    " AND (f.resolved_at IS NULL OR f.resolved_at >= $2::timestamptz"
    " OR " VOID_SCAN_SQL("f.resolved_scan_id") ")"
    " AND NOT EXISTS (SELECT 1 FROM egressscan.findings g"
    " WHERE g.kind = f.kind AND g.account_id = f.account_id"
    " AND g.region = f.region"
    " AND g.cluster_arn IS NOT DISTINCT FROM f.cluster_arn"
    " AND g.source = f.source AND g.first_seen > f.first_seen"
    " AND g.first_seen < $2::timestamptz)"
    " AND NOT COALESCE(f.first_scan_id = f.last_scan_id"
    " AND " VOID_SCAN_SQL("f.last_scan_id") ", false)),"
    " ids AS ("
    " SELECT finding_id FROM open_f"
    " UNION SELECT f.finding_id FROM egressscan.findings f"
    " WHERE f.first_seen >= $1::timestamptz AND f.first_seen < $2::timestamptz"
    " UNION SELECT f.finding_id FROM egressscan.findings f"
    " WHERE f.resolved_at >= $1::timestamptz AND f.resolved_at < $2::timestamptz)"
    " SELECT f.finding_id, f.kind, f.severity, f.account_id,"
    " COALESCE(sa.account_name, a.account_name),"
    " COALESCE(sa.ou_path, a.ou_path), f.region, f.cluster_arn,"
    " CASE WHEN f.cluster_arn IS NOT NULL THEN COALESCE(f.details->>'cluster',"
    " pg_catalog.regexp_replace(f.cluster_arn, '^.*/', '')) END,"
    " f.observed_mode, pg_catalog.array_to_string(f.allowed_modes, ', '), f.source,"
    " f.details->>'reason', " WHY_SQL ", f.details->>'remediation', f.details->>'warning',"
    " " STAMP_SQL("f.first_seen") ","
    " CASE WHEN res.in_week THEN " STAMP_SQL("f.resolved_at") " END,"
    " CASE WHEN res.in_week THEN f.resolved_reason END,"
    " " STAMP_SQL("f.last_seen") ","
    " EXISTS (SELECT 1 FROM open_f o WHERE o.finding_id = f.finding_id),"
    " f.first_seen >= $1::timestamptz AND f.first_seen < $2::timestamptz,"
    " res.in_week,"
    " EXISTS (SELECT 1 FROM egressscan.scan_findings x"
    " WHERE x.scan_id = $3::bigint AND x.finding_id = f.finding_id)"
    " AND (f.last_scan_id = $3::bigint OR NOT $4::boolean)"
    /* each finding as the week left it: for the latest week the record itself */
    " FROM ids JOIN egressscan.findings_at(CASE WHEN NOT $4::boolean THEN $2::timestamptz END) f"
    " USING (finding_id)"
    " LEFT JOIN egressscan.scan_accounts sa"
    " ON sa.scan_id = $3::bigint AND sa.account_id = f.account_id"
    " LEFT JOIN egressscan.accounts a ON a.account_id = f.account_id"
    " CROSS JOIN LATERAL (SELECT COALESCE(f.resolved_at >= $1::timestamptz"
    " AND f.resolved_at < $2::timestamptz"
    " AND NOT " VOID_SCAN_SQL("f.resolved_scan_id") ", false) AS in_week) res"
    " ORDER BY f.first_seen, f.finding_id";
/* clang-format on */

/* The fleet's targets whose latest word is not ok (suspended accounts among them: the caller
 * lists them apart). */
enum {
    CV_ACCOUNT,
    CV_NAME,
    CV_REGION,
    CV_STATUS,
    CV_CODE,
    CV_MESSAGE,
    CV_SCANNED_AT,
    CV_LAST_OK_AT,
    CV_SCAN,
    CV_COLUMNS
};
/* The week of the latest finalized scan: the coverage view. */
/* clang-format off */
static const char SQL_COVERAGE_CURRENT[] =
    "SELECT c.account_id, c.account_name, c.region, c.status, c.error_code, c.error_message,"
    "  " STAMP_SQL("c.scanned_at") ", " STAMP_SQL("c.last_ok_at") ", c.scan_id"
    " FROM egressscan.coverage c"
    " WHERE c.status <> 'ok'"
    " ORDER BY c.account_id COLLATE \"C\", c.region COLLATE \"C\"";
/* A week in the past: $2 its last finalized scan ($1, the week's end, unused but typed). The
 * fleet's latest word at $2, one '*' row for an account whose word is account-level; last ok
 * among the finalized scans up to $2 (for '*': any region of the account). */
static const char SQL_COVERAGE_AT[] =
    WORD_AT_SQL
    ", ok_r AS (SELECT t.account_id, t.region, pg_catalog.max(t.scanned_at) AS scanned_at"
    "  FROM tried t WHERE t.status = 'ok' GROUP BY 1, 2)"
    " SELECT w.account_id, COALESCE(sa.account_name, a.account_name), w.region, w.status,"
    "  w.error_code,"
    "  w.error_message, " STAMP_SQL("w.scanned_at") ","
    "  " STAMP_SQL("(SELECT pg_catalog.max(t.scanned_at) FROM ok_r t"
    "   WHERE t.account_id = w.account_id AND (t.region = w.region OR w.region = '*'))") ","
    "  w.scan_id"
    " FROM infleet w"
    " LEFT JOIN egressscan.scan_accounts sa"
    "   ON sa.scan_id = $2::bigint AND sa.account_id = w.account_id"
    " LEFT JOIN egressscan.accounts a ON a.account_id = w.account_id"
    " WHERE w.status <> 'ok' AND $1::timestamptz IS NOT NULL"
    "   AND (w.region = '*' AND EXISTS (SELECT 1 FROM star x WHERE x.account_id = w.account_id"
    "                                     AND x.region = w.region)"
    "        OR w.region <> '*' AND NOT EXISTS (SELECT 1 FROM star x"
    "                                           WHERE x.account_id = w.account_id))"
    " ORDER BY w.account_id COLLATE \"C\", w.region COLLATE \"C\"";
/* clang-format on */

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
    snprintf(s->scope, sizeof s->scope, "%s", PQgetvalue(r, row, TR_SCOPE));
    snprintf(s->scps_state, sizeof s->scps_state, "%s", PQgetvalue(r, row, TR_SCPS_STATE));
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
        d->counts.unverified = num(r, i, TR_UNVERIFIED);
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
        if (flag(r, i, FL_VERIFIED))
            a->by_mode[report_mode_of(val(r, i, FL_MODE))] += num(r, i, FL_COUNT);
        else
            a->unverified += num(r, i, FL_COUNT);
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
            [FD_RESOLVED_REASON] = &f->resolved_reason,
            [FD_LAST_SEEN] = &f->last_seen,
        };
        for (int c = FD_KIND; c <= FD_LAST_SEEN; c++)
            *fields[c] = report_strdup(rep, val(r, i, c), &oom);
        f->open_at_end = flag(r, i, FD_OPEN);
        f->carried_over = f->open_at_end && !flag(r, i, FD_RAISED);
        f->new_this_week = flag(r, i, FD_NEW);
        f->resolved_this_week = flag(r, i, FD_RESOLVED);
        f->left_fleet = f->resolved_this_week && report_reason_left_fleet(f->resolved_reason);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading findings") : 0;
}

static int load_coverage(struct report *rep, const PGresult *r, struct err *err)
{
    size_t n = (size_t)PQntuples(r), n_suspended = 0;
    int oom = 0;
    for (size_t k = 0; k < n; k++)
        n_suspended += strcmp(PQgetvalue(r, (int)k, CV_STATUS), "suspended") == 0;
    rep->unscanned =
        n > n_suspended ? report_alloc(rep, (n - n_suspended) * sizeof *rep->unscanned) : NULL;
    rep->suspended = n_suspended ? report_alloc(rep, n_suspended * sizeof *rep->suspended) : NULL;
    if ((n > n_suspended && !rep->unscanned) || (n_suspended && !rep->suspended))
        return err_set(err, ERR_NOMEM, "out of memory reading coverage");
    rep->n_unscanned = rep->n_suspended = 0;
    for (size_t k = 0; k < n; k++) {
        int i = (int)k;
        /* a suspended account is not a target that failed: listed apart */
        struct report_target *t = strcmp(PQgetvalue(r, i, CV_STATUS), "suspended") == 0
                                      ? &rep->suspended[rep->n_suspended++]
                                      : &rep->unscanned[rep->n_unscanned++];
        t->account_id = report_strdup(rep, val(r, i, CV_ACCOUNT), &oom);
        t->account_name = report_strdup(rep, val(r, i, CV_NAME), &oom);
        t->region = report_strdup(rep, val(r, i, CV_REGION), &oom);
        t->status = report_strdup(rep, val(r, i, CV_STATUS), &oom);
        t->error_code = report_strdup(rep, val(r, i, CV_CODE), &oom);
        t->error_message = report_strdup(rep, val(r, i, CV_MESSAGE), &oom);
        t->scanned_at = report_strdup(rep, val(r, i, CV_SCANNED_AT), &oom);
        t->last_ok_at = report_strdup(rep, val(r, i, CV_LAST_OK_AT), &oom);
        t->scan_id = PQgetisnull(r, i, CV_SCAN) ? 0 : strtoll(PQgetvalue(r, i, CV_SCAN), NULL, 10);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading coverage") : 0;
}

static int load_scan_list(struct report *rep, const PGresult *r, struct err *err)
{
    size_t n = (size_t)PQntuples(r);
    int oom = 0;
    rep->week_scans = n ? report_alloc(rep, n * sizeof *rep->week_scans) : NULL;
    if (n && !rep->week_scans)
        return err_set(err, ERR_NOMEM, "out of memory reading the week's scans");
    rep->n_week_scans = n;
    for (size_t k = 0; k < n; k++) {
        int i = (int)k;
        struct report_scan_row *s = &rep->week_scans[k];
        s->scan_id = strtoll(PQgetvalue(r, i, SL_ID), NULL, 10);
        s->started_at = report_strdup(rep, val(r, i, SL_STARTED), &oom);
        s->status = report_strdup(rep, val(r, i, SL_STATUS), &oom);
        s->scope = report_strdup(rep, val(r, i, SL_SCOPE), &oom);
        s->scps_state = report_strdup(rep, val(r, i, SL_SCPS), &oom);
        s->targets_total = num(r, i, SL_TOTAL);
        s->targets_ok = num(r, i, SL_OK);
        s->targets_failed = num(r, i, SL_FAILED);
    }
    return oom ? err_set(err, ERR_NOMEM, "out of memory reading the week's scans") : 0;
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

    r = db_query(db, SQL_SCAN_LIST, 2, pw, "listing the week's scans", err);
    if (!r || load_scan_list(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);

    r = db_query(db, SQL_LATEST, 0, NULL, "finding the latest finalized scan", err);
    if (!r)
        goto cleanup;
    long long latest = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);

    const char *pt[2] = {trend_first, trend_end};
    r = db_query(db, SQL_TREND, 2, pt, "reading daily_compliance", err);
    if (!r || load_trend(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);

    snprintf(scan_id, sizeof scan_id, "%lld", rep->last.scan_id);
    const char *last = rep->last.scan_id ? scan_id : NULL;
    /* the week of the latest finalized scan reads the views; a week before it, the history */
    int current = rep->last.scan_id != 0 && rep->last.scan_id == latest;
    const char *pf[2] = {week_end, last};
    if (current)
        r = db_query(db, SQL_FLEET_CURRENT, 0, NULL, "reading current_clusters", err);
    else
        r = db_query(db, SQL_FLEET_AT, 2, pf, "reading the clusters at the week's end", err);
    if (!r || load_fleet(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);

    const char *pd[4] = {week_start, week_end, last, current ? "true" : "false"};
    r = db_query(db, SQL_FINDINGS, 4, pd, "reading the week's findings", err);
    if (!r || load_findings(rep, r, err) < 0)
        goto cleanup;
    PQclear(r);
    r = NULL;

    if (last) {
        if (current)
            r = db_query(db, SQL_COVERAGE_CURRENT, 0, NULL, "reading coverage", err);
        else
            r = db_query(db, SQL_COVERAGE_AT, 2, pf, "reading the fleet's coverage", err);
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
