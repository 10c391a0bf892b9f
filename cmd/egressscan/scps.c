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
#include "common/buf.h"
#include "common/quote.h"
#include "scanner/drift.h"
#include "storage/account_query.h"
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
                 "every scanned region is shown once, with region '*'. SCPs do not apply to\n"
                 "the management account: its verdicts are allowed, and what the SCPs alone\n"
                 "would say is shown next to them (JSON: scp_verdict_if_applied). A\n"
                 "principal-dependent verdict names a principal that may and one that may not\n"
                 "(JSON: allowed_principal_example, denied_principal_example) when\n"
                 "aws:PrincipalArn conditions make it so.\n\n"
                 "With --account, an account that scan has no verdicts for (none of its regions\n"
                 "was scanned ok, or it is not in that scan's organization snapshot: it left\n"
                 "the organization, was suspended or excluded) is explained instead: why, its\n"
                 "latest coverage (egressscan.coverage) and when it was last scanned ok (with\n"
                 "--format json as an \"unscanned\" object, \"targets\" empty).\n\n"
                 "Exit codes: 0 verdicts shown; 2 usage error, an --account that is not 12\n"
                 "digits, or an account no scan has ever seen; 3 the account is known but the\n"
                 "scan has no verdicts for it (explained on standard error); 4 failed\n"
                 "(database, no finalized scan, the scan could not read the SCPs).\n");
}

/* Text from AWS or the record, for a terminal: control characters replaced. */
static void put_safe(struct buf *b, const char *s)
{
    quote_term(b, s); /* C0, DEL, C1 controls and invalid UTF-8 replaced */
}

/* "REGION STATUS (CODE: MESSAGE)" */
static void put_target(struct buf *b, const char *region, const char *status, const char *code,
                       const char *message)
{
    put_safe(b, region);
    buf_putc(b, ' ');
    put_safe(b, status);
    if (code || message) {
        buf_puts(b, " (");
        put_safe(b, code ? code : "-");
        if (message) {
            buf_puts(b, ": ");
            put_safe(b, message);
        }
        buf_putc(b, ')');
    }
}

static json_t *jstr(const char *s)
{
    json_t *v = s ? json_string(s) : NULL; /* NULL also for text that is not UTF-8 */
    return v ? v : json_null();
}

/* The scan's own rows of account that are not ok, into b ("; "-separated, at most 8). */
static size_t put_scan_failures(struct buf *b, const struct drift_snapshot *snap,
                                const char *account)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->n_targets; i++) {
        const struct drift_target *t = &snap->targets[i];
        if (strcmp(t->account_id, account) != 0 || t->status == TARGET_OK)
            continue;
        if (n < 8) {
            buf_puts(b, n ? "; " : "");
            put_target(b, t->region, target_status_name(t->status), t->error_code,
                       t->error_message);
        }
        n++;
    }
    if (n > 8)
        buf_printf(b, "; and %zu more", n - 8);
    return n;
}

/* Why scan_id has no SCP verdicts for account (known to the record): stderr, and with json an
 * "unscanned" object for the document. */
static void explain_unscanned(const struct drift_snapshot *snap, long long scan_id,
                              const char *account, const struct account_standing *st,
                              json_t **json_out)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "account %s", account);
    if (st->name) {
        buf_puts(&b, " (");
        put_safe(&b, st->name);
        buf_putc(&b, ')');
    }
    buf_printf(&b, ": no SCP verdicts in scan %lld: ", scan_id);
    size_t reason_at = b.len;
    int rows_in_scan = 0;
    for (size_t i = 0; i < snap->n_targets; i++)
        rows_in_scan |= strcmp(snap->targets[i].account_id, account) == 0;
    const char *why;
    if (rows_in_scan) {
        why = "not_scanned_ok";
        buf_puts(&b, "none of its targets was scanned ok: ");
        put_scan_failures(&b, snap, account);
    } else if (st->in_snapshot) {
        why = "not_scanned";
        buf_printf(&b, "in the organization snapshot of scan %lld", scan_id);
        if (st->snapshot_status) {
            buf_puts(&b, " (status ");
            put_safe(&b, st->snapshot_status);
            buf_putc(&b, ')');
        }
        buf_puts(&b, " but not scanned by it (suspended, excluded, or outside the scan's "
                     "--ou / --accounts)");
    } else {
        why = "not_in_snapshot";
        buf_printf(&b, "not in the organization snapshot of scan %lld", scan_id);
        if (st->last_scan_id || st->status) {
            const char *sep = " (";
            if (st->last_scan_id) {
                buf_printf(&b, "%slast seen by scan %lld", sep, st->last_scan_id);
                if (st->last_seen)
                    buf_printf(&b, " at %s", st->last_seen);
                sep = ", ";
            }
            if (st->status) {
                buf_printf(&b, "%sits status then ", sep);
                put_safe(&b, st->status);
            }
            buf_putc(&b, ')');
        }
    }
    size_t reason_end = b.len;
    buf_puts(&b, "\n  latest coverage: ");
    if (st->n_coverage == 0)
        buf_puts(&b, "no row in egressscan.coverage (the account is not in the fleet's "
                     "coverage: it left the organization, was excluded, or was never scanned)");
    for (size_t i = 0; i < st->n_coverage && i < 8; i++) {
        const struct account_coverage *c = &st->coverage[i];
        buf_puts(&b, i ? "; " : "");
        put_target(&b, c->region, c->status, c->error_code, c->error_message);
        buf_printf(&b, " in scan %lld", c->scan_id);
        if (c->scanned_at)
            buf_printf(&b, " at %s", c->scanned_at);
    }
    if (st->n_coverage > 8)
        buf_printf(&b, "; and %zu more", st->n_coverage - 8);
    buf_printf(&b, "\n  last scanned ok: %s", st->last_ok_at ? st->last_ok_at : "never");
    if (b.data)
        fprintf(stderr, "egressscan scps: %s\n", b.data);
    if (json_out && b.data) {
        json_t *cov = json_array();
        for (size_t i = 0; i < st->n_coverage; i++) {
            const struct account_coverage *c = &st->coverage[i];
            json_t *row = json_object();
            json_object_set_new(row, "scan_id", json_integer(c->scan_id));
            json_object_set_new(row, "region", jstr(c->region));
            json_object_set_new(row, "status", jstr(c->status));
            json_object_set_new(row, "error_code", jstr(c->error_code));
            json_object_set_new(row, "error_message", jstr(c->error_message));
            json_object_set_new(row, "scanned_at", jstr(c->scanned_at));
            json_array_append_new(cov, row);
        }
        char *reason = strndup(b.data + reason_at, reason_end - reason_at);
        json_t *u = json_object();
        json_object_set_new(u, "account_id", json_string(account));
        json_object_set_new(u, "account_name", jstr(st->name));
        json_object_set_new(u, "why", json_string(why));
        json_object_set_new(u, "reason", jstr(reason));
        json_object_set_new(u, "in_snapshot", json_boolean(st->in_snapshot));
        json_object_set_new(u, "latest_coverage", cov);
        json_object_set_new(u, "last_ok_at", jstr(st->last_ok_at));
        free(reason);
        *json_out = u;
    }
    buf_cleanup(&b);
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

/* The effective verdict of a request. The management account is exempt from SCPs: every request
 * is allowed there, whatever they say. */
static enum scp_verdict effective_verdict(const struct scp_decision *d, int exempt)
{
    return exempt ? SCP_ALLOWED : d->verdict;
}

/* "verdict" is the effective one; for the management account what the SCPs alone would say is
 * "scp_verdict_if_applied" (with the statements and reason behind it). */
static json_t *decision_json(const struct scp_decision *d, int exempt)
{
    json_t *st = json_array();
    for (size_t k = 0; k < d->n_statements; k++)
        json_array_append_new(st, json_string(d->statements[k]));
    json_t *o =
        json_pack("{s:s, s:o, s:s?, s:b}", "verdict",
                  scp_verdict_name(effective_verdict(d, exempt)), "statements", st, "reason",
                  d->reason[0] ? d->reason : NULL, "restricts_mode", d->restricts_mode);
    if (o && exempt)
        json_object_set_new(o, "scp_verdict_if_applied", json_string(scp_verdict_name(d->verdict)));
    if (o && d->allowed_principal[0])
        json_object_set_new(o, "allowed_principal_example", jstr(d->allowed_principal));
    if (o && d->denied_principal[0])
        json_object_set_new(o, "denied_principal_example", jstr(d->denied_principal));
    return o;
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
    if (account && !account_id_valid(account)) {
        struct buf b;
        buf_init(&b);
        put_safe(&b, account);
        fprintf(stderr, "egressscan scps: --account: \"%.40s\" is not an account id (12 digits)\n",
                b.data ? b.data : "");
        buf_cleanup(&b);
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
    /* the header goes with the first row: an account with nothing to show gets no empty table */
    int found = 0;
    long without = 0; /* accounts of the snapshot with no region scanned ok */
    for (size_t a = 0; a < snap.n_accounts; a++) {
        const struct drift_account *acct = &snap.accounts[a];
        if (account && strcmp(acct->id, account) != 0)
            continue;
        size_t nr = account_regions(&snap, acct->id, regions, snap.n_targets);
        if (nr == 0) {
            without++;
            continue;
        }
        if (!found && !json)
            printf("%-12s  %-18s  %-14s  %-19s  %-19s  %-19s  %-19s  %-19s  %s\n", "ACCOUNT",
                   "NAME", "REGION", "AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED",
                   "OMITTED", "UPDATE->ROUTED", "DECIDED BY");
        found = 1;
        if (account) {
            /* the regions shown are those scanned ok: say which were not */
            struct buf nb;
            buf_init(&nb);
            if (put_scan_failures(&nb, &snap, account) > 0 && nb.data)
                fprintf(stderr, "egressscan scps: account %s: not scanned ok in scan %lld: %s\n",
                        account, scan_id, nb.data);
            buf_cleanup(&nb);
        }
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
                                        decision_json(&dec[r][m], exempt));
                json_array_append_new(
                    rows, json_pack("{s:s, s:s?, s:s, s:b, s:o, s:o}", "account_id", acct->id,
                                    "account_name", acct->name, "region", regions[r],
                                    "management_account_exempt", exempt, "create_cluster", modes,
                                    "update_to_customer_routed",
                                    decision_json(&dec[r][EGRESS_MODES], exempt)));
            }
        }
        /* the table: one line per account when every region agrees, else one per region */
        for (size_t r = 0; !json && r < (uniform ? 1 : nr); r++) {
            char decided[512];
            statements_text(dec[r], EGRESS_MODES + 1, decided, sizeof decided);
            /* the account name is the member account's own choice: no control character
             * reaches the terminal, and the column is cut on a character boundary */
            char id[32], name[19], region[32], safe_decided[512];
            printf("%-12s  %-18s  %-14s", quote_term_to(id, sizeof id, acct->id),
                   quote_term_to(name, sizeof name, acct->name ? acct->name : "-"),
                   quote_term_to(region, sizeof region, uniform ? "*" : regions[r]));
            for (int m = 0; m <= EGRESS_MODES; m++)
                printf("  %-19s", scp_verdict_name(effective_verdict(&dec[r][m], exempt)));
            if (exempt) {
                /* what the SCPs alone would say, named as such */
                printf("  (management account: SCPs do not apply; if they did:");
                for (int m = 0; m <= EGRESS_MODES; m++)
                    printf(" %s", scp_verdict_name(dec[r][m].verdict));
                printf(") %s\n", quote_term_to(safe_decided, sizeof safe_decided, decided));
            } else {
                printf("  %s\n", quote_term_to(safe_decided, sizeof safe_decided, decided));
            }
        }
        free(dec);
    }
    if (account && !found) {
        /* nothing to show: say why instead of an empty table */
        struct account_standing st;
        if (db_account_standing(db, account, scan_id, &st, &e) < 0) {
            fprintf(stderr, "egressscan scps: %s\n", e.message);
            db_account_standing_free(&st);
            goto done;
        }
        if (!st.known) {
            fprintf(stderr,
                    "egressscan scps: account %s: no scan has seen this account (not in the "
                    "organization, or never scanned)\n",
                    account);
            exit_code = EXIT_USAGE;
        } else {
            json_t *unscanned = NULL;
            explain_unscanned(&snap, scan_id, account, &st, json ? &unscanned : NULL);
            if (json) {
                json_t *doc = json_pack("{s:I, s:O, s:o?}", "scan_id", (json_int_t)scan_id,
                                        "targets", rows, "unscanned", unscanned);
                if (doc && json_dumpf(doc, stdout, JSON_INDENT(1)) == 0)
                    putchar('\n');
                else
                    fprintf(stderr, "egressscan scps: cannot write JSON\n");
                json_decref(doc);
            }
            exit_code = EXIT_PARTIAL;
        }
        db_account_standing_free(&st);
        goto done;
    }
    if (without > 0)
        fprintf(stderr,
                "egressscan scps: %ld account%s of scan %lld without verdicts (no region scanned "
                "ok): 'egressscan scps --account ID' says why\n",
                without, without == 1 ? "" : "s", scan_id);
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
