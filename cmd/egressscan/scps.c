/* scps.c - `egressscan scps`: what the organization's SCPs, as the latest finalized scan read
 * them, allow per account and region: the CreateCluster verdict for each egress mode (and for
 * leaving the mode out), the UpdateClusterConfig verdict for a switch to CUSTOMER_ROUTED, and
 * the statements that decided. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "cmd/egressscan/drift_stage.h"
#include "scanner/drift.h"
#include "storage/db.h"
#include "storage/findings.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: egressscan scps [--account ID] [--format table|json] [--scan ID]\n"
                 "                       [--database-url URL]\n\n"
                 "For every account and scanned region of the latest finalized scan (or scan\n"
                 "ID): whether a new cluster may be created with each egress mode (allowed,\n"
                 "denied, principal-dependent, unevaluable) under the SCPs that scan read, and\n"
                 "the SCP statements that decided it. An account whose verdicts are the same in\n"
                 "every scanned region is shown once, with region '*'.\n");
}

static int same_decisions(const struct scp_decision *a, const struct scp_decision *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].verdict != b[i].verdict)
            return 0;
    return 1;
}

/* "p-1#Deny; no Allow at ou-…" */
static void statements_text(const struct scp_decision *d, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d[i].n_statements; k++) {
            if (strstr(out, d[i].statements[k]))
                continue;
            len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s", len ? "; " : "",
                                    d[i].statements[k]);
        }
}

static json_t *decision_json(const struct scp_decision *d)
{
    json_t *st = json_array();
    for (size_t k = 0; k < d->n_statements; k++)
        json_array_append_new(st, json_string(d->statements[k]));
    return json_pack("{s:s, s:o, s:s?, s:b}", "verdict", scp_verdict_name(d->verdict), "statements",
                     st, "reason", d->reason[0] ? d->reason : NULL, "restricts_mode",
                     d->restricts_mode);
}

/* The scanned regions of an account (ok coverage rows), into regions (borrowed pointers). */
static size_t account_regions(const struct drift_snapshot *snap, const char *account,
                              const char **regions, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->n_targets && n < cap; i++)
        if (strcmp(snap->targets[i].account_id, account) == 0 &&
            snap->targets[i].status == TARGET_OK && strcmp(snap->targets[i].region, "*") != 0)
            regions[n++] = snap->targets[i].region;
    return n;
}

int cmd_scps(int argc, char **argv)
{
    static const struct option opts[] = {
        {"account", required_argument, NULL, 'a'}, {"format", required_argument, NULL, 'f'},
        {"scan", required_argument, NULL, 's'},    {"database-url", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *account = NULL, *url = NULL;
    int json = 0;
    long long scan_id = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            account = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                json = 1;
            else if (strcmp(optarg, "table") != 0) {
                fprintf(stderr, "egressscan scps: --format must be table or json\n");
                return EXIT_USAGE;
            }
            break;
        case 's':
            scan_id = strtoll(optarg, NULL, 10);
            if (scan_id <= 0) {
                fprintf(stderr, "egressscan scps: --scan: not a scan id: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
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
        fprintf(stderr, "egressscan scps: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan scps: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    int exit_code = EXIT_FAILED;
    struct drift_snapshot snap;
    memset(&snap, 0, sizeof snap);
    json_t *rows = json ? json_array() : NULL;
    const char **regions = NULL;
    if (!scan_id && db_latest_finalized_scan(db, &scan_id, &e) < 0) {
        fprintf(stderr, "egressscan scps: %s\n", e.message);
        goto done;
    }
    if (db_load_drift_snapshot(db, scan_id, &snap, &e) < 0) {
        fprintf(stderr, "egressscan scps: %s\n", e.message);
        goto done;
    }
    if (!snap.scps_known) {
        fprintf(stderr,
                "egressscan scps: scan %lld could not read the organization's SCPs "
                "(no Organizations access, or a fixed --accounts list): the SCP-backed "
                "intent is unknown\n",
                scan_id);
        exit_code = EXIT_FAILED;
        goto done;
    }
    struct drift_input in;
    drift_input_from_snapshot(&snap, NULL, time(NULL), &in);
    regions = malloc((snap.n_targets + 1) * sizeof *regions);
    if (!regions) {
        fprintf(stderr, "egressscan scps: out of memory\n");
        goto done;
    }
    if (!json)
        printf("%-12s  %-18s  %-14s  %-19s  %-19s  %-19s  %-19s  %-19s  %s\n", "ACCOUNT", "NAME",
               "REGION", "AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED", "OMITTED",
               "UPDATE->ROUTED", "DECIDED BY");
    int found = 0;
    for (size_t a = 0; a < snap.n_accounts; a++) {
        const struct drift_account *acct = &snap.accounts[a];
        if (account && strcmp(acct->id, account) != 0)
            continue;
        found = 1;
        size_t nr = account_regions(&snap, acct->id, regions, snap.n_targets);
        if (nr == 0)
            continue;
        /* each region's decisions, evaluated once for both the JSON rows and the table */
        struct scp_decision(*dec)[EGRESS_MODES + 1] = malloc(nr * sizeof *dec);
        if (!dec) {
            fprintf(stderr, "egressscan scps: out of memory\n");
            goto done;
        }
        int uniform = 1, exempt = 0;
        for (size_t r = 0; r < nr; r++) {
            if (drift_scp_intent(&in, acct->id, regions[r], dec[r], &dec[r][EGRESS_MODES], &exempt,
                                 &e) < 0) {
                fprintf(stderr, "egressscan scps: %s\n", e.message);
                free(dec);
                goto done;
            }
            if (r > 0 && !same_decisions(dec[0], dec[r], EGRESS_MODES + 1))
                uniform = 0;
            if (json) {
                json_t *modes = json_object();
                for (int m = 0; m < EGRESS_MODES; m++)
                    json_object_set_new(modes, egress_mode_name((enum egress_mode)m),
                                        decision_json(&dec[r][m]));
                json_array_append_new(
                    rows,
                    json_pack("{s:s, s:s?, s:s, s:b, s:o, s:o}", "account_id", acct->id,
                              "account_name", acct->name, "region", regions[r],
                              "management_account_exempt", exempt, "create_cluster", modes,
                              "update_to_customer_routed", decision_json(&dec[r][EGRESS_MODES])));
            }
        }
        /* the table: one line per account when every region agrees, else one per region */
        for (size_t r = 0; !json && r < (uniform ? 1 : nr); r++) {
            char decided[512];
            statements_text(dec[r], EGRESS_MODES + 1, decided, sizeof decided);
            printf("%-12s  %-18.18s  %-14s", acct->id, acct->name ? acct->name : "-",
                   uniform ? "*" : regions[r]);
            for (int m = 0; m <= EGRESS_MODES; m++)
                printf("  %-19s", scp_verdict_name(dec[r][m].verdict));
            printf("  %s%s\n",
                   acct->is_management ? "(management account: SCPs do not apply) " : "", decided);
        }
        free(dec);
    }
    if (account && !found) {
        fprintf(stderr, "egressscan scps: account %s is not in scan %lld\n", account, scan_id);
        exit_code = EXIT_USAGE;
        goto done;
    }
    if (json) {
        json_t *doc = json_pack("{s:I, s:O}", "scan_id", (json_int_t)scan_id, "targets", rows);
        json_dumpf(doc, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(doc);
    }
    exit_code = EXIT_OK;
done:
    free(regions);
    json_decref(rows);
    db_drift_snapshot_free(&snap);
    db_close(db);
    return exit_code;
}
