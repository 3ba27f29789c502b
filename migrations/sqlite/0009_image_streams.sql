-- Every repository is an image stream (OpenShift's image.openshift.io/v1
-- ImageStream): the stream's own fields, its spec tags (what `berth tag`
-- asked for), every tag's history of revisions (status.tags[].items,
-- newest first) and each tag's conditions. Rows go with their repository.
-- The `tags` table stays the pull path's answer; a tag's row and its
-- newest revision are written in one transaction, so they always agree.

CREATE TABLE image_streams (
    repository_id BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    uid           TEXT   NOT NULL,
    -- Moves on with every change of the spec and every revision: a
    -- revision's generation names it in `berth rollback --to-generation`.
    generation    BIGINT NOT NULL,
    -- 0 or 1 (sqlx's Any driver reads no SQLite booleans).
    lookup_local  BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE image_stream_spec_tags (
    repository_id    BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name             TEXT   NOT NULL,
    -- DockerImage, ImageStreamTag or ImageStreamImage; NULL: no source.
    from_kind        TEXT,
    from_namespace   TEXT,
    from_name        TEXT,
    reference        BIGINT NOT NULL DEFAULT 0,
    reference_policy TEXT   NOT NULL,
    import_scheduled BIGINT NOT NULL DEFAULT 0,
    import_insecure  BIGINT NOT NULL DEFAULT 0,
    import_mode      TEXT   NOT NULL,
    generation       BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
-- Tags that follow another tag of their stream (`berth tag --alias`).
CREATE INDEX image_stream_spec_tags_by_source ON image_stream_spec_tags(repository_id, from_kind, from_name);

CREATE TABLE tag_revisions (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    tag            TEXT   NOT NULL,
    generation     BIGINT NOT NULL,
    digest         TEXT   NOT NULL,
    -- NULL: an image berth serves (this registry's NS/NAME@DIGEST).
    docker_image_reference TEXT,
    created_at     BIGINT NOT NULL,
    created_by     TEXT,
    client_address TEXT,
    -- Push, Tag, Rollback or Import.
    cause          TEXT   NOT NULL,
    -- What it was tagged, rolled back or imported from.
    source         TEXT,
    PRIMARY KEY (repository_id, tag, generation)
);

CREATE TABLE tag_conditions (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    tag            TEXT   NOT NULL,
    condition_type TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    reason         TEXT,
    message        TEXT,
    last_transition_at BIGINT NOT NULL,
    generation     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, tag, condition_type)
);

-- Repositories and tags from before this migration: one stream each, and
-- the tag's current image as its one revision.
INSERT INTO image_streams (repository_id, uid, generation, lookup_local, created_at)
SELECT id, lower(hex(randomblob(16))), 1, 0, created_at FROM repositories;
INSERT INTO tag_revisions (repository_id, tag, generation, digest, docker_image_reference,
                           created_at, created_by, client_address, cause, source)
SELECT repository_id, name, 1, digest, NULL, updated_at, NULL, NULL, 'Push', NULL FROM tags;
