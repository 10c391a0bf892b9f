/* err.h - the error record every fallible function fills (like curl's error buffer).
 * An error keeps its origin's code: an AWS error code, a SQLSTATE, or one of ours. */
#ifndef EGRESSSCAN_ERR_H
#define EGRESSSCAN_ERR_H

#include <stddef.h>

#define ERR_CODE_MAX 96
#define ERR_MSG_MAX 512
#define ERR_REQID_MAX 96

/* Our own codes, for errors that do not come from AWS or PostgreSQL. */
#define ERR_NOMEM "OutOfMemory"
#define ERR_INVALID "InvalidInput"
#define ERR_IO "IOError"
#define ERR_CONFIG "ConfigError"
#define ERR_CONNECT "ConnectionError" /* an HTTP connection (AWS, credential endpoints) failed */
/* The database connection is gone (storage/ only): the one code, with SQLSTATE class 08 and
 * 57P01-57P03, that database recovery (db_connection_lost, db_retry) acts on. */
#define ERR_DB_CONNECT "DatabaseConnectionError"
#define ERR_TIMEOUT "RequestTimeout"
#define ERR_TOO_LARGE "ResponseTooLarge"
#define ERR_PARSE "MalformedResponse"
#define ERR_NO_CREDS "NoCredentialsError"

struct err {
    char code[ERR_CODE_MAX];        /* "ThrottlingException", "42P01", "ConnectionError" */
    char message[ERR_MSG_MAX];      /* human readable; never contains a secret */
    long http_status;               /* 0 when not an HTTP error */
    char request_id[ERR_REQID_MAX]; /* AWS request id when known */
};

/* Resets e to "no error". e may be NULL. */
void err_clear(struct err *e);

/* Sets code and a printf-style message; keeps http_status/request_id. e may be NULL.
 * Always returns -1 so that callers can write `return err_set(e, ...)`. */
int err_set(struct err *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("AssumeRole 1111: " + message). */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Nonzero when e holds an error. */
int err_isset(const struct err *e);

#endif
