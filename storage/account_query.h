/* account_query.h - what the record says about one account, for a command that has to explain
 * why it has nothing else to show about it (`egressscan scps --account ID`): the account as last
 * known, whether a given scan's organization snapshot listed it, its rows of the coverage view
 * (the latest word on each of its targets) and when one of its targets was last scanned ok.
 * Knows libpq. */
#ifndef EGRESSSCAN_ACCOUNT_QUERY_H
#define EGRESSSCAN_ACCOUNT_QUERY_H

#include <stddef.h>

#include "common/err.h"

struct db;

/* A row of egressscan.coverage. Strings NULL when the column is. */
struct account_coverage {
    long long scan_id;
    char *region; /* "*" for an account-level word */
    char *status; /* ok, assume_role_denied, ..., as the view says */
    char *error_code;
    char *error_message;
    char *scanned_at; /* ISO 8601 UTC */
};

struct account_standing {
    int known;              /* egressscan.account has it (some scan saw it) */
    char *name;             /* Organizations name; NULL unknown */
    char *status;           /* Organizations status as last known (ACTIVE, SUSPENDED, ...); NULL */
    long long last_scan_id; /* the last scan that saw it; 0 unknown */
    char *last_seen;        /* ISO 8601 UTC; NULL unknown */
    int in_snapshot;        /* the scan asked about listed it (egressscan.scan_account) */
    char *snapshot_status;  /* its status in that snapshot; NULL unknown */
    struct account_coverage *coverage; /* '*' first, then by region */
    size_t n_coverage;
    char *last_ok_at; /* the latest ok target of a finalized scan; NULL: never */
};

/* Fills out for account_id as of scan_id (whose snapshot in_snapshot is about). Parameterized
 * queries only. 0, or -1 with err (database). out is to be freed with db_account_standing_free
 * in both cases. */
int db_account_standing(struct db *db, const char *account_id, long long scan_id,
                        struct account_standing *out, struct err *err);
void db_account_standing_free(struct account_standing *s);

#endif
