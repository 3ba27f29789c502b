//! The token service of the Docker token protocol, at `/auth/token`.
//!
//! `GET` (the classic flow: Basic credentials or none, `scope` parameters)
//! and `POST` (OAuth2 form: `grant_type=password` or `refresh_token`) both
//! answer with a short-lived JWT whose `access` claim is the intersection of
//! the requested scopes and what the caller's roles allow. Asking for more
//! than one may have is not an error; the token simply grants less.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde::Serialize;

use super::AppState;
use super::errors::refuse_authentication;
use super::observe::RouteLabel;
use crate::auth::bearer::AccessEntry;
use crate::auth::scope::parse_scopes;
use crate::auth::{AuthFailure, Caller, Challenge};
use crate::error::RegistryError;

/// Largest OAuth form accepted.
const MAX_FORM: usize = 64 * 1024;

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: u64,
    issued_at: String,
}

/// The token service asks for a password with Basic, not for a token.
fn failure_response(failure: AuthFailure) -> Response {
    let challenge = Challenge::Basic {
        realm: "berth token service".into(),
    };
    RegistryError::from(refuse_authentication(failure, challenge)).into_response()
}

async fn issue(
    app: &AppState,
    caller: &Caller,
    requested: &[AccessEntry],
    address: Option<std::net::IpAddr>,
) -> Response {
    let granted = match app.access.grant(caller, requested).await {
        Ok(granted) => granted,
        Err(e) => return RegistryError::from(e).into_response(),
    };
    let subject = if caller.is_anonymous() {
        String::new()
    } else {
        caller.principal.name()
    };
    let jwt = match app
        .access
        .bearer()
        .issue(
            &subject,
            granted.clone(),
            caller.token_uid.clone(),
            caller.stamp.clone(),
        )
        .await
    {
        Ok(jwt) => jwt,
        Err(e) => return RegistryError::Internal(e.to_string()).into_response(),
    };
    tracing::info!(
        subject = %caller.principal.name(),
        address = ?address,
        requested = requested.len(),
        granted = ?granted.iter().map(|g| format!("{}:{}:{}", g.kind, g.name, g.actions.join(","))).collect::<Vec<_>>(),
        outcome = "issued",
        "token request"
    );
    let issued_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = TokenResponse {
        token: jwt.clone(),
        access_token: jwt,
        expires_in: app.access.bearer().lifetime().as_secs(),
        issued_at,
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn labelled(mut response: Response) -> Response {
    response.extensions_mut().insert(RouteLabel("token"));
    response
}

/// `GET /auth/token?service=…&scope=…`
pub async fn token(State(app): State<AppState>, request: Request) -> Response {
    let peer = super::peer_ip(request.extensions());
    let address = app.access.client_address(request.headers(), peer);
    let scopes: Vec<AccessEntry> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| parse_scopes(&v))
                .collect()
        })
        .unwrap_or_default();
    let response = match app.access.authenticate(request.headers(), peer).await {
        Ok(caller) => issue(&app, &caller, &scopes, address).await,
        Err(failure) => {
            tracing::info!(address = ?address, outcome = "refused", "token request");
            failure_response(failure)
        }
    };
    labelled(response)
}

/// `POST /auth/token` with an OAuth2 form.
pub async fn oauth_token(State(app): State<AppState>, request: Request) -> Response {
    let peer = super::peer_ip(request.extensions());
    let address = app.access.client_address(request.headers(), peer);
    // The request's headers (`X-Forwarded-For` among them), with the form's
    // credentials as the authorization.
    let mut headers = request.headers().clone();
    let body = match http_body_util::Limited::new(request.into_body(), MAX_FORM)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return labelled((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response());
        }
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let scopes: Vec<AccessEntry> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| parse_scopes(v))
        .collect();
    // Both grants come down to credentials berth already understands.
    let credentials = match field("grant_type") {
        Some("password") => field("username")
            .zip(field("password"))
            .map(|(u, p)| format!("{u}:{p}")),
        Some("refresh_token") => field("refresh_token").map(|t| format!("refresh:{t}")),
        _ => None,
    };
    let Some(credentials) = credentials else {
        return labelled(
            RegistryError::Unsupported("grant_type must be password or refresh_token".into())
                .into_response(),
        );
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    match HeaderValue::try_from(format!("Basic {encoded}")) {
        Ok(v) => {
            headers.insert(header::AUTHORIZATION, v);
        }
        Err(_) => return labelled(failure_response(AuthFailure::BadCredentials)),
    }
    let response = match app.access.authenticate(&headers, peer).await {
        Ok(caller) if !caller.is_anonymous() => issue(&app, &caller, &scopes, address).await,
        Ok(_) => failure_response(AuthFailure::BadCredentials),
        Err(failure) => {
            tracing::info!(address = ?address, outcome = "refused", "token request");
            failure_response(failure)
        }
    };
    labelled(response)
}
