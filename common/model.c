/* model.c - names of the model's enumerations as stored in the database. */
#include "common/model.h"

#include <stdlib.h>
#include <string.h>

int account_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n == 12;
}

int cluster_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 100)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            return 0;
    }
    return 1;
}

const char *target_status_name(enum target_status s)
{
    switch (s) {
    case TARGET_OK:
        return "ok";
    case TARGET_ASSUME_ROLE_DENIED:
        return "assume_role_denied";
    case TARGET_ACCESS_DENIED:
        return "access_denied";
    case TARGET_REGION_DISABLED:
        return "region_disabled";
    case TARGET_THROTTLED:
        return "throttled";
    case TARGET_SCP_DENIED:
        return "scp_denied";
    case TARGET_SUSPENDED:
        return "suspended";
    case TARGET_STATUSES:
        break;
    case TARGET_ERROR:
        return "error";
    }
    return "error";
}

static const char *const egress_names[EGRESS_MODES] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                                       "CUSTOMER_ISOLATED", "omitted"};

const char *egress_mode_name(enum egress_mode m)
{
    return m < EGRESS_MODES ? egress_names[m] : "unknown";
}

int egress_mode_parse(const char *value)
{
    if (!value)
        return EGRESS_OMITTED;
    for (int m = 0; m < EGRESS_OMITTED; m++)
        if (strcmp(value, egress_names[m]) == 0)
            return m;
    return -1;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static size_t cluster_strings_size(const struct cluster *c)
{
    return str_size(c->name) + str_size(c->arn) + str_size(c->egress_mode) + str_size(c->status) +
           str_size(c->kubernetes_version) + str_size(c->platform_version) +
           str_size(c->public_access_cidrs_json) + str_size(c->vpc_id) + str_size(c->tags_json) +
           str_size(c->created_at) + str_size(c->raw_json);
}

/* Copies s to *cursor and advances it; NULL stays NULL. */
static const char *put(char **cursor, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

struct target_result *target_result_copy(const struct target_result *r)
{
    size_t size = sizeof *r + r->n_clusters * sizeof(struct cluster) + str_size(r->account_id) +
                  str_size(r->region) + str_size(r->error_code) + str_size(r->error_message);
    for (size_t i = 0; i < r->n_clusters; i++)
        size += cluster_strings_size(&r->clusters[i]);
    struct target_result *t = malloc(size);
    if (!t)
        return NULL;
    *t = *r;
    struct cluster *cs = (struct cluster *)(t + 1);
    char *cursor = (char *)(cs + r->n_clusters);
    t->account_id = put(&cursor, r->account_id);
    t->region = put(&cursor, r->region);
    t->error_code = put(&cursor, r->error_code);
    t->error_message = put(&cursor, r->error_message);
    for (size_t i = 0; i < r->n_clusters; i++) {
        const struct cluster *src = &r->clusters[i];
        struct cluster *c = &cs[i];
        *c = *src;
        c->name = put(&cursor, src->name);
        c->arn = put(&cursor, src->arn);
        c->egress_mode = put(&cursor, src->egress_mode);
        c->status = put(&cursor, src->status);
        c->kubernetes_version = put(&cursor, src->kubernetes_version);
        c->platform_version = put(&cursor, src->platform_version);
        c->public_access_cidrs_json = put(&cursor, src->public_access_cidrs_json);
        c->vpc_id = put(&cursor, src->vpc_id);
        c->tags_json = put(&cursor, src->tags_json);
        c->created_at = put(&cursor, src->created_at);
        c->raw_json = put(&cursor, src->raw_json);
    }
    t->clusters = r->n_clusters ? cs : NULL;
    return t;
}

struct finding *finding_copy(const struct finding *f)
{
    size_t size = sizeof *f + str_size(f->kind) + str_size(f->severity) + str_size(f->account_id) +
                  str_size(f->region) + str_size(f->cluster_arn) + str_size(f->observed_mode) +
                  str_size(f->source) + str_size(f->details_json);
    struct finding *c = malloc(size);
    if (!c)
        return NULL;
    *c = *f;
    char *cursor = (char *)(c + 1);
    c->kind = put(&cursor, f->kind);
    c->severity = put(&cursor, f->severity);
    c->account_id = put(&cursor, f->account_id);
    c->region = put(&cursor, f->region);
    c->cluster_arn = put(&cursor, f->cluster_arn);
    c->observed_mode = put(&cursor, f->observed_mode);
    c->source = put(&cursor, f->source);
    c->details_json = put(&cursor, f->details_json);
    return c;
}

int target_status_failed(enum target_status s)
{
    return s != TARGET_OK && s != TARGET_SUSPENDED;
}

static const char *const org_scps_names[ORG_SCPS_STATES] = {"read", "disabled", "not_read",
                                                            "failed"};

const char *org_scps_name(enum org_scps s)
{
    return (int)s >= 0 && s < ORG_SCPS_STATES ? org_scps_names[s] : "failed";
}

int org_scps_parse(const char *name)
{
    for (int s = 0; name && s < ORG_SCPS_STATES; s++)
        if (strcmp(name, org_scps_names[s]) == 0)
            return s;
    return -1;
}

int org_scps_known(enum org_scps s)
{
    return s == ORG_SCPS_READ || s == ORG_SCPS_DISABLED;
}

const char *scan_status_of(int run_failed, long targets_failed, enum org_scps scps)
{
    if (run_failed)
        return "failed";
    if (targets_failed > 0 || scps == ORG_SCPS_FAILED)
        return "partial";
    return "succeeded";
}

const char *cluster_judgement_name(enum cluster_judgement j)
{
    static const char *const names[] = {"compliant", "noncompliant", "exempt", "unknown"};
    return (int)j >= 0 && j <= JUDGED_UNKNOWN ? names[j] : "unknown";
}
