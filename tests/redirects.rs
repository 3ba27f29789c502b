//! Blob reads redirected to the object store: with S3 (SeaweedFS), a blob
//! `GET` answers `307` to a short-lived signed URL that serves the bytes
//! without credentials, so pulls do not pass through berth;
//! `disableRedirect: true` streams them through berth instead. Real
//! clients (skopeo and podman) follow the redirect.
//!
//! A missing SeaweedFS skips these loudly, or fails them with
//! `BERTH_REQUIRE_OBJECT_STORES=1`; a missing client fails with
//! `BERTH_REQUIRE_CLIENTS=1`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use common::*;
use reqwest::{Method, StatusCode};

const PASSWORD: &str = "redirect-test-password";

async fn serve_on(
    mini: &SeaweedMini,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> BerthProcess {
    BerthProcess::serve(dir)
        .admin_password(PASSWORD)
        .envs(&mini.berth_env())
        .envs(extra)
        .start()
        .await
}

fn without_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const REDIRECTS: &str = "berth_blob_redirects_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_gets_redirect_to_a_signed_url_unless_disabled() {
    let Some(mini) = SeaweedMini::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let berth = serve_on(&mini, &dir.path().join("redirecting"), &[]).await;
    let content = blob_content("redirected", 3 * MIB + 11);
    let digest = berth.push_blob("proj/app", &content).await;
    let path = format!("/v2/proj/app/blobs/{digest}");
    let raw = without_redirects();

    // Authorized GET: a redirect to the store, nothing streamed by berth.
    let answer = raw
        .get(berth.client().url(&path))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&answer, "docker-content-digest"), digest);
    let location = header(&answer, "location");
    assert!(
        location.starts_with(&mini.endpoint),
        "{location} is not on the store {}",
        mini.endpoint
    );
    // The signed URL needs no credentials, and serves whole blobs and ranges.
    let fetched = raw.get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert!(fetched.bytes().await.unwrap() == content);
    let ranged = raw
        .get(&location)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert!(ranged.bytes().await.unwrap() == content[1000..2000]);
    // A client that follows redirects (and drops its credentials on the
    // way, as they must) reads the blob and its ranges through berth's URL.
    assert!(berth.blob_bytes("proj/app", &digest).await == content);
    let range = berth.get_blob_range("proj/app", &digest, "bytes=5-9").await;
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert!(range.bytes().await.unwrap() == content[5..10]);
    assert!(berth.metric(REDIRECTS).await >= 3.0);

    // HEAD is answered by berth.
    let head = berth.head_blob("proj/app", &digest).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), content.len().to_string());
    // No redirect for whoever may not pull, nor for a blob the repository
    // does not hold: the same answers as without redirects.
    let anonymous = raw.get(berth.client().url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let other = raw
        .get(
            berth
                .client()
                .url(&format!("/v2/proj/other/blobs/{digest}")),
        )
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_error(other, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let unsatisfiable = raw
        .get(berth.client().url(&path))
        .basic_auth("admin", Some(PASSWORD))
        .header("range", format!("bytes={}-", content.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // disableRedirect: the same store, read through berth.
    let streaming = serve_on(
        &mini,
        &dir.path().join("streaming"),
        &[("BERTH_DISABLE_REDIRECT", "true")],
    )
    .await;
    let answer = raw
        .get(streaming.client().url(&path))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    // The second replica shares the bucket but not the (embedded) database:
    // it holds the blob once pushed to it.
    assert_error(answer, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    streaming.push_blob("proj/app", &content).await;
    let answer = raw
        .request(Method::GET, streaming.client().url(&path))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.bytes().await.unwrap() == content);
    assert_eq!(streaming.metric(REDIRECTS).await, 0.0);
}

/// skopeo and podman pull an image whose blobs berth redirects to the
/// store, and get exactly what was pushed.
#[test]
fn real_clients_follow_the_redirect() {
    use lab::*;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(mini) = runtime.block_on(SeaweedMini::start()) else {
        return;
    };
    let missing = missing_tools(&["podman", "buildah", "skopeo"]);
    if !clients_present("real_clients_follow_the_redirect", &missing) {
        return;
    }
    let lab = Lab::start("python3".into(), |serve| serve.envs(&mini.berth_env()));
    let context = lab.mkdir("context");
    let content = format!("redirected {}\n", lab.nonce).into_bytes();
    let built = build_image(
        &lab,
        &context,
        "redirected",
        "oci",
        vec![("/redirected.txt".into(), content.clone())],
    );
    let creds = lab.admin_creds();
    let reference = format!("{}/proj/redirected:v1", lab.host);
    lab.podman_push_as_admin("podman push", &built.local, &reference);
    let before = lab.http("GET", "/metrics", false, &[]);
    let redirects =
        |reply: &HttpReply| -> f64 { metric_sum(&String::from_utf8_lossy(&reply.body), REDIRECTS) };

    // skopeo copies the image out through the redirects, checking each
    // blob's digest as it goes.
    let layout = lab.dir().join("layout");
    lab.ok(
        "skopeo copy out",
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{reference}"),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let after_skopeo = lab.http("GET", "/metrics", false, &[]);
    assert!(
        redirects(&after_skopeo) >= redirects(&before) + 2.0,
        "skopeo's config and layer reads were not redirected"
    );

    // podman pulls it afresh (the local copy removed first): the same
    // image, each blob checked against its digest by podman.
    lab.ok("podman rmi", "podman", &["rmi", "-f", &built.local]);
    lab.ok(
        "podman pull",
        "podman",
        &["pull", "--tls-verify=false", "--creds", &creds, &reference],
    );
    let after_podman = lab.http("GET", "/metrics", false, &[]);
    assert!(
        redirects(&after_podman) > redirects(&after_skopeo),
        "podman's reads were not redirected"
    );
    let inspected = lab.ok(
        "podman image inspect",
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", &reference],
    );
    assert_eq!(last_line(&inspected), built.id);
    drop(lab);
    drop(mini);
}
