-- 0002_drift.sql - intent and drift (SPEC.md section 6): whether a scan could read the SCPs,
-- findings with a stable identity across scans (first_seen kept, resolved when no longer raised),
-- which findings each scan raised, the compliance counts of each scan, and the public views
-- current_drift and daily_compliance of SPEC.md section 5.
--
-- Applied by `egressscan migrate` in one transaction on top of 0001 (never edit an applied file:
-- its checksum is recorded). The session's search_path is pg_catalog only, so every object here
-- is schema-qualified. The file must not contain BEGIN/COMMIT.
--
-- Every time stored here comes from a scan row (its started_at), never from now(): the history
-- of a scan run with --as-of, or built by tests, is the history of the times the scans name.

------------------------------------------------------------------------------------------------
-- Scan runs: could the scan read the organization's SCPs?
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.scan ADD COLUMN scps_known boolean;

COMMENT ON COLUMN egressscan.scan.scps_known IS
    'true: the scan read the organization''s SCPs (SCP-backed intent known); false: it could not '
    '(no Organizations access, fixed --accounts list): the declared policy alone decides; NULL: '
    'not recorded (scans made before 0002_drift).';

-- The public scans view gains scps_known (appended: CREATE OR REPLACE VIEW keeps the existing
-- columns, their comments and the grants).
CREATE OR REPLACE VIEW egressscan.scans AS
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
       s.options,
       s.scps_known
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

COMMENT ON COLUMN egressscan.scans.scps_known IS
    'true: the scan read the organization''s SCPs; false: it could not, so the SCP-backed intent '
    'is unknown and the declared policy alone decides compliance; NULL: not recorded.';

-- Mode changes recorded by a scan (the drift snapshot looks up the periods a scan opened).
CREATE INDEX cluster_mode_interval_opened_idx
    ON egressscan.cluster_mode_interval (opened_scan_id);

------------------------------------------------------------------------------------------------
-- Findings
------------------------------------------------------------------------------------------------

-- One row per lifetime of a finding. Its identity across scans is (kind, account_id, region,
-- cluster_arn, source): a scan that raises an open finding again updates it (last_seen, severity,
-- details, ...) and keeps finding_id and first_seen; a scan that covers the finding's account
-- and does not raise it resolves it. Raised again after that, it is a new finding (new id, new
-- first_seen). Open = resolved_at IS NULL (not resolved_scan_id, which a deleted scan sets to
-- NULL).
CREATE TABLE egressscan.finding (
    finding_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL
                        CHECK (kind IN ('noncompliant_cluster', 'unenforced_intent',
                                        'scp_conflict', 'unscanned_target', 'mode_changed',
                                        'unknown_mode', 'exception_expired')),
    severity            text NOT NULL
                        CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    account_id          text NOT NULL CHECK (account_id <> ''),
    region              text NOT NULL CHECK (region <> ''),
    -- NULL unless the finding is about a cluster ('' would alias NULL in the identity)
    cluster_arn         text CHECK (cluster_arn <> ''),
    source              text NOT NULL CHECK (source <> ''),
    observed_mode       text,
    -- the intended modes; NULL when not relevant to the finding
    allowed_modes       text[],
    details             jsonb NOT NULL DEFAULT '{}'
                        CHECK (pg_catalog.jsonb_typeof(details) = 'object'),
    first_seen          timestamptz NOT NULL,
    first_scan_id       bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    last_seen           timestamptz NOT NULL,
    last_scan_id        bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    resolved_at         timestamptz,
    resolved_scan_id    bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    CHECK (last_seen >= first_seen),
    CHECK (resolved_at IS NULL OR resolved_at >= last_seen),
    CHECK (resolved_scan_id IS NULL OR resolved_at IS NOT NULL)
);

COMMENT ON TABLE egressscan.finding IS
    'Drift findings, one row per lifetime: identity (kind, account_id, region, cluster_arn, '
    'source); first_seen/last_seen are the start times of the first and last scans that raised '
    'it; resolved_at is the start time of the first later scan of its account that did not.';

-- At most one open finding per identity.
CREATE UNIQUE INDEX finding_open_identity_idx
    ON egressscan.finding (kind, account_id, region, (COALESCE(cluster_arn, '')), source)
    WHERE resolved_at IS NULL;
-- Matching a scan's findings with the stored ones (resolved lifetimes included: a late scan).
CREATE INDEX finding_identity_idx
    ON egressscan.finding (account_id, kind, region, (COALESCE(cluster_arn, '')), source);
-- Resolving the open findings of the accounts a scan covered.
CREATE INDEX finding_open_account_idx ON egressscan.finding (account_id)
    WHERE resolved_at IS NULL;
-- Weekly report: new and resolved findings of a week.
CREATE INDEX finding_first_seen_idx ON egressscan.finding (first_seen);
CREATE INDEX finding_resolved_at_idx ON egressscan.finding (resolved_at);

-- Which findings each scan raised (history, the weekly report, current_drift).
CREATE TABLE egressscan.scan_finding (
    scan_id             bigint NOT NULL REFERENCES egressscan.scan ON DELETE CASCADE,
    finding_id          bigint NOT NULL REFERENCES egressscan.finding ON DELETE CASCADE,
    PRIMARY KEY (scan_id, finding_id)
);

CREATE INDEX scan_finding_finding_idx ON egressscan.scan_finding (finding_id);

COMMENT ON TABLE egressscan.scan_finding IS 'The findings each scan raised.';

-- The compliance counts of a scan, written with its findings (its presence says the scan's
-- findings were written). day is the UTC date of the scan's started_at.
CREATE TABLE egressscan.scan_compliance (
    scan_id             bigint PRIMARY KEY REFERENCES egressscan.scan ON DELETE CASCADE,
    day                 date NOT NULL,
    clusters            integer CHECK (clusters >= 0),
    compliant           integer CHECK (compliant >= 0),
    noncompliant        integer CHECK (noncompliant >= 0),
    exempt              integer CHECK (exempt >= 0),
    unknown             integer CHECK (unknown >= 0)
);

CREATE INDEX scan_compliance_day_idx ON egressscan.scan_compliance (day);

COMMENT ON TABLE egressscan.scan_compliance IS
    'Compliance counts of each scan whose findings were written (drift evaluated); NULL counts: '
    'not evaluated.';

------------------------------------------------------------------------------------------------
-- Public views (SPEC.md section 5)
------------------------------------------------------------------------------------------------

-- "Latest finalized scan" as in egressscan.coverage (0001): latest started_at, then highest
-- scan_id, among scans with status succeeded or partial.
CREATE VIEW egressscan.current_drift AS
WITH latest AS (
    SELECT s.scan_id
    FROM egressscan.scan s
    WHERE s.status IN ('succeeded', 'partial')
    ORDER BY s.started_at DESC, s.scan_id DESC
    LIMIT 1
)
SELECT f.finding_id,
       sf.scan_id,
       f.kind,
       f.severity,
       f.account_id,
       f.region,
       f.cluster_arn,
       f.observed_mode,
       f.allowed_modes,
       f.source,
       f.first_seen,
       f.details,
       a.name AS account_name,
       a.ou_path,
       f.last_seen
FROM latest
JOIN egressscan.scan_finding sf ON sf.scan_id = latest.scan_id
JOIN egressscan.finding f ON f.finding_id = sf.finding_id
LEFT JOIN egressscan.account a ON a.account_id = f.account_id;

COMMENT ON VIEW egressscan.current_drift IS
    'The findings raised by the latest finalized scan (latest started_at among scans with status '
    'succeeded or partial, as in coverage). A later scan that is still running, failed or was '
    'aborted does not change it. A finding keeps its finding_id and first_seen for as long as '
    'consecutive scans raise it.';
COMMENT ON COLUMN egressscan.current_drift.finding_id IS
    'Finding identifier, stable while the finding stays open across scans.';
COMMENT ON COLUMN egressscan.current_drift.scan_id IS 'The latest finalized scan.';
COMMENT ON COLUMN egressscan.current_drift.kind IS
    'noncompliant_cluster, unenforced_intent, scp_conflict, unscanned_target, mode_changed, '
    'unknown_mode or exception_expired (SPEC.md section 6).';
COMMENT ON COLUMN egressscan.current_drift.severity IS 'critical, high, medium, low or info.';
COMMENT ON COLUMN egressscan.current_drift.account_id IS 'AWS account id (12 digits, text).';
COMMENT ON COLUMN egressscan.current_drift.region IS
    'AWS region, or * when the finding holds in every scanned region of the account (or the '
    'account could not be scanned at all).';
COMMENT ON COLUMN egressscan.current_drift.cluster_arn IS
    'EKS cluster ARN for findings about a cluster; NULL otherwise.';
COMMENT ON COLUMN egressscan.current_drift.observed_mode IS
    'The cluster''s egress mode as reported (verbatim); NULL for findings not about a cluster '
    'or when the API did not report a mode.';
COMMENT ON COLUMN egressscan.current_drift.allowed_modes IS
    'The intended egress modes (AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED); NULL when not '
    'relevant to the finding.';
COMMENT ON COLUMN egressscan.current_drift.source IS
    'What the finding comes from: scp:<policy id>, policy:<rule id>, coverage or history.';
COMMENT ON COLUMN egressscan.current_drift.first_seen IS
    'Start time of the first scan that raised this finding.';
COMMENT ON COLUMN egressscan.current_drift.details IS
    'JSON object: reason, remediation, warning, statements, ... (SPEC.md section 6).';
COMMENT ON COLUMN egressscan.current_drift.account_name IS
    'Account name from AWS Organizations; NULL when unknown.';
COMMENT ON COLUMN egressscan.current_drift.ou_path IS
    'Organizational unit path by name (Root/Prod/...); NULL when unknown.';
COMMENT ON COLUMN egressscan.current_drift.last_seen IS
    'Start time of the latest scan that raised this finding.';

-- One row per UTC day with a finalized scan, from the last finalized scan of that day.
CREATE VIEW egressscan.daily_compliance AS
SELECT d.day,
       c.clusters,
       c.compliant,
       c.noncompliant,
       c.exempt,
       d.targets_total,
       d.targets_ok,
       c.unknown,
       d.targets_failed,
       d.scan_id
FROM (
    SELECT DISTINCT ON ((s.started_at AT TIME ZONE 'UTC')::date)
           (s.started_at AT TIME ZONE 'UTC')::date AS day,
           s.scan_id,
           s.targets_total,
           s.targets_ok,
           s.targets_failed
    FROM egressscan.scan s
    WHERE s.status IN ('succeeded', 'partial')
    ORDER BY (s.started_at AT TIME ZONE 'UTC')::date, s.started_at DESC, s.scan_id DESC
) d
LEFT JOIN egressscan.scan_compliance c ON c.scan_id = d.scan_id;

COMMENT ON VIEW egressscan.daily_compliance IS
    'One row per UTC day (by started_at) that had a finalized scan (succeeded or partial), with '
    'the numbers of the LAST finalized scan of that day (latest started_at, then highest '
    'scan_id). Days without a finalized scan have no row: a report shows them as gaps.';
COMMENT ON COLUMN egressscan.daily_compliance.day IS 'UTC date of the scan''s start.';
COMMENT ON COLUMN egressscan.daily_compliance.clusters IS
    'Clusters judged by the drift evaluation; NULL when the scan''s drift was not evaluated.';
COMMENT ON COLUMN egressscan.daily_compliance.compliant IS 'Clusters whose mode is allowed.';
COMMENT ON COLUMN egressscan.daily_compliance.noncompliant IS 'Clusters whose mode is not allowed.';
COMMENT ON COLUMN egressscan.daily_compliance.exempt IS
    'Clusters covered by a valid exception of the declared policy.';
COMMENT ON COLUMN egressscan.daily_compliance.targets_total IS
    'Targets (account x region) of the scan.';
COMMENT ON COLUMN egressscan.daily_compliance.targets_ok IS 'Targets scanned completely.';
COMMENT ON COLUMN egressscan.daily_compliance.unknown IS
    'Clusters neither compliant nor non-compliant (unknown mode value or unevaluable intent).';
COMMENT ON COLUMN egressscan.daily_compliance.targets_failed IS 'Targets not scanned.';
COMMENT ON COLUMN egressscan.daily_compliance.scan_id IS 'The scan the numbers come from.';

------------------------------------------------------------------------------------------------
-- Read access: egressscan_reader reads the views (0001 created the role when it could).
------------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        GRANT USAGE ON SCHEMA egressscan TO egressscan_reader;
        GRANT SELECT ON egressscan.current_drift, egressscan.daily_compliance
            TO egressscan_reader;
    ELSE
        RAISE NOTICE 'egressscan: role egressscan_reader does not exist: create it, then grant it SELECT on egressscan.current_drift and egressscan.daily_compliance';
    END IF;
END
$$;
