-- Proxy namespaces: a namespace that caches an upstream registry
-- (`berth create proxy NS --upstream URL`). A pull of NS/REPO:TAG imports
-- REPO:TAG from the upstream with reference policy Local (re-validated
-- after `ttl_seconds`) and fetches its blobs when pulled; pushes into the
-- namespace are refused. `secret` names the namespace's pull secret to
-- reach the upstream with (NULL: the one matching the upstream's host, if
-- any). Deleting the namespace deletes its row.
CREATE TABLE proxy_namespaces (
    namespace   TEXT   PRIMARY KEY REFERENCES namespaces(name) ON DELETE CASCADE,
    upstream    TEXT   NOT NULL,
    secret      TEXT,
    ttl_seconds BIGINT NOT NULL,
    insecure    BIGINT NOT NULL DEFAULT 0,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);
