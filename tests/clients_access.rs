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

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use common::{BerthProcess, ServeCommand};
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

/// `--tls-verify=false`: berth on plain HTTP.
const PLAIN: &str = "--tls-verify=false";

const CLIENTS: &[&str] = &["podman", "buildah", "skopeo"];

/// A lab whose berth is configured by `configure`, or `None` (test skipped) when
/// a client is missing and `BERTH_REQUIRE_CLIENTS` is not set.
fn start_lab(
    test: &str,
    tools: &[&str],
    configure: impl FnOnce(ServeCommand) -> ServeCommand,
) -> Option<Lab> {
    let missing = missing_tools(tools);
    if !clients_present(test, &missing) {
        return None;
    }
    let lab = Lab::start("python3".into(), configure);
    eprintln!(
        "{test}: berth on {} (work dir {}, berth log {})",
        lab.url,
        lab.dir().display(),
        lab.berth.log_path().display()
    );
    Some(lab)
}

/// A plain-HTTP lab with the admin logged in to the CLI and `projects`
/// created.
fn lab_with_projects(test: &str, projects: &[&str]) -> Option<Lab> {
    let lab = start_lab(test, CLIENTS, |serve| serve)?;
    admin_login(&lab);
    for project in projects {
        admin(&lab, &["new-project", project]);
    }
    Some(lab)
}

/// The admin's own CLI configuration and auth file, apart from the one
/// podman and skopeo use in the lab, so that setting things up never logs
/// the clients under test in.
fn admin_env(lab: &Lab) -> [(&'static str, PathBuf); 2] {
    cli_env(lab, "admin", lab.dir().join("admin-auth.json"))
}

/// A CLI configuration and auth file of `who`'s own.
fn cli_env(lab: &Lab, who: &str, auth_file: PathBuf) -> [(&'static str, PathBuf); 2] {
    [
        ("REGISTRY_AUTH_FILE", auth_file),
        (
            "BERTH_CLI_CONFIG",
            lab.dir().join(format!("{who}-cli.yaml")),
        ),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, PathBuf)]) -> Vec<(&'static str, &'a OsStr)> {
    env.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
}

/// `berth ARGS` reading `stdin`, as the admin; must succeed.
fn admin_stdin(lab: &Lab, args: &[&str], stdin: &str) -> Ran {
    let env = admin_env(lab);
    let ran = lab.run_inner("berth", args, Some(stdin), &env_refs(&env));
    ran.expect_success(&format!("berth {}", args.join(" ")));
    ran
}

fn admin_login(lab: &Lab) {
    admin_stdin(
        lab,
        &["login", &lab.url, "-u", "admin", "--password-stdin"],
        &format!("{}\n", lab.password),
    );
}

/// `berth ARGS` as the admin; must succeed.
fn admin(lab: &Lab, args: &[&str]) -> Ran {
    let env = admin_env(lab);
    lab.berth_env(args, &env_refs(&env))
}

/// A service account `ns/name` and a token for it, made by the admin.
fn service_account_creds(lab: &Lab, ns: &str, name: &str) -> String {
    let env = admin_env(lab);
    lab.service_account_creds(ns, name, &env_refs(&env))
}

/// The admin's `user:password`.
fn admin_creds(lab: &Lab) -> String {
    format!("admin:{}", lab.password)
}

/// A one-file image built with buildah, under `localhost/berth-interop/NAME:v1`.
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

/// `podman push FLAGS` of `image` to `REPO:TAG`; returns the digest podman
/// pushed, after checking that berth serves that manifest under the tag.
fn push(lab: &Lab, step: &str, image: &BuiltImage, target: &str, flags: &[&str]) -> String {
    let digest_file = lab
        .dir()
        .join(format!("{}.digest", target.replace(['/', ':'], "_")));
    let destination = format!("docker://{}/{target}", lab.host);
    let mut args = vec!["push", "--digestfile", digest_file.to_str().unwrap()];
    args.extend(flags);
    args.extend([image.local.as_str(), destination.as_str()]);
    lab.ok(step, "podman", &args);
    let digest = read_digest_file(step, &digest_file);
    let (repository, tag) = target.rsplit_once(':').unwrap();
    assert_eq!(
        stored_digest(lab, repository, tag).as_deref(),
        Some(digest.as_str()),
        "{step}: berth serves what podman pushed"
    );
    digest
}

/// [`push`] with the admin's credentials over plain HTTP.
fn push_as_admin(lab: &Lab, image: &BuiltImage, target: &str) -> String {
    let creds = admin_creds(lab);
    let step = format!("push {target} as admin");
    push(lab, &step, image, target, &[PLAIN, "--creds", &creds])
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
        r.assert_error(&format!("tags of {repository}"), 404, "NAME_UNKNOWN");
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

/// `skopeo inspect FLAGS docker://REFERENCE` succeeds; the digest it saw.
fn inspect_digest(lab: &Lab, step: &str, flags: &[&str], reference: &str) -> String {
    let docker = format!("docker://{reference}");
    let mut args = vec!["inspect"];
    args.extend(flags);
    args.push(&docker);
    let out = lab.ok(step, "skopeo", &args);
    out.json(step)["Digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{step}: no Digest\n{}", out.describe()))
        .to_owned()
}

/// `program ARGS` fails, saying one of `reasons`.
fn refused(lab: &Lab, step: &str, program: &str, args: &[&str], reasons: &[&str]) {
    let out = lab.run(program, args);
    out.expect_failure(step);
    out.expect_stderr_any(step, reasons);
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

/// `podman pull FLAGS REFERENCE` yields `image`, fetched afresh.
fn pull_ok(lab: &Lab, step: &str, reference: &str, flags: &[&str], image: &BuiltImage) {
    forget_locally(lab, step, image);
    let mut args = vec!["pull"];
    args.extend(flags);
    args.push(reference);
    let out = lab.ok(step, "podman", &args);
    assert_eq!(
        last_line(&out),
        image.id,
        "{step}: pulled image id\n{}",
        out.describe()
    );
}

/// `podman pull PLAIN FLAGS REFERENCE` is refused with one of `reasons`,
/// and nothing was stored locally.
fn pull_refused(
    lab: &Lab,
    step: &str,
    reference: &str,
    flags: &[&str],
    reasons: &[&str],
    image: &BuiltImage,
) {
    forget_locally(lab, step, image);
    let mut args = vec!["pull", PLAIN];
    args.extend(flags);
    args.push(reference);
    refused(lab, step, "podman", &args, reasons);
    let exists = lab.run("podman", &["image", "exists", &image.id]);
    assert!(
        !exists.status.success(),
        "{step}: a refused pull stored the image"
    );
}

/// `podman login FLAGS -u USER --password-stdin HOST` with `secret`.
fn podman_login(lab: &Lab, flags: &[&str], user: &str, secret: &str) -> Ran {
    let mut args = vec!["login"];
    args.extend(flags);
    args.extend(["-u", user, "--password-stdin", &lab.host]);
    lab.run_with_stdin("podman", &args, &format!("{secret}\n"))
}

fn auth_entry(auth_file: &Path, host: &str) -> Option<String> {
    let text = std::fs::read_to_string(auth_file).unwrap_or_else(|_| "{}".into());
    let auth: Value = serde_json::from_str(&text).expect("auth file is JSON");
    auth["auths"][host]["auth"].as_str().map(str::to_owned)
}

/// The podman login succeeded and stored `user:secret` for berth.
fn logged_in(lab: &Lab, step: &str, out: &Ran, user: &str, secret: &str) {
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{step}\n{}",
        out.describe()
    );
    assert_eq!(
        auth_entry(&lab.auth_file, &lab.host),
        Some(STANDARD.encode(format!("{user}:{secret}"))),
        "{step}: auth file entry"
    );
}

// ---------------------------------------------------------------------------

#[test]
fn podman_login_with_password_and_service_account_token() {
    let Some(lab) = lab_with_projects("podman login", &["team"]) else {
        return;
    };
    let creds = service_account_creds(&lab, "team", "deployer");
    let token = creds.split_once(':').unwrap().1;
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
    let out = podman_login(&lab, &[PLAIN], "admin", &lab.password);
    logged_in(&lab, step, &out, "admin", &lab.password);
    push(&lab, step, &image, "team/login:by-password", &[PLAIN]);
    lab.ok(step, "podman", &["logout", &lab.host]);
    assert_eq!(
        auth_entry(&lab.auth_file, &lab.host),
        None,
        "{step}: logout"
    );

    let step = "podman login -u ANYTHING -p <service account token>";
    let out = lab.run(
        "podman",
        &[
            "login",
            PLAIN,
            "-u",
            "whatever-name",
            "-p",
            token,
            &lab.host,
        ],
    );
    logged_in(&lab, step, &out, "whatever-name", token);
    let digest = push(&lab, step, &image, "team/login:by-token", &[PLAIN]);
    let reference = format!("{}/team/login:by-token", lab.host);
    assert_eq!(inspect_digest(&lab, step, &[PLAIN], &reference), digest);
    assert_eq!(
        stored_tags(&lab, "team/login"),
        ["by-password", "by-token"],
        "{step}: tags"
    );
    lab.ok(step, "podman", &["logout", &lab.host]);

    let step = "podman login with a token that is not one";
    let out = podman_login(&lab, &[PLAIN], "whatever-name", "berth_not-a-real-token");
    out.expect_failure(step);
    out.expect_stderr_any(step, &["invalid username/password"]);
    assert_eq!(auth_entry(&lab.auth_file, &lab.host), None, "{step}");
}

#[test]
fn push_needs_a_pusher_role() {
    let Some(lab) = lab_with_projects("pusher and puller", &["team"]) else {
        return;
    };
    let pusher = service_account_creds(&lab, "team", "pusher");
    let puller = service_account_creds(&lab, "team", "puller");
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
    let digest = push(
        &lab,
        step,
        &image,
        "team/app:v1",
        &[PLAIN, "--creds", &pusher],
    );
    assert_eq!(stored_tags(&lab, "team/app"), ["v1"], "{step}");

    let step = "push as system:image-puller";
    for target in ["team/app:v2", "team/fresh:v1"] {
        let destination = format!("docker://{}/{target}", lab.host);
        let args = [
            "push",
            PLAIN,
            "--creds",
            &puller,
            &image.local,
            &destination,
        ];
        refused(&lab, step, "podman", &args, DENIED);
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
    let reference = format!("{}/team/app:v1", lab.host);
    pull_ok(&lab, step, &reference, &[PLAIN, "--creds", &puller], &image);
    let flags = [PLAIN, "--creds", &puller];
    assert_eq!(inspect_digest(&lab, step, &flags, &reference), digest);
}

#[test]
fn shared_project_pulled_by_myapp_service_accounts_only() {
    let Some(lab) = lab_with_projects("shared project", &["shared", "myapp", "other"]) else {
        return;
    };
    let image = build(&lab, "base");
    let digest = push_as_admin(&lab, &image, "shared/base:v1");
    let deployer = service_account_creds(&lab, "myapp", "deployer");
    let builder = service_account_creds(&lab, "myapp", "builder");
    let intruder = service_account_creds(&lab, "other", "intruder");
    let reference = format!("{}/shared/base:v1", lab.host);

    let step = "myapp service account before the binding";
    pull_refused(
        &lab,
        step,
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

    let step = "myapp/deployer pulls";
    pull_ok(
        &lab,
        step,
        &reference,
        &[PLAIN, "--creds", &deployer],
        &image,
    );
    let step = "myapp/builder (any account of myapp) inspects";
    let flags = [PLAIN, "--creds", &builder];
    assert_eq!(inspect_digest(&lab, step, &flags, &reference), digest);

    let step = "other/intruder pulls";
    pull_refused(
        &lab,
        step,
        &reference,
        &["--creds", &intruder],
        DENIED,
        &image,
    );
    let docker = format!("docker://{reference}");
    let args = ["inspect", PLAIN, "--creds", &intruder, &docker];
    refused(&lab, "other/intruder inspects", "skopeo", &args, DENIED);

    // Pulling is all the group may do in `shared`.
    let step = "myapp/deployer pushes to shared";
    let hijacked = format!("docker://{}/shared/base:hijacked", lab.host);
    let args = [
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &deployer,
        "--dest-creds",
        &deployer,
        &docker,
        &hijacked,
    ];
    refused(&lab, step, "skopeo", &args, DENIED);
    assert_eq!(stored_tags(&lab, "shared/base"), ["v1"], "{step}");
}

#[test]
fn anonymous_pull_from_a_public_namespace_only() {
    let Some(lab) = lab_with_projects("public project", &["public", "private"]) else {
        return;
    };
    let image = build(&lab, "open");
    let digest = push_as_admin(&lab, &image, "public/app:v1");
    push_as_admin(&lab, &image, "private/app:v1");
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
    let public = format!("{}/public/app:v1", lab.host);
    let private = format!("{}/private/app:v1", lab.host);

    pull_ok(
        &lab,
        "anonymous podman pull from public",
        &public,
        &[PLAIN],
        &image,
    );
    let step = "anonymous skopeo inspect of public";
    assert_eq!(
        inspect_digest(&lab, step, &[PLAIN, "--no-creds"], &public),
        digest
    );

    let step = "anonymous podman pull from private";
    pull_refused(&lab, step, &private, &[], NEEDS_CREDENTIALS, &image);
    let step = "anonymous skopeo inspect of private";
    let args = [
        "inspect",
        PLAIN,
        "--no-creds",
        &format!("docker://{private}"),
    ];
    refused(&lab, step, "skopeo", &args, NEEDS_CREDENTIALS);

    // Public means pull, not push.
    let step = "anonymous push to public";
    let args = [
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-no-creds",
        "--dest-no-creds",
        &format!("docker://{public}"),
        &format!("docker://{}/public/app:anonymous", lab.host),
    ];
    refused(&lab, step, "skopeo", &args, NEEDS_CREDENTIALS);
    assert_eq!(stored_tags(&lab, "public/app"), ["v1"], "{step}");
}

#[test]
fn skopeo_with_creds_and_the_auth_file_of_berth_login() {
    let Some(lab) = lab_with_projects("skopeo credentials", &["team"]) else {
        return;
    };
    let image = build(&lab, "creds");
    let digest = push_as_admin(&lab, &image, "team/app:v1");
    let reference = format!("{}/team/app:v1", lab.host);
    let docker = format!("docker://{reference}");

    let step = "skopeo --creds";
    assert_eq!(
        inspect_digest(
            &lab,
            step,
            &[PLAIN, "--creds", &admin_creds(&lab)],
            &reference
        ),
        digest
    );

    // alice logs in with the berth CLI; skopeo finds her in the auth file.
    let step = "berth login, then skopeo with REGISTRY_AUTH_FILE";
    let alice_password = format!("alice-{}", lab.nonce);
    admin_stdin(
        &lab,
        &["create", "user", "alice", "--password-stdin"],
        &format!("{alice_password}\n"),
    );
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
    let alice_env = cli_env(&lab, "alice", alice_auth.clone());
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
    let out = lab.run_env("skopeo", &["inspect", PLAIN, &docker], &alice_env);
    out.expect_success(step);
    assert_eq!(out.json(step)["Digest"].as_str(), Some(digest.as_str()));
    let repository = format!("docker://{}/team/app", lab.host);
    let out = lab.run_env("skopeo", &["list-tags", PLAIN, &repository], &alice_env);
    out.expect_success(step);
    assert_eq!(out.json(step)["Tags"], serde_json::json!(["v1"]), "{step}");

    let step = "berth logout, then skopeo";
    lab.run_env("berth", &["logout"], &alice_env)
        .expect_success(step);
    assert_eq!(
        auth_entry(&alice_auth, &lab.host),
        None,
        "{step}: entry removed"
    );
    let out = lab.run_env("skopeo", &["inspect", PLAIN, &docker], &alice_env);
    out.expect_failure(step);
    out.expect_stderr_any(step, NEEDS_CREDENTIALS);
    // The token itself was revoked, not only forgotten.
    let args = [
        "inspect",
        PLAIN,
        "--creds",
        &format!("alice:{token}"),
        &docker,
    ];
    refused(&lab, step, "skopeo", &args, &["invalid username/password"]);
}

/// berth with `http.tls: auto`, and a certs directory holding its CA.
fn tls_auto_lab(test: &str, tools: &[&str]) -> Option<(Lab, PathBuf)> {
    let lab = start_lab(test, tools, |serve| {
        serve.env("BERTH_HTTP_TLS", "auto").tls()
    })?;
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
    let image = build(&lab, "secure");
    let reference = format!("{}/secure/app:v1", lab.host);
    let verify = "--tls-verify=true";
    let trusted = [verify, "--cert-dir", certs.to_str().unwrap()];

    let step = "podman login --tls-verify=true without the CA";
    let out = podman_login(&lab, &[verify], "admin", &lab.password);
    out.expect_failure(step);
    out.expect_stderr_any(step, UNTRUSTED);
    assert_eq!(auth_entry(&lab.auth_file, &lab.host), None, "{step}");

    let step = "skopeo --tls-verify=true without the CA";
    let docker = format!("docker://{reference}");
    let args = ["inspect", verify, "--creds", &admin_creds(&lab), &docker];
    refused(&lab, step, "skopeo", &args, UNTRUSTED);

    let step = "podman login and push with --cert-dir";
    let out = podman_login(&lab, &trusted, "admin", &lab.password);
    logged_in(&lab, step, &out, "admin", &lab.password);
    let digest = push(&lab, step, &image, "secure/app:v1", &trusted);

    let step = "skopeo inspect with --cert-dir";
    assert_eq!(inspect_digest(&lab, step, &trusted, &reference), digest);
    pull_ok(
        &lab,
        "podman pull with --cert-dir",
        &reference,
        &trusted,
        &image,
    );
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
    let Some(lab) = start_lab("tls reload", &["curl", "skopeo"], |serve| {
        serve
            .env("BERTH_HTTP_TLS_CERTIFICATE", certificate.to_str().unwrap())
            .env("BERTH_HTTP_TLS_KEY", key.to_str().unwrap())
            .tls()
    }) else {
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
    let log = lab.berth.log();
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
    let Some(lab) = start_lab("http.host", CLIENTS, |serve| {
        let public = format!("http://localhost:{}", serve.port());
        serve.env("BERTH_HTTP_HOST", public)
    }) else {
        return;
    };
    let port = lab.host.rsplit_once(':').unwrap().1;
    let public = format!("http://localhost:{port}");

    let step = "the token realm";
    let r = lab.http("GET", "/v2/", false, &[]);
    r.assert_error(step, 401, "UNAUTHORIZED");
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
    let out = podman_login(&lab, &[PLAIN], "admin", &lab.password);
    logged_in(&lab, step, &out, "admin", &lab.password);
    push(&lab, step, &image, "hosted/app:v1", &[PLAIN]);
    let reference = format!("{}/hosted/app:v1", lab.host);
    pull_ok(&lab, step, &reference, &[PLAIN], &image);
    let log = lab.berth.log();
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
        let out = BerthProcess::serve(&data)
            .env("BERTH_HTTP_HOST", bad)
            .run_to_refusal(Duration::from_secs(30))
            .unwrap_or_else(|| {
                panic!("berth serve with http.host {bad:?} is still running after 30 s")
            });
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
