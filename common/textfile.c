/* textfile.c - whole-file reads with a size cap and errors that name the file. */
#include "common/textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *textfile_read(const char *path, size_t max, size_t *len, struct err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, ERR_CONFIG, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max)
                goto too_large;
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap + 1);
            if (!t) {
                err_set(err, ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            text = t;
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        err_set(err, ERR_CONFIG, "%s: read error", path);
        goto fail;
    }
    if (n > max)
        goto too_large;
    fclose(f);
    text[n] = '\0';
    *len = n;
    return text;
too_large:
    err_set(err, ERR_CONFIG, "%s: larger than %zu MiB", path, max >> 20);
fail:
    free(text);
    fclose(f);
    return NULL;
}
