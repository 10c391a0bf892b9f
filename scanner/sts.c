/* sts.c - STS AssumeRole (signed) and AssumeRoleWithWebIdentity (unsigned) over the awsQuery
 * protocol: form-encoded POSTs to the regional endpoint, XML answers parsed with libxml2 (no
 * network, no entities). sts_cache keeps assumed-role credentials per role with single flight. */
#include "scanner/sts.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/isotime.h"
#include "common/log.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/xmldoc.h"

#define STS_VERSION "2011-06-15"
#define STS_DEFAULT_SESSION "egressscan"
#define STS_DEFAULT_REGION "us-east-1"

/* ---- requests ---- */

/* One STS request being built: the engine copies all of it at submit time. */
struct sts_call {
    struct endpoint ep;
    char url[sizeof(((struct endpoint *)0)->url) + 2];
    struct buf body; /* may hold a web identity token: wiped */
    struct sigv4_header hdr[1];
    struct aws_request req;
};

/* Appends "&name=" and the form-encoded value. The buffer is sized by the caller beforehand so
 * that no secret is left behind in a realloc'd block. */
static int form_add(struct buf *b, const char *name, const char *value)
{
    size_t len = strlen(value);
    if (buf_printf(b, "&%s=", name) < 0 || buf_reserve(b, 3 * len) < 0)
        return -1;
    long n = sigv4_uri_encode(value, len, 0, b->data + b->len, b->cap - b->len);
    if (n < 0)
        return -1;
    b->len += (size_t)n;
    return 0;
}

static void sts_call_cleanup(struct sts_call *c)
{
    if (c->body.data)
        OPENSSL_cleanse(c->body.data, c->body.cap);
    buf_cleanup(&c->body);
}

/* Builds an AssumeRole (creds != NULL: signed) or AssumeRoleWithWebIdentity (token != NULL). */
static int sts_call_init(struct sts_call *c, const char *action, const char *role_arn,
                         const char *session_name, const char *external_id, int duration_s,
                         const char *token, const char *region, struct aws_credentials *creds,
                         const char *pace_key, struct err *err)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->body);
    if (!role_arn || !*role_arn)
        return err_set(err, ERR_INVALID, "%s: a role ARN is required", action);
    if (duration_s < 0)
        return err_set(err, ERR_INVALID, "%s %s: negative duration", action, role_arn);
    if (!session_name || !*session_name)
        session_name = STS_DEFAULT_SESSION;
    if (!region || !*region)
        region = STS_DEFAULT_REGION;
    if (endpoint_resolve("sts", region, &c->ep, err) < 0) {
        err_prefix(err, "%s %s: ", action, role_arn);
        return -1;
    }
    snprintf(c->url, sizeof c->url, "%s/", c->ep.url);

    size_t need = 128 + 3 * (strlen(role_arn) + strlen(session_name) +
                             (external_id ? strlen(external_id) : 0) + (token ? strlen(token) : 0));
    if (buf_reserve(&c->body, need) < 0 ||
        buf_printf(&c->body, "Action=%s&Version=%s", action, STS_VERSION) < 0 ||
        form_add(&c->body, "RoleArn", role_arn) < 0 ||
        form_add(&c->body, "RoleSessionName", session_name) < 0 ||
        (external_id && *external_id && form_add(&c->body, "ExternalId", external_id) < 0) ||
        (duration_s > 0 && buf_printf(&c->body, "&DurationSeconds=%d", duration_s) < 0) ||
        (token && form_add(&c->body, "WebIdentityToken", token) < 0)) {
        sts_call_cleanup(c);
        return err_set(err, ERR_NOMEM, "%s %s: out of memory", action, role_arn);
    }

    c->hdr[0].name = "Content-Type";
    c->hdr[0].value = "application/x-www-form-urlencoded; charset=utf-8";
    c->req.protocol = AWS_PROTO_QUERY;
    c->req.method = "POST";
    c->req.url = c->url;
    c->req.service = creds ? "sts" : NULL;
    c->req.region = c->ep.signing_region[0] ? c->ep.signing_region : region;
    c->req.creds = creds;
    c->req.headers = c->hdr;
    c->req.n_headers = 1;
    c->req.body = c->body.data;
    c->req.body_len = c->body.len;
    c->req.pace_key = pace_key;
    c->req.allow_http = c->ep.is_override && strncmp(c->url, "http://", 7) == 0;
    return 0;
}

/* "assume-role:ACCOUNT" from arn:aws:iam::ACCOUNT:role/NAME (the whole ARN would not fit). */
static void role_source(const char *role_arn, char *out, size_t cap)
{
    const char *p = role_arn;
    for (int i = 0; i < 4 && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    size_t n = p ? strcspn(p, ":") : 0;
    if (n == 0 || n > 32)
        snprintf(out, cap, "assume-role");
    else
        snprintf(out, cap, "assume-role:%.*s", (int)n, p);
}

struct sts_pending {
    sts_creds_fn done;
    void *ud;
    char source[48];
    char role_arn[]; /* for error messages */
};

static void assume_role_done(void *ud, const struct aws_response *resp)
{
    struct sts_pending *p = ud;
    struct err e;
    err_clear(&e);
    struct aws_credentials *c = NULL;
    if (err_isset(&resp->err)) {
        e = resp->err;
        err_prefix(&e, "AssumeRole %s: ", p->role_arn);
    } else {
        c = sts_parse_credentials(resp->body, resp->body_len, p->source, &e);
        if (!c)
            err_prefix(&e, "AssumeRole %s: ", p->role_arn);
        else
            log_debug("sts", "assumed %s (key %.4s...)", p->role_arn, c->access_key_id);
    }
    p->done(p->ud, c, c ? NULL : &e);
    free(p);
}

int sts_assume_role_submit(struct http_engine *engine, struct aws_credentials *base,
                           const struct sts_assume_role_params *p, sts_creds_fn done, void *ud,
                           struct err *err)
{
    if (!base)
        return err_set(err, ERR_NO_CREDS, "AssumeRole %s: no base credentials",
                       p && p->role_arn ? p->role_arn : "");
    if (!p || !done)
        return err_set(err, ERR_INVALID, "AssumeRole: missing parameters");
    struct sts_call call;
    if (sts_call_init(&call, "AssumeRole", p->role_arn, p->session_name, p->external_id,
                      p->duration_s, NULL, p->region, base, p->pace_key, err) < 0)
        return -1;
    size_t alen = strlen(p->role_arn);
    struct sts_pending *pend = malloc(sizeof *pend + alen + 1);
    if (!pend) {
        sts_call_cleanup(&call);
        return err_set(err, ERR_NOMEM, "AssumeRole %s: out of memory", p->role_arn);
    }
    pend->done = done;
    pend->ud = ud;
    role_source(p->role_arn, pend->source, sizeof pend->source);
    memcpy(pend->role_arn, p->role_arn, alen + 1);
    int rc = http_submit(engine, &call.req, assume_role_done, pend, err);
    sts_call_cleanup(&call);
    if (rc < 0) {
        err_prefix(err, "AssumeRole %s: ", p->role_arn);
        free(pend);
        return -1;
    }
    return 0;
}

/* Runs a built call to completion and parses the answer. */
static struct aws_credentials *sts_call_perform(struct http_engine *engine, struct sts_call *call,
                                                const char *action, const char *role_arn,
                                                const char *source, struct err *err)
{
    struct buf body;
    buf_init(&body);
    long status = 0;
    struct aws_credentials *c = NULL;
    if (http_perform(engine, &call->req, &body, &status, err) < 0) {
        err_prefix(err, "%s %s: ", action, role_arn);
    } else {
        c = sts_parse_credentials(body.data ? body.data : "", body.len, source, err);
        if (!c)
            err_prefix(err, "%s %s: ", action, role_arn);
    }
    if (body.data)
        OPENSSL_cleanse(body.data, body.cap);
    buf_cleanup(&body);
    sts_call_cleanup(call);
    return c;
}

struct aws_credentials *sts_assume_role(struct http_engine *engine, struct aws_credentials *base,
                                        const struct sts_assume_role_params *p, struct err *err)
{
    if (!p) {
        err_set(err, ERR_INVALID, "AssumeRole: missing parameters");
        return NULL;
    }
    if (!base) {
        err_set(err, ERR_NO_CREDS, "AssumeRole %s: no base credentials",
                p->role_arn ? p->role_arn : "");
        return NULL;
    }
    struct sts_call call;
    if (sts_call_init(&call, "AssumeRole", p->role_arn, p->session_name, p->external_id,
                      p->duration_s, NULL, p->region, base, p->pace_key, err) < 0)
        return NULL;
    char source[48];
    role_source(p->role_arn, source, sizeof source);
    return sts_call_perform(engine, &call, "AssumeRole", p->role_arn, source, err);
}

struct aws_credentials *sts_assume_role_with_web_identity(struct http_engine *engine,
                                                          const char *role_arn,
                                                          const char *session_name,
                                                          const char *token, const char *region,
                                                          struct err *err)
{
    if (!token || !*token) {
        err_set(err, ERR_INVALID, "AssumeRoleWithWebIdentity %s: no token",
                role_arn ? role_arn : "");
        return NULL;
    }
    struct sts_call call;
    if (sts_call_init(&call, "AssumeRoleWithWebIdentity", role_arn, session_name, NULL, 0, token,
                      region, NULL, NULL, err) < 0)
        return NULL;
    return sts_call_perform(engine, &call, "AssumeRoleWithWebIdentity", role_arn, "web-identity",
                            err);
}

/* ---- answers ---- */

static int local_name_is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNode *child_element(const xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent->children; n; n = n->next)
        if (local_name_is(n, name))
            return n;
    return NULL;
}

/* Overwrites the text held by n's subtree (secrets) before the document is freed. Strings owned
 * by a parser dictionary are shared and left alone (the parser runs with XML_PARSE_NODICT). */
static void cleanse_subtree(xmlDoc *doc, xmlNode *n)
{
    for (; n; n = n->next) {
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content &&
            !(doc->dict && xmlDictOwns(doc->dict, n->content)))
            OPENSSL_cleanse(n->content, (size_t)xmlStrlen(n->content));
        if (n->type == XML_ELEMENT_NODE)
            cleanse_subtree(doc, n->children);
    }
}

/* The trimmed text of child `name` of parent, malloc'd by libxml2 (free with text_free); NULL
 * when there is none. A child holding elements sets *nested: its text would be pieced together
 * from theirs, which is no credential AWS sent. */
static xmlChar *child_text(const xmlNode *parent, const char *name, const char **nested)
{
    xmlNode *n = child_element(parent, name);
    if (!n)
        return NULL;
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
            c->type != XML_COMMENT_NODE && !*nested)
            *nested = name;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return NULL;
    size_t len = (size_t)xmlStrlen(t);
    size_t a = 0;
    while (a < len && isspace(t[a]))
        a++;
    while (len > a && isspace(t[len - 1]))
        len--;
    memmove(t, t + a, len - a);
    t[len - a] = '\0';
    return t;
}

static void text_free(xmlChar *t)
{
    if (!t)
        return;
    OPENSSL_cleanse(t, (size_t)xmlStrlen(t));
    xmlFree(t);
}

struct aws_credentials *sts_parse_credentials(const char *xml, size_t len, const char *source,
                                              struct err *err)
{
    if (!xml || len == 0 || len > INT_MAX) {
        err_set(err, ERR_PARSE, "STS answer is empty or too large");
        return NULL;
    }
    xmlDoc *doc = xmldoc_read(xml, len, XML_PARSE_NODICT | XML_PARSE_NOBLANKS);
    if (!doc) {
        err_set(err, ERR_PARSE, "STS answer is not well-formed XML");
        return NULL;
    }
    struct aws_credentials *c = NULL;
    xmlChar *akid = NULL, *secret = NULL, *token = NULL, *exp = NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *result = NULL, *cn = NULL;
    if (doc->intSubset || doc->extSubset) {
        err_set(err, ERR_PARSE, "STS answer carries a DTD");
        goto out;
    }
    if (root)
        result = child_element(root, "AssumeRoleResult");
    if (root && !result)
        result = child_element(root, "AssumeRoleWithWebIdentityResult");
    if (!result) {
        err_set(err, ERR_PARSE, "STS answer has no AssumeRoleResult");
        goto out;
    }
    cn = child_element(result, "Credentials");
    if (!cn) {
        err_set(err, ERR_PARSE, "STS answer has no Credentials");
        goto out;
    }
    const char *nested = NULL;
    akid = child_text(cn, "AccessKeyId", &nested);
    secret = child_text(cn, "SecretAccessKey", &nested);
    token = child_text(cn, "SessionToken", &nested);
    exp = child_text(cn, "Expiration", &nested);
    if (nested) {
        err_set(err, ERR_PARSE, "STS answer: Credentials/%s holds elements, expected text", nested);
        goto out;
    }
    const char *missing = !akid || !*akid       ? "AccessKeyId"
                          : !secret || !*secret ? "SecretAccessKey"
                          : !token || !*token   ? "SessionToken"
                          : !exp || !*exp       ? "Expiration"
                                                : NULL;
    if (missing) {
        err_set(err, ERR_PARSE, "STS answer lacks Credentials/%s", missing);
        goto out;
    }
    time_t expiration;
    if (iso8601_parse((const char *)exp, &expiration) < 0) {
        err_set(err, ERR_PARSE, "STS answer: Expiration '%.40s' is not an ISO 8601 time",
                (const char *)exp);
        goto out;
    }
    if (creds_check_values((const char *)akid, (const char *)secret, (const char *)token,
                           "STS answer", err) < 0)
        goto out;
    c = creds_new((const char *)akid, (const char *)secret, (const char *)token, expiration,
                  source);
    if (!c)
        err_set(err, ERR_NOMEM, "STS answer: out of memory");
out:
    text_free(akid);
    text_free(secret);
    text_free(token);
    text_free(exp);
    if (cn)
        cleanse_subtree(doc, cn->children);
    xmlFreeDoc(doc);
    return c;
}

/* ---- GetCallerIdentity ---- */

int sts_parse_caller_identity(const char *xml, size_t len, char *account, struct err *err)
{
    account[0] = '\0';
    if (!xml || len == 0 || len > INT_MAX)
        return err_set(err, ERR_PARSE, "GetCallerIdentity answer is empty or too large");
    xmlDoc *doc = xmldoc_read(xml, len, XML_PARSE_NODICT | XML_PARSE_NOBLANKS);
    if (!doc)
        return err_set(err, ERR_PARSE, "GetCallerIdentity answer is not well-formed XML");
    int rc = -1;
    xmlChar *acct = NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *result = root && !doc->intSubset && !doc->extSubset
                          ? child_element(root, "GetCallerIdentityResult")
                          : NULL;
    const char *nested = NULL;
    if (result)
        acct = child_text(result, "Account", &nested);
    if (!acct || nested || xmlStrlen(acct) != 12 ||
        strspn((const char *)acct, "0123456789") != 12) {
        err_set(err, ERR_PARSE, "GetCallerIdentity answer has no 12-digit Account");
        goto out;
    }
    memcpy(account, acct, 13);
    rc = 0;
out:
    xmlFree(acct);
    xmlFreeDoc(doc);
    return rc;
}

int sts_get_caller_identity(struct http_engine *engine, struct aws_credentials *creds,
                            const char *region, char *account, struct err *err)
{
    account[0] = '\0';
    if (!creds)
        return err_set(err, ERR_NO_CREDS, "GetCallerIdentity: no credentials");
    struct endpoint ep;
    if (endpoint_resolve("sts", region && *region ? region : STS_DEFAULT_REGION, &ep, err) < 0) {
        err_prefix(err, "GetCallerIdentity: ");
        return -1;
    }
    char url[sizeof ep.url + 2];
    snprintf(url, sizeof url, "%s/", ep.url);
    static const char body[] = "Action=GetCallerIdentity&Version=" STS_VERSION;
    static const struct sigv4_header hdr[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_QUERY;
    req.method = "POST";
    req.url = url;
    req.service = "sts";
    req.region = ep.signing_region;
    req.creds = creds;
    req.headers = hdr;
    req.n_headers = 1;
    req.body = body;
    req.body_len = sizeof body - 1;
    req.allow_http = ep.is_override && strncmp(url, "http://", 7) == 0;
    struct buf answer;
    buf_init(&answer);
    long status = 0;
    int rc = -1;
    if (http_perform(engine, &req, &answer, &status, err) < 0)
        err_prefix(err, "GetCallerIdentity: ");
    else if ((rc = sts_parse_caller_identity(answer.data ? answer.data : "", answer.len, account,
                                             err)) < 0)
        err_prefix(err, "GetCallerIdentity: ");
    buf_cleanup(&answer);
    return rc;
}

/* ---- per-role cache ---- */

struct sts_waiter {
    sts_creds_fn done;
    void *ud;
    struct sts_waiter *next;
};

struct sts_flight;

struct sts_entry {
    struct sts_entry *next; /* hash chain */
    struct aws_credentials *creds;
    int window_s;              /* refresh this long before creds expire */
    struct sts_flight *flight; /* non-NULL while an AssumeRole is in flight */
    uint64_t hash;
    char role_arn[];
};

/* One AssumeRole in flight and who waits for it. It outlives a forgotten entry or a freed cache
 * (the engine still holds it as ud) and frees itself when the request completes. */
struct sts_flight {
    struct sts_cache *cache; /* NULL once the cache was freed */
    struct sts_entry *entry; /* NULL once the entry was forgotten */
    struct sts_waiter *head, **tail;
};

struct sts_cache {
    struct http_engine *engine;
    struct creds_chain *chain;
    struct sts_entry **buckets;
    size_t n_buckets; /* power of two */
    size_t count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct sts_cache *sts_cache_new(struct http_engine *engine, struct creds_chain *chain,
                                struct err *err)
{
    struct sts_cache *c = calloc(1, sizeof *c);
    if (c) {
        c->n_buckets = 64;
        c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    }
    if (!c || !c->buckets) {
        free(c);
        err_set(err, ERR_NOMEM, "STS cache: out of memory");
        return NULL;
    }
    c->engine = engine;
    c->chain = chain;
    return c;
}

static struct sts_entry **entry_slot(struct sts_cache *c, const char *role_arn, uint64_t h)
{
    struct sts_entry **pp = &c->buckets[h & (c->n_buckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->role_arn, role_arn) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void cache_grow(struct sts_cache *c)
{
    size_t n = c->n_buckets * 2;
    struct sts_entry **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct sts_entry *e = c->buckets[i];
        while (e) {
            struct sts_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
}

/* Unlinks and frees an entry; an in-flight AssumeRole carries on for its waiters. */
static void entry_remove(struct sts_cache *c, struct sts_entry *e)
{
    struct sts_entry **pp = entry_slot(c, e->role_arn, e->hash);
    if (*pp == e) {
        *pp = e->next;
        c->count--;
    }
    if (e->flight)
        e->flight->entry = NULL;
    creds_unref(e->creds);
    free(e);
}

/* How long before expiry credentials that live lifetime_s seconds are refreshed: the usual
 * window, but at most half their life, so that short-lived credentials (STS allows 15 minutes,
 * test fakes far less) are not refreshed again on every use; and at least a second, as times
 * are whole seconds: credentials handed out have at least a second left. */
static int refresh_window(long lifetime_s)
{
    if (lifetime_s >= 2L * CREDS_REFRESH_WINDOW_S)
        return CREDS_REFRESH_WINDOW_S;
    return lifetime_s >= 4 ? (int)(lifetime_s / 2) : 1;
}

static int entry_fresh(const struct sts_entry *e, time_t now)
{
    return e->creds && !creds_expiring(e->creds, now, e->window_s);
}

static void flight_done(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct sts_flight *f = ud;
    struct sts_waiter *w = f->head;
    struct sts_entry *entry = f->entry;
    if (entry) {
        entry->flight = NULL;
        if (creds) {
            creds_unref(entry->creds);
            entry->creds = creds_ref(creds);
            entry->window_s =
                creds->expiration ? refresh_window((long)(creds->expiration - time(NULL))) : 0;
        } else if (!entry->creds || entry->creds->expiration <= time(NULL)) {
            entry_remove(f->cache, entry); /* failures are not cached */
        }
    }
    free(f);
    /* Waiters run last: they may get or forget this very role. */
    while (w) {
        struct sts_waiter *next = w->next;
        w->done(w->ud, creds ? creds_ref(creds) : NULL, creds ? NULL : e);
        free(w);
        w = next;
    }
    creds_unref(creds);
}

/* Credentials of two objects are the same when their key is: a refresh gives a new key. */
static int same_creds(const struct aws_credentials *a, const struct aws_credentials *b)
{
    /* the session token too: a key id may be issued again with a new token */
    return a == b || (a && b && strcmp(a->access_key_id, b->access_key_id) == 0 &&
                      (a->session_token == b->session_token ||
                       (a->session_token && b->session_token &&
                        strcmp(a->session_token, b->session_token) == 0)));
}

/* sts_cache_get, sts_cache_refresh (stale: refused by AWS, never handed out again) and the
 * background refresh of sts_cache_current (done NULL: nobody waits). */
static int cache_get(struct sts_cache *c, const struct sts_assume_role_params *p,
                     const struct aws_credentials *stale, sts_creds_fn done, void *ud,
                     struct err *err)
{
    if (!p || !p->role_arn || !*p->role_arn)
        return err_set(err, ERR_INVALID, "STS cache: a role ARN is required");
    uint64_t h = hash_str(p->role_arn);
    struct sts_entry **slot = entry_slot(c, p->role_arn, h);
    struct sts_entry *e = *slot;
    if (e && entry_fresh(e, time(NULL)) && !same_creds(e->creds, stale)) {
        if (done)
            done(ud, creds_ref(e->creds), NULL);
        return 0;
    }
    struct sts_waiter *w = NULL;
    if (done) {
        w = malloc(sizeof *w);
        if (!w)
            return err_set(err, ERR_NOMEM, "STS cache: out of memory");
        w->done = done;
        w->ud = ud;
        w->next = NULL;
    }
    if (e && e->flight) { /* single flight: join the AssumeRole under way */
        if (w) {
            *e->flight->tail = w;
            e->flight->tail = &w->next;
        }
        return 0;
    }

    int created = 0;
    struct sts_flight *f = calloc(1, sizeof *f);
    if (!f)
        goto nomem;
    if (!e) {
        size_t alen = strlen(p->role_arn);
        e = calloc(1, sizeof *e + alen + 1);
        if (!e)
            goto nomem;
        e->hash = h;
        memcpy(e->role_arn, p->role_arn, alen + 1);
        e->next = *slot;
        *slot = e;
        c->count++;
        created = 1;
    }
    /* Base credentials as they are now (the chain refreshes its own). */
    struct aws_credentials *base = creds_chain_get(c->chain, err);
    if (!base) {
        err_prefix(err, "AssumeRole %s: base credentials: ", p->role_arn);
        goto fail;
    }
    int rc = sts_assume_role_submit(c->engine, base, p, flight_done, f, err);
    creds_unref(base);
    if (rc < 0)
        goto fail;
    f->cache = c;
    f->entry = e;
    f->head = w;
    f->tail = w ? &w->next : &f->head;
    e->flight = f;
    if (created && c->count > c->n_buckets)
        cache_grow(c);
    return 0;

nomem:
    err_set(err, ERR_NOMEM, "STS cache: out of memory");
fail:
    if (created)
        entry_remove(c, e);
    free(f);
    free(w);
    return -1;
}

int sts_cache_get(struct sts_cache *c, const struct sts_assume_role_params *p, sts_creds_fn done,
                  void *ud, struct err *err)
{
    if (!done)
        return err_set(err, ERR_INVALID, "STS cache: a callback is required");
    return cache_get(c, p, NULL, done, ud, err);
}

int sts_cache_refresh(struct sts_cache *c, const struct sts_assume_role_params *p,
                      const struct aws_credentials *stale, sts_creds_fn done, void *ud,
                      struct err *err)
{
    if (!done || !stale)
        return err_set(err, ERR_INVALID,
                       "STS cache: stale credentials and a callback are required");
    return cache_get(c, p, stale, done, ud, err);
}

struct aws_credentials *sts_cache_current(struct sts_cache *c,
                                          const struct sts_assume_role_params *p)
{
    if (!c || !p || !p->role_arn)
        return NULL;
    struct sts_entry *e = *entry_slot(c, p->role_arn, hash_str(p->role_arn));
    time_t now = time(NULL);
    if (!e || !e->creds || creds_expiring(e->creds, now, 0))
        return NULL;
    if (!entry_fresh(e, now) && !e->flight) {
        struct err ignored;
        if (cache_get(c, p, NULL, NULL, NULL, &ignored) < 0)
            log_debug("sts", "background refresh of %s not started: %s", p->role_arn,
                      ignored.message);
    }
    return creds_ref(e->creds);
}

void sts_cache_forget(struct sts_cache *c, const char *role_arn)
{
    if (!c || !role_arn)
        return;
    uint64_t h = hash_str(role_arn);
    struct sts_entry *e = *entry_slot(c, role_arn, h);
    if (e)
        entry_remove(c, e);
}

void sts_cache_free(struct sts_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct sts_entry *e = c->buckets[i];
        while (e) {
            struct sts_entry *next = e->next;
            if (e->flight) {
                /* Still in flight: its callback frees the flight; the waiters are dropped
                 * without being called, as http_engine_free() drops queued requests. */
                struct sts_flight *f = e->flight;
                f->cache = NULL;
                f->entry = NULL;
                for (struct sts_waiter *w = f->head; w;) {
                    struct sts_waiter *wn = w->next;
                    free(w);
                    w = wn;
                }
                f->head = NULL;
                f->tail = &f->head;
            }
            creds_unref(e->creds);
            free(e);
            e = next;
        }
    }
    free(c->buckets);
    free(c);
}
