-- 0003_work_queue.sql - scale-out (SPEC.md section 8): a scan created by `egressscan scan
-- --enqueue` gets one work item per account; `egressscan worker` processes claim them with
-- FOR UPDATE SKIP LOCKED and a lease, write each account's results together with marking its
-- item done (one transaction, after checking the lease is still theirs), and the worker that
-- sees the last item done finalizes the scan.
--
-- Applied by `egressscan migrate` in one transaction on top of 0002 (never edit an applied file:
-- its checksum is recorded). The session's search_path is pg_catalog only, so every object here
-- is schema-qualified. The file must not contain BEGIN/COMMIT.
--
-- Liveness: a scan run by `egressscan scan` holds a session advisory lock while its process
-- lives; an enqueued scan has no such process, so db_scan_begin leaves alone the scans whose
-- options say "enqueued": true (set in the transaction that creates the scan_queue row). Its
-- liveness is its leases: a queue with no lease taken, renewed or released and no item done for
-- scan_queue.stale_after is marked aborted by the next worker or enqueue (queue_abort_stale).

COMMENT ON TABLE egressscan.scan IS
    'One scan run. A running scan of `egressscan scan` holds a session advisory lock on its id; '
    'db_scan_begin marks running scans whose lock is free (their process ended) as aborted, '
    'except enqueued ones (options.enqueued = true, see scan_queue), which live through their '
    'workers'' leases.';

------------------------------------------------------------------------------------------------
-- One row per enqueued scan: what every worker needs to scan its accounts the same way
------------------------------------------------------------------------------------------------

CREATE TABLE egressscan.scan_queue (
    scan_id         bigint PRIMARY KEY REFERENCES egressscan.scan ON DELETE CASCADE,
    -- regions, role_name, external_id, page_size, policy (a file path): never secrets
    options         jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(options) = 'object'),
    items_total     integer NOT NULL CHECK (items_total >= 0),
    enqueued_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the last claim, renewal, completion or release of one of its items
    last_activity   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    stale_after     interval NOT NULL DEFAULT '24 hours' CHECK (stale_after > '0'::interval),
    -- AWS calls of the discovery (the enqueue); the workers' calls are on their items
    api_calls       bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    throttled       bigint NOT NULL DEFAULT 0 CHECK (throttled >= 0),
    retries         bigint NOT NULL DEFAULT 0 CHECK (retries >= 0)
);

COMMENT ON TABLE egressscan.scan_queue IS
    'A scan made by `egressscan scan --enqueue` and processed by `egressscan worker`s. Such a '
    'scan is not aborted by the advisory-lock rule of egressscan.scan; it is aborted when nothing '
    'happened to its work items for stale_after.';

------------------------------------------------------------------------------------------------
-- One row per account of an enqueued scan
------------------------------------------------------------------------------------------------

CREATE TABLE egressscan.work_item (
    scan_id         bigint NOT NULL REFERENCES egressscan.scan_queue ON DELETE CASCADE,
    account_id      text NOT NULL CHECK (account_id ~ '^[0-9]{12}$'),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'leased', 'done')),
    -- how many times a worker claimed it (a claim after a lost lease counts again)
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner     text,           -- host:pid:random of the worker holding it
    lease_expires   timestamptz,
    done_at         timestamptz,
    done_by         text,
    -- the AWS calls the completing worker made since its previous completion
    api_calls       bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    throttled       bigint NOT NULL DEFAULT 0 CHECK (throttled >= 0),
    retries         bigint NOT NULL DEFAULT 0 CHECK (retries >= 0),
    PRIMARY KEY (scan_id, account_id),
    CHECK ((status = 'leased') = (lease_owner IS NOT NULL AND lease_expires IS NOT NULL)),
    CHECK ((status = 'done') = (done_at IS NOT NULL))
);

COMMENT ON TABLE egressscan.work_item IS
    'An account of an enqueued scan. pending: claimable; leased: a worker holds it until '
    'lease_expires (renewed while it works; claimable again once expired); done: its coverage and '
    'clusters were written in the same transaction that set done.';

-- claiming: the items of open queues that are not done
CREATE INDEX work_item_open_idx ON egressscan.work_item (scan_id, account_id)
    WHERE status <> 'done';
-- renewing and releasing a worker's leases
CREATE INDEX work_item_owner_idx ON egressscan.work_item (lease_owner)
    WHERE status = 'leased';

------------------------------------------------------------------------------------------------
-- Public view: the progress of enqueued scans (for SQL users and dashboards)
------------------------------------------------------------------------------------------------

CREATE VIEW egressscan.work_queue AS
SELECT q.scan_id,
       s.status AS scan_status,
       q.enqueued_at,
       q.items_total,
       (pg_catalog.count(*) FILTER (WHERE w.status = 'pending'))::integer AS items_pending,
       (pg_catalog.count(*) FILTER (WHERE w.status = 'leased'))::integer AS items_leased,
       (pg_catalog.count(*) FILTER (WHERE w.status = 'done'))::integer AS items_done,
       (pg_catalog.count(*) FILTER (WHERE w.attempts > 1))::integer AS items_retried,
       (pg_catalog.count(DISTINCT w.lease_owner) FILTER (WHERE w.status = 'leased'))::integer
           AS workers,
       q.last_activity
FROM egressscan.scan_queue q
JOIN egressscan.scan s ON s.scan_id = q.scan_id
LEFT JOIN egressscan.work_item w ON w.scan_id = q.scan_id
GROUP BY q.scan_id, s.status, q.enqueued_at, q.items_total, q.last_activity;

COMMENT ON VIEW egressscan.work_queue IS
    'One row per scan enqueued with `egressscan scan --enqueue`: its work items (one per account) '
    'by state, and how many workers hold leases on it now.';
COMMENT ON COLUMN egressscan.work_queue.scan_status IS 'The scan''s status (see scans).';
COMMENT ON COLUMN egressscan.work_queue.items_total IS 'Work items (accounts) enqueued.';
COMMENT ON COLUMN egressscan.work_queue.items_pending IS 'Not claimed yet (or released).';
COMMENT ON COLUMN egressscan.work_queue.items_leased IS
    'Held by a worker (an expired lease is claimable again).';
COMMENT ON COLUMN egressscan.work_queue.items_done IS 'Written (coverage and clusters).';
COMMENT ON COLUMN egressscan.work_queue.items_retried IS
    'Claimed more than once (a worker died, lost its lease or stopped).';
COMMENT ON COLUMN egressscan.work_queue.workers IS 'Workers holding leases now.';
COMMENT ON COLUMN egressscan.work_queue.last_activity IS
    'Last claim, renewal, completion or release; a queue idle for 24 h is aborted.';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') THEN
        GRANT USAGE ON SCHEMA egressscan TO egressscan_reader;
        GRANT SELECT ON egressscan.work_queue TO egressscan_reader;
    ELSE
        RAISE NOTICE 'egressscan: role egressscan_reader does not exist: create it, then grant it SELECT on egressscan.work_queue';
    END IF;
END
$$;
