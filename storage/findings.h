/* findings.h - what drift evaluation reads from and writes to PostgreSQL: the snapshot of one
 * scan (its accounts with OU paths, its SCPs, the current clusters, its coverage rows and the
 * mode changes it recorded), and the scan's findings with first_seen kept across scans. */
#ifndef EGRESSSCAN_FINDINGS_H
#define EGRESSSCAN_FINDINGS_H

#include <stddef.h>
#include <stdint.h>

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
    struct drift_target *targets; /* the scan's coverage rows (compact: those not ok) */
    size_t n_targets;
    /* compact only: the ok coverage rows, a bitset over ok_regions per account (drift_input) */
    const char *const *ok_regions; /* byte order */
    size_t n_ok_regions;
    struct drift_ok_account *ok_accounts; /* owned; ids are accounts[].id */
    size_t n_ok_accounts;
    uint64_t *ok_bits;            /* owned: the bitsets ok_accounts point into */
    struct drift_change *changes; /* modes this scan saw change */
    size_t n_changes;
    int scps_read;            /* the scan itself read the SCPs (read, or disabled: none) */
    int fleet_scope;          /* a fleet scan (not --accounts / --ou) */
    long long intent_scan_id; /* whose SCP snapshot is loaded (this scan or the latest that
                                 read them); 0: none, scps_known is then 0 */
    const char *scanner_role; /* options.role_name of the scan; NULL when not recorded */
    void *mem;                /* owned storage */
};

/* Records whether the scan could read the organization's SCPs (the SCP intent is unknown
 * otherwise). Called before finalization. db_set_scps_known(known) is db_set_scps_state with
 * read or not_read. */
int db_set_scps_state(struct db *db, long long scan_id, enum org_scps state, struct err *err);
int db_set_scps_known(struct db *db, long long scan_id, int known, struct err *err);

/* Records the scan's scope: targeted (--accounts / --ou on the command line) or fleet. */
int db_set_scan_scope(struct db *db, long long scan_id, int targeted, struct err *err);

/* Loads the snapshot of scan_id: its accounts (OU paths missing from the scan, e.g. a fixed
 * --accounts list, from the latest known), the SCPs of the scan or, when it did not read them,
 * of the latest finalized scan that did (intent_scan_id), the current clusters of the accounts it
 * covered (unverified when their target was not scanned ok by it), its coverage rows and mode
 * changes. Free with db_drift_snapshot_free. */
int db_load_drift_snapshot(struct db *db, long long scan_id, struct drift_snapshot *out,
                           struct err *err);
/* The same, for drift alone, whose memory does not grow with the fleet's targets: targets has
 * only the rows that are not ok, the ok ones are a bitset of regions per account (ok_accounts
 * over ok_regions, streamed a row at a time); nothing is held of size accounts x regions. */
int db_load_drift_snapshot_compact(struct db *db, long long scan_id, struct drift_snapshot *out,
                                   struct err *err);
void db_drift_snapshot_free(struct drift_snapshot *s);

/* The judgement of one cluster by the scan (current_clusters.compliance). */
struct cluster_judged {
    const char *cluster_arn;
    enum cluster_judgement judgement;
};

/* What the scan could judge: it resolves only what it judged again (SPEC section 5). */
struct findings_context {
    int scps_read;            /* the scan read the SCPs itself (read or disabled) */
    int have_policy;          /* it judged with a declared policy file */
    long long intent_scan_id; /* whose SCP snapshot judged it (0: none) */
    const struct cluster_judged *judgements;
    size_t n_judgements;
};

/* Writes the scan's findings, the judgements of its clusters and the fleet's compliance counts in
 * one transaction. A finding is identified across scans by (kind, account_id, region,
 * cluster_arn, source): one raised again keeps its finding_id and first_seen. One not raised
 * again is resolved only when the scan judged it again: its target scanned ok (tried again, for
 * unscanned_target) and what it rests on evaluated (the SCPs read, for a source scp:...; the
 * policy, for policy:...); a cluster no longer there resolves its findings as cluster_gone.
 * Anything else is carried over unchanged. A fleet scan also takes out of the fleet the targets
 * it did not try (account no longer listed, suspended, excluded, region no longer scanned): their
 * clusters leave the current views, their history periods close and their open findings resolve,
 * each with the reason. fleet (may be NULL) gets the fleet's compliance counts after the scan
 * (verified clusters by judgement, unverified apart): the row stored for daily_compliance.
 * ctx NULL: the scan read the SCPs, had a policy and judges nothing (tests). */
int db_write_findings_ctx(struct db *db, long long scan_id, const struct finding *findings,
                          size_t n, const struct findings_context *ctx, struct drift_counts *fleet,
                          struct err *err);
/* db_write_findings_ctx without a context; counts is not used any more (the stored counts are
 * the fleet's) and may be NULL. */
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

/* The findings scan_id raised, or, when scan_id is 0, the open findings of the fleet
 * (current_drift: each with the scan that last confirmed it; *scan_used gets the latest finalized
 * scan). Ordered by severity, kind, account, region, cluster. 0 findings is not an error; no
 * finalized scan at all is code "NoScan". */
int db_query_findings(struct db *db, long long scan_id, long long *scan_used, db_finding_fn cb,
                      void *ud, struct err *err);

#endif
