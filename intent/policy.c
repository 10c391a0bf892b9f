/* policy.c - the declared policy file of SPEC.md section 6: parsing (jansson) and validation that
 * reports every problem as NAME:LINE:COLUMN, resolution of the allowed egress modes for a
 * cluster or an account x region, and the description `egressscan policy check` prints.
 *
 * jansson keeps no positions for parsed values, so a small tokenizer walks the text alongside the
 * parsed document and records, for every JSON value, where it and its key start (a position
 * index: one node per value, in document order, linked to jansson's value). Validation walks that
 * index, so each message points at the exact key or value, also for keys that repeat across rules.
 *
 * Semantics decided here where SPEC.md is silent (also in the README of `policy check`):
 * - A scope rule names "accounts" or "ou" (not both), or only "regions" (then it applies to every
 *   account, at the default's level of specificity, in those regions). A rule with none of
 *   accounts / ou / cluster_tags / regions is an error ("default" covers the whole fleet).
 * - "ou" may be an OU ("ou-…": that OU and everything below) or the root ("r-…": the whole
 *   organization, less specific than any OU, more specific than the default).
 * - Ranking: account rule > deeper OU > shallower OU > root > regions-only rule / default; at
 *   equal rank a rule with a region filter beats one without; rules that still tie all decide
 *   together: their allowed modes intersect, require_scp is set when any of them sets it, and
 *   rule_id names the first of them in file order.
 * - A rule with "cluster_tags" is a tag rule: it never decides the scope, it restricts (allowed &=)
 *   clusters carrying every listed tag. Tag value "*" matches any value of a present tag. A tag
 *   rule may also name accounts or ou and regions: it then applies there only. require_scp on a
 *   tag rule is an error (SCP enforcement is judged per account and region, not per tag).
 * - Exceptions are valid through the end of their "expires" day, UTC. */
#include "intent/policy.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/jsonutil.h"
#include "common/textfile.h"

#define POLICY_MAX_BYTES ((size_t)16 << 20)
#define MAX_PROBLEMS 100
#define RULE_ID_MAX 63
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256

/* ---- arena: every string and array of a policy lives in a few blocks freed at once ---- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
};
#define ARENA_HDR ((sizeof(struct arena_block) + 15) & ~(size_t)15)

struct arena {
    struct arena_block *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = n ? (n + 15) & ~(size_t)15 : 16;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        b = malloc(ARENA_HDR + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b + ARENA_HDR + b->used;
    b->used += n;
    return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *d = arena_alloc(a, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static void arena_free(struct arena *a)
{
    while (a->head) {
        struct arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- the parsed policy ---- */

struct rule {
    const char *id;
    const char *description;     /* NULL when absent */
    const char *const *accounts; /* 12-digit ids */
    size_t n_accounts;
    const char *ou;             /* "ou-…" or "r-…", NULL when absent */
    const char *const *regions; /* names or '*' patterns; none: every region */
    size_t n_regions;
    const char *const *tag_keys; /* a tag rule has at least one tag */
    const char *const *tag_values;
    size_t n_tags;
    unsigned allowed;
    int require_scp;
};

struct exception {
    const char *cluster_arn;
    const char *reason;
    const char *expires; /* "YYYY-MM-DD" */
    time_t end;          /* first second after the expires day, UTC */
};

struct policy {
    int has_default;
    unsigned default_allowed;
    struct rule *rules;
    size_t n_rules;
    struct exception *exceptions;
    size_t n_exceptions;
    size_t n_require_scp;
    struct arena mem;
};

/* ---- position index ---- */

struct pnode {
    json_t *value;              /* borrowed from the parsed document */
    const char *key;            /* object member: its key; NULL for array elements and the root */
    size_t parent, first, next; /* node indices; 0 is none (node 0 is the root) */
    size_t ordinal;             /* position among its siblings */
    int line, col;              /* where the value starts (1-based; columns count characters) */
    int key_line, key_col;      /* where the member's key starts; the value's position otherwise */
};

struct pindex {
    struct pnode *nodes;
    size_t n, cap;
    struct arena keys;
};

struct tokenizer {
    const char *s;
    size_t len, i;
    int line, col;
    struct pindex *ix;
    int status; /* 0; -1 out of memory; -2 the text and the document disagree (a bug) */
};

static void tk_advance(struct tokenizer *t)
{
    unsigned char b = (unsigned char)t->s[t->i++];
    if (b == '\n') {
        t->line++;
        t->col = 1;
    } else if ((b & 0xC0) != 0x80) { /* UTF-8 continuation bytes do not start a character */
        t->col++;
    }
}

static int tk_peek(const struct tokenizer *t)
{
    return t->i < t->len ? (unsigned char)t->s[t->i] : -1;
}

static void tk_skip_ws(struct tokenizer *t)
{
    for (int c = tk_peek(t); c == ' ' || c == '\t' || c == '\n' || c == '\r'; c = tk_peek(t))
        tk_advance(t);
}

static int tk_fail(struct tokenizer *t, int status)
{
    if (t->status == 0)
        t->status = status;
    return -1;
}

/* Moves past a string token (the opening quote is at t->i). */
static int tk_string(struct tokenizer *t)
{
    tk_advance(t);
    for (;;) {
        int c = tk_peek(t);
        if (c < 0)
            return tk_fail(t, -2);
        tk_advance(t);
        if (c == '"')
            return 0;
        if (c == '\\' && tk_peek(t) >= 0)
            tk_advance(t);
    }
}

/* The decoded key of the string token text[start .. t->i), copied into the index's arena. */
static int tk_key(struct tokenizer *t, size_t start, const char **out)
{
    const char *raw = t->s + start;
    size_t rlen = t->i - start;
    if (rlen < 2)
        return tk_fail(t, -2);
    if (!memchr(raw + 1, '\\', rlen - 2)) {
        *out = arena_strndup(&t->ix->keys, raw + 1, rlen - 2);
        return *out ? 0 : tk_fail(t, -1);
    }
    json_t *s = json_loadb(raw, rlen, JSON_DECODE_ANY, NULL); /* new reference */
    if (!json_is_string(s)) {
        json_decref(s);
        return tk_fail(t, -2);
    }
    *out = arena_strndup(&t->ix->keys, json_string_value(s), json_string_length(s));
    json_decref(s);
    return *out ? 0 : tk_fail(t, -1);
}

static int tk_node(struct tokenizer *t, json_t *v, size_t parent, const char *key, size_t ordinal,
                   int key_line, int key_col, size_t *out)
{
    struct pindex *ix = t->ix;
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        struct pnode *nodes = realloc(ix->nodes, cap * sizeof *nodes);
        if (!nodes)
            return tk_fail(t, -1);
        ix->nodes = nodes;
        ix->cap = cap;
    }
    struct pnode *n = &ix->nodes[ix->n];
    memset(n, 0, sizeof *n);
    n->value = v;
    n->key = key;
    n->parent = parent;
    n->ordinal = ordinal;
    n->line = t->line;
    n->col = t->col;
    n->key_line = key_line ? key_line : t->line;
    n->key_col = key_line ? key_col : t->col;
    *out = ix->n++;
    return 0;
}

static int tk_value(struct tokenizer *t, json_t *v, size_t parent, const char *key, size_t ordinal,
                    int key_line, int key_col, int depth, size_t *out)
{
    tk_skip_ws(t);
    if (!v || tk_peek(t) < 0 || depth > JSON_PARSER_MAX_DEPTH + 1)
        return tk_fail(t, -2);
    size_t me = 0;
    if (tk_node(t, v, parent, key, ordinal, key_line, key_col, &me) < 0)
        return -1;
    *out = me;
    int c = tk_peek(t);
    if (c == '"')
        return tk_string(t);
    if (c != '{' && c != '[') {
        for (c = tk_peek(t); c >= 0 && c != ',' && c != ']' && c != '}' && c != ' ' && c != '\t' &&
                             c != '\n' && c != '\r';
             c = tk_peek(t))
            tk_advance(t);
        return 0;
    }
    int is_obj = c == '{';
    int close = is_obj ? '}' : ']';
    if (is_obj ? !json_is_object(v) : !json_is_array(v))
        return tk_fail(t, -2);
    tk_advance(t);
    tk_skip_ws(t);
    if (tk_peek(t) == close) {
        tk_advance(t);
        return 0;
    }
    size_t last = 0;
    for (size_t k = 0;; k++) {
        tk_skip_ws(t);
        json_t *child;
        const char *ckey = NULL;
        int kl = 0, kc = 0;
        if (is_obj) {
            if (tk_peek(t) != '"')
                return tk_fail(t, -2);
            kl = t->line;
            kc = t->col;
            size_t start = t->i;
            if (tk_string(t) < 0 || tk_key(t, start, &ckey) < 0)
                return -1;
            child = json_object_get(v, ckey); /* borrowed */
            tk_skip_ws(t);
            if (tk_peek(t) != ':')
                return tk_fail(t, -2);
            tk_advance(t);
        } else {
            child = json_array_get(v, k); /* borrowed */
        }
        size_t kid = 0;
        if (tk_value(t, child, me, ckey, k, kl, kc, depth + 1, &kid) < 0)
            return -1;
        if (last)
            t->ix->nodes[last].next = kid;
        else
            t->ix->nodes[me].first = kid;
        last = kid;
        tk_skip_ws(t);
        c = tk_peek(t);
        if (c == close) {
            tk_advance(t);
            return 0;
        }
        if (c != ',')
            return tk_fail(t, -2);
        tk_advance(t);
    }
}

/* Builds the index of text, which jansson parsed into root. 0, -1 out of memory, -2 mismatch. */
static int pindex_build(struct pindex *ix, const char *text, size_t len, json_t *root)
{
    struct tokenizer t = {text, len, 0, 1, 1, ix, 0};
    size_t r;
    if (tk_value(&t, root, 0, NULL, 0, 0, 0, 0, &r) < 0)
        return t.status ? t.status : -2;
    return 0;
}

static void pindex_free(struct pindex *ix)
{
    free(ix->nodes);
    arena_free(&ix->keys);
}

/* ---- problems: collected, then written sorted by position ---- */

struct problem {
    int line, col;
    size_t seq;
    const char *text;
};

struct ctx {
    const char *name;
    const struct pindex *ix;
    struct policy *p;
    struct arena scratch; /* messages and per-parse bookkeeping */
    struct problem *problems;
    size_t n, cap, dropped;
    int nomem;
    /* where each rule's id / exception's arn was written, for "first used at" */
    int *id_line, *id_col, *arn_line, *arn_col;
};

static const struct pnode *N(const struct ctx *c, size_t n)
{
    return &c->ix->nodes[n];
}

static void vproblem(struct ctx *c, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vproblem(struct ctx *c, int line, int col, const char *fmt, va_list ap)
{
    if (c->n >= MAX_PROBLEMS) {
        c->dropped++;
        return;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct problem *pr = realloc(c->problems, cap * sizeof *pr);
        if (!pr) {
            c->nomem = 1;
            return;
        }
        c->problems = pr;
        c->cap = cap;
    }
    char msg[ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *text = arena_strndup(&c->scratch, msg, strlen(msg));
    if (!text) {
        c->nomem = 1;
        return;
    }
    c->problems[c->n] = (struct problem){line > 0 ? line : 1, col > 0 ? col : 1, c->n, text};
    c->n++;
}

static void problem_at(struct ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(c, line, col, fmt, ap);
    va_end(ap);
}

/* Appends s to buf (NUL-terminated, size bytes) with control characters as '?'. */
static void append(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);
    for (; *s && len + 1 < size; s++)
        buf[len++] = (unsigned char)*s < 0x20 ? '?' : *s;
    buf[len] = '\0';
}

/* "rules[2].allowed_modes[1]": where node n sits in the document. */
static void node_path(const struct ctx *c, size_t n, char *buf, size_t size)
{
    size_t chain[32];
    size_t depth = 0;
    for (size_t k = n; k != 0 && depth < 32; k = N(c, k)->parent)
        chain[depth++] = k;
    buf[0] = '\0';
    while (depth-- > 0) {
        const struct pnode *nd = N(c, chain[depth]);
        if (nd->key) {
            if (buf[0])
                append(buf, size, ".");
            append(buf, size, nd->key);
        } else {
            char idx[32];
            snprintf(idx, sizeof idx, "[%zu]", nd->ordinal);
            append(buf, size, idx);
        }
    }
}

/* A problem with node n (at its key when at_key and it has one), as "PATH: message". */
static void problem(struct ctx *c, size_t n, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(struct ctx *c, size_t n, int at_key, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX - 64], path[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    node_path(c, n, path, sizeof path);
    const struct pnode *nd = N(c, n);
    int line = at_key ? nd->key_line : nd->line, col = at_key ? nd->key_col : nd->col;
    if (path[0])
        problem_at(c, line, col, "%s: %s", path, msg);
    else
        problem_at(c, line, col, "%s", msg);
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A user's string, quoted and shortened for a message (never cuts a UTF-8 character). */
static const char *quoted(char *buf, size_t size, const char *s)
{
    size_t max = size > 8 ? size - 6 : 0, len = 0;
    buf[len++] = '"';
    for (; *s && len < max; s++) {
        unsigned char ch = (unsigned char)*s;
        buf[len++] = ch < 0x20 ? '?' : (char)ch;
    }
    if (*s) {
        while (len > 1 && ((unsigned char)buf[len - 1] & 0xC0) == 0x80)
            len--;
        if (len > 1 && (unsigned char)buf[len - 1] >= 0xC0)
            len--;
        memcpy(buf + len, "...", 3);
        len += 3;
    }
    buf[len++] = '"';
    buf[len] = '\0';
    return buf;
}

/* ---- value checks ---- */

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int is_lower_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* "ou-" + 4..32 + "-" + 8..32 lowercase alphanumerics, or the root "r-" + 4..32 (the forms of
 * the Organizations API). */
static int is_ou_id(const char *s)
{
    size_t n = strlen(s);
    if (strncmp(s, "r-", 2) == 0)
        return n >= 6 && n <= 34 && is_lower_alnum(s + 2, n - 2);
    if (strncmp(s, "ou-", 3) != 0)
        return 0;
    const char *dash = strchr(s + 3, '-');
    if (!dash)
        return 0;
    size_t a = (size_t)(dash - (s + 3)), b = n - 3 - a - 1;
    return a >= 4 && a <= 32 && b >= 8 && b <= 32 && is_lower_alnum(s + 3, a) &&
           is_lower_alnum(dash + 1, b);
}

/* A region name: lowercase words joined by '-', at least two, then a number ("eu-west-1",
 * "us-gov-west-1", "eusc-de-east-1"). */
static int is_region_name(const char *s)
{
    size_t words = 0;
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, '-');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return 0;
        if (!end)
            return words >= 2 && is_digits(p, n);
        for (size_t i = 0; i < n; i++)
            if (p[i] < 'a' || p[i] > 'z')
                return 0;
        if (words == 0 && n < 2)
            return 0;
        words++;
        p = end + 1;
    }
}

/* A region pattern: lowercase letters, digits, '-' and at least one '*' (any characters). A
 * pattern of stars alone is refused separately, with its own message. */
static int is_region_pattern(const char *s)
{
    int star = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '*')
            star = 1;
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    }
    return star;
}

static int is_rule_id_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" (a real calendar day, years 1970-9999) to the first second after that day, UTC. */
static int parse_date_end(const char *s, time_t *end)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !is_digits(s, 4) || !is_digits(s + 5, 2) ||
        !is_digits(s + 8, 2))
        return -1;
    int y = atoi(s), m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y)))
        return -1;
    *end = (time_t)((days_from_civil(y, m, d) + 1) * 86400);
    return 0;
}

/* Why s is not an EKS cluster ARN (arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME), or NULL. */
static const char *arn_problem(const char *s)
{
    char part[6][128];
    size_t n = 0;
    const char *p = s;
    for (; n < 6; n++) {
        const char *end = n < 5 ? strchr(p, ':') : p + strlen(p);
        if (!end || (size_t)(end - p) >= sizeof part[0])
            return "an EKS cluster ARN is arn:aws:eks:REGION:ACCOUNT:cluster/NAME";
        memcpy(part[n], p, (size_t)(end - p));
        part[n][end - p] = '\0';
        p = end + 1;
    }
    if (strcmp(part[0], "arn") != 0)
        return "an EKS cluster ARN starts with \"arn:\"";
    if (strcmp(part[1], "aws") != 0 &&
        (strncmp(part[1], "aws-", 4) != 0 || !part[1][4] ||
         strspn(part[1] + 4, "abcdefghijklmnopqrstuvwxyz-") != strlen(part[1] + 4)))
        return "unknown partition in the ARN (aws, aws-cn, aws-us-gov, ...)";
    if (strcmp(part[2], "eks") != 0)
        return "not an EKS ARN (the service must be \"eks\")";
    if (!is_region_name(part[3]))
        return "the ARN's region is not a region name";
    if (!account_id_valid(part[4]))
        return "the ARN's account is not 12 digits";
    if (strncmp(part[5], "cluster/", 8) != 0)
        return "not a cluster ARN (the resource must be cluster/NAME)";
    const char *name = part[5] + 8;
    size_t len = strlen(name);
    if (len == 0 || len > 100 ||
        !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
          (name[0] >= '0' && name[0] <= '9')))
        return "the cluster name must be 1-100 characters starting with a letter or digit";
    for (size_t i = 0; i < len; i++)
        if (!is_rule_id_char(name[i]) || name[i] == '.')
            return "the cluster name may contain only letters, digits, '-' and '_'";
    return NULL;
}

/* ---- unknown keys, with a suggestion for typos ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            char x = a[i - 1], y = b[j - 1];
            if (x >= 'A' && x <= 'Z')
                x = (char)(x - 'A' + 'a');
            size_t best = diag + (x == y ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

static const char *suggest(const char *key, const char *const *known, size_t n_known)
{
    static const char *const aliases[][2] = {{"tags", "cluster_tags"},
                                             {"arn", "cluster_arn"},
                                             {"modes", "allowed_modes"},
                                             {"expiry", "expires"},
                                             {"expiration", "expires"},
                                             {"scope", "accounts"},
                                             {"name", "id"}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(key, aliases[i][0]) == 0)
            for (size_t j = 0; j < n_known; j++)
                if (strcmp(known[j], aliases[i][1]) == 0)
                    return known[j];
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t j = 0; j < n_known; j++) {
        size_t d = edit_distance(key, known[j]);
        size_t limit = strlen(known[j]) <= 4 ? 1 : 2;
        if (d <= limit && d < best_d) {
            best = known[j];
            best_d = d;
        }
    }
    return best;
}

/* Reports every member of object node obj whose key is not in known. */
static void check_keys(struct ctx *c, size_t obj, const char *const *known, size_t n_known,
                       const char *what)
{
    for (size_t k = N(c, obj)->first; k; k = N(c, k)->next) {
        const char *key = N(c, k)->key;
        size_t j = 0;
        while (j < n_known && strcmp(key, known[j]) != 0)
            j++;
        if (j < n_known)
            continue;
        const char *s = suggest(key, known, n_known);
        if (s) {
            problem(c, k, 1, "unknown key (did you mean \"%s\"?)", s);
        } else {
            char list[256] = "";
            for (j = 0; j < n_known; j++) {
                if (j)
                    append(list, sizeof list, ", ");
                append(list, sizeof list, known[j]);
            }
            problem(c, k, 1, "unknown key; %s takes %s", what, list);
        }
    }
}

static size_t member(const struct ctx *c, size_t obj, const char *key)
{
    for (size_t k = N(c, obj)->first; k; k = N(c, k)->next)
        if (strcmp(N(c, k)->key, key) == 0)
            return k;
    return 0;
}

/* The string at node n, or NULL after reporting what it should be. */
static const char *want_string(struct ctx *c, size_t n, const char *what)
{
    json_t *v = N(c, n)->value;
    if (json_is_string(v))
        return json_string_value(v);
    problem(c, n, 0, "must be %s, not %s", what, json_type_name(v));
    return NULL;
}

static char *keep(struct ctx *c, const char *s)
{
    char *d = arena_strndup(&c->p->mem, s, strlen(s));
    if (!d)
        c->nomem = 1;
    return d;
}

static void *keep_array(struct ctx *c, size_t n, size_t size)
{
    void *a = arena_alloc(&c->p->mem, n * size);
    if (!a)
        c->nomem = 1;
    else
        memset(a, 0, n * size);
    return a;
}

/* allowed_modes: a non-empty array of known mode names without repetition. 0 when invalid. */
static unsigned check_modes(struct ctx *c, size_t n)
{
    json_t *v = N(c, n)->value;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        problem(c, n, 0,
                "must be a non-empty array of modes (AWS_MANAGED, CUSTOMER_ROUTED, "
                "CUSTOMER_ISOLATED), not %s",
                json_is_array(v) ? "an empty array" : json_type_name(v));
        return 0;
    }
    unsigned bits = 0;
    int bad = 0;
    for (size_t k = N(c, n)->first; k; k = N(c, k)->next) {
        const char *s = want_string(c, k, "a mode name (a string)");
        char qb[80];
        if (!s) {
            bad = 1;
            continue;
        }
        int m = egress_mode_parse(s);
        if (m < 0 || m == EGRESS_OMITTED) {
            const char *hint = "";
            for (int j = 0; j < EGRESS_OMITTED; j++)
                if (strcasecmp(s, egress_mode_name((enum egress_mode)j)) == 0)
                    hint = egress_mode_name((enum egress_mode)j);
            if (hint[0])
                problem(c, k, 0, "unknown mode %s (did you mean %s?)", quoted(qb, sizeof qb, s),
                        hint);
            else
                problem(c, k, 0,
                        "unknown mode %s (known: AWS_MANAGED, CUSTOMER_ROUTED, "
                        "CUSTOMER_ISOLATED)",
                        quoted(qb, sizeof qb, s));
            bad = 1;
            continue;
        }
        if (bits & EGRESS_BIT(m)) {
            problem(c, k, 0, "mode %s is listed twice", s);
            bad = 1;
        }
        bits |= EGRESS_BIT(m);
    }
    return bad ? 0 : bits;
}

/* A non-empty array of strings, each passing valid(), without repetition; kept in *out. */
static void check_string_list(struct ctx *c, size_t n, const char *what, int (*valid)(const char *),
                              const char *invalid_msg, const char *const **out, size_t *n_out)
{
    json_t *v = N(c, n)->value;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        problem(c, n, 0, "must be a non-empty array of %s, not %s", what,
                json_is_array(v) ? "an empty array" : json_type_name(v));
        return;
    }
    size_t count = json_array_size(v), i = 0;
    const char **items = keep_array(c, count, sizeof *items);
    if (!items)
        return;
    for (size_t k = N(c, n)->first; k; k = N(c, k)->next, i++) {
        json_t *item = N(c, k)->value;
        char qb[80];
        if (!json_is_string(item)) {
            problem(c, k, 0, "must be a string, not %s%s", json_type_name(item),
                    json_is_number(item) && valid == account_id_valid
                        ? " (quote account ids: leading zeros matter)"
                        : "");
            continue;
        }
        const char *s = json_string_value(item);
        if (!valid(s)) {
            problem(c, k, 0, "%s %s", quoted(qb, sizeof qb, s), invalid_msg);
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (items[j] && strcmp(items[j], s) == 0) {
                problem(c, k, 0, "%s is listed twice", quoted(qb, sizeof qb, s));
                break;
            }
        items[i] = keep(c, s);
    }
    *out = items;
    *n_out = count;
}

static int is_region_filter(const char *s)
{
    return is_region_name(s) || is_region_pattern(s);
}

static void check_tags(struct ctx *c, size_t n, struct rule *r)
{
    json_t *v = N(c, n)->value;
    if (!json_is_object(v) || json_object_size(v) == 0) {
        problem(c, n, 0, "must be a non-empty object of tag names to values, not %s",
                json_is_object(v) ? "an empty object" : json_type_name(v));
        return;
    }
    size_t count = json_object_size(v), i = 0;
    const char **keys = keep_array(c, count, sizeof *keys);
    const char **values = keep_array(c, count, sizeof *values);
    if (!keys || !values)
        return;
    for (size_t k = N(c, n)->first; k; k = N(c, k)->next) {
        const char *key = N(c, k)->key;
        json_t *tv = N(c, k)->value;
        if (key[0] == '\0' || strlen(key) > TAG_KEY_MAX)
            problem(c, k, 1, "a tag name has 1 to %d characters", TAG_KEY_MAX);
        if (!json_is_string(tv)) {
            problem(c, k, 0, "must be the tag's value (a string; \"*\" for any value), not %s",
                    json_type_name(tv));
            continue;
        }
        if (json_string_length(tv) > TAG_VALUE_MAX)
            problem(c, k, 0, "a tag value has at most %d characters", TAG_VALUE_MAX);
        keys[i] = keep(c, key);
        values[i] = keep(c, json_string_value(tv));
        i++;
    }
    r->tag_keys = keys;
    r->tag_values = values;
    r->n_tags = i;
}

static void check_rule_id(struct ctx *c, size_t rn, size_t idx, struct rule *r)
{
    size_t n = member(c, rn, "id");
    if (!n) {
        problem(c, rn, 0, "\"id\" is missing: every rule needs a unique id");
        return;
    }
    const char *s = want_string(c, n, "the rule's id (a string)");
    if (!s)
        return;
    char qb[80];
    size_t len = strlen(s);
    if (len == 0) {
        problem(c, n, 0, "a rule id cannot be empty");
        return;
    }
    if (len > RULE_ID_MAX) {
        problem(c, n, 0, "a rule id has at most %d characters", RULE_ID_MAX);
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_rule_id_char(s[i])) {
            problem(c, n, 0, "rule id %s may contain only letters, digits, '.', '_' and '-'",
                    quoted(qb, sizeof qb, s));
            return;
        }
    if (strcmp(s, "default") == 0) {
        problem(c, n, 0, "rule id \"default\" is reserved: it names the policy's default");
        return;
    }
    for (size_t j = 0; j < idx; j++)
        if (c->p->rules[j].id && strcmp(c->p->rules[j].id, s) == 0) {
            problem(c, n, 0, "duplicate rule id \"%s\" (first used at line %d, column %d)", s,
                    c->id_line[j], c->id_col[j]);
            return;
        }
    r->id = keep(c, s);
    c->id_line[idx] = N(c, n)->line;
    c->id_col[idx] = N(c, n)->col;
}

static void check_rule(struct ctx *c, size_t rn, size_t idx)
{
    static const char *const keys[] = {"id",      "description",  "accounts",      "ou",
                                       "regions", "cluster_tags", "allowed_modes", "require_scp"};
    struct rule *r = &c->p->rules[idx];
    if (!json_is_object(N(c, rn)->value)) {
        problem(c, rn, 0, "a rule must be an object, not %s", json_type_name(N(c, rn)->value));
        return;
    }
    check_keys(c, rn, keys, sizeof keys / sizeof keys[0], "a rule");
    check_rule_id(c, rn, idx, r);

    size_t n = member(c, rn, "description");
    if (n) {
        const char *s = want_string(c, n, "a string");
        if (s)
            r->description = keep(c, s);
    }
    size_t accounts = member(c, rn, "accounts"), ou = member(c, rn, "ou");
    size_t regions = member(c, rn, "regions"), tags = member(c, rn, "cluster_tags");
    if (accounts)
        check_string_list(c, accounts, "12-digit account ids", account_id_valid,
                          "is not an account id (12 digits)", &r->accounts, &r->n_accounts);
    if (ou) {
        const char *s = want_string(c, ou, "an OU id (a string)");
        char qb[80];
        if (s && !is_ou_id(s))
            problem(c, ou, 0, "%s is not an OU id (\"ou-xxxx-xxxxxxxx\") or root id (\"r-xxxx\")",
                    quoted(qb, sizeof qb, s));
        else if (s)
            r->ou = keep(c, s);
    }
    if (accounts && ou) {
        size_t later = N(c, ou)->key_line > N(c, accounts)->key_line ||
                               (N(c, ou)->key_line == N(c, accounts)->key_line &&
                                N(c, ou)->key_col > N(c, accounts)->key_col)
                           ? ou
                           : accounts;
        problem(c, later, 1,
                "a rule names \"accounts\" or \"ou\", not both (write one rule for each)");
    }
    if (regions) {
        check_string_list(c, regions, "region names or patterns", is_region_filter,
                          "is not a region name (\"eu-west-1\") or pattern with '*' (\"eu-*\")",
                          &r->regions, &r->n_regions);
        for (size_t k = N(c, regions)->first; k; k = N(c, k)->next) {
            const char *s = json_string_value(N(c, k)->value);
            if (s && s[0] && strspn(s, "*") == strlen(s))
                problem(c, k, 0, "\"%s\" matches every region: leave \"regions\" out instead", s);
        }
    }
    if (tags)
        check_tags(c, tags, r);

    n = member(c, rn, "allowed_modes");
    if (n)
        r->allowed = check_modes(c, n);
    else
        problem(c, rn, 0, "\"allowed_modes\" is missing");

    n = member(c, rn, "require_scp");
    if (n) {
        if (!json_is_boolean(N(c, n)->value))
            problem(c, n, 0, "must be true or false, not %s", json_type_name(N(c, n)->value));
        else
            r->require_scp = json_is_true(N(c, n)->value);
        if (r->require_scp && tags)
            problem(c, n, 1,
                    "require_scp cannot be combined with cluster_tags: SCP enforcement is "
                    "judged per account and region, not per cluster tag");
        if (r->require_scp)
            c->p->n_require_scp++;
    }
    if (!accounts && !ou && !regions && !tags)
        problem(c, rn, 0,
                "the rule has no scope: give \"accounts\", \"ou\", \"regions\" or "
                "\"cluster_tags\" (\"default\" covers the whole fleet)");
}

static void check_exception(struct ctx *c, size_t en, size_t idx)
{
    static const char *const keys[] = {"cluster_arn", "reason", "expires"};
    struct exception *x = &c->p->exceptions[idx];
    if (!json_is_object(N(c, en)->value)) {
        problem(c, en, 0, "an exception must be an object, not %s",
                json_type_name(N(c, en)->value));
        return;
    }
    check_keys(c, en, keys, sizeof keys / sizeof keys[0], "an exception");
    char qb[80];

    size_t n = member(c, en, "cluster_arn");
    const char *s;
    if (!n) {
        problem(c, en, 0, "\"cluster_arn\" is missing");
    } else if ((s = want_string(c, n, "a cluster ARN (a string)")) != NULL) {
        const char *why = arn_problem(s);
        size_t j = 0;
        while (j < idx && !(c->p->exceptions[j].cluster_arn &&
                            strcmp(c->p->exceptions[j].cluster_arn, s) == 0))
            j++;
        if (why)
            problem(c, n, 0, "%s: %s", quoted(qb, sizeof qb, s), why);
        else if (j < idx)
            problem(c, n, 0, "a second exception for this cluster (first at line %d, column %d)",
                    c->arn_line[j], c->arn_col[j]);
        else {
            x->cluster_arn = keep(c, s);
            c->arn_line[idx] = N(c, n)->line;
            c->arn_col[idx] = N(c, n)->col;
        }
    }
    n = member(c, en, "reason");
    if (!n) {
        problem(c, en, 0, "\"reason\" is missing (a ticket or a justification)");
    } else if ((s = want_string(c, n, "a string")) != NULL) {
        if (strspn(s, " \t\r\n") == strlen(s))
            problem(c, n, 0, "the reason cannot be empty");
        else
            x->reason = keep(c, s);
    }
    n = member(c, en, "expires");
    if (!n) {
        problem(c, en, 0, "\"expires\" is missing (the last valid day, YYYY-MM-DD)");
    } else if ((s = want_string(c, n, "a date (YYYY-MM-DD)")) != NULL) {
        if (parse_date_end(s, &x->end) < 0)
            problem(c, n, 0, "%s is not a date (YYYY-MM-DD)", quoted(qb, sizeof qb, s));
        else
            x->expires = keep(c, s);
    }
}

static void check_document(struct ctx *c)
{
    static const char *const keys[] = {"version", "default", "rules", "exceptions"};
    json_t *root = N(c, 0)->value;
    if (!json_is_object(root)) {
        problem(c, 0, 0, "a policy must be a JSON object, not %s", json_type_name(root));
        return;
    }
    check_keys(c, 0, keys, sizeof keys / sizeof keys[0], "a policy");

    size_t n = member(c, 0, "version");
    if (!n) {
        problem(c, 0, 0, "\"version\" is missing (this egressscan reads \"version\": 1)");
    } else {
        json_t *v = N(c, n)->value;
        if (!json_is_integer(v))
            problem(c, n, 0, "must be the number 1, not %s", json_type_name(v));
        else if (json_integer_value(v) != 1)
            problem(c, n, 0,
                    "unsupported policy version %" JSON_INTEGER_FORMAT
                    ": this egressscan reads version 1",
                    json_integer_value(v));
    }

    n = member(c, 0, "default");
    if (n) {
        static const char *const dkeys[] = {"allowed_modes"};
        if (!json_is_object(N(c, n)->value)) {
            problem(c, n, 0, "must be an object with \"allowed_modes\", not %s",
                    json_type_name(N(c, n)->value));
        } else {
            check_keys(c, n, dkeys, 1, "\"default\"");
            size_t m = member(c, n, "allowed_modes");
            if (m) {
                c->p->has_default = 1;
                c->p->default_allowed = check_modes(c, m);
            } else {
                problem(c, n, 0, "\"allowed_modes\" is missing");
            }
        }
    }

    n = member(c, 0, "rules");
    if (n) {
        json_t *v = N(c, n)->value;
        if (!json_is_array(v)) {
            problem(c, n, 0, "must be an array of rules, not %s", json_type_name(v));
        } else if (json_array_size(v) > 0) {
            size_t count = json_array_size(v);
            c->p->rules = keep_array(c, count, sizeof *c->p->rules);
            c->id_line = keep_array(c, count, sizeof *c->id_line);
            c->id_col = keep_array(c, count, sizeof *c->id_col);
            if (!c->p->rules || !c->id_line || !c->id_col)
                return;
            c->p->n_rules = count;
            size_t i = 0;
            for (size_t k = N(c, n)->first; k; k = N(c, k)->next)
                check_rule(c, k, i++);
        }
    }

    n = member(c, 0, "exceptions");
    if (n) {
        json_t *v = N(c, n)->value;
        if (!json_is_array(v)) {
            problem(c, n, 0, "must be an array of exceptions, not %s", json_type_name(v));
        } else if (json_array_size(v) > 0) {
            size_t count = json_array_size(v);
            c->p->exceptions = keep_array(c, count, sizeof *c->p->exceptions);
            c->arn_line = keep_array(c, count, sizeof *c->arn_line);
            c->arn_col = keep_array(c, count, sizeof *c->arn_col);
            if (!c->p->exceptions || !c->arn_line || !c->arn_col)
                return;
            c->p->n_exceptions = count;
            size_t i = 0;
            for (size_t k = N(c, n)->first; k; k = N(c, k)->next)
                check_exception(c, k, i++);
        }
    }
}

/* ---- parse / load ---- */

/* line:column (1-based, columns in characters) of byte offset off in text. */
static void offset_position(const char *text, size_t off, int *line, int *col)
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

/* jansson reports a duplicate key at the end of the second key: point at its opening quote. */
static void syntax_problem(struct ctx *c, const char *text, size_t len, const json_error_t *je)
{
    if (json_error_code(je) == json_error_duplicate_key && je->position >= 2 &&
        (size_t)je->position <= len && text[je->position - 1] == '"') {
        size_t end = (size_t)je->position - 1;
        for (size_t j = end; j-- > 0;) {
            size_t bs = 0;
            while (bs < j && text[j - 1 - bs] == '\\')
                bs++;
            if (text[j] == '"' && bs % 2 == 0) {
                int line, col;
                char key[80], qb[96];
                size_t klen = end - j - 1 < sizeof key - 1 ? end - j - 1 : sizeof key - 1;
                memcpy(key, text + j + 1, klen);
                key[klen] = '\0';
                offset_position(text, j, &line, &col);
                problem_at(c, line, col, "duplicate key %s in the same object",
                           quoted(qb, sizeof qb, key));
                return;
            }
        }
    }
    problem_at(c, je->line, je->column, "%s", je->text);
}

/* Writes the problems in position order to errors and the first into err. */
static void emit_problems(struct ctx *c, FILE *errors, struct err *err)
{
    qsort(c->problems, c->n, sizeof *c->problems, problem_cmp);
    for (size_t i = 0; i < c->n; i++) {
        const struct problem *pr = &c->problems[i];
        if (errors)
            fprintf(errors, "%s:%d:%d: %s\n", c->name, pr->line, pr->col, pr->text);
        if (i == 0)
            err_set(err, ERR_CONFIG, "%s:%d:%d: %s", c->name, pr->line, pr->col, pr->text);
    }
    if (c->dropped && errors)
        fprintf(errors, "%s: too many errors; %zu more not shown\n", c->name, c->dropped);
}

struct policy *policy_parse(const char *text, size_t len, const char *name, FILE *errors,
                            struct err *err)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.name = name ? name : "policy";
    struct pindex ix;
    memset(&ix, 0, sizeof ix);
    c.ix = &ix;
    json_t *root = NULL;
    struct policy *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    c.p = p;
    if (!text)
        text = "";

    json_error_t je;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je); /* new reference */
    if (!root) {
        if (json_error_code(&je) == json_error_out_of_memory)
            goto nomem;
        syntax_problem(&c, text, len, &je);
        goto fail;
    }
    int rc = pindex_build(&ix, text, len, root);
    if (rc == -1)
        goto nomem;
    if (rc < 0) {
        problem_at(&c, 1, 1, "internal error: cannot index the document");
        goto fail;
    }
    check_document(&c);
    if (c.nomem)
        goto nomem;
    if (c.n > 0)
        goto fail;
    json_decref(root);
    pindex_free(&ix);
    arena_free(&c.scratch);
    free(c.problems);
    return p;

nomem:
    err_set(err, ERR_NOMEM, "%s: out of memory", c.name);
    if (errors)
        fprintf(errors, "%s: out of memory\n", c.name);
    goto cleanup;
fail:
    if (c.nomem)
        goto nomem;
    emit_problems(&c, errors, err);
cleanup:
    json_decref(root);
    pindex_free(&ix);
    arena_free(&c.scratch);
    free(c.problems);
    policy_free(p);
    return NULL;
}

struct policy *policy_load(const char *path, FILE *errors, struct err *err)
{
    struct err local;
    if (!err)
        err = &local;
    size_t len = 0;
    char *text = textfile_read(path, POLICY_MAX_BYTES, &len, err);
    if (!text) {
        if (errors)
            fprintf(errors, "%s\n", err->message);
        return NULL;
    }
    struct policy *p = policy_parse(text, len, path, errors, err);
    free(text);
    return p;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    arena_free(&p->mem);
    free(p);
}

/* ---- resolution ---- */

/* '*' matches any run of characters (also none); everything else matches itself. */
static int glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

static int region_applies(const struct rule *r, const char *region)
{
    if (r->n_regions == 0)
        return 1;
    if (!region)
        return 0;
    for (size_t i = 0; i < r->n_regions; i++)
        if (glob_match(r->regions[i], region))
            return 1;
    return 0;
}

#define RANK_ROOT 1
#define RANK_OU_BASE 2
#define RANK_ACCOUNT ((long)1 << 30)

/* How specific rule r's accounts / ou scope is for s: -1 when it does not cover s; 0 for a rule
 * naming neither (every account); RANK_ROOT; RANK_OU_BASE + depth; RANK_ACCOUNT. */
static long scope_rank(const struct rule *r, const struct policy_subject *s)
{
    if (r->n_accounts) {
        if (!s->account_id)
            return -1;
        for (size_t i = 0; i < r->n_accounts; i++)
            if (strcmp(r->accounts[i], s->account_id) == 0)
                return RANK_ACCOUNT;
        return -1;
    }
    if (!r->ou)
        return 0;
    int other_root = 0;
    for (size_t i = 0; i < s->n_ous; i++) {
        if (!s->ou_ids[i])
            continue;
        if (strcmp(s->ou_ids[i], r->ou) == 0)
            return r->ou[0] == 'r' ? RANK_ROOT : RANK_OU_BASE + (long)i;
        if (strncmp(s->ou_ids[i], "r-", 2) == 0)
            other_root = 1;
    }
    /* The path lists the OUs below the root: a root rule covers every account of the
     * organization unless the path names a different root. */
    if (r->ou[0] == 'r' && !other_root)
        return RANK_ROOT;
    return -1;
}

static int tags_match(const struct rule *r, json_t *tags)
{
    for (size_t i = 0; i < r->n_tags; i++) {
        json_t *v = json_object_get(tags, r->tag_keys[i]); /* borrowed */
        if (!json_is_string(v))
            return 0;
        if (strcmp(r->tag_values[i], "*") != 0 && strcmp(r->tag_values[i], json_string_value(v)))
            return 0;
    }
    return 1;
}

/* Copies src into dst (size bytes), cut at a UTF-8 character boundary when it does not fit. */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void append_tag_rule(char *list, size_t size, const char *id)
{
    size_t len = strlen(list), need = strlen(id) + (len ? 1 : 0);
    if (len >= 3 && strcmp(list + len - 3, "...") == 0)
        return;
    if (len + need + 4 >= size) { /* keep room for ",..." */
        if (len + 4 < size)
            memcpy(list + len, len ? ",..." : "...", len ? 5 : 4);
        return;
    }
    snprintf(list + len, size - len, "%s%s", len ? "," : "", id);
}

void policy_resolve(const struct policy *p, const struct policy_subject *s, time_t now,
                    struct policy_resolution *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->rule_id, sizeof out->rule_id, "default");
    out->allowed = EGRESS_ALL_NAMED;
    if (!p)
        return;
    if (p->has_default)
        out->allowed = p->default_allowed;

    long best_rank = -1;
    int best_filtered = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct rule *r = &p->rules[i];
        if (r->n_tags || !region_applies(r, s->region))
            continue;
        long rank = scope_rank(r, s);
        int filtered = r->n_regions > 0;
        if (rank < 0)
            continue;
        if (rank > best_rank || (rank == best_rank && filtered > best_filtered)) {
            best_rank = rank;
            best_filtered = filtered;
            out->allowed = r->allowed;
            out->require_scp = r->require_scp;
            copy_utf8(out->rule_id, sizeof out->rule_id, r->id);
        } else if (rank == best_rank && filtered == best_filtered) {
            out->allowed &= r->allowed; /* a tie: both rules hold */
            out->require_scp |= r->require_scp;
        }
    }

    if (s->tags_json) {
        json_t *tags = json_loads(s->tags_json, 0, NULL); /* new reference */
        if (json_is_object(tags)) {
            for (size_t i = 0; i < p->n_rules; i++) {
                const struct rule *r = &p->rules[i];
                if (!r->n_tags || !region_applies(r, s->region) || scope_rank(r, s) < 0 ||
                    !tags_match(r, tags))
                    continue;
                out->allowed &= r->allowed;
                append_tag_rule(out->tag_rules, sizeof out->tag_rules, r->id);
            }
        }
        json_decref(tags);
    }

    if (s->cluster_arn) {
        for (size_t i = 0; i < p->n_exceptions; i++) {
            const struct exception *x = &p->exceptions[i];
            if (strcmp(x->cluster_arn, s->cluster_arn) != 0)
                continue;
            if (now < x->end)
                out->exempt = 1;
            else
                out->exception_expired = 1;
            copy_utf8(out->exception_reason, sizeof out->exception_reason, x->reason);
            copy_utf8(out->exception_expires, sizeof out->exception_expires, x->expires);
            break;
        }
    }
}

size_t policy_rule_count(const struct policy *p)
{
    return p ? p->n_require_scp : 0;
}

const char *policy_rule_id(const struct policy *p, size_t i)
{
    if (!p)
        return NULL;
    for (size_t k = 0; k < p->n_rules; k++)
        if (p->rules[k].require_scp && i-- == 0)
            return p->rules[k].id;
    return NULL;
}

size_t policy_exception_count(const struct policy *p)
{
    return p ? p->n_exceptions : 0;
}

int policy_exception_expired(const struct policy *p, size_t i, time_t now)
{
    return p && i < p->n_exceptions && now >= p->exceptions[i].end;
}

void policy_exception_get(const struct policy *p, size_t i, const char **cluster_arn,
                          const char **reason, const char **expires)
{
    const struct exception *x = p && i < p->n_exceptions ? &p->exceptions[i] : NULL;
    if (cluster_arn)
        *cluster_arn = x ? x->cluster_arn : NULL;
    if (reason)
        *reason = x ? x->reason : NULL;
    if (expires)
        *expires = x ? x->expires : NULL;
}

/* ---- description ---- */

static void print_modes(FILE *out, unsigned bits)
{
    int first = 1;
    for (int m = 0; m < EGRESS_OMITTED; m++)
        if (bits & EGRESS_BIT(m)) {
            fprintf(out, "%s%s", first ? "" : ", ", egress_mode_name((enum egress_mode)m));
            first = 0;
        }
    if (first)
        fprintf(out, "(none)");
}

static void print_list(FILE *out, const char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", items[i]);
}

/* "account 111122223333", "OU ou-… and everything below", "every account", + regions. */
static void print_where(FILE *out, const struct rule *r)
{
    if (r->n_accounts) {
        fprintf(out, "%s ", r->n_accounts == 1 ? "account" : "accounts");
        print_list(out, r->accounts, r->n_accounts);
    } else if (r->ou && r->ou[0] == 'r') {
        fprintf(out, "the whole organization (root %s)", r->ou);
    } else if (r->ou) {
        fprintf(out, "OU %s and everything below", r->ou);
    } else {
        fprintf(out, "every account");
    }
    if (r->n_regions) {
        int one_name = r->n_regions == 1 && !strchr(r->regions[0], '*');
        fprintf(out, ", %s ", one_name ? "region" : "regions");
        print_list(out, r->regions, r->n_regions);
    } else {
        fprintf(out, ", every region");
    }
}

static void describe_rule(FILE *out, const struct rule *r)
{
    fprintf(out, "  rule \"%s\"\n", r->id);
    if (r->description)
        fprintf(out, "    description:   %s\n", r->description);
    fprintf(out, "    scope:         ");
    if (r->n_tags) {
        fprintf(out, "clusters tagged ");
        for (size_t i = 0; i < r->n_tags; i++) {
            if (strcmp(r->tag_values[i], "*") == 0)
                fprintf(out, "%s%s (any value)", i ? " and " : "", r->tag_keys[i]);
            else
                fprintf(out, "%s%s=%s", i ? " and " : "", r->tag_keys[i], r->tag_values[i]);
        }
        fprintf(out, ", in ");
    }
    print_where(out, r);
    fprintf(out, "\n    allowed modes: ");
    print_modes(out, r->allowed);
    fprintf(out, "\n    require_scp:   %s\n",
            r->require_scp ? "yes: the SCPs must enforce these modes" : "no");
}

void policy_describe(const struct policy *p, time_t now, FILE *out)
{
    if (!p)
        return;
    size_t n_scope = 0, n_tag = 0, n_expired = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        if (p->rules[i].n_tags)
            n_tag++;
        else
            n_scope++;
    }
    for (size_t i = 0; i < p->n_exceptions; i++)
        n_expired += now >= p->exceptions[i].end;
    fprintf(out, "policy version 1: %zu scope rule%s, %zu tag rule%s, %zu exception%s", n_scope,
            n_scope == 1 ? "" : "s", n_tag, n_tag == 1 ? "" : "s", p->n_exceptions,
            p->n_exceptions == 1 ? "" : "s");
    if (n_expired)
        fprintf(out, " (%zu expired)", n_expired);
    fprintf(out, "\n\ndefault (every account and region no scope rule covers): ");
    if (p->has_default)
        print_modes(out, p->default_allowed);
    else
        fprintf(out, "not set: every mode is allowed");
    fprintf(out, "\n");

    if (n_scope) {
        fprintf(out, "\nscope rules (the most specific one that applies decides: account over OU,"
                     " deeper OU\nover shallower, over the default; at equal rank a rule with a "
                     "region filter wins;\nrules still tied must all hold):\n");
        for (size_t i = 0; i < p->n_rules; i++)
            if (!p->rules[i].n_tags)
                describe_rule(out, &p->rules[i]);
    }
    if (n_tag) {
        fprintf(out, "\ntag rules (further restrict clusters carrying every listed tag):\n");
        for (size_t i = 0; i < p->n_rules; i++)
            if (p->rules[i].n_tags)
                describe_rule(out, &p->rules[i]);
    }
    if (p->n_exceptions) {
        fprintf(out, "\nexceptions (valid through the end of their day, UTC):\n");
        for (size_t i = 0; i < p->n_exceptions; i++) {
            const struct exception *x = &p->exceptions[i];
            fprintf(out, "  %s\n    reason:        %s\n", x->cluster_arn, x->reason);
            if (now < x->end)
                fprintf(out, "    state:         valid until %s (%lld day%s left)\n", x->expires,
                        (long long)((x->end - now + 86399) / 86400),
                        (x->end - now + 86399) / 86400 == 1 ? "" : "s");
            else
                fprintf(out, "    state:         EXPIRED on %s: the cluster is judged normally\n",
                        x->expires);
        }
    }
}
