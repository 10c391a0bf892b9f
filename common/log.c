/* log.c - the process-wide logger: level filter, text or JSON lines, one write per line. */
#include "common/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "common/buf.h"
#include "common/quote.h"

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_TEXT;
static FILE *g_out;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_setup(enum log_level level, enum log_format format, FILE *out)
{
    g_level = level;
    g_format = format;
    g_out = out;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (s && strcasecmp(s, level_names[i]) == 0)
            return i;
    if (s && strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

int log_enabled(enum log_level level)
{
    return level >= g_level && level != LOG_OFF;
}

/* Formats one line into b: text (every value passed through quote_term, so that no control
 * character from AWS reaches a terminal or splits a log line) or one JSON object whose strings
 * are valid UTF-8 (quote_json). A text line is "TS LEVEL COMPONENT: MSG", or, for a command's
 * own message (ts NULL), "egressscan COMPONENT: MSG" as the commands have always printed it. */
static int format_line(struct buf *b, const char *ts, const char *level, const char *component,
                       const char *msg)
{
    component = component ? component : "";
    if (g_format == LOG_JSON) {
        char head[96];
        snprintf(head, sizeof head, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                 ts ? ts : "", level);
        return buf_puts(b, head) < 0 || quote_json(b, component, strlen(component)) < 0 ||
                       buf_puts(b, "\",\"msg\":\"") < 0 || quote_json(b, msg, strlen(msg)) < 0 ||
                       buf_puts(b, "\"}\n") < 0
                   ? -1
                   : 0;
    }
    if (ts) {
        char head[64];
        snprintf(head, sizeof head, "%s %-5s ", ts, level);
        if (buf_puts(b, head) < 0)
            return -1;
    } else if (buf_puts(b, "egressscan ") < 0) {
        return -1;
    }
    return quote_term(b, component) < 0 || buf_puts(b, ": ") < 0 || quote_term(b, msg) < 0 ||
                   buf_putc(b, '\n') < 0
               ? -1
               : 0;
}

static void now_text(char ts[40])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, 40 - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

static void write_line(enum log_level level, const char *component, int command, const char *fmt,
                       va_list ap) __attribute__((format(printf, 4, 0)));

static void write_line(enum log_level level, const char *component, int command, const char *fmt,
                       va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char ts[40];
    now_text(ts);
    struct buf line;
    buf_init(&line);
    /* a JSON line always has its time stamp; a command's text message keeps its old form */
    const char *stamp = command && g_format == LOG_TEXT ? NULL : ts;
    if (format_line(&line, stamp, level_names[level], component, msg) == 0) {
        FILE *out = g_out ? g_out : stderr;
        fwrite(line.data, 1, line.len, out);
        fflush(out);
    }
    buf_cleanup(&line);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, component, 0, fmt, ap);
    va_end(ap);
}

void log_command_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(LOG_ERROR, cmd, 1, fmt, ap);
    va_end(ap);
}
