//! Access control and TLS with the real clients: podman, buildah and skopeo
//! from the distribution, and the `berth` CLI itself, against the real
//! `berth` binary (harness: `clients/lab.rs`, shared with `clients.rs`).
//!
//! Each scenario is its own test with its own berth: logins with a password
//! and with a service-account token, the pusher and puller roles, the
//! shared-project flow (a project pulled by every service account of
//! another), public projects, skopeo with `--creds` and with the auth file
//! `berth login` writes, TLS with berth's own CA, HTTP/2, certificate
//! reloading, and the public URL (`http.host`).
//!
//! A missing client fails the test when `BERTH_REQUIRE_CLIENTS=1` (as in
//! CI) and is otherwise reported loudly as skipped.
//!
//! Run alone: `cargo test --test clients_access -- --nocapture`.

#[path = "clients/lab.rs"]
mod lab;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use lab::*;

/// What a client prints when berth refuses a known caller access (`403
/// DENIED`).
const DENIED: &[&str] = &["denied"];
/// What a client prints when berth wants (other) credentials (`401`).
const NEEDS_CREDENTIALS: &[&str] = &["unauthorized", "authentication required"];
/// What a client prints when it does not trust the server's certificate.
const UNTRUSTED: &[&str] = &[
    "x509: certificate signed by unknown authority",
    "certificate signed by unknown authority",
];

/// A lab whose berth is started with `setup`, or `None` (test skipped) when
/// a client is missing and `BERTH_REQUIRE_CLIENTS` is not set.
fn start_lab(test: &str, tools: &[&str], setup: BerthSetup) -> Option<Lab> {
    let missing = missing_tools(tools);
    if !clients_present(test, &missing) {
        return None;
    }
    let lab = Lab::start("python3".into(), setup);
    eprintln!(
        "{test}: berth on {} (work dir {}, berth log {})",
        lab.url,
        lab.dir().display(),
        lab.berth.log.display()
    );
    Some(lab)
}

const CLIENTS: &[&str] = &["podman", "buildah", "skopeo"];

/// The admin's own CLI configuration and auth file, apart from the one
/// podman and skopeo use in the lab, so that setting things up never logs
/// the clients under test in.
fn admin_env(lab: &Lab) -> [(&'static str, PathBuf); 2] {
    [
        ("REGISTRY_AUTH_FILE", lab.dir().join("admin-auth.json")),
        ("BERTH_CLI_CONFIG", lab.dir().join("admin-cli.yaml")),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, PathBuf)]) -> Vec<(&'static str, &'a OsStr)> {
    env.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
}

fn admin_login(lab: &Lab) {
    let env = admin_env(lab);
    lab.run_inner(
        "berth",
        &["login", &lab.url, "-u", "admin", "--password-stdin"],
        Some(&format!("{}\n", lab.password)),
        &env_refs(&env),
    )
    .expect_success("berth login (admin)");
}

/// `berth ARGS` as the admin; must succeed.
fn admin(lab: &Lab, args: &[&str]) -> Ran {
    let env = admin_env(lab);
    let ran = lab.run_env("berth", args, &env_refs(&env));
    ran.expect_success(&format!("berth {}", args.join(" ")));
    ran
}

/// A service account `ns/name` and a fresh token for it.
fn service_account_token(lab: &Lab, ns: &str, name: &str) -> String {
    let created = admin(lab, &["create", "sa", name, "-n", ns]);
    assert!(
        created
            .stdout()
            .contains(&format!("serviceaccount/{name} created")),
        "{}",
        created.describe()
    );
    let token = last_line(&admin(
        lab,
        &["create", "token", &format!("sa/{name}"), "-n", ns],
    ))
    .to_owned();
    assert!(token.starts_with("berth_"), "token {token:?}");
    token
}

/// A one-file image built with buildah, under `localhost/access/NAME:v1`.
fn build(lab: &Lab, name: &str) -> BuiltImage {
    let context = lab.mkdir("context");
    build_image(
        lab,
        &context,
        name,
        "oci",
        vec![(
            format!("/{name}.txt"),
            format!("{name} {}\n", lab.nonce).into_bytes(),
        )],
    )
}

/// `podman push` of `image` to `REPO:TAG` (`creds` `user:secret`, else the
/// auth file); returns the digest podman pushed, after checking that berth
/// serves that manifest under the tag.
fn push(lab: &Lab, step: &str, image: &BuiltImage, target: &str, creds: Option<&str>) -> String {
    let digest_file = lab
        .dir()
        .join(format!("{}.digest", target.replace(['/', ':'], "_")));
    let destination = format!("docker://{}/{target}", lab.host);
    let mut args = vec![
        "push",
        "--tls-verify=false",
        "--digestfile",
        digest_file.to_str().unwrap(),
    ];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.extend([image.local.as_str(), destination.as_str()]);
    lab.ok(step, "podman", &args);
    let digest = std::fs::read_to_string(&digest_file)
        .unwrap_or_else(|e| panic!("{step}: reading --digestfile: {e}"))
        .trim()
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && is_hex64(&digest[7..]),
        "{step}: pushed digest {digest:?}"
    );
    let (repository, tag) = target.rsplit_once(':').unwrap();
    assert_eq!(
        stored_digest(lab, repository, tag).as_deref(),
        Some(digest.as_str()),
        "{step}: berth serves what podman pushed"
    );
    digest
}

/// The digest berth serves for `repository:tag`, asked as the admin; `None`
/// when there is no such manifest.
fn stored_digest(lab: &Lab, repository: &str, tag: &str) -> Option<String> {
    let r = lab.http(
        "GET",
        &format!("/v2/{repository}/manifests/{tag}"),
        true,
        &[("Accept", &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))],
    );
    match r.status {
        200 => Some(
            r.header("docker-content-digest")
                .unwrap_or_else(|| panic!("no Docker-Content-Digest: {r:?}"))
                .to_owned(),
        ),
        404 => None,
        _ => panic!("GET manifest {repository}:{tag} as admin: {r:?}"),
    }
}

/// The tags berth lists for `repository`, asked as the admin (none when it
/// does not exist).
fn stored_tags(lab: &Lab, repository: &str) -> Vec<String> {
    let r = lab.http("GET", &format!("/v2/{repository}/tags/list"), true, &[]);
    if r.status == 404 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "tags of {repository}: {r:?}");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes every local copy of `image` so that a pull must fetch it.
fn forget_locally(lab: &Lab, step: &str, image: &BuiltImage) {
    let _ = lab.run("podman", &["rmi", "--force", &image.id]);
    let out = lab.run("podman", &["image", "exists", &image.id]);
    assert!(
        !out.status.success(),
        "{step}: image {} is still stored locally",
        image.id
    );
}

/// `podman pull` of `reference` with `creds` (else the auth file) succeeds
/// and yields `image`.
fn pull_ok(lab: &Lab, step: &str, reference: &str, creds: Option<&str>, image: &BuiltImage) {
    forget_locally(lab, step, image);
    let mut args = vec!["pull", "--tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.push(reference);
    let out = lab.ok(step, "podman", &args);
    assert_eq!(
        last_line(&out),
        image.id,
        "{step}: pulled image id\n{}",
        out.describe()
    );
}

/// `podman pull` of `reference` is refused with one of `reasons`, and
/// nothing was stored locally.
fn pull_refused(
    lab: &Lab,
    step: &str,
    reference: &str,
    args_before: &[&str],
    reasons: &[&str],
    image: &BuiltImage,
) {
    forget_locally(lab, step, image);
    let mut args = vec!["pull", "--tls-verify=false"];
    args.extend(args_before);
    args.push(reference);
    let out = lab.run("podman", &args);
    out.expect_failure(step);
    out.expect_stderr_any(step, reasons);
    let exists = lab.run("podman", &["image", "exists", &image.id]);
    assert!(
        !exists.status.success(),
        "{step}: a refused pull stored the image"
    );
}

fn auth_entry(auth_file: &Path, host: &str) -> Option<String> {
    let text = std::fs::read_to_string(auth_file).unwrap_or_else(|_| "{}".into());
    let auth: Value = serde_json::from_str(&text).expect("auth file is JSON");
    auth["auths"][host]["auth"].as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------

#[test]
fn podman_login_with_password_and_service_account_token() {
    let Some(lab) = start_lab("podman login", CLIENTS, BerthSetup::default()) else {
        return;
    };
    admin_login(&lab);
    admin(&lab, &["new-project", "team"]);
    let token = service_account_token(&lab, "team", "deployer");
    admin(
        &lab,
        &[
            "policy",
            "add-role-to-user",
            "system:image-pusher",
            "system:serviceaccount:team:deployer",
            "-n",
            "team",
        ],
    );
    let image = build(&lab, "login");

    let step = "podman login with the admin password";
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "admin",
            "--password-stdin",
            &lab.host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{}",
        out.describe()
    );
    assert_eq!(
        auth_entry(&lab.auth_file, &lab.host),
        Some(STANDARD.encode(format!("admin:{}", lab.password))),
        "{step}: auth file entry"
    );
    push(&lab, step, &image, "team/login:by-password", None);
    lab.ok(step, "podman", &["logout", &lab.host]);
    assert_eq!(
        auth_entry(&lab.auth_file, &lab.host),
        None,
        "{step}: logout"
    );

    let step = "podman login -u ANYTHING -p <service account token>";
    let out = lab.ok(
        step,
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "whatever-name",
            "-p",
            &token,
            &lab.host,
        ],
    );
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{}",
        out.describe()
    );
    assert_eq!(
        auth_entry(&lab.auth_file, &lab.host),
        Some(STANDARD.encode(format!("whatever-name:{token}"))),
        "{step}: auth file entry"
    );
    let digest = push(&lab, step, &image, "team/login:by-token", None);
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/team/login:by-token", lab.host),
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));
    assert_eq!(
        stored_tags(&lab, "team/login"),
        ["by-password", "by-token"],
        "{step}: tags"
    );
    lab.ok(step, "podman", &["logout", &lab.host]);

    let step = "podman login with a token that is not one";
    let out = lab.run(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "whatever-name",
            "-p",
            "berth_not-a-real-token",
            &lab.host,
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["invalid username/password", "unauthorized", "401"]);
    assert_eq!(auth_entry(&lab.auth_file, &lab.host), None, "{step}");
}

#[test]
fn push_needs_a_pusher_role() {
    let Some(lab) = start_lab("pusher and puller", CLIENTS, BerthSetup::default()) else {
        return;
    };
    admin_login(&lab);
    admin(&lab, &["new-project", "team"]);
    let pusher = service_account_token(&lab, "team", "pusher");
    let puller = service_account_token(&lab, "team", "puller");
    for (role, sa) in [
        ("system:image-pusher", "pusher"),
        ("system:image-puller", "puller"),
    ] {
        admin(
            &lab,
            &["policy", "add-role-to-user", role, "-z", sa, "-n", "team"],
        );
    }
    let image = build(&lab, "roles");

    let step = "push as system:image-pusher";
    let pusher_creds = format!("pusher:{pusher}");
    let digest = push(&lab, step, &image, "team/app:v1", Some(&pusher_creds));
    assert_eq!(stored_tags(&lab, "team/app"), ["v1"], "{step}");

    let step = "push as system:image-puller";
    let puller_creds = format!("puller:{puller}");
    for target in ["team/app:v2", "team/fresh:v1"] {
        let out = lab.run(
            "podman",
            &[
                "push",
                "--tls-verify=false",
                "--creds",
                &puller_creds,
                &image.local,
                &format!("docker://{}/{target}", lab.host),
            ],
        );
        out.expect_failure(step);
        out.expect_stderr_any(step, DENIED);
    }
    assert_eq!(
        stored_tags(&lab, "team/app"),
        ["v1"],
        "{step}: nothing tagged"
    );
    assert_eq!(stored_digest(&lab, "team/app", "v2"), None, "{step}");
    assert_eq!(
        stored_tags(&lab, "team/fresh"),
        Vec::<String>::new(),
        "{step}"
    );
    let catalog = lab.http("GET", "/v2/_catalog", true, &[]);
    let catalog: Value = serde_json::from_slice(&catalog.body).unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["team/app"]),
        "{step}: catalog"
    );

    let step = "pull as system:image-puller";
    pull_ok(
        &lab,
        step,
        &format!("{}/team/app:v1", lab.host),
        Some(&puller_creds),
        &image,
    );
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &puller_creds,
            &format!("docker://{}/team/app:v1", lab.host),
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));
}

#[test]
fn shared_project_pulled_by_myapp_service_accounts_only() {
    let Some(lab) = start_lab("shared project", CLIENTS, BerthSetup::default()) else {
        return;
    };
    admin_login(&lab);
    for project in ["shared", "myapp", "other"] {
        admin(&lab, &["new-project", project]);
    }
    let image = build(&lab, "base");
    let admin_creds = format!("admin:{}", lab.password);
    let digest = push(
        &lab,
        "push shared/base",
        &image,
        "shared/base:v1",
        Some(&admin_creds),
    );
    let deployer = format!(
        "deployer:{}",
        service_account_token(&lab, "myapp", "deployer")
    );
    let builder = format!(
        "builder:{}",
        service_account_token(&lab, "myapp", "builder")
    );
    let intruder = format!(
        "intruder:{}",
        service_account_token(&lab, "other", "intruder")
    );
    let reference = format!("{}/shared/base:v1", lab.host);

    pull_refused(
        &lab,
        "myapp service account before the binding",
        &reference,
        &["--creds", &deployer],
        DENIED,
        &image,
    );

    let bound = admin(
        &lab,
        &[
            "policy",
            "add-role-to-group",
            "system:image-puller",
            "system:serviceaccounts:myapp",
            "-n",
            "shared",
        ],
    );
    assert!(
        bound.stdout().contains("system:serviceaccounts:myapp"),
        "{}",
        bound.describe()
    );
    let who = admin(&lab, &["policy", "who-can", "pull", "shared/base"]);
    assert!(
        who.stdout().contains("system:serviceaccounts:myapp"),
        "who-can lists the group\n{}",
        who.describe()
    );

    pull_ok(
        &lab,
        "myapp/deployer pulls",
        &reference,
        Some(&deployer),
        &image,
    );
    let step = "myapp/builder (any account of myapp) inspects";
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &builder,
            &format!("docker://{reference}"),
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));

    pull_refused(
        &lab,
        "other/intruder pulls",
        &reference,
        &["--creds", &intruder],
        DENIED,
        &image,
    );
    let step = "other/intruder inspects";
    let out = lab.run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &intruder,
            &format!("docker://{reference}"),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, DENIED);

    // Pulling is all the group may do in `shared`.
    let step = "myapp/deployer pushes to shared";
    let out = lab.run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &deployer,
            "--dest-creds",
            &deployer,
            &format!("docker://{reference}"),
            &format!("docker://{}/shared/base:hijacked", lab.host),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, DENIED);
    assert_eq!(stored_tags(&lab, "shared/base"), ["v1"], "{step}");
}

#[test]
fn anonymous_pull_from_a_public_namespace_only() {
    let Some(lab) = start_lab("public project", CLIENTS, BerthSetup::default()) else {
        return;
    };
    admin_login(&lab);
    admin(&lab, &["new-project", "public"]);
    admin(&lab, &["new-project", "private"]);
    let image = build(&lab, "open");
    let admin_creds = format!("admin:{}", lab.password);
    let digest = push(
        &lab,
        "push public",
        &image,
        "public/app:v1",
        Some(&admin_creds),
    );
    push(
        &lab,
        "push private",
        &image,
        "private/app:v1",
        Some(&admin_creds),
    );
    admin(
        &lab,
        &[
            "policy",
            "add-role-to-group",
            "system:image-puller",
            "system:unauthenticated",
            "-n",
            "public",
        ],
    );
    // The lab's auth file is empty: podman has no credentials to offer.
    assert_eq!(auth_entry(&lab.auth_file, &lab.host), None);

    pull_ok(
        &lab,
        "anonymous podman pull from public",
        &format!("{}/public/app:v1", lab.host),
        None,
        &image,
    );
    let step = "anonymous skopeo inspect of public";
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--no-creds",
            &format!("docker://{}/public/app:v1", lab.host),
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));

    pull_refused(
        &lab,
        "anonymous podman pull from private",
        &format!("{}/private/app:v1", lab.host),
        &[],
        NEEDS_CREDENTIALS,
        &image,
    );
    let step = "anonymous skopeo inspect of private";
    let out = lab.run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--no-creds",
            &format!("docker://{}/private/app:v1", lab.host),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, NEEDS_CREDENTIALS);

    // Public means pull, not push.
    let step = "anonymous push to public";
    let out = lab.run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-no-creds",
            "--dest-no-creds",
            &format!("docker://{}/public/app:v1", lab.host),
            &format!("docker://{}/public/app:anonymous", lab.host),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, NEEDS_CREDENTIALS);
    assert_eq!(stored_tags(&lab, "public/app"), ["v1"], "{step}");
}

#[test]
fn skopeo_with_creds_and_the_auth_file_of_berth_login() {
    let Some(lab) = start_lab("skopeo credentials", CLIENTS, BerthSetup::default()) else {
        return;
    };
    admin_login(&lab);
    admin(&lab, &["new-project", "team"]);
    let image = build(&lab, "creds");
    let admin_creds = format!("admin:{}", lab.password);
    let digest = push(&lab, "push", &image, "team/app:v1", Some(&admin_creds));
    let reference = format!("docker://{}/team/app:v1", lab.host);

    let step = "skopeo --creds";
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &admin_creds,
            &reference,
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));

    // alice logs in with the berth CLI; skopeo finds her in the auth file.
    let step = "berth login, then skopeo with REGISTRY_AUTH_FILE";
    let alice_password = format!("alice-{}", lab.nonce);
    lab.run_inner(
        "berth",
        &["create", "user", "alice", "--password-stdin"],
        Some(&format!("{alice_password}\n")),
        &env_refs(&admin_env(&lab)),
    )
    .expect_success(step);
    admin(
        &lab,
        &[
            "policy",
            "add-role-to-user",
            "system:image-puller",
            "alice",
            "-n",
            "team",
        ],
    );
    let alice_auth = lab.write("alice-auth.json", b"{}");
    let alice_env = [
        ("REGISTRY_AUTH_FILE", alice_auth.clone()),
        ("BERTH_CLI_CONFIG", lab.dir().join("alice-cli.yaml")),
    ];
    let alice_env = env_refs(&alice_env);
    lab.run_inner(
        "berth",
        &["login", &lab.url, "-u", "alice", "--password-stdin"],
        Some(&format!("{alice_password}\n")),
        &alice_env,
    )
    .expect_success(step);
    let entry = auth_entry(&alice_auth, &lab.host)
        .unwrap_or_else(|| panic!("{step}: no entry for {} in alice's auth file", lab.host));
    let decoded = String::from_utf8(STANDARD.decode(&entry).unwrap()).unwrap();
    let token = decoded
        .strip_prefix("alice:")
        .unwrap_or_else(|| panic!("{step}: auth entry {decoded:?}"))
        .to_owned();
    assert!(
        token.starts_with("berth_"),
        "{step}: a token, not the password"
    );
    let out = lab.run_env(
        "skopeo",
        &["inspect", "--tls-verify=false", &reference],
        &alice_env,
    );
    out.expect_success(step);
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));
    let out = lab.run_env(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{}/team/app", lab.host),
        ],
        &alice_env,
    );
    out.expect_success(step);
    assert_eq!(out.json(step)["Tags"], serde_json::json!(["v1"]), "{step}");

    let step = "berth logout, then skopeo";
    let out = lab.run_env("berth", &["logout"], &alice_env);
    out.expect_success(step);
    assert_eq!(
        auth_entry(&alice_auth, &lab.host),
        None,
        "{step}: entry removed"
    );
    let out = lab.run_env(
        "skopeo",
        &["inspect", "--tls-verify=false", &reference],
        &alice_env,
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, NEEDS_CREDENTIALS);
    // The token itself was revoked, not only forgotten.
    let out = lab.run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("alice:{token}"),
            &reference,
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["invalid username/password"]);
}

/// berth with `http.tls: auto`, and a certs directory holding its CA.
fn tls_auto_lab(test: &str, tools: &[&str]) -> Option<(Lab, PathBuf)> {
    let lab = start_lab(
        test,
        tools,
        BerthSetup {
            env: vec![("BERTH_HTTP_TLS".into(), "auto".into())],
            tls: true,
        },
    )?;
    let ca = lab.dir().join("berth-data/tls/ca.crt");
    let certs = lab.mkdir("certs");
    std::fs::copy(&ca, certs.join("ca.crt"))
        .unwrap_or_else(|e| panic!("copying berth's CA {}: {e}", ca.display()));
    Some((lab, certs))
}

#[test]
fn tls_auto_trusted_through_a_cert_dir() {
    let Some((lab, certs)) = tls_auto_lab("tls auto", CLIENTS) else {
        return;
    };
    let certs = certs.to_str().unwrap();
    let image = build(&lab, "secure");
    let reference = format!("docker://{}/secure/app:v1", lab.host);

    let step = "podman login --tls-verify=true without the CA";
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=true",
            "-u",
            "admin",
            "--password-stdin",
            &lab.host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, UNTRUSTED);
    assert_eq!(auth_entry(&lab.auth_file, &lab.host), None, "{step}");

    let step = "skopeo --tls-verify=true without the CA";
    let out = lab.run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=true",
            "--creds",
            &format!("admin:{}", lab.password),
            &reference,
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, UNTRUSTED);

    let step = "podman login and push with --cert-dir";
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=true",
            "--cert-dir",
            certs,
            "-u",
            "admin",
            "--password-stdin",
            &lab.host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{}",
        out.describe()
    );
    let digest_file = lab.dir().join("secure.digest");
    lab.ok(
        step,
        "podman",
        &[
            "push",
            "--tls-verify=true",
            "--cert-dir",
            certs,
            "--digestfile",
            digest_file.to_str().unwrap(),
            &image.local,
            &reference,
        ],
    );
    let digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        stored_digest(&lab, "secure/app", "v1").as_deref(),
        Some(digest.as_str()),
        "{step}: stored"
    );

    let step = "skopeo inspect with --cert-dir";
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=true",
            "--cert-dir",
            certs,
            &reference,
        ],
    );
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));

    let step = "podman pull with --cert-dir";
    forget_locally(&lab, step, &image);
    let out = lab.ok(
        step,
        "podman",
        &[
            "pull",
            "--tls-verify=true",
            "--cert-dir",
            certs,
            &format!("{}/secure/app:v1", lab.host),
        ],
    );
    assert_eq!(last_line(&out), image.id, "{step}\n{}", out.describe());
}

/// `curl -s -o /dev/null -w '%{http_version} %{http_code}' ARGS URL`.
fn curl(lab: &Lab, args: &[&str], path: &str) -> Ran {
    let url = format!("{}{path}", lab.url);
    let mut full = vec![
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
    ];
    full.extend(args);
    full.push(&url);
    lab.run("curl", &full)
}

#[test]
fn http2_over_tls() {
    let Some((lab, certs)) = tls_auto_lab("http/2", &["curl"]) else {
        return;
    };
    let ca = certs.join("ca.crt");
    let ca = ca.to_str().unwrap();
    let step = "curl --http2 with berth's CA";
    let out = curl(&lab, &["--http2", "--cacert", ca], "/v2/");
    out.expect_success(step);
    assert_eq!(out.stdout(), "2 401", "{step}\n{}", out.describe());
    let out = curl(&lab, &["--http2", "-k"], "/healthz");
    out.expect_success(step);
    assert_eq!(out.stdout(), "2 200", "{step}\n{}", out.describe());
    let step = "curl --http1.1";
    let out = curl(&lab, &["--http1.1", "--cacert", ca], "/healthz");
    out.expect_success(step);
    assert_eq!(out.stdout(), "1.1 200", "{step}\n{}", out.describe());
}

/// The certificate chain and key a `berth::tls::auto` CA issued, and the CA.
struct Issued {
    certificate: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn issue(dir: &Path) -> Issued {
    let made = berth::tls::auto(dir, &["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("issuing a certificate");
    Issued {
        certificate: made.files.certificate,
        key: made.files.key,
        ca: made.ca_certificate,
    }
}

/// Replaces `to` with a copy of `from` at once (write aside, rename).
fn replace_file(from: &Path, to: &Path) {
    let aside = to.with_extension("new");
    std::fs::copy(from, &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

#[test]
fn tls_certificate_files_are_reloaded() {
    if !clients_present("tls reload", &missing_tools(&["curl", "skopeo"])) {
        return;
    }
    let issuers = tempfile::tempdir().unwrap();
    let first = issue(&issuers.path().join("first"));
    let second = issue(&issuers.path().join("second"));
    let serving = issuers.path().join("serving");
    std::fs::create_dir_all(&serving).unwrap();
    let (certificate, key) = (serving.join("tls.crt"), serving.join("tls.key"));
    std::fs::copy(&first.certificate, &certificate).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let Some(lab) = start_lab(
        "tls reload",
        &["curl", "skopeo"],
        BerthSetup {
            env: vec![
                (
                    "BERTH_HTTP_TLS_CERTIFICATE".into(),
                    certificate.to_str().unwrap().into(),
                ),
                ("BERTH_HTTP_TLS_KEY".into(), key.to_str().unwrap().into()),
            ],
            tls: true,
        },
    ) else {
        return;
    };
    let trusts = |ca: &Path| {
        let out = curl(&lab, &["--cacert", ca.to_str().unwrap()], "/healthz");
        out.status.success() && out.stdout().ends_with(" 200")
    };

    let step = "the configured certificate is served";
    assert!(trusts(&first.ca), "{step}: not trusted with the first CA");
    assert!(!trusts(&second.ca), "{step}: trusted with the second CA");
    let out = curl(&lab, &["--cacert", second.ca.to_str().unwrap()], "/healthz");
    assert_eq!(
        out.status.code(),
        Some(60),
        "{step}: curl's verification failure\n{}",
        out.describe()
    );

    let step = "the replaced certificate is served after the reload period";
    replace_file(&second.key, &key);
    replace_file(&second.certificate, &certificate);
    let replaced = Instant::now();
    while !trusts(&second.ca) {
        assert!(
            replaced.elapsed() < Duration::from_secs(40),
            "{step}: still not serving the new certificate after 40 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("{step}: after {:.1}s", replaced.elapsed().as_secs_f64());
    assert!(
        !trusts(&first.ca),
        "{step}: the old certificate is still served"
    );
    let log = std::fs::read_to_string(&lab.berth.log).unwrap_or_default();
    assert!(
        log.contains("TLS certificate reloaded"),
        "{step}: berth's log"
    );

    // And a real client trusting only the new CA gets in.
    let certs = lab.mkdir("certs-second");
    std::fs::copy(&second.ca, certs.join("ca.crt")).unwrap();
    let out = lab.run(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=true",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--creds",
            &format!("admin:{}", lab.password),
            &format!("docker://{}/none/such", lab.host),
        ],
    );
    // Trusted, so the answer is berth's: the repository does not exist.
    out.expect_failure(step);
    assert!(
        !UNTRUSTED.iter().any(|u| out.stderr().contains(u)),
        "{step}: skopeo does not trust the new certificate\n{}",
        out.describe()
    );
    out.expect_stderr_any(step, &["name unknown", "NAME_UNKNOWN", "not found", "404"]);
}

#[test]
fn public_host_in_locations_and_token_realm() {
    // Clients reach berth as 127.0.0.1:PORT; its public name is localhost.
    let Some(lab) = start_lab(
        "http.host",
        CLIENTS,
        BerthSetup {
            env: vec![("BERTH_HTTP_HOST".into(), "http://localhost:{port}".into())],
            tls: false,
        },
    ) else {
        return;
    };
    let port = lab.host.rsplit_once(':').unwrap().1;
    let public = format!("http://localhost:{port}");

    let step = "the token realm";
    let r = lab.http("GET", "/v2/", false, &[]);
    assert_eq!(r.status, 401, "{step}: {r:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{public}/auth/token\"")),
        "{step}: {challenge}"
    );

    admin_login(&lab);
    admin(&lab, &["new-project", "hosted"]);
    let step = "the Location of an upload";
    let r = lab.http("POST", "/v2/hosted/app/blobs/uploads/", true, &[]);
    assert_eq!(r.status, 202, "{step}: {r:?}");
    let location = r.header("location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{public}/v2/hosted/app/blobs/uploads/")),
        "{step}: {location}"
    );

    // podman follows the realm and the Locations to the public name.
    let step = "podman push and pull through the public name";
    let image = build(&lab, "hosted");
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "admin",
            "--password-stdin",
            &lab.host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_success(step);
    push(&lab, step, &image, "hosted/app:v1", None);
    pull_ok(
        &lab,
        step,
        &format!("{}/hosted/app:v1", lab.host),
        None,
        &image,
    );
    let log = std::fs::read_to_string(&lab.berth.log).unwrap_or_default();
    assert!(
        log.contains("/auth/token"),
        "{step}: no token requests in berth's log"
    );
}

#[test]
fn bad_public_host_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, why) in [
        ("registry.example.com", "is not a URL"),
        ("ftp://registry.example.com", "has the scheme"),
        ("https://registry.example.com/v2", "has a path"),
        ("https://registry.example.com?x=1", "has a query"),
    ] {
        let data = dir.path().join("data");
        let mut child = berth_command()
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--addr"])
            .arg(free_loopback_addr())
            .env("BERTH_HTTP_HOST", bad)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting berth");
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("berth serve with http.host {bad:?} is still running after 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: berth serve succeeded");
        assert!(
            stderr.contains(&format!("http.host {bad:?} {why}"))
                && stderr.contains("it must be http://HOST[:PORT] or https://HOST[:PORT]"),
            "{bad}: berth's message:\n{stderr}"
        );
        assert!(!data.exists(), "{bad}: berth made its data directory");
    }
}
