/* org.h - discovery through AWS Organizations (awsJson1_1): the management account, the OU tree,
 * every account with its OU path, and the SCPs with their targets. Discovery streams: accounts
 * are handed out page by page while the rest of the tree is still being listed. */
#ifndef EGRESSSCAN_ORG_H
#define EGRESSSCAN_ORG_H

#include "common/err.h"
#include "common/model.h"

struct http_engine;
struct aws_credentials;

/* Callbacks run from http_engine_run(); pointers are valid during the call only. Any may be
 * NULL. on_accounts gets accounts (with ou_path, parent_id, status, is_management) of one page.
 * The SCP side (ListPolicies, DescribePolicy, ListTargetsForPolicy) runs alongside the account
 * walk and ends on its own: on_scp reports every SCP only once all of them were read, right
 * before on_scps_done(ORG_SCPS_READ); a snapshot that could not be read whole is never handed
 * out. How it ended:
 * - ORG_SCPS_READ: every policy with its content and targets.
 * - ORG_SCPS_DISABLED: an SCP call answered PolicyTypeNotEnabledException (or
 *   PolicyTypeNotAvailableForOrganizationException): SCPs are off in the organization, none
 *   applies.
 * - ORG_SCPS_FAILED: anything else that stopped the reading: AccessDenied, throttling, 5xx or
 *   connection errors past the retries, a malformed answer, AWSOrganizationsNotInUseException
 *   (the account walk then fails too), or the walk failed or was stopped first. */
struct org_callbacks {
    void (*on_organization)(void *ud, const char *org_id, const char *management_account_id);
    void (*on_org_unit)(void *ud, const struct org_unit *ou);
    void (*on_accounts)(void *ud, const struct account *accounts, size_t n);
    void (*on_scp)(void *ud, const struct scp_policy *policy);
    /* Exactly once, last. e NULL on success; else why discovery failed (what was already handed
     * out stays valid). scps_ok is org_scps_known() of the SCP state (0 when discovery failed). */
    void (*on_done)(void *ud, const struct err *e, int scps_ok);
    void *ud;
    /* Exactly once, when the SCP side has finished (as soon as it failed, or once its last answer
     * is in; before or after the accounts, always before on_done). It and on_scp_progress come
     * after ud: initializers that predate them stay valid. */
    void (*on_scps_done)(void *ud, enum org_scps state);
    /* Optional, for deciding early (the scheduler), before on_scps_done: the SCP side as it goes.
     * with_targets 0: p's content is known, its targets not yet (p->n_targets 0); 1: its
     * targets are complete too. p NULL: every policy of the organization has been announced
     * with its content (ListPolicies and every DescribePolicy answered). Not a snapshot: only
     * on_scp and on_scps_done(ORG_SCPS_READ) say that the SCPs were read whole, and nothing
     * more comes once an SCP call failed. */
    void (*on_scp_progress)(void *ud, const struct scp_policy *p, int with_targets);
};

struct org_discovery;

/* Starts discovery on engine with creds (management or delegated-admin account). home_region
 * picks the partition's Organizations endpoint (NULL: us-east-1, the aws partition). ou_filter:
 * only accounts under this OU (or root) id are handed out; NULL for all (the whole OU tree and
 * all SCPs are listed in either case). -1 with err when nothing could be queued. */
struct org_discovery *org_discover_start(struct http_engine *engine, struct aws_credentials *creds,
                                         const char *home_region, const char *ou_filter,
                                         const struct org_callbacks *cb, struct err *err);
/* Stops discovery early (the scan stops): no further page is asked for and nothing more is
 * handed out; on_done still runs once, with why, when the requests in flight are back. */
void org_discover_stop(struct org_discovery *d, const struct err *why);
/* Frees; only after on_done ran (requests in flight refer to d). NULL is a no-op. */
void org_discovery_free(struct org_discovery *d);

#endif
