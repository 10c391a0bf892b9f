/* utf8.c - UTF-8 boundaries and validity for text that came from someone else: cut on character
 * boundaries, check, and replace invalid sequences. RFC 3629 decoding, no locale involved. */
#include "common/utf8.h"

#include <string.h>

size_t utf8_char_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* utf8_char_len, with a NUL byte counted as invalid: every user of the helpers below stores or
 * prints C strings. */
static size_t seq_len(const unsigned char *s, size_t len)
{
    return len && s[0] == 0 ? 0 : utf8_char_len((const char *)s, len);
}

size_t utf8_valid_prefix(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = seq_len(u + i, len - i);
        if (n == 0 || i + n > max)
            break;
        i += n;
    }
    return i;
}

size_t utf8_cut_len(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    const unsigned char *u = (const unsigned char *)s;
    size_t cut = max;
    /* s[cut] is the first byte left out: while it continues a character, that character started
     * before cut and would be split. A UTF-8 character has at most 3 continuation bytes. */
    for (int steps = 0; cut > 0 && steps < 3 && (u[cut] & 0xC0) == 0x80; steps++)
        cut--;
    if ((u[cut] & 0xC0) == 0x80)
        return max; /* not UTF-8 anyway: nothing to protect */
    return cut;
}

size_t utf8_cut(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    return utf8_cut_len(s, len, max);
}

int utf8_valid(const char *s, size_t len)
{
    return utf8_valid_prefix(s, len, len) == len;
}

size_t utf8_sanitize(const char *s, size_t len, char *out, size_t cap)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < len) {
        size_t n = seq_len(u + i, len - i);
        const char *src = n ? s + i : repl;
        size_t w = n ? n : 3;
        if (o + w >= cap)
            break;
        memcpy(out + o, src, w);
        o += w;
        i += n ? n : 1;
    }
    out[o] = '\0';
    return o;
}

size_t utf8_repair(char *buf)
{
    unsigned char *u = (unsigned char *)buf;
    size_t len = strlen(buf), i = 0;
    while (i < len) {
        size_t n = seq_len(u + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        /* a lead byte whose continuation bytes run to the end: the cut tail of one character */
        size_t j = i + 1;
        while (j < len && (u[j] & 0xC0) == 0x80)
            j++;
        if (j == len && u[i] >= 0xC2 && u[i] <= 0xF4 && len - i < 4) {
            len = i;
            break;
        }
        u[i] = '?';
        i++;
    }
    buf[len] = '\0';
    return len;
}
