//! Storage accounting and namespace quotas on both engines: usage summed
//! from the links (deduplicated and raw, shared bytes, counts), exact after
//! mounts, unlinks and manifest deletes; quotas set, replaced, cleared and
//! gone with their namespace.

use super::super::access::AccessStore;
use super::super::quotas::{NamespaceQuota, Usage};
use super::super::*;
use super::{TestDb, digest, manifest, namespace, repo, tag};

fn quota(ns: &str, bytes: Option<u64>, repositories: Option<u64>) -> NamespaceQuota {
    NamespaceQuota {
        namespace: ns.into(),
        max_bytes: bytes,
        max_repositories: repositories,
        max_tags: None,
        updated_by: Some("root".into()),
        updated_at: 42,
    }
}

async fn usage_is_summed_from_the_links(db: &TestDb) {
    let store: &dyn MetadataStore = &db.store;
    let (a, b) = (repo("acct/a"), repo("acct/b"));
    let (shared, own) = (digest("shared"), digest("own"));
    store.link_blob(&a, &shared, 100).await.unwrap();
    store.link_blob(&a, &own, 50).await.unwrap();
    // The same blob in a second repository (a dedupe push or a mount):
    // the namespace's bytes stay, its raw bytes grow.
    assert_eq!(store.mount_blob(&b, &shared).await.unwrap(), Some(100));
    // Neighbours that must not count: another namespace holding the same
    // blob, and one whose name starts alike.
    store
        .link_blob(&repo("other/x"), &shared, 100)
        .await
        .unwrap();
    store
        .link_blob(&repo("acctx/y"), &digest("y"), 1000)
        .await
        .unwrap();
    let m = manifest("accounted", None, None);
    let m_size = m.content.len() as u64;
    store.put_manifest(&a, &m, &[tag("v1")]).await.unwrap();
    // An expired tag does not count.
    let mut gone = manifest("expired", None, None);
    gone.tag_expires_at = Some(now() - 1000);
    store.put_manifest(&a, &gone, &[tag("old")]).await.unwrap();
    let gone_size = gone.content.len() as u64;

    let usage = store.namespace_usage("acct").await.unwrap();
    assert_eq!(
        usage,
        Usage {
            repositories: 2,
            tags: 1,
            manifests: 2,
            blobs: 2,
            bytes: 150 + m_size + gone_size,
            raw_bytes: 250 + m_size + gone_size,
            uploading_bytes: 0,
        }
    );
    assert!(store.namespace_holds("acct", &shared).await.unwrap());
    assert!(store.namespace_holds("acct", &m.digest).await.unwrap());
    assert!(!store.namespace_holds("acct", &digest("y")).await.unwrap());

    let repos = store.repository_usages(Some("acct")).await.unwrap();
    let names: Vec<&str> = repos.iter().map(|r| r.repository.as_str()).collect();
    assert_eq!(names, ["acct/a", "acct/b"]);
    assert_eq!(
        (repos[0].bytes, repos[0].shared_bytes, repos[0].tags),
        (150 + m_size + gone_size, 100, 1)
    );
    assert_eq!(
        (repos[0].manifests, repos[0].blobs),
        (2, 2),
        "acct/a's counts"
    );
    assert_eq!(
        (repos[1].bytes, repos[1].shared_bytes, repos[1].tags),
        (100, 100, 0)
    );
    let all = store.repository_usages(None).await.unwrap();
    assert_eq!(all.len(), 4);

    // Uploads in progress count apart.
    store
        .create_upload(&Upload {
            id: "acct-upload".into(),
            repository: a.clone(),
            algorithm: crate::oci::digest::DigestAlgorithm::Sha256,
            created_at: now(),
            updated_at: now(),
            size: 0,
            parts: 0,
            hash_state: Some(vec![]),
        })
        .await
        .unwrap();
    let part = UploadPartRecord {
        number: 1,
        token: "t".into(),
        size: 7,
    };
    assert!(
        store
            .record_upload_part("acct-upload", &part, 7, &[1])
            .await
            .unwrap()
    );
    assert_eq!(
        store.namespace_usage("acct").await.unwrap().uploading_bytes,
        7
    );
    // What a quota checks: the same figures, by the cheaper sums.
    let usage = store.namespace_usage("acct").await.unwrap();
    assert_eq!(
        store.namespace_bytes("acct").await.unwrap(),
        usage.bytes + 7
    );
    assert_eq!(
        store.namespace_counts("acct").await.unwrap(),
        super::super::quotas::Counts {
            repositories: 2,
            tags: 1
        }
    );

    // Exact after removals: an unlinked blob and a deleted manifest (with
    // its tag) no longer count.
    assert!(store.unlink_blob(&a, &own).await.unwrap());
    assert!(store.delete_manifest(&a, &m.digest).await.unwrap());
    let usage = store.namespace_usage("acct").await.unwrap();
    assert_eq!(
        (
            usage.bytes,
            usage.raw_bytes,
            usage.tags,
            usage.manifests,
            usage.blobs
        ),
        (100 + gone_size, 200 + gone_size, 0, 1, 1)
    );
    assert!(!store.namespace_holds("acct", &own).await.unwrap());
    assert_eq!(
        store.namespace_usage("empty").await.unwrap(),
        Usage::default()
    );
}

async fn quotas_are_set_replaced_and_cleared(db: &TestDb) {
    let store: &dyn AccessStore = &db.store;
    assert!(
        !store
            .set_namespace_quota(&quota("capped", Some(10), None))
            .await
            .unwrap(),
        "no quota for a namespace that does not exist"
    );
    store.create_namespace(&namespace("capped")).await.unwrap();
    let before = store.policy_version().await.unwrap();
    let first = quota("capped", Some(10 << 20), Some(5));
    assert!(store.set_namespace_quota(&first).await.unwrap());
    assert!(
        store.policy_version().await.unwrap() > before,
        "a quota is policy: replicas reload it"
    );
    assert_eq!(
        store.namespace_quota("capped").await.unwrap(),
        Some(first.clone())
    );
    let replaced = NamespaceQuota {
        max_tags: Some(1000),
        max_bytes: Some(i64::MAX as u64),
        ..quota("capped", None, None)
    };
    assert!(store.set_namespace_quota(&replaced).await.unwrap());
    assert_eq!(store.namespace_quotas().await.unwrap(), vec![replaced]);

    // A quota limiting nothing is removed.
    assert!(
        store
            .set_namespace_quota(&quota("capped", None, None))
            .await
            .unwrap()
    );
    assert_eq!(store.namespace_quota("capped").await.unwrap(), None);
    assert!(
        !store
            .set_namespace_quota(&quota("capped", None, None))
            .await
            .unwrap()
    );

    // Deleting the namespace deletes its quota.
    assert!(store.set_namespace_quota(&first).await.unwrap());
    assert!(store.delete_namespace("capped").await.unwrap());
    assert!(store.namespace_quotas().await.unwrap().is_empty());
}

async fn reservations_share_the_quota_atomically(db: &TestDb) {
    let access: &dyn AccessStore = &db.store;
    let store: &dyn MetadataStore = &db.store;
    access.create_namespace(&namespace("held")).await.unwrap();
    assert!(
        access
            .set_namespace_quota(&quota("held", Some(1000), None))
            .await
            .unwrap()
    );
    store
        .link_blob(&repo("held/app"), &digest("stored"), 300)
        .await
        .unwrap();
    let later = now() + 60_000;

    // 300 stored: 700 left, taken by two writers in turn.
    assert!(
        store
            .reserve_quota("held", "a", 400, 1000, later)
            .await
            .unwrap()
    );
    assert_eq!(store.namespace_bytes("held").await.unwrap(), 700);
    assert!(
        !store
            .reserve_quota("held", "b", 301, 1000, later)
            .await
            .unwrap(),
        "beyond what the stored bytes and a's reservation leave"
    );
    assert!(
        store
            .reserve_quota("held", "b", 300, 1000, later)
            .await
            .unwrap()
    );
    // A holder's own reservation is replaced, not added to.
    assert!(
        store
            .reserve_quota("held", "a", 400, 1000, later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_quota("held", "a", 401, 1000, later)
            .await
            .unwrap()
    );
    assert_eq!(store.namespace_bytes("held").await.unwrap(), 1000);

    // Released, its bytes are free again; an expired one counts no more.
    store.release_quota("a").await.unwrap();
    assert_eq!(store.namespace_bytes("held").await.unwrap(), 600);
    assert!(
        store
            .reserve_quota("held", "c", 400, 1000, now() - 1)
            .await
            .unwrap()
    );
    assert_eq!(store.namespace_bytes("held").await.unwrap(), 600);
    assert!(
        store
            .reserve_quota("held", "d", 400, 1000, later)
            .await
            .unwrap()
    );
    // Another namespace's reservations are its own.
    assert_eq!(store.namespace_bytes("other").await.unwrap(), 0);

    // Concurrent writers: 300 stored under a limit of 700, and 20 writers
    // asking for 100 bytes each at once: exactly 4 get them.
    store.release_quota("d").await.unwrap();
    store.release_quota("b").await.unwrap();
    let granted = futures::future::join_all((0..20).map(|i| {
        let holder = format!("w{i}");
        async move {
            store
                .reserve_quota("held", &holder, 100, 700, later)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(granted.iter().filter(|g| **g).count(), 4);
    assert_eq!(store.namespace_bytes("held").await.unwrap(), 700);
}

engine_tests!(
    ;
    db:
    usage_is_summed_from_the_links,
    quotas_are_set_replaced_and_cleared,
    reservations_share_the_quota_atomically,
);

/// How long a namespace's usage takes to sum with 10,000 blobs in 10
/// repositories (each blob in two of them), on each engine: what a push
/// into a namespace with a byte quota pays once per write request. Not
/// run by default (it prints; nothing to assert on a shared machine):
/// `cargo test --lib quotas::timing -- --ignored --nocapture`.
async fn usage_of_ten_thousand_blobs(db: &TestDb) {
    use sqlx::Executor as _;
    let store = &db.store;
    for r in 0..10 {
        store
            .link_blob(&repo(&format!("big/r{r}")), &digest("seed"), 1)
            .await
            .unwrap();
    }
    let mut tx = store.writer().begin().await.unwrap();
    for i in 0..10_000u32 {
        let d = digest(&format!("blob-{i}"));
        tx.execute(
            sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, 0)")
                .bind(d.as_str())
                .bind(i64::from(i) + 1),
        )
        .await
        .unwrap();
        for r in [i % 10, (i + 1) % 10] {
            tx.execute(
                sqlx::query(
                    "INSERT INTO repository_blobs (repository_id, digest, created_at) \
                     SELECT id, $1, 0 FROM repositories WHERE name = $2",
                )
                .bind(d.as_str())
                .bind(format!("big/r{r}")),
            )
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    let _ = store.namespace_usage("big").await.unwrap();
    let started = std::time::Instant::now();
    let rounds = 20;
    let mut usage = Usage::default();
    for _ in 0..rounds {
        usage = store.namespace_usage("big").await.unwrap();
    }
    let per_sum = started.elapsed() / rounds;
    assert_eq!(usage.blobs, 10_001);
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        assert_eq!(store.namespace_bytes("big").await.unwrap(), usage.bytes);
    }
    let per_bytes = started.elapsed() / rounds;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        assert!(
            store
                .namespace_holds("big", &digest("blob-5000"))
                .await
                .unwrap()
        );
    }
    let per_hold = started.elapsed() / rounds;
    let started = std::time::Instant::now();
    let repos = store.repository_usages(Some("big")).await.unwrap();
    let per_listing = started.elapsed();
    assert_eq!(repos.len(), 10);
    let engine = match db.config {
        DatabaseConfig::Sqlite { .. } => "SQLite",
        _ => "PostgreSQL",
    };
    eprintln!(
        "{engine}: namespace usage of 10,000 blobs (20,000 links) {per_sum:?}, bytes only (a quota's check) {per_bytes:?}, namespace_holds {per_hold:?}, repository listing {per_listing:?}"
    );
}

mod timing {
    mod sqlite {
        #[tokio::test]
        #[ignore = "a measurement: run with --ignored --nocapture"]
        async fn usage_of_ten_thousand_blobs() {
            let db = super::super::TestDb::sqlite().await;
            super::super::usage_of_ten_thousand_blobs(&db).await;
            db.finish().await;
        }
    }
    mod postgres {
        #[tokio::test]
        #[ignore = "a measurement: run with --ignored --nocapture"]
        async fn usage_of_ten_thousand_blobs() {
            if let Some(db) = super::super::TestDb::postgres().await {
                super::super::usage_of_ten_thousand_blobs(&db).await;
                db.finish().await;
            }
        }
    }
}
