//! Three berth replicas behind nginx (round robin) on S3 (SeaweedFS) and
//! PostgreSQL, as users deploy them at scale:
//!
//! - the core API through the load balancer, an upload's chunks landing on
//!   different replicas, each stored as a part in the bucket;
//! - real clients (podman, skopeo, buildah, oras) pushing and pulling
//!   through it, with blob reads streamed by berth, and redirected to the
//!   store (`307` to signed URLs on SeaweedFS, followed by podman, skopeo,
//!   oras and docker), every digest checked;
//! - a SeaweedFS volume server killed during pushes and pulls (a cluster of
//!   3 masters, 3 volume servers with replication `001`, 2 filers with S3
//!   gateways): the registry keeps serving and every acknowledged image
//!   pulls whole;
//! - PostgreSQL (a server of the test's own) stopped and started again
//!   during traffic: requests in between are refused cleanly (`503
//!   UNAVAILABLE`, never a hang or a `500`), `/readyz` says not ready, then
//!   everything succeeds again and nothing acknowledged is lost.
//!
//! The same flows on a shared filesystem: `tests/replicas.rs`; an upload's
//! chunks alternating between replicas on S3, and a replica killed in the
//! middle of one: `tests/uploads_across_replicas.rs`.
//!
//! A missing SeaweedFS, PostgreSQL, nginx or client skips these loudly, or
//! fails them with `BERTH_REQUIRE_OBJECT_STORES=1`, `BERTH_REQUIRE_POSTGRES=1`
//! or `BERTH_REQUIRE_CLIENTS=1`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;

const PASSWORD: &str = "replicas-object-store-password";

/// No request of the traffic may take longer: the database's pool waits
/// 10 s for a connection, the store's retries about 7 s.
const REQUEST_BOUND: Duration = Duration::from_secs(30);

/// Replicas, and the engines they share.
struct Deployment<Store> {
    set: Replicas,
    _store: Store,
    _database: PgDatabase,
    _dir: tempfile::TempDir,
}

impl<Store> std::ops::Deref for Deployment<Store> {
    type Target = Replicas;

    fn deref(&self) -> &Replicas {
        &self.set
    }
}

/// Three replicas on a fresh database and SeaweedFS's bucket, with `extra`
/// variables.
async fn on_seaweed_mini(extra: &[(&str, &str)]) -> Option<Deployment<SeaweedMini>> {
    let mini = SeaweedMini::start().await?;
    let database = PgDatabase::create().await?;
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = with(mini_env(&mini, &database), extra);
    let set = Replicas::start(dir.path(), 3, PASSWORD, &env).await?;
    Some(Deployment {
        set,
        _store: mini,
        _database: database,
        _dir: dir,
    })
}

/// What every replica on `mini` and `database` is given.
fn mini_env(mini: &SeaweedMini, database: &PgDatabase) -> Vec<(String, String)> {
    // The smallest parts S3 takes, so that a few MiB make several.
    with(
        mini.berth_env(),
        &[
            ("BERTH_DATABASE_URL", &database.url),
            ("BERTH_STORAGE_S3_CHUNK_SIZE_MIB", "5"),
        ],
    )
}

/// `env` and `extra`.
fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    env
}

/// The blob `GET`s nginx passed on, by the status they were answered.
fn blob_gets(nginx: &Nginx, status: u16) -> usize {
    nginx
        .requests()
        .iter()
        .filter(|(request, answered)| {
            *answered == status && request.starts_with("GET /v2/") && request.contains("/blobs/")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_api_through_the_load_balancer_on_s3_and_postgres() {
    let Some(deployment) = on_seaweed_mini(&[("BERTH_DISABLE_REDIRECT", "true")]).await else {
        return;
    };
    let client = &deployment.client;
    let image = client.push_image("proj/app", "v1").await;
    // An upload's chunks, each on the next replica in turn, each a part in
    // the bucket; some under the 5 MiB part size, some over.
    let big = blob_content("chunked across replicas on S3", 17 * MIB + 333);
    let chunked = client
        .push_blob_in_chunks("proj/app", &big, 3 * MIB + 1)
        .await;
    let whole = blob_content("one request", 6 * MIB + 5);
    let monolithic = client.push_blob("proj/app", &whole).await;

    for replica in &deployment.replicas {
        assert_eq!(pull_from(replica, "proj/app", "v1").await, image.digest);
        assert!(replica.blob_bytes("proj/app", &chunked).await == big);
        assert!(replica.blob_bytes("proj/app", &monolithic).await == whole);
        assert_eq!(replica.tags("proj/app").await, ["v1"]);
    }
    // Ranges across the parts' boundaries, through the load balancer.
    for (start, end) in [
        (0, 10),
        (3 * MIB - 5, 3 * MIB + 5),
        (15 * MIB, big.len() - 1),
    ] {
        let range = client
            .get_blob_range("proj/app", &chunked, &format!("bytes={start}-{end}"))
            .await;
        let range = expect_status(range, StatusCode::PARTIAL_CONTENT).await;
        assert!(range.bytes().await.unwrap() == big[start..=end]);
    }
    let catalog: serde_json::Value = client.catalog("").await.json().await.unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["proj/app"]));
    // Pulled through the load balancer: streamed by berth, not redirected.
    assert_eq!(pull_from(client, "proj/app", "v1").await, image.digest);
    assert!(blob_gets(&deployment.nginx, 200) >= 2);
    assert_eq!(blob_gets(&deployment.nginx, 206), 3);
    assert_eq!(blob_gets(&deployment.nginx, 307), 0);
}

// ---------------------------------------------------------------------------
// Real clients

/// podman pushes an image built by buildah, skopeo copies another in from
/// an OCI layout, and both are pulled back through the load balancer by
/// skopeo (into an OCI layout, each blob checked against its digest) and
/// podman (the image's id is its config's digest); with `redirect`, every
/// blob read is answered `307` to the store.
fn real_clients_through_the_load_balancer(test: &str, redirect: bool) {
    use lab::*;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some((mini, database)) = runtime.block_on(async {
        let mini = SeaweedMini::start().await?;
        let database = PgDatabase::create().await?;
        Some((mini, database))
    }) else {
        return;
    };
    let missing = missing_tools(&["podman", "buildah", "skopeo"]);
    if !clients_present(test, &missing) {
        return;
    }
    let mut env = mini_env(&mini, &database);
    if !redirect {
        env = with(env, &[("BERTH_DISABLE_REDIRECT", "true")]);
    }
    // The lab's berth is the first replica; two more join it behind nginx.
    let mut lab = Lab::start("python3".into(), |serve| serve.envs(&env));
    let dir = tempfile::tempdir().unwrap();
    let Some(others) = runtime.block_on(Replicas::start_each(
        dir.path(),
        &lab.password,
        &[env.clone(), env.clone()],
        &[lab.berth.addr],
    )) else {
        return;
    };
    lab.host = others.nginx.addr.to_string();
    lab.url = others.nginx.url.clone();
    let creds = lab.admin_creds();

    // Layers over the 5 MiB part size, so that each is several parts in the
    // bucket, its POST, PATCH and PUT each on another replica.
    let context = lab.mkdir("context");
    let built = build_image(
        &lab,
        &context,
        "balanced",
        "oci",
        vec![(
            "/payload.bin".into(),
            blob_content(&format!("podman {}", lab.nonce), 7 * MIB),
        )],
    );
    let podman_ref = format!("{}/proj/podman:v1", lab.host);
    let podman_digest = lab.podman_push_as_admin("podman push", &built.local, &podman_ref);

    // skopeo: containers-storage → OCI layout → the registry, digests kept.
    let layout = lab.dir().join("layout-in");
    lab.ok(
        "skopeo copy to a layout",
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("containers-storage:{}", built.local),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let skopeo_ref = format!("{}/proj/skopeo:v1", lab.host);
    lab.ok(
        "skopeo copy in",
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{skopeo_ref}"),
        ],
    );
    let skopeo_digest = layout_manifest_digest(&layout);

    // Each replica serves both, byte for byte.
    // (Clients of their own: the lab's runs on the lab's runtime.)
    runtime.block_on(async {
        let addrs = std::iter::once(lab.berth.addr).chain(others.replicas.iter().map(|r| r.addr));
        for addr in addrs {
            let replica = RegistryClient::new(format!("http://{addr}"), "admin", &lab.password);
            for (repo, digest) in [
                ("proj/podman", &podman_digest),
                ("proj/skopeo", &skopeo_digest),
            ] {
                let response = replica.get_manifest(repo, "v1").await;
                let response = expect_status(response, StatusCode::OK).await;
                assert_eq!(&header(&response, "docker-content-digest"), digest);
                assert_eq!(&sha256(&response.bytes().await.unwrap()), digest);
            }
        }
    });

    // Pulled back through the load balancer.
    let before = blob_gets(&others.nginx, 307);
    let layout_out = lab.dir().join("layout-out");
    lab.ok(
        "skopeo copy out",
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{podman_ref}"),
            &format!("oci:{}:v1", layout_out.display()),
        ],
    );
    assert_eq!(layout_manifest_digest(&layout_out), podman_digest);
    assert_blobs_match_their_digests(&layout_out);
    let after_skopeo = blob_gets(&others.nginx, 307);

    lab.ok("podman rmi", "podman", &["rmi", "-f", &built.local]);
    lab.ok(
        "podman pull",
        "podman",
        &["pull", "--tls-verify=false", "--creds", &creds, &skopeo_ref],
    );
    let inspected = lab.ok(
        "podman image inspect",
        "podman",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Digest}}",
            &skopeo_ref,
        ],
    );
    assert_eq!(
        last_line(&inspected),
        format!("{} {skopeo_digest}", built.id),
        "podman's image id (its config's digest) and manifest digest"
    );
    let after_podman = blob_gets(&others.nginx, 307);

    // buildah pushes through it too (the image podman pulled).
    let buildah_ref = format!("{}/proj/buildah:v1", lab.host);
    let digest_file = lab.dir().join("buildah.digest");
    lab.ok(
        "buildah push",
        "buildah",
        &[
            "push",
            "--quiet",
            "--tls-verify=false",
            "--creds",
            &creds,
            "--digestfile",
            digest_file.to_str().unwrap(),
            &skopeo_ref,
            &format!("docker://{buildah_ref}"),
        ],
    );
    let buildah_digest = std::fs::read_to_string(&digest_file).unwrap();
    runtime.block_on(async {
        let replica =
            RegistryClient::new(format!("http://{}", lab.berth.addr), "admin", &lab.password);
        let response = replica.get_manifest("proj/buildah", "v1").await;
        let response = expect_status(response, StatusCode::OK).await;
        assert_eq!(
            &sha256(&response.bytes().await.unwrap()),
            buildah_digest.trim()
        );
    });

    let before_oras = blob_gets(&others.nginx, 307);
    oras_through_the_load_balancer(&lab);
    let after_oras = blob_gets(&others.nginx, 307);

    if redirect {
        // Config and layer, each answered 307 for each client.
        assert!(after_skopeo >= before + 2, "skopeo's blob reads redirected");
        assert!(
            after_podman >= after_skopeo + 2,
            "podman's blob reads redirected"
        );
        assert!(
            after_oras >= before_oras + 2,
            "oras's blob reads redirected"
        );
        docker_pulls_redirected(&lab, &podman_ref, &podman_digest, &built.id);
        assert!(
            blob_gets(&others.nginx, 307) >= after_oras + 2,
            "docker's blob reads redirected"
        );
    } else {
        assert_eq!(after_podman, 0, "blob reads streamed, never redirected");
        assert!(blob_gets(&others.nginx, 200) >= 4);
    }
    drop(others);
    drop(lab);
}

/// The `oras` Python library pushes an artifact (with Basic credentials)
/// and another with bearer tokens from the token service, and pulls both
/// back: each file pulled hashes to what was pushed.
fn oras_through_the_load_balancer(lab: &lab::Lab) {
    use lab::*;
    let test = "oras through the load balancer";
    let oras = std::process::Command::new(&lab.python)
        .args(["-c", "import oras.client, oras.oci, oras.defaults"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !oras.is_ok_and(|s| s.success()) {
        clients_present(test, &["the python module `oras`".to_owned()]);
        return;
    }
    let host = lab.host.as_str();
    let notes_bytes = blob_content(&format!("oras {}", lab.nonce), 6 * MIB);
    let notes = lab.write("oras/notes.bin", &notes_bytes);
    let config = lab.write("oras/config.json", b"{\"kind\":\"notes\"}");
    let token_bytes = format!("pushed with bearer tokens {}", lab.nonce).into_bytes();
    let token_file = lab.write("oras/token-flow.txt", &token_bytes);
    let jobs = serde_json::json!({
        "artifact": {
            "target": format!("{host}/artifacts/notes:v1"),
            "file": notes,
            "file_media_type": "application/octet-stream",
            "config": config,
            "config_media_type": "application/vnd.berth.notes.v1+json",
        },
        "token_flow": {
            "target": format!("{host}/artifacts/token-flow:v1"),
            "file": token_file,
            "file_media_type": "text/plain",
        },
    });
    let result = lab.run_oras(test, jobs);
    assert_eq!(result["push"]["status"], 201, "{test}: {result}");
    assert_eq!(
        result["token_flow"]["push"]["status"], 201,
        "{test}: {result}"
    );
    for (pulled, bytes) in [
        (&result["pulled"], &notes_bytes),
        (&result["token_flow"]["pulled"], &token_bytes),
    ] {
        let files = pulled.as_array().cloned().unwrap_or_default();
        assert_eq!(files.len(), 1, "{test}: one file pulled: {result}");
        assert_eq!(
            files[0]["digest"].as_str(),
            Some(sha256(bytes).as_str()),
            "{test}: the pulled file is the pushed one"
        );
    }
}

/// Docker's engine pulls `reference` through the load balancer (its blob
/// reads answered `307` to the store, which it follows): the manifest
/// digest it reports and the image id (the config's digest) are the pushed
/// ones.
fn docker_pulls_redirected(lab: &lab::Lab, reference: &str, digest: &str, image_id: &str) {
    use lab::*;
    let test = "docker pull redirected to the store";
    if !clients_present(test, &missing_tools(&["docker", "dockerd"])) {
        return;
    }
    let mut engine = match DockerEngine::start(lab, &lab.dir().join("docker"), &lab.host) {
        Ok(engine) => engine,
        Err(why) => {
            clients_present(test, &[format!("a Docker engine that starts: {why}")]);
            return;
        }
    };
    let login = lab.run_inner(
        "docker",
        &[
            "login",
            "--username",
            "admin",
            "--password-stdin",
            &lab.host,
        ],
        Some(&format!("{}\n", lab.password)),
        &engine.env(),
    );
    login.expect_success("docker login through the load balancer");
    let pulled = lab.run_env("docker", &["pull", reference], &engine.env());
    pulled.expect_success("docker pull through the load balancer");
    assert!(
        pulled.stdout().contains(&format!("Digest: {digest}")),
        "docker pulled the pushed manifest\n{}",
        pulled.describe()
    );
    let inspected = lab.run_env(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", reference],
        &engine.env(),
    );
    inspected.expect_success("docker image inspect");
    assert_eq!(
        inspected.stdout().trim().trim_start_matches("sha256:"),
        image_id.trim_start_matches("sha256:"),
        "docker's image id is the pushed config's digest"
    );
    let ended = engine.stop();
    assert!(ended.starts_with("stopped"), "dockerd {ended}");
}

/// The digest of the one manifest an OCI layout's `index.json` names.
fn layout_manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .expect("a manifest in the layout")
        .to_owned()
}

/// Every blob of an OCI layout hashes to its name.
fn assert_blobs_match_their_digests(layout: &Path) {
    let mut count = 0;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(sha256(&bytes), format!("sha256:{name}"));
        count += 1;
    }
    assert!(
        count >= 3,
        "manifest, config and layer in {}",
        layout.display()
    );
}

#[test]
fn real_clients_push_and_pull_through_the_load_balancer() {
    real_clients_through_the_load_balancer(
        "real_clients_push_and_pull_through_the_load_balancer",
        false,
    );
}

#[test]
fn real_clients_pull_through_the_load_balancer_redirected_to_the_store() {
    real_clients_through_the_load_balancer(
        "real_clients_pull_through_the_load_balancer_redirected_to_the_store",
        true,
    );
}

// ---------------------------------------------------------------------------
// Failures under traffic

/// Polls `probe` every 100 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `traffic` has pushed and pulled a few images.
async fn under_way(traffic: &Traffic) {
    eventually("traffic under way", Duration::from_secs(60), || async {
        let progress = traffic.progress();
        progress.acknowledged >= 5 && progress.pulls >= 5
    })
    .await;
}

/// Every image in `report` pulls through `client` with its digest.
async fn assert_all_pull(client: &RegistryClient, repo: &str, report: &TrafficReport) {
    for (tag, digest) in &report.acknowledged {
        assert_eq!(&pull_from(client, repo, tag).await, digest, "{repo}:{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seaweedfs_volume_server_killed_during_traffic_loses_no_acknowledged_image() {
    let Some(mut cluster) = SeaweedCluster::start().await else {
        return;
    };
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The replicas reach the bucket through both gateways (each its own
    // filer), as replicas in several zones would.
    let envs: Vec<Vec<(String, String)>> = (0..3)
        .map(|i| {
            with(
                cluster.berth_env(i % 2),
                &[
                    ("BERTH_DATABASE_URL", &database.url),
                    ("BERTH_DISABLE_REDIRECT", "true"),
                ],
            )
        })
        .collect();
    let Some(set) = Replicas::start_each(dir.path(), PASSWORD, &envs, &[]).await else {
        return;
    };
    let client = &set.client;

    let traffic = Traffic::start(client, "proj/busy", 3, 2, REQUEST_BOUND);
    under_way(&traffic).await;
    let at_kill = traffic.progress();
    cluster.kill_volume(1);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let report = traffic.stop().await;

    assert!(
        report.broken.is_empty(),
        "requests that failed other than cleanly: {:#?}",
        report.broken
    );
    assert!(
        report.acknowledged.len() >= at_kill.acknowledged + 5 && report.pulls >= at_kill.pulls + 5,
        "the registry kept serving with a volume server gone: {at_kill:?} at the kill, \
         {} pushes and {} pulls at the end",
        report.acknowledged.len(),
        report.pulls
    );
    // With the volume server still gone, every acknowledged image is served
    // by every replica.
    let mut retries = 0.0;
    for replica in &set.replicas {
        assert_all_pull(replica, "proj/busy", &report).await;
        retries += replica.metric("berth_storage_retries_total").await;
    }
    eprintln!(
        "volume server killed: {} of {} pushes acknowledged, {} pulls, {} refused cleanly, \
         {retries} store requests retried",
        report.acknowledged.len(),
        report.push_attempts,
        report.pulls,
        report.refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_traffic_fails_requests_cleanly_and_loses_nothing() {
    let Some(mut server) = PgServer::start().await else {
        return;
    };
    let Some(mini) = SeaweedMini::start().await else {
        return;
    };
    let database = server.database().await;
    let dir = tempfile::tempdir().unwrap();
    // Blob reads redirected to the store (the default), so pulls need the
    // database only to find the image.
    let Some(set) = Replicas::start(dir.path(), 3, PASSWORD, &mini_env(&mini, &database)).await
    else {
        return;
    };
    let traffic = Traffic::start(&set.client, "proj/busy", 2, 2, REQUEST_BOUND);
    under_way(&traffic).await;

    server.stop();
    let stopped = Instant::now();
    // Every replica says it is not ready, and every traffic task is refused
    // at least once (each refusal comes after the pool's 10 s wait).
    let refused_before = traffic.progress().refused;
    let not_ready = set.replicas.iter().map(|replica| {
        eventually(
            "/readyz not ready without the database",
            Duration::from_secs(30),
            move || async move { replica.anonymous().get("/readyz").await.status() == 503 },
        )
    });
    let refused = eventually(
        "requests refused during the outage",
        Duration::from_secs(30),
        || async { traffic.progress().refused >= refused_before + 4 },
    );
    tokio::join!(futures::future::join_all(not_ready), refused);
    let outage = traffic.progress();
    server.restart().await;
    let outage_lasted = stopped.elapsed();

    let ready = set.replicas.iter().map(|replica| {
        eventually(
            "/readyz ready once the database is back",
            Duration::from_secs(30),
            move || async move { replica.anonymous().get("/readyz").await.status() == 200 },
        )
    });
    futures::future::join_all(ready).await;
    eventually(
        "pushes and pulls succeed once the database is back",
        Duration::from_secs(30),
        || async {
            let now = traffic.progress();
            now.acknowledged >= outage.acknowledged + 5 && now.pulls >= outage.pulls + 5
        },
    )
    .await;
    let report = traffic.stop().await;

    assert!(
        report.broken.is_empty(),
        "requests that failed other than cleanly (503 UNAVAILABLE): {:#?}",
        report.broken
    );
    assert_all_pull(&set.client, "proj/busy", &report).await;
    eprintln!(
        "PostgreSQL away {outage_lasted:?}: {} of {} pushes acknowledged, {} pulls, {} \
         requests refused cleanly",
        report.acknowledged.len(),
        report.push_attempts,
        report.pulls,
        report.refused
    );
}
