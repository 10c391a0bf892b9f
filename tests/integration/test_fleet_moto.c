/* test_fleet_moto.c - the record across scans (SPEC.md section 5, issue 12) end to end: one
 * organization in moto (signature and IAM checks on; tests/data/fleets/sequence.json) goes
 * through one sequence of scans into a real PostgreSQL, and after each step the public views
 * (scans, coverage, current_clusters, cluster_history, current_drift, daily_compliance) must say
 * what the step implies, with every expected number computed from the seed file and the declared
 * policy below: a fleet scan; targeted scans (with and without --org-role-arn) that change
 * nothing else; one account's role denied; the SCPs unreadable; an account removed from the
 * organization; a Control Tower region-deny SCP; everything restored. Then the role denial and
 * the SCP failure again through `scan --enqueue` + `egressscan worker`. A table of the views'
 * numbers per step goes to stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tests/support/cli.h"
#include "tests/support/procs.h"

static const char *const regions[] = {"eu-west-1", "us-east-1", "ap-southeast-2"};
#define N_REGIONS 3
#define REGIONS_CSV "eu-west-1,us-east-1,ap-southeast-2"
#define SEED_FILE "tests/data/fleets/sequence.json"

/* ---- the declared policy, and what it implies for the seed ---- */

enum { AM = 1, CR = 2, CI = 4, ALL_MODES = AM | CR | CI };

/* In precedence order: account rules, then the deeper OU, then the shallower (SPEC section 6).
 * The policy file is written from this table, and the expectations are computed from it. */
static const struct rule {
    const char *id;
    const char *ou;      /* OU name in the seed (its subtree), or NULL */
    const char *account; /* account name in the seed, or NULL */
    unsigned modes;
    int require_scp;
} rules[] = {
    {"reg3-isolated", NULL, "reg3", CI, 0},       /* the OU's SCP denies CI: scp_conflict */
    {"sandbox", "Sandbox", NULL, ALL_MODES, 0},   /* deeper than Workloads: wins there */
    {"regulated", "Regulated", NULL, CR, 1},      /* enforced by the OU's SCP */
    {"workloads", "Workloads", NULL, CR | CI, 1}, /* no SCP: unenforced_intent */
};
static const struct rule default_rule = {"default", NULL, NULL, ALL_MODES, 0};

static unsigned mode_bit(const char *mode)
{
    if (!mode || strcmp(mode, "AWS_MANAGED") == 0)
        return AM;
    return strcmp(mode, "CUSTOMER_ROUTED") == 0     ? CR
           : strcmp(mode, "CUSTOMER_ISOLATED") == 0 ? CI
                                                    : 0;
}

#define MAX_ACCOUNTS 16
#define MAX_CLUSTERS 64
#define MAX_FINDINGS 64

struct seed_cluster {
    char arn[160];
    const char *account; /* name; "mgmt" for the management account */
    const char *region, *name;
    unsigned mode;
};

static struct {
    struct mototest moto;
    struct pgtest pg;
    json_t *seed;  /* what moto_seed.py made */
    json_t *fleet; /* the seed file */
    PGconn *db;
    struct cli cli;
    char dir[64], config[128], policy[128];
    struct seed_cluster clusters[MAX_CLUSTERS];
    size_t n_clusters;
    const char *accounts[MAX_ACCOUNTS]; /* member account names, in seed order */
    size_t n_accounts;
} fx;

static const char *acct_id(const char *name)
{
    if (strcmp(name, "mgmt") == 0)
        return json_string_value(json_object_get(fx.seed, "management_account_id"));
    return json_string_value(json_object_get(json_object_get(fx.seed, "accounts"), name));
}

static const char *ou_id(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "ous"), name));
}

static const char *scp_id(const char *name)
{
    return json_string_value(json_object_get(json_object_get(fx.seed, "scps"), name));
}

static json_t *fleet_account(const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(fx.fleet, "accounts"), i,
                       a) if (strcmp(json_string_value(json_object_get(a, "name")), name) ==
                              0) return a;
    return NULL;
}

static const char *ou_of(const char *account)
{
    json_t *a = fleet_account(account);
    return a ? json_string_value(json_object_get(a, "ou")) : NULL;
}

/* Whether OU name `ou` is `anc` or below it (the seed's parent links). */
static int ou_under(const char *ou, const char *anc)
{
    while (ou && strcmp(ou, "root") != 0) {
        if (strcmp(ou, anc) == 0)
            return 1;
        const char *parent = "root";
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(fx.fleet, "ous"), i,
                           o) if (strcmp(json_string_value(json_object_get(o, "name")), ou) == 0)
            parent = json_string_value(json_object_get(o, "parent"));
        ou = parent;
    }
    return 0;
}

static const struct rule *rule_for(const char *account)
{
    if (strcmp(account, "mgmt") == 0)
        return &default_rule;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        if (rules[i].account && strcmp(rules[i].account, account) == 0)
            return &rules[i];
        if (rules[i].ou && ou_under(ou_of(account), rules[i].ou))
            return &rules[i];
    }
    return &default_rule;
}

/* The modes a CreateCluster may carry in the account by the seed's attached SCPs: a Deny with
 * StringNotEquals eks:controlPlaneEgressMode X on the path leaves only X (the omitted mode is
 * denied too); otherwise everything. The management account is exempt. */
static unsigned scp_modes(const char *account)
{
    if (strcmp(account, "mgmt") == 0)
        return ALL_MODES;
    unsigned modes = ALL_MODES;
    size_t i, j, k;
    json_t *p, *t, *st;
    json_array_foreach(json_object_get(fx.fleet, "scps"), i, p)
    {
        int applies = 0;
        json_array_foreach(json_object_get(p, "targets"), j, t)
        {
            const char *tg = json_string_value(t);
            if (strcmp(tg, "root") == 0 ||
                (strncmp(tg, "ou:", 3) == 0 && ou_under(ou_of(account), tg + 3)) ||
                (strncmp(tg, "account:", 8) == 0 && strcmp(tg + 8, account) == 0))
                applies = 1;
        }
        if (!applies)
            continue;
        json_array_foreach(json_object_get(json_object_get(p, "content"), "Statement"), k, st)
        {
            json_t *v = json_object_get(
                json_object_get(json_object_get(st, "Condition"), "StringNotEquals"),
                "eks:controlPlaneEgressMode");
            if (json_is_string(v))
                modes &= mode_bit(json_string_value(v));
        }
    }
    return modes;
}

/* The regions the seed's region-guard SCP leaves allowed: its StringNotEquals
 * aws:RequestedRegion list. */
static int region_guard_allows(const char *region)
{
    size_t i, k;
    json_t *p, *st, *r;
    json_array_foreach(json_object_get(fx.fleet, "scps"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")), "region-guard") != 0)
            continue;
        json_array_foreach(json_object_get(json_object_get(p, "content"), "Statement"), k, st)
        {
            json_t *v = json_object_get(
                json_object_get(json_object_get(st, "Condition"), "StringNotEquals"),
                "aws:RequestedRegion");
            json_array_foreach(v, i, r) if (strcmp(json_string_value(r), region) == 0) return 1;
            return 0;
        }
    }
    return 1;
}

static int noncompliant(const struct seed_cluster *c)
{
    return !(rule_for(c->account)->modes & c->mode);
}

/* ---- a step's expectations ---- */

struct step {
    const char *label;
    const char *gone;    /* account out of the organization, or NULL */
    const char *denied;  /* account whose role may not be assumed, or NULL */
    const char *guarded; /* OU the region-guard SCP is attached to, or NULL */
};

static int in_step(const struct step *s, const char *account)
{
    return !s->gone || strcmp(s->gone, account) != 0;
}

/* A target the step cannot scan: the denied account (all regions) or a guarded region. */
static int target_blocked(const struct step *s, const char *account, const char *region)
{
    if (s->denied && strcmp(s->denied, account) == 0)
        return 1;
    return s->guarded && strcmp(account, "mgmt") != 0 && ou_under(ou_of(account), s->guarded) &&
           !region_guard_allows(region);
}

struct expected_finding {
    char kind[32], account[16], region[32], arn[160], source[48];
};

/* The findings the policy and the seed imply for the accounts in the organization, plus one
 * unscanned_target per blocked target. */
static size_t expected_findings(const struct step *s, struct expected_finding *out)
{
    size_t n = 0;
    for (size_t i = 0; i < fx.n_clusters; i++) {
        const struct seed_cluster *c = &fx.clusters[i];
        if (!in_step(s, c->account) || !noncompliant(c))
            continue;
        struct expected_finding *f = &out[n++];
        memset(f, 0, sizeof *f);
        snprintf(f->kind, sizeof f->kind, "noncompliant_cluster");
        snprintf(f->account, sizeof f->account, "%s", c->account);
        snprintf(f->region, sizeof f->region, "%s", c->region);
        snprintf(f->arn, sizeof f->arn, "%s", c->arn);
        snprintf(f->source, sizeof f->source, "policy:%s", rule_for(c->account)->id);
    }
    for (size_t a = 0; a < fx.n_accounts; a++) {
        const char *name = fx.accounts[a];
        if (!in_step(s, name))
            continue;
        const struct rule *r = rule_for(name);
        unsigned permitted = scp_modes(name);
        const char *kind = NULL;
        if (!(permitted & r->modes))
            kind = "scp_conflict";
        else if (r->require_scp && (permitted & ~r->modes))
            kind = "unenforced_intent";
        if (kind) {
            struct expected_finding *f = &out[n++];
            memset(f, 0, sizeof *f);
            snprintf(f->kind, sizeof f->kind, "%s", kind);
            snprintf(f->account, sizeof f->account, "%s", name);
            snprintf(f->region, sizeof f->region, "*");
            snprintf(f->source, sizeof f->source, "policy:%s", r->id);
        }
        if (s->denied && strcmp(s->denied, name) == 0) {
            struct expected_finding *f = &out[n++];
            memset(f, 0, sizeof *f);
            snprintf(f->kind, sizeof f->kind, "unscanned_target");
            snprintf(f->account, sizeof f->account, "%s", name);
            snprintf(f->region, sizeof f->region, "*");
            snprintf(f->source, sizeof f->source, "coverage");
            continue;
        }
        for (int g = 0; g < N_REGIONS; g++) {
            if (!target_blocked(s, name, regions[g]))
                continue;
            /* the region-deny SCP denies CreateCluster there in every mode: the rule's modes are
             * all forbidden in that region (SPEC section 6: one finding per region) */
            if (kind == NULL || strcmp(kind, "scp_conflict") != 0) {
                struct expected_finding *c = &out[n++];
                memset(c, 0, sizeof *c);
                snprintf(c->kind, sizeof c->kind, "scp_conflict");
                snprintf(c->account, sizeof c->account, "%s", name);
                snprintf(c->region, sizeof c->region, "%s", regions[g]);
                snprintf(c->source, sizeof c->source, "policy:%s", r->id);
            }
            struct expected_finding *f = &out[n++];
            memset(f, 0, sizeof *f);
            snprintf(f->kind, sizeof f->kind, "unscanned_target");
            snprintf(f->account, sizeof f->account, "%s", name);
            snprintf(f->region, sizeof f->region, "%s", regions[g]);
            snprintf(f->source, sizeof f->source, "coverage");
        }
    }
    return n;
}

/* ---- the database ---- */

static PGresult *query(const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = {p1, p2};
    int n = p2 ? 2 : p1 ? 1 : 0;
    PGresult *r = PQexecParams(fx.db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("query failed: %s: %s", sql, PQerrorMessage(fx.db));
    return r;
}

static long long query_int(const char *sql, const char *p1, const char *p2)
{
    PGresult *r = query(sql, p1, p2);
    if (PQntuples(r) != 1) {
        PQclear(r);
        fail_msg("query gave no single row: %s", sql);
    }
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* The one value of a one-row query ("(null)" for NULL, "(no row)" when none); the caller frees. */
static char *query_text(const char *sql, const char *p1, const char *p2)
{
    PGresult *r = query(sql, p1, p2);
    char *s = strdup(PQntuples(r) != 1      ? "(no row)"
                     : PQgetisnull(r, 0, 0) ? "(null)"
                                            : PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

static void assert_text(const char *sql, const char *p1, const char *p2, const char *want)
{
    char *got = query_text(sql, p1, p2);
    if (strcmp(got, want) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s [%s, %s]: got '%s', want '%s'", sql, p1 ? p1 : "",
                 p2 ? p2 : "", got, want);
        free(got);
        fail_msg("%s", msg);
    }
    free(got);
}

#define LAST_SCAN "(SELECT max(scan_id) FROM egressscan.scans)"

/* ---- the views' numbers per step ---- */

struct numbers {
    char label[40];
    long long cov_rows, cov_ok, clusters, verified, findings;
    long long d_clusters, d_compliant, d_noncompliant, d_unverified;
};

static struct numbers table[24];
static size_t n_table;

static void print_table(void)
{
    fprintf(stderr, "\n%-34s %9s %12s %8s %28s\n%-34s %9s %12s %8s %28s\n", "step", "coverage",
            "clusters", "open", "daily_compliance", "", "rows/ok", "all/verified", "findings",
            "clusters/compl/noncompl/unver");
    for (size_t i = 0; i < n_table; i++) {
        const struct numbers *t = &table[i];
        char cov[32], cl[32], d[64];
        snprintf(cov, sizeof cov, "%lld/%lld", t->cov_rows, t->cov_ok);
        snprintf(cl, sizeof cl, "%lld/%lld", t->clusters, t->verified);
        snprintf(d, sizeof d, "%lld/%lld/%lld/%lld", t->d_clusters, t->d_compliant,
                 t->d_noncompliant, t->d_unverified);
        fprintf(stderr, "%-34s %9s %12s %8lld %28s\n", t->label, cov, cl, t->findings, d);
    }
    fprintf(stderr, "\n");
}

static void check_findings(const struct step *s);

/* Reads the numbers, checks them against what the step implies, and records them. */
static void check_numbers(const struct step *s)
{
    struct numbers got = {0};
    snprintf(got.label, sizeof got.label, "%s", s->label);
    got.cov_rows = query_int("SELECT count(*) FROM egressscan.coverage", NULL, NULL);
    got.cov_ok =
        query_int("SELECT count(*) FROM egressscan.coverage WHERE status = 'ok'", NULL, NULL);
    got.clusters = query_int("SELECT count(*) FROM egressscan.current_clusters", NULL, NULL);
    got.verified =
        query_int("SELECT count(*) FROM egressscan.current_clusters WHERE verified", NULL, NULL);
    got.findings = query_int("SELECT count(*) FROM egressscan.current_drift", NULL, NULL);
    PGresult *r = query("SELECT clusters, compliant, noncompliant, unverified, scan_id "
                        "FROM egressscan.daily_compliance ORDER BY day DESC LIMIT 1",
                        NULL, NULL);
    assert_int_equal(PQntuples(r), 1);
    got.d_clusters = atoll(PQgetvalue(r, 0, 0));
    got.d_compliant = atoll(PQgetvalue(r, 0, 1));
    got.d_noncompliant = atoll(PQgetvalue(r, 0, 2));
    got.d_unverified = atoll(PQgetvalue(r, 0, 3));
    long long day_scan = atoll(PQgetvalue(r, 0, 4));
    PQclear(r);
    if (n_table < sizeof table / sizeof table[0])
        table[n_table++] = got;
    fprintf(stderr,
            "%s: coverage %lld/%lld clusters %lld/%lld findings %lld daily %lld/%lld/%lld/%lld\n",
            got.label, got.cov_rows, got.cov_ok, got.clusters, got.verified, got.findings,
            got.d_clusters, got.d_compliant, got.d_noncompliant, got.d_unverified);

    /* what the seed and the step imply */
    struct numbers want = {0};
    long long members = 1; /* the management account */
    for (size_t a = 0; a < fx.n_accounts; a++)
        members += in_step(s, fx.accounts[a]);
    want.cov_rows = members * N_REGIONS;
    want.cov_ok = want.cov_rows;
    if (s->denied) {
        want.cov_rows -= N_REGIONS - 1; /* one account-level row instead */
        want.cov_ok -= N_REGIONS;
    }
    for (size_t a = 0; a < fx.n_accounts; a++)
        for (int g = 0; g < N_REGIONS && s->guarded; g++)
            if (in_step(s, fx.accounts[a]) && target_blocked(s, fx.accounts[a], regions[g]) &&
                !(s->denied && strcmp(s->denied, fx.accounts[a]) == 0))
                want.cov_ok--;
    for (size_t i = 0; i < fx.n_clusters; i++) {
        const struct seed_cluster *c = &fx.clusters[i];
        if (!in_step(s, c->account))
            continue;
        want.clusters++;
        if (target_blocked(s, c->account, c->region)) {
            want.d_unverified++;
            continue;
        }
        want.verified++;
        if (noncompliant(c))
            want.d_noncompliant++;
        else
            want.d_compliant++;
    }
    want.d_clusters = want.verified;
    struct expected_finding ef[MAX_FINDINGS];
    want.findings = (long long)expected_findings(s, ef);

    assert_int_equal(got.cov_rows, want.cov_rows);
    assert_int_equal(got.cov_ok, want.cov_ok);
    assert_int_equal(got.clusters, want.clusters);
    assert_int_equal(got.verified, want.verified);
    assert_int_equal(got.d_clusters, want.d_clusters);
    assert_int_equal(got.d_compliant, want.d_compliant);
    assert_int_equal(got.d_noncompliant, want.d_noncompliant);
    assert_int_equal(got.d_unverified, want.d_unverified);
    check_findings(s); /* names the finding that differs */
    assert_int_equal(got.findings, want.findings);
    /* the day's row is the latest finalized scan's */
    assert_int_equal(day_scan, query_int("SELECT max(scan_id) FROM egressscan.scans WHERE status "
                                         "IN ('succeeded', 'partial')",
                                         NULL, NULL));
}

/* current_drift is exactly the expected findings (kind, account, region, cluster, source). */
static void check_findings(const struct step *s)
{
    struct expected_finding ef[MAX_FINDINGS];
    size_t n = expected_findings(s, ef);
    int seen[MAX_FINDINGS] = {0};
    PGresult *r = query("SELECT kind, account_id, region, coalesce(cluster_arn, ''), source "
                        "FROM egressscan.current_drift",
                        NULL, NULL);
    for (int i = 0; i < PQntuples(r); i++) {
        int matched = 0;
        for (size_t k = 0; k < n && !matched; k++) {
            if (!seen[k] && strcmp(ef[k].kind, PQgetvalue(r, i, 0)) == 0 &&
                strcmp(acct_id(ef[k].account), PQgetvalue(r, i, 1)) == 0 &&
                strcmp(ef[k].region, PQgetvalue(r, i, 2)) == 0 &&
                strcmp(ef[k].arn, PQgetvalue(r, i, 3)) == 0 &&
                strcmp(ef[k].source, PQgetvalue(r, i, 4)) == 0)
                matched = seen[k] = 1;
        }
        if (!matched) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: unexpected finding %s %s %s %s %s", s->label,
                     PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                     PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
            PQclear(r);
            fail_msg("%s", msg);
        }
    }
    PQclear(r);
    for (size_t k = 0; k < n; k++)
        if (!seen[k])
            fail_msg("%s: missing finding %s %s %s %s %s", s->label, ef[k].kind, ef[k].account,
                     ef[k].region, ef[k].arn, ef[k].source);
}

/* ---- findings across steps: same finding_id and first_seen ---- */

struct finding_row {
    long long id;
    char first_seen[40], account[16], kind[32];
};

static struct finding_row step1[MAX_FINDINGS];
static size_t n_step1;

static size_t read_findings(struct finding_row *out)
{
    PGresult *r = query("SELECT finding_id, first_seen::text, account_id, kind "
                        "FROM egressscan.current_drift ORDER BY finding_id",
                        NULL, NULL);
    size_t n = 0;
    for (int i = 0; i < PQntuples(r) && n < MAX_FINDINGS; i++, n++) {
        out[n].id = atoll(PQgetvalue(r, i, 0));
        snprintf(out[n].first_seen, sizeof out[n].first_seen, "%s", PQgetvalue(r, i, 1));
        snprintf(out[n].account, sizeof out[n].account, "%s", PQgetvalue(r, i, 2));
        snprintf(out[n].kind, sizeof out[n].kind, "%s", PQgetvalue(r, i, 3));
    }
    PQclear(r);
    return n;
}

/* Every finding of `then` (less those of account `except`) is still open with the same id and
 * first_seen. */
static void assert_carried_over(const struct finding_row *then, size_t n, const char *except,
                                const char *label)
{
    for (size_t i = 0; i < n; i++) {
        if (except && strcmp(then[i].account, acct_id(except)) == 0)
            continue;
        char id[32];
        snprintf(id, sizeof id, "%lld", then[i].id);
        char *fs = query_text("SELECT first_seen::text FROM egressscan.current_drift "
                              "WHERE finding_id = $1::bigint",
                              id, NULL);
        if (strcmp(fs, then[i].first_seen) != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s: finding %s (%s, account %s) first seen %s: now %s",
                     label, id, then[i].kind, then[i].account, then[i].first_seen, fs);
            free(fs);
            fail_msg("%s", msg);
        }
        free(fs);
    }
}

/* ---- moto changes (checks off while they are made) ---- */

static void moto(const char *flag, const char *a1, const char *a2)
{
    assert_int_equal(mototest_set_auth(&fx.moto, 0), 0);
    char *argv[] = {"python3",    "tests/support/moto_seed.py",
                    "--endpoint", fx.moto.url,
                    (char *)flag, (char *)a1,
                    (char *)a2,   NULL};
    char *env[] = {"AWS_DATA_PATH=tests/data/aws-models", NULL};
    int rc = procs_run(argv, env, NULL);
    assert_int_equal(mototest_set_auth(&fx.moto, 1), 0);
    if (rc != 0)
        fail_msg("moto_seed.py %s %s failed", flag, a1 ? a1 : "");
}

/* ---- scans ---- */

static int fleet_scan(void)
{
    char *out = NULL;
    int rc = cli_run(&fx.cli, &out, NULL, "scan", "--config", fx.config, "--no-progress", NULL);
    free(out);
    return rc;
}

static void assert_last_scan(const char *status, const char *scope, const char *scps_state)
{
    char want[96];
    snprintf(want, sizeof want, "%s %s %s %s", status, scope,
             strcmp(scps_state, "read") == 0 || strcmp(scps_state, "disabled") == 0 ? "true"
                                                                                    : "false",
             scps_state);
    assert_text("SELECT status || ' ' || scope || ' ' || coalesce(scps_known::text, 'null') || ' '"
                " || coalesce(scps_state, 'null') FROM egressscan.scans WHERE scan_id = " LAST_SCAN,
                NULL, NULL, want);
}

/* One text per view, to compare steps: coverage statuses, clusters and modes. */
static char *coverage_text(void)
{
    return query_text("SELECT string_agg(account_id || '/' || region || '/' || status, ',' "
                      "ORDER BY account_id, region) FROM egressscan.coverage",
                      NULL, NULL);
}

static char *clusters_text(void)
{
    return query_text("SELECT string_agg(cluster_arn || '/' || coalesce(egress_mode, '-') || '/' "
                      "|| verified::text || '/' || coalesce(compliance, '-'), ',' "
                      "ORDER BY cluster_arn) FROM egressscan.current_clusters",
                      NULL, NULL);
}

static char *daily_text(void)
{
    return query_text("SELECT concat_ws('/', clusters, compliant, noncompliant, exempt, unknown, "
                      "unverified, targets_total, targets_ok) FROM egressscan.daily_compliance "
                      "ORDER BY day DESC LIMIT 1",
                      NULL, NULL);
}

static struct {
    char *coverage, *clusters, *daily;
    char reg2_last_ok[40];
} s1;

/* ---- setup ---- */

static int write_files(void)
{
    snprintf(fx.dir, sizeof fx.dir, "/tmp/egressscan-fleet-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.policy, sizeof fx.policy, "%s/policy.json", fx.dir);
    snprintf(fx.config, sizeof fx.config, "%s/config.json", fx.dir);
    static const char *const names[] = {"AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"};
    json_t *rs = json_array();
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        json_t *modes = json_array();
        for (int m = 0; m < 3; m++)
            if (rules[i].modes & (1u << m))
                json_array_append_new(modes, json_string(names[m]));
        json_t *r = json_pack("{s:s, s:o, s:b}", "id", rules[i].id, "allowed_modes", modes,
                              "require_scp", rules[i].require_scp);
        if (rules[i].ou)
            json_object_set_new(r, "ou", json_string(ou_id(rules[i].ou)));
        else
            json_object_set_new(r, "accounts", json_pack("[s]", acct_id(rules[i].account)));
        json_array_append_new(rs, r);
    }
    json_t *p = json_pack("{s:i, s:{s:[s,s,s]}, s:o}", "version", 1, "default", "allowed_modes",
                          names[0], names[1], names[2], "rules", rs);
    json_t *c =
        json_pack("{s:s, s:[s,s,s], s:s, s:s}", "org_role_arn",
                  json_string_value(json_object_get(fx.seed, "org_role_arn")), "regions",
                  regions[0], regions[1], regions[2], "role_name",
                  json_string_value(json_object_get(fx.seed, "role_name")), "policy", fx.policy);
    int rc = p && c && json_dump_file(p, fx.policy, JSON_INDENT(2)) == 0 &&
                     json_dump_file(c, fx.config, JSON_INDENT(2)) == 0
                 ? 0
                 : -1;
    json_decref(p);
    json_decref(c);
    return rc;
}

static void read_fleet(void)
{
    size_t i, j;
    json_t *a, *c;
    json_array_foreach(json_object_get(fx.fleet, "accounts"), i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        fx.accounts[fx.n_accounts++] = name;
        json_array_foreach(json_object_get(a, "clusters"), j, c)
        {
            struct seed_cluster *sc = &fx.clusters[fx.n_clusters++];
            sc->account = name;
            sc->region = json_string_value(json_object_get(c, "region"));
            sc->name = json_string_value(json_object_get(c, "name"));
            sc->mode = mode_bit(json_string_value(json_object_get(c, "mode")));
        }
    }
    json_array_foreach(json_object_get(fx.fleet, "management_clusters"), j, c)
    {
        struct seed_cluster *sc = &fx.clusters[fx.n_clusters++];
        sc->account = "mgmt";
        sc->region = json_string_value(json_object_get(c, "region"));
        sc->name = json_string_value(json_object_get(c, "name"));
        sc->mode = mode_bit(json_string_value(json_object_get(c, "mode")));
    }
    for (i = 0; i < fx.n_clusters; i++)
        snprintf(fx.clusters[i].arn, sizeof fx.clusters[i].arn, "arn:aws:eks:%s:%s:cluster/%s",
                 fx.clusters[i].region, acct_id(fx.clusters[i].account), fx.clusters[i].name);
}

static int setup(void **state)
{
    (void)state;
    fx.fleet = json_load_file(SEED_FILE, 0, NULL);
    if (!fx.fleet || cli_moto_fixture(&fx.moto, &fx.pg, SEED_FILE, &fx.seed, &fx.cli) < 0)
        return -1;
    read_fleet();
    if (write_files() < 0)
        return -1;
    fx.db = PQconnectdb(fx.pg.url);
    if (PQstatus(fx.db) != CONNECTION_OK)
        return -1;
    return cli_run(&fx.cli, NULL, NULL, "migrate", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    print_table();
    unlink(fx.policy);
    unlink(fx.config);
    rmdir(fx.dir);
    free(s1.coverage);
    free(s1.clusters);
    free(s1.daily);
    PQfinish(fx.db);
    json_decref(fx.seed);
    json_decref(fx.fleet);
    pgtest_stop(&fx.pg);
    mototest_stop(&fx.moto);
    return 0;
}

/* ---- the sequence ---- */

static const struct step step_full = {"1 fleet scan", NULL, NULL, NULL};

static void step1_fleet_scan(void)
{
    assert_int_equal(fleet_scan(), 0);
    assert_last_scan("succeeded", "fleet", "read");
    check_numbers(&step_full);
    n_step1 = read_findings(step1);
    s1.coverage = coverage_text();
    s1.clusters = clusters_text();
    s1.daily = daily_text();
    char *t = query_text("SELECT max(last_ok_at)::text FROM egressscan.coverage "
                         "WHERE account_id = $1",
                         acct_id("reg2"), NULL);
    snprintf(s1.reg2_last_ok, sizeof s1.reg2_last_ok, "%s", t);
    free(t);
    /* every cluster of the seed, with its mode and OU path */
    for (size_t i = 0; i < fx.n_clusters; i++)
        assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters WHERE "
                                   "cluster_arn = $1 AND verified",
                                   fx.clusters[i].arn, NULL),
                         1);
    assert_text("SELECT DISTINCT ou_path FROM egressscan.current_clusters WHERE account_id = $1",
                acct_id("sbx1"), NULL, "Root/Workloads/Sandbox");
}

/* The views equal step 1's: coverage statuses, current clusters with their modes, verification
 * and judgement, the day's compliance numbers; and step 1's findings (less those of account
 * `except`) are open with their ids and first_seen. */
static void assert_views_as_step1_except(const char *label, const char *except)
{
    char *cov = coverage_text(), *cl = clusters_text(), *d = daily_text();
    assert_string_equal(cov, s1.coverage);
    assert_string_equal(cl, s1.clusters);
    assert_string_equal(d, s1.daily);
    free(cov);
    free(cl);
    free(d);
    assert_carried_over(step1, n_step1, except, label);
}

static void assert_views_as_step1(const char *label)
{
    assert_views_as_step1_except(label, NULL);
}

static void step2_targeted_scans(void)
{
    const char *reg1 = acct_id("reg1");
    char arn[160];
    snprintf(arn, sizeof arn, "arn:aws:eks:eu-west-1:%s:cluster/reg1-old", reg1);
    char *reg1_scanned = query_text("SELECT max(scanned_at)::text FROM egressscan.coverage "
                                    "WHERE account_id = $1",
                                    reg1, NULL);

    /* with the config file's org role: the SCPs are read */
    struct step s = {"2a targeted, --org-role-arn", NULL, NULL, NULL};
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--config", fx.config, "--accounts", reg1,
                             "--no-progress", NULL),
                     0);
    assert_last_scan("succeeded", "targeted", "read");
    check_numbers(&s);
    assert_views_as_step1(s.label);
    /* it did scan reg1 (and only reg1) */
    assert_int_equal(
        query_int("SELECT count(*) FROM egressscan.coverage WHERE scan_id = " LAST_SCAN, NULL,
                  NULL),
        N_REGIONS);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.coverage WHERE account_id = $1 "
                               "AND scanned_at > $2::timestamptz",
                               reg1, reg1_scanned),
                     N_REGIONS);
    free(reg1_scanned);
    /* reg1-old (AWS_MANAGED, OU Regulated requires CUSTOMER_ROUTED): still non-compliant, same
     * finding, confirmed by this scan */
    assert_text("SELECT compliance FROM egressscan.current_clusters WHERE cluster_arn = $1", arn,
                NULL, "noncompliant");
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift WHERE cluster_arn = "
                               "$1 AND kind = 'noncompliant_cluster' AND scan_id = " LAST_SCAN,
                               arn, NULL),
                     1);

    /* without an org role: an --accounts list knows no SCPs and no OU from Organizations; the
     * account keeps the OU the fleet scans found, so the Regulated rule still judges it */
    s.label = "2b targeted, no org role";
    assert_int_equal(cli_run(&fx.cli, NULL, NULL, "scan", "--accounts", reg1, "--regions",
                             REGIONS_CSV, "--policy", fx.policy, "--no-progress", NULL),
                     0);
    assert_last_scan("succeeded", "targeted", "not_read");
    check_numbers(&s);
    assert_views_as_step1(s.label);
    assert_text("SELECT compliance FROM egressscan.current_clusters WHERE cluster_arn = $1", arn,
                NULL, "noncompliant");
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift WHERE cluster_arn = "
                               "$1 AND kind = 'noncompliant_cluster' AND scan_id = " LAST_SCAN,
                               arn, NULL),
                     1);
}

static void step3_role_denied(void)
{
    const char *reg2 = acct_id("reg2");
    moto("--deny-assume", reg2, NULL);
    struct step s = {"3 fleet, reg2 role denied", NULL, "reg2", NULL};
    assert_int_equal(fleet_scan(), 3);
    assert_last_scan("partial", "fleet", "read");
    check_numbers(&s);
    /* one account-level row, last ok in step 1 */
    char want[96];
    snprintf(want, sizeof want, "* assume_role_denied %s", s1.reg2_last_ok);
    assert_text("SELECT region || ' ' || status || ' ' || coalesce(last_ok_at::text, 'never') "
                "FROM egressscan.coverage WHERE account_id = $1",
                reg2, NULL, want);
    /* its clusters stay, not verified, and its findings are the same findings */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_clusters WHERE "
                               "account_id = $1 AND NOT verified",
                               reg2, NULL),
                     query_int("SELECT count(*) FROM egressscan.cluster_history WHERE "
                               "account_id = $1 AND valid_to IS NULL",
                               reg2, NULL));
    assert_carried_over(step1, n_step1, NULL, s.label);
    moto("--deny-assume", "-", NULL);
}

/* Findings that rest on the SCPs alone (unenforced_intent, scp_conflict) are open with their
 * step-1 ids (assert_carried_over), unchanged: the latest scan, which could not read the SCPs,
 * did not confirm them (their scan_id and last_seen are an earlier scan's); and it was judged
 * with the snapshot of the latest one that could (never with none). */
static void assert_scp_findings_carried(void)
{
    long long scp_findings = 0;
    for (size_t i = 0; i < n_step1; i++)
        scp_findings += strcmp(step1[i].kind, "unenforced_intent") == 0 ||
                        strcmp(step1[i].kind, "scp_conflict") == 0;
    assert_true(scp_findings >= 2);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift WHERE kind IN "
                               "('unenforced_intent', 'scp_conflict')",
                               NULL, NULL),
                     scp_findings);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift d JOIN "
                               "egressscan.scans s ON s.scan_id = d.scan_id WHERE d.kind IN "
                               "('unenforced_intent', 'scp_conflict') AND d.scan_id < " LAST_SCAN
                               " AND d.last_seen = s.started_at",
                               NULL, NULL),
                     scp_findings);
    assert_int_equal(
        query_int("SELECT intent_scan_id FROM egressscan.scans WHERE scan_id = " LAST_SCAN, NULL,
                  NULL),
        query_int("SELECT max(scan_id) FROM egressscan.scans WHERE scps_known AND "
                  "scan_id < " LAST_SCAN,
                  NULL, NULL));
}

/* What the org reader role is denied to make the SCPs unreadable (accounts and OUs still list). */
#define SCP_READS "organizations:ListPolicies,organizations:DescribePolicy"

static void step4_scps_unreadable(void)
{
    moto("--deny-org-reader", SCP_READS, NULL);
    struct step s = {"4 fleet, SCPs unreadable", NULL, NULL, NULL};
    assert_int_equal(fleet_scan(), 3);
    assert_last_scan("partial", "fleet", "failed");
    check_numbers(&s);
    assert_carried_over(step1, n_step1, NULL, s.label);
    assert_scp_findings_carried();
    moto("--deny-org-reader", "-", NULL);
}

static void step5_account_removed(void)
{
    const char *ws3 = acct_id("ws3");
    long long ws3_findings = 0;
    for (size_t i = 0; i < n_step1; i++)
        ws3_findings += strcmp(step1[i].account, ws3) == 0;
    assert_true(ws3_findings >= 2);
    long long ws3_clusters = 0;
    for (size_t i = 0; i < fx.n_clusters; i++)
        ws3_clusters += strcmp(fx.clusters[i].account, "ws3") == 0;

    moto("--remove-account", ws3, NULL);
    struct step s = {"5 fleet, ws3 left the org", "ws3", NULL, NULL};
    assert_int_equal(fleet_scan(), 0);
    assert_last_scan("succeeded", "fleet", "read");
    check_numbers(&s);
    assert_carried_over(step1, n_step1, "ws3", s.label);
    /* its clusters' periods closed, because it left */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history WHERE "
                               "account_id = $1 AND valid_to IS NULL",
                               ws3, NULL),
                     0);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history WHERE "
                               "account_id = $1 AND closed_reason = 'left_organization' AND "
                               "closed_scan_id = " LAST_SCAN,
                               ws3, NULL),
                     ws3_clusters);
    /* its findings resolved, because it left */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.finding WHERE account_id = $1 "
                               "AND resolved_reason = 'left_organization' AND "
                               "resolved_scan_id = " LAST_SCAN,
                               ws3, NULL),
                     ws3_findings);
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift WHERE "
                               "account_id = $1",
                               ws3, NULL),
                     0);
    assert_int_equal(
        query_int("SELECT count(*) FROM egressscan.coverage WHERE account_id = $1", ws3, NULL), 0);
}

static void step6_region_guard(void)
{
    moto("--attach-scp", scp_id("region-guard"), ou_id("Sandbox"));
    struct step s = {"6 fleet, region-deny SCP", "ws3", NULL, "Sandbox"};
    assert_int_equal(fleet_scan(), 3);
    assert_last_scan("partial", "fleet", "read");
    check_numbers(&s);
    assert_carried_over(step1, n_step1, "ws3", s.label);
    char by[96];
    snprintf(by, sizeof by, "%s#DenyOutsideAllowedRegions", scp_id("region-guard"));
    int denied = 0;
    for (size_t a = 0; a < fx.n_accounts; a++) {
        for (int g = 0; g < N_REGIONS; g++) {
            if (!in_step(&s, fx.accounts[a]) || !target_blocked(&s, fx.accounts[a], regions[g]))
                continue;
            denied++;
            const char *id = acct_id(fx.accounts[a]);
            char key[64];
            snprintf(key, sizeof key, "%s %s", id, regions[g]);
            assert_text("SELECT status || ' ' || error_code FROM egressscan.coverage "
                        "WHERE account_id || ' ' || region = $1",
                        key, NULL, "scp_denied DeniedBySCP");
            /* the finding names the SCP statement and says how to fix it */
            char want[128];
            snprintf(want, sizeof want, "[\"%s\"]", by);
            assert_text("SELECT (details -> 'denied_by')::text FROM egressscan.current_drift "
                        "WHERE kind = 'unscanned_target' AND account_id || ' ' || region = $1",
                        key, NULL, want);
            char *fix = query_text("SELECT details ->> 'fix' FROM egressscan.current_drift "
                                   "WHERE kind = 'unscanned_target' AND "
                                   "account_id || ' ' || region = $1",
                                   key, NULL);
            if (!strstr(fix, scp_id("region-guard")) || !strstr(fix, "DenyOutsideAllowedRegions") ||
                !strstr(fix, regions[g]) || !strstr(fix, "Exempt the scanner's role"))
                fail_msg("%s: the fix does not say how: %s", key, fix);
            free(fix);
        }
    }
    assert_true(denied >= 2);
}

static void step7_restored(void)
{
    const char *ws3 = acct_id("ws3");
    moto("--readmit-account", ws3, NULL);
    moto("--detach-scp", scp_id("region-guard"), ou_id("Sandbox"));
    struct step s = {"7 fleet, all restored", NULL, NULL, NULL};
    assert_int_equal(fleet_scan(), 0);
    assert_last_scan("succeeded", "fleet", "read");
    check_numbers(&s);
    /* the views are step 1's */
    assert_views_as_step1_except(s.label, "ws3");
    /* ws3's findings were resolved when it left: raised again, they are new findings */
    for (size_t i = 0; i < n_step1; i++) {
        if (strcmp(step1[i].account, ws3) != 0)
            continue;
        char id[32];
        snprintf(id, sizeof id, "%lld", step1[i].id);
        assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift WHERE "
                                   "finding_id = $1::bigint",
                                   id, NULL),
                         0);
        assert_int_equal(query_int("SELECT count(*) FROM egressscan.current_drift d "
                                   "JOIN egressscan.finding f ON f.finding_id = $1::bigint "
                                   "AND f.kind = d.kind AND f.account_id = d.account_id "
                                   "AND f.region = d.region AND f.source = d.source AND "
                                   "coalesce(f.cluster_arn, '') = coalesce(d.cluster_arn, '') "
                                   "WHERE d.first_seen > f.first_seen",
                                   id, NULL),
                         1);
    }
    /* ws3's clusters: the period closed when it left, a new one open since it is back */
    assert_int_equal(query_int("SELECT count(*) FROM egressscan.cluster_history WHERE "
                               "account_id = $1 AND valid_to IS NULL",
                               ws3, NULL),
                     query_int("SELECT count(*) FROM egressscan.cluster_history WHERE "
                               "account_id = $1 AND closed_reason = 'left_organization'",
                               ws3, NULL));
}

static void test_sequence(void **state)
{
    (void)state;
    step1_fleet_scan();
    step2_targeted_scans();
    step3_role_denied();
    step4_scps_unreadable();
    step5_account_removed();
    step6_region_guard();
    step7_restored();
}

/* ---- the same through scan --enqueue and egressscan worker ---- */

/* Enqueues a fleet scan and runs one worker on it; returns the worker's exit code. */
static int enqueued_fleet_scan(int want_enqueue_rc)
{
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "scan", "--enqueue", "--config", fx.config,
                             "--no-progress", NULL),
                     want_enqueue_rc);
    char scan[32];
    snprintf(scan, sizeof scan, "%lld", atoll(out));
    free(out);
    assert_true(atoll(scan) > 0);
    assert_int_equal(query_int("SELECT max(scan_id) FROM egressscan.scans", NULL, NULL),
                     atoll(scan));
    int rc = cli_run(&fx.cli, &out, NULL, "worker", "--scan", scan, "--no-progress", NULL);
    if (!strstr(out, "scan ") || !strstr(out, scan))
        fail_msg("the worker did not finalize scan %s: %s", scan, out);
    free(out);
    return rc;
}

static void test_enqueue_and_worker(void **state)
{
    (void)state;
    /* the state test_sequence left: everything as in step 1 */
    struct finding_row before[MAX_FINDINGS];
    size_t n_before = read_findings(before);
    assert_int_equal(n_before, n_step1);

    moto("--deny-assume", acct_id("reg2"), NULL);
    struct step s = {"E1 enqueue+worker, reg2 denied", NULL, "reg2", NULL};
    assert_int_equal(enqueued_fleet_scan(0), 3);
    assert_last_scan("partial", "fleet", "read");
    check_numbers(&s);
    assert_carried_over(before, n_before, NULL, s.label);
    assert_text("SELECT region || ' ' || status FROM egressscan.coverage WHERE account_id = $1",
                acct_id("reg2"), NULL, "* assume_role_denied");
    moto("--deny-assume", "-", NULL);

    moto("--deny-org-reader", SCP_READS, NULL);
    s = (struct step){"E2 enqueue+worker, SCPs unreadable", NULL, NULL, NULL};
    assert_int_equal(enqueued_fleet_scan(0), 3);
    assert_last_scan("partial", "fleet", "failed");
    check_numbers(&s);
    assert_carried_over(before, n_before, NULL, s.label);
    assert_scp_findings_carried();
    moto("--deny-org-reader", "-", NULL);

    s = (struct step){"E3 enqueue+worker, restored", NULL, NULL, NULL};
    assert_int_equal(enqueued_fleet_scan(0), 0);
    assert_last_scan("succeeded", "fleet", "read");
    check_numbers(&s);
    assert_views_as_step1_except(s.label, "ws3");
    assert_carried_over(before, n_before, NULL, s.label);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_enqueue_and_worker),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
