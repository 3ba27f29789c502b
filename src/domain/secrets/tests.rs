//! The pull secrets' service over a real store, on both engines: sealing,
//! matching an upstream, keys missing or rotated, replicas re-encrypting
//! at once.

use std::sync::Arc;

use super::*;
use crate::metadata::SqlMetadataStore;
use crate::metadata::access::{AccessStore, Namespace};
use crate::metadata::testsuite::TestDb;

const PASSWORD: &str = "pw-XYZZY-never-stored-in-clear";

fn namespace(name: &str) -> Namespace {
    Namespace {
        name: name.into(),
        uid: format!("uid-{name}"),
        created_by: None,
        created_at: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite() {
    let db = TestDb::sqlite().await;
    pull_secrets_are_sealed_matched_and_reencrypted(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        pull_secrets_are_sealed_matched_and_reencrypted(&db).await;
        db.finish().await;
    }
}

fn keys(current: &str, previous: &[&str]) -> SecretKeys {
    SecretKeys::new(
        SecretKey::parse(current).unwrap(),
        previous
            .iter()
            .map(|k| SecretKey::parse(k).unwrap())
            .collect(),
    )
}

fn upstream(text: &str) -> UpstreamRepository {
    text.parse().unwrap()
}

async fn pull_secrets_are_sealed_matched_and_reencrypted(db: &TestDb) {
    let (_, old_key) = SecretKey::generate().unwrap();
    let (_, new_key) = SecretKey::generate().unwrap();
    let store: Arc<dyn SecretStore> =
        Arc::new(SqlMetadataStore::connect(&db.config).await.unwrap());
    db.store.create_namespace(&namespace("team")).await.unwrap();
    db.store
        .create_namespace(&namespace("elsewhere"))
        .await
        .unwrap();
    let secrets = PullSecrets::new(store.clone(), keys(&old_key, &[]));

    // Three secrets; one auth.json with two servers.
    let two = format!(
        r#"{{"auths": {{
            "registry.example.com/team": {{"username": "team-user", "password": "{PASSWORD}-team"}},
            "quay.io": {{"username": "quay-user", "password": "{PASSWORD}-quay"}}
        }}}}"#
    );
    let created = secrets
        .create("team", "b-two", two.as_bytes())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.registries.len(), 2);
    let config = docker_config_for(
        "registry.example.com",
        "wide-user",
        &format!("{PASSWORD}-wide"),
        None,
    );
    secrets
        .create("team", "a-wide", &config)
        .await
        .unwrap()
        .unwrap();
    let config = docker_config_for(
        "registry.example.com/team/app",
        "app-user",
        &format!("{PASSWORD}-app"),
        None,
    );
    secrets
        .create("team", "c-app", &config)
        .await
        .unwrap()
        .unwrap();
    assert!(
        secrets
            .create("team", "a-wide", &config)
            .await
            .unwrap()
            .is_none()
    );

    // At rest: no password, no auth string, in any row.
    let rows = store.secrets("team").await.unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let clear = format!("{}{}", row.registries, row.secret_type);
        assert!(!clear.contains(PASSWORD), "{clear}");
        assert!(
            !row.sealed
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "password in the sealed bytes of {}",
            row.name
        );
        assert!(!String::from_utf8_lossy(&row.sealed).contains("-user"));
        assert_eq!(row.key_id, secrets.keys().current_id());
    }

    // Matching: by host, then the longest path prefix, across secrets.
    let chosen = |reference: &'static str| {
        let secrets = &secrets;
        async move {
            secrets
                .credentials_for("team", &upstream(reference))
                .await
                .unwrap()
                .map(|c| (c.secret, c.username, c.password))
        }
    };
    let pw = |suffix: &str| format!("{PASSWORD}-{suffix}");
    assert_eq!(
        chosen("registry.example.com/team/app:1").await,
        Some(("c-app".into(), "app-user".into(), pw("app")))
    );
    assert_eq!(
        chosen("registry.example.com/team/other").await,
        Some(("b-two".into(), "team-user".into(), pw("team")))
    );
    assert_eq!(
        chosen("registry.example.com/lib/x").await,
        Some(("a-wide".into(), "wide-user".into(), pw("wide")))
    );
    assert_eq!(
        chosen("quay.io/any/thing").await,
        Some(("b-two".into(), "quay-user".into(), pw("quay")))
    );
    assert_eq!(chosen("registry.example.com:5000/team/app").await, None);
    assert_eq!(chosen("ghcr.io/x/y").await, None);
    // Another namespace's secrets are not its.
    assert!(
        secrets
            .credentials_for("elsewhere", &upstream("quay.io/a/b"))
            .await
            .unwrap()
            .is_none()
    );
    let found = secrets
        .credentials_for_reference("team", "quay.io/a/b@sha256:00")
        .await
        .unwrap()
        .unwrap();
    assert!(!format!("{found:?}").contains(PASSWORD));
    assert!(matches!(
        secrets
            .credentials_for_reference("team", "https://quay.io/a")
            .await,
        Err(SecretError::Reference(_))
    ));

    // A bad config stores nothing.
    for bad in ["", "{}", "{\"auths\": {\"quay.io\": {}}}", "not json"] {
        assert!(matches!(
            secrets.create("team", "bad", bad.as_bytes()).await,
            Err(SecretError::Invalid(_))
        ));
    }
    assert!(store.secret("team", "bad").await.unwrap().is_none());

    // Without the key: a clear error naming the secret and the key.
    let stranger = PullSecrets::new(store.clone(), keys(&new_key, &[]));
    let old_id = secrets.keys().current_id().to_owned();
    match stranger
        .credentials_for("team", &upstream("quay.io/a/b"))
        .await
    {
        Err(SecretError::Undecryptable {
            namespace,
            name,
            reason: OpenError::UnknownKey(id),
        }) => assert_eq!(
            (namespace.as_str(), name.as_str(), id),
            ("team", "b-two", old_id.clone())
        ),
        other => panic!("{other:?}"),
    }
    let message = stranger
        .open("team", "b-two")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"team/b-two\"") && message.contains(&old_id),
        "{message}"
    );
    // Listing needs no key.
    assert_eq!(stranger.list("team").await.unwrap().len(), 3);
    // Nothing re-encrypted by a server that cannot open it.
    let done = stranger.reencrypt().await.unwrap();
    assert_eq!((done.resealed, done.failed.len()), (0, 3));

    // An altered value is told apart from a missing key.
    let mut altered = store.secret("team", "a-wide").await.unwrap().unwrap();
    let last = altered.sealed.len() - 1;
    altered.sealed[last] ^= 0x40;
    let sealed = altered.sealed.clone();
    assert!(
        store
            .reseal_secret(&altered, &old_id, &old_id, &sealed)
            .await
            .unwrap()
    );
    assert!(matches!(
        secrets.open("team", "a-wide").await,
        Err(SecretError::Undecryptable {
            reason: OpenError::Damaged(_),
            ..
        })
    ));
    secrets.delete("team", "a-wide").await.unwrap();

    // Rotation: the new key current, the old one previous; a pass
    // re-encrypts everything, after which the old key is not needed.
    let rotated = PullSecrets::new(store.clone(), keys(&new_key, &[&old_key]));
    assert_eq!(
        rotated
            .credentials_for("team", &upstream("quay.io/a"))
            .await
            .unwrap()
            .unwrap()
            .password,
        pw("quay")
    );
    // Two replicas re-encrypting at once rewrite each secret once.
    let elsewhere: Arc<dyn SecretStore> =
        Arc::new(SqlMetadataStore::connect(&db.config).await.unwrap());
    let rotated_elsewhere = PullSecrets::new(elsewhere, keys(&new_key, &[&old_key]));
    let (here, there) = tokio::join!(rotated.reencrypt(), rotated_elsewhere.reencrypt());
    let (here, there) = (here.unwrap(), there.unwrap());
    assert_eq!(here.resealed + there.resealed, 2);
    assert!(here.failed.is_empty() && there.failed.is_empty());
    assert_eq!(rotated.reencrypt().await.unwrap().resealed, 0);
    for row in store.secrets("team").await.unwrap() {
        assert_eq!(row.key_id, rotated.keys().current_id());
    }
    let new_only = PullSecrets::new(store.clone(), keys(&new_key, &[]));
    assert_eq!(
        new_only
            .credentials_for("team", &upstream("registry.example.com/team/app"))
            .await
            .unwrap()
            .unwrap()
            .password,
        pw("app")
    );
    assert!(matches!(
        secrets.open("team", "c-app").await,
        Err(SecretError::Undecryptable {
            reason: OpenError::UnknownKey(_),
            ..
        })
    ));
    let (info, opened) = new_only.open("team", "b-two").await.unwrap().unwrap();
    assert_eq!(info.registries.len(), 2);
    let quay = opened.iter().find(|r| r.server == "quay.io").unwrap();
    assert_eq!(
        (quay.username.as_str(), quay.password.clone()),
        ("quay-user", pw("quay"))
    );
    assert!(new_only.open("team", "gone").await.unwrap().is_none());
}
