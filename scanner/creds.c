/* creds.c - AWS credentials objects and the AWS SDKs' default provider chain: environment, the
 * shared config/credentials files (static keys; role_arn with source_profile, credential_source or
 * web_identity_token_file), web identity (IRSA), the container endpoint (ECS, EKS Pod Identity)
 * and EC2 IMDSv2. The chain caches what it resolved and re-asks the same provider near expiry. */
#include "scanner/creds.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/isotime.h"
#include "common/log.h"
#include "scanner/http.h"
#include "scanner/sts.h"

#define FILE_MAX_BYTES (1024 * 1024) /* config, credentials and token files */
#define META_MAX_BODY (64 * 1024)    /* IMDS and container endpoint answers */
#define PROFILE_DEPTH_MAX 16         /* source_profile chain length */
#define REFRESH_GRACE_S 60           /* a failed refresh keeps creds valid this much longer */
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_DEFAULT_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL "21600"
#define ECS_CONTAINER_HOST "http://169.254.170.2"

/* ---- credentials objects ---- */

static void wipe_free(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static int header_safe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int creds_check_values(const char *access_key_id, const char *secret_access_key,
                       const char *session_token, const char *what, struct err *err)
{
    const char *bad = !header_safe(access_key_id)       ? "the access key id"
                      : !header_safe(secret_access_key) ? "the secret access key"
                      : !header_safe(session_token)     ? "the session token"
                                                        : NULL;
    if (!bad)
        return 0;
    return err_set(err, ERR_PARSE,
                   "%s: %s holds a control character, a space or a non-ASCII byte (refused: "
                   "credentials become HTTP header values)",
                   what, bad);
}

struct aws_credentials *creds_new(const char *access_key_id, const char *secret_access_key,
                                  const char *session_token, time_t expiration, const char *source)
{
    if (!access_key_id || !secret_access_key)
        return NULL;
    struct aws_credentials *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->refs = 1;
    c->expiration = expiration;
    snprintf(c->source, sizeof c->source, "%s", source ? source : "");
    c->access_key_id = strdup(access_key_id);
    c->secret_access_key = strdup(secret_access_key);
    if (session_token && *session_token)
        c->session_token = strdup(session_token);
    if (!c->access_key_id || !c->secret_access_key ||
        (session_token && *session_token && !c->session_token)) {
        creds_unref(c);
        return NULL;
    }
    return c;
}

struct aws_credentials *creds_ref(struct aws_credentials *c)
{
    if (c)
        c->refs++;
    return c;
}

void creds_unref(struct aws_credentials *c)
{
    if (!c || --c->refs > 0)
        return;
    wipe_free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    sigv4_key_cache_cleanse(&c->key_cache);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

int creds_expiring(const struct aws_credentials *c, time_t now, int window_s)
{
    if (!c || c->expiration == 0)
        return 0;
    return c->expiration <= now + window_s;
}

/* ---- small helpers ---- */

/* getenv that treats an empty value as unset, as the SDKs do. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_true(const char *name)
{
    const char *v = env(name);
    return v && strcasecmp(v, "true") == 0;
}

/* Trims ASCII whitespace at both ends, in place (moves the text to the start). */
static size_t trim_inplace(char *s, size_t len)
{
    size_t a = 0;
    while (a < len && isspace((unsigned char)s[a]))
        a++;
    while (len > a && isspace((unsigned char)s[len - 1]))
        len--;
    if (a)
        memmove(s, s + a, len - a);
    s[len - a] = '\0';
    return len - a;
}

/* Wipes what a buffer holds (it may carry secrets) and frees it. */
static void buf_wipe(struct buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    buf_cleanup(b);
}

/* Reads a whole file into b. 0 ok; 1 when it does not exist; -1 with err otherwise. */
static int read_file(const char *path, struct buf *b, const char *what, struct err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        return err_set(err, ERR_IO, "%s: cannot open %s: %s", what, path, strerror(errno));
    }
    int rc = 0;
    /* Reserving up front keeps secrets out of realloc'd (unwiped) blocks for usual sizes. */
    if (buf_reserve(b, 8192) < 0) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory", what);
        goto out;
    }
    for (;;) {
        if (b->cap - b->len < 2 && buf_reserve(b, b->cap) < 0) {
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", what);
            goto out;
        }
        size_t n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
        b->len += n;
        b->data[b->len] = '\0';
        if (b->len > FILE_MAX_BYTES) {
            rc = err_set(err, ERR_IO, "%s: %s is larger than %d bytes", what, path, FILE_MAX_BYTES);
            goto out;
        }
        if (n == 0)
            break;
    }
    if (ferror(f))
        rc = err_set(err, ERR_IO, "%s: cannot read %s", what, path);
out:
    fclose(f);
    return rc;
}

/* "~/x" → "$HOME/x"; other paths are copied. NULL on ENOMEM or when HOME is needed but unset. */
static char *expand_home(const char *path)
{
    if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
        return strdup(path);
    const char *home = env("HOME");
    if (!home)
        return NULL;
    size_t n = strlen(home) + strlen(path);
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", home, path + 1);
    return out;
}

/* ---- shared config and credentials files (INI) ---- */

struct ini_kv {
    char *key;
    char *value;
};

struct ini_section {
    char *name; /* profile name */
    struct ini_kv *kv;
    size_t n, cap;
};

struct ini_file {
    const char *path;
    struct ini_section *sec;
    size_t n, cap;
};

static void ini_free(struct ini_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        struct ini_section *s = &f->sec[i];
        for (size_t j = 0; j < s->n; j++) {
            free(s->kv[j].key);
            wipe_free(s->kv[j].value);
        }
        free(s->kv);
        free(s->name);
    }
    free(f->sec);
    f->sec = NULL;
    f->n = f->cap = 0;
}

static struct ini_section *ini_find(const struct ini_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->sec[i].name, name) == 0)
            return &f->sec[i];
    return NULL;
}

/* Returns the section, creating it; a repeated section adds to the first one. */
static struct ini_section *ini_section_get(struct ini_file *f, const char *name, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->sec[i].name) == len && memcmp(f->sec[i].name, name, len) == 0)
            return &f->sec[i];
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct ini_section *p = realloc(f->sec, cap * sizeof *p);
        if (!p)
            return NULL;
        f->sec = p;
        f->cap = cap;
    }
    struct ini_section *s = &f->sec[f->n];
    memset(s, 0, sizeof *s);
    s->name = strndup(name, len);
    if (!s->name)
        return NULL;
    f->n++;
    return s;
}

/* Sets key = value in s (a later line wins). Keys are case-sensitive. */
static int ini_set(struct ini_section *s, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
    char *v = strndup(val, vlen);
    if (!v)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->kv[i].key) == klen && memcmp(s->kv[i].key, key, klen) == 0) {
            wipe_free(s->kv[i].value);
            s->kv[i].value = v;
            return 0;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct ini_kv *p = realloc(s->kv, cap * sizeof *p);
        if (!p) {
            wipe_free(v);
            return -1;
        }
        s->kv = p;
        s->cap = cap;
    }
    s->kv[s->n].key = strndup(key, klen);
    if (!s->kv[s->n].key) {
        wipe_free(v);
        return -1;
    }
    s->kv[s->n].value = v;
    s->n++;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The profile a section header names, or NULL for sections that are not profiles. In the config
 * file profiles are "[profile NAME]" (and "[default]"); in the credentials file "[NAME]". */
static const char *section_profile(const char *hdr, size_t len, int is_config, size_t *out_len)
{
    if (!is_config) {
        *out_len = len;
        return hdr;
    }
    if (len == 7 && memcmp(hdr, "default", 7) == 0) {
        *out_len = len;
        return hdr;
    }
    if (len > 7 && memcmp(hdr, "profile", 7) == 0 && is_blank(hdr[7])) {
        size_t i = 8;
        while (i < len && is_blank(hdr[i]))
            i++;
        for (size_t j = i; j < len; j++)
            if (is_blank(hdr[j]))
                return NULL; /* "profile a b": not a profile */
        if (i == len)
            return NULL;
        *out_len = len - i;
        return hdr + i;
    }
    return NULL;
}

/* Parses text (NUL-terminated) into f: comment lines start with '#' or ';', keys and values are
 * separated by '=' (or ':', as Python's configparser allows), whitespace around them is dropped,
 * more-indented lines continue the previous key (nested settings; ignored here). */
static int ini_parse(struct ini_file *f, const char *text, int is_config, struct err *err)
{
    struct ini_section *cur = NULL;
    int have_key = 0;
    size_t key_indent = 0;
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *next = eol ? eol + 1 : line + len;
        while (len > 0 && (line[len - 1] == '\r' || is_blank(line[len - 1])))
            len--;
        size_t indent = 0;
        while (indent < len && is_blank(line[indent]))
            indent++;
        const char *p = line + indent;
        size_t plen = len - indent;
        if (plen == 0 || *p == '#' || *p == ';') {
            line = next;
            continue;
        }
        if (have_key && indent > key_indent) { /* continuation of the previous value */
            line = next;
            continue;
        }
        if (*p == '[') {
            const char *close = NULL;
            for (size_t i = plen; i > 1; i--)
                if (p[i - 1] == ']') {
                    close = p + i - 1;
                    break;
                }
            have_key = 0;
            cur = NULL;
            if (close) {
                const char *h = p + 1;
                size_t hlen = (size_t)(close - h);
                while (hlen > 0 && is_blank(*h)) {
                    h++;
                    hlen--;
                }
                while (hlen > 0 && is_blank(h[hlen - 1]))
                    hlen--;
                size_t nlen = 0;
                const char *name = hlen ? section_profile(h, hlen, is_config, &nlen) : NULL;
                if (name) {
                    cur = ini_section_get(f, name, nlen);
                    if (!cur)
                        return err_set(err, ERR_NOMEM, "out of memory reading %s", f->path);
                }
            }
            line = next;
            continue;
        }
        size_t d = 0;
        while (d < plen && p[d] != '=' && p[d] != ':')
            d++;
        if (d == plen) { /* not a key line: ignored, as the SDKs' parsers do */
            line = next;
            continue;
        }
        size_t klen = d;
        while (klen > 0 && is_blank(p[klen - 1]))
            klen--;
        const char *v = p + d + 1;
        size_t vlen = plen - d - 1;
        while (vlen > 0 && is_blank(*v)) {
            v++;
            vlen--;
        }
        if (cur && klen > 0 && ini_set(cur, p, klen, v, vlen) < 0)
            return err_set(err, ERR_NOMEM, "out of memory reading %s", f->path);
        have_key = 1;
        key_indent = indent;
        line = next;
    }
    return 0;
}

/* Loads path into f; a missing file is an empty one. */
static int ini_load(struct ini_file *f, const char *path, int is_config, struct err *err)
{
    f->path = path;
    if (!path)
        return 0;
    struct buf b;
    buf_init(&b);
    int rc = read_file(path, &b, is_config ? "config file" : "credentials file", err);
    if (rc == 0 && b.data)
        rc = ini_parse(f, b.data, is_config, err);
    else if (rc == 1)
        rc = 0;
    buf_wipe(&b);
    return rc;
}

/* A value; empty values count as absent. */
static const char *ini_get(const struct ini_file *f, const char *profile, const char *key)
{
    const struct ini_section *s = ini_find(f, profile);
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return s->kv[i].value[0] ? s->kv[i].value : NULL;
    return NULL;
}

/* ---- the chain ---- */

enum provider {
    PROV_ENV = 0,
    PROV_ASSUME_ROLE,  /* profile with role_arn (source_profile / credential_source) */
    PROV_WEB_IDENTITY, /* AWS_WEB_IDENTITY_TOKEN_FILE or the profile's web_identity_token_file */
    PROV_CREDS_FILE,   /* static keys in the shared credentials file */
    PROV_CONFIG_FILE,  /* static keys in the shared config file */
    PROV_CONTAINER,
    PROV_IMDS,
    PROV_COUNT
};

static const char *const provider_names[PROV_COUNT] = {
    "environment",        "assume-role profile", "web identity",          "shared credentials file",
    "shared config file", "container endpoint",  "EC2 instance metadata",
};

struct creds_chain {
    char *profile;
    int profile_explicit; /* named by AWS_PROFILE or the options: must exist */
    int skip_env;         /* a profile named in code wins over environment keys, as in the SDKs */
    char *config_file;
    char *credentials_file;
    char *region;             /* from the options; NULL: environment, profile, us-east-1 */
    struct http_engine *sts;  /* STS calls (web identity, AssumeRole) */
    struct http_engine *meta; /* IMDS and container endpoint: short timeouts */
    struct aws_credentials *cached;
    enum provider provider; /* which one supplied cached */
};

/* One resolution: the files as they are now, and the region for STS calls. */
struct resolve {
    struct creds_chain *ch;
    struct ini_file config;
    struct ini_file creds;
    char region[64];
};

/* A profile setting: the credentials file wins over the config file. */
static const char *cfg_get(const struct resolve *r, const char *profile, const char *key)
{
    const char *v = ini_get(&r->creds, profile, key);
    return v ? v : ini_get(&r->config, profile, key);
}

static int cfg_has_profile(const struct resolve *r, const char *profile)
{
    return ini_find(&r->creds, profile) || ini_find(&r->config, profile);
}

static int resolve_init(struct resolve *r, struct creds_chain *ch, struct err *err)
{
    memset(r, 0, sizeof *r);
    r->ch = ch;
    if (ini_load(&r->config, ch->config_file, 1, err) < 0 ||
        ini_load(&r->creds, ch->credentials_file, 0, err) < 0)
        return -1;
    const char *region = ch->region;
    if (!region)
        region = env("AWS_REGION");
    if (!region)
        region = env("AWS_DEFAULT_REGION");
    if (!region)
        region = cfg_get(r, ch->profile, "region");
    if (!region)
        region = "us-east-1";
    snprintf(r->region, sizeof r->region, "%s", region);
    return 0;
}

static void resolve_cleanup(struct resolve *r)
{
    ini_free(&r->config);
    ini_free(&r->creds);
}

static struct http_engine *chain_engine(struct creds_chain *ch, int meta, struct err *err)
{
    struct http_engine **slot = meta ? &ch->meta : &ch->sts;
    if (*slot)
        return *slot;
    struct http_engine_options o;
    if (http_engine_options_init(&o, err) < 0)
        return NULL;
    o.max_in_flight = 4;
    o.max_per_key = -1;
    if (meta) {
        /* Metadata endpoints are local: a host without one must fall through quickly. */
        o.connect_timeout_ms = 1000;
        o.timeout_ms = 2000;
        o.max_body = META_MAX_BODY;
    } else {
        o.max_body = 1024 * 1024;
    }
    *slot = http_engine_new(&o, err);
    return *slot;
}

static int set_nomem(struct err *err, const char *provider)
{
    return err_set(err, ERR_NOMEM, "%s: out of memory", provider);
}

/* ---- static keys ---- */

/* Static keys from one source (env values or one profile of one file). 1 with *out, 0 when
 * neither key is there, -1 when only one is. */
static int static_creds(const char *akid, const char *secret, const char *token, time_t expiration,
                        const char *where, const char *akid_name, const char *secret_name,
                        const char *source, struct aws_credentials **out, struct err *err)
{
    if (!akid && !secret)
        return 0;
    if (!akid || !secret)
        return err_set(err, ERR_CONFIG, "%s: %s is set but %s is not", where,
                       akid ? akid_name : secret_name, akid ? secret_name : akid_name);
    if (creds_check_values(akid, secret, token, where, err) < 0)
        return -1;
    *out = creds_new(akid, secret, token, expiration, source);
    return *out ? 1 : set_nomem(err, where);
}

static int prov_env(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    (void)r;
    const char *token = env("AWS_SESSION_TOKEN");
    if (!token)
        token = env("AWS_SECURITY_TOKEN");
    time_t expiration = 0;
    const char *exp = env("AWS_CREDENTIAL_EXPIRATION");
    if (exp && env("AWS_ACCESS_KEY_ID") && iso8601_parse(exp, &expiration) < 0)
        return err_set(
            err, ERR_CONFIG,
            "environment credentials: AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
    return static_creds(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), token, expiration,
                        "environment credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "env", out, err);
}

/* Static keys of a profile in one file (f) or, when f is NULL, in the merged profile. */
static int profile_static(struct resolve *r, const struct ini_file *f, const char *profile,
                          struct aws_credentials **out, struct err *err)
{
    const char *akid, *secret, *token;
    if (f) {
        akid = ini_get(f, profile, "aws_access_key_id");
        secret = ini_get(f, profile, "aws_secret_access_key");
        token = ini_get(f, profile, "aws_session_token");
        if (!token)
            token = ini_get(f, profile, "aws_security_token");
    } else {
        akid = cfg_get(r, profile, "aws_access_key_id");
        secret = cfg_get(r, profile, "aws_secret_access_key");
        token = cfg_get(r, profile, "aws_session_token");
        if (!token)
            token = cfg_get(r, profile, "aws_security_token");
    }
    char where[600], source[48];
    snprintf(where, sizeof where, "profile '%s'%s%s", profile, f ? " in " : "", f ? f->path : "");
    snprintf(source, sizeof source, "profile:%s", profile);
    return static_creds(akid, secret, token, 0, where, "aws_access_key_id", "aws_secret_access_key",
                        source, out, err);
}

static int prov_creds_file(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    return profile_static(r, &r->creds, r->ch->profile, out, err);
}

static int prov_config_file(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    return profile_static(r, &r->config, r->ch->profile, out, err);
}

/* ---- web identity ---- */

static int web_identity(struct resolve *r, const char *token_file, const char *role_arn,
                        const char *session_name, const char *source, struct aws_credentials **out,
                        struct err *err)
{
    struct buf tok;
    buf_init(&tok);
    int rc = read_file(token_file, &tok, "web identity", err);
    if (rc == 1)
        rc = err_set(err, ERR_CONFIG, "web identity: token file %s does not exist", token_file);
    if (rc < 0)
        goto out;
    size_t len = tok.data ? trim_inplace(tok.data, tok.len) : 0;
    if (len == 0) {
        rc = err_set(err, ERR_CONFIG, "web identity: token file %s is empty", token_file);
        goto out;
    }
    struct http_engine *e = chain_engine(r->ch, 0, err);
    if (!e) {
        rc = -1;
        goto out;
    }
    /* The token file is read at every call: IRSA and Pod Identity rotate it. */
    struct aws_credentials *c =
        sts_assume_role_with_web_identity(e, role_arn, session_name, tok.data, r->region, err);
    if (!c) {
        err_prefix(err, "web identity (%s): ", role_arn);
        rc = -1;
        goto out;
    }
    snprintf(c->source, sizeof c->source, "%s", source);
    *out = c;
    rc = 1;
out:
    buf_wipe(&tok);
    return rc;
}

/* Web identity from the environment, or from the profile's web_identity_token_file (each setting
 * from the environment first, then the profile, like botocore). */
static int prov_web_identity(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    const char *profile = r->ch->profile;
    const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!token_file)
        token_file = cfg_get(r, profile, "web_identity_token_file");
    if (!token_file)
        return 0;
    const char *role_arn = env("AWS_ROLE_ARN");
    if (!role_arn)
        role_arn = cfg_get(r, profile, "role_arn");
    if (!role_arn)
        return err_set(err, ERR_CONFIG,
                       "web identity: a token file is configured but no role ARN "
                       "(AWS_ROLE_ARN or role_arn)");
    const char *session = env("AWS_ROLE_SESSION_NAME");
    if (!session)
        session = cfg_get(r, profile, "role_session_name");
    return web_identity(r, token_file, role_arn, session, "web-identity", out, err);
}

/* ---- container endpoint ---- */

/* Parses {AccessKeyId, SecretAccessKey, Token, Expiration[, Code]} (container and IMDS answers).
 * Secret strings inside the parsed tree are wiped before it is freed. */
static int parse_json_creds(const char *body, size_t len, const char *what, const char *source,
                            struct aws_credentials **out, struct err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr); /* new reference */
    if (!root)
        /* jerr.text may quote the document (and so a secret): only the position is reported. */
        return err_set(err, ERR_PARSE, "%s: answer is not JSON (line %d, column %d)", what,
                       jerr.line, jerr.column);
    int rc = -1;
    json_t *akid = json_object_get(root, "AccessKeyId"); /* borrowed */
    json_t *secret = json_object_get(root, "SecretAccessKey");
    json_t *token = json_object_get(root, "Token");
    json_t *exp = json_object_get(root, "Expiration");
    json_t *code = json_object_get(root, "Code");
    time_t expiration = 0;
    if (!json_is_object(root)) {
        err_set(err, ERR_PARSE, "%s: answer is not a JSON object", what);
    } else if (json_is_string(code) && strcmp(json_string_value(code), "Success") != 0) {
        err_set(err, ERR_PARSE, "%s: answer has Code %.64s", what, json_string_value(code));
    } else if (!json_is_string(akid) || !json_is_string(secret) || !json_string_length(akid) ||
               !json_string_length(secret)) {
        err_set(err, ERR_PARSE, "%s: answer lacks AccessKeyId or SecretAccessKey", what);
    } else if (token && !json_is_null(token) && !json_is_string(token)) {
        err_set(err, ERR_PARSE, "%s: Token is not a string", what);
    } else if (exp && !json_is_null(exp) &&
               (!json_is_string(exp) || iso8601_parse(json_string_value(exp), &expiration) < 0)) {
        err_set(err, ERR_PARSE, "%s: Expiration is not an ISO 8601 time", what);
    } else if (creds_check_values(json_string_value(akid), json_string_value(secret),
                                  json_is_string(token) ? json_string_value(token) : NULL, what,
                                  err) == 0) {
        *out =
            creds_new(json_string_value(akid), json_string_value(secret),
                      json_is_string(token) ? json_string_value(token) : NULL, expiration, source);
        rc = *out ? 1 : set_nomem(err, what);
    }
    if (json_is_string(secret))
        OPENSSL_cleanse((char *)json_string_value(secret), json_string_length(secret));
    if (json_is_string(token))
        OPENSSL_cleanse((char *)json_string_value(token), json_string_length(token));
    json_decref(root);
    return rc;
}

static int is_loopback_host(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
        return 1;
    /* 127.0.0.0/8 written as a dotted quad */
    unsigned a, b, c, d;
    char tail;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

/* Checks a full container credentials URI the way the SDKs do: https to any host; plain http
 * only to loopback or to the ECS / EKS Pod Identity link-local addresses. */
static int container_url_ok(const char *url, int *is_http, struct err *err)
{
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        *is_http = 1;
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        *is_http = 0;
        return 0;
    } else {
        return err_set(err, ERR_CONFIG,
                       "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must be an "
                       "http or https URL");
    }
    size_t auth_len = strcspn(rest, "/?#");
    const char *at = memchr(rest, '@', auth_len);
    if (at) {
        auth_len -= (size_t)(at + 1 - rest);
        rest = at + 1;
    }
    char host[256];
    size_t hlen;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', auth_len);
        if (!close)
            return err_set(err, ERR_CONFIG, "container credentials: malformed host in URI");
        hlen = (size_t)(close - rest - 1);
        rest++;
    } else {
        hlen = strcspn(rest, ":/?#");
    }
    if (hlen == 0 || hlen >= sizeof host)
        return err_set(err, ERR_CONFIG, "container credentials: malformed host in URI");
    memcpy(host, rest, hlen);
    host[hlen] = '\0';
    static const char *const allowed[] = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcasecmp(host, allowed[i]) == 0)
            return 0;
    if (is_loopback_host(host))
        return 0;
    return err_set(err, ERR_CONFIG,
                   "container credentials: plain http is allowed only to loopback, "
                   "169.254.170.2, 169.254.170.23 or [fd00:ec2::23], not to %s",
                   host);
}

/* The Authorization value: the token file (re-read each time, for rotation) wins over the
 * variable. 0 with *out (NULL when none), -1 with err. */
static int container_auth(struct buf *tok, struct err *err)
{
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (file) {
        int rc = read_file(file, tok, "container credentials", err);
        if (rc == 1)
            return err_set(err, ERR_CONFIG,
                           "container credentials: authorization token file %s does not exist",
                           file);
        if (rc < 0)
            return -1;
    } else {
        const char *v = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (!v)
            return 0;
        if (buf_puts(tok, v) < 0)
            return set_nomem(err, "container credentials");
    }
    if (!tok->data || trim_inplace(tok->data, tok->len) == 0) {
        buf_wipe(tok);
        return 0;
    }
    tok->len = strlen(tok->data);
    if (strpbrk(tok->data, "\r\n"))
        return err_set(err, ERR_CONFIG,
                       "container credentials: the authorization token is not a valid header "
                       "value");
    return 0;
}

static int prov_container_impl(struct resolve *r, int required, struct aws_credentials **out,
                               struct err *err)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full) {
        if (required)
            return err_set(err, ERR_NO_CREDS,
                           "container credentials: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
                           "nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
        return 0;
    }
    struct buf url, tok, body;
    buf_init(&url);
    buf_init(&tok);
    buf_init(&body);
    int rc = -1;
    int is_http = 1;
    if (rel) {
        /* The relative URI wins, as in the SDKs; it always goes to the ECS agent address. */
        if (buf_printf(&url, "%s%s%s", ECS_CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel) < 0) {
            set_nomem(err, "container credentials");
            goto out;
        }
    } else {
        if (container_url_ok(full, &is_http, err) < 0)
            goto out;
        if (buf_puts(&url, full) < 0) {
            set_nomem(err, "container credentials");
            goto out;
        }
    }
    if (container_auth(&tok, err) < 0)
        goto out;
    struct http_engine *e = chain_engine(r->ch, 1, err);
    if (!e)
        goto out;
    struct sigv4_header hdr[] = {{"Authorization", tok.data}, {"Accept", "application/json"}};
    struct aws_request req = {
        .protocol = AWS_PROTO_PLAIN,
        .method = "GET",
        .url = url.data,
        .headers = tok.data ? hdr : hdr + 1,
        .n_headers = tok.data ? 2 : 1,
        .allow_http = is_http,
    };
    long status = 0;
    if (http_perform(e, &req, &body, &status, err) < 0) {
        /* The URL is left out: an ECS relative URI is itself a capability. */
        err_prefix(err, "container credentials: ");
        goto out;
    }
    rc = parse_json_creds(body.data ? body.data : "", body.len, "container credentials",
                          "container", out, err);
out:
    buf_wipe(&body);
    buf_wipe(&tok);
    buf_cleanup(&url);
    return rc;
}

static int prov_container(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    return prov_container_impl(r, 0, out, err);
}

/* ---- EC2 instance metadata (IMDSv2) ---- */

/* A single attempt against IMDS. 0 ok; -1 with err. */
static int imds_call(struct http_engine *e, const char *method, const char *url,
                     const struct sigv4_header *hdr, size_t n_hdr, struct buf *body,
                     struct err *err)
{
    struct aws_request req = {
        .protocol = AWS_PROTO_PLAIN,
        .method = method,
        .url = url,
        .headers = hdr,
        .n_headers = n_hdr,
        .allow_http = strncasecmp(url, "http://", 7) == 0,
        .no_retry = 1,
    };
    long status = 0;
    return http_perform(e, &req, body, &status, err);
}

/* IMDS failures where the service is not there (no connection, timeout, 404) make the provider
 * report "no credentials" rather than an error, as the SDKs do. */
static int imds_unavailable(const struct err *e)
{
    return e->http_status == 0 || e->http_status == 404;
}

static int prov_imds_impl(struct resolve *r, int required, struct aws_credentials **out,
                          struct err *err)
{
    if (env_true("AWS_EC2_METADATA_DISABLED")) {
        if (required)
            return err_set(err, ERR_NO_CREDS,
                           "EC2 instance metadata: disabled by AWS_EC2_METADATA_DISABLED");
        return 0;
    }
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!base) {
        const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        base = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_ENDPOINT_V6
                                                     : IMDS_DEFAULT_ENDPOINT;
    }
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    struct buf url, token, body;
    buf_init(&url);
    buf_init(&token);
    buf_init(&body);
    struct err e;
    err_clear(&e);
    int rc = -1;
    struct http_engine *eng = chain_engine(r->ch, 1, err);
    if (!eng)
        goto out;

    /* 1. session token */
    if (buf_printf(&url, "%.*s/latest/api/token", (int)blen, base) < 0)
        goto nomem;
    struct sigv4_header ttl = {"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL};
    if (imds_call(eng, "PUT", url.data, &ttl, 1, &token, &e) < 0) {
        if (e.http_status == 403 || e.http_status == 404 || e.http_status == 405) {
            /* IMDSv2 not offered: the SDKs fall back to IMDSv1 unless told not to. */
            if (env_true("AWS_EC2_METADATA_V1_DISABLED")) {
                err_set(err, ERR_NO_CREDS,
                        "EC2 instance metadata: no IMDSv2 token (HTTP %ld) and IMDSv1 is "
                        "disabled",
                        e.http_status);
                goto out;
            }
            log_debug("creds", "IMDS token request answered HTTP %ld; using IMDSv1", e.http_status);
            buf_wipe(&token);
        } else if (e.http_status == 0) {
            log_debug("creds", "IMDS not reachable at %.*s: %s", (int)blen, base, e.message);
            rc = 0;
            goto unavailable;
        } else {
            *err = e;
            err_prefix(err, "EC2 instance metadata: token request: ");
            goto out;
        }
    } else if (!token.data || trim_inplace(token.data, token.len) == 0) {
        err_set(err, ERR_PARSE, "EC2 instance metadata: empty session token");
        goto out;
    } else if (!header_safe(token.data)) {
        /* it is sent back as the X-aws-ec2-metadata-token header */
        err_set(err, ERR_PARSE,
                "EC2 instance metadata: the IMDSv2 token holds a control character, a space or a "
                "non-ASCII byte (refused: it becomes an HTTP header value)");
        goto out;
    }
    struct sigv4_header th = {"X-aws-ec2-metadata-token", token.data};
    size_t n_th = token.data && token.data[0] ? 1 : 0;

    /* 2. role name */
    buf_reset(&url);
    if (buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base) < 0)
        goto nomem;
    if (imds_call(eng, "GET", url.data, &th, n_th, &body, &e) < 0) {
        if (imds_unavailable(&e)) {
            log_debug("creds", "IMDS has no instance profile role: %s", e.message);
            rc = 0;
            goto unavailable;
        }
        *err = e;
        err_prefix(err, "EC2 instance metadata: role listing: ");
        goto out;
    }
    char role[256];
    {
        const char *s = body.data ? body.data : "";
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strcspn(s, "\r\n");
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        if (n == 0) {
            log_debug("creds", "IMDS lists no instance profile role");
            rc = 0;
            goto unavailable;
        }
        if (n >= sizeof role || memchr(s, '/', n)) {
            err_set(err, ERR_PARSE, "EC2 instance metadata: malformed role name");
            goto out;
        }
        memcpy(role, s, n);
        role[n] = '\0';
    }

    /* 3. credentials */
    buf_reset(&url);
    if (buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base) < 0 ||
        buf_reserve(&url, 3 * strlen(role)) < 0)
        goto nomem;
    long n = sigv4_uri_encode(role, strlen(role), 0, url.data + url.len, url.cap - url.len);
    if (n < 0)
        goto nomem;
    url.len += (size_t)n;
    buf_wipe(&body);
    if (imds_call(eng, "GET", url.data, &th, n_th, &body, &e) < 0) {
        *err = e;
        err_prefix(err, "EC2 instance metadata: credentials of role %s: ", role);
        goto out;
    }
    rc = parse_json_creds(body.data ? body.data : "", body.len, "EC2 instance metadata", "imds",
                          out, err);
    goto out;

nomem:
    set_nomem(err, "EC2 instance metadata");
    goto out;
unavailable:
    if (required)
        rc = err_set(err, ERR_NO_CREDS, "EC2 instance metadata: no credentials available%s%s",
                     e.message[0] ? ": " : "", e.message);
out:
    buf_wipe(&body);
    buf_wipe(&token);
    buf_cleanup(&url);
    return rc;
}

static int prov_imds(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    return prov_imds_impl(r, 0, out, err);
}

/* ---- profiles with role_arn ---- */

static int source_profile_creds(struct resolve *r, const char *name, const char **visited,
                                int n_visited, struct aws_credentials **out, struct err *err);

static int has_static(const struct resolve *r, const char *profile)
{
    return cfg_get(r, profile, "aws_access_key_id") || cfg_get(r, profile, "aws_secret_access_key");
}

/* Resolves the base credentials of profile `name` (source_profile or credential_source), then
 * AssumeRole with the profile's role settings. */
static int assume_role_profile(struct resolve *r, const char *name, const char **visited,
                               int n_visited, struct aws_credentials **out, struct err *err)
{
    const char *role_arn = cfg_get(r, name, "role_arn");
    const char *src = cfg_get(r, name, "source_profile");
    const char *cs = cfg_get(r, name, "credential_source");
    if (src && cs)
        return err_set(err, ERR_CONFIG,
                       "profile '%s': has both source_profile and credential_source", name);
    if (!src && !cs)
        return err_set(err, ERR_CONFIG,
                       "profile '%s': role_arn needs source_profile or credential_source", name);

    int duration = 0;
    const char *ds = cfg_get(r, name, "duration_seconds");
    if (ds) {
        char *end;
        errno = 0;
        long v = strtol(ds, &end, 10);
        if (errno || *end || v <= 0 || v > INT_MAX)
            return err_set(err, ERR_CONFIG, "profile '%s': duration_seconds '%.32s' is invalid",
                           name, ds);
        duration = (int)v;
    }

    struct aws_credentials *base = NULL;
    int rc;
    if (src) {
        if (!cfg_has_profile(r, src))
            return err_set(err, ERR_CONFIG, "profile '%s': source_profile '%s' does not exist",
                           name, src);
        int seen = 0;
        for (int i = 0; i < n_visited; i++)
            seen |= strcmp(visited[i], src) == 0;
        if (seen && !(strcmp(src, name) == 0 && has_static(r, src))) {
            char path[512];
            size_t len = 0;
            path[0] = '\0';
            for (int i = 0; i < n_visited && len < sizeof path; i++)
                len += (size_t)snprintf(path + len, sizeof path - len, "%s -> ", visited[i]);
            if (len < sizeof path)
                snprintf(path + len, sizeof path - len, "%s", src);
            return err_set(err, ERR_CONFIG, "profile '%s': source_profile cycle (%s)", name, path);
        }
        if (!seen) {
            if (n_visited >= PROFILE_DEPTH_MAX)
                return err_set(err, ERR_CONFIG,
                               "profile '%s': source_profile chain is longer than %d", name,
                               PROFILE_DEPTH_MAX);
            visited[n_visited++] = src;
        }
        rc = source_profile_creds(r, src, visited, n_visited, &base, err);
        if (rc < 0) {
            err_prefix(err, "profile '%s': source_profile '%s': ", name, src);
            return -1;
        }
    } else if (strcmp(cs, "Environment") == 0) {
        rc = prov_env(r, &base, err);
        if (rc == 0)
            rc = err_set(err, ERR_NO_CREDS, "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set");
    } else if (strcmp(cs, "Ec2InstanceMetadata") == 0) {
        rc = prov_imds_impl(r, 1, &base, err);
    } else if (strcmp(cs, "EcsContainer") == 0) {
        rc = prov_container_impl(r, 1, &base, err);
    } else {
        return err_set(err, ERR_CONFIG,
                       "profile '%s': credential_source '%.64s' is not Environment, "
                       "Ec2InstanceMetadata or EcsContainer",
                       name, cs);
    }
    if (rc >= 0 && !base)
        rc = err_set(err, ERR_NO_CREDS, "no credentials");
    if (rc < 0) {
        if (cs)
            err_prefix(err, "profile '%s': credential_source %s: ", name, cs);
        return -1;
    }

    struct http_engine *e = chain_engine(r->ch, 0, err);
    if (!e) {
        creds_unref(base);
        return -1;
    }
    struct sts_assume_role_params p = {
        .role_arn = role_arn,
        .session_name = cfg_get(r, name, "role_session_name"),
        .external_id = cfg_get(r, name, "external_id"),
        .duration_s = duration,
        .region = r->region,
    };
    log_debug("creds", "profile '%s': assuming %s with credentials from %s", name, role_arn,
              base->source);
    struct aws_credentials *c = sts_assume_role(e, base, &p, err);
    creds_unref(base);
    if (!c) {
        err_prefix(err, "profile '%s': ", name);
        return -1;
    }
    snprintf(c->source, sizeof c->source, "profile:%s", name);
    *out = c;
    return 1;
}

/* Credentials of a profile used as a source: static keys first (this is what makes a
 * self-referencing profile work), then web identity, then its own role. */
static int source_profile_creds(struct resolve *r, const char *name, const char **visited,
                                int n_visited, struct aws_credentials **out, struct err *err)
{
    if (has_static(r, name))
        return profile_static(r, NULL, name, out, err);
    const char *wit = cfg_get(r, name, "web_identity_token_file");
    const char *role_arn = cfg_get(r, name, "role_arn");
    char source[48];
    snprintf(source, sizeof source, "profile:%s", name);
    if (wit) {
        if (!role_arn)
            return err_set(err, ERR_CONFIG, "web_identity_token_file without role_arn");
        return web_identity(r, wit, role_arn, cfg_get(r, name, "role_session_name"), source, out,
                            err);
    }
    if (role_arn)
        return assume_role_profile(r, name, visited, n_visited, out, err);
    return err_set(err, ERR_CONFIG, "profile '%s' has no credentials", name);
}

static int prov_assume_role(struct resolve *r, struct aws_credentials **out, struct err *err)
{
    const char *name = r->ch->profile;
    if (!cfg_get(r, name, "role_arn") || cfg_get(r, name, "web_identity_token_file"))
        return 0; /* web identity profiles are the web identity provider's */
    const char *visited[PROFILE_DEPTH_MAX + 1];
    visited[0] = name;
    return assume_role_profile(r, name, visited, 1, out, err);
}

/* ---- resolution ---- */

typedef int (*provider_fn)(struct resolve *r, struct aws_credentials **out, struct err *err);

static const provider_fn providers[PROV_COUNT] = {
    prov_env,         prov_assume_role, prov_web_identity, prov_creds_file,
    prov_config_file, prov_container,   prov_imds,
};

static void log_resolved(const struct aws_credentials *c, enum provider p)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char exp[32] = "never";
    if (c->expiration) {
        struct tm tm;
        gmtime_r(&c->expiration, &tm);
        strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    /* The access key id prefix says the key type (AKIA long-term, ASIA temporary); nothing
     * more of any credential is logged. */
    log_debug("creds", "credentials from %s (source %s, key %.4s..., expires %s)",
              provider_names[p], c->source, c->access_key_id, exp);
}

static int profile_not_found(const struct creds_chain *ch, struct err *err)
{
    return err_set(err, ERR_CONFIG, "profile '%s' not found in %s or %s (ProfileNotFound)",
                   ch->profile, ch->config_file ? ch->config_file : "(no config file)",
                   ch->credentials_file ? ch->credentials_file : "(no credentials file)");
}

/* Runs the providers in order. 1 with *out and *which; -1 with err. */
static int resolve_chain(struct resolve *r, struct aws_credentials **out, enum provider *which,
                         struct err *err)
{
    struct creds_chain *ch = r->ch;
    if (ch->profile_explicit && !cfg_has_profile(r, ch->profile))
        return profile_not_found(ch, err);
    for (int i = 0; i < PROV_COUNT; i++) {
        if (i == PROV_ENV && ch->skip_env)
            continue;
        int rc = providers[i](r, out, err);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            *which = (enum provider)i;
            return 1;
        }
        log_debug("creds", "%s: no credentials", provider_names[i]);
    }
    return err_set(err, ERR_NO_CREDS,
                   "no AWS credentials found (tried environment, profile '%s' in the shared "
                   "config and credentials files, web identity, container endpoint, EC2 "
                   "instance metadata)",
                   ch->profile);
}

struct creds_chain *creds_chain_new(const struct creds_chain_options *opts, struct err *err)
{
    struct creds_chain_options none = {0};
    if (!opts)
        opts = &none;
    struct creds_chain *ch = calloc(1, sizeof *ch);
    if (!ch) {
        err_set(err, ERR_NOMEM, "credentials chain: out of memory");
        return NULL;
    }
    const char *profile = opts->profile;
    if (profile && *profile) {
        ch->profile_explicit = 1;
        ch->skip_env = 1;
    } else {
        profile = env("AWS_PROFILE");
        ch->profile_explicit = profile != NULL;
        if (!profile)
            profile = "default";
    }
    ch->profile = strdup(profile);

    const char *cfg = opts->config_file ? opts->config_file : env("AWS_CONFIG_FILE");
    const char *crd =
        opts->credentials_file ? opts->credentials_file : env("AWS_SHARED_CREDENTIALS_FILE");
    /* Without HOME the default files are simply absent. */
    ch->config_file = expand_home(cfg ? cfg : "~/.aws/config");
    ch->credentials_file = expand_home(crd ? crd : "~/.aws/credentials");
    if (cfg && !ch->config_file)
        err_set(err, ERR_CONFIG, "config file path %s: cannot expand '~' (HOME unset?)", cfg);
    else if (crd && !ch->credentials_file)
        err_set(err, ERR_CONFIG, "credentials file path %s: cannot expand '~' (HOME unset?)", crd);
    else if (opts->region && *opts->region && !(ch->region = strdup(opts->region)))
        err_set(err, ERR_NOMEM, "credentials chain: out of memory");
    else if (!ch->profile)
        err_set(err, ERR_NOMEM, "credentials chain: out of memory");
    else
        return ch;
    creds_chain_free(ch);
    return NULL;
}

void creds_chain_free(struct creds_chain *ch)
{
    if (!ch)
        return;
    creds_unref(ch->cached);
    http_engine_free(ch->sts);
    http_engine_free(ch->meta);
    free(ch->profile);
    free(ch->config_file);
    free(ch->credentials_file);
    free(ch->region);
    free(ch);
}

int creds_check_profile(const struct creds_chain_options *opts, struct err *err)
{
    struct creds_chain *ch = creds_chain_new(opts, err);
    if (!ch)
        return -1;
    int rc = 0;
    if (ch->profile_explicit) {
        struct resolve r;
        rc = resolve_init(&r, ch, err);
        if (rc == 0 && !cfg_has_profile(&r, ch->profile))
            rc = profile_not_found(ch, err);
        resolve_cleanup(&r);
    }
    creds_chain_free(ch);
    return rc;
}

struct aws_credentials *creds_chain_get(struct creds_chain *ch, struct err *err)
{
    time_t now = time(NULL);
    if (ch->cached && !creds_expiring(ch->cached, now, CREDS_REFRESH_WINDOW_S))
        return creds_ref(ch->cached);

    struct resolve r;
    struct aws_credentials *c = NULL;
    struct err e;
    err_clear(&e);
    int rc = resolve_init(&r, ch, &e);
    if (rc == 0) {
        if (ch->cached) {
            /* Refresh: the provider that supplied them is asked again. */
            rc = providers[ch->provider](&r, &c, &e);
            if (rc == 0)
                rc = err_set(&e, ERR_NO_CREDS, "%s: no longer supplies credentials",
                             provider_names[ch->provider]);
            if (rc > 0 && c)
                log_resolved(c, ch->provider);
        } else {
            enum provider which = PROV_ENV;
            rc = resolve_chain(&r, &c, &which, &e);
            if (rc > 0 && c) {
                ch->provider = which;
                log_resolved(c, which);
            }
        }
    }
    resolve_cleanup(&r);
    if (rc > 0 && !c) /* providers return 1 only with credentials; kept as a guard */
        rc = set_nomem(&e, provider_names[ch->provider]);

    if (rc > 0) {
        creds_unref(ch->cached);
        ch->cached = c;
        return creds_ref(c);
    }
    if (ch->cached && ch->cached->expiration - now > REFRESH_GRACE_S) {
        /* A failed refresh does not end a scan while the current credentials still work. */
        log_warn("creds",
                 "refreshing credentials from %s failed (%s: %s); using the current "
                 "ones until they expire",
                 provider_names[ch->provider], e.code, e.message);
        return creds_ref(ch->cached);
    }
    if (err)
        *err = e;
    return NULL;
}
