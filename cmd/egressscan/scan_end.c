/* scan_end.c - the end of a scan, shared by `scan` and by the worker that finalizes an enqueued
 * scan: drift stage, status and db_scan_finish, summary, metrics file and exit code. */
#include "cmd/egressscan/scan_end.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/egressscan/commands.h"
#include "common/atomicfile.h"
#include "common/config.h"
#include "common/log.h"
#include "scanner/http.h"
#include "storage/findings.h"

static const char *const mode_names[MODE_BUCKETS] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                                     "CUSTOMER_ISOLATED", "absent", "other"};

double scan_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double scan_real_now(void)
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

void scan_counts_add(struct scan_counts *c, const struct target_result *r)
{
    c->by_status[r->status]++;
    for (size_t i = 0; i < r->n_clusters; i++)
        c->by_mode[bucket_of(r->clusters[i].egress_mode)]++;
}

long scan_counts_failed(const struct scan_counts *c)
{
    long failed = 0;
    for (int s = TARGET_OK; s < TARGET_STATUSES; s++)
        if (target_status_failed((enum target_status)s))
            failed += c->by_status[s];
    return failed;
}

/* The drift stage as db_retry runs it: a run after a reconnection (or a finalizing worker after
 * one that died) finds the findings of the lost attempt already written and takes them as done
 * (the summary then has no drift counts: they are in the database). */
struct drift_op {
    long long scan_id;
    const struct policy *policy;
    time_t now;
    struct scan_end *out;
};

static int drift_op(struct db *db, void *ud, struct err *err)
{
    struct drift_op *o = ud;
    if (drift_stage_run(db, o->scan_id, o->policy, o->now, &o->out->drift, err) == 0) {
        o->out->drift_ran = 1;
        return 0;
    }
    if (strcmp(err->code, "FindingsWritten") == 0) {
        log_info("scan", "scan %lld: findings already written by an earlier attempt; finalizing",
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

long scan_counts_targets(const struct scan_counts *c)
{
    long n = 0;
    for (int s = TARGET_OK; s < TARGET_STATUSES; s++)
        n += c->by_status[s];
    return n;
}

long scan_counts_clusters(const struct scan_counts *c)
{
    long n = 0;
    for (int m = 0; m < MODE_BUCKETS; m++)
        n += c->by_mode[m];
    return n;
}

/* scan_end_run's drift stage (when error_text is empty); a failure goes into error_text, and
 * out->db_unreachable says whether it was the database staying away past the bound. */
static void end_drift(struct db *db, long long scan_id, const struct policy *policy, double as_of,
                      double t0, char *error_text, size_t cap, struct scan_end *out)
{
    if (error_text[0])
        return;
    /* drift: the scan's findings, evaluated from what is now stored */
    struct err de;
    err_clear(&de);
    double now = as_of > 0 ? as_of + (scan_mono_now() - t0) : scan_real_now();
    double t = scan_mono_now();
    struct drift_op dop = {scan_id, policy, (time_t)now, out};
    if (db_retry(db, "evaluating drift", drift_op, &dop, NULL, &de) < 0) {
        out->db_unreachable = db_connection_lost(db, &de);
        snprintf(error_text, cap, "drift evaluation: %s (%s)", de.message, de.code);
    }
    out->drift_s = scan_mono_now() - t;
}

/* scan_end_run's status and db_scan_finish. */
static void end_finish(struct db *db, long long scan_id, double as_of, double t0,
                       const char *error_text, const struct scan_counts *counts,
                       const struct scan_totals *totals, enum org_scps scps, struct scan_end *out)
{
    out->status = scan_status_of(error_text[0] != 0, scan_counts_failed(counts), scps);
    out->duration = scan_mono_now() - t0;
    out->finished = as_of > 0 ? as_of + out->duration : scan_real_now();
    err_clear(&out->finish_err);
    /* After an outage the failure is worth a short wait only: the next scan marks it aborted.
     * For this call only: a worker goes on, and its next outage gets the whole bound again. */
    double bound = db_retry_bound(db);
    if (out->db_unreachable && bound > 5)
        db_set_retry_bound(db, 5);
    struct finish_op fop = {
        scan_id, out->finished, out->status, totals, error_text[0] ? error_text : NULL, 0};
    if (db_retry(db, "finalizing the scan", finish_op, &fop, NULL, &out->finish_err) < 0) {
        out->finish_failed = 1;
        out->finish_lost = db_connection_lost(db, &out->finish_err);
        out->status = "failed";
    }
    db_set_retry_bound(db, bound);
}

void scan_end_run(struct db *db, long long scan_id, const struct policy *policy, double as_of,
                  double t0, char *error_text, size_t cap, const struct scan_counts *counts,
                  const struct scan_totals *totals, enum org_scps scps, int db_unreachable,
                  struct scan_end *out)
{
    memset(out, 0, sizeof *out);
    out->db_unreachable = db_unreachable;
    end_drift(db, scan_id, policy, as_of, t0, error_text, cap, out);
    end_finish(db, scan_id, as_of, t0, error_text, counts, totals, scps, out);
}

int scan_end_run_or_put_off(struct db *db, long long scan_id, const struct policy *policy,
                            double t0, char *error_text, size_t cap,
                            const struct scan_counts *counts, const struct scan_totals *totals,
                            enum org_scps scps, struct scan_end *out)
{
    memset(out, 0, sizeof *out);
    end_drift(db, scan_id, policy, 0, t0, error_text, cap, out);
    if (out->db_unreachable)
        return 1; /* every result is stored: nothing the next finalizer could not do */
    end_finish(db, scan_id, 0, t0, error_text, counts, totals, scps, out);
    return 0;
}

void scan_end_stopped(struct db *db, long long scan_id, double as_of, double t0,
                      const char *error_text, const struct scan_totals *totals,
                      struct scan_end *out)
{
    memset(out, 0, sizeof *out);
    out->status = "aborted";
    out->duration = scan_mono_now() - t0;
    out->finished = as_of > 0 ? as_of + out->duration : scan_real_now();
    err_clear(&out->finish_err);
    struct finish_op fop = {scan_id, out->finished, out->status, totals, error_text, 0};
    if (db_retry(db, "recording the stopped scan", finish_op, &fop, NULL, &out->finish_err) < 0) {
        out->finish_failed = 1;
        out->finish_lost = db_connection_lost(db, &out->finish_err);
    }
}

#define DB_RETRY_ENV "EGRESSSCAN_DB_RETRY_SECONDS"

/* EGRESSSCAN_DB_RETRY_SECONDS (0 to 86400), default DB_RETRY_BOUND_S. */
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

struct db *scan_db_open(const char *url, const char *cmd, int *exit_code)
{
    struct err e;
    err_clear(&e);
    double bound;
    if (retry_bound_from_env(&bound, &e) < 0) {
        log_command_error(cmd, "%s", e.message);
        *exit_code = EXIT_USAGE;
        return NULL;
    }
    *exit_code = EXIT_FAILED;
    struct db *db = db_connect(url, &e);
    if (!db) {
        log_command_error(cmd, "cannot connect to the database: %s", e.message);
        return NULL;
    }
    db_set_retry_bound(db, bound);
    if (db_schema_current(db, &e) <= 0) {
        log_command_error(cmd,
                          "the database schema is not current (%s); "
                          "run 'egressscan migrate' first",
                          err_isset(&e) ? e.message : "pending migrations");
        db_close(db);
        return NULL;
    }
    return db;
}

char *scan_options_json(const struct scan_config *cfg, int targeted, int concurrency)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:i, s:I, s:b, s:s?}", "accounts", (json_int_t)cfg->accounts.n, "regions",
        (json_int_t)cfg->regions.n, "concurrency", concurrency, "pid", (json_int_t)getpid(),
        "targeted", targeted, "role_name", cfg->role_name ? cfg->role_name : "EgressScanReadOnly");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

struct scps_op {
    long long scan_id;
    enum org_scps scps;
};

static int scps_op(struct db *db, void *ud, struct err *err)
{
    const struct scps_op *o = ud;
    return db_set_scps_state(db, o->scan_id, o->scps, err);
}

int scan_record_scps(struct db *db, long long scan_id, enum org_scps scps, struct err *err)
{
    struct scps_op op = {scan_id, scps};
    return db_retry(db, "recording the SCP snapshot", scps_op, &op, NULL, err);
}

/* The summary's line on the SCPs, when they were not simply read. */
static void scps_line(enum org_scps scps, const struct scan_end *end)
{
    char judged[96] = "the SCP-backed intent is unknown";
    if (end->drift_ran && end->drift.intent_scan_id > 0)
        snprintf(judged, sizeof judged, "judged with the SCPs of scan %lld",
                 end->drift.intent_scan_id);
    switch (scps) {
    case ORG_SCPS_READ:
    case ORG_SCPS_STATES:
        break;
    case ORG_SCPS_DISABLED:
        printf("  SCPs      not enabled in the organization: none apply\n");
        break;
    case ORG_SCPS_NOT_READ:
        printf("  SCPs      not read (a fixed account list without --org-role-arn): %s\n", judged);
        break;
    case ORG_SCPS_FAILED:
        printf("  SCPs      could not be read (the scan is partial): %s; findings that rest on "
               "them are carried over\n",
               judged);
        break;
    }
}

void scan_summary_print(long long scan_id, const struct scan_end *end, const struct scan_counts *c,
                        const struct scan_totals *totals, double db_write_s, enum org_scps scps)
{
    long targets = scan_counts_targets(c), clusters = scan_counts_clusters(c);
    printf("scan %lld %s in %.1f s\n", scan_id, end->status, end->duration);
    printf("  accounts  %ld scanned\n", c->accounts);
    printf("  targets   %ld: %ld ok", targets, c->by_status[TARGET_OK]);
    for (int s = TARGET_ASSUME_ROLE_DENIED; s < TARGET_STATUSES; s++)
        if (c->by_status[s])
            printf(", %ld %s", c->by_status[s], target_status_name((enum target_status)s));
    printf("\n  clusters  %ld:", clusters);
    const char *sep = " ";
    for (int m = 0; m < MODE_BUCKETS; m++)
        if (c->by_mode[m]) {
            printf("%s%ld %s", sep, c->by_mode[m], mode_names[m]);
            sep = ", ";
        }
    printf("\n  api calls %lld (%lld retried, %lld throttled)\n", totals->api_calls,
           totals->retries, totals->throttled);
    printf("  database writes %.2f s (drift stage %.2f s)\n", db_write_s + end->drift_s,
           end->drift_s);
    if (end->reconnects > 0)
        printf("  database  reconnected %ld time%s, %ld write%s retried\n", end->reconnects,
               end->reconnects == 1 ? "" : "s", end->writes_retried,
               end->writes_retried == 1 ? "" : "s");
    if (end->db_unreachable && end->unwritten_targets > 0)
        printf("  not written %ld targets (%ld clusters): the database was unreachable\n",
               end->unwritten_targets, end->unwritten_clusters);
    scps_line(scps, end);
    if (end->drift_ran)
        drift_summary_print(&end->drift);
}

struct metrics {
    const struct scan_end *end;
    const struct scan_counts *c;
    const struct scan_totals *totals;
    const struct http_engine_stats *engine;
    double db_write_s;
};

static int metrics_fill(FILE *f, void *ud, struct err *err);

void scan_metrics_write(const char *path, const struct scan_end *end, const struct scan_counts *c,
                        const struct scan_totals *totals, const struct http_engine_stats *engine,
                        double db_write_s)
{
    struct metrics what = {end, c, totals, engine, db_write_s};
    struct err e;
    err_clear(&e);
    /* a fresh temporary name (never a symlink someone left at PATH.tmp), fsync, rename */
    if (atomicfile_write(path, metrics_fill, &what, &e) < 0)
        log_error("scan", "metrics file: %s", e.message);
}

static int metrics_fill(FILE *f, void *ud, struct err *err)
{
    const struct metrics *what = ud;
    const struct scan_end *end = what->end;
    const struct scan_counts *c = what->c;
    const struct scan_totals *totals = what->totals;
    const struct http_engine_stats *engine = what->engine;
    double db_write_s = what->db_write_s;
    fprintf(f,
            "# HELP egressscan_scan_duration_seconds Duration of the last scan.\n"
            "# TYPE egressscan_scan_duration_seconds gauge\n"
            "egressscan_scan_duration_seconds %.3f\n",
            end->duration);
    fprintf(f,
            "# HELP egressscan_scan_finished_timestamp_seconds When the last scan ended.\n"
            "# TYPE egressscan_scan_finished_timestamp_seconds gauge\n"
            "egressscan_scan_finished_timestamp_seconds %.0f\n",
            end->finished);
    fprintf(f, "# HELP egressscan_scan_status Outcome of the last scan (1 for its status).\n"
               "# TYPE egressscan_scan_status gauge\n");
    static const char *const statuses[] = {"succeeded", "partial", "failed"};
    for (int i = 0; i < 3; i++)
        fprintf(f, "egressscan_scan_status{status=\"%s\"} %d\n", statuses[i],
                strcmp(end->status, statuses[i]) == 0);
    fprintf(f, "# HELP egressscan_targets Targets (account x region) by coverage status.\n"
               "# TYPE egressscan_targets gauge\n");
    for (int s = TARGET_OK; s < TARGET_STATUSES; s++)
        fprintf(f, "egressscan_targets{status=\"%s\"} %ld\n",
                target_status_name((enum target_status)s), c->by_status[s]);
    fprintf(f, "# HELP egressscan_clusters Clusters seen by egress mode.\n"
               "# TYPE egressscan_clusters gauge\n");
    for (int m = 0; m < MODE_BUCKETS; m++)
        fprintf(f, "egressscan_clusters{mode=\"%s\"} %ld\n", mode_names[m], c->by_mode[m]);
    fprintf(f,
            "# HELP egressscan_api_calls AWS API calls of the last scan (retries included).\n"
            "# TYPE egressscan_api_calls gauge\n"
            "egressscan_api_calls %lld\n"
            "# HELP egressscan_api_retries Retried AWS API attempts of the last scan.\n"
            "# TYPE egressscan_api_retries gauge\n"
            "egressscan_api_retries %lld\n"
            "# HELP egressscan_api_throttled Throttled AWS API attempts of the last scan.\n"
            "# TYPE egressscan_api_throttled gauge\n"
            "egressscan_api_throttled %lld\n",
            totals->api_calls, totals->retries, totals->throttled);
    if (engine)
        fprintf(f,
                "# HELP egressscan_api_expired_credentials AWS answers refusing credentials as "
                "expired.\n"
                "# TYPE egressscan_api_expired_credentials gauge\n"
                "egressscan_api_expired_credentials %lu\n"
                "# HELP egressscan_api_credential_refreshes Requests sent again with refreshed "
                "credentials.\n"
                "# TYPE egressscan_api_credential_refreshes gauge\n"
                "egressscan_api_credential_refreshes %lu\n"
                "# HELP egressscan_api_retry_quota_refusals Retries not made because the retry "
                "quota was exhausted.\n"
                "# TYPE egressscan_api_retry_quota_refusals gauge\n"
                "egressscan_api_retry_quota_refusals %lu\n",
                engine->expired, engine->refreshes, engine->quota_refusals);
    fprintf(f,
            "# HELP egressscan_database_write_seconds Time the last scan spent writing to the "
            "database (results, snapshot, drift stage).\n"
            "# TYPE egressscan_database_write_seconds gauge\n"
            "egressscan_database_write_seconds %.3f\n"
            "# HELP egressscan_drift_stage_seconds Of it, the drift stage (snapshot, findings).\n"
            "# TYPE egressscan_drift_stage_seconds gauge\n"
            "egressscan_drift_stage_seconds %.3f\n",
            db_write_s + end->drift_s, end->drift_s);
    if (end->drift_ran) {
        const struct drift_summary *drift = &end->drift;
        fprintf(f, "# HELP egressscan_findings Findings of the last scan by kind.\n"
                   "# TYPE egressscan_findings gauge\n");
        for (int k = 0; k < FINDING_KINDS; k++)
            fprintf(f, "egressscan_findings{kind=\"%s\"} %ld\n", finding_kind_names[k],
                    drift->by_kind[k]);
        fprintf(
            f,
            "# HELP egressscan_clusters_compliance Clusters of the fleet by compliance after the "
            "last scan (verified ones by judgement, unverified apart).\n"
            "# TYPE egressscan_clusters_compliance gauge\n"
            "egressscan_clusters_compliance{state=\"compliant\"} %ld\n"
            "egressscan_clusters_compliance{state=\"noncompliant\"} %ld\n"
            "egressscan_clusters_compliance{state=\"exempt\"} %ld\n"
            "egressscan_clusters_compliance{state=\"unknown\"} %ld\n"
            "egressscan_clusters_compliance{state=\"unverified\"} %ld\n",
            drift->fleet.compliant, drift->fleet.noncompliant, drift->fleet.exempt,
            drift->fleet.unknown, drift->fleet.unverified);
    }
    if (ferror(f))
        return err_set(err, ERR_IO, "writing the metrics failed");
    return 0;
}

int scan_end_fail_on(const char *severity)
{
    enum report_severity s = severity ? report_severity_of(severity) : REPORT_SEVERITIES;
    return s < REPORT_SEVERITIES ? (int)s : -1;
}

/* Findings of severity threshold or a higher one (critical is 0). */
static long findings_at_least(const struct drift_summary *d, int threshold)
{
    long n = 0;
    for (int s = 0; s <= threshold && s < REPORT_SEVERITIES; s++)
        n += d->by_severity[s];
    return n;
}

int scan_end_exit_code(const struct scan_end *end, int fail_on_drift, int fail_on)
{
    /* precedence: failed (4) over partial (3) over drift (1) */
    if (strcmp(end->status, "failed") == 0)
        return EXIT_FAILED;
    if (strcmp(end->status, "partial") == 0)
        return EXIT_PARTIAL;
    if (fail_on_drift && end->drift.total)
        return EXIT_DRIFT;
    if (fail_on >= 0 && findings_at_least(&end->drift, fail_on) > 0)
        return EXIT_DRIFT;
    return EXIT_OK;
}
