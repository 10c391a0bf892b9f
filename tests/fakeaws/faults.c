/* faults.c - the --faults plan: per-request rates of throttling, 5xx, resets, truncated bodies
 * and slow answers, globally and per account, drawn from a seeded PRNG. The grammar is in
 * README.md: "throttle=0.05,5xx=0.02,slow_ms=40000,account=012345678901:throttle=0.3". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakeaws/fakeaws.h"

const char *const fa_fault_names[FA_F_COUNT] = {"throttle", "5xx", "reset", "truncate", "slow"};

static int fault_key(const char *s, size_t len)
{
    for (int i = 0; i < FA_F_COUNT; i++)
        if (strlen(fa_fault_names[i]) == len && memcmp(s, fa_fault_names[i], len) == 0)
            return i;
    return -1;
}

static int parse_rate(const char *s, size_t len, double *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno || *end || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v;
    return 0;
}

static int parse_ulong(const char *s, size_t len, unsigned long long *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (errno || *end || tmp[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int rates_check(const struct fa_fault_rates *r)
{
    double sum = 0;
    for (int i = 0; i < FA_F_COUNT; i++)
        sum += r->rate[i];
    return sum <= 1.0 + 1e-9 ? 0 : -1;
}

int faults_parse(const char *spec, const struct fa_fleet *f, struct fa_faults *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    out->slow_ms = 40000;
    out->seed = f->p.seed ^ 0x6661756c7473ULL;
    if (!spec || !*spec || strcmp(spec, "none") == 0)
        return 0;
    /* overrides keep a mask of what they set; the rest comes from the global rates */
    unsigned *masks = NULL;
    const char *p = spec;
    while (*p) {
        size_t item_len = strcspn(p, ",");
        const char *eq = memchr(p, '=', item_len);
        if (!eq)
            goto bad;
        size_t klen = (size_t)(eq - p);
        const char *val = eq + 1;
        size_t vlen = item_len - klen - 1;
        int k;
        unsigned long long n;
        if (klen == 7 && memcmp(p, "account", 7) == 0) {
            /* account=ID:key=rate[:key=rate...] */
            size_t idlen = strcspn(val, ":,");
            long acct = fleet_find_account(f, val, idlen);
            if (acct < 0) {
                faults_cleanup(out);
                free(masks);
                return err_set(err, ERR_INVALID, "--faults: account %.*s is not in the fleet",
                               (int)(idlen > 20 ? 20 : idlen), val);
            }
            struct fa_fault_override *g =
                realloc(out->overrides, (out->n_overrides + 1) * sizeof *g);
            unsigned *gm = realloc(masks, (out->n_overrides + 1) * sizeof *gm);
            if (g)
                out->overrides = g;
            if (gm)
                masks = gm;
            if (!g || !gm) {
                faults_cleanup(out);
                free(masks);
                return err_set(err, ERR_NOMEM, "out of memory");
            }
            struct fa_fault_override *o = &out->overrides[out->n_overrides];
            unsigned *mask = &masks[out->n_overrides];
            memset(o, 0, sizeof *o);
            *mask = 0;
            o->account = (uint32_t)acct;
            out->n_overrides++;
            const char *q = val + idlen;
            const char *end = p + item_len;
            if (q >= end)
                goto bad; /* an override needs at least one rate */
            while (q < end) {
                q++; /* ':' */
                size_t plen = strcspn(q, ":,");
                if (q + plen > end)
                    plen = (size_t)(end - q);
                const char *peq = memchr(q, '=', plen);
                if (!peq || (k = fault_key(q, (size_t)(peq - q))) < 0 ||
                    parse_rate(peq + 1, plen - (size_t)(peq - q) - 1, &o->rates.rate[k]) < 0)
                    goto bad;
                *mask |= 1u << k;
                q += plen;
            }
        } else if (klen == 7 && memcmp(p, "slow_ms", 7) == 0) {
            if (parse_ulong(val, vlen, &n) < 0 || n > 3600000)
                goto bad;
            out->slow_ms = (long)n;
        } else if (klen == 4 && memcmp(p, "seed", 4) == 0) {
            if (parse_ulong(val, vlen, &n) < 0)
                goto bad;
            out->seed = n;
        } else if ((k = fault_key(p, klen)) >= 0) {
            if (parse_rate(val, vlen, &out->global.rate[k]) < 0)
                goto bad;
        } else {
            goto bad;
        }
        p += item_len;
        if (*p == ',')
            p++;
    }
    if (rates_check(&out->global) < 0) {
        faults_cleanup(out);
        free(masks);
        return err_set(err, ERR_INVALID, "--faults: the rates add up to more than 1");
    }
    for (size_t i = 0; i < out->n_overrides; i++) {
        struct fa_fault_override *o = &out->overrides[i];
        for (int k2 = 0; k2 < FA_F_COUNT; k2++)
            if (!(masks[i] & (1u << k2)))
                o->rates.rate[k2] = out->global.rate[k2];
        if (rates_check(&o->rates) < 0) {
            faults_cleanup(out);
            free(masks);
            return err_set(err, ERR_INVALID,
                           "--faults: the rates of an account override add up to more than 1");
        }
    }
    free(masks);
    for (int k2 = 0; k2 < FA_F_COUNT; k2++)
        out->any |= out->global.rate[k2] > 0;
    out->any |= out->n_overrides > 0;
    return 0;
bad:
    faults_cleanup(out);
    free(masks);
    return err_set(err, ERR_INVALID,
                   "--faults: cannot parse \"%.200s\" (expected key=rate[,...] with keys throttle, "
                   "5xx, reset, truncate, slow, slow_ms, seed, account=ID:key=rate[:...])",
                   spec);
}

void faults_cleanup(struct fa_faults *x)
{
    free(x->overrides);
    x->overrides = NULL;
    x->n_overrides = 0;
}

const struct fa_fault_rates *faults_for(const struct fa_faults *x, long account)
{
    if (account >= 0) {
        for (size_t i = 0; i < x->n_overrides; i++)
            if (x->overrides[i].account == (uint32_t)account)
                return &x->overrides[i].rates;
    }
    return &x->global;
}

int faults_draw(const struct fa_fault_rates *r, uint64_t *rng)
{
    double u = fa_rand01(rng), acc = 0;
    for (int i = 0; i < FA_F_COUNT; i++) {
        acc += r->rate[i];
        if (r->rate[i] > 0 && u < acc)
            return i;
    }
    return -1;
}
