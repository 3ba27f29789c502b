//! Guards on request bodies: one that stalls is cut off, and one a handler
//! left unread is drained, within bounds, before the connection goes on.
//!
//! A client that stops sending in the middle of a body (an upload chunk,
//! say) would otherwise hold its connection, its request and its buffers for
//! as long as it likes: a body that delivers nothing for the configured
//! stall time (`http.timeouts.bodyStall`) fails, and its connection is
//! closed.
//!
//! A handler that refuses a request early (a manifest over the size limit, a
//! chunk that cannot be stored because the disk is full) drops the body
//! unread. hyper then closes the connection, and a client that sends its
//! whole body before reading the answer (Python's http.client, reqwest on a
//! reused connection) sees a broken pipe instead of the error. So an unread
//! body is read and discarded in the background, up to [`DRAIN_LIMIT`] bytes
//! and for at most [`DRAIN_TIME`], as web servers do for exactly this; past
//! either bound the connection is closed after all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

/// Most bytes of an unread body read and thrown away.
pub const DRAIN_LIMIT: usize = 64 << 20;
/// Longest a connection is kept for the rest of an unread body.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Guards `request`'s body, if it has one; [`super::observe::observe`]
/// calls it on every request (one middleware instead of two: each layer
/// costs every request a boxed future).
pub fn guard(request: Request, stall: Duration) -> Request {
    // Most requests (GET, HEAD, DELETE) have no body: nothing to guard.
    if request.body().is_end_stream() {
        return request;
    }
    request.map(|body| Body::new(GuardedBody::new(body, stall)))
}

/// Why a guarded body failed.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing for {0:?}")]
pub struct BodyStalled(Duration);

/// A request body that fails when it stalls, and that, dropped before its
/// end, hands itself to a task that reads the rest.
struct GuardedBody {
    body: Option<Body>,
    stall: Duration,
    /// When the body counts as stalled unless a frame arrives first; set
    /// the first time the body has nothing to give (a body that arrives
    /// whole never needs a timer).
    deadline: Option<Pin<Box<Sleep>>>,
    /// Set once it stalled: draining it would only wait again.
    stalled: bool,
}

impl GuardedBody {
    fn new(body: Body, stall: Duration) -> Self {
        GuardedBody {
            body: Some(body),
            stall,
            deadline: None,
            stalled: false,
        }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The clock restarts whenever the client makes progress,
                // not only when the handler asks for more.
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.as_mut().reset(Instant::now() + this.stall);
                }
                Poll::Ready(frame)
            }
            Poll::Pending => match this
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(this.stall)))
                .as_mut()
                .poll(cx)
            {
                Poll::Ready(()) => {
                    this.stalled = true;
                    tracing::info!(stall = ?this.stall, "request body stalled; closing");
                    Poll::Ready(Some(Err(axum::Error::new(BodyStalled(this.stall)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else {
            return;
        };
        if self.stalled || body.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

async fn drain(mut body: Body) {
    let discard = async {
        let mut left = DRAIN_LIMIT;
        while let Some(Ok(frame)) = body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            match left.checked_sub(data.len()) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}
