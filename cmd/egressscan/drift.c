/* drift.c - `egressscan drift`: the findings of the latest (or a given) finalized scan as a
 * table, JSON or CSV; with --fail-on-drift (or --fail-on SEVERITY) the exit code says whether
 * there are any (that severe). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "common/isotime.h"
#include "common/quote.h"
#include "common/report_model.h"
#include "report/ocsf.h"
#include "storage/db.h"
#include "storage/finding_export.h"
#include "storage/findings.h"

enum format { FMT_TABLE, FMT_JSON, FMT_CSV, FMT_OCSF };

struct out_state {
    enum format format;
    json_t *list; /* JSON: the findings array */
    long n;
    int fail_on;    /* enum report_severity; -1: none */
    long n_fail_on; /* findings of that severity or higher */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan drift [--scan ID] [--format table|json|csv|ocsf] [--fail-on-drift]\n"
            "                        [--fail-on SEVERITY] [--include-resolved SINCE]\n"
            "                        [--database-url URL]\n\n"
            "The findings of the latest finalized scan (or of scan ID): non-compliant\n"
            "clusters, SCP enforcement gaps and conflicts, unscanned targets, mode changes,\n"
            "unknown modes, expired exceptions. Exit 1 with --fail-on-drift when there are\n"
            "findings, with --fail-on SEVERITY (critical, high, medium, low, info) when one\n"
            "is of that severity or higher; 2 usage error; 4 when the database cannot be\n"
            "read. --format ocsf: the fleet's open findings as OCSF 1.3.0 Compliance Finding\n"
            "events (class 2003), one JSON object per line; --include-resolved SINCE (ISO\n"
            "8601) adds those resolved since then, with status Resolved.\n");
}

static const char *mode_names[] = {"AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"};

static void allowed_text(unsigned bits, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (int m = 0; m < 3; m++)
        if (bits & EGRESS_BIT(m))
            len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s", len ? "," : "",
                                    mode_names[m]);
}

/* RFC 4180 with formula starters neutralised (quote_csv_cell): names, modes and details come
 * from member accounts. */
static void csv_field(const char *s, int last)
{
    quote_csv_cell_write(stdout, s);
    putchar(last ? '\n' : ',');
}

static const char *cluster_name(const char *arn)
{
    const char *slash = arn ? strrchr(arn, '/') : NULL;
    return slash ? slash + 1 : (arn ? arn : "-");
}

static int on_finding(void *ud, const struct stored_finding *sf)
{
    struct out_state *st = ud;
    const struct finding *f = &sf->f;
    char allowed[96];
    allowed_text(f->allowed_modes, allowed, sizeof allowed);
    st->n++;
    enum report_severity sev = report_severity_of(f->severity);
    if (st->fail_on >= 0 && sev < REPORT_SEVERITIES && (int)sev <= st->fail_on)
        st->n_fail_on++;
    if (st->format == FMT_JSON) {
        json_t *modes = json_array();
        for (int m = 0; m < 3; m++)
            if (f->allowed_modes & EGRESS_BIT(m))
                json_array_append_new(modes, json_string(mode_names[m]));
        json_t *details = f->details_json ? json_loads(f->details_json, 0, NULL) : NULL;
        json_t *o =
            json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:s?, s:o, s:s, s:s?, s:o}",
                      "finding_id", (json_int_t)sf->finding_id, "scan_id", (json_int_t)sf->scan_id,
                      "kind", f->kind, "severity", f->severity, "account_id", f->account_id,
                      "region", f->region, "cluster_arn", f->cluster_arn, "observed_mode",
                      f->observed_mode, "allowed_modes", modes, "source", f->source, "first_seen",
                      sf->first_seen, "details", details ? details : json_object());
        if (!o || json_array_append_new(st->list, o) < 0)
            return -1;
    } else if (st->format == FMT_CSV) {
        char id[32], scan[32];
        snprintf(id, sizeof id, "%lld", sf->finding_id);
        snprintf(scan, sizeof scan, "%lld", sf->scan_id);
        csv_field(id, 0);
        csv_field(scan, 0);
        csv_field(f->kind, 0);
        csv_field(f->severity, 0);
        csv_field(f->account_id, 0);
        csv_field(f->region, 0);
        csv_field(f->cluster_arn, 0);
        csv_field(f->observed_mode, 0);
        csv_field(allowed, 0);
        csv_field(f->source, 0);
        csv_field(sf->first_seen, 0);
        csv_field(f->details_json, 1);
    } else {
        /* every value through quote_term: a name or mode from a member account holding
         * ESC ] ... BEL or ESC [ 2 J would retitle or clear the operator's terminal */
        char sev_s[32], kind[48], acct[48], region[48], name[416], mode[96], source[512], seen[64];
        printf("%-8s  %-20s  %-12s  %-14s  %-24s  %-17s  %-34s  %-22s  %s\n",
               quote_term_to(sev_s, sizeof sev_s, f->severity),
               quote_term_to(kind, sizeof kind, f->kind),
               quote_term_to(acct, sizeof acct, f->account_id),
               quote_term_to(region, sizeof region, f->region),
               quote_term_to(name, sizeof name, cluster_name(f->cluster_arn)),
               quote_term_to(mode, sizeof mode,
                             f->observed_mode ? f->observed_mode
                                              : (f->cluster_arn ? "(absent)" : "-")),
               allowed[0] ? allowed : "-", quote_term_to(source, sizeof source, f->source),
               quote_term_to(seen, sizeof seen, sf->first_seen ? sf->first_seen : "-"));
    }
    return 0;
}

/* --format ocsf: one event per line; --fail-on counts the open findings only. */
static int on_record(void *ud, const struct finding_record *r)
{
    struct out_state *st = ud;
    struct err e;
    err_clear(&e);
    if (!r->resolved_at) {
        st->n++;
        enum report_severity sev = report_severity_of(r->f.severity);
        if (st->fail_on >= 0 && sev < REPORT_SEVERITIES && (int)sev <= st->fail_on)
            st->n_fail_on++;
    }
    if (ocsf_write_line(stdout, r, &e) < 0) {
        fprintf(stderr, "egressscan drift: %s\n", e.message);
        return -1;
    }
    return 0;
}

/* The fleet's open findings (and those resolved since since) as OCSF lines. */
static int drift_ocsf(const char *url, const char *since, int fail_on_drift, struct out_state *st)
{
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan drift: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    int exit_code = EXIT_FAILED;
    if (db_export_findings(db, since, NULL, on_record, st, &e) < 0) {
        if (strcmp(e.code, "22007") == 0 || strcmp(e.code, "22008") == 0) {
            fprintf(stderr, "egressscan drift: --include-resolved: not a time: %s\n", since);
            exit_code = EXIT_USAGE;
        } else if (strcmp(e.code, "Stopped") != 0) {
            fprintf(stderr, "egressscan drift: %s\n", e.message);
        }
    } else if (fflush(stdout) != 0) {
        fprintf(stderr, "egressscan drift: cannot write the OCSF lines\n");
    } else {
        exit_code = (fail_on_drift && st->n) || st->n_fail_on ? EXIT_DRIFT : EXIT_OK;
    }
    db_close(db);
    return exit_code;
}

int cmd_drift(int argc, char **argv)
{
    static const struct option opts[] = {{"scan", required_argument, NULL, 's'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"fail-on-drift", no_argument, NULL, 'x'},
                                         {"database-url", required_argument, NULL, 'd'},
                                         {"fail-on", required_argument, NULL, 'F'},
                                         {"include-resolved", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long long scan_id = 0;
    const char *url = NULL, *include_resolved = NULL;
    int fail_on_drift = 0;
    struct out_state st = {.format = FMT_TABLE, .fail_on = -1};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': {
            char *end;
            scan_id = strtoll(optarg, &end, 10);
            if (*end || scan_id <= 0) {
                fprintf(stderr, "egressscan drift: --scan: not a scan id: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'f':
            if (strcmp(optarg, "table") == 0)
                st.format = FMT_TABLE;
            else if (strcmp(optarg, "json") == 0)
                st.format = FMT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                st.format = FMT_CSV;
            else if (strcmp(optarg, "ocsf") == 0)
                st.format = FMT_OCSF;
            else {
                fprintf(stderr, "egressscan drift: --format must be table, json, csv or ocsf\n");
                return EXIT_USAGE;
            }
            break;
        case 'x':
            fail_on_drift = 1;
            break;
        case 'F': {
            enum report_severity sev = report_severity_of(optarg);
            if (sev == REPORT_SEVERITIES) {
                fprintf(stderr,
                        "egressscan drift: --fail-on: not a severity (critical, high, medium, "
                        "low, info)\n");
                return EXIT_USAGE;
            }
            st.fail_on = (int)sev;
            break;
        }
        case 'R': {
            time_t t;
            if (iso8601_parse(optarg, &t) < 0) {
                fprintf(stderr,
                        "egressscan drift: --include-resolved: not an ISO 8601 time "
                        "(e.g. 2026-11-30T00:00:00Z): %s\n",
                        optarg);
                return EXIT_USAGE;
            }
            include_resolved = optarg;
            break;
        }
        case 'd':
            url = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressscan drift: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (include_resolved && st.format != FMT_OCSF) {
        fprintf(stderr, "egressscan drift: --include-resolved goes with --format ocsf\n");
        return EXIT_USAGE;
    }
    if (st.format == FMT_OCSF) {
        if (scan_id) {
            fprintf(stderr, "egressscan drift: --format ocsf shows the fleet's open findings: "
                            "no --scan\n");
            return EXIT_USAGE;
        }
        return drift_ocsf(url, include_resolved, fail_on_drift, &st);
    }
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan drift: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    int exit_code = EXIT_FAILED;
    long long used = scan_id;
    struct scan_info info;
    if (!scan_id && db_latest_finalized_scan(db, &used, &e) < 0) {
        fprintf(stderr, "egressscan drift: %s\n", e.message);
        goto done;
    }
    if (db_scan_info(db, used, &info, &e) < 0) {
        fprintf(stderr, "egressscan drift: %s\n", e.message);
        goto done;
    }
    if (st.format == FMT_JSON)
        st.list = json_array();
    else if (st.format == FMT_CSV)
        printf("finding_id,scan_id,kind,severity,account_id,region,cluster_arn,observed_mode,"
               "allowed_modes,source,first_seen,details\n");
    else {
        printf("scan %lld (%s, started %s)\n", used, info.status, info.started_at);
        if (info.scps_known == 0)
            printf("SCP-backed intent: UNKNOWN (the organization's SCPs could not be read); the "
                   "declared policy alone decides compliance\n");
        printf("%-8s  %-20s  %-12s  %-14s  %-24s  %-17s  %-34s  %-22s  %s\n", "SEVERITY", "KIND",
               "ACCOUNT", "REGION", "CLUSTER", "OBSERVED", "ALLOWED", "SOURCE", "FIRST SEEN");
    }
    if (db_query_findings(db, used, &used, on_finding, &st, &e) < 0) {
        fprintf(stderr, "egressscan drift: %s\n", e.message);
        goto done;
    }
    if (st.format == FMT_JSON) {
        json_t *doc = json_pack("{s:I, s:s, s:s, s:o, s:o}", "scan_id", (json_int_t)used, "status",
                                info.status, "started_at", info.started_at, "scp_intent_known",
                                info.scps_known == 1 ? json_true() : json_false(), "findings",
                                json_incref(st.list));
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(1)) < 0) {
            json_decref(doc);
            fprintf(stderr, "egressscan drift: cannot write JSON\n");
            goto done;
        }
        putchar('\n');
        json_decref(doc);
    } else if (st.format == FMT_TABLE) {
        printf("%ld finding%s\n", st.n, st.n == 1 ? "" : "s");
    }
    exit_code = (fail_on_drift && st.n) || st.n_fail_on ? EXIT_DRIFT : EXIT_OK;
done:
    json_decref(st.list);
    db_close(db);
    return exit_code;
}
