//! The administration REST API under `/api/v1`, as docs/rest-api.md
//! specifies it: projects, service accounts, tokens, role bindings, users,
//! groups, image streams, background jobs, garbage collection, the first-user bootstrap, the server's version
//! and the OpenAPI description.
//!
//! Handlers are thin: they authenticate the caller ([`Authenticated`]), read
//! the path and body, call [`crate::admin::Admin`] and shape the
//! answer ([`objects`]). Every failure is an [`AdminError`], answered here,
//! in one place, as an OpenShift `Status` object.
//!
//! The route table ([`routes`]) is the one list of endpoints: the router is
//! built from it, each route's metrics label comes from it, and a test checks
//! it against the OpenAPI document served at `/api/v1/discovery`.

mod discovery;
mod garbage;
mod groups;
mod image_streams;
mod initialize;
mod jobs;
pub(crate) mod objects;
mod objects_only;
mod projects;
mod proxies;
mod pruner;
mod quotas;
mod role_bindings;
mod secrets;
mod service_accounts;
mod tag_policies;
mod tokens;
mod users;
mod version;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use serde::de::DeserializeOwned;

use super::AppState;
use super::errors::{Refusal, refuse_authentication};
use super::observe::RouteLabel;
use crate::admin::AdminError;
use crate::auth::Caller;
use crate::metadata::MetadataError;

/// Where this API is mounted.
pub const PREFIX: &str = "/api/v1";

/// One endpoint: method, path (below [`PREFIX`], axum/OpenAPI template
/// syntax), metrics label and handler.
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub label: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, label: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| panic!("route table: unsupported method {method}"));
    Route {
        method,
        path,
        label,
        handler: axum::routing::on(filter, handler),
    }
}

/// Every endpoint of the API.
pub(crate) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        // Projects.
        route(M::GET, "/projects", "api_projects_list", projects::list),
        route(
            M::POST,
            "/projects",
            "api_projects_create",
            projects::create,
        ),
        route(
            M::GET,
            "/projects/{name}",
            "api_projects_get",
            projects::get,
        ),
        route(
            M::DELETE,
            "/projects/{name}",
            "api_projects_delete",
            projects::delete,
        ),
        // Service accounts.
        route(
            M::GET,
            "/namespaces/{ns}/serviceaccounts",
            "api_serviceaccounts_list",
            service_accounts::list,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/serviceaccounts",
            "api_serviceaccounts_create",
            service_accounts::create,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/serviceaccounts/{name}",
            "api_serviceaccounts_get",
            service_accounts::get,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/serviceaccounts/{name}",
            "api_serviceaccounts_delete",
            service_accounts::delete,
        ),
        // Tokens.
        route(M::POST, "/tokens", "api_tokens_create", tokens::create_own),
        route(M::GET, "/tokens", "api_tokens_list", tokens::list_own),
        route(
            M::DELETE,
            "/tokens/{name}",
            "api_tokens_delete",
            tokens::delete_own,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/serviceaccounts/{sa}/tokens",
            "api_sa_tokens_create",
            tokens::create_for_service_account,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/tokens",
            "api_ns_tokens_list",
            tokens::list_namespace,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/tokens/{name}",
            "api_ns_tokens_delete",
            tokens::delete_namespace,
        ),
        // Role bindings.
        route(
            M::GET,
            "/namespaces/{ns}/rolebindings",
            "api_rolebindings_list",
            role_bindings::list,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/rolebindings/{role}",
            "api_rolebindings_get",
            role_bindings::get,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/rolebindings/{role}",
            "api_rolebindings_delete",
            role_bindings::delete,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/rolebindings/{role}/add-subjects",
            "api_rolebindings_add",
            role_bindings::add_subjects,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/rolebindings/{role}/remove-subjects",
            "api_rolebindings_remove",
            role_bindings::remove_subjects,
        ),
        route(
            M::GET,
            "/clusterrolebindings",
            "api_clusterrolebindings_list",
            role_bindings::cluster_list,
        ),
        route(
            M::GET,
            "/clusterrolebindings/{role}",
            "api_clusterrolebindings_get",
            role_bindings::cluster_get,
        ),
        route(
            M::DELETE,
            "/clusterrolebindings/{role}",
            "api_clusterrolebindings_delete",
            role_bindings::cluster_delete,
        ),
        route(
            M::POST,
            "/clusterrolebindings/{role}/add-subjects",
            "api_clusterrolebindings_add",
            role_bindings::cluster_add_subjects,
        ),
        route(
            M::POST,
            "/clusterrolebindings/{role}/remove-subjects",
            "api_clusterrolebindings_remove",
            role_bindings::cluster_remove_subjects,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/whocan",
            "api_whocan",
            role_bindings::who_can,
        ),
        // Users.
        route(M::GET, "/users", "api_users_list", users::list),
        route(M::POST, "/users", "api_users_create", users::create),
        route(M::GET, "/users/~", "api_users_me", users::me),
        route(M::GET, "/users/{name}", "api_users_get", users::get),
        route(
            M::DELETE,
            "/users/{name}",
            "api_users_delete",
            users::delete,
        ),
        route(
            M::PUT,
            "/users/{name}/password",
            "api_users_password",
            users::set_password,
        ),
        route(
            M::POST,
            "/users/{name}/unlock",
            "api_users_unlock",
            users::unlock,
        ),
        route(
            M::POST,
            "/users/{name}/tokens",
            "api_user_tokens_create",
            tokens::create_for_user,
        ),
        // Groups.
        route(M::GET, "/groups", "api_groups_list", groups::list),
        route(M::POST, "/groups", "api_groups_create", groups::create),
        route(M::GET, "/groups/{name}", "api_groups_get", groups::get),
        route(
            M::PUT,
            "/groups/{name}",
            "api_groups_replace",
            groups::replace,
        ),
        route(
            M::DELETE,
            "/groups/{name}",
            "api_groups_delete",
            groups::delete,
        ),
        // Proxy namespaces.
        route(M::GET, "/proxies", "api_proxies_list", proxies::list),
        route(M::POST, "/proxies", "api_proxies_create", proxies::create),
        route(M::GET, "/proxies/{name}", "api_proxies_get", proxies::get),
        route(
            M::DELETE,
            "/proxies/{name}",
            "api_proxies_delete",
            proxies::delete,
        ),
        // Pull secrets.
        route(
            M::GET,
            "/namespaces/{ns}/secrets",
            "api_secrets_list",
            secrets::list,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/secrets",
            "api_secrets_create",
            secrets::create,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/secrets/{name}",
            "api_secrets_get",
            secrets::get,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/secrets/{name}",
            "api_secrets_delete",
            secrets::delete,
        ),
        // Immutable-tags policies.
        route(
            M::GET,
            "/namespaces/{ns}/immutabletagpolicies",
            "api_immutabletagpolicies_list",
            tag_policies::list,
        ),
        route(
            M::PUT,
            "/namespaces/{ns}/immutabletagpolicies",
            "api_immutabletagpolicies_put",
            tag_policies::put,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/immutabletagpolicies",
            "api_immutabletagpolicies_delete",
            tag_policies::delete,
        ),
        // Storage usage and quotas.
        route(
            M::GET,
            "/namespaceusages",
            "api_namespaceusages_list",
            quotas::namespace_usages,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/usage",
            "api_namespaceusage_get",
            quotas::namespace_usage,
        ),
        route(
            M::GET,
            "/repositoryusages",
            "api_repositoryusages_list_all",
            quotas::all_repository_usages,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/repositoryusages",
            "api_repositoryusages_list",
            quotas::repository_usages,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/quota",
            "api_quota_get",
            quotas::get_quota,
        ),
        route(
            M::PUT,
            "/namespaces/{ns}/quota",
            "api_quota_put",
            quotas::put_quota,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/quota",
            "api_quota_delete",
            quotas::delete_quota,
        ),
        // Image streams, their tags and images.
        route(
            M::GET,
            "/imagestreams",
            "api_imagestreams_list_all",
            image_streams::list_all,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/imagestreams",
            "api_imagestreams_list",
            image_streams::list,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/imagestreams",
            "api_imagestreams_create",
            image_streams::create,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/imagestreams/{name}",
            "api_imagestreams_get",
            image_streams::get,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/imagestreams/{name}",
            "api_imagestreams_delete",
            image_streams::delete,
        ),
        route(
            M::PUT,
            "/namespaces/{ns}/imagestreams/{name}/lookup-policy",
            "api_imagestreams_lookup_policy",
            image_streams::set_lookup_policy,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/imagestreamtags/{name}",
            "api_imagestreamtags_get",
            image_streams::get_tag,
        ),
        route(
            M::PUT,
            "/namespaces/{ns}/imagestreamtags/{name}",
            "api_imagestreamtags_put",
            image_streams::put_tag,
        ),
        route(
            M::DELETE,
            "/namespaces/{ns}/imagestreamtags/{name}",
            "api_imagestreamtags_delete",
            image_streams::delete_tag,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/imagestreamtags/{name}/rollback",
            "api_imagestreamtags_rollback",
            image_streams::rollback,
        ),
        route(
            M::GET,
            "/namespaces/{ns}/imagestreamimages/{name}",
            "api_imagestreamimages_get",
            image_streams::get_image,
        ),
        route(
            M::POST,
            "/namespaces/{ns}/imagestreamimports",
            "api_imagestreamimports_create",
            image_streams::import,
        ),
        // Background jobs.
        route(M::GET, "/jobs", "api_jobs_list", jobs::list),
        route(M::GET, "/jobs/{name}", "api_jobs_get", jobs::get),
        route(M::POST, "/jobs/{name}/run", "api_jobs_run", jobs::run),
        // Garbage collection.
        route(
            M::GET,
            "/garbagecollections",
            "api_garbagecollections_list",
            garbage::list,
        ),
        route(
            M::POST,
            "/garbagecollections",
            "api_garbagecollections_create",
            garbage::create,
        ),
        route(
            M::GET,
            "/garbagecollections/{name}",
            "api_garbagecollections_get",
            garbage::get,
        ),
        // The image pruner.
        route(
            M::GET,
            "/imagepruners/{name}",
            "api_imagepruners_get",
            pruner::get,
        ),
        route(
            M::PATCH,
            "/imagepruners/{name}",
            "api_imagepruners_patch",
            pruner::patch,
        ),
        route(
            M::POST,
            "/imagepruners/{name}/prunes",
            "api_imageprunes_create",
            pruner::prune,
        ),
        route(
            M::GET,
            "/imagepruners/{name}/prunes/{run}",
            "api_imageprunes_get",
            pruner::get_prune,
        ),
        // First user; the API's description.
        route(
            M::POST,
            "/user/initialize",
            "api_initialize",
            initialize::initialize,
        ),
        route(M::GET, "/discovery", "api_discovery", discovery::discovery),
        route(M::GET, "/version", "api_version", version::version),
    ]
}

/// The router of [`routes`], to be nested at [`PREFIX`]. Unknown paths are
/// `404 NotFound` and known paths with another method `405`, both as
/// `Status` objects.
pub fn router() -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for route in routes() {
        assert!(
            seen.insert((route.method.to_string(), route.path)),
            "route table: {} {} twice",
            route.method,
            route.path
        );
        let label = route.label;
        let handler = route.handler.layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                response.extensions_mut().insert(RouteLabel(label));
                response
            },
        ));
        let merged = match by_path.remove(route.path) {
            Some(previous) => previous.merge(handler),
            None => handler,
        };
        by_path.insert(route.path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler.fallback(method_not_allowed));
    }
    router.fallback(not_found)
}

async fn not_found() -> Response {
    labelled(
        "api_unknown",
        AdminError::NotFound("the server could not find the requested resource".into())
            .into_response(),
    )
}

async fn method_not_allowed(method: Method) -> Response {
    labelled(
        "api_unknown",
        AdminError::MethodNotAllowed(format!("method {method} is not allowed on this resource"))
            .into_response(),
    )
}

fn labelled(label: &'static str, mut response: Response) -> Response {
    response.extensions_mut().insert(RouteLabel(label));
    response
}

// ---------------------------------------------------------------------------
// Errors: `Status` objects.

impl AdminError {
    /// HTTP status and `Status.reason`.
    pub fn status_reason(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            AdminError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            AdminError::AlreadyExists(_) => (StatusCode::CONFLICT, "AlreadyExists"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            AdminError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            AdminError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            AdminError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
            }
            AdminError::Store(MetadataError::StorageFull(_)) => {
                (StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage")
            }
            AdminError::Store(_) | AdminError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, reason) = self.status_reason();
        let message = if status == StatusCode::INSUFFICIENT_STORAGE {
            tracing::warn!(error = %self, "admin API write refused: storage is full");
            crate::error::STORAGE_FULL_MESSAGE.to_owned()
        } else if status.is_server_error() {
            tracing::error!(error = %self, "admin API request failed");
            "an internal error occurred; see the server log".to_owned()
        } else {
            self.to_string()
        };
        let body = crate::wire::Status::failure(status.as_u16(), reason, message);
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            AdminError::Unauthorized {
                challenge: Some(challenge),
            } => {
                if let Ok(value) = HeaderValue::try_from(challenge.to_string()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
            }
            AdminError::TooManyRequests { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

// ---------------------------------------------------------------------------
// Extractors.

/// An authenticated caller. Anonymous requests and bad credentials are
/// `401` with the same challenge as `/v2/`; lockouts `429`.
pub(crate) struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AdminError> {
        let base_url = app.base_url(&parts.headers);
        let challenge = || app.access.challenge(&base_url, None);
        let peer = super::peer_ip(&parts.extensions);
        let caller = app
            .access
            .authenticate(&parts.headers, peer)
            .await
            .map_err(|failure| admin_refusal(refuse_authentication(failure, challenge())))?;
        // A JWT from the token service carries repository scopes only; the
        // administration API wants the principal's own credentials (a
        // password or an opaque token), so that a pull token cannot manage.
        if caller.is_anonymous() || caller.grants.is_some() {
            return Err(AdminError::Unauthorized {
                challenge: Some(challenge()),
            });
        }
        Ok(Authenticated(caller))
    }
}

/// A failed authentication's answer as the administration API gives it.
fn admin_refusal(refusal: Refusal) -> AdminError {
    match refusal {
        Refusal::Unauthorized(challenge) => AdminError::Unauthorized {
            challenge: Some(challenge),
        },
        Refusal::TooManyRequests { retry_after_secs } => {
            AdminError::TooManyRequests { retry_after_secs }
        }
        Refusal::Store(e) => AdminError::Store(e),
        Refusal::Internal(e) => AdminError::Internal(e),
    }
}

/// Path parameters; malformed ones are `400 BadRequest`.
pub(crate) struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Params(value))
            .map_err(|e| AdminError::BadRequest(e.body_text()))
    }
}

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// A JSON body, whatever its `Content-Type`; an empty body reads as `{}`
/// (every body's fields are optional to the parser; what is required is
/// checked by the service and answered `422 Invalid`). Text that is not
/// JSON is `400 BadRequest`; JSON of the wrong shape (a string where an
/// object belongs, `null` for a name) is `422 Invalid`, naming the field,
/// as the OpenAPI document says.
pub(crate) struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AdminError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, AdminError> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|e| AdminError::BadRequest(format!("reading the request body: {e}")))?;
        let text: &[u8] = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => b"{}",
            // Every body of this API is an object (and so is every struct
            // in one: `objects_only`); serde would otherwise take `[]` for
            // an object whose fields are all optional.
            Some(b'{') => &bytes,
            Some(_) if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() => {
                return Err(AdminError::Invalid(
                    "the body: a JSON object is expected".into(),
                ));
            }
            Some(_) => &bytes,
        };
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        let value = serde_path_to_error::deserialize(objects_only::ObjectsOnly(&mut deserializer))
            .map_err(body_error)?;
        // Nothing but white space may follow the value.
        deserializer.end().map_err(|e| {
            AdminError::BadRequest(format!("the request body is not valid JSON: {e}"))
        })?;
        Ok(JsonBody(value))
    }
}

fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> AdminError {
    let field = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let field = if field == "." { "the body" } else { &field };
            AdminError::Invalid(format!("{field}: {inner}"))
        }
        _ => AdminError::BadRequest(format!("the request body is not valid JSON: {inner}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(discovery::OPENAPI).expect("openapi.json is JSON");
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let implemented: BTreeSet<(String, String)> = routes()
            .iter()
            .map(|r| (r.method.to_string(), format!("{PREFIX}{}", r.path)))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = implemented.difference(&documented).collect();
        let missing: Vec<_> = documented.difference(&implemented).collect();
        assert!(
            undocumented.is_empty(),
            "not in openapi.json: {undocumented:?}"
        );
        assert!(
            missing.is_empty(),
            "documented, not implemented: {missing:?}"
        );
    }

    #[test]
    fn openapi_document_is_openapi_3_and_refs_resolve() {
        let doc: serde_json::Value = serde_json::from_str(discovery::OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
        // Every $ref names something in components.
        fn walk(v: &serde_json::Value, doc: &serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                        let pointer = r.strip_prefix('#').expect("local ref");
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        // Every operation has an id and says what its errors look like.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path}: operationId"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}: success response"
                );
                assert!(
                    responses.keys().any(|k| k.starts_with('4')),
                    "{method} {path}: error responses"
                );
            }
        }
    }

    #[test]
    fn labels_are_unique() {
        let routes = routes();
        let labels: BTreeSet<_> = routes.iter().map(|r| r.label).collect();
        assert_eq!(labels.len(), routes.len());
    }

    #[test]
    fn errors_map_to_status_reasons() {
        let cases = [
            (AdminError::BadRequest("x".into()), 400, "BadRequest"),
            (
                AdminError::Unauthorized { challenge: None },
                401,
                "Unauthorized",
            ),
            (AdminError::Forbidden("x".into()), 403, "Forbidden"),
            (AdminError::NotFound("x".into()), 404, "NotFound"),
            (AdminError::AlreadyExists("x".into()), 409, "AlreadyExists"),
            (AdminError::Conflict("x".into()), 409, "Conflict"),
            (AdminError::Invalid("x".into()), 422, "Invalid"),
            (
                AdminError::TooManyRequests {
                    retry_after_secs: 3,
                },
                429,
                "TooManyRequests",
            ),
            (AdminError::Internal("x".into()), 500, "InternalError"),
        ];
        for (error, code, reason) in cases {
            let (status, r) = error.status_reason();
            assert_eq!((status.as_u16(), r), (code, reason));
        }
    }

    #[tokio::test]
    async fn internal_errors_hide_details() {
        use http_body_util::BodyExt;
        let response = AdminError::Internal("/secret/path".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "InternalError");
        assert_eq!(v["code"], 500);
        assert!(!v["message"].as_str().unwrap().contains("secret"));
    }
}
