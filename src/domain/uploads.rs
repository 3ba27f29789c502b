//! Upload sessions: blobs pushed in one or more requests, hashed as the
//! bytes stream in.
//!
//! The hash state of each upload is kept in memory between requests, so
//! verifying a finished upload never re-reads it; only after a restart (or
//! on another replica) is the state rebuilt from what storage holds.
//! Requests to one upload are serialised by its session lock, and writes a
//! dropped request left running are fenced off before its size is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::Mutex as AsyncMutex;

use crate::crash_points;
use crate::error::{RegistryError, Result};
use crate::metadata::{MetadataStore, Upload, now};
use crate::oci::digest::{Digest, DigestAlgorithm, Hasher};
use crate::oci::names::RepositoryName;
use crate::storage::{BlobStore, UploadWriter};

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
        if slots.len() >= MAX_UPLOAD_SLOTS && !slots.contains_key(id) {
            // Slots nobody holds (no request, no write in flight) are only
            // a cache of hash state, rebuilt from storage when needed:
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

impl Uploads {
    pub fn new(metadata: Arc<dyn MetadataStore>, blobs: BlobStore) -> Self {
        Uploads {
            metadata,
            blobs,
            sessions: UploadSessions::default(),
        }
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
        let upload = self.start(repo, expected.algorithm()).await?;
        let stored = self.finish(&upload, expected, None, body).await;
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

    /// Bytes an upload has received.
    pub async fn size(&self, upload: &Upload) -> Result<u64> {
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
    pub async fn cancel(&self, upload: &Upload) -> Result<()> {
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
            uploads: Uploads::new(Arc::new(metadata), blobs.clone()),
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

        let digest = DigestAlgorithm::Sha256.digest_of(b"aaaacccc");
        let size = f
            .uploads
            .finish(&upload, &digest, None, body(b"cccc"))
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
            _ = f.uploads.append(&upload, None, stalled) => {
                panic!("a request whose body never ends cannot finish")
            }
            _ = asked_for_more => {}
        }

        let reported = f.uploads.size(&upload).await.unwrap();
        assert_eq!(
            reported,
            f.blobs.upload_size(&upload.id).await.unwrap(),
            "a write landed after the upload's size was reported"
        );
        let rest = Bytes::copy_from_slice(&content[reported as usize..]);
        let digest = DigestAlgorithm::Sha256.digest_of(&content);
        f.uploads
            .finish(
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
        let refused = f.uploads.finish(&upload, &digest, None, final_chunk).await;
        assert!(
            matches!(refused, Err(RegistryError::BlobUploadInvalid(_))),
            "{refused:?}"
        );
        assert_eq!(f.blobs.blob_size(&digest).await.unwrap(), None);
        // The session follows what storage holds from then on.
        assert_eq!(f.uploads.size(&upload).await.unwrap(), 10);
    }

    /// Abandoned uploads (a PATCH, then nothing) do not pile up in memory;
    /// one whose state was dropped is rebuilt from storage and finishes.
    #[tokio::test]
    async fn idle_upload_state_is_bounded_and_rebuilt_when_needed() {
        let f = fixture().await;
        let first = f.upload_holding(b"first-").await;
        for _ in 0..MAX_UPLOAD_SLOTS + 200 {
            f.upload_holding(b"abandoned").await;
        }
        let held = f.uploads.in_progress();
        assert!(held <= MAX_UPLOAD_SLOTS, "{held} upload sessions held");
        let digest = DigestAlgorithm::Sha256.digest_of(b"first-last");
        let size = f
            .uploads
            .finish(&first, &digest, None, body(b"last"))
            .await
            .unwrap();
        assert_eq!(size, 10);
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
