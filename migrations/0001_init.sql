-- 0001_init.sql - the first egressscan schema: scan runs, the organization as each scan saw it
-- (accounts, OUs, SCPs), per-target coverage, clusters with change-based egress-mode history,
-- and the public views of SPEC.md section 5 (scans, coverage, current_clusters, cluster_history).
--
-- Applied by `egressscan migrate` in one transaction, after the runner has created the schema
-- egressscan and egressscan.schema_migrations. The session's search_path is pg_catalog only, so
-- every object here is schema-qualified. The file must not contain BEGIN/COMMIT.
--
-- Tables are internal and may change in later migrations; the views are the public contract.
-- Times are timestamptz. Intervals of cluster_mode_interval are half-open: [valid_from, valid_to).

------------------------------------------------------------------------------------------------
-- Scan runs
------------------------------------------------------------------------------------------------

CREATE TABLE egressscan.scan (
    scan_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'aborted')),
    options         jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(options) = 'object'),
    targets_total   integer NOT NULL DEFAULT 0 CHECK (targets_total >= 0),
    targets_ok      integer NOT NULL DEFAULT 0 CHECK (targets_ok >= 0),
    targets_failed  integer NOT NULL DEFAULT 0 CHECK (targets_failed >= 0),
    clusters_seen   integer NOT NULL DEFAULT 0 CHECK (clusters_seen >= 0),
    api_calls       bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    throttled       bigint NOT NULL DEFAULT 0 CHECK (throttled >= 0),
    retries         bigint NOT NULL DEFAULT 0 CHECK (retries >= 0),
    error           text,
    pid             integer,
    host            text,
    -- a running scan has no end; every other one has
    CHECK ((status = 'running') = (finished_at IS NULL))
);

COMMENT ON TABLE egressscan.scan IS
    'One scan run. A running scan holds a session advisory lock on its id; db_scan_begin marks '
    'running scans whose lock is free (their process ended) as aborted.';

-- db_scan_begin looks for running scans; the views look for the latest finalized one.
CREATE INDEX scan_running_idx ON egressscan.scan (scan_id) WHERE status = 'running';
CREATE INDEX scan_finalized_idx ON egressscan.scan (started_at DESC, scan_id DESC)
    WHERE status IN ('succeeded', 'partial');

------------------------------------------------------------------------------------------------
-- The organization
------------------------------------------------------------------------------------------------

-- The current state of every account ever seen (upserted by each scan that discovers it).
CREATE TABLE egressscan.account (
    account_id      text PRIMARY KEY CHECK (account_id ~ '^[0-9]{12}$'),
    name            text,
    email           text,
    status          text,
    ou_path         text,
    ou_id_path      text,
    parent_id       text,
    is_management   boolean NOT NULL DEFAULT false,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    first_scan_id   bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    last_scan_id    bigint REFERENCES egressscan.scan ON DELETE SET NULL
);

COMMENT ON TABLE egressscan.account IS
    'Latest known state of each account (12-digit id kept as text: leading zeros matter). '
    'Unknown attributes (NULL in a later scan, e.g. a fixed --accounts list) keep the last known value.';

-- Where each account sat in the organization when a given scan ran (drift of an older scan
-- needs the placement of that time, not of today).
CREATE TABLE egressscan.scan_account (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    account_id      text NOT NULL REFERENCES egressscan.account,
    name            text,
    status          text,
    ou_path         text,
    ou_id_path      text,
    parent_id       text,
    is_management   boolean NOT NULL,
    PRIMARY KEY (scan_id, account_id)
);

CREATE INDEX scan_account_account_idx ON egressscan.scan_account (account_id);

-- The OU tree (root included) as a scan saw it.
CREATE TABLE egressscan.scan_org_unit (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    ou_id           text NOT NULL CHECK (ou_id <> ''),
    parent_id       text CHECK (parent_id <> ''),
    name            text,
    PRIMARY KEY (scan_id, ou_id)
);

-- The SCP documents of a scan, verbatim (text, not jsonb: the document is evidence), and where
-- each is attached (root, OU or account id).
CREATE TABLE egressscan.scan_scp (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    policy_id       text NOT NULL CHECK (policy_id <> ''),
    name            text,
    content         text,           -- NULL when the document could not be read
    aws_managed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scan_id, policy_id)
);

CREATE TABLE egressscan.scan_scp_target (
    scan_id         bigint NOT NULL,
    policy_id       text NOT NULL,
    target_id       text NOT NULL CHECK (target_id <> ''),
    PRIMARY KEY (scan_id, policy_id, target_id),
    FOREIGN KEY (scan_id, policy_id) REFERENCES egressscan.scan_scp ON DELETE CASCADE
);

CREATE INDEX scan_scp_target_target_idx ON egressscan.scan_scp_target (scan_id, target_id);

------------------------------------------------------------------------------------------------
-- Coverage: one row per target (account x region; region '*' for account-level failures)
-- and scan. Named target_result because the view egressscan.coverage owns the name.
------------------------------------------------------------------------------------------------

CREATE TABLE egressscan.target_result (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    account_id      text NOT NULL REFERENCES egressscan.account,
    region          text NOT NULL CHECK (region = '*' OR region ~ '^[a-z0-9-]{1,32}$'),
    status          text NOT NULL CHECK (status IN ('ok', 'assume_role_denied', 'access_denied',
                                                    'region_disabled', 'throttled', 'error')),
    error_code      text,
    error_message   text,
    -- clusters found; NULL when the target was not scanned (nothing is known)
    clusters        integer CHECK (clusters >= 0),
    scanned_at      timestamptz NOT NULL,
    PRIMARY KEY (scan_id, account_id, region),
    CHECK ((status = 'ok') = (clusters IS NOT NULL))
);

CREATE INDEX target_result_account_idx ON egressscan.target_result (account_id, region);

------------------------------------------------------------------------------------------------
-- Clusters
------------------------------------------------------------------------------------------------

-- The latest observed state of every cluster ever seen. gone_at is set when an ok scan of the
-- cluster's target no longer lists it, and cleared if it is seen again.
CREATE TABLE egressscan.cluster (
    cluster_arn             text PRIMARY KEY CHECK (cluster_arn <> ''),
    account_id              text NOT NULL REFERENCES egressscan.account,
    region                  text NOT NULL,
    cluster_name            text NOT NULL CHECK (pg_catalog.length(cluster_name) BETWEEN 1 AND 100),
    egress_mode             text,
    status                  text,
    kubernetes_version      text,
    platform_version        text,
    endpoint_public_access  boolean,
    endpoint_private_access boolean,
    public_access_cidrs     jsonb CHECK (pg_catalog.jsonb_typeof(public_access_cidrs) = 'array'),
    vpc_id                  text,
    tags                    jsonb CHECK (pg_catalog.jsonb_typeof(tags) = 'object'),
    created_at              timestamptz,
    raw                     jsonb,
    first_seen              timestamptz NOT NULL,
    last_seen               timestamptz NOT NULL,
    first_scan_id           bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    last_scan_id            bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    gone_at                 timestamptz,
    CHECK (gone_at IS NULL OR gone_at > last_seen)
);

-- finding the clusters of a target that a new ok scan no longer lists
CREATE INDEX cluster_target_current_idx ON egressscan.cluster (account_id, region)
    WHERE gone_at IS NULL;

-- Raw per-scan observations (prunable: `egressscan prune --older-than`).
CREATE TABLE egressscan.cluster_observation (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    cluster_arn     text NOT NULL REFERENCES egressscan.cluster ON DELETE CASCADE,
    account_id      text NOT NULL,
    region          text NOT NULL,
    egress_mode     text,
    observed_at     timestamptz NOT NULL,
    PRIMARY KEY (scan_id, cluster_arn)
);

CREATE INDEX cluster_observation_time_idx ON egressscan.cluster_observation (observed_at);
CREATE INDEX cluster_observation_cluster_idx ON egressscan.cluster_observation (cluster_arn);

-- Change-based history: one row per period during which a cluster's egress mode held (the mode
-- as reported, NULL included). A new row only when the mode changes or the cluster reappears.
CREATE TABLE egressscan.cluster_mode_interval (
    interval_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_arn     text NOT NULL REFERENCES egressscan.cluster ON DELETE CASCADE,
    account_id      text NOT NULL,
    region          text NOT NULL,
    egress_mode     text,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    opened_scan_id  bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    closed_scan_id  bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE UNIQUE INDEX cluster_mode_interval_open_idx ON egressscan.cluster_mode_interval (cluster_arn)
    WHERE valid_to IS NULL;
CREATE INDEX cluster_mode_interval_cluster_idx
    ON egressscan.cluster_mode_interval (cluster_arn, valid_from);
CREATE INDEX cluster_mode_interval_time_idx
    ON egressscan.cluster_mode_interval (valid_from, valid_to);

------------------------------------------------------------------------------------------------
-- Public views (SPEC.md section 5)
------------------------------------------------------------------------------------------------

-- Counters of a running scan are computed live from its coverage rows; a finalized scan keeps
-- the counters db_scan_finish stored.
CREATE VIEW egressscan.scans AS
SELECT s.scan_id,
       s.started_at,
       s.finished_at,
       s.status,
       COALESCE(live.targets_total, s.targets_total) AS targets_total,
       COALESCE(live.targets_ok, s.targets_ok) AS targets_ok,
       COALESCE(live.targets_failed, s.targets_failed) AS targets_failed,
       COALESCE(live.clusters_seen, s.clusters_seen) AS clusters_seen,
       s.api_calls,
       s.throttled,
       s.retries,
       s.error,
       s.host,
       s.pid,
       s.options
FROM egressscan.scan s
LEFT JOIN LATERAL (
    SELECT pg_catalog.count(*)::integer AS targets_total,
           (pg_catalog.count(*) FILTER (WHERE r.status = 'ok'))::integer AS targets_ok,
           (pg_catalog.count(*) FILTER (WHERE r.status <> 'ok'))::integer AS targets_failed,
           COALESCE(pg_catalog.sum(r.clusters) FILTER (WHERE r.status = 'ok'), 0)::integer
               AS clusters_seen
    FROM egressscan.target_result r
    WHERE s.status = 'running' AND r.scan_id = s.scan_id
) live ON s.status = 'running';

COMMENT ON VIEW egressscan.scans IS 'One row per scan run (egressscan scan / worker).';
COMMENT ON COLUMN egressscan.scans.scan_id IS 'Scan identifier (increasing).';
COMMENT ON COLUMN egressscan.scans.started_at IS 'When the scan started.';
COMMENT ON COLUMN egressscan.scans.finished_at IS 'When the scan was finalized; NULL while running.';
COMMENT ON COLUMN egressscan.scans.status IS
    'running, succeeded (every target scanned), partial (some targets not scanned: see coverage), '
    'failed (the run itself failed, see error), aborted (its process ended without finalizing).';
COMMENT ON COLUMN egressscan.scans.targets_total IS 'Targets (account x region, or account x * for account-level failures) with a result.';
COMMENT ON COLUMN egressscan.scans.targets_ok IS 'Targets scanned completely.';
COMMENT ON COLUMN egressscan.scans.targets_failed IS 'Targets not scanned (status other than ok).';
COMMENT ON COLUMN egressscan.scans.clusters_seen IS 'Clusters found in the targets scanned ok.';
COMMENT ON COLUMN egressscan.scans.api_calls IS 'AWS API requests made (retries included).';
COMMENT ON COLUMN egressscan.scans.throttled IS 'AWS answers that were throttling errors.';
COMMENT ON COLUMN egressscan.scans.retries IS 'AWS requests retried.';
COMMENT ON COLUMN egressscan.scans.error IS 'Why the scan failed or was aborted; NULL otherwise.';
COMMENT ON COLUMN egressscan.scans.options IS 'The invocation (accounts, regions, concurrency, ...); never secrets.';

-- "Latest finalized scan" = the scan with the latest started_at (then highest scan_id) whose
-- status is succeeded or partial. Failed scans (the run itself broke: database, credentials,
-- Organizations) and aborted ones are never "latest": their coverage would be incomplete in a
-- way no row describes. A partial scan is included: its non-ok rows say what was missed.
CREATE VIEW egressscan.coverage AS
WITH latest AS (
    SELECT s.scan_id
    FROM egressscan.scan s
    WHERE s.status IN ('succeeded', 'partial')
    ORDER BY s.started_at DESC, s.scan_id DESC
    LIMIT 1
)
SELECT r.scan_id,
       r.account_id,
       a.name AS account_name,
       r.region,
       r.status,
       r.error_code,
       r.error_message,
       r.clusters,
       r.scanned_at
FROM latest
JOIN egressscan.target_result r ON r.scan_id = latest.scan_id
LEFT JOIN egressscan.account a ON a.account_id = r.account_id;

COMMENT ON VIEW egressscan.coverage IS
    'One row per account x region of the latest finalized scan (latest started_at among scans '
    'with status succeeded or partial): what was scanned and what was not, and why. '
    'Account-level failures (AssumeRole denied, regions not listable) use region ''*''.';
COMMENT ON COLUMN egressscan.coverage.scan_id IS 'The latest finalized scan.';
COMMENT ON COLUMN egressscan.coverage.account_id IS 'AWS account id (12 digits, text).';
COMMENT ON COLUMN egressscan.coverage.account_name IS 'Account name from AWS Organizations; NULL when unknown.';
COMMENT ON COLUMN egressscan.coverage.region IS 'AWS region, or * for an account-level failure.';
COMMENT ON COLUMN egressscan.coverage.status IS
    'ok, assume_role_denied, access_denied, region_disabled, throttled or error.';
COMMENT ON COLUMN egressscan.coverage.error_code IS 'AWS error code when not ok.';
COMMENT ON COLUMN egressscan.coverage.error_message IS 'AWS error message when not ok.';
COMMENT ON COLUMN egressscan.coverage.clusters IS 'EKS clusters found; NULL when the target was not scanned.';
COMMENT ON COLUMN egressscan.coverage.scanned_at IS 'When the target''s scan ended.';

CREATE VIEW egressscan.current_clusters AS
SELECT c.account_id,
       a.name AS account_name,
       a.ou_path,
       c.region,
       c.cluster_name,
       c.cluster_arn,
       c.egress_mode,
       COALESCE(c.egress_mode, 'AWS_MANAGED') AS egress_mode_effective,
       c.status,
       c.kubernetes_version,
       c.platform_version,
       c.endpoint_public_access,
       c.endpoint_private_access,
       c.public_access_cidrs,
       c.vpc_id,
       c.tags,
       c.created_at,
       c.first_seen,
       c.last_seen,
       c.last_scan_id
FROM egressscan.cluster c
LEFT JOIN egressscan.account a ON a.account_id = c.account_id
WHERE c.gone_at IS NULL;

COMMENT ON VIEW egressscan.current_clusters IS
    'Every EKS cluster as seen by the latest scan that covered its account x region. A cluster '
    'leaves this view when a later scan of its target succeeds without it; a target that could '
    'not be scanned leaves its clusters here (nothing says they are gone).';
COMMENT ON COLUMN egressscan.current_clusters.account_id IS 'AWS account id (12 digits, text).';
COMMENT ON COLUMN egressscan.current_clusters.account_name IS 'Account name from AWS Organizations; NULL when unknown.';
COMMENT ON COLUMN egressscan.current_clusters.ou_path IS 'Organizational unit path by name (Root/Prod/...); NULL when unknown.';
COMMENT ON COLUMN egressscan.current_clusters.region IS 'AWS region.';
COMMENT ON COLUMN egressscan.current_clusters.cluster_name IS 'EKS cluster name.';
COMMENT ON COLUMN egressscan.current_clusters.cluster_arn IS 'EKS cluster ARN (unique).';
COMMENT ON COLUMN egressscan.current_clusters.egress_mode IS
    'resourcesVpcConfig.controlPlaneEgressMode verbatim (values AWS adds later kept as sent); '
    'NULL when the API did not report it.';
COMMENT ON COLUMN egressscan.current_clusters.egress_mode_effective IS
    'egress_mode, or AWS_MANAGED (the API default) when it was not reported.';
COMMENT ON COLUMN egressscan.current_clusters.status IS 'Cluster status (ACTIVE, CREATING, ...).';
COMMENT ON COLUMN egressscan.current_clusters.kubernetes_version IS 'Kubernetes version.';
COMMENT ON COLUMN egressscan.current_clusters.platform_version IS 'EKS platform version.';
COMMENT ON COLUMN egressscan.current_clusters.endpoint_public_access IS 'API server endpoint reachable from the internet; NULL when unknown.';
COMMENT ON COLUMN egressscan.current_clusters.endpoint_private_access IS 'API server endpoint reachable from the VPC; NULL when unknown.';
COMMENT ON COLUMN egressscan.current_clusters.public_access_cidrs IS 'JSON array of CIDRs allowed to reach the public endpoint.';
COMMENT ON COLUMN egressscan.current_clusters.vpc_id IS 'VPC of the cluster.';
COMMENT ON COLUMN egressscan.current_clusters.tags IS 'Cluster tags (JSON object).';
COMMENT ON COLUMN egressscan.current_clusters.created_at IS 'When the cluster was created (from AWS).';
COMMENT ON COLUMN egressscan.current_clusters.first_seen IS 'When egressscan first saw the cluster.';
COMMENT ON COLUMN egressscan.current_clusters.last_seen IS 'When egressscan last saw the cluster.';
COMMENT ON COLUMN egressscan.current_clusters.last_scan_id IS 'The scan that last saw the cluster.';

CREATE VIEW egressscan.cluster_history AS
SELECT i.cluster_arn,
       i.account_id,
       i.region,
       i.egress_mode,
       i.valid_from,
       i.valid_to,
       c.cluster_name,
       i.opened_scan_id,
       i.closed_scan_id
FROM egressscan.cluster_mode_interval i
JOIN egressscan.cluster c ON c.cluster_arn = i.cluster_arn;

COMMENT ON VIEW egressscan.cluster_history IS
    'Change-based egress-mode history: one row per period [valid_from, valid_to) during which a '
    'cluster''s reported mode held. An unchanged cluster adds no row per scan; a period ends when '
    'the mode changes or when a scan of the cluster''s target no longer finds the cluster.';
COMMENT ON COLUMN egressscan.cluster_history.cluster_arn IS 'EKS cluster ARN.';
COMMENT ON COLUMN egressscan.cluster_history.account_id IS 'AWS account id (12 digits, text).';
COMMENT ON COLUMN egressscan.cluster_history.region IS 'AWS region.';
COMMENT ON COLUMN egressscan.cluster_history.egress_mode IS 'The mode as reported (verbatim; NULL when not reported).';
COMMENT ON COLUMN egressscan.cluster_history.valid_from IS 'When the scan that first saw this mode scanned the cluster''s target.';
COMMENT ON COLUMN egressscan.cluster_history.valid_to IS 'When a scan first saw another mode or no cluster; NULL = still current.';
COMMENT ON COLUMN egressscan.cluster_history.cluster_name IS 'EKS cluster name.';
COMMENT ON COLUMN egressscan.cluster_history.opened_scan_id IS 'The scan that opened the period.';
COMMENT ON COLUMN egressscan.cluster_history.closed_scan_id IS 'The scan that closed it; NULL while open.';

------------------------------------------------------------------------------------------------
-- Read access: the role egressscan_reader gets SELECT on the views only. Creating the role
-- needs CREATEROLE; without it the migration still applies and says so (an administrator
-- creates the role and runs the GRANTs below).
------------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        BEGIN
            CREATE ROLE egressscan_reader NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'egressscan: cannot create role egressscan_reader (no CREATEROLE): create it, then grant it USAGE on schema egressscan and SELECT on the views';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        GRANT USAGE ON SCHEMA egressscan TO egressscan_reader;
        GRANT SELECT ON egressscan.scans, egressscan.coverage, egressscan.current_clusters,
                        egressscan.cluster_history TO egressscan_reader;
    END IF;
END
$$;
