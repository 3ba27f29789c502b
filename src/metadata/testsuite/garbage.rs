//! The garbage collection protocol of the metadata store, on both engines:
//! what is found, what a removal re-checks, how marked blobs look to the
//! push path, and (PostgreSQL) rows a push holds being skipped.

use std::time::Duration;

use sqlx::{Connection, Executor};

use super::super::garbage::GarbageStore;
use super::super::*;
use super::{TestDb, digest, manifest, repo, tag};

/// Short enough that what a test made a few milliseconds ago is past it.
const GRACE: Duration = Duration::from_millis(1);
const LONG: Duration = Duration::from_secs(3600);
const WINDOW: Duration = Duration::from_secs(60);

/// Rows made now are past [`GRACE`] once the clock has moved on.
async fn age() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// An image manifest referencing `blobs` (config first), all required.
fn image(body: &str, blobs: &[&Digest]) -> NewManifest {
    let mut m = manifest(body, None, None);
    m.references = blobs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let kind = if i == 0 {
                ReferenceKind::Config
            } else {
                ReferenceKind::Layer
            };
            ((*d).clone(), kind)
        })
        .collect();
    m.required = RequiredContent {
        blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        manifests: Vec::new(),
    };
    m
}

fn index(body: &str, children: &[&Digest]) -> NewManifest {
    let mut m = manifest(body, None, None);
    m.media_type = "application/vnd.oci.image.index.v1+json".into();
    m.references = children
        .iter()
        .map(|d| ((*d).clone(), ReferenceKind::Manifest))
        .collect();
    m.required = RequiredContent {
        blobs: Vec::new(),
        manifests: children.iter().map(|d| (*d).clone()).collect(),
    };
    m
}

fn digests(blobs: &[garbage::GcBlob]) -> Vec<Digest> {
    blobs.iter().map(|b| b.digest.clone()).collect()
}

async fn unreferenced_blobs_are_marked_then_swept(db: &TestDb) {
    let store = &db.store;
    let r = repo("gc/app");
    let (used, unused) = (digest("used"), digest("unused"));
    store.link_blob(&r, &used, 10).await.unwrap();
    store.link_blob(&r, &unused, 20).await.unwrap();
    store
        .put_manifest(&r, &image("img", &[&used]), &[tag("v1")])
        .await
        .unwrap();
    // Within the grace period, nothing is a candidate.
    assert!(
        store
            .unreferenced_blobs(None, 100, LONG)
            .await
            .unwrap()
            .is_empty()
    );
    age().await;
    let found = store.unreferenced_blobs(None, 100, GRACE).await.unwrap();
    assert_eq!(digests(&found), vec![unused.clone()]);
    assert_eq!(found[0].size, 20);

    // Marking decides again: the referenced blob is not marked.
    let marked = store
        .mark_blobs(&[used.clone(), unused.clone()], GRACE, WINDOW)
        .await
        .unwrap();
    assert_eq!(digests(&marked), vec![unused.clone()]);
    assert_eq!(store.blobs_being_deleted().await.unwrap(), 1);
    // A marked blob is gone for pulls, mounts, links and manifests.
    assert_eq!(store.blob_link(&r, &unused).await.unwrap(), None);
    assert_eq!(
        store.mount_blob(&repo("gc/other"), &unused).await.unwrap(),
        None
    );
    assert!(!store.link_blob(&r, &unused, 20).await.unwrap());
    let refused = store
        .put_manifest(&r, &image("late", &[&used, &unused]), &[tag("v2")])
        .await;
    assert!(
        matches!(&refused, Err(MetadataError::ReferenceUnknown(d)) if *d == unused),
        "{refused:?}"
    );
    assert!(
        store
            .manifest(&r, &Reference::Tag(tag("v2")))
            .await
            .unwrap()
            .is_none(),
        "a refused put stores nothing"
    );
    // An upload of the same content waits: the bytes may be deleted now.
    assert!(matches!(
        store.claim_blob(&unused, 20).await.unwrap(),
        BlobClaim::BeingDeleted { .. }
    ));
    // Not a candidate twice.
    assert!(
        store
            .unreferenced_blobs(None, 100, GRACE)
            .await
            .unwrap()
            .is_empty()
    );

    // Swept once its bytes are gone; then it can be pushed again.
    let swept = store
        .sweep_blobs(&[unused.clone(), used.clone()])
        .await
        .unwrap();
    assert_eq!(swept, vec![unused.clone()]);
    assert_eq!(store.blobs_being_deleted().await.unwrap(), 0);
    assert_eq!(
        store.claim_blob(&unused, 20).await.unwrap(),
        BlobClaim::Claimed
    );
    assert!(store.link_blob(&r, &unused, 20).await.unwrap());
    assert_eq!(store.repository_blob(&r, &unused).await.unwrap(), Some(20));
    // The referenced blob was never touched by any of it.
    assert_eq!(store.repository_blob(&r, &used).await.unwrap(), Some(10));
}

async fn touches_and_claims_protect_blobs(db: &TestDb) {
    let store = &db.store;
    let r = repo("gc/touch");
    let d = digest("touched");
    store.link_blob(&r, &d, 5).await.unwrap();
    age().await;
    let before = store.blob_link(&r, &d).await.unwrap().unwrap();
    assert_eq!(before.size, 5);
    // Touched recently enough: nothing written.
    assert!(!store.touch_blob(&r, &d, LONG).await.unwrap());
    age().await;
    assert!(store.touch_blob(&r, &d, GRACE).await.unwrap());
    let after = store.blob_link(&r, &d).await.unwrap().unwrap();
    assert!(after.touched_at > before.touched_at, "{before:?} {after:?}");
    // Touched just now: not a candidate within a grace longer than that.
    assert!(
        store
            .unreferenced_blobs(None, 10, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    // An upload's claim makes the row before its bytes exist: protected,
    // not visible in any repository.
    let claimed = digest("claimed");
    assert_eq!(
        store.claim_blob(&claimed, 9).await.unwrap(),
        BlobClaim::Claimed
    );
    assert_eq!(store.blob_link(&r, &claimed).await.unwrap(), None);
    assert!(
        store
            .unreferenced_blobs(None, 10, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    // A mount touches too, and only links a live blob.
    age().await;
    assert_eq!(store.mount_blob(&repo("gc/m"), &d).await.unwrap(), Some(5));
    assert_eq!(
        store
            .mount_blob(&repo("gc/m"), &digest("none"))
            .await
            .unwrap(),
        None
    );
    assert!(!store.repository_exists(&repo("gc/none")).await.unwrap());
    assert_eq!(
        store
            .mount_blob(&repo("gc/none"), &digest("none"))
            .await
            .unwrap(),
        None
    );
    assert!(
        !store.repository_exists(&repo("gc/none")).await.unwrap(),
        "a failed mount makes no repository"
    );
}

async fn abandoned_marks_are_taken_over_or_finished(db: &TestDb) {
    let store = &db.store;
    let r = repo("gc/abandoned");
    let (a, b) = (digest("abandoned-a"), digest("abandoned-b"));
    store.link_blob(&r, &a, 1).await.unwrap();
    store.link_blob(&r, &b, 2).await.unwrap();
    age().await;
    // Marked with a deadline already past: the run that marked them stopped.
    let marked = store
        .mark_blobs(&[a.clone(), b.clone()], GRACE, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(marked.len(), 2);
    age().await;
    // An upload takes one over (its bytes are written again next).
    assert_eq!(store.claim_blob(&a, 1).await.unwrap(), BlobClaim::Claimed);
    // The next run marks the other again, with a deadline of its own.
    let again = store.remark_abandoned_blobs(100, WINDOW).await.unwrap();
    assert_eq!(digests(&again), vec![b.clone()]);
    assert!(
        store
            .remark_abandoned_blobs(100, WINDOW)
            .await
            .unwrap()
            .is_empty()
    );
    // Sweeping the taken-over row leaves it.
    let swept = store.sweep_blobs(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(swept, vec![b.clone()]);
    assert!(store.link_blob(&r, &a, 1).await.unwrap());
}

async fn manifest_links_go_unless_something_keeps_them(db: &TestDb) {
    let store = &db.store;
    let r = repo("gc/manifests");
    let config = digest("config");
    store.link_blob(&r, &config, 3).await.unwrap();
    let tagged = image("tagged", &[&config]);
    let untagged = image("untagged", &[&config]);
    let child = image("child", &[&config]);
    let other_child = image("other-child", &[&config]);
    store.put_manifest(&r, &tagged, &[tag("v1")]).await.unwrap();
    store.put_manifest(&r, &untagged, &[]).await.unwrap();
    store.put_manifest(&r, &child, &[]).await.unwrap();
    store.put_manifest(&r, &other_child, &[]).await.unwrap();
    let idx = index("index", &[&child.digest]);
    store.put_manifest(&r, &idx, &[]).await.unwrap();
    let kept_idx = index("kept-index", &[&other_child.digest]);
    store
        .put_manifest(&r, &kept_idx, &[tag("multi")])
        .await
        .unwrap();
    let sig = manifest("signature", Some(tagged.digest.clone()), Some("sig"));
    store.put_manifest(&r, &sig, &[]).await.unwrap();
    let stray_sig = manifest("stray", Some(digest("no-subject")), Some("sig"));
    store.put_manifest(&r, &stray_sig, &[]).await.unwrap();
    // A tag moved on keeps its history: the old image stays.
    let old = image("old", &[&config]);
    store
        .put_manifest(&r, &old, &[tag("moving")])
        .await
        .unwrap();
    store
        .put_manifest(&r, &tagged, &[tag("moving")])
        .await
        .unwrap();

    let ids = store.gc_repositories(0, 10).await.unwrap();
    let (id, name) = ids
        .iter()
        .find(|(_, n)| n == "gc/manifests")
        .cloned()
        .unwrap();
    // Young: everything is a root.
    let graph = store.repository_graph(id, &name, LONG).await.unwrap();
    assert!(graph.links.iter().all(|(_, young)| *young));
    age().await;
    let graph = store.repository_graph(id, &name, GRACE).await.unwrap();
    assert_eq!(graph.links.len(), 9);
    assert!(graph.links.iter().all(|(_, young)| !*young));
    for kept in [&tagged.digest, &kept_idx.digest, &old.digest] {
        assert!(graph.named.contains(kept), "{kept} named");
    }
    assert!(
        graph
            .edges
            .contains(&(idx.digest.clone(), child.digest.clone()))
    );
    assert!(
        graph
            .edges
            .contains(&(tagged.digest.clone(), sig.digest.clone()))
    );

    // Each removal is checked again: what is still kept stays.
    let everything: Vec<Digest> = graph.links.iter().map(|(d, _)| d.clone()).collect();
    // Children listed before their parents are kept by them (the parent
    // still exists when the child's turn comes).
    let removed = store
        .delete_manifest_links(id, &[child.digest.clone(), idx.digest.clone()], GRACE)
        .await
        .unwrap();
    assert_eq!(removed, vec![idx.digest.clone()]);
    let mut removed = store
        .delete_manifest_links(id, &everything, GRACE)
        .await
        .unwrap();
    removed.sort();
    let mut expected = vec![
        untagged.digest.clone(),
        child.digest.clone(),
        stray_sig.digest.clone(),
    ];
    expected.sort();
    assert_eq!(removed, expected);
    for gone in &expected {
        assert!(
            store
                .manifest(&r, &Reference::Digest(gone.clone()))
                .await
                .unwrap()
                .is_none()
        );
    }
    for kept in [&tagged, &other_child, &kept_idx, &sig, &old] {
        assert!(
            store
                .manifest(&r, &Reference::Digest(kept.digest.clone()))
                .await
                .unwrap()
                .is_some(),
            "{} kept",
            kept.digest
        );
    }

    // The manifests no repository holds any more go with their references.
    let mut orphans = store.orphan_manifests(None, 100).await.unwrap();
    orphans.sort();
    let mut gone = expected.clone();
    gone.push(idx.digest.clone());
    gone.sort();
    assert_eq!(orphans, gone);
    let mut deleted = store.delete_orphan_manifests(&orphans).await.unwrap();
    deleted.sort();
    assert_eq!(deleted, gone);
    assert!(store.orphan_manifests(None, 100).await.unwrap().is_empty());
    assert!(
        store
            .references_of(std::slice::from_ref(&untagged.digest))
            .await
            .unwrap()
            .is_empty()
    );
    // The config blob is still referenced by the kept images.
    assert!(
        store
            .unreferenced_blobs(None, 10, GRACE)
            .await
            .unwrap()
            .is_empty()
    );

    // A manifest removed and pushed again is whole again.
    store
        .put_manifest(&r, &untagged, &[tag("back")])
        .await
        .unwrap();
    assert_eq!(
        store
            .references_of(std::slice::from_ref(&untagged.digest))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Paging by the cursor `(repository id, digest)` lists every unused link
/// once, in key order, across repositories and within one: the cursor's
/// repository goes on past its digest and the next ones start at their
/// first.
async fn unused_blob_links_page_across_repositories(db: &TestDb) {
    let store = &db.store;
    let repositories = [repo("gc/pages-a"), repo("gc/pages-b"), repo("gc/pages-c")];
    let mut expected = Vec::new();
    for (r, name) in repositories.iter().enumerate() {
        for i in 0..3 {
            let unused = digest(&format!("page-{r}-{i}"));
            store.link_blob(name, &unused, 1).await.unwrap();
            expected.push((name.to_string(), unused));
        }
        let used = digest(&format!("page-{r}-used"));
        store.link_blob(name, &used, 1).await.unwrap();
        store
            .put_manifest(name, &image(&format!("pages-{r}"), &[&used]), &[tag("v1")])
            .await
            .unwrap();
    }
    age().await;
    let mut listed = Vec::new();
    let mut after: Option<(i64, Digest)> = None;
    loop {
        let page = store
            .unreferenced_blob_links(after.as_ref().map(|(id, d)| (*id, d)), 2, GRACE)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            break;
        };
        assert!(page.len() <= 2);
        after = Some((last.repository_id, last.digest.clone()));
        listed.extend(
            page.into_iter()
                .map(|l| (l.repository_id, l.repository, l.digest)),
        );
    }
    let keys: Vec<(i64, Digest)> = listed.iter().map(|(id, _, d)| (*id, d.clone())).collect();
    let mut ordered = keys.clone();
    ordered.sort();
    ordered.dedup();
    assert_eq!(keys, ordered, "listed once each, in key order");
    let mut found: Vec<(String, Digest)> = listed
        .into_iter()
        .filter(|(_, name, _)| name.starts_with("gc/pages-"))
        .map(|(_, name, d)| (name, d))
        .collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
}

async fn blob_links_unused_in_their_repository_go(db: &TestDb) {
    let store = &db.store;
    let (a, b) = (repo("gc/links-a"), repo("gc/links-b"));
    let shared = digest("shared-layer");
    store.link_blob(&a, &shared, 7).await.unwrap();
    store.link_blob(&b, &shared, 7).await.unwrap();
    store
        .put_manifest(&a, &image("user", &[&shared]), &[tag("v1")])
        .await
        .unwrap();
    age().await;
    let links = store
        .unreferenced_blob_links(None, 10, GRACE)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].repository, "gc/links-b");
    assert_eq!(links[0].digest, shared);
    assert!(
        store
            .unreferenced_blob_links(None, 10, LONG)
            .await
            .unwrap()
            .is_empty()
    );
    let removed = store
        .delete_blob_links(links[0].repository_id, std::slice::from_ref(&shared), GRACE)
        .await
        .unwrap();
    assert_eq!(removed, vec![shared.clone()]);
    assert_eq!(store.repository_blob(&b, &shared).await.unwrap(), None);
    assert_eq!(store.repository_blob(&a, &shared).await.unwrap(), Some(7));
    // The blob itself is referenced: not a candidate.
    assert!(
        store
            .unreferenced_blobs(None, 10, GRACE)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn dry_run_reads_foresee(db: &TestDb) {
    let store = &db.store;
    let r = repo("gc/dry");
    let (x, y) = (digest("dry-x"), digest("dry-y"));
    store.link_blob(&r, &x, 1).await.unwrap();
    store.link_blob(&r, &y, 2).await.unwrap();
    let m = image("dry-image", &[&x, &y]);
    store.put_manifest(&r, &m, &[]).await.unwrap();
    store
        .put_manifest(&repo("gc/dry2"), &manifest("dry-other", None, None), &[])
        .await
        .unwrap();
    let counts = store
        .manifest_link_counts(std::slice::from_ref(&m.digest))
        .await
        .unwrap();
    assert_eq!(counts.get(&m.digest), Some(&1));
    let mut refs = store
        .references_of(std::slice::from_ref(&m.digest))
        .await
        .unwrap();
    refs.sort();
    let mut expected = vec![(m.digest.clone(), x.clone()), (m.digest.clone(), y.clone())];
    expected.sort();
    assert_eq!(refs, expected);
    let to = store.references_to(std::slice::from_ref(&x)).await.unwrap();
    assert_eq!(to, vec![(x.clone(), m.digest.clone())]);
    age().await;
    let rows = store
        .blob_rows(&[x.clone(), digest("absent")], GRACE)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].collectable);
    let rows = store
        .blob_rows(std::slice::from_ref(&x), LONG)
        .await
        .unwrap();
    assert!(!rows[0].collectable);
    assert_eq!(store.count_blobs().await.unwrap(), 2);
}

async fn runs_are_recorded(db: &TestDb) {
    let store = &db.store;
    store.start_gc_run("first", "replica-a").await.unwrap();
    let progress = garbage::GcProgress {
        phase: "blobs".into(),
        blobs_removed: 3,
        bytes_freed: 300,
        ..Default::default()
    };
    store.record_gc_progress("first", &progress).await.unwrap();
    let running = store.gc_run("first").await.unwrap().unwrap();
    assert_eq!(running.outcome, None);
    assert_eq!(running.progress, progress);
    assert_eq!(running.replica, "replica-a");
    // The replica died: the next run marks it interrupted.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.start_gc_run("second", "replica-b").await.unwrap();
    let first = store.gc_run("first").await.unwrap().unwrap();
    assert_eq!(first.outcome.as_deref(), Some("Interrupted"));
    assert!(first.finished_at.is_some());
    store
        .finish_gc_run("second", &progress, "Failed", Some("boom"), "[]")
        .await
        .unwrap();
    let runs = store.gc_runs(10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["second", "first"]
    );
    assert_eq!(runs[0].error.as_deref(), Some("boom"));
    assert_eq!(runs[0].removed.as_deref(), Some("[]"));
    assert_eq!(store.gc_run("none").await.unwrap(), None);
}

/// PostgreSQL: a row a push holds (`FOR SHARE`, as a manifest put holds
/// what it references) is skipped by the collector, which never waits for
/// it; and a push that comes after a mark sees the mark.
async fn rows_a_push_holds_are_skipped(db: &TestDb) {
    let store = &db.store;
    let DatabaseConfig::Postgres { url, .. } = &db.config else {
        return;
    };
    let r = repo("gc/held");
    let (held, free) = (digest("held"), digest("free"));
    store.link_blob(&r, &held, 1).await.unwrap();
    store.link_blob(&r, &free, 2).await.unwrap();
    store
        .put_manifest(&r, &manifest("held-manifest", None, None), &[])
        .await
        .unwrap();
    age().await;
    let mut push = sqlx::AnyConnection::connect(url).await.unwrap();
    push.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT digest FROM blobs WHERE digest = $1 FOR SHARE")
        .bind(held.as_str())
        .fetch_all(&mut push)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let marked = store
        .mark_blobs(&[held.clone(), free.clone()], GRACE, WINDOW)
        .await
        .unwrap();
    assert_eq!(digests(&marked), vec![free.clone()]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the collector waited"
    );
    // The same for a held link, and for a held manifest link.
    let linked = digest("link-held");
    store.link_blob(&r, &linked, 3).await.unwrap();
    age().await;
    sqlx::query("SELECT digest FROM repository_blobs WHERE digest = $1 FOR SHARE")
        .bind(linked.as_str())
        .fetch_all(&mut push)
        .await
        .unwrap();
    assert!(
        store
            .mark_blobs(std::slice::from_ref(&linked), GRACE, WINDOW)
            .await
            .unwrap()
            .is_empty()
    );
    let m = manifest("held-manifest", None, None);
    sqlx::query("SELECT digest FROM repository_manifests WHERE digest = $1 FOR SHARE")
        .bind(m.digest.as_str())
        .fetch_all(&mut push)
        .await
        .unwrap();
    let (id, _) = store
        .gc_repositories(0, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|(_, n)| n == "gc/held")
        .unwrap();
    assert!(
        store
            .delete_manifest_links(id, std::slice::from_ref(&m.digest), GRACE)
            .await
            .unwrap()
            .is_empty()
    );
    push.execute("COMMIT").await.unwrap();
    // Released: collected now.
    assert_eq!(
        digests(
            &store
                .mark_blobs(&[held.clone(), linked.clone()], GRACE, WINDOW)
                .await
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        store
            .delete_manifest_links(id, std::slice::from_ref(&m.digest), GRACE)
            .await
            .unwrap(),
        vec![m.digest.clone()]
    );

    // The other way round: the collector holds a blob row while it marks
    // it; a put referencing it waits, then finds it gone.
    let late = digest("late");
    store.link_blob(&r, &late, 4).await.unwrap();
    age().await;
    let mut collector = sqlx::AnyConnection::connect(url).await.unwrap();
    collector.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT digest FROM blobs WHERE digest = $1 FOR UPDATE")
        .bind(late.as_str())
        .fetch_all(&mut collector)
        .await
        .unwrap();
    let put = {
        let m = image("late-image", &[&late]);
        let r = r.clone();
        async move { store.put_manifest(&r, &m, &[tag("late")]).await }
    };
    let mark = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE blobs SET deleting_until = 1 WHERE digest = $1")
            .bind(late.as_str())
            .execute(&mut collector)
            .await
            .unwrap();
        sqlx::query("DELETE FROM repository_blobs WHERE digest = $1")
            .bind(late.as_str())
            .execute(&mut collector)
            .await
            .unwrap();
        collector.execute("COMMIT").await.unwrap();
    };
    let (put, ()) = tokio::join!(put, mark);
    assert!(
        matches!(&put, Err(MetadataError::ReferenceUnknown(d)) if *d == late),
        "{put:?}"
    );
}

/// A collection's tables get planner statistics: on PostgreSQL each of
/// them is analyzed (without, a server with autovacuum off planned the
/// unreferenced-links check as a scan of `manifest_references` per link);
/// on SQLite it succeeds and changes nothing.
async fn statistics_are_refreshed_for_a_collection(db: &TestDb) {
    let store = &db.store;
    store
        .link_blob(&repo("gc/stats"), &digest("s"), 1)
        .await
        .unwrap();
    store.refresh_statistics().await.unwrap();
    let DatabaseConfig::Postgres { url, .. } = &db.config else {
        return;
    };
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let rows = sqlx::query(
        "SELECT relname::text AS relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL \
         AND relname IN ('blobs', 'repository_blobs', 'manifests', 'manifest_references', \
         'repository_manifests', 'repositories', 'tags', 'tag_revisions')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 8, "tables analyzed: {}", rows.len());
}

engine_tests!(
    ;
    db:
    statistics_are_refreshed_for_a_collection,
    unreferenced_blobs_are_marked_then_swept,
    touches_and_claims_protect_blobs,
    abandoned_marks_are_taken_over_or_finished,
    manifest_links_go_unless_something_keeps_them,
    blob_links_unused_in_their_repository_go,
    unused_blob_links_page_across_repositories,
    dry_run_reads_foresee,
    runs_are_recorded,
    rows_a_push_holds_are_skipped,
);
