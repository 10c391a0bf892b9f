/* test_common.c - the common/ module: struct err, struct buf, and the logger's text and JSON
 * lines (level filtering, escaping). */
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

#include "common/atomicfile.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/isotime.h"
#include "common/log.h"
#include "common/model.h"
#include "common/utf8.h"

static void test_err_set_prefix_clear(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    assert_false(err_isset(&e));
    assert_int_equal(err_set(&e, "AccessDenied", "role %s", "r1"), -1);
    assert_true(err_isset(&e));
    assert_string_equal(e.code, "AccessDenied");
    err_prefix(&e, "account %d: ", 7);
    assert_string_equal(e.message, "account 7: role r1");
    err_clear(&e);
    assert_false(err_isset(&e));
    assert_int_equal(err_set(NULL, "x", "y"), -1); /* NULL is allowed */
}

static void test_err_prefix_truncates_safely(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    char big[2 * ERR_MSG_MAX];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    err_set(&e, "C", "%s", big);
    assert_int_equal(strlen(e.message), ERR_MSG_MAX - 1);
    err_prefix(&e, "ctx: ");
    assert_int_equal(strlen(e.message), ERR_MSG_MAX - 1);
    assert_memory_equal(e.message, "ctx: mmm", 8);
}

static void test_buf_grows_and_steals(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i), 0);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_int_equal(buf_putc(&b, 'x'), 0);
    assert_int_equal(b.data[b.len - 1], 'x');
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "ab\0cd", 5), 0);
    assert_int_equal(b.len, 5);
    char *s = buf_steal(&b);
    assert_memory_equal(s, "ab\0cd", 6);
    assert_null(b.data);
    free(s);
    s = buf_steal(&b); /* an empty buffer yields "" */
    assert_string_equal(s, "");
    free(s);
    buf_cleanup(&b);
}

static void test_log_levels_and_json(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    log_setup(LOG_INFO, LOG_JSON, f);
    log_debug("t", "hidden");
    log_info("scan", "quote \" backslash \\ newline \n tab \t done");
    fflush(f);
    assert_null(strstr(text, "hidden"));
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "scan");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "quote \" backslash \\ newline \n tab \t done");
    assert_non_null(json_object_get(j, "ts"));
    json_decref(j);

    log_setup(LOG_WARN, LOG_TEXT, f);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_ERROR));
    size_t before = len;
    log_error("http", "boom %d", 3);
    fflush(f);
    assert_non_null(strstr(text + before, "error http: boom 3\n"));
    log_setup(LOG_INFO, LOG_TEXT, NULL);
    fclose(f);
    free(text);
}

/* Issue 13, points 6 and 7: a value from AWS with terminal escapes or invalid UTF-8 gives a text
 * line without control characters, and a JSON line that is valid UTF-8 (U+FFFD). */
static void test_log_lines_are_safe_text_and_valid_json(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *hostile = "x\x1b]0;pwned\x07 \x1b[2J \xc2\x9b forged\nline \xff\xc3 caf\xc3\xa9";
    log_setup(LOG_INFO, LOG_TEXT, f);
    log_warn("eks", "cluster %s", hostile);
    fflush(f);
    assert_non_null(
        strstr(text, "warn  eks: cluster x?]0;pwned? ?[2J ? forged?line ?? caf\xc3\xa9\n"));
    for (const char *p = text; *p; p++)
        assert_true(*p == '\n' || (unsigned char)*p >= 0x20);
    assert_int_equal(strchr(text, '\n') - text + 1, (long)len); /* one line */

    size_t before = len;
    log_setup(LOG_INFO, LOG_JSON, f);
    log_warn("eks", "cluster %s", hostile);
    log_command_error("scan", "scan %d failed: %s", 7, hostile);
    fflush(f);
    int lines = 0;
    for (char *line = text + before, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, &je);
        if (!j)
            fail_msg("not a JSON line (%s): %.*s", je.text, (int)(nl - line), line);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        assert_non_null(strstr(msg, "\xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9"));
        if (lines == 1) {
            assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
            assert_string_equal(json_string_value(json_object_get(j, "component")), "scan");
            assert_non_null(strstr(msg, "scan 7 failed: x\x1b]0;pwned\x07"));
        }
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 2);

    /* in text mode a command's message keeps its form, and is printed even with logs off */
    before = len;
    log_setup(LOG_OFF, LOG_TEXT, f);
    log_command_error("scan", "scan %d failed: %s", 7, "a\x1b[2Jb");
    fflush(f);
    assert_string_equal(text + before, "egressscan scan: scan 7 failed: a?[2Jb\n");
    log_setup(LOG_INFO, LOG_TEXT, NULL);
    fclose(f);
    free(text);
}

static int fill_new(FILE *out, void *ud, struct err *err)
{
    (void)err;
    fputs(ud, out);
    return 0;
}

static int fill_fails(FILE *out, void *ud, struct err *err)
{
    (void)ud;
    fputs("half", out);
    return err_set(err, ERR_IO, "no more");
}

static char *slurp(const char *path)
{
    static char text[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Issue 13, point 8: a symlink planted at PATH.tmp (the metrics file's old fixed temporary name)
 * or at PATH itself is never written through; a failed write leaves PATH as it was. */
static void test_atomicfile_does_not_follow_symlinks(void **state)
{
    (void)state;
    char dir[] = "/tmp/egressscan-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], tmp[160], victim[128];
    snprintf(path, sizeof path, "%s/metrics.prom", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *v = fopen(victim, "w");
    fputs("precious", v);
    fclose(v);
    assert_int_equal(symlink(victim, tmp), 0);
    struct err e;
    err_clear(&e);
    assert_int_equal(atomicfile_write(path, fill_new, "metrics 1\n", &e), 0);
    assert_string_equal(slurp(path), "metrics 1\n");
    assert_string_equal(slurp(victim), "precious");

    unlink(path);
    assert_int_equal(symlink(victim, path), 0);
    assert_int_equal(atomicfile_write(path, fill_new, "metrics 2\n", &e), 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_string_equal(slurp(path), "metrics 2\n");
    assert_string_equal(slurp(victim), "precious");

    assert_int_equal(atomicfile_write(path, fill_fails, NULL, &e), -1);
    assert_string_equal(e.message, "no more");
    assert_string_equal(slurp(path), "metrics 2\n");
    unlink(path);
    unlink(tmp);
    unlink(victim);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

static void test_log_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("WARNING"), LOG_WARN);
    assert_int_equal(log_level_parse("off"), LOG_OFF);
    assert_int_equal(log_level_parse("loud"), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void test_target_result_copy_is_deep_and_single_block(void **state)
{
    (void)state;
    char name[] = "c1", mode[] = "CUSTOMER_ROUTED";
    struct cluster cs[2] = {{.name = name,
                             .arn = "arn:1",
                             .egress_mode = mode,
                             .endpoint_public_access = 1,
                             .endpoint_private_access = -1,
                             .raw_json = "{\"cluster\":{}}"},
                            {.name = "c2", .arn = "arn:2", .egress_mode = NULL}};
    struct target_result r = {.account_id = "012345678901",
                              .region = "eu-west-1",
                              .status = TARGET_OK,
                              .clusters = cs,
                              .n_clusters = 2,
                              .scanned_at = 12.5};
    struct target_result *t = target_result_copy(&r);
    assert_non_null(t);
    name[0] = 'X'; /* the copy does not share storage */
    mode[0] = 'X';
    assert_string_equal(t->account_id, "012345678901");
    assert_int_equal(t->n_clusters, 2);
    assert_string_equal(t->clusters[0].name, "c1");
    assert_string_equal(t->clusters[0].egress_mode, "CUSTOMER_ROUTED");
    assert_int_equal(t->clusters[0].endpoint_private_access, -1);
    assert_string_equal(t->clusters[0].raw_json, "{\"cluster\":{}}");
    assert_null(t->clusters[1].egress_mode);
    assert_null(t->error_code);
    assert_true(t->scanned_at == 12.5);
    free(t); /* one block */

    struct target_result f = {.account_id = "111122223333",
                              .region = "*",
                              .status = TARGET_ASSUME_ROLE_DENIED,
                              .error_code = "AccessDenied",
                              .error_message = "not authorized"};
    t = target_result_copy(&f);
    assert_non_null(t);
    assert_null(t->clusters);
    assert_string_equal(t->error_code, "AccessDenied");
    assert_string_equal(target_status_name(t->status), "assume_role_denied");
    free(t);
}

/* A scan's status (and so its exit code: failed 4, partial 3) for each way the SCPs went. */
static void test_scan_status_for_each_scp_outcome(void **state)
{
    (void)state;
    /* read, or not enabled in the organization (no SCP applies): complete */
    assert_string_equal(scan_status_of(0, 0, ORG_SCPS_READ), "succeeded");
    assert_string_equal(scan_status_of(0, 0, ORG_SCPS_DISABLED), "succeeded");
    /* a fixed account list without the org role knows no SCPs by design: not a gap */
    assert_string_equal(scan_status_of(0, 0, ORG_SCPS_NOT_READ), "succeeded");
    /* AccessDenied on ListPolicies, throttling past the retries, ...: partial */
    assert_string_equal(scan_status_of(0, 0, ORG_SCPS_FAILED), "partial");
    assert_string_equal(scan_status_of(0, 3, ORG_SCPS_READ), "partial");
    assert_string_equal(scan_status_of(1, 0, ORG_SCPS_FAILED), "failed");
    assert_string_equal(scan_status_of(1, 0, ORG_SCPS_READ), "failed");
    /* known: read or disabled; the names round-trip as stored in scans.scps_state */
    assert_true(org_scps_known(ORG_SCPS_READ) && org_scps_known(ORG_SCPS_DISABLED));
    assert_false(org_scps_known(ORG_SCPS_NOT_READ) || org_scps_known(ORG_SCPS_FAILED));
    for (int s = 0; s < ORG_SCPS_STATES; s++)
        assert_int_equal(org_scps_parse(org_scps_name((enum org_scps)s)), s);
    assert_int_equal(org_scps_parse("partially"), -1);
    assert_int_equal(org_scps_parse(NULL), -1);
    /* a suspended account is no failure; scp_denied is */
    assert_false(target_status_failed(TARGET_OK));
    assert_false(target_status_failed(TARGET_SUSPENDED));
    assert_true(target_status_failed(TARGET_SCP_DENIED));
    assert_true(target_status_failed(TARGET_ASSUME_ROLE_DENIED));
    assert_string_equal(target_status_name(TARGET_SCP_DENIED), "scp_denied");
    assert_string_equal(target_status_name(TARGET_SUSPENDED), "suspended");
    assert_string_equal(cluster_judgement_name(JUDGED_NONCOMPLIANT), "noncompliant");
}

static void test_iso8601_parse(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(iso8601_parse("2026-11-26T15:30:00Z", &t), 0);
    assert_int_equal(t, 1795707000);
    assert_int_equal(iso8601_parse("2026-11-26T15:30:00.123456Z", &t), 0);
    assert_int_equal(t, 1795707000);
    assert_int_equal(iso8601_parse("2026-11-26T16:30:00+01:00", &t), 0);
    assert_int_equal(t, 1795707000);
    assert_int_equal(iso8601_parse("2026-11-26T15:30:00", &t), -1); /* no zone */
    assert_int_equal(iso8601_parse("2026-13-26T15:30:00Z", &t), -1);
    assert_int_equal(iso8601_parse("yesterday", &t), -1);
    assert_int_equal(iso8601_parse("", &t), -1);
}

/* An AWS message with "é" straddling the last byte of the 512-byte buffer: the cut must not
 * leave half of it (COPY refuses the row with 22021). */
static void test_err_message_cut_on_character_boundary(void **state)
{
    (void)state;
    struct err e;
    char msg[600];
    for (size_t at = ERR_MSG_MAX - 4; at <= ERR_MSG_MAX; at++) {
        memset(msg, 'm', sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        memcpy(msg + at - 1, "\xC3\xA9", 2); /* é at bytes at-1, at */
        err_clear(&e);
        err_set(&e, "ValidationException", "%s", msg);
        assert_true(utf8_valid(e.message, strlen(e.message)));
        assert_true(strlen(e.message) >= ERR_MSG_MAX - 3);
        err_prefix(&e, "DescribeCluster \xC3\xA9: ");
        assert_true(utf8_valid(e.message, strlen(e.message)));
        assert_memory_equal(e.message, "DescribeCluster \xC3\xA9: ", 20);
    }
    /* invalid bytes from an answer do not reach the record */
    err_set(&e, "X\xFF", "bad \xC3( byte");
    assert_true(utf8_valid(e.code, strlen(e.code)));
    assert_string_equal(e.message, "bad ?( byte");
}

static void test_utf8_cut_never_splits_a_character(void **state)
{
    (void)state;
    /* "é" is C3 A9; "€" E2 82 AC; "😀" F0 9F 98 80 */
    const char *s = "ab\xC3\xA9"
                    "c\xE2\x82\xAC"
                    "\xF0\x9F\x98\x80";
    assert_int_equal(utf8_cut(s, 100), strlen(s));
    assert_int_equal(utf8_cut(s, 2), 2);
    assert_int_equal(utf8_cut(s, 3), 2); /* would split é */
    assert_int_equal(utf8_cut(s, 4), 4);
    assert_int_equal(utf8_cut(s, 6), 5); /* inside € */
    assert_int_equal(utf8_cut(s, 7), 5);
    assert_int_equal(utf8_cut(s, 8), 8);
    assert_int_equal(utf8_cut(s, 9), 8);  /* inside the emoji, 1 byte in */
    assert_int_equal(utf8_cut(s, 11), 8); /* 3 bytes in */
    assert_int_equal(utf8_cut(s, 12), 12);
    assert_int_equal(utf8_cut(s, 0), 0);
    /* every cut of every prefix is valid UTF-8 */
    for (size_t m = 0; m <= strlen(s); m++)
        assert_true(utf8_valid(s, utf8_cut(s, m)));
    /* "%.100s" of a tag key with é straddling byte 100 */
    char key[200];
    memset(key, 'k', 99);
    memcpy(key + 99, "\xC3\xA9zz", 5);
    assert_int_equal(utf8_cut(key, 100), 99);
    assert_int_equal(utf8_cut_len(key, 103, 100), 99);
}

static void test_utf8_valid_rejects_what_rfc3629_forbids(void **state)
{
    (void)state;
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid("plain ascii", 11));
    assert_true(utf8_valid("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF", 13));
    assert_false(utf8_valid("\xC3", 1));             /* truncated */
    assert_false(utf8_valid("\xA9", 1));             /* lone continuation */
    assert_false(utf8_valid("\xC0\xAF", 2));         /* overlong "/" */
    assert_false(utf8_valid("\xE0\x80\xAF", 3));     /* overlong */
    assert_false(utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(utf8_valid("\xFF", 1));
    assert_false(utf8_valid("a\0b", 3)); /* NUL */
    assert_int_equal(utf8_valid_prefix("ab\xC3\xA9\xFF", 5, 5), 4);
    assert_int_equal(utf8_valid_prefix("ab\xC3\xA9\xFF", 5, 3), 2);
}

static void test_utf8_sanitize_and_repair(void **state)
{
    (void)state;
    char out[64];
    size_t n = utf8_sanitize("a\xFF"
                             "b\xC3",
                             4, out, sizeof out);
    assert_int_equal(n, 8);
    assert_string_equal(out, "a\xEF\xBF\xBD"
                             "b\xEF\xBF\xBD");
    /* a replacement that does not fit is left out, never cut */
    n = utf8_sanitize("abc\xFF", 4, out, 6);
    assert_string_equal(out, "abc");
    n = utf8_sanitize("\xC3\xA9\xC3\xA9", 4, out, 4);
    assert_string_equal(out, "\xC3\xA9");
    assert_true(utf8_valid(out, n));

    char b1[] = "abc\xE2\x82"; /* a cut € at the end goes */
    assert_int_equal(utf8_repair(b1), 3);
    assert_string_equal(b1, "abc");
    char b2[] = "a\xFF"
                "b\xC3\xA9"; /* invalid bytes in the middle become '?' */
    assert_int_equal(utf8_repair(b2), 5);
    assert_string_equal(b2, "a?b\xC3\xA9");
    char b3[] = "\xA9\xA9x";
    utf8_repair(b3);
    assert_string_equal(b3, "??x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set_prefix_clear),
        cmocka_unit_test(test_err_message_cut_on_character_boundary),
        cmocka_unit_test(test_utf8_cut_never_splits_a_character),
        cmocka_unit_test(test_utf8_valid_rejects_what_rfc3629_forbids),
        cmocka_unit_test(test_utf8_sanitize_and_repair),
        cmocka_unit_test(test_err_prefix_truncates_safely),
        cmocka_unit_test(test_buf_grows_and_steals),
        cmocka_unit_test(test_log_levels_and_json),
        cmocka_unit_test(test_log_lines_are_safe_text_and_valid_json),
        cmocka_unit_test(test_atomicfile_does_not_follow_symlinks),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_iso8601_parse),
        cmocka_unit_test(test_scan_status_for_each_scp_outcome),
        cmocka_unit_test(test_target_result_copy_is_deep_and_single_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
