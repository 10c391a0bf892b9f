/* updates.c - what happened to chosen clusters between two scans (--updates): a mode changed by a
 * Successful, Failed or InProgress ControlPlaneEgressUpdate, a cluster replaced under the same
 * name, a cluster created since; and the updates EKS lists for them (ListUpdates, DescribeUpdate).
 * --before serves the same fleet as it was before, so that a test scans it twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakeaws/fakeaws.h"

const char *const fa_update_kind_names[FA_U_COUNT] = {
    [FA_U_NONE] = "",
    [FA_U_SUCCESSFUL] = "successful",
    [FA_U_FAILED] = "failed",
    [FA_U_IN_PROGRESS] = "in_progress",
    [FA_U_REPLACED] = "replaced",
    [FA_U_CREATED] = "created",
};

/* Updates are dated in 2026, before any scan a test makes: 2026-01-01T00:00:00Z plus up to 300
 * days, from the cluster's hash. */
#define UPDATES_EPOCH 1767225600L
#define UPDATES_SPAN (300L * 86400L)

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void updates_cleanup(struct fa_updates *u)
{
    free(u->cluster);
    free(u->kind);
    free(u->before);
    memset(u, 0, sizeof *u);
}

int updates_parse(const char *spec, int before, struct fa_fleet *f, struct fa_updates *out,
                  struct err *err)
{
    memset(out, 0, sizeof *out);
    out->before_mode = before;
    if (!spec || !spec[0] || strcmp(spec, "none") == 0)
        return 0;
    size_t cap = 1;
    for (const char *q = spec; *q; q++)
        cap += *q == ',';
    uint64_t *keys = calloc(cap, sizeof *keys); /* index << 8 | kind */
    if (!keys)
        return err_set(err, ERR_NOMEM, "out of memory");
    size_t n = 0;
    const char *p = spec;
    int rc = -1;
    while (*p) {
        char *end;
        long idx = strtol(p, &end, 10);
        if (end == p || *end != ':' || idx < 0 || (size_t)idx >= f->n_clusters) {
            err_set(err, ERR_INVALID, "--updates: \"%.40s\": expected INDEX:KIND, INDEX 0..%zu", p,
                    f->n_clusters ? f->n_clusters - 1 : 0);
            goto out;
        }
        const char *k = end + 1;
        size_t kl = strcspn(k, ",");
        int kind = 0;
        for (int i = 1; i < FA_U_COUNT; i++)
            if (strlen(fa_update_kind_names[i]) == kl &&
                strncmp(k, fa_update_kind_names[i], kl) == 0)
                kind = i;
        if (!kind) {
            err_set(err, ERR_INVALID,
                    "--updates: unknown kind \"%.*s\" (successful, failed, in_progress, replaced, "
                    "created)",
                    (int)(kl < 40 ? kl : 40), k);
            goto out;
        }
        int mode = f->clusters[idx].mode;
        if (kind <= FA_U_IN_PROGRESS && mode == FA_CUSTOMER_ROUTED) {
            err_set(err, ERR_INVALID,
                    "--updates: cluster %ld is already CUSTOMER_ROUTED (an update cannot leave "
                    "it: replace it)",
                    idx);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (keys[i] >> 8 == (uint64_t)idx) {
                err_set(err, ERR_INVALID, "--updates: cluster %ld named twice", idx);
                goto out;
            }
        keys[n++] = (uint64_t)idx << 8 | (uint64_t)kind;
        p = k + kl;
        if (*p == ',')
            p++;
    }
    out->cluster = calloc(n, sizeof *out->cluster);
    out->kind = calloc(n, 1);
    out->before = calloc(n, 1);
    if (!out->cluster || !out->kind || !out->before) {
        err_set(err, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        out->cluster[i] = (uint32_t)(keys[i] >> 8);
    qsort(out->cluster, n, sizeof *out->cluster, cmp_u32);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            if ((uint32_t)(keys[j] >> 8) == out->cluster[i])
                out->kind[i] = (unsigned char)(keys[j] & 0xff);
        struct fa_cluster *c = &f->clusters[out->cluster[i]];
        out->before[i] = c->mode;
        if (before) {
            c->hidden = out->kind[i] == FA_U_CREATED;
            continue;
        }
        switch (out->kind[i]) {
        case FA_U_SUCCESSFUL:
        case FA_U_FAILED:
        case FA_U_IN_PROGRESS:
            c->mode = FA_CUSTOMER_ROUTED;
            break;
        case FA_U_REPLACED:
            c->mode = c->mode == FA_CUSTOMER_ROUTED ? FA_AWS_MANAGED : FA_CUSTOMER_ROUTED;
            break;
        default:
            break; /* created: as generated */
        }
    }
    out->n = n;
    f->updates = out;
    rc = 0;
out:
    free(keys);
    if (rc < 0)
        updates_cleanup(out);
    return rc;
}

/* A UUID from h. */
static void uuid(uint64_t h, char *out)
{
    uint64_t a = fa_mix(h), b = fa_mix(h ^ 0x75706461ULL);
    snprintf(out, 40, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, ((unsigned)a & 0x0fff) | 0x4000,
             ((unsigned)(b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

size_t updates_of(const struct fa_updates *u, const struct fa_fleet *f, uint32_t ci,
                  struct fa_update *out)
{
    if (!u || u->n == 0)
        return 0;
    uint32_t *hit = bsearch(&ci, u->cluster, u->n, sizeof *u->cluster, cmp_u32);
    if (!hit)
        return 0;
    size_t i = (size_t)(hit - u->cluster);
    int kind = u->kind[i];
    const struct fa_cluster *c = &f->clusters[ci];
    if (kind == FA_U_REPLACED || kind == FA_U_CREATED)
        return 0; /* a new cluster: its updates are none of the old one's */
    long t = UPDATES_EPOCH + (long)(c->h % (uint64_t)UPDATES_SPAN);
    size_t n = 0;
    /* an old, unrelated update */
    uuid(c->h ^ 1, out[n].id);
    out[n].type = "VersionUpdate";
    out[n].status = "Successful";
    out[n].param_type = "Version";
    out[n].value = "1.31";
    out[n].created_at = t - 20L * 86400L;
    n++;
    /* the update that once set the old mode (not the change: its value is another mode) */
    if (u->before[i] == FA_AWS_MANAGED || u->before[i] == FA_CUSTOMER_ISOLATED) {
        uuid(c->h ^ 3, out[n].id);
        out[n].type = "ControlPlaneEgressUpdate";
        out[n].status = "Successful";
        out[n].param_type = "ControlPlaneEgressMode";
        out[n].value = fa_mode_name(u->before[i]);
        out[n].created_at = t - 10L * 86400L;
        n++;
    }
    /* before the change nothing else happened; after it, the egress update */
    if (u->before_mode)
        return n;
    uuid(c->h ^ 2, out[n].id);
    out[n].type = "ControlPlaneEgressUpdate";
    out[n].status = kind == FA_U_SUCCESSFUL ? "Successful"
                    : kind == FA_U_FAILED   ? "Failed"
                                            : "InProgress";
    out[n].param_type = "ControlPlaneEgressMode";
    out[n].value = "CUSTOMER_ROUTED";
    out[n].created_at = t;
    n++;
    return n;
}
