//! The administration service's rules, on an embedded database.

use std::sync::Arc;
use std::time::Duration;

use super::names::*;
use super::subjects::*;
use super::*;
use crate::auth::lockout::LockoutPolicy;
use crate::auth::policy::Principal;
use crate::auth::{AccessControl, Caller};
use crate::auth::{AccessOptions, AutoCreateNamespaces};
use crate::metadata::{DatabaseConfig, SqlMetadataStore};

#[test]
fn project_names() {
    for ok in ["a", "myproj", "my-proj", "a.b_c-d", "x1", &"a".repeat(63)] {
        assert!(valid_project_name(ok), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "A",
        "a--b",
        "a__b",
        "a/b",
        "a:b",
        "a b",
        &"a".repeat(64),
    ] {
        assert!(!valid_project_name(bad), "{bad}");
    }
}

#[test]
fn object_names() {
    for ok in ["a", "builder", "alice@example.com", "a.b-c_d", "x-1"] {
        assert!(valid_object_name(ok), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "Alice",
        "a:b",
        "system:x",
        "a b",
        &"a".repeat(254),
    ] {
        assert!(!valid_object_name(bad), "{bad}");
    }
    assert!(matches!(
        require_object_name("group", Some("system:authenticated")),
        Err(AdminError::Invalid(m)) if m.contains("built in")
    ));
    assert!(matches!(
        require_object_name("user", None),
        Err(AdminError::Invalid(_))
    ));
}

#[test]
fn durations_and_timestamps() {
    assert_eq!(
        parse_expires_in("24h").unwrap(),
        Duration::from_secs(86_400)
    );
    assert_eq!(parse_expires_in("90m").unwrap(), Duration::from_secs(5_400));
    assert_eq!(
        parse_expires_in("30d").unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        parse_expires_in(" 1h 30m ").unwrap(),
        Duration::from_secs(5_400)
    );
    assert_eq!(
        parse_expires_in("2 w").unwrap(),
        Duration::from_secs(1_209_600)
    );
    for bad in ["", "0s", "soon", "-1h", "500ms", "1000000d"] {
        assert!(
            matches!(parse_expires_in(bad), Err(AdminError::Invalid(_))),
            "{bad}"
        );
    }
    // Only the form the OpenAPI document gives, though humantime would
    // take these.
    for undocumented in ["1.5h", "1 2h", "24h\t", "\n24h", "2µs", "1234567890123s"] {
        assert!(
            matches!(parse_expires_in(undocumented), Err(AdminError::Invalid(_))),
            "{undocumented:?}"
        );
    }
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_795_341_600_999), "2026-11-22T10:00:00Z");
}

fn subject(kind: &str, name: &str, namespace: Option<&str>) -> SubjectRef {
    SubjectRef {
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.map(str::to_owned),
    }
}

/// A user as a binding names it.
fn user_ref(name: &str) -> SubjectRef {
    subject("User", name, None)
}

#[test]
fn subjects_are_validated() {
    let sa = |ns: &str, n: &str| BindingSubject {
        kind: SubjectKind::ServiceAccount,
        name: n.into(),
        namespace: ns.into(),
    };
    assert_eq!(
        parse_subject(&user_ref("alice"), Some("p")).unwrap(),
        crate::auth::policy::user_subject("alice")
    );
    // A user named like a service account is that service account.
    assert_eq!(
        parse_subject(&user_ref("system:serviceaccount:ns:builder"), None).unwrap(),
        sa("ns", "builder")
    );
    // Service accounts default to the binding's namespace.
    assert_eq!(
        parse_subject(&subject("ServiceAccount", "builder", None), Some("p")).unwrap(),
        sa("p", "builder")
    );
    assert_eq!(
        parse_subject(&subject("ServiceAccount", "b", Some("q")), Some("p")).unwrap(),
        sa("q", "b")
    );
    assert!(parse_subject(&subject("ServiceAccount", "b", None), None).is_err());
    for group in [
        "system:authenticated",
        "system:unauthenticated",
        "system:serviceaccounts",
        "system:serviceaccounts:myapp",
        "devs",
    ] {
        assert_eq!(
            parse_subject(&subject("Group", group, None), None).unwrap(),
            crate::auth::policy::group_subject(group)
        );
    }
    for bad in [
        subject("Group", "system:masters", None),
        subject("Group", "Devs", None),
        user_ref("system:anonymous"),
        user_ref(""),
        subject("Robot", "x", None),
        user_ref("system:serviceaccount:ns"),
    ] {
        assert!(
            matches!(parse_subject(&bad, Some("p")), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
    }
}

struct Fixture {
    access: AccessControl,
    _dir: tempfile::TempDir,
}

async fn fixture(auto_create: AutoCreateNamespaces) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlMetadataStore::connect(&DatabaseConfig::Sqlite {
        path: dir.path().join("berth.db"),
    })
    .await
    .unwrap();
    let access = AccessControl::new(
        Arc::new(store),
        AccessOptions {
            service: "berth".into(),
            token_lifetime: Duration::from_secs(300),
            key_rotation: Duration::from_secs(3600),
            super_users: vec!["admin".into()],
            auto_create_namespaces: auto_create,
            lockout: LockoutPolicy {
                per_user: 100,
                per_address: 100,
                window: Duration::from_secs(60),
                duration: Duration::from_secs(60),
                slowdown: Duration::from_secs(1),
            },
            trusted_proxies: Default::default(),
        },
    );
    Fixture { access, _dir: dir }
}

fn user(name: &str) -> Caller {
    Caller {
        principal: Principal::User(name.into()),
        token_uid: None,
        grants: None,
        stamp: None,
    }
}

fn sa_caller(ns: &str, name: &str) -> Caller {
    Caller {
        principal: Principal::ServiceAccount {
            namespace: ns.into(),
            name: name.into(),
        },
        token_uid: None,
        grants: None,
        stamp: None,
    }
}

async fn add_user(f: &Fixture, name: &str) {
    let admin = user("admin");
    Admin::new(&f.access, &admin)
        .create_user(&NewUser {
            name: Some(name.into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn namespaces_are_hidden_without_a_role_and_forbidden_without_the_verb() {
    let f = fixture(AutoCreateNamespaces::Superusers).await;
    let admin = user("admin");
    let alice = user("alice");
    add_user(&f, "alice").await;
    let as_admin = Admin::new(&f.access, &admin);
    let as_alice = Admin::new(&f.access, &alice);
    as_admin.create_project(Some("p")).await.unwrap();

    // No role: as if it did not exist.
    assert!(matches!(
        as_alice.project("p").await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(
        as_alice.service_accounts("p").await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(
        as_alice.delete_project("p").await,
        Err(AdminError::NotFound(_))
    ));
    assert!(as_alice.projects().await.unwrap().is_empty());
    // Not allowed to create projects (superusers only).
    assert!(matches!(
        as_alice.create_project(Some("q")).await,
        Err(AdminError::Forbidden(_))
    ));

    // A puller sees the project but not its service accounts.
    let alice_subject = [user_ref("alice")];
    as_admin
        .add_subjects(Some("p"), "system:image-puller", &alice_subject)
        .await
        .unwrap();
    assert_eq!(as_alice.project("p").await.unwrap().name, "p");
    assert_eq!(as_alice.projects().await.unwrap().len(), 1);
    assert!(matches!(
        as_alice.service_accounts("p").await,
        Err(AdminError::Forbidden(_))
    ));
    assert!(matches!(
        as_alice.delete_project("p").await,
        Err(AdminError::Forbidden(_))
    ));

    // A viewer reads, but does not write.
    as_admin
        .add_subjects(Some("p"), "registry-viewer", &alice_subject)
        .await
        .unwrap();
    assert!(as_alice.service_accounts("p").await.unwrap().is_empty());
    assert_eq!(as_alice.role_bindings(Some("p")).await.unwrap().len(), 3);
    assert!(matches!(
        as_alice.create_service_account("p", Some("builder")).await,
        Err(AdminError::Forbidden(_))
    ));
    assert!(matches!(
        as_alice
            .add_subjects(Some("p"), "registry-admin", &alice_subject)
            .await,
        Err(AdminError::Forbidden(_))
    ));
    // Cluster bindings are for cluster admins.
    assert!(matches!(
        as_alice.role_bindings(None).await,
        Err(AdminError::Forbidden(_))
    ));

    // registry-admin manages the project, and may delete it.
    as_admin
        .add_subjects(Some("p"), "registry-admin", &alice_subject)
        .await
        .unwrap();
    let sa = as_alice
        .create_service_account("p", Some("builder"))
        .await
        .unwrap();
    assert_eq!(sa.name, "builder");
    assert!(matches!(
        as_alice.create_service_account("p", Some("builder")).await,
        Err(AdminError::AlreadyExists(_))
    ));
    assert!(matches!(
        as_alice.create_service_account("p", Some("Bad")).await,
        Err(AdminError::Invalid(_))
    ));
    as_alice.delete_project("p").await.unwrap();
    assert!(matches!(
        as_admin.project("p").await,
        Err(AdminError::NotFound(_))
    ));
    // Its bindings went with it.
    assert!(
        f.access
            .store()
            .bindings()
            .await
            .unwrap()
            .iter()
            .all(|b| b.namespace.as_deref() != Some("p"))
    );
}

#[tokio::test]
async fn project_creators_become_admins_when_anyone_may_create() {
    let f = fixture(AutoCreateNamespaces::Authenticated).await;
    let bob = user("bob");
    add_user(&f, "bob").await;
    let as_bob = Admin::new(&f.access, &bob);
    let project = as_bob.create_project(Some("bobs")).await.unwrap();
    assert_eq!(project.created_by.as_deref(), Some("bob"));
    assert!(matches!(
        as_bob.create_project(Some("bobs")).await,
        Err(AdminError::AlreadyExists(_))
    ));
    assert!(matches!(
        as_bob.create_project(Some("Bad_")).await,
        Err(AdminError::Invalid(_))
    ));
    let binding = as_bob
        .role_binding(Some("bobs"), "registry-admin")
        .await
        .unwrap();
    assert_eq!(
        binding.subjects,
        vec![crate::auth::policy::user_subject("bob")]
    );
    // Anonymous callers are refused before anything else.
    let anonymous = Caller::anonymous();
    assert!(matches!(
        Admin::new(&f.access, &anonymous).projects().await,
        Err(AdminError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn bindings_add_remove_delete_and_who_can() {
    let f = fixture(AutoCreateNamespaces::Superusers).await;
    let admin = user("admin");
    let as_admin = Admin::new(&f.access, &admin);
    as_admin.create_project(Some("shared")).await.unwrap();
    assert!(matches!(
        as_admin
            .add_subjects(Some("shared"), "system:image-nothing", &[user_ref("x")])
            .await,
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        as_admin
            .add_subjects(Some("shared"), "system:image-puller", &[])
            .await,
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        as_admin
            .role_binding(Some("shared"), "system:image-pusher")
            .await,
        Err(AdminError::NotFound(_))
    ));
    let binding = as_admin
        .add_subjects(
            Some("shared"),
            "system:image-puller",
            &[
                subject("Group", "system:serviceaccounts:myapp", None),
                user_ref("system:serviceaccount:ci:builder"),
                user_ref("carol"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(binding.subjects.len(), 3);
    // The shared-project flow: any service account of myapp may pull.
    let myapp = sa_caller("myapp", "default");
    assert!(
        f.access
            .verbs(&myapp, "shared")
            .await
            .unwrap()
            .contains(Verb::Pull)
    );

    let who = as_admin.who_can("shared", Some("pull")).await.unwrap();
    assert_eq!(
        who.users,
        vec!["admin", "carol", "system:serviceaccount:ci:builder"]
    );
    assert_eq!(who.groups, vec!["system:serviceaccounts:myapp"]);
    let who = as_admin.who_can("shared", Some("push")).await.unwrap();
    assert!(!who.users.contains(&"carol".to_owned()));
    assert!(who.users.contains(&"admin".to_owned()));
    assert!(matches!(
        as_admin.who_can("shared", Some("fly")).await,
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        as_admin.who_can("shared", None).await,
        Err(AdminError::BadRequest(_))
    ));

    let left = as_admin
        .remove_subjects(
            Some("shared"),
            "system:image-puller",
            &[user_ref("carol"), user_ref("nobody")],
        )
        .await
        .unwrap();
    assert_eq!(left.subjects.len(), 2);
    as_admin
        .delete_role_binding(Some("shared"), "system:image-puller")
        .await
        .unwrap();
    assert!(matches!(
        as_admin
            .delete_role_binding(Some("shared"), "system:image-puller")
            .await,
        Err(AdminError::NotFound(_))
    ));
    assert!(
        !f.access
            .verbs(&myapp, "shared")
            .await
            .unwrap()
            .contains(Verb::Pull)
    );

    // Cluster-wide: cluster-admin makes a cluster admin.
    let dave = user("dave");
    assert!(matches!(
        Admin::new(&f.access, &dave).users().await,
        Err(AdminError::Forbidden(_))
    ));
    let b = as_admin
        .add_subjects(None, "cluster-admin", &[user_ref("dave")])
        .await
        .unwrap();
    assert_eq!(b.namespace, None);
    assert!(Admin::new(&f.access, &dave).users().await.is_ok());
    assert_eq!(as_admin.role_bindings(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_for_users_and_service_accounts() {
    let f = fixture(AutoCreateNamespaces::Superusers).await;
    let admin = user("admin");
    let as_admin = Admin::new(&f.access, &admin);
    add_user(&f, "alice").await;
    let alice = user("alice");
    let as_alice = Admin::new(&f.access, &alice);

    let created = as_alice.create_own_token(None, Some("24h")).await.unwrap();
    assert!(created.token.name.starts_with("alice-token-"));
    assert!(created.secret.starts_with("berth_"));
    let lifetime = created.token.expires_at.unwrap() - created.token.created_at;
    assert_eq!(lifetime, 86_400_000);
    assert!(matches!(
        as_alice
            .create_own_token(Some(&created.token.name), None)
            .await,
        Err(AdminError::AlreadyExists(_))
    ));
    assert!(matches!(
        as_alice.create_own_token(None, Some("forever")).await,
        Err(AdminError::Invalid(_))
    ));
    let named = as_alice
        .create_own_token(Some("laptop"), None)
        .await
        .unwrap();
    assert_eq!(named.token.expires_at, None);
    assert_eq!(as_alice.own_tokens().await.unwrap().len(), 2);

    // Admins see every user token; others only theirs.
    as_admin.create_own_token(Some("ci"), None).await.unwrap();
    assert_eq!(as_admin.own_tokens().await.unwrap().len(), 3);
    assert_eq!(as_alice.own_tokens().await.unwrap().len(), 2);
    assert!(matches!(
        as_alice.delete_own_token("ci", None).await,
        Err(AdminError::NotFound(_))
    ));
    as_alice.delete_own_token("laptop", None).await.unwrap();
    as_admin
        .delete_own_token(&created.token.name, None)
        .await
        .unwrap();
    assert!(as_alice.own_tokens().await.unwrap().is_empty());

    // Service-account tokens.
    as_admin.create_project(Some("p")).await.unwrap();
    assert!(matches!(
        as_admin
            .create_service_account_token("p", "ghost", None, None)
            .await,
        Err(AdminError::NotFound(_))
    ));
    as_admin
        .create_service_account("p", Some("builder"))
        .await
        .unwrap();
    let sa_token = as_admin
        .create_service_account_token("p", "builder", None, None)
        .await
        .unwrap();
    assert!(sa_token.token.name.starts_with("builder-token-"));
    assert_eq!(sa_token.token.namespace(), Some("p"));
    assert_eq!(as_admin.namespace_tokens("p").await.unwrap().len(), 1);
    // The account sees its own tokens, but makes none.
    let builder = sa_caller("p", "builder");
    let as_builder = Admin::new(&f.access, &builder);
    assert_eq!(as_builder.own_tokens().await.unwrap().len(), 1);
    assert!(matches!(
        as_builder.create_own_token(None, None).await,
        Err(AdminError::Forbidden(_))
    ));
    let me = as_builder.me().await.unwrap();
    assert_eq!(me.name, "system:serviceaccount:p:builder");
    assert!(me.groups.contains(&"system:serviceaccounts:p".to_owned()));
    // Deleting the account revokes its tokens.
    as_admin
        .delete_service_account("p", "builder")
        .await
        .unwrap();
    assert!(as_admin.namespace_tokens("p").await.unwrap().is_empty());
    assert!(matches!(
        as_admin
            .delete_namespace_token("p", &sa_token.token.name)
            .await,
        Err(AdminError::NotFound(_))
    ));
}

#[tokio::test]
async fn users_groups_and_passwords() {
    let f = fixture(AutoCreateNamespaces::Superusers).await;
    let admin = user("admin");
    let as_admin = Admin::new(&f.access, &admin);
    let alice_info = as_admin
        .create_user(&NewUser {
            name: Some("alice".into()),
            password: Some("s3cret".into()),
            email: Some("alice@example.com".into()),
            super_user: false,
        })
        .await
        .unwrap();
    assert_eq!(alice_info.groups, vec!["system:authenticated"]);
    assert!(!alice_info.super_user);
    assert!(matches!(
        as_admin
            .create_user(&NewUser {
                name: Some("alice".into()),
                ..Default::default()
            })
            .await,
        Err(AdminError::AlreadyExists(_))
    ));
    for bad in [
        NewUser {
            name: Some("system:admin".into()),
            ..Default::default()
        },
        NewUser {
            name: Some("x".into()),
            password: Some(String::new()),
            ..Default::default()
        },
        NewUser {
            name: Some("x".into()),
            email: Some("not an address".into()),
            ..Default::default()
        },
    ] {
        assert!(matches!(
            as_admin.create_user(&bad).await,
            Err(AdminError::Invalid(_))
        ));
    }

    let group = as_admin
        .create_group(
            Some("devs"),
            &["alice".into(), "alice".into(), "bob".into()],
        )
        .await
        .unwrap();
    assert_eq!(group.users, vec!["alice", "bob"]);
    assert!(matches!(
        as_admin.create_group(Some("devs"), &[]).await,
        Err(AdminError::AlreadyExists(_))
    ));
    assert!(matches!(
        as_admin
            .create_group(Some("system:authenticated"), &[])
            .await,
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        as_admin.replace_group("nope", &[]).await,
        Err(AdminError::NotFound(_))
    ));
    let alice = user("alice");
    let as_alice = Admin::new(&f.access, &alice);
    assert_eq!(
        as_alice.me().await.unwrap().groups,
        vec!["devs", "system:authenticated"]
    );
    assert_eq!(
        as_admin
            .replace_group("devs", &["bob".into()])
            .await
            .unwrap()
            .users,
        vec!["bob"]
    );
    assert_eq!(
        as_alice.me().await.unwrap().groups,
        vec!["system:authenticated"]
    );
    assert!(matches!(
        as_alice.groups().await,
        Err(AdminError::Forbidden(_))
    ));
    as_admin.delete_group("devs").await.unwrap();
    assert!(matches!(
        as_admin.delete_group("devs").await,
        Err(AdminError::NotFound(_))
    ));

    // Passwords: oneself or a cluster admin.
    assert!(matches!(
        as_alice.set_password("admin", Some("x")).await,
        Err(AdminError::Forbidden(_))
    ));
    as_alice.set_password("~", Some("new")).await.unwrap();
    assert!(matches!(
        as_admin.set_password("ghost", Some("x")).await,
        Err(AdminError::NotFound(_))
    ));
    let stored = f.access.store().user("alice").await.unwrap().unwrap();
    assert!(password::verify(
        "new",
        stored.password_hash.as_deref().unwrap()
    ));

    // Users see themselves, not others.
    assert_eq!(as_alice.user("alice").await.unwrap().name, "alice");
    assert_eq!(as_alice.user("~").await.unwrap().name, "alice");
    assert!(matches!(
        as_alice.user("admin").await,
        Err(AdminError::Forbidden(_))
    ));
    assert!(matches!(
        as_admin.user("ghost").await,
        Err(AdminError::NotFound(_))
    ));
    as_admin.delete_user("alice").await.unwrap();
    assert!(matches!(
        as_admin.delete_user("alice").await,
        Err(AdminError::NotFound(_))
    ));
}

#[tokio::test]
async fn initialize_makes_exactly_one_first_user() {
    let f = fixture(AutoCreateNamespaces::Superusers).await;
    // Closed unless the configuration opens it.
    assert!(matches!(
        initialize(&f.access, false, Some("root"), Some("pw"), None, false).await,
        Err(AdminError::BadRequest(_))
    ));
    assert!(matches!(
        initialize(&f.access, true, Some("Root"), Some("pw"), None, false).await,
        Err(AdminError::Invalid(_))
    ));
    // Concurrent attempts: one wins.
    let names = ["root", "boss", "chief", "head"];
    let attempts = names
        .iter()
        .map(|n| initialize(&f.access, true, Some(n), Some("pw"), None, true));
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(winners[0].user.super_user);
    assert!(winners[0].token.is_some());
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, AdminError::BadRequest(m) if m == "the registry is already initialized")
            );
        }
    }
    assert_eq!(f.access.store().count_users().await.unwrap(), 1);
    assert!(matches!(
        initialize(&f.access, true, Some("late"), Some("pw"), None, false).await,
        Err(AdminError::BadRequest(_))
    ));
}
