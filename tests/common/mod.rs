//! Shared harness of the HTTP integration tests.
//!
//! Every test talks to a real berth: the HTTP server on a loopback TCP
//! socket, the embedded SQLite database and blobs on the filesystem, all in a
//! temporary data directory of its own.
//!
//! - [`registry`]: berth started in-process ([`TestRegistry`]).
//! - [`process`]: the real `berth` binary as a child process ([`BerthProcess`]).
//! - [`client`]: [`RegistryClient`], which speaks the distribution API in the
//!   words of the tests (`push_blob`, `send_chunk`, `push_image`, …).
//! - [`content`]: blobs, digests and manifests to push.
//! - [`admin`]: the administration API and the token service on the client.
//! - [`assertions`]: status codes, headers and OCI error bodies.
//! - [`cluster`]: the outside engines of the scale-out tests, started per
//!   test on loopback: SeaweedFS (`weed mini`, and a cluster of 3 masters,
//!   3 volume servers and 2 filers with S3 gateways), nginx as the load
//!   balancer (`docs/nginx-berth.conf`), Azurite, a fresh database on the
//!   machine's PostgreSQL, and a PostgreSQL server of the test's own to kill
//!   and restart. Each is skipped loudly when its tool is missing, or fails
//!   the test with `BERTH_REQUIRE_CLIENTS=1` / `BERTH_REQUIRE_POSTGRES=1`.
//! - [`stores`]: S3 (Signature V4) and Azure Blob (Shared Key) clients for
//!   those stores, independent of berth's own storage code.

// Each test crate uses its own subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod assertions;
pub mod client;
pub mod cluster;
pub mod content;
pub mod process;
pub mod registry;
pub mod stores;

pub use admin::*;
pub use assertions::*;
pub use client::*;
pub use cluster::*;
pub use content::*;
pub use process::*;
pub use registry::*;
pub use stores::*;

pub use reqwest::{Method, StatusCode};
