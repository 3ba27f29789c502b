//! Pull-through with real clients and a real upstream: the reference
//! registry (Debian's `docker-registry`) with htpasswd behind a
//! self-signed certificate, an image built by buildah pushed to it with
//! podman.
//!
//! - The seeds' "sharing an image stream between projects" flow, second
//!   option: `berth import-image myis --confirm --reference-policy local
//!   --from UPSTREAM/myorg/myimage -n shared` with the upstream's
//!   credentials in a pull secret of `shared`; `berth policy
//!   add-role-to-group system:image-puller system:serviceaccounts:myapp -n
//!   shared`; then `podman pull` and `skopeo copy` of `shared/myis` with a
//!   token of a service account of `myapp`, which has no upstream
//!   credentials. Each blob leaves the upstream once (its access log), and
//!   the image still pulls with the upstream stopped.
//! - A proxy namespace (`berth create proxy hub --upstream https://…
//!   --secret up`): `podman pull berth/hub/myorg/myimage:1` fetched and
//!   cached; `podman push` into it refused.
//!
//! Run alone: `cargo test --test pull_through_clients -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use common::ReferenceRegistry;
use lab::{BuiltImage, Lab, Ran, build_image, clients_present, last_line, missing_tools};

const PLAIN: &str = "--tls-verify=false";

fn berth(lab: &Lab, args: &[&str]) -> Ran {
    lab.berth_env(args, &[])
}

/// A two-file image built by buildah and pushed to the upstream as
/// `myorg/myimage:TAG`.
fn push_upstream(lab: &Lab, upstream: &ReferenceRegistry, tag: &str) -> BuiltImage {
    let context = lab.mkdir(&format!("context-{tag}"));
    let image = build_image(
        lab,
        &context,
        &format!("myimage-{tag}"),
        "oci",
        vec![
            (
                "/app.txt".into(),
                format!("app {tag} {}\n", lab.nonce).into_bytes(),
            ),
            ("/data.bin".into(), vec![tag.len() as u8; 3 << 20]),
        ],
    );
    let creds = format!("{}:{}", upstream.user, upstream.password);
    lab.ok(
        "push to the upstream",
        "podman",
        &[
            "push",
            PLAIN,
            "--creds",
            &creds,
            &image.local,
            &format!("docker://{}/myorg/myimage:{tag}", upstream.host),
        ],
    );
    image
}

fn pull(lab: &Lab, step: &str, reference: &str, creds: &str) {
    lab.ok(
        step,
        "podman",
        &["pull", PLAIN, "--creds", creds, reference],
    );
}

#[test]
fn a_shared_stream_imported_with_reference_policy_local_is_pulled_through_by_another_project() {
    let missing = missing_tools(&["podman", "skopeo", "buildah", "docker-registry"]);
    if !clients_present(
        "a_shared_stream_imported_with_reference_policy_local_is_pulled_through_by_another_project",
        &missing,
    ) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(mut upstream) = runtime.block_on(ReferenceRegistry::start_with_htpasswd("puller"))
    else {
        return;
    };
    let lab = Lab::trusting(&upstream, |serve| serve);
    let image = push_upstream(&lab, &upstream, "latest");
    let host = upstream.host.clone();

    lab.berth_login_as_admin();
    berth(&lab, &["new-project", "shared"]);
    berth(&lab, &["new-project", "myapp"]);
    berth(
        &lab,
        &[
            "create",
            "secret",
            "docker-registry",
            "upstream",
            "--docker-server",
            &host,
            "--docker-username",
            &upstream.user,
            "--docker-password",
            &upstream.password,
            "-n",
            "shared",
        ],
    );
    let imported = berth(
        &lab,
        &[
            "import-image",
            "myis",
            "--confirm",
            "--reference-policy",
            "local",
            "--from",
            &format!("{host}/myorg/myimage"),
            "-n",
            "shared",
        ],
    );
    assert!(
        imported.stdout().contains("imported"),
        "{}",
        imported.describe()
    );
    let described = berth(&lab, &["describe", "is", "myis", "-n", "shared"]);
    assert!(
        described.stdout().contains("blobs: 0 of 3 stored in berth")
            || described.stdout().contains("blobs: 0 of 2 stored in berth"),
        "{}",
        described.describe()
    );
    berth(
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
    let builder = lab.service_account_creds("myapp", "builder", &[]);
    let reference = format!("{}/shared/myis:latest", lab.host);

    // podman pulls through berth; skopeo copies the same image after it.
    pull(&lab, "podman pull through berth", &reference, &builder);
    let inspected = lab.ok(
        "podman inspect",
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", &reference],
    );
    assert_eq!(last_line(&inspected), image.id, "the image podman got");
    let copied = lab.dir().join("copied");
    lab.ok(
        "skopeo copy through berth",
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &builder,
            &format!("docker://{reference}"),
            &format!("oci:{}", copied.display()),
        ],
    );
    // Each blob left the upstream once, for two pulls.
    let blob_gets = upstream.access_log_lines("GET /v2/myorg/myimage/blobs/sha256:");
    let described = berth(&lab, &["describe", "is", "myis", "-n", "shared"]);
    let stored_line = described
        .stdout()
        .lines()
        .find(|l| l.contains("blobs:"))
        .map(str::to_owned)
        .expect("a blobs line in describe");
    assert!(stored_line.contains("all"), "{stored_line}");
    let total: usize = stored_line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a count");
    assert_eq!(blob_gets, total, "upstream blob GETs for two pulls");

    // The upstream gone: the image still pulls from berth.
    upstream.daemon.stop();
    lab.ok("podman rmi", "podman", &["rmi", "-f", &reference]);
    pull(
        &lab,
        "podman pull with the upstream stopped",
        &reference,
        &builder,
    );
    upstream.daemon.start();

    // The service account has no rights upstream, and none in berth
    // beyond pulling: a push into shared is refused.
    let refused = lab.run(
        "podman",
        &[
            "push",
            PLAIN,
            "--creds",
            &builder,
            &image.local,
            &format!("docker://{}/shared/mine:1", lab.host),
        ],
    );
    refused.expect_failure("push as an image puller");
}

#[test]
fn a_proxy_namespace_caches_the_upstream_for_podman() {
    let missing = missing_tools(&["podman", "buildah", "docker-registry"]);
    if !clients_present("a_proxy_namespace_caches_the_upstream_for_podman", &missing) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(upstream) = runtime.block_on(ReferenceRegistry::start_with_htpasswd("puller")) else {
        return;
    };
    let lab = Lab::trusting(&upstream, |serve| serve);
    let image = push_upstream(&lab, &upstream, "1");
    lab.berth_login_as_admin();
    let created = berth(
        &lab,
        &[
            "create",
            "proxy",
            "hub",
            "--upstream",
            &format!("https://{}", upstream.host),
            "--secret",
            "up",
            "--ttl",
            "1h",
        ],
    );
    assert!(created.stdout().contains("hub"), "{}", created.describe());
    // The secret named by the proxy, made after it.
    berth(
        &lab,
        &[
            "create",
            "secret",
            "docker-registry",
            "up",
            "--docker-server",
            &upstream.host,
            "--docker-username",
            &upstream.user,
            "--docker-password",
            &upstream.password,
            "-n",
            "hub",
        ],
    );
    let listed = berth(&lab, &["get", "proxies"]);
    assert!(
        listed
            .stdout()
            .contains(&format!("https://{}", upstream.host)),
        "{}",
        listed.describe()
    );
    let admin = format!("admin:{}", lab.password);
    let reference = format!("{}/hub/myorg/myimage:1", lab.host);
    pull(&lab, "podman pull through the proxy", &reference, &admin);
    let inspected = lab.ok(
        "podman inspect",
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", &reference],
    );
    assert_eq!(last_line(&inspected), image.id);
    let gets = upstream.access_log_lines("GET /v2/myorg/myimage/blobs/sha256:");
    lab.ok("podman rmi", "podman", &["rmi", "-f", &reference]);
    pull(&lab, "podman pull from the cache", &reference, &admin);
    assert_eq!(
        upstream.access_log_lines("GET /v2/myorg/myimage/blobs/sha256:"),
        gets,
        "the second pull came from berth"
    );
    let refused = lab.run(
        "podman",
        &[
            "push",
            PLAIN,
            "--creds",
            &admin,
            &image.local,
            &format!("docker://{}/hub/mine:1", lab.host),
        ],
    );
    refused.expect_failure("push into a proxy namespace");
    assert!(
        refused.stderr().contains("pull-through cache"),
        "{}",
        refused.describe()
    );
}
