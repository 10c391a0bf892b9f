/* migrate.c - the schema migration runner: applies the migrations embedded at build time
 * (storage/migrations.h), each in its own transaction under one advisory lock, and records their
 * SHA-256 in egressscan.schema_migrations; refuses changed or unknown (newer) migrations. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "storage/db_internal.h"
#include "storage/migrations.h"

#define LOCK_SQL "SELECT pg_catalog.pg_advisory_xact_lock(" DB_MIGRATION_LOCK_KEY ")"

/* Lower-case hex SHA-256 of the migration's text. 0 or -1. */
static int checksum_of(const struct db_migration *m, char out[65], struct err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(m->sql, m->len, md, &n, EVP_sha256(), NULL) || n != 32)
        return err_set(err, "CryptoError", "cannot compute the SHA-256 of %s", m->file);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Creates the schema and the bookkeeping table when missing (inside the caller's locked
 * transaction). Existence is looked up first: CREATE ... IF NOT EXISTS would still need the
 * privilege to create, which a migrating role that owns only the schema may lack. */
static int ensure_bookkeeping(struct db *db, struct err *err)
{
    int rc = -1;
    PGresult *r = db_query(db,
                           "SELECT pg_catalog.to_regnamespace('egressscan') IS NOT NULL, "
                           "pg_catalog.to_regclass('egressscan.schema_migrations') IS NOT NULL",
                           0, NULL, "looking for the egressscan schema", err);
    if (!r)
        goto cleanup;
    int have_schema = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int have_table = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    if (!have_schema &&
        (db_command(db, "CREATE SCHEMA egressscan", 0, NULL, "creating schema egressscan", err) <
             0 ||
         db_command(db,
                    "COMMENT ON SCHEMA egressscan IS 'egressscan: EKS control plane egress mode "
                    "compliance. The views are the public interface; tables may change.'",
                    0, NULL, "creating schema egressscan", err) < 0))
        goto cleanup;
    if (!have_table &&
        (db_command(db,
                    "CREATE TABLE egressscan.schema_migrations ("
                    "version integer PRIMARY KEY CHECK (version > 0), "
                    "name text NOT NULL, "
                    "checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'), "
                    "applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())",
                    0, NULL, "creating egressscan.schema_migrations", err) < 0 ||
         db_command(db,
                    "COMMENT ON TABLE egressscan.schema_migrations IS 'Migrations applied by "
                    "egressscan migrate: file name and SHA-256 of its text (a changed file is "
                    "refused).'",
                    0, NULL, "creating egressscan.schema_migrations", err) < 0))
        goto cleanup;
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}

/* Compares what the database recorded with the embedded migrations. *pending gets how many
 * embedded migrations are not recorded. -1 with "MigrationChanged" when an applied file
 * differs, "SchemaTooNew" when the database knows a migration this binary does not. */
static int check_recorded_in(struct db *db, int from_view, size_t *pending, struct err *err);

static int check_recorded(struct db *db, size_t *pending, struct err *err)
{
    return check_recorded_in(db, 0, pending, err);
}

/* The same, reading the view schema_versions (migration 0005) when from_view: what a login of
 * egressscan_reader may read. */
static int check_recorded_in(struct db *db, int from_view, size_t *pending, struct err *err)
{
    int rc = -1;
    size_t matched = 0;
    PGresult *r = db_query(db,
                           from_view ? "SELECT version, name, checksum FROM "
                                       "egressscan.schema_versions ORDER BY version"
                                     : "SELECT version, name, checksum FROM "
                                       "egressscan.schema_migrations ORDER BY version",
                           0, NULL, "reading the applied migrations", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++) {
        long v = strtol(PQgetvalue(r, i, 0), NULL, 10);
        const char *name = PQgetvalue(r, i, 1), *recorded = PQgetvalue(r, i, 2);
        if (v < 1 || (size_t)v > db_migration_count) {
            err_set(err, "SchemaTooNew",
                    "the database has migration %ld (%s), newer than this egressscan knows "
                    "(up to %zu): use a newer egressscan",
                    v, name, db_migration_count);
            goto cleanup;
        }
        const struct db_migration *m = &db_migrations[v - 1];
        char sum[65];
        if (checksum_of(m, sum, err) < 0)
            goto cleanup;
        if (strcmp(sum, recorded) != 0) {
            err_set(err, "MigrationChanged",
                    "migration %s was changed after it was applied (recorded SHA-256 %.12s..., "
                    "embedded %.12s...): applied migrations are never edited; restore the file "
                    "and add a new migration instead",
                    m->file, recorded, sum);
            goto cleanup;
        }
        matched++;
    }
    *pending = db_migration_count - matched;
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}

/* Applies migration m in its own transaction unless another process applied it meanwhile.
 * *done gets 1 when it was applied here. */
static int apply_one(struct db *db, const struct db_migration *m, int *done, struct err *err)
{
    int rc = -1, in_tx = 0;
    PGresult *r = NULL;
    char sum[65], version[16];
    *done = 0;
    if (checksum_of(m, sum, err) < 0)
        goto cleanup;
    snprintf(version, sizeof version, "%d", m->version);
    const char *p[3] = {version, m->file, sum};

    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    if (db_command(db, LOCK_SQL, 0, NULL, "taking the migration lock", err) < 0)
        goto cleanup;
    r = db_query(db, "SELECT checksum FROM egressscan.schema_migrations WHERE version = $1", 1, p,
                 "reading egressscan.schema_migrations", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) > 0) {
        if (strcmp(PQgetvalue(r, 0, 0), sum) != 0) {
            err_set(err, "MigrationChanged",
                    "migration %s was changed after it was applied: applied migrations are "
                    "never edited",
                    m->file);
            goto cleanup;
        }
    } else {
        PQclear(r);
        /* The one multi-statement PQexec of the program: the text is our own embedded SQL. */
        r = PQexec(db->conn, m->sql);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
            char what[128];
            snprintf(what, sizeof what, "applying migration %s", m->file);
            db_fail(db, r, what, err);
            goto cleanup;
        }
        if (PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
            in_tx = PQtransactionStatus(db->conn) != PQTRANS_IDLE;
            err_set(err, ERR_INVALID,
                    "migration %s ends the transaction it runs in: migration files must not "
                    "contain BEGIN, COMMIT or ROLLBACK",
                    m->file);
            goto cleanup;
        }
        if (db_command(db,
                       "INSERT INTO egressscan.schema_migrations (version, name, checksum) "
                       "VALUES ($1::integer, $2, $3)",
                       3, p, "recording the migration", err) < 0)
            goto cleanup;
        *done = 1;
    }
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    rc = 0;

cleanup:
    PQclear(r);
    if (in_tx)
        db_rollback(db);
    return rc;
}

int db_migrate(struct db *db, int *applied, struct err *err)
{
    int rc = -1, in_tx = 0, n = 0;
    size_t pending = 0;
    if (applied)
        *applied = 0;

    /* First, under the lock: the bookkeeping exists and nothing recorded is changed or unknown.
     * Nothing is applied when an old migration was edited. */
    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    if (db_command(db, LOCK_SQL, 0, NULL, "taking the migration lock", err) < 0 ||
        ensure_bookkeeping(db, err) < 0 || check_recorded(db, &pending, err) < 0 ||
        db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;

    /* Each in order; one already recorded (maybe by a concurrent migrate) is skipped. */
    for (size_t i = 0; pending > 0 && i < db_migration_count; i++) {
        int done = 0;
        if (apply_one(db, &db_migrations[i], &done, err) < 0)
            goto cleanup;
        if (done) {
            log_info("db", "applied migration %s", db_migrations[i].file);
            n++;
        }
    }
    rc = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    if (applied)
        *applied = n;
    return rc;
}

int db_schema_current(struct db *db, struct err *err)
{
    int current = 0;
    size_t pending = 0;
    /* schema_versions when it exists (a reader may not read the table behind it) */
    PGresult *r =
        db_query(db,
                 "SELECT pg_catalog.to_regclass('egressscan.schema_migrations') IS NOT NULL, "
                 "pg_catalog.to_regclass('egressscan.schema_versions') IS NOT NULL",
                 0, NULL, "looking for egressscan.schema_migrations", err);
    if (!r)
        goto cleanup;
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        err_set(err, "SchemaOutdated",
                "the database has no egressscan schema yet: run 'egressscan migrate'");
        goto cleanup;
    }
    if (check_recorded_in(db, strcmp(PQgetvalue(r, 0, 1), "t") == 0, &pending, err) < 0)
        goto cleanup;
    if (pending > 0) {
        err_set(err, "SchemaOutdated", "%zu migration%s pending: run 'egressscan migrate'", pending,
                pending == 1 ? " is" : "s are");
        goto cleanup;
    }
    current = 1;

cleanup:
    PQclear(r);
    return current;
}
