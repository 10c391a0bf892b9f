/* xmldoc.c - the one place answers are handed to libxml2's parser: fixed safe options, UTF-8, and
 * libxml2's own error printing switched off for the calling thread. */
#include "scanner/xmldoc.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <limits.h>

/* libxml2 reports through these when it has no parser context to report to (encoding
 * conversion, I/O); the answer's fate is decided by the result, not by messages. */
static void quiet_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr error)
{
    (void)ctx;
    (void)error;
}

struct _xmlDoc *xmldoc_read(const char *body, size_t len, int extra_options)
{
    if (!body || len == 0 || len > INT_MAX)
        return NULL;
    xmlInitParser();
    /* per thread in libxml2: set on the thread that parses */
    xmlSetGenericErrorFunc(NULL, quiet_generic);
    xmlSetStructuredErrorFunc(NULL, quiet_structured);
    return xmlReadMemory(body, (int)len, NULL, "UTF-8",
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | extra_options);
}
