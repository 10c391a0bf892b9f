/* mode_dating.h - the mode periods a scan opened that are to be dated from EKS (a mode change, or
 * a new cluster whose mode is not the default in a target scanned before), and what the dating
 * found, recorded on those periods (cluster_history: changed_at, update_id, update_status).
 * Knows libpq. */
#ifndef EGRESSSCAN_MODE_DATING_H
#define EGRESSSCAN_MODE_DATING_H

#include <stddef.h>

#include "common/err.h"

struct db;

/* One period opened by the scan. Strings belong to the array (db_mode_changes_free). */
struct mode_change {
    long long interval_id;
    char *account_id;
    char *region;
    char *cluster_name;
    char *egress_mode;  /* verbatim; NULL when the API reported none (AWS_MANAGED) */
    double observed_at; /* the period's valid_from (epoch s) */
    int first_seen;     /* 1: a new cluster (no earlier period), 0: a mode change */
};

/* The periods that scan_id opened and that are to be dated, not dated yet, oldest first, at most
 * max (*more: how many beyond). A period is to be dated when the cluster's previous period had
 * another mode (NULL counted as AWS_MANAGED), or when there is none and the mode is not
 * AWS_MANAGED and the target had been scanned ok before (the very first scan of a target dates
 * nothing: nothing changed between scans). *out is NULL when none. -1 with err (SQLSTATE). */
int db_mode_changes(struct db *db, long long scan_id, size_t max, struct mode_change **out,
                    size_t *n, long long *more, struct err *err);
void db_mode_changes_free(struct mode_change *c, size_t n);

/* What the dating found for one period. */
struct mode_dating {
    long long interval_id;
    const char *update_status; /* Successful, Failed, Cancelled, InProgress or "none" */
    const char *update_id;     /* NULL for "none" */
    double changed_at;         /* epoch s, Successful only; 0: unknown */
};

/* Records them in one transaction (a period already dated is left as it is). -1 with err. */
int db_record_mode_dating(struct db *db, const struct mode_dating *d, size_t n, struct err *err);

#endif
