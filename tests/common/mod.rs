//! The one harness of the integration tests.
//!
//! Every test talks to a real berth: the HTTP server on a loopback TCP
//! socket, the embedded SQLite database (or PostgreSQL) and blobs on the
//! filesystem, all in a temporary data directory of its own. berth is run
//! in one of two ways, each with one way to start it and one way to
//! configure it:
//!
//! - [`registry`]: in-process, [`TestRegistry::start_with`] with a closure
//!   changing berth's `Config`. Fast; for every test that needs no process
//!   of its own.
//! - [`process`]: the real `berth` binary in a child process,
//!   [`BerthProcess::serve`]`(data_dir)…`[`start`](ServeCommand::start)
//!   configured by berth's arguments and environment. For what only a
//!   process shows (SIGKILL, SIGTERM, exit codes, its log, the files a
//!   first start writes) and for the real clients (`tests/clients/lab.rs`
//!   runs podman, skopeo, buildah, oras, docker and the CLI against it).
//!
//! Both deref to a [`RegistryClient`] logged in as the admin.
//!
//! - [`client`]: [`RegistryClient`], which speaks the distribution API in the
//!   words of the tests (`push_blob`, `send_chunk`, `push_image`, …), as the
//!   admin or as any other caller (`with_credentials`, `with_bearer`,
//!   `anonymous`).
//! - [`content`]: blobs, digests and manifests to push; [`images`]: images
//!   pushed piece by piece, and the blobs the filesystem store holds.
//! - [`admin`]: the administration API and the token service on the client,
//!   and [`Answer`], an answer read whole for a test to judge.
//! - [`assertions`]: status codes, headers and OCI error bodies.
//! - [`cluster`]: the outside engines of the scale-out tests, started per
//!   test on loopback: SeaweedFS (`weed mini`, and a cluster of 3 masters,
//!   3 volume servers and 2 filers with S3 gateways), nginx as the load
//!   balancer (`docs/nginx-berth.conf`), Azurite, a fresh database on the
//!   machine's PostgreSQL, and a PostgreSQL server of the test's own to kill
//!   and restart. Each is skipped loudly when its tool is missing, or fails
//!   the test with `BERTH_REQUIRE_CLIENTS=1` / `BERTH_REQUIRE_POSTGRES=1`.
//! - [`replicas`]: several berth replicas behind nginx ([`Replicas`]), an
//!   image checked byte for byte as one serves it ([`pull_from`]), and
//!   pushes and pulls through them while a test breaks something
//!   ([`Traffic`]), each answer judged a success, a clean `503` or broken.
//! - [`upstreams`]: registries for berth to import from, started per test:
//!   the reference registry (`docker-registry`) with htpasswd behind a
//!   self-signed CA's certificate, and [`LocalUpstream`], a small HTTP
//!   server a test scripts (429s, wrong bytes, endless bodies).
//! - [`small_disk`]: a tmpfs data directory to fill up ([`SmallDisk`]).
//! - [`stores`]: S3 (Signature V4) and Azure Blob (Shared Key) clients for
//!   those stores, independent of berth's own storage code.
//!
//! A test crate declares `mod common;` (`#[path = "../common/mod.rs"]` from
//! a directory target such as `tests/access_matrix/`).

// Each test crate uses its own subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod assertions;
pub mod client;
pub mod cluster;
pub mod content;
pub mod images;
pub mod process;
pub mod registry;
pub mod replicas;
pub mod small_disk;
pub mod stores;
pub mod upstreams;

pub use admin::*;
pub use assertions::*;
pub use client::*;
pub use cluster::*;
pub use content::*;
pub use images::*;
pub use process::*;
pub use registry::*;
pub use replicas::*;
pub use small_disk::*;
pub use stores::*;
pub use upstreams::*;

pub use reqwest::{Method, StatusCode};
