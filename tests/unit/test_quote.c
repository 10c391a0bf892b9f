/* test_quote.c - the output encoders of common/quote.h (issue 13, points 4 to 7): a shell word
 * that sh runs as text, CSV cells a spreadsheet never runs as a formula, terminal text without
 * control characters, JSON string contents that are always valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/quote.h"
#include "common/utf8.h"

static char *shell(const char *s)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(quote_shell(&b, s), 0);
    return buf_steal(&b);
}

static char *csv(const char *s)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(quote_csv_cell(&b, s), 0);
    return buf_steal(&b);
}

static char *term(const char *s)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(quote_term(&b, s), 0);
    return buf_steal(&b);
}

static char *json(const char *s, size_t len)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(quote_json(&b, s, len), 0);
    if (!b.data)
        buf_puts(&b, "");
    return buf_steal(&b);
}

#define EXPECT(fn, in, out)                                                                        \
    do {                                                                                           \
        char *got_ = fn(in);                                                                       \
        assert_string_equal(got_, out);                                                            \
        free(got_);                                                                                \
    } while (0)

static void test_shell_single_quotes_every_value(void **state)
{
    (void)state;
    EXPECT(shell, "good", "'good'");
    EXPECT(shell, "", "''");
    EXPECT(shell, NULL, "''");
    EXPECT(shell, "a$(touch pwned)", "'a$(touch pwned)'");
    EXPECT(shell, "it's", "'it'\\''s'");
    EXPECT(shell, "'", "''\\'''");
    EXPECT(shell, "`id`;rm -rf ~ *\n", "'`id`;rm -rf ~ *\n'");
}

/* The quoted word, run by /bin/sh as printf's argument, prints the value back and runs nothing. */
static void test_shell_quoted_word_is_text_to_sh(void **state)
{
    (void)state;
    char dir[] = "/tmp/egressscan-quote-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *value = "a$(touch pwned)`touch pwned2`'; touch pwned3 #\"\\";
    char *word = shell(value);
    struct buf cmd;
    buf_init(&cmd);
    buf_printf(&cmd, "cd %s && printf %%s %s", dir, word);
    FILE *p = popen(cmd.data, "r");
    assert_non_null(p);
    char out[256] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, value);
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/pwned%s", dir, i ? (i == 1 ? "2" : "3") : "");
        assert_int_not_equal(access(path, F_OK), 0);
    }
    rmdir(dir);
    buf_cleanup(&cmd);
    free(word);
}

static void test_csv_neutralises_formulas(void **state)
{
    (void)state;
    EXPECT(csv, "plain", "plain");
    EXPECT(csv, "", "");
    EXPECT(csv, "a,b", "\"a,b\"");
    EXPECT(csv, "say \"hi\"", "\"say \"\"hi\"\"\"");
    EXPECT(csv, "=cmd|' /C calc'!A0", "\"'=cmd|' /C calc'!A0\"");
    EXPECT(csv, "@SUM(1+1)*cmd|' /C calc'!A0", "\"'@SUM(1+1)*cmd|' /C calc'!A0\"");
    EXPECT(csv, "+1", "\"'+1\"");
    EXPECT(csv, "-2+3", "\"'-2+3\"");
    EXPECT(csv, "\tx", "\"'\tx\"");
    EXPECT(csv, "\rx", "\"'\rx\"");
    EXPECT(csv, "=\"a\",b", "\"'=\"\"a\"\",b\"");
    EXPECT(csv, "a=b", "a=b"); /* only a leading one is a formula */
}

static void test_csv_cell_write(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(quote_csv_cell_write(f, "=1+1"), 0);
    assert_int_equal(quote_csv_cell_write(f, ""), 0);
    fclose(f);
    assert_string_equal(text, "\"'=1+1\"");
    free(text);
}

static void test_term_replaces_controls(void **state)
{
    (void)state;
    EXPECT(term, "plain", "plain");
    EXPECT(term, NULL, "");
    EXPECT(term, "x\x1b]0;pwned\x07y", "x?]0;pwned?y");
    EXPECT(term, "\x1b[2J", "?[2J");
    EXPECT(term, "a\r\nb\tc\x7f", "a??b?c?");
    EXPECT(term,
           "c1 \xc2\x9b"
           "31m \xc2\x80",
           "c1 ?31m ?"); /* U+009B is CSI on some terminals */
    EXPECT(term, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT(term, "\xc2\xa0nbsp", "\xc2\xa0nbsp");
    EXPECT(term, "bad \xff\xfe \xc3", "bad ?? ?");
    EXPECT(term, "overlong \xc0\xaf surrogate \xed\xa0\x80", "overlong ?? surrogate ???");
    EXPECT(term, "big \xf4\x90\x80\x80", "big ????");
}

static void test_term_to_cuts_on_a_character(void **state)
{
    (void)state;
    char out[8];
    assert_string_equal(quote_term_to(out, sizeof out,
                                      "ab\x1b"
                                      "cd"),
                        "ab?cd");
    assert_string_equal(quote_term_to(out, sizeof out, "abcdef\xc3\xa9z"), "abcdef"); /* not half */
    assert_string_equal(quote_term_to(out, sizeof out, "abcde\xc3\xa9z"), "abcde\xc3\xa9");
    assert_string_equal(quote_term_to(out, sizeof out, "0123456789"), "0123456");
    assert_string_equal(quote_term_to(out, 1, "x"), "");
}

static void test_json_is_valid_utf8(void **state)
{
    (void)state;
    const char in[] = "q\" b\\ n\n t\t c\x01 d\x7f caf\xc3\xa9 bad\xff\xc3 nul";
    char *inner = json(in, sizeof in - 1 + 0);
    struct buf doc;
    buf_init(&doc);
    buf_printf(&doc, "\"%s\"", inner);
    json_error_t je;
    json_t *v = json_loads(doc.data, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("not JSON: %s: %s", je.text, doc.data);
    assert_string_equal(json_string_value(v), "q\" b\\ n\n t\t c\x01 d\x7f caf\xc3\xa9 "
                                              "bad\xef\xbf\xbd\xef\xbf\xbd nul");
    json_decref(v);
    buf_cleanup(&doc);
    free(inner);

    char *nul = json("a\0b", 3);
    assert_string_equal(nul, "a\\u0000b");
    free(nul);
}

static void test_utf8_len(void **state)
{
    (void)state;
    assert_int_equal(utf8_char_len("a", 1), 1);
    assert_int_equal(utf8_char_len("\xc3\xa9", 2), 2);
    assert_int_equal(utf8_char_len("\xc3\xa9", 1), 0);
    assert_int_equal(utf8_char_len("\xe2\x82\xac", 3), 3);
    assert_int_equal(utf8_char_len("\xe0\x80\x80", 3), 0);
    assert_int_equal(utf8_char_len("\xed\xbf\xbf", 3), 0);
    assert_int_equal(utf8_char_len("\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(utf8_char_len("\xf4\x90\x80\x80", 4), 0);
    assert_int_equal(utf8_char_len("\x80", 1), 0);
    assert_int_equal(utf8_char_len("\xf5\x80\x80\x80", 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_single_quotes_every_value),
        cmocka_unit_test(test_shell_quoted_word_is_text_to_sh),
        cmocka_unit_test(test_csv_neutralises_formulas),
        cmocka_unit_test(test_csv_cell_write),
        cmocka_unit_test(test_term_replaces_controls),
        cmocka_unit_test(test_term_to_cuts_on_a_character),
        cmocka_unit_test(test_json_is_valid_utf8),
        cmocka_unit_test(test_utf8_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
