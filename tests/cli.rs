//! The admin verbs end to end: the real `berth` binary serves on a free
//! loopback port, and the same binary, as the CLI, logs in, creates
//! projects, service accounts, tokens, users and groups, binds roles, asks
//! who-can, and logs out, each user with a private home, CLI configuration
//! and containers auth file. Effects are checked from outside the CLI: the
//! tokens it prints are tried on `/v2/` with reqwest, and the auth file that
//! login writes is used by skopeo.
//!
//! skopeo missing fails the test when `BERTH_REQUIRE_CLIENTS=1` (as in CI)
//! and otherwise skips that step loudly.
//!
//! Run alone: `cargo test --test cli -- --nocapture`.

mod common;
// `run_piped`, shared with the real-client tests.
#[path = "clients/lab.rs"]
mod lab;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use common::{BerthProcess, Manifest, OCI_MANIFEST, RegistryClient, kept_temp_dir, sha256};

#[test]
fn admin_verbs_end_to_end() {
    let lab = Lab::new();
    let started = Instant::now();
    let admin = lab.home("admin");
    let alice = lab.home("alice");
    let server = lab.url.clone();

    // Not logged in yet.
    admin
        .berth(&["whoami"])
        .fails("whoami before login")
        .stderr_has("whoami before login", "not logged in");

    // A wrong password: refused, nothing stored.
    admin
        .berth_stdin(
            &["login", &server, "-u", "admin", "--password-stdin"],
            "wrong\n",
        )
        .fails("login with a wrong password")
        .stderr_has("login with a wrong password", "Login failed");
    assert!(!admin.config_file().exists() || !admin.config_text().contains("token:"));

    // An auth.json entry for another registry must survive login and logout.
    std::fs::write(
        &admin.auth_file,
        r#"{"auths":{"quay.io":{"auth":"b3RoZXI6c2VjcmV0"}}}"#,
    )
    .unwrap();

    // Login: bare loopback host:port means http.
    let login = admin
        .berth_stdin(
            &["login", &lab.host, "-u", "admin", "--password-stdin"],
            &format!("{}\n", lab.admin_password),
        )
        .ok("login as admin");
    login.stdout_has("login as admin", "Login successful.");
    let config = admin.config_text();
    assert!(
        config.contains(&format!("currentServer: {server}")),
        "{config}"
    );
    assert!(
        !config.contains(&lab.admin_password),
        "the password was stored:\n{config}"
    );
    assert_private(&admin.config_file());
    let token = admin.berth(&["whoami", "-t"]).ok("whoami -t").line();
    assert!(token.starts_with("berth_"), "whoami -t printed {token:?}");
    assert!(config.contains(&token), "{config}");
    let auth = admin.auth_json();
    assert_eq!(
        auth["auths"][&lab.host]["auth"],
        STANDARD.encode(format!("admin:{token}")),
        "{auth}"
    );
    assert_eq!(
        auth["auths"]["quay.io"]["auth"], "b3RoZXI6c2VjcmV0",
        "{auth}"
    );
    assert!(!auth.to_string().contains(&lab.admin_password));
    assert_private(&admin.auth_file);
    assert_eq!(lab.v2_status(&format!("anything:{token}")), 200);
    assert_eq!(admin.berth(&["whoami"]).ok("whoami").line(), "admin");
    assert_eq!(
        admin
            .berth(&["whoami", "--show-server"])
            .ok("whoami --show-server")
            .line(),
        server
    );
    step("login, whoami", started);

    // Projects.
    admin
        .berth(&["project"])
        .fails("project without a current one")
        .stderr_has("project without a current one", "no project");
    admin
        .berth(&["new-project", "demo"])
        .ok("new-project")
        .stdout_has(
            "new-project",
            &format!("Now using project \"demo\" on server \"{server}\"."),
        );
    admin
        .berth(&["project"])
        .ok("project")
        .stdout_has("project", "Using project \"demo\"");
    admin
        .berth(&["new-project", "other"])
        .ok("new-project other");
    admin
        .berth(&["project", "demo"])
        .ok("project demo")
        .stdout_has("project demo", "Now using project \"demo\"");
    admin
        .berth(&["project", "nosuch"])
        .fails("project nosuch")
        .stderr_has("project nosuch", "does not exist");
    let projects = admin.berth(&["get", "projects"]).ok("get projects");
    projects.table_row("get projects", &["NAME", "STATUS", "AGE"]);
    projects.table_row("get projects", &["demo", "Active"]);
    let listed = admin
        .berth(&["get", "projects", "-o", "json"])
        .ok("get projects -o json")
        .json("get projects -o json");
    assert_eq!(listed["kind"], "ProjectList");
    assert!(names(&listed).contains(&"demo".to_owned()), "{listed}");
    admin
        .berth(&["new-project", "demo"])
        .fails("new-project twice")
        .stderr_has("new-project twice", "Error from server (AlreadyExists)");
    step("projects", started);

    // Service accounts and their tokens; -n omitted is the current project.
    admin
        .berth(&["create", "sa", "builder"])
        .ok("create sa")
        .stdout_has("create sa", "serviceaccount/builder created");
    admin
        .berth(&["get", "sa", "-n", "demo"])
        .ok("get sa")
        .table_row("get sa", &["builder", "system:serviceaccount:demo:builder"]);
    admin
        .berth(&["get", "serviceaccounts", "-o", "yaml"])
        .ok("get sa -o yaml")
        .stdout_has("get sa -o yaml", "name: builder");
    let sa_token = admin
        .berth(&[
            "create",
            "token",
            "sa/builder",
            "-n",
            "demo",
            "--duration",
            "24h",
        ])
        .ok("create token sa/builder");
    assert_eq!(
        sa_token.stdout().lines().count(),
        1,
        "create token printed more than the token:\n{}",
        sa_token.describe()
    );
    let sa_token = sa_token.line();
    assert!(sa_token.starts_with("berth_"), "{sa_token:?}");
    assert_eq!(lab.v2_status(&format!("whoever:{sa_token}")), 200);
    assert_eq!(lab.v2_status("whoever:berth_not-a-token"), 401);

    let tokens = admin
        .berth(&["get", "tokens", "-n", "demo"])
        .ok("get tokens -n demo");
    assert!(!tokens.stdout().contains(&sa_token), "a secret was listed");
    tokens.table_row("get tokens -n demo", &["NAME", "SUBJECT", "EXPIRES", "AGE"]);
    tokens.stdout_has(
        "get tokens -n demo",
        "   system:serviceaccount:demo:builder   in 23h",
    );
    let listed = admin
        .berth(&["get", "tokens", "-n", "demo", "-o", "json"])
        .ok("get tokens -o json");
    assert!(!listed.stdout().contains(&sa_token), "a secret was listed");
    let listed = listed.json("get tokens -o json");
    let sa_token_name = listed["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|t| t["spec"]["subject"] == "system:serviceaccount:demo:builder")
        })
        .and_then(|t| t["metadata"]["name"].as_str())
        .unwrap_or_else(|| panic!("no builder token listed: {listed}"))
        .to_owned();
    admin
        .berth(&["delete", "token", &sa_token_name, "-n", "demo"])
        .ok("delete token -n demo")
        .stdout_has(
            "delete token",
            &format!("token \"{sa_token_name}\" deleted"),
        );
    assert_eq!(
        lab.v2_status(&format!("whoever:{sa_token}")),
        401,
        "a revoked token still works"
    );
    step("service accounts, tokens", started);

    // Users and groups.
    admin
        .berth_stdin(
            &[
                "create",
                "user",
                "alice",
                "--password-stdin",
                "--email",
                "alice@example.com",
            ],
            "alice-pw-1234\n",
        )
        .ok("create user")
        .stdout_has("create user", "user/alice created");
    admin
        .berth(&["create", "group", "devs", "--users", "alice,bob"])
        .ok("create group")
        .stdout_has("create group", "group/devs created");
    admin
        .berth(&["get", "users"])
        .ok("get users")
        .table_row("get users", &["alice", "false"]);
    admin
        .berth(&["get", "groups"])
        .ok("get groups")
        .table_row("get groups", &["devs", "alice,", "bob"]);
    let got = admin
        .berth(&["get", "user", "alice", "-o", "json"])
        .ok("get user alice -o json")
        .json("get user alice");
    assert_eq!(got["metadata"]["name"], "alice");
    step("users, groups", started);

    // Role bindings.
    admin
        .berth(&[
            "policy",
            "add-role-to-user",
            "system:image-puller",
            "alice",
            "system:serviceaccount:demo:builder",
            "-n",
            "demo",
        ])
        .ok("add-role-to-user")
        .stdout_has(
            "add-role-to-user",
            "clusterrole/system:image-puller added: [\"alice\" \"system:serviceaccount:demo:builder\"]",
        );
    admin
        .berth(&[
            "policy",
            "add-role-to-group",
            "registry-viewer",
            "devs",
            "-n",
            "demo",
        ])
        .ok("add-role-to-group")
        .stdout_has(
            "add-role-to-group",
            "clusterrole/registry-viewer added: \"devs\"",
        );
    admin
        .berth(&[
            "policy",
            "add-role-to-user",
            "no-such-role",
            "alice",
            "-n",
            "demo",
        ])
        .fails("add an unknown role")
        .stderr_has("add an unknown role", "Error from server (Invalid)");
    let bindings = admin
        .berth(&["get", "rolebindings", "-n", "demo"])
        .ok("get rolebindings");
    bindings.table_row(
        "get rolebindings",
        &["NAME", "ROLE", "USERS", "GROUPS", "SERVICE", "ACCOUNTS"],
    );
    bindings.table_row(
        "get rolebindings",
        &[
            "system:image-puller",
            "system:image-puller",
            "alice",
            "demo/builder",
        ],
    );
    bindings.table_row(
        "get rolebindings",
        &["registry-viewer", "registry-viewer", "devs"],
    );
    let listed = admin
        .berth(&["get", "rolebindings", "-n", "demo", "-o", "json"])
        .ok("get rolebindings -o json")
        .json("get rolebindings -o json");
    assert_eq!(listed["kind"], "RoleBindingList");
    let puller = listed["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|b| b["metadata"]["name"] == "system:image-puller")
        })
        .unwrap_or_else(|| panic!("no puller binding: {listed}"));
    let subjects = puller["subjects"].as_array().unwrap();
    assert!(
        subjects.contains(&json!({"kind": "User", "name": "alice"})),
        "{puller}"
    );
    assert!(
        subjects
            .contains(&json!({"kind": "ServiceAccount", "name": "builder", "namespace": "demo"})),
        "{puller}"
    );

    let who = admin
        .berth(&["policy", "who-can", "pull", "demo/app"])
        .ok("who-can pull");
    who.stdout_has("who-can pull", "Namespace: demo");
    who.stdout_has("who-can pull", "Resource:  demo/app");
    let (users, groups) = who_can_lists(who.stdout());
    for expected in ["alice", "system:serviceaccount:demo:builder"] {
        assert!(
            users.contains(&expected.to_owned()),
            "{expected} missing:\n{}",
            who.stdout()
        );
    }
    assert!(
        groups.contains(&"devs".to_owned()),
        "devs missing:\n{}",
        who.stdout()
    );
    let who = admin
        .berth(&["policy", "who-can", "push", "demo/app", "-o", "json"])
        .ok("who-can push -o json")
        .json("who-can push");
    assert_eq!(who["verb"], "push");
    assert!(
        !who["users"].as_array().unwrap().contains(&json!("alice")),
        "{who}"
    );

    admin
        .berth(&[
            "policy",
            "remove-role-from-user",
            "system:image-puller",
            "alice",
            "-n",
            "demo",
        ])
        .ok("remove-role-from-user")
        .stdout_has(
            "remove-role-from-user",
            "clusterrole/system:image-puller removed: \"alice\"",
        );
    admin
        .berth(&[
            "policy",
            "remove-role-from-group",
            "registry-viewer",
            "devs",
            "-n",
            "demo",
        ])
        .ok("remove-role-from-group");
    let who = admin
        .berth(&["policy", "who-can", "pull", "demo/app"])
        .ok("who-can pull after removal");
    let (users, groups) = who_can_lists(who.stdout());
    assert!(!users.contains(&"alice".to_owned()), "{}", who.stdout());
    assert!(
        users.contains(&"system:serviceaccount:demo:builder".to_owned()),
        "{}",
        who.stdout()
    );
    assert!(!groups.contains(&"devs".to_owned()), "{}", who.stdout());
    step("policy, who-can", started);

    // A second user logs in with the password the admin gave.
    alice
        .berth_stdin(
            &["login", &server, "-u", "alice", "--password-stdin"],
            "alice-pw-1234\n",
        )
        .ok("login as alice")
        .stdout_has("login as alice", "Login successful.");
    assert_eq!(alice.berth(&["whoami"]).ok("whoami alice").line(), "alice");
    alice
        .berth(&["get", "users"])
        .fails("alice lists users")
        .stderr_has("alice lists users", "Error from server (Forbidden)");
    alice
        .berth(&["get", "rolebindings", "-n", "demo"])
        .fails("alice reads bindings of a project she has no role in")
        .stderr_has("alice reads bindings", "Error from server (NotFound)");

    // Cluster roles.
    admin
        .berth(&[
            "adm",
            "policy",
            "add-cluster-role-to-user",
            "cluster-admin",
            "alice",
        ])
        .ok("add-cluster-role-to-user")
        .stdout_has(
            "add-cluster-role-to-user",
            "clusterrole/cluster-admin added: \"alice\"",
        );
    alice
        .berth(&["get", "users"])
        .ok("alice lists users as cluster-admin")
        .table_row("alice lists users", &["admin", "true"]);
    admin
        .berth(&["get", "clusterrolebindings", "-o", "json"])
        .ok("get clusterrolebindings")
        .stdout_has("get clusterrolebindings", "alice");
    admin
        .berth(&[
            "adm",
            "policy",
            "remove-cluster-role-from-user",
            "cluster-admin",
            "alice",
        ])
        .ok("remove-cluster-role-from-user");
    alice
        .berth(&["get", "users"])
        .fails("alice lists users again")
        .stderr_has("alice lists users again", "Error from server (Forbidden)");
    admin
        .berth(&[
            "adm",
            "policy",
            "add-cluster-role-to-group",
            "registry-viewer",
            "devs",
        ])
        .ok("add-cluster-role-to-group");
    admin
        .berth(&[
            "adm",
            "policy",
            "remove-cluster-role-from-group",
            "registry-viewer",
            "devs",
        ])
        .ok("remove-cluster-role-from-group");
    step("second user, cluster roles", started);

    // Guessed at from this address, alice is refused here even with her
    // password, until an admin unlocks her.
    for _ in 0..10 {
        assert_eq!(lab.v2_status("alice:not-her-password"), 401);
    }
    assert_eq!(lab.v2_status("alice:alice-pw-1234"), 429);
    admin
        .berth(&["adm", "unlock", "alice"])
        .ok("adm unlock")
        .stdout_has("adm unlock", "user \"alice\" unlocked");
    assert_eq!(lab.v2_status("alice:alice-pw-1234"), 200);
    admin
        .berth(&["adm", "unlock", "nobody"])
        .fails("adm unlock of an unknown user")
        .stderr_has("adm unlock nobody", "Error from server (NotFound)");
    step("unlock", started);

    // Token names are each user's own: admin and alice both have a
    // `laptop`; --user says whose a cluster admin revokes.
    for args in [
        &["create", "token", "--name", "laptop"][..],
        &["create", "token", "user/alice", "--name", "laptop"],
    ] {
        admin.berth(args).ok("create a token named laptop");
    }
    admin
        .berth(&["delete", "token", "laptop", "--user", "alice"])
        .ok("delete alice's laptop token")
        .stdout_has("delete token --user", "token \"laptop\" deleted");
    let listed = admin
        .berth(&["get", "tokens", "-o", "json"])
        .ok("get tokens after --user")
        .json("get tokens");
    let laptops: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["metadata"]["name"] == "laptop")
        .filter_map(|t| t["spec"]["subject"].as_str())
        .collect();
    assert_eq!(laptops, vec!["admin"], "{listed}");
    admin
        .berth(&["delete", "token", "laptop"])
        .ok("delete own laptop token");

    // The auth file written by login works for skopeo.
    lab.push_image(&token, "demo/app", "v1");
    if let Some(skopeo) = skopeo() {
        let listed = admin
            .run(
                &skopeo,
                &[
                    "list-tags",
                    "--tls-verify=false",
                    &format!("docker://{}/demo/app", lab.host),
                ],
                None,
            )
            .ok("skopeo list-tags with the auth file from login")
            .json("skopeo list-tags");
        assert_eq!(listed["Tags"], json!(["v1"]), "{listed}");
        step("skopeo with the login's auth.json", started);
    }

    // A service account logs in with a token (it pulls from demo).
    let robot = lab.home("robot");
    let robot_token = admin
        .berth(&["create", "token", "sa/builder", "-n", "demo"])
        .ok("create token for the robot")
        .line();
    robot
        .berth(&["login", &server, "--token", &robot_token])
        .ok("login --token")
        .stdout_has(
            "login --token",
            "as \"system:serviceaccount:demo:builder\" using the token provided",
        );
    assert_eq!(
        robot.berth(&["whoami"]).ok("whoami as the robot").line(),
        "system:serviceaccount:demo:builder"
    );
    assert_eq!(
        robot.auth_json()["auths"][&lab.host]["auth"],
        STANDARD.encode(format!("builder:{robot_token}")),
        "the auth.json user must have no colon"
    );
    if let Some(skopeo) = skopeo() {
        robot
            .run(
                &skopeo,
                &[
                    "list-tags",
                    "--tls-verify=false",
                    &format!("docker://{}/demo/app", lab.host),
                ],
                None,
            )
            .ok("skopeo list-tags as the service account");
    }
    robot
        .berth(&["logout"])
        .ok("logout after login --token")
        .stderr_has("logout after login --token", "not revoked");
    step("service account login --token", started);

    // Own tokens.
    let own = admin.berth(&["create", "token"]).ok("create token (own)");
    assert_eq!(own.stdout().lines().count(), 1, "{}", own.describe());
    let own = own.line();
    assert_eq!(lab.v2_status(&format!("admin:{own}")), 200);
    let listed = admin
        .berth(&["get", "tokens", "-o", "json"])
        .ok("get tokens (own)");
    assert!(!listed.stdout().contains(&own), "a secret was listed");
    let listed = listed.json("get tokens (own)");
    assert!(
        listed["items"].as_array().is_some_and(|i| i.len() >= 2),
        "{listed}"
    );
    let login_token_name = token_name_in(&admin.config_text());
    let own_name = names(&listed)
        .into_iter()
        .find(|n| *n != login_token_name && n.starts_with("admin-"))
        .unwrap_or_else(|| panic!("the new token is not listed: {listed}"));
    admin
        .berth(&["delete", "token", &own_name])
        .ok("delete own token");
    assert_eq!(lab.v2_status(&format!("admin:{own}")), 401);
    step("own tokens", started);

    // Deletions.
    admin
        .berth(&["delete", "sa", "builder", "-n", "demo"])
        .ok("delete sa")
        .stdout_has("delete sa", "serviceaccount \"builder\" deleted");
    admin
        .berth(&["delete", "group", "devs"])
        .ok("delete group")
        .stdout_has("delete group", "group \"devs\" deleted");
    admin
        .berth(&["delete", "user", "alice"])
        .ok("delete user")
        .stdout_has("delete user", "user \"alice\" deleted");
    alice
        .berth(&["whoami"])
        .fails("whoami as a deleted user")
        .stderr_has(
            "whoami as a deleted user",
            "Error from server (Unauthorized)",
        );
    admin
        .berth(&["delete", "user", "nobody", "alice"])
        .fails("delete missing users")
        .stderr_has("delete missing users", "Error from server (NotFound)");
    admin
        .berth(&["delete", "project", "other"])
        .ok("delete project")
        .stdout_has("delete project", "project \"other\" deleted");
    let listed = admin
        .berth(&["get", "projects", "-o", "json"])
        .ok("get projects after delete")
        .json("get projects after delete");
    assert!(!names(&listed).contains(&"other".to_owned()), "{listed}");
    step("deletions", started);

    // Logout revokes the token and removes only its auth.json entry.
    admin
        .berth(&["logout"])
        .ok("logout")
        .stdout_has("logout", &format!("Logged \"admin\" out on \"{server}\""));
    assert_eq!(
        lab.v2_status(&format!("admin:{token}")),
        401,
        "logout did not revoke"
    );
    let auth = admin.auth_json();
    assert!(auth["auths"].get(&lab.host).is_none(), "{auth}");
    assert_eq!(
        auth["auths"]["quay.io"]["auth"], "b3RoZXI6c2VjcmV0",
        "{auth}"
    );
    assert!(!admin.config_text().contains(&token));
    admin
        .berth(&["whoami"])
        .fails("whoami after logout")
        .stderr_has("whoami after logout", "not logged in");
    if let Some(skopeo) = skopeo() {
        admin
            .run(
                &skopeo,
                &[
                    "list-tags",
                    "--tls-verify=false",
                    &format!("docker://{}/demo/app", lab.host),
                ],
                None,
            )
            .fails("skopeo list-tags after logout");
    }
    step("logout", started);
}

/// TLS options: a server with its own CA is refused until the CLI is
/// given that CA (`--certificate-authority`, kept for later commands) or
/// told to skip verification.
#[test]
fn login_over_tls() {
    let lab = Lab::with_tls();
    let ca = lab.tmp.path().join("berth-data/tls/ca.crt");
    assert!(ca.is_file(), "no CA at {}", ca.display());
    let password = format!("{}\n", lab.admin_password);
    let login = ["login", lab.url.as_str(), "-u", "admin", "--password-stdin"];

    let strict = lab.home("strict");
    strict
        .berth_stdin(&login, &password)
        .fails("login over TLS without the CA")
        .stderr_has("login over TLS without the CA", "unable to connect")
        .stderr_has("login over TLS without the CA", "--certificate-authority");
    assert!(!strict.config_text().contains("token:"));

    let ca_arg = ca.to_str().unwrap();
    let with_ca: Vec<&str> = login
        .iter()
        .copied()
        .chain(["--certificate-authority", ca_arg])
        .collect();
    strict
        .berth_stdin(&with_ca, &password)
        .ok("login with --certificate-authority")
        .stdout_has("login with --certificate-authority", "Login successful.");
    assert!(
        strict.config_text().contains("certificateAuthority:"),
        "{}",
        strict.config_text()
    );
    assert_eq!(
        strict.berth(&["whoami"]).ok("whoami over TLS").line(),
        "admin"
    );
    let token = strict.berth(&["whoami", "-t"]).ok("whoami -t").line();
    assert_eq!(
        strict.auth_json()["auths"][&lab.host]["auth"],
        STANDARD.encode(format!("admin:{token}"))
    );

    let insecure = lab.home("insecure");
    let skip: Vec<&str> = login
        .iter()
        .copied()
        .chain(["--insecure-skip-tls-verify"])
        .collect();
    insecure
        .berth_stdin(&skip, &password)
        .ok("login with --insecure-skip-tls-verify");
    assert!(
        insecure
            .config_text()
            .contains("insecureSkipTlsVerify: true"),
        "{}",
        insecure.config_text()
    );
    assert_eq!(
        insecure.berth(&["whoami"]).ok("whoami, insecure").line(),
        "admin"
    );
    insecure.berth(&["logout"]).ok("logout over TLS");
    strict.berth(&["logout"]).ok("logout over TLS");
}

/// What `oc` and `podman` users expect besides: `berth version`,
/// `berth completion`, `-o wide` and `-o jsonpath=…`.
#[test]
fn version_completion_wide_and_jsonpath() {
    let lab = Lab::new();
    let admin = lab.home("admin");
    let version = env!("CARGO_PKG_VERSION");

    // Before login: the client's version only, no request.
    let out = admin.berth(&["version"]).ok("version before login");
    assert_eq!(out.stdout(), format!("Client Version: {version}\n"));

    admin
        .berth_stdin(
            &["login", &lab.host, "-u", "admin", "--password-stdin"],
            &format!("{}\n", lab.admin_password),
        )
        .ok("login");
    let out = admin.berth(&["version"]).ok("version");
    assert_eq!(
        out.stdout(),
        format!(
            "Client Version: {version}\nServer Version: {version}\nServer: {}\n",
            lab.url
        )
    );
    let json = admin
        .berth(&["version", "-o", "json"])
        .ok("version -o json")
        .json("version -o json");
    assert_eq!(json["clientVersion"], version, "{json}");
    assert_eq!(json["serverVersion"], version, "{json}");
    assert_eq!(json["server"], lab.url.as_str(), "{json}");
    assert_eq!(
        admin
            .berth(&["version", "--client"])
            .ok("version --client")
            .stdout(),
        format!("Client Version: {version}\n")
    );
    // The endpoint answers authenticated callers only.
    assert_eq!(lab.api_status("/api/v1/version", None), 401);
    let token = admin.berth(&["whoami", "-t"]).ok("whoami -t").line();
    assert_eq!(
        lab.api_status("/api/v1/version", Some(&format!("admin:{token}"))),
        200
    );
    // A server that does not answer: the client's version, then the error.
    let stranded = lab.home("stranded");
    std::fs::create_dir_all(stranded.config_file().parent().unwrap()).unwrap();
    std::fs::write(
        stranded.config_file(),
        "currentServer: http://127.0.0.1:9\nservers:\n  \"http://127.0.0.1:9\":\n    user: admin\n    token: berth_gone\n",
    )
    .unwrap();
    stranded
        .berth(&["version"])
        .fails("version, server down")
        .stdout_has(
            "version, server down",
            &format!("Client Version: {version}"),
        )
        .stderr_has("version, server down", "unable to connect");

    // Completion scripts; bash's really completes.
    let script = admin
        .berth(&["completion", "bash"])
        .ok("completion bash")
        .stdout()
        .to_owned();
    let script_file = lab.tmp.path().join("berth.bash");
    std::fs::write(&script_file, &script).unwrap();
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(berth ge); COMP_CWORD=1; _berth berth ge berth; \
             echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(berth get --out); COMP_CWORD=2; \
             _berth berth --out get; echo \"${{COMPREPLY[@]}}\"",
            script_file.display()
        ))
        .output()
        .expect("running bash");
    assert_eq!(
        String::from_utf8_lossy(&completed.stdout),
        "get\n--output\n",
        "bash completion: {}",
        String::from_utf8_lossy(&completed.stderr)
    );
    admin
        .berth(&["completion", "zsh"])
        .ok("completion zsh")
        .stdout_has("completion zsh", "#compdef berth");
    admin
        .berth(&["completion", "fish"])
        .ok("completion fish")
        .stdout_has("completion fish", "complete -c berth");
    admin
        .berth(&["completion", "tcsh"])
        .fails("completion tcsh")
        .stderr_has("completion tcsh", "invalid value 'tcsh'");

    // -o wide: more columns.
    admin.berth(&["new-project", "demo"]).ok("new-project demo");
    admin
        .berth(&["new-project", "other"])
        .ok("new-project other");
    admin
        .berth(&["create", "user", "alice", "--email", "alice@example.com"])
        .ok("create user alice");
    let wide = admin
        .berth(&["get", "users", "-o", "wide"])
        .ok("get users -o wide");
    wide.table_row(
        "get users -o wide",
        &["NAME", "SUPER", "USER", "GROUPS", "AGE", "EMAIL", "CREATED"],
    );
    let alice_row = wide
        .stdout()
        .lines()
        .find(|l| l.starts_with("alice "))
        .unwrap_or_else(|| panic!("no row for alice\n{}", wide.describe()))
        .to_owned();
    assert!(alice_row.contains("alice@example.com"), "{alice_row}");
    let narrow = admin.berth(&["get", "users"]).ok("get users");
    assert!(!narrow.stdout().contains("EMAIL"), "{}", narrow.describe());
    admin
        .berth(&["get", "projects", "-o", "wide"])
        .ok("get projects -o wide")
        .table_row(
            "get projects -o wide",
            &["NAME", "STATUS", "AGE", "REQUESTER", "CREATED"],
        )
        .table_row("get projects -o wide", &["demo", "Active"]);
    admin
        .berth(&["get", "project/demo", "-o", "wide"])
        .ok("get project/demo -o wide")
        .stdout_has("get project/demo -o wide", "   admin   ");

    // -o jsonpath=…, kubectl's templates.
    let names = admin
        .berth(&[
            "get",
            "projects",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .ok("jsonpath names");
    let mut listed: Vec<&str> = names.stdout().split(' ').collect();
    listed.sort();
    assert_eq!(listed, ["demo", "other"], "{}", names.describe());
    assert_eq!(
        admin
            .berth(&["get", "user/alice", "-o", "jsonpath={.email} {.superUser}"])
            .ok("jsonpath one object")
            .stdout(),
        "alice@example.com false"
    );
    let lines = admin
        .berth(&[
            "get",
            "users",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.superUser}{"\n"}{end}"#,
        ])
        .ok("jsonpath range");
    assert_eq!(lines.stdout(), "admin\ttrue\nalice\tfalse\n");
    admin
        .berth(&["get", "users", "-o", "jsonpath={.items"])
        .fails("a bad template")
        .stderr_has("a bad template", "not closed");
    admin
        .berth(&["get", "users", "-o", "table"])
        .fails("an unknown format")
        .stderr_has("an unknown format", "jsonpath=TEMPLATE");
}

/// `berth adm jobs`: the jobs that run once across replicas, as a table,
/// `-o wide`, JSON and YAML; `adm jobs run NAME`; cluster admins only.
#[test]
fn adm_jobs_lists_and_runs_jobs() {
    let lab = Lab::new();
    let admin = lab.home("admin");
    admin
        .berth_stdin(
            &["login", &lab.host, "-u", "admin", "--password-stdin"],
            &format!("{}\n", lab.admin_password),
        )
        .ok("login");

    // Both jobs run once at start.
    let started = Instant::now();
    let listed = loop {
        let listed = admin
            .berth(&["adm", "jobs", "-o", "json"])
            .ok("adm jobs -o json")
            .json("adm jobs -o json");
        // Every job has run at start; the two with long intervals once.
        let ran = listed["items"].as_array().is_some_and(|items| {
            items.len() == 5
                && items.iter().all(|j| {
                    let runs = j["status"]["runs"].as_u64().unwrap_or(0);
                    // The two that look often may have run again.
                    let frequent = ["scheduled-imports", "image-pruner"]
                        .contains(&j["metadata"]["name"].as_str().unwrap_or(""));
                    runs == 1 || (frequent && runs >= 1)
                })
        });
        if ran {
            break listed;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{listed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(listed["kind"], "JobList");
    assert_eq!(
        names(&listed),
        [
            "garbage-collection",
            "image-pruner",
            "scheduled-imports",
            "signing-key-rotation",
            "stale-uploads"
        ]
    );

    let table = admin.berth(&["adm", "jobs"]).ok("adm jobs");
    table.table_row(
        "adm jobs",
        &[
            "NAME", "LAST", "RUN", "OUTCOME", "NEXT", "RUN", "HOLDER", "ERROR",
        ],
    );
    let row = table
        .stdout()
        .lines()
        .find(|l| l.starts_with("stale-uploads "))
        .unwrap_or_else(|| panic!("no row for stale-uploads\n{}", table.describe()))
        .to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    // stale-uploads, "0s ago" (or a few), Succeeded, "in 59m" (or 60m), <none>
    assert_eq!(cells.len(), 7, "{row}");
    assert_eq!(
        (cells[2], cells[3], cells[6]),
        ("ago", "Succeeded", "<none>"),
        "{row}"
    );
    assert!(cells[1].ends_with('s'), "{row}");
    assert_eq!(cells[4], "in", "{row}");
    assert!(["59m", "60m"].contains(&cells[5]), "{row}");

    let wide = admin
        .berth(&["adm", "jobs", "-o", "wide"])
        .ok("adm jobs -o wide");
    wide.table_row(
        "adm jobs -o wide",
        &[
            "NAME", "LAST", "RUN", "OUTCOME", "NEXT", "RUN", "HOLDER", "ERROR", "FAILURES", "RUNS",
            "LAST", "REPLICA", "LEASE", "EXPIRES", "STARTED", "FINISHED",
        ],
    );
    let replica = listed["items"][1]["status"]["lastReplica"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        wide.stdout()
            .lines()
            .any(|l| l.starts_with("stale-uploads ") && l.contains(&replica)),
        "{}",
        wide.describe()
    );
    admin
        .berth(&["adm", "jobs", "-o", "yaml"])
        .ok("adm jobs -o yaml")
        .stdout_has("adm jobs -o yaml", "kind: JobList");
    assert_eq!(
        admin
            .berth(&["adm", "jobs", "-o", "name"])
            .ok("adm jobs -o name")
            .stdout(),
        "job/garbage-collection\njob/image-pruner\njob/scheduled-imports\njob/signing-key-rotation\njob/stale-uploads\n"
    );

    // Run now: it runs again at once, whatever its schedule says.
    let due = admin
        .berth(&["adm", "jobs", "run", "stale-uploads"])
        .ok("adm jobs run");
    let said = due.line();
    assert!(
        said == "job/stale-uploads is due now"
            || said.starts_with("job/stale-uploads is running now"),
        "{}",
        due.describe()
    );
    let started = Instant::now();
    loop {
        let job = admin
            .berth(&["adm", "jobs", "-o", "json"])
            .ok("adm jobs after run")
            .json("adm jobs after run");
        let stale_uploads = job["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|j| j["metadata"]["name"] == "stale-uploads")
        });
        if stale_uploads.is_some_and(|j| j["status"]["runs"] == 2) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{job}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    admin
        .berth(&["adm", "jobs", "run", "no-such-job"])
        .fails("adm jobs run no-such-job")
        .stderr_has(
            "adm jobs run no-such-job",
            "Error from server (NotFound): jobs \"no-such-job\" not found",
        );

    // Not for others.
    admin
        .berth_stdin(
            &["create", "user", "carol", "--password-stdin"],
            "carol-pw-1234\n",
        )
        .ok("create user carol");
    let carol = lab.home("carol");
    carol
        .berth_stdin(
            &["login", &lab.host, "-u", "carol", "--password-stdin"],
            "carol-pw-1234\n",
        )
        .ok("login as carol");
    for args in [
        &["adm", "jobs"][..],
        &["adm", "jobs", "run", "stale-uploads"],
    ] {
        carol.berth(args).fails("adm jobs as carol").stderr_has(
            "adm jobs as carol",
            "Error from server (Forbidden): User \"carol\" cannot",
        );
    }
}

fn step(what: &str, started: Instant) {
    eprintln!("ok [{:>5.1}s] {what}", started.elapsed().as_secs_f64());
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `tokenName: …` of the CLI configuration.
fn token_name_in(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("tokenName:"))
        .map(|n| n.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no tokenName in\n{config}"))
}

/// Users and groups of `policy who-can`'s text output.
fn who_can_lists(text: &str) -> (Vec<String>, Vec<String>) {
    let mut lists = [Vec::new(), Vec::new()];
    let mut section = None;
    for line in text.lines() {
        let (now_in, rest) = if let Some(rest) = line.strip_prefix("Users:") {
            (Some(0), rest)
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            (Some(1), rest)
        } else if line.starts_with("        ") {
            (section, line)
        } else {
            (None, "")
        };
        section = now_in;
        let name = rest.trim();
        if let Some(i) = section
            && !name.is_empty()
            && name != "none"
        {
            lists[i].push(name.to_owned());
        }
    }
    let [users, groups] = lists;
    (users, groups)
}

fn assert_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }
}

fn skopeo() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("skopeo"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("BERTH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
            panic!("skopeo is required (BERTH_REQUIRE_CLIENTS=1) but not on PATH");
        }
        eprintln!("\n*** SKIPPED: skopeo is not on PATH; the auth.json it reads is untested ***\n");
    }
    found
}

// ---------------------------------------------------------------------------

/// A berth server, and the means to reach it from outside the CLI.
struct Lab {
    // Drop order: the server stops before the directory goes.
    berth: BerthProcess,
    /// `127.0.0.1:PORT`.
    host: String,
    /// `http://HOST`, or `https://HOST` with TLS.
    url: String,
    admin_password: String,
    /// Drives `berth` and the probes from outside the CLI.
    runtime: tokio::runtime::Runtime,
    tmp: tempfile::TempDir,
}

/// One person's private environment for the CLI.
struct Home {
    root: PathBuf,
    auth_file: PathBuf,
    env: Vec<(String, OsString)>,
}

impl Lab {
    fn new() -> Lab {
        Lab::start(false)
    }

    /// A server with `http.tls: auto`: berth's own CA, in
    /// `<data-dir>/tls/ca.crt`.
    fn with_tls() -> Lab {
        Lab::start(true)
    }

    fn start(tls: bool) -> Lab {
        let tmp = kept_temp_dir("berth-cli-", "BERTH_KEEP_CLI_DIR");
        let admin_password = format!("{}", uuid::Uuid::new_v4().simple());
        let mut serve = BerthProcess::serve(&tmp.path().join("berth-data"))
            .admin_password(&admin_password)
            .env("RUST_LOG", "info,berth=debug")
            .env("NO_COLOR", "1");
        if tls {
            // Probes from outside the CLI do not check the certificate; the
            // CLI's own checking is what the TLS test is about.
            serve = serve.env("BERTH_HTTP_TLS", "auto").tls();
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let berth = runtime.block_on(serve.start());
        Lab {
            host: berth.addr.to_string(),
            url: berth.url().to_owned(),
            berth,
            admin_password,
            runtime,
            tmp,
        }
    }

    fn home(&self, who: &str) -> Home {
        let root = self.tmp.path().join(format!("home-{who}"));
        std::fs::create_dir_all(&root).unwrap();
        let auth_file = root.join("auth.json");
        let env = vec![
            ("HOME".into(), root.clone().into()),
            ("XDG_CONFIG_HOME".into(), root.join(".config").into()),
            ("REGISTRY_AUTH_FILE".into(), auth_file.clone().into()),
        ];
        Home {
            root,
            auth_file,
            env,
        }
    }

    /// A client of berth with Basic `credentials` (`user:secret`).
    fn client_as(&self, credentials: &str) -> RegistryClient {
        let (user, secret) = credentials.split_once(':').unwrap();
        self.berth.with_credentials(user, secret)
    }

    /// Status of `GET path`, with Basic `credentials` (`user:secret`) or
    /// none.
    fn api_status(&self, path: &str, credentials: Option<&str>) -> u16 {
        let client = match credentials {
            Some(credentials) => self.client_as(credentials),
            None => self.berth.anonymous(),
        };
        self.runtime.block_on(client.get(path)).status().as_u16()
    }

    /// Status of `GET /v2/` with Basic `credentials` (`user:secret`).
    fn v2_status(&self, credentials: &str) -> u16 {
        self.runtime
            .block_on(self.client_as(credentials).get("/v2/"))
            .status()
            .as_u16()
    }

    /// Pushes a one-layer image with the distribution API.
    fn push_image(&self, token: &str, repository: &str, tag: &str) {
        let layer = format!("layer of {repository}:{tag} {}", uuid::Uuid::new_v4()).into_bytes();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
        }))
        .unwrap();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(&config),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha256(&layer),
                "size": layer.len(),
            }],
        });
        let client = self.berth.with_credentials("admin", token);
        self.runtime.block_on(async {
            // Each expects `202` starting the upload and `201` finishing it.
            for blob in [&layer, &config] {
                client.push_blob(repository, blob).await;
            }
            // Expects `201`.
            client
                .push_manifest(
                    repository,
                    tag,
                    &Manifest::from_json(OCI_MANIFEST, &manifest),
                )
                .await;
        });
    }
}

impl Home {
    fn config_file(&self) -> PathBuf {
        self.root.join(".config/berth/config.yaml")
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.config_file()).unwrap_or_default()
    }

    fn auth_json(&self) -> Value {
        let text = std::fs::read_to_string(&self.auth_file).expect("reading auth.json");
        serde_json::from_str(&text).expect("auth.json is JSON")
    }

    fn berth(&self, args: &[&str]) -> Ran {
        self.run(Path::new(env!("CARGO_BIN_EXE_berth")), args, None)
    }

    fn berth_stdin(&self, args: &[&str], stdin: &str) -> Ran {
        self.run(Path::new(env!("CARGO_BIN_EXE_berth")), args, Some(stdin))
    }

    fn run(&self, program: &Path, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("BERTH_") || key == "XDG_RUNTIME_DIR" || key == "XDG_CONFIG_HOME" {
                command.env_remove(&*key);
            }
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root);
        let output = lab::run_piped(command, stdin);
        Ran {
            command: format!("{} {}", program.display(), args.join(" ")),
            output,
        }
    }
}

struct Ran {
    command: String,
    output: Output,
}

impl Ran {
    fn stdout(&self) -> &str {
        std::str::from_utf8(&self.output.stdout).unwrap_or("<not UTF-8>")
    }

    fn stderr(&self) -> &str {
        std::str::from_utf8(&self.output.stderr).unwrap_or("<not UTF-8>")
    }

    fn describe(&self) -> String {
        format!(
            "$ {}\n(exit {})\n--- stdout\n{}--- stderr\n{}",
            self.command,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    fn ok(self, step: &str) -> Ran {
        assert!(
            self.output.status.success(),
            "{step}: failed\n{}",
            self.describe()
        );
        self
    }

    fn fails(self, step: &str) -> Ran {
        assert!(
            !self.output.status.success(),
            "{step}: succeeded\n{}",
            self.describe()
        );
        self
    }

    /// The only (last non-empty) line of stdout.
    fn line(&self) -> String {
        self.stdout()
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned()
    }

    fn stdout_has(&self, step: &str, needle: &str) -> &Ran {
        assert!(
            self.stdout().contains(needle),
            "{step}: stdout lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    fn stderr_has(&self, step: &str, needle: &str) -> &Ran {
        assert!(
            self.stderr().contains(needle),
            "{step}: stderr lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// Some line of stdout has `cells` as its first whitespace-separated
    /// words.
    fn table_row(&self, step: &str, cells: &[&str]) -> &Ran {
        let found = self.stdout().lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() >= cells.len() && words[..cells.len()] == *cells
        });
        assert!(
            found,
            "{step}: no row starting {cells:?}\n{}",
            self.describe()
        );
        self
    }

    fn json(&self, step: &str) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("{step}: stdout is not JSON ({e})\n{}", self.describe()))
    }
}
