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

/* Starts the writer thread on db, which belongs to it until result_sink_finish(). NULL with err
 * when the thread cannot be started. */
struct result_sink *result_sink_start(struct db *db, long long scan_id, struct err *err);

/* Each of these copies what it is given and returns at once (or when the queue has room again).
 * -1 once a write has failed (see result_sink_failed) or when out of memory: the scan should
 * stop, nothing more is written. */
int result_sink_accounts(struct result_sink *s, const struct account *accounts, size_t n);
int result_sink_org_unit(struct result_sink *s, const struct org_unit *ou);
int result_sink_scp(struct result_sink *s, const struct scp_policy *policy);
/* Targets are written in batches of up to 256, or every second, whichever comes first. */
int result_sink_target(struct result_sink *s, const struct target_result *r);

/* 1 (with the first error copied to err when not NULL) once a write has failed. */
int result_sink_failed(struct result_sink *s, struct err *err);

/* Writes what is still batched and queued, stops the thread and frees s. busy_s gets the time the
 * thread spent in database calls. 0, or -1 with the first error (nothing after it was written). */
int result_sink_finish(struct result_sink *s, double *busy_s, struct err *err);

#endif
