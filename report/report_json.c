/* report_json.c - the weekly report as JSON: every number the html and md reports show (and the
 * whole lists they shorten), for machines and for tests. Unknown values are null, never 0. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "report/report.h"
#include "report/report_internal.h"

/* Builders that remember a failed allocation instead of checking each call. */
struct jb {
    int bad;
};

static json_t *chk(struct jb *b, json_t *v)
{
    if (!v)
        b->bad = 1;
    return v;
}

static void put(struct jb *b, json_t *o, const char *key, json_t *v)
{
    if (!o || !v || json_object_set_new(o, key, v) != 0)
        b->bad = 1;
}

static void push(struct jb *b, json_t *a, json_t *v)
{
    if (!a || !v || json_array_append_new(a, v) != 0)
        b->bad = 1;
}

/* A string or null; bytes that are not UTF-8 become U+FFFD so that the document stays valid. */
static json_t *str(struct jb *b, const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    size_t n = strlen(s);
    char *copy = malloc(n * 3 + 1);
    if (!copy)
        return chk(b, NULL);
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t len = report_utf8_len(p);
        if (len) {
            memcpy(copy + k, p, len);
            k += len;
            p += len;
        } else {
            memcpy(copy + k, "\xef\xbf\xbd", 3);
            k += 3;
            p++;
        }
    }
    copy[k] = '\0';
    v = json_string(copy);
    free(copy);
    return chk(b, v);
}

static json_t *num(long v)
{
    return json_integer((json_int_t)v);
}

static json_t *rate_json(struct jb *b, int has, double rate)
{
    (void)b;
    return has ? json_real(rate) : json_null();
}

static json_t *rate_text_json(struct jb *b, int has, double rate)
{
    char t[16];
    if (!has)
        return json_null();
    report_rate_text(rate, t);
    return str(b, t);
}

static json_t *by_mode_json(struct jb *b, const long by_mode[REPORT_MODES])
{
    json_t *o = chk(b, json_object());
    for (int m = 0; m < REPORT_MODES; m++)
        put(b, o, report_mode_key((enum report_mode)m), num(by_mode[m]));
    return o;
}

static json_t *counts_json(struct jb *b, const struct report_counts *c, int has_rate, double rate)
{
    json_t *o = chk(b, json_object());
    put(b, o, "evaluated", json_boolean(c->evaluated));
    if (c->evaluated) {
        put(b, o, "clusters", num(c->clusters));
        put(b, o, "compliant", num(c->compliant));
        put(b, o, "noncompliant", num(c->noncompliant));
        put(b, o, "exempt", num(c->exempt));
        put(b, o, "unknown", num(c->unknown));
        put(b, o, "unverified", num(c->unverified));
    } else {
        static const char *const keys[] = {"clusters", "compliant", "noncompliant",
                                           "exempt",   "unknown",   "unverified"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            put(b, o, keys[i], json_null());
    }
    put(b, o, "targets_total", num(c->targets_total));
    put(b, o, "targets_ok", num(c->targets_ok));
    put(b, o, "rate", rate_json(b, has_rate, rate));
    put(b, o, "rate_text", rate_text_json(b, has_rate, rate));
    return o;
}

static json_t *scan_json(struct jb *b, const struct report_scan *s)
{
    if (!s->scan_id)
        return json_null();
    json_t *o = chk(b, json_object());
    put(b, o, "scan_id", json_integer((json_int_t)s->scan_id));
    put(b, o, "day", str(b, s->date));
    put(b, o, "started_at", str(b, s->started_at));
    put(b, o, "status", str(b, s->status));
    put(b, o, "scp_intent_known", s->scps_known < 0 ? json_null() : json_boolean(s->scps_known));
    put(b, o, "scope", str(b, s->scope));
    put(b, o, "scps_state", s->scps_state[0] ? str(b, s->scps_state) : json_null());
    put(b, o, "compliance", counts_json(b, &s->counts, s->has_rate, s->rate));
    return o;
}

static json_t *trend_json(struct jb *b, const struct report *r)
{
    json_t *a = chk(b, json_array());
    for (int i = 0; i < REPORT_TREND_DAYS; i++) {
        const struct report_day *d = &r->trend[i];
        struct report_week w;
        char wt[REPORT_WEEK_LEN];
        report_week_of_day(d->day, &w);
        report_week_format(&w, wt);
        json_t *o = chk(b, json_object());
        put(b, o, "day", str(b, d->date));
        put(b, o, "week", str(b, wt));
        put(b, o, "scanned", json_boolean(d->scanned));
        put(b, o, "future", json_boolean(d->future));
        put(b, o, "in_report_week", json_boolean(i >= REPORT_TREND_DAYS - REPORT_WEEK_DAYS));
        put(b, o, "scan_id", d->scanned ? json_integer((json_int_t)d->scan_id) : json_null());
        if (d->scanned) {
            json_t *c = counts_json(b, &d->counts, d->has_rate, d->rate);
            /* flatten: one object per day */
            const char *key;
            json_t *v;
            json_object_foreach(c, key, v) put(b, o, key, json_incref(v));
            json_decref(c);
        } else {
            static const char *const keys[] = {
                "clusters",   "compliant",     "noncompliant", "exempt", "unknown",
                "unverified", "targets_total", "targets_ok",   "rate",   "rate_text"};
            put(b, o, "evaluated", json_false());
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                put(b, o, keys[k], json_null());
        }
        push(b, a, o);
    }
    return a;
}

static json_t *trend_weeks_json(struct jb *b, const struct report *r)
{
    json_t *a = chk(b, json_array());
    for (int w = 0; w < REPORT_TREND_WEEKS; w++) {
        int last = r->trend_weeks[w].last_day;
        json_t *o = chk(b, json_object());
        put(b, o, "week", str(b, r->trend_weeks[w].week));
        put(b, o, "days_scanned", num(r->trend_weeks[w].days_scanned));
        put(b, o, "scan_id",
            last >= 0 ? json_integer((json_int_t)r->trend[last].scan_id) : json_null());
        put(b, o, "rate", rate_json(b, r->trend_weeks[w].has_rate, r->trend_weeks[w].rate));
        put(b, o, "rate_text",
            rate_text_json(b, r->trend_weeks[w].has_rate, r->trend_weeks[w].rate));
        push(b, a, o);
    }
    return a;
}

static json_t *fleet_row_json(struct jb *b, const struct report_fleet_row *row, int account)
{
    json_t *o = chk(b, json_object());
    put(b, o, "ou_path", str(b, row->ou_path));
    if (account) {
        put(b, o, "account_id", str(b, row->account_id));
        put(b, o, "account_name", str(b, row->account_name));
    } else {
        put(b, o, "accounts", num(row->accounts));
    }
    put(b, o, "clusters", num(row->clusters));
    put(b, o, "unverified", num(row->unverified));
    put(b, o, "noncompliant", num(row->noncompliant));
    put(b, o, "by_mode", by_mode_json(b, row->by_mode));
    return o;
}

static json_t *fleet_json(struct jb *b, const struct report *r)
{
    json_t *o = chk(b, json_object());
    put(b, o, "clusters", num(r->fleet_clusters));
    put(b, o, "unverified", num(r->fleet_unverified));
    put(b, o, "by_mode", by_mode_json(b, r->fleet_by_mode));
    json_t *ous = chk(b, json_array()), *accounts = chk(b, json_array());
    for (size_t i = 0; i < r->n_ous; i++)
        push(b, ous, fleet_row_json(b, &r->ous[i], 0));
    for (size_t i = 0; i < r->n_accounts; i++)
        push(b, accounts, fleet_row_json(b, &r->accounts[i], 1));
    put(b, o, "ous", ous);
    put(b, o, "accounts", accounts);
    return o;
}

static const char *status_of(const struct report_finding *f)
{
    return f->open_at_end ? "open" : f->resolved_this_week ? "resolved" : "not_rechecked";
}

static json_t *finding_json(struct jb *b, const struct report *r, const struct report_finding *f)
{
    json_t *o = chk(b, json_object());
    put(b, o, "finding_id", json_integer((json_int_t)f->finding_id));
    put(b, o, "status", str(b, status_of(f)));
    put(b, o, "open_at_end", json_boolean(f->open_at_end));
    put(b, o, "new_this_week", json_boolean(f->new_this_week));
    put(b, o, "resolved_this_week", json_boolean(f->resolved_this_week));
    put(b, o, "carried_over", json_boolean(f->carried_over));
    put(b, o, "left_fleet", json_boolean(f->left_fleet));
    put(b, o, "kind", str(b, f->kind));
    put(b, o, "severity", str(b, f->severity));
    put(b, o, "account_id", str(b, f->account_id));
    put(b, o, "account_name", str(b, f->account_name));
    put(b, o, "ou_path", str(b, f->ou_path));
    put(b, o, "region", str(b, f->region));
    put(b, o, "cluster_name", str(b, f->cluster_name));
    put(b, o, "cluster_arn", str(b, f->cluster_arn));
    put(b, o, "observed_mode", str(b, f->observed_mode));
    put(b, o, "allowed_modes", str(b, f->allowed_modes));
    put(b, o, "source", str(b, f->source));
    put(b, o, "reason", str(b, f->reason));
    put(b, o, "why", str(b, f->why));
    put(b, o, "remediation", str(b, f->remediation));
    put(b, o, "warning", str(b, f->warning));
    put(b, o, "first_seen", str(b, f->first_seen));
    put(b, o, "resolved_at", str(b, f->resolved_at));
    put(b, o, "resolved_reason", str(b, f->resolved_reason));
    put(b, o, "last_seen", str(b, f->last_seen));
    long age = f->open_at_end ? report_age_days(r, f->first_seen) : -1;
    put(b, o, "open_days", age >= 0 ? num(age) : json_null());
    return o;
}

static json_t *findings_json(struct jb *b, const struct report *r)
{
    json_t *o = chk(b, json_object());
    /* "open at the end of the week" needs a scan in the week to say it */
    int known = r->last.scan_id != 0;
    put(b, o, "open", known ? num(r->n_open) : json_null());
    put(b, o, "new", num(r->n_new));
    put(b, o, "carried_over", known ? num(r->n_carried_over) : json_null());
    put(b, o, "resolved", num(r->n_resolved));
    put(b, o, "resolved_left_fleet", num(r->n_resolved_left));
    json_t *sev = known ? chk(b, json_object()) : json_null();
    for (int s = 0; known && s < REPORT_SEVERITIES; s++)
        put(b, sev, report_severity_name((enum report_severity)s), num(r->open_by_severity[s]));
    put(b, o, "open_by_severity", sev);
    json_t *items = chk(b, json_array()), *oldest = chk(b, json_array());
    size_t n_oldest = 0;
    for (size_t i = 0; i < r->n_findings; i++) {
        push(b, items, finding_json(b, r, &r->findings[i]));
        if (r->findings[i].open_at_end && n_oldest < REPORT_OLDEST_MAX) {
            push(b, oldest, json_integer((json_int_t)r->findings[i].finding_id));
            n_oldest++;
        }
    }
    put(b, o, "oldest_open", oldest);
    put(b, o, "items", items);
    return o;
}

static json_t *gaps_json(struct jb *b, const struct report *r)
{
    json_t *o = chk(b, json_object());
    put(b, o, "accounts", num((long)r->n_gaps));
    put(b, o, "ous", num(r->gap_ous));
    json_t *items = chk(b, json_array());
    for (size_t i = 0; i < r->n_gaps; i++) {
        const struct report_gap *g = &r->gaps[i];
        json_t *x = chk(b, json_object());
        put(b, x, "ou_path", str(b, g->ou_path));
        put(b, x, "account_id", str(b, g->account_id));
        put(b, x, "account_name", str(b, g->account_name));
        put(b, x, "regions", str(b, g->regions));
        put(b, x, "rules", str(b, g->rules));
        put(b, x, "reasons", str(b, g->reasons));
        put(b, x, "why", str(b, g->why));
        put(b, x, "unenforced", num(g->unenforced));
        put(b, x, "gap_clusters", num(g->gap_clusters));
        push(b, items, x);
    }
    put(b, o, "items", items);
    return o;
}

static json_t *targets_json(struct jb *b, const struct report_target *t, size_t n)
{
    json_t *rows = chk(b, json_array());
    for (size_t i = 0; i < n; i++) {
        json_t *x = chk(b, json_object());
        put(b, x, "account_id", str(b, t[i].account_id));
        put(b, x, "account_name", str(b, t[i].account_name));
        put(b, x, "region", str(b, t[i].region));
        put(b, x, "status", str(b, t[i].status));
        put(b, x, "error_code", str(b, t[i].error_code));
        put(b, x, "error_message", str(b, t[i].error_message));
        put(b, x, "scan_id", t[i].scan_id ? json_integer((json_int_t)t[i].scan_id) : json_null());
        put(b, x, "scanned_at", str(b, t[i].scanned_at));
        put(b, x, "last_ok_at", str(b, t[i].last_ok_at));
        push(b, rows, x);
    }
    return rows;
}

static json_t *coverage_json(struct jb *b, const struct report *r)
{
    json_t *o = chk(b, json_object());
    put(b, o, "scan_id", r->last.scan_id ? json_integer((json_int_t)r->last.scan_id) : json_null());
    put(b, o, "targets_total", r->last.scan_id ? num(r->last.counts.targets_total) : json_null());
    put(b, o, "targets_ok", r->last.scan_id ? num(r->last.counts.targets_ok) : json_null());
    put(b, o, "not_scanned", targets_json(b, r->unscanned, r->n_unscanned));
    put(b, o, "suspended", targets_json(b, r->suspended, r->n_suspended));
    json_t *days = chk(b, json_array());
    for (size_t i = 0; i < r->n_days_without_scan; i++) {
        char d[REPORT_DATE_LEN];
        report_day_format(r->days_without_scan[i], d);
        push(b, days, str(b, d));
    }
    put(b, o, "days_without_scan", days);
    json_t *scans = chk(b, json_object());
    put(b, scans, "total", num(r->scans.total));
    put(b, scans, "succeeded", num(r->scans.succeeded));
    put(b, scans, "partial", num(r->scans.partial));
    put(b, scans, "failed", num(r->scans.failed));
    put(b, scans, "aborted", num(r->scans.aborted));
    put(b, scans, "running", num(r->scans.running));
    json_t *list = chk(b, json_array());
    for (size_t i = 0; i < r->n_week_scans; i++) {
        const struct report_scan_row *w = &r->week_scans[i];
        json_t *x = chk(b, json_object());
        put(b, x, "scan_id", json_integer((json_int_t)w->scan_id));
        put(b, x, "started_at", str(b, w->started_at));
        put(b, x, "status", str(b, w->status));
        put(b, x, "scope", str(b, w->scope));
        put(b, x, "scps_state", str(b, w->scps_state));
        put(b, x, "targets_total", num(w->targets_total));
        put(b, x, "targets_ok", num(w->targets_ok));
        put(b, x, "targets_failed", num(w->targets_failed));
        push(b, list, x);
    }
    put(b, scans, "items", list);
    put(b, o, "scans", scans);
    return o;
}

int report_render_json(const struct report *r, FILE *out, struct err *err)
{
    struct jb b = {0};
    char msg[512], change[24];
    enum report_state state = report_state_of(r);
    json_t *doc = chk(&b, json_object());
    put(&b, doc, "report", str(&b, "egressscan weekly compliance report"));
    put(&b, doc, "version", str(&b, EGRESSSCAN_VERSION));
    put(&b, doc, "week", str(&b, r->week_text));
    put(&b, doc, "week_start", str(&b, r->week_start));
    put(&b, doc, "week_end", str(&b, r->week_end));
    put(&b, doc, "previous_week", str(&b, r->prev_week_text));
    put(&b, doc, "generated_at", str(&b, r->generated_at));
    put(&b, doc, "state", str(&b, report_state_key(state)));
    put(&b, doc, "message", str(&b, report_state_message(r, msg, sizeof msg)));
    json_t *defs = chk(&b, json_array());
    for (size_t i = 0; report_definitions[i]; i++)
        push(&b, defs, str(&b, report_definitions[i]));
    put(&b, doc, "definitions", defs);
    put(&b, doc, "last_scan", scan_json(&b, &r->last));
    put(&b, doc, "previous_week_last_scan", scan_json(&b, &r->prev));
    put(&b, doc, "rate", rate_json(&b, r->last.has_rate, r->last.rate));
    put(&b, doc, "rate_text", rate_text_json(&b, r->last.has_rate, r->last.rate));
    put(&b, doc, "previous_rate", rate_json(&b, r->prev.has_rate, r->prev.rate));
    put(&b, doc, "previous_rate_text", rate_text_json(&b, r->prev.has_rate, r->prev.rate));
    report_change_text(r->change_pp, change);
    put(&b, doc, "change_pp", r->has_change ? json_real(r->change_pp) : json_null());
    put(&b, doc, "change_text", r->has_change ? str(&b, change) : json_null());
    put(&b, doc, "trend", trend_json(&b, r));
    put(&b, doc, "trend_weeks", trend_weeks_json(&b, r));
    /* the state at the end of the week is known only from a scan in the week */
    int known = state == REPORT_STATE_OK;
    put(&b, doc, "fleet", known ? fleet_json(&b, r) : json_null());
    put(&b, doc, "findings", findings_json(&b, r));
    put(&b, doc, "enforcement_gaps", known ? gaps_json(&b, r) : json_null());
    put(&b, doc, "coverage", coverage_json(&b, r));
    int rc = 0;
    if (b.bad) {
        rc = err_set(err, ERR_NOMEM, "out of memory building the JSON report");
    } else if (json_dumpf(doc, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0 ||
               fputc('\n', out) == EOF || fflush(out) != 0 || ferror(out)) {
        rc = err_set(err, ERR_IO, "writing the JSON report failed");
    }
    json_decref(doc);
    return rc;
}
