/* scan_end.h - what `scan` and the `worker` that finalizes an enqueued scan share: the counts a
 * scan's summary and metrics show, the end of a scan (drift stage, status, db_scan_finish under
 * its guard), the summary on standard output, the metrics file and the exit code. */
#ifndef EGRESSSCAN_CMD_SCAN_END_H
#define EGRESSSCAN_CMD_SCAN_END_H

#include <stddef.h>

#include "cmd/egressscan/drift_stage.h"
#include "common/model.h"
#include "storage/db.h"

struct policy;
struct http_engine_stats;

enum mode_bucket {
    MODE_AWS_MANAGED,
    MODE_CUSTOMER_ROUTED,
    MODE_CUSTOMER_ISOLATED,
    MODE_ABSENT,
    MODE_OTHER,
    MODE_BUCKETS
};

/* What a scan found, by coverage status and by egress mode. */
struct scan_counts {
    long by_status[TARGET_STATUSES];
    long by_mode[MODE_BUCKETS];
    long accounts; /* accounts scanned */
};

/* Counts one target and its clusters. */
void scan_counts_add(struct scan_counts *c, const struct target_result *r);

/* Targets not ok; all targets; all clusters. */
long scan_counts_failed(const struct scan_counts *c);
long scan_counts_targets(const struct scan_counts *c);
long scan_counts_clusters(const struct scan_counts *c);

/* How a scan ended. */
struct scan_end {
    const char *status; /* succeeded, partial, failed; aborted (scan_end_stopped) */
    struct drift_summary drift;
    int drift_ran;
    double drift_s;    /* time of the drift stage */
    double finished;   /* unix seconds */
    double duration;   /* since t0 (monotonic) */
    int finish_failed; /* db_scan_finish failed: finish_err says why */
    int finish_lost;   /* ... because the database stayed unreachable */
    struct err finish_err;
    /* the database during the scan, for the summary (set by scan_end_run or the caller) */
    int db_unreachable; /* it stayed unreachable past the retry bound */
    long reconnects, writes_retried;
    long unwritten_targets, unwritten_clusters; /* scanned but not stored */
};

/* Ends scan_id: when error_text is empty, the drift stage (a failure there goes into error_text,
 * cap bytes; findings already written by a lost attempt count as done), then the status (failed
 * with an error, partial with failed targets or SCPs that could not be read (scps), else
 * succeeded: scan_status_of) and db_scan_finish with totals (which
 * finalizes a running scan only: never twice). Both are retried across reconnections within the
 * connection's retry bound (db_retry; after an outage at most 5 s more for the end, the bound
 * restored after it). Times: as_of >
 * 0 shifts the clock as `scan --as-of` does; t0 is the monotonic start. */
void scan_end_run(struct db *db, long long scan_id, const struct policy *policy, double as_of,
                  double t0, char *error_text, size_t cap, const struct scan_counts *counts,
                  const struct scan_totals *totals, enum org_scps scps, int db_unreachable,
                  struct scan_end *out);

/* scan_end_run for the worker that finalizes an enqueued scan, whose results are all stored: when
 * the drift stage finds the database unreachable past the retry bound, the scan is not ended as
 * failed but left running for a later finalizer (this worker once the database is back, or the
 * next one): 1, with error_text saying why. Else as scan_end_run, 0. */
int scan_end_run_or_put_off(struct db *db, long long scan_id, const struct policy *policy,
                            double t0, char *error_text, size_t cap,
                            const struct scan_counts *counts, const struct scan_totals *totals,
                            enum org_scps scps, struct scan_end *out);

/* Ends scan_id stopped by a signal: no drift stage (the scan is incomplete), status aborted with
 * error_text (why, and what was stored), db_scan_finish retried within the retry bound. */
void scan_end_stopped(struct db *db, long long scan_id, double as_of, double t0,
                      const char *error_text, const struct scan_totals *totals,
                      struct scan_end *out);

/* The database of scan, enqueue and worker: the retry bound from EGRESSSCAN_DB_RETRY_SECONDS (0
 * to 86400 s, default DB_RETRY_BOUND_S), the connection, and a current schema. NULL (the reason
 * printed as "egressscan CMD: ...") with *exit_code EXIT_USAGE for a bad bound, else
 * EXIT_FAILED. */
struct db *scan_db_open(const char *url, const char *cmd, int *exit_code);

/* "scan N succeeded in X s", targets, clusters, API calls, database time, and the findings. */
void scan_summary_print(long long scan_id, const struct scan_end *end, const struct scan_counts *c,
                        const struct scan_totals *totals, double db_write_s, enum org_scps scps);

struct scan_config;

/* The scan row's options (a JSON object, never secrets): the sizes of the account and region
 * lists, the role assumed, whether the scan is targeted, concurrency and pid. NULL on ENOMEM. */
char *scan_options_json(const struct scan_config *cfg, int targeted, int concurrency);

/* Records how the scan came by the SCPs (db_retry-safe). 0, or -1 with err. */
int scan_record_scps(struct db *db, long long scan_id, enum org_scps scps, struct err *err);

/* The Prometheus text file (written atomically). engine (may be NULL: a worker's finalizer sums
 * the workers' totals from the database) adds this process's credential and retry-quota counts. */
void scan_metrics_write(const char *path, const struct scan_end *end, const struct scan_counts *c,
                        const struct scan_totals *totals, const struct http_engine_stats *engine,
                        double db_write_s);

/* The --fail-on threshold from its name (critical, high, medium, low, info); NULL: none (-1).
 * -1 also for a name that is not a severity (config_validate refuses those). */
int scan_end_fail_on(const char *severity);

/* 4 failed, 3 partial; 1 with fail_on_drift when the scan raised any finding, or with fail_on
 * (an enum report_severity, -1: none) when it raised one of that severity or a higher one; else
 * 0. */
int scan_end_exit_code(const struct scan_end *end, int fail_on_drift, int fail_on);

double scan_mono_now(void);
double scan_real_now(void);

#endif
