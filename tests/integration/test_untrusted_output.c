/* test_untrusted_output.c - issue 13, points 4 to 8, end to end: what member accounts say
 * (cluster names, account names, AWS error messages) reaches the operator's shell, spreadsheet,
 * terminal and log pipeline only as text. A real PostgreSQL holds a scan written through the
 * storage API (as the scan's writer does) with hostile names, judged by the drift evaluation;
 * `egressscan drift`, `scps` and `report` then print it. A scripted fake AWS (tests/support/
 * fakehttp) answers every call with an error whose message holds terminal escapes and invalid
 * UTF-8, for the logs, the final "scan N failed" message and the metrics file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "intent/drift.h"
#include "storage/db.h"
#include "storage/findings.h"
#include "tests/support/cli.h"
#include "tests/support/fakehttp.h"
#include "tests/support/procs.h"

#define T0 1769515200.0 /* 2026-01-27T12:00:00Z, in ISO week 2026-W05 */
#define ACC_A "111111111111"
#define ACC_B "222222222222"
#define ROOT "r-ab12"
#define SHELL_NAME "a$(touch pwned)"
#define FORMULA_A "=cmd|' /C calc'!A0"
/* starts as a formula, and holds a screen-clearing escape and a C1 CSI within the 18 bytes the
 * scps table shows of a name */
#define FORMULA_B                                                                                  \
    "@SUM(\x1b[2J\xc2\x9b"                                                                         \
    "1+1)*cmd|' /C calc'!A0"
#define FORMULA_MODE "=HYPERLINK(\"http://evil.example/\",\"x\")"
#define ESC_NAME                                                                                   \
    "x\x1b]0;pwned\x07\x1b[2J\xc2\x9b"                                                             \
    "31m"

static const char full_access[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
    "\"Resource\":\"*\"}]}";

static const char enforce_routed[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyUnlessCustomerRouted\","
    "\"Effect\":\"Deny\",\"Action\":[\"eks:CreateCluster\",\"eks:UpdateClusterConfig\"],"
    "\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"
    "{\"eks:controlPlaneEgressMode\":\"CUSTOMER_ROUTED\"}}}]}";

static struct {
    struct pgtest pg;
    char url[600];
    struct cli cli;
    char tmp[64];
} fx;

/* ---- the hostile scan, written as the scanner would ---- */

struct collected {
    struct finding **items;
    size_t n;
};

static int collect(void *ud, const struct finding *f)
{
    struct collected *c = ud;
    struct finding **a = realloc(c->items, (c->n + 1) * sizeof *a);
    if (!a)
        return -1;
    c->items = a;
    c->items[c->n] = finding_copy(f);
    return c->items[c->n++] ? 0 : -1;
}

static void must(int rc, const struct err *e, const char *what)
{
    if (rc < 0)
        fail_msg("%s: %s (%s)", what, e->message, e->code);
}

#define ARN_SHELL "arn:aws:eks:eu-west-1:" ACC_A ":cluster/shell"
#define ARN_ESC "arn:aws:eks:eu-west-1:" ACC_B ":cluster/esc"

/* Runs an UPDATE of exactly one row with two parameters: stored values the writer would refuse
 * today, as rows an older version stored would hold them. */
static void sql_ok(const char *sql, const char *p1, const char *p2)
{
    PGconn *c = PQconnectdb(fx.url);
    const char *p[2] = {p1, p2};
    PGresult *r = PQexecParams(c, sql, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1") != 0)
        fail_msg("%s (%s): %s", sql, p1, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void rename_cluster(const char *arn, const char *name)
{
    sql_ok("UPDATE egressscan.cluster SET cluster_name = $2 WHERE cluster_arn = $1", arn, name);
}

static void write_hostile_scan(void)
{
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(fx.url, &e);
    if (!db)
        fail_msg("connect: %s", e.message);
    long long scan = 0;
    must(db_scan_begin(db, T0, "{\"test\":true}", &scan, NULL, &e), &e, "db_scan_begin");
    struct org_unit root = {ROOT, NULL, "Root"};
    must(db_write_org_units(db, scan, &root, 1, &e), &e, "org units");
    struct account accts[2] = {{.id = ACC_A,
                                .name = FORMULA_A,
                                .status = "ACTIVE",
                                .ou_path = "Root",
                                .ou_id_path = ROOT,
                                .parent_id = ROOT},
                               {.id = ACC_B,
                                .name = FORMULA_B,
                                .status = "ACTIVE",
                                .ou_path = "Root",
                                .ou_id_path = ROOT,
                                .parent_id = ROOT}};
    must(db_write_accounts(db, scan, accts, 2, &e), &e, "accounts");
    const char *targets[] = {ROOT, ACC_A, ACC_B};
    struct scp_policy scps[2] = {{"p-FullAWSAccess", "FullAWSAccess", full_access, targets, 3, 1},
                                 {"p-enforce1", "enforce", enforce_routed, targets, 1, 0}};
    must(db_write_scps(db, scan, scps, 2, &e), &e, "scps");
    /* the writer refuses names AWS would never give (issue 13, point 1): the clusters are
     * stored with plain names and renamed below, as rows an older version stored would be */
    struct cluster ca = {.name = "shell",
                         .arn = ARN_SHELL,
                         .egress_mode = "AWS_MANAGED",
                         .endpoint_public_access = -1,
                         .endpoint_private_access = -1,
                         .raw_json = "{}"};
    struct cluster cb = {.name = "esc",
                         .arn = ARN_ESC,
                         .egress_mode = "AWS_MANAGED",
                         .endpoint_public_access = -1,
                         .endpoint_private_access = -1,
                         .raw_json = "{}"};
    struct target_result ra = {ACC_A, "eu-west-1", TARGET_OK, NULL, NULL, &ca, 1, T0 + 1};
    /* a mode is verbatim what AWS answered: drift csv prints it as observed_mode */
    struct cluster cm[2] = {cb,
                            {.name = "m",
                             .arn = "arn:aws:eks:eu-west-1:" ACC_B ":cluster/m",
                             .egress_mode = FORMULA_MODE,
                             .endpoint_public_access = -1,
                             .endpoint_private_access = -1,
                             .raw_json = "{}"}};
    struct target_result rb = {ACC_B, "eu-west-1", TARGET_OK, NULL, NULL, cm, 2, T0 + 1};
    const struct target_result *rs[2] = {&ra, &rb};
    must(db_write_targets(db, scan, rs, 2, &e), &e, "targets");
    must(db_set_scps_state(db, scan, ORG_SCPS_READ, &e), &e, "scps state");
    rename_cluster(ARN_SHELL, SHELL_NAME);
    rename_cluster(ARN_ESC, ESC_NAME);

    /* the drift stage of the scan: evaluate its snapshot, store the findings */
    struct drift_snapshot snap;
    memset(&snap, 0, sizeof snap);
    must(db_load_drift_snapshot(db, scan, &snap, &e), &e, "snapshot");
    struct drift_input in;
    memset(&in, 0, sizeof in);
    in.accounts = snap.accounts;
    in.n_accounts = snap.n_accounts;
    in.scps = snap.scps;
    in.n_scps = snap.n_scps;
    in.scps_known = snap.scps_known;
    in.clusters = snap.clusters;
    in.n_clusters = snap.n_clusters;
    in.targets = snap.targets;
    in.n_targets = snap.n_targets;
    in.changes = snap.changes;
    in.n_changes = snap.n_changes;
    in.now = (time_t)T0;
    in.scanner_role = snap.scanner_role;
    struct collected c = {0};
    struct drift_counts counts;
    must(drift_evaluate(&in, collect, &c, &counts, &e), &e, "drift_evaluate");
    if (c.n < 2)
        fail_msg("findings %zu: accounts %zu clusters %zu scps %zu known %d targets %zu", c.n,
                 snap.n_accounts, snap.n_clusters, snap.n_scps, snap.scps_known, snap.n_targets);
    struct finding *flat = calloc(c.n, sizeof *flat);
    for (size_t i = 0; i < c.n; i++)
        flat[i] = *c.items[i];
    struct findings_context ctx = {.scps_read = 1, .intent_scan_id = scan};
    must(db_write_findings_ctx(db, scan, flat, c.n, &ctx, NULL, &e), &e, "findings");
    /* the drift table names a finding's cluster by its ARN: as an older version stored it */
    sql_ok("UPDATE egressscan.finding SET cluster_arn = $2 WHERE cluster_arn = $1", ARN_ESC,
           "arn:aws:eks:eu-west-1:" ACC_B ":cluster/" ESC_NAME);
    struct scan_totals totals = {0};
    must(db_scan_finish(db, scan, T0 + 60, "succeeded", &totals, NULL, &e), &e, "finish");
    free(flat);
    for (size_t i = 0; i < c.n; i++)
        free(c.items[i]);
    free(c.items);
    db_drift_snapshot_free(&snap);
    db_close(db);
}

static int setup(void **state)
{
    (void)state;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/egressscan-untrusted-XXXXXX");
    if (!mkdtemp(fx.tmp) || pgtest_start(&fx.pg) < 0)
        return -1;
    snprintf(fx.url, sizeof fx.url, "%s", fx.pg.url);
    cli_init(&fx.cli, "AKIDUNTRUSTED0001", "untrusted-secret", "http://127.0.0.1:9", fx.url);
    if (cli_run(&fx.cli, NULL, NULL, "migrate", NULL) != 0)
        return -1;
    write_hostile_scan();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgtest_stop(&fx.pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx.tmp);
    return 0;
}

/* ---- checks over outputs ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid: the test's own check,
 * independent of the encoders under test. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80                    ? 1
                 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* No byte a terminal acts on: C0 (but LF, and CR before LF for CSV), DEL, C1, invalid UTF-8. */
static void expect_terminal_safe(const char *what, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(p + i, n - i);
        if (len == 0)
            fail_msg("%s: invalid UTF-8 at byte %zu", what, i);
        unsigned char ch = p[i];
        int ctl = (len == 1 && ((ch < 0x20 && ch != '\n' && ch != '\r') || ch == 0x7f)) ||
                  (len == 2 && ch == 0xc2 && p[i + 1] <= 0x9f);
        if (ctl)
            fail_msg("%s: control character 0x%02x at byte %zu", what, ch, i);
        i += len;
    }
}

/* Every CSV cell of text (split on , outside quotes): none starts with a formula character
 * unless the cell is quoted and starts with ' inside the quotes. */
static int expect_no_formula_cells(const char *what, const char *text)
{
    int neutralised = 0;
    const char *p = text;
    while (*p) {
        if (*p == '"') {
            if (strchr("=+-@\t\r", p[1]))
                fail_msg("%s: a quoted cell starts with a formula: %.40s", what, p);
            neutralised += p[1] == '\'' && p[2] && strchr("=+-@\t\r", p[2]);
            for (p++; *p; p++)
                if (*p == '"' && p[1] == '"')
                    p++;
                else if (*p == '"')
                    break;
            if (*p)
                p++;
        } else if (strchr("=+-@\t", *p)) {
            fail_msg("%s: a cell starts with a formula: %.40s", what, p);
        } else {
            p += strcspn(p, ",\r\n");
        }
        while (*p == ',' || *p == '\r' || *p == '\n')
            p++;
    }
    return neutralised;
}

/* ---- 4. shell injection through the remediation ---- */

static void test_remediation_is_quoted_in_drift_and_reports(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    assert_non_null(strstr(out, "--name 'a$(touch pwned)' --resources-vpc-config"));
    assert_null(strstr(out, "--name a$(touch pwned)"));
    free(out);

    static const char *const formats[] = {"md", "html"};
    for (size_t i = 0; i < 2; i++) {
        out = NULL;
        assert_int_equal(cli_run(&fx.cli, &out, NULL, "report", "--week", "2026-W05", "--format",
                                 formats[i], "--as-of", "2026-02-04T12:00:00Z", NULL),
                         0);
        /* the sh block (md) or the code block (html) carries the one quoted word */
        const char *want = i == 0 ? "--name 'a$(touch pwned)' --resources"
                                  : "--name &#39;a$(touch pwned)&#39; --resources";
        if (!strstr(out, want))
            fail_msg("%s report lacks %s", formats[i], want);
        assert_null(strstr(out, "--name a$(touch"));
        free(out);
    }

    /* and the command, pasted into sh, runs nothing: it is echoed instead of run */
    out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "json", NULL), 0);
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    const char *cmd = NULL;
    size_t k;
    json_t *f;
    json_array_foreach(json_object_get(doc, "findings"), k, f)
    {
        const char *r =
            json_string_value(json_object_get(json_object_get(f, "details"), "remediation"));
        if (r && strstr(r, "touch"))
            cmd = r;
    }
    assert_non_null(cmd);
    char line[1024];
    snprintf(line, sizeof line, "cd %s && printf '%%s\\n' %s", fx.tmp,
             cmd + strlen("aws eks update-cluster-config"));
    assert_int_equal(system(line), 0);
    char pwned[128];
    snprintf(pwned, sizeof pwned, "%s/pwned", fx.tmp);
    assert_int_not_equal(access(pwned, F_OK), 0);
    json_decref(doc);
}

/* ---- 5. CSV formula injection ---- */

static void test_csv_cells_are_not_formulas(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "drift", "--format", "csv", NULL), 0);
    /* drift csv: the observed mode is the member account's text */
    assert_non_null(strstr(out, ",\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\","));
    assert_true(expect_no_formula_cells("drift csv", out) >= 1);
    free(out);

    out = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, NULL, "report", "--week", "2026-W05", "--format", "csv",
                             "--as-of", "2026-02-04T12:00:00Z", NULL),
                     0);
    assert_non_null(strstr(out, ",\"'" FORMULA_A "\","));
    assert_non_null(strstr(out, ",\"'" FORMULA_B "\","));
    assert_int_equal(expect_no_formula_cells("report csv", out) >= 2, 1);
    free(out);
}

/* ---- 6. terminal escapes ---- */

static void test_drift_table_carries_no_terminal_escapes(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, &err, "drift", NULL), 0);
    assert_non_null(strstr(out, "x?]0;pwned??[2J?31m")); /* the name, its controls replaced */
    expect_terminal_safe("drift table", out);
    expect_terminal_safe("drift stderr", err);
    free(out);
    free(err);
}

static void test_scps_table_carries_no_terminal_escapes(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli_run(&fx.cli, &out, &err, "scps", NULL), 0);
    assert_non_null(strstr(out, ACC_B));
    assert_non_null(strstr(out, "@SUM(?[2J?1+1)*cmd ")); /* replaced, cut to 18 */
    expect_terminal_safe("scps table", out);
    expect_terminal_safe("scps stderr", err);
    free(out);
    free(err);
}

/* ---- 7 and 8: logs, the final message and the metrics file of a scan AWS refuses ---- */

/* Every call is refused with a message holding a C1 CSI (U+009B), an OSC sequence, and then
 * enough 3-byte characters that the error buffer (512 bytes) cuts one of them in the middle
 * (as long as it cuts on bytes: the text reaches the logs as invalid UTF-8 then). */
static void hostile_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    (void)ud;
    (void)req;
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "{\"__type\":\"AccessDeniedException\",\"message\":\"denied \\u009b2J "
                     "\\u001b]0;pwned\\u0007 ");
    for (int i = 0; i < 300; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "\xe2\x82\xac");
    snprintf(body + n, sizeof body - (size_t)n, "\"}");
    fakehttp_respond(resp, 400,
                     "Content-Type: application/x-amz-json-1.1\r\n"
                     "X-Amzn-Errortype: AccessDeniedException\r\n",
                     body);
}

static void run_refused_scan(const char *log_format, char **err, char *metrics, size_t cap)
{
    struct fakehttp *s = fakehttp_start(hostile_handler, NULL, NULL, NULL);
    assert_non_null(s);
    struct cli c = fx.cli;
    cli_init(&c, "AKIDUNTRUSTED0001", "untrusted-secret", fakehttp_url(s), fx.url);
    cli_setenv(&c, "AWS_MAX_ATTEMPTS", "1");
    snprintf(metrics, cap, "%s/metrics-%s.prom", fx.tmp, log_format);
    char link[700], victim[700];
    snprintf(link, sizeof link, "%s.tmp", metrics);
    snprintf(victim, sizeof victim, "%s/victim-%s", fx.tmp, log_format);
    FILE *v = fopen(victim, "w");
    fputs("precious\n", v);
    fclose(v);
    assert_int_equal(symlink(victim, link), 0);
    char *out = NULL;
    int rc = cli_run(&c, &out, err, "scan", "--log-format", log_format, "--no-progress",
                     "--metrics-file", metrics, NULL);
    fakehttp_stop(s);
    assert_int_equal(rc, 4); /* the organization could not be listed: failed */
    free(out);
}

/* The metrics file of run_refused_scan was written, and not through the symlink left at
 * PATH.tmp (checked after the logs, so that each check fails on its own). */
static void expect_metrics_not_through_symlink(const char *metrics, const char *log_format)
{
    char victim[700];
    snprintf(victim, sizeof victim, "%s/victim-%s", fx.tmp, log_format);
    struct stat st;
    assert_int_equal(lstat(metrics, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    FILE *f = fopen(victim, "r");
    char text[64] = "";
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "precious\n");
}

static void test_json_logs_are_json_lines_of_valid_utf8(void **state)
{
    (void)state;
    char *err = NULL, metrics[600];
    run_refused_scan("json", &err, metrics, sizeof metrics);
    int lines = 0, failed_line = 0;
    for (char *line = err, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            fail_msg("an unterminated line: %s", line);
        size_t n = (size_t)(nl - line);
        for (size_t i = 0; i < n;) {
            size_t len = utf8_len((const unsigned char *)line + i, n - i);
            if (!len)
                fail_msg("invalid UTF-8 in a JSON log line: %.*s", (int)n, line);
            i += len;
        }
        json_error_t je;
        json_t *j = json_loadb(line, n, 0, &je);
        if (!j)
            fail_msg("not a JSON line (%s): %.*s", je.text, (int)n, line);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        assert_non_null(msg);
        if (strstr(msg, "failed: ")) {
            failed_line = 1;
            assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
            assert_non_null(strstr(msg, "denied \xc2\x9b"
                                        "2J")); /* JSON may carry it escaped */
        }
        json_decref(j);
        lines++;
    }
    assert_true(lines >= 2);
    assert_true(failed_line); /* "scan N failed: ..." is a JSON line too */
    free(err);
    expect_metrics_not_through_symlink(metrics, "json");
}

static void test_text_logs_carry_no_terminal_escapes(void **state)
{
    (void)state;
    char *err = NULL, metrics[600];
    run_refused_scan("text", &err, metrics, sizeof metrics);
    assert_non_null(strstr(err, "egressscan scan: scan "));
    assert_non_null(strstr(err, "denied ?2J"));
    expect_terminal_safe("text log", err);
    free(err);
    expect_metrics_not_through_symlink(metrics, "text");
}

/* ---- 8. a password in --database-url ---- */

static void test_password_in_database_url_is_warned(void **state)
{
    (void)state;
    char url[700], *err = NULL;
    snprintf(url, sizeof url, "postgresql://postgres:hunter2@127.0.0.1:%d/postgres", fx.pg.port);
    cli_run(&fx.cli, NULL, &err, "drift", "--database-url", url, NULL);
    assert_non_null(strstr(err, "--database-url carries a password"));
    assert_non_null(strstr(err, ".pgpass"));
    assert_null(strstr(err, "hunter2"));
    free(err);
    err = NULL;
    cli_run(&fx.cli, NULL, &err, "drift", "--database-url", fx.url, NULL);
    assert_null(strstr(err ? err : "", "password"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remediation_is_quoted_in_drift_and_reports),
        cmocka_unit_test(test_csv_cells_are_not_formulas),
        cmocka_unit_test(test_drift_table_carries_no_terminal_escapes),
        cmocka_unit_test(test_scps_table_carries_no_terminal_escapes),
        cmocka_unit_test(test_json_logs_are_json_lines_of_valid_utf8),
        cmocka_unit_test(test_text_logs_carry_no_terminal_escapes),
        cmocka_unit_test(test_password_in_database_url_is_warned),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
