/* report_model.h - the weekly compliance report (SPEC.md section 7) as plain data: what
 * storage/report_query.c reads from the database and report/ renders (html, md, json, csv), plus
 * the calendar arithmetic they share (UTC days, ISO 8601 weeks). No third-party types.
 *
 * Definitions (the report states them too):
 * - Days are UTC dates; a week is an ISO 8601 week, Monday to Sunday (UTC). The default week of
 *   `egressscan report` is the last complete one: the week before the current one.
 * - Compliance rate = compliant / (compliant + noncompliant) clusters. Exempt clusters (a valid
 *   exception) and unknown ones (an unrecognized mode, or an intent that cannot be evaluated) are
 *   left out of both. No such cluster (0 / 0), or no evaluated scan: the rate is unknown (absent),
 *   never 0 % or 100 %.
 * - The rate of a day is that of its row in egressscan.daily_compliance (the day's last finalized
 *   scan); the rate at the end of a week is that of the week's last finalized scan (the last
 *   daily_compliance row of the week). Change = rate at the end of this week - rate at the end of
 *   the previous week, in percentage points; absent when either is unknown.
 * - Trend: the 35 days of the week and the four before it, one point per day from
 *   daily_compliance; a day without a row is a gap (no scan), never a zero.
 * - Population: the clusters counted are the VERIFIED clusters of the fleet (their target's latest
 *   word is ok); a cluster whose account or region could not be scanned keeps its last known
 *   state, is never counted as compliant and is shown apart ("unverified").
 * - State at the end of the week: for the week of the latest finalized scan, the views
 *   (current_clusters WHERE verified, current_drift, coverage); for a week in the past, the
 *   cluster_history periods that hold at the week's end restricted to the clusters verified at
 *   the week's last finalized scan, the findings of the fleet open at the week's end (first seen
 *   before it, not resolved before it by a scan that counts), and the fleet's latest word per
 *   target as of that scan. Accounts are placed as that scan saw them. An open finding that scan
 *   did not raise again is "carried over" (a targeted or partial scan could not judge it).
 * - New this week: first_seen in the week. Resolved this week: resolved_at in the week, by a scan
 *   that was not failed or aborted, with finding.resolved_reason: fixed (not_raised), cluster
 *   deleted (cluster_gone), or its target left the fleet (left_organization, suspended, excluded,
 *   region_removed: not a fix, said so).
 * - SCP enforcement gaps: open unenforced_intent findings and open noncompliant_cluster findings
 *   with reason scp_gap, grouped per account (and OU).
 * - Coverage: the fleet's latest word per target at the week's last finalized scan: the targets
 *   not scanned ok (with when they were tried and last ok), suspended accounts apart (not a
 *   failure), the week's scans (scope, SCPs read), and the days of the week (up to today) without
 *   a finalized (succeeded or partial) scan. */
#ifndef EGRESSSCAN_REPORT_MODEL_H
#define EGRESSSCAN_REPORT_MODEL_H

#include <stddef.h>
#include <time.h>

#define REPORT_WEEK_DAYS 7
#define REPORT_TREND_WEEKS 5
#define REPORT_TREND_DAYS (REPORT_WEEK_DAYS * REPORT_TREND_WEEKS)
#define REPORT_OLDEST_MAX 10
#define REPORT_DATE_LEN 11  /* "2026-01-19" + NUL */
#define REPORT_WEEK_LEN 12  /* "2026-W04" + NUL, with room for any int year */
#define REPORT_STAMP_LEN 32 /* "2026-01-19T10:00:00Z" + NUL */

/* ---- calendar: days counted from 1970-01-01 (UTC) ---- */

/* An ISO 8601 week. */
struct report_week {
    int year;    /* ISO week-numbering year */
    int week;    /* 1..52 or 53 */
    long monday; /* its Monday, in days since 1970-01-01 */
};

long report_days_from_civil(int year, int month, int day);
void report_civil_from_days(long days, int *year, int *month, int *day);
/* The UTC day of a time. */
long report_day_of_time(time_t t);
/* "YYYY-MM-DD"; -1 when s is not such a date (valid calendar date, nothing after it). */
int report_day_parse(const char *s, long *day);
void report_day_format(long day, char out[REPORT_DATE_LEN]);
/* 0 Monday .. 6 Sunday. */
int report_weekday(long day);
/* The ISO week that contains day. */
void report_week_of_day(long day, struct report_week *out);
/* "YYYY-Www" (also "YYYY-www"); -1 unless the week exists in that ISO year. */
int report_week_parse(const char *s, struct report_week *out);
void report_week_format(const struct report_week *w, char out[REPORT_WEEK_LEN]);
/* The week before / after w. */
void report_week_add(const struct report_week *w, int weeks, struct report_week *out);

/* ---- the report ---- */

/* Egress mode buckets of the fleet tables: the three named modes, a cluster whose mode the API
 * did not report (judged as AWS_MANAGED, the API default), and a value this version does not
 * know. */
enum report_mode {
    REPORT_MODE_AWS_MANAGED = 0,
    REPORT_MODE_CUSTOMER_ROUTED,
    REPORT_MODE_CUSTOMER_ISOLATED,
    REPORT_MODE_NOT_REPORTED,
    REPORT_MODE_OTHER,
    REPORT_MODES
};

/* Keys used in JSON: "AWS_MANAGED", ..., "not_reported", "other". */
const char *report_mode_key(enum report_mode m);
/* The bucket of a mode as stored (NULL: not reported). */
enum report_mode report_mode_of(const char *egress_mode);

enum report_severity {
    REPORT_SEV_CRITICAL = 0,
    REPORT_SEV_HIGH,
    REPORT_SEV_MEDIUM,
    REPORT_SEV_LOW,
    REPORT_SEV_INFO,
    REPORT_SEVERITIES
};

const char *report_severity_name(enum report_severity s);
/* REPORT_SEVERITIES for a name this version does not know. */
enum report_severity report_severity_of(const char *name);

/* Compliance counts of one finalized scan (a row of daily_compliance). */
struct report_counts {
    int evaluated; /* the scan's drift was evaluated; otherwise the counts are unknown */
    long clusters;
    long compliant;
    long noncompliant;
    long exempt;
    long unknown;
    long unverified; /* clusters of the fleet not verified: not in the numbers above */
    long targets_total;
    long targets_ok;
};

/* The compliance rate of c (0..1): 1 when known, 0 when unknown (not evaluated, or no compliant
 * nor noncompliant cluster). */
int report_rate(const struct report_counts *c, double *rate);
/* "83.3%" (one decimal). */
void report_rate_text(double rate, char out[16]);
/* "+11.9 pp", "-3.0 pp", "0.0 pp" (percentage points, one decimal). */
void report_change_text(double pp, char out[24]);

/* Nonzero for a finding.resolved_reason that says its target left the fleet (left_organization,
 * suspended, excluded, region_removed): resolved, but not fixed. */
int report_reason_left_fleet(const char *resolved_reason);

/* One UTC day of the trend. */
struct report_day {
    long day;
    char date[REPORT_DATE_LEN];
    int scanned;       /* daily_compliance has a row: a finalized scan that day */
    int future;        /* after the report's today: no scan could have run yet */
    long long scan_id; /* the day's last finalized scan; 0 when none */
    struct report_counts counts;
    int has_rate;
    double rate;
};

/* The last finalized scan of a week. */
struct report_scan {
    long long scan_id; /* 0: no finalized scan in that week */
    char date[REPORT_DATE_LEN];
    char started_at[REPORT_STAMP_LEN];
    char status[16];
    int scps_known; /* 1 the SCPs were read; 0 not (SCP-backed intent unknown); -1 not recorded */
    char scope[16]; /* fleet, targeted */
    char scps_state[16]; /* read, disabled, not_read, failed; "" when not recorded */
    struct report_counts counts;
    int has_rate;
    double rate;
};

/* Verified clusters at the week's end of one account, or of one OU (account_id NULL; accounts = how
 * many accounts with clusters it has); unverified ones apart. */
struct report_fleet_row {
    const char *ou_path; /* "Root/Prod"; NULL when unknown */
    const char *account_id;
    const char *account_name;
    long accounts;
    long clusters;
    long by_mode[REPORT_MODES];
    long unverified;   /* clusters whose target was not scanned ok: not in clusters/by_mode */
    long noncompliant; /* open noncompliant_cluster findings at the week's end */
};

/* A finding the week is about: open at its end, new in it, or resolved in it (or several). */
struct report_finding {
    long long finding_id;
    const char *kind;
    const char *severity;
    const char *account_id;
    const char *account_name; /* NULL when unknown */
    const char *ou_path;      /* NULL when unknown */
    const char *region;
    const char *cluster_arn;   /* NULL unless about a cluster */
    const char *cluster_name;  /* NULL unless about a cluster */
    const char *observed_mode; /* verbatim; NULL when not reported or not about a cluster */
    const char *allowed_modes; /* "CUSTOMER_ROUTED, CUSTOMER_ISOLATED"; NULL when not relevant */
    const char *source;
    const char *reason;          /* details.reason; NULL when none */
    const char *why;             /* a one-line explanation from the details; NULL when none */
    const char *remediation;     /* details.remediation; NULL when none */
    const char *warning;         /* details.warning (irreversibility); NULL when none */
    const char *first_seen;      /* ISO 8601 UTC */
    const char *resolved_at;     /* ISO 8601 UTC when resolved in the week; NULL otherwise */
    const char *resolved_reason; /* finding.resolved_reason when resolved in the week */
    const char *last_seen;       /* ISO 8601 UTC: start of the latest scan that raised it */
    int open_at_end;             /* open finding of the fleet at the week's end */
    int carried_over; /* open at the end, not raised again by the week's last finalized scan */
    int left_fleet;   /* resolved in the week because its target left the fleet (not fixed) */
    int new_this_week;
    int resolved_this_week;
};

/* Where a non-compliant cluster could still be created: one row per account. */
struct report_gap {
    const char *ou_path;
    const char *account_id;
    const char *account_name;
    const char *regions; /* "*" or "eu-west-1, us-east-1" */
    const char *rules;   /* the findings' sources: "policy:regulated" */
    const char *reasons; /* "scp_gap", "no_scp", "management_account", "scp_unknown" */
    const char *why;     /* what is still allowed: "omitted: allowed; CUSTOMER_ISOLATED: ..." */
    long unenforced;     /* open unenforced_intent findings */
    long gap_clusters;   /* open noncompliant_cluster findings with reason scp_gap */
};

/* A target of the fleet whose latest word (at the week's last finalized scan) is not ok. */
struct report_target {
    const char *account_id;
    const char *account_name;
    const char *region; /* "*": the whole account */
    const char *status;
    const char *error_code;
    const char *error_message;
    const char *scanned_at; /* ISO 8601 UTC: when the latest scan that tried it did */
    const char *last_ok_at; /* ISO 8601 UTC: when last scanned ok; NULL: never */
    long long scan_id;      /* the latest scan that tried it */
};

/* A scan started in the week. */
struct report_scan_row {
    long long scan_id;
    const char *started_at; /* ISO 8601 UTC */
    const char *status;
    const char *scope;      /* fleet, targeted */
    const char *scps_state; /* read, disabled, not_read, failed; NULL: not recorded */
    long targets_total, targets_ok, targets_failed;
};

struct report_mem;

struct report {
    struct report_week week;
    char week_text[REPORT_WEEK_LEN];
    char week_start[REPORT_DATE_LEN]; /* Monday */
    char week_end[REPORT_DATE_LEN];   /* Sunday */
    struct report_week prev_week;
    char prev_week_text[REPORT_WEEK_LEN];
    long today;                          /* the UTC day the report was made */
    char generated_at[REPORT_STAMP_LEN]; /* ISO 8601 UTC */

    int schema_missing; /* the database has no egressscan schema: nothing was ever scanned */
    int any_scan;       /* the database holds at least one finalized scan (any week) */

    struct {
        long total, succeeded, partial, failed, aborted, running;
    } scans; /* scans started in the week, by status */

    struct report_scan last; /* the week's last finalized scan */
    struct report_scan prev; /* the previous week's */
    int has_change;
    double change_pp;

    struct report_day trend[REPORT_TREND_DAYS]; /* trend[28..34] is the week */
    struct {
        char week[REPORT_WEEK_LEN];
        int days_scanned;
        int last_day; /* index in trend of its last day with a scan; -1 none */
        int has_rate; /* rate at the end of that week (its last finalized scan) */
        double rate;
    } trend_weeks[REPORT_TREND_WEEKS];        /* the four weeks before, then the week */
    long days_without_scan[REPORT_WEEK_DAYS]; /* days of the week up to today without one */
    size_t n_days_without_scan;

    long fleet_clusters; /* verified clusters at the week's end */
    long fleet_by_mode[REPORT_MODES];
    long fleet_unverified;             /* clusters of the fleet not verified at the week's end */
    struct report_fleet_row *accounts; /* by OU path, then account id */
    size_t n_accounts;
    struct report_fleet_row *ous; /* by OU path */
    size_t n_ous;

    struct report_finding *findings; /* by first_seen, then finding_id */
    size_t n_findings;
    long n_open, n_new, n_resolved;
    long n_carried_over;  /* of n_open: not raised again by the week's last finalized scan */
    long n_resolved_left; /* of n_resolved: their target left the fleet (not fixed) */
    long open_by_severity[REPORT_SEVERITIES];

    struct report_gap *gaps; /* by OU path, then account id */
    size_t n_gaps;
    long gap_ous; /* distinct OU paths among the gaps */

    struct report_target *unscanned; /* by account, region; suspended accounts not here */
    size_t n_unscanned;
    struct report_target *suspended; /* suspended accounts of the fleet (not a failure) */
    size_t n_suspended;
    struct report_scan_row *week_scans; /* scans started in the week, by started_at */
    size_t n_week_scans;

    struct report_mem *mem; /* storage of the arrays and strings above */
};

/* Starts a report of week w made at `now`: the week's texts, the trend's days (nothing scanned
 * yet), generated_at. Everything else empty. Clean up with report_cleanup. */
void report_init(struct report *r, const struct report_week *w, time_t now);

/* Frees what report_alloc/report_strdup gave (the arrays and strings); r may be reused after
 * report_init. */
void report_cleanup(struct report *r);

/* Zeroed memory owned by r (freed by report_cleanup); NULL on ENOMEM. */
void *report_alloc(struct report *r, size_t size);
/* A copy of s owned by r; NULL for NULL, and on ENOMEM (*oom set then). */
char *report_strdup(struct report *r, const char *s, int *oom);

/* Computes what follows from the loaded rows: the rate of each trend day and of the last scans
 * of the week and of the previous week (filled by the loader), the change, the days without a
 * scan, the fleet totals and OU rows from the account rows (sorted), the finding counts, the
 * non-compliant count per account and the enforcement gaps. -1 on ENOMEM. */
int report_finish(struct report *r);

/* Days between the UTC day of an ISO 8601 stamp and the end of the report's week (how long an
 * open finding has been open at the week's end); -1 when the stamp cannot be read. */
long report_age_days(const struct report *r, const char *stamp);

#endif
