/* http.h - the one HTTP engine: libcurl multi on epoll, many AWS requests in flight from one event
 * loop, one connection pool / DNS cache / TLS session cache for every account, SigV4 signing of
 * each attempt, the SDKs' standard retry mode, error decoding, bounded bodies and timeouts. */
#ifndef EGRESSSCAN_HTTP_H
#define EGRESSSCAN_HTTP_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "scanner/awserr.h"
#include "scanner/sigv4.h"

struct aws_credentials;
struct http_engine;

enum retry_mode { RETRY_STANDARD = 0, RETRY_ADAPTIVE, RETRY_LEGACY };

/* Observer of retries (tests, metrics): attempt is the attempt that failed (1-based), delay_ms
 * the backoff chosen before the next attempt. */
typedef void (*http_retry_observer_fn)(void *ud, int attempt, long delay_ms, const struct err *e);

struct http_engine_options {
    int max_in_flight;          /* concurrent HTTP requests; default 128 */
    int max_per_key;            /* concurrent requests per pace_key; default 16; <0 = no cap */
    long connect_timeout_ms;    /* default EGRESSSCAN_CONNECT_TIMEOUT_MS, else 5000 */
    long timeout_ms;            /* whole attempt; default EGRESSSCAN_HTTP_TIMEOUT_MS, else 30000 */
    size_t max_body;            /* response body cap; default 16 MiB */
    const char *ca_bundle;      /* extra CA file added to the system store; default AWS_CA_BUNDLE */
    int max_attempts;           /* default AWS_MAX_ATTEMPTS, else 3 */
    enum retry_mode retry_mode; /* default AWS_RETRY_MODE, else standard */
    const char *user_agent;     /* default "egressscan/<version>" */
    http_retry_observer_fn on_retry;
    void *on_retry_ud;
};

/* Fills defaults and the environment (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_CA_BUNDLE, and
 * egressscan's EGRESSSCAN_HTTP_TIMEOUT_MS / EGRESSSCAN_CONNECT_TIMEOUT_MS in milliseconds).
 * -1 with err (ConfigError) when an environment value is invalid. */
int http_engine_options_init(struct http_engine_options *o, struct err *err);

struct aws_request {
    enum aws_protocol protocol; /* how errors are decoded */
    const char *method;         /* "GET", "POST", "PUT" */
    const char *url;            /* full URL with path and query, e.g. from endpoint_resolve() */
    const char *service;        /* SigV4 signing name ("eks", "sts"); NULL: request is unsigned */
    const char *region;         /* SigV4 region (credential scope) */
    struct aws_credentials
        *creds; /* borrowed: the engine takes its own reference; NULL: unsigned */
    const struct sigv4_header *headers; /* extra headers (Content-Type, X-Amz-Target), signed */
    size_t n_headers;
    const void *body;
    size_t body_len;
    const char *pace_key; /* requests sharing a key (an account id) share max_per_key; NULL: none */
    int allow_http;       /* 1 permits a plain http:// URL (endpoint override, IMDS) */
    int no_retry;         /* 1: a single attempt (IMDS probing) */
    int priority;         /* 1: ahead of the queue (discovery that the rest of the work waits
                             for, such as a chain of Organizations pages) */
};

struct aws_response {
    long status;      /* HTTP status of the last attempt; 0 when none arrived */
    const char *body; /* NUL-terminated; valid only during the callback */
    size_t body_len;
    int attempts;   /* attempts made */
    struct err err; /* err.code empty on success (2xx); else AWS code, status, request id */
};

/* Called once per submitted request, from inside http_engine_run(). It may submit new requests. */
typedef void (*http_done_fn)(void *ud, const struct aws_response *resp);

struct http_engine_stats {
    unsigned long requests;  /* completed logical requests */
    unsigned long attempts;  /* HTTP attempts: requests + retries + refreshes */
    unsigned long retries;   /* attempts repeated by the retry mode (throttling, 5xx, ...) */
    unsigned long throttles; /* attempts answered with a throttling error */
    unsigned long failures;  /* requests that completed with an error */
    unsigned long bytes_in;
    unsigned long expired;        /* attempts answered "credentials expired" */
    unsigned long refreshes;      /* requests sent again with refreshed credentials */
    unsigned long quota_refusals; /* retries not made: the retry quota was exhausted */
};

/* NULL with err on failure. Copies what it needs from opts. */
struct http_engine *http_engine_new(const struct http_engine_options *opts, struct err *err);
/* Cancels whatever is still queued (callbacks are not called) and frees. NULL is a no-op. */
void http_engine_free(struct http_engine *e);

/* Queues a request; the engine copies everything in req. done is called exactly once, later,
 * from http_engine_run(). -1 with err when req is invalid (bad URL, http:// not allowed). */
int http_submit(struct http_engine *e, const struct aws_request *req, http_done_fn done, void *ud,
                struct err *err);

/* The owner's source of more work: called from the event loop whenever the engine is hungry
 * (see http_engine_hungry), so that work can be started just in time instead of queued up
 * front. It may submit requests. */
typedef void (*http_feed_fn)(void *ud);
void http_engine_set_feeder(struct http_engine *e, http_feed_fn feed, void *ud);

/* Credential refresh. When an answer says that a request's credentials expired (ExpiredToken,
 * ExpiredTokenException, RequestExpired), the engine asks the refresher once for that request:
 * refresh(ud, pace_key, stale, done, cookie) returns 0 and calls done(cookie, fresh, err)
 * exactly once — before returning, or later from the event loop (e.g. after an AssumeRole on
 * this engine) — with a new reference to fresh credentials (the engine takes it over) or NULL
 * and the error; or returns -1 without calling done when it has nothing fresher for stale.
 * With fresh credentials the request is sent again at once (this attempt is not counted
 * against max_attempts); a second expired answer, a -1 or a NULL completes the request with
 * the error. A refresher with callbacks pending when the engine is freed must drop them. */
typedef void (*http_refreshed_fn)(void *cookie, struct aws_credentials *fresh, const struct err *e);
typedef int (*http_refresh_fn)(void *ud, const char *pace_key, struct aws_credentials *stale,
                               http_refreshed_fn done, void *cookie);
void http_engine_set_refresher(struct http_engine *e, http_refresh_fn refresh, void *ud);

/* 1 when so few requests are ready to start (fewer than a quarter of max_in_flight) that a new
 * one would hardly wait: the time to submit more. Requests waiting for their key's slot or for a
 * retry do not count: they cannot use a free slot. */
int http_engine_hungry(const struct http_engine *e);

/* Runs the event loop until no request is queued, waiting for retry or in flight.
 * -1 with err only on an engine failure (epoll/curl multi error). */
int http_engine_run(struct http_engine *e, struct err *err);

/* The owner's look at the event loop: tick(ud) is called at every turn of http_engine_run (at
 * least once a second, and at once when a signal interrupts the wait), so that it can act on a
 * stop or a deadline (http_engine_abort). NULL: none. */
typedef void (*http_tick_fn)(void *ud);
void http_engine_set_tick(struct http_engine *e, http_tick_fn tick, void *ud);

/* Completes every request with why (their callbacks are called, from the event loop, without
 * retries): the attempts in curl are cut off now, the queued ones complete without being sent,
 * and so do the requests the callbacks submit meanwhile, until none is left and http_engine_run
 * returns. Called from a callback or a tick of the running loop. */
void http_engine_abort(struct http_engine *e, const struct err *why);

/* Drops every request without calling its callback (after http_engine_run failed: the callbacks
 * point into the owner's state of that run, which must not be reached from a later run). The
 * engine can then be used again. */
void http_engine_cancel(struct http_engine *e);

/* Submits req and runs the engine until it completes. On success fills body (the caller's buf)
 * and *status and returns 0; else -1 with err (AWS code, HTTP status, request id). Must not be
 * called from inside a done callback. */
int http_perform(struct http_engine *e, const struct aws_request *req, struct buf *body,
                 long *status, struct err *err);

void http_engine_get_stats(const struct http_engine *e, struct http_engine_stats *out);

/* The standard retry mode's backoff for a failed attempt (1-based): rand01 * min(2^(attempt-1),
 * 20) seconds, in milliseconds. Exposed for tests. */
long http_backoff_ms(int attempt, double rand01);

#endif
