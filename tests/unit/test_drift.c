/* test_drift.c - intent and drift (intent/drift): small organizations built in C (accounts with
 * OU paths, SCPs as JSON text, clusters, coverage rows, mode changes, a declared policy parsed
 * from JSON) and the exact set of findings and compliance counts they must give: every finding
 * kind and every noncompliant_cluster reason of SPEC.md section 6, region "*" grouping, unknown
 * SCPs, exceptions, and the SCP-backed intent `egressscan scps` prints. No database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/err.h"
#include "common/model.h"
#include "intent/drift.h"
#include "intent/policy.h"
#include "intent/scp.h"

#define ROOT "r-t001"
#define OU_PROD "ou-t001-prod0001"
#define OU_REG "ou-t001-reg00001" /* below Prod */
#define OU_SBX "ou-t001-sbx00001"
#define MGMT "999999999999"      /* management account, directly below the root */
#define ACCT_REG "111111111111"  /* Root/Prod/Regulated */
#define ACCT_PROD "222222222222" /* Root/Prod */
#define ACCT_SBX "333333333333"  /* Root/Sandbox */
#define ACCT_ROOT "444444444444" /* member directly below the root */

#define MAX_ITEMS 32
#define MAX_GOT 64

static const char full_access[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
    "\"Resource\":\"*\"}]}";

/* The enforcing SCP: no CreateCluster / UpdateClusterConfig other than CUSTOMER_ROUTED; the
 * negated operator also denies a request that leaves the mode out. */
static const char enforce_routed[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyUnlessCustomerRouted\","
    "\"Effect\":\"Deny\",\"Action\":[\"eks:CreateCluster\",\"eks:UpdateClusterConfig\"],"
    "\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"
    "{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"}}}]}";

/* The gap-ridden one: matches only a request that names AWS_MANAGED. */
static const char deny_named_managed[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyAwsManaged\",\"Effect\":\"Deny\","
    "\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":"
    "{\"eks:controlPlaneEgressMode\":\"AWS_MANAGED\"}}}]}";

/* Enforcing, except for a break-glass role. */
static const char enforce_but_breakglass[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyUnlessRouted\",\"Effect\":\"Deny\","
    "\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"
    "{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"},\"ArnNotLike\":"
    "{\"aws:PrincipalArn\":\"arn:aws:iam::*:role/BreakGlass\"}}}]}";

/* Enforcing in eu-west-1 only. */
static const char enforce_eu_west_1[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyUnlessRoutedEu\",\"Effect\":"
    "\"Deny\",\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":"
    "{\"StringNotEquals\":{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"},"
    "\"StringEquals\":{\"aws:RequestedRegion\":\"eu-west-1\"}}}]}";

/* Restricts the mode of UpdateClusterConfig only. */
static const char enforce_update_only[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyUpdateUnlessRouted\",\"Effect\":"
    "\"Deny\",\"Action\":\"eks:UpdateClusterConfig\",\"Resource\":\"*\",\"Condition\":"
    "{\"StringNotEquals\":{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"}}}]}";

/* ---- fixture ---- */

struct got {
    char kind[32], severity[16], account[16], region[24], source[96], observed[40];
    char line[320];
    int observed_null;
    unsigned allowed;
    json_t *details;
};

struct fx {
    struct drift_account accounts[12];
    size_t n_accounts;
    struct scp_policy scps[8];
    const char *scp_targets[8][16];
    size_t n_scps;
    struct drift_cluster clusters[MAX_ITEMS];
    char arns[MAX_ITEMS][128];
    size_t n_clusters;
    struct drift_target targets[MAX_ITEMS];
    size_t n_targets;
    struct drift_change changes[MAX_ITEMS];
    size_t n_changes;
    struct policy *policy;
    int scps_known;
    time_t now;
    struct got got[MAX_GOT];
    size_t n_got;
    struct drift_counts counts;
    int fail_emit_at; /* 1-based: the emit that fails; 0 never */
    int emits;
};

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return timegm(&tm);
}

static void fx_account(struct fx *x, const char *id, const char *path, int mgmt)
{
    assert_true(x->n_accounts < sizeof x->accounts / sizeof x->accounts[0]);
    struct drift_account *a = &x->accounts[x->n_accounts++];
    a->id = id;
    a->name = id;
    a->ou_id_path = path;
    a->is_management = mgmt;
}

/* Attaches content as SCP id to the NULL-terminated targets. */
static void fx_scp(struct fx *x, const char *id, const char *content, ...)
{
    assert_true(x->n_scps < 8);
    size_t i = x->n_scps++;
    struct scp_policy *p = &x->scps[i];
    p->id = id;
    p->name = id;
    p->content = content;
    va_list ap;
    va_start(ap, content);
    size_t n = 0;
    for (const char *t = va_arg(ap, const char *); t; t = va_arg(ap, const char *)) {
        assert_true(n < 16);
        x->scp_targets[i][n++] = t;
    }
    va_end(ap);
    p->targets = x->scp_targets[i];
    p->n_targets = n;
}

/* The organization every test starts from: FullAWSAccess on every root, OU and account. */
static struct fx *fx_new(void)
{
    struct fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    fx_account(x, MGMT, ROOT, 1);
    fx_account(x, ACCT_REG, ROOT "/" OU_PROD "/" OU_REG, 0);
    fx_account(x, ACCT_PROD, ROOT "/" OU_PROD, 0);
    fx_account(x, ACCT_SBX, ROOT "/" OU_SBX, 0);
    fx_account(x, ACCT_ROOT, ROOT, 0);
    fx_scp(x, "p-FullAWSAccess", full_access, ROOT, OU_PROD, OU_REG, OU_SBX, MGMT, ACCT_REG,
           ACCT_PROD, ACCT_SBX, ACCT_ROOT, NULL);
    x->scps[0].aws_managed = 1;
    x->scps_known = 1;
    x->now = utc(2026, 11, 26, 15, 0, 0);
    return x;
}

static void fx_free(struct fx *x)
{
    for (size_t i = 0; i < x->n_got; i++)
        json_decref(x->got[i].details);
    policy_free(x->policy);
    free(x);
}

static void fx_cluster(struct fx *x, const char *account, const char *region, const char *name,
                       const char *mode, const char *tags)
{
    assert_true(x->n_clusters < MAX_ITEMS);
    size_t i = x->n_clusters++;
    snprintf(x->arns[i], sizeof x->arns[i], "arn:aws:eks:%s:%s:cluster/%s", region, account, name);
    x->clusters[i] = (struct drift_cluster){account, region, name, x->arns[i], mode, tags, 0};
}

static void fx_target(struct fx *x, const char *account, const char *region,
                      enum target_status status, const char *code, const char *message)
{
    assert_true(x->n_targets < MAX_ITEMS);
    x->targets[x->n_targets++] = (struct drift_target){account, region, status, code, message};
}

static void fx_scanned(struct fx *x, const char *account, const char *region)
{
    fx_target(x, account, region, TARGET_OK, NULL, NULL);
}

static void fx_change(struct fx *x, const char *account, const char *region, const char *arn,
                      const char *from, const char *to)
{
    assert_true(x->n_changes < MAX_ITEMS);
    x->changes[x->n_changes++] = (struct drift_change){account, region, arn, from, to};
}

static void fx_policy(struct fx *x, const char *json)
{
    struct err e;
    err_clear(&e);
    x->policy = policy_parse(json, strlen(json), "policy.json", NULL, &e);
    if (!x->policy)
        fail_msg("policy_parse: %s", e.message);
}

static void fx_input(const struct fx *x, struct drift_input *in)
{
    memset(in, 0, sizeof *in);
    in->accounts = x->accounts;
    in->n_accounts = x->n_accounts;
    in->scps = x->scps;
    in->n_scps = x->n_scps;
    in->scps_known = x->scps_known;
    in->clusters = x->clusters;
    in->n_clusters = x->n_clusters;
    in->targets = x->targets;
    in->n_targets = x->n_targets;
    in->changes = x->changes;
    in->n_changes = x->n_changes;
    in->policy = x->policy;
    in->now = x->now;
}

static void copy(char *dst, size_t size, const char *s)
{
    snprintf(dst, size, "%s", s ? s : "-");
}

static int collect(void *ud, const struct finding *f)
{
    struct fx *x = ud;
    x->emits++;
    if (x->fail_emit_at && x->emits == x->fail_emit_at)
        return -1;
    assert_true(x->n_got < MAX_GOT);
    struct got *g = &x->got[x->n_got++];
    assert_non_null(f->kind);
    assert_non_null(f->severity);
    assert_non_null(f->account_id);
    assert_non_null(f->region);
    assert_non_null(f->source);
    assert_non_null(f->details_json);
    json_error_t je;
    g->details = json_loads(f->details_json, 0, &je);
    if (!json_is_object(g->details))
        fail_msg("details are not a JSON object: %s", f->details_json);
    copy(g->kind, sizeof g->kind, f->kind);
    copy(g->severity, sizeof g->severity, f->severity);
    copy(g->account, sizeof g->account, f->account_id);
    copy(g->region, sizeof g->region, f->region);
    copy(g->source, sizeof g->source, f->source);
    copy(g->observed, sizeof g->observed, f->observed_mode);
    g->observed_null = f->observed_mode == NULL;
    g->allowed = f->allowed_modes;
    const char *cluster = f->cluster_arn ? strstr(f->cluster_arn, ":cluster/") : NULL;
    const char *reason = json_string_value(json_object_get(g->details, "reason"));
    snprintf(g->line, sizeof g->line, "%s|%s|%s|%s|%s|%s", f->kind, f->account_id, f->region,
             cluster ? cluster + 9 : "-", f->source, reason ? reason : "-");
    return 0;
}

/* Every finding, all it says, in emission order: two runs must give the same. */
struct transcript {
    char *text;
    size_t len, cap;
};

static int transcribe(void *ud, const struct finding *f)
{
    struct transcript *t = ud;
    char allowed[16];
    snprintf(allowed, sizeof allowed, "%u", f->allowed_modes);
    const char *fields[] = {f->kind,          f->severity,    f->account_id,
                            f->region,        f->cluster_arn, f->source,
                            f->observed_mode, allowed,        f->details_json};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *v = fields[i] ? fields[i] : "(null)";
        size_t n = strlen(v) + 1;
        if (t->len + n + 1 > t->cap) {
            t->cap = (t->len + n + 1) * 2;
            t->text = realloc(t->text, t->cap);
            assert_non_null(t->text);
        }
        memcpy(t->text + t->len, v, n - 1);
        t->len += n - 1;
        t->text[t->len++] = i + 1 < sizeof fields / sizeof *fields ? '|' : '\n';
        t->text[t->len] = '\0';
    }
    return 0;
}

/* The fixture's ok coverage rows as a bitset per account (drift_input.ok_accounts), the region
 * table in reverse order of first sight (drift must not depend on its order), the other rows as
 * rows: drift_evaluate must give exactly what it gives with every row a row. */
static void check_ok_bitsets_equivalent(const struct fx *x)
{
    const char *table[MAX_ITEMS];
    size_t n_table = 0;
    struct drift_target rows[MAX_ITEMS];
    size_t n_rows = 0;
    struct drift_ok_account ok[MAX_ITEMS];
    uint64_t bits[MAX_ITEMS];
    size_t n_ok = 0;
    for (size_t i = 0; i < x->n_targets; i++) {
        const struct drift_target *t = &x->targets[i];
        if (t->status != TARGET_OK) {
            rows[n_rows++] = *t;
            continue;
        }
        size_t a = 0;
        while (a < n_ok && strcmp(ok[a].account_id, t->account_id) != 0)
            a++;
        if (a == n_ok) {
            ok[n_ok].account_id = t->account_id;
            bits[n_ok++] = 0;
        }
        if (strcmp(t->region, "*") == 0)
            continue;
        size_t k = 0;
        while (k < n_table && strcmp(table[k], t->region) != 0)
            k++;
        if (k == n_table)
            table[n_table++] = t->region;
        bits[a] |= (uint64_t)1 << k;
    }
    /* reverse the table, and the bits with it */
    for (size_t k = 0; k < n_table / 2; k++) {
        const char *tmp = table[k];
        table[k] = table[n_table - 1 - k];
        table[n_table - 1 - k] = tmp;
    }
    for (size_t a = 0; a < n_ok; a++) {
        uint64_t b = 0;
        for (size_t k = 0; k < n_table; k++)
            if (bits[a] >> k & 1u)
                b |= (uint64_t)1 << (n_table - 1 - k);
        bits[a] = b;
        ok[a].regions = n_table ? &bits[a] : NULL;
    }

    struct drift_input in;
    fx_input(x, &in);
    struct transcript want = {0}, got = {0};
    struct drift_counts want_counts, got_counts;
    struct err e;
    err_clear(&e);
    if (drift_evaluate(&in, transcribe, &want, &want_counts, &e) != 0)
        fail_msg("drift_evaluate: %s: %s", e.code, e.message);
    in.targets = rows;
    in.n_targets = n_rows;
    in.ok_regions = table;
    in.n_ok_regions = n_table;
    in.ok_accounts = ok;
    in.n_ok_accounts = n_ok;
    if (drift_evaluate(&in, transcribe, &got, &got_counts, &e) != 0)
        fail_msg("drift_evaluate (ok rows as bitsets): %s: %s", e.code, e.message);
    if (want.len != got.len || (want.len && memcmp(want.text, got.text, want.len) != 0))
        fail_msg("ok rows as bitsets give other findings:\n%s\nrather than:\n%s",
                 got.text ? got.text : "", want.text ? want.text : "");
    assert_memory_equal(&want_counts, &got_counts, sizeof want_counts);
    free(want.text);
    free(got.text);
}

static void fx_run(struct fx *x)
{
    struct drift_input in;
    fx_input(x, &in);
    struct err e;
    err_clear(&e);
    if (drift_evaluate(&in, collect, x, &x->counts, &e) != 0)
        fail_msg("drift_evaluate: %s: %s", e.code, e.message);
    check_ok_bitsets_equivalent(x);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The findings, as "kind|account|region|cluster|source|reason" lines, are exactly `expected`
 * (NULL-terminated, any order). */
static void expect_findings(const struct fx *x, const char *const *expected)
{
    const char *want[MAX_GOT], *have[MAX_GOT];
    size_t nw = 0;
    for (; expected[nw]; nw++)
        want[nw] = expected[nw];
    for (size_t i = 0; i < x->n_got; i++)
        have[i] = x->got[i].line;
    qsort(want, nw, sizeof *want, cmp_str);
    qsort(have, x->n_got, sizeof *have, cmp_str);
    int same = nw == x->n_got;
    for (size_t i = 0; same && i < nw; i++)
        same = strcmp(want[i], have[i]) == 0;
    if (!same) {
        for (size_t i = 0; i < nw; i++)
            print_message("want %s\n", want[i]);
        for (size_t i = 0; i < x->n_got; i++)
            print_message("have %s\n", have[i]);
        fail_msg("the findings differ");
    }
}

static void expect_counts(const struct fx *x, long clusters, long compliant, long noncompliant,
                          long exempt, long unknown)
{
    assert_int_equal(x->counts.clusters, clusters);
    assert_int_equal(x->counts.compliant, compliant);
    assert_int_equal(x->counts.noncompliant, noncompliant);
    assert_int_equal(x->counts.exempt, exempt);
    assert_int_equal(x->counts.unknown, unknown);
}

/* The finding of kind about cluster name (or, with name NULL, in region). */
static const struct got *find(const struct fx *x, const char *kind, const char *account,
                              const char *name_or_region)
{
    char cluster[80];
    snprintf(cluster, sizeof cluster, "|%s|", name_or_region);
    for (size_t i = 0; i < x->n_got; i++) {
        const struct got *g = &x->got[i];
        if (strcmp(g->kind, kind) == 0 && strcmp(g->account, account) == 0 &&
            strstr(g->line + strlen(kind) + strlen(account) + 1, cluster))
            return g;
    }
    fail_msg("no %s finding for %s %s", kind, account, name_or_region);
    return NULL;
}

static const char *dstr(const struct got *g, const char *key)
{
    const char *s = json_string_value(json_object_get(g->details, key));
    if (!s)
        fail_msg("details.%s is not a string in %s", key, g->line);
    return s;
}

/* details[key] is the JSON array of strings `want` (NULL-terminated). */
static void expect_strings(const struct got *g, const char *key, const char *const *want)
{
    json_t *a = json_object_get(g->details, key);
    assert_true(json_is_array(a));
    size_t n = 0;
    while (want[n])
        n++;
    assert_int_equal(json_array_size(a), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(a, i)), want[i]);
}

/* The modes named by the objects of details[key] ({"mode": ...}), in order, joined by ','. */
static void expect_modes_of(const struct got *g, const char *key, const char *want,
                            const char *verdict)
{
    json_t *a = json_object_get(g->details, key);
    assert_true(json_is_array(a));
    char buf[160] = "";
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *o = json_array_get(a, i);
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "",
                 json_string_value(json_object_get(o, "mode")));
        if (verdict)
            assert_string_equal(json_string_value(json_object_get(o, "verdict")), verdict);
    }
    assert_string_equal(buf, want);
}

/* ---- noncompliant_cluster reasons ---- */

static void test_enforcing_scp_predates(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "old", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "new", "CUSTOMER_ROUTED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "iso", "CUSTOMER_ISOLATED", NULL);
    fx_run(x);
    expect_findings(
        x, (const char *const[]){"noncompliant_cluster|" ACCT_REG "|eu-west-1|old|scp:p-enforce1|"
                                 "predates_scp",
                                 "noncompliant_cluster|" ACCT_REG "|eu-west-1|iso|scp:p-enforce1|"
                                 "predates_scp",
                                 NULL});
    expect_counts(x, 3, 1, 2, 0, 0);

    const struct got *g = find(x, "noncompliant_cluster", ACCT_REG, "old");
    assert_string_equal(g->severity, "high");
    assert_string_equal(g->observed, "AWS_MANAGED");
    assert_int_equal(g->allowed, EGRESS_BIT(EGRESS_CUSTOMER_ROUTED));
    expect_strings(g, "allowed_modes", (const char *const[]){"CUSTOMER_ROUTED", NULL});
    /* Both requests that make an AWS_MANAGED cluster are denied to everyone. */
    expect_modes_of(g, "scp", "AWS_MANAGED,omitted", "denied");
    expect_strings(g, "statements",
                   (const char *const[]){"p-enforce1#DenyUnlessCustomerRouted", NULL});
    assert_string_equal(dstr(g, "remediation"),
                        "aws eks update-cluster-config --region 'eu-west-1' --name 'old' "
                        "--resources-vpc-config controlPlaneEgressMode=CUSTOMER_ROUTED");
    assert_string_equal(dstr(g, "warning"), "Switching to CUSTOMER_ROUTED is irreversible: the "
                                            "cluster can never return to AWS_MANAGED.");
    assert_string_equal(dstr(g, "remediation_permitted_by_scps"), "allowed");
    assert_null(json_object_get(g->details, "gaps"));

    g = find(x, "noncompliant_cluster", ACCT_REG, "iso");
    expect_modes_of(g, "scp", "CUSTOMER_ISOLATED", "denied");
    fx_free(x);
}

/* Issue 13, point 4: the remediation command carries a stored name as one quoted shell word, so
 * that `a$(touch pwned)` (or a quote) pasted into a shell runs nothing. */
static void test_remediation_quotes_every_value(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "a$(touch pwned)", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "it's", "AWS_MANAGED", NULL);
    fx_run(x);
    const struct got *g = find(x, "noncompliant_cluster", ACCT_REG, "a$(touch pwned)");
    assert_string_equal(dstr(g, "remediation"),
                        "aws eks update-cluster-config --region 'eu-west-1' --name "
                        "'a$(touch pwned)' --resources-vpc-config "
                        "controlPlaneEgressMode=CUSTOMER_ROUTED");
    g = find(x, "noncompliant_cluster", ACCT_REG, "it's");
    assert_non_null(strstr(dstr(g, "remediation"), " --name 'it'\\''s' "));
    fx_free(x);
}

static void test_gap_scp_with_require_scp(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-gap", deny_named_managed, OU_PROD, NULL);
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"AWS_MANAGED\","
                 "\"CUSTOMER_ROUTED\",\"CUSTOMER_ISOLATED\"]},\"rules\":[{\"id\":\"regulated\","
                 "\"ou\":\"" OU_PROD "\",\"allowed_modes\":[\"CUSTOMER_ROUTED\"],"
                 "\"require_scp\":true}]}");
    fx_scanned(x, ACCT_PROD, "eu-west-1");
    fx_scanned(x, ACCT_PROD, "us-east-1");
    /* Created after the SCP, by leaving the mode out of the request. */
    fx_cluster(x, ACCT_PROD, "eu-west-1", "via-omit", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_PROD, "us-east-1", "routed", "CUSTOMER_ROUTED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){
                           "noncompliant_cluster|" ACCT_PROD
                           "|eu-west-1|via-omit|policy:regulated|scp_gap",
                           "unenforced_intent|" ACCT_PROD "|*|-|policy:regulated|scp_gap", NULL});
    expect_counts(x, 2, 1, 1, 0, 0);

    const struct got *g = find(x, "noncompliant_cluster", ACCT_PROD, "via-omit");
    expect_strings(g, "gaps", (const char *const[]){"omitted mode allowed", NULL});
    expect_strings(g, "allowed_modes", (const char *const[]){"CUSTOMER_ROUTED", NULL});
    assert_string_equal(dstr(g, "decided_by"), "policy:regulated");
    assert_non_null(strstr(dstr(g, "remediation"), "controlPlaneEgressMode=CUSTOMER_ROUTED"));

    g = find(x, "unenforced_intent", ACCT_PROD, "-");
    assert_string_equal(g->severity, "high");
    assert_int_equal(g->allowed, EGRESS_BIT(EGRESS_CUSTOMER_ROUTED));
    /* AWS_MANAGED by name is denied; by omission, and CUSTOMER_ISOLATED, are not. */
    expect_modes_of(g, "leaking_modes", "CUSTOMER_ISOLATED,omitted", "allowed");
    expect_strings(g, "regions", (const char *const[]){"eu-west-1", "us-east-1", NULL});
    fx_free(x);
}

static void test_principal_exemption_is_a_gap(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-exempt", enforce_but_breakglass, OU_SBX, NULL);
    fx_scanned(x, ACCT_SBX, "us-east-1");
    fx_cluster(x, ACCT_SBX, "us-east-1", "bg", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_SBX, "us-east-1", "cr", "CUSTOMER_ROUTED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){"noncompliant_cluster|" ACCT_SBX
                                             "|us-east-1|bg|scp:p-exempt|scp_gap",
                                             NULL});
    expect_counts(x, 2, 1, 1, 0, 0);
    const struct got *g = find(x, "noncompliant_cluster", ACCT_SBX, "bg");
    json_t *gaps = json_object_get(g->details, "gaps");
    assert_int_equal(json_array_size(gaps), 2);
    const char *named = json_string_value(json_array_get(gaps, 0));
    const char *omitted = json_string_value(json_array_get(gaps, 1));
    assert_memory_equal(named, "principal exemption: ", 21);
    assert_non_null(strstr(named, "aws:PrincipalArn"));
    assert_memory_equal(omitted, "omitted mode: principal exemption: ", 35);
    /* Without a policy the SCP intent is what every principal may create. */
    expect_strings(g, "allowed_modes", (const char *const[]){"CUSTOMER_ROUTED", NULL});
    expect_modes_of(g, "scp", "AWS_MANAGED,omitted", "principal-dependent");
    fx_free(x);
}

static void test_no_scp_on_the_path(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"CUSTOMER_ROUTED\"]}}");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_SBX, "eu-west-1", "cr", "CUSTOMER_ROUTED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){"noncompliant_cluster|" ACCT_SBX
                                             "|eu-west-1|am|policy:default|no_scp",
                                             NULL});
    expect_counts(x, 2, 1, 1, 0, 0);
    const struct got *g = find(x, "noncompliant_cluster", ACCT_SBX, "am");
    expect_strings(
        g, "scp_allowed_modes",
        (const char *const[]){"AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED", NULL});
    expect_modes_of(g, "scp", "AWS_MANAGED,omitted", "allowed");
    fx_free(x);
}

static void test_action_the_scp_misses_is_a_gap(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-upd", enforce_update_only, OU_SBX, NULL);
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"CUSTOMER_ROUTED\"]}}");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){"noncompliant_cluster|" ACCT_SBX
                                             "|eu-west-1|am|policy:default|scp_gap",
                                             NULL});
    const struct got *g = find(x, "noncompliant_cluster", ACCT_SBX, "am");
    json_t *gaps = json_object_get(g->details, "gaps");
    assert_int_equal(json_array_size(gaps), 3);
    assert_string_equal(json_string_value(json_array_get(gaps, 0)), "allowed");
    assert_string_equal(json_string_value(json_array_get(gaps, 1)), "omitted mode allowed");
    assert_non_null(strstr(json_string_value(json_array_get(gaps, 2)), "action not covered"));
    /* The in-place fix is allowed; a switch elsewhere would be denied (not relevant here). */
    assert_string_equal(dstr(g, "remediation_permitted_by_scps"), "allowed");
    fx_free(x);
}

static void test_management_account(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-rootenf", enforce_routed, ROOT, NULL);
    fx_scanned(x, MGMT, "us-east-1");
    fx_scanned(x, ACCT_ROOT, "us-east-1");
    fx_cluster(x, MGMT, "us-east-1", "org-admin", "AWS_MANAGED", NULL);
    fx_cluster(x, MGMT, "us-east-1", "mg-cr", "CUSTOMER_ROUTED", NULL);
    fx_cluster(x, ACCT_ROOT, "us-east-1", "legacy", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(
        x, (const char *const[]){
               "noncompliant_cluster|" MGMT "|us-east-1|org-admin|scp:p-rootenf|management_account",
               "noncompliant_cluster|" ACCT_ROOT "|us-east-1|legacy|scp:p-rootenf|predates_scp",
               NULL});
    expect_counts(x, 3, 1, 2, 0, 0);
    const struct got *g = find(x, "noncompliant_cluster", MGMT, "org-admin");
    assert_string_equal(g->severity, "critical");
    assert_true(json_is_false(json_object_get(g->details, "scps_apply")));
    /* The intent is what the SCPs would allow if they applied. */
    expect_strings(g, "allowed_modes", (const char *const[]){"CUSTOMER_ROUTED", NULL});
    assert_string_equal(dstr(g, "remediation_permitted_by_scps"), "allowed");
    assert_string_equal(find(x, "noncompliant_cluster", ACCT_ROOT, "legacy")->severity, "high");
    fx_free(x);
}

static void test_management_account_cannot_enforce(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-rootenf", enforce_routed, ROOT, NULL);
    fx_policy(x, "{\"version\":1,\"rules\":[{\"id\":\"org\",\"ou\":\"" ROOT "\","
                 "\"allowed_modes\":[\"CUSTOMER_ROUTED\"],\"require_scp\":true}]}");
    fx_scanned(x, MGMT, "us-east-1");
    fx_scanned(x, MGMT, "eu-west-1");
    fx_scanned(x, ACCT_ROOT, "us-east-1"); /* enforced there: nothing to say */
    fx_run(x);
    expect_findings(x, (const char *const[]){
                           "unenforced_intent|" MGMT "|*|-|policy:org|management_account", NULL});
    const struct got *g = find(x, "unenforced_intent", MGMT, "-");
    expect_modes_of(g, "leaking_modes", "AWS_MANAGED,CUSTOMER_ISOLATED,omitted", "not_applicable");
    expect_counts(x, 0, 0, 0, 0, 0);
    fx_free(x);
}

/* ---- coverage, history, unknown modes ---- */

static void test_unscanned_targets(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_target(x, ACCT_PROD, "*", TARGET_ASSUME_ROLE_DENIED, "AccessDenied",
              "not authorized to perform sts:AssumeRole");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_target(x, ACCT_SBX, "us-east-1", TARGET_THROTTLED, "ThrottlingException", "Rate exceeded");
    fx_target(x, ACCT_SBX, "me-south-1", TARGET_REGION_DISABLED, "OptInRequired", "opt in");
    fx_run(x);
    expect_findings(
        x, (const char *const[]){"unscanned_target|" ACCT_PROD "|*|-|coverage|-",
                                 "unscanned_target|" ACCT_SBX "|us-east-1|-|coverage|-",
                                 "unscanned_target|" ACCT_SBX "|me-south-1|-|coverage|-", NULL});
    const struct got *g = find(x, "unscanned_target", ACCT_PROD, "*");
    assert_string_equal(g->severity, "high");
    assert_string_equal(dstr(g, "status"), "assume_role_denied");
    assert_string_equal(dstr(g, "error_code"), "AccessDenied");
    assert_string_equal(dstr(g, "error_message"), "not authorized to perform sts:AssumeRole");
    g = find(x, "unscanned_target", ACCT_SBX, "us-east-1");
    assert_string_equal(g->severity, "medium");
    assert_string_equal(dstr(g, "status"), "throttled");
    g = find(x, "unscanned_target", ACCT_SBX, "me-south-1");
    assert_string_equal(g->severity, "low");
    assert_string_equal(dstr(g, "status"), "region_disabled");
    expect_counts(x, 0, 0, 0, 0, 0);
    fx_free(x);
}

static void test_mode_changed(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_change(x, ACCT_SBX, "eu-west-1", "arn:aws:eks:eu-west-1:" ACCT_SBX ":cluster/c1",
              "CUSTOMER_ROUTED", "AWS_MANAGED");
    fx_change(x, ACCT_SBX, "eu-west-1", "arn:aws:eks:eu-west-1:" ACCT_SBX ":cluster/c2",
              "AWS_MANAGED", "CUSTOMER_ROUTED");
    fx_change(x, ACCT_SBX, "eu-west-1", "arn:aws:eks:eu-west-1:" ACCT_SBX ":cluster/c3", NULL,
              "CUSTOMER_ISOLATED");
    fx_run(x);
    expect_findings(x, (const char *const[]){"mode_changed|" ACCT_SBX "|eu-west-1|c1|history|-",
                                             "mode_changed|" ACCT_SBX "|eu-west-1|c2|history|-",
                                             "mode_changed|" ACCT_SBX "|eu-west-1|c3|history|-",
                                             NULL});
    const struct got *g = find(x, "mode_changed", ACCT_SBX, "c1");
    assert_string_equal(g->severity, "high");
    assert_true(json_is_true(json_object_get(g->details, "replaced")));
    assert_string_equal(dstr(g, "from"), "CUSTOMER_ROUTED");
    assert_string_equal(dstr(g, "to"), "AWS_MANAGED");
    assert_string_equal(g->observed, "AWS_MANAGED");
    g = find(x, "mode_changed", ACCT_SBX, "c2");
    assert_string_equal(g->severity, "info");
    assert_true(json_is_false(json_object_get(g->details, "replaced")));
    g = find(x, "mode_changed", ACCT_SBX, "c3");
    assert_true(json_is_null(json_object_get(g->details, "from")));
    assert_true(json_is_false(json_object_get(g->details, "replaced")));
    fx_free(x);
}

static void test_absent_mode_is_judged_as_aws_managed(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "nomode", NULL, NULL);
    fx_cluster(x, ACCT_SBX, "eu-west-1", "nomode2", NULL, NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){
                           "unknown_mode|" ACCT_REG "|eu-west-1|nomode|observation|absent",
                           "noncompliant_cluster|" ACCT_REG
                           "|eu-west-1|nomode|scp:p-enforce1|predates_scp",
                           "unknown_mode|" ACCT_SBX "|eu-west-1|nomode2|observation|absent", NULL});
    expect_counts(x, 2, 1, 1, 0, 0);
    const struct got *g = find(x, "unknown_mode", ACCT_REG, "nomode");
    assert_string_equal(g->severity, "low");
    assert_string_equal(dstr(g, "judged_as"), "AWS_MANAGED");
    assert_true(g->observed_null);
    g = find(x, "noncompliant_cluster", ACCT_REG, "nomode");
    assert_true(g->observed_null);
    assert_true(json_is_null(json_object_get(g->details, "observed_mode")));
    assert_string_equal(dstr(g, "judged_as"), "AWS_MANAGED");
    fx_free(x);
}

static void test_unrecognized_mode_is_unknown_only(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "future", "CUSTOMER_FUTURE", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){"unknown_mode|" ACCT_REG
                                             "|eu-west-1|future|observation|unrecognized",
                                             NULL});
    expect_counts(x, 1, 0, 0, 0, 1);
    const struct got *g = find(x, "unknown_mode", ACCT_REG, "future");
    assert_string_equal(g->severity, "medium");
    assert_string_equal(g->observed, "CUSTOMER_FUTURE");
    assert_string_equal(dstr(g, "value"), "CUSTOMER_FUTURE");
    fx_free(x);
}

/* ---- the declared policy: tags, exceptions, conflicts ---- */

static void test_tag_rule_restricts(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"AWS_MANAGED\","
                 "\"CUSTOMER_ROUTED\",\"CUSTOMER_ISOLATED\"]},\"rules\":[{\"id\":"
                 "\"restricted-data\",\"cluster_tags\":{\"data-class\":\"restricted\"},"
                 "\"allowed_modes\":[\"CUSTOMER_ROUTED\"]}]}");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "tagged", "AWS_MANAGED",
               "{\"data-class\":\"restricted\"}");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "plain", "AWS_MANAGED", "{\"data-class\":\"public\"}");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "tagged-cr", "CUSTOMER_ROUTED",
               "{\"data-class\":\"restricted\"}");
    fx_run(x);
    expect_findings(x, (const char *const[]){"noncompliant_cluster|" ACCT_SBX
                                             "|eu-west-1|tagged|policy:restricted-data|no_scp",
                                             NULL});
    expect_counts(x, 3, 2, 1, 0, 0);
    const struct got *g = find(x, "noncompliant_cluster", ACCT_SBX, "tagged");
    expect_strings(g, "tag_rules", (const char *const[]){"restricted-data", NULL});
    expect_strings(g, "allowed_modes", (const char *const[]){"CUSTOMER_ROUTED", NULL});
    fx_free(x);
}

#define LEGACY_ARN "arn:aws:eks:eu-west-1:" ACCT_SBX ":cluster/legacy"
#define GONE_ARN "arn:aws:eks:us-west-2:555555555555:cluster/gone"
static const char exception_policy[] =
    "{\"version\":1,\"default\":{\"allowed_modes\":[\"CUSTOMER_ROUTED\"]},\"exceptions\":["
    "{\"cluster_arn\":\"" LEGACY_ARN "\",\"reason\":\"SEC-123\",\"expires\":\"2027-01-31\"},"
    "{\"cluster_arn\":\"" GONE_ARN "\",\"reason\":\"SEC-9\",\"expires\":\"2026-01-01\"}]}";

static void test_valid_exception_exempts(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_policy(x, exception_policy);
    x->now = utc(2027, 1, 31, 23, 59, 59); /* the last second of the expiry day */
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "legacy", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(
        x, (const char *const[]){"exception_expired|555555555555|us-west-2|gone|policy:exception|"
                                 "SEC-9",
                                 NULL});
    expect_counts(x, 1, 0, 0, 1, 0);
    fx_free(x);
}

static void test_expired_exception_is_judged(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_policy(x, exception_policy);
    x->now = utc(2027, 2, 1, 0, 0, 0);
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "legacy", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(
        x, (const char *const[]){
               "exception_expired|" ACCT_SBX "|eu-west-1|legacy|policy:exception|SEC-123",
               "exception_expired|555555555555|us-west-2|gone|policy:exception|SEC-9",
               "noncompliant_cluster|" ACCT_SBX "|eu-west-1|legacy|policy:default|no_scp", NULL});
    expect_counts(x, 1, 0, 1, 0, 0);
    const struct got *g = find(x, "exception_expired", ACCT_SBX, "legacy");
    assert_string_equal(g->severity, "medium");
    assert_string_equal(dstr(g, "expires"), "2027-01-31");
    assert_string_equal(dstr(g, "cluster_arn"), LEGACY_ARN);
    g = find(x, "noncompliant_cluster", ACCT_SBX, "legacy");
    assert_string_equal(dstr(g, "exception_expired"), "2027-01-31");
    fx_free(x);
}

static void test_scp_conflict(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_policy(x, "{\"version\":1,\"rules\":[{\"id\":\"reg-legacy\",\"accounts\":[\"" ACCT_REG
                 "\"],\"allowed_modes\":[\"AWS_MANAGED\",\"CUSTOMER_ISOLATED\"]},"
                 "{\"id\":\"reg-eu\",\"accounts\":[\"" ACCT_REG "\"],\"regions\":[\"eu-*\"],"
                 "\"allowed_modes\":[\"AWS_MANAGED\",\"CUSTOMER_ROUTED\"]}]}");
    fx_scanned(x, ACCT_REG, "us-east-1");
    fx_scanned(x, ACCT_REG, "us-west-2");
    fx_scanned(x, ACCT_REG, "eu-west-1");  /* reg-eu allows CUSTOMER_ROUTED there: no conflict */
    fx_scanned(x, ACCT_PROD, "us-east-1"); /* default: everything allowed */
    fx_run(x);
    expect_findings(x, (const char *const[]){
                           "scp_conflict|" ACCT_REG "|us-east-1|-|policy:reg-legacy|-",
                           "scp_conflict|" ACCT_REG "|us-west-2|-|policy:reg-legacy|-", NULL});
    const struct got *g = find(x, "scp_conflict", ACCT_REG, "us-east-1");
    assert_string_equal(g->severity, "medium");
    assert_int_equal(g->allowed,
                     EGRESS_BIT(EGRESS_AWS_MANAGED) | EGRESS_BIT(EGRESS_CUSTOMER_ISOLATED));
    expect_modes_of(g, "denied", "AWS_MANAGED,CUSTOMER_ISOLATED,omitted", "denied");
    fx_free(x);

    /* The same rule everywhere: one finding for the account, region "*". */
    x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_policy(x, "{\"version\":1,\"rules\":[{\"id\":\"reg-legacy\",\"accounts\":[\"" ACCT_REG
                 "\"],\"allowed_modes\":[\"AWS_MANAGED\",\"CUSTOMER_ISOLATED\"]}]}");
    fx_scanned(x, ACCT_REG, "us-east-1");
    fx_scanned(x, ACCT_REG, "us-west-2");
    fx_run(x);
    expect_findings(
        x, (const char *const[]){"scp_conflict|" ACCT_REG "|*|-|policy:reg-legacy|-", NULL});
    g = find(x, "scp_conflict", ACCT_REG, "*");
    expect_strings(g, "regions", (const char *const[]){"us-east-1", "us-west-2", NULL});
    fx_free(x);
}

static void test_region_grouping(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-euonly", enforce_eu_west_1, OU_SBX, NULL);
    fx_policy(x, "{\"version\":1,\"rules\":[{\"id\":\"sbx\",\"ou\":\"" OU_SBX "\","
                 "\"allowed_modes\":[\"CUSTOMER_ROUTED\"],\"require_scp\":true},"
                 "{\"id\":\"prod\",\"ou\":\"" OU_PROD "\",\"allowed_modes\":"
                 "[\"CUSTOMER_ROUTED\",\"CUSTOMER_ISOLATED\"],\"require_scp\":true}]}");
    /* Enforced in eu-west-1 only: one finding, for us-east-1. */
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_scanned(x, ACCT_SBX, "us-east-1");
    /* An account that could not be scanned at all is still judged in the fleet's regions. */
    fx_target(x, ACCT_PROD, "*", TARGET_ASSUME_ROLE_DENIED, "AccessDenied", "denied");
    fx_run(x);
    expect_findings(
        x, (const char *const[]){"unenforced_intent|" ACCT_SBX "|us-east-1|-|policy:sbx|scp_gap",
                                 "unenforced_intent|" ACCT_PROD "|*|-|policy:prod|no_scp",
                                 "unscanned_target|" ACCT_PROD "|*|-|coverage|-", NULL});
    const struct got *g = find(x, "unenforced_intent", ACCT_SBX, "us-east-1");
    expect_modes_of(g, "leaking_modes", "AWS_MANAGED,CUSTOMER_ISOLATED,omitted", "allowed");
    expect_strings(g, "regions", (const char *const[]){"us-east-1", NULL});
    g = find(x, "unenforced_intent", ACCT_PROD, "*");
    expect_modes_of(g, "leaking_modes", "AWS_MANAGED,omitted", "allowed");
    expect_strings(g, "regions", (const char *const[]){"eu-west-1", "us-east-1", NULL});
    fx_free(x);
}

/* ---- what is not known is not guessed ---- */

static void test_scps_unknown_without_policy(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    x->scps_known = 0;
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "cr", "CUSTOMER_ROUTED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "nomode", NULL, NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){
                           "unknown_mode|" ACCT_REG "|eu-west-1|nomode|observation|absent", NULL});
    expect_counts(x, 3, 0, 0, 0, 3);
    fx_free(x);
}

static void test_scps_unknown_with_policy(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    x->scps_known = 0;
    fx_policy(x, "{\"version\":1,\"rules\":[{\"id\":\"regulated\",\"ou\":\"" OU_PROD "\","
                 "\"allowed_modes\":[\"CUSTOMER_ROUTED\"],\"require_scp\":true}]}");
    fx_scanned(x, ACCT_PROD, "eu-west-1");
    fx_cluster(x, ACCT_PROD, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_PROD, "eu-west-1", "cr", "CUSTOMER_ROUTED", NULL);
    fx_run(x);
    expect_findings(
        x, (const char *const[]){
               "noncompliant_cluster|" ACCT_PROD "|eu-west-1|am|policy:regulated|scp_unknown",
               "unenforced_intent|" ACCT_PROD "|*|-|policy:regulated|scp_unknown", NULL});
    expect_counts(x, 2, 1, 1, 0, 0);
    const struct got *g = find(x, "noncompliant_cluster", ACCT_PROD, "am");
    assert_string_equal(dstr(g, "remediation_permitted_by_scps"), "unknown");
    assert_true(json_is_false(json_object_get(g->details, "scp_known")));
    assert_null(json_object_get(g->details, "scp"));
    assert_non_null(strstr(dstr(g, "scp_note"), "could not be read"));
    g = find(x, "unenforced_intent", ACCT_PROD, "-");
    assert_string_equal(g->severity, "medium");
    expect_modes_of(g, "leaking_modes", "AWS_MANAGED,CUSTOMER_ISOLATED,omitted", "unknown");
    fx_free(x);
}

static void test_unevaluable_scp(void **state)
{
    (void)state;
    /* A malformed SCP on the path: without a policy the intent for the mode is unknown. */
    struct fx *x = fx_new();
    fx_scp(x, "p-broken", "{\"Version\":\"2012-10-17\",\"Statement\":42}", OU_SBX, NULL);
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){NULL});
    expect_counts(x, 1, 0, 0, 0, 1);
    fx_free(x);

    /* With a policy the policy judges; the SCPs' part is reported as unevaluable. */
    x = fx_new();
    fx_scp(x, "p-broken", "{\"Version\":\"2012-10-17\",\"Statement\":42}", OU_SBX, NULL);
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"CUSTOMER_ROUTED\"]}}");
    fx_scanned(x, ACCT_SBX, "eu-west-1");
    fx_cluster(x, ACCT_SBX, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){"noncompliant_cluster|" ACCT_SBX
                                             "|eu-west-1|am|policy:default|scp_gap",
                                             NULL});
    const struct got *g = find(x, "noncompliant_cluster", ACCT_SBX, "am");
    const char *gap = json_string_value(json_array_get(json_object_get(g->details, "gaps"), 0));
    assert_non_null(gap);
    assert_memory_equal(gap, "unevaluable: ", 13);
    expect_counts(x, 1, 0, 1, 0, 0);
    fx_free(x);
}

static void test_incomplete_snapshot_is_unevaluable(void **state)
{
    (void)state;
    /* An account no SCP is attached to (AWS never allows that while SCPs are on): the snapshot
     * lacks something, so nothing is concluded from the missing level. */
    struct fx *x = fx_new();
    fx_account(x, "555555555555", ROOT "/" OU_SBX, 0);
    fx_scanned(x, "555555555555", "eu-west-1");
    fx_cluster(x, "555555555555", "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){NULL});
    expect_counts(x, 1, 0, 0, 0, 1);

    struct drift_input in;
    fx_input(x, &in);
    struct scp_decision modes[EGRESS_MODES], update;
    int exempt = -1;
    struct err e;
    err_clear(&e);
    assert_int_equal(
        drift_scp_intent(&in, "555555555555", "eu-west-1", modes, &update, &exempt, &e), 0);
    assert_int_equal(modes[EGRESS_AWS_MANAGED].verdict, SCP_UNEVALUABLE);
    assert_non_null(strstr(modes[EGRESS_AWS_MANAGED].reason, "555555555555"));
    fx_free(x);
}

/* No SCP attached anywhere: SCPs are not in effect (policy type disabled), everything allowed. */
static void test_no_scps_attached_anywhere(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    x->scps[0].n_targets = 0;
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "am", "AWS_MANAGED", NULL);
    fx_run(x);
    expect_findings(x, (const char *const[]){NULL});
    expect_counts(x, 1, 1, 0, 0, 0);
    fx_free(x);
}

/* ---- drift_scp_intent (egressscan scps) and failures ---- */

static void test_scp_intent(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scp(x, "p-rootgap", deny_named_managed, ROOT, NULL);
    struct drift_input in;
    fx_input(x, &in);
    struct scp_decision modes[EGRESS_MODES], update;
    int exempt = -1;
    struct err e;
    err_clear(&e);

    assert_int_equal(drift_scp_intent(&in, ACCT_REG, "eu-west-1", modes, &update, &exempt, &e), 0);
    assert_int_equal(exempt, 0);
    assert_int_equal(modes[EGRESS_AWS_MANAGED].verdict, SCP_DENIED);
    assert_int_equal(modes[EGRESS_CUSTOMER_ROUTED].verdict, SCP_ALLOWED);
    assert_int_equal(modes[EGRESS_CUSTOMER_ISOLATED].verdict, SCP_DENIED);
    assert_int_equal(modes[EGRESS_OMITTED].verdict, SCP_DENIED);
    assert_int_equal(update.verdict, SCP_ALLOWED);
    assert_true(modes[EGRESS_AWS_MANAGED].restricts_mode);

    /* Root only: the gap SCP; omitted slips through. */
    assert_int_equal(drift_scp_intent(&in, ACCT_ROOT, "eu-west-1", modes, &update, &exempt, &e), 0);
    assert_int_equal(modes[EGRESS_AWS_MANAGED].verdict, SCP_DENIED);
    assert_int_equal(modes[EGRESS_OMITTED].verdict, SCP_ALLOWED);
    assert_int_equal(modes[EGRESS_CUSTOMER_ISOLATED].verdict, SCP_ALLOWED);

    /* The management account: as if the SCPs applied, and exempt. */
    assert_int_equal(drift_scp_intent(&in, MGMT, "eu-west-1", modes, &update, &exempt, &e), 0);
    assert_int_equal(exempt, 1);
    assert_int_equal(modes[EGRESS_AWS_MANAGED].verdict, SCP_DENIED);

    assert_int_equal(
        drift_scp_intent(&in, "000000000000", "eu-west-1", modes, &update, &exempt, &e), -1);
    assert_true(err_isset(&e));

    /* SCPs unreadable: every decision unevaluable, with the reason. */
    in.scps_known = 0;
    err_clear(&e);
    assert_int_equal(drift_scp_intent(&in, ACCT_REG, "eu-west-1", modes, &update, &exempt, &e), 0);
    for (int m = 0; m < EGRESS_MODES; m++)
        assert_int_equal(modes[m].verdict, SCP_UNEVALUABLE);
    assert_non_null(strstr(modes[0].reason, "could not be read"));
    fx_free(x);
}

/* Only S3: a level holding it alone allows no EKS request ("no Allow at ACCOUNT"). */
static const char s3_only[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
    "\"Resource\":\"*\"}]}";

/* Names one account's clusters: its decisions differ from its neighbours' on the same path. */
static const char deny_update_777[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"NoUpdate777\",\"Effect\":\"Deny\","
    "\"Action\":\"eks:UpdateClusterConfig\",\"Resource\":"
    "\"arn:aws:eks:*:777777777777:cluster/*\"}]}";

static void assert_same_decision(const struct scp_decision *a, const struct scp_decision *b,
                                 const char *account, const char *region)
{
    if (a->verdict != b->verdict || a->n_statements != b->n_statements ||
        strcmp(a->reason, b->reason) != 0 || strcmp(a->allowed_principal, b->allowed_principal) ||
        strcmp(a->denied_principal, b->denied_principal) || a->restricts_mode != b->restricts_mode)
        fail_msg("%s %s: cached %s (%s) vs %s (%s)", account, region, scp_verdict_name(a->verdict),
                 a->reason, scp_verdict_name(b->verdict), b->reason);
    for (size_t k = 0; k < a->n_statements; k++)
        if (strcmp(a->statements[k], b->statements[k]) != 0)
            fail_msg("%s %s: statement %zu: cached %s vs %s", account, region, k, a->statements[k],
                     b->statements[k]);
}

/* The fleet-wide intent (egressscan scps) shares decisions between accounts: every decision must
 * be drift_scp_intent's own, for accounts on the same path with and without an SCP of their own,
 * in a region an SCP singles out and one it does not, under an SCP naming one account, and where
 * the decision spells the account (its level without an Allow, principal examples). */
static void test_intent_cache_matches_each_account(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_account(x, "555555555555", ROOT "/" OU_SBX, 0);  /* + its own enforcing SCP */
    fx_account(x, "666666666666", ROOT "/" OU_SBX, 0);  /* as ACCT_SBX */
    fx_account(x, "777777777777", ROOT "/" OU_PROD, 0); /* named by deny_update_777 */
    fx_account(x, "888888888888", ROOT, 0);             /* only s3_only at its level */
    fx_account(x, "101010101010", ROOT, 0);             /* the same */
    for (const char *const *a =
             (const char *const[]){"555555555555", "666666666666", "777777777777", NULL};
         *a; a++)
        x->scp_targets[0][x->scps[0].n_targets++] = *a;
    fx_scp(x, "p-sbxeu", enforce_eu_west_1, OU_SBX, NULL);
    fx_scp(x, "p-sbxbg", enforce_but_breakglass, OU_SBX, NULL);
    fx_scp(x, "p-acct555", enforce_routed, "555555555555", NULL);
    fx_scp(x, "p-prod777", deny_update_777, OU_PROD, NULL);
    fx_scp(x, "p-s3only", s3_only, "888888888888", "101010101010", NULL);
    struct drift_input in;
    fx_input(x, &in);
    struct err e;
    err_clear(&e);
    struct drift_intent_cache *c = drift_intent_cache_new(&in, &e);
    assert_non_null(c);

    static const char *const order[] = {
        "666666666666", "555555555555", ACCT_SBX,       "777777777777", ACCT_PROD,
        ACCT_REG,       "888888888888", "101010101010", MGMT,           ACCT_ROOT};
    static const char *const regions[] = {"us-east-1", "eu-west-1"};
    size_t n = sizeof order / sizeof order[0], calls = 0;
    struct scp_decision got[EGRESS_MODES + 1], want[EGRESS_MODES + 1];
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++)
            for (size_t r = 0; r < 2; r++) {
                /* the second pass backwards: entries made by other accounts */
                const char *acct = order[pass ? n - 1 - i : i];
                int ex_got = -1, ex_want = -2;
                assert_int_equal(drift_intent_cache_decide(c, acct, regions[r], got,
                                                           &got[EGRESS_MODES], &ex_got, &e),
                                 0);
                assert_int_equal(drift_scp_intent(&in, acct, regions[r], want, &want[EGRESS_MODES],
                                                  &ex_want, &e),
                                 0);
                assert_int_equal(ex_got, ex_want);
                for (int m = 0; m <= EGRESS_MODES; m++)
                    assert_same_decision(&got[m], &want[m], acct, regions[r]);
                calls++;
            }
    size_t evaluated, reused;
    drift_intent_cache_stats(c, &evaluated, &reused);
    assert_int_equal(evaluated + reused, calls);
    /* evaluated once per region: Sandbox with FullAWSAccess (666, ACCT_SBX), Sandbox with 555's
     * own SCP, the root with s3_only (888, 101010), the root with FullAWSAccess (MGMT,
     * ACCT_ROOT); every time under Prod, whose deny_update_777 reads the account */
    assert_int_equal(evaluated, 4 * 2 + 3 * 2 * 2);

    /* what makes the differences, seen through the cache */
    struct scp_decision d[EGRESS_MODES + 1];
    assert_int_equal(
        drift_intent_cache_decide(c, "666666666666", "us-east-1", d, &d[EGRESS_MODES], NULL, &e),
        0);
    assert_int_equal(d[EGRESS_AWS_MANAGED].verdict, SCP_PRINCIPAL_DEPENDENT);
    assert_non_null(strstr(d[EGRESS_AWS_MANAGED].allowed_principal, ":666666666666:"));
    assert_int_equal(
        drift_intent_cache_decide(c, "555555555555", "us-east-1", d, &d[EGRESS_MODES], NULL, &e),
        0);
    assert_int_equal(d[EGRESS_AWS_MANAGED].verdict, SCP_DENIED);
    assert_int_equal(
        drift_intent_cache_decide(c, "666666666666", "eu-west-1", d, &d[EGRESS_MODES], NULL, &e),
        0);
    assert_int_equal(d[EGRESS_AWS_MANAGED].verdict, SCP_DENIED);
    assert_int_equal(
        drift_intent_cache_decide(c, ACCT_PROD, "eu-west-1", d, &d[EGRESS_MODES], NULL, &e), 0);
    assert_int_equal(d[EGRESS_MODES].verdict, SCP_ALLOWED);
    assert_int_equal(
        drift_intent_cache_decide(c, "777777777777", "eu-west-1", d, &d[EGRESS_MODES], NULL, &e),
        0);
    assert_int_equal(d[EGRESS_MODES].verdict, SCP_DENIED);
    assert_int_equal(
        drift_intent_cache_decide(c, "101010101010", "eu-west-1", d, &d[EGRESS_MODES], NULL, &e),
        0);
    assert_int_equal(d[EGRESS_CUSTOMER_ROUTED].verdict, SCP_DENIED);
    assert_string_equal(d[EGRESS_CUSTOMER_ROUTED].statements[0], "no Allow at 101010101010");

    assert_int_equal(
        drift_intent_cache_decide(c, "000000000000", "eu-west-1", d, &d[EGRESS_MODES], NULL, &e),
        -1);
    assert_true(err_isset(&e));
    drift_intent_cache_free(c);
    fx_free(x);
}

static void test_emit_failure_stops(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce1", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_cluster(x, ACCT_REG, "eu-west-1", "a", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "b", "AWS_MANAGED", NULL);
    fx_target(x, ACCT_SBX, "*", TARGET_ERROR, "InternalError", "boom");
    x->fail_emit_at = 2;
    struct drift_input in;
    fx_input(x, &in);
    struct err e;
    err_clear(&e);
    assert_int_equal(drift_evaluate(&in, collect, x, &x->counts, &e), -1);
    assert_true(err_isset(&e));
    assert_int_equal(x->emits, 2); /* nothing after the failure */
    fx_free(x);
}

struct tally {
    long noncompliant, other;
};

static int tally(void *ud, const struct finding *f)
{
    struct tally *t = ud;
    if (strcmp(f->kind, "noncompliant_cluster") != 0) {
        t->other++;
        return 0;
    }
    t->noncompliant++;
    assert_string_equal(f->source, "scp:p-enforce1");
    assert_non_null(strstr(f->details_json, "\"reason\":\"predates_scp\""));
    return 0;
}

/* Many accounts sharing a path shape: each judged with its own decisions, counts add up. */
static int count_judged(void *ud, const struct drift_cluster *c, enum cluster_judgement j)
{
    char *log = ud;
    size_t len = strlen(log);
    snprintf(log + len, 512 - len, "%s%s=%s", len ? "," : "", c->name, cluster_judgement_name(j));
    return 0;
}

/* A cluster whose target was not scanned ok is not judged: no finding, not counted as anything
 * but unverified; the others are judged and each judgement is handed out. */
static void test_unverified_clusters_are_not_judged(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_scp(x, "p-enforce", enforce_routed, OU_REG, NULL);
    fx_scanned(x, ACCT_REG, "eu-west-1");
    fx_target(x, ACCT_REG, "us-east-1", TARGET_THROTTLED, "ThrottlingException", "Rate exceeded");
    fx_cluster(x, ACCT_REG, "eu-west-1", "seen", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "eu-west-1", "routed", "CUSTOMER_ROUTED", NULL);
    fx_cluster(x, ACCT_REG, "us-east-1", "stale", "AWS_MANAGED", NULL);
    fx_cluster(x, ACCT_REG, "us-east-1", "stale-absent", NULL, NULL);
    x->clusters[2].unverified = x->clusters[3].unverified = 1;
    struct drift_input in;
    fx_input(x, &in);
    char log[512] = "";
    in.on_judged = count_judged;
    in.judged_ud = log;
    struct err e;
    err_clear(&e);
    assert_int_equal(drift_evaluate(&in, collect, x, &x->counts, &e), 0);
    expect_counts(x, 2, 1, 1, 0, 0);
    assert_int_equal(x->counts.unverified, 2);
    assert_string_equal(log, "routed=compliant,seen=noncompliant");
    const char *want[] = {"noncompliant_cluster|" ACCT_REG "|eu-west-1|seen|scp:p-enforce|"
                          "predates_scp",
                          "unscanned_target|" ACCT_REG "|us-east-1|-|coverage|-", NULL};
    expect_findings(x, want);
    fx_free(x);
}

/* A suspended account left the fleet: no unscanned_target, nothing judged or enforced there; an
 * scp_denied target names the SCP statements the scanner recorded and says how to fix it. */
static void test_suspended_and_scp_denied_targets(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    fx_policy(x, "{\"version\":1,\"default\":{\"allowed_modes\":[\"CUSTOMER_ROUTED\"]},"
                 "\"rules\":[{\"id\":\"sbx\",\"accounts\":[\"" ACCT_SBX "\"],"
                 "\"allowed_modes\":[\"CUSTOMER_ROUTED\"],\"require_scp\":true}]}");
    fx_scp(x, "p-regiondeny",
           "{\"Statement\":[{\"Sid\":\"DenyOutsideRegions\",\"Effect\":\"Deny\","
           "\"NotAction\":[\"iam:*\",\"sts:*\",\"organizations:*\"],\"Resource\":\"*\","
           "\"Condition\":{\"StringNotEquals\":{\"aws:RequestedRegion\":[\"eu-west-1\"]},"
           "\"ArnNotLike\":{\"aws:PrincipalArn\":[\"arn:aws:iam::*:role/Admin\"]}}}]}",
           OU_REG, NULL);
    fx_target(x, ACCT_REG, "ap-south-1", TARGET_SCP_DENIED, "AccessDeniedException",
              "not authorized to perform: eks:ListClusters with an explicit deny in a service "
              "control policy");
    fx_target(x, ACCT_SBX, "*", TARGET_SUSPENDED, NULL, "account status SUSPENDED");
    fx_scanned(x, ACCT_PROD, "eu-west-1");
    fx_target(x, ACCT_PROD, "ap-south-1", TARGET_SCP_DENIED, "DeniedBySCP",
              "not called: SCP statement p-regiondeny#DenyOutsideRegions denies eks:ListClusters "
              "to arn:aws:iam::" ACCT_PROD ":role/EgressScanReadOnly in ap-south-1");
    fx_target(x, ACCT_ROOT, "ap-south-1", TARGET_SCP_DENIED, "AccessDeniedException",
              "User: arn:aws:sts::" ACCT_ROOT ":assumed-role/EgressScanReadOnly/x is not "
              "authorized to perform: eks:ListClusters with an explicit deny in a service "
              "control policy");
    fx_run(x);
    const struct got *g = find(x, "unscanned_target", ACCT_PROD, "ap-south-1");
    assert_string_equal(g->severity, "medium");
    assert_string_equal(dstr(g, "status"), "scp_denied");
    json_t *by = json_object_get(g->details, "denied_by");
    assert_int_equal(json_array_size(by), 1);
    assert_string_equal(json_string_value(json_array_get(by, 0)),
                        "p-regiondeny#DenyOutsideRegions");
    assert_non_null(strstr(dstr(g, "fix"), "SCP p-regiondeny statement DenyOutsideRegions"));
    assert_non_null(strstr(dstr(g, "fix"), "role/EgressScanReadOnly"));
    assert_non_null(strstr(dstr(g, "fix"), "leave region ap-south-1 out"));
    /* an AWS message is free text: no statement is made up from it */
    g = find(x, "unscanned_target", ACCT_ROOT, "ap-south-1");
    assert_int_equal(json_array_size(json_object_get(g->details, "denied_by")), 0);
    assert_non_null(strstr(dstr(g, "fix"), "exempt it in that SCP"));
    for (size_t i = 0; i < x->n_got; i++)
        assert_string_not_equal(x->got[i].account, ACCT_SBX);
    /* AWS's refusal in an account whose path has a region deny: the SCPs name the statement */
    g = find(x, "unscanned_target", ACCT_REG, "ap-south-1");
    by = json_object_get(g->details, "denied_by");
    assert_int_equal(json_array_size(by), 1);
    assert_string_equal(json_string_value(json_array_get(by, 0)),
                        "p-regiondeny#DenyOutsideRegions");
    fx_free(x);
}

static void test_many_accounts(void **state)
{
    (void)state;
    enum { N = 200 };
    static char ids[N][13], arns[N][96];
    static struct drift_account accounts[N];
    static struct drift_cluster clusters[N];
    static struct drift_target targets[2 * N];
    static const char *full_targets[N + 3];
    size_t nt = 0;
    full_targets[0] = ROOT;
    full_targets[1] = OU_PROD;
    full_targets[2] = OU_REG;
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%012d", 100000 + i);
        snprintf(arns[i], sizeof arns[i], "arn:aws:eks:eu-west-1:%012d:cluster/c", 100000 + i);
        accounts[i] = (struct drift_account){ids[i], NULL, ROOT "/" OU_PROD "/" OU_REG, 0};
        clusters[i] = (struct drift_cluster){
            ids[i], "eu-west-1", "c", arns[i], i % 2 ? "AWS_MANAGED" : "CUSTOMER_ROUTED", NULL, 0};
        targets[nt++] = (struct drift_target){ids[i], "eu-west-1", TARGET_OK, NULL, NULL};
        targets[nt++] = (struct drift_target){ids[i], "us-east-1", TARGET_OK, NULL, NULL};
        full_targets[3 + i] = ids[i];
    }
    const char *enforce_targets[] = {OU_REG};
    struct scp_policy scps[] = {
        {"p-FullAWSAccess", "FullAWSAccess", full_access, full_targets, N + 3, 1},
        {"p-enforce1", "enforce", enforce_routed, enforce_targets, 1, 0},
    };
    struct drift_input in = {0};
    in.accounts = accounts;
    in.n_accounts = N;
    in.scps = scps;
    in.n_scps = 2;
    in.scps_known = 1;
    in.clusters = clusters;
    in.n_clusters = N;
    in.targets = targets;
    in.n_targets = nt;
    struct err e;
    err_clear(&e);
    struct tally t = {0};
    struct drift_counts counts;
    assert_int_equal(drift_evaluate(&in, tally, &t, &counts, &e), 0);
    assert_int_equal(t.noncompliant, N / 2);
    assert_int_equal(t.other, 0);
    assert_int_equal(counts.clusters, N);
    assert_int_equal(counts.compliant, N / 2);
    assert_int_equal(counts.noncompliant, N / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enforcing_scp_predates),
        cmocka_unit_test(test_remediation_quotes_every_value),
        cmocka_unit_test(test_gap_scp_with_require_scp),
        cmocka_unit_test(test_principal_exemption_is_a_gap),
        cmocka_unit_test(test_no_scp_on_the_path),
        cmocka_unit_test(test_action_the_scp_misses_is_a_gap),
        cmocka_unit_test(test_management_account),
        cmocka_unit_test(test_management_account_cannot_enforce),
        cmocka_unit_test(test_unscanned_targets),
        cmocka_unit_test(test_mode_changed),
        cmocka_unit_test(test_absent_mode_is_judged_as_aws_managed),
        cmocka_unit_test(test_unrecognized_mode_is_unknown_only),
        cmocka_unit_test(test_tag_rule_restricts),
        cmocka_unit_test(test_valid_exception_exempts),
        cmocka_unit_test(test_expired_exception_is_judged),
        cmocka_unit_test(test_scp_conflict),
        cmocka_unit_test(test_region_grouping),
        cmocka_unit_test(test_scps_unknown_without_policy),
        cmocka_unit_test(test_scps_unknown_with_policy),
        cmocka_unit_test(test_unevaluable_scp),
        cmocka_unit_test(test_incomplete_snapshot_is_unevaluable),
        cmocka_unit_test(test_no_scps_attached_anywhere),
        cmocka_unit_test(test_scp_intent),
        cmocka_unit_test(test_intent_cache_matches_each_account),
        cmocka_unit_test(test_emit_failure_stops),
        cmocka_unit_test(test_many_accounts),
        cmocka_unit_test(test_unverified_clusters_are_not_judged),
        cmocka_unit_test(test_suspended_and_scp_denied_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
