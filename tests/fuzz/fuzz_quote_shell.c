/* fuzz_quote_shell.c - libFuzzer target for quote_shell: whatever the bytes (up to the first NUL,
 * as the encoder takes a C string), the output is one shell word that a tiny parser of POSIX
 * single quoting ('...' runs joined by \') reads back as exactly the input, so no byte of it is
 * ever interpreted by sh. Built and run by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Reads a word made of '...' runs and \' escapes only (anything else outside quotes would be
 * shell syntax) into out; the number of bytes read back. */
static size_t unquote(const char *w, size_t n, char *out)
{
    size_t i = 0, k = 0;
    check(n >= 2);
    while (i < n) {
        if (w[i] == '\'') {
            for (i++; i < n && w[i] != '\''; i++)
                out[k++] = w[i];
            check(i < n); /* every quote is closed */
            i++;
        } else {
            check(w[i] == '\\' && i + 1 < n && w[i + 1] == '\'');
            out[k++] = '\'';
            i += 2;
        }
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    size_t len = strlen(in);
    struct buf b;
    buf_init(&b);
    check(quote_shell(&b, in) == 0);
    check(b.data[0] == '\'' && b.data[b.len - 1] == '\'');
    char *back = malloc(b.len + 1);
    check(back != NULL);
    size_t k = unquote(b.data, b.len, back);
    check(k == len && memcmp(back, in, len) == 0);
    free(back);
    buf_cleanup(&b);
    free(in);
    return 0;
}
