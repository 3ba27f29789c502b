//! Several berth replicas behind a real load balancer (nginx, round robin),
//! sharing one PostgreSQL database and one blob store, as users deploy
//! them: pushes and pulls whose requests land on different replicas, a tag
//! pushed through several replicas at once, and a replica killed with
//! SIGKILL during concurrent pushes.
//!
//! The blob store here is a filesystem directory the replicas share (one
//! machine, or a network filesystem); the object-store variant runs the
//! same flows on SeaweedFS.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

const PASSWORD: &str = "replicas-test-password";

/// Replicas on a shared database and blob directory, and what they share.
struct Cluster {
    set: Replicas,
    _database: PgDatabase,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Cluster {
    type Target = Replicas;

    fn deref(&self) -> &Replicas {
        &self.set
    }
}

impl std::ops::DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Replicas {
        &mut self.set
    }
}

/// `count` replicas started together on one fresh database and one blob
/// directory, behind nginx.
async fn replicas(count: usize) -> Option<Cluster> {
    replicas_with(count, &[]).await
}

async fn replicas_with(count: usize, env: &[(&str, &str)]) -> Option<Cluster> {
    let database = PgDatabase::create().await?;
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = dir.path().join("shared-storage").display().to_string();
    let mut shared = vec![
        ("BERTH_DATABASE_URL", database.url.as_str()),
        ("BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY", storage.as_str()),
    ];
    shared.extend_from_slice(env);
    let replicas = Replicas::start(dir.path(), count, PASSWORD, &shared).await?;
    Some(Cluster {
        set: replicas,
        _database: database,
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_pushed_through_the_load_balancer_is_served_by_every_replica() {
    let Some(cluster) = replicas(3).await else {
        return;
    };
    let client = &cluster.client;
    let image = client.push_image("proj/app", "v1").await;
    // A blob pushed in chunks, each PATCH on the next replica in turn.
    let big = blob_content("chunked across replicas", 3 << 20);
    let chunked = client
        .push_blob_in_chunks("proj/app", &big, 512 << 10)
        .await;

    for replica in &cluster.replicas {
        assert_eq!(pull_from(replica, "proj/app", "v1").await, image.digest);
        assert_eq!(replica.blob_bytes("proj/app", &chunked).await, big);
        assert_eq!(replica.tags("proj/app").await, ["v1"]);
    }
    let catalog: serde_json::Value = client.catalog("").await.json().await.unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["proj/app"]));
    assert!(
        cluster.nginx.access_log().lines().count() > 10,
        "requests went through nginx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_pushed_through_several_replicas_at_once_ends_with_one_current_digest() {
    let Some(cluster) = replicas(3).await else {
        return;
    };
    for round in 0..5 {
        let pushes = cluster.replicas.iter().enumerate().map(|(i, replica)| {
            let client = replica.client().clone();
            async move {
                // Distinct content per replica and round, one tag.
                let blob_label = format!("round-{round}-replica-{i}");
                let config_bytes = image_config(&blob_label);
                client.push_blob("proj/race", &config_bytes).await;
                let config = Descriptor::of(OCI_CONFIG, &config_bytes);
                let manifest =
                    Manifest::from_json(OCI_MANIFEST, &image_manifest(OCI_MANIFEST, &config, &[]));
                client.push_manifest("proj/race", "latest", &manifest).await
            }
        });
        let pushed = futures::future::join_all(pushes).await;
        let mut answers = Vec::new();
        for replica in &cluster.replicas {
            let response = replica.head_manifest("proj/race", "latest").await;
            let response = expect_status(response, StatusCode::OK).await;
            answers.push(header(&response, "docker-content-digest"));
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "round {round}: replicas disagree on the tag: {answers:?}"
        );
        assert!(
            pushed.contains(&answers[0]),
            "round {round}: {answers:?} not in {pushed:?}"
        );
        // Every pushed manifest stays reachable by digest.
        for digest in &pushed {
            let response = cluster.client.head_manifest("proj/race", digest).await;
            expect_status(response, StatusCode::OK).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_pushes_loses_no_acknowledged_image() {
    let Some(mut cluster) = replicas(3).await else {
        return;
    };
    let traffic = Traffic::start(&cluster.client, "proj/busy", 4, 0, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.replicas[1].kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = traffic.stop().await;

    let acknowledged = report.acknowledged;
    assert!(
        acknowledged.len() > 8 && acknowledged.len() < report.push_attempts,
        "{} of {} pushes acknowledged: the test must push both before and \
         across the kill",
        acknowledged.len(),
        report.push_attempts
    );
    for survivor in [&cluster.replicas[0], &cluster.replicas[2]] {
        for (tag, digest) in &acknowledged {
            assert_eq!(
                &pull_from(survivor, "proj/busy", tag).await,
                digest,
                "{tag}"
            );
        }
    }
}

/// Password guesses spread over replicas add up to one limit, the lockout
/// reaches every replica, and an admin's unlock on one frees it on all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_count_across_replicas() {
    let Some(cluster) = replicas_with(
        2,
        &[
            ("BERTH_AUTH_LOCKOUT_MAX_FAILURES_PER_USER", "4"),
            ("BERTH_AUTH_LOCKOUT_DURATION", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    let [first, second] = &cluster.replicas[..] else {
        unreachable!()
    };
    first
        .create_user("alice", Some("alice-right-password"), false)
        .await;
    // Two wrong guesses on each replica: four in all, the limit.
    for replica in [first, second, first, second] {
        let guess = replica.with_credentials("alice", "wrong-guess");
        assert_eq!(guess.get("/v2/").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Each replica refuses alice from this address now, right password or
    // not (the second learns of the last failure within a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for replica in [first, second] {
        let right = replica.with_credentials("alice", "alice-right-password");
        let refused = right.get("/v2/").await;
        assert_eq!(
            refused.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            replica.addr
        );
    }
    // An admin unlocks her on the first; the second follows.
    first
        .api_expect(
            reqwest::Method::POST,
            "/api/v1/users/alice/unlock",
            None,
            StatusCode::OK,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for replica in [first, second] {
        let right = replica.with_credentials("alice", "alice-right-password");
        expect_status(right.get("/v2/").await, StatusCode::OK).await;
    }
}
