//! Request bodies a handler left unread are drained, within bounds, before
//! the connection goes on.
//!
//! A handler that refuses a request early (a manifest over the size limit, a
//! chunk that cannot be stored because the disk is full) drops the body
//! unread. hyper then closes the connection, and a client that sends its
//! whole body before reading the answer (Python's http.client, reqwest on a
//! reused connection) sees a broken pipe instead of the error. So an unread
//! body is read and discarded in the background, up to [`DRAIN_LIMIT`] bytes
//! and for at most [`DRAIN_TIME`], as web servers do for exactly this; past
//! either bound the connection is closed after all.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes of an unread body read and thrown away.
pub const DRAIN_LIMIT: usize = 64 << 20;
/// Longest a connection is kept for the rest of an unread body.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Middleware: every request body drains what its handler leaves unread.
pub async fn drain_unread_bodies(request: Request, next: Next) -> Response {
    next.run(request.map(|body| Body::new(DrainOnDrop { body: Some(body) })))
        .await
}

/// A request body that, dropped before its end, hands itself to a task
/// that reads the rest.
struct DrainOnDrop {
    body: Option<Body>,
}

impl HttpBody for DrainOnDrop {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
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

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else {
            return;
        };
        if body.is_end_stream() {
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
