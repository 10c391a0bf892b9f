/* test_fakeaws.c - build/fakeaws driven by the project's real clients (HTTP engine, STS, EKS,
 * Organizations discovery): discovery finds every account of the --truth fleet, AssumeRole +
 * ListClusters + DescribeCluster return an account's clusters, --verify-sigv4 refuses a wrong
 * secret, TLS works with a throwaway certificate, --faults throttles, latency is applied, short
 * credentials expire, and SIGTERM stops it cleanly. No assertion depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/log.h"
#include "scanner/creds.h"
#include "scanner/ec2.h"
#include "scanner/eks.h"
#include "scanner/http.h"
#include "scanner/org.h"
#include "scanner/sts.h"
#include "tests/support/fakeproc.h"
#include "tests/support/procs.h"

#define BASE_KEY "AKIDFAKEAWSBASE0001"
#define BASE_SECRET "fakeaws-base-secret"
#define ROLE "EgressScanReadOnly"

static struct {
    char tmp[64]; /* a temporary directory for truth files and the certificate */
    struct fakeproc main;
    struct http_engine *engine;
} fx;

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* Starts build/fakeaws with the common fleet flags and extra (NULL-terminated). */
static int fake_start(struct fakeproc *f, const char *name, int tls, const char *const *extra)
{
    const char *argv[40] = {
        "--accounts", "40",     "--regions", "3", "--clusters-per-account-region-mean",
        "1.2",        "--seed", "4711"};
    size_t n = 8;
    for (; extra && *extra && n < 38; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    return fakeproc_start(f, fx.tmp, name, tls, argv);
}

static void use_endpoint(const struct fakeproc *f)
{
    setenv("AWS_ENDPOINT_URL", f->url, 1);
}

static struct http_engine *engine_new(void)
{
    struct http_engine_options o;
    struct err e;
    if (http_engine_options_init(&o, &e) < 0)
        return NULL;
    return http_engine_new(&o, &e);
}

static struct aws_credentials *base_creds(const char *secret)
{
    return creds_new(BASE_KEY, secret, NULL, 0, "test");
}

static struct aws_credentials *assume(struct http_engine *eng, struct aws_credentials *base,
                                      const char *account, struct err *e)
{
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/%s", account, ROLE);
    struct sts_assume_role_params p = {
        .role_arn = arn, .session_name = "fakeaws-itest", .region = "us-east-1"};
    err_clear(e);
    return sts_assume_role(eng, base, &p, e);
}

/* The active, non-management account of the truth with the most clusters. */
static const char *busiest_account(json_t *truth, size_t *n_clusters)
{
    json_t *accounts = json_object_get(truth, "accounts");
    json_t *clusters = json_object_get(truth, "clusters");
    const char *best = NULL;
    size_t best_n = 0, i, j;
    json_t *a, *c;
    json_array_foreach(accounts, i, a)
    {
        if (json_is_true(json_object_get(a, "is_management")) ||
            strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") != 0)
            continue;
        const char *id = json_string_value(json_object_get(a, "id"));
        size_t n = 0;
        json_array_foreach(clusters, j, c)
        {
            n += strcmp(json_string_value(json_object_get(c, "account_id")), id) == 0;
        }
        if (n > best_n) {
            best = id;
            best_n = n;
        }
    }
    *n_clusters = best_n;
    return best;
}

/* "region/name=mode" lines of an account's clusters in the truth, sorted, into out. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *cluster_key(const char *region, const char *name, const char *mode)
{
    char *s = NULL;
    size_t len = strlen(region) + strlen(name) + (mode ? strlen(mode) : 4) + 3;
    s = malloc(len);
    if (s)
        snprintf(s, len, "%s/%s=%s", region, name, mode ? mode : "null");
    return s;
}

struct key_list {
    char *v[512];
    size_t n;
};

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static void truth_keys(json_t *truth, const char *account, struct key_list *out)
{
    size_t i;
    json_t *c;
    out->n = 0;
    json_array_foreach(json_object_get(truth, "clusters"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "account_id")), account) != 0 ||
            out->n == 512)
            continue;
        out->v[out->n++] = cluster_key(json_string_value(json_object_get(c, "region")),
                                       json_string_value(json_object_get(c, "name")),
                                       json_string_value(json_object_get(c, "egress_mode")));
    }
    qsort(out->v, out->n, sizeof out->v[0], cmp_str);
}

/* ---- EKS through the real client: ListClusters pages, then DescribeCluster ---- */

struct eks_walk {
    struct http_engine *eng;
    struct aws_credentials *creds;
    const char *region;
    struct key_list *keys;
    char *names[256];
    size_t n_names;
    int pages;
    struct err err; /* first error */
};

static void on_describe(void *ud, struct cluster *c, const struct err *e)
{
    struct eks_walk *w = ud;
    if (!c) {
        if (!err_isset(&w->err))
            w->err = *e;
        return;
    }
    if (w->keys->n < 512)
        w->keys->v[w->keys->n++] = cluster_key(w->region, c->name, c->egress_mode);
    free(c);
}

static void on_list(void *ud, const struct eks_cluster_page *page, const struct err *e)
{
    struct eks_walk *w = ud;
    if (!page) {
        if (!err_isset(&w->err))
            w->err = *e;
        return;
    }
    w->pages++;
    for (size_t i = 0; i < page->n && w->n_names < 256; i++)
        w->names[w->n_names++] = strdup(page->names[i]);
    struct err se;
    err_clear(&se);
    if (page->next_token &&
        eks_list_clusters_submit(w->eng, w->creds, w->region, page->next_token, 2, NULL, on_list, w,
                                 &se) < 0 &&
        !err_isset(&w->err))
        w->err = se;
}

/* Lists (2 per page) and describes every cluster of creds' account in region. 0, or -1 with e. */
static int eks_walk_region(struct http_engine *eng, struct aws_credentials *creds,
                           const char *region, struct key_list *keys, int *pages, struct err *e)
{
    struct eks_walk w;
    memset(&w, 0, sizeof w);
    w.eng = eng;
    w.creds = creds;
    w.region = region;
    w.keys = keys;
    err_clear(&w.err);
    err_clear(e);
    if (eks_list_clusters_submit(eng, creds, region, NULL, 2, NULL, on_list, &w, e) < 0 ||
        http_engine_run(eng, e) < 0)
        return -1;
    for (size_t i = 0; i < w.n_names && !err_isset(&w.err); i++)
        if (eks_describe_cluster_submit(eng, creds, region, w.names[i], NULL, on_describe, &w,
                                        &w.err) < 0)
            break;
    if (http_engine_run(eng, e) < 0)
        return -1;
    for (size_t i = 0; i < w.n_names; i++)
        free(w.names[i]);
    if (pages)
        *pages += w.pages;
    if (err_isset(&w.err)) {
        *e = w.err;
        return -1;
    }
    return 0;
}

struct regions_seen {
    json_t *names; /* new array */
    struct err err;
};

static void on_regions(void *ud, const char *const *regions, size_t n, const struct err *e)
{
    struct regions_seen *r = ud;
    if (!regions) {
        r->err = *e;
        return;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(r->names, json_string(regions[i]));
}

/* Every cluster of account through AssumeRole + ListClusters + DescribeCluster, compared with
 * the truth. */
static void check_account_clusters(struct http_engine *eng, const struct fakeproc *f,
                                   const char *account)
{
    struct err e;
    struct aws_credentials *base = base_creds(BASE_SECRET);
    struct aws_credentials *member = assume(eng, base, account, &e);
    if (!member)
        fail_msg("AssumeRole %s: %s: %s", account, e.code, e.message);
    assert_int_equal(strncmp(member->access_key_id, "ASIA", 4), 0);
    assert_true(strlen(member->session_token) >= 700);
    assert_true(member->expiration > time(NULL));

    /* DescribeRegions lists the fleet's regions */
    struct regions_seen rs;
    memset(&rs, 0, sizeof rs);
    rs.names = json_array();
    err_clear(&rs.err);
    assert_int_equal(
        ec2_describe_regions_submit(eng, member, "us-east-1", NULL, on_regions, &rs, &e), 0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    if (err_isset(&rs.err))
        fail_msg("DescribeRegions: %s: %s", rs.err.code, rs.err.message);
    assert_true(json_equal(rs.names, json_object_get(f->truth, "regions")));
    json_decref(rs.names);

    struct key_list got = {.n = 0}, want;
    int pages = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(f->truth, "regions"), i, r)
    {
        if (eks_walk_region(eng, member, json_string_value(r), &got, &pages, &e) < 0)
            fail_msg("EKS %s: %s: %s", json_string_value(r), e.code, e.message);
    }
    qsort(got.v, got.n, sizeof got.v[0], cmp_str);
    truth_keys(f->truth, account, &want);
    assert_true(want.n >= 3); /* the fleet is chosen so that pages follow each other */
    assert_true(pages > 3);
    assert_int_equal(got.n, want.n);
    for (size_t k = 0; k < got.n; k++)
        assert_string_equal(got.v[k], want.v[k]);
    key_list_free(&got);
    key_list_free(&want);

    /* an unknown cluster is ResourceNotFoundException */
    struct key_list none = {.n = 0};
    struct eks_walk w;
    memset(&w, 0, sizeof w);
    w.region = "us-east-1";
    w.keys = &none;
    err_clear(&w.err);
    assert_int_equal(eks_describe_cluster_submit(eng, member, "us-east-1", "no-such-cluster", NULL,
                                                 on_describe, &w, &e),
                     0);
    assert_int_equal(http_engine_run(eng, &e), 0);
    assert_string_equal(w.err.code, "ResourceNotFoundException");
    assert_int_equal(w.err.http_status, 404);
    creds_unref(member);
    creds_unref(base);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    if (!fakeproc_bin())
        return -1;
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/fakeaws-itest-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    log_setup(LOG_WARN, LOG_TEXT, NULL);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CA_BUNDLE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_MAX_ATTEMPTS", "1", 1); /* every error shows as it is answered */
    const char *extra[] = {"--verify-sigv4", NULL};
    if (fake_start(&fx.main, "main", 0, extra) < 0)
        return -1;
    use_endpoint(&fx.main);
    fx.engine = engine_new();
    return fx.engine ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    http_engine_free(fx.engine);
    fakeproc_stop(&fx.main);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "%s/cert.pem", fx.tmp);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/key.pem", fx.tmp);
    unlink(cmd);
    rmdir(fx.tmp);
    return 0;
}

/* ---- tests ---- */

struct discovery {
    json_t *seen; /* account id -> {status, ou_path} */
    int n_ous, n_scps, scps_ok, done;
    size_t full_access_targets;
    struct err err;
    char management[16];
};

static void on_org(void *ud, const char *org_id, const char *mgmt)
{
    struct discovery *d = ud;
    (void)org_id;
    snprintf(d->management, sizeof d->management, "%s", mgmt);
}

static void on_ou(void *ud, const struct org_unit *ou)
{
    struct discovery *d = ud;
    (void)ou;
    d->n_ous++;
}

static void on_accounts(void *ud, const struct account *a, size_t n)
{
    struct discovery *d = ud;
    for (size_t i = 0; i < n; i++)
        json_object_set_new(d->seen, a[i].id,
                            json_pack("{s:s,s:s,s:b}", "status", a[i].status ? a[i].status : "",
                                      "ou_path", a[i].ou_path ? a[i].ou_path : "", "mgmt",
                                      a[i].is_management));
}

static void on_scp(void *ud, const struct scp_policy *p)
{
    struct discovery *d = ud;
    d->n_scps++;
    if (p->aws_managed)
        d->full_access_targets = p->n_targets;
}

static void on_done(void *ud, const struct err *e, int scps_ok)
{
    struct discovery *d = ud;
    d->done = 1;
    d->scps_ok = scps_ok;
    if (e)
        d->err = *e;
}

static void test_organizations_discovery_lists_every_account(void **state)
{
    (void)state;
    use_endpoint(&fx.main);
    struct discovery d;
    memset(&d, 0, sizeof d);
    d.seen = json_object();
    err_clear(&d.err);
    struct org_callbacks cb = {.on_organization = on_org,
                               .on_org_unit = on_ou,
                               .on_accounts = on_accounts,
                               .on_scp = on_scp,
                               .on_done = on_done,
                               .ud = &d};
    struct aws_credentials *base = base_creds(BASE_SECRET);
    struct err e;
    err_clear(&e);
    struct org_discovery *disc = org_discover_start(fx.engine, base, NULL, NULL, &cb, &e);
    assert_non_null(disc);
    assert_int_equal(http_engine_run(fx.engine, &e), 0);
    assert_true(d.done);
    if (err_isset(&d.err))
        fail_msg("discovery: %s: %s", d.err.code, d.err.message);
    assert_true(d.scps_ok);

    json_t *truth = fx.main.truth;
    assert_string_equal(d.management,
                        json_string_value(json_object_get(json_object_get(truth, "organization"),
                                                          "management_account_id")));
    size_t i, active = 0, suspended = 0;
    json_t *a;
    json_array_foreach(json_object_get(truth, "accounts"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *status = json_string_value(json_object_get(a, "status"));
        json_t *got = json_object_get(d.seen, id);
        if (strcmp(status, "ACTIVE") != 0) {
            suspended++;
            continue;
        }
        active++;
        if (!got)
            fail_msg("account %s of the truth was not discovered", id);
        assert_string_equal(json_string_value(json_object_get(got, "status")), "ACTIVE");
        assert_string_equal(json_string_value(json_object_get(got, "ou_path")),
                            json_string_value(json_object_get(a, "ou_path")));
        assert_int_equal(json_is_true(json_object_get(got, "mgmt")),
                         json_is_true(json_object_get(a, "is_management")));
    }
    assert_true(active > 30);
    assert_true(suspended >= 1); /* the generator always has one in a fleet of this size */
    assert_int_equal(json_object_size(d.seen), json_array_size(json_object_get(truth, "accounts")));
    /* the OU tree and the SCPs as the truth has them */
    assert_int_equal((size_t)d.n_ous, json_array_size(json_object_get(truth, "ous")));
    assert_int_equal((size_t)d.n_scps, json_array_size(json_object_get(truth, "scps")));
    assert_int_equal(d.full_access_targets, json_array_size(json_object_get(truth, "accounts")) +
                                                json_array_size(json_object_get(truth, "ous")));
    org_discovery_free(disc);
    creds_unref(base);
    json_decref(d.seen);
}

static void test_assume_role_list_and_describe_match_the_truth(void **state)
{
    (void)state;
    use_endpoint(&fx.main);
    size_t n;
    const char *account = busiest_account(fx.main.truth, &n);
    assert_non_null(account);
    check_account_clusters(fx.engine, &fx.main, account);

    /* a suspended account cannot be assumed into */
    size_t i;
    json_t *a;
    const char *susp = NULL;
    json_array_foreach(json_object_get(fx.main.truth, "accounts"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "status")), "SUSPENDED") == 0)
            susp = json_string_value(json_object_get(a, "id"));
    }
    assert_non_null(susp);
    struct err e;
    struct aws_credentials *base = base_creds(BASE_SECRET);
    assert_null(assume(fx.engine, base, susp, &e));
    assert_string_equal(e.code, "AccessDenied");
    assert_int_equal(e.http_status, 403);
    creds_unref(base);

    json_t *stats = fakeproc_stats(&fx.main, 0);
    assert_non_null(stats);
    assert_true(fakeproc_stat(stats, "operations", "DescribeCluster") >= (long)n);
    assert_true(fakeproc_stat(stats, "operations", "AssumeRole") >= 1);
    json_decref(stats);
}

static void test_verify_sigv4_rejects_a_wrong_secret(void **state)
{
    (void)state;
    use_endpoint(&fx.main);
    struct err e;
    /* STS (awsQuery) with base keys and a wrong secret */
    struct aws_credentials *bad = base_creds("not-the-secret");
    size_t n;
    const char *account = busiest_account(fx.main.truth, &n);
    assert_null(assume(fx.engine, bad, account, &e));
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_int_equal(e.http_status, 403);
    creds_unref(bad);

    /* EKS (restJson1) with assumed keys and a wrong secret: EKS names it
     * InvalidSignatureException */
    struct aws_credentials *base = base_creds(BASE_SECRET);
    struct aws_credentials *good = assume(fx.engine, base, account, &e);
    assert_non_null(good);
    struct aws_credentials *tampered = creds_new(good->access_key_id, "wrong-secret",
                                                 good->session_token, good->expiration, "test");
    struct key_list keys = {.n = 0};
    assert_int_equal(eks_walk_region(fx.engine, tampered, "us-east-1", &keys, NULL, &e), -1);
    assert_string_equal(e.code, "InvalidSignatureException");
    assert_int_equal(e.http_status, 403);

    /* a session token that does not belong to the key */
    struct aws_credentials *forged =
        creds_new(good->access_key_id, good->secret_access_key, "Zm9yZ2VkIHRva2Vu", 0, "test");
    assert_int_equal(eks_walk_region(fx.engine, forged, "us-east-1", &keys, NULL, &e), -1);
    assert_string_equal(e.code, "UnrecognizedClientException");
    key_list_free(&keys);
    creds_unref(forged);
    creds_unref(tampered);
    creds_unref(good);
    creds_unref(base);

    json_t *stats = fakeproc_stats(&fx.main, 0);
    assert_true(fakeproc_stat(stats, "errors", "signature") >= 2);
    json_decref(stats);
}

static void test_tls_with_a_throwaway_certificate(void **state)
{
    (void)state;
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", fx.tmp);
    snprintf(key, sizeof key, "%s/key.pem", fx.tmp);
    assert_int_equal(fakeproc_make_cert(fx.tmp, cert, sizeof cert, key, sizeof key), 0);

    struct fakeproc tls;
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, "--verify-sigv4", NULL};
    assert_int_equal(fake_start(&tls, "tls", 1, extra), 0);
    snprintf(tls.ca_file, sizeof tls.ca_file, "%s", cert);
    use_endpoint(&tls);
    setenv("AWS_CA_BUNDLE", cert, 1);
    struct http_engine *eng = engine_new();
    unsetenv("AWS_CA_BUNDLE");
    assert_non_null(eng);
    size_t n;
    check_account_clusters(eng, &tls, busiest_account(tls.truth, &n));
    json_t *stats = fakeproc_stats(&tls, 0);
    assert_non_null(stats);
    assert_true(json_integer_value(json_object_get(stats, "tls_handshakes")) >= 1);
    json_decref(stats);
    http_engine_free(eng);
    assert_int_equal(fakeproc_stop(&tls), 0);
    use_endpoint(&fx.main);
}

static void test_faults_throttle_everything(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *extra[] = {"--faults", "throttle=1.0", NULL};
    assert_int_equal(fake_start(&f, "throttle", 0, extra), 0);
    use_endpoint(&f);
    /* without --verify-sigv4 the base keys reach EKS as the management account */
    struct aws_credentials *base = base_creds(BASE_SECRET);
    struct key_list keys = {.n = 0};
    struct err e;
    assert_int_equal(eks_walk_region(fx.engine, base, "us-east-1", &keys, NULL, &e), -1);
    assert_string_equal(e.code, "ThrottlingException");
    assert_int_equal(e.http_status, 429);
    /* STS answers its own throttling code */
    assert_null(assume(fx.engine, base,
                       json_string_value(json_object_get(json_object_get(f.truth, "organization"),
                                                         "management_account_id")),
                       &e));
    assert_string_equal(e.code, "Throttling");
    assert_int_equal(e.http_status, 400);
    json_t *stats = fakeproc_stats(&f, 0);
    assert_true(fakeproc_stat(stats, "faults", "throttle") >= 2);
    json_decref(stats);
    creds_unref(base);
    assert_int_equal(fakeproc_stop(&f), 0);
    use_endpoint(&fx.main);
}

struct assumed {
    struct aws_credentials *creds;
    struct err err;
};

static void on_assumed(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct assumed *a = ud;
    a->creds = creds;
    if (!creds)
        a->err = *e;
}

struct listed {
    int ok, failed;
};

static void on_listed(void *ud, const struct eks_cluster_page *page, const struct err *e)
{
    struct listed *l = ud;
    (void)e;
    if (page)
        l->ok++;
    else
        l->failed++;
}

static void test_latency_is_applied_and_requests_still_succeed(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *extra[] = {"--latency-ms", "50", "--verify-sigv4", NULL};
    assert_int_equal(fake_start(&f, "latency", 0, extra), 0);
    use_endpoint(&f);
    struct aws_credentials *base = base_creds(BASE_SECRET);
    /* several AssumeRoles in flight at once, then ListClusters in every region of each */
    struct assumed as[8];
    memset(as, 0, sizeof as);
    size_t n = 0, i;
    json_t *a;
    struct err e;
    err_clear(&e);
    json_array_foreach(json_object_get(f.truth, "accounts"), i, a)
    {
        if (n == 8)
            break;
        if (strcmp(json_string_value(json_object_get(a, "status")), "ACTIVE") != 0)
            continue;
        char arn[128];
        snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/%s",
                 json_string_value(json_object_get(a, "id")), ROLE);
        struct sts_assume_role_params p = {.role_arn = arn, .region = "us-east-1"};
        assert_int_equal(sts_assume_role_submit(fx.engine, base, &p, on_assumed, &as[n], &e), 0);
        n++;
    }
    assert_int_equal(http_engine_run(fx.engine, &e), 0);
    struct listed l = {0, 0};
    json_t *regions = json_object_get(f.truth, "regions");
    for (size_t k = 0; k < n; k++) {
        if (!as[k].creds)
            fail_msg("AssumeRole: %s: %s", as[k].err.code, as[k].err.message);
        json_t *r;
        json_array_foreach(regions, i, r)
        {
            assert_int_equal(eks_list_clusters_submit(fx.engine, as[k].creds, json_string_value(r),
                                                      NULL, 100, NULL, on_listed, &l, &e),
                             0);
        }
    }
    assert_int_equal(http_engine_run(fx.engine, &e), 0);
    assert_int_equal(l.failed, 0);
    assert_int_equal((size_t)l.ok, n * json_array_size(regions));
    for (size_t k = 0; k < n; k++)
        creds_unref(as[k].creds);
    creds_unref(base);
    assert_int_equal(fakeproc_stop(&f), 0);
    use_endpoint(&fx.main);
}

static void test_short_lived_credentials_expire(void **state)
{
    (void)state;
    struct fakeproc f;
    const char *extra[] = {"--credential-lifetime-s", "1", NULL};
    assert_int_equal(fake_start(&f, "expiry", 0, extra), 0);
    use_endpoint(&f);
    struct aws_credentials *base = base_creds(BASE_SECRET);
    size_t n;
    struct err e;
    struct aws_credentials *member = assume(fx.engine, base, busiest_account(f.truth, &n), &e);
    assert_non_null(member);
    assert_true(member->expiration <= time(NULL) + 1);
    /* well past the expiration (a wait, not a timing assertion) */
    while (time(NULL) <= member->expiration + 1)
        sleep_ms(200);
    struct key_list keys = {.n = 0};
    assert_int_equal(eks_walk_region(fx.engine, member, "us-east-1", &keys, NULL, &e), -1);
    assert_string_equal(e.code, "ExpiredTokenException");
    assert_int_equal(e.http_status, 403);
    creds_unref(member);
    creds_unref(base);
    assert_int_equal(fakeproc_stop(&f), 0);
    use_endpoint(&fx.main);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_organizations_discovery_lists_every_account),
        cmocka_unit_test(test_assume_role_list_and_describe_match_the_truth),
        cmocka_unit_test(test_verify_sigv4_rejects_a_wrong_secret),
        cmocka_unit_test(test_tls_with_a_throwaway_certificate),
        cmocka_unit_test(test_faults_throttle_everything),
        cmocka_unit_test(test_latency_is_applied_and_requests_still_succeed),
        cmocka_unit_test(test_short_lived_credentials_expire),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
