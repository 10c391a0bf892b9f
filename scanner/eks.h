/* eks.h - EKS restJson1 calls: ListClusters (paginated) and DescribeCluster, and parsing the
 * DescribeCluster answer into a struct cluster (egress mode verbatim, NULL when absent). */
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

#endif
