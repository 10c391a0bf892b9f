/* sigv4.h - AWS Signature Version 4 request signing (header-based), with OpenSSL.
 * The signer signs exactly the headers it is given; callers add Host, X-Amz-Date and, for
 * temporary credentials, X-Amz-Security-Token to the header list before signing. */
#ifndef EGRESSSCAN_SIGV4_H
#define EGRESSSCAN_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

struct sigv4_header {
    const char *name;
    const char *value;
};

/* A request as the signer sees it. path is the request path before URI encoding (as the test
 * suite's .req files give it: "/example space/"); it is normalized (RFC 3986 dot segments and
 * repeated slashes removed) and each segment URI-encoded, as for every service but S3.
 * query is the raw query string without '?', NULL or "" when none. Duplicate header names are
 * allowed (values are joined with ','). */
struct sigv4_request {
    const char *method;
    const char *path;
    const char *query;
    const struct sigv4_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
};

#define SIGV4_KEY_CACHE_SLOTS 8

/* Derived signing keys for one secret, keyed by "date/region/service" (no "/aws4_request").
 * Lives next to the secret it was derived from (inside struct aws_credentials), starts zeroed,
 * and is wiped with it. */
struct sigv4_key_cache {
    struct {
        char scope[80]; /* "20150830/us-east-1/service" */
        unsigned char key[32];
    } slot[SIGV4_KEY_CACHE_SLOTS];
    unsigned next;
};

struct sigv4_params {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;
    const char *service;
    time_t now;
    struct sigv4_key_cache *cache; /* optional: reuses and stores derived keys */
};

#define SIGV4_AMZ_DATE_LEN 16 /* "20150830T123600Z" */

/* Formats now as the X-Amz-Date value into out (at least SIGV4_AMZ_DATE_LEN + 1 bytes). */
void sigv4_amz_date(time_t now, char *out);

/* Computes the Authorization header value for req into out (cap bytes).
 * Fails (-1, err set, code InvalidInput) on malformed input, when out is too small, on
 * allocation or OpenSSL failure. The message never contains the secret or a header value. */
int sigv4_authorization(const struct sigv4_params *p, const struct sigv4_request *req, char *out,
                        size_t cap, struct err *err);

/* Wipes the derived keys. */
void sigv4_key_cache_cleanse(struct sigv4_key_cache *cache);

/* Lowercase hex SHA-256 of data into out (65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* URI-encodes per SigV4 (unreserved characters kept, everything else %XX uppercase); '/' kept
 * when keep_slash. Writes at out (cap bytes, NUL-terminated); returns the length written or
 * -1 when it does not fit. Used for paths and query values by the request builders too. */
long sigv4_uri_encode(const char *s, size_t len, int keep_slash, char *out, size_t cap);

#endif
