/* quote.h - encoders for the output languages egressscan writes text from AWS into (SPEC.md
 * section 4, "Every answer is untrusted"): a shell word, a CSV cell, a terminal or text-log line,
 * and the inside of a JSON string. One encoder per language, used everywhere that language is
 * written, each with a fuzz target (tests/fuzz/fuzz_quote_*.c) asserting its invariant.
 * Every function takes a NUL-terminated string (NULL is the empty string) and appends to a
 * struct buf; -1 only when memory runs out. */
#ifndef EGRESSSCAN_QUOTE_H
#define EGRESSSCAN_QUOTE_H

#include <stddef.h>
#include <stdio.h>

struct buf;

/* Appends s as one POSIX shell word in single quotes: 'it'\''s' (a quote inside closes the
 * quoted part, adds an escaped quote and opens a new one). Nothing inside single quotes is
 * expanded by sh, bash or zsh: $(...), backquotes, ;, |, globs and newlines stay text. The empty
 * string gives ''. */
int quote_shell(struct buf *b, const char *s);

/* Appends s as one CSV cell (RFC 4180) that no spreadsheet runs as a formula (OWASP "CSV
 * injection"): a cell starting with = + - @, a tab or a CR gets a leading single quote ', and is
 * then always enclosed in double quotes; any other cell is enclosed only when it holds a comma,
 * a double quote, CR or LF. Double quotes inside are doubled. Bytes are otherwise kept. */
int quote_csv_cell(struct buf *b, const char *s);
/* The same written to a stream; -1 on a write error. */
int quote_csv_cell_write(FILE *out, const char *s);

/* The replacement quote_term writes: one ASCII character, so that a table keeps its widths. */
#define QUOTE_TERM_REPLACEMENT '?'

/* Appends s as text that is safe on a terminal and in a one-line-per-record text log: every C0
 * control (U+0000-U+001F: ESC, BEL, CR, LF and tab included), DEL (U+007F), every C1 control
 * (U+0080-U+009F, which some terminals take as CSI or OSC) and every byte that is not part of a
 * valid UTF-8 sequence (overlong forms, surrogates and code points over U+10FFFF included) become
 * QUOTE_TERM_REPLACEMENT. Everything else, valid non-ASCII UTF-8 included, is kept. */
int quote_term(struct buf *b, const char *s);
/* The same into a fixed buffer of cap bytes (cap > 0), NUL-terminated, cut on a character
 * boundary when it does not fit (never in the middle of a UTF-8 sequence). Returns dst. */
char *quote_term_to(char *dst, size_t cap, const char *s);

/* Appends the len bytes at s as the inside of a JSON string (no surrounding quotes): " and \
 * escaped, C0 controls as \b \f \n \r \t or \u00XX, DEL as \u007f, and every byte that is not part
 * of a valid UTF-8 sequence as the replacement character U+FFFD (\ufffd), so that the result is
 * always valid UTF-8 and valid JSON. Embedded NUL bytes become \u0000. */
int quote_json(struct buf *b, const char *s, size_t len);

#endif
