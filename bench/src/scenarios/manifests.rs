//! Manifest GET by tag, HEAD by digest and HEAD by tag, and HEAD and GET of
//! the image's small layer, under concurrent keep-alive load.

use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use hyper::StatusCode;
use reqwest::header::{ACCEPT, HeaderValue};

use super::{Ctx, measure_on_setup, setup_each};
use crate::auth::scope_for_path;
use crate::data::{self, Image, MANIFEST_ACCEPT};
use crate::load::{self, Expectation, LoadSpec};
use crate::report::{Sample, Section};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GetByTag,
    HeadByDigest,
    /// What `docker pull IMAGE:TAG` asks first.
    HeadByTag,
    /// GET by tag at a registry that may shed load: `429`s are counted.
    GetByTagShedding,
    /// What a push asks of each layer before uploading it.
    BlobHead,
    /// A pull of a small layer.
    BlobGet,
}

/// The small image both manifest scenarios request, pushed once per target.
#[derive(Clone)]
pub struct SmallImage {
    repo: String,
    tag: String,
    manifest: Bytes,
    digest: String,
    layer: Bytes,
    layer_digest: String,
}

const TAG: &str = "v1";

async fn fixture(ctx: &Ctx, t: usize) -> Result<SmallImage> {
    if let Some(image) = ctx.fixtures.manifest.get(t) {
        return Ok(image);
    }
    let image = Image::generate(data::seed(ctx.run_seed, "manifest", 0, 0), 1, 4096);
    let repo = ctx.repo("manifests");
    let registry = &ctx.targets[t];
    registry.push_image(&repo, TAG, &image).await?;
    let reported = registry.manifest_digest(&repo, TAG).await?;
    ensure!(
        reported
            .as_deref()
            .is_none_or(|d| d == image.manifest_digest),
        "HEAD by tag reports digest {reported:?}, expected {}",
        image.manifest_digest
    );
    let layer = image.layers[0].clone();
    let fixture = SmallImage {
        repo,
        tag: TAG.to_owned(),
        manifest: image.manifest,
        digest: image.manifest_digest,
        layer_digest: data::sha256_of(&layer),
        layer,
    };
    ctx.fixtures.manifest.insert(t, fixture.clone());
    Ok(fixture)
}

pub async fn load(ctx: &Ctx, kind: Kind) -> Section {
    let cli = &ctx.cli;
    let (id, title, what) = match kind {
        Kind::GetByTag => (
            "manifest-get",
            "manifest GET by tag under load",
            "`GET /v2/<repo>/manifests/<tag>` with the Accept header of a container runtime \
             (OCI manifest and index, Docker v2 manifest and list); every response must be 200 \
             with exactly the pushed manifest bytes",
        ),
        Kind::HeadByDigest => (
            "manifest-head",
            "manifest HEAD by digest under load",
            "`HEAD /v2/<repo>/manifests/<digest>`; every response must be 200 with the \
             manifest's Content-Length and, if sent, its Docker-Content-Digest",
        ),
        Kind::GetByTagShedding => (
            "manifest-get-shed",
            "manifest GET by tag under load, shedding allowed",
            "as manifest-get, but a `429` is an answer too, if it carries `Retry-After` and an \
             OCI `TOOMANYREQUESTS` error (a registry bounding its requests, \
             `requests.read.maxRunning`); served and shed requests are counted apart, and the \
             latency rows are of the served ones",
        ),
        Kind::HeadByTag => (
            "manifest-head-tag",
            "manifest HEAD by tag under load",
            "`HEAD /v2/<repo>/manifests/<tag>` with the Accept header of a container runtime \
             (what `docker pull` asks first); every response must be 200 with the manifest's \
             Content-Length and, if sent, its Docker-Content-Digest",
        ),
        Kind::BlobHead => (
            "blob-head",
            "small blob HEAD under load",
            "`HEAD /v2/<repo>/blobs/<digest>` of the image's layer (what a push asks of \
             each layer before uploading it); every response must be 200 with the layer's \
             Content-Length and, if sent, its Docker-Content-Digest",
        ),
        Kind::BlobGet => (
            "blob-get",
            "small blob GET under load",
            "`GET /v2/<repo>/blobs/<digest>` of the image's layer (about 5 KiB); every \
             response must be 200 with exactly the layer's bytes",
        ),
    };
    let description = format!(
        "{what}. {} tasks each hold exactly one keep-alive HTTP/1.1 connection (hyper's \
         client connection API; one request in flight per connection); {} s warm-up, then \
         {} s measured. Latency is from sending the request to reading the whole body, \
         recorded in an HDR histogram. The image (config + one 4 KiB layer + OCI manifest) \
         is pushed before timing. `client CPU` is the benchmark process's own use during the \
         window (in cores): the generator shares the machine with the registry, and the \
         `ceilings` section shows what it reaches against a trivial server.",
        cli.connections, cli.warmup, cli.duration
    );
    let mut section = Section::new(id, title, description, ctx.columns());
    let fixtures = setup_each(ctx, &mut section, async |t| fixture(ctx, t).await).await;
    measure_on_setup(
        ctx,
        &mut section,
        &fixtures,
        "no manifest fixture",
        async |_, registry, image| {
            let (method, reference, expect) = match kind {
                Kind::GetByTag | Kind::GetByTagShedding => (
                    hyper::Method::GET,
                    &image.tag,
                    Expectation {
                        status: StatusCode::OK,
                        body: Some(image.manifest.clone()),
                        content_length: None,
                        digest: Some(image.digest.clone()),
                        shed: kind == Kind::GetByTagShedding,
                    },
                ),
                Kind::HeadByDigest | Kind::HeadByTag | Kind::BlobHead | Kind::BlobGet => (
                    hyper::Method::HEAD,
                    if kind == Kind::HeadByTag {
                        &image.tag
                    } else {
                        &image.digest
                    },
                    Expectation {
                        status: StatusCode::OK,
                        body: None,
                        content_length: Some(image.manifest.len() as u64),
                        digest: Some(image.digest.clone()),
                        shed: false,
                    },
                ),
            };
            let (method, path, expect) = match kind {
                Kind::BlobHead => (
                    hyper::Method::HEAD,
                    format!("v2/{}/blobs/{}", image.repo, image.layer_digest),
                    Expectation {
                        status: StatusCode::OK,
                        body: None,
                        content_length: Some(image.layer.len() as u64),
                        digest: Some(image.layer_digest.clone()),
                        shed: false,
                    },
                ),
                Kind::BlobGet => (
                    hyper::Method::GET,
                    format!("v2/{}/blobs/{}", image.repo, image.layer_digest),
                    Expectation {
                        status: StatusCode::OK,
                        body: Some(image.layer.clone()),
                        content_length: None,
                        digest: Some(image.layer_digest.clone()),
                        shed: false,
                    },
                ),
                _ => (
                    method,
                    format!("v2/{}/manifests/{reference}", image.repo),
                    expect,
                ),
            };
            let url = registry.url(&path)?;
            let mut headers = vec![(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT))];
            // One Authorization value for the whole run: a Basic header, or a
            // token fetched (and cached) for this repository's scope.
            if let Some(auth) = registry
                .authorization(scope_for_path(url.path()).as_deref())
                .await?
            {
                headers.push((reqwest::header::AUTHORIZATION, auth));
            }
            let result = load::run(LoadSpec {
                url,
                method,
                headers,
                connections: cli.connections,
                warmup: Duration::from_secs_f64(cli.warmup),
                duration: Duration::from_secs_f64(cli.duration),
                expect,
                server_pid: registry.spec.pid,
            })
            .await?;
            let mut samples = vec![
                Sample::higher("throughput", "req/s", result.rps()),
                Sample::lower("latency p50", "ms", result.percentile_ms(0.50)),
                Sample::lower("latency p99", "ms", result.percentile_ms(0.99)),
                Sample::info("client CPU", "cores", result.client_cores),
            ];
            if kind == Kind::GetByTagShedding {
                samples.push(Sample::info(
                    "shed (429 TOOMANYREQUESTS)",
                    "req/s",
                    result.shed_per_second(),
                ));
                if result.shed > 0 {
                    samples.push(Sample::info(
                        "shed latency p99",
                        "ms",
                        result.shed_percentile_ms(0.99),
                    ));
                }
            }
            if let Some(cores) = result.server_cores {
                samples.push(Sample::info("server CPU", "cores", cores));
                // CPU per request compares efficiency at different rates.
                let per_request = cores * result.seconds / result.requests as f64;
                samples.push(Sample::lower(
                    "server CPU per request",
                    "µs",
                    per_request * 1e6,
                ));
            }
            if result.reconnects > 0 {
                samples.push(Sample::lower(
                    "reconnects (server closed idle connection)",
                    "count",
                    result.reconnects as f64,
                ));
            }
            Ok(samples)
        },
    )
    .await;
    section
}
