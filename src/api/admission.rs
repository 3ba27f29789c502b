//! Admission control for `/v2/`: `requests.read` and `requests.write`
//! bound how many requests run at once and how many wait, so that a burst
//! is shed with `429 TOOMANYREQUESTS` and `Retry-After` instead of taking
//! the process down. A request holds its place until its response body is
//! sent (a blob download is the expensive part of a pull), or until the
//! client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{RequestLimit, RequestsConfig};
use crate::error::RegistryError;

/// The read lane (`GET`, `HEAD`) and the write lane (every other method).
pub struct Admission {
    read: Option<Lane>,
    write: Option<Lane>,
}

struct Lane {
    running: Arc<Semaphore>,
    waiting: AtomicU32,
    max_in_queue: u32,
    max_wait: Duration,
    name: &'static str,
}

/// A request's place in its lane, given back when dropped.
pub struct Admitted(Option<OwnedSemaphorePermit>);

impl Admission {
    pub fn new(config: &RequestsConfig) -> Self {
        Admission {
            read: Lane::new(&config.read, "read"),
            write: Lane::new(&config.write, "write"),
        }
    }

    /// Waits for a place for a request with `method`, or refuses it.
    pub async fn admit(&self, method: &Method) -> Result<Admitted, RegistryError> {
        let lane = if method == Method::GET || method == Method::HEAD {
            &self.read
        } else {
            &self.write
        };
        match lane {
            None => Ok(Admitted(None)),
            Some(lane) => lane.admit().await.map(|permit| Admitted(Some(permit))),
        }
    }
}

impl Lane {
    fn new(limit: &RequestLimit, name: &'static str) -> Option<Lane> {
        (limit.max_running > 0).then(|| Lane {
            running: Arc::new(Semaphore::new(limit.max_running as usize)),
            waiting: AtomicU32::new(0),
            max_in_queue: limit.max_in_queue,
            max_wait: limit.max_wait_in_queue,
            name,
        })
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, RegistryError> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Take a place in the queue only if one is free.
        let queued = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.max_in_queue).then_some(waiting + 1)
            })
            .is_ok();
        if !queued {
            return Err(self.busy());
        }
        let waited =
            tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (the semaphore is never closed).
            _ => Err(self.busy()),
        }
    }

    fn busy(&self) -> RegistryError {
        metrics::counter!("berth_requests_shed_total", "lane" => self.name).increment(1);
        RegistryError::TooManyRequests {
            retry_after_secs: self.max_wait.as_secs().max(1),
        }
    }
}

impl Admitted {
    /// The response body, holding the request's place until it is sent.
    pub fn hold_until_sent(self, body: Body) -> Body {
        match self.0 {
            None => body,
            Some(permit) => Body::new(HoldingBody {
                body,
                _permit: permit,
            }),
        }
    }
}

struct HoldingBody {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for HoldingBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(max_running: u32, max_in_queue: u32, wait_ms: u64) -> Admission {
        Admission::new(&RequestsConfig {
            read: RequestLimit {
                max_running,
                max_in_queue,
                max_wait_in_queue: Duration::from_millis(wait_ms),
            },
            write: RequestLimit::default(),
        })
    }

    #[tokio::test]
    async fn past_the_queue_requests_are_refused_and_a_freed_place_is_taken() {
        let admission = Arc::new(lane(1, 1, 5_000));
        let first = admission.admit(&Method::GET).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(&Method::HEAD).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = admission.admit(&Method::GET).await;
        assert!(
            matches!(
                refused,
                Err(RegistryError::TooManyRequests {
                    retry_after_secs: 5
                })
            ),
            "a third request with one running and one waiting must be refused"
        );
        drop(first);
        assert!(
            waiting.await.unwrap().is_ok(),
            "the waiting request gets the freed place"
        );
        // Writes have their own lane, unbounded here.
        assert!(admission.admit(&Method::PUT).await.is_ok());
    }

    #[tokio::test]
    async fn a_request_waits_no_longer_than_the_bound() {
        let admission = lane(1, 4, 100);
        let _running = admission.admit(&Method::GET).await.unwrap();
        let started = std::time::Instant::now();
        assert!(admission.admit(&Method::GET).await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
