/* test_scheduler.c - the fleet scan against a fake AWS on one local endpoint: Organizations
 * (X-Amz-Target), STS AssumeRole (credentials that name the account), EC2 DescribeRegions and
 * EKS ListClusters / DescribeCluster answered from a small fleet table. Covers one result per
 * account x region, pagination, discovery and streaming, failures mapped to coverage statuses,
 * partitions, stopping, and the cap on accounts worked on at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "common/model.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/scheduler.h"
#include "tests/support/fakehttp.h"

#define BASE_KEY "AKIDSCHEDBASE"
#define BASE_SECRET "schedBaseSecret/K7MDENG"
#define ORG_PREFIX "AWSOrganizationsV20161128."
#define STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define MGMT "999999999999"
#define ROOT_ID "r-t001"
#define PROD_OU "ou-t001-prod0001"
#define MAX_EVENTS 4096
#define MAX_ACCTS 32
#define MAX_RESULTS 128
#define GATE_TIMEOUT_S 5

/* ---- the fake AWS ---- */

enum op { OP_ASSUME, OP_REGIONS, OP_LIST, OP_DESCRIBE, OP_ORG };

/* A cluster of the fleet. ghost: listed by ListClusters, gone for DescribeCluster. */
struct fleet_cluster {
    const char *account, *region, *name;
    const char *mode; /* NULL: DescribeCluster leaves controlPlaneEgressMode out */
    int ghost;
};

/* An answer replacing the normal one: op + account/region/name (NULL: any). */
struct fault {
    enum op op;
    const char *account, *region, *name; /* name: cluster, or Organizations operation */
    int status;
    const char *code;
};

/* An account of the fake organization: the ListAccountsForParent page (0-based) it is on. */
struct org_account {
    const char *id, *status, *parent;
    int page;
};

/* One request the fake saw. */
struct event {
    enum op op;
    char account[16];   /* the account it acts for ("" for Organizations) */
    char region[32];    /* credential scope region */
    char detail[96];    /* cluster name, Organizations operation, role|external id */
    char key[64];       /* access key id it was signed with */
    char partition[16]; /* AssumeRole: the role ARN's partition */
    char token[64];     /* nextToken / NextToken asked with */
    char session[48];   /* the session token it was signed with */
    int max_results;
    int status; /* what the fake answered */
};

struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    const struct fleet_cluster *clusters;
    size_t n_clusters;
    const char *const *regions; /* DescribeRegions; "name!" is not-opted-in; NULL: default */
    size_t n_regions;
    const struct fault *faults;
    size_t n_faults;
    const char *fault_message; /* the message of every fault answer; NULL: "<code> from the fake" */
    /* SCPs: FullAWSAccess on the root (and, with full_everywhere, on the OU and every account, as
     * AWS keeps it), plus scp_extra (id "p-extra", NULL: none) on scp_extra_targets */
    int full_everywhere;
    const char *scp_extra;
    const char *scp_extra_targets[3];
    /* ListTargetsForPolicy is answered only once this many DescribeRegions came in: the
     * accounts' first steps must not wait for the SCPs */
    int scp_gate_regions;
    int regions_seen;
    int scp_gate_timed_out;
    /* FullAWSAccess's ListTargetsForPolicy is answered only once a ListClusters came in: the
     * fan-out must not wait for the policies that cannot deny it */
    int full_targets_wait_list;
    int lists_seen;
    int full_gate_timed_out;
    const struct org_account *org_accounts;
    size_t n_org_accounts;
    /* streaming: a second accounts page is answered only after a ListClusters for gate_account */
    const char *gate_account;
    int gate_list_seen;
    int gate_timed_out;
    int gate_answered_after_list;
    /* expired credentials: EKS requests of expire_account signed with its first session token
     * (or, with expire_cluster, every DescribeCluster of that cluster) are refused as expired */
    const char *expire_account;
    const char *expire_cluster;
    char first_session[48];
    int sessions_issued;
    /* endless listings: ListClusters of loop_account answers, per loop_mode, 1: always
     * nextToken "same"; 2: "x1", "x2", "x1", ... (a cycle); 3: a new token on every page */
    const char *loop_account;
    int loop_mode;
    /* concurrency: ListClusters is held this long; accounts with a request in the handler */
    int hold_list_ms;
    char acct_ids[MAX_ACCTS][16];
    int inflight[MAX_ACCTS];
    int n_accts;
    int max_distinct;
    struct event events[MAX_EVENTS];
    int n_events;
    int violations;
    char violation[256];
};

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    return f;
}

static void fake_free(struct fake *f)
{
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    free(f);
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

/* Percent-decodes n bytes of in ('+' is a space in form bodies). */
static void url_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (in[i] == '%' && i + 2 < n) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = in[i] == '+' ? ' ' : in[i];
        }
    }
    out[o] = '\0';
}

/* The value of form field / query parameter `name` in a&b=c text, decoded; 0 when absent. */
static int param(const char *text, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p;) {
        size_t l = strcspn(p, "&");
        if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            url_decode(p + nl + 1, l - nl - 1, out, cap);
            return 1;
        }
        p = p[l] ? p + l + 1 : NULL;
    }
    out[0] = '\0';
    return 0;
}

/* Credential=KEY/DATE/REGION/SERVICE/aws4_request */
static int parse_scope(const char *auth, char *key, size_t kcap, char *region, size_t rcap,
                       char *service, size_t scap)
{
    const char *p = strstr(auth, "Credential=");
    if (!p)
        return -1;
    p += 11;
    size_t n = strcspn(p, "/,");
    snprintf(key, kcap, "%.*s", (int)n, p);
    p += n;
    if (*p != '/')
        return -1;
    p += strcspn(p + 1, "/,") + 1; /* the date */
    if (*p != '/')
        return -1;
    p++;
    n = strcspn(p, "/,");
    snprintf(region, rcap, "%.*s", (int)n, p);
    p += n;
    if (*p != '/')
        return -1;
    p++;
    n = strcspn(p, "/,");
    snprintf(service, scap, "%.*s", (int)n, p);
    return 0;
}

/* The account an assumed-role key id names: "ASIA" + 12 digits + role name. */
static int key_account(const char *key, char *acct, size_t cap)
{
    if (strncmp(key, "ASIA", 4) != 0 || strlen(key) < 16 || strspn(key + 4, "0123456789") < 12)
        return 0;
    snprintf(acct, cap, "%.12s", key + 4);
    return 1;
}

static void violation(struct fake *f, struct fakehttp_resp *resp, const char *what,
                      const char *detail)
{
    pthread_mutex_lock(&f->mu);
    if (!f->violations++)
        snprintf(f->violation, sizeof f->violation, "%.60s: %.180s", what, detail);
    pthread_mutex_unlock(&f->mu);
    fakehttp_respond(resp, 400, "Content-Type: application/json\r\n",
                     "{\"__type\":\"ValidationException\",\"message\":\"unexpected request\"}");
}

static int acct_slot_locked(struct fake *f, const char *acct)
{
    for (int i = 0; i < f->n_accts; i++)
        if (strcmp(f->acct_ids[i], acct) == 0)
            return i;
    if (f->n_accts == MAX_ACCTS)
        return -1;
    snprintf(f->acct_ids[f->n_accts], sizeof f->acct_ids[0], "%s", acct);
    return f->n_accts++;
}

/* Counts a request of acct as in the handler; notes the most accounts seen at once. */
static void inflight_add(struct fake *f, const char *acct, int delta)
{
    if (!acct[0])
        return;
    pthread_mutex_lock(&f->mu);
    int i = acct_slot_locked(f, acct);
    if (i >= 0) {
        f->inflight[i] += delta;
        int distinct = 0;
        for (int j = 0; j < f->n_accts; j++)
            distinct += f->inflight[j] > 0;
        if (distinct > f->max_distinct)
            f->max_distinct = distinct;
    }
    pthread_mutex_unlock(&f->mu);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const struct fault *find_fault(const struct fake *f, enum op op, const char *acct,
                                      const char *region, const char *name)
{
    for (size_t i = 0; i < f->n_faults; i++) {
        const struct fault *x = &f->faults[i];
        if (x->op == op && (!x->account || strcmp(x->account, acct) == 0) &&
            (!x->region || strcmp(x->region, region) == 0) &&
            (!x->name || strcmp(x->name, name) == 0))
            return x;
    }
    return NULL;
}

/* An error answer in the protocol of op; message NULL: a default one. */
static void respond_error(enum op op, int status, const char *code, const char *message,
                          struct fakehttp_resp *resp)
{
    char body[1024], hdr[256], dflt[128];
    snprintf(dflt, sizeof dflt, "%s from the fake", code);
    switch (op) {
    case OP_ASSUME:
        snprintf(body, sizeof body,
                 "<ErrorResponse xmlns=\"" STS_NS "\"><Error><Type>Sender</Type><Code>%s</Code>"
                 "<Message>%s</Message></Error><RequestId>req-sts</RequestId></ErrorResponse>",
                 code,
                 message ? message
                         : "User: arn:aws:iam::" MGMT ":user/scanner is not authorized to perform: "
                           "sts:AssumeRole");
        fakehttp_respond(resp, status, "Content-Type: text/xml\r\n", body);
        break;
    case OP_REGIONS:
        snprintf(body, sizeof body,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s"
                 "</Code><Message>%s</Message>"
                 "</Error></Errors><RequestID>req-ec2</RequestID></Response>",
                 code, message ? message : "You are not authorized to perform this operation.");
        fakehttp_respond(resp, status, "Content-Type: text/xml;charset=UTF-8\r\n", body);
        break;
    case OP_LIST:
    case OP_DESCRIBE:
        snprintf(hdr, sizeof hdr,
                 "Content-Type: application/json\r\nX-Amzn-Errortype: %s\r\n"
                 "x-amzn-RequestId: req-eks\r\n",
                 code);
        snprintf(body, sizeof body, "{\"message\":\"%s\"}", message ? message : dflt);
        fakehttp_respond(resp, status, hdr, body);
        break;
    case OP_ORG:
        snprintf(body, sizeof body, "{\"__type\":\"%s\",\"Message\":\"%s\"}", code,
                 message ? message : dflt);
        fakehttp_respond(resp, status, "Content-Type: application/x-amz-json-1.1\r\n", body);
        break;
    }
}

static void answer_assume_role(struct fake *f, const char *acct, const char *role,
                               struct fakehttp_resp *resp)
{
    char exp[32], body[2048], session[48];
    pthread_mutex_lock(&f->mu);
    snprintf(session, sizeof session, "token-%s-%d", acct, f->sessions_issued++);
    if (f->expire_account && strcmp(f->expire_account, acct) == 0 && !f->first_session[0])
        snprintf(f->first_session, sizeof f->first_session, "%s", session);
    pthread_mutex_unlock(&f->mu);
    time_t t = time(NULL) + 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof body,
             "<AssumeRoleResponse xmlns=\"" STS_NS "\"><AssumeRoleResult>"
             "<AssumedRoleUser><Arn>arn:aws:sts::%s:assumed-role/%s/egressscan</Arn>"
             "<AssumedRoleId>AROA%s:egressscan</AssumedRoleId></AssumedRoleUser><Credentials>"
             "<AccessKeyId>ASIA%s%s</AccessKeyId><SecretAccessKey>secret-%s</SecretAccessKey>"
             "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
             "</AssumeRoleResult><ResponseMetadata><RequestId>req-%s</RequestId>"
             "</ResponseMetadata></AssumeRoleResponse>",
             acct, role, acct, acct, role, acct, session, exp, acct);
    fakehttp_respond(resp, 200, "Content-Type: text/xml\r\n", body);
}

static const char *const default_regions[] = {"us-east-1", "eu-west-1"};

static void answer_regions(const struct fake *f, struct fakehttp_resp *resp)
{
    const char *const *regions = f->regions ? f->regions : default_regions;
    size_t n = f->regions ? f->n_regions : 2;
    char body[4096];
    size_t off = (size_t)snprintf(body, sizeof body,
                                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                  "<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/"
                                  "2016-11-15/\"><requestId>req-regions</requestId><regionInfo>");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(regions[i]);
        int off_in = l > 0 && regions[i][l - 1] == '!';
        off += (size_t)snprintf(body + off, sizeof body - off,
                                "<item><regionName>%.*s</regionName><regionEndpoint>ec2.%.*s."
                                "amazonaws.com</regionEndpoint><optInStatus>%s</optInStatus>"
                                "</item>",
                                (int)(l - (size_t)off_in), regions[i], (int)(l - (size_t)off_in),
                                regions[i], off_in ? "not-opted-in" : "opt-in-not-required");
    }
    snprintf(body + off, sizeof body - off, "</regionInfo></DescribeRegionsResponse>");
    fakehttp_respond(resp, 200, "Content-Type: text/xml;charset=UTF-8\r\n", body);
}

static void answer_list(const struct fake *f, const char *acct, const char *region, int max,
                        const char *token, struct fakehttp_resp *resp)
{
    if (f->loop_account && strcmp(acct, f->loop_account) == 0) {
        char body[128];
        long n = token[0] == 'x' || token[0] == 'n' ? strtol(token + 1, NULL, 10) : 0;
        snprintf(body, sizeof body, "{\"clusters\":[\"loop%ld\"],\"nextToken\":\"%s%ld\"}", n,
                 f->loop_mode == 3 ? "n" : "x",
                 f->loop_mode == 1   ? 0
                 : f->loop_mode == 2 ? n % 2 + 1
                                     : n + 1);
        if (f->loop_mode == 3) /* distinct tokens, no names: only the page cap ends it */
            snprintf(body, sizeof body, "{\"clusters\":[],\"nextToken\":\"n%ld\"}", n + 1);
        fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", body);
        return;
    }
    size_t start = 0;
    if (token[0])
        start = (size_t)strtoul(token + 3, NULL, 10); /* "pg.N" */
    json_t *names = json_array();                     /* new */
    size_t seen = 0, given = 0;
    int more = 0;
    for (size_t i = 0; i < f->n_clusters; i++) {
        const struct fleet_cluster *c = &f->clusters[i];
        if (strcmp(c->account, acct) != 0 || strcmp(c->region, region) != 0)
            continue;
        if (seen++ < start)
            continue;
        if ((int)given == max) {
            more = 1;
            break;
        }
        json_array_append_new(names, json_string(c->name));
        given++;
    }
    json_t *root = json_pack("{s:o}", "clusters", names); /* new; steals names */
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "pg.%zu", start + given);
        json_object_set_new(root, "nextToken", json_string(next));
    } else {
        json_object_set_new(root, "nextToken", json_null());
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", text);
    free(text);
}

static void answer_describe(const struct fake *f, const char *acct, const char *region,
                            const char *name, struct fakehttp_resp *resp)
{
    const struct fleet_cluster *c = NULL;
    for (size_t i = 0; i < f->n_clusters && !c; i++) {
        const struct fleet_cluster *x = &f->clusters[i];
        if (strcmp(x->account, acct) == 0 && strcmp(x->region, region) == 0 &&
            strcmp(x->name, name) == 0 && !x->ghost)
            c = x;
    }
    if (!c) {
        respond_error(OP_DESCRIBE, 404, "ResourceNotFoundException", NULL, resp);
        return;
    }
    char mode[96] = "", body[2048];
    if (c->mode)
        snprintf(mode, sizeof mode, ",\"controlPlaneEgressMode\":\"%s\"", c->mode);
    snprintf(body, sizeof body,
             "{\"cluster\":{\"name\":\"%s\",\"arn\":\"arn:%s:eks:%s:%s:cluster/%s\","
             "\"createdAt\":1795703460.452,\"version\":\"1.31\",\"platformVersion\":\"eks.9\","
             "\"status\":\"ACTIVE\",\"resourcesVpcConfig\":{\"vpcId\":\"vpc-%s\","
             "\"endpointPublicAccess\":true,\"endpointPrivateAccess\":false%s},"
             "\"tags\":{\"account\":\"%s\"}}}",
             c->name, endpoint_partition(region), region, acct, c->name, acct, mode, acct);
    fakehttp_respond(resp, 200, "Content-Type: application/json\r\n", body);
}

/* Organizations: the fixed tree Root(r-t001) > Prod, accounts from f->org_accounts. */
static void answer_org(struct fake *f, const char *op, const char *parent, const char *token,
                       struct fakehttp_resp *resp)
{
    json_t *root = NULL; /* new */
    if (strcmp(op, "DescribeOrganization") == 0) {
        root = json_pack("{s:{s:s,s:s,s:s}}", "Organization", "Id", "o-sched1", "MasterAccountId",
                         MGMT, "FeatureSet", "ALL");
    } else if (strcmp(op, "ListRoots") == 0) {
        root = json_pack("{s:[{s:s,s:s}]}", "Roots", "Id", ROOT_ID, "Name", "Root");
    } else if (strcmp(op, "ListOrganizationalUnitsForParent") == 0) {
        if (strcmp(parent, ROOT_ID) == 0)
            root =
                json_pack("{s:[{s:s,s:s}]}", "OrganizationalUnits", "Id", PROD_OU, "Name", "Prod");
        else
            root = json_pack("{s:[]}", "OrganizationalUnits");
    } else if (strcmp(op, "ListAccountsForParent") == 0) {
        int page = token[0] ? atoi(token + 5) : 0; /* "page-N" */
        if (page > 0 && f->gate_account) {
            /* answered only once the first page's account is being scanned */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += GATE_TIMEOUT_S;
            pthread_mutex_lock(&f->mu);
            while (!f->gate_list_seen) {
                if (pthread_cond_timedwait(&f->cond, &f->mu, &until) != 0) {
                    f->gate_timed_out = 1;
                    break;
                }
            }
            f->gate_answered_after_list = f->gate_list_seen;
            pthread_mutex_unlock(&f->mu);
        }
        json_t *list = json_array();
        int more = 0;
        for (size_t i = 0; i < f->n_org_accounts; i++) {
            const struct org_account *a = &f->org_accounts[i];
            if (strcmp(a->parent, parent) != 0)
                continue;
            if (a->page == page)
                json_array_append_new(list,
                                      json_pack("{s:s,s:s,s:s,s:s}", "Id", a->id, "Name", a->id,
                                                "Email", "a@example.com", "Status", a->status));
            more |= a->page > page;
        }
        root = json_pack("{s:o}", "Accounts", list);
        if (more) {
            char next[32];
            snprintf(next, sizeof next, "page-%d", page + 1);
            json_object_set_new(root, "NextToken", json_string(next));
        }
    } else if (strcmp(op, "ListPolicies") == 0) {
        root = json_pack("{s:[{s:s,s:s,s:s,s:b}]}", "Policies", "Id", "p-FullAWSAccess", "Name",
                         "FullAWSAccess", "Type", "SERVICE_CONTROL_POLICY", "AwsManaged", 1);
        if (f->scp_extra)
            json_array_append_new(json_object_get(root, "Policies"),
                                  json_pack("{s:s,s:s,s:s,s:b}", "Id", "p-extra", "Name", "Extra",
                                            "Type", "SERVICE_CONTROL_POLICY", "AwsManaged", 0));
    } else if (strcmp(op, "DescribePolicy") == 0 && strcmp(parent, "p-extra") == 0) {
        root = json_pack("{s:{s:{s:s,s:s,s:b},s:s}}", "Policy", "PolicySummary", "Id", "p-extra",
                         "Name", "Extra", "AwsManaged", 0, "Content", f->scp_extra);
    } else if (strcmp(op, "DescribePolicy") == 0) {
        root = json_pack("{s:{s:{s:s,s:s,s:b},s:s}}", "Policy", "PolicySummary", "Id",
                         "p-FullAWSAccess", "Name", "FullAWSAccess", "AwsManaged", 1, "Content",
                         "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                         "\"Action\":\"*\",\"Resource\":\"*\"}]}");
    } else if (strcmp(op, "ListTargetsForPolicy") == 0) {
        if (f->full_targets_wait_list && strcmp(parent, "p-FullAWSAccess") == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += GATE_TIMEOUT_S;
            pthread_mutex_lock(&f->mu);
            while (!f->lists_seen) {
                if (pthread_cond_timedwait(&f->cond, &f->mu, &until) != 0) {
                    f->full_gate_timed_out = 1;
                    break;
                }
            }
            pthread_mutex_unlock(&f->mu);
        }
        if (f->scp_gate_regions) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += GATE_TIMEOUT_S;
            pthread_mutex_lock(&f->mu);
            while (f->regions_seen < f->scp_gate_regions) {
                if (pthread_cond_timedwait(&f->cond, &f->mu, &until) != 0) {
                    f->scp_gate_timed_out = 1;
                    break;
                }
            }
            pthread_mutex_unlock(&f->mu);
        }
        json_t *targets = json_array();
        if (strcmp(parent, "p-extra") == 0) {
            for (int i = 0; i < 3 && f->scp_extra_targets[i]; i++)
                json_array_append_new(targets,
                                      json_pack("{s:s}", "TargetId", f->scp_extra_targets[i]));
        } else {
            json_array_append_new(targets,
                                  json_pack("{s:s,s:s}", "TargetId", ROOT_ID, "Type", "ROOT"));
            if (f->full_everywhere) {
                json_array_append_new(targets, json_pack("{s:s}", "TargetId", PROD_OU));
                for (size_t i = 0; i < f->n_org_accounts; i++)
                    json_array_append_new(targets,
                                          json_pack("{s:s}", "TargetId", f->org_accounts[i].id));
            }
        }
        root = json_pack("{s:o}", "Targets", targets);
    }
    if (!root) {
        violation(f, resp, "unknown Organizations operation", op);
        return;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    fakehttp_respond(resp, 200, "Content-Type: application/x-amz-json-1.1\r\n", text);
    free(text);
}

static void record(struct fake *f, const struct event *ev)
{
    pthread_mutex_lock(&f->mu);
    if (f->n_events < MAX_EVENTS)
        f->events[f->n_events++] = *ev;
    pthread_mutex_unlock(&f->mu);
}

static void handler(void *ud, const struct fakehttp_req *req, struct fakehttp_resp *resp)
{
    struct fake *f = ud;
    char target[128] = "", auth[1024] = "", region[32] = "", service[32] = "";
    struct event ev;
    memset(&ev, 0, sizeof ev);
    header_value(req->headers, "X-Amz-Target", target, sizeof target);
    header_value(req->headers, "Authorization", auth, sizeof auth);
    if (parse_scope(auth, ev.key, sizeof ev.key, region, sizeof region, service, sizeof service) <
        0) {
        violation(f, resp, "unsigned request", req->target);
        return;
    }
    snprintf(ev.region, sizeof ev.region, "%s", region);
    header_value(req->headers, "X-Amz-Security-Token", ev.session, sizeof ev.session);
    const char *body = req->body ? req->body : "";

    if (strncmp(target, ORG_PREFIX, strlen(ORG_PREFIX)) == 0) {
        ev.op = OP_ORG;
        snprintf(ev.detail, sizeof ev.detail, "%.80s", target + strlen(ORG_PREFIX));
        if (strcmp(service, "organizations") != 0 || strcmp(region, "us-east-1") != 0) {
            violation(f, resp, "Organizations scope", auth);
            return;
        }
    } else if (strcmp(req->method, "POST") == 0 && strstr(body, "Action=AssumeRole")) {
        ev.op = OP_ASSUME;
        char arn[256], role[48] = "", ext[40];
        param(body, "RoleArn", arn, sizeof arn);
        param(body, "ExternalId", ext, sizeof ext);
        if (sscanf(arn, "arn:%15[a-z-]:iam::%12[0-9]:role/%47[A-Za-z0-9]", ev.partition, ev.account,
                   role) != 3 ||
            strcmp(service, "sts") != 0 || strcmp(ev.key, BASE_KEY) != 0) {
            violation(f, resp, "AssumeRole", arn);
            return;
        }
        snprintf(ev.detail, sizeof ev.detail, "%s|%s", role, ext);
    } else if (strcmp(req->method, "POST") == 0 && strstr(body, "Action=DescribeRegions")) {
        ev.op = OP_REGIONS;
        if (!key_account(ev.key, ev.account, sizeof ev.account) || strcmp(service, "ec2") != 0) {
            violation(f, resp, "DescribeRegions signed with", auth);
            return;
        }
    } else if (strcmp(req->method, "GET") == 0 && strncmp(req->target, "/clusters", 9) == 0) {
        if (!key_account(ev.key, ev.account, sizeof ev.account) || strcmp(service, "eks") != 0) {
            violation(f, resp, "EKS signed with", auth);
            return;
        }
        if (req->target[9] == '/') {
            ev.op = OP_DESCRIBE;
            url_decode(req->target + 10, strlen(req->target + 10), ev.detail, sizeof ev.detail);
        } else if (req->target[9] == '?') {
            ev.op = OP_LIST;
            char v[32];
            if (param(req->target + 10, "maxResults", v, sizeof v))
                ev.max_results = atoi(v);
            param(req->target + 10, "nextToken", ev.token, sizeof ev.token);
            if (ev.max_results < 1 || ev.max_results > 100) {
                violation(f, resp, "maxResults", req->target);
                return;
            }
        } else {
            violation(f, resp, "EKS path", req->target);
            return;
        }
    } else {
        violation(f, resp, "unknown request", req->target);
        return;
    }

    char org_parent[64] = "";
    if (ev.op == OP_ORG) {
        json_t *j = json_loadb(body, req->body_len, 0, NULL); /* new */
        const char *p = json_string_value(json_object_get(j, "ParentId"));
        if (!p)
            p = json_string_value(json_object_get(j, "PolicyId"));
        const char *t = json_string_value(json_object_get(j, "NextToken"));
        snprintf(org_parent, sizeof org_parent, "%s", p ? p : "");
        snprintf(ev.token, sizeof ev.token, "%s", t ? t : "");
        json_decref(j);
    }

    inflight_add(f, ev.account, 1);
    if (ev.op == OP_REGIONS) {
        pthread_mutex_lock(&f->mu);
        f->regions_seen++;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->mu);
    }
    if (ev.op == OP_LIST) {
        pthread_mutex_lock(&f->mu);
        f->lists_seen++;
        pthread_cond_broadcast(&f->cond);
        if (f->gate_account && strcmp(f->gate_account, ev.account) == 0) {
            f->gate_list_seen = 1;
            pthread_cond_broadcast(&f->cond);
        }
        int hold = f->hold_list_ms;
        pthread_mutex_unlock(&f->mu);
        if (hold)
            sleep_ms(hold);
    }
    /* Organizations faults name the ParentId where others name the account */
    const struct fault *x =
        find_fault(f, ev.op, ev.op == OP_ORG ? org_parent : ev.account, ev.region, ev.detail);
    int expired = 0;
    if ((ev.op == OP_LIST || ev.op == OP_DESCRIBE) && f->expire_account &&
        strcmp(f->expire_account, ev.account) == 0) {
        pthread_mutex_lock(&f->mu);
        expired = f->expire_cluster
                      ? ev.op == OP_DESCRIBE && strcmp(ev.detail, f->expire_cluster) == 0
                      : strcmp(ev.session, f->first_session) == 0;
        pthread_mutex_unlock(&f->mu);
    }
    if (expired) {
        respond_error(ev.op, 403, "ExpiredTokenException", NULL, resp);
    } else if (x) {
        respond_error(ev.op, x->status, x->code, f->fault_message, resp);
    } else {
        switch (ev.op) {
        case OP_ASSUME: {
            char role[64];
            snprintf(role, sizeof role, "%.*s", (int)strcspn(ev.detail, "|"), ev.detail);
            answer_assume_role(f, ev.account, role, resp);
            break;
        }
        case OP_REGIONS:
            answer_regions(f, resp);
            break;
        case OP_LIST:
            answer_list(f, ev.account, ev.region, ev.max_results, ev.token, resp);
            break;
        case OP_DESCRIBE:
            answer_describe(f, ev.account, ev.region, ev.detail, resp);
            break;
        case OP_ORG:
            answer_org(f, ev.detail, org_parent, ev.token, resp);
            break;
        }
    }
    ev.status = resp->status;
    record(f, &ev);
    inflight_add(f, ev.account, -1);
}

/* Requests seen with op and, when not NULL, account, region and detail. */
static int count(struct fake *f, enum op op, const char *acct, const char *region,
                 const char *detail)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_events; i++) {
        const struct event *e = &f->events[i];
        if (e->op == op && (!acct || strcmp(e->account, acct) == 0) &&
            (!region || strcmp(e->region, region) == 0) &&
            (!detail || strcmp(e->detail, detail) == 0))
            n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- what the scheduler reports ---- */

struct seen_account {
    char id[16], status[32], ou_path[64];
    int is_management;
};

struct seen {
    struct target_result *results[MAX_RESULTS];
    int n_results;
    int target_calls;
    int stop_at; /* on_target returns -1 on this call (1-based); 0: never */
    int calls_after_stop;
    struct seen_account accounts[MAX_ACCTS];
    int n_accounts, accounts_calls;
    char ous[8][2][32];
    int n_ous;
    char scp_id[32], scp_targets[4][32], scp_content[256];
    int n_scps, scp_n_targets, scp_aws_managed;
    char org_id[32], mgmt[16];
    int org_calls;
    struct scheduler_progress last_progress;
    int progress_calls;
    char selected[MAX_ACCTS][16]; /* on_account_selected (discover_only) */
    int n_selected;
    char done[MAX_ACCTS][16]; /* on_account_done, in order */
    int targets_at_done[MAX_ACCTS];
    int n_done;
};

static int on_target(void *ud, const struct target_result *r)
{
    struct seen *s = ud;
    s->target_calls++;
    if (s->stop_at && s->target_calls > s->stop_at)
        s->calls_after_stop++;
    if (s->n_results < MAX_RESULTS) {
        s->results[s->n_results] = target_result_copy(r);
        if (s->results[s->n_results])
            s->n_results++;
    }
    return s->stop_at && s->target_calls == s->stop_at ? -1 : 0;
}

static void on_accounts(void *ud, const struct account *a, size_t n)
{
    struct seen *s = ud;
    s->accounts_calls++;
    for (size_t i = 0; i < n && s->n_accounts < MAX_ACCTS; i++) {
        struct seen_account *x = &s->accounts[s->n_accounts++];
        snprintf(x->id, sizeof x->id, "%s", a[i].id);
        snprintf(x->status, sizeof x->status, "%s", a[i].status ? a[i].status : "");
        snprintf(x->ou_path, sizeof x->ou_path, "%s", a[i].ou_path ? a[i].ou_path : "");
        x->is_management = a[i].is_management;
    }
}

static void on_org_unit(void *ud, const struct org_unit *ou)
{
    struct seen *s = ud;
    if (s->n_ous < 8) {
        snprintf(s->ous[s->n_ous][0], 32, "%s", ou->id);
        snprintf(s->ous[s->n_ous][1], 32, "%s", ou->parent_id ? ou->parent_id : "-");
        s->n_ous++;
    }
}

static void on_scp(void *ud, const struct scp_policy *p)
{
    struct seen *s = ud;
    s->n_scps++;
    snprintf(s->scp_id, sizeof s->scp_id, "%s", p->id);
    snprintf(s->scp_content, sizeof s->scp_content, "%s", p->content);
    s->scp_aws_managed = p->aws_managed;
    s->scp_n_targets = (int)p->n_targets;
    for (size_t i = 0; i < p->n_targets && i < 4; i++)
        snprintf(s->scp_targets[i], sizeof s->scp_targets[i], "%s", p->targets[i]);
}

static void on_organization(void *ud, const char *org_id, const char *mgmt)
{
    struct seen *s = ud;
    s->org_calls++;
    snprintf(s->org_id, sizeof s->org_id, "%s", org_id ? org_id : "");
    snprintf(s->mgmt, sizeof s->mgmt, "%s", mgmt ? mgmt : "");
}

static void on_progress(void *ud, const struct scheduler_progress *p)
{
    struct seen *s = ud;
    s->progress_calls++;
    s->last_progress = *p;
}

static int results_of(const struct seen *s, const char *acct);

static void on_account_selected(void *ud, const char *id)
{
    struct seen *s = ud;
    if (s->n_selected < MAX_ACCTS)
        snprintf(s->selected[s->n_selected++], 16, "%s", id);
}

static void on_account_done(void *ud, const char *id)
{
    struct seen *s = ud;
    if (s->n_done < MAX_ACCTS) {
        snprintf(s->done[s->n_done], 16, "%s", id);
        s->targets_at_done[s->n_done++] = results_of(s, id);
    }
}

static void seen_free(struct seen *s)
{
    for (int i = 0; i < s->n_results; i++)
        free(s->results[i]);
    s->n_results = 0;
}

/* The one result for account x region; fails when there is none or more than one. */
static const struct target_result *result_for(const struct seen *s, const char *acct,
                                              const char *region)
{
    const struct target_result *found = NULL;
    for (int i = 0; i < s->n_results; i++) {
        const struct target_result *r = s->results[i];
        if (strcmp(r->account_id, acct) == 0 && strcmp(r->region, region) == 0) {
            if (found)
                fail_msg("two results for %s %s", acct, region);
            found = r;
        }
    }
    if (!found)
        fail_msg("no result for %s %s", acct, region);
    return found;
}

static int results_of(const struct seen *s, const char *acct)
{
    int n = 0;
    for (int i = 0; i < s->n_results; i++)
        n += strcmp(s->results[i]->account_id, acct) == 0;
    return n;
}

static void expect_ok(const struct target_result *r, size_t n_clusters)
{
    if (r->status != TARGET_OK)
        fail_msg("%s %s: %s (%s: %s)", r->account_id, r->region, target_status_name(r->status),
                 r->error_code ? r->error_code : "-", r->error_message ? r->error_message : "-");
    assert_null(r->error_code);
    assert_int_equal(r->n_clusters, n_clusters);
}

/* The cluster named name in r, with its mode (NULL: absent) and an ARN naming r's target. */
static void expect_cluster(const struct target_result *r, const char *name, const char *mode)
{
    for (size_t i = 0; i < r->n_clusters; i++) {
        const struct cluster *c = &r->clusters[i];
        if (strcmp(c->name, name) != 0)
            continue;
        if (mode)
            assert_string_equal(c->egress_mode, mode);
        else
            assert_null(c->egress_mode);
        char arn[160];
        snprintf(arn, sizeof arn, "arn:%s:eks:%s:%s:cluster/%s", endpoint_partition(r->region),
                 r->region, r->account_id, name);
        assert_string_equal(c->arn, arn);
        assert_string_equal(c->status, "ACTIVE");
        assert_non_null(c->raw_json);
        return;
    }
    fail_msg("cluster %s not in %s %s", name, r->account_id, r->region);
}

static void expect_failure(const struct seen *s, const char *acct, const char *region,
                           enum target_status status, const char *code)
{
    const struct target_result *r = result_for(s, acct, region);
    if (r->status != status)
        fail_msg("%s %s: %s, expected %s (%s)", acct, region, target_status_name(r->status),
                 target_status_name(status), r->error_code ? r->error_code : "-");
    assert_non_null(r->error_code);
    assert_string_equal(r->error_code, code);
    assert_int_equal(r->n_clusters, 0);
    assert_non_null(r->error_message);
    assert_null(strstr(r->error_message, "secret-")); /* no secret in a message */
}

/* ---- running a scan ---- */

static void env_setup(const char *max_attempts)
{
    const char *unset[] = {"AWS_PROFILE",
                           "AWS_SESSION_TOKEN",
                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ROLE_ARN",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                           "AWS_ENDPOINT_URL_EKS",
                           "AWS_ENDPOINT_URL_STS",
                           "AWS_ENDPOINT_URL_EC2",
                           "AWS_ENDPOINT_URL_ORGANIZATIONS",
                           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                           "AWS_RETRY_MODE",
                           "AWS_CA_BUNDLE",
                           "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_CONFIG_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "tests/data/creds/does-not-exist", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ACCESS_KEY_ID", BASE_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", BASE_SECRET, 1);
    setenv("AWS_MAX_ATTEMPTS", max_attempts, 1);
}

/* Runs one scan against f with opts; collects into s. Returns scheduler_run's result. */
static int run_scan(struct fake *f, const struct scheduler_options *opts, const char *max_attempts,
                    struct seen *s, struct scheduler_result *res, struct err *err)
{
    struct fakehttp *srv = fakehttp_start(handler, f, NULL, NULL);
    assert_non_null(srv);
    env_setup(max_attempts);
    setenv("AWS_ENDPOINT_URL", fakehttp_url(srv), 1);

    struct err e;
    err_clear(&e);
    struct http_engine_options o;
    assert_int_equal(http_engine_options_init(&o, &e), 0);
    assert_int_equal(o.max_attempts, atoi(max_attempts));
    struct http_engine *engine = http_engine_new(&o, &e);
    assert_non_null(engine);
    struct creds_chain *chain = creds_chain_new(NULL, &e);
    if (!chain)
        fail_msg("creds_chain_new: %s: %s", e.code, e.message);

    struct scheduler_callbacks cb = {.on_organization = on_organization,
                                     .on_accounts = on_accounts,
                                     .on_org_unit = on_org_unit,
                                     .on_scp = on_scp,
                                     .on_target = on_target,
                                     .on_progress = on_progress,
                                     .on_account_selected = on_account_selected,
                                     .on_account_done = on_account_done,
                                     .ud = s};
    err_clear(err);
    int rc = scheduler_run(engine, chain, opts, &cb, res, err);

    creds_chain_free(chain);
    http_engine_free(engine);
    fakehttp_stop(srv);
    unsetenv("AWS_ENDPOINT_URL");
    if (f->violations)
        fail_msg("the fake saw %d unexpected request(s); first: %s", f->violations, f->violation);
    return rc;
}

/* ---- per test: the fake and what the scheduler reported (freed even when a test fails) ---- */

struct fixture {
    struct fake *f;
    struct seen s;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->f = fake_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    seen_free(&fx->s);
    fake_free(fx->f);
    free(fx);
    unsetenv("AWS_ENDPOINT_URL");
    return 0;
}

/* ---- 1. a fixed account list, explicit regions ---- */

#define A1 "111111111111"
#define A2 "222222222222"
#define A3 "333333333333"

static const struct fleet_cluster fleet1[] = {
    {A1, "us-east-1", "alpha", "CUSTOMER_ROUTED", 0},
    {A1, "us-east-1", "bravo", "AWS_MANAGED", 0},
    {A1, "us-east-1", "charlie", NULL, 0},
    {A1, "us-east-1", "delta", "CUSTOMER_ISOLATED", 0},
    {A1, "us-east-1", "echo", "AWS_MANAGED", 0},
    {A2, "us-east-1", "foxtrot", "CUSTOMER_ROUTED", 0},
    {A2, "eu-west-1", "golf", "AWS_MANAGED", 0},
    {A2, "eu-west-1", "hotel", NULL, 0},
    /* an excluded account: never scanned */
    {A3, "us-east-1", "india", "AWS_MANAGED", 0},
};

static void test_fixed_accounts(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    const char *accounts[] = {A1, A2, A3};
    const char *exclude[] = {A3};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {.accounts = accounts,
                                  .n_accounts = 3,
                                  .exclude_accounts = exclude,
                                  .n_exclude = 1,
                                  .regions = regions,
                                  .n_regions = 2,
                                  .page_size = 2,
                                  .as_of = 1800000000.0};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);

    assert_int_equal(s->n_results, 4);
    assert_int_equal(s->target_calls, 4);
    const struct target_result *r = result_for(s, A1, "us-east-1");
    expect_ok(r, 5);
    expect_cluster(r, "alpha", "CUSTOMER_ROUTED");
    expect_cluster(r, "bravo", "AWS_MANAGED");
    expect_cluster(r, "charlie", NULL);
    expect_cluster(r, "delta", "CUSTOMER_ISOLATED");
    expect_cluster(r, "echo", "AWS_MANAGED");
    assert_true(r->scanned_at >= 1800000000.0 && r->scanned_at < 1800000000.0 + 60);
    expect_ok(result_for(s, A1, "eu-west-1"), 0);
    r = result_for(s, A2, "us-east-1");
    expect_ok(r, 1);
    expect_cluster(r, "foxtrot", "CUSTOMER_ROUTED");
    r = result_for(s, A2, "eu-west-1");
    expect_ok(r, 2);
    expect_cluster(r, "golf", "AWS_MANAGED");
    expect_cluster(r, "hotel", NULL);
    assert_int_equal(results_of(s, A3), 0);

    /* 5 clusters at 2 a page: three pages, each asked once with maxResults=2 */
    assert_int_equal(count(f, OP_LIST, A1, "us-east-1", NULL), 3);
    for (int i = 0; i < f->n_events; i++)
        if (f->events[i].op == OP_LIST)
            assert_int_equal(f->events[i].max_results, 2);
    assert_int_equal(count(f, OP_LIST, A1, "eu-west-1", NULL), 1);
    assert_int_equal(count(f, OP_DESCRIBE, A1, "us-east-1", NULL), 5);
    assert_int_equal(count(f, OP_DESCRIBE, A1, "us-east-1", "charlie"), 1);
    /* one AssumeRole per account (cached across its regions), with the default role */
    assert_int_equal(count(f, OP_ASSUME, A1, NULL, "EgressScanReadOnly|"), 1);
    assert_int_equal(count(f, OP_ASSUME, A2, NULL, "EgressScanReadOnly|"), 1);
    assert_int_equal(count(f, OP_ASSUME, A3, NULL, NULL), 0);
    assert_int_equal(count(f, OP_LIST, A3, NULL, NULL), 0);
    /* regions were given: no DescribeRegions; a fixed list: no Organizations */
    assert_int_equal(count(f, OP_REGIONS, NULL, NULL, NULL), 0);
    assert_int_equal(count(f, OP_ORG, NULL, NULL, NULL), 0);

    assert_int_equal(res.scps_ok, 0);
    assert_int_equal(res.scps_state, ORG_SCPS_NOT_READ); /* by design: no Organizations call */
    assert_int_equal(res.stopped, 0);
    assert_int_equal(res.progress.accounts_total, 2);
    assert_int_equal(res.progress.accounts_done, 2);
    assert_int_equal(res.progress.targets_done, 4);
    assert_int_equal(res.progress.targets_total, 4); /* known once all are */
    assert_int_equal(res.progress.targets_failed, 0);
    assert_int_equal(res.progress.clusters, 8);
    /* the last progress report is the final state */
    assert_true(s->progress_calls >= 1);
    assert_int_equal(s->last_progress.accounts_done, 2);
    assert_int_equal(s->last_progress.targets_done, 4);
    assert_int_equal(s->last_progress.targets_total, 4);
    assert_int_equal(s->last_progress.clusters, 8);
    /* the fixed list is recorded as accounts (the excluded one left out) */
    assert_int_equal(s->n_accounts, 2);
    assert_int_equal(s->org_calls, 0);
}

/* ---- 2. Organizations discovery ---- */

#define B1 "100000000001"
#define B2 "100000000002"
#define B3 "100000000003"
#define B4 "100000000004"
#define B5 "100000000005"

static const struct org_account org2[] = {
    {MGMT, "ACTIVE", ROOT_ID, 0}, {B1, "ACTIVE", ROOT_ID, 0}, {B2, "SUSPENDED", ROOT_ID, 0},
    {B3, "ACTIVE", ROOT_ID, 1},   {B4, "ACTIVE", ROOT_ID, 1}, /* excluded */
    {B5, "ACTIVE", PROD_OU, 0},
};

static const struct fleet_cluster fleet2[] = {
    {B1, "us-west-2", "b1-one", "CUSTOMER_ROUTED", 0},
    {B2, "us-west-2", "b2-suspended", "AWS_MANAGED", 0},
    {B4, "us-west-2", "b4-excluded", "AWS_MANAGED", 0},
    {B5, "us-west-2", "b5-prod", "AWS_MANAGED", 0},
    {MGMT, "us-west-2", "mgmt-one", NULL, 0},
};

static const struct seen_account *seen_account(const struct seen *s, const char *id)
{
    for (int i = 0; i < s->n_accounts; i++)
        if (strcmp(s->accounts[i].id, id) == 0)
            return &s->accounts[i];
    fail_msg("account %s not recorded", id);
    return NULL;
}

static void test_organizations_discovery(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet2;
    f->n_clusters = sizeof fleet2 / sizeof fleet2[0];
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    const char *exclude[] = {B4};
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.exclude_accounts = exclude,
                                  .n_exclude = 1,
                                  .regions = regions,
                                  .n_regions = 1,
                                  .role_name = "AuditRole",
                                  .external_id = "ext42",
                                  .org_role_arn = "arn:aws:iam::" MGMT ":role/OrgReader"};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);

    /* every account recorded, suspended and excluded ones too */
    assert_int_equal(s->n_accounts, 6);
    assert_string_equal(seen_account(s, B2)->status, "SUSPENDED");
    assert_true(seen_account(s, MGMT)->is_management);
    assert_string_equal(seen_account(s, B5)->ou_path, "Root/Prod");
    seen_account(s, B4);
    /* targets only for active, not excluded accounts; the suspended one has one account-level
     * result that says so (and is no failure) */
    assert_int_equal(s->n_results, 5);
    const struct target_result *susp = result_for(s, B2, "*");
    assert_int_equal(susp->status, TARGET_SUSPENDED);
    assert_null(susp->error_code);
    assert_string_equal(susp->error_message, "account status SUSPENDED");
    assert_int_equal(susp->n_clusters, 0);
    expect_ok(result_for(s, MGMT, "us-west-2"), 1);
    expect_cluster(result_for(s, MGMT, "us-west-2"), "mgmt-one", NULL);
    expect_ok(result_for(s, B1, "us-west-2"), 1);
    expect_cluster(result_for(s, B1, "us-west-2"), "b1-one", "CUSTOMER_ROUTED");
    expect_ok(result_for(s, B3, "us-west-2"), 0); /* from the second accounts page */
    expect_ok(result_for(s, B5, "us-west-2"), 1);
    assert_int_equal(results_of(s, B2), 1);
    assert_int_equal(results_of(s, B4), 0);
    assert_int_equal(count(f, OP_ASSUME, B2, NULL, NULL), 0);
    assert_int_equal(count(f, OP_ASSUME, B4, NULL, NULL), 0);
    /* member roles: the configured name and external id */
    assert_int_equal(count(f, OP_ASSUME, B1, NULL, "AuditRole|ext42"), 1);
    assert_int_equal(count(f, OP_ASSUME, MGMT, NULL, "AuditRole|ext42"), 1);
    /* Organizations was read with the org role's credentials, never the base ones */
    assert_int_equal(count(f, OP_ASSUME, MGMT, NULL, "OrgReader|ext42"), 1);
    int org_requests = 0;
    for (int i = 0; i < f->n_events; i++) {
        if (f->events[i].op != OP_ORG)
            continue;
        org_requests++;
        assert_string_equal(f->events[i].key, "ASIA" MGMT "OrgReader");
    }
    assert_true(org_requests >= 8);

    assert_int_equal(s->org_calls, 1);
    assert_string_equal(s->org_id, "o-sched1");
    assert_string_equal(s->mgmt, MGMT);
    assert_int_equal(s->n_ous, 2);
    assert_string_equal(s->ous[0][0], ROOT_ID);
    assert_string_equal(s->ous[0][1], "-");
    assert_string_equal(s->ous[1][0], PROD_OU);
    assert_string_equal(s->ous[1][1], ROOT_ID);
    assert_int_equal(s->n_scps, 1);
    assert_string_equal(s->scp_id, "p-FullAWSAccess");
    assert_int_equal(s->scp_aws_managed, 1);
    assert_int_equal(s->scp_n_targets, 1);
    assert_string_equal(s->scp_targets[0], ROOT_ID);
    assert_non_null(strstr(s->scp_content, "\"Effect\":\"Allow\""));

    assert_int_equal(res.scps_ok, 1);
    assert_int_equal(res.scps_state, ORG_SCPS_READ);
    assert_int_equal(res.progress.accounts_total, 4);
    assert_int_equal(res.progress.accounts_done, 4);
    assert_int_equal(res.progress.targets_done, 5);
    assert_int_equal(res.progress.targets_total, 5); /* known once all are */
    assert_int_equal(res.progress.targets_failed, 0);
    assert_int_equal(res.progress.clusters, 3);
}

static void test_organizations_unreachable(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    const struct fault faults[] = {
        {OP_ORG, NULL, NULL, "DescribeOrganization", 400, "AWSOrganizationsNotInUseException"}};
    f->faults = faults;
    f->n_faults = 1;
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.regions = regions, .n_regions = 1};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    assert_int_equal(run_scan(f, &o, "1", s, &res, &e), -1);
    assert_string_equal(e.code, "AWSOrganizationsNotInUseException");
    assert_int_equal(s->target_calls, 0);
    assert_int_equal(count(f, OP_ASSUME, NULL, NULL, NULL), 0);
    assert_int_equal(res.scps_ok, 0);
    assert_int_equal(res.scps_state, ORG_SCPS_FAILED);
}

static void test_discovery_fails_midway(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet2;
    f->n_clusters = sizeof fleet2 / sizeof fleet2[0];
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    const struct fault faults[] = {
        {OP_ORG, PROD_OU, NULL, "ListAccountsForParent", 400, "TooManyAccountsHereException"}};
    f->faults = faults;
    f->n_faults = 1;
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.regions = regions, .n_regions = 1};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    /* the fleet list is incomplete: the scan did not run as asked */
    assert_int_equal(run_scan(f, &o, "1", s, &res, &e), -1);
    assert_string_equal(e.code, "TooManyAccountsHereException");
    assert_non_null(strstr(e.message, "Organizations"));
    /* accounts of the root may have been started (and then finished); Prod's never were */
    assert_int_equal(results_of(s, B5), 0);
    assert_int_equal(count(f, OP_ASSUME, B5, NULL, NULL), 0);
    assert_true(count(f, OP_ORG, NULL, NULL, "ListAccountsForParent") >= 2);
    for (int i = 0; i < s->n_results; i++) {
        if (strcmp(s->results[i]->account_id, B2) == 0)
            assert_int_equal(s->results[i]->status, TARGET_SUSPENDED);
        else
            expect_ok(s->results[i], strcmp(s->results[i]->account_id, B3) == 0 ? 0 : 1);
    }
    assert_int_equal(res.scps_ok, 0);
    assert_int_equal(res.scps_state, ORG_SCPS_FAILED);
}

static void test_no_credentials(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    struct fakehttp *srv = fakehttp_start(handler, f, NULL, NULL);
    assert_non_null(srv);
    env_setup("1");
    setenv("AWS_ENDPOINT_URL", fakehttp_url(srv), 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    struct err e;
    struct http_engine_options ho;
    assert_int_equal(http_engine_options_init(&ho, &e), 0);
    struct http_engine *engine = http_engine_new(&ho, &e);
    assert_non_null(engine);
    struct creds_chain *chain = creds_chain_new(NULL, &e);
    assert_non_null(chain);
    const char *accounts[] = {A1};
    const char *regions[] = {"us-east-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 1, .regions = regions, .n_regions = 1};
    struct seen *s = &fx->s;
    struct scheduler_callbacks cb = {.on_target = on_target, .ud = s};
    struct scheduler_result res;
    err_clear(&e);
    assert_int_equal(scheduler_run(engine, chain, &o, &cb, &res, &e), -1);
    assert_string_equal(e.code, ERR_NO_CREDS);
    assert_int_equal(s->target_calls, 0);
    creds_chain_free(chain);
    http_engine_free(engine);
    fakehttp_stop(srv);
    unsetenv("AWS_ENDPOINT_URL");
    assert_int_equal(f->n_events, 0);
}

/* ---- 3. discovery streams ---- */

static const struct org_account org3[] = {
    {B1, "ACTIVE", ROOT_ID, 0},
    {B3, "ACTIVE", ROOT_ID, 1},
};

static void test_discovery_streams(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet2;
    f->n_clusters = sizeof fleet2 / sizeof fleet2[0];
    f->org_accounts = org3;
    f->n_org_accounts = 2;
    f->gate_account = B1; /* page 2 waits for a ListClusters of B1 (page 1) */
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.regions = regions, .n_regions = 1};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_false(f->gate_timed_out);
    assert_true(f->gate_answered_after_list);
    /* the page was asked for (and held); the scan of page 1 did not wait for it */
    int page2 = 0;
    for (int i = 0; i < f->n_events; i++)
        page2 += f->events[i].op == OP_ORG &&
                 strcmp(f->events[i].detail, "ListAccountsForParent") == 0 &&
                 strcmp(f->events[i].token, "page-1") == 0;
    assert_int_equal(page2, 1);
    assert_int_equal(s->n_results, 2);
    expect_ok(result_for(s, B1, "us-west-2"), 1);
    expect_ok(result_for(s, B3, "us-west-2"), 0);
    assert_int_equal(res.progress.accounts_total, 2);
}

/* ---- 4. failures become coverage statuses ---- */

#define C_DENIED "200000000001"
#define C_NOREGIONS "200000000002"
#define C_LISTDENIED "200000000003"
#define C_DISABLED "200000000004"
#define C_THROTTLED "200000000005"
#define C_GHOST "200000000006"
#define C_BROKEN "200000000007"

static const struct fleet_cluster fleet4[] = {
    {C_LISTDENIED, "us-east-1", "ld-one", "AWS_MANAGED", 0},
    {C_LISTDENIED, "eu-west-1", "ld-hidden", "AWS_MANAGED", 0},
    {C_DISABLED, "us-east-1", "dis-one", "CUSTOMER_ROUTED", 0},
    {C_THROTTLED, "eu-west-1", "thr-one", NULL, 0},
    {C_GHOST, "us-east-1", "kept-one", "AWS_MANAGED", 0},
    {C_GHOST, "us-east-1", "ghost", "AWS_MANAGED", 1},
    {C_GHOST, "us-east-1", "kept-two", "CUSTOMER_ISOLATED", 0},
    {C_BROKEN, "us-east-1", "fine", "AWS_MANAGED", 0},
    {C_BROKEN, "us-east-1", "broken", "AWS_MANAGED", 0},
    {C_BROKEN, "eu-west-1", "other", "AWS_MANAGED", 0},
};

static const struct fault faults4[] = {
    {OP_ASSUME, C_DENIED, NULL, NULL, 403, "AccessDenied"},
    {OP_REGIONS, C_NOREGIONS, NULL, NULL, 403, "UnauthorizedOperation"},
    {OP_LIST, C_LISTDENIED, "eu-west-1", NULL, 403, "AccessDeniedException"},
    {OP_LIST, C_DISABLED, "eu-west-1", NULL, 403, "UnrecognizedClientException"},
    {OP_LIST, C_THROTTLED, "us-east-1", NULL, 429, "ThrottlingException"},
    {OP_DESCRIBE, C_BROKEN, "us-east-1", "broken", 500, "ServerException"},
};

static void test_failures_map_to_statuses(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet4;
    f->n_clusters = sizeof fleet4 / sizeof fleet4[0];
    f->faults = faults4;
    f->n_faults = sizeof faults4 / sizeof faults4[0];
    const char *accounts[] = {C_DENIED,    C_NOREGIONS, C_LISTDENIED, C_DISABLED,
                              C_THROTTLED, C_GHOST,     C_BROKEN};
    struct scheduler_options o = {.accounts = accounts, .n_accounts = 7}; /* regions: enabled */
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "2", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);

    /* account-level failures: one result with region "*" and nothing else */
    expect_failure(s, C_DENIED, "*", TARGET_ASSUME_ROLE_DENIED, "AccessDenied");
    assert_int_equal(results_of(s, C_DENIED), 1);
    assert_int_equal(count(f, OP_ASSUME, C_DENIED, NULL, NULL), 1); /* 403 is not retried */
    assert_int_equal(count(f, OP_REGIONS, C_DENIED, NULL, NULL), 0);
    expect_failure(s, C_NOREGIONS, "*", TARGET_ACCESS_DENIED, "UnauthorizedOperation");
    assert_int_equal(results_of(s, C_NOREGIONS), 1);
    assert_int_equal(count(f, OP_LIST, C_NOREGIONS, NULL, NULL), 0);

    /* region-level failures leave the account's other regions ok */
    expect_failure(s, C_LISTDENIED, "eu-west-1", TARGET_ACCESS_DENIED, "AccessDeniedException");
    expect_ok(result_for(s, C_LISTDENIED, "us-east-1"), 1);
    expect_failure(s, C_DISABLED, "eu-west-1", TARGET_REGION_DISABLED,
                   "UnrecognizedClientException");
    expect_ok(result_for(s, C_DISABLED, "us-east-1"), 1);
    expect_failure(s, C_THROTTLED, "us-east-1", TARGET_THROTTLED, "ThrottlingException");
    assert_int_equal(count(f, OP_LIST, C_THROTTLED, "us-east-1", NULL), 2); /* both attempts */
    expect_ok(result_for(s, C_THROTTLED, "eu-west-1"), 1);
    expect_cluster(result_for(s, C_THROTTLED, "eu-west-1"), "thr-one", NULL);

    /* a cluster gone between ListClusters and DescribeCluster is simply not there */
    const struct target_result *r = result_for(s, C_GHOST, "us-east-1");
    expect_ok(r, 2);
    expect_cluster(r, "kept-one", "AWS_MANAGED");
    expect_cluster(r, "kept-two", "CUSTOMER_ISOLATED");
    assert_int_equal(count(f, OP_DESCRIBE, C_GHOST, "us-east-1", "ghost"), 1);
    expect_ok(result_for(s, C_GHOST, "eu-west-1"), 0);

    /* any other DescribeCluster failure fails the target whole: no partial cluster list */
    expect_failure(s, C_BROKEN, "us-east-1", TARGET_ERROR, "ServerException");
    assert_int_equal(count(f, OP_DESCRIBE, C_BROKEN, "us-east-1", "fine"), 1);
    expect_ok(result_for(s, C_BROKEN, "eu-west-1"), 1);

    assert_int_equal(s->n_results, 2 + 2 * 5);
    assert_int_equal(res.progress.accounts_done, 7);
    assert_int_equal(res.progress.targets_done, 12);
    assert_int_equal(res.progress.targets_total, 12); /* known once all are */
    assert_int_equal(res.progress.targets_failed, 6);
}

static void expect_status(const char *stage, const char *code, long http_status,
                          enum target_status want)
{
    struct err e;
    err_clear(&e);
    snprintf(e.code, sizeof e.code, "%s", code);
    e.http_status = http_status;
    enum target_status got = scheduler_status_for(stage, &e);
    if (got != want)
        fail_msg("(%s, %s, %ld): %s, expected %s", stage, code, http_status,
                 target_status_name(got), target_status_name(want));
}

static void test_status_for(void **state)
{
    (void)state;
    expect_status("assume_role", "AccessDenied", 403, TARGET_ASSUME_ROLE_DENIED);
    expect_status("assume_role", "ThrottlingException", 400, TARGET_THROTTLED);
    expect_status("assume_role", "Throttling", 400, TARGET_THROTTLED);
    expect_status("assume_role", "InternalFailure", 500, TARGET_ERROR);
    expect_status("assume_role", "ConnectionError", 0, TARGET_ERROR);
    expect_status("regions", "UnauthorizedOperation", 403, TARGET_ACCESS_DENIED);
    expect_status("regions", "RequestLimitExceeded", 503, TARGET_THROTTLED);
    expect_status("regions", "MalformedResponse", 200, TARGET_ERROR);
    expect_status("clusters", "AccessDeniedException", 403, TARGET_ACCESS_DENIED);
    expect_status("clusters", "UnrecognizedClientException", 403, TARGET_REGION_DISABLED);
    expect_status("clusters", "InvalidClientTokenId", 403, TARGET_REGION_DISABLED);
    expect_status("clusters", "OptInRequired", 403, TARGET_REGION_DISABLED);
    expect_status("clusters", "ThrottlingException", 429, TARGET_THROTTLED);
    expect_status("clusters", "HTTP429", 429, TARGET_THROTTLED); /* code from the status */
    expect_status("clusters", "ServerException", 500, TARGET_ERROR);
    expect_status("clusters", "ResourceNotFoundException", 404, TARGET_ERROR);
    expect_status("clusters", "RequestTimeout", 0, TARGET_ERROR);
    assert_int_equal(scheduler_status_for("clusters", NULL), TARGET_ERROR);
    /* an SCP refusal, said in the message, at any stage */
    static const char *const scp_msgs[] = {
        ("User: arn:aws:sts::111111111111:assumed-role/EgressScanReadOnly/egressscan is not "
         "authorized to perform: eks:ListClusters on resource: arn:aws:eks:ap-south-1:"
         "111111111111:cluster/* with an explicit deny in a service control policy"),
        "... with an explicit deny in a Service Control Policy: arn:aws:organizations::...",
        ("User: x is not authorized to perform: sts:AssumeRole because no service control policy "
         "allows the sts:AssumeRole action")};
    static const struct {
        const char *stage, *code;
        enum target_status want;
    } scp_cases[] = {
        {"clusters", "AccessDeniedException", TARGET_SCP_DENIED},
        {"regions", "UnauthorizedOperation", TARGET_SCP_DENIED},
        {"assume_role", "AccessDenied", TARGET_SCP_DENIED},
        {"clusters", "ServerException", TARGET_ERROR},         /* not a refusal */
        {"clusters", "ThrottlingException", TARGET_THROTTLED}, /* not a refusal */
    };
    for (size_t i = 0; i < sizeof scp_cases / sizeof scp_cases[0]; i++) {
        for (size_t m = 0; m < sizeof scp_msgs / sizeof scp_msgs[0]; m++) {
            struct err e;
            err_clear(&e);
            snprintf(e.code, sizeof e.code, "%s", scp_cases[i].code);
            snprintf(e.message, sizeof e.message, "%s", scp_msgs[m]);
            e.http_status = 400;
            enum target_status got = scheduler_status_for(scp_cases[i].stage, &e);
            if (got != scp_cases[i].want)
                fail_msg("(%s, %s, \"%s\"): %s", scp_cases[i].stage, scp_cases[i].code, scp_msgs[m],
                         target_status_name(got));
        }
    }
    /* a denial that names no SCP stays what it was */
    struct err plain;
    err_clear(&plain);
    snprintf(plain.code, sizeof plain.code, "AccessDeniedException");
    snprintf(plain.message, sizeof plain.message,
             "User: x is not authorized to perform: eks:ListClusters because no identity-based "
             "policy allows the eks:ListClusters action");
    assert_int_equal(scheduler_status_for("clusters", &plain), TARGET_ACCESS_DENIED);
    assert_int_equal(scheduler_status_for("assume_role", &plain), TARGET_ASSUME_ROLE_DENIED);
    struct err none;
    err_clear(&none);
    assert_int_equal(scheduler_status_for("clusters", &none), TARGET_ERROR);
}

/* ---- 5. regions of other partitions ---- */

static void test_other_partitions_skipped(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    static const struct fleet_cluster fleet[] = {
        {A1, "us-east-1", "east", "AWS_MANAGED", 0},
        {A1, "ap-south-1", "south", "CUSTOMER_ROUTED", 0},
        {A1, "cn-north-1", "china", "AWS_MANAGED", 0},
        {A1, "us-gov-west-1", "gov", "AWS_MANAGED", 0},
    };
    const char *regions[] = {"cn-north-1", "us-east-1", "us-gov-west-1", "ap-south-1",
                             "ap-east-1!"};
    f->clusters = fleet;
    f->n_clusters = 4;
    f->regions = regions;
    f->n_regions = 5;
    const char *accounts[] = {A1};
    struct scheduler_options o = {.accounts = accounts, .n_accounts = 1};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(s->n_results, 2);
    expect_ok(result_for(s, A1, "us-east-1"), 1);
    expect_ok(result_for(s, A1, "ap-south-1"), 1);
    expect_cluster(result_for(s, A1, "ap-south-1"), "south", "CUSTOMER_ROUTED");
    /* DescribeRegions in the home region; nothing sent to the other partitions' regions */
    assert_int_equal(count(f, OP_REGIONS, A1, "us-east-1", NULL), 1);
    assert_int_equal(count(f, OP_LIST, NULL, "cn-north-1", NULL), 0);
    assert_int_equal(count(f, OP_LIST, NULL, "us-gov-west-1", NULL), 0);
    assert_int_equal(count(f, OP_LIST, NULL, "ap-east-1", NULL), 0); /* not opted in */
    assert_int_equal(res.progress.targets_done, 2);
    assert_int_equal(res.progress.targets_total, 2); /* known once all are */
}

/* ---- 6. on_target asks to stop ---- */

static const char *const fleet6_accounts[] = {"300000000001", "300000000002", "300000000003",
                                              "300000000004", "300000000005", "300000000006"};

static void test_stop_from_on_target(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    struct fleet_cluster fleet[12];
    for (int i = 0; i < 6; i++) {
        fleet[2 * i] = (struct fleet_cluster){fleet6_accounts[i], "us-east-1", "a", NULL, 0};
        fleet[2 * i + 1] = (struct fleet_cluster){fleet6_accounts[i], "eu-west-1", "b", NULL, 0};
    }
    f->clusters = fleet;
    f->n_clusters = 12;
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {.accounts = fleet6_accounts,
                                  .n_accounts = 6,
                                  .regions = regions,
                                  .n_regions = 2,
                                  .max_active_accounts = 1};
    struct seen *s = &fx->s;
    s->stop_at = 1;
    struct scheduler_result res;
    struct err e;
    assert_int_equal(run_scan(f, &o, "1", s, &res, &e), -1);
    assert_true(res.stopped);
    assert_true(err_isset(&e));
    /* the call that said stop was the last one */
    assert_int_equal(s->target_calls, 1);
    assert_int_equal(s->calls_after_stop, 0);
    /* nothing new was started: with one account at a time, only the first was assumed */
    assert_int_equal(count(f, OP_ASSUME, NULL, NULL, NULL), 1);
}

/* A stop ends Organizations discovery too: the rest of the fleet is not listed only to be
 * dropped. Twelve accounts, one per ListAccountsForParent page; the later pages are answered only
 * once the first account is being scanned, and its first target asks to stop. */
static const struct org_account org_paged[] = {
    {"400000000001", "ACTIVE", ROOT_ID, 0},  {"400000000002", "ACTIVE", ROOT_ID, 1},
    {"400000000003", "ACTIVE", ROOT_ID, 2},  {"400000000004", "ACTIVE", ROOT_ID, 3},
    {"400000000005", "ACTIVE", ROOT_ID, 4},  {"400000000006", "ACTIVE", ROOT_ID, 5},
    {"400000000007", "ACTIVE", ROOT_ID, 6},  {"400000000008", "ACTIVE", ROOT_ID, 7},
    {"400000000009", "ACTIVE", ROOT_ID, 8},  {"400000000010", "ACTIVE", ROOT_ID, 9},
    {"400000000011", "ACTIVE", ROOT_ID, 10}, {"400000000012", "ACTIVE", ROOT_ID, 11},
};

static void test_stop_ends_discovery(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->org_accounts = org_paged;
    f->n_org_accounts = sizeof org_paged / sizeof org_paged[0];
    f->gate_account = "400000000001";
    const char *regions[] = {"us-east-1"};
    struct scheduler_options o = {.regions = regions, .n_regions = 1};
    struct seen *s = &fx->s;
    s->stop_at = 1;
    struct scheduler_result res;
    struct err e;
    assert_int_equal(run_scan(f, &o, "1", s, &res, &e), -1);
    assert_true(res.stopped);
    assert_string_equal(e.code, "Stopped"); /* the stop, not a discovery failure */
    assert_int_equal(s->calls_after_stop, 0);
    assert_true(count(f, OP_ORG, NULL, NULL, "ListAccountsForParent") < 12);
}

/* ---- 7. max_active_accounts ---- */

static void test_max_active_accounts(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    char ids[10][16];
    const char *accounts[10];
    struct fleet_cluster fleet[10];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof ids[i], "4000000000%02u", (unsigned)i % 100u);
        accounts[i] = ids[i];
        fleet[i] = (struct fleet_cluster){ids[i], "us-east-1", "c", "AWS_MANAGED", 0};
    }
    f->clusters = fleet;
    f->n_clusters = 10;
    f->hold_list_ms = 25;
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {.accounts = accounts,
                                  .n_accounts = 10,
                                  .regions = regions,
                                  .n_regions = 2,
                                  .max_active_accounts = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(f->max_distinct, 2);
    assert_int_equal(s->n_results, 20);
    for (int i = 0; i < 10; i++) {
        expect_ok(result_for(s, ids[i], "us-east-1"), 1);
        expect_ok(result_for(s, ids[i], "eu-west-1"), 0);
    }
    assert_int_equal(res.progress.accounts_done, 10);
    assert_int_equal(res.progress.targets_done, 20);
    assert_int_equal(res.progress.targets_total, 20); /* known once all are */
}

/* ---- partitions from the home region; duplicates in a fixed list ---- */

static void test_gov_partition(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    static const struct fleet_cluster fleet[] = {
        {A1, "us-gov-west-1", "gw", "CUSTOMER_ROUTED", 0},
        {A1, "us-gov-east-1", "ge", "AWS_MANAGED", 0},
        {A1, "us-east-1", "commercial", "AWS_MANAGED", 0},
    };
    const char *regions[] = {"us-gov-west-1", "us-east-1", "us-gov-east-1", "cn-north-1"};
    f->clusters = fleet;
    f->n_clusters = 3;
    f->regions = regions;
    f->n_regions = 4;
    const char *accounts[] = {A1};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 1, .home_region = "us-gov-west-1"};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(s->n_results, 2);
    expect_ok(result_for(s, A1, "us-gov-west-1"), 1);
    expect_ok(result_for(s, A1, "us-gov-east-1"), 1);
    assert_int_equal(count(f, OP_LIST, NULL, "us-east-1", NULL), 0);
    /* the role ARN is the partition's; STS and DescribeRegions go to the home region */
    int assumes = 0;
    for (int i = 0; i < f->n_events; i++) {
        const struct event *ev = &f->events[i];
        if (ev->op == OP_ASSUME) {
            assumes++;
            assert_string_equal(ev->partition, "aws-us-gov");
            assert_string_equal(ev->region, "us-gov-west-1");
        } else if (ev->op == OP_REGIONS) {
            assert_string_equal(ev->region, "us-gov-west-1");
        }
    }
    assert_int_equal(assumes, 1);
}

static void test_duplicate_fixed_account(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    const char *accounts[] = {A2, A2};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 2, .regions = regions, .n_regions = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    /* one result per account x region, however often the account was named */
    expect_ok(result_for(s, A2, "us-east-1"), 1);
    expect_ok(result_for(s, A2, "eu-west-1"), 2);
    assert_int_equal(s->n_results, 2);
}

/* ---- expired credentials: one refresh of the account's credentials, then a retry ---- */

static int count_status(struct fake *f, enum op op, const char *acct, int status)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_events; i++)
        n += f->events[i].op == op && strcmp(f->events[i].account, acct) == 0 &&
             f->events[i].status == status;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void test_expired_credentials_refreshed(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    f->expire_account = A1; /* the credentials of its first AssumeRole "expire" at once */
    const char *accounts[] = {A1, A2};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 2, .regions = regions, .n_regions = 2, .page_size = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    /* every target ok, with all its clusters */
    expect_ok(result_for(s, A1, "us-east-1"), 5);
    expect_ok(result_for(s, A1, "eu-west-1"), 0);
    expect_ok(result_for(s, A2, "us-east-1"), 1);
    expect_ok(result_for(s, A2, "eu-west-1"), 2);
    assert_int_equal(s->n_results, 4);
    /* both regions' first ListClusters were refused (MAX_ATTEMPTS 1: no retry of the retry
     * mode), and both were sent again after one refresh: one more AssumeRole, not two */
    assert_int_equal(count_status(f, OP_LIST, A1, 403), 2);
    assert_int_equal(count(f, OP_ASSUME, A1, NULL, NULL), 2);
    assert_int_equal(count(f, OP_LIST, A1, "us-east-1", NULL), 3 + 1);
    assert_int_equal(count(f, OP_LIST, A1, "eu-west-1", NULL), 1 + 1);
    /* later requests were signed with the new credentials from the start */
    assert_int_equal(count(f, OP_DESCRIBE, A1, "us-east-1", NULL), 5);
    for (int i = 0; i < f->n_events; i++)
        if (f->events[i].op == OP_DESCRIBE && strcmp(f->events[i].account, A1) == 0)
            assert_string_not_equal(f->events[i].session, f->first_session);
    /* the other account was not touched by it */
    assert_int_equal(count(f, OP_ASSUME, A2, NULL, NULL), 1);
    assert_int_equal(count_status(f, OP_LIST, A2, 403), 0);
}

static void test_expired_again_after_refresh(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    f->expire_account = A1;
    f->expire_cluster = "alpha"; /* refused as expired whatever the credentials */
    const char *accounts[] = {A1, A2};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 2, .regions = regions, .n_regions = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "3", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    /* an error for that target: one refresh, one more attempt, no loop */
    expect_failure(s, A1, "us-east-1", TARGET_ERROR, "ExpiredTokenException");
    assert_int_equal(count(f, OP_DESCRIBE, A1, "us-east-1", "alpha"), 2);
    assert_int_equal(count(f, OP_ASSUME, A1, NULL, NULL), 2);
    /* the account's other region and the other account are fine */
    expect_ok(result_for(s, A1, "eu-west-1"), 0);
    expect_ok(result_for(s, A2, "us-east-1"), 1);
    expect_ok(result_for(s, A2, "eu-west-1"), 2);
    assert_int_equal(res.progress.targets_failed, 1);
}

/* discover_only (scan --enqueue): the accounts a scan would scan are reported, none is scanned */
static void test_discover_only_selects_without_scanning(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet2;
    f->n_clusters = sizeof fleet2 / sizeof fleet2[0];
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    const char *exclude[] = {B4};
    struct scheduler_options o = {.exclude_accounts = exclude, .n_exclude = 1, .discover_only = 1};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(s->n_accounts, 6); /* the snapshot: every account */
    assert_true(res.scps_ok);
    /* active and not excluded: MGMT, B1, B3, B5 */
    assert_int_equal(s->n_selected, 4);
    const char *want[] = {MGMT, B1, B3, B5};
    for (int i = 0; i < 4; i++) {
        int found = 0;
        for (int k = 0; k < s->n_selected; k++)
            found += strcmp(s->selected[k], want[i]) == 0;
        assert_int_equal(found, 1);
    }
    /* the suspended account is recorded as such for the queue's scan too */
    assert_int_equal(s->n_results, 1);
    assert_int_equal(result_for(s, B2, "*")->status, TARGET_SUSPENDED);
    assert_int_equal(s->n_done, 0);
    assert_int_equal(count(f, OP_ASSUME, NULL, NULL, NULL), 0);
    assert_int_equal(count(f, OP_REGIONS, NULL, NULL, NULL), 0);
    assert_int_equal(count(f, OP_LIST, NULL, NULL, NULL), 0);
}

/* on_account_done comes once per account, after all of its targets */
static void test_account_done_after_its_targets(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    const char *accounts[] = {A1, A2, A3};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 3, .regions = regions, .n_regions = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(s->n_done, 3);
    for (int i = 0; i < s->n_done; i++) {
        assert_int_equal(s->targets_at_done[i], results_of(s, s->done[i]));
        assert_true(s->targets_at_done[i] >= 1);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(s->done[k], s->done[i]);
    }
}

/* ---- SCPs: how they were read, and the regions they deny the scanner ---- */

/* A refusal that says an SCP denies it is scp_denied, with AWS's code and message. */
static void test_reactive_scp_denied(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    const struct fault faults[] = {{OP_LIST, A1, "eu-west-1", NULL, 403, "AccessDeniedException"}};
    f->faults = faults;
    f->n_faults = 1;
    f->fault_message =
        "User: arn:aws:sts::" A1 ":assumed-role/EgressScanReadOnly/egressscan is not "
        "authorized to perform: eks:ListClusters on resource: arn:aws:eks:eu-west-1:" A1
        ":cluster/* with an explicit deny in a service control policy";
    const char *accounts[] = {A1};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {
        .accounts = accounts, .n_accounts = 1, .regions = regions, .n_regions = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    expect_failure(s, A1, "eu-west-1", TARGET_SCP_DENIED, "AccessDeniedException");
    assert_string_equal(result_for(s, A1, "eu-west-1")->error_message, f->fault_message);
    expect_ok(result_for(s, A1, "us-east-1"), 5);
    assert_int_equal(res.progress.targets_failed, 1);
}

/* Runs a scan of the org2 organization (regions given) with faults on its SCP calls. */
static void scan_with_scp_faults(struct fixture *fx, const struct fault *faults, size_t n,
                                 const char *max_attempts, struct scheduler_result *res)
{
    struct fake *f = fx->f;
    f->clusters = fleet2;
    f->n_clusters = sizeof fleet2 / sizeof fleet2[0];
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    f->faults = faults;
    f->n_faults = n;
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.regions = regions, .n_regions = 1};
    struct err e;
    int rc = run_scan(f, &o, max_attempts, &fx->s, res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    /* the accounts are scanned whatever became of the SCPs */
    expect_ok(result_for(&fx->s, B1, "us-west-2"), 1);
    expect_ok(result_for(&fx->s, B5, "us-west-2"), 1);
    assert_int_equal(res->progress.targets_failed, 0);
}

/* AccessDenied on ListPolicies: the SCPs are unknown (failed: a partial scan), and no SCP is
 * reported. */
static void test_scps_access_denied(void **state)
{
    struct fixture *fx = *state;
    const struct fault faults[] = {
        {OP_ORG, NULL, NULL, "ListPolicies", 400, "AccessDeniedException"}};
    struct scheduler_result res;
    scan_with_scp_faults(fx, faults, 1, "1", &res);
    assert_int_equal(res.scps_state, ORG_SCPS_FAILED);
    assert_int_equal(res.scps_ok, 0);
    assert_int_equal(fx->s.n_scps, 0);
    assert_int_equal(count(fx->f, OP_ORG, NULL, NULL, "DescribePolicy"), 0);
}

/* PolicyTypeNotEnabledException: SCPs are off in this organization: none applies (known). */
static void test_scps_disabled(void **state)
{
    struct fixture *fx = *state;
    const struct fault faults[] = {
        {OP_ORG, NULL, NULL, "ListPolicies", 400, "PolicyTypeNotEnabledException"}};
    struct scheduler_result res;
    scan_with_scp_faults(fx, faults, 1, "1", &res);
    assert_int_equal(res.scps_state, ORG_SCPS_DISABLED);
    assert_int_equal(res.scps_ok, 1);
    assert_int_equal(fx->s.n_scps, 0);
}

/* DescribePolicy throttled on every attempt: failed once the retries are spent. */
static void test_scps_throttled_past_retries(void **state)
{
    struct fixture *fx = *state;
    const struct fault faults[] = {
        {OP_ORG, NULL, NULL, "DescribePolicy", 400, "TooManyRequestsException"}};
    struct scheduler_result res;
    scan_with_scp_faults(fx, faults, 1, "2", &res);
    assert_int_equal(count(fx->f, OP_ORG, NULL, NULL, "DescribePolicy"), 2);
    assert_int_equal(res.scps_state, ORG_SCPS_FAILED);
    assert_int_equal(res.scps_ok, 0);
    assert_int_equal(fx->s.n_scps, 0);
}

/* --accounts with the org role: Organizations is read whole and handed out, only the listed
 * accounts are scanned (suspended and excluded ones as usual), and a listed account the
 * organization does not list is scanned after discovery, its OU unknown. */
#define NOT_IN_ORG "777777777777"
static void test_accounts_with_org_role(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    static const struct fleet_cluster fleet[] = {
        {B1, "us-west-2", "b1-one", "CUSTOMER_ROUTED", 0},
        {B3, "us-west-2", "b3-unlisted", "AWS_MANAGED", 0},
        {B5, "us-west-2", "b5-prod", "AWS_MANAGED", 0},
        {NOT_IN_ORG, "us-west-2", "stray", "AWS_MANAGED", 0},
    };
    f->clusters = fleet;
    f->n_clusters = sizeof fleet / sizeof fleet[0];
    f->org_accounts = org2;
    f->n_org_accounts = sizeof org2 / sizeof org2[0];
    const char *accounts[] = {B5, NOT_IN_ORG, B1, B2, B4, B1};
    const char *exclude[] = {B4};
    const char *regions[] = {"us-west-2"};
    struct scheduler_options o = {.accounts = accounts,
                                  .n_accounts = 6,
                                  .exclude_accounts = exclude,
                                  .n_exclude = 1,
                                  .regions = regions,
                                  .n_regions = 1,
                                  .org_role_arn = "arn:aws:iam::" MGMT ":role/OrgReader"};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    /* the organization snapshot: every account, the OUs, the SCPs; plus the stray account */
    assert_int_equal(s->n_accounts, 7);
    assert_string_equal(seen_account(s, B5)->ou_path, "Root/Prod");
    assert_string_equal(seen_account(s, NOT_IN_ORG)->ou_path, "");
    assert_int_equal(s->n_ous, 2);
    assert_int_equal(s->n_scps, 1);
    assert_int_equal(res.scps_state, ORG_SCPS_READ);
    assert_int_equal(res.scps_ok, 1);
    assert_true(count(f, OP_ORG, NULL, NULL, "ListAccountsForParent") >= 2);
    /* scanned: the listed ones only */
    expect_ok(result_for(s, B1, "us-west-2"), 1);
    expect_ok(result_for(s, B5, "us-west-2"), 1);
    expect_ok(result_for(s, NOT_IN_ORG, "us-west-2"), 1);
    assert_int_equal(result_for(s, B2, "*")->status, TARGET_SUSPENDED);
    assert_int_equal(results_of(s, B3), 0);
    assert_int_equal(results_of(s, MGMT), 0);
    assert_int_equal(results_of(s, B4), 0);
    assert_int_equal(count(f, OP_ASSUME, B3, NULL, NULL), 0);
    assert_int_equal(count(f, OP_ASSUME, MGMT, NULL, "EgressScanReadOnly|"), 0);
    assert_int_equal(count(f, OP_ASSUME, B1, NULL, NULL), 1); /* named twice, scanned once */
    assert_int_equal(s->n_results, 4);
    assert_int_equal(res.progress.accounts_total, 3);
    assert_int_equal(res.progress.accounts_done, 3);
    assert_int_equal(res.progress.targets_failed, 0);
}

/* The Control Tower region deny: Deny everything but global services outside two regions,
 * its own execution role exempt; attached to the root. */
#define D1 "500000000001"
#define D2 "500000000002"
#define CT_DENY(extra_exempt)                                                                      \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyOutsideRegions\",\"Effect\":"       \
    "\"Deny\",\"NotAction\":[\"iam:*\",\"sts:*\",\"organizations:*\",\"support:*\","               \
    "\"cloudfront:*\",\"route53:*\"],\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":"       \
    "{\"aws:RequestedRegion\":[\"us-east-1\",\"eu-west-1\"]},\"ArnNotLike\":{\"aws:"               \
    "PrincipalArn\":"                                                                              \
    "[\"arn:aws:iam::*:role/AWSControlTowerExecution\"" extra_exempt "]}}}]}"

static const struct org_account org_ct[] = {
    {MGMT, "ACTIVE", ROOT_ID, 0},
    {D1, "ACTIVE", ROOT_ID, 0},
    {D2, "ACTIVE", PROD_OU, 0},
};

static const struct fleet_cluster fleet_ct[] = {
    {D1, "us-east-1", "d1-east", "CUSTOMER_ROUTED", 0},
    {D1, "ap-south-1", "d1-south", "AWS_MANAGED", 0},
    {D2, "eu-west-1", "d2-west", "CUSTOMER_ROUTED", 0},
    {D2, "ap-south-1", "d2-south", "AWS_MANAGED", 0},
    {MGMT, "ap-south-1", "mgmt-south", "AWS_MANAGED", 0},
};

static void setup_ct(struct fake *f, const char *scp)
{
    f->clusters = fleet_ct;
    f->n_clusters = sizeof fleet_ct / sizeof fleet_ct[0];
    f->org_accounts = org_ct;
    f->n_org_accounts = sizeof org_ct / sizeof org_ct[0];
    f->full_everywhere = 1;
    f->scp_extra = scp;
    f->scp_extra_targets[0] = ROOT_ID;
}

/* Index of the first (last: last != 0) event of op for acct / detail (NULL: any); -1 if none. */
static int event_index(struct fake *f, enum op op, const char *acct, const char *detail, int last)
{
    int found = -1;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_events; i++) {
        const struct event *e = &f->events[i];
        if (e->op == op && (!acct || strcmp(e->account, acct) == 0) &&
            (!detail || strcmp(e->detail, detail) == 0)) {
            found = i;
            if (!last)
                break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* The region the SCPs deny the scanner's role is not called: scp_denied naming p-extra's
 * statement, the role and the region; the allowed regions are scanned, and so is every region of
 * the management account (SCPs do not apply there). The accounts' AssumeRole does not wait for
 * the SCPs (answered only after them here); their region fan-out does. */
static void test_region_deny_skips_denied_regions(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    setup_ct(f, CT_DENY(""));
    f->scp_gate_regions = 3; /* the SCPs come in only after every account's DescribeRegions */
    const char *regions[] = {"us-east-1", "eu-west-1", "ap-south-1"};
    f->regions = regions; /* DescribeRegions */
    f->n_regions = 3;
    struct scheduler_options o = {0};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(res.scps_state, ORG_SCPS_READ);
    const char *denied[] = {D1, D2};
    for (int i = 0; i < 2; i++) {
        const struct target_result *r = result_for(s, denied[i], "ap-south-1");
        assert_int_equal(r->status, TARGET_SCP_DENIED);
        assert_string_equal(r->error_code, "DeniedBySCP");
        char want[256];
        snprintf(want, sizeof want,
                 "not called: SCP statement p-extra#DenyOutsideRegions denies eks:ListClusters to "
                 "arn:aws:iam::%s:role/EgressScanReadOnly in ap-south-1",
                 denied[i]);
        assert_string_equal(r->error_message, want);
        assert_int_equal(r->n_clusters, 0);
        assert_int_equal(count(f, OP_LIST, denied[i], "ap-south-1", NULL), 0);
    }
    expect_ok(result_for(s, D1, "us-east-1"), 1);
    expect_ok(result_for(s, D1, "eu-west-1"), 0);
    expect_ok(result_for(s, D2, "us-east-1"), 0);
    expect_ok(result_for(s, D2, "eu-west-1"), 1);
    /* the management account: never skipped */
    expect_ok(result_for(s, MGMT, "ap-south-1"), 1);
    expect_ok(result_for(s, MGMT, "us-east-1"), 0);
    assert_int_equal(s->n_results, 9);
    assert_int_equal(res.progress.targets_done, 9);
    assert_int_equal(res.progress.targets_total, 9); /* known once all are */
    assert_int_equal(res.progress.targets_failed, 2);
    assert_int_equal(s->n_done, 3); /* each account done after its last target */
    /* AssumeRole and DescribeRegions went ahead before the SCPs were in (else the gate would
     * have timed out); ListClusters waited for them */
    assert_false(f->scp_gate_timed_out);
    int scps_in = event_index(f, OP_ORG, NULL, "ListTargetsForPolicy", 0);
    assert_true(scps_in >= 0);
    assert_true(event_index(f, OP_LIST, D1, NULL, 0) > scps_in);
    assert_true(event_index(f, OP_LIST, D2, NULL, 0) > scps_in);
}

/* The same SCP exempting the scanner's role: nothing is skipped. */
static void test_region_deny_exempting_the_scanner(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    setup_ct(f, CT_DENY(",\"arn:aws:iam::*:role/EgressScanReadOnly\""));
    f->scp_extra_targets[1] = PROD_OU;
    const char *regions[] = {"us-east-1", "eu-west-1", "ap-south-1"};
    struct scheduler_options o = {.regions = regions, .n_regions = 3};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(res.scps_state, ORG_SCPS_READ);
    expect_ok(result_for(s, D1, "ap-south-1"), 1);
    expect_ok(result_for(s, D2, "ap-south-1"), 1);
    assert_int_equal(count(f, OP_LIST, D1, "ap-south-1", NULL), 1);
    assert_int_equal(s->n_results, 9);
    assert_int_equal(res.progress.targets_failed, 0);
}

/* Another role name is what the SCP is evaluated for: the exemption of EgressScanReadOnly does
 * not cover AuditRole; and a scan whose SCPs could not be read skips nothing. */
static void test_region_deny_role_name_and_unread_scps(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    setup_ct(f, CT_DENY(",\"arn:aws:iam::*:role/EgressScanReadOnly\""));
    const char *regions[] = {"eu-west-1", "ap-south-1"};
    struct scheduler_options o = {.regions = regions, .n_regions = 2, .role_name = "AuditRole"};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(result_for(s, D1, "ap-south-1")->status, TARGET_SCP_DENIED);
    assert_non_null(strstr(result_for(s, D1, "ap-south-1")->error_message,
                           "arn:aws:iam::" D1 ":role/AuditRole in ap-south-1"));
    expect_ok(result_for(s, D1, "eu-west-1"), 0);

    seen_free(s);
    memset(s, 0, sizeof *s);
    f->n_events = 0;
    const struct fault faults[] = {
        {OP_ORG, "p-extra", NULL, "ListTargetsForPolicy", 500, "ServiceException"}};
    f->faults = faults;
    f->n_faults = 1;
    rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_int_equal(res.scps_state, ORG_SCPS_FAILED);
    expect_ok(result_for(s, D1, "ap-south-1"), 1);
    expect_ok(result_for(s, D2, "ap-south-1"), 1);
    assert_int_equal(res.progress.targets_failed, 0);
}

/* Early: the region deny is listed whole long before FullAWSAccess (a page per 20 targets in a
 * large organization; held here until a ListClusters came in): the accounts fan out as soon as
 * the policies that could deny eks:ListClusters are known, skip what an explicit Deny denies,
 * and name only that statement. */
static void test_region_deny_decided_before_full_access_listed(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    setup_ct(f, CT_DENY(""));
    f->full_targets_wait_list = 1;
    const char *regions[] = {"us-east-1", "ap-south-1"};
    struct scheduler_options o = {.regions = regions, .n_regions = 2};
    struct seen *s = &fx->s;
    struct scheduler_result res;
    struct err e;
    int rc = run_scan(f, &o, "1", s, &res, &e);
    if (rc != 0)
        fail_msg("scheduler_run: %s: %s", e.code, e.message);
    assert_false(f->full_gate_timed_out); /* ListClusters went ahead of FullAWSAccess */
    assert_int_equal(res.scps_state, ORG_SCPS_READ);
    assert_int_equal(s->n_scps, 2);
    const char *denied[] = {D1, D2};
    for (int i = 0; i < 2; i++) {
        const struct target_result *r = result_for(s, denied[i], "ap-south-1");
        assert_int_equal(r->status, TARGET_SCP_DENIED);
        char want[256];
        snprintf(want, sizeof want,
                 "not called: SCP statement p-extra#DenyOutsideRegions denies eks:ListClusters to "
                 "arn:aws:iam::%s:role/EgressScanReadOnly in ap-south-1",
                 denied[i]);
        assert_string_equal(r->error_message, want);
        assert_int_equal(count(f, OP_LIST, denied[i], "ap-south-1", NULL), 0);
        expect_ok(result_for(s, denied[i], "us-east-1"), i == 0 ? 1 : 0);
    }
    expect_ok(result_for(s, MGMT, "ap-south-1"), 1);
    assert_int_equal(s->n_results, 6);
    assert_int_equal(res.progress.targets_failed, 2);
}

/* ---- endless listings (SPEC section 4) ---- */

/* A ListClusters answer that repeats a token, or pages without end, fails that target alone. */
static void test_list_repeated_token_and_page_cap(void **state)
{
    struct fixture *fx = *state;
    struct fake *f = fx->f;
    f->clusters = fleet1;
    f->n_clusters = sizeof fleet1 / sizeof fleet1[0];
    const char *accounts[] = {A1, A2};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    struct scheduler_options o = {.accounts = accounts,
                                  .n_accounts = 2,
                                  .regions = regions,
                                  .n_regions = 2,
                                  .page_size = 2,
                                  .as_of = 1800000000.0};
    for (int mode = 1; mode <= 3; mode++) {
        seen_free(&fx->s);
        memset(&fx->s, 0, sizeof fx->s);
        f->n_events = 0;
        f->loop_account = A2;
        f->loop_mode = mode;
        struct scheduler_result res;
        struct err e;
        int rc = run_scan(f, &o, "1", &fx->s, &res, &e);
        if (rc != 0)
            fail_msg("scheduler_run: %s: %s", e.code, e.message);
        /* the honest account is whole */
        expect_ok(result_for(&fx->s, A1, "us-east-1"), 5);
        expect_ok(result_for(&fx->s, A1, "eu-west-1"), 0);
        for (int r = 0; r < 2; r++) {
            expect_failure(&fx->s, A2, regions[r], TARGET_ERROR, "MalformedResponse");
            const char *m = result_for(&fx->s, A2, regions[r])->error_message;
            const char *needle = mode == 3 ? "more than 1000 pages" : "repeats the nextToken";
            if (!strstr(m, needle))
                fail_msg("mode %d: \"%s\" lacks \"%s\"", mode, m, needle);
        }
        int lists = count(f, OP_LIST, A2, "us-east-1", NULL);
        int want = mode == 1 ? 2 : mode == 2 ? 3 : SCHED_LIST_PAGES_MAX;
        if (lists != want)
            fail_msg("mode %d: %d ListClusters requests, expected %d", mode, lists, want);
        assert_int_equal(count(f, OP_DESCRIBE, A2, NULL, NULL), 0);
    }
}

int main(void)
{
    log_setup(LOG_OFF, LOG_TEXT, NULL); /* the expected failures log warnings */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_repeated_token_and_page_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_organizations_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_organizations_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_fails_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_map_to_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_partitions_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_on_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_ends_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_active_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gov_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_fixed_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_credentials_refreshed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_again_after_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discover_only_selects_without_scanning, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_account_done_after_its_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reactive_scp_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scps_access_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scps_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scps_throttled_past_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_with_org_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_deny_skips_denied_regions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_deny_exempting_the_scanner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_deny_decided_before_full_access_listed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_region_deny_role_name_and_unread_scps, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
