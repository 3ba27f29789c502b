//! Namespace quotas on the push path: bytes, repositories and tags.
//!
//! The quota itself comes from the caller's policy snapshot (no query: a
//! namespace without one costs a push nothing); only a namespace with a
//! quota pays for its usage, summed once at the start of each write
//! request ([`crate::metadata::MetadataStore::namespace_usage`]), never per
//! chunk. Checks are made before anything is stored. A write's bytes are
//! reserved in the database before they are stored ([`ByteAllowance::cover`]),
//! counted with the usage and every other write's reservation in one
//! transaction, so writes racing into the same namespace, through any
//! replicas, cannot together pass the limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{QuotaRefusal, RegistryError, Result};
use crate::metadata::quotas::NamespaceQuota;
use crate::metadata::{MetadataStore, millis, now};
use crate::oci::digest::Digest;
use crate::oci::names::{RepositoryName, Tag};

/// How many more bytes a namespace with a byte quota may take, as
/// measured at the start of a request.
#[derive(Debug)]
pub struct ByteAllowance {
    namespace: String,
    limit: u64,
    /// Stored (deduplicated), received by uploads in progress and reserved
    /// by other writes, when the request started.
    used: u64,
    /// The request's `Content-Length`, when it said one.
    announced: Option<u64>,
    /// Who holds this request's reservation ([`MetadataStore::reserve_quota`]).
    holder: String,
    /// Bytes reserved so far.
    reserved: AtomicU64,
}

/// How far a stream of unannounced length reserves ahead of what it
/// received, at least: one transaction per step, not per chunk. The step
/// grows with the stream (an eighth of what came), so that a large one
/// pays few transactions and a small one holds little that others could
/// have used.
const RESERVE_STEP: u64 = 1 << 20;
/// How long a reservation outlives its last step if its writer dies.
const RESERVATION_LIFETIME: Duration = Duration::from_secs(600);

impl ByteAllowance {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Fails unless `needed` more bytes fit.
    pub fn admit(&self, needed: u64) -> Result<()> {
        if needed == 0 || needed <= self.remaining() {
            Ok(())
        } else {
            Err(self.refusal(needed))
        }
    }

    /// The refusal of a write needing `needed` more bytes.
    pub fn refusal(&self, needed: u64) -> RegistryError {
        RegistryError::QuotaExceeded(Box::new(QuotaRefusal::Bytes {
            namespace: self.namespace.clone(),
            used: self.used,
            limit: self.limit,
            needed,
        }))
    }

    /// The refusal of a streamed upload that went past what remained: it
    /// needs at least one byte more than that.
    pub fn crossed(&self) -> RegistryError {
        self.refusal(self.remaining().saturating_add(1))
    }

    /// Holds the request to its announced `Content-Length` too, which is
    /// then what it reserves at once.
    pub fn announced(mut self, length: Option<u64>) -> Self {
        self.announced = length;
        self
    }

    /// Makes sure the request's first `received` bytes are reserved before
    /// they are stored: reserves ahead (the announced length, else a step
    /// more), and only exactly what it needs once that does not fit.
    /// Refused when not even that fits beside the namespace's usage and
    /// the other writes in flight.
    pub async fn cover(&self, metadata: &dyn MetadataStore, received: u64) -> Result<()> {
        if received <= self.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let ahead = match self.announced {
            Some(length) if length >= received => length,
            _ => received.saturating_add(RESERVE_STEP.max(received / 8)),
        };
        let ahead = ahead.min(self.limit).max(received);
        if ahead > received && self.reserve(metadata, ahead).await? {
            return Ok(());
        }
        if self.reserve(metadata, received).await? {
            return Ok(());
        }
        Err(self.crossed())
    }

    async fn reserve(&self, metadata: &dyn MetadataStore, bytes: u64) -> Result<bool> {
        let expires_at = now() + millis(RESERVATION_LIFETIME);
        let reserved = metadata
            .reserve_quota(&self.namespace, &self.holder, bytes, self.limit, expires_at)
            .await?;
        if reserved {
            self.reserved.store(bytes, Ordering::Release);
        }
        Ok(reserved)
    }

    /// Drops the request's reservation, once what it stored counts where
    /// it is recorded (or it stored nothing). A failure only logs: the
    /// reservation stops counting when it expires.
    pub async fn release(&self, metadata: &dyn MetadataStore) {
        if self.reserved.swap(0, Ordering::AcqRel) == 0 {
            return;
        }
        if let Err(e) = metadata.release_quota(&self.holder).await {
            tracing::warn!(namespace = %self.namespace, error = %e, "releasing a quota reservation; it expires by itself");
        }
    }
}

/// The byte allowance of `namespace` under `quota`; `None` when nothing
/// limits its bytes (no quota, or none on bytes): no query then.
pub async fn byte_allowance(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    namespace: &str,
) -> Result<Option<ByteAllowance>> {
    let Some(limit) = quota.and_then(|q| q.max_bytes) else {
        return Ok(None);
    };
    Ok(Some(ByteAllowance {
        namespace: namespace.to_owned(),
        limit,
        used: metadata.namespace_bytes(namespace).await?,
        announced: None,
        holder: uuid::Uuid::new_v4().to_string(),
        reserved: AtomicU64::new(0),
    }))
}

/// Storing `digest` (`size` bytes, a blob mounted from elsewhere or a
/// manifest) into `repo`: free if the namespace holds it already, else it
/// must fit the byte quota.
pub async fn admit_content(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    repo: &RepositoryName,
    digest: &Digest,
    size: u64,
) -> Result<()> {
    if quota.and_then(|q| q.max_bytes).is_none() {
        return Ok(());
    }
    admit_contents(metadata, quota, repo, &[(digest.clone(), size)]).await
}

/// Storing each of `content` (digests with their sizes, repeats counted
/// once) into `repo`: those the namespace holds already are free, the
/// rest together must fit the byte quota.
pub async fn admit_contents(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    repo: &RepositoryName,
    content: &[(Digest, u64)],
) -> Result<()> {
    if quota.and_then(|q| q.max_bytes).is_none() {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let mut needed = 0u64;
    for (digest, size) in content {
        if seen.insert(digest) && !metadata.namespace_holds(repo.namespace(), digest).await? {
            needed = needed.saturating_add(*size);
        }
    }
    // All held: no need to sum the usage.
    if needed == 0 {
        return Ok(());
    }
    match byte_allowance(metadata, quota, repo.namespace()).await? {
        Some(allowance) => allowance.admit(needed),
        None => Ok(()),
    }
}

/// Whether `digest` is held by the namespace of `repo` already, when a
/// byte quota applies (otherwise it does not matter: false, no query).
pub async fn held_under_quota(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<bool> {
    if quota.and_then(|q| q.max_bytes).is_none() {
        return Ok(false);
    }
    Ok(metadata.namespace_holds(repo.namespace(), digest).await?)
}

/// A write into `repo` that would make it: refused when the namespace
/// already has as many repositories as its quota allows.
pub async fn admit_repository(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    repo: &RepositoryName,
) -> Result<()> {
    let Some(limit) = quota.and_then(|q| q.max_repositories) else {
        return Ok(());
    };
    if metadata.repository_exists(repo).await? {
        return Ok(());
    }
    let usage = metadata.namespace_counts(repo.namespace()).await?;
    if usage.repositories < limit {
        return Ok(());
    }
    Err(RegistryError::QuotaExceeded(Box::new(
        QuotaRefusal::Repositories {
            namespace: repo.namespace().to_owned(),
            used: usage.repositories,
            limit,
            repository: repo.to_string(),
        },
    )))
}

/// Pointing `tags` of `repo` at an image: refused when those that do not
/// exist yet would take the namespace past its tag quota.
pub async fn admit_tags(
    metadata: &dyn MetadataStore,
    quota: Option<&NamespaceQuota>,
    repo: &RepositoryName,
    tags: &[Tag],
) -> Result<()> {
    let Some(limit) = quota.and_then(|q| q.max_tags) else {
        return Ok(());
    };
    let mut new = Vec::new();
    for tag in tags {
        let reference = crate::oci::names::Reference::Tag(tag.clone());
        if metadata.manifest_meta(repo, &reference).await?.is_none() && !new.contains(&tag) {
            new.push(tag);
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let usage = metadata.namespace_counts(repo.namespace()).await?;
    if usage.tags.saturating_add(new.len() as u64) <= limit {
        return Ok(());
    }
    Err(RegistryError::QuotaExceeded(Box::new(QuotaRefusal::Tags {
        namespace: repo.namespace().to_owned(),
        used: usage.tags,
        limit,
        repository: repo.to_string(),
        tag: new[0].to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(used: u64, limit: u64) -> ByteAllowance {
        ByteAllowance {
            namespace: "proj".into(),
            limit,
            used,
            announced: None,
            holder: "test".into(),
            reserved: AtomicU64::new(0),
        }
    }

    #[test]
    fn what_fits_is_admitted_and_the_refusal_says_quota_usage_and_need() {
        let a = allowance(10 << 20, 10 << 20);
        assert_eq!(a.remaining(), 0);
        // Nothing more costs nothing, even at the quota.
        assert!(a.admit(0).is_ok());
        let refused = a.admit(3 << 20).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "namespace \"proj\" is over its storage quota: 10.0 MiB used of 10.0 MiB allowed, \
             this upload needs 3.0 MiB more"
        );
        let roomy = allowance(1000, 5000);
        assert!(roomy.admit(4000).is_ok());
        assert!(roomy.admit(4001).is_err());
        // Used past the limit (a quota lowered below the usage).
        assert_eq!(allowance(9000, 5000).remaining(), 0);
        match allowance(1000, 5000).crossed() {
            RegistryError::QuotaExceeded(refusal) => assert_eq!(
                *refusal,
                QuotaRefusal::Bytes {
                    namespace: "proj".into(),
                    used: 1000,
                    limit: 5000,
                    needed: 4001
                }
            ),
            other => panic!("{other:?}"),
        }
    }
}
