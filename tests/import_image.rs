//! `berth import-image` end to end, with real upstreams the tests start:
//! the reference registry (Debian's `docker-registry`) behind a
//! self-signed certificate, with htpasswd and with token authentication,
//! and a second berth. The CLI is the real binary; podman writes an
//! auth.json with `podman login` and builds a multi-arch index with
//! `podman manifest`. Checked: the exact upstream manifest recorded as a
//! revision, with pull secrets made from `--docker-password` and from
//! podman's auth.json; `--all` capped, newest first, with the cap
//! reported; an index kept whole (PreserveOriginal) or one platform taken
//! (Legacy); `--confirm`; `--insecure` needed for an untrusted upstream;
//! failures as conditions that keep the history; who may import; bad
//! requests refused and recording nothing; and the secret's password in no
//! answer, no CLI output and no log line.
//!
//! Run alone: `cargo test --test import_image -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use reqwest::Method;
use serde_json::{Value, json};

use common::{ReferenceRegistry, RegistryClient, TokenIssuer, status_tag, tag_history};
use lab::{Lab, Ran, clients_present, missing_tools};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What an upstream serves for `repo:reference`: its digest and bytes.
async fn upstream_manifest(
    upstream: &RegistryClient,
    repo: &str,
    reference: &str,
) -> (String, Vec<u8>) {
    let accept = format!(
        "{OCI_INDEX}, application/vnd.docker.distribution.manifest.list.v2+json, {}, {}",
        lab::OCI_MANIFEST,
        lab::DOCKER_MANIFEST
    );
    let answer = upstream
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", accept)
        .send()
        .await
        .expect("upstream manifest");
    assert!(
        answer.status().is_success(),
        "{repo}:{reference}: {}",
        answer.status()
    );
    let digest = answer
        .headers()
        .get("docker-content-digest")
        .expect("Docker-Content-Digest")
        .to_str()
        .unwrap()
        .to_owned();
    (digest, answer.bytes().await.unwrap().to_vec())
}

async fn upstream_digest(upstream: &RegistryClient, repo: &str, reference: &str) -> String {
    upstream_manifest(upstream, repo, reference).await.0
}

/// berth's CLI in the lab, logged in as the admin.
fn berth(lab: &Lab, step: &str, args: &[&str]) -> Ran {
    let ran = lab.run("berth", args);
    ran.expect_success(step);
    ran
}

/// `berth create secret docker-registry NAME -n NS` for `server`.
fn docker_registry_secret(
    lab: &Lab,
    step: &str,
    ns: &str,
    name: &str,
    server: &str,
    user: &str,
    password: &str,
) -> Ran {
    berth(
        lab,
        step,
        &[
            "create",
            "secret",
            "docker-registry",
            name,
            "--docker-server",
            server,
            "--docker-username",
            user,
            "--docker-password",
            password,
            "-n",
            ns,
        ],
    )
}

fn berth_fails(lab: &Lab, step: &str, args: &[&str]) -> Ran {
    let ran = lab.run("berth", args);
    ran.expect_failure(step);
    ran
}

fn keep(seen: &mut Vec<String>, ran: &Ran) {
    seen.push(ran.stdout());
    seen.push(ran.stderr());
}

/// `status.tags[tag]` of a stream as `berth get is -o json` prints it.
fn condition<'a>(stream: &'a Value, tag: &str) -> Option<&'a Value> {
    status_tag(stream, tag)?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ImportSuccess")
}

fn stream_json(lab: &Lab, ns: &str, name: &str) -> Value {
    berth(lab, "get is", &["get", "is", name, "-n", ns, "-o", "json"]).json("get is -o json")
}

fn spec_tags(stream: &Value) -> Vec<String> {
    stream["spec"]["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every output of the CLI so far, the berth log, and the answers given,
/// searched for `password`.
fn assert_never_shown(lab: &Lab, seen: &[String], password: &str) {
    let log = lab.berth.log();
    assert!(log.contains(" DEBUG "), "berth logged no debug lines");
    assert!(
        !log.contains(password),
        "berth's log holds the upstream password"
    );
    for text in seen {
        assert!(!text.contains(password), "shown: {text}");
    }
}

#[test]
fn import_image_from_a_private_upstream() {
    let missing = missing_tools(&["podman", "docker-registry"]);
    if !clients_present("import_image_from_a_private_upstream", &missing) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(upstream) = runtime.block_on(ReferenceRegistry::start_with_htpasswd("puller")) else {
        return;
    };
    let lab = Lab::trusting(&upstream, |serve| {
        serve
            .env(
                "BERTH_IMAGE_POLICY_MAX_IMAGES_BULK_IMPORTED_PER_REPOSITORY",
                "3",
            )
            .env("RUST_LOG", "debug")
    });
    let up = upstream.client();
    let host = upstream.host.clone();
    let password = upstream.password.clone();
    let mut seen: Vec<String> = Vec::new();

    // Upstream: lib/app with five tags, and a two-platform index made by
    // podman.
    let tags = ["1.0", "1.1", "1.2", "1.10", "2.0"];
    for tag in tags {
        runtime.block_on(up.push_image("lib/app", tag));
    }
    let app_digest = runtime.block_on(upstream_digest(&up, "lib/app", "1.0"));
    runtime.block_on(up.push_image("lib/plat", "amd64"));
    runtime.block_on(up.push_image("lib/plat", "arm64"));
    let creds = format!("puller:{password}");
    lab.ok(
        "podman manifest create",
        "podman",
        &["manifest", "create", "multi-list"],
    );
    for arch in ["amd64", "arm64"] {
        lab.ok(
            "podman manifest add",
            "podman",
            &[
                "manifest",
                "add",
                "--tls-verify=false",
                "--creds",
                &creds,
                "--os",
                "linux",
                "--arch",
                arch,
                "multi-list",
                &format!("docker://{host}/lib/plat:{arch}"),
            ],
        );
    }
    lab.ok(
        "podman manifest push",
        "podman",
        &[
            "manifest",
            "push",
            "--all",
            "--tls-verify=false",
            "--creds",
            &creds,
            "multi-list",
            &format!("docker://{host}/lib/multi:1"),
        ],
    );
    let (index_digest, index) = runtime.block_on(upstream_manifest(&up, "lib/multi", "1"));
    let index: Value = serde_json::from_slice(&index).expect("the index as JSON");
    // The index's own entries (podman may have rewritten the images it
    // pushed with it).
    let amd64_digest = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .and_then(|m| m["digest"].as_str())
        .expect("a linux/amd64 entry")
        .to_owned();

    lab.berth_login_as_admin();
    berth(&lab, "new-project", &["new-project", "team"]);
    let from = format!("{host}/lib/app:1.0");

    // Without --confirm, no stream is made.
    let ran = berth_fails(
        &lab,
        "no --confirm",
        &["import-image", "app:1.0", "--from", &from, "-n", "team"],
    );
    assert!(ran.stderr().contains("--confirm"), "{}", ran.describe());
    berth_fails(&lab, "no stream made", &["get", "is", "app", "-n", "team"]);

    // No secret yet: the upstream refuses, the tag says so.
    let ran = berth_fails(
        &lab,
        "import without a secret",
        &[
            "import-image",
            "app:1.0",
            "--from",
            &from,
            "--confirm",
            "-n",
            "team",
        ],
    );
    keep(&mut seen, &ran);
    assert!(
        ran.stdout().contains("imported with errors"),
        "{}",
        ran.describe()
    );
    assert!(
        ran.stderr().contains("error: tag 1.0 failed"),
        "{}",
        ran.describe()
    );
    let stream = stream_json(&lab, "team", "app");
    let refused = condition(&stream, "1.0").expect("an ImportSuccess condition");
    assert_eq!(refused["status"], "False");
    assert_eq!(refused["reason"], "Unauthorized");
    assert!(tag_history(&stream, "1.0").is_empty());

    // A secret made with --docker-password: imported again from the spec
    // tag, without --from.
    keep(
        &mut seen,
        &docker_registry_secret(
            &lab,
            "create secret",
            "team",
            "upstream",
            &host,
            "puller",
            &password,
        ),
    );
    let ran = berth(
        &lab,
        "import again",
        &["import-image", "app:1.0", "-n", "team"],
    );
    keep(&mut seen, &ran);
    assert!(
        ran.stdout()
            .contains("imagestream.image.openshift.io/app imported"),
        "{}",
        ran.describe()
    );
    assert!(ran.stdout().contains(&app_digest), "{}", ran.describe());
    let stream = stream_json(&lab, "team", "app");
    assert_eq!(tag_history(&stream, "1.0"), vec![app_digest.clone()]);
    assert!(
        condition(&stream, "1.0").is_none(),
        "the failure's condition stays: {stream}"
    );
    let spec = &stream["spec"]["tags"][0];
    assert_eq!(spec["from"]["kind"], "DockerImage");
    assert_eq!(spec["from"]["name"], from.as_str());
    assert_eq!(spec["importPolicy"]["importMode"], "PreserveOriginal");
    assert_eq!(spec["referencePolicy"]["type"], "Source");
    let item = &status_tag(&stream, "1.0").unwrap()["items"][0];
    assert_eq!(
        item["dockerImageReference"],
        format!("{host}/lib/app@{app_digest}")
    );
    assert_eq!(item["cause"], "Import");
    // The exact upstream bytes, served by berth.
    let client = RegistryClient::new(lab.url.clone(), "admin", &lab.password);
    let (ours, theirs) = runtime.block_on(async {
        let ours = client.get_manifest("team/app", "1.0").await;
        assert_eq!(ours.status(), 200);
        let theirs = upstream_manifest(&up, "lib/app", &app_digest).await.1;
        (ours.bytes().await.unwrap().to_vec(), theirs)
    });
    assert_eq!(ours, theirs);
    // Importing what is already there adds no revision.
    berth(
        &lab,
        "import unchanged",
        &["import-image", "app:1.0", "-n", "team"],
    );
    assert_eq!(
        tag_history(&stream_json(&lab, "team", "app"), "1.0").len(),
        1
    );

    // --all: the newest three of five, the rest reported.
    let ran = berth(
        &lab,
        "import --all",
        &[
            "import-image",
            "all",
            "--from",
            &format!("{host}/lib/app"),
            "--all",
            "--confirm",
            "-n",
            "team",
        ],
    );
    assert!(
        ran.stdout()
            .contains("the upstream repository has 5 tags; the newest 3 were imported"),
        "{}",
        ran.describe()
    );
    assert!(
        ran.stdout().contains("left out: 1.1, 1.0"),
        "{}",
        ran.describe()
    );
    let mut imported = spec_tags(&stream_json(&lab, "team", "all"));
    imported.sort();
    assert_eq!(imported, vec!["1.10", "1.2", "2.0"]);

    // An index kept whole, and one platform of it.
    berth(
        &lab,
        "import an index",
        &[
            "import-image",
            "multi:1",
            "--from",
            &format!("{host}/lib/multi:1"),
            "--confirm",
            "-n",
            "team",
        ],
    );
    let istag = berth(
        &lab,
        "get istag",
        &["get", "istag", "multi:1", "-n", "team", "-o", "json"],
    )
    .json("istag");
    assert_eq!(istag["image"]["metadata"]["name"], index_digest.as_str());
    let platforms: Vec<&str> = istag["image"]["dockerImageManifests"]
        .as_array()
        .expect("the index's manifests")
        .iter()
        .map(|m| m["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, vec!["amd64", "arm64"]);
    let child = runtime.block_on(client.get_manifest("team/multi", &amd64_digest));
    assert_eq!(child.status(), 200, "the index's children are recorded too");
    berth(
        &lab,
        "import one platform",
        &[
            "import-image",
            "legacy:1",
            "--from",
            &format!("{host}/lib/multi:1"),
            "--import-mode",
            "Legacy",
            "--confirm",
            "-n",
            "team",
        ],
    );
    let stream = stream_json(&lab, "team", "legacy");
    assert_eq!(tag_history(&stream, "1"), vec![amd64_digest.clone()]);
    assert_eq!(
        stream["spec"]["tags"][0]["importPolicy"]["importMode"],
        "Legacy"
    );

    // A secret made from the auth.json `podman login` writes, in another
    // project.
    let auth_file = lab.dir().join("upstream-auth.json");
    let auth_path = auth_file.display().to_string();
    lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "--authfile",
            &auth_path,
            "-u",
            "puller",
            "--password-stdin",
            &host,
        ],
        &format!("{password}\n"),
    )
    .expect_success("podman login");
    berth(&lab, "second project", &["new-project", "other"]);
    keep(
        &mut seen,
        &berth(
            &lab,
            "secret from auth.json",
            &[
                "create",
                "secret",
                "generic",
                "podman-login",
                "--from-file",
                &format!(".dockerconfigjson={auth_path}"),
                "--type",
                "kubernetes.io/dockerconfigjson",
                "-n",
                "other",
            ],
        ),
    );
    keep(
        &mut seen,
        &berth(
            &lab,
            "import with podman's login",
            &[
                "import-image",
                "app:1.0",
                "--from",
                &from,
                "--confirm",
                "-n",
                "other",
            ],
        ),
    );
    assert_eq!(
        tag_history(&stream_json(&lab, "other", "app"), "1.0"),
        vec![app_digest.clone()]
    );

    // Who may import: editors, not viewers nor pullers.
    let api = |user: &str, body: &Value| {
        let as_user = RegistryClient::new(lab.url.clone(), user, &format!("{user}-pw"));
        runtime.block_on(as_user.api_call(
            Method::POST,
            "/api/v1/namespaces/team/imagestreamimports",
            Some(body.clone()),
        ))
    };
    let admin_client = client.clone();
    runtime.block_on(async {
        for (user, role) in [
            ("viewer", "registry-viewer"),
            ("editor", "registry-editor"),
            ("puller", "system:image-puller"),
        ] {
            admin_client
                .create_user(user, Some(&format!("{user}-pw")), false)
                .await;
            admin_client
                .bind(Some("team"), role, &json!({"kind": "User", "name": user}))
                .await;
        }
    });
    let body = |name: &str, import: bool| {
        json!({"metadata": {"name": name}, "spec": {"import": import, "images": [
            {"from": {"kind": "DockerImage", "name": from}, "to": {"name": "1.0"}}]}})
    };
    for user in ["viewer", "puller"] {
        let answer = api(user, &body("byrole", true));
        assert_eq!(answer.status, 403, "{user}: {}", answer.body);
    }
    let answer = api("editor", &body("byrole", true));
    assert_eq!(answer.status, 201, "{}", answer.body);
    seen.push(answer.body.to_string());
    let status = &answer.body["status"];
    assert_eq!(status["images"][0]["status"]["status"], "Success");
    assert_eq!(
        status["images"][0]["image"]["metadata"]["name"],
        app_digest.as_str()
    );
    assert_eq!(status["import"]["metadata"]["name"], "byrole");

    // Only looking (spec.import false) records nothing.
    let answer = api("editor", &body("looked", false));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.body["status"]["images"][0]["status"]["status"],
        "Success"
    );
    assert!(answer.body["status"].get("import").is_none());
    berth_fails(
        &lab,
        "looking made no stream",
        &["get", "is", "looked", "-n", "team"],
    );

    // Bad requests: refused, nothing recorded.
    for bad in [
        json!({"metadata": {"name": "bad"}, "spec": {"import": true}}),
        json!({"metadata": {"name": "bad"}, "spec": {"import": true, "images": [
            {"from": {"kind": "ImageStreamTag", "name": "app:1.0"}}]}}),
        json!({"metadata": {"name": "bad"}, "spec": {"import": true, "images": [
            {"from": {"kind": "DockerImage", "name": "Not A Reference"}}]}}),
        json!({"metadata": {"name": "bad"}, "spec": {"import": true, "images": [
            {"from": {"kind": "DockerImage", "name": from}, "importPolicy": {"importMode": "Some"}}]}}),
        json!({"spec": {"import": true, "images": [
            {"from": {"kind": "DockerImage", "name": from}}]}}),
    ] {
        let answer = api("editor", &bad);
        assert_eq!(answer.status, 422, "{bad}: {}", answer.body);
        assert_eq!(answer.body["kind"], "Status", "{}", answer.body);
    }
    berth_fails(
        &lab,
        "bad requests made no stream",
        &["get", "is", "bad", "-n", "team"],
    );

    // A manifest the upstream does not have: a condition naming it, the
    // history kept.
    let ran = berth_fails(
        &lab,
        "import a missing tag",
        &[
            "import-image",
            "app:1.0",
            "--from",
            &format!("{host}/lib/app:9.9"),
            "-n",
            "team",
        ],
    );
    assert!(ran.stderr().contains("not found"), "{}", ran.describe());
    let stream = stream_json(&lab, "team", "app");
    assert_eq!(tag_history(&stream, "1.0"), vec![app_digest.clone()]);
    assert_eq!(
        condition(&stream, "1.0").expect("condition")["reason"],
        "NotFound"
    );

    // The describe shows the condition.
    let described = berth(
        &lab,
        "describe is",
        &["describe", "is", "app", "-n", "team"],
    )
    .stdout();
    assert!(described.contains("NotFound"), "{described}");
    seen.push(described);

    assert_never_shown(&lab, &seen, &password);
}

/// An upstream whose certificate berth does not trust is refused unless
/// the import says `--insecure`; so is a plain-HTTP one (a second berth);
/// and the reference registry with token authentication works through its
/// token service.
#[test]
fn insecure_upstreams_and_token_authentication() {
    let missing = missing_tools(&["docker-registry"]);
    if !clients_present("insecure_upstreams_and_token_authentication", &missing) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(upstream) = runtime.block_on(ReferenceRegistry::start_with_htpasswd("puller")) else {
        return;
    };
    let up = upstream.client();
    runtime.block_on(up.push_image("lib/app", "1.0"));
    let app_digest = runtime.block_on(upstream_digest(&up, "lib/app", "1.0"));
    let host = upstream.host.clone();
    // No trusted CA configured; scheduled checks every second.
    let lab = Lab::start("python3".into(), |serve| {
        serve.env(
            "BERTH_IMAGE_POLICY_SCHEDULED_IMAGE_IMPORT_MINIMUM_INTERVAL_SECONDS",
            "1",
        )
    });
    lab.berth_login_as_admin();
    berth(&lab, "new-project", &["new-project", "team"]);
    docker_registry_secret(
        &lab,
        "secret",
        "team",
        "upstream",
        &host,
        "puller",
        &upstream.password,
    );
    let from = format!("{host}/lib/app:1.0");
    let ran = berth_fails(
        &lab,
        "untrusted",
        &[
            "import-image",
            "app:1.0",
            "--from",
            &from,
            "--confirm",
            "-n",
            "team",
        ],
    );
    assert!(ran.stderr().contains("--insecure"), "{}", ran.describe());
    let stream = stream_json(&lab, "team", "app");
    assert_eq!(
        condition(&stream, "1.0").unwrap()["reason"],
        "TLSVerificationFailed"
    );
    berth(
        &lab,
        "insecure",
        &[
            "import-image",
            "app:1.0",
            "--from",
            &from,
            "--insecure",
            "-n",
            "team",
        ],
    );
    let stream = stream_json(&lab, "team", "app");
    assert_eq!(tag_history(&stream, "1.0"), vec![app_digest]);
    assert_eq!(stream["spec"]["tags"][0]["importPolicy"]["insecure"], true);

    // A second berth, over plain HTTP on loopback.
    let second = Lab::new("python3".into());
    let second_client = RegistryClient::new(second.url.clone(), "admin", &second.password);
    let pushed = runtime.block_on(second_client.push_image("src/app", "v1"));
    let second_host = second.host.clone();
    docker_registry_secret(
        &lab,
        "secret for the second berth",
        "team",
        "second",
        &second_host,
        "admin",
        &second.password,
    );
    let from_berth = format!("{second_host}/src/app:v1");
    berth_fails(
        &lab,
        "plain HTTP refused",
        &[
            "import-image",
            "copy:v1",
            "--from",
            &from_berth,
            "--confirm",
            "-n",
            "team",
        ],
    );
    berth(
        &lab,
        "plain HTTP with --insecure",
        &[
            "import-image",
            "copy:v1",
            "--from",
            &from_berth,
            "--insecure",
            "--scheduled",
            "-n",
            "team",
        ],
    );
    assert_eq!(
        tag_history(&stream_json(&lab, "team", "copy"), "v1"),
        vec![pushed.digest.clone()]
    );
    // A new push upstream: the scheduled check records it as a revision.
    let repushed = runtime.block_on(async {
        let next = second_client.push_image("src/app", "v2").await;
        second_client
            .push_manifest("src/app", "v1", &next.manifest)
            .await;
        next
    });
    assert_ne!(repushed.digest, pushed.digest);
    let started = std::time::Instant::now();
    loop {
        let seen = tag_history(&stream_json(&lab, "team", "copy"), "v1");
        if seen == [repushed.digest.clone(), pushed.digest.clone()] {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the new upstream push was not imported: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    // The reference registry with token authentication.
    let issuer = runtime.block_on(TokenIssuer::start("tokenuser"));
    let Some(tokened) = runtime.block_on(ReferenceRegistry::start_with_tokens(&issuer)) else {
        return;
    };
    let token_push = RegistryClient::new(
        format!("https://{}", tokened.host),
        "tokenuser",
        &issuer.password,
    )
    .over_tls(&tokened.ca.ca_pem, false)
    .with_bearer(&issuer.mint("lib/tok", &["push", "pull"]));
    let pushed = runtime.block_on(token_push.push_image("lib/tok", "1"));
    docker_registry_secret(
        &lab,
        "secret for the token upstream",
        "team",
        "tokened",
        &tokened.host,
        "tokenuser",
        &issuer.password,
    );
    berth(
        &lab,
        "import through a token service",
        &[
            "import-image",
            "tok:1",
            "--from",
            &format!("{}/lib/tok:1", tokened.host),
            "--insecure",
            "--confirm",
            "-n",
            "team",
        ],
    );
    assert_eq!(
        tag_history(&stream_json(&lab, "team", "tok"), "1"),
        vec![pushed.digest]
    );
    assert!(issuer.requests() > 0, "berth did not ask the token service");
}
