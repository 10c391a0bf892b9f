/* test_prune.c - storage/prune.c and `egressscan prune` against a real PostgreSQL (one database per
 * test): which rows a prune deletes (cluster observations and ok coverage rows of old scans) and
 * which stay (scans, compliance counts, findings, failures, snapshots, history, the latest
 * finalized scan and running scans whole), that no view changes, dry runs, idempotence, one
 * transaction per scan, a scan written after a prune, and the command line. Times come from the
 * tests (as --as-of does for scan), never the clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "storage/db.h"
#include "storage/findings.h"
#include "storage/prune.h"
#include "storage/queue.h"
#include "tests/support/procs.h"

#define T0 1767225600.0 /* 2026-01-01T00:00:00Z */
#define DAY 86400.0

#define ACC "111122223333"
#define ACC2 "444455556666"

#define ARN_A "arn:aws:eks:eu-west-1:" ACC ":cluster/a"
#define ARN_B "arn:aws:eks:eu-west-1:" ACC ":cluster/b"
#define ARN_C "arn:aws:eks:us-east-1:" ACC ":cluster/c"

static struct pgtest pg;
static int n_databases;

struct fixture {
    char url[600];
    struct db *db;  /* connected and migrated */
    PGconn *check;  /* a plain connection for the assertions */
    struct db *db2; /* holds a running scan open (NULL when none) */
    long long s1, s2, s3, s4, s5;
};

/* ---- queries for assertions ---- */

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("query failed: %s\n%s", PQresultErrorMessage(r), sql);
    return r;
}

static char *q_text(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = q(c, sql, n, p);
    if (PQntuples(r) != 1)
        fail_msg("expected one row, got %d: %s", PQntuples(r), sql);
    char *v = strdup(PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_non_null(v);
    return v;
}

static void q_expect(PGconn *c, const char *expected, const char *sql, int n, const char *const *p)
{
    char *v = q_text(c, sql, n, p);
    if (strcmp(v, expected) != 0)
        fail_msg("expected '%s', got '%s': %s", expected, v, sql);
    free(v);
}

static const char *ll(char buf[32], long long v)
{
    snprintf(buf, 32, "%lld", v);
    return buf;
}

/* "observations|ok coverage rows|other coverage rows" of a scan. */
static void expect_raw(PGconn *c, long long scan, const char *expected)
{
    char id[32];
    const char *p[1] = {ll(id, scan)};
    q_expect(c, expected,
             "SELECT concat_ws('|', "
             "(SELECT count(*) FROM egressscan.cluster_observation WHERE scan_id = $1::bigint), "
             "(SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1::bigint "
             " AND status = 'ok'), "
             "(SELECT count(*) FROM egressscan.target_result WHERE scan_id = $1::bigint "
             " AND status <> 'ok'))",
             1, p);
}

/* Every row of every view of the schema, as text, in a stable order; but target_results, the
 * raw per-scan coverage rows that prune thins by design (its ok rows of old scans). */
static char *views_dump(PGconn *c)
{
    PGresult *views = q(c,
                        "SELECT format('SELECT coalesce(string_agg(v::text, E''\\n'' ORDER BY "
                        "v::text), '''') FROM %I.%I v', schemaname, viewname), viewname "
                        "FROM pg_views WHERE schemaname = 'egressscan'"
                        " AND viewname <> 'target_results' ORDER BY viewname",
                        0, NULL);
    assert_true(PQntuples(views) >= 6);
    size_t cap = 1, len = 0;
    char *all = calloc(1, cap);
    assert_non_null(all);
    for (int i = 0; i < PQntuples(views); i++) {
        char *rows = q_text(c, PQgetvalue(views, i, 0), 0, NULL);
        const char *name = PQgetvalue(views, i, 1);
        size_t add = strlen(name) + strlen(rows) + 8;
        all = realloc(all, cap += add);
        assert_non_null(all);
        len += (size_t)snprintf(all + len, cap - len, "== %s\n%s\n", name, rows);
        free(rows);
    }
    PQclear(views);
    return all;
}

/* Row counts of everything a prune must keep. */
static char *kept_counts(PGconn *c)
{
    return q_text(c,
                  "SELECT concat_ws('|', (SELECT count(*) FROM egressscan.scan), "
                  "(SELECT count(*) FROM egressscan.scan_compliance), "
                  "(SELECT count(*) FROM egressscan.finding), (SELECT count(*) FROM "
                  "egressscan.scan_finding), "
                  "(SELECT count(*) FROM egressscan.cluster), "
                  "(SELECT count(*) FROM egressscan.cluster_mode_interval), "
                  "(SELECT count(*) FROM egressscan.account), (SELECT count(*) FROM "
                  "egressscan.scan_account), "
                  "(SELECT count(*) FROM egressscan.scan_org_unit), "
                  "(SELECT count(*) FROM egressscan.scan_scp), "
                  "(SELECT count(*) FROM egressscan.scan_scp_target), "
                  "(SELECT count(*) FROM egressscan.target_result WHERE status <> 'ok'))",
                  0, NULL);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    return pgtest_start(&pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pgtest_stop(&pg);
    return 0;
}

/* A database of its own; migrated when migrate is set. */
static int make_fixture(void **state, int migrate)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    PGconn *admin = PQconnectdb(pg.url);
    char dbname[64], sql[96];
    snprintf(dbname, sizeof dbname, "es_prune_%d", ++n_databases);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname); /* test-only DDL */
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    if (!ok) {
        free(fx);
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "postgresql://postgres@127.0.0.1:%d/%s", pg.port, dbname);
    fx->check = PQconnectdb(fx->url);
    struct err e;
    err_clear(&e);
    fx->db = db_connect(fx->url, &e);
    if (PQstatus(fx->check) != CONNECTION_OK || !fx->db ||
        (migrate && db_migrate(fx->db, NULL, &e) < 0)) {
        fprintf(stderr, "setup: %s (%s)\n", e.message, e.code);
        return -1;
    }
    PQclear(PQexec(fx->check, "SET TimeZone = 'UTC'"));
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return make_fixture(state, 1);
}

static int setup_unmigrated(void **state)
{
    return make_fixture(state, 0);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    db_close(fx->db2);
    db_close(fx->db);
    PQfinish(fx->check);
    free(fx);
    return 0;
}

/* ---- building scans ---- */

static struct cluster cl(const char *arn, const char *name, const char *mode)
{
    return (struct cluster){.name = name,
                            .arn = arn,
                            .egress_mode = mode,
                            .status = "ACTIVE",
                            .endpoint_public_access = -1,
                            .endpoint_private_access = -1,
                            .raw_json = "{}"};
}

static struct target_result tgt(const char *account, const char *region, enum target_status st,
                                const struct cluster *c, size_t n, double at)
{
    struct target_result t = {.account_id = account,
                              .region = region,
                              .status = st,
                              .clusters = c,
                              .n_clusters = n,
                              .scanned_at = at};
    if (st != TARGET_OK) {
        t.error_code = "AccessDenied";
        t.error_message = "not authorized to perform: sts:AssumeRole";
    }
    return t;
}

static long long begin(struct db *db, double at)
{
    struct err e;
    err_clear(&e);
    long long id = 0;
    if (db_scan_begin(db, at, "{\"test\":true}", &id, NULL, &e) < 0)
        fail_msg("db_scan_begin: %s (%s)", e.message, e.code);
    return id;
}

static void write_targets(struct db *db, long long scan, const struct target_result *t, size_t n)
{
    const struct target_result *p[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        p[i] = &t[i];
    struct err e;
    err_clear(&e);
    if (db_write_targets(db, scan, p, n, &e) < 0)
        fail_msg("db_write_targets: %s (%s)", e.message, e.code);
}

/* The scan's findings and its judgements of the clusters, as the drift stage writes them. */
static void findings(struct db *db, long long scan, const struct finding *f, size_t n,
                     const struct cluster_judged *judged, size_t n_judged)
{
    struct findings_context ctx = {
        .scps_read = 1, .have_policy = 0, .judgements = judged, .n_judgements = n_judged};
    struct err e;
    err_clear(&e);
    if (db_write_findings_ctx(db, scan, f, n, &ctx, NULL, &e) < 0)
        fail_msg("db_write_findings_ctx: %s (%s)", e.message, e.code);
}

static void finish(struct db *db, long long scan, double at, const char *status)
{
    struct err e;
    err_clear(&e);
    struct scan_totals totals = {10, 1, 1};
    if (db_scan_finish(db, scan, at, status, &totals, status[0] == 'f' ? "boom" : NULL, &e) < 0)
        fail_msg("db_scan_finish: %s (%s)", e.message, e.code);
}

static struct finding fnd(const char *kind, const char *account, const char *region,
                          const char *arn, const char *source)
{
    return (struct finding){.kind = kind,
                            .severity = "high",
                            .account_id = account,
                            .region = region,
                            .cluster_arn = arn,
                            .source = source,
                            .details_json = "{}"};
}

/* The organization snapshot of a scan: two accounts under one OU, one SCP on the root. */
static void snapshot(struct db *db, long long scan)
{
    struct account a[2] = {{.id = ACC,
                            .name = "prod",
                            .ou_path = "Root/Prod",
                            .ou_id_path = "r-ab12/ou-ab12-11111111",
                            .parent_id = "ou-ab12-11111111"},
                           {.id = ACC2,
                            .name = "dev",
                            .ou_path = "Root",
                            .ou_id_path = "r-ab12",
                            .parent_id = "r-ab12"}};
    struct org_unit ou[2] = {{.id = "r-ab12", .name = "Root"},
                             {.id = "ou-ab12-11111111", .parent_id = "r-ab12", .name = "Prod"}};
    const char *targets[1] = {"r-ab12"};
    struct scp_policy scp = {.id = "p-deny",
                             .name = "DenyAwsManaged",
                             .content = "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
                             .targets = targets,
                             .n_targets = 1};
    struct err e;
    err_clear(&e);
    if (db_write_accounts(db, scan, a, 2, &e) < 0 || db_write_org_units(db, scan, ou, 2, &e) < 0 ||
        db_write_scps(db, scan, &scp, 1, &e) < 0 || db_set_scps_known(db, scan, 1, &e) < 0)
        fail_msg("snapshot: %s (%s)", e.message, e.code);
}

/*
 * The fleet's life, day 0 to day 100 (cutoff of the prunes below: day 50):
 *   s1 day 0    partial: a AWS_MANAGED, b CUSTOMER_ROUTED in eu-west-1, us-east-1 empty,
 *               ACC2 assume_role_denied; findings noncompliant(a), unscanned(ACC2)
 *   s2 day 1    failed after writing one ok target (a still AWS_MANAGED, b no longer listed)
 *   s3 day 2    partial: a now CUSTOMER_ROUTED (mode change); ACC2 still denied
 *   s4 day 3    left running on a second connection (process alive): never touched
 *   s5 day 100  succeeded: a, and c appeared in us-east-1; ACC2 scanned ok at last
 */
static void build_history(struct fixture *fx)
{
    struct cluster a_am = cl(ARN_A, "a", "AWS_MANAGED"), a_cr = cl(ARN_A, "a", "CUSTOMER_ROUTED");
    struct cluster b = cl(ARN_B, "b", "CUSTOMER_ROUTED"), c = cl(ARN_C, "c", NULL);
    struct finding nc = fnd("noncompliant_cluster", ACC, "eu-west-1", ARN_A, "scp:p-deny");
    nc.observed_mode = "AWS_MANAGED";
    nc.allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED);
    nc.details_json = "{\"reason\": \"predates_scp\"}";
    struct finding un = fnd("unscanned_target", ACC2, "*", NULL, "coverage");
    struct finding mc = fnd("mode_changed", ACC, "eu-west-1", ARN_A, "history");
    struct finding um = fnd("unknown_mode", ACC, "us-east-1", ARN_C, "observation");

    fx->s1 = begin(fx->db, T0);
    snapshot(fx->db, fx->s1);
    struct cluster s1c[2] = {a_am, b};
    struct target_result t1[3] = {tgt(ACC, "eu-west-1", TARGET_OK, s1c, 2, T0 + 10),
                                  tgt(ACC, "us-east-1", TARGET_OK, NULL, 0, T0 + 11),
                                  tgt(ACC2, "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, T0 + 12)};
    write_targets(fx->db, fx->s1, t1, 3);
    struct finding f1[2] = {nc, un};
    struct cluster_judged j1[2] = {{ARN_A, JUDGED_NONCOMPLIANT}, {ARN_B, JUDGED_COMPLIANT}};
    findings(fx->db, fx->s1, f1, 2, j1, 2);
    finish(fx->db, fx->s1, T0 + 60, "partial");

    fx->s2 = begin(fx->db, T0 + DAY);
    snapshot(fx->db, fx->s2);
    struct target_result t2[1] = {tgt(ACC, "eu-west-1", TARGET_OK, &a_am, 1, T0 + DAY + 10)};
    write_targets(fx->db, fx->s2, t2, 1);
    finish(fx->db, fx->s2, T0 + DAY + 60, "failed");

    fx->s3 = begin(fx->db, T0 + 2 * DAY);
    snapshot(fx->db, fx->s3);
    struct target_result t3[3] = {
        tgt(ACC, "eu-west-1", TARGET_OK, &a_cr, 1, T0 + 2 * DAY + 10),
        tgt(ACC, "us-east-1", TARGET_OK, NULL, 0, T0 + 2 * DAY + 11),
        tgt(ACC2, "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, T0 + 2 * DAY + 12)};
    write_targets(fx->db, fx->s3, t3, 3);
    struct finding f3[2] = {mc, un};
    struct cluster_judged j3[1] = {{ARN_A, JUDGED_COMPLIANT}};
    findings(fx->db, fx->s3, f3, 2, j3, 1);
    finish(fx->db, fx->s3, T0 + 2 * DAY + 60, "partial");

    struct err e;
    err_clear(&e);
    fx->db2 = db_connect(fx->url, &e);
    assert_non_null(fx->db2);
    fx->s4 = begin(fx->db2, T0 + 3 * DAY);
    struct target_result t4[1] = {tgt(ACC, "eu-west-1", TARGET_OK, &a_cr, 1, T0 + 3 * DAY + 10)};
    write_targets(fx->db2, fx->s4, t4, 1);

    fx->s5 = begin(fx->db, T0 + 100 * DAY);
    snapshot(fx->db, fx->s5);
    struct target_result t5[3] = {tgt(ACC, "eu-west-1", TARGET_OK, &a_cr, 1, T0 + 100 * DAY + 10),
                                  tgt(ACC, "us-east-1", TARGET_OK, &c, 1, T0 + 100 * DAY + 11),
                                  tgt(ACC2, "eu-west-1", TARGET_OK, NULL, 0, T0 + 100 * DAY + 12)};
    write_targets(fx->db, fx->s5, t5, 3);
    struct cluster_judged j5[2] = {{ARN_A, JUDGED_COMPLIANT}, {ARN_C, JUDGED_COMPLIANT}};
    findings(fx->db, fx->s5, &um, 1, j5, 2);
    finish(fx->db, fx->s5, T0 + 100 * DAY + 60, "succeeded");
}

/* Records what the callback saw: "id:observations:targets;" per scan. */
struct seen {
    char text[512];
    int stop_after; /* stop after this many scans (0: never) */
    int n;
};

static int on_scan(void *ud, const struct prune_scan *s)
{
    struct seen *sn = ud;
    size_t len = strlen(sn->text);
    snprintf(sn->text + len, sizeof sn->text - len, "%lld:%lld:%lld;", s->scan_id, s->observations,
             s->target_rows);
    assert_non_null(s->started_at);
    assert_int_equal(strlen(s->started_at), 20);
    sn->n++;
    return sn->stop_after && sn->n >= sn->stop_after;
}

static void prune_ok(struct fixture *fx, double cutoff, int dry_run, struct seen *sn,
                     struct prune_totals *t)
{
    struct err e;
    err_clear(&e);
    if (db_prune(fx->db, cutoff, dry_run, on_scan, sn, t, &e) < 0)
        fail_msg("db_prune: %s (%s)", e.message, e.code);
}

/* ---- tests ---- */

static void test_prune_deletes_raw_rows_of_old_scans_only(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    expect_raw(fx->check, fx->s1, "2|2|1");
    expect_raw(fx->check, fx->s2, "1|1|0");
    expect_raw(fx->check, fx->s3, "1|2|1");
    expect_raw(fx->check, fx->s4, "1|1|0");
    expect_raw(fx->check, fx->s5, "2|3|0");
    char *views = views_dump(fx->check);
    char *kept = kept_counts(fx->check);

    struct seen sn = {.text = ""};
    struct prune_totals t;
    prune_ok(fx, T0 + 50 * DAY, 0, &sn, &t);

    /* oldest first; the running scan and the recent one are not candidates */
    char expected[128];
    snprintf(expected, sizeof expected, "%lld:2:2;%lld:1:1;%lld:1:2;", fx->s1, fx->s2, fx->s3);
    assert_string_equal(sn.text, expected);
    assert_int_equal(t.scans, 3);
    assert_int_equal(t.observations, 4);
    assert_int_equal(t.target_rows, 5);
    assert_int_equal(t.kept_scan_id, fx->s5);

    expect_raw(fx->check, fx->s1, "0|0|1"); /* the failure stays: what was not scanned, and why */
    expect_raw(fx->check, fx->s2, "0|0|0");
    expect_raw(fx->check, fx->s3, "0|0|1");
    expect_raw(fx->check, fx->s4, "1|1|0"); /* running: untouched, whatever its age */
    expect_raw(fx->check, fx->s5, "2|3|0");

    /* everything else is still there, and no view shows a difference */
    char *kept_after = kept_counts(fx->check);
    assert_string_equal(kept_after, kept);
    char *views_after = views_dump(fx->check);
    assert_string_equal(views_after, views);

    /* in particular: the old scans' counters, their compliance days, history and findings */
    char a[32];
    const char *p1[1] = {ll(a, fx->s1)};
    q_expect(fx->check, "partial|3|2|1|2",
             "SELECT concat_ws('|', status, targets_total, targets_ok, targets_failed, "
             "clusters_seen) FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, p1);
    q_expect(fx->check, "2026-01-01:2:1:1|2026-01-03:1:1:0|2026-04-11:2:2:0",
             "SELECT string_agg(concat_ws(':', day, clusters, compliant, noncompliant), '|' "
             "ORDER BY day) FROM egressscan.daily_compliance",
             0, NULL);
    q_expect(fx->check,
             ARN_A "|AWS_MANAGED|2026-01-01 00:00:10+00|2026-01-03 00:00:10+00;" ARN_A
                   "|CUSTOMER_ROUTED|2026-01-03 00:00:10+00|-;" ARN_B
                   "|CUSTOMER_ROUTED|2026-01-01 00:00:10+00|2026-01-02 00:00:10+00;" ARN_C
                   "|-|2026-04-11 00:00:11+00|-",
             "SELECT string_agg(concat_ws('|', cluster_arn, coalesce(egress_mode, '-'), "
             "valid_from, coalesce(valid_to::text, '-')), ';' ORDER BY cluster_arn, valid_from) "
             "FROM egressscan.cluster_history",
             0, NULL);
    q_expect(fx->check, "mode_changed:1|noncompliant_cluster:1|unknown_mode:1|unscanned_target:2",
             "SELECT string_agg(kind || ':' || n, '|' ORDER BY kind) FROM (SELECT f.kind, "
             "count(*) AS n FROM egressscan.scan_finding sf JOIN egressscan.finding f USING "
             "(finding_id) GROUP BY f.kind) x",
             0, NULL);
    free(views);
    free(kept);
    free(kept_after);
    free(views_after);
}

static void test_dry_run_deletes_nothing_and_says_the_same(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    char *views = views_dump(fx->check);
    char *raw = q_text(fx->check,
                       "SELECT (SELECT count(*) FROM egressscan.cluster_observation) || '|' || "
                       "(SELECT count(*) FROM egressscan.target_result)",
                       0, NULL);
    struct seen dry = {.text = ""}, real = {.text = ""};
    struct prune_totals td, tr;
    prune_ok(fx, T0 + 50 * DAY, 1, &dry, &td);
    q_expect(fx->check, raw,
             "SELECT (SELECT count(*) FROM egressscan.cluster_observation) || '|' || "
             "(SELECT count(*) FROM egressscan.target_result)",
             0, NULL);
    prune_ok(fx, T0 + 50 * DAY, 0, &real, &tr);
    assert_string_equal(dry.text, real.text);
    assert_int_equal(td.scans, tr.scans);
    assert_int_equal(td.observations, tr.observations);
    assert_int_equal(td.target_rows, tr.target_rows);

    /* run again: nothing left to do, nothing reported */
    struct seen again = {.text = ""};
    struct prune_totals ta;
    prune_ok(fx, T0 + 50 * DAY, 0, &again, &ta);
    assert_string_equal(again.text, "");
    assert_int_equal(ta.scans, 0);
    assert_int_equal(ta.kept_scan_id, fx->s5);
    char *after = views_dump(fx->check);
    assert_string_equal(after, views);
    free(views);
    free(raw);
    free(after);
}

static void test_latest_finalized_scan_is_kept_whole_however_old(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    char *views = views_dump(fx->check);
    /* a cutoff after every scan: all but the latest finalized one (and the running one) go */
    struct seen sn = {.text = ""};
    struct prune_totals t;
    prune_ok(fx, T0 + 1000 * DAY, 0, &sn, &t);
    assert_int_equal(t.scans, 3);
    assert_int_equal(t.kept_scan_id, fx->s5);
    expect_raw(fx->check, fx->s5, "2|3|0");
    expect_raw(fx->check, fx->s4, "1|1|0");
    char *after = views_dump(fx->check);
    assert_string_equal(after, views);
    /* coverage still lists every target of the latest scan */
    q_expect(fx->check, "3", "SELECT count(*) FROM egressscan.coverage", 0, NULL);

    /* a later failed scan does not make the latest finalized one prunable */
    long long s6 = begin(fx->db, T0 + 101 * DAY);
    struct target_result t6[1] = {tgt(ACC, "eu-west-1", TARGET_OK, NULL, 0, T0 + 101 * DAY)};
    write_targets(fx->db, s6, t6, 1);
    finish(fx->db, s6, T0 + 101 * DAY + 5, "failed");
    struct seen sn2 = {.text = ""};
    prune_ok(fx, T0 + 1000 * DAY, 0, &sn2, &t);
    char expected[64];
    snprintf(expected, sizeof expected, "%lld:0:1;", s6);
    assert_string_equal(sn2.text, expected);
    expect_raw(fx->check, fx->s5, "2|3|0");
    free(views);
    free(after);
}

static void test_each_scan_is_its_own_transaction(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    struct seen sn = {.text = "", .stop_after = 1};
    struct prune_totals t;
    struct err e;
    err_clear(&e);
    assert_int_equal(db_prune(fx->db, T0 + 50 * DAY, 0, on_scan, &sn, &t, &e), -1);
    assert_string_equal(e.code, "Stopped");
    assert_int_equal(t.scans, 1);
    expect_raw(fx->check, fx->s1, "0|0|1"); /* pruned and committed */
    expect_raw(fx->check, fx->s2, "1|1|0"); /* not yet */
    expect_raw(fx->check, fx->s3, "1|2|1");
    /* the rest on the next run */
    struct seen rest = {.text = ""};
    prune_ok(fx, T0 + 50 * DAY, 0, &rest, &t);
    char expected[64];
    snprintf(expected, sizeof expected, "%lld:1:1;%lld:1:2;", fx->s2, fx->s3);
    assert_string_equal(rest.text, expected);
}

static void test_scans_after_a_prune_carry_on(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    struct prune_totals t;
    struct seen sn = {.text = ""};
    prune_ok(fx, T0 + 50 * DAY, 0, &sn, &t);

    /* the day after: c still without a mode (the same finding), a gone, ACC2 denied again */
    struct cluster c = cl(ARN_C, "c", NULL);
    struct finding um = fnd("unknown_mode", ACC, "us-east-1", ARN_C, "observation");
    struct finding un = fnd("unscanned_target", ACC2, "*", NULL, "coverage");
    long long s6 = begin(fx->db, T0 + 101 * DAY);
    struct target_result t6[3] = {
        tgt(ACC, "eu-west-1", TARGET_OK, NULL, 0, T0 + 101 * DAY + 10),
        tgt(ACC, "us-east-1", TARGET_OK, &c, 1, T0 + 101 * DAY + 11),
        tgt(ACC2, "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, T0 + 101 * DAY + 12)};
    write_targets(fx->db, s6, t6, 3);
    struct finding f6[2] = {um, un};
    struct cluster_judged j6[1] = {{ARN_C, JUDGED_UNKNOWN}};
    findings(fx->db, s6, f6, 2, j6, 1);
    finish(fx->db, s6, T0 + 101 * DAY + 60, "partial");

    /* the unknown_mode finding kept its first_seen; the denied account is a new lifetime */
    q_expect(fx->check,
             "unknown_mode|2026-04-11 00:00:00+00;unscanned_target|2026-04-12 00:00:00+00",
             "SELECT string_agg(kind || '|' || first_seen, ';' ORDER BY kind) "
             "FROM egressscan.current_drift",
             0, NULL);
    q_expect(fx->check, ARN_C,
             "SELECT string_agg(cluster_arn, ',') FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, ARN_A "|CUSTOMER_ROUTED|2026-04-12 00:00:10+00",
             "SELECT concat_ws('|', cluster_arn, egress_mode, valid_to) FROM "
             "egressscan.cluster_history WHERE cluster_arn = '" ARN_A "' AND valid_to IS NOT NULL "
             "AND egress_mode = 'CUSTOMER_ROUTED'",
             0, NULL);
    /* and the earlier prune's scans stay pruned; s5 is now prunable too */
    struct seen later = {.text = ""};
    prune_ok(fx, T0 + 101 * DAY, 0, &later, &t);
    char expected[64];
    snprintf(expected, sizeof expected, "%lld:2:3;", fx->s5);
    assert_string_equal(later.text, expected);
}

/* ---- the command ---- */

static int run(struct fixture *fx, const char *const *args, char **out, char **errout)
{
    const char *bin = getenv("BIN") ? getenv("BIN") : "build/egressscan";
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "prune";
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n++] = "--database-url";
    argv[n++] = fx->url;
    argv[n] = NULL;
    return procs_run2(argv, NULL, out, errout);
}

static void expect_contains(const char *text, const char *needle)
{
    if (!text || !strstr(text, needle))
        fail_msg("expected '%s' in:\n%s", needle, text ? text : "(null)");
}

/* A scan made the way `scan --enqueue` and a worker make it, at `at`: two work items, each
 * claimed and completed with one ok target, then finalized. */
static long long enqueued_scan(struct fixture *fx, double at)
{
    struct err e;
    err_clear(&e);
    long long id = begin(fx->db, at);
    const char *accounts[2] = {ACC, ACC2};
    struct scan_totals discovery = {3, 0, 0};
    if (queue_create(fx->db, id, "{\"regions\": [\"eu-west-1\"]}", accounts, 2, &discovery, &e) < 0)
        fail_msg("queue_create: %s (%s)", e.message, e.code);
    long long claimed = 0;
    struct queue_item items[4];
    size_t n = 0;
    if (queue_claim(fx->db, id, "host:1:w", 60, 4, &claimed, items, &n, &e) < 0)
        fail_msg("queue_claim: %s (%s)", e.message, e.code);
    assert_int_equal(claimed, id);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        struct target_result t = tgt(items[i].account_id, "eu-west-1", TARGET_OK, NULL, 0, at + 5);
        const struct target_result *tp[1] = {&t};
        struct scan_totals calls = {2, 0, 0};
        assert_int_equal(
            queue_complete(fx->db, id, items[i].account_id, "host:1:w", tp, 1, &calls, &e), 0);
    }
    struct scan_totals totals;
    assert_int_equal(queue_begin_finalize(fx->db, id, &totals, &e), 1);
    assert_int_equal(totals.api_calls, 7);
    if (db_scan_finish(fx->db, id, at + 60, "succeeded", &totals, NULL, &e) < 0)
        fail_msg("db_scan_finish: %s (%s)", e.message, e.code);
    return id;
}

/* An old enqueued scan loses its work queue (scan_queue + work_item) with its raw rows; its scan
 * row keeps the totals; the latest one keeps everything. */
static void test_prune_deletes_the_work_queue_of_old_enqueued_scans(void **state)
{
    struct fixture *fx = *state;
    long long old = enqueued_scan(fx, T0), latest = enqueued_scan(fx, T0 + 100 * DAY);
    q_expect(fx->check, "2", "SELECT count(*) FROM egressscan.work_queue", 0, NULL);
    char id[32], id2[32];
    const char *p[2] = {ll(id, old), ll(id2, latest)};
    q_expect(fx->check, "7|2|2",
             "SELECT concat_ws('|', api_calls, targets_total, targets_ok) "
             "FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, p);

    struct seen dry = {.text = ""};
    struct prune_totals t;
    prune_ok(fx, T0 + 50 * DAY, 1, &dry, &t);
    assert_int_equal(t.scans, 1);
    assert_int_equal(t.work_items, 2);
    q_expect(fx->check, "2", "SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1::bigint",
             1, p);

    struct seen sn = {.text = ""};
    prune_ok(fx, T0 + 50 * DAY, 0, &sn, &t);
    char expected[64];
    snprintf(expected, sizeof expected, "%lld:0:2;", old);
    assert_string_equal(sn.text, expected);
    assert_int_equal(t.scans, 1);
    assert_int_equal(t.work_items, 2);
    assert_int_equal(t.kept_scan_id, latest);
    q_expect(fx->check, "0|0|2|1",
             "SELECT concat_ws('|', "
             "(SELECT count(*) FROM egressscan.work_item WHERE scan_id = $1::bigint), "
             "(SELECT count(*) FROM egressscan.scan_queue WHERE scan_id = $1::bigint), "
             "(SELECT count(*) FROM egressscan.work_item WHERE scan_id = $2::bigint), "
             "(SELECT count(*) FROM egressscan.scan_queue WHERE scan_id = $2::bigint))",
             2, p);
    q_expect(fx->check, id2, "SELECT string_agg(scan_id::text, ',') FROM egressscan.work_queue", 0,
             NULL);
    /* the scan's own row keeps what it did */
    q_expect(fx->check, "7|2|2|succeeded",
             "SELECT concat_ws('|', api_calls, targets_total, targets_ok, status) "
             "FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, p);

    /* nothing left: not reported again */
    struct seen again = {.text = ""};
    prune_ok(fx, T0 + 50 * DAY, 0, &again, &t);
    assert_int_equal(t.scans, 0);
    assert_int_equal(t.work_items, 0);
}

static void test_command_dry_run_then_prune(void **state)
{
    struct fixture *fx = *state;
    build_history(fx);
    char *views = views_dump(fx->check);
    char *out = NULL, *err = NULL, line[160];

    /* day 100 minus 50 days: s1, s2 and s3 */
    const char *dry[] = {"--older-than",         "50d",       "--as-of",
                         "2026-04-11T12:00:00Z", "--dry-run", NULL};
    assert_int_equal(run(fx, dry, &out, &err), 0);
    expect_contains(out, "prune: scans started before 2026-02-20T12:00:00Z (50d before "
                         "2026-04-11T12:00:00Z); dry run, nothing is deleted");
    snprintf(line, sizeof line,
             "scan %lld  started 2026-01-01T00:00:00Z  partial    would delete 2 cluster "
             "observations, 2 ok coverage rows",
             fx->s1);
    expect_contains(out, line);
    snprintf(line, sizeof line, "scan %lld  started 2026-01-02T00:00:00Z  failed", fx->s2);
    expect_contains(out, line);
    expect_contains(out, "prune: 3 scans would be pruned: 4 cluster observations, 5 ok coverage "
                         "rows would be deleted");
    snprintf(line, sizeof line, "prune: the latest finalized scan (%lld) is kept whole", fx->s5);
    expect_contains(out, line);
    expect_raw(fx->check, fx->s1, "2|2|1");
    free(out);
    free(err);

    /* weeks and hours say the same cutoff */
    const char *real[] = {"--older-than", "1200h", "--as-of", "2026-04-11T12:00:00Z", NULL};
    assert_int_equal(run(fx, real, &out, &err), 0);
    expect_contains(out, "prune: scans started before 2026-02-20T12:00:00Z (1200h before");
    expect_contains(out, "prune: 3 scans pruned: 4 cluster observations, 5 ok coverage rows "
                         "deleted");
    expect_raw(fx->check, fx->s1, "0|0|1");
    free(out);
    free(err);
    char *after = views_dump(fx->check);
    assert_string_equal(after, views);

    const char *again[] = {"--older-than", "7w", "--as-of", "2026-04-11T12:00:00Z", NULL};
    assert_int_equal(run(fx, again, &out, &err), 0);
    expect_contains(out, "prune: 0 scans pruned");
    free(out);
    free(err);
    free(views);
    free(after);
}

static void test_command_usage_errors(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[][4] = {
        {NULL},                        /* --older-than is required */
        {"--older-than", "90", NULL},  /* no unit */
        {"--older-than", "0d", NULL},  /* nothing is that young */
        {"--older-than", "90y", NULL}, /* unknown unit */
        {"--older-than", "-5d", NULL}, /* negative */
        {"--older-than", "90d", "extra", NULL},
        {"--older-than", "90d", "--as-of", NULL}, /* --as-of then --database-url as its value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = run(fx, bad[i], &out, &err);
        if (rc != 2)
            fail_msg("case %zu: exit %d, expected 2; stderr: %s", i, rc, err ? err : "");
        assert_true(err && strstr(err, "egressscan prune"));
        free(out);
        free(err);
    }
    char *out = NULL, *err = NULL;
    const char *help[] = {"--help", NULL};
    assert_int_equal(run(fx, help, &out, &err), 0);
    expect_contains(out, "usage: egressscan prune --older-than AGE");
    free(out);
    free(err);
}

static void test_command_refuses_an_unmigrated_database(void **state)
{
    struct fixture *fx = *state;
    char *out = NULL, *err = NULL;
    const char *args[] = {"--older-than", "90d", NULL};
    assert_int_equal(run(fx, args, &out, &err), 4);
    expect_contains(err, "run 'egressscan migrate' first");
    free(out);
    free(err);

    /* and an unreachable database is a failure too */
    char *argv[] = {getenv("BIN") ? getenv("BIN") : "build/egressscan",
                    "prune",
                    "--older-than",
                    "90d",
                    "--database-url",
                    "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
                    NULL};
    assert_int_equal(procs_run2(argv, NULL, &out, &err), 4);
    expect_contains(err, "cannot connect to the database");
    free(out);
    free(err);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_deletes_raw_rows_of_old_scans_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_deletes_nothing_and_says_the_same, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_finalized_scan_is_kept_whole_however_old, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_scan_is_its_own_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans_after_a_prune_carry_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_deletes_the_work_queue_of_old_enqueued_scans,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_dry_run_then_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_refuses_an_unmigrated_database,
                                        setup_unmigrated, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
