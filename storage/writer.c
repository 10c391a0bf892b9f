/* writer.c - what a scan writes: the organization snapshot (accounts, OUs, SCPs) as multi-row
 * statements over array parameters, and target results as one transaction per batch: COPY into
 * temp staging tables, then set-based statements for coverage, clusters and their history. Every
 * write may be run again after a lost connection: the snapshot statements are upserts, and a
 * batch leaves out the targets the scan already stored. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "storage/db_internal.h"

/* ---- array parameters: {"a","b",NULL} ---- */

struct text_array {
    struct buf b;
    size_t n;
    int failed; /* out of memory somewhere: the literal is unusable */
};

static void arr_init(struct text_array *a)
{
    buf_init(&a->b);
    a->n = 0;
    a->failed = buf_putc(&a->b, '{') < 0;
}

/* Appends s quoted (backslash and double quote escaped: everything else is literal inside
 * quotes), or NULL for a null element. */
static void arr_add(struct text_array *a, const char *s)
{
    int bad = a->n++ > 0 && buf_putc(&a->b, ',') < 0;
    if (!s) {
        bad |= buf_puts(&a->b, "NULL") < 0;
    } else {
        bad |= buf_putc(&a->b, '"') < 0;
        while (*s && !bad) {
            size_t run = strcspn(s, "\"\\");
            bad |= buf_append(&a->b, s, run) < 0;
            s += run;
            if (*s) {
                bad |= buf_putc(&a->b, '\\') < 0 || buf_putc(&a->b, *s) < 0;
                s++;
            }
        }
        bad |= buf_putc(&a->b, '"') < 0;
    }
    a->failed |= bad;
}

static void arr_add_bool(struct text_array *a, int v)
{
    a->failed |= (a->n++ > 0 && buf_putc(&a->b, ',') < 0) || buf_putc(&a->b, v ? 't' : 'f') < 0;
}

/* Closes the literal; NULL when building it failed. */
static const char *arr_end(struct text_array *a)
{
    a->failed |= buf_putc(&a->b, '}') < 0;
    return a->failed ? NULL : a->b.data;
}

static void arr_cleanup(struct text_array *a)
{
    buf_cleanup(&a->b);
}

static int scan_param(char out[32], long long scan_id, struct err *err)
{
    if (scan_id <= 0)
        return err_set(err, ERR_INVALID, "invalid scan id %lld", scan_id);
    snprintf(out, 32, "%lld", scan_id);
    return 0;
}

/* ---- accounts, OUs, SCPs ---- */

enum {
    ACC_ID,
    ACC_NAME,
    ACC_EMAIL,
    ACC_STATUS,
    ACC_OU_PATH,
    ACC_OU_IDS,
    ACC_PARENT,
    ACC_MGMT,
    ACC_N
};

/* The last occurrence of an id in the batch wins. Attributes the batch does not know (NULL)
 * keep their known value; a result older than the stored one changes nothing but the scan's
 * own snapshot. */
static const char SQL_ACCOUNTS[] =
    "WITH input AS ("
    " SELECT DISTINCT ON (u.account_id) u.*"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    "             $8::text[], $9::boolean[]) WITH ORDINALITY"
    "      AS u(account_id, name, email, status, ou_path, ou_id_path, parent_id, is_management,"
    "           ord)"
    " ORDER BY u.account_id, u.ord DESC"
    "), upsert AS ("
    " INSERT INTO egressscan.account AS a (account_id, name, email, status, ou_path, ou_id_path,"
    "   parent_id, is_management, first_seen, last_seen, first_scan_id, last_scan_id)"
    " SELECT i.account_id, i.name, i.email, i.status, i.ou_path, i.ou_id_path, i.parent_id,"
    "   i.is_management, s.started_at, s.started_at, s.scan_id, s.scan_id"
    " FROM input i CROSS JOIN egressscan.scan s WHERE s.scan_id = $1::bigint"
    " ON CONFLICT (account_id) DO UPDATE SET"
    "   name = COALESCE(EXCLUDED.name, a.name), email = COALESCE(EXCLUDED.email, a.email),"
    "   status = COALESCE(EXCLUDED.status, a.status),"
    "   ou_path = COALESCE(EXCLUDED.ou_path, a.ou_path),"
    "   ou_id_path = COALESCE(EXCLUDED.ou_id_path, a.ou_id_path),"
    "   parent_id = COALESCE(EXCLUDED.parent_id, a.parent_id),"
    "   is_management = EXCLUDED.is_management,"
    "   last_seen = EXCLUDED.last_seen, last_scan_id = EXCLUDED.last_scan_id"
    " WHERE a.last_seen <= EXCLUDED.last_seen"
    ")"
    " INSERT INTO egressscan.scan_account AS sa (scan_id, account_id, name, status, ou_path,"
    "   ou_id_path, parent_id, is_management)"
    " SELECT $1::bigint, i.account_id, i.name, i.status, i.ou_path, i.ou_id_path, i.parent_id,"
    "   i.is_management FROM input i"
    " ON CONFLICT (scan_id, account_id) DO UPDATE SET name = EXCLUDED.name,"
    "   status = EXCLUDED.status, ou_path = EXCLUDED.ou_path, ou_id_path = EXCLUDED.ou_id_path,"
    "   parent_id = EXCLUDED.parent_id, is_management = EXCLUDED.is_management";

int db_write_accounts(struct db *db, long long scan_id, const struct account *accounts, size_t n,
                      struct err *err)
{
    int rc = -1;
    char id[32];
    struct text_array col[ACC_N];
    for (int c = 0; c < ACC_N; c++)
        arr_init(&col[c]);
    if (scan_param(id, scan_id, err) < 0)
        goto cleanup;
    if (n == 0) {
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const struct account *a = &accounts[i];
        if (!a->id) {
            err_set(err, ERR_INVALID, "account %zu of the batch has no id", i);
            goto cleanup;
        }
        arr_add(&col[ACC_ID], a->id);
        arr_add(&col[ACC_NAME], a->name);
        arr_add(&col[ACC_EMAIL], a->email);
        arr_add(&col[ACC_STATUS], a->status);
        arr_add(&col[ACC_OU_PATH], a->ou_path);
        arr_add(&col[ACC_OU_IDS], a->ou_id_path);
        arr_add(&col[ACC_PARENT], a->parent_id);
        arr_add_bool(&col[ACC_MGMT], a->is_management);
    }
    const char *p[1 + ACC_N] = {id};
    for (int c = 0; c < ACC_N; c++)
        if (!(p[1 + c] = arr_end(&col[c]))) {
            err_set(err, ERR_NOMEM, "out of memory writing accounts");
            goto cleanup;
        }
    rc = db_command(db, SQL_ACCOUNTS, 1 + ACC_N, p, "writing accounts", err);

cleanup:
    for (int c = 0; c < ACC_N; c++)
        arr_cleanup(&col[c]);
    return rc;
}

static const char SQL_ORG_UNITS[] =
    "INSERT INTO egressscan.scan_org_unit AS o (scan_id, ou_id, parent_id, name)"
    " SELECT DISTINCT ON (u.ou_id) $1::bigint, u.ou_id, u.parent_id, u.name"
    " FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY"
    "      AS u(ou_id, parent_id, name, ord)"
    " ORDER BY u.ou_id, u.ord DESC"
    " ON CONFLICT (scan_id, ou_id) DO UPDATE SET parent_id = EXCLUDED.parent_id,"
    "   name = EXCLUDED.name";

int db_write_org_units(struct db *db, long long scan_id, const struct org_unit *ous, size_t n,
                       struct err *err)
{
    int rc = -1;
    char id[32];
    struct text_array col[3];
    for (int c = 0; c < 3; c++)
        arr_init(&col[c]);
    if (scan_param(id, scan_id, err) < 0)
        goto cleanup;
    if (n == 0) {
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ous[i].id) {
            err_set(err, ERR_INVALID, "organizational unit %zu of the batch has no id", i);
            goto cleanup;
        }
        arr_add(&col[0], ous[i].id);
        arr_add(&col[1], ous[i].parent_id);
        arr_add(&col[2], ous[i].name);
    }
    const char *p[4] = {id, arr_end(&col[0]), arr_end(&col[1]), arr_end(&col[2])};
    if (!p[1] || !p[2] || !p[3]) {
        err_set(err, ERR_NOMEM, "out of memory writing organizational units");
        goto cleanup;
    }
    rc = db_command(db, SQL_ORG_UNITS, 4, p, "writing organizational units", err);

cleanup:
    for (int c = 0; c < 3; c++)
        arr_cleanup(&col[c]);
    return rc;
}

static const char SQL_SCPS[] =
    "INSERT INTO egressscan.scan_scp AS p (scan_id, policy_id, name, content, aws_managed)"
    " SELECT DISTINCT ON (u.policy_id) $1::bigint, u.policy_id, u.name, u.content, u.aws_managed"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::boolean[]) WITH ORDINALITY"
    "      AS u(policy_id, name, content, aws_managed, ord)"
    " ORDER BY u.policy_id, u.ord DESC"
    " ON CONFLICT (scan_id, policy_id) DO UPDATE SET name = EXCLUDED.name,"
    "   content = EXCLUDED.content, aws_managed = EXCLUDED.aws_managed";

static const char SQL_SCP_TARGETS[] =
    "INSERT INTO egressscan.scan_scp_target (scan_id, policy_id, target_id)"
    " SELECT DISTINCT $1::bigint, u.policy_id, u.target_id"
    " FROM unnest($2::text[], $3::text[]) AS u(policy_id, target_id)"
    " ON CONFLICT DO NOTHING";

int db_write_scps(struct db *db, long long scan_id, const struct scp_policy *policies, size_t n,
                  struct err *err)
{
    int rc = -1, in_tx = 0;
    size_t n_targets = 0;
    char id[32];
    struct text_array col[6]; /* id, name, content, aws_managed | target's policy, target */
    for (int c = 0; c < 6; c++)
        arr_init(&col[c]);
    if (scan_param(id, scan_id, err) < 0)
        goto cleanup;
    if (n == 0) {
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const struct scp_policy *sp = &policies[i];
        if (!sp->id) {
            err_set(err, ERR_INVALID, "policy %zu of the batch has no id", i);
            goto cleanup;
        }
        arr_add(&col[0], sp->id);
        arr_add(&col[1], sp->name);
        arr_add(&col[2], sp->content);
        arr_add_bool(&col[3], sp->aws_managed);
        for (size_t t = 0; t < sp->n_targets; t++) {
            if (!sp->targets[t]) {
                err_set(err, ERR_INVALID, "policy %s has a target without an id", sp->id);
                goto cleanup;
            }
            arr_add(&col[4], sp->id);
            arr_add(&col[5], sp->targets[t]);
            n_targets++;
        }
    }
    const char *p[5] = {id, arr_end(&col[0]), arr_end(&col[1]), arr_end(&col[2]), arr_end(&col[3])};
    const char *pt[3] = {id, arr_end(&col[4]), arr_end(&col[5])};
    if (!p[1] || !p[2] || !p[3] || !p[4] || !pt[1] || !pt[2]) {
        err_set(err, ERR_NOMEM, "out of memory writing SCPs");
        goto cleanup;
    }
    if (db_begin(db, err) < 0)
        goto cleanup;
    in_tx = 1;
    if (db_command(db, SQL_SCPS, 5, p, "writing SCPs", err) < 0 ||
        (n_targets > 0 &&
         db_command(db, SQL_SCP_TARGETS, 3, pt, "writing SCP attachments", err) < 0) ||
        db_commit(db, err) < 0)
        goto cleanup;
    in_tx = 0;
    rc = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    for (int c = 0; c < 6; c++)
        arr_cleanup(&col[c]);
    return rc;
}

/* ---- target results ---- */

/* Staging tables: created once per connection, emptied by every commit (and by rollbacks). */
static const char SQL_STAGE_TARGET[] =
    "CREATE TEMP TABLE IF NOT EXISTS egressscan_stage_target ("
    " account_id text, region text, status text, error_code text, error_message text,"
    " scanned_at float8) ON COMMIT DELETE ROWS";

static const char SQL_STAGE_CLUSTER[] =
    "CREATE TEMP TABLE IF NOT EXISTS egressscan_stage_cluster ("
    " account_id text, region text, scanned_at float8, cluster_arn text, cluster_name text,"
    " egress_mode text, status text, kubernetes_version text, platform_version text,"
    " endpoint_public_access boolean, endpoint_private_access boolean,"
    " public_access_cidrs text, vpc_id text, tags text, created_at text, raw text)"
    " ON COMMIT DELETE ROWS";

static const char SQL_COPY_TARGETS[] =
    "COPY pg_temp.egressscan_stage_target (account_id, region, status, error_code,"
    " error_message, scanned_at) FROM STDIN";

static const char SQL_COPY_CLUSTERS[] =
    "COPY pg_temp.egressscan_stage_cluster (account_id, region, scanned_at, cluster_arn,"
    " cluster_name, egress_mode, status, kubernetes_version, platform_version,"
    " endpoint_public_access, endpoint_private_access, public_access_cidrs, vpc_id, tags,"
    " created_at, raw) FROM STDIN";

/* FOR SHARE: results never land in a scan that is being finalized or marked aborted. */
static const char SQL_SCAN_STATUS[] =
    "SELECT status FROM egressscan.scan WHERE scan_id = $1::bigint FOR SHARE";

/* Exactly once: a target this scan already stored is not written again, with its clusters. That
 * is the batch whose COMMIT reached the server although the connection died before the answer
 * (the writer retries it), or a target another worker of the scan wrote. Counts what it took
 * out of the staging tables. */
static const char SQL_SKIP_STORED[] =
    "WITH stored AS ("
    " DELETE FROM pg_temp.egressscan_stage_target t USING egressscan.target_result r"
    " WHERE r.scan_id = $1::bigint AND r.account_id = t.account_id AND r.region = t.region"
    " RETURNING t.account_id, t.region),"
    " clusters AS ("
    " DELETE FROM pg_temp.egressscan_stage_cluster c USING stored s"
    " WHERE c.account_id = s.account_id AND c.region = s.region RETURNING 1)"
    " SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM clusters)";

/* A cluster listed twice (pagination overlap) is one cluster: the row copied last stays. */
static const char SQL_DEDUPE[] =
    "DELETE FROM pg_temp.egressscan_stage_cluster a USING pg_temp.egressscan_stage_cluster b"
    " WHERE a.cluster_arn = b.cluster_arn AND a.ctid < b.ctid";

/* Accounts not (yet) written by db_write_accounts, e.g. a fixed --accounts list. */
static const char SQL_ENSURE_ACCOUNTS[] =
    "INSERT INTO egressscan.account (account_id, first_seen, last_seen, first_scan_id,"
    "   last_scan_id)"
    " SELECT t.account_id, to_timestamp(min(t.scanned_at)), to_timestamp(max(t.scanned_at)),"
    "   $1::bigint, $1::bigint"
    " FROM pg_temp.egressscan_stage_target t GROUP BY t.account_id"
    " ON CONFLICT (account_id) DO NOTHING";

static const char SQL_COVERAGE[] =
    "INSERT INTO egressscan.target_result (scan_id, account_id, region, status, error_code,"
    "   error_message, clusters, scanned_at)"
    " SELECT $1::bigint, t.account_id, t.region, t.status, t.error_code, t.error_message,"
    "   CASE WHEN t.status = 'ok' THEN COALESCE(n.clusters, 0) END, to_timestamp(t.scanned_at)"
    " FROM pg_temp.egressscan_stage_target t"
    " LEFT JOIN (SELECT account_id, region, count(*)::integer AS clusters"
    "            FROM pg_temp.egressscan_stage_cluster GROUP BY account_id, region) n"
    "   ON n.account_id = t.account_id AND n.region = t.region";

/* The latest word per target (fleet_target): the newest result wins (a slow worker of an older
 * scan changes nothing), a target that answers again is back in the fleet, an account-level row
 * carries the account's last ok of any region. */
static const char SQL_FLEET[] =
    "INSERT INTO egressscan.fleet_target AS f (account_id, region, scan_id, status, error_code,"
    "   error_message, clusters, scanned_at, last_ok_at)"
    " SELECT r.account_id, r.region, r.scan_id, r.status, r.error_code, r.error_message,"
    "   r.clusters, r.scanned_at,"
    "   CASE WHEN r.status = 'ok' THEN r.scanned_at"
    "        WHEN r.region = '*' THEN (SELECT max(o.last_ok_at) FROM egressscan.fleet_target o"
    "                                  WHERE o.account_id = r.account_id AND o.region <> '*')"
    "   END"
    " FROM egressscan.target_result r"
    " JOIN pg_temp.egressscan_stage_target t"
    "   ON t.account_id = r.account_id AND t.region = r.region"
    " WHERE r.scan_id = $1::bigint"
    " ON CONFLICT (account_id, region) DO UPDATE SET scan_id = EXCLUDED.scan_id,"
    "   status = EXCLUDED.status, error_code = EXCLUDED.error_code,"
    "   error_message = EXCLUDED.error_message, clusters = EXCLUDED.clusters,"
    "   scanned_at = EXCLUDED.scanned_at,"
    "   last_ok_at = GREATEST(f.last_ok_at, EXCLUDED.last_ok_at),"
    "   left_at = NULL, left_scan_id = NULL, left_reason = NULL"
    " WHERE f.scanned_at <= EXCLUDED.scanned_at";

/* A regional result is newer word on its account than an account-level row before it. */
static const char SQL_FLEET_ACCOUNT_ROWS[] =
    "DELETE FROM egressscan.fleet_target f"
    " USING (SELECT account_id, to_timestamp(max(scanned_at)) AS at"
    "        FROM pg_temp.egressscan_stage_target WHERE region <> '*' GROUP BY account_id) t"
    " WHERE f.account_id = t.account_id AND f.region = '*' AND f.scanned_at <= t.at";

/* The stored state follows the newest observation: a result older than what is stored (a slow
 * worker of an older scan) changes neither the current state nor the history. created_at is
 * ISO 8601, or epoch seconds as restJson1 sends timestamps. */
static const char SQL_CLUSTERS[] =
    "INSERT INTO egressscan.cluster AS c (cluster_arn, account_id, region, cluster_name,"
    "   egress_mode, status, kubernetes_version, platform_version, endpoint_public_access,"
    "   endpoint_private_access, public_access_cidrs, vpc_id, tags, created_at, raw, first_seen,"
    "   last_seen, first_scan_id, last_scan_id, gone_at)"
    " SELECT s.cluster_arn, s.account_id, s.region, s.cluster_name, s.egress_mode, s.status,"
    "   s.kubernetes_version, s.platform_version, s.endpoint_public_access,"
    "   s.endpoint_private_access, s.public_access_cidrs::jsonb, s.vpc_id, s.tags::jsonb,"
    "   CASE WHEN s.created_at ~ '^[0-9]+(\\.[0-9]*)?$'"
    "        THEN to_timestamp(s.created_at::float8) ELSE s.created_at::timestamptz END,"
    "   s.raw::jsonb, to_timestamp(s.scanned_at), to_timestamp(s.scanned_at), $1::bigint,"
    "   $1::bigint, NULL"
    " FROM pg_temp.egressscan_stage_cluster s"
    " ON CONFLICT (cluster_arn) DO UPDATE SET cluster_name = EXCLUDED.cluster_name,"
    "   egress_mode = EXCLUDED.egress_mode, status = EXCLUDED.status,"
    "   kubernetes_version = EXCLUDED.kubernetes_version,"
    "   platform_version = EXCLUDED.platform_version,"
    "   endpoint_public_access = EXCLUDED.endpoint_public_access,"
    "   endpoint_private_access = EXCLUDED.endpoint_private_access,"
    "   public_access_cidrs = EXCLUDED.public_access_cidrs, vpc_id = EXCLUDED.vpc_id,"
    "   tags = EXCLUDED.tags, created_at = EXCLUDED.created_at, raw = EXCLUDED.raw,"
    "   last_seen = EXCLUDED.last_seen, last_scan_id = EXCLUDED.last_scan_id, gone_at = NULL,"
    "   gone_reason = NULL"
    " WHERE c.last_seen <= EXCLUDED.last_seen"
    "   AND (c.gone_at IS NULL OR c.gone_at <= EXCLUDED.last_seen)";

static const char SQL_OBSERVATIONS[] =
    "INSERT INTO egressscan.cluster_observation (scan_id, cluster_arn, account_id, region,"
    "   egress_mode, observed_at)"
    " SELECT $1::bigint, s.cluster_arn, s.account_id, s.region, s.egress_mode,"
    "   to_timestamp(s.scanned_at)"
    " FROM pg_temp.egressscan_stage_cluster s";

/* History, for the staged clusters whose upsert took effect (last_seen is now this result's
 * time): close the open period when the mode differs, then open one where none is open (first
 * sight, mode change, reappearance). */
static const char SQL_CLOSE_CHANGED[] =
    "UPDATE egressscan.cluster_mode_interval i"
    " SET valid_to = to_timestamp(s.scanned_at), closed_scan_id = $1::bigint"
    " FROM pg_temp.egressscan_stage_cluster s"
    " JOIN egressscan.cluster c"
    "   ON c.cluster_arn = s.cluster_arn AND c.last_seen = to_timestamp(s.scanned_at)"
    " WHERE i.cluster_arn = s.cluster_arn AND i.valid_to IS NULL"
    "   AND i.egress_mode IS DISTINCT FROM s.egress_mode";

static const char SQL_OPEN[] =
    "INSERT INTO egressscan.cluster_mode_interval (cluster_arn, account_id, region, egress_mode,"
    "   valid_from, opened_scan_id)"
    " SELECT s.cluster_arn, s.account_id, s.region, s.egress_mode, to_timestamp(s.scanned_at),"
    "   $1::bigint"
    " FROM pg_temp.egressscan_stage_cluster s"
    " JOIN egressscan.cluster c"
    "   ON c.cluster_arn = s.cluster_arn AND c.last_seen = to_timestamp(s.scanned_at)"
    " WHERE NOT EXISTS (SELECT 1 FROM egressscan.cluster_mode_interval i"
    "                   WHERE i.cluster_arn = s.cluster_arn AND i.valid_to IS NULL)";

/* The clusters of an ok target that this result does not list (last seen before it) are gone:
 * gone_at and the end of their open period are the target's scan time. */
static const char SQL_GONE[] =
    "WITH gone AS ("
    " UPDATE egressscan.cluster c SET gone_at = to_timestamp(t.scanned_at),"
    "   gone_reason = 'cluster_gone'"
    " FROM pg_temp.egressscan_stage_target t"
    " WHERE t.status = 'ok' AND c.account_id = t.account_id AND c.region = t.region"
    "   AND c.gone_at IS NULL AND c.last_seen < to_timestamp(t.scanned_at)"
    " RETURNING c.cluster_arn, c.gone_at)"
    " UPDATE egressscan.cluster_mode_interval i SET valid_to = g.gone_at,"
    "   closed_scan_id = $1::bigint, closed_reason = 'cluster_gone'"
    " FROM gone g WHERE i.cluster_arn = g.cluster_arn AND i.valid_to IS NULL";

static int copy_bool(struct buf *b, int v, char end)
{
    return db_copy_field(b, v < 0 ? NULL : v ? "t" : "f", end);
}

static int target_row(struct buf *b, const struct target_result *t, const char *when)
{
    return db_copy_field(b, t->account_id, '\t') < 0 || db_copy_field(b, t->region, '\t') < 0 ||
                   db_copy_field(b, target_status_name(t->status), '\t') < 0 ||
                   db_copy_field(b, t->error_code, '\t') < 0 ||
                   db_copy_field(b, t->error_message, '\t') < 0 || db_copy_field(b, when, '\n') < 0
               ? -1
               : 0;
}

static int cluster_row(struct buf *b, const struct target_result *t, const char *when,
                       const struct cluster *c)
{
    return db_copy_field(b, t->account_id, '\t') < 0 || db_copy_field(b, t->region, '\t') < 0 ||
                   db_copy_field(b, when, '\t') < 0 || db_copy_field(b, c->arn, '\t') < 0 ||
                   db_copy_field(b, c->name, '\t') < 0 ||
                   db_copy_field(b, c->egress_mode, '\t') < 0 ||
                   db_copy_field(b, c->status, '\t') < 0 ||
                   db_copy_field(b, c->kubernetes_version, '\t') < 0 ||
                   db_copy_field(b, c->platform_version, '\t') < 0 ||
                   copy_bool(b, c->endpoint_public_access, '\t') < 0 ||
                   copy_bool(b, c->endpoint_private_access, '\t') < 0 ||
                   db_copy_field(b, c->public_access_cidrs_json, '\t') < 0 ||
                   db_copy_field(b, c->vpc_id, '\t') < 0 ||
                   db_copy_field(b, c->tags_json, '\t') < 0 ||
                   db_copy_field(b, c->created_at, '\t') < 0 ||
                   db_copy_field(b, c->raw_json, '\n') < 0
               ? -1
               : 0;
}

/* A target result stored in place of one the writer could not store. */
struct rejected {
    struct target_result r;
    struct err e;
};

static void reject(struct db *db, struct rejected *rj, const struct target_result *t,
                   const struct err *why)
{
    if (t->status == TARGET_OK)
        db->tx_rejected++; /* counted ok when it was scanned */
    memset(rj, 0, sizeof *rj);
    err_set(&rj->e, DB_STORAGE_REJECTED, "the results could not be stored: %s (%s)", why->message,
            why->code);
    rj->r.account_id = t->account_id;
    rj->r.region = t->region;
    rj->r.status = TARGET_ERROR;
    rj->r.error_code = DB_STORAGE_REJECTED;
    rj->r.error_message = rj->e.message;
    rj->r.scanned_at = t->scanned_at;
    log_warn("db", "account %s region %s: %s", t->account_id, t->region, rj->e.message);
}

static int cmp_target(const void *a, const void *b)
{
    const struct target_result *x = *(const struct target_result *const *)a;
    const struct target_result *y = *(const struct target_result *const *)b;
    int c = strcmp(x->account_id, y->account_id);
    return c ? c : strcmp(x->region, y->region);
}

/* A target twice in one batch is a defect of the caller (a region or account listed twice):
 * refused whole rather than left to the primary key, or to the second copy's silent skip. */
static int check_unique(const struct target_result *const *results, size_t n, struct err *err)
{
    if (n < 2)
        return 0;
    const struct target_result **sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return err_set(err, ERR_NOMEM, "out of memory checking target results");
    memcpy(sorted, results, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_target);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (cmp_target(&sorted[i - 1], &sorted[i]) == 0)
            rc = err_set(err, ERR_INVALID, "target %s/%s is twice in one batch",
                         sorted[i]->account_id, sorted[i]->region);
    free(sorted);
    return rc;
}

/* Checks every target (db_target_check). A defect of the caller refuses the batch; a target
 * whose content is unusable is replaced by its rejection (*use points at results, or at *subs
 * when one was replaced; free(*subs)). Counts targets and clusters of what is written. */
static int check_targets(struct db *db, const struct target_result *const *results, size_t n,
                         const struct target_result *const **use, struct rejected **subs,
                         size_t *n_ok, size_t *n_clusters, struct err *err)
{
    *n_ok = *n_clusters = 0;
    *use = results;
    *subs = NULL;
    const struct target_result **arr = NULL;
    for (size_t i = 0; i < n; i++) {
        struct err te;
        err_clear(&te);
        if (db_target_check(results[i], &te) < 0) {
            if (strcmp(te.code, ERR_PARSE) != 0) {
                *err = te;
                goto fail;
            }
            if (!arr) {
                /* one block: the pointers, then a rejection per target at most */
                char *block = malloc(n * (sizeof *arr + sizeof **subs) + sizeof **subs);
                if (!block) {
                    err_set(err, ERR_NOMEM, "out of memory checking target results");
                    goto fail;
                }
                *subs = (struct rejected *)block;
                arr = (const struct target_result **)(block + (n + 1) * sizeof **subs);
                memcpy(arr, results, n * sizeof *arr);
            }
            reject(db, &(*subs)[i], results[i], &te);
            arr[i] = &(*subs)[i].r;
        }
    }
    if (check_unique(results, n, err) < 0)
        goto fail;
    if (arr)
        *use = arr;
    for (size_t i = 0; i < n; i++) {
        const struct target_result *t = (*use)[i];
        if (t->status != TARGET_OK)
            continue;
        (*n_ok)++;
        *n_clusters += t->n_clusters;
    }
    return 0;
fail:
    free(*subs);
    *subs = NULL;
    *use = results;
    return -1;
}

int db_prepare_target_writes(struct db *db, struct err *err)
{
    if (db->staging_ready)
        return 0;
    if (db_command(db, SQL_STAGE_TARGET, 0, NULL, "creating staging tables", err) < 0 ||
        db_command(db, SQL_STAGE_CLUSTER, 0, NULL, "creating staging tables", err) < 0)
        return -1;
    db->staging_ready = 1;
    return 0;
}

static const char SQL_CLEAR_STAGING[] =
    "TRUNCATE pg_temp.egressscan_stage_target, pg_temp.egressscan_stage_cluster";

int db_write_targets_each_tx(struct db *db, long long scan_id,
                             const struct target_result *const *results, size_t n, struct err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct err te;
        err_clear(&te);
        if (db_command(db, "SAVEPOINT egressscan_target", 0, NULL, "isolating a target", err) < 0)
            return -1;
        if (db_write_targets_tx(db, scan_id, &results[i], 1, &te) < 0) {
            if (!db_refused_statement(db, &te)) {
                *err = te;
                return -1;
            }
            if (db_command(db, "ROLLBACK TO SAVEPOINT egressscan_target", 0, NULL,
                           "isolating a target", err) < 0)
                return -1;
            struct rejected rj;
            reject(db, &rj, results[i], &te);
            const struct target_result *one = &rj.r;
            if (db_write_targets_tx(db, scan_id, &one, 1, err) < 0)
                return -1;
        }
        /* the staging tables empty only at commit: the next target must not see this one */
        if (db_command(db, SQL_CLEAR_STAGING, 0, NULL, "isolating a target", err) < 0 ||
            db_command(db, "RELEASE SAVEPOINT egressscan_target", 0, NULL, "isolating a target",
                       err) < 0)
            return -1;
    }
    return 0;
}

int db_write_targets(struct db *db, long long scan_id, const struct target_result *const *results,
                     size_t n, struct err *err)
{
    if (n == 0)
        return db_write_targets_tx(db, scan_id, results, n, err);
    if (db_prepare_target_writes(db, err) < 0 || db_begin(db, err) < 0)
        return -1;
    db->tx_rejected = 0;
    if (db_write_targets_tx(db, scan_id, results, n, err) < 0 || db_commit(db, err) < 0) {
        db_rollback(db);
        if (!db_refused_statement(db, err))
            return -1;
        /* one target's rows were refused (a value the database will not take): the batch again,
         * a target at a time, so that it costs that target alone */
        log_warn("db",
                 "scan %lld: a batch of %zu targets was refused (%s: %s); writing them one "
                 "at a time",
                 scan_id, n, err->code, err->message);
        err_clear(err);
        db->tx_rejected = 0;
        if (db_begin(db, err) < 0)
            return -1;
        if (db_write_targets_each_tx(db, scan_id, results, n, err) < 0 || db_commit(db, err) < 0) {
            db_rollback(db);
            return -1;
        }
    }
    db->targets_rejected += db->tx_rejected;
    db->tx_rejected = 0;
    return 0;
}

int db_write_targets_tx(struct db *db, long long scan_id,
                        const struct target_result *const *results, size_t n, struct err *err)
{
    int rc = -1, in_copy = 0;
    size_t n_ok = 0, n_clusters = 0;
    char id[32], when[64];
    struct buf b;
    PGresult *r = NULL;
    struct rejected *subs = NULL;
    buf_init(&b);

    if (scan_param(id, scan_id, err) < 0 ||
        check_targets(db, results, n, &results, &subs, &n_ok, &n_clusters, err) < 0)
        goto cleanup;
    if (n == 0) {
        rc = 0;
        goto cleanup;
    }
    const char *p[1] = {id};
    if (!db->staging_ready) {
        err_set(err, ERR_INVALID, "db_prepare_target_writes was not called on this connection");
        goto cleanup;
    }

    r = db_query(db, SQL_SCAN_STATUS, 1, p, "reading the scan", err);
    if (!r)
        goto cleanup;
    if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 0), "running") != 0) {
        if (PQntuples(r) == 0)
            err_set(err, "UnknownScan", "there is no scan %lld", scan_id);
        else
            err_set(err, "ScanNotRunning", "scan %lld is %s: it takes no more results", scan_id,
                    PQgetvalue(r, 0, 0));
        goto cleanup;
    }

    if (db_copy_start(db, SQL_COPY_TARGETS, err) < 0)
        goto cleanup;
    in_copy = 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(when, sizeof when, "%.6f", results[i]->scanned_at);
        if (target_row(&b, results[i], when) < 0) {
            err_set(err, ERR_NOMEM, "out of memory writing target results");
            goto cleanup;
        }
        if (db_copy_flush(db, &b, 0, err) < 0)
            goto cleanup;
    }
    if (db_copy_flush(db, &b, 1, err) < 0)
        goto cleanup;
    in_copy = 0;
    if (db_copy_finish(db, NULL, "copying results", err) < 0)
        goto cleanup;

    if (n_clusters > 0) {
        if (db_copy_start(db, SQL_COPY_CLUSTERS, err) < 0)
            goto cleanup;
        in_copy = 1;
        for (size_t i = 0; i < n; i++) {
            const struct target_result *t = results[i];
            if (t->status != TARGET_OK)
                continue; /* a target not scanned says nothing about its clusters */
            snprintf(when, sizeof when, "%.6f", t->scanned_at);
            for (size_t k = 0; k < t->n_clusters; k++) {
                if (cluster_row(&b, t, when, &t->clusters[k]) < 0) {
                    err_set(err, ERR_NOMEM, "out of memory writing clusters");
                    goto cleanup;
                }
                if (db_copy_flush(db, &b, 0, err) < 0)
                    goto cleanup;
            }
        }
        if (db_copy_flush(db, &b, 1, err) < 0)
            goto cleanup;
        in_copy = 0;
        if (db_copy_finish(db, NULL, "copying results", err) < 0)
            goto cleanup;
    }

    PQclear(r);
    r = db_query(db, SQL_SKIP_STORED, 1, p, "looking for targets already stored", err);
    if (!r)
        goto cleanup;
    long skipped = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    if (skipped > 0) {
        log_info("db",
                 "scan %lld: %ld of %zu targets of the batch (%s clusters) were already stored, "
                 "not written again",
                 scan_id, skipped, n, PQgetvalue(r, 0, 1));
        if ((size_t)skipped == n) {
            rc = 0; /* nothing left to write; the caller's transaction commits */
            goto cleanup;
        }
    }
    if ((n_clusters > 0 &&
         db_command(db, SQL_DEDUPE, 0, NULL, "merging duplicate clusters", err) < 0) ||
        db_command(db, SQL_ENSURE_ACCOUNTS, 1, p, "recording accounts", err) < 0 ||
        db_command(db, SQL_COVERAGE, 1, p, "writing coverage", err) < 0 ||
        db_command(db, SQL_FLEET, 1, p, "writing the latest word per target", err) < 0 ||
        db_command(db, SQL_FLEET_ACCOUNT_ROWS, 0, NULL, "writing the latest word per account",
                   err) < 0)
        goto cleanup;
    if (n_clusters > 0 &&
        (db_command(db, SQL_CLUSTERS, 1, p, "writing clusters", err) < 0 ||
         db_command(db, SQL_OBSERVATIONS, 1, p, "writing observations", err) < 0 ||
         db_command(db, SQL_CLOSE_CHANGED, 1, p, "closing changed history", err) < 0 ||
         db_command(db, SQL_OPEN, 1, p, "opening history", err) < 0))
        goto cleanup;
    if (n_ok > 0 && db_command(db, SQL_GONE, 1, p, "closing the history of gone clusters", err) < 0)
        goto cleanup;
    rc = 0;

cleanup:
    if (in_copy) {
        struct err ignored;
        db_copy_finish(db, "egressscan: batch abandoned", "copying results", &ignored);
    }
    PQclear(r);
    buf_cleanup(&b);
    free(subs);
    return rc;
}
