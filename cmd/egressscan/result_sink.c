/* result_sink.c - the database writer thread of a scan: a bounded FIFO of copied results between
 * the HTTP event loop and PostgreSQL, written in order by one thread that owns the connection
 * until the scan's results are all in. A write that loses the connection is run again after a
 * reconnection (db_retry, within the connection's retry bound); the writes are idempotent. */
#include "cmd/egressscan/result_sink.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/log.h"
#include "storage/db.h"

#define BATCH_TARGETS 1024
#define BATCH_SECONDS 1.0
/* Hidden, for tests that need many small batches: targets per batch (1 to BATCH_TARGETS). */
#define BATCH_ENV "EGRESSSCAN_DB_BATCH_TARGETS"
/* What may wait for the database before the event loop waits for it: a few batches. */
#define MAX_QUEUED_BYTES ((size_t)8 * 1024 * 1024)

enum job_kind { JOB_TARGETS, JOB_ACCOUNTS, JOB_ORG_UNIT, JOB_SCP };

struct job {
    struct job *next;
    enum job_kind kind;
    size_t bytes; /* about what it holds, for the queue bound */
    size_t n;
    size_t n_clusters; /* JOB_TARGETS: clusters of the ok targets */
    union {
        struct target_result **targets; /* n copies (target_result_copy), each freed */
        struct account *accounts;       /* inside the job's allocation */
        struct org_unit *ou;            /* inside the job's allocation */
        struct scp_policy *scp;         /* inside the job's allocation */
    } u;
};

struct result_sink {
    struct db *db;
    long long scan_id;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    struct job *head, *tail;
    size_t queued_bytes;
    int closing;
    atomic_int failed;
    struct err err; /* the first failure; written under mu before `failed` is set, never after */
    double busy_s;  /* the thread's time in database calls; read after the join */

    struct job *batch; /* targets being batched by the event loop */
    double last_flush;
    size_t batch_limit;

    struct result_sink_stats stats; /* *_in by the loop, the rest by the thread */
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void job_free(struct job *j)
{
    if (j && j->kind == JOB_TARGETS)
        for (size_t i = 0; i < j->n; i++)
            free(j->u.targets[i]);
    free(j);
}

struct job_op {
    struct result_sink *s;
    struct job *j;
};

/* One write, as db_retry runs it (again after a reconnection). */
static int job_op(struct db *db, void *ud, struct err *err)
{
    struct job_op *o = ud;
    struct job *j = o->j;
    long long id = o->s->scan_id;
    switch (j->kind) {
    case JOB_TARGETS:
        return db_write_targets(db, id, (const struct target_result *const *)j->u.targets, j->n,
                                err);
    case JOB_ACCOUNTS:
        return db_write_accounts(db, id, j->u.accounts, j->n, err);
    case JOB_ORG_UNIT:
        return db_write_org_units(db, id, j->u.ou, 1, err);
    case JOB_SCP:
        return db_write_scps(db, id, j->u.scp, 1, err);
    }
    return err_set(err, ERR_INVALID, "unknown result kind");
}

static const char *const job_what[] = {"writing a batch of targets", "writing accounts",
                                       "writing an organizational unit", "writing an SCP"};

static int job_write(struct result_sink *s, struct job *j, struct err *err)
{
    struct job_op o = {s, j};
    int retries = 0;
    int rc = db_retry(s->db, job_what[j->kind], job_op, &o, &retries, err);
    if (retries > 0) {
        s->stats.writes_retried++;
        if (rc == 0)
            log_info("scan", "%s (%zu) succeeded after %d reconnection%s", job_what[j->kind], j->n,
                     retries, retries == 1 ? "" : "s");
    }
    if (rc < 0) {
        log_error("scan", "%s (%zu) failed: %s (%s)", job_what[j->kind], j->n, err->message,
                  err->code);
        return -1;
    }
    if (j->kind == JOB_TARGETS) {
        s->stats.targets_written += (long)j->n;
        s->stats.clusters_written += (long)j->n_clusters;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct result_sink *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->closing)
            pthread_cond_wait(&s->work, &s->mu);
        struct job *j = s->head;
        if (!j) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        /* after a failure nothing more is written: the queue only drains */
        if (!atomic_load(&s->failed)) {
            struct err e;
            err_clear(&e);
            double t = mono_now();
            int rc = job_write(s, j, &e);
            s->busy_s += mono_now() - t;
            if (rc < 0) {
                /* under the lock, first failure only: nomem() on the loop's thread may be
                 * recording its own at this moment */
                pthread_mutex_lock(&s->mu);
                if (!atomic_load(&s->failed)) {
                    s->err = e;
                    atomic_store(&s->failed, 1);
                }
                pthread_mutex_unlock(&s->mu);
            }
        }
        pthread_mutex_lock(&s->mu);
        s->queued_bytes -= j->bytes;
        pthread_cond_signal(&s->room);
        pthread_mutex_unlock(&s->mu);
        job_free(j);
    }
    return NULL;
}

/* Queues j (the sink takes it), waiting while the queue is full. */
static int enqueue(struct result_sink *s, struct job *j)
{
    pthread_mutex_lock(&s->mu);
    while (s->head && s->queued_bytes + j->bytes > MAX_QUEUED_BYTES && !atomic_load(&s->failed))
        pthread_cond_wait(&s->room, &s->mu);
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued_bytes += j->bytes;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->failed) ? -1 : 0;
}

struct result_sink *result_sink_start(struct db *db, long long scan_id, struct err *err)
{
    struct result_sink *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->db = db;
    s->scan_id = scan_id;
    s->last_flush = mono_now();
    s->batch_limit = BATCH_TARGETS;
    const char *limit = getenv(BATCH_ENV);
    long v;
    if (limit && *limit) {
        if (config_parse_long(limit, 1, BATCH_TARGETS, &v) < 0) {
            free(s);
            err_set(err, ERR_CONFIG, "%s: not a number from 1 to %d", BATCH_ENV, BATCH_TARGETS);
            return NULL;
        }
        s->batch_limit = (size_t)v;
    }
    atomic_init(&s->failed, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->room, NULL);
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        pthread_cond_destroy(&s->room);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
        free(s);
        err_set(err, ERR_NOMEM, "cannot start the database writer thread");
        return NULL;
    }
    return s;
}

int result_sink_failed(struct result_sink *s, struct err *err)
{
    if (!atomic_load(&s->failed))
        return 0;
    if (err)
        *err = s->err;
    return 1;
}

/* Out of memory on the loop's side: recorded as the sink's failure (the scan stops). */
static int nomem(struct result_sink *s, const char *what)
{
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->failed)) {
        err_set(&s->err, ERR_NOMEM, "out of memory queuing %s", what);
        atomic_store(&s->failed, 1);
    }
    pthread_cond_signal(&s->room);
    pthread_mutex_unlock(&s->mu);
    return -1;
}

/* ---- copies: each job is one allocation holding the structs and their strings ---- */

static size_t str_size(const char *v)
{
    return v ? strlen(v) + 1 : 0;
}

static const char *put_str(char **cursor, const char *v)
{
    if (!v)
        return NULL;
    size_t n = strlen(v) + 1;
    char *p = memcpy(*cursor, v, n);
    *cursor += n;
    return p;
}

static struct job *job_new(enum job_kind kind, size_t head, size_t strings, char **cursor)
{
    struct job *j = calloc(1, sizeof *j + head + strings);
    if (!j)
        return NULL;
    j->kind = kind;
    j->bytes = sizeof *j + head + strings;
    *cursor = (char *)(j + 1) + head;
    return j;
}

int result_sink_accounts(struct result_sink *s, const struct account *accounts, size_t n)
{
    if (atomic_load(&s->failed))
        return -1;
    size_t strings = 0;
    for (size_t i = 0; i < n; i++) {
        const struct account *a = &accounts[i];
        strings += str_size(a->id) + str_size(a->name) + str_size(a->email) + str_size(a->status) +
                   str_size(a->ou_path) + str_size(a->ou_id_path) + str_size(a->parent_id);
    }
    char *cur;
    struct job *j = job_new(JOB_ACCOUNTS, n * sizeof(struct account), strings, &cur);
    if (!j)
        return nomem(s, "accounts");
    j->n = n;
    j->u.accounts = (struct account *)(j + 1);
    for (size_t i = 0; i < n; i++) {
        const struct account *a = &accounts[i];
        j->u.accounts[i] = (struct account){.id = put_str(&cur, a->id),
                                            .name = put_str(&cur, a->name),
                                            .email = put_str(&cur, a->email),
                                            .status = put_str(&cur, a->status),
                                            .ou_path = put_str(&cur, a->ou_path),
                                            .ou_id_path = put_str(&cur, a->ou_id_path),
                                            .parent_id = put_str(&cur, a->parent_id),
                                            .is_management = a->is_management};
    }
    return enqueue(s, j);
}

int result_sink_org_unit(struct result_sink *s, const struct org_unit *ou)
{
    if (atomic_load(&s->failed))
        return -1;
    char *cur;
    struct job *j = job_new(JOB_ORG_UNIT, sizeof *ou,
                            str_size(ou->id) + str_size(ou->parent_id) + str_size(ou->name), &cur);
    if (!j)
        return nomem(s, "an organizational unit");
    j->n = 1;
    j->u.ou = (struct org_unit *)(j + 1);
    *j->u.ou = (struct org_unit){.id = put_str(&cur, ou->id),
                                 .parent_id = put_str(&cur, ou->parent_id),
                                 .name = put_str(&cur, ou->name)};
    return enqueue(s, j);
}

int result_sink_scp(struct result_sink *s, const struct scp_policy *policy)
{
    if (atomic_load(&s->failed))
        return -1;
    size_t strings = str_size(policy->id) + str_size(policy->name) + str_size(policy->content);
    for (size_t i = 0; i < policy->n_targets; i++)
        strings += str_size(policy->targets[i]);
    size_t head = sizeof *policy + policy->n_targets * sizeof(char *);
    char *cur;
    struct job *j = job_new(JOB_SCP, head, strings, &cur);
    if (!j)
        return nomem(s, "an SCP");
    j->n = 1;
    j->u.scp = (struct scp_policy *)(j + 1);
    const char **targets = (const char **)(j->u.scp + 1);
    for (size_t i = 0; i < policy->n_targets; i++)
        targets[i] = put_str(&cur, policy->targets[i]);
    *j->u.scp = (struct scp_policy){.id = put_str(&cur, policy->id),
                                    .name = put_str(&cur, policy->name),
                                    .content = put_str(&cur, policy->content),
                                    .targets = targets,
                                    .n_targets = policy->n_targets,
                                    .aws_managed = policy->aws_managed};
    return enqueue(s, j);
}

/* Hands the batch being built to the thread. */
static int flush_batch(struct result_sink *s)
{
    s->last_flush = mono_now();
    struct job *j = s->batch;
    if (!j)
        return atomic_load(&s->failed) ? -1 : 0;
    s->batch = NULL;
    return enqueue(s, j);
}

int result_sink_target(struct result_sink *s, const struct target_result *r)
{
    if (atomic_load(&s->failed))
        return -1;
    if (!s->batch) {
        s->batch = calloc(1, sizeof *s->batch + BATCH_TARGETS * sizeof(struct target_result *));
        if (!s->batch)
            return nomem(s, "results");
        s->batch->kind = JOB_TARGETS;
        s->batch->bytes = sizeof *s->batch + BATCH_TARGETS * sizeof(struct target_result *);
        s->batch->u.targets = (struct target_result **)(s->batch + 1);
    }
    struct target_result *copy = target_result_copy(r);
    if (!copy)
        return nomem(s, "results");
    size_t bytes = sizeof *copy + 64;
    for (size_t i = 0; i < r->n_clusters; i++)
        bytes += sizeof r->clusters[i] + 256 + str_size(r->clusters[i].raw_json);
    s->batch->u.targets[s->batch->n++] = copy;
    s->batch->bytes += bytes;
    s->stats.targets_in++;
    if (r->status == TARGET_OK) {
        s->batch->n_clusters += r->n_clusters;
        s->stats.clusters_in += (long)r->n_clusters;
    }
    if (s->batch->n == s->batch_limit || mono_now() - s->last_flush >= BATCH_SECONDS)
        return flush_batch(s);
    return 0;
}

int result_sink_finish(struct result_sink *s, double *busy_s, struct err *err)
{
    return result_sink_finish_stats(s, busy_s, NULL, err);
}

int result_sink_finish_stats(struct result_sink *s, double *busy_s, struct result_sink_stats *stats,
                             struct err *err)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!s)
        return 0;
    if (!atomic_load(&s->failed))
        flush_batch(s);
    job_free(s->batch);
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    int rc = 0;
    if (atomic_load(&s->failed)) {
        *err = s->err;
        rc = -1;
    }
    if (busy_s)
        *busy_s = s->busy_s;
    if (stats)
        *stats = s->stats;
    pthread_cond_destroy(&s->room);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}
