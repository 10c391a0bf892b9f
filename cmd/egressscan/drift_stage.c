/* drift_stage.c - joins storage (the scan's snapshot, the findings) and the pure drift
 * evaluation for one scan. */
#include "cmd/egressscan/drift_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "intent/drift.h"
#include "storage/findings.h"

const char *const finding_kind_names[FINDING_KINDS] = {
    "noncompliant_cluster", "unenforced_intent", "scp_conflict",     "unscanned_target",
    "mode_changed",         "unknown_mode",      "exception_expired"};

struct collected {
    struct finding **items;
    size_t n, cap;
    struct drift_summary *summary;
    struct cluster_judged *judged; /* ARNs borrowed from the snapshot */
    size_t n_judged, cap_judged;
};

static int collect_judged(void *ud, const struct drift_cluster *c, enum cluster_judgement j)
{
    struct collected *k = ud;
    if (!c->arn || !c->arn[0])
        return 0;
    if (k->n_judged == k->cap_judged) {
        size_t cap = k->cap_judged ? k->cap_judged * 2 : 64;
        struct cluster_judged *a = realloc(k->judged, cap * sizeof *a);
        if (!a)
            return -1;
        k->judged = a;
        k->cap_judged = cap;
    }
    k->judged[k->n_judged++] = (struct cluster_judged){c->arn, j};
    return 0;
}

static int collect(void *ud, const struct finding *f)
{
    struct collected *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct finding **items = realloc(c->items, cap * sizeof *items);
        if (!items)
            return -1;
        c->items = items;
        c->cap = cap;
    }
    struct finding *copy = finding_copy(f);
    if (!copy)
        return -1;
    c->items[c->n++] = copy;
    for (int k = 0; k < FINDING_KINDS; k++)
        if (strcmp(f->kind, finding_kind_names[k]) == 0)
            c->summary->by_kind[k]++;
    enum report_severity sev = report_severity_of(f->severity);
    if (sev < REPORT_SEVERITIES)
        c->summary->by_severity[sev]++;
    c->summary->total++;
    return 0;
}

void drift_input_from_snapshot(const struct drift_snapshot *snap, const struct policy *policy,
                               time_t now, struct drift_input *in)
{
    memset(in, 0, sizeof *in);
    in->accounts = snap->accounts;
    in->n_accounts = snap->n_accounts;
    in->scps = snap->scps;
    in->n_scps = snap->n_scps;
    in->scps_known = snap->scps_known;
    in->clusters = snap->clusters;
    in->n_clusters = snap->n_clusters;
    in->targets = snap->targets;
    in->n_targets = snap->n_targets;
    in->ok_regions = snap->ok_regions;
    in->n_ok_regions = snap->n_ok_regions;
    in->ok_accounts = snap->ok_accounts;
    in->n_ok_accounts = snap->n_ok_accounts;
    in->changes = snap->changes;
    in->n_changes = snap->n_changes;
    in->policy = policy;
    in->now = now;
    in->scanner_role = snap->scanner_role;
}

int drift_stage_run(struct db *db, long long scan_id, const struct policy *policy, time_t now,
                    struct drift_summary *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    struct drift_snapshot snap;
    memset(&snap, 0, sizeof snap);
    struct collected c = {.summary = out};
    struct finding *flat = NULL;
    int rc = -1;
    if (db_load_drift_snapshot_compact(db, scan_id, &snap, err) < 0)
        goto done;
    out->scps_known = snap.scps_known;
    out->scps_read = snap.scps_read;
    out->intent_scan_id = snap.intent_scan_id;
    out->fleet_scope = snap.fleet_scope;
    struct drift_input in;
    drift_input_from_snapshot(&snap, policy, now, &in);
    in.on_judged = collect_judged;
    in.judged_ud = &c;
    if (drift_evaluate(&in, collect, &c, &out->counts, err) < 0)
        goto done;
    flat = malloc((c.n ? c.n : 1) * sizeof *flat);
    if (!flat) {
        err_set(err, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c.n; i++)
        flat[i] = *c.items[i];
    struct findings_context ctx = {.scps_read = snap.scps_read,
                                   .have_policy = policy != NULL,
                                   .intent_scan_id = snap.intent_scan_id,
                                   .judgements = c.judged,
                                   .n_judgements = c.n_judged};
    if (db_write_findings_ctx(db, scan_id, flat, c.n, &ctx, &out->fleet, err) < 0)
        goto done;
    log_info("drift", "scan %lld: %ld findings", scan_id, out->total);
    rc = 0;
done:
    free(flat);
    for (size_t i = 0; i < c.n; i++)
        free(c.items[i]);
    free(c.items);
    free(c.judged);
    db_drift_snapshot_free(&snap);
    return rc;
}

void drift_summary_print(const struct drift_summary *s)
{
    printf("  findings  %ld", s->total);
    const char *sep = ": ";
    for (int k = 0; k < FINDING_KINDS; k++)
        if (s->by_kind[k]) {
            printf("%s%ld %s", sep, s->by_kind[k], finding_kind_names[k]);
            sep = ", ";
        }
    const struct drift_counts *f = &s->fleet;
    printf("\n  compliance %ld verified clusters%s: %ld compliant, %ld non-compliant, %ld exempt, "
           "%ld unknown",
           f->clusters, s->fleet_scope ? "" : " of the fleet", f->compliant, f->noncompliant,
           f->exempt, f->unknown);
    if (f->unverified)
        printf("; %ld unverified (not scanned ok by the latest scan that tried them: not counted)",
               f->unverified);
    printf("\n");
}
