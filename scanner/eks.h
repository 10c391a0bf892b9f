/* eks.h - EKS restJson1 calls: ListClusters (paginated) and DescribeCluster, and parsing the
 * DescribeCluster answer into a struct cluster (egress mode verbatim, NULL when absent); a
 * cluster's updates (ListUpdates, DescribeUpdate), which date a change of its egress mode. */
#ifndef EGRESSSCAN_EKS_H
#define EGRESSSCAN_EKS_H

#include <stddef.h>

#include "common/err.h"
#include "common/model.h"

struct http_engine;
struct aws_credentials;

/* One ListClusters page: names and the token of the next page (NULL on the last page). Valid
 * only during the callback. */
struct eks_cluster_page {
    const char *const *names;
    size_t n;
    const char *next_token;
};

/* Called once per request. On error page is NULL and e is set (AWS code, status, request id). */
typedef void (*eks_list_fn)(void *ud, const struct eks_cluster_page *page, const struct err *e);
/* On success c is a heap cluster the callback owns (free() it: one allocation); else NULL. */
typedef void (*eks_describe_fn)(void *ud, struct cluster *c, const struct err *e);

/* GET /clusters?maxResults=N[&nextToken=T] on region's EKS endpoint, signed with creds.
 * max_results 1..100 (0: 100). pace_key: the account id. -1 with err if not queued. */
int eks_list_clusters_submit(struct http_engine *engine, struct aws_credentials *creds,
                             const char *region, const char *next_token, int max_results,
                             const char *pace_key, eks_list_fn done, void *ud, struct err *err);

/* GET /clusters/{name}. account_id (also the pace key) is the account asked: the answer is
 * accepted only when its name is name and its arn is exactly
 * arn:<partition of region>:eks:<region>:<account_id>:cluster/<name> (eks_check_identity); else
 * the callback gets MalformedResponse. NULL accepts any account id (tests). */
int eks_describe_cluster_submit(struct http_engine *engine, struct aws_credentials *creds,
                                const char *region, const char *name, const char *account_id,
                                eks_describe_fn done, void *ud, struct err *err);

/* Parsers, exposed for tests and fuzzing. The names and the token are one block: free(*names)
 * frees them all (*next_token points inside it; NULL on the last page). */
int eks_parse_list_clusters(const char *body, size_t len, char ***names, size_t *n,
                            char **next_token, struct err *err);
/* Parses a DescribeCluster body; the result is one allocation (free()). raw_json is the body
 * verbatim. Unexpected types (a number where a string belongs, null arrays) are errors. */
struct cluster *eks_parse_describe_cluster(const char *body, size_t len, struct err *err);
/* The parser also validates every field it keeps (SPEC section 4): the name obeys AWS's naming
 * rules (eks_cluster_name_valid), createdAt is epoch seconds or ISO 8601 and is normalised to
 * "YYYY-MM-DDTHH:MM:SS[.mmm]Z", status/versions/egress mode/vpc id are short tokens, at most 50
 * tags (keys 128, values 256 characters), 100 CIDRs, text valid UTF-8. ListClusters names obey
 * the naming rules, at most 100 a page, nextToken at most 4096 bytes. Violations: -1/NULL with
 * MalformedResponse naming the field (values quoted, cut, control characters replaced). */

/* 1 when s[0..len) is an EKS cluster name: 1-100 characters, ^[0-9A-Za-z][A-Za-z0-9_-]*$. */
int eks_cluster_name_valid(const char *s, size_t len);

/* 0 when c is the cluster that was asked for: c->name equals name and c->arn is exactly
 * arn:<partition of region>:eks:<region>:<account_id>:cluster/<name> (account_id NULL: any
 * 12 digits). Else -1 with MalformedResponse saying what differs. */
int eks_check_identity(const struct cluster *c, const char *region, const char *account_id,
                       const char *name, struct err *err);

/* ---- a cluster's updates: ListUpdates (ids, paginated) and DescribeUpdate ---- */

/* The update type and parameter of a controlPlaneEgressMode change (EKS service model). */
#define EKS_EGRESS_UPDATE_TYPE "ControlPlaneEgressUpdate"
#define EKS_EGRESS_UPDATE_PARAM "ControlPlaneEgressMode"
#define EKS_UPDATE_ID_MAX 64

/* One ListUpdates page: update ids and the token of the next page (NULL on the last page).
 * Valid only during the callback. */
struct eks_update_page {
    const char *const *ids;
    size_t n;
    const char *next_token;
};

/* What egressscan keeps of a DescribeUpdate answer (no allocation). */
struct eks_update {
    char id[EKS_UPDATE_ID_MAX + 1]; /* as asked (the answer must name it) */
    char type[65];                  /* "ControlPlaneEgressUpdate", "VersionUpdate", ... */
    char status[16];                /* InProgress, Failed, Cancelled or Successful */
    char egress_mode[65];           /* the ControlPlaneEgressMode parameter's value; "" when none */
    double created_at;              /* epoch seconds; 0 when the answer has none */
};

typedef void (*eks_list_updates_fn)(void *ud, const struct eks_update_page *page,
                                    const struct err *e);
/* u is valid during the callback only; NULL with e on error. */
typedef void (*eks_describe_update_fn)(void *ud, const struct eks_update *u, const struct err *e);

/* GET /clusters/{name}/updates?maxResults=N[&nextToken=T]. max_results 1..100 (0: 100).
 * account_id: the pace key. -1 with err if not queued. */
int eks_list_updates_submit(struct http_engine *engine, struct aws_credentials *creds,
                            const char *region, const char *name, const char *account_id,
                            const char *next_token, int max_results, eks_list_updates_fn done,
                            void *ud, struct err *err);

/* GET /clusters/{name}/updates/{update_id}: the answer is accepted only when its update.id is
 * update_id (else MalformedResponse). -1 with err if not queued. */
int eks_describe_update_submit(struct http_engine *engine, struct aws_credentials *creds,
                               const char *region, const char *name, const char *update_id,
                               const char *account_id, eks_describe_update_fn done, void *ud,
                               struct err *err);

/* 1 when s[0..len) is an update id as EKS gives them (UUIDs): 1-64 of A-Z a-z 0-9 -. */
int eks_update_id_valid(const char *s, size_t len);

/* Parsers, exposed for tests and fuzzing; validated like DescribeCluster (SPEC section 4).
 * ListUpdates: ids valid (eks_update_id_valid), at most 100 a page, nextToken at most 4096
 * bytes; *ids is one block as for eks_parse_list_clusters (free(*ids)). DescribeUpdate: the
 * update's id must be update_id (NULL: any valid id), status one of the four, type a short token,
 * params an array of at most 50 {type, value} string pairs (the egress value a short token of
 * A-Z a-z 0-9 _), createdAt epoch seconds or ISO 8601 in 1970..9999, text valid UTF-8.
 * Violations: -1 with MalformedResponse naming the field. */
int eks_parse_list_updates(const char *body, size_t len, char ***ids, size_t *n, char **next_token,
                           struct err *err);
int eks_parse_describe_update(const char *body, size_t len, const char *update_id,
                              struct eks_update *out, struct err *err);

#endif
