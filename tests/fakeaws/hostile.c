/* hostile.c - member accounts that answer EKS as an attacker would (--hostile): another
 * account's ARN, no ARN, names over AWS's limit, timestamps that are not, error messages cut
 * mid-character by a byte-bounded copy, listings that never end. Tests of SPEC section 4 drive
 * it; an honest account's answers are never touched. */
#include <stdlib.h>
#include <string.h>

#include "tests/fakeaws/fakeaws.h"

const char *const fa_hostile_names[FA_H_COUNT] = {
    [FA_H_NONE] = "",
    [FA_H_FOREIGN_ARN] = "foreign_arn",
    [FA_H_NO_ARN] = "no_arn",
    [FA_H_LONG_NAME] = "long_name",
    [FA_H_BAD_CREATED] = "bad_created",
    [FA_H_ERROR_UTF8] = "error_utf8",
    [FA_H_LOOP_TOKEN] = "loop_token",
};

/* 150 characters that are all allowed in a name: only the length is wrong */
const char fa_hostile_long_name[] =
    "long-name-0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789";

int hostile_parse(const char *spec, const struct fa_fleet *f, struct fa_hostile *out,
                  struct err *err)
{
    memset(out, 0, sizeof *out);
    if (!spec || !spec[0] || strcmp(spec, "none") == 0)
        return 0;
    out->kind = calloc(f->n_accounts, 1);
    if (!out->kind)
        return err_set(err, ERR_NOMEM, "out of memory");
    out->n_accounts = f->n_accounts;
    const char *p = spec;
    while (*p) {
        char *end;
        long idx = strtol(p, &end, 10);
        if (end == p || *end != ':' || idx < 1 || (size_t)idx >= f->n_accounts) {
            hostile_cleanup(out);
            return err_set(err, ERR_INVALID,
                           "--hostile: \"%.40s\": expected INDEX:KIND, INDEX 1..%zu", p,
                           f->n_accounts - 1);
        }
        const char *k = end + 1;
        size_t kl = strcspn(k, ",");
        int kind = 0;
        for (int i = 1; i < FA_H_COUNT; i++)
            if (strlen(fa_hostile_names[i]) == kl && strncmp(k, fa_hostile_names[i], kl) == 0)
                kind = i;
        if (!kind) {
            hostile_cleanup(out);
            return err_set(err, ERR_INVALID,
                           "--hostile: unknown kind \"%.*s\" (foreign_arn, no_arn, long_name, "
                           "bad_created, error_utf8, loop_token)",
                           (int)(kl < 40 ? kl : 40), k);
        }
        out->kind[idx] = (unsigned char)kind;
        p = k + kl;
        if (*p == ',')
            p++;
    }
    return 0;
}

void hostile_cleanup(struct fa_hostile *h)
{
    free(h->kind);
    memset(h, 0, sizeof *h);
}

int hostile_kind(const struct fa_hostile *h, long a)
{
    if (!h->kind || a < 0 || (size_t)a >= h->n_accounts)
        return FA_H_NONE;
    return h->kind[a];
}

/* Replaces the value of the first "key": in b (a string up to its closing quote, or a number up
 * to the next ',' or '}') with value (JSON text), or removes the member when value is NULL. */
static int patch(struct buf *b, const char *key, const char *value)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    char *at = strstr(b->data, k);
    if (!at)
        return 0;
    char *v = at + strlen(k), *end;
    if (*v == '"')
        end = strchr(v + 1, '"') + 1;
    else
        end = v + strcspn(v, ",}");
    struct buf out;
    buf_init(&out);
    size_t head = value ? (size_t)(v - b->data) : (size_t)(at - b->data);
    int rc = buf_append(&out, b->data, head);
    if (value)
        rc |= buf_puts(&out, value);
    else if (*end == ',')
        end++; /* the member and its comma */
    rc |= buf_puts(&out, end);
    if (rc < 0 || !out.data) {
        buf_cleanup(&out);
        return -1;
    }
    buf_reset(b);
    rc = buf_puts(b, out.data);
    buf_cleanup(&out);
    return rc < 0 ? -1 : 0;
}

/* Another honest account's AWS_MANAGED cluster in region ri: its ARN as a JSON string. */
static void victim_arn(const struct fa_fleet *f, const struct fa_hostile *h, long a, size_t ri,
                       char *out, size_t cap)
{
    for (size_t step = 1; step < f->n_accounts; step++) {
        size_t v = ((size_t)a + step) % f->n_accounts;
        if (hostile_kind(h, (long)v) != FA_H_NONE)
            continue;
        size_t t = v * f->n_regions + ri;
        for (uint32_t i = f->target_start[t]; i < f->target_start[t + 1]; i++) {
            if (f->clusters[i].mode != FA_AWS_MANAGED)
                continue;
            snprintf(out, cap, "\"arn:aws:eks:%s:%s:cluster/%s\"", f->regions[ri],
                     f->accounts[v].id, f->clusters[i].name);
            return;
        }
    }
    snprintf(out, cap, "\"arn:aws:eks:%s:000000000000:cluster/none\"", f->regions[ri]);
}

int hostile_patch_cluster(const struct fa_fleet *f, const struct fa_hostile *h, int k, long a,
                          size_t ri, struct buf *b)
{
    switch (k) {
    case FA_H_FOREIGN_ARN: {
        char arn[256];
        victim_arn(f, h, a, ri, arn, sizeof arn);
        if (patch(b, "arn", arn) < 0)
            return -1;
        if (strstr(b->data, "\"controlPlaneEgressMode\":"))
            return patch(b, "controlPlaneEgressMode", "\"CUSTOMER_ROUTED\"");
        return patch(b, "vpcId", "\"vpc-0\",\"controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"");
    }
    case FA_H_NO_ARN:
        return patch(b, "arn", NULL);
    case FA_H_BAD_CREATED:
        return patch(b, "createdAt", "\"yesterday-ish\"");
    default:
        return 0;
    }
}

int hostile_render_long(const struct fa_fleet *f, long a, size_t ri, struct buf *b)
{
    buf_reset(b);
    fa_printf(b,
              "{\"cluster\":{\"name\":\"%s\",\"arn\":\"arn:aws:eks:%s:%s:cluster/%s\","
              "\"createdAt\":1700000000,\"version\":\"1.31\",\"status\":\"ACTIVE\","
              "\"resourcesVpcConfig\":{\"controlPlaneEgressMode\":\"AWS_MANAGED\"}}}",
              fa_hostile_long_name, f->regions[ri], f->accounts[a].id, fa_hostile_long_name);
    return b->data ? 0 : -1;
}
