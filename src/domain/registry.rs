//! The registry service: what pushing and pulling mean, independent of HTTP.
//!
//! It joins the two stores: blob bytes in [`BlobStore`], everything else in
//! the [`MetadataStore`]. The HTTP layer calls it and never touches either
//! store directly.
//!
//! Blobs arrive through [`super::uploads::Uploads`]; this service links,
//! mounts, reads and deletes them, and keeps manifests, tags, referrers and
//! listings.

use std::sync::Arc;

use bytes::Bytes;

use super::cache::{CachedTags, Coherence, MAX_CACHED_TAGS, PullCache};
use super::manifest::{self, ManifestKind, ParsedManifest};
use super::negotiation::{Accepted, DEFAULT_PLATFORM, look_for_another};
use super::quotas;
use crate::error::{RegistryError, Result};
use crate::metadata::changes::ChangeSink;
use crate::metadata::image_streams::RevisionOrigin;
use crate::metadata::quotas::NamespaceQuota;
use crate::metadata::{
    BlobLink, ManifestMeta, MetadataError, MetadataStore, NewManifest, Page, ReferenceKind,
    Referrer, RequiredContent, StoredManifest, Timestamp,
};
use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};
use crate::storage::{BlobStore, WindowIndex};

/// How long a signed blob URL handed to a client stays valid: long enough
/// for a large layer on a slow link to start, short enough that a leaked
/// URL soon stops working (it is only handed to someone allowed to pull).
const BLOB_READ_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// Knobs of the registry service.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Accept manifests whose layers or child manifests are not in the
    /// repository ("sparse" manifests, e.g. an index mirrored without all
    /// its platforms). Off by default: such images cannot be pulled whole.
    pub allow_missing_references: bool,
    /// Keep manifests and tag lists read by pulls in memory, and how the
    /// cache learns of changes (see [`super::cache`]). With
    /// [`Coherence::Shared`] nothing is served from it until
    /// [`Registry::change_sink`] is fed by a change listener.
    pub cache_pulls: Coherence,
    /// `tagExpiration.default`: how long a tag lives after a push that
    /// says nothing else (no label, no explicit expiry); `None`: forever.
    pub tag_expiration_default: Option<std::time::Duration>,
}

/// The image config label that sets how long the tags a push points at
/// the image live (`2w`, `12h`), as Quay reads it.
pub const EXPIRES_AFTER_LABEL: &str = "quay.expires-after";

/// Largest image config read for its labels on a push.
const MAX_LABEL_CONFIG_SIZE: u64 = 1 << 20;

/// `at` plus `after`, in the metadata's milliseconds.
pub fn expiry_from(at: Timestamp, after: std::time::Duration) -> Timestamp {
    at.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

/// A finished manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    pub tags: Vec<Tag>,
}

/// A manifest checked by [`Registry::validate_manifest`], ready to store.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    new: NewManifest,
    pushed: PushedManifest,
    /// The blobs its pulls fetch, with the sizes its descriptors give.
    pulled_blobs: Vec<(Digest, u64)>,
}

impl ValidManifest {
    /// The manifest and the blobs its pulls fetch, each with its size:
    /// what the namespace holds once it is stored and pulled.
    pub fn content(&self) -> impl Iterator<Item = (&Digest, u64)> {
        std::iter::once((&self.new.digest, self.new.content.len() as u64)).chain(
            self.pulled_blobs
                .iter()
                .map(|(digest, size)| (digest, *size)),
        )
    }
}

pub struct Registry {
    metadata: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    cache: Arc<PullCache>,
    options: RegistryOptions,
}

impl Registry {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: BlobStore,
        options: RegistryOptions,
    ) -> Self {
        Registry {
            metadata,
            blobs,
            cache: Arc::new(PullCache::new(options.cache_pulls)),
            options,
        }
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.metadata
    }

    pub fn blob_store(&self) -> &BlobStore {
        &self.blobs
    }

    /// Where changes other processes made are told, for the pull cache.
    pub fn change_sink(&self) -> Arc<dyn ChangeSink> {
        self.cache.clone()
    }

    /// Forgets what is cached of `namespace`'s repositories, which the
    /// metadata store deleted with their project.
    pub fn forget_namespace(&self, namespace: &str) {
        self.cache.invalidate_namespace(namespace);
    }

    /// Forgets what is cached of `repo`, whose tags changed elsewhere than
    /// through this service (image stream tag moves, a deleted stream).
    pub fn forget_repository(&self, repo: &RepositoryName) {
        self.cache.invalidate(repo);
    }

    // ----- blobs

    /// Size of `digest` if the repository holds it.
    pub async fn blob_size(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.metadata.repository_blob(repo, digest).await?)
    }

    /// Size of `digest` and when it was last touched, if the repository
    /// holds it (for [`super::garbage::BlobTouches`]).
    pub async fn blob_link(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<BlobLink>> {
        Ok(self.metadata.blob_link(repo, digest).await?)
    }

    /// Streams `range` of a blob; `index` as in [`BlobStore::read_blob`].
    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: std::ops::Range<u64>,
        index: Option<Arc<WindowIndex>>,
    ) -> Result<crate::storage::BlobStream> {
        Ok(self.blobs.read_blob(digest, range, index).await?)
    }

    /// A URL the client can read the blob from directly, without
    /// credentials, where the blob store signs one. Reads through berth
    /// remain possible whatever this answers: a store that fails to sign is
    /// logged and read through berth.
    pub async fn blob_read_url(&self, digest: &Digest) -> Option<url::Url> {
        match self
            .blobs
            .presign_read(digest, BLOB_READ_URL_LIFETIME)
            .await
        {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "the blob store did not sign a read URL; serving the blob through berth");
                None
            }
        }
    }

    /// Removes the blob from the repository. Its bytes stay until garbage
    /// collection finds no repository using them.
    pub async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        if self.metadata.unlink_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Links an existing blob into `repo` from one of `sources` (already
    /// filtered to those the caller may read). Returns the size if mounted;
    /// `None` (the client uploads it) also when garbage collection is
    /// deleting it.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        sources: &[RepositoryName],
        quota: Option<&NamespaceQuota>,
    ) -> Result<Option<u64>> {
        for source in sources {
            if let Some(size) = self.metadata.repository_blob(source, digest).await? {
                // A blob the namespace holds already costs it nothing; one
                // from another namespace costs its size.
                quotas::admit_content(self.metadata.as_ref(), quota, repo, digest, size).await?;
                // The bytes must really be there: metadata may outlive a lost object.
                if self.blobs.blob_size(digest).await?.is_none() {
                    return Ok(None);
                }
                return Ok(self.metadata.mount_blob(repo, digest).await?);
            }
        }
        Ok(None)
    }

    /// Repositories holding `digest`, as candidates for a mount without `from`.
    pub async fn repositories_with_blob(&self, digest: &Digest) -> Result<Vec<RepositoryName>> {
        Ok(self.metadata.repositories_with_blob(digest, 100).await?)
    }

    // ----- manifests

    /// Checks a manifest pushed as `reference` without storing anything:
    /// what [`store_manifest`](Self::store_manifest) then stores, pointing the
    /// tag (if the reference is one) and `extra_tags` at it. Two steps, so
    /// that the push path can make the namespace between them, and only for
    /// a manifest it will store.
    pub async fn validate_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
        extra_tags: Vec<Tag>,
    ) -> Result<ValidManifest> {
        let check_references = !self.options.allow_missing_references;
        self.validate(
            repo,
            reference,
            content_type,
            content,
            extra_tags,
            check_references,
        )
        .await
    }

    /// Checks a manifest imported from another registry, by its digest, as
    /// a push is checked but for its blobs: an import copies none (they are
    /// fetched when pulled), so they need not be here.
    pub async fn validate_imported_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        media_type: &str,
        content: Bytes,
    ) -> Result<ValidManifest> {
        let reference = Reference::Digest(digest.clone());
        self.validate(
            repo,
            &reference,
            Some(media_type),
            content,
            Vec::new(),
            false,
        )
        .await
    }

    async fn validate(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
        extra_tags: Vec<Tag>,
        check_references: bool,
    ) -> Result<ValidManifest> {
        if content.len() > manifest::MAX_MANIFEST_SIZE {
            return Err(RegistryError::ManifestTooLarge {
                limit: manifest::MAX_MANIFEST_SIZE,
            });
        }
        let (digest, mut tags) = match reference {
            Reference::Digest(expected) => {
                let actual = expected.algorithm().digest_of(&content);
                if actual != *expected {
                    return Err(RegistryError::DigestInvalid(format!(
                        "manifest has digest {actual}, not {expected}"
                    )));
                }
                (actual, Vec::new())
            }
            Reference::Tag(tag) => (manifest::default_digest(&content), vec![tag.clone()]),
        };
        for tag in extra_tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let parsed = manifest::parse(&content, content_type)?;
        let required = if check_references {
            self.check_references(repo, &parsed).await?;
            RequiredContent {
                blobs: parsed.required_blobs(),
                manifests: parsed.required_manifests(),
            }
        } else {
            RequiredContent::default()
        };
        // Only a push naming tags gives them an expiry; the label is read
        // from an image's config (an index has none).
        let tag_expires_at = if tags.is_empty() {
            None
        } else {
            self.tag_expiry(&parsed, None).await
        };
        let new = NewManifest {
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            content,
            artifact_type: parsed.artifact_type.clone(),
            subject: parsed.subject.clone(),
            annotations: parsed.annotations.clone(),
            references: parsed
                .references
                .iter()
                .map(|r| (r.digest.clone(), r.kind))
                .chain(
                    parsed
                        .subject
                        .iter()
                        .map(|s| (s.clone(), ReferenceKind::Subject)),
                )
                .collect(),
            required,
            tag_expires_at,
        };
        let pulled_blobs = parsed
            .pulled_blobs()
            .map(|r| (r.digest.clone(), r.size))
            .collect();
        Ok(ValidManifest {
            new,
            pushed: PushedManifest {
                digest,
                subject: parsed.subject,
                tags,
            },
            pulled_blobs,
        })
    }

    /// Whether the namespace's `quota` lets `valid` be stored in `repo`:
    /// the repository may be new, its tags may be new, and the manifest's
    /// bytes count unless the namespace holds it already. No query without
    /// a quota.
    pub async fn admit_manifest(
        &self,
        repo: &RepositoryName,
        valid: &ValidManifest,
        quota: Option<&NamespaceQuota>,
    ) -> Result<()> {
        let Some(quota) = quota else {
            return Ok(());
        };
        let content = [(valid.new.digest.clone(), valid.new.content.len() as u64)];
        self.admit(repo, &valid.pushed.tags, &content, quota).await
    }

    /// Whether the namespace's `quota` lets an import record `manifests`
    /// (an image, or an index and its children) in `repo` under `tag`: the
    /// repository and the tag may be new, and the manifests and the blobs
    /// their pulls will fetch must fit the byte quota, but for those the
    /// namespace holds already. An import copies no blob, but pulls of
    /// what it recorded store them, so they are counted now: a project
    /// cannot grow past its quota by importing. No query without a quota.
    pub async fn admit_import(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        manifests: &[ValidManifest],
        quota: Option<&NamespaceQuota>,
    ) -> Result<()> {
        let Some(quota) = quota else {
            return Ok(());
        };
        let content: Vec<(Digest, u64)> = manifests
            .iter()
            .flat_map(ValidManifest::content)
            .map(|(digest, size)| (digest.clone(), size))
            .collect();
        self.admit(repo, std::slice::from_ref(tag), &content, quota)
            .await
    }

    /// `repo` may be new, `tags` of it may be new, and `content` must fit.
    async fn admit(
        &self,
        repo: &RepositoryName,
        tags: &[Tag],
        content: &[(Digest, u64)],
        quota: &NamespaceQuota,
    ) -> Result<()> {
        let metadata = self.metadata.as_ref();
        quotas::admit_repository(metadata, Some(quota), repo).await?;
        quotas::admit_tags(metadata, Some(quota), repo, tags).await?;
        quotas::admit_contents(metadata, Some(quota), repo, content).await
    }

    /// Stores a validated manifest in `repo` and points its tags at it, in
    /// one transaction that also records, for each tag that moves, a
    /// revision in its image stream history made by `origin`.
    pub async fn store_manifest(
        &self,
        repo: &RepositoryName,
        valid: ValidManifest,
        origin: &RevisionOrigin,
    ) -> Result<PushedManifest> {
        let stored = self
            .metadata
            .put_manifest_from(repo, &valid.new, &valid.pushed.tags, origin)
            .await;
        match stored {
            Ok(()) => {}
            // Gone since it was validated (deleted, or collected as garbage):
            // the client uploads it again.
            Err(MetadataError::ReferenceUnknown(digest)) => {
                return Err(RegistryError::ManifestBlobUnknown(digest));
            }
            Err(e) => return Err(e.into()),
        }
        self.cache.invalidate(repo);
        Ok(valid.pushed)
    }

    /// When a tag pointed at the image `parsed` now expires: after
    /// `explicit` if given, else after the image's `quay.expires-after`
    /// label, else after `tagExpiration.default`; `None`: never.
    pub async fn tag_expiry(
        &self,
        parsed: &ParsedManifest,
        explicit: Option<std::time::Duration>,
    ) -> Option<Timestamp> {
        let after = match explicit {
            Some(after) => Some(after),
            None => match self.label_expiry(parsed).await {
                Some(after) => Some(after),
                None => self.options.tag_expiration_default,
            },
        };
        after.map(|after| expiry_from(crate::metadata::now(), after))
    }

    /// [`tag_expiry`](Self::tag_expiry) of the image `digest` of `repo`.
    pub async fn tag_expiry_of(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        explicit: Option<std::time::Duration>,
    ) -> Result<Option<Timestamp>> {
        let stored = self
            .metadata
            .manifest(repo, &Reference::Digest(digest.clone()))
            .await?;
        let parsed =
            stored.and_then(|m| manifest::parse(&m.content, Some(&m.meta.media_type)).ok());
        Ok(match parsed {
            Some(parsed) => self.tag_expiry(&parsed, explicit).await,
            None => explicit
                .or(self.options.tag_expiration_default)
                .map(|after| expiry_from(crate::metadata::now(), after)),
        })
    }

    /// The `quay.expires-after` label of an image's config, if the config
    /// is here, small and says one. A label that is no duration is logged
    /// and ignored: the push goes on, as Quay's does.
    async fn label_expiry(&self, parsed: &ParsedManifest) -> Option<std::time::Duration> {
        if parsed.kind != ManifestKind::Image {
            return None;
        }
        let config = parsed
            .references
            .iter()
            .find(|r| r.kind == ReferenceKind::Config)?;
        let size = self.blobs.blob_size(&config.digest).await.ok()??;
        if size > MAX_LABEL_CONFIG_SIZE {
            return None;
        }
        let mut stream = self
            .blobs
            .read_blob(&config.digest, 0..size, None)
            .await
            .ok()?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(piece) = futures::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(&piece.ok()?);
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let label = value
            .get("config")
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.get(EXPIRES_AFTER_LABEL))
            .and_then(|v| v.as_str())?;
        match crate::duration_text::parse(label) {
            Ok(after) => Some(after),
            Err(e) => {
                tracing::warn!(config = %config.digest, label = %label, error = %e, "ignoring the image's {EXPIRES_AFTER_LABEL} label");
                None
            }
        }
    }

    async fn check_references(&self, repo: &RepositoryName, parsed: &ParsedManifest) -> Result<()> {
        let blobs = parsed.required_blobs();
        let manifests = parsed.required_manifests();
        let missing = self
            .metadata
            .missing_in_repository(repo, &blobs, &manifests)
            .await?;
        match missing.into_iter().next() {
            Some(digest) => Err(RegistryError::ManifestBlobUnknown(digest)),
            None => Ok(()),
        }
    }

    pub async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let ticket = match self.cache.get(repo, reference) {
            Ok(cached) => return Ok(cached),
            Err(ticket) => ticket,
        };
        let stored = self
            .metadata
            .manifest(repo, reference)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))?;
        self.cache.put(ticket, repo, reference, &stored);
        Ok(stored)
    }

    /// What [`manifest`](Self::manifest) would return, without the bytes.
    pub async fn manifest_meta(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<ManifestMeta> {
        if self.cache.enabled() {
            // Manifests are small: reading the bytes once lets every later
            // HEAD and GET come from the cache.
            return Ok(self.manifest(repo, reference).await?.meta);
        }
        self.metadata
            .manifest_meta(repo, reference)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
    }

    /// The manifest a client accepting `accepted` gets for `reference`
    /// (see [`super::negotiation`]).
    pub async fn negotiated_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        accepted: &Accepted,
    ) -> Result<StoredManifest> {
        let stored = self.manifest(repo, reference).await?;
        if !look_for_another(reference, accepted, &stored.meta.media_type) {
            return Ok(stored);
        }
        match self
            .platform_manifest(repo, &stored, DEFAULT_PLATFORM)
            .await?
        {
            Some(child) if accepted.admits(&child.meta.media_type) => Ok(child),
            _ => Ok(stored),
        }
    }

    /// What [`negotiated_manifest`](Self::negotiated_manifest) would return,
    /// without the bytes when no other manifest need be looked for (HEAD).
    pub async fn negotiated_manifest_meta(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        accepted: &Accepted,
    ) -> Result<ManifestMeta> {
        let meta = self.manifest_meta(repo, reference).await?;
        if !look_for_another(reference, accepted, &meta.media_type) {
            return Ok(meta);
        }
        Ok(self
            .negotiated_manifest(repo, reference, accepted)
            .await?
            .meta)
    }

    /// The child of `index` for `(os, architecture)`, if the index lists
    /// one and it is in the repository.
    async fn platform_manifest(
        &self,
        repo: &RepositoryName,
        index: &StoredManifest,
        (os, architecture): (&str, &str),
    ) -> Result<Option<StoredManifest>> {
        let Ok(parsed) = manifest::parse(&index.content, Some(&index.meta.media_type)) else {
            return Ok(None);
        };
        if parsed.kind != ManifestKind::Index {
            return Ok(None);
        }
        let Some((digest, _, _)) = parsed
            .platforms
            .iter()
            .find(|(_, o, a)| o == os && a == architecture)
        else {
            return Ok(None);
        };
        Ok(self
            .metadata
            .manifest(repo, &Reference::Digest(digest.clone()))
            .await?)
    }

    /// How many of the blobs an image needs (an index's: its children's)
    /// `repo` stores, of how many: whether pulling it needs its upstream.
    /// `None` if the repository does not have the manifest.
    pub async fn blobs_stored(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<(usize, usize)>> {
        let Some(top) = self
            .metadata
            .manifest(repo, &Reference::Digest(digest.clone()))
            .await?
        else {
            return Ok(None);
        };
        let mut needed = Vec::new();
        let mut manifests = vec![top];
        while let Some(stored) = manifests.pop() {
            let Ok(parsed) = manifest::parse(&stored.content, Some(&stored.meta.media_type)) else {
                continue;
            };
            needed.extend(parsed.required_blobs());
            for child in parsed.required_manifests() {
                // An index one level deep, as images are.
                if manifests.len() < 1024
                    && let Some(found) = self
                        .metadata
                        .manifest(repo, &Reference::Digest(child))
                        .await?
                {
                    manifests.push(found);
                }
            }
        }
        needed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        needed.dedup();
        let missing = self
            .metadata
            .missing_in_repository(repo, &needed, &[])
            .await?;
        Ok(Some((needed.len() - missing.len(), needed.len())))
    }

    /// Deletes a tag, or a manifest (with every tag pointing at it).
    pub async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        let deleted = match reference {
            Reference::Tag(tag) => self.metadata.delete_tag(repo, tag).await?,
            Reference::Digest(digest) => self.metadata.delete_manifest(repo, digest).await?,
        };
        self.cache.invalidate(repo);
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(reference.to_string()))
        }
    }

    /// Removes the rows of the tags whose expiry has passed, at most
    /// `limit` of them, keeping their history (the revisions' images stay
    /// until pruned), and forgets what is cached of their repositories.
    /// Run by garbage collection before each run; a pruner calls it the
    /// same way. Pulls stopped resolving these tags when they expired:
    /// this only tidies the rows.
    pub async fn remove_expired_tags(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::metadata::tag_policies::ExpiredTag>, MetadataError> {
        let expired = self
            .metadata
            .remove_expired_tags(crate::metadata::now(), limit)
            .await?;
        for tag in &expired {
            self.cache.invalidate(&tag.repository);
            tracing::info!(repository = %tag.repository, tag = %tag.tag, expired_at = tag.expired_at, "expired tag removed");
        }
        metrics::counter!("berth_tags_expired_removed_total").increment(expired.len() as u64);
        Ok(expired)
    }

    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        Ok(self
            .metadata
            .referrers(repo, subject, artifact_type)
            .await?)
    }

    // ----- listings

    /// A page of `repo`'s tags: those after `after`, at most `limit`.
    pub async fn tags(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        if let Some(all) = self.all_tags(repo).await? {
            return Ok(page_of(&all, after.unwrap_or(""), limit));
        }
        self.metadata
            .list_tags(repo, after, limit)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))
    }

    /// Every tag of `repo` from the cache, read whole on a miss; `None` when
    /// the cache is off or the repository has too many tags to hold.
    async fn all_tags(&self, repo: &RepositoryName) -> Result<Option<Arc<[String]>>> {
        let ticket = match self.cache.tags(repo) {
            Ok(CachedTags::All(all)) => return Ok(Some(all)),
            Ok(CachedTags::TooMany) => return Ok(None),
            Err(_) if !self.cache.enabled() => return Ok(None),
            Err(ticket) => ticket,
        };
        let whole = self
            .metadata
            .list_tags(repo, None, MAX_CACHED_TAGS)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
        let found = if whole.more {
            CachedTags::TooMany
        } else {
            CachedTags::All(whole.items.into())
        };
        // Held no longer than until the first of its tags expires.
        self.cache.put_tags(ticket, repo, &found, whole.next_expiry);
        Ok(match found {
            CachedTags::All(all) => Some(all),
            CachedTags::TooMany => None,
        })
    }

    /// A page of the catalog: up to `limit` repositories after `after` that
    /// `visible` lets the caller see, and whether more follow. Repositories
    /// the caller may not see are skipped, so a page may take several reads
    /// to fill.
    pub async fn catalog(
        &self,
        after: Option<&str>,
        limit: u32,
        visible: impl Fn(&RepositoryName) -> bool,
    ) -> Result<Page> {
        let mut after = after.map(str::to_owned);
        let mut items = Vec::new();
        let mut more = false;
        while limit > 0 && items.len() < limit as usize {
            let page = self
                .metadata
                .list_repositories(after.as_deref(), limit)
                .await?;
            let fetched = page.items.len();
            for name in page.items {
                after = Some(name.clone());
                if items.len() == limit as usize {
                    more = true;
                    break;
                }
                if name
                    .parse::<RepositoryName>()
                    .is_ok_and(|repo| visible(&repo))
                {
                    items.push(name);
                }
            }
            more = more || page.more;
            if !page.more || fetched == 0 {
                break;
            }
        }
        Ok(Page {
            items,
            more,
            next_expiry: None,
        })
    }
}

/// The tags of a sorted list that follow `after`, at most `limit`: what the
/// database's paged query answers.
fn page_of(all: &[String], after: &str, limit: u32) -> Page {
    let start = all.partition_point(|tag| tag.as_str() <= after);
    let end = start.saturating_add(limit as usize).min(all.len());
    Page {
        items: all[start..end].to_vec(),
        more: end < all.len(),
        next_expiry: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn pages_follow_the_last_tag_like_the_database() {
        let all = tags(&["a", "b", "c", "d"]);
        let first = page_of(&all, "", 2);
        assert_eq!((first.items, first.more), (tags(&["a", "b"]), true));
        let second = page_of(&all, "b", 2);
        assert_eq!((second.items, second.more), (tags(&["c", "d"]), false));
        // `last` need not be a tag that exists.
        let between = page_of(&all, "bb", 10);
        assert_eq!((between.items, between.more), (tags(&["c", "d"]), false));
        let past = page_of(&all, "z", 10);
        assert_eq!((past.items, past.more), (Vec::new(), false));
        assert!(page_of(&all, "", 0).items.is_empty());
        let whole = page_of(&all, "", u32::MAX);
        assert_eq!((whole.items.len(), whole.more), (4, false));
    }
}
