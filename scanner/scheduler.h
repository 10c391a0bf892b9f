/* scheduler.h - the fleet scan: streams accounts (from Organizations or a fixed list) into work
 * on the HTTP engine — per account AssumeRole once, the regions (given or enabled ones), then
 * ListClusters pages and DescribeCluster for each cluster in every region — and hands out one
 * target_result per account x region as soon as it is complete. Memory stays bounded: accounts
 * wait in a small queue until a slot frees, and each finished target is freed after its
 * callback. */
#ifndef EGRESSSCAN_SCHEDULER_H
#define EGRESSSCAN_SCHEDULER_H

/* A target whose ListClusters answers exceed these, or repeat a nextToken, fails alone with
 * MalformedResponse (SPEC section 4): an endless or oversized listing must not hold the scan or
 * its memory. EKS allows 100 clusters per region by default; 100 names a page. */
#define SCHED_LIST_PAGES_MAX 1000
#define SCHED_CLUSTERS_MAX 10000

#include <signal.h>
#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

struct http_engine;
struct creds_chain;

struct scheduler_options {
    /* A fixed list of accounts to scan; NULL: every account Organizations lists. Without
     * org_role_arn the list alone is used (no Organizations call; SCPs NOT_READ). With
     * org_role_arn Organizations is read all the same (OU tree, accounts, SCPs, all handed to
     * the callbacks) but only the listed accounts are scanned; a listed account Organizations
     * does not list is scanned after discovery (with a warning, its OU unknown). */
    const char *const *accounts;
    size_t n_accounts;
    const char *const *exclude_accounts;
    size_t n_exclude;
    const char *ou;             /* only accounts under this OU (Organizations only) */
    const char *const *regions; /* NULL: each account's enabled regions (DescribeRegions) */
    size_t n_regions;
    const char *role_name; /* default "EgressScanReadOnly" */
    const char *external_id;
    const char *org_role_arn; /* assumed for Organizations calls; NULL: base credentials */
    const char *home_region;  /* STS and DescribeRegions; default "us-east-1" */
    const char *partition;    /* role ARNs, regions kept; default: home region's partition */
    int page_size;            /* ListClusters maxResults; default 100 */
    int max_active_accounts;  /* accounts worked on at once; default 256 */
    double as_of;             /* nonzero: timestamps start here instead of the clock */
    /* Discovery only (scan --enqueue): each account that would be scanned goes to
     * on_account_selected instead, and nothing is scanned. */
    int discover_only;
    /* A stop (SIGTERM, SIGINT): once *stop is nonzero (a signal handler sets it), no account is
     * started any more (the accounts waiting are handed out as not scanned, code
     * SCHED_INTERRUPTED, region "*"), Organizations discovery ends, and the requests under way
     * get stop_grace_s seconds to finish; then they are cut off and their targets handed out as
     * SCHED_INTERRUPTED too. An account with such a target gets no on_account_done. NULL: no
     * stop. */
    const volatile sig_atomic_t *stop;
    double stop_grace_s;
};

/* The longest role name (with its path) a role ARN is built from: IAM allows a 512-character
 * path and a 64-character name. scheduler_run refuses a longer one (ConfigError) rather than
 * assume a truncated ARN. */
#define SCHED_ROLE_NAME_MAX 576

/* The error code of a target or an account that a stop left unscanned. */
#define SCHED_INTERRUPTED "Interrupted"

struct scheduler_progress {
    long accounts_total; /* -1 while discovery is still listing */
    long accounts_done;
    /* -1 until every target is known: discovery has ended and each account's regions are known
     * (or it failed as a whole); then targets_done reaches it when the scan ends */
    long targets_total;
    long targets_done;
    long targets_failed;
    long clusters;
    double elapsed_s;
};

/* Every pointer handed to a callback is valid during the call only. */
struct scheduler_callbacks {
    void (*on_organization)(void *ud, const char *org_id, const char *management_account_id);
    void (*on_accounts)(void *ud, const struct account *accounts, size_t n);
    void (*on_org_unit)(void *ud, const struct org_unit *ou);
    void (*on_scp)(void *ud, const struct scp_policy *policy);
    /* One per account x region (or account x "*" for an account-level failure). Returning -1
     * stops the scan (e.g. the database is gone); the scheduler then drains and returns -1.
     * Besides the scanned targets: an account Organizations lists as not ACTIVE (SUSPENDED,
     * PENDING_CLOSURE, CLOSED, ...) that would be scanned otherwise gets one result, region "*",
     * TARGET_SUSPENDED, error_message "account status <STATUS>" (also with discover_only); a
     * region the SCPs deny eks:ListClusters to the scanner's role is not called and gets
     * TARGET_SCP_DENIED, error_code "DeniedBySCP", the message naming the SCP statements, the
     * role and the region (decided once the SCPs that could deny it were listed whole; never
     * for the management account, nor without Organizations, nor after the SCP side ended
     * disabled or failed: an explicit Deny read whole before such an end still counts). */
    int (*on_target)(void *ud, const struct target_result *r);
    /* With discover_only: one per account that a scan would scan (active, not excluded). */
    void (*on_account_selected)(void *ud, const char *account_id);
    /* After an account's last target was handed to on_target (not after a stop; not for a
     * suspended account, which is not scanned; not when a stop cut one of its targets short). */
    void (*on_account_done)(void *ud, const char *account_id);
    /* When the work on an account begins (its AssumeRole is asked for). */
    void (*on_account_started)(void *ud, const char *account_id);
    /* At most a few times per second, and once at the end. */
    void (*on_progress)(void *ud, const struct scheduler_progress *p);
    void *ud;
};

struct scheduler_result {
    /* How the SCPs were read: READ, DISABLED (SCPs off in the organization: none applies),
     * NOT_READ (a fixed account list without org_role_arn), FAILED (they could not be read, or
     * discovery failed). */
    enum org_scps scps_state;
    int scps_ok;     /* org_scps_known(scps_state): 0 when the SCP-backed intent is unknown */
    int stopped;     /* on_target asked to stop */
    int interrupted; /* opts.stop was raised: what was not done is handed out SCHED_INTERRUPTED */
    int cut_off;     /* ... and the grace ran out with requests under way */
    struct scheduler_progress progress;
};

/* Runs the whole scan on engine. Base credentials come from chain. Returns 0 when the scan ran
 * (targets may have failed: see their statuses), or was interrupted by opts.stop
 * (out->interrupted); -1 with err when it could not run at all (no credentials, Organizations
 * unreachable, the org role could not be assumed, stopped by on_target). */
int scheduler_run(struct http_engine *engine, struct creds_chain *chain,
                  const struct scheduler_options *opts, const struct scheduler_callbacks *cb,
                  struct scheduler_result *out, struct err *err);

/* The coverage status for an error met at a stage ("assume_role", "regions", "clusters"). A
 * refusal (AccessDenied and the like) whose message says an SCP denies it ("explicit deny in a
 * service control policy", or "no service control policy allows", case-insensitive) is
 * TARGET_SCP_DENIED at every stage, AssumeRole included. */
enum target_status scheduler_status_for(const char *stage, const struct err *e);

#endif
