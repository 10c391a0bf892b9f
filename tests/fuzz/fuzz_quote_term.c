/* fuzz_quote_term.c - libFuzzer target for quote_term and quote_term_to: the output is valid UTF-8
 * without a C0 control, DEL or a C1 control (U+0080-U+009F), whatever the bytes; quote_term_to
 * gives a prefix of it that fits its buffer and ends on a character boundary. Built and run by
 * `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/quote.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_safe(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char_len((const char *)p + i, n - i);
        check(len > 0);
        check(len > 1 || (p[i] >= 0x20 && p[i] != 0x7f));
        check(len != 2 || p[i] != 0xc2 || p[i + 1] > 0x9f);
        i += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cap = 1 + data[0] % 64; /* the first byte picks the fixed buffer's size */
    char *in = malloc(size);
    if (!in)
        return 0;
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    struct buf b;
    buf_init(&b);
    check(quote_term(&b, in) == 0);
    check(b.data != NULL && strlen(b.data) == b.len);
    check_safe(b.data, b.len);
    char fixed[64];
    quote_term_to(fixed, cap, in);
    size_t n = strlen(fixed);
    check(n < cap);
    check(n <= b.len && memcmp(fixed, b.data, n) == 0);
    check_safe(fixed, n); /* never half a character */
    buf_cleanup(&b);
    free(in);
    return 0;
}
