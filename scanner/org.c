/* org.c - discovery through AWS Organizations (awsJson1_1): DescribeOrganization, ListRoots and a
 * concurrent walk of the OU tree (OUs and accounts per parent, every page followed), streaming
 * accounts out page by page; and, alongside, the SCPs with their content and targets. */
#include "scanner/org.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonutil.h"
#include "common/log.h"
#include "common/utf8.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/org_internal.h"

#define ORG_TARGET_PREFIX "AWSOrganizationsV20161128."
#define ORG_PACE_KEY "organizations"
#define ORG_PAGE_SIZE 20 /* the Organizations maximum */
#define NO_PARENT SIZE_MAX

static const char *const op_names[] = {
    [ORG_OP_DESCRIBE_ORGANIZATION] = "DescribeOrganization",
    [ORG_OP_LIST_ROOTS] = "ListRoots",
    [ORG_OP_LIST_OUS] = "ListOrganizationalUnitsForParent",
    [ORG_OP_LIST_ACCOUNTS] = "ListAccountsForParent",
    [ORG_OP_LIST_POLICIES] = "ListPolicies",
    [ORG_OP_DESCRIBE_POLICY] = "DescribePolicy",
    [ORG_OP_LIST_TARGETS] = "ListTargetsForPolicy",
};

/* The array member each listing answers with. */
static const char *const list_keys[] = {
    [ORG_OP_LIST_ROOTS] = "Roots",       [ORG_OP_LIST_OUS] = "OrganizationalUnits",
    [ORG_OP_LIST_ACCOUNTS] = "Accounts", [ORG_OP_LIST_POLICIES] = "Policies",
    [ORG_OP_LIST_TARGETS] = "Targets",
};

/* A root or OU. Kept for the whole discovery (OUs are few); children refer to it by index. */
struct ou_node {
    char *id;
    char *name;
    char *path;    /* "Root/Prod/Regulated" */
    char *id_path; /* "r-ab12/ou-ab12-1111/ou-ab12-2222" */
    size_t parent; /* index, NO_PARENT for a root */
    int in_filter; /* this node is (under) the OU filter: its accounts are handed out */
};

/* One SCP being assembled from DescribePolicy and the pages of ListTargetsForPolicy. */
struct scp_work {
    char *id;
    char *name;
    char *content;
    int aws_managed;
    int refs;       /* request chains still running for it (describe, targets) */
    int incomplete; /* a chain failed: never reported */
    char **targets;
    size_t n_targets, cap_targets;
    struct scp_work *next; /* in the list of policies read whole, until the SCP side ends */
};

/* An accounts page that arrived before the management account was known. */
struct pending_page {
    struct org_page page; /* owned */
    size_t ou;
    struct pending_page *next;
};

/* One request chain (a paginated listing reuses it page after page). */
struct org_call {
    struct org_discovery *d;
    enum org_op op;
    size_t ou;            /* ORG_OP_LIST_OUS, ORG_OP_LIST_ACCOUNTS */
    struct scp_work *scp; /* ORG_OP_DESCRIBE_POLICY, ORG_OP_LIST_TARGETS */
    char *token;          /* NextToken this page was asked with; NULL for the first */
    uint64_t *seen;       /* hashes of every NextToken of the chain so far */
    size_t n_seen, cap_seen;
};

/* Account ids handed out so far (an account moved between OUs during the walk could otherwise be
 * listed twice). Fixed 16-byte slots, open addressing: ~32 bytes per account. */
struct id_set {
    char (*slot)[16];
    size_t cap, count;
};

struct org_discovery {
    struct http_engine *engine;
    struct aws_credentials *creds; /* own reference */
    struct endpoint ep;
    char url[sizeof(((struct endpoint *)0)->url) + 2];
    struct org_callbacks cb;
    char *ou_filter;
    int filter_seen;
    size_t outstanding; /* requests submitted and not yet completed */
    int failed;         /* the account walk failed: nothing more is handed out */
    struct err err;
    int scps_ok;                /* no SCP call failed so far */
    enum org_scps scps_failure; /* how, when one did (DISABLED or FAILED) */
    enum org_scps scps_state;   /* what on_scps_done said */
    int scps_signalled;         /* on_scps_done ran */
    size_t scp_outstanding;     /* SCP requests submitted and not yet completed */
    struct scp_work *read_head; /* policies read whole, reported when the SCP side ends */
    struct scp_work *read_tail;
    int policies_listed;          /* ListPolicies answered its last page */
    size_t describes_outstanding; /* DescribePolicy requests not yet answered */
    int contents_announced;       /* on_scp_progress(NULL) ran */
    char *org_id;
    char *management_id; /* NULL until DescribeOrganization answered */
    struct ou_node *ous;
    size_t n_ous, cap_ous;
    struct pending_page *pending, *pending_tail;
    struct id_set seen;
};

/* ---- parsing the answers ---- */

const char *org_op_name(enum org_op op)
{
    return (unsigned)op < ORG_OP_COUNT ? op_names[op] : NULL;
}

/* An optional string member: 0 with *out (borrowed, NULL when absent or null), -1 with err when
 * it has another type. ctx names where obj is ("ListRoots: Roots[2]."). */
static int opt_string(json_t *obj, const char *key, const char *ctx, const char **out,
                      struct err *err)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(err, ERR_PARSE, "%s%s is %s, expected a string", ctx, key,
                       json_type_name(v));
    *out = json_string_value(v);
    return 0;
}

static int req_string(json_t *obj, const char *key, const char *ctx, const char **out,
                      struct err *err)
{
    if (opt_string(obj, key, ctx, out, err) < 0)
        return -1;
    if (!*out)
        return err_set(err, ERR_PARSE, "%s%s is missing", ctx, key);
    if (!**out)
        return err_set(err, ERR_PARSE, "%s%s is empty", ctx, key);
    return 0;
}

/* An optional boolean member: *out 1 or 0, -1 when absent or null. */
static int opt_bool(json_t *obj, const char *key, const char *ctx, int *out, struct err *err)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return err_set(err, ERR_PARSE, "%s%s is %s, expected a boolean", ctx, key,
                       json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* An object member: borrowed, or NULL with err when it is missing or not an object. */
static json_t *req_object(json_t *obj, const char *key, const char *what, struct err *err)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    if (!json_is_object(v)) {
        err_set(err, ERR_PARSE, "%s: %s is %s, expected an object", what, key,
                v ? json_type_name(v) : "missing");
        return NULL;
    }
    return v;
}

static int parse_organization(json_t *root, struct org_page *page, struct err *err)
{
    const char *what = op_names[ORG_OP_DESCRIBE_ORGANIZATION];
    const char *ctx = "DescribeOrganization: Organization.";
    json_t *org = req_object(root, "Organization", what, err); /* borrowed */
    if (!org || opt_string(org, "Id", ctx, &page->org_id, err) < 0 ||
        opt_string(org, "ManagementAccountId", ctx, &page->management_id, err) < 0)
        return -1;
    /* MasterAccountId is the older name, still the only one some answers carry */
    if ((!page->management_id || !*page->management_id) &&
        req_string(org, "MasterAccountId", ctx, &page->management_id, err) < 0)
        return -1;
    return 0;
}

static int parse_policy(json_t *root, struct org_page *page, struct err *err)
{
    const char *what = op_names[ORG_OP_DESCRIBE_POLICY];
    json_t *policy = req_object(root, "Policy", what, err); /* borrowed */
    if (!policy ||
        req_string(policy, "Content", "DescribePolicy: Policy.", &page->content, err) < 0)
        return -1;
    json_t *summary = json_object_get(policy, "PolicySummary"); /* borrowed */
    if (!summary || json_is_null(summary))
        return 0;
    const char *ctx = "DescribePolicy: Policy.PolicySummary.";
    if (!(summary = req_object(policy, "PolicySummary", "DescribePolicy: Policy", err)) ||
        opt_string(summary, "Name", ctx, &page->policy_name, err) < 0 ||
        opt_bool(summary, "AwsManaged", ctx, &page->aws_managed, err) < 0)
        return -1;
    return 0;
}

/* A listing: list_keys[op] is an array of objects with an Id (TargetId), NextToken a string,
 * absent or null. */
static int parse_listing(enum org_op op, json_t *root, struct org_page *page, struct err *err)
{
    const char *what = op_names[op], *key = list_keys[op];
    char ctx[128];
    json_t *list = json_object_get(root, key); /* borrowed */
    if (!json_is_array(list))
        return err_set(err, ERR_PARSE, "%s: %s is %s, expected an array", what, key,
                       list ? json_type_name(list) : "missing");
    snprintf(ctx, sizeof ctx, "%s: ", what);
    if (opt_string(root, "NextToken", ctx, &page->next_token, err) < 0)
        return -1;
    if (page->next_token && !*page->next_token)
        page->next_token = NULL; /* an empty token would ask for the same page forever */
    size_t n = json_array_size(list);
    if (n && !(page->entries = calloc(n, sizeof *page->entries)))
        return err_set(err, ERR_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i); /* borrowed */
        struct org_entry *e = &page->entries[i];
        if (!json_is_object(item))
            return err_set(err, ERR_PARSE, "%s: %s[%zu] is %s, expected an object", what, key, i,
                           json_type_name(item));
        snprintf(ctx, sizeof ctx, "%s: %s[%zu].", what, key, i);
        if (req_string(item, op == ORG_OP_LIST_TARGETS ? "TargetId" : "Id", ctx, &e->id, err) < 0)
            return -1;
        if (op != ORG_OP_LIST_TARGETS && opt_string(item, "Name", ctx, &e->name, err) < 0)
            return -1;
        if (op == ORG_OP_LIST_ACCOUNTS) {
            const char *state;
            /* it names the role to assume and every row stored for the account */
            if (!account_id_valid(e->id))
                return err_set(err, ERR_PARSE, "%sId \"%.*s\" is not a 12-digit account id", ctx,
                               (int)utf8_cut(e->id, 40), e->id);
            /* Status is the documented field; newer answers also carry State (knows CLOSED) */
            if (opt_string(item, "Email", ctx, &e->email, err) < 0 ||
                opt_string(item, "Status", ctx, &e->status, err) < 0 ||
                opt_string(item, "State", ctx, &state, err) < 0)
                return -1;
            if (!e->status)
                e->status = state;
        }
        if (op == ORG_OP_LIST_POLICIES) {
            int managed;
            if (opt_bool(item, "AwsManaged", ctx, &managed, err) < 0)
                return -1;
            e->aws_managed = managed == 1;
        }
    }
    page->n = n;
    return 0;
}

int org_parse_page(enum org_op op, const char *body, size_t len, struct org_page *page,
                   struct err *err)
{
    memset(page, 0, sizeof *page);
    page->aws_managed = -1;
    const char *what = org_op_name(op);
    if (!what)
        return err_set(err, ERR_INVALID, "org_parse_page: unknown operation %d", (int)op);
    if (!body || len == 0)
        return err_set(err, ERR_PARSE, "%s: the answer is empty", what);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr); /* new */
    if (!root)
        return err_set(err, ERR_PARSE, "%s: the answer is not JSON: %s (line %d, column %d)", what,
                       jerr.text, jerr.line, jerr.column);
    page->doc = root;
    int rc;
    if (!json_is_object(root))
        rc = err_set(err, ERR_PARSE, "%s: the answer is %s, not an object", what,
                     json_type_name(root));
    else if (op == ORG_OP_DESCRIBE_ORGANIZATION)
        rc = parse_organization(root, page, err);
    else if (op == ORG_OP_DESCRIBE_POLICY)
        rc = parse_policy(root, page, err);
    else
        rc = parse_listing(op, root, page, err);
    if (rc < 0) {
        org_page_cleanup(page);
        page->aws_managed = -1;
    }
    return rc;
}

void org_page_cleanup(struct org_page *page)
{
    if (!page)
        return;
    free(page->entries);
    json_decref(page->doc);
    memset(page, 0, sizeof *page);
}

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *join3(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Adds id; 1 when it was new, 0 when already there, -1 on ENOMEM. Ids that do not fit a slot
 * (never the case for AWS's 12 digits) are not tracked and count as new. */
static int id_set_add(struct id_set *s, const char *id)
{
    if (strlen(id) >= sizeof s->slot[0])
        return 1;
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        char(*slot)[16] = calloc(ncap, sizeof *slot);
        if (!slot)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slot[i][0])
                continue;
            size_t j = fnv1a(s->slot[i]) & (ncap - 1);
            while (slot[j][0])
                j = (j + 1) & (ncap - 1);
            memcpy(slot[j], s->slot[i], sizeof slot[j]);
        }
        free(s->slot);
        s->slot = slot;
        s->cap = ncap;
    }
    size_t j = fnv1a(id) & (s->cap - 1);
    while (s->slot[j][0]) {
        if (strcmp(s->slot[j], id) == 0)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    snprintf(s->slot[j], sizeof s->slot[j], "%s", id);
    s->count++;
    return 1;
}

/* ---- failure paths ---- */

/* The account walk failed: remember the first error; nothing more is submitted or handed out. */
static void walk_fail(struct org_discovery *d, const struct err *e, const char *op)
{
    if (d->failed)
        return;
    d->failed = 1;
    d->err = *e;
    if (op)
        err_prefix(&d->err, "%s: ", op);
}

/* SCPs switched off in the organization (or not available in it: consolidated billing only). */
static int scps_disabled_code(const char *code)
{
    return strcmp(code, "PolicyTypeNotEnabledException") == 0 ||
           strcmp(code, "PolicyTypeNotAvailableForOrganizationException") == 0;
}

/* The SCPs cannot be read completely: discovery goes on for accounts. PolicyTypeNotEnabled means
 * that none applies; anything else leaves the intent unknown. */
static void scp_fail(struct org_discovery *d, const struct err *e, const char *op)
{
    if (!d->scps_ok)
        return;
    d->scps_ok = 0;
    if (scps_disabled_code(e->code)) {
        d->scps_failure = ORG_SCPS_DISABLED;
        log_info("org", "SCPs are not enabled in the organization (%s: %s): no SCP applies", op,
                 e->code);
    } else {
        d->scps_failure = ORG_SCPS_FAILED;
        log_warn("org",
                 "SCPs could not be read (%s: %s: %s); the SCP-backed intent is unknown and the "
                 "scan is partial",
                 op, e->code, e->message);
    }
}

/* ---- requests ---- */

static void on_response(void *ud, const struct aws_response *resp);

/* Submits the call's request (its page token included). 0, or -1 with err. */
static int send_call(struct org_discovery *d, struct org_call *call, struct err *err)
{
    json_t *body = json_object(); /* new */
    int rc = -1;
    char *text = NULL;
    if (!body)
        return err_set(err, ERR_NOMEM, "out of memory");
    int bad = 0;
    switch (call->op) {
    case ORG_OP_DESCRIBE_ORGANIZATION:
        break;
    case ORG_OP_LIST_OUS:
    case ORG_OP_LIST_ACCOUNTS:
        bad |= json_object_set_new(body, "ParentId", json_string(d->ous[call->ou].id));
        break;
    case ORG_OP_LIST_POLICIES:
        bad |= json_object_set_new(body, "Filter", json_string("SERVICE_CONTROL_POLICY"));
        break;
    case ORG_OP_DESCRIBE_POLICY:
    case ORG_OP_LIST_TARGETS:
        bad |= json_object_set_new(body, "PolicyId", json_string(call->scp->id));
        break;
    case ORG_OP_LIST_ROOTS:
    case ORG_OP_COUNT:
        break;
    }
    if (call->op != ORG_OP_DESCRIBE_ORGANIZATION && call->op != ORG_OP_DESCRIBE_POLICY)
        bad |= json_object_set_new(body, "MaxResults", json_integer(ORG_PAGE_SIZE));
    if (call->token)
        bad |= json_object_set_new(body, "NextToken", json_string(call->token));
    text = bad ? NULL : json_dumps(body, JSON_COMPACT);
    if (!text) {
        err_set(err, ERR_NOMEM, "out of memory building a %s request", op_names[call->op]);
        goto out;
    }
    char target[80];
    snprintf(target, sizeof target, ORG_TARGET_PREFIX "%s", op_names[call->op]);
    const struct sigv4_header headers[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", target},
    };
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_JSON_1_1;
    req.method = "POST";
    req.url = d->url;
    req.service = "organizations";
    req.region = d->ep.signing_region;
    req.creds = d->creds;
    req.headers = headers;
    req.n_headers = 2;
    req.body = text;
    req.body_len = strlen(text);
    req.pace_key = ORG_PACE_KEY;
    req.allow_http = d->ep.is_override;
    /* Discovery feeds the whole scan, and its listings are chains of pages, one after another
     * (ListTargetsForPolicy of FullAWSAccess has a page per 20 accounts): each page goes ahead
     * of the queued scan work, so the chains take their pages' latency, not the queue's. */
    req.priority = 1;
    if (http_submit(d->engine, &req, on_response, call, err) < 0)
        goto out;
    d->outstanding++;
    if (call->op >= ORG_OP_LIST_POLICIES)
        d->scp_outstanding++;
    rc = 0;
out:
    free(text);
    json_decref(body);
    return rc;
}

static void call_free(struct org_call *call)
{
    if (!call)
        return;
    free(call->token);
    free(call->seen);
    free(call);
}

/* Starts a new request chain. -1 with err when it could not be queued. */
static int start_call(struct org_discovery *d, enum org_op op, size_t ou, struct scp_work *scp,
                      struct err *err)
{
    struct org_call *call = calloc(1, sizeof *call);
    if (!call)
        return err_set(err, ERR_NOMEM, "out of memory");
    call->d = d;
    call->op = op;
    call->ou = ou;
    call->scp = scp;
    if (send_call(d, call, err) < 0) {
        call_free(call);
        return -1;
    }
    return 0;
}

/* Asks for the chain's next page. Returns 1 when the call was resubmitted (and so is still
 * owned by the engine), 0 on the last page, -1 with err on failure. */
static int next_page(struct org_discovery *d, struct org_call *call, const char *token,
                     struct err *err)
{
    if (!token)
        return 0;
    if (call->token && strcmp(call->token, token) == 0)
        return err_set(err, ERR_PARSE, "%s: NextToken did not change between pages",
                       op_names[call->op]);
    /* A token seen before (A, B, A, ...) would page forever; 64-bit FNV-1a hashes of the chain's
     * tokens, searched linearly: a chain has at most a few thousand pages. */
    uint64_t h = fnv1a(token);
    for (size_t i = 0; i < call->n_seen; i++)
        if (call->seen[i] == h)
            return err_set(err, ERR_PARSE,
                           "%s: NextToken repeats the token of an earlier page (the listing "
                           "would never end)",
                           op_names[call->op]);
    if (call->n_seen == call->cap_seen) {
        size_t ncap = call->cap_seen ? call->cap_seen * 2 : 8;
        uint64_t *grown = realloc(call->seen, ncap * sizeof *grown);
        if (!grown)
            return err_set(err, ERR_NOMEM, "out of memory");
        call->seen = grown;
        call->cap_seen = ncap;
    }
    call->seen[call->n_seen++] = h;
    char *copy = strdup(token);
    if (!copy)
        return err_set(err, ERR_NOMEM, "out of memory");
    free(call->token);
    call->token = copy;
    return send_call(d, call, err) < 0 ? -1 : 1;
}

/* ---- the OU tree ---- */

/* Adds a root (parent NO_PARENT) or an OU, reports it and lists its children. */
static int add_node(struct org_discovery *d, const char *id, const char *name, size_t parent,
                    struct err *err)
{
    if (d->n_ous == d->cap_ous) {
        size_t ncap = d->cap_ous ? d->cap_ous * 2 : 16;
        struct ou_node *grown = realloc(d->ous, ncap * sizeof *grown);
        if (!grown)
            return err_set(err, ERR_NOMEM, "out of memory");
        d->ous = grown;
        d->cap_ous = ncap;
    }
    struct ou_node *n = &d->ous[d->n_ous];
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->id = strdup(id);
    n->name = strdup(name);
    if (parent == NO_PARENT) {
        n->path = strdup(name);
        n->id_path = strdup(id);
    } else {
        n->path = join3(d->ous[parent].path, "/", name);
        n->id_path = join3(d->ous[parent].id_path, "/", id);
    }
    if (!n->id || !n->name || !n->path || !n->id_path) {
        free(n->id);
        free(n->name);
        free(n->path);
        free(n->id_path);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    int matches = d->ou_filter && strcmp(d->ou_filter, id) == 0;
    d->filter_seen |= matches;
    n->in_filter = !d->ou_filter || matches || (parent != NO_PARENT && d->ous[parent].in_filter);
    size_t idx = d->n_ous++;
    if (d->cb.on_org_unit) {
        struct org_unit ou = {n->id, parent == NO_PARENT ? NULL : d->ous[parent].id, n->name};
        d->cb.on_org_unit(d->cb.ud, &ou);
    }
    if (start_call(d, ORG_OP_LIST_OUS, idx, NULL, err) < 0)
        return -1;
    /* Accounts outside the filter are never handed out: no need to list them. */
    if (d->ous[idx].in_filter && start_call(d, ORG_OP_LIST_ACCOUNTS, idx, NULL, err) < 0)
        return -1;
    return 0;
}

/* Hands out the accounts of a page (the management account is known by now). */
static int emit_accounts(struct org_discovery *d, const struct org_page *page, size_t ou,
                         struct err *err)
{
    size_t n = page->n;
    if (n == 0 || !d->ous[ou].in_filter || !d->cb.on_accounts)
        return 0;
    struct account *acc = calloc(n, sizeof *acc);
    if (!acc)
        return err_set(err, ERR_NOMEM, "out of memory");
    size_t m = 0;
    const struct ou_node *node = &d->ous[ou];
    for (size_t i = 0; i < n; i++) {
        const struct org_entry *a = &page->entries[i];
        struct account *x = &acc[m];
        int fresh = id_set_add(&d->seen, a->id);
        if (fresh < 0) {
            free(acc);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
        if (!fresh) {
            log_warn("org", "account %s listed twice (moved during discovery?); kept once", a->id);
            continue;
        }
        x->id = a->id;
        x->name = a->name;
        x->email = a->email;
        x->status = a->status;
        x->ou_path = node->path;
        x->ou_id_path = node->id_path;
        x->parent_id = node->id;
        x->is_management = strcmp(x->id, d->management_id) == 0;
        m++;
    }
    if (m)
        d->cb.on_accounts(d->cb.ud, acc, m);
    free(acc);
    return 0;
}

/* ---- SCPs ---- */

static void scp_free(struct scp_work *s)
{
    for (size_t i = 0; i < s->n_targets; i++)
        free(s->targets[i]);
    free(s->targets);
    free(s->id);
    free(s->name);
    free(s->content);
    free(s);
}

/* One of the policy's request chains ended; after the last one the policy is kept for the end of
 * the SCP side (when every SCP call so far succeeded) or freed. */
static void scp_release(struct org_discovery *d, struct scp_work *s)
{
    if (--s->refs > 0)
        return;
    if (s->incomplete || !d->scps_ok || d->failed || d->scps_signalled) {
        scp_free(s);
        return;
    }
    s->next = NULL;
    if (d->read_tail)
        d->read_tail->next = s;
    else
        d->read_head = s;
    d->read_tail = s;
    if (d->cb.on_scp_progress) {
        struct scp_policy p = {s->id,        s->name ? s->name : s->id,
                               s->content,   (const char *const *)s->targets,
                               s->n_targets, s->aws_managed};
        d->cb.on_scp_progress(d->cb.ud, &p, 1);
    }
}

/* Every policy's content is known (the listing and each DescribePolicy answered, none failed):
 * said once, for early decisions. */
static void scp_progress_check(struct org_discovery *d)
{
    if (d->contents_announced || !d->scps_ok || d->failed || !d->policies_listed ||
        d->describes_outstanding > 0)
        return;
    d->contents_announced = 1;
    if (d->cb.on_scp_progress)
        d->cb.on_scp_progress(d->cb.ud, NULL, 0);
}

/* The SCP side ended (read whole, failed, or cut short by the walk): reports the policies when
 * they were all read, then on_scps_done. Once. */
static void scps_finish(struct org_discovery *d)
{
    if (d->scps_signalled)
        return;
    d->scps_signalled = 1;
    d->scps_state = d->failed ? ORG_SCPS_FAILED : d->scps_ok ? ORG_SCPS_READ : d->scps_failure;
    while (d->read_head) {
        struct scp_work *s = d->read_head;
        d->read_head = s->next;
        if (d->scps_state == ORG_SCPS_READ && d->cb.on_scp) {
            struct scp_policy p = {s->id,        s->name ? s->name : s->id,
                                   s->content,   (const char *const *)s->targets,
                                   s->n_targets, s->aws_managed};
            d->cb.on_scp(d->cb.ud, &p);
        }
        scp_free(s);
    }
    d->read_tail = NULL;
    if (d->cb.on_scps_done)
        d->cb.on_scps_done(d->cb.ud, d->scps_state);
}

static int start_policy(struct org_discovery *d, const struct org_entry *summary, struct err *err)
{
    struct scp_work *s = calloc(1, sizeof *s);
    if (!s || !(s->id = strdup(summary->id)) ||
        (summary->name && !(s->name = strdup(summary->name)))) {
        if (s)
            scp_free(s);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    s->aws_managed = summary->aws_managed;
    /* One reference per request chain, plus this function's own while it starts them (no
     * answer can arrive before it returns: callbacks run from the event loop). */
    s->refs = 1;
    int rc = start_call(d, ORG_OP_DESCRIBE_POLICY, 0, s, err);
    if (rc == 0) {
        s->refs++;
        d->describes_outstanding++;
        rc = start_call(d, ORG_OP_LIST_TARGETS, 0, s, err);
        if (rc == 0)
            s->refs++;
    }
    if (rc < 0)
        s->incomplete = 1;
    scp_release(d, s);
    return rc;
}

/* 1 when another page was asked for, 0 when the listing is complete, -1 with err. */
static int handle_list_policies(struct org_discovery *d, struct org_call *call,
                                const struct org_page *page, struct err *err)
{
    for (size_t i = 0; i < page->n; i++)
        if (start_policy(d, &page->entries[i], err) < 0)
            return -1;
    return next_page(d, call, page->next_token, err);
}

static int handle_describe_policy(struct org_discovery *d, struct org_call *call,
                                  const struct org_page *page, struct err *err)
{
    struct scp_work *s = call->scp;
    if (page->policy_name && !s->name && !(s->name = strdup(page->policy_name)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (page->aws_managed >= 0)
        s->aws_managed = page->aws_managed;
    if (!(s->content = strdup(page->content)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (d->cb.on_scp_progress) {
        struct scp_policy p = {s->id,         s->name ? s->name : s->id, s->content, NULL, 0,
                               s->aws_managed};
        d->cb.on_scp_progress(d->cb.ud, &p, 0);
    }
    return 0;
}

/* 1 when another page was asked for, 0 when the listing is complete, -1 with err. */
static int handle_list_targets(struct org_discovery *d, struct org_call *call,
                               const struct org_page *page, struct err *err)
{
    struct scp_work *s = call->scp;
    for (size_t i = 0; i < page->n; i++) {
        if (s->n_targets == s->cap_targets) {
            size_t ncap = s->cap_targets ? s->cap_targets * 2 : 8;
            char **grown = realloc(s->targets, ncap * sizeof *grown);
            if (!grown)
                return err_set(err, ERR_NOMEM, "out of memory");
            s->targets = grown;
            s->cap_targets = ncap;
        }
        if (!(s->targets[s->n_targets] = strdup(page->entries[i].id)))
            return err_set(err, ERR_NOMEM, "out of memory");
        s->n_targets++;
    }
    return next_page(d, call, page->next_token, err);
}

/* ---- the walk's answers ---- */

static int handle_describe_organization(struct org_discovery *d, const struct org_page *page,
                                        struct err *err)
{
    if (!(d->org_id = dup_or_null(page->org_id)) && page->org_id)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (!(d->management_id = strdup(page->management_id)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (d->cb.on_organization)
        d->cb.on_organization(d->cb.ud, d->org_id, d->management_id);
    /* The pages that were waiting for the management account, in arrival order. */
    int rc = 0;
    while (d->pending) {
        struct pending_page *p = d->pending;
        d->pending = p->next;
        if (rc == 0)
            rc = emit_accounts(d, &p->page, p->ou, err);
        org_page_cleanup(&p->page);
        free(p);
    }
    d->pending_tail = NULL;
    return rc;
}

/* Roots (parent NO_PARENT) and OUs: each is added to the tree and its children are listed. */
static int handle_list_nodes(struct org_discovery *d, struct org_call *call,
                             const struct org_page *page, size_t parent, struct err *err)
{
    for (size_t i = 0; i < page->n; i++) {
        const struct org_entry *e = &page->entries[i];
        const char *name = e->name && *e->name ? e->name : parent == NO_PARENT ? "Root" : e->id;
        /* parent is an index: add_node may move the table */
        if (add_node(d, e->id, name, parent, err) < 0)
            return -1;
    }
    return next_page(d, call, page->next_token, err);
}

/* Takes the page (it is cleaned up here or kept until DescribeOrganization answers). */
static int handle_list_accounts(struct org_discovery *d, struct org_call *call,
                                struct org_page *page, struct err *err)
{
    int rc = 0;
    if (!d->management_id && page->n > 0) {
        /* is_management is not known yet: keep the page until DescribeOrganization answers */
        struct pending_page *p = malloc(sizeof *p);
        if (!p)
            return err_set(err, ERR_NOMEM, "out of memory");
        /* the token is asked for now: copy it before the page changes hands */
        rc = next_page(d, call, page->next_token, err);
        p->page = *page;
        memset(page, 0, sizeof *page);
        p->ou = call->ou;
        p->next = NULL;
        if (d->pending_tail)
            d->pending_tail->next = p;
        else
            d->pending = p;
        d->pending_tail = p;
        return rc;
    }
    rc = emit_accounts(d, page, call->ou, err);
    if (rc == 0)
        rc = next_page(d, call, page->next_token, err);
    return rc;
}

/* ---- completion ---- */

static void discovery_finish(struct org_discovery *d)
{
    if (!d->failed && d->ou_filter && !d->filter_seen) {
        struct err e;
        err_clear(&e);
        err_set(&e, ERR_CONFIG, "OU %s is not in the organization", d->ou_filter);
        walk_fail(d, &e, NULL);
    }
    scps_finish(d); /* the walk ended first, or the SCP side could not even start */
    if (d->cb.on_done)
        d->cb.on_done(d->cb.ud, d->failed ? &d->err : NULL,
                      d->failed ? 0 : org_scps_known(d->scps_state));
    /* d may have been freed by on_done */
}

static void on_response(void *ud, const struct aws_response *resp)
{
    struct org_call *call = ud;
    struct org_discovery *d = call->d;
    const char *op = op_names[call->op];
    int is_scp = call->op >= ORG_OP_LIST_POLICIES;
    int is_describe = call->op == ORG_OP_DESCRIBE_POLICY;
    struct err e;
    err_clear(&e);
    int rc = 0;                /* 1: the call was resubmitted for its next page */
    const char *prefix = NULL; /* parse errors name the operation already */
    struct org_page page;
    memset(&page, 0, sizeof page);

    if (d->failed || (is_scp && !d->scps_ok)) {
        rc = 0; /* discovery (or the SCP side of it) is over: the answer is dropped */
    } else if (err_isset(&resp->err)) {
        e = resp->err;
        prefix = op;
        rc = -1;
    } else if (org_parse_page(call->op, resp->body, resp->body_len, &page, &e) < 0) {
        rc = -1;
    } else {
        switch (call->op) {
        case ORG_OP_DESCRIBE_ORGANIZATION:
            rc = handle_describe_organization(d, &page, &e);
            break;
        case ORG_OP_LIST_ROOTS:
            rc = handle_list_nodes(d, call, &page, NO_PARENT, &e);
            break;
        case ORG_OP_LIST_OUS:
            rc = handle_list_nodes(d, call, &page, call->ou, &e);
            break;
        case ORG_OP_LIST_ACCOUNTS:
            rc = handle_list_accounts(d, call, &page, &e);
            break;
        case ORG_OP_LIST_POLICIES:
            rc = handle_list_policies(d, call, &page, &e);
            d->policies_listed |= rc == 0;
            break;
        case ORG_OP_DESCRIBE_POLICY:
            rc = handle_describe_policy(d, call, &page, &e);
            break;
        case ORG_OP_LIST_TARGETS:
            rc = handle_list_targets(d, call, &page, &e);
            break;
        case ORG_OP_COUNT:
            break;
        }
    }
    org_page_cleanup(&page);
    if (rc < 0) {
        if (is_scp)
            scp_fail(d, &e, op);
        else
            walk_fail(d, &e, prefix);
    }
    if (rc != 1) {
        if (call->scp) {
            call->scp->incomplete |= rc < 0;
            scp_release(d, call->scp);
        }
        call_free(call);
    }
    if (is_describe)
        d->describes_outstanding--;
    if (is_scp)
        scp_progress_check(d);
    /* The SCP side ends at its first failure (its answers still under way are dropped) or with
     * its last answer; new pages and policies were submitted above, before this count. */
    if (is_scp && --d->scp_outstanding == 0)
        scps_finish(d);
    else if (is_scp && !d->scps_ok)
        scps_finish(d);
    if (--d->outstanding == 0)
        discovery_finish(d);
}

/* ---- public ---- */

struct org_discovery *org_discover_start(struct http_engine *engine, struct aws_credentials *creds,
                                         const char *home_region, const char *ou_filter,
                                         const struct org_callbacks *cb, struct err *err)
{
    if (!engine || !cb) {
        err_set(err, ERR_INVALID, "org_discover_start: no engine or callbacks");
        return NULL;
    }
    struct org_discovery *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->engine = engine;
    d->cb = *cb;
    d->scps_ok = 1;
    err_clear(&d->err);
    if (ou_filter && *ou_filter && !(d->ou_filter = strdup(ou_filter))) {
        free(d);
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* Organizations is global: its endpoint and signing region are the partition's. */
    if (endpoint_resolve("organizations", home_region ? home_region : "us-east-1", &d->ep, err) <
        0) {
        org_discovery_free(d);
        return NULL;
    }
    snprintf(d->url, sizeof d->url, "%s/", d->ep.url);
    d->creds = creds_ref(creds);

    if (start_call(d, ORG_OP_DESCRIBE_ORGANIZATION, 0, NULL, err) < 0) {
        org_discovery_free(d);
        return NULL;
    }
    /* Something is queued: from here on failures arrive through on_done. */
    struct err e;
    err_clear(&e);
    if (start_call(d, ORG_OP_LIST_ROOTS, 0, NULL, &e) < 0)
        walk_fail(d, &e, op_names[ORG_OP_LIST_ROOTS]);
    else if (start_call(d, ORG_OP_LIST_POLICIES, 0, NULL, &e) < 0)
        scp_fail(d, &e, op_names[ORG_OP_LIST_POLICIES]);
    return d;
}

void org_discover_stop(struct org_discovery *d, const struct err *why)
{
    if (d)
        walk_fail(d, why, NULL);
}

void org_discovery_free(struct org_discovery *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_ous; i++) {
        free(d->ous[i].id);
        free(d->ous[i].name);
        free(d->ous[i].path);
        free(d->ous[i].id_path);
    }
    free(d->ous);
    while (d->pending) {
        struct pending_page *p = d->pending;
        d->pending = p->next;
        org_page_cleanup(&p->page);
        free(p);
    }
    while (d->read_head) {
        struct scp_work *s = d->read_head;
        d->read_head = s->next;
        scp_free(s);
    }
    free(d->seen.slot);
    free(d->org_id);
    free(d->management_id);
    free(d->ou_filter);
    creds_unref(d->creds);
    free(d);
}
