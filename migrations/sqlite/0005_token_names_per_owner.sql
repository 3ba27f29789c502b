-- Token names were unique per namespace, so all user tokens (namespace '')
-- shared one set of names: a user making a token named like another user's
-- was told it exists. A user's token names are now unique for that user;
-- a service account's, within its namespace, as the REST API names them
-- (`/namespaces/NS/tokens/NAME`, read by that project's admins only).
-- SQLite cannot drop a table constraint: the table is made again.
CREATE TABLE tokens_per_owner (
    uid               TEXT   PRIMARY KEY,
    name              TEXT   NOT NULL,
    namespace         TEXT   NOT NULL DEFAULT '',
    secret_hash       TEXT   NOT NULL UNIQUE,
    subject_kind      TEXT   NOT NULL,
    subject_name      TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT
);
INSERT INTO tokens_per_owner (uid, name, namespace, secret_hash, subject_kind, subject_name, created_at, expires_at)
SELECT uid, name, namespace, secret_hash, subject_kind, subject_name, created_at, expires_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_per_owner RENAME TO tokens;
CREATE INDEX tokens_by_subject ON tokens(subject_kind, subject_name);
CREATE UNIQUE INDEX tokens_name_per_owner ON tokens (
    namespace,
    (CASE WHEN subject_kind = 'User' THEN subject_name ELSE '' END),
    name
);
