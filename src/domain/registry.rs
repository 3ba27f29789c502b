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

use super::cache::{CachedTags, MAX_CACHED_TAGS, PullCache};
use super::manifest::{self, ManifestKind, ParsedManifest};
use super::negotiation::{Accepted, DEFAULT_PLATFORM, look_for_another};
use crate::crash_points;
use crate::error::{RegistryError, Result};
use crate::metadata::{
    ManifestMeta, MetadataStore, NewManifest, Page, ReferenceKind, Referrer, StoredManifest,
    Upload, now,
};
use crate::oci::digest::{Digest, DigestAlgorithm, Hasher};
use crate::oci::names::{Reference, RepositoryName, Tag};
use crate::storage::{BlobStore, UploadWriter, WindowIndex};

/// Knobs of the registry service.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Accept manifests whose layers or child manifests are not in the
    /// repository ("sparse" manifests, e.g. an index mirrored without all
    /// its platforms). Off by default: such images cannot be pulled whole.
    pub allow_missing_references: bool,
    /// Keep manifests and tag lists read by pulls in memory. Only sound when
    /// no other process changes the metadata (the embedded database).
    pub cache_pulls: bool,
}

/// In-memory state of an upload between requests.
struct UploadState {
    hasher: Hasher,
    size: u64,
}

/// What this process knows of an upload.
#[derive(Default)]
enum Session {
    /// Nothing yet (first request here, or state dropped after a failure):
    /// rebuilt from storage on use.
    #[default]
    Unloaded,
    Ready(UploadState),
    /// Finished, cancelled or removed: requests that waited for the lock
    /// must not touch it.
    Closed,
}

type SessionGuard = tokio::sync::OwnedMutexGuard<Session>;

/// Requests to the same upload are serialised by its slot's lock; the map
/// lock is held only to find the slot.
#[derive(Default)]
struct UploadSessions {
    slots: Mutex<HashMap<String, UploadSlot>>,
}

#[derive(Clone, Default)]
struct UploadSlot {
    session: Arc<AsyncMutex<Session>>,
    /// Read-locked by the upload's writes in progress (see
    /// [`crate::storage::WriteFence`]), which can outlive a dropped request.
    writes: Arc<tokio::sync::RwLock<()>>,
}

impl UploadSessions {
    fn slot(&self, id: &str) -> Arc<AsyncMutex<Session>> {
        self.slot_of(id).session
    }

    /// The lock the upload's writes in progress hold for reading.
    fn writes(&self, id: &str) -> Arc<tokio::sync::RwLock<()>> {
        self.slot_of(id).writes
    }

    fn slot_of(&self, id: &str) -> UploadSlot {
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

/// A request body that sends nothing for this long has its upload's
/// buffers written out and freed while it waits: hundreds of stalled
/// clients must not hold a megabyte each.
const RELEASE_BUFFERS_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

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

/// A manifest checked by [`Registry::validate_manifest`], ready to store.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    new: NewManifest,
    pushed: PushedManifest,
}

pub struct Registry {
    metadata: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    sessions: UploadSessions,
    cache: PullCache,
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
            cache: PullCache::new(options.cache_pulls),
            options,
        }
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.metadata
    }

    pub fn blob_store(&self) -> &BlobStore {
        &self.blobs
    }

    /// Forgets what is cached of `namespace`'s repositories, which the
    /// metadata store deleted with their project.
    pub fn forget_namespace(&self, namespace: &str) {
        self.cache.invalidate_namespace(namespace);
    }

    pub fn uploads_in_progress(&self) -> usize {
        self.sessions.in_progress()
    }

    // ----- blobs

    /// Size of `digest` if the repository holds it.
    pub async fn blob_size(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.metadata.repository_blob(repo, digest).await?)
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

    /// Takes the upload's session for the duration of one request.
    async fn lock_session(&self, upload: &Upload) -> Result<SessionGuard> {
        let guard = self.sessions.slot(&upload.id).lock_owned().await;
        if matches!(*guard, Session::Closed) {
            return Err(RegistryError::BlobUploadUnknown);
        }
        Ok(guard)
    }

    /// Bytes an upload has received.
    pub async fn upload_size(&self, upload: &Upload) -> Result<u64> {
        let mut session = self.lock_session(upload).await?;
        Ok(self.ready(upload, &mut session).await?.size)
    }

    /// The session's state, made to reflect what storage holds: if this
    /// process has none (or it is stale, e.g. another replica appended),
    /// the hash is rebuilt from storage.
    async fn ready<'a>(
        &self,
        upload: &Upload,
        session: &'a mut Session,
    ) -> Result<&'a mut UploadState> {
        let stored = {
            // A request dropped midway may have left a write running; what
            // storage holds is known once it is done.
            let _no_writes = self.sessions.writes(&upload.id).write_owned().await;
            self.blobs.upload_size(&upload.id).await?
        };
        if !matches!(session, Session::Ready(s) if s.size == stored) {
            let mut hasher = upload.algorithm.hasher();
            let mut bytes = self.blobs.read_upload(&upload.id, stored).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk.map_err(|e| RegistryError::Internal(e.to_string()))?);
            }
            *session = Session::Ready(UploadState {
                hasher,
                size: stored,
            });
        }
        match session {
            Session::Ready(state) => Ok(state),
            _ => Err(RegistryError::Internal("upload state vanished".into())),
        }
    }

    /// Appends a chunk. `range`, when the client sent one, must start where
    /// the upload ends (else 416). A refused chunk leaves the upload as it
    /// was, so the client can send it again.
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
        let mut session = self.lock_session(upload).await?;
        self.touch(upload).await?;
        let state = self.ready(upload, &mut session).await?;
        self.append_chunk(upload, state, range, body).await?;
        let size = state.size;
        self.touch(upload).await?;
        Ok(size)
    }

    /// Marks the upload as in use, so the stale-upload cleaner leaves it.
    async fn touch(&self, upload: &Upload) -> Result<()> {
        if self.metadata.touch_upload(&upload.id).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUploadUnknown)
        }
    }

    /// Streams `body` onto the upload, or (on any failure) leaves both the
    /// stored bytes and the hash state as they were.
    async fn append_chunk<S, E>(
        &self,
        upload: &Upload,
        state: &mut UploadState,
        range: Option<ChunkRange>,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if let Some(range) = range
            && range.start != state.size
        {
            return Err(out_of_order(upload, state.size));
        }
        // Hashed into a copy, kept only when the whole chunk is stored: a
        // request dropped midway (an HTTP/2 client resetting its stream)
        // must leave the session as it was.
        let mut hasher = state.hasher.clone();
        match self
            .stream_into_upload(upload, &mut hasher, body, range)
            .await
        {
            Ok(received) => {
                state.hasher = hasher;
                state.size += received;
                Ok(())
            }
            Err((e, wrote)) => {
                if wrote {
                    self.blobs.truncate_upload(&upload.id, state.size).await?;
                }
                Err(e)
            }
        }
    }

    /// Hashes and writes the body; returns the bytes received, or the error
    /// and whether anything may have reached storage.
    async fn stream_into_upload<S, E>(
        &self,
        upload: &Upload,
        hasher: &mut Hasher,
        mut body: S,
        range: Option<ChunkRange>,
    ) -> std::result::Result<u64, (RegistryError, bool)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut writer: Option<UploadWriter> = None;
        let mut received: u64 = 0;
        let outcome = self
            .pump(upload, hasher, &mut body, range, &mut writer, &mut received)
            .await;
        match (outcome, writer) {
            (Ok(()), Some(w)) => w
                .close()
                .await
                .map(|()| received)
                .map_err(|e| (e.into(), true)),
            (Ok(()), None) => Ok(received),
            (Err(e), Some(w)) => {
                // Closing waits for writes still in flight, so that the
                // caller's truncation is the last word on the upload's size.
                let _ = w.close().await;
                Err((e, true))
            }
            (Err(e), None) => Err((e, false)),
        }
    }

    async fn pump<S, E>(
        &self,
        upload: &Upload,
        hasher: &mut Hasher,
        body: &mut S,
        range: Option<ChunkRange>,
        writer: &mut Option<UploadWriter>,
        received: &mut u64,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut quiet = Box::pin(tokio::time::sleep(RELEASE_BUFFERS_AFTER));
        loop {
            let next = match futures::poll!(body.next()) {
                std::task::Poll::Ready(next) => next,
                std::task::Poll::Pending => {
                    quiet
                        .as_mut()
                        .reset(tokio::time::Instant::now() + RELEASE_BUFFERS_AFTER);
                    tokio::select! {
                        biased;
                        next = body.next() => next,
                        () = &mut quiet => {
                            if let Some(w) = writer.as_mut() {
                                w.release_buffers().await?;
                            }
                            body.next().await
                        }
                    }
                }
            };
            let Some(chunk) = next else {
                break;
            };
            let chunk = chunk.map_err(|e| {
                RegistryError::BlobUploadInvalid(format!("reading request body: {e}"))
            })?;
            if chunk.is_empty() {
                continue;
            }
            *received += chunk.len() as u64;
            if let Some(range) = range
                && *received > range.byte_count()
            {
                return Err(RegistryError::SizeInvalid(format!(
                    "chunk is longer than its Content-Range {}-{}",
                    range.start, range.end
                )));
            }
            hasher.update(&chunk);
            if writer.is_none() {
                let fence = self.sessions.writes(&upload.id).read_owned().await;
                let opened = self.blobs.append_to_upload(&upload.id).await?;
                *writer = Some(opened.fenced(Arc::new(fence)));
            }
            if let Some(w) = writer.as_mut() {
                w.write(chunk).await?;
            }
        }
        if let Some(range) = range
            && *received != range.byte_count()
        {
            return Err(RegistryError::SizeInvalid(format!(
                "chunk has {received} bytes but Content-Range {}-{} says {}",
                range.start,
                range.end,
                range.byte_count()
            )));
        }
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
        let mut session = self.lock_session(upload).await?;
        self.touch(upload).await?;
        let state = self.ready(upload, &mut session).await?;
        self.append_chunk(upload, state, range, body).await?;
        let size = state.size;
        // Storage must hold exactly the bytes hashed. Writes left running by
        // a dropped request are waited for before each request reads the
        // upload's size; this also catches any other writer (another
        // process on the same storage) that would otherwise be committed
        // under the client's digest.
        let stored = self.blobs.upload_size(&upload.id).await?;
        if stored != size {
            return Err(RegistryError::BlobUploadInvalid(format!(
                "the upload holds {stored} bytes where {size} were received and \
                 hashed: something else wrote to it; check its status and go on"
            )));
        }
        let actual = if state.hasher.algorithm() == expected.algorithm() {
            state.hasher.clone().finish()
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
        if actual != *expected {
            self.discard(&upload.id, session).await?;
            return Err(RegistryError::DigestInvalid(format!(
                "uploaded content has digest {actual}, not {expected}"
            )));
        }
        self.blobs.commit_upload(&upload.id, expected, size).await?;
        self.metadata
            .link_blob(&upload.repository, expected, size)
            .await?;
        crash_points::reached(crash_points::BLOB_AFTER_LINK);
        self.metadata.delete_upload(&upload.id).await?;
        crash_points::reached(crash_points::BLOB_AFTER_UPLOAD_ROW_DELETE);
        *session = Session::Closed;
        self.sessions.remove(&upload.id);
        Ok(size)
    }

    /// Cancels an upload and frees what it stored.
    pub async fn cancel_upload(&self, upload: &Upload) -> Result<()> {
        let session = self.lock_session(upload).await?;
        self.discard(&upload.id, session).await
    }

    /// Forgets an upload whose session the caller holds.
    async fn discard(&self, id: &str, mut session: SessionGuard) -> Result<()> {
        self.metadata.delete_upload(id).await?;
        self.blobs.delete_upload(id).await?;
        *session = Session::Closed;
        self.sessions.remove(id);
        Ok(())
    }

    /// Removes uploads nobody touched since `before` (milliseconds), except
    /// those a request is using right now. Returns how many were removed.
    pub async fn remove_stale_uploads(&self, before: i64) -> Result<usize> {
        let mut removed = 0;
        let stale = self.metadata.stale_uploads(before, 1000).await?;
        for upload in stale {
            let Ok(session) = self.sessions.slot(&upload.id).try_lock_owned() else {
                continue; // in use: not abandoned
            };
            if matches!(*session, Session::Closed) {
                continue;
            }
            self.discard(&upload.id, session).await?;
            removed += 1;
        }
        Ok(removed)
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
        Ok(ValidManifest {
            new,
            pushed: PushedManifest {
                digest,
                subject: parsed.subject,
                tags,
            },
        })
    }

    /// Stores a validated manifest in `repo` and points its tags at it, in
    /// one transaction.
    pub async fn store_manifest(
        &self,
        repo: &RepositoryName,
        valid: ValidManifest,
    ) -> Result<PushedManifest> {
        self.metadata
            .put_manifest(repo, &valid.new, &valid.pushed.tags)
            .await?;
        self.cache.invalidate(repo);
        Ok(valid.pushed)
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
        self.cache.put_tags(ticket, repo, &found);
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
        Ok(Page { items, more })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DatabaseConfig, SqlMetadataStore};

    struct Fixture {
        registry: Registry,
        blobs: BlobStore,
        repo: RepositoryName,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let metadata = SqlMetadataStore::connect(&DatabaseConfig::Sqlite {
            path: dir.path().join("berth.db"),
        })
        .await
        .unwrap();
        let blobs = BlobStore::filesystem(&dir.path().join("storage")).unwrap();
        Fixture {
            registry: Registry::new(
                Arc::new(metadata),
                blobs.clone(),
                RegistryOptions::default(),
            ),
            blobs,
            repo: "proj/app".parse().unwrap(),
            _dir: dir,
        }
    }

    impl Fixture {
        /// A new upload that has received `first` in one chunk.
        async fn upload_holding(&self, first: &'static [u8]) -> Upload {
            let upload = self
                .registry
                .start_upload(&self.repo, DigestAlgorithm::Sha256)
                .await
                .unwrap();
            let size = self
                .registry
                .append_upload(&upload, None, body(first))
                .await
                .unwrap();
            assert_eq!(size, first.len() as u64);
            upload
        }
    }

    fn body(bytes: &'static [u8]) -> impl Stream<Item = std::io::Result<Bytes>> + Unpin {
        futures::stream::iter([Ok(Bytes::from_static(bytes))])
    }

    /// An HTTP/2 client that resets its stream makes the server drop the
    /// request future wherever it is: here, after part of a chunk was hashed.
    #[tokio::test]
    async fn a_dropped_chunk_leaves_the_upload_as_it_was() {
        let f = fixture().await;
        let upload = f.upload_holding(b"aaaa").await;
        let stalled = body(b"bbb").chain(futures::stream::pending());
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            f.registry.append_upload(&upload, None, stalled),
        )
        .await;
        assert!(dropped.is_err(), "the stalled request must time out");
        assert_eq!(f.registry.upload_size(&upload).await.unwrap(), 4);

        let digest = DigestAlgorithm::Sha256.digest_of(b"aaaacccc");
        let size = f
            .registry
            .finish_upload(&upload, &digest, None, body(b"cccc"))
            .await
            .unwrap();
        assert_eq!(size, 8);
        let stored: Vec<Bytes> = f
            .blobs
            .read_blob(&digest, 0..8, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(stored.concat(), b"aaaacccc");
    }

    /// A request dropped while its writes run: the next request waits for
    /// them, so the size it reports is the size storage keeps, and the
    /// upload goes on from there.
    #[tokio::test]
    async fn writes_left_by_a_dropped_request_are_waited_for() {
        let f = fixture().await;
        let upload = f.upload_holding(b"aaaa").await;
        let content: Vec<u8> = b"aaaa"
            .iter()
            .copied()
            .chain((0..3 << 20).map(|i| (i % 251) as u8))
            .collect();
        let sent = Bytes::copy_from_slice(&content[4..]);
        // The request is dropped as soon as it asks for more than `sent`:
        // its last write has only just started.
        let (asks_for_more, asked_for_more) = tokio::sync::oneshot::channel();
        let mut asks_for_more = Some(asks_for_more);
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(sent)]).chain(
            futures::stream::poll_fn(move |_| {
                if let Some(tell) = asks_for_more.take() {
                    let _ = tell.send(());
                }
                std::task::Poll::Pending
            }),
        );
        tokio::select! {
            _ = f.registry.append_upload(&upload, None, stalled) => {
                panic!("a request whose body never ends cannot finish")
            }
            _ = asked_for_more => {}
        }

        let reported = f.registry.upload_size(&upload).await.unwrap();
        assert_eq!(
            reported,
            f.blobs.upload_size(&upload.id).await.unwrap(),
            "a write landed after the upload's size was reported"
        );
        let rest = Bytes::copy_from_slice(&content[reported as usize..]);
        let digest = DigestAlgorithm::Sha256.digest_of(&content);
        f.registry
            .finish_upload(
                &upload,
                &digest,
                None,
                futures::stream::iter([Ok::<_, std::io::Error>(rest)]),
            )
            .await
            .unwrap();
        let stored: Vec<Bytes> = f
            .blobs
            .read_blob(&digest, 0..content.len() as u64, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(stored.concat() == content, "stored content differs");
    }

    /// Bytes that reach the upload behind the registry's back while a
    /// request streams into it (another process on the same storage) were
    /// never hashed: committing would name wrong content with the client's
    /// digest.
    #[tokio::test]
    async fn a_foreign_write_stops_the_commit() {
        let f = fixture().await;
        let upload = f.upload_holding(b"aaaa").await;
        let blobs = f.blobs.clone();
        let id = upload.id.clone();
        let final_chunk = futures::stream::once(async move {
            let mut late = blobs.append_to_upload(&id).await.unwrap();
            late.write(Bytes::from_static(b"zz")).await.unwrap();
            late.close().await.unwrap();
            Ok::<_, std::io::Error>(Bytes::from_static(b"cccc"))
        })
        .boxed();
        let digest = DigestAlgorithm::Sha256.digest_of(b"aaaacccc");
        let refused = f
            .registry
            .finish_upload(&upload, &digest, None, final_chunk)
            .await;
        assert!(
            matches!(refused, Err(RegistryError::BlobUploadInvalid(_))),
            "{refused:?}"
        );
        assert_eq!(f.blobs.blob_size(&digest).await.unwrap(), None);
        // The session follows what storage holds from then on.
        assert_eq!(f.registry.upload_size(&upload).await.unwrap(), 10);
    }

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
