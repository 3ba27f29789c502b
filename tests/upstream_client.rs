//! berth's client of upstream registries (`berth::upstream`), against real
//! upstreams started by the tests: the reference registry with htpasswd
//! behind a test CA's certificate, a second berth with Bearer tokens, and
//! small local servers for what no registry does on demand (429, bytes
//! that do not match their digest, bodies without end, stalls).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use berth::upstream::{
    UpstreamAccess, UpstreamClient, UpstreamCredentials, UpstreamError, UpstreamReference,
    UpstreamSettings,
};
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use serde_json::Value;

fn upstream_client(ca_file: Option<&Path>) -> UpstreamClient {
    client_trusting(&ca_file.into_iter().collect::<Vec<_>>())
}

fn client_trusting(ca_files: &[&Path]) -> UpstreamClient {
    UpstreamClient::new(UpstreamSettings {
        ca_files: ca_files.iter().map(|p| p.to_path_buf()).collect(),
        ..UpstreamSettings::default()
    })
    .expect("the upstream client builds")
}

fn reference(host: &str, rest: &str) -> UpstreamReference {
    format!("{host}/{rest}")
        .parse()
        .unwrap_or_else(|e| panic!("{host}/{rest}: {e}"))
}

/// The bytes of a blob stream, or the first error in it.
async fn read_blob(blob: berth::upstream::UpstreamBlob) -> Result<Vec<u8>, UpstreamError> {
    let mut stream = blob.verified();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// The same manifest, pretty-printed: other bytes, another digest, so that
/// only a client keeping the exact bytes gets it back.
fn pretty(manifest: &Manifest) -> Manifest {
    let value: Value = serde_json::from_slice(&manifest.bytes).expect("manifest JSON");
    let mut bytes = serde_json::to_vec_pretty(&value).expect("pretty JSON");
    bytes.extend_from_slice(b"\n");
    Manifest::raw(&manifest.media_type, bytes)
}

// ---------------------------------------------------------------------------
// The reference registry: htpasswd (Basic) over TLS with a test CA

#[tokio::test]
async fn reference_registry_manifests_by_tag_and_digest_exact_bytes_and_blobs() {
    let Some(upstream) = ReferenceRegistry::start_with_htpasswd("puller").await else {
        return;
    };
    let pusher = upstream.client();
    let image = pusher.push_image("team/app", "v1").await;
    let pretty = pretty(&image.manifest);
    pusher.push_manifest("team/app", "pretty", &pretty).await;

    let client = upstream_client(Some(&upstream.ca.ca_path));
    let access = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        &upstream.user,
        &upstream.password,
    ));
    let host = &upstream.host;

    let by_tag = client
        .manifest(&reference(host, "team/app:v1"), &access)
        .await
        .expect("manifest by tag");
    assert_eq!(by_tag.bytes.as_ref(), image.manifest.bytes.as_slice());
    assert_eq!(by_tag.digest.as_str(), image.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    // Anonymous, then Basic as the 401 asked: two requests; from then on
    // the client sends its credentials at once.
    assert_eq!(client.requests_to(host), 2);

    let exact = client
        .manifest(&reference(host, "team/app:pretty"), &access)
        .await
        .expect("the pretty-printed manifest");
    assert_eq!(
        exact.bytes.as_ref(),
        pretty.bytes.as_slice(),
        "bytes as pushed"
    );
    assert_eq!(exact.digest.as_str(), pretty.digest());
    assert_eq!(client.requests_to(host), 3);

    let by_digest = client
        .manifest(
            &reference(host, &format!("team/app@{}", pretty.digest())),
            &access,
        )
        .await
        .expect("manifest by digest");
    assert_eq!(by_digest, exact);

    let head = client
        .manifest_head(&reference(host, "team/app:v1"), &access)
        .await
        .expect("HEAD of the manifest");
    assert_eq!(
        head.digest.map(|d| d.to_string()),
        Some(image.digest.clone())
    );

    let layer = &image.layers[0];
    let blob = client
        .blob(
            &registry_host(host),
            &"team/app".parse().unwrap(),
            &layer.digest.parse().unwrap(),
            &access,
        )
        .await
        .expect("the layer");
    assert_eq!(blob.size, Some(layer.size));
    let bytes = read_blob(blob).await.expect("the layer's bytes");
    assert_eq!(sha256(&bytes), layer.digest);

    let missing = client
        .manifest(&reference(host, "team/app:nope"), &access)
        .await
        .expect_err("a tag the upstream does not have");
    assert!(
        matches!(&missing, UpstreamError::NotFound { code, .. } if code == "MANIFEST_UNKNOWN"),
        "{missing:?}"
    );
    assert!(missing.to_string().contains(host.as_str()), "{missing}");

    let missing_blob = client
        .blob(
            &registry_host(host),
            &"team/app".parse().unwrap(),
            &sha256(b"never pushed").parse().unwrap(),
            &access,
        )
        .await
        .expect_err("a blob the upstream does not have");
    assert!(
        matches!(&missing_blob, UpstreamError::NotFound { code, .. } if code == "BLOB_UNKNOWN"),
        "{missing_blob:?}"
    );
}

fn registry_host(host: &str) -> berth::upstream::RegistryHost {
    berth::upstream::RegistryHost::new(host).expect("host:port")
}

#[tokio::test]
async fn reference_registry_basic_auth_right_wrong_and_no_password() {
    let Some(upstream) = ReferenceRegistry::start_with_htpasswd("puller").await else {
        return;
    };
    let image = upstream.client().push_image("team/app", "v1").await;
    let client = upstream_client(Some(&upstream.ca.ca_path));
    let target = reference(&upstream.host, "team/app:v1");

    let right = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        &upstream.user,
        &upstream.password,
    ));
    let got = client
        .manifest(&target, &right)
        .await
        .expect("right password");
    assert_eq!(got.digest.as_str(), image.digest);

    let wrong = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        &upstream.user,
        "not-the-password",
    ));
    let error = client
        .manifest(&target, &wrong)
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(error, UpstreamError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(!error.to_string().contains("not-the-password"), "{error}");

    let error = client
        .manifest(&target, &UpstreamAccess::anonymous())
        .await
        .expect_err("no credentials");
    assert!(
        matches!(error, UpstreamError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("requires credentials"),
        "{error}"
    );
}

#[tokio::test]
async fn reference_registry_tls_needs_its_ca_or_insecure() {
    let Some(upstream) = ReferenceRegistry::start_with_htpasswd("puller").await else {
        return;
    };
    let image = upstream.client().push_image("team/app", "v1").await;
    let target = reference(&upstream.host, "team/app:v1");
    let credentials = UpstreamCredentials::new(&upstream.user, &upstream.password);

    // System roots only: the test CA is unknown.
    let client = upstream_client(None);
    let error = client
        .manifest(
            &target,
            &UpstreamAccess::with_credentials(credentials.clone()),
        )
        .await
        .expect_err("a certificate of an unknown CA");
    assert!(
        matches!(error, UpstreamError::TlsVerification { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("--insecure"), "{error}");

    // Insecure: the certificate is not checked.
    let insecure = UpstreamAccess::with_credentials(credentials.clone()).insecure(true);
    let got = client
        .manifest(&target, &insecure)
        .await
        .expect("insecure access");
    assert_eq!(got.digest.as_str(), image.digest);

    // The CA configured: verified.
    let client = upstream_client(Some(&upstream.ca.ca_path));
    let got = client
        .manifest(&target, &UpstreamAccess::with_credentials(credentials))
        .await
        .expect("the CA configured");
    assert_eq!(got.digest.as_str(), image.digest);
}

#[tokio::test]
async fn reference_registry_index_and_its_children() {
    let Some(upstream) = ReferenceRegistry::start_with_htpasswd("puller").await else {
        return;
    };
    let pusher = upstream.client();
    let amd64 = pusher.push_image("team/multi", "amd64").await;
    let arm64 = pusher.push_image("team/multi", "arm64").await;
    let index = Manifest::from_json(
        OCI_INDEX,
        &index_manifest(
            OCI_INDEX,
            vec![
                amd64.descriptor().with_platform("linux", "amd64"),
                arm64.descriptor().with_platform("linux", "arm64"),
            ],
        ),
    );
    let index_digest = pusher.push_manifest("team/multi", "latest", &index).await;

    let client = upstream_client(Some(&upstream.ca.ca_path));
    let access = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        &upstream.user,
        &upstream.password,
    ));
    let target = reference(&upstream.host, "team/multi");
    let got = client.manifest(&target, &access).await.expect("the index");
    assert!(got.is_index());
    assert_eq!(got.media_type, OCI_INDEX);
    assert_eq!(got.digest.as_str(), index_digest);
    assert_eq!(got.bytes.as_ref(), index.bytes.as_slice());

    let children = client
        .child_manifests(&target, &got, &access)
        .await
        .expect("the index's children");
    let digests: Vec<String> = children.iter().map(|c| c.digest.to_string()).collect();
    assert_eq!(digests, [amd64.digest.clone(), arm64.digest.clone()]);
    assert_eq!(children[0].bytes.as_ref(), amd64.manifest.bytes.as_slice());
    assert_eq!(children[1].bytes.as_ref(), arm64.manifest.bytes.as_slice());
    assert!(children.iter().all(|c| c.media_type == OCI_MANIFEST));
}

#[tokio::test]
async fn reference_registry_lists_every_tag() {
    let Some(upstream) = ReferenceRegistry::start_with_htpasswd("puller").await else {
        return;
    };
    let pusher = upstream.client();
    let image = pusher.push_image("team/many", "t000").await;
    let mut expected: Vec<String> = (0..105).map(|i| format!("t{i:03}")).collect();
    for tag in &expected[1..] {
        pusher
            .push_manifest("team/many", tag, &image.manifest)
            .await;
    }
    expected.sort();

    let client = upstream_client(Some(&upstream.ca.ca_path));
    let access = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        &upstream.user,
        &upstream.password,
    ));
    let registry = registry_host(&upstream.host);
    let repository = "team/many".parse().unwrap();
    for page_size in [None, Some(10)] {
        let mut tags = client
            .tags(&registry, &repository, &access, page_size)
            .await
            .unwrap_or_else(|e| panic!("tags with pages of {page_size:?}: {e}"));
        tags.sort();
        assert_eq!(tags, expected, "pages of {page_size:?}");
    }
}

// ---------------------------------------------------------------------------
// A second berth: Bearer tokens from its token service

#[tokio::test]
async fn berth_upstream_with_bearer_tokens() {
    let upstream = TestRegistry::start().await;
    let image = upstream.push_image("private/app", "v1").await;
    let other = upstream.push_image("private/app", "v2").await;
    let host = upstream.addr.to_string();
    let admin_password = upstream.password().expect("admin password").to_owned();

    let client = upstream_client(None);
    // berth here serves plain HTTP (and its token realm is plain HTTP):
    // only insecure access may use it.
    let access =
        UpstreamAccess::with_credentials(UpstreamCredentials::new(ADMIN_USER, &admin_password))
            .insecure(true);
    let got = client
        .manifest(&reference(&host, "private/app:v1"), &access)
        .await
        .expect("manifest with a token");
    assert_eq!(got.bytes.as_ref(), image.manifest.bytes.as_slice());
    assert_eq!(got.digest.as_str(), image.digest);
    let after_first = client.requests_to(&host);
    // HTTPS tried first and refused (insecure), then plain HTTP: the
    // anonymous attempt, the token, the attempt with it.
    assert!(
        (3..=4).contains(&after_first),
        "{after_first} requests for the first manifest"
    );

    // The token is cached for the repository's pull scope: one request.
    let second = client
        .manifest(
            &reference(&host, &format!("private/app@{}", other.digest)),
            &access,
        )
        .await
        .expect("second manifest with the cached token");
    assert_eq!(second.digest.as_str(), other.digest);
    assert_eq!(client.requests_to(&host), after_first + 1);

    let blob = client
        .blob(
            &registry_host(&host),
            &"private/app".parse().unwrap(),
            &image.layers[0].digest.parse().unwrap(),
            &access,
        )
        .await
        .expect("a blob with the cached token");
    assert_eq!(
        sha256(&read_blob(blob).await.expect("blob bytes")),
        image.layers[0].digest
    );

    // Another client without credentials: refused.
    let anonymous = upstream_client(None)
        .manifest(
            &reference(&host, "private/app:v1"),
            &UpstreamAccess::anonymous().insecure(true),
        )
        .await
        .expect_err("anonymous pull of a private repository");
    assert!(
        matches!(anonymous, UpstreamError::Unauthorized { .. }),
        "{anonymous:?}"
    );

    let wrong = upstream_client(None)
        .manifest(
            &reference(&host, "private/app:v1"),
            &UpstreamAccess::with_credentials(UpstreamCredentials::new(ADMIN_USER, "wrong"))
                .insecure(true),
        )
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(wrong, UpstreamError::Unauthorized { .. }),
        "{wrong:?}"
    );

    // Not insecure: plain HTTP is refused, saying how to allow it.
    let refused = upstream_client(None)
        .manifest(
            &reference(&host, "private/app:v1"),
            &UpstreamAccess::with_credentials(UpstreamCredentials::new(
                ADMIN_USER,
                &admin_password,
            )),
        )
        .await
        .expect_err("plain HTTP without insecure");
    assert!(
        matches!(refused, UpstreamError::TlsVerification { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("--insecure"), "{refused}");
}

#[tokio::test]
async fn berth_upstream_tag_pages_are_followed() {
    let upstream = TestRegistry::start().await;
    let image = upstream.push_image("team/many", "t000").await;
    let mut expected: Vec<String> = (0..105).map(|i| format!("t{i:03}")).collect();
    for tag in &expected[1..] {
        upstream
            .push_manifest("team/many", tag, &image.manifest)
            .await;
    }
    expected.sort();
    let host = upstream.addr.to_string();
    let access = UpstreamAccess::with_credentials(UpstreamCredentials::new(
        ADMIN_USER,
        upstream.password().expect("admin password"),
    ))
    .insecure(true);
    let client = upstream_client(None);
    let registry = registry_host(&host);
    let repository = "team/many".parse().unwrap();

    let tags = client
        .tags(&registry, &repository, &access, Some(10))
        .await
        .expect("tags in pages of 10");
    assert_eq!(tags, expected);
    let paged = client.requests_to(&host);
    // 11 pages, besides the handshake (HTTPS refused, 401, token).
    assert!(paged >= 11, "{paged} requests for 11 pages");

    let tags = client
        .tags(&registry, &repository, &access, None)
        .await
        .expect("tags in one go");
    assert_eq!(tags, expected);
}

// ---------------------------------------------------------------------------
// Local servers: what registries do only now and then

#[tokio::test]
async fn rate_limiting_gives_retry_after() {
    let upstream = LocalUpstream::start(axum::Router::new().fallback(|| async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        )
    }))
    .await;
    let error = upstream_client(None)
        .manifest(
            &reference(&upstream.host(), "a/b:c"),
            &UpstreamAccess::anonymous().insecure(true),
        )
        .await
        .expect_err("429");
    assert!(
        matches!(error, UpstreamError::RateLimited { retry_after: Some(after), .. } if after == Duration::from_secs(7)),
        "{error:?}"
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error.is_transient());
    assert!(error.to_string().contains("retry after 7s"), "{error}");
}

#[tokio::test]
async fn an_unreachable_upstream_fails_promptly() {
    let host = format!("127.0.0.1:{}", free_loopback_port());
    let client = upstream_client(None);
    for access in [
        UpstreamAccess::anonymous(),
        UpstreamAccess::anonymous().insecure(true),
    ] {
        let started = Instant::now();
        let error = client
            .manifest(&reference(&host, "a/b:c"), &access)
            .await
            .expect_err("nobody listens");
        assert!(
            matches!(error, UpstreamError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(error.is_transient());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let served = Manifest::from_json(
        OCI_MANIFEST,
        &image_manifest(
            OCI_MANIFEST,
            &Descriptor::of(OCI_CONFIG, b"{}"),
            &[Descriptor::of(OCI_LAYER, b"layer")],
        ),
    );
    let claimed = sha256(b"something else entirely");
    let bytes = served.bytes.clone();
    let header_digest = claimed.clone();
    let upstream = LocalUpstream::start(axum::Router::new().fallback(move || {
        let bytes = bytes.clone();
        let header_digest = header_digest.clone();
        async move {
            (
                [
                    (CONTENT_TYPE.as_str(), OCI_MANIFEST.to_owned()),
                    ("docker-content-digest", header_digest),
                ],
                bytes,
            )
        }
    }))
    .await;
    let client = upstream_client(None);
    let access = UpstreamAccess::anonymous().insecure(true);

    // Asked for by digest: the bytes must hash to it.
    let error = client
        .manifest(
            &reference(&upstream.host(), &format!("a/b@{claimed}")),
            &access,
        )
        .await
        .expect_err("bytes of another digest");
    match &error {
        UpstreamError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &claimed);
            assert_eq!(actual, &served.digest());
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }

    // Asked for by tag: the bytes must hash to the digest the upstream
    // says they have.
    let error = client
        .manifest(&reference(&upstream.host(), "a/b:latest"), &access)
        .await
        .expect_err("a Docker-Content-Digest the bytes do not have");
    assert!(
        matches!(error, UpstreamError::DigestMismatch { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_ends_in_an_error() {
    let upstream = LocalUpstream::start(
        axum::Router::new().fallback(|| async { Bytes::from(blob_content("served", 300_000)) }),
    )
    .await;
    let wanted = sha256(&blob_content("wanted", 300_000));
    let blob = upstream_client(None)
        .blob(
            &registry_host(&upstream.host()),
            &"a/b".parse().unwrap(),
            &wanted.parse().unwrap(),
            &UpstreamAccess::anonymous().insecure(true),
        )
        .await
        .expect("the blob's answer");
    let error = read_blob(blob).await.expect_err("the wrong bytes");
    assert!(
        matches!(&error, UpstreamError::DigestMismatch { expected, .. } if *expected == wanted),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_manifest_over_4_mib_is_refused_without_reading_it_all() {
    // Announced by its length.
    let big = LocalUpstream::start(
        axum::Router::new()
            .fallback(|| async { ([(CONTENT_TYPE, OCI_MANIFEST)], vec![b' '; 4 * MIB + 1]) }),
    )
    .await;
    let client = upstream_client(None);
    let access = UpstreamAccess::anonymous().insecure(true);
    let error = client
        .manifest(&reference(&big.host(), "a/b:c"), &access)
        .await
        .expect_err("over 4 MiB");
    assert!(
        matches!(error, UpstreamError::TooLarge { size: Some(size), .. } if size == (4 * MIB + 1) as u64),
        "{error:?}"
    );

    // Without a length, and without end: refused once 4 MiB have come.
    let endless = LocalUpstream::start(axum::Router::new().fallback(|| async {
        static SPACES: [u8; 64 * 1024] = [b' '; 64 * 1024];
        let chunks =
            futures::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from_static(&SPACES)));
        ([(CONTENT_TYPE, OCI_MANIFEST)], Body::from_stream(chunks))
    }))
    .await;
    let started = Instant::now();
    let error = client
        .manifest(&reference(&endless.host(), "a/b:c"), &access)
        .await
        .expect_err("a body without end");
    assert!(
        matches!(error, UpstreamError::TooLarge { size: None, .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(error.to_string().contains("limit"), "{error}");
}

#[tokio::test]
async fn a_stalled_answer_times_out() {
    let upstream = LocalUpstream::start(axum::Router::new().fallback(|| async {
        let body = futures::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"schemaVersion\":"))
        })
        .chain(futures::stream::pending());
        (
            [
                (CONTENT_TYPE, OCI_MANIFEST.to_owned()),
                (CONTENT_LENGTH, "1000".to_owned()),
            ],
            Body::from_stream(body),
        )
    }))
    .await;
    let client = UpstreamClient::new(UpstreamSettings {
        read_timeout: Duration::from_secs(1),
        ..UpstreamSettings::default()
    })
    .expect("client");
    let started = Instant::now();
    let error = client
        .manifest(
            &reference(&upstream.host(), "a/b:c"),
            &UpstreamAccess::anonymous().insecure(true),
        )
        .await
        .expect_err("a body that stops");
    assert!(matches!(error, UpstreamError::TimedOut { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// The reference registry with token authentication

#[tokio::test]
async fn reference_registry_with_bearer_tokens() {
    let issuer = TokenIssuer::start("puller").await;
    let Some(upstream) = ReferenceRegistry::start_with_tokens(&issuer).await else {
        return;
    };
    let pusher = upstream
        .client()
        .with_bearer(&issuer.mint("team/app", &["pull", "push"]));
    let image = pusher.push_image("team/app", "v1").await;
    let other = pusher.push_image("team/app", "v2").await;

    // Two CA files: the registry's and the token service's.
    let client = client_trusting(&[&upstream.ca.ca_path, &issuer.ca.ca_path]);
    let access =
        UpstreamAccess::with_credentials(UpstreamCredentials::new(&issuer.user, &issuer.password));
    let host = &upstream.host;
    let token_requests_before = issuer.requests();

    let got = client
        .manifest(&reference(host, "team/app:v1"), &access)
        .await
        .expect("manifest with a token");
    assert_eq!(got.bytes.as_ref(), image.manifest.bytes.as_slice());
    assert_eq!(got.digest.as_str(), image.digest);
    // The anonymous attempt and the one with the token; one token request.
    assert_eq!(client.requests_to(host), 2);
    assert_eq!(issuer.requests(), token_requests_before + 1);

    // The token is cached: one request, no token request.
    let second = client
        .manifest(
            &reference(host, &format!("team/app@{}", other.digest)),
            &access,
        )
        .await
        .expect("manifest with the cached token");
    assert_eq!(second.digest.as_str(), other.digest);
    let mut tags = client
        .tags(
            &registry_host(host),
            &"team/app".parse().unwrap(),
            &access,
            None,
        )
        .await
        .expect("tags with the cached token");
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(client.requests_to(host), 4);
    assert_eq!(issuer.requests(), token_requests_before + 1);

    let wrong = client_trusting(&[&upstream.ca.ca_path, &issuer.ca.ca_path])
        .manifest(
            &reference(host, "team/app:v1"),
            &UpstreamAccess::with_credentials(UpstreamCredentials::new(&issuer.user, "wrong")),
        )
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(wrong, UpstreamError::Unauthorized { .. }),
        "{wrong:?}"
    );
    assert!(wrong.to_string().contains("refused"), "{wrong}");

    let anonymous = client_trusting(&[&upstream.ca.ca_path, &issuer.ca.ca_path])
        .manifest(
            &reference(host, "team/app:v1"),
            &UpstreamAccess::anonymous(),
        )
        .await
        .expect_err("an anonymous pull");
    assert!(
        matches!(anonymous, UpstreamError::Unauthorized { .. }),
        "{anonymous:?}"
    );
}
