//! The administration REST API (`/api/v1`, docs/rest-api.md) driven over a
//! socket: a real server per test ([`TestRegistry`], in-process on a free
//! loopback port with its own data directory), called as its admin or as
//! other callers (clients with their credentials), each answer judged
//! whole ([`Answer`]).

mod common;

use berth::config::{AutoCreateNamespaces, Bootstrap, Config};
use common::*;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

/// `{}`, the config blob of the test image.
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Creates a user with a password (as `admin`); a client logged in as it.
async fn new_user(admin: &RegistryClient, name: &str, password: &str) -> RegistryClient {
    admin
        .api_post(
            "/api/v1/users",
            json!({"metadata":{"name":name},"password":password}),
        )
        .await
        .ok(201);
    admin.with_credentials(name, password)
}

/// Binds `subjects` to `role` in `ns` (as `admin`); the binding.
async fn bind(admin: &RegistryClient, ns: &str, role: &str, subjects: Value) -> Value {
    admin
        .api_post(
            &format!("/api/v1/namespaces/{ns}/rolebindings/{role}/add-subjects"),
            json!({ "subjects": subjects }),
        )
        .await
        .ok(200)
        .clone()
}

/// Binds `subjects` to `role` cluster-wide (as `admin`).
async fn bind_cluster(admin: &RegistryClient, role: &str, subjects: Value) {
    admin
        .api_post(
            &format!("/api/v1/clusterrolebindings/{role}/add-subjects"),
            json!({ "subjects": subjects }),
        )
        .await
        .ok(200);
}

/// A one-request blob upload of `{}` into `repo` as `caller`, the first
/// write of a push.
async fn push_config_blob(caller: &RegistryClient, repo: &str) -> Answer {
    let request = caller
        .request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={EMPTY_JSON_DIGEST}"),
        )
        .body("{}");
    Answer::of(request).await
}

/// Pushes a one-blob image (the config `{}`, no layers) as `caller`.
async fn push_small_image(caller: &RegistryClient, repo: &str, tag: &str) {
    let answer = push_config_blob(caller, repo).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":EMPTY_JSON_DIGEST,"size":2},
        "layers": []
    });
    let put = caller
        .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string());
    let answer = Answer::of(put).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

/// A JWT from the token service, asked for `scope` by `caller`: the status
/// and the body.
async fn ask_jwt(caller: &RegistryClient, scope: &str) -> (StatusCode, Value) {
    let answer = caller
        .api_get(&format!("/auth/token?service=berth&scope={scope}"))
        .await;
    (answer.status, answer.body)
}

/// Names of the projects `caller` sees.
async fn project_names(caller: &RegistryClient) -> Vec<String> {
    names(caller.api_get("/api/v1/projects").await.ok(200))
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[track_caller]
fn assert_timestamp(v: &Value) {
    let t = v.as_str().unwrap_or_else(|| panic!("timestamp: {v}"));
    assert_eq!(t.len(), 20, "{t}");
    assert!(t.ends_with('Z') && &t[10..11] == "T", "{t}");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_challenged_and_discovery_is_open() {
    let s = TestRegistry::start().await;

    for (method, path) in [
        (Method::GET, "/api/v1/projects"),
        (Method::POST, "/api/v1/projects"),
        (Method::GET, "/api/v1/users/~"),
        (Method::GET, "/api/v1/namespaces/x/rolebindings"),
        (Method::DELETE, "/api/v1/tokens/x"),
        (Method::GET, "/api/v1/clusterrolebindings"),
        (Method::PUT, "/api/v1/groups/x"),
    ] {
        let a = s.anonymous().api_call(method, path, Some(json!({}))).await;
        a.failure(401, "Unauthorized");
        let challenge = a.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(challenge.contains("/auth/token"), "{challenge}");
    }
    // Wrong credentials are 401 too, never a silent anonymous.
    s.with_credentials("admin", "wrong")
        .api_get("/api/v1/projects")
        .await
        .failure(401, "Unauthorized");
    s.with_bearer("berth_notatoken")
        .api_get("/api/v1/projects")
        .await
        .failure(401, "Unauthorized");

    // The OpenAPI document, without credentials.
    let d = s.anonymous().api_get("/api/v1/discovery").await;
    let doc = d.ok(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    for path in [
        "/api/v1/projects",
        "/api/v1/namespaces/{ns}/serviceaccounts/{sa}/tokens",
        "/api/v1/clusterrolebindings/{role}/add-subjects",
        "/api/v1/users/~",
        "/api/v1/user/initialize",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(
        d.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // Unknown paths and methods are Status objects too.
    s.api_get("/api/v1/nothing-here")
        .await
        .failure(404, "NotFound");
    s.api_call(Method::PATCH, "/api/v1/projects", None)
        .await
        .failure(405, "MethodNotAllowed");
    // Unreadable JSON is a bad request.
    let bad = s
        .request(Method::POST, "/api/v1/projects")
        .header("content-type", "application/json")
        .body("{not json");
    Answer::of(bad).await.failure(400, "BadRequest");

    // This registry made its admin itself: there is nothing to initialize.
    let a = s
        .anonymous()
        .api_post(
            "/api/v1/user/initialize",
            json!({"username":"root","password":"pw"}),
        )
        .await;
    a.failure(400, "BadRequest");
    assert_eq!(a.body["message"], "the registry is already initialized");

    // Each route is counted under its own label.
    let metrics = s.anonymous().api_get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().unwrap();
    for label in [
        "route=\"api_projects_list\"",
        "route=\"api_discovery\"",
        "route=\"api_initialize\"",
        "route=\"api_unknown\"",
    ] {
        assert!(text.contains(label), "{label} not in metrics");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_visible_only_to_those_with_a_role() {
    let s = TestRegistry::start().await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let bob = new_user(&s, "bob", "bob-pw").await;

    let created = s
        .api_post("/api/v1/projects", json!({"metadata":{"name":"team"}}))
        .await;
    let p = created.ok(201);
    assert_eq!(p["apiVersion"], "v1");
    assert_eq!(p["kind"], "Project");
    assert_eq!(p["metadata"]["name"], "team");
    assert_eq!(
        p["metadata"]["annotations"]["openshift.io/requester"],
        "admin"
    );
    assert_eq!(p["status"]["phase"], "Active");
    assert!(p["metadata"]["uid"].is_string());
    assert_timestamp(&p["metadata"]["creationTimestamp"]);
    s.api_post("/api/v1/projects", json!({"metadata":{"name":"team"}}))
        .await
        .failure(409, "AlreadyExists");
    for bad in ["Team", "a--b", "-x", "x/y", &"a".repeat(64)] {
        s.api_post("/api/v1/projects", json!({"metadata":{"name":bad}}))
            .await
            .failure(422, "Invalid");
    }
    s.api_post("/api/v1/projects", json!({}))
        .await
        .failure(422, "Invalid");
    // Bodies are objects: an array (which serde would take for an object
    // whose fields are all optional), a string, a number or null is refused
    // and creates nothing.
    let tokens_before = s.api_get("/api/v1/tokens").await.ok(200)["items"].clone();
    for bad in [json!([]), json!(["x"]), json!("x"), json!(1), json!(null)] {
        s.api_post("/api/v1/tokens", bad.clone())
            .await
            .failure(422, "Invalid");
        s.api_post("/api/v1/projects", bad)
            .await
            .failure(422, "Invalid");
    }
    assert_eq!(
        s.api_get("/api/v1/tokens").await.ok(200)["items"],
        tokens_before
    );

    // Admin sees it; alice has no role: she sees nothing, and 404s.
    let list = s.api_get("/api/v1/projects").await;
    assert_eq!(list.ok(200)["kind"], "ProjectList");
    assert_eq!(names(&list.body), vec!["team"]);
    assert!(names(alice.api_get("/api/v1/projects").await.ok(200)).is_empty());
    alice
        .api_get("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    alice
        .api_delete("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    alice
        .api_get("/api/v1/namespaces/team/serviceaccounts")
        .await
        .failure(404, "NotFound");
    alice
        .api_post(
            "/api/v1/namespaces/team/serviceaccounts",
            json!({"metadata":{"name":"x"}}),
        )
        .await
        .failure(404, "NotFound");
    // Absent and hidden look the same.
    let hidden = alice.api_get("/api/v1/projects/team").await.body;
    let absent = alice.api_get("/api/v1/projects/nothere").await.body;
    assert_eq!(
        hidden["message"].as_str().unwrap().replace("team", "X"),
        absent["message"].as_str().unwrap().replace("nothere", "X")
    );
    // Only cluster admins create projects by default.
    alice
        .api_post("/api/v1/projects", json!({"metadata":{"name":"mine"}}))
        .await
        .failure(403, "Forbidden");

    // A viewer sees the project and reads inside it, but changes nothing.
    bind(
        &s,
        "team",
        "registry-viewer",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    assert_eq!(
        alice.api_get("/api/v1/projects/team").await.ok(200)["metadata"]["name"],
        "team"
    );
    assert_eq!(
        names(alice.api_get("/api/v1/projects").await.ok(200)),
        vec!["team"]
    );
    alice
        .api_get("/api/v1/namespaces/team/serviceaccounts")
        .await
        .ok(200);
    alice
        .api_delete("/api/v1/projects/team")
        .await
        .failure(403, "Forbidden");
    alice
        .api_post(
            "/api/v1/namespaces/team/serviceaccounts",
            json!({"metadata":{"name":"x"}}),
        )
        .await
        .failure(403, "Forbidden");
    bob.api_get("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");

    // A group binding works as well.
    s.api_post(
        "/api/v1/groups",
        json!({"metadata":{"name":"devs"},"users":["bob"]}),
    )
    .await
    .ok(201);
    bind(
        &s,
        "team",
        "system:image-puller",
        json!([{"kind":"Group","name":"devs"}]),
    )
    .await;
    bob.api_get("/api/v1/projects/team").await.ok(200);
    // A puller has a role but may not read the service accounts.
    bob.api_get("/api/v1/namespaces/team/serviceaccounts")
        .await
        .failure(403, "Forbidden");

    // Deleting removes the project with its bindings; alice loses it.
    s.api_delete("/api/v1/projects/team").await.success();
    s.api_get("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    alice
        .api_get("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    s.api_delete("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    s.create_project("team").await;
    alice
        .api_get("/api/v1/projects/team")
        .await
        .failure(404, "NotFound");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_authenticated_creates_projects_when_configured() {
    let s = TestRegistry::start_with(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let p = alice
        .api_post("/api/v1/projects", json!({"metadata":{"name":"alices"}}))
        .await;
    assert_eq!(
        p.ok(201)["metadata"]["annotations"]["openshift.io/requester"],
        "alice"
    );
    // The creator is its registry-admin.
    let b = alice
        .api_get("/api/v1/namespaces/alices/rolebindings/registry-admin")
        .await;
    assert_eq!(
        b.ok(200)["subjects"],
        json!([{"kind":"User","name":"alice"}])
    );
    alice
        .api_post(
            "/api/v1/namespaces/alices/serviceaccounts",
            json!({"metadata":{"name":"builder"}}),
        )
        .await
        .ok(201);
    alice.api_delete("/api/v1/projects/alices").await.success();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_and_their_tokens() {
    let s = TestRegistry::start().await;
    s.create_project("p").await;
    push_small_image(&s, "p/app", "v1").await;

    let sa = s
        .api_post(
            "/api/v1/namespaces/p/serviceaccounts",
            json!({"metadata":{"name":"builder"}}),
        )
        .await;
    let body = sa.ok(201);
    assert_eq!(body["kind"], "ServiceAccount");
    assert_eq!(body["metadata"]["namespace"], "p");
    assert_eq!(body["username"], "system:serviceaccount:p:builder");
    assert_timestamp(&body["metadata"]["creationTimestamp"]);
    s.api_post(
        "/api/v1/namespaces/p/serviceaccounts",
        json!({"metadata":{"name":"builder"}}),
    )
    .await
    .failure(409, "AlreadyExists");
    s.api_post(
        "/api/v1/namespaces/p/serviceaccounts",
        json!({"metadata":{"name":"Builder!"}}),
    )
    .await
    .failure(422, "Invalid");
    s.api_post(
        "/api/v1/namespaces/nope/serviceaccounts",
        json!({"metadata":{"name":"builder"}}),
    )
    .await
    .failure(404, "NotFound");
    assert_eq!(
        s.api_get("/api/v1/namespaces/p/serviceaccounts/builder")
            .await
            .ok(200)["username"],
        "system:serviceaccount:p:builder"
    );
    s.api_get("/api/v1/namespaces/p/serviceaccounts/ghost")
        .await
        .failure(404, "NotFound");
    let list = s.api_get("/api/v1/namespaces/p/serviceaccounts").await;
    assert_eq!(list.ok(200)["kind"], "ServiceAccountList");
    assert_eq!(names(&list.body), vec!["builder"]);

    // A token; its secret is shown once.
    let t = s
        .api_post(
            "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
            json!({"spec":{"expiresIn":"24h"}}),
        )
        .await;
    let token = t.ok(201).clone();
    assert_eq!(token["kind"], "Token");
    assert_eq!(token["metadata"]["namespace"], "p");
    assert!(
        token["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("builder-token-")
    );
    assert_eq!(token["spec"]["subject"], "system:serviceaccount:p:builder");
    assert_timestamp(&token["spec"]["expirationTimestamp"]);
    let secret = token["status"]["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("berth_"));
    s.api_post(
        "/api/v1/namespaces/p/serviceaccounts/ghost/tokens",
        json!({}),
    )
    .await
    .failure(404, "NotFound");
    s.api_post(
        "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
        json!({"metadata":{"name":token["metadata"]["name"]}}),
    )
    .await
    .failure(409, "AlreadyExists");
    let listed = s.api_get("/api/v1/namespaces/p/tokens").await;
    assert_eq!(listed.ok(200)["kind"], "TokenList");
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("status").is_none());

    // The token works for /v2/ as a Basic password and as a Bearer token,
    // and the account is who it says.
    let as_basic = s.with_credentials("anything", &secret);
    let as_bearer = s.with_bearer(&secret);
    for auth in [&as_basic, &as_bearer] {
        assert_eq!(auth.api_get("/v2/").await.status, StatusCode::OK);
        let me = auth.api_get("/api/v1/users/~").await;
        let me = me.ok(200);
        assert_eq!(me["kind"], "User");
        assert_eq!(me["metadata"]["name"], "system:serviceaccount:p:builder");
        assert!(strings(&me["groups"]).contains(&"system:serviceaccounts:p".to_owned()));
        assert_eq!(me["superUser"], false);
    }
    // It has no role yet: the manifest is refused.
    as_basic
        .api_get("/v2/p/app/manifests/v1")
        .await
        .oci_error(403, "DENIED");
    bind(
        &s,
        "p",
        "system:image-puller",
        json!([{"kind":"User","name":"system:serviceaccount:p:builder"}]),
    )
    .await;
    assert_eq!(
        as_basic.api_get("/v2/p/app/manifests/v1").await.status,
        StatusCode::OK
    );
    // A JWT issued for it.
    let (status, jwt) = ask_jwt(&as_basic, "repository:p/app:pull").await;
    assert_eq!(status, StatusCode::OK, "{jwt}");
    let jwt = jwt["token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.with_bearer(&jwt)
            .api_get("/v2/p/app/manifests/v1")
            .await
            .status,
        StatusCode::OK
    );
    // A pull token cannot manage anything.
    s.with_bearer(&jwt)
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");

    // Revoking stops the token, and the JWT issued from it, at once.
    let name = token["metadata"]["name"].as_str().unwrap();
    s.api_delete(&format!("/api/v1/namespaces/p/tokens/{name}"))
        .await
        .success();
    s.api_delete(&format!("/api/v1/namespaces/p/tokens/{name}"))
        .await
        .failure(404, "NotFound");
    as_basic
        .api_get("/v2/p/app/manifests/v1")
        .await
        .oci_error(401, "UNAUTHORIZED");
    as_bearer
        .api_get("/v2/")
        .await
        .oci_error(401, "UNAUTHORIZED");
    s.with_bearer(&jwt)
        .api_get("/v2/p/app/manifests/v1")
        .await
        .oci_error(401, "UNAUTHORIZED");
    as_bearer
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");

    // Deleting the account revokes its tokens.
    let second = s
        .api_post(
            "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
            json!({"metadata":{"name":"ci"}}),
        )
        .await;
    let second = second.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.with_bearer(&second).api_get("/v2/").await.status,
        StatusCode::OK
    );
    s.api_delete("/api/v1/namespaces/p/serviceaccounts/builder")
        .await
        .success();
    s.api_delete("/api/v1/namespaces/p/serviceaccounts/builder")
        .await
        .failure(404, "NotFound");
    s.with_bearer(&second)
        .api_get("/v2/")
        .await
        .oci_error(401, "UNAUTHORIZED");
    assert!(names(s.api_get("/api/v1/namespaces/p/tokens").await.ok(200)).is_empty());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_are_shown_once_and_revoked_at_once() {
    let s = TestRegistry::start().await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let bob = new_user(&s, "bob", "bob-pw").await;

    let t = alice
        .api_post(
            "/api/v1/tokens",
            json!({"metadata":{"name":"laptop"},"spec":{"expiresIn":"720h"}}),
        )
        .await;
    let token = t.ok(201).clone();
    assert_eq!(t.headers["cache-control"], "no-store");
    assert_eq!(token["metadata"]["name"], "laptop");
    assert!(token["metadata"].get("namespace").is_none());
    assert_eq!(token["spec"]["subject"], "alice");
    assert_timestamp(&token["spec"]["expirationTimestamp"]);
    let secret = token["status"]["token"].as_str().unwrap().to_owned();

    alice
        .api_post("/api/v1/tokens", json!({"metadata":{"name":"laptop"}}))
        .await
        .failure(409, "AlreadyExists");
    for bad in ["forever", "0s", "-1h"] {
        alice
            .api_post("/api/v1/tokens", json!({"spec":{"expiresIn":bad}}))
            .await
            .failure(422, "Invalid");
    }
    // No body at all: a generated name, no expiry.
    let generated = Answer::of(alice.request(Method::POST, "/api/v1/tokens")).await;
    let generated = generated.ok(201).clone();
    let generated_name = generated["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(
        generated_name.starts_with("alice-token-"),
        "{generated_name}"
    );
    assert!(generated["spec"].get("expirationTimestamp").is_none());

    // The token logs in: Basic with any name, Bearer, and through a JWT.
    for auth in [
        s.with_credentials("whoever", &secret),
        s.with_bearer(&secret),
    ] {
        assert_eq!(auth.api_get("/v2/").await.status, StatusCode::OK);
        let me = auth.api_get("/api/v1/users/~").await;
        assert_eq!(me.ok(200)["metadata"]["name"], "alice");
        assert_eq!(strings(&me.body["groups"]), vec!["system:authenticated"]);
    }
    // A JWT made from it serves /v2/, not the administration API.
    let (status, jwt) = ask_jwt(&s.with_credentials("x", &secret), "registry:catalog:*").await;
    assert_eq!(status, StatusCode::OK);
    let jwt = s.with_bearer(jwt["token"].as_str().unwrap());
    assert_eq!(jwt.api_get("/v2/_catalog").await.status, StatusCode::OK);
    jwt.api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");

    // Listing: own tokens, without secrets; admins see every user token.
    let mine = alice.api_get("/api/v1/tokens").await;
    assert_eq!(mine.ok(200)["kind"], "TokenList");
    let mut listed = names(&mine.body);
    listed.sort();
    let mut expected = vec!["laptop".to_owned(), generated_name.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("status").is_none())
    );
    bob.api_post("/api/v1/tokens", json!({"metadata":{"name":"bobs"}}))
        .await
        .ok(201);
    assert_eq!(
        names(bob.api_get("/api/v1/tokens").await.ok(200)),
        vec!["bobs"]
    );
    assert_eq!(names(s.api_get("/api/v1/tokens").await.ok(200)).len(), 3);
    // Others' tokens are not found, not forbidden.
    bob.api_delete("/api/v1/tokens/laptop")
        .await
        .failure(404, "NotFound");

    // Revoked: at once, including the JWT issued from it.
    alice.api_delete("/api/v1/tokens/laptop").await.success();
    alice
        .api_delete("/api/v1/tokens/laptop")
        .await
        .failure(404, "NotFound");
    s.with_bearer(&secret)
        .api_get("/v2/")
        .await
        .oci_error(401, "UNAUTHORIZED");
    jwt.api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");
    // Cluster admins revoke any user token.
    s.api_delete(&format!("/api/v1/tokens/{generated_name}"))
        .await
        .success();
    assert!(names(alice.api_get("/api/v1/tokens").await.ok(200)).is_empty());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_bindings_cluster_bindings_and_who_can() {
    let s = TestRegistry::start().await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let carol = new_user(&s, "carol", "carol-pw").await;
    s.create_project("shared").await;
    s.create_project("myapp").await;
    push_small_image(&s, "shared/base", "v1").await;

    // The shared-project flow: every service account of myapp may pull.
    s.api_post(
        "/api/v1/namespaces/myapp/serviceaccounts",
        json!({"metadata":{"name":"default"}}),
    )
    .await
    .ok(201);
    let sa_token = s
        .api_post(
            "/api/v1/namespaces/myapp/serviceaccounts/default/tokens",
            json!({}),
        )
        .await
        .ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sa = s.with_credentials("sa", &sa_token);
    sa.api_get("/v2/shared/base/manifests/v1")
        .await
        .oci_error(403, "DENIED");
    let binding = bind(
        &s,
        "shared",
        "system:image-puller",
        json!([
            {"kind":"Group","name":"system:serviceaccounts:myapp"},
            {"kind":"User","name":"system:serviceaccount:ci:builder"},
            {"kind":"ServiceAccount","name":"robot"},
            {"kind":"User","name":"carol"}
        ]),
    )
    .await;
    assert_eq!(binding["kind"], "RoleBinding");
    assert_eq!(binding["metadata"]["name"], "system:image-puller");
    assert_eq!(binding["metadata"]["namespace"], "shared");
    assert_eq!(
        binding["roleRef"],
        json!({"kind":"ClusterRole","name":"system:image-puller"})
    );
    let subjects = binding["subjects"].as_array().unwrap();
    assert!(subjects.contains(&json!({"kind":"Group","name":"system:serviceaccounts:myapp"})));
    assert!(subjects.contains(&json!({"kind":"ServiceAccount","name":"builder","namespace":"ci"})));
    assert!(
        subjects.contains(&json!({"kind":"ServiceAccount","name":"robot","namespace":"shared"}))
    );
    assert!(subjects.contains(&json!({"kind":"User","name":"carol"})));
    assert_eq!(
        sa.api_get("/v2/shared/base/manifests/v1").await.status,
        StatusCode::OK
    );

    // Errors: unknown role, bad subjects, no subjects.
    s.api_post(
        "/api/v1/namespaces/shared/rolebindings/system:image-nothing/add-subjects",
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(422, "Invalid");
    s.api_get("/api/v1/namespaces/shared/rolebindings/superuser")
        .await
        .failure(422, "Invalid");
    for bad in [
        json!({"subjects":[{"kind":"Robot","name":"x"}]}),
        json!({"subjects":[{"kind":"Group","name":"system:masters"}]}),
        json!({"subjects":[{"kind":"User","name":"Alice"}]}),
        json!({"subjects":[]}),
    ] {
        s.api_post(
            "/api/v1/namespaces/shared/rolebindings/registry-viewer/add-subjects",
            bad,
        )
        .await
        .failure(422, "Invalid");
    }
    s.api_get("/api/v1/namespaces/shared/rolebindings/system:image-pusher")
        .await
        .failure(404, "NotFound");

    let list = s.api_get("/api/v1/namespaces/shared/rolebindings").await;
    assert_eq!(list.ok(200)["kind"], "RoleBindingList");
    assert_eq!(
        names(&list.body),
        vec!["system:image-puller", "registry-admin"]
    );

    // who-can.
    let who = s
        .api_get("/api/v1/namespaces/shared/whocan?verb=pull")
        .await;
    let who = who.ok(200);
    assert_eq!(who["kind"], "ResourceAccessReviewResponse");
    assert_eq!(who["namespace"], "shared");
    assert_eq!(who["verb"], "pull");
    let users = strings(&who["users"]);
    for expected in [
        "admin",
        "carol",
        "system:serviceaccount:ci:builder",
        "system:serviceaccount:shared:robot",
    ] {
        assert!(users.contains(&expected.to_owned()), "{users:?}");
    }
    assert_eq!(
        strings(&who["groups"]),
        vec!["system:serviceaccounts:myapp"]
    );
    let push = s
        .api_get("/api/v1/namespaces/shared/whocan?verb=push")
        .await;
    assert!(!strings(&push.ok(200)["users"]).contains(&"carol".to_owned()));
    s.api_get("/api/v1/namespaces/shared/whocan?verb=fly")
        .await
        .failure(422, "Invalid");
    s.api_get("/api/v1/namespaces/shared/whocan")
        .await
        .failure(400, "BadRequest");

    // No role: 404; a role without admin: reads, but 403 on writes.
    alice
        .api_get("/api/v1/namespaces/shared/rolebindings")
        .await
        .failure(404, "NotFound");
    alice
        .api_get("/api/v1/namespaces/shared/whocan?verb=pull")
        .await
        .failure(404, "NotFound");
    alice
        .api_post(
            "/api/v1/namespaces/shared/rolebindings/registry-admin/add-subjects",
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await
        .failure(404, "NotFound");
    bind(
        &s,
        "shared",
        "registry-editor",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    alice
        .api_get("/api/v1/namespaces/shared/whocan?verb=pull")
        .await
        .ok(200);
    alice
        .api_get("/api/v1/namespaces/shared/rolebindings")
        .await
        .ok(200);
    alice
        .api_post(
            "/api/v1/namespaces/shared/rolebindings/registry-admin/add-subjects",
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await
        .failure(403, "Forbidden");
    alice
        .api_delete("/api/v1/namespaces/shared/rolebindings/system:image-puller")
        .await
        .failure(403, "Forbidden");
    // carol, a puller, has a role but may not read bindings.
    carol
        .api_get("/api/v1/namespaces/shared/rolebindings")
        .await
        .failure(403, "Forbidden");

    // remove-subjects answers what is left; delete unbinds the rest.
    let left = s
        .api_post(
            "/api/v1/namespaces/shared/rolebindings/system:image-puller/remove-subjects",
            json!({"subjects":[
                {"kind":"Group","name":"system:serviceaccounts:myapp"},
                {"kind":"User","name":"nobody"}
            ]}),
        )
        .await;
    assert_eq!(left.ok(200)["subjects"].as_array().unwrap().len(), 3);
    sa.api_get("/v2/shared/base/manifests/v1")
        .await
        .oci_error(403, "DENIED");
    s.api_delete("/api/v1/namespaces/shared/rolebindings/system:image-puller")
        .await
        .success();
    s.api_get("/api/v1/namespaces/shared/rolebindings/system:image-puller")
        .await
        .failure(404, "NotFound");
    s.api_delete("/api/v1/namespaces/shared/rolebindings/system:image-puller")
        .await
        .failure(404, "NotFound");
    s.api_post(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller/remove-subjects",
        json!({"subjects":[{"kind":"User","name":"carol"}]}),
    )
    .await
    .failure(404, "NotFound");

    // Cluster role bindings: cluster admins only.
    alice
        .api_get("/api/v1/clusterrolebindings")
        .await
        .failure(403, "Forbidden");
    alice
        .api_post(
            "/api/v1/clusterrolebindings/cluster-admin/add-subjects",
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await
        .failure(403, "Forbidden");
    alice
        .api_get("/api/v1/users")
        .await
        .failure(403, "Forbidden");
    let cb = s
        .api_post(
            "/api/v1/clusterrolebindings/cluster-admin/add-subjects",
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await;
    let cb = cb.ok(200);
    assert_eq!(cb["kind"], "ClusterRoleBinding");
    assert!(cb["metadata"].get("namespace").is_none());
    assert_eq!(cb["subjects"], json!([{"kind":"User","name":"alice"}]));
    s.api_post(
        "/api/v1/clusterrolebindings/root/add-subjects",
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(422, "Invalid");
    s.api_post(
        "/api/v1/clusterrolebindings/system:image-puller/add-subjects",
        json!({"subjects":[{"kind":"ServiceAccount","name":"robot"}]}),
    )
    .await
    .failure(422, "Invalid");
    // Alice is now a cluster admin: users, every project, cluster bindings.
    alice.api_get("/api/v1/users").await.ok(200);
    assert_eq!(
        names(alice.api_get("/api/v1/projects").await.ok(200)),
        vec!["myapp", "shared"]
    );
    let all = alice.api_get("/api/v1/clusterrolebindings").await;
    assert_eq!(all.ok(200)["kind"], "ClusterRoleBindingList");
    assert_eq!(names(&all.body), vec!["cluster-admin"]);
    assert_eq!(
        alice
            .api_get("/api/v1/clusterrolebindings/cluster-admin")
            .await
            .ok(200)["roleRef"]["name"],
        "cluster-admin"
    );
    alice
        .api_get("/api/v1/clusterrolebindings/registry-viewer")
        .await
        .failure(404, "NotFound");
    let left = s
        .api_post(
            "/api/v1/clusterrolebindings/cluster-admin/remove-subjects",
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await;
    assert_eq!(left.ok(200)["subjects"], json!([]));
    alice
        .api_get("/api/v1/users")
        .await
        .failure(403, "Forbidden");
    s.api_post(
        "/api/v1/clusterrolebindings/system:image-puller/add-subjects",
        json!({"subjects":[{"kind":"User","name":"carol"}]}),
    )
    .await
    .ok(200);
    s.api_delete("/api/v1/clusterrolebindings/system:image-puller")
        .await
        .success();
    s.api_delete("/api/v1/clusterrolebindings/system:image-puller")
        .await
        .failure(404, "NotFound");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_namespace_lets_anonymous_callers_pull() {
    let s = TestRegistry::start().await;
    s.create_project("pub").await;
    push_small_image(&s, "pub/app", "v1").await;

    let anonymous = s.anonymous();
    anonymous
        .api_get("/v2/pub/app/manifests/v1")
        .await
        .oci_error(401, "UNAUTHORIZED");
    let (status, token) = ask_jwt(&anonymous, "repository:pub/app:pull").await;
    assert_eq!(status, StatusCode::OK);
    s.with_bearer(token["token"].as_str().unwrap())
        .api_get("/v2/pub/app/manifests/v1")
        .await
        .oci_error(401, "UNAUTHORIZED");

    bind(
        &s,
        "pub",
        "system:image-puller",
        json!([{"kind":"Group","name":"system:unauthenticated"}]),
    )
    .await;
    let pulled = anonymous.api_get("/v2/pub/app/manifests/v1").await;
    assert_eq!(pulled.status, StatusCode::OK);
    assert_eq!(pulled.body["mediaType"], OCI_MANIFEST);
    // The token service grants anonymous pulls, and nothing more.
    let (status, token) = ask_jwt(&anonymous, "repository:pub/app:pull,push").await;
    assert_eq!(status, StatusCode::OK);
    let jwt = token["token"].as_str().unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["access"],
        json!([{"type":"repository","name":"pub/app","actions":["pull"]}])
    );
    assert_eq!(
        s.with_bearer(jwt)
            .api_get("/v2/pub/app/manifests/v1")
            .await
            .status,
        StatusCode::OK
    );
    // Signed-in users keep what anonymous callers have.
    let alice = new_user(&s, "alice", "alice-pw").await;
    assert_eq!(
        alice.api_get("/v2/pub/app/manifests/v1").await.status,
        StatusCode::OK
    );
    // Still no admin API for anonymous callers.
    anonymous
        .api_get("/api/v1/projects/pub")
        .await
        .failure(401, "Unauthorized");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_passwords() {
    let s = TestRegistry::start().await;

    let users = s.api_get("/api/v1/users").await;
    assert_eq!(users.ok(200)["kind"], "UserList");
    assert_eq!(names(&users.body), vec!["admin"]);
    assert_eq!(users.body["items"][0]["superUser"], true);

    let created = s.api_post("/api/v1/users", json!({"metadata":{"name":"alice"},"password":"alice-pw","email":"alice@example.com","superUser":false}))
        .await;
    let u = created.ok(201);
    assert_eq!(u["apiVersion"], "v1");
    assert_eq!(u["kind"], "User");
    assert_eq!(u["metadata"]["name"], "alice");
    assert_eq!(u["groups"], json!(["system:authenticated"]));
    assert_eq!(u["superUser"], false);
    assert_timestamp(&u["metadata"]["creationTimestamp"]);
    let alice = s.with_credentials("alice", "alice-pw");
    s.api_post(
        "/api/v1/users",
        json!({"metadata":{"name":"alice"},"password":"x"}),
    )
    .await
    .failure(409, "AlreadyExists");
    for bad in [
        json!({"metadata":{"name":"system:admin"}}),
        json!({"metadata":{"name":"Alice"}}),
        json!({"metadata":{"name":"a b"}}),
        json!({"metadata":{}}),
        json!({"metadata":{"name":"zed"},"password":""}),
    ] {
        s.api_post("/api/v1/users", bad)
            .await
            .failure(422, "Invalid");
    }
    // A token-only user, and a super user.
    s.api_post("/api/v1/users", json!({"metadata":{"name":"robot"}}))
        .await
        .ok(201);
    s.with_credentials("robot", "")
        .api_get("/v2/")
        .await
        .oci_error(401, "UNAUTHORIZED");
    // It gets in with a token a cluster admin makes for it.
    let robot_token = s.api_post("/api/v1/users/robot/tokens", json!({})).await;
    let robot_token = robot_token.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = s.with_bearer(&robot_token).api_get("/api/v1/users/~").await;
    assert_eq!(me.ok(200)["metadata"]["name"], "robot");
    s.api_post("/api/v1/users/nobody/tokens", json!({}))
        .await
        .failure(404, "NotFound");
    alice
        .api_post("/api/v1/users/robot/tokens", json!({}))
        .await
        .failure(403, "Forbidden");
    let boss = s
        .api_post(
            "/api/v1/users",
            json!({"metadata":{"name":"boss"},"password":"boss-pw","superUser":true}),
        )
        .await;
    assert_eq!(boss.ok(201)["superUser"], true);
    assert_eq!(
        names(
            s.with_credentials("boss", "boss-pw")
                .api_get("/api/v1/users")
                .await
                .ok(200)
        ),
        vec!["admin", "alice", "boss", "robot"]
    );

    // Users and groups are for cluster admins; users see themselves.
    alice
        .api_get("/api/v1/users")
        .await
        .failure(403, "Forbidden");
    alice
        .api_post(
            "/api/v1/users",
            json!({"metadata":{"name":"mallory"},"password":"x","superUser":true}),
        )
        .await
        .failure(403, "Forbidden");
    alice
        .api_delete("/api/v1/users/robot")
        .await
        .failure(403, "Forbidden");
    alice
        .api_get("/api/v1/users/admin")
        .await
        .failure(403, "Forbidden");
    assert_eq!(
        alice.api_get("/api/v1/users/alice").await.ok(200)["metadata"]["name"],
        "alice"
    );
    s.api_get("/api/v1/users/ghost")
        .await
        .failure(404, "NotFound");
    assert_eq!(
        alice.api_get("/api/v1/users/%7E").await.ok(200)["metadata"]["name"],
        "alice"
    );
    let me = s.api_get("/api/v1/users/~").await;
    assert_eq!(me.ok(200)["metadata"]["name"], "admin");
    assert_eq!(me.body["superUser"], true);

    // Groups.
    let g = s
        .api_post(
            "/api/v1/groups",
            json!({"metadata":{"name":"devs"},"users":["alice"]}),
        )
        .await;
    let g = g.ok(201);
    assert_eq!(g["kind"], "Group");
    assert_eq!(g["users"], json!(["alice"]));
    assert_timestamp(&g["metadata"]["creationTimestamp"]);
    s.api_post("/api/v1/groups", json!({"metadata":{"name":"devs"}}))
        .await
        .failure(409, "AlreadyExists");
    for bad in [
        json!({"metadata":{"name":"system:authenticated"}}),
        json!({"metadata":{"name":"system:serviceaccounts:p"}}),
        json!({"metadata":{"name":"Devs"}}),
        json!({"metadata":{"name":"ops"},"users":["Not A User"]}),
    ] {
        s.api_post("/api/v1/groups", bad)
            .await
            .failure(422, "Invalid");
    }
    alice
        .api_get("/api/v1/groups")
        .await
        .failure(403, "Forbidden");
    alice
        .api_post("/api/v1/groups", json!({"metadata":{"name":"x"}}))
        .await
        .failure(403, "Forbidden");
    let list = s.api_get("/api/v1/groups").await;
    assert_eq!(list.ok(200)["kind"], "GroupList");
    assert_eq!(names(&list.body), vec!["devs"]);
    assert_eq!(
        s.api_get("/api/v1/groups/devs").await.ok(200)["users"],
        json!(["alice"])
    );
    assert_eq!(
        alice.api_get("/api/v1/users/~").await.ok(200)["groups"],
        json!(["devs", "system:authenticated"])
    );
    let replaced = s
        .api_put("/api/v1/groups/devs", json!({"users":["robot","boss"]}))
        .await;
    assert_eq!(replaced.ok(200)["users"], json!(["boss", "robot"]));
    s.api_put("/api/v1/groups/ghosts", json!({"users":[]}))
        .await
        .failure(404, "NotFound");
    s.api_put(
        "/api/v1/groups/devs",
        json!({"metadata":{"name":"other"},"users":[]}),
    )
    .await
    .failure(400, "BadRequest");
    assert_eq!(
        alice.api_get("/api/v1/users/~").await.ok(200)["groups"],
        json!(["system:authenticated"])
    );
    s.api_delete("/api/v1/groups/devs").await.success();
    s.api_get("/api/v1/groups/devs")
        .await
        .failure(404, "NotFound");
    s.api_delete("/api/v1/groups/devs")
        .await
        .failure(404, "NotFound");

    // Passwords: one's own, or anyone's for a cluster admin.
    alice
        .api_put("/api/v1/users/admin/password", json!({"password":"pwned"}))
        .await
        .failure(403, "Forbidden");
    alice
        .api_put("/api/v1/users/alice/password", json!({}))
        .await
        .failure(422, "Invalid");
    alice
        .api_put(
            "/api/v1/users/alice/password",
            json!({"password":"alice-pw-2"}),
        )
        .await
        .success();
    alice
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");
    let alice = s.with_credentials("alice", "alice-pw-2");
    alice.api_get("/api/v1/users/~").await.ok(200);
    s.api_put(
        "/api/v1/users/robot/password",
        json!({"password":"robot-pw"}),
    )
    .await
    .success();
    s.with_credentials("robot", "robot-pw")
        .api_get("/api/v1/users/~")
        .await
        .ok(200);
    s.api_put("/api/v1/users/ghost/password", json!({"password":"x"}))
        .await
        .failure(404, "NotFound");

    // Deleting a user revokes its tokens.
    let token = alice.api_post("/api/v1/tokens", json!({})).await.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.with_bearer(&token)
        .api_get("/api/v1/users/~")
        .await
        .ok(200);
    s.api_delete("/api/v1/users/alice").await.success();
    s.api_delete("/api/v1/users/alice")
        .await
        .failure(404, "NotFound");
    s.api_get("/api/v1/users/alice")
        .await
        .failure(404, "NotFound");
    s.with_bearer(&token)
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");
    alice
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_creates_the_first_super_user_once() {
    let s = TestRegistry::start_with(|c| c.auth.bootstrap = Bootstrap::Initialize).await;
    assert!(!s.data_dir().join("admin-password").exists());
    s.with_credentials("admin", "anything")
        .api_get("/api/v1/users/~")
        .await
        .failure(401, "Unauthorized");

    s.anonymous()
        .api_post("/api/v1/user/initialize", json!({"username":"root"}))
        .await
        .failure(422, "Invalid");
    s.anonymous()
        .api_post(
            "/api/v1/user/initialize",
            json!({"username":"Root!","password":"pw"}),
        )
        .await
        .failure(422, "Invalid");

    let done = s.anonymous().api_post("/api/v1/user/initialize", json!({"username":"root","password":"root-pw","email":"root@example.com","access_token":true}))
        .await;
    let body = done.ok(200).clone();
    assert_eq!(body["username"], "root");
    assert_eq!(body["email"], "root@example.com");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berth_"));
    for auth in [s.with_bearer(&token), s.with_credentials("root", "root-pw")] {
        let me = auth.api_get("/api/v1/users/~").await;
        assert_eq!(me.ok(200)["metadata"]["name"], "root");
        assert_eq!(me.body["superUser"], true);
    }
    assert_eq!(
        s.with_bearer(&token).api_get("/api/v1/users").await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let again = s
        .anonymous()
        .api_post(
            "/api/v1/user/initialize",
            json!({"username":"other","password":"pw"}),
        )
        .await;
    again.failure(400, "BadRequest");
    assert_eq!(again.body["message"], "the registry is already initialized");
    s.shutdown().await;

    // Concurrent attempts on a fresh registry: exactly one wins, and without
    // asking for a token none is given.
    let s = TestRegistry::start_with(|c| c.auth.bootstrap = Bootstrap::Initialize).await;
    let attempts = ["one", "two", "three", "four"].map(|name| {
        let anonymous = s.anonymous();
        async move {
            anonymous
                .api_post(
                    "/api/v1/user/initialize",
                    json!({"username":name,"password":"pw"}),
                )
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let winners: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1);
    assert!(winners[0].body.get("access_token").is_none());
    for a in answers.iter().filter(|a| a.status != StatusCode::OK) {
        a.failure(400, "BadRequest");
    }
    let winner = winners[0].body["username"].as_str().unwrap().to_owned();
    let users = s
        .with_credentials(&winner, "pw")
        .api_get("/api/v1/users")
        .await;
    assert_eq!(names(users.ok(200)), vec![winner]);
    s.shutdown().await;
}

/// Two replicas sharing one PostgreSQL database, racing to initialize:
/// never two first users (at worst none, and the client retries). Skipped
/// when PostgreSQL is unreachable, unless `BERTH_REQUIRE_POSTGRES=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_to_initialize_make_at_most_one_user() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let url = database.url.clone();

    let configure = |c: &mut Config| {
        c.auth.bootstrap = Bootstrap::Initialize;
        c.database.url = Some(url.clone());
        c.database.max_connections = 4;
    };
    let a = TestRegistry::start_with(configure).await;
    let b = TestRegistry::start_with(configure).await;
    let attempts = [(&a, "one"), (&b, "two"), (&a, "three"), (&b, "four")].map(|(s, name)| {
        let anonymous = s.anonymous();
        async move {
            anonymous
                .api_post(
                    "/api/v1/user/initialize",
                    json!({"username":name,"password":"pw"}),
                )
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let winners: Vec<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .map(|a| a.body["username"].as_str().unwrap().to_owned())
        .collect();
    for refused in answers.iter().filter(|a| a.status != StatusCode::OK) {
        refused.failure(400, "BadRequest");
    }
    assert!(winners.len() <= 1, "{winners:?}");
    if let Some(winner) = winners.first() {
        // Both replicas know the one super user.
        for s in [&a, &b] {
            let users = s
                .with_credentials(winner, "pw")
                .api_get("/api/v1/users")
                .await;
            assert_eq!(names(users.ok(200)), vec![winner.clone()]);
        }
    } else {
        // Everyone backed out: nothing was left behind, and a retry works.
        let retry = b
            .anonymous()
            .api_post(
                "/api/v1/user/initialize",
                json!({"username":"retry","password":"pw"}),
            )
            .await;
        retry.ok(200);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_made_by_a_push_is_a_project() {
    let s = TestRegistry::start().await;
    // A super user pushes into a namespace nobody created.
    push_small_image(&s, "myproj/app", "v1").await;
    assert_eq!(project_names(&s).await, vec!["myproj"]);
    let project = s.api_get("/api/v1/projects/myproj").await;
    assert_eq!(
        project.ok(200)["metadata"]["annotations"]["openshift.io/requester"],
        "admin"
    );
    // It has the roles of any project: the pusher administers it, and roles
    // bound there work.
    let admins = s
        .api_get("/api/v1/namespaces/myproj/rolebindings/registry-admin")
        .await;
    assert_eq!(
        admins.ok(200)["subjects"],
        json!([{"kind":"User","name":"admin"}])
    );
    let alice = new_user(&s, "alice", "alice-pw").await;
    bind(
        &s,
        "myproj",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    assert_eq!(project_names(&alice).await, vec!["myproj"]);
    assert_eq!(
        alice.api_get("/v2/myproj/app/manifests/v1").await.status,
        StatusCode::OK
    );
    // Pushing into it again makes nothing new.
    push_small_image(&s, "myproj/other", "v1").await;
    assert_eq!(project_names(&s).await, vec!["myproj"]);
    s.shutdown().await;

    // Where pushes make no namespaces, even a super user's push into a
    // namespace that does not exist is refused, and says why.
    let s = TestRegistry::start_with(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Never;
    })
    .await;
    push_config_blob(&s, "newns/app").await.denied(
        "namespace \"newns\" does not exist and you may not create it (namespaces are not \
         created by pushes here; create the project first)",
    );
    assert!(project_names(&s).await.is_empty());
    s.create_project("newns").await;
    push_small_image(&s, "newns/app", "v1").await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_says_why_and_no_more_than_the_caller_may_know() {
    let s = TestRegistry::start().await;
    s.create_project("team").await;
    push_small_image(&s, "team/app", "v1").await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    bind(
        &s,
        "team",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    let stranger = new_user(&s, "stranger", "stranger-pw").await;
    let carol = new_user(&s, "carol", "carol-pw").await;
    bind_cluster(
        &s,
        "registry-viewer",
        json!([{"kind":"User","name":"carol"}]),
    )
    .await;
    let dave = new_user(&s, "dave", "dave-pw").await;
    bind_cluster(
        &s,
        "system:image-pusher",
        json!([{"kind":"User","name":"dave"}]),
    )
    .await;

    // A role without push: the caller knows the project.
    push_config_blob(&alice, "team/app")
        .await
        .denied("your role in namespace \"team\" does not allow pushing");
    // A stranger is told the same whether the namespace (or repository)
    // exists or not.
    let blind = "you have no role in namespace \"team\" that allows pushing, and you may not \
                 create namespaces";
    push_config_blob(&stranger, "team/app").await.denied(blind);
    push_config_blob(&stranger, "team/ghost")
        .await
        .denied(blind);
    push_config_blob(&stranger, "nowhere/app").await.denied(
        "you have no role in namespace \"nowhere\" that allows pushing, and you may not \
         create namespaces",
    );
    // Cluster-wide roles see every project: they are told it is missing.
    let missing = "namespace \"nowhere\" does not exist and you may not create it (ask a \
                   cluster admin to create the project)";
    push_config_blob(&carol, "nowhere/app")
        .await
        .denied(missing);
    push_config_blob(&carol, "team/app")
        .await
        .denied("your role in namespace \"team\" does not allow pushing");
    // A cluster-wide pusher pushes into every project, but makes none.
    push_config_blob(&dave, "nowhere/app").await.denied(missing);
    assert_eq!(
        push_config_blob(&dave, "team/dave").await.status,
        StatusCode::CREATED
    );
    assert_eq!(project_names(&s).await, vec!["team"]);
    s.shutdown().await;

    // Where anyone may create namespaces, existence is no secret (creating
    // the project would say it exists): a stranger is told which case it is.
    let s = TestRegistry::start_with(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    s.create_project("team").await;
    let stranger = new_user(&s, "stranger", "stranger-pw").await;
    push_config_blob(&stranger, "team/app")
        .await
        .denied("you have no role in namespace \"team\" that allows pushing");
    assert_eq!(
        push_config_blob(&stranger, "mine/app").await.status,
        StatusCode::CREATED
    );
    assert_eq!(project_names(&stranger).await, vec!["mine"]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_made_again_does_not_inherit_the_deleted_ones_images() {
    let s = TestRegistry::start_with(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let mallory = new_user(&s, "mallory", "mallory-pw").await;
    push_small_image(&alice, "team/app", "v1").await;
    // Read once, so that whatever berth caches of it is cached.
    let pulled = alice.api_get("/v2/team/app/manifests/v1").await;
    assert_eq!(pulled.status, StatusCode::OK);
    let digest = pulled.headers["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        alice.api_get("/v2/team/app/tags/list").await.body["tags"],
        json!(["v1"])
    );
    alice.api_delete("/api/v1/projects/team").await.success();

    mallory
        .api_post("/api/v1/projects", json!({"metadata":{"name":"team"}}))
        .await
        .ok(201);
    let code = |a: &Answer| {
        a.body["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    for reference in ["v1", digest.as_str()] {
        let a = mallory
            .api_get(&format!("/v2/team/app/manifests/{reference}"))
            .await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into())
        );
    }
    let a = mallory.api_get("/v2/team/app/tags/list").await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN".into())
    );
    let a = mallory
        .api_get(&format!("/v2/team/app/blobs/{EMPTY_JSON_DIGEST}"))
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN".into())
    );
    let catalog = s.api_get("/v2/_catalog").await;
    assert_eq!(catalog.ok(200)["repositories"], json!([]));
    // The new project is mallory's to fill.
    push_small_image(&mallory, "team/app", "v2").await;
    assert_eq!(
        mallory.api_get("/v2/team/app/tags/list").await.body["tags"],
        json!(["v2"])
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_or_deletion_ends_password_logins_at_once() {
    let s = TestRegistry::start().await;
    s.create_project("team").await;
    push_small_image(&s, "team/app", "v1").await;
    bind(
        &s,
        "team",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    let pull = "/v2/team/app/manifests/v1";
    let scope = "repository:team/app:pull";
    let status = async |auth: &RegistryClient| auth.api_get(pull).await.status;
    let jwt_of = async |auth: &RegistryClient| {
        let (status, body) = ask_jwt(auth, scope).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        s.with_bearer(body["token"].as_str().unwrap())
    };

    // Changed by the user itself.
    let old = new_user(&s, "alice", "first-pw").await;
    let old_jwt = jwt_of(&old).await;
    assert_eq!(status(&old).await, StatusCode::OK);
    assert_eq!(status(&old_jwt).await, StatusCode::OK);
    old.api_put("/api/v1/users/~/password", json!({"password":"second-pw"}))
        .await
        .success();
    assert_eq!(status(&old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&old_jwt).await, StatusCode::UNAUTHORIZED);
    let second = s.with_credentials("alice", "second-pw");
    let second_jwt = jwt_of(&second).await;
    assert_eq!(status(&second_jwt).await, StatusCode::OK);

    // Changed by an admin.
    s.api_put(
        "/api/v1/users/alice/password",
        json!({"password":"third-pw"}),
    )
    .await
    .success();
    assert_eq!(status(&second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&second_jwt).await, StatusCode::UNAUTHORIZED);
    let third = s.with_credentials("alice", "third-pw");
    let third_jwt = jwt_of(&third).await;
    assert_eq!(status(&third_jwt).await, StatusCode::OK);

    // Deleted.
    s.api_delete("/api/v1/users/alice").await.success();
    assert_eq!(status(&third).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&third_jwt).await, StatusCode::UNAUTHORIZED);
    // A new user of the same name, with the same password and the bindings
    // the old one left, inherits none of its tokens.
    let again = new_user(&s, "alice", "third-pw").await;
    assert_eq!(status(&again).await, StatusCode::OK);
    assert_eq!(status(&third_jwt).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&jwt_of(&again).await).await, StatusCode::OK);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_names_are_each_users_own() {
    let s = TestRegistry::start().await;
    let alice = new_user(&s, "alice", "alice-pw").await;
    let bob = new_user(&s, "bob", "bob-pw").await;
    let make = async |auth: &RegistryClient| {
        auth.api_post("/api/v1/tokens", json!({"metadata":{"name":"laptop"}}))
            .await
    };
    let secret = |token: &Value| s.with_bearer(token["status"]["token"].as_str().unwrap());
    let alices = secret(make(&alice).await.ok(201));
    // bob is not told that alice has a token of that name.
    let bobs = secret(make(&bob).await.ok(201));
    // Each user's names are unique for that user.
    make(&alice).await.failure(409, "AlreadyExists");
    for t in [&alices, &bobs] {
        assert_eq!(t.api_get("/v2/").await.status, StatusCode::OK);
    }
    assert_eq!(
        names(alice.api_get("/api/v1/tokens").await.ok(200)),
        vec!["laptop"]
    );

    // A cluster admin names whose, when several users have the name.
    s.api_delete("/api/v1/tokens/laptop")
        .await
        .failure(409, "Conflict");
    // bob cannot reach alice's through ?user=.
    bob.api_delete("/api/v1/tokens/laptop?user=alice")
        .await
        .failure(404, "NotFound");
    assert_eq!(alices.api_get("/v2/").await.status, StatusCode::OK);
    s.api_delete("/api/v1/tokens/laptop?user=bob")
        .await
        .success();
    assert_eq!(bobs.api_get("/v2/").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(alices.api_get("/v2/").await.status, StatusCode::OK);
    // Each user revokes its own by name.
    let bobs = secret(make(&bob).await.ok(201));
    alice.api_delete("/api/v1/tokens/laptop").await.success();
    assert_eq!(
        alices.api_get("/v2/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bobs.api_get("/v2/").await.status, StatusCode::OK);
    // With one left, a cluster admin needs no ?user=.
    s.api_delete("/api/v1/tokens/laptop").await.success();
    assert_eq!(bobs.api_get("/v2/").await.status, StatusCode::UNAUTHORIZED);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_super_user_cannot_be_deleted() {
    let s = TestRegistry::start_with(|c| c.auth.super_users = vec!["carol".into()]).await;
    let refused = |answer: Answer, name: &str| {
        answer.failure(409, "Conflict");
        let message = answer.body["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("\"{name}\" is the last super user")),
            "{message}"
        );
    };
    // The only super user deleting itself.
    refused(s.api_delete("/api/v1/users/admin").await, "admin");
    assert_eq!(
        s.api_get("/api/v1/users").await.status,
        StatusCode::OK,
        "still administers"
    );
    // With another super user, either may go, but not both.
    s.api_post(
        "/api/v1/users",
        json!({"metadata":{"name":"root"},"password":"root-pw","superUser":true}),
    )
    .await
    .ok(201);
    let root = s.with_credentials("root", "root-pw");
    root.api_delete("/api/v1/users/admin").await.success();
    refused(root.api_delete("/api/v1/users/root").await, "root");
    // A super user by the configuration counts once it is a user.
    root.api_post(
        "/api/v1/users",
        json!({"metadata":{"name":"carol"},"password":"carol-pw"}),
    )
    .await
    .ok(201);
    let carol = s.with_credentials("carol", "carol-pw");
    carol.api_delete("/api/v1/users/root").await.success();
    refused(carol.api_delete("/api/v1/users/carol").await, "carol");
    assert_eq!(carol.api_get("/api/v1/users").await.status, StatusCode::OK);
    s.shutdown().await;
}

/// `GET /api/v1/jobs` shows the jobs that run once across replicas (here
/// the one replica of the embedded database) with their last run and the
/// next; `POST /api/v1/jobs/{name}/run` makes one due now, and the replica
/// answering runs it at once. Cluster admins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_and_run_on_demand_by_cluster_admins() {
    let registry = TestRegistry::start_with(|c: &mut Config| {
        c.uploads.stale_after = std::time::Duration::from_secs(1);
        // Nothing runs by its schedule or a poll during the test: only
        // the first runs at start, and what the API asks for.
        c.uploads.cleanup_interval = std::time::Duration::from_secs(3600);
        c.jobs.poll_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let admin = registry.client();

    // The jobs ran once at start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let list = loop {
        let list = admin.api_get("/api/v1/jobs").await.ok(200).clone();
        let ran = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["status"]["runs"].as_u64() >= Some(1))
            .count();
        if ran == 5 {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs did not run: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("JobList"))
    );
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "garbage-collection",
            "image-pruner",
            "scheduled-imports",
            "signing-key-rotation",
            "stale-uploads"
        ]
    );
    let now = time::OffsetDateTime::now_utc();
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap_or_else(|| panic!("a time: {v}")),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    for job in list["items"].as_array().unwrap() {
        let status = &job["status"];
        assert_eq!(job["kind"], "Job", "{job}");
        assert_eq!(status["lastOutcome"], "Succeeded", "{job}");
        assert_eq!(status["consecutiveFailures"], 0, "{job}");
        assert!(status.get("holder").is_none(), "nothing runs now: {job}");
        assert!(status.get("lastError").is_none(), "{job}");
        let replica = status["lastReplica"].as_str().unwrap();
        assert!(
            replica.contains(&format!("-{}-", std::process::id())),
            "hostname-pid-random: {replica}"
        );
        assert!(parse(&status["lastStartTime"]) <= parse(&status["lastCompletionTime"]));
        assert!(parse(&status["nextRunTime"]) > now, "{job}");
    }
    let stale_uploads = admin
        .api_get("/api/v1/jobs/stale-uploads")
        .await
        .ok(200)
        .clone();
    assert_eq!(stale_uploads["metadata"]["name"], "stale-uploads");
    let runs_before = stale_uploads["status"]["runs"].as_u64().unwrap();

    // An abandoned upload stays until the job runs; asked to, it runs now.
    let upload = registry.start_upload("jobs/app").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        registry.upload_status(&upload.location).await.status(),
        StatusCode::NO_CONTENT
    );
    let due = admin
        .api_post("/api/v1/jobs/stale-uploads/run", json!({}))
        .await
        .ok(200)
        .clone();
    assert!(parse(&due["status"]["nextRunTime"]) <= time::OffsetDateTime::now_utc());
    // Its run is recorded; then (not while it runs: an upload in use by a
    // request is not abandoned) the upload is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let job = admin
            .api_get("/api/v1/jobs/stale-uploads")
            .await
            .ok(200)
            .clone();
        if job["status"]["runs"].as_u64() == Some(runs_before + 1) {
            assert_eq!(job["status"]["lastOutcome"], "Succeeded");
            assert!(parse(&job["status"]["nextRunTime"]) > time::OffsetDateTime::now_utc());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job was not run: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        registry.upload_status(&upload.location).await.status(),
        StatusCode::NOT_FOUND
    );

    admin
        .api_get("/api/v1/jobs/no-such-job")
        .await
        .failure(404, "NotFound");
    admin
        .api_post("/api/v1/jobs/no-such-job/run", json!({}))
        .await
        .failure(404, "NotFound");

    // Others: refused.
    let alice = new_user(admin, "alice", "alice-pw").await;
    for answer in [
        alice.api_get("/api/v1/jobs").await,
        alice.api_get("/api/v1/jobs/stale-uploads").await,
        alice
            .api_post("/api/v1/jobs/stale-uploads/run", json!({}))
            .await,
    ] {
        answer.failure(403, "Forbidden");
    }
    registry
        .anonymous()
        .api_get("/api/v1/jobs")
        .await
        .failure(401, "Unauthorized");
}
