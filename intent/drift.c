/* drift.c - intent and drift (SPEC.md section 6): joins the SCP-backed intent (intent/scp) or the
 * declared policy (intent/policy) with the clusters, coverage and mode changes of one scan and
 * turns every difference into a finding, plus the compliance counts. Works one account at a time
 * (SCP documents parsed once, decisions cached per account x region) so that memory does not grow
 * with the fleet and no evaluation allocates.
 *
 * Decided here where SPEC.md is silent:
 * - SCP-backed intent (no policy file): the named modes whose CreateCluster verdict is "allowed".
 *   A principal-dependent mode is not intended (that is how exemptions look); an unevaluable one
 *   leaves a cluster of that mode `unknown`. The omitted-mode verdict never widens or narrows a
 *   cluster's allowed set: it decides predates_scp vs scp_gap for an AWS_MANAGED cluster and is
 *   an enforcement gap (unenforced_intent) of its own.
 * - With a policy file the policy alone decides compliance; the SCPs only explain it (reason).
 *   Unknown SCPs then give reason "scp_unknown" (not in SPEC's list), and unenforced_intent with
 *   reason "scp_unknown" (severity medium) where require_scp cannot be verified.
 * - The management account: SCPs evaluated as if they applied (root, its OUs, itself) give its
 *   intent; a cluster outside it is management_account, severity critical (nothing preventive
 *   can ever reach there); require_scp there is always unenforced (reason management_account).
 * - No SCP attached anywhere (scps_known): SCPs not in effect, every mode allowed. A level of the
 *   path without any SCP while others have some: the snapshot is incomplete (AWS keeps one on
 *   every root, OU and account), every decision for that account is unevaluable, not "denied".
 * - Regions judged for unenforced_intent / scp_conflict: the account's coverage rows except
 *   region_disabled; for an account that failed as a whole ("*" only), every region some account
 *   was scanned in. Region "*" when every such region has the identical finding (same rule, same
 *   modes, same SCP decisions), even if there is only one.
 * - AWS_MANAGED counts as SCP-denied (scp_conflict) only when the omitted mode is denied too.
 * - Severities: noncompliant high (management critical); unenforced_intent high; scp_conflict,
 *   exception_expired medium; unknown_mode low (absent) / medium (unrecognized); unscanned_target
 *   high for "*", low for region_disabled, else medium; mode_changed info, high when replaced.
 * - Sources: "observation" for unknown_mode (the finding is about what DescribeCluster said). */
#include "intent/drift.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/quote.h"
#include "intent/policy.h"

/* decisions[] of a region: the CreateCluster decision per mode, then UpdateClusterConfig with
 * controlPlaneEgressMode=CUSTOMER_ROUTED (the in-place remediation). */
#define DEC_UPDATE EGRESS_MODES
#define N_DECISIONS (EGRESS_MODES + 1)

#define WARNING_IRREVERSIBLE                                                                       \
    "Switching to CUSTOMER_ROUTED is irreversible: the cluster can never return to AWS_MANAGED."

/* Named modes a policy or an SCP intent can allow (OMITTED is a request shape, not a mode). */
#define NAMED_MODES EGRESS_OMITTED

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- one account: its place in the organization and its decisions per region ---- */

enum scp_state {
    SCPS_EVALUATED,  /* decisions come from scp_evaluate over the account's path */
    SCPS_NONE,       /* no SCP is attached anywhere: SCPs are not in effect, everything allowed */
    SCPS_INCOMPLETE, /* a level of the path has no SCP in the snapshot: every decision unevaluable
                        (with SCPs enabled, AWS keeps at least one SCP on every root, OU, account)
                      */
    SCPS_UNKNOWN     /* SCPs unreadable, or the account's OU path unknown: intent unknown */
};

struct region_eval {
    const char *region;
    int scanned; /* counts for unenforced_intent / scp_conflict and their region "*" grouping */
    int evaluated;
    struct scp_decision dec[N_DECISIONS];
    struct policy_resolution scope; /* account x region resolution (only with a policy) */
    unsigned leak;                  /* unenforced_intent: the modes that escape the intent */
    int conflict;                   /* scp_conflict: the SCPs deny every allowed mode */
};

struct account_view {
    const char *id;
    const struct drift_account *acct; /* NULL: not in the snapshot's accounts */
    int is_management;
    enum scp_state state;
    char state_reason[256];
    const char *const *ous; /* OU ids below the root, top-down */
    size_t n_ous;
    const struct scp_level *levels;
    size_t n_levels;
};

/* An entry of the ok coverage rows' region table (drift_input.ok_regions) and its bit. */
struct ok_region {
    const char *name;
    size_t bit;
};

struct drift_run {
    const struct drift_input *in;
    drift_emit_fn emit;
    void *ud;
    struct err *err;
    struct drift_counts *counts;
    struct scp_index ix;
    int scps_in_effect;
    /* scratch reused from account to account */
    char *path_buf;
    size_t path_cap;
    const char **tokens;
    size_t tokens_cap;
    struct scp_level *levels;
    size_t levels_cap;
    struct region_eval *regions;
    size_t n_regions, regions_cap;
    /* regions scanned anywhere in the fleet: evaluated for accounts that failed as a whole */
    const char **fleet_regions;
    size_t n_fleet_regions;
    /* in->ok_regions in region order (strcmp), with their bit numbers */
    struct ok_region *ok_order;
    /* the snapshot's accounts sorted by id (bsearch) */
    const struct drift_account *const *sorted_accounts;
    size_t n_sorted_accounts;
};

/* Room for `need` elements in a scratch array: the (possibly moved) array, NULL on ENOMEM (the
 * old one is then still owned by the caller). */
static void *reserve(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (q)
        *cap = n;
    return q;
}

static void fill_decisions(struct scp_decision dec[N_DECISIONS], enum scp_verdict v,
                           const char *reason)
{
    for (int i = 0; i < N_DECISIONS; i++) {
        memset(&dec[i], 0, sizeof dec[i]);
        dec[i].verdict = v;
        snprintf(dec[i].reason, sizeof dec[i].reason, "%s", nz(reason));
    }
}

/* Sets up av for account id: its OU path split into the scratch buffers, the SCP levels (root,
 * OUs, account) and whether its SCP intent can be evaluated. -1 on ENOMEM. */
static int account_prepare(struct drift_run *r, const char *id, const struct drift_account *acct,
                           struct account_view *av)
{
    memset(av, 0, sizeof *av);
    av->id = id;
    av->acct = acct;
    av->is_management = acct && acct->is_management;
    const char *path = acct ? acct->ou_id_path : NULL;
    size_t n_tokens = 0;
    if (path && *path) {
        size_t len = strlen(path);
        char *buf = reserve(r->path_buf, &r->path_cap, len + 1, 1);
        if (!buf)
            return -1;
        r->path_buf = buf;
        const char **tokens = reserve(r->tokens, &r->tokens_cap, len / 2 + 2, sizeof *tokens);
        if (!tokens)
            return -1;
        r->tokens = tokens;
        memcpy(r->path_buf, path, len + 1);
        for (char *tok = r->path_buf, *p = r->path_buf;; p++) {
            if (*p == '/' || *p == '\0') {
                int end = *p == '\0';
                *p = '\0';
                if (*tok)
                    r->tokens[n_tokens++] = tok;
                if (end)
                    break;
                tok = p + 1;
            }
        }
    }
    /* The path is "root/ou/ou": everything after the root is the policy subject's OU list. */
    if (n_tokens > 0) {
        av->ous = r->tokens + 1;
        av->n_ous = n_tokens - 1;
    }

    if (!r->in->scps_known) {
        av->state = SCPS_UNKNOWN;
        snprintf(av->state_reason, sizeof av->state_reason,
                 "the organization's SCPs could not be read");
        return 0;
    }
    if (n_tokens == 0) {
        av->state = SCPS_UNKNOWN;
        snprintf(av->state_reason, sizeof av->state_reason,
                 "the account's place in the organization (OU path) is unknown");
        return 0;
    }
    if (!r->scps_in_effect) {
        av->state = SCPS_NONE;
        snprintf(av->state_reason, sizeof av->state_reason,
                 "no SCP is attached anywhere in the organization");
        return 0;
    }
    struct scp_level *levels = reserve(r->levels, &r->levels_cap, n_tokens + 1, sizeof *levels);
    if (!levels)
        return -1;
    r->levels = levels;
    size_t n_levels = 0;
    for (size_t i = 0; i <= n_tokens; i++) {
        const char *target = i < n_tokens ? r->tokens[i] : id;
        struct scp_level *lv = &r->levels[n_levels++];
        lv->target_id = target;
        lv->docs = scp_index_find(&r->ix, target, &lv->n_docs);
        if (lv->n_docs == 0 && av->state == SCPS_EVALUATED) {
            av->state = SCPS_INCOMPLETE;
            snprintf(av->state_reason, sizeof av->state_reason,
                     "no SCP attached to %s in the snapshot (with SCPs enabled every root, OU and "
                     "account has one): the SCP snapshot is incomplete",
                     target);
        }
    }
    av->levels = r->levels;
    av->n_levels = n_levels;
    return 0;
}

/* The decisions for av in region (no allocation). */
static void account_decide(const struct drift_run *r, const struct account_view *av,
                           const char *region, struct scp_decision dec[N_DECISIONS])
{
    switch (av->state) {
    case SCPS_UNKNOWN:
    case SCPS_INCOMPLETE:
        fill_decisions(dec, SCP_UNEVALUABLE, av->state_reason);
        return;
    case SCPS_NONE:
        fill_decisions(dec, SCP_ALLOWED, "");
        return;
    case SCPS_EVALUATED:
        break;
    }
    const char *partition = r->in->partition ? r->in->partition : "aws";
    for (int m = 0; m < EGRESS_MODES; m++) {
        struct scp_request req = {"eks:CreateCluster", av->id, region, (enum egress_mode)m, NULL};
        scp_evaluate(av->levels, av->n_levels, &req, partition, &dec[m]);
    }
    struct scp_request upd = {"eks:UpdateClusterConfig", av->id, region, EGRESS_CUSTOMER_ROUTED,
                              NULL};
    scp_evaluate(av->levels, av->n_levels, &upd, partition, &dec[DEC_UPDATE]);
}

/* The SCP-backed intent: the named modes every principal may create. Principal-dependent and
 * unevaluable modes are not intended (the former is how exemptions look, the latter is never
 * guessed); the OMITTED verdict does not enter a cluster's allowed set, it explains how a
 * cluster outside it could come to be (scp_gap) and is an enforcement gap of its own. */
static unsigned scp_allowed_set(const struct scp_decision dec[N_DECISIONS])
{
    unsigned set = 0;
    for (int m = 0; m < NAMED_MODES; m++)
        if (dec[m].verdict == SCP_ALLOWED)
            set |= EGRESS_BIT(m);
    return set;
}

static int restricts_mode(const struct scp_decision dec[N_DECISIONS])
{
    for (int m = 0; m < EGRESS_MODES; m++)
        if (dec[m].restricts_mode)
            return 1;
    return 0;
}

static struct region_eval *region_find(struct drift_run *r, const char *region)
{
    for (size_t i = 0; i < r->n_regions; i++)
        if (strcmp(r->regions[i].region, region) == 0)
            return &r->regions[i];
    return NULL;
}

static struct region_eval *region_add(struct drift_run *r, const char *region)
{
    struct region_eval *re = region_find(r, region);
    if (re)
        return re;
    struct region_eval *regions =
        reserve(r->regions, &r->regions_cap, r->n_regions + 1, sizeof *regions);
    if (!regions)
        return NULL;
    r->regions = regions;
    re = &r->regions[r->n_regions++];
    re->region = region;
    re->scanned = 0;
    re->evaluated = 0;
    re->leak = 0;
    re->conflict = 0;
    return re;
}

/* ---- details JSON ---- */

/* A JSON string of s (null for NULL); bytes that are not UTF-8 become '?'. NULL on ENOMEM. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static void jset(json_t *o, const char *key, json_t *v, int *bad)
{
    if (!o || !v || json_object_set_new(o, key, v) != 0)
        *bad = 1;
}

static void jpush(json_t *a, json_t *v, int *bad)
{
    if (!a || !v || json_array_append_new(a, v) != 0)
        *bad = 1;
}

static json_t *modes_json(unsigned set, int *bad)
{
    json_t *a = json_array();
    for (int m = 0; m < EGRESS_MODES; m++)
        if (set & EGRESS_BIT(m))
            jpush(a, json_string(egress_mode_name((enum egress_mode)m)), bad);
    if (!a)
        *bad = 1;
    return a;
}

static json_t *statements_json(const struct scp_decision *d, int *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_statements && i < SCP_MAX_STATEMENTS; i++)
        jpush(a, jstr(d->statements[i]), bad);
    if (!a)
        *bad = 1;
    return a;
}

/* {"mode", "verdict", "statements", "reason"}: one SCP decision. */
static json_t *decision_json(enum egress_mode m, const struct scp_decision *d, int *bad)
{
    json_t *o = json_object();
    jset(o, "mode", json_string(egress_mode_name(m)), bad);
    jset(o, "verdict", json_string(scp_verdict_name(d->verdict)), bad);
    jset(o, "statements", statements_json(d, bad), bad);
    if (d->reason[0])
        jset(o, "reason", jstr(d->reason), bad);
    if (!o)
        *bad = 1;
    return o;
}

/* Dumps details into f, calls emit, frees. Takes ownership of details. */
static int emit_finding(struct drift_run *r, struct finding *f, json_t *details, int bad)
{
    char *text = (!bad && details) ? json_dumps(details, JSON_COMPACT) : NULL;
    json_decref(details);
    if (!text)
        return err_set(r->err, ERR_NOMEM, "drift: out of memory building a %s finding", f->kind);
    f->details_json = text;
    int rc = r->emit(r->ud, f);
    free(text);
    if (rc != 0)
        return err_set(r->err, ERR_IO, "drift: the findings consumer failed on a %s finding",
                       f->kind);
    return 0;
}

/* ---- which SCP decided ---- */

/* The policy id a statement names ("p-abc#Sid" -> "p-abc"); for "no Allow at <target>", the
 * first SCP attached there (its Allow list is what leaves the request out). 0 when none. */
static int statement_policy(const struct drift_run *r, const char *stmt, char *out, size_t size)
{
    const char *hash = strchr(stmt, '#');
    if (hash && hash > stmt) {
        snprintf(out, size, "%.*s", (int)(hash - stmt), stmt);
        return 1;
    }
    static const char no_allow[] = "no Allow at ";
    if (strncmp(stmt, no_allow, sizeof no_allow - 1) == 0) {
        size_t n;
        const struct scp_doc *const *docs = scp_index_find(&r->ix, stmt + sizeof no_allow - 1, &n);
        if (n > 0 && docs[0]) {
            snprintf(out, size, "%s", scp_doc_id(docs[0]));
            return 1;
        }
    }
    return 0;
}

static int first_policy_of(const struct drift_run *r, const struct scp_decision *d, char *out,
                           size_t size)
{
    for (size_t i = 0; i < d->n_statements && i < SCP_MAX_STATEMENTS; i++)
        if (statement_policy(r, d->statements[i], out, size))
            return 1;
    return 0;
}

/* "scp:<policy id>" of the SCP that decides about the modes in `producing` (bits): first the
 * producing decisions that deny, then the principal-dependent or unevaluable ones, then the SCP
 * that denies some other mode (the one that restricts the mode but leaves the gap). */
static void scp_source(const struct drift_run *r, const struct scp_decision dec[N_DECISIONS],
                       unsigned producing, char *out, size_t size)
{
    char id[128];
    static const enum scp_verdict order[] = {SCP_DENIED, SCP_PRINCIPAL_DEPENDENT, SCP_UNEVALUABLE};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (int m = 0; m < EGRESS_MODES; m++)
            if ((producing & EGRESS_BIT(m)) && dec[m].verdict == order[o] &&
                first_policy_of(r, &dec[m], id, sizeof id)) {
                snprintf(out, size, "scp:%s", id);
                return;
            }
    for (int m = 0; m < EGRESS_MODES; m++)
        if (dec[m].verdict == SCP_DENIED && first_policy_of(r, &dec[m], id, sizeof id)) {
            snprintf(out, size, "scp:%s", id);
            return;
        }
    snprintf(out, size, "scp:none");
}

/* The requests that produce a cluster of mode m: m itself, and for AWS_MANAGED also a request
 * that omits the key (EKS's default). */
static unsigned producing_set(enum egress_mode m)
{
    return m == EGRESS_AWS_MANAGED ? EGRESS_BIT(EGRESS_AWS_MANAGED) | EGRESS_BIT(EGRESS_OMITTED)
                                   : EGRESS_BIT(m);
}

/* ---- findings ---- */

static int emit_unknown_mode(struct drift_run *r, const struct drift_cluster *c)
{
    int bad = 0;
    json_t *d = json_object();
    struct finding f = {0};
    f.kind = "unknown_mode";
    f.account_id = c->account_id;
    f.region = c->region;
    f.cluster_arn = c->arn;
    f.observed_mode = c->egress_mode;
    f.source = "observation";
    if (!c->egress_mode) {
        /* The API default applies, so the cluster is still judged: a low note. */
        f.severity = "low";
        jset(d, "reason", json_string("absent"), &bad);
        jset(d, "judged_as", json_string("AWS_MANAGED"), &bad);
        jset(d, "note",
             json_string("DescribeCluster reported no controlPlaneEgressMode: judged as "
                         "AWS_MANAGED, the API default"),
             &bad);
    } else {
        /* Neither compliant nor not: someone has to look. */
        f.severity = "medium";
        jset(d, "reason", json_string("unrecognized"), &bad);
        jset(d, "value", jstr(c->egress_mode), &bad);
        jset(d, "note",
             json_string("a controlPlaneEgressMode this version does not know: the cluster is "
                         "neither compliant nor non-compliant until egressscan learns it"),
             &bad);
    }
    jset(d, "cluster", jstr(c->name), &bad);
    return emit_finding(r, &f, d, bad);
}

/* What a producing decision that is not a deny leaves open, as scp_gap details say it. */
static json_t *gap_text(enum egress_mode m, const struct scp_decision *d)
{
    char buf[400];
    const char *prefix = m == EGRESS_OMITTED ? "omitted mode: " : "";
    switch (d->verdict) {
    case SCP_ALLOWED:
        snprintf(buf, sizeof buf, "%s", m == EGRESS_OMITTED ? "omitted mode allowed" : "allowed");
        break;
    case SCP_PRINCIPAL_DEPENDENT:
        snprintf(buf, sizeof buf, "%sprincipal exemption: %s", prefix, d->reason);
        break;
    case SCP_UNEVALUABLE:
        snprintf(buf, sizeof buf, "%sunevaluable: %s", prefix, d->reason);
        break;
    case SCP_DENIED:
        return NULL;
    }
    return jstr(buf);
}

/* The reason of a noncompliant cluster of (judged) mode m in region re; gaps gets the scp_gap
 * explanations. */
static const char *noncompliant_reason(const struct account_view *av, const struct region_eval *re,
                                       enum egress_mode m, json_t *gaps, int *bad)
{
    if (av->is_management)
        return "management_account";
    if (av->state == SCPS_UNKNOWN)
        return "scp_unknown"; /* not one of SPEC's reasons: the SCPs that would explain it are
                                 unreadable; the declared policy alone judged the cluster */
    unsigned producing = producing_set(m);
    int all_denied = 1, unevaluable = 0;
    for (int p = 0; p < EGRESS_MODES; p++) {
        if (!(producing & EGRESS_BIT(p)) || re->dec[p].verdict == SCP_DENIED)
            continue;
        all_denied = 0;
        unevaluable |= re->dec[p].verdict == SCP_UNEVALUABLE;
        jpush(gaps, gap_text((enum egress_mode)p, &re->dec[p]), bad);
    }
    if (all_denied)
        return "predates_scp";
    if (restricts_mode(re->dec) || unevaluable)
        return "scp_gap";
    /* scp_evaluate's restricts_mode is path-wide (any region), so a region the SCPs miss is a
     * gap already; an action they miss shows on UpdateClusterConfig. */
    if (re->dec[DEC_UPDATE].restricts_mode) {
        jpush(gaps,
              json_string("action not covered: the SCPs restrict the egress mode of "
                          "eks:UpdateClusterConfig, not of eks:CreateCluster"),
              bad);
        return "scp_gap";
    }
    return "no_scp";
}

static void remediation(const struct drift_cluster *c, unsigned allowed, char *out, size_t size,
                        int *in_place)
{
    *in_place = 0;
    if (allowed & EGRESS_BIT(EGRESS_CUSTOMER_ROUTED)) {
        *in_place = 1;
        /* every value single-quoted: the name comes from a member account (and the record), and
         * an operator pastes this into a shell with the organization's credentials */
        struct buf cmd;
        buf_init(&cmd);
        int ok = buf_puts(&cmd, "aws eks update-cluster-config --region ") == 0 &&
                 quote_shell(&cmd, nz(c->region)) == 0 && buf_puts(&cmd, " --name ") == 0 &&
                 quote_shell(&cmd, nz(c->name)) == 0 &&
                 buf_puts(&cmd, " --resources-vpc-config "
                                "controlPlaneEgressMode=CUSTOMER_ROUTED") == 0;
        /* a command cut short would be a different command: none rather than half of one */
        snprintf(out, size, "%s",
                 ok && cmd.len < size ? cmd.data
                                      : "Switch the cluster to controlPlaneEgressMode="
                                        "CUSTOMER_ROUTED (aws eks update-cluster-config).");
        buf_cleanup(&cmd);
        return;
    }
    if (allowed == 0) {
        snprintf(out, size,
                 "No egress mode is allowed for this cluster: delete it, or amend the policy or "
                 "SCPs that leave no mode allowed.");
        return;
    }
    char modes[96] = "";
    for (int m = 0; m < NAMED_MODES; m++)
        if (allowed & EGRESS_BIT(m)) {
            size_t len = strlen(modes);
            snprintf(modes + len, sizeof modes - len, "%s%s", len ? " or " : "",
                     egress_mode_name((enum egress_mode)m));
        }
    snprintf(out, size,
             "Replace the cluster: create a new one with controlPlaneEgressMode=%s and move the "
             "workloads (the in-place remediation, a switch to CUSTOMER_ROUTED, is not allowed "
             "here).",
             modes);
}

static int emit_noncompliant(struct drift_run *r, const struct account_view *av,
                             const struct region_eval *re, const struct drift_cluster *c,
                             enum egress_mode m, unsigned allowed,
                             const struct policy_resolution *res)
{
    int bad = 0;
    json_t *d = json_object();
    json_t *gaps = json_array();
    const char *reason = noncompliant_reason(av, re, m, gaps, &bad);
    char source[192];
    if (res) {
        /* A tag rule decided when the scope rule alone would have allowed the mode. */
        char tag[64] = "";
        if (res->tag_rules[0] && (re->scope.allowed & EGRESS_BIT(m)))
            snprintf(tag, sizeof tag, "%.*s", (int)strcspn(res->tag_rules, ","), res->tag_rules);
        snprintf(source, sizeof source, "policy:%s", tag[0] ? tag : res->rule_id);
    } else {
        scp_source(r, re->dec, producing_set(m), source, sizeof source);
    }

    jset(d, "reason", json_string(reason), &bad);
    if (strcmp(reason, "scp_gap") == 0)
        jset(d, "gaps", json_incref(gaps), &bad);
    jset(d, "cluster", jstr(c->name), &bad);
    jset(d, "observed_mode", jstr(c->egress_mode), &bad);
    jset(d, "judged_as", json_string(egress_mode_name(m)), &bad);
    jset(d, "allowed_modes", modes_json(allowed, &bad), &bad);
    jset(d, "decided_by", json_string(source), &bad);
    if (res && res->tag_rules[0]) {
        json_t *tags = json_array();
        for (const char *p = res->tag_rules; *p;) {
            size_t n = strcspn(p, ",");
            jpush(tags, json_stringn(p, n), &bad);
            p += n + (p[n] == ',');
        }
        jset(d, "tag_rules", tags, &bad);
    }
    if (res && res->exception_expired) {
        jset(d, "exception_expired", jstr(res->exception_expires), &bad);
    }
    if (av->is_management)
        jset(d, "scps_apply", json_false(), &bad);
    jset(d, "scp_known", json_boolean(av->state != SCPS_UNKNOWN), &bad);
    if (av->state == SCPS_UNKNOWN) {
        jset(d, "scp_note", jstr(av->state_reason), &bad);
    } else {
        /* The verdicts for the requests that produce the observed mode (as if the SCPs applied,
         * for the management account) and the statements that gave them. */
        json_t *scp = json_array(), *stmts = json_array();
        const char *seen[2 * SCP_MAX_STATEMENTS];
        size_t n_seen = 0;
        unsigned producing = producing_set(m);
        for (int p = 0; p < EGRESS_MODES; p++) {
            if (!(producing & EGRESS_BIT(p)))
                continue;
            jpush(scp, decision_json((enum egress_mode)p, &re->dec[p], &bad), &bad);
            for (size_t i = 0; i < re->dec[p].n_statements && i < SCP_MAX_STATEMENTS; i++) {
                const char *st = re->dec[p].statements[i];
                size_t k = 0;
                while (k < n_seen && strcmp(seen[k], st) != 0)
                    k++;
                if (k == n_seen && n_seen < sizeof seen / sizeof seen[0]) {
                    seen[n_seen++] = st;
                    jpush(stmts, jstr(st), &bad);
                }
            }
        }
        jset(d, "scp", scp, &bad);
        jset(d, "statements", stmts, &bad);
        jset(d, "scp_allowed_modes", modes_json(scp_allowed_set(re->dec), &bad), &bad);
    }
    char rem[512];
    int in_place;
    remediation(c, allowed, rem, sizeof rem, &in_place);
    jset(d, "remediation", jstr(rem), &bad);
    jset(d, "remediation_in_place", json_boolean(in_place), &bad);
    jset(d, "warning", json_string(WARNING_IRREVERSIBLE), &bad);
    const char *permitted;
    if (av->is_management)
        permitted = "allowed"; /* SCPs never apply there */
    else if (av->state == SCPS_UNKNOWN)
        permitted = "unknown";
    else
        permitted = scp_verdict_name(re->dec[DEC_UPDATE].verdict);
    jset(d, "remediation_permitted_by_scps", json_string(permitted), &bad);
    json_decref(gaps);

    struct finding f = {0};
    f.kind = "noncompliant_cluster";
    /* The management account is where no preventive control can ever reach: critical. */
    f.severity = av->is_management ? "critical" : "high";
    f.account_id = c->account_id;
    f.region = c->region;
    f.cluster_arn = c->arn;
    f.observed_mode = c->egress_mode;
    f.allowed_modes = allowed;
    f.source = source;
    return emit_finding(r, &f, d, bad);
}

static void subject_init(struct policy_subject *s, const struct account_view *av,
                         const char *region)
{
    memset(s, 0, sizeof *s);
    s->account_id = av->id;
    s->ou_ids = av->ous;
    s->n_ous = av->n_ous;
    s->region = region;
}

/* Counts one judgement and tells the caller. */
static int judged(struct drift_run *r, const struct drift_cluster *c, enum cluster_judgement j)
{
    struct drift_counts *k = r->counts;
    switch (j) {
    case JUDGED_COMPLIANT:
        k->compliant++;
        break;
    case JUDGED_NONCOMPLIANT:
        k->noncompliant++;
        break;
    case JUDGED_EXEMPT:
        k->exempt++;
        break;
    case JUDGED_UNKNOWN:
        k->unknown++;
        break;
    }
    if (r->in->on_judged && r->in->on_judged(r->in->judged_ud, c, j) != 0)
        return err_set(r->err, ERR_IO, "drift: the judgements consumer failed");
    return 0;
}

/* Judges one cluster: counts it and emits its cluster findings. A cluster whose target was not
 * scanned ok is not judged at all: its last known state proves nothing now (counted apart). */
static int judge_cluster(struct drift_run *r, const struct account_view *av,
                         const struct drift_cluster *c)
{
    struct drift_counts *k = r->counts;
    if (c->unverified) {
        k->unverified++;
        return 0;
    }
    const struct region_eval *re = region_find(r, nz(c->region));
    struct policy_resolution res;
    int have_res = 0;
    k->clusters++;
    if (r->in->policy) {
        struct policy_subject s;
        subject_init(&s, av, nz(c->region));
        s.tags_json = c->tags_json;
        s.cluster_arn = c->arn;
        policy_resolve(r->in->policy, &s, r->in->now, &res);
        have_res = 1;
    }
    int parsed = egress_mode_parse(c->egress_mode);
    if (parsed < 0 || !c->egress_mode) {
        if (emit_unknown_mode(r, c) != 0)
            return -1;
    }
    if (parsed < 0) {
        /* An exception is a human decision about the cluster whatever its mode. */
        return judged(r, c, have_res && res.exempt ? JUDGED_EXEMPT : JUDGED_UNKNOWN);
    }
    enum egress_mode m = parsed == EGRESS_OMITTED ? EGRESS_AWS_MANAGED : (enum egress_mode)parsed;
    unsigned allowed;
    if (have_res) {
        if (res.exempt)
            return judged(r, c, JUDGED_EXEMPT);
        allowed = res.allowed;
    } else {
        if (!re || av->state == SCPS_UNKNOWN || re->dec[m].verdict == SCP_UNEVALUABLE)
            return judged(r, c, JUDGED_UNKNOWN); /* the intent for this mode: never guessed */
        allowed = scp_allowed_set(re->dec);
    }
    if (allowed & EGRESS_BIT(m))
        return judged(r, c, JUDGED_COMPLIANT);
    if (judged(r, c, JUDGED_NONCOMPLIANT) != 0)
        return -1;
    return emit_noncompliant(r, av, re, c, m, allowed, have_res ? &res : NULL);
}

/* ---- unenforced_intent and scp_conflict: per account, grouped to region "*" ---- */

/* The modes outside `allowed` as a request can carry them: OMITTED is outside when
 * AWS_MANAGED is. */
static unsigned outside_set(unsigned allowed)
{
    unsigned out = ~allowed & EGRESS_ALL_NAMED;
    if (!(allowed & EGRESS_BIT(EGRESS_AWS_MANAGED)))
        out |= EGRESS_BIT(EGRESS_OMITTED);
    return out;
}

/* Whether no principal can create a cluster of named mode m (AWS_MANAGED also by omission). */
static int mode_denied(const struct scp_decision dec[N_DECISIONS], enum egress_mode m)
{
    unsigned producing = producing_set(m);
    for (int p = 0; p < EGRESS_MODES; p++)
        if ((producing & EGRESS_BIT(p)) && dec[p].verdict != SCP_DENIED)
            return 0;
    return 1;
}

static int same_decision(const struct scp_decision *a, const struct scp_decision *b)
{
    if (a->verdict != b->verdict || a->n_statements != b->n_statements ||
        a->restricts_mode != b->restricts_mode || strcmp(a->reason, b->reason) != 0)
        return 0;
    for (size_t i = 0; i < a->n_statements && i < SCP_MAX_STATEMENTS; i++)
        if (strcmp(a->statements[i], b->statements[i]) != 0)
            return 0;
    return 1;
}

static void compute_enforcement(const struct account_view *av, struct region_eval *re)
{
    re->leak = 0;
    re->conflict = 0;
    unsigned allowed = re->scope.allowed;
    if (re->scope.require_scp) {
        unsigned outside = outside_set(allowed);
        if (av->is_management || av->state == SCPS_UNKNOWN) {
            re->leak = outside; /* nothing enforces there, or nothing is known to */
        } else {
            for (int m = 0; m < EGRESS_MODES; m++)
                if ((outside & EGRESS_BIT(m)) && re->dec[m].verdict != SCP_DENIED)
                    re->leak |= EGRESS_BIT(m);
        }
    }
    /* SCPs never apply to the management account, and unknown or unevaluable SCPs are not
     * known to deny anything: no conflict there. */
    if (!av->is_management && av->state == SCPS_EVALUATED && allowed != 0) {
        re->conflict = 1;
        for (int m = 0; m < NAMED_MODES; m++)
            if ((allowed & EGRESS_BIT(m)) && !mode_denied(re->dec, (enum egress_mode)m))
                re->conflict = 0;
    }
}

/* The SCP decisions a finding of this kind reports for region re (bits of dec[]). */
static unsigned reported_modes(const struct region_eval *re, int conflict)
{
    if (!conflict)
        return re->leak;
    unsigned out = 0;
    for (int m = 0; m < NAMED_MODES; m++)
        if (re->scope.allowed & EGRESS_BIT(m))
            out |= producing_set((enum egress_mode)m);
    return out;
}

/* Whether region b's finding would say exactly what region a's says. */
static int same_enforcement(const struct account_view *av, const struct region_eval *a,
                            const struct region_eval *b, int conflict)
{
    if (strcmp(a->scope.rule_id, b->scope.rule_id) != 0 || a->scope.allowed != b->scope.allowed)
        return 0;
    if (conflict ? a->conflict != b->conflict : a->leak != b->leak)
        return 0;
    if (av->is_management || av->state == SCPS_UNKNOWN)
        return 1;
    unsigned modes = reported_modes(a, conflict);
    for (int m = 0; m < EGRESS_MODES; m++)
        if ((modes & EGRESS_BIT(m)) && !same_decision(&a->dec[m], &b->dec[m]))
            return 0;
    return 1;
}

static int emit_enforcement(struct drift_run *r, const struct account_view *av,
                            const struct region_eval *re, const char *region, int conflict)
{
    int bad = 0;
    json_t *d = json_object();
    char source[96];
    snprintf(source, sizeof source, "policy:%s", re->scope.rule_id);
    struct finding f = {0};
    f.account_id = av->id;
    f.region = region;
    f.allowed_modes = re->scope.allowed;
    f.source = source;
    unsigned modes = reported_modes(re, conflict);
    if (conflict) {
        f.kind = "scp_conflict";
        f.severity = "medium";
        jset(d, "rule", jstr(re->scope.rule_id), &bad);
        jset(d, "allowed_modes", modes_json(re->scope.allowed, &bad), &bad);
        json_t *denied = json_array();
        for (int m = 0; m < EGRESS_MODES; m++)
            if (modes & EGRESS_BIT(m))
                jpush(denied, decision_json((enum egress_mode)m, &re->dec[m], &bad), &bad);
        jset(d, "denied", denied, &bad);
        jset(d, "note",
             json_string("the SCPs deny every mode the declared policy allows: no compliant "
                         "cluster can be created"),
             &bad);
    } else {
        f.kind = "unenforced_intent";
        f.severity = "high";
        const char *reason;
        json_t *leaking = json_array();
        if (av->is_management || av->state == SCPS_UNKNOWN) {
            reason = av->is_management ? "management_account" : "scp_unknown";
            if (!av->is_management)
                f.severity = "medium"; /* not a known leak: an unverifiable requirement */
            for (int m = 0; m < EGRESS_MODES; m++)
                if (modes & EGRESS_BIT(m)) {
                    json_t *o = json_object();
                    jset(o, "mode", json_string(egress_mode_name((enum egress_mode)m)), &bad);
                    jset(o, "verdict",
                         json_string(av->is_management ? "not_applicable" : "unknown"), &bad);
                    jpush(leaking, o, &bad);
                }
            if (av->state == SCPS_UNKNOWN && !av->is_management)
                jset(d, "scp_note", jstr(av->state_reason), &bad);
        } else {
            int unevaluable = 0;
            for (int m = 0; m < EGRESS_MODES; m++)
                if (modes & EGRESS_BIT(m)) {
                    jpush(leaking, decision_json((enum egress_mode)m, &re->dec[m], &bad), &bad);
                    unevaluable |= re->dec[m].verdict == SCP_UNEVALUABLE;
                }
            reason = restricts_mode(re->dec) || unevaluable ? "scp_gap" : "no_scp";
        }
        jset(d, "reason", json_string(reason), &bad);
        jset(d, "rule", jstr(re->scope.rule_id), &bad);
        jset(d, "allowed_modes", modes_json(re->scope.allowed, &bad), &bad);
        jset(d, "leaking_modes", leaking, &bad);
        jset(d, "note",
             json_string("require_scp: a new cluster could still be created outside the "
                         "declared intent"),
             &bad);
    }
    json_t *regions = json_array();
    if (strcmp(region, "*") == 0) {
        for (size_t i = 0; i < r->n_regions; i++)
            if (r->regions[i].scanned)
                jpush(regions, jstr(r->regions[i].region), &bad);
    } else {
        jpush(regions, jstr(region), &bad);
    }
    jset(d, "regions", regions, &bad);
    return emit_finding(r, &f, d, bad);
}

/* One kind (conflict or leak) for the account: region "*" when every scanned region has the same
 * finding, else one per region that has it. */
static int emit_enforcement_kind(struct drift_run *r, const struct account_view *av, int conflict)
{
    const struct region_eval *first = NULL;
    int everywhere = 1, any = 0;
    for (size_t i = 0; i < r->n_regions; i++) {
        const struct region_eval *re = &r->regions[i];
        if (!re->scanned)
            continue;
        int has = conflict ? re->conflict : re->leak != 0;
        any |= has;
        if (!has)
            everywhere = 0;
        else if (!first)
            first = re;
        else if (!same_enforcement(av, first, re, conflict))
            everywhere = 0;
    }
    if (!any)
        return 0;
    if (everywhere)
        return emit_enforcement(r, av, first, "*", conflict);
    for (size_t i = 0; i < r->n_regions; i++) {
        const struct region_eval *re = &r->regions[i];
        if (re->scanned && (conflict ? re->conflict : re->leak != 0) &&
            emit_enforcement(r, av, re, re->region, conflict) != 0)
            return -1;
    }
    return 0;
}

/* ---- the account loop ---- */

static int cmp_account_ptr(const void *a, const void *b)
{
    const struct drift_account *x = *(const struct drift_account *const *)a;
    const struct drift_account *y = *(const struct drift_account *const *)b;
    return strcmp(nz(x->id), nz(y->id));
}

static int cmp_cluster_ptr(const void *a, const void *b)
{
    const struct drift_cluster *x = *(const struct drift_cluster *const *)a;
    const struct drift_cluster *y = *(const struct drift_cluster *const *)b;
    int c = strcmp(nz(x->account_id), nz(y->account_id));
    if (c == 0)
        c = strcmp(nz(x->region), nz(y->region));
    if (c == 0)
        c = strcmp(nz(x->name), nz(y->name));
    return c;
}

static int cmp_target_ptr(const void *a, const void *b)
{
    const struct drift_target *x = *(const struct drift_target *const *)a;
    const struct drift_target *y = *(const struct drift_target *const *)b;
    int c = strcmp(nz(x->account_id), nz(y->account_id));
    return c ? c : strcmp(nz(x->region), nz(y->region));
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_regional(const struct drift_target *t)
{
    return t->region && *t->region && strcmp(t->region, "*") != 0;
}

static int cmp_ok_ptr(const void *a, const void *b)
{
    const struct drift_ok_account *x = *(const struct drift_ok_account *const *)a;
    const struct drift_ok_account *y = *(const struct drift_ok_account *const *)b;
    return strcmp(nz(x->account_id), nz(y->account_id));
}

static int cmp_ok_region(const void *a, const void *b)
{
    return strcmp(((const struct ok_region *)a)->name, ((const struct ok_region *)b)->name);
}

static int bit_set(const uint64_t *bits, size_t i)
{
    return bits && (bits[i / 64] >> (i % 64) & 1u);
}

/* Whether an ok entry of the account has region table entry i. */
static int ok_has(const struct drift_ok_account *const *ok, size_t n_ok, size_t i)
{
    for (size_t k = 0; k < n_ok; k++)
        if (bit_set(ok[k]->regions, i))
            return 1;
    return 0;
}

/* Everything about one account: its regions, their decisions, its clusters, its enforcement. */
static int process_account(struct drift_run *r, const char *id, const struct drift_account *acct,
                           const struct drift_cluster *const *cl, size_t n_cl,
                           const struct drift_target *const *tg, size_t n_tg,
                           const struct drift_ok_account *const *ok, size_t n_ok)
{
    const struct drift_input *in = r->in;
    int suspended = 0;
    for (size_t i = 0; i < n_tg; i++)
        suspended |= tg[i]->status == TARGET_SUSPENDED;
    if (suspended)
        return 0; /* it left the fleet: nothing there to judge or enforce */
    if (n_cl == 0 && ((n_tg == 0 && n_ok == 0) || !in->policy))
        return 0; /* nothing observed there and nothing to enforce */
    struct account_view av;
    if (account_prepare(r, id, acct, &av) != 0)
        return err_set(r->err, ERR_NOMEM, "drift: out of memory");

    /* Regions: those the scan covered (a disabled region hosts nothing and needs no guard), all
     * the fleet's for an account that failed as a whole, and wherever a cluster is. */
    r->n_regions = 0;
    int account_failed = 0;
    /* The rows and the ok bitset merged in region order, as if every ok row were a row. */
    size_t it = 0, io = 0;
    while (it < n_tg || io < in->n_ok_regions) {
        if (io < in->n_ok_regions && !ok_has(ok, n_ok, r->ok_order[io].bit)) {
            io++;
            continue;
        }
        const char *region;
        if (it < n_tg &&
            (io == in->n_ok_regions || strcmp(nz(tg[it]->region), r->ok_order[io].name) <= 0)) {
            const struct drift_target *t = tg[it++];
            if (!is_regional(t)) {
                account_failed |= t->status != TARGET_OK;
                continue;
            }
            if (t->status == TARGET_REGION_DISABLED)
                continue;
            region = t->region;
        } else {
            region = r->ok_order[io++].name;
            if (!*region || strcmp(region, "*") == 0)
                continue;
        }
        struct region_eval *re = region_add(r, region);
        if (!re)
            return err_set(r->err, ERR_NOMEM, "drift: out of memory");
        re->scanned = 1;
    }
    if (r->n_regions == 0 && account_failed) {
        for (size_t i = 0; i < r->n_fleet_regions; i++) {
            struct region_eval *re = region_add(r, r->fleet_regions[i]);
            if (!re)
                return err_set(r->err, ERR_NOMEM, "drift: out of memory");
            re->scanned = 1;
        }
    }
    for (size_t i = 0; i < n_cl; i++)
        if (!region_add(r, nz(cl[i]->region)))
            return err_set(r->err, ERR_NOMEM, "drift: out of memory");

    for (size_t i = 0; i < r->n_regions; i++) {
        struct region_eval *re = &r->regions[i];
        account_decide(r, &av, re->region, re->dec);
        re->evaluated = 1;
        if (in->policy) {
            struct policy_subject s;
            subject_init(&s, &av, re->region);
            policy_resolve(in->policy, &s, in->now, &re->scope);
            compute_enforcement(&av, re);
        }
    }
    for (size_t i = 0; i < n_cl; i++)
        if (judge_cluster(r, &av, cl[i]) != 0)
            return -1;
    if (in->policy) {
        if (emit_enforcement_kind(r, &av, 0) != 0 || emit_enforcement_kind(r, &av, 1) != 0)
            return -1;
    }
    return 0;
}

static int cmp_account_key(const void *key, const void *elem)
{
    const struct drift_account *a = *(const struct drift_account *const *)elem;
    return strcmp((const char *)key, nz(a->id));
}

/* Whether the snapshot's SCPs deny the scanner's own call (eks:ListClusters as the role it
 * assumes) in account_id and region to that principal; dec gets the decision. */
static int scanner_call_denied(const struct drift_run *r, const char *account_id,
                               const char *region, const char *role, struct scp_decision *dec)
{
    /* what the early returns mean: nothing is known to deny the call */
    memset(dec, 0, sizeof *dec);
    dec->verdict = SCP_ALLOWED;
    if (!r->in->scps_known || !r->scps_in_effect || !account_id || !r->sorted_accounts)
        return 0;
    const struct drift_account *const *found = bsearch(
        account_id, r->sorted_accounts, r->n_sorted_accounts, sizeof *found, cmp_account_key);
    if (!found || (*found)->is_management || !(*found)->ou_id_path)
        return 0;
    struct scp_path path;
    struct err e;
    err_clear(&e);
    int rc = scp_levels_for(&r->ix, (*found)->ou_id_path, account_id, &path, &e);
    if (rc != 0 || path.missing) {
        dec->verdict = SCP_UNEVALUABLE;
        snprintf(dec->reason, sizeof dec->reason, "%.200s",
                 rc != 0 ? e.message : "the SCP snapshot is incomplete");
        return 0;
    }
    const char *partition = r->in->partition ? r->in->partition : "aws";
    char principal[256];
    snprintf(principal, sizeof principal, "arn:%s:iam::%s:role/%s", partition, account_id, role);
    struct scp_request req = {"eks:ListClusters", account_id, region, EGRESS_OMITTED, principal};
    scp_evaluate(path.levels, path.n_levels, &req, partition, dec);
    return dec->verdict == SCP_DENIED;
}

/* What an scp_denied target's finding says: the SCP statements that deny the scanner there and
 * how to fix it. The statements come from the scan's own record of the refusal (the scheduler
 * names them when it did not call a region the SCPs deny) or, for a refusal AWS answered, from
 * the SCP evaluation of the scanner's call (scanner_call_denied). */
static int scp_denied_details(struct drift_run *r, const struct drift_target *t, json_t *d,
                              int *bad)
{
    json_t *by = json_array();
    /* only the scanner's own record names statements; an AWS message is free text */
    const char *msg =
        t->error_code && strcmp(t->error_code, "DeniedBySCP") == 0 ? nz(t->error_message) : "";
    /* "p-xxxx#Sid" tokens of the message, in order, once each */
    for (const char *p = strstr(msg, "p-"); p; p = strstr(p + 2, "p-")) {
        if (p > msg && (isalnum((unsigned char)p[-1]) || p[-1] == '-'))
            continue;
        size_t n = strcspn(p, " ,;)");
        const char *hash = memchr(p, '#', n);
        if (!hash || hash == p + 2 || (size_t)(hash - p) + 1 == n)
            continue;
        json_t *v = json_stringn(p, n);
        size_t i;
        json_t *e;
        int dup = 0;
        json_array_foreach(by, i, e) dup |= json_equal(e, v);
        if (dup)
            json_decref(v);
        else
            jpush(by, v, bad);
    }
    char fix[768];
    const char *region = t->region && strcmp(t->region, "*") != 0 ? t->region : NULL;
    const char *role = r->in->scanner_role ? r->in->scanner_role : "EgressScanReadOnly";
    struct scp_decision dec;
    if (json_array_size(by) == 0 && region &&
        scanner_call_denied(r, t->account_id, region, role, &dec)) {
        /* AWS said an SCP denies it; the SCPs say which */
        for (size_t i = 0; i < dec.n_statements && i < SCP_MAX_STATEMENTS; i++)
            if (strchr(dec.statements[i], '#'))
                jpush(by, jstr(dec.statements[i]), bad);
    }
    if (json_array_size(by) > 0) {
        json_t *first = json_array_get(by, 0);
        const char *stmt = json_string_value(first);
        const char *hash = strchr(stmt, '#');
        snprintf(fix, sizeof fix,
                 "Exempt the scanner's role (arn:aws:iam::*:role/%s) in SCP %.*s statement %s "
                 "(e.g. add it to the statement's ArnNotLike aws:PrincipalArn list), or leave "
                 "region %s out of the scan (--regions or the config file's regions).",
                 role, (int)(hash - stmt), stmt, hash + 1, region ? region : "(all)");
    } else {
        snprintf(fix, sizeof fix,
                 "An SCP denies the scanner's role (arn:aws:iam::*:role/%s) here: exempt it in "
                 "that SCP (ArnNotLike aws:PrincipalArn), or leave region %s out of the scan "
                 "(--regions or the config file's regions).",
                 role, region ? region : "(all)");
    }
    jset(d, "denied_by", by, bad);
    jset(d, "fix", jstr(fix), bad);
    return 0;
}

static int emit_unscanned(struct drift_run *r, const struct drift_target *t)
{
    int bad = 0;
    json_t *d = json_object();
    jset(d, "status", json_string(target_status_name(t->status)), &bad);
    jset(d, "error_code", jstr(t->error_code), &bad);
    jset(d, "error_message", jstr(t->error_message), &bad);
    if (t->status == TARGET_SCP_DENIED && scp_denied_details(r, t, d, &bad) != 0)
        return -1;
    struct finding f = {0};
    f.kind = "unscanned_target";
    f.account_id = t->account_id;
    f.region = t->region && *t->region ? t->region : "*";
    f.source = "coverage";
    /* A whole account unseen is worse than one region; a disabled region can host nothing. */
    if (strcmp(f.region, "*") == 0)
        f.severity = "high";
    else if (t->status == TARGET_REGION_DISABLED)
        f.severity = "low";
    else
        f.severity = "medium";
    return emit_finding(r, &f, d, bad);
}

static int emit_mode_changed(struct drift_run *r, const struct drift_change *ch)
{
    int from = egress_mode_parse(ch->from_mode);
    int to = egress_mode_parse(ch->to_mode);
    /* CUSTOMER_ROUTED is one-way: a cluster of that name with any other mode is a new one. */
    int replaced = from == EGRESS_CUSTOMER_ROUTED && to != EGRESS_CUSTOMER_ROUTED;
    int bad = 0;
    json_t *d = json_object();
    jset(d, "from", jstr(ch->from_mode), &bad);
    jset(d, "to", jstr(ch->to_mode), &bad);
    jset(d, "replaced", json_boolean(replaced), &bad);
    if (replaced)
        jset(d, "note",
             json_string("a CUSTOMER_ROUTED cluster can never change back: the cluster was "
                         "deleted and re-created under the same name"),
             &bad);
    struct finding f = {0};
    f.kind = "mode_changed";
    f.severity = replaced ? "high" : "info";
    f.account_id = ch->account_id;
    f.region = ch->region;
    f.cluster_arn = ch->arn;
    f.observed_mode = ch->to_mode;
    f.source = "history";
    return emit_finding(r, &f, d, bad);
}

static int emit_expired_exceptions(struct drift_run *r)
{
    const struct policy *p = r->in->policy;
    size_t n = policy_exception_count(p);
    for (size_t i = 0; i < n; i++) {
        const char *arn = NULL, *reason = NULL, *expires = NULL;
        policy_exception_get(p, i, &arn, &reason, &expires);
        if (!policy_exception_expired(p, i, r->in->now))
            continue;
        /* arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME */
        char region[64] = "*", account[64] = "";
        const char *f3 = arn, *f4 = NULL, *f5 = NULL;
        for (int k = 0; f3 && k < 3; k++) {
            f3 = strchr(f3, ':');
            f3 = f3 ? f3 + 1 : NULL;
        }
        f4 = f3 ? strchr(f3, ':') : NULL;
        f5 = f4 ? strchr(f4 + 1, ':') : NULL;
        if (f5) {
            snprintf(region, sizeof region, "%.*s", (int)(f4 - f3), f3);
            snprintf(account, sizeof account, "%.*s", (int)(f5 - f4 - 1), f4 + 1);
        }
        int bad = 0;
        json_t *d = json_object();
        jset(d, "cluster_arn", jstr(arn), &bad);
        jset(d, "reason", jstr(reason), &bad);
        jset(d, "expires", jstr(expires), &bad);
        jset(d, "note",
             json_string("the exception no longer applies: the cluster is judged by the policy "
                         "again"),
             &bad);
        struct finding f = {0};
        f.kind = "exception_expired";
        f.severity = "medium";
        f.account_id = account;
        f.region = region[0] ? region : "*";
        f.cluster_arn = arn;
        f.source = "policy:exception";
        if (emit_finding(r, &f, d, bad) != 0)
            return -1;
    }
    return 0;
}

static void run_cleanup(struct drift_run *r)
{
    scp_index_free(&r->ix);
    free(r->path_buf);
    free(r->tokens);
    free(r->levels);
    free(r->regions);
    free(r->fleet_regions);
    free(r->ok_order);
}

static int run_init(struct drift_run *r, const struct drift_input *in, const char *const *only_ids,
                    size_t n_only, struct err *err)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->err = err;
    if (in->scps_known) {
        if (scp_index_build(&r->ix, in->scps, in->n_scps, only_ids, n_only, err) != 0)
            return -1;
        /* "In effect" is judged on the whole organization, not on the filtered index. */
        for (size_t i = 0; i < in->n_scps && !r->scps_in_effect; i++)
            for (size_t t = 0; t < in->scps[i].n_targets; t++)
                if (in->scps[i].targets[t])
                    r->scps_in_effect = 1;
    }
    return 0;
}

int drift_evaluate(const struct drift_input *in, drift_emit_fn emit, void *ud,
                   struct drift_counts *counts, struct err *err)
{
    struct drift_counts local = {0};
    if (!counts)
        counts = &local;
    memset(counts, 0, sizeof *counts);
    struct drift_run r;
    if (run_init(&r, in, NULL, 0, err) != 0)
        return -1;
    r.emit = emit;
    r.ud = ud;
    r.counts = counts;
    int rc = -1;
    const struct drift_account **acc = malloc((in->n_accounts ? in->n_accounts : 1) * sizeof *acc);
    const struct drift_cluster **cl = malloc((in->n_clusters ? in->n_clusters : 1) * sizeof *cl);
    const struct drift_target **tg = malloc((in->n_targets ? in->n_targets : 1) * sizeof *tg);
    const struct drift_ok_account **ok =
        malloc((in->n_ok_accounts ? in->n_ok_accounts : 1) * sizeof *ok);
    r.fleet_regions = malloc((in->n_targets + in->n_ok_regions + 1) * sizeof *r.fleet_regions);
    r.ok_order = malloc((in->n_ok_regions ? in->n_ok_regions : 1) * sizeof *r.ok_order);
    size_t ok_words = (in->n_ok_regions + 63) / 64;
    uint64_t *ok_any = calloc(ok_words ? ok_words : 1, sizeof *ok_any);
    if (!acc || !cl || !tg || !ok || !r.fleet_regions || !r.ok_order || !ok_any) {
        err_set(err, ERR_NOMEM, "drift: out of memory");
        goto out;
    }
    for (size_t i = 0; i < in->n_accounts; i++)
        acc[i] = &in->accounts[i];
    for (size_t i = 0; i < in->n_clusters; i++)
        cl[i] = &in->clusters[i];
    for (size_t i = 0; i < in->n_targets; i++)
        tg[i] = &in->targets[i];
    for (size_t i = 0; i < in->n_ok_accounts; i++) {
        ok[i] = &in->ok_accounts[i];
        for (size_t w = 0; ok[i]->regions && w < ok_words; w++)
            ok_any[w] |= ok[i]->regions[w];
    }
    for (size_t i = 0; i < in->n_ok_regions; i++)
        r.ok_order[i] = (struct ok_region){nz(in->ok_regions[i]), i};
    qsort(r.ok_order, in->n_ok_regions, sizeof *r.ok_order, cmp_ok_region);
    qsort(acc, in->n_accounts, sizeof *acc, cmp_account_ptr);
    r.sorted_accounts = acc;
    r.n_sorted_accounts = in->n_accounts;
    qsort(cl, in->n_clusters, sizeof *cl, cmp_cluster_ptr);
    qsort(tg, in->n_targets, sizeof *tg, cmp_target_ptr);
    qsort(ok, in->n_ok_accounts, sizeof *ok, cmp_ok_ptr);
    for (size_t i = 0; i < in->n_targets; i++)
        if (is_regional(&in->targets[i]) && in->targets[i].status == TARGET_OK)
            r.fleet_regions[r.n_fleet_regions++] = in->targets[i].region;
    for (size_t i = 0; i < in->n_ok_regions; i++) {
        const char *region = nz(in->ok_regions[i]);
        if (bit_set(ok_any, i) && *region && strcmp(region, "*") != 0)
            r.fleet_regions[r.n_fleet_regions++] = region;
    }
    qsort(r.fleet_regions, r.n_fleet_regions, sizeof *r.fleet_regions, cmp_str_ptr);
    size_t n_unique = 0;
    for (size_t i = 0; i < r.n_fleet_regions; i++)
        if (n_unique == 0 || strcmp(r.fleet_regions[n_unique - 1], r.fleet_regions[i]) != 0)
            r.fleet_regions[n_unique++] = r.fleet_regions[i];
    r.n_fleet_regions = n_unique;

    /* Merge the four sorted lists account by account. */
    size_t ia = 0, ic = 0, it = 0, io = 0;
    while (ia < in->n_accounts || ic < in->n_clusters || it < in->n_targets ||
           io < in->n_ok_accounts) {
        const char *id = NULL;
        if (ia < in->n_accounts)
            id = nz(acc[ia]->id);
        if (ic < in->n_clusters && (!id || strcmp(nz(cl[ic]->account_id), id) < 0))
            id = nz(cl[ic]->account_id);
        if (it < in->n_targets && (!id || strcmp(nz(tg[it]->account_id), id) < 0))
            id = nz(tg[it]->account_id);
        if (io < in->n_ok_accounts && (!id || strcmp(nz(ok[io]->account_id), id) < 0))
            id = nz(ok[io]->account_id);
        const struct drift_account *a = NULL;
        while (ia < in->n_accounts && strcmp(nz(acc[ia]->id), id) == 0) {
            if (!a)
                a = acc[ia];
            ia++;
        }
        size_t c0 = ic, t0 = it, o0 = io;
        while (ic < in->n_clusters && strcmp(nz(cl[ic]->account_id), id) == 0)
            ic++;
        while (it < in->n_targets && strcmp(nz(tg[it]->account_id), id) == 0)
            it++;
        while (io < in->n_ok_accounts && strcmp(nz(ok[io]->account_id), id) == 0)
            io++;
        if (process_account(&r, id, a, cl + c0, ic - c0, tg + t0, it - t0, ok + o0, io - o0) != 0)
            goto out;
    }
    for (size_t i = 0; i < in->n_targets; i++)
        if (target_status_failed(in->targets[i].status) && emit_unscanned(&r, &in->targets[i]) != 0)
            goto out;
    for (size_t i = 0; i < in->n_changes; i++)
        if (emit_mode_changed(&r, &in->changes[i]) != 0)
            goto out;
    if (in->policy && emit_expired_exceptions(&r) != 0)
        goto out;
    rc = 0;
out:
    free(acc);
    free(cl);
    free(tg);
    free(ok);
    free(ok_any);
    run_cleanup(&r);
    return rc;
}

/* A run for one account of the snapshot: *acct is found, and only the documents on its path
 * are parsed (the path's ids are needed only while the index is built). */
static int run_init_account(struct drift_run *r, const struct drift_input *in,
                            const char *account_id, const struct drift_account **acct,
                            struct err *err)
{
    *acct = NULL;
    for (size_t i = 0; i < in->n_accounts && !*acct; i++)
        if (in->accounts[i].id && account_id && strcmp(in->accounts[i].id, account_id) == 0)
            *acct = &in->accounts[i];
    if (!*acct)
        return err_set(err, ERR_INVALID, "account %s is not in the organization snapshot",
                       nz(account_id));
    const char *ids[64];
    size_t n_ids = 0;
    char path[1024];
    snprintf(path, sizeof path, "%s", nz((*acct)->ou_id_path));
    for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok && n_ids < 63;
         tok = strtok_r(NULL, "/", &save))
        ids[n_ids++] = tok;
    ids[n_ids++] = (*acct)->id;
    return run_init(r, in, ids, n_ids, err) != 0 ? -1 : 0;
}

int drift_scp_intent(const struct drift_input *in, const char *account_id, const char *region,
                     struct scp_decision modes[EGRESS_MODES], struct scp_decision *update,
                     int *exempt, struct err *err)
{
    const struct drift_account *acct;
    struct drift_run r;
    if (run_init_account(&r, in, account_id, &acct, err) < 0)
        return -1;
    struct account_view av;
    int rc = account_prepare(&r, acct->id, acct, &av);
    if (rc == 0) {
        struct scp_decision dec[N_DECISIONS];
        account_decide(&r, &av, nz(region), dec);
        for (int m = 0; m < EGRESS_MODES; m++)
            modes[m] = dec[m];
        if (update)
            *update = dec[DEC_UPDATE];
        if (exempt)
            *exempt = av.is_management;
    } else {
        err_set(err, ERR_NOMEM, "drift: out of memory");
    }
    run_cleanup(&r);
    return rc;
}

int drift_scanner_call(const struct drift_input *in, const char *account_id, const char *region,
                       const char *role, struct scp_decision *dec, struct err *err)
{
    const struct drift_account *acct;
    struct drift_run r;
    if (run_init_account(&r, in, account_id, &acct, err) < 0)
        return -1;
    const struct drift_account *one[1] = {acct};
    r.sorted_accounts = one;
    r.n_sorted_accounts = 1;
    scanner_call_denied(&r, acct->id, nz(region), role ? role : "EgressScanReadOnly", dec);
    run_cleanup(&r);
    return 0;
}

/* ---- the SCP-backed intent of a whole fleet (`egressscan scps`) ----
 *
 * What is cached, and why it is exact. An account's decisions in a region are a function of
 * what scp_evaluate reads: the levels of its path (each level's target id and documents, in
 * order), the request (action, mode, region, account id) and the partition. For two accounts
 * the levels are the same when their OU id paths are the same strings (the root and OU levels
 * are looked up from the path's ids alone) and their own attachments are the same parsed
 * documents in the same order; the account level's target id is the account id itself. So an
 * entry is keyed by (OU id path, the account level's documents, region), and two accounts
 * share it only when the account id cannot make a difference:
 * - both ids are 12 digits and no document on the path reads the account
 *   (scp_doc_reads_account: no literal digit in a pattern matched against the cluster or
 *   principal ARN, so every 12-digit account matches alike);
 * - the account id shows in a decision only where it is spelled: "no Allow at ACCOUNT" (the
 *   account's level) and the principal examples "arn:PART:iam::ACCOUNT:...". Those are rewritten
 *   from the account the entry was evaluated for to the account asking, digit for digit. For the
 *   rewrite to touch nothing else, no OU id on the path may itself be 12 digits and no document
 *   id may begin with "no Allow at " (neither happens in an organization; such a path is simply
 *   evaluated per account).
 * The management account's exemption is per account and not part of a decision. States other
 * than an evaluated path (SCPs unknown, none in effect, an incomplete snapshot whose reason
 * names a target) are cheap and filled per account. Anything not shared is evaluated as
 * drift_scp_intent would, over the same parsed documents. At most INTENT_CACHE_MAX entries
 * (each N_DECISIONS decisions, ~7 KB): beyond that, evaluations are not kept. */

#define INTENT_CACHE_MAX 4096
#define INTENT_CACHE_SLOTS (2 * INTENT_CACHE_MAX) /* a power of two */

static const char no_allow_at[] = "no Allow at ";

struct intent_entry {
    const char *ou_id_path;            /* borrowed from the first account's record */
    const struct scp_doc *const *docs; /* the account level's, borrowed from the index */
    size_t n_docs;
    char region[64];
    char account[16]; /* the account it was evaluated for (12 digits) */
    unsigned long long hash;
    struct scp_decision dec[N_DECISIONS];
};

struct drift_intent_cache {
    struct drift_run r;
    const struct drift_account **sorted; /* by id, then position in the snapshot */
    const struct scp_doc **unshared;     /* documents that keep their paths per account, sorted */
    size_t n_unshared;
    struct intent_entry *entries;
    size_t n_entries, entries_cap;
    uint32_t *slots; /* entry index + 1; 0 empty */
    size_t evaluated, reused;
    /* the account of the previous call, prepared */
    const struct drift_account *last;
    struct account_view av;
    int shareable;
    unsigned long long path_hash;
};

static int cmp_account_pos(const void *a, const void *b)
{
    const struct drift_account *x = *(const struct drift_account *const *)a;
    const struct drift_account *y = *(const struct drift_account *const *)b;
    int c = strcmp(nz(x->id), nz(y->id));
    return c ? c : (x > y) - (x < y);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return (x > y) - (x < y);
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

struct drift_intent_cache *drift_intent_cache_new(const struct drift_input *in, struct err *err)
{
    struct drift_intent_cache *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, ERR_NOMEM, "drift: out of memory");
        return NULL;
    }
    /* the whole organization's documents, each parsed once */
    int rc = run_init(&c->r, in, NULL, 0, err);
    c->r.err = NULL; /* the decisions emit nothing */
    if (rc != 0) {
        drift_intent_cache_free(c);
        return NULL;
    }
    c->sorted = malloc((in->n_accounts ? in->n_accounts : 1) * sizeof *c->sorted);
    c->unshared = malloc((c->r.ix.n_docs ? c->r.ix.n_docs : 1) * sizeof *c->unshared);
    c->slots = calloc(INTENT_CACHE_SLOTS, sizeof *c->slots);
    if (!c->sorted || !c->unshared || !c->slots) {
        err_set(err, ERR_NOMEM, "drift: out of memory");
        drift_intent_cache_free(c);
        return NULL;
    }
    for (size_t i = 0; i < in->n_accounts; i++)
        c->sorted[i] = &in->accounts[i];
    qsort(c->sorted, in->n_accounts, sizeof *c->sorted, cmp_account_pos);
    for (size_t i = 0; i < c->r.ix.n_docs; i++) {
        const struct scp_doc *d = c->r.ix.docs[i];
        if (d && (scp_doc_reads_account(d) ||
                  strncmp(nz(scp_doc_id(d)), no_allow_at, sizeof no_allow_at - 1) == 0))
            c->unshared[c->n_unshared++] = d;
    }
    qsort(c->unshared, c->n_unshared, sizeof *c->unshared, cmp_ptr);
    return c;
}

void drift_intent_cache_free(struct drift_intent_cache *c)
{
    if (!c)
        return;
    run_cleanup(&c->r);
    free(c->sorted);
    free(c->unshared);
    free(c->entries);
    free(c->slots);
    free(c);
}

void drift_intent_cache_stats(const struct drift_intent_cache *c, size_t *evaluated, size_t *reused)
{
    *evaluated = c ? c->evaluated : 0;
    *reused = c ? c->reused : 0;
}

/* The first account of the snapshot with this id (as drift_scp_intent finds it), or NULL. */
static const struct drift_account *intent_account(const struct drift_intent_cache *c,
                                                  const char *id)
{
    size_t lo = 0, hi = c->r.in->n_accounts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(nz(c->sorted[mid]->id), id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->r.in->n_accounts || !c->sorted[lo]->id || strcmp(c->sorted[lo]->id, id) != 0)
        return NULL;
    return c->sorted[lo];
}

/* Whether av's decisions may be shared with other accounts of the same key (see above). */
static int intent_shareable(const struct drift_intent_cache *c, const struct account_view *av)
{
    if (av->state != SCPS_EVALUATED || !account_id_valid(av->id) || !av->acct->ou_id_path)
        return 0;
    for (size_t i = 0; i < av->n_levels; i++) {
        const struct scp_level *lv = &av->levels[i];
        if (i + 1 < av->n_levels && account_id_valid(lv->target_id))
            return 0;
        for (size_t j = 0; c->n_unshared && j < lv->n_docs; j++) {
            const struct scp_doc *d = lv->docs[j];
            if (bsearch(&d, c->unshared, c->n_unshared, sizeof *c->unshared, cmp_ptr))
                return 0;
        }
    }
    return 1;
}

/* The decisions of the account `from` as the account `to` would get them (both 12 digits, a
 * path that reads neither): the account's own level and the principal examples renamed. */
static void intent_rebase(struct scp_decision dec[N_DECISIONS], const char *from, const char *to,
                          const char *partition)
{
    char no_allow[32], prefix[64];
    snprintf(no_allow, sizeof no_allow, "%s%s", no_allow_at, from);
    int plen = snprintf(prefix, sizeof prefix, "arn:%s:iam::%s:", partition, from);
    for (int i = 0; i < N_DECISIONS; i++) {
        struct scp_decision *d = &dec[i];
        for (size_t k = 0; k < d->n_statements; k++)
            if (strcmp(d->statements[k], no_allow) == 0)
                memcpy(d->statements[k] + sizeof no_allow_at - 1, to, 12);
        char *examples[] = {d->allowed_principal, d->denied_principal};
        for (size_t k = 0; k < 2; k++)
            if (plen > 13 && (size_t)plen < sizeof prefix &&
                strncmp(examples[k], prefix, (size_t)plen) == 0)
                memcpy(examples[k] + plen - 13, to, 12);
    }
}

static int intent_key_equal(const struct intent_entry *e, const struct account_view *av,
                            const char *region, unsigned long long hash)
{
    const struct scp_level *own = &av->levels[av->n_levels - 1];
    return e->hash == hash && e->n_docs == own->n_docs &&
           (own->n_docs == 0 || memcmp(e->docs, own->docs, own->n_docs * sizeof *own->docs) == 0) &&
           strcmp(e->region, region) == 0 && strcmp(e->ou_id_path, av->acct->ou_id_path) == 0;
}

int drift_intent_cache_decide(struct drift_intent_cache *c, const char *account_id,
                              const char *region, struct scp_decision modes[EGRESS_MODES],
                              struct scp_decision *update, int *exempt, struct err *err)
{
    const struct drift_account *acct = account_id ? intent_account(c, account_id) : NULL;
    if (!acct)
        return err_set(err, ERR_INVALID, "account %s is not in the organization snapshot",
                       nz(account_id));
    if (acct != c->last) {
        c->last = NULL;
        if (account_prepare(&c->r, acct->id, acct, &c->av) != 0)
            return err_set(err, ERR_NOMEM, "drift: out of memory");
        c->last = acct;
        c->shareable = intent_shareable(c, &c->av);
        if (c->shareable) {
            const struct scp_level *own = &c->av.levels[c->av.n_levels - 1];
            unsigned long long h =
                fnv(14695981039346656037ULL, acct->ou_id_path, strlen(acct->ou_id_path) + 1);
            c->path_hash = fnv(h, own->docs, own->n_docs * sizeof *own->docs);
        }
    }
    const struct account_view *av = &c->av;
    region = nz(region);
    struct scp_decision dec[N_DECISIONS];
    struct intent_entry *hit = NULL;
    uint32_t *slot = NULL;
    unsigned long long hash = 0;
    if (c->shareable && strlen(region) < sizeof hit->region) {
        hash = fnv(c->path_hash, region, strlen(region));
        for (size_t i = hash & (INTENT_CACHE_SLOTS - 1);; i = (i + 1) & (INTENT_CACHE_SLOTS - 1)) {
            if (!c->slots[i]) {
                slot = &c->slots[i];
                break;
            }
            if (intent_key_equal(&c->entries[c->slots[i] - 1], av, region, hash)) {
                hit = &c->entries[c->slots[i] - 1];
                break;
            }
        }
    }
    const char *partition = c->r.in->partition ? c->r.in->partition : "aws";
    if (hit) {
        memcpy(dec, hit->dec, sizeof dec);
        if (strcmp(hit->account, acct->id) != 0)
            intent_rebase(dec, hit->account, acct->id, partition);
        c->reused++;
    } else {
        account_decide(&c->r, av, region, dec);
        c->evaluated++;
        if (slot && c->n_entries < INTENT_CACHE_MAX) {
            struct intent_entry *entries =
                reserve(c->entries, &c->entries_cap, c->n_entries + 1, sizeof *entries);
            if (entries) { /* else: not kept, nothing lost */
                c->entries = entries;
                struct intent_entry *e = &c->entries[c->n_entries++];
                const struct scp_level *own = &av->levels[av->n_levels - 1];
                e->ou_id_path = acct->ou_id_path;
                e->docs = own->docs;
                e->n_docs = own->n_docs;
                snprintf(e->region, sizeof e->region, "%s", region);
                snprintf(e->account, sizeof e->account, "%s", acct->id);
                e->hash = hash;
                memcpy(e->dec, dec, sizeof dec);
                *slot = (uint32_t)c->n_entries;
            }
        }
    }
    for (int m = 0; m < EGRESS_MODES; m++)
        modes[m] = dec[m];
    if (update)
        *update = dec[DEC_UPDATE];
    if (exempt)
        *exempt = av->is_management;
    return 0;
}
