/* test_report.c - the weekly compliance report end to end (issue 5). moto holds a small
 * organization (tests/data/fleets/report.json: an OU whose SCP enforces CUSTOMER_ROUTED, one whose
 * SCP leaves a gap, a sandbox, an account whose role cannot be assumed) and a declared policy;
 * `egressscan scan --as-of` builds five ISO weeks of history (2025-W52 .. 2026-W04, across the
 * year boundary): scans on several days a week and twice on one day, clusters appearing, changing
 * mode and disappearing, findings opening and closing, one day without a scan in the last week,
 * one partial scan. The test keeps its own model of the fleet and computes every expected number
 * from what it changed (not from the database), then checks every number of
 * `egressscan report --format json` for each week, that the latest week agrees with the views
 * (current_drift, daily_compliance, current_clusters, coverage), that html, md and csv carry the
 * same numbers, that the HTML validates (tidy, xmllint) with its SVG charts and no script or
 * external asset, and that an empty database or a week without scans gives a clear report.
 * With REPORT_SAVE_DIR set, the last week's report is also written there in every format
 * (`make report-screenshot` uses it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "common/err.h"
#include "common/model.h"
#include "storage/db.h"
#include "storage/findings.h"
#include "tests/support/cli.h"
#include "tests/support/procs.h"

#define REGIONS "eu-west-1,us-east-1"
#define NOW "2026-01-28T12:00:00Z" /* Wednesday of 2026-W05: the default week is 2026-W04 */

/* ---- the fixture ---- */

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;
    char policy_path[64];
    struct cli cli;
    int history_built;
} fx;

enum { REG, GAP, SBX, LOCKED, N_ACCTS };
static const char *const acct_names[N_ACCTS] = {"reg1", "gap1", "sbx1", "locked"};
static const char *const acct_ous[N_ACCTS] = {"Root/Regulated", "Root/Gappy", "Root/Sandbox",
                                              "Root/Sandbox"};

static const char *acct_id(int a)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), acct_names[a]));
}

static int acct_of_id(const char *id)
{
    for (int a = 0; id && a < N_ACCTS; a++)
        if (strcmp(acct_id(a), id) == 0)
            return a;
    return -1;
}

static const char *ou_id(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "ous"), name));
}

static void write_policy(void)
{
    json_t *p = json_pack("{s:i, s:{s:[s,s]}, s:[{s:s, s:s, s:[s], s:b}, {s:s, s:s, s:[s], s:b},"
                          " {s:s, s:s, s:[s,s,s]}]}",
                          "version", 1, "default", "allowed_modes", "CUSTOMER_ROUTED",
                          "CUSTOMER_ISOLATED", "rules", "id", "regulated", "ou", ou_id("Regulated"),
                          "allowed_modes", "CUSTOMER_ROUTED", "require_scp", 1, "id", "gappy", "ou",
                          ou_id("Gappy"), "allowed_modes", "CUSTOMER_ROUTED", "require_scp", 1,
                          "id", "sandbox", "ou", ou_id("Sandbox"), "allowed_modes", "AWS_MANAGED",
                          "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED");
    snprintf(fx.policy_path, sizeof fx.policy_path, "/tmp/egressscan-policy-XXXXXX");
    int fd = mkstemp(fx.policy_path);
    close(fd);
    json_dump_file(p, fx.policy_path, JSON_INDENT(2));
    json_decref(p);
}

static int setup(void **state)
{
    (void)state;
    if (cli_moto_fixture(&fx.moto, &fx.pg, "tests/data/fleets/report.json", &fx.seed, &fx.cli) < 0)
        return -1;
    write_policy();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(fx.policy_path);
    json_decref(fx.seed);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

/* ---- the test's own model of the fleet and of the findings ---- */

enum { M_AWS_MANAGED, M_CUSTOMER_ROUTED, M_CUSTOMER_ISOLATED, M_NOT_REPORTED, M_OTHER, N_MODES };
static const char *const mode_keys[N_MODES] = {"AWS_MANAGED", "CUSTOMER_ROUTED",
                                               "CUSTOMER_ISOLATED", "not_reported", "other"};

static int mode_index(const char *mode)
{
    if (!mode)
        return M_NOT_REPORTED;
    for (int m = 0; m < M_NOT_REPORTED; m++)
        if (strcmp(mode, mode_keys[m]) == 0)
            return m;
    return M_OTHER;
}

struct tcluster {
    int acct;
    const char *region;
    const char *name;
    const char *mode; /* NULL: created without the field */
    int present;
    int observed;          /* seen by a scan already */
    const char *last_mode; /* the mode the last scan saw */
};

#define MAX_CLUSTERS 16
static struct tcluster clusters[MAX_CLUSTERS] = {
    {REG, "eu-west-1", "reg-routed", "CUSTOMER_ROUTED", 1, 0, NULL},
    {REG, "eu-west-1", "reg-old", "AWS_MANAGED", 1, 0, NULL},
    {GAP, "us-east-1", "gap-managed", "AWS_MANAGED", 1, 0, NULL},
    {GAP, "us-east-1", "gap-routed", "CUSTOMER_ROUTED", 1, 0, NULL},
    {SBX, "eu-west-1", "sbx-managed", "AWS_MANAGED", 1, 0, NULL},
    {SBX, "us-east-1", "sbx-absent", NULL, 1, 0, NULL},
};
static int n_clusters = 6;

struct fkey {
    const char *kind;
    int acct;
    const char *region;
    const char *cluster; /* "" when not about a cluster */
    const char *source;
};

struct life {
    struct fkey k;
    const char *severity;
    const char *reason;          /* NULL when none */
    int first;                   /* scan index that first raised it */
    int resolved;                /* scan index that resolved it; -1 open */
    const char *resolved_reason; /* finding.resolved_reason it got */
};

#define MAX_SCANS 32
#define MAX_RAISED 32
#define MAX_LIVES 64

struct tscan {
    char stamp[32];
    time_t t;
    int partial;
    long clusters, compliant, noncompliant, targets_total, targets_ok;
    long by_mode[N_ACCTS][N_MODES];
    struct fkey raised[MAX_RAISED];
    int n_raised;
    int covered[N_ACCTS];
};

static struct tscan scans[MAX_SCANS];
static int n_scans;
static struct life lives[MAX_LIVES];
static int n_lives;

static int same_key(const struct fkey *a, const struct fkey *b)
{
    return strcmp(a->kind, b->kind) == 0 && a->acct == b->acct &&
           strcmp(a->region, b->region) == 0 && strcmp(a->cluster, b->cluster) == 0 &&
           strcmp(a->source, b->source) == 0;
}

static time_t parse_stamp(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) < 3)
        fail_msg("bad stamp %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static void day_text(time_t t, char out[11])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static void raise_finding(struct tscan *s, const char *kind, int acct, const char *region,
                          const char *cluster, const char *source, const char *severity,
                          const char *reason)
{
    assert_true(s->n_raised < MAX_RAISED);
    struct fkey k = {kind, acct, region, cluster, source};
    s->raised[s->n_raised++] = k;
    int scan = (int)(s - scans);
    for (int i = 0; i < n_lives; i++)
        if (lives[i].resolved < 0 && same_key(&lives[i].k, &k)) {
            lives[i].severity = severity;
            return;
        }
    assert_true(n_lives < MAX_LIVES);
    lives[n_lives++] = (struct life){k, severity, reason, scan, -1, NULL};
}

/* What the scan at stamp records, as the product's definitions say (computed by hand from the
 * fleet: who is compliant under the declared policy, which findings are raised). */
static void model_scan(const char *stamp, int partial)
{
    assert_true(n_scans < MAX_SCANS);
    struct tscan *s = &scans[n_scans++];
    memset(s, 0, sizeof *s);
    snprintf(s->stamp, sizeof s->stamp, "%s", stamp);
    s->t = parse_stamp(stamp);
    s->partial = partial;
    s->covered[REG] = s->covered[GAP] = s->covered[SBX] = 1;
    s->covered[LOCKED] = partial; /* excluded from every other scan */
    /* the management account and the three member accounts, two regions each */
    s->targets_total = 8 + partial;
    s->targets_ok = 8;
    for (int i = 0; i < n_clusters; i++) {
        struct tcluster *c = &clusters[i];
        if (!c->present)
            continue;
        const char *judged = c->mode ? c->mode : "AWS_MANAGED";
        int ok = c->acct == SBX || strcmp(judged, "CUSTOMER_ROUTED") == 0;
        s->clusters++;
        s->by_mode[c->acct][mode_index(c->mode)]++;
        if (!c->mode)
            raise_finding(s, "unknown_mode", c->acct, c->region, c->name, "observation", "low",
                          "absent");
        if (ok) {
            s->compliant++;
        } else {
            s->noncompliant++;
            raise_finding(s, "noncompliant_cluster", c->acct, c->region, c->name,
                          c->acct == REG ? "policy:regulated" : "policy:gappy", "high",
                          c->acct == REG ? "predates_scp" : "scp_gap");
        }
        int changed = c->observed && ((c->mode == NULL) != (c->last_mode == NULL) ||
                                      (c->mode && strcmp(c->mode, c->last_mode) != 0));
        if (changed)
            raise_finding(s, "mode_changed", c->acct, c->region, c->name, "history",
                          c->last_mode && strcmp(c->last_mode, "CUSTOMER_ROUTED") == 0 ? "high"
                                                                                       : "info",
                          NULL);
        c->observed = 1;
        c->last_mode = c->mode;
    }
    /* the Gappy SCP denies only an explicit AWS_MANAGED: the omitted mode still passes */
    raise_finding(s, "unenforced_intent", GAP, "*", "", "policy:gappy", "high", "scp_gap");
    if (partial)
        raise_finding(s, "unscanned_target", LOCKED, "*", "", "coverage", "high", NULL);
    /* the open findings of the covered accounts that this scan did not raise are resolved (as
     * cluster_gone when their cluster was deleted); every scan here is a fleet scan, so the open
     * findings of an account it left out (LOCKED, excluded) resolve as excluded: it left the
     * fleet */
    int scan = (int)(s - scans);
    for (int i = 0; i < n_lives; i++) {
        if (lives[i].resolved >= 0 || lives[i].first == scan)
            continue;
        if (!s->covered[lives[i].k.acct]) {
            lives[i].resolved = scan;
            lives[i].resolved_reason = "excluded";
            continue;
        }
        int raised = 0;
        for (int k = 0; k < s->n_raised && !raised; k++)
            raised = same_key(&s->raised[k], &lives[i].k);
        if (!raised) {
            int gone = 0;
            for (int c = 0; c < n_clusters && *lives[i].k.cluster; c++)
                gone |= strcmp(clusters[c].name, lives[i].k.cluster) == 0 && !clusters[c].present;
            lives[i].resolved = scan;
            lives[i].resolved_reason = gone ? "cluster_gone" : "not_raised";
        }
    }
}

/* moto changes (signature checks off while seeding) */
static void moto_change(const char *op, int acct, const char *region, const char *name,
                        const char *mode)
{
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char *argv[] = {"python3",      "tests/support/moto_seed.py",
                    "--endpoint",   fx.moto.url,
                    (char *)op,     (char *)acct_id(acct),
                    (char *)region, (char *)name,
                    (char *)mode,   NULL};
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    assert_int_equal(procs_run(argv, env, NULL), 0);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
}

static struct tcluster *cluster_named(const char *name)
{
    for (int i = 0; i < n_clusters; i++)
        if (strcmp(clusters[i].name, name) == 0)
            return &clusters[i];
    fail_msg("no cluster %s", name);
    return NULL;
}

static void do_create(int acct, const char *region, const char *name, const char *mode)
{
    moto_change("--create", acct, region, name, mode ? mode : "-");
    assert_true(n_clusters < MAX_CLUSTERS);
    clusters[n_clusters++] = (struct tcluster){acct, region, name, mode, 1, 0, NULL};
}

static void do_set_mode(const char *name, const char *mode)
{
    struct tcluster *c = cluster_named(name);
    moto_change("--set-mode", c->acct, c->region, name, mode);
    c->mode = mode;
}

static void do_delete(const char *name)
{
    struct tcluster *c = cluster_named(name);
    moto_change("--delete", c->acct, c->region, name, NULL);
    c->present = 0;
}

static void do_scan(const char *stamp, int partial)
{
    char *out = NULL;
    int rc = partial ? cli_run(&fx.cli, &out, NULL, "scan", "--regions", REGIONS, "--policy",
                               fx.policy_path, "--no-progress", "--as-of", stamp, NULL)
                     : cli_run(&fx.cli, &out, NULL, "scan", "--regions", REGIONS, "--policy",
                               fx.policy_path, "--no-progress", "--exclude-accounts",
                               acct_id(LOCKED), "--as-of", stamp, NULL);
    if (rc != (partial ? 3 : 0))
        fail_msg("scan at %s exited %d:\n%s", stamp, rc, out ? out : "");
    free(out);
    model_scan(stamp, partial);
}

/* ---- reports ---- */

static char *report_text(const char *format, const char *week)
{
    char *out = NULL;
    int rc = week
                 ? cli_run(&fx.cli, &out, NULL, "report", "--format", format, "--week", week,
                           "--as-of", NOW, NULL)
                 : cli_run(&fx.cli, &out, NULL, "report", "--format", format, "--as-of", NOW, NULL);
    if (rc != 0)
        fail_msg("report --format %s --week %s exited %d", format, week ? week : "(default)", rc);
    assert_non_null(out);
    return out;
}

static json_t *report_json(const char *week)
{
    char *out = report_text("json", week);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    if (!doc)
        fail_msg("report json is not JSON (%s): %.500s", je.text, out);
    free(out);
    return doc;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return (long)json_integer_value(v);
}

static void rate_text(double rate, char out[16])
{
    snprintf(out, 16, "%.1f%%", rate * 100.0);
}

/* rate (null or a number) and rate_text of o against compliant/noncompliant */
static void check_rate(json_t *o, const char *rate_key, const char *text_key, long compliant,
                       long noncompliant)
{
    json_t *rate = json_object_get(o, rate_key);
    if (compliant + noncompliant == 0) {
        assert_true(json_is_null(rate));
        return;
    }
    double want = (double)compliant / (double)(compliant + noncompliant);
    if (!json_is_number(rate) || json_number_value(rate) < want - 1e-9 ||
        json_number_value(rate) > want + 1e-9)
        fail_msg("%s: want %.6f", rate_key, want);
    char t[16];
    rate_text(want, t);
    assert_string_equal(jstr(o, text_key), t);
}

struct tweek {
    const char *week;
    const char *monday;
};

static const struct tweek weeks[] = {{"2025-W51", "2025-12-15"}, {"2025-W52", "2025-12-22"},
                                     {"2026-W01", "2025-12-29"}, {"2026-W02", "2026-01-05"},
                                     {"2026-W03", "2026-01-12"}, {"2026-W04", "2026-01-19"},
                                     {"2026-W05", "2026-01-26"}, {"2026-W06", "2026-02-02"}};

static time_t monday_of(const struct tweek *w)
{
    char stamp[32];
    snprintf(stamp, sizeof stamp, "%sT00:00:00", w->monday);
    return parse_stamp(stamp);
}

/* Index of the last scan in [from, to), or -1. */
static int last_scan_in(time_t from, time_t to)
{
    int last = -1;
    for (int i = 0; i < n_scans; i++)
        if (scans[i].t >= from && scans[i].t < to)
            last = i;
    return last;
}

static int in_range(int scan, time_t from, time_t to)
{
    return scan >= 0 && scans[scan].t >= from && scans[scan].t < to;
}

/* A life is open at the end of the week when it is an open finding of the fleet after the
 * week's last scan: raised by then and not resolved by then (here every open one was raised again
 * by that scan: nothing is carried over). */
static int open_at(const struct life *l, int last)
{
    return last >= 0 && l->first <= last && (l->resolved < 0 || l->resolved > last);
}

static const char *null_to_empty(const char *s)
{
    return s ? s : "";
}

static void check_counts_object(json_t *c, const struct tscan *s)
{
    assert_true(json_is_true(json_object_get(c, "evaluated")));
    assert_int_equal(jint(c, "clusters"), s->clusters);
    assert_int_equal(jint(c, "compliant"), s->compliant);
    assert_int_equal(jint(c, "noncompliant"), s->noncompliant);
    assert_int_equal(jint(c, "exempt"), 0);
    assert_int_equal(jint(c, "unknown"), 0);
    assert_int_equal(jint(c, "unverified"), 0); /* LOCKED has no cluster */
    assert_int_equal(jint(c, "targets_total"), s->targets_total);
    assert_int_equal(jint(c, "targets_ok"), s->targets_ok);
    check_rate(c, "rate", "rate_text", s->compliant, s->noncompliant);
}

/* Every number of the JSON report of week w, against the model. */
static void check_week_json(const struct tweek *w)
{
    json_t *doc = report_json(w->week);
    const time_t day = 86400, start = monday_of(w), end = start + 7 * day;
    const time_t now = parse_stamp(NOW);
    int last = last_scan_in(start, end), prev = last_scan_in(start - 7 * day, start);
    assert_string_equal(jstr(doc, "week"), w->week);
    assert_string_equal(jstr(doc, "week_start"), w->monday);

    /* headline */
    if (last < 0) {
        assert_string_equal(jstr(doc, "state"), n_scans ? "no_scan_in_week" : "no_scan");
        assert_non_null(strstr(jstr(doc, "message"), "No scan ran in week"));
        assert_true(json_is_null(json_object_get(doc, "last_scan")));
        assert_true(json_is_null(json_object_get(doc, "rate")));
        assert_true(json_is_null(json_object_get(doc, "fleet")));
        assert_true(json_is_null(json_object_get(doc, "enforcement_gaps")));
    } else {
        assert_string_equal(jstr(doc, "state"), "ok");
        assert_true(json_is_null(json_object_get(doc, "message")));
        json_t *ls = json_object_get(doc, "last_scan");
        assert_int_equal(jint(ls, "scan_id"), last + 1); /* scans are numbered from 1 */
        assert_string_equal(jstr(ls, "started_at"), scans[last].stamp);
        assert_string_equal(jstr(ls, "status"), scans[last].partial ? "partial" : "succeeded");
        assert_true(json_is_true(json_object_get(ls, "scp_intent_known")));
        check_counts_object(json_object_get(ls, "compliance"), &scans[last]);
        check_rate(doc, "rate", "rate_text", scans[last].compliant, scans[last].noncompliant);
    }
    if (prev < 0) {
        assert_true(json_is_null(json_object_get(doc, "previous_rate")));
    } else {
        check_rate(doc, "previous_rate", "previous_rate_text", scans[prev].compliant,
                   scans[prev].noncompliant);
        assert_int_equal(jint(json_object_get(doc, "previous_week_last_scan"), "scan_id"),
                         prev + 1);
    }
    json_t *change = json_object_get(doc, "change_pp");
    if (last < 0 || prev < 0) {
        assert_true(json_is_null(change));
        assert_true(json_is_null(json_object_get(doc, "change_text")));
    } else {
        double want = 100.0 * ((double)scans[last].compliant /
                                   (double)(scans[last].compliant + scans[last].noncompliant) -
                               (double)scans[prev].compliant /
                                   (double)(scans[prev].compliant + scans[prev].noncompliant));
        assert_true(json_is_number(change));
        assert_true(json_number_value(change) > want - 1e-9 &&
                    json_number_value(change) < want + 1e-9);
        char t[24];
        if (want > -0.05 && want < 0.05)
            snprintf(t, sizeof t, "0.0 pp");
        else
            snprintf(t, sizeof t, "%+.1f pp", want);
        assert_string_equal(jstr(doc, "change_text"), t);
    }

    /* trend: 35 days, the last scan of each day, gaps where there was none */
    json_t *trend = json_object_get(doc, "trend");
    assert_int_equal(json_array_size(trend), 35);
    time_t first = start - 28 * day;
    int without = 0;
    json_t *days_without = json_object_get(json_object_get(doc, "coverage"), "days_without_scan");
    for (int i = 0; i < 35; i++) {
        json_t *d = json_array_get(trend, (size_t)i);
        char want_day[11];
        day_text(first + i * day, want_day);
        assert_string_equal(jstr(d, "day"), want_day);
        int s = last_scan_in(first + i * day, first + (i + 1) * day);
        int future = first + i * day > now - (now % day);
        assert_int_equal(json_is_true(json_object_get(d, "future")), future);
        if (s < 0) {
            assert_false(json_is_true(json_object_get(d, "scanned")));
            assert_true(json_is_null(json_object_get(d, "rate")));
            assert_true(json_is_null(json_object_get(d, "clusters")));
            if (i >= 28 && !future) {
                assert_string_equal(
                    json_string_value(json_array_get(days_without, (size_t)without)), want_day);
                without++;
            }
            continue;
        }
        assert_true(json_is_true(json_object_get(d, "scanned")));
        assert_int_equal(jint(d, "scan_id"), s + 1);
        check_counts_object(d, &scans[s]);
    }
    assert_int_equal(json_array_size(days_without), without);
    json_t *tw = json_object_get(doc, "trend_weeks");
    assert_int_equal(json_array_size(tw), 5);
    for (int k = 0; k < 5; k++) {
        json_t *x = json_array_get(tw, (size_t)k);
        time_t ws = first + 7 * k * day;
        int scanned_days = 0;
        for (int i = 0; i < 7; i++)
            scanned_days += last_scan_in(ws + i * day, ws + (i + 1) * day) >= 0;
        assert_int_equal(jint(x, "days_scanned"), scanned_days);
        int ls = last_scan_in(ws, ws + 7 * day);
        if (ls < 0)
            assert_true(json_is_null(json_object_get(x, "rate")));
        else
            check_rate(x, "rate", "rate_text", scans[ls].compliant, scans[ls].noncompliant);
    }

    /* scans of the week by status */
    json_t *sc = json_object_get(json_object_get(doc, "coverage"), "scans");
    long total = 0, partial = 0;
    for (int i = 0; i < n_scans; i++)
        if (scans[i].t >= start && scans[i].t < end) {
            total++;
            partial += scans[i].partial;
        }
    assert_int_equal(jint(sc, "total"), total);
    assert_int_equal(jint(sc, "partial"), partial);
    assert_int_equal(jint(sc, "succeeded"), total - partial);
    assert_int_equal(jint(sc, "failed") + jint(sc, "aborted") + jint(sc, "running"), 0);

    /* findings: open at the end (raised by the last scan), new, resolved */
    json_t *fd = json_object_get(doc, "findings");
    json_t *items = json_object_get(fd, "items");
    long want_open = 0, want_new = 0, want_resolved = 0, want_items = 0;
    long sev_open[5] = {0};
    long gap_clusters = 0, unenforced = 0;
    static const char *const sevs[5] = {"critical", "high", "medium", "low", "info"};
    for (int i = 0; i < n_lives; i++) {
        const struct life *l = &lives[i];
        int o = open_at(l, last), n = in_range(l->first, start, end),
            r = in_range(l->resolved, start, end);
        if (!o && !n && !r)
            continue;
        want_items++;
        want_open += o;
        want_new += n;
        want_resolved += r;
        if (o) {
            for (int s = 0; s < 5; s++)
                sev_open[s] += strcmp(l->severity, sevs[s]) == 0;
            gap_clusters += strcmp(l->k.kind, "noncompliant_cluster") == 0 && l->reason &&
                            strcmp(l->reason, "scp_gap") == 0;
            unenforced += strcmp(l->k.kind, "unenforced_intent") == 0;
        }
        /* the report's item for this lifetime */
        json_t *match = NULL, *it;
        size_t k;
        json_array_foreach(items, k, it)
        {
            const char *arn_name = jstr(it, "cluster_name");
            if (strcmp(jstr(it, "kind"), l->k.kind) == 0 &&
                acct_of_id(jstr(it, "account_id")) == l->k.acct &&
                strcmp(jstr(it, "region"), l->k.region) == 0 &&
                strcmp(null_to_empty(arn_name), l->k.cluster) == 0 &&
                strcmp(jstr(it, "source"), l->k.source) == 0 &&
                strcmp(jstr(it, "first_seen"), scans[l->first].stamp) == 0)
                match = it;
        }
        if (!match)
            fail_msg("%s: no item for %s %s %s %s first seen %s", w->week, l->k.kind,
                     acct_names[l->k.acct], l->k.region, l->k.cluster, scans[l->first].stamp);
        assert_int_equal(json_is_true(json_object_get(match, "open_at_end")), o);
        assert_int_equal(json_is_true(json_object_get(match, "new_this_week")), n);
        assert_int_equal(json_is_true(json_object_get(match, "resolved_this_week")), r);
        assert_string_equal(jstr(match, "status"), o ? "open" : r ? "resolved" : "not_rechecked");
        assert_string_equal(jstr(match, "severity"), l->severity);
        assert_string_equal(jstr(match, "ou_path"), acct_ous[l->k.acct]);
        if (r) {
            assert_string_equal(jstr(match, "resolved_at"), scans[l->resolved].stamp);
            assert_string_equal(jstr(match, "resolved_reason"), l->resolved_reason);
            assert_int_equal(json_is_true(json_object_get(match, "left_fleet")),
                             strcmp(l->resolved_reason, "excluded") == 0);
        } else {
            assert_true(json_is_null(json_object_get(match, "resolved_at")));
            assert_true(json_is_null(json_object_get(match, "resolved_reason")));
        }
        assert_false(json_is_true(json_object_get(match, "carried_over")));
        if (strcmp(l->k.kind, "noncompliant_cluster") == 0) {
            assert_string_equal(jstr(match, "reason"), l->reason);
            assert_non_null(strstr(jstr(match, "remediation"), "aws eks update-cluster-config"));
            assert_non_null(strstr(jstr(match, "warning"), "irreversible"));
        }
        if (o) {
            /* days from the first scan's day to the week's last day */
            long age = (long)((end - day - (scans[l->first].t - scans[l->first].t % day)) / day);
            assert_int_equal(jint(match, "open_days"), age);
        }
    }
    assert_int_equal(json_array_size(items), want_items);
    assert_int_equal(jint(fd, "new"), want_new);
    assert_int_equal(jint(fd, "resolved"), want_resolved);
    if (last < 0) {
        assert_true(json_is_null(json_object_get(fd, "open")));
    } else {
        assert_int_equal(jint(fd, "open"), want_open);
        for (int s = 0; s < 5; s++)
            assert_int_equal(jint(json_object_get(fd, "open_by_severity"), sevs[s]), sev_open[s]);
        /* the oldest open findings: the open items in first_seen order, at most 10 */
        json_t *oldest = json_object_get(fd, "oldest_open");
        assert_int_equal(json_array_size(oldest), want_open < 10 ? want_open : 10);
        size_t k, o = 0;
        json_t *it;
        const char *prev_seen = "";
        json_array_foreach(items, k, it)
        {
            assert_true(strcmp(prev_seen, jstr(it, "first_seen")) <= 0);
            prev_seen = jstr(it, "first_seen");
            if (json_is_true(json_object_get(it, "open_at_end")) && o < 10)
                assert_int_equal(json_integer_value(json_array_get(oldest, o++)),
                                 jint(it, "finding_id"));
        }
    }

    if (last >= 0) {
        /* the fleet at the end of the week, by account, OU and mode */
        json_t *fleet = json_object_get(doc, "fleet");
        long want_total = 0, want_mode[N_MODES] = {0};
        for (int a = 0; a < N_ACCTS; a++)
            for (int m = 0; m < N_MODES; m++) {
                want_total += scans[last].by_mode[a][m];
                want_mode[m] += scans[last].by_mode[a][m];
            }
        assert_int_equal(jint(fleet, "clusters"), want_total);
        assert_int_equal(jint(fleet, "unverified"), 0);
        for (int m = 0; m < N_MODES; m++)
            assert_int_equal(jint(json_object_get(fleet, "by_mode"), mode_keys[m]), want_mode[m]);
        json_t *accounts = json_object_get(fleet, "accounts");
        size_t want_accounts = 0;
        for (int a = 0; a < N_ACCTS; a++) {
            long n = 0, nc = 0;
            for (int m = 0; m < N_MODES; m++)
                n += scans[last].by_mode[a][m];
            for (int i = 0; i < n_lives; i++)
                nc += lives[i].k.acct == a &&
                      strcmp(lives[i].k.kind, "noncompliant_cluster") == 0 &&
                      open_at(&lives[i], last);
            if (!n)
                continue;
            want_accounts++;
            json_t *row = NULL, *it;
            size_t k;
            json_array_foreach(accounts, k, it)
            {
                if (strcmp(jstr(it, "account_id"), acct_id(a)) == 0)
                    row = it;
            }
            if (!row)
                fail_msg("%s: account %s missing from the fleet", w->week, acct_names[a]);
            assert_string_equal(jstr(row, "account_name"), acct_names[a]);
            assert_string_equal(jstr(row, "ou_path"), acct_ous[a]);
            assert_int_equal(jint(row, "clusters"), n);
            assert_int_equal(jint(row, "noncompliant"), nc);
            for (int m = 0; m < N_MODES; m++)
                assert_int_equal(jint(json_object_get(row, "by_mode"), mode_keys[m]),
                                 scans[last].by_mode[a][m]);
            /* one account per OU here: the OU row has the same numbers */
            json_t *ou = NULL;
            json_array_foreach(json_object_get(fleet, "ous"), k, it)
            {
                if (strcmp(jstr(it, "ou_path"), acct_ous[a]) == 0)
                    ou = it;
            }
            assert_non_null(ou);
            assert_int_equal(jint(ou, "accounts"), 1);
            assert_int_equal(jint(ou, "clusters"), n);
            assert_int_equal(jint(ou, "noncompliant"), nc);
        }
        assert_int_equal(json_array_size(accounts), want_accounts);
        assert_int_equal(json_array_size(json_object_get(fleet, "ous")), want_accounts);

        /* SCP enforcement gaps: only the Gappy account has any */
        json_t *gaps = json_object_get(doc, "enforcement_gaps");
        assert_int_equal(jint(gaps, "accounts"), unenforced || gap_clusters ? 1 : 0);
        if (unenforced || gap_clusters) {
            json_t *g = json_array_get(json_object_get(gaps, "items"), 0);
            assert_string_equal(jstr(g, "account_id"), acct_id(GAP));
            assert_string_equal(jstr(g, "ou_path"), "Root/Gappy");
            assert_string_equal(jstr(g, "rules"), "policy:gappy");
            assert_int_equal(jint(g, "unenforced"), unenforced);
            assert_int_equal(jint(g, "gap_clusters"), gap_clusters);
            /* why: the omitted mode is still allowed */
            assert_non_null(strstr(jstr(g, "why"), "omitted: allowed"));
        }

        /* coverage: the targets the week's last scan could not scan */
        json_t *cov = json_object_get(doc, "coverage");
        assert_int_equal(jint(cov, "scan_id"), last + 1);
        assert_int_equal(jint(cov, "targets_total"), scans[last].targets_total);
        assert_int_equal(jint(cov, "targets_ok"), scans[last].targets_ok);
        json_t *ns = json_object_get(cov, "not_scanned");
        assert_int_equal(json_array_size(ns), scans[last].partial ? 1 : 0);
        if (scans[last].partial) {
            json_t *t = json_array_get(ns, 0);
            assert_string_equal(jstr(t, "account_id"), acct_id(LOCKED));
            assert_string_equal(jstr(t, "account_name"), "locked");
            assert_string_equal(jstr(t, "region"), "*");
            assert_string_equal(jstr(t, "status"), "assume_role_denied");
        }
    }
    json_decref(doc);
}

/* ---- the tests ---- */

static void test_empty_database(void **state)
{
    (void)state;
    /* never migrated: a clear report, exit 0 */
    char *out = report_text("html", NULL);
    assert_non_null(strstr(out, "No scan has ever been recorded"));
    assert_null(strstr(out, "<script"));
    free(out);
    json_t *doc = report_json("2026-W04");
    assert_string_equal(jstr(doc, "state"), "no_schema");
    json_decref(doc);
    out = report_text("csv", "2026-W04");
    assert_non_null(strstr(out, "finding_id,status_at_week_end,"));
    assert_null(strchr(strchr(out, '\n') + 1, '\n')); /* the header alone */
    free(out);

    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "migrate", NULL), 0);
    out = report_text("md", NULL);
    assert_non_null(strstr(out, "No scan has been recorded yet"));
    assert_non_null(strstr(out, "week 2026-W04")); /* the default: the last complete week */
    free(out);
    doc = report_json(NULL);
    assert_string_equal(jstr(doc, "state"), "no_scan");
    assert_string_equal(jstr(doc, "week"), "2026-W04");
    assert_true(json_is_null(json_object_get(doc, "rate")));
    json_decref(doc);

    /* usage errors */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "report", "--week", "2026-W60", NULL), 2);
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "report", "--week", "2025-W53", NULL),
                     2); /* 52 weeks */
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "report", "--format", "pdf", NULL), 2);
}

static void build_history(void)
{
    if (fx.history_built)
        return;
    fx.history_built = 1;
    /* 2025-W52 */
    do_scan("2025-12-22T10:00:00Z", 0);
    do_scan("2025-12-24T10:00:00Z", 0);
    do_create(SBX, "eu-west-1", "sbx-new", "CUSTOMER_ISOLATED"); /* a cluster appears */
    do_scan("2025-12-26T10:00:00Z", 0);
    /* 2026-W01 */
    do_scan("2025-12-29T10:00:00Z", 0);
    do_set_mode("gap-managed", "CUSTOMER_ROUTED"); /* fixed: its finding resolves */
    do_scan("2025-12-31T10:00:00Z", 0);
    do_scan("2026-01-02T10:00:00Z", 0);
    /* 2026-W02 */
    do_scan("2026-01-05T10:00:00Z", 0);
    do_delete("sbx-managed"); /* a cluster disappears */
    do_scan("2026-01-07T10:00:00Z", 0);
    do_scan("2026-01-09T10:00:00Z", 1); /* partial: the locked account is not excluded */
    /* 2026-W03 */
    do_create(REG, "eu-west-1", "reg-new", "AWS_MANAGED"); /* a non-compliant one appears */
    do_scan("2026-01-12T10:00:00Z", 0);
    do_scan("2026-01-14T10:00:00Z", 0);
    do_scan("2026-01-16T10:00:00Z", 0);
    /* 2026-W04: every day but Thursday, twice on Tuesday */
    do_scan("2026-01-19T10:00:00Z", 0);
    do_scan("2026-01-20T08:00:00Z", 0);
    do_set_mode("reg-old", "CUSTOMER_ROUTED");
    do_scan("2026-01-20T20:00:00Z", 0); /* the day's numbers are this scan's */
    do_scan("2026-01-21T10:00:00Z", 0);
    do_delete("reg-new");
    do_scan("2026-01-23T10:00:00Z", 0);
    do_scan("2026-01-24T10:00:00Z", 0);
    do_set_mode("gap-routed", "AWS_MANAGED"); /* a regression: replaced, non-compliant */
    do_scan("2026-01-25T10:00:00Z", 0);
}

static void test_history_weeks(void **state)
{
    (void)state;
    build_history();
    for (size_t i = 0; i < sizeof weeks / sizeof weeks[0]; i++)
        check_week_json(&weeks[i]);
    /* the default week is the last complete one */
    json_t *doc = report_json(NULL);
    assert_string_equal(jstr(doc, "week"), "2026-W04");
    json_decref(doc);
}

static PGresult *sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", q, PQerrorMessage(c));
    return r;
}

static void test_latest_week_matches_views(void **state)
{
    (void)state;
    build_history();
    json_t *doc = report_json("2026-W04");
    PGconn *c = PQconnectdb(fx.pg.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);

    /* open findings = current_drift */
    PGresult *r = sql(c, "SELECT finding_id FROM egressscan.current_drift ORDER BY finding_id");
    json_t *items = json_object_get(json_object_get(doc, "findings"), "items"), *it;
    size_t k;
    int open = 0;
    json_array_foreach(items, k, it)
    {
        if (!json_is_true(json_object_get(it, "open_at_end")))
            continue;
        open++;
        int found = 0;
        for (int i = 0; i < PQntuples(r); i++)
            found |= strtoll(PQgetvalue(r, i, 0), NULL, 10) == jint(it, "finding_id");
        assert_true(found);
    }
    assert_int_equal(open, PQntuples(r));
    assert_true(open > 0);
    PQclear(r);

    /* trend rows = daily_compliance */
    r = sql(c, "SELECT to_char(day, 'YYYY-MM-DD'), scan_id, clusters, compliant, noncompliant,"
               " exempt, targets_total, targets_ok FROM egressscan.daily_compliance"
               " WHERE day >= '2025-12-22' ORDER BY day");
    json_t *trend = json_object_get(doc, "trend");
    int rows = 0;
    json_array_foreach(trend, k, it)
    {
        if (!json_is_true(json_object_get(it, "scanned")))
            continue;
        assert_true(rows < PQntuples(r));
        assert_string_equal(jstr(it, "day"), PQgetvalue(r, rows, 0));
        static const char *const cols[] = {"scan_id", "clusters",      "compliant", "noncompliant",
                                           "exempt",  "targets_total", "targets_ok"};
        for (int col = 0; col < 7; col++)
            assert_int_equal(jint(it, cols[col]), strtol(PQgetvalue(r, rows, col + 1), NULL, 10));
        rows++;
    }
    assert_int_equal(rows, PQntuples(r));
    PQclear(r);

    /* the fleet = current_clusters */
    r = sql(c, "SELECT COALESCE(egress_mode, 'not_reported'), count(*)"
               " FROM egressscan.current_clusters GROUP BY 1");
    json_t *by_mode = json_object_get(json_object_get(doc, "fleet"), "by_mode");
    long total = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        assert_int_equal(jint(by_mode, PQgetvalue(r, i, 0)), strtol(PQgetvalue(r, i, 1), NULL, 10));
        total += strtol(PQgetvalue(r, i, 1), NULL, 10);
    }
    assert_int_equal(jint(json_object_get(doc, "fleet"), "clusters"), total);
    PQclear(r);

    /* coverage = the coverage view's rows that are not ok */
    r = sql(c, "SELECT account_id, region, status FROM egressscan.coverage WHERE status <> 'ok'");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(doc, "coverage"), "not_scanned")),
        PQntuples(r));
    PQclear(r);
    PQfinish(c);
    json_decref(doc);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int have_tool(const char *name)
{
    char *argv[] = {"sh", "-c", NULL, NULL};
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    argv[2] = cmd;
    return procs_run(argv, NULL, NULL) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The HTML validates: tidy (HTML5, errors and warnings), xmllint as XML (well-formed), and
 * xmllint's HTML 4 parser reporting nothing but the HTML5/SVG element names it does not know. */
static void validate_html(const char *html)
{
    char path[] = "/tmp/egressscan-report-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_text(path, html);
    if (have_tool("tidy")) {
        char *argv[] = {"sh", "-c", NULL, NULL};
        char cmd[256];
        snprintf(cmd, sizeof cmd, "tidy -q -e %s 2>&1", path);
        argv[2] = cmd;
        char *out = NULL;
        int rc = procs_run(argv, NULL, &out);
        if (rc != 0)
            fail_msg("tidy found problems (exit %d):\n%s", rc, out ? out : "");
        free(out);
    } else {
        fprintf(stderr, "SKIP tidy checks: tidy is not installed (Debian package tidy)\n");
    }
    if (have_tool("xmllint")) {
        char *argv[] = {"sh", "-c", NULL, NULL};
        char cmd[512];
        snprintf(cmd, sizeof cmd, "xmllint --noout %s 2>&1", path);
        argv[2] = cmd;
        char *out = NULL;
        int rc = procs_run(argv, NULL, &out);
        if (rc != 0)
            fail_msg("xmllint: the HTML is not well-formed:\n%s", out ? out : "");
        free(out);
        snprintf(cmd, sizeof cmd,
                 "xmllint --html --noout %s 2>&1 | grep 'parser error' | grep -Ev 'Tag "
                 "(main|header|footer|section|article|figure|figcaption|svg|title|desc|rect|"
                 "line|path|circle|text|wbr) invalid'",
                 path);
        rc = procs_run(argv, NULL, &out);
        if (out && *out)
            fail_msg("xmllint --html reports errors:\n%s", out);
        free(out);
    } else {
        fprintf(stderr, "SKIP xmllint checks: xmllint is not installed (Debian package "
                        "libxml2-utils)\n");
    }
    unlink(path);
}

static void check_formats(const char *week)
{
    json_t *doc = report_json(week);
    char *html = report_text("html", week), *md = report_text("md", week),
         *csv = report_text("csv", week);
    json_t *fd = json_object_get(doc, "findings");

    /* self-contained, no script, no external asset, the charts */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "@import"));
    assert_null(strstr(html, "url("));
    assert_int_equal(count_of(html, "<svg"), 2); /* the trend and the OU chart */
    assert_true(count_of(html, "role=\"img\"") == 2);
    assert_true(count_of(html, "<th scope=\"col\"") > 20);
    assert_non_null(strstr(html, "@media print"));
    validate_html(html);

    /* the same numbers everywhere */
    const char *rate = jstr(doc, "rate_text"), *change = jstr(doc, "change_text");
    assert_non_null(strstr(html, rate));
    assert_non_null(strstr(md, rate));
    if (change) {
        assert_non_null(strstr(html, change));
        assert_non_null(strstr(md, change));
    }
    char line[160];
    snprintf(line, sizeof line, "%ld new, %ld resolved; %ld open at the end of the week",
             jint(fd, "new"), jint(fd, "resolved"), jint(fd, "open"));
    assert_non_null(strstr(html, line));
    assert_non_null(strstr(md, line));
    snprintf(line, sizeof line, "%ld verified clusters at the end of the week",
             jint(json_object_get(doc, "fleet"), "clusters"));
    assert_non_null(strstr(html, line));
    assert_non_null(strstr(md, line));
    long open = jint(fd, "open");
    size_t oldest = (size_t)(open < 10 ? open : 10);
    assert_int_equal(count_of(html, "<article class=\"finding\">"), oldest);
    /* By OU, By account, New, Resolved, Scans this week, Targets not scanned */
    assert_int_equal(count_of(md, "\n### ") - 6, oldest);
    /* the irreversibility warning with each non-compliant cluster's remediation */
    size_t nc_oldest = 0, k;
    json_t *it;
    json_array_foreach(json_object_get(fd, "items"), k, it)
    {
        if (!json_is_true(json_object_get(it, "open_at_end")))
            continue;
        if (nc_oldest < oldest && jstr(it, "warning"))
            nc_oldest++;
    }
    assert_int_equal(count_of(html, "class=\"warn\""), nc_oldest);
    assert_int_equal(count_of(md, "**Irreversible:**"), nc_oldest);
    json_t *days = json_object_get(json_object_get(doc, "coverage"), "days_without_scan");
    json_array_foreach(days, k, it)
    {
        /* "2026-01-22" -> "Thu 22 Jan" in html and md */
        struct tm tm = {0};
        char text[32];
        time_t t = parse_stamp(json_string_value(it));
        gmtime_r(&t, &tm);
        strftime(text, sizeof text, "%a %d %b", &tm);
        if (text[4] == '0')
            memmove(text + 4, text + 5, strlen(text + 5) + 1);
        assert_non_null(strstr(html, text));
        assert_non_null(strstr(md, text));
    }

    /* csv: the findings table, one row per finding of the json report, same ids and statuses */
    json_t *items = json_object_get(fd, "items");
    assert_int_equal(count_of(csv, "\r\n"), json_array_size(items) + 1);
    const char *row = strstr(csv, "\r\n") + 2;
    json_array_foreach(items, k, it)
    {
        char want[64];
        snprintf(want, sizeof want, "%lld,%s,", (long long)jint(it, "finding_id"),
                 jstr(it, "status"));
        if (strncmp(row, want, strlen(want)) != 0)
            fail_msg("csv row %zu: want it to start with %s: %.80s", k, want, row);
        /* the next row starts after the CRLF that ends this one (outside quotes) */
        int quoted = 0;
        while (*row && !(row[0] == '\r' && row[1] == '\n' && !quoted)) {
            if (*row == '"')
                quoted = !quoted;
            row++;
        }
        row += 2;
    }

    const char *dir = getenv("REPORT_SAVE_DIR");
    if (dir && *dir && strcmp(week, "2026-W04") == 0) {
        char path[512];
        mkdir(dir, 0755);
        const char *texts[4] = {html, md, csv, NULL};
        const char *names[4] = {"report.html", "report.md", "report.csv", "report.json"};
        char *json_text = report_text("json", week);
        texts[3] = json_text;
        for (int i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            write_text(path, texts[i]);
        }
        free(json_text);
        fprintf(stderr, "report of %s written to %s/\n", week, dir);
    }
    free(html);
    free(md);
    free(csv);
    json_decref(doc);
}

static void test_formats_agree(void **state)
{
    (void)state;
    build_history();
    check_formats("2026-W04");
    check_formats("2026-W02"); /* its last scan was partial */
    /* the partial week names the account that could not be scanned */
    char *html = report_text("html", "2026-W02");
    assert_non_null(strstr(html, "AssumeRole denied"));
    assert_non_null(strstr(html, acct_id(LOCKED)));
    assert_non_null(strstr(html, "Partial coverage"));
    free(html);
}

static void test_week_without_scans(void **state)
{
    (void)state;
    build_history();
    char *html = report_text("html", "2026-W05"), *md = report_text("md", "2026-W05");
    assert_non_null(strstr(html, "No scan ran in week 2026-W05"));
    assert_non_null(strstr(md, "No scan ran in week 2026-W05"));
    assert_int_equal(count_of(html, "<svg"), 1); /* the trend of the weeks before */
    validate_html(html);
    free(html);
    free(md);
    char *csv = report_text("csv", "2026-W05");
    assert_int_equal(count_of(csv, "\r\n"), 1);
    free(csv);
    /* a week long before any scan */
    json_t *doc = report_json("2025-W40");
    assert_string_equal(jstr(doc, "state"), "no_scan_in_week");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(doc, "coverage"), "days_without_scan")), 7);
    json_decref(doc);
    /* --out writes the file */
    char path[] = "/tmp/egressscan-report-out-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(
        cli_run(&fx.cli, NULL, NULL, "report", "--week", "2026-W04", "--out", path, NULL), 0);
    FILE *f = fopen(path, "r");
    char head[64] = "";
    assert_non_null(fgets(head, sizeof head, f));
    fclose(f);
    assert_string_equal(head, "<!DOCTYPE html>\n");
    unlink(path);
}

/* ---- the reader role (SPEC.md section 5): the same report from the views alone ---- */

static void exec_ok(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", q, PQerrorMessage(c));
    PQclear(r);
}

static char *report_as(struct cli *c, const char *format, const char *week)
{
    char *out = NULL, *errout = NULL;
    int rc = cli_run(c, &out, &errout, "report", "--format", format, "--week", week, "--as-of", NOW,
                     NULL);
    if (rc != 0)
        fail_msg("report --format %s --week %s exited %d: %s", format, week, rc,
                 errout ? errout : "");
    free(errout);
    assert_non_null(out);
    return out;
}

/* A login that is only a member of egressscan_reader makes, for every week (past, latest,
 * without scans), exactly the report the scanner's role makes, in html and json. */
static void test_reader_makes_the_same_report(void **state)
{
    (void)state;
    build_history();
    PGconn *c = PQconnectdb(fx.pg.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    exec_ok(c, "DROP ROLE IF EXISTS analyst");
    exec_ok(c, "CREATE ROLE analyst LOGIN IN ROLE egressscan_reader");
    /* the login reads no table: the check would be empty otherwise */
    char url[600];
    snprintf(url, sizeof url, "%s", fx.pg.url);
    char *at = strstr(url, "postgres@");
    assert_non_null(at);
    memmove(at + strlen("analyst@"), at + strlen("postgres@"),
            strlen(at + strlen("postgres@")) + 1);
    memcpy(at, "analyst@", strlen("analyst@"));
    PGconn *a = PQconnectdb(url);
    assert_int_equal(PQstatus(a), CONNECTION_OK);
    PGresult *r = PQexec(a, "SELECT count(*) FROM egressscan.finding");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQerrorMessage(a), "permission denied"));
    PQclear(r);
    PQfinish(a);

    struct cli reader = fx.cli;
    for (int i = 0; i < reader.n; i++)
        reader.env[i] = reader.strs[i];
    cli_setenv(&reader, "DATABASE_URL", url);
    static const char *const formats[] = {"html", "json"};
    for (size_t w = 0; w < sizeof weeks / sizeof weeks[0]; w++)
        for (int f = 0; f < 2; f++) {
            char *mine = report_as(&fx.cli, formats[f], weeks[w].week);
            char *theirs = report_as(&reader, formats[f], weeks[w].week);
            if (strcmp(mine, theirs) != 0)
                fail_msg("report --week %s --format %s differs as egressscan_reader", weeks[w].week,
                         formats[f]);
            free(mine);
            free(theirs);
        }

    /* An old week shows each finding's details as they were that week: a later scan that
     * rewrites them (here: the record rewritten by hand) changes the latest week only. */
    char *old_before = report_as(&reader, "json", "2026-W02");
    char *new_before = report_as(&reader, "json", "2026-W04");
    exec_ok(c, "CREATE TEMP TABLE saved AS SELECT finding_id, details FROM egressscan.finding");
    exec_ok(c, "UPDATE egressscan.finding SET details = details || "
               "'{\"note\": \"rewritten later\", \"reason\": \"rewritten later\"}'");
    char *old_after = report_as(&reader, "json", "2026-W02");
    char *new_after = report_as(&reader, "json", "2026-W04");
    exec_ok(c, "UPDATE egressscan.finding f SET details = s.details FROM saved s"
               " WHERE s.finding_id = f.finding_id");
    assert_string_equal(old_before, old_after);
    assert_null(strstr(old_after, "rewritten later"));
    assert_non_null(strstr(new_after, "rewritten later"));
    assert_string_not_equal(new_before, new_after);
    free(old_before);
    free(old_after);
    free(new_before);
    free(new_after);
    exec_ok(c, "DROP ROLE analyst");
    PQfinish(c);
}

/* ---- the fleet across scans, written through the storage API ---- */

/* Three accounts (A and B in Root/Prod, C in Root/Dev), two regions each, clusters in eu-west-1:
 * a1 CUSTOMER_ROUTED (compliant), a2 AWS_MANAGED (non-compliant), b1 AWS_MANAGED (non-compliant),
 * b2 CUSTOMER_ROUTED (compliant), c1 CUSTOMER_ISOLATED (compliant). Four scans:
 *   S1 2026-W02 Tue, fleet: everything ok;
 *   S2 2026-W02 Fri, targeted (--accounts A): A again, the SCPs not read;
 *   S3 2026-W03 Tue, fleet: B's role cannot be assumed (partial);
 *   S4 2026-W04 Tue, targeted (--accounts A).
 * The report of each week must describe the fleet: a targeted scan shrinks neither the rate's
 * population nor the clusters by mode nor the open findings, and B's clusters are counted apart
 * (not verified) while its findings stay open (carried over). */
#define FA "111100000001"
#define FB "111100000002"
#define FC "111100000003"
#define TUE_W02 1767693600.0 /* 2026-01-06T10:00:00Z */
#define FLEET_DAY 86400.0

enum { CA1, CA2, CB1, CB2, CC1, N_FCL };
static const struct {
    const char *account, *name, *mode;
    enum cluster_judgement judged;
} fcl[N_FCL] = {{FA, "a1", "CUSTOMER_ROUTED", JUDGED_COMPLIANT},
                {FA, "a2", "AWS_MANAGED", JUDGED_NONCOMPLIANT},
                {FB, "b1", "AWS_MANAGED", JUDGED_NONCOMPLIANT},
                {FB, "b2", "CUSTOMER_ROUTED", JUDGED_COMPLIANT},
                {FC, "c1", "CUSTOMER_ISOLATED", JUDGED_COMPLIANT}};

struct fleet_db {
    char url[600];
    struct db *db;
    char arn[N_FCL][128];
    struct cluster cl[N_FCL];
};

static void fleet_ok(int rc, const struct err *e, const char *what)
{
    if (rc < 0)
        fail_msg("%s: %s (%s)", what, e->message, e->code);
}

static void fleet_db_open(struct fleet_db *f)
{
    PGconn *admin = PQconnectdb(fx.pg.url);
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    PGresult *r = PQexec(admin, "CREATE DATABASE es_report_fleet"); /* test-only DDL */
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(admin);
    snprintf(f->url, sizeof f->url, "postgresql://postgres@127.0.0.1:%d/es_report_fleet",
             fx.pg.port);
    struct err e;
    err_clear(&e);
    f->db = db_connect(f->url, &e);
    if (!f->db)
        fail_msg("db_connect: %s (%s)", e.message, e.code);
    fleet_ok(db_migrate(f->db, NULL, &e), &e, "db_migrate");
    for (int i = 0; i < N_FCL; i++) {
        snprintf(f->arn[i], sizeof f->arn[i], "arn:aws:eks:eu-west-1:%s:cluster/%s", fcl[i].account,
                 fcl[i].name);
        f->cl[i] = (struct cluster){.name = fcl[i].name,
                                    .arn = f->arn[i],
                                    .egress_mode = fcl[i].mode,
                                    .status = "ACTIVE",
                                    .endpoint_public_access = -1,
                                    .endpoint_private_access = -1,
                                    .raw_json = "{}"};
    }
}

/* One scan of the accounts in `accts` (a string of 'A', 'B', 'C'); `denied` is the account whose
 * role cannot be assumed (0: none). Raises a non-compliant finding per non-compliant cluster it
 * scanned ok, and unscanned_target for the denied account. Returns the scan id. */
static long long fleet_scan(struct fleet_db *f, double at, const char *accts, int targeted,
                            char denied, long long intent)
{
    static const char *const ids[3] = {FA, FB, FC};
    static const char *const ous[3] = {"Root/Prod", "Root/Prod", "Root/Dev"};
    static const char *const names[3] = {"acct-a", "acct-b", "acct-c"};
    struct err e;
    err_clear(&e);
    long long scan = 0;
    fleet_ok(db_scan_begin(f->db, at, "{\"test\":true}", &scan, NULL, &e), &e, "db_scan_begin");
    fleet_ok(db_set_scan_scope(f->db, scan, targeted, &e), &e, "db_set_scan_scope");
    fleet_ok(db_set_scps_state(f->db, scan, targeted ? ORG_SCPS_NOT_READ : ORG_SCPS_READ, &e), &e,
             "db_set_scps_state");
    struct account a[3];
    struct target_result t[6];
    const struct target_result *pt[6];
    struct finding fd[N_FCL + 1];
    struct cluster_judged j[N_FCL];
    struct cluster eu[3][N_FCL];
    size_t na = 0, nt = 0, nf = 0, nj = 0;
    for (int k = 0; k < 3; k++) {
        if (!strchr(accts, 'A' + k))
            continue;
        a[na++] = (struct account){.id = ids[k],
                                   .name = names[k],
                                   .status = "ACTIVE",
                                   .ou_path = ous[k],
                                   .ou_id_path = "r-ab12"};
        if (denied == 'A' + k) {
            t[nt] = (struct target_result){.account_id = ids[k],
                                           .region = "*",
                                           .status = TARGET_ASSUME_ROLE_DENIED,
                                           .error_code = "AccessDenied",
                                           .error_message = "not authorized to assume the role",
                                           .scanned_at = at + 10};
            pt[nt] = &t[nt];
            nt++;
            fd[nf++] = (struct finding){.kind = "unscanned_target",
                                        .severity = "high",
                                        .account_id = ids[k],
                                        .region = "*",
                                        .source = "coverage",
                                        .details_json = "{\"status\":\"assume_role_denied\"}"};
            continue;
        }
        size_t n = 0;
        for (int i = 0; i < N_FCL; i++) {
            if (strcmp(fcl[i].account, ids[k]) != 0)
                continue;
            eu[k][n++] = f->cl[i];
            j[nj++] = (struct cluster_judged){f->arn[i], fcl[i].judged};
            if (fcl[i].judged == JUDGED_NONCOMPLIANT)
                fd[nf++] = (struct finding){.kind = "noncompliant_cluster",
                                            .severity = "high",
                                            .account_id = ids[k],
                                            .region = "eu-west-1",
                                            .cluster_arn = f->arn[i],
                                            .observed_mode = fcl[i].mode,
                                            .source = "policy:prod",
                                            .details_json = "{\"reason\":\"no_scp\"}"};
        }
        t[nt] = (struct target_result){.account_id = ids[k],
                                       .region = "eu-west-1",
                                       .status = TARGET_OK,
                                       .clusters = eu[k],
                                       .n_clusters = n,
                                       .scanned_at = at + 10};
        pt[nt] = &t[nt];
        nt++;
        t[nt] = (struct target_result){.account_id = ids[k],
                                       .region = "us-east-1",
                                       .status = TARGET_OK,
                                       .scanned_at = at + 10};
        pt[nt] = &t[nt];
        nt++;
    }
    fleet_ok(db_write_accounts(f->db, scan, a, na, &e), &e, "db_write_accounts");
    fleet_ok(db_write_targets(f->db, scan, pt, nt, &e), &e, "db_write_targets");
    struct findings_context ctx = {.scps_read = !targeted,
                                   .have_policy = 1,
                                   .intent_scan_id = targeted ? intent : scan,
                                   .judgements = j,
                                   .n_judgements = nj};
    fleet_ok(db_write_findings_ctx(f->db, scan, fd, nf, &ctx, NULL, &e), &e,
             "db_write_findings_ctx");
    struct scan_totals totals = {0, 0, 0};
    fleet_ok(
        db_scan_finish(f->db, scan, at + 60, denied ? "partial" : "succeeded", &totals, NULL, &e),
        &e, "db_scan_finish");
    return scan;
}

static json_t *fleet_report(struct cli *c, const char *week, char **md)
{
    char *out = NULL;
    if (cli_run(c, &out, NULL, "report", "--format", "json", "--week", week, "--as-of", NOW,
                NULL) != 0)
        fail_msg("report --week %s failed", week);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    if (!doc)
        fail_msg("report json is not JSON (%s): %.500s", je.text, out);
    free(out);
    *md = NULL;
    if (cli_run(c, md, NULL, "report", "--format", "md", "--week", week, "--as-of", NOW, NULL) != 0)
        fail_msg("report --format md --week %s failed", week);
    return doc;
}

/* The open finding of the report about cluster `name` (or the account-level one when name is
 * NULL) of account `acct`; NULL when there is none. */
static json_t *open_item(json_t *doc, const char *acct, const char *name)
{
    size_t k;
    json_t *it, *found = NULL;
    json_array_foreach(json_object_get(json_object_get(doc, "findings"), "items"), k, it)
    {
        const char *cn = jstr(it, "cluster_name");
        if (json_is_true(json_object_get(it, "open_at_end")) &&
            strcmp(jstr(it, "account_id"), acct) == 0 &&
            (name ? cn && strcmp(cn, name) == 0 : cn == NULL))
            found = it;
    }
    return found;
}

static json_t *account_row(json_t *doc, const char *acct)
{
    size_t k;
    json_t *it, *found = NULL;
    json_array_foreach(json_object_get(json_object_get(doc, "fleet"), "accounts"), k, it)
    {
        if (strcmp(jstr(it, "account_id"), acct) == 0)
            found = it;
    }
    return found;
}

/* The numbers every week's report must have: rate (compliant of compliant + non-compliant
 * verified clusters), verified clusters by mode, unverified apart, open and carried-over
 * findings, the targets of the fleet not scanned. */
static void expect_fleet(json_t *doc, const char *week, const char *rate, long verified,
                         const long by_mode[N_MODES], long unverified, long open, long carried,
                         long targets_total, long targets_ok, size_t not_scanned)
{
    assert_string_equal(jstr(doc, "week"), week);
    assert_string_equal(jstr(doc, "state"), "ok");
    assert_string_equal(jstr(doc, "rate_text"), rate);
    json_t *c = json_object_get(json_object_get(doc, "last_scan"), "compliance");
    assert_int_equal(jint(c, "clusters"), verified);
    assert_int_equal(jint(c, "unverified"), unverified);
    json_t *fleet = json_object_get(doc, "fleet");
    assert_int_equal(jint(fleet, "clusters"), verified);
    assert_int_equal(jint(fleet, "unverified"), unverified);
    for (int m = 0; m < N_MODES; m++)
        assert_int_equal(jint(json_object_get(fleet, "by_mode"), mode_keys[m]), by_mode[m]);
    json_t *fd = json_object_get(doc, "findings");
    assert_int_equal(jint(fd, "open"), open);
    assert_int_equal(jint(fd, "carried_over"), carried);
    json_t *cov = json_object_get(doc, "coverage");
    assert_int_equal(jint(cov, "targets_total"), targets_total);
    assert_int_equal(jint(cov, "targets_ok"), targets_ok);
    assert_int_equal(json_array_size(json_object_get(cov, "not_scanned")), not_scanned);
}

/* B's clusters are counted apart, its findings still open, its target listed with when it was
 * last scanned ok: the fleet after S3 (the same whether S3 is the latest scan or not). */
static void expect_b_unverified(json_t *doc, const char *md, const char *b_last_ok)
{
    static const long modes[N_MODES] = {1, 1, 1, 0, 0}; /* a2, a1, c1 */
    expect_fleet(doc, "2026-W03", "66.7%", 3, modes, 2, 3, 1, 5, 4, 1);
    json_t *b = account_row(doc, FB);
    assert_non_null(b);
    assert_int_equal(jint(b, "clusters"), 0);
    assert_int_equal(jint(b, "unverified"), 2);
    assert_int_equal(jint(account_row(doc, FA), "unverified"), 0);
    json_t *b1 = open_item(doc, FB, "b1");
    assert_non_null(b1);
    assert_true(json_is_true(json_object_get(b1, "carried_over")));
    assert_string_equal(jstr(b1, "last_seen"), "2026-01-06T10:00:00Z");
    json_t *a2 = open_item(doc, FA, "a2");
    assert_non_null(a2);
    assert_false(json_is_true(json_object_get(a2, "carried_over")));
    assert_non_null(open_item(doc, FB, NULL)); /* unscanned_target, raised by S3 */
    json_t *t = json_array_get(json_object_get(json_object_get(doc, "coverage"), "not_scanned"), 0);
    assert_string_equal(jstr(t, "account_id"), FB);
    assert_string_equal(jstr(t, "region"), "*");
    assert_string_equal(jstr(t, "status"), "assume_role_denied");
    assert_string_equal(jstr(t, "scanned_at"), "2026-01-13T10:00:10Z");
    assert_string_equal(jstr(t, "last_ok_at"), b_last_ok);
    assert_non_null(strstr(md, "**2 clusters not verified (their account or region could not be "
                               "scanned): not in these numbers.**"));
    assert_non_null(strstr(md, "1 of them carried over: not raised again by the week's last "
                               "scan"));
    assert_non_null(strstr(md, "| not verified since 2026-01-06 10:00 |"));
}

static void test_report_is_the_fleet_across_scans(void **state)
{
    (void)state;
    struct fleet_db f;
    fleet_db_open(&f);
    struct cli c;
    cli_init(&c, "AKIDUNUSED", "unused", fx.moto.url, f.url);
    char *md = NULL;
    json_t *doc;

    long long s1 = fleet_scan(&f, TUE_W02, "ABC", 0, 0, 0);
    long long s2 = fleet_scan(&f, TUE_W02 + 3 * FLEET_DAY, "A", 1, 0, s1);
    /* 2026-W02 ends with the targeted S2: the report is still the whole fleet (5 clusters, 3 of 5
     * compliant), b1's finding open though S2 did not raise it */
    static const long w02_modes[N_MODES] = {2, 2, 1, 0, 0};
    doc = fleet_report(&c, "2026-W02", &md);
    expect_fleet(doc, "2026-W02", "60.0%", 5, w02_modes, 0, 2, 1, 6, 6, 0);
    assert_int_equal(jint(json_object_get(doc, "last_scan"), "scan_id"), s2);
    assert_string_equal(jstr(json_object_get(doc, "last_scan"), "scope"), "targeted");
    json_t *b1 = open_item(doc, FB, "b1");
    assert_non_null(b1);
    assert_true(json_is_true(json_object_get(b1, "carried_over")));
    json_t *items =
        json_object_get(json_object_get(json_object_get(doc, "coverage"), "scans"), "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(jstr(json_array_get(items, 0), "scope"), "fleet");
    assert_string_equal(jstr(json_array_get(items, 0), "scps_state"), "read");
    assert_string_equal(jstr(json_array_get(items, 1), "scope"), "targeted");
    assert_string_equal(jstr(json_array_get(items, 1), "scps_state"), "not_read");
    assert_non_null(strstr(md, "| targeted (--accounts or --ou) | not read (by design) |"));
    assert_null(strstr(md, "not verified (")); /* nothing unverified this week */
    json_decref(doc);
    free(md);

    /* 2026-W03: the fleet scan S3 cannot assume B's role; S3 is the latest scan (the views) */
    long long s3 = fleet_scan(&f, TUE_W02 + 7 * FLEET_DAY, "ABC", 0, 'B', 0);
    doc = fleet_report(&c, "2026-W03", &md);
    assert_int_equal(jint(json_object_get(doc, "last_scan"), "scan_id"), s3);
    expect_b_unverified(doc, md, "2026-01-06T10:00:10Z");
    json_t *current = doc;
    free(md);

    /* 2026-W04: a targeted scan of A; the fleet keeps B apart and its findings open */
    fleet_scan(&f, TUE_W02 + 14 * FLEET_DAY, "A", 1, 0, s3);
    static const long w04_modes[N_MODES] = {1, 1, 1, 0, 0};
    doc = fleet_report(&c, "2026-W04", &md);
    expect_fleet(doc, "2026-W04", "66.7%", 3, w04_modes, 2, 3, 2, 5, 4, 1);
    assert_non_null(open_item(doc, FB, "b1"));
    assert_non_null(open_item(doc, FB, NULL));
    json_decref(doc);
    free(md);

    /* 2026-W03 again, now a week in the past (read from the history): the same numbers */
    doc = fleet_report(&c, "2026-W03", &md);
    expect_b_unverified(doc, md, "2026-01-06T10:00:10Z");
    assert_true(json_equal(json_object_get(doc, "fleet"), json_object_get(current, "fleet")));
    assert_true(json_equal(json_object_get(json_object_get(doc, "coverage"), "not_scanned"),
                           json_object_get(json_object_get(current, "coverage"), "not_scanned")));
    json_decref(doc);
    json_decref(current);
    free(md);
    /* and 2026-W02, read from the history after everything that followed */
    doc = fleet_report(&c, "2026-W02", &md);
    expect_fleet(doc, "2026-W02", "60.0%", 5, w02_modes, 0, 2, 1, 6, 6, 0);
    json_decref(doc);
    free(md);
    db_close(f.db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_database),
        cmocka_unit_test(test_history_weeks),
        cmocka_unit_test(test_latest_week_matches_views),
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_week_without_scans),
        cmocka_unit_test(test_reader_makes_the_same_report),
        cmocka_unit_test(test_report_is_the_fleet_across_scans),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
