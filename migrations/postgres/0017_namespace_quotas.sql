-- Per-namespace quotas (`berth set quota NS --bytes 10GiB --repositories 50
-- --tags 1000`): each limit optional (NULL: none). Usage is not stored: it
-- is summed from the links of blobs and manifests into the namespace's
-- repositories when asked (README "Storage usage and quotas"), so it cannot
-- drift from what is stored. Setting a quota moves the policy version on,
-- so that every replica's policy snapshot (which holds the quotas, read
-- with no query per push) picks it up. Deleting the namespace deletes it.
CREATE TABLE namespace_quotas (
    namespace        TEXT   PRIMARY KEY REFERENCES namespaces(name) ON DELETE CASCADE,
    max_bytes        BIGINT,
    max_repositories BIGINT,
    max_tags         BIGINT,
    updated_by       TEXT,
    updated_at       BIGINT NOT NULL
);
