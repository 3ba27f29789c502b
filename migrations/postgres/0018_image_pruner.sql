-- The image pruner (src/domain/pruner.rs; OpenShift's ImagePruner named
-- `cluster`): one row of settings, changed at run time by `berth adm
-- pruner set`, and the history of its runs.
CREATE TABLE image_pruner (
    -- Always 1: there is one pruner.
    id                               BIGINT PRIMARY KEY,
    -- Cron, five fields, in UTC.
    schedule                         TEXT   NOT NULL,
    -- 0 or 1 (sqlx's Any driver reads no SQLite booleans).
    suspend                          BIGINT NOT NULL,
    keep_tag_revisions               BIGINT NOT NULL,
    keep_younger_than_ms             BIGINT NOT NULL,
    successful_jobs_history_limit    BIGINT NOT NULL,
    failed_jobs_history_limit        BIGINT NOT NULL,
    ignore_invalid_image_references  BIGINT NOT NULL,
    -- The latest scheduled time a run was started for (ms since the
    -- epoch): a scheduled time after it and not after now is due. Set to
    -- the time of a change of schedule, so that a new schedule starts
    -- from then, not from the past.
    scheduled_through                BIGINT NOT NULL,
    updated_by                       TEXT,
    updated_at                       BIGINT NOT NULL
);
INSERT INTO image_pruner (id, schedule, suspend, keep_tag_revisions, keep_younger_than_ms,
                          successful_jobs_history_limit, failed_jobs_history_limit,
                          ignore_invalid_image_references, scheduled_through, updated_by,
                          updated_at)
VALUES (1, '0 0 * * *', 0, 3, 3600000, 3, 3, 1, 0, NULL, 0);

-- Each run (scheduled or `berth adm prune images --confirm`; not dry
-- runs). Only the latest successful and failed runs are kept, as many as
-- the history limits say.
CREATE TABLE prune_runs (
    id                 TEXT   PRIMARY KEY,
    replica            TEXT   NOT NULL,
    -- Schedule or Manual.
    trigger_kind       TEXT   NOT NULL,
    started_at         BIGINT NOT NULL,
    finished_at        BIGINT,
    -- trimming, collecting, done.
    phase              TEXT   NOT NULL,
    -- Succeeded, Failed or Interrupted; NULL while it runs.
    outcome            TEXT,
    error              TEXT,
    -- JSON: the rules it ran with (keepTagRevisions, keepYoungerThan,
    -- namespace).
    options            TEXT   NOT NULL,
    revisions_removed  BIGINT NOT NULL DEFAULT 0,
    tags_removed       BIGINT NOT NULL DEFAULT 0,
    manifests_removed  BIGINT NOT NULL DEFAULT 0,
    blobs_removed      BIGINT NOT NULL DEFAULT 0,
    bytes_freed        BIGINT NOT NULL DEFAULT 0,
    -- The garbage collection run that removed what the trimming left
    -- unreferenced.
    gc_run             TEXT,
    -- JSON: the first revisions it removed (repository, tag, generation,
    -- digest).
    removed            TEXT
);
CREATE INDEX prune_runs_by_start ON prune_runs(started_at);
