-- 0006_mode_dating.sql - when a mode change was made, from EKS itself (issue 17, section 2).
-- Between two scans a change is known only as "some time after the last scan". When a scan sees a
-- cluster's mode change (or sees for the first time, in a target scanned before, a cluster whose
-- mode is not the default), it reads that cluster's ControlPlaneEgressUpdate updates (ListUpdates,
-- DescribeUpdate) and records on the period the scan opened which update made it and when:
--
--   update_status Successful   changed_at = the update's createdAt, update_id its id
--   Failed, Cancelled,         the newest such update towards the observed mode, recorded as
--   InProgress                 such: it did not (yet) make the change, so changed_at stays NULL
--                              and the period keeps the scan's valid_from
--   none                       EKS has no egress update towards the observed mode: the cluster
--                              was replaced (deleted and created again under the same name) or
--                              created with that mode
--   NULL                       not looked up (the first scan of the target, periods before 0006,
--                              a lookup that failed: see the scan's log)
--
-- valid_from / valid_to keep their meaning (when scans saw the mode); changed_at says when EKS
-- made the change that opened the period.
--
-- Applied by `egressscan migrate` in one transaction on top of 0005 (it does not depend on any
-- other migration). The session's search_path is pg_catalog only, so every object here is
-- schema-qualified. The file must not contain BEGIN/COMMIT. The public view keeps its name and
-- columns (CREATE OR REPLACE VIEW keeps grants and comments); new columns are appended.

ALTER TABLE egressscan.cluster_mode_interval
    ADD COLUMN changed_at timestamptz,
    ADD COLUMN update_id text CHECK (update_id ~ '^[A-Za-z0-9-]{1,64}$'),
    ADD COLUMN update_status text CHECK (update_status IN ('Successful', 'Failed', 'Cancelled',
                                                           'InProgress', 'none')),
    ADD CHECK (changed_at IS NULL OR update_status = 'Successful'),
    ADD CHECK ((update_id IS NULL) = (update_status IS NULL OR update_status = 'none'));

COMMENT ON COLUMN egressscan.cluster_mode_interval.changed_at IS
    'When EKS made the change that opened this period: the createdAt of the successful '
    'ControlPlaneEgressUpdate towards this mode; NULL when not known (see update_status).';
COMMENT ON COLUMN egressscan.cluster_mode_interval.update_status IS
    'Successful (changed_at dates the change), Failed, Cancelled or InProgress (that update did '
    'not make the change: undated), none (no egress update towards this mode: the cluster was '
    'replaced or created with it); NULL: not looked up.';

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
       i.closed_reason,
       i.changed_at,
       i.update_id,
       i.update_status
FROM egressscan.cluster_mode_interval i
JOIN egressscan.cluster c ON c.cluster_arn = i.cluster_arn;

COMMENT ON COLUMN egressscan.cluster_history.changed_at IS
    'When EKS made the change that opened this period (the createdAt of the successful '
    'ControlPlaneEgressUpdate towards this mode); NULL when not known: see update_status.';
COMMENT ON COLUMN egressscan.cluster_history.update_id IS
    'The EKS update (DescribeUpdate id) behind update_status; NULL when none or not looked up.';
COMMENT ON COLUMN egressscan.cluster_history.update_status IS
    'Successful: changed_at dates the change. Failed, Cancelled, InProgress: the newest egress '
    'update towards this mode did not (yet) make it; the period stays undated. none: EKS has no '
    'egress update towards this mode (the cluster was replaced, or created with it). NULL: not '
    'looked up (only a change, or a new cluster with a mode other than the default in a target '
    'scanned before, is).';

-- Read access: unchanged (the view keeps its grants); stated again for databases whose reader
-- role was created after 0001.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        GRANT SELECT ON egressscan.cluster_history TO egressscan_reader;
    END IF;
END
$$;
