/* test_whatif.c - the SCP what-if (intent/whatif): one organization snapshot built in C (root,
 * a Prod OU with an enforcing SCP and a Dev OU with none, FullAWSAccess everywhere, a management
 * account, three clusters) and, table-driven, the classic mistakes a proposal makes - an SCP that
 * denies UpdateClusterConfig altogether, a Null-guarded Deny, a region-deny without the scanner's
 * exemption, detaching FullAWSAccess at an OU - next to the proposals that get it right: for each
 * the exact verdicts before and after per account x region, the clusters that could not be
 * created again, the remediations blocked, the scanner calls denied, the findings opened and
 * closed, and the exit code `scps --with` gives. Also the validation of a proposed document
 * (size, grammar) with file:line:column, and of the targets. No database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model.h"
#include "intent/drift.h"
#include "intent/policy.h"
#include "intent/whatif.h"

#define ROOT "r-ab12"
#define OU_PROD "ou-ab12-prod0001"
#define OU_DEV "ou-ab12-dev00001"
#define PROD "111111111111"
#define DEV "222222222222"
#define MGMT "999999999999"

static const char full_access[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
    "\"Resource\":\"*\"}]}";

/* On Prod: CreateCluster only with CUSTOMER_ROUTED (leaving the mode out is denied too). */
static const char enforce[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"RequireCustomerRouted\","
    "\"Effect\":\"Deny\",\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":"
    "{\"StringNotEquals\":{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"}}}]}";

/* ---- the proposals ---- */

/* Mistake 1: freezes every UpdateClusterConfig, the in-place remediation included. */
static const char deny_update[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"FreezeClusterConfig\","
    "\"Effect\":\"Deny\",\"Action\":\"eks:UpdateClusterConfig\",\"Resource\":\"*\"}]}";

/* Mistake 2: the Null guard makes the Deny skip a request that leaves the mode out. */
static const char null_guarded[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"RequireRouted\",\"Effect\":\"Deny\","
    "\"Action\":\"eks:CreateCluster\",\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"
    "{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"},\"Null\":"
    "{\"eks:controlPlaneEgressMode\":\"false\"}}}]}";

/* Mistake 3: a region-deny that does not exempt the scanner's role. */
static const char region_deny[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyOutsideEU\",\"Effect\":\"Deny\","
    "\"NotAction\":[\"iam:*\",\"organizations:*\",\"sts:*\",\"support:*\"],\"Resource\":\"*\","
    "\"Condition\":{\"StringNotEquals\":{\"aws:RequestedRegion\":[\"eu-west-1\"]}}}]}";

/* ... and the same with the exemption. */
static const char region_deny_exempt[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyOutsideEU\",\"Effect\":\"Deny\","
    "\"NotAction\":[\"iam:*\",\"organizations:*\",\"sts:*\",\"support:*\"],\"Resource\":\"*\","
    "\"Condition\":{\"StringNotEquals\":{\"aws:RequestedRegion\":[\"eu-west-1\"]},"
    "\"ArnNotLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*:role/EgressScanReadOnly\"}}}]}";

/* The declared policy of the variants judged with one: Dev must be CUSTOMER_ROUTED, by SCP. */
static const char dev_policy[] =
    "{\"version\":1,\"default\":{\"allowed_modes\":[\"AWS_MANAGED\",\"CUSTOMER_ROUTED\","
    "\"CUSTOMER_ISOLATED\"]},\"rules\":[{\"id\":\"dev-routed\",\"ou\":\"" OU_DEV "\","
    "\"allowed_modes\":[\"CUSTOMER_ROUTED\"],\"require_scp\":true}]}";

/* ---- the snapshot ---- */

static const struct drift_account accounts[] = {
    {PROD, "prod1", ROOT "/" OU_PROD, 0},
    {DEV, "dev1", ROOT "/" OU_DEV, 0},
    {MGMT, "mgmt", ROOT, 1},
};

static const char *const full_targets[] = {ROOT, OU_PROD, OU_DEV, PROD, DEV, MGMT};
static const char *const enforce_targets[] = {OU_PROD};
static const struct scp_policy scps[] = {
    {"p-FullAWSAccess", "FullAWSAccess", full_access, full_targets, 6, 1},
    {"p-enforce01", "enforce", enforce, enforce_targets, 1, 0},
};

static const struct drift_cluster clusters[] = {
    {PROD, "eu-west-1", "legacy", "arn:aws:eks:eu-west-1:" PROD ":cluster/legacy", "AWS_MANAGED",
     NULL, 0},
    {PROD, "eu-west-1", "routed", "arn:aws:eks:eu-west-1:" PROD ":cluster/routed",
     "CUSTOMER_ROUTED", NULL, 0},
    {DEV, "us-east-1", "devc", "arn:aws:eks:us-east-1:" DEV ":cluster/devc", "AWS_MANAGED", NULL,
     0},
};

static const struct drift_target targets[] = {
    {PROD, "eu-west-1", TARGET_OK, NULL, NULL}, {PROD, "us-east-1", TARGET_OK, NULL, NULL},
    {DEV, "eu-west-1", TARGET_OK, NULL, NULL},  {DEV, "us-east-1", TARGET_OK, NULL, NULL},
    {MGMT, "eu-west-1", TARGET_OK, NULL, NULL}, {MGMT, "us-east-1", TARGET_OK, NULL, NULL},
};

static void snapshot(struct drift_input *in, const struct policy *policy)
{
    memset(in, 0, sizeof *in);
    in->accounts = accounts;
    in->n_accounts = 3;
    in->scps = scps;
    in->n_scps = 2;
    in->scps_known = 1;
    in->clusters = clusters;
    in->n_clusters = 3;
    in->targets = targets;
    in->n_targets = 6;
    in->policy = policy;
    in->now = 1800000000;
}

/* ---- the table ---- */

#define MAX_ROWS 6
#define MAX_LIST 6

struct row {
    const char *account, *region;
    const char *before, *after; /* "DADD A": AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED,
                                   omitted, then the update to CUSTOMER_ROUTED; A allowed, D
                                   denied, P principal-dependent, U unevaluable (raw verdicts:
                                   for the management account, as if the SCPs applied) */
};

struct wcase {
    const char *name;
    const char *doc;       /* attached to attach_to (NULL: none) */
    const char *attach_to; /* root, OU or account */
    const char *detach;    /* "p-…" or "p-…@TARGET" (NULL: none) */
    int with_policy;       /* judged with dev_policy */
    struct row rows[MAX_ROWS];
    const char *predates[MAX_LIST];     /* cluster names that could not be created again */
    const char *blocked[MAX_LIST];      /* clusters whose in-place remediation is blocked */
    const char *remediations[MAX_LIST]; /* every cluster checked: "name:BEFORE>AFTER" */
    const char *scanner[MAX_LIST];      /* "ACCOUNT/REGION" newly denied to the scanner */
    const char *deltas[MAX_LIST];       /* "+kind/reason/account/region/cluster" (- closes) */
    int exit_code;                      /* `scps --with`: 1 blocks a remediation or the scanner */
};

static const struct wcase cases[] = {
    {"deny UpdateClusterConfig altogether, on Prod",
     deny_update,
     OU_PROD,
     NULL,
     0,
     {{PROD, "eu-west-1", "DADD A", "DADD D"}, {PROD, "us-east-1", "DADD A", "DADD D"}},
     {NULL},
     {"legacy"},
     {"legacy:A>D"},
     {NULL},
     {NULL},
     1},
    {"Null-guarded Deny on Dev (SCP-backed intent)",
     null_guarded,
     OU_DEV,
     NULL,
     0,
     {{DEV, "eu-west-1", "AAAA A", "DADA A"}, {DEV, "us-east-1", "AAAA A", "DADA A"}},
     {NULL},
     {NULL},
     {"devc:A>A"},
     {NULL},
     {"+noncompliant_cluster/scp_gap/" DEV "/us-east-1/devc"},
     0},
    {"Null-guarded Deny on Dev (declared policy: Dev routed, require_scp)",
     null_guarded,
     OU_DEV,
     NULL,
     1,
     {{DEV, "eu-west-1", "AAAA A", "DADA A"}, {DEV, "us-east-1", "AAAA A", "DADA A"}},
     {NULL},
     {NULL},
     {"devc:A>A"},
     {NULL},
     {"-noncompliant_cluster/no_scp/" DEV "/us-east-1/devc", "-unenforced_intent/no_scp/" DEV "/*/",
      "+noncompliant_cluster/scp_gap/" DEV "/us-east-1/devc",
      "+unenforced_intent/scp_gap/" DEV "/*/"},
     0},
    {"region-deny without the scanner's exemption, at the root",
     region_deny,
     ROOT,
     NULL,
     0,
     {{PROD, "eu-west-1", "DADD A", "DADD A"},
      {PROD, "us-east-1", "DADD A", "DDDD D"},
      {DEV, "eu-west-1", "AAAA A", "AAAA A"},
      {DEV, "us-east-1", "AAAA A", "DDDD D"},
      {MGMT, "eu-west-1", "AAAA A", "AAAA A"},
      {MGMT, "us-east-1", "AAAA A", "DDDD D"}},
     {"devc"},
     {NULL},
     {"legacy:A>A"},
     {PROD "/us-east-1", DEV "/us-east-1"},
     {"+noncompliant_cluster/predates_scp/" DEV "/us-east-1/devc"},
     1},
    {"region-deny with the scanner's exemption, at the root",
     region_deny_exempt,
     ROOT,
     NULL,
     0,
     {{PROD, "eu-west-1", "DADD A", "DADD A"},
      {PROD, "us-east-1", "DADD A", "DPDD P"},
      {DEV, "eu-west-1", "AAAA A", "AAAA A"},
      {DEV, "us-east-1", "AAAA A", "PPPP P"},
      {MGMT, "eu-west-1", "AAAA A", "AAAA A"},
      {MGMT, "us-east-1", "AAAA A", "PPPP P"}},
     {NULL},
     {NULL},
     {"legacy:A>A"},
     {NULL},
     /* principal-dependent is not intended (SCP-backed intent); no SCP restricts the mode */
     {"+noncompliant_cluster/no_scp/" DEV "/us-east-1/devc"},
     0},
    {"detach FullAWSAccess from Prod",
     NULL,
     NULL,
     "p-FullAWSAccess@" OU_PROD,
     0,
     {{PROD, "eu-west-1", "DADD A", "DDDD D"}, {PROD, "us-east-1", "DADD A", "DDDD D"}},
     {"routed"},
     {"legacy"},
     {"legacy:A>D"},
     {PROD "/eu-west-1", PROD "/us-east-1"},
     {"+noncompliant_cluster/predates_scp/" PROD "/eu-west-1/routed"},
     1},
    {"the enforcing SCP on Dev (done right)",
     enforce,
     OU_DEV,
     NULL,
     0,
     {{DEV, "eu-west-1", "AAAA A", "DADD A"}, {DEV, "us-east-1", "AAAA A", "DADD A"}},
     {"devc"},
     {NULL},
     {"devc:A>A"},
     {NULL},
     {"+noncompliant_cluster/predates_scp/" DEV "/us-east-1/devc"},
     0},
};

static void verdicts(const struct scp_decision *d, char out[7])
{
    for (int m = 0; m < EGRESS_MODES; m++)
        out[m] = "ADPU"[d[m].verdict];
    out[4] = ' ';
    out[5] = "ADPU"[d[EGRESS_MODES].verdict];
    out[6] = '\0';
}

static size_t count(const char *const *list)
{
    size_t n = 0;
    while (n < MAX_LIST && list[n])
        n++;
    return n;
}

static int listed(const char *const *list, const char *s)
{
    for (size_t i = 0; i < MAX_LIST && list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static void run_case(const struct wcase *c)
{
    struct policy *policy = NULL;
    struct err e;
    err_clear(&e);
    if (c->with_policy) {
        policy = policy_parse(dev_policy, strlen(dev_policy), "policy.json", NULL, &e);
        if (!policy)
            fail_msg("policy_parse: %s", e.message);
    }
    struct drift_input in;
    snapshot(&in, policy);
    struct whatif_change ch[2];
    size_t n_ch = 0;
    char detach_id[64];
    if (c->doc)
        ch[n_ch++] = (struct whatif_change){WHATIF_ATTACH, "proposed-1", c->doc, "proposed.json",
                                            c->attach_to};
    if (c->detach) {
        snprintf(detach_id, sizeof detach_id, "%s", c->detach);
        char *at = strchr(detach_id, '@');
        if (at)
            *at++ = '\0';
        ch[n_ch++] = (struct whatif_change){WHATIF_DETACH, detach_id, NULL, NULL, at};
    }
    struct whatif_input wi = {.before = &in, .changes = ch, .n_changes = n_ch};
    struct whatif_result r;
    if (whatif_run(&wi, &r, &e) != 0)
        fail_msg("%s: whatif_run: %s", c->name, e.message);

    /* every account x region under the change, with its verdicts before and after */
    size_t n_rows = 0;
    while (n_rows < MAX_ROWS && c->rows[n_rows].account)
        n_rows++;
    if (r.n_targets != n_rows)
        fail_msg("%s: %zu rows, want %zu", c->name, r.n_targets, n_rows);
    for (size_t i = 0; i < n_rows; i++) {
        const struct row *w = &c->rows[i];
        const struct whatif_target *t = &r.targets[i];
        char b[7], a[7];
        verdicts(t->before, b);
        verdicts(t->after, a);
        if (strcmp(t->account_id, w->account) || strcmp(t->region, w->region) ||
            strcmp(b, w->before) || strcmp(a, w->after))
            fail_msg("%s: row %zu is %s %s [%s] -> [%s], want %s %s [%s] -> [%s]", c->name, i,
                     t->account_id, t->region, b, a, w->account, w->region, w->before, w->after);
        assert_int_equal(t->changed, strcmp(w->before, w->after) != 0);
        assert_int_equal(t->exempt, strcmp(w->account, MGMT) == 0);
    }
    /* the clusters that could not be created again */
    assert_int_equal(r.n_predates, count(c->predates));
    for (size_t i = 0; i < r.n_predates; i++)
        if (!listed(c->predates, r.predates[i].cluster->name))
            fail_msg("%s: unexpected predates_scp cluster %s", c->name,
                     r.predates[i].cluster->name);
    /* the remediations checked and those blocked */
    assert_int_equal(r.n_remediations, count(c->remediations));
    size_t n_blocked = 0;
    for (size_t i = 0; i < r.n_remediations; i++) {
        const struct whatif_remediation *x = &r.remediations[i];
        char s[96];
        snprintf(s, sizeof s, "%s:%c>%c", x->cluster_name, "ADPU"[x->before], "ADPU"[x->after]);
        if (!listed(c->remediations, s))
            fail_msg("%s: unexpected remediation %s", c->name, s);
        assert_int_equal(x->blocked, listed(c->blocked, x->cluster_name));
        n_blocked += x->blocked;
    }
    assert_int_equal(n_blocked, count(c->blocked));
    assert_int_equal(r.blocks_remediation, n_blocked > 0);
    /* the scanner's own calls */
    size_t n_denied = 0;
    for (size_t i = 0; i < r.n_scanner; i++) {
        const struct whatif_scanner *s = &r.scanner[i];
        char key[64];
        snprintf(key, sizeof key, "%s/%s", r.targets[s->target].account_id,
                 r.targets[s->target].region);
        if (s->denied && !listed(c->scanner, key))
            fail_msg("%s: the scanner is denied in %s", c->name, key);
        n_denied += s->denied;
    }
    assert_int_equal(n_denied, count(c->scanner));
    assert_int_equal(r.denies_scanner, n_denied > 0);
    /* the findings opened and closed */
    for (size_t i = 0; i < r.n_deltas; i++) {
        const struct whatif_delta *d = &r.deltas[i];
        const char *arn = d->f->cluster_arn;
        char s[256];
        snprintf(s, sizeof s, "%c%s/%s/%s/%s/%s", d->opens ? '+' : '-', d->f->kind, d->reason,
                 d->f->account_id, d->f->region, arn ? strrchr(arn, '/') + 1 : "");
        if (!listed(c->deltas, s))
            fail_msg("%s: unexpected delta %s", c->name, s);
    }
    assert_int_equal(r.n_deltas, count(c->deltas));
    /* what `scps --with` exits with */
    int exit_code = r.blocks_remediation || r.denies_scanner ? 1 : 0;
    if (exit_code != c->exit_code)
        fail_msg("%s: exit %d, want %d", c->name, exit_code, c->exit_code);
    whatif_result_free(&r);
    policy_free(policy);
}

static void test_classic_mistakes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

/* The decision for the snapshot as it is equals drift_scp_intent's (what `scps` prints). */
static void test_before_is_what_scps_prints(void **state)
{
    (void)state;
    struct drift_input in;
    snapshot(&in, NULL);
    struct whatif_change ch = {WHATIF_ATTACH, "proposed-1", full_access, "full.json", ROOT};
    struct whatif_input wi = {.before = &in, .changes = &ch, .n_changes = 1};
    struct whatif_result r;
    struct err e;
    assert_int_equal(whatif_run(&wi, &r, &e), 0);
    assert_int_equal(r.n_targets, 6); /* the root: every account, both regions */
    for (size_t i = 0; i < r.n_targets; i++) {
        struct scp_decision modes[EGRESS_MODES], upd;
        int exempt;
        assert_int_equal(drift_scp_intent(&in, r.targets[i].account_id, r.targets[i].region, modes,
                                          &upd, &exempt, &e),
                         0);
        for (int m = 0; m < EGRESS_MODES; m++)
            assert_int_equal(modes[m].verdict, r.targets[i].before[m].verdict);
        assert_int_equal(upd.verdict, r.targets[i].before[EGRESS_MODES].verdict);
        /* another Allow changes nothing */
        assert_false(r.targets[i].changed);
    }
    assert_int_equal(r.n_deltas, 0);
    assert_false(r.blocks_remediation || r.denies_scanner);
    whatif_result_free(&r);
}

static void expect_invalid(const struct whatif_change *ch, size_t n, const char *needle)
{
    struct drift_input in;
    snapshot(&in, NULL);
    struct whatif_input wi = {.before = &in, .changes = ch, .n_changes = n};
    struct whatif_result r;
    struct err e;
    err_clear(&e);
    assert_int_equal(whatif_run(&wi, &r, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    if (!strstr(e.message, needle))
        fail_msg("\"%s\" does not say \"%s\"", e.message, needle);
    whatif_result_free(&r);
}

static void test_targets_validated(void **state)
{
    (void)state;
    struct whatif_change unknown_ou = {WHATIF_ATTACH, "proposed-1", deny_update, "x.json",
                                       "ou-ab12-nothere1"};
    expect_invalid(&unknown_ou, 1, "--attach-to ou-ab12-nothere1");
    struct whatif_change unknown_policy = {WHATIF_DETACH, "p-nothere", NULL, NULL, NULL};
    expect_invalid(&unknown_policy, 1, "no such SCP");
    struct whatif_change not_there = {WHATIF_DETACH, "p-enforce01", NULL, NULL, OU_DEV};
    expect_invalid(&not_there, 1, "not attached to " OU_DEV);
    struct whatif_change bad_doc = {WHATIF_ATTACH, "proposed-1", "{\"Statement\":[]", "bad.json",
                                    ROOT};
    expect_invalid(&bad_doc, 1, "bad.json:1:");
}

static void check_doc(const char *text, const char *want)
{
    struct err e;
    err_clear(&e);
    int rc = whatif_check_scp("scp.json", text, strlen(text), &e);
    if (!want) {
        if (rc != 0)
            fail_msg("rejected: %s", e.message);
        return;
    }
    assert_int_equal(rc, -1);
    if (strncmp(e.message, want, strlen(want)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", e.message, want);
}

static void test_document_validated_with_positions(void **state)
{
    (void)state;
    check_doc(deny_update, NULL);
    check_doc(null_guarded, NULL);
    /* JSON syntax: jansson's position */
    check_doc("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}", "scp.json:4:1: ");
    /* grammar: the offending element of the offending statement */
    check_doc("{\n"
              "  \"Version\": \"2012-10-17\",\n"
              "  \"Statement\": [\n"
              "    {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"},\n"
              "    {\"Sid\": \"X\",\n"
              "     \"Effect\": \"Maybe\", \"Action\": \"*\"}\n"
              "  ]\n"
              "}\n",
              "scp.json:6:6: Statement[1]: Effect must be");
    check_doc("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\","
              "\"Principal\":\"*\"}}",
              "scp.json:1:67: Statement[0]: Principal is not allowed in an SCP");
    check_doc("{\"Version\":\"2012-10-17\",\"Statment\":[]}",
              "scp.json:1:25: unknown top-level element \"Statment\"");
    /* size: 5,120 characters, white space included; the position is the first one too many */
    char *big = malloc(6000);
    assert_non_null(big);
    int n = snprintf(big, 6000, "{\"Version\":\"2012-10-17\",\"Statement\":[%s%*s]}",
                     "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}", 5100, "");
    assert_true(n > 5120 && n < 6000);
    check_doc(big, "scp.json:1:5121: the document has");
    /* multi-byte characters count once */
    memset(big, 0, 6000);
    strcpy(big, "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"");
    size_t len = strlen(big);
    for (int i = 0; i < 1000; i++) { /* "é" is two bytes */
        big[len++] = (char)0xC3;
        big[len++] = (char)0xA9;
    }
    strcpy(big + len, "\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}");
    assert_true(strlen(big) > 2000);
    check_doc(big, NULL);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_mistakes),
        cmocka_unit_test(test_before_is_what_scps_prints),
        cmocka_unit_test(test_targets_validated),
        cmocka_unit_test(test_document_validated_with_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
