//! The vocabulary every layer shares: repository names, tags and references
//! (`names`) and content digests (`digest`), with the grammar of the OCI
//! distribution spec. It depends on nothing else in berth, so storage and
//! metadata can use it without reaching up into the domain.

pub mod digest;
pub mod names;
pub mod tag_pattern;
