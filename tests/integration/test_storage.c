/* test_storage.c - storage/ against a real PostgreSQL (started by tests/support/procs.c, one
 * database per test): connection safety, embedded migrations, the public views, scan runs with
 * abort detection, whole-or-nothing target batches, change-based cluster history, and COPY
 * escaping of every awkward character. Times are chosen by the tests, never the clock. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "storage/db.h"
#include "storage/db_internal.h"
#include "storage/migrations.h"
#include "tests/support/procs.h"

#define T0 1767225600.0 /* 2026-01-01T00:00:00Z */
#define DAY 86400.0

static struct pgtest pg;
static int n_databases;

struct fixture {
    char url[600];
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

static long long count_rows(PGconn *c, const char *table_sql)
{
    return q_int(c, table_sql, 0, NULL);
}

static const char *ll(char buf[32], long long v)
{
    snprintf(buf, 32, "%lld", v);
    return buf;
}

static const char *epoch(char buf[32], double t)
{
    snprintf(buf, 32, "%lld", (long long)t);
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
    char sql[64];
    int k = ++n_databases;
    snprintf(sql, sizeof sql, "CREATE DATABASE es_test_%d", k); /* test-only DDL */
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    if (!ok) {
        free(fx);
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "postgresql://postgres@127.0.0.1:%d/es_test_%d", pg.port, k);
    fx->check = PQconnectdb(fx->url);
    if (PQstatus(fx->check) != CONNECTION_OK)
        return -1;
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

/* ---- building results ---- */

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
    t->c.kubernetes_version = "1.31";
    t->c.platform_version = "eks.12";
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

static void write_ok(struct db *db, long long scan, const struct target_result *const *t, size_t n)
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

/* One whole scan at time `at` of the given targets (each scanned 10 s after the start). */
static long long scan_of(struct db *db, double at, struct target_result *t, size_t n)
{
    long long id = begin_scan(db, at);
    const struct target_result *ptrs[16];
    assert_true(n <= 16);
    int partial = 0;
    for (size_t i = 0; i < n; i++) {
        t[i].scanned_at = at + 10;
        ptrs[i] = &t[i];
        partial |= t[i].status != TARGET_OK;
    }
    write_ok(db, id, ptrs, n);
    finish_scan(db, id, at + 60, partial ? "partial" : "succeeded");
    return id;
}

/* ---- connection ---- */

static void test_connect_errors_never_show_the_password(void **state)
{
    (void)state;
    struct err e;
    char url[256];
    int closed = procs_free_port();

    err_clear(&e);
    snprintf(url, sizeof url, "postgresql://alice:S3cretPw@127.0.0.1:%d/x?connect_timeout=5",
             closed);
    assert_null(db_connect(url, &e));
    assert_string_equal(e.code, "DatabaseConnectionError");
    assert_null(strstr(e.message, "S3cretPw"));

    /* malformed strings: libpq would quote the broken piece, which is the password here */
    const char *bad[] = {"postgresql://alice:S3cret%zzPw@127.0.0.1/x",
                         "host=127.0.0.1 password='S3cretPw", "postgresql://alice:S3cretPw@[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_null(db_connect(bad[i], &e));
        assert_true(err_isset(&e));
        assert_null(strstr(e.message, "S3cret"));
    }

    /* the password given for a database that does not exist stays out of the message */
    err_clear(&e);
    snprintf(url, sizeof url, "postgresql://postgres:S3cretPw@127.0.0.1:%d/no_such_db", pg.port);
    assert_null(db_connect(url, &e));
    assert_string_equal(e.code, "DatabaseConnectionError");
    assert_non_null(strstr(e.message, "no_such_db"));
    assert_null(strstr(e.message, "S3cretPw"));
}

static void test_connect_sets_search_path_and_application_name(void **state)
{
    struct fixture *fx = *state;
    char url[700];
    snprintf(url, sizeof url, "%s?application_name=other", fx->url);
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    assert_non_null(db);
    q_expect(db_pgconn(db), "pg_catalog", "SHOW search_path", 0, NULL);
    q_expect(db_pgconn(db), "egressscan", "SELECT current_setting('application_name')", 0, NULL);
    q_expect(db_pgconn(db), "UTF8", "SHOW client_encoding", 0, NULL);
    db_close(db);

    /* no URL: DATABASE_URL */
    setenv("DATABASE_URL", fx->url, 1);
    db = db_connect(NULL, &e);
    unsetenv("DATABASE_URL");
    assert_non_null(db);
    q_expect(db_pgconn(db), "1", "SELECT 1", 0, NULL);
    db_close(db);
    db_close(NULL);
}

static int keepalive_option(struct db *db, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(PQsocket(db_pgconn(db)), level, name, &v, &len), 0);
    return v;
}

/* TCP keepalives on the socket itself: ~60 s to notice a vanished server by default; what the
 * URL says wins. */
static void test_connect_sets_tcp_keepalives_unless_the_url_does(void **state)
{
    struct fixture *fx = *state;
    assert_non_null(strstr(fx->url, "127.0.0.1"));
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(fx->url, &e);
    assert_non_null(db);
    assert_int_equal(keepalive_option(db, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPINTVL), 10);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPCNT), 3);
    db_close(db);

    char url[700];
    snprintf(url, sizeof url, "%s?keepalives_idle=7&keepalives_count=5", fx->url);
    db = db_connect(url, &e);
    assert_non_null(db);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPIDLE), 7);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPINTVL), 10);
    assert_int_equal(keepalive_option(db, IPPROTO_TCP, TCP_KEEPCNT), 5);
    db_close(db);

    snprintf(url, sizeof url, "%s?keepalives=0", fx->url);
    db = db_connect(url, &e);
    assert_non_null(db);
    assert_int_equal(keepalive_option(db, SOL_SOCKET, SO_KEEPALIVE), 0);
    db_close(db);
}

/* ---- migrations ---- */

static void test_migrate_twice_applies_nothing_the_second_time(void **state)
{
    struct fixture *fx = *state;
    struct db *db = connect_ok(fx);
    struct err e;
    err_clear(&e);
    assert_int_equal(db_schema_current(db, &e), 0);
    assert_string_equal(e.code, "SchemaOutdated");

    int applied = -1;
    err_clear(&e);
    assert_int_equal(db_migrate(db, &applied, &e), 0);
    assert_int_equal(applied, (int)db_migration_count);
    assert_int_equal(db_migrate(db, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(db_schema_current(db, &e), 1);

    char n[32];
    q_expect(fx->check, ll(n, (long long)db_migration_count),
             "SELECT count(*) FROM egressscan.schema_migrations", 0, NULL);
    /* the recorded checksum is the SHA-256 of the embedded text */
    for (size_t i = 0; i < db_migration_count; i++) {
        char v[32];
        const char *p[3] = {ll(v, db_migrations[i].version), db_migrations[i].sql,
                            db_migrations[i].file};
        q_expect(fx->check, "t",
                 "SELECT checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex') AND name = $3 "
                 "FROM egressscan.schema_migrations WHERE version = $1::int",
                 3, p);
    }
    db_close(db);
}

static void test_changed_migration_is_refused(void **state)
{
    struct fixture *fx = *state;
    PQclear(q(fx->check,
              "UPDATE egressscan.schema_migrations SET checksum = repeat('0', 64) "
              "WHERE version = 1",
              0, NULL));
    struct err e;
    err_clear(&e);
    int applied = -1;
    assert_int_equal(db_migrate(fx->db, &applied, &e), -1);
    assert_int_equal(applied, 0);
    assert_string_equal(e.code, "MigrationChanged");
    assert_non_null(strstr(e.message, "0001_init.sql"));
    err_clear(&e);
    assert_int_equal(db_schema_current(fx->db, &e), 0);
    assert_string_equal(e.code, "MigrationChanged");
}

static void test_newer_schema_is_refused(void **state)
{
    struct fixture *fx = *state;
    char v[32];
    const char *p[1] = {ll(v, (long long)db_migration_count + 1)};
    PQclear(q(fx->check,
              "INSERT INTO egressscan.schema_migrations (version, name, checksum) "
              "VALUES ($1::int, '9999_future.sql', repeat('a', 64))",
              1, p));
    struct err e;
    err_clear(&e);
    assert_int_equal(db_migrate(fx->db, NULL, &e), -1);
    assert_string_equal(e.code, "SchemaTooNew");
    err_clear(&e);
    assert_int_equal(db_schema_current(fx->db, &e), 0);
    assert_string_equal(e.code, "SchemaTooNew");
}

struct migrate_job {
    const char *url;
    int rc;
    int applied;
    struct err e;
};

static void *migrate_thread(void *arg)
{
    struct migrate_job *j = arg;
    err_clear(&j->e);
    struct db *db = db_connect(j->url, &j->e);
    j->rc = db ? db_migrate(db, &j->applied, &j->e) : -1;
    db_close(db);
    return NULL;
}

static void test_concurrent_migrations_apply_once(void **state)
{
    struct fixture *fx = *state;
    struct migrate_job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct migrate_job){.url = fx->url, .rc = -1};
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &jobs[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc != 0)
            fail_msg("migrate %d: %s (%s)", i, jobs[i].e.message, jobs[i].e.code);
        total += jobs[i].applied;
    }
    assert_int_equal(total, (int)db_migration_count);
}

/* ---- the public views ---- */

static void expect_columns(PGconn *c, const char *view, const char *columns)
{
    const char *p[2] = {view, columns};
    PGresult *r = q(c,
                    "SELECT col FROM unnest(string_to_array($2, ',')) AS col "
                    "WHERE col NOT IN (SELECT column_name FROM information_schema.columns "
                    "                  WHERE table_schema = 'egressscan' AND table_name = $1)",
                    2, p);
    if (PQntuples(r) > 0)
        fail_msg("view egressscan.%s lacks column %s", view, PQgetvalue(r, 0, 0));
    PQclear(r);
    q_expect(c, "t",
             "SELECT obj_description(('egressscan.' || $1)::regclass, 'pg_class') IS NOT NULL", 1,
             p);
}

static void test_views_have_the_spec_columns(void **state)
{
    struct fixture *fx = *state;
    expect_columns(fx->check, "scans",
                   "scan_id,started_at,finished_at,status,targets_total,targets_ok,"
                   "targets_failed,clusters_seen,api_calls,throttled");
    expect_columns(fx->check, "coverage",
                   "scan_id,account_id,account_name,region,status,error_code,error_message,"
                   "clusters,scanned_at");
    expect_columns(fx->check, "current_clusters",
                   "account_id,account_name,ou_path,region,cluster_name,cluster_arn,egress_mode,"
                   "egress_mode_effective,status,kubernetes_version,platform_version,"
                   "endpoint_public_access,endpoint_private_access,public_access_cidrs,vpc_id,"
                   "tags,created_at,first_seen,last_seen,last_scan_id");
    expect_columns(fx->check, "cluster_history",
                   "cluster_arn,account_id,region,egress_mode,valid_from,valid_to");
    q_expect(
        fx->check, "v",
        "SELECT relkind::text FROM pg_class WHERE oid = 'egressscan.current_clusters'::regclass", 0,
        NULL);

    /* egressscan_reader reads the views and nothing else */
    PQclear(q(fx->check, "SET ROLE egressscan_reader", 0, NULL));
    PQclear(q(fx->check, "SELECT * FROM egressscan.current_clusters", 0, NULL));
    PQclear(q(fx->check, "SELECT * FROM egressscan.coverage", 0, NULL));
    PQclear(q(fx->check, "SELECT * FROM egressscan.scans", 0, NULL));
    PQclear(q(fx->check, "SELECT * FROM egressscan.cluster_history", 0, NULL));
    PGresult *r = PQexec(fx->check, "SELECT * FROM egressscan.cluster");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
    PQclear(r);
    PQclear(q(fx->check, "RESET ROLE", 0, NULL));
}

/* ---- a scan, end to end ---- */

static void test_scan_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    err_clear(&e);
    long long scan = 0;
    int aborted = -1;
    assert_int_equal(db_scan_begin(fx->db, T0, "{\"regions\":\"all\"}", &scan, &aborted, &e), 0);
    assert_int_equal(aborted, 0);
    char id[32], t[32];
    const char *pid[1] = {ll(id, scan)};
    q_expect(fx->check, "running", "SELECT status FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, pid);
    q_expect(fx->check, epoch(t, T0),
             "SELECT extract(epoch FROM started_at)::bigint FROM egressscan.scans "
             "WHERE scan_id = $1::bigint",
             1, pid);

    struct account accounts[2] = {{.id = "000011112222",
                                   .name = "Prod",
                                   .email = "prod@example.com",
                                   .status = "ACTIVE",
                                   .ou_path = "Root/Prod",
                                   .ou_id_path = "r-ab12/ou-ab12-11111111",
                                   .parent_id = "ou-ab12-11111111"},
                                  {.id = "999999999999",
                                   .name = "Management",
                                   .status = "ACTIVE",
                                   .ou_path = "Root",
                                   .ou_id_path = "r-ab12",
                                   .parent_id = "r-ab12",
                                   .is_management = 1}};
    assert_int_equal(db_write_accounts(fx->db, scan, accounts, 2, &e), 0);
    struct org_unit ous[2] = {{.id = "r-ab12", .name = "Root"},
                              {.id = "ou-ab12-11111111", .parent_id = "r-ab12", .name = "Prod"}};
    assert_int_equal(db_write_org_units(fx->db, scan, ous, 2, &e), 0);
    const char *full_targets[] = {"r-ab12"};
    const char *deny_targets[] = {"ou-ab12-11111111", "000011112222"};
    const char *deny_doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
                           "\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\"}]}\n";
    struct scp_policy scps[2] = {{.id = "p-FullAWSAccess",
                                  .name = "FullAWSAccess",
                                  .content = "{\"Statement\":[]}",
                                  .targets = full_targets,
                                  .n_targets = 1,
                                  .aws_managed = 1},
                                 {.id = "p-deny1234",
                                  .name = "DenyEgress",
                                  .content = deny_doc,
                                  .targets = deny_targets,
                                  .n_targets = 2}};
    assert_int_equal(db_write_scps(fx->db, scan, scps, 2, &e), 0);

    struct tcluster c1, c2;
    tcluster_init(&c1, "000011112222", "eu-west-1", "payments", "CUSTOMER_ROUTED");
    c1.c.endpoint_public_access = 0;
    c1.c.endpoint_private_access = 1;
    c1.c.public_access_cidrs_json = "[\"10.0.0.0/8\"]";
    c1.c.vpc_id = "vpc-0abc";
    c1.c.tags_json = "{\"env\":\"prod\"}";
    c1.c.created_at = "2025-03-04T05:06:07.000Z";
    c1.c.raw_json = "{\"name\":\"payments\",\"resourcesVpcConfig\":{\"controlPlaneEgressMode\":"
                    "\"CUSTOMER_ROUTED\"}}";
    tcluster_init(&c2, "000011112222", "eu-west-1", "legacy", NULL);
    c2.c.created_at = "1700000000.5"; /* epoch seconds, as restJson1 sends them */
    struct cluster both[2] = {c1.c, c2.c};
    struct target_result tr[4] = {
        target("000011112222", "eu-west-1", TARGET_OK, both, 2, T0 + 10),
        target("000011112222", "us-east-1", TARGET_OK, NULL, 0, T0 + 11),
        target("000011112222", "ap-south-2", TARGET_REGION_DISABLED, NULL, 0, T0 + 12),
        target("999999999999", "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, T0 + 13)};
    tr[2].error_code = "OptInRequired";
    tr[3].error_code = "AccessDenied";
    tr[3].error_message = "not authorized to perform sts:AssumeRole";
    const struct target_result *ptrs[4] = {&tr[0], &tr[1], &tr[2], &tr[3]};
    write_ok(fx->db, scan, ptrs, 4);

    /* a running scan's counters are live */
    q_expect(fx->check, "4",
             "SELECT targets_total FROM egressscan.scans WHERE scan_id = $1::bigint", 1, pid);
    /* coverage is the latest word per target: a target's result counts as soon as it is written
     * (it is what AWS answered), whether or not its scan is finalized yet */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.coverage"), 4);

    struct scan_totals totals = {1234, 5, 7};
    assert_int_equal(db_scan_finish(fx->db, scan, T0 + 600, "partial", &totals, NULL, &e), 0);
    q_expect(fx->check, "partial|4|2|2|2|1234|5|7|600",
             "SELECT concat_ws('|', status, targets_total, targets_ok, targets_failed, "
             "clusters_seen, api_calls, throttled, retries, "
             "extract(epoch FROM finished_at - started_at)::int) "
             "FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, pid);

    /* coverage */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.coverage"), 4);
    q_expect(fx->check, "Management|assume_role_denied|AccessDenied",
             "SELECT concat_ws('|', account_name, status, error_code) FROM egressscan.coverage "
             "WHERE region = '*'",
             0, NULL);
    q_expect(fx->check, "Prod|ok|2|1767225610",
             "SELECT concat_ws('|', account_name, status, clusters, "
             "extract(epoch FROM scanned_at)::bigint) FROM egressscan.coverage "
             "WHERE region = 'eu-west-1'",
             0, NULL);
    q_expect(fx->check, "0", "SELECT clusters FROM egressscan.coverage WHERE region = 'us-east-1'",
             0, NULL);
    q_expect(fx->check, NULL,
             "SELECT clusters FROM egressscan.coverage WHERE region = 'ap-south-2'", 0, NULL);

    /* current clusters */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_clusters"), 2);
    const char *arn1[1] = {c1.arn}, *arn2[1] = {c2.arn};
    char expect[512];
    snprintf(expect, sizeof expect,
             "000011112222|Prod|Root/Prod|eu-west-1|payments|CUSTOMER_ROUTED|CUSTOMER_ROUTED|"
             "ACTIVE|1.31|eks.12|f|t|10.0.0.0/8|vpc-0abc|prod|1741064767|1767225610|"
             "1767225610|%lld",
             scan);
    q_expect(fx->check, expect,
             "SELECT concat_ws('|', account_id, account_name, ou_path, region, cluster_name, "
             "egress_mode, egress_mode_effective, status, kubernetes_version, platform_version, "
             "endpoint_public_access, endpoint_private_access, public_access_cidrs->>0, vpc_id, "
             "tags->>'env', extract(epoch FROM created_at)::bigint, "
             "extract(epoch FROM first_seen)::bigint, extract(epoch FROM last_seen)::bigint, "
             "last_scan_id) FROM egressscan.current_clusters WHERE cluster_arn = $1",
             1, arn1);
    q_expect(fx->check, "<null>|AWS_MANAGED|1700000000.500000",
             "SELECT concat_ws('|', coalesce(egress_mode, '<null>'), egress_mode_effective, "
             "extract(epoch FROM created_at)) FROM egressscan.current_clusters "
             "WHERE cluster_arn = $1",
             1, arn2);
    q_expect(fx->check, "CUSTOMER_ROUTED",
             "SELECT raw->'resourcesVpcConfig'->>'controlPlaneEgressMode' FROM egressscan.cluster "
             "WHERE cluster_arn = $1",
             1, arn1);
    q_expect(fx->check, "2",
             "SELECT count(*) FROM egressscan.cluster_history WHERE valid_from = "
             "to_timestamp(1767225610) AND valid_to IS NULL",
             0, NULL);

    /* the organization snapshot */
    q_expect(fx->check, "2", "SELECT count(*) FROM egressscan.scan_org_unit WHERE scan_id = $1", 1,
             pid);
    q_expect(fx->check, deny_doc,
             "SELECT content FROM egressscan.scan_scp WHERE policy_id = 'p-deny1234'", 0, NULL);
    q_expect(fx->check, "000011112222,ou-ab12-11111111",
             "SELECT string_agg(target_id, ',' ORDER BY target_id) FROM "
             "egressscan.scan_scp_target WHERE policy_id = 'p-deny1234'",
             0, NULL);
    q_expect(fx->check, "t",
             "SELECT aws_managed FROM egressscan.scan_scp WHERE policy_id = 'p-FullAWSAccess'", 0,
             NULL);
    q_expect(fx->check, "t|r-ab12",
             "SELECT concat_ws('|', is_management, parent_id) FROM egressscan.scan_account "
             "WHERE account_id = '999999999999'",
             0, NULL);

    /* a finalized scan takes nothing more */
    err_clear(&e);
    assert_int_equal(db_scan_finish(fx->db, scan, T0 + 700, "succeeded", NULL, NULL, &e), -1);
    assert_string_equal(e.code, "ScanNotRunning");
    err_clear(&e);
    assert_int_equal(db_write_targets(fx->db, scan, ptrs, 1, &e), -1);
    assert_string_equal(e.code, "ScanNotRunning");
    err_clear(&e);
    assert_int_equal(db_scan_finish(fx->db, 424242, T0, "succeeded", NULL, NULL, &e), -1);
    assert_string_equal(e.code, "UnknownScan");
    err_clear(&e);
    assert_int_equal(db_scan_finish(fx->db, scan, T0, "running", NULL, NULL, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
}

static void expect_nothing_written(PGconn *c)
{
    assert_int_equal(count_rows(c, "SELECT count(*) FROM egressscan.target_result"), 0);
    assert_int_equal(count_rows(c, "SELECT count(*) FROM egressscan.cluster"), 0);
    assert_int_equal(count_rows(c, "SELECT count(*) FROM egressscan.cluster_observation"), 0);
    assert_int_equal(count_rows(c, "SELECT count(*) FROM egressscan.cluster_mode_interval"), 0);
    assert_int_equal(count_rows(c, "SELECT count(*) FROM egressscan.account"), 0);
}

/* A target that cannot be stored costs only itself (SPEC section 4): the writer's checks or the
 * database refuse it, it is recorded as an error row (StorageRejected, with why), and the rest of
 * its batch is written. A defect of the caller (an account id that is not one) still refuses the
 * whole batch. */
static void test_bad_target_costs_only_itself(void **state)
{
    struct fixture *fx = *state;
    long long scan = begin_scan(fx->db, T0);
    struct tcluster good, bad_tags;
    tcluster_init(&good, "111122223333", "eu-west-1", "good", "CUSTOMER_ROUTED");
    tcluster_init(&bad_tags, "111122223333", "eu-west-2", "bad", "CUSTOMER_ROUTED");
    bad_tags.c.tags_json = "{not json";
    struct target_result ok = target("111122223333", "eu-west-1", TARGET_OK, &good.c, 1, T0 + 1);
    struct err e;
    long rejected0 = db_targets_rejected(fx->db);

    /* the caller's defect (an account id is 12 digits): the batch is refused */
    struct target_result bad_id = target("12345", "eu-west-1", TARGET_ERROR, NULL, 0, T0 + 2);
    const struct target_result *b1[2] = {&ok, &bad_id};
    err_clear(&e);
    assert_int_equal(db_write_targets(fx->db, scan, b1, 2, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    expect_nothing_written(fx->check);

    /* invalid JSON in the second target's cluster: the database refuses it (22P02) */
    struct target_result bad_json =
        target("111122223333", "eu-west-2", TARGET_OK, &bad_tags.c, 1, T0 + 3);
    const struct target_result *b2[2] = {&ok, &bad_json};
    write_ok(fx->db, scan, b2, 2);
    q_expect(fx->check, "ok|1",
             "SELECT concat_ws('|', status, error_code, clusters) FROM egressscan.target_result "
             "WHERE region = 'eu-west-1'",
             0, NULL);
    q_expect(fx->check, "error|StorageRejected|t",
             "SELECT concat_ws('|', status, error_code, error_message LIKE '%(22P02)%') "
             "FROM egressscan.target_result WHERE region = 'eu-west-2'",
             0, NULL);
    q_expect(fx->check, "good", "SELECT string_agg(cluster_name, ',') FROM egressscan.cluster", 0,
             NULL);

    /* the same target twice in one batch is the caller's defect (lists are de-duplicated where
     * they enter): the batch is refused whole, nothing of it written */
    struct tcluster other;
    tcluster_init(&other, "111122223333", "eu-central-1", "other", "AWS_MANAGED");
    struct target_result twice =
        target("111122223333", "eu-central-1", TARGET_OK, &other.c, 1, T0 + 4);
    const struct target_result *b3[2] = {&twice, &twice};
    err_clear(&e);
    assert_int_equal(db_write_targets(fx->db, scan, b3, 2, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    q_expect(fx->check, "0",
             "SELECT count(*) FROM egressscan.target_result WHERE region = 'eu-central-1'", 0,
             NULL);

    /* refused by the writer's checks before the database sees them: a name longer than EKS
     * allows, bytes that are not UTF-8, a cluster whose ARN names another account */
    char long_name[128];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct tcluster longc, binary, forged;
    tcluster_init(&longc, "111122223333", "eu-west-3", long_name, NULL);
    tcluster_init(&binary, "111122223333", "ap-south-1", "bin\xff\xfe", NULL);
    tcluster_init(&forged, "444455556666", "us-east-2", "good", "CUSTOMER_ROUTED");
    struct target_result too_long =
        target("111122223333", "eu-west-3", TARGET_OK, &longc.c, 1, T0 + 5);
    struct target_result not_utf8 =
        target("111122223333", "ap-south-1", TARGET_OK, &binary.c, 1, T0 + 6);
    struct target_result foreign =
        target("111122223333", "us-east-2", TARGET_OK, &forged.c, 1, T0 + 7);
    struct tcluster fine;
    tcluster_init(&fine, "111122223333", "sa-east-1", "fine", NULL);
    struct target_result healthy =
        target("111122223333", "sa-east-1", TARGET_OK, &fine.c, 1, T0 + 8);
    const struct target_result *b4[4] = {&too_long, &not_utf8, &healthy, &foreign};
    write_ok(fx->db, scan, b4, 4);
    q_expect(fx->check,
             "ap-south-1:error:StorageRejected,eu-west-3:error:StorageRejected,"
             "sa-east-1:ok:,us-east-2:error:StorageRejected",
             "SELECT string_agg(concat_ws(':', region, status, coalesce(error_code, '')), ',' "
             "ORDER BY region) FROM egressscan.target_result "
             "WHERE region IN ('eu-west-3', 'ap-south-1', 'sa-east-1', 'us-east-2')",
             0, NULL);
    q_expect(fx->check, "t",
             "SELECT error_message LIKE '%ARN%' FROM egressscan.target_result "
             "WHERE region = 'us-east-2'",
             0, NULL);
    /* nothing of the forged cluster reached the record: no row under either account */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.cluster WHERE "
                                           "cluster_arn LIKE '%444455556666%'"),
                     0);
    /* the refused duplicate batch added none */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.current_clusters"), 2);
    assert_int_equal(db_targets_rejected(fx->db) - rejected0, 4);
}

/* ---- change-based history ---- */

static void test_unchanged_cluster_adds_no_history(void **state)
{
    struct fixture *fx = *state;
    struct tcluster x;
    tcluster_init(&x, "111122223333", "eu-west-1", "x", "CUSTOMER_ROUTED");
    struct target_result t = target("111122223333", "eu-west-1", TARGET_OK, &x.c, 1, 0);
    scan_of(fx->db, T0, &t, 1);
    x.c.kubernetes_version = "1.32"; /* other attributes change; the mode does not */
    long long s2 = scan_of(fx->db, T0 + DAY, &t, 1);

    char id[32];
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.cluster_history"), 1);
    q_expect(fx->check, "CUSTOMER_ROUTED|1767225610|",
             "SELECT concat_ws('|', egress_mode, extract(epoch FROM valid_from)::bigint, "
             "coalesce(valid_to::text, '')) FROM egressscan.cluster_history",
             0, NULL);
    const char *p[1] = {ll(id, s2)};
    q_expect(fx->check, "t",
             "SELECT first_seen = to_timestamp(1767225610) AND last_seen = "
             "to_timestamp(1767312010) AND last_scan_id = $1::bigint AND kubernetes_version = "
             "'1.32' FROM egressscan.current_clusters",
             1, p);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.cluster_observation"),
                     2);
}

static void test_mode_change_closes_one_period_and_opens_one(void **state)
{
    struct fixture *fx = *state;
    struct tcluster x;
    tcluster_init(&x, "111122223333", "eu-west-1", "x", "AWS_MANAGED");
    struct target_result t = target("111122223333", "eu-west-1", TARGET_OK, &x.c, 1, 0);
    scan_of(fx->db, T0, &t, 1);
    x.c.egress_mode = "CUSTOMER_ROUTED";
    long long s2 = scan_of(fx->db, T0 + DAY, &t, 1);
    scan_of(fx->db, T0 + 2 * DAY, &t, 1); /* unchanged again */

    char id[32], expect[128];
    snprintf(expect, sizeof expect,
             "AWS_MANAGED 1767225610-1767312010 closed by %lld;CUSTOMER_ROUTED 1767312010- "
             "closed by ",
             s2);
    (void)ll(id, s2);
    q_expect(fx->check, expect,
             "SELECT string_agg(concat(egress_mode, ' ', extract(epoch FROM valid_from)::bigint, "
             "'-', extract(epoch FROM valid_to)::bigint, ' closed by ', closed_scan_id), ';' "
             "ORDER BY valid_from) FROM egressscan.cluster_history",
             0, NULL);
    q_expect(fx->check, "CUSTOMER_ROUTED", "SELECT egress_mode FROM egressscan.current_clusters", 0,
             NULL);
}

static void test_disappeared_cluster_is_closed_and_leaves_current(void **state)
{
    struct fixture *fx = *state;
    struct tcluster x, y, z;
    tcluster_init(&x, "111122223333", "eu-west-1", "x", "CUSTOMER_ROUTED");
    tcluster_init(&y, "111122223333", "eu-west-1", "y", "AWS_MANAGED");
    tcluster_init(&z, "111122223333", "eu-central-1", "z", "AWS_MANAGED");
    struct cluster xy[2] = {x.c, y.c};
    struct target_result first[2] = {target("111122223333", "eu-west-1", TARGET_OK, xy, 2, 0),
                                     target("111122223333", "eu-central-1", TARGET_OK, &z.c, 1, 0)};
    scan_of(fx->db, T0, first, 2);

    /* eu-west-1 scanned ok without x; eu-central-1 not scanned by this run at all */
    struct target_result second = target("111122223333", "eu-west-1", TARGET_OK, &y.c, 1, 0);
    long long s2 = scan_of(fx->db, T0 + DAY, &second, 1);

    const char *px[1] = {x.arn};
    q_expect(fx->check, "0",
             "SELECT count(*) FROM egressscan.current_clusters WHERE cluster_arn = $1", 1, px);
    q_expect(fx->check, "y,z",
             "SELECT string_agg(cluster_name, ',' ORDER BY cluster_name) FROM "
             "egressscan.current_clusters",
             0, NULL);
    char expect[64];
    snprintf(expect, sizeof expect, "1767312010|%lld", s2);
    q_expect(fx->check, expect,
             "SELECT concat_ws('|', extract(epoch FROM valid_to)::bigint, closed_scan_id) "
             "FROM egressscan.cluster_history WHERE cluster_arn = $1",
             1, px);
    q_expect(fx->check, "1767312010",
             "SELECT extract(epoch FROM gone_at)::bigint FROM egressscan.cluster "
             "WHERE cluster_arn = $1",
             1, px);
    q_expect(fx->check, "2",
             "SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL", 0, NULL);

    /* it comes back: a new period, current again */
    struct target_result third = target("111122223333", "eu-west-1", TARGET_OK, xy, 2, 0);
    scan_of(fx->db, T0 + 2 * DAY, &third, 1);
    q_expect(fx->check, "1767225610-1767312010;1767398410-",
             "SELECT string_agg(concat(extract(epoch FROM valid_from)::bigint, '-', "
             "extract(epoch FROM valid_to)::bigint), ';' ORDER BY valid_from) "
             "FROM egressscan.cluster_history WHERE cluster_arn = $1",
             1, px);
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.current_clusters WHERE cluster_arn = $1", 1, px);
    q_expect(fx->check, NULL, "SELECT gone_at FROM egressscan.cluster WHERE cluster_arn = $1", 1,
             px);
}

static void test_failed_target_keeps_its_clusters(void **state)
{
    struct fixture *fx = *state;
    struct tcluster x;
    tcluster_init(&x, "111122223333", "eu-west-1", "x", "CUSTOMER_ROUTED");
    struct target_result t = target("111122223333", "eu-west-1", TARGET_OK, &x.c, 1, 0);
    long long s1 = scan_of(fx->db, T0, &t, 1);

    struct target_result throttled =
        target("111122223333", "eu-west-1", TARGET_THROTTLED, &x.c, 0, 0);
    long long s2 = scan_of(fx->db, T0 + DAY, &throttled, 1);
    struct target_result denied =
        target("111122223333", "*", TARGET_ASSUME_ROLE_DENIED, NULL, 0, 0);
    scan_of(fx->db, T0 + 2 * DAY, &denied, 1);

    char a[32], b[32], expect[64];
    snprintf(expect, sizeof expect, "%s|1767225610", ll(a, s1));
    q_expect(fx->check, expect,
             "SELECT concat_ws('|', last_scan_id, extract(epoch FROM last_seen)::bigint) FROM "
             "egressscan.current_clusters",
             0, NULL);
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL", 0, NULL);
    /* the latest finalized scan is the third: its only row */
    q_expect(fx->check, "*|assume_role_denied",
             "SELECT concat_ws('|', region, status) FROM egressscan.coverage", 0, NULL);
    const char *p2[1] = {ll(b, s2)};
    q_expect(fx->check, "throttled|",
             "SELECT concat_ws('|', status, coalesce(clusters::text, '')) FROM "
             "egressscan.target_result WHERE scan_id = $1::bigint",
             1, p2);
}

static void test_absent_and_unknown_modes_are_kept_verbatim(void **state)
{
    struct fixture *fx = *state;
    struct tcluster none, future;
    tcluster_init(&none, "111122223333", "eu-west-1", "none", NULL);
    tcluster_init(&future, "111122223333", "eu-west-1", "future", "CUSTOMER_TELEPORTED");
    struct cluster both[2] = {none.c, future.c};
    struct target_result t = target("111122223333", "eu-west-1", TARGET_OK, both, 2, 0);
    scan_of(fx->db, T0, &t, 1);
    scan_of(fx->db, T0 + DAY, &t, 1); /* NULL to NULL is no change */

    const char *pn[1] = {none.arn}, *pf[1] = {future.arn};
    q_expect(fx->check, "t|AWS_MANAGED",
             "SELECT concat_ws('|', egress_mode IS NULL, egress_mode_effective) FROM "
             "egressscan.current_clusters WHERE cluster_arn = $1",
             1, pn);
    q_expect(fx->check, "CUSTOMER_TELEPORTED|CUSTOMER_TELEPORTED",
             "SELECT concat_ws('|', egress_mode, egress_mode_effective) FROM "
             "egressscan.current_clusters WHERE cluster_arn = $1",
             1, pf);
    q_expect(fx->check, "1|t",
             "SELECT concat_ws('|', count(*), bool_and(egress_mode IS NULL)) FROM "
             "egressscan.cluster_history WHERE cluster_arn = $1",
             1, pn);
    q_expect(fx->check, "1",
             "SELECT count(*) FROM egressscan.cluster_history WHERE cluster_arn = $1", 1, pf);
}

static void test_account_ids_keep_leading_zeros(void **state)
{
    struct fixture *fx = *state;
    long long scan = begin_scan(fx->db, T0);
    struct account a = {.id = "000000000042", .name = "Zeros", .ou_path = "Root"};
    struct err e;
    err_clear(&e);
    assert_int_equal(db_write_accounts(fx->db, scan, &a, 1, &e), 0);
    /* an account the results name first (fixed --accounts list) */
    struct tcluster x;
    tcluster_init(&x, "001234567890", "eu-west-1", "x", "AWS_MANAGED");
    struct target_result t1 = target("000000000042", "eu-west-1", TARGET_OK, NULL, 0, T0 + 1);
    struct target_result t2 = target("001234567890", "eu-west-1", TARGET_OK, &x.c, 1, T0 + 2);
    const struct target_result *ptrs[2] = {&t1, &t2};
    write_ok(fx->db, scan, ptrs, 2);
    finish_scan(fx->db, scan, T0 + 60, "succeeded");

    q_expect(fx->check, "000000000042,001234567890",
             "SELECT string_agg(account_id, ',' ORDER BY account_id) FROM egressscan.coverage", 0,
             NULL);
    q_expect(fx->check, "001234567890|",
             "SELECT concat_ws('|', account_id, coalesce(account_name, '')) FROM "
             "egressscan.current_clusters",
             0, NULL);
    q_expect(fx->check, "Zeros",
             "SELECT name FROM egressscan.account WHERE account_id = '000000000042'", 0, NULL);

    /* not 12 digits: refused */
    struct account bad = {.id = "42"};
    err_clear(&e);
    long long s2 = begin_scan(fx->db, T0 + DAY);
    assert_int_equal(db_write_accounts(fx->db, s2, &bad, 1, &e), -1);
    assert_string_equal(e.code, "23514");
    finish_scan(fx->db, s2, T0 + DAY + 60, "failed");

    /* a later scan that does not know the name keeps the known one */
    long long s3 = begin_scan(fx->db, T0 + 2 * DAY);
    struct account anon = {.id = "000000000042"};
    assert_int_equal(db_write_accounts(fx->db, s3, &anon, 1, &e), 0);
    q_expect(fx->check, "Zeros|Root",
             "SELECT concat_ws('|', name, ou_path) FROM egressscan.account "
             "WHERE account_id = '000000000042'",
             0, NULL);
    finish_scan(fx->db, s3, T0 + 2 * DAY + 60, "succeeded");
}

/* ---- scan runs whose process ended ---- */

static void wait_backend_gone(PGconn *check, int pid)
{
    char p[32];
    const char *params[1] = {ll(p, pid)};
    for (int i = 0; i < 400; i++) {
        if (q_int(check,
                  "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int) + "
                  "(SELECT count(*) FROM pg_locks WHERE pid = $1::int)",
                  1, params) == 0)
            return;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("backend %d did not exit", pid);
}

static void test_scan_of_an_ended_process_is_marked_aborted(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    err_clear(&e);
    struct db *a = connect_ok(fx);
    struct db *b = connect_ok(fx);
    long long sa = begin_scan(a, T0);

    /* a's process is alive: b leaves its scan alone */
    long long sb = 0;
    int aborted = -1;
    assert_int_equal(db_scan_begin(b, T0 + 1, NULL, &sb, &aborted, &e), 0);
    assert_int_equal(aborted, 0);
    char ida[32], idb[32];
    const char *pa[1] = {ll(ida, sa)}, *pb[1] = {ll(idb, sb)};
    q_expect(fx->check, "running", "SELECT status FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, pa);

    /* one running scan per connection */
    long long again = 0;
    err_clear(&e);
    assert_int_equal(db_scan_begin(b, T0 + 2, NULL, &again, NULL, &e), -1);
    assert_string_equal(e.code, "ScanInProgress");

    /* a ends without finishing */
    int backend = PQbackendPID(db_pgconn(a));
    db_close(a);
    wait_backend_gone(fx->check, backend);

    long long sc = 0;
    err_clear(&e);
    assert_int_equal(db_scan_begin(fx->db, T0 + 3, NULL, &sc, &aborted, &e), 0);
    assert_int_equal(aborted, 1);
    q_expect(fx->check, "aborted|process ended without finalizing|t",
             "SELECT concat_ws('|', status, error, finished_at IS NOT NULL) FROM "
             "egressscan.scans WHERE scan_id = $1::bigint",
             1, pa);
    q_expect(fx->check, "running", "SELECT status FROM egressscan.scans WHERE scan_id = $1::bigint",
             1, pb);
    /* the probe's lock on the dead scan was given back; the new scan's is held */
    char bk[32];
    const char *pk[1] = {ll(bk, PQbackendPID(db_pgconn(fx->db)))};
    q_expect(fx->check, "1",
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int", 1, pk);

    /* an aborted scan takes no results and cannot be finished */
    struct target_result t = target("111122223333", "eu-west-1", TARGET_OK, NULL, 0, T0 + 5);
    const struct target_result *ptrs[1] = {&t};
    err_clear(&e);
    assert_int_equal(db_write_targets(fx->db, sa, ptrs, 1, &e), -1);
    assert_string_equal(e.code, "ScanNotRunning");

    finish_scan(b, sb, T0 + 100, "succeeded");
    finish_scan(fx->db, sc, T0 + 100, "succeeded");
    q_expect(fx->check, "0",
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int", 1, pk);
    /* finished: the next scan on b begins fine and aborts nothing */
    assert_int_equal(db_scan_begin(b, T0 + 200, NULL, &again, &aborted, &e), 0);
    assert_int_equal(aborted, 0);
    db_close(b);
}

/* ---- escaping ---- */

static void test_special_characters_survive_copy(void **state)
{
    struct fixture *fx = *state;
    static const char name[] = "weird-name_1"; /* names follow AWS's rules (test_eks) */
    static const char tags[] =
        "{\"k\\tey\": \"va\\\\lue\\n\\\"q\\\" \xc3\xbc \xf0\x9f\x98\x80\", \"n\": \"\\\\N\"}";
    static const char raw[] = "{\n\t\"name\":\t\"we\\tird\\nname\",\r\n\"x\": [1, \"\\\\.\"]}";
    static const char message[] = "line1\nline2\r\n\ttab \\ backslash \\. \\N 'q' \"dq\"";
    static const char acct_name[] = "NULL";
    static const char acct_name2[] = "a\"b\\c{d},e 'f' \xc3\xbc";

    long long scan = begin_scan(fx->db, T0);
    struct account accts[2] = {{.id = "111122223333", .name = acct_name},
                               {.id = "444455556666", .name = acct_name2, .ou_path = "\\N"}};
    struct err e;
    err_clear(&e);
    assert_int_equal(db_write_accounts(fx->db, scan, accts, 2, &e), 0);
    const char *tg[1] = {"444455556666"};
    struct scp_policy scp = {
        .id = "p-weird", .name = acct_name2, .content = message, .targets = tg, .n_targets = 1};
    assert_int_equal(db_write_scps(fx->db, scan, &scp, 1, &e), 0);

    struct tcluster x;
    tcluster_init(&x, "111122223333", "eu-west-1", name, "CUSTOMER_ROUTED");
    x.c.tags_json = tags;
    x.c.raw_json = raw;
    x.c.platform_version = "\\N";
    x.c.kubernetes_version = "";
    x.c.vpc_id = "\\.";
    struct target_result t1 = target("111122223333", "eu-west-1", TARGET_OK, &x.c, 1, T0 + 1);
    struct target_result t2 = target("444455556666", "us-west-2", TARGET_ERROR, NULL, 0, T0 + 2);
    t2.error_code = "Weird\tCode";
    t2.error_message = message;
    const struct target_result *ptrs[2] = {&t1, &t2};
    write_ok(fx->db, scan, ptrs, 2);
    finish_scan(fx->db, scan, T0 + 60, "partial");

    const char *pa[1] = {x.arn};
    q_expect(fx->check, name, "SELECT cluster_name FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, x.arn, "SELECT cluster_arn FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, "va\\lue\n\"q\" \xc3\xbc \xf0\x9f\x98\x80",
             "SELECT tags->>E'k\\tey' FROM egressscan.current_clusters WHERE cluster_arn = $1", 1,
             pa);
    q_expect(fx->check, "\\N", "SELECT tags->>'n' FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, "we\tird\nname|\\.",
             "SELECT concat_ws('|', raw->>'name', raw->'x'->>1) FROM egressscan.cluster", 0, NULL);
    q_expect(fx->check, "\\N", "SELECT platform_version FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, "", "SELECT kubernetes_version FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, "\\.", "SELECT vpc_id FROM egressscan.current_clusters", 0, NULL);
    q_expect(fx->check, message,
             "SELECT error_message FROM egressscan.coverage WHERE region = 'us-west-2'", 0, NULL);
    q_expect(fx->check, "Weird\tCode",
             "SELECT error_code FROM egressscan.coverage WHERE region = 'us-west-2'", 0, NULL);
    q_expect(fx->check, acct_name,
             "SELECT account_name FROM egressscan.coverage WHERE region = 'eu-west-1'", 0, NULL);
    q_expect(fx->check, acct_name2,
             "SELECT account_name FROM egressscan.coverage WHERE region = 'us-west-2'", 0, NULL);
    q_expect(fx->check, "\\N",
             "SELECT ou_path FROM egressscan.account WHERE account_id = '444455556666'", 0, NULL);
    q_expect(fx->check, message, "SELECT content FROM egressscan.scan_scp", 0, NULL);
    q_expect(fx->check, acct_name2, "SELECT name FROM egressscan.scan_scp", 0, NULL);
}

/* ---- results that arrive late ---- */

static void test_late_result_does_not_rewind_current_state(void **state)
{
    struct fixture *fx = *state;
    struct db *older = connect_ok(fx);
    long long s_old = begin_scan(older, T0);
    long long s_new = begin_scan(fx->db, T0 + DAY);

    struct tcluster x, y;
    tcluster_init(&x, "111122223333", "eu-west-1", "x", "CUSTOMER_ROUTED");
    tcluster_init(&y, "111122223333", "eu-west-1", "y", "AWS_MANAGED");
    struct cluster xy[2] = {x.c, y.c};
    struct target_result newer = target("111122223333", "eu-west-1", TARGET_OK, xy, 2, T0 + DAY);
    const struct target_result *pn[1] = {&newer};
    write_ok(fx->db, s_new, pn, 1);

    /* the older scan's result for the same target arrives afterwards: x in another mode, no y */
    x.c.egress_mode = "AWS_MANAGED";
    struct target_result late = target("111122223333", "eu-west-1", TARGET_OK, &x.c, 1, T0 + 10);
    const struct target_result *pl[1] = {&late};
    write_ok(older, s_old, pl, 1);

    char id[32];
    const char *p[1] = {ll(id, s_new)};
    q_expect(fx->check, "x CUSTOMER_ROUTED,y AWS_MANAGED",
             "SELECT string_agg(cluster_name || ' ' || egress_mode, ',' ORDER BY cluster_name) "
             "FROM egressscan.current_clusters WHERE last_scan_id = $1::bigint",
             1, p);
    q_expect(fx->check, "2",
             "SELECT count(*) FROM egressscan.cluster_history WHERE valid_to IS NULL AND "
             "valid_from = to_timestamp(1767312000)",
             0, NULL);
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.cluster_history"), 2);
    /* the observation itself is kept */
    assert_int_equal(count_rows(fx->check, "SELECT count(*) FROM egressscan.cluster_observation"),
                     3);
    finish_scan(older, s_old, T0 + 60, "succeeded");
    finish_scan(fx->db, s_new, T0 + DAY + 60, "succeeded");
    db_close(older);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_errors_never_show_the_password, fresh_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connect_sets_search_path_and_application_name,
                                        fresh_setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_sets_tcp_keepalives_unless_the_url_does,
                                        fresh_setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_twice_applies_nothing_the_second_time,
                                        fresh_setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_migration_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migrations_apply_once, fresh_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_have_the_spec_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_target_costs_only_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_cluster_adds_no_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_change_closes_one_period_and_opens_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disappeared_cluster_is_closed_and_leaves_current,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_target_keeps_its_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_and_unknown_modes_are_kept_verbatim, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_account_ids_keep_leading_zeros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_of_an_ended_process_is_marked_aborted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_special_characters_survive_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_result_does_not_rewind_current_state, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
