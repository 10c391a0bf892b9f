/* test_org.c - discovery through AWS Organizations against a fake Organizations endpoint that
 * answers from tests/data/aws-answers/org-fake-organization.json (dispatch on X-Amz-Target,
 * ParentId/PolicyId and NextToken): every account handed out once with its OU path, OUs and SCPs
 * reported, pagination through empty pages, streaming, SCP and walk failures, the OU filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/model.h"
#include "scanner/creds.h"
#include "scanner/http.h"
#include "scanner/org.h"
#include "scanner/org_internal.h"
#include "tests/support/fakehttp.h"

#define ANSWERS "tests/data/aws-answers/"
#define TARGET_PREFIX "AWSOrganizationsV20161128."
#define MAX_PAGES 64
#define MAX_SEEN 32

static char *fixture(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, ANSWERS "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (tests run from the repository root)", path);
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    if (len)
        *len = b.len;
    return buf_steal(&b);
}

/* ---- the fake Organizations ---- */

struct fake_page {
    char op[64];
    char key[64];
    char token[64];
    char *body; /* serialized once: the server threads only read */
    int hits;
};

struct fake_org {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct fake_page pages[MAX_PAGES];
    int n_pages;
    int violations; /* requests that were not what Organizations expects */
    char violation[256];
    /* failure injection: op + key ("" any) answered with status and body from a fixture */
    const char *fail_op, *fail_key, *fail_file;
    int fail_status;
    int fail_hits;    /* requests answered with the failure */
    int max_attempts; /* the engine's; 0: 1 */
    int describe_org_delay_ms;
    /* streaming check: ListAccountsForParent(gate_parent) waits until accounts were handed out */
    const char *gate_parent;
    int accounts_handed_out;
    int gate_timed_out;
};

static void load_fake(struct fake_org *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    size_t len;
    char *text = fixture("org-fake-organization.json", &len);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        fail_msg("org-fake-organization.json: %s at line %d", jerr.text, jerr.line);
    const char *op, *key, *token;
    json_t *by_key, *by_token, *answer;
    json_object_foreach(root, op, by_key)
    {
        if (op[0] == '_')
            continue;
        json_object_foreach(by_key, key, by_token)
        {
            json_object_foreach(by_token, token, answer)
            {
                assert_true(f->n_pages < MAX_PAGES);
                struct fake_page *p = &f->pages[f->n_pages++];
                snprintf(p->op, sizeof p->op, "%s", op);
                snprintf(p->key, sizeof p->key, "%s", key);
                snprintf(p->token, sizeof p->token, "%s", token);
                p->body = json_dumps(answer, JSON_COMPACT);
                assert_non_null(p->body);
            }
        }
    }
    json_decref(root);
    free(text);
}

static void free_fake(struct fake_org *f)
{
    for (int i = 0; i < f->n_pages; i++)
        free(f->pages[i].body);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
}

static int header_value(const char *headers, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(l - (size_t)(v - p)), v);
            return 1;
        }
        if (!eol)
            break;
        p = eol + 2;
    }
    return 0;
}

static void violation(struct fake_org *f, struct fakehttp_resp *resp, const char *what,
                      const char *detail)
{
    pthread_mutex_lock(&f->mu);
    if (!f->violations++)
        snprintf(f->violation, sizeof f->violation, "%.40s: %.200s", what, detail);
    pthread_mutex_unlock(&f->mu);
    fakehttp_respond(resp, 400, "Content-Type: application/x-amz-json-1.1\r\n",
                     "{\"__type\":\"InvalidInputException\",\"Message\":\"unexpected request\"}");
}

static void org_handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake_org *f = ud;
    char target[128] = "", ctype[128] = "", auth[512] = "";
    header_value(req->headers, "X-Amz-Target", target, sizeof target);
    header_value(req->headers, "Content-Type", ctype, sizeof ctype);
    header_value(req->headers, "Authorization", auth, sizeof auth);
    if (strcmp(req->method, "POST") != 0 || strcmp(req->target, "/") != 0) {
        violation(f, resp, "not POST /", req->target);
        return;
    }
    if (strncmp(target, TARGET_PREFIX, strlen(TARGET_PREFIX)) != 0) {
        violation(f, resp, "X-Amz-Target", target);
        return;
    }
    if (strcmp(ctype, "application/x-amz-json-1.1") != 0) {
        violation(f, resp, "Content-Type", ctype);
        return;
    }
    if (!strstr(auth, "/us-east-1/organizations/aws4_request")) {
        violation(f, resp, "Authorization scope", auth);
        return;
    }
    const char *op = target + strlen(TARGET_PREFIX);

    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        {
            violation(f, resp, "body is not a JSON object", op);
            return;
        }
    }
    const char *key = json_string_value(json_object_get(body, "ParentId"));
    if (!key)
        key = json_string_value(json_object_get(body, "PolicyId"));
    const char *token = json_string_value(json_object_get(body, "NextToken"));
    json_t *max = json_object_get(body, "MaxResults");
    int bad_max = max && (!json_is_integer(max) || json_integer_value(max) < 1 ||
                          json_integer_value(max) > 20);
    const char *filter = json_string_value(json_object_get(body, "Filter"));
    int bad_filter = strcmp(op, "ListPolicies") == 0 &&
                     (!filter || strcmp(filter, "SERVICE_CONTROL_POLICY") != 0);
    char k[64], t[64];
    snprintf(k, sizeof k, "%s", key ? key : "");
    snprintf(t, sizeof t, "%s", token ? token : "");
    json_decref(body);
    if (bad_max || bad_filter) {
        violation(f, resp, "MaxResults or Filter", op);
        return;
    }

    if (f->fail_op && strcmp(op, f->fail_op) == 0 &&
        (!*f->fail_key || strcmp(k, f->fail_key) == 0)) {
        pthread_mutex_lock(&f->mu);
        f->fail_hits++;
        pthread_mutex_unlock(&f->mu);
        char *err_body = fixture(f->fail_file, NULL);
        fakehttp_respond(resp, f->fail_status,
                         "Content-Type: application/x-amz-json-1.1\r\n"
                         "x-amzn-RequestId: 0c6bd8e5-5f7c-4e4e-9d51-2b1f0EXAMPLE\r\n",
                         err_body);
        free(err_body);
        return;
    }
    if (f->gate_parent && strcmp(op, "ListAccountsForParent") == 0 &&
        strcmp(k, f->gate_parent) == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&f->mu);
        while (!f->accounts_handed_out) {
            if (pthread_cond_timedwait(&f->cond, &f->mu, &until) != 0) {
                f->gate_timed_out = 1;
                break;
            }
        }
        pthread_mutex_unlock(&f->mu);
    }
    struct fake_page *page = NULL;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_pages; i++) {
        struct fake_page *p = &f->pages[i];
        if (strcmp(p->op, op) == 0 && strcmp(p->key, k) == 0 && strcmp(p->token, t) == 0) {
            page = p;
            p->hits++;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (!page) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s key=%s token=%s", op, k, t);
        {
            violation(f, resp, "no such page", detail);
            return;
        }
    }
    fakehttp_respond(resp, 200,
                     "Content-Type: application/x-amz-json-1.1\r\n"
                     "x-amzn-RequestId: 7b1d2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\r\n",
                     page->body);
    if (strcmp(op, "DescribeOrganization") == 0)
        resp->delay_ms = f->describe_org_delay_ms;
}

/* ---- what discovery reports ---- */

struct seen_account {
    char id[16], name[64], status[32], ou_path[96], ou_id_path[96], parent_id[32];
    int is_management;
    int times;
};

struct seen_scp {
    char id[32], name[64];
    char *content;
    char targets[8][32];
    size_t n_targets;
    int aws_managed;
};

struct run {
    struct fake_org *fake;
    struct fakehttp *srv;
    int org_calls;
    char org_id[32], management_id[16];
    int accounts_before_org;
    struct seen_account accounts[MAX_SEEN];
    int n_accounts;
    int account_calls;
    struct org_unit ous[MAX_SEEN];
    char ou_text[MAX_SEEN][3][64];
    int n_ous;
    struct seen_scp scps[8];
    int n_scps;
    int done_calls;
    int done_ok;
    struct err done_err;
    int scps_ok;
    int scps_done_calls;
    enum org_scps scps_state;
    int scps_done_after_done; /* on_scps_done came after on_done */
    int scps_at_scps_done;    /* SCPs reported when on_scps_done came */
    int scps_after_scps_done; /* SCPs reported after it */
    /* on_scp_progress */
    int progress_content, progress_targets, progress_all;
    int progress_after_scps_done;
    int progress_targets_before_content;
    char progress_ids[8][32];
};

static void on_organization(void *ud, const char *org_id, const char *management_account_id)
{
    struct run *r = ud;
    r->org_calls++;
    snprintf(r->org_id, sizeof r->org_id, "%s", org_id ? org_id : "");
    snprintf(r->management_id, sizeof r->management_id, "%s", management_account_id);
}

static void on_org_unit(void *ud, const struct org_unit *ou)
{
    struct run *r = ud;
    assert_true(r->n_ous < MAX_SEEN);
    int i = r->n_ous++;
    snprintf(r->ou_text[i][0], 64, "%s", ou->id);
    snprintf(r->ou_text[i][1], 64, "%s", ou->parent_id ? ou->parent_id : "");
    snprintf(r->ou_text[i][2], 64, "%s", ou->name);
    r->ous[i].id = r->ou_text[i][0];
    r->ous[i].parent_id = ou->parent_id ? r->ou_text[i][1] : NULL;
    r->ous[i].name = r->ou_text[i][2];
}

static void on_accounts(void *ud, const struct account *accounts, size_t n)
{
    struct run *r = ud;
    assert_true(n > 0);
    if (r->org_calls == 0)
        r->accounts_before_org++;
    r->account_calls++;
    for (size_t i = 0; i < n; i++) {
        const struct account *a = &accounts[i];
        struct seen_account *s = NULL;
        for (int j = 0; j < r->n_accounts; j++) {
            if (strcmp(r->accounts[j].id, a->id) == 0)
                s = &r->accounts[j];
        }
        if (!s) {
            assert_true(r->n_accounts < MAX_SEEN);
            s = &r->accounts[r->n_accounts++];
            snprintf(s->id, sizeof s->id, "%s", a->id);
        }
        s->times++;
        snprintf(s->name, sizeof s->name, "%s", a->name ? a->name : "");
        snprintf(s->status, sizeof s->status, "%s", a->status ? a->status : "");
        snprintf(s->ou_path, sizeof s->ou_path, "%s", a->ou_path);
        snprintf(s->ou_id_path, sizeof s->ou_id_path, "%s", a->ou_id_path);
        snprintf(s->parent_id, sizeof s->parent_id, "%s", a->parent_id);
        s->is_management = a->is_management;
    }
    pthread_mutex_lock(&r->fake->mu);
    r->fake->accounts_handed_out = 1;
    pthread_cond_broadcast(&r->fake->cond);
    pthread_mutex_unlock(&r->fake->mu);
}

static void on_scp(void *ud, const struct scp_policy *p)
{
    struct run *r = ud;
    assert_true(r->n_scps < 8);
    r->scps_after_scps_done += r->scps_done_calls > 0;
    struct seen_scp *s = &r->scps[r->n_scps++];
    snprintf(s->id, sizeof s->id, "%s", p->id);
    snprintf(s->name, sizeof s->name, "%s", p->name);
    s->content = strdup(p->content);
    s->aws_managed = p->aws_managed;
    s->n_targets = p->n_targets;
    for (size_t i = 0; i < p->n_targets && i < 8; i++)
        snprintf(s->targets[i], sizeof s->targets[i], "%s", p->targets[i]);
}

static void on_scp_progress(void *ud, const struct scp_policy *p, int with_targets)
{
    struct run *r = ud;
    r->progress_after_scps_done += r->scps_done_calls > 0;
    if (!p) {
        r->progress_all++;
        return;
    }
    int known = 0;
    for (int i = 0; i < r->progress_content && i < 8; i++)
        known |= strcmp(r->progress_ids[i], p->id) == 0;
    if (with_targets) {
        r->progress_targets++;
        r->progress_targets_before_content += !known;
        assert_non_null(p->content);
    } else {
        assert_int_equal(p->n_targets, 0);
        if (r->progress_content < 8)
            snprintf(r->progress_ids[r->progress_content], 32, "%s", p->id);
        r->progress_content++;
        assert_int_equal(r->progress_all, 0); /* every content comes before "all known" */
    }
}

static void on_scps_done(void *ud, enum org_scps state)
{
    struct run *r = ud;
    r->scps_done_calls++;
    r->scps_state = state;
    r->scps_done_after_done += r->done_calls > 0;
    r->scps_at_scps_done = r->n_scps;
}

static void on_done(void *ud, const struct err *e, int scps_ok)
{
    struct run *r = ud;
    r->done_calls++;
    r->done_ok = e == NULL;
    r->scps_ok = scps_ok;
    if (e)
        r->done_err = *e;
}

/* Runs one discovery against the fake (configured by the caller) and collects what it said. */
static void discover(struct fake_org *fake, const char *ou_filter, struct run *r)
{
    memset(r, 0, sizeof *r);
    r->fake = fake;
    r->srv = fakehttp_start(org_handler, fake, NULL, NULL);
    assert_non_null(r->srv);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_ENDPOINT_URL_ORGANIZATIONS", fakehttp_url(r->srv), 1);
    struct http_engine_options o;
    struct err e;
    err_clear(&e);
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    o.max_attempts = fake->max_attempts ? fake->max_attempts : 1;
    struct http_engine *engine = http_engine_new(&o, &e);
    assert_non_null(engine);
    struct aws_credentials *creds =
        creds_new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0, "test");
    assert_non_null(creds);
    struct org_callbacks cb = {.on_organization = on_organization,
                               .on_org_unit = on_org_unit,
                               .on_accounts = on_accounts,
                               .on_scp = on_scp,
                               .on_done = on_done,
                               .ud = r,
                               .on_scps_done = on_scps_done,
                               .on_scp_progress = on_scp_progress};
    struct org_discovery *d = org_discover_start(engine, creds, "us-east-1", ou_filter, &cb, &e);
    if (!d)
        fail_msg("org_discover_start: %s: %s", e.code, e.message);
    creds_unref(creds);                 /* discovery keeps its own reference */
    assert_int_equal(r->done_calls, 0); /* never from inside start */
    assert_int_equal(http_engine_run(engine, &e), 0);
    org_discovery_free(d);
    http_engine_free(engine);
    fakehttp_stop(r->srv);
    r->srv = NULL;
    unsetenv("AWS_ENDPOINT_URL_ORGANIZATIONS");
    if (fake->violations)
        fail_msg("the fake saw %d unexpected request(s); first: %s", fake->violations,
                 fake->violation);
    assert_int_equal(r->done_calls, 1);
    /* the SCP side always ends, once, before discovery does, and reports nothing after that */
    assert_int_equal(r->scps_done_calls, 1);
    assert_int_equal(r->scps_done_after_done, 0);
    assert_int_equal(r->scps_after_scps_done, 0);
    assert_int_equal(r->scps_at_scps_done, r->n_scps);
    assert_int_equal(r->progress_after_scps_done, 0);
    assert_int_equal(r->progress_targets_before_content, 0);
    assert_true(r->progress_all <= 1);
    if (r->scps_state != ORG_SCPS_READ)
        assert_int_equal(r->n_scps, 0); /* a snapshot is handed out whole or not at all */
}

static void free_run(struct run *r)
{
    for (int i = 0; i < r->n_scps; i++)
        free(r->scps[i].content);
}

static const struct seen_account *find_account(const struct run *r, const char *id)
{
    for (int i = 0; i < r->n_accounts; i++) {
        if (strcmp(r->accounts[i].id, id) == 0)
            return &r->accounts[i];
    }
    fail_msg("account %s was not handed out", id);
    return NULL;
}

static void expect_account(const struct run *r, const char *id, const char *status,
                           const char *ou_path, const char *ou_id_path, const char *parent,
                           int is_management)
{
    const struct seen_account *a = find_account(r, id);
    assert_int_equal(a->times, 1);
    assert_string_equal(a->status, status);
    assert_string_equal(a->ou_path, ou_path);
    assert_string_equal(a->ou_id_path, ou_id_path);
    assert_string_equal(a->parent_id, parent);
    assert_int_equal(a->is_management, is_management);
}

static const struct seen_scp *find_scp(const struct run *r, const char *id)
{
    for (int i = 0; i < r->n_scps; i++) {
        if (strcmp(r->scps[i].id, id) == 0)
            return &r->scps[i];
    }
    fail_msg("SCP %s was not reported", id);
    return NULL;
}

#define PROD "r-ab12/ou-ab12-prod0001"

static void expect_whole_tree(const struct run *r)
{
    assert_int_equal(r->n_accounts, 7);
    expect_account(r, "999999999999", "ACTIVE", "Root", "r-ab12", "r-ab12", 1);
    expect_account(r, "011111111111", "SUSPENDED", "Root", "r-ab12", "r-ab12", 0);
    expect_account(r, "222222222222", "ACTIVE", "Root/Prod", PROD, "ou-ab12-prod0001", 0);
    expect_account(r, "333333333333", "ACTIVE", "Root/Prod", PROD, "ou-ab12-prod0001", 0);
    /* after an empty page that still had a NextToken; State when Status is absent */
    expect_account(r, "444444444444", "PENDING_ACTIVATION", "Root/Prod", PROD, "ou-ab12-prod0001",
                   0);
    expect_account(r, "555555555555", "ACTIVE", "Root/Prod/Regulated", PROD "/ou-ab12-regu0001",
                   "ou-ab12-regu0001", 0);
    expect_account(r, "666666666666", "ACTIVE", "Root/Sandbox", "r-ab12/ou-ab12-sand0001",
                   "ou-ab12-sand0001", 0);
    assert_string_equal(find_account(r, "222222222222")->name, "Payments Prod");
}

static void expect_all_ous(const struct run *r)
{
    assert_int_equal(r->n_ous, 4);
    int found = 0;
    for (int i = 0; i < r->n_ous; i++) {
        const struct org_unit *ou = &r->ous[i];
        if (strcmp(ou->id, "r-ab12") == 0) {
            assert_null(ou->parent_id);
            assert_string_equal(ou->name, "Root");
            found |= 1;
        } else if (strcmp(ou->id, "ou-ab12-prod0001") == 0) {
            assert_string_equal(ou->parent_id, "r-ab12");
            assert_string_equal(ou->name, "Prod");
            found |= 2;
        } else if (strcmp(ou->id, "ou-ab12-regu0001") == 0) {
            assert_string_equal(ou->parent_id, "ou-ab12-prod0001");
            assert_string_equal(ou->name, "Regulated");
            found |= 4;
        } else if (strcmp(ou->id, "ou-ab12-sand0001") == 0) {
            assert_string_equal(ou->parent_id, "r-ab12");
            found |= 8;
        }
    }
    assert_int_equal(found, 15);
}

static void expect_scps(const struct run *r)
{
    assert_int_equal(r->n_scps, 2);
    const struct seen_scp *full = find_scp(r, "p-FullAWSAccess");
    assert_string_equal(full->name, "FullAWSAccess");
    assert_int_equal(full->aws_managed, 1);
    assert_int_equal(full->n_targets, 3);
    assert_string_equal(full->targets[0], "r-ab12");
    assert_string_equal(full->targets[1], "ou-ab12-prod0001");
    assert_string_equal(full->targets[2], "999999999999");
    assert_string_equal(full->content, "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n  "
                                       "  {\n      \"Effect\": \"Allow\",\n      \"Action\": "
                                       "\"*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}");
    const struct seen_scp *egress = find_scp(r, "p-egr3ss01");
    assert_string_equal(egress->name, "EksEgressAwsManagedOnly");
    assert_int_equal(egress->aws_managed, 0);
    assert_int_equal(egress->n_targets, 1);
    assert_string_equal(egress->targets[0], "ou-ab12-regu0001");
    assert_non_null(strstr(egress->content, "\"eks:controlPlaneEgressMode\":\"AWS_MANAGED\""));
}

/* ---- tests ---- */

static void test_discovers_whole_organization(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    /* Regulated's accounts are answered only once some accounts were handed out: discovery
     * that waited for the whole tree would stall here for 5 s and be caught. */
    fake.gate_parent = "ou-ab12-regu0001";
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok);
    assert_int_equal(r.scps_ok, 1);
    assert_int_equal(r.scps_state, ORG_SCPS_READ);
    /* the SCP side as it went: each content, each policy listed whole, then "all known" */
    assert_int_equal(r.progress_content, 2);
    assert_int_equal(r.progress_targets, 2);
    assert_int_equal(r.progress_all, 1);
    assert_int_equal(r.org_calls, 1);
    assert_string_equal(r.org_id, "o-exampleorgid");
    assert_string_equal(r.management_id, "999999999999");
    assert_int_equal(r.accounts_before_org, 0);
    assert_false(fake.gate_timed_out);
    expect_whole_tree(&r);
    expect_all_ous(&r);
    expect_scps(&r);
    /* every page asked for exactly once, including those after empty pages */
    for (int i = 0; i < fake.n_pages; i++) {
        if (fake.pages[i].hits != 1)
            fail_msg("%s %s %s asked %d times", fake.pages[i].op, fake.pages[i].key,
                     fake.pages[i].token, fake.pages[i].hits);
    }
    free_run(&r);
    free_fake(&fake);
}

static void test_accounts_wait_for_management_account(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.describe_org_delay_ms = 300; /* account pages arrive first and must be held */
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok);
    assert_int_equal(r.accounts_before_org, 0);
    expect_whole_tree(&r);
    free_run(&r);
    free_fake(&fake);
}

static void test_scps_access_denied(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListPolicies";
    fake.fail_key = "";
    fake.fail_file = "org-error-access-denied.json";
    fake.fail_status = 400;
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok); /* accounts are what discovery is for */
    assert_int_equal(r.scps_ok, 0);
    assert_int_equal(r.scps_state, ORG_SCPS_FAILED); /* a missing permission: partial scan */
    assert_int_equal(r.n_scps, 0);
    assert_int_equal(r.progress_content + r.progress_targets + r.progress_all, 0);
    expect_whole_tree(&r);
    expect_all_ous(&r);
    free_run(&r);
    free_fake(&fake);
}

/* SCPs switched off in the organization: PolicyTypeNotEnabledException from ListPolicies means
 * that no SCP applies (known, nothing to report); discovery goes on. */
static void test_scps_disabled(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListPolicies";
    fake.fail_key = "";
    fake.fail_file = "org-error-policy-type-not-enabled.json";
    fake.fail_status = 400;
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok);
    assert_int_equal(r.scps_state, ORG_SCPS_DISABLED);
    assert_int_equal(r.scps_ok, 1); /* known: none applies */
    assert_int_equal(r.n_scps, 0);
    expect_whole_tree(&r);
    expect_all_ous(&r);
    free_run(&r);
    free_fake(&fake);
}

/* The same answer to a later SCP call (SCPs disabled while they were being read): disabled, and
 * not one policy of the half-read snapshot is reported. */
static void test_scp_targets_fail_midway(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListTargetsForPolicy";
    fake.fail_key = "p-egr3ss01";
    fake.fail_file = "org-error-policy-type-not-enabled.json";
    fake.fail_status = 400;
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok);
    assert_int_equal(r.scps_state, ORG_SCPS_DISABLED);
    assert_int_equal(r.scps_ok, 1);
    assert_int_equal(r.n_scps, 0); /* FullAWSAccess was read whole, and is not reported either */
    expect_whole_tree(&r);
    free_run(&r);
    free_fake(&fake);
}

/* DescribePolicy throttled on every attempt: failed once the retries are spent (each asked
 * max_attempts times), no SCP reported, the accounts all there. */
static void test_scps_throttled_past_retries(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "DescribePolicy";
    fake.fail_key = "p-egr3ss01";
    fake.fail_file = "org-error-too-many-requests.json";
    fake.fail_status = 400;
    fake.max_attempts = 2;
    struct run r;
    discover(&fake, NULL, &r);
    assert_true(r.done_ok);
    assert_int_equal(r.scps_state, ORG_SCPS_FAILED);
    assert_int_equal(r.scps_ok, 0);
    assert_int_equal(fake.fail_hits, 2); /* retried, then given up */
    assert_int_equal(r.n_scps, 0);
    assert_int_equal(r.progress_all, 0); /* a content never came: never "all known" */
    expect_whole_tree(&r);
    expect_all_ous(&r);
    free_run(&r);
    free_fake(&fake);
}

/* Any other failure of an SCP call fails the SCP side: 5xx past the retries, a malformed answer,
 * AccessDenied on a later call, and AWSOrganizationsNotInUseException (which cannot say "no SCP
 * applies" while the organization is being listed). */
static void test_scps_other_failures(void **state)
{
    (void)state;
    static const struct {
        const char *op, *key, *file;
        int status;
    } failures[] = {
        {"ListTargetsForPolicy", "p-FullAWSAccess", "org-error-service.json", 500},
        {"DescribePolicy", "p-FullAWSAccess", "org-error-access-denied.json", 200}, /* no Policy */
        {"ListTargetsForPolicy", "p-egr3ss01", "org-error-access-denied.json", 400},
        {"ListPolicies", "", "org-error-not-in-use.json", 400},
    };
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        struct fake_org fake;
        load_fake(&fake);
        fake.fail_op = failures[i].op;
        fake.fail_key = failures[i].key;
        fake.fail_file = failures[i].file;
        fake.fail_status = failures[i].status;
        struct run r;
        discover(&fake, NULL, &r);
        if (r.scps_state != ORG_SCPS_FAILED)
            fail_msg("%s answered from %s: SCPs %s", failures[i].op, failures[i].file,
                     org_scps_name(r.scps_state));
        assert_true(r.done_ok);
        assert_int_equal(r.scps_ok, 0);
        assert_int_equal(r.n_scps, 0);
        assert_true(fake.fail_hits >= 1);
        expect_whole_tree(&r);
        free_run(&r);
        free_fake(&fake);
    }
}

static void test_account_listing_error_fails_discovery(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListAccountsForParent";
    fake.fail_key = "ou-ab12-prod0001";
    fake.fail_file = "org-error-parent-not-found.json";
    fake.fail_status = 400;
    struct run r;
    discover(&fake, NULL, &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, "ParentNotFoundException");
    assert_int_equal(r.done_err.http_status, 400);
    assert_non_null(strstr(r.done_err.message, "ListAccountsForParent"));
    for (int i = 0; i < r.n_accounts; i++) {
        assert_int_equal(r.accounts[i].times, 1);
        assert_string_not_equal(r.accounts[i].parent_id, "ou-ab12-prod0001");
    }
    free_run(&r);
    free_fake(&fake);
}

static void test_not_in_organization_fails(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "DescribeOrganization";
    fake.fail_key = "";
    fake.fail_file = "org-error-not-in-use.json";
    fake.fail_status = 400;
    struct run r;
    discover(&fake, NULL, &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, "AWSOrganizationsNotInUseException");
    assert_int_equal(r.org_calls, 0);
    assert_int_equal(r.n_accounts, 0); /* is_management unknown: nothing handed out */
    assert_int_equal(r.scps_ok, 0);
    assert_int_equal(r.scps_state, ORG_SCPS_FAILED); /* the SCP side ends with the walk */
    free_run(&r);
    free_fake(&fake);
}

static void test_malformed_page_fails_discovery(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListOrganizationalUnitsForParent";
    fake.fail_key = "ou-ab12-prod0001";
    fake.fail_file = "org-error-access-denied.json"; /* a 200 without OrganizationalUnits */
    fake.fail_status = 200;
    struct run r;
    discover(&fake, NULL, &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, ERR_PARSE);
    assert_non_null(strstr(r.done_err.message, "OrganizationalUnits"));
    free_run(&r);
    free_fake(&fake);
}

/* ---- the answer parsers ---- */

static void expect_page_error(enum org_op op, const char *body, const char *needle)
{
    struct org_page page;
    struct err e;
    err_clear(&e);
    assert_int_equal(org_parse_page(op, body, strlen(body), &page, &e), -1);
    assert_string_equal(e.code, ERR_PARSE);
    if (!strstr(e.message, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
    assert_int_equal(strncmp(e.message, org_op_name(op), strlen(org_op_name(op))), 0);
    assert_null(page.entries);
    assert_null(page.doc);
    assert_int_equal(page.n, 0);
    org_page_cleanup(&page);
}

static char *nested_array(const char *prefix, int depth, const char *suffix)
{
    size_t len = strlen(prefix) + 2 * (size_t)depth + strlen(suffix) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    size_t p = (size_t)sprintf(s, "%s", prefix);
    memset(s + p, '[', (size_t)depth);
    memset(s + p + (size_t)depth, ']', (size_t)depth);
    strcpy(s + p + 2 * (size_t)depth, suffix);
    return s;
}

/* Hostile answers to every operation: an error naming the operation and the member, never a
 * crash and never a page with a wrong value in it. */
static void test_parse_hostile_answers(void **state)
{
    (void)state;
    const enum org_op acc = ORG_OP_LIST_ACCOUNTS;
    expect_page_error(acc, "", "ListAccountsForParent: the answer is empty");
    expect_page_error(acc, "{\"Accounts\":null}", "Accounts is null, expected an array");
    expect_page_error(acc, "{\"NextToken\":\"t\"}", "Accounts is missing, expected an array");
    expect_page_error(acc, "{\"Accounts\":{\"Id\":\"111122223333\"}}", "Accounts is an object");
    expect_page_error(acc, "{\"Accounts\":[\"111122223333\"]}",
                      "Accounts[0] is a string, expected an object");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"111122223333\"},{\"Id\":111122223334}]}",
                      "Accounts[1].Id is a number, expected a string");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"\"}]}", "Accounts[0].Id is empty");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":null}]}", "Accounts[0].Id is missing");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"111122223333\",\"Name\":{\"n\":\"a\"}}]}",
                      "Accounts[0].Name is an object, expected a string");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"111122223333\",\"Status\":1}]}",
                      "Accounts[0].Status is a number");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"111122223333\",\"State\":[\"ACTIVE\"]}]}",
                      "Accounts[0].State is an array");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"111122223333\",\"Email\":true}]}",
                      "Accounts[0].Email is a boolean");
    expect_page_error(acc, "{\"Accounts\":[],\"NextToken\":{\"t\":1}}", "NextToken is an object");
    expect_page_error(acc, "{\"Accounts\":[{\"Id\":\"1111\xff\"}]}", "not JSON");
    expect_page_error(acc, "[]", "the answer is an array, not an object");
    char *deep = nested_array("{\"Accounts\":", 100000, "}");
    expect_page_error(acc, deep, "depth");
    free(deep);

    expect_page_error(ORG_OP_LIST_ROOTS, "{\"Roots\":null}", "ListRoots: Roots is null");
    expect_page_error(ORG_OP_LIST_ROOTS, "{\"Roots\":[{\"Id\":\"r-ab12\",\"Name\":5}]}",
                      "Roots[0].Name is a number");
    expect_page_error(ORG_OP_LIST_OUS, "{\"OrganizationalUnits\":[{\"Name\":\"Prod\"}]}",
                      "OrganizationalUnits[0].Id is missing");
    expect_page_error(ORG_OP_LIST_POLICIES,
                      "{\"Policies\":[{\"Id\":\"p-1\",\"AwsManaged\":\"true\"}]}",
                      "Policies[0].AwsManaged is a string, expected a boolean");
    expect_page_error(ORG_OP_LIST_TARGETS, "{\"Targets\":[{\"TargetId\":7}]}",
                      "Targets[0].TargetId is a number");
    expect_page_error(ORG_OP_LIST_TARGETS, "{\"Targets\":null,\"NextToken\":\"x\"}",
                      "Targets is null");
    expect_page_error(ORG_OP_DESCRIBE_POLICY, "{\"Policy\":null}",
                      "DescribePolicy: Policy is null");
    expect_page_error(ORG_OP_DESCRIBE_POLICY, "{\"Policy\":{\"Content\":[\"{}\"]}}",
                      "Policy.Content is an array, expected a string");
    expect_page_error(ORG_OP_DESCRIBE_POLICY, "{\"Policy\":{\"Content\":{\"Version\":\"1\"}}}",
                      "Policy.Content is an object");
    expect_page_error(ORG_OP_DESCRIBE_POLICY, "{\"Policy\":{}}", "Policy.Content is missing");
    expect_page_error(ORG_OP_DESCRIBE_POLICY,
                      "{\"Policy\":{\"Content\":\"{}\",\"PolicySummary\":\"p-1\"}}",
                      "Policy: PolicySummary is a string, expected an object");
    expect_page_error(ORG_OP_DESCRIBE_POLICY,
                      "{\"Policy\":{\"Content\":\"{}\",\"PolicySummary\":{\"AwsManaged\":1}}}",
                      "Policy.PolicySummary.AwsManaged is a number, expected a boolean");
    expect_page_error(ORG_OP_DESCRIBE_ORGANIZATION, "{\"Organization\":\"o-1\"}",
                      "DescribeOrganization: Organization is a string, expected an object");
    expect_page_error(ORG_OP_DESCRIBE_ORGANIZATION, "{\"Organization\":{\"Id\":\"o-1\"}}",
                      "Organization.MasterAccountId is missing");
    expect_page_error(ORG_OP_DESCRIBE_ORGANIZATION,
                      "{\"Organization\":{\"ManagementAccountId\":999999999999}}",
                      "Organization.ManagementAccountId is a number");

    struct err e;
    err_clear(&e);
    struct org_page page;
    assert_int_equal(org_parse_page(ORG_OP_COUNT, "{}", 2, &page, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    org_page_cleanup(&page);
}

/* What the parsers accept comes out exactly. */
static void test_parse_pages(void **state)
{
    (void)state;
    struct org_page page;
    struct err e;
    err_clear(&e);
    const char *accounts = "{\"Accounts\":[{\"Id\":\"111122223333\",\"Name\":\"a\",\"Email\":"
                           "\"a@x\",\"State\":\"CLOSED\"},{\"Id\":\"111122223334\",\"Name\":null,"
                           "\"Status\":\"ACTIVE\",\"State\":\"ACTIVE\"}],\"NextToken\":\"\"}";
    assert_int_equal(org_parse_page(ORG_OP_LIST_ACCOUNTS, accounts, strlen(accounts), &page, &e),
                     0);
    assert_int_equal(page.n, 2);
    assert_string_equal(page.entries[0].id, "111122223333");
    assert_string_equal(page.entries[0].email, "a@x");
    assert_string_equal(page.entries[0].status, "CLOSED"); /* State when Status is absent */
    assert_null(page.entries[1].name);
    assert_null(page.entries[1].email);
    assert_string_equal(page.entries[1].status, "ACTIVE");
    assert_null(page.next_token); /* an empty token ends the listing */
    org_page_cleanup(&page);
    assert_null(page.doc);

    const char *org = "{\"Organization\":{\"Id\":\"o-1\",\"ManagementAccountId\":\"\","
                      "\"MasterAccountId\":\"999999999999\"}}";
    assert_int_equal(org_parse_page(ORG_OP_DESCRIBE_ORGANIZATION, org, strlen(org), &page, &e), 0);
    assert_string_equal(page.org_id, "o-1");
    assert_string_equal(page.management_id, "999999999999");
    org_page_cleanup(&page);

    const char *policy = "{\"Policy\":{\"PolicySummary\":{\"Name\":\"Deny\",\"AwsManaged\":false},"
                         "\"Content\":\"{\\\"Version\\\":\\\"2012-10-17\\\"}\"}}";
    assert_int_equal(org_parse_page(ORG_OP_DESCRIBE_POLICY, policy, strlen(policy), &page, &e), 0);
    assert_string_equal(page.content, "{\"Version\":\"2012-10-17\"}");
    assert_string_equal(page.policy_name, "Deny");
    assert_int_equal(page.aws_managed, 0);
    org_page_cleanup(&page);

    const char *policies = "{\"Policies\":[{\"Id\":\"p-FullAWSAccess\",\"AwsManaged\":true},"
                           "{\"Id\":\"p-1\"}],\"NextToken\":\"n2\"}";
    assert_int_equal(org_parse_page(ORG_OP_LIST_POLICIES, policies, strlen(policies), &page, &e),
                     0);
    assert_int_equal(page.n, 2);
    assert_int_equal(page.entries[0].aws_managed, 1);
    assert_int_equal(page.entries[1].aws_managed, 0);
    assert_string_equal(page.next_token, "n2");
    org_page_cleanup(&page);
}

/* A page with "Accounts": null fails discovery with an error naming the member, once; nothing
 * from it is handed out. */
static void test_null_accounts_page_fails_discovery(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    fake.fail_op = "ListAccountsForParent";
    fake.fail_key = "ou-ab12-prod0001";
    fake.fail_file = "org-answer-accounts-null.json";
    fake.fail_status = 200;
    struct run r;
    discover(&fake, NULL, &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, ERR_PARSE);
    assert_string_equal(r.done_err.message,
                        "ListAccountsForParent: Accounts is null, expected an array");
    free_run(&r);
    free_fake(&fake);
}

/* Replaces the answer to (op, key, token) of the fake organization. */
static void set_page(struct fake_org *f, const char *op, const char *key, const char *token,
                     const char *body)
{
    for (int i = 0; i < f->n_pages; i++) {
        struct fake_page *p = &f->pages[i];
        if (strcmp(p->op, op) == 0 && strcmp(p->key, key) == 0 && strcmp(p->token, token) == 0) {
            free(p->body);
            p->body = strdup(body);
            assert_non_null(p->body);
            return;
        }
    }
    fail_msg("the fake organization has no page %s %s %s", op, key, token);
}

/* Pages whose NextTokens go round (first -> =2 -> =3 -> =2 -> ...): discovery fails instead of
 * paging forever, after asking for each page once. */
static void test_next_token_cycle_fails_discovery(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    set_page(&fake, "ListAccountsForParent", "ou-ab12-prod0001", "AAEAAQ/acct+prod=3",
             "{\"Accounts\":[{\"Id\":\"444444444444\",\"Name\":\"prod-c\","
             "\"Status\":\"ACTIVE\"}],\"NextToken\":\"AAEAAQ/acct+prod=2\"}");
    struct run r;
    discover(&fake, NULL, &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, ERR_PARSE);
    assert_string_equal(r.done_err.message, "ListAccountsForParent: NextToken repeats the token of "
                                            "an earlier page (the listing would never end)");
    for (int i = 0; i < fake.n_pages; i++)
        if (strcmp(fake.pages[i].key, "ou-ab12-prod0001") == 0 &&
            strcmp(fake.pages[i].op, "ListAccountsForParent") == 0)
            assert_int_equal(fake.pages[i].hits, 1);
    assert_int_equal(fake.violations, 0);
    free_run(&r);
    free_fake(&fake);
}

/* An account id that is not 12 digits would name a wrong role and rows no table accepts: the
 * listing fails with the id quoted. */
static void test_malformed_account_id_fails_discovery(void **state)
{
    (void)state;
    const char *bad[] = {"12345", "1234567890123", "12345678901a", "１２３４５６７８９０１２",
                         "../../../etc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_org fake;
        load_fake(&fake);
        char body[256], expected[200];
        snprintf(body, sizeof body, "{\"Accounts\":[{\"Id\":\"999999999999\"},{\"Id\":\"%s\"}]}",
                 bad[i]);
        set_page(&fake, "ListAccountsForParent", "r-ab12", "", body);
        struct run r;
        discover(&fake, NULL, &r);
        assert_false(r.done_ok);
        assert_string_equal(r.done_err.code, ERR_PARSE);
        snprintf(expected, sizeof expected,
                 "ListAccountsForParent: Accounts[1].Id \"%s\" is not a 12-digit account id",
                 bad[i]);
        assert_string_equal(r.done_err.message, expected);
        free_run(&r);
        free_fake(&fake);
    }
}

static void test_ou_filter(void **state)
{
    (void)state;
    struct fake_org fake;
    load_fake(&fake);
    struct run r;
    discover(&fake, "ou-ab12-prod0001", &r);
    assert_true(r.done_ok);
    assert_int_equal(r.scps_ok, 1);
    assert_int_equal(r.n_accounts, 4);
    expect_account(&r, "222222222222", "ACTIVE", "Root/Prod", PROD, "ou-ab12-prod0001", 0);
    expect_account(&r, "333333333333", "ACTIVE", "Root/Prod", PROD, "ou-ab12-prod0001", 0);
    expect_account(&r, "444444444444", "PENDING_ACTIVATION", "Root/Prod", PROD, "ou-ab12-prod0001",
                   0);
    expect_account(&r, "555555555555", "ACTIVE", "Root/Prod/Regulated", PROD "/ou-ab12-regu0001",
                   "ou-ab12-regu0001", 0);
    expect_all_ous(&r); /* the whole tree is still reported */
    expect_scps(&r);
    free_run(&r);
    free_fake(&fake);

    load_fake(&fake);
    discover(&fake, "ou-ab12-regu0001", &r);
    assert_true(r.done_ok);
    assert_int_equal(r.n_accounts, 1);
    expect_account(&r, "555555555555", "ACTIVE", "Root/Prod/Regulated", PROD "/ou-ab12-regu0001",
                   "ou-ab12-regu0001", 0);
    free_run(&r);
    free_fake(&fake);

    load_fake(&fake);
    discover(&fake, "r-ab12", &r);
    assert_true(r.done_ok);
    expect_whole_tree(&r);
    free_run(&r);
    free_fake(&fake);

    /* "ou-ab12-prod" is a prefix of a real id, not an OU: nothing matches, which is an error */
    load_fake(&fake);
    discover(&fake, "ou-ab12-prod", &r);
    assert_false(r.done_ok);
    assert_string_equal(r.done_err.code, ERR_CONFIG);
    assert_int_equal(r.n_accounts, 0);
    free_run(&r);
    free_fake(&fake);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, NULL); /* the expected SCP failures log at info */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovers_whole_organization),
        cmocka_unit_test(test_accounts_wait_for_management_account),
        cmocka_unit_test(test_scps_access_denied),
        cmocka_unit_test(test_scps_disabled),
        cmocka_unit_test(test_scp_targets_fail_midway),
        cmocka_unit_test(test_scps_throttled_past_retries),
        cmocka_unit_test(test_scps_other_failures),
        cmocka_unit_test(test_account_listing_error_fails_discovery),
        cmocka_unit_test(test_not_in_organization_fails),
        cmocka_unit_test(test_malformed_page_fails_discovery),
        cmocka_unit_test(test_ou_filter),
        cmocka_unit_test(test_parse_hostile_answers),
        cmocka_unit_test(test_parse_pages),
        cmocka_unit_test(test_null_accounts_page_fails_discovery),
        cmocka_unit_test(test_next_token_cycle_fails_discovery),
        cmocka_unit_test(test_malformed_account_id_fails_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
