/* fuzz_scp.c - libFuzzer target for the SCP evaluator: the input is parsed as an SCP document and
 * evaluated for every egress mode, both gated actions and the scanner's eks:ListClusters, for any
 * principal and for the scanner's role, attached at the root and at the account; every decision
 * must be well-formed, and a malformed document must make it unevaluable.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intent/scp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char full_access[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
    "\"Resource\":\"*\"}]}";

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_decision(const struct scp_decision *d, const struct scp_doc *doc)
{
    check(d->verdict >= SCP_ALLOWED && d->verdict <= SCP_UNEVALUABLE);
    check(d->n_statements <= SCP_MAX_STATEMENTS);
    for (size_t i = 0; i < d->n_statements; i++)
        check(memchr(d->statements[i], '\0', sizeof d->statements[i]) != NULL);
    check(memchr(d->reason, '\0', sizeof d->reason) != NULL);
    check(d->restricts_mode == 0 || d->restricts_mode == 1);
    if (scp_doc_error(doc)) {
        /* The other levels hold only FullAWSAccess: nothing can decide for certain. */
        check(d->verdict == SCP_UNEVALUABLE);
        check(strstr(d->reason, scp_doc_id(doc)) != NULL);
    }
    if (d->verdict == SCP_ALLOWED)
        check(d->n_statements == 3); /* the deciding Allow of each level */
    if (d->verdict == SCP_PRINCIPAL_DEPENDENT || d->verdict == SCP_UNEVALUABLE)
        check(d->reason[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct scp_doc *full; /* parsed once, kept for the whole run */
    if (!full) {
        full = scp_doc_parse("p-FullAWSAccess", full_access, sizeof full_access - 1);
        check(full && !scp_doc_error(full));
    }
    struct scp_doc *doc = scp_doc_parse("p-fuzz", (const char *)data, size);
    check(doc != NULL); /* NULL only on ENOMEM */
    const char *error = scp_doc_error(doc);
    check(!error || error[0] != '\0');

    const struct scp_doc *alone[] = {doc};
    const struct scp_doc *with_full[] = {full, doc};
    const struct scp_doc *only_full[] = {full};
    static const char *const actions[] = {"eks:CreateCluster", "eks:UpdateClusterConfig",
                                          "eks:ListClusters"};
    static const char *const principals[] = {NULL,
                                             "arn:aws:iam::111122223333:role/EgressScanReadOnly"};
    for (int placement = 0; placement < 2; placement++) {
        /* 0: the document is the root's only SCP; 1: the account has it next to FullAWSAccess. */
        struct scp_level levels[3] = {
            {.target_id = "r-ab12", .docs = placement ? only_full : alone, .n_docs = 1},
            {.target_id = "ou-ab12-11111111", .docs = only_full, .n_docs = 1},
            {.target_id = "111122223333",
             .docs = placement ? with_full : only_full,
             .n_docs = placement ? 2 : 1},
        };
        for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++) {
            for (int m = 0; m < EGRESS_MODES; m++) {
                for (size_t p = 0; p < sizeof principals / sizeof principals[0]; p++) {
                    struct scp_request req = {.action = actions[a],
                                              .account_id = "111122223333",
                                              .region = placement ? "eu-west-1" : "us-gov-west-1",
                                              .mode = (enum egress_mode)m,
                                              .principal_arn = principals[p]};
                    struct scp_decision d;
                    scp_evaluate(levels, 3, &req, placement ? NULL : "aws-us-gov", &d);
                    check_decision(&d, doc);
                }
            }
        }
    }
    scp_doc_free(doc);
    return 0;
}
