//! The one test suite every metadata engine must pass.
//!
//! Each case runs against the embedded SQLite database and against
//! PostgreSQL. PostgreSQL is found at `BERTH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each case gets a fresh
//! database there. When `BERTH_REQUIRE_POSTGRES=1` (CI sets it) an unreachable
//! server fails the suite instead of skipping the PostgreSQL half.

use bytes::Bytes;
use sqlx::{Connection, Executor, Row};

use super::access::*;
use super::*;
use crate::oci::digest::DigestAlgorithm;

pub(crate) struct TestDb {
    pub store: SqlMetadataStore,
    /// Where the store is, for opening another (as another replica would).
    pub config: DatabaseConfig,
    _dir: Option<tempfile::TempDir>,
    drop_database: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig::Sqlite {
            path: dir.path().join("berth.db"),
        };
        let store = SqlMetadataStore::connect(&config).await.unwrap();
        TestDb {
            store,
            config,
            _dir: Some(dir),
            drop_database: None,
        }
    }

    /// `None` when PostgreSQL is unreachable and not required.
    pub async fn postgres() -> Option<TestDb> {
        let (admin_url, name, url) = empty_postgres_database().await?;
        let config = DatabaseConfig::Postgres {
            url,
            max_connections: 4,
        };
        let store = SqlMetadataStore::connect(&config).await.unwrap();
        Some(TestDb {
            store,
            config,
            _dir: None,
            drop_database: Some((admin_url, name)),
        })
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.drop_database
            && let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .await;
        }
    }
}

/// A new, empty PostgreSQL database: `(server URL, name, database URL)`, or
/// `None` when PostgreSQL is unreachable and not required.
async fn empty_postgres_database() -> Option<(String, String, String)> {
    let admin_url = std::env::var("BERTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let required = std::env::var("BERTH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    sqlx::any::install_default_drivers();
    let mut admin = match sqlx::AnyConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!("skipping PostgreSQL half: {e} (set BERTH_REQUIRE_POSTGRES=1 to fail)");
            return None;
        }
        Err(e) => panic!("PostgreSQL required but unreachable at {admin_url}: {e}"),
    };
    let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("BERTH_TEST_POSTGRES_URL must name a database"),
    };
    Some((admin_url, name, url))
}

/// Runs `$case(&dyn MetadataStore)` once per engine (`$case(&TestDb)`
/// after `db:`, for cases that open more stores on the same database).
macro_rules! engine_tests {
    ($($case:ident),* $(,)? ; db: $($db_case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::TestDb::sqlite().await;
                    super::$case(&db.store).await;
                    db.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $db_case() {
                    let db = super::TestDb::sqlite().await;
                    super::$db_case(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$case(&db.store).await;
                        db.finish().await;
                    }
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $db_case() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$db_case(&db).await;
                        db.finish().await;
                    }
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::TestDb::sqlite().await;
                    super::$case(&db.store).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$case(&db.store).await;
                        db.finish().await;
                    }
                }
            )*
        }
    };
}

engine_tests!(
    blobs_are_linked_per_repository,
    repositories_page_in_byte_order,
    manifests_by_tag_and_digest,
    tags_move_and_page,
    deleting_a_manifest_removes_its_tags,
    missing_references_are_reported,
    referrers_filter_by_artifact_type,
    uploads_round_trip_and_go_stale,
    upload_parts_are_recorded_in_turn,
    users_are_unique,
    identical_manifests_are_stored_once,
    policy_version_moves_with_every_change,
    groups_hold_members,
    namespaces_own_accounts_bindings_and_tokens,
    tokens_are_found_by_secret_hash_and_revoked_by_name,
    signing_keys_rotate,
    a_namespace_takes_its_repositories,
    manifests_referencing_a_blob_are_found_per_repository,
    proxy_namespaces_are_kept_and_go_with_their_namespace,
    a_stored_value_its_type_refuses_is_corrupt,
    token_names_are_unique_per_owner,
    the_last_super_user_is_kept,
    failed_logins_add_up_lock_and_reset,
    ;
    db:
    a_due_job_is_claimed_by_exactly_one_replica,
    an_expired_lease_is_taken_over,
    job_outcomes_and_backoff_are_recorded,
    jobs_are_made_due_unless_running,
);

fn repo(name: &str) -> RepositoryName {
    name.parse().unwrap()
}

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn digest(seed: &str) -> Digest {
    DigestAlgorithm::Sha256.digest_of(seed.as_bytes())
}

fn manifest(body: &str, subject: Option<Digest>, artifact_type: Option<&str>) -> NewManifest {
    NewManifest {
        digest: DigestAlgorithm::Sha256.digest_of(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(body.to_owned()),
        artifact_type: artifact_type.map(str::to_owned),
        subject,
        annotations: Some(r#"{"k":"v"}"#.into()),
        references: vec![(digest("config"), ReferenceKind::Config)],
        required: Default::default(),
        tag_expires_at: None,
    }
}

async fn blobs_are_linked_per_repository(store: &dyn MetadataStore) {
    let (a, b) = (repo("ns/a"), repo("ns/b"));
    let d = digest("blob");
    assert_eq!(store.repository_blob(&a, &d).await.unwrap(), None);
    assert_eq!(store.blob_size(&d).await.unwrap(), None);
    store.link_blob(&a, &d, 42).await.unwrap();
    store.link_blob(&a, &d, 42).await.unwrap(); // idempotent
    assert_eq!(store.repository_blob(&a, &d).await.unwrap(), Some(42));
    assert_eq!(store.repository_blob(&b, &d).await.unwrap(), None);
    assert_eq!(store.blob_size(&d).await.unwrap(), Some(42));
    assert!(store.repository_exists(&a).await.unwrap());
    assert!(!store.repository_exists(&b).await.unwrap());
    store.link_blob(&b, &d, 42).await.unwrap();
    assert_eq!(
        store.repositories_with_blob(&d, 10).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(store.unlink_blob(&a, &d).await.unwrap());
    assert!(!store.unlink_blob(&a, &d).await.unwrap());
    assert_eq!(store.repository_blob(&a, &d).await.unwrap(), None);
    assert_eq!(store.repository_blob(&b, &d).await.unwrap(), Some(42));
}

async fn repositories_page_in_byte_order(store: &dyn MetadataStore) {
    for name in ["b", "a/z", "a", "B0", "a-b", "c/d/e"] {
        let name = name.to_lowercase();
        store
            .link_blob(&repo(&name), &digest(&name), 1)
            .await
            .unwrap();
    }
    let all = store.list_repositories(None, 100).await.unwrap();
    assert_eq!(all.items, vec!["a", "a-b", "a/z", "b", "b0", "c/d/e"]);
    assert!(!all.more);
    let first = store.list_repositories(None, 2).await.unwrap();
    assert_eq!(first.items, vec!["a", "a-b"]);
    assert!(first.more);
    let next = store.list_repositories(Some("a-b"), 3).await.unwrap();
    assert_eq!(next.items, vec!["a/z", "b", "b0"]);
    assert!(next.more);
    let last = store.list_repositories(Some("b0"), 3).await.unwrap();
    assert_eq!(last.items, vec!["c/d/e"]);
    assert!(!last.more);
}

async fn manifests_by_tag_and_digest(store: &dyn MetadataStore) {
    let r = repo("proj/app");
    let m = manifest(r#"{"schemaVersion":2}"#, None, None);
    store
        .put_manifest(&r, &m, &[tag("v1"), tag("latest")])
        .await
        .unwrap();

    let by_tag = store
        .manifest(&r, &Reference::Tag(tag("latest")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.content, m.content);
    assert_eq!(by_tag.meta.digest, m.digest);
    assert_eq!(by_tag.meta.size, m.content.len() as u64);
    assert_eq!(by_tag.meta.media_type, m.media_type);

    let meta = store
        .manifest_meta(&r, &Reference::Digest(m.digest.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta, by_tag.meta);

    let other = repo("proj/other");
    assert!(
        store
            .manifest(&other, &Reference::Digest(m.digest.clone()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .manifest(&r, &Reference::Tag(tag("nope")))
            .await
            .unwrap()
            .is_none()
    );
}

async fn tags_move_and_page(store: &dyn MetadataStore) {
    let r = repo("t/r");
    assert_eq!(store.list_tags(&r, None, 10).await.unwrap(), None);
    let m1 = manifest("one", None, None);
    let m2 = manifest("two", None, None);
    let names = ["b", "A", "a", "_z", "1.0", "Z"];
    let tags: Vec<Tag> = names.iter().map(|n| tag(n)).collect();
    store.put_manifest(&r, &m1, &tags).await.unwrap();
    let page = store.list_tags(&r, None, 100).await.unwrap().unwrap();
    assert_eq!(page.items, vec!["1.0", "A", "Z", "_z", "a", "b"]);
    let page = store.list_tags(&r, Some("Z"), 2).await.unwrap().unwrap();
    assert_eq!(page.items, vec!["_z", "a"]);
    assert!(page.more);

    store.put_manifest(&r, &m2, &[tag("a")]).await.unwrap();
    let moved = store
        .manifest_meta(&r, &Reference::Tag(tag("a")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.digest, m2.digest);
    assert!(store.delete_tag(&r, &tag("a")).await.unwrap());
    assert!(!store.delete_tag(&r, &tag("a")).await.unwrap());
    assert!(
        store
            .manifest_meta(&r, &Reference::Tag(tag("a")))
            .await
            .unwrap()
            .is_none()
    );
    // The manifest stays reachable by digest after its tag is gone.
    assert!(
        store
            .manifest_meta(&r, &Reference::Digest(m2.digest.clone()))
            .await
            .unwrap()
            .is_some()
    );
}

async fn deleting_a_manifest_removes_its_tags(store: &dyn MetadataStore) {
    let r = repo("d/r");
    let m = manifest("gone", None, None);
    let keep = manifest("kept", None, None);
    store
        .put_manifest(&r, &m, &[tag("x"), tag("y")])
        .await
        .unwrap();
    store.put_manifest(&r, &keep, &[tag("z")]).await.unwrap();
    assert!(store.delete_manifest(&r, &m.digest).await.unwrap());
    assert!(!store.delete_manifest(&r, &m.digest).await.unwrap());
    assert!(
        !store
            .delete_manifest(&repo("d/absent"), &m.digest)
            .await
            .unwrap()
    );
    let tags = store.list_tags(&r, None, 10).await.unwrap().unwrap();
    assert_eq!(tags.items, vec!["z"]);
    assert!(
        store
            .manifest(&r, &Reference::Digest(m.digest.clone()))
            .await
            .unwrap()
            .is_none()
    );
}

async fn missing_references_are_reported(store: &dyn MetadataStore) {
    let r = repo("m/r");
    let (have, lack) = (digest("have"), digest("lack"));
    store.link_blob(&r, &have, 1).await.unwrap();
    let child = manifest("child", None, None);
    store.put_manifest(&r, &child, &[]).await.unwrap();
    let missing = store
        .missing_in_repository(
            &r,
            &[have.clone(), lack.clone()],
            &[child.digest.clone(), digest("nochild")],
        )
        .await
        .unwrap();
    assert_eq!(missing, vec![lack.clone(), digest("nochild")]);
    // A manifest digest is not a blob and vice versa.
    let missing = store
        .missing_in_repository(
            &r,
            std::slice::from_ref(&child.digest),
            std::slice::from_ref(&have),
        )
        .await
        .unwrap();
    assert_eq!(missing, vec![child.digest.clone(), have.clone()]);
    let missing = store
        .missing_in_repository(&repo("m/none"), std::slice::from_ref(&have), &[])
        .await
        .unwrap();
    assert_eq!(missing, vec![have]);
}

/// Which images of a repository need a blob (pull-through asks before
/// fetching anything): only manifests in that repository, one level up
/// at a time, never through a subject.
async fn manifests_referencing_a_blob_are_found_per_repository(store: &dyn MetadataStore) {
    let (r, other) = (repo("pt/app"), repo("pt/other"));
    let layer = digest("pt layer");
    let mut image = manifest("pt image", None, None);
    image.references.push((layer.clone(), ReferenceKind::Layer));
    let mut index = manifest("pt index", None, None);
    index.references = vec![(image.digest.clone(), ReferenceKind::Manifest)];
    let referrer = manifest("pt signature", Some(image.digest.clone()), Some("sig"));
    for m in [&image, &index, &referrer] {
        store.put_manifest(&r, m, &[]).await.unwrap();
    }
    let found = store
        .manifests_referencing(&r, std::slice::from_ref(&layer))
        .await
        .unwrap();
    assert_eq!(found, vec![image.digest.clone()]);
    let parents = store
        .manifests_referencing(&r, std::slice::from_ref(&image.digest))
        .await
        .unwrap();
    assert_eq!(
        parents,
        vec![index.digest.clone()],
        "a subject is no parent"
    );
    let config = store
        .manifests_referencing(&r, &[digest("config"), layer.clone()])
        .await
        .unwrap();
    assert_eq!(
        config,
        {
            let mut both = vec![image.digest.clone(), referrer.digest.clone()];
            both.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            both
        },
        "the image and the signature name the config; the index does not"
    );
    assert!(
        store
            .manifests_referencing(&other, std::slice::from_ref(&layer))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .manifests_referencing(&r, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn proxy_namespaces_are_kept_and_go_with_their_namespace(store: &SqlMetadataStore) {
    use super::proxies::{ProxyStore, StoredProxy};
    store.create_namespace(&namespace("hub")).await.unwrap();
    let mut proxy = StoredProxy {
        namespace: "hub".into(),
        upstream: "registry-1.docker.io".into(),
        secret: Some("dockerhub".into()),
        ttl_seconds: 86_400,
        insecure: false,
        created_by: Some("admin".into()),
        created_at: now(),
    };
    store.put_proxy(&proxy).await.unwrap();
    assert_eq!(store.proxies().await.unwrap(), vec![proxy.clone()]);
    proxy.upstream = "quay.io".into();
    proxy.secret = None;
    proxy.insecure = true;
    store.put_proxy(&proxy).await.unwrap();
    assert_eq!(store.proxies().await.unwrap(), vec![proxy.clone()]);
    // Only for a namespace that exists.
    let mut stray = proxy.clone();
    stray.namespace = "nowhere".into();
    assert!(store.put_proxy(&stray).await.is_err());
    assert!(store.delete_namespace("hub").await.unwrap());
    assert!(store.proxies().await.unwrap().is_empty());
    assert!(!store.delete_proxy("hub").await.unwrap());
}

/// A row whose value its type refuses (a negative count, a digest that
/// does not parse) is reported as corrupt, not as a database failure, and
/// not read as something else.
async fn a_stored_value_its_type_refuses_is_corrupt(store: &SqlMetadataStore) {
    use super::garbage::GarbageStore;
    store.start_gc_run("run-1", "replica-a").await.unwrap();
    assert!(store.gc_run("run-1").await.unwrap().is_some());
    sqlx::query("UPDATE gc_runs SET blobs_removed = -1 WHERE id = 'run-1'")
        .execute(store.writer())
        .await
        .unwrap();
    let read = store.gc_run("run-1").await;
    assert!(
        matches!(read, Err(MetadataError::Corrupt(ref e)) if e.contains("blobs_removed")),
        "{read:?}"
    );
    assert!(matches!(
        store.gc_runs(10).await,
        Err(MetadataError::Corrupt(_))
    ));
}

async fn referrers_filter_by_artifact_type(store: &dyn MetadataStore) {
    let r = repo("ref/r");
    let subject = digest("subject-not-pushed");
    let sbom = manifest("sbom", Some(subject.clone()), Some("application/sbom"));
    let sig = manifest("sig", Some(subject.clone()), Some("application/sig"));
    let unrelated = manifest("unrelated", Some(digest("other")), Some("application/sbom"));
    for m in [&sbom, &sig, &unrelated] {
        store.put_manifest(&r, m, &[]).await.unwrap();
    }
    // The same referrer pushed elsewhere is not listed here.
    store
        .put_manifest(
            &repo("ref/elsewhere"),
            &manifest("far", Some(subject.clone()), None),
            &[],
        )
        .await
        .unwrap();

    let all = store.referrers(&r, &subject, None).await.unwrap();
    let mut expected = vec![sbom.digest.clone(), sig.digest.clone()];
    expected.sort();
    assert_eq!(
        all.iter().map(|x| x.digest.clone()).collect::<Vec<_>>(),
        expected
    );
    let filtered = store
        .referrers(&r, &subject, Some("application/sbom"))
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].digest, sbom.digest);
    assert_eq!(
        filtered[0].artifact_type.as_deref(),
        Some("application/sbom")
    );
    assert_eq!(filtered[0].annotations.as_deref(), Some(r#"{"k":"v"}"#));
    assert_eq!(filtered[0].size, sbom.content.len() as u64);
    assert!(
        store
            .referrers(&r, &digest("none"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn uploads_round_trip_and_go_stale(store: &dyn MetadataStore) {
    let r = repo("u/r");
    let upload = Upload {
        id: "abc".into(),
        repository: r.clone(),
        algorithm: DigestAlgorithm::Sha512,
        created_at: 1_000,
        updated_at: 1_000,
        size: 0,
        parts: 0,
        hash_state: Some(vec![7; 208]),
    };
    store.create_upload(&upload).await.unwrap();
    assert!(store.upload_exists("abc").await.unwrap());
    assert!(!store.upload_exists("abd").await.unwrap());
    assert_eq!(store.upload(&r, "abc").await.unwrap(), Some(upload.clone()));
    // An upload is bound to its repository.
    assert_eq!(store.upload(&repo("u/other"), "abc").await.unwrap(), None);
    assert_eq!(
        store.stale_uploads(2_000, 10).await.unwrap(),
        vec![upload.clone()]
    );
    assert!(store.touch_upload("abc").await.unwrap());
    assert!(store.stale_uploads(2_000, 10).await.unwrap().is_empty());
    assert!(store.delete_upload("abc").await.unwrap());
    assert!(!store.delete_upload("abc").await.unwrap());
    assert_eq!(store.upload(&r, "abc").await.unwrap(), None);
    assert!(!store.touch_upload("abc").await.unwrap());
}

/// Parts are recorded one after the other, each with the upload's state
/// after it; of two replicas recording the same part, one wins.
async fn upload_parts_are_recorded_in_turn(store: &dyn MetadataStore) {
    let r = repo("u/parts");
    let upload = Upload {
        id: "up".into(),
        repository: r.clone(),
        algorithm: DigestAlgorithm::Sha256,
        created_at: 1_000,
        updated_at: 1_000,
        size: 0,
        parts: 0,
        hash_state: Some(vec![0; 104]),
    };
    store.create_upload(&upload).await.unwrap();
    let part = |number: u32, token: &str, size: u64| UploadPartRecord {
        number,
        token: token.into(),
        size,
    };
    assert!(store.upload_parts("up").await.unwrap().is_empty());
    // Part 2 before part 1: refused.
    assert!(
        !store
            .record_upload_part("up", &part(2, "x", 5), 5, &[1; 104])
            .await
            .unwrap()
    );
    assert!(
        store
            .record_upload_part("up", &part(1, "a", 10), 10, &[1; 104])
            .await
            .unwrap()
    );
    // Another writer of part 1 comes second: refused, nothing changed.
    assert!(
        !store
            .record_upload_part("up", &part(1, "b", 99), 99, &[9; 104])
            .await
            .unwrap()
    );
    assert!(
        store
            .record_upload_part("up", &part(2, "c", 7), 17, &[2; 104])
            .await
            .unwrap()
    );
    let row = store.upload(&r, "up").await.unwrap().unwrap();
    assert_eq!((row.size, row.parts), (17, 2));
    assert_eq!(row.hash_state, Some(vec![2; 104]));
    assert!(row.updated_at > 1_000);
    assert_eq!(
        store.upload_parts("up").await.unwrap(),
        vec![part(1, "a", 10), part(2, "c", 7)]
    );
    // Gone: nothing to record, and its parts' records went with it.
    assert!(store.delete_upload("up").await.unwrap());
    assert!(store.upload_parts("up").await.unwrap().is_empty());
    assert!(
        !store
            .record_upload_part("up", &part(3, "d", 1), 18, &[3; 104])
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_upload_part("up", &part(0, "e", 1), 1, &[3; 104])
            .await
            .unwrap()
    );
}

async fn users_are_unique(store: &dyn AccessStore) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let user = User {
        name: "admin".into(),
        uid: "u-1".into(),
        password_hash: Some("$argon2id$...".into()),
        email: None,
        super_user: true,
        created_at: 5,
        credential_epoch: 0,
    };
    assert!(store.create_user(&user).await.unwrap());
    assert!(!store.create_user(&user).await.unwrap());
    assert_eq!(store.user("admin").await.unwrap(), Some(user.clone()));
    assert_eq!(store.user("nobody").await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert!(store.set_password("admin", None).await.unwrap());
    let changed = store.user("admin").await.unwrap().unwrap();
    assert_eq!(changed.password_hash, None);
    assert_eq!(
        changed.credential_epoch, 1,
        "a password change moves the epoch on"
    );
    assert!(
        store
            .set_password("admin", Some("$argon2id$new"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.user("admin").await.unwrap().unwrap().credential_epoch,
        2
    );
    assert!(!store.set_password("nobody", None).await.unwrap());
    assert_eq!(store.users().await.unwrap().len(), 1);
    assert!(store.delete_user("admin").await.unwrap());
    assert!(!store.delete_user("admin").await.unwrap());
}

async fn policy_version_moves_with_every_change(store: &dyn AccessStore) {
    let mut last = store.policy_version().await.unwrap();
    let mut changed = async |what: &str| {
        let now = store.policy_version().await.unwrap();
        assert!(now > last, "{what} did not bump the policy version");
        last = now;
    };
    store.put_group("devs", &["alice".into()]).await.unwrap();
    changed("put_group").await;
    store.create_namespace(&namespace("proj")).await.unwrap();
    changed("create_namespace").await;
    store
        .add_binding(&binding(
            Some("proj"),
            "system:image-puller",
            SubjectKind::User,
            "bob",
            "",
        ))
        .await
        .unwrap();
    changed("add_binding").await;
    store
        .create_token(&user_token("t1", "bob"), "hash-1")
        .await
        .unwrap();
    changed("create_token").await;
    store.delete_token("uid-t1").await.unwrap();
    changed("delete_token").await;
}

fn namespace(name: &str) -> Namespace {
    Namespace {
        name: name.into(),
        uid: format!("uid-{name}"),
        created_by: Some("alice".into()),
        created_at: 7,
    }
}

fn binding(
    namespace: Option<&str>,
    role: &str,
    kind: SubjectKind,
    name: &str,
    subject_namespace: &str,
) -> Binding {
    Binding {
        namespace: namespace.map(str::to_owned),
        role: role.into(),
        subject: BindingSubject {
            kind,
            name: name.into(),
            namespace: subject_namespace.into(),
        },
    }
}

fn user_token(name: &str, user: &str) -> Token {
    Token {
        uid: format!("uid-{name}"),
        name: name.into(),
        subject: TokenSubject::User(user.into()),
        created_at: 1,
        expires_at: None,
    }
}

async fn groups_hold_members(store: &dyn AccessStore) {
    assert_eq!(store.group("devs").await.unwrap(), None);
    let g = store
        .put_group("devs", &["bob".into(), "alice".into()])
        .await
        .unwrap();
    assert_eq!(g.users, vec!["alice", "bob"]);
    let g2 = store.put_group("devs", &["carol".into()]).await.unwrap();
    assert_eq!(g2.users, vec!["carol"]);
    assert_eq!(
        g2.uid, g.uid,
        "replacing members keeps the group's identity"
    );
    assert_eq!(store.groups().await.unwrap().len(), 1);
    // Creating is refused for a taken name, and leaves its members alone.
    assert!(
        !store
            .create_group("devs", &["mallory".into()])
            .await
            .unwrap()
    );
    assert_eq!(
        store.group("devs").await.unwrap().unwrap().users,
        vec!["carol"]
    );
    assert!(store.delete_group("devs").await.unwrap());
    assert_eq!(store.group("devs").await.unwrap(), None);
    let version = store.policy_version().await.unwrap();
    assert!(
        store
            .create_group("ops", &["dan".into(), "dan".into()])
            .await
            .unwrap()
    );
    assert!(store.policy_version().await.unwrap() > version);
    assert_eq!(
        store.group("ops").await.unwrap().unwrap().users,
        vec!["dan"]
    );
}

async fn namespaces_own_accounts_bindings_and_tokens(store: &dyn AccessStore) {
    assert!(store.create_namespace(&namespace("proj")).await.unwrap());
    assert!(!store.create_namespace(&namespace("proj")).await.unwrap());
    assert_eq!(
        store.namespace("proj").await.unwrap(),
        Some(namespace("proj"))
    );
    let sa = ServiceAccount {
        namespace: "proj".into(),
        name: "builder".into(),
        uid: "sa-uid".into(),
        created_at: 3,
    };
    assert!(store.create_service_account(&sa).await.unwrap());
    assert!(!store.create_service_account(&sa).await.unwrap());
    assert_eq!(
        store.service_account("proj", "builder").await.unwrap(),
        Some(sa.clone())
    );
    assert_eq!(store.service_accounts("proj").await.unwrap(), vec![sa]);

    let sa_token = Token {
        uid: "tok-sa".into(),
        name: "builder-token-1".into(),
        subject: TokenSubject::ServiceAccount {
            namespace: "proj".into(),
            name: "builder".into(),
        },
        created_at: 4,
        expires_at: Some(10_000),
    };
    assert!(store.create_token(&sa_token, "sa-hash").await.unwrap());
    assert_eq!(
        store.token_by_secret_hash("sa-hash").await.unwrap(),
        Some(sa_token.clone())
    );
    assert_eq!(
        store.tokens(Some("proj"), None).await.unwrap(),
        vec![sa_token.clone()]
    );
    assert!(store.tokens(None, None).await.unwrap().is_empty());

    let b = binding(
        Some("proj"),
        "registry-admin",
        SubjectKind::User,
        "alice",
        "",
    );
    assert!(store.add_binding(&b).await.unwrap());
    assert!(!store.add_binding(&b).await.unwrap());
    let cluster = binding(None, "cluster-admin", SubjectKind::User, "root", "");
    store.add_binding(&cluster).await.unwrap();
    assert_eq!(
        store.bindings().await.unwrap(),
        vec![cluster.clone(), b.clone()]
    );

    // Deleting the namespace takes its accounts, their tokens and its bindings.
    assert!(store.delete_namespace("proj").await.unwrap());
    assert_eq!(
        store.service_account("proj", "builder").await.unwrap(),
        None
    );
    assert_eq!(store.token_by_secret_hash("sa-hash").await.unwrap(), None);
    assert_eq!(store.bindings().await.unwrap(), vec![cluster.clone()]);
    assert!(store.remove_binding(&cluster).await.unwrap());
    assert!(!store.remove_binding(&cluster).await.unwrap());
}

async fn tokens_are_found_by_secret_hash_and_revoked_by_name(store: &dyn AccessStore) {
    let t = user_token("laptop", "alice");
    assert!(store.create_token(&t, "h1").await.unwrap());
    assert_eq!(
        store.token_by_secret_hash("h1").await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(store.token(&t.uid).await.unwrap(), Some(t.clone()));
    assert_eq!(store.token_by_secret_hash("h2").await.unwrap(), None);
    let mine = store
        .tokens(None, Some(&TokenSubject::User("alice".into())))
        .await
        .unwrap();
    assert_eq!(mine, vec![t.clone()]);
    assert!(
        store
            .tokens(None, Some(&TokenSubject::User("bob".into())))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_token(&t.uid).await.unwrap());
    assert_eq!(store.token_by_secret_hash("h1").await.unwrap(), None);
    assert!(!store.delete_token(&t.uid).await.unwrap());
    assert!(!t.expired(i64::MAX), "a token without expiry never expires");
}

/// A user's token names are the user's own: another user may use the same
/// name (and is not told the first exists). A service account's are its
/// namespace's, as `/namespaces/NS/tokens/NAME` names them.
async fn token_names_are_unique_per_owner(store: &dyn AccessStore) {
    let token = |uid: &str, name: &str, subject: TokenSubject| Token {
        uid: uid.into(),
        name: name.into(),
        subject,
        created_at: 1,
        expires_at: None,
    };
    let user = |name: &str| TokenSubject::User(name.into());
    let sa = |ns: &str, name: &str| TokenSubject::ServiceAccount {
        namespace: ns.into(),
        name: name.into(),
    };
    let alices = token("a1", "laptop", user("alice"));
    let bobs = token("b1", "laptop", user("bob"));
    assert!(store.create_token(&alices, "ha1").await.unwrap());
    assert!(store.create_token(&bobs, "hb1").await.unwrap());
    assert!(
        !store
            .create_token(&token("a2", "laptop", user("alice")), "ha2")
            .await
            .unwrap(),
        "one user, one token per name"
    );
    // Service accounts: per namespace.
    assert!(
        store
            .create_token(&token("s1", "ci", sa("p", "builder")), "hs1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_token(&token("s2", "ci", sa("p", "deployer")), "hs2")
            .await
            .unwrap()
    );
    assert!(
        store
            .create_token(&token("s3", "ci", sa("q", "builder")), "hs3")
            .await
            .unwrap()
    );
    // A user's name never clashes with a service account's.
    assert!(
        store
            .create_token(&token("a3", "ci", user("alice")), "ha3")
            .await
            .unwrap()
    );
    // Revoking one leaves its namesakes.
    assert!(store.delete_token("a1").await.unwrap());
    assert_eq!(store.token_by_secret_hash("ha1").await.unwrap(), None);
    assert_eq!(store.token_by_secret_hash("hb1").await.unwrap(), Some(bobs));
    assert!(
        store
            .create_token(&token("a4", "laptop", user("alice")), "ha4")
            .await
            .unwrap()
    );
}

async fn signing_keys_rotate(store: &dyn AccessStore) {
    for (kid, at) in [("k1", 100), ("k2", 200)] {
        store
            .add_signing_key(&SigningKey {
                kid: kid.into(),
                private_key: "pem".into(),
                created_at: at,
            })
            .await
            .unwrap();
    }
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["k2", "k1"]
    );
    assert_eq!(store.delete_signing_keys_before(150).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
}

async fn identical_manifests_are_stored_once(store: &dyn MetadataStore) {
    let m = manifest("shared", None, None);
    let (a, b) = (repo("s/a"), repo("s/b"));
    store.put_manifest(&a, &m, &[tag("1")]).await.unwrap();
    store.put_manifest(&b, &m, &[tag("2")]).await.unwrap();
    assert!(store.delete_manifest(&a, &m.digest).await.unwrap());
    let in_b = store
        .manifest(&b, &Reference::Tag(tag("2")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_b.content, m.content);
}

/// Migration 0003 gives every repository without a namespace its namespace
/// (pushes used to make repositories without one), and is harmless to rerun.
async fn repositories_without_a_namespace_get_one(
    store: &SqlMetadataStore,
    migration: &'static str,
) {
    let d = digest("orphaned");
    for name in ["lost/app", "lost/other/deep", "solo", "kept/app"] {
        store.link_blob(&repo(name), &d, 1).await.unwrap();
    }
    store.create_namespace(&namespace("kept")).await.unwrap();
    let version = store.policy_version().await.unwrap();
    for _ in 0..2 {
        sqlx::raw_sql(migration)
            .execute(store.writer())
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["kept", "lost", "solo"]);
    assert_eq!(
        store.namespace("kept").await.unwrap(),
        Some(namespace("kept")),
        "existing namespaces are left alone"
    );
    assert!(store.policy_version().await.unwrap() > version);
}

#[tokio::test]
async fn migration_0003_on_sqlite() {
    let db = TestDb::sqlite().await;
    repositories_without_a_namespace_get_one(
        &db.store,
        include_str!("../../migrations/sqlite/0003_namespaces_of_repositories.sql"),
    )
    .await;
    db.finish().await;
}

#[tokio::test]
async fn migration_0003_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        repositories_without_a_namespace_get_one(
            &db.store,
            include_str!("../../migrations/postgres/0003_namespaces_of_repositories.sql"),
        )
        .await;
        db.finish().await;
    }
}

/// Deleting a namespace deletes its repositories with their tags and links,
/// and no other repository (`_` is a LIKE wildcard); the manifests and
/// blobs themselves stay for garbage collection.
async fn a_namespace_takes_its_repositories(store: &SqlMetadataStore) {
    let m = manifest("team image", None, None);
    let d = digest("team layer");
    let doomed = ["a_b/app", "a_b", "a_b/x/y"];
    let kept = ["axb/app", "a_b2/app", "a_bc"];
    store.create_namespace(&namespace("a_b")).await.unwrap();
    for name in doomed.iter().chain(&kept) {
        store.link_blob(&repo(name), &d, 7).await.unwrap();
        store
            .put_manifest(&repo(name), &m, &[tag("v1")])
            .await
            .unwrap();
    }
    let version = store.policy_version().await.unwrap();
    assert!(store.delete_namespace("a_b").await.unwrap());
    assert!(store.policy_version().await.unwrap() > version);
    for name in doomed {
        let r = repo(name);
        assert!(!store.repository_exists(&r).await.unwrap(), "{name}");
        assert_eq!(store.list_tags(&r, None, 10).await.unwrap(), None, "{name}");
        let by_tag = Reference::Tag(tag("v1"));
        assert!(
            store.manifest(&r, &by_tag).await.unwrap().is_none(),
            "{name}"
        );
        let by_digest = Reference::Digest(m.digest.clone());
        assert!(
            store.manifest(&r, &by_digest).await.unwrap().is_none(),
            "{name}"
        );
        assert_eq!(store.repository_blob(&r, &d).await.unwrap(), None, "{name}");
    }
    for name in kept {
        let r = repo(name);
        assert!(store.repository_exists(&r).await.unwrap(), "{name}");
        let by_tag = Reference::Tag(tag("v1"));
        assert!(
            store.manifest(&r, &by_tag).await.unwrap().is_some(),
            "{name}"
        );
        assert_eq!(
            store.repository_blob(&r, &d).await.unwrap(),
            Some(7),
            "{name}"
        );
    }
    // The blob is still known to the registry (garbage collection's job).
    assert_eq!(store.blob_size(&d).await.unwrap(), Some(7));
    // A namespace made again under the name starts empty.
    store.create_namespace(&namespace("a_b")).await.unwrap();
    let page = store.list_repositories(None, 100).await.unwrap();
    assert_eq!(page.items, vec!["a_b2/app", "a_bc", "axb/app"]);
}

/// Brings a new database at `url` to the schema before migration `version`,
/// with the migrations of `engine` (a folder of `migrations/`).
async fn migrate_to_before(url: &str, engine: &str, version: i64) -> sqlx::AnyPool {
    let staged = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let number: i64 = file.split('_').next().unwrap().parse().unwrap();
        if number < version {
            std::fs::copy(&path, staged.path().join(&file)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(staged.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    pool
}

/// A migration's story (`story(url, engine, config)`: the database
/// migrated to just before it, rows written, then berth opened on it) on
/// a fresh SQLite file.
async fn migration_story_on_sqlite(story: impl AsyncFnOnce(&str, &str, DatabaseConfig)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    story(&url, "sqlite", DatabaseConfig::Sqlite { path }).await;
}

/// The same on a fresh PostgreSQL database, dropped afterwards.
async fn migration_story_on_postgres(story: impl AsyncFnOnce(&str, &str, DatabaseConfig)) {
    let Some((admin_url, name, url)) = empty_postgres_database().await else {
        return;
    };
    let config = DatabaseConfig::Postgres {
        url: url.clone(),
        max_connections: 2,
    };
    story(&url, "postgres", config).await;
    if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .await;
    }
}

/// Migration 0005 (token names per owner) keeps every token, and on SQLite
/// rebuilds the table with its indexes.
async fn tokens_survive_migration_0005(url: &str, engine: &str, config: DatabaseConfig) {
    let pool = migrate_to_before(url, engine, 5).await;
    for (uid, name, ns, hash, kind, subject) in [
        ("u1", "laptop", "", "h-alice", "User", "alice"),
        ("s1", "ci", "p", "h-builder", "ServiceAccount", "builder"),
    ] {
        sqlx::query(
            "INSERT INTO tokens (uid, name, namespace, secret_hash, subject_kind, subject_name, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 1, NULL)",
        )
        .bind(uid)
        .bind(name)
        .bind(ns)
        .bind(hash)
        .bind(kind)
        .bind(subject)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqlMetadataStore::connect(&config).await.unwrap();
    let alices = store
        .token_by_secret_hash("h-alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (alices.uid.as_str(), alices.name.as_str()),
        ("u1", "laptop")
    );
    assert_eq!(
        alices.subject,
        TokenSubject::User("alice".into()),
        "{alices:?}"
    );
    assert_eq!(store.tokens(Some("p"), None).await.unwrap().len(), 1);
    // Now another user may have a laptop token, and alice still only one.
    let laptop = |uid: &str, user: &str| Token {
        uid: uid.into(),
        name: "laptop".into(),
        subject: TokenSubject::User(user.into()),
        created_at: 2,
        expires_at: None,
    };
    assert!(
        store
            .create_token(&laptop("b1", "bob"), "h-bob")
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_token(&laptop("u2", "alice"), "h-alice-2")
            .await
            .unwrap()
    );
    // The secret stays unique too.
    assert!(
        !store
            .create_token(&laptop("c1", "carol"), "h-bob")
            .await
            .unwrap()
    );
    store.close().await;
}

#[tokio::test]
async fn migration_0005_on_sqlite() {
    migration_story_on_sqlite(tokens_survive_migration_0005).await;
}

#[tokio::test]
async fn migration_0005_on_postgres() {
    migration_story_on_postgres(tokens_survive_migration_0005).await;
}

async fn the_last_super_user_is_kept(store: &dyn AccessStore) {
    let user = |name: &str, super_user: bool| User {
        name: name.into(),
        uid: format!("uid-{name}"),
        password_hash: None,
        email: None,
        super_user,
        created_at: 1,
        credential_epoch: 0,
    };
    for (name, super_user) in [
        ("admin", true),
        ("root", true),
        ("alice", false),
        ("carol", false),
    ] {
        assert!(store.create_user(&user(name, super_user)).await.unwrap());
    }
    let none: &[String] = &[];
    let delete = async |name: &str, configured: &[String]| {
        store
            .delete_user_unless_last_super_user(name, configured)
            .await
            .unwrap()
    };
    assert_eq!(delete("nobody", none).await, UserDeletion::NotFound);
    assert_eq!(delete("alice", none).await, UserDeletion::Deleted);
    assert_eq!(delete("root", none).await, UserDeletion::Deleted);
    let version = store.policy_version().await.unwrap();
    assert_eq!(delete("admin", none).await, UserDeletion::LastSuperUser);
    assert!(
        store.user("admin").await.unwrap().is_some(),
        "refused, kept"
    );
    assert_eq!(
        store.policy_version().await.unwrap(),
        version,
        "a refusal changes nothing"
    );
    // A super user by the configuration counts, if it is a stored user.
    let configured = ["carol".to_owned(), "ghost".to_owned()];
    assert_eq!(delete("admin", &configured).await, UserDeletion::Deleted);
    assert_eq!(
        delete("carol", &configured).await,
        UserDeletion::LastSuperUser
    );
    assert_eq!(
        delete("carol", none).await,
        UserDeletion::Deleted,
        "no longer super"
    );
}

async fn failed_logins_add_up_lock_and_reset(store: &dyn AccessStore) {
    let count = |key: &'static str, at: Timestamp| FailureCount {
        key,
        user: Some("alice"),
        at,
        window_ms: 1_000,
        limit: Some(3),
        lock_ms: 500,
    };
    // Failures counted at once (as by several replicas) all add up.
    let counted =
        futures::future::join_all((0..2).map(|_| store.count_login_failure(count("pair-a", 100))))
            .await;
    let mut counts: Vec<u32> = counted.into_iter().map(|c| c.unwrap().count).collect();
    counts.sort();
    assert_eq!(counts, [1, 2]);
    let third = store
        .count_login_failure(count("pair-a", 200))
        .await
        .unwrap();
    assert_eq!(
        (third.count, third.since, third.locked_until),
        (3, 100, Some(700))
    );
    // While locked, failures go on counting in the same window.
    let fourth = store
        .count_login_failure(count("pair-a", 600))
        .await
        .unwrap();
    assert_eq!((fourth.count, fourth.since), (4, 100));
    // Once the window and the lock have passed, a failure starts afresh.
    let later = store
        .count_login_failure(count("pair-a", 5_000))
        .await
        .unwrap();
    assert_eq!(
        (later.count, later.since, later.locked_until),
        (1, 5_000, None)
    );

    // Other replicas see what changed.
    store
        .count_login_failure(FailureCount {
            key: "address-b",
            user: None,
            ..count("x", 6_000)
        })
        .await
        .unwrap();
    let changed: Vec<String> = store
        .login_failures_changed_since(5_500)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(changed, ["address-b"]);

    // An unlock resets the user's keys, and says whether any was locked.
    for at in [7_000, 7_001, 7_002] {
        store
            .count_login_failure(count("pair-a", at))
            .await
            .unwrap();
    }
    assert!(
        store
            .reset_login_failures(LoginFailureKeys::User("alice"), 7_100)
            .await
            .unwrap()
    );
    let reset = store.login_failures_changed_since(7_100).await.unwrap();
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!((reset[0].count, reset[0].locked_until), (0, None));
    assert!(
        !store
            .reset_login_failures(LoginFailureKeys::One("pair-a"), 7_200)
            .await
            .unwrap()
    );

    // Old keys go; locked ones stay.
    store
        .count_login_failure(FailureCount {
            key: "address-c",
            user: None,
            limit: Some(1),
            ..count("x", 8_000)
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .remove_login_failures_before(8_000, 8_100)
            .await
            .unwrap(),
        2
    );
    let left: Vec<String> = store
        .login_failures_changed_since(0)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(left, ["address-c"]);
}

// ---------------------------------------------------------------------------
// Jobs

use std::time::Duration;

use super::jobs::{JobOutcome, JobResult, JobStore, MadeDue};

fn succeeded(next_run_in: Duration) -> JobResult {
    JobResult {
        outcome: JobOutcome::Succeeded,
        error: None,
        next_run_in,
    }
}

/// Several replicas, each with its own connections, claim one due job at
/// the same moment, round after round: exactly one claim wins each round.
async fn a_due_job_is_claimed_by_exactly_one_replica(db: &TestDb) {
    const REPLICAS: usize = 4;
    const CLAIMANTS_PER_REPLICA: usize = 3;
    const ROUNDS: usize = 20;
    let mut replicas = vec![std::sync::Arc::new(
        SqlMetadataStore::connect(&db.config).await.unwrap(),
    )];
    for _ in 1..REPLICAS {
        replicas.push(std::sync::Arc::new(
            SqlMetadataStore::connect(&db.config).await.unwrap(),
        ));
    }
    // Every replica registers; the job exists once.
    for replica in &replicas {
        replica.register_job("gc").await.unwrap();
    }
    assert_eq!(db.store.jobs().await.unwrap().len(), 1);

    let mut winners_by_replica = vec![0; REPLICAS];
    for round in 0..ROUNDS {
        let barrier =
            std::sync::Arc::new(tokio::sync::Barrier::new(REPLICAS * CLAIMANTS_PER_REPLICA));
        let mut claims = Vec::new();
        for (r, replica) in replicas.iter().enumerate() {
            for c in 0..CLAIMANTS_PER_REPLICA {
                let (replica, barrier) = (replica.clone(), barrier.clone());
                claims.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let claim = replica
                        .claim_job("gc", &format!("replica-{r}-{c}"), Duration::from_secs(60))
                        .await
                        .unwrap();
                    (r, claim)
                }));
            }
        }
        let mut won = Vec::new();
        for claim in claims {
            if let (r, Some(claim)) = claim.await.unwrap() {
                won.push((r, claim));
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {} claims won", won.len());
        let (r, claim) = won.pop().unwrap();
        winners_by_replica[r] += 1;
        let job = db.store.job("gc").await.unwrap().unwrap();
        assert!(job.is_running(), "{job:?}");
        assert!(
            job.lease_holder
                .as_deref()
                .unwrap()
                .starts_with(&format!("replica-{r}-"))
        );
        // Held: nobody else gets it, not even the holder again.
        assert_eq!(
            replicas[0]
                .claim_job("gc", "late", Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
        // Finished with the next run due at once, for the next round.
        assert!(
            replicas[r]
                .finish_job("gc", &claim.lease_id, &succeeded(Duration::ZERO))
                .await
                .unwrap()
                .is_some()
        );
    }
    let job = db.store.job("gc").await.unwrap().unwrap();
    assert_eq!(job.runs, ROUNDS as u64);
    assert_eq!(job.lease_holder, None);
    eprintln!("claims won per replica over {ROUNDS} rounds: {winners_by_replica:?}");
    for replica in replicas {
        replica.close().await;
    }
}

/// A replica that stops renewing (it died) loses the job once its lease
/// runs out, not before; what it does afterwards is refused.
async fn an_expired_lease_is_taken_over(db: &TestDb) {
    let other = SqlMetadataStore::connect(&db.config).await.unwrap();
    let (a, b): (&dyn JobStore, &dyn JobStore) = (&db.store, &other);
    let lease = Duration::from_millis(600);
    a.register_job("prune").await.unwrap();
    let first = a.claim_job("prune", "a", lease).await.unwrap().unwrap();
    assert_eq!(first.consecutive_failures, 0);
    assert_eq!(b.claim_job("prune", "b", lease).await.unwrap(), None);
    // Renewed while it runs: still not B's after the first lease would have
    // run out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        a.renew_job_lease("prune", &first.lease_id, lease)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.claim_job("prune", "b", lease).await.unwrap(), None);
    let held = b.job("prune").await.unwrap().unwrap();
    assert!(held.is_running() && !held.is_claimable(), "{held:?}");
    // A dies: no more renewals. Past the lease, B takes over.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let seen = b.job("prune").await.unwrap().unwrap();
    assert!(!seen.is_running() && seen.is_claimable(), "{seen:?}");
    assert_eq!(
        seen.lease_holder.as_deref(),
        Some("a"),
        "expired, not cleared"
    );
    // B's own lease is long: what follows checks that A's late calls are
    // refused, and must not race B's lease on a busy machine.
    let second = b
        .claim_job("prune", "b", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(second.started_at >= seen.lease_until.unwrap());
    let job = b.job("prune").await.unwrap().unwrap();
    assert_eq!(
        (job.lease_holder.as_deref(), job.last_replica.as_deref()),
        (Some("b"), Some("b"))
    );
    // A comes back to life: it can neither renew, nor record, nor release.
    assert!(
        !a.renew_job_lease("prune", &first.lease_id, lease)
            .await
            .unwrap()
    );
    assert_eq!(
        a.finish_job("prune", &first.lease_id, &succeeded(Duration::ZERO))
            .await
            .unwrap(),
        None
    );
    assert!(!a.release_job("prune", &first.lease_id).await.unwrap());
    assert!(b.job("prune").await.unwrap().unwrap().is_running());
    // B's run is recorded.
    let run = b
        .finish_job(
            "prune",
            &second.lease_id,
            &succeeded(Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.started_at, second.started_at);
    assert!(run.finished_at >= run.started_at);
    let job = a.job("prune").await.unwrap().unwrap();
    assert_eq!(job.runs, 1);
    assert_eq!(job.last_outcome, Some(JobOutcome::Succeeded));
    // A released lease leaves the job due for the next claimant at once.
    b.make_job_due("prune").await.unwrap();
    let third = a.claim_job("prune", "a", lease).await.unwrap().unwrap();
    assert!(a.release_job("prune", &third.lease_id).await.unwrap());
    let fourth = b.claim_job("prune", "b", lease).await.unwrap().unwrap();
    assert!(b.release_job("prune", &fourth.lease_id).await.unwrap());
    assert_eq!(
        a.job("prune").await.unwrap().unwrap().runs,
        1,
        "releases are no runs"
    );
    other.close().await;
}

/// Failures are counted and their error kept, the next run set by the
/// backoff the runner chose; a success clears both.
async fn job_outcomes_and_backoff_are_recorded(db: &TestDb) {
    let store: &dyn JobStore = &db.store;
    let lease = Duration::from_secs(60);
    store.register_job("import").await.unwrap();
    let fresh = store.job("import").await.unwrap().unwrap();
    assert!(fresh.is_claimable(), "new jobs are due at once: {fresh:?}");
    assert_eq!((fresh.runs, fresh.last_outcome), (0, None));
    // Registering again keeps what is there.
    store.register_job("import").await.unwrap();
    assert_eq!(store.jobs().await.unwrap().len(), 1);

    let mut expected_failures = 0;
    for backoff in [Duration::from_secs(30), Duration::from_secs(60)] {
        let claim = store
            .claim_job("import", "r1", lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.consecutive_failures, expected_failures);
        let run = store
            .finish_job(
                "import",
                &claim.lease_id,
                &JobResult {
                    outcome: JobOutcome::Failed,
                    error: Some("upstream answered 503".into()),
                    next_run_in: backoff,
                },
            )
            .await
            .unwrap()
            .unwrap();
        expected_failures += 1;
        let job = store.job("import").await.unwrap().unwrap();
        assert_eq!(job.last_outcome, Some(JobOutcome::Failed));
        assert_eq!(job.last_error.as_deref(), Some("upstream answered 503"));
        assert_eq!(job.consecutive_failures, expected_failures);
        assert_eq!(job.lease_holder, None);
        assert_eq!(job.lease_until, None);
        assert_eq!(job.last_replica.as_deref(), Some("r1"));
        assert_eq!(job.last_started_at, Some(claim.started_at));
        assert_eq!(job.last_finished_at, Some(run.finished_at));
        let backoff_ms = i64::try_from(backoff.as_millis()).unwrap();
        assert_eq!(job.next_run_at, run.finished_at + backoff_ms);
        assert_eq!(run.next_run_at, job.next_run_at);
        // Not due before the backoff has passed.
        assert_eq!(store.claim_job("import", "r2", lease).await.unwrap(), None);
        assert!(!job.is_claimable());
        assert_eq!(store.make_job_due("import").await.unwrap(), MadeDue::Due);
    }
    let claim = store
        .claim_job("import", "r2", lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.consecutive_failures, 2);
    store
        .finish_job(
            "import",
            &claim.lease_id,
            &succeeded(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .unwrap();
    let job = store.job("import").await.unwrap().unwrap();
    assert_eq!(job.last_outcome, Some(JobOutcome::Succeeded));
    assert_eq!(job.last_error, None);
    assert_eq!(job.consecutive_failures, 0);
    assert_eq!(job.runs, 3);
    assert_eq!(job.last_replica.as_deref(), Some("r2"));
    assert!(job.next_run_at >= job.as_of + 3_500_000, "{job:?}");
}

/// `berth adm jobs run`: due now, unless running; unknown jobs are not
/// found.
async fn jobs_are_made_due_unless_running(db: &TestDb) {
    let store: &dyn JobStore = &db.store;
    assert_eq!(store.make_job_due("nope").await.unwrap(), MadeDue::NotFound);
    assert_eq!(store.job("nope").await.unwrap(), None);
    store.register_job("b-job").await.unwrap();
    store.register_job("a-job").await.unwrap();
    let names: Vec<String> = store
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["a-job", "b-job"]);
    let claim = store
        .claim_job("a-job", "r1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.make_job_due("a-job").await.unwrap(),
        MadeDue::Running {
            holder: "r1".into()
        }
    );
    store
        .finish_job(
            "a-job",
            &claim.lease_id,
            &succeeded(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!store.job("a-job").await.unwrap().unwrap().is_claimable());
    assert_eq!(store.make_job_due("a-job").await.unwrap(), MadeDue::Due);
    let job = store.job("a-job").await.unwrap().unwrap();
    assert!(
        job.is_claimable() && job.next_run_at <= job.as_of,
        "{job:?}"
    );
}

// ---------------------------------------------------------------------------
// Migrations

/// Replicas starting together on a fresh PostgreSQL database all come up,
/// and each migration is applied once: sqlx's migrator holds a PostgreSQL
/// advisory lock (`pg_advisory_lock`, keyed by the database's name) while
/// it looks at and applies migrations, so the others wait, then find
/// nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_when_replicas_start_together() {
    const REPLICAS: usize = 8;
    let Some((admin_url, name, url)) = empty_postgres_database().await else {
        return;
    };
    let config = DatabaseConfig::Postgres {
        url: url.clone(),
        max_connections: 2,
    };
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REPLICAS));
    let starts: Vec<_> = (0..REPLICAS)
        .map(|_| {
            let (config, barrier) = (config.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                SqlMetadataStore::connect(&config).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every replica starts"));
    }
    let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT version, COUNT(*) AS applied, BOOL_AND(success) AS succeeded \
         FROM _sqlx_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let applied: Vec<(i64, i64, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("version").unwrap(),
                r.try_get("applied").unwrap(),
                r.try_get("succeeded").unwrap(),
            )
        })
        .collect();
    let migrations: Vec<i64> = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"),
    )
    .unwrap()
    .map(|e| {
        let file = e.unwrap().file_name().into_string().unwrap();
        file.split('_').next().unwrap().parse().unwrap()
    })
    .collect::<std::collections::BTreeSet<i64>>()
    .into_iter()
    .collect();
    assert_eq!(
        applied,
        migrations.iter().map(|v| (*v, 1, true)).collect::<Vec<_>>(),
        "(version, times applied, succeeded)"
    );
    // Every replica works on the one schema.
    for (i, store) in stores.iter().enumerate() {
        store.register_job(&format!("job-{i}")).await.unwrap();
    }
    assert_eq!(stores[0].jobs().await.unwrap().len(), REPLICAS);
    drop(connection);
    for store in stores {
        store.close().await;
    }
    if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .await;
    }
}

// ---------------------------------------------------------------------------
// Pull secrets' rows (the domain's service over them is tested, on both
// engines, in `domain::secrets::tests`).

mod pull_secrets {
    use super::TestDb;
    use super::namespace;
    use crate::metadata::Timestamp;
    use crate::metadata::access::AccessStore;
    use crate::metadata::secrets::{SecretStore, StoredSecret};

    engine_tests!(
        ;
        db:
        secret_rows_are_kept_per_namespace,
    );

    fn row(ns: &str, name: &str, key_id: &str, created_at: Timestamp) -> StoredSecret {
        StoredSecret {
            namespace: ns.into(),
            name: name.into(),
            uid: format!("uid-{ns}-{name}"),
            secret_type: "kubernetes.io/dockerconfigjson".into(),
            registries: r#"[{"server":"quay.io","username":"u"}]"#.into(),
            key_id: key_id.into(),
            sealed: vec![1, 2, 3, 0, 255],
            created_at,
        }
    }

    async fn secret_rows_are_kept_per_namespace(db: &TestDb) {
        let store = &db.store;
        for ns in ["proj", "other"] {
            store.create_namespace(&namespace(ns)).await.unwrap();
        }
        assert!(
            store
                .create_secret(&row("proj", "b", "k1", 1))
                .await
                .unwrap()
        );
        assert!(
            store
                .create_secret(&row("proj", "a", "k2", 2))
                .await
                .unwrap()
        );
        assert!(
            store
                .create_secret(&row("other", "a", "k1", 3))
                .await
                .unwrap()
        );
        // A name is taken per namespace; the first row stays as it was.
        let mut again = row("proj", "a", "k9", 4);
        again.uid = "another".into();
        assert!(!store.create_secret(&again).await.unwrap());
        assert_eq!(
            store.secret("proj", "a").await.unwrap(),
            Some(row("proj", "a", "k2", 2))
        );
        // A namespace that does not exist holds nothing.
        assert!(
            store
                .create_secret(&row("nowhere", "a", "k1", 5))
                .await
                .is_err()
        );
        let names = |list: Vec<StoredSecret>| {
            list.into_iter()
                .map(|s| format!("{}/{}", s.namespace, s.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(store.secrets("proj").await.unwrap()),
            ["proj/a", "proj/b"]
        );
        assert_eq!(
            names(store.secrets("nowhere").await.unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            names(store.secrets_not_under_key("k1").await.unwrap()),
            ["proj/a"]
        );
        // Re-sealing is conditional on the key and the uid.
        let a = store.secret("proj", "a").await.unwrap().unwrap();
        assert!(!store.reseal_secret(&a, "k1", "k3", &[9]).await.unwrap());
        let mut stale = a.clone();
        stale.uid = "not-this-one".into();
        assert!(!store.reseal_secret(&stale, "k2", "k3", &[9]).await.unwrap());
        assert!(store.reseal_secret(&a, "k2", "k3", &[9, 9]).await.unwrap());
        assert!(!store.reseal_secret(&a, "k2", "k3", &[7]).await.unwrap());
        let resealed = store.secret("proj", "a").await.unwrap().unwrap();
        assert_eq!(
            (resealed.key_id.as_str(), resealed.sealed.as_slice()),
            ("k3", &[9u8, 9][..])
        );
        // Deleting one, then the namespace with the rest.
        assert!(store.delete_secret("proj", "b").await.unwrap());
        assert!(!store.delete_secret("proj", "b").await.unwrap());
        assert!(store.delete_namespace("proj").await.unwrap());
        assert_eq!(
            names(store.secrets("proj").await.unwrap()),
            Vec::<String>::new()
        );
        store.create_namespace(&namespace("proj")).await.unwrap();
        assert_eq!(store.secret("proj", "a").await.unwrap(), None);
        assert_eq!(names(store.secrets("other").await.unwrap()), ["other/a"]);
    }
}

// ---------------------------------------------------------------------------
// Image streams (migration 0009): every repository is a stream whose tags
// keep a history of revisions, written with the tag's row.

mod stream_cases {
    use super::*;
    use crate::metadata::image_streams::*;

    engine_tests!(
        ;
        db:
        pushes_record_revisions_and_tags_roll_back,
        tagging_from_another_repository_links_the_image,
        aliases_follow_their_source_tag,
        streams_are_listed_by_namespace_and_go_with_it,
        tag_conditions_keep_their_transition_time,
        concurrent_pushes_to_one_tag_leave_tag_and_history_agreeing,
        recorded_docker_image_tags_are_due_until_scheduled,
        due_imports_come_oldest_first_up_to_the_limit,
        deleted_streams_and_tags_leave_no_import_due,
        clearing_a_condition_deletes_only_that_one,
        the_pruner_trims_what_its_rules_let_go_and_keeps_its_settings,
    );

    /// The pruner's store: histories read per repository (and namespace),
    /// a trim decided again by the deleting statement, settings that move
    /// the schedule's start, a scheduled time taken once, runs recorded
    /// within their history limits.
    async fn the_pruner_trims_what_its_rules_let_go_and_keeps_its_settings(db: &TestDb) {
        use crate::metadata::pruner::{PruneProgress, PruneRunEnd, PrunerStore};
        let store = &db.store;
        let app = repo("ns/app");
        let images: Vec<_> = (0..4)
            .map(|i| manifest(&format!("image {i}"), None, None))
            .collect();
        for image in &images {
            store
                .put_manifest(&app, image, &[tag("latest")])
                .await
                .unwrap();
        }
        store
            .put_manifest(&repo("other/app"), &images[0], &[tag("v1")])
            .await
            .unwrap();
        let history = store.tag_histories(0, 10, Some("ns")).await.unwrap();
        let generations: Vec<i64> = history.iter().map(|r| r.generation).collect();
        assert_eq!(generations, [4, 3, 2, 1]);
        assert!(
            history
                .iter()
                .all(|r| r.current.as_deref() == Some(images[3].digest.as_str()))
        );
        assert_eq!(store.tag_histories(0, 10, None).await.unwrap().len(), 5);
        let id = history[0].repository_id;
        let asked: Vec<(String, i64)> = (1..=4).map(|g| ("latest".to_owned(), g)).collect();
        // Young: nothing goes.
        let none = store
            .delete_tag_revisions(id, &asked, 1, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(none.is_empty());
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Keep two: the current (4) and 3 stay, whatever was asked.
        let mut gone = store
            .delete_tag_revisions(id, &asked, 2, Duration::from_millis(1))
            .await
            .unwrap();
        gone.sort();
        assert_eq!(gone, [("latest".to_owned(), 1), ("latest".to_owned(), 2)]);
        let left: Vec<i64> = store
            .tag_histories(0, 10, Some("ns"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.generation)
            .collect();
        assert_eq!(left, [4, 3]);

        // Settings: a new schedule counts from now; a time is taken once.
        let mut settings = store.pruner().await.unwrap().settings;
        assert_eq!(settings.schedule, "0 0 * * *");
        assert_eq!(settings.keep_tag_revisions, 3);
        settings.schedule = "*/5 * * * *".into();
        settings.successful_jobs_history_limit = 1;
        let record = store.set_pruner(&settings, Some("admin")).await.unwrap();
        assert_eq!(record.settings, settings);
        assert!(record.scheduled_through > 0);
        let next = record.scheduled_through + 1;
        assert!(store.take_scheduled_time(next).await.unwrap());
        assert!(!store.take_scheduled_time(next).await.unwrap());

        // Runs: one going on (its replica's own, or another's with a fresh
        // heartbeat) refuses the next; a silent one is interrupted by it;
        // the limit keeps one succeeded.
        let progress = PruneProgress::default();
        let succeeded = PruneRunEnd {
            progress: &progress,
            outcome: "Succeeded",
            error: None,
            gc_run: None,
            removed: "[]",
            successful_kept: 1,
            failed_kept: 3,
        };
        let pause = || tokio::time::sleep(Duration::from_millis(5));
        let minute = Duration::from_secs(60);
        let start = |id: &'static str, replica: &'static str, stale: Duration| async move {
            store
                .start_prune_run(id, replica, "Manual", "{}", stale)
                .await
                .unwrap()
        };
        assert_eq!(start("a", "r1", minute).await, None);
        assert_eq!(start("b", "r1", Duration::ZERO).await.as_deref(), Some("a"));
        assert_eq!(start("b", "r2", minute).await.as_deref(), Some("a"));
        pause().await;
        assert_eq!(start("b", "r2", Duration::ZERO).await, None);
        pause().await;
        store.prune_run_alive("b").await.unwrap();
        assert_eq!(start("c", "r3", minute).await.as_deref(), Some("b"));
        store.finish_prune_run("b", &succeeded).await.unwrap();
        assert_eq!(start("c", "r3", minute).await, None);
        store.finish_prune_run("c", &succeeded).await.unwrap();
        let runs = store.prune_runs(10).await.unwrap();
        let kept: Vec<(&str, Option<&str>)> = runs
            .iter()
            .map(|r| (r.id.as_str(), r.outcome.as_deref()))
            .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.contains(&("c", Some("Succeeded"))), "{kept:?}");
        assert!(kept.contains(&("a", Some("Interrupted"))), "{kept:?}");
    }

    fn by(who: &str, cause: RevisionCause) -> RevisionOrigin {
        RevisionOrigin {
            cause,
            by: Some(who.into()),
            address: Some("192.0.2.7".into()),
            source: None,
        }
    }

    /// (generation, digest) of `tag`'s history, newest first.
    async fn history(
        store: &SqlMetadataStore,
        repo: &RepositoryName,
        t: &str,
    ) -> Vec<(i64, Digest)> {
        store
            .stream(repo)
            .await
            .unwrap()
            .unwrap()
            .history_of(t)
            .map(|r| (r.generation, r.digest.clone()))
            .collect()
    }

    async fn tagged(store: &SqlMetadataStore, repo: &RepositoryName, t: &str) -> Option<Digest> {
        store
            .manifest_meta(repo, &Reference::Tag(tag(t)))
            .await
            .unwrap()
            .map(|m| m.digest)
    }

    async fn pushes_record_revisions_and_tags_roll_back(db: &TestDb) {
        let store = &db.store;
        let app = repo("ns/app");
        let (m1, m2) = (manifest("one", None, None), manifest("two", None, None));
        store
            .put_manifest_from(&app, &m1, &[tag("v1")], &by("alice", RevisionCause::Push))
            .await
            .unwrap();
        let stream = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(stream.generation, 1);
        let first = stream.history_of("v1").next().unwrap();
        assert_eq!(
            (first.generation, &first.digest, first.origin.by.as_deref()),
            (1, &m1.digest, Some("alice"))
        );
        assert_eq!(first.origin.address.as_deref(), Some("192.0.2.7"));
        assert_eq!(first.origin.cause, RevisionCause::Push);
        // The same digest again: no revision.
        store
            .put_manifest_from(&app, &m1, &[tag("v1")], &by("bob", RevisionCause::Push))
            .await
            .unwrap();
        assert_eq!(
            history(store, &app, "v1").await,
            vec![(1, m1.digest.clone())]
        );
        // Another digest: prepended, and what pulls get.
        store.put_manifest(&app, &m2, &[tag("v1")]).await.unwrap();
        assert_eq!(
            history(store, &app, "v1").await,
            vec![(2, m2.digest.clone()), (1, m1.digest.clone())]
        );
        assert_eq!(tagged(store, &app, "v1").await, Some(m2.digest.clone()));
        // Rolling back is a revision too.
        let back = TagTarget {
            digest: m1.digest.clone(),
            docker_image_reference: None,
            from_repository: None,
            expires_at: None,
        };
        let moved = store
            .move_tag(
                &app,
                &tag("v1"),
                &back,
                &by("carol", RevisionCause::Rollback),
            )
            .await
            .unwrap();
        assert_eq!(
            moved,
            TagMove::Moved {
                generation: 3,
                followers: vec![]
            }
        );
        assert_eq!(tagged(store, &app, "v1").await, Some(m1.digest.clone()));
        let stream = store.stream(&app).await.unwrap().unwrap();
        let newest = stream.history_of("v1").next().unwrap();
        assert_eq!(newest.origin.cause, RevisionCause::Rollback);
        assert_eq!(stream.generation, 3);
        // Moving it where it is records nothing; an image the repository
        // does not hold is refused and changes nothing.
        assert_eq!(
            store
                .move_tag(&app, &tag("v1"), &back, &by("carol", RevisionCause::Tag))
                .await
                .unwrap(),
            TagMove::Unchanged
        );
        let unknown = TagTarget {
            digest: digest("never pushed"),
            docker_image_reference: None,
            from_repository: None,
            expires_at: None,
        };
        assert_eq!(
            store
                .move_tag(&app, &tag("v2"), &unknown, &by("carol", RevisionCause::Tag))
                .await
                .unwrap(),
            TagMove::ImageUnknown
        );
        assert_eq!(tagged(store, &app, "v2").await, None);
        assert_eq!(store.stream(&app).await.unwrap().unwrap().generation, 3);
        // Deleting the tag over /v2/ takes its history; deleting a manifest
        // takes the history of the tags that pointed at it.
        store.put_manifest(&app, &m2, &[tag("v2")]).await.unwrap();
        assert!(store.delete_tag(&app, &tag("v1")).await.unwrap());
        assert!(history(store, &app, "v1").await.is_empty());
        assert!(store.delete_manifest(&app, &m2.digest).await.unwrap());
        assert!(history(store, &app, "v2").await.is_empty());
        assert!(
            store
                .stream(&app)
                .await
                .unwrap()
                .unwrap()
                .history
                .is_empty()
        );
    }

    async fn tagging_from_another_repository_links_the_image(db: &TestDb) {
        let store = &db.store;
        let (source, target) = (repo("shared/base"), repo("team/app"));
        let config = digest("base config");
        store.link_blob(&source, &config, 12).await.unwrap();
        let image = manifest("base image", None, None);
        let mut image = image;
        image.references = vec![(config.clone(), ReferenceKind::Config)];
        store
            .put_manifest(&source, &image, &[tag("1.0")])
            .await
            .unwrap();
        let target_tag = TagTarget {
            digest: image.digest.clone(),
            docker_image_reference: None,
            from_repository: Some(source.clone()),
            expires_at: None,
        };
        let moved = store
            .move_tag(
                &target,
                &tag("base"),
                &target_tag,
                &by("alice", RevisionCause::Tag),
            )
            .await
            .unwrap();
        assert!(matches!(moved, TagMove::Moved { .. }), "{moved:?}");
        assert_eq!(
            tagged(store, &target, "base").await,
            Some(image.digest.clone())
        );
        assert_eq!(
            store.repository_blob(&target, &config).await.unwrap(),
            Some(12)
        );
        assert!(
            store
                .missing_in_repository(
                    &target,
                    std::slice::from_ref(&config),
                    std::slice::from_ref(&image.digest),
                )
                .await
                .unwrap()
                .is_empty()
        );
        // A source that does not hold the image links nothing and tags nothing.
        let elsewhere = TagTarget {
            digest: image.digest.clone(),
            docker_image_reference: None,
            from_repository: Some(repo("shared/other")),
            expires_at: None,
        };
        assert_eq!(
            store
                .move_tag(
                    &repo("team/x"),
                    &tag("t"),
                    &elsewhere,
                    &by("a", RevisionCause::Tag)
                )
                .await
                .unwrap(),
            TagMove::ImageUnknown
        );
        assert!(!store.repository_exists(&repo("team/x")).await.unwrap());
    }

    async fn aliases_follow_their_source_tag(db: &TestDb) {
        let store = &db.store;
        let app = repo("ns/app");
        let (m1, m2) = (manifest("a1", None, None), manifest("a2", None, None));
        store
            .put_manifest(&app, &m1, &[tag("latest")])
            .await
            .unwrap();
        let generation = store
            .set_spec_tag(
                &app,
                &SpecTag {
                    name: "current".into(),
                    from: Some(TagSource {
                        kind: "ImageStreamTag".into(),
                        namespace: Some("ns".into()),
                        name: "app:latest".into(),
                    }),
                    reference: false,
                    reference_policy: "Source".into(),
                    import_scheduled: false,
                    import_insecure: false,
                    import_mode: "PreserveOriginal".into(),
                    generation: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(generation, 2);
        store
            .put_manifest_from(&app, &m2, &[tag("latest")], &by("bob", RevisionCause::Push))
            .await
            .unwrap();
        assert_eq!(
            tagged(store, &app, "current").await,
            Some(m2.digest.clone())
        );
        let stream = store.stream(&app).await.unwrap().unwrap();
        let followed = stream.history_of("current").next().unwrap();
        assert_eq!(followed.origin.cause, RevisionCause::Tag);
        assert_eq!(followed.origin.source.as_deref(), Some("ns/app:latest"));
        assert_eq!(stream.spec_tag("current").unwrap().generation, 2);
        // Two tags following each other end; each moves once.
        let mut loop_spec = stream.spec_tag("current").unwrap().clone();
        loop_spec.name = "latest".into();
        loop_spec.from.as_mut().unwrap().name = "app:current".into();
        store.set_spec_tag(&app, &loop_spec).await.unwrap();
        store
            .put_manifest(&app, &m1, &[tag("latest")])
            .await
            .unwrap();
        assert_eq!(
            tagged(store, &app, "current").await,
            Some(m1.digest.clone())
        );
        assert_eq!(history(store, &app, "latest").await.len(), 3);
    }

    async fn streams_are_listed_by_namespace_and_go_with_it(db: &TestDb) {
        let store = &db.store;
        assert!(store.create_stream(&repo("a_b/empty"), true).await.unwrap());
        assert!(
            !store
                .create_stream(&repo("a_b/empty"), false)
                .await
                .unwrap()
        );
        let m = manifest("listed", None, None);
        for name in ["a_b/app", "a_b/team/app", "axb/app", "a_b"] {
            store
                .put_manifest(&repo(name), &m, &[tag("1")])
                .await
                .unwrap();
        }
        let names = |streams: Vec<StoredStream>| {
            streams
                .into_iter()
                .map(|s| s.repository.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(store.streams(Some("a_b")).await.unwrap()),
            ["a_b/app", "a_b/empty", "a_b/team/app"]
        );
        assert_eq!(
            names(store.streams(None).await.unwrap()),
            ["a_b/app", "a_b/empty", "a_b/team/app", "axb/app"]
        );
        let empty = store.stream(&repo("a_b/empty")).await.unwrap().unwrap();
        assert!(empty.lookup_local && empty.history.is_empty());
        assert_eq!(empty.generation, 1);
        assert!(
            store
                .set_lookup_policy(&repo("a_b/empty"), false)
                .await
                .unwrap()
        );
        let empty = store.stream(&repo("a_b/empty")).await.unwrap().unwrap();
        assert!(!empty.lookup_local);
        assert_eq!(empty.generation, 2);
        assert!(
            !store
                .set_lookup_policy(&repo("a_b/none"), true)
                .await
                .unwrap()
        );
        // A stream deleted takes its repository with it.
        assert!(store.delete_stream(&repo("a_b/team/app")).await.unwrap());
        assert!(!store.delete_stream(&repo("a_b/team/app")).await.unwrap());
        assert!(
            !store
                .repository_exists(&repo("a_b/team/app"))
                .await
                .unwrap()
        );
        assert_eq!(tagged(store, &repo("a_b/team/app"), "1").await, None);
        // A tag deleted with delete_stream_tag takes its spec too.
        assert!(
            store
                .delete_stream_tag(&repo("a_b/app"), "1")
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_stream_tag(&repo("a_b/app"), "1")
                .await
                .unwrap()
        );
        assert_eq!(tagged(store, &repo("a_b/app"), "1").await, None);
        // The project deleted takes its streams.
        store.create_namespace(&namespace("a_b")).await.unwrap();
        assert!(store.delete_namespace("a_b").await.unwrap());
        assert!(store.streams(Some("a_b")).await.unwrap().is_empty());
        assert_eq!(names(store.streams(None).await.unwrap()), ["axb/app"]);
    }

    async fn tag_conditions_keep_their_transition_time(db: &TestDb) {
        let store = &db.store;
        let app = repo("ns/imported");
        assert!(store.create_stream(&app, false).await.unwrap());
        let failed = |at: i64, message: &str| TagCondition {
            tag: "1.0".into(),
            condition_type: "ImportSuccess".into(),
            status: "False".into(),
            reason: Some("Unreachable".into()),
            message: Some(message.into()),
            last_transition_at: at,
            generation: 1,
        };
        assert!(
            store
                .set_tag_condition(&app, &failed(100, "first"))
                .await
                .unwrap()
        );
        assert!(
            store
                .set_tag_condition(&app, &failed(200, "again"))
                .await
                .unwrap()
        );
        let stream = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(stream.conditions.len(), 1);
        assert_eq!(stream.conditions[0].last_transition_at, 100);
        assert_eq!(stream.conditions[0].message.as_deref(), Some("again"));
        let mut recovered = failed(300, "ok");
        recovered.status = "True".into();
        assert!(store.set_tag_condition(&app, &recovered).await.unwrap());
        let stream = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(stream.conditions[0].last_transition_at, 300);
        assert!(
            !store
                .set_tag_condition(&repo("ns/none"), &recovered)
                .await
                .unwrap()
        );
    }

    /// A spec tag taking its image from `kind` `name` (`None`: no source).
    fn spec(tag: &str, source: Option<(&str, &str)>) -> SpecTag {
        SpecTag {
            name: tag.into(),
            from: source.map(|(kind, name)| TagSource {
                kind: kind.into(),
                namespace: None,
                name: name.into(),
            }),
            reference: false,
            reference_policy: "Source".into(),
            import_scheduled: true,
            import_insecure: false,
            import_mode: "Legacy".into(),
            generation: 0,
        }
    }

    /// (repository, tag, due at, failures) of what is due at `at`.
    async fn due(
        store: &SqlMetadataStore,
        at: Timestamp,
        limit: u32,
    ) -> Vec<(String, String, Timestamp, u32)> {
        store
            .due_imports(at, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.repository.to_string(), d.spec.name, d.due_at, d.failures))
            .collect()
    }

    async fn recorded_docker_image_tags_are_due_until_scheduled(db: &TestDb) {
        let store = &db.store;
        let app = repo("ns/app");
        let before = now();
        store
            .set_spec_tag(
                &app,
                &spec("up", Some(("DockerImage", "quay.io/org/app:1"))),
            )
            .await
            .unwrap();
        let after = now();
        store
            .set_spec_tag(&app, &spec("alias", Some(("ImageStreamTag", "app:up"))))
            .await
            .unwrap();
        store.set_spec_tag(&app, &spec("bare", None)).await.unwrap();
        let due_now = store.due_imports(now(), 10).await.unwrap();
        assert_eq!(due_now.len(), 1, "{due_now:?}");
        let first = &due_now[0];
        assert_eq!(first.repository, app);
        assert!(
            (before..=after).contains(&first.due_at),
            "{before} <= {} <= {after}",
            first.due_at
        );
        assert_eq!(first.failures, 0);
        // The spec tag is the one the stream shows, field for field.
        let stream = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(Some(&first.spec), stream.spec_tag("up"));
        assert_eq!(stream.generation, 3);
        // Not due before it was recorded.
        assert!(due(store, before - 1, 10).await.is_empty());

        // Scheduled later, after failures: out until then, and the stream
        // and spec tag keep their generations.
        let later = after + 60_000;
        assert!(
            store
                .set_import_schedule(&app, "up", Some(later), 2)
                .await
                .unwrap()
        );
        assert!(due(store, now(), 10).await.is_empty());
        assert_eq!(
            due(store, later, 10).await,
            [("ns/app".to_owned(), "up".to_owned(), later, 2)]
        );
        let unchanged = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(unchanged.generation, stream.generation);
        assert_eq!(unchanged.spec_tags, stream.spec_tags);
        // No check at all.
        assert!(
            store
                .set_import_schedule(&app, "up", None, 0)
                .await
                .unwrap()
        );
        assert!(due(store, Timestamp::MAX, 10).await.is_empty());
        // Tags and streams without that spec tag.
        for (r, t) in [("ns/app", "nope"), ("ns/none", "up"), ("ns/app", "v1")] {
            assert!(
                !store
                    .set_import_schedule(&repo(r), t, Some(1), 0)
                    .await
                    .unwrap(),
                "{r}:{t}"
            );
        }
        assert!(due(store, Timestamp::MAX, 10).await.is_empty());
        assert_eq!(store.stream(&app).await.unwrap().unwrap().generation, 3);
        // A schedule for a tag whose source is not imported does not make
        // it due: only DockerImage sources are.
        assert!(
            store
                .set_import_schedule(&app, "alias", Some(1), 0)
                .await
                .unwrap()
        );
        assert!(due(store, Timestamp::MAX, 10).await.is_empty());

        // Recorded again: due again at once, the failures forgotten.
        store
            .set_import_schedule(&app, "up", Some(later), 5)
            .await
            .unwrap();
        let again_before = now();
        store
            .set_spec_tag(
                &app,
                &spec("up", Some(("DockerImage", "quay.io/org/app:2"))),
            )
            .await
            .unwrap();
        let again = store.due_imports(now(), 10).await.unwrap();
        assert_eq!(again.len(), 1, "{again:?}");
        assert!(again[0].due_at >= again_before && again[0].due_at < later);
        assert_eq!(again[0].failures, 0);
        assert_eq!(
            again[0].spec.from.as_ref().unwrap().name,
            "quay.io/org/app:2"
        );
        assert_eq!(again[0].spec.generation, 4);
        // Recorded with another kind of source: no longer due.
        store
            .set_spec_tag(&app, &spec("up", Some(("ImageStreamTag", "app:bare"))))
            .await
            .unwrap();
        assert!(due(store, Timestamp::MAX, 10).await.is_empty());
    }

    async fn due_imports_come_oldest_first_up_to_the_limit(db: &TestDb) {
        let store = &db.store;
        let source = Some(("DockerImage", "registry.example/x:1"));
        // Recorded in an order that neither the due times nor the names
        // follow.
        let schedule = [
            ("b/app", "t1", 300),
            ("a/app", "t2", 100),
            ("c/app", "t0", 200),
            ("a/app", "t1", 200),
            ("a/app", "t3", 400),
        ];
        for (r, t, at) in schedule {
            store
                .set_spec_tag(&repo(r), &spec(t, source))
                .await
                .unwrap();
            assert!(
                store
                    .set_import_schedule(&repo(r), t, Some(at), (at / 100) as u32)
                    .await
                    .unwrap()
            );
        }
        let row =
            |r: &str, t: &str, at: Timestamp| (r.to_owned(), t.to_owned(), at, (at / 100) as u32);
        let all = [
            row("a/app", "t2", 100),
            row("a/app", "t1", 200),
            row("c/app", "t0", 200),
            row("b/app", "t1", 300),
            row("a/app", "t3", 400),
        ];
        assert_eq!(due(store, 1000, 10).await, all);
        assert_eq!(due(store, 1000, 2).await, all[..2]);
        // Due at `now` itself counts; after it does not.
        assert_eq!(due(store, 300, 10).await, all[..4]);
        assert_eq!(due(store, 299, 10).await, all[..3]);
        assert!(due(store, 99, 10).await.is_empty());
        assert!(due(store, 1000, 0).await.is_empty());
    }

    async fn deleted_streams_and_tags_leave_no_import_due(db: &TestDb) {
        let store = &db.store;
        let source = Some(("DockerImage", "registry.example/x:1"));
        for (r, t) in [
            ("ns/a", "1"),
            ("ns/a", "2"),
            ("ns/b", "1"),
            ("other/c", "1"),
        ] {
            store
                .set_spec_tag(&repo(r), &spec(t, source))
                .await
                .unwrap();
        }
        let names = |due: Vec<(String, String, Timestamp, u32)>| {
            let mut names: Vec<String> = due
                .into_iter()
                .map(|(r, t, _, _)| format!("{r}:{t}"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(due(store, Timestamp::MAX, 10).await),
            ["ns/a:1", "ns/a:2", "ns/b:1", "other/c:1"]
        );
        assert!(store.delete_stream_tag(&repo("ns/a"), "2").await.unwrap());
        assert_eq!(
            names(due(store, Timestamp::MAX, 10).await),
            ["ns/a:1", "ns/b:1", "other/c:1"]
        );
        assert!(store.delete_stream(&repo("ns/b")).await.unwrap());
        assert_eq!(
            names(due(store, Timestamp::MAX, 10).await),
            ["ns/a:1", "other/c:1"]
        );
        store.create_namespace(&namespace("other")).await.unwrap();
        assert!(store.delete_namespace("other").await.unwrap());
        assert_eq!(names(due(store, Timestamp::MAX, 10).await), ["ns/a:1"]);
        // Nothing is left to schedule for the deleted ones.
        assert!(
            !store
                .set_import_schedule(&repo("ns/b"), "1", Some(1), 0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_import_schedule(&repo("ns/a"), "2", Some(1), 0)
                .await
                .unwrap()
        );
    }

    async fn clearing_a_condition_deletes_only_that_one(db: &TestDb) {
        let store = &db.store;
        let app = repo("ns/imported");
        assert!(store.create_stream(&app, false).await.unwrap());
        let condition = |t: &str, kind: &str| TagCondition {
            tag: t.into(),
            condition_type: kind.into(),
            status: "False".into(),
            reason: Some("Unreachable".into()),
            message: None,
            last_transition_at: 100,
            generation: 1,
        };
        for (t, kind) in [
            ("1.0", "ImportSuccess"),
            ("1.0", "Other"),
            ("2.0", "ImportSuccess"),
        ] {
            assert!(
                store
                    .set_tag_condition(&app, &condition(t, kind))
                    .await
                    .unwrap()
            );
        }
        // The same tag and type in another stream stays too.
        let other = repo("ns/other");
        assert!(store.create_stream(&other, false).await.unwrap());
        assert!(
            store
                .set_tag_condition(&other, &condition("1.0", "ImportSuccess"))
                .await
                .unwrap()
        );
        let conditions = |stream: StoredStream| {
            stream
                .conditions
                .into_iter()
                .map(|c| format!("{}/{}", c.tag, c.condition_type))
                .collect::<Vec<_>>()
        };
        assert!(
            store
                .clear_tag_condition(&app, "1.0", "ImportSuccess")
                .await
                .unwrap()
        );
        assert!(
            !store
                .clear_tag_condition(&app, "1.0", "ImportSuccess")
                .await
                .unwrap()
        );
        assert!(
            !store
                .clear_tag_condition(&repo("ns/none"), "1.0", "Other")
                .await
                .unwrap()
        );
        let stream = store.stream(&app).await.unwrap().unwrap();
        assert_eq!(stream.generation, 1);
        assert_eq!(conditions(stream), ["1.0/Other", "2.0/ImportSuccess"]);
        assert_eq!(
            conditions(store.stream(&other).await.unwrap().unwrap()),
            ["1.0/ImportSuccess"]
        );
    }

    /// Replicas pushing different images to one tag at once: every push
    /// that moved the tag has its own generation, and the tag's row ends
    /// at the newest revision's image.
    async fn concurrent_pushes_to_one_tag_leave_tag_and_history_agreeing(db: &TestDb) {
        const REPLICAS: usize = 3;
        const PUSHES: usize = 8;
        let app = repo("ns/race");
        let mut replicas = Vec::new();
        for _ in 0..REPLICAS {
            replicas.push(std::sync::Arc::new(
                SqlMetadataStore::connect(&db.config).await.unwrap(),
            ));
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REPLICAS * PUSHES));
        let mut pushes = Vec::new();
        for (r, replica) in replicas.iter().enumerate() {
            for p in 0..PUSHES {
                let (replica, barrier, app) = (replica.clone(), barrier.clone(), app.clone());
                pushes.push(tokio::spawn(async move {
                    let m = manifest(&format!("race {r} {p}"), None, None);
                    barrier.wait().await;
                    replica
                        .put_manifest_from(
                            &app,
                            &m,
                            &[tag("t"), tag("u")],
                            &by("x", RevisionCause::Push),
                        )
                        .await
                        .unwrap();
                }));
            }
        }
        for push in pushes {
            push.await.unwrap();
        }
        let stream = db.store.stream(&app).await.unwrap().unwrap();
        for t in ["t", "u"] {
            let revisions: Vec<_> = stream.history_of(t).collect();
            assert_eq!(revisions.len(), REPLICAS * PUSHES, "{t}");
            let mut generations: Vec<i64> = revisions.iter().map(|r| r.generation).collect();
            generations.dedup();
            assert_eq!(generations.len(), REPLICAS * PUSHES, "{t}: {generations:?}");
            assert_eq!(
                tagged(&db.store, &app, t).await,
                Some(revisions[0].digest.clone())
            );
        }
        assert_eq!(stream.generation, (2 * REPLICAS * PUSHES) as i64);
        for replica in replicas {
            replica.close().await;
        }
    }
}

/// Migration 0009 makes every repository a stream and every tag's current
/// image its first revision.
async fn streams_from_migration_0009(url: &str, engine: &str, config: DatabaseConfig) {
    let pool = migrate_to_before(url, engine, 9).await;
    let d = digest("old image");
    sqlx::query("INSERT INTO repositories (id, name, created_at) VALUES (7, 'old/app', 5)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO manifests (digest, media_type, size, content, created_at) \
         VALUES ($1, 'application/vnd.oci.image.manifest.v1+json', 2, $2, 5)",
    )
    .bind(d.as_str())
    .bind(b"{}".to_vec())
    .execute(&pool)
    .await
    .unwrap();
    for statement in [
        "INSERT INTO repository_manifests (repository_id, digest, created_at) VALUES (7, $1, 5)",
        "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (7, 'v1', $1, 6)",
    ] {
        sqlx::query(statement)
            .bind(d.as_str())
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    pool.close().await;
    let store = SqlMetadataStore::connect(&config).await.unwrap();
    let stream = image_streams::ImageStreamStore::stream(&store, &repo("old/app"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.generation, 1);
    let revision = stream.history_of("v1").next().unwrap();
    assert_eq!(
        (revision.generation, &revision.digest, revision.created_at),
        (1, &d, 6)
    );
    // The next push moves on from there.
    let m = manifest("new image", None, None);
    store
        .put_manifest(&repo("old/app"), &m, &[tag("v1")])
        .await
        .unwrap();
    let stream = image_streams::ImageStreamStore::stream(&store, &repo("old/app"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.history_of("v1").next().unwrap().generation, 2);
    store.close().await;
}

/// Migration 0011 makes the spec tags with a DockerImage source already
/// recorded due at once, and no others.
async fn imports_due_after_migration_0011(url: &str, engine: &str, config: DatabaseConfig) {
    use image_streams::ImageStreamStore as _;
    let pool = migrate_to_before(url, engine, 11).await;
    sqlx::query("INSERT INTO repositories (id, name, created_at) VALUES (7, 'old/app', 5)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO image_streams (repository_id, uid, generation, lookup_local, created_at) \
         VALUES (7, 'u', 4, 0, 5)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (name, kind, from) in [
        ("up", Some("DockerImage"), Some("quay.io/org/app:1")),
        ("alias", Some("ImageStreamTag"), Some("app:up")),
        ("bare", None, None),
    ] {
        sqlx::query(
            "INSERT INTO image_stream_spec_tags (repository_id, name, from_kind, from_namespace, \
             from_name, reference, reference_policy, import_scheduled, import_insecure, \
             import_mode, generation) VALUES (7, $1, $2, NULL, $3, 0, 'Source', 1, 0, 'Legacy', 3)",
        )
        .bind(name)
        .bind(kind)
        .bind(from)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let store = SqlMetadataStore::connect(&config).await.unwrap();
    let due = store.due_imports(0, 10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0].repository.as_str(), due[0].due_at, due[0].failures),
        ("old/app", 0, 0)
    );
    assert_eq!(due[0].spec.name, "up");
    assert_eq!(due[0].spec.generation, 3);
    // The others have no check due, however late.
    assert_eq!(
        store.due_imports(Timestamp::MAX, 10).await.unwrap().len(),
        1
    );
    store.close().await;
}

#[tokio::test]
async fn migration_0011_on_sqlite() {
    migration_story_on_sqlite(imports_due_after_migration_0011).await;
}

#[tokio::test]
async fn migration_0011_on_postgres() {
    migration_story_on_postgres(imports_due_after_migration_0011).await;
}

#[tokio::test]
async fn migration_0009_on_sqlite() {
    migration_story_on_sqlite(streams_from_migration_0009).await;
}

#[tokio::test]
async fn migration_0009_on_postgres() {
    migration_story_on_postgres(streams_from_migration_0009).await;
}

/// The garbage collection protocol.
mod garbage;
/// Storage accounting and namespace quotas.
mod quotas;
/// Tag expiration and immutable tags.
mod tag_policies;
