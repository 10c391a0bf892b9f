/* test_ec2.c - EC2 DescribeRegions: the XML parser (opted-out regions left out, namespaces
 * ignored, malformed and hostile documents refused) and the request against a local fake EC2
 * (method, path, form body, Content-Type, signing scope, errors passed through). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "scanner/creds.h"
#include "scanner/ec2.h"
#include "scanner/http.h"
#include "tests/support/fakehttp.h"

#define ANSWERS "tests/data/aws-answers/"

static char *fixture(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, ANSWERS "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (tests run from the repository root)", path);
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    if (len)
        *len = b.len;
    return buf_steal(&b);
}

static void test_parse_regions_skips_not_opted_in(void **state)
{
    (void)state;
    size_t len;
    char *xml = fixture("ec2-describe-regions.xml", &len);
    char **regions;
    size_t n;
    struct err e;
    err_clear(&e);
    assert_int_equal(ec2_parse_regions(xml, len, &regions, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(regions[0], "eu-west-1");
    assert_string_equal(regions[1], "eu-south-2"); /* opted-in is enabled */
    assert_string_equal(regions[2], "us-east-1");
    ec2_regions_free(regions, n);
    free(xml);
}

static void test_parse_regions_namespaces_and_whitespace(void **state)
{
    (void)state;
    /* a prefixed namespace, no optInStatus (older answers), whitespace and CDATA in the text */
    const char *xml = "<ec2:DescribeRegionsResponse xmlns:ec2=\"urn:x\"><ec2:requestId>r"
                      "</ec2:requestId><ec2:regionInfo><ec2:item><ec2:regionName> us-west-2\n"
                      "</ec2:regionName></ec2:item><ec2:item><ec2:regionName><![CDATA[ca-west-1]]>"
                      "</ec2:regionName><ec2:optInStatus>opted-in</ec2:optInStatus></ec2:item>"
                      "</ec2:regionInfo></ec2:DescribeRegionsResponse>";
    char **regions;
    size_t n;
    struct err e;
    err_clear(&e);
    assert_int_equal(ec2_parse_regions(xml, strlen(xml), &regions, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(regions[0], "us-west-2");
    assert_string_equal(regions[1], "ca-west-1");
    ec2_regions_free(regions, n);
    ec2_regions_free(NULL, 0); /* no-op */
}

static void expect_parse_error(const char *xml)
{
    char **regions = (char **)1;
    size_t n = 7;
    struct err e;
    err_clear(&e);
    assert_int_equal(ec2_parse_regions(xml, strlen(xml), &regions, &n, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    assert_true(strlen(e.message) > 0);
    assert_null(regions);
    assert_int_equal(n, 0);
}

static void test_parse_regions_malformed(void **state)
{
    (void)state;
    expect_parse_error("");
    expect_parse_error("garbage");
    expect_parse_error("{\"Regions\":[]}");
    expect_parse_error("<DescribeRegionsResponse><regionInfo><item>"); /* truncated */
    expect_parse_error("<DescribeRegionsResponse><requestId>x</requestId>"
                       "</DescribeRegionsResponse>"); /* no regionInfo */
    expect_parse_error("<DescribeRegionsResponse><regionInfo/></DescribeRegionsResponse>");
    expect_parse_error("<DescribeRegionsResponse><regionInfo><item><regionName>af-south-1"
                       "</regionName><optInStatus>not-opted-in</optInStatus></item></regionInfo>"
                       "</DescribeRegionsResponse>"); /* nothing enabled */
    expect_parse_error("<DescribeRegionsResponse><regionInfo><item><regionEndpoint>x"
                       "</regionEndpoint></item></regionInfo></DescribeRegionsResponse>");
    expect_parse_error("<DescribeRegionsResponse><regionInfo><item><regionName>evil.com/x"
                       "</regionName></item></regionInfo></DescribeRegionsResponse>");
    expect_parse_error("<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors>"
                       "</Response>");
    /* entities are neither declared nor expanded (billion laughs, external files) */
    expect_parse_error("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM "
                       "\"file:///etc/hostname\">]><DescribeRegionsResponse><regionInfo><item>"
                       "<regionName>&e;</regionName></item></regionInfo>"
                       "</DescribeRegionsResponse>");
}

static void expect_parse_error_naming(const char *xml, const char *needle)
{
    char **regions = (char **)1;
    size_t n = 7;
    struct err e;
    err_clear(&e);
    assert_int_equal(ec2_parse_regions(xml, strlen(xml), &regions, &n, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    if (!strstr(e.message, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
    assert_null(regions);
    assert_int_equal(n, 0);
}

#define ITEM(inner) "<item>" inner "</item>"
#define RESPONSE(items)                                                                            \
    "<DescribeRegionsResponse><regionInfo>" items "</regionInfo></DescribeRegionsResponse>"

/* Hostile answers: an error naming the part, never a crash and never a region list with a
 * pieced-together or wrong entry. */
static void test_parse_regions_hostile(void **state)
{
    (void)state;
    expect_parse_error_naming(RESPONSE(ITEM("<regionName>eu-<b/>west-1</regionName>")),
                              "regionName holds elements, expected text");
    expect_parse_error_naming(
        RESPONSE(ITEM("<regionName>eu-west-1</regionName>") ITEM(
            "<regionName>af-south-1</regionName><optInStatus><s>not-opted-in</s></optInStatus>")),
        "optInStatus holds elements");
    expect_parse_error_naming(RESPONSE(ITEM("<regionName>eu-west-1\xc3</regionName>")),
                              "not well-formed XML");
    expect_parse_error_naming(RESPONSE(ITEM("<regionName>eu-west-1</regionName>") "<item>"),
                              "not well-formed XML");
    expect_parse_error_naming("<DescribeRegionsResponse>text</DescribeRegionsResponse>",
                              "no regionInfo");
    expect_parse_error_naming(RESPONSE("eu-west-1"), "no enabled region");
    expect_parse_error_naming("", "empty");
    expect_parse_error_naming("<ErrorResponse/>", "not a DescribeRegionsResponse");
    /* 100000 levels: libxml2's depth limit turns it away before anything recurses */
    size_t depth = 100000;
    char *deep = malloc(depth * 13 + 200);
    assert_non_null(deep);
    char *p = deep + sprintf(deep, "<DescribeRegionsResponse><regionInfo>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "<item>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "</item>");
    sprintf(p, "</regionInfo></DescribeRegionsResponse>");
    expect_parse_error_naming(deep, "not well-formed XML");
    free(deep);
}

/* Every prefix of a real answer parses or fails cleanly. */
static void test_parse_regions_truncations(void **state)
{
    (void)state;
    size_t len;
    char *xml = fixture("ec2-describe-regions.xml", &len);
    for (size_t i = 0; i < len; i++) {
        char **regions;
        size_t n;
        struct err e;
        err_clear(&e);
        if (ec2_parse_regions(xml, i, &regions, &n, &e) == 0)
            ec2_regions_free(regions, n);
        else
            assert_string_equal(e.code, ERR_PARSE);
    }
    free(xml);
}

/* ---- the request ---- */

struct fake_ec2 {
    pthread_mutex_t mu;
    int n;
    char method[16];
    char target[256];
    char body[256];
    char content_type[128];
    char auth[512];
    int deny;
};

static int header_value(const char *headers, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(l - (size_t)(v - p)), v);
            return 1;
        }
        if (!eol)
            break;
        p = eol + 2;
    }
    return 0;
}

static void ec2_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake_ec2 *f = ud;
    pthread_mutex_lock(&f->mu);
    f->n++;
    snprintf(f->method, sizeof f->method, "%s", req->method);
    snprintf(f->target, sizeof f->target, "%s", req->target);
    snprintf(f->body, sizeof f->body, "%.*s", (int)req->body_len, req->body);
    header_value(req->headers, "Content-Type", f->content_type, sizeof f->content_type);
    header_value(req->headers, "Authorization", f->auth, sizeof f->auth);
    int deny = f->deny;
    pthread_mutex_unlock(&f->mu);
    char *xml = fixture(deny ? "ec2-error-unauthorized.xml" : "ec2-describe-regions.xml", NULL);
    fakehttp_respond(resp, deny ? 403 : 200, "Content-Type: text/xml;charset=UTF-8\r\n", xml);
    free(xml);
}

struct regions_run {
    int calls;
    char regions[8][32];
    size_t n;
    struct err e;
};

static void on_regions(void *ud, const char *const *regions, size_t n, const struct err *e)
{
    struct regions_run *run = ud;
    run->calls++;
    run->n = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(run->regions[i], sizeof run->regions[i], "%s", regions[i]);
    if (e)
        run->e = *e;
    else
        err_clear(&run->e);
}

static void run_describe_regions(int deny, struct fake_ec2 *fake, struct regions_run *run)
{
    memset(fake, 0, sizeof *fake);
    pthread_mutex_init(&fake->mu, NULL);
    fake->deny = deny;
    struct fakehttp *srv = fakehttp_start(ec2_handler, fake, NULL, NULL);
    assert_non_null(srv);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_ENDPOINT_URL_EC2", fakehttp_url(srv), 1);
    struct http_engine_options o;
    struct err e;
    err_clear(&e);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    o.max_attempts = 1;
    struct http_engine *engine = http_engine_new(&o, &e);
    assert_non_null(engine);
    struct aws_credentials *creds = creds_new(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token", 0, "test");
    assert_non_null(creds);
    memset(run, 0, sizeof *run);
    assert_int_equal(ec2_describe_regions_submit(engine, creds, "eu-west-1", "111122223333",
                                                 on_regions, run, &e),
                     0);
    assert_int_equal(http_engine_run(engine, &e), 0);
    http_engine_free(engine);
    creds_unref(creds);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&fake->mu);
    unsetenv("AWS_ENDPOINT_URL_EC2");
}

static void test_describe_regions_request(void **state)
{
    (void)state;
    struct fake_ec2 fake;
    struct regions_run run;
    run_describe_regions(0, &fake, &run);
    assert_int_equal(fake.n, 1);
    assert_string_equal(fake.method, "POST");
    assert_string_equal(fake.target, "/");
    assert_string_equal(fake.body, "Action=DescribeRegions&Version=2016-11-15");
    assert_string_equal(fake.content_type, "application/x-www-form-urlencoded; charset=utf-8");
    assert_non_null(strstr(fake.auth, "/eu-west-1/ec2/aws4_request"));
    assert_int_equal(run.calls, 1);
    assert_false(err_isset(&run.e));
    assert_int_equal(run.n, 3);
    assert_string_equal(run.regions[0], "eu-west-1");
    assert_string_equal(run.regions[2], "us-east-1");
}

static void test_describe_regions_error_passed_through(void **state)
{
    (void)state;
    struct fake_ec2 fake;
    struct regions_run run;
    run_describe_regions(1, &fake, &run);
    assert_int_equal(run.calls, 1);
    assert_int_equal(run.n, 0);
    assert_string_equal(run.e.code, "UnauthorizedOperation");
    assert_int_equal(run.e.http_status, 403);
    assert_string_equal(run.e.request_id, "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_regions_skips_not_opted_in),
        cmocka_unit_test(test_parse_regions_namespaces_and_whitespace),
        cmocka_unit_test(test_parse_regions_malformed),
        cmocka_unit_test(test_parse_regions_hostile),
        cmocka_unit_test(test_parse_regions_truncations),
        cmocka_unit_test(test_describe_regions_request),
        cmocka_unit_test(test_describe_regions_error_passed_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
