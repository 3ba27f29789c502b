//! The registry service: what pushing and pulling mean, independent of HTTP.
//!
//! It joins the two stores: blob bytes in [`BlobStore`], everything else in
//! the [`MetadataStore`]. The HTTP layer calls it and never touches either
//! store directly.
//!
//! Uploads hash as bytes stream in. The hash state of each upload is kept in
//! memory between requests, so verifying a finished upload never re-reads
//! it; only after a restart (or on another replica) is the state rebuilt from
//! what storage holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::Mutex as AsyncMutex;

use super::digest::{Digest, DigestAlgorithm, Hasher};
use super::manifest::{self, ManifestKind, ParsedManifest};
use super::names::{Reference, RepositoryName, Tag};
use crate::error::{RegistryError, Result};
use crate::metadata::{
    ManifestMeta, MetadataStore, NewManifest, Page, ReferenceKind, Referrer, StoredManifest,
    Upload, now,
};
use crate::storage::BlobStore;

/// Knobs of the registry service.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Accept manifests whose layers or child manifests are not in the
    /// repository ("sparse" manifests, e.g. an index mirrored without all
    /// its platforms). Off by default: such images cannot be pulled whole.
    pub allow_missing_references: bool,
}

/// In-memory state of an upload between requests.
struct UploadState {
    hasher: Hasher,
    size: u64,
}

type SessionSlot = Arc<AsyncMutex<Option<UploadState>>>;

/// Requests to the same upload are serialised by its slot's lock; the map
/// lock is held only to find the slot.
#[derive(Default)]
struct UploadSessions {
    slots: Mutex<HashMap<String, SessionSlot>>,
}

impl UploadSessions {
    fn slot(&self, id: &str) -> SessionSlot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(id.to_owned()).or_default().clone()
    }

    fn remove(&self, id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    fn in_progress(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// Where a chunk claims to go: `Content-Range: <start>-<end>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u64,
    pub end: u64,
}

impl ChunkRange {
    /// Bytes in the chunk (never zero: both ends are inclusive).
    pub fn byte_count(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// A finished manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    pub tags: Vec<Tag>,
}

pub struct Registry {
    metadata: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    sessions: UploadSessions,
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
            sessions: UploadSessions::default(),
            options,
        }
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.metadata
    }

    pub fn blob_store(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn uploads_in_progress(&self) -> usize {
        self.sessions.in_progress()
    }

    // ----- blobs

    /// Size of `digest` if the repository holds it.
    pub async fn blob_size(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.metadata.repository_blob(repo, digest).await?)
    }

    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: std::ops::Range<u64>,
    ) -> Result<opendal::FuturesBytesStream> {
        Ok(self.blobs.read_blob(digest, range).await?)
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
    /// filtered to those the caller may read). Returns the size if mounted.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        sources: &[RepositoryName],
    ) -> Result<Option<u64>> {
        for source in sources {
            if let Some(size) = self.metadata.repository_blob(source, digest).await? {
                // The bytes must really be there: metadata may outlive a lost object.
                if self.blobs.blob_size(digest).await?.is_none() {
                    return Ok(None);
                }
                self.metadata.link_blob(repo, digest, size).await?;
                return Ok(Some(size));
            }
        }
        Ok(None)
    }

    /// Repositories holding `digest`, as candidates for a mount without `from`.
    pub async fn repositories_with_blob(&self, digest: &Digest) -> Result<Vec<RepositoryName>> {
        Ok(self.metadata.repositories_with_blob(digest, 100).await?)
    }

    // ----- uploads

    pub async fn start_upload(
        &self,
        repo: &RepositoryName,
        algorithm: DigestAlgorithm,
    ) -> Result<Upload> {
        let at = now();
        let upload = Upload {
            id: uuid::Uuid::new_v4().to_string(),
            repository: repo.clone(),
            algorithm,
            created_at: at,
            updated_at: at,
        };
        self.metadata.create_upload(&upload).await?;
        Ok(upload)
    }

    pub async fn upload(&self, repo: &RepositoryName, id: &str) -> Result<Upload> {
        self.metadata
            .upload(repo, id)
            .await?
            .ok_or(RegistryError::BlobUploadUnknown)
    }

    /// Bytes an upload has received.
    pub async fn upload_size(&self, upload: &Upload) -> Result<u64> {
        let slot = self.sessions.slot(&upload.id);
        let mut state = slot.lock().await;
        Ok(self.load_state(upload, &mut state).await?.size)
    }

    /// Makes sure `state` reflects what storage holds, rebuilding the hash
    /// from storage if this process has no (or stale) state.
    async fn load_state<'a>(
        &self,
        upload: &Upload,
        state: &'a mut Option<UploadState>,
    ) -> Result<&'a mut UploadState> {
        let stored = self.blobs.upload_size(&upload.id).await?;
        let current = matches!(state, Some(s) if s.size == stored);
        if !current {
            let mut hasher = upload.algorithm.hasher();
            let mut bytes = self.blobs.read_upload(&upload.id, stored).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk.map_err(|e| RegistryError::Internal(e.to_string()))?);
            }
            *state = Some(UploadState {
                hasher,
                size: stored,
            });
        }
        state
            .as_mut()
            .ok_or_else(|| RegistryError::Internal("upload state vanished".into()))
    }

    /// Appends a chunk. `range`, when the client sent one, must start where
    /// the upload ends (else 416, and the upload is unchanged).
    pub async fn append_upload<S, E>(
        &self,
        upload: &Upload,
        range: Option<ChunkRange>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let slot = self.sessions.slot(&upload.id);
        let mut guard = slot.lock().await;
        let state = self.load_state(upload, &mut guard).await?;
        if let Some(range) = range
            && range.start != state.size
        {
            return Err(out_of_order(upload, state.size));
        }
        let appended = self.stream_into_upload(upload, state, body, range).await;
        if appended.is_err() {
            // Storage may hold part of the chunk; rebuild from it next time.
            *guard = None;
        }
        appended?;
        let size = guard.as_ref().map(|s| s.size).unwrap_or(0);
        self.metadata.touch_upload(&upload.id).await?;
        Ok(size)
    }

    async fn stream_into_upload<S, E>(
        &self,
        upload: &Upload,
        state: &mut UploadState,
        mut body: S,
        range: Option<ChunkRange>,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut writer = None;
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                RegistryError::BlobUploadInvalid(format!("reading request body: {e}"))
            })?;
            if chunk.is_empty() {
                continue;
            }
            received += chunk.len() as u64;
            if let Some(range) = range
                && received > range.byte_count()
            {
                return Err(RegistryError::SizeInvalid(format!(
                    "chunk is longer than its Content-Range {}-{}",
                    range.start, range.end
                )));
            }
            state.hasher.update(&chunk);
            if writer.is_none() {
                writer = Some(self.blobs.append_to_upload(&upload.id).await?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(chunk).await?;
            }
        }
        if let Some(range) = range
            && received != range.byte_count()
        {
            if let Some(w) = writer {
                w.abort().await;
            }
            return Err(RegistryError::SizeInvalid(format!(
                "chunk has {received} bytes but Content-Range {}-{} says {}",
                range.start,
                range.end,
                range.byte_count()
            )));
        }
        if let Some(w) = writer {
            w.close().await?;
        }
        state.size += received;
        Ok(())
    }

    /// Completes an upload: appends the final chunk if any, verifies the
    /// digest, makes the blob durable and links it into the repository.
    pub async fn finish_upload<S, E>(
        &self,
        upload: &Upload,
        expected: &Digest,
        range: Option<ChunkRange>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let slot = self.sessions.slot(&upload.id);
        let mut guard = slot.lock().await;
        let state = self.load_state(upload, &mut guard).await?;
        if let Some(range) = range
            && range.start != state.size
        {
            return Err(out_of_order(upload, state.size));
        }
        if let Err(e) = self.stream_into_upload(upload, state, body, range).await {
            *guard = None;
            return Err(e);
        }
        let Some(state) = guard.take() else {
            return Err(RegistryError::Internal("upload state vanished".into()));
        };
        let size = state.size;
        let actual = if state.hasher.algorithm() == expected.algorithm() {
            state.hasher.finish()
        } else {
            // The client announced no (or another) algorithm at POST; the
            // bytes must be hashed again with the one it names now.
            let mut hasher = expected.algorithm().hasher();
            let mut bytes = self.blobs.read_upload(&upload.id, size).await?;
            while let Some(chunk) = bytes
                .try_next()
                .await
                .map_err(|e| RegistryError::Internal(e.to_string()))?
            {
                hasher.update(&chunk);
            }
            hasher.finish()
        };
        drop(guard);
        if actual != *expected {
            self.discard_upload(&upload.id).await?;
            return Err(RegistryError::DigestInvalid(format!(
                "uploaded content has digest {actual}, not {expected}"
            )));
        }
        self.blobs.commit_upload(&upload.id, expected, size).await?;
        self.metadata
            .link_blob(&upload.repository, expected, size)
            .await?;
        self.metadata.delete_upload(&upload.id).await?;
        self.sessions.remove(&upload.id);
        Ok(size)
    }

    /// Cancels an upload and frees what it stored.
    pub async fn cancel_upload(&self, upload: &Upload) -> Result<()> {
        self.discard_upload(&upload.id).await
    }

    async fn discard_upload(&self, id: &str) -> Result<()> {
        self.metadata.delete_upload(id).await?;
        self.blobs.delete_upload(id).await?;
        self.sessions.remove(id);
        Ok(())
    }

    /// Removes uploads nobody touched since `before` (milliseconds). Returns
    /// how many were removed.
    pub async fn remove_stale_uploads(&self, before: i64) -> Result<usize> {
        let mut removed = 0;
        loop {
            let stale = self.metadata.stale_uploads(before, 100).await?;
            if stale.is_empty() {
                break;
            }
            for upload in stale {
                self.discard_upload(&upload.id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    // ----- manifests

    /// Validates and stores a manifest pushed as `reference`, pointing the tag
    /// (if the reference is one) and `extra_tags` at it.
    pub async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
        extra_tags: Vec<Tag>,
    ) -> Result<PushedManifest> {
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
        if !self.options.allow_missing_references {
            self.check_references(repo, &parsed).await?;
        }
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
        };
        self.metadata.put_manifest(repo, &new, &tags).await?;
        Ok(PushedManifest {
            digest,
            subject: parsed.subject,
            tags,
        })
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
        self.metadata
            .manifest(repo, reference)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
    }

    pub async fn manifest_meta(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<ManifestMeta> {
        self.metadata
            .manifest_meta(repo, reference)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
    }

    /// For a client that cannot take an index: the child for `os/arch`, if
    /// `index` lists one and it is in the repository.
    pub async fn platform_manifest(
        &self,
        repo: &RepositoryName,
        index: &StoredManifest,
        os: &str,
        architecture: &str,
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
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(reference.to_string()))
        }
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

    pub async fn tags(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        self.metadata
            .list_tags(repo, after, limit)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))
    }

    pub async fn repositories(&self, after: Option<&str>, limit: u32) -> Result<Page> {
        Ok(self.metadata.list_repositories(after, limit).await?)
    }
}

fn out_of_order(upload: &Upload, offset: u64) -> RegistryError {
    RegistryError::UploadRangeInvalid {
        location: upload_location(upload),
        offset,
    }
}

/// The URL path of an upload, as given in `Location` headers.
pub fn upload_location(upload: &Upload) -> String {
    format!("/v2/{}/blobs/uploads/{}", upload.repository, upload.id)
}
