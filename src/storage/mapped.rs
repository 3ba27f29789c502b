//! Reading blobs of the local filesystem by memory mapping.
//!
//! A pull is bounded by copying: reading a file into a buffer and writing
//! that buffer to the socket copies every byte twice. Mapping the file lets
//! the socket write take the bytes straight from the page cache, one copy
//! fewer; and a connection that can send from the file itself (`sendfile(2)`,
//! see [`WindowIndex`]) copies none in the process at all.
//!
//! Windows are mapped on a blocking thread, so that page faults (and disk
//! reads) never stall the async workers, and unmapped as soon as the response
//! has sent them, so a pull holds at most a few. The next window is mapped
//! while the current one is sent. A window that will be copied from memory
//! is mapped with `MAP_POPULATE`; one that will be sent from the file is not
//! (its pages are never touched through the mapping, so they never count in
//! the process's resident memory), but its pages are brought into the page
//! cache first, so that `sendfile` does not wait for the disk on an async
//! worker.
//!
//! Blobs are immutable: written once under a temporary name and renamed into
//! place, never truncated or rewritten; deleting one while it is mapped
//! leaves the mapping valid. That is what makes mapping them, and sending a
//! window's bytes from the file instead of from the mapping, sound.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use opendal::ErrorKind;
use tokio::task::JoinHandle;

use super::Result;

/// Bytes mapped per step. Mapped pages count in the process's resident
/// memory until unmapped, so a window is kept small: a pull holds at most
/// three (the one being sent, one still in the socket writer's hands, the
/// one mapped ahead).
const WINDOW: u64 = 2 << 20;

/// Bytes mapped per step for a writer that sends them from the file: such
/// a window is never made resident, so it can be larger.
const SENT_WINDOW: u64 = 16 << 20;

/// A blob's bytes as a stream, from whichever path the store reads.
pub enum BlobStream {
    Mapped(MappedRange),
    /// An object store's bytes.
    Store(futures::stream::BoxStream<'static, std::io::Result<Bytes>>),
}

impl Stream for BlobStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            BlobStream::Mapped(m) => Pin::new(m).poll_next(cx),
            BlobStream::Store(s) => s.as_mut().poll_next(cx),
        }
    }
}

/// A byte range of a file, mapped window by window.
pub struct MappedRange {
    file: Arc<File>,
    next: u64,
    end: u64,
    /// The next window, being mapped on a blocking thread.
    pending: Option<JoinHandle<std::io::Result<Bytes>>>,
    /// Where windows are recorded when the reader sends them from the file.
    index: Option<Arc<WindowIndex>>,
}

/// The live mapped windows of one reader (one connection), by address.
///
/// A socket writer handed a slice of memory can ask whether it lies in one
/// of these windows and, if so, send the same bytes from the file with
/// `sendfile(2)`: the kernel then takes them from the page cache, and the
/// process copies nothing. A window is recorded from its mapping until just
/// before it is unmapped, so an address is never mistaken for a window that
/// is gone.
#[derive(Debug, Default)]
pub struct WindowIndex {
    windows: Mutex<Vec<IndexedWindow>>,
    /// How many windows are recorded; lets writers of other responses skip
    /// the lock.
    live: AtomicUsize,
}

#[derive(Debug)]
struct IndexedWindow {
    address: usize,
    len: usize,
    file: Arc<File>,
    offset: u64,
}

/// Where a slice of a mapped window comes from.
#[derive(Debug)]
pub struct FileSpan {
    pub file: Arc<File>,
    pub offset: u64,
}

impl WindowIndex {
    /// The file and offset holding `slice`, if it lies in a recorded window.
    pub fn locate(&self, slice: &[u8]) -> Option<FileSpan> {
        if self.live.load(Ordering::Acquire) == 0 || slice.is_empty() {
            return None;
        }
        let start = slice.as_ptr() as usize;
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .iter()
            .find(|w| w.address <= start && start + slice.len() <= w.address + w.len)
            .map(|w| FileSpan {
                file: w.file.clone(),
                offset: w.offset + (start - w.address) as u64,
            })
    }

    fn record(&self, window: IndexedWindow) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.push(window);
        self.live.store(windows.len(), Ordering::Release);
    }

    fn forget(&self, address: usize) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.retain(|w| w.address != address);
        self.live.store(windows.len(), Ordering::Release);
    }
}

/// A mapped window, recorded in an index for as long as it is mapped.
struct Window {
    map: memmap2::Mmap,
    index: Option<Arc<WindowIndex>>,
}

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Before the mapping goes (fields drop after this): a later mapping
        // may reuse the address.
        if let Some(index) = &self.index {
            index.forget(self.map.as_ptr() as usize);
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Maps `len` bytes of `file` at `offset` (any alignment). With an index,
/// the window is recorded there and left unpopulated, its pages only read
/// into the page cache.
fn map_window(
    file: &Arc<File>,
    offset: u64,
    len: u64,
    index: Option<&Arc<WindowIndex>>,
) -> std::io::Result<Bytes> {
    let aligned = offset - offset % page_size();
    let lead = (offset - aligned) as usize;
    let length = lead + len as usize;
    let mut options = memmap2::MmapOptions::new();
    options.offset(aligned).len(length);
    if index.is_none() {
        options.populate();
    }
    // SAFETY: blob files are never modified or truncated once in place (see
    // the module documentation), and callers of `map_written_range` promise
    // the same of their range, so the mapping cannot change under us.
    let map = unsafe { options.map(&**file)? };
    let window = match index {
        None => Window { map, index: None },
        Some(index) => {
            cache_pages(file, &map, aligned)?;
            index.record(IndexedWindow {
                address: map.as_ptr() as usize,
                len: map.len(),
                file: file.clone(),
                offset: aligned,
            });
            Window {
                map,
                index: Some(index.clone()),
            }
        }
    };
    Ok(Bytes::from_owner(window).slice(lead..length))
}

/// Whether each page of a mapping is in the page cache (whether or not the
/// mapping itself has touched it).
fn pages_in_cache(map: &memmap2::Mmap) -> std::io::Result<Vec<bool>> {
    let pages = map.len().div_ceil(page_size() as usize);
    let mut status = vec![0u8; pages];
    // SAFETY: the range is exactly the live mapping `map`, page-aligned at
    // its start, and `status` holds one byte per page of it.
    let failed = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            status.as_mut_ptr(),
        )
    };
    if failed != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(status.into_iter().map(|s| s & 1 == 1).collect())
}

/// Reads into the page cache whatever part of a window is not there yet,
/// without touching the mapping (so without making it resident).
fn cache_pages(file: &File, map: &memmap2::Mmap, file_offset: u64) -> std::io::Result<()> {
    let cached = pages_in_cache(map)?;
    // A read of one byte of each missing page waits for that page (and
    // starts readahead of those after it).
    let page = page_size();
    let mut byte = [0u8; 1];
    for (i, _) in cached.iter().enumerate().filter(|(_, cached)| !**cached) {
        file.read_at(&mut byte, file_offset + i as u64 * page)?;
    }
    Ok(())
}

/// The most a reader maps at once: a window that will be copied from
/// memory counts in the resident memory, one sent from the file
/// (`index`) does not.
pub fn window_len(index: Option<&Arc<WindowIndex>>) -> u64 {
    if index.is_some() { SENT_WINDOW } else { WINDOW }
}

/// Maps `len` bytes of `file` at `offset` as one window (recorded in
/// `index` when there is one, for a writer that sends it from the file).
/// Blocks: call it on a blocking thread.
///
/// # Safety
///
/// The bytes `offset..offset + len` of `file` must never change, and the
/// file must never be truncated below `offset + len`, while the returned
/// bytes (or any slice of them) live: an append-only file whose range is
/// already written qualifies.
pub unsafe fn map_written_range(
    file: &Arc<File>,
    offset: u64,
    len: u64,
    index: Option<&Arc<WindowIndex>>,
) -> std::io::Result<Bytes> {
    map_window(file, offset, len, index)
}

impl MappedRange {
    /// Opens `range` of the file at `path`. With an `index`, windows are
    /// recorded there for a writer that sends them from the file.
    pub async fn open(
        path: PathBuf,
        range: Range<u64>,
        index: Option<Arc<WindowIndex>>,
    ) -> Result<MappedRange> {
        let file = tokio::task::spawn_blocking(move || File::open(path))
            .await
            .map_err(|e| opendal::Error::new(ErrorKind::Unexpected, e.to_string()))?
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Unexpected
                };
                opendal::Error::new(kind, format!("opening blob: {e}"))
            })?;
        Ok(MappedRange {
            file: Arc::new(file),
            next: range.start,
            end: range.end,
            pending: None,
            index,
        })
    }

    /// Starts mapping the next window, if there is one and none is on its way.
    fn map_ahead(&mut self) {
        if self.pending.is_some() || self.next >= self.end {
            return;
        }
        let window = window_len(self.index.as_ref());
        let (offset, len) = (self.next, (self.end - self.next).min(window));
        self.next += len;
        let file = self.file.clone();
        let index = self.index.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            map_window(&file, offset, len, index.as_ref())
        }));
    }
}

impl Stream for MappedRange {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.map_ahead();
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(pending).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.pending = None;
                let window = result.map_err(std::io::Error::other).and_then(|r| r);
                if window.is_ok() {
                    // Map the next window while the socket takes this one, so
                    // that the response never waits for a mapping.
                    self.map_ahead();
                }
                Poll::Ready(Some(window))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn maps_any_range_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(WINDOW as usize * 2 + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        for range in [
            0..data.len() as u64,
            1..5000,
            4095..4097,
            WINDOW - 3..WINDOW * 2 + 7,
            100..100,
        ] {
            for index in [None, Some(Arc::new(WindowIndex::default()))] {
                let chunks: Vec<Bytes> =
                    MappedRange::open(path.clone(), range.clone(), index.clone())
                        .await
                        .unwrap()
                        .try_collect()
                        .await
                        .unwrap();
                assert_eq!(
                    chunks.concat(),
                    &data[range.start as usize..range.end as usize],
                    "{range:?}, indexed: {}",
                    index.is_some()
                );
            }
        }
    }

    /// Every slice of a live window is found at its place in the file, and
    /// nothing is found once the window is gone.
    #[tokio::test]
    async fn index_locates_slices_of_live_windows_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(SENT_WINDOW as usize + 9000))
            .map(|i| (i % 241) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let index = Arc::new(WindowIndex::default());
        let start = 5000;
        let mut reader = MappedRange::open(path, start..data.len() as u64, Some(index.clone()))
            .await
            .unwrap();
        let first = reader.try_next().await.unwrap().unwrap();
        assert_eq!(first.len(), SENT_WINDOW as usize);
        for (from, to) in [(0, 1), (0, first.len()), (4000, 4001), (77, 70_000)] {
            let span = index
                .locate(&first[from..to])
                .expect("a slice of a live window");
            let mut read = vec![0u8; to - from];
            span.file.read_exact_at(&mut read, span.offset).unwrap();
            assert_eq!(read, &data[start as usize + from..start as usize + to]);
            assert_eq!(span.offset, start + from as u64);
        }
        assert!(index.locate(&data[..10]).is_none(), "memory of no window");
        let second = reader.try_next().await.unwrap().unwrap();
        assert_eq!(
            second.len(),
            data.len() - start as usize - SENT_WINDOW as usize
        );
        assert!(index.locate(&second).is_some());

        let probe = first.slice(10..20);
        drop(first);
        assert!(
            index.locate(&probe).is_some(),
            "a slice keeps its window alive"
        );
        drop(probe);
        drop(second);
        drop(reader);
        assert_eq!(index.live.load(Ordering::Acquire), 0);
    }

    /// Resident memory of the mapping starting at `address`, from
    /// /proc/self/smaps.
    fn resident_kib(address: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{address:x}-")));
        assert!(lines.next().is_some(), "mapping at {address:x} not found");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A window sent from the file finds its pages in the page cache even
    /// when they had left it, and none of them resident in the process.
    #[test]
    fn sent_windows_are_cached_not_resident() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(1 << 20) + 100).map(|i| (i % 239) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        file.sync_all().unwrap();
        // SAFETY: a valid descriptor; the advice only drops clean pages.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };

        let index = Arc::new(WindowIndex::default());
        let window = map_window(&file, 100, data.len() as u64 - 100, Some(&index)).unwrap();
        let span = index.locate(&window).unwrap();
        assert_eq!(span.offset, 100);

        // Any mapping of the file sees the page cache.
        // SAFETY: the file is not modified while mapped.
        let probe = unsafe { memmap2::MmapOptions::new().map(&*file).unwrap() };
        assert!(
            pages_in_cache(&probe).unwrap().iter().all(|cached| *cached),
            "every page cached"
        );
        drop(probe);
        let start = window.as_ptr() as usize - 100;
        assert_eq!(resident_kib(start), 0, "no page of the window is resident");
        drop(window);
        assert!(index.locate(&data).is_none());
    }

    #[tokio::test]
    async fn missing_blob_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = MappedRange::open(dir.path().join("nope"), 0..1, None)
            .await
            .err()
            .unwrap();
        assert!(err.is_not_found());
    }
}
