//! Tag expiration and immutable tags in the metadata store, on both
//! engines: what pulls, listings and stream views see of an expired tag,
//! its removal keeping its history, and the refusals of immutable tags
//! inside the transactions that write tags.

use std::time::Duration;

use super::super::access::AccessStore;
use super::super::image_streams::{ImageStreamStore, RevisionOrigin, TagMove, TagTarget};
use super::super::tag_policies::{ImmutableTag, TagChange};
use super::super::*;
use super::{TestDb, manifest, namespace, repo, tag};
use crate::oci::tag_pattern::TagPattern;

fn expiring(body: &str, in_ms: i64) -> NewManifest {
    let mut m = manifest(body, None, None);
    m.tag_expires_at = Some(now() + in_ms);
    m
}

fn patterns(list: &[&str]) -> Vec<TagPattern> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

async fn resolves(store: &dyn MetadataStore, r: &RepositoryName, t: &str) -> Option<Digest> {
    let by_tag = Reference::Tag(tag(t));
    let full = store.manifest(r, &by_tag).await.unwrap();
    let meta = store.manifest_meta(r, &by_tag).await.unwrap();
    assert_eq!(
        full.as_ref().map(|m| m.meta.digest.clone()),
        meta.as_ref().map(|m| m.digest.clone()),
        "GET and HEAD agree on {r}:{t}"
    );
    meta.map(|m| m.digest)
}

async fn tag_names(store: &dyn MetadataStore, r: &RepositoryName) -> Vec<String> {
    store.list_tags(r, None, 100).await.unwrap().unwrap().items
}

fn refused(result: Result<impl std::fmt::Debug>) -> ImmutableTag {
    match result {
        Err(MetadataError::TagImmutable(refusal)) => *refusal,
        other => panic!("expected an immutable-tag refusal, got {other:?}"),
    }
}

async fn expired_tags_stop_resolving_and_go_keeping_their_history(db: &TestDb) {
    let store = &db.store;
    let r = repo("exp/app");
    let short = expiring("short-lived", 1000);
    store.put_manifest(&r, &short, &[tag("tmp")]).await.unwrap();
    let kept = manifest("kept", None, None);
    store.put_manifest(&r, &kept, &[tag("keep")]).await.unwrap();

    // Before the expiry: everything as usual, and the listing says when
    // its first tag goes.
    assert_eq!(resolves(store, &r, "tmp").await, Some(short.digest.clone()));
    let by_tag = store
        .manifest(&r, &Reference::Tag(tag("tmp")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.expires_at, short.tag_expires_at);
    let page = store.list_tags(&r, None, 100).await.unwrap().unwrap();
    assert_eq!(page.items, ["keep", "tmp"]);
    assert_eq!(page.next_expiry, short.tag_expires_at);
    let stream = store.stream(&r).await.unwrap().unwrap();
    assert!(!stream.is_gone("tmp"));
    assert_eq!(stream.expiry_of("tmp"), short.tag_expires_at);
    assert_eq!(stream.expiry_of("keep"), None);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Past it: as if deleted, before anything removed the row.
    assert_eq!(resolves(store, &r, "tmp").await, None);
    assert_eq!(resolves(store, &r, "keep").await, Some(kept.digest.clone()));
    let page = store.list_tags(&r, None, 100).await.unwrap().unwrap();
    assert_eq!(
        (page.items.as_slice(), page.next_expiry),
        (&["keep".to_owned()][..], None)
    );
    let stream = store.stream(&r).await.unwrap().unwrap();
    assert!(stream.is_gone("tmp"));
    assert!(stream.current_of("tmp").is_none());
    assert_eq!(stream.history_of("tmp").count(), 1, "the history stays");
    // By digest the image is still there (until pruned).
    assert!(
        store
            .manifest(&r, &Reference::Digest(short.digest.clone()))
            .await
            .unwrap()
            .is_some()
    );
    // Deleting it by tag finds nothing to delete.
    assert!(!store.delete_tag(&r, &tag("tmp")).await.unwrap());

    // Removed once, with its history kept; nothing else goes.
    let removed = store.remove_expired_tags(now(), 100).await.unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(
        (removed[0].repository.as_str(), removed[0].tag.as_str()),
        ("exp/app", "tmp")
    );
    assert!(
        store
            .remove_expired_tags(now(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let stream = store.stream(&r).await.unwrap().unwrap();
    assert_eq!(stream.history_of("tmp").count(), 1);
    assert!(stream.is_gone("tmp"));
    assert_eq!(tag_names(store, &r).await, ["keep"]);

    // Pushed again: back, as a new revision, with no expiry now.
    store
        .put_manifest(&r, &manifest("short-lived", None, None), &[tag("tmp")])
        .await
        .unwrap();
    assert_eq!(resolves(store, &r, "tmp").await, Some(short.digest.clone()));
    let stream = store.stream(&r).await.unwrap().unwrap();
    assert_eq!(stream.history_of("tmp").count(), 2);
    assert_eq!(stream.expiry_of("tmp"), None);
}

async fn a_push_resets_the_expiry(db: &TestDb) {
    let store = &db.store;
    let r = repo("exp/reset");
    store
        .put_manifest(&r, &expiring("same", 1000), &[tag("t")])
        .await
        .unwrap();
    // The same image again, later expiry: the tag lives on, no revision.
    let later = expiring("same", 60_000);
    store.put_manifest(&r, &later, &[tag("t")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(resolves(store, &r, "t").await, Some(later.digest.clone()));
    let stream = store.stream(&r).await.unwrap().unwrap();
    assert_eq!(stream.history_of("t").count(), 1);
    assert_eq!(stream.expiry_of("t"), later.tag_expires_at);
    // A push saying nothing clears it; one expiring earlier shortens it.
    store
        .put_manifest(&r, &manifest("same", None, None), &[tag("t")])
        .await
        .unwrap();
    assert_eq!(
        store.stream(&r).await.unwrap().unwrap().expiry_of("t"),
        None
    );
    // A tag move by the image-stream path sets the expiry too.
    let target = TagTarget {
        digest: later.digest.clone(),
        docker_image_reference: None,
        from_repository: None,
        expires_at: Some(now() + 150),
    };
    let moved = store
        .move_tag(&r, &tag("t"), &target, &RevisionOrigin::unknown_push())
        .await
        .unwrap();
    assert_eq!(moved, TagMove::Unchanged);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(resolves(store, &r, "t").await, None);
}

async fn immutable_tags_refuse_moves_and_deletes(db: &TestDb) {
    let store = &db.store;
    store.create_namespace(&namespace("imm")).await.unwrap();
    let app = repo("imm/app");
    let (m1, m2) = (manifest("one", None, None), manifest("two", None, None));
    assert!(
        store
            .set_immutable_tag_policy("imm", None, &patterns(&["v*", "release-?"]), Some("alice"))
            .await
            .unwrap()
    );
    let policies = store.immutable_tag_policies("imm").await.unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].scope(), "imm");
    assert_eq!(policies[0].updated_by.as_deref(), Some("alice"));

    // Creating a matching tag is fine, and so is pushing its image again.
    store.put_manifest(&app, &m1, &[tag("v1")]).await.unwrap();
    store.put_manifest(&app, &m1, &[tag("v1")]).await.unwrap();
    // Moving it is refused, naming the policy and pattern; nothing written.
    let refusal = refused(
        store
            .put_manifest(&app, &m2, &[tag("v1"), tag("latest")])
            .await,
    );
    assert_eq!(
        (
            refusal.tag.as_str(),
            refusal.pattern.as_str(),
            refusal.change
        ),
        ("v1", "v*", TagChange::Move)
    );
    assert_eq!(
        (
            refusal.policy_namespace.as_str(),
            refusal.policy_repository.as_deref()
        ),
        ("imm", None)
    );
    assert!(
        refusal.to_string().contains("namespace \"imm\""),
        "{refusal}"
    );
    assert_eq!(resolves(store, &app, "v1").await, Some(m1.digest.clone()));
    assert_eq!(
        resolves(store, &app, "latest").await,
        None,
        "the whole push was refused"
    );
    // Tags not covered move freely.
    store
        .put_manifest(&app, &m2, &[tag("latest")])
        .await
        .unwrap();
    store
        .put_manifest(&app, &m1, &[tag("latest")])
        .await
        .unwrap();
    store
        .put_manifest(&app, &m2, &[tag("release-10")])
        .await
        .unwrap();
    store
        .put_manifest(&app, &m1, &[tag("release-10")])
        .await
        .unwrap();
    // An image stream move or rollback is a move too.
    let target = TagTarget {
        digest: m2.digest.clone(),
        docker_image_reference: None,
        from_repository: None,
        expires_at: None,
    };
    let refusal = refused(
        store
            .move_tag(&app, &tag("v1"), &target, &RevisionOrigin::unknown_push())
            .await,
    );
    assert_eq!(refusal.change, TagChange::Move);

    // Deletes: by tag, by the manifest it points at, as a stream tag.
    let refusal = refused(store.delete_tag(&app, &tag("v1")).await);
    assert_eq!(refusal.change, TagChange::Delete);
    let refusal = refused(store.delete_manifest(&app, &m1.digest).await);
    assert_eq!(refusal.tag, "v1");
    refused(store.delete_stream_tag(&app, "v1").await);
    assert_eq!(resolves(store, &app, "v1").await, Some(m1.digest.clone()));
    assert_eq!(
        resolves(store, &app, "latest").await,
        Some(m1.digest.clone())
    );
    // A manifest only uncovered tags point at is deleted as before.
    store
        .put_manifest(&app, &m2, &[tag("scratch")])
        .await
        .unwrap();
    assert!(store.delete_manifest(&app, &m2.digest).await.unwrap());

    // A repository's own policy: the repository's refusal names it.
    let other = repo("imm/other");
    store
        .put_manifest(&other, &m1, &[tag("stable")])
        .await
        .unwrap();
    store
        .set_immutable_tag_policy("imm", Some("other"), &patterns(&["stable"]), None)
        .await
        .unwrap();
    let refusal = refused(store.delete_tag(&other, &tag("stable")).await);
    assert_eq!(refusal.policy_repository.as_deref(), Some("other"));
    assert!(
        refusal.to_string().contains("repository \"imm/other\""),
        "{refusal}"
    );
    // …and does not reach the namespace's other repositories.
    store
        .put_manifest(&app, &m1, &[tag("stable")])
        .await
        .unwrap();
    assert!(store.delete_tag(&app, &tag("stable")).await.unwrap());
    let scopes: Vec<String> = store
        .immutable_tag_policies("imm")
        .await
        .unwrap()
        .iter()
        .map(|p| p.scope())
        .collect();
    assert_eq!(scopes, ["imm", "imm/other"]);

    // An immutable tag never expires: pushed with an expiry, it gets none;
    // covered later, it loses the one it had.
    store
        .put_manifest(&app, &expiring("one", 100), &[tag("v1")])
        .await
        .unwrap();
    let exp = repo("imm/exp");
    store
        .put_manifest(&exp, &expiring("one", 1000), &[tag("pinned")])
        .await
        .unwrap();
    // One already expired stays gone: a policy brings nothing back.
    store
        .put_manifest(&exp, &expiring("one", 50), &[tag("pin-old")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store
        .set_immutable_tag_policy("imm", Some("exp"), &patterns(&["pin*"]), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(resolves(store, &app, "v1").await, Some(m1.digest.clone()));
    assert_eq!(
        resolves(store, &exp, "pinned").await,
        Some(m1.digest.clone())
    );
    assert_eq!(resolves(store, &exp, "pin-old").await, None);

    // Cleared, the tags are ordinary again.
    assert!(
        store
            .set_immutable_tag_policy("imm", None, &[], None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_immutable_tag_policy("imm", None, &[], None)
            .await
            .unwrap()
    );
    store.put_manifest(&app, &m2, &[tag("v1")]).await.unwrap();
    assert!(store.delete_tag(&app, &tag("v1")).await.unwrap());

    // Policies need their namespace, and go with it.
    assert!(
        store
            .set_immutable_tag_policy("nowhere", None, &patterns(&["*"]), None)
            .await
            .is_err()
    );
    assert!(store.delete_namespace("imm").await.unwrap());
    assert!(
        store
            .immutable_tag_policies("imm")
            .await
            .unwrap()
            .is_empty()
    );
}

engine_tests!(
    ;
    db:
    expired_tags_stop_resolving_and_go_keeping_their_history,
    a_push_resets_the_expiry,
    immutable_tags_refuse_moves_and_deletes,
);
