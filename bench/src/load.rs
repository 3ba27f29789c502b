//! Closed-loop HTTP load generator: N tasks, each with exactly one
//! keep-alive HTTP/1.1 connection, issuing one request after another.
//!
//! Plain-HTTP targets use hyper's low-level client connection, which costs
//! far less CPU per request than a pooled client; that matters because the
//! generator shares two cores with the registry. HTTPS targets fall back to
//! one single-connection reqwest client per task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::procfs;

#[derive(Clone)]
pub struct LoadSpec {
    pub url: Url,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub expect: Expectation,
    /// Process whose CPU use is reported (the server), if local.
    pub server_pid: Option<u32>,
}

/// What every response must look like; checked on every request so that a
/// registry answering errors fast cannot look fast.
#[derive(Clone)]
pub struct Expectation {
    pub status: StatusCode,
    /// Exact body for GET.
    pub body: Option<Bytes>,
    /// Required Content-Length header (HEAD).
    pub content_length: Option<u64>,
    /// Required Docker-Content-Digest, when the server sends one.
    pub digest: Option<String>,
    /// A `429` is accepted too, and counted apart, if it is a registry
    /// shedding load as it should: `Retry-After` and an OCI error body
    /// with the code `TOOMANYREQUESTS`.
    pub shed: bool,
}

/// What a checked response was.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Served,
    Shed,
}

pub struct LoadResult {
    pub requests: u64,
    pub seconds: f64,
    /// Latency in microseconds, request sent to body fully read.
    pub latency: Histogram<u64>,
    /// CPU cores the benchmark process used during the measured window.
    pub client_cores: f64,
    pub server_cores: Option<f64>,
    pub reconnects: u64,
    /// Requests answered `429` (only with [`Expectation::shed`]), and how
    /// long those answers took.
    pub shed: u64,
    pub shed_latency: Histogram<u64>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn shed_per_second(&self) -> f64 {
        self.shed as f64 / self.seconds
    }

    pub fn shed_percentile_ms(&self, q: f64) -> f64 {
        self.shed_latency.value_at_quantile(q) as f64 / 1000.0
    }
}

enum Conn {
    Hyper {
        sender: SendRequest<Empty<Bytes>>,
        addr: String,
    },
    Reqwest(reqwest::Client),
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Conn {
    async fn open(url: &Url) -> Result<Conn> {
        match url.scheme() {
            "http" => {
                let addr = url.authority().to_owned();
                let sender = hyper_connect(&addr).await?;
                Ok(Conn::Hyper { sender, addr })
            }
            "https" => Ok(Conn::Reqwest(
                reqwest::Client::builder()
                    .http1_only()
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(1)
                    .build()?,
            )),
            other => bail!("unsupported scheme {other}"),
        }
    }

    /// Sends one request; returns whether the connection had to be reopened
    /// because the server closed it while idle.
    async fn request(
        &mut self,
        method: &Method,
        url: &Url,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(Response, bool)> {
        match self {
            Conn::Hyper { sender, addr } => {
                let mut reconnected = false;
                if sender.ready().await.is_err() {
                    *sender = hyper_connect(addr).await?;
                    reconnected = true;
                }
                let mut builder = hyper::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header(HOST, addr.as_str());
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                let response = sender.send_request(builder.body(Empty::new())?).await?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok((
                    Response {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    },
                    reconnected,
                ))
            }
            Conn::Reqwest(client) => {
                let mut request = client.request(method.clone(), url.clone());
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let response = request.send().await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok((
                    Response {
                        status,
                        headers,
                        body,
                    },
                    false,
                ))
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection, for scenarios that time requests one
/// at a time (hyper's client connection for plain HTTP, a single-connection
/// reqwest client for HTTPS).
pub struct KeepAlive {
    conn: Conn,
    /// Times the server closed the idle connection and it was reopened.
    pub reconnects: u64,
}

impl KeepAlive {
    /// Connects to the host of `url`.
    pub async fn open(url: &Url) -> Result<KeepAlive> {
        Ok(KeepAlive {
            conn: Conn::open(url).await?,
            reconnects: 0,
        })
    }

    /// Sends one request with no body and reads the whole response.
    pub async fn request(
        &mut self,
        method: &Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Response> {
        let path = path_and_query(url);
        let (response, reconnected) = self.conn.request(method, url, &path, headers).await?;
        self.reconnects += u64::from(reconnected);
        Ok(response)
    }
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

async fn hyper_connect(addr: &str) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Errors surface on the sender side; nothing to do with them here.
        let _ = connection.await;
    });
    Ok(sender)
}

fn check(response: &Response, expect: &Expectation) -> Result<Outcome> {
    if expect.shed && response.status == StatusCode::TOO_MANY_REQUESTS {
        check_shed(response)?;
        return Ok(Outcome::Shed);
    }
    ensure!(
        response.status == expect.status,
        "status {}, expected {}; body: {}",
        response.status,
        expect.status,
        String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
    );
    if let Some(body) = &expect.body {
        ensure!(
            response.body == *body,
            "response body differs from the expected manifest"
        );
    }
    if let Some(length) = expect.content_length {
        let got = response
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        ensure!(
            got == Some(length),
            "Content-Length {got:?}, expected {length}"
        );
    }
    if let (Some(digest), Some(got)) = (
        &expect.digest,
        response.headers.get("docker-content-digest"),
    ) {
        ensure!(
            got == digest.as_str(),
            "Docker-Content-Digest {got:?}, expected {digest}"
        );
    }
    Ok(Outcome::Served)
}

/// A `429` that tells the client when to come back, with an OCI error.
fn check_shed(response: &Response) -> Result<()> {
    ensure!(
        response.headers.contains_key("retry-after"),
        "429 without Retry-After"
    );
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).context("429 whose body is not JSON")?;
    ensure!(
        body["errors"][0]["code"] == "TOOMANYREQUESTS",
        "429 whose body is not an OCI TOOMANYREQUESTS error: {body}"
    );
    Ok(())
}

struct WorkerResult {
    requests: u64,
    latency: Histogram<u64>,
    reconnects: u64,
    shed: u64,
    shed_latency: Histogram<u64>,
}

impl WorkerResult {
    fn new() -> Result<WorkerResult> {
        Ok(WorkerResult {
            requests: 0,
            latency: new_histogram()?,
            reconnects: 0,
            shed: 0,
            shed_latency: new_histogram()?,
        })
    }
}

pub fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))
}

async fn worker(spec: Arc<LoadSpec>, barrier: Arc<Barrier>) -> Result<WorkerResult> {
    // Connect before the barrier so connection setup is not measured, but
    // always reach the barrier so a failed connect cannot hang the others.
    let conn = Conn::open(&spec.url).await;
    barrier.wait().await;
    let mut conn = conn?;
    let path = path_and_query(&spec.url);
    let started = Instant::now();
    let measure_from = started + spec.warmup;
    let stop_at = measure_from + spec.duration;
    let mut result = WorkerResult::new()?;
    loop {
        let sent = Instant::now();
        if sent >= stop_at {
            break;
        }
        let (response, reconnected) = conn
            .request(&spec.method, &spec.url, &path, &spec.headers)
            .await?;
        let done = Instant::now();
        let outcome = check(&response, &spec.expect)?;
        result.reconnects += u64::from(reconnected);
        // Count requests that both started and finished inside the window.
        if sent >= measure_from && done < stop_at {
            let micros = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
            let (count, latency) = match outcome {
                Outcome::Served => (&mut result.requests, &mut result.latency),
                Outcome::Shed => (&mut result.shed, &mut result.shed_latency),
            };
            *count += 1;
            latency.saturating_record(micros.max(1));
        }
    }
    Ok(result)
}

pub async fn run(spec: LoadSpec) -> Result<LoadResult> {
    let spec = Arc::new(spec);
    let barrier = Arc::new(Barrier::new(spec.connections + 1));
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| tokio::spawn(worker(spec.clone(), barrier.clone())))
        .collect();
    barrier.wait().await;
    let started = Instant::now();
    tokio::time::sleep(spec.warmup).await;
    let client_before = procfs::self_cpu_seconds()?;
    let server_before = spec.server_pid.map(procfs::cpu_seconds).transpose()?;
    let window_start = Instant::now();
    tokio::time::sleep_until((started + spec.warmup + spec.duration).into()).await;
    let window = window_start.elapsed().as_secs_f64();
    let client_cores = (procfs::self_cpu_seconds()? - client_before) / window;
    let server_cores = match (spec.server_pid, server_before) {
        (Some(pid), Some(before)) => Some((procfs::cpu_seconds(pid)? - before) / window),
        _ => None,
    };

    let mut total = WorkerResult::new()?;
    let mut first_error = None;
    for handle in workers {
        match handle.await.context("load worker panicked")? {
            Ok(r) => {
                total.requests += r.requests;
                total.reconnects += r.reconnects;
                total.shed += r.shed;
                total
                    .latency
                    .add(&r.latency)
                    .and_then(|()| total.shed_latency.add(&r.shed_latency))
                    .map_err(|e| anyhow!("merging histograms: {e}"))?;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.context(format!("{} {}", spec.method, spec.url)));
    }
    ensure!(
        total.requests > 0,
        "no request completed inside the measured window"
    );
    Ok(LoadResult {
        requests: total.requests,
        seconds: spec.duration.as_secs_f64(),
        latency: total.latency,
        client_cores,
        server_cores,
        reconnects: total.reconnects,
        shed: total.shed,
        shed_latency: total.shed_latency,
    })
}
