/* fuzz_sts.c - libFuzzer target for the STS answer parser: arbitrary bytes as an AssumeRole /
 * AssumeRoleWithWebIdentity response. Credentials come out whole (every part present, trimmed)
 * or not at all, with a MalformedResponse error that says why.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scanner/creds.h"
#include "scanner/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_trimmed(const char *s)
{
    check(s && s[0] != '\0');
    size_t n = strlen(s);
    check(!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    err_clear(&e);
    struct aws_credentials *c = sts_parse_credentials((const char *)data, size, "fuzz", &e);
    if (!c) {
        check(strcmp(e.code, ERR_PARSE) == 0 || strcmp(e.code, ERR_NOMEM) == 0);
        check(e.message[0] != '\0');
        check(memchr(e.message, '\0', sizeof e.message) != NULL);
        return 0;
    }
    check_trimmed(c->access_key_id);
    check_trimmed(c->secret_access_key);
    check_trimmed(c->session_token);
    check(strcmp(c->source, "fuzz") == 0);
    creds_unref(c);
    return 0;
}
