/* test_http.c - the HTTP engine against fakehttp: signed requests whose signatures verify from
 * what went over the wire, the standard retry mode (throttles, 5xx, resets, truncation, quota),
 * configuration from the environment, body caps, concurrency and per-key caps, connection
 * reuse, TLS with an added CA, and cleanup of unfinished work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "scanner/creds.h"
#include "scanner/http.h"
#include "scanner/sigv4.h"
#include "tests/support/fakehttp.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=="

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int clean_env(void **state)
{
    (void)state;
    unsetenv("AWS_MAX_ATTEMPTS");
    unsetenv("AWS_RETRY_MODE");
    unsetenv("AWS_CA_BUNDLE");
    unsetenv("EGRESSSCAN_HTTP_TIMEOUT_MS");
    unsetenv("EGRESSSCAN_CONNECT_TIMEOUT_MS");
    return 0;
}

/* ---- scripted handler: step i answers request i (the last step repeats) ---- */

struct step {
    enum fakehttp_action action;
    int status;
    const char *headers;
    const char *body;
    int delay_ms;
};

struct script {
    const struct step *steps;
    int n;
};

static void script_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    const struct script *s = ud;
    const struct step *st = &s->steps[req->seq < s->n ? req->seq : s->n - 1];
    fakehttp_respond(resp, st->status, st->headers, st->body);
    resp->action = st->action;
    resp->delay_ms = st->delay_ms;
}

/* ---- helpers ---- */

static struct http_engine *new_engine(struct http_engine_options *o)
{
    struct err e;
    err_clear(&e);
    struct http_engine *eng = http_engine_new(o, &e);
    if (!eng)
        fail_msg("http_engine_new: %s: %s", e.code, e.message);
    return eng;
}

static void default_options(struct http_engine_options *o)
{
    struct err e;
    assert_int_equal(http_engine_options_init(o, &e), 0);
}

static struct aws_request eks_get(const char *url, struct aws_credentials *c)
{
    struct aws_request r;
    memset(&r, 0, sizeof r);
    r.protocol = AWS_PROTO_REST_JSON;
    r.method = "GET";
    r.url = url;
    r.service = "eks";
    r.region = "eu-west-1";
    r.creds = c;
    r.allow_http = 1;
    return r;
}

/* Finds header `name` in a raw request text; copies its value into out. */
static int find_header(const char *text, const char *name, char *out, size_t cap)
{
    const char *p = strstr(text, "\r\n");
    size_t nl = strlen(name);
    while (p && strncmp(p, "\r\n\r\n", 4) != 0) {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            return 0;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* Recomputes the signature of a recorded request from what was sent and compares it with its
 * Authorization header: proves the signer saw exactly the wire's host, path, query, signed
 * headers and body. */
static void assert_signature_verifies(const char *text, const char *secret)
{
    char auth[2048], amz_date[64];
    assert_true(find_header(text, "Authorization", auth, sizeof auth));
    assert_true(find_header(text, "X-Amz-Date", amz_date, sizeof amz_date));

    char method[16], target[2048];
    assert_int_equal(sscanf(text, "%15s %2047s", method, target), 2);
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';

    char akid[64], scope_date[16], region[32], service[32];
    const char *cred = strstr(auth, "Credential=");
    assert_non_null(cred);
    assert_int_equal(sscanf(cred, "Credential=%63[^/]/%15[^/]/%31[^/]/%31[^/]/", akid, scope_date,
                            region, service),
                     4);
    const char *sh = strstr(auth, "SignedHeaders=");
    assert_non_null(sh);
    sh += strlen("SignedHeaders=");
    char names[1024];
    size_t shl = strcspn(sh, ",");
    assert_true(shl < sizeof names);
    memcpy(names, sh, shl);
    names[shl] = '\0';

    struct sigv4_header hdrs[32];
    char values[32][2048];
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(names, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
        assert_true(n < 32);
        assert_true(find_header(text, tok, values[n], sizeof values[n]));
        hdrs[n].name = tok;
        hdrs[n].value = values[n];
        n++;
    }
    const char *body = strstr(text, "\r\n\r\n") + 4;

    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_int_equal(sscanf(amz_date, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    struct sigv4_params p = {AKID, secret, region, service, timegm(&tm), NULL};
    struct sigv4_request r = {method, target, query, hdrs, n, body, strlen(body)};
    char expect[2048];
    struct err e;
    assert_int_equal(sigv4_authorization(&p, &r, expect, sizeof expect, &e), 0);
    assert_string_equal(auth, expect);
}

/* ---- tests ---- */

static void test_get_signed_with_token(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 200, "Content-Type: application/json\r\n", "{\"clusters\":[]}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct http_engine_options o;
    default_options(&o);
    struct http_engine *eng = new_engine(&o);

    char url[256];
    snprintf(url, sizeof url, "%s/clusters?maxResults=100&nextToken=a%%2Fb", fakehttp_url(srv));
    struct aws_request req = eks_get(url, c);
    struct buf body;
    buf_init(&body);
    long status = 0;
    struct err e;
    err_clear(&e);
    assert_int_equal(http_perform(eng, &req, &body, &status, &e), 0);
    assert_int_equal(status, 200);
    assert_string_equal(body.data, "{\"clusters\":[]}");

    char *text = fakehttp_request_text(srv, 0);
    assert_non_null(text);
    char v[2048], host[64];
    assert_true(strncmp(text, "GET /clusters?maxResults=100&nextToken=a%2Fb HTTP/1.1\r\n", 50) ==
                0);
    assert_true(find_header(text, "Authorization", v, sizeof v));
    assert_non_null(strstr(v, "AWS4-HMAC-SHA256 Credential=" AKID "/"));
    assert_non_null(strstr(v, "/eu-west-1/eks/aws4_request"));
    assert_non_null(strstr(v, "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    assert_true(find_header(text, "X-Amz-Date", v, sizeof v));
    assert_int_equal(strlen(v), SIGV4_AMZ_DATE_LEN);
    assert_true(find_header(text, "X-Amz-Security-Token", v, sizeof v));
    assert_string_equal(v, TOKEN);
    snprintf(host, sizeof host, "127.0.0.1:%d", fakehttp_port(srv)); /* non-default port kept */
    assert_true(find_header(text, "Host", v, sizeof v));
    assert_string_equal(v, host);
    assert_true(find_header(text, "User-Agent", v, sizeof v));
    assert_non_null(strstr(v, "egressscan/"));
    assert_false(find_header(text, "Expect", v, sizeof v));
    assert_null(strstr(text, SECRET));
    assert_signature_verifies(text, SECRET);
    free(text);

    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.attempts, 1);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.bytes_in, strlen("{\"clusters\":[]}"));

    buf_cleanup(&body);
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
}

static void test_post_signed_without_token(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "{\"Accounts\":[]}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, NULL, 0, "test");
    struct http_engine *eng = new_engine(NULL);

    /* a body above curl's Expect: 100-continue threshold */
    struct buf payload;
    buf_init(&payload);
    buf_puts(&payload, "{\"NextToken\":\"");
    for (int i = 0; i < 3000; i++)
        buf_putc(&payload, (char)('a' + i % 26));
    buf_puts(&payload, "\"}");
    const struct sigv4_header hdrs[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "AWSOrganizationsV20161128.ListAccounts"},
    };
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_JSON_1_1;
    req.method = "POST";
    req.url = fakehttp_url(srv);
    req.service = "organizations";
    req.region = "us-east-1";
    req.creds = c;
    req.headers = hdrs;
    req.n_headers = 2;
    req.body = payload.data;
    req.body_len = payload.len;
    req.allow_http = 1;
    struct buf body;
    buf_init(&body);
    long status = 0;
    struct err e;
    assert_int_equal(http_perform(eng, &req, &body, &status, &e), 0);
    assert_string_equal(body.data, "{\"Accounts\":[]}");

    char *text = fakehttp_request_text(srv, 0);
    assert_non_null(text);
    char v[2048];
    assert_true(strncmp(text, "POST / HTTP/1.1\r\n", 17) == 0);
    assert_false(find_header(text, "X-Amz-Security-Token", v, sizeof v));
    assert_false(find_header(text, "Expect", v, sizeof v));
    assert_true(find_header(text, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-amz-json-1.1");
    assert_true(find_header(text, "Authorization", v, sizeof v));
    assert_non_null(
        strstr(v, "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
    assert_string_equal(strstr(text, "\r\n\r\n") + 4, payload.data);
    assert_signature_verifies(text, SECRET);
    free(text);

    buf_cleanup(&payload);
    buf_cleanup(&body);
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
}

static void test_unsigned_sends_only_given_headers(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "token-value", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine *eng = new_engine(NULL);
    const struct sigv4_header hdrs[] = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    char url[256];
    snprintf(url, sizeof url, "%s/latest/api/token", fakehttp_url(srv));
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_PLAIN;
    req.method = "PUT";
    req.url = url;
    req.headers = hdrs;
    req.n_headers = 1;
    req.allow_http = 1;
    req.no_retry = 1;
    struct buf body;
    buf_init(&body);
    struct err e;
    assert_int_equal(http_perform(eng, &req, &body, NULL, &e), 0);
    assert_string_equal(body.data, "token-value");
    char *text = fakehttp_request_text(srv, 0);
    char v[256];
    assert_true(strncmp(text, "PUT /latest/api/token HTTP/1.1\r\n", 32) == 0);
    assert_false(find_header(text, "Authorization", v, sizeof v));
    assert_false(find_header(text, "X-Amz-Date", v, sizeof v));
    assert_false(find_header(text, "Content-Type", v, sizeof v));
    assert_true(find_header(text, "X-aws-ec2-metadata-token-ttl-seconds", v, sizeof v));
    assert_string_equal(v, "21600");
    free(text);
    buf_cleanup(&body);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

struct retry_log {
    int n;
    int attempt[8];
    long delay[8];
    char code[8][ERR_CODE_MAX];
};

static void on_retry(void *ud, int attempt, long delay_ms, const struct err *e)
{
    struct retry_log *l = ud;
    if (l->n < 8) {
        l->attempt[l->n] = attempt;
        l->delay[l->n] = delay_ms;
        snprintf(l->code[l->n], sizeof l->code[l->n], "%s", e->code);
    }
    l->n++;
}

static void assert_backoffs_in_bounds(const struct retry_log *l)
{
    for (int i = 0; i < l->n && i < 8; i++) {
        long cap = 1L << (l->attempt[i] - 1);
        if (cap > 20)
            cap = 20;
        assert_true(l->delay[i] >= 0);
        assert_true(l->delay[i] <= cap * 1000);
    }
}

static void test_throttle_then_5xx_then_ok(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 429, "X-Amzn-Errortype: ThrottlingException:http://internal/\r\n",
         "{\"message\":\"Rate exceeded\"}", 0},
        {FAKEHTTP_RESPOND, 503, "", "", 0},
        {FAKEHTTP_RESPOND, 200, "", "{\"cluster\":{}}", 0},
    };
    struct script sc = {steps, 3};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct retry_log log;
    memset(&log, 0, sizeof log);
    struct http_engine_options o;
    default_options(&o);
    o.on_retry = on_retry;
    o.on_retry_ud = &log;
    struct http_engine *eng = new_engine(&o);
    char url[256];
    snprintf(url, sizeof url, "%s/clusters/prod", fakehttp_url(srv));
    struct aws_request req = eks_get(url, c);
    struct buf body;
    buf_init(&body);
    long status = 0;
    struct err e;
    assert_int_equal(http_perform(eng, &req, &body, &status, &e), 0);
    assert_int_equal(status, 200);
    assert_string_equal(body.data, "{\"cluster\":{}}");
    assert_int_equal(log.n, 2);
    assert_int_equal(log.attempt[0], 1);
    assert_string_equal(log.code[0], "ThrottlingException");
    assert_int_equal(log.attempt[1], 2);
    assert_string_equal(log.code[1], "HTTP503");
    assert_backoffs_in_bounds(&log);
    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.throttles, 1);
    assert_int_equal(st.failures, 0);
    /* each attempt is signed afresh and verifies */
    for (int i = 0; i < 3; i++) {
        char *text = fakehttp_request_text(srv, i);
        assert_non_null(text);
        assert_signature_verifies(text, SECRET);
        free(text);
    }
    buf_cleanup(&body);
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
}

static void test_reset_then_ok(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESET, 0, "", NULL, 0},
        {FAKEHTTP_RESPOND, 200, "", "ok", 0},
    };
    struct script sc = {steps, 2};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct retry_log log;
    memset(&log, 0, sizeof log);
    struct http_engine_options o;
    default_options(&o);
    o.on_retry = on_retry;
    o.on_retry_ud = &log;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct buf body;
    buf_init(&body);
    struct err e;
    assert_int_equal(http_perform(eng, &req, &body, NULL, &e), 0);
    assert_string_equal(body.data, "ok");
    assert_int_equal(log.n, 1);
    assert_string_equal(log.code[0], ERR_CONNECT);
    assert_backoffs_in_bounds(&log);
    buf_cleanup(&body);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

struct capture {
    int called;
    long status;
    int attempts;
    struct err err;
    char body[256];
    size_t body_len;
};

static void capture_done(void *ud, const struct aws_response *resp)
{
    struct capture *cap = ud;
    cap->called++;
    cap->status = resp->status;
    cap->attempts = resp->attempts;
    cap->err = resp->err;
    snprintf(cap->body, sizeof cap->body, "%s", resp->body);
    cap->body_len = resp->body_len;
}

static void test_always_503_gives_up(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 503, "x-amzn-RequestId: rid-503\r\n",
         "{\"__type\":\"ServiceUnavailableException\",\"message\":\"try later\"}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct retry_log log;
    memset(&log, 0, sizeof log);
    struct http_engine_options o;
    default_options(&o);
    assert_int_equal(o.max_attempts, 3);
    o.on_retry = on_retry;
    o.on_retry_ud = &log;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), c);
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    struct err e;
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(cap.called, 1);
    assert_int_equal(cap.attempts, 3);
    assert_int_equal(cap.status, 503);
    assert_string_equal(cap.err.code, "ServiceUnavailableException");
    assert_int_equal(cap.err.http_status, 503);
    assert_string_equal(cap.err.request_id, "rid-503");
    assert_string_equal(cap.err.message, "try later");
    assert_int_equal(fakehttp_requests(srv), 3);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.attempt[0], 1);
    assert_int_equal(log.attempt[1], 2);
    assert_backoffs_in_bounds(&log);
    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.throttles, 0);
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
}

static void test_env_max_attempts_one(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 503, "", "", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    setenv("AWS_MAX_ATTEMPTS", "1", 1);
    struct retry_log log;
    memset(&log, 0, sizeof log);
    struct http_engine_options o;
    default_options(&o);
    assert_int_equal(o.max_attempts, 1);
    o.on_retry = on_retry;
    o.on_retry_ud = &log;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    long status = 0;
    struct err e;
    assert_int_equal(http_perform(eng, &req, NULL, &status, &e), -1);
    assert_string_equal(e.code, "HTTP503");
    assert_int_equal(status, 503);
    assert_int_equal(log.n, 0);
    assert_int_equal(fakehttp_requests(srv), 1);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void test_env_config(void **state)
{
    (void)state;
    struct http_engine_options o;
    struct err e;
    setenv("AWS_RETRY_MODE", "bogus", 1);
    err_clear(&e);
    assert_int_equal(http_engine_options_init(&o, &e), -1);
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "AWS_RETRY_MODE"));

    setenv("AWS_RETRY_MODE", "adaptive", 1);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.retry_mode, RETRY_ADAPTIVE);
    assert_int_equal(o.max_attempts, 3);
    setenv("AWS_RETRY_MODE", "legacy", 1);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.retry_mode, RETRY_LEGACY);
    assert_int_equal(o.max_attempts, 5);
    setenv("AWS_MAX_ATTEMPTS", "7", 1);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.max_attempts, 7);
    unsetenv("AWS_RETRY_MODE");

    const char *bad[] = {"0", "-1", "abc", "3x", "1000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWS_MAX_ATTEMPTS", bad[i], 1);
        err_clear(&e);
        assert_int_equal(http_engine_options_init(&o, &e), -1);
        assert_string_equal(e.code, ERR_CONFIG);
    }
    unsetenv("AWS_MAX_ATTEMPTS");

    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.retry_mode, RETRY_STANDARD);
    assert_int_equal(o.max_attempts, 3);
    assert_int_equal(o.max_in_flight, 128);
    assert_int_equal(o.max_per_key, 16);
    assert_int_equal(o.max_body, 16 * 1024 * 1024);
    assert_null(o.ca_bundle);

    /* an unreadable CA bundle fails at engine creation */
    setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem", 1);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_string_equal(o.ca_bundle, "/nonexistent/ca.pem");
    err_clear(&e);
    assert_null(http_engine_new(&o, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    unsetenv("AWS_CA_BUNDLE");
    /* ... and so does a file without a certificate */
    char path[] = "/tmp/egressscan-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a pem\n", 10), 10);
    close(fd);
    default_options(&o);
    o.ca_bundle = path;
    err_clear(&e);
    assert_null(http_engine_new(&o, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    unlink(path);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    assert_int_equal(http_backoff_ms(1, 0.0), 0);
    assert_int_equal(http_backoff_ms(1, 0.5), 500);
    assert_int_equal(http_backoff_ms(1, 1.0), 1000);
    assert_int_equal(http_backoff_ms(2, 1.0), 2000);
    assert_int_equal(http_backoff_ms(3, 1.0), 4000);
    assert_int_equal(http_backoff_ms(5, 1.0), 16000);
    assert_int_equal(http_backoff_ms(6, 1.0), 20000);
    assert_int_equal(http_backoff_ms(64, 1.0), 20000);
    assert_int_equal(http_backoff_ms(1000000, 0.5), 10000);
    assert_int_equal(http_backoff_ms(0, 1.0), 1000);
    assert_int_equal(http_backoff_ms(-3, 1.0), 1000);
    assert_int_equal(http_backoff_ms(2, -1.0), 0);
    assert_int_equal(http_backoff_ms(2, 7.0), 2000);
    assert_int_equal(http_backoff_ms(2, 0.0 / 0.0), 0);
    for (int a = 1; a < 10; a++) {
        for (double r = 0; r < 1.0; r += 0.01) {
            long d = http_backoff_ms(a, r);
            long cap = a > 5 ? 20 : (1L << (a - 1)) > 20 ? 20 : 1L << (a - 1);
            assert_true(d >= 0 && d <= cap * 1000);
        }
    }
}

static void test_body_cap(void **state)
{
    (void)state;
    char big[5001];
    memset(big, 'x', 5000);
    big[5000] = '\0';
    char exact[1001];
    memset(exact, 'y', 1000);
    exact[1000] = '\0';
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 200, "", big, 0},                               /* announced length */
        {FAKEHTTP_RESPOND, 200, "Transfer-Encoding: chunked\r\n", big, 0}, /* unannounced */
        {FAKEHTTP_RESPOND, 200, "", exact, 0},
    };
    struct script sc = {steps, 3};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_body = 1000;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct buf body;
    buf_init(&body);
    struct err e;
    for (int i = 0; i < 2; i++) {
        err_clear(&e);
        assert_int_equal(http_perform(eng, &req, &body, NULL, &e), -1);
        assert_string_equal(e.code, ERR_TOO_LARGE);
    }
    assert_int_equal(fakehttp_requests(srv), 2); /* not retried */
    assert_int_equal(http_perform(eng, &req, &body, NULL, &e), 0);
    assert_int_equal(body.len, 1000);
    buf_cleanup(&body);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* A body over the cap fails the request with an error naming the cap, whatever the status (a
 * 503 is not retried into the same flood), and the callback sees none of the bytes that did
 * arrive: nothing parses half an answer. */
static void test_body_cap_error_and_no_partial_body(void **state)
{
    (void)state;
    static char big[100001]; /* several write callbacks: the first ones fit under the cap */
    memset(big, 'x', 100000);
    memcpy(big, "{\"clusters\":[\"a\",", 17); /* a parser given the prefix would see JSON */
    big[100000] = '\0';
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 200, "Transfer-Encoding: chunked\r\n", big, 0},
        {FAKEHTTP_RESPOND, 503, "Transfer-Encoding: chunked\r\n", big, 0},
    };
    struct script sc = {steps, 2};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_body = 50000;
    o.max_attempts = 3;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    for (int i = 0; i < 2; i++) {
        struct capture cap;
        memset(&cap, 0, sizeof cap);
        struct err e;
        err_clear(&e);
        assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), 0);
        assert_int_equal(http_engine_run(eng, &e), 0);
        assert_int_equal(cap.called, 1);
        assert_string_equal(cap.err.code, ERR_TOO_LARGE);
        assert_non_null(strstr(cap.err.message, "50000 bytes"));
        assert_int_equal(cap.attempts, 1);
        assert_int_equal(cap.body_len, 0);
        assert_string_equal(cap.body, "");
    }
    assert_int_equal(fakehttp_requests(srv), 2);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void test_truncated_body(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_TRUNCATE, 200, "", "{\"clusters\":[\"a\",\"b\",\"c\",\"d\"]}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_attempts = 2;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    struct err e;
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(cap.called, 1);
    assert_string_equal(cap.err.code, ERR_CONNECT);
    assert_int_equal(cap.attempts, 2);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void test_timeout(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_HANG, 0, "", NULL, 3000}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.timeout_ms = 200;
    o.max_attempts = 1;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct err e;
    assert_int_equal(http_perform(eng, &req, NULL, NULL, &e), -1);
    assert_string_equal(e.code, ERR_TIMEOUT);
    long ms = elapsed_ms(&t0);
    assert_true(ms >= 150 && ms < 2000);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void test_error_messages_hold_no_secrets(void **state)
{
    (void)state;
    /* a port nobody listens on */
    struct fakehttp *gone = fakehttp_start(script_handler, NULL, NULL, NULL);
    assert_non_null(gone);
    char url[256];
    snprintf(url, sizeof url, "%s/clusters?secretish=shh", fakehttp_url(gone));
    fakehttp_stop(gone);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct http_engine_options o;
    default_options(&o);
    o.max_attempts = 1;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(url, c);
    struct err e;
    assert_int_equal(http_perform(eng, &req, NULL, NULL, &e), -1);
    assert_string_equal(e.code, ERR_CONNECT);
    assert_null(strstr(e.message, "shh"));
    assert_null(strstr(e.message, TOKEN));
    assert_null(strstr(e.message, SECRET));
    assert_null(strstr(e.message, "Authorization"));
    assert_null(strstr(e.message, "Signature"));
    http_engine_free(eng);
    creds_unref(c);
}

static void test_access_denied_decoded(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 400, "x-amzn-RequestId: 3f1e-rid\r\nContent-Type: application/json\r\n",
         "{\"__type\":\"com.amazonaws.eks#AccessDeniedException\",\"message\":\"User: arn:aws:sts::"
         "1:assumed-role/r/s is not authorized to perform: eks:ListClusters\"}",
         0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct http_engine *eng = new_engine(NULL);
    struct aws_request req = eks_get(fakehttp_url(srv), c);
    long status = 0;
    struct err e;
    assert_int_equal(http_perform(eng, &req, NULL, &status, &e), -1);
    assert_int_equal(status, 400);
    assert_string_equal(e.code, "AccessDeniedException");
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.request_id, "3f1e-rid");
    assert_non_null(strstr(e.message, "not authorized to perform: eks:ListClusters"));
    assert_int_equal(fakehttp_requests(srv), 1); /* not retried */
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
}

static void test_http_needs_allow_http(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "ok", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine *eng = new_engine(NULL);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    req.allow_http = 0;
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    struct err e;
    err_clear(&e);
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_non_null(strstr(e.message, "http://"));
    assert_int_equal(http_perform(eng, &req, NULL, NULL, &e), -1);
    /* other malformed requests */
    const char *bad_urls[] = {"ftp://x/", "https://", "https://a b/", "https://h/#f",
                              "https://user@h/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        req.url = bad_urls[i];
        assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), -1);
    }
    const struct sigv4_header inject[] = {{"X-Test", "a\r\nX-Evil: 1"}};
    req = eks_get(fakehttp_url(srv), NULL);
    req.headers = inject;
    req.n_headers = 1;
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), -1);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(cap.called, 0);
    assert_int_equal(fakehttp_requests(srv), 0);

    req = eks_get(fakehttp_url(srv), NULL); /* allow_http = 1 */
    assert_int_equal(http_perform(eng, &req, NULL, NULL, &e), 0);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* ---- concurrency ---- */

struct load {
    pthread_mutex_t mu;
    int in_flight, max_in_flight;
    int per_key[8], max_per_key[8];
    int slow_key; /* requests of this key take slow_ms */
    int slow_ms, fast_ms;
};

static void load_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct load *l = ud;
    const char *k = strstr(req->target, "k=");
    int key = k ? atoi(k + 2) : 0;
    if (key < 0 || key >= 8)
        key = 0;
    pthread_mutex_lock(&l->mu);
    l->in_flight++;
    if (l->in_flight > l->max_in_flight)
        l->max_in_flight = l->in_flight;
    l->per_key[key]++;
    if (l->per_key[key] > l->max_per_key[key])
        l->max_per_key[key] = l->per_key[key];
    pthread_mutex_unlock(&l->mu);
    sleep_ms(key == l->slow_key ? l->slow_ms : l->fast_ms);
    pthread_mutex_lock(&l->mu);
    l->in_flight--;
    l->per_key[key]--;
    pthread_mutex_unlock(&l->mu);
    char body[64];
    snprintf(body, sizeof body, "{\"key\":%d}", key);
    fakehttp_respond(resp, 200, "", body);
}

struct tally {
    int done, ok;
    int done_by_key[8];
    long last_done_ms[8];
    struct timespec t0;
};

struct tally_ref {
    struct tally *t;
    int key;
};

static void tally_done(void *ud, const struct aws_response *resp)
{
    struct tally_ref *r = ud;
    r->t->done++;
    if (!err_isset(&resp->err) && resp->status == 200)
        r->t->ok++;
    r->t->done_by_key[r->key]++;
    r->t->last_done_ms[r->key] = elapsed_ms(&r->t->t0);
}

static void test_many_concurrent_reuse_connections(void **state)
{
    (void)state;
    struct load l;
    memset(&l, 0, sizeof l);
    pthread_mutex_init(&l.mu, NULL);
    l.slow_key = -1;
    l.fast_ms = 2;
    struct fakehttp *srv = fakehttp_start(load_handler, &l, NULL, NULL);
    assert_non_null(srv);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct http_engine_options o;
    default_options(&o);
    o.max_in_flight = 32;
    o.max_per_key = -1;
    struct http_engine *eng = new_engine(&o);
    enum { N = 200 };
    static struct tally_ref refs[N];
    struct tally t;
    memset(&t, 0, sizeof t);
    clock_gettime(CLOCK_MONOTONIC, &t.t0);
    char url[256];
    snprintf(url, sizeof url, "%s/clusters?k=1", fakehttp_url(srv));
    for (int wave = 0; wave < 2; wave++) {
        for (int i = 0; i < N; i++) {
            refs[i].t = &t;
            refs[i].key = 1;
            struct aws_request req = eks_get(url, c);
            char account[16];
            snprintf(account, sizeof account, "%012d", i); /* every request another account */
            req.pace_key = account;
            struct err e;
            assert_int_equal(http_submit(eng, &req, tally_done, &refs[i], &e), 0);
        }
        struct err e;
        assert_int_equal(http_engine_run(eng, &e), 0);
        assert_int_equal(t.done, N * (wave + 1));
        assert_int_equal(t.ok, N * (wave + 1));
    }
    int conns = fakehttp_connections(srv);
    print_message("    %d requests over %d connections (max_in_flight 32), %d concurrent at most\n",
                  2 * N, conns, l.max_in_flight);
    assert_true(conns <= 32);
    assert_true(l.max_in_flight <= 32);
    assert_true(l.max_in_flight > 1); /* and they did run concurrently */
    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.requests, 2 * N);
    assert_int_equal(st.attempts, 2 * N);
    http_engine_free(eng);
    creds_unref(c);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&l.mu);
}

static void test_per_key_cap_without_head_of_line_blocking(void **state)
{
    (void)state;
    struct load l;
    memset(&l, 0, sizeof l);
    pthread_mutex_init(&l.mu, NULL);
    l.slow_key = 1;
    l.slow_ms = 150;
    l.fast_ms = 1;
    struct fakehttp *srv = fakehttp_start(load_handler, &l, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_in_flight = 8;
    o.max_per_key = 2;
    struct http_engine *eng = new_engine(&o);
    struct tally t;
    memset(&t, 0, sizeof t);
    clock_gettime(CLOCK_MONOTONIC, &t.t0);
    /* the slow key's 6 requests are queued first, then 3 other keys' */
    struct tally_ref refs[24];
    int n = 0;
    for (int key = 1; key <= 4; key++) {
        char url[256], pace[16];
        snprintf(url, sizeof url, "%s/x?k=%d", fakehttp_url(srv), key);
        snprintf(pace, sizeof pace, "acct%d", key);
        for (int i = 0; i < 6; i++) {
            refs[n].t = &t;
            refs[n].key = key;
            struct aws_request req = eks_get(url, NULL);
            req.pace_key = pace;
            struct err e;
            assert_int_equal(http_submit(eng, &req, tally_done, &refs[n], &e), 0);
            n++;
        }
    }
    struct err e;
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(t.ok, 24);
    for (int key = 1; key <= 4; key++) {
        assert_int_equal(t.done_by_key[key], 6);
        assert_true(l.max_per_key[key] <= 2);
    }
    assert_int_equal(l.max_per_key[1], 2);
    /* the slow key needs 3 rounds of 150 ms; the others finished long before it */
    assert_true(t.last_done_ms[1] >= 400);
    for (int key = 2; key <= 4; key++)
        assert_true(t.last_done_ms[key] < t.last_done_ms[1] - 150);
    assert_true(l.max_in_flight > 2);
    http_engine_free(eng);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&l.mu);
}

/* The callbacks stream work: each completion submits the next request. */
struct chain {
    struct http_engine *eng;
    const char *url;
    int remaining, done;
    int nested_rc;
};

static void chain_done(void *ud, const struct aws_response *resp)
{
    struct chain *ch = ud;
    assert_false(err_isset(&resp->err));
    ch->done++;
    if (ch->done == 1) { /* the engine refuses to be re-entered */
        struct aws_request req = eks_get(ch->url, NULL);
        struct err e;
        ch->nested_rc = http_perform(ch->eng, &req, NULL, NULL, &e) +
                        http_engine_run(ch->eng, &e); /* both -1 */
    }
    if (ch->remaining > 0) {
        ch->remaining--;
        struct aws_request req = eks_get(ch->url, NULL);
        struct err e;
        assert_int_equal(http_submit(ch->eng, &req, chain_done, ch, &e), 0);
        if (ch->remaining > 0 && ch->remaining % 2 == 0) { /* fan out a little too */
            ch->remaining--;
            assert_int_equal(http_submit(ch->eng, &req, chain_done, ch, &e), 0);
        }
    }
}

static void test_callbacks_submit_more(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "{}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine *eng = new_engine(NULL);
    struct chain ch = {eng, fakehttp_url(srv), 40, 0, 0};
    struct aws_request req = eks_get(ch.url, NULL);
    struct err e;
    assert_int_equal(http_submit(eng, &req, chain_done, &ch, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(ch.remaining, 0);
    assert_int_equal(ch.done, 41);
    assert_int_equal(ch.nested_rc, -2);
    assert_int_equal(fakehttp_requests(srv), 41);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* The order in which the server saw the requests (by target). */
struct order {
    pthread_mutex_t mu;
    char seen[32][32];
    int n;
};

static void order_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct order *o = ud;
    pthread_mutex_lock(&o->mu);
    if (o->n < 32)
        snprintf(o->seen[o->n++], sizeof o->seen[0], "%s", req->target);
    pthread_mutex_unlock(&o->mu);
    fakehttp_respond(resp, 200, "", "{}");
}

static void count_done(void *ud, const struct aws_response *resp)
{
    int *done = ud;
    if (!err_isset(&resp->err))
        (*done)++;
}

/* A priority request (an Organizations page that the rest waits for) goes ahead of what is queued;
 * the others keep their order. */
static void test_priority_goes_first(void **state)
{
    (void)state;
    struct order o;
    memset(&o, 0, sizeof o);
    pthread_mutex_init(&o.mu, NULL);
    struct fakehttp *srv = fakehttp_start(order_handler, &o, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options opt;
    default_options(&opt);
    opt.max_in_flight = 1;
    struct http_engine *eng = new_engine(&opt);
    int done = 0;
    struct err e;
    char url[128];
    for (int i = 0; i < 4; i++) {
        snprintf(url, sizeof url, "%s/n/%d", fakehttp_url(srv), i);
        struct aws_request req = eks_get(url, NULL);
        assert_int_equal(http_submit(eng, &req, count_done, &done, &e), 0);
    }
    snprintf(url, sizeof url, "%s/first", fakehttp_url(srv));
    struct aws_request prio = eks_get(url, NULL);
    prio.priority = 1;
    assert_int_equal(http_submit(eng, &prio, count_done, &done, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(done, 5);
    assert_int_equal(o.n, 5);
    assert_string_equal(o.seen[0], "/first");
    for (int i = 0; i < 4; i++) {
        snprintf(url, sizeof url, "/n/%d", i);
        assert_string_equal(o.seen[1 + i], url);
    }
    http_engine_free(eng);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&o.mu);
}

/* The feeder is asked for work whenever the engine is hungry, and what it submits runs. */
struct feeder {
    struct http_engine *eng;
    const char *url;
    int left, done, calls;
};

static void feed_more(void *ud)
{
    struct feeder *f = ud;
    f->calls++;
    while (f->left > 0 && http_engine_hungry(f->eng)) {
        struct aws_request req = eks_get(f->url, NULL);
        struct err e;
        assert_int_equal(http_submit(f->eng, &req, count_done, &f->done, &e), 0);
        f->left--;
    }
}

static void test_feeder_supplies_work_when_hungry(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "{}", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options opt;
    default_options(&opt);
    opt.max_in_flight = 8; /* hungry below 8 / 4 + 1 = 3 ready requests */
    struct http_engine *eng = new_engine(&opt);
    assert_true(http_engine_hungry(eng));
    struct feeder f = {eng, fakehttp_url(srv), 50, 0, 0};
    struct err e;
    for (int i = 0; i < 3; i++) {
        struct aws_request req = eks_get(f.url, NULL);
        assert_int_equal(http_submit(eng, &req, count_done, &f.done, &e), 0);
    }
    assert_false(http_engine_hungry(eng)); /* three ready to start */
    http_engine_set_feeder(eng, feed_more, &f);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(f.left, 0);
    assert_int_equal(f.done, 53);
    assert_true(f.calls > 1);
    assert_int_equal(fakehttp_requests(srv), 53);
    http_engine_set_feeder(eng, NULL, NULL);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void never_called(void *ud, const struct aws_response *resp)
{
    (void)resp;
    int *called = ud;
    (*called)++;
}

static void test_free_with_unfinished_work(void **state)
{
    (void)state;
    const struct step fails[] = {{FAKEHTTP_RESPOND, 503, "", "", 0}};
    const struct step slow[] = {{FAKEHTTP_RESPOND, 200, "", "late", 5000}};
    const struct step fast[] = {{FAKEHTTP_RESPOND, 200, "", "ok", 0}};
    struct script sc_fails = {fails, 1}, sc_slow = {slow, 1}, sc_fast = {fast, 1};
    struct fakehttp *srv_fails = fakehttp_start(script_handler, &sc_fails, NULL, NULL);
    struct fakehttp *srv_slow = fakehttp_start(script_handler, &sc_slow, NULL, NULL);
    struct fakehttp *srv_fast = fakehttp_start(script_handler, &sc_fast, NULL, NULL);
    assert_non_null(srv_fails);
    assert_non_null(srv_slow);
    assert_non_null(srv_fast);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");
    struct http_engine_options o;
    default_options(&o);
    o.max_in_flight = 2;
    o.max_per_key = 1;
    struct http_engine *eng = new_engine(&o);
    int called = 0;
    struct err e;
    /* one that will be waiting to retry; one in flight for 5 s; four behind their key's cap */
    struct aws_request req = eks_get(fakehttp_url(srv_fails), c);
    assert_int_equal(http_submit(eng, &req, never_called, &called, &e), 0);
    req = eks_get(fakehttp_url(srv_slow), c);
    req.pace_key = "acct";
    for (int i = 0; i < 5; i++)
        assert_int_equal(http_submit(eng, &req, never_called, &called, &e), 0);
    /* run just one other request to completion: the rest stays unfinished */
    struct aws_request one = eks_get(fakehttp_url(srv_fast), NULL);
    one.pace_key = "other";
    assert_int_equal(http_perform(eng, &one, NULL, NULL, &e), 0);
    /* (what reached the servers by now is racy: the loop stopped with transfers under way) */
    assert_true(fakehttp_requests(srv_fails) >= 1);
    assert_true(fakehttp_requests(srv_slow) <= 1); /* the key cap held the other four back */
    http_engine_free(eng);
    assert_int_equal(called, 0);
    assert_int_equal(c->refs, 1); /* the engine dropped its references */
    creds_unref(c);
    fakehttp_stop(srv_fails);
    fakehttp_stop(srv_slow);
    fakehttp_stop(srv_fast);
    http_engine_free(NULL);
}

static void test_retry_quota(void **state)
{
    (void)state;
    /* 110 requests that always fail with 503, 2 attempts each: the 500-token quota pays for
     * exactly 100 retries of cost 5, the last 10 requests get none. */
    const struct step steps[] = {{FAKEHTTP_RESPOND, 503, "", "", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_attempts = 2;
    o.max_in_flight = 128;
    struct http_engine *eng = new_engine(&o);
    static struct tally_ref refs[110];
    struct tally t;
    memset(&t, 0, sizeof t);
    clock_gettime(CLOCK_MONOTONIC, &t.t0);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct err e;
    for (int i = 0; i < 110; i++) {
        refs[i].t = &t;
        assert_int_equal(http_submit(eng, &req, tally_done, &refs[i], &e), 0);
    }
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(t.done, 110);
    assert_int_equal(t.ok, 0);
    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.retries, 100);
    assert_int_equal(st.attempts, 210);
    assert_int_equal(st.failures, 110);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* ---- expired credentials: one refresh per request, then an error, never a loop ---- */

#define AKID2 "ASIAREFRESHED0002"
#define SECRET2 "refreshedSecret/K7MDENG+bPxRfiCYEXAMPLE"
#define TOKEN2 "IQoJREFRESHEDTOKEN+/=="

static const char expired_hdr[] = "X-Amzn-Errortype: ExpiredTokenException:http://internal/\r\n";
static const char expired_body[] = "{\"message\":\"The security token included in the request is "
                                   "expired\"}";

struct refresher {
    int calls;
    int decline;             /* return -1 */
    int fail;                /* answer NULL with an AccessDenied error */
    struct http_engine *eng; /* deferred: answer from a request's callback on this engine */
    const char *defer_url;   /* ... to this URL */
    char pace_key[32];       /* what the engine passed */
    char stale_key[32];
    http_refreshed_fn done; /* deferred answer */
    void *cookie;
};

static void refresher_answer(struct refresher *rf, http_refreshed_fn done, void *cookie)
{
    if (rf->fail) {
        struct err e;
        err_set(&e, "AccessDenied", "not authorized to perform sts:AssumeRole");
        done(cookie, NULL, &e);
        return;
    }
    done(cookie, creds_new(AKID2, SECRET2, TOKEN2, 0, "assume-role:111122223333"), NULL);
}

static void refresher_deferred_done(void *ud, const struct aws_response *resp)
{
    struct refresher *rf = ud;
    (void)resp;
    refresher_answer(rf, rf->done, rf->cookie);
}

static int test_refresh(void *ud, const char *pace_key, struct aws_credentials *stale,
                        http_refreshed_fn done, void *cookie)
{
    struct refresher *rf = ud;
    rf->calls++;
    snprintf(rf->pace_key, sizeof rf->pace_key, "%s", pace_key ? pace_key : "(null)");
    snprintf(rf->stale_key, sizeof rf->stale_key, "%s", stale->access_key_id);
    if (rf->decline)
        return -1;
    if (rf->eng) { /* as an AssumeRole would: answered later, from the event loop */
        rf->done = done;
        rf->cookie = cookie;
        struct aws_request r;
        memset(&r, 0, sizeof r);
        r.method = "GET";
        r.url = rf->defer_url;
        r.allow_http = 1;
        struct err e;
        return http_submit(rf->eng, &r, refresher_deferred_done, rf, &e);
    }
    refresher_answer(rf, done, cookie);
    return 0;
}

/* Runs one signed EKS GET against a server answering steps; fills cap, stats. */
static void run_expired(const struct step *steps, int n, struct refresher *rf, int deferred,
                        struct capture *cap, struct http_engine_stats *st, struct fakehttp **out)
{
    static struct script sc;
    sc.steps = steps;
    sc.n = n;
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    static const struct step ok_step[] = {{FAKEHTTP_RESPOND, 200, "", "{}", 0}};
    static struct script ok_sc = {ok_step, 1};
    struct fakehttp *sts = deferred ? fakehttp_start(script_handler, &ok_sc, NULL, NULL) : NULL;
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "assume-role:111122223333");
    struct http_engine_options o;
    default_options(&o);
    struct http_engine *eng = new_engine(&o);
    if (rf) {
        if (deferred) {
            rf->eng = eng;
            rf->defer_url = fakehttp_url(sts);
        }
        http_engine_set_refresher(eng, test_refresh, rf);
    }
    char url[256];
    snprintf(url, sizeof url, "%s/clusters/prod", fakehttp_url(srv));
    struct aws_request req = eks_get(url, c);
    req.pace_key = "111122223333";
    memset(cap, 0, sizeof *cap);
    struct err e;
    assert_int_equal(http_submit(eng, &req, capture_done, cap, &e), 0);
    creds_unref(c); /* the engine holds its own reference */
    assert_int_equal(http_engine_run(eng, &e), 0);
    http_engine_get_stats(eng, st);
    http_engine_free(eng);
    if (sts) {
        assert_int_equal(fakehttp_requests(sts), 1);
        fakehttp_stop(sts);
    }
    *out = srv;
}

static void assert_sent_with(struct fakehttp *srv, int i, const char *akid, const char *token)
{
    char *text = fakehttp_request_text(srv, i);
    assert_non_null(text);
    char want[64];
    snprintf(want, sizeof want, "Credential=%s/", akid);
    assert_non_null(strstr(text, want));
    char tok[256];
    assert_true(find_header(text, "X-Amz-Security-Token", tok, sizeof tok));
    assert_string_equal(tok, token);
    free(text);
}

static void test_expired_refreshed_once_then_ok(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 403, expired_hdr, expired_body, 0},
        {FAKEHTTP_RESPOND, 200, "", "{\"cluster\":{}}", 0},
    };
    for (int deferred = 0; deferred <= 1; deferred++) {
        struct refresher rf;
        memset(&rf, 0, sizeof rf);
        struct capture cap;
        struct http_engine_stats st;
        struct fakehttp *srv;
        run_expired(steps, 2, &rf, deferred, &cap, &st, &srv);
        assert_int_equal(cap.called, 1);
        assert_int_equal(cap.status, 200);
        assert_false(err_isset(&cap.err));
        assert_int_equal(cap.attempts, 2);
        assert_int_equal(rf.calls, 1);
        assert_string_equal(rf.pace_key, "111122223333");
        assert_string_equal(rf.stale_key, AKID);
        /* the first attempt with the old credentials, the second with the refreshed ones */
        assert_int_equal(fakehttp_requests(srv), 2);
        assert_sent_with(srv, 0, AKID, TOKEN);
        assert_sent_with(srv, 1, AKID2, TOKEN2);
        assert_int_equal(st.expired, 1);
        assert_int_equal(st.refreshes, 1);
        assert_int_equal(st.retries, 0);             /* not a retry of the retry mode */
        assert_int_equal(st.attempts, 2 + deferred); /* + the deferred refresher's own request */
        assert_int_equal(st.failures, 0);
        fakehttp_stop(srv);
    }
}

static void test_expired_again_after_refresh_is_an_error(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 400, "",
                                  "<ErrorResponse><Error><Type>Sender"
                                  "</Type><Code>ExpiredToken</Code><Message>The security token "
                                  "included in the request is expired</Message></Error>"
                                  "</ErrorResponse>",
                                  0}};
    for (int deferred = 0; deferred <= 1; deferred++) {
        struct refresher rf;
        memset(&rf, 0, sizeof rf);
        struct capture cap;
        struct http_engine_stats st;
        struct fakehttp *srv;
        run_expired(steps, 1, &rf, deferred, &cap, &st, &srv);
        assert_int_equal(cap.called, 1);
        assert_string_equal(cap.err.code, "ExpiredToken");
        assert_int_equal(cap.status, 400);
        /* one refresh, one more attempt, then the error: not a loop */
        assert_int_equal(rf.calls, 1);
        assert_int_equal(fakehttp_requests(srv), 2);
        assert_int_equal(cap.attempts, 2);
        assert_sent_with(srv, 1, AKID2, TOKEN2);
        assert_int_equal(st.expired, 2);
        assert_int_equal(st.refreshes, 1);
        assert_int_equal(st.failures, 1);
        fakehttp_stop(srv);
    }
}

static void test_expired_without_refresh(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 403, expired_hdr, expired_body, 0},
        {FAKEHTTP_RESPOND, 200, "", "{}", 0},
    };
    struct capture cap;
    struct http_engine_stats st;
    struct fakehttp *srv;
    /* no refresher: the error as it came, after one attempt (not retryable) */
    run_expired(steps, 2, NULL, 0, &cap, &st, &srv);
    assert_string_equal(cap.err.code, "ExpiredTokenException");
    assert_int_equal(fakehttp_requests(srv), 1);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.refreshes, 0);
    fakehttp_stop(srv);
    /* a refresher with nothing fresher (base credentials, say): the same */
    struct refresher rf;
    memset(&rf, 0, sizeof rf);
    rf.decline = 1;
    run_expired(steps, 2, &rf, 0, &cap, &st, &srv);
    assert_int_equal(rf.calls, 1);
    assert_string_equal(cap.err.code, "ExpiredTokenException");
    assert_int_equal(fakehttp_requests(srv), 1);
    fakehttp_stop(srv);
    /* a refresh that fails: its error, named as such, and nothing sent again */
    for (int deferred = 0; deferred <= 1; deferred++) {
        memset(&rf, 0, sizeof rf);
        rf.fail = 1;
        run_expired(steps, 2, &rf, deferred, &cap, &st, &srv);
        assert_int_equal(cap.called, 1);
        assert_int_equal(rf.calls, 1);
        assert_string_equal(cap.err.code, "AccessDenied");
        assert_non_null(strstr(cap.err.message, "refreshing expired credentials"));
        assert_int_equal(fakehttp_requests(srv), 1);
        assert_int_equal(st.refreshes, 0);
        fakehttp_stop(srv);
    }
}

/* The retry quota is per pace key, as the SDKs keep one per client: an account whose every
 * request fails spends its own quota, not the fleet's. */
static void test_retry_quota_per_key(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 503, "", "", 0}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_attempts = 2;
    o.max_per_key = -1;
    struct http_engine *eng = new_engine(&o);
    static struct tally_ref refs[120];
    struct tally t;
    memset(&t, 0, sizeof t);
    clock_gettime(CLOCK_MONOTONIC, &t.t0);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct err e;
    /* 110 requests of the hot account: its 500 tokens pay for 100 retries */
    req.pace_key = "hot";
    for (int i = 0; i < 110; i++) {
        refs[i].t = &t;
        assert_int_equal(http_submit(eng, &req, tally_done, &refs[i], &e), 0);
    }
    assert_int_equal(http_engine_run(eng, &e), 0);
    struct http_engine_stats st;
    http_engine_get_stats(eng, &st);
    assert_int_equal(st.retries, 100);
    assert_int_equal(st.quota_refusals, 10);
    /* another account still has its whole quota: each of its requests is retried */
    req.pace_key = "cold";
    for (int i = 110; i < 120; i++) {
        refs[i].t = &t;
        assert_int_equal(http_submit(eng, &req, tally_done, &refs[i], &e), 0);
    }
    assert_int_equal(http_engine_run(eng, &e), 0);
    http_engine_get_stats(eng, &st);
    assert_int_equal(t.done, 120);
    assert_int_equal(st.retries, 110);
    assert_int_equal(st.quota_refusals, 10);
    assert_int_equal(st.attempts, 230);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

static void test_env_timeouts(void **state)
{
    (void)state;
    struct http_engine_options o;
    struct err e;
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.timeout_ms, 30000);
    assert_int_equal(o.connect_timeout_ms, 5000);
    setenv("EGRESSSCAN_HTTP_TIMEOUT_MS", "1500", 1);
    setenv("EGRESSSCAN_CONNECT_TIMEOUT_MS", "700", 1);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.timeout_ms, 1500);
    assert_int_equal(o.connect_timeout_ms, 700);
    const char *bad[] = {"0", "-5", "1.5", "fast", "3600001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("EGRESSSCAN_HTTP_TIMEOUT_MS", bad[i], 1);
        err_clear(&e);
        assert_int_equal(http_engine_options_init(&o, &e), -1);
        assert_string_equal(e.code, ERR_CONFIG);
        assert_non_null(strstr(e.message, "EGRESSSCAN_HTTP_TIMEOUT_MS"));
    }
    unsetenv("EGRESSSCAN_HTTP_TIMEOUT_MS");
    setenv("EGRESSSCAN_CONNECT_TIMEOUT_MS", "x", 1);
    assert_int_equal(http_engine_options_init(&o, &e), -1);
    unsetenv("EGRESSSCAN_CONNECT_TIMEOUT_MS");
}

static void test_adaptive_rate_limits_after_throttle(void **state)
{
    (void)state;
    const struct step steps[] = {
        {FAKEHTTP_RESPOND, 400, "", "{\"__type\":\"ThrottlingException\"}", 0},
        {FAKEHTTP_RESPOND, 200, "", "ok", 0},
    };
    struct script sc = {steps, 2};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    setenv("AWS_RETRY_MODE", "adaptive", 1);
    struct retry_log log;
    memset(&log, 0, sizeof log);
    struct http_engine_options o;
    default_options(&o);
    o.on_retry = on_retry;
    o.on_retry_ud = &log;
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    req.pace_key = "111122223333";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct err e;
    assert_int_equal(http_perform(eng, &req, NULL, NULL, &e), 0);
    long ms = elapsed_ms(&t0);
    assert_int_equal(log.n, 1);
    /* after the first throttle the bucket refills at the measured rate (at most ~1.1/s here, at
     * least its 0.5/s floor) and starts empty: the retry waits 0.9 to 2 s for a token on top of
     * its backoff. Standard mode would wait only the backoff. */
    assert_true(ms >= log.delay[0] + 800);
    assert_true(ms <= log.delay[0] + 2600);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* ---- TLS ---- */

static int write_self_signed(const char *cert_path, const char *key_path)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = 0;
    if (!pkey || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *value;
    } exts[] = {
        {NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,digitalSignature"},
        {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
        {NID_subject_key_identifier, "hash"},
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        if (!ext)
            goto out;
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x, pkey, EVP_sha256()))
        goto out;
    FILE *f = fopen(cert_path, "w");
    if (!f)
        goto out;
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    if (!f)
        goto out;
    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    ok = 1;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ok;
}

static void test_tls_with_added_ca(void **state)
{
    (void)state;
    char dir[] = "/tmp/egressscan-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    assert_true(write_self_signed(cert, key));

    struct load l;
    memset(&l, 0, sizeof l);
    pthread_mutex_init(&l.mu, NULL);
    l.slow_key = -1;
    l.fast_ms = 1;
    struct fakehttp *srv = fakehttp_start(load_handler, &l, cert, key);
    assert_non_null(srv);
    assert_int_equal(strncmp(fakehttp_url(srv), "https://localhost:", 18), 0);
    struct aws_credentials *c = creds_new(AKID, SECRET, TOKEN, 0, "test");

    /* without the CA: verification fails, and is not retried */
    struct http_engine_options o;
    default_options(&o);
    struct http_engine *eng = new_engine(&o);
    struct aws_request req = eks_get(fakehttp_url(srv), c);
    req.allow_http = 0;
    long status = 0;
    struct err e;
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_string_equal(cap.err.code, ERR_CONNECT);
    assert_int_equal(cap.attempts, 1);
    http_engine_free(eng);

    /* with AWS_CA_BUNDLE naming it: works, and 60 requests reuse the few connections */
    setenv("AWS_CA_BUNDLE", cert, 1);
    default_options(&o);
    o.max_in_flight = 4;
    eng = new_engine(&o);
    struct buf body;
    buf_init(&body);
    assert_int_equal(http_perform(eng, &req, &body, &status, &e), 0);
    assert_int_equal(status, 200);
    assert_string_equal(body.data, "{\"key\":0}");
    int before = fakehttp_connections(srv);
    static struct tally_ref refs[60];
    struct tally t;
    memset(&t, 0, sizeof t);
    clock_gettime(CLOCK_MONOTONIC, &t.t0);
    for (int i = 0; i < 60; i++) {
        refs[i].t = &t;
        assert_int_equal(http_submit(eng, &req, tally_done, &refs[i], &e), 0);
    }
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(t.ok, 60);
    int conns = fakehttp_connections(srv) - before;
    print_message("    TLS: 60 requests over %d new connections (max_in_flight 4)\n", conns);
    assert_true(conns <= 4);
    char *text = fakehttp_request_text(srv, fakehttp_requests(srv) - 1);
    assert_signature_verifies(text, SECRET);
    free(text);
    buf_cleanup(&body);
    http_engine_free(eng);

    creds_unref(c);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&l.mu);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- a stop: http_engine_abort from the tick, http_engine_cancel ---- */

struct abort_tick {
    struct http_engine *eng;
    struct timespec t0;
    int turns;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void abort_after_200ms(void *ud)
{
    struct abort_tick *at = ud;
    at->turns++;
    if (since(&at->t0) >= 0.2) {
        struct err why;
        err_set(&why, "Interrupted", "stopped for the test");
        http_engine_abort(at->eng, &why); /* again at every turn: a no-op */
    }
}

/* Requests in curl (a server that answers nothing for 10 s) and queued behind them (one in
 * flight at a time) all complete with the abort's error, without retries, at once; the engine
 * then serves a new request as usual. */
static void test_abort_completes_every_request_at_once(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_HANG, 0, "", NULL, 10000}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    o.max_in_flight = 1;
    struct http_engine *eng = new_engine(&o);
    struct capture cap[3];
    memset(cap, 0, sizeof cap);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct err e;
    for (int i = 0; i < 3; i++)
        assert_int_equal(http_submit(eng, &req, capture_done, &cap[i], &e), 0);
    struct abort_tick at = {eng, {0, 0}, 0};
    clock_gettime(CLOCK_MONOTONIC, &at.t0);
    http_engine_set_tick(eng, abort_after_200ms, &at);
    assert_int_equal(http_engine_run(eng, &e), 0);
    double took = since(&at.t0);
    assert_true(took < 5.0); /* not the 10 s hang, nor a retry */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cap[i].called, 1);
        assert_string_equal(cap[i].err.code, "Interrupted");
        assert_true(cap[i].attempts <= 1);
    }
    http_engine_set_tick(eng, NULL, NULL);
    fakehttp_stop(srv);

    const struct step ok[] = {{FAKEHTTP_RESPOND, 200, "", "ok", 0}};
    struct script sok = {ok, 1};
    srv = fakehttp_start(script_handler, &sok, NULL, NULL);
    assert_non_null(srv);
    req = eks_get(fakehttp_url(srv), NULL);
    struct buf body;
    buf_init(&body);
    assert_int_equal(http_perform(eng, &req, &body, NULL, &e), 0);
    assert_string_equal(body.data, "ok");
    buf_cleanup(&body);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

/* After a failed run the requests left are dropped without their callbacks (they point into the
 * failed run's state); the engine runs again with nothing left over. */
static void test_cancel_drops_requests_without_callbacks(void **state)
{
    (void)state;
    const struct step steps[] = {{FAKEHTTP_RESPOND, 200, "", "ok", 300}};
    struct script sc = {steps, 1};
    struct fakehttp *srv = fakehttp_start(script_handler, &sc, NULL, NULL);
    assert_non_null(srv);
    struct http_engine_options o;
    default_options(&o);
    struct http_engine *eng = new_engine(&o);
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    struct aws_request req = eks_get(fakehttp_url(srv), NULL);
    struct err e;
    assert_int_equal(http_submit(eng, &req, capture_done, &cap, &e), 0);
    http_engine_cancel(eng);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_int_equal(cap.called, 0);
    struct buf body;
    buf_init(&body);
    assert_int_equal(http_perform(eng, &req, &body, NULL, &e), 0);
    assert_string_equal(body.data, "ok");
    buf_cleanup(&body);
    http_engine_free(eng);
    fakehttp_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_signed_with_token, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_abort_completes_every_request_at_once, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_cancel_drops_requests_without_callbacks, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_post_signed_without_token, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_unsigned_sends_only_given_headers, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_throttle_then_5xx_then_ok, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_reset_then_ok, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_always_503_gives_up, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_env_max_attempts_one, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_env_config, clean_env, clean_env),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test_setup_teardown(test_body_cap, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_body_cap_error_and_no_partial_body, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_truncated_body, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_timeout, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_error_messages_hold_no_secrets, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_access_denied_decoded, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_http_needs_allow_http, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_priority_goes_first, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_feeder_supplies_work_when_hungry, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_many_concurrent_reuse_connections, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_per_key_cap_without_head_of_line_blocking, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_callbacks_submit_more, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_free_with_unfinished_work, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_retry_quota, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_retry_quota_per_key, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_expired_refreshed_once_then_ok, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_expired_again_after_refresh_is_an_error, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_expired_without_refresh, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_env_timeouts, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_adaptive_rate_limits_after_throttle, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_tls_with_added_ca, clean_env, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
