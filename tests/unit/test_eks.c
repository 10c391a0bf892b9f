/* test_eks.c - the EKS module: ListClusters, DescribeCluster, ListUpdates and DescribeUpdate
 * parsers against realistic answers (tests/data/aws-answers), their error paths, and the requests
 * themselves against a local fake EKS (query string, URL-encoded nextToken, signing scope,
 * errors passed through, the answer's identity checked). */
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

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/model.h"
#include "scanner/creds.h"
#include "scanner/eks.h"
#include "scanner/http.h"
#include "tests/support/fakehttp.h"

#define ANSWERS "tests/data/aws-answers/"
#define PAGE1_TOKEN "eyJ2IjoxLCJjIjoicGF5bWVudHMtc3RhZ2luZyJ9+/a=="
#define PAGE1_TOKEN_ENCODED "eyJ2IjoxLCJjIjoicGF5bWVudHMtc3RhZ2luZyJ9%2B%2Fa%3D%3D"
#define UPDATE_EGRESS "b7e1c4f0-93a2-4e58-8d1f-6a2c9e0b5f13"
#define UPDATE_VERSION "2d0f8a3c-5b1e-4d7a-9c62-0e8f1b3a7d54"

/* The whole fixture, NUL-terminated; fails the test when it cannot be read. */
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

/* ---- ListClusters parser ---- */

static void test_list_with_next_token(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-list-clusters-page1.json", &len);
    char **names, *token;
    size_t n;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_parse_list_clusters(body, len, &names, &n, &token, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "payments-prod");
    assert_string_equal(names[1], "payments-staging");
    assert_null(names[2]);
    assert_non_null(token);
    assert_string_equal(token, PAGE1_TOKEN);
    free(names); /* one block: names and token */
    free(body);
}

static void test_list_last_page_and_empty(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-list-clusters-page2.json", &len);
    char **names, *token;
    size_t n;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_parse_list_clusters(body, len, &names, &n, &token, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "search-prod");
    assert_null(token); /* "nextToken": null */
    free(names);
    free(body);

    body = fixture("eks-list-clusters-empty.json", &len);
    assert_int_equal(eks_parse_list_clusters(body, len, &names, &n, &token, &e), 0);
    assert_int_equal(n, 0);
    assert_non_null(names);
    assert_null(names[0]);
    assert_null(token); /* absent */
    free(names);
    free(body);

    const char *empty_token = "{\"clusters\":[\"a\"],\"nextToken\":\"\"}";
    assert_int_equal(
        eks_parse_list_clusters(empty_token, strlen(empty_token), &names, &n, &token, &e), 0);
    assert_null(token); /* an empty token ends the listing instead of looping */
    free(names);
}

static void expect_list_error(const char *body)
{
    char **names = (char **)1, *token = (char *)1;
    size_t n = 99;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_parse_list_clusters(body, strlen(body), &names, &n, &token, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    assert_true(strlen(e.message) > 0);
    assert_null(names);
    assert_null(token);
    assert_int_equal(n, 0);
}

static void test_list_errors(void **state)
{
    (void)state;
    char *body = fixture("eks-list-clusters-null.json", NULL);
    expect_list_error(body);
    free(body);
    expect_list_error("");
    expect_list_error("not json");
    expect_list_error("[]");
    expect_list_error("{}");
    expect_list_error("{\"clusters\":\"a\"}");
    expect_list_error("{\"clusters\":[\"a\",7]}");
    expect_list_error("{\"clusters\":[],\"nextToken\":5}");
    expect_list_error("{\"clusters\":[\"a\"");
}

/* A list error whose message names what was wrong. len 0: strlen(body). */
static void expect_list_error_naming(const char *body, size_t len, const char *needle)
{
    char **names = (char **)1, *token = (char *)1;
    size_t n = 99;
    struct err e;
    err_clear(&e);
    assert_int_equal(
        eks_parse_list_clusters(body, len ? len : strlen(body), &names, &n, &token, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    if (!strstr(e.message, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
    assert_null(names);
    assert_null(token);
    assert_int_equal(n, 0);
}

/* "[[[...1...]]]" nested depth deep inside prefix/suffix; caller frees. */
static char *nested(const char *prefix, int depth, const char *suffix)
{
    size_t len = strlen(prefix) + 2 * (size_t)depth + 1 + strlen(suffix) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    char *p = s + sprintf(s, "%s", prefix);
    memset(p, '[', (size_t)depth);
    p += depth;
    *p++ = '1';
    memset(p, ']', (size_t)depth);
    p += depth;
    strcpy(p, suffix);
    return s;
}

/* Hostile ListClusters answers: each is an error that names the member, never a crash or an
 * accepted page. */
static void test_list_hostile(void **state)
{
    (void)state;
    expect_list_error_naming("{\"clusters\":null}", 0, "\"clusters\" is null");
    expect_list_error_naming("{\"clusters\":7}", 0, "\"clusters\" is a number");
    expect_list_error_naming("{\"clusters\":{\"name\":\"a\"}}", 0, "\"clusters\" is an object");
    expect_list_error_naming("{\"clusters\":[\"a\",{\"name\":\"b\"}]}", 0,
                             "clusters[1] is an object");
    expect_list_error_naming("{\"clusters\":[\"a\",null]}", 0, "clusters[1] is null");
    expect_list_error_naming("{\"clusters\":[],\"nextToken\":{\"t\":1}}", 0,
                             "\"nextToken\" is an object");
    expect_list_error_naming("{\"clusters\":[],\"nextToken\":[\"t\"]}", 0,
                             "\"nextToken\" is an array");
    expect_list_error_naming("", 0, "empty");
    expect_list_error_naming("{\"clusters\":[\"a\xff\"]}", 0, "unable to decode byte");
    expect_list_error_naming("{\"clusters\":[\"\xc3\"]}", 0, "unable to decode byte");
    expect_list_error_naming("{\"clusters\":[\"a\\u0000b\"]}", 0, "invalid JSON");
    const char nul[] = "{\"clusters\":[],\"n\":1\0}";
    expect_list_error_naming(nul, sizeof nul - 1, "NUL byte at offset 20");
    char *deep = nested("{\"clusters\":", 100000, "}");
    expect_list_error_naming(deep, 0, "depth");
    free(deep);
}

/* ---- DescribeCluster parser ---- */

static void test_describe_all_fields(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-describe-cluster.json", &len);
    struct err e;
    err_clear(&e);
    struct cluster *c = eks_parse_describe_cluster(body, len, &e);
    assert_non_null(c);
    assert_string_equal(c->name, "payments-prod");
    assert_string_equal(c->arn, "arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod");
    assert_string_equal(c->egress_mode, "CUSTOMER_ROUTED");
    assert_string_equal(c->status, "ACTIVE");
    assert_string_equal(c->kubernetes_version, "1.31");
    assert_string_equal(c->platform_version, "eks.12");
    assert_int_equal(c->endpoint_public_access, 1);
    assert_int_equal(c->endpoint_private_access, 0);
    assert_string_equal(c->public_access_cidrs_json, "[\"203.0.113.0/24\",\"198.51.100.7/32\"]");
    assert_string_equal(c->vpc_id, "vpc-0e5f6071829304152");
    assert_string_equal(
        c->tags_json, "{\"team\":\"payments\",\"cost-center\":\"cc-4711\",\"data-class\":\"pci\"}");
    assert_string_equal(c->created_at, "2026-11-26T14:31:00.452Z");
    assert_int_equal(strlen(c->raw_json), len);
    assert_memory_equal(c->raw_json, body, len);

    /* one allocation: every string lives inside the block */
    const char *lo = (const char *)c, *hi = lo + sizeof *c + 2 * len + 4096;
    const char *fields[] = {c->name,   c->arn,       c->egress_mode, c->status,
                            c->vpc_id, c->tags_json, c->created_at,  c->raw_json};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_true(fields[i] > lo && fields[i] < hi);
    free(c);
    free(body);
}

static void test_describe_legacy_cluster(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-describe-cluster-legacy.json", &len);
    struct err e;
    err_clear(&e);
    struct cluster *c = eks_parse_describe_cluster(body, len, &e);
    assert_non_null(c);
    assert_string_equal(c->name, "legacy-batch");
    assert_null(c->egress_mode); /* not reported: NULL, never a default */
    assert_string_equal(c->status, "UPDATING");
    assert_int_equal(c->endpoint_public_access, 0);
    assert_int_equal(c->endpoint_private_access, 1);
    assert_null(c->public_access_cidrs_json);
    assert_null(c->tags_json);
    assert_string_equal(c->created_at, "2024-03-05T09:12:45Z"); /* integer epoch */
    assert_string_equal(c->raw_json, body);
    free(c);
    free(body);
}

static struct cluster *parse_str(const char *body, struct err *e)
{
    err_clear(e);
    return eks_parse_describe_cluster(body, strlen(body), e);
}

static void test_describe_optional_and_future_values(void **state)
{
    (void)state;
    struct err e;
    struct cluster *c = parse_str("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                                  "{\"controlPlaneEgressMode\":\"CUSTOMER_TUNNELED\"}}}",
                                  &e);
    assert_non_null(c);
    assert_string_equal(c->egress_mode, "CUSTOMER_TUNNELED"); /* unknown values kept verbatim */
    assert_int_equal(c->endpoint_public_access, -1);
    assert_int_equal(c->endpoint_private_access, -1);
    assert_null(c->arn);
    assert_null(c->created_at);
    assert_null(c->vpc_id);
    free(c);

    c = parse_str("{\"cluster\":{\"name\":\"x\",\"createdAt\":\"2025-01-02T03:04:05Z\","
                  "\"tags\":{},\"resourcesVpcConfig\":{\"controlPlaneEgressMode\":null,"
                  "\"endpointPublicAccess\":null,\"publicAccessCidrs\":[]}}}",
                  &e);
    assert_non_null(c);
    assert_null(c->egress_mode); /* null is absent */
    assert_int_equal(c->endpoint_public_access, -1);
    assert_string_equal(c->created_at, "2025-01-02T03:04:05Z"); /* a string is kept as sent */
    assert_string_equal(c->tags_json, "{}");
    assert_string_equal(c->public_access_cidrs_json, "[]");
    free(c);

    c = parse_str("{\"cluster\":{\"name\":\"x\",\"createdAt\":1795703460.9996}}", &e);
    assert_non_null(c);
    assert_string_equal(c->created_at, "2026-11-26T14:31:01Z"); /* rounded to the millisecond */
    free(c);

    c = parse_str("{\"cluster\":{\"name\":\"ete\",\"tags\":{\"k\":\"\\u00e9\\\"\"}}}", &e);
    assert_non_null(c);
    assert_string_equal(c->name, "ete");
    assert_string_equal(c->tags_json, "{\"k\":\"\xc3\xa9\\\"\"}");
    free(c);
}

static void expect_describe_error(const char *body, const char *needle)
{
    struct err e;
    struct cluster *c = parse_str(body, &e);
    assert_null(c);
    assert_string_equal(e.code, ERR_PARSE);
    if (needle && !strstr(e.message, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
}

static void test_describe_wrong_types(void **state)
{
    (void)state;
    expect_describe_error("", "empty");
    expect_describe_error("<xml/>", NULL);
    expect_describe_error("[]", NULL);
    expect_describe_error("{}", "cluster");
    expect_describe_error("{\"cluster\":null}", "cluster");
    expect_describe_error("{\"cluster\":[]}", "cluster");
    expect_describe_error("{\"cluster\":\"payments\"}", "cluster");
    expect_describe_error("{\"cluster\":{}}", "name");
    expect_describe_error("{\"cluster\":{\"name\":7}}", "name");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"arn\":{}}}", "arn");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"version\":1.31}}", "version");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"createdAt\":true}}", "createdAt");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"createdAt\":-5}}", "createdAt");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"createdAt\":1e300}}", "createdAt");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"tags\":[\"a\"]}}", "tags");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":[]}}",
                          "resourcesVpcConfig");
    expect_describe_error(
        "{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":{\"controlPlaneEgressMode\":1}}}",
        "controlPlaneEgressMode");
    expect_describe_error(
        "{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":{\"endpointPublicAccess\":\"yes\"}}}",
        "endpointPublicAccess");
    expect_describe_error(
        "{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":{\"publicAccessCidrs\":\"0/0\"}}}",
        "publicAccessCidrs");
    expect_describe_error(
        "{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":{\"publicAccessCidrs\":[1]}}}",
        "publicAccessCidrs");
    expect_describe_error("{\"cluster\":{\"name\":\"x\"", NULL);
}

/* Hostile DescribeCluster answers: an error naming the member, never a crash or a cluster with a
 * wrong value in it. */
static void test_describe_hostile(void **state)
{
    (void)state;
    expect_describe_error("{\"cluster\":{\"name\":{\"first\":\"x\"}}}",
                          "cluster.name is an object");
    expect_describe_error("{\"cluster\":{\"name\":[\"x\"]}}", "cluster.name is an array");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"status\":12}}",
                          "cluster.status is a number");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"tags\":{\"data-class\":7}}}",
                          "cluster.tags.data-class is a number");
    expect_describe_error(
        "{\"cluster\":{\"name\":\"x\",\"tags\":{\"owner\":\"a\",\"data-class\":{\"v\":\"r\"}}}}",
        "cluster.tags.data-class is an object");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":null,"
                          "\"tags\":{\"a\":null}}}",
                          "cluster.tags.a is null");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                          "{\"publicAccessCidrs\":[\"0.0.0.0/0\",null]}}}",
                          "publicAccessCidrs[1] is null");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                          "{\"controlPlaneEgressMode\":[\"CUSTOMER_ROUTED\"]}}}",
                          "controlPlaneEgressMode is an array");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                          "{\"endpointPrivateAccess\":0}}}",
                          "endpointPrivateAccess is a number");
    expect_describe_error("{\"cluster\":{\"name\":\"\xed\xa0\x80\"}}",
                          "unable to decode byte"); /* a surrogate */
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"arn\":\"\xc0\xaf\"}}",
                          "unable to decode byte");
    char *deep = nested("{\"cluster\":{\"name\":\"x\",\"tags\":{\"a\":", 100000, "}}}");
    expect_describe_error(deep, "depth");
    free(deep);
    /* a NUL after a number gets past jansson: the raw body would be cut short in the database */
    const char nul[] = "{\"cluster\":{\"name\":\"x\",\"createdAt\":1\0}}";
    struct err e;
    err_clear(&e);
    assert_null(eks_parse_describe_cluster(nul, sizeof nul - 1, &e));
    assert_string_equal(e.code, ERR_PARSE);
    assert_non_null(strstr(e.message, "NUL byte at offset 36"));
    /* what is accepted comes out exactly: tags that are all strings are kept */
    struct cluster *c = parse_str("{\"cluster\":{\"name\":\"x\",\"tags\":{\"a\":\"\u00e9\"}}}", &e);
    assert_non_null(c);
    assert_string_equal(c->tags_json, "{\"a\":\"\xc3\xa9\"}");
    free(c);
}

/* Every prefix of a real answer is either a valid document or a clean error (no crash, no
 * leak under ASan). */
static void test_describe_truncations(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-describe-cluster.json", &len);
    for (size_t i = 0; i < len; i++) {
        struct err e;
        err_clear(&e);
        struct cluster *c = eks_parse_describe_cluster(body, i, &e);
        if (c)
            free(c);
        else
            assert_string_equal(e.code, ERR_PARSE);
    }
    free(body);
}

/* SPEC section 4: what an answer may hold is checked where it is parsed. */
static void test_describe_validates_fields(void **state)
{
    (void)state;
    char body[16384];
    char name[128];
    memset(name, 'n', 101);
    name[101] = '\0';
    snprintf(body, sizeof body, "{\"cluster\":{\"name\":\"%s\"}}", name);
    expect_describe_error(body, "is not an EKS cluster name");
    name[100] = '\0'; /* 100 characters is allowed */
    snprintf(body, sizeof body, "{\"cluster\":{\"name\":\"%s\"}}", name);
    struct err e;
    struct cluster *c = parse_str(body, &e);
    assert_non_null(c);
    free(c);
    expect_describe_error("{\"cluster\":{\"name\":\"a$(touch pwned)\"}}", "a$(touch pwned)");
    expect_describe_error("{\"cluster\":{\"name\":\"-x\"}}", "not an EKS cluster name");
    expect_describe_error("{\"cluster\":{\"name\":\"\\u00e9t\\u00e9\"}}", "not an EKS cluster");
    /* control characters are not echoed into the message */
    c = parse_str("{\"cluster\":{\"name\":\"a\\u001b[2J\\\"b\"}}", &e);
    assert_null(c);
    assert_non_null(strstr(e.message, "\"a?[2J?b\""));

    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"createdAt\":\"yesterday-ish\"}}",
                          "\"yesterday-ish\" is not an ISO 8601 time");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"createdAt\":\"2025-01-02\"}}",
                          "createdAt");
    c = parse_str("{\"cluster\":{\"name\":\"x\",\"createdAt\":\"2025-01-02T03:04:05+02:00\"}}", &e);
    assert_non_null(c);
    assert_string_equal(c->created_at, "2025-01-02T01:04:05Z"); /* normalised */
    free(c);

    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"version\":\"1.31 ; drop\"}}",
                          "cluster.version");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                          "{\"vpcId\":\"vpc-1\\n\"}}}",
                          "vpcId");
    expect_describe_error("{\"cluster\":{\"name\":\"x\",\"resourcesVpcConfig\":"
                          "{\"publicAccessCidrs\":[\"0.0.0.0/0 x\"]}}}",
                          "publicAccessCidrs[0]");
    size_t off = (size_t)snprintf(body, sizeof body, "{\"cluster\":{\"name\":\"x\",\"tags\":{");
    for (int i = 0; i < 51; i++)
        off += (size_t)snprintf(body + off, sizeof body - off, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(body + off, sizeof body - off, "}}}");
    expect_describe_error(body, "51 tags");
    char key[200];
    memset(key, 'k', 129);
    key[129] = '\0';
    snprintf(body, sizeof body, "{\"cluster\":{\"name\":\"x\",\"tags\":{\"%s\":\"v\"}}}", key);
    expect_describe_error(body, "longer than AWS allows");
    /* 128 two-byte characters are 128 characters */
    off = (size_t)snprintf(body, sizeof body, "{\"cluster\":{\"name\":\"x\",\"tags\":{\"");
    for (int i = 0; i < 128; i++)
        off += (size_t)snprintf(body + off, sizeof body - off, "\xc3\xa9");
    snprintf(body + off, sizeof body - off, "\":\"v\"}}}");
    c = parse_str(body, &e);
    assert_non_null(c);
    free(c);
}

static struct cluster *identity_cluster(const char *name, const char *arn)
{
    static struct cluster c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.arn = arn;
    return &c;
}

static void test_check_identity(void **state)
{
    (void)state;
    struct err e;
    const char *good = "arn:aws:eks:eu-west-1:111122223333:cluster/good";
    assert_int_equal(
        eks_check_identity(identity_cluster("good", good), "eu-west-1", "111122223333", "good", &e),
        0);
    assert_int_equal(
        eks_check_identity(identity_cluster("good", good), "eu-west-1", NULL, "good", &e), 0);
    /* another account's cluster, answered by 444455556666 */
    assert_int_equal(
        eks_check_identity(identity_cluster("good", good), "eu-west-1", "444455556666", "good", &e),
        -1);
    assert_string_equal(e.code, ERR_PARSE);
    assert_non_null(
        strstr(e.message, "expected \"arn:aws:eks:eu-west-1:444455556666:cluster/good"));
    struct {
        const char *name, *arn, *region, *needle;
    } bad[] = {
        {"other", good, "eu-west-1", "the answer names \"good\""},
        {"good", NULL, "eu-west-1", "has no arn"},
        {"good", "arn:aws:eks:eu-west-2:111122223333:cluster/good", "eu-west-1", "expected"},
        {"good", "arn:aws:eks:eu-west-1:111122223333:cluster/good2", "eu-west-1", "expected"},
        {"good", "arn:aws:eks:eu-west-1:111122223333:cluster/goo", "eu-west-1", "expected"},
        {"good", "arn:aws:eks:eu-west-1:111122223333:nodegroup/good", "eu-west-1", "expected"},
        {"good", "arn:aws:eks:us-gov-west-1:111122223333:cluster/good", "us-gov-west-1",
         "arn:aws-us-gov:eks:us-gov-west-1"},
        {"good", "arn:aws:eks:eu-west-1:11112222333:cluster/good", "eu-west-1", "expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *want_name = i == 0 ? "other" : "good";
        struct cluster *c = identity_cluster(i == 0 ? "good" : bad[i].name, bad[i].arn);
        const char *acct = i == 7 ? NULL : "111122223333";
        err_clear(&e);
        assert_int_equal(eks_check_identity(c, bad[i].region, acct, want_name, &e), -1);
        assert_string_equal(e.code, ERR_PARSE);
        if (!strstr(e.message, bad[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.message, bad[i].needle);
    }
    const char *gov = "arn:aws-us-gov:eks:us-gov-west-1:111122223333:cluster/good";
    assert_int_equal(eks_check_identity(identity_cluster("good", gov), "us-gov-west-1",
                                        "111122223333", "good", &e),
                     0);
}

static void test_list_validates_names(void **state)
{
    (void)state;
    expect_list_error_naming("{\"clusters\":[\"ok\",\"a b\"]}", 0,
                             "clusters[1] \"a b\" (3 bytes) is not an EKS cluster name");
    expect_list_error_naming("{\"clusters\":[\"\"]}", 0, "not an EKS cluster name");
    char body[16384];
    char name[128];
    memset(name, 'n', 101);
    name[101] = '\0';
    snprintf(body, sizeof body, "{\"clusters\":[\"%s\"]}", name);
    expect_list_error_naming(body, 0, "(101 bytes) is not an EKS cluster name");
    size_t off = (size_t)snprintf(body, sizeof body, "{\"clusters\":[");
    for (int i = 0; i < 101; i++)
        off += (size_t)snprintf(body + off, sizeof body - off, "%s\"c%d\"", i ? "," : "", i);
    snprintf(body + off, sizeof body - off, "]}");
    expect_list_error_naming(body, 0, "101 names on one page");
    off = (size_t)snprintf(body, sizeof body, "{\"clusters\":[],\"nextToken\":\"");
    memset(body + off, 't', 5000);
    snprintf(body + off + 5000, sizeof body - off - 5000, "\"}");
    expect_list_error_naming(body, 0, "nextToken of 5000 bytes");
}

/* ---- requests against a fake EKS ---- */

#define EKS_TEST_MAX_BODY (64 * 1024) /* the engine's body cap in these tests */

struct fake_eks {
    pthread_mutex_t mu;
    char targets[8][512];
    char auth[8][512];
    int n;
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

static void eks_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake_eks *f = ud;
    pthread_mutex_lock(&f->mu);
    if (f->n < 8) {
        snprintf(f->targets[f->n], sizeof f->targets[0], "%s %s", req->method, req->target);
        if (!header_value(req->headers, "Authorization", f->auth[f->n], sizeof f->auth[0]))
            f->auth[f->n][0] = '\0';
        f->n++;
    }
    pthread_mutex_unlock(&f->mu);
    const char *json = "{\"message\":\"unexpected request\"}";
    char *body = NULL;
    if (strcmp(req->target, "/clusters?maxResults=100") == 0) {
        body = fixture("eks-list-clusters-page1.json", NULL);
    } else if (strcmp(req->target, "/clusters?maxResults=100&nextToken=" PAGE1_TOKEN_ENCODED) ==
               0) {
        body = fixture("eks-list-clusters-page2.json", NULL);
    } else if (strcmp(req->target, "/clusters/payments-prod") == 0) {
        body = fixture("eks-describe-cluster.json", NULL);
    } else if (strcmp(req->target, "/clusters/gone-cluster") == 0) {
        body = fixture("eks-error-resource-not-found.json", NULL);
        fakehttp_respond(resp, 404,
                         "Content-Type: application/json\r\n"
                         "X-Amzn-Errortype: ResourceNotFoundException:http://internal.amazon.com/"
                         "coral/com.amazonaws.eks/\r\n"
                         "x-amzn-RequestId: 6e4f1c2a-0000-4a1b-9c3d-8e7f6a5b4c3d\r\n",
                         body);
        free(body);
        return;
    } else if (strcmp(req->target, "/clusters/huge-answer") == 0) {
        /* a well-formed start, then more than the engine takes (EKS_TEST_MAX_BODY), unannounced */
        size_t n = 4 * EKS_TEST_MAX_BODY;
        char *huge = malloc(n + 1);
        assert_non_null(huge);
        memset(huge, 'x', n);
        memcpy(huge, "{\"cluster\":{\"name\":\"huge\",\"tags\":{\"a\":\"", 36);
        huge[n] = '\0';
        fakehttp_respond(resp, 200, "Transfer-Encoding: chunked\r\n", huge);
        free(huge);
        return;
    } else if (strcmp(req->target, "/clusters/forged") == 0) {
        /* a member answering for another cluster: the fixture names payments-prod */
        body = fixture("eks-describe-cluster.json", NULL);
    } else if (strcmp(req->target, "/clusters/payments-prod/updates?maxResults=100") == 0) {
        body = fixture("eks-list-updates.json", NULL);
    } else if (strcmp(req->target, "/clusters/payments-prod/updates?maxResults=100&nextToken="
                                   "eyJ2IjoxLCJ1IjoiYjdlMWM0ZjAifQ%2B%2F%3D%3D") == 0) {
        body = strdup("{\"updateIds\":[],\"nextToken\":null}");
    } else if (strcmp(req->target, "/clusters/payments-prod/updates/" UPDATE_EGRESS) == 0 ||
               strcmp(req->target, "/clusters/payments-prod/updates/" UPDATE_VERSION) == 0) {
        /* the second is a forgery: the egress update's answer for another id */
        body = fixture("eks-describe-update-egress.json", NULL);
    } else if (strcmp(req->target, "/clusters/bad-answer") == 0) {
        fakehttp_respond(resp, 200, "Content-Type: application/json\r\n",
                         "{\"cluster\":{\"name\":42}}");
        return;
    } else {
        fakehttp_respond(resp, 400, "X-Amzn-Errortype: InvalidParameterException\r\n", json);
        return;
    }
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", body);
    free(body);
}

struct fixture_env {
    struct fake_eks fake;
    struct fakehttp *srv;
    struct http_engine *engine;
    struct aws_credentials *creds;
};

static int setup(void **state)
{
    struct fixture_env *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    pthread_mutex_init(&fx->fake.mu, NULL);
    fx->srv = fakehttp_start(eks_handler, &fx->fake, NULL, NULL);
    assert_non_null(fx->srv);
    unsetenv("AWS_ENDPOINT_URL_EKS");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_ENDPOINT_URL", fakehttp_url(fx->srv), 1);
    struct http_engine_options o;
    struct err e;
    err_clear(&e);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    o.max_attempts = 1;
    o.max_body = EKS_TEST_MAX_BODY;
    fx->engine = http_engine_new(&o, &e);
    assert_non_null(fx->engine);
    fx->creds =
        creds_new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0, "test");
    assert_non_null(fx->creds);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture_env *fx = *state;
    http_engine_free(fx->engine);
    creds_unref(fx->creds);
    fakehttp_stop(fx->srv);
    pthread_mutex_destroy(&fx->fake.mu);
    unsetenv("AWS_ENDPOINT_URL");
    free(fx);
    return 0;
}

struct list_run {
    struct fixture_env *fx;
    char names[8][64];
    int n_names;
    int pages;
    int errors;
};

static void on_list(void *ud, const struct eks_cluster_page *page, const struct err *e)
{
    struct list_run *run = ud;
    if (!page) {
        run->errors++;
        fail_msg("ListClusters failed: %s: %s", e->code, e->message);
        return;
    }
    assert_null(e);
    run->pages++;
    for (size_t i = 0; i < page->n && run->n_names < 8; i++)
        snprintf(run->names[run->n_names++], sizeof run->names[0], "%s", page->names[i]);
    if (page->next_token) {
        struct err se;
        err_clear(&se);
        assert_int_equal(eks_list_clusters_submit(run->fx->engine, run->fx->creds, "eu-west-1",
                                                  page->next_token, 0, "111122223333", on_list, run,
                                                  &se),
                         0);
    }
}

static void test_list_paginated_request(void **state)
{
    struct fixture_env *fx = *state;
    struct list_run run;
    memset(&run, 0, sizeof run);
    run.fx = fx;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_list_clusters_submit(fx->engine, fx->creds, "eu-west-1", NULL, 100,
                                              "111122223333", on_list, &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.pages, 2);
    assert_int_equal(run.errors, 0);
    assert_int_equal(run.n_names, 3);
    assert_string_equal(run.names[0], "payments-prod");
    assert_string_equal(run.names[2], "search-prod");
    assert_int_equal(fx->fake.n, 2);
    assert_string_equal(fx->fake.targets[0], "GET /clusters?maxResults=100");
    assert_string_equal(fx->fake.targets[1],
                        "GET /clusters?maxResults=100&nextToken=" PAGE1_TOKEN_ENCODED);
    /* signed for the target's region and the eks service, even with an endpoint override */
    assert_non_null(strstr(fx->fake.auth[0], "/eu-west-1/eks/aws4_request"));
    assert_non_null(strstr(fx->fake.auth[1], "AKIDEXAMPLE/"));

    /* maxResults out of range is refused before anything is queued */
    assert_int_equal(eks_list_clusters_submit(fx->engine, fx->creds, "eu-west-1", NULL, 101, NULL,
                                              on_list, &run, &e),
                     -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_int_equal(eks_list_clusters_submit(fx->engine, fx->creds, "not a region", NULL, 5, NULL,
                                              on_list, &run, &e),
                     -1);
}

struct describe_run {
    struct cluster *c;
    struct err e;
    int calls;
};

static void on_describe(void *ud, struct cluster *c, const struct err *e)
{
    struct describe_run *run = ud;
    run->calls++;
    run->c = c;
    if (e)
        run->e = *e;
    else
        err_clear(&run->e);
    assert_true((c == NULL) != (e == NULL));
}

/* A DescribeCluster answer over the body cap is ResponseTooLarge naming the cap: no cluster, and
 * nothing of the part that arrived is parsed (its start is a valid-looking document). */
static void test_describe_huge_answer(void **state)
{
    struct fixture_env *fx = *state;
    struct describe_run huge;
    memset(&huge, 0, sizeof huge);
    struct err e;
    err_clear(&e);
    int before = fx->fake.n;
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "huge-answer",
                                                 "111122223333", on_describe, &huge, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(huge.calls, 1);
    assert_null(huge.c);
    assert_string_equal(huge.e.code, ERR_TOO_LARGE);
    assert_non_null(strstr(huge.e.message, "65536 bytes"));
    assert_int_equal(fx->fake.n - before, 1);
}

static void test_describe_request(void **state)
{
    struct fixture_env *fx = *state;
    struct describe_run ok, gone, bad;
    memset(&ok, 0, sizeof ok);
    memset(&gone, 0, sizeof gone);
    memset(&bad, 0, sizeof bad);
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1",
                                                 "payments-prod", "111122223333", on_describe, &ok,
                                                 &e),
                     0);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "gone-cluster",
                                                 "111122223333", on_describe, &gone, &e),
                     0);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "bad-answer",
                                                 "111122223333", on_describe, &bad, &e),
                     0);
    /* payments-prod asked as another account's: its arn names 111122223333 */
    struct describe_run other, forged;
    memset(&other, 0, sizeof other);
    memset(&forged, 0, sizeof forged);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1",
                                                 "payments-prod", "444455556666", on_describe,
                                                 &other, &e),
                     0);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "forged",
                                                 "111122223333", on_describe, &forged, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);

    assert_int_equal(other.calls, 1);
    assert_null(other.c);
    assert_string_equal(other.e.code, ERR_PARSE);
    assert_non_null(strstr(other.e.message, "arn:aws:eks:eu-west-1:444455556666:cluster/"));
    assert_int_equal(forged.calls, 1);
    assert_null(forged.c);
    assert_string_equal(forged.e.code, ERR_PARSE);
    assert_non_null(strstr(forged.e.message, "asked for cluster \"forged\""));

    assert_int_equal(ok.calls, 1);
    assert_non_null(ok.c);
    assert_string_equal(ok.c->name, "payments-prod");
    assert_string_equal(ok.c->egress_mode, "CUSTOMER_ROUTED");
    size_t len;
    char *body = fixture("eks-describe-cluster.json", &len);
    assert_string_equal(ok.c->raw_json, body);
    free(body);
    free(ok.c);

    assert_int_equal(gone.calls, 1);
    assert_null(gone.c);
    assert_string_equal(gone.e.code, "ResourceNotFoundException");
    assert_int_equal(gone.e.http_status, 404);
    assert_string_equal(gone.e.request_id, "6e4f1c2a-0000-4a1b-9c3d-8e7f6a5b4c3d");
    assert_non_null(strstr(gone.e.message, "gone-cluster"));

    assert_int_equal(bad.calls, 1);
    assert_null(bad.c);
    assert_string_equal(bad.e.code, ERR_PARSE);
    assert_int_equal(bad.e.http_status, 200);
}

static void test_describe_request_encodes_name(void **state)
{
    struct fixture_env *fx = *state;
    struct describe_run run;
    memset(&run, 0, sizeof run);
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "a b/c?", NULL,
                                                 on_describe, &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.calls, 1);
    assert_string_equal(run.e.code, "InvalidParameterException");
    assert_string_equal(fx->fake.targets[0], "GET /clusters/a%20b%2Fc%3F");
    assert_int_equal(eks_describe_cluster_submit(fx->engine, fx->creds, "eu-west-1", "", NULL,
                                                 on_describe, &run, &e),
                     -1);
    assert_string_equal(e.code, ERR_INVALID);
}

/* ---- ListUpdates and DescribeUpdate ---- */

static void test_list_updates(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-list-updates.json", &len);
    char **ids, *token;
    size_t n;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_parse_list_updates(body, len, &ids, &n, &token, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], UPDATE_VERSION);
    assert_string_equal(ids[1], UPDATE_EGRESS);
    assert_null(ids[2]);
    assert_string_equal(token, "eyJ2IjoxLCJ1IjoiYjdlMWM0ZjAifQ+/==");
    free(ids);
    free(body);
    const char *last = "{\"updateIds\":[],\"nextToken\":null}";
    assert_int_equal(eks_parse_list_updates(last, strlen(last), &ids, &n, &token, &e), 0);
    assert_int_equal(n, 0);
    assert_null(token);
    free(ids);
}

static void expect_list_updates_error(const char *body, const char *needle)
{
    char **ids = (char **)1, *token = (char *)1;
    size_t n = 7;
    struct err e;
    err_clear(&e);
    if (eks_parse_list_updates(body, strlen(body), &ids, &n, &token, &e) != -1)
        fail_msg("accepted: %s", body);
    assert_string_equal(e.code, ERR_PARSE);
    assert_null(ids);
    assert_null(token);
    assert_int_equal(n, 0);
    if (!strstr(e.message, needle))
        fail_msg("\"%s\" does not say \"%s\"", e.message, needle);
}

static void test_list_updates_hostile(void **state)
{
    (void)state;
    expect_list_updates_error("{\"clusters\":[]}", "\"updateIds\" is missing");
    expect_list_updates_error("{\"updateIds\":{}}", "expected an array");
    expect_list_updates_error("{\"updateIds\":[7]}", "updateIds[0] is a number");
    expect_list_updates_error("{\"updateIds\":[\"../../clusters\"]}", "is not an update id");
    expect_list_updates_error("{\"updateIds\":[\"\"]}", "is not an update id");
    expect_list_updates_error("{\"updateIds\":[\"a\\u0000b\"]}", "is not allowed");
    expect_list_updates_error("{\"updateIds\":[\"a%2Fb\"]}", "is not an update id");
    expect_list_updates_error("{\"updateIds\":[],\"nextToken\":5}", "\"nextToken\" is a number");
    /* 65 characters: longer than any id EKS gives */
    char big[200];
    snprintf(big, sizeof big, "{\"updateIds\":[\"%065d\"]}", 0);
    expect_list_updates_error(big, "(65 bytes) is not an update id");
    /* 101 ids on a page of at most 100 */
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"updateIds\":[");
    for (int i = 0; i < 101; i++)
        assert_int_equal(buf_printf(&b, "%s\"u-%d\"", i ? "," : "", i), 0);
    buf_puts(&b, "]}");
    expect_list_updates_error(b.data, "101 ids on one page");
    buf_cleanup(&b);
    /* a token of 5000 bytes */
    buf_init(&b);
    buf_puts(&b, "{\"updateIds\":[],\"nextToken\":\"");
    for (int i = 0; i < 5000; i++)
        buf_putc(&b, 'A');
    buf_puts(&b, "\"}");
    expect_list_updates_error(b.data, "nextToken of 5000 bytes");
    buf_cleanup(&b);
}

static void test_describe_update(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("eks-describe-update-egress.json", &len);
    struct eks_update u;
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_parse_describe_update(body, len, UPDATE_EGRESS, &u, &e), 0);
    assert_string_equal(u.id, UPDATE_EGRESS);
    assert_string_equal(u.type, EKS_EGRESS_UPDATE_TYPE);
    assert_string_equal(u.status, "Successful");
    assert_string_equal(u.egress_mode, "CUSTOMER_ROUTED");
    assert_true(u.created_at > 1764158400.45 && u.created_at < 1764158400.46);
    /* an answer for another update than the one asked for is refused */
    assert_int_equal(eks_parse_describe_update(body, len, UPDATE_VERSION, &u, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    assert_non_null(strstr(e.message, "asked for update \"" UPDATE_VERSION "\""));
    assert_string_equal(u.id, ""); /* nothing half-filled */
    free(body);

    body = fixture("eks-describe-update-version-failed.json", &len);
    err_clear(&e);
    assert_int_equal(eks_parse_describe_update(body, len, NULL, &u, &e), 0);
    assert_string_equal(u.type, "VersionUpdate");
    assert_string_equal(u.status, "Failed");
    assert_string_equal(u.egress_mode, ""); /* not an egress update */
    assert_true(u.created_at == 1761566400.0);
    free(body);

    /* createdAt as ISO 8601 text; params absent */
    const char *iso = "{\"update\":{\"id\":\"u-1\",\"status\":\"InProgress\",\"type\":"
                      "\"ControlPlaneEgressUpdate\",\"createdAt\":\"2026-11-26T14:31:00Z\"}}";
    assert_int_equal(eks_parse_describe_update(iso, strlen(iso), "u-1", &u, &e), 0);
    assert_string_equal(u.status, "InProgress");
    assert_true(u.created_at == 1795703460.0);
}

static void expect_update_error(const char *body, const char *needle)
{
    struct eks_update u;
    struct err e;
    err_clear(&e);
    if (eks_parse_describe_update(body, strlen(body), NULL, &u, &e) != -1)
        fail_msg("accepted: %s", body);
    assert_string_equal(e.code, ERR_PARSE);
    assert_string_equal(u.id, "");
    if (!strstr(e.message, needle))
        fail_msg("\"%s\" does not say \"%s\"", e.message, needle);
}

#define UPD(rest) "{\"update\":{\"id\":\"u-1\",\"type\":\"ControlPlaneEgressUpdate\"," rest "}}"

static void test_describe_update_hostile(void **state)
{
    (void)state;
    expect_update_error("[]", "not an object");
    expect_update_error("{\"update\":[]}", "\"update\" is an array");
    expect_update_error("{\"update\":{\"status\":\"Successful\"}}", "update.id (missing)");
    expect_update_error("{\"update\":{\"id\":\"a/b\",\"status\":\"Successful\"}}",
                        "update.id a/b is not");
    expect_update_error(UPD("\"status\":\"Done\""), "is not InProgress, Failed");
    expect_update_error(UPD("\"status\":7"), "update.status is a number");
    expect_update_error("{\"update\":{\"id\":\"u-1\",\"status\":\"Failed\",\"type\":\"Bad Type\"}}",
                        "update.type \"Bad Type\"");
    expect_update_error(UPD("\"status\":\"Successful\",\"createdAt\":-5"), "out of range");
    expect_update_error(UPD("\"status\":\"Successful\",\"createdAt\":\"yesterday-ish\""),
                        "is not a time");
    expect_update_error(UPD("\"status\":\"Successful\",\"createdAt\":true"), "expected a time");
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":{}"), "expected an array");
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[7]"), "params[0] is a number");
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[{\"value\":\"x\"}]"),
                        "params[0].type is missing");
    /* the mode value is kept: a short token only */
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[{\"type\":"
                            "\"ControlPlaneEgressMode\",\"value\":\"CUSTOMER_ROUTED\\n\"}]"),
                        "params[0].value \"CUSTOMER_ROUTED?\"");
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[{\"type\":"
                            "\"ControlPlaneEgressMode\",\"value\":5}]"),
                        "params[0].value is a number");
    /* other values are not kept, but must be text */
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[{\"type\":\"Version\","
                            "\"value\":\"\\udc00\"}]"),
                        "invalid");
    expect_update_error(UPD("\"status\":\"Successful\",\"params\":[{\"type\":\"Version\","
                            "\"value\":[]}]"),
                        "params[0].value is not a string");
    struct buf b;
    buf_init(&b);
    buf_puts(&b, UPD("\"status\":\"Successful\",\"params\":["));
    b.len -= 2; /* reopen: UPD closed the objects */
    b.data[b.len] = '\0';
    for (int i = 0; i < 51; i++)
        assert_int_equal(buf_printf(&b, "%s{\"type\":\"Version\",\"value\":\"1\"}", i ? "," : ""),
                         0);
    buf_puts(&b, "]}}");
    expect_update_error(b.data, "51 update.params");
    buf_cleanup(&b);
}

struct updates_run {
    int calls;
    struct err e;
    size_t n;
    char first[80], token[80];
    struct eks_update u;
};

static void on_list_updates(void *ud, const struct eks_update_page *page, const struct err *e)
{
    struct updates_run *r = ud;
    r->calls++;
    if (!page) {
        r->e = *e;
        return;
    }
    r->n = page->n;
    snprintf(r->first, sizeof r->first, "%s", page->n ? page->ids[0] : "");
    snprintf(r->token, sizeof r->token, "%s", page->next_token ? page->next_token : "");
}

static void on_describe_update(void *ud, const struct eks_update *u, const struct err *e)
{
    struct updates_run *r = ud;
    r->calls++;
    if (!u) {
        r->e = *e;
        return;
    }
    r->u = *u;
}

static void test_updates_requests(void **state)
{
    struct fixture_env *fx = *state;
    struct updates_run run;
    memset(&run, 0, sizeof run);
    struct err e;
    err_clear(&e);
    assert_int_equal(eks_list_updates_submit(fx->engine, fx->creds, "eu-west-1", "payments-prod",
                                             "111122223333", NULL, 0, on_list_updates, &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.calls, 1);
    assert_int_equal(run.n, 2);
    assert_string_equal(run.first, UPDATE_VERSION);
    assert_string_equal(fx->fake.targets[0], "GET /clusters/payments-prod/updates?maxResults=100");
    assert_non_null(strstr(fx->fake.auth[0], "/eu-west-1/eks/aws4_request"));
    /* the next page: the token URL-encoded */
    memset(&run, 0, sizeof run);
    assert_int_equal(eks_list_updates_submit(
                         fx->engine, fx->creds, "eu-west-1", "payments-prod", "111122223333",
                         "eyJ2IjoxLCJ1IjoiYjdlMWM0ZjAifQ+/==", 100, on_list_updates, &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.calls, 1);
    assert_string_equal(run.e.code, "");
    assert_int_equal(run.n, 0);
    assert_string_equal(run.token, "");
    /* DescribeUpdate: the answer names the update asked for */
    memset(&run, 0, sizeof run);
    assert_int_equal(eks_describe_update_submit(fx->engine, fx->creds, "eu-west-1", "payments-prod",
                                                UPDATE_EGRESS, "111122223333", on_describe_update,
                                                &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.calls, 1);
    assert_string_equal(run.u.status, "Successful");
    assert_string_equal(run.u.egress_mode, "CUSTOMER_ROUTED");
    assert_string_equal(fx->fake.targets[2], "GET /clusters/payments-prod/updates/" UPDATE_EGRESS);
    /* ... and a forged one (another update's answer) is MalformedResponse */
    memset(&run, 0, sizeof run);
    assert_int_equal(eks_describe_update_submit(fx->engine, fx->creds, "eu-west-1", "payments-prod",
                                                UPDATE_VERSION, "111122223333", on_describe_update,
                                                &run, &e),
                     0);
    assert_int_equal(http_engine_run(fx->engine, &e), 0);
    assert_int_equal(run.calls, 1);
    assert_string_equal(run.e.code, ERR_PARSE);
    assert_int_equal(run.e.http_status, 200);
    /* what cannot be in a URL is refused before anything is sent */
    assert_int_equal(eks_describe_update_submit(fx->engine, fx->creds, "eu-west-1", "payments-prod",
                                                "../x", NULL, on_describe_update, &run, &e),
                     -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_int_equal(eks_list_updates_submit(fx->engine, fx->creds, "eu-west-1", "", NULL, NULL, 0,
                                             on_list_updates, &run, &e),
                     -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_int_equal(fx->fake.n, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_with_next_token),
        cmocka_unit_test(test_list_last_page_and_empty),
        cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_list_hostile),
        cmocka_unit_test(test_describe_all_fields),
        cmocka_unit_test(test_describe_legacy_cluster),
        cmocka_unit_test(test_describe_optional_and_future_values),
        cmocka_unit_test(test_describe_wrong_types),
        cmocka_unit_test(test_describe_hostile),
        cmocka_unit_test(test_describe_truncations),
        cmocka_unit_test(test_describe_validates_fields),
        cmocka_unit_test(test_check_identity),
        cmocka_unit_test(test_list_validates_names),
        cmocka_unit_test_setup_teardown(test_list_paginated_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_huge_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_request_encodes_name, setup, teardown),
        cmocka_unit_test(test_list_updates),
        cmocka_unit_test(test_list_updates_hostile),
        cmocka_unit_test(test_describe_update),
        cmocka_unit_test(test_describe_update_hostile),
        cmocka_unit_test_setup_teardown(test_updates_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
