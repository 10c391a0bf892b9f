/* api.c - the AWS side of the fake: tells services apart (credential scope, X-Amz-Target, Action,
 * path), identifies the caller from its access key, injects the planned faults, optionally checks
 * SigV4 with the project's signer, and answers Organizations (awsJson1_1), STS AssumeRole
 * (awsQuery), EC2 DescribeRegions (EC2 query) and EKS (restJson1) as AWS does on the wire. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scanner/sigv4.h"
#include "tests/fakeaws/fakeaws.h"

#define ORG_MAX_RESULTS 20
#define EKS_MAX_RESULTS 100
#define SESSION_TOKEN_RAW 600 /* bytes before base64: an 800-byte token, like real ones */
#define TOKEN_HEAD 48         /* the part of a session token that carries meaning */
#define MAX_SKEW_S 900

const char *const fa_op_names[FA_OP_COUNT] = {
    [FA_OP_DESCRIBE_ORGANIZATION] = "DescribeOrganization",
    [FA_OP_LIST_ROOTS] = "ListRoots",
    [FA_OP_LIST_OUS] = "ListOrganizationalUnitsForParent",
    [FA_OP_LIST_ACCOUNTS_FOR_PARENT] = "ListAccountsForParent",
    [FA_OP_LIST_ACCOUNTS] = "ListAccounts",
    [FA_OP_LIST_POLICIES] = "ListPolicies",
    [FA_OP_DESCRIBE_POLICY] = "DescribePolicy",
    [FA_OP_LIST_TARGETS] = "ListTargetsForPolicy",
    [FA_OP_ASSUME_ROLE] = "AssumeRole",
    [FA_OP_DESCRIBE_REGIONS] = "DescribeRegions",
    [FA_OP_LIST_CLUSTERS] = "ListClusters",
    [FA_OP_DESCRIBE_CLUSTER] = "DescribeCluster",
    [FA_OP_LIST_UPDATES] = "ListUpdates",
    [FA_OP_DESCRIBE_UPDATE] = "DescribeUpdate",
    [FA_OP_UNKNOWN] = "Unknown",
};

const char *const fa_errkind_names[FA_E_COUNT] = {
    [FA_E_SIGNATURE] = "signature",   [FA_E_BAD_TOKEN] = "invalid_token",
    [FA_E_EXPIRED] = "expired_token", [FA_E_ACCESS_DENIED] = "access_denied",
    [FA_E_NOT_FOUND] = "not_found",   [FA_E_INVALID] = "invalid_request",
};

enum proto { P_REST_JSON = 0, P_JSON11, P_QUERY, P_EC2, P_CONTROL };

/* The parts of "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=hex". */
struct auth {
    int present;
    char akid[128];
    char date[16];
    char region[32];
    char service[32];
    char signed_headers[512];
    char signature[80];
};

struct ctx {
    struct fa_worker *w;
    struct fa_app *app;
    const struct fa_request *req;
    struct buf *out;
    struct fa_response *resp;
    enum proto proto;
    enum fa_op op;
    long caller;  /* account index of the credentials; -1 unknown */
    long account; /* account the request is about (faults, per-account counters) */
    char reqid[40];
    struct auth auth;
    const char *region;
};

/* ---- small helpers ---- */

static void count(atomic_ulong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static const char *header(const struct fa_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (cap bytes, NUL-terminated); '+' is a space when form.
 * Returns the length, or -1 when it does not fit. */
static long url_decode(const char *s, size_t len, int form, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

/* The decoded value of name in a form body or query string (`&`-separated). Returns its length,
 * -1 when absent, -2 when too long for out. */
static long param_get(const char *s, size_t len, const char *name, int form, char *out, size_t cap)
{
    if (!s)
        return -1;
    size_t nlen = strlen(name);
    const char *end = s + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - s) == nlen && memcmp(s, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            long n = url_decode(v, (size_t)(stop - v), form, out, cap);
            return n < 0 ? -2 : n;
        }
        s = amp ? amp + 1 : end;
    }
    return -1;
}

static void make_request_id(struct fa_worker *w, char out[40])
{
    uint64_t a = fa_mix(w->app->opt.fleet.seed ^ ((uint64_t)w->id << 56) ^ ++w->req_seq);
    uint64_t b = fa_mix(a);
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static const char *content_type(enum proto p)
{
    switch (p) {
    case P_JSON11:
        return "application/x-amz-json-1.1";
    case P_QUERY:
        return "text/xml";
    case P_EC2:
        return "text/xml;charset=UTF-8";
    default:
        return "application/json";
    }
}

/* Writes the head and the body (w->body) of the answer into out. */
static void finish(struct ctx *c, int status, const char *errortype)
{
    struct fa_worker *w = c->w;
    struct buf *out = c->out;
    time_t now = time(NULL);
    if (now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_sec = now;
    }
    if (!w->body.data && buf_puts(&w->body, "") < 0)
        status = 500;
    buf_reset(out);
    fa_printf(out,
              "HTTP/1.1 %d %s\r\nx-amzn-RequestId: %s\r\nDate: %s\r\nContent-Type: %s\r\n"
              "Content-Length: %zu\r\n",
              status, reason(status), c->reqid, w->date, content_type(c->proto), w->body.len);
    if (errortype)
        fa_printf(out,
                  "X-Amzn-Errortype: %s:http://internal.amazon.com/coral/com.amazonaws.%s/\r\n",
                  errortype, c->proto == P_REST_JSON ? "eks" : "organizations");
    if (c->resp->close)
        buf_puts(out, "Connection: close\r\n");
    buf_puts(out, "\r\n");
    c->resp->head_len = out->len;
    buf_append(out, w->body.data, w->body.len);
    if (status < 300)
        count(&c->app->stats.status_2xx);
    else if (status < 500)
        count(&c->app->stats.status_4xx);
    else
        count(&c->app->stats.status_5xx);
}

/* An AWS error in the request's protocol. kind < 0: not counted as an error kind (faults). */
static void send_error(struct ctx *c, int status, const char *code, int kind, const char *extra,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void send_error(struct ctx *c, int status, const char *code, int kind, const char *extra,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (kind >= 0)
        count(&c->app->stats.errors[kind]);
    struct buf *b = &c->w->body;
    buf_reset(b);
    switch (c->proto) {
    case P_REST_JSON:
    case P_CONTROL:
        buf_puts(b, "{");
        if (extra)
            fa_printf(b, "%s,", extra);
        buf_puts(b, "\"message\":");
        fa_json_str(b, msg, strlen(msg));
        buf_puts(b, "}");
        finish(c, status, c->proto == P_REST_JSON ? code : NULL);
        return;
    case P_JSON11:
        fa_printf(b, "{\"__type\":\"%s\",\"Message\":", code);
        fa_json_str(b, msg, strlen(msg));
        buf_puts(b, "}");
        finish(c, status, NULL);
        return;
    case P_QUERY:
        fa_printf(b,
                  "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                  "  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n    <Message>",
                  status >= 500 ? "Receiver" : "Sender", code);
        fa_xml_str(b, msg, strlen(msg));
        fa_printf(b, "</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n",
                  c->reqid);
        finish(c, status, NULL);
        return;
    case P_EC2:
        fa_printf(b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s"
                  "</Code><Message>",
                  code);
        fa_xml_str(b, msg, strlen(msg));
        fa_printf(b, "</Message></Error></Errors><RequestID>%s</RequestID></Response>", c->reqid);
        finish(c, status, NULL);
        return;
    }
}

static void send_ok(struct ctx *c)
{
    finish(c, 200, NULL);
}

/* ---- credentials ---- */

static void hmac_key(const struct fa_app *app, const char *label, const void *data, size_t len,
                     unsigned char out[32])
{
    unsigned char msg[256];
    size_t ll = strlen(label);
    if (ll + len > sizeof msg)
        len = sizeof msg - ll;
    memcpy(msg, label, ll);
    memcpy(msg + ll, data, len);
    unsigned int olen = 32;
    HMAC(EVP_sha256(), app->token_key, sizeof app->token_key, msg, ll + len, out, &olen);
}

/* The secret of an assumed-role key: hex of HMAC(key, "secret:" AKID), 40 characters. */
static void derive_secret(const struct fa_app *app, const char *akid, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    hmac_key(app, "secret:", akid, strlen(akid), mac);
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[40] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Decodes base64 (standard alphabet, '=' padding) s[0..len) into out (cap); -1 when invalid. */
static long b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=')
            break;
        const char *p = strchr(b64, s[i]);
        if (!p || !s[i])
            return -1;
        v = (v << 6) | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(v >> bits);
        }
    }
    return (long)n;
}

/* --credentials-log: "AKID SECRET TOKEN" on one line, in one write (O_APPEND: lines from
 * several threads never interleave). */
static void log_credential(int fd, const char *akid, const char *secret, const char *token)
{
    size_t al = strlen(akid), sl = strlen(secret), tl = strlen(token);
    char *line = malloc(al + sl + tl + 3);
    if (!line)
        return;
    memcpy(line, akid, al);
    line[al] = ' ';
    memcpy(line + al + 1, secret, sl);
    line[al + 1 + sl] = ' ';
    memcpy(line + al + sl + 2, token, tl);
    line[al + sl + tl + 2] = '\n';
    if (write(fd, line, al + sl + tl + 3) < 0)
        perror("fakeaws: --credentials-log");
    OPENSSL_cleanse(line, al + sl + tl + 3);
    free(line);
}

/* Session token: base64 of "FQ" 0x01, expiry (8 bytes, big endian), the AKID (20), a MAC (17)
 * over those, then filler so that it is as large as a real one. */
static void make_session_token(const struct fa_app *app, const char *akid, time_t expiry, char *out)
{
    unsigned char raw[SESSION_TOKEN_RAW];
    raw[0] = 'F';
    raw[1] = 'Q';
    raw[2] = 1;
    uint64_t e = (uint64_t)expiry;
    for (int i = 0; i < 8; i++)
        raw[3 + i] = (unsigned char)(e >> (56 - 8 * i));
    memcpy(raw + 11, akid, 20);
    unsigned char mac[32];
    hmac_key(app, "token:", raw, 31, mac);
    memcpy(raw + 31, mac, 17);
    uint64_t s = fa_mix(((uint64_t)mac[0] << 8 | mac[1]) ^ e);
    for (size_t i = TOKEN_HEAD; i < sizeof raw; i++)
        raw[i] = (unsigned char)fa_next(&s);
    b64_encode(raw, sizeof raw, out);
}

/* Checks a session token against the key it came with: 0 with its expiry, -1 when invalid. */
static int check_session_token(const struct fa_app *app, const char *token, const char *akid,
                               time_t *expiry)
{
    unsigned char raw[TOKEN_HEAD];
    size_t tl = strlen(token);
    if (tl < 64 || b64_decode(token, 64, raw, sizeof raw) != TOKEN_HEAD)
        return -1;
    if (raw[0] != 'F' || raw[1] != 'Q' || raw[2] != 1)
        return -1;
    unsigned char mac[32];
    hmac_key(app, "token:", raw, 31, mac);
    if (CRYPTO_memcmp(mac, raw + 31, 17) != 0)
        return -1;
    if (strlen(akid) != 20 || memcmp(raw + 11, akid, 20) != 0)
        return -1;
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | raw[3 + i];
    *expiry = (time_t)e;
    return 0;
}

/* The thread's entry for an access key (direct-mapped: a collision replaces the entry). */
static struct fa_cred *cred_slot(struct fa_worker *w, const char *akid)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = akid; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &w->creds[h & (FA_CRED_SLOTS - 1)];
}

static void cred_fill(struct fa_cred *cr, const char *akid, const char *token, time_t expiry,
                      const char *secret)
{
    OPENSSL_cleanse(cr, sizeof *cr);
    snprintf(cr->akid, sizeof cr->akid, "%s", akid);
    if (strlen(token) >= sizeof cr->token_head)
        memcpy(cr->token_head, token, sizeof cr->token_head);
    cr->expiry = expiry ? expiry : (time_t)INT64_MAX;
    snprintf(cr->secret, sizeof cr->secret, "%s", secret);
}

/* "ASIA" + 12-digit account + 4 characters of a counter (base32). */
static void make_akid(struct fa_app *app, const char *account_id, char out[21])
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned n = atomic_fetch_add_explicit(&app->akid_counter, 1, memory_order_relaxed);
    memcpy(out, "ASIA", 4);
    memcpy(out + 4, account_id, 12);
    for (int i = 0; i < 4; i++)
        out[16 + i] = b32[(n >> (5 * (3 - i))) & 31];
    out[20] = '\0';
}

static int parse_auth(const char *v, struct auth *a)
{
    memset(a, 0, sizeof *a);
    if (!v)
        return 0;
    a->present = 1;
    if (strncmp(v, "AWS4-HMAC-SHA256 ", 17) != 0)
        return -1;
    const char *cred = strstr(v, "Credential=");
    const char *sh = strstr(v, "SignedHeaders=");
    const char *sig = strstr(v, "Signature=");
    if (!cred || !sh || !sig)
        return -1;
    cred += 11;
    /* AKID/DATE/REGION/SERVICE/aws4_request */
    char *fields[4] = {a->akid, a->date, a->region, a->service};
    size_t caps[4] = {sizeof a->akid, sizeof a->date, sizeof a->region, sizeof a->service};
    const char *p = cred;
    for (int i = 0; i < 4; i++) {
        size_t n = strcspn(p, "/, ");
        if (n == 0 || n >= caps[i] || p[n] != '/')
            return -1;
        memcpy(fields[i], p, n);
        fields[i][n] = '\0';
        p += n + 1;
    }
    if (strncmp(p, "aws4_request", 12) != 0)
        return -1;
    sh += 14;
    size_t n = strcspn(sh, ", ");
    if (n == 0 || n >= sizeof a->signed_headers)
        return -1;
    memcpy(a->signed_headers, sh, n);
    sig += 10;
    n = strcspn(sig, ", ");
    if (n == 0 || n >= sizeof a->signature)
        return -1;
    memcpy(a->signature, sig, n);
    return 0;
}

static int parse_amz_date(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    int v[6];
    const int off[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < len[i]; j++) {
            char c = s[off[i] + j];
            if (c < '0' || c > '9')
                return -1;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *out = timegm(&tm);
    return 0;
}

/* Recomputes the signature with the project's signer over what was received. 0 when it matches;
 * -1 otherwise, with why in msg. */
static int verify_signature(struct ctx *c, struct fa_cred *cr, char *msg, size_t cap)
{
    const struct fa_request *r = c->req;
    const struct auth *a = &c->auth;
    struct sigv4_header hs[FA_MAX_HEADERS];
    size_t n = 0;
    char names[sizeof a->signed_headers];
    memcpy(names, a->signed_headers, sizeof names);
    for (char *save = NULL, *name = strtok_r(names, ";", &save); name;
         name = strtok_r(NULL, ";", &save)) {
        int found = 0;
        for (size_t i = 0; i < r->n_headers && n < FA_MAX_HEADERS; i++) {
            if (strcasecmp(r->headers[i].name, name) == 0) {
                hs[n].name = name;
                hs[n].value = r->headers[i].value;
                n++;
                found = 1;
            }
        }
        if (!found) {
            snprintf(msg, cap,
                     "The request signature we calculated does not match the signature "
                     "you provided: signed header %.40s is missing.",
                     name);
            return -1;
        }
    }
    time_t t;
    if (parse_amz_date(header(r, "x-amz-date"), &t) < 0) {
        snprintf(msg, cap, "Authorization header requires existence of a valid 'X-Amz-Date'.");
        return -1;
    }
    time_t now = time(NULL);
    if (t > now + MAX_SKEW_S || t < now - MAX_SKEW_S) {
        snprintf(msg, cap, "Signature expired: %s is now earlier than the allowed window.",
                 header(r, "x-amz-date"));
        return -1;
    }
    struct sigv4_params p = {.access_key_id = a->akid,
                             .secret_access_key = cr->secret,
                             .region = a->region,
                             .service = a->service,
                             .now = t,
                             .cache = &cr->keys};
    struct sigv4_request sr = {.method = r->method,
                               .path = r->path,
                               .query = r->query,
                               .headers = hs,
                               .n_headers = n,
                               .body = r->body,
                               .body_len = r->body_len};
    char expect[2048];
    struct err e;
    err_clear(&e);
    if (sigv4_authorization(&p, &sr, expect, sizeof expect, &e) < 0) {
        snprintf(msg, cap, "The request could not be signed again: %.180s", e.message);
        return -1;
    }
    const char *sig = strstr(expect, "Signature=");
    if (!sig || strlen(sig + 10) != strlen(a->signature) ||
        CRYPTO_memcmp(sig + 10, a->signature, strlen(a->signature)) != 0) {
        snprintf(msg, cap,
                 "The request signature we calculated does not match the signature you "
                 "provided. Check your AWS Secret Access Key and signing method. "
                 "Consult the service documentation for details.");
        return -1;
    }
    return 0;
}

/* Who is calling: the management account for the base key, the account inside an assumed-role
 * key. Answers an error and returns -1 when the credentials are refused. */
static int authenticate(struct ctx *c)
{
    struct fa_app *app = c->app;
    const struct fa_request *r = c->req;
    const int verify = app->opt.verify_sigv4;
    static const char *const bad_token[] = {[P_REST_JSON] = "UnrecognizedClientException",
                                            [P_JSON11] = "UnrecognizedClientException",
                                            [P_QUERY] = "InvalidClientTokenId",
                                            [P_EC2] = "AuthFailure"};
    static const int bad_token_status[] = {
        [P_REST_JSON] = 403, [P_JSON11] = 400, [P_QUERY] = 403, [P_EC2] = 401};
    static const char *const expired[] = {[P_REST_JSON] = "ExpiredTokenException",
                                          [P_JSON11] = "ExpiredTokenException",
                                          [P_QUERY] = "ExpiredToken",
                                          [P_EC2] = "RequestExpired"};
    static const int expired_status[] = {
        [P_REST_JSON] = 403, [P_JSON11] = 400, [P_QUERY] = 400, [P_EC2] = 400};
    static const char *const bad_sig[] = {[P_REST_JSON] = "InvalidSignatureException",
                                          [P_JSON11] = "InvalidSignatureException",
                                          [P_QUERY] = "SignatureDoesNotMatch",
                                          [P_EC2] = "SignatureDoesNotMatch"};
    static const int bad_sig_status[] = {
        [P_REST_JSON] = 403, [P_JSON11] = 400, [P_QUERY] = 403, [P_EC2] = 403};
    const int p = c->proto;

    c->caller = -1;
    if (!c->auth.present) {
        if (verify) {
            send_error(c, p == P_EC2 ? 401 : 403,
                       p == P_REST_JSON || p == P_JSON11 ? "MissingAuthenticationTokenException"
                                                         : "MissingAuthenticationToken",
                       FA_E_BAD_TOKEN, NULL, "Request is missing Authentication Token");
            return -1;
        }
        c->caller = 0;
        return 0;
    }
    const char *akid = c->auth.akid;
    const char *token = header(r, "x-amz-security-token");
    struct fa_cred *cr;
    if (strcmp(akid, app->opt.base_access_key) == 0) {
        c->caller = 0;
        cr = cred_slot(c->w, akid);
        if (strcmp(cr->akid, akid) != 0)
            cred_fill(cr, akid, "", 0, app->opt.base_secret_key);
    } else if (strncmp(akid, "ASIA", 4) == 0 && strlen(akid) == 20 &&
               (c->caller = fleet_find_account(&app->fleet, akid + 4, 12)) >= 0) {
        /* a session token is checked (one HMAC) the first time this thread sees it */
        cr = cred_slot(c->w, akid);
        if (!token || strcmp(cr->akid, akid) != 0 || strlen(token) < sizeof cr->token_head ||
            memcmp(cr->token_head, token, sizeof cr->token_head) != 0) {
            time_t expiry;
            if (!token || check_session_token(app, token, akid, &expiry) < 0) {
                send_error(c, bad_token_status[p], bad_token[p], FA_E_BAD_TOKEN, NULL,
                           "The security token included in the request is invalid.");
                return -1;
            }
            char secret[41];
            derive_secret(app, akid, secret);
            cred_fill(cr, akid, token, expiry, secret);
            OPENSSL_cleanse(secret, sizeof secret);
        }
        if (cr->expiry <= time(NULL)) {
            send_error(c, expired_status[p], expired[p], FA_E_EXPIRED, NULL,
                       "The security token included in the request is expired");
            return -1;
        }
    } else {
        if (verify) {
            send_error(c, bad_token_status[p], bad_token[p], FA_E_BAD_TOKEN, NULL,
                       "The security token included in the request is invalid.");
            return -1;
        }
        c->caller = 0; /* lenient: any other key acts for the management account */
        return 0;
    }
    if (verify) {
        char msg[256];
        if (verify_signature(c, cr, msg, sizeof msg) < 0) {
            send_error(c, bad_sig_status[p], bad_sig[p], FA_E_SIGNATURE, NULL, "%s", msg);
            return -1;
        }
    }
    return 0;
}

/* ---- pagination tokens: opaque base64 of (kind, key, offset, check) ---- */

static void token_make(const struct fa_app *app, unsigned kind, uint32_t key, uint32_t offset,
                       char out[32])
{
    unsigned char raw[16];
    raw[0] = (unsigned char)kind;
    for (int i = 0; i < 4; i++) {
        raw[1 + i] = (unsigned char)(key >> (24 - 8 * i));
        raw[5 + i] = (unsigned char)(offset >> (24 - 8 * i));
    }
    uint64_t chk = fa_mix(app->opt.fleet.seed ^ ((uint64_t)kind << 56) ^ ((uint64_t)key << 24) ^
                          ((uint64_t)offset * 0x9e3779b97f4a7c15ULL));
    for (int i = 0; i < 7; i++)
        raw[9 + i] = (unsigned char)(chk >> (8 * i));
    b64_encode(raw, sizeof raw, out);
}

/* 0 with *offset when tok is a token of (kind, key); -1 otherwise. */
static int token_parse(const struct fa_app *app, const char *tok, unsigned kind, uint32_t key,
                       uint32_t *offset)
{
    unsigned char raw[17];
    if (b64_decode(tok, strlen(tok), raw, sizeof raw) != 16 || raw[0] != kind)
        return -1;
    uint32_t k = 0, o = 0;
    for (int i = 0; i < 4; i++) {
        k = k << 8 | raw[1 + i];
        o = o << 8 | raw[5 + i];
    }
    char again[32];
    token_make(app, kind, k, o, again);
    if (k != key || strcmp(again, tok) != 0)
        return -1;
    *offset = o;
    return 0;
}

/* ---- Organizations (awsJson1_1) ---- */

static void org_arn(const struct fa_fleet *f, struct buf *b, const char *kind, const char *id)
{
    fa_printf(b, "\"arn:aws:organizations::%s:%s/%s/%s\"", f->accounts[0].id, kind, f->org_id, id);
}

static void org_account_json(const struct fa_fleet *f, struct buf *b, size_t i)
{
    const struct fa_account *a = &f->accounts[i];
    const char *st = a->suspended ? "SUSPENDED" : "ACTIVE";
    fa_printf(b, "{\"Id\":\"%s\",\"Arn\":", a->id);
    org_arn(f, b, "account", a->id);
    buf_puts(b, ",\"Email\":");
    fa_json_str(b, a->email, strlen(a->email));
    buf_puts(b, ",\"Name\":");
    fa_json_str(b, a->name, strlen(a->name));
    fa_printf(b,
              ",\"Status\":\"%s\",\"State\":\"%s\",\"JoinedMethod\":\"%s\","
              "\"JoinedTimestamp\":%.3f}",
              st, st, i == 0 || i % 7 == 3 ? "INVITED" : "CREATED", a->joined);
}

struct org_args {
    json_t *root; /* new */
    int max;
    const char *token;
};

static int org_page(struct ctx *c, struct org_args *a, unsigned kind, uint32_t key, uint32_t total,
                    uint32_t *start, uint32_t *end)
{
    uint32_t off = 0;
    if (a->token && token_parse(c->app, a->token, kind, key, &off) < 0) {
        send_error(c, 400, "InvalidInputException", FA_E_INVALID, NULL,
                   "You provided an invalid value for parameter NextToken.");
        return -1;
    }
    if (off > total)
        off = total;
    *start = off;
    *end = off + (uint32_t)a->max < total ? off + (uint32_t)a->max : total;
    return 0;
}

static void org_page_end(struct ctx *c, unsigned kind, uint32_t key, uint32_t end, uint32_t total)
{
    struct buf *b = &c->w->body;
    buf_puts(b, "]");
    if (end < total) {
        char tok[32];
        token_make(c->app, kind, key, end, tok);
        fa_printf(b, ",\"NextToken\":\"%s\"", tok);
    }
    buf_puts(b, "}");
}

static long find_node(const struct fa_fleet *f, const char *id)
{
    for (size_t i = 0; i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

static long find_policy(const struct fa_fleet *f, const char *id)
{
    for (size_t i = 0; i < f->n_scps; i++)
        if (strcmp(f->scps[i].id, id) == 0)
            return (long)i;
    return -1;
}

static const char *org_string(struct ctx *c, struct org_args *a, const char *key)
{
    json_t *v = json_object_get(a->root, key); /* borrowed */
    if (!json_is_string(v)) {
        send_error(c, 400, "InvalidInputException", FA_E_INVALID, NULL,
                   "You provided a value that does not match the required pattern: %s is "
                   "missing or not a string.",
                   key);
        return NULL;
    }
    return json_string_value(v);
}

static void handle_org(struct ctx *c)
{
    const struct fa_fleet *f = &c->app->fleet;
    struct buf *b = &c->w->body;
    struct org_args a = {NULL, ORG_MAX_RESULTS, NULL};
    if (c->caller != 0) {
        send_error(c, 400, "AccessDeniedException", FA_E_ACCESS_DENIED, NULL,
                   "You don't have permissions to access this resource.");
        return;
    }
    if (c->req->body_len) {
        json_error_t je;
        a.root = json_loadb(c->req->body, c->req->body_len, 0, &je);
    } else {
        a.root = json_object();
    }
    if (!json_is_object(a.root)) {
        send_error(c, 400, "SerializationException", FA_E_INVALID, NULL,
                   "Start of structure or map found where not expected.");
        goto out;
    }
    json_t *mr = json_object_get(a.root, "MaxResults"); /* borrowed */
    if (mr) {
        if (!json_is_integer(mr) || json_integer_value(mr) < 1 ||
            json_integer_value(mr) > ORG_MAX_RESULTS) {
            send_error(c, 400, "InvalidInputException", FA_E_INVALID, NULL,
                       "You specified an invalid value for MaxResults: it must be between 1 and "
                       "%d.",
                       ORG_MAX_RESULTS);
            goto out;
        }
        a.max = (int)json_integer_value(mr);
    }
    json_t *nt = json_object_get(a.root, "NextToken"); /* borrowed */
    if (json_is_string(nt))
        a.token = json_string_value(nt);
    buf_reset(b);
    uint32_t s, e;
    const char *id;
    long idx;
    switch (c->op) {
    case FA_OP_DESCRIBE_ORGANIZATION:
        buf_puts(b, f->describe_org_body);
        break;
    case FA_OP_LIST_ROOTS:
        buf_puts(b, f->list_roots_body);
        break;
    case FA_OP_LIST_OUS:
    case FA_OP_LIST_ACCOUNTS_FOR_PARENT: {
        if (!(id = org_string(c, &a, "ParentId")))
            goto out;
        if ((idx = find_node(f, id)) < 0) {
            send_error(c, 400, "ParentNotFoundException", FA_E_NOT_FOUND, NULL,
                       "We can't find a root or OU with the ParentId that you specified.");
            goto out;
        }
        const struct fa_node *n = &f->nodes[idx];
        int ous = c->op == FA_OP_LIST_OUS;
        uint32_t total = ous ? n->ou_count : n->acct_count;
        if (org_page(c, &a, (unsigned)c->op, (uint32_t)idx, total, &s, &e) < 0)
            goto out;
        buf_puts(b, ous ? "{\"OrganizationalUnits\":[" : "{\"Accounts\":[");
        for (uint32_t i = s; i < e; i++) {
            if (i > s)
                buf_putc(b, ',');
            if (ous) {
                const struct fa_node *o = &f->nodes[f->child_ous[n->ou_start + i]];
                fa_printf(b, "{\"Id\":\"%s\",\"Arn\":", o->id);
                org_arn(f, b, "ou", o->id);
                buf_puts(b, ",\"Name\":");
                fa_json_str(b, o->name, strlen(o->name));
                buf_puts(b, "}");
            } else {
                org_account_json(f, b, f->child_accounts[n->acct_start + i]);
            }
        }
        org_page_end(c, (unsigned)c->op, (uint32_t)idx, e, total);
        break;
    }
    case FA_OP_LIST_ACCOUNTS:
        if (org_page(c, &a, FA_OP_LIST_ACCOUNTS, 0, (uint32_t)f->n_accounts, &s, &e) < 0)
            goto out;
        buf_puts(b, "{\"Accounts\":[");
        for (uint32_t i = s; i < e; i++) {
            if (i > s)
                buf_putc(b, ',');
            org_account_json(f, b, i);
        }
        org_page_end(c, FA_OP_LIST_ACCOUNTS, 0, e, (uint32_t)f->n_accounts);
        break;
    case FA_OP_LIST_POLICIES: {
        if (!(id = org_string(c, &a, "Filter")))
            goto out;
        uint32_t total = strcmp(id, "SERVICE_CONTROL_POLICY") == 0 ? (uint32_t)f->n_scps : 0;
        if (org_page(c, &a, FA_OP_LIST_POLICIES, 0, total, &s, &e) < 0)
            goto out;
        buf_puts(b, "{\"Policies\":[");
        for (uint32_t i = s; i < e; i++) {
            const struct fa_scp *p = &f->scps[i];
            if (i > s)
                buf_putc(b, ',');
            fa_printf(b, "{\"Id\":\"%s\",\"Arn\":\"%s\",\"Name\":", p->id, p->arn);
            fa_json_str(b, p->name, strlen(p->name));
            buf_puts(b, ",\"Description\":");
            fa_json_str(b, p->description, strlen(p->description));
            fa_printf(b, ",\"Type\":\"SERVICE_CONTROL_POLICY\",\"AwsManaged\":%s}",
                      p->aws_managed ? "true" : "false");
        }
        org_page_end(c, FA_OP_LIST_POLICIES, 0, e, total);
        break;
    }
    case FA_OP_DESCRIBE_POLICY:
    case FA_OP_LIST_TARGETS: {
        if (!(id = org_string(c, &a, "PolicyId")))
            goto out;
        if ((idx = find_policy(f, id)) < 0) {
            send_error(c, 400, "PolicyNotFoundException", FA_E_NOT_FOUND, NULL,
                       "We can't find a policy with the PolicyId that you specified.");
            goto out;
        }
        const struct fa_scp *p = &f->scps[idx];
        if (c->op == FA_OP_DESCRIBE_POLICY) {
            buf_puts(b, p->describe_body);
            break;
        }
        uint32_t total = (uint32_t)p->n_targets;
        if (org_page(c, &a, FA_OP_LIST_TARGETS, (uint32_t)idx, total, &s, &e) < 0)
            goto out;
        buf_puts(b, "{\"Targets\":[");
        for (uint32_t i = s; i < e; i++) {
            const struct fa_scp_target *t = &p->targets[i];
            if (i > s)
                buf_putc(b, ',');
            if (t->kind == FA_TARGET_ACCOUNT) {
                const struct fa_account *acc = &f->accounts[t->idx];
                fa_printf(b, "{\"TargetId\":\"%s\",\"Arn\":", acc->id);
                org_arn(f, b, "account", acc->id);
                buf_puts(b, ",\"Name\":");
                fa_json_str(b, acc->name, strlen(acc->name));
                buf_puts(b, ",\"Type\":\"ACCOUNT\"}");
            } else {
                const struct fa_node *n = &f->nodes[t->idx];
                fa_printf(b, "{\"TargetId\":\"%s\",\"Arn\":", n->id);
                org_arn(f, b, t->idx == 0 ? "root" : "ou", n->id);
                buf_puts(b, ",\"Name\":");
                fa_json_str(b, n->name, strlen(n->name));
                fa_printf(b, ",\"Type\":\"%s\"}", t->idx == 0 ? "ROOT" : "ORGANIZATIONAL_UNIT");
            }
        }
        org_page_end(c, FA_OP_LIST_TARGETS, (uint32_t)idx, e, total);
        break;
    }
    default:
        send_error(c, 400, "UnknownOperationException", FA_E_INVALID, NULL,
                   "The action or operation requested is invalid.");
        goto out;
    }
    send_ok(c);
out:
    json_decref(a.root);
}

/* ---- STS AssumeRole (awsQuery) ---- */

static void handle_assume_role(struct ctx *c)
{
    struct fa_app *app = c->app;
    const struct fa_request *r = c->req;
    char arn[512], session[128], dur[32];
    long al = param_get(r->body, r->body_len, "RoleArn", 1, arn, sizeof arn);
    long sl = param_get(r->body, r->body_len, "RoleSessionName", 1, session, sizeof session);
    long dl = param_get(r->body, r->body_len, "DurationSeconds", 1, dur, sizeof dur);
    if (al < 20) {
        send_error(c, 400, "ValidationError", FA_E_INVALID, NULL,
                   "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: "
                   "Member must have length greater than or equal to 20");
        return;
    }
    if (sl < 2 || sl > 64) {
        send_error(c, 400, "ValidationError", FA_E_INVALID, NULL,
                   "1 validation error detected: Value at 'roleSessionName' failed to satisfy "
                   "constraint: Member must have length between 2 and 64");
        return;
    }
    long duration = 3600;
    if (dl >= 0) {
        char *end;
        duration = strtol(dur, &end, 10);
        if (*end || duration < 900 || duration > 43200) {
            send_error(c, 400, "ValidationError", FA_E_INVALID, NULL,
                       "1 validation error detected: Value '%.20s' at 'durationSeconds' failed "
                       "to satisfy constraint: Member must have value between 900 and 43200",
                       dur);
            return;
        }
    }
    /* arn:aws:iam::123456789012:role/NAME (paths allowed: role/path/NAME) */
    const char *acct = NULL, *role = NULL;
    if (strncmp(arn, "arn:aws:iam::", 13) == 0 && strlen(arn) > 13 + 12 + 6 &&
        memcmp(arn + 25, ":role/", 6) == 0) {
        acct = arn + 13;
        role = strrchr(arn + 31, '/');
        role = role ? role + 1 : arn + 31;
    }
    if (!acct || !*role) {
        send_error(c, 400, "ValidationError", FA_E_INVALID, NULL, "%.200s is invalid", arn);
        return;
    }
    long target = c->account;
    if (target < 0 || app->fleet.accounts[target].suspended) {
        send_error(c, 403, "AccessDenied", FA_E_ACCESS_DENIED, NULL,
                   "User: arn:aws:iam::%s:user/fakeaws is not authorized to perform: "
                   "sts:AssumeRole on resource: %.200s",
                   app->fleet.accounts[0].id, arn);
        return;
    }
    char akid[21], secret[41];
    char *token = malloc(SESSION_TOKEN_RAW * 4 / 3 + 8);
    if (!token) {
        send_error(c, 500, "InternalFailure", -1, NULL, "out of memory");
        return;
    }
    make_akid(app, app->fleet.accounts[target].id, akid);
    derive_secret(app, akid, secret);
    long life = app->opt.credential_lifetime_s > 0 ? app->opt.credential_lifetime_s : duration;
    time_t expiry = time(NULL) + life;
    make_session_token(app, akid, expiry, token);
    if (app->credentials_log_fd >= 0)
        log_credential(app->credentials_log_fd, akid, secret, token);
    char exp_text[32];
    struct tm tm;
    gmtime_r(&expiry, &tm);
    strftime(exp_text, sizeof exp_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char role_id[18];
    uint64_t h = fa_mix(app->fleet.accounts[target].id_num ^ 0x726f6c65ULL);
    for (int i = 0; i < 17; i++) {
        role_id[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[h & 31];
        h >>= 5;
        if (i == 11)
            h = fa_mix(h ^ 0x1234);
    }
    role_id[17] = '\0';

    struct buf *b = &c->w->body;
    buf_reset(b);
    buf_puts(b, "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                "  <AssumeRoleResult>\n    <AssumedRoleUser>\n      <AssumedRoleId>AROA");
    fa_printf(b, "%s:", role_id);
    fa_xml_str(b, session, (size_t)sl);
    fa_printf(b, "</AssumedRoleId>\n      <Arn>arn:aws:sts::%s:assumed-role/",
              app->fleet.accounts[target].id);
    fa_xml_str(b, role, strlen(role));
    buf_putc(b, '/');
    fa_xml_str(b, session, (size_t)sl);
    fa_printf(b,
              "</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n"
              "      <AccessKeyId>%s</AccessKeyId>\n"
              "      <SecretAccessKey>%s</SecretAccessKey>\n"
              "      <SessionToken>%s</SessionToken>\n"
              "      <Expiration>%s</Expiration>\n    </Credentials>\n"
              "    <PackedPolicySize>6</PackedPolicySize>\n  </AssumeRoleResult>\n"
              "  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n"
              "</AssumeRoleResponse>\n",
              akid, secret, token, exp_text, c->reqid);
    OPENSSL_cleanse(secret, sizeof secret);
    free(token);
    send_ok(c);
}

/* ---- EC2 DescribeRegions ---- */

static void handle_describe_regions(struct ctx *c)
{
    struct buf *b = &c->w->body;
    buf_reset(b);
    fa_printf(b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeRegionsResponse xmlns=\""
              "http://ec2.amazonaws.com/doc/2016-11-15/\">\n    <requestId>%s",
              c->reqid);
    buf_puts(b, c->app->fleet.describe_regions_tail);
    send_ok(c);
}

/* ---- EKS (restJson1) ---- */

static long region_index(const struct fa_fleet *f, const char *region)
{
    for (size_t i = 0; i < f->n_regions; i++)
        if (strcmp(f->regions[i], region) == 0)
            return (long)i;
    return -1;
}

static void not_found_cluster(struct ctx *c, const char *name, long nl)
{
    struct buf extra;
    buf_init(&extra);
    buf_puts(&extra, "\"clusterName\":");
    fa_json_str(&extra, name, nl > 0 ? (size_t)nl : 0);
    send_error(c, 404, "ResourceNotFoundException", FA_E_NOT_FOUND, extra.data,
               "No cluster found for name: %.200s.", nl > 0 ? name : "");
    buf_cleanup(&extra);
}

/* ListUpdates (rest: "/updates") and DescribeUpdate (rest: "/updates/ID") of the cluster name
 * among the target's clusters [first, first + total). */
static void handle_updates(struct ctx *c, uint32_t first, uint32_t total, const char *name, long nl,
                           const char *rest)
{
    const struct fa_fleet *f = &c->app->fleet;
    const struct fa_request *r = c->req;
    uint32_t ci = UINT32_MAX;
    for (uint32_t i = 0; nl > 0 && i < total; i++)
        if (!f->clusters[first + i].hidden && strcmp(f->clusters[first + i].name, name) == 0)
            ci = first + i;
    if (ci == UINT32_MAX) {
        not_found_cluster(c, name, nl);
        return;
    }
    struct fa_update u[FA_CLUSTER_UPDATES_MAX];
    size_t n = updates_of(f->updates, f, ci, u);
    struct buf *b = &c->w->body;
    buf_reset(b);
    if (c->op == FA_OP_DESCRIBE_UPDATE) {
        const char *id = rest + strlen("/updates/");
        for (size_t i = 0; i < n; i++) {
            if (strcmp(u[i].id, id) != 0)
                continue;
            fa_printf(b,
                      "{\"update\":{\"id\":\"%s\",\"status\":\"%s\",\"type\":\"%s\","
                      "\"params\":[{\"type\":\"%s\",\"value\":\"%s\"}],\"createdAt\":%ld,"
                      "\"errors\":[",
                      u[i].id, u[i].status, u[i].type, u[i].param_type, u[i].value,
                      u[i].created_at);
            if (strcmp(u[i].status, "Failed") == 0)
                buf_puts(b, "{\"errorCode\":\"Unknown\",\"errorMessage\":\"The update could not "
                            "be completed.\",\"resourceIds\":[]}");
            buf_puts(b, "]}}");
            send_ok(c);
            return;
        }
        send_error(c, 404, "ResourceNotFoundException", FA_E_NOT_FOUND, NULL,
                   "No update found for ID: %.64s", id);
        return;
    }
    char v[256];
    long max = EKS_MAX_RESULTS;
    size_t ql = r->query ? strlen(r->query) : 0;
    if (param_get(r->query, ql, "maxResults", 0, v, sizeof v) >= 0) {
        char *end;
        max = strtol(v, &end, 10);
        if (*end || max < 1 || max > EKS_MAX_RESULTS) {
            send_error(c, 400, "InvalidParameterException", FA_E_INVALID, NULL,
                       "maxResults must be between 1 and %d", EKS_MAX_RESULTS);
            return;
        }
    }
    uint32_t off = 0;
    long tl = param_get(r->query, ql, "nextToken", 0, v, sizeof v);
    if (tl >= 0 && (tl == 0 || token_parse(c->app, v, 0x41, ci, &off) < 0)) {
        send_error(c, 400, "InvalidParameterException", FA_E_INVALID, NULL,
                   "The nextToken provided is invalid");
        return;
    }
    size_t end = off + (size_t)max < n ? off + (size_t)max : n;
    buf_puts(b, "{\"updateIds\":[");
    for (size_t i = off; i < end; i++)
        fa_printf(b, "%s\"%s\"", i > off ? "," : "", u[i].id);
    buf_putc(b, ']');
    if (end < n) {
        char tok[32];
        token_make(c->app, 0x41, ci, (uint32_t)end, tok);
        fa_printf(b, ",\"nextToken\":\"%s\"", tok);
    } else {
        buf_puts(b, ",\"nextToken\":null");
    }
    buf_putc(b, '}');
    send_ok(c);
}

static void handle_eks(struct ctx *c)
{
    const struct fa_fleet *f = &c->app->fleet;
    const struct fa_request *r = c->req;
    long ri = region_index(f, c->region);
    if (ri < 0) {
        /* what EKS answers in a region the account has not enabled */
        send_error(c, 403, "UnrecognizedClientException", FA_E_BAD_TOKEN, NULL,
                   "The security token included in the request is invalid");
        return;
    }
    size_t t = (size_t)c->caller * f->n_regions + (size_t)ri;
    uint32_t first = f->target_start[t], total = f->target_start[t + 1] - first;
    struct buf *b = &c->w->body;
    int hk = hostile_kind(&c->app->hostile, c->caller);
    if (c->op == FA_OP_LIST_CLUSTERS && hk == FA_H_ERROR_UTF8) {
        /* a byte-bounded copy of 300 bytes cuts the "é" at bytes 300-301 in half */
        char m[320];
        memset(m, 'x', 299);
        memcpy(m + 299, "\xc3\xa9 and more", 12);
        m[311] = '\0';
        send_error(c, 400, "InvalidRequestException", FA_E_INVALID, NULL, "%s", m);
        return;
    }
    if (c->op == FA_OP_LIST_CLUSTERS) {
        char v[256];
        long max = EKS_MAX_RESULTS;
        size_t ql = r->query ? strlen(r->query) : 0;
        if (param_get(r->query, ql, "maxResults", 0, v, sizeof v) >= 0) {
            char *end;
            max = strtol(v, &end, 10);
            if (*end || max < 1 || max > EKS_MAX_RESULTS) {
                send_error(c, 400, "InvalidParameterException", FA_E_INVALID, NULL,
                           "maxResults must be between 1 and %d", EKS_MAX_RESULTS);
                return;
            }
        }
        uint32_t off = 0;
        long tl = param_get(r->query, ql, "nextToken", 0, v, sizeof v);
        if (hk == FA_H_LOOP_TOKEN && tl > 0 && strcmp(v, "same") == 0)
            tl = -1; /* its own token: the first page again */
        if (tl >= 0 && (tl == 0 || token_parse(c->app, v, 0x40, (uint32_t)t, &off) < 0)) {
            send_error(c, 400, "InvalidParameterException", FA_E_INVALID, NULL,
                       "The nextToken provided is invalid");
            return;
        }
        if (off > total)
            off = total;
        uint32_t end = off + (uint32_t)max < total ? off + (uint32_t)max : total;
        buf_reset(b);
        buf_puts(b, "{\"clusters\":[");
        int listed = 0;
        for (uint32_t i = off; i < end; i++) {
            if (f->clusters[first + i].hidden)
                continue; /* --before: created later */
            if (listed++)
                buf_putc(b, ',');
            const char *name = f->clusters[first + i].name;
            fa_json_str(b, name, strlen(name));
        }
        if (hk == FA_H_LONG_NAME && end == total)
            fa_printf(b, "%s\"%s\"", listed ? "," : "", fa_hostile_long_name);
        buf_putc(b, ']');
        if (hk == FA_H_LOOP_TOKEN) {
            buf_puts(b, ",\"nextToken\":\"same\"");
        } else if (end < total) {
            char tok[32];
            token_make(c->app, 0x40, (uint32_t)t, end, tok);
            fa_printf(b, ",\"nextToken\":\"%s\"", tok);
        }
        buf_putc(b, '}');
        send_ok(c);
        return;
    }
    /* DescribeCluster: /clusters/{name}; ListUpdates /clusters/{name}/updates; DescribeUpdate
     * /clusters/{name}/updates/{id} */
    char name[512];
    const char *enc = r->path + strlen("/clusters/");
    size_t enc_len = strcspn(enc, "/");
    long nl = url_decode(enc, enc_len, 0, name, sizeof name);
    if (c->op == FA_OP_LIST_UPDATES || c->op == FA_OP_DESCRIBE_UPDATE) {
        handle_updates(c, first, total, name, nl, enc + enc_len);
        return;
    }
    if (hk == FA_H_LONG_NAME && nl > 0 && strcmp(name, fa_hostile_long_name) == 0) {
        if (hostile_render_long(f, c->caller, (size_t)ri, b) < 0) {
            send_error(c, 500, "ServerException", -1, NULL, "out of memory");
            return;
        }
        send_ok(c);
        return;
    }
    for (uint32_t i = 0; nl > 0 && i < total; i++) {
        const struct fa_cluster *cl = &f->clusters[first + i];
        if (!cl->hidden && strcmp(cl->name, name) == 0) {
            if (fleet_render_cluster(f, cl, b) < 0 ||
                hostile_patch_cluster(f, &c->app->hostile, hk, c->caller, (size_t)ri, b) < 0) {
                send_error(c, 500, "ServerException", -1, NULL, "out of memory");
                return;
            }
            send_ok(c);
            return;
        }
    }
    struct buf extra;
    buf_init(&extra);
    buf_puts(&extra, "\"clusterName\":");
    fa_json_str(&extra, name, nl > 0 ? (size_t)nl : 0);
    send_error(c, 404, "ResourceNotFoundException", FA_E_NOT_FOUND, extra.data,
               "No cluster found for name: %.200s.", nl > 0 ? name : "");
    buf_cleanup(&extra);
}

/* ---- the control endpoints ---- */

int stats_json(const struct fa_app *app, int with_accounts, struct buf *b)
{
    const struct fa_stats *s = &app->stats;
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    fa_printf(b, "{\"requests\":%lu,\"operations\":{", LD(s->requests));
    for (int i = 0; i < FA_OP_COUNT; i++)
        fa_printf(b, "%s\"%s\":%lu", i ? "," : "", fa_op_names[i], LD(s->ops[i]));
    buf_puts(b, "},\"faults\":{");
    for (int i = 0; i < FA_F_COUNT; i++)
        fa_printf(b, "%s\"%s\":%lu", i ? "," : "", fa_fault_names[i], LD(s->faults[i]));
    buf_puts(b, "},\"errors\":{");
    for (int i = 0; i < FA_E_COUNT; i++)
        fa_printf(b, "%s\"%s\":%lu", i ? "," : "", fa_errkind_names[i], LD(s->errors[i]));
    fa_printf(b,
              "},\"status\":{\"2xx\":%lu,\"4xx\":%lu,\"5xx\":%lu},\"connections\":%lu,"
              "\"tls_handshakes\":%lu,\"tls_resumed\":%lu",
              LD(s->status_2xx), LD(s->status_4xx), LD(s->status_5xx), LD(s->connections),
              LD(s->tls_handshakes), LD(s->tls_resumed));
    if (with_accounts) {
        buf_puts(b, ",\"accounts\":{");
        int first = 1;
        for (size_t i = 0; i < s->n_accounts; i++) {
            unsigned long rq = LD(s->acct_requests[i]), th = LD(s->acct_throttles[i]);
            if (!rq)
                continue;
            fa_printf(b, "%s\"%s\":{\"requests\":%lu,\"throttle\":%lu}", first ? "" : ",",
                      app->fleet.accounts[i].id, rq, th);
            first = 0;
        }
        buf_puts(b, "}");
    }
#undef LD
    return buf_puts(b, "}\n");
}

static void stats_reset(struct fa_app *app)
{
    struct fa_stats *s = &app->stats;
#define ZERO(x) atomic_store_explicit(&(x), 0, memory_order_relaxed)
    ZERO(s->requests);
    for (int i = 0; i < FA_OP_COUNT; i++)
        ZERO(s->ops[i]);
    for (int i = 0; i < FA_F_COUNT; i++)
        ZERO(s->faults[i]);
    for (int i = 0; i < FA_E_COUNT; i++)
        ZERO(s->errors[i]);
    ZERO(s->status_2xx);
    ZERO(s->status_4xx);
    ZERO(s->status_5xx);
    for (size_t i = 0; i < s->n_accounts; i++) {
        ZERO(s->acct_requests[i]);
        ZERO(s->acct_throttles[i]);
    }
#undef ZERO
}

void stats_summary(const struct fa_app *app, FILE *out)
{
    const struct fa_stats *s = &app->stats;
    fprintf(out, "fakeaws: served %lu requests (",
            atomic_load_explicit(&s->requests, memory_order_relaxed));
    int first = 1;
    for (int i = 0; i < FA_OP_COUNT; i++) {
        unsigned long n = atomic_load_explicit(&s->ops[i], memory_order_relaxed);
        if (n) {
            fprintf(out, "%s%s=%lu", first ? "" : " ", fa_op_names[i], n);
            first = 0;
        }
    }
    fprintf(out, "); faults injected:");
    for (int i = 0; i < FA_F_COUNT; i++)
        fprintf(out, " %s=%lu", fa_fault_names[i],
                atomic_load_explicit(&s->faults[i], memory_order_relaxed));
    fprintf(out, "\n");
    fflush(out);
}

static void handle_control(struct ctx *c)
{
    struct buf *b = &c->w->body;
    const struct fa_request *r = c->req;
    buf_reset(b);
    if (strcmp(r->path, "/fakeaws/stats") == 0 && strcmp(r->method, "GET") == 0) {
        int with_accounts = r->query && strstr(r->query, "accounts=1") != NULL;
        stats_json(c->app, with_accounts, b);
        send_ok(c);
    } else if (strcmp(r->path, "/fakeaws/reset-stats") == 0 && strcmp(r->method, "POST") == 0) {
        stats_reset(c->app);
        buf_puts(b, "{\"reset\":true}\n");
        send_ok(c);
    } else {
        send_error(c, 404, "NotFound", -1, NULL, "unknown fakeaws endpoint %.100s", r->path);
    }
}

/* ---- routing ---- */

static enum fa_op org_op(const char *target)
{
    static const struct {
        const char *name;
        enum fa_op op;
    } ops[] = {{"DescribeOrganization", FA_OP_DESCRIBE_ORGANIZATION},
               {"ListRoots", FA_OP_LIST_ROOTS},
               {"ListOrganizationalUnitsForParent", FA_OP_LIST_OUS},
               {"ListAccountsForParent", FA_OP_LIST_ACCOUNTS_FOR_PARENT},
               {"ListAccounts", FA_OP_LIST_ACCOUNTS},
               {"ListPolicies", FA_OP_LIST_POLICIES},
               {"DescribePolicy", FA_OP_DESCRIBE_POLICY},
               {"ListTargetsForPolicy", FA_OP_LIST_TARGETS}};
    const char *dot = target ? strchr(target, '.') : NULL;
    if (!dot || strncmp(target, "AWSOrganizationsV20161128.", 26) != 0)
        return FA_OP_UNKNOWN;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(dot + 1, ops[i].name) == 0)
            return ops[i].op;
    return FA_OP_UNKNOWN;
}

/* Sets c->proto and c->op from the credential scope, or for unsigned requests from the target,
 * the Action or the path. */
static void route(struct ctx *c)
{
    const struct fa_request *r = c->req;
    const char *svc = c->auth.present ? c->auth.service : NULL;
    const char *target = header(r, "x-amz-target");
    char action[64];
    long al = strcmp(r->method, "POST") == 0
                  ? param_get(r->body, r->body_len, "Action", 1, action, sizeof action)
                  : -1;
    if (!svc) {
        if (target)
            svc = "organizations";
        else if (al >= 0 && strcmp(action, "DescribeRegions") == 0)
            svc = "ec2";
        else if (al >= 0)
            svc = "sts";
        else
            svc = "eks";
    }
    c->op = FA_OP_UNKNOWN;
    if (strcmp(svc, "organizations") == 0) {
        c->proto = P_JSON11;
        if (strcmp(r->method, "POST") == 0)
            c->op = org_op(target);
    } else if (strcmp(svc, "sts") == 0) {
        c->proto = P_QUERY;
        if (al >= 0 && strcmp(action, "AssumeRole") == 0)
            c->op = FA_OP_ASSUME_ROLE;
    } else if (strcmp(svc, "ec2") == 0) {
        c->proto = P_EC2;
        if (al >= 0 && strcmp(action, "DescribeRegions") == 0)
            c->op = FA_OP_DESCRIBE_REGIONS;
    } else {
        c->proto = P_REST_JSON;
        if (strcmp(r->method, "GET") == 0 && strcmp(r->path, "/clusters") == 0)
            c->op = FA_OP_LIST_CLUSTERS;
        else if (strcmp(r->method, "GET") == 0 && strncmp(r->path, "/clusters/", 10) == 0 &&
                 r->path[10] && !strchr(r->path + 10, '/'))
            c->op = FA_OP_DESCRIBE_CLUSTER;
        else if (strcmp(r->method, "GET") == 0 && strncmp(r->path, "/clusters/", 10) == 0 &&
                 r->path[10] != '/' && strchr(r->path + 10, '/')) {
            const char *rest = strchr(r->path + 10, '/');
            if (strcmp(rest, "/updates") == 0)
                c->op = FA_OP_LIST_UPDATES;
            else if (strncmp(rest, "/updates/", 9) == 0 && rest[9] && !strchr(rest + 9, '/'))
                c->op = FA_OP_DESCRIBE_UPDATE;
        }
    }
}

/* The account whose target account an AssumeRole names (faults and counters follow it). */
static long assume_role_account(struct ctx *c)
{
    char arn[512];
    const struct fa_request *r = c->req;
    long al = param_get(r->body, r->body_len, "RoleArn", 1, arn, sizeof arn);
    if (al < 25 || strncmp(arn, "arn:aws:iam::", 13) != 0)
        return -1;
    return fleet_find_account(&c->app->fleet, arn + 13, 12);
}

static void apply_fault(struct ctx *c, int fault)
{
    struct fa_app *app = c->app;
    static const int throttle_status[] = {
        [P_REST_JSON] = 429, [P_JSON11] = 400, [P_QUERY] = 400, [P_EC2] = 503};
    static const char *const throttle_code[] = {[P_REST_JSON] = "ThrottlingException",
                                                [P_JSON11] = "TooManyRequestsException",
                                                [P_QUERY] = "Throttling",
                                                [P_EC2] = "RequestLimitExceeded"};
    count(&app->stats.faults[fault]);
    if (fault == FA_F_THROTTLE && c->account >= 0)
        count(&app->stats.acct_throttles[c->account]);
    const int p = c->proto;
    switch (fault) {
    case FA_F_THROTTLE:
        send_error(c, throttle_status[p], throttle_code[p], -1, NULL, "%s",
                   p == P_JSON11 ? "AWS Organizations can't complete your request because another "
                                   "request is already in progress. Try again later."
                   : p == P_EC2  ? "Request limit exceeded."
                                 : "Rate exceeded");
        break;
    case FA_F_5XX: {
        int unavailable = fa_next(&c->w->rng) & 1;
        static const char *const code500[] = {[P_REST_JSON] = "ServerException",
                                              [P_JSON11] = "ServiceException",
                                              [P_QUERY] = "InternalFailure",
                                              [P_EC2] = "InternalError"};
        static const char *const code503[] = {[P_REST_JSON] = "ServiceUnavailableException",
                                              [P_JSON11] = "ServiceException",
                                              [P_QUERY] = "ServiceUnavailable",
                                              [P_EC2] = "Unavailable"};
        send_error(c, unavailable ? 503 : 500, unavailable ? code503[p] : code500[p], -1, NULL,
                   "%s",
                   unavailable ? "The service is unavailable. Please try again later."
                               : "An internal error occurred. Please try again later.");
        break;
    }
    default:
        break;
    }
}

void api_handle(struct fa_worker *w, const struct fa_request *req, struct buf *out,
                struct fa_response *resp)
{
    struct fa_app *app = w->app;
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.app = app;
    c.req = req;
    c.out = out;
    c.resp = resp;
    c.caller = -1;
    c.account = -1;
    make_request_id(w, c.reqid);
    resp->action = FA_ACT_RESPOND;
    resp->delay_ms = 0;

    if (strncmp(req->path, "/fakeaws/", 9) == 0) {
        c.proto = P_CONTROL;
        handle_control(&c);
        return;
    }
    count(&app->stats.requests);
    int auth_ok = parse_auth(header(req, "authorization"), &c.auth) == 0;
    route(&c);
    count(&app->stats.ops[c.op]);
    resp->delay_ms = app->opt.latency_ms;

    /* who it is about: the caller, or the account an AssumeRole goes into */
    if (c.auth.present && auth_ok) {
        if (strcmp(c.auth.akid, app->opt.base_access_key) == 0)
            c.caller = 0;
        else if (strncmp(c.auth.akid, "ASIA", 4) == 0 && strlen(c.auth.akid) == 20)
            c.caller = fleet_find_account(&app->fleet, c.auth.akid + 4, 12);
    } else if (!c.auth.present) {
        c.caller = 0;
    }
    c.account = c.op == FA_OP_ASSUME_ROLE ? assume_role_account(&c) : c.caller;
    if (c.account >= 0)
        count(&app->stats.acct_requests[c.account]);

    if (app->faults.any) {
        int fault = faults_draw(faults_for(&app->faults, c.account), &w->rng);
        if (fault == FA_F_RESET) {
            count(&app->stats.faults[fault]);
            resp->action = FA_ACT_RESET;
            buf_reset(out);
            return;
        }
        if (fault == FA_F_THROTTLE || fault == FA_F_5XX) {
            apply_fault(&c, fault);
            return;
        }
        if (fault == FA_F_TRUNCATE) {
            count(&app->stats.faults[fault]);
            resp->action = FA_ACT_TRUNCATE;
        } else if (fault == FA_F_SLOW) {
            count(&app->stats.faults[fault]);
            resp->delay_ms = app->faults.slow_ms;
        }
    }

    if (c.auth.present && !auth_ok) {
        static const char *const code[] = {[P_REST_JSON] = "IncompleteSignatureException",
                                           [P_JSON11] = "IncompleteSignatureException",
                                           [P_QUERY] = "IncompleteSignature",
                                           [P_EC2] = "IncompleteSignature"};
        send_error(&c, c.proto == P_JSON11 ? 400 : 403, code[c.proto], FA_E_INVALID, NULL,
                   "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                   "parameters.");
        return;
    }
    if (authenticate(&c) < 0)
        return;
    c.region = c.auth.present ? c.auth.region : "us-east-1";
    if (c.op == FA_OP_ASSUME_ROLE) {
        handle_assume_role(&c);
    } else if (c.op == FA_OP_DESCRIBE_REGIONS) {
        handle_describe_regions(&c);
    } else if (c.op == FA_OP_LIST_CLUSTERS || c.op == FA_OP_DESCRIBE_CLUSTER ||
               c.op == FA_OP_LIST_UPDATES || c.op == FA_OP_DESCRIBE_UPDATE) {
        handle_eks(&c);
    } else if (c.op != FA_OP_UNKNOWN) {
        handle_org(&c);
    } else if (c.proto == P_QUERY || c.proto == P_EC2) {
        send_error(&c, 400, "InvalidAction", FA_E_INVALID, NULL,
                   "Could not find operation for this request.");
    } else {
        send_error(&c, c.proto == P_REST_JSON ? 404 : 400, "UnknownOperationException",
                   FA_E_INVALID, NULL, "The operation requested is not supported.");
    }
}

int worker_init(struct fa_worker *w, struct fa_app *app, unsigned id)
{
    memset(w, 0, sizeof *w);
    w->app = app;
    w->id = id;
    w->rng = fa_mix(app->faults.seed + id * 0x9e3779b97f4a7c15ULL);
    buf_init(&w->body);
    w->creds = calloc(FA_CRED_SLOTS, sizeof *w->creds);
    return w->creds ? 0 : -1;
}

void worker_cleanup(struct fa_worker *w)
{
    buf_cleanup(&w->body);
    if (w->creds)
        OPENSSL_cleanse(w->creds, FA_CRED_SLOTS * sizeof *w->creds);
    free(w->creds);
    w->creds = NULL;
}
