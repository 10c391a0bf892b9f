/* scp.c - Service Control Policy evaluation: parses SCP documents once (wildcard patterns compiled,
 * condition operators and keys classified) and judges requests against the SCPs on an account's
 * path with IAM's rules, in four-valued logic: true, false, "depends on the principal", "cannot
 * tell". Evaluation allocates nothing: a fleet scan runs it some 425,000 times.
 *
 * Semantics (AWS IAM User Guide: "Policy evaluation logic", "IAM JSON policy elements: Condition
 * operators", "Grammar of the IAM JSON policy language"; AWS Organizations: "SCP syntax"):
 * - Element names, Effect values and condition operator names are matched exactly as the grammar
 *   spells them; a misspelt operator ("stringequals") is an unknown operator (cannot tell), never
 *   guessed. Context key names are case-insensitive (documented).
 * - Action: "service:Action" globs with * and ?, case-insensitive. Resource: globs with * and ?,
 *   case-sensitive, matched against the whole ARN ("a * at the end of a segment can expand beyond
 *   the colon": a whole-string glob does exactly that). An absent Resource means "*".
 * - The request's resource is what the Service Authorization Reference lists for the action
 *   (the table by action_resource below). Actions without a resource type (eks:CreateCluster,
 *   eks:ListClusters) act on "*": a pattern covers it whole when it matches the string "*", else
 *   not at all, so "arn:aws:eks:*:*:cluster/NAME" does not apply to them. A cluster action
 *   (eks:UpdateClusterConfig) acts on "arn:PART:eks:REGION:ACCOUNT:cluster/NAME" for any valid
 *   cluster name (1-100 of [A-Za-z0-9_-], starting alphanumeric): a pattern covers every name,
 *   some names or none; a Deny counts only when it covers every name, an Allow when it covers
 *   some. An action the table does not know cannot be evaluated.
 * - Conditions: operators ANDed, keys ANDed, values ORed (NOR for negated operators); on an absent
 *   key a positive operator is false, a negated one true, ...IfExists true, ForAnyValue: false,
 *   ForAllValues: true; Null "true" tests absence.
 * - Keys: eks:controlPlaneEgressMode (absent when the request omits the mode) and
 *   aws:RequestedRegion are evaluated, and aws:PrincipalArn when the request names its principal
 *   (String*, Arn* and Null; Arn* match the six colon-separated components one by one, each with
 *   wildcards, and a value that is no ARN pattern is "unknown"); principal keys (aws:Principal*,
 *   aws:userid, aws:SourceIp, aws:CalledVia*, ...) otherwise make a condition "principal"; any
 *   other key "unknown". Bool, Arn* and the unmodelled operators (Numeric*, Date*, IpAddress,
 *   Binary) on our string keys are type mismatches whose outcome IAM does not document: "unknown"
 *   when the key is present (the absent-key rules above still hold). An operator IAM does not
 *   define is "unknown".
 * - Policy variables ("${aws:PrincipalTag/x}") are resolved only under Version 2012-10-17, as IAM
 *   does; ${*}, ${?} and ${$} are the literal characters. A value holding a principal variable is
 *   "principal", any other variable "unknown"; in a Resource a variable matches like a * but never
 *   covers every name, and makes the statement "unknown" when it could otherwise apply.
 * - Malformed documents (bad JSON, duplicate keys, elements the grammar does not know, Principal)
 *   could hold anything: they count as an "unknown" Deny and an "unknown" Allow of their level.
 * - Decision order: what is certain first (a Deny for everyone, or a level allowing nobody, is
 *   DENIED whatever cannot be evaluated elsewhere), then UNEVALUABLE, then PRINCIPAL_DEPENDENT,
 *   then ALLOWED. OR treats "unknown" above "principal": a level with one Allow for some principals
 *   and one that cannot be evaluated might allow everyone, so it cannot be evaluated. */
#include "intent/scp.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"

#define TOK_STAR 256
#define TOK_QMARK 257
#define TOK_VAR 258 /* a policy variable: matches like *, but stands for one literal value */
/* Resource patterns are matched with a state set on the stack: longer ones are refused (an SCP is
 * at most 5,120 characters, so no real policy comes near). */
#define RESOURCE_MAX_TOKENS 2048
#define CLUSTER_NAME_MAX 100
#define DESC_MAX 200
#define ERROR_MAX 300

/* The four truth values. AND: false dominates, then unknown, then principal; OR: true dominates,
 * then unknown, then principal. "Principal" means: true for some principals, false for others. */
enum truth { T_FALSE, T_TRUE, T_PRINCIPAL, T_UNKNOWN };

static const unsigned char and_rank[] = {
    [T_FALSE] = 3, [T_UNKNOWN] = 2, [T_PRINCIPAL] = 1, [T_TRUE] = 0};
static const unsigned char or_rank[] = {
    [T_TRUE] = 3, [T_UNKNOWN] = 2, [T_PRINCIPAL] = 1, [T_FALSE] = 0};

static enum truth t_and(enum truth a, enum truth b)
{
    return and_rank[a] >= and_rank[b] ? a : b;
}

static enum truth t_or(enum truth a, enum truth b)
{
    return or_rank[a] >= or_rank[b] ? a : b;
}

static enum truth t_not(enum truth a)
{
    return a == T_TRUE ? T_FALSE : a == T_FALSE ? T_TRUE : a;
}

/* KEY_PRINCIPAL_ARN is aws:PrincipalArn: evaluated when the request names its principal, else a
 * principal key like the others. */
enum key_kind { KEY_EGRESS, KEY_REGION, KEY_PRINCIPAL_ARN, KEY_PRINCIPAL, KEY_OTHER };

enum op_family { OPF_STRING, OPF_ARN, OPF_BOOL, OPF_NULL, OPF_UNMODELED, OPF_UNKNOWN };

enum set_op { SET_NONE, SET_ANY, SET_ALL };

/* Why a statement is principal-dependent or cannot be evaluated. */
enum why_code {
    W_NONE,
    W_PRINCIPAL,     /* a condition on a principal key (or a principal policy variable) */
    W_UNKNOWN_OP,    /* operator name IAM does not define (or we do not know) */
    W_UNMODELED_KEY, /* a key the scanner has no value for */
    W_TYPE,          /* Bool, Arn*, Numeric*, ... on a string key that is present */
    W_VAR,           /* a policy variable other than a principal key in a value */
    W_NULL_VALUE,    /* Null with a value other than true/false */
    W_RES_VAR,       /* a policy variable in Resource/NotResource */
    W_MALFORMED,     /* the document itself */
    W_ARN_PATTERN    /* an Arn operator's value is not an ARN (fewer than six components) */
};

struct pattern {
    unsigned short *tok; /* 0-255 literal byte (lower-cased when folded), TOK_STAR, TOK_QMARK,
                            TOK_VAR */
    size_t n;
};

/* A Resource pattern with, per position, whether the rest of it matches some / every cluster
 * name: computed once here so that evaluation only runs the prefix through a state set. */
struct res_pattern {
    struct pattern p;
    unsigned char *some;  /* n + 1 entries */
    unsigned char *every; /* n + 1 entries */
};

enum var_kind { VAR_NONE, VAR_PRINCIPAL, VAR_OTHER };

struct cond_value {
    struct pattern p;
    enum var_kind var;
    int bool_val; /* Null: 1 "true", 0 "false", -1 neither */
};

struct cond {
    enum op_family fam;
    int negated;
    int if_exists;
    enum set_op set;
    int fold; /* ...IgnoreCase */
    enum key_kind key;
    const char *op_name;
    const char *key_name;
    const char *desc; /* "ArnNotLike aws:PrincipalArn arn:aws:iam::*:role/X" */
    struct cond_value *values;
    size_t n_values;
};

struct stmt {
    int deny;
    char ref[96]; /* "p-abcd1234#Sid" or "p-abcd1234#2" */
    int not_action;
    struct pattern *actions;
    size_t n_actions;
    int not_resource;
    struct res_pattern *resources;
    size_t n_resources;
    const char *resource_var; /* the first policy variable in Resource, NULL when none */
    struct cond *conds;
    size_t n_conds;
    int egress_cond; /* a condition names eks:controlPlaneEgressMode */
};

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct scp_doc {
    unsigned long long serial; /* unique per parse: names the document in caches */
    char *id;
    char *error; /* NULL when the document is well-formed */
    struct stmt *stmts;
    size_t n_stmts;
    struct arena_chunk *chunks;
};

/* ---- allocation: everything a document owns lives in its arena ---- */

static void *arena_alloc(struct scp_doc *d, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (size == 0)
        size = sizeof(max_align_t);
    struct arena_chunk *c = d->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 8192 ? size : 8192;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = d->chunks;
        c->used = 0;
        c->cap = cap;
        d->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

static char *arena_strdup(struct scp_doc *d, const char *s)
{
    size_t n = strlen(s);
    char *p = arena_alloc(d, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

/* ---- names ---- */

const char *scp_verdict_name(enum scp_verdict v)
{
    switch (v) {
    case SCP_ALLOWED:
        return "allowed";
    case SCP_DENIED:
        return "denied";
    case SCP_PRINCIPAL_DEPENDENT:
        return "principal-dependent";
    case SCP_UNEVALUABLE:
        return "unevaluable";
    }
    return "unknown";
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Keys whose value depends on who makes the request (AWS global condition context keys). */
static enum key_kind classify_key(const char *k)
{
    static const char *const principal_prefixes[] = {
        "aws:Principal",        /* Arn, Account, OrgID, OrgPaths, Tag/, Type, IsAWSService, ... */
        "aws:CalledVia",        /* CalledVia, CalledViaFirst, CalledViaLast */
        "aws:MultiFactorAuth",  /* Present, Age */
        "aws:SourceVpc",        /* SourceVpc, SourceVpce, SourceVpcArn */
        "aws:SourceOrg",        /* SourceOrgID, SourceOrgPaths (service acting for a resource) */
        "aws:Ec2InstanceSource" /* Ec2InstanceSourceVpc, Ec2InstanceSourcePrivateIPv4 */
    };
    static const char *const principal_keys[] = {
        "aws:userid",         "aws:username",    "aws:SourceIdentity", "aws:ViaAWSService",
        "aws:SourceIp",       "aws:VpcSourceIp", "aws:TokenIssueTime", "aws:FederatedProvider",
        "aws:SourceAccount",  "aws:SourceArn",   "aws:AssumedRoot",    "aws:SourceInstanceArn",
        "aws:RoleSessionName"};
    if (strcasecmp(k, "eks:controlPlaneEgressMode") == 0)
        return KEY_EGRESS;
    if (strcasecmp(k, "aws:RequestedRegion") == 0)
        return KEY_REGION;
    if (strcasecmp(k, "aws:PrincipalArn") == 0)
        return KEY_PRINCIPAL_ARN;
    for (size_t i = 0; i < sizeof principal_prefixes / sizeof principal_prefixes[0]; i++)
        if (has_prefix_ci(k, principal_prefixes[i]))
            return KEY_PRINCIPAL;
    for (size_t i = 0; i < sizeof principal_keys / sizeof principal_keys[0]; i++)
        if (strcasecmp(k, principal_keys[i]) == 0)
            return KEY_PRINCIPAL;
    return KEY_OTHER;
}

struct op_info {
    const char *name;
    enum op_family fam;
    unsigned char negated, fold;
};

/* Every operator of "IAM JSON policy elements: Condition operators". Those we do not model
 * (numbers, dates, binary, IP addresses) still have a meaning on principal keys (for instance
 * NumericLessThan aws:MultiFactorAuthAge, NotIpAddress aws:SourceIp) and on absent keys. */
static const struct op_info op_table[] = {
    {"StringEquals", OPF_STRING, 0, 0},
    {"StringNotEquals", OPF_STRING, 1, 0},
    {"StringEqualsIgnoreCase", OPF_STRING, 0, 1},
    {"StringNotEqualsIgnoreCase", OPF_STRING, 1, 1},
    {"StringLike", OPF_STRING, 0, 0},
    {"StringNotLike", OPF_STRING, 1, 0},
    {"ArnEquals", OPF_ARN, 0, 0},
    {"ArnLike", OPF_ARN, 0, 0},
    {"ArnNotEquals", OPF_ARN, 1, 0},
    {"ArnNotLike", OPF_ARN, 1, 0},
    {"Bool", OPF_BOOL, 0, 0},
    {"Null", OPF_NULL, 0, 0},
    {"NumericEquals", OPF_UNMODELED, 0, 0},
    {"NumericNotEquals", OPF_UNMODELED, 1, 0},
    {"NumericLessThan", OPF_UNMODELED, 0, 0},
    {"NumericLessThanEquals", OPF_UNMODELED, 0, 0},
    {"NumericGreaterThan", OPF_UNMODELED, 0, 0},
    {"NumericGreaterThanEquals", OPF_UNMODELED, 0, 0},
    {"DateEquals", OPF_UNMODELED, 0, 0},
    {"DateNotEquals", OPF_UNMODELED, 1, 0},
    {"DateLessThan", OPF_UNMODELED, 0, 0},
    {"DateLessThanEquals", OPF_UNMODELED, 0, 0},
    {"DateGreaterThan", OPF_UNMODELED, 0, 0},
    {"DateGreaterThanEquals", OPF_UNMODELED, 0, 0},
    {"BinaryEquals", OPF_UNMODELED, 0, 0},
    {"IpAddress", OPF_UNMODELED, 0, 0},
    {"NotIpAddress", OPF_UNMODELED, 1, 0},
};

static void classify_op(const char *name, struct cond *c)
{
    const char *base = name;
    c->set = SET_NONE;
    c->fam = OPF_UNKNOWN;
    if (strncmp(base, "ForAnyValue:", 12) == 0) {
        c->set = SET_ANY;
        base += 12;
    } else if (strncmp(base, "ForAllValues:", 13) == 0) {
        c->set = SET_ALL;
        base += 13;
    }
    size_t len = strlen(base);
    if (len > 8 && strcmp(base + len - 8, "IfExists") == 0) {
        c->if_exists = 1;
        len -= 8;
    }
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++) {
        if (strncmp(base, op_table[i].name, len) == 0 && op_table[i].name[len] == '\0') {
            c->fam = op_table[i].fam;
            c->negated = op_table[i].negated;
            c->fold = op_table[i].fold;
            break;
        }
    }
    /* Null tests presence itself: it has no IfExists form and takes no set operator. */
    if (c->fam == OPF_NULL && (c->if_exists || c->set != SET_NONE))
        c->fam = OPF_UNKNOWN;
}

/* ---- wildcard patterns ---- */

/* ASCII only: IAM's matching does not depend on a C locale. */
static unsigned ascii_lower(unsigned c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_alnum_tok(unsigned t)
{
    return (t >= '0' && t <= '9') || (t >= 'a' && t <= 'z') || (t >= 'A' && t <= 'Z');
}

static int is_name_char(unsigned t)
{
    return is_alnum_tok(t) || t == '-' || t == '_';
}

/* Glob match of a whole string; tokens of a folded pattern are already lower case. */
static int glob_match(const struct pattern *p, const char *s, int fold)
{
    size_t ti = 0, star = SIZE_MAX;
    const char *mark = NULL;
    while (*s) {
        unsigned c = (unsigned char)*s;
        if (fold)
            c = ascii_lower(c);
        if (ti < p->n && (p->tok[ti] == TOK_STAR || p->tok[ti] == TOK_VAR)) {
            star = ti++;
            mark = s;
            continue;
        }
        if (ti < p->n && (p->tok[ti] == TOK_QMARK || p->tok[ti] == c)) {
            ti++;
            s++;
            continue;
        }
        if (star == SIZE_MAX)
            return 0;
        ti = star + 1;
        s = ++mark;
    }
    while (ti < p->n && (p->tok[ti] == TOK_STAR || p->tok[ti] == TOK_VAR))
        ti++;
    return ti == p->n;
}

struct parse {
    struct scp_doc *d;
    int nomem;
    int variables; /* Version 2012-10-17: ${...} are policy variables */
    char error[ERROR_MAX];
};

static int fail(struct parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse *ps, const char *fmt, ...)
{
    if (!ps->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->error, sizeof ps->error, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int nomem(struct parse *ps)
{
    ps->nomem = 1;
    return -1;
}

/* Replaces control characters, so that policy text can go into messages and reports. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* A short printable rendering of a policy string for messages. */
static const char *quote(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; *s && o + 4 < size; s++)
        buf[o++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
    if (*s && o + 4 >= size) {
        buf[o++] = '.';
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o] = '\0';
    return buf;
}

/* Compiles s: wild turns * and ? into wildcards, fold lower-cases literals, and under Version
 * 2012-10-17 ${...} is a policy variable (TOK_VAR: for a Resource, matched like a * to get an
 * upper bound of what it covers; *var tells which kind, *var_text names the first one). */
static int compile(struct parse *ps, const char *s, int wild, int fold, struct pattern *out,
                   enum var_kind *var, const char **var_text)
{
    size_t len = strlen(s);
    out->tok = arena_alloc(ps->d, (len + 1) * sizeof *out->tok);
    if (!out->tok)
        return nomem(ps);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)s[i];
        if (ps->variables && c == '$' && s[i + 1] == '{') {
            const char *end = strchr(s + i + 2, '}');
            if (end) {
                size_t inner = (size_t)(end - (s + i + 2));
                const char *in = s + i + 2;
                if (inner == 1 && (in[0] == '*' || in[0] == '?' || in[0] == '$')) {
                    out->tok[n++] = (unsigned char)in[0]; /* ${*} ${?} ${$}: the literal */
                    i = (size_t)(end - s);
                    continue;
                }
                char name[128];
                size_t k = 0;
                while (k < inner && k < sizeof name - 1 && in[k] != ',') {
                    name[k] = in[k];
                    k++;
                }
                while (k > 0 && name[k - 1] == ' ')
                    k--;
                name[k] = '\0';
                enum key_kind key = classify_key(name);
                enum var_kind kind =
                    key == KEY_PRINCIPAL || key == KEY_PRINCIPAL_ARN ? VAR_PRINCIPAL : VAR_OTHER;
                if (var && (*var == VAR_NONE || kind == VAR_OTHER))
                    *var = kind;
                if (var_text && !*var_text) {
                    char buf[160];
                    snprintf(buf, sizeof buf, "%.*s", (int)utf8_cut_len(s + i, inner + 3, 150),
                             s + i);
                    if (!(*var_text = arena_strdup(ps->d, buf)))
                        return nomem(ps);
                }
                out->tok[n++] = TOK_VAR;
                i = (size_t)(end - s);
                continue;
            }
        }
        if (wild && c == '*')
            out->tok[n++] = TOK_STAR;
        else if (wild && c == '?')
            out->tok[n++] = TOK_QMARK;
        else
            out->tok[n++] = (unsigned short)(fold ? ascii_lower(c) : c);
    }
    out->n = n;
    return 0;
}

/* Per position i: does tok[i..] match some valid cluster name, every valid cluster name? A policy
 * variable may match some names (like a *) but never every name (it is one literal value). */
static int prepare_resource(struct parse *ps, struct res_pattern *r)
{
    size_t n = r->p.n;
    const unsigned short *tok = r->p.tok;
    r->some = arena_alloc(ps->d, n + 1);
    r->every = arena_alloc(ps->d, n + 1);
    if (!r->some || !r->every)
        return nomem(ps);
    size_t lits = 0, qmarks = 0, stars = 0, vars = 0, bad = 0, first_nonstar = n;
    for (size_t i = n + 1; i-- > 0;) {
        if (i < n) {
            unsigned t = tok[i];
            if (t == TOK_STAR) {
                stars++;
            } else if (t == TOK_VAR) {
                vars++;
            } else {
                first_nonstar = i;
                if (t == TOK_QMARK) {
                    qmarks++;
                } else {
                    lits++;
                    if (!is_name_char(t))
                        bad++;
                }
            }
        }
        /* every: only wildcards, at least one *, at most one ? (a name has 1+ characters). */
        r->every[i] = lits == 0 && vars == 0 && stars >= 1 && qmarks <= 1;
        /* some: the literals are name characters, the first character can be alphanumeric, and
         * the shortest match fits in 100 characters (a * or a variable may be empty). */
        size_t need = lits + qmarks;
        int ok = bad == 0;
        int lead_star = i < n && (tok[i] == TOK_STAR || tok[i] == TOK_VAR);
        if (ok && first_nonstar == n) {
            ok = lead_star; /* only stars and variables: "a" will do; nothing: the empty name */
            need = 1;
        } else if (ok && lead_star) {
            if (tok[first_nonstar] != TOK_QMARK && !is_alnum_tok(tok[first_nonstar]))
                need++; /* the leading * must supply the alphanumeric first character */
        } else if (ok && tok[i] != TOK_QMARK && !is_alnum_tok(tok[i])) {
            ok = 0;
        }
        r->some[i] = ok && need <= CLUSTER_NAME_MAX;
    }
    return 0;
}

/* ---- parsing ---- */

/* Action, Resource and their Not forms: a string or a non-empty array of strings. The number of
 * items, or -1. */
static long string_items(struct parse *ps, json_t *v, const char *what, size_t idx)
{
    if (json_is_string(v))
        return 1;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(ps, "Statement[%zu]: %s must be a string or a non-empty array of strings", idx,
                    what);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return fail(ps, "Statement[%zu]: %s must contain only strings", idx, what);
    return (long)json_array_size(v);
}

static const char *string_item(json_t *v, size_t i)
{
    return json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
}

static int parse_actions(struct parse *ps, struct stmt *st, json_t *v, const char *what, size_t idx)
{
    long count = string_items(ps, v, what, idx);
    if (count < 0)
        return -1;
    st->actions = arena_alloc(ps->d, (size_t)count * sizeof *st->actions);
    if (!st->actions)
        return nomem(ps);
    /* Actions know no policy variables. */
    int saved = ps->variables;
    ps->variables = 0;
    for (size_t i = 0; i < (size_t)count; i++) {
        if (compile(ps, string_item(v, i), 1, 1, &st->actions[i], NULL, NULL)) {
            ps->variables = saved;
            return -1;
        }
    }
    ps->variables = saved;
    st->n_actions = (size_t)count;
    return 0;
}

static int parse_resources(struct parse *ps, struct stmt *st, json_t *v, const char *what,
                           size_t idx)
{
    long count = string_items(ps, v, what, idx);
    if (count < 0)
        return -1;
    st->resources = arena_alloc(ps->d, (size_t)count * sizeof *st->resources);
    if (!st->resources)
        return nomem(ps);
    for (size_t i = 0; i < (size_t)count; i++) {
        const char *s = string_item(v, i);
        if (strlen(s) > RESOURCE_MAX_TOKENS)
            return fail(ps, "Statement[%zu]: %s longer than %d characters", idx, what,
                        RESOURCE_MAX_TOKENS);
        if (compile(ps, s, 1, 0, &st->resources[i].p, NULL, &st->resource_var) ||
            prepare_resource(ps, &st->resources[i]))
            return -1;
    }
    st->n_resources = (size_t)count;
    return 0;
}

/* One condition value as IAM sees it: strings as they are, booleans and numbers as text. */
static int value_text(json_t *v, char *buf, size_t size, const char **out)
{
    if (json_is_string(v))
        *out = json_string_value(v);
    else if (json_is_true(v))
        *out = "true";
    else if (json_is_false(v))
        *out = "false";
    else if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
    } else if (json_is_real(v)) {
        snprintf(buf, size, "%.15g", json_real_value(v));
        *out = buf;
    } else
        return -1;
    return 0;
}

static int parse_condition(struct parse *ps, struct stmt *st, json_t *cond, size_t idx)
{
    if (!json_is_object(cond))
        return fail(ps, "Statement[%zu]: Condition must be an object", idx);
    size_t count = 0;
    const char *op;
    json_t *keys;
    json_object_foreach(cond, op, keys)
    {
        if (!json_is_object(keys))
            return fail(ps, "Statement[%zu]: Condition %.*s must map keys to values", idx,
                        (int)utf8_cut(op, 60), op);
        count += json_object_size(keys);
    }
    st->conds = arena_alloc(ps->d, (count ? count : 1) * sizeof *st->conds);
    if (!st->conds)
        return nomem(ps);
    size_t ci = 0;
    json_object_foreach(cond, op, keys)
    {
        const char *key;
        json_t *vals;
        json_object_foreach(keys, key, vals)
        {
            struct cond *c = &st->conds[ci++];
            classify_op(op, c);
            c->key = classify_key(key);
            if (c->key == KEY_EGRESS)
                st->egress_cond = 1;
            if (!(c->op_name = arena_strdup(ps->d, op)) ||
                !(c->key_name = arena_strdup(ps->d, key)))
                return nomem(ps);
            size_t nv = json_is_array(vals) ? json_array_size(vals) : 1;
            if (json_is_array(vals) && nv == 0)
                return fail(ps, "Statement[%zu]: Condition %.*s %.*s has no value", idx,
                            (int)utf8_cut(op, 60), op, (int)utf8_cut(key, 60), key);
            c->values = arena_alloc(ps->d, nv * sizeof *c->values);
            if (!c->values)
                return nomem(ps);
            char desc[DESC_MAX + 4];
            int dl = snprintf(desc, sizeof desc, "%s %s ", op, key);
            for (size_t i = 0; i < nv; i++) {
                json_t *e = json_is_array(vals) ? json_array_get(vals, i) : vals;
                char num[64];
                const char *text;
                if (value_text(e, num, sizeof num, &text))
                    return fail(ps,
                                "Statement[%zu]: Condition %.*s %.*s: values must be strings, "
                                "numbers or booleans",
                                idx, (int)utf8_cut(op, 60), op, (int)utf8_cut(key, 60), key);
                struct cond_value *cv = &c->values[i];
                /* Of the string operators only the Like ones know wildcards; every Arn
                 * operator does (ArnEquals included, per component). */
                int wild =
                    (c->fam == OPF_STRING && strstr(op, "Like") != NULL) || c->fam == OPF_ARN;
                if (compile(ps, text, wild, c->fold, &cv->p, &cv->var, NULL))
                    return -1;
                cv->bool_val = strcasecmp(text, "true") == 0    ? 1
                               : strcasecmp(text, "false") == 0 ? 0
                                                                : -1;
                if (dl >= 0 && (size_t)dl < DESC_MAX)
                    dl += snprintf(desc + dl, sizeof desc - (size_t)dl, "%s%s", i ? "," : "", text);
            }
            if (dl >= DESC_MAX)
                memcpy(desc + DESC_MAX - 3, "...", 4);
            c->n_values = nv;
            printable(desc);
            if (!(c->desc = arena_strdup(ps->d, desc)))
                return nomem(ps);
        }
    }
    st->n_conds = ci;
    return 0;
}

static int parse_statement(struct parse *ps, json_t *js, size_t idx, struct stmt *st)
{
    char q[48];
    if (!json_is_object(js))
        return fail(ps, "Statement[%zu] must be an object", idx);
    const char *name;
    json_t *v;
    json_object_foreach(js, name, v)
    {
        if (strcmp(name, "Principal") == 0 || strcmp(name, "NotPrincipal") == 0)
            return fail(ps, "Statement[%zu]: %s is not allowed in an SCP", idx, name);
        if (strcmp(name, "Sid") && strcmp(name, "Effect") && strcmp(name, "Action") &&
            strcmp(name, "NotAction") && strcmp(name, "Resource") && strcmp(name, "NotResource") &&
            strcmp(name, "Condition"))
            return fail(ps, "Statement[%zu]: unknown element \"%s\"", idx,
                        quote(name, q, sizeof q));
    }
    json_t *sid = json_object_get(js, "Sid");
    if (sid && !json_is_string(sid))
        return fail(ps, "Statement[%zu]: Sid must be a string", idx);
    if (sid)
        snprintf(st->ref, sizeof st->ref, "%s#%s", ps->d->id, json_string_value(sid));
    else
        snprintf(st->ref, sizeof st->ref, "%s#%zu", ps->d->id, idx);
    printable(st->ref);

    json_t *effect = json_object_get(js, "Effect");
    if (!effect)
        return fail(ps, "Statement[%zu]: Effect is missing", idx);
    if (!json_is_string(effect) || (strcmp(json_string_value(effect), "Allow") != 0 &&
                                    strcmp(json_string_value(effect), "Deny") != 0))
        return fail(ps, "Statement[%zu]: Effect must be \"Allow\" or \"Deny\"%s%s%s", idx,
                    json_is_string(effect) ? " (got \"" : "",
                    json_is_string(effect) ? quote(json_string_value(effect), q, sizeof q) : "",
                    json_is_string(effect) ? "\")" : "");
    st->deny = strcmp(json_string_value(effect), "Deny") == 0;

    json_t *action = json_object_get(js, "Action"), *not_action = json_object_get(js, "NotAction");
    if ((action != NULL) == (not_action != NULL))
        return fail(ps, "Statement[%zu]: exactly one of Action and NotAction is required", idx);
    st->not_action = not_action != NULL;
    if (parse_actions(ps, st, action ? action : not_action, action ? "Action" : "NotAction", idx))
        return -1;

    json_t *res = json_object_get(js, "Resource"), *not_res = json_object_get(js, "NotResource");
    if (res && not_res)
        return fail(ps, "Statement[%zu]: Resource and NotResource are exclusive", idx);
    st->not_resource = not_res != NULL;
    if (res || not_res) {
        if (parse_resources(ps, st, res ? res : not_res, res ? "Resource" : "NotResource", idx))
            return -1;
    } else {
        /* SCPs may leave Resource out: it then means "*". */
        json_t *star = json_string("*");
        if (!star)
            return nomem(ps);
        int rc = parse_resources(ps, st, star, "Resource", idx);
        json_decref(star);
        if (rc)
            return -1;
    }

    json_t *cond = json_object_get(js, "Condition");
    if (cond && parse_condition(ps, st, cond, idx))
        return -1;
    return 0;
}

static int parse_document(struct parse *ps, const char *content, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(content, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return fail(ps, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
    int rc = -1;
    if (!json_is_object(root)) {
        fail(ps, "the policy must be a JSON object");
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v)
    {
        char q[48];
        if (strcmp(name, "Version") && strcmp(name, "Id") && strcmp(name, "Statement")) {
            fail(ps, "unknown top-level element \"%s\"", quote(name, q, sizeof q));
            goto out;
        }
    }
    json_t *version = json_object_get(root, "Version");
    if (version) {
        const char *vs = json_string_value(version);
        if (!vs || (strcmp(vs, "2012-10-17") != 0 && strcmp(vs, "2008-10-17") != 0)) {
            fail(ps, "Version must be \"2012-10-17\" or \"2008-10-17\"");
            goto out;
        }
        ps->variables = strcmp(vs, "2012-10-17") == 0;
    }
    json_t *id = json_object_get(root, "Id");
    if (id && !json_is_string(id)) {
        fail(ps, "Id must be a string");
        goto out;
    }
    json_t *stmts = json_object_get(root, "Statement");
    if (!stmts) {
        fail(ps, "Statement is missing");
        goto out;
    }
    if (!json_is_object(stmts) && !json_is_array(stmts)) {
        fail(ps, "Statement must be an object or an array");
        goto out;
    }
    size_t n = json_is_array(stmts) ? json_array_size(stmts) : 1;
    ps->d->stmts = arena_alloc(ps->d, (n ? n : 1) * sizeof *ps->d->stmts);
    if (!ps->d->stmts) {
        nomem(ps);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *js = json_is_array(stmts) ? json_array_get(stmts, i) : stmts;
        if (parse_statement(ps, js, i, &ps->d->stmts[i]))
            goto out;
    }
    ps->d->n_stmts = n;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

struct scp_doc *scp_doc_parse(const char *policy_id, const char *content, size_t len)
{
    struct scp_doc *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    static _Atomic unsigned long long next_serial = 1;
    d->serial = atomic_fetch_add(&next_serial, 1);
    struct parse ps = {.d = d};
    if (!(d->id = arena_strdup(d, policy_id ? policy_id : "(unnamed)")))
        goto nomem;
    int rc = content ? parse_document(&ps, content, len) : fail(&ps, "no policy content");
    if (ps.nomem)
        goto nomem;
    if (rc) {
        d->stmts = NULL;
        d->n_stmts = 0;
        if (!(d->error = arena_strdup(d, ps.error[0] ? ps.error : "malformed policy")))
            goto nomem;
    }
    return d;
nomem:
    scp_doc_free(d);
    return NULL;
}

void scp_doc_free(struct scp_doc *d)
{
    if (!d)
        return;
    while (d->chunks) {
        struct arena_chunk *next = d->chunks->next;
        free(d->chunks);
        d->chunks = next;
    }
    free(d);
}

const char *scp_doc_error(const struct scp_doc *d)
{
    return d ? d->error : "no document";
}

const char *scp_doc_id(const struct scp_doc *d)
{
    return d ? d->id : "";
}

/* ---- evaluation ---- */

struct reqctx {
    const char *action;
    const char *partition, *region, *account;
    const char *mode;      /* eks:controlPlaneEgressMode; NULL: absent from the request */
    const char *principal; /* aws:PrincipalArn; NULL: any principal */
    int star_resource;     /* the action has no resource type: the request is on "*" */
};

enum coverage { COV_NONE, COV_SOME, COV_EVERY };

struct why {
    const struct scp_doc *doc;
    const struct stmt *st;
    const struct cond *cond;
    enum why_code code;
};

/* The state set of a glob pattern run as an NFA: one byte per pattern position, zero outside
 * [lo, hi] so that each step costs the active range only. */
struct nfa_set {
    unsigned char *on;
    size_t lo, hi; /* lo > hi: empty */
};

static int is_star(unsigned t)
{
    return t == TOK_STAR || t == TOK_VAR;
}

/* Adds the positions reachable over * (which may match nothing). */
static void closure(const struct pattern *p, struct nfa_set *s)
{
    for (size_t i = s->lo; i <= s->hi && i < p->n; i++)
        if (s->on[i] && is_star(p->tok[i])) {
            s->on[i + 1] = 1;
            if (i + 1 > s->hi)
                s->hi = i + 1;
        }
}

/* Advances the state set over str; 0 when no state is left. */
static int feed(const struct pattern *p, struct nfa_set **cur, struct nfa_set **nxt,
                const char *str)
{
    for (; *str; str++) {
        unsigned c = (unsigned char)*str;
        struct nfa_set *a = *cur, *b = *nxt;
        b->lo = SIZE_MAX;
        b->hi = 0;
        for (size_t i = a->lo; i <= a->hi; i++) {
            if (!a->on[i] || i == p->n)
                continue;
            size_t to;
            if (is_star(p->tok[i]))
                to = i;
            else if (p->tok[i] == TOK_QMARK || p->tok[i] == c)
                to = i + 1;
            else
                continue;
            b->on[to] = 1;
            if (to < b->lo)
                b->lo = to;
            if (to > b->hi)
                b->hi = to;
        }
        memset(a->on + a->lo, 0, a->hi - a->lo + 1);
        if (b->lo > b->hi)
            return 0;
        closure(p, b);
        *cur = b;
        *nxt = a;
    }
    return 1;
}

/* Which cluster names of the request's account and region the pattern covers. A request on "*"
 * (an action without a resource type) is covered whole when the pattern matches the string "*"
 * (Resource "*"; a cluster ARN pattern does not), else not at all. */
static enum coverage resource_coverage(const struct res_pattern *r, const struct reqctx *x)
{
    const struct pattern *p = &r->p;
    if (x->star_resource)
        return glob_match(p, "*", 0) ? COV_EVERY : COV_NONE;
    if (r->every[0])
        return COV_EVERY; /* "*" and the like: whatever the ARN */
    unsigned char s1[RESOURCE_MAX_TOKENS + 1], s2[RESOURCE_MAX_TOKENS + 1];
    memset(s1, 0, p->n + 1);
    memset(s2, 0, p->n + 1);
    struct nfa_set a = {s1, 0, 0}, b = {s2, 1, 0};
    struct nfa_set *cur = &a, *nxt = &b;
    s1[0] = 1;
    closure(p, cur);
    const char *parts[] = {"arn:", x->partition, ":eks:", x->region, ":", x->account, ":cluster/"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (!feed(p, &cur, &nxt, parts[i]))
            return COV_NONE;
    enum coverage cov = COV_NONE;
    for (size_t i = cur->lo; i <= cur->hi; i++) {
        if (!cur->on[i])
            continue;
        if (r->every[i])
            return COV_EVERY;
        if (r->some[i])
            cov = COV_SOME;
    }
    return cov;
}

/* Resource: the best pattern. NotResource: the statement covers a name no pattern matches; when
 * some patterns cover some names we assume they leave a name out (a union of name-limited
 * patterns covering every name, like "cluster/?" + "cluster/??*", is not recognised: the error
 * is on the side of reporting a gap). */
static enum coverage stmt_coverage(const struct stmt *st, const struct reqctx *x)
{
    enum coverage best = COV_NONE;
    for (size_t i = 0; i < st->n_resources && best != COV_EVERY; i++) {
        enum coverage c = resource_coverage(&st->resources[i], x);
        if (c > best)
            best = c;
    }
    if (!st->not_resource)
        return best;
    return best == COV_EVERY ? COV_NONE : best == COV_NONE ? COV_EVERY : COV_SOME;
}

static int action_applies(const struct stmt *st, const char *action)
{
    int match = 0;
    for (size_t i = 0; i < st->n_actions && !match; i++)
        match = glob_match(&st->actions[i], action, 1);
    return st->not_action ? !match : match;
}

/* ArnEquals / ArnLike: the six colon-separated components of the ARN are matched one by one,
 * each with * and ? (a * never crosses a colon; the last component, the resource, takes the
 * rest of the ARN, colons included). T_UNKNOWN when the pattern is not an ARN. */
static enum truth arn_match(const struct pattern *p, const char *value)
{
    char buf[1024];
    size_t vlen = strlen(value);
    if (vlen >= sizeof buf)
        return T_UNKNOWN;
    memcpy(buf, value, vlen + 1);
    const char *vpart[6];
    size_t nv = 0;
    vpart[nv++] = buf;
    for (char *q = buf; *q && nv < 6; q++)
        if (*q == ':') {
            *q = '\0';
            vpart[nv++] = q + 1;
        }
    size_t start[6], end[6], np = 0;
    start[0] = 0;
    for (size_t i = 0; i < p->n && np < 5; i++)
        if (p->tok[i] == ':') {
            end[np++] = i;
            start[np] = i + 1;
        }
    end[np++] = p->n;
    if (np < 6)
        return T_UNKNOWN;
    if (nv < 6)
        return T_FALSE; /* the value is no ARN: nothing matches it */
    for (size_t k = 0; k < 6; k++) {
        struct pattern part = {p->tok + start[k], end[k] - start[k]};
        if (!glob_match(&part, vpart[k], 0))
            return T_FALSE;
    }
    return T_TRUE;
}

static enum truth cond_eval(const struct cond *c, const struct reqctx *x, enum why_code *why)
{
    if (c->fam == OPF_UNKNOWN) {
        *why = W_UNKNOWN_OP;
        return T_UNKNOWN;
    }
    /* aws:PrincipalArn is evaluated for a named principal with the operators that compare
     * strings or ARNs (and Null); any other principal key, or operator on it, depends on the
     * principal. */
    if (c->key == KEY_PRINCIPAL ||
        (c->key == KEY_PRINCIPAL_ARN &&
         (!x->principal || (c->fam != OPF_STRING && c->fam != OPF_ARN && c->fam != OPF_NULL)))) {
        *why = W_PRINCIPAL;
        return T_PRINCIPAL;
    }
    if (c->key == KEY_OTHER) {
        *why = W_UNMODELED_KEY;
        return T_UNKNOWN;
    }
    const char *value = c->key == KEY_EGRESS   ? x->mode
                        : c->key == KEY_REGION ? x->region
                                               : x->principal;
    if (c->fam == OPF_NULL) {
        enum truth t = T_FALSE;
        for (size_t i = 0; i < c->n_values; i++) {
            if (c->values[i].bool_val < 0) {
                *why = W_NULL_VALUE;
                return T_UNKNOWN;
            }
            if (c->values[i].bool_val == (value == NULL))
                t = T_TRUE;
        }
        return t;
    }
    if (!value) {
        /* "If the key ... is not present in the request context, the values do not match":
         * positive operators false, negated ones true; except ...IfExists and the set operators
         * (ForAllValues is true on an empty set, ForAnyValue false). */
        if (c->if_exists)
            return T_TRUE;
        if (c->set == SET_ANY)
            return T_FALSE;
        if (c->set == SET_ALL)
            return T_TRUE;
        return c->negated ? T_TRUE : T_FALSE;
    }
    int arn = c->fam == OPF_ARN && c->key == KEY_PRINCIPAL_ARN;
    if (c->fam != OPF_STRING && !arn) {
        /* Bool, Arn*, Numeric*, Date*, Binary, IpAddress against a string value: IAM's result on
         * such a type mismatch is not documented; not guessed. */
        *why = W_TYPE;
        return T_UNKNOWN;
    }
    enum truth t = T_FALSE;
    enum why_code unknown_why = W_VAR;
    for (size_t i = 0; i < c->n_values && t != T_TRUE; i++) {
        const struct cond_value *v = &c->values[i];
        enum truth m;
        if (v->var == VAR_PRINCIPAL)
            m = T_PRINCIPAL;
        else if (v->var == VAR_OTHER)
            m = T_UNKNOWN;
        else if (arn)
            m = arn_match(&v->p, value);
        else
            m = glob_match(&v->p, value, c->fold) ? T_TRUE : T_FALSE;
        if (arn && m == T_UNKNOWN && v->var == VAR_NONE)
            unknown_why = W_ARN_PATTERN;
        t = t_or(t, m);
    }
    /* Negated operators: true when the value matches none of the listed values (NOR). */
    if (c->negated)
        t = t_not(t);
    *why = t == T_UNKNOWN ? unknown_why : t == T_PRINCIPAL ? W_PRINCIPAL : W_NONE;
    return t;
}

/* The statement's truth for the request: false when its action or resource does not apply. *cov
 * tells how much of the cluster name space its resource covers. */
static enum truth stmt_eval(const struct stmt *st, const struct reqctx *x, enum coverage *cov,
                            struct why *w)
{
    *cov = COV_NONE;
    if (!action_applies(st, x->action))
        return T_FALSE;
    *cov = stmt_coverage(st, x);
    if (*cov == COV_NONE)
        return T_FALSE;
    enum truth t = T_TRUE;
    struct why wu = {0}, wp = {0};
    for (size_t i = 0; i < st->n_conds; i++) {
        enum why_code code = W_NONE;
        enum truth ct = cond_eval(&st->conds[i], x, &code);
        if (ct == T_UNKNOWN && !wu.code)
            wu = (struct why){.st = st, .cond = &st->conds[i], .code = code};
        if (ct == T_PRINCIPAL && !wp.code)
            wp = (struct why){.st = st, .cond = &st->conds[i], .code = code};
        t = t_and(t, ct);
        if (t == T_FALSE)
            return T_FALSE;
    }
    if (st->resource_var && !wu.code) {
        t = t_and(t, T_UNKNOWN);
        wu = (struct why){.st = st, .code = W_RES_VAR};
    }
    if (w)
        *w = t == T_UNKNOWN ? wu : t == T_PRINCIPAL ? wp : (struct why){.st = st};
    return t;
}

static int doc_usable(const struct scp_doc *d)
{
    return d && !d->error;
}

/* Whether the level's Allow statements let the request through (OR over them). */
static enum truth level_allow(const struct scp_level *lv, const struct reqctx *x)
{
    enum truth t = T_FALSE;
    for (size_t j = 0; lv->docs && j < lv->n_docs; j++) {
        const struct scp_doc *d = lv->docs[j];
        if (!doc_usable(d)) {
            t = t_or(t, T_UNKNOWN);
            continue;
        }
        for (size_t k = 0; k < d->n_stmts; k++) {
            const struct stmt *st = &d->stmts[k];
            if (st->deny)
                continue;
            enum coverage cov;
            t = t_or(t, stmt_eval(st, x, &cov, NULL));
            if (t == T_TRUE)
                return T_TRUE;
        }
    }
    return t;
}

/* Appends prefix + text to the decision's statements (silently full at SCP_MAX_STATEMENTS). */
static void add_statement(struct scp_decision *out, const char *prefix, const char *text)
{
    if (out->n_statements >= SCP_MAX_STATEMENTS)
        return;
    snprintf(out->statements[out->n_statements++], sizeof out->statements[0], "%s%s", prefix, text);
}

static void set_reason(struct scp_decision *out, const struct why *w)
{
    const char *ref = w->st ? w->st->ref : "";
    const char *desc = w->cond ? w->cond->desc : "";
    switch (w->code) {
    case W_PRINCIPAL:
        snprintf(out->reason, sizeof out->reason, "%s in %s", desc, ref);
        break;
    case W_UNKNOWN_OP:
        snprintf(out->reason, sizeof out->reason, "unknown operator %s in %s",
                 w->cond ? w->cond->op_name : "", ref);
        break;
    case W_UNMODELED_KEY:
        snprintf(out->reason, sizeof out->reason, "condition key %s is not evaluated (%s) in %s",
                 w->cond ? w->cond->key_name : "", desc, ref);
        break;
    case W_TYPE:
        snprintf(out->reason, sizeof out->reason,
                 "operator %s does not apply to the string key %s (%s) in %s",
                 w->cond ? w->cond->op_name : "", w->cond ? w->cond->key_name : "", desc, ref);
        break;
    case W_VAR:
        snprintf(out->reason, sizeof out->reason, "policy variable not evaluated (%s) in %s", desc,
                 ref);
        break;
    case W_NULL_VALUE:
        snprintf(out->reason, sizeof out->reason, "Null expects \"true\" or \"false\" (%s) in %s",
                 desc, ref);
        break;
    case W_RES_VAR:
        snprintf(out->reason, sizeof out->reason,
                 "policy variable %s in Resource not evaluated in %s",
                 w->st && w->st->resource_var ? w->st->resource_var : "", ref);
        break;
    case W_ARN_PATTERN:
        snprintf(out->reason, sizeof out->reason,
                 "a value of %s is not an ARN pattern (six colon-separated parts) (%s) in %s",
                 w->cond ? w->cond->op_name : "", desc, ref);
        break;
    case W_MALFORMED:
        snprintf(out->reason, sizeof out->reason, "policy %s is malformed: %s",
                 w->doc ? w->doc->id : "(missing)", w->doc ? w->doc->error : "no document");
        break;
    case W_NONE:
        break;
    }
}

/* Lists the statements that make the verdict (kind: T_TRUE for explicit Denies, T_UNKNOWN or
 * T_PRINCIPAL for the Denies and, on levels whose Allow has that value, the Allows), path order;
 * the reason comes from the first. */
static void list_statements(const struct scp_level *levels, size_t n_levels, const struct reqctx *x,
                            enum truth kind, struct scp_decision *out)
{
    int have_reason = 0;
    for (size_t i = 0; i < n_levels; i++) {
        const struct scp_level *lv = &levels[i];
        enum truth lt = kind == T_TRUE ? T_FALSE : level_allow(lv, x);
        for (size_t j = 0; lv->docs && j < lv->n_docs; j++) {
            const struct scp_doc *d = lv->docs[j];
            if (!doc_usable(d)) {
                if (kind == T_UNKNOWN) {
                    add_statement(out, "", d ? d->id : "(missing document)");
                    if (!have_reason++)
                        set_reason(out, &(struct why){.doc = d, .code = W_MALFORMED});
                }
                continue;
            }
            for (size_t k = 0; k < d->n_stmts; k++) {
                const struct stmt *st = &d->stmts[k];
                if (!st->deny && lt != kind)
                    continue;
                enum coverage cov;
                struct why w = {0};
                enum truth t = stmt_eval(st, x, &cov, &w);
                if (t != kind || (st->deny && cov != COV_EVERY))
                    continue;
                add_statement(out, "", st->ref);
                if (kind != T_TRUE && !have_reason++)
                    set_reason(out, &w);
            }
        }
        if (kind == T_TRUE && level_allow(lv, x) == T_FALSE)
            add_statement(out, "no Allow at ", lv->target_id ? lv->target_id : "(unnamed)");
    }
}

/* The resource a request of each action the scanner evaluates acts on, as IAM builds it: the
 * resource types the Service Authorization Reference lists for the action ("Actions, resources,
 * and condition keys for Amazon Elastic Kubernetes Service" and "... for Amazon EC2",
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelastickubernetesservice.html
 * and .../list_amazonec2.html; the same table is in the iam-data package the differential test's
 * oracle uses). "If there is no value for this column, you must specify all resources ("*")":
 * such a request is on "*", and a statement whose Resource names cluster ARNs does not apply to
 * it. eks:CreateCluster has no resource type (the cluster does not exist yet). */
enum request_resource { RR_STAR, RR_CLUSTER };

static const struct {
    const char *action;
    enum request_resource resource;
} action_resources[] = {
    {"eks:CreateCluster", RR_STAR},          /* resource types: none */
    {"eks:UpdateClusterConfig", RR_CLUSTER}, /* cluster* (required) */
    {"eks:DescribeCluster", RR_CLUSTER},     /* cluster* (required) */
    {"eks:ListClusters", RR_STAR},           /* resource types: none */
    {"ec2:DescribeRegions", RR_STAR},        /* resource types: none */
};

/* 0 with *res, or -1 for an action the table does not know (its request cannot be built). */
static int action_resource(const char *action, enum request_resource *res)
{
    for (size_t i = 0; i < sizeof action_resources / sizeof action_resources[0]; i++)
        if (strcasecmp(action, action_resources[i].action) == 0) {
            *res = action_resources[i].resource;
            return 0;
        }
    return -1;
}

static void refuse(struct scp_decision *out, const char *why)
{
    out->verdict = SCP_UNEVALUABLE;
    snprintf(out->reason, sizeof out->reason, "%s", why);
}

static void evaluate_path(const struct scp_level *levels, size_t n_levels, const struct reqctx *x,
                          struct scp_decision *out);
static void principal_classes(const struct scp_level *levels, size_t n_levels,
                              const struct reqctx *x, struct scp_decision *out);

void scp_evaluate(const struct scp_level *levels, size_t n_levels, const struct scp_request *req,
                  const char *partition, struct scp_decision *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!req || !req->action || !req->account_id || !req->region) {
        refuse(out, "incomplete request");
        return;
    }
    if ((unsigned)req->mode >= EGRESS_MODES) {
        refuse(out, "invalid egress mode");
        return;
    }
    if (!levels || n_levels == 0) {
        refuse(out, "no SCP levels on the path");
        return;
    }
    enum request_resource rr;
    if (action_resource(req->action, &rr) != 0) {
        snprintf(out->reason, sizeof out->reason,
                 "action %.80s is not in the evaluator's action -> resource type table",
                 req->action);
        out->verdict = SCP_UNEVALUABLE;
        return;
    }
    struct reqctx x = {
        .action = req->action,
        .partition = partition ? partition : "aws",
        .region = req->region,
        .account = req->account_id,
        .mode = req->mode == EGRESS_OMITTED ? NULL : egress_mode_name(req->mode),
        .principal = req->principal_arn,
        .star_resource = rr == RR_STAR,
    };
    evaluate_path(levels, n_levels, &x, out);
    /* Any principal: what depends on aws:PrincipalArn is decided per kind of principal. */
    if (!x.principal &&
        (out->verdict == SCP_PRINCIPAL_DEPENDENT || out->verdict == SCP_UNEVALUABLE))
        principal_classes(levels, n_levels, &x, out);
}

/* The decision for one request context (x->principal NULL: any principal, every condition on
 * it "principal"). */
static void evaluate_path(const struct scp_level *levels, size_t n_levels, const struct reqctx *xp,
                          struct scp_decision *out)
{
    const struct reqctx x = *xp;
    memset(out, 0, sizeof *out);

    /* Explicit Denies, anywhere on the path. A malformed document could hold one. */
    int deny_true = 0, deny_unknown = 0, deny_principal = 0;
    const struct stmt *limited = NULL;
    for (size_t i = 0; i < n_levels; i++) {
        const struct scp_level *lv = &levels[i];
        for (size_t j = 0; lv->docs && j < lv->n_docs; j++) {
            const struct scp_doc *d = lv->docs[j];
            if (!doc_usable(d)) {
                deny_unknown = 1;
                continue;
            }
            for (size_t k = 0; k < d->n_stmts; k++) {
                const struct stmt *st = &d->stmts[k];
                if (st->egress_cond && action_applies(st, x.action))
                    out->restricts_mode = 1;
                if (!st->deny)
                    continue;
                enum coverage cov;
                enum truth t = stmt_eval(st, &x, &cov, NULL);
                if (t == T_FALSE)
                    continue;
                if (cov != COV_EVERY) {
                    /* Name-limited: some cluster names escape it, so it denies no request. */
                    if (!limited && t != T_UNKNOWN)
                        limited = st;
                    continue;
                }
                deny_true |= t == T_TRUE;
                deny_unknown |= t == T_UNKNOWN;
                deny_principal |= t == T_PRINCIPAL;
            }
        }
    }

    /* Every level needs an Allow. AWS requires at least one SCP attached to every root, OU and
     * account, so a level without documents is taken at its word: nothing is allowed there. */
    int level_false = 0, level_unknown = 0, level_principal = 0;
    for (size_t i = 0; i < n_levels; i++) {
        enum truth t = level_allow(&levels[i], &x);
        level_false |= t == T_FALSE;
        level_unknown |= t == T_UNKNOWN;
        level_principal |= t == T_PRINCIPAL;
    }

    /* What is certain first: a Deny for everyone, or a level allowing nobody, decides whatever
     * cannot be evaluated elsewhere. */
    if (deny_true || level_false) {
        out->verdict = SCP_DENIED;
        list_statements(levels, n_levels, &x, T_TRUE, out);
        return;
    }
    if (deny_unknown || level_unknown) {
        out->verdict = SCP_UNEVALUABLE;
        list_statements(levels, n_levels, &x, T_UNKNOWN, out);
        return;
    }
    if (deny_principal || level_principal) {
        out->verdict = SCP_PRINCIPAL_DEPENDENT;
        list_statements(levels, n_levels, &x, T_PRINCIPAL, out);
        return;
    }
    out->verdict = SCP_ALLOWED;
    for (size_t i = 0; i < n_levels; i++) {
        const struct scp_level *lv = &levels[i];
        int found = 0;
        for (size_t j = 0; lv->docs && j < lv->n_docs && !found; j++) {
            const struct scp_doc *d = lv->docs[j];
            for (size_t k = 0; doc_usable(d) && k < d->n_stmts && !found; k++) {
                enum coverage cov;
                if (!d->stmts[k].deny && stmt_eval(&d->stmts[k], &x, &cov, NULL) == T_TRUE) {
                    add_statement(out, "", d->stmts[k].ref);
                    found = 1;
                }
            }
        }
    }
    if (limited)
        snprintf(out->reason, sizeof out->reason,
                 "%s would deny it but its Resource covers only some cluster names", limited->ref);
}

/* ---- principal classes ----
 *
 * With no principal named, a condition on aws:PrincipalArn is true for some principals and false
 * for others. Which ones matters: two Denies exempting different roles deny every principal (no
 * role is both), the same exemption twice denies all but that role. The principals that can make
 * the request are those of the account ("arn:PART:iam::ACCOUNT:" followed by "root", "user/..."
 * or "role/...": SCPs govern the account's own principals, and a role session's aws:PrincipalArn
 * is the role's ARN). Every condition on aws:PrincipalArn compares it with patterns (String* on
 * the whole ARN, Arn* component by component), so a principal's outcome depends only on which of
 * the path's patterns it matches. Each pattern becomes a small automaton (a DFA built on demand
 * from its wildcard NFA); they are run together over the principal names, one character of each
 * class the patterns tell apart (each literal, both cases of a letter, and one character none
 * names) standing for all of them. The product states reached are every combination of matches a
 * principal can have (exactly, not a sample), and one principal of each is evaluated. Every such
 * principal denied: denied; some allowed and some denied: principal-dependent, with an example of
 * each. Too many patterns, states or combinations to explore: the verdict stays
 * principal-dependent with that reason, never guessed as denied.
 *
 * The kinds of principal depend only on the documents on the path, the partition and the account
 * (the patterns are taken from every statement, whatever its action, resource or other
 * conditions: a finer partition is as exact), so the last ones found are kept per thread and
 * reused for the path's other regions, modes and actions. */

#define PC_MAX_PATTERNS 27 /* 24 from the SCPs and the three principal shapes */
#define PC_MAX_TOKENS 191  /* positions 0..n fit in PC_WORDS words */
#define PC_WORDS 3
#define PC_MAX_DFA 128 /* DFA states per pattern */
#define PC_MAX_STATES 4096
#define PC_HASH_SLOTS 8192
#define PC_MAX_CLASSES 32
#define PC_MAX_NAME 160
#define PC_MAX_ALPHA 72
#define PC_MAX_DOCS 64

struct pc_set {
    uint64_t w[PC_WORDS];
};

struct pc_pattern {
    const unsigned short *tok;
    size_t n;
    int fold;
    int shape; /* one of the shapes of a principal ARN (not a class of its own) */
    struct pc_set start;
    /* the DFA: its states (NFA position sets) and transitions (-1: not computed yet) */
    struct pc_set *dfa;
    size_t n_dfa;
    int16_t (*trans)[PC_MAX_ALPHA];
};

static int pc_has(const struct pc_set *s, size_t i)
{
    return (int)((s->w[i / 64] >> (i % 64)) & 1);
}

static void pc_add(struct pc_set *s, size_t i)
{
    s->w[i / 64] |= (uint64_t)1 << (i % 64);
}

static void pc_closure(const unsigned short *tok, size_t n, struct pc_set *s)
{
    for (size_t i = 0; i < n; i++)
        if (pc_has(s, i) && tok[i] == TOK_STAR)
            pc_add(s, i + 1);
}

static void pc_step(const unsigned short *tok, size_t n, int fold, const struct pc_set *in,
                    unsigned c, struct pc_set *out)
{
    memset(out, 0, sizeof *out);
    if (fold)
        c = ascii_lower(c);
    for (size_t i = 0; i < n; i++) {
        if (!pc_has(in, i))
            continue;
        if (tok[i] == TOK_STAR)
            pc_add(out, i);
        else if (tok[i] == TOK_QMARK || tok[i] == c)
            pc_add(out, i + 1);
    }
    pc_closure(tok, n, out);
}

static int pc_empty(const struct pc_set *s)
{
    for (int k = 0; k < PC_WORDS; k++)
        if (s->w[k])
            return 0;
    return 1;
}

/* What the last exploration found, for one path, partition and account. */
struct pc_classes {
    unsigned long long serials[PC_MAX_DOCS];
    size_t n_serials;
    char partition[32], account[32];
    int valid;
    int any;              /* some statement on the path conditions on aws:PrincipalArn */
    const char *overflow; /* why the principals were not told apart (a static string) */
    size_t n;
    char principal[PC_MAX_CLASSES][PC_MAX_NAME];
};

struct pc_run {
    struct pc_pattern pat[PC_MAX_PATTERNS];
    size_t n_pat;
    const char *overflow;
};

/* Adds a pattern whose run starts at start. */
static void pc_push(struct pc_run *r, const unsigned short *tok, size_t n, int fold, int shape,
                    const struct pc_set *start)
{
    if (r->overflow)
        return;
    if (r->n_pat == PC_MAX_PATTERNS) {
        r->overflow = "too many aws:PrincipalArn patterns to tell the principals apart";
        return;
    }
    if (n > PC_MAX_TOKENS) {
        r->overflow = "an aws:PrincipalArn pattern too long to tell the principals apart";
        return;
    }
    r->pat[r->n_pat++] =
        (struct pc_pattern){.tok = tok, .n = n, .fold = fold, .shape = shape, .start = *start};
}

/* One condition value compared with aws:PrincipalArn, as a pattern over the part of the ARN after
 * the prefix "arn:PART:iam::ACCOUNT:". */
static void pc_value(struct pc_run *r, const struct cond *c, const struct pattern *v,
                     const char *partition, const char *account)
{
    struct pc_set start;
    memset(&start, 0, sizeof start);
    if (c->fam == OPF_ARN) {
        /* components 0-4 against the fixed ones, component 5 over the rest */
        const char *fixed[5] = {"arn", partition, "iam", "", account};
        size_t at = 0;
        for (int k = 0; k < 5; k++) {
            size_t e = at;
            while (e < v->n && v->tok[e] != ':')
                e++;
            if (e == v->n)
                return; /* not an ARN pattern: unknown for every principal, no class */
            struct pattern part = {v->tok + at, e - at};
            if (!glob_match(&part, fixed[k], 0))
                return; /* matches no principal of the account */
            at = e + 1;
        }
        if (v->n - at > PC_MAX_TOKENS) {
            r->overflow = "an aws:PrincipalArn pattern too long to tell the principals apart";
            return;
        }
        pc_add(&start, 0);
        pc_closure(v->tok + at, v->n - at, &start);
        pc_push(r, v->tok + at, v->n - at, 0, 0, &start);
        return;
    }
    if (v->n > PC_MAX_TOKENS) {
        r->overflow = "an aws:PrincipalArn pattern too long to tell the principals apart";
        return;
    }
    pc_add(&start, 0);
    pc_closure(v->tok, v->n, &start);
    const char *parts[] = {"arn:", partition, ":iam::", account, ":"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *q = parts[i]; *q; q++) {
            struct pc_set next;
            pc_step(v->tok, v->n, c->fold, &start, (unsigned char)*q, &next);
            start = next;
        }
    if (!pc_empty(&start))
        pc_push(r, v->tok, v->n, c->fold, 0, &start);
}

static const unsigned short shape_root[] = {'r', 'o', 'o', 't'};
static const unsigned short shape_user[] = {'u', 's', 'e', 'r', '/', TOK_QMARK, TOK_STAR};
static const unsigned short shape_role[] = {'r', 'o', 'l', 'e', '/', TOK_QMARK, TOK_STAR};

/* Characters of IAM user and role names and paths. */
static const char pc_name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789+=,.@_-/";

/* The DFA state of pattern p after state s on alphabet character a (index ai); -1 on overflow. */
static int pc_dfa_next(struct pc_pattern *p, int s, unsigned char a, size_t ai)
{
    if (p->trans[s][ai] >= 0)
        return p->trans[s][ai];
    struct pc_set next;
    pc_step(p->tok, p->n, p->fold, &p->dfa[s], a, &next);
    size_t k = 0;
    while (k < p->n_dfa && memcmp(&p->dfa[k], &next, sizeof next) != 0)
        k++;
    if (k == p->n_dfa) {
        if (k == PC_MAX_DFA)
            return -1;
        p->dfa[k] = next;
        for (size_t j = 0; j < PC_MAX_ALPHA; j++)
            p->trans[k][j] = -1;
        p->n_dfa++;
    }
    p->trans[s][ai] = (int16_t)k;
    return (int)k;
}

static uint32_t pc_hash(const uint8_t *st, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ st[i]) * 16777619u;
    return h;
}

struct pc_work {
    uint8_t states[PC_MAX_STATES][PC_MAX_PATTERNS]; /* product states: a DFA state per pattern */
    uint16_t parent[PC_MAX_STATES];
    unsigned char via[PC_MAX_STATES];
    int16_t slots[PC_HASH_SLOTS];
    struct pc_set dfa[PC_MAX_PATTERNS][PC_MAX_DFA];
    int16_t trans[PC_MAX_PATTERNS][PC_MAX_DFA][PC_MAX_ALPHA];
    uint32_t class_matches[PC_MAX_CLASSES];
    uint16_t class_state[PC_MAX_CLASSES];
};

/* Explores the principals of r's patterns into out (one principal per kind). -1 with
 * r->overflow. */
static int pc_explore(struct pc_run *r, struct pc_work *w, struct pc_classes *out)
{
    size_t np = r->n_pat;
    /* the alphabet: each literal (both cases of a letter) and one character no pattern names */
    char alpha[PC_MAX_ALPHA];
    size_t na = 0;
    for (const char *c = pc_name_chars; *c; c++) {
        unsigned lc = ascii_lower((unsigned char)*c);
        int named = 0;
        for (size_t i = 0; i < np && !named; i++)
            for (size_t k = 0; k < r->pat[i].n && !named; k++)
                named = r->pat[i].tok[k] < 256 && ascii_lower(r->pat[i].tok[k]) == lc;
        if (named)
            alpha[na++] = *c;
    }
    for (const char *c = pc_name_chars; *c; c++)
        if (!memchr(alpha, *c, na) && !memchr(alpha, (int)ascii_lower((unsigned char)*c), na)) {
            alpha[na++] = *c;
            break;
        }
    for (size_t i = 0; i < np; i++) {
        struct pc_pattern *p = &r->pat[i];
        p->dfa = w->dfa[i];
        p->trans = w->trans[i];
        p->dfa[0] = p->start;
        p->n_dfa = 1;
        for (size_t j = 0; j < PC_MAX_ALPHA; j++)
            p->trans[0][j] = -1;
    }
    for (size_t i = 0; i < PC_HASH_SLOTS; i++)
        w->slots[i] = -1;
    memset(w->states[0], 0, sizeof w->states[0]);
    w->parent[0] = 0;
    size_t count = 1, n_classes = 0;
    w->slots[pc_hash(w->states[0], np) % PC_HASH_SLOTS] = 0;
    for (size_t q = 0; q < count; q++) {
        int shaped = 0;
        uint32_t m = 0;
        for (size_t i = 0, bit = 0; i < np; i++) {
            const struct pc_pattern *p = &r->pat[i];
            int acc = pc_has(&p->dfa[w->states[q][i]], p->n);
            if (p->shape)
                shaped |= acc;
            else if (acc)
                m |= (uint32_t)1 << bit;
            bit += !p->shape;
        }
        if (shaped) {
            size_t k = 0;
            while (k < n_classes && w->class_matches[k] != m)
                k++;
            if (k == n_classes) {
                if (k == PC_MAX_CLASSES) {
                    r->overflow = "too many kinds of principal to tell apart";
                    return -1;
                }
                w->class_matches[k] = m;
                w->class_state[k] = (uint16_t)q;
                n_classes++;
            }
        }
        for (size_t a = 0; a < na; a++) {
            uint8_t next[PC_MAX_PATTERNS];
            int alive = 0;
            for (size_t i = 0; i < np; i++) {
                int d = pc_dfa_next(&r->pat[i], w->states[q][i], (unsigned char)alpha[a], a);
                if (d < 0) {
                    r->overflow = "an aws:PrincipalArn pattern with too many states to tell the "
                                  "principals apart";
                    return -1;
                }
                next[i] = (uint8_t)d;
                if (r->pat[i].shape && !pc_empty(&r->pat[i].dfa[d]))
                    alive = 1;
            }
            if (!alive)
                continue; /* no principal name goes on from here */
            uint32_t h = pc_hash(next, np) % PC_HASH_SLOTS;
            int seen = 0;
            while (w->slots[h] >= 0) {
                if (memcmp(w->states[w->slots[h]], next, np) == 0) {
                    seen = 1;
                    break;
                }
                h = (h + 1) % PC_HASH_SLOTS;
            }
            if (seen)
                continue;
            if (count == PC_MAX_STATES) {
                r->overflow = "the aws:PrincipalArn patterns overlap in too many ways to tell the "
                              "principals apart";
                return -1;
            }
            memcpy(w->states[count], next, np);
            w->slots[h] = (int16_t)count;
            w->parent[count] = (uint16_t)q;
            w->via[count] = (unsigned char)alpha[a];
            count++;
        }
    }
    /* one principal per kind: the prefix, then the characters that lead to its state */
    for (size_t k = 0; k < n_classes; k++) {
        char rest[PC_MAX_NAME];
        size_t len = 0;
        for (uint16_t q = w->class_state[k]; q != 0; q = w->parent[q]) {
            if (len == sizeof rest - 1) {
                r->overflow = "a principal name too long to tell the principals apart";
                return -1;
            }
            rest[len++] = (char)w->via[q];
        }
        for (size_t i = 0; i < len / 2; i++) {
            char t = rest[i];
            rest[i] = rest[len - 1 - i];
            rest[len - 1 - i] = t;
        }
        rest[len] = '\0';
        int wr = snprintf(out->principal[k], sizeof out->principal[k], "arn:%s:iam::%s:%s",
                          out->partition, out->account, rest);
        if (wr < 0 || (size_t)wr >= sizeof out->principal[k]) {
            r->overflow = "a principal name too long to tell the principals apart";
            return -1;
        }
    }
    out->n = n_classes;
    if (n_classes == 0) {
        r->overflow = "no principal of the account found";
        return -1;
    }
    return 0;
}

/* The kinds of principal of the path for x's partition and account: the thread's cache when it
 * holds them, else explored. NULL on ENOMEM. */
static const struct pc_classes *pc_classes_for(const struct scp_level *levels, size_t n_levels,
                                               const struct reqctx *x)
{
    static _Thread_local struct pc_classes cache;
    unsigned long long serials[PC_MAX_DOCS];
    size_t n_serials = 0;
    int cacheable =
        strlen(x->partition) < sizeof cache.partition && strlen(x->account) < sizeof cache.account;
    for (size_t i = 0; i < n_levels; i++)
        for (size_t j = 0; levels[i].docs && j < levels[i].n_docs; j++) {
            if (n_serials == PC_MAX_DOCS) {
                cacheable = 0;
                break;
            }
            /* 0 for a missing document (the levels do not matter: the patterns are the docs') */
            serials[n_serials++] = levels[i].docs[j] ? levels[i].docs[j]->serial : 0;
        }
    if (cacheable && cache.valid && cache.n_serials == n_serials &&
        memcmp(cache.serials, serials, n_serials * sizeof serials[0]) == 0 &&
        strcmp(cache.partition, x->partition) == 0 && strcmp(cache.account, x->account) == 0)
        return &cache;
    cache.valid = 0;
    if (!cacheable)
        return NULL; /* (rare) too many documents: explored each time by the caller's fallback */

    struct pc_run r;
    memset(&r, 0, sizeof r);
    struct pc_set start;
    memset(&start, 0, sizeof start);
    pc_add(&start, 0);
    pc_push(&r, shape_root, sizeof shape_root / sizeof shape_root[0], 0, 1, &start);
    pc_push(&r, shape_user, sizeof shape_user / sizeof shape_user[0], 0, 1, &start);
    pc_push(&r, shape_role, sizeof shape_role / sizeof shape_role[0], 0, 1, &start);
    snprintf(cache.partition, sizeof cache.partition, "%s", x->partition);
    snprintf(cache.account, sizeof cache.account, "%s", x->account);
    cache.any = 0;
    for (size_t i = 0; i < n_levels; i++) {
        const struct scp_level *lv = &levels[i];
        for (size_t j = 0; lv->docs && j < lv->n_docs; j++) {
            const struct scp_doc *d = lv->docs[j];
            for (size_t k = 0; doc_usable(d) && k < d->n_stmts; k++) {
                const struct stmt *st = &d->stmts[k];
                for (size_t c = 0; c < st->n_conds; c++) {
                    const struct cond *cd = &st->conds[c];
                    if (cd->key != KEY_PRINCIPAL_ARN)
                        continue;
                    cache.any = 1;
                    if (cd->fam != OPF_STRING && cd->fam != OPF_ARN)
                        continue;
                    for (size_t v = 0; v < cd->n_values; v++)
                        if (cd->values[v].var == VAR_NONE)
                            pc_value(&r, cd, &cd->values[v].p, x->partition, x->account);
                }
            }
        }
    }
    cache.n = 0;
    if (cache.any && !r.overflow) {
        struct pc_work *w = malloc(sizeof *w);
        if (!w)
            return NULL;
        pc_explore(&r, w, &cache);
        free(w);
    }
    cache.overflow = r.overflow;
    memcpy(cache.serials, serials, n_serials * sizeof serials[0]);
    cache.n_serials = n_serials;
    cache.valid = 1;
    return &cache;
}

static void add_statement_once(struct scp_decision *out, const char *text)
{
    for (size_t i = 0; i < out->n_statements; i++)
        if (strcmp(out->statements[i], text) == 0)
            return;
    add_statement(out, "", text);
}

static void principal_classes(const struct scp_level *levels, size_t n_levels,
                              const struct reqctx *x, struct scp_decision *out)
{
    const struct pc_classes *pc = pc_classes_for(levels, n_levels, x);
    const char *overflow = pc ? pc->overflow
                              : "too many documents or no memory to tell the "
                                "principals apart";
    if (pc && !pc->any)
        return; /* other principal keys: nothing to tell apart here */
    if (overflow) {
        if (out->verdict == SCP_PRINCIPAL_DEPENDENT) {
            size_t len = strlen(out->reason);
            snprintf(out->reason + len, sizeof out->reason - len,
                     " (not decided per principal: %s)", overflow);
        }
        return;
    }
    size_t n_denied = 0, n_allowed = 0, first_unevaluable = SIZE_MAX, first_allowed = SIZE_MAX,
           first_denied = SIZE_MAX;
    struct scp_decision dec, unevaluable;
    struct scp_decision denied_all;
    memset(&denied_all, 0, sizeof denied_all);
    memset(&unevaluable, 0, sizeof unevaluable);
    struct scp_decision first;
    memset(&first, 0, sizeof first);
    for (size_t k = 0; k < pc->n; k++) {
        struct reqctx xk = *x;
        xk.principal = pc->principal[k];
        evaluate_path(levels, n_levels, &xk, &dec);
        if (k == 0)
            first = dec;
        if (dec.verdict == SCP_DENIED) {
            n_denied++;
            if (first_denied == SIZE_MAX)
                first_denied = k;
            for (size_t i = 0; i < dec.n_statements; i++)
                add_statement_once(&denied_all, dec.statements[i]);
        } else if (dec.verdict == SCP_ALLOWED) {
            n_allowed++;
            if (first_allowed == SIZE_MAX)
                first_allowed = k;
        } else if (dec.verdict == SCP_UNEVALUABLE && first_unevaluable == SIZE_MAX) {
            first_unevaluable = k;
            unevaluable = dec;
        }
    }
    int restricts = out->restricts_mode;
    if (n_denied == pc->n) {
        *out = denied_all;
        out->verdict = SCP_DENIED;
        snprintf(out->reason, sizeof out->reason,
                 "denied to every principal: each of the %zu kinds of principal the "
                 "aws:PrincipalArn conditions tell apart is denied by a statement listed",
                 pc->n);
    } else if (first_unevaluable != SIZE_MAX) {
        *out = unevaluable;
    } else if (n_allowed == pc->n) {
        *out = first;
    } else {
        if (out->verdict != SCP_PRINCIPAL_DEPENDENT) {
            /* unevaluable with no principal named, yet no kind of principal is: the statements
             * that deny some */
            memset(out, 0, sizeof *out);
            out->verdict = SCP_PRINCIPAL_DEPENDENT;
            for (size_t i = 0; i < denied_all.n_statements; i++)
                add_statement(out, "", denied_all.statements[i]);
            snprintf(out->reason, sizeof out->reason,
                     "allowed to some principals, denied to others by the statements listed");
        }
        _Static_assert(sizeof out->allowed_principal == PC_MAX_NAME, "principal buffer");
        _Static_assert(sizeof out->denied_principal == PC_MAX_NAME, "principal buffer");
        if (first_allowed != SIZE_MAX)
            memcpy(out->allowed_principal, pc->principal[first_allowed], PC_MAX_NAME);
        if (first_denied != SIZE_MAX)
            memcpy(out->denied_principal, pc->principal[first_denied], PC_MAX_NAME);
    }
    out->restricts_mode = restricts;
}

int scp_doc_may_deny(const struct scp_doc *d, const char *action)
{
    if (!doc_usable(d) || !action)
        return 1;
    for (size_t k = 0; k < d->n_stmts; k++)
        if (d->stmts[k].deny && action_applies(&d->stmts[k], action))
            return 1;
    return 0;
}

static int has_literal_digit(const struct pattern *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tok[i] >= '0' && p->tok[i] <= '9')
            return 1;
    return 0;
}

int scp_doc_reads_account(const struct scp_doc *d)
{
    if (!doc_usable(d))
        return 0;
    for (size_t k = 0; k < d->n_stmts; k++) {
        const struct stmt *st = &d->stmts[k];
        for (size_t i = 0; i < st->n_resources; i++)
            if (has_literal_digit(&st->resources[i].p))
                return 1;
        for (size_t c = 0; c < st->n_conds; c++) {
            const struct cond *cd = &st->conds[c];
            for (size_t v = 0; cd->key == KEY_PRINCIPAL_ARN && v < cd->n_values; v++)
                if (has_literal_digit(&cd->values[v].p))
                    return 1;
        }
    }
    return 0;
}

/* ---- the SCP index ---- */

static int cmp_attachment(const void *a, const void *b)
{
    const struct scp_attachment *x = a, *y = b;
    int c = strcmp(x->target_id, y->target_id);
    if (c != 0)
        return c;
    return x->doc_index < y->doc_index ? -1 : x->doc_index > y->doc_index;
}

void scp_index_free(struct scp_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; ix->docs && i < ix->n_docs; i++)
        scp_doc_free(ix->docs[i]);
    free(ix->docs);
    free(ix->att);
    free(ix->att_docs);
    memset(ix, 0, sizeof *ix);
}

static int id_in(const char *id, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(id, ids[i]) == 0)
            return 1;
    return 0;
}

int scp_index_build(struct scp_index *ix, const struct scp_policy *scps, size_t n_scps,
                    const char *const *only_ids, size_t n_only, struct err *err)
{
    memset(ix, 0, sizeof *ix);
    size_t n_att = 0;
    for (size_t i = 0; i < n_scps; i++)
        n_att += scps[i].n_targets;
    ix->docs = calloc(n_scps ? n_scps : 1, sizeof *ix->docs);
    ix->att = malloc((n_att ? n_att : 1) * sizeof *ix->att);
    ix->att_docs = malloc((n_att ? n_att : 1) * sizeof *ix->att_docs);
    if (!ix->docs || !ix->att || !ix->att_docs)
        goto nomem;
    ix->n_docs = n_scps;
    for (size_t i = 0; i < n_scps; i++) {
        const struct scp_policy *p = &scps[i];
        int wanted = 0;
        for (size_t t = 0; t < p->n_targets; t++) {
            if (p->targets[t] && (!only_ids || id_in(p->targets[t], only_ids, n_only))) {
                ix->att[ix->n_att].target_id = p->targets[t];
                ix->att[ix->n_att].doc_index = i;
                ix->n_att++;
                wanted = 1;
            }
        }
        if (!wanted)
            continue;
        const char *content = p->content ? p->content : "";
        ix->docs[i] = scp_doc_parse(p->id ? p->id : "", content, strlen(content));
        if (!ix->docs[i])
            goto nomem;
    }
    qsort(ix->att, ix->n_att, sizeof *ix->att, cmp_attachment);
    for (size_t i = 0; i < ix->n_att; i++)
        ix->att_docs[i] = ix->docs[ix->att[i].doc_index];
    return 0;
nomem:
    scp_index_free(ix);
    return err_set(err, ERR_NOMEM, "out of memory parsing the SCPs");
}

const struct scp_doc *const *scp_index_find(const struct scp_index *ix, const char *target_id,
                                            size_t *n)
{
    size_t lo = 0, hi = ix->n_att;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->att[mid].target_id, target_id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < ix->n_att && strcmp(ix->att[end].target_id, target_id) == 0)
        end++;
    *n = end - lo;
    return ix->att_docs ? ix->att_docs + lo : NULL;
}

int scp_levels_for(const struct scp_index *ix, const char *ou_id_path, const char *account_id,
                   struct scp_path *path, struct err *err)
{
    memset(path, 0, sizeof *path);
    if (!ou_id_path || !*ou_id_path || !account_id || !*account_id)
        return err_set(err, ERR_INVALID, "no OU path or account id");
    size_t plen = strlen(ou_id_path), alen = strlen(account_id);
    if (plen + alen + 2 > sizeof path->ids)
        return err_set(err, ERR_INVALID, "OU path of account %.20s too long (%zu characters)",
                       account_id, plen);
    memcpy(path->ids, ou_id_path, plen + 1);
    const char *ids[SCP_MAX_LEVELS];
    size_t n = 0;
    for (char *tok = path->ids, *p = path->ids;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        int end = *p == '\0';
        *p = '\0';
        if (*tok) {
            if (n == SCP_MAX_LEVELS - 1)
                return err_set(err, ERR_INVALID, "OU path of account %.20s deeper than %d levels",
                               account_id, SCP_MAX_LEVELS - 1);
            ids[n++] = tok;
        }
        if (end)
            break;
        tok = p + 1;
    }
    if (n == 0)
        return err_set(err, ERR_INVALID, "empty OU path for account %.20s", account_id);
    char *acct = path->ids + plen + 1;
    memcpy(acct, account_id, alen + 1);
    ids[n++] = acct;
    for (size_t i = 0; i < n; i++) {
        struct scp_level *lv = &path->levels[i];
        lv->target_id = ids[i];
        lv->docs = scp_index_find(ix, ids[i], &lv->n_docs);
        if (lv->n_docs == 0 && !path->missing)
            path->missing = ids[i];
    }
    path->n_levels = n;
    return 0;
}
