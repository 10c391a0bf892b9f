/* drift.h - intent and drift (SPEC.md section 6): from the organization snapshot of a scan
 * (accounts, OU paths, SCPs), what was observed (clusters, coverage, mode changes) and the
 * optional declared policy, the findings a security team acts on, and the compliance counts.
 * Plain data in, findings out: no database, no network. */
#ifndef EGRESSSCAN_DRIFT_H
#define EGRESSSCAN_DRIFT_H

#include <stddef.h>
#include <time.h>

#include "common/err.h"
#include "common/model.h"
#include "intent/scp.h"

struct policy;

struct drift_input {
    const struct drift_account *accounts;
    size_t n_accounts;
    const struct scp_policy *scps; /* documents and their targets (root / OU / account ids) */
    size_t n_scps;
    int scps_known; /* 0: SCPs could not be read (or no Organizations): SCP intent unknown */
    const struct drift_cluster *clusters; /* the current clusters of the scanned accounts */
    size_t n_clusters;
    const struct drift_target *targets; /* this scan's coverage rows */
    size_t n_targets;
    /* Optional: the scan's ok coverage rows as a bitset of regions per account instead of rows
     * in targets (which then holds the others; no row in both), so that a large fleet's ok rows
     * need no record each. ok_regions is the region table the bitsets index (any order); one
     * entry per account. */
    const char *const *ok_regions;
    size_t n_ok_regions;
    const struct drift_ok_account *ok_accounts;
    size_t n_ok_accounts;
    const struct drift_change *changes;
    size_t n_changes;
    const struct policy *policy; /* NULL: no declared policy */
    time_t now;                  /* for exception expiry */
    const char *partition;       /* "aws" when NULL */
    const char *scanner_role;    /* the role name the scanner assumes (fix texts); NULL: default */
    /* Optional: called for every cluster judged (not for unverified ones); returning -1 stops
     * the evaluation with -1. */
    int (*on_judged)(void *ud, const struct drift_cluster *c, enum cluster_judgement j);
    void *judged_ud;
};

typedef int (*drift_emit_fn)(void *ud, const struct finding *f);

/* Computes every finding of the scan and calls emit for each (emit returning -1 stops with -1).
 * counts gets the compliance counts. -1 with err on ENOMEM or when emit failed. */
int drift_evaluate(const struct drift_input *in, drift_emit_fn emit, void *ud,
                   struct drift_counts *counts, struct err *err);

/* The SCP-backed intent for one account and region: the CreateCluster decision per mode
 * (EGRESS_MODES entries) and the UpdateClusterConfig decision for a change to CUSTOMER_ROUTED.
 * For the management account the decisions are those the SCPs would give if they applied, and
 * *exempt is set. `egressscan scps` prints this. -1 with err when the account is unknown. */
int drift_scp_intent(const struct drift_input *in, const char *account_id, const char *region,
                     struct scp_decision modes[EGRESS_MODES], struct scp_decision *update,
                     int *exempt, struct err *err);

/* The SCP-backed intent of many accounts and regions over one snapshot (`egressscan scps`): the
 * same decisions as drift_scp_intent, with every SCP document parsed once and each distinct
 * evaluation done once. Decisions are shared between the accounts whose evaluation is provably
 * the same (drift.c says which); the rest are evaluated one by one. Borrows in (and what it
 * points to), which must outlive it. NULL with err on ENOMEM. */
struct drift_intent_cache;
struct drift_intent_cache *drift_intent_cache_new(const struct drift_input *in, struct err *err);
/* As drift_scp_intent for account_id and region. -1 with err when the account is unknown. */
int drift_intent_cache_decide(struct drift_intent_cache *c, const char *account_id,
                              const char *region, struct scp_decision modes[EGRESS_MODES],
                              struct scp_decision *update, int *exempt, struct err *err);
/* Evaluations done and decisions reused so far (for a debug line and the tests). */
void drift_intent_cache_stats(const struct drift_intent_cache *c, size_t *evaluated,
                              size_t *reused);
void drift_intent_cache_free(struct drift_intent_cache *c); /* NULL: no-op */

/* The decision on the scanner's own call (eks:ListClusters as arn:aws:iam::ACCOUNT:role/ROLE;
 * role NULL: EgressScanReadOnly) in account_id and region under the SCPs of in: allowed for the
 * management account and when no SCP is in effect, unevaluable over an incomplete snapshot. -1
 * with err when the account is not in the snapshot. */
int drift_scanner_call(const struct drift_input *in, const char *account_id, const char *region,
                       const char *role, struct scp_decision *dec, struct err *err);

#endif
