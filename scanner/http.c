/* http.c - the HTTP engine: one curl multi handle driven by curl_multi_socket_action on epoll, one
 * connection pool / DNS cache / TLS session cache shared by every account, SigV4 signing of every
 * attempt, the SDKs' standard (and adaptive) retry mode with its retry quota, per-key concurrency
 * caps without head-of-line blocking, bounded bodies and timeouts. Single-threaded. */
#include "scanner/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/version.h"
#include "scanner/creds.h"

#define DEFAULT_MAX_IN_FLIGHT 128
#define DEFAULT_MAX_PER_KEY 16
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_BODY ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_ATTEMPTS 3
#define LEGACY_MAX_ATTEMPTS 5

/* Standard retry mode's retry quota (botocore retries/quota.py and standard.py). */
#define QUOTA_MAX 500
#define QUOTA_RETRY_COST 5
#define QUOTA_TIMEOUT_RETRY_COST 10
#define QUOTA_NO_RETRY_INCREMENT 1

#define BACKOFF_CAP_S 20

/* Adaptive mode (botocore retries/adaptive.py, bucket.py, cubic.py). */
#define ADAPTIVE_MIN_RATE 0.5
#define CUBIC_SCALE 0.4
#define CUBIC_BETA 0.7
#define CLOCK_SMOOTHING 0.8
#define CLOCK_BUCKET_S 0.5

/* First member of every hash table entry. */
struct hnode {
    struct hnode *next;
    uint32_t hash;
};

struct pace {
    struct hnode node;
    int refs;                    /* live requests naming this key */
    int active;                  /* of them, ready to start or in curl */
    int quota;                   /* the key's retry quota (the SDKs keep one per client) */
    struct req *q_head, *q_tail; /* waiting for one of the key's slots */
    char key[];
};

/* What one attempt in curl needs, kept with its easy handle and reused: a request waiting in a
 * queue holds none of it, and the body buffer is not grown again for every answer. */
struct attempt {
    struct http_engine *eng;
    struct req *req; /* the request this attempt is for, while in curl */
    CURL *easy;
    struct buf in; /* the answer's body */
    int too_large, nomem;
    char errortype[ERR_CODE_MAX * 2];
    char request_id[ERR_REQID_MAX];
    char curl_error[CURL_ERROR_SIZE];
};

/* Client-side rate limiter of the adaptive retry mode, one per pace_key x service while a
 * request names it (as struct pace: memory follows the work under way, not the fleet). */
struct limiter {
    struct hnode node;
    int refs; /* live requests using it */
    int enabled;
    /* token bucket */
    double fill_rate, max_capacity, capacity, last_refill;
    int refilled;
    /* CUBIC */
    double w_max, k, last_fail;
    /* measured send rate */
    double measured_rate, last_bucket;
    double count;
    char key[];
};

struct req {
    struct http_engine *eng;
    struct req *prev_live, *next_live; /* every live request, for http_engine_free */
    struct req *next;                  /* ready queue or key queue */
    uint64_t due_ms;                   /* while delayed (backoff, rate limit): when to admit */
    int token_taken; /* adaptive: a send token is already reserved for the next attempt */
    int attempts;
    int retry_cost; /* quota taken by the last retry */
    int refreshed;  /* its credentials were refreshed once after an expired-credentials answer */

    enum aws_protocol proto;
    const char *method, *url, *service, *region, *host, *path, *query;
    struct sigv4_header *sign_headers; /* n_extra + 3 slots: host, date, token, extras */
    const struct sigv4_header *extra;  /* the request's own headers (copied) */
    size_t n_extra;
    const char *body;
    size_t body_len;
    int allow_http, no_retry, priority, has_content_type, has_accept;
    int sends_body;                /* the method goes out with a (possibly empty) body */
    struct aws_credentials *creds; /* own reference, or NULL */
    struct pace *pace;
    struct limiter *limiter;
    http_done_fn done;
    void *ud;

    /* the attempt in curl */
    struct attempt *at;
    struct curl_slist *headers;

    /* sign_headers (n_extra + 3 slots), the extras (n_extra), then the copied strings */
    struct sigv4_header arena[];
};

struct http_engine {
    struct http_engine_options opt;
    char *ca_bundle;
    char *user_agent;
    STACK_OF(X509) * extra_cas;
    int default_cafile_only; /* clear curl's default CA path (see attempt_get) */

    CURLM *multi;
    CURLSH *share;
    int epfd;
    int timer_set;
    uint64_t timer_due;

    struct attempt **pool; /* idle attempts with their easy handles */
    int n_pool;

    struct req *live;
    size_t n_live;
    struct req *ready_head, *ready_tail;
    size_t n_ready; /* requests in the ready queue: could start as soon as a slot frees */
    int in_flight;
    struct req **heap; /* delayed requests, min-heap on due_ms */
    size_t heap_len, heap_cap;

    struct hnode **pace_tab;
    size_t pace_cap, pace_count;
    struct hnode **lim_tab;
    size_t lim_cap, lim_count;

    int quota; /* retry quota of the requests without a pace key */
    uint64_t rng;
    int running;
    http_feed_fn feed; /* the owner's source of more work */
    void *feed_ud;
    http_refresh_fn refresh; /* the owner's source of fresh credentials */
    void *refresh_ud;
    size_t n_refreshing; /* requests waiting for refreshed credentials */
    struct buf line;     /* scratch for header lines */
    struct http_engine_stats stats;
    http_tick_fn tick; /* the owner's look at the loop, every turn (a stop, a deadline) */
    void *tick_ud;
    int aborting;         /* http_engine_abort: every request completes with abort_err */
    struct err abort_err; /* until the loop has none left */
};

/* ---- time, randomness, hashing ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rand01(struct http_engine *e)
{
    /* xorshift64*: backoff jitter needs spread, not secrecy */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static uint32_t fnv1a(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (const char *p = a; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0x1f) * 16777619u;
    for (const char *p = b; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

long http_backoff_ms(int attempt, double r)
{
    if (attempt < 1)
        attempt = 1;
    if (!(r >= 0.0)) /* also NaN */
        r = 0.0;
    if (r > 1.0)
        r = 1.0;
    long cap_s = attempt > 5 ? BACKOFF_CAP_S : 1L << (attempt - 1);
    if (cap_s > BACKOFF_CAP_S)
        cap_s = BACKOFF_CAP_S;
    return (long)(r * (double)cap_s * 1000.0);
}

/* ---- options ---- */

/* A timeout in milliseconds from the environment, when set: 1 ms to 1 hour. */
static int env_ms(const char *name, long *out, struct err *err)
{
    const char *v = getenv(name);
    if (v && *v && config_parse_long(v, 1, 3600000, out) < 0)
        return err_set(err, ERR_CONFIG, "%s \"%.32s\" is not a number of milliseconds 1..3600000",
                       name, v);
    return 0;
}

int http_engine_options_init(struct http_engine_options *o, struct err *err)
{
    memset(o, 0, sizeof *o);
    o->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    o->max_per_key = DEFAULT_MAX_PER_KEY;
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->max_body = DEFAULT_MAX_BODY;
    o->retry_mode = RETRY_STANDARD;
    o->max_attempts = DEFAULT_MAX_ATTEMPTS;

    const char *v = getenv("AWS_CA_BUNDLE");
    o->ca_bundle = v && *v ? v : NULL;

    v = getenv("AWS_RETRY_MODE");
    if (v && *v) {
        if (strcmp(v, "standard") == 0)
            o->retry_mode = RETRY_STANDARD;
        else if (strcmp(v, "adaptive") == 0)
            o->retry_mode = RETRY_ADAPTIVE;
        else if (strcmp(v, "legacy") == 0)
            o->retry_mode = RETRY_LEGACY;
        else
            return err_set(err, ERR_CONFIG,
                           "AWS_RETRY_MODE \"%.32s\" is not one of standard, adaptive, legacy", v);
    }
    if (o->retry_mode == RETRY_LEGACY)
        o->max_attempts = LEGACY_MAX_ATTEMPTS;

    v = getenv("AWS_MAX_ATTEMPTS");
    long n;
    if (v && *v) {
        if (config_parse_long(v, 1, 100, &n) < 0)
            return err_set(err, ERR_CONFIG, "AWS_MAX_ATTEMPTS \"%.32s\" is not a number 1..100", v);
        o->max_attempts = (int)n;
    }

    /* Not an AWS convention (the SDKs set timeouts in code): egressscan's own knobs. */
    if (env_ms("EGRESSSCAN_HTTP_TIMEOUT_MS", &o->timeout_ms, err) < 0 ||
        env_ms("EGRESSSCAN_CONNECT_TIMEOUT_MS", &o->connect_timeout_ms, err) < 0)
        return -1;
    return 0;
}

/* ---- tables: pace keys and limiters ---- */

static int grow_table(struct hnode ***tab, size_t *cap, size_t count)
{
    if (count < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    struct hnode **nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < *cap; i++) {
        struct hnode *it = (*tab)[i];
        while (it) {
            struct hnode *next = it->next;
            it->next = nt[it->hash & (ncap - 1)];
            nt[it->hash & (ncap - 1)] = it;
            it = next;
        }
    }
    free(*tab);
    *tab = nt;
    *cap = ncap;
    return 0;
}

static struct pace *pace_get(struct http_engine *e, const char *key)
{
    uint32_t h = fnv1a(key, NULL);
    if (e->pace_cap) {
        for (struct hnode *n = e->pace_tab[h & (e->pace_cap - 1)]; n; n = n->next) {
            struct pace *p = (struct pace *)n;
            if (n->hash == h && strcmp(p->key, key) == 0)
                return p;
        }
    }
    if (grow_table(&e->pace_tab, &e->pace_cap, e->pace_count) < 0)
        return NULL;
    size_t kl = strlen(key);
    struct pace *p = calloc(1, sizeof *p + kl + 1);
    if (!p)
        return NULL;
    p->node.hash = h;
    p->quota = QUOTA_MAX;
    memcpy(p->key, key, kl + 1);
    p->node.next = e->pace_tab[h & (e->pace_cap - 1)];
    e->pace_tab[h & (e->pace_cap - 1)] = &p->node;
    e->pace_count++;
    return p;
}

/* Drops a request's hold on its key; frees the entry when no live request names it, so that
 * memory follows what is in flight, not the size of the fleet. */
static void pace_unref(struct http_engine *e, struct pace *p)
{
    if (!p || --p->refs > 0)
        return;
    struct hnode **pp = &e->pace_tab[p->node.hash & (e->pace_cap - 1)];
    while (*pp != &p->node)
        pp = &(*pp)->next;
    *pp = p->node.next;
    e->pace_count--;
    free(p);
}

static void limiter_set_max_rate(struct limiter *l, double rate)
{
    if (rate < ADAPTIVE_MIN_RATE)
        rate = ADAPTIVE_MIN_RATE;
    l->fill_rate = rate;
    l->max_capacity = rate > 1.0 ? rate : 1.0;
    if (l->capacity > l->max_capacity)
        l->capacity = l->max_capacity;
}

static double cubic_zero_point(double w_max)
{
    return cbrt(w_max * (1.0 - CUBIC_BETA) / CUBIC_SCALE);
}

static struct limiter *limiter_get(struct http_engine *e, const char *key, const char *service)
{
    uint32_t h = fnv1a(key, service);
    size_t kl = strlen(key ? key : ""), sl = strlen(service ? service : "");
    if (e->lim_cap) {
        for (struct hnode *n = e->lim_tab[h & (e->lim_cap - 1)]; n; n = n->next) {
            struct limiter *l = (struct limiter *)n;
            if (n->hash == h && strncmp(l->key, key ? key : "", kl) == 0 && l->key[kl] == 0x1f &&
                strcmp(l->key + kl + 1, service ? service : "") == 0)
                return l;
        }
    }
    if (grow_table(&e->lim_tab, &e->lim_cap, e->lim_count) < 0)
        return NULL;
    struct limiter *l = calloc(1, sizeof *l + kl + sl + 2);
    if (!l)
        return NULL;
    l->node.hash = h;
    memcpy(l->key, key ? key : "", kl);
    l->key[kl] = 0x1f;
    memcpy(l->key + kl + 1, service ? service : "", sl + 1);
    double t = now_s();
    limiter_set_max_rate(l, 1.0); /* TokenBucket(max_rate=1) */
    l->capacity = 0;
    l->w_max = ADAPTIVE_MIN_RATE; /* CubicCalculator(starting_max_rate=0.5) */
    l->k = cubic_zero_point(l->w_max);
    l->last_fail = t;
    l->last_bucket = floor(t);
    l->node.next = e->lim_tab[h & (e->lim_cap - 1)];
    e->lim_tab[h & (e->lim_cap - 1)] = &l->node;
    e->lim_count++;
    return l;
}

static void limiter_unref(struct http_engine *e, struct limiter *l)
{
    if (!l || --l->refs > 0)
        return;
    struct hnode **pp = &e->lim_tab[l->node.hash & (e->lim_cap - 1)];
    while (*pp != &l->node)
        pp = &(*pp)->next;
    *pp = l->node.next;
    e->lim_count--;
    free(l);
}

/* Reserves one send token; returns how long (seconds) to wait before sending. Reservations may
 * drive the bucket negative, which queues the waiters in time order without polling. */
static double limiter_acquire(struct limiter *l, double t)
{
    if (!l->enabled)
        return 0;
    if (l->refilled) {
        l->capacity += (t - l->last_refill) * l->fill_rate;
        if (l->capacity > l->max_capacity)
            l->capacity = l->max_capacity;
    }
    l->refilled = 1;
    l->last_refill = t;
    l->capacity -= 1.0;
    return l->capacity >= 0 ? 0 : -l->capacity / l->fill_rate;
}

static void limiter_on_response(struct limiter *l, int throttled, double t)
{
    /* RateClocker.record */
    double bucket = floor(t / CLOCK_BUCKET_S) * CLOCK_BUCKET_S;
    l->count += 1;
    if (bucket > l->last_bucket) {
        double current = l->count / (bucket - l->last_bucket);
        l->measured_rate = current * CLOCK_SMOOTHING + l->measured_rate * (1.0 - CLOCK_SMOOTHING);
        l->count = 0;
        l->last_bucket = bucket;
    }
    double new_rate;
    if (!throttled) {
        double dt = t - l->last_fail - l->k;
        new_rate = CUBIC_SCALE * dt * dt * dt + l->w_max;
    } else {
        double rate =
            l->enabled && l->fill_rate < l->measured_rate ? l->fill_rate : l->measured_rate;
        l->w_max = rate;
        l->k = cubic_zero_point(rate);
        l->last_fail = t;
        new_rate = rate * CUBIC_BETA;
        l->enabled = 1;
    }
    double cap = 2.0 * l->measured_rate;
    limiter_set_max_rate(l, new_rate < cap ? new_rate : cap);
}

/* ---- delayed requests: min-heap on due_ms ---- */

static int heap_push(struct http_engine *e, struct req *r, uint64_t due)
{
    if (e->heap_len == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        struct req **h = realloc(e->heap, cap * sizeof *h);
        if (!h)
            return -1;
        e->heap = h;
        e->heap_cap = cap;
    }
    r->due_ms = due;
    size_t i = e->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e->heap[parent]->due_ms <= due)
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = r;
    return 0;
}

static struct req *heap_pop(struct http_engine *e)
{
    struct req *top = e->heap[0];
    struct req *last = e->heap[--e->heap_len];
    size_t i = 0, n = e->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && e->heap[c + 1]->due_ms < e->heap[c]->due_ms)
            c++;
        if (last->due_ms <= e->heap[c]->due_ms)
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n > 0)
        e->heap[i] = last;
    return top;
}

/* ---- scheduling ---- */

static void queue_push(struct req **head, struct req **tail, struct req *r, int front)
{
    r->next = NULL;
    if (!*head) {
        *head = *tail = r;
    } else if (front) {
        r->next = *head;
        *head = r;
    } else {
        (*tail)->next = r;
        *tail = r;
    }
}

static struct req *queue_pop(struct req **head, struct req **tail)
{
    struct req *r = *head;
    if (r) {
        *head = r->next;
        if (!*head)
            *tail = NULL;
        r->next = NULL;
    }
    return r;
}

static int key_cap(const struct http_engine *e)
{
    return e->opt.max_per_key;
}

/* Puts a request where it waits for a slot: the global ready queue when its key has room, else
 * its key's own queue (so a throttled account never blocks the others). Retries and priority
 * requests go first. */
static void admit(struct http_engine *e, struct req *r, int front)
{
    if (r->limiter && !r->token_taken && !e->aborting) {
        double wait = limiter_acquire(r->limiter, now_s());
        r->token_taken = 1;
        if (wait > 0) {
            uint64_t due = now_ms() + (uint64_t)ceil(wait * 1000.0);
            if (heap_push(e, r, due) == 0)
                return;
            /* out of memory for the heap: send now rather than lose the request */
        }
    }
    struct pace *p = r->pace;
    if (p && key_cap(e) >= 0 && p->active >= key_cap(e)) {
        queue_push(&p->q_head, &p->q_tail, r, front);
        return;
    }
    if (p)
        p->active++;
    queue_push(&e->ready_head, &e->ready_tail, r, front);
    e->n_ready++;
}

/* A request leaves curl (done, or waiting to retry): its key slot goes to the key's next. */
static void release_key_slot(struct http_engine *e, struct req *r)
{
    struct pace *p = r->pace;
    if (!p)
        return;
    p->active--;
    if (p->q_head && (key_cap(e) < 0 || p->active < key_cap(e))) {
        struct req *n = queue_pop(&p->q_head, &p->q_tail);
        p->active++;
        queue_push(&e->ready_head, &e->ready_tail, n, n->priority);
        e->n_ready++;
    }
}

/* ---- curl callbacks ---- */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_engine *e = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = s;
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp) {
        if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
            epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
            epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(e->multi, s, e); /* marks the socket as registered */
    }
    return 0;
}

/* One-shot: remember when curl wants to be called; the loop calls it once when that passes. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_engine *e = userp;
    if (timeout_ms < 0) {
        e->timer_set = 0;
    } else {
        e->timer_set = 1;
        e->timer_due = now_ms() + (uint64_t)timeout_ms;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct attempt *at = userp;
    size_t len = size * nmemb;
    if (len > at->eng->opt.max_body - at->in.len) {
        at->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (buf_append(&at->in, data, len) < 0) {
        at->nomem = 1;
        return 0;
    }
    return len;
}

static void copy_header_value(const char *v, size_t len, char *out, size_t cap)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 &&
           (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static int header_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct attempt *at = userp;
    size_t len = size * nmemb;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) { /* a new response (after a 1xx) */
        at->errortype[0] = '\0';
        at->request_id[0] = '\0';
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    if (header_is(data, nl, "x-amzn-errortype"))
        copy_header_value(v, vl, at->errortype, sizeof at->errortype);
    else if (header_is(data, nl, "x-amzn-requestid") ||
             (header_is(data, nl, "x-amz-request-id") && !at->request_id[0]))
        copy_header_value(v, vl, at->request_id, sizeof at->request_id);
    return len;
}

static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
    (void)easy;
    struct http_engine *e = userp;
    /* A connection waits for its answer most of the time: without buffers (2 x ~17 KB per
     * connection, allocated again when data flows). */
    SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!e->extra_cas)
        return CURLE_OK;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
    if (!store)
        return CURLE_SSL_CACERT_BADFILE;
    /* The store may be curl's cached one, shared by connections: adding a certificate that is
     * already there succeeds (OpenSSL 3) and changes nothing. */
    for (int i = 0; i < sk_X509_num(e->extra_cas); i++)
        X509_STORE_add_cert(store, sk_X509_value(e->extra_cas, i));
    ERR_clear_error();
    return CURLE_OK;
}

/* ---- engine lifetime ---- */

static int load_ca_bundle(struct http_engine *e, const char *path, struct err *err)
{
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        ERR_clear_error();
        return err_set(err, ERR_CONFIG, "CA bundle %s cannot be read", path);
    }
    e->extra_cas = sk_X509_new_null();
    X509 *x;
    while (e->extra_cas && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(e->extra_cas, x))
            X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!e->extra_cas || sk_X509_num(e->extra_cas) == 0)
        return err_set(err, ERR_CONFIG, "CA bundle %s holds no PEM certificate", path);
    return 0;
}

struct http_engine *http_engine_new(const struct http_engine_options *opts, struct err *err)
{
    struct http_engine_options defaults;
    if (!opts) {
        if (http_engine_options_init(&defaults, err) < 0)
            return NULL;
        opts = &defaults;
    }
    struct http_engine *e = calloc(1, sizeof *e);
    if (!e) {
        err_set(err, ERR_NOMEM, "out of memory creating the HTTP engine");
        return NULL;
    }
    e->epfd = -1;
    e->opt = *opts;
    struct http_engine_options *o = &e->opt;
    if (o->max_in_flight <= 0)
        o->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    if (o->max_per_key == 0)
        o->max_per_key = DEFAULT_MAX_PER_KEY;
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o->timeout_ms <= 0)
        o->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (o->max_body == 0)
        o->max_body = DEFAULT_MAX_BODY;
    if (o->max_attempts <= 0)
        o->max_attempts =
            o->retry_mode == RETRY_LEGACY ? LEGACY_MAX_ATTEMPTS : DEFAULT_MAX_ATTEMPTS;
    if (o->retry_mode != RETRY_STANDARD && o->retry_mode != RETRY_ADAPTIVE &&
        o->retry_mode != RETRY_LEGACY) {
        err_set(err, ERR_CONFIG, "unknown retry mode %d", (int)o->retry_mode);
        goto fail_early;
    }
    char ua[128];
    snprintf(ua, sizeof ua, "egressscan/%s", EGRESSSCAN_VERSION);
    e->user_agent = strdup(o->user_agent ? o->user_agent : ua);
    e->ca_bundle = o->ca_bundle ? strdup(o->ca_bundle) : NULL;
    if (!e->user_agent || (o->ca_bundle && !e->ca_bundle)) {
        err_set(err, ERR_NOMEM, "out of memory creating the HTTP engine");
        goto fail_early;
    }
    o->user_agent = e->user_agent;
    o->ca_bundle = e->ca_bundle;
    if (e->ca_bundle && load_ca_bundle(e, e->ca_bundle, err) < 0)
        goto fail_early;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        err_set(err, ERR_CONFIG, "curl_global_init failed");
        goto fail_early;
    }
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    e->default_cafile_only = cv && cv->cainfo && cv->capath && access(cv->cainfo, R_OK) == 0;
    e->quota = QUOTA_MAX;
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof seed) < 0 || seed == 0)
        seed = now_ms() ^ ((uint64_t)(uintptr_t)e << 16) ^ (uint64_t)getpid();
    e->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    buf_init(&e->line);

    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->multi = curl_multi_init();
    e->share = curl_share_init();
    e->pool = calloc((size_t)o->max_in_flight, sizeof *e->pool);
    if (e->epfd < 0 || !e->multi || !e->share || !e->pool) {
        err_set(err, ERR_NOMEM, "creating the HTTP engine failed (epoll/curl)");
        goto fail;
    }
    curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    /* Idle connections kept for reuse: enough for every slot plus spread over several hosts. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)o->max_in_flight * 2 + 16);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    return e;

fail:
    http_engine_free(e);
    return NULL;
fail_early:
    sk_X509_pop_free(e->extra_cas, X509_free);
    free(e->user_agent);
    free(e->ca_bundle);
    free(e);
    return NULL;
}

/* Frees the header list, wiping the lines that carried secrets. */
static void free_header_list(struct req *r)
{
    for (struct curl_slist *s = r->headers; s; s = s->next) {
        if (strncasecmp(s->data, "X-Amz-Security-Token:", 21) == 0 ||
            strncasecmp(s->data, "Authorization:", 14) == 0)
            OPENSSL_cleanse(s->data, strlen(s->data));
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static void req_free(struct http_engine *e, struct req *r)
{
    if (r->prev_live)
        r->prev_live->next_live = r->next_live;
    else
        e->live = r->next_live;
    if (r->next_live)
        r->next_live->prev_live = r->prev_live;
    e->n_live--;
    free_header_list(r);
    creds_unref(r->creds);
    pace_unref(e, r->pace);
    limiter_unref(e, r->limiter);
    free(r);
}

/* Frees an attempt and its easy handle (not in curl). */
static void attempt_free(struct attempt *at)
{
    if (!at)
        return;
    curl_easy_cleanup(at->easy);
    if (at->in.data)
        OPENSSL_cleanse(at->in.data, at->in.len); /* an STS answer carries a secret */
    buf_cleanup(&at->in);
    free(at);
}

static void free_table(struct hnode **tab, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        while (tab[i]) {
            struct hnode *n = tab[i];
            tab[i] = n->next;
            free(n);
        }
    }
    free(tab);
}

void http_engine_free(struct http_engine *e)
{
    if (!e)
        return;
    while (e->live) {
        struct req *r = e->live;
        if (r->at) {
            curl_multi_remove_handle(e->multi, r->at->easy);
            attempt_free(r->at);
            r->at = NULL;
        }
        req_free(e, r);
    }
    for (int i = 0; i < e->n_pool; i++)
        attempt_free(e->pool[i]);
    free(e->pool);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    if (e->share)
        curl_share_cleanup(e->share);
    if (e->epfd >= 0)
        close(e->epfd);
    free(e->heap);
    free_table(e->pace_tab, e->pace_cap);
    free_table(e->lim_tab, e->lim_cap);
    if (e->line.data)
        OPENSSL_cleanse(e->line.data, e->line.cap);
    buf_cleanup(&e->line);
    sk_X509_pop_free(e->extra_cas, X509_free);
    free(e->user_agent);
    free(e->ca_bundle);
    free(e);
    curl_global_cleanup();
}

void http_engine_set_feeder(struct http_engine *e, http_feed_fn feed, void *ud)
{
    e->feed = feed;
    e->feed_ud = ud;
}

void http_engine_set_refresher(struct http_engine *e, http_refresh_fn refresh, void *ud)
{
    e->refresh = refresh;
    e->refresh_ud = ud;
}

int http_engine_hungry(const struct http_engine *e)
{
    return e->n_ready < (size_t)(e->opt.max_in_flight / 4 + 1);
}

void http_engine_get_stats(const struct http_engine *e, struct http_engine_stats *out)
{
    *out = e->stats;
}

/* ---- submitting ---- */

static int valid_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
            return 0;
    }
    return 1;
}

static int valid_header_value(const char *s)
{
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return 0;
    }
    return 1;
}

struct url_parts {
    const char *authority;
    size_t authority_len; /* the Host header: without the scheme's default port */
    size_t host_len;
    const char *path;
    size_t path_len;
    const char *query; /* NULL when none */
};

static int parse_url(const struct aws_request *req, struct url_parts *u, struct err *err)
{
    const char *url = req->url;
    size_t scheme_len;
    const char *default_port;
    if (strncasecmp(url, "https://", 8) == 0) {
        scheme_len = 8;
        default_port = ":443";
    } else if (strncasecmp(url, "http://", 7) == 0) {
        if (!req->allow_http)
            return err_set(err, ERR_INVALID,
                           "plain http:// refused (only an endpoint override may use it)");
        scheme_len = 7;
        default_port = ":80";
    } else {
        return err_set(err, ERR_INVALID, "URL must be https://");
    }
    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || c == '#')
            return err_set(err, ERR_INVALID, "URL has a space, control character or fragment");
    }
    u->authority = url + scheme_len;
    size_t alen = strcspn(u->authority, "/?");
    if (alen == 0 || memchr(u->authority, '@', alen) || u->authority[0] == ':')
        return err_set(err, ERR_INVALID, "URL has no host (or carries credentials)");
    u->authority_len = alen;
    size_t dl = strlen(default_port);
    if (alen > dl && strncmp(u->authority + alen - dl, default_port, dl) == 0)
        u->authority_len = alen - dl;
    u->host_len = u->authority_len;
    const char *rest = u->authority + alen;
    u->path = rest;
    u->path_len = strcspn(rest, "?");
    u->query = rest[u->path_len] == '?' ? rest + u->path_len + 1 : NULL;
    return 0;
}

static char *arena_put(char **cursor, const char *s, size_t len)
{
    char *p = *cursor;
    memcpy(p, s, len);
    p[len] = '\0';
    *cursor += len + 1;
    return p;
}

int http_submit(struct http_engine *e, const struct aws_request *req, http_done_fn done, void *ud,
                struct err *err)
{
    if (!e || !req || !done)
        return err_set(err, ERR_INVALID, "http_submit: missing engine, request or callback");
    if (!req->url || !valid_token(req->method))
        return err_set(err, ERR_INVALID, "request has no URL or an invalid method");
    for (const char *m = req->method; *m; m++) {
        if (*m < 'A' || *m > 'Z')
            return err_set(err, ERR_INVALID, "request method must be upper case");
    }
    struct url_parts u;
    memset(&u, 0, sizeof u);
    if (parse_url(req, &u, err) < 0)
        return -1;
    const int signed_req = req->creds && req->service;
    if (signed_req && (!req->region || !*req->region || !*req->service))
        return err_set(err, ERR_INVALID, "a signed request needs a service and a region");
    if (req->n_headers && !req->headers)
        return err_set(err, ERR_INVALID, "request has headers but no header list");
    if (req->body_len && !req->body)
        return err_set(err, ERR_INVALID, "request has a body length but no body");

    size_t strings = strlen(req->method) + strlen(req->url) + u.authority_len + u.path_len + 2 +
                     (u.query ? strlen(u.query) : 0) + 8 +
                     (req->service ? strlen(req->service) : 0) +
                     (req->region ? strlen(req->region) : 0) + req->body_len + 1;
    int has_ct = 0, has_accept = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sigv4_header *h = &req->headers[i];
        if (!valid_token(h->name) || !h->value || !valid_header_value(h->value))
            return err_set(err, ERR_INVALID, "header %zu has an invalid name or value", i);
        if (strcasecmp(h->name, "host") == 0 || strcasecmp(h->name, "expect") == 0 ||
            (signed_req &&
             (strcasecmp(h->name, "authorization") == 0 || strcasecmp(h->name, "x-amz-date") == 0 ||
              strcasecmp(h->name, "x-amz-security-token") == 0)))
            return err_set(err, ERR_INVALID, "header %s is set by the engine", h->name);
        has_ct |= strcasecmp(h->name, "content-type") == 0;
        has_accept |= strcasecmp(h->name, "accept") == 0;
        strings += strlen(h->name) + strlen(h->value) + 2;
    }
    size_t n_hdr_slots = 2 * req->n_headers + 3; /* signing list, then the extras themselves */
    struct req *r = calloc(1, sizeof *r + n_hdr_slots * sizeof(struct sigv4_header) + strings);
    if (!r)
        return err_set(err, ERR_NOMEM, "out of memory queueing a request");
    struct pace *pace = NULL;
    if (req->pace_key) {
        pace = pace_get(e, req->pace_key);
        if (!pace) {
            free(r);
            return err_set(err, ERR_NOMEM, "out of memory queueing a request");
        }
        pace->refs++;
    }
    if (e->opt.retry_mode == RETRY_ADAPTIVE) {
        r->limiter = limiter_get(e, req->pace_key, req->service);
        if (!r->limiter) {
            pace_unref(e, pace);
            free(r);
            return err_set(err, ERR_NOMEM, "out of memory queueing a request");
        }
        r->limiter->refs++;
    }
    r->eng = e;
    r->pace = pace;
    r->sign_headers = r->arena;
    char *cur = (char *)(r->arena + n_hdr_slots);
    r->proto = req->protocol;
    r->method = arena_put(&cur, req->method, strlen(req->method));
    r->url = arena_put(&cur, req->url, strlen(req->url));
    r->host = arena_put(&cur, u.authority, u.authority_len);
    r->path = u.path_len ? arena_put(&cur, u.path, u.path_len) : arena_put(&cur, "/", 1);
    r->query = u.query ? arena_put(&cur, u.query, strlen(u.query)) : NULL;
    r->service = req->service ? arena_put(&cur, req->service, strlen(req->service)) : NULL;
    r->region = req->region ? arena_put(&cur, req->region, strlen(req->region)) : NULL;
    struct sigv4_header *extra = r->sign_headers + req->n_headers + 3;
    for (size_t i = 0; i < req->n_headers; i++) {
        extra[i].name = arena_put(&cur, req->headers[i].name, strlen(req->headers[i].name));
        extra[i].value = arena_put(&cur, req->headers[i].value, strlen(req->headers[i].value));
    }
    r->extra = extra;
    r->n_extra = req->n_headers;
    r->body = req->body_len ? arena_put(&cur, req->body, req->body_len) : NULL;
    r->body_len = req->body_len;
    r->allow_http = req->allow_http;
    r->no_retry = req->no_retry;
    r->priority = req->priority != 0;
    r->has_content_type = has_ct;
    r->has_accept = has_accept;
    r->sends_body = !(strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
                      (!r->body && strcmp(r->method, "DELETE") == 0));
    r->creds = signed_req ? creds_ref(req->creds) : NULL;
    r->done = done;
    r->ud = ud;

    r->next_live = e->live;
    if (e->live)
        e->live->prev_live = r;
    e->live = r;
    e->n_live++;
    admit(e, r, r->priority);
    return 0;
}

/* ---- attempts ---- */

/* An idle attempt from the pool, or a new one with its easy handle set up. NULL when out of
 * memory. */
static struct attempt *attempt_get(struct http_engine *e)
{
    if (e->n_pool > 0)
        return e->pool[--e->n_pool];
    struct attempt *at = calloc(1, sizeof *at);
    CURL *c = at ? curl_easy_init() : NULL;
    if (!c) {
        free(at);
        return NULL;
    }
    at->eng = e;
    at->easy = c;
    buf_init(&at->in);
    const struct http_engine_options *o = &e->opt;
    curl_easy_setopt(c, CURLOPT_SHARE, e->share);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_USERAGENT, e->user_agent);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Memory per handle, times max_in_flight: curl's receive buffer (16 KB by default) holds any
     * AWS answer head and most bodies at 8 KB; its upload buffer (64 KB by default, used for every
     * request sent over TLS) at its minimum, 16 KB, still takes a whole request. */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 8192L);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* Certificate verification stays on (curl's default); AWS_CA_BUNDLE only adds trust.
     * Distribution builds also set a CA directory, which turns off curl's cache of the parsed
     * CA store (7.87+): every new connection would parse the whole bundle again (~18 ms here).
     * The bundle file holds the same certificates, so use it alone. */
    if (e->default_cafile_only)
        curl_easy_setopt(c, CURLOPT_CAPATH, (char *)NULL);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, e);
    curl_easy_setopt(c, CURLOPT_PRIVATE, at);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, at);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, at);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, at->curl_error);
    return at;
}

/* Bodies up to this size keep their buffer in the pool; a larger one is not held on to. */
#define POOLED_BODY_MAX ((size_t)64 * 1024)

/* Returns an attempt (out of curl) to the pool, its body wiped. */
static void attempt_put(struct http_engine *e, struct attempt *at)
{
    at->req = NULL;
    if (at->in.data)
        OPENSSL_cleanse(at->in.data, at->in.len); /* an STS answer carries a secret */
    if (at->in.cap > POOLED_BODY_MAX)
        buf_cleanup(&at->in);
    buf_reset(&at->in);
    if (e->n_pool < e->opt.max_in_flight)
        e->pool[e->n_pool++] = at;
    else
        attempt_free(at);
}

static int append_header(struct http_engine *e, struct req *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    buf_reset(&e->line);
    int rc = buf_reserve(&e->line, nl + vl + 2);
    if (rc == 0) { /* by hand: printf's length pass over a 1 KB token costs more than a copy */
        char *p = e->line.data;
        memcpy(p, name, nl);
        p += nl;
        if (vl) {
            *p++ = ':';
            *p++ = ' ';
            memcpy(p, value, vl);
            p += vl;
        } else {
            *p++ = ';'; /* "Name;" sends an empty value */
        }
        *p = '\0';
        e->line.len = (size_t)(p - e->line.data);
    }
    struct curl_slist *l = rc < 0 ? NULL : curl_slist_append(r->headers, e->line.data);
    OPENSSL_cleanse(e->line.data, e->line.len);
    if (!l)
        return -1;
    r->headers = l;
    return 0;
}

/* Builds the header list of one attempt: signed with a fresh X-Amz-Date when the request has
 * credentials. */
static int build_headers(struct http_engine *e, struct req *r, struct err *err)
{
    struct curl_slist *l;
    if (append_header(e, r, "Host", r->host) < 0)
        goto nomem;
    if (r->creds) {
        struct aws_credentials *c = r->creds;
        time_t now = time(NULL);
        char amz_date[SIGV4_AMZ_DATE_LEN + 1];
        sigv4_amz_date(now, amz_date);
        size_t n = 0;
        r->sign_headers[n++] = (struct sigv4_header){"host", r->host};
        r->sign_headers[n++] = (struct sigv4_header){"x-amz-date", amz_date};
        if (c->session_token && *c->session_token)
            r->sign_headers[n++] = (struct sigv4_header){"x-amz-security-token", c->session_token};
        if (r->n_extra)
            memcpy(r->sign_headers + n, r->extra, r->n_extra * sizeof *r->sign_headers);
        struct sigv4_params p = {
            .access_key_id = c->access_key_id,
            .secret_access_key = c->secret_access_key,
            .region = r->region,
            .service = r->service,
            .now = now,
            .cache = &c->key_cache,
        };
        struct sigv4_request sr = {
            .method = r->method,
            .path = r->path,
            .query = r->query,
            .headers = r->sign_headers,
            .n_headers = n + r->n_extra,
            .body = r->body,
            .body_len = r->body_len,
        };
        char auth[2048];
        if (sigv4_authorization(&p, &sr, auth, sizeof auth, err) < 0)
            return -1;
        if (append_header(e, r, "X-Amz-Date", amz_date) < 0 ||
            (n == 3 && append_header(e, r, "X-Amz-Security-Token", c->session_token) < 0) ||
            append_header(e, r, "Authorization", auth) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < r->n_extra; i++) {
        if (append_header(e, r, r->extra[i].name, r->extra[i].value) < 0)
            goto nomem;
    }
    /* No "Expect: 100-continue" round trip, and no headers curl would add on its own. */
    if (!(l = curl_slist_append(r->headers, "Expect:")))
        goto nomem;
    r->headers = l;
    if (!r->has_accept && !(l = curl_slist_append(r->headers, "Accept:")))
        goto nomem;
    r->headers = l;
    if (!r->has_content_type && r->sends_body &&
        !(l = curl_slist_append(r->headers, "Content-Type:")))
        goto nomem;
    r->headers = l;
    return 0;
nomem:
    return err_set(err, ERR_NOMEM, "out of memory building request headers");
}

static void set_method(CURL *c, const struct req *r)
{
    const char *m = r->method;
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L); /* before the method: it resets to GET */
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!r->sends_body) { /* GET, or DELETE without a body */
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(m, "GET") ? m : (char *)NULL);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") ? m : (char *)NULL);
    }
}

static void finish(struct http_engine *e, struct req *r, long status, const struct err *error,
                   struct attempt *at);

/* Starts the next attempt of r in curl; on failure completes r with the error. */
static void start_attempt(struct http_engine *e, struct req *r)
{
    struct err err;
    err_clear(&err);
    if (e->aborting) {
        err = e->abort_err; /* not sent: completed at once */
        release_key_slot(e, r);
        finish(e, r, 0, &err, NULL);
        return;
    }
    r->attempts++;
    r->token_taken = 0;

    struct attempt *at = attempt_get(e);
    if (!at) {
        err_set(&err, ERR_NOMEM, "out of memory creating a curl handle");
        goto fail;
    }
    at->too_large = 0;
    at->nomem = 0;
    at->errortype[0] = '\0';
    at->request_id[0] = '\0';
    at->curl_error[0] = '\0';
    if (build_headers(e, r, &err) < 0) {
        attempt_put(e, at);
        goto fail;
    }
    CURL *c = at->easy;
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, r->allow_http ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    set_method(c, r);
    if (curl_multi_add_handle(e->multi, c) != CURLM_OK) {
        free_header_list(r);
        attempt_put(e, at);
        err_set(&err, ERR_CONNECT, "curl refused the transfer");
        goto fail;
    }
    at->req = r;
    r->at = at;
    e->in_flight++;
    e->stats.attempts++;
    return;
fail:
    release_key_slot(e, r);
    finish(e, r, 0, &err, NULL);
}

static void dispatch(struct http_engine *e)
{
    while (e->in_flight < e->opt.max_in_flight && e->ready_head) {
        e->n_ready--;
        start_attempt(e, queue_pop(&e->ready_head, &e->ready_tail));
    }
}

static const char *curl_code(CURLcode rc, int *fatal)
{
    *fatal = 0;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ERR_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        *fatal = 1;
        return ERR_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        *fatal = 1;
        return ERR_INVALID;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        /* a certificate that does not verify will not verify on the next attempt either */
        *fatal = 1;
        return ERR_CONNECT;
    default:
        return ERR_CONNECT;
    }
}

/* Completes r: its callback gets the answer (the body of at, which then goes back to the pool). */
static void finish(struct http_engine *e, struct req *r, long status, const struct err *error,
                   struct attempt *at)
{
    struct aws_response resp;
    memset(&resp, 0, sizeof resp);
    if (error)
        resp.err = *error;
    resp.status = status;
    resp.body = at && at->in.data ? at->in.data : "";
    resp.body_len = at ? at->in.len : 0;
    resp.attempts = r->attempts;
    e->stats.requests++;
    if (err_isset(&resp.err))
        e->stats.failures++;
    r->done(r->ud, &resp);
    req_free(e, r);
    if (at)
        attempt_put(e, at);
}

/* The refresher's answer for r: sent again at once with the fresh credentials, or completed
 * with the refresher's error. */
static void on_refreshed(void *cookie, struct aws_credentials *fresh, const struct err *fe)
{
    struct req *r = cookie;
    struct http_engine *e = r->eng;
    e->n_refreshing--;
    if (!fresh) {
        struct err ce;
        if (fe && err_isset(fe))
            ce = *fe;
        else
            err_set(&ce, ERR_INVALID, "no credentials");
        err_prefix(&ce, "refreshing expired credentials: ");
        finish(e, r, 0, &ce, NULL);
        return;
    }
    creds_unref(r->creds);
    r->creds = fresh; /* takes the new reference */
    e->stats.refreshes++;
    log_debug("http", "%s %s %s: credentials refreshed; sending again",
              r->service ? r->service : "unsigned", r->method, r->host);
    admit(e, r, 1);
}

/* After an expired-credentials answer: asks the owner's refresher, once per request, for fresh
 * credentials. 0 when r now waits for them (or was already completed by the refresher's
 * answer); -1 when there is no refresh (no refresher, unsigned, refreshed before, or the
 * refresher has none): the caller goes on with the answer's error, which is not retryable. */
static int refresh_credentials(struct http_engine *e, struct req *r)
{
    if (!e->refresh || !r->creds || r->refreshed)
        return -1;
    r->refreshed = 1;
    e->n_refreshing++;
    if (e->refresh(e->refresh_ud, r->pace ? r->pace->key : NULL, r->creds, on_refreshed, r) < 0) {
        e->n_refreshing--;
        return -1;
    }
    return 0;
}

static void attempt_done(struct http_engine *e, struct req *r, CURLcode rc)
{
    struct attempt *at = r->at;
    long status = 0;
    curl_easy_getinfo(at->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(e->multi, at->easy);
    r->at = NULL;
    free_header_list(r);
    e->in_flight--;
    release_key_slot(e, r);
    e->stats.bytes_in += at->in.len;

    struct err ae;
    err_clear(&ae);
    int fatal = 0, conn_error = 0;
    /* What arrived of a body that was cut off is no answer: nobody gets to parse half of it. */
    if (at->too_large || at->nomem || rc == CURLE_FILESIZE_EXCEEDED)
        buf_reset(&at->in);
    if (at->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        err_set(&ae, ERR_TOO_LARGE, "response body exceeds %zu bytes", e->opt.max_body);
        fatal = 1;
    } else if (at->nomem) {
        err_set(&ae, ERR_NOMEM, "out of memory reading the response body");
        fatal = 1;
    } else if (rc != CURLE_OK) {
        const char *code = curl_code(rc, &fatal);
        conn_error = 1;
        /* curl's messages name host and port, never the path, query or headers */
        err_set(&ae, code, "%s %s: %s%s%.300s", r->method, r->host, curl_easy_strerror(rc),
                at->curl_error[0] ? ": " : "", at->curl_error);
    } else if (status < 200 || status > 299) {
        awserr_decode(r->proto, status, at->errortype[0] ? at->errortype : NULL,
                      at->request_id[0] ? at->request_id : NULL, at->in.data ? at->in.data : "",
                      at->in.len, &ae);
    }
    if (err_isset(&ae)) {
        ae.http_status = status;
        if (!ae.request_id[0] && at->request_id[0])
            snprintf(ae.request_id, sizeof ae.request_id, "%s", at->request_id);
    }
    const int ok = !err_isset(&ae);
    const int throttle = !ok && !conn_error && awserr_is_throttle(ae.code, status);
    if (throttle)
        e->stats.throttles++;
    if (r->limiter)
        limiter_on_response(r->limiter, throttle, now_s());
    if (log_enabled(LOG_DEBUG))
        log_debug("http", "%s %s %s%s%s%s -> %ld %s (attempt %d)",
                  r->service ? r->service : "unsigned", r->method, r->host, r->path,
                  r->query ? "?" : "", r->query ? r->query : "", status, ok ? "ok" : ae.code,
                  r->attempts);

    int *quota = r->pace ? &r->pace->quota : &e->quota;
    if (ok) {
        if (e->opt.retry_mode != RETRY_LEGACY) {
            *quota += r->retry_cost ? r->retry_cost : QUOTA_NO_RETRY_INCREMENT;
            if (*quota > QUOTA_MAX)
                *quota = QUOTA_MAX;
        }
        finish(e, r, status, NULL, at);
        return;
    }

    if (!conn_error && awserr_is_expired_credentials(ae.code)) {
        e->stats.expired++;
        if (refresh_credentials(e, r) == 0) {
            attempt_put(e, at);
            return;
        }
    }

    int retryable = !fatal && !r->no_retry &&
                    (throttle || awserr_is_transient(ae.code, conn_error ? 0 : status));
    if (retryable && r->attempts - r->refreshed < e->opt.max_attempts) {
        int cost = conn_error ? QUOTA_TIMEOUT_RETRY_COST : QUOTA_RETRY_COST;
        if (e->opt.retry_mode != RETRY_LEGACY && *quota < cost) {
            e->stats.quota_refusals++;
            log_debug("http", "retry quota exhausted; not retrying %s %s", r->method, r->host);
        } else {
            if (e->opt.retry_mode != RETRY_LEGACY) {
                *quota -= cost;
                r->retry_cost = cost;
            }
            long delay = http_backoff_ms(r->attempts - r->refreshed, rand01(e));
            if (e->opt.on_retry)
                e->opt.on_retry(e->opt.on_retry_ud, r->attempts, delay, &ae);
            e->stats.retries++;
            if (heap_push(e, r, now_ms() + (uint64_t)delay) == 0) {
                attempt_put(e, at);
                return;
            }
        }
    }
    finish(e, r, status, &ae, at);
}

/* ---- the loop ---- */

static void process_completions(struct http_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *c = msg->easy_handle;
        CURLcode rc = msg->data.result; /* msg is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(c, CURLINFO_PRIVATE, &priv);
        struct attempt *at = (struct attempt *)(void *)priv;
        if (at && at->req)
            attempt_done(e, at->req, rc);
    }
}

static void promote_due(struct http_engine *e)
{
    if (!e->heap_len)
        return;
    uint64_t now = now_ms();
    while (e->heap_len && (e->aborting || e->heap[0]->due_ms <= now))
        admit(e, heap_pop(e), 1);
}

void http_engine_set_tick(struct http_engine *e, http_tick_fn tick, void *ud)
{
    e->tick = tick;
    e->tick_ud = ud;
}

void http_engine_abort(struct http_engine *e, const struct err *why)
{
    if (e->aborting)
        return;
    e->aborting = 1;
    e->abort_err = *why;
    /* the attempts in curl are taken out and their requests completed; those queued, waiting
     * for a retry, a rate limit or a key's slot complete as the loop reaches them (start_attempt,
     * promote_due), without being sent */
    for (;;) {
        struct req *r = e->live;
        while (r && !r->at)
            r = r->next_live;
        if (!r)
            break;
        struct attempt *at = r->at;
        curl_multi_remove_handle(e->multi, at->easy);
        r->at = NULL;
        free_header_list(r);
        e->in_flight--;
        release_key_slot(e, r);
        buf_reset(&at->in);
        finish(e, r, 0, &e->abort_err, at); /* may submit: that completes at once too */
    }
}

void http_engine_cancel(struct http_engine *e)
{
    while (e->live) {
        struct req *r = e->live;
        if (r->at) {
            curl_multi_remove_handle(e->multi, r->at->easy);
            attempt_free(r->at);
            r->at = NULL;
            e->in_flight--;
        }
        req_free(e, r);
    }
    e->ready_head = e->ready_tail = NULL;
    e->n_ready = 0;
    e->heap_len = 0;
    e->n_refreshing = 0;
}

static int socket_action(struct http_engine *e, curl_socket_t fd, int flags, struct err *err)
{
    int running;
    CURLMcode mc = curl_multi_socket_action(e->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        return err_set(err, ERR_CONNECT, "curl multi failed: %s", curl_multi_strerror(mc));
    return 0;
}

/* Runs until *until becomes nonzero, or (until NULL) until no request is left. */
static int engine_loop(struct http_engine *e, const int *until, struct err *err)
{
    struct epoll_event evs[64];
    if (e->running)
        return err_set(err, ERR_INVALID, "the HTTP engine is already running (callback?)");
    e->running = 1;
    int rc = 0;
    for (;;) {
        if (e->tick)
            e->tick(e->tick_ud);
        promote_due(e);
        if (e->feed && http_engine_hungry(e))
            e->feed(e->feed_ud);
        dispatch(e);
        if (until ? *until : e->n_live == 0)
            break;
        uint64_t now = now_ms();
        long wait = -1;
        if (e->timer_set)
            wait = e->timer_due <= now ? 0 : (long)(e->timer_due - now);
        if (e->heap_len) {
            long d = e->heap[0]->due_ms <= now ? 0 : (long)(e->heap[0]->due_ms - now);
            if (wait < 0 || d < wait)
                wait = d;
        }
        if (wait < 0 && e->in_flight == 0) {
            rc = err_set(err, ERR_INVALID,
                         "HTTP engine stalled with %zu requests (%zu waiting for credentials)",
                         e->n_live, e->n_refreshing);
            break;
        }
        if (wait < 0 || wait > 1000)
            wait = 1000; /* belt and braces: never sleep long on a missed timer */
        int n = epoll_wait(e->epfd, evs, (int)(sizeof evs / sizeof evs[0]), (int)wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = err_set(err, ERR_IO, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            int flags = 0;
            if (evs[i].events & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            rc = socket_action(e, evs[i].data.fd, flags, err);
        }
        if (rc == 0 && e->timer_set && now_ms() >= e->timer_due) {
            e->timer_set = 0; /* one-shot: curl re-arms it if it wants another call */
            rc = socket_action(e, CURL_SOCKET_TIMEOUT, 0, err);
        }
        process_completions(e);
        if (rc < 0)
            break;
    }
    if (e->n_live == 0)
        e->aborting = 0; /* every aborted request is completed: the engine can be used again */
    e->running = 0;
    return rc;
}

int http_engine_run(struct http_engine *e, struct err *err)
{
    if (!e)
        return err_set(err, ERR_INVALID, "no HTTP engine");
    return engine_loop(e, NULL, err);
}

struct perform_ctx {
    struct buf *body;
    long *status;
    struct err *err;
    int done;
    int rc;
};

static void perform_done(void *ud, const struct aws_response *resp)
{
    struct perform_ctx *ctx = ud;
    ctx->done = 1;
    if (ctx->status)
        *ctx->status = resp->status;
    if (err_isset(&resp->err)) {
        if (ctx->err)
            *ctx->err = resp->err;
        ctx->rc = -1;
        return;
    }
    ctx->rc = 0;
    if (ctx->body) {
        buf_reset(ctx->body);
        if (buf_append(ctx->body, resp->body, resp->body_len) < 0)
            ctx->rc = err_set(ctx->err, ERR_NOMEM, "out of memory copying the response body");
    }
}

static void ignore_done(void *ud, const struct aws_response *resp)
{
    (void)ud;
    (void)resp;
}

int http_perform(struct http_engine *e, const struct aws_request *req, struct buf *body,
                 long *status, struct err *err)
{
    if (status)
        *status = 0;
    if (!e)
        return err_set(err, ERR_INVALID, "no HTTP engine");
    if (e->running)
        return err_set(err, ERR_INVALID, "http_perform called from inside a done callback");
    struct perform_ctx ctx = {body, status, err, 0, -1};
    if (http_submit(e, req, perform_done, &ctx, err) < 0)
        return -1;
    if (engine_loop(e, &ctx.done, err) < 0) {
        /* the engine broke: the request must not call back into this stack frame later */
        for (struct req *r = e->live; r; r = r->next_live) {
            if (r->ud == &ctx)
                r->done = ignore_done;
        }
        return -1;
    }
    return ctx.rc;
}
