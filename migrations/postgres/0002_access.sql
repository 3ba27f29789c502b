-- Access control: namespaces, groups, service accounts, role bindings,
-- tokens and the keys that sign bearer tokens.

-- Namespaces (OpenShift "projects"): the first component of repository names.
CREATE TABLE namespaces (
    name        TEXT   COLLATE "C" PRIMARY KEY,
    uid         TEXT   NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);
-- Repositories pushed before namespaces existed get theirs.
INSERT INTO namespaces (name, uid, created_by, created_at)
SELECT split_part(name, '/', 1), md5(random()::text || split_part(name, '/', 1)), NULL, MIN(created_at)
FROM repositories GROUP BY split_part(name, '/', 1);

ALTER TABLE users ADD COLUMN uid TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET uid = md5(random()::text || name) WHERE uid = '';

CREATE TABLE groups (
    name        TEXT   PRIMARY KEY,
    uid         TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_name  TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    user_name   TEXT NOT NULL,
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_by_user ON group_members(user_name);

CREATE TABLE service_accounts (
    namespace   TEXT   NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    uid         TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- One row per (role, subject) bound in a namespace; namespace '' is
-- cluster-wide. Subjects need not exist (as with `oc policy`).
CREATE TABLE role_bindings (
    namespace         TEXT   NOT NULL,
    role              TEXT   NOT NULL,
    subject_kind      TEXT   NOT NULL,
    subject_name      TEXT   NOT NULL,
    subject_namespace TEXT   NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (namespace, role, subject_kind, subject_name, subject_namespace)
);

-- Opaque tokens. Only the SHA-256 of the secret is kept; the secret is
-- shown once, when the token is created. Deleting a row revokes it.
CREATE TABLE tokens (
    uid               TEXT   PRIMARY KEY,
    name              TEXT   NOT NULL,
    namespace         TEXT   NOT NULL DEFAULT '',
    secret_hash       TEXT   NOT NULL UNIQUE,
    subject_kind      TEXT   NOT NULL,
    subject_name      TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT,
    UNIQUE (namespace, name)
);
CREATE INDEX tokens_by_subject ON tokens(subject_kind, subject_name);

-- Keys signing bearer tokens (PKCS#8 DER, base64). Several coexist so that a
-- rotation does not invalidate tokens signed by the previous key.
CREATE TABLE signing_keys (
    kid         TEXT   PRIMARY KEY,
    private_key TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Bumped by every change to users, groups, bindings, service accounts and
-- tokens, so that every replica knows when its cached policy is stale.
CREATE TABLE policy_version (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO policy_version (id, version) VALUES (1, 0);
