/* test_aws_moto.c - the AWS request core against moto with signature checking on: an IAM user's
 * keys from the environment, AssumeRole into a member account, ListClusters and DescribeCluster
 * in two regions with the assumed credentials; wrong secrets fail with SignatureDoesNotMatch;
 * no secret ever reaches a log line or an error message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/log.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/sts.h"
#include "tests/support/procs.h"

struct fixture {
    struct mototest moto;
    json_t *seed; /* moto_seed.py output */
    char *log_text;
    size_t log_len;
    FILE *log;
    struct http_engine *engine;
    char secrets[8][512]; /* every secret seen, searched for in logs at the end */
    int n_secrets;
};

static struct fixture fx;

static const char *seed_str(const char *key)
{
    return json_string_value(json_object_get(fx.seed, key));
}

static const char *account_id(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), name));
}

static void remember_secret(const char *s)
{
    if (s && fx.n_secrets < 8)
        snprintf(fx.secrets[fx.n_secrets++], sizeof fx.secrets[0], "%s", s);
}

static int setup(void **state)
{
    (void)state;
    if (mototest_start(&fx.moto) < 0)
        return -1;
    char *out = NULL;
    if (mototest_seed(&fx.moto, "tests/data/fleets/small.json", &out) != 0) {
        fprintf(stderr, "moto_seed.py failed\n");
        free(out);
        return -1;
    }
    json_error_t je;
    fx.seed = json_loads(out, 0, &je);
    free(out);
    if (!fx.seed)
        return -1;
    remember_secret(seed_str("secret_access_key"));
    if (mototest_set_auth(&fx.moto, 1) < 0)
        return -1;

    /* Everything is logged at debug level into memory, to be searched for secrets. */
    fx.log = open_memstream(&fx.log_text, &fx.log_len);
    log_setup(LOG_DEBUG, LOG_TEXT, fx.log);

    setenv("AWS_ACCESS_KEY_ID", seed_str("access_key_id"), 1);
    setenv("AWS_SECRET_ACCESS_KEY", seed_str("secret_access_key"), 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", "/nonexistent/egressscan-test", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/egressscan-test", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL", fx.moto.url, 1);
    setenv("AWS_MAX_ATTEMPTS", "1", 1); /* moto errors are final; keep the test fast */

    struct http_engine_options o;
    struct err e;
    if (http_engine_options_init(&o, &e) < 0)
        return -1;
    fx.engine = http_engine_new(&o, &e);
    return fx.engine ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    http_engine_free(fx.engine);
    log_setup(LOG_INFO, LOG_TEXT, NULL);
    if (fx.log)
        fclose(fx.log);
    free(fx.log_text);
    json_decref(fx.seed);
    mototest_stop(&fx.moto);
    return 0;
}

static struct aws_credentials *assume(struct aws_credentials *base, const char *account,
                                      struct err *e)
{
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/%s", account, seed_str("role_name"));
    struct sts_assume_role_params p = {.role_arn = arn,
                                       .session_name = "egressscan-itest",
                                       .region = "us-east-1",
                                       .pace_key = account};
    return sts_assume_role(fx.engine, base, &p, e);
}

/* GET path on EKS in region with creds; returns the parsed JSON answer or NULL with e set. */
static json_t *eks_get(struct aws_credentials *creds, const char *region, const char *path,
                       struct err *e)
{
    struct endpoint ep;
    if (endpoint_resolve("eks", region, &ep, e) < 0)
        return NULL;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", ep.url, path);
    struct aws_request req = {.protocol = AWS_PROTO_REST_JSON,
                              .method = "GET",
                              .url = url,
                              .service = "eks",
                              .region = ep.signing_region,
                              .creds = creds,
                              .allow_http = ep.is_override};
    struct buf body;
    buf_init(&body);
    long status = 0;
    json_t *j = NULL;
    if (http_perform(fx.engine, &req, &body, &status, e) == 0)
        j = json_loadb(body.data, body.len, 0, NULL);
    buf_cleanup(&body);
    return j;
}

static int json_array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static void test_assume_role_and_list_clusters_in_two_regions(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    struct creds_chain *chain = creds_chain_new(NULL, &e);
    assert_non_null(chain);
    struct aws_credentials *base = creds_chain_get(chain, &e);
    assert_non_null(base);
    assert_string_equal(base->source, "env");

    struct aws_credentials *member = assume(base, account_id("payments"), &e);
    if (!member)
        fail_msg("AssumeRole: %s: %s", e.code, e.message);
    assert_non_null(member->session_token);
    assert_true(member->expiration > 0);
    remember_secret(member->secret_access_key);
    remember_secret(member->session_token);

    json_t *eu = eks_get(member, "eu-west-1", "/clusters?maxResults=100", &e);
    if (!eu)
        fail_msg("ListClusters eu-west-1: %s: %s", e.code, e.message);
    json_t *names = json_object_get(eu, "clusters");
    assert_int_equal(json_array_size(names), 1);
    assert_true(json_array_has(names, "pay-eu"));
    json_decref(eu);

    json_t *us = eks_get(member, "us-east-2", "/clusters?maxResults=100", &e);
    if (!us)
        fail_msg("ListClusters us-east-2: %s: %s", e.code, e.message);
    names = json_object_get(us, "clusters");
    assert_int_equal(json_array_size(names), 2);
    assert_true(json_array_has(names, "pay-us"));
    assert_true(json_array_has(names, "pay-legacy"));
    json_decref(us);

    /* DescribeCluster carries the egress mode (moto has the current models) */
    json_t *d = eks_get(member, "eu-west-1", "/clusters/pay-eu", &e);
    if (!d)
        fail_msg("DescribeCluster: %s: %s", e.code, e.message);
    json_t *vpc = json_object_get(json_object_get(d, "cluster"), "resourcesVpcConfig");
    assert_string_equal(json_string_value(json_object_get(vpc, "controlPlaneEgressMode")),
                        "CUSTOMER_ROUTED");
    json_decref(d);

    creds_unref(member);
    creds_unref(base);
    creds_chain_free(chain);
}

static void assert_no_secret_in(const char *text)
{
    for (int i = 0; i < fx.n_secrets; i++)
        if (fx.secrets[i][0] && strstr(text, fx.secrets[i]))
            fail_msg("a secret appears in: %s", text);
}

static void test_wrong_secret_fails_with_signature_does_not_match(void **state)
{
    (void)state;
    const char *wrong = "wrongSecretKeyThatMustNeverBeLogged0123456";
    remember_secret(wrong);
    struct aws_credentials *bad = creds_new(seed_str("access_key_id"), wrong, NULL, 0, "test");
    assert_non_null(bad);
    struct err e;
    err_clear(&e);
    struct aws_credentials *member = assume(bad, account_id("payments"), &e);
    assert_null(member);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_int_equal(e.http_status, 403);
    assert_no_secret_in(e.message);
    creds_unref(bad);

    /* EKS with assumed keys and a wrong secret: moto answers 403 with an XML body */
    struct aws_credentials *base =
        creds_new(seed_str("access_key_id"), seed_str("secret_access_key"), NULL, 0, "test");
    struct aws_credentials *good = assume(base, account_id("payments"), &e);
    assert_non_null(good);
    remember_secret(good->session_token);
    struct aws_credentials *tampered =
        creds_new(good->access_key_id, wrong, good->session_token, good->expiration, "test");
    err_clear(&e);
    json_t *j = eks_get(tampered, "eu-west-1", "/clusters?maxResults=100", &e);
    assert_null(j);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_no_secret_in(e.message);
    creds_unref(tampered);
    creds_unref(good);
    creds_unref(base);
}

static void test_denied_assume_role_is_access_denied(void **state)
{
    (void)state;
    struct aws_credentials *base =
        creds_new(seed_str("access_key_id"), seed_str("secret_access_key"), NULL, 0, "test");
    struct err e;
    err_clear(&e);
    struct aws_credentials *member = assume(base, account_id("locked"), &e);
    assert_null(member);
    assert_string_equal(e.code, "AccessDenied");
    assert_int_equal(e.http_status, 403);
    creds_unref(base);
}

/* Runs last: everything logged at debug level by the tests above. */
static void test_no_secret_in_debug_log(void **state)
{
    (void)state;
    fflush(fx.log);
    /* the debug log did record every call, with its service and outcome */
    assert_non_null(strstr(fx.log_text, "sts POST"));
    assert_non_null(strstr(fx.log_text, "eks GET"));
    assert_non_null(strstr(fx.log_text, "SignatureDoesNotMatch"));
    assert_true(fx.n_secrets >= 4);
    assert_no_secret_in(fx.log_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assume_role_and_list_clusters_in_two_regions),
        cmocka_unit_test(test_wrong_secret_fails_with_signature_does_not_match),
        cmocka_unit_test(test_denied_assume_role_is_access_denied),
        cmocka_unit_test(test_no_secret_in_debug_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
