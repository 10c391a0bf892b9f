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

/* The SCPs attached at one level of the path. */
struct scp_level {
    const char *target_id; /* "r-ab12", "ou-…", or the account id */
    const struct scp_doc *const *docs;
    size_t n_docs;
};

struct scp_request {
    const char *action;     /* "eks:CreateCluster" or "eks:UpdateClusterConfig" */
    const char *account_id; /* resource account */
    const char *region;     /* resource region and aws:RequestedRegion */
    enum egress_mode mode;  /* eks:controlPlaneEgressMode; EGRESS_OMITTED: key absent */
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
    /* 1 when some statement on the path that matches the action conditions on
     * eks:controlPlaneEgressMode (the path restricts the egress mode at all). */
    int restricts_mode;
};

/* Evaluates req against the levels (root first, then OUs top-down, then the account), IAM's way:
 * an explicit Deny that matches anywhere wins; otherwise every level needs an Allow that
 * matches. Resources are matched against "arn:PARTITION:eks:REGION:ACCOUNT:cluster/<any name>": a
 * Deny counts only when its Resource covers every cluster name, an Allow when it covers some.
 * Conditions: String*, Arn*, Bool, Null, ...IfExists, ForAnyValue:/ForAllValues:; keys
 * eks:controlPlaneEgressMode and aws:RequestedRegion are evaluated; principal keys
 * (aws:Principal*, aws:userid, aws:username, aws:SourceIdentity, ...) make a statement
 * principal-dependent; any other key or operator makes it unevaluable. partition: "aws" if NULL.
 * The management account is not handled here (SCPs never apply to it: the caller knows). */
void scp_evaluate(const struct scp_level *levels, size_t n_levels, const struct scp_request *req,
                  const char *partition, struct scp_decision *out);

#endif
