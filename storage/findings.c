/* findings.c - what drift evaluation reads from and writes to PostgreSQL: the snapshot of one scan
 * (one query per kind, in one read-only snapshot, copied into a single owned block), and the
 * scan's findings merged set-based with the stored ones (COPY into a staging table), so that a
 * finding that persists keeps its id and first_seen and one no longer raised is resolved. */
#include "storage/findings.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "storage/db_internal.h"

/* Serializes db_write_findings across sessions (two scans finalizing at once would otherwise both
 * open the same finding). One-bigint form like the migration lock: "egress\0\2". */
#define FINDINGS_LOCK_KEY "7306934700486098946"

static int scan_param(char out[32], long long scan_id, struct err *err)
{
    if (scan_id <= 0)
        return err_set(err, ERR_INVALID, "invalid scan id %lld", scan_id);
    snprintf(out, 32, "%lld", scan_id);
    return 0;
}

/* ---- scps_known ---- */

/* Runs sql, an UPDATE of the scan row $1 with RETURNING, with the scan id and the values
 * given; an id that matches no scan is an error. */
static int update_scan_row(struct db *db, long long scan_id, const char *sql, int n_values,
                           const char *const *values, const char *what, struct err *err)
{
    char id[32];
    if (scan_param(id, scan_id, err) < 0)
        return -1;
    const char *p[3] = {id, NULL, NULL};
    for (int i = 0; i < n_values && i < 2; i++)
        p[1 + i] = values[i];
    PGresult *r = db_query(db, sql, 1 + n_values, p, what, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
    return 0;
}

int db_set_scps_state(struct db *db, long long scan_id, enum org_scps state, struct err *err)
{
    const char *v[2] = {org_scps_name(state), org_scps_known(state) ? "true" : "false"};
    return update_scan_row(db, scan_id,
                           "UPDATE egressscan.scan SET scps_state = $2, scps_known = $3::boolean "
                           "WHERE scan_id = $1::bigint RETURNING scan_id",
                           2, v, "recording whether the SCPs were read", err);
}

int db_set_scps_known(struct db *db, long long scan_id, int known, struct err *err)
{
    return db_set_scps_state(db, scan_id, known ? ORG_SCPS_READ : ORG_SCPS_NOT_READ, err);
}

int db_set_scan_scope(struct db *db, long long scan_id, int targeted, struct err *err)
{
    const char *v[1] = {targeted ? "targeted" : "fleet"};
    return update_scan_row(db, scan_id,
                           "UPDATE egressscan.scan SET scope = $2 WHERE scan_id = $1::bigint "
                           "RETURNING scan_id",
                           1, v, "recording the scan's scope", err);
}

/* ---- the drift snapshot ---- */

/* Whether the scan read the SCPs itself (its state; for scans that did not record one, its flag,
 * or whether it stored any SCP at all), its scope, the scan whose SCP snapshot judges it (itself,
 * or the latest finalized scan that read them), and the role it assumed. */
static const char SQL_SNAP_SCAN[] =
    "SELECT k.own, s.scope = 'fleet',"
    "   CASE WHEN k.own THEN s.scan_id ELSE ("
    "     SELECT p.scan_id FROM egressscan.scan p"
    "     WHERE p.scan_id <> s.scan_id AND p.status IN ('succeeded', 'partial')"
    "       AND COALESCE(p.scps_state IN ('read', 'disabled'), p.scps_known, false)"
    "     ORDER BY p.started_at DESC, p.scan_id DESC LIMIT 1) END,"
    "   s.options ->> 'role_name'"
    " FROM egressscan.scan s"
    " CROSS JOIN LATERAL (SELECT COALESCE(s.scps_state IN ('read', 'disabled'), s.scps_known,"
    "   EXISTS (SELECT 1 FROM egressscan.scan_scp p WHERE p.scan_id = s.scan_id)) AS own) k"
    " WHERE s.scan_id = $1::bigint";

/* The scan's account snapshot, plus the accounts its coverage names that it did not snapshot
 * (their latest known state); what the scan did not learn (a fixed --accounts list learns no OU
 * path) is the latest known. Sorted by id in byte order (strcmp): callers may bsearch. */
static const char SQL_SNAP_ACCOUNTS[] =
    "SELECT u.account_id, u.name, u.ou_id_path, u.is_management FROM ("
    " SELECT sa.account_id, COALESCE(sa.name, a.name) AS name,"
    "   COALESCE(sa.ou_id_path, a.ou_id_path) AS ou_id_path,"
    "   sa.is_management OR COALESCE(a.is_management, false) AS is_management"
    " FROM egressscan.scan_account sa"
    " LEFT JOIN egressscan.account a ON a.account_id = sa.account_id"
    " WHERE sa.scan_id = $1::bigint"
    " UNION ALL"
    " SELECT a.account_id, a.name, a.ou_id_path, a.is_management FROM egressscan.account a"
    " WHERE a.account_id IN (SELECT r.account_id FROM egressscan.target_result r"
    "                        WHERE r.scan_id = $1::bigint)"
    "   AND NOT EXISTS (SELECT 1 FROM egressscan.scan_account sa"
    "                   WHERE sa.scan_id = $1::bigint AND sa.account_id = a.account_id)"
    ") u ORDER BY u.account_id COLLATE \"C\"";

/* $1: the scan whose SCP snapshot judges (SQL_SNAP_SCAN). */
static const char SQL_SNAP_SCPS[] =
    "SELECT policy_id, name, content, aws_managed FROM egressscan.scan_scp"
    " WHERE scan_id = $1::bigint ORDER BY policy_id COLLATE \"C\"";

/* Same order of policies as SQL_SNAP_SCPS: the two are merged in one pass. */
static const char SQL_SNAP_SCP_TARGETS[] =
    "SELECT policy_id, target_id FROM egressscan.scan_scp_target"
    " WHERE scan_id = $1::bigint ORDER BY policy_id COLLATE \"C\", target_id COLLATE \"C\"";

/* The current clusters of the accounts the scan covered; unverified: the scan did not scan the
 * cluster's target ok (it keeps its last known state and is not judged). */
static const char SQL_SNAP_CLUSTERS[] =
    "SELECT c.account_id, c.region, c.cluster_name, c.cluster_arn, c.egress_mode, c.tags::text,"
    "   NOT EXISTS (SELECT 1 FROM egressscan.target_result o WHERE o.scan_id = $1::bigint"
    "               AND o.account_id = c.account_id AND o.region = c.region"
    "               AND o.status = 'ok')"
    " FROM egressscan.cluster c"
    " WHERE c.gone_at IS NULL"
    "   AND c.account_id IN (SELECT r.account_id FROM egressscan.target_result r"
    "                        WHERE r.scan_id = $1::bigint)"
    " ORDER BY c.account_id COLLATE \"C\", c.region COLLATE \"C\", c.cluster_arn COLLATE \"C\"";

static const char SQL_SNAP_TARGETS[] =
    "SELECT account_id, region, status, error_code, error_message FROM egressscan.target_result"
    " WHERE scan_id = $1::bigint ORDER BY account_id COLLATE \"C\", region COLLATE \"C\"";

/* The compact snapshot's rows: those that are not ok (the ok ones come as bitsets). */
static const char SQL_SNAP_NOT_OK_TARGETS[] =
    "SELECT account_id, region, status, error_code, error_message FROM egressscan.target_result"
    " WHERE scan_id = $1::bigint AND status <> 'ok'"
    " ORDER BY account_id COLLATE \"C\", region COLLATE \"C\"";

/* The region table of the compact snapshot's ok bitsets: every region scanned ok, in byte order
 * (callers bsearch it). */
static const char SQL_SNAP_OK_REGIONS[] =
    "SELECT region FROM egressscan.target_result"
    " WHERE scan_id = $1::bigint AND status = 'ok' AND region <> '*'"
    " GROUP BY region ORDER BY region COLLATE \"C\"";

/* The scan's ok rows, streamed a row at a time into a bitset per account: each account's rows
 * together (the primary key's order), the accounts in any order. */
static const char SQL_SNAP_OK_ROWS[] =
    "SELECT account_id, region FROM egressscan.target_result"
    " WHERE scan_id = $1::bigint AND status = 'ok' ORDER BY account_id";

/* A period this scan opened that replaced one this scan closed (the same instant ends one and
 * starts the other): the cluster's mode changed. A reappearing cluster opens a period without
 * closing one here, so it is no change. */
static const char SQL_SNAP_CHANGES[] =
    "SELECT o.account_id, o.region, o.cluster_arn, c.egress_mode, o.egress_mode"
    " FROM egressscan.cluster_mode_interval o"
    " JOIN egressscan.cluster_mode_interval c"
    "   ON c.cluster_arn = o.cluster_arn AND c.closed_scan_id = $1::bigint"
    "  AND c.valid_to = o.valid_from"
    " WHERE o.opened_scan_id = $1::bigint"
    " ORDER BY o.account_id COLLATE \"C\", o.region COLLATE \"C\", o.cluster_arn COLLATE \"C\"";

enum {
    SNAP_ACCOUNTS,
    SNAP_SCPS,
    SNAP_SCP_TARGETS,
    SNAP_CLUSTERS,
    SNAP_TARGETS,
    SNAP_CHANGES,
    SNAP_OK_REGIONS, /* the compact snapshot only */
    SNAP_N
};

static const char *const snap_sql[SNAP_N] = {
    SQL_SNAP_ACCOUNTS, SQL_SNAP_SCPS,    SQL_SNAP_SCP_TARGETS, SQL_SNAP_CLUSTERS,
    SQL_SNAP_TARGETS,  SQL_SNAP_CHANGES, SQL_SNAP_OK_REGIONS};
static const char *const snap_what[SNAP_N] = {
    "loading the scan's accounts",  "loading the scan's SCPs",     "loading the SCP attachments",
    "loading the current clusters", "loading the scan's coverage", "loading the mode changes",
    "loading the scan's regions"};

/* One block: the arrays first (each aligned for any type), then the strings. */
struct arena {
    char *base;
    size_t used;
};

static size_t aligned(size_t n)
{
    const size_t a = _Alignof(max_align_t);
    return (n + a - 1) / a * a;
}

static void *arena_array(struct arena *a, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = a->base + a->used;
    a->used += aligned(n * size);
    return p;
}

/* Copies field (row, col) of r; NULL stays NULL. */
static const char *arena_str(struct arena *a, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    size_t len = (size_t)PQgetlength(r, row, col);
    char *d = a->base + a->used;
    memcpy(d, PQgetvalue(r, row, col), len);
    d[len] = '\0';
    a->used += len + 1;
    return d;
}

/* Bytes the strings of r take once copied (every field, a NUL each; none for NULL). */
static size_t strings_size(const PGresult *r)
{
    size_t n = 0;
    if (!r)
        return 0;
    int rows = PQntuples(r), cols = PQnfields(r);
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < cols; c++)
            n += (size_t)PQgetlength(r, i, c) + 1;
    return n;
}

static int is_true(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static enum target_status status_of(const char *name)
{
    for (int s = TARGET_OK; s < TARGET_STATUSES; s++)
        if (strcmp(name, target_status_name((enum target_status)s)) == 0)
            return (enum target_status)s;
    return TARGET_ERROR; /* the schema allows no other value */
}

/* Copies the results into one block owned by out (res[SNAP_OK_REGIONS] may be NULL). */
static int snapshot_fill(PGresult *const res[SNAP_N], const char *role, struct drift_snapshot *out,
                         struct err *err)
{
    const PGresult *ra = res[SNAP_ACCOUNTS], *rp = res[SNAP_SCPS], *rt = res[SNAP_SCP_TARGETS],
                   *rc = res[SNAP_CLUSTERS], *rr = res[SNAP_TARGETS], *rm = res[SNAP_CHANGES],
                   *rg = res[SNAP_OK_REGIONS];
    size_t na = (size_t)PQntuples(ra), np = (size_t)PQntuples(rp), nt = (size_t)PQntuples(rt),
           nc = (size_t)PQntuples(rc), nr = (size_t)PQntuples(rr), nm = (size_t)PQntuples(rm),
           ng = rg ? (size_t)PQntuples(rg) : 0;
    size_t size = aligned(na * sizeof(struct drift_account)) +
                  aligned(np * sizeof(struct scp_policy)) + aligned(nt * sizeof(const char *)) +
                  aligned(nc * sizeof(struct drift_cluster)) +
                  aligned(nr * sizeof(struct drift_target)) +
                  aligned(nm * sizeof(struct drift_change)) + aligned(ng * sizeof(const char *));
    for (int k = 0; k < SNAP_N; k++)
        size += strings_size(res[k]);
    size += role ? strlen(role) + 1 : 0;

    struct arena a = {malloc(size ? size : 1), 0};
    if (!a.base)
        return err_set(err, ERR_NOMEM, "out of memory loading the drift snapshot (%zu bytes)",
                       size);
    struct drift_account *accounts = arena_array(&a, na, sizeof *accounts);
    struct scp_policy *scps = arena_array(&a, np, sizeof *scps);
    const char **targets_of = arena_array(&a, nt, sizeof *targets_of);
    struct drift_cluster *clusters = arena_array(&a, nc, sizeof *clusters);
    struct drift_target *targets = arena_array(&a, nr, sizeof *targets);
    struct drift_change *changes = arena_array(&a, nm, sizeof *changes);
    const char **ok_regions = arena_array(&a, ng, sizeof *ok_regions);

    for (size_t i = 0; i < na; i++)
        accounts[i] = (struct drift_account){.id = arena_str(&a, ra, (int)i, 0),
                                             .name = arena_str(&a, ra, (int)i, 1),
                                             .ou_id_path = arena_str(&a, ra, (int)i, 2),
                                             .is_management = is_true(ra, (int)i, 3)};

    /* Both sorted by policy id in byte order: each policy's targets are the next run. */
    size_t t = 0;
    for (size_t i = 0; i < np; i++) {
        const char *id = PQgetvalue(rp, (int)i, 0);
        scps[i] = (struct scp_policy){.id = arena_str(&a, rp, (int)i, 0),
                                      .name = arena_str(&a, rp, (int)i, 1),
                                      .content = arena_str(&a, rp, (int)i, 2),
                                      .aws_managed = is_true(rp, (int)i, 3)};
        while (t < nt && strcmp(PQgetvalue(rt, (int)t, 0), id) < 0)
            t++; /* cannot happen (foreign key), but never attach to the wrong policy */
        size_t first = t;
        while (t < nt && strcmp(PQgetvalue(rt, (int)t, 0), id) == 0) {
            targets_of[t] = arena_str(&a, rt, (int)t, 1);
            t++;
        }
        scps[i].n_targets = t - first;
        scps[i].targets = scps[i].n_targets ? targets_of + first : NULL;
    }

    for (size_t i = 0; i < nc; i++)
        clusters[i] = (struct drift_cluster){.account_id = arena_str(&a, rc, (int)i, 0),
                                             .region = arena_str(&a, rc, (int)i, 1),
                                             .name = arena_str(&a, rc, (int)i, 2),
                                             .arn = arena_str(&a, rc, (int)i, 3),
                                             .egress_mode = arena_str(&a, rc, (int)i, 4),
                                             .tags_json = arena_str(&a, rc, (int)i, 5),
                                             .unverified = is_true(rc, (int)i, 6)};

    for (size_t i = 0; i < nr; i++)
        targets[i] = (struct drift_target){.account_id = arena_str(&a, rr, (int)i, 0),
                                           .region = arena_str(&a, rr, (int)i, 1),
                                           .status = status_of(PQgetvalue(rr, (int)i, 2)),
                                           .error_code = arena_str(&a, rr, (int)i, 3),
                                           .error_message = arena_str(&a, rr, (int)i, 4)};

    for (size_t i = 0; i < nm; i++)
        changes[i] = (struct drift_change){.account_id = arena_str(&a, rm, (int)i, 0),
                                           .region = arena_str(&a, rm, (int)i, 1),
                                           .arn = arena_str(&a, rm, (int)i, 2),
                                           .from_mode = arena_str(&a, rm, (int)i, 3),
                                           .to_mode = arena_str(&a, rm, (int)i, 4)};

    out->accounts = accounts;
    out->n_accounts = na;
    out->scps = scps;
    out->n_scps = np;
    out->clusters = clusters;
    out->n_clusters = nc;
    out->targets = targets;
    out->n_targets = nr;
    out->changes = changes;
    out->n_changes = nm;
    for (size_t i = 0; i < ng; i++)
        ok_regions[i] = arena_str(&a, rg, (int)i, 0);
    out->ok_regions = ok_regions;
    out->n_ok_regions = ng;
    if (role) {
        char *d = a.base + a.used;
        memcpy(d, role, strlen(role) + 1);
        a.used += strlen(role) + 1;
        out->scanner_role = d;
    }
    out->mem = a.base;
    return 0;
}

static int cmp_account_id(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct drift_account *)elem)->id);
}

static int cmp_region(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

/* Adds one ok row (account, region) to out's bitsets: a new entry when the account is not the
 * last one's (its rows come together), its id the snapshot's copy. */
static int ok_row_add(const PGresult *r, size_t words, size_t *cap, struct drift_snapshot *out,
                      struct err *err)
{
    const char *id = PQgetvalue(r, 0, 0), *region = PQgetvalue(r, 0, 1);
    size_t n = out->n_ok_accounts;
    if (n == 0 || strcmp(out->ok_accounts[n - 1].account_id, id) != 0) {
        const struct drift_account *a =
            bsearch(id, out->accounts, out->n_accounts, sizeof *a, cmp_account_id);
        if (!a) /* cannot happen: the accounts of the coverage are in the snapshot */
            return err_set(err, ERR_INVALID,
                           "the scan's coverage names account %.32s, not in its "
                           "snapshot",
                           id);
        if (n == *cap) {
            size_t c = *cap ? *cap * 2 : 1024;
            struct drift_ok_account *acc = realloc(out->ok_accounts, c * sizeof *acc);
            if (!acc)
                return err_set(err, ERR_NOMEM, "out of memory loading the scan's coverage");
            out->ok_accounts = acc;
            if (words) {
                uint64_t *bits = realloc(out->ok_bits, c * words * sizeof *bits);
                if (!bits)
                    return err_set(err, ERR_NOMEM, "out of memory loading the scan's coverage");
                out->ok_bits = bits;
            }
            *cap = c;
        }
        out->ok_accounts[n] = (struct drift_ok_account){a->id, NULL};
        if (words)
            memset(out->ok_bits + n * words, 0, words * sizeof *out->ok_bits);
        out->n_ok_accounts = ++n;
    }
    if (strcmp(region, "*") == 0)
        return 0;
    const char *const *at =
        bsearch(region, out->ok_regions, out->n_ok_regions, sizeof *at, cmp_region);
    if (!at) /* cannot happen: the table is of the same rows, in the same snapshot */
        return err_set(err, ERR_INVALID,
                       "the scan's coverage names region %.40s, not in its "
                       "region table",
                       region);
    size_t bit = (size_t)(at - out->ok_regions);
    out->ok_bits[(n - 1) * words + bit / 64] |= (uint64_t)1 << (bit % 64);
    return 0;
}

/* Streams the scan's ok rows into out->ok_accounts (single-row mode: libpq never holds a result
 * of them all, and neither do we: a bitset over out->ok_regions per account). */
static int load_ok_bitsets(struct db *db, const char *const p[1], struct drift_snapshot *out,
                           struct err *err)
{
    static const char what[] = "loading the scan's ok coverage";
    PGconn *conn = db_pgconn(db);
    size_t words = (out->n_ok_regions + 63) / 64, cap = 0;
    if (!PQsendQueryParams(conn, SQL_SNAP_OK_ROWS, 1, NULL, p, NULL, NULL, 0))
        return db_fail(db, NULL, what, err);
    int failed = !PQsetSingleRowMode(conn);
    if (failed)
        db_fail(db, NULL, what, err);
    PGresult *r;
    /* every result is read, also after a failure: the connection is then ready again */
    while ((r = PQgetResult(conn))) {
        ExecStatusType st = PQresultStatus(r);
        if (!failed && st == PGRES_SINGLE_TUPLE)
            failed = ok_row_add(r, words, &cap, out, err) < 0;
        else if (!failed && st != PGRES_TUPLES_OK)
            failed = db_fail(db, r, what, err) < 0;
        PQclear(r);
    }
    if (failed)
        return -1;
    for (size_t i = 0; i < out->n_ok_accounts; i++)
        out->ok_accounts[i].regions = words ? out->ok_bits + i * words : NULL;
    return 0;
}

/* compact: the ok coverage rows as bitsets (out->ok_accounts), targets the others. */
static int load_snapshot(struct db *db, long long scan_id, int compact, struct drift_snapshot *out,
                         struct err *err)
{
    int rc = -1, in_tx = 0;
    char id[32], intent[32] = "0";
    PGresult *scan = NULL, *res[SNAP_N] = {NULL};
    memset(out, 0, sizeof *out);
    if (scan_param(id, scan_id, err) < 0)
        goto cleanup;
    const char *p[1] = {id};
    const char *pi[1] = {intent};

    /* One snapshot of the database for every query: a scan writing meanwhile changes nothing. */
    if (db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                   "starting the snapshot", err) < 0)
        goto cleanup;
    in_tx = 1;
    scan = db_query(db, SQL_SNAP_SCAN, 1, p, "reading the scan", err);
    if (!scan)
        goto cleanup;
    if (PQntuples(scan) == 0) {
        err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        goto cleanup;
    }
    if (!PQgetisnull(scan, 0, 2))
        snprintf(intent, sizeof intent, "%s", PQgetvalue(scan, 0, 2));
    for (int k = 0; k < SNAP_N; k++) {
        int of_intent = k == SNAP_SCPS || k == SNAP_SCP_TARGETS;
        const char *sql = snap_sql[k];
        if (k == SNAP_OK_REGIONS && !compact)
            continue;
        if (k == SNAP_TARGETS && compact)
            sql = SQL_SNAP_NOT_OK_TARGETS;
        if (!(res[k] = db_query(db, sql, 1, of_intent ? pi : p, snap_what[k], err)))
            goto cleanup;
    }
    if (snapshot_fill(res, PQgetisnull(scan, 0, 3) ? NULL : PQgetvalue(scan, 0, 3), out, err) < 0)
        goto cleanup;
    for (int k = 0; k < SNAP_N; k++) {
        PQclear(res[k]); /* copied: not held while the ok rows stream */
        res[k] = NULL;
    }
    if (compact && load_ok_bitsets(db, p, out, err) < 0)
        goto cleanup;
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    out->scps_read = is_true(scan, 0, 0);
    out->fleet_scope = is_true(scan, 0, 1);
    out->intent_scan_id = strtoll(intent, NULL, 10);
    out->scps_known = out->intent_scan_id > 0;
    rc = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    PQclear(scan);
    for (int k = 0; k < SNAP_N; k++)
        PQclear(res[k]);
    if (rc < 0)
        db_drift_snapshot_free(out);
    return rc;
}

int db_load_drift_snapshot(struct db *db, long long scan_id, struct drift_snapshot *out,
                           struct err *err)
{
    return load_snapshot(db, scan_id, 0, out, err);
}

int db_load_drift_snapshot_compact(struct db *db, long long scan_id, struct drift_snapshot *out,
                                   struct err *err)
{
    return load_snapshot(db, scan_id, 1, out, err);
}

void db_drift_snapshot_free(struct drift_snapshot *s)
{
    if (!s)
        return;
    free(s->mem);
    free(s->ok_accounts);
    free(s->ok_bits);
    memset(s, 0, sizeof *s);
}

/* ---- writing findings ---- */

/* FOR SHARE: the scan is neither finalized nor marked aborted while its findings are written. */
static const char SQL_WF_SCAN[] =
    "SELECT s.status, EXISTS (SELECT 1 FROM egressscan.scan_compliance c"
    "                         WHERE c.scan_id = s.scan_id)"
    " FROM egressscan.scan s WHERE s.scan_id = $1::bigint FOR SHARE OF s";

/* Dropped at the end of the transaction (db_write_findings runs once per scan). */
static const char SQL_WF_STAGE[] =
    "CREATE TEMP TABLE egressscan_stage_finding (ord bigint, kind text, severity text,"
    " account_id text, region text, cluster_arn text, source text, observed_mode text,"
    " allowed_modes text[], details jsonb, finding_id bigint,"
    " reopen boolean NOT NULL DEFAULT false, is_new boolean NOT NULL DEFAULT false)"
    " ON COMMIT DROP";

static const char SQL_WF_COPY[] =
    "COPY pg_temp.egressscan_stage_finding (ord, kind, severity, account_id, region, cluster_arn,"
    " source, observed_mode, allowed_modes, details) FROM STDIN";

static const char SQL_WF_ANALYZE[] = "ANALYZE pg_temp.egressscan_stage_finding";

/* clang-format off */
#define SAME_IDENTITY(a, b)                                                                        \
    a ".kind = " b ".kind AND " a ".account_id = " b ".account_id"                                 \
    " AND " a ".region = " b ".region"                                                             \
    " AND COALESCE(" a ".cluster_arn, '') = COALESCE(" b ".cluster_arn, '')"                       \
    " AND " a ".source = " b ".source"

/* A resolution that does not count: the scan that made it wrote its findings but then failed or
 * was aborted (only finalized scans say what is no longer there). Such a finding is treated as
 * open. */
#define RESOLUTION_VOID(f)                                                                         \
    f ".resolved_scan_id IN (SELECT x.scan_id FROM egressscan.scan x"                              \
    " WHERE x.status IN ('failed', 'aborted'))"

/* No later lifetime of the same identity exists. */
#define LATEST_LIFETIME(f)                                                                         \
    "NOT EXISTS (SELECT 1 FROM egressscan.finding g WHERE " SAME_IDENTITY("g", f)                  \
    " AND g.first_seen > " f ".first_seen)"
/* clang-format on */

/* "This scan is at least as new as the one that last raised f." */
#define SCAN_NOT_OLDER                                                                             \
    "(f.last_seen < sc.started_at OR (f.last_seen = sc.started_at"                                 \
    " AND COALESCE(f.last_scan_id, 0) <= sc.scan_id))"

/* A finding raised twice by one scan is one finding: the last one given wins. */
static const char SQL_WF_DEDUPE[] =
    "DELETE FROM pg_temp.egressscan_stage_finding a USING pg_temp.egressscan_stage_finding b"
    " WHERE " SAME_IDENTITY("a", "b") " AND a.ord < b.ord";

/* Each staged finding is matched with the stored finding of the same identity: first the lifetime
 * that contains the scan (a late scan, older than the one that resolved it), then the open one,
 * then the latest lifetime if its resolution is void (it is reopened). */
/* clang-format off */
static const char SQL_WF_MATCH[] =
    "UPDATE pg_temp.egressscan_stage_finding st SET finding_id = m.finding_id,"
    "   reopen = m.reopen FROM ("
    " SELECT DISTINCT ON (s.ord) s.ord, f.finding_id,"
    "   (f.resolved_at IS NOT NULL AND v.void) AS reopen"
    " FROM pg_temp.egressscan_stage_finding s"
    " JOIN egressscan.finding f ON " SAME_IDENTITY("f", "s")
    " CROSS JOIN egressscan.scan sc"
    " CROSS JOIN LATERAL (SELECT COALESCE(" RESOLUTION_VOID("f") ", false) AS void) v"
    " WHERE sc.scan_id = $1::bigint"
    "   AND (f.resolved_at IS NULL"
    "        OR (NOT v.void AND f.first_seen <= sc.started_at"
    "            AND f.resolved_at > sc.started_at)"
    "        OR (v.void AND " LATEST_LIFETIME("f") "))"
    " ORDER BY s.ord,"
    "   CASE WHEN f.resolved_at IS NULL THEN 1 WHEN v.void THEN 2 ELSE 0 END,"
    "   f.first_seen DESC"
    ") m WHERE st.ord = m.ord";
/* clang-format on */

static const char SQL_WF_REOPEN[] =
    "UPDATE egressscan.finding f SET resolved_at = NULL, resolved_scan_id = NULL"
    " FROM pg_temp.egressscan_stage_finding st WHERE st.reopen AND f.finding_id = st.finding_id";

/* Whether this scan judged the finding f again (SPEC section 5), given $2:
 * it read the SCPs itself, $3: it had a declared policy. The target of a cluster finding must have
 * been scanned ok (a cluster no longer there is judged by that alone); an unscanned target must
 * have been tried again; what the finding rests on must have been evaluated. */
/* clang-format off */
#define TARGET_OK_IN_SCAN(f)                                                                       \
    "EXISTS (SELECT 1 FROM egressscan.target_result r WHERE r.scan_id = $1::bigint"                \
    " AND r.account_id = " f ".account_id AND r.region = " f ".region AND r.status = 'ok')"
#define CLUSTER_GONE(f)                                                                            \
    "EXISTS (SELECT 1 FROM egressscan.cluster c WHERE c.cluster_arn = " f ".cluster_arn"           \
    " AND c.gone_at IS NOT NULL)"
#define JUDGED_AGAIN(f)                                                                            \
    "CASE " f ".kind"                                                                              \
    " WHEN 'noncompliant_cluster' THEN " TARGET_OK_IN_SCAN(f) " AND (" CLUSTER_GONE(f)             \
    "   OR ((" f ".source NOT LIKE 'scp:%' OR $2::boolean)"                                        \
    "       AND (" f ".source NOT LIKE 'policy:%' OR $3::boolean)))"                               \
    " WHEN 'unknown_mode' THEN " TARGET_OK_IN_SCAN(f)                                              \
    " WHEN 'mode_changed' THEN " TARGET_OK_IN_SCAN(f)                                              \
    " WHEN 'unscanned_target' THEN EXISTS (SELECT 1 FROM egressscan.target_result r"               \
    "   WHERE r.scan_id = $1::bigint AND r.account_id = " f ".account_id"                         \
    "     AND (r.region = " f ".region OR (" f ".region = '*' AND r.region <> '*')))"              \
    " WHEN 'unenforced_intent' THEN $2::boolean AND $3::boolean"                                   \
    " WHEN 'scp_conflict' THEN $2::boolean AND $3::boolean"                                        \
    " WHEN 'exception_expired' THEN $3::boolean"                                                   \
    " ELSE false END"
/* clang-format on */

/* A matched finding takes the newest scan's view of it; an older scan only moves first_seen. A
 * scan that raised it without judging it again (it borrowed the SCPs it rests on, or had no
 * policy file) carries it over unchanged: last_seen and last_scan_id stay with the scan that
 * last confirmed it. */
static const char SQL_WF_UPDATE[] =
    "UPDATE egressscan.finding f SET severity = st.severity, observed_mode = st.observed_mode,"
    "   allowed_modes = st.allowed_modes, details = COALESCE(st.details, '{}'::jsonb),"
    "   last_seen = sc.started_at, last_scan_id = sc.scan_id"
    " FROM pg_temp.egressscan_stage_finding st, egressscan.scan sc"
    " WHERE sc.scan_id = $1::bigint AND f.finding_id = st.finding_id AND " SCAN_NOT_OLDER
    "   AND " JUDGED_AGAIN("f");

static const char SQL_WF_FIRST_SEEN[] =
    "UPDATE egressscan.finding f SET first_seen = sc.started_at, first_scan_id = sc.scan_id"
    " FROM pg_temp.egressscan_stage_finding st, egressscan.scan sc"
    " WHERE sc.scan_id = $1::bigint AND f.finding_id = st.finding_id"
    "   AND f.first_seen > sc.started_at";

/* New findings get their ids first (in the order given), so that no join is needed to know
 * which stored row a staged finding became. */
static const char SQL_WF_NEW_IDS[] =
    "UPDATE pg_temp.egressscan_stage_finding st SET finding_id = n.id, is_new = true FROM ("
    " SELECT o.ord, pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('egressscan.finding',"
    "   'finding_id')::regclass) AS id"
    " FROM (SELECT ord FROM pg_temp.egressscan_stage_finding WHERE finding_id IS NULL"
    "       ORDER BY ord) o) n"
    " WHERE st.ord = n.ord";

/* One raised by a scan older than a scan whose findings are already written (and that covered
 * its account and was not failed or aborted) was not raised by that newer scan: it is resolved
 * by it at once. (MATERIALIZED: the usually empty list of newer scans is computed once.) */
static const char SQL_WF_INSERT[] =
    "WITH sc AS (SELECT scan_id, started_at FROM egressscan.scan WHERE scan_id = $1::bigint),"
    " newer AS MATERIALIZED ("
    "  SELECT s2.scan_id, s2.started_at FROM egressscan.scan s2"
    "  JOIN egressscan.scan_compliance c ON c.scan_id = s2.scan_id CROSS JOIN sc"
    "  WHERE s2.status NOT IN ('failed', 'aborted')"
    "    AND (s2.started_at > sc.started_at"
    "         OR (s2.started_at = sc.started_at AND s2.scan_id > sc.scan_id)))"
    " INSERT INTO egressscan.finding (finding_id, kind, severity, account_id, region, cluster_arn,"
    "   source, observed_mode, allowed_modes, details, first_seen, first_scan_id, last_seen,"
    "   last_scan_id, resolved_at, resolved_scan_id) OVERRIDING SYSTEM VALUE"
    " SELECT st.finding_id, st.kind, st.severity, st.account_id, st.region, st.cluster_arn,"
    "   st.source, st.observed_mode, st.allowed_modes, COALESCE(st.details, '{}'::jsonb),"
    "   sc.started_at, sc.scan_id, sc.started_at, sc.scan_id, nx.started_at, nx.scan_id"
    " FROM pg_temp.egressscan_stage_finding st CROSS JOIN sc"
    " LEFT JOIN LATERAL ("
    "  SELECT n.scan_id, n.started_at FROM newer n"
    "  WHERE EXISTS (SELECT 1 FROM egressscan.target_result r"
    "                WHERE r.scan_id = n.scan_id AND r.account_id = st.account_id)"
    "  ORDER BY n.started_at, n.scan_id LIMIT 1) nx ON true"
    " WHERE st.is_new ORDER BY st.ord";

/* clang-format off */
/* The findings of the accounts this scan covered that it did not raise and did judge again are
 * resolved by it, when it is newer than the scan that last raised them (a late older scan
 * resolves nothing newer). A lifetime that a newer scan ended is ended earlier by this one; a
 * void resolution is redone. */
static const char SQL_WF_RESOLVE[] =
    "UPDATE egressscan.finding f SET resolved_at = sc.started_at, resolved_scan_id = sc.scan_id,"
    "   resolved_reason = CASE WHEN f.cluster_arn IS NOT NULL AND f.kind <> 'exception_expired'"
    "                          AND " CLUSTER_GONE("f") " THEN 'cluster_gone'"
    "                          ELSE 'not_raised' END"
    " FROM egressscan.scan sc"
    " WHERE sc.scan_id = $1::bigint"
    "   AND f.account_id IN (SELECT r.account_id FROM egressscan.target_result r"
    "                        WHERE r.scan_id = $1::bigint)"
    "   AND (f.last_seen < sc.started_at OR (f.last_seen = sc.started_at"
    "        AND COALESCE(f.last_scan_id, 0) < sc.scan_id))"
    "   AND (f.resolved_at IS NULL"
    "        OR (f.resolved_at > sc.started_at"
    "            AND NOT COALESCE(" RESOLUTION_VOID("f") ", false))"
    "        OR (COALESCE(" RESOLUTION_VOID("f") ", false) AND " LATEST_LIFETIME("f") "))"
    "   AND NOT EXISTS (SELECT 1 FROM pg_temp.egressscan_stage_finding st"
    "                   WHERE st.finding_id = f.finding_id)"
    "   AND " JUDGED_AGAIN("f");
/* clang-format on */

/* Which findings the scan raised, each as the record stands once the scan wrote them (severity,
 * modes, details: an old week's report shows them as they were then). */
static const char SQL_WF_SCAN_FINDINGS[] =
    "INSERT INTO egressscan.scan_finding (scan_id, finding_id, severity, observed_mode,"
    "   allowed_modes, details, recorded)"
    " SELECT DISTINCT ON (f.finding_id) $1::bigint, f.finding_id, f.severity, f.observed_mode,"
    "   f.allowed_modes, f.details, true"
    " FROM pg_temp.egressscan_stage_finding st"
    " JOIN egressscan.finding f ON f.finding_id = st.finding_id"
    " ORDER BY f.finding_id"
    " ON CONFLICT (scan_id, finding_id) DO UPDATE SET severity = EXCLUDED.severity,"
    "   observed_mode = EXCLUDED.observed_mode, allowed_modes = EXCLUDED.allowed_modes,"
    "   details = EXCLUDED.details, recorded = true";

/* ---- the fleet: what a fleet scan did not try leaves it ---- */

/* A fleet scan that is the newest finalized-or-running fleet scan (a late older one changes
 * nothing) takes out the targets of the fleet it did not try: the account is no longer listed
 * (left the organization; with a fixed list and no Organizations: removed from the
 * configuration), listed but not ACTIVE (suspended), listed but not scanned (excluded), or scanned
 * without that region. An account-level failure keeps its regions (nothing says they are gone). */
static const char SQL_WF_LEFT[] =
    "CREATE TEMP TABLE egressscan_stage_left ON COMMIT DROP AS"
    " SELECT ft.account_id, ft.region,"
    "   CASE WHEN sa.account_id IS NULL"
    "        THEN CASE WHEN sc.scps_state = 'not_read' THEN 'excluded'"
    "                  ELSE 'left_organization' END"
    "        WHEN sa.status IS NOT NULL AND sa.status <> 'ACTIVE' THEN 'suspended'"
    "        WHEN NOT EXISTS (SELECT 1 FROM egressscan.target_result r"
    "                         WHERE r.scan_id = sc.scan_id AND r.account_id = ft.account_id)"
    "        THEN 'excluded'"
    "        ELSE 'region_removed' END AS reason"
    " FROM egressscan.scan sc"
    " JOIN egressscan.fleet_target ft ON ft.left_at IS NULL"
    " LEFT JOIN egressscan.scan_account sa"
    "   ON sa.scan_id = sc.scan_id AND sa.account_id = ft.account_id"
    " WHERE sc.scan_id = $1::bigint AND sc.scope = 'fleet'"
    "   AND NOT EXISTS (SELECT 1 FROM egressscan.scan n"
    "                   WHERE n.scope = 'fleet' AND n.status IN ('succeeded', 'partial', 'running')"
    "                     AND EXISTS (SELECT 1 FROM egressscan.scan_compliance c"
    "                                 WHERE c.scan_id = n.scan_id)"
    "                     AND (n.started_at > sc.started_at"
    "                          OR (n.started_at = sc.started_at AND n.scan_id > sc.scan_id)))"
    "   AND NOT EXISTS (SELECT 1 FROM egressscan.target_result r"
    "                   WHERE r.scan_id = sc.scan_id AND r.account_id = ft.account_id"
    "                     AND r.region = ft.region)"
    "   AND NOT EXISTS (SELECT 1 FROM egressscan.target_result r"
    "                   WHERE r.scan_id = sc.scan_id AND r.account_id = ft.account_id"
    "                     AND r.region = '*' AND r.status <> 'suspended')";

/* Whether a left target row takes a thing of (account, region): every region for a reason about
 * the whole account. */
#define LEFT_COVERS(l, acct, reg)                                                                  \
    l ".account_id = " acct " AND (" l ".region = " reg " OR " l ".reason <> 'region_removed')"

static const char SQL_WF_LEAVE_TARGETS[] =
    "UPDATE egressscan.fleet_target ft SET left_at = sc.started_at, left_scan_id = sc.scan_id,"
    "   left_reason = l.reason"
    " FROM pg_temp.egressscan_stage_left l, egressscan.scan sc"
    " WHERE sc.scan_id = $1::bigint AND ft.account_id = l.account_id AND ft.region = l.region";

/* Their clusters leave the current views (after their last sighting, whatever the clock says)
 * and their open history periods close, with the reason. */
static const char SQL_WF_LEAVE_CLUSTERS[] =
    "WITH gone AS ("
    " UPDATE egressscan.cluster c"
    " SET gone_at = GREATEST(sc.started_at, c.last_seen + interval '1 microsecond'),"
    "   gone_reason = l.reason"
    " FROM (SELECT DISTINCT ON (c2.cluster_arn) c2.cluster_arn, l2.reason"
    "       FROM egressscan.cluster c2"
    "       JOIN pg_temp.egressscan_stage_left l2 ON " LEFT_COVERS(
        "l2", "c2.account_id",
        "c2.region") "       WHERE c2.gone_at IS NULL ORDER BY c2.cluster_arn, l2.reason) l,"
                     "   egressscan.scan sc"
                     " WHERE sc.scan_id = $1::bigint AND c.cluster_arn = l.cluster_arn"
                     " RETURNING c.cluster_arn, c.gone_at, c.gone_reason)"
                     " UPDATE egressscan.cluster_mode_interval i SET valid_to = g.gone_at,"
                     "   closed_scan_id = $1::bigint, closed_reason = g.gone_reason"
                     " FROM gone g WHERE i.cluster_arn = g.cluster_arn AND i.valid_to IS NULL";

/* Their open findings (not raised by this scan) resolve with the reason. */
static const char SQL_WF_LEAVE_FINDINGS[] =
    "UPDATE egressscan.finding f"
    " SET resolved_at = GREATEST(sc.started_at, f.last_seen), resolved_scan_id = sc.scan_id,"
    "   resolved_reason = l.reason"
    " FROM (SELECT DISTINCT ON (f2.finding_id) f2.finding_id, l2.reason"
    "       FROM egressscan.finding f2"
    "       JOIN pg_temp.egressscan_stage_left l2 ON " LEFT_COVERS(
        "l2", "f2.account_id",
        "f2.region") "       WHERE f2.resolved_at IS NULL ORDER BY f2.finding_id, l2.reason) l,"
                     "   egressscan.scan sc"
                     " WHERE sc.scan_id = $1::bigint AND f.finding_id = l.finding_id"
                     "   AND NOT EXISTS (SELECT 1 FROM pg_temp.egressscan_stage_finding st"
                     "                   WHERE st.finding_id = f.finding_id)";

/* ---- judgements and the fleet's compliance ---- */

static const char SQL_WF_JUDGED_STAGE[] =
    "CREATE TEMP TABLE egressscan_stage_judged (cluster_arn text, judgement text) ON COMMIT DROP";

static const char SQL_WF_JUDGED_COPY[] =
    "COPY pg_temp.egressscan_stage_judged (cluster_arn, judgement) FROM STDIN";

/* Only a change is written (an unchanged fleet adds nothing). */
static const char SQL_WF_JUDGED[] =
    "UPDATE egressscan.cluster c SET compliance = j.judgement"
    " FROM pg_temp.egressscan_stage_judged j"
    " WHERE c.cluster_arn = j.cluster_arn AND c.compliance IS DISTINCT FROM j.judgement";

/* The fleet after this scan, from the public views themselves (one definition of "verified"):
 * verified clusters by judgement (never judged counts as unknown), unverified apart, and the
 * fleet's coverage rows. */
static const char SQL_WF_COMPLIANCE[] =
    "INSERT INTO egressscan.scan_compliance (scan_id, day, clusters, compliant, noncompliant,"
    "   exempt, unknown, unverified, targets_total, targets_ok, targets_failed, intent_scan_id)"
    " SELECT s.scan_id, (s.started_at AT TIME ZONE 'UTC')::date, k.clusters, k.compliant,"
    "   k.noncompliant, k.exempt, k.unknown, k.unverified, t.total, t.ok, t.failed,"
    "   NULLIF($2::bigint, 0)"
    " FROM egressscan.scan s,"
    " (SELECT count(*) FILTER (WHERE verified)::integer AS clusters,"
    "    count(*) FILTER (WHERE verified AND compliance = 'compliant')::integer AS compliant,"
    "    count(*) FILTER (WHERE verified AND compliance = 'noncompliant')::integer"
    "      AS noncompliant,"
    "    count(*) FILTER (WHERE verified AND compliance = 'exempt')::integer AS exempt,"
    "    count(*) FILTER (WHERE verified AND (compliance = 'unknown' OR compliance IS NULL))"
    "      ::integer AS unknown,"
    "    count(*) FILTER (WHERE NOT verified)::integer AS unverified"
    "  FROM egressscan.current_clusters) k,"
    " (SELECT count(*)::integer AS total,"
    "    count(*) FILTER (WHERE status = 'ok')::integer AS ok,"
    "    count(*) FILTER (WHERE status NOT IN ('ok', 'suspended'))::integer AS failed"
    "  FROM egressscan.coverage) t"
    " WHERE s.scan_id = $1::bigint"
    " RETURNING clusters, compliant, noncompliant, exempt, unknown, unverified";

#define MODES_LITERAL_MAX 160

/* The text[] literal of a mode set ("{AWS_MANAGED,CUSTOMER_ROUTED}"), or NULL for the empty set
 * ("not relevant"). Mode names need no quoting. */
static const char *modes_literal(char out[MODES_LITERAL_MAX], unsigned modes)
{
    if (modes == 0)
        return NULL;
    size_t n = 0;
    out[n++] = '{';
    for (int m = 0; m < EGRESS_MODES; m++) {
        if (!(modes & EGRESS_BIT(m)))
            continue;
        const char *name = egress_mode_name((enum egress_mode)m);
        size_t len = strlen(name);
        if (n + len + 3 > MODES_LITERAL_MAX)
            return NULL; /* cannot happen with the names of model.c; never write past out */
        if (out[n - 1] != '{')
            out[n++] = ',';
        memcpy(out + n, name, len);
        n += len;
    }
    out[n++] = '}';
    out[n] = '\0';
    return out;
}

static int validate_findings(const struct finding *f, size_t n, struct err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *missing = !f[i].kind            ? "kind"
                              : !f[i].severity      ? "severity"
                              : !f[i].account_id    ? "account_id"
                              : !f[i].region        ? "region"
                              : !f[i].source        ? "source"
                              : !f[i].kind[0]       ? "kind"
                              : !f[i].account_id[0] ? "account_id"
                              : !f[i].region[0]     ? "region"
                              : !f[i].source[0]     ? "source"
                                                    : NULL;
        if (missing)
            return err_set(err, ERR_INVALID, "finding %zu has no %s", i, missing);
        if (f[i].cluster_arn && !f[i].cluster_arn[0])
            return err_set(err, ERR_INVALID, "finding %zu has an empty cluster ARN (NULL: none)",
                           i);
        if (f[i].allowed_modes & ~((1u << EGRESS_MODES) - 1))
            return err_set(err, ERR_INVALID, "finding %zu has unknown modes in allowed_modes 0x%x",
                           i, f[i].allowed_modes);
    }
    return 0;
}

/* The kinds whose allowed_modes is the intended set: {} when no mode is allowed (SPEC section 5);
 * for the others the column does not apply (NULL). */
static int allowed_modes_apply(const char *kind)
{
    return strcmp(kind, "noncompliant_cluster") == 0 || strcmp(kind, "unenforced_intent") == 0 ||
           strcmp(kind, "scp_conflict") == 0;
}

static int finding_row(struct buf *b, size_t ord, const struct finding *f)
{
    char num[32], modes[MODES_LITERAL_MAX];
    snprintf(num, sizeof num, "%zu", ord);
    const char *allowed = modes_literal(modes, f->allowed_modes);
    if (!allowed && allowed_modes_apply(f->kind))
        allowed = "{}";
    return db_copy_field(b, num, '\t') < 0 || db_copy_field(b, f->kind, '\t') < 0 ||
                   db_copy_field(b, f->severity, '\t') < 0 ||
                   db_copy_field(b, f->account_id, '\t') < 0 ||
                   db_copy_field(b, f->region, '\t') < 0 ||
                   db_copy_field(b, f->cluster_arn, '\t') < 0 ||
                   db_copy_field(b, f->source, '\t') < 0 ||
                   db_copy_field(b, f->observed_mode, '\t') < 0 ||
                   db_copy_field(b, allowed, '\t') < 0 ||
                   db_copy_field(b, f->details_json, '\n') < 0
               ? -1
               : 0;
}

/* Writes row i of n into b (COPY text format); -1 on ENOMEM. */
typedef int (*copy_row_fn)(struct buf *b, size_t i, const void *rows);

/* COPY of n rows with sql ("COPY ... FROM STDIN"), what naming it in errors. */
static int copy_rows(struct db *db, const char *sql, size_t n, copy_row_fn row, const void *rows,
                     const char *what, struct err *err)
{
    int rc = -1, in_copy = 0;
    struct buf b;
    buf_init(&b);
    PGresult *r = PQexecParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        db_fail(db, r, what, err);
        goto cleanup;
    }
    in_copy = 1;
    for (size_t i = 0; i < n; i++) {
        if (row(&b, i, rows) < 0) {
            err_set(err, ERR_NOMEM, "out of memory %s", what);
            goto cleanup;
        }
        if (db_copy_flush(db, &b, 0, err) < 0)
            goto cleanup;
    }
    if (db_copy_flush(db, &b, 1, err) < 0)
        goto cleanup;
    in_copy = 0;
    if (db_copy_finish(db, NULL, what, err) < 0)
        goto cleanup;
    rc = 0;

cleanup:
    if (in_copy) {
        struct err ignored;
        db_copy_finish(db, "egressscan: rows abandoned", what, &ignored);
    }
    PQclear(r);
    buf_cleanup(&b);
    return rc;
}

static int finding_copy_row(struct buf *b, size_t i, const void *rows)
{
    return finding_row(b, i, &((const struct finding *)rows)[i]);
}

static int judged_copy_row(struct buf *b, size_t i, const void *rows)
{
    const struct cluster_judged *j = &((const struct cluster_judged *)rows)[i];
    return db_copy_field(b, j->cluster_arn, '\t') < 0 ||
                   db_copy_field(b, cluster_judgement_name(j->judgement), '\n') < 0
               ? -1
               : 0;
}

static long count_at(const PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? 0 : strtol(PQgetvalue(r, 0, col), NULL, 10);
}

int db_write_findings(struct db *db, long long scan_id, const struct finding *findings, size_t n,
                      const struct drift_counts *counts, struct err *err)
{
    (void)counts;
    return db_write_findings_ctx(db, scan_id, findings, n, NULL, NULL, err);
}

int db_write_findings_ctx(struct db *db, long long scan_id, const struct finding *findings,
                          size_t n, const struct findings_context *ctx, struct drift_counts *fleet,
                          struct err *err)
{
    static const struct findings_context judged_all = {.scps_read = 1, .have_policy = 1};
    int rc = -1, in_tx = 0;
    char id[32], intent[32];
    PGresult *r = NULL;
    if (!ctx)
        ctx = &judged_all;
    if (scan_param(id, scan_id, err) < 0 || validate_findings(findings, n, err) < 0)
        goto cleanup;
    for (size_t i = 0; i < ctx->n_judgements; i++)
        if (!ctx->judgements[i].cluster_arn || !ctx->judgements[i].cluster_arn[0]) {
            err_set(err, ERR_INVALID, "judgement %zu has no cluster ARN", i);
            goto cleanup;
        }
    snprintf(intent, sizeof intent, "%lld", ctx->intent_scan_id > 0 ? ctx->intent_scan_id : 0);
    const char *p[1] = {id};
    const char *pr[3] = {id, ctx->scps_read ? "true" : "false",
                         ctx->have_policy ? "true" : "false"};
    const char *pi[2] = {id, intent};

    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    if (db_command(db, "SELECT pg_catalog.pg_advisory_xact_lock(" FINDINGS_LOCK_KEY ")", 0, NULL,
                   "taking the findings lock", err) < 0)
        goto cleanup;
    r = db_query(db, SQL_WF_SCAN, 1, p, "reading the scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0) {
        err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        goto cleanup;
    }
    const char *status = PQgetvalue(r, 0, 0);
    if (strcmp(status, "failed") == 0 || strcmp(status, "aborted") == 0) {
        err_set(err, "ScanNotUsable", "scan %lld is %s: its findings would mean nothing", scan_id,
                status);
        goto cleanup;
    }
    if (is_true(r, 0, 1)) {
        err_set(err, "FindingsWritten", "the findings of scan %lld are already written", scan_id);
        goto cleanup;
    }
    PQclear(r);
    r = NULL;

    if (db_command(db, SQL_WF_STAGE, 0, NULL, "creating the findings staging table", err) < 0 ||
        (n > 0 &&
         copy_rows(db, SQL_WF_COPY, n, finding_copy_row, findings, "copying findings", err) < 0) ||
        db_command(db, SQL_WF_ANALYZE, 0, NULL, "analyzing the staged findings", err) < 0 ||
        db_command(db, SQL_WF_DEDUPE, 0, NULL, "merging duplicate findings", err) < 0 ||
        db_command(db, SQL_WF_MATCH, 1, p, "matching findings", err) < 0 ||
        db_command(db, SQL_WF_REOPEN, 0, NULL, "reopening findings", err) < 0 ||
        db_command(db, SQL_WF_UPDATE, 3, pr, "updating persisting findings", err) < 0 ||
        db_command(db, SQL_WF_FIRST_SEEN, 1, p, "updating first_seen", err) < 0 ||
        db_command(db, SQL_WF_NEW_IDS, 0, NULL, "numbering new findings", err) < 0 ||
        db_command(db, SQL_WF_INSERT, 1, p, "inserting new findings", err) < 0 ||
        db_command(db, SQL_WF_LEFT, 1, p, "finding the targets that left the fleet", err) < 0 ||
        db_command(db, SQL_WF_LEAVE_TARGETS, 1, p, "taking targets out of the fleet", err) < 0 ||
        db_command(db, SQL_WF_LEAVE_CLUSTERS, 1, p, "closing the clusters that left the fleet",
                   err) < 0 ||
        db_command(db, SQL_WF_LEAVE_FINDINGS, 1, p, "resolving the findings that left the fleet",
                   err) < 0 ||
        db_command(db, SQL_WF_RESOLVE, 3, pr, "resolving findings", err) < 0 ||
        db_command(db, SQL_WF_SCAN_FINDINGS, 1, p, "recording the scan's findings", err) < 0 ||
        db_command(db, SQL_WF_JUDGED_STAGE, 0, NULL, "creating the judgements staging table", err) <
            0 ||
        (ctx->n_judgements > 0 &&
         (copy_rows(db, SQL_WF_JUDGED_COPY, ctx->n_judgements, judged_copy_row, ctx->judgements,
                    "copying judgements", err) < 0 ||
          db_command(db, SQL_WF_JUDGED, 0, NULL, "recording judgements", err) < 0)))
        goto cleanup;
    r = db_query(db, SQL_WF_COMPLIANCE, 2, pi, "recording the fleet's compliance", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) != 1) {
        err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        goto cleanup;
    }
    if (fleet) {
        memset(fleet, 0, sizeof *fleet);
        fleet->clusters = count_at(r, 0);
        fleet->compliant = count_at(r, 1);
        fleet->noncompliant = count_at(r, 2);
        fleet->exempt = count_at(r, 3);
        fleet->unknown = count_at(r, 4);
        fleet->unverified = count_at(r, 5);
    }
    if (db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    rc = 0;

cleanup:
    PQclear(r);
    if (in_tx)
        db_rollback(db);
    return rc;
}

/* ---- reading findings ---- */

static const char SQL_QF_LATEST[] =
    "SELECT scan_id FROM egressscan.scan WHERE status IN ('succeeded', 'partial')"
    " ORDER BY started_at DESC, scan_id DESC LIMIT 1";

static const char SQL_QF_SCAN[] = "SELECT status FROM egressscan.scan WHERE scan_id = $1::bigint";

enum {
    QF_ID,
    QF_SCAN,
    QF_KIND,
    QF_SEVERITY,
    QF_ACCOUNT,
    QF_REGION,
    QF_CLUSTER,
    QF_OBSERVED,
    QF_ALLOWED,
    QF_SOURCE,
    QF_DETAILS,
    QF_FIRST_SEEN
};

/* The open findings of the fleet (current_drift), in the order of SQL_QF_FINDINGS. */
static const char SQL_QF_OPEN[] =
    "SELECT f.finding_id, f.scan_id, f.kind, f.severity, f.account_id, f.region, f.cluster_arn,"
    "   f.observed_mode, f.allowed_modes::text, f.source, f.details::text,"
    "   pg_catalog.to_char(f.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM egressscan.current_drift f"
    " ORDER BY pg_catalog.array_position("
    "     ARRAY['critical', 'high', 'medium', 'low', 'info']::text[], f.severity),"
    "   f.kind COLLATE \"C\", f.account_id COLLATE \"C\", f.region COLLATE \"C\","
    "   f.cluster_arn COLLATE \"C\" NULLS FIRST, f.source COLLATE \"C\", f.finding_id";

static const char SQL_QF_FINDINGS[] =
    "SELECT f.finding_id, sf.scan_id, f.kind, f.severity, f.account_id, f.region, f.cluster_arn,"
    "   f.observed_mode, f.allowed_modes::text, f.source, f.details::text,"
    "   pg_catalog.to_char(f.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM egressscan.scan_finding sf"
    " JOIN egressscan.finding f ON f.finding_id = sf.finding_id"
    " WHERE sf.scan_id = $1::bigint"
    " ORDER BY pg_catalog.array_position("
    "     ARRAY['critical', 'high', 'medium', 'low', 'info']::text[], f.severity),"
    "   f.kind COLLATE \"C\", f.account_id COLLATE \"C\", f.region COLLATE \"C\","
    "   f.cluster_arn COLLATE \"C\" NULLS FIRST, f.source COLLATE \"C\", f.finding_id";

/* The mode set of a text[] as PostgreSQL prints it ("{AWS_MANAGED,CUSTOMER_ROUTED}"); names this
 * version does not know are left out. */
static unsigned modes_of_text(const char *s)
{
    unsigned modes = 0;
    if (!s || *s++ != '{')
        return 0;
    while (*s && *s != '}') {
        size_t len = strcspn(s, ",}");
        for (int m = 0; m < EGRESS_MODES; m++) {
            const char *name = egress_mode_name((enum egress_mode)m);
            if (strlen(name) == len && strncmp(s, name, len) == 0)
                modes |= EGRESS_BIT(m);
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return modes;
}

static const char *value_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Which scan to read: the given one if finalized, else the latest finalized one. */
static int pick_scan(struct db *db, long long scan_id, char id[32], struct err *err)
{
    int rc = -1;
    PGresult *r = NULL;
    if (scan_id == 0) {
        r = db_query(db, SQL_QF_LATEST, 0, NULL, "finding the latest finalized scan", err);
        if (!r)
            goto cleanup;
        if (PQntuples(r) == 0) {
            err_set(err, "NoScan", "no scan has been finalized yet: run 'egressscan scan'");
            goto cleanup;
        }
        snprintf(id, 32, "%s", PQgetvalue(r, 0, 0));
        rc = 0;
        goto cleanup;
    }
    if (scan_param(id, scan_id, err) < 0)
        goto cleanup;
    const char *p[1] = {id};
    r = db_query(db, SQL_QF_SCAN, 1, p, "reading the scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0) {
        err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        goto cleanup;
    }
    const char *status = PQgetvalue(r, 0, 0);
    if (strcmp(status, "succeeded") != 0 && strcmp(status, "partial") != 0) {
        err_set(err, "ScanNotFinalized",
                "scan %lld is %s: only a succeeded or partial scan has findings to show", scan_id,
                status);
        goto cleanup;
    }
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}

int db_query_findings(struct db *db, long long scan_id, long long *scan_used, db_finding_fn cb,
                      void *ud, struct err *err)
{
    int rc = -1;
    char id[32];
    PGresult *r = NULL;
    if (pick_scan(db, scan_id, id, err) < 0)
        goto cleanup;
    if (scan_used)
        *scan_used = strtoll(id, NULL, 10);
    const char *p[1] = {id};
    if (scan_id == 0)
        r = db_query(db, SQL_QF_OPEN, 0, NULL, "reading the open findings", err);
    else
        r = db_query(db, SQL_QF_FINDINGS, 1, p, "reading findings", err);
    if (!r)
        goto cleanup;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *allowed = value_or_null(r, i, QF_ALLOWED);
        struct stored_finding sf = {.finding_id = strtoll(PQgetvalue(r, i, QF_ID), NULL, 10),
                                    .scan_id = strtoll(PQgetvalue(r, i, QF_SCAN), NULL, 10),
                                    .f = {.kind = PQgetvalue(r, i, QF_KIND),
                                          .severity = PQgetvalue(r, i, QF_SEVERITY),
                                          .account_id = PQgetvalue(r, i, QF_ACCOUNT),
                                          .region = PQgetvalue(r, i, QF_REGION),
                                          .cluster_arn = value_or_null(r, i, QF_CLUSTER),
                                          .observed_mode = value_or_null(r, i, QF_OBSERVED),
                                          .allowed_modes = modes_of_text(allowed),
                                          .source = PQgetvalue(r, i, QF_SOURCE),
                                          .details_json = PQgetvalue(r, i, QF_DETAILS)},
                                    .first_seen = PQgetvalue(r, i, QF_FIRST_SEEN),
                                    .allowed_modes_text = allowed};
        if (cb && cb(ud, &sf) < 0) {
            if (!err_isset(err))
                err_set(err, "Stopped", "reading findings stopped by the caller");
            goto cleanup;
        }
    }
    rc = 0;

cleanup:
    PQclear(r);
    return rc;
}
