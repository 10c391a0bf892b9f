/* log.c - the process-wide logger: level filter, text or JSON lines, one write per line. */
#include "common/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

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

/* Appends s to out as the inside of a JSON string. Returns the new length. */
static size_t json_escape(char *out, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    out[len] = '\0';
    return len;
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    char line[4096];
    size_t len;
    if (g_format == LOG_JSON) {
        len =
            (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                             ts, level_names[level]);
        len = json_escape(line, len, sizeof line, component ? component : "");
        len += (size_t)snprintf(line + len, sizeof line - len, "\",\"msg\":\"");
        len = json_escape(line, len, sizeof line - 3, msg);
        len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
    } else {
        len = (size_t)snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, level_names[level],
                               component ? component : "", msg);
    }
    if (len >= sizeof line)
        len = sizeof line - 1;
    FILE *out = g_out ? g_out : stderr;
    fwrite(line, 1, len, out);
    fflush(out);
}
