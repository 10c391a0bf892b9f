/* report.c - `egressscan report`: the weekly compliance report (SPEC.md section 7) of an ISO week
 * (default: the last complete one), from the database alone, as html, md, json or csv, to
 * standard output or to a file replaced atomically (a cron job never leaves half a report). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "common/atomicfile.h"
#include "common/isotime.h"
#include "common/report_model.h"
#include "report/report.h"
#include "storage/db.h"
#include "storage/report_query.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan report [--week YYYY-Www] [--format html|md|json|csv] [--out FILE]\n"
            "                         [--database-url URL]\n\n"
            "The weekly compliance report, from the database alone: the compliance rate and its\n"
            "change against the previous week, the daily trend over the week and the four\n"
            "before it, clusters by egress mode per OU and account, new and resolved findings,\n"
            "SCP enforcement gaps, coverage, and the oldest open findings with their\n"
            "remediation.\n\n"
            "  --week YYYY-Www     ISO week (Monday to Sunday, UTC); default: the last complete\n"
            "                      week (the one before the current week)\n"
            "  --format FORMAT     html (default: one self-contained file, no script, prints to\n"
            "                      PDF), md (GitLab/GitHub), json (every number), csv (the\n"
            "                      week's findings)\n"
            "  --out FILE          write FILE (replaced atomically) instead of standard output\n"
            "  --database-url URL  PostgreSQL (else DATABASE_URL, PG* variables)\n\n"
            "Compliance rate = compliant / (compliant + non-compliant) clusters; exempt and\n"
            "unknown clusters are left out. A week without scans gives a report that says so.\n"
            "Exit codes: 0 written; 2 usage error; 4 failed (database, writing).\n");
}

struct render {
    const struct report *r;
    enum report_format f;
};

static int render_into(FILE *out, void *ud, struct err *e)
{
    const struct render *x = ud;
    return report_render(x->r, x->f, out, e);
}

/* Writes the report to path, replaced whole (common/atomicfile.h). */
static int write_file(const char *path, const struct report *r, enum report_format f, struct err *e)
{
    struct render x = {r, f};
    return atomicfile_write(path, render_into, &x, e);
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"week", required_argument, NULL, 'w'},  {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},   {"database-url", required_argument, NULL, 'd'},
        {"as-of", required_argument, NULL, 'a'}, /* hidden */
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *week_arg = NULL, *path = NULL, *url = NULL;
    enum report_format format = REPORT_HTML;
    time_t now = time(NULL);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            week_arg = optarg;
            break;
        case 'f':
            if (report_format_parse(optarg, &format) < 0) {
                fprintf(stderr, "egressscan report: --format must be html, md, json or csv\n");
                return EXIT_USAGE;
            }
            break;
        case 'o':
            path = optarg;
            break;
        case 'd':
            url = optarg;
            break;
        case 'a':
            /* the report as if made at that time (tests, demos): sets "today" and the default
             * week */
            if (iso8601_parse(optarg, &now) < 0) {
                fprintf(stderr,
                        "egressscan report: --as-of: not a time (YYYY-MM-DDTHH:MM:SSZ): "
                        "%s\n",
                        optarg);
                return EXIT_USAGE;
            }
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
        fprintf(stderr, "egressscan report: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    struct report_week week;
    if (week_arg) {
        if (report_week_parse(week_arg, &week) < 0) {
            fprintf(stderr,
                    "egressscan report: --week: not an ISO week (YYYY-Www, e.g. 2026-W48): %s\n",
                    week_arg);
            return EXIT_USAGE;
        }
    } else {
        report_week_of_day(report_day_of_time(now) - 7, &week); /* the last complete week */
    }

    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan report: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    struct report r;
    report_init(&r, &week, now);
    int exit_code = EXIT_FAILED;
    if (db_report_load(db, &r, &e) < 0) {
        fprintf(stderr, "egressscan report: %s (%s)\n", e.message, e.code);
        goto done;
    }
    db_close(db);
    db = NULL;
    if (path ? write_file(path, &r, format, &e) < 0 : report_render(&r, format, stdout, &e) < 0) {
        fprintf(stderr, "egressscan report: %s\n", e.message);
        goto done;
    }
    exit_code = EXIT_OK;
done:
    report_cleanup(&r);
    db_close(db);
    return exit_code;
}
