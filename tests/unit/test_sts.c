/* test_sts.c - STS answers (both result kinds, missing fields, bad XML, DTDs, expiration times),
 * AssumeRole requests and errors against a local fake, and the per-role cache: single flight,
 * hits, refresh near expiry, forget, failures not cached. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "scanner/creds.h"
#include "scanner/http.h"
#include "scanner/sts.h"
#include "tests/support/fakehttp.h"

#define NS "https://sts.amazonaws.com/doc/2011-06-15/"

/* Case-insensitive strstr (header names are case-insensitive). */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* ---- parsing ---- */

static char *answer(const char *action, const char *creds_inner)
{
    static char out[4096];
    snprintf(out, sizeof out,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<%sResponse xmlns=\"" NS "\">\n"
             "  <%sResult>\n"
             "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/R/s</Arn>"
             "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n"
             "    <Credentials>%s</Credentials>\n"
             "  </%sResult>\n"
             "  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
             "</ResponseMetadata>\n"
             "</%sResponse>\n",
             action, action, creds_inner, action, action);
    return out;
}

#define GOOD_CREDS                                                                                 \
    "<AccessKeyId>ASIAPARSE1</AccessKeyId>"                                                        \
    "<SecretAccessKey>parseSecret/1+x</SecretAccessKey>"                                           \
    "<SessionToken>parseToken==</SessionToken>"                                                    \
    "<Expiration>2026-11-26T15:30:00Z</Expiration>"

static void test_parse_assume_role(void **state)
{
    (void)state;
    const char *xml = answer("AssumeRole", GOOD_CREDS);
    struct err e;
    err_clear(&e);
    struct aws_credentials *c = sts_parse_credentials(xml, strlen(xml), "assume-role:1", &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "ASIAPARSE1");
    assert_string_equal(c->secret_access_key, "parseSecret/1+x");
    assert_string_equal(c->session_token, "parseToken==");
    assert_int_equal(c->expiration, 1795707000); /* 2026-11-26T15:30:00Z */
    assert_string_equal(c->source, "assume-role:1");
    assert_int_equal(c->refs, 1);
    creds_unref(c);
}

static void test_parse_web_identity(void **state)
{
    (void)state;
    /* whitespace around values and a namespace prefix are tolerated */
    const char *xml =
        "<sts:AssumeRoleWithWebIdentityResponse xmlns:sts=\"" NS "\">"
        "<sts:AssumeRoleWithWebIdentityResult>"
        "<sts:SubjectFromWebIdentityToken>system:serviceaccount:ns:sa"
        "</sts:SubjectFromWebIdentityToken>"
        "<sts:Credentials>\n"
        "  <sts:SessionToken>\n    wiToken\n  </sts:SessionToken>\n"
        "  <sts:SecretAccessKey>wiSecret</sts:SecretAccessKey>\n"
        "  <sts:Expiration>2026-11-26T15:30:00.123Z</sts:Expiration>\n"
        "  <sts:AccessKeyId>ASIAWI</sts:AccessKeyId>\n"
        "</sts:Credentials>"
        "</sts:AssumeRoleWithWebIdentityResult></sts:AssumeRoleWithWebIdentityResponse>";
    struct err e;
    struct aws_credentials *c = sts_parse_credentials(xml, strlen(xml), "web-identity", &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "ASIAWI");
    assert_string_equal(c->secret_access_key, "wiSecret");
    assert_string_equal(c->session_token, "wiToken");
    assert_int_equal(c->expiration, 1795707000);
    creds_unref(c);
}

static void expect_malformed(const char *xml, const char *in_message)
{
    struct err e;
    err_clear(&e);
    struct aws_credentials *c = sts_parse_credentials(xml, strlen(xml), "x", &e);
    if (c)
        fail_msg("parsed: %s", xml);
    assert_string_equal(e.code, ERR_PARSE);
    if (in_message && !strstr(e.message, in_message))
        fail_msg("message '%s' lacks '%s'", e.message, in_message);
}

static void test_parse_missing_fields(void **state)
{
    (void)state;
    expect_malformed(answer("AssumeRole", "<AccessKeyId>A</AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<Expiration>2026-11-26T15:30:00Z</Expiration>"),
                     "SessionToken");
    expect_malformed(answer("AssumeRole", "<AccessKeyId>A</AccessKeyId>"
                                          "<SessionToken>T</SessionToken>"
                                          "<Expiration>2026-11-26T15:30:00Z</Expiration>"),
                     "SecretAccessKey");
    expect_malformed(answer("AssumeRole", "<AccessKeyId></AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<SessionToken>T</SessionToken>"
                                          "<Expiration>2026-11-26T15:30:00Z</Expiration>"),
                     "AccessKeyId");
    expect_malformed(answer("AssumeRole", "<AccessKeyId>A</AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<SessionToken>T</SessionToken>"),
                     "Expiration");
    expect_malformed("<AssumeRoleResponse xmlns=\"" NS "\"><AssumeRoleResult>"
                     "</AssumeRoleResult></AssumeRoleResponse>",
                     "Credentials");
    /* an error document is not credentials */
    expect_malformed("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
                     "AssumeRoleResult");
    /* Credentials elsewhere than under the result do not count */
    expect_malformed(
        "<AssumeRoleResponse><Credentials>" GOOD_CREDS "</Credentials></AssumeRoleResponse>", NULL);
}

static void test_parse_bad_xml(void **state)
{
    (void)state;
    expect_malformed("<AssumeRoleResponse><AssumeRoleResult>", "XML");
    expect_malformed("not xml at all", "XML");
    expect_malformed("{\"Credentials\": {}}", "XML");
    struct err e;
    assert_null(sts_parse_credentials("", 0, "x", &e));
    assert_string_equal(e.code, ERR_PARSE);
    assert_null(sts_parse_credentials(NULL, 0, "x", &e));
    /* truncated in the middle of the secret */
    const char *xml = answer("AssumeRole", GOOD_CREDS);
    assert_null(
        sts_parse_credentials(xml, (size_t)(strstr(xml, "parseSecret") - xml) + 4, "x", &e));
    assert_string_equal(e.code, ERR_PARSE);
}

/* n nested <a> elements around text; caller frees. */
static char *nested_xml(int n, const char *text)
{
    size_t len = (size_t)n * 7 + strlen(text) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    char *p = s;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "<a>");
    p += sprintf(p, "%s", text);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "</a>");
    return s;
}

/* Hostile answers: elements where text belongs, text where elements belong, invalid UTF-8, deep
 * nesting, an empty body. Each is an error naming the part (never its value: it may be a
 * secret), never a crash, never credentials pieced together. */
static void test_parse_hostile(void **state)
{
    (void)state;
    expect_malformed(answer("AssumeRole", "<AccessKeyId><v>ASIA</v><v>X</v></AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<SessionToken>T</SessionToken>"
                                          "<Expiration>2026-11-26T15:30:00Z</Expiration>"),
                     "Credentials/AccessKeyId holds elements, expected text");
    const char *xml =
        answer("AssumeRole", "<AccessKeyId>A</AccessKeyId>"
                             "<SecretAccessKey>piece<b>wise</b>Secret</SecretAccessKey>"
                             "<SessionToken>T</SessionToken>"
                             "<Expiration>2026-11-26T15:30:00Z</Expiration>");
    struct err e;
    err_clear(&e);
    assert_null(sts_parse_credentials(xml, strlen(xml), "x", &e));
    assert_string_equal(e.code, ERR_PARSE);
    assert_string_equal(e.message,
                        "STS answer: Credentials/SecretAccessKey holds elements, expected text");
    assert_null(strstr(e.message, "piece"));
    expect_malformed(answer("AssumeRole", "<AccessKeyId>A</AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<SessionToken>T</SessionToken>"
                                          "<Expiration><t>2026-11-26T15:30:00Z</t></Expiration>"),
                     "Credentials/Expiration holds elements");
    /* text where the credential elements belong */
    expect_malformed(answer("AssumeRole", "ASIA S T 2026-11-26T15:30:00Z"),
                     "lacks Credentials/AccessKeyId");
    expect_malformed(answer("AssumeRole", "<AccessKeyId>A\xff</AccessKeyId>"
                                          "<SecretAccessKey>S</SecretAccessKey>"
                                          "<SessionToken>T</SessionToken>"
                                          "<Expiration>2026-11-26T15:30:00Z</Expiration>"),
                     "not well-formed XML");
    char *deep = nested_xml(100000, answer("AssumeRole", GOOD_CREDS));
    expect_malformed(deep, "XML");
    free(deep);
    deep = nested_xml(300, "x");
    char *inner = malloc(strlen(deep) + 200);
    assert_non_null(inner);
    sprintf(inner, "<AccessKeyId>%s</AccessKeyId>", deep);
    expect_malformed(answer("AssumeRole", inner), NULL);
    free(inner);
    free(deep);
    expect_malformed(" ", "XML");
    err_clear(&e);
    assert_null(sts_parse_credentials("", 0, "x", &e));
    assert_string_equal(e.message, "STS answer is empty or too large");
    /* comments and CDATA are text as far as credentials go */
    xml = answer("AssumeRole", "<AccessKeyId><!-- k -->ASIAC</AccessKeyId>"
                               "<SecretAccessKey><![CDATA[s<&>]]></SecretAccessKey>"
                               "<SessionToken>T</SessionToken>"
                               "<Expiration>2026-11-26T15:30:00Z</Expiration>");
    struct aws_credentials *c = sts_parse_credentials(xml, strlen(xml), "x", &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "ASIAC");
    assert_string_equal(c->secret_access_key, "s<&>");
    creds_unref(c);
}

/* Answers in odd encodings make libxml2 print "encoding error : ..." on stderr unless told not to;
 * a hostile answer must not write into the scanner's log stream. */
static void test_parse_prints_nothing(void **state)
{
    (void)state;
    static const char ucs4[] = "\0\0\0<\0\0\0a\0\0\0>\xff\xff\xff\xff\0\0\0s";
    static const char iso2022[] = "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?>"
                                  "<AssumeRoleResponse>\x1b$B\xff\xff</AssumeRoleResponse>";
    fflush(stderr);
    FILE *sink = tmpfile();
    assert_non_null(sink);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(sink), 2), 2);
    struct err e1, e2;
    err_clear(&e1);
    err_clear(&e2);
    struct aws_credentials *c1 = sts_parse_credentials(ucs4, sizeof ucs4 - 1, "x", &e1);
    struct aws_credentials *c2 = sts_parse_credentials(iso2022, sizeof iso2022 - 1, "x", &e2);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    assert_int_equal(fseek(sink, 0, SEEK_END), 0);
    long written = ftell(sink);
    fclose(sink);
    assert_null(c1);
    assert_null(c2);
    assert_string_equal(e1.code, ERR_PARSE);
    assert_string_equal(e2.code, ERR_PARSE);
    assert_int_equal(written, 0);
}

static void test_parse_no_entities(void **state)
{
    (void)state;
    /* external entity: never fetched, and any DTD is refused */
    expect_malformed("<?xml version=\"1.0\"?>\n"
                     "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                     "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                     "<AccessKeyId>&x;</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                     "<SessionToken>T</SessionToken><Expiration>2026-11-26T15:30:00Z</Expiration>"
                     "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
                     NULL);
    /* billion laughs */
    expect_malformed("<?xml version=\"1.0\"?>\n"
                     "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">"
                     "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;\">]>\n"
                     "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                     "<AccessKeyId>&c;</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                     "<SessionToken>T</SessionToken><Expiration>2026-11-26T15:30:00Z</Expiration>"
                     "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
                     NULL);
}

/* Issue 13, point 8: credentials become header values (Authorization, X-Amz-Security-Token): a
 * CR/LF (or any control character) in them is refused, and the message never quotes the value. */
static void test_parse_refuses_header_breaking_credentials(void **state)
{
    (void)state;
    static const char *const fields[][2] = {
        {"<AccessKeyId>ASIA&#13;&#10;X-Injected: "
         "1</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
         "<SessionToken>T</SessionToken>",
         "the access key id"},
        {"<AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
         "<SessionToken>tok&#13;&#10;X-Injected: 1</SessionToken>",
         "the session token"},
        {"<AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
         "<SessionToken>tok&#10;more</SessionToken>",
         "the session token"},
        {"<AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>S&#9;x</SecretAccessKey>"
         "<SessionToken>T</SessionToken>",
         "the secret access key"},
        {"<AccessKeyId>ASIA\xc3\xa9</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
         "<SessionToken>T</SessionToken>",
         "the access key id"}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s<Expiration>2026-11-26T15:30:00Z</Expiration>",
                 fields[i][0]);
        const char *xml = answer("AssumeRole", inner);
        struct err e;
        err_clear(&e);
        assert_null(sts_parse_credentials(xml, strlen(xml), "x", &e));
        assert_string_equal(e.code, ERR_PARSE);
        if (!strstr(e.message, fields[i][1]))
            fail_msg("message '%s' lacks '%s'", e.message, fields[i][1]);
        assert_null(strstr(e.message, "X-Injected"));
    }
}

static time_t parse_exp(const char *exp)
{
    char inner[512];
    snprintf(inner, sizeof inner,
             "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
             "<SessionToken>T</SessionToken><Expiration>%s</Expiration>",
             exp);
    const char *xml = answer("AssumeRole", inner);
    struct err e;
    err_clear(&e);
    struct aws_credentials *c = sts_parse_credentials(xml, strlen(xml), "x", &e);
    if (!c)
        return (time_t)-1;
    time_t t = c->expiration;
    creds_unref(c);
    return t;
}

static void test_parse_expiration(void **state)
{
    (void)state;
    assert_int_equal(parse_exp("2026-11-26T15:30:00Z"), 1795707000);
    assert_int_equal(parse_exp("2026-11-26T15:30:00.5Z"), 1795707000);
    assert_int_equal(parse_exp("2026-11-26T15:30:00.123456Z"), 1795707000);
    assert_int_equal(parse_exp("2026-11-26T16:30:00+01:00"), 1795707000);
    assert_int_equal(parse_exp("2026-11-26T10:30:00-0500"), 1795707000);
    assert_int_equal(parse_exp("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_exp("2024-02-29T23:59:59Z"), 1709251199);   /* leap day */
    assert_int_equal(parse_exp(" 2026-11-26T15:30:00Z "), 1795707000); /* trimmed */
    /* not times */
    assert_int_equal(parse_exp("2026-11-26"), -1);
    assert_int_equal(parse_exp("2026-13-26T15:30:00Z"), -1);
    assert_int_equal(parse_exp("2026-11-26T15:30:00"), -1); /* no zone */
    assert_int_equal(parse_exp("2026-11-26T15:30:00Zjunk"), -1);
    assert_int_equal(parse_exp("1795707000"), -1);
    assert_int_equal(parse_exp("2026-11-26T15:30:00.Z"), -1);
}

/* ---- against the fake ---- */

struct fake {
    pthread_mutex_t mu;
    long exp_offset; /* Expiration = now + exp_offset */
    int fail_status; /* nonzero: answer AccessDenied with this status */
    int calls;
};

struct fixture {
    struct fake fake;
    struct fakehttp *srv;
    struct http_engine *engine;
    struct creds_chain *chain;
};

static void fake_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake *f = ud;
    pthread_mutex_lock(&f->mu);
    int n = f->calls++;
    long off = f->exp_offset;
    int fail = f->fail_status;
    pthread_mutex_unlock(&f->mu);
    if (strcmp(req->method, "POST") != 0 || strcmp(req->target, "/") != 0) {
        fakehttp_respond(resp, 404, NULL, "");
        return;
    }
    if (fail) {
        fakehttp_respond(resp, fail,
                         "Content-Type: text/xml\r\n"
                         "x-amzn-RequestId: 4fb4f5a2-denied\r\n",
                         "<ErrorResponse xmlns=\"" NS "\"><Error><Type>Sender</Type>"
                         "<Code>AccessDenied</Code><Message>User: arn:aws:iam::999999999999:user/"
                         "scanner is not authorized to perform: sts:AssumeRole on resource: "
                         "arn:aws:iam::123456789012:role/R</Message></Error>"
                         "<RequestId>4fb4f5a2-denied</RequestId></ErrorResponse>");
        return;
    }
    /* the key id says which role was asked for and in which call */
    const char *arn = strstr(req->body, "RoleArn=");
    char role[64] = "";
    if (arn) {
        const char *r = strstr(arn, "role%2F");
        if (r)
            snprintf(role, sizeof role, "%.*s", (int)strcspn(r + 7, "&"), r + 7);
    }
    char exp[32], body[2048];
    time_t t = time(NULL) + off;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof body,
             "<AssumeRoleResponse xmlns=\"" NS "\"><AssumeRoleResult><Credentials>"
             "<AccessKeyId>ASIA%s%d</AccessKeyId><SecretAccessKey>sec%d</SecretAccessKey>"
             "<SessionToken>tok%d</SessionToken><Expiration>%s</Expiration>"
             "</Credentials></AssumeRoleResult><ResponseMetadata><RequestId>r%d</RequestId>"
             "</ResponseMetadata></AssumeRoleResponse>",
             role, n, n, n, exp, n);
    fakehttp_respond(resp, 200, "Content-Type: text/xml\r\n", body);
}

static void fake_set(struct fixture *fx, long exp_offset, int fail_status)
{
    pthread_mutex_lock(&fx->fake.mu);
    fx->fake.exp_offset = exp_offset;
    fx->fake.fail_status = fail_status;
    pthread_mutex_unlock(&fx->fake.mu);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    pthread_mutex_init(&fx->fake.mu, NULL);
    fx->fake.exp_offset = 3600;
    fx->srv = fakehttp_start(fake_handler, &fx->fake, NULL, NULL);
    if (!fx->srv)
        return -1;
    const char *unset[] = {"AWS_PROFILE",
                           "AWS_SESSION_TOKEN",
                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ROLE_ARN",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                           "AWS_ENDPOINT_URL",
                           "AWS_REGION",
                           "AWS_DEFAULT_REGION",
                           "AWS_MAX_ATTEMPTS",
                           "AWS_RETRY_MODE",
                           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("AWS_CONFIG_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDSTSBASE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "stsBaseSecret", 1);
    setenv("AWS_ENDPOINT_URL_STS", fakehttp_url(fx->srv), 1);

    struct err e;
    struct http_engine_options o;
    if (http_engine_options_init(&o, &e) < 0)
        return -1;
    fx->engine = http_engine_new(&o, &e);
    fx->chain = creds_chain_new(NULL, &e);
    if (!fx->engine || !fx->chain)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    creds_chain_free(fx->chain);
    http_engine_free(fx->engine);
    fakehttp_stop(fx->srv);
    pthread_mutex_destroy(&fx->fake.mu);
    free(fx);
    return 0;
}

static int requests(struct fixture *fx)
{
    return fakehttp_requests(fx->srv);
}

static void test_assume_role_request(void **state)
{
    struct fixture *fx = *state;
    struct aws_credentials *base = creds_new("AKIDCALLER", "callerSecret", "callerToken", 0, "t");
    struct sts_assume_role_params p = {
        .role_arn = "arn:aws:iam::123456789012:role/EgressScanReadOnly",
        .external_id = "ext id+/=&?",
        .duration_s = 900,
        .region = "ap-southeast-2",
        .pace_key = "123456789012",
    };
    struct err e;
    struct aws_credentials *c = sts_assume_role(fx->engine, base, &p, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIAEgressScanReadOnly0");
    assert_string_equal(c->secret_access_key, "sec0");
    assert_string_equal(c->session_token, "tok0");
    assert_string_equal(c->source, "assume-role:123456789012");
    assert_true(c->expiration > time(NULL) + 3000);
    creds_unref(c);

    char *t = fakehttp_request_text(fx->srv, 0);
    assert_non_null(t);
    assert_non_null(strstr(t, "POST / HTTP/1.1"));
    const char *body = strstr(t, "\r\n\r\n") + 4;
    assert_string_equal(body, "Action=AssumeRole&Version=2011-06-15"
                              "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F"
                              "EgressScanReadOnly"
                              "&RoleSessionName=egressscan"
                              "&ExternalId=ext%20id%2B%2F%3D%26%3F"
                              "&DurationSeconds=900");
    assert_non_null(strstr(t, "application/x-www-form-urlencoded; charset=utf-8"));
    assert_non_null(strstr(t, "Credential=AKIDCALLER/"));
    assert_non_null(strstr(t, "/ap-southeast-2/sts/aws4_request"));
    assert_non_null(strstr(t, "callerToken")); /* X-Amz-Security-Token */
    assert_null(strstr(t, "callerSecret"));
    free(t);
    creds_unref(base);
}

static void test_assume_role_denied(void **state)
{
    struct fixture *fx = *state;
    fake_set(fx, 3600, 403);
    struct aws_credentials *base = creds_new("AKIDCALLER", "callerSecret", NULL, 0, "t");
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::123456789012:role/R"};
    struct err e;
    err_clear(&e);
    assert_null(sts_assume_role(fx->engine, base, &p, &e));
    assert_string_equal(e.code, "AccessDenied");
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.request_id, "4fb4f5a2-denied");
    assert_non_null(strstr(e.message, "arn:aws:iam::123456789012:role/R"));
    assert_int_equal(requests(fx), 1); /* AccessDenied is not retried */
    /* default region: signed for us-east-1 */
    char *t = fakehttp_request_text(fx->srv, 0);
    assert_non_null(strstr(t, "/us-east-1/sts/aws4_request"));
    free(t);

    /* a missing role ARN or base credentials fail before any request */
    struct sts_assume_role_params none = {0};
    assert_null(sts_assume_role(fx->engine, base, &none, &e));
    assert_null(sts_assume_role(fx->engine, NULL, &p, &e));
    assert_int_equal(requests(fx), 1);
    creds_unref(base);
}

static void test_web_identity_request(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    struct aws_credentials *c =
        sts_assume_role_with_web_identity(fx->engine, "arn:aws:iam::123456789012:role/irsa", "s1",
                                          "eyJhbGciOi.x_y-z", "eu-west-1", &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->source, "web-identity");
    creds_unref(c);
    char *t = fakehttp_request_text(fx->srv, 0);
    assert_non_null(strstr(t, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"));
    assert_non_null(strstr(t, "&RoleSessionName=s1"));
    assert_non_null(strstr(t, "&WebIdentityToken=eyJhbGciOi.x_y-z"));
    assert_null(find_ci(t, "\nAuthorization:"));
    assert_null(find_ci(t, "X-Amz-Security-Token"));
    free(t);
}

/* ---- async and cache ---- */

struct got {
    int calls;
    struct aws_credentials *creds;
    struct err err;
};

static void on_creds(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct got *g = ud;
    g->calls++;
    creds_unref(g->creds);
    g->creds = creds;
    if (e)
        g->err = *e;
    else
        err_clear(&g->err);
}

static void got_reset(struct got *g)
{
    creds_unref(g->creds);
    memset(g, 0, sizeof *g);
}

static void run(struct fixture *fx)
{
    struct err e;
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
}

static void test_assume_role_submit(void **state)
{
    struct fixture *fx = *state;
    struct aws_credentials *base = creds_new("AKIDCALLER", "callerSecret", NULL, 0, "t");
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::123456789012:role/Async"};
    struct got g = {0};
    struct err e;
    assert_int_equal(sts_assume_role_submit(fx->engine, base, &p, on_creds, &g, &e), 0);
    creds_unref(base); /* the engine holds its own reference */
    assert_int_equal(g.calls, 0);
    run(fx);
    assert_int_equal(g.calls, 1);
    assert_non_null(g.creds);
    assert_string_equal(g.creds->access_key_id, "ASIAAsync0");
    got_reset(&g);
}

static void test_cache_single_flight_and_hit(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    assert_non_null(cache);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::111111111111:role/Scan",
                                       .pace_key = "111111111111"};
    struct got g1 = {0}, g2 = {0}, g3 = {0};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g1, &e), 0);
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g2, &e), 0);
    assert_int_equal(g1.calls + g2.calls, 0);
    run(fx);
    assert_int_equal(requests(fx), 1); /* one AssumeRole for both */
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_non_null(g1.creds);
    assert_ptr_equal(g1.creds, g2.creds);
    assert_string_equal(g1.creds->access_key_id, "ASIAScan0");
    /* signed with the chain's (environment) credentials */
    char *t = fakehttp_request_text(fx->srv, 0);
    assert_non_null(strstr(t, "Credential=AKIDSTSBASE/"));
    free(t);

    /* a hit: answered before sts_cache_get returns, no request */
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g3, &e), 0);
    assert_int_equal(g3.calls, 1);
    assert_ptr_equal(g3.creds, g1.creds);
    assert_int_equal(requests(fx), 1);

    /* another role is another entry */
    struct sts_assume_role_params q = {.role_arn = "arn:aws:iam::222222222222:role/Other"};
    assert_int_equal(sts_cache_get(cache, &q, on_creds, &g3, &e), 0);
    run(fx);
    assert_int_equal(g3.calls, 2);
    assert_string_equal(g3.creds->access_key_id, "ASIAOther1");
    assert_int_equal(requests(fx), 2);

    got_reset(&g1);
    got_reset(&g2);
    got_reset(&g3);
    sts_cache_free(cache);
}

static void test_cache_refresh_near_expiry(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::111111111111:role/Short"};
    fake_set(fx, 0, 0); /* expired as soon as they arrive */
    struct got g = {0};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    run(fx);
    assert_string_equal(g.creds->access_key_id, "ASIAShort0");
    /* expired: the next get assumes the role again, and sts_cache_current has nothing */
    assert_null(sts_cache_current(cache, &p));
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    assert_int_equal(g.calls, 1);
    run(fx);
    assert_int_equal(g.calls, 2);
    assert_string_equal(g.creds->access_key_id, "ASIAShort1");
    assert_int_equal(requests(fx), 2);
    /* 120 s credentials are refreshed half their life before expiry (not CREDS_REFRESH_WINDOW_S,
     * which would mean on every use): refreshed once, then hits */
    fake_set(fx, 120, 0);
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    run(fx);
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    assert_int_equal(g.calls, 4);
    assert_string_equal(g.creds->access_key_id, "ASIAShort2");
    assert_int_equal(requests(fx), 3);
    /* sts_cache_current: the cached ones, without a request */
    struct aws_credentials *cur = sts_cache_current(cache, &p);
    assert_ptr_equal(cur, g.creds);
    creds_unref(cur);
    struct sts_assume_role_params other = {.role_arn = "arn:aws:iam::111111111111:role/None"};
    assert_null(sts_cache_current(cache, &other));
    run(fx);
    assert_int_equal(requests(fx), 3);
    got_reset(&g);
    sts_cache_free(cache);
}

/* After AWS refused credentials as expired (whatever the local clock says): one AssumeRole for
 * every refresh asked with those credentials, and none for a refresh of credentials that were
 * already replaced. */
static void test_cache_refresh_stale(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::111111111111:role/Stale",
                                       .pace_key = "111111111111"};
    struct got g0 = {0}, g1 = {0}, g2 = {0}, g3 = {0};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g0, &e), 0);
    run(fx);
    assert_string_equal(g0.creds->access_key_id, "ASIAStale0");
    /* two requests refused with the same credentials: one AssumeRole for both */
    assert_int_equal(sts_cache_refresh(cache, &p, g0.creds, on_creds, &g1, &e), 0);
    assert_int_equal(sts_cache_refresh(cache, &p, g0.creds, on_creds, &g2, &e), 0);
    assert_int_equal(g1.calls + g2.calls, 0);
    run(fx);
    assert_int_equal(requests(fx), 2);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_string_equal(g1.creds->access_key_id, "ASIAStale1");
    assert_ptr_equal(g1.creds, g2.creds);
    /* a late refusal of the old ones: the new ones at once, no request */
    assert_int_equal(sts_cache_refresh(cache, &p, g0.creds, on_creds, &g3, &e), 0);
    assert_int_equal(g3.calls, 1);
    assert_ptr_equal(g3.creds, g1.creds);
    assert_int_equal(requests(fx), 2);
    /* the new ones refused too: another AssumeRole (the caller decides how often to ask) */
    assert_int_equal(sts_cache_refresh(cache, &p, g1.creds, on_creds, &g3, &e), 0);
    run(fx);
    assert_int_equal(g3.calls, 2);
    assert_string_equal(g3.creds->access_key_id, "ASIAStale2");
    assert_int_equal(requests(fx), 3);
    /* a plain get after that is a hit */
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g0, &e), 0);
    assert_ptr_equal(g0.creds, g3.creds);
    assert_int_equal(requests(fx), 3);
    /* misuse */
    assert_int_equal(sts_cache_refresh(cache, &p, NULL, on_creds, &g3, &e), -1);
    got_reset(&g0);
    got_reset(&g1);
    got_reset(&g2);
    got_reset(&g3);
    sts_cache_free(cache);
}

static void test_cache_forget(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::111111111111:role/Gone"};
    struct got g = {0}, g2 = {0};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    run(fx);
    struct aws_credentials *held = creds_ref(g.creds);
    sts_cache_forget(cache, p.role_arn);
    sts_cache_forget(cache, "arn:aws:iam::1:role/never-seen"); /* no-op */
    assert_string_equal(held->secret_access_key, "sec0");      /* holders keep their reference */
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g, &e), 0);
    run(fx);
    assert_int_equal(requests(fx), 2);
    assert_string_equal(g.creds->access_key_id, "ASIAGone1");

    /* forgotten while in flight: the waiter still gets its answer, nothing is cached */
    fake_set(fx, 3600, 0);
    struct sts_assume_role_params q = {.role_arn = "arn:aws:iam::111111111111:role/Flying"};
    assert_int_equal(sts_cache_get(cache, &q, on_creds, &g2, &e), 0);
    sts_cache_forget(cache, q.role_arn);
    run(fx);
    assert_int_equal(g2.calls, 1);
    assert_non_null(g2.creds);
    assert_int_equal(sts_cache_get(cache, &q, on_creds, &g2, &e), 0);
    run(fx);
    assert_int_equal(requests(fx), 4);
    creds_unref(held);
    got_reset(&g);
    got_reset(&g2);
    sts_cache_free(cache);
}

static void test_cache_failure_not_cached(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::123456789012:role/R"};
    fake_set(fx, 3600, 403);
    struct got g1 = {0}, g2 = {0};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g1, &e), 0);
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g2, &e), 0);
    run(fx);
    assert_int_equal(requests(fx), 1);
    /* every waiter gets the error */
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_null(g1.creds);
    assert_null(g2.creds);
    assert_string_equal(g1.err.code, "AccessDenied");
    assert_string_equal(g2.err.code, "AccessDenied");
    assert_int_equal(g2.err.http_status, 403);
    /* the next get tries again */
    fake_set(fx, 3600, 0);
    assert_int_equal(sts_cache_get(cache, &p, on_creds, &g1, &e), 0);
    run(fx);
    assert_int_equal(requests(fx), 2);
    assert_non_null(g1.creds);
    assert_string_equal(g1.creds->access_key_id, "ASIAR1");

    /* no base credentials: nothing starts, done is not called */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    struct creds_chain *empty = creds_chain_new(NULL, &e);
    struct sts_cache *c2 = sts_cache_new(fx->engine, empty, NULL);
    err_clear(&e);
    assert_int_equal(sts_cache_get(c2, &p, on_creds, &g2, &e), -1);
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_int_equal(g2.calls, 1);
    sts_cache_free(c2);
    creds_chain_free(empty);

    got_reset(&g1);
    got_reset(&g2);
    sts_cache_free(cache);
}

/* A callback that asks the cache again from inside the completion (hit) and forgets. */
struct reentrant {
    struct sts_cache *cache;
    const struct sts_assume_role_params *p;
    struct got inner;
    int calls;
};

static void on_creds_reenter(void *ud, struct aws_credentials *creds, const struct err *e)
{
    (void)e;
    struct reentrant *r = ud;
    r->calls++;
    struct err err;
    assert_int_equal(sts_cache_get(r->cache, r->p, on_creds, &r->inner, &err), 0);
    sts_cache_forget(r->cache, r->p->role_arn);
    creds_unref(creds);
}

static void test_cache_reentrant_callback(void **state)
{
    struct fixture *fx = *state;
    struct sts_cache *cache = sts_cache_new(fx->engine, fx->chain, NULL);
    struct sts_assume_role_params p = {.role_arn = "arn:aws:iam::111111111111:role/Re"};
    struct reentrant r1 = {.cache = cache, .p = &p}, r2 = {.cache = cache, .p = &p};
    struct err e;
    assert_int_equal(sts_cache_get(cache, &p, on_creds_reenter, &r1, &e), 0);
    assert_int_equal(sts_cache_get(cache, &p, on_creds_reenter, &r2, &e), 0);
    run(fx);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    /* r1's inner get was a hit; r1 then forgot the role, so r2's inner get started anew */
    assert_int_equal(r1.inner.calls, 1);
    assert_int_equal(r2.inner.calls, 1);
    assert_int_equal(requests(fx), 2);
    got_reset(&r1.inner);
    got_reset(&r2.inner);
    sts_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_assume_role),
        cmocka_unit_test(test_parse_web_identity),
        cmocka_unit_test(test_parse_missing_fields),
        cmocka_unit_test(test_parse_bad_xml),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_prints_nothing),
        cmocka_unit_test(test_parse_no_entities),
        cmocka_unit_test(test_parse_refuses_header_breaking_credentials),
        cmocka_unit_test(test_parse_expiration),
        cmocka_unit_test_setup_teardown(test_assume_role_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_single_flight_and_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh_near_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_failure_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_reentrant_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
