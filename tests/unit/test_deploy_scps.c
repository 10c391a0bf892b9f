/* test_deploy_scps.c - the example SCPs of deploy/iam/ mean what deploy/README.md says they mean,
 * as egressscan's own evaluator reads them: the enforcing one leaves only CUSTOMER_ROUTED (the
 * omitted mode included) and keeps updates that do not touch the mode working; the pitfall one
 * lets a request that leaves the mode out through; and the variants the README explains
 * (IfExists, the Null guard, an allow-list Allow with IfExists) behave as it says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intent/scp.h"

#define FULL                                                                                       \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","           \
    "\"Resource\":\"*\"}]}"

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (tests run from the repository root)", path);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    fclose(f);
    assert_true(n > 0 && n < 65535);
    return text;
}

/* Verdicts for AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED and omitted, as "DADD" (A allowed,
 * D denied, P principal-dependent, U unevaluable), of action under doc attached to the root;
 * with_full: FullAWSAccess on every level (else the root has doc alone: an allow-list). */
static void verdicts(const char *doc_text, const char *action, int with_full, char out[5])
{
    struct scp_doc *full = scp_doc_parse("p-FullAWSAccess", FULL, strlen(FULL));
    struct scp_doc *doc = scp_doc_parse("p-example", doc_text, strlen(doc_text));
    assert_non_null(full);
    assert_non_null(doc);
    if (scp_doc_error(doc))
        fail_msg("the example does not parse: %s", scp_doc_error(doc));
    const struct scp_doc *root_docs[2] = {doc, full};
    const struct scp_doc *full_only[1] = {full};
    struct scp_level levels[2] = {
        {.target_id = "r-ab12", .docs = root_docs, .n_docs = with_full ? 2 : 1},
        {.target_id = "111122223333", .docs = full_only, .n_docs = 1}};
    for (int m = 0; m < EGRESS_MODES; m++) {
        struct scp_request req = {.action = action,
                                  .account_id = "111122223333",
                                  .region = "eu-west-1",
                                  .mode = (enum egress_mode)m};
        struct scp_decision d;
        scp_evaluate(levels, 2, &req, NULL, &d);
        out[m] = "ADPU"[d.verdict];
    }
    out[EGRESS_MODES] = '\0';
    scp_doc_free(doc);
    scp_doc_free(full);
}

static void expect(const char *doc_text, const char *action, int with_full, const char *want,
                   const char *what)
{
    char got[5];
    verdicts(doc_text, action, with_full, got);
    if (strcmp(got, want) != 0)
        fail_msg("%s: %s expected %s (AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED, omitted), "
                 "got %s",
                 what, action, want, got);
}

static void test_enforcing_scp_leaves_only_customer_routed(void **state)
{
    (void)state;
    char *doc = read_all("deploy/iam/scp-enforce-customer-routed.json");
    expect(doc, "eks:CreateCluster", 1, "DADD", "scp-enforce-customer-routed.json");
    /* updates: switching to CUSTOMER_ROUTED and updates that leave the mode out still work */
    expect(doc, "eks:UpdateClusterConfig", 1, "DADA", "scp-enforce-customer-routed.json");
    free(doc);
}

static void test_pitfall_scp_lets_the_omitted_mode_through(void **state)
{
    (void)state;
    char *doc = read_all("deploy/iam/scp-pitfall-ifexists.json");
    /* leaving the mode out creates an AWS_MANAGED cluster, and nothing denies it */
    expect(doc, "eks:CreateCluster", 1, "DAAA", "scp-pitfall-ifexists.json");
    free(doc);
}

static void test_the_variants_the_readme_explains(void **state)
{
    (void)state;
#define STMT(effect, cond)                                                                         \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"" effect "\","                       \
    "\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":" cond "}]}"
    /* the fix of the pitfall: IfExists makes the absent key match */
    expect(STMT("Deny", "{\"StringEqualsIfExists\":{\"eks:controlPlaneEgressMode\":"
                        "\"AWS_MANAGED\"}}"),
           "eks:CreateCluster", 1, "DAAD", "Deny StringEqualsIfExists AWS_MANAGED");
    /* a negated operator is true on an absent key, IfExists or not */
    expect(STMT("Deny", "{\"StringNotEqualsIfExists\":{\"eks:controlPlaneEgressMode\":"
                        "\"CUSTOMER_ROUTED\"}}"),
           "eks:CreateCluster", 1, "DADD", "Deny StringNotEqualsIfExists CUSTOMER_ROUTED");
    /* the Null guard (right for UpdateClusterConfig) reopens the gap on CreateCluster */
    expect(STMT("Deny", "{\"StringNotEquals\":{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"},"
                        "\"Null\":{\"eks:controlPlaneEgressMode\":\"false\"}}"),
           "eks:CreateCluster", 1, "DADA", "Deny StringNotEquals + Null false");
    /* an allow-list Allow with IfExists permits the request that leaves the mode out */
    expect(STMT("Allow", "{\"StringEqualsIfExists\":{\"eks:controlPlaneEgressMode\":"
                         "\"CUSTOMER_ROUTED\"}}"),
           "eks:CreateCluster", 0, "DADA", "allow-list Allow StringEqualsIfExists");
#undef STMT
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enforcing_scp_leaves_only_customer_routed),
        cmocka_unit_test(test_pitfall_scp_lets_the_omitted_mode_through),
        cmocka_unit_test(test_the_variants_the_readme_explains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
