/* findings.h - what drift evaluation reads from and writes to PostgreSQL: the snapshot of one
 * scan (its accounts with OU paths, its SCPs, the current clusters, its coverage rows and the
 * mode changes it recorded), and the scan's findings with first_seen kept across scans. */
#ifndef EGRESSSCAN_FINDINGS_H
#define EGRESSSCAN_FINDINGS_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

struct db;

struct drift_snapshot {
    struct drift_account *accounts;
    size_t n_accounts;
    struct scp_policy *scps;
    size_t n_scps;
    int scps_known;
    struct drift_cluster *clusters; /* current clusters of the scan's accounts */
    size_t n_clusters;
    struct drift_target *targets; /* the scan's coverage rows */
    size_t n_targets;
    struct drift_change *changes; /* modes this scan saw change */
    size_t n_changes;
    void *mem; /* owned storage */
};

/* Records whether the scan could read the organization's SCPs (the SCP intent is unknown
 * otherwise). Called before finalization. */
int db_set_scps_known(struct db *db, long long scan_id, int known, struct err *err);

/* Loads the snapshot of scan_id. Free with db_drift_snapshot_free. */
int db_load_drift_snapshot(struct db *db, long long scan_id, struct drift_snapshot *out,
                           struct err *err);
void db_drift_snapshot_free(struct drift_snapshot *s);

/* Writes the scan's findings and compliance counts in one transaction. A finding is identified
 * across scans by (kind, account_id, region, cluster_arn, source): one that persists keeps its
 * finding_id and first_seen; one that is not raised again is resolved by this scan. */
int db_write_findings(struct db *db, long long scan_id, const struct finding *findings, size_t n,
                      const struct drift_counts *counts, struct err *err);

/* A stored finding, as `egressscan drift` and the report read it (valid during the callback). */
struct stored_finding {
    long long finding_id;
    long long scan_id;
    struct finding f;
    const char *first_seen;         /* ISO 8601 */
    const char *allowed_modes_text; /* "{CUSTOMER_ROUTED}" as PostgreSQL prints text[] */
};

typedef int (*db_finding_fn)(void *ud, const struct stored_finding *f);

/* The findings of scan_id, or of the latest finalized scan when scan_id is 0 (*scan_used gets
 * which). Ordered by severity, kind, account, region, cluster. 0 findings is not an error; no
 * finalized scan at all is code "NoScan". */
int db_query_findings(struct db *db, long long scan_id, long long *scan_used, db_finding_fn cb,
                      void *ud, struct err *err);

#endif
