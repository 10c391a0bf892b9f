/* eks.c - EKS restJson1: ListClusters pages and DescribeCluster, submitted on the shared HTTP
 * engine, and the parsers that turn their answers into plain structs. DescribeCluster runs
 * thousands of times per scan, so its parser makes one pass, one malloc and no extra copies. */
#include "scanner/eks.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/isotime.h"
#include "common/jsonutil.h"
#include "common/utf8.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/sigv4.h"

/* EKS cluster names are at most 100 characters; anything much longer is refused before the URL
 * is built. */
#define EKS_NAME_MAX 255

/* What an answer may hold (SPEC section 4: lengths bounded). AWS's own limits where it documents
 * them (names 100 characters, 50 tags of 128/256 characters), generous bounds elsewhere. */
#define EKS_CLUSTER_NAME_MAX 100
#define EKS_ARN_MAX 2048
#define EKS_SHORT_MAX 64 /* status, versions, egress mode, vpc id */
#define EKS_TAGS_MAX 50
#define EKS_TAG_KEY_MAX 128   /* characters */
#define EKS_TAG_VALUE_MAX 256 /* characters */
#define EKS_CIDRS_MAX 100
#define EKS_CIDR_MAX 64
#define EKS_PAGE_NAMES_MAX 100 /* maxResults */
#define EKS_TOKEN_MAX 4096

int eks_cluster_name_valid(const char *s, size_t len)
{
    return len <= EKS_CLUSTER_NAME_MAX && cluster_name_valid(s, len);
}

/* A value from an answer, fit to be quoted in an error message: at most 64 bytes, cut on a
 * character boundary, control characters, quotes and backslashes replaced by '?'. */
static const char *quoted(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = utf8_cut_len(s, len, cap - 4 < 64 ? cap - 4 : 64), o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ctl = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
                  (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0); /* C1 */
        out[o++] = ctl ? '?' : (char)c;
    }
    if (n < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    utf8_repair(out); /* a C1 lead replaced above leaves its continuation byte */
    return out;
}

/* Number of characters of valid UTF-8 text. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Loads body as a JSON object. Returns a new reference or NULL with err. */
static json_t *load_object(const char *body, size_t len, const char *what, struct err *err)
{
    if (!body || len == 0) {
        err_set(err, ERR_PARSE, "%s: empty response body", what);
        return NULL;
    }
    /* JSON text has no NUL bytes, but jansson lets one through after a number; the raw body is
     * stored as text, which cannot hold one either. */
    const char *nul = memchr(body, '\0', len);
    if (nul) {
        err_set(err, ERR_PARSE, "%s: invalid JSON: a NUL byte at offset %zu", what,
                (size_t)(nul - body));
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr); /* new */
    if (!root) {
        err_set(err, ERR_PARSE, "%s: invalid JSON at line %d column %d: %s", what, jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        err_set(err, ERR_PARSE, "%s: the answer is %s, not an object", what, json_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- ListClusters ---- */

/* One page of a listing: the strings of the array `key`, each accepted by valid (invalid: what
 * they must be, for the message), and nextToken. On success *items is ONE allocation: the array
 * of n strings (NULL-terminated) followed by their bytes and the next token, which *next_token
 * points into (NULL on the last page). The caller frees everything with free(*items); *items is
 * never NULL on success. what: the operation, noun: what the strings are ("names"). */
struct page_kind {
    const char *what, *key, *noun, *invalid;
    int (*valid)(const char *s, size_t len);
};

static int parse_page(const struct page_kind *k, const char *body, size_t len, char ***items,
                      size_t *n, char **next_token, struct err *err)
{
    *items = NULL;
    *n = 0;
    *next_token = NULL;
    json_t *root = load_object(body, len, k->what, err); /* new */
    if (!root)
        return -1;
    int rc = -1;
    json_t *list = json_object_get(root, k->key);       /* borrowed */
    json_t *token = json_object_get(root, "nextToken"); /* borrowed */
    if (!json_is_array(list)) {
        err_set(err, ERR_PARSE, "%s: \"%s\" is %s, expected an array", k->what, k->key,
                list ? json_type_name(list) : "missing");
        goto out;
    }
    if (token && !json_is_null(token) && !json_is_string(token)) {
        err_set(err, ERR_PARSE, "%s: \"nextToken\" is %s, expected a string", k->what,
                json_type_name(token));
        goto out;
    }
    size_t count = json_array_size(list);
    size_t bytes = (count + 1) * sizeof(char *);
    for (size_t i = 0; i < count; i++) {
        json_t *v = json_array_get(list, i); /* borrowed */
        if (!json_is_string(v)) {
            err_set(err, ERR_PARSE, "%s: %s[%zu] is %s, expected a string", k->what, k->key, i,
                    json_type_name(v));
            goto out;
        }
        if (!k->valid(json_string_value(v), json_string_length(v))) {
            char q[80];
            err_set(err, ERR_PARSE, "%s: %s[%zu] \"%s\" (%zu bytes) is not %s", k->what, k->key, i,
                    quoted(json_string_value(v), json_string_length(v), q, sizeof q),
                    json_string_length(v), k->invalid);
            goto out;
        }
        bytes += json_string_length(v) + 1;
    }
    if (count > EKS_PAGE_NAMES_MAX) {
        err_set(err, ERR_PARSE, "%s: %zu %s on one page (maxResults is at most %d)", k->what, count,
                k->noun, EKS_PAGE_NAMES_MAX);
        goto out;
    }
    /* An empty token would page forever on the same request: it ends the listing. */
    size_t token_len = json_is_string(token) ? json_string_length(token) : 0;
    if (token_len > EKS_TOKEN_MAX) {
        err_set(err, ERR_PARSE, "%s: nextToken of %zu bytes (at most %d)", k->what, token_len,
                EKS_TOKEN_MAX);
        goto out;
    }
    if (token_len)
        bytes += token_len + 1;

    char **arr = malloc(bytes);
    if (!arr) {
        err_set(err, ERR_NOMEM, "%s: out of memory", k->what);
        goto out;
    }
    char *p = (char *)(arr + count + 1);
    for (size_t i = 0; i < count; i++) {
        json_t *v = json_array_get(list, i);
        size_t l = json_string_length(v);
        memcpy(p, json_string_value(v), l + 1);
        arr[i] = p;
        p += l + 1;
    }
    arr[count] = NULL;
    if (token_len) {
        memcpy(p, json_string_value(token), token_len + 1);
        *next_token = p;
    }
    *items = arr;
    *n = count;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int eks_parse_list_clusters(const char *body, size_t len, char ***names, size_t *n,
                            char **next_token, struct err *err)
{
    static const struct page_kind k = {
        "ListClusters", "clusters", "names",
        "an EKS cluster name (1-100 characters of A-Z a-z 0-9 - _, starting with a letter or "
        "digit)",
        eks_cluster_name_valid};
    return parse_page(&k, body, len, names, n, next_token, err);
}

/* ---- DescribeCluster ---- */

/* Fetches an optional member that must be of type `want` when present (null counts as absent).
 * Returns 0 with *out (borrowed, NULL when absent) or -1 with err. */
static int get_member(json_t *obj, const char *key, json_type want, const char *ctx, json_t **out,
                      struct err *err)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    int ok = json_typeof(v) == want || (want == JSON_TRUE && json_is_boolean(v));
    if (!ok) {
        const char *expected = want == JSON_STRING   ? "a string"
                               : want == JSON_OBJECT ? "an object"
                               : want == JSON_ARRAY  ? "an array"
                               : want == JSON_TRUE   ? "a boolean"
                                                     : "another type";
        return err_set(err, ERR_PARSE, "DescribeCluster: %s%s is %s, expected %s", ctx, key,
                       json_type_name(v), expected);
    }
    *out = v;
    return 0;
}

/* restJson1 timestamps are epoch seconds, possibly fractional; formats them as ISO 8601 UTC
 * with milliseconds when there are any: "2026-11-26T14:31:00.452Z". */
static int epoch_to_iso(double v, char *out, size_t cap)
{
    /* 0001..9999 is what ISO text and PostgreSQL both take; before 1970 is not an EKS cluster */
    if (!(v >= 0.0 && v < 253402300800.0))
        return -1;
    long long ms = llround(v * 1000.0);
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        return -1;
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return -1;
    int w = frac ? snprintf(out + n, cap - n, ".%03dZ", frac) : snprintf(out + n, cap - n, "Z");
    return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

/* The strings of a struct cluster before they are packed behind it. */
enum cluster_field {
    F_NAME,
    F_ARN,
    F_EGRESS,
    F_STATUS,
    F_VERSION,
    F_PLATFORM,
    F_CIDRS,
    F_VPC,
    F_TAGS,
    F_CREATED,
    F_RAW,
    F_COUNT
};

struct field_src {
    const char *s;   /* bytes to copy (json strings, created_at text, the body) */
    const json_t *j; /* or a JSON value to dump compactly */
    size_t len;      /* without the NUL */
    int present;
};

static int bool_member(json_t *obj, const char *key, int *out, struct err *err)
{
    json_t *v;
    if (get_member(obj, key, JSON_TRUE, "cluster.resourcesVpcConfig.", &v, err) < 0)
        return -1;
    *out = v ? json_is_true(v) : -1;
    return 0;
}

static int string_field(json_t *obj, const char *key, const char *ctx, struct field_src *f,
                        struct err *err)
{
    json_t *v;
    if (get_member(obj, key, JSON_STRING, ctx, &v, err) < 0)
        return -1;
    if (v) {
        f->s = json_string_value(v);
        f->len = json_string_length(v);
        f->present = 1;
    }
    return 0;
}

static int json_field(json_t *obj, const char *key, json_type want, const char *ctx,
                      struct field_src *f, struct err *err)
{
    json_t *v;
    if (get_member(obj, key, want, ctx, &v, err) < 0)
        return -1;
    if (v) {
        if (want == JSON_ARRAY) {
            for (size_t i = 0; i < json_array_size(v); i++) {
                if (!json_is_string(json_array_get(v, i)))
                    return err_set(err, ERR_PARSE,
                                   "DescribeCluster: %s%s[%zu] is %s, expected "
                                   "a string",
                                   ctx, key, i, json_type_name(json_array_get(v, i)));
            }
        } else if (want == JSON_OBJECT) {
            /* tags are a map of strings: a value of another type would be stored and then
             * never match a tag rule */
            const char *k;
            json_t *item;
            json_object_foreach(v, k, item)
            {
                if (!json_is_string(item))
                    return err_set(err, ERR_PARSE,
                                   "DescribeCluster: %s%s.%.*s is %s, expected a string", ctx, key,
                                   (int)utf8_cut(k, 100), k, json_type_name(item));
            }
        }
        f->j = v;
        f->len = json_dumpb(v, NULL, 0, JSON_COMPACT);
        if (f->len == 0)
            return err_set(err, ERR_PARSE, "DescribeCluster: %s%s cannot be serialized", ctx, key);
        f->present = 1;
    }
    return 0;
}

static int short_text(const struct field_src *f, const char *what, const char *extra,
                      struct err *err)
{
    char q[80];
    if (!f->present)
        return 0;
    int ok = f->len <= EKS_SHORT_MAX && utf8_valid(f->s, f->len);
    for (size_t i = 0; ok && extra && i < f->len; i++) {
        unsigned char c = (unsigned char)f->s[i];
        ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             strchr(extra, c) != NULL;
    }
    if (!ok)
        return err_set(err, ERR_PARSE, "DescribeCluster: %s \"%s\" (%zu bytes) is not valid", what,
                       quoted(f->s, f->len, q, sizeof q), f->len);
    return 0;
}

/* The bounds and formats of what an answer may hold, after the types were checked. */
static int check_fields(const struct field_src *f, struct err *err)
{
    char q[80];
    const struct field_src *n = &f[F_NAME];
    if (!eks_cluster_name_valid(n->s, n->len))
        return err_set(err, ERR_PARSE,
                       "DescribeCluster: cluster.name \"%s\" (%zu bytes) is not an EKS cluster "
                       "name (1-100 characters of A-Z a-z 0-9 - _, starting with a letter or "
                       "digit)",
                       quoted(n->s, n->len, q, sizeof q), n->len);
    if (f[F_ARN].present && (f[F_ARN].len > EKS_ARN_MAX || !utf8_valid(f[F_ARN].s, f[F_ARN].len)))
        return err_set(err, ERR_PARSE, "DescribeCluster: cluster.arn of %zu bytes is not an ARN",
                       f[F_ARN].len);
    if (short_text(&f[F_STATUS], "cluster.status", "_", err) < 0 ||
        short_text(&f[F_VERSION], "cluster.version", ".-", err) < 0 ||
        short_text(&f[F_PLATFORM], "cluster.platformVersion", ".-", err) < 0 ||
        short_text(&f[F_EGRESS], "cluster.resourcesVpcConfig.controlPlaneEgressMode", "_", err) <
            0 ||
        short_text(&f[F_VPC], "cluster.resourcesVpcConfig.vpcId", "-", err) < 0)
        return -1;
    if (f[F_TAGS].present) {
        const json_t *tags = f[F_TAGS].j;
        if (json_object_size(tags) > EKS_TAGS_MAX)
            return err_set(err, ERR_PARSE, "DescribeCluster: %zu tags (AWS allows %d)",
                           json_object_size(tags), EKS_TAGS_MAX);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)tags, k, v)
        {
            size_t kl = strlen(k);
            if (kl == 0 || utf8_chars(k, kl) > EKS_TAG_KEY_MAX ||
                utf8_chars(json_string_value(v), json_string_length(v)) > EKS_TAG_VALUE_MAX)
                return err_set(err, ERR_PARSE,
                               "DescribeCluster: tag \"%s\" is longer than AWS allows (keys "
                               "1-%d, values 0-%d characters)",
                               quoted(k, kl, q, sizeof q), EKS_TAG_KEY_MAX, EKS_TAG_VALUE_MAX);
        }
    }
    if (f[F_CIDRS].present) {
        const json_t *cidrs = f[F_CIDRS].j;
        if (json_array_size(cidrs) > EKS_CIDRS_MAX)
            return err_set(err, ERR_PARSE, "DescribeCluster: %zu publicAccessCidrs (at most %d)",
                           json_array_size(cidrs), EKS_CIDRS_MAX);
        for (size_t i = 0; i < json_array_size(cidrs); i++) {
            json_t *v = json_array_get(cidrs, i);
            const char *c = json_string_value(v);
            size_t cl = json_string_length(v);
            if (cl == 0 || cl > EKS_CIDR_MAX || strspn(c, "0123456789abcdefABCDEF.:/") != cl)
                return err_set(err, ERR_PARSE,
                               "DescribeCluster: publicAccessCidrs[%zu] \"%s\" is not a CIDR", i,
                               quoted(c, cl, q, sizeof q));
        }
    }
    return 0;
}

int eks_check_identity(const struct cluster *c, const char *region, const char *account_id,
                       const char *name, struct err *err)
{
    char q[80], q2[80];
    if (strcmp(c->name, name) != 0)
        return err_set(err, ERR_PARSE,
                       "DescribeCluster: asked for cluster \"%s\", the answer names \"%s\"",
                       quoted(name, strlen(name), q, sizeof q),
                       quoted(c->name, strlen(c->name), q2, sizeof q2));
    if (!c->arn)
        return err_set(err, ERR_PARSE, "DescribeCluster: cluster \"%s\" has no arn",
                       quoted(name, strlen(name), q, sizeof q));
    /* arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME, nothing else: storage keys on the ARN, so
     * an answer naming another account's or region's cluster would overwrite that record */
    const char *partition = endpoint_partition(region);
    char want[EKS_ARN_MAX + 1];
    int ok = 0;
    if (account_id) {
        int w = snprintf(want, sizeof want, "arn:%s:eks:%s:%s:cluster/%s", partition, region,
                         account_id, name);
        ok = w > 0 && (size_t)w < sizeof want && strcmp(c->arn, want) == 0;
    } else {
        int w = snprintf(want, sizeof want, "arn:%s:eks:%s:", partition, region);
        size_t pl = (size_t)w;
        ok = w > 0 && (size_t)w < sizeof want && strncmp(c->arn, want, pl) == 0 &&
             strspn(c->arn + pl, "0123456789") == 12 &&
             strncmp(c->arn + pl + 12, ":cluster/", 9) == 0 && strcmp(c->arn + pl + 21, name) == 0;
        snprintf(want, sizeof want, "arn:%s:eks:%s:<account>:cluster/%s", partition, region, name);
    }
    if (!ok)
        return err_set(err, ERR_PARSE,
                       "DescribeCluster: the answer for cluster \"%s\" has arn \"%s\", expected "
                       "\"%s\"",
                       quoted(name, strlen(name), q, sizeof q),
                       quoted(c->arn, strlen(c->arn), q2, sizeof q2), want);
    return 0;
}

struct cluster *eks_parse_describe_cluster(const char *body, size_t len, struct err *err)
{
    json_t *root = load_object(body, len, "DescribeCluster", err); /* new */
    if (!root)
        return NULL;
    struct cluster *c = NULL;
    struct field_src f[F_COUNT];
    memset(f, 0, sizeof f);
    char created[40];
    int pub = -1, priv = -1;

    json_t *cl = json_object_get(root, "cluster"); /* borrowed */
    if (!json_is_object(cl)) {
        err_set(err, ERR_PARSE, "DescribeCluster: \"cluster\" is %s, expected an object",
                cl ? json_type_name(cl) : "missing");
        goto out;
    }
    if (string_field(cl, "name", "cluster.", &f[F_NAME], err) < 0 ||
        string_field(cl, "arn", "cluster.", &f[F_ARN], err) < 0 ||
        string_field(cl, "status", "cluster.", &f[F_STATUS], err) < 0 ||
        string_field(cl, "version", "cluster.", &f[F_VERSION], err) < 0 ||
        string_field(cl, "platformVersion", "cluster.", &f[F_PLATFORM], err) < 0 ||
        json_field(cl, "tags", JSON_OBJECT, "cluster.", &f[F_TAGS], err) < 0)
        goto out;
    if (!f[F_NAME].present || f[F_NAME].len == 0) {
        err_set(err, ERR_PARSE, "DescribeCluster: the cluster has no name");
        goto out;
    }

    json_t *ts = json_object_get(cl, "createdAt"); /* borrowed */
    if (json_is_number(ts)) {
        if (epoch_to_iso(json_number_value(ts), created, sizeof created) < 0) {
            err_set(err, ERR_PARSE, "DescribeCluster: cluster.createdAt %.3f is out of range",
                    json_number_value(ts));
            goto out;
        }
        f[F_CREATED].s = created;
        f[F_CREATED].len = strlen(created);
        f[F_CREATED].present = 1;
    } else if (string_field(cl, "createdAt", "cluster.", &f[F_CREATED], err) < 0) {
        goto out; /* neither a number nor a string */
    } else if (f[F_CREATED].present) {
        /* parsed here, not by the database: text it refuses (22007) would fail the whole batch */
        time_t t;
        char q[80];
        if (f[F_CREATED].len > 64 || iso8601_parse(f[F_CREATED].s, &t) < 0 ||
            epoch_to_iso((double)t, created, sizeof created) < 0) {
            err_set(err, ERR_PARSE,
                    "DescribeCluster: cluster.createdAt \"%s\" is not an ISO 8601 time",
                    quoted(f[F_CREATED].s, f[F_CREATED].len, q, sizeof q));
            goto out;
        }
        f[F_CREATED].s = created;
        f[F_CREATED].len = strlen(created);
    }

    json_t *vpc;
    if (get_member(cl, "resourcesVpcConfig", JSON_OBJECT, "cluster.", &vpc, err) < 0)
        goto out;
    if (vpc) {
        const char *ctx = "cluster.resourcesVpcConfig.";
        if (string_field(vpc, "controlPlaneEgressMode", ctx, &f[F_EGRESS], err) < 0 ||
            string_field(vpc, "vpcId", ctx, &f[F_VPC], err) < 0 ||
            json_field(vpc, "publicAccessCidrs", JSON_ARRAY, ctx, &f[F_CIDRS], err) < 0 ||
            bool_member(vpc, "endpointPublicAccess", &pub, err) < 0 ||
            bool_member(vpc, "endpointPrivateAccess", &priv, err) < 0)
            goto out;
    }
    if (check_fields(f, err) < 0)
        goto out;
    f[F_RAW].s = body;
    f[F_RAW].len = len;
    f[F_RAW].present = 1;

    size_t total = sizeof *c;
    for (int i = 0; i < F_COUNT; i++)
        total += f[i].present ? f[i].len + 1 : 0;
    c = malloc(total);
    if (!c) {
        err_set(err, ERR_NOMEM, "DescribeCluster: out of memory");
        goto out;
    }
    const char *dst[F_COUNT];
    char *p = (char *)(c + 1);
    for (int i = 0; i < F_COUNT; i++) {
        dst[i] = NULL;
        if (!f[i].present)
            continue;
        if (f[i].j)
            json_dumpb(f[i].j, p, f[i].len, JSON_COMPACT);
        else
            memcpy(p, f[i].s, f[i].len);
        p[f[i].len] = '\0';
        dst[i] = p;
        p += f[i].len + 1;
    }
    c->name = dst[F_NAME];
    c->arn = dst[F_ARN];
    c->egress_mode = dst[F_EGRESS];
    c->status = dst[F_STATUS];
    c->kubernetes_version = dst[F_VERSION];
    c->platform_version = dst[F_PLATFORM];
    c->endpoint_public_access = pub;
    c->endpoint_private_access = priv;
    c->public_access_cidrs_json = dst[F_CIDRS];
    c->vpc_id = dst[F_VPC];
    c->tags_json = dst[F_TAGS];
    c->created_at = dst[F_CREATED];
    c->raw_json = dst[F_RAW];
out:
    json_decref(root);
    return c;
}

/* ---- ListUpdates and DescribeUpdate ---- */

#define EKS_UPDATE_PARAMS_MAX 50
#define EKS_UPDATE_VALUE_MAX 65536 /* a parameter value egressscan does not keep */

int eks_update_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > EKS_UPDATE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '-'))
            return 0;
    }
    return 1;
}

int eks_parse_list_updates(const char *body, size_t len, char ***ids, size_t *n, char **next_token,
                           struct err *err)
{
    static const struct page_kind k = {"ListUpdates", "updateIds", "ids",
                                       "an update id (1-64 characters of A-Z a-z 0-9 -)",
                                       eks_update_id_valid};
    return parse_page(&k, body, len, ids, n, next_token, err);
}

/* A short token of letters, digits and the characters of extra, copied into out (cap bytes). */
static int token_into(json_t *v, const char *what, const char *extra, char *out, size_t cap,
                      struct err *err)
{
    char q[80];
    if (!json_is_string(v))
        return err_set(err, ERR_PARSE, "DescribeUpdate: %s is %s, expected a string", what,
                       v ? json_type_name(v) : "missing");
    const char *s = json_string_value(v);
    size_t l = json_string_length(v);
    int ok = l > 0 && l < cap && l <= EKS_SHORT_MAX;
    for (size_t i = 0; ok && i < l; i++) {
        unsigned char c = (unsigned char)s[i];
        ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c && strchr(extra, c) != NULL);
    }
    if (!ok)
        return err_set(err, ERR_PARSE, "DescribeUpdate: %s \"%s\" (%zu bytes) is not valid", what,
                       quoted(s, l, q, sizeof q), l);
    memcpy(out, s, l + 1);
    return 0;
}

int eks_parse_describe_update(const char *body, size_t len, const char *update_id,
                              struct eks_update *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = load_object(body, len, "DescribeUpdate", err); /* new */
    if (!root)
        return -1;
    int rc = -1;
    char q[80], q2[80];
    json_t *u = json_object_get(root, "update"); /* borrowed */
    if (!json_is_object(u)) {
        err_set(err, ERR_PARSE, "DescribeUpdate: \"update\" is %s, expected an object",
                u ? json_type_name(u) : "missing");
        goto out;
    }
    json_t *id = json_object_get(u, "id"); /* borrowed */
    if (!json_is_string(id) ||
        !eks_update_id_valid(json_string_value(id), json_string_length(id))) {
        err_set(err, ERR_PARSE, "DescribeUpdate: update.id %s is not an update id",
                json_is_string(id)
                    ? quoted(json_string_value(id), json_string_length(id), q, sizeof q)
                    : (id ? json_type_name(id) : "(missing)"));
        goto out;
    }
    /* the answer must be about the update that was asked for */
    if (update_id && strcmp(json_string_value(id), update_id) != 0) {
        err_set(err, ERR_PARSE, "DescribeUpdate: asked for update \"%s\", the answer names \"%s\"",
                quoted(update_id, strlen(update_id), q, sizeof q),
                quoted(json_string_value(id), json_string_length(id), q2, sizeof q2));
        goto out;
    }
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    if (token_into(json_object_get(u, "status"), "update.status", "", out->status,
                   sizeof out->status, err) < 0)
        goto out;
    if (strcmp(out->status, "InProgress") != 0 && strcmp(out->status, "Failed") != 0 &&
        strcmp(out->status, "Cancelled") != 0 && strcmp(out->status, "Successful") != 0) {
        err_set(err, ERR_PARSE,
                "DescribeUpdate: update.status \"%s\" is not InProgress, Failed, Cancelled or "
                "Successful",
                out->status);
        goto out;
    }
    if (token_into(json_object_get(u, "type"), "update.type", "", out->type, sizeof out->type,
                   err) < 0)
        goto out;

    json_t *ts = json_object_get(u, "createdAt"); /* borrowed */
    if (json_is_number(ts)) {
        char iso[40];
        double v = json_number_value(ts);
        if (epoch_to_iso(v, iso, sizeof iso) < 0) {
            err_set(err, ERR_PARSE, "DescribeUpdate: update.createdAt %.3f is out of range", v);
            goto out;
        }
        out->created_at = v;
    } else if (json_is_string(ts)) {
        time_t t;
        char iso[40];
        const char *v = json_string_value(ts);
        if (json_string_length(ts) > 64 || iso8601_parse(v, &t) < 0 ||
            epoch_to_iso((double)t, iso, sizeof iso) < 0) {
            err_set(err, ERR_PARSE, "DescribeUpdate: update.createdAt \"%s\" is not a time",
                    quoted(v, json_string_length(ts), q, sizeof q));
            goto out;
        }
        out->created_at = (double)t;
    } else if (ts && !json_is_null(ts)) {
        err_set(err, ERR_PARSE, "DescribeUpdate: update.createdAt is %s, expected a time",
                json_type_name(ts));
        goto out;
    }

    json_t *params = json_object_get(u, "params"); /* borrowed */
    if (params && !json_is_null(params)) {
        if (!json_is_array(params)) {
            err_set(err, ERR_PARSE, "DescribeUpdate: update.params is %s, expected an array",
                    json_type_name(params));
            goto out;
        }
        if (json_array_size(params) > EKS_UPDATE_PARAMS_MAX) {
            err_set(err, ERR_PARSE, "DescribeUpdate: %zu update.params (at most %d)",
                    json_array_size(params), EKS_UPDATE_PARAMS_MAX);
            goto out;
        }
        size_t i;
        json_t *pm;
        json_array_foreach(params, i, pm)
        {
            char what[48], type[65];
            snprintf(what, sizeof what, "update.params[%zu].type", i);
            if (!json_is_object(pm)) {
                err_set(err, ERR_PARSE,
                        "DescribeUpdate: update.params[%zu] is %s, expected an "
                        "object",
                        i, json_type_name(pm));
                goto out;
            }
            if (token_into(json_object_get(pm, "type"), what, "", type, sizeof type, err) < 0)
                goto out;
            json_t *value = json_object_get(pm, "value"); /* borrowed */
            snprintf(what, sizeof what, "update.params[%zu].value", i);
            if (strcmp(type, EKS_EGRESS_UPDATE_PARAM) == 0) {
                if (token_into(value, what, "_", out->egress_mode, sizeof out->egress_mode, err) <
                    0)
                    goto out;
            } else if (value && !json_is_null(value) &&
                       (!json_is_string(value) ||
                        json_string_length(value) > EKS_UPDATE_VALUE_MAX ||
                        !utf8_valid(json_string_value(value), json_string_length(value)))) {
                err_set(err, ERR_PARSE,
                        "DescribeUpdate: %s is not a string of valid UTF-8 (at "
                        "most %d bytes)",
                        what, EKS_UPDATE_VALUE_MAX);
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (rc < 0)
        memset(out, 0, sizeof *out);
    json_decref(root);
    return rc;
}

/* ---- requests ---- */

struct eks_call {
    union {
        eks_list_fn list;
        eks_describe_fn describe;
        eks_list_updates_fn list_updates;
        eks_describe_update_fn describe_update;
    } done;
    void *ud;
    /* DescribeCluster: what was asked, which the answer must match */
    char region[32];
    char account_id[16]; /* empty: any account */
    char name[EKS_NAME_MAX + 1];
    char update_id[EKS_UPDATE_ID_MAX + 1]; /* DescribeUpdate */
};

/* A parse failure keeps the HTTP status and request id of the answer it came from. */
static void parse_error_init(struct err *e, const struct aws_response *resp)
{
    err_clear(e);
    e->http_status = resp->status;
    memcpy(e->request_id, resp->err.request_id, sizeof e->request_id);
}

static void list_done(void *ud, const struct aws_response *resp)
{
    struct eks_call call = *(struct eks_call *)ud;
    free(ud);
    if (err_isset(&resp->err)) {
        call.done.list(call.ud, NULL, &resp->err);
        return;
    }
    struct err e;
    parse_error_init(&e, resp);
    char **names;
    size_t n;
    char *token;
    if (eks_parse_list_clusters(resp->body, resp->body_len, &names, &n, &token, &e) < 0) {
        call.done.list(call.ud, NULL, &e);
        return;
    }
    struct eks_cluster_page page = {(const char *const *)names, n, token};
    call.done.list(call.ud, &page, NULL);
    free(names);
}

static void describe_done(void *ud, const struct aws_response *resp)
{
    struct eks_call call = *(struct eks_call *)ud;
    free(ud);
    if (err_isset(&resp->err)) {
        call.done.describe(call.ud, NULL, &resp->err);
        return;
    }
    struct err e;
    parse_error_init(&e, resp);
    struct cluster *c = eks_parse_describe_cluster(resp->body, resp->body_len, &e);
    if (c && eks_check_identity(c, call.region, call.account_id[0] ? call.account_id : NULL,
                                call.name, &e) < 0) {
        free(c);
        c = NULL;
    }
    if (!c) {
        call.done.describe(call.ud, NULL, &e);
        return;
    }
    call.done.describe(call.ud, c, NULL); /* the callback owns c */
}

static int submit_get(struct http_engine *engine, struct aws_credentials *creds,
                      const struct endpoint *ep, const char *url, const char *pace_key,
                      http_done_fn done, struct eks_call *call, struct err *err)
{
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_REST_JSON;
    req.method = "GET";
    req.url = url;
    req.service = "eks";
    req.region = ep->signing_region;
    req.creds = creds;
    req.pace_key = pace_key;
    req.allow_http = ep->is_override;
    struct eks_call *heap = malloc(sizeof *heap);
    if (!heap)
        return err_set(err, ERR_NOMEM, "EKS: out of memory");
    *heap = *call;
    if (http_submit(engine, &req, done, heap, err) < 0) {
        free(heap);
        return -1;
    }
    return 0;
}

int eks_list_clusters_submit(struct http_engine *engine, struct aws_credentials *creds,
                             const char *region, const char *next_token, int max_results,
                             const char *pace_key, eks_list_fn done, void *ud, struct err *err)
{
    if (!engine || !done)
        return err_set(err, ERR_INVALID, "eks_list_clusters_submit: no engine or callback");
    if (max_results < 0 || max_results > 100)
        return err_set(err, ERR_INVALID, "ListClusters: maxResults %d is not in 1..100",
                       max_results);
    struct endpoint ep;
    if (endpoint_resolve("eks", region, &ep, err) < 0)
        return -1;
    size_t tok_len = next_token ? strlen(next_token) : 0;
    char stack[2048];
    size_t cap = strlen(ep.url) + 64 + 3 * tok_len;
    char *url = cap <= sizeof stack ? stack : malloc(cap);
    if (!url)
        return err_set(err, ERR_NOMEM, "ListClusters: out of memory");
    size_t off = (size_t)snprintf(url, cap, "%s/clusters?maxResults=%d", ep.url,
                                  max_results ? max_results : 100);
    if (tok_len) {
        memcpy(url + off, "&nextToken=", 11);
        off += 11;
        /* cannot fail: cap leaves 3 bytes per token byte */
        sigv4_uri_encode(next_token, tok_len, 0, url + off, cap - off);
    }
    struct eks_call call = {.done.list = done, .ud = ud};
    int rc = submit_get(engine, creds, &ep, url, pace_key, list_done, &call, err);
    if (url != stack)
        free(url);
    return rc;
}

int eks_describe_cluster_submit(struct http_engine *engine, struct aws_credentials *creds,
                                const char *region, const char *name, const char *account_id,
                                eks_describe_fn done, void *ud, struct err *err)
{
    const char *pace_key = account_id;
    if (!engine || !done)
        return err_set(err, ERR_INVALID, "eks_describe_cluster_submit: no engine or callback");
    if (account_id && !account_id_valid(account_id))
        return err_set(err, ERR_INVALID, "DescribeCluster: invalid account id");
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len > EKS_NAME_MAX)
        return err_set(err, ERR_INVALID, "DescribeCluster: invalid cluster name length %zu",
                       name_len);
    struct endpoint ep;
    if (endpoint_resolve("eks", region, &ep, err) < 0)
        return -1;
    char url[sizeof ep.url + 16 + 3 * EKS_NAME_MAX];
    size_t off = (size_t)snprintf(url, sizeof url, "%s/clusters/", ep.url);
    sigv4_uri_encode(name, name_len, 0, url + off, sizeof url - off);
    struct eks_call call = {.done.describe = done, .ud = ud};
    snprintf(call.region, sizeof call.region, "%s", region);
    snprintf(call.name, sizeof call.name, "%s", name);
    if (account_id)
        snprintf(call.account_id, sizeof call.account_id, "%s", account_id);
    return submit_get(engine, creds, &ep, url, pace_key, describe_done, &call, err);
}

static void list_updates_done(void *ud, const struct aws_response *resp)
{
    struct eks_call *call = ud;
    if (err_isset(&resp->err)) {
        call->done.list_updates(call->ud, NULL, &resp->err);
        free(call);
        return;
    }
    struct err e;
    parse_error_init(&e, resp);
    char **ids;
    size_t n;
    char *token;
    if (eks_parse_list_updates(resp->body, resp->body_len, &ids, &n, &token, &e) < 0) {
        call->done.list_updates(call->ud, NULL, &e);
        free(call);
        return;
    }
    struct eks_update_page page = {(const char *const *)ids, n, token};
    call->done.list_updates(call->ud, &page, NULL);
    free(ids);
    free(call);
}

static void describe_update_done(void *ud, const struct aws_response *resp)
{
    struct eks_call *call = ud;
    if (err_isset(&resp->err)) {
        call->done.describe_update(call->ud, NULL, &resp->err);
        free(call);
        return;
    }
    struct err e;
    parse_error_init(&e, resp);
    struct eks_update u;
    if (eks_parse_describe_update(resp->body, resp->body_len, call->update_id, &u, &e) < 0)
        call->done.describe_update(call->ud, NULL, &e);
    else
        call->done.describe_update(call->ud, &u, NULL);
    free(call);
}

/* The URL of a cluster's updates: ENDPOINT/clusters/NAME/updates[/ID]; -1 with err when the
 * name or id cannot be in one. */
static int updates_url(const struct endpoint *ep, const char *what, const char *name,
                       const char *update_id, char *url, size_t cap, struct err *err)
{
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len > EKS_NAME_MAX)
        return err_set(err, ERR_INVALID, "%s: invalid cluster name length %zu", what, name_len);
    size_t off = (size_t)snprintf(url, cap, "%s/clusters/", ep->url);
    long w = sigv4_uri_encode(name, name_len, 0, url + off, cap - off);
    if (w < 0)
        return err_set(err, ERR_INVALID, "%s: the cluster name does not fit a URL", what);
    off += (size_t)w;
    off += (size_t)snprintf(url + off, cap - off, "/updates");
    if (update_id)
        snprintf(url + off, cap - off, "/%s", update_id); /* [A-Za-z0-9-]: nothing to encode */
    return 0;
}

int eks_list_updates_submit(struct http_engine *engine, struct aws_credentials *creds,
                            const char *region, const char *name, const char *account_id,
                            const char *next_token, int max_results, eks_list_updates_fn done,
                            void *ud, struct err *err)
{
    if (!engine || !done)
        return err_set(err, ERR_INVALID, "eks_list_updates_submit: no engine or callback");
    if (max_results < 0 || max_results > 100)
        return err_set(err, ERR_INVALID, "ListUpdates: maxResults %d is not in 1..100",
                       max_results);
    size_t tok_len = next_token ? strlen(next_token) : 0;
    if (tok_len > EKS_TOKEN_MAX)
        return err_set(err, ERR_INVALID, "ListUpdates: nextToken of %zu bytes", tok_len);
    struct endpoint ep;
    if (endpoint_resolve("eks", region, &ep, err) < 0)
        return -1;
    size_t cap = sizeof ep.url + 64 + 3 * EKS_NAME_MAX + 3 * tok_len;
    char *url = malloc(cap);
    if (!url)
        return err_set(err, ERR_NOMEM, "ListUpdates: out of memory");
    int rc = -1;
    if (updates_url(&ep, "ListUpdates", name, NULL, url, cap, err) < 0)
        goto out;
    size_t off = strlen(url);
    off +=
        (size_t)snprintf(url + off, cap - off, "?maxResults=%d", max_results ? max_results : 100);
    if (tok_len) {
        memcpy(url + off, "&nextToken=", 12);
        off += 11;
        sigv4_uri_encode(next_token, tok_len, 0, url + off, cap - off);
    }
    struct eks_call call = {.done.list_updates = done, .ud = ud};
    rc = submit_get(engine, creds, &ep, url, account_id, list_updates_done, &call, err);
out:
    free(url);
    return rc;
}

int eks_describe_update_submit(struct http_engine *engine, struct aws_credentials *creds,
                               const char *region, const char *name, const char *update_id,
                               const char *account_id, eks_describe_update_fn done, void *ud,
                               struct err *err)
{
    if (!engine || !done)
        return err_set(err, ERR_INVALID, "eks_describe_update_submit: no engine or callback");
    if (!update_id || !eks_update_id_valid(update_id, strlen(update_id)))
        return err_set(err, ERR_INVALID, "DescribeUpdate: invalid update id");
    struct endpoint ep;
    if (endpoint_resolve("eks", region, &ep, err) < 0)
        return -1;
    char url[sizeof ep.url + 96 + 3 * EKS_NAME_MAX + EKS_UPDATE_ID_MAX];
    if (updates_url(&ep, "DescribeUpdate", name, update_id, url, sizeof url, err) < 0)
        return -1;
    struct eks_call call = {.done.describe_update = done, .ud = ud};
    snprintf(call.update_id, sizeof call.update_id, "%s", update_id);
    return submit_get(engine, creds, &ep, url, account_id, describe_update_done, &call, err);
}
