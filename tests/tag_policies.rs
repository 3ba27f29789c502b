//! Tag expiration and immutable tags against a real berth over a socket.
//!
//! - Expiry set by the image's `quay.expires-after` label (a config blob
//!   pushed over HTTP), by `tagExpiration.default`, and explicitly (the
//!   API's `expiresAfter`, `berth tag --expires-after`), explicit before
//!   label before default; an index gets no label. Just before the expiry
//!   the tag resolves, just after it is gone everywhere at once (GET and
//!   HEAD by tag `404 MANIFEST_UNKNOWN`, `tags/list`, the stream views),
//!   even where the pull cache held it; by digest the image stays. A push
//!   resets the expiry. Garbage collection removes the expired tag's row
//!   and its history keeps the revision (a rollback revives it).
//! - Immutable tags: a namespace's or repository's policy refuses moving
//!   (push of another digest, `berth tag`, API tag moves, an import of
//!   another image) and deleting (by tag, by digest) a covered tag with
//!   `403 DENIED` naming the policy and pattern (an import: the image's
//!   `Failure`); the same digest again and new tags are fine.
//! - Bad durations and patterns are `400`s saying what is wrong.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// An image whose config carries `labels`, pushed to `repo:tag` over
/// HTTP: its manifest digest, and when its manifest PUT started and ended
/// (the expiry is counted from a moment between the two).
async fn push_labelled(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    labels: Value,
) -> (String, Manifest, Window) {
    let config_bytes = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": [] },
    }))
    .unwrap();
    let layer_bytes = blob_content(&format!("{repo}:{tag}:{labels}"), 512);
    client.push_blob(repo, &config_bytes).await;
    client.push_blob(repo, &layer_bytes).await;
    let config = Descriptor::of(OCI_CONFIG, &config_bytes);
    let layer = Descriptor::of(OCI_LAYER, &layer_bytes);
    let manifest = Manifest::from_json(
        OCI_MANIFEST,
        &image_manifest(OCI_MANIFEST, &config, std::slice::from_ref(&layer)),
    );
    let started = Instant::now();
    let digest = client.push_manifest(repo, tag, &manifest).await;
    (digest, manifest, Window::since(started))
}

/// When a request that set an expiry started and ended: the tag surely
/// lives until `started` plus its lifetime, and is surely gone after
/// `ended` plus it.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    ended: Instant,
}

impl Window {
    fn since(started: Instant) -> Window {
        Window {
            started,
            ended: Instant::now(),
        }
    }

    /// Just before a 2 s lifetime runs out (a quarter of a second before).
    fn before_2s(&self) -> Instant {
        self.started + Duration::from_millis(1750)
    }

    /// Just after it (a quarter of a second after).
    fn after_2s(&self) -> Instant {
        self.ended + Duration::from_millis(2250)
    }
}

/// The status of a GET and of a HEAD of `repo:reference`, which must agree.
async fn resolves(client: &RegistryClient, repo: &str, reference: &str) -> bool {
    let get = client.get_manifest(repo, reference).await;
    let status = get.status();
    if status == StatusCode::NOT_FOUND {
        let answer = Answer::read(get).await;
        answer.oci_error(404, "MANIFEST_UNKNOWN");
    } else {
        assert_eq!(status, StatusCode::OK, "GET {repo}:{reference}");
    }
    let head = client.head_manifest(repo, reference).await.status();
    assert_eq!(head, status, "HEAD and GET of {repo}:{reference} agree");
    status == StatusCode::OK
}

/// The tags `status.tags` of a stream lists.
async fn stream_tags(client: &RegistryClient, ns: &str, name: &str) -> Vec<String> {
    let stream = client
        .api_get(&format!("/api/v1/namespaces/{ns}/imagestreams/{name}"))
        .await;
    stream.ok(200)["status"]["tags"]
        .as_array()
        .expect("status.tags")
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_owned())
        .collect()
}

fn istag(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/imagestreamtags/{name}")
}

fn tag_from(name: &str, expires_after: Option<&str>) -> Value {
    let mut body = json!({"tag": {"from": {"kind": "ImageStreamTag", "name": name}}});
    if let Some(after) = expires_after {
        body["expiresAfter"] = json!(after);
    }
    body
}

/// Sleeps until `at` (plus a margin past a boundary).
async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_expire_by_label_and_explicitly_and_garbage_collection_removes_them() {
    let registry = TestRegistry::start().await;
    let client = registry.client();
    let kept = client.push_image("proj/app", "keep").await;
    let (labelled, manifest, pushed) = push_labelled(
        client,
        "proj/app",
        "labelled",
        json!({"quay.expires-after": "2s", "other": "x"}),
    )
    .await;
    // An index has no label: its tag does not expire.
    let index = Manifest::from_json(
        OCI_INDEX,
        &index_manifest(OCI_INDEX, vec![manifest.descriptor().json()]),
    );
    client.push_manifest("proj/app", "idx", &index).await;

    // Before the expiry: pulled (twice, so the cache holds it), listed,
    // shown with its expiry.
    assert!(resolves(client, "proj/app", "labelled").await);
    assert!(resolves(client, "proj/app", "labelled").await);
    assert_eq!(client.tags("proj/app").await, ["idx", "keep", "labelled"]);
    let tag = client.api_get(&istag("proj", "app:labelled")).await;
    assert!(tag.ok(200)["expires"].is_string(), "{}", tag.body);
    assert!(tag.body["image"].is_object());
    assert_eq!(
        stream_tags(client, "proj", "app").await,
        ["idx", "keep", "labelled"]
    );
    // Just before it: still there.
    sleep_until(pushed.before_2s()).await;
    assert!(resolves(client, "proj/app", "labelled").await);

    // Just after it: gone from every view at once.
    sleep_until(pushed.after_2s()).await;
    assert!(!resolves(client, "proj/app", "labelled").await);
    assert_eq!(client.tags("proj/app").await, ["idx", "keep"]);
    assert_eq!(stream_tags(client, "proj", "app").await, ["idx", "keep"]);
    client
        .api_get(&istag("proj", "app:labelled"))
        .await
        .failure(404, "NotFound");
    // Deleting it finds nothing; by digest the image is still there.
    Answer::read(client.delete_manifest("proj/app", "labelled").await)
        .await
        .oci_error(404, "MANIFEST_UNKNOWN");
    assert!(resolves(client, "proj/app", &labelled).await);
    assert!(resolves(client, "proj/app", "idx").await);
    assert!(resolves(client, "proj/app", "keep").await);

    // Pushed again: back, with its expiry reset from this push.
    let started = Instant::now();
    client
        .push_manifest("proj/app", "labelled", &manifest)
        .await;
    let repushed = Window::since(started);
    assert!(resolves(client, "proj/app", "labelled").await);
    sleep_until(repushed.after_2s()).await;
    assert!(!resolves(client, "proj/app", "labelled").await);

    // Explicit: before the label, either way.
    let started = Instant::now();
    let short = client
        .api_put(
            &istag("proj", "app:short"),
            tag_from("app:keep", Some("2s")),
        )
        .await;
    let tagged = Window::since(started);
    assert!(short.ok(201)["expires"].is_string(), "{}", short.body);
    let long = client
        .api_put(
            &istag("proj", "app:long"),
            json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{labelled}")}},
                   "expiresAfter": "1h"}),
        )
        .await;
    long.ok(201);
    assert!(resolves(client, "proj/app", "short").await);
    sleep_until(tagged.after_2s()).await;
    assert!(!resolves(client, "proj/app", "short").await);
    // Tagged through the API, it had a spec: gone from the views too.
    client
        .api_get(&istag("proj", "app:short"))
        .await
        .failure(404, "NotFound");
    let stream = client
        .api_get("/api/v1/namespaces/proj/imagestreams/app")
        .await;
    let spec_tags: Vec<&str> = stream.ok(200)["spec"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!spec_tags.contains(&"short"), "{spec_tags:?}");
    assert!(spec_tags.contains(&"long"), "{spec_tags:?}");
    assert!(
        resolves(client, "proj/app", "long").await,
        "the explicit hour wins over the label's 2s"
    );
    // Tagging without an expiry takes the image's label.
    let started = Instant::now();
    client
        .api_put(
            &istag("proj", "app:copied"),
            json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{labelled}")}}}),
        )
        .await
        .ok(201);
    let copied = Window::since(started);
    assert!(resolves(client, "proj/app", "copied").await);
    sleep_until(copied.after_2s()).await;
    assert!(!resolves(client, "proj/app", "copied").await);

    // Bad durations: 400, saying so; nothing changed.
    for bad in ["soon", "0s", "2"] {
        let refused = client
            .api_put(&istag("proj", "app:bad"), tag_from("app:keep", Some(bad)))
            .await;
        refused.failure(400, "BadRequest");
        let message = refused.body["message"].as_str().unwrap();
        assert!(message.contains("expiresAfter"), "{message}");
    }
    assert!(!resolves(client, "proj/app", "bad").await);

    // Garbage collection removes the expired tags' rows; the history
    // keeps their revisions: a rollback of one brings it back.
    client.collect_garbage(false).await;
    assert!(
        resolves(client, "proj/app", &labelled).await,
        "the image stays"
    );
    assert!(resolves(client, "proj/app", &kept.digest).await);
    let rollback = format!("{}/rollback", istag("proj", "app:short"));
    let probe = client
        .api_post(&rollback, json!({"generation": 999_999}))
        .await;
    probe.failure(422, "Invalid");
    let message = probe.body["message"].as_str().unwrap().to_owned();
    let kept_generation: i64 = message
        .rsplit("its revisions: ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').split(", ").next())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("the history of short lists its revision: {message}"));
    let back = client
        .api_post(&rollback, json!({"generation": kept_generation}))
        .await;
    back.ok(200);
    assert!(resolves(client, "proj/app", "short").await);
    assert_eq!(
        stream_tags(client, "proj", "app").await,
        ["idx", "keep", "long", "short"]
    );
    registry.shutdown().await;
}

/// `tagExpiration.default` of 2 s, with a label overriding it, on
/// whatever database `url` names (PostgreSQL: the pull cache is the
/// shared one, kept by the database's notifications).
async fn default_expiry(url: Option<String>) {
    let registry = TestRegistry::start_with(|config| {
        config.tag_expiration.default = Some(Duration::from_secs(2));
        config.database.url = url;
    })
    .await;
    let client = registry.client();
    let started = Instant::now();
    client.push_image("team/svc", "nightly").await;
    let pushed = Window::since(started);
    push_labelled(
        client,
        "team/svc",
        "pinned",
        json!({"quay.expires-after": "1h"}),
    )
    .await;
    // A label that is no duration is ignored: the default applies.
    let (_, _, odd) = push_labelled(
        client,
        "team/svc",
        "odd",
        json!({"quay.expires-after": "whenever"}),
    )
    .await;
    // Read now, so that the pull cache holds the manifest and the list.
    assert!(resolves(client, "team/svc", "nightly").await);
    assert_eq!(client.tags("team/svc").await, ["nightly", "odd", "pinned"]);
    sleep_until(pushed.before_2s()).await;
    assert!(resolves(client, "team/svc", "nightly").await);
    assert_eq!(client.tags("team/svc").await, ["nightly", "odd", "pinned"]);
    sleep_until(pushed.after_2s()).await;
    assert!(!resolves(client, "team/svc", "nightly").await);
    // Its own push, later, set its expiry.
    sleep_until(odd.after_2s()).await;
    assert!(!resolves(client, "team/svc", "odd").await);
    assert!(resolves(client, "team/svc", "pinned").await);
    assert_eq!(client.tags("team/svc").await, ["pinned"]);
    // The next garbage collection removes the two; the stream shows one.
    client.collect_garbage(false).await;
    assert_eq!(stream_tags(client, "team", "svc").await, ["pinned"]);
    assert!(client.metric("berth_tags_expired_removed_total").await >= 2.0);
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_default_applies_unless_the_label_says_otherwise() {
    default_expiry(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_default_applies_on_postgresql_too() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    default_expiry(Some(database.url.clone())).await;
}

const POLICY: &str = "/api/v1/namespaces/rel/immutabletagpolicies";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_tags_refuse_moves_and_deletes_naming_the_policy() {
    let registry = TestRegistry::start().await;
    let client = registry.client();
    let one = client.push_image("rel/app", "v1").await;
    let two = client.push_image("rel/app", "latest").await;

    // Bad inputs first: 400s naming what is wrong.
    for (body, says) in [
        (json!({"patterns": ["v["]}), "tag pattern \"v[\" is invalid"),
        (json!({"patterns": []}), "at least one tag pattern"),
        (
            json!({"repository": "Bad Name", "patterns": ["v*"]}),
            "repository \"Bad Name\"",
        ),
    ] {
        let refused = client.api_put(POLICY, body).await;
        refused.failure(400, "BadRequest");
        let message = refused.body["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    client.api_delete(POLICY).await.failure(404, "NotFound");

    let set = client
        .api_put(POLICY, json!({"patterns": ["v*", "release-?"]}))
        .await;
    let policy = set.ok(200);
    assert_eq!(policy["kind"], "ImmutableTagPolicy");
    assert_eq!(policy["metadata"]["name"], "rel");
    assert_eq!(policy["spec"]["patterns"], json!(["v*", "release-?"]));
    let list = client.api_get(POLICY).await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);

    let moved = "tag \"v1\" of \"rel/app\" is immutable and cannot be moved to another image: \
                 it matches \"v*\" of the immutable-tags policy of namespace \"rel\"";
    let deleted = "tag \"v1\" of \"rel/app\" is immutable and cannot be deleted: \
                   it matches \"v*\" of the immutable-tags policy of namespace \"rel\"";
    // The same digest again is fine; another one is refused.
    client.push_manifest("rel/app", "v1", &one.manifest).await;
    let refused = Answer::read(client.put_manifest("rel/app", "v1", &two.manifest).await);
    refused.await.denied(moved);
    // Deletes, by tag and by the digest the tag points at.
    Answer::read(client.delete_manifest("rel/app", "v1").await)
        .await
        .denied(deleted);
    Answer::read(client.delete_manifest("rel/app", &one.digest).await)
        .await
        .denied(deleted);
    // An image-stream tag move, and a delete through the API.
    let api_move = client
        .api_put(&istag("rel", "app:v1"), tag_from("app:latest", None))
        .await;
    api_move.failure(403, "Forbidden");
    assert_eq!(api_move.body["message"], moved, "{}", api_move.body);
    client
        .api_delete(&istag("rel", "app:v1"))
        .await
        .failure(403, "Forbidden");
    assert_eq!(pulled_digest(client, "rel/app", "v1").await, one.digest);

    // New matching tags are made freely; uncovered tags move freely.
    client.push_manifest("rel/app", "v2", &two.manifest).await;
    client
        .push_manifest("rel/app", "release-1", &two.manifest)
        .await;
    client
        .push_manifest("rel/app", "latest", &one.manifest)
        .await;
    client
        .push_manifest("rel/app", "release-10", &one.manifest)
        .await;
    client
        .push_manifest("rel/app", "release-10", &two.manifest)
        .await;

    // A repository's own policy names the repository.
    client.push_image("rel/other", "stable").await;
    client
        .api_put(
            POLICY,
            json!({"repository": "other", "patterns": ["stable"]}),
        )
        .await
        .ok(200);
    Answer::read(client.delete_manifest("rel/other", "stable").await)
        .await
        .denied(
            "tag \"stable\" of \"rel/other\" is immutable and cannot be deleted: it matches \
         \"stable\" of the immutable-tags policy of repository \"rel/other\"",
        );

    // Cleared: ordinary tags again.
    client.api_delete(POLICY).await.ok(200);
    client.push_manifest("rel/app", "v1", &two.manifest).await;
    expect_status(
        client.delete_manifest("rel/app", "v1").await,
        StatusCode::ACCEPTED,
    )
    .await;
    client
        .api_delete(&format!("{POLICY}?repository=other"))
        .await
        .ok(200);
    registry.shutdown().await;
}

async fn pulled_digest(client: &RegistryClient, repo: &str, tag: &str) -> String {
    let response = expect_status(client.get_manifest(repo, tag).await, StatusCode::OK).await;
    header(&response, "docker-content-digest")
}

// ---------------------------------------------------------------------------
// The CLI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_expiries_and_immutable_tags() {
    let lab = CliLab::start("cli-tag-policies-password").await;
    let (berth, cli) = (&lab.berth, &lab.cli);
    let a = berth.push_image("myproj/app", "1.0").await;
    berth.push_image("myproj/app", "2.0").await;
    cli.ok(&["project", "myproj"]);

    // berth tag --expires-after: said when, gone after.
    let started = Instant::now();
    let out = cli.ok(&["tag", "app:1.0", "app:preview", "--expires-after", "2s"]);
    let tagged = Window::since(started);
    assert!(out.contains("Tag app:preview set to app:1.0"), "{out}");
    assert!(out.contains("It expires at "), "{out}");
    assert!(resolves(berth, "myproj/app", "preview").await);
    sleep_until(tagged.after_2s()).await;
    assert!(!resolves(berth, "myproj/app", "preview").await);
    cli.fails(
        &[
            "tag",
            "app:1.0",
            "app:later",
            "--expires-after",
            "fortnight",
        ],
        "--expires-after: \"fortnight\" is not a duration such as 30s, 15m, 4h, 2d or 2w",
    );
    assert!(!resolves(berth, "myproj/app", "later").await);

    // berth set immutable-tags: set, shown, enforced, cleared.
    let out = cli.ok(&["set", "immutable-tags", "myproj", "1.*", "stable"]);
    assert!(
        out.contains("Tags of myproj matching 1.* stable are immutable."),
        "{out}"
    );
    cli.ok(&["set", "immutable-tags", "myproj/app", "v?"]);
    let out = cli.ok(&["set", "immutable-tags", "myproj", "--list"]);
    assert_eq!(out, "myproj\t1.* stable\nmyproj/app\tv?\n");
    cli.fails(
        &["tag", "app:2.0", "app:1.0"],
        "tag \"1.0\" of \"myproj/app\" is immutable and cannot be moved to another image: \
         it matches \"1.*\" of the immutable-tags policy of namespace \"myproj\"",
    );
    cli.fails(
        &["delete", "istag", "app:1.0"],
        "is immutable and cannot be deleted",
    );
    assert_eq!(pulled_digest(berth, "myproj/app", "1.0").await, a.digest);
    cli.fails(
        &["set", "immutable-tags", "myproj", "v[0-9]"],
        "tag pattern \"v[0-9]\" is invalid",
    );
    cli.ok(&["set", "immutable-tags", "myproj", "--clear"]);
    cli.ok(&["tag", "app:2.0", "app:1.0"]);
    let out = cli.ok(&["set", "immutable-tags", "myproj", "--list"]);
    assert_eq!(out, "myproj/app\tv?\n");
    cli.fails(&["set", "immutable-tags", "myproj", "--clear"], "not found");
}

/// An import overwriting an immutable tag with another image is refused,
/// and says why in the import's status; the tag keeps its image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_does_not_overwrite_an_immutable_tag() {
    use axum::extract::State;
    use axum::http::header;
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};

    type Served = Arc<Mutex<Vec<u8>>>;
    async fn manifest(State(served): State<Served>) -> axum::response::Response {
        let bytes = served.lock().unwrap().clone();
        (
            [
                (header::CONTENT_TYPE, OCI_MANIFEST.to_owned()),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    sha256(&bytes),
                ),
            ],
            bytes,
        )
            .into_response()
    }
    let image = |label: &str| {
        let config = Descriptor::of(OCI_CONFIG, &image_config(label));
        let layer = Descriptor::of(OCI_LAYER, &blob_content(label, 64));
        Manifest::from_json(
            OCI_MANIFEST,
            &image_manifest(OCI_MANIFEST, &config, std::slice::from_ref(&layer)),
        )
    };
    let (first, second) = (image("first"), image("second"));
    let served: Served = Arc::new(Mutex::new(first.bytes.clone()));
    let router = axum::Router::new()
        .route(
            "/v2/lib/app/manifests/{reference}",
            axum::routing::get(manifest),
        )
        .with_state(served.clone());
    let upstream = LocalUpstream::start(router).await;

    let registry = TestRegistry::start().await;
    let client = registry.client();
    client.create_project("rel").await;
    client
        .api_put(POLICY, json!({"patterns": ["v*"]}))
        .await
        .ok(200);
    let import = || async {
        let answer = client
            .api_post(
                "/api/v1/namespaces/rel/imagestreamimports",
                json!({"metadata": {"name": "app"}, "spec": {"import": true, "images": [{
                    "from": {"kind": "DockerImage", "name": format!("{}/lib/app:v1", upstream.host())},
                    "to": {"name": "v1"},
                    "importPolicy": {"insecure": true},
                }]}}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["status"]["images"][0]["status"].clone()
    };
    let status = import().await;
    assert_eq!(status["status"], "Success", "{status}");
    assert_eq!(pulled_digest(client, "rel/app", "v1").await, first.digest());

    *served.lock().unwrap() = second.bytes.clone();
    let status = import().await;
    assert_eq!(status["status"], "Failure", "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tag \"v1\" of \"rel/app\" is immutable and cannot be moved"),
        "{status}"
    );
    assert_eq!(pulled_digest(client, "rel/app", "v1").await, first.digest());
    registry.shutdown().await;
}
