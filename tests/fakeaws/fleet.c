/* fleet.c - the fake organization, generated deterministically from a seed: accounts (12-digit
 * ids, some with a leading zero), an OU tree, SCPs, and EKS clusters per account x region with
 * every egress mode. Also the answers that never change (rendered once) and --truth. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakeaws/fakeaws.h"

static const char *const all_regions[FA_ALL_REGIONS] = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",  "eu-west-1",
    "eu-west-2",      "eu-west-3",      "eu-central-1",   "eu-north-1", "ap-southeast-1",
    "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ca-central-1",
    "sa-east-1",      "ap-northeast-3"};

static const char *const ou_names[] = {
    "Prod",     "Staging",  "Dev",  "Sandbox", "Security",  "Infrastructure", "Workloads",
    "Shared",   "Data",     "ML",   "Legacy",  "Regulated", "Platform",       "Finance",
    "Research", "Partners", "Edge", "Retail",  "Media",     "Analytics"};
#define MAX_OUS (sizeof ou_names / sizeof ou_names[0])

static const char *const teams[] = {
    "payments",  "search",   "ml",       "batch",   "web",      "data",    "platform",
    "analytics", "checkout", "identity", "billing", "catalog",  "fraud",   "ledger",
    "messaging", "media",    "mobile",   "risk",    "security", "support", "growth"};
#define N_TEAMS (sizeof teams / sizeof teams[0])

static const char *const envs[] = {"prod", "staging", "dev", "sandbox", "shared", "test"};
#define N_ENVS (sizeof envs / sizeof envs[0])

static const char *const k8s_versions[] = {"1.28", "1.29", "1.30", "1.31", "1.32"};

/* Egress mode mixes (AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED, absent), by where the
 * account sits: under the enforcing SCP most clusters are routed, but some predate it. */
enum { CLASS_NORMAL = 0, CLASS_ENFORCED, CLASS_GAP, CLASS_COUNT };
static const double mode_mix[CLASS_COUNT][4] = {
    {0.60, 0.17, 0.18, 0.05},
    {0.15, 0.75, 0.05, 0.05},
    {0.55, 0.15, 0.25, 0.05},
};

/* ---- randomness ---- */

uint64_t fa_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t fa_mix(uint64_t x)
{
    uint64_t s = x;
    return fa_next(&s);
}

double fa_rand01(uint64_t *state)
{
    return (double)(fa_next(state) >> 11) * 0x1.0p-53;
}

static size_t poisson(uint64_t *rng, double mean)
{
    if (mean <= 0)
        return 0;
    if (mean < 30) { /* Knuth */
        double l = exp(-mean), p = 1.0;
        size_t k = 0;
        do {
            k++;
            p *= fa_rand01(rng);
        } while (p > l);
        return k - 1;
    }
    /* normal approximation (Box-Muller) */
    double u1 = fa_rand01(rng), u2 = fa_rand01(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    double v = floor(mean + sqrt(mean) * z + 0.5);
    return v < 0 ? 0 : (size_t)v;
}

static void rand_chars(uint64_t *rng, const char *alphabet, size_t n, char *out)
{
    size_t an = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[fa_next(rng) % an];
    out[n] = '\0';
}

static const char lower_alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

const char *fa_mode_name(int mode)
{
    switch (mode) {
    case FA_AWS_MANAGED:
        return "AWS_MANAGED";
    case FA_CUSTOMER_ROUTED:
        return "CUSTOMER_ROUTED";
    case FA_CUSTOMER_ISOLATED:
        return "CUSTOMER_ISOLATED";
    default:
        return NULL;
    }
}

/* ---- text helpers ---- */

int fa_printf(struct buf *b, const char *fmt, ...)
{
    /* one vsnprintf into the spare room in the common case (buf_printf always formats twice,
     * which shows in a profile at tens of thousands of answers a second) */
    if (buf_reserve(b, 256) < 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= b->cap - b->len) {
        if (buf_reserve(b, (size_t)n) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int fa_json_str(struct buf *b, const char *s, size_t len)
{
    if (buf_reserve(b, len + 2) < 0 || buf_putc(b, '"') < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            if (buf_putc(b, '\\') < 0 || buf_putc(b, (char)c) < 0)
                return -1;
        } else if (c < 0x20) {
            if (fa_printf(b, "\\u%04x", c) < 0)
                return -1;
        } else if (buf_putc(b, (char)c) < 0) {
            return -1;
        }
    }
    return buf_putc(b, '"');
}

int fa_xml_str(struct buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        }
        if (rep ? buf_puts(b, rep) < 0 : buf_putc(b, s[i]) < 0)
            return -1;
    }
    return 0;
}

static void base64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- generation ---- */

static int cmp_by_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

long fleet_find_account(const struct fa_fleet *f, const char *id, size_t len)
{
    if (len != 12)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < 12; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(id[i] - '0');
    }
    size_t lo = 0, hi = f->n_accounts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->by_id[mid].id < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_accounts && f->by_id[lo].id == v ? (long)f->by_id[lo].idx : -1;
}

static int make_accounts(struct fa_fleet *f, uint64_t *rng)
{
    size_t n = f->p.accounts;
    f->accounts = calloc(n, sizeof *f->accounts);
    f->by_id = calloc(n, sizeof *f->by_id);
    if (!f->accounts || !f->by_id)
        return -1;
    /* unique ids: an open-addressing set of the ids drawn so far */
    size_t cap = 1;
    while (cap < 2 * n + 2)
        cap <<= 1;
    uint64_t *set = calloc(cap, sizeof *set); /* stores id + 1 (0 = empty) */
    if (!set)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct fa_account *a = &f->accounts[i];
        for (;;) {
            uint64_t v = fa_next(rng) % 1000000000000ULL;
            if (v < 1000000ULL)
                continue; /* not "000000xxxxxx" */
            size_t j = fa_mix(v) & (cap - 1);
            while (set[j] && set[j] != v + 1)
                j = (j + 1) & (cap - 1);
            if (set[j])
                continue;
            set[j] = v + 1;
            a->id_num = v;
            break;
        }
        snprintf(a->id, sizeof a->id, "%012llu", (unsigned long long)a->id_num);
        if (i == 0) {
            snprintf(a->name, sizeof a->name, "management");
        } else {
            snprintf(a->name, sizeof a->name, "%s-%s-%04zu", teams[fa_next(rng) % N_TEAMS],
                     envs[fa_next(rng) % N_ENVS], i);
        }
        snprintf(a->email, sizeof a->email, "aws+%s@example.com", a->name);
        a->joined = 1483228800.0 + (double)(fa_next(rng) % 280000000ULL) +
                    (double)(fa_next(rng) % 1000) / 1000.0;
        a->suspended = i > 0 && fa_rand01(rng) < 0.01;
    }
    free(set);
    /* a fleet of some size always shows a suspended account */
    if (n >= 10) {
        int any = 0;
        for (size_t i = 1; i < n; i++)
            any |= f->accounts[i].suspended;
        if (!any)
            f->accounts[n - 1].suspended = 1;
    }
    f->n_accounts = n;
    for (size_t i = 0; i < n; i++) {
        f->by_id[i].id = f->accounts[i].id_num;
        f->by_id[i].idx = (uint32_t)i;
    }
    qsort(f->by_id, n, sizeof *f->by_id, cmp_by_id);
    return 0;
}

/* "a/b" into out (cap bytes); depth is at most three, so it always fits in practice. */
static void join_path(char *out, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb >= cap) {
        lb = 0;
        if (la + 1 >= cap)
            la = cap - 2;
    }
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '\0';
}

static int make_tree(struct fa_fleet *f, uint64_t *rng)
{
    size_t n_acc = f->n_accounts;
    size_t n_ous = 0;
    if (n_acc >= 2) {
        n_ous = n_acc / 4;
        if (n_ous < 1)
            n_ous = 1;
        if (n_ous > MAX_OUS)
            n_ous = MAX_OUS;
    }
    f->n_nodes = 1 + n_ous;
    f->nodes = calloc(f->n_nodes, sizeof *f->nodes);
    f->child_ous = calloc(f->n_nodes, sizeof *f->child_ous);
    f->child_accounts = calloc(n_acc, sizeof *f->child_accounts);
    if (!f->nodes || !f->child_ous || !f->child_accounts)
        return -1;
    struct fa_node *root = &f->nodes[0];
    snprintf(root->id, sizeof root->id, "r-%s", f->root_suffix);
    snprintf(root->name, sizeof root->name, "Root");
    root->parent = -1;
    snprintf(root->path, sizeof root->path, "Root");
    snprintf(root->id_path, sizeof root->id_path, "%s", root->id);
    for (size_t i = 1; i <= n_ous; i++) {
        struct fa_node *o = &f->nodes[i];
        char suffix[9];
        rand_chars(rng, lower_alnum, 8, suffix);
        snprintf(o->id, sizeof o->id, "ou-%s-%s", f->root_suffix, suffix);
        snprintf(o->name, sizeof o->name, "%s", ou_names[i - 1]);
        o->parent = 0;
        /* the first five hang under the root; later ones nest, at most three deep */
        if (i > 5 && fa_rand01(rng) < 0.45) {
            size_t cand = 1 + fa_next(rng) % (i - 1);
            if (f->nodes[cand].depth < 3)
                o->parent = (int)cand;
        }
        /* Regulated sits under Prod when both exist: the enforcing SCP then reaches it by
         * inheritance */
        if (strcmp(o->name, "Regulated") == 0)
            o->parent = 1;
        const struct fa_node *p = &f->nodes[o->parent];
        o->depth = p->depth + 1;
        join_path(o->path, sizeof o->path, p->path, o->name);
        join_path(o->id_path, sizeof o->id_path, p->id_path, o->id);
    }
    /* accounts: the management account under the root, ~8% of the others too, the rest spread
     * evenly over the OUs */
    for (size_t i = 0; i < n_acc; i++) {
        struct fa_account *a = &f->accounts[i];
        if (i == 0 || n_ous == 0 || fa_rand01(rng) < 0.08)
            a->node = 0;
        else
            a->node = (int)(1 + fa_next(rng) % n_ous);
    }
    /* children grouped by parent (counting sort) */
    for (size_t i = 1; i < f->n_nodes; i++)
        f->nodes[f->nodes[i].parent].ou_count++;
    for (size_t i = 0; i < n_acc; i++)
        f->nodes[f->accounts[i].node].acct_count++;
    uint32_t off_o = 0, off_a = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        f->nodes[i].ou_start = off_o;
        f->nodes[i].acct_start = off_a;
        off_o += f->nodes[i].ou_count;
        off_a += f->nodes[i].acct_count;
        f->nodes[i].ou_count = 0;
        f->nodes[i].acct_count = 0;
    }
    for (size_t i = 1; i < f->n_nodes; i++) {
        struct fa_node *p = &f->nodes[f->nodes[i].parent];
        f->child_ous[p->ou_start + p->ou_count++] = (uint32_t)i;
    }
    for (size_t i = 0; i < n_acc; i++) {
        struct fa_node *p = &f->nodes[f->accounts[i].node];
        f->child_accounts[p->acct_start + p->acct_count++] = (uint32_t)i;
    }
    return 0;
}

static struct fa_scp *add_scp(struct fa_fleet *f, const char *id, const char *name,
                              const char *description, int aws_managed, const char *content)
{
    struct fa_scp *s = &f->scps[f->n_scps++];
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->description, sizeof s->description, "%s", description);
    if (aws_managed)
        snprintf(s->arn, sizeof s->arn,
                 "arn:aws:organizations::aws:policy/service_control_policy/%s", id);
    else
        snprintf(s->arn, sizeof s->arn,
                 "arn:aws:organizations::%s:policy/%s/service_control_policy/%s", f->accounts[0].id,
                 f->org_id, id);
    s->aws_managed = aws_managed;
    s->content = strdup(content);
    return s->content ? s : NULL;
}

static int add_target(struct fa_scp *s, int kind, int idx, size_t cap)
{
    if (s->n_targets >= cap)
        return -1;
    s->targets[s->n_targets].kind = kind;
    s->targets[s->n_targets].idx = idx;
    s->n_targets++;
    return 0;
}

static int make_scps(struct fa_fleet *f, uint64_t *rng)
{
    f->scps = calloc(4, sizeof *f->scps);
    if (!f->scps)
        return -1;
    char id[24], suffix[9], content[1024];

    /* FullAWSAccess is attached, as AWS does by default, to the root, every OU and every
     * account: IAM needs an Allow at every level of the path. */
    struct fa_scp *full =
        add_scp(f, "p-FullAWSAccess", "FullAWSAccess", "Allows access to every operation", 1,
                "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": "
                "\"Allow\",\n      \"Action\": \"*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}");
    if (!full)
        return -1;
    size_t cap = f->n_nodes + f->n_accounts;
    if (!(full->targets = calloc(cap, sizeof *full->targets)))
        return -1;
    for (size_t i = 0; i < f->n_nodes; i++)
        add_target(full, FA_TARGET_ROOT_OR_OU, (int)i, cap);
    for (size_t i = 0; i < f->n_accounts; i++)
        add_target(full, FA_TARGET_ACCOUNT, (int)i, cap);

    /* The enforcing one: on the first OU (Prod), and on one account directly under the root. */
    rand_chars(rng, lower_alnum, 8, suffix);
    snprintf(id, sizeof id, "p-%s", suffix);
    struct fa_scp *enf = add_scp(
        f, id, "RequireCustomerRoutedEgress",
        "EKS control planes must route egress through the customer VPC", 0,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyNonRoutedEgress\",\"Effect\":"
        "\"Deny\",\"Action\":[\"eks:CreateCluster\",\"eks:UpdateClusterConfig\"],\"Resource\":"
        "\"*\",\"Condition\":{\"StringNotEquals\":{\"eks:controlPlaneEgressMode\":"
        "\"CUSTOMER_ROUTED\"}}}]}");
    if (!enf || !(enf->targets = calloc(2, sizeof *enf->targets)))
        return -1;
    if (f->n_nodes > 1)
        add_target(enf, FA_TARGET_ROOT_OR_OU, 1, 2);
    for (size_t i = 1; i < f->n_accounts; i++) {
        if (f->accounts[i].node == 0 && !f->accounts[i].suspended) {
            add_target(enf, FA_TARGET_ACCOUNT, (int)i, 2);
            break;
        }
    }

    /* A gap-ridden attempt at "AWS_MANAGED only": only CreateCluster, only one other mode. */
    rand_chars(rng, lower_alnum, 8, suffix);
    snprintf(id, sizeof id, "p-%s", suffix);
    struct fa_scp *gap = add_scp(
        f, id, "EksEgressAwsManagedOnly", "Keep EKS control plane egress AWS managed", 0,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"KeepAwsManagedEgress\",\"Effect\":"
        "\"Deny\",\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":{"
        "\"StringEquals\":{\"eks:controlPlaneEgressMode\":[\"CUSTOMER_ROUTED\"]}}}]}");
    if (!gap || !(gap->targets = calloc(1, sizeof *gap->targets)))
        return -1;
    if (f->n_nodes > 2)
        add_target(gap, FA_TARGET_ROOT_OR_OU, 2, 1);

    /* An ordinary region fence on EKS, Control Tower style: it exempts the scanner's role (as
     * the README tells users to), so the scanner is not denied there and the fake need not
     * enforce it; egressscan's verdict for the fenced regions is principal-dependent. */
    rand_chars(rng, lower_alnum, 8, suffix);
    snprintf(id, sizeof id, "p-%s", suffix);
    snprintf(
        content, sizeof content,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyEksOutsideApprovedRegions\","
        "\"Effect\":\"Deny\",\"Action\":\"eks:*\",\"Resource\":\"*\",\"Condition\":{"
        "\"StringNotEquals\":{\"aws:RequestedRegion\":[\"%s\",\"%s\"]},"
        "\"ArnNotLike\":{\"aws:PrincipalArn\":[\"arn:aws:iam::*:role/EgressScan*\"]}}}]}",
        f->regions[0], f->n_regions > 1 ? f->regions[1] : f->regions[0]);
    struct fa_scp *fence = add_scp(f, id, "DenyEksOutsideApprovedRegions",
                                   "EKS only in the approved regions", 0, content);
    if (!fence || !(fence->targets = calloc(1, sizeof *fence->targets)))
        return -1;
    if (f->n_nodes > 4)
        add_target(fence, FA_TARGET_ROOT_OR_OU, 4, 1);

    /* mode mix per account, from the SCPs on its path */
    for (size_t i = 0; i < f->n_accounts; i++) {
        struct fa_account *a = &f->accounts[i];
        a->mode_class = CLASS_NORMAL;
        if (i == 0)
            continue;
        for (size_t t = 0; t < enf->n_targets; t++)
            if (enf->targets[t].kind == FA_TARGET_ACCOUNT && enf->targets[t].idx == (int)i)
                a->mode_class = CLASS_ENFORCED;
        for (int n = a->node; n > 0 && a->mode_class == CLASS_NORMAL; n = f->nodes[n].parent) {
            if (n == 1)
                a->mode_class = CLASS_ENFORCED;
            else if (n == 2)
                a->mode_class = CLASS_GAP;
        }
    }
    return 0;
}

static int make_clusters(struct fa_fleet *f, uint64_t *rng)
{
    size_t n_targets = f->n_accounts * f->n_regions;
    f->target_start = calloc(n_targets + 1, sizeof *f->target_start);
    if (!f->target_start)
        return -1;
    size_t cap = 0;
    for (size_t a = 0; a < f->n_accounts; a++) {
        const struct fa_account *acc = &f->accounts[a];
        for (size_t r = 0; r < f->n_regions; r++) {
            size_t t = a * f->n_regions + r;
            f->target_start[t] = (uint32_t)f->n_clusters;
            size_t k = poisson(rng, f->p.clusters_mean);
            if (acc->suspended)
                k = 0;
            for (size_t j = 0; j < k; j++) {
                if (f->n_clusters == cap) {
                    size_t ncap = cap ? cap * 2 : 1024;
                    struct fa_cluster *g = realloc(f->clusters, ncap * sizeof *g);
                    if (!g)
                        return -1;
                    f->clusters = g;
                    cap = ncap;
                }
                struct fa_cluster *c = &f->clusters[f->n_clusters];
                memset(c, 0, sizeof *c);
                c->account = (uint32_t)a;
                c->region = (uint8_t)r;
                c->h = fa_next(rng);
                const char *team = teams[fa_next(rng) % N_TEAMS];
                const char *env = envs[fa_next(rng) % N_ENVS];
                if (fa_rand01(rng) < 0.02)
                    snprintf(c->name, sizeof c->name,
                             "%s-%s-blue-green-canary-shared-services-platform-cluster-with-a-"
                             "rather-long-name_v2",
                             team, env);
                else
                    snprintf(c->name, sizeof c->name, "%s-%s", team, env);
                /* names are unique per account x region */
                size_t base_len = strlen(c->name);
                for (unsigned dup = 2;; dup++) {
                    int clash = 0;
                    for (size_t q = f->target_start[t]; q < f->n_clusters && !clash; q++)
                        clash = strcmp(f->clusters[q].name, c->name) == 0;
                    if (!clash)
                        break;
                    snprintf(c->name + base_len, sizeof c->name - base_len, "-%u", dup);
                }
                double u = fa_rand01(rng), acc_p = 0;
                c->mode = FA_MODE_ABSENT;
                for (int m = 0; m < 4; m++) {
                    acc_p += mode_mix[acc->mode_class][m];
                    if (u < acc_p) {
                        c->mode = (int8_t)m;
                        break;
                    }
                }
                f->n_clusters++;
            }
        }
    }
    f->target_start[n_targets] = (uint32_t)f->n_clusters;
    return 0;
}

static void make_ca(struct fa_fleet *f, uint64_t *rng)
{
    /* a PEM-looking certificate, base64-encoded again as EKS does */
    char pem[1100];
    size_t o = (size_t)snprintf(pem, sizeof pem, "-----BEGIN CERTIFICATE-----\n");
    unsigned char raw[48];
    char line[80];
    for (int l = 0; l < 15; l++) {
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)fa_next(rng);
        base64_encode(raw, sizeof raw, line);
        o += (size_t)snprintf(pem + o, sizeof pem - o, "%s\n", line);
    }
    o += (size_t)snprintf(pem + o, sizeof pem - o, "-----END CERTIFICATE-----\n");
    base64_encode((const unsigned char *)pem, o, f->ca_data);
}

/* ---- answers rendered once ---- */

static char *render_describe_org(const struct fa_fleet *f)
{
    struct buf b;
    buf_init(&b);
    const char *m = f->accounts[0].id;
    fa_printf(&b,
              "{\"Organization\":{\"Id\":\"%s\",\"Arn\":\"arn:aws:organizations::%s:organization/"
              "%s\",\"FeatureSet\":\"ALL\",\"MasterAccountArn\":\"arn:aws:organizations::%s:"
              "account/%s/%s\",\"MasterAccountId\":\"%s\",\"MasterAccountEmail\":\"%s\","
              "\"AvailablePolicyTypes\":[{\"Type\":\"SERVICE_CONTROL_POLICY\",\"Status\":"
              "\"ENABLED\"}]}}",
              f->org_id, m, f->org_id, m, f->org_id, m, m, f->accounts[0].email);
    return b.data;
}

static char *render_list_roots(const struct fa_fleet *f)
{
    struct buf b;
    buf_init(&b);
    fa_printf(&b,
              "{\"Roots\":[{\"Id\":\"%s\",\"Arn\":\"arn:aws:organizations::%s:root/%s/%s\","
              "\"Name\":\"Root\",\"PolicyTypes\":[{\"Type\":\"SERVICE_CONTROL_POLICY\","
              "\"Status\":\"ENABLED\"}]}]}",
              f->nodes[0].id, f->accounts[0].id, f->org_id, f->nodes[0].id);
    return b.data;
}

static char *render_regions_tail(const struct fa_fleet *f)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "</requestId>\n    <regionInfo>\n");
    for (size_t i = 0; i < f->n_regions; i++)
        fa_printf(&b,
                  "        <item>\n            <regionName>%s</regionName>\n"
                  "            <regionEndpoint>ec2.%s.amazonaws.com</regionEndpoint>\n"
                  "            <optInStatus>%s</optInStatus>\n        </item>\n",
                  f->regions[i], f->regions[i],
                  strcmp(f->regions[i], "ap-northeast-3") == 0 ? "opted-in"
                                                               : "opt-in-not-required");
    buf_puts(&b, "    </regionInfo>\n</DescribeRegionsResponse>");
    return b.data;
}

static char *render_describe_policy(const struct fa_scp *s)
{
    json_t *root = json_pack("{s:{s:{s:s,s:s,s:s,s:s,s:s,s:b},s:s}}", "Policy", "PolicySummary",
                             "Id", s->id, "Arn", s->arn, "Name", s->name, "Description",
                             s->description, "Type", "SERVICE_CONTROL_POLICY", "AwsManaged",
                             s->aws_managed, "Content", s->content); /* new */
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

int fleet_generate(struct fa_fleet *f, const struct fa_fleet_params *p, struct err *err)
{
    memset(f, 0, sizeof *f);
    f->p = *p;
    if (p->accounts < 1 || p->accounts > 2000000)
        return err_set(err, ERR_INVALID, "--accounts must be 1..2000000");
    if (p->regions < 1 || p->regions > FA_ALL_REGIONS)
        return err_set(err, ERR_INVALID, "--regions must be 1..%d", FA_ALL_REGIONS);
    if (!(p->clusters_mean >= 0 && p->clusters_mean <= 1000))
        return err_set(err, ERR_INVALID, "--clusters-per-account-region-mean must be 0..1000");
    f->n_regions = p->regions;
    for (size_t i = 0; i < p->regions; i++)
        f->regions[i] = all_regions[i];
    /* independent streams, so that changing one knob leaves the rest of the fleet alone */
    uint64_t s_org = fa_mix(p->seed ^ 0x6f72672dULL), s_acc = fa_mix(p->seed ^ 0x61636374ULL);
    uint64_t s_tree = fa_mix(p->seed ^ 0x74726565ULL), s_scp = fa_mix(p->seed ^ 0x73637073ULL);
    uint64_t s_cl = fa_mix(p->seed ^ 0x636c7573ULL);
    char org[11];
    rand_chars(&s_org, lower_alnum, 10, org);
    snprintf(f->org_id, sizeof f->org_id, "o-%s", org);
    rand_chars(&s_org, lower_alnum, 4, f->root_suffix);
    make_ca(f, &s_org);
    if (make_accounts(f, &s_acc) < 0 || make_tree(f, &s_tree) < 0 || make_scps(f, &s_scp) < 0 ||
        make_clusters(f, &s_cl) < 0)
        goto nomem;
    if (!(f->describe_org_body = render_describe_org(f)) ||
        !(f->list_roots_body = render_list_roots(f)) ||
        !(f->describe_regions_tail = render_regions_tail(f)))
        goto nomem;
    for (size_t i = 0; i < f->n_scps; i++)
        if (!(f->scps[i].describe_body = render_describe_policy(&f->scps[i])))
            goto nomem;
    return 0;
nomem:
    fleet_cleanup(f);
    return err_set(err, ERR_NOMEM, "out of memory generating the fleet");
}

void fleet_cleanup(struct fa_fleet *f)
{
    for (size_t i = 0; i < f->n_scps; i++) {
        free(f->scps[i].content);
        free(f->scps[i].targets);
        free(f->scps[i].describe_body);
    }
    free(f->scps);
    free(f->nodes);
    free(f->child_ous);
    free(f->child_accounts);
    free(f->accounts);
    free(f->by_id);
    free(f->clusters);
    free(f->target_start);
    free(f->describe_org_body);
    free(f->list_roots_body);
    free(f->describe_regions_tail);
    memset(f, 0, sizeof *f);
}

/* ---- DescribeCluster ---- */

static void hex_id(uint64_t h, const char *alphabet, size_t n, char *out)
{
    uint64_t s = h;
    for (size_t i = 0; i < n; i++) {
        if (i % 16 == 0)
            h = fa_next(&s);
        out[i] = alphabet[h & 15];
        h >>= 4;
    }
    out[n] = '\0';
}

int fleet_render_cluster(const struct fa_fleet *f, const struct fa_cluster *c, struct buf *b)
{
    const struct fa_account *a = &f->accounts[c->account];
    const char *region = f->regions[c->region];
    uint64_t h = c->h;
    char ep[33], sub1[18], sub2[18], sub3[18], sg[18], csg[18], vpc[18];
    hex_id(h, hex_upper, 32, ep);
    hex_id(h ^ 1, hex_lower, 17, sub1);
    hex_id(h ^ 2, hex_lower, 17, sub2);
    hex_id(h ^ 3, hex_lower, 17, sub3);
    hex_id(h ^ 4, hex_lower, 17, sg);
    hex_id(h ^ 5, hex_lower, 17, csg);
    hex_id(h ^ 6, hex_lower, 17, vpc);
    static const char *const cells[] = {"gr7", "yl4", "sk1", "ak8", "zo2"};
    int pub = (int)((h >> 3) & 1), priv = !pub || ((h >> 4) & 1);
    unsigned long long created = 1609459200ULL + (h >> 20) % 155000000ULL;
    int ms = (int)((h >> 52) % 1000);
    int updating = (h % 100) < 2;
    const char *mode = fa_mode_name(c->mode);
    size_t name_len = strlen(c->name);
    const char *dash = strchr(c->name, '-');
    size_t team_len = dash ? (size_t)(dash - c->name) : name_len;

    buf_reset(b);
    if (buf_reserve(b, 2600) < 0)
        return -1;
    buf_puts(b, "{\"cluster\":{\"name\":");
    fa_json_str(b, c->name, name_len);
    fa_printf(b, ",\"arn\":\"arn:aws:eks:%s:%s:cluster/", region, a->id);
    buf_append(b, c->name, name_len);
    fa_printf(b, "\",\"createdAt\":%llu.%03d,\"version\":\"%s\",", created, ms,
              k8s_versions[(h >> 8) % 5]);
    fa_printf(b, "\"endpoint\":\"https://%s.%s.%s.eks.amazonaws.com\",", ep, cells[(h >> 12) % 5],
              region);
    fa_printf(b, "\"roleArn\":\"arn:aws:iam::%s:role/eks-cluster-role\",", a->id);
    fa_printf(b,
              "\"resourcesVpcConfig\":{\"subnetIds\":[\"subnet-%s\",\"subnet-%s\",\"subnet-%s\"],"
              "\"securityGroupIds\":[\"sg-%s\"],\"clusterSecurityGroupId\":\"sg-%s\","
              "\"vpcId\":\"vpc-%s\",\"endpointPublicAccess\":%s,\"endpointPrivateAccess\":%s,"
              "\"publicAccessCidrs\":[\"%s\"]",
              sub1, sub2, sub3, sg, csg, vpc, pub ? "true" : "false", priv ? "true" : "false",
              pub && ((h >> 5) & 1) ? "203.0.113.0/24" : "0.0.0.0/0");
    if (mode)
        fa_printf(b, ",\"controlPlaneEgressMode\":\"%s\"", mode);
    buf_puts(b, "},");
    buf_puts(b, "\"kubernetesNetworkConfig\":{\"serviceIpv4Cidr\":\"172.20.0.0/16\",\"ipFamily\":"
                "\"ipv4\",\"elasticLoadBalancing\":{\"enabled\":false}},");
    fa_printf(b,
              "\"logging\":{\"clusterLogging\":[{\"types\":[\"api\",\"audit\",\"authenticator\"],"
              "\"enabled\":%s},{\"types\":[\"controllerManager\",\"scheduler\"],\"enabled\":"
              "false}]},",
              (h >> 6) & 1 ? "true" : "false");
    fa_printf(b,
              "\"identity\":{\"oidc\":{\"issuer\":\"https://oidc.eks.%s.amazonaws.com/id/%s\"}},",
              region, ep);
    fa_printf(b, "\"status\":\"%s\",", updating ? "UPDATING" : "ACTIVE");
    buf_puts(b, "\"certificateAuthority\":{\"data\":\"");
    buf_puts(b, f->ca_data);
    buf_puts(b, "\"},");
    fa_printf(b, "\"platformVersion\":\"eks.%d\",", (int)((h >> 24) % 20) + 1);
    if ((h >> 28) % 7 == 0) {
        buf_puts(b, "\"tags\":{},");
    } else {
        buf_puts(b, "\"tags\":{\"team\":");
        fa_json_str(b, c->name, team_len);
        fa_printf(b, ",\"account\":\"%s\",\"managed-by\":\"terraform\"},", a->name);
    }
    buf_puts(b, "\"health\":{\"issues\":[]},\"accessConfig\":{\"authenticationMode\":"
                "\"API_AND_CONFIG_MAP\"},\"upgradePolicy\":{\"supportType\":\"STANDARD\"}}}");
    return b->data ? 0 : -1;
}

/* ---- --truth ---- */

/* The scripted changes (--updates) for --truth: per changed cluster its position among all
 * clusters, kind, modes before and after, and the updates EKS lists for it. NULL: none. */
static json_t *updates_truth(const struct fa_fleet *f)
{
    const struct fa_updates *u = f->updates;
    if (!u || u->n == 0)
        return NULL;
    json_t *arr = json_array(); /* new */
    for (size_t i = 0; arr && i < u->n; i++) {
        const struct fa_cluster *c = &f->clusters[u->cluster[i]];
        const struct fa_account *a = &f->accounts[c->account];
        struct fa_update up[FA_CLUSTER_UPDATES_MAX];
        size_t n = updates_of(u, f, u->cluster[i], up);
        json_t *list = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", up[k].id, "type",
                                                  up[k].type, "status", up[k].status, "value",
                                                  up[k].value, "created_at",
                                                  (json_int_t)up[k].created_at));
        const char *before = fa_mode_name(u->before[i]), *after = fa_mode_name(c->mode);
        if (u->before_mode)
            after = before;
        json_array_append_new(
            arr, json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "index", (json_int_t)u->cluster[i],
                           "kind", fa_update_kind_names[u->kind[i]], "account_id", a->id, "region",
                           f->regions[c->region], "name", c->name, "mode_before",
                           before ? json_string(before) : json_null(), "mode_after",
                           after ? json_string(after) : json_null(), "updates", list));
    }
    return arr;
}

int fleet_write_truth(const struct fa_fleet *f, const char *path, struct err *err)
{
    json_t *root = json_object(); /* new */
    json_t *accounts = json_array(), *ous = json_array(), *scps = json_array();
    json_t *clusters = json_array(), *regions = json_array();
    int rc = -1;
    if (!root || !accounts || !ous || !scps || !clusters || !regions) {
        json_decref(accounts);
        json_decref(ous);
        json_decref(scps);
        json_decref(clusters);
        json_decref(regions);
        goto out;
    }
    json_object_set_new(root, "seed", json_integer((json_int_t)f->p.seed));
    json_object_set_new(root, "organization",
                        json_pack("{s:s,s:s,s:s}", "id", f->org_id, "management_account_id",
                                  f->accounts[0].id, "root_id", f->nodes[0].id));
    for (size_t i = 0; i < f->n_regions; i++)
        json_array_append_new(regions, json_string(f->regions[i]));
    json_object_set_new(root, "regions", regions);
    size_t active = 0;
    for (size_t i = 0; i < f->n_accounts; i++) {
        const struct fa_account *a = &f->accounts[i];
        const struct fa_node *n = &f->nodes[a->node];
        active += !a->suspended;
        json_array_append_new(accounts, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "id", a->id,
                                                  "name", a->name, "email", a->email, "status",
                                                  a->suspended ? "SUSPENDED" : "ACTIVE", "ou_path",
                                                  n->path, "ou_id_path", n->id_path, "parent_id",
                                                  n->id, "is_management", i == 0));
    }
    json_object_set_new(root, "accounts", accounts);
    for (size_t i = 0; i < f->n_nodes; i++) {
        const struct fa_node *n = &f->nodes[i];
        json_array_append_new(
            ous, json_pack("{s:s,s:s,s:o,s:s,s:s}", "id", n->id, "name", n->name, "parent_id",
                           n->parent < 0 ? json_null() : json_string(f->nodes[n->parent].id),
                           "path", n->path, "id_path", n->id_path));
    }
    json_object_set_new(root, "ous", ous);
    for (size_t i = 0; i < f->n_scps; i++) {
        const struct fa_scp *s = &f->scps[i];
        json_t *targets = json_array();
        for (size_t t = 0; t < s->n_targets; t++) {
            const struct fa_scp_target *x = &s->targets[t];
            json_array_append_new(targets,
                                  json_string(x->kind == FA_TARGET_ACCOUNT ? f->accounts[x->idx].id
                                                                           : f->nodes[x->idx].id));
        }
        json_array_append_new(scps, json_pack("{s:s,s:s,s:b,s:s,s:o}", "id", s->id, "name", s->name,
                                              "aws_managed", s->aws_managed, "content", s->content,
                                              "targets", targets));
    }
    json_object_set_new(root, "scps", scps);
    size_t served = 0;
    for (size_t i = 0; i < f->n_clusters; i++) {
        const struct fa_cluster *c = &f->clusters[i];
        const struct fa_account *a = &f->accounts[c->account];
        const char *mode = fa_mode_name(c->mode);
        if (c->hidden)
            continue; /* not served (--before: created later) */
        served++;
        char arn[256];
        snprintf(arn, sizeof arn, "arn:aws:eks:%s:%s:cluster/%s", f->regions[c->region], a->id,
                 c->name);
        json_array_append_new(clusters,
                              json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "account_id", a->id,
                                        "region", f->regions[c->region], "name", c->name, "arn",
                                        arn, "egress_mode", mode ? json_string(mode) : json_null(),
                                        "status", c->h % 100 < 2 ? "UPDATING" : "ACTIVE", "version",
                                        k8s_versions[(c->h >> 8) % 5]));
    }
    json_object_set_new(root, "clusters", clusters);
    json_t *updates = updates_truth(f);
    if (updates)
        json_object_set_new(root, "updates", updates);
    json_object_set_new(root, "counts",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "accounts", (json_int_t)f->n_accounts,
                                  "active_accounts", (json_int_t)active, "ous",
                                  (json_int_t)(f->n_nodes - 1), "regions", (json_int_t)f->n_regions,
                                  "clusters", (json_int_t)served));
    if (json_dump_file(root, path, JSON_INDENT(1)) == 0)
        rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        err_set(err, ERR_IO, "cannot write the truth file %s", path);
    return rc;
}
