//! Image streams end to end, over a socket: pushes feed each tag's history
//! (who, when, from where), pulls by tag get the newest revision, a tag
//! rolls back (by generation or by tagging an earlier image) as a new
//! revision, tagging links images across projects, aliases follow their
//! source, external images are recorded for the importer, and bad input
//! changes nothing. The API story runs on the embedded database and on
//! PostgreSQL; the CLI (`berth get is`, `describe is`, `tag`, `rollback`,
//! `get istag -o yaml`, …) runs as the real binary against a real server.
//!
//! Run alone: `cargo test --test image_streams -- --nocapture`.

mod common;

use common::*;
use serde_json::{Value, json};

const STREAM: &str = "/api/v1/namespaces/proj/imagestreams/app";

fn istag(name: &str) -> String {
    format!("/api/v1/namespaces/proj/imagestreamtags/{name}")
}

/// `status.tags[tag].items` of a stream.
fn items(stream: &Value, tag: &str) -> Vec<Value> {
    stream["status"]["tags"]
        .as_array()
        .expect("status.tags")
        .iter()
        .find(|t| t["tag"] == tag)
        .map(|t| t["items"].as_array().expect("items").clone())
        .unwrap_or_default()
}

fn images(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_owned())
        .collect()
}

async fn pulled(client: &RegistryClient, repo: &str, tag: &str) -> String {
    let response = expect_status(client.get_manifest(repo, tag).await, StatusCode::OK).await;
    header(&response, "docker-content-digest")
}

async fn stream(client: &RegistryClient) -> Value {
    client.api_get(STREAM).await.ok(200).clone()
}

fn from(kind: &str, name: &str) -> Value {
    json!({"tag": {"from": {"kind": kind, "name": name}}})
}

/// The story of one stream, on whatever database `registry` has.
async fn stream_story(registry: &TestRegistry) {
    let admin = registry.client();
    let a = admin.push_image("proj/app", "1.0").await;
    let b = admin.push_image("proj/app", "next").await;

    // The push made the project and the stream, with the push's revision.
    let projects = admin.api_get("/api/v1/projects").await;
    assert!(
        projects.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["metadata"]["name"] == "proj"),
        "{}",
        projects.body
    );
    let is = stream(admin).await;
    assert_eq!(is["apiVersion"], "image.openshift.io/v1");
    assert_eq!(is["kind"], "ImageStream");
    assert_eq!(is["metadata"]["name"], "app");
    assert_eq!(is["metadata"]["namespace"], "proj");
    assert!(is["metadata"]["uid"].is_string() && is["metadata"]["creationTimestamp"].is_string());
    assert_eq!(is["spec"]["lookupPolicy"]["local"], false);
    let host = registry.addr.to_string();
    assert_eq!(
        is["status"]["dockerImageRepository"],
        format!("{host}/proj/app")
    );
    let first = items(&is, "1.0");
    assert_eq!(first.len(), 1, "{is}");
    assert_eq!(first[0]["image"], a.digest.as_str());
    assert_eq!(first[0]["generation"], 1);
    assert_eq!(first[0]["createdBy"], "admin");
    assert_eq!(first[0]["clientAddress"], "127.0.0.1");
    assert_eq!(first[0]["cause"], "Push");
    assert_eq!(
        first[0]["dockerImageReference"],
        format!("{host}/proj/app@{}", a.digest)
    );
    assert!(first[0]["created"].as_str().unwrap().ends_with('Z'));

    // The same image again: no revision. Another one: prepended, and pulled.
    expect_status(
        admin.put_manifest("proj/app", "1.0", &a.manifest).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(items(&stream(admin).await, "1.0").len(), 1);
    expect_status(
        admin.put_manifest("proj/app", "1.0", &b.manifest).await,
        StatusCode::CREATED,
    )
    .await;
    let history = items(&stream(admin).await, "1.0");
    assert_eq!(images(&history), [b.digest.clone(), a.digest.clone()]);
    assert_eq!(history[0]["generation"], 3);
    assert_eq!(pulled(admin, "proj/app", "1.0").await, b.digest);

    // Rolled back to generation 1: a new revision, and what pulls get.
    let rolled = admin
        .api_post(
            &format!("{}/rollback", istag("app:1.0")),
            json!({"generation": 1}),
        )
        .await;
    let rolled = rolled.ok(200);
    assert_eq!(rolled["kind"], "ImageStreamTag");
    assert_eq!(rolled["image"]["metadata"]["name"], a.digest.as_str());
    assert_eq!(rolled["generation"], 4);
    assert_eq!(pulled(admin, "proj/app", "1.0").await, a.digest);
    let history = items(&stream(admin).await, "1.0");
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["cause"], "Rollback");
    assert_eq!(history[0]["source"], "generation 1");

    // Bad input is refused and changes nothing.
    let before = stream(admin).await;
    let rollback = format!("{}/rollback", istag("app:1.0"));
    let refusals = [
        (
            admin.api_post(&rollback, json!({"generation": 99})).await,
            422,
            "Invalid",
        ),
        (admin.api_post(&rollback, json!({})).await, 422, "Invalid"),
        (
            admin
                .api_post(&rollback, json!({"generation": "one"}))
                .await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_post(
                    &format!("{}/rollback", istag("app:nope")),
                    json!({"generation": 1}),
                )
                .await,
            404,
            "NotFound",
        ),
        (
            admin
                .api_put(&istag("app:1.0"), from("Git", "app:next"))
                .await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_put(&istag("app:1.0"), from("ImageStreamTag", "app"))
                .await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_put(&istag("app:1.0"), from("ImageStreamTag", "app:gone"))
                .await,
            404,
            "NotFound",
        ),
        (
            admin
                .api_put(&istag("app:1.0"), from("ImageStreamTag", "ghost:1"))
                .await,
            404,
            "NotFound",
        ),
        (
            admin
                .api_put(
                    &istag("app:1.0"),
                    from(
                        "ImageStreamImage",
                        &format!("app@sha256:{}", "0".repeat(64)),
                    ),
                )
                .await,
            404,
            "NotFound",
        ),
        (
            admin
                .api_put(
                    &istag("app:1.0"),
                    from("ImageStreamImage", "app@sha256:xyz"),
                )
                .await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_put(&istag("app:1.0"), from("DockerImage", "not a reference"))
                .await,
            422,
            "Invalid",
        ),
        (
            admin.api_put(&istag("app:1.0"), json!({})).await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_put(&istag("app:-bad"), from("ImageStreamTag", "app:next"))
                .await,
            422,
            "Invalid",
        ),
        (
            admin
                .api_put(
                    &istag("app:1.0"),
                    json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:next"},
                           "referencePolicy": {"type": "Elsewhere"}}}),
                )
                .await,
            422,
            "Invalid",
        ),
    ];
    for (answer, code, reason) in refusals {
        answer.failure(code, reason);
    }
    assert_eq!(
        stream(admin).await,
        before,
        "a refused request changed the stream"
    );
    assert_eq!(pulled(admin, "proj/app", "1.0").await, a.digest);

    // Tagging an image of the stream (the seeds' rollback): a revision;
    // the same again: none.
    let by_image = from("ImageStreamImage", &format!("app@{}", b.digest));
    let tagged = admin.api_put(&istag("app:1.0"), by_image.clone()).await;
    assert_eq!(
        tagged.ok(201)["image"]["metadata"]["name"],
        b.digest.as_str()
    );
    assert_eq!(pulled(admin, "proj/app", "1.0").await, b.digest);
    admin.api_put(&istag("app:1.0"), by_image).await.ok(200);
    let history = items(&stream(admin).await, "1.0");
    assert_eq!(history.len(), 4);
    assert_eq!(history[0]["cause"], "Tag");
    assert_eq!(history[0]["source"], format!("proj/app@{}", b.digest));

    // Tagging from a tag takes its image once (recorded as the image).
    admin
        .api_put(&istag("app:stable"), from("ImageStreamTag", "app:1.0"))
        .await
        .ok(201);
    let stable = admin.api_get(&istag("app:stable")).await;
    let stable = stable.ok(200);
    assert_eq!(stable["tag"]["from"]["kind"], "ImageStreamImage");
    assert_eq!(stable["tag"]["from"]["name"], format!("app@{}", b.digest));
    assert_eq!(stable["metadata"]["name"], "app:stable");

    // The image as `get istag -o yaml` shows it.
    let image = &stable["image"];
    assert_eq!(image["kind"], "Image");
    assert_eq!(image["metadata"]["name"], b.digest.as_str());
    assert_eq!(image["dockerImageManifestMediaType"], OCI_MANIFEST);
    assert_eq!(
        image["dockerImageReference"],
        format!("{host}/proj/app@{}", b.digest)
    );
    assert_eq!(image["dockerImageMetadata"]["Id"], b.config.digest.as_str());
    assert_eq!(
        image["dockerImageLayers"][0]["name"],
        b.layers[0].digest.as_str()
    );
    assert_eq!(image["dockerImageLayers"][0]["size"], b.layers[0].size);
    assert_eq!(image["dockerImageLayers"][0]["mediaType"], OCI_LAYER);
    let isimage = admin
        .api_get(&format!(
            "/api/v1/namespaces/proj/imagestreamimages/app@{}",
            a.digest
        ))
        .await;
    let isimage = isimage.ok(200);
    assert_eq!(isimage["kind"], "ImageStreamImage");
    assert_eq!(isimage["image"]["metadata"]["name"], a.digest.as_str());
    admin
        .api_get(&format!(
            "/api/v1/namespaces/proj/imagestreamimages/app@sha256:{}",
            "1".repeat(64)
        ))
        .await
        .failure(404, "NotFound");

    // Lookup policy.
    let lookup = admin
        .api_put(&format!("{STREAM}/lookup-policy"), json!({"local": true}))
        .await;
    assert_eq!(lookup.ok(200)["spec"]["lookupPolicy"]["local"], true);

    // A tag deleted goes with its history; a stream deleted with its images.
    admin.api_delete(&istag("app:stable")).await.success();
    admin
        .api_get(&istag("app:stable"))
        .await
        .failure(404, "NotFound");
    admin
        .api_delete(&istag("app:stable"))
        .await
        .failure(404, "NotFound");
    assert!(!admin.tags("proj/app").await.contains(&"stable".to_owned()));
    admin.api_delete(STREAM).await.success();
    admin.api_get(STREAM).await.failure(404, "NotFound");
    expect_status(
        admin.get_manifest("proj/app", "1.0").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn stream_story_on_the_embedded_database() {
    let registry = TestRegistry::start().await;
    stream_story(&registry).await;
}

#[tokio::test]
async fn stream_story_on_postgresql() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let url = database.url.clone();
    let registry = TestRegistry::start_with(|config| config.database.url = Some(url)).await;
    stream_story(&registry).await;
    registry.shutdown().await;
}

/// Tagging an image of another project takes pull there; the image is
/// then pulled from the tagging project, blobs and all. A viewer reads
/// streams, a puller does not.
#[tokio::test]
async fn tagging_across_projects() {
    let registry = TestRegistry::start().await;
    let admin = registry.client();
    let base = admin.push_image("shared/base", "1").await;
    admin.create_project("team").await;
    let alice = admin
        .user_with_role("alice", "team", "registry-editor")
        .await;
    let vic = admin.user_with_role("vic", "team", "registry-viewer").await;
    let pat = admin
        .user_with_role("pat", "team", "system:image-puller")
        .await;
    let request = json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "base:1", "namespace": "shared"}}});
    let path = "/api/v1/namespaces/team/imagestreamtags/app:base";
    alice
        .api_put(path, request.clone())
        .await
        .failure(404, "NotFound");
    assert!(
        admin
            .api_get("/api/v1/namespaces/team/imagestreams")
            .await
            .ok(200)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    admin
        .bind(
            Some("shared"),
            "system:image-puller",
            &json!({"kind": "User", "name": "alice"}),
        )
        .await;
    alice.api_put(path, request).await.ok(201);
    assert_eq!(pulled(&alice, "team/app", "base").await, base.digest);
    for blob in [&base.config.digest, &base.layers[0].digest] {
        expect_status(alice.get_blob("team/app", blob).await, StatusCode::OK).await;
    }
    let is = alice
        .api_get("/api/v1/namespaces/team/imagestreams/app")
        .await;
    let revision = &items(is.ok(200), "base")[0];
    assert_eq!(revision["createdBy"], "alice");
    assert_eq!(revision["source"], "shared/base:1");

    vic.api_get("/api/v1/namespaces/team/imagestreams")
        .await
        .ok(200);
    vic.api_get("/api/v1/namespaces/team/imagestreamtags/app:base")
        .await
        .ok(200);
    vic.api_put(
        "/api/v1/namespaces/team/imagestreamtags/app:x",
        from("ImageStreamTag", "app:base"),
    )
    .await
    .failure(403, "Forbidden");
    vic.api_delete("/api/v1/namespaces/team/imagestreamtags/app:base")
        .await
        .failure(403, "Forbidden");
    pat.api_get("/api/v1/namespaces/team/imagestreams")
        .await
        .failure(403, "Forbidden");
    assert_eq!(pulled(&pat, "team/app", "base").await, base.digest);
    // `get is -A`: the streams of projects where the caller may read them.
    let all = vic.api_get("/api/v1/imagestreams").await;
    let names: Vec<String> = all.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["metadata"]["namespace"].as_str().unwrap(),
                s["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["team/app"]);
}

/// An alias follows its source tag; an external image is recorded in the
/// spec for the importer, and only there.
#[tokio::test]
async fn aliases_and_external_images() {
    let registry = TestRegistry::start().await;
    let admin = registry.client();
    admin.push_image("proj/app", "latest").await;
    let current =
        json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}}, "alias": true});
    admin.api_put(&istag("app:current"), current).await.ok(201);
    let newer = admin.push_image("proj/app", "newer").await;
    expect_status(
        admin
            .put_manifest("proj/app", "latest", &newer.manifest)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(pulled(admin, "proj/app", "current").await, newer.digest);
    let followed = items(&stream(admin).await, "current");
    assert_eq!(followed[0]["source"], "proj/app:latest");
    // Aliases stay within a stream.
    admin
        .api_put(
            &istag("app:other"),
            json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "elsewhere:latest"}}, "alias": true}),
        )
        .await
        .failure(422, "Invalid");

    let external = json!({"tag": {
        "from": {"kind": "DockerImage", "name": "quay.io/org/img:1.0"},
        "importPolicy": {"scheduled": true, "importMode": "Legacy"},
        "referencePolicy": {"type": "Local"}}});
    let answer = admin.api_put(&istag("app:ext"), external).await;
    let tag = answer.ok(201);
    assert!(tag["image"].is_null(), "{tag}");
    let is = stream(admin).await;
    let spec = is["spec"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ext")
        .expect("spec tag ext")
        .clone();
    assert_eq!(
        spec["from"],
        json!({"kind": "DockerImage", "name": "quay.io/org/img:1.0"})
    );
    assert_eq!(spec["importPolicy"]["scheduled"], true);
    assert_eq!(spec["importPolicy"]["importMode"], "Legacy");
    assert_eq!(spec["referencePolicy"]["type"], "Local");
    assert!(items(&is, "ext").is_empty());
    // An empty stream, made on purpose.
    admin
        .api_post(
            "/api/v1/namespaces/proj/imagestreams",
            json!({"metadata": {"name": "empty"}}),
        )
        .await
        .ok(201);
    admin
        .api_post(
            "/api/v1/namespaces/proj/imagestreams",
            json!({"metadata": {"name": "empty"}}),
        )
        .await
        .failure(409, "AlreadyExists");
    admin
        .api_post(
            "/api/v1/namespaces/proj/imagestreams",
            json!({"metadata": {"name": "Bad_Name"}}),
        )
        .await
        .failure(422, "Invalid");
}

// ---------------------------------------------------------------------------
// The CLI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_image_streams() {
    let lab = CliLab::start("cli-streams-password").await;
    let (berth, cli) = (&lab.berth, &lab.cli);
    let host = berth.addr.to_string();
    let a = berth.push_image("myproj/app", "1.0").await;
    let b = berth.push_image("myproj/app", "2.0").await;
    cli.ok(&["project", "myproj"]);

    let projects = cli.ok(&["get", "projects", "-o", "name"]);
    assert!(projects.contains("project/myproj"), "{projects}");
    let list = cli.ok(&["get", "is"]);
    assert!(list.starts_with("NAME"), "{list}");
    assert!(
        list.contains(&format!("app    {host}/myproj/app   1.0, 2.0")),
        "{list}"
    );
    assert_eq!(cli.ok(&["get", "is", "-o", "name"]), "imagestream/app\n");
    assert!(
        cli.ok(&["get", "is", "-A", "-o", "wide"])
            .contains("myproj")
    );

    // Roll 1.0 forward to 2.0's image by tagging, then back by generation.
    let tagged = cli.ok(&["tag", &format!("myproj/app@{}", b.digest), "app:1.0"]);
    assert!(tagged.contains("Tag app:1.0 set to"), "{tagged}");
    assert_eq!(pulled(berth, "myproj/app", "1.0").await, b.digest);
    let rolled = cli.ok(&["rollback", "istag", "app:1.0", "--to-generation", "1"]);
    assert!(rolled.contains("generation 1"), "{rolled}");
    assert_eq!(pulled(berth, "myproj/app", "1.0").await, a.digest);
    cli.fails(
        &["rollback", "istag", "app:1.0", "--to-generation", "99"],
        "no revision of generation 99",
    );
    cli.fails(&["tag", "app:missing", "app:x"], "NotFound");
    cli.fails(&["tag", "app", "app:x"], "names no tag or image");
    cli.fails(&["tag", "app:1.0", "app"], "destination is NAME:TAG");

    let describe = cli.ok(&["describe", "is", "app"]);
    for needle in [
        "Name:             app",
        "Namespace:        myproj",
        &format!("Image Repository: {host}/myproj/app"),
        "Unique Images:    2",
        "Tags:             2",
        &format!("  * {host}/myproj/app@{}", a.digest),
        &format!("    {host}/myproj/app@{}", b.digest),
        // Generation 4 went to the spec tag `berth tag` recorded.
        "by admin from 127.0.0.1 (rollback of generation 1, generation 5)",
        "Generation:       5",
        &format!("(tag of myproj/app@{}, generation 3)", b.digest),
        "(push, generation 1)",
        &format!("  tagged from myproj/app@{} (ImageStreamImage)", b.digest),
    ] {
        assert!(
            describe.contains(needle),
            "describe lacks {needle:?}:\n{describe}"
        );
    }

    let yaml = cli.ok(&["get", "istag", "app:1.0", "-o", "yaml"]);
    for needle in [
        "apiVersion: image.openshift.io/v1",
        "kind: ImageStreamTag",
        "name: app:1.0",
        "dockerImageReference:",
        "dockerImageLayers:",
        "dockerImageManifestMediaType: application/vnd.oci.image.manifest.v1+json",
        &format!("Id: {}", a.config.digest),
    ] {
        assert!(yaml.contains(needle), "yaml lacks {needle:?}:\n{yaml}");
    }
    let isimage = cli.ok(&["get", "isimage", &format!("app@{}", a.digest)]);
    assert!(isimage.contains(&format!("app@{}", a.digest)), "{isimage}");
    let istags = cli.ok(&["get", "istag"]);
    assert!(
        istags.contains("app:1.0") && istags.contains("app:2.0"),
        "{istags}"
    );

    cli.ok(&[
        "tag",
        "--source=docker",
        "quay.io/org/img:1.0",
        "img:1.0",
        "--scheduled",
        "--reference-policy",
        "local",
    ]);
    let img = cli.ok(&["get", "is", "img", "-o", "json"]);
    let img: Value = serde_json::from_str(&img).unwrap();
    assert_eq!(
        img["spec"]["tags"][0]["from"]["name"],
        "quay.io/org/img:1.0"
    );
    assert_eq!(img["spec"]["tags"][0]["referencePolicy"]["type"], "Local");

    let created = cli.ok(&["create", "is", "fresh"]);
    assert_eq!(created, "imagestream/fresh created\n");
    cli.ok(&["set", "image-lookup", "fresh"]);
    let fresh: Value =
        serde_json::from_str(&cli.ok(&["get", "is", "fresh", "-o", "json"])).unwrap();
    assert_eq!(fresh["spec"]["lookupPolicy"]["local"], true);

    assert_eq!(
        cli.ok(&["delete", "istag", "app:2.0"]),
        "imagestreamtag \"app:2.0\" deleted\n"
    );
    cli.fails(&["get", "istag", "app:2.0"], "NotFound");
    assert_eq!(
        cli.ok(&["delete", "is", "fresh"]),
        "imagestream \"fresh\" deleted\n"
    );
    cli.fails(&["get", "is", "fresh"], "not found");
}
