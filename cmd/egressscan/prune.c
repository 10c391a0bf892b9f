/* prune.c - `egressscan prune --older-than AGE`: retention of the raw per-scan rows (cluster
 * observations, ok coverage rows) of old scans; history, findings and the views stay as they
 * are. --dry-run says what would go. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "common/isotime.h"
#include "storage/db.h"
#include "storage/prune.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: egressscan prune --older-than AGE [--dry-run] [--as-of TIME]\n"
                 "                        [--database-url URL]\n\n"
                 "Deletes the raw rows of scans that started more than AGE ago: each scan's\n"
                 "cluster observations and its ok coverage rows (their counts stay in the view\n"
                 "scans), and the work items of a scan made by 'scan --enqueue' (the view\n"
                 "work_queue then no longer lists it). Kept: every scan row, the compliance\n"
                 "counts (daily_compliance), the findings and which scan raised them\n"
                 "(current_drift, drift --scan), coverage rows that are not ok (what could not\n"
                 "be scanned, and why), the organization and SCP snapshots, the clusters and\n"
                 "their history (current_clusters, cluster_history), and the whole of the latest\n"
                 "finalized scan, however old. No other view changes. One transaction per scan:\n"
                 "an interrupted prune can simply be run again.\n\n"
                 "  --older-than AGE    required: Nh, Nd or Nw (hours, days, weeks), e.g. 90d\n"
                 "  --dry-run           print what would be deleted; delete nothing\n"
                 "  --as-of TIME        count AGE back from TIME (YYYY-MM-DDTHH:MM:SSZ), not now\n"
                 "  --database-url URL  PostgreSQL (else DATABASE_URL, PG* variables)\n\n"
                 "Exit codes: 0 done; 2 usage error; 4 failed (database unreachable, schema not\n"
                 "migrated).\n");
}

/* "90d", "36h", "13w" to seconds; -1 when not such an age (N from 1 to 1000000). */
static double parse_age(const char *s)
{
    size_t digits = 0;
    while (isdigit((unsigned char)s[digits]))
        digits++;
    if (digits == 0 || digits > 7 || strlen(s) != digits + 1)
        return -1;
    long n = strtol(s, NULL, 10);
    if (n < 1 || n > 1000000)
        return -1;
    switch (s[digits]) {
    case 'h':
        return (double)n * 3600.0;
    case 'd':
        return (double)n * 86400.0;
    case 'w':
        return (double)n * 7.0 * 86400.0;
    default:
        return -1;
    }
}

static void iso_utc(double t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%.0f", t);
}

static int print_scan(void *ud, const struct prune_scan *s)
{
    const int *dry_run = ud;
    printf("scan %lld  started %s  %-9s  %s %lld cluster observations, %lld ok coverage rows",
           s->scan_id, s->started_at, s->status, *dry_run ? "would delete" : "deleted",
           s->observations, s->target_rows);
    if (s->work_items)
        printf(", %lld work items", s->work_items);
    putchar('\n');
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    enum { OPT_OLDER = 256, OPT_DRY_RUN, OPT_AS_OF, OPT_URL };
    static const struct option opts[] = {{"older-than", required_argument, NULL, OPT_OLDER},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"as-of", required_argument, NULL, OPT_AS_OF},
                                         {"database-url", required_argument, NULL, OPT_URL},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL, *age_text = NULL;
    double age = -1, now = (double)time(NULL);
    int dry_run = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OLDER:
            age_text = optarg;
            age = parse_age(optarg);
            if (age < 0) {
                fprintf(stderr,
                        "egressscan prune: --older-than: not an age (Nh, Nd or Nw, e.g. 90d): "
                        "%s\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DRY_RUN:
            dry_run = 1;
            break;
        case OPT_AS_OF: {
            time_t t;
            if (iso8601_parse(optarg, &t) < 0) {
                fprintf(stderr,
                        "egressscan prune: --as-of: not a time (YYYY-MM-DDTHH:MM:SSZ): %s\n",
                        optarg);
                return EXIT_USAGE;
            }
            now = (double)t;
            break;
        }
        case OPT_URL:
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
        fprintf(stderr, "egressscan prune: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!age_text) {
        fprintf(stderr, "egressscan prune: --older-than AGE is required (e.g. 90d)\n");
        return EXIT_USAGE;
    }

    double cutoff = now - age;
    char cut[32], from[32];
    iso_utc(cutoff, cut);
    iso_utc(now, from);

    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan prune: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    int exit_code = EXIT_FAILED;
    if (db_schema_current(db, &e) <= 0) {
        fprintf(stderr,
                "egressscan prune: the database schema is not current (%s); "
                "run 'egressscan migrate' first\n",
                err_isset(&e) ? e.message : "pending migrations");
        goto done;
    }
    printf("prune: scans started before %s (%s before %s)%s\n", cut, age_text, from,
           dry_run ? "; dry run, nothing is deleted" : "");
    fflush(stdout);
    struct prune_totals t;
    int rc = db_prune(db, cutoff, dry_run, print_scan, &dry_run, &t, &e);
    printf("prune: %lld scan%s %s: %lld cluster observations, %lld ok coverage rows", t.scans,
           t.scans == 1 ? "" : "s", dry_run ? "would be pruned" : "pruned", t.observations,
           t.target_rows);
    if (t.work_items)
        printf(", %lld work items", t.work_items);
    printf("%s\n", dry_run ? " would be deleted" : " deleted");
    if (t.kept_scan_id)
        printf("prune: the latest finalized scan (%lld) is kept whole\n", t.kept_scan_id);
    if (rc < 0) {
        fprintf(stderr, "egressscan prune: %s (%s)\n", e.message, e.code);
        goto done;
    }
    exit_code = EXIT_OK;
done:
    db_close(db);
    return exit_code;
}
