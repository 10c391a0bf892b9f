/* worker.c - `egressscan worker`: claims work items (accounts) of enqueued scans in small batches
 * with a lease, scans each batch with the scheduler (a fixed account list with the scan's
 * options), and hands every finished account to a writer thread that owns the database
 * connection while the batch runs: it writes the account's targets and marks its item done in
 * one transaction that first checks the lease is still ours, and renews the leases every
 * lease/3 seconds. The worker that sees every item of a scan done finalizes it (scan_end). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cmd/egressscan/commands.h"
#include "cmd/egressscan/scan_end.h"
#include "cmd/egressscan/stop.h"
#include "common/config.h"
#include "common/log.h"
#include "intent/policy.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/scheduler.h"
#include "storage/db.h"
#include "storage/queue.h"

#define DEFAULT_LEASE_S 60
#define DEFAULT_BATCH 64
#define MAX_BATCH 256
#define POLL_MS 1000
#define RECENT_S 900 /* --wait: a scan that ended this recently is the one a Job was for */

/* ---- the writer thread: completions and lease renewal ---- */

struct completion {
    struct completion *next;
    long long scan_id;
    char account_id[16];
    struct target_result **targets; /* copies, freed with the job */
    size_t n;
    struct scan_totals calls; /* AWS calls since the previous completion */
};

struct writer {
    struct db *db;
    const char *owner;
    int lease_s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct completion *head, *tail;
    int closing;
    atomic_int failed;
    struct err err;
    /* the thread's own, read after the join */
    long written, lost, refused;
    struct scan_totals unrecorded; /* calls of results that were dropped */
    double busy_s;
};

static void completion_free(struct completion *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->targets[i]);
    free(c->targets);
    free(c);
}

static void totals_add(struct scan_totals *a, const struct scan_totals *b)
{
    a->api_calls += b->api_calls;
    a->throttled += b->throttled;
    a->retries += b->retries;
}

static void writer_fail(struct writer *w, const struct err *e)
{
    if (!atomic_load(&w->failed)) {
        w->err = *e;
        atomic_store(&w->failed, 1);
    }
}

#define WRITE_MAX 64 /* accounts per completion transaction */

/* The database operations of the worker, as db_retry runs them: each is whole or absent on
 * failure and harmless to run again (a completion already done by this owner counts as written;
 * renewing and releasing leases are idempotent). */
struct complete_op {
    long long scan_id;
    const char *owner;
    const struct queue_completion *items;
    size_t n;
    int *lost;
};

static int complete_op(struct db *db, void *ud, struct err *err)
{
    struct complete_op *o = ud;
    return queue_complete_many(db, o->scan_id, o->owner, o->items, o->n, o->lost, err);
}

struct lease_op {
    const char *owner;
    int lease_s; /* renew for this long; 0: release */
    int n;
};

static int lease_op(struct db *db, void *ud, struct err *err)
{
    struct lease_op *o = ud;
    return o->lease_s ? queue_renew(db, o->owner, o->lease_s, &o->n, err)
                      : queue_release(db, o->owner, &o->n, err);
}

/* Writes the completions of list (at most WRITE_MAX, all of one scan) in one transaction, again
 * after a lost connection (within the retry bound). */
static void writer_complete(struct writer *w, struct completion *list)
{
    struct queue_completion items[WRITE_MAX];
    int lost[WRITE_MAX];
    size_t n = 0;
    for (struct completion *c = list; c && n < WRITE_MAX; c = c->next)
        items[n++] =
            (struct queue_completion){.account_id = c->account_id,
                                      .targets = (const struct target_result *const *)c->targets,
                                      .n = c->n,
                                      .calls = c->calls};
    struct err e;
    err_clear(&e);
    double t = scan_mono_now();
    struct complete_op op = {list->scan_id, w->owner, items, n, lost};
    int rc = db_retry(w->db, "writing completed accounts", complete_op, &op, NULL, &e);
    w->busy_s += scan_mono_now() - t;
    if (rc < 0) {
        log_error("worker", "scan %lld: writing %zu accounts failed: %s (%s)", list->scan_id, n,
                  e.message, e.code);
        writer_fail(w, &e);
        return;
    }
    size_t i = 0;
    for (struct completion *c = list; c && i < n; c = c->next, i++) {
        if (lost[i] == QUEUE_WRITTEN) {
            w->written++;
            continue;
        }
        totals_add(&w->unrecorded, &c->calls);
        if (lost[i] == QUEUE_REFUSED) {
            /* still leased to us: given back after the batch with its attempt counted */
            w->refused++;
            continue;
        }
        w->lost++;
        log_warn("worker",
                 "scan %lld account %s: the lease was lost (another worker holds it now): its "
                 "results were dropped",
                 c->scan_id, c->account_id);
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    double renew_every = w->lease_s / 3.0;
    double next_renew = scan_mono_now() + renew_every;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->closing && scan_mono_now() < next_renew) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            double left = next_renew - scan_mono_now();
            if (left < 0)
                left = 0;
            until.tv_sec += (time_t)left;
            until.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->work, &w->mu, &until);
        }
        if (scan_mono_now() >= next_renew) {
            pthread_mutex_unlock(&w->mu);
            struct err e;
            err_clear(&e);
            struct lease_op op = {w->owner, w->lease_s, 0};
            if (!atomic_load(&w->failed) &&
                db_retry(w->db, "renewing leases", lease_op, &op, NULL, &e) < 0) {
                log_error("worker", "renewing leases failed: %s (%s)", e.message, e.code);
                writer_fail(w, &e);
            }
            next_renew = scan_mono_now() + renew_every;
            pthread_mutex_lock(&w->mu);
            continue;
        }
        struct completion *list = w->head, *last = list;
        if (!list)
            break; /* closing, nothing left */
        /* whatever is queued, up to WRITE_MAX accounts, goes into one transaction */
        for (int k = 1; k < WRITE_MAX && last->next; k++)
            last = last->next;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->mu);
        if (!atomic_load(&w->failed))
            writer_complete(w, list);
        while (list) {
            struct completion *next = list->next;
            completion_free(list);
            list = next;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_start(struct writer *w, struct db *db, const char *owner, int lease_s,
                        struct err *err)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    w->owner = owner;
    w->lease_s = lease_s;
    atomic_init(&w->failed, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
        return err_set(err, ERR_NOMEM, "cannot start the database writer thread");
    }
    return 0;
}

/* Takes c. -1 once the writer has failed (c is freed). */
static int writer_push(struct writer *w, struct completion *c)
{
    if (atomic_load(&w->failed)) {
        completion_free(c);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    c->next = NULL;
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Writes what is queued, stops the thread. 0, or -1 with the first error. */
static int writer_finish(struct writer *w, struct err *err)
{
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    if (atomic_load(&w->failed)) {
        *err = w->err;
        return -1;
    }
    return 0;
}

/* ---- the worker ---- */

struct scan_opts {
    long long scan_id;
    struct str_list regions;
    char *role_name, *external_id, *policy;
    int page_size;
};

static void scan_opts_cleanup(struct scan_opts *o)
{
    str_list_free(&o->regions);
    free(o->role_name);
    free(o->external_id);
    free(o->policy);
    memset(o, 0, sizeof *o);
}

static char *json_strdup(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? strdup(v) : NULL;
}

static int scan_opts_parse(struct scan_opts *o, long long scan_id, const char *text,
                           struct err *err)
{
    scan_opts_cleanup(o);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(err, ERR_PARSE, "scan %lld: stored options are not a JSON object", scan_id);
    }
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "regions"), i, r)
    {
        if (json_is_string(r) && str_list_split(&o->regions, json_string_value(r)) < 0) {
            json_decref(j);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    o->role_name = json_strdup(j, "role_name");
    o->external_id = json_strdup(j, "external_id");
    o->policy = json_strdup(j, "policy");
    o->page_size = (int)json_integer_value(json_object_get(j, "page_size"));
    o->scan_id = scan_id;
    json_decref(j);
    return 0;
}

struct account_buf {
    char id[16];
    int started; /* the scheduler began its work */
    struct target_result **targets;
    size_t n, cap;
};

struct worker {
    struct db *db;
    char owner[320];
    int lease_s;
    size_t batch;
    long long only_scan;
    int fail_on_drift;
    int fail_on; /* enum report_severity, -1: none */
    const char *metrics_file;
    double stop_grace_s; /* after SIGTERM / SIGINT, for the requests under way */
    struct http_engine *engine;
    struct creds_chain *chain;
    struct scan_opts opts;
    /* the batch under way */
    struct writer writer;
    struct account_buf *accounts;
    size_t n_accounts;
    struct http_engine_stats reported; /* engine counters at the last hand-over */
    int sink_failed;
    /* the worker's life */
    long written, lost, abandoned;
    int exit_code;     /* of the scans it finalized (worst), else EXIT_OK */
    int progress_line; /* draw a progress line on the terminal */
    long finalized;    /* scans this worker finalized */
    int db_gave_up;    /* the writer's retries ran out of the bound: no more reconnecting */
    int recoveries;    /* recover() calls since the last successful claim */
    /* accounts of the claimed batch whose work began: their claims keep the attempt when they
     * are given back unwritten (queue_release_started) */
    char (*started)[16];
    size_t n_started;
    long refused; /* accounts whose results the database refused */
    int put_offs; /* finalizations put off for an outage past the bound (PUT_OFF_MAX: exit 4) */
};

#define PUT_OFF_MAX 3

static int rank(int code)
{
    return code == EXIT_FAILED ? 3 : code == EXIT_PARTIAL ? 2 : code == EXIT_DRIFT ? 1 : 0;
}

static void note_exit(struct worker *w, int code)
{
    if (rank(code) > rank(w->exit_code))
        w->exit_code = code;
}

static struct scan_totals calls_since(struct worker *w)
{
    struct http_engine_stats st;
    http_engine_get_stats(w->engine, &st);
    struct scan_totals d = {(long long)(st.attempts - w->reported.attempts),
                            (long long)(st.throttles - w->reported.throttles),
                            (long long)(st.retries - w->reported.retries)};
    w->reported = st;
    return d;
}

static struct account_buf *account_of(struct worker *w, const char *id)
{
    for (size_t i = 0; i < w->n_accounts; i++)
        if (strcmp(w->accounts[i].id, id) == 0)
            return &w->accounts[i];
    return NULL;
}

static int on_target(void *ud, const struct target_result *r)
{
    struct worker *w = ud;
    if (w->sink_failed || atomic_load(&w->writer.failed))
        return -1;
    struct account_buf *a = account_of(w, r->account_id);
    if (!a)
        return 0; /* not ours (cannot happen: the scheduler scans the given list) */
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct target_result **t = realloc(a->targets, cap * sizeof *t);
        if (!t) {
            w->sink_failed = 1;
            return -1;
        }
        a->targets = t;
        a->cap = cap;
    }
    struct target_result *copy = target_result_copy(r);
    if (!copy) {
        w->sink_failed = 1;
        return -1;
    }
    a->targets[a->n++] = copy;
    return 0;
}

static void on_account_started(void *ud, const char *account_id)
{
    struct account_buf *a = account_of(ud, account_id);
    if (a)
        a->started = 1;
}

/* The account's targets are all in: they go to the writer with the calls made since the last
 * hand-over. */
static void on_account_done(void *ud, const char *account_id)
{
    struct worker *w = ud;
    struct account_buf *a = account_of(w, account_id);
    if (!a || w->sink_failed)
        return;
    struct completion *c = calloc(1, sizeof *c);
    if (!c) {
        w->sink_failed = 1;
        return;
    }
    c->scan_id = w->opts.scan_id;
    memcpy(c->account_id, a->id, sizeof c->account_id);
    c->targets = a->targets;
    c->n = a->n;
    c->calls = calls_since(w);
    a->targets = NULL;
    a->n = a->cap = 0;
    if (writer_push(&w->writer, c) < 0)
        w->sink_failed = 1;
}

/* Items claimed too often: the account is recorded as not scanned instead of tried again. */
static int abandon_item(struct worker *w, long long scan_id, const struct queue_item *it,
                        struct err *err)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "scanning this account was started %d times by workers that did not finish it "
             "(killed, or their leases expired); not tried again",
             it->attempts - 1);
    struct target_result r = {.account_id = it->account_id,
                              .region = "*",
                              .status = TARGET_ERROR,
                              .error_code = "WorkItemAbandoned",
                              .error_message = msg,
                              .scanned_at = scan_real_now()};
    const struct target_result *rs[1] = {&r};
    int rc = queue_complete(w->db, scan_id, it->account_id, w->owner, rs, 1, NULL, err);
    if (rc < 0)
        return -1;
    if (rc == QUEUE_REFUSED)
        return err_set(err, "StorageRejected",
                       "scan %lld account %s: the database refuses even the record of the "
                       "abandoned account",
                       scan_id, it->account_id);
    if (rc == 0) {
        w->abandoned++;
        log_warn("worker", "scan %lld account %s: %s", scan_id, it->account_id, msg);
    }
    return 0;
}

/* Scans one claimed batch of scan_id. -1 with err when the worker cannot go on (database,
 * credentials); what it still holds is released by the caller. */
static int run_batch(struct worker *w, long long scan_id, const struct queue_item *items, size_t n,
                     struct err *err)
{
    int rc = -1;
    const char **ids = NULL;
    if (w->opts.scan_id != scan_id) {
        char *text = queue_options(w->db, scan_id, err);
        if (!text)
            return -1;
        int prc = scan_opts_parse(&w->opts, scan_id, text, err);
        free(text);
        if (prc < 0)
            return -1;
    }
    ids = calloc(n, sizeof *ids);
    w->accounts = calloc(n, sizeof *w->accounts);
    if (!ids || !w->accounts) {
        err_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    w->n_accounts = 0;
    size_t n_ids = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].attempts > QUEUE_MAX_ATTEMPTS) {
            if (abandon_item(w, scan_id, &items[i], err) < 0)
                goto cleanup;
            continue;
        }
        memcpy(w->accounts[w->n_accounts].id, items[i].account_id, sizeof items[i].account_id);
        ids[n_ids++] = w->accounts[w->n_accounts++].id;
    }
    if (n_ids == 0) {
        rc = 0;
        goto cleanup;
    }
    log_debug("worker", "scan %lld: scanning %zu accounts", scan_id, n_ids);
    if (writer_start(&w->writer, w->db, w->owner, w->lease_s, err) < 0)
        goto cleanup;
    /* from here the batch's work has begun: an account not written is given back with its
     * attempt counted */
    free(w->started);
    w->started = calloc(n_ids, sizeof *w->started);
    w->n_started = 0;
    if (!w->started) {
        struct err ignored;
        writer_finish(&w->writer, &ignored);
        err_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n_ids; i++)
        memcpy(w->started[w->n_started++], ids[i], sizeof w->started[0]);
    w->sink_failed = 0;
    http_engine_get_stats(w->engine, &w->reported);
    struct scheduler_options so = {
        .accounts = ids,
        .n_accounts = n_ids,
        .regions = w->opts.regions.n ? (const char *const *)w->opts.regions.items : NULL,
        .n_regions = w->opts.regions.n,
        .role_name = w->opts.role_name,
        .external_id = w->opts.external_id,
        .home_region = endpoint_home_region(),
        .page_size = w->opts.page_size,
        .stop = &stop_signal,
        .stop_grace_s = w->stop_grace_s};
    struct scheduler_callbacks cb = {.on_target = on_target,
                                     .on_account_done = on_account_done,
                                     .on_account_started = on_account_started,
                                     .ud = w};
    struct scheduler_result res;
    struct err se;
    err_clear(&se);
    int ran = scheduler_run(w->engine, w->chain, &so, &cb, &res, &se);
    if (ran == 0 && res.interrupted) {
        /* stopped: the accounts never started are given back as if never claimed */
        w->n_started = 0;
        for (size_t i = 0; i < w->n_accounts; i++)
            if (w->accounts[i].started)
                memcpy(w->started[w->n_started++], w->accounts[i].id, sizeof w->started[0]);
        log_info("worker",
                 "scan %lld: stopped by %s: %zu of the batch's %zu accounts were started (those "
                 "not written are given back with their attempt counted), the rest is given back "
                 "as never claimed",
                 scan_id, stop_signal_name(stop_signal), w->n_started, n_ids);
    }
    struct err we;
    err_clear(&we);
    int wrc = writer_finish(&w->writer, &we);
    w->written += w->writer.written;
    w->lost += w->writer.lost;
    w->refused += w->writer.refused;
    /* calls no completed item carries: dropped results, and whatever came after the last */
    struct scan_totals rest = calls_since(w);
    totals_add(&rest, &w->writer.unrecorded);
    if (wrc < 0) {
        *err = we;
        if (db_connection_lost(w->db, &we))
            w->db_gave_up = 1; /* db_retry waited the whole bound already */
        goto cleanup;
    }
    if (w->sink_failed) {
        err_set(err, ERR_NOMEM, "out of memory collecting results");
        goto cleanup;
    }
    if (ran < 0) {
        *err = se;
        goto cleanup;
    }
    if ((rest.api_calls || rest.throttled || rest.retries) &&
        queue_add_calls(w->db, scan_id, &rest, err) < 0)
        goto cleanup;
    rc = 0;

cleanup:
    for (size_t i = 0; w->accounts && i < w->n_accounts; i++) {
        for (size_t k = 0; k < w->accounts[i].n; k++)
            free(w->accounts[i].targets[k]);
        free(w->accounts[i].targets);
    }
    free(w->accounts);
    w->accounts = NULL;
    w->n_accounts = 0;
    free(ids);
    return rc;
}

/* After a batch: the scan's progress, on the terminal's progress line or as a log line. */
static void report_progress(struct worker *w, long long scan_id)
{
    struct queue_scan_state st;
    struct err e;
    err_clear(&e);
    if (queue_scan_state(w->db, scan_id, &st, &e) < 0)
        return;
    struct http_engine_stats hs;
    http_engine_get_stats(w->engine, &hs);
    if (w->progress_line) {
        fprintf(stderr,
                "\r\033[Kscan %lld: accounts %ld/%ld done  this worker: %ld written  api calls "
                "%lu  throttled %lu",
                scan_id, st.items_total - st.items_left, st.items_total, w->written, hs.attempts,
                hs.throttles);
        fflush(stderr);
    } else {
        log_info("worker",
                 "scan %lld: %ld of %ld accounts done (this worker: %ld written, %lu "
                 "api calls)",
                 scan_id, st.items_total - st.items_left, st.items_total, w->written, hs.attempts);
    }
}

/* Finalizes scan_id when this worker is the one to (every item done, lock taken). 0 (done or
 * not ours), -1 with err on a database error before finalization could start. */
static int try_finalize(struct worker *w, long long scan_id, struct err *err)
{
    struct scan_totals totals = {0, 0, 0};
    int mine = queue_begin_finalize(w->db, scan_id, &totals, err);
    if (mine <= 0)
        return mine;
    char error_text[ERR_MSG_MAX + ERR_CODE_MAX + 32] = "";
    struct queue_scan_counts qc;
    struct queue_scan_state qs;
    struct scan_counts counts;
    memset(&counts, 0, sizeof counts);
    struct policy *policy = NULL;
    if (queue_scan_counts(w->db, scan_id, &qc, err) < 0 ||
        queue_scan_state(w->db, scan_id, &qs, err) < 0) {
        queue_end_finalize(w->db, scan_id);
        return -1;
    }
    _Static_assert(sizeof qc.by_mode == sizeof counts.by_mode &&
                       sizeof qc.by_status == sizeof counts.by_status,
                   "queue_scan_counts and scan_counts count the same buckets");
    memcpy(counts.by_status, qc.by_status, sizeof counts.by_status);
    memcpy(counts.by_mode, qc.by_mode, sizeof counts.by_mode);
    counts.accounts = qc.accounts;
    if (w->opts.scan_id != scan_id) {
        char *text = queue_options(w->db, scan_id, err);
        int prc = text ? scan_opts_parse(&w->opts, scan_id, text, err) : -1;
        free(text);
        if (prc < 0) {
            queue_end_finalize(w->db, scan_id);
            return -1;
        }
    }
    if (w->opts.policy) {
        struct err pe;
        err_clear(&pe);
        policy = policy_load(w->opts.policy, stderr, &pe);
        if (!policy)
            snprintf(error_text, sizeof error_text, "policy %s: %s", w->opts.policy, pe.message);
    }
    /* the scan's duration runs from its start (the enqueue), not from this worker's */
    double t0 = scan_mono_now() - (scan_real_now() - qs.started_s);
    struct scan_end end;
    int put_off = scan_end_run_or_put_off(w->db, scan_id, policy, t0, error_text, sizeof error_text,
                                          &counts, &totals, (enum org_scps)qc.scps_state, &end);
    policy_free(policy);
    if (put_off) {
        /* every result is stored: a later finalizer (this worker once the database is back, or
         * the next one) ends it; it is not marked failed for an outage */
        queue_end_finalize(w->db, scan_id);
        log_warn("worker", "scan %lld: finalization put off, for this or the next worker: %s",
                 scan_id, error_text);
        if (++w->put_offs >= PUT_OFF_MAX)
            return err_set(err, "FinalizationPutOff",
                           "finalizing scan %lld: put off %d times, the last: %s", scan_id,
                           w->put_offs, error_text);
        return err_set(err, ERR_DB_CONNECT, "finalizing scan %lld: %s", scan_id, error_text);
    }
    if (end.finish_failed) {
        queue_end_finalize(w->db, scan_id);
        if (strcmp(end.finish_err.code, "ScanNotRunning") == 0)
            return 0; /* finalized by someone else meanwhile: nothing of ours to say */
        log_command_error("worker", "cannot finalize scan %lld: %s", scan_id,
                          end.finish_err.message);
    }
    if (strcmp(end.status, "failed") == 0)
        log_command_error("worker", "scan %lld failed: %s", scan_id,
                          error_text[0] ? error_text : end.finish_err.message);
    if (w->progress_line)
        fputs("\r\033[K", stderr);
    log_info("worker", "scan %lld finalized by this worker: %s", scan_id, end.status);
    scan_summary_print(scan_id, &end, &counts, &totals, 0, (enum org_scps)qc.scps_state);
    fflush(stdout);
    if (w->metrics_file)
        scan_metrics_write(w->metrics_file, &end, &counts, &totals, NULL, 0);
    note_exit(w, scan_end_exit_code(&end, w->fail_on_drift, w->fail_on));
    w->finalized++;
    return 0;
}

/* Finalizes every scan (of only_scan) whose items are all done and that nobody finalized. */
static int finalize_complete(struct worker *w, struct err *err)
{
    long long ids[32];
    size_t n = 0;
    if (queue_unfinalized(w->db, w->only_scan, ids, 32, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (try_finalize(w, ids[i], err) < 0)
            return -1;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (!stop_signal && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int make_owner(char *out, size_t cap)
{
    char host[256];
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    snprintf(out, cap, "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}

#define RECOVER_MAX 5           /* recoveries in a row with no successful claim in between */
#define RECOVER_BACKOFF_MS 1000 /* before the second of them, doubling */

/* After a database call of the main loop failed with e: when the database connection was lost
 * (ERR_DB_CONNECT or a SQLSTATE of a lost connection, never an AWS or credential endpoint's
 * ConnectionError; and the writer did not already wait out the bound), reconnects within the
 * bound and gives back every item this worker holds (a claim whose COMMIT landed unanswered
 * included; its accounts are claimed again, by this worker or another, and scanned then). A
 * connection that keeps being lost right after coming back is given up on after RECOVER_MAX
 * recoveries without a claim in between, with a backoff between them. 0: go on claiming. */
static int recover(struct worker *w, struct err *e)
{
    if (w->db_gave_up || stop_signal || !db_connection_lost(w->db, e))
        return -1;
    if (w->recoveries >= RECOVER_MAX) {
        err_prefix(e, "the database connection was lost %d times in a row: ", w->recoveries + 1);
        return -1;
    }
    if (w->recoveries > 0)
        sleep_ms(RECOVER_BACKOFF_MS << (w->recoveries - 1));
    w->recoveries++;
    struct lease_op op = {w->owner, 0, 0};
    if (db_retry(w->db, "giving back this worker's leases", lease_op, &op, NULL, e) < 0)
        return -1;
    log_warn("worker",
             "the database connection was lost and is back: %d work item%s given back "
             "to be claimed again",
             op.n, op.n == 1 ? "" : "s");
    return 0;
}

/* Gives back what this worker still holds; the accounts of its batch whose work began keep the
 * claim's attempt. */
static int release_batch(struct worker *w, int *n, struct err *e)
{
    const char **ids = calloc(w->n_started ? w->n_started : 1, sizeof *ids);
    if (!ids)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n_started; i++)
        ids[i] = w->started[i];
    int rc = queue_release_started(w->db, w->owner, ids, w->n_started, n, e);
    free(ids);
    if (rc == 0)
        w->n_started = 0;
    return rc;
}

/* The worker's loop. EXIT_* */
static int work(struct worker *w, int wait)
{
    struct err e;
    err_clear(&e);
    struct queue_item items[MAX_BATCH];
    int saw_scan = 0, exit_code = EXIT_OK;
    if (w->only_scan > 0) {
        struct queue_scan_state st;
        if (queue_scan_state(w->db, w->only_scan, &st, &e) < 0)
            goto failed;
        struct scan_info info;
        struct err ie;
        int known = !st.exists && db_scan_info(w->db, w->only_scan, &info, &ie) == 0;
        /* a scan of `egressscan scan` never gets work items; one not created yet may (--wait) */
        if (known || (!st.exists && !wait)) {
            log_command_error("worker", "%s %lld",
                              known ? "not an enqueued scan (egressscan scan --enqueue):"
                                    : "there is no scan",
                              w->only_scan);
            return EXIT_USAGE;
        }
    }
    if (wait && w->only_scan == 0) {
        /* A pod restarted after the night's scan ended (its Job replaces failed pods, and the
         * finalizer exits 3 for a partial scan) has nothing to wait for. */
        long open = 0;
        int ended = 0;
        if (queue_open_scans(w->db, 0, &open, &e) < 0 ||
            (open == 0 && queue_recently_ended(w->db, RECENT_S, &ended, &e) < 0))
            goto failed;
        if (open == 0 && ended) {
            log_info("worker",
                     "no open scan, and an enqueued scan ended less than %d minutes "
                     "ago: nothing to wait for",
                     RECENT_S / 60);
            goto release;
        }
    }
again:
    while (!stop_signal) {
        long long scan_id = 0;
        size_t n = 0;
        if (queue_claim(w->db, w->only_scan, w->owner, w->lease_s, w->batch, &scan_id, items, &n,
                        &e) < 0)
            goto failed;
        w->recoveries = 0;
        if (n > 0) {
            saw_scan = 1;
            if (run_batch(w, scan_id, items, n, &e) < 0)
                goto failed;
            /* every account of the batch is written or dropped, or was refused (given back
             * here with its attempt counted): nothing of it stays leased */
            if (release_batch(w, NULL, &e) < 0)
                goto failed;
            report_progress(w, scan_id);
            /* a stopped worker leaves the finalization (drift, not bound by the grace) to the
             * next one */
            if (!stop_signal && try_finalize(w, scan_id, &e) < 0)
                goto failed;
            continue;
        }
        /* nothing claimable: scans whose last item is done but that nobody finalized (their
         * finalizer died) are finalized here */
        if (finalize_complete(w, &e) < 0)
            goto failed;
        if (w->finalized)
            saw_scan = 1;
        if (!wait)
            break;
        long open = 0;
        if (queue_open_scans(w->db, w->only_scan, &open, &e) < 0)
            goto failed;
        if (open > 0) {
            saw_scan = 1;
        } else if (saw_scan) {
            break; /* the scans this worker waited for are finalized */
        } else if (w->only_scan > 0) {
            struct queue_scan_state st;
            if (queue_scan_state(w->db, w->only_scan, &st, &e) < 0)
                goto failed;
            if (st.exists)
                break; /* enqueued and already finalized */
        }
        int stale = 0;
        if (queue_abort_stale(w->db, &stale, &e) < 0)
            goto failed;
        sleep_ms(POLL_MS);
    }
    exit_code = w->exit_code;
    goto release;
failed:
    if (recover(w, &e) == 0) {
        err_clear(&e);
        goto again;
    }
    log_command_error("worker", "%s (%s)", e.message, e.code);
    exit_code = EXIT_FAILED;
release:;
    if (w->progress_line)
        fputs("\r\033[K", stderr);
    int released = 0;
    struct err re;
    err_clear(&re);
    if (release_batch(w, &released, &re) < 0)
        log_warn("worker", "releasing leases failed (they expire by themselves): %s", re.message);
    else if (released)
        log_info("worker", "released %d work item%s for other workers", released,
                 released == 1 ? "" : "s");
    if (stop_signal && exit_code != EXIT_FAILED) {
        log_info("worker", "stopped by %s", stop_signal_name(stop_signal));
        exit_code = stop_exit_code(stop_signal);
    }
    log_info("worker",
             "worker %s: %ld accounts written, %ld dropped after a lost lease, %ld refused by "
             "the database, %ld abandoned, %ld database reconnections",
             w->owner, w->written, w->lost, w->refused, w->abandoned, db_reconnect_count(w->db));
    return exit_code;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan worker [--scan ID] [--wait] [OPTIONS]\n\n"
            "Claims work items (accounts) of scans created with 'egressscan scan --enqueue', a\n"
            "few at a time with a lease, scans them and stores their results; many workers on\n"
            "many machines may run at once. The worker that completes a scan's last item\n"
            "finalizes it (drift, summary). Without --wait it exits when nothing is claimable.\n\n"
            "  --scan ID                  only this scan's items (default: every open scan)\n"
            "  --wait                     wait for a scan to be enqueued, then until it is\n"
            "                             finalized (Kubernetes Jobs, started before the enqueue)\n"
            "  --config FILE              JSON config file (database_url, concurrency, logs,\n"
            "                             fail_on)\n"
            "  --concurrency N            API requests in flight (128)\n"
            "  --database-url URL         PostgreSQL (else DATABASE_URL, PG* variables)\n"
            "  --metrics-file PATH        Prometheus text file, written by the finalizing worker\n"
            "  --log-format text|json     log line format (text)\n"
            "  --log-level LEVEL          debug, info, warn, error (info)\n"
            "  --no-progress              no progress line on a terminal\n"
            "  --fail-on-drift            exit 1 when the scan this worker finalized raised "
            "findings\n"
            "  --fail-on SEVERITY         exit 1 when it raised a finding of SEVERITY or higher\n"
            "                             (critical, high, medium, low, info)\n\n"
            "The scan's accounts, regions, role, external id and policy file come from the\n"
            "enqueue. SIGTERM or SIGINT: no more claims and no new account; the requests under\n"
            "way get EGRESSSCAN_STOP_GRACE_SECONDS (20) to finish, the accounts finished are\n"
            "written, the rest is released; exit 143 (SIGTERM) or 130 (SIGINT). A second\n"
            "signal exits at once. Exit codes as for scan when this worker finalized a scan\n"
            "(0, 1, 3, 4); else 0, or 4 when the database or the credentials failed; 2 for a\n"
            "usage or configuration error, a malformed AWS setting included (AWS_ENDPOINT_URL*,\n"
            "AWS_PROFILE naming no profile, AWS_REGION, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE).\n");
}

enum {
    OPT_SCAN = 256,
    OPT_WAIT,
    OPT_CONFIG,
    OPT_CONCURRENCY,
    OPT_DB,
    OPT_METRICS,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_NO_PROGRESS,
    OPT_FAIL_ON_DRIFT,
    OPT_FAIL_ON,
    OPT_LEASE,
    OPT_BATCH,
    OPT_HELP
};

static const struct option worker_opts[] = {
    {"scan", required_argument, NULL, OPT_SCAN},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"database-url", required_argument, NULL, OPT_DB},
    {"metrics-file", required_argument, NULL, OPT_METRICS},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"fail-on-drift", no_argument, NULL, OPT_FAIL_ON_DRIFT},
    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
    {"lease-seconds", required_argument, NULL, OPT_LEASE}, /* hidden: tests */
    {"batch", required_argument, NULL, OPT_BATCH},         /* hidden: tests */
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

struct worker_flags {
    long long scan;
    int wait, fail_on_drift;
    long lease_s, batch;
};

/* --config first (flags win), then the flags. 0, 1 for --help, -1 with err. */
static int parse_args(int argc, char **argv, struct scan_config *cfg, struct worker_flags *fl,
                      struct err *e)
{
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", worker_opts, NULL)) != -1)
        if (c == OPT_CONFIG && config_load_file(cfg, optarg, e) < 0)
            return -1;
    opterr = 1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", worker_opts, NULL)) != -1) {
        long v = 0;
        int r = 0;
        switch (c) {
        case OPT_CONFIG:
            break;
        case OPT_SCAN:
            if (config_parse_long(optarg, 1, 0x7fffffffL, &v) < 0)
                return err_set(e, ERR_CONFIG, "--scan: not a scan id: %s", optarg);
            fl->scan = v;
            break;
        case OPT_WAIT:
            fl->wait = 1;
            break;
        case OPT_CONCURRENCY:
            if (config_parse_long(optarg, 1, 4096, &v) < 0)
                return err_set(e, ERR_CONFIG, "--concurrency: not a number from 1 to 4096: %s",
                               optarg);
            cfg->concurrency = (int)v;
            break;
        case OPT_DB:
            r = config_set_string(&cfg->database_url, optarg);
            break;
        case OPT_METRICS:
            r = config_set_string(&cfg->metrics_file, optarg);
            break;
        case OPT_LOG_FORMAT:
            r = config_set_string(&cfg->log_format, optarg);
            break;
        case OPT_LOG_LEVEL:
            r = config_set_string(&cfg->log_level, optarg);
            break;
        case OPT_NO_PROGRESS:
            cfg->no_progress = 1;
            break;
        case OPT_FAIL_ON_DRIFT:
            fl->fail_on_drift = 1;
            break;
        case OPT_FAIL_ON:
            r = config_set_string(&cfg->fail_on, optarg);
            break;
        case OPT_LEASE:
            if (config_parse_long(optarg, 2, 3600, &fl->lease_s) < 0)
                return err_set(e, ERR_CONFIG, "--lease-seconds: not a number from 2 to 3600");
            break;
        case OPT_BATCH:
            if (config_parse_long(optarg, 1, MAX_BATCH, &fl->batch) < 0)
                return err_set(e, ERR_CONFIG, "--batch: not a number from 1 to %d", MAX_BATCH);
            break;
        case OPT_HELP:
            return 1;
        default:
            return err_set(e, ERR_CONFIG, "unknown option (see egressscan worker --help)");
        }
        if (r < 0)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (optind < argc)
        return err_set(e, ERR_CONFIG, "unexpected argument '%s'", argv[optind]);
    return config_validate(cfg, e);
}

int cmd_worker(int argc, char **argv)
{
    struct scan_config cfg;
    config_init(&cfg);
    struct err e;
    err_clear(&e);
    struct worker_flags fl = {.lease_s = DEFAULT_LEASE_S, .batch = DEFAULT_BATCH};
    int rc = parse_args(argc, argv, &cfg, &fl, &e);
    if (rc == 1) {
        usage(stdout);
        config_cleanup(&cfg);
        return EXIT_OK;
    }
    if (rc < 0) {
        log_command_error("worker", "%s", e.message);
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    int json_logs = cfg.log_format && strcmp(cfg.log_format, "json") == 0;
    int level = cfg.log_level ? log_level_parse(cfg.log_level) : LOG_INFO;
    log_setup((enum log_level)level, json_logs ? LOG_JSON : LOG_TEXT, NULL);

    int exit_code = EXIT_FAILED;
    struct worker w;
    memset(&w, 0, sizeof w);
    w.lease_s = (int)fl.lease_s;
    w.batch = (size_t)fl.batch;
    w.only_scan = fl.scan;
    w.fail_on_drift = fl.fail_on_drift;
    w.fail_on = scan_end_fail_on(cfg.fail_on);
    w.metrics_file = cfg.metrics_file;
    w.progress_line = !cfg.no_progress && !json_logs && isatty(STDERR_FILENO);
    struct http_engine_options eo;
    if (http_engine_options_init(&eo, &e) < 0) {
        log_command_error("worker", "%s", e.message);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (cfg.concurrency > 0)
        eo.max_in_flight = cfg.concurrency;
    if (aws_settings_check("worker") < 0 || stop_setup("worker", &w.stop_grace_s) < 0) {
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (make_owner(w.owner, sizeof w.owner) < 0) {
        log_command_error("worker", "no random bytes for the worker's id");
        goto out;
    }
    w.db = scan_db_open(cfg.database_url, "worker", &exit_code);
    if (!w.db)
        goto out;
    exit_code = EXIT_FAILED;
    int stale = 0;
    if (queue_abort_stale(w.db, &stale, &e) < 0) {
        log_command_error("worker", "%s", e.message);
        goto out;
    }
    if (stale)
        log_warn("worker", "%d enqueued scan%s that no worker worked on for a day: marked aborted",
                 stale, stale == 1 ? "" : "s");
    w.engine = http_engine_new(&eo, &e);
    if (w.engine)
        w.chain = creds_chain_new(NULL, &e);
    if (!w.chain) {
        log_command_error("worker", "%s", e.message);
        goto out;
    }
    log_info("worker", "worker %s started (lease %d s, batches of %zu)", w.owner, w.lease_s,
             w.batch);
    exit_code = work(&w, fl.wait);

out:
    free(w.started);
    scan_opts_cleanup(&w.opts);
    creds_chain_free(w.chain);
    http_engine_free(w.engine);
    db_close(w.db);
    config_cleanup(&cfg);
    return exit_code;
}
