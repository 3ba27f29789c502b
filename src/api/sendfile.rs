//! Blob bytes sent from their files on plain TCP connections.
//!
//! hyper writes a response body by handing the connection slices of memory.
//! On a plain TCP connection, a blob read maps its windows without touching
//! them and records them in the connection's [`WindowIndex`]. When hyper asks
//! the connection to write a slice lying in one, [`SendfileStream`] sends the
//! same bytes from the blob's file with `sendfile(2)`: the kernel takes them
//! from the page cache and the process copies nothing. Everything else
//! (headers, manifests, errors) is written as usual.
//!
//! Every connection, plain or TLS, is one of these streams, and each bounds
//! how long a write may wait for the client: past `http.timeouts.sendStall`
//! without progress the write fails and hyper closes the connection.
//!
//! Only HTTP/1 responses take this path: TLS encrypts in the process, and
//! HTTP/2 cuts a body into small frames of its own.

use std::future::Ready;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Extension;
use axum::middleware::AddExtension;
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tower::Layer;

use super::connections::{ConnectionGate, ConnectionPermit};
use crate::storage::{FileSpan, WindowIndex};

/// Marks the requests of a connection that can send blob windows recorded
/// in this index from their files.
#[derive(Clone, Debug)]
pub struct SendsFromFile(pub Arc<WindowIndex>);

/// Takes each accepted plain TCP connection through the gate, wraps it in
/// a [`SendfileStream`] and gives its requests the connection's index.
#[derive(Clone, Debug)]
pub struct SendfileAcceptor(pub Arc<ConnectionGate>);

impl<S> Accept<TcpStream, S> for SendfileAcceptor {
    type Stream = SendfileStream;
    type Service = AddExtension<S, SendsFromFile>;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let permit = match self.0.accept(&tcp) {
            Ok(permit) => permit,
            Err(e) => return std::future::ready(Err(e)),
        };
        let windows = Arc::new(WindowIndex::default());
        let service = Extension(SendsFromFile(windows.clone())).layer(service);
        let mut stream = SendfileStream::without_files(tcp, permit, self.0.send_stall());
        stream.windows = Some(windows);
        std::future::ready(Ok((stream, service)))
    }
}

/// An accepted TCP connection, holding its place at the connection gate.
/// On plain HTTP it sends slices of recorded blob windows from their files;
/// under TLS (no index) it only writes what it is given.
pub struct SendfileStream {
    tcp: TcpStream,
    windows: Option<Arc<WindowIndex>>,
    _permit: ConnectionPermit,
    send_stall: Duration,
    /// Armed when a write finds the socket full, disarmed by progress. The
    /// timer is kept and reset rather than made anew: a fast download
    /// fills the socket thousands of times a second.
    stall_timer: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl SendfileStream {
    /// A connection that writes what it is given (TLS encrypts in the
    /// process, so nothing can be sent from a file).
    pub fn without_files(tcp: TcpStream, permit: ConnectionPermit, send_stall: Duration) -> Self {
        SendfileStream {
            tcp,
            windows: None,
            _permit: permit,
            send_stall,
            stall_timer: None,
            stalled: false,
        }
    }

    /// Passes on a write's outcome, failing it once the socket has taken
    /// nothing for `send_stall`.
    fn bound_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = false;
            return outcome;
        }
        if !self.stalled {
            let deadline = Instant::now() + self.send_stall;
            match &mut self.stall_timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.stall_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.stalled = true;
        }
        let Some(timer) = self.stall_timer.as_mut() else {
            return Poll::Pending;
        };
        match std::future::Future::poll(timer.as_mut(), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                metrics::counter!("berth_http_send_stalls_total").increment(1);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client read nothing for {:?} (http.timeouts.sendStall)",
                        self.send_stall
                    ),
                )))
            }
        }
    }

    /// Writes the leading slices up to the first one lying in a window, or,
    /// when that is the first, sends it from its file: one system call
    /// either way (hyper writes again for the rest).
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let found = self.windows.as_ref().and_then(|windows| {
            slices
                .iter()
                .enumerate()
                .find_map(|(i, s)| windows.locate(s).map(|span| (i, span)))
        });
        let (first, span) = match found {
            None => return Pin::new(&mut self.tcp).poll_write_vectored(cx, slices),
            Some((first, span)) => (first, span),
        };
        let before = &slices[..first];
        if before.iter().any(|s| !s.is_empty()) {
            return Pin::new(&mut self.tcp).poll_write_vectored(cx, before);
        }
        let len = slices[first].len();
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self
                .tcp
                .try_io(Interest::WRITABLE, || send_from_file(&self.tcp, &span, len))
            {
                Ok(sent) => {
                    crate::api::observe::count_bytes_sent_from_file(sent);
                    return Poll::Ready(Ok(sent));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// One `sendfile(2)` of up to `len` bytes of `span` to the socket.
fn send_from_file(socket: &TcpStream, span: &FileSpan, len: usize) -> io::Result<usize> {
    let mut offset = libc::off_t::try_from(span.offset).map_err(io::Error::other)?;
    // SAFETY: both descriptors are open for the whole call (the socket is
    // borrowed, the file held by `span`); `offset` is a valid local that
    // sendfile updates, and it reads no memory of ours.
    let sent =
        unsafe { libc::sendfile(socket.as_raw_fd(), span.file.as_raw_fd(), &mut offset, len) };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        // The window maps bytes the file must hold; blobs never shrink.
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "blob file ended inside a mapped window",
        )),
        n => Ok(n as usize),
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = this.poll_send(cx, &[IoSlice::new(buf)]);
        this.bound_stall(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = this.poll_send(cx, bufs);
        this.bound_stall(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.tcp).poll_flush(cx);
        this.bound_stall(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
