/* target_check.c - what the writer checks in a target result before it stages it: a cluster
 * belongs to its target (the ARN names the target's account, region and the cluster's name),
 * names follow AWS's rules, text is valid UTF-8 and bounded, timestamps are in a form the
 * database takes. Pure C, no libpq: the fuzz target links it alone. */
#include "storage/target_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/isotime.h"
#include "common/utf8.h"

#define SHORT_MAX 64               /* status, versions, mode, vpc id, region */
#define CIDRS_MAX (16 * 1024)      /* the JSON text of publicAccessCidrs */
#define TAGS_MAX (64 * 1024)       /* the JSON text of the tags */
#define RAW_MAX (16 * 1024 * 1024) /* the DescribeCluster body (the engine's cap) */
#define ARN_MAX 2048

/* A text field: NULL, or valid UTF-8 of at most max bytes. */
static int text_ok(const char *s, size_t max)
{
    if (!s)
        return 1;
    size_t n = strnlen(s, max + 1);
    return n <= max && utf8_valid(s, n);
}

/* arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME for the target's account and region. */
static int arn_matches(const char *arn, const struct target_result *t, const char *name)
{
    if (strncmp(arn, "arn:", 4) != 0)
        return 0;
    const char *p = arn + 4;
    size_t pl = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
    if (pl == 0 || pl > 32 || strncmp(p + pl, ":eks:", 5) != 0)
        return 0;
    p += pl + 5;
    size_t rl = strlen(t->region), al = strlen(t->account_id);
    if (strncmp(p, t->region, rl) != 0 || p[rl] != ':')
        return 0;
    p += rl + 1;
    if (strncmp(p, t->account_id, al) != 0 || strncmp(p + al, ":cluster/", 9) != 0)
        return 0;
    return strcmp(p + al + 9, name) == 0;
}

/* created_at as the writer's SQL reads it: epoch seconds, or ISO 8601. */
static int created_ok(const char *s)
{
    if (!s)
        return 1;
    size_t d = strspn(s, "0123456789");
    if (d > 0 && d <= 12) {
        const char *p = s + d;
        if (*p == '.')
            p += 1 + strspn(p + 1, "0123456789");
        if (*p == '\0')
            return 1;
    }
    time_t t;
    return strlen(s) <= 64 && iso8601_parse(s, &t) == 0 && t >= 0;
}

int db_target_check(const struct target_result *t, struct err *err)
{
    if (!t || !t->account_id || !t->region)
        return err_set(err, ERR_INVALID, "a target has no account or region");
    if (!account_id_valid(t->account_id) || !text_ok(t->region, SHORT_MAX) ||
        strspn(t->region, "abcdefghijklmnopqrstuvwxyz0123456789-*") != strlen(t->region) ||
        !t->region[0])
        return err_set(err, ERR_INVALID, "a target's account or region is malformed");
    if ((int)t->status < TARGET_OK || t->status >= TARGET_STATUSES)
        return err_set(err, ERR_INVALID, "target %s/%s has an unknown status %d", t->account_id,
                       t->region, (int)t->status);
    if (!isfinite(t->scanned_at) || t->scanned_at < 0 || t->scanned_at > 253402300799.0)
        return err_set(err, ERR_INVALID, "target %s/%s has no valid scan time", t->account_id,
                       t->region);
    if (!text_ok(t->error_code, ERR_CODE_MAX) || !text_ok(t->error_message, 4 * ERR_MSG_MAX))
        return err_set(err, ERR_PARSE, "target %s/%s: its error is not valid UTF-8 text",
                       t->account_id, t->region);
    if (t->status != TARGET_OK)
        return 0;
    if (t->n_clusters > 0 && !t->clusters)
        return err_set(err, ERR_INVALID, "target %s/%s has no cluster array", t->account_id,
                       t->region);
    for (size_t k = 0; k < t->n_clusters; k++) {
        const struct cluster *c = &t->clusters[k];
        const char *why = NULL;
        if (!c->name || !c->arn)
            why = "has no name or ARN";
        else if (!cluster_name_valid(c->name, strnlen(c->name, 101)))
            why = "has a name outside AWS's rules";
        else if (strnlen(c->arn, ARN_MAX + 1) > ARN_MAX || !arn_matches(c->arn, t, c->name))
            why = "has an ARN that is not arn:<partition>:eks:<region>:<account>:cluster/<name> "
                  "of its target";
        else if (!text_ok(c->egress_mode, SHORT_MAX) || !text_ok(c->status, SHORT_MAX) ||
                 !text_ok(c->kubernetes_version, SHORT_MAX) ||
                 !text_ok(c->platform_version, SHORT_MAX) || !text_ok(c->vpc_id, SHORT_MAX) ||
                 !text_ok(c->public_access_cidrs_json, CIDRS_MAX) ||
                 !text_ok(c->tags_json, TAGS_MAX) || !text_ok(c->raw_json, RAW_MAX))
            why = "has a field that is not valid UTF-8 or is too long";
        else if (!created_ok(c->created_at))
            why = "has a creation time that is neither epoch seconds nor ISO 8601";
        if (why)
            return err_set(err, ERR_PARSE, "target %s/%s: cluster %zu %s", t->account_id, t->region,
                           k, why);
    }
    return 0;
}
