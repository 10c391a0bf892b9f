/* test_report.c - the weekly report without a database: ISO weeks and UTC days (year boundaries,
 * 53-week years), rates and the change, the figures report_finish derives (gaps, OU rows,
 * enforcement gaps), and the four renderers on a hand-built report: escaping of hostile strings
 * (HTML, Markdown pipes, RFC 4180), SVG charts whose line breaks at days without a scan, and the
 * text of an empty database and of a week without scans. */
#define _GNU_SOURCE /* open_memstream is POSIX 2008; memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/report_model.h"
#include "report/report.h"

/* ---- calendar ---- */

static long day_of(const char *s)
{
    long d;
    assert_int_equal(report_day_parse(s, &d), 0);
    return d;
}

static void test_days(void **state)
{
    (void)state;
    char out[REPORT_DATE_LEN];
    assert_int_equal(day_of("1970-01-01"), 0);
    assert_int_equal(day_of("1969-12-31"), -1);
    assert_int_equal(report_weekday(0), 3); /* Thursday */
    report_day_format(day_of("2024-02-29"), out);
    assert_string_equal(out, "2024-02-29");
    long d;
    assert_int_equal(report_day_parse("2026-02-29", &d), -1);
    assert_int_equal(report_day_parse("2026-13-01", &d), -1);
    assert_int_equal(report_day_parse("2026-01-19x", &d), -1);
    assert_int_equal(report_day_parse("2026-1-19", &d), -1);
    assert_int_equal(report_day_of_time(86399), 0);
    assert_int_equal(report_day_of_time(86400), 1);
    assert_int_equal(report_day_of_time(-1), -1);
}

static void test_iso_weeks(void **state)
{
    (void)state;
    struct report_week w;
    char text[REPORT_WEEK_LEN], day[REPORT_DATE_LEN];
    assert_int_equal(report_week_parse("2026-W04", &w), 0);
    report_day_format(w.monday, day);
    assert_string_equal(day, "2026-01-19");
    /* the week of 2025-12-29 .. 2026-01-04 is 2026-W01 */
    report_week_of_day(day_of("2025-12-29"), &w);
    report_week_format(&w, text);
    assert_string_equal(text, "2026-W01");
    report_week_of_day(day_of("2026-01-04"), &w);
    assert_int_equal(w.week, 1);
    report_week_of_day(day_of("2025-12-28"), &w);
    report_week_format(&w, text);
    assert_string_equal(text, "2025-W52");
    /* 2021-01-03 belongs to 2020-W53; 2020 has 53 weeks, 2021 does not; 2026 does */
    report_week_of_day(day_of("2021-01-03"), &w);
    report_week_format(&w, text);
    assert_string_equal(text, "2020-W53");
    assert_int_equal(report_week_parse("2020-W53", &w), 0);
    assert_int_equal(report_week_parse("2021-W53", &w), -1);
    assert_int_equal(report_week_parse("2026-W53", &w), 0);
    report_day_format(w.monday, day);
    assert_string_equal(day, "2026-12-28");
    assert_int_equal(report_week_parse("2026-w48", &w), 0);
    assert_int_equal(w.week, 48);
    assert_int_equal(report_week_parse("2026-W00", &w), -1);
    assert_int_equal(report_week_parse("2026-W4", &w), -1);
    assert_int_equal(report_week_parse("2026W04", &w), -1);
    assert_int_equal(report_week_parse(NULL, &w), -1);
    /* the week before 2026-W01 */
    assert_int_equal(report_week_parse("2026-W01", &w), 0);
    struct report_week prev;
    report_week_add(&w, -1, &prev);
    report_week_format(&prev, text);
    assert_string_equal(text, "2025-W52");
}

static void test_rates(void **state)
{
    (void)state;
    struct report_counts c = {
        .evaluated = 1, .compliant = 5, .noncompliant = 1, .exempt = 3, .unknown = 2};
    double rate;
    char t[24];
    assert_int_equal(report_rate(&c, &rate), 1);
    assert_true(rate > 0.8333 && rate < 0.8334); /* exempt and unknown left out */
    report_rate_text(rate, t);
    assert_string_equal(t, "83.3%");
    c.compliant = c.noncompliant = 0;
    assert_int_equal(report_rate(&c, &rate), 0); /* 0 / 0 is unknown, not 0 % */
    c.compliant = 3;
    c.evaluated = 0;
    assert_int_equal(report_rate(&c, &rate), 0);
    report_change_text(11.904, t);
    assert_string_equal(t, "+11.9 pp");
    report_change_text(-3.0, t);
    assert_string_equal(t, "-3.0 pp");
    report_change_text(-0.04, t);
    assert_string_equal(t, "0.0 pp");
}

/* ---- a hand-built report ---- */

#define HOSTILE_NAME "<script>alert(\"x\")</script> & 'co' | *bold* \x01 bad\xff"

static struct report_counts counts(long compliant, long noncompliant)
{
    return (struct report_counts){.evaluated = 1,
                                  .clusters = compliant + noncompliant,
                                  .compliant = compliant,
                                  .noncompliant = noncompliant,
                                  .targets_total = 9,
                                  .targets_ok = 8};
}

static void scan_day(struct report *r, int i, long long id, long compliant, long noncompliant)
{
    r->trend[i].scanned = 1;
    r->trend[i].scan_id = id;
    r->trend[i].counts = counts(compliant, noncompliant);
}

/* Week 2026-W04 made on 2026-01-28; scans on a few days (runs of 1, 2 and 3 days), the last one
 * partial; a hostile account name everywhere. */
static void build(struct report *r)
{
    struct report_week w;
    assert_int_equal(report_week_parse("2026-W04", &w), 0);
    report_init(r, &w, 1769601600); /* 2026-01-28T12:00:00Z */
    r->any_scan = 1;
    r->scans.total = 5;
    r->scans.succeeded = 4;
    r->scans.partial = 1;
    scan_day(r, 0, 1, 4, 2);  /* a lone point */
    scan_day(r, 23, 2, 5, 2); /* previous week: Fri, Sat */
    scan_day(r, 24, 3, 5, 2);
    scan_day(r, 28, 4, 5, 1); /* this week: Mon, Tue, Wed */
    scan_day(r, 29, 5, 6, 1);
    scan_day(r, 30, 6, 6, 0);
    scan_day(r, 33, 7, 5, 1); /* Sat; Thu, Fri, Sun without a scan */
    r->trend[33].counts.evaluated = 1;
    r->trend[33].counts.unverified = 2;
    r->last = (struct report_scan){.scan_id = 7, .counts = counts(5, 1), .scps_known = 1};
    r->last.counts.unverified = 2; /* the clusters of 444444444444's denied role */
    snprintf(r->last.started_at, sizeof r->last.started_at, "2026-01-24T10:00:00Z");
    snprintf(r->last.status, sizeof r->last.status, "partial");
    snprintf(r->last.scope, sizeof r->last.scope, "fleet");
    snprintf(r->last.scps_state, sizeof r->last.scps_state, "read");
    r->prev = (struct report_scan){.scan_id = 3, .counts = counts(5, 2), .scps_known = 1};

    r->n_accounts = 3;
    r->accounts = report_alloc(r, 3 * sizeof *r->accounts);
    r->accounts[0] = (struct report_fleet_row){.ou_path = "Root/Prod",
                                               .account_id = "111111111111",
                                               .account_name = HOSTILE_NAME,
                                               .by_mode = {1, 2, 0, 1, 0}};
    r->accounts[1] = (struct report_fleet_row){
        .ou_path = "Root/Dev", .account_id = "222222222222", .by_mode = {1, 0, 1, 0, 0}};
    r->accounts[2] = (struct report_fleet_row){.ou_path = "Root/Prod",
                                               .account_id = "333333333333",
                                               .account_name = "b",
                                               .by_mode = {0, 1, 0, 0, 1},
                                               .unverified = 2};

    r->n_findings = 5;
    r->findings = report_alloc(r, 5 * sizeof *r->findings);
    r->findings[0] = (struct report_finding){
        .finding_id = 11,
        .kind = "noncompliant_cluster",
        .severity = "high",
        .account_id = "111111111111",
        .account_name = HOSTILE_NAME,
        .ou_path = "Root/Prod",
        .region = "eu-west-1",
        .cluster_arn = "arn:aws:eks:eu-west-1:111111111111:cluster/c|1",
        .cluster_name = "c|1`x`",
        .observed_mode = "AWS_MANAGED",
        .allowed_modes = "CUSTOMER_ROUTED",
        .source = "policy:prod",
        .reason = "scp_gap",
        .why = "omitted mode allowed",
        .remediation = "aws eks update-cluster-config --region eu-west-1 --name 'c|1' "
                       "--resources-vpc-config controlPlaneEgressMode=CUSTOMER_ROUTED",
        .warning = "Switching to CUSTOMER_ROUTED is irreversible: <never> back",
        .first_seen = "2026-01-05T10:00:00Z",
        .open_at_end = 1};
    r->findings[1] = (struct report_finding){.finding_id = 12,
                                             .kind = "unenforced_intent",
                                             .severity = "high",
                                             .account_id = "111111111111",
                                             .ou_path = "Root/Prod",
                                             .region = "*",
                                             .source = "policy:prod",
                                             .reason = "scp_gap",
                                             .why = "omitted: allowed",
                                             .first_seen = "2026-01-12T10:00:00Z",
                                             .last_seen = "2026-01-23T10:00:00Z",
                                             .open_at_end = 1,
                                             .carried_over = 1};
    r->findings[2] = (struct report_finding){.finding_id = 13,
                                             .kind = "unscanned_target",
                                             .severity = "high",
                                             .account_id = "444444444444",
                                             .region = "*",
                                             .source = "coverage",
                                             .why = "assume_role_denied: AccessDenied",
                                             .first_seen = "2026-01-20T10:00:00Z",
                                             .resolved_at = "2026-01-21T10:00:00Z",
                                             .resolved_reason = "not_raised",
                                             .new_this_week = 1,
                                             .resolved_this_week = 1};
    r->findings[3] = (struct report_finding){.finding_id = 14,
                                             .kind = "mode_changed",
                                             .severity = "info",
                                             .account_id = "222222222222",
                                             .region = "us-east-1",
                                             .cluster_arn = "arn:x/d",
                                             .cluster_name = "d|e",
                                             .source = "history",
                                             .why = "a,\"b\"\nc",
                                             .first_seen = "2026-01-24T10:00:00Z",
                                             .open_at_end = 1,
                                             .new_this_week = 1};
    r->findings[4] = (struct report_finding){.finding_id = 15,
                                             .kind = "noncompliant_cluster",
                                             .severity = "high",
                                             .account_id = "555555555555",
                                             .region = "eu-west-1",
                                             .cluster_arn = "arn:x/gone",
                                             .cluster_name = "gone",
                                             .source = "policy:prod",
                                             .first_seen = "2026-01-25T10:00:00Z",
                                             .resolved_at = "2026-01-25T11:00:00Z",
                                             .resolved_reason = "left_organization",
                                             .resolved_this_week = 1,
                                             .left_fleet = 1};
    r->n_unscanned = 1;
    r->unscanned = report_alloc(r, sizeof *r->unscanned);
    r->unscanned[0] = (struct report_target){.account_id = "444444444444",
                                             .account_name = HOSTILE_NAME,
                                             .region = "*",
                                             .status = "assume_role_denied",
                                             .error_code = "AccessDenied",
                                             .error_message = "not <authorized>",
                                             .scanned_at = "2026-01-24T10:05:00Z",
                                             .last_ok_at = "2026-01-20T10:05:00Z",
                                             .scan_id = 7};
    r->n_suspended = 1;
    r->suspended = report_alloc(r, sizeof *r->suspended);
    r->suspended[0] = (struct report_target){.account_id = "666666666666",
                                             .region = "*",
                                             .status = "suspended",
                                             .scanned_at = "2026-01-24T10:01:00Z",
                                             .scan_id = 7};
    r->n_week_scans = 2;
    r->week_scans = report_alloc(r, 2 * sizeof *r->week_scans);
    r->week_scans[0] = (struct report_scan_row){.scan_id = 6,
                                                .started_at = "2026-01-23T10:00:00Z",
                                                .status = "succeeded",
                                                .scope = "targeted",
                                                .scps_state = "not_read",
                                                .targets_total = 2,
                                                .targets_ok = 2};
    r->week_scans[1] = (struct report_scan_row){.scan_id = 7,
                                                .started_at = "2026-01-24T10:00:00Z",
                                                .status = "partial",
                                                .scope = "fleet",
                                                .scps_state = "failed",
                                                .targets_total = 9,
                                                .targets_ok = 8,
                                                .targets_failed = 1};
    assert_int_equal(report_finish(r), 0);
}

static char *render(const struct report *r, enum report_format f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    struct err e;
    err_clear(&e);
    assert_int_equal(report_render(r, f, out, &e), 0);
    fclose(out);
    return text;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_finish(void **state)
{
    (void)state;
    struct report r;
    build(&r);
    assert_true(r.has_change);
    assert_true(r.change_pp > 11.90 && r.change_pp < 11.91); /* 5/6 - 5/7 */
    /* Thu 22, Fri 23 and Sun 25 have no scan; the report was made on Wed 28: none is future */
    assert_int_equal(r.n_days_without_scan, 3);
    char d[REPORT_DATE_LEN];
    report_day_format(r.days_without_scan[0], d);
    assert_string_equal(d, "2026-01-22");
    assert_true(r.trend[30].has_rate);
    assert_false(r.trend[31].has_rate);
    /* OU rows from the accounts (sorted by OU path), non-compliant from the open findings */
    assert_int_equal(r.n_ous, 2);
    assert_string_equal(r.ous[0].ou_path, "Root/Dev");
    assert_string_equal(r.ous[1].ou_path, "Root/Prod");
    assert_int_equal(r.ous[1].accounts, 2);
    assert_int_equal(r.ous[1].clusters, 6);
    assert_int_equal(r.ous[1].noncompliant, 1);
    assert_int_equal(r.fleet_clusters, 8); /* verified only: the 2 unverified are apart */
    assert_int_equal(r.fleet_unverified, 2);
    assert_int_equal(r.ous[1].unverified, 2);
    assert_int_equal(r.ous[0].unverified, 0);
    assert_int_equal(r.fleet_by_mode[REPORT_MODE_CUSTOMER_ROUTED], 3);
    assert_int_equal(r.n_open, 3);
    assert_int_equal(r.n_carried_over, 1);
    assert_int_equal(r.n_new, 2);
    assert_int_equal(r.n_resolved, 2);
    assert_int_equal(r.n_resolved_left, 1);
    assert_int_equal(r.open_by_severity[REPORT_SEV_HIGH], 2);
    /* one enforcement gap row for the account, both findings counted */
    assert_int_equal(r.n_gaps, 1);
    assert_int_equal(r.gaps[0].unenforced, 1);
    assert_int_equal(r.gaps[0].gap_clusters, 1);
    assert_string_equal(r.gaps[0].regions, "eu-west-1, *");
    assert_string_equal(r.gaps[0].why, "omitted mode allowed; omitted: allowed");
    assert_int_equal(r.trend_weeks[4].days_scanned, 4);
    assert_int_equal(r.trend_weeks[3].days_scanned, 2);
    assert_int_equal(r.trend_weeks[2].last_day, -1);
    report_cleanup(&r);
}

static void test_html(void **state)
{
    (void)state;
    struct report r;
    build(&r);
    char *html = render(&r, REPORT_HTML);
    /* escaped, never markup from the database */
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                                 "&#39;co&#39;"));
    assert_non_null(strstr(html, "not &lt;authorized&gt;"));
    assert_null(strstr(html, "\x01"));
    assert_null(strstr(html, "\xff"));
    assert_non_null(strstr(html, "&#65533; bad&#65533;"));
    /* no external anything */
    assert_null(strstr(html, "http"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, " href="));
    /* two charts; the line breaks at days without a rate: runs of 2 and 3 days are paths, the
     * lone first day only a point */
    assert_int_equal(count_of(html, "<svg"), 2);
    assert_int_equal(count_of(html, "<path fill=\"none\""), 2);
    assert_int_equal(count_of(html, "<circle"), 7);
    assert_non_null(strstr(html, "<title>Thu 22 Jan: no scan</title>"));
    assert_null(strstr(html, "Thu 29 Jan: no scan")); /* not yet: no marker */
    /* headline with the change as text, not colour alone */
    assert_non_null(strstr(html, "83.3%"));
    assert_non_null(strstr(html, "up +11.9 pp"));
    assert_non_null(strstr(html, "\u25b2"));
    /* remediation in code, the warning set apart, accessible tables */
    assert_non_null(strstr(html, "<pre><code>aws eks update-cluster-config"));
    assert_non_null(strstr(html, "class=\"warn\""));
    assert_non_null(strstr(html, "irreversible: &lt;never&gt; back"));
    assert_non_null(strstr(html, "<th scope=\"col\">"));
    assert_non_null(strstr(html, "role=\"img\""));
    assert_non_null(strstr(html, "@media print"));
    assert_non_null(strstr(html, "Partial coverage"));
    /* the fleet: unverified clusters apart, carried-over findings, void fixes, coverage */
    assert_int_equal(count_of(html, "2 clusters not verified (their account or region could not "
                                    "be scanned): not in these numbers."),
                     2); /* headline and clusters by mode */
    assert_non_null(strstr(html, "1 of them carried over: not raised again by the week&#39;s last "
                                 "scan"));
    assert_non_null(strstr(html, "<dt>Carried over</dt>"));
    assert_non_null(strstr(html, "1 of the resolved findings was not fixed: its target left the "
                                 "fleet."));
    assert_non_null(strstr(html, "<td>not fixed: the account left the organization</td>"));
    assert_non_null(strstr(html, "<td>fixed (no longer raised)</td>"));
    assert_non_null(strstr(html, "not verified since 2026-01-20 10:05"));
    assert_non_null(strstr(html, "Suspended accounts (1)"));
    assert_non_null(strstr(html, "<td>targeted (--accounts or --ou)</td><td>not read (by "
                                 "design)</td>"));
    assert_non_null(strstr(html, "<td>fleet</td><td>could not be read</td>"));
    free(html);
    report_cleanup(&r);
}

static void test_markdown(void **state)
{
    (void)state;
    struct report r;
    build(&r);
    char *md = render(&r, REPORT_MD);
    /* pipes in cells are escaped, so are Markdown specials and raw HTML */
    assert_non_null(strstr(md, "\\<script>alert(\"x\")\\</script> \\& 'co' \\| \\*bold\\*"));
    for (const char *q = md; (q = strstr(q, "<script")) != NULL; q++)
        assert_true(q > md && q[-1] == '\\'); /* only ever escaped */
    /* a code span with a backtick inside gets a longer fence; in a table its pipe is escaped */
    assert_non_null(strstr(md, "``c|1`x` ``"));
    assert_non_null(strstr(md, "| `d\\|e` |"));
    /* every table row has the same number of unescaped pipes as its header */
    const char *p = strstr(md, "| Severity | Kind |");
    assert_non_null(p);
    size_t header_pipes = 0;
    for (const char *q = p; *q != '\n'; q++)
        header_pipes += *q == '|' && (q == p || q[-1] != '\\');
    const char *row = strchr(strchr(p, '\n') + 1, '\n') + 1;
    size_t row_pipes = 0;
    for (const char *q = row; *q != '\n'; q++)
        row_pipes += *q == '|' && q[-1] != '\\';
    assert_int_equal(row_pipes, header_pipes);
    /* the why with a newline stays on one line */
    assert_non_null(strstr(md, "a,\"b\" c"));
    assert_non_null(strstr(md, "```sh\naws eks update-cluster-config"));
    assert_non_null(strstr(md, "**Irreversible:**"));
    assert_non_null(strstr(md, "83.3%"));
    assert_non_null(strstr(md, "+11.9 pp"));
    assert_non_null(strstr(md, "Thu 22 Jan, Fri 23 Jan, Sun 25 Jan"));
    assert_int_equal(count_of(md, "**2 clusters not verified (their account or region could not be "
                                  "scanned): not in these numbers.**"),
                     2);
    assert_non_null(strstr(md, "1 of them carried over: not raised again by the week's last scan"));
    assert_non_null(strstr(md, "- Carried over: not judged again by the week's last scan"));
    assert_non_null(strstr(md, "1 of the resolved findings was not fixed: its target left the "
                               "fleet."));
    assert_non_null(strstr(md, "| not fixed: the account left the organization |"));
    assert_non_null(strstr(md, "| not verified since 2026-01-20 10:05 |"));
    assert_non_null(strstr(md, "### Suspended accounts (1)"));
    assert_non_null(strstr(md, "| #6 | 2026-01-23 10:00 | succeeded | targeted (--accounts or "
                               "--ou) | not read (by design) | 2 of 2 |"));
    /* the by-account table has its "Not verified" column */
    assert_non_null(strstr(md, "| 0 | 1 | 0 | 0 | 1 | 0 | 2 |"));
    free(md);
    report_cleanup(&r);
}

static void test_csv(void **state)
{
    (void)state;
    struct report r;
    build(&r);
    char *csv = render(&r, REPORT_CSV);
    assert_true(strncmp(csv, "finding_id,status_at_week_end,new_this_week,", 44) == 0);
    assert_int_equal(count_of(csv, "\r\n"), 1 + 5); /* header, 5 rows (a LF inside a field) */
    assert_non_null(strstr(csv, ",resolved_at,resolved_reason,carried_over,open_days,"));
    assert_non_null(strstr(csv, ",2026-01-25T11:00:00Z,left_organization,false,,"));
    assert_non_null(strstr(csv, "\r\n12,open,false,false,unenforced_intent,"));
    assert_non_null(strstr(csv, ",2026-01-12T10:00:00Z,,,true,"));
    assert_non_null(strstr(csv, "\"a,\"\"b\"\"\nc\""));
    assert_non_null(strstr(csv, "\r\n13,resolved,true,true,unscanned_target,"));
    assert_non_null(strstr(csv, "\r\n14,open,true,false,mode_changed,"));
    assert_non_null(strstr(csv, "\"<script>alert(\"\"x\"\")</script> & 'co' | *bold* "));
    free(csv);
    report_cleanup(&r);
}

static void test_json(void **state)
{
    (void)state;
    struct report r;
    build(&r);
    r.trend[33].counts.evaluated = 0; /* a scan whose compliance is unknown */
    assert_int_equal(report_finish(&r), 0);
    char *text = render(&r, REPORT_JSON);
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    if (!doc)
        fail_msg("not JSON: %s", je.text);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "ok");
    assert_string_equal(json_string_value(json_object_get(doc, "change_text")), "+11.9 pp");
    json_t *trend = json_object_get(doc, "trend");
    assert_int_equal(json_array_size(trend), 35);
    json_t *sat = json_array_get(trend, 33);
    assert_true(json_is_true(json_object_get(sat, "scanned")));
    assert_true(json_is_null(json_object_get(sat, "rate")));
    assert_true(json_is_null(json_object_get(sat, "compliant")));
    json_t *thu = json_array_get(trend, 31);
    assert_false(json_is_true(json_object_get(thu, "scanned")));
    assert_true(json_is_null(json_object_get(thu, "clusters"))); /* a gap, not a zero */
    json_t *acct = json_array_get(json_object_get(json_object_get(doc, "fleet"), "accounts"), 1);
    /* bad UTF-8 replaced, the rest kept verbatim */
    assert_non_null(strstr(json_string_value(json_object_get(acct, "account_name")),
                           "<script>alert(\"x\")</script>"));
    assert_non_null(
        strstr(json_string_value(json_object_get(acct, "account_name")), "bad\xef\xbf\xbd"));
    json_t *oldest = json_object_get(json_object_get(doc, "findings"), "oldest_open");
    assert_int_equal(json_array_size(oldest), 3);
    assert_int_equal(json_integer_value(json_array_get(oldest, 0)), 11);
    json_t *fleet = json_object_get(doc, "fleet");
    assert_int_equal(json_integer_value(json_object_get(fleet, "clusters")), 8);
    assert_int_equal(json_integer_value(json_object_get(fleet, "unverified")), 2);
    json_t *compliance = json_object_get(json_object_get(doc, "last_scan"), "compliance");
    assert_int_equal(json_integer_value(json_object_get(compliance, "unverified")), 2);
    assert_int_equal(json_integer_value(json_object_get(compliance, "unknown")), 0);
    assert_true(json_is_null(json_object_get(sat, "unverified"))); /* not evaluated */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "last_scan"), "scope")), "fleet");
    json_t *fd = json_object_get(doc, "findings");
    assert_int_equal(json_integer_value(json_object_get(fd, "carried_over")), 1);
    assert_int_equal(json_integer_value(json_object_get(fd, "resolved")), 2);
    assert_int_equal(json_integer_value(json_object_get(fd, "resolved_left_fleet")), 1);
    json_t *cov = json_object_get(doc, "coverage");
    json_t *ns = json_array_get(json_object_get(cov, "not_scanned"), 0);
    assert_string_equal(json_string_value(json_object_get(ns, "last_ok_at")),
                        "2026-01-20T10:05:00Z");
    assert_int_equal(json_array_size(json_object_get(cov, "suspended")), 1);
    json_t *items = json_object_get(json_object_get(cov, "scans"), "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "scope")),
                        "targeted");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "scps_state")),
                        "failed");
    json_decref(doc);
    free(text);
    report_cleanup(&r);
}

static void test_empty(void **state)
{
    (void)state;
    struct report_week w;
    assert_int_equal(report_week_parse("2026-W05", &w), 0);
    struct report r;
    /* a database never migrated */
    report_init(&r, &w, 1769601600);
    r.schema_missing = 1;
    assert_int_equal(report_finish(&r), 0);
    char *html = render(&r, REPORT_HTML), *md = render(&r, REPORT_MD);
    assert_non_null(strstr(html, "No scan has ever been recorded"));
    assert_non_null(strstr(md, "No scan has ever been recorded"));
    assert_null(strstr(html, "<svg"));
    free(html);
    free(md);
    report_cleanup(&r);
    /* scans exist, none this week: the trend of the weeks before, and the sentence */
    report_init(&r, &w, 1769601600);
    r.any_scan = 1;
    scan_day(&r, 20, 1, 3, 1);
    r.prev = (struct report_scan){.scan_id = 1, .counts = counts(3, 1)};
    assert_int_equal(report_finish(&r), 0);
    html = render(&r, REPORT_HTML);
    md = render(&r, REPORT_MD);
    char *text = render(&r, REPORT_JSON);
    assert_non_null(strstr(html, "No scan ran in week 2026-W05"));
    assert_non_null(strstr(md, "No scan ran in week 2026-W05"));
    assert_int_equal(count_of(html, "<svg"), 1);
    json_t *doc = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "no_scan_in_week");
    assert_true(json_is_null(json_object_get(doc, "rate")));
    assert_true(json_is_null(json_object_get(doc, "change_pp")));
    assert_true(json_is_number(json_object_get(doc, "previous_rate")));
    /* Mon 26, Tue 27 and Wed 28 (today) had no scan; the rest of the week is still to come */
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(doc, "coverage"), "days_without_scan")), 3);
    json_decref(doc);
    free(text);
    free(html);
    free(md);
    report_cleanup(&r);
}

static void test_format_names(void **state)
{
    (void)state;
    enum report_format f;
    assert_int_equal(report_format_parse("md", &f), 0);
    assert_int_equal(f, REPORT_MD);
    assert_int_equal(report_format_parse("markdown", &f), 0);
    assert_int_equal(report_format_parse("csv", &f), 0);
    assert_int_equal(f, REPORT_CSV);
    assert_int_equal(report_format_parse("pdf", &f), -1);
    assert_int_equal(report_format_parse(NULL, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days),  cmocka_unit_test(test_iso_weeks),
        cmocka_unit_test(test_rates), cmocka_unit_test(test_finish),
        cmocka_unit_test(test_html),  cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_csv),   cmocka_unit_test(test_json),
        cmocka_unit_test(test_empty), cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
