//! Upload sessions: blobs pushed in one or more requests, hashed as the
//! bytes stream in, and continued on whichever replica the next request
//! reaches.
//!
//! Each chunk is stored as a numbered part ([`BlobStore::write_part`]).
//! Once the part is stored, and before the client is answered, the part and
//! the upload's new state (bytes received, parts, the saved hash state) are
//! recorded in the upload's row in one step that succeeds only if no other
//! part was recorded meanwhile. That row is the upload's truth: another
//! replica resumes the hash from the saved state without reading a byte
//! back, and a part stored but never recorded (its writer killed, or beaten
//! to it) does not count. The state is also kept in memory between requests
//! (the session), used as long as the row says nothing newer. Requests to
//! one upload in this process are serialised by its session lock, and
//! writes a dropped request left running are waited for before the next
//! part starts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::Mutex as AsyncMutex;

use super::quotas::ByteAllowance;
use crate::crash_points;
use crate::error::{RegistryError, Result};
use crate::metadata::{MetadataStore, Upload, UploadPartRecord, now};
use crate::oci::digest::{Digest, DigestAlgorithm, ResumableHasher};
use crate::oci::names::RepositoryName;
use crate::storage::{BlobStore, PartWriter, StorageError, UploadPart, WrittenObserver};

/// What this process knows of an upload between requests: its state after
/// the last part recorded.
struct UploadState {
    hasher: ResumableHasher,
    size: u64,
    parts: u32,
}

/// What this process knows of an upload.
#[derive(Default)]
enum Session {
    /// Nothing yet (first request here, or state dropped after a failure):
    /// taken from the upload's row on use.
    #[default]
    Unloaded,
    /// Boxed: a SHA-512 state is a few hundred bytes.
    Ready(Box<UploadState>),
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
        if slots.len() >= MAX_UPLOAD_SLOTS && !slots.contains_key(id) {
            // Slots nobody holds (no request, no write in flight) are only
            // a cache of the hash state saved with the upload's row:
            // uploads a client abandoned must not pile up until the
            // stale-upload job removes them a day later.
            slots.retain(|_, slot| {
                Arc::strong_count(&slot.session) > 1 || Arc::strong_count(&slot.writes) > 1
            });
            slots.shrink_to(MAX_UPLOAD_SLOTS);
        }
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

/// Upload sessions kept in memory before idle ones are dropped.
const MAX_UPLOAD_SLOTS: usize = 1024;

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

/// The upload service. The registry service reads the blobs it makes.
pub struct Uploads {
    metadata: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    sessions: UploadSessions,
}

fn part_record(part: &UploadPart) -> UploadPartRecord {
    UploadPartRecord {
        number: part.number,
        token: part.token.clone(),
        size: part.size,
    }
}

fn stored_part(record: UploadPartRecord) -> UploadPart {
    UploadPart {
        number: record.number,
        token: record.token,
        size: record.size,
    }
}

/// A storage failure while a chunk was written: an upload changed behind
/// berth's back is the client's to look at (its status says where it is).
fn write_error(e: StorageError) -> RegistryError {
    match e {
        StorageError::UploadChanged(why) => RegistryError::BlobUploadInvalid(format!(
            "{why}; the chunk was not kept: check the upload's status and go on from there"
        )),
        other => other.into(),
    }
}

impl Uploads {
    pub fn new(metadata: Arc<dyn MetadataStore>, blobs: BlobStore) -> Self {
        Uploads {
            metadata,
            blobs,
            sessions: UploadSessions::default(),
        }
    }

    /// Whether a blob being stored can be followed in its local file
    /// (see [`Uploads::store_verified_then`]).
    pub fn writes_local_files(&self) -> bool {
        self.blobs.writes_local_files()
    }

    /// Uploads this process holds a session for.
    pub fn in_progress(&self) -> usize {
        self.sessions.in_progress()
    }

    /// Stores `body` as the blob `expected` in `repo`, if its bytes have that
    /// digest; otherwise nothing is kept. The one step from a verified
    /// stream to a blob, shared by pushes in one request and by content
    /// fetched from elsewhere (pull-through fills, imports).
    pub async fn store_verified<S, E>(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.store_verified_then(repo, expected, body, || {}, None)
            .await
    }

    /// [`Uploads::store_verified`], calling `on_verified` as soon as the
    /// whole body has matched `expected`, before it is made durable and
    /// recorded: a caller serving the same bytes (a pull-through fill) may
    /// release them then, without waiting for the `fsync` and the commit.
    /// With `on_written`, where the blob is written to a local file, the
    /// caller may follow that file as it grows and read the bytes from it
    /// instead of keeping a copy of its own
    /// ([`PartWriter::observe_written`]); `on_written` is never called
    /// where it is not.
    pub async fn store_verified_then<S, E>(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        body: S,
        on_verified: impl FnOnce() + Send,
        on_written: Option<WrittenObserver>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.start(repo, expected.algorithm()).await?;
        let stored = self
            .finish_then(&upload, expected, None, body, None, on_verified, on_written)
            .await;
        if stored.is_err() {
            // A digest mismatch has already discarded it; a failed body
            // leaves an upload nobody will continue.
            match self.cancel(&upload).await {
                Ok(()) | Err(RegistryError::BlobUploadUnknown) => {}
                Err(e) => {
                    tracing::warn!(upload = %upload.id, error = %e, "cancelling a failed upload")
                }
            }
        }
        stored
    }

    pub async fn start(&self, repo: &RepositoryName, algorithm: DigestAlgorithm) -> Result<Upload> {
        let at = now();
        let upload = Upload {
            id: uuid::Uuid::new_v4().to_string(),
            repository: repo.clone(),
            algorithm,
            created_at: at,
            updated_at: at,
            size: 0,
            parts: 0,
            hash_state: Some(ResumableHasher::new(algorithm).state()),
        };
        self.metadata.create_upload(&upload).await?;
        Ok(upload)
    }

    pub async fn find(&self, repo: &RepositoryName, id: &str) -> Result<Upload> {
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

    /// Bytes an upload has received (and recorded).
    pub async fn size(&self, upload: &Upload) -> Result<u64> {
        let mut session = self.lock_session(upload).await?;
        Ok(self.ready(upload, &mut session).await?.size)
    }

    /// The upload's state: the session's, unless the row (`upload`, read
    /// for this request) has recorded more parts, as when another replica
    /// took chunks meanwhile; then the hash is resumed from the row's saved
    /// state. Nothing is read from storage.
    async fn ready<'a>(
        &self,
        upload: &Upload,
        session: &'a mut Session,
    ) -> Result<&'a mut UploadState> {
        let current = matches!(session, Session::Ready(s) if s.parts >= upload.parts);
        if !current {
            let Some(saved) = upload.hash_state.as_deref() else {
                // Started before uploads were recorded part by part: its
                // bytes cannot be vouched for. The client starts again.
                tracing::info!(upload = %upload.id, "discarding an upload from an older berth");
                self.blobs.delete_upload(&upload.id).await?;
                self.metadata.delete_upload(&upload.id).await?;
                *session = Session::Closed;
                self.sessions.remove(&upload.id);
                return Err(RegistryError::BlobUploadUnknown);
            };
            let hasher = ResumableHasher::resume(upload.algorithm, saved)
                .map_err(|e| RegistryError::Internal(format!("upload {}: {e}", upload.id)))?;
            *session = Session::Ready(Box::new(UploadState {
                hasher,
                size: upload.size,
                parts: upload.parts,
            }));
        }
        match session {
            Session::Ready(state) => Ok(&mut **state),
            _ => Err(RegistryError::Internal("upload state vanished".into())),
        }
    }

    /// Appends a chunk. `range`, when the client sent one, must start where
    /// the upload ends (else 416). A refused chunk leaves the upload as it
    /// was, so the client can send it again.
    pub async fn append<S, E>(
        &self,
        upload: &Upload,
        range: Option<ChunkRange>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.append_within(upload, range, body, None).await
    }

    /// [`append`](Self::append) under a namespace's byte quota: a chunk
    /// going past what `allowance` leaves is cut off as it crosses it and
    /// refused, not recorded (the upload stays where it was).
    pub async fn append_within<S, E>(
        &self,
        upload: &Upload,
        range: Option<ChunkRange>,
        body: S,
        allowance: Option<&ByteAllowance>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let appended = self.append_reserved(upload, range, body, allowance).await;
        self.released(allowance, appended).await
    }

    /// Drops a write's quota reservation once the write is over: what it
    /// kept counts where it is recorded now (the upload's size, the blob's
    /// link), and what it did not keep never counted.
    async fn released<T>(
        &self,
        allowance: Option<&ByteAllowance>,
        outcome: Result<T>,
    ) -> Result<T> {
        if let Some(allowance) = allowance {
            allowance.release(self.metadata.as_ref()).await;
        }
        outcome
    }

    async fn append_reserved<S, E>(
        &self,
        upload: &Upload,
        range: Option<ChunkRange>,
        body: S,
        allowance: Option<&ByteAllowance>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut session = self.lock_session(upload).await?;
        self.touch(upload).await?;
        let state = self.ready(upload, &mut session).await?;
        let mut hasher = state.hasher.clone();
        let Some(part) = self
            .write_chunk(upload, state, range, &mut hasher, body, allowance, None)
            .await?
        else {
            return Ok(state.size);
        };
        // Stored; recorded before the client hears of it, so that any
        // replica continues from here.
        let size = state.size + part.size;
        let recorded = self
            .metadata
            .record_upload_part(&upload.id, &part_record(&part), size, &hasher.state())
            .await;
        match recorded {
            Ok(true) => {
                *state = UploadState {
                    hasher,
                    size,
                    parts: part.number,
                };
                Ok(size)
            }
            Ok(false) => {
                *session = Session::Unloaded;
                Err(self.beaten_to_it(upload).await)
            }
            Err(e) => {
                *session = Session::Unloaded;
                Err(e.into())
            }
        }
    }

    /// The answer to a chunk whose part another request recorded first (on
    /// another replica): where the upload is now, or that it is gone.
    async fn beaten_to_it(&self, upload: &Upload) -> RegistryError {
        match self.metadata.upload(&upload.repository, &upload.id).await {
            Ok(Some(now)) => out_of_order(upload, now.size),
            Ok(None) => RegistryError::BlobUploadUnknown,
            Err(e) => e.into(),
        }
    }

    /// Marks the upload as in use, so the stale-upload cleaner leaves it.
    async fn touch(&self, upload: &Upload) -> Result<()> {
        if self.metadata.touch_upload(&upload.id).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUploadUnknown)
        }
    }

    /// Checks where the chunk claims to go, then stores `body` as the
    /// upload's next part, hashing it into `hasher`. `None` for an empty
    /// body (nothing stored). On failure nothing that counts was stored.
    #[allow(clippy::too_many_arguments)]
    async fn write_chunk<S, E>(
        &self,
        upload: &Upload,
        state: &UploadState,
        range: Option<ChunkRange>,
        hasher: &mut ResumableHasher,
        mut body: S,
        allowance: Option<&ByteAllowance>,
        on_written: Option<WrittenObserver>,
    ) -> Result<Option<UploadPart>>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if let Some(range) = range
            && range.start != state.size
        {
            return Err(out_of_order(upload, state.size));
        }
        // A request dropped midway may have left writes running; the next
        // part starts once they are done (they would land inside it).
        drop(self.sessions.writes(&upload.id).write_owned().await);
        let mut writer: Option<PartWriter> = None;
        let mut received: u64 = 0;
        let outcome = self
            .pump(
                upload,
                state,
                hasher,
                &mut body,
                range,
                &mut writer,
                &mut received,
                allowance,
                on_written,
            )
            .await;
        match (outcome, writer) {
            (Ok(()), Some(w)) => w.close().await.map(Some).map_err(write_error),
            (Ok(()), None) => Ok(None),
            (Err(e), Some(w)) => {
                w.abort().await;
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn pump<S, E>(
        &self,
        upload: &Upload,
        state: &UploadState,
        hasher: &mut ResumableHasher,
        body: &mut S,
        range: Option<ChunkRange>,
        writer: &mut Option<PartWriter>,
        received: &mut u64,
        allowance: Option<&ByteAllowance>,
        mut on_written: Option<WrittenObserver>,
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
                                w.release_buffers().await.map_err(write_error)?;
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
            // Checked before the chunk is written: the bytes past the
            // quota are never stored, and the part is aborted.
            if let Some(allowance) = allowance {
                allowance.cover(self.metadata.as_ref(), *received).await?;
            }
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
                let mut opened = self
                    .blobs
                    .write_part(&upload.id, state.parts + 1)
                    .await
                    .map_err(write_error)?;
                if let Some(observer) = on_written.take() {
                    opened.observe_written(observer);
                }
                *writer = Some(opened.fenced(Arc::new(fence)));
            }
            if let Some(w) = writer.as_mut() {
                w.write(chunk).await.map_err(write_error)?;
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

    /// Completes an upload: stores the final chunk if any, verifies the
    /// digest, makes the blob and links it into the repository.
    pub async fn finish<S, E>(
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
        self.finish_then(upload, expected, range, body, None, || {}, None)
            .await
    }

    /// [`finish`](Self::finish) under a namespace's byte quota, which the
    /// final chunk must fit (as [`append_within`](Self::append_within)).
    pub async fn finish_within<S, E>(
        &self,
        upload: &Upload,
        expected: &Digest,
        range: Option<ChunkRange>,
        body: S,
        allowance: Option<&ByteAllowance>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let finished = self
            .finish_then(upload, expected, range, body, allowance, || {}, None)
            .await;
        self.released(allowance, finished).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_then<S, E>(
        &self,
        upload: &Upload,
        expected: &Digest,
        range: Option<ChunkRange>,
        body: S,
        allowance: Option<&ByteAllowance>,
        on_verified: impl FnOnce() + Send,
        on_written: Option<WrittenObserver>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut session = self.lock_session(upload).await?;
        self.touch(upload).await?;
        let state = self.ready(upload, &mut session).await?;
        let mut hasher = state.hasher.clone();
        // The final chunk's part is not recorded: the blob is made from it
        // now, or (if anything fails) it never counted and the client can
        // send it again.
        let last = self
            .write_chunk(
                upload,
                state,
                range,
                &mut hasher,
                body,
                allowance,
                on_written,
            )
            .await?;
        let mut parts = self.recorded_parts(upload, state).await?;
        parts.extend(last);
        let size = parts.iter().map(|p| p.size).sum();
        let actual = if hasher.algorithm() == expected.algorithm() {
            hasher.finish()
        } else {
            // The client announced no (or another) algorithm at POST; the
            // bytes must be hashed again with the one it names now.
            let mut hasher = ResumableHasher::new(expected.algorithm());
            let mut bytes = self.blobs.read_upload(&upload.id, &parts).await?;
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
        on_verified();
        // The blob's row is claimed (made, or touched) before its bytes are
        // written, so that garbage collection cannot delete them under the
        // commit; an earlier copy being deleted right now is waited for.
        super::garbage::claim_blob(self.metadata.as_ref(), expected, size).await?;
        self.blobs
            .commit_upload(&upload.id, &parts, expected)
            .await
            .map_err(write_error)?;
        if !self
            .metadata
            .link_blob(&upload.repository, expected, size)
            .await?
        {
            // Collected between the claim and now: only if the commit took
            // longer than the grace period. The parts may be gone with it.
            tracing::warn!(digest = %expected, upload = %upload.id, "the blob was collected as garbage while its upload completed; the client must upload it again");
            self.discard(&upload.id, session).await?;
            return Err(RegistryError::BlobUploadUnknown);
        }
        crash_points::reached(crash_points::BLOB_AFTER_LINK);
        self.metadata.delete_upload(&upload.id).await?;
        crash_points::reached(crash_points::BLOB_AFTER_UPLOAD_ROW_DELETE);
        *session = Session::Closed;
        self.sessions.remove(&upload.id);
        Ok(size)
    }

    /// The parts `state` counts, as recorded: the first `state.parts`
    /// (another replica may have recorded more since; those are not in the
    /// hash, so they are not in the blob).
    async fn recorded_parts(
        &self,
        upload: &Upload,
        state: &UploadState,
    ) -> Result<Vec<UploadPart>> {
        let mut records = self.metadata.upload_parts(&upload.id).await?;
        records.truncate(state.parts as usize);
        let recorded: u64 = records.iter().map(|p| p.size).sum();
        let numbered = records
            .iter()
            .zip(1..)
            .all(|(record, number)| record.number == number);
        if records.len() != state.parts as usize || recorded != state.size || !numbered {
            return Err(RegistryError::Internal(format!(
                "upload {}: {} parts of {recorded} bytes recorded where its state says {} of {}",
                upload.id,
                records.len(),
                state.parts,
                state.size
            )));
        }
        Ok(records.into_iter().map(stored_part).collect())
    }

    /// Cancels an upload and frees what it stored.
    pub async fn cancel(&self, upload: &Upload) -> Result<()> {
        let session = self.lock_session(upload).await?;
        self.discard(&upload.id, session).await
    }

    /// Forgets an upload whose session the caller holds: its bytes first,
    /// so that a failure leaves a row to try again with, never bytes no row
    /// leads to.
    async fn discard(&self, id: &str, mut session: SessionGuard) -> Result<()> {
        drop(self.sessions.writes(id).write_owned().await);
        self.blobs.delete_upload(id).await?;
        self.metadata.delete_upload(id).await?;
        *session = Session::Closed;
        self.sessions.remove(id);
        Ok(())
    }

    /// Removes uploads nobody touched since `before` (milliseconds), except
    /// those a request is using right now, and whatever storage holds of
    /// uploads that no longer exist. Returns how many uploads were removed.
    pub async fn remove_stale(&self, before: i64) -> Result<usize> {
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
        // An upload's row is made before anything is stored for it and
        // deleted after its bytes: stored bytes without a row are left
        // over (a replica killed between the two, a part written while the
        // upload was cancelled).
        for id in self.blobs.list_upload_ids().await? {
            if !self.metadata.upload_exists(&id).await? {
                self.blobs.delete_upload(&id).await?;
                removed += 1;
            }
        }
        Ok(removed)
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
        uploads: Uploads,
        metadata: Arc<dyn MetadataStore>,
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
        let metadata: Arc<dyn MetadataStore> = Arc::new(metadata);
        Fixture {
            uploads: Uploads::new(metadata.clone(), blobs.clone()),
            metadata,
            blobs,
            repo: "proj/app".parse().unwrap(),
            _dir: dir,
        }
    }

    impl Fixture {
        /// A new upload that has received `first` in one chunk.
        async fn upload_holding(&self, first: &'static [u8]) -> Upload {
            let upload = self
                .uploads
                .start(&self.repo, DigestAlgorithm::Sha256)
                .await
                .unwrap();
            let size = self
                .uploads
                .append(&upload, None, body(first))
                .await
                .unwrap();
            assert_eq!(size, first.len() as u64);
            upload
        }

        /// The blob's bytes in `range`, as storage gives them.
        /// Finishes `upload` with `last` as its final chunk, and checks that
        /// the blob stored is `whole`.
        async fn finish_as(&self, upload: &Upload, last: &'static [u8], whole: &[u8]) {
            let digest = DigestAlgorithm::Sha256.digest_of(whole);
            let size = self
                .uploads
                .finish(upload, &digest, None, body(last))
                .await
                .unwrap();
            assert_eq!(size, whole.len() as u64);
            assert_eq!(self.stored(&digest, 0..size).await, whole);
        }

        async fn stored(&self, digest: &Digest, range: std::ops::Range<u64>) -> Vec<u8> {
            let chunks: Vec<Bytes> = self
                .blobs
                .read_blob(digest, range, None)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            chunks.concat()
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
            f.uploads.append(&upload, None, stalled),
        )
        .await;
        assert!(dropped.is_err(), "the stalled request must time out");
        assert_eq!(f.uploads.size(&upload).await.unwrap(), 4);
        f.finish_as(&upload, b"cccc", b"aaaacccc").await;
    }

    /// A request dropped while its writes run: its chunk was never
    /// recorded, so the upload is where it was; the next request waits for
    /// those writes, and what they stored does not count.
    #[tokio::test]
    async fn writes_left_by_a_dropped_request_do_not_count() {
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
            _ = f.uploads.append(&upload, None, stalled) => {
                panic!("a request whose body never ends cannot finish")
            }
            _ = asked_for_more => {}
        }

        let upload = f.uploads.find(&f.repo, &upload.id).await.unwrap();
        assert_eq!(f.uploads.size(&upload).await.unwrap(), 4);
        let rest = Bytes::copy_from_slice(&content[4..]);
        let digest = DigestAlgorithm::Sha256.digest_of(&content);
        f.uploads
            .finish(
                &upload,
                &digest,
                Some(ChunkRange {
                    start: 4,
                    end: content.len() as u64 - 1,
                }),
                futures::stream::iter([Ok::<_, std::io::Error>(rest)]),
            )
            .await
            .unwrap();
        let stored = f.stored(&digest, 0..content.len() as u64).await;
        assert!(stored == content, "stored content differs");
    }

    /// Bytes that reach the upload behind the registry's back while a
    /// request streams into it (another process on the same storage) would
    /// sit inside the part: the chunk is refused, and the upload goes on
    /// from where it was, the stray bytes left out.
    #[tokio::test]
    async fn a_foreign_write_stops_the_chunk() {
        let f = fixture().await;
        let upload = f.upload_holding(b"aaaa").await;
        let file = f
            ._dir
            .path()
            .join("storage")
            .join(crate::storage::paths::upload(&upload.id));
        // Half the chunk is in, then the foreign bytes land, then the rest.
        let foreign = futures::stream::once(async move {
            let mut late = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .unwrap();
            std::io::Write::write_all(&mut late, b"zz").unwrap();
            Ok::<_, std::io::Error>(Bytes::from_static(b"cc"))
        });
        let final_chunk = body(b"cc").chain(foreign).boxed();
        let digest = DigestAlgorithm::Sha256.digest_of(b"aaaacccc");
        let refused = f.uploads.finish(&upload, &digest, None, final_chunk).await;
        assert!(
            matches!(refused, Err(RegistryError::BlobUploadInvalid(_))),
            "{refused:?}"
        );
        assert_eq!(f.blobs.blob_size(&digest).await.unwrap(), None);
        assert_eq!(f.uploads.size(&upload).await.unwrap(), 4);
        f.finish_as(&upload, b"cccc", b"aaaacccc").await;
        assert_eq!(f.blobs.blob_size(&digest).await.unwrap(), Some(8));
    }

    /// Another process (a replica) holding the same upload: chunks that
    /// alternate between the two continue each other's hash from the row,
    /// and a chunk whose part the other recorded first is refused with
    /// where the upload is.
    #[tokio::test]
    async fn two_services_continue_each_others_upload() {
        let f = fixture().await;
        let other = Uploads::new(f.metadata.clone(), f.blobs.clone());
        let upload = f.upload_holding(b"aaaa").await;
        let row = other.find(&f.repo, &upload.id).await.unwrap();
        assert_eq!(row.size, 4);
        assert_eq!(other.append(&row, None, body(b"bb")).await.unwrap(), 6);
        // The first still has its session at 4 bytes; the row says 6.
        let row = f.uploads.find(&f.repo, &upload.id).await.unwrap();
        assert_eq!(f.uploads.size(&row).await.unwrap(), 6);
        assert_eq!(f.uploads.append(&row, None, body(b"cc")).await.unwrap(), 8);
        // A stale view (read before the last chunk) loses the race.
        let stale = other.find(&f.repo, &upload.id).await.unwrap();
        assert_eq!(other.append(&stale, None, body(b"dd")).await.unwrap(), 10);
        let refused = f.uploads.append(&row, None, body(b"ee")).await;
        assert!(
            matches!(
                refused,
                Err(RegistryError::UploadRangeInvalid { offset: 10, .. })
            ),
            "{refused:?}"
        );
        let row = f.uploads.find(&f.repo, &upload.id).await.unwrap();
        f.finish_as(&row, b"ff", b"aaaabbccddff").await;
    }

    /// Abandoned uploads (a PATCH, then nothing) do not pile up in memory;
    /// one whose state was dropped resumes from its row and finishes.
    #[tokio::test]
    async fn idle_upload_state_is_bounded_and_rebuilt_when_needed() {
        let f = fixture().await;
        let first = f.upload_holding(b"first-").await;
        for _ in 0..MAX_UPLOAD_SLOTS + 200 {
            f.upload_holding(b"abandoned").await;
        }
        let held = f.uploads.in_progress();
        assert!(held <= MAX_UPLOAD_SLOTS, "{held} upload sessions held");
        // As each request does, the upload is read again from its row.
        let first = f.uploads.find(&f.repo, &first.id).await.unwrap();
        f.finish_as(&first, b"last", b"first-last").await;
    }

    /// Content fetched from elsewhere is kept only under its true digest.
    #[tokio::test]
    async fn a_verified_stream_becomes_a_blob_and_a_wrong_one_leaves_nothing() {
        let f = fixture().await;
        let digest = DigestAlgorithm::Sha256.digest_of(b"layer");
        let size = f
            .uploads
            .store_verified(&f.repo, &digest, body(b"layer"))
            .await
            .unwrap();
        assert_eq!(size, 5);
        assert_eq!(f.blobs.blob_size(&digest).await.unwrap(), Some(5));

        let claimed = DigestAlgorithm::Sha256.digest_of(b"something else");
        let refused = f
            .uploads
            .store_verified(&f.repo, &claimed, body(b"tampered"))
            .await;
        assert!(
            matches!(refused, Err(RegistryError::DigestInvalid(_))),
            "{refused:?}"
        );
        assert_eq!(f.blobs.blob_size(&claimed).await.unwrap(), None);
        assert_eq!(f.uploads.in_progress(), 0);
    }
}
