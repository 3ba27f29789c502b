//! The access matrix: every `/v2/` and `/api/v1/` route × every kind of
//! caller (anonymous, a user per role in a namespace, a user per role bound
//! cluster-wide, a super user, a user without a role, service accounts with
//! and without a role, opaque tokens, bearer JWTs from `/auth/token`, an
//! expired token, a revoked token and its JWT, a wrong password), each cell
//! stating the exact status and error code.
//!
//! Each route is run against an existing target and an absent one (same
//! namespace), so that the "no leaks" rule is checked cell by cell: a caller
//! who may not do something gets the same answer whether or not the thing
//! exists. After every write that is to be refused, every row of berth's
//! database and every upload and blob file is compared with what it was
//! before: a refusal writes nothing. Every wrong cell is collected, and the
//! test fails once listing them all.
//!
//! Brute force: failed logins lock out the address they came from, for the
//! user name guessed (429 with `Retry-After`, on every login path, until the
//! lockout passes or an admin unlocks the user) and, past a higher limit, for
//! every name; the user is let in from elsewhere, slowed down while under
//! attack, and tokens are never refused for the name that comes with them.
//!
//! The files: `harness.rs` (the fixture and its callers, the expectations,
//! the runner of a table and the nothing-written snapshot), `v2_table.rs`,
//! `api_table.rs` and `lockout.rs`.

#[path = "../common/mod.rs"]
mod common;

mod api_table;
mod harness;
mod lockout;
mod v2_table;
