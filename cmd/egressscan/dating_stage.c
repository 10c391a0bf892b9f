/* dating_stage.c - the dating stage of a scan: storage says which periods the scan opened are
 * changes, the scanner asks EKS when each was made, storage records it. Here the two meet. */
#include "cmd/egressscan/dating_stage.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "scanner/dating.h"
#include "storage/mode_dating.h"

void dating_stage_run(struct db *db, long long scan_id, struct http_engine *engine,
                      struct creds_chain *chain, const struct dating_options *opts,
                      struct dating_stats *stats)
{
    struct dating_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    struct mode_change *ch = NULL;
    struct dating_item *items = NULL;
    struct mode_dating *rec = NULL;
    size_t n = 0;
    long long more = 0;
    struct err e;
    err_clear(&e);
    if (db_mode_changes(db, scan_id, DATING_CLUSTERS_MAX, &ch, &n, &more, &e) < 0) {
        log_warn("scan", "mode changes not dated: %s (%s)", e.message, e.code);
        return;
    }
    if (more > 0)
        log_warn("scan",
                 "%lld more mode changes than the %d dated per scan: those stay undated "
                 "(cluster_history.update_status NULL)",
                 more, DATING_CLUSTERS_MAX);
    if (n == 0)
        goto out;
    items = calloc(n, sizeof *items);
    rec = calloc(n, sizeof *rec);
    if (!items || !rec) {
        log_warn("scan", "mode changes not dated: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].account_id = ch[i].account_id;
        items[i].region = ch[i].region;
        items[i].cluster_name = ch[i].cluster_name;
        items[i].egress_mode = ch[i].egress_mode;
        items[i].observed_at = ch[i].observed_at;
        items[i].ref = ch[i].interval_id;
    }
    if (dating_run(engine, chain, opts, items, n, stats, &e) < 0)
        log_warn("scan", "mode changes not (all) dated: %s (%s)", e.message, e.code);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dating_item *it = &items[i];
        if (it->result != DATING_FOUND && it->result != DATING_NO_UPDATE)
            continue;
        rec[m].interval_id = it->ref;
        rec[m].update_status = it->result == DATING_FOUND ? it->update_status : "none";
        rec[m].update_id = it->result == DATING_FOUND ? it->update_id : NULL;
        rec[m].changed_at = it->changed_at;
        m++;
    }
    if (db_record_mode_dating(db, rec, m, &e) < 0)
        log_warn("scan", "mode changes not recorded: %s (%s)", e.message, e.code);
    log_info("scan",
             "mode changes dated from EKS: %ld clusters (%ld dated by an update, %ld with no "
             "egress update, %ld not dated), %ld ListUpdates and %ld DescribeUpdate calls",
             stats->clusters, stats->found, stats->no_update, stats->failed, stats->list_calls,
             stats->describe_calls);
out:
    free(rec);
    free(items);
    db_mode_changes_free(ch, n);
}
