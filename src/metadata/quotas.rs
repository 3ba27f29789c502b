//! Storage accounting and per-namespace quotas (migration 0017).
//!
//! Usage is never kept as counters: it is summed, when asked, from the
//! links of blobs (`repository_blobs`) and manifests
//! (`repository_manifests`) into repositories, and from the tags. Every way
//! content arrives or leaves (push, mount, pull-through fill, import,
//! delete, garbage collection, deleting a namespace) goes through those
//! links, so the figures are exact after each of them and cannot drift.

use super::Timestamp;
use crate::oci::names::RepositoryName;

/// The limits of one namespace; `None`: no limit of that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceQuota {
    pub namespace: String,
    /// Deduplicated bytes: blobs and manifests counted once in the
    /// namespace, plus uploads in progress.
    pub max_bytes: Option<u64>,
    pub max_repositories: Option<u64>,
    pub max_tags: Option<u64>,
    pub updated_by: Option<String>,
    pub updated_at: Timestamp,
}

impl NamespaceQuota {
    /// Whether the quota limits nothing (setting one clears it).
    pub fn is_empty(&self) -> bool {
        self.max_bytes.is_none() && self.max_repositories.is_none() && self.max_tags.is_none()
    }
}

/// What a namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub repositories: u64,
    /// Tags still current (an expired tag no longer counts).
    pub tags: u64,
    /// Distinct manifests.
    pub manifests: u64,
    /// Distinct blobs.
    pub blobs: u64,
    /// Deduplicated: each blob and manifest once, however many of the
    /// namespace's repositories hold it. A blob also held by another
    /// namespace counts in each.
    pub bytes: u64,
    /// Each repository's bytes summed, as if none shared anything.
    pub raw_bytes: u64,
    /// Bytes received by uploads in progress, not yet blobs.
    pub uploading_bytes: u64,
}

/// The namespace's counts a quota limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Counts {
    #[sqlx(try_from = "i64")]
    pub repositories: u64,
    /// Tags still current.
    #[sqlx(try_from = "i64")]
    pub tags: u64,
}

/// What one repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryUsage {
    pub repository: RepositoryName,
    pub tags: u64,
    pub manifests: u64,
    pub blobs: u64,
    /// Its blobs and manifests: what it would cost alone.
    pub bytes: u64,
    /// Of `bytes`, those also held by another repository (of any
    /// namespace): what deleting this one alone would not free.
    pub shared_bytes: u64,
}
