/* enqueue.c - `egressscan scan --enqueue`: creates the scan, runs the discovery only (the
 * Organizations snapshot: accounts with OU paths, OUs, SCPs; or the fixed --accounts list) into
 * the database as `scan` stores it, then one work item per account that a scan would scan and
 * the options the workers need, and prints the scan id. The workers (worker.c) do the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/egressscan/commands.h"
#include "cmd/egressscan/result_sink.h"
#include "cmd/egressscan/scan_end.h"
#include "common/config.h"
#include "common/log.h"
#include "intent/policy.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/scheduler.h"
#include "storage/db.h"
#include "storage/findings.h"
#include "storage/queue.h"

struct enqueue {
    struct result_sink *sink;
    char **ids; /* the accounts to scan, copied */
    size_t n, cap;
    int failed; /* the database or memory failed */
};

static void on_accounts(void *ud, const struct account *a, size_t n)
{
    struct enqueue *q = ud;
    if (!q->failed && result_sink_accounts(q->sink, a, n) < 0)
        q->failed = 1;
}

static void on_org_unit(void *ud, const struct org_unit *ou)
{
    struct enqueue *q = ud;
    if (!q->failed && result_sink_org_unit(q->sink, ou) < 0)
        q->failed = 1;
}

static void on_scp(void *ud, const struct scp_policy *policy)
{
    struct enqueue *q = ud;
    if (!q->failed && result_sink_scp(q->sink, policy) < 0)
        q->failed = 1;
}

/* Discovery hands out results only for accounts it will not give the workers (a suspended
 * account's row): they are the scan's coverage as any other. */
static int on_target(void *ud, const struct target_result *r)
{
    struct enqueue *q = ud;
    if (q->failed || result_sink_target(q->sink, r) < 0) {
        q->failed = 1;
        return -1;
    }
    return 0;
}

static void on_selected(void *ud, const char *id)
{
    struct enqueue *q = ud;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        char **ids = realloc(q->ids, cap * sizeof *ids);
        if (!ids) {
            q->failed = 1;
            return;
        }
        q->ids = ids;
        q->cap = cap;
    }
    if (!(q->ids[q->n] = strdup(id)))
        q->failed = 1;
    else
        q->n++;
}

/* What every worker needs to scan an account as this scan would (never secrets: the external id
 * is not one, it names the trust relationship). New JSON text, or NULL. */
static char *work_options(const struct scan_config *cfg)
{
    json_t *o = json_object();
    json_t *regions = cfg->regions.n ? json_array() : json_null();
    for (size_t i = 0; i < cfg->regions.n; i++)
        json_array_append_new(regions, json_string(cfg->regions.items[i]));
    json_object_set_new(o, "regions", regions);
    json_object_set_new(o, "role_name", cfg->role_name ? json_string(cfg->role_name) : json_null());
    json_object_set_new(o, "external_id",
                        cfg->external_id ? json_string(cfg->external_id) : json_null());
    json_object_set_new(o, "page_size", json_integer(cfg->page_size));
    json_object_set_new(o, "policy", cfg->policy ? json_string(cfg->policy) : json_null());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

int scan_enqueue(const struct scan_config *cfg, int targeted)
{
    int exit_code = EXIT_FAILED;
    struct err e;
    err_clear(&e);
    struct db *db = NULL;
    struct http_engine *engine = NULL;
    struct creds_chain *chain = NULL;
    struct enqueue q;
    memset(&q, 0, sizeof q);
    char *options = NULL;
    long long scan_id = 0;
    char error_text[ERR_MSG_MAX + ERR_CODE_MAX + 32] = "";

    struct http_engine_options eo;
    if (http_engine_options_init(&eo, &e) < 0) {
        log_command_error("scan", "%s", e.message);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (cfg->concurrency > 0)
        eo.max_in_flight = cfg->concurrency;
    if (cfg->policy) {
        /* checked now: the worker that finalizes the scan reads it again */
        struct policy *policy = policy_load(cfg->policy, stderr, &e);
        if (!policy) {
            log_command_error("scan", "%s", e.message);
            exit_code = EXIT_USAGE;
            goto out;
        }
        policy_free(policy);
    }
    options = work_options(cfg);
    if (!options) {
        log_command_error("scan", "out of memory");
        goto out;
    }

    db = scan_db_open(cfg->database_url, "scan", &exit_code);
    if (!db)
        goto out;
    exit_code = EXIT_FAILED;
    int stale = 0;
    if (queue_abort_stale(db, &stale, &e) < 0) {
        log_command_error("scan", "%s", e.message);
        goto out;
    }
    if (stale)
        log_warn("scan", "%d enqueued scan%s that no worker worked on for a day: marked aborted",
                 stale, stale == 1 ? "" : "s");
    char *scan_options = scan_options_json(cfg, targeted, eo.max_in_flight);
    int aborted = 0;
    int begun = scan_options &&
                db_scan_begin(db, scan_real_now(), scan_options, &scan_id, &aborted, &e) == 0 &&
                db_set_scan_scope(db, scan_id, targeted, &e) == 0;
    free(scan_options);
    if (!begun) {
        log_command_error("scan", "cannot start a scan run: %s",
                          err_isset(&e) ? e.message : "out of memory");
        goto out;
    }
    if (aborted)
        log_warn("scan", "%d earlier scan%s left running by a process that ended: marked aborted",
                 aborted, aborted == 1 ? "" : "s");
    log_info("scan", "scan %lld created; discovering its accounts", scan_id);

    q.sink = result_sink_start(db, scan_id, &e);
    if (q.sink)
        engine = http_engine_new(&eo, &e);
    if (engine)
        chain = creds_chain_new(NULL, &e);
    struct scheduler_result res;
    memset(&res, 0, sizeof res);
    int ran = -1;
    if (chain) {
        struct scheduler_options so = {
            .accounts = cfg->accounts.n ? (const char *const *)cfg->accounts.items : NULL,
            .n_accounts = cfg->accounts.n,
            .exclude_accounts = (const char *const *)cfg->exclude_accounts.items,
            .n_exclude = cfg->exclude_accounts.n,
            .ou = cfg->ou,
            .role_name = cfg->role_name,
            .external_id = cfg->external_id,
            .org_role_arn = cfg->org_role_arn,
            .home_region = endpoint_home_region(),
            .page_size = cfg->page_size,
            .discover_only = 1};
        struct scheduler_callbacks cb = {.on_accounts = on_accounts,
                                         .on_org_unit = on_org_unit,
                                         .on_scp = on_scp,
                                         .on_target = on_target,
                                         .on_account_selected = on_selected,
                                         .ud = &q};
        ran = scheduler_run(engine, chain, &so, &cb, &res, &e);
    }
    struct err se;
    err_clear(&se);
    int sink_failed = q.sink && result_sink_finish(q.sink, NULL, &se) < 0;
    q.sink = NULL;
    struct http_engine_stats st;
    memset(&st, 0, sizeof st);
    if (engine)
        http_engine_get_stats(engine, &st);
    struct scan_totals totals = {(long long)st.attempts, (long long)st.throttles,
                                 (long long)st.retries};
    if (sink_failed)
        snprintf(error_text, sizeof error_text, "database: %s (%s)", se.message, se.code);
    else if (q.failed)
        snprintf(error_text, sizeof error_text, "out of memory listing accounts");
    else if (ran < 0)
        snprintf(error_text, sizeof error_text, "%s (%s)", e.message, e.code);
    struct err qe;
    err_clear(&qe);
    if (!error_text[0] &&
        (db_set_scps_state(db, scan_id, res.scps_state, &qe) < 0 ||
         queue_create(db, scan_id, options, (const char *const *)q.ids, q.n, &totals, &qe) < 0))
        snprintf(error_text, sizeof error_text, "enqueuing: %s (%s)", qe.message, qe.code);
    if (error_text[0]) {
        log_command_error("scan", "scan %lld failed: %s", scan_id, error_text);
        struct err fe;
        if (db_scan_finish(db, scan_id, scan_real_now(), "failed", &totals, error_text, &fe) < 0)
            log_command_error("scan", "cannot finalize scan %lld: %s", scan_id, fe.message);
        goto out;
    }
    log_info("scan", "scan %lld enqueued: %zu accounts for the workers (SCPs %s)", scan_id, q.n,
             org_scps_name(res.scps_state));
    printf("%lld\n", scan_id);
    exit_code = EXIT_OK;

out:
    if (q.sink) {
        struct err ignored;
        result_sink_finish(q.sink, NULL, &ignored);
    }
    for (size_t i = 0; i < q.n; i++)
        free(q.ids[i]);
    free(q.ids);
    free(options);
    creds_chain_free(chain);
    http_engine_free(engine);
    db_close(db);
    return exit_code;
}
