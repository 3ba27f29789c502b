-- Failed logins, counted across replicas (auth::lockout keeps a copy in
-- memory for the hot path). `key` names what is counted: an address, a
-- user name from an address, or a user name from anywhere; `user_name` is
-- set for the last two, so that an admin's unlock finds them. Rows are
-- reset rather than deleted, so that other replicas see the reset.
CREATE TABLE login_failures (
    key           TEXT   PRIMARY KEY,
    user_name     TEXT,
    count         BIGINT NOT NULL,
    since         BIGINT NOT NULL,
    locked_until  BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX login_failures_updated ON login_failures (updated_at);
CREATE INDEX login_failures_user ON login_failures (user_name);
