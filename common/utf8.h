/* utf8.h - cutting and checking text that came from someone else (AWS answers, member accounts'
 * names and tags) without ever splitting a UTF-8 character or passing invalid bytes on. One
 * helper for every place that bounds AWS text: the error record, "%.*s" cuts, stored fields. */
#ifndef EGRESSSCAN_UTF8_H
#define EGRESSSCAN_UTF8_H

#include <stddef.h>

/* The length of the longest prefix of s[0..len) that is valid UTF-8 (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF) and at most max bytes long. The result never ends inside a
 * character. Decoding stops at the first invalid sequence or NUL (so the result is a length usable
 * with "%.*s"). */
size_t utf8_valid_prefix(const char *s, size_t len, size_t max);

/* Length (1-4) of the valid UTF-8 character at s (at most len bytes available; a NUL byte is a
 * character of 1), 0 when the byte at s does not start one: a stray continuation byte, an overlong
 * form, a surrogate, a code point over U+10FFFF, a sequence cut short. */
size_t utf8_char_len(const char *s, size_t len);

/* The largest length <= max at which the NUL-terminated string s can be cut without splitting a
 * multi-byte character: if s[max] is a continuation byte, steps back to the start of that
 * character (at most 3 bytes). Does not validate; returns strlen(s) when it is <= max. Use as
 * printf("%.*s", (int)utf8_cut(s, 100), s). s must not be NULL. */
size_t utf8_cut(const char *s, size_t max);

/* Same as utf8_cut for a buffer of known length (may hold no NUL). */
size_t utf8_cut_len(const char *s, size_t len, size_t max);

/* Nonzero when s[0..len) is entirely valid UTF-8 (RFC 3629) and holds no NUL byte. */
int utf8_valid(const char *s, size_t len);

/* Copies s[0..len) into out (capacity cap >= 4, always NUL-terminated), replacing each invalid
 * byte (and NUL) with U+FFFD and cutting the result on a character boundary when it does not
 * fit. Returns the number of bytes written, without the NUL. */
size_t utf8_sanitize(const char *s, size_t len, char *out, size_t cap);

/* Makes the NUL-terminated string buf valid UTF-8 in place, without growing it: a trailing
 * partial character (what a byte-bounded cut such as snprintf leaves) is removed and every other
 * invalid byte becomes '?'. Returns the new length. */
size_t utf8_repair(char *buf);

#endif
