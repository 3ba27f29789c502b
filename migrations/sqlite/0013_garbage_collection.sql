-- Online garbage collection (src/domain/garbage/, ARCHITECTURE.md "Garbage
-- collection").
--
-- `touched_at` is when the row was last used by a write or a push (an
-- upload completed, a mount, a manifest put, a HEAD of the blob): garbage
-- collection leaves alone whatever was touched within its grace period.
-- Times are milliseconds since the epoch by the database's clock. A row is
-- as young as the later of `created_at` and `touched_at`: rows from before
-- this migration (0) count as touched when they were made, and the columns
-- are added without rewriting the tables.
ALTER TABLE blobs ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repository_blobs ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repository_manifests ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0;

-- A blob marked for deletion: set in the transaction that finds it
-- unreferenced (its links deleted there), the bytes deleted after that
-- commit, the row deleted last. Until then the row is the pending delete:
-- nothing links, mounts or references it, an upload of the same content
-- waits for it to go, and a run that died leaves it for the next run. The
-- value is the marking run's deadline: no storage delete is sent after it,
-- so past it the row may be taken over (by an upload) or marked again.
ALTER TABLE blobs ADD COLUMN deleting_until BIGINT;
CREATE INDEX blobs_being_deleted ON blobs(deleting_until) WHERE deleting_until IS NOT NULL;

-- "Is this manifest still named somewhere": by tag and by tag history,
-- whatever the repository.
CREATE INDEX tags_by_manifest ON tags(digest);
CREATE INDEX tag_revisions_by_digest ON tag_revisions(digest, repository_id);

-- Each garbage collection run (not dry runs), updated as it goes: its
-- progress while it runs, what it did once it ended.
CREATE TABLE gc_runs (
    id                 TEXT   PRIMARY KEY,
    replica            TEXT   NOT NULL,
    started_at         BIGINT NOT NULL,
    finished_at        BIGINT,
    -- What it is doing (resuming, manifests, blob-links, blobs, done).
    phase              TEXT   NOT NULL,
    -- Succeeded, Failed or Interrupted; NULL while it runs.
    outcome            TEXT,
    error              TEXT,
    manifests_examined BIGINT NOT NULL DEFAULT 0,
    manifests_removed  BIGINT NOT NULL DEFAULT 0,
    blobs_examined     BIGINT NOT NULL DEFAULT 0,
    blobs_removed      BIGINT NOT NULL DEFAULT 0,
    links_removed      BIGINT NOT NULL DEFAULT 0,
    bytes_freed        BIGINT NOT NULL DEFAULT 0,
    -- JSON: the first things it removed (kind, repository, digest, size).
    removed            TEXT
);
CREATE INDEX gc_runs_by_start ON gc_runs(started_at);
