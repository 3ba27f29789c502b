//! The registry's domain: names, digests, manifests, and the service that
//! implements push and pull on top of the stores.

pub mod cache;
pub mod digest;
pub mod manifest;
pub mod names;
pub mod registry;
