//! The HTTP layer: routes, request parsing and response shapes. Handlers are
//! thin; they translate HTTP into calls on the domain ([`crate::domain`]) and
//! the access seam ([`crate::auth`]), and errors into OCI error bodies
//! (`/v2/`) or `Status` objects (the administration API, `/api/v1`).

pub mod admin;
pub mod admission;
pub mod connections;
pub mod endpoint;
pub mod errors;
pub mod observe;
pub mod ops;
pub mod range;
pub mod request_body;
pub mod sendfile;
pub mod token;
pub mod v2;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::AccessControl;
use crate::domain::registry::Registry;
use crate::domain::uploads::Uploads;

/// Everything a request handler can reach.
pub struct App {
    pub registry: Arc<Registry>,
    pub uploads: Arc<Uploads>,
    pub access: Arc<AccessControl>,
    /// `scheme://host[:port]` clients reach berth at, for absolute URLs.
    /// When unset, `Location` headers are relative paths.
    pub public_url: Option<String>,
    /// Whether berth itself terminates TLS (for URLs built from `Host`).
    pub tls: bool,
    /// How the first user is made (`POST /api/v1/user/initialize` is open
    /// only with `initialize`).
    pub bootstrap: crate::config::Bootstrap,
    pub metrics: Option<PrometheusHandle>,
    /// A request body that sends nothing for this long fails.
    pub body_stall: std::time::Duration,
    /// `readOnly`: writes to `/v2/` are refused.
    pub read_only: bool,
    /// Blob GETs are redirected to the store where it signs URLs (not
    /// `disableRedirect`).
    pub redirect_blob_reads: bool,
    /// `requests.read|write`: how many `/v2/` requests run and wait.
    pub admission: admission::Admission,
    /// The background jobs' status, for `/api/v1/jobs`.
    pub jobs: Arc<crate::jobs::JobBoard>,
    /// Pull secrets, for `/api/v1/namespaces/{ns}/secrets` and imports.
    pub secrets: Arc<crate::domain::secrets::PullSecrets>,
    /// Image streams: tag history, tagging, rollback (`/api/v1/…/imagestreams`).
    pub image_streams: Arc<crate::domain::image_streams::ImageStreams>,
    /// Imports from other registries (`/api/v1/…/imagestreamimports`).
    pub importer: Arc<crate::domain::imports::Importer>,
    /// Blobs of `Local` imports fetched from their upstream when pulled.
    pub pull_through: Arc<crate::domain::pull_through::PullThrough>,
    /// Garbage collection (`/api/v1/garbagecollections`) and the touches
    /// of blobs a push reads.
    pub garbage: Arc<crate::domain::garbage::GarbageCollector>,
    /// The image pruner (`/api/v1/imagepruners/cluster`).
    pub pruner: Arc<crate::domain::pruner::Pruner>,
}

pub type AppState = Arc<App>;

impl App {
    /// A URL for `path`, absolute when the public URL is known.
    pub fn url(&self, path: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => path.to_owned(),
        }
    }

    /// `scheme://host[:port]` of the registry as this request reached it:
    /// the configured public URL, else the request's `Host`.
    pub fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(base) = &self.public_url {
            return base.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}")
    }
}

/// The client's address, as the listener recorded it, for lockout and logs.
pub(crate) fn peer_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/auth/token", get(token::token).post(token::oauth_token))
        .nest(admin::PREFIX, admin::router())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .with_state(app)
}
