//! The administration API (`/api/v1`, docs/rest-api.md) and the token
//! service (`/auth/token`) as the tests speak them, on [`RegistryClient`]:
//! story-level calls (`create_user`, `bind`, `create_token`, …) that check
//! each step succeeded, and [`Answer`]s, whole answers for a test to judge
//! (`api_get(…).await.failure(404, "NotFound")`).

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::assertions::expect_status;
use super::client::RegistryClient;

/// A token made through the API: its name and its secret (`berth_…`).
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub secret: String,
}

/// An answer read whole: its status, its headers, and its body as JSON
/// (`null` if there is none; a JSON string if it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Sends `request` and reads the answer.
    pub async fn of(request: RequestBuilder) -> Answer {
        Answer::read(request.send().await.expect("request is sent")).await
    }

    pub async fn read(response: Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body is read");
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

    /// Asserts `code`; returns the body.
    #[track_caller]
    pub fn ok(&self, code: u16) -> &Value {
        assert_eq!(self.status.as_u16(), code, "{}", self.body);
        &self.body
    }

    /// Asserts `200` with a `Status` of `Success`.
    #[track_caller]
    pub fn success(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["kind"], "Status");
        assert_eq!(self.body["status"], "Success");
    }

    /// Asserts an `/api/v1` failure: a `Status` with this code and reason.
    #[track_caller]
    pub fn failure(&self, code: u16, reason: &str) {
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
    pub fn oci_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["errors"][0]["code"], code, "{}", self.body);
    }

    /// Asserts a `/v2/` `403 DENIED` saying `message`.
    #[track_caller]
    pub fn denied(&self, message: &str) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "{}", self.body);
        assert_eq!(self.body["errors"][0]["code"], "DENIED", "{}", self.body);
        assert_eq!(self.body["errors"][0]["message"], message, "{}", self.body);
    }
}

impl RegistryClient {
    /// `method path` with a JSON `body`, if any, answered whole.
    pub async fn api_call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        Answer::read(self.api(method, path, body.as_ref()).await).await
    }

    pub async fn api_get(&self, path: &str) -> Answer {
        self.api_call(Method::GET, path, None).await
    }

    pub async fn api_post(&self, path: &str, body: Value) -> Answer {
        self.api_call(Method::POST, path, Some(body)).await
    }

    pub async fn api_put(&self, path: &str, body: Value) -> Answer {
        self.api_call(Method::PUT, path, Some(body)).await
    }

    pub async fn api_delete(&self, path: &str) -> Answer {
        self.api_call(Method::DELETE, path, None).await
    }

    /// A request to the administration API with a JSON body, if any.
    pub async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut builder = self.request(method.clone(), path);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// [`api`](Self::api), expecting `status`; returns the JSON body.
    pub async fn api_expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        status: StatusCode,
    ) -> Value {
        let response = expect_status(self.api(method, path, body).await, status).await;
        response.json().await.expect("API answer is JSON")
    }

    /// `POST path` of `body`, expecting `201 Created`; returns the object.
    pub async fn api_create(&self, path: &str, body: Value) -> Value {
        self.api_expect(Method::POST, path, Some(&body), StatusCode::CREATED)
            .await
    }

    /// `POST /api/v1/garbagecollections`: the run (or dry run), ended,
    /// which must have succeeded.
    pub async fn collect_garbage(&self, dry_run: bool) -> Value {
        let answer = self
            .api_post("/api/v1/garbagecollections", json!({ "dryRun": dry_run }))
            .await;
        let run = answer.ok(200).clone();
        assert_eq!(run["kind"], "GarbageCollection", "{run}");
        assert_eq!(run["spec"]["dryRun"], dry_run, "{run}");
        assert_eq!(run["status"]["outcome"], "Succeeded", "{run}");
        run
    }

    pub async fn create_project(&self, name: &str) {
        let body = json!({"metadata": {"name": name}});
        self.api_create("/api/v1/projects", body).await;
    }

    pub async fn create_user(&self, name: &str, password: Option<&str>, super_user: bool) {
        let mut body = json!({"metadata": {"name": name}, "superUser": super_user});
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        self.api_create("/api/v1/users", body).await;
    }

    pub async fn create_service_account(&self, namespace: &str, name: &str) {
        let body = json!({"metadata": {"name": name}});
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts");
        self.api_create(&path, body).await;
    }

    /// A new user `name` (password `NAME-password-1`) bound to `role` in
    /// `namespace`, and a client speaking as them.
    pub async fn user_with_role(&self, name: &str, namespace: &str, role: &str) -> RegistryClient {
        let password = format!("{name}-password-1");
        self.create_user(name, Some(&password), false).await;
        let user = json!({"kind": "User", "name": name});
        self.bind(Some(namespace), role, &user).await;
        self.with_credentials(name, &password)
    }

    /// Binds `subject` (`{"kind":…,"name":…}`) to `role` in `namespace`, or
    /// cluster-wide when `namespace` is `None`.
    pub async fn bind(&self, namespace: Option<&str>, role: &str, subject: &Value) {
        self.change_subjects(namespace, role, "add-subjects", subject)
            .await;
    }

    /// Unbinds `subject` from `role` in `namespace` (cluster-wide: `None`).
    pub async fn unbind(&self, namespace: Option<&str>, role: &str, subject: &Value) {
        self.change_subjects(namespace, role, "remove-subjects", subject)
            .await;
    }

    /// `POST` of `subject` to the binding of `role`'s `action`
    /// (`add-subjects`, `remove-subjects`), expecting `200 OK`.
    async fn change_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        action: &str,
        subject: &Value,
    ) {
        let path = match namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/rolebindings/{role}/{action}"),
            None => format!("/api/v1/clusterrolebindings/{role}/{action}"),
        };
        let body = json!({"subjects": [subject]});
        self.api_expect(Method::POST, &path, Some(&body), StatusCode::OK)
            .await;
    }

    /// `POST <path>` of a token-making endpoint (`/api/v1/tokens`,
    /// `/api/v1/users/NAME/tokens`, `…/serviceaccounts/SA/tokens`).
    pub async fn create_token(&self, path: &str, expires_in: Option<&str>) -> ApiToken {
        let body = match expires_in {
            Some(e) => json!({"spec": {"expiresIn": e}}),
            None => json!({}),
        };
        let token = self.api_create(path, body).await;
        ApiToken {
            name: token["metadata"]["name"]
                .as_str()
                .expect("token name")
                .to_owned(),
            secret: token["status"]["token"]
                .as_str()
                .expect("token secret")
                .to_owned(),
        }
    }

    /// `GET /auth/token` with this client's credentials: the bearer token
    /// (JWT) granting what it may of `scopes` (`repository:ns/app:pull`).
    pub async fn bearer_token(&self, scopes: &[String]) -> Result<String, StatusCode> {
        let mut path = "/auth/token?service=berth".to_owned();
        for scope in scopes {
            path.push_str("&scope=");
            path.extend(url::form_urlencoded::byte_serialize(scope.as_bytes()));
        }
        let response = self.get(&path).await;
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        let body: Value = response.json().await.expect("token answer is JSON");
        Ok(body["token"].as_str().expect("token field").to_owned())
    }
}
