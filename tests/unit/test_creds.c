/* test_creds.c - credentials objects and the provider chain: environment, shared config and
 * credentials files, role profiles (AssumeRole), web identity, container endpoint and IMDSv2
 * against a local fake; refresh near expiry; chain order; secrets never reaching the log. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "scanner/creds.h"
#include "tests/support/fakehttp.h"

#define FIXTURES "tests/data/creds"
#define IMDS_TOKEN "imds-session-token-QQ7"
#define CONTAINER_TOKEN "container-auth-token-ZZ9"
#define WEB_TOKEN "eyJ.web-identity-token-WW1"

/* ---- the fake AWS: STS, container endpoint and IMDS on one loopback server ---- */

struct fake {
    pthread_mutex_t mu;
    long exp_offset;  /* Expiration of answered credentials: now + exp_offset */
    int sts_status;   /* 0: credentials; else this status with an AccessDenied error */
    int imds_v1_only; /* answer 404 to the token PUT */
    int sts_calls, container_calls, imds_calls;
};

struct fixture {
    struct fake fake;
    struct fakehttp *srv;
    char tmpdir[64];
    char url[128];
};

/* Case-insensitive strstr (header names are case-insensitive). */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

static void iso_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Value of header `name` in a raw header block, or "" (static buffer, test thread only). */
static const char *header_of(const char *headers, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = len - (size_t)(v - p);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = eol ? eol + 2 : NULL;
    }
    return out;
}

static void answer_json_creds(struct fakehttp_resp *resp, const char *prefix, int n, long off)
{
    char exp[32], body[512];
    iso_time(time(NULL) + off, exp, sizeof exp);
    snprintf(body, sizeof body,
             "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA%sKEY%d\","
             "\"SecretAccessKey\":\"%sSecret%d\",\"Token\":\"%sSessionToken%d\","
             "\"Expiration\":\"%s\",\"LastUpdated\":\"2026-01-01T00:00:00Z\"}",
             prefix, n, prefix, n, prefix, n, exp);
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", body);
}

static void fake_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake *f = ud;
    char h[512];
    pthread_mutex_lock(&f->mu);
    long off = f->exp_offset;
    int sts_status = f->sts_status, v1_only = f->imds_v1_only;
    pthread_mutex_unlock(&f->mu);

    if (strcmp(req->method, "POST") == 0 && strcmp(req->target, "/") == 0) {
        pthread_mutex_lock(&f->mu);
        int n = f->sts_calls++;
        pthread_mutex_unlock(&f->mu);
        if (sts_status) {
            fakehttp_respond(resp, sts_status, "Content-Type: text/xml\r\n",
                             "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                             "<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not "
                             "authorized to perform sts:AssumeRole</Message></Error>"
                             "<RequestId>req-denied-1</RequestId></ErrorResponse>");
            return;
        }
        const char *action = strstr(req->body, "Action=AssumeRoleWithWebIdentity")
                                 ? "AssumeRoleWithWebIdentity"
                                 : "AssumeRole";
        char exp[32], body[1024];
        iso_time(time(NULL) + off, exp, sizeof exp);
        snprintf(body, sizeof body,
                 "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                 "  <%sResult>\n"
                 "    <Credentials>\n"
                 "      <AccessKeyId>ASIASTS%04d</AccessKeyId>\n"
                 "      <SecretAccessKey>stsSecret%04d</SecretAccessKey>\n"
                 "      <SessionToken>stsSessionToken%04d</SessionToken>\n"
                 "      <Expiration>%s</Expiration>\n"
                 "    </Credentials>\n"
                 "  </%sResult>\n"
                 "  <ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata>\n"
                 "</%sResponse>\n",
                 action, action, n, n, n, exp, action, n, action);
        fakehttp_respond(resp, 200, "Content-Type: text/xml\r\n", body);
        return;
    }
    if (strcmp(req->target, "/container/creds") == 0 && strcmp(req->method, "GET") == 0) {
        pthread_mutex_lock(&f->mu);
        int n = f->container_calls++;
        pthread_mutex_unlock(&f->mu);
        if (strcmp(header_of(req->headers, "Authorization", h, sizeof h), CONTAINER_TOKEN) != 0) {
            fakehttp_respond(resp, 401, NULL, "{\"message\":\"bad token\"}");
            return;
        }
        answer_json_creds(resp, "Container", n, off);
        return;
    }
    if (strcmp(req->target, "/container/crlf") == 0) {
        fakehttp_respond(resp, 200, NULL,
                         "{\"AccessKeyId\": \"ASIACRLF\", \"SecretAccessKey\": \"S\", "
                         "\"Token\": \"tok\\r\\nX-Injected: 1\"}");
        return;
    }
    if (strcmp(req->target, "/container/bad") == 0) {
        fakehttp_respond(resp, 200, NULL, "{\"AccessKeyId\": \"ASIABAD\", \"SecretAccessKey\": ");
        return;
    }
    if (strcmp(req->target, "/latest/api/token") == 0) {
        if (v1_only) {
            fakehttp_respond(resp, 404, NULL, "");
            return;
        }
        if (strcmp(req->method, "PUT") != 0 ||
            strcmp(header_of(req->headers, "X-aws-ec2-metadata-token-ttl-seconds", h, sizeof h),
                   "21600") != 0) {
            fakehttp_respond(resp, 400, NULL, "");
            return;
        }
        fakehttp_respond(resp, 200, NULL, IMDS_TOKEN);
        return;
    }
    if (strncmp(req->target, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
        if (!v1_only && strcmp(header_of(req->headers, "X-aws-ec2-metadata-token", h, sizeof h),
                               IMDS_TOKEN) != 0) {
            fakehttp_respond(resp, 401, NULL, "");
            return;
        }
        const char *role = req->target + 43;
        if (!*role) {
            fakehttp_respond(resp, 200, NULL, "scanner-instance-role\n");
        } else if (strcmp(role, "scanner-instance-role") == 0) {
            pthread_mutex_lock(&f->mu);
            int n = f->imds_calls++;
            pthread_mutex_unlock(&f->mu);
            answer_json_creds(resp, "Imds", n, off);
        } else {
            fakehttp_respond(resp, 404, NULL, "");
        }
        return;
    }
    fakehttp_respond(resp, 404, NULL, "not here");
}

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_V1_DISABLED",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_CA_BUNDLE",
};

/* Every test starts from an environment that can reach no real AWS address: HOME is an empty
 * temporary directory, no shared files, IMDS disabled, STS pointed at the fake. */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    pthread_mutex_init(&fx->fake.mu, NULL);
    fx->fake.exp_offset = 3600;
    snprintf(fx->tmpdir, sizeof fx->tmpdir, "/tmp/test_creds.XXXXXX");
    if (!mkdtemp(fx->tmpdir))
        return -1;
    fx->srv = fakehttp_start(fake_handler, &fx->fake, NULL, NULL);
    if (!fx->srv)
        return -1;
    snprintf(fx->url, sizeof fx->url, "%s", fakehttp_url(fx->srv));
    for (size_t i = 0; i < sizeof aws_vars / sizeof aws_vars[0]; i++)
        unsetenv(aws_vars[i]);
    setenv("HOME", fx->tmpdir, 1);
    setenv("AWS_CONFIG_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_STS", fx->url, 1);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    fakehttp_stop(fx->srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->tmpdir);
    pthread_mutex_destroy(&fx->fake.mu);
    free(fx);
    log_setup(LOG_INFO, LOG_TEXT, NULL);
    return 0;
}

static void fake_set(struct fixture *fx, long exp_offset, int sts_status, int imds_v1_only)
{
    pthread_mutex_lock(&fx->fake.mu);
    fx->fake.exp_offset = exp_offset;
    fx->fake.sts_status = sts_status;
    fx->fake.imds_v1_only = imds_v1_only;
    pthread_mutex_unlock(&fx->fake.mu);
}

static int fake_count(struct fixture *fx, const int *counter)
{
    pthread_mutex_lock(&fx->fake.mu);
    int n = *counter;
    pthread_mutex_unlock(&fx->fake.mu);
    return n;
}

static void use_fixture_files(void)
{
    setenv("AWS_CONFIG_FILE", FIXTURES "/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/credentials", 1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *tmp_path(struct fixture *fx, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", fx->tmpdir, name);
    return out;
}

/* Resolves once with a fresh chain; NULL with *e on failure. */
static struct aws_credentials *resolve_once(const struct creds_chain_options *o, struct err *e)
{
    err_clear(e);
    struct creds_chain *ch = creds_chain_new(o, e);
    assert_non_null(ch);
    struct aws_credentials *c = creds_chain_get(ch, e);
    creds_chain_free(ch);
    return c;
}

static int requests(struct fixture *fx)
{
    return fakehttp_requests(fx->srv);
}

/* Raw text of request i on the fake (request line, headers, body); test frees. */
static char *request_text(struct fixture *fx, int i)
{
    char *t = fakehttp_request_text(fx->srv, i);
    assert_non_null(t);
    return t;
}

/* ---- credentials objects ---- */

static void test_creds_object(void **state)
{
    (void)state;
    struct aws_credentials *c = creds_new("AKID", "secret", NULL, 0, "unit");
    assert_non_null(c);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->access_key_id, "AKID");
    assert_string_equal(c->secret_access_key, "secret");
    assert_null(c->session_token);
    assert_string_equal(c->source, "unit");
    assert_ptr_equal(creds_ref(c), c);
    assert_int_equal(c->refs, 2);
    creds_unref(c);
    assert_int_equal(c->refs, 1);
    assert_false(creds_expiring(c, time(NULL), 1000000)); /* never expires */
    creds_unref(c);
    creds_unref(NULL);
    assert_null(creds_ref(NULL));

    time_t now = 1000000;
    c = creds_new("AKID", "secret", "token", now + 600, "unit");
    assert_string_equal(c->session_token, "token");
    assert_false(creds_expiring(c, now, CREDS_REFRESH_WINDOW_S));
    assert_true(creds_expiring(c, now + 301, CREDS_REFRESH_WINDOW_S));
    assert_true(creds_expiring(c, now + 700, 0)); /* already expired */
    creds_unref(c);
}

/* ---- environment ---- */

static void test_env(void **state)
{
    (void)state;
    use_fixture_files(); /* the default profile has keys too: env wins */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret0100", 1);
    setenv("AWS_SESSION_TOKEN", "envSessionToken0101", 1);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "AKIDENV");
    assert_string_equal(c->secret_access_key, "envSecret0100");
    assert_string_equal(c->session_token, "envSessionToken0101");
    assert_string_equal(c->source, "env");
    assert_int_equal(c->expiration, 0);
    creds_unref(c);

    unsetenv("AWS_SESSION_TOKEN");
    c = resolve_once(NULL, &e);
    assert_non_null(c);
    assert_null(c->session_token);
    creds_unref(c);
}

static void test_env_half_set(void **state)
{
    (void)state;
    struct err e;
    setenv("AWS_ACCESS_KEY_ID", "AKIDHALFENV", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "AWS_SECRET_ACCESS_KEY"));

    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "halfEnvSecret0102", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(e.message, "halfEnvSecret0102"));
}

/* ---- shared files ---- */

static void expect_profile(const char *profile, const char *akid, const char *secret,
                           const char *token)
{
    if (profile)
        setenv("AWS_PROFILE", profile, 1);
    else
        unsetenv("AWS_PROFILE");
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("profile %s: %s: %s", profile ? profile : "(default)", e.code, e.message);
    assert_string_equal(c->access_key_id, akid);
    assert_string_equal(c->secret_access_key, secret);
    if (token)
        assert_string_equal(c->session_token, token);
    else
        assert_null(c->session_token);
    char source[48];
    snprintf(source, sizeof source, "profile:%s", profile ? profile : "default");
    assert_string_equal(c->source, source);
    creds_unref(c);
}

static void test_profile_static_keys(void **state)
{
    (void)state;
    use_fixture_files();
    /* [default] in both files: the credentials file wins */
    expect_profile(NULL, "AKIDCREDSDEFAULT", "credsDefaultSecret0008", NULL);
    /* only in the config file ("[profile cfgonly]"; "[profile cfgonly]" in the credentials file
     * is a profile named "profile cfgonly"); indentation and whitespace around '=' */
    expect_profile("cfgonly", "AKIDCFGONLY", "cfgOnlySecret0002", NULL);
    /* in both: credentials file wins, with its session token */
    expect_profile("both", "AKIDBOTHCREDS", "bothCredsSecret0009", "bothCredsToken0010");
    /* nested settings do not leak */
    expect_profile("nested", "AKIDNESTED", "nestedSecret0005", NULL);

    /* the config file alone: its [default] */
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    expect_profile(NULL, "AKIDCONFIGDEFAULT", "configDefaultSecret0001", NULL);

    /* the same through the options instead of the environment */
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    struct creds_chain_options o = {.profile = "both",
                                    .config_file = FIXTURES "/config",
                                    .credentials_file = FIXTURES "/credentials"};
    struct err e;
    struct aws_credentials *c = resolve_once(&o, &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "AKIDBOTHCREDS");
    creds_unref(c);
}

static void test_profile_files_from_home(void **state)
{
    struct fixture *fx = *state;
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    char path[256];
    snprintf(path, sizeof path, "%s/.aws", fx->tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(tmp_path(fx, ".aws/credentials", path, sizeof path),
               "[default]\r\naws_access_key_id = AKIDHOME\r\n"
               "aws_secret_access_key = homeSecret0200\r\n");
    expect_profile(NULL, "AKIDHOME", "homeSecret0200", NULL);

    /* "~/" in AWS_SHARED_CREDENTIALS_FILE is expanded */
    write_file(tmp_path(fx, "other", path, sizeof path),
               "[default]\naws_access_key_id = AKIDTILDE\naws_secret_access_key = tildeSecret\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/other", 1);
    expect_profile(NULL, "AKIDTILDE", "tildeSecret", NULL);
}

static void test_profile_keys_case_sensitive_and_half(void **state)
{
    (void)state;
    use_fixture_files();
    struct err e;
    /* upper-case key names are not the SDKs' keys: nothing else configured → no credentials */
    setenv("AWS_PROFILE", "upper", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);

    setenv("AWS_PROFILE", "half", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "aws_secret_access_key"));
    assert_non_null(strstr(e.message, "half"));
}

static void test_profile_missing(void **state)
{
    (void)state;
    use_fixture_files();
    struct err e;
    setenv("AWS_PROFILE", "nope", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "'nope' not found"));

    /* even with keys in the environment, as the SDKs refuse an unknown named profile */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret0100", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);

    /* an explicitly named "default" must exist too */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_CONFIG_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_PROFILE", "default", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);

    /* an implicit "default" that does not exist just falls through */
    unsetenv("AWS_PROFILE");
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
}

/* creds_check_profile: the same verdict up front, without resolving anything */
static void test_check_profile(void **state)
{
    (void)state;
    use_fixture_files();
    struct err e;
    err_clear(&e);
    unsetenv("AWS_PROFILE");
    assert_int_equal(creds_check_profile(NULL, &e), 0); /* none named */
    setenv("AWS_PROFILE", "cfgonly", 1);                /* in the config file only */
    assert_int_equal(creds_check_profile(NULL, &e), 0);
    setenv("AWS_PROFILE", "both", 1);
    assert_int_equal(creds_check_profile(NULL, &e), 0);
    setenv("AWS_PROFILE", "half", 1); /* there, though unusable: the chain says why later */
    assert_int_equal(creds_check_profile(NULL, &e), 0);

    setenv("AWS_PROFILE", "nope", 1);
    assert_int_equal(creds_check_profile(NULL, &e), -1);
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "profile 'nope' not found"));
    assert_non_null(strstr(e.message, FIXTURES "/config"));

    /* AWS_SHARED_CREDENTIALS_FILE is honoured: [both] is not in a missing file */
    setenv("AWS_CONFIG_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_PROFILE", "both", 1);
    assert_int_equal(creds_check_profile(NULL, &e), -1);
    /* an implicit default may be absent */
    unsetenv("AWS_PROFILE");
    assert_int_equal(creds_check_profile(NULL, &e), 0);
    /* the options name it too */
    struct creds_chain_options o = {.profile = "cfgonly", .config_file = FIXTURES "/config"};
    assert_int_equal(creds_check_profile(&o, &e), 0);
    o.profile = "missing";
    assert_int_equal(creds_check_profile(&o, &e), -1);
}

/* ---- role profiles ---- */

static void test_assume_role_source_profile(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    setenv("AWS_PROFILE", "role", 1);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIASTS0000");
    assert_string_equal(c->secret_access_key, "stsSecret0000");
    assert_string_equal(c->session_token, "stsSessionToken0000");
    assert_string_equal(c->source, "profile:role");
    assert_true(c->expiration > time(NULL) + 3000);
    creds_unref(c);

    assert_int_equal(requests(fx), 1);
    char *t = request_text(fx, 0);
    assert_non_null(strstr(t, "POST / HTTP/1.1"));
    assert_non_null(strstr(t, "Action=AssumeRole&Version=2011-06-15"));
    assert_non_null(strstr(t, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FScanner"));
    assert_non_null(strstr(t, "RoleSessionName=sess-abc"));
    assert_non_null(strstr(t, "ExternalId=ext-123"));
    assert_non_null(strstr(t, "DurationSeconds=1800"));
    assert_non_null(find_ci(t, "Content-Type: application/x-www-form-urlencoded"));
    /* signed with the source profile's key, in the profile's region (no AWS_REGION set) */
    assert_non_null(strstr(t, "Credential=AKIDBASE/"));
    assert_non_null(strstr(t, "/eu-central-1/sts/aws4_request"));
    assert_null(strstr(t, "baseSecret0011"));
    free(t);

    /* AWS_REGION beats the profile's region */
    setenv("AWS_REGION", "us-west-2", 1);
    c = resolve_once(NULL, &e);
    assert_non_null(c);
    creds_unref(c);
    t = request_text(fx, 1);
    assert_non_null(strstr(t, "/us-west-2/sts/aws4_request"));
    free(t);
}

static void test_assume_role_chained_profiles(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    setenv("AWS_PROFILE", "chained", 1);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIASTS0001");
    assert_string_equal(c->source, "profile:chained");
    creds_unref(c);
    assert_int_equal(requests(fx), 2);
    char *t0 = request_text(fx, 0), *t1 = request_text(fx, 1);
    /* base → Scanner, then Scanner's credentials (with their session token) → Second */
    assert_non_null(strstr(t0, "role%2FScanner"));
    assert_non_null(strstr(t0, "Credential=AKIDBASE/"));
    assert_non_null(strstr(t1, "role%2FSecond"));
    assert_non_null(strstr(t1, "Credential=ASIASTS0000/"));
    assert_non_null(find_ci(t1, "X-Amz-Security-Token: stsSessionToken0000"));
    /* chained has no session name: the default */
    assert_non_null(strstr(t1, "RoleSessionName=egressscan"));
    free(t0);
    free(t1);
}

static void test_assume_role_denied(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    setenv("AWS_PROFILE", "role", 1);
    fake_set(fx, 3600, 403, 0);
    struct err e;
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, "AccessDenied");
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.request_id, "req-denied-1");
    assert_non_null(strstr(e.message, "profile 'role'"));
    assert_non_null(strstr(e.message, "role/Scanner"));
}

static void test_credential_source_environment(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    setenv("AWS_ACCESS_KEY_ID", "AKIDENVSRC", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSrcSecret0300", 1);
    /* A profile named in code wins over keys in the environment (boto3's Session(profile_name),
     * the CLI's --profile); credential_source = Environment then uses them as the source. */
    struct creds_chain_options o = {.profile = "envrole"};
    struct err e;
    struct aws_credentials *c = resolve_once(&o, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIASTS0000");
    assert_string_equal(c->source, "profile:envrole");
    creds_unref(c);
    assert_int_equal(requests(fx), 1);
    char *t = request_text(fx, 0);
    assert_non_null(strstr(t, "role%2FFromEnv"));
    assert_non_null(strstr(t, "Credential=AKIDENVSRC/"));
    free(t);

    /* through AWS_PROFILE the environment keys come first, as in the SDKs */
    setenv("AWS_PROFILE", "envrole", 1);
    c = resolve_once(NULL, &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "AKIDENVSRC");
    creds_unref(c);
    assert_int_equal(requests(fx), 1);

    /* credential_source = Environment without keys */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_null(resolve_once(&o, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_non_null(strstr(e.message, "credential_source Environment"));
}

static void test_credential_source_metadata(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    struct err e;
    /* Ec2InstanceMetadata: IMDS is required, so its absence is an error, not a fall-through */
    setenv("AWS_PROFILE", "imdsrole", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_non_null(strstr(e.message, "credential_source Ec2InstanceMetadata"));
    assert_int_equal(requests(fx), 0);

    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx->url, 1);
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->source, "profile:imdsrole");
    assert_string_equal(c->access_key_id, "ASIASTS0000");
    creds_unref(c);
    assert_int_equal(requests(fx), 4); /* token, role, credentials, AssumeRole */
    char *t = request_text(fx, 3);
    assert_non_null(strstr(t, "role%2FFromImds"));
    assert_non_null(strstr(t, "Credential=ASIAImdsKEY0/"));
    free(t);

    /* EcsContainer */
    char uri[256];
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    setenv("AWS_PROFILE", "ecsrole", 1);
    c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->source, "profile:ecsrole");
    creds_unref(c);
    t = request_text(fx, 5);
    assert_non_null(strstr(t, "role%2FFromContainer"));
    assert_non_null(strstr(t, "Credential=ASIAContainerKEY0/"));
    free(t);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_non_null(strstr(e.message, "credential_source EcsContainer"));

    setenv("AWS_PROFILE", "badsource", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "Magic"));
}

static void test_role_profile_errors(void **state)
{
    struct fixture *fx = *state;
    use_fixture_files();
    struct err e;
    setenv("AWS_PROFILE", "loop-a", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "cycle"));
    assert_non_null(strstr(e.message, "loop-a -> loop-b -> loop-a"));

    setenv("AWS_PROFILE", "two-sources", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "both source_profile and credential_source"));

    setenv("AWS_PROFILE", "missing-source", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "'nowhere' does not exist"));
    assert_int_equal(requests(fx), 0);

    /* a profile that is its own source uses its static keys (as botocore allows) */
    setenv("AWS_PROFILE", "self", 1);
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    creds_unref(c);
    assert_int_equal(requests(fx), 1);
    char *t = request_text(fx, 0);
    assert_non_null(strstr(t, "Credential=AKIDSELF/"));
    assert_non_null(strstr(t, "role%2FSelf"));
    free(t);
}

/* ---- web identity ---- */

static void test_web_identity_env(void **state)
{
    struct fixture *fx = *state;
    char path[256];
    tmp_path(fx, "token", path, sizeof path);
    write_file(path, WEB_TOKEN "\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa", 1);
    setenv("AWS_ROLE_SESSION_NAME", "pod-session", 1);
    setenv("AWS_REGION", "eu-west-3", 1);
    fake_set(fx, 120, 0, 0); /* short-lived: the next get refreshes */

    struct err e;
    struct creds_chain *ch = creds_chain_new(NULL, &e);
    assert_non_null(ch);
    struct aws_credentials *c = creds_chain_get(ch, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIASTS0000");
    assert_string_equal(c->source, "web-identity");
    creds_unref(c);
    assert_int_equal(requests(fx), 1);
    char *t = request_text(fx, 0);
    assert_non_null(strstr(t, "Action=AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(t, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Firsa"));
    assert_non_null(strstr(t, "RoleSessionName=pod-session"));
    assert_non_null(strstr(t, "WebIdentityToken=eyJ.web-identity-token-WW1"));
    assert_null(strstr(t, "%0A"));             /* the token was trimmed */
    assert_null(find_ci(t, "Authorization:")); /* unsigned */
    free(t);

    /* IRSA rotates the token file: a refresh reads it again */
    write_file(path, "eyJ.rotated-token-WW2");
    c = creds_chain_get(ch, &e);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "ASIASTS0001");
    creds_unref(c);
    assert_int_equal(requests(fx), 2);
    t = request_text(fx, 1);
    assert_non_null(strstr(t, "WebIdentityToken=eyJ.rotated-token-WW2"));
    free(t);
    creds_chain_free(ch);

    /* a token file without a role */
    unsetenv("AWS_ROLE_ARN");
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    /* a role with a token file that is not there */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", FIXTURES "/no-token-here", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "no-token-here"));
}

/* ---- container endpoint ---- */

static void test_container_full_uri(void **state)
{
    struct fixture *fx = *state;
    char uri[256], path[256];
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    tmp_path(fx, "pod-identity-token", path, sizeof path);
    write_file(path, "  " CONTAINER_TOKEN "\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-a-file-is-set", 1);

    time_t before = time(NULL);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIAContainerKEY0");
    assert_string_equal(c->secret_access_key, "ContainerSecret0");
    assert_string_equal(c->session_token, "ContainerSessionToken0");
    assert_string_equal(c->source, "container");
    assert_true(c->expiration >= before + 3600 && c->expiration <= time(NULL) + 3600);
    creds_unref(c);
    char *t = request_text(fx, 0);
    assert_non_null(strstr(t, "GET /container/creds HTTP/1.1"));
    assert_non_null(strstr(t, "Authorization: " CONTAINER_TOKEN "\r\n"));
    free(t);

    /* the variable, when there is no file */
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    c = resolve_once(NULL, &e);
    assert_non_null(c);
    creds_unref(c);

    /* a wrong token: the endpoint's refusal is an error naming the provider */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token", 1);
    assert_null(resolve_once(NULL, &e));
    assert_int_equal(e.http_status, 401);
    assert_non_null(strstr(e.message, "container credentials"));
    assert_null(strstr(e.message, "wrong-token"));

    /* a truncated JSON answer */
    snprintf(uri, sizeof uri, "%s/container/bad", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_PARSE);
    assert_non_null(strstr(e.message, "container credentials"));

    /* issue 13, point 8: a token with CR/LF would become a second header: refused */
    snprintf(uri, sizeof uri, "%s/container/crlf", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_PARSE);
    assert_non_null(strstr(e.message, "the session token"));
    assert_null(strstr(e.message, "X-Injected"));
}

static void test_container_uri_rules(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    int before = requests(fx);
    /* plain http to an arbitrary host is refused before any request */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_non_null(strstr(e.message, "198.51.100.7"));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://user@evil.example.com/creds", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/creds", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
    assert_int_equal(requests(fx), before);

    /* loopback in other spellings is allowed (the fake answers on 127.0.0.1) */
    char uri[256];
    snprintf(uri, sizeof uri, "http://localhost:%d/container/creds", fakehttp_port(fx->srv));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    creds_unref(c);

    /* a token with a line break could inject headers */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "abc\r\nX-Evil: 1", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_CONFIG);
}

/* ---- IMDSv2 ---- */

static void test_imds_v2(void **state)
{
    struct fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    char base[160];
    snprintf(base, sizeof base, "%s/", fx->url); /* a trailing slash is tolerated */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->access_key_id, "ASIAImdsKEY0");
    assert_string_equal(c->secret_access_key, "ImdsSecret0");
    assert_string_equal(c->session_token, "ImdsSessionToken0");
    assert_string_equal(c->source, "imds");
    assert_true(c->expiration > time(NULL) + 3000);
    creds_unref(c);

    assert_int_equal(requests(fx), 3);
    char *t0 = request_text(fx, 0), *t1 = request_text(fx, 1), *t2 = request_text(fx, 2);
    assert_non_null(strstr(t0, "PUT /latest/api/token HTTP/1.1"));
    assert_non_null(find_ci(t0, "X-aws-ec2-metadata-token-ttl-seconds: 21600"));
    assert_non_null(strstr(t1, "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1"));
    assert_non_null(find_ci(t1, "X-aws-ec2-metadata-token: " IMDS_TOKEN));
    assert_non_null(
        strstr(t2, "GET /latest/meta-data/iam/security-credentials/scanner-instance-role "));
    assert_non_null(find_ci(t2, "X-aws-ec2-metadata-token: " IMDS_TOKEN));
    free(t0);
    free(t1);
    free(t2);
}

static void test_imds_v1_fallback_and_disabled(void **state)
{
    struct fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx->url, 1);
    fake_set(fx, 3600, 0, 1);
    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    if (!c)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(c->source, "imds");
    creds_unref(c);
    char *t = request_text(fx, 1);
    assert_null(find_ci(t, "X-aws-ec2-metadata-token:"));
    free(t);

    /* IMDSv1 refused by configuration */
    setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);

    /* disabled: no request at all */
    int n = requests(fx);
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_int_equal(requests(fx), n);
}

static void test_imds_unreachable_falls_through(void **state)
{
    (void)state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    /* nothing listens on port 1 of the loopback: connection refused at once */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    struct err e;
    time_t t0 = time(NULL);
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_true(time(NULL) - t0 < 5);
}

/* ---- refresh, order, nothing ---- */

static void test_refresh_near_expiry(void **state)
{
    struct fixture *fx = *state;
    char uri[256];
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    fake_set(fx, 120, 0, 0); /* inside CREDS_REFRESH_WINDOW_S */

    struct err e;
    struct creds_chain *ch = creds_chain_new(NULL, &e);
    assert_non_null(ch);
    struct aws_credentials *c1 = creds_chain_get(ch, &e);
    assert_non_null(c1);
    assert_string_equal(c1->access_key_id, "ASIAContainerKEY0");
    struct aws_credentials *c2 = creds_chain_get(ch, &e);
    assert_non_null(c2);
    assert_string_equal(c2->access_key_id, "ASIAContainerKEY1");
    assert_int_equal(fake_count(fx, &fx->fake.container_calls), 2);
    /* the old object stays valid for its holder */
    assert_string_equal(c1->secret_access_key, "ContainerSecret0");

    /* long-lived now: refreshed once more, then served from the cache */
    fake_set(fx, 3600, 0, 0);
    struct aws_credentials *c3 = creds_chain_get(ch, &e);
    struct aws_credentials *c4 = creds_chain_get(ch, &e);
    assert_non_null(c3);
    assert_ptr_equal(c3, c4);
    assert_int_equal(fake_count(fx, &fx->fake.container_calls), 3);

    creds_unref(c1);
    creds_unref(c2);
    creds_unref(c3);
    creds_unref(c4);
    creds_chain_free(ch);

    /* the provider that supplied them is asked again, even if an earlier one appears meanwhile */
    fake_set(fx, 120, 0, 0);
    ch = creds_chain_new(NULL, &e);
    assert_non_null(ch);
    c1 = creds_chain_get(ch, &e);
    assert_non_null(c1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDLATE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "lateSecret", 1);
    c2 = creds_chain_get(ch, &e);
    assert_non_null(c2);
    assert_string_equal(c2->source, "container");
    assert_int_equal(fake_count(fx, &fx->fake.container_calls), 5);
    creds_unref(c1);
    creds_unref(c2);
    creds_chain_free(ch);
}

static void test_refresh_failure_keeps_valid_creds(void **state)
{
    struct fixture *fx = *state;
    char uri[256];
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    fake_set(fx, 200, 0, 0); /* refreshable, still valid for minutes */
    struct err e;
    struct creds_chain *ch = creds_chain_new(NULL, &e);
    struct aws_credentials *c1 = creds_chain_get(ch, &e);
    assert_non_null(c1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "now-refused", 1);
    struct aws_credentials *c2 = creds_chain_get(ch, &e);
    assert_ptr_equal(c1, c2); /* the refresh failed: the current ones are kept */
    assert_int_equal(fake_count(fx, &fx->fake.container_calls), 2);
    creds_unref(c1);
    creds_unref(c2);
    creds_chain_free(ch);
}

static void test_chain_order(void **state)
{
    struct fixture *fx = *state;
    char uri[256], path[256];
    use_fixture_files();
    setenv("AWS_PROFILE", "both", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret0100", 1);
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx->url, 1);

    struct err e;
    struct aws_credentials *c = resolve_once(NULL, &e);
    assert_string_equal(c->source, "env"); /* env beats everything */
    creds_unref(c);

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    c = resolve_once(NULL, &e);
    assert_string_equal(c->access_key_id, "AKIDBOTHCREDS"); /* the profile beats the container */
    creds_unref(c);

    /* web identity (env) beats static keys in the shared files (botocore's order) */
    tmp_path(fx, "token", path, sizeof path);
    write_file(path, WEB_TOKEN);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa", 1);
    c = resolve_once(NULL, &e);
    assert_string_equal(c->source, "web-identity");
    creds_unref(c);
    /* ... but not a role profile */
    setenv("AWS_PROFILE", "role", 1);
    c = resolve_once(NULL, &e);
    assert_string_equal(c->source, "profile:role");
    creds_unref(c);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");

    /* no profile: the container beats IMDS */
    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    c = resolve_once(NULL, &e);
    assert_string_equal(c->source, "container");
    creds_unref(c);
    assert_int_equal(fake_count(fx, &fx->fake.imds_calls), 0);

    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    c = resolve_once(NULL, &e);
    assert_string_equal(c->source, "imds");
    creds_unref(c);
}

static void test_no_provider(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    assert_null(resolve_once(NULL, &e));
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_int_equal(requests(fx), 0);
}

/* ---- secrets never logged ---- */

static const char *const secrets[] = {
    "envSecret0100",         "envSessionToken0101",
    "baseSecret0011",        "stsSecret",
    "stsSessionToken",       "ContainerSecret",
    "ContainerSessionToken", "ImdsSecret",
    "ImdsSessionToken",      IMDS_TOKEN,
    CONTAINER_TOKEN,         WEB_TOKEN,
    "bothCredsSecret0009",   "bothCredsToken0010",
};

static void assert_no_secret(const char *text, const char *where)
{
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strstr(text, secrets[i]))
            fail_msg("%s contains secret %s", where, secrets[i]);
}

static void get_and_check(const struct creds_chain_options *o, int expect_ok)
{
    struct err e;
    struct aws_credentials *c = resolve_once(o, &e);
    if (expect_ok && !c)
        fail_msg("%s: %s", e.code, e.message);
    if (!expect_ok) {
        assert_null(c);
        assert_no_secret(e.message, "error message");
    }
    creds_unref(c);
}

static void test_secrets_never_logged(void **state)
{
    struct fixture *fx = *state;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    assert_non_null(log);
    log_setup(LOG_DEBUG, LOG_TEXT, log);

    /* env */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret0100", 1);
    setenv("AWS_SESSION_TOKEN", "envSessionToken0101", 1);
    get_and_check(NULL, 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    /* profiles: static, AssumeRole, AssumeRole denied */
    use_fixture_files();
    setenv("AWS_PROFILE", "both", 1);
    get_and_check(NULL, 1);
    setenv("AWS_PROFILE", "role", 1);
    get_and_check(NULL, 1);
    fake_set(fx, 3600, 403, 0);
    get_and_check(NULL, 0);
    fake_set(fx, 3600, 0, 0);
    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", FIXTURES "/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", FIXTURES "/does-not-exist", 1);
    /* web identity */
    char path[256];
    tmp_path(fx, "token", path, sizeof path);
    write_file(path, WEB_TOKEN);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa", 1);
    get_and_check(NULL, 1);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    /* container: good, refused, malformed */
    char uri[256];
    snprintf(uri, sizeof uri, "%s/container/creds", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
    get_and_check(NULL, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN "-bad", 1);
    get_and_check(NULL, 0);
    snprintf(uri, sizeof uri, "%s/container/bad", fx->url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    get_and_check(NULL, 0);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    /* IMDS */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx->url, 1);
    get_and_check(NULL, 1);

    log_setup(LOG_INFO, LOG_TEXT, NULL);
    assert_int_equal(fclose(log), 0);
    assert_non_null(logbuf);
    /* the log did capture the providers' lines (so the check below can fail) */
    assert_non_null(strstr(logbuf, "credentials from"));
    assert_non_null(strstr(logbuf, "EC2 instance metadata"));
    assert_no_secret(logbuf, "log");
    free(logbuf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creds_object),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_half_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_static_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_files_from_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_keys_case_sensitive_and_half, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_source_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_chained_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_source_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_source_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_profile_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_full_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_uri_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v1_fallback_and_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_unreachable_falls_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_near_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_failure_keeps_valid_creds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_never_logged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
