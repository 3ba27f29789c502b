//! The outbound side: berth as a client of other registries, for
//! `import-image`, scheduled re-imports and pull-through.
//!
//! - [`reference`]: `REGISTRY/REPO[:TAG|@DIGEST]` and Docker Hub's names.
//! - [`client`]: [`UpstreamClient`], manifests as exact bytes with their
//!   digest verified, index children, tag lists across pages, blobs as
//!   verified streams; anonymous, Basic and Bearer-token authentication
//!   with tokens cached per realm, scope and credentials; requests counted
//!   per upstream host.
//! - [`challenge`]: `WWW-Authenticate` parsing.
//! - [`error`]: [`UpstreamError`], what went wrong, said for a tag's
//!   condition.
//!
//! Its own layer: it uses `oci` for names and digests and nothing else of
//! berth; the domain calls it.

pub mod challenge;
pub mod client;
pub mod error;
pub mod reference;

pub use client::{
    ManifestHead, UpstreamAccess, UpstreamBlob, UpstreamClient, UpstreamCredentials,
    UpstreamManifest, UpstreamSettings,
};
pub use error::UpstreamError;
pub use reference::{RegistryHost, UpstreamReference};
