/* server.c - the event loops of the fake: one epoll loop per thread with its own SO_REUSEPORT
 * listening socket, non-blocking sockets (OpenSSL non-blocking when TLS is on), HTTP/1.1 with
 * Content-Length bodies and keep-alive, and a min-heap of answers waiting for their latency: a
 * delayed answer never blocks anything else. */
#define _GNU_SOURCE /* accept4, memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/fakeaws/fakeaws.h"

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (1024 * 1024)
#define READ_CHUNK (16 * 1024)
#define MAX_EVENTS 256

enum conn_state { C_READING = 0, C_WAITING, C_WRITING };

struct conn {
    int fd;
    SSL *ssl;
    int handshake_done;
    enum conn_state state;
    struct buf in;
    size_t head_len; /* 0 until the head of the current request is complete */
    size_t body_len;
    int keep_alive;
    struct buf out;
    size_t out_off, out_end;
    size_t req_len; /* bytes of in taken by the request being answered */
    enum fa_action action;
    int close_after;
    uint64_t due_us;
    size_t heap_idx; /* SIZE_MAX when not waiting */
    struct conn *prev, *next;
};

struct loop {
    struct fa_server *srv;
    struct fa_worker w;
    int epfd, lfd, evfd;
    pthread_t thread;
    int started;
    struct conn **heap;
    size_t heap_n, heap_cap;
    size_t n_conns;
    struct conn *conns;
};

struct fa_server {
    struct fa_app *app;
    SSL_CTX *tls;
    struct loop *loops;
    int n_loops;
    int port;
    atomic_int stop;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the timer heap (answers waiting for their time) ---- */

static void heap_swap(struct loop *L, size_t a, size_t b)
{
    struct conn *t = L->heap[a];
    L->heap[a] = L->heap[b];
    L->heap[b] = t;
    L->heap[a]->heap_idx = a;
    L->heap[b]->heap_idx = b;
}

static void heap_up(struct loop *L, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (L->heap[p]->due_us <= L->heap[i]->due_us)
            break;
        heap_swap(L, p, i);
        i = p;
    }
}

static void heap_down(struct loop *L, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < L->heap_n && L->heap[l]->due_us < L->heap[m]->due_us)
            m = l;
        if (r < L->heap_n && L->heap[r]->due_us < L->heap[m]->due_us)
            m = r;
        if (m == i)
            return;
        heap_swap(L, i, m);
        i = m;
    }
}

static int heap_push(struct loop *L, struct conn *c)
{
    if (L->heap_n == L->heap_cap) {
        size_t ncap = L->heap_cap ? L->heap_cap * 2 : 256;
        struct conn **g = realloc(L->heap, ncap * sizeof *g);
        if (!g)
            return -1;
        L->heap = g;
        L->heap_cap = ncap;
    }
    c->heap_idx = L->heap_n;
    L->heap[L->heap_n++] = c;
    heap_up(L, c->heap_idx);
    return 0;
}

static void heap_remove(struct loop *L, struct conn *c)
{
    size_t i = c->heap_idx;
    if (i == SIZE_MAX)
        return;
    c->heap_idx = SIZE_MAX;
    L->heap_n--;
    if (i == L->heap_n)
        return;
    L->heap[i] = L->heap[L->heap_n];
    L->heap[i]->heap_idx = i;
    heap_up(L, i);
    heap_down(L, L->heap[i]->heap_idx);
}

/* ---- connections ---- */

static void conn_close(struct loop *L, struct conn *c, int reset)
{
    heap_remove(L, c);
    if (reset) {
        struct linger lg = {1, 0}; /* RST instead of FIN */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (c->ssl) {
        if (!reset && c->handshake_done)
            SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(c->ssl);
    }
    close(c->fd);
    buf_cleanup(&c->in);
    buf_cleanup(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        L->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    L->n_conns--;
    free(c);
}

/* >0 bytes read, 0 would block, -1 closed or failed */
static long conn_read(struct conn *c, char *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0)
            return (long)r;
        if (r == 0)
            return -1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

static long conn_write(struct conn *c, const char *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    for (;;) {
        ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
        if (r >= 0)
            return r > 0 ? (long)r : 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* A protocol-level refusal (not an AWS answer): written, then the connection is closed. */
static void conn_refuse(struct conn *c, int status, const char *reason)
{
    buf_reset(&c->out);
    fa_printf(&c->out,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s\n",
              status, reason, strlen(reason) + 1, reason);
    c->out_off = 0;
    c->out_end = c->out.len;
    c->action = FA_ACT_RESPOND;
    c->close_after = 1;
    c->state = C_WRITING;
}

static int token_eq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

/* Finds the end of the head and the Content-Length without touching the buffer. 1 when the head
 * is complete, 0 when more is needed, -1 after a refusal was queued. */
static int scan_head(struct conn *c)
{
    const char *d = c->in.data;
    const char *end = memmem(d, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > MAX_HEAD) {
            conn_refuse(c, 431, "Request Header Fields Too Large");
            return -1;
        }
        return 0;
    }
    c->head_len = (size_t)(end - d) + 4;
    c->body_len = 0;
    if (c->head_len > MAX_HEAD) {
        conn_refuse(c, 431, "Request Header Fields Too Large");
        return -1;
    }
    const char *line = memchr(d, '\n', c->head_len);
    c->keep_alive = line && line - d >= 9 && memcmp(line - 9, "HTTP/1.1", 8) == 0;
    while (line && line + 1 < d + c->head_len - 2) {
        const char *name = line + 1;
        const char *eol = memchr(name, '\n', (size_t)(d + c->head_len - name));
        const char *colon = memchr(name, ':', (size_t)(eol - name));
        if (!colon) {
            conn_refuse(c, 400, "Bad Request");
            return -1;
        }
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        size_t nlen = (size_t)(colon - name);
        if (token_eq(name, nlen, "content-length")) {
            size_t n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || n > MAX_BODY) {
                    conn_refuse(c, 413, "Payload Too Large");
                    return -1;
                }
                n = n * 10 + (size_t)(v[i] - '0');
            }
            if (n > MAX_BODY) {
                conn_refuse(c, 413, "Payload Too Large");
                return -1;
            }
            c->body_len = n;
        } else if (token_eq(name, nlen, "transfer-encoding")) {
            conn_refuse(c, 501, "Transfer-Encoding not supported: send a Content-Length");
            return -1;
        } else if (token_eq(name, nlen, "connection")) {
            if (token_eq(v, vlen, "close"))
                c->keep_alive = 0;
            else if (token_eq(v, vlen, "keep-alive"))
                c->keep_alive = 1;
        }
        line = eol;
    }
    return 1;
}

/* Splits the complete head in place into req (NULs over CR, ':' and the spaces). */
static int parse_head(struct conn *c, struct fa_request *req)
{
    char *d = c->in.data;
    char *hend = d + c->head_len - 2; /* the final CRLF */
    memset(req, 0, sizeof *req);
    char *eol = memchr(d, '\r', (size_t)(hend - d));
    if (!eol)
        return -1;
    *eol = '\0';
    char *sp1 = strchr(d, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == d || sp2 == sp1 + 1 || sp1[1] != '/')
        return -1;
    *sp1 = '\0';
    *sp2 = '\0';
    req->method = d;
    req->path = sp1 + 1;
    char *q = strchr(sp1 + 1, '?');
    if (q) {
        *q = '\0';
        req->query = q + 1;
    }
    char *p = eol + 2;
    while (p < hend) {
        char *e = memchr(p, '\r', (size_t)(hend - p));
        if (!e)
            e = hend;
        *e = '\0';
        char *colon = strchr(p, ':');
        if (colon && req->n_headers < FA_MAX_HEADERS) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                v[--vl] = '\0';
            req->headers[req->n_headers].name = p;
            req->headers[req->n_headers].value = v;
            req->n_headers++;
        }
        p = e + 2;
    }
    req->body = d + c->head_len;
    req->body_len = c->body_len;
    return 0;
}

/* Answers the request at the front of c->in when it is complete. 1: an answer is queued (state
 * changed), 0: more bytes are needed. */
static int try_request(struct loop *L, struct conn *c)
{
    if (!c->head_len) {
        int r = c->in.len ? scan_head(c) : 0;
        if (r <= 0)
            return r < 0;
    }
    if (c->in.len < c->head_len + c->body_len)
        return 0;
    struct fa_request req;
    struct fa_response resp;
    memset(&resp, 0, sizeof resp);
    c->req_len = c->head_len + c->body_len;
    if (parse_head(c, &req) < 0) {
        conn_refuse(c, 400, "Bad Request");
        return 1;
    }
    resp.close = !c->keep_alive;
    api_handle(&L->w, &req, &c->out, &resp);
    c->head_len = 0;
    c->action = resp.action;
    c->close_after = resp.close;
    c->out_off = 0;
    c->out_end = resp.action == FA_ACT_TRUNCATE ? resp.head_len + (c->out.len - resp.head_len) / 2
                                                : c->out.len;
    if (resp.delay_ms > 0) {
        c->due_us = now_us() + (uint64_t)resp.delay_ms * 1000u;
        c->state = C_WAITING;
        if (heap_push(L, c) < 0)
            c->state = C_WRITING; /* out of memory: answer now rather than never */
    } else {
        c->state = C_WRITING;
    }
    return 1;
}

/* Moves the connection forward as far as it goes without blocking. May free c. */
static void conn_progress(struct loop *L, struct conn *c)
{
    struct fa_app *app = L->srv->app;
    for (;;) {
        if (c->ssl && !c->handshake_done) {
            int r = SSL_accept(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                ERR_clear_error();
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    conn_close(L, c, 0);
                return;
            }
            c->handshake_done = 1;
            atomic_fetch_add_explicit(&app->stats.tls_handshakes, 1, memory_order_relaxed);
            if (SSL_session_reused(c->ssl))
                atomic_fetch_add_explicit(&app->stats.tls_resumed, 1, memory_order_relaxed);
        }
        if (c->state == C_WRITING) {
            if (c->action == FA_ACT_RESET) {
                conn_close(L, c, 1);
                return;
            }
            while (c->out_off < c->out_end) {
                long n = conn_write(c, c->out.data + c->out_off, c->out_end - c->out_off);
                if (n == 0)
                    return;
                if (n < 0) {
                    conn_close(L, c, 0);
                    return;
                }
                c->out_off += (size_t)n;
            }
            if (c->action == FA_ACT_TRUNCATE || c->close_after) {
                conn_close(L, c, 0);
                return;
            }
            /* keep-alive: drop the answered request, look at what follows */
            memmove(c->in.data, c->in.data + c->req_len, c->in.len - c->req_len);
            c->in.len -= c->req_len;
            c->in.data[c->in.len] = '\0';
            c->req_len = 0;
            c->state = C_READING;
            /* the output buffer of an unusually large answer is not kept */
            if (c->out.cap > 256 * 1024)
                buf_cleanup(&c->out);
            continue;
        }
        if (c->state == C_READING && try_request(L, c))
            continue;
        if (c->in.len >= MAX_HEAD + MAX_BODY)
            return; /* a waiting answer and a full buffer: read again once it is written */
        if (buf_reserve(&c->in, READ_CHUNK) < 0) {
            conn_close(L, c, 0);
            return;
        }
        long n = conn_read(c, c->in.data + c->in.len, c->in.cap - c->in.len - 1);
        if (n == 0)
            return;
        if (n < 0) {
            conn_close(L, c, 0);
            return;
        }
        c->in.len += (size_t)n;
        c->in.data[c->in.len] = '\0';
    }
}

static void accept_all(struct loop *L)
{
    struct fa_app *app = L->srv->app;
    for (;;) {
        int fd = accept4(L->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of descriptors: the backlog keeps them */
        }
        if (L->n_conns >= app->opt.max_conns) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->heap_idx = SIZE_MAX;
        buf_init(&c->in);
        buf_init(&c->out);
        if (L->srv->tls) {
            c->ssl = SSL_new(L->srv->tls);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                SSL_free(c->ssl);
                close(fd);
                free(c);
                continue;
            }
            SSL_set_accept_state(c->ssl);
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            SSL_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        c->next = L->conns;
        if (L->conns)
            L->conns->prev = c;
        L->conns = c;
        L->n_conns++;
        atomic_fetch_add_explicit(&app->stats.connections, 1, memory_order_relaxed);
        conn_progress(L, c);
    }
}

static void *loop_main(void *arg)
{
    struct loop *L = arg;
    struct epoll_event evs[MAX_EVENTS];
    while (!atomic_load(&L->srv->stop)) {
        int timeout = -1;
        if (L->heap_n) {
            uint64_t now = now_us(), due = L->heap[0]->due_us;
            timeout = due <= now ? 0 : (int)((due - now + 999) / 1000);
        }
        int n = epoll_wait(L->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &L->lfd)
                accept_all(L);
            else if (p == &L->evfd)
                continue; /* stop: checked by the loop condition */
            else
                conn_progress(L, p);
        }
        if (L->heap_n) {
            uint64_t now = now_us();
            while (L->heap_n && L->heap[0]->due_us <= now) {
                struct conn *c = L->heap[0];
                heap_remove(L, c);
                c->state = C_WRITING;
                conn_progress(L, c);
            }
        }
    }
    while (L->conns)
        conn_close(L, L->conns, 0);
    return NULL;
}

/* ---- setup ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *tls_setup(const struct fa_options *o, struct err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        err_set(err, ERR_IO, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    static const unsigned char sid_ctx[] = "fakeaws";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        err_set(err, ERR_IO, "TLS: cannot load %s / %s: %s", o->tls_cert, o->tls_key, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int listen_on(const struct fa_options *o, int port, int reuseport, int *bound_port,
                     struct err *err)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, o->bind, &a.sin_addr) != 1)
        return err_set(err, ERR_CONFIG, "--bind %s is not an IPv4 address", o->bind);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(err, ERR_IO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "cannot listen on %s:%d: %s", o->bind, port, strerror(e));
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *bound_port = ntohs(a.sin_port);
    return fd;
}

static int loop_init(struct fa_server *s, struct loop *L, unsigned id, struct err *err)
{
    L->srv = s;
    L->lfd = L->epfd = L->evfd = -1;
    if (worker_init(&L->w, s->app, id) < 0)
        return err_set(err, ERR_NOMEM, "out of memory");
    int bound = 0;
    L->lfd = listen_on(&s->app->opt, s->port, s->n_loops > 1, &bound, err);
    if (L->lfd < 0)
        return -1;
    s->port = bound;
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    L->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (L->epfd < 0 || L->evfd < 0)
        return err_set(err, ERR_IO, "epoll/eventfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->lfd};
    struct epoll_event ev2 = {.events = EPOLLIN, .data.ptr = &L->evfd};
    if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->lfd, &ev) < 0 ||
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->evfd, &ev2) < 0)
        return err_set(err, ERR_IO, "epoll_ctl: %s", strerror(errno));
    return 0;
}

int server_port(const struct fa_server *s)
{
    return s->port;
}

struct fa_server *server_start(struct fa_app *app, struct err *err)
{
    struct fa_server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->app = app;
    s->port = app->opt.port;
    s->n_loops = app->opt.threads > 0 ? app->opt.threads : 1;
    s->loops = calloc((size_t)s->n_loops, sizeof *s->loops);
    if (!s->loops) {
        free(s);
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < s->n_loops; i++)
        s->loops[i].lfd = s->loops[i].epfd = s->loops[i].evfd = -1;
    if (app->opt.tls_cert && !(s->tls = tls_setup(&app->opt, err)))
        goto fail;
    for (int i = 0; i < s->n_loops; i++)
        if (loop_init(s, &s->loops[i], (unsigned)i, err) < 0)
            goto fail;
    for (int i = 0; i < s->n_loops; i++) {
        if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) != 0) {
            err_set(err, ERR_IO, "cannot start thread %d", i);
            goto fail;
        }
        s->loops[i].started = 1;
    }
    return s;
fail:
    server_stop(s);
    return NULL;
}

void server_stop(struct fa_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    for (int i = 0; i < s->n_loops; i++) {
        struct loop *L = &s->loops[i];
        if (L->evfd >= 0) {
            uint64_t one = 1;
            ssize_t w = write(L->evfd, &one, sizeof one);
            (void)w;
        }
    }
    for (int i = 0; i < s->n_loops; i++) {
        struct loop *L = &s->loops[i];
        if (L->started)
            pthread_join(L->thread, NULL);
        if (L->lfd >= 0)
            close(L->lfd);
        if (L->epfd >= 0)
            close(L->epfd);
        if (L->evfd >= 0)
            close(L->evfd);
        free(L->heap);
        if (L->srv)
            worker_cleanup(&L->w);
    }
    free(s->loops);
    SSL_CTX_free(s->tls);
    free(s);
}
