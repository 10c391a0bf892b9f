/* fuzz_policy.c - libFuzzer target for the declared policy file: parses arbitrary bytes, and when
 * they form a valid policy, resolves it for fixed subjects and describes it. Built with
 * clang -fsanitize=fuzzer,address,undefined -I. from this file, intent/policy.c and the sources
 * of common/, linked with -ljansson. Seeds: tests/data/policies/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intent/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    if (!f)
        abort();
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *sink = devnull();
    struct err e;
    err_clear(&e);
    struct policy *p = policy_parse((const char *)data, size, "fuzz.json", sink, &e);
    if (!p) {
        /* the position index must agree with every document jansson accepts */
        static const char internal[] = "fuzz.json:1:1: internal error";
        if (strncmp(e.message, internal, sizeof internal - 1) == 0)
            abort();
        return 0;
    }
    static const char *const ous[] = {"r-ab12", "ou-ab12-34cd56ef", "ou-ab12-11111111"};
    const struct policy_subject subjects[] = {
        {"111122223333", ous, 3, "eu-west-1", "{\"data-class\": \"restricted\", \"owner\": \"x\"}",
         "arn:aws:eks:eu-west-1:111122223333:cluster/legacy"},
        {"111122223333", ous + 1, 2, "us-east-1", NULL, NULL},
        {NULL, NULL, 0, NULL, "[]", NULL},
    };
    const time_t now = 1796083200; /* 2026-12-01T00:00:00Z */
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        struct policy_resolution r;
        policy_resolve(p, &subjects[i], now, &r);
        if (r.allowed & ~EGRESS_ALL_NAMED || r.exempt + r.exception_expired > 1 ||
            !memchr(r.rule_id, '\0', sizeof r.rule_id) ||
            !memchr(r.tag_rules, '\0', sizeof r.tag_rules))
            abort();
    }
    for (size_t i = 0; i < policy_rule_count(p); i++)
        if (!policy_rule_id(p, i))
            abort();
    for (size_t i = 0; i < policy_exception_count(p); i++) {
        const char *arn, *reason, *expires;
        policy_exception_get(p, i, &arn, &reason, &expires);
        if (!arn || !reason || !expires)
            abort();
    }
    policy_describe(p, now, sink);
    policy_free(p);
    return 0;
}
