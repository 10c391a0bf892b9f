/* dating.c - the dating pass after a scan: for each changed cluster, the account's role (one
 * AssumeRole per account, shared through the STS cache), the cluster's update ids
 * (ListUpdates, at most DATING_PAGES_MAX pages), each update (DescribeUpdate, at most
 * DATING_DESCRIBES_MAX), and the egress update that made the observed mode. At most
 * DATING_ACTIVE_MAX clusters are worked on at once, started as the engine asks for work. */
#include "scanner/dating.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "scanner/creds.h"
#include "scanner/eks.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/pages.h"
#include "scanner/scheduler.h"
#include "scanner/sts.h"

struct pass {
    struct http_engine *engine;
    struct sts_cache *sts;
    struct dating_options o;
    struct dating_item *items;
    size_t n, next;
    int active;
    struct dating_stats *stats;
};

/* One cluster being dated. */
struct job {
    struct pass *p;
    struct dating_item *it;
    char role_arn[SCHED_ROLE_NAME_MAX +
                  64]; /* as the scheduler's: arn:PARTITION:iam::ACCOUNT:role/NAME */
    struct aws_credentials *creds;
    char **ids; /* collected over the pages */
    size_t n_ids;
    struct page_tokens pages; /* ListUpdates pages read and the nextTokens they gave */
    int pending;              /* DescribeUpdate answers awaited */
    int failed;
    /* the newest Successful egress update towards the mode, and the newest other one */
    char ok_id[65], other_id[65], other_status[16];
    double ok_at, other_at;
    int have_ok, have_other;
};

int dating_update_matches(const char *type, const char *value, double created_at, const char *mode,
                          double observed_at)
{
    if (strcmp(type, EKS_EGRESS_UPDATE_TYPE) != 0 || !value[0])
        return 0;
    if (strcmp(value, mode ? mode : "AWS_MANAGED") != 0)
        return 0;
    /* made after the scan saw the mode: not what made it (an update without a time counts) */
    return observed_at <= 0 || created_at <= observed_at;
}

static void pump(struct pass *p);

static void job_finish(struct job *j)
{
    struct dating_item *it = j->it;
    struct dating_stats *st = j->p->stats;
    if (j->failed) {
        it->result = DATING_FAILED;
        st->failed++;
        log_warn("scan", "dating the mode change of cluster %s (%s %s): %s (%s)", it->cluster_name,
                 it->account_id, it->region, it->err.message, it->err.code);
    } else if (j->have_ok || j->have_other) {
        it->result = DATING_FOUND;
        snprintf(it->update_id, sizeof it->update_id, "%s", j->have_ok ? j->ok_id : j->other_id);
        snprintf(it->update_status, sizeof it->update_status, "%s",
                 j->have_ok ? "Successful" : j->other_status);
        it->changed_at = j->have_ok ? j->ok_at : 0;
        st->found++;
    } else {
        it->result = DATING_NO_UPDATE;
        st->no_update++;
    }
    for (size_t i = 0; i < j->n_ids; i++)
        free(j->ids[i]);
    free(j->ids);
    page_tokens_free(&j->pages);
    creds_unref(j->creds);
    j->p->active--;
    free(j);
}

static void job_fail(struct job *j, const struct err *e)
{
    if (!j->failed) {
        j->failed = 1;
        j->it->err = *e;
    }
}

static void on_describe(void *ud, const struct eks_update *u, const struct err *e)
{
    struct job *j = ud;
    if (!u) {
        job_fail(j, e);
    } else if (dating_update_matches(u->type, u->egress_mode, u->created_at, j->it->egress_mode,
                                     j->it->observed_at)) {
        if (strcmp(u->status, "Successful") == 0) {
            if (!j->have_ok || u->created_at > j->ok_at) {
                j->have_ok = 1;
                j->ok_at = u->created_at;
                snprintf(j->ok_id, sizeof j->ok_id, "%s", u->id);
            }
        } else if (!j->have_other || u->created_at > j->other_at) {
            j->have_other = 1;
            j->other_at = u->created_at;
            snprintf(j->other_id, sizeof j->other_id, "%s", u->id);
            snprintf(j->other_status, sizeof j->other_status, "%s", u->status);
        }
    }
    if (--j->pending == 0)
        job_finish(j);
}

static void describe_all(struct job *j)
{
    struct dating_item *it = j->it;
    if (j->n_ids > DATING_DESCRIBES_MAX) {
        struct err e;
        err_clear(&e);
        err_set(&e, "TooManyUpdates",
                "%zu updates (at most %d are read per cluster): the change is not dated", j->n_ids,
                DATING_DESCRIBES_MAX);
        job_fail(j, &e);
    }
    if (j->failed || j->n_ids == 0) {
        job_finish(j);
        return;
    }
    j->pending = 1; /* held until every request is submitted */
    for (size_t i = 0; i < j->n_ids && !j->failed; i++) {
        struct err e;
        err_clear(&e);
        j->pending++;
        it->describe_calls++;
        j->p->stats->describe_calls++;
        if (eks_describe_update_submit(j->p->engine, j->creds, it->region, it->cluster_name,
                                       j->ids[i], it->account_id, on_describe, j, &e) < 0) {
            j->pending--;
            it->describe_calls--;
            j->p->stats->describe_calls--;
            job_fail(j, &e);
        }
    }
    if (--j->pending == 0)
        job_finish(j);
}

static void list_page(struct job *j, const char *token);

static void on_list(void *ud, const struct eks_update_page *page, const struct err *e)
{
    struct job *j = ud;
    if (!page) {
        job_fail(j, e);
        job_finish(j);
        return;
    }
    struct err x;
    err_clear(&x);
    char **grown = realloc(j->ids, (j->n_ids + page->n + 1) * sizeof *grown);
    if (!grown)
        goto nomem;
    j->ids = grown;
    for (size_t i = 0; i < page->n; i++) {
        j->ids[j->n_ids] = strdup(page->ids[i]);
        if (!j->ids[j->n_ids])
            goto nomem;
        j->n_ids++;
    }
    int next = page_tokens_next(&j->pages, "ListUpdates", page->next_token, DATING_PAGES_MAX, &x);
    if (next == PAGES_END) {
        describe_all(j);
        return;
    }
    if (next == PAGES_CAPPED)
        err_set(&x, "TooManyUpdates",
                "more than %d pages of updates (the most read per cluster): the change is not "
                "dated",
                DATING_PAGES_MAX);
    if (next == PAGES_MORE) {
        list_page(j, page->next_token);
        return;
    }
    job_fail(j, &x);
    job_finish(j);
    return;
nomem:
    err_set(&x, ERR_NOMEM, "ListUpdates: out of memory");
    job_fail(j, &x);
    job_finish(j);
}

static void list_page(struct job *j, const char *token)
{
    struct err e;
    err_clear(&e);
    j->it->list_calls++;
    j->p->stats->list_calls++;
    if (eks_list_updates_submit(j->p->engine, j->creds, j->it->region, j->it->cluster_name,
                                j->it->account_id, token, 100, on_list, j, &e) < 0) {
        j->it->list_calls--;
        j->p->stats->list_calls--;
        job_fail(j, &e);
        job_finish(j);
    }
}

static void on_creds(void *ud, struct aws_credentials *creds, const struct err *e)
{
    struct job *j = ud;
    if (!creds) {
        job_fail(j, e);
        job_finish(j);
        return;
    }
    j->creds = creds;
    list_page(j, NULL);
}

static void start(struct pass *p, struct dating_item *it)
{
    struct job *j = calloc(1, sizeof *j);
    struct err e;
    err_clear(&e);
    it->result = DATING_FAILED;
    if (!j) {
        err_set(&it->err, ERR_NOMEM, "out of memory");
        p->stats->failed++;
        return;
    }
    j->p = p;
    j->it = it;
    p->active++;
    int w = snprintf(j->role_arn, sizeof j->role_arn, "arn:%s:iam::%s:role/%s", p->o.partition,
                     it->account_id, p->o.role_name);
    if (w < 0 || (size_t)w >= sizeof j->role_arn) {
        /* never a cut ARN: that would assume another role */
        struct err te;
        err_clear(&te);
        err_set(&te, ERR_INVALID, "role name too long for an ARN");
        job_fail(j, &te);
        job_finish(j);
        return;
    }
    struct sts_assume_role_params sp = {.role_arn = j->role_arn,
                                        .session_name = "egressscan",
                                        .external_id = p->o.external_id,
                                        .region = p->o.home_region,
                                        .pace_key = it->account_id};
    if (sts_cache_get(p->sts, &sp, on_creds, j, &e) < 0) {
        job_fail(j, &e);
        job_finish(j);
    }
}

static void pump(struct pass *p)
{
    while (p->next < p->n && p->active < DATING_ACTIVE_MAX && http_engine_hungry(p->engine))
        start(p, &p->items[p->next++]);
}

static void feed(void *ud)
{
    pump(ud);
}

static int cmp_account(const void *a, const void *b)
{
    const struct dating_item *x = a, *y = b;
    return strcmp(x->account_id, y->account_id);
}

int dating_run(struct http_engine *engine, struct creds_chain *chain,
               const struct dating_options *opts, struct dating_item *items, size_t n,
               struct dating_stats *stats, struct err *err)
{
    memset(stats, 0, sizeof *stats);
    stats->clusters = (long)n;
    if (n == 0)
        return 0;
    struct pass p = {.engine = engine, .o = *opts, .items = items, .n = n, .stats = stats};
    if (!p.o.role_name)
        p.o.role_name = "EgressScanReadOnly";
    if (!p.o.home_region)
        p.o.home_region = "us-east-1";
    if (!p.o.partition)
        p.o.partition = endpoint_partition(p.o.home_region);
    /* an account's clusters one after the other: its credentials are assumed once */
    qsort(items, n, sizeof *items, cmp_account);
    for (size_t i = 0; i < n; i++) {
        memset(&items[i].result, 0, sizeof *items - offsetof(struct dating_item, result));
        stats->assume_role_accounts +=
            i == 0 || strcmp(items[i].account_id, items[i - 1].account_id) != 0;
    }
    p.sts = sts_cache_new(engine, chain, err);
    if (!p.sts)
        return -1;
    http_engine_set_feeder(engine, feed, &p);
    pump(&p);
    int rc = http_engine_run(engine, err);
    http_engine_set_feeder(engine, NULL, NULL);
    sts_cache_free(p.sts);
    return rc < 0 ? -1 : 0;
}
