//! The administration API (`/api/v1`, docs/rest-api.md) and the token
//! service (`/auth/token`) as the tests speak them, on [`RegistryClient`].

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::assertions::expect_status;
use super::client::RegistryClient;

/// A token made through the API: its name and its secret (`berth_…`).
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub secret: String,
}

impl RegistryClient {
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

    pub async fn create_project(&self, name: &str) {
        let body = json!({"metadata": {"name": name}});
        self.api_expect(
            Method::POST,
            "/api/v1/projects",
            Some(&body),
            StatusCode::CREATED,
        )
        .await;
    }

    pub async fn create_user(&self, name: &str, password: Option<&str>, super_user: bool) {
        let mut body = json!({"metadata": {"name": name}, "superUser": super_user});
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        self.api_expect(
            Method::POST,
            "/api/v1/users",
            Some(&body),
            StatusCode::CREATED,
        )
        .await;
    }

    pub async fn create_service_account(&self, namespace: &str, name: &str) {
        let body = json!({"metadata": {"name": name}});
        self.api_expect(
            Method::POST,
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Some(&body),
            StatusCode::CREATED,
        )
        .await;
    }

    /// Binds `subject` (`{"kind":…,"name":…}`) to `role` in `namespace`, or
    /// cluster-wide when `namespace` is `None`.
    pub async fn bind(&self, namespace: Option<&str>, role: &str, subject: &Value) {
        let path = match namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/rolebindings/{role}/add-subjects"),
            None => format!("/api/v1/clusterrolebindings/{role}/add-subjects"),
        };
        let body = json!({"subjects": [subject]});
        self.api_expect(Method::POST, &path, Some(&body), StatusCode::OK)
            .await;
    }

    /// Unbinds `subject` from `role` in `namespace` (cluster-wide: `None`).
    pub async fn unbind(&self, namespace: Option<&str>, role: &str, subject: &Value) {
        let path = match namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/rolebindings/{role}/remove-subjects"),
            None => format!("/api/v1/clusterrolebindings/{role}/remove-subjects"),
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
        let token = self
            .api_expect(Method::POST, path, Some(&body), StatusCode::CREATED)
            .await;
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
