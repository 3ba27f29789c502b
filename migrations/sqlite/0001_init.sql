-- berth metadata, SQLite. Timestamps are milliseconds since the Unix epoch.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

-- Every blob the registry stores, once, whatever the number of repositories using it.
CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY,
    size        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- A blob is visible in a repository only through a link.
CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT   NOT NULL REFERENCES blobs(digest),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

-- Manifests keep the exact bytes that were pushed.
CREATE TABLE manifests (
    digest        TEXT   PRIMARY KEY,
    media_type    TEXT   NOT NULL,
    size          BIGINT NOT NULL,
    content       BLOB   NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX manifests_by_subject ON manifests(subject);

-- What each manifest points at (config, layers, child manifests, subject),
-- for garbage collection and pruning.
CREATE TABLE manifest_references (
    manifest_digest TEXT NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
    child_digest    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    PRIMARY KEY (manifest_digest, child_digest, kind)
);
CREATE INDEX manifest_references_by_child ON manifest_references(child_digest);

CREATE TABLE repository_manifests (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT   NOT NULL REFERENCES manifests(digest),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_manifests_by_digest ON repository_manifests(digest);

CREATE TABLE tags (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name          TEXT   NOT NULL,
    digest        TEXT   NOT NULL REFERENCES manifests(digest),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_by_digest ON tags(repository_id, digest);

CREATE TABLE uploads (
    id          TEXT   PRIMARY KEY,
    repository  TEXT   NOT NULL,
    algorithm   TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX uploads_by_update ON uploads(updated_at);

CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT,
    -- 0 or 1: an integer, because sqlx's Any driver reads no SQLite booleans.
    super_user    BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);
