/* err.c - filling and prefixing struct err; the message is always valid UTF-8, cut on a
 * character boundary. */
#include "common/err.h"

#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
    if (!e)
        return;
    e->code[0] = '\0';
    e->message[0] = '\0';
    e->http_status = 0;
    e->request_id[0] = '\0';
}

int err_set(struct err *e, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "Error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    /* messages carry AWS text: a byte-bounded cut must not leave half a character behind, and
     * the record is stored as text, which takes valid UTF-8 only */
    utf8_repair(e->code);
    utf8_repair(e->message);
    return -1;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), mlen = strlen(e->message);
    if (plen >= sizeof e->message)
        plen = sizeof e->message - 1;
    if (plen + mlen >= sizeof e->message)
        mlen = sizeof e->message - 1 - plen;
    memmove(e->message + plen, e->message, mlen);
    memcpy(e->message, prefix, plen);
    e->message[plen + mlen] = '\0';
    utf8_repair(e->message);
}

int err_isset(const struct err *e)
{
    return e && e->code[0] != '\0';
}
