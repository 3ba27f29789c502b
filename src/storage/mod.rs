//! Blob storage: the seam between berth and wherever the bytes live.
//!
//! [`BlobStore`] is the one interface; nothing above it knows the backend
//! ([`settings`] chooses it: the filesystem by default, or S3, Azure Blob,
//! GCS or Swift through OpenDAL). What it offers:
//!
//! - **Blobs**, content-addressed and immutable: their size, ranges of their
//!   bytes, deletion, and (where the store can sign one) a short-lived URL
//!   that reads one without credentials ([`BlobStore::presign_read`]).
//! - **Uploads in progress as numbered parts**: [`BlobStore::write_part`]
//!   stores part `n` and gives back an [`UploadPart`] to record; the parts
//!   recorded are then committed into a blob ([`BlobStore::commit_upload`])
//!   or cancelled ([`BlobStore::delete_upload`]). Only recorded parts count:
//!   which ones those are is the metadata upload row's to say, so that any
//!   replica can take an upload up where another left it. A part written but
//!   never recorded (its writer killed, or beaten to it) is ignored and
//!   removed with the upload.
//!
//! Backends (`filesystem`, `object`) keep their own layout (`paths`). The
//! filesystem appends every part to one file, written directly, and reads
//! blobs by mapping them (`mapped`), so that a pull can be sent with
//! `sendfile`; a committed upload is made durable (`fsync`) before it gets
//! the blob's name, so a blob path never holds partial data. Object stores
//! keep each part as an object and compose them into the blob at commit.
//! Which repositories may see a blob is decided by the metadata store, not
//! here.

mod filesystem;
mod mapped;
mod object;
pub mod paths;
pub mod settings;

pub use mapped::{BlobStream, FileSpan, WindowIndex, map_written_range, window_len};

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opendal::ErrorKind;

use crate::oci::digest::Digest;
use settings::StorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Store(#[from] opendal::Error),
    /// An upload's stored bytes changed behind the writer's back (another
    /// process wrote to the same file): the part is not what was received.
    #[error("storage: {0}")]
    UploadChanged(String),
}

impl StorageError {
    fn store(&self) -> Option<&opendal::Error> {
        match self {
            StorageError::Store(e) => Some(e),
            StorageError::UploadChanged(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.store()
            .is_some_and(|e| e.kind() == ErrorKind::NotFound)
    }

    /// The store refused a write for lack of space (a full disk or an
    /// exhausted quota): the same write may succeed once space is freed.
    pub fn is_out_of_space(&self) -> bool {
        let Some(store) = self.store() else {
            return false;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(store);
        while let Some(error) = cause {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(crate::files::is_out_of_space)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }

    /// The store could not be reached or kept refusing (throttling answers,
    /// 5xx, connections that fail), even after the retries: the request may
    /// succeed later, and nothing is wrong with it.
    pub fn is_unavailable(&self) -> bool {
        self.store().is_some_and(|e| {
            e.kind() == ErrorKind::RateLimited || e.is_temporary() || e.is_persistent()
        })
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A part of an upload as stored: what the metadata records for it, and
/// what [`BlobStore::commit_upload`] is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    /// 1, 2, …: parts are committed in this order.
    pub number: u32,
    /// Tells this write of the part from any other (on the filesystem,
    /// whose parts are ranges of one file: where it starts).
    pub token: String,
    /// Bytes in the part.
    pub size: u64,
}

/// A token a part writer keeps, and hands to every write it starts.
/// A write on the filesystem runs on a blocking thread and finishes even if
/// the request that started it is dropped; the token lives until it does,
/// so whoever takes the matching write lock knows no write is still running.
pub type WriteFence = Arc<tokio::sync::OwnedRwLockReadGuard<()>>;

/// Told, each time more of a part reaches its local file, the file and
/// where it now ends: bytes below that end are written, once, and stay
/// (see [`PartWriter::observe_written`]).
pub type WrittenObserver = Arc<dyn Fn(&Arc<std::fs::File>, u64) + Send + Sync>;

/// The blob store: the one interface to blob storage (see the module
/// documentation). Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Filesystem(Arc<filesystem::Filesystem>),
    Object(Arc<object::ObjectStore>),
}

/// A part being written: [`PartWriter::close`] gives the [`UploadPart`] to
/// record, [`PartWriter::abort`] leaves nothing that counts.
pub struct PartWriter {
    inner: PartWriterInner,
}

enum PartWriterInner {
    Local(filesystem::LocalPartWriter),
    Object(object::ObjectPartWriter),
}

impl PartWriter {
    /// Keeps `fence` until this writer and every write it starts are done.
    pub fn fenced(mut self, fence: WriteFence) -> Self {
        if let PartWriterInner::Local(writer) = &mut self.inner {
            writer.fence(fence);
        }
        // A part on an object store is an object of its own, under a token
        // of its own: a late write cannot touch the parts that count.
        self
    }

    /// Where the part is a local file that it starts (the first part of a
    /// new upload on the filesystem), lets `observer` follow the writes to
    /// it, so that the bytes can be read from the file while the part is
    /// written; `false` (and nothing is observed) elsewhere. The file is
    /// never truncated below what was told: it becomes the blob, or is
    /// unlinked.
    pub fn observe_written(&mut self, observer: WrittenObserver) -> bool {
        match &mut self.inner {
            PartWriterInner::Local(w) => w.observe_written(observer),
            PartWriterInner::Object(_) => false,
        }
    }

    pub async fn write(&mut self, bytes: Bytes) -> Result<()> {
        match &mut self.inner {
            PartWriterInner::Local(w) => w.write(bytes).await,
            PartWriterInner::Object(w) => w.write(bytes).await,
        }
    }

    /// Lets go of buffered memory while the writer waits for more, where
    /// the backend can: what is buffered is written now. Writes may follow
    /// as before. (An object-store part keeps its buffer: writing it out
    /// would make a part smaller than the store accepts.)
    pub async fn release_buffers(&mut self) -> Result<()> {
        match &mut self.inner {
            PartWriterInner::Local(w) => w.release_buffers().await,
            PartWriterInner::Object(_) => Ok(()),
        }
    }

    /// Ends the part: everything written is stored when this returns (on an
    /// object store also durable; on the filesystem durability comes with
    /// [`BlobStore::commit_upload`]).
    pub async fn close(self) -> Result<UploadPart> {
        match self.inner {
            PartWriterInner::Local(w) => w.close().await,
            PartWriterInner::Object(w) => w.close().await,
        }
    }

    /// Gives the part up; whatever it stored is ignored.
    pub async fn abort(self) {
        match self.inner {
            PartWriterInner::Local(w) => w.abort().await,
            PartWriterInner::Object(w) => w.abort().await,
        }
    }
}

impl BlobStore {
    /// The default store: a directory on the local filesystem.
    pub fn filesystem(root: &Path) -> Result<Self> {
        Ok(BlobStore {
            backend: Backend::Filesystem(Arc::new(filesystem::Filesystem::open(root)?)),
        })
    }

    /// The store `config` chooses (validated by
    /// [`StorageConfig::validate`]); `default_root` is the filesystem's
    /// root when the configuration names none. The filesystem's root is
    /// created if missing; object stores are not contacted yet.
    pub fn open(config: &StorageConfig, default_root: &Path) -> Result<Self> {
        let object = match config.backend() {
            settings::Backend::Filesystem => {
                let root = config
                    .filesystem
                    .root_directory
                    .clone()
                    .unwrap_or_else(|| default_root.to_owned());
                std::fs::create_dir_all(&root).map_err(filesystem::io_error)?;
                return Self::filesystem(&root);
            }
            settings::Backend::S3 => config
                .s3
                .as_ref()
                .map(|s3| object::ObjectStore::s3(s3, &config.timeouts)),
            settings::Backend::Azure => config
                .azure
                .as_ref()
                .map(|azure| object::ObjectStore::azure(azure, &config.timeouts)),
            settings::Backend::Gcs => config
                .gcs
                .as_ref()
                .map(|gcs| object::ObjectStore::gcs(gcs, &config.timeouts)),
            settings::Backend::Swift => config
                .swift
                .as_ref()
                .map(|swift| object::ObjectStore::swift(swift, &config.timeouts)),
        };
        let store = object.ok_or_else(|| {
            StorageError::from(opendal::Error::new(
                ErrorKind::ConfigInvalid,
                "the storage configuration names no backend",
            ))
        })??;
        Ok(BlobStore {
            backend: Backend::Object(Arc::new(store)),
        })
    }

    /// What and where the store is, for the log.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Filesystem(fs) => format!("filesystem at {}", fs.root().display()),
            Backend::Object(store) => store.description().to_owned(),
        }
    }

    /// One cheap request, for readiness checks.
    pub async fn check(&self) -> Result<()> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.check().await,
            Backend::Object(store) => store.check().await,
        }
    }

    /// Whether uploads are written to local files (the filesystem), which
    /// a caller may follow as they grow ([`PartWriter::observe_written`]).
    pub fn writes_local_files(&self) -> bool {
        matches!(self.backend, Backend::Filesystem(_))
    }

    /// Size of a stored blob, or `None` if it is not stored.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.blob_size(digest).await,
            Backend::Object(store) => store.blob_size(digest).await,
        }
    }

    /// Streams `range` of a blob without holding it in memory. On the
    /// filesystem, a reader whose writer can send bytes from the file passes
    /// its `index`; the bytes it gets are still the blob's.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: Range<u64>,
        index: Option<Arc<WindowIndex>>,
    ) -> Result<BlobStream> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.read_blob(digest, range, index).await,
            Backend::Object(store) => Ok(BlobStream::Store(store.read_blob(digest, range).await?)),
        }
    }

    pub async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.delete_blob(digest).await,
            Backend::Object(store) => store.delete_blob(digest).await,
        }
    }

    /// Deletes many blobs with a few requests where the store has a batch
    /// delete (S3's takes 1,000 keys a request): `None` where it has not
    /// (the filesystem), and the caller deletes them one by one. `Ok` means
    /// every one is gone, a missing one included; after an error some may
    /// remain.
    pub async fn delete_blobs_in_batches(&self, digests: &[Digest]) -> Option<Result<()>> {
        match &self.backend {
            Backend::Object(store) if store.deletes_in_batches() => {
                Some(store.delete_blobs(digests).await)
            }
            _ => None,
        }
    }

    /// A URL that reads the blob, without credentials, for `ttl`; `None`
    /// where the store cannot sign one (the filesystem, Azure without a SAS
    /// token).
    pub async fn presign_read(&self, digest: &Digest, ttl: Duration) -> Result<Option<url::Url>> {
        match &self.backend {
            Backend::Filesystem(_) => Ok(None),
            Backend::Object(store) => store.presign_read(digest, ttl).await,
        }
    }

    /// Starts writing part `number` of an upload. Nothing a part writer
    /// stores touches another part's bytes, recorded or not.
    pub async fn write_part(&self, upload_id: &str, number: u32) -> Result<PartWriter> {
        let inner = match &self.backend {
            Backend::Filesystem(fs) => {
                PartWriterInner::Local(fs.write_part(upload_id, number).await?)
            }
            Backend::Object(store) => {
                PartWriterInner::Object(store.write_part(upload_id, number).await?)
            }
        };
        Ok(PartWriter { inner })
    }

    /// The bytes of an upload's `parts`, in order: to hash them again, never
    /// on the normal path.
    pub async fn read_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.read_upload(upload_id, parts).await,
            Backend::Object(store) => store.read_upload(upload_id, parts).await,
        }
    }

    /// Turns an upload's `parts`, verified to have `digest`, into that blob,
    /// and removes the upload.
    ///
    /// If the blob is already stored (another client pushed the same
    /// content, possibly at the same moment) the upload is discarded
    /// instead: the bytes are identical by construction.
    pub async fn commit_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<()> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.commit_upload(upload_id, parts, digest).await,
            Backend::Object(store) => store.commit_upload(upload_id, parts, digest).await,
        }
    }

    /// Removes everything an upload stored, recorded or not.
    pub async fn delete_upload(&self, upload_id: &str) -> Result<()> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.delete_upload(upload_id).await,
            Backend::Object(store) => store.delete_upload(upload_id).await,
        }
    }

    /// Ids of every upload with something stored, for reconciling with the
    /// metadata store.
    pub async fn list_upload_ids(&self) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Filesystem(fs) => fs.list_upload_ids().await,
            Backend::Object(store) => store.list_upload_ids().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::DigestAlgorithm;
    use filesystem::LOCAL_WRITE_BUFFER;
    use futures::TryStreamExt;

    async fn collect(store: &BlobStore, d: &Digest, range: Range<u64>) -> Vec<u8> {
        let stream = store.read_blob(d, range, None).await.unwrap();
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        chunks.concat()
    }

    /// A store on the filesystem, in a new temporary directory.
    fn filesystem_store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::filesystem(dir.path()).unwrap();
        (dir, store)
    }

    /// `len` bytes of a pattern that repeats every `period` bytes.
    fn patterned(len: usize, period: usize) -> Vec<u8> {
        (0..len).map(|i| (i % period) as u8).collect()
    }

    /// Committing `parts` of upload `id` makes the blob of `data`, all of it.
    async fn assert_commits_to(store: &BlobStore, id: &str, parts: &[UploadPart], data: &[u8]) {
        let d = DigestAlgorithm::Sha256.digest_of(data);
        store.commit_upload(id, parts, &d).await.unwrap();
        assert!(collect(store, &d, 0..data.len() as u64).await == data);
    }

    /// Writes `pieces` as part `number` of `id`.
    async fn part(store: &BlobStore, id: &str, number: u32, pieces: &[&[u8]]) -> UploadPart {
        let mut w = store.write_part(id, number).await.unwrap();
        for piece in pieces {
            w.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        w.close().await.unwrap()
    }

    #[tokio::test]
    async fn upload_parts_commit_read() {
        let (_dir, store) = filesystem_store();
        let first = part(&store, "u1", 1, &[b"hello "]).await;
        let second = part(&store, "u1", 2, &[b"world"]).await;
        assert_eq!((first.size, second.size), (6, 5));

        let d = DigestAlgorithm::Sha256.digest_of(b"hello world");
        assert_eq!(store.blob_size(&d).await.unwrap(), None);
        store
            .commit_upload("u1", &[first, second], &d)
            .await
            .unwrap();
        assert_eq!(store.blob_size(&d).await.unwrap(), Some(11));
        assert_eq!(collect(&store, &d, 0..11).await, b"hello world");
        assert_eq!(collect(&store, &d, 6..11).await, b"world");
        assert!(store.list_upload_ids().await.unwrap().is_empty());
    }

    /// A followed part tells where its file ends after each write, in
    /// order, up to its whole length; what the file holds below each end
    /// is the part's bytes, and stays so once the part is the blob. Only a
    /// part that starts its file can be followed.
    #[tokio::test]
    async fn a_followed_part_tells_each_end_its_file_reaches() {
        use std::os::unix::fs::FileExt;
        let (_dir, store) = filesystem_store();
        let data = patterned(LOCAL_WRITE_BUFFER * 3 + 4321, 251);
        type Told = Vec<(Arc<std::fs::File>, u64)>;
        let told: Arc<std::sync::Mutex<Told>> = Arc::default();
        let mut w = store.write_part("f", 1).await.unwrap();
        let record = told.clone();
        let observer: WrittenObserver = Arc::new(move |file: &Arc<std::fs::File>, end| {
            let mut held = vec![0; end as usize];
            file.read_exact_at(&mut held, 0).unwrap();
            record.lock().unwrap().push((file.clone(), end));
            assert!(
                held[..] == patterned(end as usize, 251)[..],
                "bytes below {end}"
            );
        });
        assert!(w.observe_written(observer));
        for piece in data.chunks(300_000) {
            w.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        let first = w.close().await.unwrap();
        let ends: Vec<u64> = told.lock().unwrap().iter().map(|(_, end)| *end).collect();
        assert!(ends.len() >= 4, "one end per buffer written: {ends:?}");
        assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
        assert_eq!(ends.last(), Some(&(data.len() as u64)));

        // A second part starts inside the file: not followed.
        let mut second = store.write_part("f", 2).await.unwrap();
        assert!(!second.observe_written(Arc::new(|_: &Arc<std::fs::File>, _| {})));
        second.abort().await;

        // The file told is the blob's once committed.
        assert_commits_to(&store, "f", &[first], &data).await;
        let (file, _) = told.lock().unwrap().last().cloned().unwrap();
        let mut held = vec![0; data.len()];
        file.read_exact_at(&mut held, 0).unwrap();
        assert!(held == data);
    }

    /// Writes of every size relative to the writer's buffers (smaller,
    /// straddling a buffer's end, several buffers at once), by several
    /// writers in turn, as a chunked upload opens one per chunk.
    #[tokio::test]
    async fn local_writes_keep_every_byte_in_order() {
        let (_dir, store) = filesystem_store();
        let data = patterned(LOCAL_WRITE_BUFFER * 5 + 777, 253);
        let writers: [&[usize]; 3] = [
            &[1, LOCAL_WRITE_BUFFER - 2, 3],
            &[LOCAL_WRITE_BUFFER, LOCAL_WRITE_BUFFER * 2 + 5],
            &[LOCAL_WRITE_BUFFER + 1],
        ];
        let mut rest = &data[..];
        let mut parts = Vec::new();
        for (number, sizes) in (1..).zip(writers) {
            let mut w = store.write_part("u", number).await.unwrap();
            for &size in sizes {
                let (now, later) = rest.split_at(size);
                w.write(Bytes::copy_from_slice(now)).await.unwrap();
                rest = later;
            }
            parts.push(w.close().await.unwrap());
        }
        parts.push(part(&store, "u", 4, &[rest]).await);
        assert_commits_to(&store, "u", &parts, &data).await;
    }

    /// A writer that let go of its buffers while its client was quiet has
    /// written what it held, and goes on writing in order.
    #[tokio::test]
    async fn released_buffers_lose_no_byte() {
        let (dir, store) = filesystem_store();
        let data = patterned(LOCAL_WRITE_BUFFER * 2 + 99, 241);
        let file = dir.path().join(paths::upload("u"));
        let mut w = store.write_part("u", 1).await.unwrap();
        let mut written = 0;
        for piece in [10, LOCAL_WRITE_BUFFER + 7, 0, LOCAL_WRITE_BUFFER, 82] {
            w.write(Bytes::copy_from_slice(&data[written..written + piece]))
                .await
                .unwrap();
            written += piece;
            w.release_buffers().await.unwrap();
            assert_eq!(std::fs::metadata(&file).unwrap().len(), written as u64);
        }
        let only = w.close().await.unwrap();
        assert_commits_to(&store, "u", &[only], &data).await;
    }

    /// Bytes of parts never recorded (written, then their writer died or
    /// lost the race) are left out of the blob, wherever they lie.
    #[tokio::test]
    async fn unrecorded_parts_are_left_out() {
        let (_dir, store) = filesystem_store();
        let first = part(&store, "u", 1, &[b"aaaa"]).await;
        let _lost = part(&store, "u", 2, &[b"zzzzzz"]).await;
        let second = part(&store, "u", 2, &[b"bb"]).await;
        let _lost_again = part(&store, "u", 3, &[b"yy"]).await;
        let parts = [first, second];
        let d = DigestAlgorithm::Sha256.digest_of(b"aaaabb");
        let read: Vec<Bytes> = store
            .read_upload("u", &parts)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(read.concat(), b"aaaabb");
        store.commit_upload("u", &parts, &d).await.unwrap();
        assert_eq!(collect(&store, &d, 0..6).await, b"aaaabb");
        assert!(
            store.list_upload_ids().await.unwrap().is_empty(),
            "the upload's file is gone"
        );

        // Only a tail left over: the file is cut and renamed.
        let first = part(&store, "v", 1, &[b"cccc"]).await;
        let _lost = part(&store, "v", 2, &[b"xx"]).await;
        let d = DigestAlgorithm::Sha256.digest_of(b"cccc");
        store.commit_upload("v", &[first], &d).await.unwrap();
        assert_eq!(collect(&store, &d, 0..4).await, b"cccc");
        assert_eq!(store.blob_size(&d).await.unwrap(), Some(4));
    }

    #[tokio::test]
    async fn committing_existing_blob_discards_upload() {
        let (_dir, store) = filesystem_store();
        let d = DigestAlgorithm::Sha256.digest_of(b"same");
        let a = part(&store, "a", 1, &[b"same"]).await;
        let b = part(&store, "b", 1, &[b"same"]).await;
        assert_eq!(store.list_upload_ids().await.unwrap().len(), 2);
        store.commit_upload("a", &[a], &d).await.unwrap();
        store.commit_upload("b", &[b], &d).await.unwrap();
        assert!(store.list_upload_ids().await.unwrap().is_empty());
        assert_eq!(store.blob_size(&d).await.unwrap(), Some(4));
    }

    /// GCS and Swift are built and configured (not run against a live
    /// service: nothing here is contacted).
    #[test]
    fn gcs_and_swift_stores_are_built_from_their_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let keyfile = dir.path().join("key.json");
        std::fs::write(
            &keyfile,
            r#"{"type": "service_account", "private_key": "k", "client_email": "a@b"}"#,
        )
        .unwrap();
        let gcs = StorageConfig {
            gcs: Some(settings::GcsStorage {
                bucket: "images".into(),
                keyfile: Some(keyfile),
                root_directory: Some("berth".into()),
            }),
            ..StorageConfig::default()
        };
        gcs.validate().unwrap();
        let store = BlobStore::open(&gcs, dir.path()).unwrap();
        assert_eq!(store.describe(), "gcs bucket images");
        let swift = StorageConfig {
            swift: Some(settings::SwiftStorage {
                storage_url: "https://swift.example.com/v1/AUTH_a".into(),
                auth_token: "token".into(),
                container: "images".into(),
                temp_url_key: Some("key".into()),
                root_directory: None,
            }),
            ..StorageConfig::default()
        };
        swift.validate().unwrap();
        let store = BlobStore::open(&swift, dir.path()).unwrap();
        assert!(store.describe().starts_with("swift container images"));
    }

    #[tokio::test]
    async fn empty_upload_commits_to_empty_blob() {
        let (_dir, store) = filesystem_store();
        let d = DigestAlgorithm::Sha256.digest_of(b"");
        store.commit_upload("never-written", &[], &d).await.unwrap();
        assert_eq!(store.blob_size(&d).await.unwrap(), Some(0));
        assert_eq!(
            store
                .presign_read(&d, Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
    }
}
