/* fakeproc.c - build/fakeaws run as a child of an integration test (started, waited for,
 * stopped by pid), its stats endpoint, a throwaway certificate, and the comparison of what
 * egressscan stored with the fleet's --truth. */
#include "tests/support/fakeproc.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "scanner/http.h"
#include "tests/support/procs.h"

#define MAX_ARGS 64

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

const char *fakeproc_bin(void)
{
    static char bin[512];
    const char *env = getenv("FAKEAWS");
    const char *b = getenv("BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else if (b && *b) {
        char copy[512];
        snprintf(copy, sizeof copy, "%s", b);
        snprintf(bin, sizeof bin, "%s/fakeaws", dirname(copy));
    } else {
        snprintf(bin, sizeof bin, "build/fakeaws");
    }
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "%s is not built (make build/fakeaws)\n", bin);
        return NULL;
    }
    return bin;
}

int fakeproc_start(struct fakeproc *f, const char *dir, const char *name, int tls,
                   const char *const *args)
{
    memset(f, 0, sizeof *f);
    const char *bin = fakeproc_bin();
    if (!bin)
        return -1;
    f->port = procs_free_port();
    if (f->port < 0)
        return -1;
    f->tls = tls;
    char port[16];
    snprintf(port, sizeof port, "%d", f->port);
    snprintf(f->truth_path, sizeof f->truth_path, "%s/%s-truth.json", dir, name);
    const char *argv[MAX_ARGS] = {bin, "--port", port, "--truth", f->truth_path};
    size_t n = 5;
    for (; args && *args && n < MAX_ARGS - 1; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    f->pid = procs_spawn((char *const *)argv, NULL);
    if (f->pid < 0)
        return -1;
    for (int i = 0; i < 400 && !port_open(f->port); i++) {
        int st;
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            fprintf(stderr, "fakeaws exited before listening\n");
            f->pid = 0;
            return -1;
        }
        sleep_ms(25);
    }
    if (!port_open(f->port)) {
        fprintf(stderr, "fakeaws did not listen on %d\n", f->port);
        fakeproc_stop(f);
        return -1;
    }
    snprintf(f->url, sizeof f->url, "%s://%s:%d", tls ? "https" : "http",
             tls ? "localhost" : "127.0.0.1", f->port);
    json_error_t je;
    f->truth = json_load_file(f->truth_path, 0, &je);
    if (!f->truth) {
        fprintf(stderr, "truth %s: %s\n", f->truth_path, je.text);
        fakeproc_stop(f);
        return -1;
    }
    return 0;
}

int fakeproc_stop(struct fakeproc *f)
{
    int rc = -1;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int st;
        if (waitpid(f->pid, &st, 0) == f->pid && WIFEXITED(st))
            rc = WEXITSTATUS(st);
        f->pid = 0;
    }
    json_decref(f->truth);
    f->truth = NULL;
    if (f->truth_path[0])
        unlink(f->truth_path);
    return rc;
}

json_t *fakeproc_stats(const struct fakeproc *f, int per_account)
{
    char url[256];
    snprintf(url, sizeof url, "%s/fakeaws/stats%s", f->url, per_account ? "?accounts=1" : "");
    struct http_engine_options o;
    struct err e;
    err_clear(&e);
    if (http_engine_options_init(&o, &e) < 0)
        return NULL;
    if (f->ca_file[0])
        o.ca_bundle = f->ca_file;
    struct http_engine *eng = http_engine_new(&o, &e);
    if (!eng)
        return NULL;
    struct aws_request req = {
        .protocol = AWS_PROTO_PLAIN, .method = "GET", .url = url, .allow_http = 1, .no_retry = 1};
    struct buf body;
    buf_init(&body);
    long status = 0;
    json_t *j = NULL;
    if (http_perform(eng, &req, &body, &status, &e) == 0)
        j = json_loadb(body.data, body.len, 0, NULL);
    else
        fprintf(stderr, "fakeaws stats: %s: %s\n", e.code, e.message);
    buf_cleanup(&body);
    http_engine_free(eng);
    return j;
}

long fakeproc_stat(json_t *stats, const char *group, const char *key)
{
    json_t *g = group ? json_object_get(stats, group) : stats;
    return (long)json_integer_value(json_object_get(g, key));
}

int fakeproc_make_cert(const char *dir, char *cert, size_t cert_size, char *key, size_t key_size)
{
    snprintf(cert, cert_size, "%s/cert.pem", dir);
    snprintf(key, key_size, "%s/key.pem", dir);
    char *gen[] = {"openssl",  "req",
                   "-x509",    "-newkey",
                   "rsa:2048", "-nodes",
                   "-keyout",  key,
                   "-out",     cert,
                   "-days",    "1",
                   "-subj",    "/CN=localhost",
                   "-addext",  "subjectAltName=DNS:localhost,IP:127.0.0.1",
                   NULL};
    char *out = NULL, *errout = NULL;
    int rc = procs_run2(gen, NULL, &out, &errout);
    if (rc != 0)
        fprintf(stderr, "openssl req failed: %s\n", errout ? errout : "");
    free(out);
    free(errout);
    return rc == 0 ? 0 : -1;
}

/* ---- stored clusters against the truth ---- */

struct keys {
    char **v;
    size_t n, cap;
};

static int keys_add(struct keys *k, const char *account, const char *region, const char *name,
                    const char *mode)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        char **v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return -1;
        k->v = v;
        k->cap = cap;
    }
    size_t len = strlen(account) + strlen(region) + strlen(name) + strlen(mode) + 4;
    char *s = malloc(len);
    if (!s)
        return -1;
    snprintf(s, len, "%s/%s/%s=%s", account, region, name, mode);
    k->v[k->n++] = s;
    return 0;
}

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void note(struct buf *out, long *count, const char *what, const char *key)
{
    if (++*count <= 20)
        buf_printf(out, "%s %s\n", what, key);
}

long fakeproc_diff_db(const struct fakeproc *f, const char *database_url, char **diff)
{
    if (diff)
        *diff = NULL;
    PGconn *c = PQconnectdb(database_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "fakeproc_diff_db: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PGresult *r = PQexecParams(c,
                               "SELECT account_id, region, cluster_name, "
                               "coalesce(egress_mode, '(null)') FROM egressscan.current_clusters",
                               0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "fakeproc_diff_db: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return -1;
    }
    struct keys stored = {0}, want = {0};
    for (int i = 0; i < PQntuples(r); i++)
        keys_add(&stored, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                 PQgetvalue(r, i, 3));
    PQclear(r);
    PQfinish(c);
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(f->truth, "clusters"), i, cl)
    {
        json_t *mode = json_object_get(cl, "egress_mode");
        keys_add(&want, json_string_value(json_object_get(cl, "account_id")),
                 json_string_value(json_object_get(cl, "region")),
                 json_string_value(json_object_get(cl, "name")),
                 json_is_string(mode) ? json_string_value(mode) : "(null)");
    }
    qsort(stored.v, stored.n, sizeof *stored.v, cmp_str);
    qsort(want.v, want.n, sizeof *want.v, cmp_str);
    struct buf out;
    buf_init(&out);
    long count = 0;
    size_t a = 0, b = 0;
    while (a < stored.n || b < want.n) {
        int d = a == stored.n ? 1 : b == want.n ? -1 : strcmp(stored.v[a], want.v[b]);
        if (d == 0) {
            a++, b++;
            while (a < stored.n && strcmp(stored.v[a], stored.v[a - 1]) == 0)
                note(&out, &count, "twice:", stored.v[a++]);
        } else if (d < 0) {
            note(&out, &count, "not in the truth:", stored.v[a++]);
        } else {
            note(&out, &count, "missing:", want.v[b++]);
        }
    }
    if (diff && count)
        *diff = buf_steal(&out);
    buf_cleanup(&out);
    keys_free(&stored);
    keys_free(&want);
    return count;
}
