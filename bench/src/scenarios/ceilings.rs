//! This machine's ceilings: the best any registry could do here for hashing,
//! disk, loopback TCP and HTTP, and what the load generator itself reaches.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use aws_lc_rs::digest;
use bytes::Bytes;
use futures::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::{Ctx, MIB};
use crate::data::{BlobSpec, Image, Prng};
use crate::download;
use crate::load::{self, Expectation, LoadSpec};
use crate::report::{Sample, Section};

/// Buffer for hashing, disk and socket tests: big enough to amortise
/// syscalls, small enough to stay in the CPU caches' neighbourhood.
const BUF: usize = 8 << 20;

fn random_buffer() -> Vec<u8> {
    let mut buf = vec![0u8; BUF];
    Prng::new(0xCE11_1265).fill(&mut buf);
    buf
}

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB / secs
}

/// Hashes `total` bytes with `hash` and returns MiB/s.
fn hash_rate(total: u64, hash: impl Fn(&[u8], usize) -> Vec<u8>) -> f64 {
    let buf = random_buffer();
    let passes = total.div_ceil(BUF as u64) as usize;
    let started = Instant::now();
    let out = hash(&buf, passes);
    let secs = started.elapsed().as_secs_f64();
    // Keep the result alive so the work cannot be optimised away.
    std::hint::black_box(out);
    mib_per_s(passes as u64 * BUF as u64, secs)
}

fn aws_lc(algorithm: &'static digest::Algorithm) -> impl Fn(&[u8], usize) -> Vec<u8> {
    move |buf, passes| {
        let mut ctx = digest::Context::new(algorithm);
        for _ in 0..passes {
            ctx.update(buf);
        }
        ctx.finish().as_ref().to_vec()
    }
}

fn rust_crypto<D: sha2::Digest>() -> impl Fn(&[u8], usize) -> Vec<u8> {
    |buf, passes| {
        let mut hasher = D::new();
        for _ in 0..passes {
            hasher.update(buf);
        }
        hasher.finalize().to_vec()
    }
}

/// Client-side data generation speed, to show it is not a bottleneck.
fn prng_rate(total: u64) -> f64 {
    let spec = BlobSpec {
        seed: 1,
        size: total,
    };
    let started = Instant::now();
    let mut sum = 0u64;
    for i in 0..spec.blocks() {
        sum = sum.wrapping_add(u64::from(spec.block(i)[0]));
    }
    std::hint::black_box(sum);
    mib_per_s(total, started.elapsed().as_secs_f64())
}

/// Sequential write with fsync at the end, then sequential read with the
/// file's pages evicted from the page cache. Returns (write, read, how the
/// cache was dropped).
fn disk(dir: &Path, total: u64) -> Result<(f64, f64, String)> {
    let path = dir.join(format!("ceiling-{}.bin", std::process::id()));
    let result = disk_on(&path, total);
    let _ = std::fs::remove_file(&path);
    result
}

fn disk_on(path: &Path, total: u64) -> Result<(f64, f64, String)> {
    let buf = random_buffer();
    let passes = total.div_ceil(BUF as u64);
    let started = Instant::now();
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for _ in 0..passes {
        file.write_all(&buf)?;
    }
    file.sync_all()?;
    let write = mib_per_s(passes * BUF as u64, started.elapsed().as_secs_f64());
    drop(file);

    let cache = drop_page_cache(path);
    let mut file = std::fs::File::open(path)?;
    let mut read_buf = vec![0u8; BUF];
    let mut read_total = 0u64;
    let started = Instant::now();
    loop {
        let n = file.read(&mut read_buf)?;
        if n == 0 {
            break;
        }
        read_total += n as u64;
    }
    let read = mib_per_s(read_total, started.elapsed().as_secs_f64());
    ensure!(
        read_total == passes * BUF as u64,
        "read back {read_total} bytes"
    );
    Ok((write, read, cache))
}

/// Evicts the test file from the page cache: globally through
/// /proc/sys/vm/drop_caches when allowed, else for this file only with
/// posix_fadvise(DONTNEED) (effective once the data is on disk, which the
/// fsync above ensured).
fn drop_page_cache(path: &Path) -> String {
    if std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok() {
        return "page cache dropped via /proc/sys/vm/drop_caches".to_owned();
    }
    let fadvised = std::fs::File::open(path).is_ok_and(|f| {
        use std::os::fd::AsRawFd;
        // SAFETY: the fd is valid for the lifetime of `f`; fadvise only gives
        // the kernel a hint and touches no memory of ours.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) == 0 }
    });
    if fadvised {
        "drop_caches not writable; the file's pages were evicted with posix_fadvise(DONTNEED)"
            .to_owned()
    } else {
        "could not drop the page cache: the read figure is from cache".to_owned()
    }
}

/// In-process loopback TCP copy with large buffers, on two threads.
fn tcp(total: u64) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; BUF];
        let mut received = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(received);
            }
            received += n as u64;
        }
    });
    let buf = random_buffer();
    let passes = total.div_ceil(BUF as u64);
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    for _ in 0..passes {
        stream.write_all(&buf)?;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let received = reader
        .join()
        .map_err(|_| anyhow!("TCP reader thread panicked"))??;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        received == passes * BUF as u64,
        "TCP reader got {received} bytes"
    );
    Ok(mib_per_s(received, secs))
}

type Body = BoxBody<Bytes, Infallible>;

/// What the trivial server answers: big downloads, upload sinks, and a
/// manifest-sized document for the load-generator ceiling.
async fn trivial_service(
    request: Request<Incoming>,
    total: u64,
    manifest: Bytes,
) -> Result<Response<Body>, hyper::Error> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/download") => {
            let block = Bytes::from(random_buffer()).slice(..1 << 20);
            let chunks = total.div_ceil(block.len() as u64);
            let len = chunks * block.len() as u64;
            // The same reference-counted block over and over: no copies, so
            // the figure is HTTP and socket cost only.
            let body = StreamBody::new(stream::iter(
                (0..chunks).map(move |_| Ok::<_, Infallible>(Frame::data(block.clone()))),
            ));
            Response::builder()
                .header(CONTENT_LENGTH, len)
                .body(BodyExt::boxed(body))
        }
        (&Method::PUT, "/upload") => {
            let mut body = request.into_body();
            let mut received = 0u64;
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame?.data_ref() {
                    received += data.len() as u64;
                }
            }
            Response::builder().body(Full::new(Bytes::from(received.to_string())).boxed())
        }
        (&Method::GET, "/manifest") => Response::builder().body(Full::new(manifest).boxed()),
        (&Method::HEAD, "/manifest") => Response::builder()
            .header(CONTENT_LENGTH, manifest.len())
            .body(Empty::new().boxed()),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Empty::new().boxed()),
    };
    // The builder only fails on invalid header values, which are constant here.
    Ok(response.unwrap_or_else(|_| Response::new(Empty::new().boxed())))
}

/// Starts the trivial server on its own runtime and threads, like a separate
/// server process would have. Returns its address; it runs until the
/// benchmark exits.
fn start_trivial_server(total: u64, manifest: Bytes) -> Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let manifest = manifest.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |r| trivial_service(r, total, manifest.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

async fn http_transfer(addr: std::net::SocketAddr, upload: bool, total: u64) -> Result<f64> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let started = Instant::now();
    let request = if upload {
        let block = Bytes::from(random_buffer()).slice(..1 << 20);
        let chunks = total.div_ceil(block.len() as u64);
        let body = StreamBody::new(stream::iter(
            (0..chunks).map(move |_| Ok::<_, Infallible>(Frame::data(block.clone()))),
        ));
        Request::put("/upload")
            .header(HOST, addr.to_string())
            .header(CONTENT_LENGTH, chunks << 20)
            .body(BodyExt::boxed(body))?
    } else {
        Request::get("/download")
            .header(HOST, addr.to_string())
            .body(Empty::new().boxed())?
    };
    let response = sender.send_request(request).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "trivial server answered {}",
        response.status()
    );
    let mut body = response.into_body();
    let mut received = 0u64;
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            received += data.len() as u64;
            if upload {
                text.extend_from_slice(data);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let moved = if upload {
        String::from_utf8_lossy(&text)
            .parse::<u64>()
            .context("upload byte count")?
    } else {
        received
    };
    ensure!(moved >= total, "moved {moved} bytes, expected {total}");
    Ok(mib_per_s(moved, secs))
}

/// The download as the pull scenario's bare client reads it.
async fn bare_download(addr: std::net::SocketAddr, total: u64) -> Result<f64> {
    let url = reqwest::Url::parse(&format!("http://{addr}/download"))?;
    let started = Instant::now();
    let answer = download::get(&url, &reqwest::header::HeaderMap::new(), false).await?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        answer.status == 200,
        "trivial server answered {}",
        answer.status
    );
    ensure!(
        answer.bytes >= total,
        "moved {} bytes, expected {total}",
        answer.bytes
    );
    Ok(mib_per_s(answer.bytes, secs))
}

/// The manifest-get load generator against the trivial server.
async fn load_ceiling(
    ctx: &Ctx,
    addr: std::net::SocketAddr,
    manifest: Bytes,
) -> Result<load::LoadResult> {
    let cli = &ctx.cli;
    load::run(LoadSpec {
        url: reqwest::Url::parse(&format!("http://{addr}/manifest"))?,
        method: Method::GET,
        headers: Vec::new(),
        connections: cli.connections,
        warmup: Duration::from_secs_f64(cli.warmup.min(1.0)),
        duration: Duration::from_secs_f64(cli.duration.min(5.0)),
        expect: Expectation {
            status: StatusCode::OK,
            body: Some(manifest),
            content_length: None,
            digest: None,
            shed: false,
        },
        server_pid: None,
    })
    .await
}

pub async fn run(ctx: &Ctx) -> Section {
    let cli = &ctx.cli;
    let total = cli.ceiling_size.0;
    let description = format!(
        "Upper bounds on this machine, measured by berth-bench itself with {} of data each: \
         single-core SHA-256/SHA-512 (aws-lc-rs, which berth uses, and the pure-Rust `sha2` \
         crate); the PRNG that generates the benchmark's blobs; sequential disk write (with \
         fsync) and read in the scratch directory `{}`; an in-process loopback TCP copy \
         (8 MiB buffers, one thread each side); HTTP/1.1 download and upload of one large \
         body through a trivial hyper server (what a Rust HTTP server could reach, with no \
         storage or hashing), the download read both by a hyper client and by the bare \
         client the pull scenario uses. The load-generator rows run the manifest-get client ({} \
         connections, {} s) against that trivial server: no registry can be measured above \
         that rate on this machine, and the generator's own CPU use shows how much of the \
         machine it takes from the server. Every figure is taken once per round.",
        cli.ceiling_size,
        ctx.scratch.display(),
        cli.connections,
        cli.duration.min(5.0)
    );
    let mut section = Section::new(
        "ceilings",
        "machine ceilings",
        description,
        vec!["this machine".to_owned()],
    );

    let measure = |section: &mut Section, label: &str, unit: &'static str, result: Result<f64>| {
        match result {
            Ok(v) => {
                eprintln!("[ceilings] {label}: {v:.0} {unit}");
                section.record(0, Sample::higher(label, unit, v));
            }
            Err(e) => {
                eprintln!("[ceilings] {label} FAILED: {e:#}");
                section.fail(0, &e.context(label.to_owned()));
            }
        }
    };
    let blocking = |f: fn(u64) -> f64| async move {
        tokio::task::spawn_blocking(move || f(total))
            .await
            .map_err(anyhow::Error::from)
    };
    let manifest = Image::generate(1, 1, 4096).manifest;
    let server = start_trivial_server(total, manifest.clone());
    if let Err(e) = &server {
        section.fail(0, &anyhow!("starting the trivial HTTP server: {e:#}"));
    }
    // Repeated like the scenarios, since other work on the machine moves
    // these figures too.
    for round in 1..=cli.rounds {
        eprintln!("[ceilings] round {round}/{}", cli.rounds);
        measure(
            &mut section,
            "SHA-256 aws-lc-rs, 1 core",
            "MiB/s",
            blocking(|t| hash_rate(t, aws_lc(&digest::SHA256))).await,
        );
        measure(
            &mut section,
            "SHA-512 aws-lc-rs, 1 core",
            "MiB/s",
            blocking(|t| hash_rate(t, aws_lc(&digest::SHA512))).await,
        );
        measure(
            &mut section,
            "SHA-256 sha2 crate, 1 core",
            "MiB/s",
            blocking(|t| hash_rate(t, rust_crypto::<sha2::Sha256>())).await,
        );
        measure(
            &mut section,
            "SHA-512 sha2 crate, 1 core",
            "MiB/s",
            blocking(|t| hash_rate(t, rust_crypto::<sha2::Sha512>())).await,
        );
        measure(
            &mut section,
            "blob data generation (PRNG), 1 core",
            "MiB/s",
            blocking(prng_rate).await,
        );

        let dir = ctx.scratch.clone();
        match tokio::task::spawn_blocking(move || disk(&dir, total)).await {
            Ok(Ok((write, read, cache))) => {
                measure(
                    &mut section,
                    "disk sequential write + fsync",
                    "MiB/s",
                    Ok(write),
                );
                measure(&mut section, "disk sequential read", "MiB/s", Ok(read));
                section.note(format!("disk read: {cache}"));
            }
            Ok(Err(e)) => measure(&mut section, "disk", "MiB/s", Err(e)),
            Err(e) => measure(&mut section, "disk", "MiB/s", Err(e.into())),
        }
        let tcp_result = tokio::task::spawn_blocking(move || tcp(total)).await;
        measure(
            &mut section,
            "loopback TCP, 1 connection",
            "MiB/s",
            tcp_result.map_err(anyhow::Error::from).and_then(|r| r),
        );

        let Ok(addr) = server else {
            continue;
        };
        measure(
            &mut section,
            "HTTP/1.1 download, trivial hyper server, hyper client",
            "MiB/s",
            http_transfer(addr, false, total).await,
        );
        measure(
            &mut section,
            "HTTP/1.1 download, trivial hyper server, bare client (as in pull)",
            "MiB/s",
            bare_download(addr, total).await,
        );
        measure(
            &mut section,
            "HTTP/1.1 upload, trivial hyper server",
            "MiB/s",
            http_transfer(addr, true, total).await,
        );
        match load_ceiling(ctx, addr, manifest.clone()).await {
            Ok(r) => {
                measure(
                    &mut section,
                    "load generator: manifest GETs, trivial server",
                    "req/s",
                    Ok(r.rps()),
                );
                // Not ceilings, but they show how light the generator is.
                section.record(
                    0,
                    Sample::lower("load generator: latency p99", "ms", r.percentile_ms(0.99)),
                );
                section.record(
                    0,
                    Sample::info("load generator: its own CPU use", "cores", r.client_cores),
                );
            }
            Err(e) => measure(&mut section, "load generator", "req/s", Err(e)),
        }
    }
    section
}
