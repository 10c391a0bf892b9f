/* test_dating.c - the dating pass (scanner/dating.c): which update dates a mode change (an egress
 * update towards the observed mode, NULL observed: AWS_MANAGED, made no later than the scan saw
 * it; the newest Successful one, else the newest other), and the pass against a scripted EKS:
 * bounded pages and DescribeUpdate calls, a repeated nextToken, a forged answer, one AssumeRole
 * per account. The whole scan runs against fakeaws in tests/integration/test_dating.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "scanner/creds.h"
#include "scanner/dating.h"
#include "scanner/eks.h"
#include "scanner/http.h"
#include "tests/support/fakehttp.h"

#define EGRESS EKS_EGRESS_UPDATE_TYPE
#define T 1795703460.0

static void test_matches(void **state)
{
    (void)state;
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T + 60));
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T));
    /* an update towards another mode, or of another kind, is not this change */
    assert_false(dating_update_matches(EGRESS, "AWS_MANAGED", T, "CUSTOMER_ROUTED", T + 60));
    assert_false(
        dating_update_matches("VersionUpdate", "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T + 60));
    assert_false(dating_update_matches(EGRESS, "", T, "CUSTOMER_ROUTED", T + 60));
    /* the mode not reported is AWS_MANAGED, the API's default */
    assert_true(dating_update_matches(EGRESS, "AWS_MANAGED", T, NULL, T + 60));
    assert_false(dating_update_matches(EGRESS, "CUSTOMER_ISOLATED", T, NULL, T + 60));
    /* made after the scan saw the mode: not what made it */
    assert_false(
        dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T + 61, "CUSTOMER_ROUTED", T + 60));
    /* an update without a time still counts (it cannot be placed after the scan) */
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", 0, "CUSTOMER_ROUTED", T));
}

/* ---- the pass against a scripted EKS ---- */

#define BASE_KEY "AKIDDATINGTEST000001"
#define ACCT_A "111111111111"
#define ACCT_B "222222222222"

struct counts {
    pthread_mutex_t mu;
    int assume, list, describe;
};

/* The updates of a cluster named "dated": u-1 Successful towards CUSTOMER_ROUTED at T, u-2
 * Failed towards it later, u-3 Successful towards it after the scan saw it, u-4 a VersionUpdate,
 * u-5 towards another mode. */
static const char *dated_update(const char *id)
{
    static __thread char body[512];
    const char *status = "Successful", *type = EGRESS, *value = "CUSTOMER_ROUTED";
    double at = T;
    if (strcmp(id, "u-2") == 0) {
        status = "Failed";
        at = T + 50;
    } else if (strcmp(id, "u-3") == 0) {
        at = T + 1000;
    } else if (strcmp(id, "u-4") == 0) {
        type = "VersionUpdate";
        value = "1.32";
        at = T + 20;
    } else if (strcmp(id, "u-5") == 0) {
        value = "CUSTOMER_ISOLATED";
        at = T + 30;
    }
    snprintf(body, sizeof body,
             "{\"update\":{\"id\":\"%s\",\"status\":\"%s\",\"type\":\"%s\",\"params\":[{\"type\":"
             "\"%s\",\"value\":\"%s\"}],\"createdAt\":%.0f,\"errors\":[]}}",
             id, status, type, strcmp(type, EGRESS) == 0 ? "ControlPlaneEgressMode" : "Version",
             value, at);
    return body;
}

static void handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct counts *c = ud;
    const char *t = req->target;
    if (strcmp(req->method, "POST") == 0 && req->body && strstr(req->body, "Action=AssumeRole")) {
        pthread_mutex_lock(&c->mu);
        c->assume++;
        pthread_mutex_unlock(&c->mu);
        const char *acct = strstr(req->body, "iam%3A%3A");
        char a[13] = "000000000000";
        if (acct)
            memcpy(a, acct + 9, 12);
        char body[1024];
        snprintf(body, sizeof body,
                 "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                 "<AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::%s:assumed-role/"
                 "EgressScanReadOnly/egressscan</Arn><AssumedRoleId>AROAX:egressscan"
                 "</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>ASIA%s</AccessKeyId>"
                 "<SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>"
                 "<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>"
                 "</AssumeRoleResponse>",
                 a, a);
        fakehttp_respond(resp, 200, "Content-Type: text/xml\r\n", body);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if (strstr(t, "/updates?"))
        c->list++;
    else
        c->describe++;
    pthread_mutex_unlock(&c->mu);
    const char *json = NULL;
    static __thread char page[8192];
    if (strncmp(t, "/clusters/dated/updates?", 24) == 0) {
        json = "{\"updateIds\":[\"u-1\",\"u-2\",\"u-3\",\"u-4\",\"u-5\"]}";
    } else if (strncmp(t, "/clusters/dated/updates/", 24) == 0) {
        json = dated_update(t + 24);
    } else if (strncmp(t, "/clusters/endless/updates?", 26) == 0) {
        /* a new token every page, forever */
        const char *tok = strstr(t, "nextToken=");
        int n = tok ? atoi(tok + 10) : 0;
        snprintf(page, sizeof page, "{\"updateIds\":[\"e-%d\"],\"nextToken\":\"%d\"}", n, n + 1);
        json = page;
    } else if (strncmp(t, "/clusters/same-token/updates?", 29) == 0) {
        json = "{\"updateIds\":[\"s-1\"],\"nextToken\":\"same\"}";
    } else if (strncmp(t, "/clusters/many/updates?", 23) == 0) {
        /* 101 ids over two pages: more than are read per cluster */
        int second = strstr(t, "nextToken=") != NULL;
        size_t o = (size_t)snprintf(page, sizeof page, "{\"updateIds\":[");
        for (int i = 0; i < (second ? 1 : 100); i++)
            o += (size_t)snprintf(page + o, sizeof page - o, "%s\"m-%d-%d\"", i ? "," : "", second,
                                  i);
        snprintf(page + o, sizeof page - o, "]%s}", second ? "" : ",\"nextToken\":\"p2\"");
        json = page;
    } else if (strncmp(t, "/clusters/forged/updates?", 25) == 0) {
        json = "{\"updateIds\":[\"f-1\"]}";
    } else if (strncmp(t, "/clusters/forged/updates/", 25) == 0) {
        json = dated_update("u-1"); /* the answer names another update */
    } else if (strncmp(t, "/clusters/replaced/updates?", 27) == 0) {
        json = "{\"updateIds\":[\"r-1\"],\"nextToken\":null}";
    } else if (strncmp(t, "/clusters/replaced/updates/", 27) == 0) {
        json = "{\"update\":{\"id\":\"r-1\",\"status\":\"Successful\",\"type\":\"VersionUpdate\","
               "\"params\":[{\"type\":\"Version\",\"value\":\"1.32\"}],\"createdAt\":1}}";
    } else {
        fakehttp_respond(resp, 404, "X-Amzn-Errortype: ResourceNotFoundException\r\n",
                         "{\"message\":\"No cluster found\"}");
        return;
    }
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", json);
}

static struct dating_item item(const char *acct, const char *name, const char *mode)
{
    struct dating_item it;
    memset(&it, 0, sizeof it);
    it.account_id = acct;
    it.region = "eu-west-1";
    it.cluster_name = name;
    it.egress_mode = mode;
    it.observed_at = T + 500;
    return it;
}

static const struct dating_item *find(const struct dating_item *it, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].cluster_name, name) == 0)
            return &it[i];
    fail_msg("no item %s", name);
    return NULL;
}

static void test_pass(void **state)
{
    (void)state;
    struct counts c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    struct fakehttp *srv = fakehttp_start(handler, &c, NULL, NULL);
    assert_non_null(srv);
    const char *unset[] = {"AWS_PROFILE",
                           "AWS_SESSION_TOKEN",
                           "AWS_ROLE_ARN",
                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ENDPOINT_URL_EKS",
                           "AWS_ENDPOINT_URL_STS",
                           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("AWS_ENDPOINT_URL", fakehttp_url(srv), 1);
    setenv("AWS_CONFIG_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ACCESS_KEY_ID", BASE_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", "base-secret", 1);
    setenv("AWS_MAX_ATTEMPTS", "1", 1);
    struct err e;
    err_clear(&e);
    struct http_engine_options o;
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    struct http_engine *engine = http_engine_new(&o, &e);
    assert_non_null(engine);
    struct creds_chain *chain = creds_chain_new(NULL, &e);
    assert_non_null(chain);

    struct dating_item items[] = {
        item(ACCT_A, "dated", "CUSTOMER_ROUTED"),      item(ACCT_B, "endless", "CUSTOMER_ROUTED"),
        item(ACCT_A, "same-token", "CUSTOMER_ROUTED"), item(ACCT_B, "many", "CUSTOMER_ROUTED"),
        item(ACCT_A, "forged", "CUSTOMER_ROUTED"),     item(ACCT_B, "replaced", NULL),
        item(ACCT_A, "gone", "CUSTOMER_ROUTED"),
    };
    const size_t n = sizeof items / sizeof items[0];
    for (size_t i = 0; i < n; i++)
        items[i].ref = (long long)i + 100;
    struct dating_options opts = {.home_region = "us-east-1"};
    struct dating_stats st;
    assert_int_equal(dating_run(engine, chain, &opts, items, n, &st, &e), 0);

    const struct dating_item *it = find(items, n, "dated");
    assert_int_equal(it->result, DATING_FOUND);
    assert_string_equal(it->update_id, "u-1"); /* not the failed u-2, not u-3 made later */
    assert_string_equal(it->update_status, "Successful");
    assert_true(it->changed_at == T);
    assert_int_equal(it->ref, 100);
    assert_int_equal(it->list_calls, 1);
    assert_int_equal(it->describe_calls, 5);

    it = find(items, n, "endless"); /* pages capped */
    assert_int_equal(it->result, DATING_FAILED);
    assert_string_equal(it->err.code, "TooManyUpdates");
    assert_int_equal(it->list_calls, DATING_PAGES_MAX);
    assert_int_equal(it->describe_calls, 0);

    it = find(items, n, "same-token");
    assert_int_equal(it->result, DATING_FAILED);
    assert_string_equal(it->err.code, ERR_PARSE);
    assert_int_equal(it->list_calls, 2);

    it = find(items, n, "many"); /* 101 updates: none described, nothing guessed */
    assert_int_equal(it->result, DATING_FAILED);
    assert_string_equal(it->err.code, "TooManyUpdates");
    assert_int_equal(it->list_calls, 2);
    assert_int_equal(it->describe_calls, 0);

    it = find(items, n, "forged");
    assert_int_equal(it->result, DATING_FAILED);
    assert_string_equal(it->err.code, ERR_PARSE);

    it = find(items, n, "replaced"); /* updates, none of them towards the mode */
    assert_int_equal(it->result, DATING_NO_UPDATE);
    assert_string_equal(it->update_id, "");

    it = find(items, n, "gone");
    assert_int_equal(it->result, DATING_FAILED);
    assert_string_equal(it->err.code, "ResourceNotFoundException");

    /* one AssumeRole per account; every request counted */
    assert_int_equal(c.assume, 2);
    assert_int_equal(st.assume_role_accounts, 2);
    assert_int_equal(st.list_calls, c.list);
    assert_int_equal(st.describe_calls, c.describe);
    assert_int_equal(c.list, 1 + DATING_PAGES_MAX + 2 + 2 + 1 + 1 + 1);
    assert_int_equal(c.describe, 5 + 1 + 1);
    assert_int_equal(st.found, 1);
    assert_int_equal(st.no_update, 1);
    assert_int_equal(st.failed, 5);

    creds_chain_free(chain);
    http_engine_free(engine);
    fakehttp_stop(srv);
    pthread_mutex_destroy(&c.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
