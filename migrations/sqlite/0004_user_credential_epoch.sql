-- Bumped whenever a user's password changes. Bearer tokens obtained with a
-- password carry the user's uid and this epoch, and are refused once either
-- differs: a password change (or deleting the user, or making a new user of
-- the same name) ends them at once.
ALTER TABLE users ADD COLUMN credential_epoch BIGINT NOT NULL DEFAULT 0;
