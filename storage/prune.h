/* prune.h - retention of the raw per-scan rows (`egressscan prune --older-than 90d`): what a scan
 * saw target by target and cluster by cluster is deleted once the scan is old enough, while
 * everything the public views, the history and the findings are made of stays. Knows libpq. */
#ifndef EGRESSSCAN_PRUNE_H
#define EGRESSSCAN_PRUNE_H

#include "common/err.h"

struct db;

/* One scan whose raw rows were (or, in a dry run, would be) deleted. Valid during the callback. */
struct prune_scan {
    long long scan_id;
    const char *started_at; /* ISO 8601 UTC */
    const char *status;     /* succeeded, partial, failed, aborted */
    long long observations; /* cluster_observation rows */
    long long target_rows;  /* target_result rows with status ok */
    long long work_items;   /* work_item rows of an enqueued scan (its scan_queue row goes too) */
};

struct prune_totals {
    long long scans;
    long long observations;
    long long target_rows;
    long long work_items;
    long long kept_scan_id; /* the latest finalized scan, kept whole whatever its age; 0: none */
};

typedef int (*db_prune_fn)(void *ud, const struct prune_scan *s);

/* Deletes the raw rows of every scan that started before cutoff (unix seconds), is not running
 * and is not the latest finalized scan (the one the views coverage and current_drift show):
 * its cluster observations (cluster_observation) and its ok coverage rows (target_result with
 * status ok; their counts stay in the scan's row, the clusters in the history) and, for a scan
 * made by `scan --enqueue`, its work queue (scan_queue and its work_item rows: which worker did
 * which account; the scan's row keeps the totals, and the view work_queue, which shows the
 * progress of enqueued scans, no longer lists it). Kept, always:
 * the scan rows (view scans), compliance counts (daily_compliance), findings and which scan
 * raised them (current_drift, drift --scan), the coverage rows that are not ok (what could not
 * be scanned, and why), the organization and SCP snapshots, the clusters and their history
 * (current_clusters, cluster_history). No other view changes.
 *
 * One transaction per scan, oldest first, so that an interrupted prune leaves every scan either
 * whole or pruned and can simply be run again (a pruned scan has nothing left to delete and is
 * not reported again). With dry_run nothing is deleted and the counts say what would be. cb
 * (may be NULL) is called after each scan; a nonzero return stops the prune (code "Stopped").
 * totals (may be NULL) gets the sums. -1 with err (SQLSTATE kept) on a database failure; the
 * scans reported before it stay pruned. */
int db_prune(struct db *db, double cutoff, int dry_run, db_prune_fn cb, void *ud,
             struct prune_totals *totals, struct err *err);

#endif
