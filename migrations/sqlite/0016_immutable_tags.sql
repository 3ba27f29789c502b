-- Immutable tags (`berth set immutable-tags NS[/REPO] PATTERN…`): a tag of
-- a repository matching one of the patterns of its namespace's policy
-- (repository '') or of its own is never moved to another image nor
-- deleted once pushed. Patterns are globs (`*`, `?`), one per line.
-- Deleting the namespace deletes its policies.
CREATE TABLE immutable_tag_policies (
    namespace  TEXT   NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    -- The repository's name within the namespace (`app`, `team/app`);
    -- '' for the policy of the whole namespace.
    repository TEXT   NOT NULL DEFAULT '',
    patterns   TEXT   NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, repository)
);
