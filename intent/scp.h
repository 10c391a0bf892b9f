/* scp.h - Service Control Policy evaluation for the EKS egress mode: parses SCP documents and
 * decides, with IAM's rules, whether a CreateCluster (or UpdateClusterConfig) request carrying a
 * given egress mode is permitted in an account and region, given the SCPs attached along the
 * account's path (root, every OU, the account). No database, no network: plain data in, verdict
 * out. Anything it cannot evaluate is reported as such, never guessed. */
#ifndef EGRESSSCAN_SCP_H
#define EGRESSSCAN_SCP_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

enum scp_verdict {
    SCP_ALLOWED = 0,         /* every principal may make the request */
    SCP_DENIED,              /* no principal may (explicit Deny, or a level without an Allow) */
    SCP_PRINCIPAL_DEPENDENT, /* some principals may, others not (condition on principal keys) */
    SCP_UNEVALUABLE          /* something on the path could not be evaluated: see reason */
};

const char *scp_verdict_name(enum scp_verdict v); /* "allowed", "denied", ... */

/* A parsed SCP document. Parsing never loses a document: a malformed one is kept and makes every
 * evaluation that reaches it unevaluable (scp_doc_error says why). */
struct scp_doc;

/* Parses content (the policy JSON). policy_id ("p-…") names it in decisions. NULL only on ENOMEM.
 */
struct scp_doc *scp_doc_parse(const char *policy_id, const char *content, size_t len);
void scp_doc_free(struct scp_doc *d);
/* Why the document cannot be evaluated ("line 3: Statement must be an object or array"), or NULL.
 */
const char *scp_doc_error(const struct scp_doc *d);
const char *scp_doc_id(const struct scp_doc *d);
/* 1 when the document could deny action wherever it is attached: it has a Deny statement whose
 * Action / NotAction covers action (whatever its Resource and Condition), or it cannot be
 * evaluated (malformed, NULL). 0: attaching it anywhere can only allow more. */
int scp_doc_may_deny(const struct scp_doc *d, const char *action);

/* 0 when decisions over d cannot tell two accounts of the same length apart: no Resource or
 * NotResource pattern and no aws:PrincipalArn condition value of d holds a literal digit. Those
 * are the only patterns matched against text holding the request's account id (the cluster ARN,
 * the principal's ARN); with no literal digit, a 12-digit account's digits are only ever consumed
 * by wildcards, so any 12-digit account matches exactly where another does. What still names the
 * account is how a decision spells it: a principal example ("arn:PART:iam::ACCOUNT:...") and
 * "no Allow at ACCOUNT" for the account's level. 1 otherwise (the decisions may differ per
 * account); 0 for a malformed document or NULL (evaluation reads nothing of them). */
int scp_doc_reads_account(const struct scp_doc *d);

/* The SCPs attached at one level of the path. */
struct scp_level {
    const char *target_id; /* "r-ab12", "ou-…", or the account id */
    const struct scp_doc *const *docs;
    size_t n_docs;
};

struct scp_request {
    const char *action;     /* "eks:CreateCluster", "eks:UpdateClusterConfig", "eks:ListClusters" */
    const char *account_id; /* resource account */
    const char *region;     /* resource region and aws:RequestedRegion */
    enum egress_mode mode;  /* eks:controlPlaneEgressMode; EGRESS_OMITTED: key absent */
    /* The principal making the request (aws:PrincipalArn), e.g.
     * "arn:aws:iam::111122223333:role/EgressScanReadOnly": conditions on aws:PrincipalArn with
     * String* / Arn* operators (...IfExists, negations, Null included) are evaluated against it.
     * NULL: any principal (every principal key makes a statement principal-dependent). Other
     * principal keys (aws:PrincipalTag/..., aws:PrincipalAccount, ...) stay principal-dependent
     * either way. */
    const char *principal_arn;
};

#define SCP_MAX_STATEMENTS 8

struct scp_decision {
    enum scp_verdict verdict;
    /* The statements that decided it, "p-abcd1234#Sid" (or "p-abcd1234#2" for a statement
     * without Sid, its 0-based index): the matching Deny statements; for a level without a
     * matching Allow, "no Allow at <target_id>"; for an allowed request, the Allow per level. */
    char statements[SCP_MAX_STATEMENTS][96];
    size_t n_statements;
    /* For principal-dependent and unevaluable results: the condition or the reason, e.g.
     * "ArnNotLike aws:PrincipalArn arn:aws:iam::*:role/Admin" or "unknown operator
     * NumericFoo in p-1#S1". */
    char reason[256];
    /* For a principal-dependent verdict on a request naming no principal, when conditions on
     * aws:PrincipalArn make it so: one principal of the account that may make the request and
     * one that may not (empty when the verdict comes from other principal keys). */
    char allowed_principal[160];
    char denied_principal[160];
    /* 1 when some statement on the path that matches the action conditions on
     * eks:controlPlaneEgressMode (the path restricts the egress mode at all). */
    int restricts_mode;
};

/* Evaluates req against the levels (root first, then OUs top-down, then the account), IAM's way:
 * an explicit Deny that matches anywhere wins; otherwise every level needs an Allow that
 * matches. The request's resource is built as IAM builds it, from the action's resource types in
 * the Service Authorization Reference (scp.c names them): actions without a resource type
 * (eks:CreateCluster, eks:ListClusters, ec2:DescribeRegions) act on "*", and only a Resource
 * pattern matching "*" (or a NotResource that does not) applies to them; cluster actions
 * (eks:UpdateClusterConfig, eks:DescribeCluster) act on
 * "arn:PARTITION:eks:REGION:ACCOUNT:cluster/<any name>": a Deny counts only when its Resource
 * covers every cluster name, an Allow when it covers some. Any other action is unevaluable. Arn*
 * operators compare the six components of an ARN separately, each with * and ? wildcards.
 * Conditions: String*, Arn*, Bool, Null, ...IfExists, ForAnyValue:/ForAllValues:; keys
 * eks:controlPlaneEgressMode and aws:RequestedRegion are evaluated; principal keys
 * (aws:Principal*, aws:userid, aws:username, aws:SourceIdentity, ...) make a statement
 * principal-dependent; any other key or operator makes it unevaluable. partition: "aws" if NULL.
 * The management account is not handled here (SCPs never apply to it: the caller knows). */
void scp_evaluate(const struct scp_level *levels, size_t n_levels, const struct scp_request *req,
                  const char *partition, struct scp_decision *out);

/* ---- an organization's SCPs, parsed once and indexed by the root / OU / account they are
 * attached to ---- */

struct scp_attachment {
    const char *target_id; /* borrowed from the scp_policy */
    size_t doc_index;      /* keeps the order of the policies within a target */
};

/* On the caller's storage; the fields are scp.c's. */
struct scp_index {
    struct scp_doc **docs; /* one per policy; NULL when not parsed (attached to nothing wanted) */
    size_t n_docs;
    struct scp_attachment *att;      /* sorted by target id */
    const struct scp_doc **att_docs; /* parallel to att: a target's run is a scp_level's docs */
    size_t n_att;
};

/* Parses every attached policy of scps (or, with only_ids, those attached to one of them) and
 * indexes the attachments. The index borrows the target ids: scps must outlive it. 0, or -1
 * with err on ENOMEM (ix is then empty). Free with scp_index_free, after a failure too. */
int scp_index_build(struct scp_index *ix, const struct scp_policy *scps, size_t n_scps,
                    const char *const *only_ids, size_t n_only, struct err *err);
/* The documents attached to target_id, in the order of the policies (*n may be 0). Borrowed
 * from ix. */
const struct scp_doc *const *scp_index_find(const struct scp_index *ix, const char *target_id,
                                            size_t *n);
/* Frees what ix holds and empties it (the struct itself is the caller's). */
void scp_index_free(struct scp_index *ix);

/* Levels on a path: the root, OUs nested at most five deep (the AWS limit), the account. */
#define SCP_MAX_LEVELS 8

/* An account's path through the organization as scp_evaluate wants it. */
struct scp_path {
    struct scp_level levels[SCP_MAX_LEVELS];
    size_t n_levels;
    /* The first level the index has no SCP for, NULL when every level has one. With SCPs
     * enabled AWS keeps at least one on every root, OU and account: a level without any means
     * an incomplete snapshot (or SCPs not in effect), and an evaluation over it is meaningless. */
    const char *missing;
    char ids[512]; /* the ids the levels name */
};

/* Fills path with the levels of account_id under ou_id_path ("r-ab12/ou-ab12-1111/ou-ab12-2222"):
 * the root, each OU top-down, then the account, each with the documents ix has attached to it
 * (borrowed from ix). 0, or -1 with err (ERR_INVALID) when the path is empty or longer than
 * SCP_MAX_LEVELS - 1 ids or than path->ids holds. */
int scp_levels_for(const struct scp_index *ix, const char *ou_id_path, const char *account_id,
                   struct scp_path *path, struct err *err);

#endif
