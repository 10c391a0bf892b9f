/* report_md.c - the weekly report as Markdown for GitLab/GitHub wikis and tickets: the same
 * sections and numbers as the HTML report, tables instead of charts (plus a one-line sparkline of
 * the trend). Text from the database is escaped (Markdown punctuation, table pipes, line breaks);
 * commands go in code spans or fenced blocks whose fence is longer than any backtick run. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/version.h"
#include "report/report.h"
#include "report/report_internal.h"

/* Plain text: Markdown punctuation backslash-escaped (CommonMark allows it before any ASCII
 * punctuation; '>' matters only at the start of a line, where this never writes), line breaks and
 * control characters made spaces / U+FFFD, bad UTF-8 U+FFFD. */
static void md(FILE *o, const char *s)
{
    if (!s)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = report_utf8_len(p);
            if (n) {
                fwrite(p, 1, n, o);
                p += n;
            } else {
                fputs("\xef\xbf\xbd", o);
                p++;
            }
            continue;
        }
        if (c == '\n' || c == '\r' || c == '\t')
            fputc(' ', o);
        else if (c < 0x20 || c == 0x7f)
            fputs("\xef\xbf\xbd", o);
        else if (c == '_' && p > (const unsigned char *)s && isalnum(p[-1]) && isalnum(p[1]))
            fputc(c, o); /* intraword: never emphasis in CommonMark, kept readable */
        else if (strchr("\\`*_[]<|~#&!", c))
            fprintf(o, "\\%c", c);
        else
            fputc(c, o);
        p++;
    }
}

/* md, or an em dash when s is NULL or empty. */
static void md_or_dash(FILE *o, const char *s)
{
    if (s && *s)
        md(o, s);
    else
        fputs("\u2014", o);
}

static size_t longest_backtick_run(const char *s)
{
    size_t best = 0, run = 0;
    for (; s && *s; s++) {
        run = *s == '`' ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* A code span; in a table (in_table) pipes are escaped as GFM requires even inside code. */
static void md_code(FILE *o, const char *s, int in_table)
{
    if (!s || !*s) {
        fputs("\u2014", o);
        return;
    }
    size_t fence = longest_backtick_run(s) + 1;
    for (size_t i = 0; i < fence; i++)
        fputc('`', o);
    if (s[0] == '`')
        fputc(' ', o);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = *p >= 0x80 ? report_utf8_len(p) : 1;
        if (n == 0) {
            fputs("\xef\xbf\xbd", o);
            p++;
            continue;
        }
        if (*p == '\n' || *p == '\r' || *p == '\t')
            fputc(' ', o);
        else if (*p < 0x20 || *p == 0x7f)
            fputs("\xef\xbf\xbd", o);
        else if (*p == '|' && in_table)
            fputs("\\|", o);
        else
            fwrite(p, 1, n, o);
        p += n;
    }
    if (s[strlen(s) - 1] == '`')
        fputc(' ', o);
    for (size_t i = 0; i < fence; i++)
        fputc('`', o);
}

/* A fenced code block (one line of shell). */
static void md_block(FILE *o, const char *s)
{
    size_t fence = longest_backtick_run(s) + 1;
    if (fence < 3)
        fence = 3;
    for (size_t i = 0; i < fence; i++)
        fputc('`', o);
    fputs("sh\n", o);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = *p >= 0x80 ? report_utf8_len(p) : 1;
        if (n == 0 || (*p < 0x20 && *p != '\n') || *p == 0x7f) {
            fputs(n == 0 || *p != '\t' ? "\xef\xbf\xbd" : " ", o);
            p++;
            continue;
        }
        fwrite(p, 1, n, o);
        p += n;
    }
    fputc('\n', o);
    for (size_t i = 0; i < fence; i++)
        fputc('`', o);
    fputs("\n\n", o);
}

static void md_account(FILE *o, const char *name, const char *id)
{
    if (name && *name) {
        md(o, name);
        fputs(" (", o);
        md(o, id);
        fputc(')', o);
    } else {
        md_or_dash(o, id);
    }
}

/* "2026-01-25 10:00" (the column header says UTC). */
static void md_stamp(FILE *o, const char *stamp)
{
    char text[48];
    report_stamp_text(stamp, text, sizeof text);
    size_t n = strlen(text);
    if (n > 4 && strcmp(text + n - 4, " UTC") == 0)
        text[n - 4] = '\0';
    md_or_dash(o, text);
}

static void md_rate(FILE *o, int has, double rate)
{
    char t[16];
    if (!has) {
        fputs("unknown", o);
        return;
    }
    report_rate_text(rate, t);
    fputs(t, o);
}

static void md_severity(FILE *o, const char *sev)
{
    fputs("**", o);
    for (const char *p = sev ? sev : "?"; *p; p++)
        fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, o);
    fputs("**", o);
}

static void headline(FILE *o, const struct report *r)
{
    char prev[16], change[24], stamp[48];
    const struct report_scan *s = &r->last;
    fputs("> **Compliance rate: ", o);
    md_rate(o, s->has_rate, s->rate);
    fputs("**", o);
    if (r->has_change) {
        report_rate_text(r->prev.rate, prev);
        report_change_text(r->change_pp, change);
        const char *dir = r->change_pp >= 0.05    ? "\u25b2 up"
                          : r->change_pp <= -0.05 ? "\u25bc down"
                                                  : "\u25cf unchanged";
        fprintf(o, " \u00b7 %s %s from %s in %s", dir, change, prev, r->prev_week_text);
    } else {
        fprintf(o, " \u00b7 no comparison: no rate for %s", r->prev_week_text);
    }
    fputs("  \n", o);
    if (s->counts.evaluated)
        fprintf(o,
                "> %ld compliant and %ld non-compliant of %ld clusters in scope; %ld exempt and "
                "%ld unknown not counted (%ld clusters judged).  \n",
                s->counts.compliant, s->counts.noncompliant,
                s->counts.compliant + s->counts.noncompliant, s->counts.exempt, s->counts.unknown,
                s->counts.clusters);
    else
        fputs("> The compliance of the week's last scan was not evaluated.  \n", o);
    if (s->counts.evaluated && s->counts.unverified) {
        char text[192];
        report_unverified_text(s->counts.unverified, text, sizeof text);
        fprintf(o, "> **%s**  \n", text);
    }
    report_stamp_text(s->started_at, stamp, sizeof stamp);
    fprintf(o,
            "> Last scan of the week: #%lld, %s, %s %s scan: %ld of %ld targets of the fleet "
            "scanned ok.\n\n",
            s->scan_id, stamp, s->status, s->scope, s->counts.targets_ok, s->counts.targets_total);
    if (s->scps_known == 0)
        fputs("> **SCP-backed intent unknown:** the week's last scan could not read the "
              "organization's SCPs; the declared policy alone decided compliance.\n\n",
              o);
    if (r->n_unscanned)
        fprintf(o,
                "> **Partial coverage:** %zu target%s of the fleet not scanned ok by the latest "
                "scan that tried %s (see Coverage).\n\n",
                r->n_unscanned, r->n_unscanned == 1 ? "" : "s",
                r->n_unscanned == 1 ? "it" : "them");
}

/* One character per day: a block by rate decile, a middle dot for a day without a scan, a space
 * for a day still to come, ? for a scan whose rate is unknown. */
static void sparkline(FILE *o, const struct report *r)
{
    static const char *const blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                         "\u2585", "\u2586", "\u2587", "\u2588"};
    fputs("`", o);
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        const struct report_day *d = &r->trend[i];
        if (i && i % REPORT_WEEK_DAYS == 0)
            fputs("\u2502", o);
        if (d->future)
            fputs(" ", o);
        else if (!d->scanned)
            fputs("\u00b7", o);
        else if (!d->has_rate)
            fputs("?", o);
        else {
            int k = (int)(d->rate * 8);
            fputs(blocks[k > 7 ? 7 : k < 0 ? 0 : k], o);
        }
    }
    fputs("`", o);
}

static void trend(FILE *o, const struct report *r)
{
    char range[96];
    report_range_text(r->trend[0].day, r->trend[REPORT_TREND_DAYS - 1].day, range, sizeof range);
    fprintf(o, "## Daily compliance trend\n\n%s, one point per day (the day's last scan): ", range);
    sparkline(o, r);
    fputs("  \n\u00b7 = no scan that day (a gap, not a zero); \u2502 separates the weeks.\n\n", o);
    fputs("| Week | Days with a scan | Rate at the end of the week |\n|---|--:|--:|\n", o);
    for (int w = 0; w < REPORT_TREND_WEEKS; w++) {
        fprintf(o, "| %s%s | %d of 7 | ", r->trend_weeks[w].week,
                w == REPORT_TREND_WEEKS - 1 ? " (this week)" : "", r->trend_weeks[w].days_scanned);
        if (r->trend_weeks[w].last_day < 0)
            fputs("no scan", o);
        else
            md_rate(o, r->trend_weeks[w].has_rate, r->trend_weeks[w].rate);
        fputs(" |\n", o);
    }
    fputs("\n| Day | Scan | Rate | Compliant | Non-compliant | Exempt | Unknown | Not verified | "
          "Targets scanned |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
          o);
    for (int i = REPORT_TREND_DAYS - REPORT_WEEK_DAYS; i < REPORT_TREND_DAYS; i++) {
        const struct report_day *d = &r->trend[i];
        char day[32];
        report_date_short(d->day, day, sizeof day);
        if (!d->scanned) {
            fprintf(o, "| %s | %s | | | | | | | |\n", day, d->future ? "not yet" : "**no scan**");
            continue;
        }
        fprintf(o, "| %s | #%lld | ", day, d->scan_id);
        md_rate(o, d->has_rate, d->rate);
        if (d->counts.evaluated)
            fprintf(o, " | %ld | %ld | %ld | %ld | %ld | %ld of %ld |\n", d->counts.compliant,
                    d->counts.noncompliant, d->counts.exempt, d->counts.unknown,
                    d->counts.unverified, d->counts.targets_ok, d->counts.targets_total);
        else
            fprintf(o, " | | | | | | %ld of %ld |\n", d->counts.targets_ok,
                    d->counts.targets_total);
    }
    fputc('\n', o);
}

static void mode_header(FILE *o, const char *first)
{
    fprintf(o, "| %s | Accounts | Clusters |", first);
    for (int m = 0; m < REPORT_MODES; m++)
        fprintf(o, " %s |", report_mode_label((enum report_mode)m));
    fputs(" Non-compliant | Not verified |\n|---|--:|--:|", o);
    for (int m = 0; m < REPORT_MODES; m++)
        fputs("--:|", o);
    fputs("--:|--:|\n", o);
}

static void mode_cells(FILE *o, const struct report_fleet_row *row)
{
    fprintf(o, " %ld | %ld |", row->accounts, row->clusters);
    for (int m = 0; m < REPORT_MODES; m++)
        fprintf(o, " %ld |", row->by_mode[m]);
    fprintf(o, " %ld | %ld |\n", row->noncompliant, row->unverified);
}

static void fleet(FILE *o, const struct report *r)
{
    fprintf(o, "## Clusters by egress mode\n\n%ld verified clusters at the end of the week.\n\n",
            r->fleet_clusters);
    if (r->fleet_unverified) {
        char text[192];
        report_unverified_text(r->fleet_unverified, text, sizeof text);
        fprintf(o, "**%s**\n\n", text);
    }
    fputs("| Egress mode | Clusters | Share |\n|---|--:|--:|\n", o);
    for (int m = 0; m < REPORT_MODES; m++) {
        fprintf(o, "| %s | %ld | ", report_mode_label((enum report_mode)m), r->fleet_by_mode[m]);
        if (r->fleet_clusters)
            fprintf(o, "%.1f%%", 100.0 * (double)r->fleet_by_mode[m] / (double)r->fleet_clusters);
        fputs(" |\n", o);
    }
    fputs("\n### By OU\n\n", o);
    if (!r->n_ous) {
        fputs("No cluster at the end of the week.\n\n", o);
        return;
    }
    mode_header(o, "OU");
    for (size_t i = 0; i < r->n_ous; i++) {
        fputs("| ", o);
        md_or_dash(o, r->ous[i].ou_path);
        fputs(" |", o);
        mode_cells(o, &r->ous[i]);
    }
    fputs("\n### By account\n\n", o);
    fputs("| OU | Account | Clusters |", o);
    for (int m = 0; m < REPORT_MODES; m++)
        fprintf(o, " %s |", report_mode_label((enum report_mode)m));
    fputs(" Non-compliant | Not verified |\n|---|---|--:|", o);
    for (int m = 0; m < REPORT_MODES; m++)
        fputs("--:|", o);
    fputs("--:|--:|\n", o);
    size_t shown = r->n_accounts < REPORT_ACCOUNTS_MAX ? r->n_accounts : REPORT_ACCOUNTS_MAX;
    for (size_t i = 0; i < shown; i++) {
        const struct report_fleet_row *a = &r->accounts[i];
        fputs("| ", o);
        md_or_dash(o, a->ou_path);
        fputs(" | ", o);
        md_account(o, a->account_name, a->account_id);
        fputs(" |", o);
        fprintf(o, " %ld |", a->clusters);
        for (int m = 0; m < REPORT_MODES; m++)
            fprintf(o, " %ld |", a->by_mode[m]);
        fprintf(o, " %ld | %ld |\n", a->noncompliant, a->unverified);
    }
    if (r->n_accounts > shown)
        fprintf(o, "\n%zu more accounts are in the JSON report.\n", r->n_accounts - shown);
    fputc('\n', o);
}

static void finding_cells(FILE *o, const struct report_finding *f)
{
    fputs("| ", o);
    md_severity(o, f->severity);
    fputs(" | ", o);
    md(o, report_kind_label(f->kind));
    fputs(" | ", o);
    md_account(o, f->account_name, f->account_id);
    fputs(" | ", o);
    md_or_dash(o, f->region);
    fputs(" | ", o);
    md_code(o, f->cluster_name, 1);
    fputs(" | ", o);
    if (f->why && *f->why)
        md(o, f->why);
    else
        md_or_dash(o, report_reason_label(f->reason));
    fputs(" | ", o);
}

static void findings(FILE *o, const struct report *r)
{
    fputs("## Findings this week\n\n", o);
    fprintf(o, "**%ld new, %ld resolved", r->n_new, r->n_resolved);
    if (r->last.scan_id) {
        fprintf(o, "; %ld open at the end of the week**", r->n_open);
        const char *sep = " (";
        for (int s = 0; s < REPORT_SEVERITIES; s++)
            if (r->open_by_severity[s]) {
                fprintf(o, "%s%ld %s", sep, r->open_by_severity[s],
                        report_severity_name((enum report_severity)s));
                sep = ", ";
            }
        fputs(strcmp(sep, ", ") == 0 ? ")." : ".", o);
        if (r->n_carried_over) {
            char text[320];
            report_carried_text(r->n_carried_over, text, sizeof text);
            fprintf(o, " %s", text);
        }
    } else {
        fputs("**.", o);
    }
    if (r->n_resolved_left) {
        char text[160];
        report_left_text(r->n_resolved_left, text, sizeof text);
        fprintf(o, " %s", text);
    }
    fputs("\n\n", o);
    for (int pass = 0; pass < 2; pass++) {
        long total = pass == 0 ? r->n_new : r->n_resolved;
        fprintf(o, "### %s this week (%ld)\n\n", pass == 0 ? "New" : "Resolved", total);
        if (!total) {
            fputs(pass == 0 ? "No new finding.\n\n" : "No finding was resolved.\n\n", o);
            continue;
        }
        fprintf(o,
                "| Severity | Kind | Account | Region | Cluster | Detail | First seen (UTC) |%s\n"
                "|---|---|---|---|---|---|---|%s\n",
                pass ? " Resolved (UTC) | How |" : "", pass ? "---|---|" : "");
        long shown = 0;
        for (size_t i = 0; i < r->n_findings && shown < REPORT_LIST_MAX; i++) {
            const struct report_finding *f = &r->findings[i];
            if (pass == 0 ? !f->new_this_week : !f->resolved_this_week)
                continue;
            shown++;
            finding_cells(o, f);
            md_stamp(o, f->first_seen);
            fputs(" |", o);
            if (pass) {
                fputc(' ', o);
                md_stamp(o, f->resolved_at);
                fputs(" | ", o);
                md(o, report_resolution_label(f->resolved_reason));
                fputs(" |", o);
            }
            fputc('\n', o);
        }
        if (total > shown)
            fprintf(o, "\n%ld more: see the CSV or JSON report.\n", total - shown);
        fputc('\n', o);
    }
}

static void gaps(FILE *o, const struct report *r)
{
    fputs("## SCP enforcement gaps\n\nAccounts where a new non-compliant cluster could still be "
          "created: the SCPs do not enforce the declared intent.\n\n",
          o);
    if (!r->n_gaps) {
        fputs("None among the open findings.\n\n", o);
        return;
    }
    fprintf(o, "%zu account%s in %ld OU%s.\n\n", r->n_gaps, r->n_gaps == 1 ? "" : "s", r->gap_ous,
            r->gap_ous == 1 ? "" : "s");
    fputs("| OU | Account | Regions | Rule | Why | Still allowed | Unenforced intent | "
          "Non-compliant clusters through the gap |\n|---|---|---|---|---|---|--:|--:|\n",
          o);
    for (size_t i = 0; i < r->n_gaps; i++) {
        const struct report_gap *g = &r->gaps[i];
        fputs("| ", o);
        md_or_dash(o, g->ou_path);
        fputs(" | ", o);
        md_account(o, g->account_name, g->account_id);
        fputs(" | ", o);
        md_or_dash(o, g->regions);
        fputs(" | ", o);
        md_or_dash(o, g->rules);
        fputs(" | ", o);
        char reasons[512];
        report_reasons_text(g->reasons, reasons, sizeof reasons);
        md_or_dash(o, reasons);
        fputs(" | ", o);
        md_or_dash(o, g->why);
        fprintf(o, " | %ld | %ld |\n", g->unenforced, g->gap_clusters);
    }
    fputc('\n', o);
}

static void target_row(FILE *o, const struct report_target *t, int failed)
{
    fputs("| ", o);
    md_account(o, t->account_name, t->account_id);
    fputs(" | ", o);
    md(o, strcmp(t->region ? t->region : "", "*") == 0 ? "* (whole account)" : t->region);
    fputs(" | ", o);
    md(o, report_status_label(t->status));
    fputs(" | ", o);
    md_stamp(o, t->scanned_at);
    fputs(" | ", o);
    if (!t->last_ok_at) {
        fputs("never", o);
    } else {
        fputs(failed ? "not verified since " : "", o);
        md_stamp(o, t->last_ok_at);
    }
    if (failed) {
        fputs(" | ", o);
        if (t->error_code) {
            md(o, t->error_code);
            fputs(": ", o);
        }
        md_or_dash(o, t->error_message);
    }
    fputs(" |\n", o);
}

static void coverage(FILE *o, const struct report *r)
{
    char stamp[48];
    fputs("## Coverage\n\n", o);
    fprintf(o,
            "- Scans started this week: %ld (%ld succeeded, %ld partial, %ld failed, %ld "
            "aborted, %ld running)\n",
            r->scans.total, r->scans.succeeded, r->scans.partial, r->scans.failed, r->scans.aborted,
            r->scans.running);
    if (r->last.scan_id) {
        report_stamp_text(r->last.started_at, stamp, sizeof stamp);
        fprintf(o,
                "- Last scan of the week: #%lld, %s, %s %s scan; the fleet after it: %ld of %ld "
                "targets scanned ok\n",
                r->last.scan_id, stamp, r->last.status, r->last.scope, r->last.counts.targets_ok,
                r->last.counts.targets_total);
    }
    fputs("- Days without a finalized scan: ", o);
    if (!r->n_days_without_scan)
        fputs("none", o);
    for (size_t i = 0; i < r->n_days_without_scan; i++) {
        char day[32];
        report_date_short(r->days_without_scan[i], day, sizeof day);
        fprintf(o, "%s%s", i ? ", " : "", day);
    }
    fputs("\n\n", o);
    if (r->n_week_scans) {
        fputs("### Scans this week\n\n| Scan | Started (UTC) | Status | Scope | SCPs | Targets "
              "scanned ok |\n|--:|---|---|---|---|--:|\n",
              o);
        for (size_t i = 0; i < r->n_week_scans; i++) {
            const struct report_scan_row *w = &r->week_scans[i];
            fprintf(o, "| #%lld | ", w->scan_id);
            md_stamp(o, w->started_at);
            fputs(" | ", o);
            md_or_dash(o, w->status);
            fputs(" | ", o);
            md(o, report_scope_label(w->scope));
            fputs(" | ", o);
            md(o, report_scps_state_label(w->scps_state));
            fprintf(o, " | %ld of %ld |\n", w->targets_ok, w->targets_total);
        }
        fputc('\n', o);
    }
    if (!r->last.scan_id)
        return;
    fputs("### Targets not scanned\n\nThe fleet's latest word per target (account x region) at the "
          "week's last scan.\n\n",
          o);
    if (!r->n_unscanned) {
        fputs("Every target of the fleet was scanned ok by the latest scan that tried it.\n\n", o);
    } else {
        fputs("| Account | Region | Status | Tried (UTC) | Last scanned ok (UTC) | Error "
              "|\n|---|---|---|---|---|---|\n",
              o);
        for (size_t i = 0; i < r->n_unscanned; i++)
            target_row(o, &r->unscanned[i], 1);
        fputc('\n', o);
    }
    if (r->n_suspended) {
        fprintf(o,
                "### Suspended accounts (%zu)\n\nNot a failure: AWS suspended these accounts; "
                "their clusters are not counted.\n\n| Account | Region | Status | Tried (UTC) | "
                "Last scanned "
                "ok (UTC) |\n|---|---|---|---|---|\n",
                r->n_suspended);
        for (size_t i = 0; i < r->n_suspended; i++)
            target_row(o, &r->suspended[i], 0);
        fputc('\n', o);
    }
}

static void oldest(FILE *o, const struct report *r)
{
    fputs("## Oldest open findings\n\n", o);
    int n = 0;
    for (size_t i = 0; i < r->n_findings && n < REPORT_OLDEST_MAX; i++) {
        const struct report_finding *f = &r->findings[i];
        if (!f->open_at_end)
            continue;
        n++;
        char stamp[48];
        report_stamp_text(f->first_seen, stamp, sizeof stamp);
        long age = report_age_days(r, f->first_seen);
        fprintf(o, "### %d. ", n);
        md_severity(o, f->severity);
        fputs(" \u00b7 ", o);
        md(o, report_kind_label(f->kind));
        if (f->cluster_name) {
            fputs(" \u00b7 ", o);
            md_code(o, f->cluster_name, 0);
        }
        fputs("\n\n- Account: ", o);
        md_account(o, f->account_name, f->account_id);
        fputs(", region ", o);
        md_or_dash(o, f->region);
        if (f->ou_path) {
            fputs(", OU ", o);
            md(o, f->ou_path);
        }
        fprintf(o, "\n- Open for %ld day%s (first seen %s)\n", age < 0 ? 0 : age,
                age == 1 ? "" : "s", stamp);
        if (f->carried_over) {
            report_stamp_text(f->last_seen, stamp, sizeof stamp);
            fprintf(o,
                    "- Carried over: not judged again by the week's last scan (last raised by "
                    "the scan of %s)\n",
                    stamp);
        }
        if (f->cluster_arn) {
            fputs("- Observed mode: ", o);
            md(o, f->observed_mode ? f->observed_mode : "not reported (judged as AWS_MANAGED)");
            if (f->allowed_modes) {
                fputs("; allowed: ", o);
                md(o, f->allowed_modes);
            }
            fputc('\n', o);
        }
        if (f->reason) {
            fputs("- Reason: ", o);
            md(o, report_reason_label(f->reason));
            fputc('\n', o);
        }
        if (f->why) {
            fputs("- Detail: ", o);
            md(o, f->why);
            fputc('\n', o);
        }
        fputs("- Source: ", o);
        md_or_dash(o, f->source);
        fputs("\n\n", o);
        if (f->remediation) {
            fputs("Remediation:\n\n", o);
            md_block(o, f->remediation);
        }
        if (f->warning) {
            fputs("> \u26a0\ufe0f **Irreversible:** ", o);
            md(o, f->warning);
            fputs("\n\n", o);
        }
    }
    if (!n)
        fputs("No open finding at the end of the week.\n\n", o);
}

int report_render_md(const struct report *r, FILE *o, struct err *err)
{
    char range[96], msg[512], stamp[48];
    report_range_text(r->week.monday, r->week.monday + REPORT_WEEK_DAYS - 1, range, sizeof range);
    report_stamp_text(r->generated_at, stamp, sizeof stamp);
    fprintf(o, "# EKS control plane egress compliance \u2014 week %s\n\n", r->week_text);
    fprintf(o, "%s \u00b7 generated %s by egressscan %s from its database\n\n", range, stamp,
            EGRESSSCAN_VERSION);
    enum report_state state = report_state_of(r);
    if (state != REPORT_STATE_OK) {
        fputs("> **", o);
        md(o, report_state_message(r, msg, sizeof msg));
        fputs("**\n\n", o);
    } else {
        headline(o, r);
    }
    if (state == REPORT_STATE_OK || state == REPORT_STATE_NO_SCAN_WEEK)
        trend(o, r);
    if (state == REPORT_STATE_OK) {
        fleet(o, r);
        findings(o, r);
        gaps(o, r);
        coverage(o, r);
        oldest(o, r);
    } else if (state == REPORT_STATE_NO_SCAN_WEEK) {
        findings(o, r);
        coverage(o, r);
    }
    fputs("## Definitions\n\n", o);
    for (size_t i = 0; report_definitions[i]; i++) {
        fputs("- ", o);
        md(o, report_definitions[i]);
        fputc('\n', o);
    }
    if (fflush(o) != 0 || ferror(o))
        return err_set(err, ERR_IO, "writing the Markdown report failed");
    return 0;
}
