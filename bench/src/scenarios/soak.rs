//! A long mixed workload and the registry's memory before, during and after
//! it: what a registry holds on to after serving many different requests
//! (caches, per-repository state, allocator fragmentation) shows here, and
//! not in any scenario that repeats one request.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION,
};
use reqwest::{Method, StatusCode, Url};
use serde_json::json;

use super::Ctx;
use crate::data::{self, MANIFEST_ACCEPT, OCI_CONFIG, OCI_MANIFEST, Prng, sha256_of};
use crate::procfs::{self, RssSampler};
use crate::registry::{Payload, Registry, content_length};
use crate::report::{Sample, Section};

/// Repositories the workload pushes to and reads from.
const REPOS: u64 = 500;

/// Tags per repository the pushes choose from.
const TAGS: u64 = 30;

/// Manifest digests remembered per repository, for reads by digest.
const DIGESTS_KEPT: usize = 8;

/// Loopback addresses that wrong credentials come from (127.0.2.1..), each
/// staying under the per-address limit of a registry's brute-force defence
/// (berth: 50 failures in 5 minutes), so that the credentials are checked
/// rather than refused unread, and the benchmark's own address is never
/// locked out.
const OUTSIDER_ADDRESSES: u8 = 250;

/// The kinds of request, each with its weight in the mix (per mille).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    PushManifest,
    GetManifestByTag,
    HeadManifestByDigest,
    GetManifestByDigest,
    HeadBlob,
    GetBlob,
    UnknownBlob,
    TagList,
    TagListPaged,
    Catalog,
    UnknownRepository,
    UnknownUpload,
    BadName,
    BadDigest,
    Unauthenticated,
    BadCredential,
    WrongPassword,
    AbandonedUpload,
    AbandonedChunk,
    WrongDigestUpload,
}

const MIX: [(Op, u32, &str); 20] = [
    (
        Op::PushManifest,
        120,
        "manifest `PUT` by tag (or, one in ten, by digest), each manifest unique, to one of \
         500 repositories and 30 tags each (the first push to a repository uploads its config \
         blob first: `POST` + `PUT`)",
    ),
    (Op::GetManifestByTag, 130, "manifest `GET` by tag"),
    (Op::HeadManifestByDigest, 60, "manifest `HEAD` by digest"),
    (Op::GetManifestByDigest, 40, "manifest `GET` by digest"),
    (Op::HeadBlob, 60, "blob `HEAD`"),
    (Op::GetBlob, 60, "blob `GET`"),
    (
        Op::UnknownBlob,
        50,
        "blob `HEAD`/`GET` of an unknown digest",
    ),
    (Op::TagList, 50, "`tags/list`"),
    (Op::TagListPaged, 30, "`tags/list?n=5&last=`"),
    (Op::Catalog, 30, "`_catalog?n=100` (half with `last=`)"),
    (
        Op::UnknownRepository,
        40,
        "manifest `GET` in a repository that does not exist",
    ),
    (Op::UnknownUpload, 20, "`GET` of an unknown upload"),
    (
        Op::BadName,
        50,
        "invalid repository names (upper case, `..`, leading `-`, 300 characters)",
    ),
    (
        Op::BadDigest,
        50,
        "invalid digests (`sha256:zz`, short, `md5:`, unknown algorithm)",
    ),
    (
        Op::Unauthenticated,
        80,
        "requests without credentials (manifests, tags, catalog)",
    ),
    (
        Op::BadCredential,
        30,
        "a malformed bearer token or a made-up `berth_` token, from 250 other loopback \
         addresses",
    ),
    (
        Op::WrongPassword,
        3,
        "a wrong password for a made-up user, from the same 250 addresses",
    ),
    (
        Op::AbandonedUpload,
        40,
        "an upload started (`POST`) and abandoned",
    ),
    (
        Op::AbandonedChunk,
        27,
        "an upload started, sent a 4 KiB `PATCH` and abandoned",
    ),
    (
        Op::WrongDigestUpload,
        30,
        "an upload of 4 KiB closed with a wrong digest (`POST` + `PUT`)",
    ),
];

const BAD_NAMES: [&str; 6] = [
    "Soak/Upper",
    "soak/a..b",
    "soak/-lead",
    "soak/trailing-",
    "soak//double",
    "soak/under__score__",
];

const BAD_DIGESTS: [&str; 5] = [
    "sha256:zz",
    "sha256:abc",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha999:0000000000000000000000000000000000000000000000000000000000000000",
    "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
];

fn pick(roll: u32) -> Op {
    let mut left = roll % MIX.iter().map(|(_, w, _)| w).sum::<u32>();
    for (op, weight, _) in MIX {
        if left < weight {
            return op;
        }
        left -= weight;
    }
    MIX[0].0
}

#[derive(Default)]
struct RepoState {
    seeded: bool,
    tags: Vec<String>,
    digests: Vec<String>,
}

/// What the workload saw, counted as it goes.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    /// The first few 5xx answers and transport errors, for the report.
    examples: Vec<String>,
    server_errors: u64,
    transport_errors: u64,
}

struct Soak<'a> {
    registry: &'a Registry,
    prefix: String,
    seed: u64,
    config: Bytes,
    config_digest: String,
    repos: Vec<Mutex<RepoState>>,
    /// Clients whose connections come from 127.0.2.x.
    outsiders: Vec<reqwest::Client>,
    sent: AtomicU64,
    limit: u64,
    tally: Mutex<Tally>,
}

/// A response read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_hex_digest(prng: &mut Prng) -> String {
    let mut bytes = [0u8; 32];
    prng.fill(&mut bytes);
    format!("sha256:{}", hex::encode(bytes))
}

impl Soak<'_> {
    fn repo(&self, k: u64) -> String {
        format!("{}/r{k:03}", self.prefix)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.registry.url(path)
    }

    /// Counts one request; false once the workload has sent its share.
    fn take(&self) -> bool {
        self.sent.fetch_add(1, Ordering::Relaxed) < self.limit
    }

    /// Reads the whole answer and counts it.
    async fn finish(
        &self,
        what: &str,
        sent: Result<reqwest::Response>,
    ) -> Result<Option<Answer>, ()> {
        let result = match sent {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Ok((status, headers, body)),
                    Err(e) => Err(anyhow!(e).context("reading the body")),
                }
            }
            Err(e) => Err(e),
        };
        let mut tally = lock(&self.tally);
        match result {
            Ok((status, headers, body)) => {
                *tally.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_server_error() {
                    tally.server_errors += 1;
                    if tally.examples.len() < 5 {
                        let body = String::from_utf8_lossy(&body[..body.len().min(200)]);
                        tally.examples.push(format!("{what}: {status} {body}"));
                    }
                }
                Ok(Some(Answer { status, headers }))
            }
            Err(e) => {
                tally.transport_errors += 1;
                if tally.examples.len() < 5 {
                    tally.examples.push(format!("{what}: {e:#}"));
                }
                Err(())
            }
        }
    }

    /// One request with the registry's credentials, unless the workload is done.
    async fn authed(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Payload,
    ) -> Result<Option<Answer>, ()> {
        if !self.take() {
            return Ok(None);
        }
        let what = format!("{method} {path}");
        let sent = match self.url(path) {
            Ok(url) => self.registry.send(method, url, headers, body).await,
            Err(e) => Err(e),
        };
        self.finish(&what, sent).await
    }

    /// One request through `client` with exactly `headers` (no credentials
    /// of the registry's), unless the workload is done.
    async fn raw(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Option<Answer>, ()> {
        if !self.take() {
            return Ok(None);
        }
        let what = format!("{method} {path} (no credentials)");
        let sent = match self.url(path) {
            Ok(url) => client
                .request(method, url)
                .headers(headers)
                .send()
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        self.finish(&what, sent).await
    }

    fn manifest(&self, n: u64) -> Bytes {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.config_digest,
                "size": self.config.len(),
            },
            "layers": [],
            "annotations": { "dev.berth.bench.soak": n.to_string() },
        });
        Bytes::from(manifest.to_string())
    }

    /// Starts an upload; its Location if the registry gave one.
    async fn start_upload(&self, repo: &str) -> Result<Option<String>, ()> {
        let answer = self
            .authed(
                Method::POST,
                &format!("v2/{repo}/blobs/uploads/"),
                content_length(0),
                Payload::Empty,
            )
            .await?;
        Ok(answer
            .filter(|a| a.status == StatusCode::ACCEPTED)
            .and_then(|a| a.headers.get(LOCATION)?.to_str().ok().map(str::to_owned)))
    }

    fn with_digest(location: &str, digest: &str) -> String {
        let separator = if location.contains('?') { '&' } else { '?' };
        format!("{location}{separator}digest={digest}")
    }

    async fn run_op(&self, n: u64) -> Result<(), ()> {
        let mut prng = Prng::new(data::seed(self.seed, "soak-op", 0, n as usize));
        let op = pick(prng.next_u64() as u32);
        let k = prng.next_u64() % REPOS;
        let repo = self.repo(k);
        match op {
            Op::PushManifest => {
                if !lock(&self.repos[k as usize]).seeded {
                    let Some(location) = self.start_upload(&repo).await? else {
                        return Ok(());
                    };
                    let mut headers = content_length(self.config.len() as u64);
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    let put = Self::with_digest(&location, &self.config_digest);
                    let answer = self
                        .authed(
                            Method::PUT,
                            &put,
                            headers,
                            Payload::Bytes(self.config.clone()),
                        )
                        .await?;
                    if answer.is_some_and(|a| a.status == StatusCode::CREATED) {
                        lock(&self.repos[k as usize]).seeded = true;
                    }
                    return Ok(());
                }
                let manifest = self.manifest(n);
                let digest = sha256_of(&manifest);
                let tag = format!("t{}", prng.next_u64() % TAGS);
                let by_digest = prng.next_u64().is_multiple_of(10);
                let reference = if by_digest { &digest } else { &tag };
                let mut headers = content_length(manifest.len() as u64);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_MANIFEST));
                let answer = self
                    .authed(
                        Method::PUT,
                        &format!("v2/{repo}/manifests/{reference}"),
                        headers,
                        Payload::Bytes(manifest),
                    )
                    .await?;
                if answer.is_some_and(|a| a.status == StatusCode::CREATED) {
                    let mut state = lock(&self.repos[k as usize]);
                    if !by_digest && !state.tags.contains(&tag) {
                        state.tags.push(tag);
                    }
                    if state.digests.len() == DIGESTS_KEPT {
                        state.digests.remove(0);
                    }
                    state.digests.push(digest);
                }
            }
            Op::GetManifestByTag => {
                let tag = {
                    let state = lock(&self.repos[k as usize]);
                    match state.tags.len() as u64 {
                        0 => "t0".to_owned(),
                        len => state.tags[(prng.next_u64() % len) as usize].clone(),
                    }
                };
                let mut headers = HeaderMap::new();
                headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
                self.authed(
                    Method::GET,
                    &format!("v2/{repo}/manifests/{tag}"),
                    headers,
                    Payload::Empty,
                )
                .await?;
            }
            Op::HeadManifestByDigest | Op::GetManifestByDigest => {
                let digest = {
                    let state = lock(&self.repos[k as usize]);
                    match state.digests.len() as u64 {
                        0 => None,
                        len => Some(state.digests[(prng.next_u64() % len) as usize].clone()),
                    }
                }
                .unwrap_or_else(|| random_hex_digest(&mut prng));
                let method = if op == Op::HeadManifestByDigest {
                    Method::HEAD
                } else {
                    Method::GET
                };
                let mut headers = HeaderMap::new();
                headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
                self.authed(
                    method,
                    &format!("v2/{repo}/manifests/{digest}"),
                    headers,
                    Payload::Empty,
                )
                .await?;
            }
            Op::HeadBlob | Op::GetBlob | Op::UnknownBlob => {
                let method = if op == Op::GetBlob || (op == Op::UnknownBlob && n.is_multiple_of(2))
                {
                    Method::GET
                } else {
                    Method::HEAD
                };
                let digest = if op == Op::UnknownBlob {
                    random_hex_digest(&mut prng)
                } else {
                    self.config_digest.clone()
                };
                self.authed(
                    method,
                    &format!("v2/{repo}/blobs/{digest}"),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::TagList => {
                self.authed(
                    Method::GET,
                    &format!("v2/{repo}/tags/list"),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::TagListPaged => {
                let last = prng.next_u64() % TAGS;
                self.authed(
                    Method::GET,
                    &format!("v2/{repo}/tags/list?n=5&last=t{last}"),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::Catalog => {
                let path = if n.is_multiple_of(2) {
                    "v2/_catalog?n=100".to_owned()
                } else {
                    format!("v2/_catalog?n=100&last={repo}")
                };
                self.authed(Method::GET, &path, HeaderMap::new(), Payload::Empty)
                    .await?;
            }
            Op::UnknownRepository => {
                // A few names only: each new repository name costs a token.
                let missing = format!("{}/missing-{}", self.prefix, prng.next_u64() % 8);
                self.authed(
                    Method::GET,
                    &format!("v2/{missing}/manifests/latest"),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::UnknownUpload => {
                let mut id = [0u8; 16];
                prng.fill(&mut id);
                self.authed(
                    Method::GET,
                    &format!("v2/{repo}/blobs/uploads/{}", hex::encode(id)),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::BadName => {
                let long = format!("soak/{}", "x".repeat(300));
                let name = match prng.next_u64() % (BAD_NAMES.len() as u64 + 1) {
                    i if (i as usize) < BAD_NAMES.len() => BAD_NAMES[i as usize],
                    _ => long.as_str(),
                };
                let path = match n % 3 {
                    0 => format!("v2/{name}/manifests/latest"),
                    1 => format!("v2/{name}/tags/list"),
                    _ => format!("v2/{name}/blobs/{}", self.config_digest),
                };
                self.authed(Method::GET, &path, HeaderMap::new(), Payload::Empty)
                    .await?;
            }
            Op::BadDigest => {
                let digest = BAD_DIGESTS[(prng.next_u64() % BAD_DIGESTS.len() as u64) as usize];
                let kind = if n.is_multiple_of(2) {
                    "blobs"
                } else {
                    "manifests"
                };
                self.authed(
                    Method::GET,
                    &format!("v2/{repo}/{kind}/{digest}"),
                    HeaderMap::new(),
                    Payload::Empty,
                )
                .await?;
            }
            Op::Unauthenticated => {
                let path = match n % 3 {
                    0 => format!("v2/{repo}/manifests/t0"),
                    1 => format!("v2/{repo}/tags/list"),
                    _ => "v2/_catalog".to_owned(),
                };
                self.raw(self.registry.http(), Method::GET, &path, HeaderMap::new())
                    .await?;
            }
            Op::BadCredential => {
                let mut secret = [0u8; 24];
                prng.fill(&mut secret);
                let value = if n.is_multiple_of(2) {
                    format!("Bearer eyJhbGciOiJFUzI1NiJ9.{}.sig", hex::encode(secret))
                } else {
                    let basic = format!("anyone:berth_{}", hex::encode(secret));
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(basic)
                    )
                };
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(AUTHORIZATION, value);
                }
                let client = &self.outsiders[(n % self.outsiders.len() as u64) as usize];
                self.raw(
                    client,
                    Method::GET,
                    &format!("v2/{repo}/tags/list"),
                    headers,
                )
                .await?;
            }
            Op::WrongPassword => {
                let client = &self.outsiders[(n % self.outsiders.len() as u64) as usize];
                let basic = format!("soak-guest-{n}:wrong-password");
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(basic)
                )) {
                    headers.insert(AUTHORIZATION, value);
                }
                self.raw(client, Method::GET, "v2/", headers).await?;
            }
            Op::AbandonedUpload => {
                self.start_upload(&repo).await?;
            }
            Op::AbandonedChunk | Op::WrongDigestUpload => {
                let Some(location) = self.start_upload(&repo).await? else {
                    return Ok(());
                };
                let chunk = prng.bytes(4096);
                let mut headers = content_length(chunk.len() as u64);
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                if op == Op::AbandonedChunk {
                    headers.insert(CONTENT_RANGE, HeaderValue::from_static("0-4095"));
                    self.authed(Method::PATCH, &location, headers, Payload::Bytes(chunk))
                        .await?;
                } else {
                    let wrong = random_hex_digest(&mut prng);
                    let put = Self::with_digest(&location, &wrong);
                    self.authed(Method::PUT, &put, headers, Payload::Bytes(chunk))
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Measures one target: idle memory, the workload with peak memory, idle
/// memory again.
async fn soak_target(ctx: &Ctx, t: usize, section: &mut Section) -> Result<()> {
    let cli = &ctx.cli;
    let registry = &ctx.targets[t];
    let pid = registry
        .spec
        .pid
        .ok_or_else(|| anyhow!("no pid= given for this target"))?;
    let mut outsiders = Vec::new();
    for i in 1..=OUTSIDER_ADDRESSES {
        outsiders.push(
            reqwest::Client::builder()
                .http1_only()
                .no_proxy()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 2, i)))
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build()
                .context("building a client on another loopback address")?,
        );
    }
    let config = Bytes::from(
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [] },
        })
        .to_string(),
    );
    let soak = Soak {
        registry,
        prefix: ctx.repo("soak"),
        seed: ctx.run_seed,
        config_digest: sha256_of(&config),
        config,
        repos: (0..REPOS).map(|_| Mutex::default()).collect(),
        outsiders,
        sent: AtomicU64::new(0),
        limit: cli.soak_requests,
        tally: Mutex::default(),
    };
    let idle = Duration::from_secs_f64(cli.idle_wait);
    tokio::time::sleep(idle).await;
    let rss_before = procfs::rss_kib(pid)?;
    let cpu_before = procfs::cpu_seconds(pid)?;
    let sampler = RssSampler::start(pid);
    let started = Instant::now();
    let next_op = AtomicU64::new(0);
    let progress = AtomicU64::new(0);
    let workers = (0..cli.soak_concurrency).map(|_| async {
        while soak.sent.load(Ordering::Relaxed) < soak.limit {
            let n = next_op.fetch_add(1, Ordering::Relaxed);
            // A transport error is counted; the workload goes on.
            let _ = soak.run_op(n).await;
            let sent = soak.sent.load(Ordering::Relaxed).min(soak.limit);
            let tenth = soak.limit.div_ceil(10).max(1);
            let step = sent / tenth;
            if progress.fetch_max(step, Ordering::Relaxed) < step {
                eprintln!(
                    "[soak] {}: {sent} requests, RSS {:.1} MiB",
                    registry.name(),
                    procfs::rss_kib(pid).unwrap_or(0) as f64 / 1024.0
                );
            }
        }
    });
    futures::future::join_all(workers).await;
    let secs = started.elapsed().as_secs_f64();
    let peak = sampler.finish()?;
    let cpu = procfs::cpu_seconds(pid)? - cpu_before;
    let tally = std::mem::take(&mut *lock(&soak.tally));
    // Close the other addresses' connections (the pooled client's stay
    // open, as a client's would), then let the registry settle.
    drop(soak);
    tokio::time::sleep(Duration::from_secs_f64(cli.soak_idle)).await;
    let rss_after = procfs::rss_kib(pid)?;
    let anon_after = procfs::rss_anon_kib(pid)?;
    let requests: u64 = tally.statuses.values().sum::<u64>() + tally.transport_errors;
    let mib = |kib: u64| kib as f64 / 1024.0;
    for sample in [
        Sample::lower("RSS before", "MiB", mib(rss_before)),
        Sample::lower("RSS after", "MiB", mib(rss_after)),
        Sample::lower("RSS growth", "MiB", mib(rss_after) - mib(rss_before)),
        Sample::lower("anonymous RSS after", "MiB", mib(anon_after)),
        Sample::lower("peak RSS during", "MiB", mib(peak)),
        Sample::higher("throughput", "req/s", requests as f64 / secs),
        Sample::lower(
            "server CPU per request",
            "µs",
            cpu / requests.max(1) as f64 * 1e6,
        ),
        Sample::lower("5xx answers", "count", tally.server_errors as f64),
        Sample::lower("transport errors", "count", tally.transport_errors as f64),
    ] {
        eprintln!(
            "[soak] {}: {} {:.1} {}",
            registry.name(),
            sample.metric,
            sample.value,
            sample.unit
        );
        section.record(t, sample);
    }
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(status, count)| format!("{status} ×{count}"))
        .collect();
    section.note(format!(
        "{}: {requests} requests in {secs:.1} s; statuses {}",
        registry.name(),
        statuses.join(", ")
    ));
    if tally.server_errors > 0 || tally.transport_errors > 0 {
        bail!(
            "{} answers were 5xx and {} requests failed; first: {}",
            tally.server_errors,
            tally.transport_errors,
            tally.examples.join(" | ")
        );
    }
    Ok(())
}

pub async fn soak(ctx: &Ctx) -> Section {
    let cli = &ctx.cli;
    let mix: Vec<String> = MIX
        .iter()
        .map(|(_, weight, what)| format!("{:.1}% {what}", f64::from(*weight) / 10.0))
        .collect();
    let description = format!(
        "{} requests to `/v2/` from {} concurrent workers (keep-alive connections of one \
         pooled HTTP/1.1 client), the kind of each drawn at random: {}. Run once per target \
         (not per round), on whatever the registry holds by then. RSS is VmRSS from \
         /proc/PID/status after {} s without requests before the workload and {} s after it \
         (the connections from other addresses closed, the client's pooled ones open), and \
         sampled every 10 ms during it (peak); anonymous RSS is RssAnon (heap, not mapped \
         files or code). Every answer is counted by status; a 5xx answer or a failed request \
         fails the scenario. Needs pid= on the target.",
        cli.soak_requests,
        cli.soak_concurrency,
        mix.join("; "),
        cli.idle_wait,
        cli.soak_idle
    );
    let mut section = Section::new(
        "soak",
        "memory under a mixed workload",
        description,
        ctx.columns(),
    );
    for t in 0..ctx.targets.len() {
        if let Err(e) = soak_target(ctx, t, &mut section).await {
            eprintln!("[soak] {} FAILED: {e:#}", ctx.targets[t].name());
            section.fail(t, &e);
        }
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_per_mille_and_every_kind_is_drawn() {
        assert_eq!(MIX.iter().map(|(_, w, _)| w).sum::<u32>(), 1000);
        let mut prng = Prng::new(1);
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            let op = pick(prng.next_u64() as u32);
            if !seen.contains(&op) {
                seen.push(op);
            }
        }
        assert_eq!(seen.len(), MIX.len());
    }
}
