/* test_endpoint.c - endpoint resolution: regional and partition-global defaults, the
 * AWS_ENDPOINT_URL(_<SERVICE>) overrides and their validation, the ignore flag, and regions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "scanner/endpoint.h"

static const char *const env_vars[] = {
    "AWS_ENDPOINT_URL",     "AWS_ENDPOINT_URL_EKS",
    "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ORGANIZATIONS",
    "AWS_ENDPOINT_URL_EC2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_REGION",           "AWS_DEFAULT_REGION",
};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

static void resolve_ok(const char *service, const char *region, struct endpoint *ep)
{
    struct err e;
    err_clear(&e);
    int rc = endpoint_resolve(service, region, ep, &e);
    if (rc != 0)
        fail_msg("%s/%s: %s: %s", service, region, e.code, e.message);
}

static void resolve_fails(const char *service, const char *region)
{
    struct endpoint ep;
    struct err e;
    err_clear(&e);
    assert_int_equal(endpoint_resolve(service, region, &ep, &e), -1);
    assert_string_equal(e.code, ERR_CONFIG);
}

static void test_defaults(void **state)
{
    (void)state;
    struct endpoint ep;
    resolve_ok("eks", "eu-west-1", &ep);
    assert_string_equal(ep.url, "https://eks.eu-west-1.amazonaws.com");
    assert_string_equal(ep.signing_region, "eu-west-1");
    assert_int_equal(ep.is_override, 0);
    resolve_ok("sts", "ap-southeast-2", &ep);
    assert_string_equal(ep.url, "https://sts.ap-southeast-2.amazonaws.com");
    assert_string_equal(ep.signing_region, "ap-southeast-2");
    resolve_ok("ec2", "il-central-1", &ep);
    assert_string_equal(ep.url, "https://ec2.il-central-1.amazonaws.com");
    assert_string_equal(ep.signing_region, "il-central-1");
}

static void test_partitions_and_global_organizations(void **state)
{
    (void)state;
    struct endpoint ep;
    resolve_ok("organizations", "eu-central-1", &ep);
    assert_string_equal(ep.url, "https://organizations.us-east-1.amazonaws.com");
    assert_string_equal(ep.signing_region, "us-east-1");
    resolve_ok("eks", "cn-north-1", &ep);
    assert_string_equal(ep.url, "https://eks.cn-north-1.amazonaws.com.cn");
    assert_string_equal(ep.signing_region, "cn-north-1");
    resolve_ok("sts", "cn-northwest-1", &ep);
    assert_string_equal(ep.url, "https://sts.cn-northwest-1.amazonaws.com.cn");
    resolve_ok("organizations", "cn-north-1", &ep);
    assert_string_equal(ep.url, "https://organizations.cn-northwest-1.amazonaws.com.cn");
    assert_string_equal(ep.signing_region, "cn-northwest-1");
    resolve_ok("organizations", "us-gov-east-1", &ep);
    assert_string_equal(ep.url, "https://organizations.us-gov-west-1.amazonaws.com");
    assert_string_equal(ep.signing_region, "us-gov-west-1");
    resolve_ok("eks", "us-gov-west-1", &ep);
    assert_string_equal(ep.url, "https://eks.us-gov-west-1.amazonaws.com");
}

static void test_overrides(void **state)
{
    (void)state;
    struct endpoint ep;
    setenv("AWS_ENDPOINT_URL", "http://localhost:5000/", 1);
    resolve_ok("eks", "eu-west-1", &ep);
    assert_string_equal(ep.url, "http://localhost:5000");
    assert_string_equal(ep.signing_region, "eu-west-1"); /* the target's, not the endpoint's */
    assert_int_equal(ep.is_override, 1);
    resolve_ok("organizations", "eu-west-1", &ep);
    assert_string_equal(ep.url, "http://localhost:5000");
    assert_string_equal(ep.signing_region, "us-east-1");

    /* the service-specific variable beats the global one, for that service only */
    setenv("AWS_ENDPOINT_URL_EKS", "https://eks.internal.example:8443/base///", 1);
    resolve_ok("eks", "us-east-2", &ep);
    assert_string_equal(ep.url, "https://eks.internal.example:8443/base");
    assert_string_equal(ep.signing_region, "us-east-2");
    resolve_ok("sts", "us-east-2", &ep);
    assert_string_equal(ep.url, "http://localhost:5000");
    setenv("AWS_ENDPOINT_URL_STS", "HTTPS://sts.local", 1);
    resolve_ok("sts", "us-east-2", &ep);
    assert_string_equal(ep.url, "https://sts.local");
    setenv("AWS_ENDPOINT_URL_EC2", "http://[::1]:4566", 1);
    resolve_ok("ec2", "us-east-2", &ep);
    assert_string_equal(ep.url, "http://[::1]:4566");
    setenv("AWS_ENDPOINT_URL_ORGANIZATIONS", "http://127.0.0.1:4567", 1);
    resolve_ok("organizations", "us-east-2", &ep);
    assert_string_equal(ep.url, "http://127.0.0.1:4567");

    /* an empty service variable falls through to the global one */
    setenv("AWS_ENDPOINT_URL_EKS", "", 1);
    resolve_ok("eks", "us-east-2", &ep);
    assert_string_equal(ep.url, "http://localhost:5000");
}

static void test_ignore_flag(void **state)
{
    (void)state;
    struct endpoint ep;
    setenv("AWS_ENDPOINT_URL", "http://localhost:5000", 1);
    setenv("AWS_ENDPOINT_URL_EKS", "http://localhost:5001", 1);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    resolve_ok("eks", "eu-west-1", &ep);
    assert_string_equal(ep.url, "https://eks.eu-west-1.amazonaws.com");
    assert_int_equal(ep.is_override, 0);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
    resolve_ok("sts", "eu-west-1", &ep);
    assert_string_equal(ep.url, "https://sts.eu-west-1.amazonaws.com");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
    resolve_ok("eks", "eu-west-1", &ep);
    assert_string_equal(ep.url, "http://localhost:5001");
    /* an ignored override is not validated either */
    setenv("AWS_ENDPOINT_URL_EKS", "ftp://nope", 1);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    resolve_ok("eks", "eu-west-1", &ep);
}

static void test_bad_overrides(void **state)
{
    (void)state;
    const char *bad[] = {"ftp://localhost",   "localhost:5000",      "http://",
                         "https:///path",     "http://a b",          "http://host/?x=1",
                         "http://host/#frag", "http://user:pw@host", "http://:80",
                         "http://host:99999", "http://host:12ab",    "http://host\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWS_ENDPOINT_URL", bad[i], 1);
        resolve_fails("eks", "eu-west-1");
    }
    char long_url[700] = "http://h/";
    memset(long_url + 9, 'p', sizeof long_url - 10);
    long_url[sizeof long_url - 1] = '\0';
    setenv("AWS_ENDPOINT_URL", long_url, 1);
    resolve_fails("eks", "eu-west-1");
}

static void check_env_fails(const char *var, const char *value)
{
    setenv(var, value, 1);
    struct err e;
    err_clear(&e);
    if (endpoint_check_env(&e) != -1)
        fail_msg("%s=%s accepted", var, value);
    assert_string_equal(e.code, ERR_CONFIG);
    if (!strstr(e.message, var))
        fail_msg("the message does not name %s: %s", var, e.message);
    unsetenv(var);
}

/* endpoint_check_env: every override and the home region, up front */
static void test_check_env(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    assert_int_equal(endpoint_check_env(&e), 0); /* nothing set */
    setenv("AWS_ENDPOINT_URL", "http://localhost:5000/", 1);
    setenv("AWS_ENDPOINT_URL_EKS", "https://eks.internal.example:8443/base", 1);
    setenv("AWS_ENDPOINT_URL_EC2", "", 1); /* empty: not set */
    setenv("AWS_REGION", "eu-west-1", 1);
    assert_int_equal(endpoint_check_env(&e), 0);
    const char *vars[] = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EKS", "AWS_ENDPOINT_URL_STS",
                          "AWS_ENDPOINT_URL_ORGANIZATIONS", "AWS_ENDPOINT_URL_EC2"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        check_env_fails(vars[i], "localhost:5000");
        check_env_fails(vars[i], "ftp://host");
        check_env_fails(vars[i], "http://");
        check_env_fails(vars[i], "http://user:secret@host");
    }
    /* a malformed general one counts even when every service has its own */
    for (size_t i = 1; i < sizeof vars / sizeof vars[0]; i++)
        setenv(vars[i], "http://127.0.0.1:1", 1);
    check_env_fails("AWS_ENDPOINT_URL", "nope");
    /* the value itself is not echoed: it may carry what should not be logged */
    setenv("AWS_ENDPOINT_URL_STS", "http://user:secret@host", 1);
    assert_int_equal(endpoint_check_env(&e), -1);
    assert_null(strstr(e.message, "secret"));
    /* ignored overrides are not checked (the resolver does not read them either) */
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    assert_int_equal(endpoint_check_env(&e), 0);
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    unsetenv("AWS_ENDPOINT_URL_STS");
    /* the home region */
    check_env_fails("AWS_REGION", "eu west 1");
    unsetenv("AWS_REGION");
    check_env_fails("AWS_DEFAULT_REGION", "EU-WEST-1");
    /* AWS_REGION wins: a bad AWS_DEFAULT_REGION beside a good AWS_REGION is never used */
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_DEFAULT_REGION", "bad region", 1);
    assert_int_equal(endpoint_check_env(&e), 0);
}

static void test_regions(void **state)
{
    (void)state;
    assert_true(endpoint_region_valid("eu-west-1"));
    assert_true(endpoint_region_valid("us-gov-west-1"));
    assert_true(endpoint_region_valid("il-central-1"));
    assert_true(endpoint_region_valid("cn-northwest-1"));
    const char *bad[] = {"",
                         "EU-WEST-1",
                         "eu_west_1",
                         "eu-west-1.evil.com",
                         "eu-west-1/",
                         "-eu-west-1",
                         "eu-west-1-",
                         "eu--west-1",
                         "eu west 1",
                         "1eu-west",
                         "e",
                         "eu-west-1\n",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(endpoint_region_valid(bad[i]));
        resolve_fails("eks", bad[i]);
    }
    assert_false(endpoint_region_valid(NULL));
    resolve_fails("eks", NULL);
    /* also with an override: the region goes into the credential scope */
    setenv("AWS_ENDPOINT_URL", "http://localhost:5000", 1);
    resolve_fails("sts", "us-east-1.attacker.example");
    /* and the service name must be a plain name */
    resolve_fails("EKS", "eu-west-1");
    resolve_fails("", "eu-west-1");
    resolve_fails(NULL, "eu-west-1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_partitions_and_global_organizations, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(test_overrides, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_ignore_flag, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_bad_overrides, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_regions, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_check_env, clean_env, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
