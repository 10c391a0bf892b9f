/* scan.c - `egressscan scan`: one full scan. Reads flags and the config file, connects to the
 * database, runs the scheduler on the HTTP engine and hands each finished target to the database
 * writer thread (result_sink: batches, each one transaction), then evaluates drift, finalizes the
 * run, prints the summary, writes the metrics file and picks the exit code. This is where
 * scanner/ and storage/ meet. */
#include <errno.h>
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
#include "cmd/egressscan/drift_stage.h"
#include "cmd/egressscan/result_sink.h"
#include "common/config.h"
#include "common/isotime.h"
#include "common/log.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/policy.h"
#include "scanner/scheduler.h"
#include "storage/db.h"
#include "storage/findings.h"

enum mode_bucket {
    MODE_AWS_MANAGED,
    MODE_CUSTOMER_ROUTED,
    MODE_CUSTOMER_ISOLATED,
    MODE_ABSENT,
    MODE_OTHER,
    MODE_BUCKETS
};
static const char *const mode_names[MODE_BUCKETS] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                                     "CUSTOMER_ISOLATED", "absent", "other"};

struct pipeline {
    struct db *db;
    long long scan_id;
    struct http_engine *engine;
    struct result_sink *sink; /* owns db while the scheduler runs */
    long by_status[TARGET_ERROR + 1];
    long by_mode[MODE_BUCKETS];
    long accounts_seen;
    int db_failed;
    struct err db_err;
    int progress_line; /* draw a progress line on the terminal */
    double t0;
    double db_write_s; /* time spent in database writes (results, snapshot, drift stage) */
    double drift_s;    /* of it, the drift stage (load the snapshot, evaluate, store findings) */
    struct result_sink_stats sink_stats;
    int db_unreachable; /* the database stayed unreachable past the retry bound */
    long unwritten_targets, unwritten_clusters; /* scanned but not stored */
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum mode_bucket bucket_of(const char *mode)
{
    if (!mode)
        return MODE_ABSENT;
    for (int i = 0; i < MODE_ABSENT; i++)
        if (strcmp(mode, mode_names[i]) == 0)
            return (enum mode_bucket)i;
    return MODE_OTHER;
}

static int on_target(void *ud, const struct target_result *r)
{
    struct pipeline *p = ud;
    if (p->db_failed)
        return -1;
    p->by_status[r->status]++;
    for (size_t i = 0; i < r->n_clusters; i++)
        p->by_mode[bucket_of(r->clusters[i].egress_mode)]++;
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
        log_debug("scan", "progress: accounts %ld/%ld targets %ld (failed %ld) api %lu",
                  pr->accounts_done, pr->accounts_total, pr->targets_done, pr->targets_failed,
                  st.requests);
        return;
    }
    char total[32], eta[32] = "?";
    if (pr->accounts_total >= 0)
        snprintf(total, sizeof total, "%ld", pr->accounts_total);
    else
        snprintf(total, sizeof total, "?");
    if (pr->accounts_total > 0 && pr->accounts_done > 0) {
        double left = pr->elapsed_s / (double)pr->accounts_done *
                      (double)(pr->accounts_total - pr->accounts_done);
        snprintf(eta, sizeof eta, "%dm%02ds", (int)left / 60, (int)left % 60);
    }
    fprintf(stderr,
            "\r\033[Kaccounts %ld/%s  targets %ld (%ld failed)  api calls %lu  throttled %lu  "
            "ETA %s",
            pr->accounts_done, total, pr->targets_done, pr->targets_failed, st.requests,
            st.throttles, eta);
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
            "  --fail-on-drift            exit 1 when the scan raised findings\n\n"
            "Exit codes: 0 done; 1 done, findings raised (with --fail-on-drift); 2 usage or\n"
            "configuration error; 3 done but some targets could not be scanned; 4 failed\n"
            "(database, credentials, Organizations).\n");
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
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static int replace(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

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
    int fail_on_drift; /* exit 1 when the scan raised findings */
};

/* Applies argv onto cfg (after the config file). Returns 0, 1 for --help, -1 on error. */
static int apply_flags(int argc, char **argv, struct scan_config *cfg, struct scan_flags *fl,
                       struct err *e)
{
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", scan_opts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case OPT_CONFIG:
            break;
        case OPT_ACCOUNTS:
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
            r = replace(&cfg->ou, optarg);
            break;
        case OPT_ROLE:
            r = replace(&cfg->role_name, optarg);
            break;
        case OPT_EXTERNAL:
            r = replace(&cfg->external_id, optarg);
            break;
        case OPT_ORG_ROLE:
            r = replace(&cfg->org_role_arn, optarg);
            break;
        case OPT_POLICY:
            r = replace(&cfg->policy, optarg);
            break;
        case OPT_DB:
            r = replace(&cfg->database_url, optarg);
            break;
        case OPT_METRICS:
            r = replace(&cfg->metrics_file, optarg);
            break;
        case OPT_LOG_FORMAT:
            r = replace(&cfg->log_format, optarg);
            break;
        case OPT_LOG_LEVEL:
            r = replace(&cfg->log_level, optarg);
            break;
        case OPT_FAIL_ON_DRIFT:
            fl->fail_on_drift = 1;
            break;
        case OPT_NO_PROGRESS:
            cfg->no_progress = 1;
            break;
        case OPT_CONCURRENCY:
            if (parse_int(optarg, 1, 4096, &cfg->concurrency) < 0)
                return err_set(e, ERR_CONFIG, "--concurrency: not a number from 1 to 4096: %s",
                               optarg);
            break;
        case OPT_PAGE_SIZE:
            if (parse_int(optarg, 1, 100, &cfg->page_size) < 0)
                return err_set(e, ERR_CONFIG, "--page-size: not a number from 1 to 100");
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

/* How long a lost database connection is waited for (hidden knob for tests and operators). */
#define DB_RETRY_ENV "EGRESSSCAN_DB_RETRY_SECONDS"

static int retry_bound_from_env(double *out, struct err *e)
{
    const char *v = getenv(DB_RETRY_ENV);
    *out = DB_RETRY_BOUND_S;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || end == v || !(d >= 0 && d <= 86400))
        return err_set(e, ERR_CONFIG, "%s: not a number of seconds from 0 to 86400: %s",
                       DB_RETRY_ENV, v);
    *out = d;
    return 0;
}

/* The drift stage as db_retry runs it: a run after a reconnection finds the findings of a lost
 * attempt whose COMMIT landed already written, and takes them as done (the evaluation that
 * fills the summary is the same: it reads the same stored scan). */
struct drift_op {
    long long scan_id;
    int scps_ok;
    const struct policy *policy;
    time_t now;
    struct drift_summary *drift;
    int runs;
};

static int drift_op(struct db *db, void *ud, struct err *err)
{
    struct drift_op *o = ud;
    o->runs++;
    if (db_set_scps_known(db, o->scan_id, o->scps_ok, err) < 0)
        return -1;
    if (drift_stage_run(db, o->scan_id, o->policy, o->now, o->drift, err) == 0)
        return 0;
    if (o->runs > 1 && strcmp(err->code, "FindingsWritten") == 0) {
        log_info("drift",
                 "scan %lld: findings already written by the attempt before the "
                 "reconnection",
                 o->scan_id);
        err_clear(err);
        return 0;
    }
    return -1;
}

/* db_scan_finish as db_retry runs it: after a reconnection the scan may already carry the
 * status the lost attempt wrote. */
struct finish_op {
    long long scan_id;
    double finished;
    const char *status;
    const struct scan_totals *totals;
    const char *error;
    int runs;
};

static int finish_op(struct db *db, void *ud, struct err *err)
{
    struct finish_op *o = ud;
    o->runs++;
    if (db_scan_finish(db, o->scan_id, o->finished, o->status, o->totals, o->error, err) == 0)
        return 0;
    struct scan_info info;
    struct err ie;
    if (o->runs > 1 && strcmp(err->code, "ScanNotRunning") == 0 &&
        db_scan_info(db, o->scan_id, &info, &ie) == 0 && strcmp(info.status, o->status) == 0) {
        log_info("scan", "scan %lld: already %s by the attempt before the reconnection", o->scan_id,
                 o->status);
        err_clear(err);
        return 0;
    }
    return -1;
}

static const char *home_region(void)
{
    const char *r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    return r && *r ? r : "us-east-1";
}

static void write_metrics(const char *path, const struct pipeline *p, const char *status,
                          double duration, const struct http_engine_stats *st, double finished,
                          const struct drift_summary *drift)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_error("scan", "metrics file %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f,
            "# HELP egressscan_scan_duration_seconds Duration of the last scan.\n"
            "# TYPE egressscan_scan_duration_seconds gauge\n"
            "egressscan_scan_duration_seconds %.3f\n",
            duration);
    fprintf(f,
            "# HELP egressscan_scan_finished_timestamp_seconds When the last scan ended.\n"
            "# TYPE egressscan_scan_finished_timestamp_seconds gauge\n"
            "egressscan_scan_finished_timestamp_seconds %.0f\n",
            finished);
    fprintf(f, "# HELP egressscan_scan_status Outcome of the last scan (1 for its status).\n"
               "# TYPE egressscan_scan_status gauge\n");
    static const char *const statuses[] = {"succeeded", "partial", "failed"};
    for (int i = 0; i < 3; i++)
        fprintf(f, "egressscan_scan_status{status=\"%s\"} %d\n", statuses[i],
                strcmp(status, statuses[i]) == 0);
    fprintf(f, "# HELP egressscan_targets Targets (account x region) by coverage status.\n"
               "# TYPE egressscan_targets gauge\n");
    for (int s = TARGET_OK; s <= TARGET_ERROR; s++)
        fprintf(f, "egressscan_targets{status=\"%s\"} %ld\n",
                target_status_name((enum target_status)s), p->by_status[s]);
    fprintf(f, "# HELP egressscan_clusters Clusters seen by egress mode.\n"
               "# TYPE egressscan_clusters gauge\n");
    for (int m = 0; m < MODE_BUCKETS; m++)
        fprintf(f, "egressscan_clusters{mode=\"%s\"} %ld\n", mode_names[m], p->by_mode[m]);
    fprintf(f,
            "# HELP egressscan_api_calls AWS API calls of the last scan.\n"
            "# TYPE egressscan_api_calls gauge\n"
            "egressscan_api_calls %lu\n"
            "# HELP egressscan_api_retries Retried AWS API attempts of the last scan.\n"
            "# TYPE egressscan_api_retries gauge\n"
            "egressscan_api_retries %lu\n"
            "# HELP egressscan_api_throttled Throttled AWS API attempts of the last scan.\n"
            "# TYPE egressscan_api_throttled gauge\n"
            "egressscan_api_throttled %lu\n",
            st->requests, st->retries, st->throttles);
    fprintf(f,
            "# HELP egressscan_database_write_seconds Time the last scan spent writing to the "
            "database (results, snapshot, drift stage).\n"
            "# TYPE egressscan_database_write_seconds gauge\n"
            "egressscan_database_write_seconds %.3f\n"
            "# HELP egressscan_drift_stage_seconds Of it, the drift stage (snapshot, findings).\n"
            "# TYPE egressscan_drift_stage_seconds gauge\n"
            "egressscan_drift_stage_seconds %.3f\n",
            p->db_write_s, p->drift_s);
    if (drift) {
        fprintf(f, "# HELP egressscan_findings Findings of the last scan by kind.\n"
                   "# TYPE egressscan_findings gauge\n");
        for (int k = 0; k < FINDING_KINDS; k++)
            fprintf(f, "egressscan_findings{kind=\"%s\"} %ld\n", finding_kind_names[k],
                    drift->by_kind[k]);
        fprintf(f,
                "# HELP egressscan_clusters_compliance Clusters by compliance (last scan).\n"
                "# TYPE egressscan_clusters_compliance gauge\n"
                "egressscan_clusters_compliance{state=\"compliant\"} %ld\n"
                "egressscan_clusters_compliance{state=\"noncompliant\"} %ld\n"
                "egressscan_clusters_compliance{state=\"exempt\"} %ld\n"
                "egressscan_clusters_compliance{state=\"unknown\"} %ld\n",
                drift->counts.compliant, drift->counts.noncompliant, drift->counts.exempt,
                drift->counts.unknown);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        log_error("scan", "metrics file %s: %s", path, strerror(errno));
}

static void print_summary(const struct pipeline *p, const char *status, double duration,
                          const struct scheduler_result *res, const struct http_engine_stats *st)
{
    long targets = 0, failed = 0, clusters = 0;
    for (int s = TARGET_OK; s <= TARGET_ERROR; s++) {
        targets += p->by_status[s];
        if (s != TARGET_OK)
            failed += p->by_status[s];
    }
    for (int m = 0; m < MODE_BUCKETS; m++)
        clusters += p->by_mode[m];
    printf("scan %lld %s in %.1f s\n", p->scan_id, status, duration);
    printf("  accounts  %ld scanned\n", res->progress.accounts_done);
    printf("  targets   %ld: %ld ok", targets, p->by_status[TARGET_OK]);
    for (int s = TARGET_ASSUME_ROLE_DENIED; s <= TARGET_ERROR; s++)
        if (p->by_status[s])
            printf(", %ld %s", p->by_status[s], target_status_name((enum target_status)s));
    printf("\n  clusters  %ld:", clusters);
    const char *sep = " ";
    for (int m = 0; m < MODE_BUCKETS; m++)
        if (p->by_mode[m]) {
            printf("%s%ld %s", sep, p->by_mode[m], mode_names[m]);
            sep = ", ";
        }
    printf("\n  api calls %lu (%lu retried, %lu throttled)\n", st->requests, st->retries,
           st->throttles);
    printf("  database writes %.2f s (drift stage %.2f s)\n", p->db_write_s, p->drift_s);
    if (p->db && db_reconnect_count(p->db) > 0)
        printf("  database  reconnected %ld time%s, %ld write%s retried\n",
               db_reconnect_count(p->db), db_reconnect_count(p->db) == 1 ? "" : "s",
               p->sink_stats.writes_retried, p->sink_stats.writes_retried == 1 ? "" : "s");
    if (p->db_unreachable && p->unwritten_targets > 0)
        printf("  not written %ld targets (%ld clusters): the database was unreachable\n",
               p->unwritten_targets, p->unwritten_clusters);
    if (!res->scps_ok)
        printf("  SCPs      not read: the SCP-backed intent is unknown\n");
    (void)failed;
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

    int exit_code = EXIT_FAILED;
    struct pipeline p;
    memset(&p, 0, sizeof p);
    p.progress_line = !cfg.no_progress && !json_logs && isatty(STDERR_FILENO);
    struct creds_chain *chain = NULL;
    struct http_engine *engine = NULL;
    struct policy *policy = NULL;
    struct drift_summary drift;
    memset(&drift, 0, sizeof drift);
    int drift_ran = 0;
    const char *status = "failed";
    char error_text[ERR_MSG_MAX + ERR_CODE_MAX + 256] = "";

    struct http_engine_options eo;
    if (http_engine_options_init(&eo, &e) < 0) {
        fprintf(stderr, "egressscan scan: %s\n", e.message);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (cfg.concurrency > 0)
        eo.max_in_flight = cfg.concurrency;
    double retry_bound;
    if (retry_bound_from_env(&retry_bound, &e) < 0) {
        fprintf(stderr, "egressscan scan: %s\n", e.message);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (cfg.policy) {
        policy = policy_load(cfg.policy, stderr, &e);
        if (!policy) {
            fprintf(stderr, "egressscan scan: %s\n", e.message);
            exit_code = EXIT_USAGE;
            goto out;
        }
    }

    p.db = db_connect(cfg.database_url, &e);
    if (!p.db) {
        fprintf(stderr, "egressscan scan: cannot connect to the database: %s\n", e.message);
        goto out;
    }
    db_set_retry_bound(p.db, retry_bound);
    if (db_schema_current(p.db, &e) <= 0) {
        fprintf(stderr,
                "egressscan scan: the database schema is not current (%s); "
                "run 'egressscan migrate' first\n",
                err_isset(&e) ? e.message : "pending migrations");
        goto out;
    }
    char options_json[512];
    snprintf(options_json, sizeof options_json,
             "{\"accounts\":%zu,\"regions\":%zu,\"concurrency\":%d,\"pid\":%ld}", cfg.accounts.n,
             cfg.regions.n, eo.max_in_flight, (long)getpid());
    double started = as_of > 0 ? as_of : real_now();
    int aborted = 0;
    if (db_scan_begin(p.db, started, options_json, &p.scan_id, &aborted, &e) < 0) {
        fprintf(stderr, "egressscan scan: cannot start a scan run: %s\n", e.message);
        goto out;
    }
    if (aborted)
        log_warn("scan", "%d earlier scan%s left running by a process that ended: marked aborted",
                 aborted, aborted == 1 ? "" : "s");
    log_info("scan", "scan %lld started", p.scan_id);
    p.t0 = mono_now();

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
            .home_region = home_region(),
            .page_size = cfg.page_size,
            .as_of = as_of};
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
    if (p.sink && result_sink_finish_stats(p.sink, &busy, &p.sink_stats, &se) < 0) {
        p.db_failed = 1;
        p.db_err = se;
    }
    p.sink = NULL;
    p.db_write_s += busy;
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
    /* scanned (counted by on_target, the one the failed sink refused included) less stored */
    long unwritten = -p.sink_stats.targets_written;
    long unwritten_clusters = -p.sink_stats.clusters_written;
    for (int s = TARGET_OK; s <= TARGET_ERROR; s++)
        unwritten += p.by_status[s];
    for (int m = 0; m < MODE_BUCKETS; m++)
        unwritten_clusters += p.by_mode[m];
    p.unwritten_targets = unwritten;
    p.unwritten_clusters = unwritten_clusters;
    if (p.db_failed && db_connection_lost(p.db, &p.db_err)) {
        p.db_unreachable = 1;
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
    if (!error_text[0]) {
        /* drift: the scan's findings, evaluated from what is now stored */
        struct err de;
        err_clear(&de);
        double now = as_of > 0 ? as_of + (mono_now() - p.t0) : real_now();
        double t = mono_now();
        struct drift_op dop = {p.scan_id, res.scps_ok, policy, (time_t)now, &drift, 0};
        if (db_retry(p.db, "evaluating drift", drift_op, &dop, NULL, &de) < 0) {
            p.db_unreachable = db_connection_lost(p.db, &de);
            snprintf(error_text, sizeof error_text, "drift evaluation: %s (%s)", de.message,
                     de.code);
        } else {
            drift_ran = 1;
        }
        p.drift_s = mono_now() - t;
        p.db_write_s += p.drift_s;
    }
    long failed_targets = 0;
    for (int s = TARGET_ASSUME_ROLE_DENIED; s <= TARGET_ERROR; s++)
        failed_targets += p.by_status[s];
    if (error_text[0])
        status = "failed";
    else if (failed_targets)
        status = "partial";
    else
        status = "succeeded";

    double duration = mono_now() - p.t0;
    struct scan_totals totals = {(long long)st.requests, (long long)st.throttles,
                                 (long long)st.retries};
    struct err fe;
    err_clear(&fe);
    double finished = as_of > 0 ? as_of + duration : real_now();
    /* After an outage the failure is worth a short wait only: the next scan marks it aborted. */
    if (p.db_unreachable && db_retry_bound(p.db) > 5)
        db_set_retry_bound(p.db, 5);
    struct finish_op fop = {p.scan_id, finished, status, &totals, error_text[0] ? error_text : NULL,
                            0};
    if (db_retry(p.db, "finalizing the scan", finish_op, &fop, NULL, &fe) < 0) {
        fprintf(stderr, "egressscan scan: cannot finalize scan %lld: %s%s\n", p.scan_id, fe.message,
                db_connection_lost(p.db, &fe) ? " (it stays running until the next scan marks "
                                                "it aborted)"
                                              : "");
        status = "failed";
    }
    if (strcmp(status, "failed") == 0)
        fprintf(stderr, "egressscan scan: scan %lld failed: %s\n", p.scan_id,
                error_text[0] ? error_text : fe.message);
    print_summary(&p, status, duration, &res, &st);
    if (drift_ran)
        drift_summary_print(&drift);
    if (cfg.metrics_file)
        write_metrics(cfg.metrics_file, &p, status, duration, &st, finished,
                      drift_ran ? &drift : NULL);
    /* precedence: failed (4) over partial (3) over drift (1) */
    exit_code = strcmp(status, "failed") == 0     ? EXIT_FAILED
                : strcmp(status, "partial") == 0  ? EXIT_PARTIAL
                : fl.fail_on_drift && drift.total ? EXIT_DRIFT
                                                  : EXIT_OK;
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
