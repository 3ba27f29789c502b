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

// Each test crate uses its own subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod assertions;
pub mod client;
pub mod content;
pub mod process;
pub mod registry;

pub use admin::*;
pub use assertions::*;
pub use client::*;
pub use content::*;
pub use process::*;
pub use registry::*;

pub use reqwest::{Method, StatusCode};
