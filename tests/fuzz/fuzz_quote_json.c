/* fuzz_quote_json.c - libFuzzer target for JSON logs: quote_json of any bytes (NULs included) is
 * the inside of a JSON string that jansson parses and that is valid UTF-8, equal to the input when
 * the input was valid UTF-8; and a log line written in JSON mode with those bytes as its message
 * is one JSON object on one line. Built and run by `make fuzz`. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char_len(s + i, n - i);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf b;
    buf_init(&b);
    check(buf_putc(&b, '"') == 0);
    check(quote_json(&b, (const char *)data, size) == 0);
    check(buf_putc(&b, '"') == 0);
    check(valid_utf8(b.data, b.len));
    json_error_t je;
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    check(json_is_string(v));
    if (valid_utf8((const char *)data, size))
        check(json_string_length(v) == size && memcmp(json_string_value(v), data, size) == 0);
    json_decref(v);
    buf_cleanup(&b);

    /* a log line: the message is the input up to its first NUL */
    char *msg = malloc(size + 1);
    if (!msg)
        return 0;
    memcpy(msg, data, size);
    msg[size] = '\0';
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    check(f != NULL);
    log_setup(LOG_DEBUG, LOG_JSON, f);
    log_warn("fuzz", "%s", msg);
    log_command_error(msg, "%s", msg);
    fclose(f);
    log_setup(LOG_INFO, LOG_TEXT, NULL);
    check(valid_utf8(text, len));
    int lines = 0;
    for (char *line = text, *nl; line < text + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + len - line));
        check(nl != NULL);
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, &je);
        check(json_is_object(o) && json_is_string(json_object_get(o, "msg")));
        json_decref(o);
        lines++;
    }
    check(lines == 2);
    free(text);
    free(msg);
    return 0;
}
