/* db.h - everything egressscan keeps in PostgreSQL: connection, embedded migrations, the scan
 * run lifecycle, the organization snapshot, and target results written whole or not at all with
 * change-based cluster history. Knows libpq; never curl. */
#ifndef EGRESSSCAN_DB_H
#define EGRESSSCAN_DB_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

struct db;

/* Connects with url (a libpq URI or conninfo), or, when url is NULL, with DATABASE_URL or else
 * libpq's own PG* variables and .pgpass. Sets a secure search_path (pg_catalog only; every
 * statement schema-qualifies egressscan.) and application_name. NULL with err (code: the
 * SQLSTATE when libpq gives one, else "DatabaseConnectionError"); the message never holds a
 * password. */
struct db *db_connect(const char *url, struct err *err);
void db_close(struct db *db);

/* Nonzero when url (a libpq URI or keyword/value conninfo) carries a password: the userinfo
 * password of postgresql://user:PASSWORD@host, or a password= keyword or URI parameter. 0 for
 * NULL and for text libpq cannot parse. */
int db_url_has_password(const char *url);

/* Nonzero when err, from a call on db, means the connection is gone rather than that the
 * statement was refused: SQLSTATE class 08, 57P01/57P02/57P03 (administrator or crash shutdown,
 * server starting), "DatabaseConnectionError" (ERR_DB_CONNECT), or libpq's connection-bad state.
 * An HTTP "ConnectionError" (AWS, a credential endpoint) is not a database failure. */
int db_connection_lost(const struct db *db, const struct err *err);

/* Connects again with the parameters of db_connect (the same libpq connection object, its
 * notice processor kept) and restores what the session carried: the secure search_path,
 * application_name, the session advisory lock of the scan this connection was running (taken
 * again; "ScanLockBusy" when another session holds it at that moment) and, lazily, the temp
 * staging tables. A scan that another session marked aborted meanwhile stays aborted: the writes
 * that follow are refused with "ScanNotRunning". 0, or -1 with err. */
int db_reconnect(struct db *db, struct err *err);

/* An operation that db_retry may run more than once: it must be whole or absent on failure and
 * harmless to run again after a failure whose COMMIT may nonetheless have happened. */
typedef int (*db_op_fn)(struct db *db, void *ud, struct err *err);

/* Runs op(db, ud, err). When it fails because the connection was lost (db_connection_lost),
 * reconnects with backoff (0.2 s doubling to 5 s) and runs it again, until it succeeds, fails
 * for another reason (returned as is: not retried), or the connection has been failing for the
 * retry bound; then -1 with the last connection error's code and a message that says the
 * database was unreachable and for how long. Logs each loss and reconnection (what names the
 * operation). *retries (may be NULL) gets how many times op ran again. */
int db_retry(struct db *db, const char *what, db_op_fn op, void *ud, int *retries, struct err *err);

/* The retry bound in seconds (default DB_RETRY_BOUND_S; 0: never retry). */
#define DB_RETRY_BOUND_S 60.0
void db_set_retry_bound(struct db *db, double seconds);
double db_retry_bound(const struct db *db);
/* How many times the connection was re-established. */
long db_reconnect_count(const struct db *db);
/* How many targets handed to db_write_targets with status ok it recorded as rejected instead
 * (status error, code StorageRejected: the database refused their results, or the writer's
 * checks did): the caller's count of failed targets grows by as many. */
long db_targets_rejected(const struct db *db);

/* Applies the pending embedded migrations (migrations/NNNN_name.sql, in order), each in its own
 * transaction, under a transaction-level advisory lock, recording version, name and SHA-256.
 * An applied migration whose embedded text changed is refused (code "MigrationChanged").
 * *applied gets how many were applied now (may be NULL). Idempotent. */
int db_migrate(struct db *db, int *applied, struct err *err);

/* Nonzero when every embedded migration is applied (scan refuses to run otherwise). */
int db_schema_current(struct db *db, struct err *err);

/* Starts a scan run (status 'running', started_at = started_at unix seconds; options is a JSON
 * object text describing the invocation, without secrets). First marks 'aborted' every running
 * scan whose process is gone (each running scan holds a session advisory lock on its id for its
 * lifetime; scans enqueued for workers have no such process and are left alone, see queue.h).
 * *aborted gets how many were marked (may be NULL). */
int db_scan_begin(struct db *db, double started_at, const char *options_json, long long *scan_id,
                  int *aborted, struct err *err);

/* The organization as discovered by this scan (called as pages arrive; may be called many
 * times). Upserts accounts (name, OU path, status, management flag, last seen in this scan). */
int db_write_accounts(struct db *db, long long scan_id, const struct account *accounts, size_t n,
                      struct err *err);
int db_write_org_units(struct db *db, long long scan_id, const struct org_unit *ous, size_t n,
                       struct err *err);
/* The SCP snapshot of this scan (documents and their targets), for drift evaluation. */
int db_write_scps(struct db *db, long long scan_id, const struct scp_policy *p, size_t n,
                  struct err *err);

/* Writes the results of n targets in one transaction (all or none): a coverage row per target;
 * for ok targets every cluster (upsert of the cluster's current state and raw JSON, a per-scan
 * observation, a new history interval only when the egress mode changed, and the intervals of
 * the target's clusters that are no longer there closed). A target that failed leaves its
 * clusters as they were (they stay current: nothing says they are gone). A target the scan
 * already stored is left out, with its clusters: a batch run again after a lost connection
 * (its COMMIT may have landed) is written once. A target twice in results refuses the batch
 * (InvalidInput: the caller's lists must be free of duplicates). */
int db_write_targets(struct db *db, long long scan_id, const struct target_result *const *results,
                     size_t n, struct err *err);
/* A target that cannot be stored costs only itself (SPEC section 4): one that fails the
 * writer's checks (a cluster not of its target, text that is not UTF-8, ...), or whose rows the
 * database refuses (any SQLSTATE but a lost connection: the batch is then written again a
 * target at a time under savepoints), is stored as a coverage row with status error, code
 * StorageRejected and the reason; the rest of the batch is written. */

/* The latest finalized scan (latest started_at among scans that succeeded or were partial), as
 * the coverage view defines it. -1 with code "NoScan" when there is none. */
int db_latest_finalized_scan(struct db *db, long long *scan_id, struct err *err);

struct scan_info {
    long long scan_id;
    char status[16];     /* running, succeeded, partial, failed, aborted */
    char started_at[32]; /* ISO 8601 UTC */
    int scps_known;      /* 1 read, 0 not readable (SCP intent unknown), -1 not recorded */
};

/* One scan's status, start and whether its SCPs were read. -1 with "NoScan" when unknown. */
int db_scan_info(struct db *db, long long scan_id, struct scan_info *out, struct err *err);

struct scan_totals {
    long long api_calls;
    long long throttled;
    long long retries;
};

/* Finalizes a scan: status 'succeeded', 'partial' or 'failed' (error: why, for failed), or
 * 'aborted' (stopped by a signal: error says so), the counters from its coverage rows and the
 * given totals, finished_at. */
int db_scan_finish(struct db *db, long long scan_id, double finished_at, const char *status,
                   const struct scan_totals *totals, const char *error, struct err *err);

#endif
