-- Scheduled imports: when each spec tag's next import check is due, and how
-- many checks in a row have failed (for the backoff). `import_due_at` is a
-- Timestamp (milliseconds since the epoch); NULL: no check due (the source
-- is not another registry's image, or the scheduler has none to make).
ALTER TABLE image_stream_spec_tags ADD COLUMN import_due_at BIGINT;
ALTER TABLE image_stream_spec_tags ADD COLUMN import_failures BIGINT NOT NULL DEFAULT 0;
-- The scheduler's scan: the due tags, oldest first.
CREATE INDEX image_stream_spec_tags_by_import_due ON image_stream_spec_tags(import_due_at);

-- Spec tags with a DockerImage source from before this migration: their
-- first check is due at once.
UPDATE image_stream_spec_tags SET import_due_at = 0 WHERE from_kind = 'DockerImage';
