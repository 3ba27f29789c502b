//! The filesystem backend: blobs are files under the root directory, read
//! by memory mapping (`mapped`), and an upload is one file that each part
//! appends to, written directly (not through OpenDAL, whose writer `fsync`s
//! on every close) and made durable once, when committed.
//!
//! Nothing is ever cut from an upload's file or written over: a part is
//! appended, and known by where it starts (its token) and its length. A
//! part that was never recorded (a request dropped, a process killed, two
//! processes writing the same upload on a shared filesystem) leaves bytes
//! that no recorded part covers; the next part goes after them, and the
//! commit leaves them out. The common case, parts back to back from the
//! start, commits by renaming the file; otherwise the recorded ranges are
//! copied into a new file first.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};

use super::mapped::{self, BlobStream, WindowIndex};
use super::{Result, StorageError, UploadPart, WriteFence, WrittenObserver, paths};
use crate::crash_points;
use crate::oci::digest::Digest;

/// Size of the pieces an upload is read back in (to hash it again).
const READ_CHUNK: usize = 4 << 20;

#[derive(Debug)]
pub(super) struct Filesystem {
    root: PathBuf,
    /// For listing, reading uploads back and small writes.
    op: Operator,
}

impl Filesystem {
    pub(super) fn open(root: &Path) -> Result<Self> {
        let builder = opendal::services::Fs::default().root(&root.to_string_lossy());
        Ok(Filesystem {
            root: root.to_owned(),
            op: Operator::new(builder)?,
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) async fn check(&self) -> Result<()> {
        Ok(self.op.check().await?)
    }

    pub(super) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        size_of(&self.root.join(paths::blob(digest))).await
    }

    pub(super) async fn read_blob(
        &self,
        digest: &Digest,
        range: Range<u64>,
        index: Option<Arc<WindowIndex>>,
    ) -> Result<BlobStream> {
        Ok(BlobStream::Mapped(
            mapped::MappedRange::open(self.root.join(paths::blob(digest)), range, index).await?,
        ))
    }

    pub(super) async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        Ok(self.op.delete(&paths::blob(digest)).await?)
    }

    /// Opens the upload's file to append part `number` at its end.
    pub(super) async fn write_part(&self, upload_id: &str, number: u32) -> Result<LocalPartWriter> {
        let path = self.root.join(paths::upload(upload_id));
        let (appender, offset) = LocalAppender::open(&path).await.map_err(io_error)?;
        Ok(LocalPartWriter {
            appender,
            path,
            number,
            offset,
            written: 0,
        })
    }

    /// The recorded parts' bytes, in order, to hash them again.
    pub(super) async fn read_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        let reader = self
            .op
            .reader_with(&paths::upload(upload_id))
            .chunk(READ_CHUNK)
            .await?;
        let mut streams = Vec::with_capacity(parts.len());
        for range in ranges(parts)? {
            streams.push(reader.clone().into_bytes_stream(range).await?);
        }
        Ok(futures::stream::iter(streams).flatten().boxed())
    }

    /// Makes the recorded parts' bytes durable, then gives them the blob's
    /// name: the file itself when they are all it holds from its start,
    /// else a copy of them.
    pub(super) async fn commit_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<()> {
        let upload_path = self.root.join(paths::upload(upload_id));
        let blob_path = self.root.join(paths::blob(digest));
        if size_of(&blob_path).await?.is_some() {
            return self.delete_upload(upload_id).await;
        }
        let ranges = ranges(parts)?;
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let held = size_of(&upload_path).await?;
        if size == 0 && held.is_none() {
            // An empty upload that never received a write has no file.
            self.op.write(&paths::blob(digest), Bytes::new()).await?;
            return Ok(());
        }
        let held = held.unwrap_or(0);
        if let Some(end) = ranges.iter().map(|r| r.end).max()
            && end > held
        {
            return Err(StorageError::UploadChanged(format!(
                "the upload's file holds {held} bytes where its parts end at {end}"
            )));
        }
        let back_to_back = ranges
            .iter()
            .try_fold(0, |at, r| (r.start == at).then_some(r.end))
            .is_some();
        // Data first, then the name: a blob path must never lead to bytes
        // that a power cut could still take away.
        let durable = if back_to_back {
            let path = upload_path.clone();
            blocking(move || {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                if held > size {
                    file.set_len(size)?;
                }
                file.sync_all()
            })
            .await?;
            upload_path
        } else {
            let compacted = self.root.join(paths::upload_compacted(upload_id));
            let (from, to) = (upload_path, compacted.clone());
            blocking(move || copy_ranges(&from, &to, &ranges)).await?;
            compacted
        };
        crash_points::reached(crash_points::BLOB_AFTER_FSYNC);
        let to = blob_path;
        blocking(move || {
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&durable, &to)?;
            match to.parent() {
                Some(dir) => std::fs::File::open(dir)?.sync_all(),
                None => Ok(()),
            }
        })
        .await?;
        crash_points::reached(crash_points::BLOB_AFTER_RENAME);
        if !back_to_back {
            self.delete_upload(upload_id).await?;
        }
        Ok(())
    }

    pub(super) async fn delete_upload(&self, upload_id: &str) -> Result<()> {
        self.op.delete(&paths::upload(upload_id)).await?;
        Ok(self.op.delete(&paths::upload_compacted(upload_id)).await?)
    }

    pub(super) async fn list_upload_ids(&self) -> Result<Vec<String>> {
        let entries = match self.op.lister(paths::UPLOADS).await {
            Ok(lister) => lister.try_collect::<Vec<_>>().await?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids: Vec<String> = entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| paths::upload_id_of(e.name()).to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// Where each part lies in the upload's file: from its token (the offset
/// it was appended at) for its size.
fn ranges(parts: &[UploadPart]) -> Result<Vec<Range<u64>>> {
    parts
        .iter()
        .map(|part| {
            let start: u64 = part.token.parse().map_err(|_| {
                StorageError::UploadChanged(format!(
                    "part {} is recorded as {:?}, which is no place in the upload's file",
                    part.number, part.token
                ))
            })?;
            Ok(start..start + part.size)
        })
        .collect()
}

/// Writes `ranges` of `from`, in order, to a new file `to`, made durable.
fn copy_ranges(from: &Path, to: &Path, ranges: &[Range<u64>]) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::File::create(to)?;
    for range in ranges {
        source.seek(SeekFrom::Start(range.start))?;
        let wanted = range.end - range.start;
        // A file-to-file copy: the kernel copies (copy_file_range).
        let copied = std::io::copy(&mut (&mut source).take(wanted), &mut target)?;
        if copied != wanted {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the upload's file ends inside a part ({copied} of {wanted} bytes)"),
            ));
        }
    }
    target.sync_all()
}

/// Size of a local file, or `None` if there is none.
async fn size_of(path: &Path) -> Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

pub(super) fn io_error(e: std::io::Error) -> StorageError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Unexpected
    };
    StorageError::from(opendal::Error::new(kind, "filesystem").set_source(e))
}

/// Runs file operations on a blocking thread.
async fn blocking(work: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io_error(std::io::Error::other(e)))?
        .map_err(io_error)
}

/// A part being appended to a local upload file.
pub(super) struct LocalPartWriter {
    appender: LocalAppender,
    path: PathBuf,
    number: u32,
    /// Where the file ended when the part was opened: where it starts.
    offset: u64,
    written: u64,
}

impl LocalPartWriter {
    pub(super) fn fence(&mut self, fence: WriteFence) {
        self.appender.fence = Some(fence);
    }

    /// See [`super::PartWriter::observe_written`]: only a part that starts
    /// its file can be read from it as the part's own bytes.
    pub(super) fn observe_written(&mut self, observer: WrittenObserver) -> bool {
        if self.offset != 0 || self.written != 0 {
            return false;
        }
        self.appender.observer = Some(observer);
        true
    }

    pub(super) async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.written += bytes.len() as u64;
        self.appender.write(&bytes).await.map_err(io_error)
    }

    pub(super) async fn release_buffers(&mut self) -> Result<()> {
        self.appender.release().await.map_err(io_error)
    }

    /// Everything written is in the file (not yet durable: that comes with
    /// the commit). The file must then end where this part does: if not,
    /// something else wrote to it meanwhile, and the part is refused.
    pub(super) async fn close(self) -> Result<UploadPart> {
        self.appender.close().await.map_err(io_error)?;
        let end = self.offset + self.written;
        let held = size_of(&self.path).await?.unwrap_or(0);
        if held != end {
            return Err(StorageError::UploadChanged(format!(
                "the upload's file holds {held} bytes where this part should end at {end}: \
                 something else wrote to it"
            )));
        }
        Ok(UploadPart {
            number: self.number,
            token: self.offset.to_string(),
            size: self.written,
        })
    }

    /// Waits for writes in flight; the bytes stay in the file, unrecorded,
    /// and the commit leaves them out.
    pub(super) async fn abort(self) {
        let _ = self.appender.close().await;
    }
}

/// Appends to a local upload file, asking the kernel to start writing each
/// piece to disk as soon as it is written: the disk then works while the
/// rest of the upload arrives, and the `fsync` at commit has little left.
///
/// Received bytes are copied once, into a buffer; a full buffer is written
/// to the file on a blocking thread while the next one fills. (tokio's
/// `File` would copy every byte a second time, into a buffer of its own.)
/// The request's buffers are not kept until written: that would make the
/// HTTP layer allocate fresh ones for every read, which costs more than the
/// copy.
struct LocalAppender {
    file: Arc<std::fs::File>,
    /// The buffer being filled.
    filling: Vec<u8>,
    /// The previous buffer, being written; it comes back empty for reuse.
    in_flight: Option<tokio::task::JoinHandle<std::io::Result<Vec<u8>>>>,
    /// Bytes written to the file and not yet handed to writeback.
    unflushed: u64,
    /// Where the file ends once every write started so far is done.
    queued_end: u64,
    fence: Option<WriteFence>,
    observer: Option<WrittenObserver>,
}

/// Writeback is started for every this many bytes.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Size of each of a local upload writer's two buffers. Every chunk of a
/// chunked upload opens its own writer, so its buffers are allocated (and
/// their pages faulted in) once per chunk: 4 MiB buffers cost a chunked
/// 1 GiB push a quarter of its speed (611 against 822 MiB/s at 1 MiB,
/// measured side by side).
pub(super) const LOCAL_WRITE_BUFFER: usize = 1 << 20;

impl LocalAppender {
    /// Opens (or creates) `path` for appending; gives where it ends.
    async fn open(path: &Path) -> std::io::Result<(Self, u64)> {
        let path = path.to_owned();
        let (file, end) = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Readable too: a part followed as it is written is read
            // (mapped) from this file ([`LocalPartWriter::observe_written`]).
            let file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)?;
            let end = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, end))
        })
        .await
        .map_err(std::io::Error::other)??;
        let appender = LocalAppender {
            file: Arc::new(file),
            filling: Vec::with_capacity(LOCAL_WRITE_BUFFER),
            in_flight: None,
            unflushed: 0,
            queued_end: end,
            fence: None,
            observer: None,
        };
        Ok((appender, end))
    }

    async fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        if self.filling.capacity() == 0 {
            // Released while the client was quiet: take a buffer again.
            self.filling.reserve_exact(LOCAL_WRITE_BUFFER);
        }
        while !bytes.is_empty() {
            let room = LOCAL_WRITE_BUFFER - self.filling.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.filling.extend_from_slice(now);
            bytes = later;
            if self.filling.len() == LOCAL_WRITE_BUFFER {
                self.hand_over().await?;
            }
        }
        Ok(())
    }

    /// Waits for the buffer in flight, then sends the filled one to be
    /// written.
    async fn hand_over(&mut self) -> std::io::Result<()> {
        let spare = match self.finish_in_flight().await? {
            Some(mut returned) => {
                returned.clear();
                returned
            }
            None => Vec::with_capacity(LOCAL_WRITE_BUFFER),
        };
        let full = std::mem::replace(&mut self.filling, spare);
        self.start_write(full);
        Ok(())
    }

    /// Writes what is buffered and gives both buffers back to the
    /// allocator: an upload whose client has gone quiet holds no memory.
    async fn release(&mut self) -> std::io::Result<()> {
        let full = std::mem::take(&mut self.filling);
        if !full.is_empty() {
            self.finish_in_flight().await?;
            self.start_write(full);
        }
        self.finish_in_flight().await.map(drop)
    }

    /// Sends `full` to be written on a blocking thread.
    fn start_write(&mut self, full: Vec<u8>) {
        self.unflushed += full.len() as u64;
        let writeback = self.unflushed >= WRITEBACK_STEP;
        if writeback {
            self.unflushed = 0;
        }
        self.queued_end += full.len() as u64;
        let end = self.queued_end;
        let file = self.file.clone();
        let fence = self.fence.clone();
        let observer = self.observer.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            (&*file).write_all(&full)?;
            if writeback {
                start_writeback(&file);
            }
            // One write is in flight at a time, so the ends told grow.
            if let Some(observer) = observer {
                observer(&file, end);
            }
            drop(fence);
            Ok(full)
        }));
    }

    async fn finish_in_flight(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self.in_flight.take() {
            Some(write) => write.await.map_err(std::io::Error::other)?.map(Some),
            None => Ok(None),
        }
    }

    async fn close(mut self) -> std::io::Result<()> {
        if !self.filling.is_empty() {
            self.hand_over().await?;
        }
        // Everything is in the file (not yet durable) once the last write
        // is done.
        self.finish_in_flight().await.map(drop)
    }
}

/// Starts writeback of everything dirty in `file` without waiting for it to
/// reach the disk. Only a hint: durability comes from the `fsync` at commit,
/// so a failure here changes nothing but speed.
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `file`, which is borrowed (so open)
    // for the whole call; sync_file_range neither keeps nor closes it.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}
