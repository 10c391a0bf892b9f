/* db_internal.h - what the files of storage/ share behind db.h: the connection record and the
 * helpers that run a statement and turn a libpq failure into a struct err (SQLSTATE kept).
 * Also used by tests/integration/test_storage.c to look at the connection. */
#ifndef EGRESSSCAN_DB_INTERNAL_H
#define EGRESSSCAN_DB_INTERNAL_H

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/err.h"
#include "storage/db.h"
#include "storage/target_check.h"

/* Advisory lock keys. Migrations take the one-bigint form, running scans the two-int form
 * (class, scan id modulo 2^31): PostgreSQL keeps the two forms apart, and the class differs
 * from both halves of the migration key anyway. */
#define DB_MIGRATION_LOCK_KEY "7306934700486098945" /* 0x6567726573730001: "egress\0\1" */
#define DB_SCAN_LOCK_CLASS "1701278320"             /* 0x65677270: "egrp" */

/* The temp staging tables and the scan lock belong to the session: db_reconnect resets
 * staging_ready and takes the lock of locked_scan_id again. */
struct db {
    PGconn *conn;
    int staging_ready;        /* the temp staging tables exist on this connection */
    long long locked_scan_id; /* scan whose session advisory lock this connection holds; 0 none */
    double retry_bound_s;     /* how long db_retry waits for a lost connection to come back */
    long reconnects;          /* successful db_reconnect calls */
    long targets_rejected;    /* ok targets recorded as StorageRejected by db_write_targets */
    long tx_rejected;         /* of them, in the transaction under way (not yet committed) */
};

/* The libpq connection (borrowed). */
PGconn *db_pgconn(struct db *db);

/* Fills err from a failed result (r may be NULL: the connection's message is used). The code is
 * the SQLSTATE when there is one, else "DatabaseConnectionError" when the connection is gone, else
 * "DatabaseError"; the message is "what: primary message". Returns -1. */
int db_fail(struct db *db, const PGresult *r, const char *what, struct err *err);

/* Runs sql with n text parameters (NULL entries are SQL NULL). On success returns the result
 * (the caller PQclears it); on failure NULL with err filled and nothing to clear. */
PGresult *db_query(struct db *db, const char *sql, int n, const char *const *params,
                   const char *what, struct err *err);

/* Like db_query for statements whose rows are not needed: 0 or -1. */
int db_command(struct db *db, const char *sql, int n, const char *const *params, const char *what,
               struct err *err);

/* COPY FROM STDIN in text format. db_copy_field appends one field (backslash, tab, newline and
 * CR escaped; NULL as \N) followed by end ('\t' or '\n'); db_copy_flush sends the buffered rows
 * once there are 64 KiB of them (all of them when final); db_copy_start runs the COPY statement;
 * db_copy_finish ends it, aborting it with reason when not NULL (then always -1), and reports a
 * failure as "what: ...". */
int db_copy_field(struct buf *b, const char *s, char end);
int db_copy_flush(struct db *db, struct buf *b, int final, struct err *err);
int db_copy_start(struct db *db, const char *sql, struct err *err);
int db_copy_finish(struct db *db, const char *reason, const char *what, struct err *err);

/* db_write_targets inside the caller's transaction (which it neither begins nor ends; on -1 the
 * caller rolls back). db_prepare_target_writes must have run on the connection before, outside a
 * transaction: it creates the temporary staging tables once per connection. */
int db_prepare_target_writes(struct db *db, struct err *err);
int db_write_targets_tx(struct db *db, long long scan_id,
                        const struct target_result *const *results, size_t n, struct err *err);

/* The code of a target whose results the writer could not store: its row says why (the
 * SQLSTATE, or what db_target_check found), with status error. */
#define DB_STORAGE_REJECTED "StorageRejected"

/* Nonzero when err is a statement the database refused for what it was given (a SQLSTATE that
 * is not a lost connection): worth writing the batch again a target at a time. */
int db_refused_statement(const struct db *db, const struct err *err);

/* db_write_targets_tx a target at a time, each under a savepoint, inside the caller's
 * transaction: a target the database refuses is recorded as an error row (DB_STORAGE_REJECTED,
 * the SQLSTATE and message) and the others are written. -1 only when the connection is lost or
 * even the error row is refused. */
int db_write_targets_each_tx(struct db *db, long long scan_id,
                             const struct target_result *const *results, size_t n, struct err *err);

/* Transaction control. db_rollback ignores failures (it is used on error paths). */
int db_begin(struct db *db, struct err *err);
int db_commit(struct db *db, struct err *err);
void db_rollback(struct db *db);

#endif
