//! The administration REST API (`/api/v1`, docs/rest-api.md) driven over a
//! socket: a real server per test, started in-process on a free loopback
//! port with its own data directory.

use std::time::Duration;

use berth::config::{AutoCreateNamespaces, Bootstrap, Config};
use berth::server::RunningServer;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `{}`, the config blob of the test image.
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Clone, Debug)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

fn basic(user: &str, secret: &str) -> Auth {
    Auth::Basic(user.into(), secret.into())
}

fn bearer(token: &str) -> Auth {
    Auth::Bearer(token.into())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// Asserts a `Status` failure with this code and reason.
    #[track_caller]
    fn failure(&self, code: u16, reason: &str) {
        assert_eq!(self.status.as_u16(), code, "{}", self.body);
        assert_eq!(self.body["kind"], "Status", "{}", self.body);
        assert_eq!(self.body["apiVersion"], "v1");
        assert_eq!(self.body["status"], "Failure");
        assert_eq!(self.body["reason"], reason, "{}", self.body);
        assert_eq!(self.body["code"], code);
        assert!(self.body["message"].is_string());
    }

    /// Asserts a `/v2/` failure: this status and OCI error code.
    #[track_caller]
    fn oci_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["errors"][0]["code"], code, "{}", self.body);
    }

    #[track_caller]
    fn ok(&self, code: u16) -> &Value {
        assert_eq!(self.status.as_u16(), code, "{}", self.body);
        &self.body
    }

    /// Asserts `200` with a `Status` of `Success`.
    #[track_caller]
    fn success(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["kind"], "Status");
        assert_eq!(self.body["status"], "Success");
    }
}

struct Server {
    running: Option<RunningServer>,
    base: String,
    client: reqwest::Client,
    admin: Auth,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(configure: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        configure(&mut config);
        let bootstrap = config.auth.bootstrap;
        let running = berth::server::start(config).await.unwrap();
        let base = format!("http://{}", running.local_addr);
        let admin = match bootstrap {
            Bootstrap::AdminPassword => {
                let password = std::fs::read_to_string(dir.path().join("admin-password")).unwrap();
                basic("admin", password.trim())
            }
            Bootstrap::Initialize => Auth::None,
        };
        Server {
            running: Some(running),
            base,
            client: reqwest::Client::new(),
            admin,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            drop(std::mem::replace(&mut self.client, reqwest::Client::new()));
            let _ = tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await;
        }
    }

    fn request(&self, method: Method, path: &str, auth: &Auth) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::None => builder,
            Auth::Basic(user, secret) => builder.basic_auth(user, Some(secret)),
            Auth::Bearer(token) => builder.bearer_auth(token),
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Answer {
        let response = builder.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Answer {
        let mut builder = self.request(method, path, auth);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        self.send(builder).await
    }

    async fn get(&self, path: &str, auth: &Auth) -> Answer {
        self.call(Method::GET, path, auth, None).await
    }

    async fn post(&self, path: &str, auth: &Auth, body: Value) -> Answer {
        self.call(Method::POST, path, auth, Some(body)).await
    }

    async fn put(&self, path: &str, auth: &Auth, body: Value) -> Answer {
        self.call(Method::PUT, path, auth, Some(body)).await
    }

    async fn delete(&self, path: &str, auth: &Auth) -> Answer {
        self.call(Method::DELETE, path, auth, None).await
    }

    /// Creates a user with a password (as admin).
    async fn user(&self, name: &str, password: &str) -> Auth {
        self.post(
            "/api/v1/users",
            &self.admin,
            json!({"metadata":{"name":name},"password":password}),
        )
        .await
        .ok(201);
        basic(name, password)
    }

    async fn project(&self, name: &str) {
        self.post(
            "/api/v1/projects",
            &self.admin,
            json!({"metadata":{"name":name}}),
        )
        .await
        .ok(201);
    }

    async fn bind(&self, ns: &str, role: &str, subjects: Value) -> Value {
        self.post(
            &format!("/api/v1/namespaces/{ns}/rolebindings/{role}/add-subjects"),
            &self.admin,
            json!({ "subjects": subjects }),
        )
        .await
        .ok(200)
        .clone()
    }

    /// Pushes a one-blob image as `auth`.
    async fn push_image(&self, repo: &str, tag: &str, auth: &Auth) {
        let blob = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={EMPTY_JSON_DIGEST}"),
                auth,
            )
            .body("{}");
        let answer = self.send(blob).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":EMPTY_JSON_DIGEST,"size":2},
            "layers": []
        });
        let put = self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"), auth)
            .header("content-type", OCI_MANIFEST)
            .body(manifest.to_string());
        let answer = self.send(put).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }

    /// A JWT from the token service, as `auth`, for `scope`.
    async fn jwt(&self, auth: &Auth, scope: &str) -> (StatusCode, Value) {
        let answer = self
            .get(&format!("/auth/token?service=berth&scope={scope}"), auth)
            .await;
        (answer.status, answer.body)
    }
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
    let s = Server::start(|_| {}).await;

    for (method, path) in [
        (Method::GET, "/api/v1/projects"),
        (Method::POST, "/api/v1/projects"),
        (Method::GET, "/api/v1/users/~"),
        (Method::GET, "/api/v1/namespaces/x/rolebindings"),
        (Method::DELETE, "/api/v1/tokens/x"),
        (Method::GET, "/api/v1/clusterrolebindings"),
        (Method::PUT, "/api/v1/groups/x"),
    ] {
        let a = s.call(method, path, &Auth::None, Some(json!({}))).await;
        a.failure(401, "Unauthorized");
        let challenge = a.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(challenge.contains("/auth/token"), "{challenge}");
    }
    // Wrong credentials are 401 too, never a silent anonymous.
    s.get("/api/v1/projects", &basic("admin", "wrong"))
        .await
        .failure(401, "Unauthorized");
    s.get("/api/v1/projects", &bearer("berth_notatoken"))
        .await
        .failure(401, "Unauthorized");

    // The OpenAPI document, without credentials.
    let d = s.get("/api/v1/discovery", &Auth::None).await;
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
    s.get("/api/v1/nothing-here", &s.admin)
        .await
        .failure(404, "NotFound");
    s.call(Method::PATCH, "/api/v1/projects", &s.admin, None)
        .await
        .failure(405, "MethodNotAllowed");
    // Unreadable JSON is a bad request.
    let bad = s
        .request(Method::POST, "/api/v1/projects", &s.admin)
        .header("content-type", "application/json")
        .body("{not json");
    s.send(bad).await.failure(400, "BadRequest");

    // This registry made its admin itself: there is nothing to initialize.
    let a = s
        .post(
            "/api/v1/user/initialize",
            &Auth::None,
            json!({"username":"root","password":"pw"}),
        )
        .await;
    a.failure(400, "BadRequest");
    assert_eq!(a.body["message"], "the registry is already initialized");

    // Each route is counted under its own label.
    let metrics = s.get("/metrics", &Auth::None).await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_visible_only_to_those_with_a_role() {
    let s = Server::start(|_| {}).await;
    let alice = s.user("alice", "alice-pw").await;
    let bob = s.user("bob", "bob-pw").await;

    let created = s
        .post(
            "/api/v1/projects",
            &s.admin,
            json!({"metadata":{"name":"team"}}),
        )
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
    s.post(
        "/api/v1/projects",
        &s.admin,
        json!({"metadata":{"name":"team"}}),
    )
    .await
    .failure(409, "AlreadyExists");
    for bad in ["Team", "a--b", "-x", "x/y", &"a".repeat(64)] {
        s.post(
            "/api/v1/projects",
            &s.admin,
            json!({"metadata":{"name":bad}}),
        )
        .await
        .failure(422, "Invalid");
    }
    s.post("/api/v1/projects", &s.admin, json!({}))
        .await
        .failure(422, "Invalid");

    // Admin sees it; alice has no role: she sees nothing, and 404s.
    let list = s.get("/api/v1/projects", &s.admin).await;
    assert_eq!(list.ok(200)["kind"], "ProjectList");
    assert_eq!(names(&list.body), vec!["team"]);
    assert!(names(s.get("/api/v1/projects", &alice).await.ok(200)).is_empty());
    s.get("/api/v1/projects/team", &alice)
        .await
        .failure(404, "NotFound");
    s.delete("/api/v1/projects/team", &alice)
        .await
        .failure(404, "NotFound");
    s.get("/api/v1/namespaces/team/serviceaccounts", &alice)
        .await
        .failure(404, "NotFound");
    s.post(
        "/api/v1/namespaces/team/serviceaccounts",
        &alice,
        json!({"metadata":{"name":"x"}}),
    )
    .await
    .failure(404, "NotFound");
    // Absent and hidden look the same.
    let hidden = s.get("/api/v1/projects/team", &alice).await.body;
    let absent = s.get("/api/v1/projects/nothere", &alice).await.body;
    assert_eq!(
        hidden["message"].as_str().unwrap().replace("team", "X"),
        absent["message"].as_str().unwrap().replace("nothere", "X")
    );
    // Only cluster admins create projects by default.
    s.post(
        "/api/v1/projects",
        &alice,
        json!({"metadata":{"name":"mine"}}),
    )
    .await
    .failure(403, "Forbidden");

    // A viewer sees the project and reads inside it, but changes nothing.
    s.bind(
        "team",
        "registry-viewer",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    assert_eq!(
        s.get("/api/v1/projects/team", &alice).await.ok(200)["metadata"]["name"],
        "team"
    );
    assert_eq!(
        names(s.get("/api/v1/projects", &alice).await.ok(200)),
        vec!["team"]
    );
    s.get("/api/v1/namespaces/team/serviceaccounts", &alice)
        .await
        .ok(200);
    s.delete("/api/v1/projects/team", &alice)
        .await
        .failure(403, "Forbidden");
    s.post(
        "/api/v1/namespaces/team/serviceaccounts",
        &alice,
        json!({"metadata":{"name":"x"}}),
    )
    .await
    .failure(403, "Forbidden");
    s.get("/api/v1/projects/team", &bob)
        .await
        .failure(404, "NotFound");

    // A group binding works as well.
    s.post(
        "/api/v1/groups",
        &s.admin,
        json!({"metadata":{"name":"devs"},"users":["bob"]}),
    )
    .await
    .ok(201);
    s.bind(
        "team",
        "system:image-puller",
        json!([{"kind":"Group","name":"devs"}]),
    )
    .await;
    s.get("/api/v1/projects/team", &bob).await.ok(200);
    // A puller has a role but may not read the service accounts.
    s.get("/api/v1/namespaces/team/serviceaccounts", &bob)
        .await
        .failure(403, "Forbidden");

    // Deleting removes the project with its bindings; alice loses it.
    s.delete("/api/v1/projects/team", &s.admin).await.success();
    s.get("/api/v1/projects/team", &s.admin)
        .await
        .failure(404, "NotFound");
    s.get("/api/v1/projects/team", &alice)
        .await
        .failure(404, "NotFound");
    s.delete("/api/v1/projects/team", &s.admin)
        .await
        .failure(404, "NotFound");
    s.project("team").await;
    s.get("/api/v1/projects/team", &alice)
        .await
        .failure(404, "NotFound");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_authenticated_creates_projects_when_configured() {
    let s = Server::start(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    let alice = s.user("alice", "alice-pw").await;
    let p = s
        .post(
            "/api/v1/projects",
            &alice,
            json!({"metadata":{"name":"alices"}}),
        )
        .await;
    assert_eq!(
        p.ok(201)["metadata"]["annotations"]["openshift.io/requester"],
        "alice"
    );
    // The creator is its registry-admin.
    let b = s
        .get(
            "/api/v1/namespaces/alices/rolebindings/registry-admin",
            &alice,
        )
        .await;
    assert_eq!(
        b.ok(200)["subjects"],
        json!([{"kind":"User","name":"alice"}])
    );
    s.post(
        "/api/v1/namespaces/alices/serviceaccounts",
        &alice,
        json!({"metadata":{"name":"builder"}}),
    )
    .await
    .ok(201);
    s.delete("/api/v1/projects/alices", &alice).await.success();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_and_their_tokens() {
    let s = Server::start(|_| {}).await;
    s.project("p").await;
    s.push_image("p/app", "v1", &s.admin.clone()).await;

    let sa = s
        .post(
            "/api/v1/namespaces/p/serviceaccounts",
            &s.admin,
            json!({"metadata":{"name":"builder"}}),
        )
        .await;
    let body = sa.ok(201);
    assert_eq!(body["kind"], "ServiceAccount");
    assert_eq!(body["metadata"]["namespace"], "p");
    assert_eq!(body["username"], "system:serviceaccount:p:builder");
    assert_timestamp(&body["metadata"]["creationTimestamp"]);
    s.post(
        "/api/v1/namespaces/p/serviceaccounts",
        &s.admin,
        json!({"metadata":{"name":"builder"}}),
    )
    .await
    .failure(409, "AlreadyExists");
    s.post(
        "/api/v1/namespaces/p/serviceaccounts",
        &s.admin,
        json!({"metadata":{"name":"Builder!"}}),
    )
    .await
    .failure(422, "Invalid");
    s.post(
        "/api/v1/namespaces/nope/serviceaccounts",
        &s.admin,
        json!({"metadata":{"name":"builder"}}),
    )
    .await
    .failure(404, "NotFound");
    assert_eq!(
        s.get("/api/v1/namespaces/p/serviceaccounts/builder", &s.admin)
            .await
            .ok(200)["username"],
        "system:serviceaccount:p:builder"
    );
    s.get("/api/v1/namespaces/p/serviceaccounts/ghost", &s.admin)
        .await
        .failure(404, "NotFound");
    let list = s
        .get("/api/v1/namespaces/p/serviceaccounts", &s.admin)
        .await;
    assert_eq!(list.ok(200)["kind"], "ServiceAccountList");
    assert_eq!(names(&list.body), vec!["builder"]);

    // A token; its secret is shown once.
    let t = s
        .post(
            "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
            &s.admin,
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
    s.post(
        "/api/v1/namespaces/p/serviceaccounts/ghost/tokens",
        &s.admin,
        json!({}),
    )
    .await
    .failure(404, "NotFound");
    s.post(
        "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
        &s.admin,
        json!({"metadata":{"name":token["metadata"]["name"]}}),
    )
    .await
    .failure(409, "AlreadyExists");
    let listed = s.get("/api/v1/namespaces/p/tokens", &s.admin).await;
    assert_eq!(listed.ok(200)["kind"], "TokenList");
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("status").is_none());

    // The token works for /v2/ as a Basic password and as a Bearer token,
    // and the account is who it says.
    let as_basic = basic("anything", &secret);
    let as_bearer = bearer(&secret);
    for auth in [&as_basic, &as_bearer] {
        assert_eq!(s.get("/v2/", auth).await.status, StatusCode::OK);
        let me = s.get("/api/v1/users/~", auth).await;
        let me = me.ok(200);
        assert_eq!(me["kind"], "User");
        assert_eq!(me["metadata"]["name"], "system:serviceaccount:p:builder");
        assert!(strings(&me["groups"]).contains(&"system:serviceaccounts:p".to_owned()));
        assert_eq!(me["superUser"], false);
    }
    // It has no role yet: the manifest is refused.
    s.get("/v2/p/app/manifests/v1", &as_basic)
        .await
        .oci_error(403, "DENIED");
    s.bind(
        "p",
        "system:image-puller",
        json!([{"kind":"User","name":"system:serviceaccount:p:builder"}]),
    )
    .await;
    assert_eq!(
        s.get("/v2/p/app/manifests/v1", &as_basic).await.status,
        StatusCode::OK
    );
    // A JWT issued for it.
    let (status, jwt) = s.jwt(&as_basic, "repository:p/app:pull").await;
    assert_eq!(status, StatusCode::OK, "{jwt}");
    let jwt = jwt["token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/v2/p/app/manifests/v1", &bearer(&jwt)).await.status,
        StatusCode::OK
    );
    // A pull token cannot manage anything.
    s.get("/api/v1/users/~", &bearer(&jwt))
        .await
        .failure(401, "Unauthorized");

    // Revoking stops the token, and the JWT issued from it, at once.
    let name = token["metadata"]["name"].as_str().unwrap();
    s.delete(&format!("/api/v1/namespaces/p/tokens/{name}"), &s.admin)
        .await
        .success();
    s.delete(&format!("/api/v1/namespaces/p/tokens/{name}"), &s.admin)
        .await
        .failure(404, "NotFound");
    s.get("/v2/p/app/manifests/v1", &as_basic)
        .await
        .oci_error(401, "UNAUTHORIZED");
    s.get("/v2/", &as_bearer)
        .await
        .oci_error(401, "UNAUTHORIZED");
    s.get("/v2/p/app/manifests/v1", &bearer(&jwt))
        .await
        .oci_error(401, "UNAUTHORIZED");
    s.get("/api/v1/users/~", &as_bearer)
        .await
        .failure(401, "Unauthorized");

    // Deleting the account revokes its tokens.
    let second = s
        .post(
            "/api/v1/namespaces/p/serviceaccounts/builder/tokens",
            &s.admin,
            json!({"metadata":{"name":"ci"}}),
        )
        .await;
    let second = second.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.get("/v2/", &bearer(&second)).await.status, StatusCode::OK);
    s.delete("/api/v1/namespaces/p/serviceaccounts/builder", &s.admin)
        .await
        .success();
    s.delete("/api/v1/namespaces/p/serviceaccounts/builder", &s.admin)
        .await
        .failure(404, "NotFound");
    s.get("/v2/", &bearer(&second))
        .await
        .oci_error(401, "UNAUTHORIZED");
    assert!(names(s.get("/api/v1/namespaces/p/tokens", &s.admin).await.ok(200)).is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_are_shown_once_and_revoked_at_once() {
    let s = Server::start(|_| {}).await;
    let alice = s.user("alice", "alice-pw").await;
    let bob = s.user("bob", "bob-pw").await;

    let t = s
        .post(
            "/api/v1/tokens",
            &alice,
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

    s.post(
        "/api/v1/tokens",
        &alice,
        json!({"metadata":{"name":"laptop"}}),
    )
    .await
    .failure(409, "AlreadyExists");
    for bad in ["forever", "0s", "-1h"] {
        s.post("/api/v1/tokens", &alice, json!({"spec":{"expiresIn":bad}}))
            .await
            .failure(422, "Invalid");
    }
    // No body at all: a generated name, no expiry.
    let generated = s
        .send(s.request(Method::POST, "/api/v1/tokens", &alice))
        .await;
    let generated = generated.ok(201).clone();
    let generated_name = generated["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(
        generated_name.starts_with("alice-token-"),
        "{generated_name}"
    );
    assert!(generated["spec"].get("expirationTimestamp").is_none());

    // The token logs in: Basic with any name, Bearer, and through a JWT.
    for auth in [basic("whoever", &secret), bearer(&secret)] {
        assert_eq!(s.get("/v2/", &auth).await.status, StatusCode::OK);
        let me = s.get("/api/v1/users/~", &auth).await;
        assert_eq!(me.ok(200)["metadata"]["name"], "alice");
        assert_eq!(strings(&me.body["groups"]), vec!["system:authenticated"]);
    }
    // A JWT made from it serves /v2/, not the administration API.
    let (status, jwt) = s.jwt(&basic("x", &secret), "registry:catalog:*").await;
    assert_eq!(status, StatusCode::OK);
    let jwt = bearer(jwt["token"].as_str().unwrap());
    assert_eq!(s.get("/v2/_catalog", &jwt).await.status, StatusCode::OK);
    s.get("/api/v1/users/~", &jwt)
        .await
        .failure(401, "Unauthorized");

    // Listing: own tokens, without secrets; admins see every user token.
    let mine = s.get("/api/v1/tokens", &alice).await;
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
    s.post("/api/v1/tokens", &bob, json!({"metadata":{"name":"bobs"}}))
        .await
        .ok(201);
    assert_eq!(
        names(s.get("/api/v1/tokens", &bob).await.ok(200)),
        vec!["bobs"]
    );
    assert_eq!(
        names(s.get("/api/v1/tokens", &s.admin).await.ok(200)).len(),
        3
    );
    // Others' tokens are not found, not forbidden.
    s.delete("/api/v1/tokens/laptop", &bob)
        .await
        .failure(404, "NotFound");

    // Revoked: at once, including the JWT issued from it.
    s.delete("/api/v1/tokens/laptop", &alice).await.success();
    s.delete("/api/v1/tokens/laptop", &alice)
        .await
        .failure(404, "NotFound");
    s.get("/v2/", &bearer(&secret))
        .await
        .oci_error(401, "UNAUTHORIZED");
    s.get("/api/v1/users/~", &jwt)
        .await
        .failure(401, "Unauthorized");
    // Cluster admins revoke any user token.
    s.delete(&format!("/api/v1/tokens/{generated_name}"), &s.admin)
        .await
        .success();
    assert!(names(s.get("/api/v1/tokens", &alice).await.ok(200)).is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_bindings_cluster_bindings_and_who_can() {
    let s = Server::start(|_| {}).await;
    let alice = s.user("alice", "alice-pw").await;
    let carol = s.user("carol", "carol-pw").await;
    s.project("shared").await;
    s.project("myapp").await;
    s.push_image("shared/base", "v1", &s.admin.clone()).await;

    // The shared-project flow: every service account of myapp may pull.
    s.post(
        "/api/v1/namespaces/myapp/serviceaccounts",
        &s.admin,
        json!({"metadata":{"name":"default"}}),
    )
    .await
    .ok(201);
    let sa_token = s
        .post(
            "/api/v1/namespaces/myapp/serviceaccounts/default/tokens",
            &s.admin,
            json!({}),
        )
        .await
        .ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sa = basic("sa", &sa_token);
    s.get("/v2/shared/base/manifests/v1", &sa)
        .await
        .oci_error(403, "DENIED");
    let binding = s
        .bind(
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
        s.get("/v2/shared/base/manifests/v1", &sa).await.status,
        StatusCode::OK
    );

    // Errors: unknown role, bad subjects, no subjects.
    s.post(
        "/api/v1/namespaces/shared/rolebindings/system:image-nothing/add-subjects",
        &s.admin,
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(422, "Invalid");
    s.get("/api/v1/namespaces/shared/rolebindings/superuser", &s.admin)
        .await
        .failure(422, "Invalid");
    for bad in [
        json!({"subjects":[{"kind":"Robot","name":"x"}]}),
        json!({"subjects":[{"kind":"Group","name":"system:masters"}]}),
        json!({"subjects":[{"kind":"User","name":"Alice"}]}),
        json!({"subjects":[]}),
    ] {
        s.post(
            "/api/v1/namespaces/shared/rolebindings/registry-viewer/add-subjects",
            &s.admin,
            bad,
        )
        .await
        .failure(422, "Invalid");
    }
    s.get(
        "/api/v1/namespaces/shared/rolebindings/system:image-pusher",
        &s.admin,
    )
    .await
    .failure(404, "NotFound");

    let list = s
        .get("/api/v1/namespaces/shared/rolebindings", &s.admin)
        .await;
    assert_eq!(list.ok(200)["kind"], "RoleBindingList");
    assert_eq!(
        names(&list.body),
        vec!["system:image-puller", "registry-admin"]
    );

    // who-can.
    let who = s
        .get("/api/v1/namespaces/shared/whocan?verb=pull", &s.admin)
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
        .get("/api/v1/namespaces/shared/whocan?verb=push", &s.admin)
        .await;
    assert!(!strings(&push.ok(200)["users"]).contains(&"carol".to_owned()));
    s.get("/api/v1/namespaces/shared/whocan?verb=fly", &s.admin)
        .await
        .failure(422, "Invalid");
    s.get("/api/v1/namespaces/shared/whocan", &s.admin)
        .await
        .failure(400, "BadRequest");

    // No role: 404; a role without admin: reads, but 403 on writes.
    s.get("/api/v1/namespaces/shared/rolebindings", &alice)
        .await
        .failure(404, "NotFound");
    s.get("/api/v1/namespaces/shared/whocan?verb=pull", &alice)
        .await
        .failure(404, "NotFound");
    s.post(
        "/api/v1/namespaces/shared/rolebindings/registry-admin/add-subjects",
        &alice,
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(404, "NotFound");
    s.bind(
        "shared",
        "registry-editor",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    s.get("/api/v1/namespaces/shared/whocan?verb=pull", &alice)
        .await
        .ok(200);
    s.get("/api/v1/namespaces/shared/rolebindings", &alice)
        .await
        .ok(200);
    s.post(
        "/api/v1/namespaces/shared/rolebindings/registry-admin/add-subjects",
        &alice,
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(403, "Forbidden");
    s.delete(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller",
        &alice,
    )
    .await
    .failure(403, "Forbidden");
    // carol, a puller, has a role but may not read bindings.
    s.get("/api/v1/namespaces/shared/rolebindings", &carol)
        .await
        .failure(403, "Forbidden");

    // remove-subjects answers what is left; delete unbinds the rest.
    let left = s
        .post(
            "/api/v1/namespaces/shared/rolebindings/system:image-puller/remove-subjects",
            &s.admin,
            json!({"subjects":[
                {"kind":"Group","name":"system:serviceaccounts:myapp"},
                {"kind":"User","name":"nobody"}
            ]}),
        )
        .await;
    assert_eq!(left.ok(200)["subjects"].as_array().unwrap().len(), 3);
    s.get("/v2/shared/base/manifests/v1", &sa)
        .await
        .oci_error(403, "DENIED");
    s.delete(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller",
        &s.admin,
    )
    .await
    .success();
    s.get(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller",
        &s.admin,
    )
    .await
    .failure(404, "NotFound");
    s.delete(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller",
        &s.admin,
    )
    .await
    .failure(404, "NotFound");
    s.post(
        "/api/v1/namespaces/shared/rolebindings/system:image-puller/remove-subjects",
        &s.admin,
        json!({"subjects":[{"kind":"User","name":"carol"}]}),
    )
    .await
    .failure(404, "NotFound");

    // Cluster role bindings: cluster admins only.
    s.get("/api/v1/clusterrolebindings", &alice)
        .await
        .failure(403, "Forbidden");
    s.post(
        "/api/v1/clusterrolebindings/cluster-admin/add-subjects",
        &alice,
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(403, "Forbidden");
    s.get("/api/v1/users", &alice)
        .await
        .failure(403, "Forbidden");
    let cb = s
        .post(
            "/api/v1/clusterrolebindings/cluster-admin/add-subjects",
            &s.admin,
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await;
    let cb = cb.ok(200);
    assert_eq!(cb["kind"], "ClusterRoleBinding");
    assert!(cb["metadata"].get("namespace").is_none());
    assert_eq!(cb["subjects"], json!([{"kind":"User","name":"alice"}]));
    s.post(
        "/api/v1/clusterrolebindings/root/add-subjects",
        &s.admin,
        json!({"subjects":[{"kind":"User","name":"alice"}]}),
    )
    .await
    .failure(422, "Invalid");
    s.post(
        "/api/v1/clusterrolebindings/system:image-puller/add-subjects",
        &s.admin,
        json!({"subjects":[{"kind":"ServiceAccount","name":"robot"}]}),
    )
    .await
    .failure(422, "Invalid");
    // Alice is now a cluster admin: users, every project, cluster bindings.
    s.get("/api/v1/users", &alice).await.ok(200);
    assert_eq!(
        names(s.get("/api/v1/projects", &alice).await.ok(200)),
        vec!["myapp", "shared"]
    );
    let all = s.get("/api/v1/clusterrolebindings", &alice).await;
    assert_eq!(all.ok(200)["kind"], "ClusterRoleBindingList");
    assert_eq!(names(&all.body), vec!["cluster-admin"]);
    assert_eq!(
        s.get("/api/v1/clusterrolebindings/cluster-admin", &alice)
            .await
            .ok(200)["roleRef"]["name"],
        "cluster-admin"
    );
    s.get("/api/v1/clusterrolebindings/registry-viewer", &alice)
        .await
        .failure(404, "NotFound");
    let left = s
        .post(
            "/api/v1/clusterrolebindings/cluster-admin/remove-subjects",
            &s.admin,
            json!({"subjects":[{"kind":"User","name":"alice"}]}),
        )
        .await;
    assert_eq!(left.ok(200)["subjects"], json!([]));
    s.get("/api/v1/users", &alice)
        .await
        .failure(403, "Forbidden");
    s.post(
        "/api/v1/clusterrolebindings/system:image-puller/add-subjects",
        &s.admin,
        json!({"subjects":[{"kind":"User","name":"carol"}]}),
    )
    .await
    .ok(200);
    s.delete("/api/v1/clusterrolebindings/system:image-puller", &s.admin)
        .await
        .success();
    s.delete("/api/v1/clusterrolebindings/system:image-puller", &s.admin)
        .await
        .failure(404, "NotFound");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_namespace_lets_anonymous_callers_pull() {
    let s = Server::start(|_| {}).await;
    s.project("pub").await;
    s.push_image("pub/app", "v1", &s.admin.clone()).await;

    let anonymous = Auth::None;
    s.get("/v2/pub/app/manifests/v1", &anonymous)
        .await
        .oci_error(401, "UNAUTHORIZED");
    let (status, token) = s.jwt(&anonymous, "repository:pub/app:pull").await;
    assert_eq!(status, StatusCode::OK);
    s.get(
        "/v2/pub/app/manifests/v1",
        &bearer(token["token"].as_str().unwrap()),
    )
    .await
    .oci_error(401, "UNAUTHORIZED");

    s.bind(
        "pub",
        "system:image-puller",
        json!([{"kind":"Group","name":"system:unauthenticated"}]),
    )
    .await;
    let pulled = s.get("/v2/pub/app/manifests/v1", &anonymous).await;
    assert_eq!(pulled.status, StatusCode::OK);
    assert_eq!(pulled.body["mediaType"], OCI_MANIFEST);
    // The token service grants anonymous pulls, and nothing more.
    let (status, token) = s.jwt(&anonymous, "repository:pub/app:pull,push").await;
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
        s.get("/v2/pub/app/manifests/v1", &bearer(jwt)).await.status,
        StatusCode::OK
    );
    // Signed-in users keep what anonymous callers have.
    let alice = s.user("alice", "alice-pw").await;
    assert_eq!(
        s.get("/v2/pub/app/manifests/v1", &alice).await.status,
        StatusCode::OK
    );
    // Still no admin API for anonymous callers.
    s.get("/api/v1/projects/pub", &anonymous)
        .await
        .failure(401, "Unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_passwords() {
    let s = Server::start(|_| {}).await;

    let users = s.get("/api/v1/users", &s.admin).await;
    assert_eq!(users.ok(200)["kind"], "UserList");
    assert_eq!(names(&users.body), vec!["admin"]);
    assert_eq!(users.body["items"][0]["superUser"], true);

    let created = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({"metadata":{"name":"alice"},"password":"alice-pw","email":"alice@example.com","superUser":false}),
        )
        .await;
    let u = created.ok(201);
    assert_eq!(u["apiVersion"], "v1");
    assert_eq!(u["kind"], "User");
    assert_eq!(u["metadata"]["name"], "alice");
    assert_eq!(u["groups"], json!(["system:authenticated"]));
    assert_eq!(u["superUser"], false);
    assert_timestamp(&u["metadata"]["creationTimestamp"]);
    let alice = basic("alice", "alice-pw");
    s.post(
        "/api/v1/users",
        &s.admin,
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
        s.post("/api/v1/users", &s.admin, bad)
            .await
            .failure(422, "Invalid");
    }
    // A token-only user, and a super user.
    s.post(
        "/api/v1/users",
        &s.admin,
        json!({"metadata":{"name":"robot"}}),
    )
    .await
    .ok(201);
    s.get("/v2/", &basic("robot", ""))
        .await
        .oci_error(401, "UNAUTHORIZED");
    // It gets in with a token a cluster admin makes for it.
    let robot_token = s
        .post("/api/v1/users/robot/tokens", &s.admin, json!({}))
        .await;
    let robot_token = robot_token.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = s.get("/api/v1/users/~", &bearer(&robot_token)).await;
    assert_eq!(me.ok(200)["metadata"]["name"], "robot");
    s.post("/api/v1/users/nobody/tokens", &s.admin, json!({}))
        .await
        .failure(404, "NotFound");
    s.post("/api/v1/users/robot/tokens", &alice, json!({}))
        .await
        .failure(403, "Forbidden");
    let boss = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({"metadata":{"name":"boss"},"password":"boss-pw","superUser":true}),
        )
        .await;
    assert_eq!(boss.ok(201)["superUser"], true);
    assert_eq!(
        names(
            s.get("/api/v1/users", &basic("boss", "boss-pw"))
                .await
                .ok(200)
        ),
        vec!["admin", "alice", "boss", "robot"]
    );

    // Users and groups are for cluster admins; users see themselves.
    s.get("/api/v1/users", &alice)
        .await
        .failure(403, "Forbidden");
    s.post(
        "/api/v1/users",
        &alice,
        json!({"metadata":{"name":"mallory"},"password":"x","superUser":true}),
    )
    .await
    .failure(403, "Forbidden");
    s.delete("/api/v1/users/robot", &alice)
        .await
        .failure(403, "Forbidden");
    s.get("/api/v1/users/admin", &alice)
        .await
        .failure(403, "Forbidden");
    assert_eq!(
        s.get("/api/v1/users/alice", &alice).await.ok(200)["metadata"]["name"],
        "alice"
    );
    s.get("/api/v1/users/ghost", &s.admin)
        .await
        .failure(404, "NotFound");
    assert_eq!(
        s.get("/api/v1/users/%7E", &alice).await.ok(200)["metadata"]["name"],
        "alice"
    );
    let me = s.get("/api/v1/users/~", &s.admin).await;
    assert_eq!(me.ok(200)["metadata"]["name"], "admin");
    assert_eq!(me.body["superUser"], true);

    // Groups.
    let g = s
        .post(
            "/api/v1/groups",
            &s.admin,
            json!({"metadata":{"name":"devs"},"users":["alice"]}),
        )
        .await;
    let g = g.ok(201);
    assert_eq!(g["kind"], "Group");
    assert_eq!(g["users"], json!(["alice"]));
    assert_timestamp(&g["metadata"]["creationTimestamp"]);
    s.post(
        "/api/v1/groups",
        &s.admin,
        json!({"metadata":{"name":"devs"}}),
    )
    .await
    .failure(409, "AlreadyExists");
    for bad in [
        json!({"metadata":{"name":"system:authenticated"}}),
        json!({"metadata":{"name":"system:serviceaccounts:p"}}),
        json!({"metadata":{"name":"Devs"}}),
        json!({"metadata":{"name":"ops"},"users":["Not A User"]}),
    ] {
        s.post("/api/v1/groups", &s.admin, bad)
            .await
            .failure(422, "Invalid");
    }
    s.get("/api/v1/groups", &alice)
        .await
        .failure(403, "Forbidden");
    s.post("/api/v1/groups", &alice, json!({"metadata":{"name":"x"}}))
        .await
        .failure(403, "Forbidden");
    let list = s.get("/api/v1/groups", &s.admin).await;
    assert_eq!(list.ok(200)["kind"], "GroupList");
    assert_eq!(names(&list.body), vec!["devs"]);
    assert_eq!(
        s.get("/api/v1/groups/devs", &s.admin).await.ok(200)["users"],
        json!(["alice"])
    );
    assert_eq!(
        s.get("/api/v1/users/~", &alice).await.ok(200)["groups"],
        json!(["devs", "system:authenticated"])
    );
    let replaced = s
        .put(
            "/api/v1/groups/devs",
            &s.admin,
            json!({"users":["robot","boss"]}),
        )
        .await;
    assert_eq!(replaced.ok(200)["users"], json!(["boss", "robot"]));
    s.put("/api/v1/groups/ghosts", &s.admin, json!({"users":[]}))
        .await
        .failure(404, "NotFound");
    s.put(
        "/api/v1/groups/devs",
        &s.admin,
        json!({"metadata":{"name":"other"},"users":[]}),
    )
    .await
    .failure(400, "BadRequest");
    assert_eq!(
        s.get("/api/v1/users/~", &alice).await.ok(200)["groups"],
        json!(["system:authenticated"])
    );
    s.delete("/api/v1/groups/devs", &s.admin).await.success();
    s.get("/api/v1/groups/devs", &s.admin)
        .await
        .failure(404, "NotFound");
    s.delete("/api/v1/groups/devs", &s.admin)
        .await
        .failure(404, "NotFound");

    // Passwords: one's own, or anyone's for a cluster admin.
    s.put(
        "/api/v1/users/admin/password",
        &alice,
        json!({"password":"pwned"}),
    )
    .await
    .failure(403, "Forbidden");
    s.put("/api/v1/users/alice/password", &alice, json!({}))
        .await
        .failure(422, "Invalid");
    s.put(
        "/api/v1/users/alice/password",
        &alice,
        json!({"password":"alice-pw-2"}),
    )
    .await
    .success();
    s.get("/api/v1/users/~", &alice)
        .await
        .failure(401, "Unauthorized");
    let alice = basic("alice", "alice-pw-2");
    s.get("/api/v1/users/~", &alice).await.ok(200);
    s.put(
        "/api/v1/users/robot/password",
        &s.admin,
        json!({"password":"robot-pw"}),
    )
    .await
    .success();
    s.get("/api/v1/users/~", &basic("robot", "robot-pw"))
        .await
        .ok(200);
    s.put(
        "/api/v1/users/ghost/password",
        &s.admin,
        json!({"password":"x"}),
    )
    .await
    .failure(404, "NotFound");

    // Deleting a user revokes its tokens.
    let token = s.post("/api/v1/tokens", &alice, json!({})).await.ok(201)["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.get("/api/v1/users/~", &bearer(&token)).await.ok(200);
    s.delete("/api/v1/users/alice", &s.admin).await.success();
    s.delete("/api/v1/users/alice", &s.admin)
        .await
        .failure(404, "NotFound");
    s.get("/api/v1/users/alice", &s.admin)
        .await
        .failure(404, "NotFound");
    s.get("/api/v1/users/~", &bearer(&token))
        .await
        .failure(401, "Unauthorized");
    s.get("/api/v1/users/~", &alice)
        .await
        .failure(401, "Unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_creates_the_first_super_user_once() {
    let s = Server::start(|c| c.auth.bootstrap = Bootstrap::Initialize).await;
    assert!(!s._dir.path().join("admin-password").exists());
    s.get("/api/v1/users/~", &basic("admin", "anything"))
        .await
        .failure(401, "Unauthorized");

    s.post(
        "/api/v1/user/initialize",
        &Auth::None,
        json!({"username":"root"}),
    )
    .await
    .failure(422, "Invalid");
    s.post(
        "/api/v1/user/initialize",
        &Auth::None,
        json!({"username":"Root!","password":"pw"}),
    )
    .await
    .failure(422, "Invalid");

    let done = s
        .post(
            "/api/v1/user/initialize",
            &Auth::None,
            json!({"username":"root","password":"root-pw","email":"root@example.com","access_token":true}),
        )
        .await;
    let body = done.ok(200).clone();
    assert_eq!(body["username"], "root");
    assert_eq!(body["email"], "root@example.com");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berth_"));
    for auth in [bearer(&token), basic("root", "root-pw")] {
        let me = s.get("/api/v1/users/~", &auth).await;
        assert_eq!(me.ok(200)["metadata"]["name"], "root");
        assert_eq!(me.body["superUser"], true);
    }
    assert_eq!(
        s.get("/api/v1/users", &bearer(&token)).await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let again = s
        .post(
            "/api/v1/user/initialize",
            &Auth::None,
            json!({"username":"other","password":"pw"}),
        )
        .await;
    again.failure(400, "BadRequest");
    assert_eq!(again.body["message"], "the registry is already initialized");
    s.stop().await;

    // Concurrent attempts on a fresh registry: exactly one wins, and without
    // asking for a token none is given.
    let s = Server::start(|c| c.auth.bootstrap = Bootstrap::Initialize).await;
    let attempts = ["one", "two", "three", "four"].map(|name| {
        s.post(
            "/api/v1/user/initialize",
            &Auth::None,
            json!({"username":name,"password":"pw"}),
        )
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
    let users = s.get("/api/v1/users", &basic(&winner, "pw")).await;
    assert_eq!(names(users.ok(200)), vec![winner]);
    s.stop().await;
}

/// Two replicas sharing one PostgreSQL database, racing to initialize:
/// never two first users (at worst none, and the client retries). Skipped
/// when PostgreSQL is unreachable, unless `BERTH_REQUIRE_POSTGRES=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_to_initialize_make_at_most_one_user() {
    use sqlx::Connection as _;
    use sqlx::Executor as _;
    let admin_url = std::env::var("BERTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let required = std::env::var("BERTH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    sqlx::any::install_default_drivers();
    let mut admin = match sqlx::AnyConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!("skipping: PostgreSQL unreachable at {admin_url}: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL required but unreachable at {admin_url}: {e}"),
    };
    let name = format!("berth_api_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");

    let configure = |c: &mut Config| {
        c.auth.bootstrap = Bootstrap::Initialize;
        c.database.url = Some(url.clone());
        c.database.max_connections = 4;
    };
    let a = Server::start(configure).await;
    let b = Server::start(configure).await;
    let attempts = [(&a, "one"), (&b, "two"), (&a, "three"), (&b, "four")].map(|(s, name)| {
        s.post(
            "/api/v1/user/initialize",
            &Auth::None,
            json!({"username":name,"password":"pw"}),
        )
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
            let users = s.get("/api/v1/users", &basic(winner, "pw")).await;
            assert_eq!(names(users.ok(200)), vec![winner.clone()]);
        }
    } else {
        // Everyone backed out: nothing was left behind, and a retry works.
        let retry = b
            .post(
                "/api/v1/user/initialize",
                &Auth::None,
                json!({"username":"retry","password":"pw"}),
            )
            .await;
        retry.ok(200);
    }
    a.stop().await;
    b.stop().await;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
}

impl Server {
    /// Binds `subject` to `role` cluster-wide (as admin).
    async fn bind_cluster(&self, role: &str, subjects: Value) {
        self.post(
            &format!("/api/v1/clusterrolebindings/{role}/add-subjects"),
            &self.admin,
            json!({ "subjects": subjects }),
        )
        .await
        .ok(200);
    }

    /// A one-request blob upload into `repo`, the first write of a push.
    async fn push_blob(&self, repo: &str, auth: &Auth) -> Answer {
        let request = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={EMPTY_JSON_DIGEST}"),
                auth,
            )
            .body("{}");
        self.send(request).await
    }

    /// Names of the projects `auth` sees.
    async fn project_names(&self, auth: &Auth) -> Vec<String> {
        names(self.get("/api/v1/projects", auth).await.ok(200))
    }
}

impl Answer {
    /// Asserts `403 DENIED` saying `message`.
    #[track_caller]
    fn denied(&self, message: &str) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "{}", self.body);
        assert_eq!(self.body["errors"][0]["code"], "DENIED", "{}", self.body);
        assert_eq!(self.body["errors"][0]["message"], message, "{}", self.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_made_by_a_push_is_a_project() {
    let s = Server::start(|_| {}).await;
    // A super user pushes into a namespace nobody created.
    s.push_image("myproj/app", "v1", &s.admin.clone()).await;
    assert_eq!(s.project_names(&s.admin).await, vec!["myproj"]);
    let project = s.get("/api/v1/projects/myproj", &s.admin).await;
    assert_eq!(
        project.ok(200)["metadata"]["annotations"]["openshift.io/requester"],
        "admin"
    );
    // It has the roles of any project: the pusher administers it, and roles
    // bound there work.
    let admins = s
        .get(
            "/api/v1/namespaces/myproj/rolebindings/registry-admin",
            &s.admin,
        )
        .await;
    assert_eq!(
        admins.ok(200)["subjects"],
        json!([{"kind":"User","name":"admin"}])
    );
    let alice = s.user("alice", "alice-pw").await;
    s.bind(
        "myproj",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    assert_eq!(s.project_names(&alice).await, vec!["myproj"]);
    assert_eq!(
        s.get("/v2/myproj/app/manifests/v1", &alice).await.status,
        StatusCode::OK
    );
    // Pushing into it again makes nothing new.
    s.push_image("myproj/other", "v1", &s.admin.clone()).await;
    assert_eq!(s.project_names(&s.admin).await, vec!["myproj"]);
    s.stop().await;

    // Where pushes make no namespaces, even a super user's push into a
    // namespace that does not exist is refused, and says why.
    let s = Server::start(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Never;
    })
    .await;
    s.push_blob("newns/app", &s.admin.clone()).await.denied(
        "namespace \"newns\" does not exist and you may not create it (namespaces are not \
         created by pushes here; create the project first)",
    );
    assert!(s.project_names(&s.admin).await.is_empty());
    s.project("newns").await;
    s.push_image("newns/app", "v1", &s.admin.clone()).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_says_why_and_no_more_than_the_caller_may_know() {
    let s = Server::start(|_| {}).await;
    s.project("team").await;
    s.push_image("team/app", "v1", &s.admin.clone()).await;
    let alice = s.user("alice", "alice-pw").await;
    s.bind(
        "team",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    let stranger = s.user("stranger", "stranger-pw").await;
    let carol = s.user("carol", "carol-pw").await;
    s.bind_cluster("registry-viewer", json!([{"kind":"User","name":"carol"}]))
        .await;
    let dave = s.user("dave", "dave-pw").await;
    s.bind_cluster(
        "system:image-pusher",
        json!([{"kind":"User","name":"dave"}]),
    )
    .await;

    // A role without push: the caller knows the project.
    s.push_blob("team/app", &alice)
        .await
        .denied("your role in namespace \"team\" does not allow pushing");
    // A stranger is told the same whether the namespace (or repository)
    // exists or not.
    let blind = "you have no role in namespace \"team\" that allows pushing, and you may not \
                 create namespaces";
    s.push_blob("team/app", &stranger).await.denied(blind);
    s.push_blob("team/ghost", &stranger).await.denied(blind);
    s.push_blob("nowhere/app", &stranger).await.denied(
        "you have no role in namespace \"nowhere\" that allows pushing, and you may not \
         create namespaces",
    );
    // Cluster-wide roles see every project: they are told it is missing.
    let missing = "namespace \"nowhere\" does not exist and you may not create it (ask a \
                   cluster admin to create the project)";
    s.push_blob("nowhere/app", &carol).await.denied(missing);
    s.push_blob("team/app", &carol)
        .await
        .denied("your role in namespace \"team\" does not allow pushing");
    // A cluster-wide pusher pushes into every project, but makes none.
    s.push_blob("nowhere/app", &dave).await.denied(missing);
    assert_eq!(
        s.push_blob("team/dave", &dave).await.status,
        StatusCode::CREATED
    );
    assert_eq!(s.project_names(&s.admin).await, vec!["team"]);
    s.stop().await;

    // Where anyone may create namespaces, existence is no secret (creating
    // the project would say it exists): a stranger is told which case it is.
    let s = Server::start(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    s.project("team").await;
    let stranger = s.user("stranger", "stranger-pw").await;
    s.push_blob("team/app", &stranger)
        .await
        .denied("you have no role in namespace \"team\" that allows pushing");
    assert_eq!(
        s.push_blob("mine/app", &stranger).await.status,
        StatusCode::CREATED
    );
    assert_eq!(s.project_names(&stranger).await, vec!["mine"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_made_again_does_not_inherit_the_deleted_ones_images() {
    let s = Server::start(|c| {
        c.auth.auto_create_namespaces = AutoCreateNamespaces::Authenticated;
    })
    .await;
    let alice = s.user("alice", "alice-pw").await;
    let mallory = s.user("mallory", "mallory-pw").await;
    s.push_image("team/app", "v1", &alice).await;
    // Read once, so that whatever berth caches of it is cached.
    let pulled = s.get("/v2/team/app/manifests/v1", &alice).await;
    assert_eq!(pulled.status, StatusCode::OK);
    let digest = pulled.headers["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.get("/v2/team/app/tags/list", &alice).await.body["tags"],
        json!(["v1"])
    );
    s.delete("/api/v1/projects/team", &alice).await.success();

    s.post(
        "/api/v1/projects",
        &mallory,
        json!({"metadata":{"name":"team"}}),
    )
    .await
    .ok(201);
    let code = |a: &Answer| {
        a.body["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    for reference in ["v1", digest.as_str()] {
        let a = s
            .get(&format!("/v2/team/app/manifests/{reference}"), &mallory)
            .await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into())
        );
    }
    let a = s.get("/v2/team/app/tags/list", &mallory).await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN".into())
    );
    let a = s
        .get(&format!("/v2/team/app/blobs/{EMPTY_JSON_DIGEST}"), &mallory)
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN".into())
    );
    let catalog = s.get("/v2/_catalog", &s.admin).await;
    assert_eq!(catalog.ok(200)["repositories"], json!([]));
    // The new project is mallory's to fill.
    s.push_image("team/app", "v2", &mallory).await;
    assert_eq!(
        s.get("/v2/team/app/tags/list", &mallory).await.body["tags"],
        json!(["v2"])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_or_deletion_ends_password_logins_at_once() {
    let s = Server::start(|_| {}).await;
    s.project("team").await;
    s.push_image("team/app", "v1", &s.admin.clone()).await;
    s.bind(
        "team",
        "system:image-puller",
        json!([{"kind":"User","name":"alice"}]),
    )
    .await;
    let pull = "/v2/team/app/manifests/v1";
    let scope = "repository:team/app:pull";
    let status = async |auth: &Auth| s.get(pull, auth).await.status;
    let jwt_of = async |auth: &Auth| {
        let (status, body) = s.jwt(auth, scope).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        bearer(body["token"].as_str().unwrap())
    };

    // Changed by the user itself.
    let old = s.user("alice", "first-pw").await;
    let old_jwt = jwt_of(&old).await;
    assert_eq!(status(&old).await, StatusCode::OK);
    assert_eq!(status(&old_jwt).await, StatusCode::OK);
    s.put(
        "/api/v1/users/~/password",
        &old,
        json!({"password":"second-pw"}),
    )
    .await
    .success();
    assert_eq!(status(&old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&old_jwt).await, StatusCode::UNAUTHORIZED);
    let second = basic("alice", "second-pw");
    let second_jwt = jwt_of(&second).await;
    assert_eq!(status(&second_jwt).await, StatusCode::OK);

    // Changed by an admin.
    s.put(
        "/api/v1/users/alice/password",
        &s.admin,
        json!({"password":"third-pw"}),
    )
    .await
    .success();
    assert_eq!(status(&second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&second_jwt).await, StatusCode::UNAUTHORIZED);
    let third = basic("alice", "third-pw");
    let third_jwt = jwt_of(&third).await;
    assert_eq!(status(&third_jwt).await, StatusCode::OK);

    // Deleted.
    s.delete("/api/v1/users/alice", &s.admin).await.success();
    assert_eq!(status(&third).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&third_jwt).await, StatusCode::UNAUTHORIZED);
    // A new user of the same name, with the same password and the bindings
    // the old one left, inherits none of its tokens.
    let again = s.user("alice", "third-pw").await;
    assert_eq!(status(&again).await, StatusCode::OK);
    assert_eq!(status(&third_jwt).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&jwt_of(&again).await).await, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_names_are_each_users_own() {
    let s = Server::start(|_| {}).await;
    let alice = s.user("alice", "alice-pw").await;
    let bob = s.user("bob", "bob-pw").await;
    let make = async |auth: &Auth| {
        s.post(
            "/api/v1/tokens",
            auth,
            json!({"metadata":{"name":"laptop"}}),
        )
        .await
    };
    let secret = |token: &Value| bearer(token["status"]["token"].as_str().unwrap());
    let alices = secret(make(&alice).await.ok(201));
    // bob is not told that alice has a token of that name.
    let bobs = secret(make(&bob).await.ok(201));
    // Each user's names are unique for that user.
    make(&alice).await.failure(409, "AlreadyExists");
    for t in [&alices, &bobs] {
        assert_eq!(s.get("/v2/", t).await.status, StatusCode::OK);
    }
    assert_eq!(
        names(s.get("/api/v1/tokens", &alice).await.ok(200)),
        vec!["laptop"]
    );

    // A cluster admin names whose, when several users have the name.
    s.delete("/api/v1/tokens/laptop", &s.admin)
        .await
        .failure(409, "Conflict");
    // bob cannot reach alice's through ?user=.
    s.delete("/api/v1/tokens/laptop?user=alice", &bob)
        .await
        .failure(404, "NotFound");
    assert_eq!(s.get("/v2/", &alices).await.status, StatusCode::OK);
    s.delete("/api/v1/tokens/laptop?user=bob", &s.admin)
        .await
        .success();
    assert_eq!(s.get("/v2/", &bobs).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/v2/", &alices).await.status, StatusCode::OK);
    // Each user revokes its own by name.
    let bobs = secret(make(&bob).await.ok(201));
    s.delete("/api/v1/tokens/laptop", &alice).await.success();
    assert_eq!(
        s.get("/v2/", &alices).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/v2/", &bobs).await.status, StatusCode::OK);
    // With one left, a cluster admin needs no ?user=.
    s.delete("/api/v1/tokens/laptop", &s.admin).await.success();
    assert_eq!(s.get("/v2/", &bobs).await.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_super_user_cannot_be_deleted() {
    let s = Server::start(|c| c.auth.super_users = vec!["carol".into()]).await;
    let refused = |answer: Answer, name: &str| {
        answer.failure(409, "Conflict");
        let message = answer.body["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("\"{name}\" is the last super user")),
            "{message}"
        );
    };
    // The only super user deleting itself.
    refused(s.delete("/api/v1/users/admin", &s.admin).await, "admin");
    assert_eq!(
        s.get("/api/v1/users", &s.admin).await.status,
        StatusCode::OK,
        "still administers"
    );
    // With another super user, either may go, but not both.
    s.post(
        "/api/v1/users",
        &s.admin,
        json!({"metadata":{"name":"root"},"password":"root-pw","superUser":true}),
    )
    .await
    .ok(201);
    let root = basic("root", "root-pw");
    s.delete("/api/v1/users/admin", &root).await.success();
    refused(s.delete("/api/v1/users/root", &root).await, "root");
    // A super user by the configuration counts once it is a user.
    s.post(
        "/api/v1/users",
        &root,
        json!({"metadata":{"name":"carol"},"password":"carol-pw"}),
    )
    .await
    .ok(201);
    let carol = basic("carol", "carol-pw");
    s.delete("/api/v1/users/root", &carol).await.success();
    refused(s.delete("/api/v1/users/carol", &carol).await, "carol");
    assert_eq!(s.get("/api/v1/users", &carol).await.status, StatusCode::OK);
    s.stop().await;
}
