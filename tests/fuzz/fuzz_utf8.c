/* fuzz_utf8.c - libFuzzer target for common/utf8.h and the error record that uses it: whatever
 * the bytes, a cut of valid text stays valid and never grows, utf8_sanitize and utf8_repair
 * always give valid UTF-8, and err_set/err_prefix never leave half a character. Built and run by
 * `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t max = size ? data[0] : 0;
    size_t v = utf8_valid_prefix(s, size, max);
    check(v <= max && v <= size && utf8_valid(s, v));
    if (utf8_valid(s, size)) {
        size_t c = utf8_cut_len(s, size, max);
        check(c <= max || c == size);
        check(c <= size && utf8_valid(s, c));
    }
    char out[256];
    size_t n = utf8_sanitize(s, size, out, sizeof out);
    check(n < sizeof out && strlen(out) == n && utf8_valid(out, n));

    char *z = malloc(size + 1);
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    size_t before = strlen(z);
    size_t r = utf8_repair(z);
    check(r <= before && strlen(z) == r && utf8_valid(z, r));
    memcpy(z, data, size);
    z[size] = '\0';
    check(utf8_cut(z, max) <= max || utf8_cut(z, max) == strlen(z));

    struct err e;
    err_clear(&e);
    err_set(&e, z, "%s|%s", z, z);
    check(utf8_valid(e.message, strlen(e.message)) && utf8_valid(e.code, strlen(e.code)));
    err_prefix(&e, "%s: ", z);
    check(utf8_valid(e.message, strlen(e.message)));
    free(z);
    return 0;
}
