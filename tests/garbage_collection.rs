//! Online garbage collection against the real `berth`: on the embedded
//! database and on PostgreSQL (blobs on the filesystem), and in the race on
//! object storage too (SeaweedFS's S3, when `weed` is installed).
//!
//! - What a run removes and keeps: unreferenced blobs past the grace period
//!   go, younger ones and those a HEAD touched stay; a deleted manifest's
//!   blobs go, blobs it shared stay; untagged manifests, an untagged index
//!   with its child, a referrer of a removed manifest go; a tagged index's
//!   child, a referrer of a kept image, an image in a tag's history stay; a
//!   blob's link into a repository that does not use it goes. A dry run
//!   lists the same and changes nothing. `berth adm gc` prints it.
//! - The race: pushes (the HTTP API and skopeo), mounts and pulls from
//!   several tasks while garbage collection runs in a loop with a grace
//!   period of one second; then every acknowledged image pulls with the
//!   right digests, and storage holds exactly the blobs they reference.
//!   `BERTH_TEST_GC_RACE_SECONDS` sets its length (default 15). The same
//!   race through two replicas behind nginx on SeaweedFS's S3 and
//!   PostgreSQL, the collections running on either.
//! - A run killed between marking blobs and deleting their bytes
//!   (`BERTH_TEST_CRASH_AT=gc-after-mark`): nothing dangles after the
//!   restart, an upload of one of those blobs takes it over, and the next
//!   run finishes the others.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::*;

const PASSWORD: &str = "gc-test-password";

/// Where berth keeps metadata for a test.
enum Database {
    Embedded,
    Postgres(PgDatabase),
}

impl Database {
    fn url(&self) -> Option<&str> {
        match self {
            Database::Embedded => None,
            Database::Postgres(db) => Some(&db.url),
        }
    }
}

fn serve(data: &Path, database: &Database, grace: Duration) -> ServeCommand {
    let mut serve = BerthProcess::serve(data)
        .admin_password(PASSWORD)
        .env(
            "BERTH_GC_BLOB_GRACE_PERIOD",
            humantime::format_duration(grace).to_string(),
        )
        .env("BERTH_JOBS_POLL_INTERVAL", "200ms")
        .env("BERTH_JOBS_LEASE", "3s")
        .env("NO_COLOR", "1");
    if let Some(url) = database.url() {
        serve = serve
            .env("BERTH_DATABASE_URL", url)
            .env("BERTH_DATABASE_MAX_CONNECTIONS", "8");
    }
    serve
}

/// The digests of `kind` a run lists, with their repository.
fn removed(run: &Value, kind: &str) -> BTreeSet<(String, String)> {
    run["status"]["removed"]
        .as_array()
        .expect("status.removed")
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| {
            (
                r["repository"].as_str().unwrap_or("").to_owned(),
                r["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn digests_of(pairs: &BTreeSet<(String, String)>) -> BTreeSet<String> {
    pairs.iter().map(|(_, d)| d.clone()).collect()
}

async fn blob_status(client: &RegistryClient, repo: &str, digest: &str) -> StatusCode {
    client.get_blob(repo, digest).await.status()
}

// ---------------------------------------------------------------------------
// What is removed, what is kept.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removes_what_nothing_keeps_on_the_embedded_database() {
    removes_what_nothing_keeps(Database::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removes_what_nothing_keeps_on_postgres() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    removes_what_nothing_keeps(Database::Postgres(database)).await;
}

async fn removes_what_nothing_keeps(database: Database) {
    const GRACE: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Unpaced: the blobs touched just before the run must still be inside
    // their grace period when the run reaches them.
    let berth = serve(&data, &database, GRACE)
        .env("BERTH_GC_BUSY_PERCENT", "100")
        .start()
        .await;
    let client = berth.client();
    let repo = "ns/app";

    let shared = blob_content("shared layer", 4096);
    let kept = Image::new("kept", vec![shared.clone(), blob_content("kept own", 3000)]);
    let dropped = Image::new(
        "dropped",
        vec![shared.clone(), blob_content("dropped own", 5000)],
    );
    let untagged = Image::new("untagged", vec![blob_content("untagged own", 1000)]);
    let child = Image::new("child", vec![blob_content("child own", 700)]);
    let lone_child = Image::new("lone child", vec![blob_content("lone child own", 900)]);
    let old = Image::new("old", vec![blob_content("old own", 1100)]);
    let sig_kept = Image::referrer("signature of kept", &kept.manifest);
    let sig_dropped = Image::referrer("signature of dropped", &dropped.manifest);
    kept.push(client, repo, "v1").await;
    dropped.push(client, repo, "v2").await;
    untagged.push(client, repo, &untagged.digest()).await;
    child.push(client, repo, &child.digest()).await;
    let multi = index_of(&[&child]);
    client.push_manifest(repo, "multi", &multi).await;
    lone_child.push(client, repo, &lone_child.digest()).await;
    let lone_index = index_of(&[&lone_child]);
    client
        .push_manifest(repo, &lone_index.digest(), &lone_index)
        .await;
    sig_kept.push(client, repo, &sig_kept.digest()).await;
    sig_dropped.push(client, repo, &sig_dropped.digest()).await;
    // A tag moved on: the image it named stays in its history.
    old.push(client, repo, "moving").await;
    client.push_manifest(repo, "moving", &kept.manifest).await;
    // A blob no manifest references, one a HEAD will touch, and a link of
    // the shared layer into a repository that uses nothing.
    let orphan = client.push_blob(repo, &blob_content("orphan", 6000)).await;
    let headed = client.push_blob(repo, &blob_content("headed", 600)).await;
    let mounted = client
        .mount_blob("ns/other", &sha256(&shared), Some(repo))
        .await;
    expect_status(mounted, StatusCode::CREATED).await;
    let response = client.delete_manifest(repo, &dropped.digest()).await;
    expect_status(response, StatusCode::ACCEPTED).await;

    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let young = client.push_blob(repo, &blob_content("young", 800)).await;
    // A push checking that a layer exists: it stays another grace period.
    let head = client.head_blob(repo, &headed).await;
    assert_eq!(head.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut garbage_blobs: BTreeSet<String> = BTreeSet::new();
    garbage_blobs.insert(orphan.clone());
    garbage_blobs.insert(sha256(&dropped.config));
    garbage_blobs.insert(sha256(&dropped.layers[1]));
    for image in [&untagged, &lone_child] {
        garbage_blobs.extend(image.blobs());
    }
    // Its config ("{}") is shared with the kept signature.
    garbage_blobs.insert(sha256(&sig_dropped.layers[0]));
    let garbage_manifests: BTreeSet<(String, String)> = [
        untagged.digest(),
        lone_child.digest(),
        lone_index.digest(),
        sig_dropped.digest(),
    ]
    .into_iter()
    .map(|d| (repo.to_owned(), d))
    .collect();
    let garbage_links: BTreeSet<(String, String)> =
        [("ns/other".to_owned(), sha256(&shared))].into();
    let bytes: u64 = [
        6000, // orphan
        dropped.config.len(),
        5000,
        untagged.config.len(),
        1000,
        lone_child.config.len(),
        900,
        300,
    ]
    .iter()
    .map(|n| *n as u64)
    .sum();

    // --- A dry run lists it all and changes nothing.
    let dry = client.collect_garbage(true).await;
    // Not recorded, so it has no name to be followed by.
    assert_eq!(dry["metadata"].get("name"), None, "{dry}");
    assert_eq!(digests_of(&removed(&dry, "Blob")), garbage_blobs, "{dry}");
    assert_eq!(removed(&dry, "Manifest"), garbage_manifests, "{dry}");
    assert_eq!(removed(&dry, "BlobLink"), garbage_links, "{dry}");
    assert_eq!(dry["status"]["bytesFreed"], bytes, "{dry}");
    assert_eq!(dry["status"]["blobsRemoved"], garbage_blobs.len(), "{dry}");
    for digest in &garbage_blobs {
        assert!(
            blob_file(&data, digest).exists(),
            "{digest} deleted by a dry run"
        );
    }
    // Checked by a caller who may only pull: a pull touches nothing (a
    // GET by one who may push would protect the blob for a grace period).
    let puller = client
        .user_with_role("gc-puller", "ns", "system:image-puller")
        .await;
    assert_eq!(blob_status(&puller, repo, &orphan).await, StatusCode::OK);
    assert_eq!(
        blob_status(&puller, "ns/other", &sha256(&shared)).await,
        StatusCode::OK
    );
    let response = client.get_manifest(repo, &untagged.digest()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a dry run removed a manifest"
    );
    let runs = client.api_get("/api/v1/garbagecollections").await;
    assert!(
        runs.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["spec"]["dryRun"] == false
                && r["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())),
        "dry runs are not recorded"
    );

    // --- The run removes the same.
    let run = client.collect_garbage(false).await;
    assert_eq!(digests_of(&removed(&run, "Blob")), garbage_blobs, "{run}");
    assert_eq!(removed(&run, "Manifest"), garbage_manifests, "{run}");
    assert_eq!(removed(&run, "BlobLink"), garbage_links, "{run}");
    assert_eq!(run["status"]["bytesFreed"], bytes, "{run}");
    for digest in &garbage_blobs {
        assert!(!blob_file(&data, digest).exists(), "{digest} still stored");
        assert_eq!(
            blob_status(client, repo, digest).await,
            StatusCode::NOT_FOUND
        );
    }
    for (_, digest) in &garbage_manifests {
        let response = client.get_manifest(repo, digest).await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{digest} still there"
        );
    }
    assert_eq!(
        blob_status(client, "ns/other", &sha256(&shared)).await,
        StatusCode::NOT_FOUND
    );
    // Kept: tagged images, a tagged index's child, a kept image's
    // referrer, an image in a tag's history, the young and the headed blob.
    assert_pulls(client, repo, "v1", &kept).await;
    assert_pulls(client, repo, "moving", &kept).await;
    assert_pulls(client, repo, &child.digest(), &child).await;
    assert_pulls(client, repo, &sig_kept.digest(), &sig_kept).await;
    assert_pulls(client, repo, &old.digest(), &old).await;
    let response = client.get_manifest(repo, "multi").await;
    expect_status(response, StatusCode::OK).await;
    let referrers = client.referrers(repo, &kept.digest(), "").await;
    let referrers: Value = expect_status(referrers, StatusCode::OK)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        referrers["manifests"].as_array().unwrap().len(),
        1,
        "{referrers}"
    );
    for digest in [&young, &headed] {
        assert_eq!(blob_status(client, repo, digest).await, StatusCode::OK);
    }

    // --- Once they are past the grace period, they go too.
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    let later = client.collect_garbage(false).await;
    assert_eq!(
        digests_of(&removed(&later, "Blob")),
        [young.clone(), headed.clone()].into(),
        "{later}"
    );
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for image in [&kept, &child, &sig_kept, &old] {
        expected.extend(image.blobs());
    }
    assert_eq!(
        stored_blobs(&data),
        expected,
        "storage holds exactly what is used"
    );

    // The runs are listed newest first; metrics count them.
    let runs = client.api_get("/api/v1/garbagecollections").await;
    let runs = runs.ok(200)["items"].as_array().unwrap().clone();
    assert!(runs.len() >= 2, "{runs:?}");
    assert_eq!(runs[0]["metadata"]["name"], later["metadata"]["name"]);
    let one = client
        .api_get(&format!(
            "/api/v1/garbagecollections/{}",
            run["metadata"]["name"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one.ok(200)["status"]["blobsRemoved"], garbage_blobs.len());
    client
        .api_get("/api/v1/garbagecollections/no-such-run")
        .await
        .failure(404, "NotFound");
    let metrics = client.metrics_text().await;
    assert!(
        metric_sum(&metrics, "berth_gc_blobs_removed_total") >= (garbage_blobs.len() + 2) as f64,
        "{metrics}"
    );
    assert!(metric_sum(&metrics, "berth_gc_runs_total") >= 2.0);
    assert!(metric_sum(&metrics, "berth_gc_blob_touches_total") >= 1.0);

    // Only cluster admins may run it.
    client
        .create_user("gc-user", Some("gc-user-password-1"), false)
        .await;
    let user = client.with_credentials("gc-user", "gc-user-password-1");
    user.api_post("/api/v1/garbagecollections", json!({ "dryRun": true }))
        .await
        .failure(403, "Forbidden");
    // A body that is not a request is refused.
    let bad = client
        .api_post("/api/v1/garbagecollections", json!({ "dryRun": "yes" }))
        .await;
    assert!(
        [400, 422].contains(&bad.status.as_u16()),
        "{}: {}",
        bad.status,
        bad.body
    );

    // The CLI prints what a run would remove, and runs it.
    let home = dir.path().join("home");
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut command = berth_command(args);
        command
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"));
        run_cli(command, stdin)
    };
    std::fs::create_dir_all(&home).unwrap();
    let host = berth.url().trim_start_matches("http://").to_owned();
    let login = cli(
        &["login", &host, "-u", "admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));
    let orphan = client
        .push_blob(repo, &blob_content("cli orphan", 100))
        .await;
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;
    let dry = cli(&["adm", "gc", "--dry-run"], None);
    assert!(
        dry.status.success(),
        "adm gc --dry-run: {}",
        text(&dry.stderr)
    );
    let out = text(&dry.stdout);
    assert!(
        out.contains("Dry run: would remove 0 manifests, 1 blob (100 B)"),
        "{out}"
    );
    assert!(out.contains(&orphan), "{out}");
    // A dry run has no name: `-o name` says what it was.
    let named = cli(&["adm", "gc", "--dry-run", "-o", "name"], None);
    assert_eq!(text(&named.stdout), "garbagecollection (dry run)\n");
    assert!(blob_file(&data, &orphan).exists());
    let ran = cli(&["adm", "gc", "-o", "json"], None);
    assert!(ran.status.success(), "adm gc: {}", text(&ran.stderr));
    let ran: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(ran["status"]["blobsRemoved"], 1, "{ran}");
    assert!(!blob_file(&data, &orphan).exists());
    let listed = cli(&["adm", "gc", "runs"], None);
    assert!(
        listed.status.success(),
        "adm gc runs: {}",
        text(&listed.stderr)
    );
    assert!(
        text(&listed.stdout).contains(ran["metadata"]["name"].as_str().unwrap()),
        "{}",
        text(&listed.stdout)
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_cli(mut command: std::process::Command, stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BERTH_") {
            command.env_remove(key);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("berth runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("berth ends")
}

// ---------------------------------------------------------------------------
// The race.

/// An image a push was acknowledged for: it must pull until the end.
#[derive(Clone)]
struct Acknowledged {
    repo: String,
    tag: String,
    image: Image,
}

#[derive(Default)]
struct Tally {
    pushes: AtomicU64,
    retried_puts: AtomicU64,
    reuploads: AtomicU64,
    mounts: AtomicU64,
    mounts_refused: AtomicU64,
    pulls: AtomicU64,
    skopeo_copies: AtomicU64,
    garbage_made: AtomicU64,
}

struct Race {
    client: RegistryClient,
    acknowledged: Mutex<Vec<Acknowledged>>,
    /// Blobs pushed with no manifest ever referencing them.
    orphans: Mutex<Vec<(String, String)>>,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
    tally: Tally,
    /// Contents every image shares: always referenced.
    base: Vec<u8>,
}

impl Race {
    fn fail(&self, what: String) {
        eprintln!("race failure: {what}");
        self.failures.lock().unwrap().push(what);
    }

    fn pick(&self, n: u64) -> Option<Acknowledged> {
        let acknowledged = self.acknowledged.lock().unwrap();
        if acknowledged.is_empty() {
            return None;
        }
        Some(acknowledged[(n as usize * 7919) % acknowledged.len()].clone())
    }

    /// Pushes like a registry client: what HEAD says is missing, then the
    /// manifest; when the registry says a blob is unknown (collected since
    /// the HEAD), uploads everything again and puts the manifest again.
    async fn push(&self, repo: &str, reference: &str, image: &Image) -> bool {
        self.push_as(repo, reference, image, false).await
    }

    /// [`push`](Self::push); `lazy` puts the manifest first, as a client
    /// sure it pushed the blobs before (it did, maybe long ago: they may be
    /// garbage by now, or being collected).
    async fn push_as(&self, repo: &str, reference: &str, image: &Image, lazy: bool) -> bool {
        let client = &self.client;
        for content in image.contents().filter(|_| !lazy) {
            let digest = sha256(content);
            if client.head_blob(repo, &digest).await.status() != StatusCode::OK
                && !self.upload(repo, content).await
            {
                return false;
            }
        }
        for attempt in 0..5 {
            let response = client.put_manifest(repo, reference, &image.manifest).await;
            let status = response.status();
            if status == StatusCode::CREATED {
                return true;
            }
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::BAD_REQUEST && body.contains("MANIFEST_BLOB_UNKNOWN") {
                self.tally.retried_puts.fetch_add(1, Ordering::Relaxed);
                for content in image.contents() {
                    if !self.upload(repo, content).await {
                        return false;
                    }
                }
                continue;
            }
            self.fail(format!(
                "PUT manifest {repo}:{reference} (attempt {attempt}): {status} {body}"
            ));
            return false;
        }
        self.fail(format!(
            "PUT manifest {repo}:{reference}: blobs kept vanishing"
        ));
        false
    }

    /// One blob, in one request; retried when berth says a delete of the
    /// same content is under way (`503`).
    async fn upload(&self, repo: &str, content: &[u8]) -> bool {
        let digest = sha256(content);
        for _ in 0..5 {
            let response = self.client.post_blob(repo, &digest, content).await;
            let status = response.status();
            if status == StatusCode::CREATED {
                self.tally.reuploads.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if status != StatusCode::SERVICE_UNAVAILABLE {
                let body = response.text().await.unwrap_or_default();
                self.fail(format!("upload {repo} {digest}: {status} {body}"));
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.fail(format!("upload {repo} {digest}: unavailable five times"));
        false
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Images with a layer of their own, and images reusing a few "flicker"
/// layers that keep becoming garbage (their manifests untagged or deleted)
/// and being pushed again, so that pushes meet collections of the same
/// blobs.
async fn pusher(race: Arc<Race>, id: usize) {
    let repo = format!("race/p{id}");
    let flicker: Vec<Vec<u8>> = (0..12)
        .map(|k| blob_content(&format!("flicker {id}-{k}"), 1500))
        .collect();
    let mut n: u64 = 0;
    while race.running() {
        n += 1;
        let own = blob_content(&format!("own {id}-{n}"), 2000);
        let image = Image::new(&format!("p{id}-{n}"), vec![race.base.clone(), own]);
        let tag = format!("t{n}");
        if race.push(&repo, &tag, &image).await {
            race.tally.pushes.fetch_add(1, Ordering::Relaxed);
            race.acknowledged.lock().unwrap().push(Acknowledged {
                repo: repo.clone(),
                tag,
                image,
            });
        }
        // Garbage: an image on a flicker layer, left untagged or deleted.
        let k = ((n * 2654435761) % flicker.len() as u64) as usize;
        let doomed = Image::new(
            &format!("doomed {id}-{n}"),
            vec![race.base.clone(), flicker[k].clone()],
        );
        // Most of the time as a client that does not check first.
        let lazy = n > 12 && !n.is_multiple_of(4);
        if n.is_multiple_of(2) {
            race.push_as(&repo, &doomed.digest(), &doomed, lazy).await;
        } else {
            let tag = format!("doomed-{n}");
            if race.push_as(&repo, &tag, &doomed, lazy).await {
                let response = race.client.delete_manifest(&repo, &doomed.digest()).await;
                if response.status() != StatusCode::ACCEPTED {
                    race.fail(format!(
                        "DELETE {repo}@{}: {}",
                        doomed.digest(),
                        response.status()
                    ));
                }
            }
        }
        race.tally.garbage_made.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(3) {
            let orphan = blob_content(&format!("orphan {id}-{n}"), 700);
            if race.upload(&repo, &orphan).await {
                race.orphans
                    .lock()
                    .unwrap()
                    .push((repo.clone(), sha256(&orphan)));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mounts the layers of pushed images (acknowledged ones, and flicker
/// layers that may be collected meanwhile) into another repository, then
/// puts an image there.
async fn mounter(race: Arc<Race>) {
    let repo = "race/mounted";
    let mut n: u64 = 0;
    while race.running() {
        n += 1;
        let Some(source) = race.pick(n) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let flicker = blob_content(&format!("flicker {}-{}", n % 2, n % 12), 1500);
        let image = Image::new(
            &format!("mounted {n}"),
            vec![source.image.layers[1].clone(), flicker],
        );
        for content in image.contents() {
            let digest = sha256(content);
            let response = race
                .client
                .mount_blob(repo, &digest, Some(&source.repo))
                .await;
            match response.status() {
                StatusCode::CREATED => {
                    race.tally.mounts.fetch_add(1, Ordering::Relaxed);
                }
                // Not mountable (not there, or being deleted): the spec's
                // answer is an upload session; upload it whole instead.
                StatusCode::ACCEPTED => {
                    race.tally.mounts_refused.fetch_add(1, Ordering::Relaxed);
                    race.upload(repo, content).await;
                }
                other => race.fail(format!("mount {digest}: {other}")),
            }
        }
        let tag = format!("m{n}");
        if race.push(repo, &tag, &image).await {
            race.acknowledged.lock().unwrap().push(Acknowledged {
                repo: repo.to_owned(),
                tag,
                image,
            });
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Pulls acknowledged images while it all goes on: each must pull whole.
async fn puller(race: Arc<Race>) {
    let mut n: u64 = 0;
    while race.running() {
        n += 1;
        let Some(pick) = race.pick(n * 13) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let client = &race.client;
        let response = client.get_manifest(&pick.repo, &pick.tag).await;
        if response.status() != StatusCode::OK {
            race.fail(format!(
                "pull {}:{}: {}",
                pick.repo,
                pick.tag,
                response.status()
            ));
            continue;
        }
        let digest = header(&response, "docker-content-digest");
        if digest != pick.image.digest() {
            race.fail(format!("pull {}:{}: digest {digest}", pick.repo, pick.tag));
        }
        for content in pick.image.contents() {
            let digest = sha256(content);
            let response = client.get_blob(&pick.repo, &digest).await;
            let status = response.status();
            let bytes = response.bytes().await.unwrap_or_default();
            if status != StatusCode::OK || sha256(&bytes) != digest {
                race.fail(format!(
                    "pull {}:{} blob {digest}: {status}",
                    pick.repo, pick.tag
                ));
            }
        }
        race.tally.pulls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs garbage collection by hand too, besides the job's schedule.
async fn collector(race: Arc<Race>) {
    while race.running() {
        let answer = race
            .client
            .api_post("/api/v1/garbagecollections", json!({ "dryRun": false }))
            .await;
        if ![StatusCode::OK, StatusCode::ACCEPTED].contains(&answer.status) {
            race.fail(format!(
                "POST garbagecollections: {} {}",
                answer.status, answer.body
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// skopeo copies images (from an OCI layout sharing the base layer) into
/// berth: a real client's HEADs and uploads against the collector.
async fn skopeo(race: Arc<Race>, url: String, dir: PathBuf) {
    let host = url.trim_start_matches("http://").to_owned();
    let mut n: u64 = 0;
    while race.running() {
        n += 1;
        let image = Image::new(
            &format!("skopeo {n}"),
            vec![
                race.base.clone(),
                blob_content(&format!("flicker 0-{}", n % 12), 1500),
                blob_content(&format!("skopeo own {n}"), 1200),
            ],
        );
        let layout = dir.join(format!("layout-{n}"));
        write_oci_layout(&layout, &image);
        let tag = format!("s{n}");
        let destination = format!("docker://{host}/race/skopeo:{tag}");
        let source = format!("oci:{}:latest", layout.display());
        let creds = format!("admin:{PASSWORD}");
        let output = tokio::process::Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--insecure-policy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                "--retry-times",
                "3",
                &source,
                &destination,
            ])
            .output()
            .await
            .expect("skopeo runs");
        if output.status.success() {
            race.tally.skopeo_copies.fetch_add(1, Ordering::Relaxed);
            race.acknowledged.lock().unwrap().push(Acknowledged {
                repo: "race/skopeo".into(),
                tag,
                image,
            });
        } else {
            race.fail(format!(
                "skopeo copy {n}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let _ = std::fs::remove_dir_all(&layout);
    }
}

fn write_oci_layout(dir: &Path, image: &Image) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
    };
    for content in image.contents() {
        write(content);
    }
    write(&image.manifest.bytes);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descriptor = image.manifest.descriptor().json();
    descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": "latest" });
    let index = json!({ "schemaVersion": 2, "manifests": [descriptor] });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Where blobs are, for the final check.
enum Storage {
    Filesystem,
    S3(Box<SeaweedMini>),
}

impl Storage {
    async fn blobs(&self, data: &Path) -> BTreeSet<String> {
        match self {
            Storage::Filesystem => stored_blobs(data),
            Storage::S3(mini) => {
                let listing = mini
                    .s3
                    .list(
                        "list blobs",
                        &mini.bucket,
                        &[
                            ("list-type", "2"),
                            ("prefix", "blobs/"),
                            ("max-keys", "1000"),
                        ],
                    )
                    .await
                    .text();
                assert!(!listing.contains("<IsTruncated>true"), "more than a page");
                listing
                    .split("<Key>")
                    .skip(1)
                    .filter_map(|rest| rest.split("</Key>").next())
                    .filter_map(|key| {
                        let mut parts = key.split('/');
                        let (_, algorithm, _, hex) =
                            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                        Some(format!("{algorithm}:{hex}"))
                    })
                    .collect()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_race_on_the_embedded_database() {
    race(Database::Embedded, Storage::Filesystem, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_race_on_postgres() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    race(Database::Postgres(database), Storage::Filesystem, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_race_on_object_storage() {
    let Some(mini) = SeaweedMini::start().await else {
        return;
    };
    race(Database::Embedded, Storage::S3(Box::new(mini)), 1).await;
}

/// Two replicas behind nginx on SeaweedFS's S3 and PostgreSQL: every
/// request of the race goes to either, and so does each collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_race_through_two_replicas_on_object_storage_and_postgres() {
    let Some(mini) = SeaweedMini::start().await else {
        return;
    };
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    race(Database::Postgres(database), Storage::S3(Box::new(mini)), 2).await;
}

/// berth as the race runs it: one process, or replicas behind nginx.
enum Deployment {
    One(BerthProcess),
    Replicas(Box<Replicas>),
}

impl Deployment {
    /// Where the clients go: the process, or the load balancer.
    fn client(&self) -> &RegistryClient {
        match self {
            Deployment::One(berth) => berth.client(),
            Deployment::Replicas(set) => &set.client,
        }
    }

    fn processes(&self) -> Vec<&BerthProcess> {
        match self {
            Deployment::One(berth) => vec![berth],
            Deployment::Replicas(set) => set.replicas.iter().collect(),
        }
    }

    /// A metric summed over the processes.
    async fn metric(&self, name: &str) -> f64 {
        let mut sum = 0.0;
        for process in self.processes() {
            sum += metric_sum(&process.client().metrics_text().await, name);
        }
        sum
    }
}

async fn race(database: Database, storage: Storage, replicas: usize) {
    const GRACE: Duration = Duration::from_secs(1);
    let seconds: u64 = std::env::var("BERTH_TEST_GC_RACE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env: Vec<(String, String)> = [
        ("BERTH_GC_BLOB_GRACE_PERIOD", "1s"),
        ("BERTH_GC_INTERVAL", "250ms"),
        ("BERTH_JOBS_POLL_INTERVAL", "200ms"),
        ("BERTH_JOBS_LEASE", "3s"),
        ("NO_COLOR", "1"),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    if let Some(url) = database.url() {
        env.push(("BERTH_DATABASE_URL".into(), url.to_owned()));
        env.push(("BERTH_DATABASE_MAX_CONNECTIONS".into(), "8".into()));
    }
    if let Storage::S3(mini) = &storage {
        env.extend(mini.berth_env());
        // Blob reads through berth, so that the puller checks berth.
        env.push(("BERTH_DISABLE_REDIRECT".into(), "true".into()));
    }
    let berth = if replicas == 1 {
        Deployment::One(
            BerthProcess::serve(&data)
                .admin_password(PASSWORD)
                .envs(&env)
                .start()
                .await,
        )
    } else {
        let Some(set) = Replicas::start(dir.path(), replicas, PASSWORD, &env).await else {
            return;
        };
        Deployment::Replicas(Box::new(set))
    };
    let race = Arc::new(Race {
        client: berth.client().clone(),
        acknowledged: Mutex::new(Vec::new()),
        orphans: Mutex::new(Vec::new()),
        failures: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
        base: blob_content("base layer", 4096),
    });
    let mut tasks = Vec::new();
    for id in 0..2 {
        tasks.push(tokio::spawn(pusher(race.clone(), id)));
    }
    tasks.push(tokio::spawn(mounter(race.clone())));
    tasks.push(tokio::spawn(puller(race.clone())));
    tasks.push(tokio::spawn(collector(race.clone())));
    let with_skopeo = which("skopeo");
    if with_skopeo {
        let layouts = dir.path().join("layouts");
        tasks.push(tokio::spawn(skopeo(
            race.clone(),
            berth.client().url(""),
            layouts,
        )));
    } else {
        eprintln!("skopeo not installed: the race runs with the HTTP API only");
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    race.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let failures = race.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Everything made garbage is now past the grace period.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let client = berth.client();
    let last = client.collect_garbage(false).await;
    // A run of the job may have begun before the grace period was over.
    let last = if last["status"]["blobsRemoved"] == 0 && last["status"]["manifestsRemoved"] == 0 {
        last
    } else {
        client.collect_garbage(false).await
    };

    let acknowledged = race.acknowledged.lock().unwrap().clone();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for ack in &acknowledged {
        assert_pulls(client, &ack.repo, &ack.tag, &ack.image).await;
        expected.extend(ack.image.blobs());
    }
    let orphans = race.orphans.lock().unwrap().clone();
    for (repo, digest) in &orphans {
        if !expected.contains(digest) {
            assert_eq!(
                blob_status(client, repo, digest).await,
                StatusCode::NOT_FOUND
            );
        }
    }
    let stored = storage.blobs(&data).await;
    let extra: Vec<&String> = stored.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&stored).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "storage holds {} blobs not referenced: {extra:?}; lacks {} referenced: {missing:?}",
        extra.len(),
        missing.len()
    );

    let runs = client.api_get("/api/v1/garbagecollections").await;
    let runs = runs.ok(200)["items"].as_array().unwrap().clone();
    let runs_total = berth.metric("berth_gc_runs_total").await;
    let blobs_removed = berth.metric("berth_gc_blobs_removed_total").await;
    let upload_waits = berth.metric("berth_gc_upload_waits_total").await;
    // An object store takes a marked batch's deletes in a few requests (S3's
    // batch delete), the filesystem one file at a time.
    let batches = berth
        .metric("berth_gc_delete_requests_total{way=\"batch\"}")
        .await;
    let singles = berth
        .metric("berth_gc_delete_requests_total{way=\"one\"}")
        .await;
    match &storage {
        Storage::S3(_) => assert!(
            batches >= 1.0 && singles == 0.0,
            "on S3: {batches} batch deletes, {singles} single ones"
        ),
        _ => assert!(
            batches == 0.0 && singles >= 1.0,
            "on the filesystem: {batches} batch deletes, {singles} single ones"
        ),
    }
    let tally = &race.tally;
    eprintln!(
        "race for {:.0?} ({replicas} replicas): {} images acknowledged ({} pushes, {} mounts ({} refused), {} skopeo copies), \
         {} doomed images, {} orphans, {} pulls; {} manifest puts retried after \
         MANIFEST_BLOB_UNKNOWN, {} uploads; {} runs recorded (of the last 20: {} blobs, {} manifests, \
         {} links removed); {} blobs removed in all, {} uploads waited for a delete; last run: {}",
        started.elapsed(),
        acknowledged.len(),
        tally.pushes.load(Ordering::Relaxed),
        tally.mounts.load(Ordering::Relaxed),
        tally.mounts_refused.load(Ordering::Relaxed),
        tally.skopeo_copies.load(Ordering::Relaxed),
        tally.garbage_made.load(Ordering::Relaxed),
        orphans.len(),
        tally.pulls.load(Ordering::Relaxed),
        tally.retried_puts.load(Ordering::Relaxed),
        tally.reuploads.load(Ordering::Relaxed),
        runs_total,
        runs.iter()
            .map(|r| r["status"]["blobsRemoved"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        runs.iter()
            .map(|r| r["status"]["manifestsRemoved"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        runs.iter()
            .map(|r| r["status"]["blobLinksRemoved"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        blobs_removed,
        upload_waits as u64,
        last["status"],
    );
    assert!(acknowledged.len() > 10, "too little pushed to tell");
    assert!(
        blobs_removed > 0.0,
        "garbage collection removed nothing during the race"
    );
    if replicas > 1 {
        let ran_on: BTreeSet<String> = runs
            .iter()
            .filter_map(|r| r["status"]["replica"].as_str().map(str::to_owned))
            .collect();
        eprintln!("the last runs ran on {ran_on:?}");
    }
}

fn which(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------------------
// Killed between the mark and the deletes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_after_marking_is_finished_by_the_next() {
    const GRACE: Duration = Duration::from_secs(1);
    const WINDOW: &str = "3s";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = Database::Embedded;
    let mut berth = serve(&data, &database, GRACE)
        .env("BERTH_TEST_GC_DELETE_WINDOW", WINDOW)
        .env("BERTH_TEST_CRASH_AT", "gc-after-mark")
        .start()
        .await;
    let repo = "crash/app";
    let kept = Image::new("kept", vec![blob_content("kept layer", 2000)]);
    kept.push(berth.client(), repo, "v1").await;
    let contents: Vec<Vec<u8>> = (0..3)
        .map(|i| blob_content(&format!("doomed {i}"), 1000 + i))
        .collect();
    let mut doomed = Vec::new();
    for content in &contents {
        doomed.push(berth.push_blob(repo, content).await);
    }
    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    // The run marks the blobs, commits, and dies before deleting a byte.
    berth
        .post_to_crash_point("/api/v1/garbagecollections", &json!({ "dryRun": false }))
        .await;
    for digest in &doomed {
        assert!(
            blob_file(&data, digest).exists(),
            "{digest} deleted before the crash"
        );
    }
    let marked = marked_blobs(&data).await;
    assert_eq!(marked, doomed.iter().cloned().collect::<BTreeSet<_>>());

    let berth = serve(&data, &database, GRACE)
        .env("BERTH_TEST_GC_DELETE_WINDOW", WINDOW)
        .start()
        .await;
    let client = berth.client();
    // Nothing dangles: the marked blobs are gone for clients, the rest is
    // whole.
    for digest in &doomed {
        assert_eq!(
            blob_status(client, repo, digest).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_pulls(client, repo, "v1", &kept).await;
    // Pushed again meanwhile: the upload waits for the mark's deadline,
    // takes the blob over and writes its bytes; it is whole afterwards.
    let started = Instant::now();
    let again = client.push_blob(repo, &contents[0]).await;
    eprintln!("the upload of a marked blob took {:?}", started.elapsed());
    assert_eq!(again, doomed[0]);
    assert!(client.blob_bytes(repo, &again).await == contents[0]);
    // Used by an image now, so that it stays.
    let reused = Image::new("reused", vec![contents[0].clone()]);
    reused.push(client, repo, "again").await;

    // The next run (once the dead run's deadline has passed) finishes the
    // other deletes.
    tokio::time::sleep(humantime::parse_duration(WINDOW).unwrap()).await;
    let run = client.collect_garbage(false).await;
    let removed = digests_of(&removed(&run, "Blob"));
    let finished: BTreeSet<String> = doomed[1..].iter().cloned().collect();
    assert!(
        finished.is_subset(&removed) || marked_blobs(&data).await.is_empty(),
        "{run}"
    );
    for digest in &doomed[1..] {
        assert!(!blob_file(&data, digest).exists(), "{digest} still stored");
    }
    assert!(marked_blobs(&data).await.is_empty());
    assert_pulls(client, repo, "again", &reused).await;
    assert_pulls(client, repo, "v1", &kept).await;
    // The dead run is recorded as interrupted.
    let runs = client.api_get("/api/v1/garbagecollections").await;
    let runs = runs.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        runs.iter().any(|r| r["status"]["outcome"] == "Interrupted"),
        "{runs:?}"
    );
    let outcomes: BTreeMap<String, usize> = runs.iter().fold(BTreeMap::new(), |mut counts, r| {
        *counts
            .entry(
                r["status"]["outcome"]
                    .as_str()
                    .unwrap_or("Running")
                    .to_owned(),
            )
            .or_default() += 1;
        counts
    });
    eprintln!("runs by outcome: {outcomes:?}");
}

/// The blobs the embedded database has marked for deletion.
async fn marked_blobs(data: &Path) -> BTreeSet<String> {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", data.join("berth.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT digest FROM blobs WHERE deleting_until IS NOT NULL")
        .fetch_all(&mut db)
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<String, _>("digest")).collect()
}
