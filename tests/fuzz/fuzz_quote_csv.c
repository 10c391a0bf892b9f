/* fuzz_quote_csv.c - libFuzzer target for quote_csv_cell: the output is one RFC 4180 cell (bare
 * without , " CR LF, or quoted with doubled quotes and nothing after the closing quote) that never
 * starts with = + - @ tab or CR, even inside its quotes; read back it is the input, with a leading
 * ' added exactly when the input starts with one of those. Built and run by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static int formula(char c)
{
    return c && strchr("=+-@\t\r", c) != NULL;
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
    check(quote_csv_cell(&b, in) == 0);
    const char *out = b.data ? b.data : "";
    check(!formula(out[0]));
    char *back = malloc(b.len + 2);
    check(back != NULL);
    size_t k = 0;
    if (out[0] == '"') {
        check(!formula(out[1]));
        size_t i = 1;
        for (;;) {
            check(i < b.len);
            if (out[i] == '"') {
                if (i + 1 < b.len && out[i + 1] == '"') {
                    back[k++] = '"';
                    i += 2;
                    continue;
                }
                break;
            }
            back[k++] = out[i++];
        }
        check(i == b.len - 1); /* the closing quote ends the cell */
    } else {
        check(strpbrk(out, ",\"\r\n") == NULL);
        memcpy(back, out, b.len);
        k = b.len;
    }
    size_t skip = formula(in[0]) ? 1 : 0;
    if (skip)
        check(k >= 1 && back[0] == '\'');
    check(k - skip == len && memcmp(back + skip, in, len) == 0);
    free(back);
    buf_cleanup(&b);
    free(in);
    return 0;
}
