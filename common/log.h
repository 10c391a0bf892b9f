/* log.h - leveled log lines on stderr (or any stream), as text or one JSON object per line.
 * Text lines pass every value through quote_term (no control character reaches a terminal),
 * JSON lines are always valid UTF-8 (quote_json).
 * Rule of the project: no secret (secret key, session token, password) is ever passed here. */
#ifndef EGRESSSCAN_LOG_H
#define EGRESSSCAN_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/* Configures the process-wide logger. out NULL means stderr. */
void log_setup(enum log_level level, enum log_format format, FILE *out);

/* Parses "debug", "info", "warn", "error", "off"; -1 when unknown. */
int log_level_parse(const char *s);

/* Nonzero when a line at this level would be written (to skip costly formatting). */
int log_enabled(enum log_level level);

/* Writes one line: component is a short module name ("http", "sts", "scan"). */
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A command's own error message on stderr (the logger's stream), whatever the level: in text mode
 * "egressscan CMD: MSG" (control characters replaced, as in every text line), in JSON mode one
 * JSON line at level error with component CMD, so that every line of a JSON log is JSON. */
void log_command_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
