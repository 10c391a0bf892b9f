/* fuzz_awserr.c - libFuzzer target for AWS error decoding: arbitrary bytes as the error body of
 * every protocol, with and without an X-Amzn-Errortype header. Decoding never fails: the code is
 * one token (no spaces or control characters), the message and request id are printable.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scanner/awserr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_text(const char *s, size_t cap, int is_token)
{
    const char *end = memchr(s, '\0', cap);
    check(end != NULL);
    for (const char *p = s; p < end; p++) {
        unsigned char ch = (unsigned char)*p;
        check(ch >= 0x20 && ch != 0x7f);
        check(!is_token || ch != ' ');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const errortypes[] = {NULL, "aws.protocoltests#FuzzError:http://x/"};
    for (int proto = AWS_PROTO_REST_JSON; proto <= AWS_PROTO_PLAIN; proto++) {
        for (size_t t = 0; t < 2; t++) {
            struct err e;
            memset(&e, 0x55, sizeof e); /* decode must set every field */
            awserr_decode((enum aws_protocol)proto, 400, errortypes[t], NULL, (const char *)data,
                          size, &e);
            check(e.code[0] != '\0');
            check_text(e.code, sizeof e.code, 1);
            check(e.message[0] != '\0');
            check_text(e.message, sizeof e.message, 0);
            check_text(e.request_id, sizeof e.request_id, 0);
            check(e.http_status == 400);
            if (t == 1 && proto == AWS_PROTO_REST_JSON)
                check(strcmp(e.code, "FuzzError") == 0);
        }
    }
    return 0;
}
