-- Tag expiration (README "Tag expiration"): when a tag stops resolving, in
-- milliseconds since the epoch; NULL, never. Set by each push to the tag
-- (from `berth tag --expires-after`, the image's `quay.expires-after`
-- label or `tagExpiration.default`), read with the tag's row by pulls (no
-- extra query). A tag past it is as if deleted; garbage collection then
-- removes its row and leaves its history for the pruner.
ALTER TABLE tags ADD COLUMN expires_at BIGINT;
CREATE INDEX tags_by_expiry ON tags(expires_at) WHERE expires_at IS NOT NULL;
