-- Bytes a write in flight holds against its namespace's byte quota, so that
-- concurrent pushes (through any replica) cannot together pass it: a write
-- reserves before it stores (`MetadataStore::reserve_quota`, which counts
-- the namespace's usage and every other live reservation in the same
-- transaction, the namespace's quota row locked), and releases once its
-- bytes count in the upload's or the blob's row. A replica that dies
-- mid-write leaves a reservation that stops counting at `expires_at`.
CREATE TABLE quota_reservations (
    holder     TEXT   PRIMARY KEY,
    namespace  TEXT   NOT NULL,
    bytes      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX quota_reservations_namespace ON quota_reservations (namespace);
