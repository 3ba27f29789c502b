//! Scheduled re-import, against an upstream the test scripts: a tag
//! imported with `scheduled` picks up each new upstream image as a
//! revision; an upstream that answers `429` or is down sets the tag's
//! `ImportSuccess` condition and loses no history, and the next good check
//! clears it. On the embedded database, and on PostgreSQL with two
//! replicas, where the checks run on one replica at a time (the upstream
//! sees one check per interval, not one per replica).
//!
//! Run alone: `cargo test --test scheduled_imports -- --nocapture`.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{Value, json};

use common::{
    Answer, BerthProcess, PgDatabase, RegistryClient, StoppableServer, sha256, status_tag,
    tag_history,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ADMIN_PASSWORD: &str = "scheduled-imports-admin";
/// The interval the tests set (the default is 900 s).
const INTERVAL_SECONDS: u64 = 1;

/// What the scripted upstream answers for `lib/app:1`.
#[derive(Clone)]
enum Upstream {
    Serves(Vec<u8>),
    RateLimits,
    /// Bytes with a `Docker-Content-Digest` that is not theirs.
    Lies(Vec<u8>),
}

/// A valid image manifest, different for each `n` (its blobs need not
/// exist: an import copies none).
fn manifest(n: u32) -> Vec<u8> {
    let blob = |what: &str| sha256(format!("{what} {n}").as_bytes());
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob("config"), "size": 10},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob("layer"), "size": 20}]
    })
    .to_string()
    .into_bytes()
}

/// The scripted upstream, over plain HTTP on loopback. Dropping
/// [`ScriptedUpstream::stop`]'s result is the upstream going away: every
/// connection closed, new ones refused.
struct ScriptedUpstream {
    host: String,
    manifest_requests: Arc<Mutex<u64>>,
    server: StoppableServer,
}

impl ScriptedUpstream {
    async fn start(state: Arc<Mutex<Upstream>>) -> ScriptedUpstream {
        let manifest_requests = Arc::new(Mutex::new(0u64));
        let counted = manifest_requests.clone();
        let router = axum::Router::new()
            .route("/v2/", axum::routing::get(|| async { "{}" }))
            .route(
                "/v2/lib/app/manifests/{reference}",
                axum::routing::get(move || {
                    let state = state.clone();
                    let counted = counted.clone();
                    async move {
                        *counted.lock().unwrap() += 1;
                        let answer = state.lock().unwrap().clone();
                        match answer {
                            Upstream::Serves(bytes) => {
                                ([("content-type", OCI_MANIFEST)], bytes).into_response()
                            }
                            Upstream::Lies(bytes) => (
                                [
                                    ("content-type", OCI_MANIFEST.to_owned()),
                                    ("docker-content-digest", sha256(b"other bytes")),
                                ],
                                bytes,
                            )
                                .into_response(),
                            Upstream::RateLimits => (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "1")],
                                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                            )
                                .into_response(),
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        ScriptedUpstream {
            host,
            manifest_requests,
            server: StoppableServer::start(listener, router),
        }
    }

    fn manifest_requests(&self) -> u64 {
        *self.manifest_requests.lock().unwrap()
    }

    /// Closes every connection and the listener.
    async fn stop(mut self) {
        self.server.stop().await;
    }
}

async fn start_berth(data_dir: &Path, database: Option<&PgDatabase>) -> BerthProcess {
    let mut serve = BerthProcess::serve(data_dir)
        .admin_password(ADMIN_PASSWORD)
        .env(
            "BERTH_IMAGE_POLICY_SCHEDULED_IMAGE_IMPORT_MINIMUM_INTERVAL_SECONDS",
            INTERVAL_SECONDS.to_string(),
        )
        .env("BERTH_JOBS_POLL_INTERVAL", "1s");
    if let Some(database) = database {
        serve = serve.env("BERTH_DATABASE_URL", database.url.clone());
    }
    serve.start().await
}

const STREAM: &str = "/api/v1/namespaces/team/imagestreams/app";

async fn stream(client: &RegistryClient) -> Value {
    client.api_get(STREAM).await.ok(200).clone()
}

/// Imports the upstream's `lib/app:1` as tag `1` of stream `team/app`,
/// with `policy` as its importPolicy; the import must answer 201.
async fn import_tag_1(
    admin: &RegistryClient,
    upstream: &ScriptedUpstream,
    policy: Value,
) -> Answer {
    let from = format!("{}/lib/app:1", upstream.host);
    let answer = admin
        .api_call(
            Method::POST,
            "/api/v1/namespaces/team/imagestreamimports",
            Some(
                json!({"metadata": {"name": "app"}, "spec": {"import": true, "images": [{
                "from": {"kind": "DockerImage", "name": from},
                "to": {"name": "1"},
                "importPolicy": policy}]}}),
            ),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer
}

/// Tag `1`, the one these tests import.
fn tag_status(stream: &Value) -> Value {
    status_tag(stream, "1").cloned().unwrap_or(Value::Null)
}

fn history(stream: &Value) -> Vec<String> {
    tag_history(stream, "1")
}

fn condition_reason(stream: &Value) -> Option<String> {
    tag_status(stream)["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ImportSuccess")
        .map(|c| c["reason"].as_str().unwrap_or("").to_owned())
}

/// Polls the stream until `done` holds, for at most 30 s.
async fn wait_for(client: &RegistryClient, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let current = stream(client).await;
        if done(&current) {
            return current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: not within 30 s; the stream is {current:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The whole story against `replicas` (one or two berths on one database).
async fn story(replicas: &[&BerthProcess]) {
    let state = Arc::new(Mutex::new(Upstream::Serves(manifest(1))));
    let upstream = ScriptedUpstream::start(state.clone()).await;
    let admin = replicas[0].client();
    admin.create_project("team").await;
    import_tag_1(
        admin,
        &upstream,
        json!({"scheduled": true, "insecure": true}),
    )
    .await;
    let first = sha256(&manifest(1));
    assert_eq!(history(&stream(admin).await), vec![first.clone()]);

    // `berth tag --source=docker` records a tag the job imports at once.
    let from = format!("{}/lib/app:1", upstream.host);
    let answer = admin
        .api_call(
            Method::PUT,
            "/api/v1/namespaces/team/imagestreamtags/app:pending",
            Some(
                json!({"tag": {"from": {"kind": "DockerImage", "name": from},
                                "importPolicy": {"insecure": true}}}),
            ),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    wait_for(admin, "the tagged external image imported", |s| {
        s["status"]["tags"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["tag"] == "pending"))
            .is_some_and(|t| t["items"][0]["image"] == first.as_str())
    })
    .await;

    // A new image upstream becomes a revision.
    *state.lock().unwrap() = Upstream::Serves(manifest(2));
    let second = sha256(&manifest(2));
    let seen = wait_for(admin, "the new upstream image imported", |s| {
        history(s).first() == Some(&second)
    })
    .await;
    assert_eq!(history(&seen), vec![second.clone(), first.clone()]);
    let item = &tag_status(&seen)["items"][0];
    assert_eq!(item["cause"], "Import");
    assert_eq!(item["createdBy"], "system:scheduled-import");

    // Checks keep to the interval, whichever replicas run them: over 6 s
    // at most one check a second (plus one at either end).
    let before = upstream.manifest_requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let checks = upstream.manifest_requests() - before;
    assert!(
        (2..=8).contains(&checks),
        "{checks} checks in 6 s with a {INTERVAL_SECONDS} s interval on {} replica(s)",
        replicas.len()
    );
    // Unchanged checks add no revision.
    assert_eq!(history(&stream(admin).await).len(), 2);

    // Rate-limited: a condition, the history kept.
    *state.lock().unwrap() = Upstream::RateLimits;
    let limited = wait_for(admin, "the 429 recorded", |s| {
        condition_reason(s).as_deref() == Some("RateLimited")
    })
    .await;
    assert_eq!(history(&limited), vec![second.clone(), first.clone()]);

    // The upstream recovers with a third image: imported, the condition
    // cleared.
    *state.lock().unwrap() = Upstream::Serves(manifest(3));
    let third = sha256(&manifest(3));
    let recovered = wait_for(admin, "recovery after the 429", |s| {
        history(s).first() == Some(&third) && condition_reason(s).is_none()
    })
    .await;
    assert_eq!(
        history(&recovered),
        vec![third.clone(), second.clone(), first.clone()]
    );

    // The upstream goes away: a condition, the history kept, on every
    // replica.
    upstream.stop().await;
    let down = wait_for(admin, "the upstream down", |s| {
        condition_reason(s).as_deref() == Some("Unreachable")
    })
    .await;
    assert_eq!(history(&down), vec![third.clone(), second, first]);
    for replica in replicas {
        assert_eq!(history(&stream(replica.client()).await).len(), 3);
    }
    let failed = admin.metric("berth_scheduled_imports_total").await;
    assert!(failed > 0.0, "no scheduled import counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_reimport_on_the_embedded_database() {
    let tmp = tempfile::tempdir().unwrap();
    let berth = start_berth(&tmp.path().join("data"), None).await;
    story(&[&berth]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_reimport_on_postgres_with_two_replicas() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let first = start_berth(&tmp.path().join("replica-1"), Some(&database)).await;
    let second = start_berth(&tmp.path().join("replica-2"), Some(&database)).await;
    story(&[&first, &second]).await;
}

/// Imported manifests are checked as pushes are: one over 4 MiB, or whose
/// bytes are not the digest the upstream claims, is refused, and the tag's
/// condition says why; nothing is recorded.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_mislabelled_manifests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let berth = start_berth(&tmp.path().join("data"), None).await;
    let admin = berth.client();
    admin.create_project("team").await;
    let mut oversized: Value = serde_json::from_slice(&manifest(1)).unwrap();
    oversized["annotations"] = json!({"padding": "x".repeat(4 << 20)});
    for (upstream_says, reason) in [
        (
            Upstream::Serves(oversized.to_string().into_bytes()),
            "TooLarge",
        ),
        (Upstream::Lies(manifest(2)), "DigestMismatch"),
    ] {
        let upstream = ScriptedUpstream::start(Arc::new(Mutex::new(upstream_says))).await;
        let answer = import_tag_1(admin, &upstream, json!({"insecure": true})).await;
        let status = &answer.body["status"]["images"][0]["status"];
        assert_eq!(status["status"], "Failure", "{}", answer.body);
        assert_eq!(status["reason"], reason, "{}", answer.body);
        let current = stream(admin).await;
        assert_eq!(condition_reason(&current).as_deref(), Some(reason));
        assert!(history(&current).is_empty(), "{current}");
        upstream.stop().await;
    }
}
