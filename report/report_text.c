/* report_text.c - the wording the report's formats share (labels, definitions, the sentences of an
 * empty week), the format dispatcher, and UTF-8 checking for the escapers. */
#include <stdio.h>
#include <string.h>

#include "report/report.h"
#include "report/report_internal.h"

int report_format_parse(const char *name, enum report_format *out)
{
    static const struct {
        const char *name;
        enum report_format f;
    } names[] = {{"html", REPORT_HTML},
                 {"md", REPORT_MD},
                 {"markdown", REPORT_MD},
                 {"json", REPORT_JSON},
                 {"csv", REPORT_CSV}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].f;
            return 0;
        }
    return -1;
}

int report_render(const struct report *r, enum report_format f, FILE *out, struct err *err)
{
    switch (f) {
    case REPORT_HTML:
        return report_render_html(r, out, err);
    case REPORT_MD:
        return report_render_md(r, out, err);
    case REPORT_JSON:
        return report_render_json(r, out, err);
    case REPORT_CSV:
        return report_render_csv(r, out, err);
    }
    return err_set(err, ERR_INVALID, "unknown report format");
}

enum report_state report_state_of(const struct report *r)
{
    if (r->schema_missing)
        return REPORT_STATE_NO_SCHEMA;
    if (!r->any_scan)
        return REPORT_STATE_NO_SCAN;
    if (!r->last.scan_id)
        return REPORT_STATE_NO_SCAN_WEEK;
    return REPORT_STATE_OK;
}

const char *report_state_key(enum report_state s)
{
    switch (s) {
    case REPORT_STATE_OK:
        return "ok";
    case REPORT_STATE_NO_SCAN_WEEK:
        return "no_scan_in_week";
    case REPORT_STATE_NO_SCAN:
        return "no_scan";
    case REPORT_STATE_NO_SCHEMA:
        return "no_schema";
    }
    return "ok";
}

const char *report_state_message(const struct report *r, char *buf, size_t cap)
{
    char range[96];
    report_range_text(r->week.monday, r->week.monday + REPORT_WEEK_DAYS - 1, range, sizeof range);
    switch (report_state_of(r)) {
    case REPORT_STATE_OK:
        return NULL;
    case REPORT_STATE_NO_SCHEMA:
        snprintf(buf, cap,
                 "No scan has ever been recorded: this database has no egressscan schema yet. "
                 "Run 'egressscan migrate', then 'egressscan scan'.");
        break;
    case REPORT_STATE_NO_SCAN:
        snprintf(buf, cap,
                 "No scan has been recorded yet (no finalized scan in the database): there is "
                 "nothing to report for %s. Run 'egressscan scan'.",
                 r->week_text);
        break;
    case REPORT_STATE_NO_SCAN_WEEK:
        if (r->scans.total > 0)
            snprintf(buf, cap,
                     "No finalized scan in week %s (%s): %ld scan%s started but none succeeded "
                     "(%ld failed, %ld aborted, %ld still running). The trend shows the weeks "
                     "before.",
                     r->week_text, range, r->scans.total, r->scans.total == 1 ? "" : "s",
                     r->scans.failed, r->scans.aborted, r->scans.running);
        else
            snprintf(buf, cap,
                     "No scan ran in week %s (%s): there are no numbers for this week. The trend "
                     "shows the weeks before.",
                     r->week_text, range);
        break;
    }
    return buf;
}

const char *report_kind_label(const char *kind)
{
    static const char *const labels[][2] = {{"noncompliant_cluster", "Non-compliant cluster"},
                                            {"unenforced_intent", "Unenforced intent"},
                                            {"scp_conflict", "SCP conflict"},
                                            {"unscanned_target", "Target not scanned"},
                                            {"mode_changed", "Mode changed"},
                                            {"unknown_mode", "Unknown mode"},
                                            {"exception_expired", "Exception expired"}};
    for (size_t i = 0; kind && i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(kind, labels[i][0]) == 0)
            return labels[i][1];
    return kind ? kind : "";
}

const char *report_reason_label(const char *reason)
{
    static const char *const labels[][2] = {
        {"predates_scp", "predates the SCPs (they deny this mode now)"},
        {"scp_gap", "SCP gap (the SCPs still let this mode through)"},
        {"no_scp", "no SCP restricts the egress mode"},
        {"management_account", "management account (SCPs never apply there)"},
        {"scp_unknown", "the SCPs could not be read"},
        {"absent", "the API reported no mode"},
        {"unrecognized", "a mode this version does not know"}};
    for (size_t i = 0; reason && i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(reason, labels[i][0]) == 0)
            return labels[i][1];
    return reason ? reason : "";
}

void report_reasons_text(const char *reasons, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = reasons ? reasons : ""; *p && len < cap;) {
        size_t n = strcspn(p, ",");
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)n, p);
        int w = snprintf(out + len, cap - len, "%s%s", len ? "; " : "", report_reason_label(one));
        len += w > 0 ? (size_t)w : 0;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
}

void report_unverified_text(long n, char *out, size_t cap)
{
    snprintf(out, cap,
             "%ld cluster%s not verified (%s account or region could not be scanned): not in these "
             "numbers.",
             n, n == 1 ? "" : "s", n == 1 ? "its" : "their");
}

void report_carried_text(long n, char *out, size_t cap)
{
    snprintf(out, cap,
             "%ld of them carried over: not raised again by the week's last scan, which could not "
             "judge %s (%s target was not scanned ok, or the scan did not cover it); a finding "
             "stays open until a scan judges it again.",
             n, n == 1 ? "it" : "them", n == 1 ? "its" : "their");
}

void report_left_text(long n, char *out, size_t cap)
{
    snprintf(out, cap, "%ld of the resolved findings %s not fixed: %s target left the fleet.", n,
             n == 1 ? "was" : "were", n == 1 ? "its" : "their");
}

const char *report_resolution_label(const char *resolved_reason)
{
    static const char *const labels[][2] = {
        {"not_raised", "fixed (no longer raised)"},
        {"cluster_gone", "cluster deleted"},
        {"left_organization", "not fixed: the account left the organization"},
        {"suspended", "not fixed: the account was suspended"},
        {"excluded", "not fixed: the target is excluded from the scans"},
        {"region_removed", "not fixed: the region is no longer scanned"}};
    if (!resolved_reason)
        return "fixed";
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(resolved_reason, labels[i][0]) == 0)
            return labels[i][1];
    return resolved_reason;
}

const char *report_scope_label(const char *scope)
{
    if (scope && strcmp(scope, "fleet") == 0)
        return "fleet";
    if (scope && strcmp(scope, "targeted") == 0)
        return "targeted (--accounts or --ou)";
    return scope ? scope : "";
}

const char *report_scps_state_label(const char *scps_state)
{
    static const char *const labels[][2] = {{"read", "read"},
                                            {"disabled", "not enabled (none apply)"},
                                            {"not_read", "not read (by design)"},
                                            {"failed", "could not be read"}};
    if (!scps_state || !*scps_state)
        return "not recorded";
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(scps_state, labels[i][0]) == 0)
            return labels[i][1];
    return scps_state;
}

const char *report_status_label(const char *status)
{
    static const char *const labels[][2] = {{"ok", "scanned"},
                                            {"assume_role_denied", "AssumeRole denied"},
                                            {"access_denied", "access denied"},
                                            {"scp_denied", "denied by an SCP"},
                                            {"suspended", "suspended account"},
                                            {"region_disabled", "region disabled"},
                                            {"throttled", "throttled"},
                                            {"error", "error"}};
    for (size_t i = 0; status && i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(status, labels[i][0]) == 0)
            return labels[i][1];
    return status ? status : "";
}

const char *report_mode_label(enum report_mode m)
{
    static const char *const labels[REPORT_MODES] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                                     "CUSTOMER_ISOLATED",
                                                     "not reported (AWS_MANAGED)", "other value"};
    return m < REPORT_MODES ? labels[m] : "other value";
}

const char *report_mode_color(enum report_mode m)
{
    static const char *const colors[REPORT_MODES] = {"#e69f00", "#0072b2", "#009e73", "#cc79a7",
                                                     "#8c8c8c"};
    return m < REPORT_MODES ? colors[m] : "#8c8c8c";
}

static const char *const month_names[12] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};
static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

void report_date_long(long day, char *out, size_t cap)
{
    int y, m, d;
    report_civil_from_days(day, &y, &m, &d);
    snprintf(out, cap, "%d %s %d", d, month_names[m - 1], y);
}

void report_date_short(long day, char *out, size_t cap)
{
    int y, m, d;
    report_civil_from_days(day, &y, &m, &d);
    snprintf(out, cap, "%s %d %.3s", day_names[report_weekday(day)], d, month_names[m - 1]);
}

void report_range_text(long first, long last, char *out, size_t cap)
{
    int y1, m1, d1, y2, m2, d2;
    report_civil_from_days(first, &y1, &m1, &d1);
    report_civil_from_days(last, &y2, &m2, &d2);
    if (y1 == y2 && m1 == m2)
        snprintf(out, cap, "%d\u2013%d %s %d", d1, d2, month_names[m2 - 1], y2);
    else if (y1 == y2)
        snprintf(out, cap, "%d %s \u2013 %d %s %d", d1, month_names[m1 - 1], d2,
                 month_names[m2 - 1], y2);
    else
        snprintf(out, cap, "%d %s %d \u2013 %d %s %d", d1, month_names[m1 - 1], y1, d2,
                 month_names[m2 - 1], y2);
}

void report_stamp_text(const char *stamp, char *out, size_t cap)
{
    /* "2026-01-25T10:00:00Z" -> "2026-01-25 10:00 UTC" */
    if (stamp && strlen(stamp) == 20 && stamp[10] == 'T' && stamp[19] == 'Z')
        snprintf(out, cap, "%.10s %.5s UTC", stamp, stamp + 11);
    else
        snprintf(out, cap, "%s", stamp ? stamp : "");
}

const char *const report_definitions[] = {
    "Compliance rate = compliant / (compliant + non-compliant) verified clusters. Exempt clusters "
    "(a valid exception in the declared policy) and unknown ones (a mode this version does not "
    "know, or an intent that cannot be evaluated) are left out of both.",
    "Verified: the latest scan that tried the cluster's target (account x region) scanned it ok. "
    "A cluster whose account or region could not be scanned keeps its last known state, is never "
    "counted as compliant, and is shown apart as not verified.",
    "Days are UTC dates; a week is an ISO 8601 week, Monday to Sunday (UTC).",
    "The rate at the end of a week is that of the fleet after its last finalized (succeeded or "
    "partial) scan, targeted or not; the change is this week's minus the previous week's, in "
    "percentage points.",
    "Trend: one point per day from the daily_compliance view (the fleet after the day's last "
    "finalized scan), for the week and the four before it. A day without a scan is a gap, never a "
    "zero.",
    "Clusters and open findings are those of the fleet at the end of the week, not of one scan: "
    "the verified clusters (current_clusters for the week of the latest scan, else the "
    "cluster_history periods that hold then), and the open findings whichever scan last confirmed "
    "them (what current_drift shows for the week of the latest scan). A finding the week's last "
    "scan could not judge again is carried over, still open.",
    "New: first seen during the week. Resolved: resolved during the week by a scan that judged it "
    "again (fixed, or the cluster deleted), or because its target left the fleet (said so: not a "
    "fix). Resolutions by failed or aborted scans do not count.",
    "SCP enforcement gaps: open unenforced_intent findings, and non-compliant clusters whose "
    "reason is scp_gap, per account.",
    "Coverage: the fleet's latest word per target (account x region) at the week's last finalized "
    "scan: the targets not scanned ok, with when they were tried and last scanned ok; suspended "
    "accounts apart (not a failure); the week's scans with their scope and whether they read the "
    "SCPs; the days of the week without a finalized scan.",
    NULL};

size_t report_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned cp;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
        min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
        min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}
