/* quote.c - the output encoders of quote.h: shell words, CSV cells, terminal and text-log text,
 * JSON string contents. Each one reads text from AWS (or the database) as untrusted bytes. */
#include "common/quote.h"

#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"

int quote_shell(struct buf *b, const char *s)
{
    if (buf_putc(b, '\'') < 0)
        return -1;
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\'' ? buf_puts(b, "'\\''") < 0 : buf_putc(b, *p) < 0)
            return -1;
    }
    return buf_putc(b, '\'');
}

/* A cell a spreadsheet would read as a formula (or a DDE call) unless neutralised. */
static int csv_formula_start(const char *s)
{
    return s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

int quote_csv_cell(struct buf *b, const char *s)
{
    s = s ? s : "";
    int formula = csv_formula_start(s);
    if (!formula && !strpbrk(s, ",\"\r\n"))
        return buf_puts(b, s);
    if (buf_putc(b, '"') < 0 || (formula && buf_putc(b, '\'') < 0))
        return -1;
    for (; *s; s++)
        if ((*s == '"' && buf_putc(b, '"') < 0) || buf_putc(b, *s) < 0)
            return -1;
    return buf_putc(b, '"');
}

int quote_csv_cell_write(FILE *out, const char *s)
{
    struct buf b;
    buf_init(&b);
    int rc = quote_csv_cell(&b, s);
    if (rc == 0 && b.len && fwrite(b.data, 1, b.len, out) != b.len)
        rc = -1;
    buf_cleanup(&b);
    return rc;
}

/* Length of the next unit of s to copy as is (valid, not a control), or 0 for a byte that
 * becomes the replacement (then 1 byte is skipped, or the whole C1 sequence when *skip says). */
static size_t term_unit(const unsigned char *p, size_t n, size_t *skip)
{
    size_t len = utf8_char_len((const char *)p, n);
    *skip = len ? len : 1;
    if (len == 0 || (len == 1 && (p[0] < 0x20 || p[0] == 0x7f)))
        return 0;
    if (len == 2 && p[0] == 0xc2 && p[1] <= 0x9f) /* U+0080-U+009F */
        return 0;
    return len;
}

int quote_term(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (n) {
        size_t skip, len = term_unit(p, n, &skip);
        if (len ? buf_append(b, p, len) < 0 : buf_putc(b, QUOTE_TERM_REPLACEMENT) < 0)
            return -1;
        p += skip;
        n -= skip;
    }
    return b->data ? 0 : buf_puts(b, "");
}

char *quote_term_to(char *dst, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), out = 0;
    while (n) {
        size_t skip, len = term_unit(p, n, &skip);
        size_t w = len ? len : 1;
        if (out + w >= cap)
            break;
        if (len)
            memcpy(dst + out, p, len);
        else
            dst[out] = QUOTE_TERM_REPLACEMENT;
        out += w;
        p += skip;
        n -= skip;
    }
    dst[out] = '\0';
    return dst;
}

int quote_json(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s)
        len = 0;
    if (buf_reserve(b, len + 1) < 0)
        return -1;
    while (len) {
        unsigned char c = *p;
        size_t n = utf8_char_len((const char *)p, len);
        int rc;
        if (n == 0) {
            rc = buf_puts(b, "\\ufffd");
            n = 1;
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = buf_append(b, esc, 2);
        } else if (c == '\n') {
            rc = buf_puts(b, "\\n");
        } else if (c == '\r') {
            rc = buf_puts(b, "\\r");
        } else if (c == '\t') {
            rc = buf_puts(b, "\\t");
        } else if (c == '\b') {
            rc = buf_puts(b, "\\b");
        } else if (c == '\f') {
            rc = buf_puts(b, "\\f");
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = buf_append(b, esc, sizeof esc);
        } else {
            rc = buf_append(b, p, n);
        }
        if (rc < 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}
