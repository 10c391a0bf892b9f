/* sts.h - STS AssumeRole (signed) and AssumeRoleWithWebIdentity (unsigned): awsQuery requests on
 * the regional endpoint, XML answers parsed with libxml2; a per-role cache of assumed-role
 * credentials that refreshes them before they expire. */
#ifndef EGRESSSCAN_STS_H
#define EGRESSSCAN_STS_H

#include <stddef.h>
#include <time.h>

#include "common/err.h"

struct aws_credentials;
struct http_engine;
struct creds_chain;

struct sts_assume_role_params {
    const char *role_arn;     /* required */
    const char *session_name; /* default "egressscan" */
    const char *external_id;  /* optional */
    int duration_s;           /* 0: STS default (3600) */
    const char *region;       /* STS regional endpoint and signing region; default us-east-1 */
    const char *pace_key;     /* passed to the engine (the target account id); optional */
};

/* Called once: creds is a new reference (caller unrefs) or NULL with e set. */
typedef void (*sts_creds_fn)(void *ud, struct aws_credentials *creds, const struct err *e);

/* Submits AssumeRole signed with base on engine; done runs from http_engine_run().
 * -1 with err if the request could not be queued (done is then not called). */
int sts_assume_role_submit(struct http_engine *engine, struct aws_credentials *base,
                           const struct sts_assume_role_params *p, sts_creds_fn done, void *ud,
                           struct err *err);

/* Blocking AssumeRole (runs engine until done; not from inside a callback). */
struct aws_credentials *sts_assume_role(struct http_engine *engine, struct aws_credentials *base,
                                        const struct sts_assume_role_params *p, struct err *err);

/* Blocking AssumeRoleWithWebIdentity: an unsigned request carrying the OIDC token. */
struct aws_credentials *sts_assume_role_with_web_identity(struct http_engine *engine,
                                                          const char *role_arn,
                                                          const char *session_name,
                                                          const char *token, const char *region,
                                                          struct err *err);

/* Parses an AssumeRole / AssumeRoleWithWebIdentity response body into new credentials
 * (source names where they came from). NULL with err (MalformedResponse) on a bad document. */
struct aws_credentials *sts_parse_credentials(const char *xml, size_t len, const char *source,
                                              struct err *err);

/* Blocking GetCallerIdentity (signed with creds, on the regional endpoint of region; NULL:
 * us-east-1): the 12-digit account of the credentials into account (capacity >= 13). -1 with err
 * (the AWS error, or MalformedResponse when the answer has no 12-digit Account). */
int sts_get_caller_identity(struct http_engine *engine, struct aws_credentials *creds,
                            const char *region, char *account, struct err *err);

/* Parses a GetCallerIdentity answer: its Account (12 digits) into account (>= 13 bytes). */
int sts_parse_caller_identity(const char *xml, size_t len, char *account, struct err *err);

/* Cache of assumed-role credentials keyed by role ARN. Concurrent requests for the same role
 * share one AssumeRole call (single flight). Base credentials come from the chain. */
struct sts_cache;

struct sts_cache *sts_cache_new(struct http_engine *engine, struct creds_chain *chain,
                                struct err *err);
void sts_cache_free(struct sts_cache *c);

/* Gets credentials for p->role_arn valid for at least CREDS_REFRESH_WINDOW_S (or half their
 * lifetime when that is shorter): from the cache
 * (done is called before this returns), or by AssumeRole on the engine (done called from
 * http_engine_run()). -1 with err when nothing could be started (done not called). */
int sts_cache_get(struct sts_cache *c, const struct sts_assume_role_params *p, sts_creds_fn done,
                  void *ud, struct err *err);

/* Like sts_cache_get, after AWS refused stale (an ExpiredToken answer): never hands out stale
 * again. Concurrent refreshes of one role share one AssumeRole, and a refresh asked for after
 * another one already replaced stale gets that one's credentials without a new call. */
int sts_cache_refresh(struct sts_cache *c, const struct sts_assume_role_params *p,
                      const struct aws_credentials *stale, sts_creds_fn done, void *ud,
                      struct err *err);

/* The cached credentials for p->role_arn as a new reference, without waiting: NULL when none
 * are cached or they have expired. When they near expiry (CREDS_REFRESH_WINDOW_S, or half their
 * lifetime when that is shorter) it starts refreshing them in the background, so that requests
 * made later get fresh ones: credentials are refreshed before they expire also in the middle of
 * a long task. */
struct aws_credentials *sts_cache_current(struct sts_cache *c,
                                          const struct sts_assume_role_params *p);

/* Drops a role's entry (an account finished); wipes its secrets. */
void sts_cache_forget(struct sts_cache *c, const char *role_arn);

#endif
