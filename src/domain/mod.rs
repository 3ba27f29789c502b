//! The registry's domain: manifests (validation, content negotiation), the
//! pull cache, and the services that implement push and pull on top of the
//! stores: uploads make blobs, the registry does everything else.

pub mod cache;
pub mod manifest;
pub mod negotiation;
pub mod registry;
pub mod secrets;
pub mod uploads;
