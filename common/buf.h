/* buf.h - a growable byte buffer, always NUL-terminated, with an optional size cap. */
#ifndef EGRESSSCAN_BUF_H
#define EGRESSSCAN_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
/* Frees the storage; the buffer can be reused after. */
void buf_cleanup(struct buf *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(struct buf *b);
/* Makes room for `extra` more bytes; -1 on allocation failure. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the storage to the caller (who frees it) and resets the buffer. Never NULL on success. */
char *buf_steal(struct buf *b);

#endif
