-- 0004_fleet.sql - the record across scans (SPEC.md section 5, "The fleet and the record across
-- scans"): the views describe the fleet, not the last scan. A fleet scan defines the fleet and a
-- target that drops out of it leaves (its clusters, history periods and findings close with the
-- reason); a targeted scan (--accounts, --ou) refreshes what it covered and changes nothing else.
-- Coverage is the latest word per target (table fleet_target, kept as results are written), a
-- cluster is verified only when its target's latest word is ok, compliance counts verified
-- clusters of the fleet, and a finding is resolved only by a scan that judged it again.
--
-- Applied by `egressscan migrate` in one transaction on top of 0003 (never edit an applied file:
-- its checksum is recorded). The session's search_path is pg_catalog only, so every object here
-- is schema-qualified. The file must not contain BEGIN/COMMIT. The public views keep their names
-- and columns (CREATE OR REPLACE VIEW keeps grants and comments); new columns are appended.

------------------------------------------------------------------------------------------------
-- Scans: scope, how the SCPs were come by, and whose SCP snapshot judged the scan
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.scan
    ADD COLUMN scope text NOT NULL DEFAULT 'fleet' CHECK (scope IN ('fleet', 'targeted')),
    ADD COLUMN scps_state text CHECK (scps_state IN ('read', 'disabled', 'not_read', 'failed'));

-- Scans made before 0004: an --accounts list (options.accounts > 0) was a targeted scan; the SCP
-- state follows scps_known (a scan that could not read them is recorded as not_read: whether it
-- should have is not known).
UPDATE egressscan.scan SET scope = 'targeted'
WHERE pg_catalog.jsonb_typeof(options -> 'accounts') = 'number'
  AND (options ->> 'accounts')::numeric > 0;
UPDATE egressscan.scan
SET scps_state = CASE WHEN scps_known THEN 'read' ELSE 'not_read' END
WHERE scps_known IS NOT NULL;

COMMENT ON COLUMN egressscan.scan.scope IS
    'fleet: the organization as configured (defines the fleet); targeted: --accounts or --ou on '
    'the command line (refreshes the targets it covered, changes nothing else).';
COMMENT ON COLUMN egressscan.scan.scps_state IS
    'read; disabled (SCPs not enabled in the organization: none apply); not_read (by design: a '
    '--accounts list without --org-role-arn); failed (could not be read: the scan is partial).';

------------------------------------------------------------------------------------------------
-- Coverage statuses: scp_denied (an SCP denies the scanner there) and suspended (account-level)
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.target_result DROP CONSTRAINT target_result_status_check;
ALTER TABLE egressscan.target_result ADD CONSTRAINT target_result_status_check
    CHECK (status IN ('ok', 'assume_role_denied', 'access_denied', 'scp_denied', 'region_disabled',
                      'throttled', 'suspended', 'error'));

------------------------------------------------------------------------------------------------
-- The latest word per target of the fleet
------------------------------------------------------------------------------------------------

-- One row per target ever tried: the result of the latest scan that tried it (written in the
-- transaction of that result, newest scanned_at wins), when it was last ok, and whether and why
-- it left the fleet. An account whose latest word is account-level has a '*' row, removed again
-- by a newer regional result of the account.
CREATE TABLE egressscan.fleet_target (
    account_id      text NOT NULL REFERENCES egressscan.account,
    region          text NOT NULL CHECK (region = '*' OR region ~ '^[a-z0-9-]{1,32}$'),
    scan_id         bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    status          text NOT NULL
                    CHECK (status IN ('ok', 'assume_role_denied', 'access_denied', 'scp_denied',
                                      'region_disabled', 'throttled', 'suspended', 'error')),
    error_code      text,
    error_message   text,
    clusters        integer CHECK (clusters >= 0),
    scanned_at      timestamptz NOT NULL,
    last_ok_at      timestamptz,
    left_at         timestamptz,
    left_scan_id    bigint REFERENCES egressscan.scan ON DELETE SET NULL,
    left_reason     text CHECK (left_reason IN ('left_organization', 'suspended', 'excluded',
                                                'region_removed')),
    PRIMARY KEY (account_id, region),
    CHECK ((left_at IS NULL) = (left_reason IS NULL))
);

COMMENT ON TABLE egressscan.fleet_target IS
    'The latest word per target (account x region, or account x * for account-level results): '
    'what the latest scan that tried it found, when it was last ok, and whether it left the fleet.';

CREATE INDEX fleet_target_in_fleet_idx ON egressscan.fleet_target (account_id)
    WHERE left_at IS NULL;

-- From the history: each target's latest result among finalized scans, its last ok.
INSERT INTO egressscan.fleet_target (account_id, region, scan_id, status, error_code,
                                     error_message, clusters, scanned_at, last_ok_at)
SELECT l.account_id, l.region, l.scan_id, l.status, l.error_code, l.error_message, l.clusters,
       l.scanned_at, ok.last_ok_at
FROM (
    SELECT DISTINCT ON (r.account_id, r.region) r.*
    FROM egressscan.target_result r
    JOIN egressscan.scan s ON s.scan_id = r.scan_id AND s.status IN ('succeeded', 'partial')
    ORDER BY r.account_id, r.region, r.scanned_at DESC, r.scan_id DESC
) l
LEFT JOIN (
    SELECT r.account_id, r.region, pg_catalog.max(r.scanned_at) AS last_ok_at
    FROM egressscan.target_result r
    JOIN egressscan.scan s ON s.scan_id = r.scan_id AND s.status IN ('succeeded', 'partial')
    WHERE r.status = 'ok'
    GROUP BY r.account_id, r.region
) ok ON ok.account_id = l.account_id AND ok.region = l.region;

-- An account-level row older than a regional result of the account is not its latest word.
DELETE FROM egressscan.fleet_target a
WHERE a.region = '*'
  AND EXISTS (SELECT 1 FROM egressscan.fleet_target b
              WHERE b.account_id = a.account_id AND b.region <> '*'
                AND b.scanned_at > a.scanned_at);
UPDATE egressscan.fleet_target a
SET last_ok_at = (SELECT pg_catalog.max(b.last_ok_at) FROM egressscan.fleet_target b
                  WHERE b.account_id = a.account_id AND b.region <> '*')
WHERE a.region = '*';

------------------------------------------------------------------------------------------------
-- Clusters: why one left the current views, and the judgement of the last scan that judged it
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.cluster
    ADD COLUMN gone_reason text CHECK (gone_reason IN ('cluster_gone', 'left_organization',
                                                       'suspended', 'excluded', 'region_removed')),
    ADD COLUMN compliance text CHECK (compliance IN ('compliant', 'noncompliant', 'exempt',
                                                     'unknown'));
UPDATE egressscan.cluster SET gone_reason = 'cluster_gone' WHERE gone_at IS NOT NULL;

ALTER TABLE egressscan.cluster_mode_interval
    ADD COLUMN closed_reason text CHECK (closed_reason IN ('cluster_gone', 'left_organization',
                                                           'suspended', 'excluded',
                                                           'region_removed'));
UPDATE egressscan.cluster_mode_interval i SET closed_reason = 'cluster_gone'
FROM egressscan.cluster c
WHERE c.cluster_arn = i.cluster_arn AND i.valid_to IS NOT NULL AND c.gone_at = i.valid_to;

------------------------------------------------------------------------------------------------
-- Findings: why one was resolved; compliance counts of the fleet
------------------------------------------------------------------------------------------------

ALTER TABLE egressscan.finding
    ADD COLUMN resolved_reason text CHECK (resolved_reason IN ('not_raised', 'cluster_gone',
                                                               'left_organization', 'suspended',
                                                               'excluded', 'region_removed'));
UPDATE egressscan.finding SET resolved_reason = 'not_raised' WHERE resolved_at IS NOT NULL;

COMMENT ON COLUMN egressscan.finding.resolved_reason IS
    'not_raised: a scan that judged it again no longer raised it; cluster_gone: the cluster no '
    'longer exists; left_organization, suspended, excluded, region_removed: its target left the '
    'fleet.';

-- Written in the transaction of the scan's findings (which must not lock the scan row: its end
-- runs under the scan row's share lock), hence whose SCP snapshot judged the scan lives here.
ALTER TABLE egressscan.scan_compliance
    ADD COLUMN unverified integer CHECK (unverified >= 0),
    ADD COLUMN targets_total integer CHECK (targets_total >= 0),
    ADD COLUMN targets_ok integer CHECK (targets_ok >= 0),
    ADD COLUMN targets_failed integer CHECK (targets_failed >= 0),
    ADD COLUMN intent_scan_id bigint REFERENCES egressscan.scan ON DELETE SET NULL;
UPDATE egressscan.scan_compliance c SET intent_scan_id = c.scan_id
FROM egressscan.scan s WHERE s.scan_id = c.scan_id AND s.scps_known;

COMMENT ON COLUMN egressscan.scan_compliance.intent_scan_id IS
    'The scan whose SCP snapshot judged this one: itself when it read the SCPs, else the latest '
    'finalized scan that had; NULL when none had (SCP intent unknown).';

COMMENT ON TABLE egressscan.scan_compliance IS
    'The fleet''s compliance after each scan whose findings were written: verified clusters by '
    'judgement, unverified ones apart, and the fleet''s coverage rows (NULL: scans before 0004, '
    'whose counts were of the scan alone).';

------------------------------------------------------------------------------------------------
-- Public views (SPEC.md section 5)
------------------------------------------------------------------------------------------------

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
       s.scps_known,
       s.scope,
       s.scps_state,
       (SELECT c.intent_scan_id FROM egressscan.scan_compliance c
        WHERE c.scan_id = s.scan_id) AS intent_scan_id
FROM egressscan.scan s
LEFT JOIN LATERAL (
    SELECT pg_catalog.count(*)::integer AS targets_total,
           (pg_catalog.count(*) FILTER (WHERE r.status = 'ok'))::integer AS targets_ok,
           (pg_catalog.count(*) FILTER (WHERE r.status NOT IN ('ok', 'suspended')))::integer
               AS targets_failed,
           COALESCE(pg_catalog.sum(r.clusters) FILTER (WHERE r.status = 'ok'), 0)::integer
               AS clusters_seen
    FROM egressscan.target_result r
    WHERE s.status = 'running' AND r.scan_id = s.scan_id
) live ON s.status = 'running';

COMMENT ON COLUMN egressscan.scans.status IS
    'running, succeeded (every target scanned, SCPs read or not needed), partial (some targets '
    'not scanned, or the SCPs could not be read), failed (the run itself failed, see error), '
    'aborted (its process ended without finalizing).';
COMMENT ON COLUMN egressscan.scans.targets_failed IS
    'Targets not scanned (status other than ok; a suspended account is not a failure).';
COMMENT ON COLUMN egressscan.scans.scope IS
    'fleet: the organization as configured; targeted: --accounts or --ou on the command line '
    '(changes only the targets it covered).';
COMMENT ON COLUMN egressscan.scans.scps_state IS
    'read, disabled (SCPs not enabled: none apply), not_read (a --accounts list without '
    '--org-role-arn, by design) or failed (the scan is partial); NULL: not recorded.';
COMMENT ON COLUMN egressscan.scans.intent_scan_id IS
    'The scan whose SCP snapshot judged this one (itself when it read them); NULL: SCP intent '
    'unknown, or drift not evaluated.';

CREATE OR REPLACE VIEW egressscan.coverage AS
SELECT t.scan_id,
       t.account_id,
       a.name AS account_name,
       t.region,
       t.status,
       t.error_code,
       t.error_message,
       t.clusters,
       t.scanned_at,
       t.last_ok_at
FROM egressscan.fleet_target t
LEFT JOIN egressscan.account a ON a.account_id = t.account_id
WHERE t.left_at IS NULL
  AND (t.region = '*'
       OR NOT EXISTS (SELECT 1 FROM egressscan.fleet_target w
                      WHERE w.account_id = t.account_id AND w.region = '*'
                        AND w.left_at IS NULL));

COMMENT ON VIEW egressscan.coverage IS
    'One row per target (account x region) of the fleet, as the latest scan that tried it left '
    'it: a targeted scan updates the targets it covered, a fleet scan all of them. An account '
    'whose latest word is account-level (AssumeRole denied, suspended, regions not listable) '
    'shows one row with region *. Targets that left the fleet are not here.';
COMMENT ON COLUMN egressscan.coverage.scan_id IS 'The latest scan that tried this target.';
COMMENT ON COLUMN egressscan.coverage.status IS
    'ok, assume_role_denied, access_denied, scp_denied, region_disabled, throttled, suspended or '
    'error.';
COMMENT ON COLUMN egressscan.coverage.scanned_at IS 'When that scan tried the target.';
COMMENT ON COLUMN egressscan.coverage.last_ok_at IS
    'When the target was last scanned ok (for a * row: any region of the account); NULL: never.';

CREATE OR REPLACE VIEW egressscan.current_clusters AS
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
       c.last_scan_id,
       COALESCE(t.status = 'ok' AND w.account_id IS NULL, false) AS verified,
       t.last_ok_at AS last_verified_at,
       c.compliance
FROM egressscan.cluster c
LEFT JOIN egressscan.account a ON a.account_id = c.account_id
LEFT JOIN egressscan.fleet_target t
       ON t.account_id = c.account_id AND t.region = c.region AND t.left_at IS NULL
LEFT JOIN egressscan.fleet_target w
       ON w.account_id = c.account_id AND w.region = '*' AND w.left_at IS NULL
WHERE c.gone_at IS NULL;

COMMENT ON VIEW egressscan.current_clusters IS
    'Every EKS cluster of the fleet as last seen. A cluster leaves this view when an ok scan of '
    'its target no longer lists it, or when its target leaves the fleet; a target that could not '
    'be scanned keeps its clusters here, not verified.';
COMMENT ON COLUMN egressscan.current_clusters.verified IS
    'true when the latest scan that tried the cluster''s target scanned it ok; false: its last '
    'known state, not counted as compliant anywhere.';
COMMENT ON COLUMN egressscan.current_clusters.last_verified_at IS
    'When the cluster''s target was last scanned ok.';
COMMENT ON COLUMN egressscan.current_clusters.compliance IS
    'compliant, noncompliant, exempt or unknown: the judgement of the last scan that judged the '
    'cluster (NULL: never judged). Meaningful as a current fact only when verified.';

CREATE OR REPLACE VIEW egressscan.cluster_history AS
SELECT i.cluster_arn,
       i.account_id,
       i.region,
       i.egress_mode,
       i.valid_from,
       i.valid_to,
       c.cluster_name,
       i.opened_scan_id,
       i.closed_scan_id,
       i.closed_reason
FROM egressscan.cluster_mode_interval i
JOIN egressscan.cluster c ON c.cluster_arn = i.cluster_arn;

COMMENT ON COLUMN egressscan.cluster_history.closed_reason IS
    'Why the period ended without a new mode: cluster_gone, or its target left the fleet '
    '(left_organization, suspended, excluded, region_removed); NULL when open or when the mode '
    'changed.';

-- A resolution by a scan that then failed or was aborted does not count (as in 0002), and a
-- finding raised by such a scan alone is not a fact of the fleet.
CREATE OR REPLACE VIEW egressscan.current_drift AS
SELECT f.finding_id,
       f.last_scan_id AS scan_id,
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
FROM egressscan.finding f
LEFT JOIN egressscan.account a ON a.account_id = f.account_id
WHERE (f.resolved_at IS NULL
       OR f.resolved_scan_id IN (SELECT x.scan_id FROM egressscan.scan x
                                 WHERE x.status IN ('failed', 'aborted')))
  AND NOT EXISTS (SELECT 1 FROM egressscan.finding g
                  WHERE g.kind = f.kind AND g.account_id = f.account_id
                    AND g.region = f.region
                    AND COALESCE(g.cluster_arn, '') = COALESCE(f.cluster_arn, '')
                    AND g.source = f.source AND g.first_seen > f.first_seen)
  AND NOT COALESCE(f.first_scan_id = f.last_scan_id
                   AND f.last_scan_id IN (SELECT x.scan_id FROM egressscan.scan x
                                          WHERE x.status IN ('failed', 'aborted')), false);

COMMENT ON VIEW egressscan.current_drift IS
    'The open findings of the fleet, whichever scan last confirmed them (scan_id, last_seen). A '
    'finding is resolved only by a scan that judged it again (scanned its target ok and could '
    'evaluate what it rests on) or when its target leaves the fleet; a scan that could not judge '
    'it carries it over with the same finding_id and first_seen.';
COMMENT ON COLUMN egressscan.current_drift.scan_id IS 'The latest scan that raised (confirmed) it.';
COMMENT ON COLUMN egressscan.current_drift.last_seen IS
    'Start time of the latest scan that raised (confirmed) it.';

CREATE OR REPLACE VIEW egressscan.daily_compliance AS
SELECT d.day,
       c.clusters,
       c.compliant,
       c.noncompliant,
       c.exempt,
       COALESCE(c.targets_total, d.targets_total) AS targets_total,
       COALESCE(c.targets_ok, d.targets_ok) AS targets_ok,
       c.unknown,
       COALESCE(c.targets_failed, d.targets_failed) AS targets_failed,
       d.scan_id,
       c.unverified
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
    'One row per UTC day (by started_at) that had a finalized scan (succeeded or partial): the '
    'fleet after the LAST finalized scan of that day, targeted or not. Compliance counts only '
    'verified clusters (their target''s latest word is ok); the others are in unverified.';
COMMENT ON COLUMN egressscan.daily_compliance.clusters IS
    'Verified clusters of the fleet (compliant + noncompliant + exempt + unknown); NULL when the '
    'scan''s drift was not evaluated.';
COMMENT ON COLUMN egressscan.daily_compliance.targets_total IS
    'Targets of the fleet (coverage rows) after that scan.';
COMMENT ON COLUMN egressscan.daily_compliance.targets_ok IS 'Of them, latest word ok.';
COMMENT ON COLUMN egressscan.daily_compliance.targets_failed IS
    'Of them, not scanned by the latest scan that tried them (suspended accounts excluded).';
COMMENT ON COLUMN egressscan.daily_compliance.unknown IS
    'Verified clusters neither compliant nor non-compliant (unknown mode value or intent).';
COMMENT ON COLUMN egressscan.daily_compliance.unverified IS
    'Clusters of the fleet whose target was not scanned ok by the latest scan that tried it: '
    'their last known state, never counted as compliant.';
