/* test_whatif_moto.c - the SCP what-if end to end (issue 17): an organization in moto (Prod with
 * an enforcing SCP, Dev with none, an AWS_MANAGED cluster in each, a CUSTOMER_ROUTED one in Prod)
 * and two proposals stored in moto but attached nowhere: one that freezes UpdateClusterConfig
 * (the classic mistake: it blocks the remediation Prod's legacy cluster needs) and a Null-guarded
 * Deny (it leaves the omitted mode open). `scps --with ... --attach-to ...` reads only the
 * database and must predict exit 1, the blocked remediation and the findings; then the proposals
 * are really attached, a new scan runs, and `scps` must give exactly the verdicts the what-if
 * predicted for every account x region under the change, and `drift` the predicted finding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1,us-east-1"
#define FLEET "tests/data/fleets/whatif.json"

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    char freeze_path[64], nullguard_path[64];
    struct cli cli;
    json_t *predicted; /* the what-if's JSON before the proposals were attached */
} fx;

static const char *seeded(const char *group, const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, group), name));
}

/* The content of the fleet's policy `name`, into a temporary file at path. */
static void write_proposal(const char *name, char *path, size_t size)
{
    json_t *fleet = json_load_file(FLEET, 0, NULL);
    assert_non_null(fleet);
    json_t *content = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(fleet, "scps"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
            content = json_object_get(p, "content");
    }
    assert_non_null(content);
    snprintf(path, size, "/tmp/egressscan-%s-XXXXXX", name);
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(json_dump_file(content, path, JSON_INDENT(2)), 0);
    json_decref(fleet);
}

static int setup(void **state)
{
    (void)state;
    if (cli_moto_fixture(&fx.moto, &fx.pg, FLEET, &fx.seed, &fx.cli) < 0)
        return -1;
    write_proposal("freeze", fx.freeze_path, sizeof fx.freeze_path);
    write_proposal("nullguard", fx.nullguard_path, sizeof fx.nullguard_path);
    return cli_run(&fx.cli, NULL, NULL, "migrate", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(fx.freeze_path);
    unlink(fx.nullguard_path);
    json_decref(fx.predicted);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

static void scan(const char *as_of)
{
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--regions", REGIONS, "--no-progress",
                             "--as-of", as_of, NULL),
                     0);
}

static json_t *entry_with(json_t *list, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

static void test_whatif_predicts(void **state)
{
    (void)state;
    scan("2026-12-01T10:00:00Z");
    char *out = NULL, *err = NULL;
    /* the classic mistake, on Prod; the Null guard, on Dev */
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", "--with", fx.freeze_path, "--attach-to",
                             seeded("ous", "Prod"), "--with", fx.nullguard_path, "--attach-to",
                             seeded("ous", "Dev"), "--format", "json", NULL),
                     1);
    fx.predicted = json_loads(out, 0, NULL);
    if (!fx.predicted)
        fail_msg("scps --with --format json is not JSON: %s", out);
    free(out);
    free(err);
    json_t *p = fx.predicted;
    assert_true(json_is_true(json_object_get(p, "blocks_remediation")));
    assert_false(json_is_true(json_object_get(p, "denies_scanner")));
    assert_int_equal(json_integer_value(json_object_get(p, "exit_code")), 1);
    /* prod1 and dev1, both regions */
    assert_int_equal(json_array_size(json_object_get(p, "targets")), 4);
    /* legacy needs the switch to CUSTOMER_ROUTED, which the freeze denies */
    json_t *legacy = entry_with(json_object_get(p, "remediation"), "cluster", "legacy");
    assert_non_null(legacy);
    assert_true(json_is_true(json_object_get(legacy, "blocked")));
    assert_string_equal(json_string_value(json_object_get(legacy, "before")), "allowed");
    assert_string_equal(json_string_value(json_object_get(legacy, "after")), "denied");
    /* the Null guard: devc becomes non-compliant through a gap (the omitted mode) */
    json_t *opens = json_object_get(json_object_get(p, "findings"), "open");
    assert_int_equal(json_array_size(opens), 1);
    json_t *o = json_array_get(opens, 0);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "noncompliant_cluster");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "scp_gap");
    assert_non_null(strstr(json_string_value(json_object_get(o, "cluster_arn")), "/devc"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(p, "findings"), "close")), 0);
    assert_int_equal(json_array_size(json_object_get(p, "predates_scp")), 0);

    /* the table says the same, and the gate's exit code */
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--with", fx.freeze_path, "--attach-to",
                             seeded("ous", "Prod"), NULL),
                     1);
    printf("%s", out);
    assert_non_null(strstr(out, "BLOCKED"));
    assert_non_null(strstr(out, "proposed-1#FreezeClusterConfig"));
    free(out);
    /* the Null guard alone blocks nothing: exit 0 */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scps", "--with", fx.nullguard_path,
                             "--attach-to", seeded("ous", "Dev"), NULL),
                     0);
}

/* Attaching the proposals for real and scanning again gives exactly the predicted verdicts. */
static void test_attached_gives_the_predicted_verdicts(void **state)
{
    (void)state;
    assert_non_null(fx.predicted);
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    const char *attach[2][2] = {{"freeze", "Prod"}, {"nullguard", "Dev"}};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {"python3",
                        "tests/support/moto_seed.py",
                        "--endpoint",
                        fx.moto.url,
                        "--attach-scp",
                        (char *)seeded("scps", attach[i][0]),
                        (char *)seeded("ous", attach[i][1]),
                        NULL};
        assert_int_equal(procs_run(argv, env, NULL), 0);
    }
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
    scan("2026-12-02T10:00:00Z");

    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--format", "json", NULL), 0);
    json_t *now = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(now);
    static const char *const modes[] = {"AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED",
                                        "omitted"};
    size_t i, compared = 0, changed = 0;
    json_t *t;
    json_array_foreach(json_object_get(fx.predicted, "targets"), i, t)
    {
        const char *account = json_string_value(json_object_get(t, "account_id"));
        const char *region = json_string_value(json_object_get(t, "region"));
        json_t *row = NULL;
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(now, "targets"), k, r)
        {
            if (strcmp(json_string_value(json_object_get(r, "account_id")), account) == 0 &&
                strcmp(json_string_value(json_object_get(r, "region")), region) == 0)
                row = r;
        }
        if (!row)
            fail_msg("scps after the attach has no row for %s %s", account, region);
        json_t *after = json_object_get(t, "after");
        for (int m = 0; m < 4; m++) {
            const char *want = json_string_value(json_object_get(
                json_object_get(json_object_get(after, "create_cluster"), modes[m]), "verdict"));
            const char *got = json_string_value(json_object_get(
                json_object_get(json_object_get(row, "create_cluster"), modes[m]), "verdict"));
            if (!want || !got || strcmp(want, got) != 0)
                fail_msg("%s %s %s: predicted %s, scps says %s", account, region, modes[m],
                         want ? want : "-", got ? got : "-");
            compared++;
        }
        const char *want = json_string_value(
            json_object_get(json_object_get(after, "update_to_customer_routed"), "verdict"));
        const char *got = json_string_value(
            json_object_get(json_object_get(row, "update_to_customer_routed"), "verdict"));
        if (!want || !got || strcmp(want, got) != 0)
            fail_msg("%s %s update: predicted %s, scps says %s", account, region, want ? want : "-",
                     got ? got : "-");
        compared++;
        changed += json_is_true(json_object_get(t, "changed"));
    }
    assert_int_equal(compared, 4 * 5);
    assert_int_equal(changed, 4);
    printf("what-if vs scps after the attach: %zu verdicts compared over %zu targets, %zu targets "
           "changed, all equal\n",
           compared, json_array_size(json_object_get(fx.predicted, "targets")), changed);

    /* the finding it said the change would open is there */
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    json_t *drift = json_loads(out, 0, NULL);
    free(out);
    int found = 0;
    json_t *f;
    json_array_foreach(json_object_get(drift, "findings"), i, f)
    {
        const char *arn = json_string_value(json_object_get(f, "cluster_arn"));
        const char *reason =
            json_string_value(json_object_get(json_object_get(f, "details"), "reason"));
        if (arn && strstr(arn, "/devc") &&
            strcmp(json_string_value(json_object_get(f, "kind")), "noncompliant_cluster") == 0 &&
            reason && strcmp(reason, "scp_gap") == 0)
            found = 1;
    }
    assert_true(found);
    json_decref(drift);
    json_decref(now);

    /* taking the freeze off again (on paper) gives the remediation back: exit 0 */
    char detach[128];
    snprintf(detach, sizeof detach, "%s@%s", seeded("scps", "freeze"), seeded("ous", "Prod"));
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scps", "--detach", detach, NULL), 0);
    assert_non_null(strstr(out, "denied -> allowed"));
    free(out);
}

static void test_usage_and_validation(void **state)
{
    (void)state;
    char *err = NULL;
    char bad[64];
    snprintf(bad, sizeof bad, "/tmp/egressscan-bad-XXXXXX");
    int fd = mkstemp(bad);
    const char text[] = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\"Effect\": \"Deny\","
                        " \"Action\": \"*\", \"Principal\": \"*\"}\n}\n";
    assert_true(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    assert_int_equal(cli_run(&fx.cli, NULL, &err, "scps", "--with", bad, "--attach-to",
                             seeded("ous", "Prod"), NULL),
                     2);
    char want[96];
    snprintf(want, sizeof want, "%s:3:50: Statement[0]: Principal", bad);
    if (!strstr(err, want))
        fail_msg("\"%s\" does not say \"%s\"", err, want);
    free(err);
    unlink(bad);
    /* --with without --attach-to; a target not in the organization; a policy not there */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scps", "--with", fx.freeze_path, NULL), 2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scps", "--with", fx.freeze_path, "--attach-to",
                             "ou-zzzz-zzzzzzzz", NULL),
                     2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scps", "--detach", "p-nothere", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whatif_predicts),
        cmocka_unit_test(test_attached_gives_the_predicted_verdicts),
        cmocka_unit_test(test_usage_and_validation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
