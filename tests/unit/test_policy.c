/* test_policy.c - the declared policy file: the SPEC example parses; every validation problem is
 * reported with its exact file:line:column (all of them, in one pass); resolution picks the most
 * specific scope, honours region filters, intersects ties and tag rules, and dates exceptions;
 * the description names scopes, modes and exception states. Files: tests/data/policies/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intent/policy.h"

#define DATA "tests/data/policies/"

/* 2026-12-01T00:00:00Z, 2027-01-31T23:59:59Z (the last second of the SPEC exception's day), and
 * 2027-02-01T00:00:00Z (the first second after it). */
#define T_2026_12_01 ((time_t)1796083200)
#define T_2027_01_31_END ((time_t)1801439999)
#define T_2027_02_01 ((time_t)1801440000)

#define ROUTED EGRESS_BIT(EGRESS_CUSTOMER_ROUTED)
#define ISOLATED EGRESS_BIT(EGRESS_CUSTOMER_ISOLATED)
#define MANAGED EGRESS_BIT(EGRESS_AWS_MANAGED)

/* Loads a file; the problems written to the errors stream come back in *errors (free it). */
static struct policy *load(const char *path, char **errors, struct err *e)
{
    size_t size = 0;
    FILE *f = open_memstream(errors, &size);
    assert_non_null(f);
    err_clear(e);
    struct policy *p = policy_load(path, f, e);
    fclose(f);
    return p;
}

static struct policy *load_ok(const char *path)
{
    char *errors = NULL;
    struct err e;
    struct policy *p = load(path, &errors, &e);
    if (!p)
        fail_msg("%s did not parse: %s", path, errors);
    assert_string_equal(errors, "");
    free(errors);
    return p;
}

/* Parses text as "p.json" and expects it to fail with exactly these problem lines. */
static void expect_errors(const char *text, const char *expected)
{
    char *errors = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&errors, &size);
    assert_non_null(f);
    struct err e;
    err_clear(&e);
    struct policy *p = policy_parse(text, strlen(text), "p.json", f, &e);
    fclose(f);
    if (p)
        fail_msg("accepted: %s", text);
    assert_string_equal(errors, expected);
    assert_string_equal(e.code, ERR_CONFIG);
    /* err holds the first problem, without the newline */
    size_t first = strcspn(expected, "\n");
    assert_int_equal(strlen(e.message), first);
    assert_memory_equal(e.message, expected, first);
    free(errors);
}

static struct policy *parse_ok(const char *text)
{
    struct err e;
    err_clear(&e);
    struct policy *p = policy_parse(text, strlen(text), "p.json", stderr, &e);
    if (!p)
        fail_msg("rejected (%s): %s", e.message, text);
    return p;
}

static void test_spec_example(void **state)
{
    (void)state;
    struct policy *p = load_ok(DATA "spec-example.json");
    /* the rules marked require_scp */
    assert_int_equal(policy_rule_count(p), 1);
    assert_string_equal(policy_rule_id(p, 0), "regulated");
    assert_null(policy_rule_id(p, 1));
    assert_int_equal(policy_exception_count(p), 1);
    const char *arn, *reason, *expires;
    policy_exception_get(p, 0, &arn, &reason, &expires);
    assert_string_equal(arn, "arn:aws:eks:eu-west-1:111122223333:cluster/legacy");
    assert_string_equal(reason, "SEC-123");
    assert_string_equal(expires, "2027-01-31");
    policy_exception_get(p, 1, &arn, &reason, &expires);
    assert_null(arn);
    assert_null(reason);
    assert_null(expires);

    const char *ous[] = {"ou-ab12-34cd56ef"};
    struct policy_subject s = {"222233334444", ous, 1, "us-east-1", NULL, NULL};
    struct policy_resolution r;
    policy_resolve(p, &s, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "regulated");
    assert_int_equal(r.allowed, ROUTED);
    assert_true(r.require_scp);

    struct policy_subject pci = {"111122223333",
                                 NULL,
                                 0,
                                 "eu-west-1",
                                 "{\"data-class\": \"restricted\"}",
                                 "arn:aws:eks:eu-west-1:111122223333:cluster/legacy"};
    policy_resolve(p, &pci, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci-eu");
    assert_int_equal(r.allowed, ROUTED); /* ROUTED|ISOLATED, restricted by the tag rule */
    assert_string_equal(r.tag_rules, "restricted-data");
    assert_false(r.require_scp);
    assert_true(r.exempt);
    assert_string_equal(r.exception_reason, "SEC-123");
    assert_string_equal(r.exception_expires, "2027-01-31");
    policy_free(p);
}

static void test_minimal_policy_allows_every_mode(void **state)
{
    (void)state;
    struct policy *p = load_ok(DATA "minimal.json");
    struct policy_subject s = {"111122223333", NULL, 0, "eu-west-1", "{\"a\": \"b\"}", "x"};
    struct policy_resolution r;
    policy_resolve(p, &s, T_2026_12_01, &r);
    assert_int_equal(r.allowed, EGRESS_ALL_NAMED);
    assert_string_equal(r.rule_id, "default");
    assert_string_equal(r.tag_rules, "");
    assert_false(r.exempt || r.exception_expired || r.require_scp);
    assert_int_equal(policy_rule_count(p), 0);
    assert_int_equal(policy_exception_count(p), 0);
    policy_free(p);
    /* empty lists are fine too; no policy at all means every mode */
    p = parse_ok("{\"version\": 1, \"rules\": [], \"exceptions\": []}");
    policy_free(p);
    policy_resolve(NULL, &s, T_2026_12_01, &r);
    assert_int_equal(r.allowed, EGRESS_ALL_NAMED);
    policy_free(NULL);
}

static const char invalid_many_errors[] = DATA
    "invalid-many.json:2:14: version: unsupported policy version 2: this egressscan reads "
    "version 1\n" DATA
    "invalid-many.json:3:33: default.allowed_modes: must be a non-empty array of modes "
    "(AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED), not an empty array\n" DATA
    "invalid-many.json:5:105: rules[0].require_scp: must be true or false, not a string\n" DATA
    "invalid-many.json:6:13: rules[1].id: duplicate rule id \"regulated\" (first used at line 5, "
    "column 13)\n" DATA
    "invalid-many.json:6:39: rules[1].accounts[0]: \"11112222333\" is not an account id (12 "
    "digits)\n" DATA
    "invalid-many.json:6:54: rules[1].accounts[1]: must be a string, not a number (quote account "
    "ids: leading zeros matter)\n" DATA
    "invalid-many.json:6:87: rules[1].allowed_modes[0]: unknown mode \"CUSTOMER_ROUTD\" (known: "
    "AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED)\n" DATA
    "invalid-many.json:7:5: rules[2]: \"allowed_modes\" is missing\n" DATA
    "invalid-many.json:7:13: rules[2].id: rule id \"bad id!\" may contain only letters, digits, "
    "'.', '_' and '-'\n" DATA
    "invalid-many.json:7:36: rules[2].regions[0]: \"EU-WEST-1\" is not a region name "
    "(\"eu-west-1\") or pattern with '*' (\"eu-*\")\n" DATA
    "invalid-many.json:7:58: rules[2].alowed_modes: unknown key (did you mean "
    "\"allowed_modes\"?)\n" DATA
    "invalid-many.json:8:51: rules[3].ou: a rule names \"accounts\" or \"ou\", not both (write "
    "one rule for each)\n" DATA
    "invalid-many.json:8:110: rules[3].allowed_modes[1]: mode AWS_MANAGED is listed twice\n" DATA
    "invalid-many.json:9:5: rules[4]: the rule has no scope: give \"accounts\", \"ou\", "
    "\"regions\" or \"cluster_tags\" (\"default\" covers the whole fleet)\n" DATA
    "invalid-many.json:9:42: rules[4].allowed_modes[0]: unknown mode \"customer_isolated\" (did "
    "you mean CUSTOMER_ISOLATED?)\n" DATA
    "invalid-many.json:10:53: rules[5].cluster_tags.data-class: must be the tag's value (a "
    "string; \"*\" for any value), not a number\n" DATA
    "invalid-many.json:10:96: rules[5].require_scp: require_scp cannot be combined with "
    "cluster_tags: SCP enforcement is judged per account and region, not per cluster tag\n" DATA
    "invalid-many.json:13:22: exceptions[0].cluster_arn: "
    "\"arn:aws:eks:eu-west-1:111122223333:nodegroup/legacy\": not a cluster ARN (the resource "
    "must be cluster/NAME)\n" DATA
    "invalid-many.json:13:87: exceptions[0].reason: the reason cannot be empty\n" DATA
    "invalid-many.json:13:102: exceptions[0].expires: \"2027-02-30\" is not a date "
    "(YYYY-MM-DD)\n" DATA
    "invalid-many.json:14:119: exceptions[1].owner: unknown key; an exception takes cluster_arn, "
    "reason, expires\n" DATA
    "invalid-many.json:16:3: comment: unknown key; a policy takes version, default, rules, "
    "exceptions\n";

static void test_every_error_reported_with_position(void **state)
{
    (void)state;
    char *errors = NULL;
    struct err e;
    assert_null(load(DATA "invalid-many.json", &errors, &e));
    assert_string_equal(errors, invalid_many_errors);
    assert_string_equal(e.code, ERR_CONFIG);
    assert_string_equal(e.message, DATA "invalid-many.json:2:14: version: unsupported policy "
                                        "version 2: this egressscan reads version 1");
    free(errors);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    char *errors = NULL;
    struct err e;
    assert_null(load(DATA "invalid-syntax.json", &errors, &e));
    assert_string_equal(errors, DATA "invalid-syntax.json:4:77: string or '}' expected near '}'\n");
    free(errors);
    /* a duplicate key is pointed at where the second one starts */
    assert_null(load(DATA "invalid-duplicate-key.json", &errors, &e));
    assert_string_equal(errors, DATA "invalid-duplicate-key.json:5:7: duplicate key "
                                     "\"allowed_modes\" in the same object\n");
    free(errors);
    expect_errors("", "p.json:1:1: '[' or '{' expected near end of file\n");
    expect_errors("{\"version\": 1,\n \"rules\": [\n",
                  "p.json:3:1: ']' expected near end of file\n");
}

static void test_document_level_errors(void **state)
{
    (void)state;
    expect_errors("[1]", "p.json:1:1: a policy must be a JSON object, not an array\n");
    expect_errors("  {}", "p.json:1:3: \"version\" is missing (this egressscan reads \"version\": "
                          "1)\n");
    expect_errors("{\"version\": \"1\"}",
                  "p.json:1:13: version: must be the number 1, not a string\n");
    expect_errors("{\"version\": 1, \"rules\": {}, \"exceptions\": \"none\", \"default\": []}",
                  "p.json:1:25: rules: must be an array of rules, not an object\n"
                  "p.json:1:43: exceptions: must be an array of exceptions, not a string\n"
                  "p.json:1:62: default: must be an object with \"allowed_modes\", not an array\n");
    expect_errors("{\"version\": 1,\n \"default\": {\"allowed\": [\"AWS_MANAGED\"]}}",
                  "p.json:2:13: default: \"allowed_modes\" is missing\n"
                  "p.json:2:14: default.allowed: unknown key; \"default\" takes allowed_modes\n");
    expect_errors("{\"version\": 1, \"rules\": [\"pci\", 3]}",
                  "p.json:1:26: rules[0]: a rule must be an object, not a string\n"
                  "p.json:1:33: rules[1]: a rule must be an object, not a number\n");
}

/* The same key in several rules: each problem points into its own rule. */
static void test_repeated_keys_point_into_their_rule(void **state)
{
    (void)state;
    expect_errors("{\"version\": 1, \"rules\": ["
                  "{\"id\": \"a\", \"regions\": [\"eu-*\"], \"allowed_modes\": [\"AWS_MANAGED\"]}, "
                  "{\"id\": \"b\", \"regions\": [\"eu-*\"], \"allowed_modes\": [\"NOPE\"]}, "
                  "{\"id\": \"c\", \"regions\": [\"eu-*\", \"eu-*\"], \"allowed_modes\": []}]}",
                  "p.json:1:145: rules[1].allowed_modes[0]: unknown mode \"NOPE\" (known: "
                  "AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED)\n"
                  "p.json:1:187: rules[2].regions[1]: \"eu-*\" is listed twice\n"
                  "p.json:1:213: rules[2].allowed_modes: must be a non-empty array of modes "
                  "(AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED), not an empty array\n");
    /* columns count characters (not bytes); escaped keys are decoded */
    expect_errors("{\"version\": 1, \"r\\u0075les\": [{\"id\": \"é\", \"regions\": [\"eu-*\"], "
                  "\"allowed_modes\": [\"X\"]}]}",
                  "p.json:1:38: rules[0].id: rule id \"é\" may contain only letters, digits, "
                  "'.', '_' and '-'\n"
                  "p.json:1:82: rules[0].allowed_modes[0]: unknown mode \"X\" (known: "
                  "AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED)\n");
}

static void test_rule_errors(void **state)
{
    (void)state;
    expect_errors(
        "{\"version\": 1, \"rules\": [\n"
        "{\"id\": \"\", \"accounts\": [], \"allowed_modes\": [\"AWS_MANAGED\"]},\n"
        "{\"id\": \"default\", \"ou\": \"ou-AB12-1\", \"allowed_modes\": [\"AWS_MANAGED\"]},\n"
        "{\"id\": \"x234567890123456789012345678901234567890123456789012345678901234\",\n"
        " \"regions\": [\"*\", \"eu-west\", \"us-gov-west-1\", \"ap-*-1\"],\n"
        " \"cluster_tags\": {}, \"allowed_modes\": \"AWS_MANAGED\", \"tags\": 1},\n"
        "{\"id\": 7, \"ou\": \"r-ab12\", \"regions\": \"eu-*\", \"allowed_modes\": "
        "[\"AWS_MANAGED\"],\n"
        " \"cluster_tags\": {\"\": \"x\"}, \"require_scp\": false},\n"
        "{\"allowed_modes\": [\"omitted\", 1], \"accounts\": [\"0123456789012\"]}]}",
        "p.json:2:8: rules[0].id: a rule id cannot be empty\n"
        "p.json:2:24: rules[0].accounts: must be a non-empty array of 12-digit account "
        "ids, not an empty array\n"
        "p.json:3:8: rules[1].id: rule id \"default\" is reserved: it names the "
        "policy's default\n"
        "p.json:3:25: rules[1].ou: \"ou-AB12-1\" is not an OU id (\"ou-xxxx-xxxxxxxx\") "
        "or root id (\"r-xxxx\")\n"
        "p.json:4:8: rules[2].id: a rule id has at most 63 characters\n"
        "p.json:5:14: rules[2].regions[0]: \"*\" matches every region: leave "
        "\"regions\" out instead\n"
        "p.json:5:19: rules[2].regions[1]: \"eu-west\" is not a region name "
        "(\"eu-west-1\") or pattern with '*' (\"eu-*\")\n"
        "p.json:6:18: rules[2].cluster_tags: must be a non-empty object of tag names to "
        "values, not an empty object\n"
        "p.json:6:39: rules[2].allowed_modes: must be a non-empty array of modes "
        "(AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED), not a string\n"
        "p.json:6:54: rules[2].tags: unknown key (did you mean \"cluster_tags\"?)\n"
        "p.json:7:8: rules[3].id: must be the rule's id (a string), not a number\n"
        "p.json:7:38: rules[3].regions: must be a non-empty array of region names or "
        "patterns, not a string\n"
        "p.json:8:19: rules[3].cluster_tags.: a tag name has 1 to 128 characters\n"
        "p.json:9:1: rules[4]: \"id\" is missing: every rule needs a unique id\n"
        "p.json:9:20: rules[4].allowed_modes[0]: unknown mode \"omitted\" (known: "
        "AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED)\n"
        "p.json:9:31: rules[4].allowed_modes[1]: must be a mode name (a string), not a "
        "number\n"
        "p.json:9:48: rules[4].accounts[0]: \"0123456789012\" is not an account id (12 "
        "digits)\n");
}

static void test_exception_errors(void **state)
{
    (void)state;
    expect_errors(
        "{\"version\": 1, \"exceptions\": [\n"
        "{\"cluster_arn\": \"arn:aws:eks:eu-west-1:11112222333:cluster/a\", \"reason\": \"r\", "
        "\"expires\": \"2027-1-31\"},\n"
        "{\"cluster_arn\": \"arn:aws:iam::111122223333:role/a\", \"reason\": \" \", \"expires\": "
        "\"2028-02-29\"},\n"
        "{\"cluster_arn\": \"arn:aws:eks:eu-west-1:111122223333:cluster/ok\", \"reason\": 5, "
        "\"expires\": \"2027-02-29\"},\n"
        "{\"cluster_arn\": \"arn:aws:eks:eu-west-1:111122223333:cluster/ok\", \"reason\": \"r\", "
        "\"expires\": \"2027-03-01\"},\n"
        "{\"expiry\": \"2027-01-01\"}, 5]}",
        "p.json:2:17: exceptions[0].cluster_arn: \"arn:aws:eks:eu-west-1:11112222333:cluster/a\": "
        "the ARN's account is not 12 digits\n"
        "p.json:2:90: exceptions[0].expires: \"2027-1-31\" is not a date (YYYY-MM-DD)\n"
        "p.json:3:17: exceptions[1].cluster_arn: \"arn:aws:iam::111122223333:role/a\": not an EKS "
        "ARN (the service must be \"eks\")\n"
        "p.json:3:63: exceptions[1].reason: the reason cannot be empty\n"
        "p.json:4:76: exceptions[2].reason: must be a string, not a number\n"
        "p.json:4:90: exceptions[2].expires: \"2027-02-29\" is not a date (YYYY-MM-DD)\n"
        "p.json:5:17: exceptions[3].cluster_arn: a second exception for this cluster (first at "
        "line 4, column 17)\n"
        "p.json:6:1: exceptions[4]: \"cluster_arn\" is missing\n"
        "p.json:6:1: exceptions[4]: \"reason\" is missing (a ticket or a justification)\n"
        "p.json:6:1: exceptions[4]: \"expires\" is missing (the last valid day, YYYY-MM-DD)\n"
        "p.json:6:2: exceptions[4].expiry: unknown key (did you mean \"expires\"?)\n"
        "p.json:6:27: exceptions[5]: an exception must be an object, not a number\n");
}

static void test_too_many_errors_are_capped(void **state)
{
    (void)state;
    char text[4096] = "{\"version\": 1, \"rules\": [{\"id\": \"a\", \"allowed_modes\": "
                      "[\"AWS_MANAGED\"], \"accounts\": [";
    for (int i = 0; i < 150; i++)
        strcat(text, i ? ", \"1\"" : "\"1\"");
    strcat(text, "]}]}");
    char *errors = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&errors, &size);
    struct err e;
    assert_null(policy_parse(text, strlen(text), "p.json", f, &e));
    fclose(f);
    size_t lines = 0;
    for (const char *c = errors; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 101);
    assert_non_null(strstr(errors, "p.json: too many errors; 50 more not shown\n"));
    free(errors);
}

static void test_missing_file(void **state)
{
    (void)state;
    char *errors = NULL;
    struct err e;
    assert_null(load(DATA "no-such-policy.json", &errors, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_string_equal(e.message, DATA "no-such-policy.json: cannot open: No such file or "
                                        "directory");
    assert_string_equal(errors, DATA "no-such-policy.json: cannot open: No such file or "
                                     "directory\n");
    free(errors);
}

/* ---- resolution (tests/data/policies/resolution.json) ---- */

static const char *const PROD[] = {"ou-ab12-11111111"};
static const char *const PROD_REGULATED[] = {"ou-ab12-11111111", "ou-ab12-22222222"};
static const char *const PROD_OTHER[] = {"ou-ab12-11111111", "ou-ab12-33333333"};

static void resolve(const struct policy *p, const char *account, const char *const *ous,
                    size_t n_ous, const char *region, const char *tags, const char *arn, time_t now,
                    struct policy_resolution *r)
{
    struct policy_subject s = {account, ous, n_ous, region, tags, arn};
    policy_resolve(p, &s, now, r);
}

static void test_default_only(void **state)
{
    struct policy_resolution r;
    resolve(*state, "999999999999", NULL, 0, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "default");
    assert_int_equal(r.allowed, EGRESS_ALL_NAMED);
    assert_false(r.require_scp);
    assert_string_equal(r.tag_rules, "");
    /* no region: only rules without a region filter can apply */
    resolve(*state, "999999999999", NULL, 0, NULL, NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "default");
}

static void test_deeper_ou_wins(void **state)
{
    struct policy_resolution r;
    resolve(*state, "555566667777", PROD, 1, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod");
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    assert_false(r.require_scp);
    resolve(*state, "555566667777", PROD_REGULATED, 2, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod-regulated");
    assert_int_equal(r.allowed, ROUTED);
    assert_true(r.require_scp);
    /* an OU without a rule below a ruled one inherits the ruled one */
    resolve(*state, "555566667777", PROD_OTHER, 2, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod");
    /* the caller may include the root in the path: same result */
    const char *with_root[] = {"r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"};
    resolve(*state, "555566667777", with_root, 3, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod-regulated");
}

static void test_account_beats_ou(void **state)
{
    struct policy_resolution r;
    resolve(*state, "111122223333", PROD_REGULATED, 2, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci");
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    assert_false(r.require_scp); /* the OU rule's require_scp does not carry over */
}

static void test_region_filter(void **state)
{
    struct policy_resolution r;
    /* eu-* matches eu-west-1: the account rule with the filter beats the one without */
    resolve(*state, "111122223333", PROD, 1, "eu-west-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci-eu");
    assert_int_equal(r.allowed, ISOLATED);
    /* ... and not us-east-1 */
    resolve(*state, "111122223333", PROD, 1, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci");
    /* a regions-only rule: every account in those regions, above the default only */
    resolve(*state, "999999999999", NULL, 0, "eu-central-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "eu-wide");
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    resolve(*state, "999999999999", NULL, 0, "il-central-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "eu-wide");
    resolve(*state, "999999999999", NULL, 0, "ap-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "default");
    resolve(*state, "555566667777", PROD_REGULATED, 2, "eu-west-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod-regulated");
}

static void test_tied_rules_intersect(void **state)
{
    struct policy_resolution r;
    resolve(*state, "444455556666", NULL, 0, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "tie-a"); /* the first in the file */
    assert_int_equal(r.allowed, ROUTED);     /* both rules hold */
    assert_true(r.require_scp);              /* tie-b demands it */
    resolve(*state, "777788889999", NULL, 0, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "tie-b");
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
}

static void test_tag_rules(void **state)
{
    struct policy_resolution r;
    /* a tag rule restricts what the scope allows */
    resolve(*state, "111122223333", NULL, 0, "us-east-1",
            "{\"data-class\": \"restricted\", \"team\": \"x\"}", "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci");
    assert_int_equal(r.allowed, ROUTED);
    assert_string_equal(r.tag_rules, "restricted-data");
    /* tag rules do not apply to an account x region (tags NULL) */
    resolve(*state, "111122223333", NULL, 0, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    assert_string_equal(r.tag_rules, "");
    /* another value, another case of the key, or no tags: no match */
    resolve(*state, "111122223333", NULL, 0, "us-east-1", "{\"data-class\": \"public\"}", "arn:c",
            T_2026_12_01, &r);
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    assert_string_equal(r.tag_rules, "");
    resolve(*state, "111122223333", NULL, 0, "us-east-1", "{\"Data-Class\": \"restricted\"}",
            "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.tag_rules, "");
    resolve(*state, "111122223333", NULL, 0, "us-east-1", "{}", "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.tag_rules, "");
    resolve(*state, "111122223333", NULL, 0, "us-east-1", "not json", "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.tag_rules, "");
    /* "*" matches any value, and this tag rule is limited to the prod OU */
    resolve(*state, "999999999999", NULL, 0, "us-east-1", "{\"owner\": \"team-a\"}", "arn:c",
            T_2026_12_01, &r);
    assert_string_equal(r.tag_rules, "");
    assert_int_equal(r.allowed, EGRESS_ALL_NAMED);
    resolve(*state, "999999999999", PROD_OTHER, 2, "us-east-1",
            "{\"owner\": \"\", \"data-class\": \"restricted\"}", "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "prod");
    assert_string_equal(r.tag_rules, "restricted-data,owned-prod");
    assert_int_equal(r.allowed, ROUTED);
    /* restrictions can leave nothing allowed: every mode is then non-compliant */
    resolve(*state, "111122223333", NULL, 0, "eu-west-1", "{\"data-class\": \"restricted\"}",
            "arn:c", T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "pci-eu");
    assert_int_equal(r.allowed, 0);
}

/* Many matching tag rules: the list stays terminated and says it was cut. */
static void test_tag_rule_list_truncated(void **state)
{
    (void)state;
    char text[8192] = "{\"version\": 1, \"rules\": [";
    for (int i = 0; i < 10; i++) {
        char rule[256];
        snprintf(rule, sizeof rule,
                 "%s{\"id\": \"tag-rule-number-%02d-with-a-rather-long-identifier\", "
                 "\"cluster_tags\": {\"k\": \"*\"}, \"allowed_modes\": [\"CUSTOMER_ROUTED\"]}",
                 i ? ", " : "", i);
        strcat(text, rule);
    }
    strcat(text, "]}");
    struct policy *p = parse_ok(text);
    struct policy_resolution r;
    resolve(p, "111122223333", NULL, 0, "us-east-1", "{\"k\": \"v\"}", NULL, T_2026_12_01, &r);
    assert_int_equal(r.allowed, ROUTED);
    assert_true(strlen(r.tag_rules) < sizeof r.tag_rules);
    assert_memory_equal(r.tag_rules, "tag-rule-number-00-with-a-rather-long-identifier,", 49);
    assert_string_equal(r.tag_rules + strlen(r.tag_rules) - 4, ",...");
    policy_free(p);
}

static void test_exceptions(void **state)
{
    const char *legacy = "arn:aws:eks:eu-west-1:111122223333:cluster/legacy";
    struct policy_resolution r;
    /* valid through the last second of the expires day, UTC */
    resolve(*state, "111122223333", NULL, 0, "eu-west-1", "{}", legacy, T_2027_01_31_END, &r);
    assert_true(r.exempt);
    assert_false(r.exception_expired);
    assert_string_equal(r.exception_reason, "SEC-123");
    assert_string_equal(r.exception_expires, "2027-01-31");
    assert_string_equal(r.rule_id, "pci-eu"); /* still resolved: the caller decides */
    /* expired from the next day on: judged normally */
    resolve(*state, "111122223333", NULL, 0, "eu-west-1", "{}", legacy, T_2027_02_01, &r);
    assert_false(r.exempt);
    assert_true(r.exception_expired);
    assert_string_equal(r.exception_expires, "2027-01-31");
    assert_int_equal(r.allowed, ISOLATED);
    /* another cluster, or no cluster */
    resolve(*state, "111122223333", NULL, 0, "eu-west-1", "{}",
            "arn:aws:eks:eu-west-1:111122223333:cluster/legacy2", T_2026_12_01, &r);
    assert_false(r.exempt || r.exception_expired);
    assert_string_equal(r.exception_reason, "");
    resolve(*state, "111122223333", NULL, 0, "eu-west-1", NULL, NULL, T_2026_12_01, &r);
    assert_false(r.exempt || r.exception_expired);
}

static void test_root_rule(void **state)
{
    (void)state;
    struct policy *p = load_ok(DATA "root-rule.json");
    struct policy_resolution r;
    const char *sandbox[] = {"ou-ab12-55555555"};
    resolve(p, "999999999999", NULL, 0, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "org"); /* directly below the root */
    assert_int_equal(r.allowed, ROUTED | ISOLATED);
    resolve(p, "999999999999", sandbox, 1, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "sandbox"); /* any OU is more specific than the root */
    const char *other_org[] = {"r-zz99", "ou-zz99-55555555"};
    resolve(p, "999999999999", other_org, 2, "us-east-1", NULL, NULL, T_2026_12_01, &r);
    assert_string_equal(r.rule_id, "default");
    policy_free(p);
}

static int setup_resolution(void **state)
{
    *state = load_ok(DATA "resolution.json");
    return 0;
}

static int teardown_resolution(void **state)
{
    policy_free(*state);
    return 0;
}

/* ---- description ---- */

static char *describe(const struct policy *p, time_t now)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    policy_describe(p, now, f);
    fclose(f);
    return text;
}

static void expect_in(const char *text, const char *phrase)
{
    if (!strstr(text, phrase))
        fail_msg("expected '%s' in:\n%s", phrase, text);
}

static void test_describe(void **state)
{
    (void)state;
    struct policy *p = load_ok(DATA "spec-example.json");
    char *text = describe(p, T_2026_12_01);
    expect_in(text, "default (every account and region no scope rule covers): AWS_MANAGED, "
                    "CUSTOMER_ROUTED, CUSTOMER_ISOLATED\n");
    expect_in(text, "  rule \"regulated\"\n"
                    "    scope:         OU ou-ab12-34cd56ef and everything below, every region\n"
                    "    allowed modes: CUSTOMER_ROUTED\n"
                    "    require_scp:   yes");
    expect_in(text, "  rule \"pci-eu\"\n"
                    "    scope:         account 111122223333, regions eu-*\n"
                    "    allowed modes: CUSTOMER_ROUTED, CUSTOMER_ISOLATED\n"
                    "    require_scp:   no\n");
    expect_in(text, "tag rules");
    expect_in(text, "clusters tagged data-class=restricted, in every account, every region\n");
    expect_in(text, "  arn:aws:eks:eu-west-1:111122223333:cluster/legacy\n"
                    "    reason:        SEC-123\n"
                    "    state:         valid until 2027-01-31 (62 days left)\n");
    free(text);
    text = describe(p, T_2027_01_31_END);
    expect_in(text, "valid until 2027-01-31 (1 day left)");
    free(text);
    text = describe(p, T_2027_02_01);
    expect_in(text, "1 exception (1 expired)");
    expect_in(text, "EXPIRED on 2027-01-31");
    free(text);
    policy_free(p);

    p = load_ok(DATA "resolution.json");
    text = describe(p, T_2026_12_01);
    expect_in(text, "7 scope rules, 2 tag rules, 2 exceptions (1 expired)");
    expect_in(text, "every account, regions eu-*, il-central-1\n");
    expect_in(text, "description:   every account in Europe and Israel\n");
    expect_in(text, "accounts 444455556666, 777788889999, every region\n");
    expect_in(text, "clusters tagged owner (any value), in OU ou-ab12-11111111 and everything "
                    "below");
    free(text);
    policy_free(p);

    p = load_ok(DATA "root-rule.json");
    text = describe(p, T_2026_12_01);
    expect_in(text, "not set: every mode is allowed");
    expect_in(text, "the whole organization (root r-ab12), every region");
    free(text);
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_minimal_policy_allows_every_mode),
        cmocka_unit_test(test_every_error_reported_with_position),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_document_level_errors),
        cmocka_unit_test(test_repeated_keys_point_into_their_rule),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_exception_errors),
        cmocka_unit_test(test_too_many_errors_are_capped),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test_setup_teardown(test_default_only, setup_resolution, teardown_resolution),
        cmocka_unit_test_setup_teardown(test_deeper_ou_wins, setup_resolution, teardown_resolution),
        cmocka_unit_test_setup_teardown(test_account_beats_ou, setup_resolution,
                                        teardown_resolution),
        cmocka_unit_test_setup_teardown(test_region_filter, setup_resolution, teardown_resolution),
        cmocka_unit_test_setup_teardown(test_tied_rules_intersect, setup_resolution,
                                        teardown_resolution),
        cmocka_unit_test_setup_teardown(test_tag_rules, setup_resolution, teardown_resolution),
        cmocka_unit_test_setup_teardown(test_exceptions, setup_resolution, teardown_resolution),
        cmocka_unit_test(test_tag_rule_list_truncated),
        cmocka_unit_test(test_root_rule),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
