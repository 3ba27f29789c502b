-- Uploads are recorded part by part, so that any replica can continue one:
-- the row holds the upload's state after its last recorded part (bytes,
-- parts, the hash of those bytes saved by sha2), changed in the same
-- transaction that records the part. `parts` is also the row's version: a
-- part is recorded only if the row still has the part before it.
-- (0006 is kept for the jobs table.)
ALTER TABLE uploads ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN parts BIGINT NOT NULL DEFAULT 0;
-- NULL only in rows from before this migration: such an upload cannot be
-- continued (its client is told it is unknown, and starts again).
ALTER TABLE uploads ADD COLUMN hash_state BYTEA;

-- Which write of each part counts: on object stores each write of a part is
-- an object of its own (`uploads/<id>/parts/<number>-<token>`).
CREATE TABLE upload_parts (
    upload_id  TEXT   NOT NULL,
    number     BIGINT NOT NULL,
    token      TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
