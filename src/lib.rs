//! berth: an OCI container image registry.
//!
//! # Layout
//!
//! - [`api`]: HTTP. `/v2/` is parsed into a typed [`api::endpoint::Endpoint`]
//!   and dispatched to thin handlers; `/healthz`, `/readyz`, `/metrics`.
//! - [`domain`]: names, digests, manifest validation, and
//!   [`domain::registry::Registry`], which implements push and pull.
//! - [`storage`]: blob bytes in an object store through OpenDAL.
//! - [`metadata`]: everything else, in SQLite (embedded) or PostgreSQL.
//! - [`auth`]: who is calling and what they may do.
//! - [`jobs`]: background work (abandoned upload cleanup).
//! - [`error`]: the one error type and its OCI error codes.
//! - [`upstream`]: berth as a client of other registries (imports,
//!   pull-through).
//! - [`files`]: secrets and certificates written to disk for people.
//! - [`config`], [`server`], [`tls`], [`cli`]: configuration, assembly, TLS,
//!   command line.
//!
//! The rule: `api` calls `domain` and `auth`; `domain` calls `storage` and
//! `metadata`; nothing below calls upward.

// Request paths answer errors; they never panic on a value that is absent.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crash_points;
pub mod domain;
pub mod duration_text;
pub mod error;
pub mod files;
pub mod jobs;
pub mod metadata;
pub mod oci;
pub mod server;
pub mod size_text;
pub mod storage;
pub mod tls;
pub mod upstream;
pub mod wire;
