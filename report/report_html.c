/* report_html.c - the weekly report as one self-contained HTML file for security teams and their
 * managers: inline CSS (screen and print), inline SVG charts (a daily line chart whose gaps are
 * days without a scan, a stacked bar chart of egress modes per OU), tables with column headers,
 * no script, no external font, image or link. Readable when a mail client drops the SVG (every
 * chart has a table with the same numbers) and well-formed as XML too (void elements closed,
 * numeric character references only). Every string from the database is escaped. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/version.h"
#include "report/report.h"
#include "report/report_internal.h"

static void out(FILE *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(FILE *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o, fmt, ap);
    va_end(ap);
}

/* Text and attribute values: markup characters as references, control characters and bytes that
 * are not UTF-8 as U+FFFD (neither may appear in HTML), at most max_chars characters (0: all)
 * with an ellipsis when cut. */
static void esc_n(FILE *o, const char *s, size_t max_chars)
{
    size_t chars = 0;
    if (!s)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; chars++) {
        if (max_chars && chars == max_chars) {
            fputs("\u2026", o);
            return;
        }
        size_t n = report_utf8_len(p);
        if (n == 0) {
            fputs("&#65533;", o);
            p++;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", o);
            break;
        case '<':
            fputs("&lt;", o);
            break;
        case '>':
            fputs("&gt;", o);
            break;
        case '"':
            fputs("&quot;", o);
            break;
        case '\'':
            fputs("&#39;", o);
            break;
        default:
            if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                fputs("&#65533;", o);
            else if (*p == '\r')
                fputc(' ', o);
            else
                fwrite(p, 1, n, o);
        }
        p += n;
    }
}

static void esc(FILE *o, const char *s)
{
    esc_n(o, s, 0);
}

static void esc_or_dash(FILE *o, const char *s)
{
    if (s && *s)
        esc(o, s);
    else
        fputs("\u2014", o);
}

static void account_html(FILE *o, const char *name, const char *id)
{
    if (name && *name) {
        esc(o, name);
        fputs(" <span class=\"muted\">", o);
        esc(o, id);
        fputs("</span>", o);
    } else {
        esc_or_dash(o, id);
    }
}

static void rate_html(FILE *o, int has, double rate)
{
    char t[16];
    if (!has) {
        fputs("unknown", o);
        return;
    }
    report_rate_text(rate, t);
    fputs(t, o);
}

static void severity_badge(FILE *o, const char *sev)
{
    enum report_severity s = report_severity_of(sev);
    out(o, "<span class=\"badge sev-%s\">", s < REPORT_SEVERITIES ? sev : "info");
    for (const char *p = sev ? sev : "?"; *p; p++) {
        char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        if (c == '<' || c == '>' || c == '&' || c == '"')
            c = '?';
        fputc(c, o);
    }
    fputs("</span>", o);
}

/* A mode's label, with a line break opportunity after each underscore (narrow table headers). */
static void mode_label(FILE *o, enum report_mode m)
{
    for (const char *p = report_mode_label(m); *p; p++) {
        fputc(*p, o);
        if (*p == '_')
            fputs("<wbr />", o);
    }
}

static void swatch(FILE *o, enum report_mode m)
{
    out(o, "<span class=\"sw\" style=\"background:%s\">&#160;</span>", report_mode_color(m));
}

/* ---- page ---- */

static const char *const CSS[] = {
    /* screen */
    ":root{--fg:#1f2933;--muted:#5f6b7a;--line:#d9e2ec;--panel:#f5f7fa;--accent:#1d4ed8;"
    "--good:#16723a;--bad:#b42318}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#eef1f5;color:var(--fg);font:15px/1.5 -apple-system,"
    "BlinkMacSystemFont,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\"Noto Sans\",\"Liberation "
    "Sans\",sans-serif;-webkit-text-size-adjust:100%}\n"
    ".wrap{max-width:1000px;margin:0 auto;padding:24px 16px}\n"
    ".page{background:#fff;border-radius:10px;padding:32px 36px;"
    "box-shadow:0 1px 3px rgba(16,24,40,.1)}\n"
    "h1{font-size:26px;line-height:1.25;margin:0 0 4px}\n"
    "h2{font-size:19px;margin:40px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}\n"
    "h3{font-size:16px;margin:24px 0 8px}\n"
    "p{margin:8px 0}\n"
    ".sub,.muted{color:var(--muted)}\n"
    ".sub{margin:0 0 24px}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 8px}\n"
    ".card{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:14px 16px;"
    "background:var(--panel)}\n"
    ".card.main{flex:2 1 250px;background:#fff;border-color:#b8c4d4}\n"
    ".k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em;"
    "font-weight:600}\n"
    ".v{font-size:32px;font-weight:700;line-height:1.2;font-variant-numeric:tabular-nums}\n"
    ".card.main .v{font-size:44px}\n"
    ".chg{font-weight:600}\n"
    ".up{color:var(--good)}.down{color:var(--bad)}.flat{color:var(--muted)}\n"
    ".s{font-size:13px;color:var(--muted)}\n"
    ".note{border-left:4px solid var(--accent);background:#eef4ff;padding:10px 14px;"
    "border-radius:4px;margin:12px 0}\n"
    ".alert{border-left:4px solid var(--bad);background:#fff4f2;padding:10px 14px;"
    "border-radius:4px;margin:12px 0}\n"
    ".empty{border:1px dashed var(--line);border-radius:8px;padding:18px;text-align:center;"
    "color:var(--muted);margin:12px 0}\n"
    ".empty strong{color:var(--fg);font-size:17px}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;margin:8px 0 16px}\n"
    "th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);"
    "vertical-align:top}\n"
    "thead th{background:var(--panel);font-weight:600;font-size:13px;border-bottom:2px solid "
    "var(--line)}\n"
    "th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.n,td.t,td.nw{white-space:nowrap}\n"
    "td.bad{color:var(--bad);font-weight:700}\n"
    "tr.gap td{color:var(--muted);font-style:italic}\n"
    "tr.week th{background:#e8f0fe}\n",
    "code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\","
    "monospace;font-size:13px}\n"
    "code{background:#f0f3f7;padding:1px 4px;border-radius:4px;overflow-wrap:break-word}\n"
    "pre{background:#0f172a;color:#e2e8f0;padding:10px 12px;border-radius:6px;"
    "white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0}\n"
    "pre code{background:none;padding:0;color:inherit}\n"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;"
    "font-weight:700;letter-spacing:.04em;color:#fff;white-space:nowrap}\n"
    ".sev-critical{background:#7a1414}.sev-high{background:#c0362c}"
    ".sev-medium{background:#a15c00}.sev-low{background:#2f6fb3}.sev-info{background:#5f6b7a}\n"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;"
    "margin-right:6px;line-height:12px;font-size:1px}\n"
    ".legend{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:6px 18px;"
    "font-size:13px}\n"
    ".chips{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 16px}\n"
    ".chip{flex:1 1 0;min-width:120px;border:1px solid var(--line);border-radius:8px;"
    "padding:8px 12px;font-size:13px}\n"
    ".chip b{font-size:22px;font-variant-numeric:tabular-nums}\n"
    "figure{margin:8px 0 12px}\n"
    "figcaption{font-size:13px;color:var(--muted);margin-top:4px}\n"
    "svg{max-width:100%;height:auto;display:block}\n"
    "svg text{font-family:inherit;font-size:11px;fill:#52606d}\n"
    "svg text.wk{font-size:12px;font-weight:600;fill:#1f2933}\n"
    ".finding{border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:12px 0}\n"
    ".finding h3{margin:0 0 8px;font-size:15px}\n"
    ".finding dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0;"
    "font-size:14px}\n"
    ".finding dt{color:var(--muted)}.finding dd{margin:0}\n"
    ".warn{border:1px solid #f1b8b0;border-left:5px solid var(--bad);background:#fff4f2;"
    "color:#7a1a12;padding:8px 12px;border-radius:4px;margin:8px 0 0;font-size:14px}\n"
    "footer{margin-top:40px;font-size:13px;color:var(--muted)}\n"
    "footer li{margin:2px 0}\n",
    /* small screens and print */
    "@media (max-width:640px){.page{padding:20px 16px}.card.main .v{font-size:36px}}\n"
    "@media print{@page{margin:14mm}body{background:#fff;font-size:10.5pt}"
    ".wrap{max-width:none;padding:0}.page{box-shadow:none;border-radius:0;padding:0}"
    "h2{break-after:avoid;page-break-after:avoid}"
    "figure,.card,.finding,tr,.warn{break-inside:avoid;page-break-inside:avoid}"
    "thead{display:table-header-group}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "pre{background:#f0f3f7;color:#111;border:1px solid var(--line)}}\n",
    NULL};

static void page_start(FILE *o, const struct report *r)
{
    char range[96], stamp[48];
    report_range_text(r->week.monday, r->week.monday + REPORT_WEEK_DAYS - 1, range, sizeof range);
    report_stamp_text(r->generated_at, stamp, sizeof stamp);
    out(o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n"
        "<meta name=\"color-scheme\" content=\"light\" />\n"
        "<meta name=\"generator\" content=\"egressscan %s\" />\n"
        "<title>EKS egress compliance \u2014 %s</title>\n<style>\n",
        EGRESSSCAN_VERSION, r->week_text);
    for (size_t i = 0; CSS[i]; i++)
        fputs(CSS[i], o);
    out(o,
        "</style>\n</head>\n<body>\n"
        "<div class=\"wrap\"><main class=\"page\">\n<header>\n"
        "<h1>EKS control plane egress compliance \u2014 week %s</h1>\n"
        "<p class=\"sub\">%s \u00b7 generated %s by egressscan %s from its database</p>\n"
        "</header>\n",
        r->week_text, range, stamp, EGRESSSCAN_VERSION);
}

static void page_end(FILE *o)
{
    fputs("<footer>\n<h2>How to read this report</h2>\n<ul>\n", o);
    for (size_t i = 0; report_definitions[i]; i++) {
        fputs("<li>", o);
        esc(o, report_definitions[i]);
        fputs("</li>\n", o);
    }
    fputs("<li>The charts carry the same numbers as the tables beside them (some mail clients "
          "do not show inline SVG).</li>\n",
          o);
    out(o,
        "</ul>\n<p>egressscan %s \u00b7 the numbers come from the views daily_compliance, "
        "cluster_history, current_drift and coverage (or the same definitions applied to the "
        "week's last finalized scan).</p>\n</footer>\n</main></div>\n</body>\n</html>\n",
        EGRESSSCAN_VERSION);
}

/* ---- headline ---- */

static void headline(FILE *o, const struct report *r)
{
    const struct report_scan *s = &r->last;
    char prev[16], change[24], stamp[48];
    fputs("<section class=\"cards\" aria-label=\"Headline\">\n<div class=\"card main\">"
          "<div class=\"k\">Compliance rate</div><div class=\"v\">",
          o);
    rate_html(o, s->has_rate, s->rate);
    fputs("</div>", o);
    if (r->has_change) {
        report_rate_text(r->prev.rate, prev);
        report_change_text(r->change_pp, change);
        const char *cls = r->change_pp >= 0.05 ? "up" : r->change_pp <= -0.05 ? "down" : "flat";
        const char *arrow = r->change_pp >= 0.05    ? "\u25b2"
                            : r->change_pp <= -0.05 ? "\u25bc"
                                                    : "\u25cf";
        const char *word = r->change_pp >= 0.05    ? "up"
                           : r->change_pp <= -0.05 ? "down"
                                                   : "unchanged";
        out(o,
            "<div class=\"chg %s\"><span aria-hidden=\"true\">%s</span> %s %s "
            "<span class=\"s\">from %s in %s</span></div>",
            cls, arrow, word, change, prev, r->prev_week_text);
    } else {
        out(o, "<div class=\"chg flat\">no comparison: no rate for %s</div>", r->prev_week_text);
    }
    if (s->counts.evaluated)
        out(o,
            "<div class=\"s\">%ld compliant of %ld verified clusters in scope (%ld exempt and "
            "%ld unknown not counted)</div>",
            s->counts.compliant, s->counts.compliant + s->counts.noncompliant, s->counts.exempt,
            s->counts.unknown);
    else
        fputs("<div class=\"s\">the compliance of the week's last scan was not evaluated</div>", o);
    fputs("</div>\n", o);
    if (s->counts.evaluated)
        out(o,
            "<div class=\"card\"><div class=\"k\">Non-compliant clusters</div><div "
            "class=\"v\">%ld</div><div class=\"s\">of %ld verified clusters judged at the end of "
            "the week</div></div>\n",
            s->counts.noncompliant, s->counts.clusters);
    else
        fputs("<div class=\"card\"><div class=\"k\">Non-compliant clusters</div><div "
              "class=\"v\">\u2014</div><div class=\"s\">not evaluated</div></div>\n",
              o);
    out(o,
        "<div class=\"card\"><div class=\"k\">Open findings</div><div class=\"v\">%ld</div>"
        "<div class=\"s\">%ld new, %ld resolved this week; %ld carried over</div></div>\n",
        r->n_open, r->n_new, r->n_resolved, r->n_carried_over);
    out(o,
        "<div class=\"card\"><div class=\"k\">Coverage</div><div class=\"v\">%ld/%ld</div>"
        "<div class=\"s\">targets of the fleet scanned ok; %zu day%s without a scan</div>"
        "</div>\n</section>\n",
        s->counts.targets_ok, s->counts.targets_total, r->n_days_without_scan,
        r->n_days_without_scan == 1 ? "" : "s");
    report_stamp_text(s->started_at, stamp, sizeof stamp);
    out(o,
        "<p class=\"s\">Numbers of the fleet at the end of the week: last scan of the week #%lld, "
        "%s, %s %s scan.",
        s->scan_id, stamp, s->status, s->scope);
    if (r->scans.total)
        out(o, " %ld scan%s started this week.", r->scans.total, r->scans.total == 1 ? "" : "s");
    fputs("</p>\n", o);
    if (s->counts.evaluated && s->counts.unverified) {
        char text[192];
        report_unverified_text(s->counts.unverified, text, sizeof text);
        fputs("<p class=\"alert\"><strong>", o);
        esc(o, text);
        fputs("</strong></p>\n", o);
    }
    if (s->scps_known == 0)
        fputs("<p class=\"alert\"><strong>SCP-backed intent unknown.</strong> The week's last "
              "scan could not read the organization's SCPs: the declared policy alone decided "
              "compliance, and SCP enforcement gaps cannot be known.</p>\n",
              o);
    if (r->n_unscanned)
        out(o,
            "<p class=\"alert\"><strong>Partial coverage.</strong> %zu target%s of the fleet "
            "not scanned ok by the latest scan that tried %s: %s clusters are not in these "
            "numbers (see Coverage).</p>\n",
            r->n_unscanned, r->n_unscanned == 1 ? "" : "s", r->n_unscanned == 1 ? "it" : "them",
            r->n_unscanned == 1 ? "its" : "their");
}

/* ---- trend ---- */

#define TW 900.0
#define TH 270.0
#define TML 46.0
#define TMR 14.0
#define TMT 14.0
#define TMB 52.0

static double trend_x(int i)
{
    return TML + (TW - TML - TMR) / REPORT_TREND_DAYS * (i + 0.5);
}

static double trend_y(double rate)
{
    return TMT + (1.0 - rate) * (TH - TMT - TMB);
}

static void day_title(FILE *o, const struct report_day *d)
{
    char day[32], rate[16];
    report_date_short(d->day, day, sizeof day);
    if (!d->scanned) {
        out(o, "<title>%s: no scan</title>", day);
    } else if (!d->has_rate) {
        out(o, "<title>%s: scan #%lld, compliance rate unknown</title>", day, d->scan_id);
    } else {
        report_rate_text(d->rate, rate);
        out(o,
            "<title>%s: %s (%ld of %ld verified clusters in scope compliant, scan #%lld)</title>",
            day, rate, d->counts.compliant, d->counts.compliant + d->counts.noncompliant,
            d->scan_id);
    }
}

static void trend_chart(FILE *o, const struct report *r)
{
    const double pw = TW - TML - TMR, ph = TH - TMT - TMB, week_w = pw / REPORT_TREND_WEEKS;
    char range[96];
    int scanned = 0, gaps = 0;
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        scanned += r->trend[i].scanned;
        gaps += !r->trend[i].scanned && !r->trend[i].future;
    }
    report_range_text(r->trend[0].day, r->trend[REPORT_TREND_DAYS - 1].day, range, sizeof range);
    out(o,
        "<figure>\n<svg viewBox=\"0 0 900 270\" width=\"900\" height=\"270\" role=\"img\" "
        "aria-label=\"Daily compliance rate, %s: one point per day with a scan (%d days); %d "
        "days without a scan are gaps in the line. The last band is week %s.\">\n"
        "<title>Daily compliance rate, %s</title>\n"
        "<desc>One point per day with a scan (%d days); %d days without a scan are gaps in the "
        "line. The last band is week %s.</desc>\n",
        range, scanned, gaps, r->week_text, range, scanned, gaps, r->week_text);
    for (int w = 0; w < REPORT_TREND_WEEKS; w++) {
        int this_week = w == REPORT_TREND_WEEKS - 1;
        out(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" />\n",
            TML + week_w * w, TMT, week_w, ph,
            this_week ? "#e8f0fe"
            : w % 2   ? "#f7f9fb"
                      : "#ffffff");
        out(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\"%s>%s%s</text>\n",
            TML + week_w * (w + 0.5), TH - 10, this_week ? " class=\"wk\"" : "",
            r->trend_weeks[w].week, this_week ? " (this week)" : "");
        char monday[32];
        report_date_short(r->trend[w * REPORT_WEEK_DAYS].day, monday, sizeof monday);
        out(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
            trend_x(w * REPORT_WEEK_DAYS), TMT + ph + 16, monday + 4);
        out(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9aa5b1\" />\n",
            trend_x(w * REPORT_WEEK_DAYS), TMT + ph, trend_x(w * REPORT_WEEK_DAYS), TMT + ph + 4);
    }
    for (int g = 0; g <= 100; g += 25) {
        double y = trend_y(g / 100.0);
        out(o,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" />\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
            TML, y, TW - TMR, y, g ? "#e1e7ef" : "#9aa5b1", TML - 6, y + 4, g);
    }
    /* one path per run of consecutive days with a rate: a day without one breaks the line */
    for (int i = 0; i < REPORT_TREND_DAYS;) {
        if (!r->trend[i].has_rate) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < REPORT_TREND_DAYS && r->trend[j + 1].has_rate)
            j++;
        if (j > i) {
            fputs("<path fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2.5\" "
                  "stroke-linejoin=\"round\" d=\"",
                  o);
            for (int k = i; k <= j; k++)
                out(o, "%s%.1f %.1f", k == i ? "M" : " L", trend_x(k), trend_y(r->trend[k].rate));
            fputs("\" />\n", o);
        }
        i = j + 1;
    }
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        const struct report_day *d = &r->trend[i];
        double x = trend_x(i);
        if (d->has_rate) {
            out(o,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#1d4ed8\" stroke=\"#ffffff\" "
                "stroke-width=\"1.5\">",
                x, trend_y(d->rate));
            day_title(o, d);
            fputs("</circle>\n", o);
        } else if (d->scanned) {
            out(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">?", x, TMT + ph / 2);
            day_title(o, d);
            fputs("</text>\n", o);
        } else if (!d->future) {
            double y = TMT + ph - 7;
            out(o,
                "<path stroke=\"#9aa5b1\" stroke-width=\"1.5\" d=\"M%.1f %.1f L%.1f %.1f "
                "M%.1f %.1f L%.1f %.1f\">",
                x - 3, y - 3, x + 3, y + 3, x - 3, y + 3, x + 3, y - 3);
            day_title(o, d);
            fputs("</path>\n", o);
        }
    }
    out(o,
        "</svg>\n<figcaption>Compliance rate per day (the day's last scan). A break in the line "
        "and \u00d7 on the axis: no scan that day \u2014 a gap, not a zero. Shaded: week "
        "%s.</figcaption>\n</figure>\n",
        r->week_text);
}

static void trend_tables(FILE *o, const struct report *r)
{
    fputs("<table>\n<caption class=\"muted\">Rate at the end of each week</caption>\n"
          "<thead><tr><th scope=\"col\">Week</th><th scope=\"col\" class=\"n\">Days with a "
          "scan</th><th scope=\"col\" class=\"n\">Rate at the end of the week</th></tr></thead>\n"
          "<tbody>\n",
          o);
    for (int w = 0; w < REPORT_TREND_WEEKS; w++) {
        int this_week = w == REPORT_TREND_WEEKS - 1;
        out(o, "<tr%s><th scope=\"row\">%s%s</th><td class=\"n\">%d of 7</td><td class=\"n\">",
            this_week ? " class=\"week\"" : "", r->trend_weeks[w].week,
            this_week ? " (this week)" : "", r->trend_weeks[w].days_scanned);
        if (r->trend_weeks[w].last_day < 0)
            fputs("no scan", o);
        else
            rate_html(o, r->trend_weeks[w].has_rate, r->trend_weeks[w].rate);
        fputs("</td></tr>\n", o);
    }
    fputs("</tbody>\n</table>\n", o);

    out(o,
        "<table>\n<caption class=\"muted\">The days of week %s</caption>\n<thead><tr>"
        "<th scope=\"col\">Day</th><th scope=\"col\">Scan</th><th scope=\"col\" "
        "class=\"n\">Rate</th><th scope=\"col\" class=\"n\">Compliant</th><th scope=\"col\" "
        "class=\"n\">Non-compliant</th><th scope=\"col\" class=\"n\">Exempt</th><th "
        "scope=\"col\" class=\"n\">Unknown</th><th scope=\"col\" class=\"n\">Not "
        "verified</th><th scope=\"col\" class=\"n\">Targets scanned</th></tr></thead>\n"
        "<tbody>\n",
        r->week_text);
    for (int i = REPORT_TREND_DAYS - REPORT_WEEK_DAYS; i < REPORT_TREND_DAYS; i++) {
        const struct report_day *d = &r->trend[i];
        char day[32];
        report_date_short(d->day, day, sizeof day);
        if (!d->scanned) {
            out(o, "<tr class=\"gap\"><th scope=\"row\">%s</th><td colspan=\"8\">%s</td></tr>\n",
                day, d->future ? "not yet" : "no scan");
            continue;
        }
        out(o, "<tr><th scope=\"row\">%s</th><td>#%lld</td><td class=\"n\">", day, d->scan_id);
        rate_html(o, d->has_rate, d->rate);
        if (d->counts.evaluated)
            out(o,
                "</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td>"
                "<td class=\"n\">%ld</td><td class=\"n\">%ld</td>",
                d->counts.compliant, d->counts.noncompliant, d->counts.exempt, d->counts.unknown,
                d->counts.unverified);
        else
            fputs("</td><td class=\"n\" colspan=\"5\">not evaluated</td>", o);
        out(o, "<td class=\"n\">%ld of %ld</td></tr>\n", d->counts.targets_ok,
            d->counts.targets_total);
    }
    fputs("</tbody>\n</table>\n", o);
}

static void trend_section(FILE *o, const struct report *r)
{
    fputs("<section aria-labelledby=\"h-trend\">\n<h2 id=\"h-trend\">Daily compliance trend</h2>\n",
          o);
    trend_chart(o, r);
    trend_tables(o, r);
    fputs("</section>\n", o);
}

/* ---- fleet ---- */

static void legend(FILE *o)
{
    fputs("<ul class=\"legend\" aria-label=\"Egress modes\">\n", o);
    for (int m = 0; m < REPORT_MODES; m++) {
        fputs("<li>", o);
        swatch(o, (enum report_mode)m);
        fputs(report_mode_label((enum report_mode)m), o);
        fputs("</li>\n", o);
    }
    fputs("</ul>\n", o);
}

static void ou_chart(FILE *o, const struct report *r)
{
    size_t rows = r->n_ous < REPORT_CHART_OUS_MAX ? r->n_ous : REPORT_CHART_OUS_MAX;
    const double label_w = 250, bar_x = 260, bar_w = 470, row_h = 30;
    long max = 1;
    for (size_t i = 0; i < rows; i++)
        if (r->ous[i].clusters > max)
            max = r->ous[i].clusters;
    double h = (double)rows * row_h + 8;
    out(o,
        "<figure>\n<svg viewBox=\"0 0 900 %.0f\" width=\"900\" height=\"%.0f\" role=\"img\" "
        "aria-label=\"Clusters by egress mode per OU at the end of week %s: a stacked bar per "
        "OU; the table below has the same numbers.\">\n<title>Clusters by egress mode per OU at "
        "the end of week %s</title>\n<desc>A stacked bar per OU; segment lengths are cluster "
        "counts by egress mode. The table below has the same numbers.</desc>\n",
        h, h, r->week_text, r->week_text);
    for (size_t i = 0; i < rows; i++) {
        const struct report_fleet_row *ou = &r->ous[i];
        double y = 4 + (double)i * row_h;
        out(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", label_w, y + 19);
        esc_n(o, ou->ou_path ? ou->ou_path : "(OU unknown)", 40);
        fputs("<title>", o);
        esc(o, ou->ou_path ? ou->ou_path : "(OU unknown)");
        fputs("</title></text>\n", o);
        double x = bar_x;
        for (int m = 0; m < REPORT_MODES; m++) {
            if (!ou->by_mode[m])
                continue;
            double w = bar_w * (double)ou->by_mode[m] / (double)max;
            out(o,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"20\" fill=\"%s\" "
                "stroke=\"#ffffff\" stroke-width=\"1\"><title>",
                x, y + 5, w, report_mode_color((enum report_mode)m));
            esc(o, ou->ou_path ? ou->ou_path : "(OU unknown)");
            out(o, ": %s, %ld of %ld clusters</title></rect>\n",
                report_mode_label((enum report_mode)m), ou->by_mode[m], ou->clusters);
            x += w;
        }
        out(o, "<text x=\"%.1f\" y=\"%.1f\">%ld", x + 6, y + 19, ou->clusters);
        if (ou->noncompliant)
            out(o, " (%ld non-compliant)", ou->noncompliant);
        fputs("</text>\n", o);
    }
    fputs("</svg>\n", o);
    if (r->n_ous > rows)
        out(o,
            "<figcaption>The %zu largest OUs by path order; %zu more are in the table."
            "</figcaption>\n",
            rows, r->n_ous - rows);
    fputs("</figure>\n", o);
}

static void mode_head(FILE *o)
{
    for (int m = 0; m < REPORT_MODES; m++) {
        out(o, "<th scope=\"col\" class=\"n\">");
        swatch(o, (enum report_mode)m);
        mode_label(o, (enum report_mode)m);
        fputs("</th>", o);
    }
    fputs("<th scope=\"col\" class=\"n\">Non-compliant</th><th scope=\"col\" class=\"n\">Not "
          "verified</th></tr></thead>\n<tbody>\n",
          o);
}

static void mode_cells(FILE *o, const struct report_fleet_row *row)
{
    for (int m = 0; m < REPORT_MODES; m++)
        out(o, "<td class=\"n\">%ld</td>", row->by_mode[m]);
    out(o, "<td class=\"n%s\">%ld</td><td class=\"n\">%ld</td></tr>\n",
        row->noncompliant ? " bad" : "", row->noncompliant, row->unverified);
}

static void fleet_section(FILE *o, const struct report *r)
{
    fputs(
        "<section aria-labelledby=\"h-fleet\">\n<h2 id=\"h-fleet\">Clusters by egress mode</h2>\n",
        o);
    out(o, "<p>%ld verified clusters at the end of the week.</p>\n", r->fleet_clusters);
    if (r->fleet_unverified) {
        char text[192];
        report_unverified_text(r->fleet_unverified, text, sizeof text);
        fputs("<p class=\"alert\"><strong>", o);
        esc(o, text);
        fputs("</strong></p>\n", o);
    }
    fputs("<div class=\"chips\">\n", o);
    for (int m = 0; m < REPORT_MODES; m++) {
        fputs("<div class=\"chip\">", o);
        swatch(o, (enum report_mode)m);
        out(o, "%s<br /><b>%ld</b>", report_mode_label((enum report_mode)m), r->fleet_by_mode[m]);
        if (r->fleet_clusters)
            out(o, " <span class=\"muted\">%.1f%%</span>",
                100.0 * (double)r->fleet_by_mode[m] / (double)r->fleet_clusters);
        fputs("</div>\n", o);
    }
    fputs("</div>\n", o);
    if (!r->n_ous) {
        fputs("<p class=\"empty\">No cluster at the end of the week.</p>\n</section>\n", o);
        return;
    }
    fputs("<h3>By OU</h3>\n", o);
    legend(o);
    ou_chart(o, r);
    fputs("<table>\n<thead><tr><th scope=\"col\">OU</th><th scope=\"col\" "
          "class=\"n\">Accounts</th><th scope=\"col\" class=\"n\">Clusters</th>",
          o);
    mode_head(o);
    for (size_t i = 0; i < r->n_ous; i++) {
        fputs("<tr><th scope=\"row\">", o);
        esc_or_dash(o, r->ous[i].ou_path);
        out(o, "</th><td class=\"n\">%ld</td><td class=\"n\">%ld</td>", r->ous[i].accounts,
            r->ous[i].clusters);
        mode_cells(o, &r->ous[i]);
    }
    fputs("</tbody>\n</table>\n<h3>By account</h3>\n<table>\n<thead><tr><th "
          "scope=\"col\">OU</th><th scope=\"col\">Account</th><th scope=\"col\" "
          "class=\"n\">Clusters</th>",
          o);
    mode_head(o);
    size_t shown = r->n_accounts < REPORT_ACCOUNTS_MAX ? r->n_accounts : REPORT_ACCOUNTS_MAX;
    for (size_t i = 0; i < shown; i++) {
        const struct report_fleet_row *a = &r->accounts[i];
        fputs("<tr><td>", o);
        esc_or_dash(o, a->ou_path);
        fputs("</td><th scope=\"row\">", o);
        account_html(o, a->account_name, a->account_id);
        out(o, "</th><td class=\"n\">%ld</td>", a->clusters);
        mode_cells(o, a);
    }
    fputs("</tbody>\n</table>\n", o);
    if (r->n_accounts > shown)
        out(o, "<p class=\"muted\">%zu more accounts are in the JSON report.</p>\n",
            r->n_accounts - shown);
    fputs("</section>\n", o);
}

/* ---- findings ---- */

static void finding_detail(FILE *o, const struct report_finding *f)
{
    if (f->why && *f->why)
        esc(o, f->why);
    else
        esc_or_dash(o, report_reason_label(f->reason));
}

/* "2026-01-25 10:00" (the column header says UTC). */
static void table_stamp(const char *stamp, char *out_text, size_t cap)
{
    report_stamp_text(stamp, out_text, cap);
    size_t n = strlen(out_text);
    if (n > 4 && strcmp(out_text + n - 4, " UTC") == 0)
        out_text[n - 4] = '\0';
}

static void findings_table(FILE *o, const struct report *r, int resolved)
{
    long total = resolved ? r->n_resolved : r->n_new;
    out(o, "<h3>%s this week (%ld)</h3>\n", resolved ? "Resolved" : "New", total);
    if (!total) {
        out(o, "<p class=\"muted\">%s</p>\n",
            resolved ? "No finding was resolved." : "No new finding.");
        return;
    }
    out(o,
        "<table>\n<thead><tr><th scope=\"col\">Severity</th><th scope=\"col\">Kind</th>"
        "<th scope=\"col\">Account</th><th scope=\"col\">Region</th><th "
        "scope=\"col\">Cluster</th><th scope=\"col\">Detail</th><th scope=\"col\">First "
        "seen (UTC)</th>%s</tr></thead>\n<tbody>\n",
        resolved ? "<th scope=\"col\">Resolved (UTC)</th><th scope=\"col\">How</th>" : "");
    long shown = 0;
    for (size_t i = 0; i < r->n_findings && shown < REPORT_LIST_MAX; i++) {
        const struct report_finding *f = &r->findings[i];
        if (resolved ? !f->resolved_this_week : !f->new_this_week)
            continue;
        shown++;
        char first[48], res[48];
        table_stamp(f->first_seen, first, sizeof first);
        fputs("<tr><td>", o);
        severity_badge(o, f->severity);
        fputs("</td><td>", o);
        esc(o, report_kind_label(f->kind));
        fputs("</td><td>", o);
        account_html(o, f->account_name, f->account_id);
        fputs("</td><td class=\"nw\">", o);
        esc_or_dash(o, f->region);
        fputs("</td><td>", o);
        if (f->cluster_name) {
            fputs("<code>", o);
            esc(o, f->cluster_name);
            fputs("</code>", o);
        } else {
            fputs("\u2014", o);
        }
        fputs("</td><td>", o);
        finding_detail(o, f);
        fputs("</td><td class=\"t\">", o);
        esc(o, first);
        if (resolved) {
            table_stamp(f->resolved_at, res, sizeof res);
            fputs("</td><td class=\"t\">", o);
            esc_or_dash(o, res);
            fputs("</td><td>", o);
            esc(o, report_resolution_label(f->resolved_reason));
        }
        fputs("</td></tr>\n", o);
    }
    fputs("</tbody>\n</table>\n", o);
    if (total > shown)
        out(o, "<p class=\"muted\">%ld more: see the CSV or JSON report.</p>\n", total - shown);
}

static void findings_section(FILE *o, const struct report *r)
{
    fputs("<section aria-labelledby=\"h-findings\">\n<h2 id=\"h-findings\">Findings this "
          "week</h2>\n",
          o);
    out(o, "<p><strong>%ld new, %ld resolved", r->n_new, r->n_resolved);
    if (r->last.scan_id) {
        out(o, "; %ld open at the end of the week</strong>", r->n_open);
        const char *sep = " (";
        for (int s = 0; s < REPORT_SEVERITIES; s++)
            if (r->open_by_severity[s]) {
                out(o, "%s%ld %s", sep, r->open_by_severity[s],
                    report_severity_name((enum report_severity)s));
                sep = ", ";
            }
        fputs(strcmp(sep, ", ") == 0 ? ")." : ".", o);
        if (r->n_carried_over) {
            char text[320];
            report_carried_text(r->n_carried_over, text, sizeof text);
            fputc(' ', o);
            esc(o, text);
        }
    } else {
        fputs("</strong>.", o);
    }
    if (r->n_resolved_left) {
        char text[160];
        report_left_text(r->n_resolved_left, text, sizeof text);
        fputc(' ', o);
        esc(o, text);
    }
    fputs("</p>\n", o);
    findings_table(o, r, 0);
    findings_table(o, r, 1);
    fputs("</section>\n", o);
}

static void gaps_section(FILE *o, const struct report *r)
{
    fputs("<section aria-labelledby=\"h-gaps\">\n<h2 id=\"h-gaps\">SCP enforcement gaps</h2>\n"
          "<p>Accounts where a new non-compliant cluster could still be created: the SCPs do not "
          "enforce the declared intent (unenforced intent), or they let a non-compliant mode "
          "through (SCP gap).</p>\n",
          o);
    if (!r->n_gaps) {
        fputs("<p class=\"empty\"><strong>No gap</strong><br />No open finding shows an "
              "account where the SCPs let a non-compliant cluster be created.</p>\n</section>\n",
              o);
        return;
    }
    out(o, "<p><strong>%zu account%s in %ld OU%s.</strong></p>\n", r->n_gaps,
        r->n_gaps == 1 ? "" : "s", r->gap_ous, r->gap_ous == 1 ? "" : "s");
    fputs("<table>\n<thead><tr><th scope=\"col\">OU</th><th scope=\"col\">Account</th><th "
          "scope=\"col\">Regions</th><th scope=\"col\">Rule</th><th scope=\"col\">Why a "
          "non-compliant cluster can still be created</th><th scope=\"col\" "
          "class=\"n\">Unenforced intent</th><th scope=\"col\" class=\"n\">Clusters through "
          "the gap</th></tr></thead>\n<tbody>\n",
          o);
    for (size_t i = 0; i < r->n_gaps; i++) {
        const struct report_gap *g = &r->gaps[i];
        fputs("<tr><td>", o);
        esc_or_dash(o, g->ou_path);
        fputs("</td><th scope=\"row\">", o);
        account_html(o, g->account_name, g->account_id);
        fputs("</th><td>", o);
        esc_or_dash(o, g->regions);
        fputs("</td><td><code>", o);
        esc_or_dash(o, g->rules);
        fputs("</code></td><td>", o);
        char reasons[512];
        report_reasons_text(g->reasons, reasons, sizeof reasons);
        esc_or_dash(o, reasons);
        if (g->why) {
            fputs("<br /><span class=\"muted\">still allowed:</span> ", o);
            esc(o, g->why);
        }
        out(o, "</td><td class=\"n\">%ld</td><td class=\"n%s\">%ld</td></tr>\n", g->unenforced,
            g->gap_clusters ? " bad" : "", g->gap_clusters);
    }
    fputs("</tbody>\n</table>\n</section>\n", o);
}

static void target_rows(FILE *o, const struct report_target *t, size_t n, int failed)
{
    for (size_t i = 0; i < n; i++) {
        char tried[48], ok[48];
        table_stamp(t[i].scanned_at, tried, sizeof tried);
        table_stamp(t[i].last_ok_at, ok, sizeof ok);
        fputs("<tr><th scope=\"row\">", o);
        account_html(o, t[i].account_name, t[i].account_id);
        fputs("</th><td>", o);
        if (t[i].region && strcmp(t[i].region, "*") == 0)
            fputs("* (whole account)", o);
        else
            esc_or_dash(o, t[i].region);
        fputs("</td><td>", o);
        esc(o, report_status_label(t[i].status));
        fputs("</td><td class=\"t\">", o);
        esc_or_dash(o, tried);
        fputs("</td><td class=\"t\">", o);
        if (!t[i].last_ok_at) {
            fputs("never", o);
        } else {
            fputs(failed ? "not verified since " : "", o);
            esc(o, ok);
        }
        if (failed) {
            fputs("</td><td>", o);
            if (t[i].error_code) {
                fputs("<code>", o);
                esc(o, t[i].error_code);
                fputs("</code> ", o);
            }
            esc_or_dash(o, t[i].error_message);
        }
        fputs("</td></tr>\n", o);
    }
}

static void coverage_section(FILE *o, const struct report *r)
{
    char stamp[48];
    fputs("<section aria-labelledby=\"h-coverage\">\n<h2 id=\"h-coverage\">Coverage</h2>\n<ul>\n",
          o);
    out(o,
        "<li>Scans started this week: %ld (%ld succeeded, %ld partial, %ld failed, %ld aborted, "
        "%ld running)</li>\n",
        r->scans.total, r->scans.succeeded, r->scans.partial, r->scans.failed, r->scans.aborted,
        r->scans.running);
    if (r->last.scan_id) {
        report_stamp_text(r->last.started_at, stamp, sizeof stamp);
        out(o,
            "<li>Last scan of the week: #%lld, %s, %s %s scan; the fleet after it: %ld of %ld "
            "targets scanned ok</li>\n",
            r->last.scan_id, stamp, r->last.status, r->last.scope, r->last.counts.targets_ok,
            r->last.counts.targets_total);
    }
    fputs("<li>Days without a finalized scan: ", o);
    if (!r->n_days_without_scan)
        fputs("none", o);
    for (size_t i = 0; i < r->n_days_without_scan; i++) {
        char day[32];
        report_date_short(r->days_without_scan[i], day, sizeof day);
        out(o, "%s<strong>%s</strong>", i ? ", " : "", day);
    }
    fputs("</li>\n</ul>\n", o);
    if (r->n_week_scans) {
        fputs("<table>\n<caption class=\"muted\">Scans this week</caption>\n<thead><tr><th "
              "scope=\"col\">Scan</th><th scope=\"col\">Started (UTC)</th><th "
              "scope=\"col\">Status</th><th scope=\"col\">Scope</th><th scope=\"col\">SCPs</th>"
              "<th scope=\"col\" class=\"n\">Targets scanned ok</th></tr></thead>\n<tbody>\n",
              o);
        for (size_t i = 0; i < r->n_week_scans; i++) {
            const struct report_scan_row *w = &r->week_scans[i];
            char started[48];
            table_stamp(w->started_at, started, sizeof started);
            out(o, "<tr><th scope=\"row\">#%lld</th><td class=\"t\">", w->scan_id);
            esc_or_dash(o, started);
            fputs("</td><td>", o);
            esc_or_dash(o, w->status);
            fputs("</td><td>", o);
            esc(o, report_scope_label(w->scope));
            fputs("</td><td>", o);
            esc(o, report_scps_state_label(w->scps_state));
            out(o, "</td><td class=\"n\">%ld of %ld</td></tr>\n", w->targets_ok, w->targets_total);
        }
        fputs("</tbody>\n</table>\n", o);
    }
    if (r->last.scan_id && !r->n_unscanned)
        fputs("<p>Every target of the fleet was scanned ok by the latest scan that tried "
              "it.</p>\n",
              o);
    if (r->n_unscanned) {
        fputs("<table>\n<caption class=\"muted\">Targets of the fleet not scanned (the latest "
              "word per target at the week's last scan)</caption>\n<thead><tr><th "
              "scope=\"col\">Account</th><th scope=\"col\">Region</th><th "
              "scope=\"col\">Status</th><th scope=\"col\">Tried (UTC)</th><th scope=\"col\">Last "
              "scanned ok (UTC)</th><th scope=\"col\">Error</th></tr></thead>\n<tbody>\n",
              o);
        target_rows(o, r->unscanned, r->n_unscanned, 1);
        fputs("</tbody>\n</table>\n", o);
    }
    if (r->n_suspended) {
        out(o,
            "<table>\n<caption class=\"muted\">Suspended accounts (%zu): not a failure; AWS "
            "suspended them and their clusters are not counted</caption>\n<thead><tr><th "
            "scope=\"col\">Account</th><th scope=\"col\">Region</th><th "
            "scope=\"col\">Status</th><th scope=\"col\">Tried (UTC)</th><th scope=\"col\">Last "
            "scanned ok (UTC)</th></tr></thead>\n<tbody>\n",
            r->n_suspended);
        target_rows(o, r->suspended, r->n_suspended, 0);
        fputs("</tbody>\n</table>\n", o);
    }
    fputs("</section>\n", o);
}

static void oldest_section(FILE *o, const struct report *r)
{
    fputs("<section aria-labelledby=\"h-oldest\">\n<h2 id=\"h-oldest\">Oldest open "
          "findings</h2>\n",
          o);
    int n = 0;
    for (size_t i = 0; i < r->n_findings && n < REPORT_OLDEST_MAX; i++) {
        const struct report_finding *f = &r->findings[i];
        if (!f->open_at_end)
            continue;
        n++;
        char stamp[48];
        report_stamp_text(f->first_seen, stamp, sizeof stamp);
        long age = report_age_days(r, f->first_seen);
        out(o, "<article class=\"finding\">\n<h3>%d. ", n);
        severity_badge(o, f->severity);
        fputs(" ", o);
        esc(o, report_kind_label(f->kind));
        if (f->cluster_name) {
            fputs(" \u00b7 <code>", o);
            esc(o, f->cluster_name);
            fputs("</code>", o);
        }
        fputs("</h3>\n<dl>\n<dt>Account</dt><dd>", o);
        account_html(o, f->account_name, f->account_id);
        fputs(", region ", o);
        esc_or_dash(o, f->region);
        if (f->ou_path) {
            fputs(" \u00b7 OU ", o);
            esc(o, f->ou_path);
        }
        out(o, "</dd>\n<dt>Open for</dt><dd><strong>%ld day%s</strong> (first seen %s)</dd>\n",
            age < 0 ? 0 : age, age == 1 ? "" : "s", stamp);
        if (f->carried_over) {
            report_stamp_text(f->last_seen, stamp, sizeof stamp);
            fputs("<dt>Carried over</dt><dd>not judged again by the week's last scan (last raised "
                  "by the scan of ",
                  o);
            esc(o, stamp);
            fputs(")</dd>\n", o);
        }
        if (f->cluster_arn) {
            fputs("<dt>Mode</dt><dd>observed <code>", o);
            esc(o, f->observed_mode ? f->observed_mode : "not reported (judged as AWS_MANAGED)");
            fputs("</code>", o);
            if (f->allowed_modes) {
                fputs(", allowed ", o);
                esc(o, f->allowed_modes);
            }
            fputs("</dd>\n", o);
        }
        if (f->reason) {
            fputs("<dt>Reason</dt><dd>", o);
            esc(o, report_reason_label(f->reason));
            fputs("</dd>\n", o);
        }
        if (f->why) {
            fputs("<dt>Detail</dt><dd>", o);
            esc(o, f->why);
            fputs("</dd>\n", o);
        }
        fputs("<dt>Source</dt><dd><code>", o);
        esc_or_dash(o, f->source);
        fputs("</code></dd>\n</dl>\n", o);
        if (f->remediation) {
            fputs("<div class=\"k\">Remediation</div>\n<pre><code>", o);
            esc(o, f->remediation);
            fputs("</code></pre>\n", o);
        }
        if (f->warning) {
            fputs("<p class=\"warn\" role=\"note\"><strong>\u26a0 Irreversible.</strong> ", o);
            esc(o, f->warning);
            fputs("</p>\n", o);
        }
        fputs("</article>\n", o);
    }
    if (!n)
        fputs("<p class=\"empty\">No open finding at the end of the week.</p>\n", o);
    fputs("</section>\n", o);
}

int report_render_html(const struct report *r, FILE *o, struct err *err)
{
    char msg[512];
    enum report_state state = report_state_of(r);
    page_start(o, r);
    if (state != REPORT_STATE_OK) {
        fputs("<section class=\"empty\" aria-label=\"No data\"><strong>", o);
        esc(o, state == REPORT_STATE_NO_SCAN_WEEK ? "No scan this week" : "No scan recorded");
        fputs("</strong><br />", o);
        esc(o, report_state_message(r, msg, sizeof msg));
        fputs("</section>\n", o);
    } else {
        headline(o, r);
    }
    if (state == REPORT_STATE_OK || state == REPORT_STATE_NO_SCAN_WEEK)
        trend_section(o, r);
    if (state == REPORT_STATE_OK) {
        fleet_section(o, r);
        findings_section(o, r);
        gaps_section(o, r);
        coverage_section(o, r);
        oldest_section(o, r);
    } else if (state == REPORT_STATE_NO_SCAN_WEEK) {
        findings_section(o, r);
        coverage_section(o, r);
    }
    page_end(o);
    if (fflush(o) != 0 || ferror(o))
        return err_set(err, ERR_IO, "writing the HTML report failed");
    return 0;
}
