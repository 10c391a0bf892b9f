/* report_model.c - the weekly report's data: UTC days and ISO 8601 weeks (proleptic Gregorian
 * arithmetic, no time zone database), the report's memory, and the figures derived from the rows
 * storage/report_query.c loads (rates, change, gaps, OU totals) so that every renderer shows the
 * same numbers. */
#include "common/report_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ---- calendar ---- */

/* Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms). */
long report_days_from_civil(int year, int month, int day)
{
    long y = (long)year - (month <= 2);
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void report_civil_from_days(long days, int *year, int *month, int *day)
{
    long z = days + 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1;
    long m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

long report_day_of_time(time_t t)
{
    long long s = (long long)t;
    long long d = s / 86400;
    if (s % 86400 < 0)
        d--;
    return (long)d;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int report_day_parse(const char *s, long *day)
{
    int y, m, d;
    if (!s || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &m) < 0 || s[7] != '-' ||
        digits(s + 8, 2, &d) < 0 || s[10] != '\0' || m < 1 || m > 12 || d < 1)
        return -1;
    long v = report_days_from_civil(y, m, d);
    int yy, mm, dd;
    report_civil_from_days(v, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d)
        return -1; /* 2026-02-30 */
    *day = v;
    return 0;
}

void report_day_format(long day, char out[REPORT_DATE_LEN])
{
    int y, m, d;
    report_civil_from_days(day, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999; /* never wider than the buffer */
    snprintf(out, REPORT_DATE_LEN, "%04d-%02d-%02d", y, m, d);
}

int report_weekday(long day)
{
    long w = (day + 3) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

void report_week_of_day(long day, struct report_week *out)
{
    long monday = day - report_weekday(day);
    long thursday = monday + 3; /* the ISO year is the year of the week's Thursday */
    int y, m, d;
    report_civil_from_days(thursday, &y, &m, &d);
    out->year = y;
    out->week = (int)((thursday - report_days_from_civil(y, 1, 1)) / 7 + 1);
    out->monday = monday;
}

int report_week_parse(const char *s, struct report_week *out)
{
    int y, w;
    if (!s || digits(s, 4, &y) < 0 || s[4] != '-' || (s[5] != 'W' && s[5] != 'w') ||
        digits(s + 6, 2, &w) < 0 || s[8] != '\0' || w < 1 || w > 53)
        return -1;
    long jan4 = report_days_from_civil(y, 1, 4); /* always in week 1 */
    long monday = jan4 - report_weekday(jan4) + 7L * (w - 1);
    struct report_week check;
    report_week_of_day(monday, &check);
    if (check.year != y || check.week != w)
        return -1; /* week 53 of a 52-week year */
    *out = check;
    return 0;
}

void report_week_format(const struct report_week *w, char out[REPORT_WEEK_LEN])
{
    snprintf(out, REPORT_WEEK_LEN, "%04d-W%02d", w->year, w->week);
}

void report_week_add(const struct report_week *w, int weeks, struct report_week *out)
{
    report_week_of_day(w->monday + 7L * weeks, out);
}

/* ---- names ---- */

static const char *const mode_keys[REPORT_MODES] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                                    "CUSTOMER_ISOLATED", "not_reported", "other"};

const char *report_mode_key(enum report_mode m)
{
    return m < REPORT_MODES ? mode_keys[m] : "other";
}

enum report_mode report_mode_of(const char *egress_mode)
{
    if (!egress_mode)
        return REPORT_MODE_NOT_REPORTED;
    for (int m = 0; m < REPORT_MODE_NOT_REPORTED; m++)
        if (strcmp(egress_mode, mode_keys[m]) == 0)
            return (enum report_mode)m;
    return REPORT_MODE_OTHER;
}

static const char *const severity_names[REPORT_SEVERITIES] = {"critical", "high", "medium", "low",
                                                              "info"};

const char *report_severity_name(enum report_severity s)
{
    return s < REPORT_SEVERITIES ? severity_names[s] : "unknown";
}

enum report_severity report_severity_of(const char *name)
{
    for (int s = 0; name && s < REPORT_SEVERITIES; s++)
        if (strcmp(name, severity_names[s]) == 0)
            return (enum report_severity)s;
    return REPORT_SEVERITIES;
}

/* ---- rates ---- */

int report_rate(const struct report_counts *c, double *rate)
{
    long in_scope = c->compliant + c->noncompliant;
    if (!c->evaluated || in_scope <= 0) {
        *rate = 0;
        return 0;
    }
    *rate = (double)c->compliant / (double)in_scope;
    return 1;
}

void report_rate_text(double rate, char out[16])
{
    snprintf(out, 16, "%.1f%%", rate * 100.0);
}

void report_change_text(double pp, char out[24])
{
    /* what %.1f would print as 0.0 or -0.0 is "no change", written without a sign */
    if (pp > -0.05 && pp < 0.05)
        snprintf(out, 24, "0.0 pp");
    else
        snprintf(out, 24, "%+.1f pp", pp);
}

/* ---- memory: a list of blocks, one per allocation ---- */

struct report_mem {
    struct report_mem *next;
    max_align_t data[]; /* aligned for anything */
};

void *report_alloc(struct report *r, size_t size)
{
    if (size > (size_t)-1 - sizeof(struct report_mem))
        return NULL;
    struct report_mem *m = calloc(1, sizeof *m + (size ? size : 1));
    if (!m)
        return NULL;
    m->next = r->mem;
    r->mem = m;
    return m->data;
}

char *report_strdup(struct report *r, const char *s, int *oom)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = report_alloc(r, n + 1);
    if (!d) {
        if (oom)
            *oom = 1;
        return NULL;
    }
    memcpy(d, s, n + 1);
    return d;
}

void report_cleanup(struct report *r)
{
    if (!r)
        return;
    while (r->mem) {
        struct report_mem *next = r->mem->next;
        free(r->mem);
        r->mem = next;
    }
    r->accounts = r->ous = NULL;
    r->findings = NULL;
    r->gaps = NULL;
    r->unscanned = r->suspended = NULL;
    r->week_scans = NULL;
    r->n_accounts = r->n_ous = r->n_findings = r->n_gaps = r->n_unscanned = 0;
    r->n_suspended = r->n_week_scans = 0;
}

void report_init(struct report *r, const struct report_week *w, time_t now)
{
    memset(r, 0, sizeof *r);
    r->week = *w;
    report_week_format(w, r->week_text);
    report_day_format(w->monday, r->week_start);
    report_day_format(w->monday + REPORT_WEEK_DAYS - 1, r->week_end);
    report_week_add(w, -1, &r->prev_week);
    report_week_format(&r->prev_week, r->prev_week_text);
    r->today = report_day_of_time(now);
    char day[REPORT_DATE_LEN];
    report_day_format(r->today, day);
    unsigned secs = (unsigned)((long long)now - (long long)r->today * 86400); /* 0..86399 */
    snprintf(r->generated_at, sizeof r->generated_at, "%.10sT%02u:%02u:%02uZ", day,
             secs / 3600 % 24, secs / 60 % 60, secs % 60);
    long first = w->monday - (REPORT_TREND_DAYS - REPORT_WEEK_DAYS);
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        r->trend[i].day = first + i;
        report_day_format(first + i, r->trend[i].date);
        r->trend[i].future = first + i > r->today;
    }
}

long report_age_days(const struct report *r, const char *stamp)
{
    char date[REPORT_DATE_LEN];
    long day;
    if (!stamp || strlen(stamp) < 10)
        return -1;
    memcpy(date, stamp, 10);
    date[10] = '\0';
    if (report_day_parse(date, &day) < 0)
        return -1;
    long end = r->week.monday + REPORT_WEEK_DAYS - 1;
    if (r->today < end)
        end = r->today;
    return end >= day ? end - day : 0;
}

int report_reason_left_fleet(const char *resolved_reason)
{
    static const char *const left[] = {"left_organization", "suspended", "excluded",
                                       "region_removed"};
    for (size_t i = 0; resolved_reason && i < sizeof left / sizeof left[0]; i++)
        if (strcmp(resolved_reason, left[i]) == 0)
            return 1;
    return 0;
}

/* ---- derived figures ---- */

static int cmp_str_null_last(const char *a, const char *b)
{
    if (!a || !b)
        return (a == NULL) - (b == NULL);
    return strcmp(a, b);
}

static int cmp_fleet_row(const void *pa, const void *pb)
{
    const struct report_fleet_row *a = pa, *b = pb;
    int c = cmp_str_null_last(a->ou_path, b->ou_path);
    return c ? c : cmp_str_null_last(a->account_id, b->account_id);
}

static int cmp_gap(const void *pa, const void *pb)
{
    const struct report_gap *a = pa, *b = pb;
    int c = cmp_str_null_last(a->ou_path, b->ou_path);
    return c ? c : cmp_str_null_last(a->account_id, b->account_id);
}

static int same_str(const char *a, const char *b)
{
    return cmp_str_null_last(a, b) == 0;
}

/* The account row of id (rows sorted by OU path: a linear search; reports have at most a few
 * thousand accounts and this runs once per open non-compliant finding). */
static struct report_fleet_row *account_row(struct report *r, const char *id)
{
    for (size_t i = 0; i < r->n_accounts; i++)
        if (same_str(r->accounts[i].account_id, id))
            return &r->accounts[i];
    return NULL;
}

static int build_ous(struct report *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_accounts; i++)
        if (i == 0 || !same_str(r->accounts[i].ou_path, r->accounts[i - 1].ou_path))
            n++;
    r->n_ous = 0;
    r->ous = n ? report_alloc(r, n * sizeof *r->ous) : NULL;
    if (n && !r->ous)
        return -1;
    for (size_t i = 0; i < r->n_accounts; i++) {
        const struct report_fleet_row *a = &r->accounts[i];
        if (i == 0 || !same_str(a->ou_path, r->accounts[i - 1].ou_path))
            r->ous[r->n_ous++].ou_path = a->ou_path;
        struct report_fleet_row *o = &r->ous[r->n_ous - 1];
        o->accounts++;
        o->clusters += a->clusters;
        o->noncompliant += a->noncompliant;
        o->unverified += a->unverified;
        for (int m = 0; m < REPORT_MODES; m++)
            o->by_mode[m] += a->by_mode[m];
    }
    return 0;
}

/* Appends s to b as one more item of a "; "-separated (sep) list unless already there. */
static int add_distinct(struct buf *b, const char *s, const char *sep)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s), sl = strlen(sep);
    for (const char *p = b->data; p && *p;) {
        const char *end = strstr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, s, n) == 0)
            return 0;
        p = end ? end + sl : p + len;
    }
    if (b->len && buf_puts(b, sep) < 0)
        return -1;
    return buf_puts(b, s);
}

static int is_gap_finding(const struct report_finding *f)
{
    if (!f->open_at_end || !f->kind)
        return 0;
    return strcmp(f->kind, "unenforced_intent") == 0 ||
           (strcmp(f->kind, "noncompliant_cluster") == 0 && f->reason &&
            strcmp(f->reason, "scp_gap") == 0);
}

enum { GAP_REGIONS, GAP_RULES, GAP_REASONS, GAP_WHY, GAP_TEXTS };

static int build_gaps(struct report *r)
{
    size_t n = 0;
    int rc = -1, oom = 0;
    struct buf text[GAP_TEXTS];
    for (int t = 0; t < GAP_TEXTS; t++)
        buf_init(&text[t]);
    for (size_t i = 0; i < r->n_findings; i++)
        n += (size_t)is_gap_finding(&r->findings[i]);
    r->n_gaps = 0;
    r->gap_ous = 0;
    r->gaps = n ? report_alloc(r, n * sizeof *r->gaps) : NULL;
    if (n && !r->gaps)
        goto done;
    /* one pass per account, in the order the findings come; texts gathered for the account */
    for (size_t i = 0; i < r->n_findings; i++) {
        const struct report_finding *f = &r->findings[i];
        if (!is_gap_finding(f))
            continue;
        int seen = 0;
        for (size_t g = 0; g < r->n_gaps && !seen; g++)
            seen = same_str(r->gaps[g].account_id, f->account_id);
        if (seen)
            continue;
        struct report_gap *g = &r->gaps[r->n_gaps++];
        g->account_id = f->account_id;
        g->account_name = f->account_name;
        g->ou_path = f->ou_path;
        for (int t = 0; t < GAP_TEXTS; t++)
            buf_reset(&text[t]);
        for (size_t j = i; j < r->n_findings; j++) {
            const struct report_finding *h = &r->findings[j];
            if (!is_gap_finding(h) || !same_str(h->account_id, f->account_id))
                continue;
            if (strcmp(h->kind, "unenforced_intent") == 0)
                g->unenforced++;
            else
                g->gap_clusters++;
            if (add_distinct(&text[GAP_REGIONS], h->region, ", ") < 0 ||
                add_distinct(&text[GAP_RULES], h->source, ", ") < 0 ||
                add_distinct(&text[GAP_REASONS], h->reason, ", ") < 0 ||
                add_distinct(&text[GAP_WHY], h->why, "; ") < 0)
                goto done;
        }
        g->regions = report_strdup(r, text[GAP_REGIONS].data ? text[GAP_REGIONS].data : "", &oom);
        g->rules = report_strdup(r, text[GAP_RULES].data ? text[GAP_RULES].data : "", &oom);
        g->reasons = report_strdup(r, text[GAP_REASONS].data ? text[GAP_REASONS].data : "", &oom);
        g->why = text[GAP_WHY].data ? report_strdup(r, text[GAP_WHY].data, &oom) : NULL;
        if (oom)
            goto done;
    }
    if (r->n_gaps > 1)
        qsort(r->gaps, r->n_gaps, sizeof *r->gaps, cmp_gap);
    for (size_t g = 0; g < r->n_gaps; g++)
        if (g == 0 || !same_str(r->gaps[g].ou_path, r->gaps[g - 1].ou_path))
            r->gap_ous++;
    rc = 0;
done:
    for (int t = 0; t < GAP_TEXTS; t++)
        buf_cleanup(&text[t]);
    return rc;
}

int report_finish(struct report *r)
{
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        struct report_day *d = &r->trend[i];
        d->future = d->day > r->today;
        d->has_rate = d->scanned && report_rate(&d->counts, &d->rate);
    }
    for (int w = 0; w < REPORT_TREND_WEEKS; w++) {
        struct report_week wk;
        report_week_of_day(r->trend[w * REPORT_WEEK_DAYS].day, &wk);
        report_week_format(&wk, r->trend_weeks[w].week);
        r->trend_weeks[w].days_scanned = 0;
        r->trend_weeks[w].last_day = -1;
        for (int i = w * REPORT_WEEK_DAYS; i < (w + 1) * REPORT_WEEK_DAYS; i++)
            if (r->trend[i].scanned) {
                r->trend_weeks[w].days_scanned++;
                r->trend_weeks[w].last_day = i;
            }
        int last = r->trend_weeks[w].last_day;
        r->trend_weeks[w].has_rate = last >= 0 && r->trend[last].has_rate;
        r->trend_weeks[w].rate = last >= 0 ? r->trend[last].rate : 0;
    }
    r->last.has_rate = r->last.scan_id && report_rate(&r->last.counts, &r->last.rate);
    r->prev.has_rate = r->prev.scan_id && report_rate(&r->prev.counts, &r->prev.rate);
    r->has_change = r->last.has_rate && r->prev.has_rate;
    r->change_pp = r->has_change ? (r->last.rate - r->prev.rate) * 100.0 : 0;

    r->n_days_without_scan = 0;
    for (int i = REPORT_TREND_DAYS - REPORT_WEEK_DAYS; i < REPORT_TREND_DAYS; i++)
        if (!r->trend[i].scanned && !r->trend[i].future)
            r->days_without_scan[r->n_days_without_scan++] = r->trend[i].day;

    if (r->n_accounts > 1)
        qsort(r->accounts, r->n_accounts, sizeof *r->accounts, cmp_fleet_row);
    r->fleet_clusters = 0;
    r->fleet_unverified = 0;
    memset(r->fleet_by_mode, 0, sizeof r->fleet_by_mode);
    for (size_t i = 0; i < r->n_accounts; i++) {
        struct report_fleet_row *a = &r->accounts[i];
        a->clusters = 0;
        a->accounts = 1;
        a->noncompliant = 0;
        for (int m = 0; m < REPORT_MODES; m++) {
            a->clusters += a->by_mode[m];
            r->fleet_by_mode[m] += a->by_mode[m];
        }
        r->fleet_clusters += a->clusters;
        r->fleet_unverified += a->unverified;
    }

    r->n_open = r->n_new = r->n_resolved = 0;
    r->n_carried_over = r->n_resolved_left = 0;
    memset(r->open_by_severity, 0, sizeof r->open_by_severity);
    for (size_t i = 0; i < r->n_findings; i++) {
        const struct report_finding *f = &r->findings[i];
        r->n_new += f->new_this_week != 0;
        r->n_resolved += f->resolved_this_week != 0;
        r->n_resolved_left += f->resolved_this_week && f->left_fleet;
        if (!f->open_at_end)
            continue;
        r->n_open++;
        r->n_carried_over += f->carried_over != 0;
        enum report_severity s = report_severity_of(f->severity);
        if (s < REPORT_SEVERITIES)
            r->open_by_severity[s]++;
        if (f->kind && strcmp(f->kind, "noncompliant_cluster") == 0) {
            struct report_fleet_row *a = account_row(r, f->account_id);
            if (a)
                a->noncompliant++;
        }
    }
    if (build_ous(r) < 0 || build_gaps(r) < 0)
        return -1;
    return 0;
}
