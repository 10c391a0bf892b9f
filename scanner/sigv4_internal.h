/* sigv4_internal.h - the intermediate stages of SigV4 signing, exposed for the test suite. */
#ifndef EGRESSSCAN_SIGV4_INTERNAL_H
#define EGRESSSCAN_SIGV4_INTERNAL_H

#include "common/buf.h"
#include "scanner/sigv4.h"

/* Canonical request (the suite's .creq) into creq; the ';'-joined signed header names into
 * signed_headers. */
int sigv4_canonical_request(const struct sigv4_request *req, struct buf *creq,
                            struct buf *signed_headers, struct err *err);

/* String to sign (the suite's .sts) for a canonical request. scope is the full credential scope,
 * "20150830/us-east-1/service/aws4_request". */
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, size_t creq_len,
                         struct buf *out);

/* Signing key: HMAC chain over date (YYYYMMDD), region, service, "aws4_request". */
void sigv4_derive_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char out[32]);

#endif
