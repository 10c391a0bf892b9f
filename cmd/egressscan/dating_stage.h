/* dating_stage.h - after a scan's results are written and before drift: the mode changes the
 * scan saw, dated from EKS (scanner/dating.c) on the scan's HTTP engine, recorded in
 * cluster_history (storage/mode_dating.c). */
#ifndef EGRESSSCAN_CMD_DATING_STAGE_H
#define EGRESSSCAN_CMD_DATING_STAGE_H

struct db;
struct http_engine;
struct creds_chain;
struct dating_options;
struct dating_stats;

/* Changed clusters dated per scan at most; the rest stay undated (update_status NULL). */
#define DATING_CLUSTERS_MAX 5000

/* Dates the changes of scan_id. Best effort: a failure (database, a cluster's lookup) is logged
 * and leaves those periods undated; the scan goes on. stats (may be NULL) gets the counts. */
void dating_stage_run(struct db *db, long long scan_id, struct http_engine *engine,
                      struct creds_chain *chain, const struct dating_options *opts,
                      struct dating_stats *stats);

#endif
