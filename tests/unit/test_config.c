/* test_config.c - the JSON config file: every key, lists as arrays or comma strings, and errors
 * that name file:line:column for bad syntax, wrong types, unknown keys and invalid values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"

static int load(struct scan_config *c, const char *text, struct err *e)
{
    err_clear(e);
    return config_load_string(c, text, strlen(text), "cfg.json", e);
}

static void test_all_keys(void **state)
{
    (void)state;
    struct scan_config c;
    config_init(&c);
    struct err e;
    const char *text = "{ \"accounts\": [\"111122223333\", \"012345678901\"],\n"
                       "  \"exclude_accounts\": \"444455556666, 777788889999\",\n"
                       "  \"ou\": \"ou-ab12-34cd56ef\", \"regions\": [\"eu-west-1\"],\n"
                       "  \"role_name\": \"Scanner\", \"external_id\": \"x-1\",\n"
                       "  \"org_role_arn\": \"arn:aws:iam::999999999999:role/Org\",\n"
                       "  \"concurrency\": 64, \"policy\": \"p.json\",\n"
                       "  \"database_url\": \"postgres://db/x\", \"metrics_file\": \"/m.prom\",\n"
                       "  \"log_format\": \"json\", \"log_level\": \"debug\",\n"
                       "  \"fail_on\": \"high\",\n"
                       "  \"no_progress\": true, \"page_size\": 5 }";
    assert_int_equal(load(&c, text, &e), 0);
    assert_int_equal(c.accounts.n, 2);
    assert_string_equal(c.accounts.items[1], "012345678901"); /* leading zero kept */
    assert_int_equal(c.exclude_accounts.n, 2);
    assert_string_equal(c.exclude_accounts.items[1], "777788889999");
    assert_string_equal(c.ou, "ou-ab12-34cd56ef");
    assert_int_equal(c.regions.n, 1);
    assert_string_equal(c.role_name, "Scanner");
    assert_string_equal(c.external_id, "x-1");
    assert_string_equal(c.org_role_arn, "arn:aws:iam::999999999999:role/Org");
    assert_int_equal(c.concurrency, 64);
    assert_string_equal(c.policy, "p.json");
    assert_string_equal(c.database_url, "postgres://db/x");
    assert_string_equal(c.metrics_file, "/m.prom");
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.fail_on, "high");
    assert_true(c.no_progress);
    assert_int_equal(c.page_size, 5);
    /* "all" clears an earlier region list */
    assert_int_equal(load(&c, "{\"regions\": \"all\"}", &e), 0);
    assert_int_equal(c.regions.n, 0);
    config_cleanup(&c);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    struct scan_config c;
    config_init(&c);
    struct err e;
    assert_int_equal(load(&c, text, &e), -1);
    assert_string_equal(e.code, ERR_CONFIG);
    if (!strstr(e.message, where) || !strstr(e.message, what))
        fail_msg("expected '%s' and '%s' in: %s", where, what, e.message);
    config_cleanup(&c);
}

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_error("{\n  \"regions\": \"all\",\n  \"concurrency\": ,\n}", "cfg.json:3:", "");
    expect_error("{\n  \"regions\": \"all\",\n    \"concurrency\": \"many\"\n}",
                 "cfg.json:3:5:", "must be an integer");
    expect_error("{\"concurency\": 3}", "cfg.json:1:2:", "unknown key");
    expect_error("{\n\"accounts\": [1, 2]}", "cfg.json:2:1:", "array of strings");
    expect_error("{\n  \"regions\": [\"eu-west-1\", \"\"]}", "cfg.json:2:3:", "empty string");
    expect_error("{\"accounts\": [\"\"]}", "cfg.json:1:2:", "empty string");
    expect_error("{\"concurrency\": 0}", "cfg.json:1:2:", "from 1 to 4096");
    expect_error("[1]", "cfg.json:1:1:", "JSON object");
    expect_error("{\"a\": 1, \"a\": 2}", "cfg.json:", "duplicate");
    expect_error("{\"accounts\": [\"12345\"]}", "cfg.json", "not 12 digits");
    expect_error("{\"log_format\": \"yaml\"}", "cfg.json", "text or json");
    expect_error("{\"no_progress\": 1}", "cfg.json:1:2:", "true or false");
    expect_error("{\"fail_on\": \"severe\"}", "cfg.json", "not a severity");
    expect_error("{\"fail_on\": \"HIGH\"}", "cfg.json", "not a severity");
    expect_error("{\"fail_on\": 2}", "cfg.json:1:2:", "must be a string");
    expect_error("", "cfg.json:", "");
}

static void test_split(void **state)
{
    (void)state;
    struct str_list l = {0};
    assert_int_equal(str_list_split(&l, " a, b ,,c,"), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0], "a");
    assert_string_equal(l.items[1], "b");
    assert_string_equal(l.items[2], "c");
    str_list_free(&l);
    assert_int_equal(l.n, 0);
}

/* A region or account named twice is kept once, in the order first given: in a flag, in the
 * config file (string or array), and across appends (a scan's stored options). */
static void test_lists_have_no_duplicates(void **state)
{
    (void)state;
    struct str_list l = {0};
    assert_int_equal(str_list_split(&l, "us-east-1,us-east-1, eu-west-1,us-east-1"), 0);
    assert_int_equal(str_list_split(&l, "eu-west-1,us-east-1x"), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0], "us-east-1");
    assert_string_equal(l.items[1], "eu-west-1");
    assert_string_equal(l.items[2], "us-east-1x");
    str_list_free(&l);

    struct scan_config c;
    config_init(&c);
    struct err e;
    const char *text = "{\"regions\": [\"us-east-1\", \"us-east-1\"], \"accounts\": "
                       "\"111122223333,111122223333\"}";
    assert_int_equal(config_load_string(&c, text, strlen(text), "cfg.json", &e), 0);
    assert_int_equal(c.regions.n, 1);
    assert_int_equal(c.accounts.n, 1);
    config_cleanup(&c);
}

/* The role's ARN is built from its name: one IAM would not accept is refused, never cut short. */
static void test_role_name_fits_iam(void **state)
{
    (void)state;
    struct scan_config c;
    config_init(&c);
    struct err e;
    char name[700];
    memset(name, 'a', sizeof name);
    name[65] = '\0';
    assert_int_equal(config_set_string(&c.role_name, name), 0);
    assert_int_equal(config_validate(&c, &e), -1);
    assert_non_null(strstr(e.message, "64"));
    name[64] = '\0';
    assert_int_equal(config_set_string(&c.role_name, name), 0);
    assert_int_equal(config_validate(&c, &e), 0);
    /* a path: up to 512 characters before the name */
    memset(name, 'p', 600);
    name[511] = '/';
    memcpy(name + 512, "EgressScanReadOnly", 19);
    assert_int_equal(config_set_string(&c.role_name, name), 0);
    assert_int_equal(config_validate(&c, &e), 0);
    name[511] = 'p';
    name[512] = '/';
    memcpy(name + 513, "EgressScanReadOnly", 19);
    assert_int_equal(config_set_string(&c.role_name, name), 0);
    assert_int_equal(config_validate(&c, &e), -1);
    config_cleanup(&c);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct scan_config c;
    config_init(&c);
    struct err e;
    assert_int_equal(config_load_file(&c, "/nonexistent/egressscan.json", &e), -1);
    assert_non_null(strstr(e.message, "/nonexistent/egressscan.json"));
    config_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_lists_have_no_duplicates),
        cmocka_unit_test(test_role_name_fits_iam),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
