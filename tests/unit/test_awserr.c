/* test_awserr.c - decoding AWS error bodies of every protocol (and the mixed-up ones emulators
 * send), Smithy code sanitizing, and the standard retry mode's error classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "scanner/awserr.h"

static void decode(enum aws_protocol proto, long status, const char *errortype,
                   const char *request_id, const char *body, struct err *out)
{
    memset(out, 0x5a, sizeof *out); /* decode must overwrite everything */
    awserr_decode(proto, status, errortype, request_id, body, body ? strlen(body) : 0, out);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[ERR_CODE_MAX];
    awserr_sanitize_code("aws.protocoltests.restjson#FooError:http://internal.amazon.com/"
                         "coral/com.amazon.coral.validate/",
                         out, sizeof out);
    assert_string_equal(out, "FooError");
    awserr_sanitize_code("aws.protocoltests.restjson#FooError", out, sizeof out);
    assert_string_equal(out, "FooError");
    awserr_sanitize_code("FooError:http://internal.amazon.com/coral/", out, sizeof out);
    assert_string_equal(out, "FooError");
    awserr_sanitize_code("FooError", out, sizeof out);
    assert_string_equal(out, "FooError");
    awserr_sanitize_code("a#b#Last", out, sizeof out);
    assert_string_equal(out, "Last");
    awserr_sanitize_code("  Padded  ", out, sizeof out);
    assert_string_equal(out, "Padded");
    awserr_sanitize_code("", out, sizeof out);
    assert_string_equal(out, "");
    awserr_sanitize_code(NULL, out, sizeof out);
    assert_string_equal(out, "");
    char tiny[5];
    awserr_sanitize_code("ns#ThrottlingException", tiny, sizeof tiny);
    assert_string_equal(tiny, "Thro");
}

static void test_rest_json(void **state)
{
    (void)state;
    struct err e;
    /* the header comes first, sanitized */
    decode(AWS_PROTO_REST_JSON, 429, "ThrottlingException:http://internal.amazon.com/coral/",
           "req-1", "{\"code\":\"Other\",\"message\":\"Rate exceeded\"}", &e);
    assert_string_equal(e.code, "ThrottlingException");
    assert_string_equal(e.message, "Rate exceeded");
    assert_int_equal(e.http_status, 429);
    assert_string_equal(e.request_id, "req-1");

    /* then the body's code, then __type */
    decode(AWS_PROTO_REST_JSON, 404, NULL, NULL,
           "{\"code\":\"ResourceNotFoundException\",\"__type\":\"X\",\"message\":\"No cluster\"}",
           &e);
    assert_string_equal(e.code, "ResourceNotFoundException");
    assert_string_equal(e.message, "No cluster");
    assert_string_equal(e.request_id, "");
    decode(AWS_PROTO_REST_JSON, 403, "", NULL,
           "{\"__type\":\"com.amazonaws.eks#AccessDeniedException\",\"Message\":\"denied\"}", &e);
    assert_string_equal(e.code, "AccessDeniedException");
    assert_string_equal(e.message, "denied");
}

static void test_json_1_1(void **state)
{
    (void)state;
    struct err e;
    decode(
        AWS_PROTO_JSON_1_1, 400, NULL, "rid-9",
        "{\"__type\":\"com.amazonaws.organizations.v20161128#AWSOrganizationsNotInUseException\","
        "\"code\":\"Ignored\",\"Message\":\"Your account is not a member of an organization.\"}",
        &e);
    assert_string_equal(e.code, "AWSOrganizationsNotInUseException");
    assert_string_equal(e.message, "Your account is not a member of an organization.");
    assert_string_equal(e.request_id, "rid-9");
    /* __type absent: code; both absent: the header */
    decode(AWS_PROTO_JSON_1_1, 400, NULL, NULL, "{\"code\":\"TooManyRequestsException\"}", &e);
    assert_string_equal(e.code, "TooManyRequestsException");
    decode(AWS_PROTO_JSON_1_1, 400, "ns#ConcurrentModificationException", NULL,
           "{\"message\":\"busy\"}", &e);
    assert_string_equal(e.code, "ConcurrentModificationException");
    assert_string_equal(e.message, "busy");
}

static void test_query_xml(void **state)
{
    (void)state;
    struct err e;
    decode(AWS_PROTO_QUERY, 403, NULL, NULL,
           "<?xml version=\"1.0\"?>\n"
           "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
           "  <Error><Type>Sender</Type><Code>AccessDenied</Code>\n"
           "    <Message>User: arn:aws:iam::1:user/x is not authorized</Message></Error>\n"
           "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
           "</ErrorResponse>",
           &e);
    assert_string_equal(e.code, "AccessDenied");
    assert_string_equal(e.message, "User: arn:aws:iam::1:user/x is not authorized");
    assert_string_equal(e.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
    assert_int_equal(e.http_status, 403);
    /* the header request id wins over the body's */
    decode(AWS_PROTO_QUERY, 400, NULL, "hdr-id",
           "<ErrorResponse><Error><Code>ExpiredToken</Code></Error><RequestId>body-id</RequestId>"
           "</ErrorResponse>",
           &e);
    assert_string_equal(e.code, "ExpiredToken");
    assert_string_equal(e.request_id, "hdr-id");
}

static void test_ec2_xml(void **state)
{
    (void)state;
    struct err e;
    decode(AWS_PROTO_EC2, 503, NULL, NULL,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
           "<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
           "</Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>",
           &e);
    assert_string_equal(e.code, "RequestLimitExceeded");
    assert_string_equal(e.message, "Request limit exceeded.");
    assert_string_equal(e.request_id, "ea966190-f9aa-478e-9ede-example");
    assert_true(awserr_is_throttle(e.code, e.http_status));
}

static void test_emulator_mixups(void **state)
{
    (void)state;
    struct err e;
    /* moto: an awsQuery-style XML error from a restJson1 service */
    decode(AWS_PROTO_REST_JSON, 403, NULL, NULL,
           "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token "
           "included in the request is invalid.</Message></Error><RequestId>m-1</RequestId>"
           "</ErrorResponse>",
           &e);
    assert_string_equal(e.code, "InvalidClientTokenId");
    assert_string_equal(e.request_id, "m-1");
    /* moto: EC2-style 401 AuthFailure on a JSON 1.1 service, after whitespace */
    decode(AWS_PROTO_JSON_1_1, 401, NULL, NULL,
           "\n  <Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to "
           "validate the provided access credentials</Message></Error></Errors>"
           "<RequestID>m-2</RequestID></Response>",
           &e);
    assert_string_equal(e.code, "AuthFailure");
    assert_string_equal(e.request_id, "m-2");
    assert_non_null(strstr(e.message, "not able to validate"));
    /* a JSON body from a query service */
    decode(AWS_PROTO_QUERY, 400, NULL, NULL,
           "{\"__type\":\"ns#ValidationError\",\"message\":\"bad\"}", &e);
    assert_string_equal(e.code, "ValidationError");
    assert_string_equal(e.message, "bad");
    /* plain (IMDS): a JSON error with code/message */
    decode(AWS_PROTO_PLAIN, 500, NULL, NULL, "{\"code\":\"InternalError\",\"message\":\"x\"}", &e);
    assert_string_equal(e.code, "InternalError");
}

static void test_unparseable_and_empty(void **state)
{
    (void)state;
    struct err e;
    decode(AWS_PROTO_REST_JSON, 503, NULL, NULL, "", &e);
    assert_string_equal(e.code, "HTTP503");
    assert_int_equal(e.http_status, 503);
    assert_non_null(strstr(e.message, "503"));
    decode(AWS_PROTO_REST_JSON, 502, NULL, NULL, NULL, &e);
    assert_string_equal(e.code, "HTTP502");
    decode(AWS_PROTO_JSON_1_1, 500, NULL, NULL, "Internal Server Error: stack trace ...", &e);
    assert_string_equal(e.code, "HTTP500");
    assert_non_null(strstr(e.message, "unparseable"));
    /* the body is never echoed */
    assert_null(strstr(e.message, "stack trace"));
    decode(AWS_PROTO_QUERY, 502, NULL, NULL, "<html><body>Bad Gateway</body></html>", &e);
    assert_string_equal(e.code, "HTTP502");
    decode(AWS_PROTO_REST_JSON, 400, NULL, NULL, "{\"code\": 42}", &e);
    assert_string_equal(e.code, "HTTP400");
    decode(AWS_PROTO_REST_JSON, 400, NULL, NULL, "[1,2]", &e);
    assert_string_equal(e.code, "HTTP400");
    decode(AWS_PROTO_REST_JSON, 400, NULL, NULL, "{\"code\":\"Trunc", &e);
    assert_string_equal(e.code, "HTTP400");
    /* the errortype header still works without a usable body */
    decode(AWS_PROTO_REST_JSON, 400, "InvalidParameterException", NULL, "garbage", &e);
    assert_string_equal(e.code, "InvalidParameterException");
}

static void test_no_entity_expansion(void **state)
{
    (void)state;
    struct err e;
    decode(AWS_PROTO_QUERY, 400, NULL, NULL,
           "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">"
           "<!ENTITY y \"EXPANDED\">]><ErrorResponse><Error><Code>C&y;</Code><Message>&x;"
           "</Message></Error></ErrorResponse>",
           &e);
    assert_null(strstr(e.message, "root:"));
    assert_null(strstr(e.code, "EXPANDED"));
    assert_null(strstr(e.message, "EXPANDED"));
    /* billion laughs: refused, not expanded */
    decode(AWS_PROTO_QUERY, 400, NULL, NULL,
           "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
           "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">"
           "]><ErrorResponse><Error><Code>X</Code><Message>&c;&c;&c;</Message></Error>"
           "</ErrorResponse>",
           &e);
    assert_null(strstr(e.message, "aaaa"));
}

static void test_message_bounded_and_clean(void **state)
{
    (void)state;
    struct err e;
    size_t n = 5000;
    char *body = malloc(n + 64);
    assert_non_null(body);
    strcpy(body, "{\"code\":\"Big\",\"message\":\"");
    size_t off = strlen(body);
    memset(body + off, 'm', n);
    strcpy(body + off + n, "\"}");
    decode(AWS_PROTO_REST_JSON, 400, NULL, NULL, body, &e);
    assert_string_equal(e.code, "Big");
    assert_true(strlen(e.message) <= 300);
    assert_true(strlen(e.message) >= 100);
    free(body);

    decode(AWS_PROTO_REST_JSON, 400, NULL, NULL,
           "{\"code\":\"C\",\"message\":\"line1\\nline2\\u0007bell\"}", &e);
    assert_string_equal(e.message, "line1 line2 bell");
    /* an over-long request id is cut, not overflowed */
    char rid[400];
    memset(rid, 'r', sizeof rid - 1);
    rid[sizeof rid - 1] = '\0';
    decode(AWS_PROTO_REST_JSON, 400, NULL, rid, "{}", &e);
    assert_int_equal(strlen(e.request_id), ERR_REQID_MAX - 1);
}

static void test_classification(void **state)
{
    (void)state;
    const char *throttles[] = {"Throttling",
                               "ThrottlingException",
                               "ThrottledException",
                               "RequestThrottledException",
                               "TooManyRequestsException",
                               "ProvisionedThroughputExceededException",
                               "TransactionInProgressException",
                               "RequestLimitExceeded",
                               "BandwidthLimitExceeded",
                               "LimitExceededException",
                               "RequestThrottled",
                               "SlowDown",
                               "PriorRequestNotComplete",
                               "EC2ThrottledException"};
    for (size_t i = 0; i < sizeof throttles / sizeof throttles[0]; i++)
        assert_true(awserr_is_throttle(throttles[i], 400));
    assert_true(awserr_is_throttle("HTTP429", 429));
    assert_true(awserr_is_throttle(NULL, 429));
    assert_false(awserr_is_throttle("AccessDeniedException", 403));
    assert_false(awserr_is_throttle("throttling", 400)); /* codes are case-sensitive */
    assert_false(awserr_is_throttle(NULL, 503));

    assert_true(awserr_is_transient("HTTP500", 500));
    assert_true(awserr_is_transient("X", 502));
    assert_true(awserr_is_transient("X", 503));
    assert_true(awserr_is_transient("X", 504));
    assert_false(awserr_is_transient("X", 501));
    assert_true(awserr_is_transient("RequestTimeout", 400));
    assert_true(awserr_is_transient("RequestTimeoutException", 400));
    assert_true(awserr_is_transient("PriorRequestNotComplete", 400));
    assert_true(awserr_is_transient("InternalError", 400));
    assert_true(awserr_is_transient("ServiceUnavailable", 400));
    assert_true(awserr_is_transient(ERR_CONNECT, 0));
    assert_true(awserr_is_transient(ERR_TIMEOUT, 0));
    assert_false(awserr_is_transient("AccessDenied", 403));
    assert_false(awserr_is_transient("ValidationException", 400));
    assert_false(awserr_is_transient(ERR_TOO_LARGE, 200));
    assert_false(awserr_is_transient(NULL, 0));

    assert_true(awserr_is_expired_credentials("ExpiredToken"));
    assert_true(awserr_is_expired_credentials("ExpiredTokenException"));
    assert_true(awserr_is_expired_credentials("RequestExpired"));
    assert_false(awserr_is_expired_credentials("AccessDenied"));
    assert_false(awserr_is_expired_credentials(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_rest_json),
        cmocka_unit_test(test_json_1_1),
        cmocka_unit_test(test_query_xml),
        cmocka_unit_test(test_ec2_xml),
        cmocka_unit_test(test_emulator_mixups),
        cmocka_unit_test(test_unparseable_and_empty),
        cmocka_unit_test(test_no_entity_expansion),
        cmocka_unit_test(test_message_bounded_and_clean),
        cmocka_unit_test(test_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
