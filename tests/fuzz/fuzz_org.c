/* fuzz_org.c - libFuzzer target for the Organizations answer parsers (scanner/org_internal.h):
 * the first byte picks the operation ('0' DescribeOrganization .. '6' ListTargetsForPolicy, any
 * byte modulo 7), the rest is its answer. A page comes out whole (every listed item with an id,
 * no empty token, the management account and policy content present) or empty with a
 * MalformedResponse error naming the operation.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scanner/org_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum org_op op = (enum org_op)((uint8_t)(data[0] - '0') % ORG_OP_COUNT);
    const char *name = org_op_name(op);
    check(name != NULL);
    struct err e;
    err_clear(&e);
    struct org_page page;
    if (org_parse_page(op, (const char *)data + 1, size - 1, &page, &e) < 0) {
        check(strcmp(e.code, ERR_PARSE) == 0 || strcmp(e.code, ERR_NOMEM) == 0);
        check(strncmp(e.message, name, strlen(name)) == 0);
        check(!page.entries && page.n == 0 && !page.doc && !page.next_token);
        org_page_cleanup(&page);
        return 0;
    }
    check(page.doc != NULL);
    check(page.n == 0 || page.entries != NULL);
    for (size_t i = 0; i < page.n; i++) {
        const struct org_entry *x = &page.entries[i];
        check(x->id && x->id[0] != '\0');
        check(x->aws_managed == 0 || x->aws_managed == 1);
    }
    check(!page.next_token || page.next_token[0] != '\0');
    if (op == ORG_OP_DESCRIBE_ORGANIZATION)
        check(page.management_id && page.management_id[0] != '\0');
    if (op == ORG_OP_DESCRIBE_POLICY) {
        check(page.content && page.content[0] != '\0');
        check(page.aws_managed >= -1 && page.aws_managed <= 1);
    }
    org_page_cleanup(&page);
    check(!page.doc && !page.entries);
    return 0;
}
