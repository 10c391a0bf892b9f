/* whatif.h - what attaching or detaching SCPs would change, from one scan's organization snapshot
 * (`egressscan scps --with FILE --attach-to TARGET`): the verdicts before and after per account x
 * region under the change, the clusters that could no longer be created, the in-place
 * remediations the change would block, the scanner calls it would deny, and the findings it would
 * open and close. Plain data in, plain data out: no database, no network. */
#ifndef EGRESSSCAN_WHATIF_H
#define EGRESSSCAN_WHATIF_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"
#include "intent/drift.h"
#include "intent/scp.h"

/* AWS's limit on an SCP document, in characters (white space included: the API stores the text as
 * sent). */
#define WHATIF_SCP_MAX_CHARS 5120

/* Validates text as an SCP document: at most WHATIF_SCP_MAX_CHARS characters, JSON, and the SCP
 * grammar scp_doc_parse accepts. 0, or -1 with err (code ERR_INVALID) "NAME:LINE:COLUMN: message"
 * where NAME is name (the file), the position that of the offending element. */
int whatif_check_scp(const char *name, const char *text, size_t len, struct err *err);

enum whatif_op { WHATIF_ATTACH, WHATIF_DETACH };

struct whatif_change {
    enum whatif_op op;
    /* attach: the id the proposed document goes by ("proposed-1"; changes with the same id are one
     * policy with several targets); detach: a policy id of the snapshot ("p-…") */
    const char *policy_id;
    const char *content;   /* attach: the document */
    const char *label;     /* attach: where it comes from (the file name) */
    const char *target_id; /* "r-…", "ou-…" or an account id; detach: NULL = every attachment */
};

/* Decisions as drift_scp_intent gives them: CreateCluster per mode, then UpdateClusterConfig to
 * CUSTOMER_ROUTED (index EGRESS_MODES). */
#define WHATIF_DECISIONS (EGRESS_MODES + 1)

/* One account x region under the change (every region its account was scanned ok in). */
struct whatif_target {
    const char *account_id;   /* borrowed from the input */
    const char *account_name; /* NULL when unknown */
    const char *region;
    int exempt; /* the management account: SCPs do not apply, the decisions are "if applied" */
    struct scp_decision before[WHATIF_DECISIONS];
    struct scp_decision after[WHATIF_DECISIONS];
    int changed; /* some verdict differs */
};

/* A current cluster whose mode no principal could create any more (it would become
 * predates_scp): it keeps running, but could not be created again. */
struct whatif_cluster {
    const struct drift_cluster *cluster; /* borrowed from the input */
    enum egress_mode mode;               /* as judged (absent: AWS_MANAGED) */
    size_t target;                       /* its row in targets */
};

/* A cluster whose open finding needs the in-place remediation (UpdateClusterConfig to
 * CUSTOMER_ROUTED): whether the SCPs permit it before and after. */
struct whatif_remediation {
    char *cluster_arn; /* owned */
    char *cluster_name;
    const char *account_id; /* borrowed from targets */
    const char *region;
    size_t target;
    enum scp_verdict before, after;
    int blocked; /* permitted (or to some principals) before, denied to every principal after */
};

/* The scanner's own eks:ListClusters (as its role) in one account x region. */
struct whatif_scanner {
    size_t target;
    struct scp_decision before, after;
    int denied; /* denied after, not before */
};

/* A finding the change would open or close (kinds noncompliant_cluster, unenforced_intent,
 * scp_conflict; identified by kind, reason, account, region and cluster). */
struct whatif_delta {
    int opens;         /* 1 opens, 0 closes */
    struct finding *f; /* owned (finding_copy) */
    char reason[48];   /* details.reason ("" when none) */
};

struct whatif_result {
    struct whatif_target *targets;
    size_t n_targets;
    struct whatif_cluster *predates;
    size_t n_predates;
    struct whatif_remediation *remediations;
    size_t n_remediations;
    struct whatif_scanner *scanner; /* the rows where the call is not allowed before or after */
    size_t n_scanner;
    struct whatif_delta *deltas; /* closes first, then opens; each sorted */
    size_t n_deltas;
    int blocks_remediation; /* some remediation blocked */
    int denies_scanner;     /* some scanner call denied by the change */
};

struct whatif_input {
    /* the snapshot as it is (SCPs known), with the declared policy or NULL (SCP-backed intent) */
    const struct drift_input *before;
    const struct whatif_change *changes;
    size_t n_changes;
    /* the open findings of the record (may be none): their noncompliant_cluster findings that
     * name the in-place remediation count as needing it, as do those of the evaluation before
     * and after the change */
    const struct finding *open;
    size_t n_open;
    const char *scanner_role; /* NULL: EgressScanReadOnly */
};

/* Computes what the changes would do. Validation errors (a target not in the snapshot, a policy
 * to detach that is not there or not attached to the target) are -1 with err code ERR_INVALID;
 * ENOMEM -1 with ERR_NOMEM. The result borrows from in->before: free it with whatif_result_free
 * (after a failure too) before the snapshot goes. */
int whatif_run(const struct whatif_input *in, struct whatif_result *out, struct err *err);
void whatif_result_free(struct whatif_result *r);

#endif
