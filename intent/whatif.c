/* whatif.c - `egressscan scps --with FILE`: the organization snapshot of a scan with SCPs attached
 * or detached on paper, evaluated as drift.c evaluates the real one, and compared with it: per
 * account x region the verdicts, the clusters that could no longer be created, the remediations
 * and scanner calls the change would deny, and the findings it would open and close.
 *
 * Decided here:
 * - Accounts "under the change": those whose path (root, OUs, the account) names a target that
 *   gains or loses an SCP; their regions: those the scan covered ok. Nothing else can change.
 * - A remediation is blocked when UpdateClusterConfig to CUSTOMER_ROUTED is denied to every
 *   principal after the change and was not before; principal-dependent (an admin exemption) and
 *   unevaluable are reported, not counted as blocked. Likewise the scanner is denied when its own
 *   eks:ListClusters (as its role) is denied after and was not before.
 * - Findings are compared by kind, details.reason, account, region and cluster (not by source:
 *   the proposal has no policy id yet), so scp_gap -> predates_scp reads as one closed, one
 *   opened. */
#include "intent/whatif.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- validating a proposed SCP document ---- */

/* line:column (1-based, columns in characters) of byte offset off in text. */
static void position_of(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

/* A forward-only walk over JSON text that jansson has already accepted: enough to find where a
 * member or an array element starts. */
struct jwalk {
    const char *s;
    size_t n, i;
};

static void jw_ws(struct jwalk *w)
{
    while (w->i < w->n && strchr(" \t\r\n", w->s[w->i]))
        w->i++;
}

static void jw_string(struct jwalk *w)
{
    for (w->i++; w->i < w->n && w->s[w->i] != '"'; w->i++)
        if (w->s[w->i] == '\\')
            w->i++;
    w->i++;
}

static void jw_value(struct jwalk *w)
{
    jw_ws(w);
    if (w->i >= w->n)
        return;
    char c = w->s[w->i];
    if (c == '"') {
        jw_string(w);
        return;
    }
    if (c != '{' && c != '[') {
        while (w->i < w->n && !strchr(",}] \t\r\n", w->s[w->i]))
            w->i++;
        return;
    }
    int depth = 0;
    while (w->i < w->n) {
        c = w->s[w->i];
        if (c == '"') {
            jw_string(w);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0) {
            w->i++;
            return;
        }
        w->i++;
    }
}

/* With w at an object's '{': finds member key; *key_at gets the offset of its name, w is left at
 * its value. 0 when there is no such member. */
static int jw_member(struct jwalk *w, const char *key, size_t *key_at)
{
    jw_ws(w);
    if (w->i >= w->n || w->s[w->i] != '{')
        return 0;
    w->i++;
    size_t klen = strlen(key);
    for (;;) {
        jw_ws(w);
        if (w->i >= w->n || w->s[w->i] != '"')
            return 0;
        size_t start = w->i;
        jw_string(w);
        int match = w->i - start == klen + 2 && memcmp(w->s + start + 1, key, klen) == 0;
        jw_ws(w);
        w->i++; /* ':' */
        if (match) {
            jw_ws(w);
            *key_at = start;
            return 1;
        }
        jw_value(w);
        jw_ws(w);
        if (w->i >= w->n || w->s[w->i] != ',')
            return 0;
        w->i++;
    }
}

/* The offset of what a grammar error is about: the top-level member top_key (stmt < 0), else
 * Statement[stmt], or its member key. 0 when not found. */
static size_t locate(const char *text, size_t len, long stmt, const char *top_key, const char *key)
{
    struct jwalk w = {text, len, 0};
    size_t at = 0;
    if (stmt < 0)
        return top_key && jw_member(&w, top_key, &at) ? at : 0;
    if (!jw_member(&w, "Statement", &at))
        return 0;
    if (w.i < w.n && w.s[w.i] == '[') {
        w.i++;
        for (long k = 0; k < stmt; k++) {
            jw_value(&w);
            jw_ws(&w);
            if (w.i >= w.n || w.s[w.i] != ',')
                return at;
            w.i++;
        }
        jw_ws(&w);
    } else if (stmt != 0) {
        return at;
    }
    size_t elem = w.i, key_at;
    if (key && w.i < w.n && w.s[w.i] == '{' && jw_member(&w, key, &key_at))
        return key_at;
    return elem;
}

/* The element a message of scp.c names: the first word after the prefix when it is a statement
 * element or a top-level one, or the quoted name of an unknown one. */
static void element_named(const char *msg, char *out, size_t size)
{
    static const char *const elements[] = {"Sid",      "Effect",      "Action",    "NotAction",
                                           "Resource", "NotResource", "Condition", "Principal",
                                           "Version",  "Id",          "Statement"};
    out[0] = '\0';
    const char *q = strstr(msg, "element \"");
    if (q) {
        q += strlen("element \"");
        snprintf(out, size, "%.*s", (int)strcspn(q, "\""), q);
        return;
    }
    size_t n = strcspn(msg, " ");
    for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++)
        if (strlen(elements[i]) == n && strncmp(msg, elements[i], n) == 0) {
            snprintf(out, size, "%s", elements[i]);
            return;
        }
}

int whatif_check_scp(const char *name, const char *text, size_t len, struct err *err)
{
    name = name ? name : "(policy)";
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)text[i] & 0xC0) == 0x80)
            continue;
        if (++chars > WHATIF_SCP_MAX_CHARS) {
            int line, col;
            position_of(text, i, &line, &col);
            size_t total = chars;
            for (size_t k = i + 1; k < len; k++)
                total += ((unsigned char)text[k] & 0xC0) != 0x80;
            return err_set(err, ERR_INVALID,
                           "%s:%d:%d: the document has %zu characters; an SCP may have at most "
                           "5,120 (white space included, as the API counts them)",
                           name, line, col, total);
        }
    }
    struct scp_doc *d = scp_doc_parse("proposed", text, len);
    if (!d)
        return err_set(err, ERR_NOMEM, "out of memory");
    const char *e = scp_doc_error(d);
    int rc = 0;
    if (e) {
        int line = 1, col = 1, used = 0;
        if (sscanf(e, "line %d, column %d: %n", &line, &col, &used) == 2 && used > 0) {
            rc = err_set(err, ERR_INVALID, "%s:%d:%d: %s", name, line, col, e + used);
        } else {
            long stmt = -1;
            const char *rest = e;
            if (sscanf(e, "Statement[%ld]%n", &stmt, &used) == 1 && used > 0) {
                rest = e + used;
                rest += strspn(rest, ": ");
            }
            char element[64];
            element_named(rest, element, sizeof element);
            size_t off = locate(text, len, stmt, element[0] ? element : NULL,
                                stmt >= 0 && element[0] ? element : NULL);
            position_of(text, off, &line, &col);
            rc = err_set(err, ERR_INVALID, "%s:%d:%d: %s", name, line, col, e);
        }
    }
    scp_doc_free(d);
    return rc;
}

/* ---- growing arrays ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- the organization after the change ---- */

struct after_org {
    struct scp_policy *scps;
    size_t n_scps;
    const char ***targets; /* owned target arrays, one per policy */
    const char **changed;  /* the targets that gain or lose an SCP (borrowed) */
    size_t n_changed, cap_changed;
};

static void after_free(struct after_org *a)
{
    for (size_t i = 0; i < a->n_scps; i++)
        free(a->targets[i]);
    free(a->targets);
    free(a->scps);
    free(a->changed);
    memset(a, 0, sizeof *a);
}

static int has(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static int add_changed(struct after_org *a, const char *target)
{
    if (has(a->changed, a->n_changed, target))
        return 0;
    if (grow((void **)&a->changed, &a->cap_changed, a->n_changed + 1, sizeof *a->changed) != 0)
        return -1;
    a->changed[a->n_changed++] = target;
    return 0;
}

/* Whether target names the root, an OU or an account of the snapshot. */
static int target_known(const struct drift_input *in, const char *target)
{
    size_t tl = strlen(target);
    for (size_t i = 0; i < in->n_accounts; i++) {
        const struct drift_account *a = &in->accounts[i];
        if (a->id && strcmp(a->id, target) == 0)
            return 1;
        for (const char *p = nz(a->ou_id_path); *p;) {
            size_t n = strcspn(p, "/");
            if (n == tl && strncmp(p, target, n) == 0)
                return 1;
            p += n + (p[n] == '/');
        }
    }
    return 0;
}

static int after_build(const struct whatif_input *in, struct after_org *a, struct err *err)
{
    const struct drift_input *b = in->before;
    memset(a, 0, sizeof *a);
    size_t cap = b->n_scps + in->n_changes;
    a->scps = calloc(cap ? cap : 1, sizeof *a->scps);
    a->targets = calloc(cap ? cap : 1, sizeof *a->targets);
    if (!a->scps || !a->targets)
        return err_set(err, ERR_NOMEM, "out of memory");
    /* the snapshot's policies, less what is detached */
    for (size_t i = 0; i < b->n_scps; i++) {
        const struct scp_policy *p = &b->scps[i];
        a->scps[i] = *p;
        a->targets[i] = calloc(p->n_targets + in->n_changes + 1, sizeof **a->targets);
        a->n_scps = i + 1;
        if (!a->targets[i])
            return err_set(err, ERR_NOMEM, "out of memory");
        size_t n = 0;
        for (size_t t = 0; t < p->n_targets; t++) {
            int detached = 0;
            for (size_t c = 0; c < in->n_changes; c++) {
                const struct whatif_change *ch = &in->changes[c];
                if (ch->op == WHATIF_DETACH && strcmp(nz(ch->policy_id), nz(p->id)) == 0 &&
                    (!ch->target_id || strcmp(ch->target_id, nz(p->targets[t])) == 0))
                    detached = 1;
            }
            if (detached) {
                if (add_changed(a, p->targets[t]) != 0)
                    return err_set(err, ERR_NOMEM, "out of memory");
            } else {
                a->targets[i][n++] = p->targets[t];
            }
        }
        a->scps[i].targets = a->targets[i];
        a->scps[i].n_targets = n;
    }
    /* every detach must name an attachment of the snapshot */
    for (size_t c = 0; c < in->n_changes; c++) {
        const struct whatif_change *ch = &in->changes[c];
        if (ch->op != WHATIF_DETACH)
            continue;
        const struct scp_policy *p = NULL;
        for (size_t i = 0; i < b->n_scps && !p; i++)
            if (strcmp(nz(b->scps[i].id), nz(ch->policy_id)) == 0)
                p = &b->scps[i];
        if (!p)
            return err_set(err, ERR_INVALID,
                           "--detach %s: no such SCP in the organization snapshot", ch->policy_id);
        if (ch->target_id ? !has(p->targets, p->n_targets, ch->target_id) : p->n_targets == 0)
            return err_set(err, ERR_INVALID, "--detach %s%s%s: the SCP is not attached %s%s",
                           ch->policy_id, ch->target_id ? "@" : "", nz(ch->target_id),
                           ch->target_id ? "to " : "anywhere", nz(ch->target_id));
    }
    /* the proposed policies: one per id, with every target it is attached to */
    for (size_t c = 0; c < in->n_changes; c++) {
        const struct whatif_change *ch = &in->changes[c];
        if (ch->op != WHATIF_ATTACH)
            continue;
        if (!ch->target_id || !target_known(b, ch->target_id))
            return err_set(err, ERR_INVALID,
                           "--attach-to %s: not the root, an OU or an account of the "
                           "organization snapshot",
                           nz(ch->target_id));
        if (whatif_check_scp(ch->label, nz(ch->content), strlen(nz(ch->content)), err) != 0)
            return -1;
        size_t i = 0;
        while (i < a->n_scps && strcmp(nz(a->scps[i].id), nz(ch->policy_id)) != 0)
            i++;
        if (i < b->n_scps)
            return err_set(err, ERR_INVALID, "proposed policy id %s is already in the snapshot",
                           nz(ch->policy_id));
        if (i == a->n_scps) {
            a->targets[i] = calloc(in->n_changes + 1, sizeof **a->targets);
            if (!a->targets[i])
                return err_set(err, ERR_NOMEM, "out of memory");
            a->n_scps++;
            a->scps[i] = (struct scp_policy){.id = ch->policy_id,
                                             .name = ch->label,
                                             .content = ch->content,
                                             .targets = a->targets[i],
                                             .n_targets = 0};
        }
        if (!has(a->targets[i], a->scps[i].n_targets, ch->target_id))
            a->targets[i][a->scps[i].n_targets++] = ch->target_id;
        if (add_changed(a, ch->target_id) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Whether account a's path (root, OUs, itself) names a changed target. */
static int under_change(const struct after_org *o, const struct drift_account *a)
{
    if (a->id && has(o->changed, o->n_changed, a->id))
        return 1;
    for (const char *p = nz(a->ou_id_path); *p;) {
        size_t n = strcspn(p, "/");
        for (size_t i = 0; i < o->n_changed; i++)
            if (strlen(o->changed[i]) == n && strncmp(p, o->changed[i], n) == 0)
                return 1;
        p += n + (p[n] == '/');
    }
    return 0;
}

/* ---- findings before and after ---- */

struct fitem {
    struct finding *f;
    char reason[48];
    int in_place; /* details.remediation_in_place */
    char *key;
};

struct flist {
    struct fitem *v;
    size_t n, cap;
    int nomem;
};

static int tracked_kind(const char *kind)
{
    return strcmp(kind, "noncompliant_cluster") == 0 || strcmp(kind, "unenforced_intent") == 0 ||
           strcmp(kind, "scp_conflict") == 0;
}

static int flist_add(struct flist *l, const struct finding *f)
{
    if (!f->kind || !tracked_kind(f->kind))
        return 0;
    if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) {
        l->nomem = 1;
        return -1;
    }
    struct fitem *it = &l->v[l->n];
    memset(it, 0, sizeof *it);
    json_t *d = f->details_json ? json_loads(f->details_json, 0, NULL) : NULL;
    snprintf(it->reason, sizeof it->reason, "%s",
             nz(json_string_value(json_object_get(d, "reason"))));
    it->in_place = json_is_true(json_object_get(d, "remediation_in_place"));
    json_decref(d);
    it->f = finding_copy(f);
    size_t klen = strlen(f->kind) + strlen(it->reason) + strlen(nz(f->account_id)) +
                  strlen(nz(f->region)) + strlen(nz(f->cluster_arn)) + 8;
    it->key = malloc(klen);
    if (!it->f || !it->key) {
        free(it->f);
        free(it->key);
        l->nomem = 1;
        return -1;
    }
    snprintf(it->key, klen, "%s\x1f%s\x1f%s\x1f%s\x1f%s", f->kind, it->reason, nz(f->account_id),
             nz(f->region), nz(f->cluster_arn));
    l->n++;
    return 0;
}

static int collect(void *ud, const struct finding *f)
{
    return flist_add(ud, f);
}

static void flist_free(struct flist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].f);
        free(l->v[i].key);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_fitem(const void *a, const void *b)
{
    return strcmp(((const struct fitem *)a)->key, ((const struct fitem *)b)->key);
}

/* ---- the result ---- */

static int cmp_target(const void *a, const void *b)
{
    const struct whatif_target *x = a, *y = b;
    int c = strcmp(x->account_id, y->account_id);
    return c ? c : strcmp(x->region, y->region);
}

static int find_target(const struct whatif_result *r, const char *account, const char *region,
                       size_t *at)
{
    for (size_t i = 0; i < r->n_targets; i++)
        if (strcmp(r->targets[i].account_id, nz(account)) == 0 &&
            strcmp(r->targets[i].region, nz(region)) == 0) {
            *at = i;
            return 1;
        }
    return 0;
}

static int same_verdicts(const struct scp_decision *a, const struct scp_decision *b)
{
    for (int m = 0; m < WHATIF_DECISIONS; m++)
        if (a[m].verdict != b[m].verdict)
            return 0;
    return 1;
}

/* No principal may create a cluster of mode m (AWS_MANAGED: also by leaving the mode out). */
static int uncreatable(const struct scp_decision *dec, enum egress_mode m)
{
    if (dec[m].verdict != SCP_DENIED)
        return 0;
    return m != EGRESS_AWS_MANAGED || dec[EGRESS_OMITTED].verdict == SCP_DENIED;
}

static int add_targets(const struct whatif_input *in, const struct drift_input *after,
                       const struct after_org *o, struct whatif_result *r, struct err *err)
{
    const struct drift_input *b = in->before;
    size_t cap = 0;
    for (size_t a = 0; a < b->n_accounts; a++) {
        const struct drift_account *acct = &b->accounts[a];
        if (!acct->id || !under_change(o, acct))
            continue;
        for (size_t t = 0; t < b->n_targets; t++) {
            const struct drift_target *tg = &b->targets[t];
            if (strcmp(nz(tg->account_id), acct->id) != 0 || tg->status != TARGET_OK ||
                !tg->region || strcmp(tg->region, "*") == 0)
                continue;
            size_t dup;
            if (find_target(r, acct->id, tg->region, &dup))
                continue;
            if (grow((void **)&r->targets, &cap, r->n_targets + 1, sizeof *r->targets) != 0)
                return err_set(err, ERR_NOMEM, "out of memory");
            struct whatif_target *w = &r->targets[r->n_targets];
            memset(w, 0, sizeof *w);
            w->account_id = acct->id;
            w->account_name = acct->name;
            w->region = tg->region;
            if (drift_scp_intent(b, acct->id, tg->region, w->before, &w->before[EGRESS_MODES],
                                 &w->exempt, err) != 0 ||
                drift_scp_intent(after, acct->id, tg->region, w->after, &w->after[EGRESS_MODES],
                                 &w->exempt, err) != 0)
                return -1;
            w->changed = !same_verdicts(w->before, w->after);
            r->n_targets++;
        }
    }
    if (r->n_targets > 1)
        qsort(r->targets, r->n_targets, sizeof *r->targets, cmp_target);
    return 0;
}

static int add_scanner(const struct whatif_input *in, const struct drift_input *after,
                       struct whatif_result *r, struct err *err)
{
    size_t cap = 0;
    for (size_t i = 0; i < r->n_targets; i++) {
        const struct whatif_target *t = &r->targets[i];
        if (t->exempt)
            continue;
        struct whatif_scanner s = {.target = i};
        if (drift_scanner_call(in->before, t->account_id, t->region, in->scanner_role, &s.before,
                               err) != 0 ||
            drift_scanner_call(after, t->account_id, t->region, in->scanner_role, &s.after, err) !=
                0)
            return -1;
        if (s.before.verdict == SCP_ALLOWED && s.after.verdict == SCP_ALLOWED)
            continue;
        s.denied = s.after.verdict == SCP_DENIED && s.before.verdict != SCP_DENIED;
        r->denies_scanner |= s.denied;
        if (grow((void **)&r->scanner, &cap, r->n_scanner + 1, sizeof *r->scanner) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
        r->scanner[r->n_scanner++] = s;
    }
    return 0;
}

static int add_predates(const struct whatif_input *in, struct whatif_result *r, struct err *err)
{
    size_t cap = 0;
    const struct drift_input *b = in->before;
    for (size_t i = 0; i < b->n_clusters; i++) {
        const struct drift_cluster *c = &b->clusters[i];
        int parsed = egress_mode_parse(c->egress_mode);
        size_t at;
        if (c->unverified || parsed < 0 || !find_target(r, c->account_id, c->region, &at) ||
            r->targets[at].exempt)
            continue;
        enum egress_mode m =
            parsed == EGRESS_OMITTED ? EGRESS_AWS_MANAGED : (enum egress_mode)parsed;
        if (!uncreatable(r->targets[at].after, m) || uncreatable(r->targets[at].before, m))
            continue;
        if (grow((void **)&r->predates, &cap, r->n_predates + 1, sizeof *r->predates) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
        r->predates[r->n_predates++] = (struct whatif_cluster){c, m, at};
    }
    return 0;
}

static char *cluster_name_of(const char *arn)
{
    const char *slash = strrchr(nz(arn), '/');
    return strdup(slash ? slash + 1 : nz(arn));
}

/* One cluster whose finding needs the in-place remediation (once per cluster). */
static int add_remediation(struct whatif_result *r, size_t *cap, const struct finding *f,
                           struct err *err)
{
    size_t at;
    if (!f->cluster_arn || !find_target(r, f->account_id, f->region, &at) || r->targets[at].exempt)
        return 0;
    for (size_t i = 0; i < r->n_remediations; i++)
        if (strcmp(r->remediations[i].cluster_arn, f->cluster_arn) == 0)
            return 0;
    if (grow((void **)&r->remediations, cap, r->n_remediations + 1, sizeof *r->remediations) != 0)
        return err_set(err, ERR_NOMEM, "out of memory");
    struct whatif_remediation *x = &r->remediations[r->n_remediations];
    memset(x, 0, sizeof *x);
    x->cluster_arn = strdup(f->cluster_arn);
    x->cluster_name = cluster_name_of(f->cluster_arn);
    if (!x->cluster_arn || !x->cluster_name) {
        free(x->cluster_arn);
        free(x->cluster_name);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    const struct whatif_target *t = &r->targets[at];
    x->account_id = t->account_id;
    x->region = t->region;
    x->target = at;
    x->before = t->before[EGRESS_MODES].verdict;
    x->after = t->after[EGRESS_MODES].verdict;
    x->blocked = x->after == SCP_DENIED && x->before != SCP_DENIED;
    r->blocks_remediation |= x->blocked;
    r->n_remediations++;
    return 0;
}

static int needs_in_place(const struct finding *f)
{
    if (!f->kind || strcmp(f->kind, "noncompliant_cluster") != 0 || !f->details_json)
        return 0;
    json_t *d = json_loads(f->details_json, 0, NULL);
    int yes = json_is_true(json_object_get(d, "remediation_in_place"));
    json_decref(d);
    return yes;
}

/* The deltas of two sorted lists; the items moved into the result lose their finding. */
static int add_deltas(struct flist *before, struct flist *after, struct whatif_result *r,
                      struct err *err)
{
    size_t cap = 0;
    for (int opens = 0; opens <= 1; opens++) {
        struct flist *from = opens ? after : before, *other = opens ? before : after;
        for (size_t i = 0; i < from->n; i++) {
            struct fitem *it = &from->v[i];
            if (i > 0 && strcmp(from->v[i - 1].key, it->key) == 0)
                continue;
            if (other->n && bsearch(it, other->v, other->n, sizeof *other->v, cmp_fitem) != NULL)
                continue;
            if (grow((void **)&r->deltas, &cap, r->n_deltas + 1, sizeof *r->deltas) != 0)
                return err_set(err, ERR_NOMEM, "out of memory");
            struct whatif_delta *d = &r->deltas[r->n_deltas++];
            d->opens = opens;
            d->f = it->f;
            it->f = NULL;
            snprintf(d->reason, sizeof d->reason, "%s", it->reason);
        }
    }
    return 0;
}

int whatif_run(const struct whatif_input *in, struct whatif_result *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    if (!in->before->scps_known)
        return err_set(err, ERR_INVALID, "the SCPs of the snapshot are unknown");
    struct after_org org;
    struct flist fb = {0}, fa = {0};
    int rc = -1;
    if (after_build(in, &org, err) != 0)
        goto out;
    struct drift_input before = *in->before, after = *in->before;
    before.on_judged = after.on_judged = NULL;
    after.scps = org.scps;
    after.n_scps = org.n_scps;
    if (add_targets(in, &after, &org, out, err) != 0 || add_scanner(in, &after, out, err) != 0 ||
        add_predates(in, out, err) != 0)
        goto out;
    if (drift_evaluate(&before, collect, &fb, NULL, err) != 0 ||
        drift_evaluate(&after, collect, &fa, NULL, err) != 0) {
        if (fb.nomem || fa.nomem)
            err_set(err, ERR_NOMEM, "out of memory");
        goto out;
    }
    qsort(fb.v, fb.n, sizeof *fb.v, cmp_fitem);
    qsort(fa.v, fa.n, sizeof *fa.v, cmp_fitem);
    size_t cap = 0;
    for (size_t i = 0; i < in->n_open; i++)
        if (needs_in_place(&in->open[i]) && add_remediation(out, &cap, &in->open[i], err) != 0)
            goto out;
    for (int pass = 0; pass < 2; pass++) {
        struct flist *l = pass ? &fa : &fb;
        for (size_t i = 0; i < l->n; i++)
            if (l->v[i].in_place && strcmp(l->v[i].f->kind, "noncompliant_cluster") == 0 &&
                add_remediation(out, &cap, l->v[i].f, err) != 0)
                goto out;
    }
    if (add_deltas(&fb, &fa, out, err) != 0)
        goto out;
    rc = 0;
out:
    flist_free(&fb);
    flist_free(&fa);
    after_free(&org);
    return rc;
}

void whatif_result_free(struct whatif_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_remediations; i++) {
        free(r->remediations[i].cluster_arn);
        free(r->remediations[i].cluster_name);
    }
    for (size_t i = 0; i < r->n_deltas; i++)
        free(r->deltas[i].f);
    free(r->targets);
    free(r->predates);
    free(r->remediations);
    free(r->scanner);
    free(r->deltas);
    memset(r, 0, sizeof *r);
}
