//! The registry's domain: manifests (validation, content negotiation), the
//! pull cache, and the services that implement push and pull on top of the
//! stores: uploads make blobs, the registry does everything else, and
//! image streams keep each tag's history.

pub mod cache;
pub mod garbage;
pub mod image_streams;
pub mod imports;
pub mod manifest;
pub mod negotiation;
pub mod proxies;
pub mod pruner;
pub mod pull_through;
pub mod quotas;
pub mod registry;
pub mod secrets;
pub mod uploads;
