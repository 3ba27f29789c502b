-- Background jobs that run on one replica at a time (src/jobs/). A replica
-- claims a due job by setting its lease (holder, lease id, expiry) with one
-- conditional UPDATE, renews the lease while the job runs, and on finishing
-- records the outcome and the next run and clears the lease. A replica that
-- dies holding a lease holds it only until lease_until; then any replica
-- may claim the job again. Times are milliseconds since the Unix epoch by
-- the database's clock, so that replicas' clocks need not agree.
CREATE TABLE jobs (
    name                 TEXT   PRIMARY KEY,
    lease_holder         TEXT,
    lease_id             TEXT,
    lease_until          BIGINT,
    last_started_at      BIGINT,
    last_finished_at     BIGINT,
    last_outcome         TEXT,
    last_error           TEXT,
    last_replica         TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    runs                 BIGINT NOT NULL DEFAULT 0,
    next_run_at          BIGINT NOT NULL
);
