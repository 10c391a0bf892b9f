/* creds.h - AWS credentials: a refcounted, immutable credentials object, and the provider chain
 * of the AWS SDKs (env, shared files / profile, web identity, container, EC2 IMDSv2). */
#ifndef EGRESSSCAN_CREDS_H
#define EGRESSSCAN_CREDS_H

#include <time.h>

#include "common/err.h"
#include "scanner/sigv4.h"

/* Immutable after creation except for the signing-key cache and the reference count. Used from
 * one thread (the event loop). Secrets are wiped when the last reference goes. */
struct aws_credentials {
    int refs;
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    time_t expiration;   /* 0: does not expire */
    char source[48];     /* where they came from: "env", "profile:dev", "web-identity", ... */
    struct sigv4_key_cache key_cache;
};

/* New credentials with one reference; copies the strings. token may be NULL. NULL on ENOMEM. */
struct aws_credentials *creds_new(const char *access_key_id, const char *secret_access_key,
                                  const char *session_token, time_t expiration, const char *source);
/* Checks credentials that came from an answer or a file before they are kept: the access key id
 * and the session token become HTTP header values (Authorization, X-Amz-Security-Token), so each
 * of the three must be printable ASCII without spaces (what AWS issues; no CR, LF or other
 * control character that could end a header and inject another). token may be NULL. 0, or -1
 * with err (ERR_PARSE "WHAT: FIELD holds a control character, a space or a non-ASCII byte"):
 * the message names the field, never its value. */
int creds_check_values(const char *access_key_id, const char *secret_access_key,
                       const char *session_token, const char *what, struct err *err);
/* Adds a reference; returns c. c may be NULL. */
struct aws_credentials *creds_ref(struct aws_credentials *c);
/* Drops a reference; wipes and frees at zero. c may be NULL. */
void creds_unref(struct aws_credentials *c);
/* Nonzero when c expires within window_s seconds of now (never for non-expiring ones). */
int creds_expiring(const struct aws_credentials *c, time_t now, int window_s);

/* Seconds before expiry at which credentials are refreshed (the SDKs use 5 to 15 minutes). */
#define CREDS_REFRESH_WINDOW_S 300

struct http_engine;
struct creds_chain;

/* Where the chain looks; NULL fields mean "from the environment / defaults". Tests point these at
 * fixture files and local fake endpoints. */
struct creds_chain_options {
    const char *profile;     /* default: AWS_PROFILE, else "default" */
    const char *config_file; /* default: AWS_CONFIG_FILE, else ~/.aws/config */
    const char
        *credentials_file; /* default: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
    const char *region;    /* region for STS calls the chain makes; default AWS_REGION... */
};

/* Creates the chain. It owns a small private HTTP engine for its own blocking calls (STS web
 * identity and AssumeRole for profiles, container endpoint, IMDS); it never runs requests on the
 * caller's engine. NULL with err set on failure. */
struct creds_chain *creds_chain_new(const struct creds_chain_options *opts, struct err *err);
void creds_chain_free(struct creds_chain *chain);

/* Checks, without calling anyone, that the profile the chain would use exists when it is named
 * (opts->profile or AWS_PROFILE): it must be a profile of the shared config or credentials file
 * (opts / AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and
 * ~/.aws/credentials). 0 when no profile is named or it is there; -1 with err (ConfigError
 * "profile 'NAME' not found in ... (ProfileNotFound)", or the error of a file that cannot be read
 * or parsed). opts may be NULL. */
int creds_check_profile(const struct creds_chain_options *opts, struct err *err);

/* Returns a new reference to credentials valid for at least CREDS_REFRESH_WINDOW_S, resolving
 * the chain in the SDKs' order on the first call and refreshing (blocking) when the cached ones
 * near expiry. NULL with err set (code NoCredentialsError when no provider had any; the
 * provider's own error when one was configured and failed). */
struct aws_credentials *creds_chain_get(struct creds_chain *chain, struct err *err);

#endif
