/* scan.c - `egressscan scan`: one full scan. Reads flags and the config file, connects to the
 * database, runs the scheduler on the HTTP engine and hands each finished target to the database
 * writer thread (result_sink: batches, each one transaction), then evaluates drift, finalizes the
 * run, prints the summary, writes the metrics file and picks the exit code. This is where
 * scanner/ and storage/ meet. */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/egressscan/commands.h"
#include "cmd/egressscan/dating_stage.h"
#include "cmd/egressscan/drift_stage.h"
#include "cmd/egressscan/result_sink.h"
#include "cmd/egressscan/scan_end.h"
#include "cmd/egressscan/stop.h"
#include "common/config.h"
#include "common/isotime.h"
#include "common/log.h"
#include "intent/policy.h"
#include "scanner/creds.h"
#include "scanner/dating.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/scheduler.h"
#include "storage/db.h"
#include "storage/findings.h"

struct pipeline {
    struct db *db;
    long long scan_id;
    struct http_engine *engine;
    struct result_sink *sink; /* owns db while the scheduler runs */
    struct scan_counts counts;
    long accounts_seen;
    int db_failed;
    struct err db_err;
    int progress_line; /* draw a progress line on the terminal */
    double t0;
    double db_write_s; /* time spent in database writes (results, snapshot) */
    long interrupted;  /* results a stop left not scanned (SCHED_INTERRUPTED) */
};

static int on_target(void *ud, const struct target_result *r)
{
    struct pipeline *p = ud;
    if (p->db_failed)
        return -1;
    scan_counts_add(&p->counts, r);
    if (r->error_code && strcmp(r->error_code, SCHED_INTERRUPTED) == 0)
        p->interrupted++;
    if (result_sink_target(p->sink, r) < 0) {
        p->db_failed = 1;
        return -1;
    }
    return 0;
}

static void on_accounts(void *ud, const struct account *a, size_t n)
{
    struct pipeline *p = ud;
    p->accounts_seen += (long)n;
    if (!p->db_failed && result_sink_accounts(p->sink, a, n) < 0)
        p->db_failed = 1;
}

static void on_org_unit(void *ud, const struct org_unit *ou)
{
    struct pipeline *p = ud;
    if (!p->db_failed && result_sink_org_unit(p->sink, ou) < 0)
        p->db_failed = 1;
}

static void on_scp(void *ud, const struct scp_policy *policy)
{
    struct pipeline *p = ud;
    if (!p->db_failed && result_sink_scp(p->sink, policy) < 0)
        p->db_failed = 1;
}

static void on_progress(void *ud, const struct scheduler_progress *pr)
{
    struct pipeline *p = ud;
    struct http_engine_stats st;
    http_engine_get_stats(p->engine, &st);
    if (!p->progress_line) {
        log_debug("scan", "progress: accounts %ld/%ld targets %ld/%ld (failed %ld) api %lu",
                  pr->accounts_done, pr->accounts_total, pr->targets_done, pr->targets_total,
                  pr->targets_failed, st.attempts);
        return;
    }
    /* accounts and targets done / total ("?" while discovery lists them); the ETA follows the
     * targets once their total is known, the accounts before */
    char accounts[48], targets[48], eta[32] = "?";
    if (pr->accounts_total >= 0)
        snprintf(accounts, sizeof accounts, "%ld/%ld", pr->accounts_done, pr->accounts_total);
    else
        snprintf(accounts, sizeof accounts, "%ld/?", pr->accounts_done);
    if (pr->targets_total >= 0)
        snprintf(targets, sizeof targets, "%ld/%ld", pr->targets_done, pr->targets_total);
    else
        snprintf(targets, sizeof targets, "%ld/?", pr->targets_done);
    double left = -1;
    if (pr->targets_total > 0 && pr->targets_done > 0)
        left = pr->elapsed_s / (double)pr->targets_done *
               (double)(pr->targets_total - pr->targets_done);
    else if (pr->accounts_total > 0 && pr->accounts_done > 0)
        left = pr->elapsed_s / (double)pr->accounts_done *
               (double)(pr->accounts_total - pr->accounts_done);
    if (left >= 0)
        snprintf(eta, sizeof eta, "%dm%02ds", (int)left / 60, (int)left % 60);
    fprintf(stderr,
            "\r\033[Kaccounts %s  targets %s (%ld failed)  api calls %lu  throttled %lu  ETA %s",
            accounts, targets, pr->targets_failed, st.attempts, st.throttles, eta);
    fflush(stderr);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan scan [OPTIONS]\n\n"
            "One full scan: discover accounts and regions, describe every EKS cluster, store\n"
            "the results in PostgreSQL, print a summary.\n\n"
            "  --config FILE              JSON config file (keys mirror these flags; flags win)\n"
            "  --accounts ID,...          scan these accounts (no Organizations calls)\n"
            "  --exclude-accounts ID,...  skip these accounts\n"
            "  --ou OU_ID                 only accounts under this OU\n"
            "  --regions R,...|all        regions (default all: each account's enabled regions)\n"
            "  --role-name NAME           role assumed in each account (EgressScanReadOnly)\n"
            "  --external-id ID           sts:ExternalId for that role\n"
            "  --org-role-arn ARN         role for Organizations calls\n"
            "  --concurrency N            API requests in flight (128)\n"
            "  --database-url URL         PostgreSQL (else DATABASE_URL, PG* variables)\n"
            "  --metrics-file PATH        Prometheus text file for node_exporter\n"
            "  --log-format text|json     log line format (text)\n"
            "  --log-level LEVEL          debug, info, warn, error (info)\n"
            "  --no-progress              no progress line on a terminal\n"
            "  --policy FILE              declared policy (see egressscan policy check)\n"
            "  --fail-on-drift            exit 1 when the scan raised findings\n"
            "  --fail-on SEVERITY         exit 1 when the scan raised a finding of SEVERITY or\n"
            "                             higher: critical, high, medium, low, info\n"
            "  --enqueue                  only discover: create the scan and one work item per\n"
            "                             account for 'egressscan worker', print the scan id\n"
            "                             (--fail-on goes to the worker that finalizes it)\n\n"
            "Exit codes: 0 done; 1 done, findings raised (with --fail-on-drift, or --fail-on\n"
            "and a finding that severe); 2 usage or configuration error, including a malformed\n"
            "AWS setting (AWS_ENDPOINT_URL*, AWS_PROFILE naming no profile, AWS_REGION,\n"
            "AWS_MAX_ATTEMPTS, AWS_RETRY_MODE): nothing is written; 3 done but partial (some\n"
            "targets could not be scanned, or the SCPs could not be read); 4 failed (database,\n"
            "credentials, Organizations). 3 and 4 win over 1. SIGTERM or SIGINT: no new\n"
            "account, the requests under way get EGRESSSCAN_STOP_GRACE_SECONDS (20), what\n"
            "finished is stored, the rest recorded not scanned (Interrupted), the scan aborted;\n"
            "exit 143 (SIGTERM) or 130 (SIGINT). A second signal exits at once.\n");
}

enum {
    OPT_CONFIG = 256,
    OPT_ACCOUNTS,
    OPT_EXCLUDE,
    OPT_OU,
    OPT_REGIONS,
    OPT_ROLE,
    OPT_EXTERNAL,
    OPT_ORG_ROLE,
    OPT_CONCURRENCY,
    OPT_POLICY,
    OPT_DB,
    OPT_METRICS,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_NO_PROGRESS,
    OPT_PAGE_SIZE,
    OPT_AS_OF,
    OPT_FAIL_ON_DRIFT,
    OPT_FAIL_ON,
    OPT_ENQUEUE,
    OPT_HELP
};

static const struct option scan_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"accounts", required_argument, NULL, OPT_ACCOUNTS},
    {"exclude-accounts", required_argument, NULL, OPT_EXCLUDE},
    {"ou", required_argument, NULL, OPT_OU},
    {"regions", required_argument, NULL, OPT_REGIONS},
    {"role-name", required_argument, NULL, OPT_ROLE},
    {"external-id", required_argument, NULL, OPT_EXTERNAL},
    {"org-role-arn", required_argument, NULL, OPT_ORG_ROLE},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"database-url", required_argument, NULL, OPT_DB},
    {"metrics-file", required_argument, NULL, OPT_METRICS},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE}, /* hidden: tests */
    {"as-of", required_argument, NULL, OPT_AS_OF},         /* hidden: history for tests/demos */
    {"fail-on-drift", no_argument, NULL, OPT_FAIL_ON_DRIFT},
    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
    {"enqueue", no_argument, NULL, OPT_ENQUEUE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

/* "2026-11-01T10:00:00Z" or unix seconds. */
static int parse_time(const char *s, double *out)
{
    time_t t;
    if (iso8601_parse(s, &t) == 0) {
        *out = (double)t;
        return 0;
    }
    char *e;
    double v = strtod(s, &e);
    if (*e || e == s || v <= 0)
        return -1;
    *out = v;
    return 0;
}

/* Flags that have no config file key. */
struct scan_flags {
    double as_of;      /* hidden: record the scan as if it ran at this time */
    int targeted;      /* --accounts or --ou given on the command line (SPEC section 5) */
    int fail_on_drift; /* exit 1 when the scan raised findings */
    int fail_on_flag;  /* --fail-on given on the command line */
    int enqueue;       /* discovery and work items only (enqueue.c) */
};

/* Applies argv onto cfg (after the config file). Returns 0, 1 for --help, -1 on error. */
static int apply_flags(int argc, char **argv, struct scan_config *cfg, struct scan_flags *fl,
                       struct err *e)
{
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", scan_opts, NULL)) != -1) {
        int r = 0;
        long v = 0;
        switch (c) {
        case OPT_CONFIG:
            break;
        case OPT_ACCOUNTS:
            fl->targeted = 1;
            str_list_free(&cfg->accounts);
            r = str_list_split(&cfg->accounts, optarg);
            break;
        case OPT_EXCLUDE:
            str_list_free(&cfg->exclude_accounts);
            r = str_list_split(&cfg->exclude_accounts, optarg);
            break;
        case OPT_REGIONS:
            str_list_free(&cfg->regions);
            if (strcmp(optarg, "all") != 0)
                r = str_list_split(&cfg->regions, optarg);
            break;
        case OPT_OU:
            fl->targeted = 1;
            r = config_set_string(&cfg->ou, optarg);
            break;
        case OPT_ROLE:
            r = config_set_string(&cfg->role_name, optarg);
            break;
        case OPT_EXTERNAL:
            r = config_set_string(&cfg->external_id, optarg);
            break;
        case OPT_ORG_ROLE:
            r = config_set_string(&cfg->org_role_arn, optarg);
            break;
        case OPT_POLICY:
            r = config_set_string(&cfg->policy, optarg);
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
        case OPT_FAIL_ON_DRIFT:
            fl->fail_on_drift = 1;
            break;
        case OPT_FAIL_ON:
            r = config_set_string(&cfg->fail_on, optarg);
            fl->fail_on_flag = 1;
            break;
        case OPT_ENQUEUE:
            fl->enqueue = 1;
            break;
        case OPT_NO_PROGRESS:
            cfg->no_progress = 1;
            break;
        case OPT_CONCURRENCY:
            if (config_parse_long(optarg, 1, 4096, &v) < 0)
                return err_set(e, ERR_CONFIG, "--concurrency: not a number from 1 to 4096: %s",
                               optarg);
            cfg->concurrency = (int)v;
            break;
        case OPT_PAGE_SIZE:
            if (config_parse_long(optarg, 1, 100, &v) < 0)
                return err_set(e, ERR_CONFIG, "--page-size: not a number from 1 to 100");
            cfg->page_size = (int)v;
            break;
        case OPT_AS_OF:
            if (parse_time(optarg, &fl->as_of) < 0)
                return err_set(e, ERR_CONFIG, "--as-of: not a time (YYYY-MM-DDTHH:MM:SSZ): %s",
                               optarg);
            break;
        case OPT_HELP:
            return 1;
        default:
            return err_set(e, ERR_CONFIG, "unknown option (see egressscan scan --help)");
        }
        if (r < 0)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (optind < argc)
        return err_set(e, ERR_CONFIG, "unexpected argument '%s'", argv[optind]);
    if (fl->enqueue && fl->as_of > 0)
        return err_set(e, ERR_CONFIG, "--as-of and --enqueue do not go together");
    /* the enqueue ends before any finding exists: the threshold is the finalizing worker's
     * (a config file's fail_on is fine: the workers read the same file) */
    if (fl->enqueue && fl->fail_on_flag)
        return err_set(e, ERR_CONFIG,
                       "--fail-on applies to the worker that finalizes an enqueued scan: pass it "
                       "to egressscan worker");
    if (config_validate(cfg, e) < 0)
        return -1;
    for (size_t i = 0; i < cfg->regions.n; i++)
        if (!endpoint_region_valid(cfg->regions.items[i]))
            return err_set(e, ERR_CONFIG, "\"%s\" is not a region name", cfg->regions.items[i]);
    return 0;
}

/* Loads --config (if any) first, so that flags win. */
static int load_config(int argc, char **argv, struct scan_config *cfg, struct scan_flags *fl,
                       struct err *e)
{
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", scan_opts, NULL)) != -1)
        if (c == OPT_CONFIG && config_load_file(cfg, optarg, e) < 0)
            return -1;
    opterr = 1;
    return apply_flags(argc, argv, cfg, fl, e);
}

int cmd_scan(int argc, char **argv)
{
    struct scan_config cfg;
    config_init(&cfg);
    struct err e;
    err_clear(&e);
    struct scan_flags fl = {0};
    int rc = load_config(argc, argv, &cfg, &fl, &e);
    double as_of = fl.as_of;
    if (rc == 1) {
        usage(stdout);
        config_cleanup(&cfg);
        return EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "egressscan scan: %s\n", e.message);
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    int json_logs = cfg.log_format && strcmp(cfg.log_format, "json") == 0;
    int level = cfg.log_level ? log_level_parse(cfg.log_level) : LOG_INFO;
    log_setup((enum log_level)level, json_logs ? LOG_JSON : LOG_TEXT, NULL);
    /* before the database: a malformed AWS setting writes no scan row (SPEC.md section 2) */
    if (aws_settings_check("scan") < 0) {
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    if (fl.enqueue) {
        stop_ignore_sigpipe(); /* libcurl runs with CURLOPT_NOSIGNAL: stop.h */
        int qrc = scan_enqueue(&cfg, fl.targeted);
        config_cleanup(&cfg);
        return qrc;
    }

    double stop_grace_s = 0;
    if (stop_setup("scan", &stop_grace_s) < 0) {
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    int exit_code = EXIT_FAILED;
    struct pipeline p;
    memset(&p, 0, sizeof p);
    p.progress_line = !cfg.no_progress && !json_logs && isatty(STDERR_FILENO);
    struct creds_chain *chain = NULL;
    struct http_engine *engine = NULL;
    struct policy *policy = NULL;
    char error_text[ERR_MSG_MAX + ERR_CODE_MAX + 256] = "";

    struct http_engine_options eo;
    if (http_engine_options_init(&eo, &e) < 0) {
        log_command_error("scan", "%s", e.message);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (cfg.concurrency > 0)
        eo.max_in_flight = cfg.concurrency;
    if (cfg.policy) {
        policy = policy_load(cfg.policy, stderr, &e);
        if (!policy) {
            log_command_error("scan", "%s", e.message);
            exit_code = EXIT_USAGE;
            goto out;
        }
    }

    p.db = scan_db_open(cfg.database_url, "scan", &exit_code);
    if (!p.db)
        goto out;
    exit_code = EXIT_FAILED;
    char *options_json = scan_options_json(&cfg, fl.targeted, eo.max_in_flight);
    double started = as_of > 0 ? as_of : scan_real_now();
    int aborted = 0;
    int begun = options_json &&
                db_scan_begin(p.db, started, options_json, &p.scan_id, &aborted, &e) == 0 &&
                db_set_scan_scope(p.db, p.scan_id, fl.targeted, &e) == 0;
    free(options_json);
    if (!begun) {
        log_command_error("scan", "cannot start a scan run: %s",
                          err_isset(&e) ? e.message : "out of memory");
        goto out;
    }
    if (aborted)
        log_warn("scan", "%d earlier scan%s left running by a process that ended: marked aborted",
                 aborted, aborted == 1 ? "" : "s");
    log_info("scan", "scan %lld started", p.scan_id);
    p.t0 = scan_mono_now();

    /* From here until result_sink_finish the database connection belongs to the writer thread:
     * the event loop never waits for PostgreSQL (unless it falls behind). */
    p.sink = result_sink_start(p.db, p.scan_id, &e);
    if (p.sink)
        engine = http_engine_new(&eo, &e);
    if (engine)
        chain = creds_chain_new(NULL, &e);
    p.engine = engine;
    struct scheduler_result res;
    memset(&res, 0, sizeof res);
    int ran = -1;
    if (chain) {
        struct scheduler_options so = {
            .accounts = cfg.accounts.n ? (const char *const *)cfg.accounts.items : NULL,
            .n_accounts = cfg.accounts.n,
            .exclude_accounts = (const char *const *)cfg.exclude_accounts.items,
            .n_exclude = cfg.exclude_accounts.n,
            .ou = cfg.ou,
            .regions = cfg.regions.n ? (const char *const *)cfg.regions.items : NULL,
            .n_regions = cfg.regions.n,
            .role_name = cfg.role_name,
            .external_id = cfg.external_id,
            .org_role_arn = cfg.org_role_arn,
            .home_region = endpoint_home_region(),
            .page_size = cfg.page_size,
            .as_of = as_of,
            .stop = &stop_signal, /* SIGTERM, SIGINT: stop.h */
            .stop_grace_s = stop_grace_s};
        struct scheduler_callbacks cb = {.on_accounts = on_accounts,
                                         .on_org_unit = on_org_unit,
                                         .on_scp = on_scp,
                                         .on_target = on_target,
                                         .on_progress = on_progress,
                                         .ud = &p};
        ran = scheduler_run(engine, chain, &so, &cb, &res, &e);
    }
    if (p.progress_line)
        fputs("\r\033[K", stderr);
    double busy = 0;
    struct err se;
    err_clear(&se);
    struct result_sink_stats sink_stats;
    memset(&sink_stats, 0, sizeof sink_stats);
    if (p.sink && result_sink_finish_stats(p.sink, &busy, &sink_stats, &se) < 0) {
        p.db_failed = 1;
        p.db_err = se;
    }
    p.sink = NULL;
    p.db_write_s += busy;
    /* the changes this scan saw, dated from EKS on the same engine (before its stats are read) */
    if (ran == 0 && !p.db_failed) {
        struct dating_options dop = {.role_name = cfg.role_name,
                                     .external_id = cfg.external_id,
                                     .home_region = endpoint_home_region()};
        dating_stage_run(p.db, p.scan_id, engine, chain, &dop, NULL);
    }
    /* The connections, TLS state and buffers of the engine are of no more use: freed before the
     * drift stage needs memory of its own, so that the two peaks do not add up. */
    struct http_engine_stats st;
    memset(&st, 0, sizeof st);
    if (engine)
        http_engine_get_stats(engine, &st);
    http_engine_free(engine);
    engine = p.engine = NULL;
    creds_chain_free(chain);
    chain = NULL;
#ifdef __GLIBC__
    malloc_trim(0); /* hand the freed pages back instead of keeping them in the heap */
#endif
    /* targets counted ok when scanned that the writer could only record as rejected failed */
    long rejected = db_targets_rejected(p.db);
    p.counts.by_status[TARGET_OK] -= rejected;
    p.counts.by_status[TARGET_ERROR] += rejected;
    /* scanned (counted by on_target, the one the failed sink refused included) less stored */
    long unwritten = scan_counts_targets(&p.counts) - sink_stats.targets_written;
    long unwritten_clusters = scan_counts_clusters(&p.counts) - sink_stats.clusters_written;
    int db_unreachable = p.db_failed && db_connection_lost(p.db, &p.db_err);
    if (db_unreachable) {
        snprintf(error_text, sizeof error_text,
                 "the database was unreachable: %ld targets (%ld clusters) scanned but not "
                 "written (%s: %s)",
                 unwritten, unwritten_clusters, p.db_err.code, p.db_err.message);
    } else if (p.db_failed) {
        snprintf(error_text, sizeof error_text, "database: %s (%s)", p.db_err.message,
                 p.db_err.code);
    } else if (ran < 0) {
        snprintf(error_text, sizeof error_text, "%s (%s)", e.message, e.code);
    }
    enum org_scps scps = res.scps_state;
    if (!error_text[0] && res.interrupted) {
        /* stopped by a signal: what finished is stored, the rest is recorded not scanned
         * (Interrupted); no drift from an incomplete scan; the row says it was stopped */
        struct scan_totals stopped_totals = {(long long)st.attempts, (long long)st.throttles,
                                             (long long)st.retries};
        snprintf(error_text, sizeof error_text,
                 "stopped by %s after %.0f s: %ld targets scanned and stored; %ld targets or "
                 "accounts recorded not scanned (Interrupted)%s",
                 stop_signal_name(stop_signal), scan_mono_now() - p.t0,
                 sink_stats.targets_written - p.interrupted, p.interrupted,
                 res.cut_off ? ", the grace for the requests under way having run out" : "");
        struct scan_end end;
        scan_end_stopped(p.db, p.scan_id, as_of, p.t0, error_text, &stopped_totals, &end);
        if (end.finish_failed)
            log_command_error("scan", "cannot record scan %lld as stopped: %s", p.scan_id,
                              end.finish_err.message);
        log_warn("scan", "scan %lld: %s", p.scan_id, error_text);
        p.counts.accounts = res.progress.accounts_done;
        scan_summary_print(p.scan_id, &end, &p.counts, &stopped_totals, p.db_write_s, scps);
        exit_code = stop_exit_code(stop_signal);
        goto out;
    }
    if (!error_text[0]) {
        struct err de;
        err_clear(&de);
        if (scan_record_scps(p.db, p.scan_id, scps, &de) < 0) {
            db_unreachable = db_connection_lost(p.db, &de);
            snprintf(error_text, sizeof error_text, "drift evaluation: %s (%s)", de.message,
                     de.code);
        }
    }
    /* api_calls counts every call made, retries included (as the scans view says) */
    struct scan_totals totals = {(long long)st.attempts, (long long)st.throttles,
                                 (long long)st.retries};
    struct scan_end end;
    scan_end_run(p.db, p.scan_id, policy, as_of, p.t0, error_text, sizeof error_text, &p.counts,
                 &totals, scps, db_unreachable, &end);
    end.reconnects = db_reconnect_count(p.db);
    end.writes_retried = sink_stats.writes_retried;
    end.unwritten_targets = unwritten;
    end.unwritten_clusters = unwritten_clusters;
    if (end.finish_failed)
        log_command_error(
            "scan", "cannot finalize scan %lld: %s%s", p.scan_id, end.finish_err.message,
            end.finish_lost ? " (it stays running until the next scan marks it aborted)" : "");
    if (strcmp(end.status, "failed") == 0)
        log_command_error("scan", "scan %lld failed: %s", p.scan_id,
                          error_text[0] ? error_text : end.finish_err.message);
    p.counts.accounts = res.progress.accounts_done;
    scan_summary_print(p.scan_id, &end, &p.counts, &totals, p.db_write_s, scps);
    if (cfg.metrics_file)
        scan_metrics_write(cfg.metrics_file, &end, &p.counts, &totals, &st, p.db_write_s);
    exit_code = scan_end_exit_code(&end, fl.fail_on_drift, scan_end_fail_on(cfg.fail_on));
out:
    if (p.sink) {
        struct err ignored;
        result_sink_finish(p.sink, NULL, &ignored);
    }
    creds_chain_free(chain);
    http_engine_free(engine);
    db_close(p.db);
    policy_free(policy);
    config_cleanup(&cfg);
    return exit_code;
}
