//! Accepted connections: a bound on how many are served at once, and
//! `TCP_NODELAY` on each.
//!
//! Without a bound, clients that open connections and never send a byte use
//! up the process's file descriptors, and the registry stops accepting
//! anyone. With one, a connection past the limit is closed at once (logged
//! and counted), and the request-header timeout frees the slots such clients
//! hold. The limit is lowered at start to what the open-file limit allows,
//! so that files, the database and the blob store always have descriptors
//! left.
//!
//! A client that asks for a blob and then reads nothing keeps its request
//! running (and its place among `requests.read`) for as long as it likes,
//! since hyper has no write timeout: a connection whose writes make no
//! progress for `http.timeouts.sendStall` is closed (see
//! [`SendfileStream`]).
//!
//! `TCP_NODELAY`: a small response (headers, then a small blob or range)
//! goes out in two writes; with Nagle's algorithm the second waits for the
//! client's delayed ACK, 40 ms on Linux.

use std::future::Ready;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::sendfile::SendfileStream;

/// Descriptors kept for everything but connections: the database, blob
/// files being read and written, the listener, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The bound on connections served at once.
#[derive(Debug)]
pub struct ConnectionGate {
    permits: Arc<Semaphore>,
    limit: usize,
    send_stall: Duration,
}

impl ConnectionGate {
    /// A gate for `configured` connections, or fewer if the open-file limit
    /// (raised to its hard maximum first) cannot take that many, whose
    /// connections are closed when a write makes no progress for
    /// `send_stall`.
    pub fn new(configured: u32, send_stall: Duration) -> Arc<Self> {
        let descriptors = raise_open_file_limit();
        let affordable = descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(1);
        let limit = u64::from(configured).min(affordable).max(1) as usize;
        if (limit as u64) < u64::from(configured) {
            tracing::warn!(
                configured,
                limit,
                open_file_limit = descriptors,
                "http.maxConnections lowered to what the open-file limit allows"
            );
        }
        Arc::new(ConnectionGate {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            send_stall,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A place for one more connection, or an error (the connection is then
    /// closed) when all are taken.
    fn admit(&self) -> io::Result<ConnectionPermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("berth_http_connections_open").increment(1.0);
                Ok(ConnectionPermit(permit))
            }
            // Logged by the server's accept-error handler, rate-limited.
            Err(_) => {
                metrics::counter!("berth_http_connections_refused_total").increment(1);
                Err(io::Error::other(format!(
                    "connection limit reached (http.maxConnections {}): connection closed",
                    self.limit
                )))
            }
        }
    }

    /// Sets `TCP_NODELAY` and takes a place for `tcp`.
    pub fn accept(&self, tcp: &TcpStream) -> io::Result<ConnectionPermit> {
        tcp.set_nodelay(true)?;
        self.admit()
    }

    pub fn send_stall(&self) -> Duration {
        self.send_stall
    }
}

/// Held by a connection for its lifetime.
#[derive(Debug)]
pub struct ConnectionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        metrics::gauge!("berth_http_connections_open").decrement(1.0);
    }
}

/// Raises the soft open-file limit to the hard one; returns the limit in
/// force afterwards.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the local `limit` only.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Accepts TCP connections through the gate, for the TLS acceptor to wrap.
#[derive(Clone, Debug)]
pub struct GatedAcceptor(pub Arc<ConnectionGate>);

impl<S> Accept<TcpStream, S> for GatedAcceptor {
    type Stream = SendfileStream;
    type Service = S;
    type Future = Ready<io::Result<(SendfileStream, S)>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.0.accept(&tcp).map(|permit| {
            let stream = SendfileStream::without_files(tcp, permit, self.0.send_stall());
            (stream, service)
        }))
    }
}
