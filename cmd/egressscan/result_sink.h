/* result_sink.h - a scan's results go to PostgreSQL on a thread of their own, so that the HTTP
 * event loop never waits for the database. The loop hands over copies (targets are batched, each
 * batch one transaction as before); the thread writes them in order. The queue is bounded: the
 * loop waits only when the database falls behind, so memory stays bounded too. */
#ifndef EGRESSSCAN_RESULT_SINK_H
#define EGRESSSCAN_RESULT_SINK_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

struct db;
struct result_sink;

/* Starts the writer thread on db, which belongs to it until result_sink_finish(). A write that
 * loses the connection is retried after reconnecting, within db's retry bound (db_retry); past
 * it the sink fails. NULL with err when the thread cannot be started (or the hidden
 * EGRESSSCAN_DB_BATCH_TARGETS is not a number from 1 to 1024). */
struct result_sink *result_sink_start(struct db *db, long long scan_id, struct err *err);

/* Each of these copies what it is given and returns at once (or when the queue has room again).
 * -1 once a write has failed (see result_sink_failed) or when out of memory: the scan should
 * stop, nothing more is written. */
int result_sink_accounts(struct result_sink *s, const struct account *accounts, size_t n);
int result_sink_org_unit(struct result_sink *s, const struct org_unit *ou);
int result_sink_scp(struct result_sink *s, const struct scp_policy *policy);
/* Targets are written in batches of up to 1024, or every second, whichever comes first. */
int result_sink_target(struct result_sink *s, const struct target_result *r);

/* 1 (with the first error copied to err when not NULL) once a write has failed. */
int result_sink_failed(struct result_sink *s, struct err *err);

/* Writes what is still batched and queued, stops the thread and frees s. busy_s gets the time the
 * thread spent in database calls. 0, or -1 with the first error (nothing after it was written). */
int result_sink_finish(struct result_sink *s, double *busy_s, struct err *err);

struct result_sink_stats {
    long targets_in, clusters_in;           /* handed to the sink (clusters of ok targets) */
    long targets_written, clusters_written; /* of them, committed */
    long writes_retried;                    /* writes run again after a reconnection */
};

/* result_sink_finish, and what was handed over and written (stats may be NULL). */
int result_sink_finish_stats(struct result_sink *s, double *busy_s, struct result_sink_stats *stats,
                             struct err *err);

#endif
