/* scheduler.c - turns the fleet into work on the HTTP engine: accounts stream in from
 * Organizations (or a fixed list) into a bounded set of active accounts; each assumes its role,
 * learns its regions and lists and describes clusters per region; each finished target is handed
 * to the caller and freed, so memory does not grow with the fleet.
 *
 * With Organizations, the SCPs decide before an account's regions fan out: a region where they
 * deny the scanner's role eks:ListClusters is not called but recorded as scp_denied. An account
 * whose regions are known before the SCPs are waits for them (only its fan-out does: its
 * AssumeRole and DescribeRegions go ahead) — not for the whole SCP side, which pages through
 * ListTargetsForPolicy of FullAWSAccess 20 accounts at a time (250 pages, 12 s at 50 ms, for
 * 5,000 accounts), but until every policy's content is known and the targets of those that could
 * deny eks:ListClusters are listed whole. Until the SCP side ends, only an explicit Deny skips a
 * region (a level without an Allow may still get FullAWSAccess); after it, the whole snapshot
 * decides. */
#include "scanner/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "intent/scp.h"
#include "scanner/creds.h"
#include "scanner/ec2.h"
#include "scanner/eks.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/org.h"
#include "scanner/pages.h"
#include "scanner/sts.h"

#define PROGRESS_INTERVAL_S 0.25

/* An account waiting for a slot: id and place in the organization copied. */
struct pending {
    struct pending *next;
    char id[16];
    char *ou_id_path; /* NULL: unknown */
    int is_management;
};

struct sched;

struct acct {
    struct sched *s;
    char id[16];
    char role_arn[SCHED_ROLE_NAME_MAX + 64]; /* arn:PARTITION:iam::ACCOUNT:role/NAME */
    size_t targets_left;
    int interrupted;  /* a stop cut one of its targets short: no on_account_done */
    char *ou_id_path; /* NULL: unknown (fixed list, or not listed by Organizations) */
    int is_management;
    /* regions known before the SCPs were: fanned out when they are */
    char **held;
    size_t n_held;
    struct acct *next_held;
};

struct tgt {
    struct acct *a;
    char region[32];
    struct aws_credentials *creds;
    char **names;
    size_t n_names, cap_names;
    struct cluster **clusters;
    size_t n_clusters;
    size_t describes_left;
    struct page_tokens pages; /* ListClusters pages so far and the nextTokens they gave */
    int failed;
    enum target_status status;
    struct err *err; /* the first failure; allocated only then (thousands of targets are under
                        way at once, and a struct err is most of a target's size) */
};

/* A policy as the SCP side announced it before its end. */
struct early_scp {
    struct scp_policy p; /* copies; targets only once complete */
    int harmful;         /* could deny eks:ListClusters wherever attached */
    int complete;        /* its targets are listed whole */
};

struct sched {
    struct http_engine *engine;
    struct creds_chain *chain;
    const struct scheduler_options *o;
    const struct scheduler_callbacks *cb;
    struct scheduler_result *res;
    struct sts_cache *sts;
    struct org_discovery *org;
    struct pending *head, *tail;
    int active, max_active;
    int pumping; /* pump() is on the stack */
    int discovery_done;
    int discovery_failed;
    int all_selected;       /* every account of the fleet went through select_account */
    long accounts_resolved; /* selected accounts whose targets are known */
    long targets_listed;    /* the targets of those accounts */
    struct err discovery_err;
    double t0;
    double last_progress;
    /* the SCPs: copies of what discovery reported, and their index once all are in */
    int scps_done; /* on_scps_done ran (at once without Organizations) */
    struct scp_policy *scps;
    size_t n_scps, cap_scps;
    struct scp_index ix;
    int ix_ready;
    int scps_copy_failed;
    /* early decisions, before the SCP side ends: once every policy's content is known and the
     * targets of every policy that could deny eks:ListClusters are complete (FullAWSAccess,
     * attached to every account, pages through ListTargetsForPolicy 20 targets at a time) */
    struct early_scp *early;
    size_t n_early, cap_early;
    int early_contents_known;
    int early_failed; /* out of memory: no early decision */
    int early_ready;  /* early_ix holds the policies read whole so far */
    struct scp_index early_ix;
    struct acct *held_head, *held_tail; /* accounts waiting for the SCPs to fan out */
    /* a fixed list read together with Organizations: sorted, without duplicates or excluded
     * accounts; seen[i] once Organizations listed listed[i] */
    const char **listed;
    unsigned char *seen;
    size_t n_listed;
    double stop_at; /* monotonic time of the stop (res->interrupted) */
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(const struct sched *s)
{
    if (s->o->as_of > 0)
        return s->o->as_of + (mono_now() - s->t0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int code_in(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

/* 1 when needle occurs in hay, ASCII case-insensitively. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

enum target_status scheduler_status_for(const char *stage, const struct err *e)
{
    static const char *const denied[] = {"AccessDenied",          "AccessDeniedException",
                                         "UnauthorizedOperation", "AuthorizationError",
                                         "UnauthorizedException", NULL};
    static const char *const region_off[] = {"UnrecognizedClientException",
                                             "InvalidClientTokenId",
                                             "AuthFailure",
                                             "OptInRequired",
                                             "RegionDisabledException",
                                             NULL};
    if (!e || !e->code[0])
        return TARGET_ERROR;
    if (awserr_is_throttle(e->code, e->http_status))
        return TARGET_THROTTLED;
    /* An SCP refusing the call (AssumeRole too: an SCP on the caller's account denies
     * sts:AssumeRole) is told apart from a missing permission: the fix is in the SCP. */
    if (code_in(e->code, denied) && (contains_ci(e->message, "explicit deny in a service control "
                                                             "policy") ||
                                     contains_ci(e->message, "no service control policy allows")))
        return TARGET_SCP_DENIED;
    if (strcmp(stage, "assume_role") == 0)
        return code_in(e->code, denied) ? TARGET_ASSUME_ROLE_DENIED : TARGET_ERROR;
    if (code_in(e->code, denied))
        return TARGET_ACCESS_DENIED;
    if (strcmp(stage, "clusters") == 0 && code_in(e->code, region_off))
        return TARGET_REGION_DISABLED;
    return TARGET_ERROR;
}

/* The total of targets, once every account selected knows its targets. */
static void update_targets_total(struct sched *s)
{
    struct scheduler_progress *pr = &s->res->progress;
    if (pr->targets_total < 0 && s->all_selected && !s->discovery_failed && !s->res->stopped &&
        s->accounts_resolved >= pr->accounts_total)
        pr->targets_total = s->targets_listed;
}

static void report_progress(struct sched *s, int force)
{
    update_targets_total(s);
    if (!s->cb->on_progress)
        return;
    double now = mono_now();
    if (!force && now - s->last_progress < PROGRESS_INTERVAL_S)
        return;
    s->last_progress = now;
    s->res->progress.elapsed_s = now - s->t0;
    s->cb->on_progress(s->cb->ud, &s->res->progress);
}

/* Hands a finished target out. After a stop nothing more is handed out or counted: targets cut
 * short by the stop are incomplete. */
static void emit(struct sched *s, const struct target_result *r)
{
    if (s->res->stopped)
        return;
    if (strcmp(r->region, "*") == 0) { /* the account's one target: suspended or failed whole */
        s->targets_listed++;
        if (r->status != TARGET_SUSPENDED)
            s->accounts_resolved++;
    }
    s->res->progress.targets_done++;
    if (target_status_failed(r->status))
        s->res->progress.targets_failed++;
    s->res->progress.clusters += (long)r->n_clusters;
    if (!s->cb->on_target)
        return;
    if (s->cb->on_target(s->cb->ud, r) < 0) {
        s->res->stopped = 1;
        log_error("scan", "stopping: results can no longer be stored");
        if (s->org && !s->discovery_done) {
            /* the rest of the fleet would only be listed to be dropped */
            struct err why;
            err_set(&why, "Stopped", "scan stopped: results could not be stored");
            org_discover_stop(s->org, &why);
        }
    }
    report_progress(s, 0);
}

static void emit_failure(struct sched *s, const char *account_id, const char *region,
                         enum target_status status, const struct err *e)
{
    struct target_result r = {.account_id = account_id,
                              .region = region,
                              .status = status,
                              .error_code = e && e->code[0] ? e->code : NULL,
                              .error_message = e && e->message[0] ? e->message : NULL,
                              .scanned_at = wall_now(s)};
    log_warn("scan", "account %s region %s: %s (%s: %s)", account_id, region,
             target_status_name(status), r.error_code ? r.error_code : "-",
             r.error_message ? r.error_message : "-");
    emit(s, &r);
}

static void pump(struct sched *s);

static void acct_free(struct acct *a)
{
    for (size_t i = 0; i < a->n_held; i++)
        free(a->held[i]);
    free(a->held);
    free(a->ou_id_path);
    free(a);
}

static int is_interrupt(const struct err *e)
{
    return e && strcmp(e->code, SCHED_INTERRUPTED) == 0;
}

static void account_done(struct acct *a)
{
    struct sched *s = a->s;
    sts_cache_forget(s->sts, a->role_arn);
    s->res->progress.accounts_done++;
    if (s->cb->on_account_done && !s->res->stopped && !a->interrupted)
        s->cb->on_account_done(s->cb->ud, a->id);
    s->active--;
    acct_free(a);
    pump(s);
}

static void target_free(struct tgt *t)
{
    for (size_t i = 0; i < t->n_names; i++)
        free(t->names[i]);
    free(t->names);
    for (size_t i = 0; i < t->n_clusters; i++)
        free(t->clusters[i]);
    free(t->clusters);
    page_tokens_free(&t->pages);
    creds_unref(t->creds);
    free(t->err);
    free(t);
}

static void target_finish(struct tgt *t)
{
    struct acct *a = t->a;
    struct sched *s = a->s;
    if (t->failed) {
        struct err nomem;
        if (!t->err)
            err_set(&nomem, ERR_NOMEM, "out of memory recording an error");
        emit_failure(s, a->id, t->region, t->err ? t->status : TARGET_ERROR,
                     t->err ? t->err : &nomem);
    } else {
        struct cluster *arr = NULL;
        if (t->n_clusters) {
            arr = malloc(t->n_clusters * sizeof *arr);
            if (!arr) {
                struct err e;
                err_set(&e, ERR_NOMEM, "out of memory collecting clusters");
                emit_failure(s, a->id, t->region, TARGET_ERROR, &e);
                goto done;
            }
            for (size_t i = 0; i < t->n_clusters; i++)
                arr[i] = *t->clusters[i];
        }
        struct target_result r = {.account_id = a->id,
                                  .region = t->region,
                                  .status = TARGET_OK,
                                  .clusters = arr,
                                  .n_clusters = t->n_clusters,
                                  .scanned_at = wall_now(s)};
        emit(s, &r);
        free(arr);
    }
done:
    target_free(t);
    if (--a->targets_left == 0)
        account_done(a);
}

static void target_fail(struct tgt *t, const char *stage, const struct err *e)
{
    if (is_interrupt(e))
        t->a->interrupted = 1;
    if (!t->failed) {
        t->failed = 1;
        t->status = scheduler_status_for(stage, e);
        t->err = malloc(sizeof *t->err);
        if (t->err)
            *t->err = *e;
    }
}

static struct sts_assume_role_params role_params(const struct acct *a);

/* A target's requests are signed with the freshest credentials the cache holds for its account
 * (which refreshes them in the background when they near expiry): a target with many pages and
 * clusters can outlive the credentials it started with. */
static void use_current_creds(struct tgt *t)
{
    struct sts_assume_role_params p = role_params(t->a);
    struct aws_credentials *c = sts_cache_current(t->a->s->sts, &p);
    if (!c)
        return; /* none cached, or expired: the engine refreshes them if AWS says so */
    creds_unref(t->creds);
    t->creds = c;
}

static void on_describe(void *ud, struct cluster *c, const struct err *e)
{
    struct tgt *t = ud;
    if (c) {
        t->clusters[t->n_clusters++] = c;
    } else if (strcmp(e->code, "ResourceNotFoundException") != 0) {
        /* deleted between ListClusters and DescribeCluster: simply gone; anything else fails
         * the target as a whole (its results are stored whole or not at all) */
        target_fail(t, "clusters", e);
    }
    if (--t->describes_left == 0)
        target_finish(t);
}

static void describe_all(struct tgt *t)
{
    struct sched *s = t->a->s;
    if (t->n_names == 0 || t->failed || s->res->stopped) {
        target_finish(t);
        return;
    }
    t->clusters = calloc(t->n_names, sizeof *t->clusters);
    if (!t->clusters) {
        struct err e;
        err_set(&e, ERR_NOMEM, "out of memory");
        target_fail(t, "clusters", &e);
        target_finish(t);
        return;
    }
    /* describes_left counts submissions still owed a callback; hold one extra until every
     * submit returned so a synchronous failure path cannot finish the target early */
    t->describes_left = t->n_names + 1;
    use_current_creds(t);
    for (size_t i = 0; i < t->n_names; i++) {
        struct err e;
        if (eks_describe_cluster_submit(s->engine, t->creds, t->region, t->names[i], t->a->id,
                                        on_describe, t, &e) < 0) {
            target_fail(t, "clusters", &e);
            t->describes_left--;
        }
    }
    if (--t->describes_left == 0)
        target_finish(t);
}

static void on_list(void *ud, const struct eks_cluster_page *page, const struct err *e);

static void list_page(struct tgt *t, const char *token)
{
    struct sched *s = t->a->s;
    struct err e;
    if (token)
        use_current_creds(t);
    if (eks_list_clusters_submit(s->engine, t->creds, t->region, token, s->o->page_size, t->a->id,
                                 on_list, t, &e) < 0) {
        target_fail(t, "clusters", &e);
        target_finish(t);
    }
}

/* 0 when the listing may go on after this page; -1 with e set when it may not. */
static int list_bounds(struct tgt *t, const struct eks_cluster_page *page, struct err *e)
{
    if (t->n_names + page->n > SCHED_CLUSTERS_MAX)
        return err_set(e, ERR_PARSE, "ListClusters: more than %d clusters in one target",
                       SCHED_CLUSTERS_MAX);
    int next =
        page_tokens_next(&t->pages, "ListClusters", page->next_token, SCHED_LIST_PAGES_MAX, e);
    if (next == PAGES_CAPPED)
        return err_set(e, ERR_PARSE, "ListClusters: more than %d pages in one target",
                       SCHED_LIST_PAGES_MAX);
    if (next < 0)
        return -1;
    return 0;
}

static void on_list(void *ud, const struct eks_cluster_page *page, const struct err *e)
{
    struct tgt *t = ud;
    if (!page) {
        target_fail(t, "clusters", e);
        target_finish(t);
        return;
    }
    struct err be;
    err_clear(&be); /* err_set keeps http_status: target_fail reads it */
    if (list_bounds(t, page, &be) < 0) {
        target_fail(t, "clusters", &be);
        target_finish(t);
        return;
    }
    if (t->n_names + page->n > t->cap_names) {
        size_t cap = t->cap_names ? t->cap_names : 16;
        while (cap < t->n_names + page->n)
            cap *= 2;
        char **names = realloc(t->names, cap * sizeof *names);
        if (!names)
            goto nomem;
        t->names = names;
        t->cap_names = cap;
    }
    for (size_t i = 0; i < page->n; i++) {
        char *n = strdup(page->names[i]);
        if (!n)
            goto nomem;
        t->names[t->n_names++] = n;
    }
    if (page->next_token && page->next_token[0] && !t->a->s->res->stopped) {
        list_page(t, page->next_token);
        return;
    }
    describe_all(t);
    return;
nomem : {
    struct err ne;
    err_clear(&ne);
    err_set(&ne, ERR_NOMEM, "out of memory listing clusters");
    target_fail(t, "clusters", &ne);
    target_finish(t);
}
}

static void on_target_creds(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct tgt *t = ud;
    if (!creds) {
        target_fail(t, "assume_role", e);
        target_finish(t);
        return;
    }
    t->creds = creds;
    list_page(t, NULL);
}

/* An account's id and the ARN of the role assumed in it. */
static void acct_name(struct acct *a, struct sched *s, const char *id)
{
    a->s = s;
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->role_arn, sizeof a->role_arn, "arn:%s:iam::%s:role/%s", s->o->partition, id,
             s->o->role_name);
}

static struct sts_assume_role_params role_params(const struct acct *a)
{
    const struct scheduler_options *o = a->s->o;
    struct sts_assume_role_params p = {.role_arn = a->role_arn,
                                       .session_name = "egressscan",
                                       .external_id = o->external_id,
                                       .region = o->home_region,
                                       .pace_key = a->id};
    return p;
}

/* The engine's refresher (see http_engine_set_refresher): AWS said that the credentials of a
 * request expired. Only an account's assumed-role credentials are refreshed here, through the
 * cache (one AssumeRole however many requests of the account were refused); base and
 * Organizations credentials are not (-1: the request fails). */
static int refresh_account_creds(void *ud, const char *pace_key, struct aws_credentials *stale,
                                 http_refreshed_fn done, void *cookie)
{
    struct sched *s = ud;
    char source[48];
    if (!pace_key || strlen(pace_key) != 12)
        return -1;
    snprintf(source, sizeof source, "assume-role:%s", pace_key); /* as sts names them */
    if (strcmp(stale->source, source) != 0)
        return -1;
    struct acct a;
    memset(&a, 0, sizeof a);
    acct_name(&a, s, pace_key);
    struct sts_assume_role_params p = role_params(&a);
    struct err e;
    log_debug("scan", "account %s: credentials expired; refreshing them", pace_key);
    if (sts_cache_refresh(s->sts, &p, stale, done, cookie, &e) < 0) {
        log_warn("scan", "account %s: credentials could not be refreshed: %s", pace_key, e.message);
        return -1;
    }
    return 0;
}

static void start_targets(struct acct *a, const char *const *regions, size_t n)
{
    struct sched *s = a->s;
    if (n == 0) {
        account_done(a);
        return;
    }
    /* hold one extra so that targets finishing synchronously cannot end the account early */
    a->targets_left = n + 1;
    for (size_t i = 0; i < n; i++) {
        struct tgt *t = calloc(1, sizeof *t);
        struct err e;
        if (!t) {
            err_set(&e, ERR_NOMEM, "out of memory");
            emit_failure(s, a->id, regions[i], TARGET_ERROR, &e);
            a->targets_left--;
            continue;
        }
        t->a = a;
        snprintf(t->region, sizeof t->region, "%s", regions[i]);
        struct sts_assume_role_params p = role_params(a);
        if (sts_cache_get(s->sts, &p, on_target_creds, t, &e) < 0) {
            target_fail(t, "assume_role", &e);
            target_finish(t);
        }
    }
    if (--a->targets_left == 0)
        account_done(a);
}

/* ---- the SCPs decide which regions are called ---- */

/* "p-1#A" or "p-1#A, p-2#B" (as many as fit). */
static void join_statements(const struct scp_decision *d, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->n_statements && o + 1 < size; i++) {
        int w = snprintf(out + o, size - o, "%s%s", i ? ", " : "", d->statements[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* Records region as not called: the SCPs deny the scanner's role eks:ListClusters there. */
static void emit_scp_denied(struct sched *s, const struct acct *a, const char *region,
                            const struct scp_decision *d)
{
    char stmts[SCP_MAX_STATEMENTS * 100], msg[sizeof stmts + sizeof a->role_arn + 128];
    join_statements(d, stmts, sizeof stmts);
    int many = d->n_statements > 1;
    snprintf(msg, sizeof msg, "not called: SCP statement%s %s %s eks:ListClusters to %s in %s",
             many ? "s" : "", stmts[0] ? stmts : "(none named)", many ? "deny" : "denies",
             a->role_arn, region);
    struct target_result r = {.account_id = a->id,
                              .region = region,
                              .status = TARGET_SCP_DENIED,
                              .error_code = "DeniedBySCP",
                              .error_message = msg,
                              .scanned_at = wall_now(s)};
    log_warn("scan", "account %s region %s: scp_denied (%s)", a->id, region, msg);
    emit(s, &r);
}

/* Early, only an explicit Deny is certain: a level without an Allow may still get one from a
 * policy whose targets are being listed. Keeps the Deny statements of d, or makes it not
 * denied when there is none. */
static void early_denies_only(struct scp_decision *d)
{
    static const char no_allow[] = "no Allow at ";
    size_t k = 0;
    for (size_t i = 0; i < d->n_statements; i++)
        if (strncmp(d->statements[i], no_allow, sizeof no_allow - 1) != 0)
            memmove(d->statements[k++], d->statements[i], sizeof d->statements[i]);
    d->n_statements = k;
    if (k == 0)
        d->verdict = SCP_UNEVALUABLE;
}

/* Starts the regions of a that the SCPs do not deny to its role; the others are recorded as
 * scp_denied. The SCPs decide only when they were read whole and the account's place in the
 * organization is known; never for the management account (SCPs do not apply there), and a
 * region they leave principal-dependent or unevaluable is scanned as usual. */
static void start_targets_checked(struct acct *a, const char *const *regions, size_t n)
{
    struct sched *s = a->s;
    /* the whole snapshot once read; before that, the early one (until the SCP side ends) */
    int early = !s->ix_ready;
    const struct scp_index *ix = s->ix_ready                       ? &s->ix
                                 : s->early_ready && !s->scps_done ? &s->early_ix
                                                                   : NULL;
    if (!ix || a->is_management || !a->ou_id_path || n == 0) {
        start_targets(a, regions, n);
        return;
    }
    struct scp_path *path = malloc(sizeof *path);
    const char **keep = malloc(n * sizeof *keep);
    struct err e;
    err_clear(&e);
    /* early, levels lack the policies still being listed (FullAWSAccess): expected */
    if (!path || !keep || scp_levels_for(ix, a->ou_id_path, a->id, path, &e) < 0 ||
        (!early && path->missing)) {
        if (path && keep)
            log_debug("scan", "account %s: SCPs not evaluated before scanning (%s)", a->id,
                      e.message[0] ? e.message : "a level of its path has no SCP");
        free(path);
        free(keep);
        start_targets(a, regions, n);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct scp_request req = {.action = "eks:ListClusters",
                                  .account_id = a->id,
                                  .region = regions[i],
                                  .mode = EGRESS_OMITTED,
                                  .principal_arn = a->role_arn};
        struct scp_decision d;
        scp_evaluate(path->levels, path->n_levels, &req, s->o->partition, &d);
        if (d.verdict == SCP_DENIED && early)
            early_denies_only(&d);
        if (d.verdict == SCP_DENIED)
            emit_scp_denied(s, a, regions[i], &d);
        else
            keep[k++] = regions[i];
    }
    free(path);
    start_targets(a, keep, k);
    free(keep);
}

/* The account's regions are known: they fan out now, or once the SCPs are (held copies). */
static void fan_out(struct acct *a, const char *const *regions, size_t n)
{
    struct sched *s = a->s;
    if (s->res->stopped)
        n = 0; /* nothing new after a stop */
    s->accounts_resolved++;
    s->targets_listed += (long)n;
    if (s->scps_done || s->early_ready || n == 0) {
        start_targets_checked(a, regions, n);
        return;
    }
    a->held = calloc(n, sizeof *a->held);
    for (size_t i = 0; a->held && i < n; i++) {
        if (!(a->held[i] = strdup(regions[i]))) {
            for (size_t j = 0; j < i; j++)
                free(a->held[j]);
            free(a->held);
            a->held = NULL;
        }
    }
    if (!a->held) {
        log_warn("scan",
                 "account %s: out of memory holding its regions; scanned without "
                 "waiting for the SCPs",
                 a->id);
        start_targets(a, regions, n);
        return;
    }
    a->n_held = n;
    a->next_held = NULL;
    if (s->held_tail)
        s->held_tail->next_held = a;
    else
        s->held_head = a;
    s->held_tail = a;
}

/* The SCP side of discovery ended: the accounts that waited fan out. */
static void release_held(struct sched *s)
{
    struct acct *a = s->held_head;
    s->held_head = s->held_tail = NULL;
    while (a) {
        struct acct *next = a->next_held;
        char **held = a->held;
        size_t n = a->n_held;
        a->held = NULL;
        a->n_held = 0;
        if (s->res->interrupted && !s->res->stopped) {
            /* its regions waited for the SCPs, which a stop ended: not scanned */
            struct err why;
            err_set(&why, SCHED_INTERRUPTED,
                    "not scanned: the scan was stopped while this account waited for the SCPs");
            a->interrupted = 1;
            emit_failure(s, a->id, "*", TARGET_ERROR, &why);
        }
        /* may free a; nothing new after a stop */
        start_targets_checked(a, (const char *const *)held,
                              s->res->stopped || s->res->interrupted ? 0 : n);
        for (size_t i = 0; i < n; i++)
            free(held[i]);
        free(held);
        a = next;
    }
}

static void on_regions(void *ud, const char *const *regions, size_t n, const struct err *e)
{
    struct acct *a = ud;
    if (!regions) {
        a->interrupted |= is_interrupt(e);
        emit_failure(a->s, a->id, "*", scheduler_status_for("regions", e), e);
        account_done(a);
        return;
    }
    /* Credentials of one partition never work in another: regions of other partitions (which
     * AWS does not list, but emulators do) are not part of this fleet. */
    const char **mine = malloc((n ? n : 1) * sizeof *mine);
    if (!mine) {
        struct err ne;
        err_set(&ne, ERR_NOMEM, "out of memory");
        emit_failure(a->s, a->id, "*", TARGET_ERROR, &ne);
        account_done(a);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(endpoint_partition(regions[i]), a->s->o->partition) == 0)
            mine[k++] = regions[i];
        else
            log_debug("scan", "account %s: region %s is outside partition %s; skipped", a->id,
                      regions[i], a->s->o->partition);
    }
    fan_out(a, mine, k);
    free(mine);
}

static void on_account_creds(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct acct *a = ud;
    struct sched *s = a->s;
    if (!creds) {
        a->interrupted |= is_interrupt(e);
        emit_failure(s, a->id, "*", scheduler_status_for("assume_role", e), e);
        account_done(a);
        return;
    }
    if (s->o->regions) {
        creds_unref(creds);
        fan_out(a, s->o->regions, s->o->n_regions);
        return;
    }
    struct err se;
    int rc =
        ec2_describe_regions_submit(s->engine, creds, s->o->home_region, a->id, on_regions, a, &se);
    creds_unref(creds);
    if (rc < 0) {
        emit_failure(s, a->id, "*", TARGET_ERROR, &se);
        account_done(a);
    }
}

/* Starts the account of pend (taking its ou_id_path). */
static void start_account(struct sched *s, struct pending *pend)
{
    const char *id = pend->id;
    struct acct *a = calloc(1, sizeof *a);
    struct err e;
    if (!a) {
        err_set(&e, ERR_NOMEM, "out of memory");
        emit_failure(s, id, "*", TARGET_ERROR, &e);
        s->res->progress.accounts_done++;
        if (s->cb->on_account_done && !s->res->stopped)
            s->cb->on_account_done(s->cb->ud, id);
        return;
    }
    acct_name(a, s, id);
    a->ou_id_path = pend->ou_id_path;
    pend->ou_id_path = NULL;
    a->is_management = pend->is_management;
    s->active++;
    if (s->cb->on_account_started)
        s->cb->on_account_started(s->cb->ud, a->id);
    struct sts_assume_role_params p = role_params(a);
    if (sts_cache_get(s->sts, &p, on_account_creds, a, &e) < 0) {
        emit_failure(s, id, "*", scheduler_status_for("assume_role", &e), &e);
        account_done(a);
    }
}

/* Starts waiting accounts while there are free slots and the engine is hungry: an account is
 * started when its requests would be sent at once, not queued behind thousands of others, so
 * that latency, the number of accounts under way and the memory they hold stay small (the
 * engine calls this as its feeder whenever its ready queue runs short). Re-entrant calls (an
 * account finishing synchronously inside start_account) are folded into the outer loop. */
static void pump(struct sched *s)
{
    if (s->pumping)
        return;
    s->pumping = 1;
    while (s->head && s->active < s->max_active && !s->res->stopped && !s->res->interrupted &&
           http_engine_hungry(s->engine)) {
        struct pending *p = s->head;
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        start_account(s, p);
        free(p->ou_id_path);
        free(p);
    }
    s->pumping = 0;
}

static void feed(void *ud)
{
    pump(ud);
}

static void pending_free_all(struct sched *s);

/* The engine's tick: acts on opts.stop. First no account is started any more (those waiting are
 * handed out as not scanned) and discovery ends; once the grace is over, whatever is still under
 * way is cut off (http_engine_abort: its targets fail with SCHED_INTERRUPTED). */
static void tick(void *ud)
{
    struct sched *s = ud;
    if (!s->o->stop || !*s->o->stop)
        return;
    double now = mono_now();
    if (!s->res->interrupted) {
        s->res->interrupted = 1;
        s->stop_at = now;
        long waiting = 0;
        struct err why;
        err_set(&why, SCHED_INTERRUPTED,
                "not scanned: the scan was stopped before this account was started");
        for (struct pending *p = s->head; p; p = p->next, waiting++) {
            /* not emit_failure: one log line for them all, not one each */
            struct target_result r = {.account_id = p->id,
                                      .region = "*",
                                      .status = TARGET_ERROR,
                                      .error_code = why.code,
                                      .error_message = why.message,
                                      .scanned_at = wall_now(s)};
            emit(s, &r);
        }
        pending_free_all(s);
        log_warn("scan",
                 "stopping: no account is started any more (%ld were waiting: not scanned); "
                 "%d accounts under way get up to %.0f s to finish",
                 waiting, s->active, s->o->stop_grace_s);
        if (s->org && !s->discovery_done) {
            err_set(&why, SCHED_INTERRUPTED, "scan stopped");
            org_discover_stop(s->org, &why);
        }
    }
    if (!s->res->cut_off && now - s->stop_at >= s->o->stop_grace_s) {
        s->res->cut_off = 1;
        log_warn("scan", "stopping: the grace of %.0f s is over: %d accounts under way are cut off",
                 s->o->stop_grace_s, s->active);
        struct err why;
        err_set(&why, SCHED_INTERRUPTED,
                "not scanned: the scan was stopped and its grace for requests under way ran out");
        http_engine_abort(s->engine, &why);
    }
}

static int excluded(const struct scheduler_options *o, const char *id)
{
    for (size_t i = 0; i < o->n_exclude; i++)
        if (strcmp(o->exclude_accounts[i], id) == 0)
            return 1;
    return 0;
}

static void pending_free_all(struct sched *s)
{
    while (s->head) {
        struct pending *p = s->head;
        s->head = p->next;
        free(p->ou_id_path);
        free(p);
    }
    s->tail = NULL;
}

/* Queues an account to be scanned; ou_id_path (copied) NULL when unknown. */
static void enqueue(struct sched *s, const char *id, const char *ou_id_path, int is_management)
{
    struct pending *p = calloc(1, sizeof *p);
    if (!p || (ou_id_path && !(p->ou_id_path = strdup(ou_id_path)))) {
        free(p);
        struct err e;
        err_set(&e, ERR_NOMEM, "out of memory");
        emit_failure(s, id, "*", TARGET_ERROR, &e);
        return;
    }
    snprintf(p->id, sizeof p->id, "%s", id);
    p->is_management = is_management;
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
}

/* ---- Organizations discovery callbacks ---- */

static void on_org(void *ud, const char *org_id, const char *mgmt)
{
    struct sched *s = ud;
    if (s->cb->on_organization)
        s->cb->on_organization(s->cb->ud, org_id, mgmt);
}

static void on_ou(void *ud, const struct org_unit *ou)
{
    struct sched *s = ud;
    if (s->cb->on_org_unit)
        s->cb->on_org_unit(s->cb->ud, ou);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void scp_copy_free(struct scp_policy *p)
{
    for (size_t i = 0; p->targets && i < p->n_targets; i++)
        free((char *)p->targets[i]);
    free((char **)p->targets);
    free((char *)p->id);
    free((char *)p->name);
    free((char *)p->content);
}

/* Deep copy of p into out; -1 on ENOMEM (out then holds nothing). */
static int scp_copy(struct scp_policy *out, const struct scp_policy *p)
{
    memset(out, 0, sizeof *out);
    char **targets = calloc(p->n_targets ? p->n_targets : 1, sizeof *targets);
    out->targets = (const char *const *)targets;
    int bad = !targets || !(out->id = strdup(p->id ? p->id : "")) ||
              (p->name && !(out->name = strdup(p->name))) ||
              !(out->content = strdup(p->content ? p->content : ""));
    for (size_t i = 0; !bad && i < p->n_targets; i++) {
        if (!(targets[i] = strdup(p->targets[i] ? p->targets[i] : "")))
            bad = 1;
        out->n_targets = i + 1;
    }
    out->aws_managed = p->aws_managed;
    if (bad) {
        scp_copy_free(out);
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

/* The SCPs are kept (copied) to decide which regions are called once all are in. */
static void on_scp(void *ud, const struct scp_policy *p)
{
    struct sched *s = ud;
    if (s->cb->on_scp)
        s->cb->on_scp(s->cb->ud, p);
    if (s->o->discover_only || s->scps_copy_failed)
        return;
    if (s->n_scps == s->cap_scps) {
        size_t cap = s->cap_scps ? s->cap_scps * 2 : 16;
        struct scp_policy *grown = realloc(s->scps, cap * sizeof *grown);
        if (!grown) {
            s->scps_copy_failed = 1;
            return;
        }
        s->scps = grown;
        s->cap_scps = cap;
    }
    if (scp_copy(&s->scps[s->n_scps], p) < 0)
        s->scps_copy_failed = 1;
    else
        s->n_scps++;
}

static void early_free(struct sched *s)
{
    for (size_t i = 0; i < s->n_early; i++)
        scp_copy_free(&s->early[i].p);
    free(s->early);
    s->early = NULL;
    s->n_early = s->cap_early = 0;
}

/* Every policy's content is known and every policy that could deny eks:ListClusters is listed
 * whole: the accounts that wait fan out, decided on what was read whole so far. */
static void early_check(struct sched *s)
{
    if (!s->early_contents_known || s->early_ready || s->early_failed || s->scps_done)
        return;
    for (size_t i = 0; i < s->n_early; i++)
        if (s->early[i].harmful && !s->early[i].complete)
            return;
    struct scp_policy *views = malloc((s->n_early ? s->n_early : 1) * sizeof *views);
    size_t k = 0;
    struct err e;
    err_clear(&e);
    for (size_t i = 0; views && i < s->n_early; i++)
        if (s->early[i].complete)
            views[k++] = s->early[i].p; /* the index borrows the target ids from s->early */
    if (!views || scp_index_build(&s->early_ix, views, k, NULL, 0, &e) < 0) {
        s->early_failed = 1; /* the accounts wait for the end of the SCP side */
        free(views);
        return;
    }
    free(views);
    s->early_ready = 1;
    log_debug("scan",
              "SCPs: %zu policies known, the ones that could deny eks:ListClusters "
              "listed whole: accounts fan out",
              s->n_early);
    release_held(s);
}

static void on_scp_progress(void *ud, const struct scp_policy *p, int with_targets)
{
    struct sched *s = ud;
    if (s->o->discover_only || s->scps_done || s->early_ready || s->early_failed)
        return;
    if (!p) {
        s->early_contents_known = 1;
        early_check(s);
        return;
    }
    struct early_scp *x = NULL;
    for (size_t i = 0; i < s->n_early && !x; i++)
        if (strcmp(s->early[i].p.id, p->id ? p->id : "") == 0)
            x = &s->early[i];
    if (!x) {
        if (s->n_early == s->cap_early) {
            size_t cap = s->cap_early ? s->cap_early * 2 : 16;
            struct early_scp *grown = realloc(s->early, cap * sizeof *grown);
            if (!grown) {
                s->early_failed = 1;
                return;
            }
            s->early = grown;
            s->cap_early = cap;
        }
        x = &s->early[s->n_early];
        memset(x, 0, sizeof *x);
        struct scp_policy content = *p;
        content.targets = NULL;
        content.n_targets = 0;
        const char *text = p->content ? p->content : "";
        struct scp_doc *doc = scp_doc_parse(p->id, text, strlen(text));
        if (!doc || scp_copy(&x->p, &content) < 0) {
            scp_doc_free(doc);
            s->early_failed = 1;
            return;
        }
        x->harmful = scp_doc_may_deny(doc, "eks:ListClusters");
        scp_doc_free(doc);
        s->n_early++;
    }
    if (with_targets && !x->complete) {
        struct scp_policy whole;
        if (scp_copy(&whole, p) < 0) {
            s->early_failed = 1;
            return;
        }
        scp_copy_free(&x->p);
        x->p = whole;
        x->complete = 1;
    }
    early_check(s);
}

static void on_scps_done(void *ud, enum org_scps state)
{
    struct sched *s = ud;
    if (s->scps_done)
        return;
    s->scps_done = 1;
    s->res->scps_state = state;
    s->res->scps_ok = org_scps_known(state);
    if (state == ORG_SCPS_READ && !s->o->discover_only) {
        struct err e;
        err_clear(&e);
        if (s->scps_copy_failed)
            log_warn("scan", "out of memory keeping the SCPs: every region is called, whatever "
                             "they deny");
        else if (scp_index_build(&s->ix, s->scps, s->n_scps, NULL, 0, &e) < 0)
            log_warn("scan", "%s: every region is called, whatever the SCPs deny", e.message);
        else
            s->ix_ready = 1;
    }
    release_held(s);
}

/* An account listed but not ACTIVE (SUSPENDED, PENDING_CLOSURE, CLOSED, ...): one account-level
 * result says so; it is not scanned (and is no failure). */
static void emit_suspended(struct sched *s, const struct account *a)
{
    char status[48], msg[80];
    size_t i = 0;
    for (; a->status[i] && i + 1 < sizeof status; i++) /* text from AWS: printable ASCII only */
        status[i] = a->status[i] > 0x20 && a->status[i] < 0x7f ? a->status[i] : '?';
    status[i] = '\0';
    snprintf(msg, sizeof msg, "account status %s", status);
    struct target_result r = {.account_id = a->id,
                              .region = "*",
                              .status = TARGET_SUSPENDED,
                              .error_message = msg,
                              .scanned_at = wall_now(s)};
    log_info("scan", "account %s is %s: recorded as suspended, not scanned", a->id, status);
    emit(s, &r);
}

/* One account of the fleet (discovered, or from the fixed list): scanned, recorded as suspended,
 * or left out (excluded; not in the list). */
static void select_account(struct sched *s, const struct account *a)
{
    if (excluded(s->o, a->id))
        return;
    if (s->listed) {
        const char **hit = bsearch(&a->id, s->listed, s->n_listed, sizeof *s->listed, cmp_str);
        if (!hit)
            return;
        s->seen[hit - s->listed] = 1;
    }
    if (a->status && strcmp(a->status, "ACTIVE") != 0) {
        emit_suspended(s, a);
        return;
    }
    if (s->res->progress.accounts_total < 0)
        s->res->progress.accounts_total = 0;
    s->res->progress.accounts_total++;
    if (s->o->discover_only) {
        if (s->cb->on_account_selected)
            s->cb->on_account_selected(s->cb->ud, a->id);
        return;
    }
    enqueue(s, a->id, a->ou_id_path, a->is_management);
}

static void on_accounts(void *ud, const struct account *accounts, size_t n)
{
    struct sched *s = ud;
    if (s->cb->on_accounts)
        s->cb->on_accounts(s->cb->ud, accounts, n);
    for (size_t i = 0; i < n; i++)
        select_account(s, &accounts[i]);
    pump(s);
}

static void on_discovery_done(void *ud, const struct err *e, int scps_ok)
{
    struct sched *s = ud;
    (void)scps_ok; /* on_scps_done said how the SCPs were read */
    s->discovery_done = 1;
    on_scps_done(s, ORG_SCPS_FAILED); /* no-op: it ran before (org.h) */
    if (e) {
        s->discovery_failed = 1;
        s->discovery_err = *e;
        /* the run fails: nothing it read of the organization is taken as complete */
        s->res->scps_state = ORG_SCPS_FAILED;
        s->res->scps_ok = 0;
        /* the fleet list is incomplete: start nothing more, finish what runs */
        pending_free_all(s);
    } else if (s->listed) {
        /* listed accounts Organizations does not list: scanned all the same, OU unknown */
        for (size_t i = 0; i < s->n_listed; i++) {
            if (s->seen[i])
                continue;
            log_warn("scan",
                     "account %s is not in the organization: scanned with its OU unknown (no "
                     "SCP is evaluated for it)",
                     s->listed[i]);
            struct account acc = {.id = s->listed[i]};
            if (s->cb->on_accounts)
                s->cb->on_accounts(s->cb->ud, &acc, 1);
            select_account(s, &acc);
        }
        pump(s);
    }
    if (s->res->progress.accounts_total < 0)
        s->res->progress.accounts_total = 0;
    s->all_selected = 1;
}

int scheduler_run(struct http_engine *engine, struct creds_chain *chain,
                  const struct scheduler_options *opts, const struct scheduler_callbacks *cb,
                  struct scheduler_result *out, struct err *err)
{
    struct scheduler_options o = *opts;
    if (!o.role_name)
        o.role_name = "EgressScanReadOnly";
    if (!o.home_region)
        o.home_region = "us-east-1";
    if (!o.partition)
        o.partition = endpoint_partition(o.home_region);
    if (o.page_size <= 0 || o.page_size > 100)
        o.page_size = 100;
    memset(out, 0, sizeof *out);
    if (strlen(o.role_name) > SCHED_ROLE_NAME_MAX || strlen(o.partition) > 32)
        return err_set(err, ERR_CONFIG,
                       "role name of %zu characters: IAM allows %d with the role's path",
                       strlen(o.role_name), SCHED_ROLE_NAME_MAX);
    /* a fixed list alone makes no Organizations call; with the org role it reads them too */
    int read_org = !o.accounts || o.org_role_arn;
    memset(out, 0, sizeof *out);
    out->progress.accounts_total = -1;
    out->progress.targets_total = -1;
    out->scps_state = read_org ? ORG_SCPS_FAILED : ORG_SCPS_NOT_READ; /* until they are read */
    out->scps_ok = 0;

    struct sched s = {.engine = engine,
                      .chain = chain,
                      .o = &o,
                      .cb = cb,
                      .res = out,
                      .max_active = o.max_active_accounts > 0 ? o.max_active_accounts : 256,
                      .t0 = mono_now(),
                      .scps_done = !read_org};
    int rc = -1;
    struct aws_credentials *base = NULL, *org_creds = NULL;
    const char **ids = NULL;
    size_t n_ids = 0;

    base = creds_chain_get(chain, err);
    if (!base)
        goto done;
    s.sts = sts_cache_new(engine, chain, err);
    if (!s.sts)
        goto done;

    if (o.accounts) {
        /* sorted and deduplicated: an account named twice is scanned once */
        ids = malloc(o.n_accounts * sizeof *ids + 1);
        if (!ids) {
            err_set(err, ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(ids, o.accounts, o.n_accounts * sizeof *ids);
        qsort(ids, o.n_accounts, sizeof *ids, cmp_str);
        for (size_t i = 0; i < o.n_accounts; i++)
            if ((i == 0 || strcmp(ids[i], ids[i - 1]) != 0) && !excluded(&o, ids[i]))
                ids[n_ids++] = ids[i];
    }

    if (!read_org) {
        struct account *list = calloc(n_ids ? n_ids : 1, sizeof *list);
        if (!list) {
            err_set(err, ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_ids; i++)
            list[i].id = ids[i];
        s.discovery_done = 1;
        on_accounts(&s, list, n_ids);
        s.all_selected = 1;
        free(list);
        if (out->progress.accounts_total < 0)
            out->progress.accounts_total = 0;
    } else {
        if (ids) {
            s.listed = ids;
            s.n_listed = n_ids;
            if (!(s.seen = calloc(n_ids ? n_ids : 1, 1))) {
                err_set(err, ERR_NOMEM, "out of memory");
                goto done;
            }
        }
        org_creds = creds_ref(base);
        if (o.org_role_arn) {
            struct sts_assume_role_params p = {.role_arn = o.org_role_arn,
                                               .session_name = "egressscan-org",
                                               .external_id = o.external_id,
                                               .region = o.home_region};
            creds_unref(org_creds);
            org_creds = sts_assume_role(engine, base, &p, err);
            if (!org_creds) {
                err_prefix(err, "assuming the Organizations role %s: ", o.org_role_arn);
                goto done;
            }
        }
        struct org_callbacks ocb = {.on_organization = on_org,
                                    .on_org_unit = on_ou,
                                    .on_accounts = on_accounts,
                                    .on_scp = on_scp,
                                    .on_done = on_discovery_done,
                                    .ud = &s,
                                    .on_scps_done = on_scps_done,
                                    .on_scp_progress = on_scp_progress};
        s.org = org_discover_start(engine, org_creds, o.home_region, o.ou, &ocb, err);
        if (!s.org) {
            err_prefix(err, "Organizations: ");
            goto done;
        }
    }

    /* accounts are started as the engine asks for work (see pump) */
    http_engine_set_feeder(engine, feed, &s);
    http_engine_set_refresher(engine, refresh_account_creds, &s);
    http_engine_set_tick(engine, tick, &s);
    int ran = http_engine_run(engine, err);
    http_engine_set_feeder(engine, NULL, NULL);
    http_engine_set_refresher(engine, NULL, NULL);
    http_engine_set_tick(engine, NULL, NULL);
    if (ran < 0) {
        /* the requests left point into this frame: a later run on the engine must not reach
         * them (what they held is lost with them: the engine failed) */
        http_engine_cancel(engine);
        goto done;
    }
    report_progress(&s, 1);
    if (out->stopped) { /* before discovery_failed: a stop also ends discovery */
        err_set(err, "Stopped", "scan stopped: results could not be stored");
        goto done;
    }
    if (out->interrupted) { /* before discovery_failed too: the stop ended discovery */
        rc = 0;
        goto done;
    }
    if (s.discovery_failed) {
        *err = s.discovery_err;
        err_prefix(err, "Organizations discovery failed: ");
        goto done;
    }
    rc = 0;
done:
    pending_free_all(&s);
    /* accounts still waiting for the SCPs (only when the engine failed) */
    while (s.held_head) {
        struct acct *a = s.held_head;
        s.held_head = a->next_held;
        acct_free(a);
    }
    org_discovery_free(s.org);
    sts_cache_free(s.sts);
    creds_unref(org_creds);
    creds_unref(base);
    scp_index_free(&s.ix);
    scp_index_free(&s.early_ix);
    early_free(&s);
    for (size_t i = 0; i < s.n_scps; i++)
        scp_copy_free(&s.scps[i]);
    free(s.scps);
    free(s.seen);
    free(ids);
    return rc;
}
