-- Pull secrets: credentials for upstream registries, per namespace, for
-- imports (`berth create secret docker-registry|generic`). What they unlock
-- (passwords, auth strings, tokens) is in `sealed`, encrypted with AES-256-GCM
-- under the key `key_id` names (src/domain/secrets/cipher.rs), bound to the
-- namespace and name; the servers and user names are kept in clear in
-- `registries` (JSON), so that secrets are listed and matched to an upstream
-- without the key. Deleting the namespace deletes its secrets.
CREATE TABLE pull_secrets (
    namespace   TEXT   COLLATE "C" NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    name        TEXT   COLLATE "C" NOT NULL,
    uid         TEXT   NOT NULL,
    secret_type TEXT   NOT NULL,
    registries  TEXT   NOT NULL,
    key_id      TEXT   NOT NULL,
    sealed      BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX pull_secrets_by_key ON pull_secrets(key_id);
