-- 0005_reader_history.sql - what the weekly report of a past week needs, readable by
-- egressscan_reader (SPEC.md sections 5 and 7): the report of any retained week is made from the
-- views alone, so that the people the reader role is for can produce it. The views expose the
-- history a past week is rebuilt from (which scans tried which targets with what result, where
-- each scan placed each account, every lifetime of every finding and which scans raised it) and
-- nothing more: no SCP documents, no account e-mail addresses, no scan options or hosts.
--
-- A finding's severity, observed mode, allowed modes and details follow the newest scan that
-- judged it; an old week's report shows them as they were that week. scan_finding now keeps, per
-- scan, the finding as that scan left it.
--
-- Applied by `egressscan migrate` in one transaction on top of 0004 (never edit an applied file:
-- its checksum is recorded). The session's search_path is pg_catalog only, so every object here
-- is schema-qualified. The file must not contain BEGIN/COMMIT.

------------------------------------------------------------------------------------------------
-- A finding as each scan that raised it left it
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.scan_finding
    ADD COLUMN severity text,
    ADD COLUMN observed_mode text,
    ADD COLUMN allowed_modes text[],
    ADD COLUMN details jsonb CHECK (pg_catalog.jsonb_typeof(details) = 'object'),
    ADD COLUMN recorded boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN egressscan.scan_finding.details IS
    'The finding''s details as the record stood once this scan had written its findings (with '
    'severity, observed_mode and allowed_modes); NULL when not recorded (scans before 0005).';
COMMENT ON COLUMN egressscan.scan_finding.recorded IS
    'Whether severity, observed_mode, allowed_modes and details were recorded for this scan.';

-- Backfill: the finding row holds what its last confirming scan (last_scan_id) wrote, so that
-- scan's row is exact. What earlier scans saw was overwritten: their rows stay not recorded, and
-- readers fall back to the finding's own (latest) values, as reports did before 0005.
UPDATE egressscan.scan_finding sf
SET severity = f.severity, observed_mode = f.observed_mode, allowed_modes = f.allowed_modes,
    details = f.details, recorded = true
FROM egressscan.finding f
WHERE f.finding_id = sf.finding_id AND f.last_scan_id = sf.scan_id;

------------------------------------------------------------------------------------------------
-- The views of the history
------------------------------------------------------------------------------------------------

-- Which schema this database has: `egressscan report` checks it before reading (a binary older
-- or newer than the schema is refused), as the reader too.
CREATE VIEW egressscan.schema_versions AS
SELECT m.version, m.name, m.checksum, m.applied_at
FROM egressscan.schema_migrations m;

COMMENT ON VIEW egressscan.schema_versions IS
    'The migrations applied to this database (file name and SHA-256 of its text).';

-- Per finalized scan and target, what the scan found: the history behind coverage.
CREATE VIEW egressscan.target_results AS
SELECT r.scan_id,
       r.account_id,
       r.region,
       r.status,
       r.error_code,
       r.error_message,
       r.clusters,
       r.scanned_at
FROM egressscan.target_result r
JOIN egressscan.scan s ON s.scan_id = r.scan_id
WHERE s.status IN ('succeeded', 'partial');

COMMENT ON VIEW egressscan.target_results IS
    'One row per finalized scan (succeeded or partial) and target it tried (account x region; '
    'region * for account-level results): status, error and clusters found. coverage is the latest '
    'of these per target of the fleet. Raw history: egressscan prune deletes the ok rows of old '
    'scans.';

-- Where each finalized scan placed each account it saw.
CREATE VIEW egressscan.scan_accounts AS
SELECT sa.scan_id,
       sa.account_id,
       sa.name AS account_name,
       sa.ou_path,
       sa.status
FROM egressscan.scan_account sa
JOIN egressscan.scan s ON s.scan_id = sa.scan_id
WHERE s.status IN ('succeeded', 'partial');

COMMENT ON VIEW egressscan.scan_accounts IS
    'Each account as a finalized scan saw it: name, OU path and status at that time.';

-- Every account ever seen, as last known.
CREATE VIEW egressscan.accounts AS
SELECT a.account_id,
       a.name AS account_name,
       a.ou_path,
       a.status,
       a.is_management,
       a.first_seen,
       a.last_seen
FROM egressscan.account a;

COMMENT ON VIEW egressscan.accounts IS
    'Every account ever seen, as the latest scan that discovered it left it.';

-- Every lifetime of every finding, open or resolved (current_drift is the open ones of the fleet).
CREATE VIEW egressscan.findings AS
SELECT f.finding_id,
       f.kind,
       f.severity,
       f.account_id,
       f.region,
       f.cluster_arn,
       f.source,
       f.observed_mode,
       f.allowed_modes,
       f.details,
       f.first_seen,
       f.first_scan_id,
       f.last_seen,
       f.last_scan_id,
       f.resolved_at,
       f.resolved_scan_id,
       f.resolved_reason
FROM egressscan.finding f;

COMMENT ON VIEW egressscan.findings IS
    'Every finding lifetime, open or resolved, with its latest severity, modes and details. A '
    'resolution by a scan that then failed or was aborted does not count (see scans.status).';

-- Which scans raised which finding, and the finding as that scan left it.
CREATE VIEW egressscan.scan_findings AS
SELECT sf.scan_id,
       sf.finding_id,
       CASE WHEN sf.recorded THEN sf.severity ELSE f.severity END AS severity,
       CASE WHEN sf.recorded THEN sf.observed_mode ELSE f.observed_mode END AS observed_mode,
       CASE WHEN sf.recorded THEN sf.allowed_modes ELSE f.allowed_modes END AS allowed_modes,
       CASE WHEN sf.recorded THEN sf.details ELSE f.details END AS details,
       sf.recorded
FROM egressscan.scan_finding sf
JOIN egressscan.finding f ON f.finding_id = sf.finding_id;

COMMENT ON VIEW egressscan.scan_findings IS
    'One row per scan and finding it raised: severity, modes and details as that scan left them. '
    'recorded false (scans before 0005): not kept, the finding''s latest values stand in.';

-- Every finding lifetime as the record stood at a time: severity, modes and details as the last
-- finalized scan started before at_time that raised it left them (the finding's latest values
-- when none did, or when at_time is NULL: the record as it stands). Plain SQL over the views above (SECURITY INVOKER, every
-- name qualified), so that the planner inlines it and a reader may call it.
CREATE FUNCTION egressscan.findings_at(at_time timestamptz)
RETURNS SETOF egressscan.findings
LANGUAGE sql STABLE
AS $fn$
SELECT f.finding_id, f.kind,
       CASE WHEN w.finding_id IS NULL THEN f.severity ELSE w.severity END,
       f.account_id, f.region, f.cluster_arn, f.source,
       CASE WHEN w.finding_id IS NULL THEN f.observed_mode ELSE w.observed_mode END,
       CASE WHEN w.finding_id IS NULL THEN f.allowed_modes ELSE w.allowed_modes END,
       CASE WHEN w.finding_id IS NULL THEN f.details ELSE w.details END,
       f.first_seen, f.first_scan_id, f.last_seen, f.last_scan_id, f.resolved_at,
       f.resolved_scan_id, f.resolved_reason
FROM egressscan.findings f
LEFT JOIN LATERAL (
    SELECT x.finding_id, x.severity, x.observed_mode, x.allowed_modes, x.details
    FROM egressscan.scan_findings x
    JOIN egressscan.scans s ON s.scan_id = x.scan_id
    WHERE at_time IS NOT NULL AND x.finding_id = f.finding_id AND s.status IN ('succeeded', 'partial')
      AND s.started_at OPERATOR(pg_catalog.<) at_time
    ORDER BY s.started_at DESC, s.scan_id DESC
    LIMIT 1) w ON true
$fn$;

COMMENT ON FUNCTION egressscan.findings_at(timestamptz) IS
    'The findings view as it stood at at_time: severity, observed_mode, allowed_modes and details '
    'as the last finalized scan started before then that raised the finding left them; NULL: the '
    'findings view itself.';

------------------------------------------------------------------------------------------------
-- Read access: egressscan_reader reads the views (0001 created the role when it could).
------------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        GRANT USAGE ON SCHEMA egressscan TO egressscan_reader;
        GRANT SELECT ON egressscan.schema_versions, egressscan.target_results,
                        egressscan.scan_accounts, egressscan.accounts, egressscan.findings,
                        egressscan.scan_findings
            TO egressscan_reader;
        GRANT EXECUTE ON FUNCTION egressscan.findings_at(timestamptz) TO egressscan_reader;
    ELSE
        RAISE NOTICE 'egressscan: role egressscan_reader does not exist: create it, then grant it SELECT on the views of schema egressscan';
    END IF;
END
$$;
