/* drift_stage.h - the last stage of a scan (and of the worker that finalizes one): load the
 * scan's snapshot from the database, evaluate intent and drift, store the findings. */
#ifndef EGRESSSCAN_CMD_DRIFT_STAGE_H
#define EGRESSSCAN_CMD_DRIFT_STAGE_H

#include <time.h>

#include "common/err.h"
#include "common/model.h"
#include "common/report_model.h"

struct db;
struct policy;
struct drift_input;
struct drift_snapshot;

#define FINDING_KINDS 7
extern const char *const finding_kind_names[FINDING_KINDS];

struct drift_summary {
    long by_kind[FINDING_KINDS];
    long by_severity[REPORT_SEVERITIES]; /* critical, high, medium, low, info */
    long total;
    struct drift_counts counts; /* what this scan judged (its unverified clusters apart) */
    struct drift_counts fleet;  /* the fleet after the scan, as daily_compliance stores it */
    int scps_known;             /* judged with an SCP snapshot (its own or an earlier one) */
    int scps_read;              /* the scan read the SCPs itself */
    long long intent_scan_id;   /* whose SCP snapshot judged it; 0: none */
    int fleet_scope;            /* a fleet scan */
};

/* Evaluates drift for scan_id and writes its findings and compliance counts. -1 with err on a
 * database error (nothing of the findings is written then). */
int drift_stage_run(struct db *db, long long scan_id, const struct policy *policy, time_t now,
                    struct drift_summary *out, struct err *err);

/* Points in at the snapshot's arrays (no copies). */
void drift_input_from_snapshot(const struct drift_snapshot *snap, const struct policy *policy,
                               time_t now, struct drift_input *in);

/* Prints "  findings  12: 3 noncompliant_cluster, ..." and the compliance counts. */
void drift_summary_print(const struct drift_summary *s);

#endif
