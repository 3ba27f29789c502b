//! Interoperability with real registry clients: buildah builds two tiny
//! images, podman logs in, pushes (OCI and Docker v2s2) and pulls them back,
//! buildah does the same with a login of its own, skopeo inspects, lists,
//! copies, re-tags, syncs and deletes, the `oras` Python library pushes and
//! pulls an artifact and attaches referrers, and skopeo checks that
//! credentials are required.
//!
//! Docker, in a test of its own: a private Docker engine (Debian's
//! `docker.io`, started by the test without networking) logs in, builds
//! two images from scratch, pushes them, pulls them back, and pushes and
//! pulls a manifest list made with `docker manifest`.
//!
//! The clients run against the real `berth` binary on a free loopback port,
//! each run with private storage, auth file and home directory (the harness
//! is `clients/lab.rs`, shared with `clients_access.rs`). A missing client
//! fails the test when `BERTH_REQUIRE_CLIENTS=1` (as in CI) and is otherwise
//! reported loudly as skipped.
//!
//! Run alone: `cargo test --test clients -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use lab::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ARTIFACT_TYPE: &str = "application/vnd.example.berth.notes.v1+json";
const ARTIFACT_FILE_TYPE: &str = "application/vnd.example.berth.notes.file.v1";
const SBOM_TYPE: &str = "application/vnd.example.berth.sbom.v1+json";
const SIGNATURE_TYPE: &str = "application/vnd.example.berth.signature.v1";

#[test]
fn real_clients_interoperate() {
    let Some(python) = check_clients() else {
        return;
    };
    let started = Instant::now();
    let lab = Lab::new(python);
    eprintln!(
        "berth on {} (work dir {}, berth log {})",
        lab.host,
        lab.dir().display(),
        lab.berth.log_path().display()
    );

    let images = build_images(&lab);
    step_done("1 buildah: two images built from scratch", started);

    let pushed = podman(&lab, &images);
    step_done("2 podman: login, push (oci, v2s2), pull back", started);

    buildah(&lab, &images);
    step_done("2b buildah: login, push (oci, v2s2), pull back", started);

    skopeo(&lab, &pushed);
    step_done(
        "3 skopeo: inspect, list-tags, copy, re-tag, sync, delete",
        started,
    );

    oras(&lab, &pushed);
    step_done("4 oras: artifact push/pull, referrers", started);

    credentials(&lab, &pushed);
    step_done("5 credentials: --creds, --no-creds", started);

    podman_search(&lab, &pushed);
    step_done("6 podman search: the catalog", started);

    podman_logout(&lab, &pushed);
    step_done("7 podman logout: pulls refused", started);
}

fn step_done(what: &str, started: Instant) {
    eprintln!("ok [{:>5.1}s] {what}", started.elapsed().as_secs_f64());
}

/// Checks that every client is installed. `Some(python)` to go on; `None`
/// to skip (only when `BERTH_REQUIRE_CLIENTS` is not set).
fn check_clients() -> Option<String> {
    let python = std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut missing = missing_tools(&["skopeo", "podman", "buildah", "tar"]);
    let oras = std::process::Command::new(&python)
        .args(["-c", "import oras.client, oras.oci, oras.defaults"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !oras.is_ok_and(|s| s.success()) {
        missing.push(format!(
            "the python module `oras` (for {python}; `pip install oras`)"
        ));
    }
    clients_present("real-client interop test", &missing).then_some(python)
}

// ---------------------------------------------------------------------------
// Step 1: buildah builds two images from scratch.

struct Images {
    /// Committed as OCI, pushed as OCI.
    alpha: BuiltImage,
    /// Committed as Docker, pushed with `--format v2s2`.
    beta: BuiltImage,
}

fn build_images(lab: &Lab) -> Images {
    let context = lab.mkdir("context");
    let nonce = lab.nonce.clone();
    let alpha = build_image(
        lab,
        &context,
        "alpha",
        "oci",
        vec![
            (
                "/hello.txt".into(),
                format!("hello from alpha {nonce}\n").into(),
            ),
            ("/etc/alpha.conf".into(), b"answer = 42\n".to_vec()),
        ],
    );
    let beta = build_image(
        lab,
        &context,
        "beta",
        "docker",
        vec![("/beta.txt".into(), format!("beta {nonce}\n").into())],
    );
    assert_ne!(alpha.id, beta.id, "the two images must differ");
    Images { alpha, beta }
}

// ---------------------------------------------------------------------------
// Step 2: podman login, push, pull.

/// An image as it is in berth.
#[derive(Clone)]
struct Pushed {
    /// `HOST/repo` without tag.
    repo: String,
    tag: String,
    digest: String,
    media_type: &'static str,
    /// Size of the manifest in bytes.
    size: usize,
    label: String,
    entrypoint: Vec<String>,
    id: String,
}

impl Pushed {
    fn reference(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }

    fn docker(&self) -> String {
        format!("docker://{}", self.reference())
    }

    /// Repository name without the host.
    fn name(&self) -> &str {
        self.repo.split_once('/').unwrap().1
    }
}

struct PushedImages {
    alpha: Pushed,
    beta: Pushed,
}

fn podman(lab: &Lab, images: &Images) -> PushedImages {
    let host = lab.host.as_str();

    // A wrong password is refused, and nothing is stored.
    let step = "2 podman login (wrong password)";
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "--username",
            "admin",
            "--password-stdin",
            host,
        ],
        "not-the-password\n",
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["invalid username/password", "unauthorized", "401"]);
    let auth = std::fs::read_to_string(&lab.auth_file).unwrap();
    assert!(
        !auth.contains(host),
        "{step}: a failed login must not store credentials, auth file: {auth}"
    );

    // Pushing without logging in is refused.
    let step = "2 podman push (not logged in)";
    let out = lab.run(
        "podman",
        &[
            "push",
            "--tls-verify=false",
            &images.alpha.local,
            &format!("docker://{host}/interop/alpha:v1"),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["authentication required", "unauthorized", "401"]);

    let step = "2 podman login";
    let out = lab.run_with_stdin(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "--username",
            "admin",
            "--password-stdin",
            host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{step}: expected `Login Succeeded`\n{}",
        out.describe()
    );
    let auth: Value = serde_json::from_str(&std::fs::read_to_string(&lab.auth_file).unwrap())
        .expect("auth file is JSON");
    assert!(
        auth["auths"][host]["auth"].is_string(),
        "{step}: credentials for {host} in the auth file: {auth}"
    );

    let alpha = podman_push(lab, &images.alpha, "interop/alpha", "oci");
    let beta = podman_push(lab, &images.beta, "interop/beta", "v2s2");
    for (pushed, built) in [(&alpha, &images.alpha), (&beta, &images.beta)] {
        podman_pull_back(lab, pushed, built);
    }

    // Pull by digest, into a fresh store entry.
    let step = "2 podman pull by digest";
    let by_digest = format!("{}@{}", beta.repo, beta.digest);
    lab.ok(step, "podman", &["rmi", "--force", &beta.reference()]);
    let out = lab.ok(step, "podman", &["pull", "--tls-verify=false", &by_digest]);
    assert_eq!(
        last_line(&out),
        images.beta.id,
        "{step}: image id\n{}",
        out.describe()
    );

    PushedImages { alpha, beta }
}

fn podman_push(lab: &Lab, image: &BuiltImage, name: &str, format: &str) -> Pushed {
    let step = format!("2 podman push --format {format} ({name})");
    let repo = format!("{}/{name}", lab.host);
    let digest_file = lab.dir().join(format!("{}.digest", name.replace('/', "_")));
    lab.ok(
        &step,
        "podman",
        &[
            "push",
            "--tls-verify=false",
            "--format",
            format,
            "--digestfile",
            digest_file.to_str().unwrap(),
            &image.local,
            &format!("docker://{repo}:v1"),
        ],
    );
    let digest = read_digest_file(&step, &digest_file);

    // Ask berth directly: the manifest is there under the tag and the digest,
    // with the media type podman chose.
    let media_type = if format == "oci" {
        OCI_MANIFEST
    } else {
        DOCKER_MANIFEST
    };
    let mut size = 0;
    for reference in ["v1", digest.as_str()] {
        let r = lab.http(
            "GET",
            &format!("/v2/{name}/manifests/{reference}"),
            true,
            &[("Accept", &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))],
        );
        assert_eq!(r.status, 200, "{step}: GET manifest {reference}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some(media_type),
            "{step}: Content-Type of manifest {reference}"
        );
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "{step}: Docker-Content-Digest of {reference}"
        );
        assert_eq!(sha256_digest(&r.body), digest, "{step}: manifest bytes");
        size = r.body.len();
    }
    Pushed {
        repo,
        tag: "v1".into(),
        digest,
        media_type,
        size,
        label: image.label.clone(),
        entrypoint: image.entrypoint.clone(),
        id: image.id.clone(),
    }
}

fn podman_pull_back(lab: &Lab, pushed: &Pushed, built: &BuiltImage) {
    let step = format!("2 podman pull ({})", pushed.name());
    let reference = pushed.reference();
    // Remove every local copy so that the pull has to fetch everything.
    lab.ok(&step, "podman", &["rmi", "--force", &built.local]);
    let out = lab.run("podman", &["image", "exists", &built.local]);
    assert!(
        !out.status.success(),
        "{step}: {} still exists after rmi",
        built.local
    );

    let out = lab.ok(&step, "podman", &["pull", "--tls-verify=false", &reference]);
    let pulled_id = last_line(&out);
    assert_eq!(
        pulled_id,
        built.id,
        "{step}: image id after the round trip (config digest) differs\n{}",
        out.describe()
    );
    let out = lab.ok(&step, "podman", &["image", "inspect", &reference]);
    let inspect = out.json(&step);
    let inspect = &inspect[0];
    assert_eq!(
        inspect["Id"].as_str(),
        Some(built.id.as_str()),
        "{step}: Id"
    );
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(pushed.digest.as_str()),
        "{step}: manifest digest seen by podman after pull"
    );
    let repo_digest = format!("{}@{}", pushed.repo, pushed.digest);
    assert!(
        inspect["RepoDigests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d.as_str() == Some(&repo_digest))),
        "{step}: RepoDigests should contain {repo_digest}: {}",
        inspect["RepoDigests"]
    );
    assert_eq!(
        inspect["Labels"][LABEL_KEY].as_str(),
        Some(built.label.as_str()),
        "{step}: label after pull"
    );
    assert_eq!(
        inspect["Config"]["Entrypoint"],
        json!(built.entrypoint),
        "{step}: entrypoint after pull"
    );

    assert_files_in_storage(lab, &step, &reference, built);
}

/// The files `built` was made of are in the image `reference` of local
/// containers-storage, byte for byte: the image is exported to a directory
/// and its layers unpacked.
fn assert_files_in_storage(lab: &Lab, step: &str, reference: &str, built: &BuiltImage) {
    let exported = lab.mkdir(&format!(
        "exported-{}",
        reference.replace(['/', ':', '@'], "_")
    ));
    lab.ok(
        step,
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("containers-storage:{reference}"),
            &format!("dir:{}", exported.display()),
        ],
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(exported.join("manifest.json")).unwrap()).unwrap();
    let mut found = BTreeSet::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let blob = std::fs::read(exported.join(hex)).unwrap();
        let listing = lab.ok(
            step,
            "tar",
            &[
                "-xvf",
                lab.write(&format!("layer-{hex}"), &blob).to_str().unwrap(),
                "-C",
                exported.to_str().unwrap(),
            ],
        );
        found.extend(listing.stdout().lines().map(|l| l.to_owned()));
    }
    for (path, bytes) in &built.files {
        let on_disk = exported.join(path.trim_start_matches('/'));
        let got = std::fs::read(&on_disk).unwrap_or_else(|e| {
            panic!("{step}: {path} not in the pulled layers ({e}); layer listing: {found:?}")
        });
        assert_eq!(
            &got, bytes,
            "{step}: content of {path} after the round trip"
        );
    }
}

// ---------------------------------------------------------------------------
// Step 2b: buildah login, push, pull.

/// buildah logs in (with an auth file of its own, so that podman's login
/// cannot stand in for it), pushes both images to new repositories, and
/// pulls them back after removing every local copy.
fn buildah(lab: &Lab, images: &Images) {
    let host = lab.host.as_str();
    let auth_file = lab.write("buildah-auth.json", b"{}");
    let auth_file = auth_file.to_str().unwrap();

    let step = "2b buildah push (not logged in)";
    let out = lab.run(
        "buildah",
        &[
            "push",
            "--authfile",
            auth_file,
            "--tls-verify=false",
            &images.alpha.id,
            &format!("docker://{host}/buildah/alpha:v1"),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["authentication required", "unauthorized", "401"]);

    let step = "2b buildah login";
    let out = lab.run_with_stdin(
        "buildah",
        &[
            "login",
            "--authfile",
            auth_file,
            "--tls-verify=false",
            "--username",
            "admin",
            "--password-stdin",
            host,
        ],
        &format!("{}\n", lab.password),
    );
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{step}: expected `Login Succeeded`\n{}",
        out.describe()
    );

    for (built, format, media_type) in [
        (&images.alpha, "oci", OCI_MANIFEST),
        (&images.beta, "v2s2", DOCKER_MANIFEST),
    ] {
        let name = format!("buildah/{}", image_name(built));
        let step = format!("2b buildah push --format {format} ({name})");
        let reference = format!("{host}/{name}:v1");
        let digest_file = lab
            .dir()
            .join(format!("buildah-{}.digest", image_name(built)));
        lab.ok(
            &step,
            "buildah",
            &[
                "push",
                "--authfile",
                auth_file,
                "--tls-verify=false",
                "--format",
                format,
                "--digestfile",
                digest_file.to_str().unwrap(),
                &built.id,
                &format!("docker://{reference}"),
            ],
        );
        let digest = read_digest_file(&step, &digest_file);
        let r = lab.http(
            "GET",
            &format!("/v2/{name}/manifests/v1"),
            true,
            &[("Accept", &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))],
        );
        assert_eq!(r.status, 200, "{step}: GET manifest: {r:?}");
        assert_eq!(r.header("content-type"), Some(media_type), "{step}");
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "{step}"
        );
        assert_eq!(sha256_digest(&r.body), digest, "{step}: manifest bytes");
        let manifest: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            manifest["config"]["digest"].as_str(),
            Some(format!("sha256:{}", built.id).as_str()),
            "{step}: the config pushed is the image's"
        );

        let step = format!("2b buildah pull ({name})");
        lab.ok(&step, "buildah", &["rmi", "--force", &built.id]);
        let out = lab.run("buildah", &["inspect", "--type", "image", &built.id]);
        assert!(
            !out.status.success(),
            "{step}: image {} still exists after rmi",
            built.id
        );
        let out = lab.ok(
            &step,
            "buildah",
            &[
                "pull",
                "--authfile",
                auth_file,
                "--tls-verify=false",
                &reference,
            ],
        );
        assert_eq!(
            last_line(&out),
            built.id,
            "{step}: image id after the round trip\n{}",
            out.describe()
        );
        let out = lab.ok(
            &step,
            "buildah",
            &["inspect", "--type", "image", &reference],
        );
        let inspect = out.json(&step);
        assert_eq!(
            inspect["OCIv1"]["config"]["Labels"][LABEL_KEY].as_str(),
            Some(built.label.as_str()),
            "{step}: label after pull"
        );
        assert_files_in_storage(lab, &step, &reference, built);
    }
}

/// `alpha` of `localhost/berth-interop/alpha:v1`.
fn image_name(built: &BuiltImage) -> &str {
    let (_, last) = built.local.rsplit_once('/').unwrap();
    last.split_once(':').unwrap().0
}

// ---------------------------------------------------------------------------
// Step 3: skopeo.

fn skopeo(lab: &Lab, pushed: &PushedImages) {
    let host = lab.host.as_str();
    let tls = "--tls-verify=false";

    // inspect, inspect --config, inspect --raw, for both formats.
    for image in [&pushed.alpha, &pushed.beta] {
        let step = format!("3 skopeo inspect ({})", image.name());
        let out = lab.ok(&step, "skopeo", &["inspect", tls, &image.docker()]);
        let inspect = out.json(&step);
        assert_eq!(
            inspect["Name"].as_str(),
            Some(image.repo.as_str()),
            "{step}: Name"
        );
        assert_eq!(
            inspect["Digest"].as_str(),
            Some(image.digest.as_str()),
            "{step}: Digest"
        );
        let layers = inspect["Layers"].as_array().expect("Layers");
        assert_eq!(layers.len(), 1, "{step}: one layer per image: {layers:?}");
        assert!(
            layers.iter().all(|l| l
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:") && is_hex64(&d[7..]))),
            "{step}: layer digests {layers:?}"
        );
        assert_eq!(
            inspect["Labels"][LABEL_KEY].as_str(),
            Some(image.label.as_str()),
            "{step}: Labels"
        );
        assert_eq!(inspect["RepoTags"], json!(["v1"]), "{step}: RepoTags");

        let step = format!("3 skopeo inspect --config ({})", image.name());
        let out = lab.ok(
            &step,
            "skopeo",
            &["inspect", "--config", "--raw", tls, &image.docker()],
        );
        assert_eq!(
            sha256_digest(&out.stdout),
            format!("sha256:{}", image.id),
            "{step}: raw config bytes should hash to the image id"
        );
        let out = lab.ok(
            &step,
            "skopeo",
            &["inspect", "--config", tls, &image.docker()],
        );
        let config = out.json(&step);
        assert_eq!(
            config["config"]["Labels"][LABEL_KEY].as_str(),
            Some(image.label.as_str()),
            "{step}: label in config"
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            json!(image.entrypoint),
            "{step}: entrypoint in config"
        );
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(1),
            "{step}: rootfs.diff_ids"
        );

        let step = format!("3 skopeo inspect --raw ({})", image.name());
        let out = lab.ok(&step, "skopeo", &["inspect", "--raw", tls, &image.docker()]);
        assert_eq!(
            sha256_digest(&out.stdout),
            image.digest,
            "{step}: raw manifest bytes must hash to the digest"
        );
        let raw = out.json(&step);
        assert_eq!(raw["schemaVersion"], json!(2), "{step}: schemaVersion");
        let (config_type, manifest_type) = if image.media_type == OCI_MANIFEST {
            (
                OCI_CONFIG,
                raw["mediaType"].as_str().unwrap_or(OCI_MANIFEST),
            )
        } else {
            (DOCKER_CONFIG, raw["mediaType"].as_str().unwrap_or("(none)"))
        };
        assert_eq!(manifest_type, image.media_type, "{step}: mediaType");
        assert_config(&raw, config_type, &format!("sha256:{}", image.id), &step);
    }

    let step = "3 skopeo list-tags";
    assert_eq!(list_tags(lab, step, &pushed.alpha.repo), ["v1"]);
    assert_eq!(list_tags(lab, step, &pushed.beta.repo), ["v1"]);

    // registry → OCI layout → registry under a new name, digest kept.
    let step = "3 skopeo copy docker → oci layout";
    let layout = lab.dir().join("layout");
    lab.ok(
        step,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &pushed.alpha.docker(),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let in_layout = &index["manifests"][0];
    assert_eq!(
        in_layout["digest"].as_str(),
        Some(pushed.alpha.digest.as_str()),
        "{step}: digest in the OCI layout's index.json: {index}"
    );
    assert_eq!(
        in_layout["annotations"]["org.opencontainers.image.ref.name"].as_str(),
        Some("v1"),
        "{step}: tag in the OCI layout"
    );

    let step = "3 skopeo copy oci layout → docker (new name)";
    let copied = format!("{host}/copies/alpha-from-layout:v1");
    lab.ok(
        step,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{copied}"),
        ],
    );
    assert_eq!(
        raw_digest(lab, step, &copied),
        pushed.alpha.digest,
        "{step}: digest after registry → layout → registry"
    );

    // registry → registry, digest kept.
    let step = "3 skopeo copy docker → docker --preserve-digests";
    let mirror = format!("{host}/mirror/beta:v1");
    lab.ok(
        step,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &pushed.beta.docker(),
            &format!("docker://{mirror}"),
        ],
    );
    assert_eq!(raw_digest(lab, step, &mirror), pushed.beta.digest, "{step}");
    // The blobs were mounted or copied: the mirror pulls on its own.
    let out = lab.ok(
        step,
        "skopeo",
        &["inspect", tls, &format!("docker://{mirror}")],
    );
    assert_eq!(
        out.json(step)["Digest"].as_str(),
        Some(pushed.beta.digest.as_str()),
        "{step}: inspect of the mirror"
    );

    // Re-tag by copying within the repository.
    let step = "3 skopeo re-tag (copy :v1 → :v2)";
    let v2 = format!("docker://{}:v2", pushed.alpha.repo);
    lab.ok(
        step,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &pushed.alpha.docker(),
            &v2,
        ],
    );
    assert_eq!(list_tags(lab, step, &pushed.alpha.repo), ["v1", "v2"]);
    assert_eq!(
        raw_digest(lab, step, &format!("{}:v2", pushed.alpha.repo)),
        pushed.alpha.digest,
        "{step}: v2 must be the same manifest as v1"
    );

    // sync a repository to a directory and back under another namespace.
    let step = "3 skopeo sync docker → dir";
    let synced = lab.mkdir("sync");
    lab.ok(
        step,
        "skopeo",
        &[
            "sync",
            "--src",
            "docker",
            "--dest",
            "dir",
            "--src-tls-verify=false",
            &pushed.alpha.repo,
            synced.to_str().unwrap(),
        ],
    );
    let mut dirs: Vec<String> = std::fs::read_dir(&synced)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        ["alpha:v1", "alpha:v2"],
        "{step}: one directory per tag in {}",
        synced.display()
    );
    for dir in &dirs {
        let manifest = std::fs::read(synced.join(dir).join("manifest.json")).unwrap();
        assert_eq!(
            sha256_digest(&manifest),
            pushed.alpha.digest,
            "{step}: manifest of {dir} on disk"
        );
    }

    let step = "3 skopeo sync dir → docker (other namespace)";
    lab.ok(
        step,
        "skopeo",
        &[
            "sync",
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            synced.to_str().unwrap(),
            &format!("{host}/synced"),
        ],
    );
    let synced_repo = format!("{host}/synced/alpha");
    assert_eq!(list_tags(lab, step, &synced_repo), ["v1", "v2"], "{step}");
    for tag in ["v1", "v2"] {
        assert_eq!(
            raw_digest(lab, step, &format!("{synced_repo}:{tag}")),
            pushed.alpha.digest,
            "{step}: digest of synced/alpha:{tag}"
        );
    }

    // delete by digest: the mirror copy goes, the original stays.
    let step = "3 skopeo delete (by digest)";
    lab.ok(
        step,
        "skopeo",
        &[
            "delete",
            tls,
            &format!("docker://{host}/mirror/beta@{}", pushed.beta.digest),
        ],
    );
    let out = lab.run("skopeo", &["inspect", tls, &format!("docker://{mirror}")]);
    out.expect_failure(&format!("{step}: inspect of the deleted tag"));
    out.expect_stderr_any(
        step,
        &["manifest unknown", "not found", "MANIFEST_UNKNOWN", "404"],
    );
    let out = lab.run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            tls,
            &format!("docker://{host}/mirror/beta@{}", pushed.beta.digest),
        ],
    );
    out.expect_failure(&format!("{step}: inspect of the deleted digest"));
    let out = lab.run(
        "skopeo",
        &["list-tags", tls, &format!("docker://{host}/mirror/beta")],
    );
    if out.status.success() {
        let tags = out.json(step)["Tags"].clone();
        assert_eq!(tags, json!([]), "{step}: tags of mirror/beta after delete");
    } else {
        // A repository with nothing left may also be unknown altogether.
        out.expect_stderr_any(step, &["NAME_UNKNOWN", "name unknown", "404"]);
    }
    assert_eq!(
        raw_digest(lab, step, &pushed.beta.reference()),
        pushed.beta.digest,
        "{step}: interop/beta (same digest, other repository) must be unaffected"
    );
}

fn list_tags(lab: &Lab, step: &str, repo: &str) -> Vec<String> {
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ],
    );
    let listing = out.json(step);
    assert_eq!(
        listing["Repository"].as_str(),
        Some(repo),
        "{step}: list-tags Repository"
    );
    let mut tags: Vec<String> = listing["Tags"]
        .as_array()
        .unwrap_or_else(|| panic!("{step}: list-tags without Tags: {listing}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

/// Digest of the manifest bytes `skopeo inspect --raw` fetches.
fn raw_digest(lab: &Lab, step: &str, reference: &str) -> String {
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    sha256_digest(&out.stdout)
}

// ---------------------------------------------------------------------------
// Step 4: oras (Python library).

fn oras(lab: &Lab, pushed: &PushedImages) {
    let step = "4 oras";
    let host = lab.host.as_str();
    let nonce = lab.nonce.as_str();
    let notes = lab.write(
        "oras/release-notes.md",
        format!("# Release notes {nonce}\n\nBinary \u{0}\u{1}\u{2} and text.\n").as_bytes(),
    );
    let notes_config = lab.write(
        "oras/notes-config.json",
        format!("{{\"generator\":\"berth-interop\",\"nonce\":\"{nonce}\"}}").as_bytes(),
    );
    let sbom = lab.write(
        "oras/sbom.spdx.json",
        format!("{{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"alpha-{nonce}\"}}").as_bytes(),
    );
    let sbom_config = lab.write("oras/sbom-config.json", b"{\"kind\":\"sbom\"}");
    let signature = lab.write("oras/alpha.sig", format!("signature {nonce}").as_bytes());
    let token_flow_bytes = format!("pushed with bearer tokens {nonce}").into_bytes();
    let token_flow_file = lab.write("oras/token-flow.txt", &token_flow_bytes);
    let subject = json!({
        "mediaType": pushed.alpha.media_type,
        "digest": pushed.alpha.digest,
        "size": pushed.alpha.size,
    });
    let jobs = json!({
        "artifact": {
            "target": format!("{host}/artifacts/notes:v1"),
            "file": notes,
            "file_media_type": ARTIFACT_FILE_TYPE,
            "config": notes_config,
            "config_media_type": ARTIFACT_TYPE,
            "annotations": {"org.example.nonce": nonce},
        },
        "attach": {
            "target": format!("{}:alpha-sbom", pushed.alpha.repo),
            "file": sbom,
            "config": sbom_config,
            "config_media_type": SBOM_TYPE,
            "subject": subject,
        },
        "attach_typed": {
            "target": format!("{}:alpha-sig", pushed.alpha.repo),
            "file": signature,
            "file_media_type": "application/octet-stream",
            "artifact_type": SIGNATURE_TYPE,
            "subject": subject,
        },
        "token_flow": {
            "target": format!("{host}/artifacts/token-flow:v1"),
            "file": token_flow_file,
            "file_media_type": ARTIFACT_FILE_TYPE,
        },
    });
    let result = lab.run_oras(step, jobs);
    eprintln!("oras-py {}", result["oras_version"]);

    // oras-py's default auth: a bearer token per scope, asked again when a
    // pull token is refused for a push (403, error="insufficient_scope").
    let flow = &result["token_flow"];
    assert_eq!(
        flow["backend"], "TokenAuth",
        "{step}: default backend: {flow}"
    );
    assert_eq!(
        flow["push"]["status"],
        json!(201),
        "{step}: push with the token flow: {flow}"
    );
    let pulled = flow["pulled"].as_array().cloned().unwrap_or_default();
    assert_eq!(pulled.len(), 1, "{step}: pull with the token flow: {flow}");
    assert_eq!(
        pulled[0]["digest"].as_str(),
        Some(sha256_digest(&token_flow_bytes).as_str()),
        "{step}: the file pulled with the token flow: {flow}"
    );

    // Push: accepted, and the manifest berth holds is what oras wrote.
    let push = &result["push"];
    assert_eq!(
        push["status"],
        json!(201),
        "{step}: push of the artifact: {push}"
    );
    let artifact_digest = push["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{step}: no Docker-Content-Digest on the push: {push}"))
        .to_owned();
    let manifest = &result["manifest"];
    // The config's media type is the artifact type.
    let config_digest = sha256_digest(&std::fs::read(&notes_config).unwrap());
    assert_config(manifest, ARTIFACT_TYPE, &config_digest, step);
    assert_eq!(
        manifest["layers"][0]["mediaType"].as_str(),
        Some(ARTIFACT_FILE_TYPE),
        "{step}: layer media type"
    );
    assert_eq!(
        manifest["annotations"]["org.example.nonce"].as_str(),
        Some(nonce),
        "{step}: manifest annotation"
    );
    let r = lab.http(
        "GET",
        &format!("/v2/artifacts/notes/manifests/{artifact_digest}"),
        true,
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!(
        r.status, 200,
        "{step}: GET artifact manifest by digest: {r:?}"
    );
    assert_eq!(
        sha256_digest(&r.body),
        artifact_digest,
        "{step}: artifact digest"
    );
    assert_eq!(
        list_tags(lab, step, &format!("{host}/artifacts/notes")),
        ["v1"],
        "{step}: the artifact's tag"
    );

    // Pull: one file, byte for byte what was pushed.
    let pulled = result["pulled"].as_array().expect("pulled");
    assert_eq!(pulled.len(), 1, "{step}: pulled files: {pulled:?}");
    let pulled_path = PathBuf::from(pulled[0]["path"].as_str().unwrap());
    assert_eq!(
        pulled_path.file_name(),
        notes.file_name(),
        "{step}: pulled file name (from the title annotation)"
    );
    assert_eq!(
        std::fs::read(&pulled_path).unwrap(),
        std::fs::read(&notes).unwrap(),
        "{step}: pulled content must equal the pushed file"
    );

    // Referrers: both attached artifacts are listed for the image.
    let attach = &result["attach"];
    assert_eq!(
        attach["status"],
        json!(201),
        "{step}: attach push: {attach}"
    );
    let sbom_digest = attach["digest"]
        .as_str()
        .expect("digest of attach")
        .to_owned();
    assert_eq!(
        result["attach_manifest"]["subject"]["digest"].as_str(),
        Some(pushed.alpha.digest.as_str()),
        "{step}: subject in the attached manifest"
    );
    let typed = &result["attach_typed"];
    assert_eq!(typed["status"], json!(201), "{step}: typed attach: {typed}");
    let sig_digest = typed["digest"]
        .as_str()
        .expect("digest of typed attach")
        .to_owned();
    assert_eq!(
        result["attach_typed_manifest"]["artifactType"].as_str(),
        Some(SIGNATURE_TYPE),
        "{step}: artifactType kept in the manifest"
    );

    let referrers_path = format!(
        "/v2/{}/referrers/{}",
        pushed.alpha.name(),
        pushed.alpha.digest
    );
    let r = lab.http("GET", &referrers_path, true, &[]);
    assert_eq!(r.status, 200, "{step}: GET {referrers_path}: {r:?}");
    assert_eq!(
        r.header("content-type"),
        Some(OCI_INDEX),
        "{step}: referrers Content-Type"
    );
    let index: Value = serde_json::from_slice(&r.body).expect("referrers JSON");
    assert_eq!(index["schemaVersion"], json!(2), "{step}: {index}");
    assert_eq!(
        index["mediaType"].as_str(),
        Some(OCI_INDEX),
        "{step}: {index}"
    );
    let listed: BTreeSet<(String, String, String)> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap_or_default().to_owned(),
                d["artifactType"].as_str().unwrap_or_default().to_owned(),
                d["mediaType"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        (sbom_digest.clone(), SBOM_TYPE.into(), OCI_MANIFEST.into()),
        (
            sig_digest.clone(),
            SIGNATURE_TYPE.into(),
            OCI_MANIFEST.into(),
        ),
    ]
    .into();
    assert_eq!(listed, expected, "{step}: referrers of alpha: {index}");
    for descriptor in index["manifests"].as_array().unwrap() {
        let digest = descriptor["digest"].as_str().unwrap();
        let r = lab.http(
            "GET",
            &format!("/v2/{}/manifests/{digest}", pushed.alpha.name()),
            true,
            &[("Accept", OCI_MANIFEST)],
        );
        assert_eq!(
            descriptor["size"].as_u64(),
            Some(r.body.len() as u64),
            "{step}: size in the referrer descriptor of {digest}"
        );
    }
    let sig = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"].as_str() == Some(sig_digest.as_str()))
        .unwrap();
    assert_eq!(
        sig["annotations"]["org.opencontainers.image.created"].as_str(),
        Some("2024-01-01T00:00:00Z"),
        "{step}: annotations of the referrer: {sig}"
    );

    // Filtering by artifactType.
    let filtered_path = format!("{referrers_path}?artifactType={SIGNATURE_TYPE}");
    let r = lab.http("GET", &filtered_path, true, &[]);
    assert_eq!(r.status, 200, "{step}: GET {filtered_path}: {r:?}");
    assert_eq!(
        r.header("oci-filters-applied"),
        Some("artifactType"),
        "{step}: OCI-Filters-Applied"
    );
    let index: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(|m| m
            .iter()
            .map(|d| d["digest"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()),
        Some(vec![sig_digest.clone()]),
        "{step}: filtered referrers: {index}"
    );

    // The referrers API needs credentials like everything else.
    let r = lab.http("GET", &referrers_path, false, &[]);
    r.assert_error(
        &format!("{step}: anonymous referrers request"),
        401,
        "UNAUTHORIZED",
    );

    // The image itself is unchanged, with the artifact tags beside it.
    assert_eq!(
        list_tags(lab, step, &pushed.alpha.repo),
        ["alpha-sbom", "alpha-sig", "v1", "v2"],
        "{step}: tags of interop/alpha"
    );
    assert_eq!(
        raw_digest(lab, step, &pushed.alpha.reference()),
        pushed.alpha.digest,
        "{step}: the subject image"
    );
    let other = format!(
        "/v2/{}/referrers/{}",
        pushed.beta.name(),
        pushed.beta.digest
    );
    let r = lab.http("GET", &other, true, &[]);
    assert_eq!(r.status, 200, "{step}: GET {other}: {r:?}");
    let index: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        index["manifests"],
        json!([]),
        "{step}: beta has no referrers"
    );
}

// ---------------------------------------------------------------------------
// Step 5: credentials on the command line.

fn credentials(lab: &Lab, pushed: &PushedImages) {
    let empty_auth = lab.write("empty-auth.json", b"{}");
    let empty_auth = empty_auth.to_str().unwrap();
    let image = pushed.beta.docker();

    let step = "5 skopeo --creds admin:<password>";
    let creds = format!("admin:{}", lab.password);
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            empty_auth,
            "--creds",
            &creds,
            &image,
        ],
    );
    assert_eq!(
        out.json(step)["Digest"].as_str(),
        Some(pushed.beta.digest.as_str()),
        "{step}: digest"
    );
    let out = lab.ok(
        step,
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            "--authfile",
            empty_auth,
            "--creds",
            &creds,
            &format!("docker://{}", pushed.beta.repo),
        ],
    );
    assert_eq!(out.json(step)["Tags"], json!(["v1"]), "{step}: list-tags");

    for (step, args) in [
        ("5 skopeo without credentials", vec!["--no-creds"]),
        (
            "5 skopeo with an empty auth file",
            vec!["--authfile", empty_auth],
        ),
        (
            "5 skopeo --creds admin:<wrong>",
            vec!["--authfile", empty_auth, "--creds", "admin:wrong-password"],
        ),
        (
            "5 skopeo --creds <unknown user>",
            vec!["--authfile", empty_auth, "--creds", "nobody:whatever"],
        ),
    ] {
        let mut full = vec!["inspect", "--tls-verify=false"];
        full.extend(args);
        full.push(&image);
        let out = lab.run("skopeo", &full);
        out.expect_failure(step);
        out.expect_stderr_any(
            step,
            &[
                "authentication required",
                "unauthorized",
                "401",
                "invalid username/password",
            ],
        );
    }

    let step = "5 skopeo copy without credentials";
    let out = lab.run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-no-creds",
            &image,
            &format!("dir:{}", lab.mkdir("anonymous-copy").display()),
        ],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["authentication required", "unauthorized", "401"]);
}

// ---------------------------------------------------------------------------
// Step 6: the catalog, as `podman search` reads it.

/// containers/image (podman, skopeo) lists `/v2/_catalog` for `podman
/// search HOST/TERM` and filters the names by TERM itself.
fn podman_search(lab: &Lab, pushed: &PushedImages) {
    let step = "6 podman search (catalog)";
    let out = lab.ok(
        step,
        "podman",
        &[
            "search",
            "--tls-verify=false",
            "--format",
            "{{.Name}}",
            &format!("{}/interop", lab.host),
        ],
    );
    let mut names: Vec<&str> = out_lines(&out);
    names.sort();
    assert_eq!(
        names,
        [pushed.alpha.repo.as_str(), pushed.beta.repo.as_str()],
        "{step}\n{}",
        out.describe()
    );
    // podman 4.3 ignores --format with --list-tags: a NAME TAG table.
    let out = lab.ok(
        step,
        "podman",
        &[
            "search",
            "--tls-verify=false",
            "--list-tags",
            &pushed.alpha.repo,
        ],
    );
    let rows: Vec<String> = out_lines(&out)
        .iter()
        .skip(1)
        .map(|row| row.split_whitespace().collect::<Vec<_>>().join(":"))
        .collect();
    // By now alpha carries the re-tag (step 3) and the oras referrers' tags (step 4).
    let expected: Vec<String> = ["alpha-sbom", "alpha-sig", "v1", "v2"]
        .iter()
        .map(|tag| format!("{}:{tag}", pushed.alpha.repo))
        .collect();
    assert_eq!(rows, expected, "{step}: --list-tags\n{}", out.describe());
}

// ---------------------------------------------------------------------------
// Step 7: after podman logout, nothing is pulled.

fn podman_logout(lab: &Lab, pushed: &PushedImages) {
    let step = "7 podman logout, then pull";
    lab.ok(step, "podman", &["logout", &lab.host]);
    let out = lab.run(
        "podman",
        &["pull", "--tls-verify=false", &pushed.beta.reference()],
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["authentication required", "unauthorized", "401"]);
}

// ---------------------------------------------------------------------------
// Docker: a private engine logs in, builds, pushes, pulls, and pushes a
// manifest list.

const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image docker built and pushed.
struct DockerImage {
    /// `HOST/docker/app:TAG`.
    reference: String,
    tag: String,
    /// `sha256:…` of the image config (docker's image id).
    id: String,
    /// The manifest's digest, as `docker push` printed it.
    digest: String,
    file: (String, Vec<u8>),
    label: String,
}

#[test]
fn docker_logs_in_pushes_pulls_and_pushes_a_manifest_list() {
    let test = "docker interop test";
    if !clients_present(test, &missing_tools(&["docker", "dockerd", "tar"])) {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new("python3".into());
    let mut engine = match DockerEngine::start(&lab, &lab.dir().join("docker"), &lab.host) {
        Ok(engine) => engine,
        Err(why) => {
            // Fails when BERTH_REQUIRE_CLIENTS=1, else skips loudly.
            clients_present(test, &[format!("a Docker engine that starts: {why}")]);
            return;
        }
    };
    eprintln!(
        "docker: berth on {}, dockerd on {} (work dir {})",
        lab.host,
        engine.host,
        lab.dir().display()
    );
    let docker = Docker {
        lab: &lab,
        engine: &engine,
    };
    step_done("docker 1: a private engine started", started);

    docker_login(&docker);
    step_done("docker 2: login (wrong password refused)", started);

    let mut images = [
        docker_build(&docker, "v1", "hello.txt"),
        docker_build(&docker, "v2", "other.txt"),
    ];
    for image in &mut images {
        docker_push(&docker, image);
    }
    step_done("docker 3: build from scratch, push", started);

    for image in &images {
        docker_pull_back(&docker, image);
    }
    step_done("docker 4: pull back", started);

    docker_manifest_list(&docker, &images);
    step_done("docker 5: manifest list pushed and pulled", started);

    docker_logout(&docker, &images[0]);
    step_done("docker 6: logout, pulls refused", started);

    let ended = engine.stop();
    assert!(ended.starts_with("stopped"), "dockerd {ended}");
}

/// The docker client, pointed at the lab's private engine.
struct Docker<'a> {
    lab: &'a Lab,
    engine: &'a DockerEngine,
}

impl Docker<'_> {
    fn run(&self, args: &[&str]) -> Ran {
        self.lab.run_env("docker", args, &self.engine.env())
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Ran {
        self.lab
            .run_inner("docker", args, Some(stdin), &self.engine.env())
    }

    fn ok(&self, step: &str, args: &[&str]) -> Ran {
        let ran = self.run(args);
        ran.expect_success(step);
        ran
    }

    /// `docker image inspect --format FORMAT reference`, trimmed.
    fn inspect(&self, step: &str, format: &str, reference: &str) -> String {
        let out = self.ok(step, &["image", "inspect", "--format", format, reference]);
        out.stdout().trim().to_owned()
    }

    /// The client's config file, where `docker login` keeps credentials.
    fn config(&self) -> String {
        std::fs::read_to_string(self.lab.dir().join("home/.docker/config.json")).unwrap_or_default()
    }
}

fn docker_login(docker: &Docker) {
    let host = docker.lab.host.as_str();
    let step = "docker 2 login (wrong password)";
    let out = docker.run_with_stdin(
        &["login", "--username", "admin", "--password-stdin", host],
        "not-the-password\n",
    );
    out.expect_failure(step);
    out.expect_stderr_any(step, &["unauthorized", "401"]);
    assert!(
        !docker.config().contains(host),
        "{step}: a failed login stores nothing: {}",
        docker.config()
    );

    let step = "docker 2 login";
    let out = docker.run_with_stdin(
        &["login", "--username", "admin", "--password-stdin", host],
        &format!("{}\n", docker.lab.password),
    );
    out.expect_success(step);
    assert!(
        out.stdout().contains("Login Succeeded"),
        "{step}: expected `Login Succeeded`\n{}",
        out.describe()
    );
    let config: Value = serde_json::from_str(&docker.config()).expect("docker config is JSON");
    assert!(
        config["auths"][host]["auth"].is_string(),
        "{step}: credentials for {host} in the docker config: {config}"
    );
}

/// Builds `FROM scratch` + one file + a label, tagged `HOST/docker/app:TAG`.
fn docker_build(docker: &Docker, tag: &str, file: &str) -> DockerImage {
    let lab = docker.lab;
    let step = format!("docker 3 build ({tag})");
    let context = lab.mkdir(&format!("docker-context-{tag}"));
    let bytes = format!("{file} from docker {}\n", lab.nonce).into_bytes();
    std::fs::write(context.join(file), &bytes).unwrap();
    let label = format!("docker-{tag}-{}", lab.nonce);
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM scratch\nADD {file} /{file}\nLABEL {LABEL_KEY}={label}\n"),
    )
    .unwrap();
    let reference = format!("{}/docker/app:{tag}", lab.host);
    docker.ok(
        &step,
        &[
            "build",
            "--network=none",
            "--tag",
            &reference,
            context.to_str().unwrap(),
        ],
    );
    let id = docker.inspect(&step, "{{.Id}}", &reference);
    assert!(
        id.strip_prefix("sha256:").is_some_and(is_hex64),
        "{step}: image id {id:?}"
    );
    DockerImage {
        reference,
        tag: tag.to_owned(),
        id,
        digest: String::new(),
        file: (format!("/{file}"), bytes),
        label,
    }
}

/// `docker push`; berth then holds the manifest `docker push` reported,
/// under the tag, naming the image's config.
fn docker_push(docker: &Docker, image: &mut DockerImage) {
    let step = format!("docker 3 push ({})", image.tag);
    let out = docker.ok(&step, &["push", &image.reference]);
    // "v1: digest: sha256:… size: 528"
    let digest = out
        .stdout()
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(&format!("{}: digest: ", image.tag))?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("{step}: no digest printed\n{}", out.describe()));

    let r = docker.lab.http(
        "GET",
        &format!("/v2/docker/app/manifests/{}", image.tag),
        true,
        &[("Accept", DOCKER_MANIFEST)],
    );
    assert_eq!(r.status, 200, "{step}: GET manifest: {r:?}");
    assert_eq!(r.header("content-type"), Some(DOCKER_MANIFEST), "{step}");
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.as_str()),
        "{step}"
    );
    assert_eq!(sha256_digest(&r.body), digest, "{step}: manifest bytes");
    let manifest: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(image.id.as_str()),
        "{step}: the config pushed is the image's"
    );
    image.digest = digest;
}

/// Removes the image locally, pulls it back, and compares: digest, image
/// id, label, and the file's bytes (copied out of a container made from
/// it, never started).
fn docker_pull_back(docker: &Docker, image: &DockerImage) {
    let step = format!("docker 4 pull ({})", image.tag);
    docker.ok(&step, &["rmi", &image.reference]);
    let out = docker.run(&["image", "inspect", &image.id]);
    assert!(
        !out.status.success(),
        "{step}: {} still exists after rmi\n{}",
        image.id,
        out.describe()
    );

    let out = docker.ok(&step, &["pull", &image.reference]);
    assert!(
        out.stdout().contains(&format!("Digest: {}", image.digest)),
        "{step}: pulled digest\n{}",
        out.describe()
    );
    assert_eq!(docker.inspect(&step, "{{.Id}}", &image.reference), image.id);
    assert_eq!(
        docker.inspect(
            &step,
            &format!("{{{{index .Config.Labels \"{LABEL_KEY}\"}}}}"),
            &image.reference
        ),
        image.label,
        "{step}: label after pull"
    );
    assert_file_in_docker_image(docker, &step, &image.reference, &image.file);
}

/// `file` (path, bytes) is in the image `reference` of the engine.
fn assert_file_in_docker_image(
    docker: &Docker,
    step: &str,
    reference: &str,
    (path, bytes): &(String, Vec<u8>),
) {
    let out = docker.ok(step, &["create", reference, "/none"]);
    let container = last_line(&out).to_owned();
    let copied = docker.lab.mkdir(&format!("docker-copied-{container}"));
    docker.ok(
        step,
        &[
            "cp",
            &format!("{container}:{path}"),
            copied.to_str().unwrap(),
        ],
    );
    docker.ok(step, &["rm", &container]);
    let name = path.rsplit('/').next().unwrap();
    let got = std::fs::read(copied.join(name))
        .unwrap_or_else(|e| panic!("{step}: {path} copied out of the image: {e}"));
    assert_eq!(
        &got, bytes,
        "{step}: content of {path} after the round trip"
    );
}

/// `docker manifest create` + `push` a list of both images (the second
/// annotated with another architecture), checked in berth; then pulled,
/// the engine picks this machine's image from it.
fn docker_manifest_list(docker: &Docker, images: &[DockerImage; 2]) {
    let step = "docker 5 manifest list";
    let [native, other] = images;
    let arch = docker.inspect(step, "{{.Architecture}}", &native.reference);
    let foreign_arch = if arch == "riscv64" {
        "arm64"
    } else {
        "riscv64"
    };
    let list = format!("{}/docker/app:multi", docker.lab.host);
    docker.ok(
        step,
        &[
            "manifest",
            "create",
            "--insecure",
            &list,
            &native.reference,
            &other.reference,
        ],
    );
    docker.ok(
        step,
        &[
            "manifest",
            "annotate",
            "--arch",
            foreign_arch,
            &list,
            &other.reference,
        ],
    );
    let out = docker.ok(step, &["manifest", "push", "--insecure", &list]);
    let digest = last_line(&out).to_owned();
    assert!(
        digest.strip_prefix("sha256:").is_some_and(is_hex64),
        "{step}: `docker manifest push` should print the digest\n{}",
        out.describe()
    );

    let r = docker.lab.http(
        "GET",
        "/v2/docker/app/manifests/multi",
        true,
        &[("Accept", DOCKER_MANIFEST_LIST)],
    );
    assert_eq!(r.status, 200, "{step}: GET the list: {r:?}");
    assert_eq!(
        r.header("content-type"),
        Some(DOCKER_MANIFEST_LIST),
        "{step}"
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.as_str()),
        "{step}"
    );
    assert_eq!(sha256_digest(&r.body), digest, "{step}: list bytes");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let entries: Vec<(String, String, String)> = body["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{step}: no manifests in {body}"))
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], DOCKER_MANIFEST, "{step}: {m}");
            (
                m["digest"].as_str().unwrap_or_default().to_owned(),
                m["platform"]["architecture"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                m["platform"]["os"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (native.digest.clone(), arch.clone(), "linux".to_owned()),
            (
                other.digest.clone(),
                foreign_arch.to_owned(),
                "linux".to_owned()
            ),
        ],
        "{step}: the list's entries"
    );

    // Pulled by the list's tag, the engine resolves it to this machine's
    // image.
    for image in images {
        docker.ok(step, &["rmi", &image.reference]);
    }
    let out = docker.ok(step, &["pull", &list]);
    assert!(
        out.stdout().contains(&format!("Digest: {digest}")),
        "{step}: pulled the list\n{}",
        out.describe()
    );
    assert_eq!(docker.inspect(step, "{{.Id}}", &list), native.id, "{step}");
    assert_file_in_docker_image(docker, step, &list, &native.file);
    docker.ok(step, &["rmi", &list]);
}

/// After `docker logout` the credentials are gone and pulls are refused.
fn docker_logout(docker: &Docker, image: &DockerImage) {
    let step = "docker 6 logout";
    let host = docker.lab.host.as_str();
    docker.ok(step, &["logout", host]);
    assert!(
        !docker.config().contains(host),
        "{step}: credentials left: {}",
        docker.config()
    );
    let out = docker.run(&["pull", &image.reference]);
    out.expect_failure(step);
    out.expect_stderr_any(
        step,
        &["unauthorized", "authentication required", "no basic auth"],
    );
}
