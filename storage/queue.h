/* queue.h - the work queue of scale-out scans (SPEC.md section 8): `scan --enqueue` stores a scan's
 * options and one work item per account; workers claim items with FOR UPDATE SKIP LOCKED and a
 * lease, renew their leases while they work, write each account's results together with marking
 * its item done (after checking that the lease is still theirs), and the worker that sees every
 * item done finalizes the scan under its advisory lock. Knows libpq; never curl. */
#ifndef EGRESSSCAN_QUEUE_H
#define EGRESSSCAN_QUEUE_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"
#include "storage/db.h"

/* A work item is claimed this many times at most; the claim after that records the account as
 * not scanned (status error, code WorkItemAbandoned) instead of scanning it again. */
#define QUEUE_MAX_ATTEMPTS 3

struct queue_item {
    char account_id[16];
    int attempts; /* including this claim */
};

/* Stores the queue of scan_id (begun with db_scan_begin on this connection): its options (a JSON
 * object text; never secrets), one pending item per account (duplicates ignored) and the AWS
 * calls of the discovery, in one transaction; then gives up the scan's session advisory lock
 * (the scan now lives through its leases, not through this process). */
int queue_create(struct db *db, long long scan_id, const char *options_json,
                 const char *const *accounts, size_t n, const struct scan_totals *discovery,
                 struct err *err);

/* Marks aborted every running enqueued scan on which nothing happened (no claim, renewal,
 * release or completion) for its stale_after (24 h by default). *n gets how many (may be NULL). */
int queue_abort_stale(struct db *db, int *n, struct err *err);

/* Claims up to max claimable items (pending, or leased with an expired lease) of one running
 * enqueued scan: only_scan when > 0, else the oldest that has any. Each claim counts an attempt
 * and leases the item to owner for lease_s seconds. *scan_id and items[0..*n) get what was
 * claimed (*n = 0: nothing claimable). */
int queue_claim(struct db *db, long long only_scan, const char *owner, int lease_s, size_t max,
                long long *scan_id, struct queue_item *items, size_t *n, struct err *err);

/* The stored options of an enqueued scan (malloc'd JSON text the caller frees). */
char *queue_options(struct db *db, long long scan_id, struct err *err);

/* Extends every lease owner holds by lease_s seconds from now. *n gets how many (may be NULL). */
int queue_renew(struct db *db, const char *owner, int lease_s, int *n, struct err *err);

/* Gives back every item owner still holds (pending again, claimable at once; the claim does not
 * count as an attempt: the worker stopped, it did not die). */
int queue_release(struct db *db, const char *owner, int *n, struct err *err);

/* queue_release, except that the claims of the accounts in started[0..n_started) (of the batch
 * owner holds) keep their attempt: their work began and did not end written (a scan that
 * failed, results the database refused, a stop that cut them short), so that an item that keeps
 * failing reaches QUEUE_MAX_ATTEMPTS and is recorded WorkItemAbandoned. */
int queue_release_started(struct db *db, const char *owner, const char *const *started,
                          size_t n_started, int *n, struct err *err);

/* In one transaction: checks that owner still holds the item (scan_id, account_id), writes the
 * account's n target results (as db_write_targets), marks the item done and stores calls (the
 * AWS calls made since the worker's previous completion) on it. 0: written; 1: the lease was
 * lost (another worker holds the item, or another owner did it): nothing written; 2: the database
 * refused the results, even as errors (QUEUE_REFUSED): still leased; -1 with err.
 * An item owner itself already marked done counts as written and is not written again, so the
 * call may be run again (db_retry) after a COMMIT whose answer was lost. */
int queue_complete(struct db *db, long long scan_id, const char *account_id, const char *owner,
                   const struct target_result *const *results, size_t n,
                   const struct scan_totals *calls, struct err *err);

/* One account's results, for queue_complete_many. */
struct queue_completion {
    const char *account_id;
    const struct target_result *const *targets;
    size_t n;
    struct scan_totals calls; /* AWS calls since the worker's previous completion */
};

/* What queue_complete_many did with an account (lost[i]). */
#define QUEUE_WRITTEN 0
#define QUEUE_LEASE_LOST 1 /* another worker holds it now: dropped */
#define QUEUE_REFUSED 2    /* the database refused even its error rows: still leased to owner */

/* queue_complete for n accounts in one transaction (fewer round trips): the accounts whose lease
 * owner still holds are written and marked done (those owner already did count as written), the
 * others dropped. A refusal by the database (any SQLSTATE but a lost connection) costs only the
 * account it is about: the accounts are written again with each target under a savepoint (a
 * refused target is recorded error StorageRejected), and when that is refused too, each account
 * in a transaction of its own; one still refused stays leased to owner (QUEUE_REFUSED) for the
 * caller to give back (queue_release_started). lost[i] says what became of each (all
 * QUEUE_LEASE_LOST on -1: nothing more was written). 0 or -1 with err. Safe to run again after a
 * lost connection (db_retry). */
int queue_complete_many(struct db *db, long long scan_id, const char *owner,
                        const struct queue_completion *items, size_t n, int *lost, struct err *err);

/* Adds AWS calls that no completed item carries (e.g. of results dropped after a lost lease) to
 * the scan's discovery totals. */
int queue_add_calls(struct db *db, long long scan_id, const struct scan_totals *calls,
                    struct err *err);

/* The guard of finalization: 1 when this connection now holds the scan's session advisory lock,
 * the scan is running, enqueued, and every item is done: the caller finalizes it (db_scan_finish
 * releases the lock; a crash releases it with the connection, and another worker can finalize).
 * *totals gets the scan's AWS calls (discovery + every item). 0 when someone else finalizes or
 * finalized it, or items are left. */
int queue_begin_finalize(struct db *db, long long scan_id, struct scan_totals *totals,
                         struct err *err);

/* Gives up the lock queue_begin_finalize took (when finalizing could not go on). */
void queue_end_finalize(struct db *db, long long scan_id);

/* The running enqueued scans (all, or only_scan when > 0) whose items are all done, oldest first:
 * up to max ids into ids, *n how many. */
int queue_unfinalized(struct db *db, long long only_scan, long long *ids, size_t max, size_t *n,
                      struct err *err);

struct queue_scan_state {
    int exists;       /* the scan exists and was enqueued */
    char status[16];  /* its status */
    long items_total; /* items enqueued */
    long items_left;  /* items not done */
    double started_s; /* started_at, unix seconds */
};

/* One enqueued scan's status and progress. exists = 0 when it is not an enqueued scan. */
int queue_scan_state(struct db *db, long long scan_id, struct queue_scan_state *out,
                     struct err *err);

/* *yes = 1 when an enqueued scan ended (finalized or aborted) in the last within_s seconds. */
int queue_recently_ended(struct db *db, int within_s, int *yes, struct err *err);

/* How many enqueued scans are running (only_scan when > 0). */
int queue_open_scans(struct db *db, long long only_scan, long *n, struct err *err);

/* What a finalized enqueued scan found, for its summary: targets by status (enum target_status
 * order), accounts with a result, clusters observed by mode (AWS_MANAGED, CUSTOMER_ROUTED,
 * CUSTOMER_ISOLATED, absent, other) and whether the SCPs were read. */
struct queue_scan_counts {
    long by_status[TARGET_STATUSES];
    long accounts;
    long by_mode[5];
    int scps_known;
    int scps_state; /* enum org_scps; ORG_SCPS_NOT_READ when not recorded */
};
int queue_scan_counts(struct db *db, long long scan_id, struct queue_scan_counts *out,
                      struct err *err);

#endif
