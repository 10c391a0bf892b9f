/* test_findings.c - storage/findings.c and migration 0002 against a real PostgreSQL (one database
 * per test): the migration on top of 0001, the views current_drift and daily_compliance, finding
 * identity across scans (first_seen kept, resolution, new lifetimes, late and failed scans), the
 * drift snapshot round trip, the reader role, and awkward characters. Times come from the tests,
 * never the clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "storage/db.h"
#include "storage/db_internal.h"
#include "storage/findings.h"
#include "storage/migrations.h"
#include "tests/support/procs.h"

#define T0 1767225600.0 /* 2026-01-01T00:00:00Z */
#define DAY 86400.0
#define HOUR 3600.0

#define ACC "111122223333"
#define ACC2 "444455556666"
#define MGMT "999999999999"

static struct pgtest pg;
static int n_databases;

struct fixture {
    char url[600];
    char dbname[64];
    struct db *db; /* connected and migrated (NULL in fresh_setup) */
    PGconn *check; /* a plain connection for the assertions */
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

/* Asserts that sql returns one row whose first value is expected (NULL: SQL NULL). */
static void q_expect(PGconn *c, const char *expected, const char *sql, int n, const char *const *p)
{
    PGresult *r = q(c, sql, n, p);
    if (PQntuples(r) != 1)
        fail_msg("expected one row, got %d: %s", PQntuples(r), sql);
    if (!expected) {
        if (!PQgetisnull(r, 0, 0))
            fail_msg("expected NULL, got '%s': %s", PQgetvalue(r, 0, 0), sql);
    } else if (PQgetisnull(r, 0, 0)) {
        fail_msg("expected '%s', got NULL: %s", expected, sql);
    } else if (strcmp(PQgetvalue(r, 0, 0), expected) != 0) {
        fail_msg("expected '%s', got '%s': %s", expected, PQgetvalue(r, 0, 0), sql);
    }
    PQclear(r);
}

static long long q_int(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = q(c, sql, n, p);
    assert_int_equal(PQntuples(r), 1);
    assert_false(PQgetisnull(r, 0, 0));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* Runs a script of several statements (test-only SQL). */
static void exec_ok(PGconn *c, const char *script)
{
    PGresult *r = PQexec(c, script);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("script failed: %s", PQresultErrorMessage(r));
    PQclear(r);
}

static long long count_rows(PGconn *c, const char *sql)
{
    return q_int(c, sql, 0, NULL);
}

static const char *ll(char buf[32], long long v)
{
    snprintf(buf, 32, "%lld", v);
    return buf;
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

/* A database of its own for every test, not migrated. */
static int fresh_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    PGconn *admin = PQconnectdb(pg.url);
    if (PQstatus(admin) != CONNECTION_OK) {
        PQfinish(admin);
        free(fx);
        return -1;
    }
    char sql[96];
    snprintf(fx->dbname, sizeof fx->dbname, "es_findings_%d", ++n_databases);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", fx->dbname); /* test-only DDL */
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    if (!ok) {
        free(fx);
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "postgresql://postgres@127.0.0.1:%d/%s", pg.port, fx->dbname);
    fx->check = PQconnectdb(fx->url);
    if (PQstatus(fx->check) != CONNECTION_OK) {
        PQfinish(fx->check);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static struct db *connect_ok(struct fixture *fx)
{
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(fx->url, &e);
    if (!db)
        fail_msg("db_connect: %s (%s)", e.message, e.code);
    return db;
}

static int setup(void **state)
{
    if (fresh_setup(state) < 0)
        return -1;
    struct fixture *fx = *state;
    struct err e;
    err_clear(&e);
    fx->db = db_connect(fx->url, &e);
    if (!fx->db || db_migrate(fx->db, NULL, &e) < 0) {
        fprintf(stderr, "setup: %s (%s)\n", e.message, e.code);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    db_close(fx->db);
    PQfinish(fx->check);
    free(fx);
    return 0;
}

/* ---- building scans ---- */

struct tcluster {
    char arn[256];
    struct cluster c;
};

static void tcluster_init(struct tcluster *t, const char *account, const char *region,
                          const char *name, const char *mode)
{
    memset(t, 0, sizeof *t);
    snprintf(t->arn, sizeof t->arn, "arn:aws:eks:%s:%s:cluster/%s", region, account, name);
    t->c.name = name;
    t->c.arn = t->arn;
    t->c.egress_mode = mode;
    t->c.status = "ACTIVE";
    t->c.endpoint_public_access = -1;
    t->c.endpoint_private_access = -1;
    t->c.raw_json = "{}";
}

static struct target_result target(const char *account, const char *region,
                                   enum target_status status, const struct cluster *clusters,
                                   size_t n, double at)
{
    struct target_result t = {.account_id = account,
                              .region = region,
                              .status = status,
                              .clusters = clusters,
                              .n_clusters = n,
                              .scanned_at = at};
    if (status != TARGET_OK) {
        t.error_code = "ThrottlingException";
        t.error_message = "Rate exceeded";
    }
    return t;
}

static long long begin_scan(struct db *db, double at)
{
    struct err e;
    err_clear(&e);
    long long id = 0;
    if (db_scan_begin(db, at, "{\"test\":true}", &id, NULL, &e) < 0)
        fail_msg("db_scan_begin: %s (%s)", e.message, e.code);
    assert_true(id > 0);
    return id;
}

static void write_targets_ok(struct db *db, long long scan, const struct target_result *const *t,
                             size_t n)
{
    struct err e;
    err_clear(&e);
    if (db_write_targets(db, scan, t, n, &e) < 0)
        fail_msg("db_write_targets: %s (%s)", e.message, e.code);
}

static void finish_scan(struct db *db, long long scan, double at, const char *status)
{
    struct err e;
    err_clear(&e);
    struct scan_totals totals = {0, 0, 0};
    if (db_scan_finish(db, scan, at, status, &totals, NULL, &e) < 0)
        fail_msg("db_scan_finish: %s (%s)", e.message, e.code);
}

/* Coverage of the scan: two ok targets (eu-west-1 and us-east-1, no cluster) per account. */
static void cover(struct db *db, long long scan, double at, const char *const *accounts, size_t n)
{
    struct target_result t[16];
    const struct target_result *ptrs[16];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        t[2 * i] = target(accounts[i], "eu-west-1", TARGET_OK, NULL, 0, at + 10);
        t[2 * i + 1] = target(accounts[i], "us-east-1", TARGET_OK, NULL, 0, at + 10);
        ptrs[2 * i] = &t[2 * i];
        ptrs[2 * i + 1] = &t[2 * i + 1];
    }
    write_targets_ok(db, scan, ptrs, 2 * n);
}

static void set_scope(struct db *db, long long scan, int targeted)
{
    struct err e;
    err_clear(&e);
    if (db_set_scan_scope(db, scan, targeted, &e) < 0)
        fail_msg("db_set_scan_scope: %s (%s)", e.message, e.code);
}

static void write_findings_ok(struct db *db, long long scan, const struct finding *f, size_t n,
                              const struct drift_counts *counts)
{
    struct err e;
    err_clear(&e);
    if (db_write_findings(db, scan, f, n, counts, &e) < 0)
        fail_msg("db_write_findings: %s (%s)", e.message, e.code);
}

static const struct drift_counts no_counts = {0, 0, 0, 0, 0, 0};

/* A scan at `at` covering the accounts, raising the findings (written while it runs, as the
 * pipeline does), ended with status (NULL: left running). */
static long long scan_with(struct db *db, double at, const char *const *accounts, size_t na,
                           const struct finding *f, size_t n, const char *status)
{
    long long id = begin_scan(db, at);
    cover(db, id, at, accounts, na);
    write_findings_ok(db, id, f, n, &no_counts);
    if (status)
        finish_scan(db, id, at + 60, status);
    return id;
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

/* The open finding of that identity (0 when none). */
static long long open_id(PGconn *c, const struct finding *f)
{
    const char *p[5] = {f->kind, f->account_id, f->region, f->cluster_arn, f->source};
    PGresult *r = q(c,
                    "SELECT finding_id FROM egressscan.finding WHERE kind = $1 AND account_id = $2 "
                    "AND region = $3 AND cluster_arn IS NOT DISTINCT FROM $4 AND source = $5 "
                    "AND resolved_at IS NULL",
                    5, p);
    assert_true(PQntuples(r) <= 1);
    long long id = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return id;
}

/* "first_seen epoch|first_scan_id|last_seen epoch|last_scan_id|resolved_at epoch|resolved_scan"
 * of a finding ('-' for NULL). */
static void expect_lifetime(PGconn *c, long long finding_id, const char *expected)
{
    char id[32];
    const char *p[1] = {ll(id, finding_id)};
    q_expect(c, expected,
             "SELECT concat_ws('|', extract(epoch FROM first_seen)::bigint, first_scan_id, "
             "extract(epoch FROM last_seen)::bigint, last_scan_id, "
             "coalesce(extract(epoch FROM resolved_at)::bigint::text, '-'), "
             "coalesce(resolved_scan_id::text, '-')) FROM egressscan.finding "
             "WHERE finding_id = $1::bigint",
             1, p);
}

static const char *epoch_of(char buf[32], double t)
{
    snprintf(buf, 32, "%lld", (long long)t);
    return buf;
}

/* ---- migration ---- */

static const char SQL_BOOKKEEPING[] =
    "CREATE SCHEMA egressscan; "
    "CREATE TABLE egressscan.schema_migrations (version integer PRIMARY KEY CHECK (version > 0), "
    "name text NOT NULL, checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'), "
    "applied_at timestamptz NOT NULL DEFAULT now())";

/* The database as an egressscan that knew only the first `upto` migrations left it. */
static void migrate_raw(PGconn *c, size_t upto)
{
    exec_ok(c, SQL_BOOKKEEPING);
    for (size_t i = 0; i < upto; i++) {
        PQclear(q(c, "BEGIN", 0, NULL));
        exec_ok(c, db_migrations[i].sql);
        char v[16];
        snprintf(v, sizeof v, "%zu", i + 1);
        const char *pm[3] = {v, db_migrations[i].file, db_migrations[i].sql};
        PQclear(q(c,
                  "INSERT INTO egressscan.schema_migrations (version, name, checksum) "
                  "VALUES ($1::int, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'))",
                  3, pm));
        PQclear(q(c, "COMMIT", 0, NULL));
    }
}

/* An old scan, as the code of 0001 wrote it: one account, one SCP, one cluster. */
static const char SQL_OLD_0001[] =
    "INSERT INTO egressscan.scan (started_at, finished_at, status, targets_total, targets_ok,"
    "  clusters_seen) VALUES (to_timestamp(1767225600), to_timestamp(1767225660), 'succeeded',"
    "  1, 1, 1);"
    "INSERT INTO egressscan.account (account_id, name, ou_id_path, first_seen, last_seen)"
    "  VALUES ('" ACC "', 'Prod', 'r-ab12/ou-ab12-11111111', to_timestamp(1767225600),"
    "  to_timestamp(1767225600));"
    "INSERT INTO egressscan.scan_account (scan_id, account_id, name, ou_id_path, is_management)"
    "  VALUES (1, '" ACC "', 'Prod', 'r-ab12/ou-ab12-11111111', false);"
    "INSERT INTO egressscan.scan_scp (scan_id, policy_id, name, content)"
    "  VALUES (1, 'p-1', 'Deny', '{}');"
    "INSERT INTO egressscan.scan_scp_target VALUES (1, 'p-1', 'r-ab12');"
    "INSERT INTO egressscan.target_result (scan_id, account_id, region, status, clusters,"
    "  scanned_at) VALUES (1, '" ACC "', 'eu-west-1', 'ok', 1, to_timestamp(1767225610));"
    "INSERT INTO egressscan.cluster (cluster_arn, account_id, region, cluster_name, egress_mode,"
    "  first_seen, last_seen, first_scan_id, last_scan_id) VALUES"
    "  ('arn:aws:eks:eu-west-1:" ACC ":cluster/x', '" ACC "', 'eu-west-1', 'x', 'AWS_MANAGED',"
    "   to_timestamp(1767225610), to_timestamp(1767225610), 1, 1);"
    "INSERT INTO egressscan.cluster_mode_interval (cluster_arn, account_id, region, egress_mode,"
    "  valid_from, opened_scan_id) VALUES ('arn:aws:eks:eu-west-1:" ACC ":cluster/x', '" ACC "',"
    "  'eu-west-1', 'AWS_MANAGED', to_timestamp(1767225610), 1)";

/* What 0003 held on top: a targeted scan that could not reach ACC2 and was throttled on ACC, a
 * gone cluster, a resolved finding. */
static const char SQL_OLD_0003[] =
    "UPDATE egressscan.scan SET scps_known = true WHERE scan_id = 1;"
    "INSERT INTO egressscan.scan (started_at, finished_at, status, options, targets_total,"
    "  targets_ok, targets_failed, scps_known) VALUES (to_timestamp(1767312000),"
    "  to_timestamp(1767312060), 'partial', '{\"accounts\": 2}', 2, 0, 2, false);"
    "INSERT INTO egressscan.account (account_id, first_seen, last_seen)"
    "  VALUES ('" ACC2 "', to_timestamp(1767312000), to_timestamp(1767312000));"
    "INSERT INTO egressscan.target_result (scan_id, account_id, region, status, error_code,"
    "  scanned_at) VALUES (2, '" ACC "', 'eu-west-1', 'throttled', 'ThrottlingException',"
    "  to_timestamp(1767312010)), (2, '" ACC2 "', '*', 'assume_role_denied', 'AccessDenied',"
    "  to_timestamp(1767312011));"
    "INSERT INTO egressscan.cluster (cluster_arn, account_id, region, cluster_name, egress_mode,"
    "  first_seen, last_seen, gone_at) VALUES ('arn:aws:eks:eu-west-1:" ACC ":cluster/z',"
    "  '" ACC "', 'eu-west-1', 'z', NULL, to_timestamp(1767225000), to_timestamp(1767225000),"
    "  to_timestamp(1767225610));"
    "INSERT INTO egressscan.finding (kind, severity, account_id, region, source, first_seen,"
    "  last_seen, resolved_at) VALUES ('unscanned_target', 'high', '" ACC "', '*', 'coverage',"
    "  to_timestamp(1767225000), to_timestamp(1767225000), to_timestamp(1767225600))";

static void test_migrations_apply_on_top_of_old_databases(void **state)
{
    struct fixture *fx = *state;
    assert_true(db_migration_count >= 4);
    assert_string_equal(db_migrations[1].file, "0002_drift.sql");
    assert_string_equal(db_migrations[3].file, "0004_fleet.sql");

    /* written under 0001, then 0002 and 0003 applied with more history */
    migrate_raw(fx->check, 1);
    exec_ok(fx->check, SQL_OLD_0001);
    struct db *db = connect_ok(fx);
    struct err e;
    err_clear(&e);
    assert_int_equal(db_schema_current(db, &e), 0);
    assert_string_equal(e.code, "SchemaOutdated");
    db_close(db);
    PQclear(q(fx->check, "BEGIN", 0, NULL));
    for (size_t i = 1; i < 3; i++) {
        exec_ok(fx->check, db_migrations[i].sql);
        char v[16];
        snprintf(v, sizeof v, "%zu", i + 1);
        const char *pm[3] = {v, db_migrations[i].file, db_migrations[i].sql};
        PQclear(q(fx->check,
                  "INSERT INTO egressscan.schema_migrations (version, name, checksum) "
                  "VALUES ($1::int, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'))",
                  3, pm));
    }
    PQclear(q(fx->check, "COMMIT", 0, NULL));
    exec_ok(fx->check, SQL_OLD_0003);

    db = connect_ok(fx);
    int applied = -1;
    err_clear(&e);
    if (db_migrate(db, &applied, &e) < 0)
        fail_msg("db_migrate: %s (%s)", e.message, e.code);
    assert_int_equal(applied, (int)db_migration_count - 3);
    assert_int_equal(db_schema_current(db, &e), 1);

    /* scans: the --accounts one is targeted; the SCP state follows the flag */
    PQclear(q(fx->check, "SET TimeZone = 'UTC'", 0, NULL));
    q_expect(fx->check, "1 succeeded fleet read -,2 partial targeted not_read -",
             "SELECT string_agg(concat_ws(' ', scan_id, status, scope, scps_state, "
             "coalesce(intent_scan_id::text, '-')), ',' ORDER BY scan_id) FROM egressscan.scans",
             0, NULL);
    /* coverage: the latest word per target, with the last ok */
    q_expect(fx->check,
             ACC " eu-west-1 throttled 2 2026-01-01 00:00:10+00," ACC2 " * assume_role_denied 2 -",
             "SELECT string_agg(concat_ws(' ', account_id, region, status, scan_id, "
             "coalesce(last_ok_at::text, '-')), ',' ORDER BY account_id) FROM egressscan.coverage",
             0, NULL);
    /* the cluster keeps its last known state, not verified; the gone one is not there */
    q_expect(fx->check, "x|f|2026-01-01 00:00:10+00|-",
             "SELECT concat_ws('|', cluster_name, verified, last_verified_at, "
             "coalesce(compliance, '-')) FROM egressscan.current_clusters",
             0, NULL);
    q_expect(fx->check, "cluster_gone",
             "SELECT gone_reason FROM egressscan.cluster WHERE cluster_name = 'z'", 0, NULL);
    q_expect(fx->check, "not_raised", "SELECT resolved_reason FROM egressscan.finding", 0, NULL);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_drift"), 0);
    /* finalized, drift never evaluated: the days are there, their compliance unknown */
    q_expect(fx->check, "2026-01-01|<null>|<null>|1,2026-01-02|<null>|<null>|2",
             "SELECT string_agg(concat_ws('|', day, coalesce(clusters::text, '<null>'), "
             "coalesce(unverified::text, '<null>'), targets_total), ',' ORDER BY day) "
             "FROM egressscan.daily_compliance",
             0, NULL);
    q_expect(fx->check, "t",
             "SELECT has_table_privilege('egressscan_reader', 'egressscan.current_drift', "
             "'SELECT') AND has_table_privilege('egressscan_reader', "
             "'egressscan.daily_compliance', 'SELECT') AND has_table_privilege("
             "'egressscan_reader', 'egressscan.coverage', 'SELECT')",
             0, NULL);

    /* the old scan that read its SCPs judges itself with them; the targeted one borrows them */
    struct drift_snapshot s;
    err_clear(&e);
    assert_int_equal(db_load_drift_snapshot(db, 1, &s, &e), 0);
    assert_int_equal(s.scps_known, 1);
    assert_int_equal(s.intent_scan_id, 1);
    assert_int_equal(s.n_clusters, 1);
    assert_int_equal(s.clusters[0].unverified, 0);
    db_drift_snapshot_free(&s);
    assert_int_equal(db_load_drift_snapshot(db, 2, &s, &e), 0);
    assert_int_equal(s.scps_read, 0);
    assert_int_equal(s.intent_scan_id, 1);
    assert_int_equal(s.n_scps, 1);
    assert_int_equal(s.fleet_scope, 0);
    assert_int_equal(s.n_clusters, 1);
    assert_int_equal(s.clusters[0].unverified, 1); /* throttled in scan 2 */
    db_drift_snapshot_free(&s);

    err_clear(&e);
    assert_int_equal(db_migrate(db, &applied, &e), 0);
    assert_int_equal(applied, 0);
    db_close(db);
}

/* ---- the public views ---- */

/* The view's first columns are exactly `columns` (comma-separated, in order), with comments. */
static void expect_view(PGconn *c, const char *view, const char *columns)
{
    const char *p[2] = {view, columns};
    q_expect(c, columns,
             "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
             "information_schema.columns WHERE table_schema = 'egressscan' AND table_name = $1 "
             "AND ordinal_position <= array_length(string_to_array($2, ','), 1)",
             2, p);
    q_expect(c, "v",
             "SELECT relkind::text FROM pg_class WHERE oid = ('egressscan.' || $1)::regclass", 1,
             p);
    q_expect(c, "t",
             "SELECT obj_description(('egressscan.' || $1)::regclass, 'pg_class') IS NOT NULL", 1,
             p);
    q_expect(c, "0",
             "SELECT count(*) FROM pg_attribute WHERE attrelid = ('egressscan.' || $1)::regclass "
             "AND attnum > 0 AND NOT attisdropped AND col_description(attrelid, attnum) IS NULL",
             1, p);
}

static void test_views_have_the_spec_columns(void **state)
{
    struct fixture *fx = *state;
    expect_view(fx->check, "current_drift",
                "finding_id,scan_id,kind,severity,account_id,region,cluster_arn,observed_mode,"
                "allowed_modes,source,first_seen,details");
    expect_view(fx->check, "daily_compliance",
                "day,clusters,compliant,noncompliant,exempt,targets_total,targets_ok");
    q_expect(fx->check, "ARRAY/_text|jsonb/jsonb|timestamp with time zone/timestamptz",
             "SELECT string_agg(data_type || '/' || udt_name, '|' ORDER BY column_name) FROM "
             "information_schema.columns "
             "WHERE table_schema = 'egressscan' AND table_name = 'current_drift' "
             "AND column_name IN ('allowed_modes', 'details', 'first_seen')",
             0, NULL);
    q_expect(fx->check, "integer|date|integer",
             "SELECT string_agg(data_type, '|' ORDER BY column_name) FROM "
             "information_schema.columns WHERE table_schema = 'egressscan' AND table_name = "
             "'daily_compliance' AND column_name IN ('day', 'clusters', 'targets_ok')",
             0, NULL);
    /* the scans view gained scps_known and kept its comments */
    q_expect(fx->check, "t",
             "SELECT col_description('egressscan.scans'::regclass, 1) IS NOT NULL AND "
             "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'egressscan' "
             "AND table_name = 'scans' AND column_name = 'scps_known')",
             0, NULL);
}

/* ---- identity across scans ---- */

static void test_persisting_finding_keeps_first_seen_and_unraised_is_resolved(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding f[2] = {fnd("noncompliant_cluster", ACC, "eu-west-1",
                               "arn:aws:eks:eu-west-1:" ACC ":cluster/x", "scp:p-1"),
                           fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage")};
    f[0].observed_mode = "AWS_MANAGED";
    f[0].allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED);
    f[0].details_json = "{\"reason\": \"predates_scp\"}";
    f[1].severity = "medium";
    long long s1 = scan_with(fx->db, T0, acc, 1, f, 2, "succeeded");
    long long nc = open_id(fx->check, &f[0]), ut = open_id(fx->check, &f[1]);
    assert_true(nc > 0 && ut > 0 && nc != ut);

    /* the next day: the cluster finding again (worse), the coverage one not */
    f[0].severity = "critical";
    f[0].details_json = "{\"reason\": \"scp_gap\"}";
    f[0].allowed_modes |= EGRESS_BIT(EGRESS_CUSTOMER_ISOLATED);
    long long s2 = scan_with(fx->db, T0 + DAY, acc, 1, f, 1, "succeeded");

    char e1[160], t1[32], t2[32];
    assert_int_equal(open_id(fx->check, &f[0]), nc);
    snprintf(e1, sizeof e1, "%s|%lld|%s|%lld|-|-", epoch_of(t1, T0), s1, epoch_of(t2, T0 + DAY),
             s2);
    expect_lifetime(fx->check, nc, e1);
    char id[32];
    const char *pn[1] = {ll(id, nc)};
    q_expect(fx->check, "critical|scp_gap|{CUSTOMER_ROUTED,CUSTOMER_ISOLATED}|AWS_MANAGED",
             "SELECT concat_ws('|', severity, details->>'reason', allowed_modes, observed_mode) "
             "FROM egressscan.finding WHERE finding_id = $1::bigint",
             1, pn);
    snprintf(e1, sizeof e1, "%s|%lld|%s|%lld|%s|%lld", t1, s1, t1, s1, t2, s2);
    expect_lifetime(fx->check, ut, e1);
    assert_int_equal(open_id(fx->check, &f[1]), 0);

    /* history: what each scan raised */
    char a[32], b[32];
    const char *ps[2] = {ll(a, s1), ll(b, s2)};
    q_expect(fx->check, "2|1",
             "SELECT concat_ws('|', (SELECT count(*) FROM egressscan.scan_finding WHERE scan_id = "
             "$1::bigint), (SELECT count(*) FROM egressscan.scan_finding WHERE scan_id = "
             "$2::bigint))",
             2, ps);
    /* the view: the latest scan's finding, first seen on the first day */
    snprintf(e1, sizeof e1, "%lld|%lld|critical|2026-01-01 00:00:00+00", nc, s2);
    PQclear(q(fx->check, "SET TimeZone = 'UTC'", 0, NULL));
    q_expect(fx->check, e1,
             "SELECT concat_ws('|', finding_id, scan_id, severity, first_seen) FROM "
             "egressscan.current_drift",
             0, NULL);
}

static void test_finding_raised_again_after_resolution_is_new(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding ut = fnd("unscanned_target", ACC, "*", NULL, "coverage");
    long long s1 = scan_with(fx->db, T0, acc, 1, &ut, 1, "partial");
    long long first = open_id(fx->check, &ut);
    long long s2 = scan_with(fx->db, T0 + DAY, acc, 1, NULL, 0, "succeeded");
    assert_int_equal(open_id(fx->check, &ut), 0);
    long long s3 = scan_with(fx->db, T0 + 2 * DAY, acc, 1, &ut, 1, "partial");
    long long second = open_id(fx->check, &ut);
    assert_true(second > 0);
    assert_true(second != first);

    char e[160], t1[32], t2[32], t3[32];
    snprintf(e, sizeof e, "%s|%lld|%s|%lld|%s|%lld", epoch_of(t1, T0), s1, t1, s1,
             epoch_of(t2, T0 + DAY), s2);
    expect_lifetime(fx->check, first, e);
    snprintf(e, sizeof e, "%s|%lld|%s|%lld|-|-", epoch_of(t3, T0 + 2 * DAY), s3, t3, s3);
    expect_lifetime(fx->check, second, e);
    char id[32];
    const char *p[1] = {ll(id, second)};
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.current_drift WHERE finding_id = $1::bigint", 1, p);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_drift"), 1);
}

static void test_current_drift_is_the_open_findings_of_the_fleet(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding a = fnd("noncompliant_cluster", ACC, "eu-west-1",
                           "arn:aws:eks:eu-west-1:" ACC ":cluster/a", "scp:p-1");
    struct finding b = fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage");
    struct finding c =
        fnd("mode_changed", ACC, "eu-west-1", "arn:aws:eks:eu-west-1:" ACC ":cluster/c", "history");
    struct finding ab[2] = {a, b};
    long long s1 = scan_with(fx->db, T0, acc, 1, ab, 2, "succeeded");
    char id[32], expect[64];
    snprintf(expect, sizeof expect, "%lld|%lld|2", s1, s1);
    const char *view_sql = "SELECT concat_ws('|', min(scan_id), max(scan_id), count(*)) FROM "
                           "egressscan.current_drift";
    q_expect(fx->check, expect, view_sql, 0, NULL);

    /* a later scan writes its findings (resolving a and b: it judged both again) */
    long long s2 = scan_with(fx->db, T0 + DAY, acc, 1, &c, 1, NULL);
    char s2_only[64];
    snprintf(s2_only, sizeof s2_only, "%lld|%lld|1", s2, s2);
    q_expect(fx->check, s2_only, view_sql, 0, NULL);
    assert_int_equal(open_id(fx->check, &a), 0);
    long long found = 0;
    struct err e;
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, 0, &found, NULL, NULL, &e), 0);
    assert_int_equal(found, s1);
    /* ... then fails: its resolutions do not count, what it alone raised is no fact */
    finish_scan(fx->db, s2, T0 + DAY + 60, "failed");
    q_expect(fx->check, expect, view_sql, 0, NULL);

    /* another one is aborted (its process ended) after confirming a */
    struct db *other = connect_ok(fx);
    long long s3 = scan_with(other, T0 + 2 * DAY, acc, 1, &a, 1, NULL);
    int backend = PQbackendPID(db_pgconn(other));
    db_close(other);
    const char *pb[1] = {ll(id, backend)};
    for (int i = 0;
         i < 400 &&
         q_int(fx->check, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, pb) > 0;
         i++) {
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int aborted = 0;
    long long s4 = 0;
    err_clear(&e);
    assert_int_equal(db_scan_begin(fx->db, T0 + 3 * DAY, NULL, &s4, &aborted, &e), 0);
    assert_int_equal(aborted, 1);
    const char *p3[1] = {ll(id, s3)};
    q_expect(fx->check, "aborted", "SELECT status FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, p3);
    /* a is still open, last confirmed by s3; b by s1 */
    snprintf(expect, sizeof expect, "%lld|%lld|2", s1, s3);
    q_expect(fx->check, expect, view_sql, 0, NULL);

    /* the next finalized scan raises b alone: a is resolved, b confirmed; coverage agrees */
    cover(fx->db, s4, T0 + 3 * DAY, acc, 1);
    write_findings_ok(fx->db, s4, &b, 1, &no_counts);
    finish_scan(fx->db, s4, T0 + 3 * DAY + 60, "partial");
    snprintf(expect, sizeof expect, "%lld|%lld|1", s4, s4);
    q_expect(fx->check, expect, view_sql, 0, NULL);
    q_expect(fx->check, "unscanned_target", "SELECT kind FROM egressscan.current_drift", 0, NULL);
    q_expect(fx->check, "t",
             "SELECT (SELECT DISTINCT scan_id FROM egressscan.current_drift) = "
             "(SELECT DISTINCT scan_id FROM egressscan.coverage)",
             0, NULL);
}

static void test_scan_that_failed_after_writing_findings_leaves_history_intact(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding a = fnd("noncompliant_cluster", ACC, "eu-west-1",
                           "arn:aws:eks:eu-west-1:" ACC ":cluster/a", "scp:p-1");
    struct finding d = fnd("scp_conflict", ACC, "*", NULL, "policy:pci");
    struct finding phantom =
        fnd("unknown_mode", ACC, "eu-west-1", "arn:aws:eks:eu-west-1:" ACC ":cluster/p", "history");
    struct finding ad[2] = {a, d};
    long long s1 = scan_with(fx->db, T0, acc, 1, ad, 2, "succeeded");
    long long id_a = open_id(fx->check, &a), id_d = open_id(fx->check, &d);

    /* raises only the phantom, resolving a and d, then fails */
    scan_with(fx->db, T0 + DAY, acc, 1, &phantom, 1, "failed");
    long long id_p = open_id(fx->check, &phantom);
    assert_int_equal(open_id(fx->check, &a), 0);

    /* the next finalized scan raises a: the same finding, open since the first day; d's void
     * resolution is redone by this scan; the phantom is resolved */
    long long s3 = scan_with(fx->db, T0 + 2 * DAY, acc, 1, &a, 1, "succeeded");
    assert_int_equal(open_id(fx->check, &a), id_a);
    char e[160], t1[32], t3[32];
    snprintf(e, sizeof e, "%s|%lld|%s|%lld|-|-", epoch_of(t1, T0), s1, epoch_of(t3, T0 + 2 * DAY),
             s3);
    expect_lifetime(fx->check, id_a, e);
    snprintf(e, sizeof e, "%s|%lld|%s|%lld|%s|%lld", t1, s1, t1, s1, t3, s3);
    expect_lifetime(fx->check, id_d, e);
    char id[32];
    const char *pp[1] = {ll(id, id_p)};
    snprintf(e, sizeof e, "%s|%lld", t3, s3);
    q_expect(fx->check, e,
             "SELECT concat_ws('|', extract(epoch FROM resolved_at)::bigint, resolved_scan_id) "
             "FROM egressscan.finding WHERE finding_id = $1::bigint",
             1, pp);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.finding"), 3);
    char one[64];
    snprintf(one, sizeof one, "%lld|1", id_a);
    q_expect(fx->check, one,
             "SELECT concat_ws('|', min(finding_id), count(*)) FROM egressscan.current_drift", 0,
             NULL);
}

static void test_late_older_scan_resolves_nothing_newer(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding a = fnd("noncompliant_cluster", ACC, "eu-west-1",
                           "arn:aws:eks:eu-west-1:" ACC ":cluster/a", "scp:p-1");
    struct finding b = fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage");
    struct finding e_ = fnd("exception_expired", ACC, "eu-west-1",
                            "arn:aws:eks:eu-west-1:" ACC ":cluster/e", "policy:exceptions");
    long long s1 = scan_with(fx->db, T0, acc, 1, &a, 1, "succeeded");
    long long id_a = open_id(fx->check, &a);

    /* s2 starts on the second day, s3 on the third; s3 finishes first */
    struct db *slow = connect_ok(fx);
    long long s2 = begin_scan(slow, T0 + DAY);
    struct finding ae[2] = {a, e_};
    ae[0].severity = "critical";
    long long s3 = scan_with(fx->db, T0 + 2 * DAY, acc, 1, ae, 2, "succeeded");
    long long id_e = open_id(fx->check, &e_);

    /* s2 raises e and b but not a */
    cover(slow, s2, T0 + DAY, acc, 1);
    struct finding eb[2] = {e_, b};
    eb[0].severity = "low";
    write_findings_ok(slow, s2, eb, 2, &no_counts);
    finish_scan(slow, s2, T0 + DAY + 60, "succeeded");
    db_close(slow);

    char x[160], t1[32], t2[32], t3[32];
    epoch_of(t1, T0);
    epoch_of(t2, T0 + DAY);
    epoch_of(t3, T0 + 2 * DAY);
    /* a: seen by s1 and s3, not resolved by the older s2 */
    assert_int_equal(open_id(fx->check, &a), id_a);
    snprintf(x, sizeof x, "%s|%lld|%s|%lld|-|-", t1, s1, t3, s3);
    expect_lifetime(fx->check, id_a, x);
    /* e: first seen by s2 now; s3 (newer) keeps its say on severity */
    snprintf(x, sizeof x, "%s|%lld|%s|%lld|-|-", t2, s2, t3, s3);
    expect_lifetime(fx->check, id_e, x);
    char id[32];
    const char *pe[1] = {ll(id, id_e)};
    q_expect(fx->check, "high", "SELECT severity FROM egressscan.finding WHERE finding_id = $1", 1,
             pe);
    /* b: raised by s2 only, and s3 (newer, written already) did not raise it */
    assert_int_equal(open_id(fx->check, &b), 0);
    const char *pb[1] = {"us-east-1"};
    snprintf(x, sizeof x, "%s|%lld|%s|%lld", t2, s2, t3, s3);
    q_expect(fx->check, x,
             "SELECT concat_ws('|', extract(epoch FROM first_seen)::bigint, first_scan_id, "
             "extract(epoch FROM resolved_at)::bigint, resolved_scan_id) FROM egressscan.finding "
             "WHERE region = $1",
             1, pb);
    /* the latest finalized scan by start time is s3 */
    snprintf(x, sizeof x, "%lld|2", s3);
    q_expect(fx->check, x,
             "SELECT concat_ws('|', min(scan_id), count(*)) FROM egressscan.current_drift", 0,
             NULL);
}

static void test_late_scan_joins_the_lifetime_it_falls_in(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding a = fnd("noncompliant_cluster", ACC, "eu-west-1",
                           "arn:aws:eks:eu-west-1:" ACC ":cluster/a", "scp:p-1");
    long long s1 = scan_with(fx->db, T0, acc, 1, &a, 1, "succeeded");
    long long first = open_id(fx->check, &a);
    struct db *slow = connect_ok(fx);
    long long s2 = begin_scan(slow, T0 + DAY);
    long long s3 = scan_with(fx->db, T0 + 2 * DAY, acc, 1, NULL, 0, "succeeded"); /* resolves */
    long long s4 = scan_with(fx->db, T0 + 3 * DAY, acc, 1, &a, 1, "succeeded");   /* new lifetime */
    long long second = open_id(fx->check, &a);
    assert_true(second != first);

    /* s2, between s1 and s3, raises a: it belongs to the first lifetime, not the open one */
    cover(slow, s2, T0 + DAY, acc, 1);
    write_findings_ok(slow, s2, &a, 1, &no_counts);
    finish_scan(slow, s2, T0 + DAY + 60, "succeeded");
    db_close(slow);

    char x[160], t1[32], t2[32], t3[32], t4[32];
    epoch_of(t1, T0);
    epoch_of(t2, T0 + DAY);
    epoch_of(t3, T0 + 2 * DAY);
    epoch_of(t4, T0 + 3 * DAY);
    snprintf(x, sizeof x, "%s|%lld|%s|%lld|%s|%lld", t1, s1, t2, s2, t3, s3);
    expect_lifetime(fx->check, first, x);
    snprintf(x, sizeof x, "%s|%lld|%s|%lld|-|-", t4, s4, t4, s4);
    expect_lifetime(fx->check, second, x);
    assert_int_equal(open_id(fx->check, &a), second);
}

/* Scans backfilled with --as-of: "latest" is the latest start, not the highest id. */
static void test_latest_finalized_scan_is_the_latest_started(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding a = fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage");
    struct finding b = fnd("unscanned_target", ACC, "eu-north-1", NULL, "coverage");
    long long later = scan_with(fx->db, T0 + DAY, acc, 1, &a, 1, "partial");
    long long earlier = scan_with(fx->db, T0, acc, 1, &b, 1, "partial");
    assert_true(earlier > later);

    char x[64];
    snprintf(x, sizeof x, "%lld|us-east-1", later);
    q_expect(fx->check, x, "SELECT concat_ws('|', scan_id, region) FROM egressscan.current_drift",
             0, NULL);
    long long used = 0;
    struct err e;
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, 0, &used, NULL, NULL, &e), 0);
    assert_int_equal(used, later);
    /* the backfilled scan neither resolved the later finding nor left its own one open */
    assert_true(open_id(fx->check, &a) > 0);
    assert_int_equal(open_id(fx->check, &b), 0);
}

static void test_resolution_is_limited_to_the_accounts_covered(void **state)
{
    struct fixture *fx = *state;
    const char *both[2] = {ACC, ACC2}, *one[1] = {ACC};
    struct finding f[2] = {fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage"),
                           fnd("unscanned_target", ACC2, "us-east-1", NULL, "coverage")};
    scan_with(fx->db, T0, both, 2, f, 2, "succeeded");
    long long other = open_id(fx->check, &f[1]);
    /* --accounts ACC: a targeted scan changes nothing of the accounts it did not cover */
    long long s2 = begin_scan(fx->db, T0 + DAY);
    set_scope(fx->db, s2, 1);
    cover(fx->db, s2, T0 + DAY, one, 1);
    write_findings_ok(fx->db, s2, NULL, 0, NULL);
    finish_scan(fx->db, s2, T0 + DAY + 60, "succeeded");
    assert_int_equal(open_id(fx->check, &f[0]), 0);
    assert_int_equal(open_id(fx->check, &f[1]), other);
    q_expect(fx->check, "4", "SELECT count(*) FROM egressscan.coverage", 0, NULL);
    char id[32];
    const char *p[1] = {ll(id, other)};
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.current_drift WHERE finding_id = $1::bigint", 1, p);

    /* a fleet scan of ACC alone: ACC2 is no longer listed, so it left the fleet */
    scan_with(fx->db, T0 + 2 * DAY, one, 1, NULL, 0, "succeeded");
    assert_int_equal(open_id(fx->check, &f[1]), 0);
    q_expect(fx->check, "left_organization",
             "SELECT resolved_reason FROM egressscan.finding WHERE finding_id = $1::bigint", 1, p);
    q_expect(fx->check, "2|" ACC,
             "SELECT concat_ws('|', count(*), min(account_id)) FROM "
             "egressscan.coverage",
             0, NULL);
    q_expect(fx->check, "2|left_organization",
             "SELECT concat_ws('|', count(*), min(left_reason)) FROM egressscan.fleet_target "
             "WHERE account_id = '" ACC2 "' AND left_at IS NOT NULL",
             0, NULL);
}

/* ---- daily compliance ---- */

/* A scan of ACC at `at`: eu-west-1 with one cluster per judgement (c0, c1, ...) when west_ok
 * (else throttled), us-east-1 ok or throttled; with write_drift, its (empty) findings and the
 * judgements, as the drift stage writes them (without, the drift stage never ran). */
static long long compliance_scan(struct db *db, double at, const enum cluster_judgement *judged,
                                 size_t n, int west_ok, int east_ok, int write_drift,
                                 const char *status)
{
    long long id = begin_scan(db, at);
    struct tcluster tc[8];
    struct cluster cl[8];
    struct cluster_judged j[8];
    char names[8][8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i);
        tcluster_init(&tc[i], ACC, "eu-west-1", names[i], "CUSTOMER_ROUTED");
        cl[i] = tc[i].c;
        j[i] = (struct cluster_judged){tc[i].c.arn, judged[i]};
    }
    struct target_result t[2] = {
        target(ACC, "eu-west-1", west_ok ? TARGET_OK : TARGET_THROTTLED, cl, west_ok ? n : 0,
               at + 10),
        target(ACC, "us-east-1", east_ok ? TARGET_OK : TARGET_THROTTLED, NULL, 0, at + 10)};
    const struct target_result *p[2] = {&t[0], &t[1]};
    write_targets_ok(db, id, p, 2);
    if (write_drift) {
        struct findings_context ctx = {.scps_read = 1,
                                       .have_policy = 0,
                                       .judgements = west_ok ? j : NULL,
                                       .n_judgements = west_ok ? n : 0};
        struct err e;
        err_clear(&e);
        if (db_write_findings_ctx(db, id, NULL, 0, &ctx, NULL, &e) < 0)
            fail_msg("db_write_findings_ctx: %s (%s)", e.message, e.code);
    }
    if (status)
        finish_scan(db, id, at + 60, status);
    return id;
}

static void test_daily_compliance_is_the_fleet_after_the_last_scan_of_each_day(void **state)
{
    struct fixture *fx = *state;
    const enum cluster_judgement early[3] = {JUDGED_COMPLIANT, JUDGED_COMPLIANT,
                                             JUDGED_NONCOMPLIANT},
                                 late[4] = {JUDGED_COMPLIANT, JUDGED_NONCOMPLIANT, JUDGED_EXEMPT,
                                            JUDGED_UNKNOWN};
    /* day 1: two finalized scans, the later at 23:58 UTC (us-east-1 throttled); a failed one
     * after them */
    long long first = compliance_scan(fx->db, T0 + HOUR, early, 3, 1, 1, 1, "succeeded");
    long long last = compliance_scan(fx->db, T0 + DAY - 120, late, 4, 1, 0, 1, "partial");
    long long bad = begin_scan(fx->db, T0 + DAY - 50);
    finish_scan(fx->db, bad, T0 + DAY - 40, "failed");
    /* day 2: nothing finalized (a scan still running) */
    struct db *running = connect_ok(fx);
    compliance_scan(running, T0 + DAY + HOUR, NULL, 0, 0, 1, 0, NULL);
    /* day 3: eu-west-1 throttled: its four clusters keep their last known state, unverified;
     * day 4: a finalized scan whose drift was not evaluated */
    long long d3 = compliance_scan(fx->db, T0 + 2 * DAY + HOUR, NULL, 0, 0, 1, 1, "partial");
    compliance_scan(fx->db, T0 + 3 * DAY + HOUR, NULL, 0, 0, 1, 0, "partial");

    /* the session time zone does not move the days */
    PQclear(q(fx->check, "SET TimeZone = 'Pacific/Kiritimati'", 0, NULL));
    q_expect(fx->check, "2026-01-01,2026-01-03,2026-01-04",
             "SELECT string_agg(day::text, ',' ORDER BY day) FROM egressscan.daily_compliance", 0,
             NULL);
    const char *cols = "SELECT concat_ws('|', clusters, compliant, noncompliant, exempt, unknown, "
                       "unverified, targets_total, targets_ok, targets_failed, scan_id) FROM "
                       "egressscan.daily_compliance WHERE day = $1::date";
    char expect[128];
    const char *day1[1] = {"2026-01-01"}, *day3[1] = {"2026-01-03"};
    snprintf(expect, sizeof expect, "4|1|1|1|1|0|2|1|1|%lld", last);
    q_expect(fx->check, expect, cols, 1, day1);
    snprintf(expect, sizeof expect, "0|0|0|0|0|4|2|1|1|%lld", d3);
    q_expect(fx->check, expect, cols, 1, day3);
    q_expect(fx->check, "t|2",
             "SELECT concat_ws('|', clusters IS NULL AND compliant IS NULL, targets_total) FROM "
             "egressscan.daily_compliance WHERE day = '2026-01-04'",
             0, NULL);
    /* the first scan's row: the fleet as it judged it */
    char id[32];
    const char *p[1] = {ll(id, first)};
    q_expect(fx->check, "2026-01-01|3|2|1|0|0|0",
             "SELECT concat_ws('|', day, clusters, compliant, noncompliant, exempt, unknown, "
             "unverified) FROM egressscan.scan_compliance WHERE scan_id = $1::bigint",
             1, p);
    /* the judgement is on the cluster; an unverified cluster keeps its last one */
    q_expect(fx->check, "c0 compliant f,c1 noncompliant f,c2 exempt f,c3 unknown f",
             "SELECT string_agg(concat_ws(' ', cluster_name, compliance, verified), ',' ORDER BY "
             "cluster_name) FROM egressscan.current_clusters",
             0, NULL);
    db_close(running);
}

/* ---- the drift snapshot ---- */

static void test_snapshot_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    err_clear(&e);
    static const char deny_doc[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"
        "{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"}}}]}\n";

    /* scan 1 */
    long long s1 = begin_scan(fx->db, T0);
    struct account acc1[2] = {
        {.id = ACC, .name = "Prod", .ou_id_path = "r-ab12/ou-ab12-11111111"},
        {.id = MGMT, .name = "Management", .ou_id_path = "r-ab12", .is_management = 1}};
    assert_int_equal(db_write_accounts(fx->db, s1, acc1, 2, &e), 0);
    const char *full_t[1] = {"r-ab12"}, *deny_t[2] = {"ou-ab12-11111111", ACC};
    struct scp_policy scps1[3] = {{.id = "p-full",
                                   .name = "FullAWSAccess",
                                   .content = "{}",
                                   .targets = full_t,
                                   .n_targets = 1,
                                   .aws_managed = 1},
                                  {.id = "p-deny",
                                   .name = "DenyEgress",
                                   .content = deny_doc,
                                   .targets = deny_t,
                                   .n_targets = 2},
                                  {.id = "p-unread", .name = NULL, .content = NULL}};
    assert_int_equal(db_write_scps(fx->db, s1, scps1, 3, &e), 0);
    struct tcluster x, y, z, u;
    tcluster_init(&x, ACC, "eu-west-1", "x", "AWS_MANAGED");
    x.c.tags_json = "{\"env\":\"prod\"}";
    tcluster_init(&y, ACC, "eu-west-1", "y", NULL);
    tcluster_init(&z, ACC, "eu-west-1", "z", "CUSTOMER_ROUTED");
    tcluster_init(&u, "777788889999", "eu-west-1", "u", "AWS_MANAGED");
    struct cluster xyz[3] = {x.c, y.c, z.c};
    struct target_result t1[4] = {target(ACC, "eu-west-1", TARGET_OK, xyz, 3, T0 + 10),
                                  target(ACC, "us-east-1", TARGET_THROTTLED, NULL, 0, T0 + 11),
                                  target(MGMT, "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, T0 + 12),
                                  target("777788889999", "eu-west-1", TARGET_OK, &u.c, 1, T0 + 13)};
    t1[2].error_code = "AccessDenied";
    t1[2].error_message = "not authorized to perform sts:AssumeRole";
    const struct target_result *p1[4] = {&t1[0], &t1[1], &t1[2], &t1[3]};
    write_targets_ok(fx->db, s1, p1, 4);
    assert_int_equal(db_set_scps_known(fx->db, s1, 1, &e), 0);
    finish_scan(fx->db, s1, T0 + 60, "partial");

    /* scan 2: x and y change mode, z is gone, w is new; an account only its coverage names */
    long long s2 = begin_scan(fx->db, T0 + DAY);
    struct account acc2[2] = {
        {.id = ACC, .name = "Prod2", .ou_id_path = "r-ab12/ou-ab12-22222222"},
        {.id = MGMT, .name = "Management", .ou_id_path = "r-ab12", .is_management = 1}};
    assert_int_equal(db_write_accounts(fx->db, s2, acc2, 2, &e), 0);
    const char *deny2_t[1] = {ACC};
    struct scp_policy scps2[1] = {{.id = "p-deny",
                                   .name = "DenyEgress",
                                   .content = deny_doc,
                                   .targets = deny2_t,
                                   .n_targets = 1}};
    assert_int_equal(db_write_scps(fx->db, s2, scps2, 1, &e), 0);
    struct tcluster w, v;
    tcluster_init(&w, ACC, "eu-west-1", "w", "CUSTOMER_ISOLATED");
    tcluster_init(&v, "555566667777", "eu-west-1", "v", NULL);
    x.c.egress_mode = "CUSTOMER_ROUTED";
    y.c.egress_mode = "AWS_MANAGED";
    struct cluster wxy[3] = {w.c, x.c, y.c};
    struct target_result t2[2] = {
        target(ACC, "eu-west-1", TARGET_OK, wxy, 3, T0 + DAY + 10),
        target("555566667777", "eu-west-1", TARGET_OK, &v.c, 1, T0 + DAY + 11)};
    const struct target_result *p2[2] = {&t2[0], &t2[1]};
    write_targets_ok(fx->db, s2, p2, 2);
    finish_scan(fx->db, s2, T0 + DAY + 60, "succeeded");

    struct drift_snapshot s;
    err_clear(&e);
    if (db_load_drift_snapshot(fx->db, s2, &s, &e) < 0)
        fail_msg("db_load_drift_snapshot: %s (%s)", e.message, e.code);
    assert_non_null(s.mem);
    assert_int_equal(s.scps_known, 1); /* not recorded; the scan stored SCPs */
    assert_int_equal(s.scps_read, 1);
    assert_int_equal(s.intent_scan_id, s2);
    assert_int_equal(s.fleet_scope, 1);

    assert_int_equal(s.n_accounts, 3);
    assert_string_equal(s.accounts[0].id, ACC);
    assert_string_equal(s.accounts[0].name, "Prod2");
    assert_string_equal(s.accounts[0].ou_id_path, "r-ab12/ou-ab12-22222222");
    assert_int_equal(s.accounts[0].is_management, 0);
    assert_string_equal(s.accounts[1].id, "555566667777"); /* named by its coverage only */
    assert_null(s.accounts[1].name);
    assert_null(s.accounts[1].ou_id_path);
    assert_string_equal(s.accounts[2].id, MGMT);
    assert_int_equal(s.accounts[2].is_management, 1);

    assert_int_equal(s.n_scps, 1);
    assert_string_equal(s.scps[0].id, "p-deny");
    assert_string_equal(s.scps[0].content, deny_doc);
    assert_int_equal(s.scps[0].n_targets, 1);
    assert_string_equal(s.scps[0].targets[0], ACC);
    assert_int_equal(s.scps[0].aws_managed, 0);

    /* current clusters of the accounts s2 covered: not z (gone), not u (account not covered) */
    assert_int_equal(s.n_clusters, 4);
    const char *names[4] = {"w", "x", "y", "v"};
    const char *modes[4] = {"CUSTOMER_ISOLATED", "CUSTOMER_ROUTED", "AWS_MANAGED", NULL};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(s.clusters[i].name, names[i]);
        if (modes[i])
            assert_string_equal(s.clusters[i].egress_mode, modes[i]);
        else
            assert_null(s.clusters[i].egress_mode);
        assert_string_equal(s.clusters[i].region, "eu-west-1");
    }
    assert_string_equal(s.clusters[1].arn, x.arn);
    assert_string_equal(s.clusters[1].account_id, ACC);
    assert_string_equal(s.clusters[1].tags_json, "{\"env\": \"prod\"}");
    assert_null(s.clusters[0].tags_json);
    assert_string_equal(s.clusters[3].account_id, "555566667777");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(s.clusters[i].unverified, 0); /* their targets were scanned ok */

    assert_int_equal(s.n_targets, 2);
    assert_string_equal(s.targets[0].account_id, ACC);
    assert_int_equal(s.targets[0].status, TARGET_OK);
    assert_null(s.targets[0].error_code);

    /* x and y changed; w is new and z gone: neither is a change */
    assert_int_equal(s.n_changes, 2);
    assert_string_equal(s.changes[0].arn, x.arn);
    assert_string_equal(s.changes[0].from_mode, "AWS_MANAGED");
    assert_string_equal(s.changes[0].to_mode, "CUSTOMER_ROUTED");
    assert_string_equal(s.changes[1].arn, y.arn);
    assert_null(s.changes[1].from_mode);
    assert_string_equal(s.changes[1].to_mode, "AWS_MANAGED");
    assert_string_equal(s.changes[1].account_id, ACC);
    assert_string_equal(s.changes[1].region, "eu-west-1");
    db_drift_snapshot_free(&s);
    assert_null(s.mem);
    db_drift_snapshot_free(&s); /* twice is harmless */
    db_drift_snapshot_free(NULL);

    /* scan 1: its own organization snapshot and coverage */
    err_clear(&e);
    assert_int_equal(db_load_drift_snapshot(fx->db, s1, &s, &e), 0);
    assert_int_equal(s.scps_known, 1);
    assert_int_equal(s.n_accounts, 3);
    assert_string_equal(s.accounts[0].name, "Prod");
    assert_string_equal(s.accounts[1].id, "777788889999"); /* named by its coverage only */
    assert_string_equal(s.accounts[2].id, MGMT);
    assert_int_equal(s.n_scps, 3);
    assert_string_equal(s.scps[0].id, "p-deny");
    assert_int_equal(s.scps[0].n_targets, 2);
    assert_string_equal(s.scps[0].targets[0], ACC);
    assert_string_equal(s.scps[0].targets[1], "ou-ab12-11111111");
    assert_string_equal(s.scps[1].id, "p-full");
    assert_int_equal(s.scps[1].aws_managed, 1);
    assert_string_equal(s.scps[1].targets[0], "r-ab12");
    assert_string_equal(s.scps[2].id, "p-unread");
    assert_null(s.scps[2].content);
    assert_null(s.scps[2].name);
    assert_int_equal(s.scps[2].n_targets, 0);
    assert_int_equal(s.n_targets, 4);
    const char *regions[4] = {"eu-west-1", "us-east-1", "eu-west-1", "*"};
    const enum target_status statuses[4] = {TARGET_OK, TARGET_THROTTLED, TARGET_OK,
                                            TARGET_ASSUME_ROLE_DENIED};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(s.targets[i].region, regions[i]);
        assert_int_equal(s.targets[i].status, statuses[i]);
    }
    assert_string_equal(s.targets[1].error_code, "ThrottlingException");
    assert_string_equal(s.targets[3].error_message, "not authorized to perform sts:AssumeRole");
    assert_int_equal(s.n_changes, 0);
    assert_int_equal(s.n_clusters, 4);    /* today's current clusters of its accounts: w x y u */
    assert_int_equal(s.n_ok_accounts, 0); /* the full snapshot: every row a row */
    char ok_ids[2][16];
    snprintf(ok_ids[0], sizeof ok_ids[0], "%s", s.targets[0].account_id);
    snprintf(ok_ids[1], sizeof ok_ids[1], "%s", s.targets[2].account_id);
    db_drift_snapshot_free(&s);

    /* the compact one (the drift stage's): the same, but the ok rows as a bitset per account */
    if (db_load_drift_snapshot_compact(fx->db, s1, &s, &e) < 0)
        fail_msg("compact snapshot: %s (%s)", e.message, e.code);
    assert_int_equal(s.scps_known, 1);
    assert_int_equal(s.n_accounts, 3);
    assert_int_equal(s.n_scps, 3);
    assert_int_equal(s.n_clusters, 4);
    assert_int_equal(s.n_targets, 2);
    assert_string_equal(s.targets[0].region, "us-east-1");
    assert_int_equal(s.targets[0].status, TARGET_THROTTLED);
    assert_string_equal(s.targets[0].error_code, "ThrottlingException");
    assert_string_equal(s.targets[1].region, "*");
    assert_int_equal(s.targets[1].status, TARGET_ASSUME_ROLE_DENIED);
    assert_int_equal(s.n_ok_regions, 1);
    assert_string_equal(s.ok_regions[0], "eu-west-1");
    assert_int_equal(s.n_ok_accounts, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct drift_ok_account *o = &s.ok_accounts[i];
        assert_true(strcmp(o->account_id, ok_ids[0]) == 0 || strcmp(o->account_id, ok_ids[1]) == 0);
        assert_non_null(o->regions);
        assert_int_equal(o->regions[0], 1);
    }
    assert_string_not_equal(s.ok_accounts[0].account_id, s.ok_accounts[1].account_id);
    db_drift_snapshot_free(&s);
    assert_null(s.ok_accounts);
    assert_null(s.ok_bits);
    err_clear(&e);
    assert_int_equal(db_load_drift_snapshot_compact(fx->db, 424242, &s, &e), -1);
    assert_string_equal(e.code, "UnknownScan");
    assert_null(s.ok_accounts);

    /* an explicit "could not read" wins: the scan is judged with the SCPs of the latest
     * finalized scan that read them (s1), and says it did not read them itself */
    assert_int_equal(db_set_scps_known(fx->db, s2, 0, &e), 0);
    assert_int_equal(db_load_drift_snapshot(fx->db, s2, &s, &e), 0);
    assert_int_equal(s.scps_known, 1);
    assert_int_equal(s.scps_read, 0);
    assert_int_equal(s.intent_scan_id, s1);
    assert_int_equal(s.n_scps, 3);
    assert_string_equal(s.scps[0].id, "p-deny");
    assert_int_equal(s.scps[0].n_targets, 2);
    db_drift_snapshot_free(&s);
    /* and when no scan ever read them, the intent is unknown */
    assert_int_equal(db_set_scps_state(fx->db, s1, ORG_SCPS_FAILED, &e), 0);
    assert_int_equal(db_load_drift_snapshot(fx->db, s2, &s, &e), 0);
    assert_int_equal(s.scps_known, 0);
    assert_int_equal(s.intent_scan_id, 0);
    assert_int_equal(s.n_scps, 0);
    db_drift_snapshot_free(&s);

    /* unknown scans */
    err_clear(&e);
    assert_int_equal(db_load_drift_snapshot(fx->db, 424242, &s, &e), -1);
    assert_string_equal(e.code, "UnknownScan");
    assert_null(s.mem);
    assert_int_equal(s.n_accounts, 0);
    err_clear(&e);
    assert_int_equal(db_set_scps_known(fx->db, 424242, 1, &e), -1);
    assert_string_equal(e.code, "UnknownScan");
}

/* ---- reading findings ---- */

struct collected {
    int n;
    int stop_after; /* 0: never */
    long long ids[16];
    char line[16][512];
    unsigned modes[16];
};

static int collect(void *ud, const struct stored_finding *sf)
{
    struct collected *c = ud;
    assert_true(c->n < 16);
    c->ids[c->n] = sf->finding_id;
    c->modes[c->n] = sf->f.allowed_modes;
    snprintf(c->line[c->n], sizeof c->line[c->n], "%s %s %s %s %s %s %s %s %s", sf->f.severity,
             sf->f.kind, sf->f.account_id, sf->f.region,
             sf->f.cluster_arn ? sf->f.cluster_arn : "-",
             sf->f.observed_mode ? sf->f.observed_mode : "-",
             sf->allowed_modes_text ? sf->allowed_modes_text : "-", sf->f.source, sf->first_seen);
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? -1 : 0;
}

static void test_query_findings_order_modes_and_errors(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    struct collected got;
    long long used = -1;
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, 0, &used, collect, &got, &e), -1);
    assert_string_equal(e.code, "NoScan");

    const char *acc[2] = {ACC, ACC2};
    struct finding f[5] = {
        fnd("mode_changed", ACC, "eu-west-1", "arn:aws:eks:eu-west-1:" ACC ":cluster/x", "history"),
        fnd("noncompliant_cluster", ACC2, "eu-west-1", "arn:aws:eks:eu-west-1:" ACC2 ":cluster/y",
            "scp:p-1"),
        fnd("noncompliant_cluster", ACC, "eu-west-1", "arn:aws:eks:eu-west-1:" ACC ":cluster/z",
            "scp:p-1"),
        fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage"),
        fnd("scp_conflict", ACC, "*", NULL, "policy:pci")};
    f[0].severity = "info";
    f[1].severity = f[2].severity = f[4].severity = "critical";
    f[1].observed_mode = f[2].observed_mode = "AWS_MANAGED";
    f[1].allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED) | EGRESS_BIT(EGRESS_CUSTOMER_ISOLATED);
    f[2].allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED);
    f[4].allowed_modes = EGRESS_ALL_NAMED | EGRESS_BIT(EGRESS_OMITTED);
    long long s1 = scan_with(fx->db, T0, acc, 2, f, 5, "succeeded");

    memset(&got, 0, sizeof got);
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, 0, &used, collect, &got, &e), 0);
    assert_int_equal(used, s1);
    assert_int_equal(got.n, 5);
    assert_string_equal(got.line[0],
                        "critical noncompliant_cluster " ACC " eu-west-1 arn:aws:eks:eu-west-1:" ACC
                        ":cluster/z AWS_MANAGED {CUSTOMER_ROUTED} scp:p-1 "
                        "2026-01-01T00:00:00Z");
    assert_string_equal(got.line[1], "critical noncompliant_cluster " ACC2
                                     " eu-west-1 arn:aws:eks:eu-west-1:" ACC2
                                     ":cluster/y AWS_MANAGED {CUSTOMER_ROUTED,CUSTOMER_ISOLATED} "
                                     "scp:p-1 2026-01-01T00:00:00Z");
    assert_string_equal(got.line[2], "critical scp_conflict " ACC " * - - "
                                     "{AWS_MANAGED,CUSTOMER_ROUTED,CUSTOMER_ISOLATED,omitted} "
                                     "policy:pci 2026-01-01T00:00:00Z");
    assert_string_equal(got.line[3], "high unscanned_target " ACC
                                     " us-east-1 - - - coverage 2026-01-01T00:00:00Z");
    assert_string_equal(got.line[4],
                        "info mode_changed " ACC " eu-west-1 arn:aws:eks:eu-west-1:" ACC
                        ":cluster/x - - history 2026-01-01T00:00:00Z");
    assert_int_equal(got.modes[0], f[2].allowed_modes);
    assert_int_equal(got.modes[1], f[1].allowed_modes);
    assert_int_equal(got.modes[2], f[4].allowed_modes);
    assert_int_equal(got.modes[3], 0);
    long long first_ids[5];
    memcpy(first_ids, got.ids, sizeof first_ids);

    /* a running scan is not the latest finalized one, and not readable by id; the open
     * findings are those it confirmed (it judged the others again and did not raise them) */
    long long s2 = scan_with(fx->db, T0 + DAY, acc, 2, f, 2, NULL);
    memset(&got, 0, sizeof got);
    assert_int_equal(db_query_findings(fx->db, 0, &used, collect, &got, &e), 0);
    assert_int_equal(used, s1);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], first_ids[1]);
    assert_int_equal(got.ids[1], first_ids[4]);
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, s2, &used, collect, &got, &e), -1);
    assert_string_equal(e.code, "ScanNotFinalized");
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, 424242, &used, collect, &got, &e), -1);
    assert_string_equal(e.code, "UnknownScan");

    finish_scan(fx->db, s2, T0 + DAY + 60, "succeeded");
    memset(&got, 0, sizeof got);
    assert_int_equal(db_query_findings(fx->db, 0, &used, collect, &got, &e), 0);
    assert_int_equal(used, s2);
    assert_int_equal(got.n, 2);
    /* the same findings (ids and first_seen), seen again */
    assert_int_equal(got.ids[0], first_ids[1]);
    assert_int_equal(got.ids[1], first_ids[4]);
    assert_non_null(strstr(got.line[0], "2026-01-01T00:00:00Z"));
    /* an older scan by id: its history */
    memset(&got, 0, sizeof got);
    assert_int_equal(db_query_findings(fx->db, s1, &used, collect, &got, &e), 0);
    assert_int_equal(used, s1);
    assert_int_equal(got.n, 5);

    /* the callback stops the query */
    memset(&got, 0, sizeof got);
    got.stop_after = 1;
    err_clear(&e);
    assert_int_equal(db_query_findings(fx->db, s1, &used, collect, &got, &e), -1);
    assert_int_equal(got.n, 1);
    assert_true(err_isset(&e));
}

/* ---- refusals ---- */

static void test_write_findings_is_whole_or_nothing_and_refuses_misuse(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct err e;
    long long s1 = begin_scan(fx->db, T0);
    cover(fx->db, s1, T0, acc, 1);
    struct finding good = fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage");
    struct finding bad[2] = {good, good};
    struct drift_counts counts = {3, 2, 1, 0, 0, 0};

    bad[1].kind = "bogus";
    bad[1].region = "eu-west-1";
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, "23514"); /* check_violation */
    bad[1] = good;
    bad[1].region = "eu-west-1";
    bad[1].details_json = "{not json";
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, "22P02"); /* invalid_text_representation */
    bad[1].details_json = "[1]";
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, "23514");
    bad[1].details_json = "{}";
    bad[1].source = NULL;
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    bad[1].source = "coverage";
    bad[1].allowed_modes = 1u << 7;
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    bad[1].allowed_modes = 0;
    bad[1].cluster_arn = "";
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, bad, 2, &counts, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.finding"), 0);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.scan_compliance"), 0);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.scan_finding"), 0);

    /* the same identity twice in one scan is one finding, the last one given */
    struct finding twice[2] = {good, good};
    twice[0].severity = "low";
    twice[1].severity = "critical";
    write_findings_ok(fx->db, s1, twice, 2, &counts);
    q_expect(fx->check, "1|critical",
             "SELECT concat_ws('|', count(*), min(severity)) FROM egressscan.finding", 0, NULL);
    /* the stored counts are the fleet's (no cluster here), not the ones the caller passed */
    q_expect(fx->check, "0|0|0|0|0|0|2|2|0",
             "SELECT concat_ws('|', clusters, compliant, noncompliant, exempt, unknown, unverified,"
             " targets_total, targets_ok, targets_failed) FROM egressscan.scan_compliance",
             0, NULL);

    /* once per scan */
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s1, &good, 1, &counts, &e), -1);
    assert_string_equal(e.code, "FindingsWritten");
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, 424242, &good, 1, &counts, &e), -1);
    assert_string_equal(e.code, "UnknownScan");
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, 0, &good, 1, &counts, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    finish_scan(fx->db, s1, T0 + 60, "succeeded");

    /* a failed scan's findings would mean nothing */
    long long s2 = begin_scan(fx->db, T0 + DAY);
    finish_scan(fx->db, s2, T0 + DAY + 60, "failed");
    err_clear(&e);
    assert_int_equal(db_write_findings(fx->db, s2, &good, 1, &counts, &e), -1);
    assert_string_equal(e.code, "ScanNotUsable");

    /* a finalized scan may still get its findings (written after db_scan_finish) */
    long long s3 = begin_scan(fx->db, T0 + 2 * DAY);
    cover(fx->db, s3, T0 + 2 * DAY, acc, 1);
    finish_scan(fx->db, s3, T0 + 2 * DAY + 60, "succeeded");
    write_findings_ok(fx->db, s3, NULL, 0, NULL);
    char id[32];
    const char *p[1] = {ll(id, s3)};
    q_expect(fx->check, "0|2",
             "SELECT concat_ws('|', clusters, targets_total) FROM egressscan.scan_compliance "
             "WHERE scan_id = $1::bigint",
             1, p);
    assert_int_equal(open_id(fx->check, &good), 0);
}

/* ---- the resolution rule, kind by kind (SPEC section 5) ---- */

enum scan_variant {
    V_TARGET_FAILED,  /* the finding's region throttled, the other one ok */
    V_ACCOUNT_FAILED, /* the account not reached (AssumeRole denied, region *) */
    V_NO_SCPS,        /* every target ok, the SCPs not read */
    V_NO_POLICY,      /* every target ok, no declared policy */
    V_JUDGED,         /* every target ok, SCPs read, policy given */
    V_VARIANTS
};

/* A targeted scan of one account at `at` that raises nothing, as variant v sees it. */
static long long variant_scan(struct db *db, double at, const char *account, const char *region,
                              enum scan_variant v)
{
    long long id = begin_scan(db, at);
    set_scope(db, id, 1);
    struct target_result t[2];
    const struct target_result *p[2] = {&t[0], &t[1]};
    size_t n = 2;
    if (v == V_ACCOUNT_FAILED) {
        t[0] = target(account, "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, at + 10);
        n = 1;
    } else {
        int west_failed = v == V_TARGET_FAILED && strcmp(region, "us-east-1") != 0;
        int east_failed = v == V_TARGET_FAILED && strcmp(region, "us-east-1") == 0;
        t[0] = target(account, "eu-west-1", west_failed ? TARGET_THROTTLED : TARGET_OK, NULL, 0,
                      at + 10);
        t[1] = target(account, "us-east-1", east_failed ? TARGET_THROTTLED : TARGET_OK, NULL, 0,
                      at + 10);
    }
    write_targets_ok(db, id, p, n);
    struct findings_context ctx = {.scps_read = v != V_NO_SCPS, .have_policy = v != V_NO_POLICY};
    struct err e;
    err_clear(&e);
    if (db_write_findings_ctx(db, id, NULL, 0, &ctx, NULL, &e) < 0)
        fail_msg("db_write_findings_ctx: %s (%s)", e.message, e.code);
    finish_scan(db, id, at + 60, "partial");
    return id;
}

static void test_resolution_rule_for_every_kind(void **state)
{
    struct fixture *fx = *state;
    struct rule_case {
        const char *kind, *region, *cluster, *source;
        int carried[V_VARIANTS - 1]; /* by V_TARGET_FAILED .. V_NO_POLICY: 1 carried over */
    } cases[] = {
        {"noncompliant_cluster", "eu-west-1", "a", "scp:p-1", {1, 1, 1, 0}},
        {"noncompliant_cluster", "eu-west-1", "b", "policy:regulated", {1, 1, 0, 1}},
        {"unknown_mode", "eu-west-1", "c", "observation", {1, 1, 0, 0}},
        {"mode_changed", "eu-west-1", "d", "history", {1, 1, 0, 0}},
        /* tried again, even if it failed again: a scan then raises it again itself */
        {"unscanned_target", "us-east-1", NULL, "coverage", {0, 1, 0, 0}},
        {"unscanned_target", "*", NULL, "coverage", {0, 0, 0, 0}},
        {"unenforced_intent", "*", NULL, "policy:regulated", {0, 0, 1, 1}},
        {"scp_conflict", "eu-west-1", NULL, "policy:regulated", {0, 0, 1, 1}},
        {"exception_expired", "eu-west-1", "e", "policy:exception", {0, 0, 0, 1}},
    };
    double at = T0;
    int n_account = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int v = V_TARGET_FAILED; v < V_JUDGED; v++) {
            char account[16], arn[96];
            snprintf(account, sizeof account, "%012d", 100000 + n_account++);
            snprintf(arn, sizeof arn, "arn:aws:eks:%s:%s:cluster/%s", cases[c].region, account,
                     cases[c].cluster ? cases[c].cluster : "-");
            struct finding f = fnd(cases[c].kind, account, cases[c].region,
                                   cases[c].cluster ? arn : NULL, cases[c].source);
            const char *acc[1] = {account};
            long long s1 = begin_scan(fx->db, at);
            set_scope(fx->db, s1, 1);
            cover(fx->db, s1, at, acc, 1);
            write_findings_ok(fx->db, s1, &f, 1, NULL);
            finish_scan(fx->db, s1, at + 60, "succeeded");
            long long id = open_id(fx->check, &f);
            assert_true(id > 0);

            variant_scan(fx->db, at + HOUR, account, cases[c].region, (enum scan_variant)v);
            char x[160], t1[32], t2[32];
            if (cases[c].carried[v]) {
                /* carried over: same id, same first_seen, not resolved */
                if (open_id(fx->check, &f) != id)
                    fail_msg("%s %s (%s) was not carried over by variant %d", cases[c].kind,
                             cases[c].region, cases[c].source, v);
                snprintf(x, sizeof x, "%s|%lld|%s|%lld|-|-", epoch_of(t1, at), s1, t1, s1);
                expect_lifetime(fx->check, id, x);
                /* ... until a scan that judges it again */
                long long s3 =
                    variant_scan(fx->db, at + 2 * HOUR, account, cases[c].region, V_JUDGED);
                snprintf(x, sizeof x, "%s|%lld|%s|%lld|%s|%lld", t1, s1, t1, s1,
                         epoch_of(t2, at + 2 * HOUR), s3);
                expect_lifetime(fx->check, id, x);
            } else if (open_id(fx->check, &f) != 0) {
                fail_msg("%s %s (%s) was not resolved by variant %d", cases[c].kind,
                         cases[c].region, cases[c].source, v);
            }
            char idt[32];
            const char *pid[1] = {ll(idt, id)};
            q_expect(fx->check, "not_raised",
                     "SELECT resolved_reason FROM egressscan.finding WHERE finding_id = $1::bigint",
                     1, pid);
            at += DAY;
        }
    }

    /* a cluster no longer there: resolved as cluster_gone, even by a scan without the SCPs */
    const char *acc[1] = {"200000000000"};
    struct tcluster g;
    tcluster_init(&g, acc[0], "eu-west-1", "g", "AWS_MANAGED");
    struct target_result tg = target(acc[0], "eu-west-1", TARGET_OK, &g.c, 1, at + 10);
    const struct target_result *pgr[1] = {&tg};
    long long s1 = begin_scan(fx->db, at);
    write_targets_ok(fx->db, s1, pgr, 1);
    struct finding f = fnd("noncompliant_cluster", acc[0], "eu-west-1", g.arn, "scp:p-1");
    write_findings_ok(fx->db, s1, &f, 1, NULL);
    finish_scan(fx->db, s1, at + 60, "succeeded");
    long long id = open_id(fx->check, &f);
    variant_scan(fx->db, at + HOUR, acc[0], "eu-west-1", V_NO_SCPS);
    assert_int_equal(open_id(fx->check, &f), 0);
    char idt[32];
    const char *pid[1] = {ll(idt, id)};
    q_expect(fx->check, "cluster_gone|cluster_gone",
             "SELECT concat_ws('|', f.resolved_reason, c.gone_reason) FROM egressscan.finding f "
             "JOIN egressscan.cluster c ON c.cluster_arn = f.cluster_arn "
             "WHERE f.finding_id = $1::bigint",
             1, pid);
}

/* A scan that raises a finding it could not judge again (SCPs borrowed from an earlier scan, no
 * policy file) carries it over unchanged: it stays open with its id, and last_seen / scan_id stay
 * with the scan that last confirmed it; a scan that judges it again moves them. */
static void test_raised_without_being_judged_again_is_carried_over_unchanged(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {"300000000000"};
    struct finding f = fnd("scp_conflict", acc[0], "eu-west-1", NULL, "policy:regulated");
    struct finding u = fnd("unenforced_intent", acc[0], "*", NULL, "policy:regulated");
    struct finding both[2] = {f, u};
    const struct findings_context borrowed = {.scps_read = 0, .have_policy = 1};
    const struct findings_context judged = {.scps_read = 1, .have_policy = 1};
    double at = T0 + 400 * DAY;
    long long ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = begin_scan(fx->db, at + i * HOUR);
        cover(fx->db, ids[i], at + i * HOUR, acc, 1);
        struct err e;
        err_clear(&e);
        if (db_write_findings_ctx(fx->db, ids[i], both, 2, i == 1 ? &borrowed : &judged, NULL, &e) <
            0)
            fail_msg("db_write_findings_ctx: %s (%s)", e.message, e.code);
        finish_scan(fx->db, ids[i], at + i * HOUR + 60, i == 1 ? "partial" : "succeeded");
        long long id_f = open_id(fx->check, &f), id_u = open_id(fx->check, &u);
        assert_true(id_f > 0 && id_u > 0);
        char x[160], t0[32], tl[32];
        long long last = i == 1 ? ids[0] : ids[i];
        snprintf(x, sizeof x, "%s|%lld|%s|%lld|-|-", epoch_of(t0, at), ids[0],
                 epoch_of(tl, at + (i == 1 ? 0 : i) * HOUR), last);
        expect_lifetime(fx->check, id_f, x);
        expect_lifetime(fx->check, id_u, x);
        char idt[32], lastt[32];
        const char *pid[1] = {ll(idt, id_f)};
        q_expect(fx->check, ll(lastt, last),
                 "SELECT scan_id FROM egressscan.current_drift WHERE finding_id = $1::bigint", 1,
                 pid);
    }
}

/* A fleet scan takes out of the fleet what it no longer finds, each with its reason. */
static void test_fleet_scan_takes_out_what_left_the_fleet(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    err_clear(&e);
    /* five accounts, two regions each, a cluster and a finding in each region */
    const char *ids[5] = {"300000000001", "300000000002", "300000000003", "300000000004",
                          "300000000005"};
    const char *regions[2] = {"eu-west-1", "us-east-1"};
    struct tcluster tc[5][2];
    struct target_result t[10];
    const struct target_result *pt[10];
    struct finding f[10];
    struct account a[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (struct account){.id = ids[i], .status = "ACTIVE", .ou_id_path = "r-ab12"};
        for (int r = 0; r < 2; r++) {
            tcluster_init(&tc[i][r], ids[i], regions[r], "c", "AWS_MANAGED");
            t[2 * i + r] = target(ids[i], regions[r], TARGET_OK, &tc[i][r].c, 1, T0 + 10);
            pt[2 * i + r] = &t[2 * i + r];
            f[2 * i + r] = fnd("noncompliant_cluster", ids[i], regions[r], tc[i][r].arn, "scp:p-1");
        }
    }
    long long s1 = begin_scan(fx->db, T0);
    assert_int_equal(db_write_accounts(fx->db, s1, a, 5, &e), 0);
    write_targets_ok(fx->db, s1, pt, 10);
    write_findings_ok(fx->db, s1, f, 10, NULL);
    finish_scan(fx->db, s1, T0 + 60, "succeeded");
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_clusters"), 10);

    /* the next fleet scan: 1 as before; 2 no longer listed; 3 suspended; 4 listed but not
     * scanned (excluded); 5 scanned without us-east-1 (region no longer enabled) */
    long long s2 = begin_scan(fx->db, T0 + DAY);
    a[2].status = "SUSPENDED";
    struct account listed[4] = {a[0], a[2], a[3], a[4]};
    assert_int_equal(db_write_accounts(fx->db, s2, listed, 4, &e), 0);
    for (int r = 0; r < 2; r++)
        t[r].scanned_at = T0 + DAY + 10;
    t[8].scanned_at = T0 + DAY + 10;
    struct target_result susp = target(ids[2], "*", TARGET_SUSPENDED, NULL, 0, T0 + DAY + 10);
    susp.error_code = NULL;
    susp.error_message = "account status SUSPENDED";
    const struct target_result *p2[4] = {&t[0], &t[1], &susp, &t[8]};
    write_targets_ok(fx->db, s2, p2, 4);
    struct finding again[3] = {f[0], f[1], f[8]};
    write_findings_ok(fx->db, s2, again, 3, NULL);
    finish_scan(fx->db, s2, T0 + DAY + 60, "succeeded");

    q_expect(fx->check,
             "300000000001 eu-west-1 ok,300000000001 us-east-1 ok,300000000003 * suspended,"
             "300000000005 eu-west-1 ok",
             "SELECT string_agg(concat_ws(' ', account_id, region, status), ',' ORDER BY "
             "account_id, region) FROM egressscan.coverage",
             0, NULL);
    q_expect(fx->check, "300000000001 eu-west-1,300000000001 us-east-1,300000000005 eu-west-1",
             "SELECT string_agg(concat_ws(' ', account_id, region), ',' ORDER BY account_id, "
             "region) FROM egressscan.current_clusters",
             0, NULL);
    /* the clusters, their periods and their findings say why they left */
    q_expect(fx->check,
             "300000000002 left_organization left_organization left_organization 2,"
             "300000000003 suspended suspended suspended 2,"
             "300000000004 excluded excluded excluded 2,"
             "300000000005 region_removed region_removed region_removed 1",
             "SELECT string_agg(x, ',' ORDER BY x) FROM (SELECT concat_ws(' ', c.account_id, "
             "min(c.gone_reason), min(i.closed_reason), min(f.resolved_reason), count(*)) AS x "
             "FROM egressscan.cluster c "
             "JOIN egressscan.cluster_mode_interval i ON i.cluster_arn = c.cluster_arn "
             "JOIN egressscan.finding f ON f.cluster_arn = c.cluster_arn "
             "WHERE c.gone_at IS NOT NULL GROUP BY c.account_id) s",
             0, NULL);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_drift"), 3);
    /* a suspended account is no failure, and no unscanned target */
    q_expect(fx->check, "3|3|0|0",
             "SELECT concat_ws('|', clusters, noncompliant + compliant + unknown + exempt, "
             "unverified, targets_failed) FROM egressscan.daily_compliance WHERE day = "
             "'2026-01-02'",
             0, NULL);

    /* a targeted scan takes nothing out; an account that comes back is in the fleet again */
    long long s3 = begin_scan(fx->db, T0 + 2 * DAY);
    set_scope(fx->db, s3, 1);
    t[2].scanned_at = T0 + 2 * DAY + 10;
    const struct target_result *p3[1] = {&t[2]};
    write_targets_ok(fx->db, s3, p3, 1);
    write_findings_ok(fx->db, s3, NULL, 0, NULL);
    finish_scan(fx->db, s3, T0 + 2 * DAY + 60, "succeeded");
    q_expect(fx->check, "5|4",
             "SELECT concat_ws('|', count(*), count(DISTINCT account_id)) FROM "
             "egressscan.coverage",
             0, NULL);
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.current_clusters WHERE account_id = '300000000002'",
             0, NULL);
    (void)s2;
}

/* ---- the reader role ---- */

static void expect_denied(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR)
        fail_msg("the reader could run: %s", sql);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state || strcmp(state, "42501") != 0)
        fail_msg("expected 42501 (insufficient_privilege), got %s for %s: %s",
                 state ? state : "(none)", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void test_reader_reads_every_view_and_no_table(void **state)
{
    struct fixture *fx = *state;
    const char *acc[1] = {ACC};
    struct finding f = fnd("unscanned_target", ACC, "us-east-1", NULL, "coverage");
    scan_with(fx->db, T0, acc, 1, &f, 1, "succeeded");

    PQclear(
        q(fx->check, "CREATE ROLE es_findings_reader LOGIN IN ROLE egressscan_reader", 0, NULL));
    char url[700];
    snprintf(url, sizeof url, "postgresql://es_findings_reader@127.0.0.1:%d/%s", pg.port,
             fx->dbname);
    PGconn *reader = PQconnectdb(url);
    if (PQstatus(reader) != CONNECTION_OK)
        fail_msg("reader: %s", PQerrorMessage(reader));

    /* every view of the schema, the SPEC's six among them */
    q_expect(fx->check, "6",
             "SELECT count(*) FROM pg_views WHERE schemaname = 'egressscan' AND viewname IN "
             "('scans', 'coverage', 'current_clusters', 'cluster_history', 'current_drift', "
             "'daily_compliance')",
             0, NULL);
    PGresult *views = q(fx->check,
                        "SELECT format('SELECT * FROM %I.%I', schemaname, viewname), "
                        "format('DELETE FROM %I.%I', schemaname, viewname) FROM pg_views "
                        "WHERE schemaname = 'egressscan' ORDER BY viewname",
                        0, NULL);
    for (int i = 0; i < PQntuples(views); i++) {
        PQclear(q(reader, PQgetvalue(views, i, 0), 0, NULL));
        PGresult *r = PQexec(reader, PQgetvalue(views, i, 1));
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR); /* reading only */
        PQclear(r);
    }
    PQclear(views);
    q_expect(reader, "1", "SELECT count(*) FROM egressscan.current_drift", 0, NULL);
    q_expect(reader, "1", "SELECT count(*) FROM egressscan.daily_compliance", 0, NULL);

    /* every table of the schema, whatever later migrations add: no access at all */
    PGresult *tables =
        q(fx->check,
          "SELECT format('SELECT * FROM %I.%I', t.schemaname, t.tablename), "
          "       format('INSERT INTO %I.%I DEFAULT VALUES', t.schemaname, t.tablename), "
          "       format('UPDATE %I.%I SET %I = %I WHERE false', t.schemaname, t.tablename, "
          "              a.attname, a.attname), "
          "       format('DELETE FROM %I.%I WHERE false', t.schemaname, t.tablename), "
          "       format('TRUNCATE %I.%I', t.schemaname, t.tablename) "
          "FROM pg_tables t "
          "CROSS JOIN LATERAL (SELECT attname FROM pg_attribute "
          "  WHERE attrelid = format('%I.%I', t.schemaname, t.tablename)::regclass "
          "    AND attnum > 0 AND NOT attisdropped AND attidentity = '' AND attgenerated = '' "
          "  ORDER BY attnum LIMIT 1) a "
          "WHERE t.schemaname = 'egressscan' ORDER BY t.tablename",
          0, NULL);
    int n_tables = PQntuples(tables);
    for (int i = 0; i < n_tables; i++)
        for (int k = 0; k < 5; k++)
            expect_denied(reader, PQgetvalue(tables, i, k));
    PQclear(tables);
    /* all of them were tried (none lacks a plain column) */
    assert_int_equal(
        n_tables,
        count_rows(fx->check, "SELECT count(*) FROM pg_tables WHERE schemaname = 'egressscan'"));
    assert_true(n_tables >= 14);
    PQfinish(reader);
    PQclear(q(fx->check, "DROP ROLE es_findings_reader", 0, NULL));
}

/* ---- escaping ---- */

struct captured {
    int n;
    char source[128];
    char details[1024];
};

static int capture(void *ud, const struct stored_finding *sf)
{
    struct captured *c = ud;
    c->n++;
    snprintf(c->source, sizeof c->source, "%s", sf->f.source);
    snprintf(c->details, sizeof c->details, "%s", sf->f.details_json);
    return 0;
}

static void test_special_characters_in_details_survive(void **state)
{
    struct fixture *fx = *state;
    static const char details[] =
        "{\"reason\": \"scp_gap\", \"k\\tey\": \"va\\\\lue\\n\\\"q\\\" \xc3\xbc "
        "\xf0\x9f\x98\x80\", \"n\": \"\\\\N\", \"dot\": \"\\\\.\", \"cr\": \"a\\r\\nb\", "
        "\"remediation\": \"aws eks update-cluster-config --name 'x' "
        "--resources-vpc-config controlPlaneEgressMode=CUSTOMER_ROUTED\"}";
    static const char source[] = "policy:we\tird\\rule \"q\" '\xc3\xbc'";
    const char *acc[1] = {ACC};
    struct finding f = fnd("unenforced_intent", ACC, "*", NULL, source);
    f.details_json = details;
    f.allowed_modes = EGRESS_BIT(EGRESS_CUSTOMER_ROUTED);
    scan_with(fx->db, T0, acc, 1, &f, 1, "succeeded");

    q_expect(fx->check, source, "SELECT source FROM egressscan.current_drift", 0, NULL);
    q_expect(fx->check, "va\\lue\n\"q\" \xc3\xbc \xf0\x9f\x98\x80",
             "SELECT details->>E'k\\tey' FROM egressscan.current_drift", 0, NULL);
    q_expect(fx->check, "\\N|\\.|a\r\nb",
             "SELECT concat_ws('|', details->>'n', details->>'dot', details->>'cr') FROM "
             "egressscan.current_drift",
             0, NULL);
    const char *pd[1] = {details};
    q_expect(fx->check, "t", "SELECT details = $1::jsonb FROM egressscan.current_drift", 1, pd);

    /* read back through the API: the same source, the same JSON */
    struct captured cap;
    memset(&cap, 0, sizeof cap);
    struct err e;
    err_clear(&e);
    long long used = 0;
    assert_int_equal(db_query_findings(fx->db, 0, &used, capture, &cap, &e), 0);
    assert_int_equal(cap.n, 1);
    assert_string_equal(cap.source, source);
    const char *pc[2] = {cap.details, details};
    q_expect(fx->check, "t", "SELECT $1::jsonb = $2::jsonb", 2, pc);

    /* the same identity (awkward source included) is matched on the next scan */
    long long id = open_id(fx->check, &f);
    scan_with(fx->db, T0 + DAY, acc, 1, &f, 1, "succeeded");
    assert_int_equal(open_id(fx->check, &f), id);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_apply_on_top_of_old_databases, fresh_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_have_the_spec_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_persisting_finding_keeps_first_seen_and_unraised_is_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finding_raised_again_after_resolution_is_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_current_drift_is_the_open_findings_of_the_fleet, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_scan_that_failed_after_writing_findings_leaves_history_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_older_scan_resolves_nothing_newer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_scan_joins_the_lifetime_it_falls_in, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_finalized_scan_is_the_latest_started, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resolution_is_limited_to_the_accounts_covered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_daily_compliance_is_the_fleet_after_the_last_scan_of_each_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_findings_order_modes_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_findings_is_whole_or_nothing_and_refuses_misuse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolution_rule_for_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_raised_without_being_judged_again_is_carried_over_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_scan_takes_out_what_left_the_fleet, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_reads_every_view_and_no_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_characters_in_details_survive, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
