/* dating.h - when a mode change was made, from EKS itself: for the few clusters whose egress
 * mode a scan saw change, a short second pass on the scan's HTTP engine reads each cluster's
 * updates (ListUpdates, DescribeUpdate; bounded per cluster) and finds the
 * ControlPlaneEgressUpdate that made the observed mode. */
#ifndef EGRESSSCAN_DATING_H
#define EGRESSSCAN_DATING_H

#include <stddef.h>

#include "common/err.h"

struct http_engine;
struct creds_chain;

/* Per cluster: at most this many ListUpdates pages (100 ids each) and DescribeUpdate calls; a
 * cluster with more updates is not dated (TooManyUpdates), never guessed from a part. */
#define DATING_PAGES_MAX 5
#define DATING_DESCRIBES_MAX 100
/* Clusters looked up at once. */
#define DATING_ACTIVE_MAX 32

enum dating_result {
    DATING_NOT_LOOKED_UP = 0,
    DATING_FOUND,     /* update_id and update_status; changed_at when Successful */
    DATING_NO_UPDATE, /* no egress update towards the observed mode (replaced, or created so) */
    DATING_FAILED     /* the lookup failed: err says why */
};

/* One cluster to date. The caller fills the inputs; dating_run the outputs. */
struct dating_item {
    const char *account_id;
    const char *region;
    const char *cluster_name;
    const char *egress_mode; /* the mode observed; NULL: AWS_MANAGED (the API's default) */
    double observed_at;      /* when the scan saw it (epoch s): an update made later is no cause */
    long long ref;           /* the caller's (e.g. the period to record on); left alone */

    enum dating_result result;
    char update_id[65];
    char update_status[16]; /* Successful, Failed, Cancelled, InProgress */
    double changed_at;      /* the update's createdAt when Successful; else 0 */
    struct err err;
    int list_calls, describe_calls; /* requests made for this cluster (retries not counted) */
};

struct dating_options {
    const char *role_name;   /* default "EgressScanReadOnly" */
    const char *external_id; /* optional */
    const char *home_region; /* STS; default "us-east-1" */
    const char *partition;   /* role ARNs; default: the home region's partition */
};

struct dating_stats {
    long clusters, found, no_update, failed;
    long list_calls, describe_calls, assume_role_accounts;
};

/* Dates items[0..n) on engine (credentials: AssumeRole of the role in each account, once per
 * account, from chain's base credentials). Among a cluster's ControlPlaneEgressUpdate updates
 * whose ControlPlaneEgressMode value is the observed mode and that were made before
 * observed_at, the newest Successful one dates the change; failing that, the newest of the
 * others (Failed, Cancelled, InProgress) is recorded as such, undated; failing that, none.
 * A cluster whose lookup fails (its AWS error, MalformedResponse, TooManyUpdates) fails alone.
 * Returns 0 (see each item), -1 with err only when the engine itself failed. */
int dating_run(struct http_engine *engine, struct creds_chain *chain,
               const struct dating_options *opts, struct dating_item *items, size_t n,
               struct dating_stats *stats, struct err *err);

/* The choice above, for one DescribeUpdate answer: 1 when (type, value, created_at) is an
 * egress update towards mode (NULL: AWS_MANAGED) made at or before observed_at. */
int dating_update_matches(const char *type, const char *value, double created_at, const char *mode,
                          double observed_at);

#endif
