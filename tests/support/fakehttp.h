/* fakehttp.h - a scripted HTTP/1.1 server on 127.0.0.1 for tests (retries, credential endpoints,
 * IMDS, error bodies). Each connection is served by its own thread with keep-alive; a handler
 * decides each answer. Optional TLS with a given certificate. */
#ifndef EGRESSSCAN_TESTS_FAKEHTTP_H
#define EGRESSSCAN_TESTS_FAKEHTTP_H

#include <stddef.h>

struct fakehttp_req {
    const char *method;
    const char *target;  /* request target as sent: "/clusters?maxResults=100" */
    const char *headers; /* raw header block, "Name: value\r\n" lines */
    const char *body;
    size_t body_len;
    int seq;      /* 0-based number of this request on the server */
    int conn_seq; /* 0-based number of the connection it arrived on */
};

enum fakehttp_action {
    FAKEHTTP_RESPOND = 0, /* send status/headers/body */
    FAKEHTTP_RESET,       /* close the connection without answering (RST) */
    FAKEHTTP_TRUNCATE,    /* send headers announcing the full body, then half of it, then close */
    FAKEHTTP_HANG         /* answer nothing for delay_ms, then close */
};

struct fakehttp_resp {
    enum fakehttp_action action;
    int status;         /* default 200 */
    char headers[1024]; /* extra header lines, each ending "\r\n" */
    char *body;         /* malloc'd by the handler; the server frees it */
    int delay_ms;       /* wait before answering (RESPOND) or before closing (HANG) */
};

/* Runs on the connection's thread; fill resp. Must be thread-safe. */
typedef void (*fakehttp_handler_fn)(void *ud, const struct fakehttp_req *req,
                                    struct fakehttp_resp *resp);

struct fakehttp;

/* Starts on a free loopback port. cert/key PEM files enable TLS (both NULL: plain HTTP).
 * NULL on failure (message on stderr). */
struct fakehttp *fakehttp_start(fakehttp_handler_fn handler, void *ud, const char *cert_file,
                                const char *key_file);
int fakehttp_port(const struct fakehttp *s);
/* "http://127.0.0.1:PORT" or "https://localhost:PORT" (static storage inside s). */
const char *fakehttp_url(const struct fakehttp *s);
/* Requests and connections seen so far. */
int fakehttp_requests(const struct fakehttp *s);
int fakehttp_connections(const struct fakehttp *s);
/* Copy of the raw text (request line, headers, body) of request i, malloc'd; NULL if none.
 * Lets tests search everything sent for a secret. */
char *fakehttp_request_text(struct fakehttp *s, int i);
/* Stops accepting, closes every connection, joins threads, frees. NULL is a no-op. */
void fakehttp_stop(struct fakehttp *s);

/* Convenience: sets a RESPOND answer with a copied body. */
void fakehttp_respond(struct fakehttp_resp *resp, int status, const char *extra_headers,
                      const char *body);

#endif
