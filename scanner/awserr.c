/* awserr.c - turns AWS error responses (restJson1, awsJson1_1, awsQuery and EC2 XML, and the
 * mixed-up bodies emulators send) into struct err, and sorts error codes into the retry classes
 * of the SDKs' standard retry mode (botocore retries/standard.py). */
#include "scanner/awserr.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"
#include "scanner/xmldoc.h"

/* A message is for a human; keep it short enough to leave room for context prefixes. */
#define AWSERR_MSG_MAX 300

/* Copies at most len bytes of s into out (cap), replacing control characters by spaces and
 * trimming surrounding whitespace. */
static void copy_clean(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return;
    while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        len--;
    }
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    size_t n = utf8_cut_len(s, len, cap - 1); /* never half a character */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[n] = '\0';
}

void awserr_sanitize_code(const char *in, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    out[0] = '\0';
    if (!in)
        return;
    size_t len = strcspn(in, ":");
    const char *start = in;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '#')
            start = in + i + 1;
    }
    size_t n = len - (size_t)(start - in);
    copy_clean(out, cap, start, n);
    /* a code is a single token: no spaces inside */
    for (char *p = out; *p; p++) {
        if (*p == ' ')
            *p = '_';
    }
}

/* ---- JSON ---- */

struct found {
    char code[ERR_CODE_MAX];
    char message[AWSERR_MSG_MAX + 1];
    char request_id[ERR_REQID_MAX];
};

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    return s && *s ? s : NULL;
}

/* Returns 1 when body was a JSON object (fields found or not), 0 when not JSON. */
static int parse_json(enum aws_protocol proto, const char *body, size_t len, struct found *f)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr); /* new */
    if (!root)
        return 0;
    if (!json_is_object(root)) {
        json_decref(root);
        return 0;
    }
    const char *code;
    if (proto == AWS_PROTO_REST_JSON) {
        code = json_str(root, "code");
        if (!code)
            code = json_str(root, "__type");
    } else {
        code = json_str(root, "__type");
        if (!code)
            code = json_str(root, "code");
    }
    if (!code)
        code = json_str(root, "Code");
    if (code)
        awserr_sanitize_code(code, f->code, sizeof f->code);
    const char *msg = json_str(root, "message");
    if (!msg)
        msg = json_str(root, "Message");
    if (msg)
        copy_clean(f->message, sizeof f->message, msg, strlen(msg));
    const char *rid = json_str(root, "RequestId");
    if (!rid)
        rid = json_str(root, "requestId");
    if (rid)
        copy_clean(f->request_id, sizeof f->request_id, rid, strlen(rid));
    json_decref(root);
    return 1;
}

/* ---- XML ---- */

static int name_is(const xmlNode *n, const char *a, const char *b)
{
    if (n->type != XML_ELEMENT_NODE || !n->name)
        return 0;
    return strcmp((const char *)n->name, a) == 0 || (b && strcmp((const char *)n->name, b) == 0);
}

/* Depth-first search for an element named a (or b). */
static const xmlNode *find_elem(const xmlNode *n, const char *a, const char *b)
{
    for (; n; n = n->next) {
        if (name_is(n, a, b))
            return n;
        if (n->type == XML_ELEMENT_NODE) {
            const xmlNode *r = find_elem(n->children, a, b);
            if (r)
                return r;
        }
    }
    return NULL;
}

/* Concatenated text and CDATA children only: entity references are not followed. */
static void elem_text(const xmlNode *n, char *out, size_t cap)
{
    char tmp[1024];
    size_t len = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t l = strlen((const char *)c->content);
            if (l > sizeof tmp - 1 - len)
                l = sizeof tmp - 1 - len;
            memcpy(tmp + len, c->content, l);
            len += l;
        }
    }
    copy_clean(out, cap, tmp, len);
}

static int parse_xml(const char *body, size_t len, struct found *f)
{
    if (len > 0x7fffffff)
        return 0;
    xmlDoc *doc = xmldoc_read(body, len, 0);
    if (!doc)
        return 0;
    if (doc->intSubset) { /* AWS never sends a DTD; refuse anything that declares entities */
        xmlFreeDoc(doc);
        return 0;
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    const xmlNode *error = root ? find_elem(root, "Error", NULL) : NULL;
    if (error) {
        const xmlNode *code = find_elem(error->children, "Code", NULL);
        const xmlNode *msg = find_elem(error->children, "Message", "message");
        if (code) {
            char raw[ERR_CODE_MAX * 2];
            elem_text(code, raw, sizeof raw);
            awserr_sanitize_code(raw, f->code, sizeof f->code);
        }
        if (msg)
            elem_text(msg, f->message, sizeof f->message);
    }
    const xmlNode *rid = root ? find_elem(root, "RequestId", "RequestID") : NULL;
    if (rid)
        elem_text(rid, f->request_id, sizeof f->request_id);
    xmlFreeDoc(doc);
    return 1;
}

void awserr_decode(enum aws_protocol proto, long status, const char *errortype,
                   const char *request_id, const char *body, size_t len, struct err *out)
{
    if (!out)
        return;
    err_clear(out);
    out->http_status = status;
    struct found f;
    memset(&f, 0, sizeof f);

    size_t i = 0;
    while (body && i < len &&
           (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    int parsed = 0;
    if (body && i < len) {
        if (body[i] == '{')
            parsed = parse_json(proto, body + i, len - i, &f);
        else if (body[i] == '<')
            parsed = parse_xml(body + i, len - i, &f);
    }

    /* restJson1 names the error in X-Amzn-Errortype first; the JSON protocols fall back on it. */
    if (errortype && *errortype) {
        char hdr[ERR_CODE_MAX];
        awserr_sanitize_code(errortype, hdr, sizeof hdr);
        if (hdr[0] && (proto == AWS_PROTO_REST_JSON || !f.code[0]))
            snprintf(f.code, sizeof f.code, "%s", hdr);
    }

    if (f.code[0])
        snprintf(out->code, sizeof out->code, "%s", f.code);
    else
        snprintf(out->code, sizeof out->code, "HTTP%ld", status);

    if (f.message[0])
        snprintf(out->message, sizeof out->message, "%s", f.message);
    else if (!body || i >= len)
        snprintf(out->message, sizeof out->message, "HTTP %ld with an empty body", status);
    else if (!parsed)
        snprintf(out->message, sizeof out->message, "HTTP %ld with an unparseable body (%zu bytes)",
                 status, len);
    else
        snprintf(out->message, sizeof out->message, "HTTP %ld", status);

    if (request_id && *request_id)
        copy_clean(out->request_id, sizeof out->request_id, request_id, strlen(request_id));
    else if (f.request_id[0])
        snprintf(out->request_id, sizeof out->request_id, "%s", f.request_id);
}

static int in_list(const char *code, const char *const *list)
{
    if (!code || !*code)
        return 0;
    for (; *list; list++) {
        if (strcmp(code, *list) == 0)
            return 1;
    }
    return 0;
}

static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    NULL,
};

static const char *const transient_codes[] = {
    "RequestTimeout", /* also ERR_TIMEOUT */
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "IDPCommunicationError", /* STS web identity: the OIDC provider did not answer */
    ERR_CONNECT,
    NULL,
};

int awserr_is_throttle(const char *code, long status)
{
    return status == 429 || in_list(code, throttle_codes);
}

int awserr_is_transient(const char *code, long status)
{
    return status == 500 || status == 502 || status == 503 || status == 504 ||
           in_list(code, transient_codes);
}

int awserr_is_expired_credentials(const char *code)
{
    static const char *const expired[] = {"ExpiredToken", "ExpiredTokenException", "RequestExpired",
                                          NULL};
    return in_list(code, expired);
}
