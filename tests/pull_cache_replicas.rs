//! The pull cache on PostgreSQL: two berth processes on one database, each
//! keeping the manifests and tag lists it serves in memory. What one
//! replica changes (a tag moved, a tag added, a manifest deleted) the other
//! serves changed within the cache's stated bound (`STALENESS_BOUND`, 500 ms;
//! measured here, typically a few milliseconds), and a replica whose
//! listener connection is cut off serves nothing stale: it reads the
//! database until it listens again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use sqlx::{Connection as _, Executor as _, Row as _};

const PASSWORD: &str = "pull-cache-test-password";

/// The bound berth states (`domain::cache::STALENESS_BOUND`).
const BOUND: Duration = Duration::from_millis(500);

/// What a cache entry lives at most (`domain::cache::SHARED_TTL`).
const SHARED_TTL: Duration = Duration::from_secs(10);

struct Pair {
    a: BerthProcess,
    b: BerthProcess,
    database: PgDatabase,
    _dir: tempfile::TempDir,
}

async fn two_replicas() -> Option<Pair> {
    let database = PgDatabase::create().await?;
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = dir.path().join("shared-storage");
    let start = |name: &str| {
        BerthProcess::serve(&dir.path().join(name))
            .admin_password(PASSWORD)
            .env("BERTH_DATABASE_URL", database.url.clone())
            .env(
                "BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY",
                storage.display().to_string(),
            )
            .start()
    };
    let a = start("replica-a").await;
    let b = start("replica-b").await;
    Some(Pair {
        a,
        b,
        database,
        _dir: dir,
    })
}

/// The digest `replica` answers for `repo:reference` to a GET, or `None`
/// for 404.
async fn served(replica: &BerthProcess, repo: &str, reference: &str) -> Option<String> {
    let response = replica.get_manifest(repo, reference).await;
    match response.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => {
            let digest = header(&response, "docker-content-digest");
            let body = response.bytes().await.expect("manifest body");
            assert_eq!(
                sha256(&body),
                digest,
                "{repo}:{reference}: body and digest agree"
            );
            Some(digest)
        }
        status => panic!(
            "{repo}:{reference} on {}: {status}; its log ends:\n{}",
            replica.addr,
            replica.log_tail()
        ),
    }
}

/// The same for a HEAD.
async fn served_to_head(replica: &BerthProcess, repo: &str, reference: &str) -> Option<String> {
    let response = replica.head_manifest(repo, reference).await;
    match response.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => Some(header(&response, "docker-content-digest")),
        status => panic!("HEAD {repo}:{reference} on {}: {status}", replica.addr),
    }
}

/// Asks `replica` until it answers `wanted` (GET and HEAD), from the moment
/// the change was acknowledged (`acknowledged`); every answer before must be
/// `previous`. Returns how long after the acknowledgement the first right
/// answer came. Fails if any request that began `BOUND` after the
/// acknowledgement is answered with `previous`.
async fn changes_within_bound(
    replica: &BerthProcess,
    repo: &str,
    reference: &str,
    previous: Option<&str>,
    wanted: Option<&str>,
    acknowledged: Instant,
) -> Duration {
    loop {
        let began = acknowledged.elapsed();
        let get = served(replica, repo, reference).await;
        let head = served_to_head(replica, repo, reference).await;
        if get.as_deref() == wanted && head.as_deref() == wanted {
            return began;
        }
        for answer in [&get, &head] {
            assert!(
                answer.as_deref() == previous || answer.as_deref() == wanted,
                "{repo}:{reference} on {}: {answer:?}, neither {previous:?} nor {wanted:?}",
                replica.addr
            );
        }
        assert!(
            began < BOUND,
            "{repo}:{reference} on {}: still {get:?}/{head:?} {began:?} after the change was acknowledged",
            replica.addr
        );
    }
}

/// Warms `replica`'s cache with `repo:reference` (a few reads).
async fn warm(replica: &BerthProcess, repo: &str, reference: &str, expected: &str) {
    for _ in 0..5 {
        assert_eq!(
            served(replica, repo, reference).await.as_deref(),
            Some(expected)
        );
        assert_eq!(
            served_to_head(replica, repo, reference).await.as_deref(),
            Some(expected)
        );
    }
}

async fn admin_connection(database: &PgDatabase) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&database.url)
        .await
        .expect("admin connection to the test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_changes_the_other_serves_changed_within_the_bound() {
    let Some(pair) = two_replicas().await else {
        return;
    };
    let (a, b) = (&pair.a, &pair.b);
    let first = a.push_image("proj/app", "v1").await;
    let second = a.push_image("proj/app", "other").await;
    warm(b, "proj/app", "v1", &first.digest).await;
    warm(b, "proj/app", &first.digest, &first.digest).await;
    assert_eq!(b.tags("proj/app").await, ["other", "v1"]);

    // A tag moved on A.
    a.push_manifest("proj/app", "v1", &second.manifest).await;
    let moved = changes_within_bound(
        b,
        "proj/app",
        "v1",
        Some(&first.digest),
        Some(&second.digest),
        Instant::now(),
    )
    .await;
    // And back, a few times: the bound holds every time.
    let mut delays = vec![moved];
    for round in 0..6 {
        let (from, to) = if round % 2 == 0 {
            (&second, &first)
        } else {
            (&first, &second)
        };
        warm(b, "proj/app", "v1", &from.digest).await;
        a.push_manifest("proj/app", "v1", &to.manifest).await;
        delays.push(
            changes_within_bound(
                b,
                "proj/app",
                "v1",
                Some(&from.digest),
                Some(&to.digest),
                Instant::now(),
            )
            .await,
        );
    }
    eprintln!("tag moves seen by the other replica after: {delays:?}");

    // A tag added on A shows in B's tag list.
    a.push_manifest("proj/app", "v2", &first.manifest).await;
    let added = Instant::now();
    loop {
        let tags = b.tags("proj/app").await;
        if tags == ["other", "v1", "v2"] {
            break;
        }
        assert!(added.elapsed() < BOUND, "B still lists {tags:?}");
    }

    // A manifest deleted on A (with the tags pointing at it) stops being
    // served by B, by tag and by digest.
    warm(b, "proj/app", "v2", &first.digest).await;
    warm(b, "proj/app", &first.digest, &first.digest).await;
    expect_status(
        a.delete_manifest("proj/app", &first.digest).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let deleted = Instant::now();
    changes_within_bound(b, "proj/app", "v2", Some(&first.digest), None, deleted).await;
    changes_within_bound(
        b,
        "proj/app",
        &first.digest,
        Some(&first.digest),
        None,
        deleted,
    )
    .await;
    // A tag deleted on A.
    warm(b, "proj/app", "other", &second.digest).await;
    expect_status(
        a.delete_manifest("proj/app", "other").await,
        StatusCode::ACCEPTED,
    )
    .await;
    changes_within_bound(
        b,
        "proj/app",
        "other",
        Some(&second.digest),
        None,
        Instant::now(),
    )
    .await;
}

/// The cache is really in use on PostgreSQL (otherwise the test above
/// proves nothing): a change made behind the triggers' back is not seen
/// until the entry's time to live runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_no_replica_is_told_of_is_served_stale_for_at_most_the_time_to_live() {
    let Some(pair) = two_replicas().await else {
        return;
    };
    let (a, b) = (&pair.a, &pair.b);
    let first = a.push_image("proj/app", "v1").await;
    let second = a.push_image("proj/app", "other").await;
    warm(b, "proj/app", "v1", &first.digest).await;

    let mut admin = admin_connection(&pair.database).await;
    admin
        .execute("ALTER TABLE tags DISABLE TRIGGER tags_notify_pulls")
        .await
        .expect("disable the trigger");
    sqlx::query("UPDATE tags SET digest = $1 WHERE name = 'v1'")
        .bind(&second.digest)
        .execute(&mut admin)
        .await
        .expect("move the tag behind berth's back");
    let changed = Instant::now();
    admin
        .execute("ALTER TABLE tags ENABLE TRIGGER tags_notify_pulls")
        .await
        .expect("enable the trigger");
    // A reads it from the database (it never cached it).
    assert_eq!(
        served(a, "proj/app", "v1").await.as_deref(),
        Some(second.digest.as_str())
    );
    assert_eq!(
        served(b, "proj/app", "v1").await.as_deref(),
        Some(first.digest.as_str()),
        "B serves v1 from its cache"
    );
    loop {
        let began = changed.elapsed();
        if served(b, "proj/app", "v1").await.as_deref() == Some(second.digest.as_str()) {
            assert!(
                began > SHARED_TTL / 2,
                "seen after {began:?}: told after all?"
            );
            break;
        }
        assert!(
            began < SHARED_TTL + Duration::from_secs(1),
            "still stale {began:?} later"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listener_is_cut_off_serves_nothing_stale() {
    let Some(pair) = two_replicas().await else {
        return;
    };
    let (a, b) = (&pair.a, &pair.b);
    let first = a.push_image("proj/app", "v1").await;
    let second = a.push_image("proj/app", "other").await;
    warm(b, "proj/app", "v1", &first.digest).await;
    assert!(
        b.log()
            .contains("now listening for other replicas' changes"),
        "B listens: {}",
        b.log_tail()
    );

    // B's listener is cut off and cannot connect again: the replicas'
    // pools keep the connections they have, so they first open a few (the
    // catalog is read from the database every time).
    for replica in [a, b] {
        let listings = (0..16).map(|_| replica.catalog(""));
        for response in futures::future::join_all(listings).await {
            expect_status(response, StatusCode::OK).await;
        }
    }
    let mut admin = sqlx::PgConnection::connect(pair.database.admin_url())
        .await
        .expect("connection to the server's admin database");
    let name = &pair.database.name;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        )))
        .await
        .expect("refuse new connections");
    let terminated = sqlx::query(
        "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = $2) t",
    )
    .bind(name)
    .bind(format!("berth changes {}", b.pid()))
    .fetch_one(&mut admin)
    .await
    .expect("terminate B's listener");
    assert_eq!(terminated.get::<i64, _>("n"), 1, "B's listener found");

    // A moves the tag while B cannot hear of it.
    a.push_manifest("proj/app", "v1", &second.manifest).await;
    let moved = changes_within_bound(
        b,
        "proj/app",
        "v1",
        Some(&first.digest),
        Some(&second.digest),
        Instant::now(),
    )
    .await;
    eprintln!("moved tag served by the cut-off replica after {moved:?}");
    // B noticed the loss (not only that its listener fell behind).
    let cut = Instant::now();
    while !b
        .log()
        .contains("not listening for other replicas' changes")
    {
        assert!(cut.elapsed() < BOUND, "B did not notice: {}", b.log_tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still cut off, B keeps answering from the database, moves included.
    for (from, to) in [(&second, &first), (&first, &second)] {
        a.push_manifest("proj/app", "v1", &to.manifest).await;
        let acknowledged = Instant::now();
        changes_within_bound(
            b,
            "proj/app",
            "v1",
            Some(&from.digest),
            Some(&to.digest),
            acknowledged,
        )
        .await;
        // Read again and again: nothing older comes back.
        while acknowledged.elapsed() < BOUND * 2 {
            assert_eq!(
                served(b, "proj/app", "v1").await.as_deref(),
                Some(to.digest.as_str())
            );
        }
    }

    // Connections allowed again: B listens again, and its cache follows
    // A's changes as before.
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        )))
        .await
        .expect("allow connections");
    let allowed = Instant::now();
    while b
        .log()
        .matches("now listening for other replicas' changes")
        .count()
        < 2
    {
        assert!(
            allowed.elapsed() < Duration::from_secs(15),
            "B does not listen again: {}",
            b.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warm(b, "proj/app", "v1", &second.digest).await;
    a.push_manifest("proj/app", "v1", &first.manifest).await;
    changes_within_bound(
        b,
        "proj/app",
        "v1",
        Some(&second.digest),
        Some(&first.digest),
        Instant::now(),
    )
    .await;
}
