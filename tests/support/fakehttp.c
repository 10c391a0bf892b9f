/* fakehttp.c - a scripted HTTP/1.1 (optionally TLS) server on 127.0.0.1 for the tests: an accept
 * thread, one thread per connection with keep-alive, a handler that decides every answer, and
 * faults on demand (reset, truncated body, hang). fakehttp_stop() tears everything down. */
#include "tests/support/fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FH_MAX_HEADER_BYTES (64 * 1024)
#define FH_MAX_BODY_BYTES (16 * 1024 * 1024)

struct fh_conn {
    struct fakehttp *srv;
    int fd; /* -1 once closed; guarded by srv->mu */
    SSL *ssl;
    int seq;
    int finished; /* thread is about to return; guarded by srv->mu */
    pthread_t thread;
    struct fh_conn *next;
    /* receive buffer (bytes read but not yet consumed) */
    char *in;
    size_t in_len, in_cap;
};

struct fakehttp {
    int lfd;
    int port;
    char url[64];
    fakehttp_handler_fn handler;
    void *ud;
    SSL_CTX *ssl_ctx;
    pthread_t accept_thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled when stopping (wakes delays) */
    int stopping;
    int n_requests;
    int n_connections;
    char **texts; /* raw text of each request, by seq */
    size_t n_texts, cap_texts;
    struct fh_conn *conns;
};

/* ---- small helpers ---- */

static void fh_sleep_ms(struct fakehttp *s, int ms)
{
    if (ms <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        if (pthread_cond_timedwait(&s->cond, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

static int fh_stopping(struct fakehttp *s)
{
    pthread_mutex_lock(&s->mu);
    int st = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static long fh_read(struct fh_conn *c, void *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, n > 65536 ? 65536 : (int)n);
        return r > 0 ? r : -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r > 0 ? (long)r : -1;
    }
}

static int fh_write_all(struct fh_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        long w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, p, n > 65536 ? 65536 : (int)n);
            w = r > 0 ? r : -1;
        } else {
            ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
            if (r < 0 && errno == EINTR)
                continue;
            w = r;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into c->in; -1 on EOF/error. */
static int fh_fill(struct fh_conn *c)
{
    if (c->in_cap - c->in_len < 4096) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
        char *p = realloc(c->in, cap);
        if (!p)
            return -1;
        c->in = p;
        c->in_cap = cap;
    }
    long r = fh_read(c, c->in + c->in_len, c->in_cap - c->in_len - 1);
    if (r <= 0)
        return -1;
    c->in_len += (size_t)r;
    c->in[c->in_len] = '\0';
    return 0;
}

static const char *fh_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* Case-insensitive search for header `name` in a raw header block; copies its value. */
static int fh_header_value(const char *headers, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = headers;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        if (!*eol)
            break;
        p = eol + 2;
    }
    return 0;
}

static void fh_close_conn(struct fh_conn *c, int reset)
{
    struct fakehttp *s = c->srv;
    if (c->ssl && !reset)
        SSL_shutdown(c->ssl);
    pthread_mutex_lock(&s->mu);
    if (c->fd >= 0) {
        if (reset) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c->fd);
        c->fd = -1;
    }
    pthread_mutex_unlock(&s->mu);
}

static void fh_record(struct fakehttp *s, const char *raw, size_t raw_len, int *seq)
{
    char *copy = malloc(raw_len + 1);
    if (copy) {
        memcpy(copy, raw, raw_len);
        copy[raw_len] = '\0';
    }
    pthread_mutex_lock(&s->mu);
    *seq = s->n_requests++;
    if (s->n_texts == s->cap_texts) {
        size_t cap = s->cap_texts ? s->cap_texts * 2 : 64;
        char **t = realloc(s->texts, cap * sizeof *t);
        if (t) {
            s->texts = t;
            s->cap_texts = cap;
        }
    }
    if (s->n_texts < s->cap_texts)
        s->texts[s->n_texts++] = copy;
    else
        free(copy);
    pthread_mutex_unlock(&s->mu);
}

/* Serves one request from the buffer; 1 to keep the connection, 0 to end it (closed here). */
static int fh_serve_one(struct fh_conn *c)
{
    struct fakehttp *s = c->srv;
    char *end;
    while (!(end = strstr(c->in ? c->in : "", "\r\n\r\n"))) {
        if (c->in_len > FH_MAX_HEADER_BYTES || fh_fill(c) < 0) {
            fh_close_conn(c, 0);
            return 0;
        }
    }
    size_t head_len = (size_t)(end - c->in) + 4;

    /* request line */
    char *line_end = strstr(c->in, "\r\n");
    char method[16] = "", target[4096] = "";
    {
        const char *sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || (size_t)(sp1 - c->in) >= sizeof method ||
            (size_t)(sp2 - sp1 - 1) >= sizeof target) {
            fh_close_conn(c, 0);
            return 0;
        }
        memcpy(method, c->in, (size_t)(sp1 - c->in));
        memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    }
    size_t hdr_off = (size_t)(line_end - c->in) + 2;
    size_t hdr_len = head_len - 2 - hdr_off; /* keeps each line's CRLF, drops the blank line */
    char *headers = malloc(hdr_len + 1);
    if (!headers) {
        fh_close_conn(c, 0);
        return 0;
    }
    memcpy(headers, c->in + hdr_off, hdr_len);
    headers[hdr_len] = '\0';

    char val[64];
    size_t body_len = 0;
    if (fh_header_value(headers, "Content-Length", val, sizeof val))
        body_len = (size_t)strtoull(val, NULL, 10);
    int client_close =
        fh_header_value(headers, "Connection", val, sizeof val) && strcasecmp(val, "close") == 0;
    if (body_len > FH_MAX_BODY_BYTES) {
        free(headers);
        fh_close_conn(c, 0);
        return 0;
    }
    while (c->in_len < head_len + body_len) {
        if (fh_fill(c) < 0) {
            free(headers);
            fh_close_conn(c, 0);
            return 0;
        }
    }

    struct fakehttp_req req = {0};
    char *body = malloc(body_len + 1);
    if (!body) {
        free(headers);
        fh_close_conn(c, 0);
        return 0;
    }
    memcpy(body, c->in + head_len, body_len);
    body[body_len] = '\0';
    fh_record(s, c->in, head_len + body_len, &req.seq);
    req.method = method;
    req.target = target;
    req.headers = headers;
    req.body = body;
    req.body_len = body_len;
    req.conn_seq = c->seq;

    /* consume */
    memmove(c->in, c->in + head_len + body_len, c->in_len - head_len - body_len);
    c->in_len -= head_len + body_len;
    c->in[c->in_len] = '\0';

    struct fakehttp_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    s->handler(s->ud, &req, &resp);
    free(headers);
    free(body);

    int keep = 0;
    switch (resp.action) {
    case FAKEHTTP_RESET:
        fh_sleep_ms(s, resp.delay_ms);
        fh_close_conn(c, 1);
        break;
    case FAKEHTTP_HANG:
        fh_sleep_ms(s, resp.delay_ms);
        fh_close_conn(c, 0);
        break;
    case FAKEHTTP_RESPOND:
    case FAKEHTTP_TRUNCATE: {
        fh_sleep_ms(s, resp.delay_ms);
        size_t blen = resp.body ? strlen(resp.body) : 0;
        int status = resp.status ? resp.status : 200;
        /* A handler that sets Transfer-Encoding gets a chunked body (one chunk), so that clients
         * meet a body of unannounced size. */
        int chunked = fh_header_value(resp.headers, "Transfer-Encoding", val, sizeof val);
        char head[2048];
        int n;
        if (chunked)
            n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s\r\n%zx\r\n", status,
                         fh_reason(status), resp.headers, blen);
        else
            n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n",
                         status, fh_reason(status), blen, resp.headers);
        if (n < 0 || (size_t)n >= sizeof head) {
            fh_close_conn(c, 1);
            break;
        }
        size_t send_len = resp.action == FAKEHTTP_TRUNCATE ? blen / 2 : blen;
        int server_close = fh_header_value(resp.headers, "Connection", val, sizeof val) &&
                           strcasecmp(val, "close") == 0;
        if (fh_write_all(c, head, (size_t)n) < 0 ||
            (send_len && fh_write_all(c, resp.body, send_len) < 0) ||
            (chunked && resp.action != FAKEHTTP_TRUNCATE &&
             fh_write_all(c, blen ? "\r\n0\r\n\r\n" : "\r\n", blen ? 7 : 2) < 0)) {
            fh_close_conn(c, 0);
            break;
        }
        if (resp.action == FAKEHTTP_TRUNCATE || server_close || client_close) {
            fh_close_conn(c, 0);
            break;
        }
        keep = 1;
        break;
    }
    }
    free(resp.body);
    return keep;
}

static void *fh_conn_main(void *arg)
{
    struct fh_conn *c = arg;
    struct fakehttp *s = c->srv;
    int ok = 1;
    if (s->ssl_ctx) {
        c->ssl = SSL_new(s->ssl_ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_accept(c->ssl) != 1) {
            ERR_clear_error();
            fh_close_conn(c, 0);
            ok = 0;
        }
    }
    while (ok && !fh_stopping(s) && fh_serve_one(c))
        ;
    fh_close_conn(c, 0);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    ERR_clear_error();
    free(c->in);
    c->in = NULL;
    pthread_mutex_lock(&s->mu);
    c->finished = 1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Joins the threads of connections that have ended (keeps memory flat in long tests). */
static void fh_reap(struct fakehttp *s, int all)
{
    for (;;) {
        struct fh_conn *victim = NULL;
        pthread_mutex_lock(&s->mu);
        for (struct fh_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
            if (all || (*pp)->finished) {
                victim = *pp;
                *pp = victim->next;
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim)
            return;
        pthread_join(victim->thread, NULL);
        free(victim);
    }
}

static void *fh_accept_main(void *arg)
{
    struct fakehttp *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (fh_stopping(s))
                break;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                fh_reap(s, 0);
                fh_sleep_ms(s, 10);
                continue;
            }
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fh_reap(s, 0);
        struct fh_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            break;
        }
        c->seq = s->n_connections++;
        if (pthread_create(&c->thread, NULL, fh_conn_main, c) != 0) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

struct fakehttp *fakehttp_start(fakehttp_handler_fn handler, void *ud, const char *cert_file,
                                const char *key_file)
{
    if (!handler || (!cert_file) != (!key_file)) {
        fprintf(stderr, "fakehttp: handler required; cert and key go together\n");
        return NULL;
    }
    /* A peer that has gone must not kill the test process from inside SSL_write/write. */
    signal(SIGPIPE, SIG_IGN);
    struct fakehttp *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lfd = -1;
    s->handler = handler;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);

    if (cert_file) {
        s->ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!s->ssl_ctx || SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(s->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
            fprintf(stderr, "fakehttp: cannot load certificate %s / key %s\n", cert_file, key_file);
            ERR_clear_error();
            goto fail;
        }
    }

    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
        perror("fakehttp: socket");
        goto fail;
    }
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof sa;
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s->lfd, 512) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        perror("fakehttp: bind/listen");
        goto fail;
    }
    s->port = ntohs(sa.sin_port);
    snprintf(s->url, sizeof s->url, "%s://%s:%d", cert_file ? "https" : "http",
             cert_file ? "localhost" : "127.0.0.1", s->port);
    if (pthread_create(&s->accept_thread, NULL, fh_accept_main, s) != 0) {
        fprintf(stderr, "fakehttp: pthread_create failed\n");
        goto fail;
    }
    return s;

fail:
    if (s->lfd >= 0)
        close(s->lfd);
    SSL_CTX_free(s->ssl_ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    return NULL;
}

int fakehttp_port(const struct fakehttp *s)
{
    return s->port;
}

const char *fakehttp_url(const struct fakehttp *s)
{
    return s->url;
}

int fakehttp_requests(const struct fakehttp *s)
{
    struct fakehttp *m = (struct fakehttp *)s;
    pthread_mutex_lock(&m->mu);
    int n = m->n_requests;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int fakehttp_connections(const struct fakehttp *s)
{
    struct fakehttp *m = (struct fakehttp *)s;
    pthread_mutex_lock(&m->mu);
    int n = m->n_connections;
    pthread_mutex_unlock(&m->mu);
    return n;
}

char *fakehttp_request_text(struct fakehttp *s, int i)
{
    char *out = NULL;
    pthread_mutex_lock(&s->mu);
    if (i >= 0 && (size_t)i < s->n_texts && s->texts[i])
        out = strdup(s->texts[i]);
    pthread_mutex_unlock(&s->mu);
    return out;
}

void fakehttp_stop(struct fakehttp *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    /* shutdown() wakes accept() and every blocked recv()/SSL_read(); the fds stay valid (they
     * are closed by their owners) so nothing else can be handed the same number meanwhile. */
    shutdown(s->lfd, SHUT_RDWR);
    for (struct fh_conn *c = s->conns; c; c = c->next) {
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->accept_thread, NULL);
    /* The accept thread is gone: no new connection can appear. Shut down again the ones that
     * were accepted between the first pass and the accept thread noticing. */
    pthread_mutex_lock(&s->mu);
    for (struct fh_conn *c = s->conns; c; c = c->next) {
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->mu);
    fh_reap(s, 1);
    close(s->lfd);
    for (size_t i = 0; i < s->n_texts; i++)
        free(s->texts[i]);
    free(s->texts);
    SSL_CTX_free(s->ssl_ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

void fakehttp_respond(struct fakehttp_resp *resp, int status, const char *extra_headers,
                      const char *body)
{
    resp->action = FAKEHTTP_RESPOND;
    resp->status = status;
    snprintf(resp->headers, sizeof resp->headers, "%s", extra_headers ? extra_headers : "");
    free(resp->body);
    resp->body = body ? strdup(body) : NULL;
}
