//! Reading blobs of the local filesystem by memory mapping.
//!
//! A pull is bounded by copying: reading a file into a buffer and writing
//! that buffer to the socket copies every byte twice. Mapping the file lets
//! the socket write take the bytes straight from the page cache, one copy
//! fewer. Each window is mapped with `MAP_POPULATE` on a blocking thread, so
//! that page faults (and disk reads) never stall the async workers, and is
//! unmapped as soon as the response has sent it, so a pull holds at most a
//! few windows. The next window is mapped while the current one is sent.
//!
//! Blobs are immutable: written once under a temporary name and renamed into
//! place, never truncated or rewritten; deleting one while it is mapped
//! leaves the mapping valid. That is what makes mapping them sound.

use std::fs::File;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use opendal::{ErrorKind, FuturesBytesStream};
use tokio::task::JoinHandle;

use super::Result;

/// Bytes mapped per step. Mapped pages count in the process's resident
/// memory until unmapped, so a window is kept small: a pull holds at most
/// three (the one being sent, one still in the socket writer's hands, the
/// one mapped ahead).
const WINDOW: u64 = 2 << 20;

/// A blob's bytes as a stream, from whichever path the store reads.
pub enum BlobStream {
    Mapped(MappedRange),
    /// Boxed: it is much larger than a mapping cursor.
    Store(Box<FuturesBytesStream>),
}

impl Stream for BlobStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            BlobStream::Mapped(m) => Pin::new(m).poll_next(cx),
            BlobStream::Store(s) => Pin::new(s.as_mut()).poll_next(cx),
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
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Maps `len` bytes of `file` at `offset` (any alignment).
fn map_window(file: &File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    let aligned = offset - offset % page_size();
    let lead = (offset - aligned) as usize;
    let length = lead + len as usize;
    // SAFETY: blob files are never modified or truncated once in place (see
    // the module documentation), so the mapping cannot change under us.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(aligned)
            .len(length)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(map).slice(lead..length))
}

impl MappedRange {
    pub async fn open(path: PathBuf, range: Range<u64>) -> Result<MappedRange> {
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
        })
    }

    /// Starts mapping the next window, if there is one and none is on its way.
    fn map_ahead(&mut self) {
        if self.pending.is_some() || self.next >= self.end {
            return;
        }
        let (offset, len) = (self.next, (self.end - self.next).min(WINDOW));
        self.next += len;
        let file = self.file.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            map_window(&file, offset, len)
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
            let chunks: Vec<Bytes> = MappedRange::open(path.clone(), range.clone())
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(
                chunks.concat(),
                &data[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
    }

    #[tokio::test]
    async fn missing_blob_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = MappedRange::open(dir.path().join("nope"), 0..1)
            .await
            .err()
            .unwrap();
        assert!(err.is_not_found());
    }
}
