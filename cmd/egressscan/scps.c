/* scps.c - `egressscan scps`: what the organization's SCPs, as the latest finalized scan read
 * them, allow per account and region: the CreateCluster verdict for each egress mode (and for
 * leaving the mode out), the UpdateClusterConfig verdict for a switch to CUSTOMER_ROUTED, and
 * the statements that decided. With --with / --detach: the same before and after a proposed SCP
 * change (intent/whatif), as a CI gate. */
#include <ctype.h>
#include <errno.h>
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
#include "intent/drift.h"
#include "intent/policy.h"
#include "intent/whatif.h"
#include "storage/account_query.h"
#include "storage/db.h"
#include "storage/findings.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: egressscan scps [--account ID] [--format table|json] [--scan ID]\n"
                 "                       [--database-url URL]\n"
                 "       egressscan scps --with FILE --attach-to TARGET [--attach-to TARGET]...\n"
                 "                       [--with FILE --attach-to TARGET]...\n"
                 "                       [--detach POLICY_ID[@TARGET]]... [--policy FILE]\n"
                 "                       [--format table|json] [--scan ID] [--database-url URL]\n\n"
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
                 "(database, no finalized scan, the scan could not read the SCPs).\n\n"
                 "What-if (no AWS call: the scan's organization snapshot only):\n"
                 "  --with FILE         a proposed SCP document, validated as AWS would (at most\n"
                 "                      5,120 characters, the SCP grammar; FILE:LINE:COLUMN\n"
                 "                      errors); attached by the --attach-to options after it\n"
                 "  --attach-to TARGET  the root (r-...), an OU (ou-...) or an account id\n"
                 "  --detach POLICY_ID[@TARGET]  an SCP of the snapshot taken off TARGET, or off\n"
                 "                      every target it is attached to\n"
                 "  --policy FILE       the declared policy to judge findings with (the scan's\n"
                 "                      record does not keep it; default: the SCP-backed intent)\n"
                 "For every account and region under the change: the verdicts before and after\n"
                 "(changed ones marked *) and the statements that decide; the clusters that\n"
                 "could not be created again (they would become predates_scp); whether\n"
                 "UpdateClusterConfig to CUSTOMER_ROUTED stays permitted where findings need it;\n"
                 "whether the scanner's own eks:ListClusters would be denied; the findings the\n"
                 "change would close and open. Exit codes: 0 nothing blocked; 1 the change\n"
                 "blocks a remediation findings need, or denies the scanner in some region;\n"
                 "2 usage error, an invalid document, a target or policy not in the snapshot;\n"
                 "4 failed (database, no finalized scan, the scan could not read the SCPs).\n");
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

static int cmp_target_account(const void *a, const void *b)
{
    const struct drift_target *x = *(const struct drift_target *const *)a;
    const struct drift_target *y = *(const struct drift_target *const *)b;
    int c = strcmp(x->account_id, y->account_id);
    return c ? c : (x > y) - (x < y);
}

/* The snapshot's targets by account, each account's in the snapshot's order: one sort instead
 * of a pass over every target per account (20,000 accounts x 17 regions). NULL on ENOMEM. */
static const struct drift_target **targets_by_account(const struct drift_snapshot *snap)
{
    const struct drift_target **v = malloc((snap->n_targets + 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < snap->n_targets; i++)
        v[i] = &snap->targets[i];
    qsort(v, snap->n_targets, sizeof *v, cmp_target_account);
    return v;
}

/* The scanned regions of an account (ok coverage rows, in the snapshot's order), into regions
 * (borrowed pointers); by_account from targets_by_account. */
static size_t account_regions(const struct drift_snapshot *snap,
                              const struct drift_target *const *by_account, const char *account,
                              const char **regions, size_t cap)
{
    size_t lo = 0, hi = snap->n_targets, n = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(by_account[mid]->account_id, account) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo;
         i < snap->n_targets && n < cap && strcmp(by_account[i]->account_id, account) == 0; i++)
        if (by_account[i]->status == TARGET_OK && strcmp(by_account[i]->region, "*") != 0)
            regions[n++] = by_account[i]->region;
    return n;
}

/* The document {"scan_id": N, "targets": [ROW, ...]} exactly as json_dumpf(doc, JSON_INDENT(1))
 * writes it, one row at a time: a fleet's rows are never all in memory (20,000 accounts x 17
 * regions made a 2 GiB jansson tree, most of the command's time spent allocating and freeing
 * it). A row is dumped alone and each of its lines indented by its depth in the document (two
 * spaces): JSON text holds no raw newline inside a string, so every '\n' is a line break. */
struct rows_stream {
    long long scan_id;
    size_t n;
};

/* Writes row (stolen; NULL, as a failed json_pack, is skipped as json_array_append_new would). */
static void rows_put(struct rows_stream *rs, json_t *row)
{
    char *text = row ? json_dumps(row, JSON_INDENT(1)) : NULL;
    json_decref(row);
    if (!text)
        return;
    if (rs->n++ == 0)
        printf("{\n \"scan_id\": %lld,\n \"targets\": [\n  ", rs->scan_id);
    else
        fputs(",\n  ", stdout);
    for (const char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) {
            fputs(p, stdout);
            break;
        }
        fwrite(p, 1, (size_t)(nl - p) + 1, stdout);
        fputs("  ", stdout);
    }
    free(text);
}

static void rows_end(const struct rows_stream *rs)
{
    if (rs->n == 0)
        printf("{\n \"scan_id\": %lld,\n \"targets\": []\n}\n", rs->scan_id);
    else
        fputs("\n ]\n}\n", stdout);
}

/* ---- what-if: --with FILE --attach-to TARGET, --detach POLICY_ID[@TARGET] ---- */

#define WHATIF_FILE_MAX ((size_t)1 << 20)

/* r-xxxx, ou-xxxx-xxxxxxxx (lower-case letters and digits) or a 12-digit account id. */
static int target_id_valid(const char *t)
{
    if (account_id_valid(t))
        return 1;
    const char *p;
    int dashes;
    if (strncmp(t, "r-", 2) == 0) {
        p = t + 2;
        dashes = 0;
    } else if (strncmp(t, "ou-", 3) == 0) {
        p = t + 3;
        dashes = 1;
    } else {
        return 0;
    }
    size_t run = 0;
    for (; *p; p++) {
        if (*p == '-' && run >= 4 && dashes > 0) {
            dashes--;
            run = 0;
        } else if (islower((unsigned char)*p) || isdigit((unsigned char)*p)) {
            run++;
        } else {
            return 0;
        }
    }
    return dashes == 0 && run >= 4 && run <= 32;
}

static int policy_id_valid(const char *p)
{
    if (strncmp(p, "p-", 2) != 0 || !p[2] || strlen(p) > 130)
        return 0;
    for (p += 2; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

/* The whole file, NUL-terminated (*len without it). NULL with a message on stderr. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "egressscan scps: --with %s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(WHATIF_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, WHATIF_FILE_MAX + 1, f) : 0;
    int bad = !text || ferror(f);
    fclose(f);
    if (bad || n > WHATIF_FILE_MAX) {
        fprintf(stderr, "egressscan scps: --with %s: %s\n", path,
                bad ? "cannot read" : "larger than 1 MiB (an SCP has at most 5,120 characters)");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

struct whatif_opts {
    const char *url;
    long long scan_id;
    int json;
    const char *policy_path;
    struct whatif_change *changes;
    size_t n_changes;
    char **texts; /* one per --with (owned) */
    size_t n_texts;
};

static const char *effective_name(const struct scp_decision *d, int exempt)
{
    return scp_verdict_name(effective_verdict(d, exempt));
}

static json_t *side_json(const struct scp_decision *d, int exempt)
{
    json_t *modes = json_object();
    for (int m = 0; m < EGRESS_MODES; m++)
        json_object_set_new(modes, egress_mode_name((enum egress_mode)m),
                            decision_json(&d[m], exempt));
    return json_pack("{s:o, s:o}", "create_cluster", modes, "update_to_customer_routed",
                     decision_json(&d[EGRESS_MODES], exempt));
}

static json_t *whatif_json(const struct whatif_result *r, long long scan_id,
                           const struct whatif_opts *o, int exit_code)
{
    json_t *changes = json_array(), *targets = json_array(), *pred = json_array(),
           *rem = json_array(), *scan = json_array(), *closes = json_array(), *opens = json_array();
    for (size_t i = 0; i < o->n_changes; i++) {
        const struct whatif_change *c = &o->changes[i];
        json_array_append_new(changes,
                              json_pack("{s:s, s:s, s:s?, s:s?}", "action",
                                        c->op == WHATIF_ATTACH ? "attach" : "detach", "policy_id",
                                        c->policy_id, "file", c->label, "target", c->target_id));
    }
    for (size_t i = 0; i < r->n_targets; i++) {
        const struct whatif_target *t = &r->targets[i];
        json_array_append_new(
            targets,
            json_pack("{s:s, s:o, s:s, s:b, s:b, s:o, s:o}", "account_id", t->account_id,
                      "account_name", jstr(t->account_name), "region", t->region,
                      "management_account_exempt", t->exempt, "changed", t->changed, "before",
                      side_json(t->before, t->exempt), "after", side_json(t->after, t->exempt)));
    }
    for (size_t i = 0; i < r->n_predates; i++) {
        const struct whatif_cluster *c = &r->predates[i];
        const struct whatif_target *t = &r->targets[c->target];
        json_t *st = json_array();
        for (size_t k = 0; k < t->after[c->mode].n_statements; k++)
            json_array_append_new(st, jstr(t->after[c->mode].statements[k]));
        json_array_append_new(pred, json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "account_id",
                                              t->account_id, "region", t->region, "cluster",
                                              jstr(c->cluster->name), "cluster_arn",
                                              jstr(c->cluster->arn), "judged_as",
                                              egress_mode_name(c->mode), "statements", st));
    }
    for (size_t i = 0; i < r->n_remediations; i++) {
        const struct whatif_remediation *x = &r->remediations[i];
        json_array_append_new(
            rem, json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:b, s:o}", "account_id", x->account_id,
                           "region", x->region, "cluster", jstr(x->cluster_name), "cluster_arn",
                           jstr(x->cluster_arn), "before", scp_verdict_name(x->before), "after",
                           scp_verdict_name(x->after), "blocked", x->blocked, "decision_after",
                           decision_json(&r->targets[x->target].after[EGRESS_MODES], 0)));
    }
    for (size_t i = 0; i < r->n_scanner; i++) {
        const struct whatif_scanner *s = &r->scanner[i];
        const struct whatif_target *t = &r->targets[s->target];
        json_array_append_new(scan,
                              json_pack("{s:s, s:s, s:o, s:o, s:b}", "account_id", t->account_id,
                                        "region", t->region, "before", decision_json(&s->before, 0),
                                        "after", decision_json(&s->after, 0), "denied", s->denied));
    }
    for (size_t i = 0; i < r->n_deltas; i++) {
        const struct whatif_delta *d = &r->deltas[i];
        json_array_append_new(d->opens ? opens : closes,
                              json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s?}", "kind", d->f->kind,
                                        "reason", d->reason, "account_id", d->f->account_id,
                                        "region", d->f->region, "cluster_arn",
                                        jstr(d->f->cluster_arn), "source", jstr(d->f->source),
                                        "severity", d->f->severity));
    }
    return json_pack("{s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:{s:o, s:o}, s:b, s:b, s:i}", "scan_id",
                     (json_int_t)scan_id, "changes", changes, "judged_with",
                     o->policy_path ? "declared_policy" : "scp_intent", "targets", targets,
                     "predates_scp", pred, "remediation", rem, "scanner_calls", scan, "findings",
                     "close", closes, "open", opens, "blocks_remediation", r->blocks_remediation,
                     "denies_scanner", r->denies_scanner, "exit_code", exit_code);
}

/* "  allowed   " cells of one side; a changed verdict marked '*'. */
static void print_side(const struct whatif_target *t, int after, const char *id, const char *name,
                       const char *region)
{
    const struct scp_decision *d = after ? t->after : t->before;
    printf("%-12s  %-18s  %-14s  %-6s", id, name, region, after ? "after" : "before");
    for (int m = 0; m < WHATIF_DECISIONS; m++) {
        char cell[32];
        int changed = after && t->before[m].verdict != t->after[m].verdict;
        snprintf(cell, sizeof cell, "%s%s", effective_name(&d[m], t->exempt), changed ? "*" : "");
        printf("  %-20s", cell);
    }
    char decided[512], safe[512];
    statements_text(d, WHATIF_DECISIONS, decided, sizeof decided);
    printf("  %s\n", quote_term_to(safe, sizeof safe, decided[0] ? decided : "-"));
}

static int same_target_verdicts(const struct whatif_target *a, const struct whatif_target *b)
{
    return same_decisions(a->before, b->before, WHATIF_DECISIONS) &&
           same_decisions(a->after, b->after, WHATIF_DECISIONS);
}

static void whatif_table(const struct whatif_result *r, long long scan_id,
                         const struct whatif_opts *o, int exit_code)
{
    char a[32], b[160], c[160], d[600];
    printf("What-if on the organization snapshot of scan %lld (no AWS call):\n", scan_id);
    for (size_t i = 0; i < o->n_changes; i++) {
        const struct whatif_change *ch = &o->changes[i];
        if (ch->op == WHATIF_ATTACH)
            printf("  attach %s (%s) to %s\n", ch->policy_id, quote_term_to(b, sizeof b, ch->label),
                   ch->target_id);
        else
            printf("  detach %s from %s\n", ch->policy_id,
                   ch->target_id ? ch->target_id : "every target it is attached to");
    }
    if (o->policy_path)
        printf("  findings judged with the declared policy %s\n",
               quote_term_to(b, sizeof b, o->policy_path));
    else
        printf("  findings judged with the SCP-backed intent (the scan's record keeps no "
               "declared policy: --policy FILE to judge with one)\n");
    printf("\n");
    if (r->n_targets == 0)
        printf("No account scanned ok is under the change.\n");
    else
        printf("%-12s  %-18s  %-14s  %-6s  %-20s  %-20s  %-20s  %-20s  %-20s  %s\n", "ACCOUNT",
               "NAME", "REGION", "WHEN", "AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED",
               "OMITTED", "UPDATE->ROUTED", "DECIDED BY");
    for (size_t i = 0; i < r->n_targets;) {
        /* an account whose regions all agree is shown once, region '*' */
        size_t end = i + 1;
        int uniform = 1;
        while (end < r->n_targets &&
               strcmp(r->targets[end].account_id, r->targets[i].account_id) == 0) {
            uniform &= same_target_verdicts(&r->targets[i], &r->targets[end]);
            end++;
        }
        for (size_t k = i; k < (uniform ? i + 1 : end); k++) {
            const struct whatif_target *t = &r->targets[k];
            char name[19];
            quote_term_to(a, sizeof a, t->account_id);
            quote_term_to(name, sizeof name, t->account_name ? t->account_name : "-");
            quote_term_to(c, sizeof c, uniform ? "*" : t->region);
            print_side(t, 0, a, name, c);
            /* SCPs never apply to the management account: its verdicts stay allowed */
            print_side(t, 1, "", t->exempt ? "management: exempt" : "", "");
        }
        i = end;
    }
    printf("\nClusters that could not be created again (they would become predates_scp):\n");
    if (r->n_predates == 0)
        printf("  none\n");
    for (size_t i = 0; i < r->n_predates; i++) {
        const struct whatif_cluster *p = &r->predates[i];
        const struct whatif_target *t = &r->targets[p->target];
        statements_text(&t->after[p->mode], 1, d, sizeof d);
        printf("  %s  %s  %s  %s  (%s)\n", quote_term_to(a, sizeof a, t->account_id),
               quote_term_to(c, sizeof c, t->region), quote_term_to(b, sizeof b, p->cluster->name),
               egress_mode_name(p->mode), d);
    }
    printf("\nRemediation (UpdateClusterConfig to CUSTOMER_ROUTED) where findings need it:\n");
    if (r->n_remediations == 0)
        printf("  none under the change\n");
    for (size_t i = 0; i < r->n_remediations; i++) {
        const struct whatif_remediation *x = &r->remediations[i];
        const struct scp_decision *dec = &r->targets[x->target].after[EGRESS_MODES];
        statements_text(dec, 1, d, sizeof d);
        printf("  %s  %s  %s  %s -> %s%s%s%s\n", quote_term_to(a, sizeof a, x->account_id),
               quote_term_to(c, sizeof c, x->region), quote_term_to(b, sizeof b, x->cluster_name),
               scp_verdict_name(x->before), scp_verdict_name(x->after),
               x->blocked ? "  BLOCKED" : "", d[0] ? "  " : "", d);
    }
    printf("\nThe scanner's own calls (eks:ListClusters as its role):\n");
    if (r->n_scanner == 0)
        printf("  allowed everywhere under the change\n");
    for (size_t i = 0; i < r->n_scanner; i++) {
        const struct whatif_scanner *s = &r->scanner[i];
        const struct whatif_target *t = &r->targets[s->target];
        statements_text(&s->after, 1, d, sizeof d);
        printf("  %s  %s  %s -> %s%s%s%s\n", quote_term_to(a, sizeof a, t->account_id),
               quote_term_to(c, sizeof c, t->region), scp_verdict_name(s->before.verdict),
               scp_verdict_name(s->after.verdict), s->denied ? "  DENIED" : "", d[0] ? "  " : "",
               d);
    }
    printf("\nFindings the change would close and open:\n");
    if (r->n_deltas == 0)
        printf("  none\n");
    for (size_t i = 0; i < r->n_deltas; i++) {
        const struct whatif_delta *x = &r->deltas[i];
        const char *arn = x->f->cluster_arn;
        const char *slash = arn ? strrchr(arn, '/') : NULL;
        printf("  %-6s %s%s%s%s  %s  %s  %s\n", x->opens ? "opens" : "closes", x->f->kind,
               x->reason[0] ? " (" : "", x->reason, x->reason[0] ? ")" : "",
               quote_term_to(a, sizeof a, x->f->account_id),
               quote_term_to(c, sizeof c, x->f->region),
               quote_term_to(b, sizeof b, slash ? slash + 1 : "-"));
    }
    size_t blocked = 0, denied = 0;
    for (size_t i = 0; i < r->n_remediations; i++)
        blocked += r->remediations[i].blocked;
    for (size_t i = 0; i < r->n_scanner; i++)
        denied += r->scanner[i].denied;
    if (exit_code) {
        printf("\nexit 1: the change");
        if (blocked)
            printf(" blocks the in-place remediation of %zu cluster%s%s", blocked,
                   blocked == 1 ? "" : "s", denied ? " and" : "");
        if (denied)
            printf(" denies the scanner in %zu account/region%s", denied, denied == 1 ? "" : "s");
        printf("\n");
    } else
        printf("\nexit 0: no remediation blocked, the scanner not denied\n");
}

struct open_findings {
    struct finding **v;
    size_t n, cap;
};

static int keep_open(void *ud, const struct stored_finding *sf)
{
    struct open_findings *o = ud;
    if (strcmp(sf->f.kind, "noncompliant_cluster") != 0)
        return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        struct finding **v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return -1;
        o->v = v;
        o->cap = cap;
    }
    if (!(o->v[o->n] = finding_copy(&sf->f)))
        return -1;
    o->n++;
    return 0;
}

static int scps_whatif(struct whatif_opts *o)
{
    /* everything that can be checked without the database first: exit 2 writes nothing */
    struct err e;
    err_clear(&e);
    struct policy *policy = NULL;
    if (o->policy_path && !(policy = policy_load(o->policy_path, stderr, &e))) {
        fprintf(stderr, "egressscan scps: --policy: %s\n", e.message);
        return EXIT_USAGE;
    }
    int exit_code = EXIT_FAILED;
    struct drift_snapshot snap;
    memset(&snap, 0, sizeof snap);
    struct open_findings open = {0};
    struct finding *open_flat = NULL;
    struct whatif_result r;
    memset(&r, 0, sizeof r);
    struct db *db = db_connect(o->url, &e);
    if (!db) {
        fprintf(stderr, "egressscan scps: cannot connect to the database: %s\n", e.message);
        goto done;
    }
    long long scan_id = o->scan_id, used = 0;
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
                "egressscan scps: scan %lld could not read the organization's SCPs: nothing to "
                "compare a change with\n",
                scan_id);
        goto done;
    }
    if (db_query_findings(db, 0, &used, keep_open, &open, &e) < 0) {
        fprintf(stderr, "egressscan scps: the open findings: %s\n", e.message);
        goto done;
    }
    open_flat = malloc((open.n ? open.n : 1) * sizeof *open_flat);
    if (!open_flat) {
        fprintf(stderr, "egressscan scps: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < open.n; i++)
        open_flat[i] = *open.v[i];
    struct drift_input in;
    drift_input_from_snapshot(&snap, policy, time(NULL), &in);
    struct whatif_input wi = {.before = &in,
                              .changes = o->changes,
                              .n_changes = o->n_changes,
                              .open = open_flat,
                              .n_open = open.n,
                              .scanner_role = snap.scanner_role};
    if (whatif_run(&wi, &r, &e) != 0) {
        int invalid = strcmp(e.code, ERR_INVALID) == 0;
        fprintf(stderr, "egressscan scps: %s\n", e.message);
        exit_code = invalid ? EXIT_USAGE : EXIT_FAILED;
        goto done;
    }
    exit_code = r.blocks_remediation || r.denies_scanner ? 1 : EXIT_OK;
    if (o->json) {
        json_t *doc = whatif_json(&r, scan_id, o, exit_code);
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(1)) != 0) {
            fprintf(stderr, "egressscan scps: cannot write JSON\n");
            exit_code = EXIT_FAILED;
        } else {
            putchar('\n');
        }
        json_decref(doc);
    } else {
        whatif_table(&r, scan_id, o, exit_code);
    }
done:
    whatif_result_free(&r);
    for (size_t i = 0; i < open.n; i++)
        free(open.v[i]);
    free(open.v);
    free(open_flat);
    db_drift_snapshot_free(&snap);
    db_close(db);
    policy_free(policy);
    return exit_code;
}

int cmd_scps(int argc, char **argv)
{
    enum { OPT_WITH = 256, OPT_ATTACH_TO, OPT_DETACH, OPT_POLICY };
    static const struct option opts[] = {{"account", required_argument, NULL, 'a'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"scan", required_argument, NULL, 's'},
                                         {"database-url", required_argument, NULL, 'd'},
                                         {"with", required_argument, NULL, OPT_WITH},
                                         {"attach-to", required_argument, NULL, OPT_ATTACH_TO},
                                         {"detach", required_argument, NULL, OPT_DETACH},
                                         {"policy", required_argument, NULL, OPT_POLICY},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *account = NULL, *url = NULL;
    int json = 0;
    long long scan_id = 0;
    int c;
    /* what-if: each --attach-to attaches the latest --with before it */
    struct whatif_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.changes = calloc((size_t)argc + 1, sizeof *wo.changes);
    wo.texts = calloc((size_t)argc + 1, sizeof *wo.texts);
    char(*ids)[24] = calloc((size_t)argc + 1, sizeof *ids);
    int rc_whatif = EXIT_USAGE, attached_last = 1;
    if (!wo.changes || !wo.texts || !ids) {
        fprintf(stderr, "egressscan scps: out of memory\n");
        rc_whatif = EXIT_FAILED;
        goto whatif_out;
    }
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_WITH: {
            if (!attached_last) {
                fprintf(stderr, "egressscan scps: --with %s: no --attach-to after it\n",
                        wo.changes[wo.n_changes].label);
                goto whatif_out;
            }
            size_t len;
            char *text = read_file(optarg, &len);
            if (!text)
                goto whatif_out;
            wo.texts[wo.n_texts++] = text;
            struct err ve;
            err_clear(&ve);
            if (whatif_check_scp(optarg, text, len, &ve) != 0) {
                fprintf(stderr, "%s\n", ve.message);
                goto whatif_out;
            }
            attached_last = 0;
            /* the file stands in the list of changes until its first --attach-to */
            snprintf(ids[wo.n_texts - 1], sizeof ids[0], "proposed-%zu", wo.n_texts);
            wo.changes[wo.n_changes] =
                (struct whatif_change){WHATIF_ATTACH, ids[wo.n_texts - 1], text, optarg, NULL};
            break;
        }
        case OPT_ATTACH_TO:
            if (wo.n_texts == 0) {
                fprintf(stderr, "egressscan scps: --attach-to %s: no --with FILE before it\n",
                        optarg);
                goto whatif_out;
            }
            if (!target_id_valid(optarg)) {
                fprintf(stderr,
                        "egressscan scps: --attach-to: \"%.40s\" is not a root (r-...), an OU "
                        "(ou-...-...) or an account id (12 digits)\n",
                        optarg);
                goto whatif_out;
            }
            if (attached_last) /* another target for the same file */
                wo.changes[wo.n_changes] = wo.changes[wo.n_changes - 1];
            wo.changes[wo.n_changes++].target_id = optarg;
            attached_last = 1;
            break;
        case OPT_DETACH: {
            if (!attached_last) {
                fprintf(stderr, "egressscan scps: --with %s: no --attach-to after it\n",
                        wo.changes[wo.n_changes].label);
                goto whatif_out;
            }
            char *at = strchr(optarg, '@');
            if (at)
                *at++ = '\0';
            if (!policy_id_valid(optarg) || (at && !target_id_valid(at))) {
                fprintf(stderr,
                        "egressscan scps: --detach: \"%.40s\" is not POLICY_ID[@TARGET] (p-..., "
                        "then r-..., ou-... or an account id)\n",
                        optarg);
                goto whatif_out;
            }
            wo.changes[wo.n_changes++] =
                (struct whatif_change){WHATIF_DETACH, optarg, NULL, NULL, at};
            break;
        }
        case OPT_POLICY:
            wo.policy_path = optarg;
            break;
        case 'a':
            account = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                json = 1;
            else if (strcmp(optarg, "table") != 0) {
                fprintf(stderr, "egressscan scps: --format must be table or json\n");
                goto whatif_out;
            }
            break;
        case 's':
            scan_id = strtoll(optarg, NULL, 10);
            if (scan_id <= 0) {
                fprintf(stderr, "egressscan scps: --scan: not a scan id: %s\n", optarg);
                goto whatif_out;
            }
            break;
        case 'd':
            url = optarg;
            break;
        case 'h':
            usage(stdout);
            rc_whatif = EXIT_OK;
            goto whatif_out;
        default:
            usage(stderr);
            goto whatif_out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressscan scps: unexpected argument '%s'\n", argv[optind]);
        goto whatif_out;
    }
    if (!attached_last) {
        fprintf(stderr, "egressscan scps: --with %s: no --attach-to after it\n",
                wo.changes[wo.n_changes].label);
        goto whatif_out;
    }
    if (wo.n_changes > 0 || wo.policy_path) {
        if (wo.n_changes == 0) {
            fprintf(stderr, "egressscan scps: --policy goes with --with or --detach\n");
            goto whatif_out;
        }
        if (account) {
            fprintf(stderr, "egressscan scps: --account does not go with --with or --detach (the "
                            "what-if covers every account under the change)\n");
            goto whatif_out;
        }
        wo.url = url;
        wo.scan_id = scan_id;
        wo.json = json;
        rc_whatif = scps_whatif(&wo);
        goto whatif_out;
    }
    for (size_t i = 0; i < wo.n_texts; i++)
        free(wo.texts[i]);
    free(wo.texts);
    free(wo.changes);
    free(ids);
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
    json_t *rows = json ? json_array() : NULL; /* stays empty: the rows are streamed (rs) */
    struct rows_stream rs = {0, 0};
    const char **regions = NULL;
    const struct drift_target **by_account = NULL;
    struct drift_intent_cache *intents = NULL;
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
    by_account = targets_by_account(&snap);
    if (!regions || !by_account) {
        fprintf(stderr, "egressscan scps: out of memory\n");
        goto done;
    }
    /* every SCP parsed once, each distinct evaluation done once (intent/drift.c) */
    if (!(intents = drift_intent_cache_new(&in, &e))) {
        fprintf(stderr, "egressscan scps: %s\n", e.message);
        goto done;
    }
    rs.scan_id = scan_id;
    /* the header goes with the first row: an account with nothing to show gets no empty table */
    int found = 0;
    long without = 0; /* accounts of the snapshot with no region scanned ok */
    for (size_t a = 0; a < snap.n_accounts; a++) {
        const struct drift_account *acct = &snap.accounts[a];
        if (account && strcmp(acct->id, account) != 0)
            continue;
        size_t nr = account_regions(&snap, by_account, acct->id, regions, snap.n_targets);
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
            if (drift_intent_cache_decide(intents, acct->id, regions[r], dec[r],
                                          &dec[r][EGRESS_MODES], &exempt, &e) < 0) {
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
                rows_put(&rs, json_pack("{s:s, s:s?, s:s, s:b, s:o, s:o}", "account_id", acct->id,
                                        "account_name", acct->name, "region", regions[r],
                                        "management_account_exempt", exempt, "create_cluster",
                                        modes, "update_to_customer_routed",
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
        rows_end(&rs);
    }
    exit_code = EXIT_OK;
done:
    drift_intent_cache_free(intents);
    free(by_account);
    free(regions);
    json_decref(rows);
    db_drift_snapshot_free(&snap);
    db_close(db);
    return exit_code;
whatif_out:
    for (size_t i = 0; wo.texts && i < wo.n_texts; i++)
        free(wo.texts[i]);
    free(wo.texts);
    free(wo.changes);
    free(ids);
    return rc_whatif;
}
