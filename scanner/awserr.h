/* awserr.h - decoding AWS error responses (restJson1, awsJson1_1, awsQuery, EC2 query) into
 * struct err, and classifying errors for the retry policy. */
#ifndef EGRESSSCAN_AWSERR_H
#define EGRESSSCAN_AWSERR_H

#include <stddef.h>

#include "common/err.h"

enum aws_protocol {
    AWS_PROTO_REST_JSON = 0, /* EKS */
    AWS_PROTO_JSON_1_1,      /* Organizations */
    AWS_PROTO_QUERY,         /* STS */
    AWS_PROTO_EC2,           /* EC2 */
    AWS_PROTO_PLAIN          /* not an AWS API (IMDS, container credentials endpoint) */
};

/* Fills out (code, message, http_status, request_id) from an error response. errortype is the
 * X-Amzn-Errortype header or NULL; request_id the x-amzn-RequestId / x-amz-request-id header
 * or NULL (the body's RequestId is used otherwise). Accepts XML bodies from JSON services and
 * the reverse (emulators do this); an unparseable or empty body yields a code derived from the
 * status ("HTTP503"). Never fails. */
void awserr_decode(enum aws_protocol proto, long status, const char *errortype,
                   const char *request_id, const char *body, size_t len, struct err *out);

/* Smithy sanitizing: keeps what follows the last '#' and precedes the first ':'.
 * "aws.protocoltests#FooError:http://..." -> "FooError". */
void awserr_sanitize_code(const char *in, char *out, size_t cap);

/* Retry classes of the AWS SDKs' standard retry mode. */
int awserr_is_throttle(const char *code, long status);
int awserr_is_transient(const char *code, long status);
/* Expired credentials: ExpiredToken, ExpiredTokenException, RequestExpired. */
int awserr_is_expired_credentials(const char *code);

#endif
