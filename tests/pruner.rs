//! The image pruner against the real `berth` process: on the embedded
//! database and on PostgreSQL (blobs on the filesystem).
//!
//! - What a run removes and keeps: revisions beyond `keepTagRevisions` and
//!   older than `keepYoungerThan` go, with the images and blobs only they
//!   kept; the current revision, young revisions, an index's child kept by
//!   a tag, a referrer of a kept image and a blob shared with a kept image
//!   stay. The boundaries of both rules. A dry run lists the same and
//!   changes nothing.
//! - The CLI: `berth adm prune images` (dry run, `--confirm`),
//!   `berth adm pruner set|status`, the history limits.
//! - The schedule: a cron schedule runs the pruner on time, once; suspended,
//!   it does not; a time that comes while another run goes on is skipped,
//!   and the next one runs.
//! - One run at a time: a prune asked for while another goes on is refused
//!   (on PostgreSQL, asked of a second replica).
//! - Two replicas behind nginx on SeaweedFS and PostgreSQL: settings set
//!   through one hold for both, a scheduled time runs once across them.
//! - A run killed between trimming and collecting
//!   (`BERTH_TEST_CRASH_AT=prune-after-trim`): after the restart every kept
//!   image pulls whole, the killed run shows as interrupted, and the next
//!   run removes what the first one left.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::*;

const PASSWORD: &str = "pruner-test-password";
const GRACE: Duration = Duration::from_secs(1);
const PRUNES: &str = "/api/v1/imagepruners/cluster/prunes";

fn serve(data: &Path, database: Option<&PgDatabase>) -> ServeCommand {
    let mut serve = BerthProcess::serve(data)
        .admin_password(PASSWORD)
        .env("BERTH_GC_BLOB_GRACE_PERIOD", "1s")
        .env("BERTH_JOBS_POLL_INTERVAL", "200ms")
        .env("BERTH_JOBS_LEASE", "3s")
        .env("BERTH_PRUNER_CHECK_INTERVAL", "1s")
        .env("NO_COLOR", "1");
    if let Some(db) = database {
        serve = serve
            .env("BERTH_DATABASE_URL", &db.url)
            .env("BERTH_DATABASE_MAX_CONNECTIONS", "8");
    }
    serve
}

/// `POST …/prunes`: the run (or dry run), ended.
async fn prune(client: &RegistryClient, spec: Value) -> Value {
    let answer = client.api_post(PRUNES, json!({ "spec": spec })).await;
    let run = answer.ok(200).clone();
    assert_eq!(run["kind"], "ImagePrune", "{run}");
    assert_eq!(run["status"]["outcome"], "Succeeded", "{run}");
    run
}

/// `(tag, generation)` of the revisions a run lists.
fn revisions(run: &Value) -> BTreeSet<(String, i64)> {
    run["status"]["revisions"]
        .as_array()
        .expect("status.revisions")
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap().to_owned(),
                r["generation"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The generations of `repo`'s tag history, newest first.
async fn history(client: &RegistryClient, repo: &str, tag: &str) -> Vec<i64> {
    let (ns, name) = repo.split_once('/').unwrap();
    let stream = client
        .api_get(&format!("/api/v1/namespaces/{ns}/imagestreams/{name}"))
        .await;
    let stream = stream.ok(200);
    stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == tag)
        .map(|t| {
            t["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["generation"].as_i64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn manifest_status(client: &RegistryClient, repo: &str, digest: &str) -> StatusCode {
    client.get_manifest(repo, digest).await.status()
}

/// Five images pushed in turn as `ns/app:latest` (generation 1 first), the
/// first and the last sharing a layer; the last signed.
struct Pushed {
    images: Vec<Image>,
    signature_of_current: Image,
    signature_of_first: Image,
    child: Image,
}

async fn push_history(client: &RegistryClient) -> Pushed {
    let shared = blob_content("shared by the first and the last", 2048);
    let mut images = Vec::new();
    for i in 0..5 {
        let mut layers = vec![blob_content(&format!("layer of image {i}"), 1000 + i)];
        if i == 0 || i == 4 {
            layers.push(shared.clone());
        }
        let image = Image::new(&format!("image {i}"), layers);
        image.push(client, "ns/app", "latest").await;
        images.push(image);
    }
    let signature_of_current = Image::referrer("signature of the last", &images[4].manifest);
    signature_of_current
        .push(client, "ns/app", &signature_of_current.digest())
        .await;
    let signature_of_first = Image::referrer("signature of the first", &images[0].manifest);
    signature_of_first
        .push(client, "ns/app", &signature_of_first.digest())
        .await;
    // An index tagged in another repository keeps its child, untagged.
    let child = Image::new("child", vec![blob_content("child layer", 700)]);
    child.push(client, "ns/multi", &child.digest()).await;
    client
        .push_manifest("ns/multi", "v1", &index_of(&[&child]))
        .await;
    Pushed {
        images,
        signature_of_current,
        signature_of_first,
        child,
    }
}

// ---------------------------------------------------------------------------
// What is removed, what is kept.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prunes_old_revisions_on_the_embedded_database() {
    prunes_old_revisions(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prunes_old_revisions_on_postgres() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    prunes_old_revisions(Some(&database)).await;
}

async fn prunes_old_revisions(database: Option<&PgDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let berth = serve(&data, database).start().await;
    let client = berth.client();
    let pushed = push_history(client).await;
    let images = &pushed.images;
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4, 3, 2, 1]);
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    // The young are kept whatever their number.
    let run = prune(
        client,
        json!({"keepTagRevisions": 0, "keepYoungerThanDuration": "1h", "namespace": "ns"}),
    )
    .await;
    assert!(revisions(&run).is_empty(), "{run}");
    // Nothing is old enough to trim but the count: the current revision
    // stays even when none is to be kept.
    let run = prune(
        client,
        json!({"keepTagRevisions": 0, "keepYoungerThanDuration": "0s", "namespace": "ns"}),
    )
    .await;
    let latest = |gens: &[i64]| -> BTreeSet<(String, i64)> {
        gens.iter().map(|g| ("latest".to_owned(), *g)).collect()
    };
    assert_eq!(revisions(&run), latest(&[1, 2, 3, 4]), "{run}");
    assert_eq!(run["spec"]["dryRun"], true);
    // Not recorded, so it has no name to be followed by.
    assert_eq!(run["metadata"].get("name"), None, "{run}");

    // Keep two: the dry run lists generations 1-3, their images, and the
    // blobs only they (and the first image's signature) hold.
    let run = prune(
        client,
        json!({"keepTagRevisions": 2, "keepYoungerThanDuration": "0s", "namespace": "ns"}),
    )
    .await;
    assert_eq!(revisions(&run), latest(&[1, 2, 3]), "{run}");
    let removed_manifests: BTreeSet<String> = run["status"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "Manifest")
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = images[..3]
        .iter()
        .map(Image::digest)
        .chain([pushed.signature_of_first.digest()])
        .collect();
    assert_eq!(removed_manifests, expected, "{run}");
    let mut doomed_blobs: BTreeSet<String> = BTreeSet::new();
    for image in &images[..3] {
        doomed_blobs.insert(sha256(&image.config));
        doomed_blobs.insert(sha256(&image.layers[0]));
    }
    doomed_blobs.insert(sha256(&pushed.signature_of_first.layers[0]));
    let removed_blobs: BTreeSet<String> = run["status"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "Blob")
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(removed_blobs, doomed_blobs, "{run}");
    // A dry run changed nothing.
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4, 3, 2, 1]);
    for image in images {
        assert_pulls(client, "ns/app", &image.digest(), image).await;
    }
    // Those pulls touched the blobs (as a push's reads would): they are
    // kept for a grace period.
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    // The run: the same, done.
    let run = prune(
        client,
        json!({"dryRun": false, "keepTagRevisions": 2, "keepYoungerThanDuration": "0s",
               "namespace": "ns"}),
    )
    .await;
    assert_eq!(run["status"]["trigger"], "Manual");
    assert_eq!(revisions(&run), latest(&[1, 2, 3]), "{run}");
    assert_eq!(run["status"]["revisionsRemoved"], 3, "{run}");
    assert_eq!(run["status"]["manifestsRemoved"], 4, "{run}");
    assert_eq!(
        run["status"]["blobsRemoved"],
        doomed_blobs.len() as u64,
        "{run}"
    );
    assert!(run["status"]["garbageCollection"].is_string(), "{run}");
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4]);
    for image in &images[..3] {
        assert_eq!(
            manifest_status(client, "ns/app", &image.digest()).await,
            StatusCode::NOT_FOUND
        );
    }
    let stored = stored_blobs(&data);
    for digest in &doomed_blobs {
        assert!(!stored.contains(digest), "{digest} is still stored");
    }
    // Kept: the two newest, the shared layer, the current image's
    // signature, the tagged index's child.
    assert_pulls(client, "ns/app", "latest", &images[4]).await;
    assert_pulls(client, "ns/app", &images[3].digest(), &images[3]).await;
    let signature = &pushed.signature_of_current;
    assert_pulls(client, "ns/app", &signature.digest(), signature).await;
    assert_pulls(client, "ns/multi", &pushed.child.digest(), &pushed.child).await;

    // The run is in the pruner's status.
    let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
    let pruner = pruner.ok(200);
    assert_eq!(
        pruner["status"]["runs"][0]["metadata"]["name"],
        run["metadata"]["name"]
    );
    let failed = pruner["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap();
    assert_eq!(failed["status"], "False", "{pruner}");
    assert_eq!(failed["reason"], "LastRunSucceeded", "{pruner}");
}

/// Bad requests are refused with the API's errors and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let berth = serve(&dir.path().join("data"), None).start().await;
    let client = berth.client();
    for (spec, message) in [
        (json!({"schedule": "0 0 * *"}), "five fields"),
        (json!({"schedule": "61 * * * *"}), "schedule"),
        (
            json!({"keepYoungerThanDuration": "soon"}),
            "keepYoungerThanDuration",
        ),
    ] {
        let answer = client
            .api(
                Method::PATCH,
                "/api/v1/imagepruners/cluster",
                Some(&json!({ "spec": spec })),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{spec}");
        let body: Value = answer.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
    assert_eq!(pruner.ok(200)["spec"]["schedule"], "0 0 * * *");
    let answer = client.api_get("/api/v1/imagepruners/other").await;
    answer.ok(404);
    let answer = client
        .api_post(PRUNES, json!({"spec": {"namespace": "no-such-namespace"}}))
        .await;
    answer.ok(404);
    // Not a cluster admin: refused.
    client
        .api_post(
            "/api/v1/users",
            json!({"metadata": {"name": "dev"}, "password": "dev-password-1"}),
        )
        .await
        .ok(201);
    let dev = client.with_credentials("dev", "dev-password-1");
    let answer = dev.api_get("/api/v1/imagepruners/cluster").await;
    answer.ok(403);
    let answer = dev.api_post(PRUNES, json!({"spec": {}})).await;
    answer.ok(403);
}

// ---------------------------------------------------------------------------
// The CLI, the schedule, the history limits.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prunes_and_the_schedule_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let berth = serve(&dir.path().join("data"), None).start().await;
    let client = berth.client();
    let host = berth.addr.to_string();
    let cli = CliHome::new();
    cli.login(&host, "admin", PASSWORD);
    let pushed = push_history(client).await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    cli.fails(&["adm", "prune", "images"], "--namespace NS");
    let prune_args = [
        "adm",
        "prune",
        "images",
        "--namespace",
        "ns",
        "--keep-tag-revisions",
        "3",
        "--keep-younger-than",
        "0s",
    ];
    let out = cli.ok(&prune_args);
    assert!(
        out.starts_with("Dry run: would remove 2 tag revisions, 0 expired tags, 3 images and "),
        "{out}"
    );
    assert!(out.contains(&pushed.images[0].digest()), "{out}");
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4, 3, 2, 1]);
    let out = cli.ok(&[&prune_args[..], &["--confirm"]].concat());
    assert!(
        out.contains(": Succeeded; removed 2 tag revisions, 0 expired tags, 3 images and "),
        "{out}"
    );
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4, 3]);

    // Settings, and the history limit: of three succeeded runs one is kept.
    let out = cli.ok(&[
        "adm",
        "pruner",
        "set",
        "--keep-tag-revisions",
        "1",
        "--keep-younger-than",
        "0s",
        "--successful-jobs-history-limit",
        "1",
    ]);
    assert!(
        out.contains("Keep:              1 tag revisions; revisions younger than 0s"),
        "{out}"
    );
    for _ in 0..2 {
        cli.ok(&["adm", "prune", "images", "--all", "--confirm"]);
    }
    let status: Value =
        serde_json::from_str(&cli.ok(&["adm", "pruner", "status", "-o", "json"])).unwrap();
    assert_eq!(
        status["status"]["runs"].as_array().unwrap().len(),
        1,
        "{status}"
    );
    assert_eq!(history(client, "ns/app", "latest").await, [5]);

    // A schedule every minute: the job runs the pruner once at the next
    // minute, with the pruner's rules.
    pushed.images[0].push(client, "ns/app", "latest").await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    let out = cli.ok(&["adm", "pruner", "set", "--schedule", "* * * * *"]);
    assert!(
        out.contains("Schedule:          * * * * * (next: "),
        "{out}"
    );
    let before: BTreeSet<String> = status["status"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let started = Instant::now();
    let scheduled = loop {
        let status: Value =
            serde_json::from_str(&cli.ok(&["adm", "pruner", "status", "-o", "json"])).unwrap();
        let run = status["status"]["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| !before.contains(r["metadata"]["name"].as_str().unwrap()))
            .cloned();
        if let Some(run) = run
            && run["status"]["outcome"].is_string()
        {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no scheduled run within 90 s: {status}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(scheduled["status"]["trigger"], "Schedule", "{scheduled}");
    assert_eq!(scheduled["status"]["outcome"], "Succeeded", "{scheduled}");
    assert_eq!(scheduled["status"]["revisionsRemoved"], 1, "{scheduled}");
    assert_eq!(history(client, "ns/app", "latest").await, [6]);
    assert_pulls(client, "ns/app", "latest", &pushed.images[0]).await;

    // Suspended: said so, and no run is scheduled.
    let out = cli.ok(&["adm", "pruner", "set", "--suspend"]);
    assert!(out.contains("* * * * * (suspended)"), "{out}");
    let status: Value =
        serde_json::from_str(&cli.ok(&["adm", "pruner", "status", "-o", "json"])).unwrap();
    let scheduled_condition = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Scheduled")
        .cloned()
        .unwrap();
    assert_eq!(scheduled_condition["status"], "False", "{status}");
    assert_eq!(scheduled_condition["reason"], "Suspended", "{status}");
    assert!(status["status"]["nextScheduledTime"].is_null(), "{status}");
}

// ---------------------------------------------------------------------------
// One run at a time.

/// A prune asked for while another goes on is refused (`409`, naming the
/// run) and records nothing; the run going on is not taken for dead (it
/// ends `Succeeded`), and the next prune, once it has ended, runs. On
/// PostgreSQL the refused prune is asked of a second replica (same
/// database, same blob directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_while_another_goes_on_is_refused_on_the_embedded_database() {
    one_prune_at_a_time(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_while_another_goes_on_is_refused_on_postgres() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    one_prune_at_a_time(Some(&database)).await;
}

async fn one_prune_at_a_time(database: Option<&PgDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The collection crawls: one blob a batch, each followed by a rest 99
    // times as long as the batch worked.
    let berth = serve(&data, database)
        .env("BERTH_GC_BUSY_PERCENT", "1")
        .env("BERTH_GC_BATCH_SIZE", "1")
        .start()
        .await;
    let client = berth.client();
    let other = match database {
        Some(_) => Some(
            serve(&dir.path().join("other"), database)
                .env(
                    "BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY",
                    data.join("storage").display().to_string(),
                )
                .start()
                .await,
        ),
        None => None,
    };
    let refuser = other.as_ref().map_or(client, |o| o.client());
    push_history(client).await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    let spec = json!({"dryRun": false, "keepTagRevisions": 2, "keepYoungerThanDuration": "0s",
                      "namespace": "ns"});

    let first = {
        let (client, spec) = (client.clone(), spec.clone());
        tokio::spawn(async move { prune(&client, spec).await })
    };
    let going = loop {
        let runs = client.api_get("/api/v1/imagepruners/cluster").await;
        let newest = runs.ok(200)["status"]["runs"][0].clone();
        if newest["status"]["phase"] == "collecting" {
            break newest;
        }
        assert!(
            !first.is_finished(),
            "the first run ended too soon: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = going["metadata"]["name"].as_str().unwrap().to_owned();
    let refused = refuser.api_post(PRUNES, json!({ "spec": spec })).await;
    refused.failure(409, "Conflict");
    assert_eq!(
        refused.body["message"],
        format!("image pruning run {id} is going on; try again once it has ended")
    );
    let first = first.await.unwrap();
    assert_eq!(first["metadata"]["name"], id.as_str());
    assert_eq!(first["status"]["outcome"], "Succeeded", "{first}");
    assert!(
        first["status"]["blobsRemoved"].as_u64().unwrap() > 1,
        "{first}"
    );
    let next = prune(client, spec).await;
    assert_ne!(next["metadata"]["name"], id.as_str());
    let runs = client.api_get("/api/v1/imagepruners/cluster").await;
    let outcomes: Vec<&str> = runs.ok(200)["status"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"]["outcome"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(
        outcomes,
        ["Succeeded", "Succeeded"],
        "the refused one is not recorded"
    );
}

// ---------------------------------------------------------------------------
// Killed between trimming and collecting.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_killed_midway_loses_nothing_and_the_next_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut berth = serve(&data, None)
        .env("BERTH_TEST_CRASH_AT", "prune-after-trim")
        .start()
        .await;
    let pushed = push_history(berth.client()).await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    let spec = json!({"spec": {"dryRun": false, "keepTagRevisions": 2,
                               "keepYoungerThanDuration": "0s", "namespace": "ns"}});
    berth.post_to_crash_point(PRUNES, &spec).await;

    let berth = serve(&data, None).start().await;
    let client = berth.client();
    // The trimming committed; nothing was collected; every image pulls.
    assert_eq!(history(client, "ns/app", "latest").await, [5, 4]);
    for image in &pushed.images {
        assert_pulls(client, "ns/app", &image.digest(), image).await;
    }
    let run = prune(
        client,
        json!({"dryRun": false, "keepTagRevisions": 2, "keepYoungerThanDuration": "0s",
               "namespace": "ns"}),
    )
    .await;
    assert_eq!(run["status"]["revisionsRemoved"], 0, "{run}");
    assert_eq!(run["status"]["manifestsRemoved"], 4, "{run}");
    for image in &pushed.images[..3] {
        assert_eq!(
            manifest_status(client, "ns/app", &image.digest()).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_pulls(client, "ns/app", "latest", &pushed.images[4]).await;
    let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
    let outcomes: Vec<&str> = pruner.ok(200)["status"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"]["outcome"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(outcomes, ["Succeeded", "Interrupted"]);
}

/// A scheduled time that comes while another run goes on is skipped, as a
/// CronJob with `concurrencyPolicy: Forbid` skips it, and not made up
/// once that run ends: the next scheduled time runs. The run going on is
/// one another replica would hold (no outcome, a fresh heartbeat), written
/// into the embedded database beside the running berth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_time_while_a_run_goes_on_is_skipped() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let berth = serve(&data, None).start().await;
    let client = berth.client();
    let database = format!("sqlite://{}", data.join("berth.db").display());
    let mut db = sqlx::SqliteConnection::connect(&database).await.unwrap();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    sqlx::query(
        "INSERT INTO prune_runs (id, replica, trigger_kind, started_at, phase, options, \
         heartbeat_at) VALUES ('held', 'elsewhere', 'Manual', $1, 'trimming', '{}', $2)",
    )
    .bind(now_ms())
    .bind(now_ms() + 3_600_000)
    .execute(&mut db)
    .await
    .unwrap();
    let answer = client
        .api(
            Method::PATCH,
            "/api/v1/imagepruners/cluster",
            Some(&json!({"spec": {"schedule": "* * * * *"}})),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);

    let scheduled_runs = async || {
        let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
        let runs = pruner.ok(200)["status"]["runs"].as_array().unwrap().clone();
        runs.into_iter()
            .filter(|r| r["status"]["trigger"] == "Schedule")
            .collect::<Vec<Value>>()
    };
    let started = Instant::now();
    while !berth.log().contains("scheduled image pruning skipped") {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no scheduled time skipped within 90 s: {}",
            berth.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(berth.log().contains("run=held"), "{}", berth.log_tail());
    assert_eq!(scheduled_runs().await, Vec::<Value>::new());

    // The run ends: the time skipped is not made up, the next one runs.
    sqlx::query("UPDATE prune_runs SET outcome = 'Succeeded', finished_at = $1 WHERE id = 'held'")
        .bind(now_ms())
        .execute(&mut db)
        .await
        .unwrap();
    let ended = Instant::now();
    let run = loop {
        if let Some(run) = scheduled_runs()
            .await
            .into_iter()
            .find(|r| r["status"]["outcome"].is_string())
        {
            break run;
        }
        assert!(
            ended.elapsed() < Duration::from_secs(90),
            "no scheduled run within 90 s: {}",
            berth.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(run["status"]["outcome"], "Succeeded", "{run}");
    // Not at once (the skipped time made up), but at the next minute.
    assert!(
        ended.elapsed() >= Duration::from_secs(30),
        "a scheduled run {:?} after the run going on ended: {run}",
        ended.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Several replicas on object storage.

/// Two replicas behind nginx on SeaweedFS's S3 and PostgreSQL: settings
/// changed through one hold for both, a scheduled time is run once (not
/// once per replica), and what it removed is gone from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_two_replicas_a_scheduled_time_runs_once() {
    let Some(mini) = SeaweedMini::start().await else {
        return;
    };
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut env = mini.berth_env();
    env.extend(
        [
            ("BERTH_DATABASE_URL", database.url.as_str()),
            ("BERTH_GC_BLOB_GRACE_PERIOD", "1s"),
            ("BERTH_JOBS_POLL_INTERVAL", "200ms"),
            ("BERTH_JOBS_LEASE", "3s"),
            ("BERTH_PRUNER_CHECK_INTERVAL", "1s"),
            ("BERTH_DISABLE_REDIRECT", "true"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let Some(set) = Replicas::start(dir.path(), 2, PASSWORD, &env).await else {
        return;
    };
    let client = &set.client;
    let pushed = push_history(client).await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    let answer = client
        .api(
            Method::PATCH,
            "/api/v1/imagepruners/cluster",
            Some(
                &json!({"spec": {"schedule": "* * * * *", "keepTagRevisions": 2,
                                  "keepYoungerThanDuration": "0s"}}),
            ),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    // Both replicas see the settings.
    for replica in &set.replicas {
        let pruner = replica
            .client()
            .api_get("/api/v1/imagepruners/cluster")
            .await;
        assert_eq!(pruner.ok(200)["spec"]["schedule"], "* * * * *");
    }
    let started = Instant::now();
    let runs = loop {
        let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
        let runs = pruner.ok(200)["status"]["runs"].as_array().unwrap().clone();
        if runs.iter().any(|r| r["status"]["outcome"] == "Succeeded") {
            break runs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no scheduled run within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Every replica looked every second; one took the time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pruner = client.api_get("/api/v1/imagepruners/cluster").await;
    let all = pruner.ok(200)["status"]["runs"].as_array().unwrap().clone();
    let minute = |r: &Value| r["status"]["startTime"].as_str().unwrap()[..16].to_owned();
    let first_minute = minute(&runs[0]);
    let in_that_minute = all.iter().filter(|r| minute(r) == first_minute).count();
    assert_eq!(in_that_minute, 1, "{all:?}");
    assert_eq!(runs[0]["status"]["trigger"], "Schedule");
    assert_eq!(runs[0]["status"]["revisionsRemoved"], 3, "{runs:?}");
    for replica in &set.replicas {
        let client = replica.client();
        for image in &pushed.images[..3] {
            assert_eq!(
                manifest_status(client, "ns/app", &image.digest()).await,
                StatusCode::NOT_FOUND
            );
        }
        assert_pulls(client, "ns/app", "latest", &pushed.images[4]).await;
        assert_pulls(
            client,
            "ns/app",
            &pushed.images[3].digest(),
            &pushed.images[3],
        )
        .await;
    }
}
