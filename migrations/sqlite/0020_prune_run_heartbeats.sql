-- A running prune writes its heartbeat every few seconds
-- (`PrunerStore::prune_run_alive`), so that a run starting can tell a run
-- still going (on any replica) from one whose replica died: only the latter
-- is marked Interrupted; while the former goes on, a manual run is refused
-- and a scheduled one skipped (as a CronJob with concurrencyPolicy Forbid).
ALTER TABLE prune_runs ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0;
