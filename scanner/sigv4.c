/* sigv4.c - AWS Signature Version 4 (header-based) with OpenSSL: canonical request, string to
 * sign, signing-key derivation with a small per-credentials key cache, and the Authorization value.
 * It runs once per API call, so it works in stack buffers and allocates once per signature. */
#include "scanner/sigv4.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "scanner/sigv4_internal.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SHA256_LEN 32
#define SHA256_BLOCK 64
/* "date/region/service" must fit a key cache slot, with its NUL. */
#define SCOPE_MAX sizeof(((struct sigv4_key_cache *)0)->slot[0].scope)

/* Requests with more query parameters, query bytes or headers than this use the heap. */
#define STACK_QUERY_PARAMS 32
#define STACK_QUERY_BYTES 2048
#define STACK_HEADERS 32

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_lower[in[i] >> 4];
        out[2 * i + 1] = hex_lower[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* SHA-256 of the empty string: the payload hash of every GET. */
static const char empty_sha256_hex[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* SHA-256, fetched once: with EVP_sha256() OpenSSL 3 looks the implementation up again (under a
 * lock) on every digest, and its one-shot HMAC() fetches a MAC and a digest on every call, which
 * made the five HMACs of a signature cost more than everything else in it. */
static EVP_MD *fetched_sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md_sha256(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return fetched_sha256 ? fetched_sha256 : EVP_sha256();
}

static int sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    unsigned int out_len = 0;
    /* EVP_Digest wants a non-NULL pointer even for an empty input. */
    if (!EVP_Digest(data ? data : "", len, out, &out_len, md_sha256(), NULL) ||
        out_len != SHA256_LEN)
        return -1;
    return 0;
}

/* SHA-256 of a followed by b on ctx (initialized again: one context serves a whole signature). */
static int sha256_two(EVP_MD_CTX *ctx, const void *a, size_t a_len, const void *b, size_t b_len,
                      unsigned char out[SHA256_LEN])
{
    unsigned int out_len = 0;
    if (!EVP_DigestInit_ex2(ctx, md_sha256(), NULL) || !EVP_DigestUpdate(ctx, a, a_len) ||
        (b_len > 0 && !EVP_DigestUpdate(ctx, b, b_len)) ||
        !EVP_DigestFinal_ex(ctx, out, &out_len) || out_len != SHA256_LEN)
        return -1;
    return 0;
}

/* HMAC-SHA256 as RFC 2104 defines it, H((K ^ opad) || H((K ^ ipad) || data)), on ctx. */
static int hmac_sha256(EVP_MD_CTX *ctx, const void *key, size_t key_len, const void *data,
                       size_t len, unsigned char out[SHA256_LEN])
{
    unsigned char k[SHA256_BLOCK], pad[SHA256_BLOCK], inner[SHA256_LEN];
    int rc = -1;
    memset(k, 0, sizeof k);
    if (key_len > SHA256_BLOCK) {
        if (sha256_two(ctx, key, key_len, NULL, 0, k) < 0)
            goto out;
    } else {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    if (sha256_two(ctx, pad, sizeof pad, data ? data : "", len, inner) < 0)
        goto out;
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    if (sha256_two(ctx, pad, sizeof pad, inner, sizeof inner, out) < 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    return rc;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_LEN];
    if (len == 0) {
        memcpy(out, empty_sha256_hex, sizeof empty_sha256_hex);
        return;
    }
    if (sha256(data, len, md) < 0) {
        /* Only on an OpenSSL failure; an empty string can never match a real hash. */
        out[0] = '\0';
        return;
    }
    hex_encode(md, sizeof md, out);
}

void sigv4_amz_date(time_t now, char *out)
{
    struct tm tm;
    if (!gmtime_r(&now, &tm) ||
        strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_LEN)
        out[0] = '\0'; /* out of range; sigv4_authorization rejects it */
}

/* ---- URI encoding ---- */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Writes c URI-encoded at out (1 or 3 bytes, no NUL); returns the count. */
static size_t encode_byte(unsigned char c, int keep_slash, char *out)
{
    if (is_unreserved(c) || (keep_slash && c == '/')) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '%';
    out[1] = hex_upper[c >> 4];
    out[2] = hex_upper[c & 0x0f];
    return 3;
}

long sigv4_uri_encode(const char *s, size_t len, int keep_slash, char *out, size_t cap)
{
    if (cap == 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = is_unreserved(c) || (keep_slash && c == '/') ? 1 : 3;
        if (cap - n <= need) { /* keeps a byte for the NUL */
            out[0] = '\0';
            return -1;
        }
        n += encode_byte(c, keep_slash, out + n);
    }
    out[n] = '\0';
    return (long)n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s and URI-encodes the result (keep_slash=0) at out, which has room for
 * 3 * len bytes. A '%' not followed by two hex digits stays a literal '%' (so becomes %25), which
 * makes an already-encoded and a raw query sign the same. Returns the length written. */
static size_t reencode_query_part(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;
        if (c == '%' && i + 2 < len && (hi = hex_value(s[i + 1])) >= 0 &&
            (lo = hex_value(s[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        n += encode_byte(c, 0, out + n);
    }
    return n;
}

/* ---- canonical request ---- */

static int compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return (a_len > b_len) - (a_len < b_len);
}

/* Appends the normalized, URI-encoded path. Segments are encoded one by one, so a ".." can drop
 * the last one by truncating back to its '/'; the path never needs a separate copy. */
static int append_canonical_uri(struct buf *b, const char *path)
{
    size_t start = b->len;
    int trailing_slash = 0;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t seg_len = slash ? (size_t)(slash - p) : strlen(p);
        if (seg_len == 0 || (seg_len == 1 && p[0] == '.')) {
            trailing_slash = 1;
        } else if (seg_len == 2 && p[0] == '.' && p[1] == '.') {
            while (b->len > start && b->data[b->len - 1] != '/')
                b->len--;
            if (b->len > start)
                b->len--; /* the segment's own '/' */
            b->data[b->len] = '\0';
            trailing_slash = 1;
        } else {
            if (buf_putc(b, '/') < 0 || buf_reserve(b, 3 * seg_len) < 0)
                return -1;
            long n = sigv4_uri_encode(p, seg_len, 0, b->data + b->len, b->cap - b->len);
            if (n < 0)
                return -1;
            b->len += (size_t)n;
            trailing_slash = 0;
        }
        if (!slash)
            break;
        p = slash + 1;
    }
    if (b->len == start || trailing_slash)
        return buf_putc(b, '/');
    return 0;
}

struct query_param {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

static int compare_query_params(const void *a, const void *b)
{
    const struct query_param *x = a, *y = b;
    int c = compare_bytes(x->key, x->key_len, y->key, y->key_len);
    return c ? c : compare_bytes(x->value, x->value_len, y->value, y->value_len);
}

/* Appends the canonical query string for the raw query (may be NULL). */
static int append_canonical_query(struct buf *b, const char *query, struct err *err)
{
    if (!query || !*query)
        return 0;
    size_t query_len = strlen(query);
    if (query_len > ((size_t)-1) / 4)
        return err_set(err, ERR_INVALID, "query string too long");
    size_t max_params = 1;
    for (const char *q = query; (q = strchr(q, '&')) != NULL; q++)
        max_params++;

    struct query_param stack_params[STACK_QUERY_PARAMS];
    char stack_bytes[STACK_QUERY_BYTES];
    struct query_param *params = stack_params;
    char *encoded = stack_bytes;
    int rc = -1;
    /* Decoding never lengthens a part and encoding at most triples it. */
    size_t encoded_cap = 3 * query_len;
    if (max_params > STACK_QUERY_PARAMS)
        params = malloc(max_params * sizeof *params);
    if (encoded_cap > sizeof stack_bytes)
        encoded = malloc(encoded_cap);
    if (!params || !encoded) {
        err_set(err, ERR_NOMEM, "out of memory canonicalizing the query string");
        goto out;
    }

    size_t n = 0, used = 0;
    const char *p = query, *end = query + query_len;
    for (;;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp)
            amp = end;
        if (amp > p) { /* "a&&b" has an empty parameter, which is not signed */
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            struct query_param *qp = &params[n++];
            qp->key = encoded + used;
            qp->key_len = reencode_query_part(p, (size_t)((eq ? eq : amp) - p), encoded + used);
            used += qp->key_len;
            qp->value = encoded + used;
            qp->value_len =
                eq ? reencode_query_part(eq + 1, (size_t)(amp - eq - 1), encoded + used) : 0;
            used += qp->value_len;
        }
        if (amp == end)
            break;
        p = amp + 1;
    }
    qsort(params, n, sizeof *params, compare_query_params);

    if (buf_reserve(b, used + 2 * n) < 0) {
        err_set(err, ERR_NOMEM, "out of memory canonicalizing the query string");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(b, '&');
        buf_append(b, params[i].key, params[i].key_len);
        buf_putc(b, '=');
        buf_append(b, params[i].value, params[i].value_len);
    }
    rc = 0;
out:
    if (params != stack_params)
        free(params);
    if (encoded != stack_bytes)
        free(encoded);
    return rc;
}

struct header_ref {
    const char *name;
    size_t name_len;
    const char *value;
    size_t index; /* position in the request, to keep duplicates in order (qsort is unstable) */
};

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int compare_names(const struct header_ref *x, const struct header_ref *y)
{
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = ascii_lower((unsigned char)x->name[i]);
        unsigned char b = ascii_lower((unsigned char)y->name[i]);
        if (a != b)
            return a < b ? -1 : 1;
    }
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int compare_headers(const void *a, const void *b)
{
    const struct header_ref *x = a, *y = b;
    int c = compare_names(x, y);
    if (c)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

static int valid_header_name(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == ':' || c == 0x7f)
            return 0;
    }
    return 1;
}

static int is_lws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void append_lower(struct buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        b->data[b->len++] = (char)ascii_lower((unsigned char)s[i]);
    b->data[b->len] = '\0';
}

/* Appends v trimmed, with every run of whitespace (spaces, tabs and the line breaks of a folded
 * multi-line value) turned into one space. */
static void append_trimmed(struct buf *b, const char *v)
{
    int started = 0, pending_space = 0;
    for (; *v; v++) {
        if (is_lws(*v)) {
            pending_space = started;
            continue;
        }
        if (pending_space)
            b->data[b->len++] = ' ';
        pending_space = 0;
        started = 1;
        b->data[b->len++] = *v;
    }
    b->data[b->len] = '\0';
}

/* Appends the canonical headers block, the blank line and the signed header names; *sh_off and
 * *sh_len locate the names in b. The caller has reserved room for all of it. */
static int append_canonical_headers(struct buf *b, const struct sigv4_request *req, size_t *sh_off,
                                    size_t *sh_len, struct err *err)
{
    struct header_ref stack_refs[STACK_HEADERS];
    struct header_ref *refs = stack_refs;
    size_t n = req->n_headers;
    if (n > STACK_HEADERS && !(refs = malloc(n * sizeof *refs)))
        return err_set(err, ERR_NOMEM, "out of memory sorting %zu headers", n);
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        const struct sigv4_header *h = &req->headers[i];
        if (!h->name || !h->value) {
            err_set(err, ERR_INVALID, "header %zu has no name or value", i);
            goto out;
        }
        refs[i].name = h->name;
        refs[i].name_len = strlen(h->name);
        refs[i].value = h->value;
        refs[i].index = i;
        if (!valid_header_name(h->name, refs[i].name_len)) {
            /* The name is printed only by position: values are never printed. */
            err_set(err, ERR_INVALID, "header %zu has an invalid name", i);
            goto out;
        }
    }
    qsort(refs, n, sizeof *refs, compare_headers);

    for (size_t i = 0; i < n;) {
        append_lower(b, refs[i].name, refs[i].name_len);
        b->data[b->len++] = ':';
        size_t j = i;
        for (; j < n && compare_names(&refs[i], &refs[j]) == 0; j++) {
            if (j > i)
                b->data[b->len++] = ',';
            append_trimmed(b, refs[j].value);
        }
        b->data[b->len++] = '\n';
        i = j;
    }
    b->data[b->len++] = '\n';
    *sh_off = b->len;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && compare_names(&refs[i - 1], &refs[i]) == 0)
            continue;
        if (i > 0)
            b->data[b->len++] = ';';
        append_lower(b, refs[i].name, refs[i].name_len);
    }
    *sh_len = b->len - *sh_off;
    b->data[b->len] = '\0';
    rc = 0;
out:
    if (refs != stack_refs)
        free(refs);
    return rc;
}

/* Builds the canonical request onto creq (appending); *sh_off and *sh_len locate the signed
 * header names inside it, so that the Authorization header needs no second buffer. On failure
 * creq is left as it was. */
static int build_canonical_request(const struct sigv4_request *req, struct buf *creq,
                                   size_t *sh_off, size_t *sh_len, struct err *err)
{
    if (!req || !req->method || !req->method[0] || !req->path)
        return err_set(err, ERR_INVALID, "request has no method or path");
    if (req->n_headers > 0 && !req->headers)
        return err_set(err, ERR_INVALID, "request has %zu headers but no header list",
                       req->n_headers);
    if (req->body_len > 0 && !req->body)
        return err_set(err, ERR_INVALID, "request has a body length but no body");

    /* One reservation for everything but the query (which reserves its own): encoding at most
     * triples the path; header values only shrink. */
    size_t method_len = strlen(req->method), path_len = strlen(req->path);
    size_t need = method_len + 3 * path_len + 2 * SHA256_LEN + 16;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sigv4_header *h = &req->headers[i];
        need += (h->name ? 2 * strlen(h->name) : 0) + (h->value ? strlen(h->value) : 0) + 3;
    }
    size_t start = creq->len;
    if (buf_reserve(creq, need) < 0)
        return err_set(err, ERR_NOMEM, "out of memory building the canonical request");

    char body_hash[2 * SHA256_LEN + 1];
    sigv4_sha256_hex(req->body, req->body_len, body_hash);
    if (!body_hash[0]) {
        err_set(err, ERR_INVALID, "SHA-256 of the request body failed");
        goto fail;
    }
    buf_append(creq, req->method, method_len);
    buf_putc(creq, '\n');
    if (append_canonical_uri(creq, req->path) < 0 || buf_putc(creq, '\n') < 0) {
        err_set(err, ERR_NOMEM, "out of memory building the canonical request");
        goto fail;
    }
    if (append_canonical_query(creq, req->query, err) < 0)
        goto fail;
    /* The query may have moved the data; reserve again for the header part. */
    if (buf_putc(creq, '\n') < 0 || buf_reserve(creq, need) < 0) {
        err_set(err, ERR_NOMEM, "out of memory building the canonical request");
        goto fail;
    }
    if (append_canonical_headers(creq, req, sh_off, sh_len, err) < 0)
        goto fail;
    buf_putc(creq, '\n');
    buf_append(creq, body_hash, 2 * SHA256_LEN);
    return 0;
fail:
    creq->len = start;
    if (creq->data)
        creq->data[start] = '\0';
    return -1;
}

int sigv4_canonical_request(const struct sigv4_request *req, struct buf *creq,
                            struct buf *signed_headers, struct err *err)
{
    size_t sh_off = 0, sh_len = 0;
    if (build_canonical_request(req, creq, &sh_off, &sh_len, err) < 0)
        return -1;
    if (buf_append(signed_headers, creq->data + sh_off, sh_len) < 0)
        return err_set(err, ERR_NOMEM, "out of memory copying the signed headers");
    return 0;
}

/* ---- string to sign and signature ---- */

#define STRING_TO_SIGN_FORMAT SIGV4_ALGORITHM "\n%s\n%s\n%s"

/* scope here is the full credential scope, as the string to sign carries it:
 * "20150830/us-east-1/service/aws4_request". Appends to out. */
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, size_t creq_len,
                         struct buf *out)
{
    char creq_hash[2 * SHA256_LEN + 1];
    sigv4_sha256_hex(creq, creq_len, creq_hash);
    if (!creq_hash[0])
        return -1;
    return buf_printf(out, STRING_TO_SIGN_FORMAT, amz_date, scope, creq_hash);
}

/* sigv4_derive_key that reports failure, on ctx. */
static int derive_key(EVP_MD_CTX *ctx, const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char out[SHA256_LEN])
{
    /* HMAC keys longer than the block are hashed first, so a long "AWS4" + secret can be
     * hashed in two pieces instead of being copied into a buffer of its size. */
    unsigned char k_secret[SHA256_BLOCK];
    unsigned char a[SHA256_LEN], b[SHA256_LEN];
    size_t secret_len = strlen(secret), k_len;
    int rc = -1;
    if (secret_len <= sizeof k_secret - 4) {
        memcpy(k_secret, "AWS4", 4);
        memcpy(k_secret + 4, secret, secret_len);
        k_len = 4 + secret_len;
    } else {
        if (sha256_two(ctx, "AWS4", 4, secret, secret_len, k_secret) < 0)
            goto out;
        k_len = SHA256_LEN;
    }
    if (hmac_sha256(ctx, k_secret, k_len, date8, strlen(date8), a) < 0 ||
        hmac_sha256(ctx, a, sizeof a, region, strlen(region), b) < 0 ||
        hmac_sha256(ctx, b, sizeof b, service, strlen(service), a) < 0 ||
        hmac_sha256(ctx, a, sizeof a, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), out) < 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(k_secret, sizeof k_secret);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    return rc;
}

void sigv4_derive_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char out[32])
{
    /* Only an OpenSSL failure gets here; a zero key yields a signature AWS rejects. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || derive_key(ctx, secret, date8, region, service, out) < 0)
        OPENSSL_cleanse(out, SHA256_LEN);
    EVP_MD_CTX_free(ctx); /* wipes its state */
}

/* The signing key for scope ("date/region/service"), from the cache when it has it. */
static int signing_key(EVP_MD_CTX *ctx, const struct sigv4_params *p, const char *scope,
                       const char *date8, unsigned char key[SHA256_LEN], struct err *err)
{
    struct sigv4_key_cache *cache = p->cache;
    if (cache) {
        for (unsigned i = 0; i < SIGV4_KEY_CACHE_SLOTS; i++) {
            if (cache->slot[i].scope[0] && strcmp(cache->slot[i].scope, scope) == 0) {
                memcpy(key, cache->slot[i].key, SHA256_LEN);
                return 0;
            }
        }
    }
    if (derive_key(ctx, p->secret_access_key, date8, p->region, p->service, key) < 0)
        return err_set(err, ERR_INVALID, "deriving the SigV4 signing key failed");
    if (cache) {
        unsigned i = cache->next % SIGV4_KEY_CACHE_SLOTS;
        snprintf(cache->slot[i].scope, sizeof cache->slot[i].scope, "%s", scope);
        memcpy(cache->slot[i].key, key, SHA256_LEN);
        cache->next = (i + 1) % SIGV4_KEY_CACHE_SLOTS;
    }
    return 0;
}

void sigv4_key_cache_cleanse(struct sigv4_key_cache *cache)
{
    if (cache)
        OPENSSL_cleanse(cache, sizeof *cache);
}

static int nonempty(const char *s)
{
    return s && s[0];
}

int sigv4_authorization(const struct sigv4_params *p, const struct sigv4_request *req, char *out,
                        size_t cap, struct err *err)
{
    /* Messages name which input is wrong, never its value: the secret must not reach a log. */
    if (out && cap > 0)
        out[0] = '\0';
    if (!p || !out)
        return err_set(err, ERR_INVALID, "sigv4_authorization: no parameters or output");
    if (!nonempty(p->access_key_id) || !nonempty(p->secret_access_key))
        return err_set(err, ERR_INVALID, "SigV4 signing needs an access key id and a secret");
    if (!nonempty(p->region) || !nonempty(p->service))
        return err_set(err, ERR_INVALID, "SigV4 signing needs a region and a service");

    char amz_date[SIGV4_AMZ_DATE_LEN + 1];
    sigv4_amz_date(p->now, amz_date);
    if (strlen(amz_date) != SIGV4_AMZ_DATE_LEN)
        return err_set(err, ERR_INVALID, "signing time out of range");
    char date8[9];
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    char scope[SCOPE_MAX];
    int scope_len = snprintf(scope, sizeof scope, "%s/%s/%s", date8, p->region, p->service);
    if (scope_len < 0 || (size_t)scope_len >= sizeof scope)
        return err_set(err, ERR_INVALID, "region and service too long for a credential scope");

    struct buf creq;
    buf_init(&creq);
    unsigned char key[SHA256_LEN], sig[SHA256_LEN];
    char sts[sizeof scope + 2 * SHA256_LEN + 64];
    char full_scope[sizeof scope + sizeof SIGV4_TERMINATOR];
    char sig_hex[2 * SHA256_LEN + 1];
    size_t sh_off = 0, sh_len = 0;
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        err_set(err, ERR_NOMEM, "out of memory for a SHA-256 context");
        goto out;
    }

    if (build_canonical_request(req, &creq, &sh_off, &sh_len, err) < 0)
        goto out;
    snprintf(full_scope, sizeof full_scope, "%s/" SIGV4_TERMINATOR, scope);
    char creq_hash[2 * SHA256_LEN + 1];
    sigv4_sha256_hex(creq.data, creq.len, creq_hash);
    int sts_len = snprintf(sts, sizeof sts, STRING_TO_SIGN_FORMAT, amz_date, full_scope, creq_hash);
    if (!creq_hash[0] || sts_len < 0 || (size_t)sts_len >= sizeof sts) {
        err_set(err, ERR_INVALID, "building the SigV4 string to sign failed");
        goto out;
    }
    if (signing_key(ctx, p, scope, date8, key, err) < 0)
        goto out;
    if (hmac_sha256(ctx, key, sizeof key, sts, (size_t)sts_len, sig) < 0) {
        err_set(err, ERR_INVALID, "computing the SigV4 signature failed");
        goto out;
    }
    hex_encode(sig, sizeof sig, sig_hex);
    if (sh_len > INT_MAX) {
        err_set(err, ERR_INVALID, "too many signed headers");
        goto out;
    }
    int n =
        snprintf(out, cap, SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%.*s, Signature=%s",
                 p->access_key_id, full_scope, (int)sh_len, creq.data + sh_off, sig_hex);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        err_set(err, ERR_INVALID, "Authorization header needs %d bytes, the buffer has %zu", n + 1,
                cap);
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(ctx); /* wipes its state */
    OPENSSL_cleanse(key, sizeof key);
    /* The canonical request holds X-Amz-Security-Token when temporary credentials are used. */
    if (creq.data)
        OPENSSL_cleanse(creq.data, creq.cap);
    buf_cleanup(&creq);
    return rc;
}
