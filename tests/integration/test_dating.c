/* test_dating.c - every mode change dated from EKS itself (issue 17, section 2): build/fakeaws
 * --updates serves, for chosen clusters, a mode changed by a Successful, a Failed and an
 * InProgress ControlPlaneEgressUpdate, a cluster replaced under the same name (no egress update)
 * and a cluster created since the last scan; --before serves the fleet as it was. egressscan scan
 * (real PostgreSQL) scans it before, again unchanged, then after the changes, then again: the
 * history's changed_at is the update's createdAt, a failed or in-progress update is recorded as
 * such and dates nothing, a replaced cluster says so, and the ListUpdates/DescribeUpdate calls
 * (counted by the fake) are those of the changed clusters only: none for an unchanged fleet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "scanner/dating.h"
#include "tests/support/cli.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"

static struct {
    char tmp[64];
    struct pgtest pg;
} fx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The fleet: 12 accounts, 2 regions, ~2 clusters per target. */
#define FLEET_ARGS                                                                                 \
    "--accounts", "12", "--regions", "2", "--clusters-per-account-region-mean", "2", "--seed",     \
        "17", "--latency-ms", "1"

/* The changes: kind -> the first cluster (by its index in the truth) that fits it, each in an
 * account of its own where the fleet allows. */
struct change {
    const char *kind;
    const char *want_status; /* update_status expected after the scan that sees it */
    long index;
    char account[16], region[32], name[128];
};

static int fits(const char *kind, json_t *cl)
{
    json_t *m = json_object_get(cl, "egress_mode");
    const char *mode = json_is_string(m) ? json_string_value(m) : NULL;
    int routed = mode && strcmp(mode, "CUSTOMER_ROUTED") == 0;
    if (strcmp(kind, "replaced") == 0 || strcmp(kind, "created") == 0)
        return routed; /* created: a mode other than the default, so that it is looked up */
    return !routed;
}

static void pick_changes(json_t *truth, struct change *ch, size_t n)
{
    json_t *clusters = json_object_get(truth, "clusters");
    for (size_t k = 0; k < n; k++) {
        ch[k].index = -1;
        for (int pass = 0; pass < 2 && ch[k].index < 0; pass++) {
            size_t i;
            json_t *cl;
            json_array_foreach(clusters, i, cl)
            {
                int taken = 0, same_account = 0;
                for (size_t j = 0; j < k; j++) {
                    taken |= ch[j].index == (long)i;
                    same_account |= strcmp(ch[j].account, jstr(cl, "account_id")) == 0;
                }
                if (taken || (pass == 0 && same_account) || !fits(ch[k].kind, cl))
                    continue;
                ch[k].index = (long)i;
                snprintf(ch[k].account, sizeof ch[k].account, "%s", jstr(cl, "account_id"));
                snprintf(ch[k].region, sizeof ch[k].region, "%s", jstr(cl, "region"));
                snprintf(ch[k].name, sizeof ch[k].name, "%s", jstr(cl, "name"));
                break;
            }
        }
        if (ch[k].index < 0)
            fail_msg("the fleet has no cluster for a %s change", ch[k].kind);
    }
}

static PGresult *query(PGconn *db, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    return r;
}

static long query_long(PGconn *db, const char *sql)
{
    PGresult *r = query(db, sql, 0, NULL);
    assert_int_equal(PQntuples(r), 1);
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* Requests the fake served for op since `before` (a stats snapshot). */
static long served(const struct fakeproc *f, json_t *before, const char *op)
{
    json_t *now = fakeproc_stats(f, 0);
    assert_non_null(now);
    long v = fakeproc_stat(now, "operations", op) - fakeproc_stat(before, "operations", op);
    json_decref(now);
    return v;
}

struct scan_calls {
    long list_updates, describe_updates, assume_role, total;
};

/* One scan against f into the database of c; the dating calls it made. */
static struct scan_calls scan(struct cli *c, const struct fakeproc *f, const char *what)
{
    cli_setenv(c, "AWS_ENDPOINT_URL", f->url);
    json_t *before = fakeproc_stats(f, 0);
    assert_non_null(before);
    char *out = NULL, *err = NULL;
    double t0 = now_s();
    int rc = cli_run(c, &out, &err, "scan", "--no-progress", "--log-level", "info", NULL);
    double took = now_s() - t0;
    if (rc != 0)
        fail_msg("%s: scan exited %d:\n%s\n%s", what, rc, out ? out : "", err ? err : "");
    struct scan_calls s = {served(f, before, "ListUpdates"), served(f, before, "DescribeUpdate"),
                           served(f, before, "AssumeRole"), 0};
    json_t *now = fakeproc_stats(f, 0);
    s.total = fakeproc_stat(now, NULL, "requests") - fakeproc_stat(before, NULL, "requests");
    json_decref(now);
    json_decref(before);
    fprintf(stderr,
            "  %s: %.2f s, %ld requests (AssumeRole %ld, ListUpdates %ld, DescribeUpdate %ld)\n",
            what, took, s.total, s.assume_role, s.list_updates, s.describe_updates);
    free(out);
    free(err);
    return s;
}

static void start_fake(struct fakeproc *f, const char *name, const char *spec, int before)
{
    const char *args[20] = {FLEET_ARGS};
    size_t k = 0;
    while (args[k])
        k++;
    if (spec) {
        args[k++] = "--updates";
        args[k++] = spec;
    }
    if (before)
        args[k++] = "--before";
    args[k] = NULL;
    if (fakeproc_start(f, fx.tmp, name, 0, args) < 0)
        fail_msg("fakeaws %s did not start", name);
}

/* The truth's updates of the changed cluster ch (after the change). */
static json_t *truth_updates(json_t *truth, const struct change *ch)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(truth, "updates"), i, u)
    {
        if (json_integer_value(json_object_get(u, "index")) == ch->index)
            return json_object_get(u, "updates");
    }
    fail_msg("the truth has no updates for cluster %ld", ch->index);
    return NULL;
}

static void test_mode_changes_dated_from_eks(void **state)
{
    (void)state;
    struct change ch[] = {
        {"successful", "Successful", 0, "", "", ""},  {"failed", "Failed", 0, "", "", ""},
        {"in_progress", "InProgress", 0, "", "", ""}, {"replaced", "none", 0, "", "", ""},
        {"created", "none", 0, "", "", ""},
    };
    const size_t n_ch = sizeof ch / sizeof ch[0];

    /* the fleet as generated, to choose the clusters that change */
    struct fakeproc f;
    start_fake(&f, "plain", NULL, 0);
    pick_changes(f.truth, ch, n_ch);
    assert_int_equal(fakeproc_stop(&f), 0);
    char spec[256];
    size_t o = 0;
    for (size_t k = 0; k < n_ch; k++)
        o += (size_t)snprintf(spec + o, sizeof spec - o, "%s%ld:%s", k ? "," : "", ch[k].index,
                              ch[k].kind);

    char url[256];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres", fx.pg.port);
    struct cli c;
    cli_init(&c, BASE_KEY, BASE_SECRET, "http://127.0.0.1:1", url);
    assert_int_equal(cli_run(&c, NULL, NULL, "migrate", NULL), 0);
    PGconn *db = PQconnectdb(url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);

    /* 1. before the changes: the first scan of every target dates nothing, nor does a rescan */
    start_fake(&f, "before", spec, 1);
    struct scan_calls s = scan(&c, &f, "first scan");
    assert_int_equal(s.list_updates, 0);
    assert_int_equal(s.describe_updates, 0);
    s = scan(&c, &f, "unchanged rescan");
    assert_int_equal(s.list_updates, 0);
    assert_int_equal(s.describe_updates, 0);
    assert_int_equal(query_long(db, "SELECT count(*) FROM egressscan.cluster_history "
                                    "WHERE update_status IS NOT NULL OR changed_at IS NOT NULL"),
                     0);
    assert_int_equal(fakeproc_stop(&f), 0);

    /* 2. after them: exactly the changed clusters are looked up */
    start_fake(&f, "after", spec, 0);
    long want_describes = 0;
    for (size_t k = 0; k < n_ch; k++)
        want_describes += (long)json_array_size(truth_updates(f.truth, &ch[k]));
    s = scan(&c, &f, "scan after the changes");
    assert_int_equal(s.list_updates, (long)n_ch); /* one page each */
    assert_int_equal(s.describe_updates, want_describes);
    assert_true(s.describe_updates <= (long)n_ch * DATING_DESCRIBES_MAX);
    fprintf(stderr, "  %zu changed clusters: %.1f calls each (ListUpdates + DescribeUpdate)\n",
            n_ch, (double)(s.list_updates + s.describe_updates) / (double)n_ch);
    assert_int_equal(fakeproc_diff_db(&f, url, NULL), 0);

    for (size_t k = 0; k < n_ch; k++) {
        const char *p[3] = {ch[k].account, ch[k].region, ch[k].name};
        PGresult *r = query(db,
                            "SELECT egress_mode, coalesce(update_status, '(null)'), "
                            "coalesce(update_id, ''), "
                            "coalesce(date_part('epoch', changed_at)::bigint::text, ''), "
                            "valid_to IS NULL "
                            "FROM egressscan.cluster_history WHERE account_id = $1 AND "
                            "region = $2 AND cluster_name = $3 ORDER BY valid_from DESC",
                            3, p);
        assert_true(PQntuples(r) >= 1);
        const char *status = PQgetvalue(r, 0, 1), *id = PQgetvalue(r, 0, 2);
        const char *at = PQgetvalue(r, 0, 3);
        fprintf(stderr, "  %-11s %s: %s %s %s %s\n", ch[k].kind, ch[k].name, PQgetvalue(r, 0, 0),
                status, id[0] ? id : "-", at[0] ? at : "-");
        if (strcmp(status, ch[k].want_status) != 0)
            fail_msg("%s: update_status %s, expected %s", ch[k].kind, status, ch[k].want_status);
        assert_string_equal(PQgetvalue(r, 0, 4), "t"); /* the period the scan opened, open */
        /* a mode change closed the period before it; a created cluster has none */
        assert_int_equal(PQntuples(r), strcmp(ch[k].kind, "created") == 0 ? 1 : 2);
        /* the egress update towards the new mode, from the truth */
        json_t *want = NULL;
        size_t i;
        json_t *u;
        json_array_foreach(truth_updates(f.truth, &ch[k]), i, u)
        {
            if (strcmp(jstr(u, "type"), "ControlPlaneEgressUpdate") == 0 &&
                strcmp(jstr(u, "value"), PQgetvalue(r, 0, 0)) == 0)
                want = u;
        }
        if (strcmp(ch[k].want_status, "none") == 0) {
            assert_null(want);
            assert_string_equal(id, "");
            assert_string_equal(at, "");
        } else {
            assert_non_null(want);
            assert_string_equal(id, jstr(want, "id"));
            assert_string_equal(status, jstr(want, "status"));
            if (strcmp(status, "Successful") == 0) {
                /* changed_at is the update's createdAt */
                char t[32];
                snprintf(t, sizeof t, "%lld",
                         (long long)json_integer_value(json_object_get(want, "created_at")));
                assert_string_equal(at, t);
            } else {
                assert_string_equal(at, ""); /* failed, in progress: undated */
            }
        }
        PQclear(r);
    }
    /* nothing else was dated */
    assert_int_equal(query_long(db, "SELECT count(*) FROM egressscan.cluster_history "
                                    "WHERE update_status IS NOT NULL"),
                     (long)n_ch);

    /* 3. the changed fleet scanned again: unchanged, so nothing is looked up */
    s = scan(&c, &f, "rescan after the changes");
    assert_int_equal(s.list_updates, 0);
    assert_int_equal(s.describe_updates, 0);
    assert_int_equal(query_long(db, "SELECT count(*) FROM egressscan.cluster_history "
                                    "WHERE update_status IS NOT NULL"),
                     (long)n_ch);
    assert_int_equal(fakeproc_stop(&f), 0);
    PQfinish(db);
}

static int group_setup(void **state)
{
    (void)state;
    if (!fakeproc_bin())
        return -1;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/egressscan-dating-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    return pgtest_start(&fx.pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pgtest_stop(&fx.pg);
    char *rm[] = {"rm", "-rf", fx.tmp, NULL};
    procs_run(rm, NULL, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_changes_dated_from_eks),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
