//! A client for the REST API `/api/v1` (docs/rest-api.md): one method per
//! endpoint, and one error type. Its objects are the server's own types
//! ([`crate::wire`]).
//!
//! Every object keeps fields this client does not know (`extra`), so that
//! `-o json` shows what the server sent even when the server is newer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use crate::wire::{
    AccessReview, Extra, Group, GroupRequest, Job, JobStatus, List, NameMeta, NamedBody,
    ObjectMeta, Project, ProjectStatus, RoleBinding, RoleRef, SERVICE_ACCOUNT_PREFIX,
    ServerVersion, ServiceAccount, Status, Subject, SubjectsBody, Token, TokenRequest, TokenSpec,
    TokenStatus, User, UserRequest,
};
pub use crate::wire::{GarbageCollection, GarbageCollectionRequest, RemovedObject};
pub use crate::wire::{ImagePrune, ImagePruneSpec, ImagePruner, ImagePrunerSpec};
pub use crate::wire::{
    ImageStream, ImageStreamImage, ImageStreamRequest, ImageStreamSpecRequest, ImageStreamTag,
    ImageStreamTagRequest, ImmutableTagPolicy, ImmutableTagPolicyRequest, LookupPolicyRequest,
    ObjectReference, RollbackRequest, TagImportPolicy, TagReferencePolicy, TagReferenceRequest,
};
pub use crate::wire::{
    NamespaceUsage, QuotaLimits, RepositoryUsage, ResourceQuota, ResourceQuotaRequest,
    ResourceQuotaSpec,
};
pub use crate::wire::{Proxy, ProxyRequest, ProxySpec, Secret, SecretRegistry, SecretRequest};

/// What a call of the API answers.
pub type ApiResult<T> = Result<T, ClientError>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error `Status`. Displayed as `oc` does.
    #[error("Error from server ({reason}): {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer: the connection, TLS or the transfer failed. Shows the
    /// innermost cause (`Connection refused`, a certificate problem), which
    /// says more than reqwest's own message.
    #[error("unable to connect to the server {server}: {}", explain(server, error))]
    Connect {
        server: String,
        error: reqwest::Error,
    },
    #[error("unexpected answer from {url} ({status}): {detail}")]
    Unexpected {
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("reading the certificate authority file {}: {detail}", path.display())]
    CertificateAuthority { path: PathBuf, detail: String },
    #[error("invalid server address {0}")]
    InvalidServer(String),
    #[error("setting up the HTTP client")]
    Setup(#[source] reqwest::Error),
}

impl ClientError {
    /// The HTTP status of an error answered by the server.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// TLS settings for talking to the server.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub insecure_skip_verify: bool,
    pub certificate_authority: Option<PathBuf>,
}

/// How requests authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// HTTP Basic with a user's password.
    Password { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(…)"),
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, … }}"),
        }
    }
}

/// Which role bindings: a project's, or the cluster-wide ones.
#[derive(Debug, Clone, Copy)]
pub enum BindingScope<'a> {
    Namespace(&'a str),
    Cluster,
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    server: Url,
    credentials: Credentials,
}

impl ApiClient {
    /// A client for `server` (`scheme://host[:port]`).
    pub fn new(server: &str, tls: &TlsOptions, credentials: Credentials) -> ApiResult<ApiClient> {
        let server = Url::parse(server)
            .map_err(|e| ClientError::InvalidServer(format!("{server:?}: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120));
        if tls.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &tls.certificate_authority {
            builder = builder.tls_certs_merge(read_certificates(path)?);
        }
        Ok(ApiClient {
            http: builder.build().map_err(ClientError::Setup)?,
            server,
            credentials,
        })
    }

    pub fn server(&self) -> &str {
        self.server.as_str().trim_end_matches('/')
    }

    // --- projects

    pub async fn list_projects(&self) -> ApiResult<List<Project>> {
        self.get(&["projects"]).await
    }

    pub async fn get_project(&self, name: &str) -> ApiResult<Project> {
        self.get(&["projects", name]).await
    }

    pub async fn create_project(&self, name: &str) -> ApiResult<Project> {
        self.send(Method::POST, &["projects"], Some(&NamedBody::named(name)))
            .await
    }

    pub async fn delete_project(&self, name: &str) -> ApiResult<Status> {
        self.delete(&["projects", name]).await
    }

    // --- proxy namespaces

    pub async fn list_proxies(&self) -> ApiResult<List<Proxy>> {
        self.get(&["proxies"]).await
    }

    pub async fn get_proxy(&self, name: &str) -> ApiResult<Proxy> {
        self.get(&["proxies", name]).await
    }

    pub async fn create_proxy(&self, request: &ProxyRequest) -> ApiResult<Proxy> {
        self.send(Method::POST, &["proxies"], Some(request)).await
    }

    pub async fn delete_proxy(&self, name: &str) -> ApiResult<Status> {
        self.delete(&["proxies", name]).await
    }

    // --- service accounts

    pub async fn list_service_accounts(&self, namespace: &str) -> ApiResult<List<ServiceAccount>> {
        self.get(&["namespaces", namespace, "serviceaccounts"])
            .await
    }

    pub async fn get_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ServiceAccount> {
        self.get(&["namespaces", namespace, "serviceaccounts", name])
            .await
    }

    pub async fn create_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ServiceAccount> {
        self.send(
            Method::POST,
            &["namespaces", namespace, "serviceaccounts"],
            Some(&NamedBody::named(name)),
        )
        .await
    }

    pub async fn delete_service_account(&self, namespace: &str, name: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "serviceaccounts", name])
            .await
    }

    // --- tokens

    /// A token for the caller (a user): what login does.
    pub async fn create_token(&self, request: &TokenRequest) -> ApiResult<Token> {
        self.send(Method::POST, &["tokens"], Some(request)).await
    }

    /// A token for another user (cluster admins).
    pub async fn create_user_token(&self, user: &str, request: &TokenRequest) -> ApiResult<Token> {
        self.send(Method::POST, &["users", user, "tokens"], Some(request))
            .await
    }

    pub async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        request: &TokenRequest,
    ) -> ApiResult<Token> {
        self.send(
            Method::POST,
            &[
                "namespaces",
                namespace,
                "serviceaccounts",
                account,
                "tokens",
            ],
            Some(request),
        )
        .await
    }

    /// The caller's own tokens (cluster admins: every user token).
    pub async fn list_tokens(&self) -> ApiResult<List<Token>> {
        self.get(&["tokens"]).await
    }

    /// A project's service-account tokens.
    pub async fn list_namespace_tokens(&self, namespace: &str) -> ApiResult<List<Token>> {
        self.get(&["namespaces", namespace, "tokens"]).await
    }

    pub async fn delete_token(&self, name: &str) -> ApiResult<Status> {
        self.delete(&["tokens", name]).await
    }

    /// Revokes `user`'s token `name` (cluster admins; token names are
    /// unique per user only).
    pub async fn delete_user_token(&self, user: &str, name: &str) -> ApiResult<Status> {
        let mut url = self.url(&["tokens", name]);
        url.query_pairs_mut().append_pair("user", user);
        self.execute(self.http.delete(url)).await
    }

    pub async fn delete_namespace_token(&self, namespace: &str, name: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "tokens", name])
            .await
    }

    // --- role bindings

    pub async fn list_role_bindings(
        &self,
        scope: BindingScope<'_>,
    ) -> ApiResult<List<RoleBinding>> {
        self.get(&binding_path(scope, None, None)).await
    }

    pub async fn get_role_binding(
        &self,
        scope: BindingScope<'_>,
        role: &str,
    ) -> ApiResult<RoleBinding> {
        self.get(&binding_path(scope, Some(role), None)).await
    }

    /// Adds subjects to the binding of `role`. The answer is ignored beyond
    /// its status: after a removal the binding may be gone.
    pub async fn add_subjects(
        &self,
        scope: BindingScope<'_>,
        role: &str,
        subjects: &[Subject],
    ) -> ApiResult<()> {
        self.change_subjects(scope, role, "add-subjects", subjects)
            .await
    }

    pub async fn remove_subjects(
        &self,
        scope: BindingScope<'_>,
        role: &str,
        subjects: &[Subject],
    ) -> ApiResult<()> {
        self.change_subjects(scope, role, "remove-subjects", subjects)
            .await
    }

    async fn change_subjects(
        &self,
        scope: BindingScope<'_>,
        role: &str,
        action: &str,
        subjects: &[Subject],
    ) -> ApiResult<()> {
        let body = SubjectsBody {
            subjects: subjects.to_vec(),
        };
        let path = binding_path(scope, Some(role), Some(action));
        self.send::<Value>(Method::POST, &path, Some(&body))
            .await
            .map(drop)
    }

    pub async fn delete_role_binding(
        &self,
        scope: BindingScope<'_>,
        role: &str,
    ) -> ApiResult<Status> {
        self.delete(&binding_path(scope, Some(role), None)).await
    }

    pub async fn who_can(&self, namespace: &str, verb: &str) -> ApiResult<AccessReview> {
        let mut url = self.url(&["namespaces", namespace, "whocan"]);
        url.query_pairs_mut().append_pair("verb", verb);
        self.execute(self.http.get(url)).await
    }

    // --- users and groups

    pub async fn whoami(&self) -> ApiResult<User> {
        self.get(&["users", "~"]).await
    }

    pub async fn list_users(&self) -> ApiResult<List<User>> {
        self.get(&["users"]).await
    }

    pub async fn get_user(&self, name: &str) -> ApiResult<User> {
        self.get(&["users", name]).await
    }

    pub async fn create_user(&self, user: &UserRequest) -> ApiResult<User> {
        self.send(Method::POST, &["users"], Some(user)).await
    }

    pub async fn delete_user(&self, name: &str) -> ApiResult<Status> {
        self.delete(&["users", name]).await
    }

    /// Forgets the failed logins counted against a user.
    pub async fn unlock_user(&self, name: &str) -> ApiResult<Status> {
        self.send(Method::POST, &["users", name, "unlock"], None::<&()>)
            .await
    }

    pub async fn list_groups(&self) -> ApiResult<List<Group>> {
        self.get(&["groups"]).await
    }

    pub async fn get_group(&self, name: &str) -> ApiResult<Group> {
        self.get(&["groups", name]).await
    }

    pub async fn create_group(&self, group: &GroupRequest) -> ApiResult<Group> {
        self.send(Method::POST, &["groups"], Some(group)).await
    }

    pub async fn delete_group(&self, name: &str) -> ApiResult<Status> {
        self.delete(&["groups", name]).await
    }

    // --- background jobs

    pub async fn list_jobs(&self) -> ApiResult<List<Job>> {
        self.get(&["jobs"]).await
    }

    pub async fn get_job(&self, name: &str) -> ApiResult<Job> {
        self.get(&["jobs", name]).await
    }

    /// Makes the job due now.
    pub async fn run_job(&self, name: &str) -> ApiResult<Job> {
        self.send(Method::POST, &["jobs", name, "run"], None::<&()>)
            .await
    }

    // --- garbage collection

    /// Runs garbage collection (or a dry run); a run not ended within the
    /// server's wait comes back without an outcome, to be followed.
    pub async fn run_garbage_collection(&self, dry_run: bool) -> ApiResult<GarbageCollection> {
        self.send(
            Method::POST,
            &["garbagecollections"],
            Some(&GarbageCollectionRequest { dry_run }),
        )
        .await
    }

    pub async fn list_garbage_collections(&self) -> ApiResult<List<GarbageCollection>> {
        self.get(&["garbagecollections"]).await
    }

    pub async fn get_garbage_collection(&self, name: &str) -> ApiResult<GarbageCollection> {
        self.get(&["garbagecollections", name]).await
    }

    // --- the image pruner

    pub async fn image_pruner(&self) -> ApiResult<ImagePruner> {
        self.get(&["imagepruners", "cluster"]).await
    }

    /// Changes the pruner's settings given in `spec`.
    pub async fn patch_image_pruner(&self, spec: ImagePrunerSpec) -> ApiResult<ImagePruner> {
        let change = ImagePruner {
            metadata: ObjectMeta::named("cluster"),
            spec,
            ..ImagePruner::default()
        };
        self.send(Method::PATCH, &["imagepruners", "cluster"], Some(&change))
            .await
    }

    /// A dry run, or a run (which, not ended within the server's wait,
    /// comes back without an outcome, to be followed).
    pub async fn prune_images(&self, spec: ImagePruneSpec) -> ApiResult<ImagePrune> {
        let request = ImagePrune {
            spec,
            ..ImagePrune::default()
        };
        self.send(
            Method::POST,
            &["imagepruners", "cluster", "prunes"],
            Some(&request),
        )
        .await
    }

    pub async fn get_image_prune(&self, name: &str) -> ApiResult<ImagePrune> {
        self.get(&["imagepruners", "cluster", "prunes", name]).await
    }

    // --- pull secrets

    pub async fn list_secrets(&self, namespace: &str) -> ApiResult<List<Secret>> {
        self.get(&["namespaces", namespace, "secrets"]).await
    }

    pub async fn get_secret(&self, namespace: &str, name: &str) -> ApiResult<Secret> {
        self.get(&["namespaces", namespace, "secrets", name]).await
    }

    pub async fn create_secret(
        &self,
        namespace: &str,
        request: &SecretRequest,
    ) -> ApiResult<Secret> {
        self.send(
            Method::POST,
            &["namespaces", namespace, "secrets"],
            Some(request),
        )
        .await
    }

    // --- image streams

    /// A project's image streams, or (`None`) those of every project the
    /// caller may read.
    pub async fn list_image_streams(
        &self,
        namespace: Option<&str>,
    ) -> ApiResult<List<ImageStream>> {
        match namespace {
            Some(ns) => self.get(&["namespaces", ns, "imagestreams"]).await,
            None => self.get(&["imagestreams"]).await,
        }
    }

    pub async fn get_image_stream(&self, namespace: &str, name: &str) -> ApiResult<ImageStream> {
        self.get(&["namespaces", namespace, "imagestreams", name])
            .await
    }

    pub async fn create_image_stream(
        &self,
        namespace: &str,
        request: &ImageStreamRequest,
    ) -> ApiResult<ImageStream> {
        self.send(
            Method::POST,
            &["namespaces", namespace, "imagestreams"],
            Some(request),
        )
        .await
    }

    pub async fn delete_image_stream(&self, namespace: &str, name: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "imagestreams", name])
            .await
    }

    pub async fn set_image_lookup(
        &self,
        namespace: &str,
        name: &str,
        local: bool,
    ) -> ApiResult<ImageStream> {
        let body = LookupPolicyRequest { local: Some(local) };
        self.send(
            Method::PUT,
            &[
                "namespaces",
                namespace,
                "imagestreams",
                name,
                "lookup-policy",
            ],
            Some(&body),
        )
        .await
    }

    /// `NAME:TAG`.
    pub async fn get_image_stream_tag(
        &self,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamTag> {
        self.get(&["namespaces", namespace, "imagestreamtags", name])
            .await
    }

    /// Sets `NAME:TAG` as `request` says (`berth tag`).
    pub async fn import_image(
        &self,
        namespace: &str,
        request: &crate::wire::ImageStreamImport,
    ) -> Result<crate::wire::ImageStreamImport, ClientError> {
        self.send(
            Method::POST,
            &["namespaces", namespace, "imagestreamimports"],
            Some(request),
        )
        .await
    }

    pub async fn set_image_stream_tag(
        &self,
        namespace: &str,
        name: &str,
        request: &ImageStreamTagRequest,
    ) -> ApiResult<ImageStreamTag> {
        self.send(
            Method::PUT,
            &["namespaces", namespace, "imagestreamtags", name],
            Some(request),
        )
        .await
    }

    // --- immutable-tags policies

    pub async fn immutable_tag_policies(
        &self,
        namespace: &str,
    ) -> ApiResult<List<ImmutableTagPolicy>> {
        self.get(&["namespaces", namespace, "immutabletagpolicies"])
            .await
    }

    pub async fn set_immutable_tag_policy(
        &self,
        namespace: &str,
        request: &ImmutableTagPolicyRequest,
    ) -> ApiResult<ImmutableTagPolicy> {
        self.send(
            Method::PUT,
            &["namespaces", namespace, "immutabletagpolicies"],
            Some(request),
        )
        .await
    }

    pub async fn clear_immutable_tag_policy(
        &self,
        namespace: &str,
        repository: Option<&str>,
    ) -> ApiResult<Status> {
        let mut url = self.url(&["namespaces", namespace, "immutabletagpolicies"]);
        if let Some(repository) = repository {
            url.query_pairs_mut().append_pair("repository", repository);
        }
        self.execute(self.http.delete(url)).await
    }

    pub async fn namespace_usages(&self) -> ApiResult<List<NamespaceUsage>> {
        self.get(&["namespaceusages"]).await
    }

    pub async fn namespace_usage(&self, namespace: &str) -> ApiResult<NamespaceUsage> {
        self.get(&["namespaces", namespace, "usage"]).await
    }

    /// Every repository's usage (`None`, cluster admins) or a namespace's.
    pub async fn repository_usages(
        &self,
        namespace: Option<&str>,
    ) -> ApiResult<List<RepositoryUsage>> {
        match namespace {
            Some(ns) => self.get(&["namespaces", ns, "repositoryusages"]).await,
            None => self.get(&["repositoryusages"]).await,
        }
    }

    pub async fn namespace_quota(&self, namespace: &str) -> ApiResult<ResourceQuota> {
        self.get(&["namespaces", namespace, "quota"]).await
    }

    pub async fn set_namespace_quota(
        &self,
        namespace: &str,
        request: &ResourceQuotaRequest,
    ) -> ApiResult<ResourceQuota> {
        self.send(
            Method::PUT,
            &["namespaces", namespace, "quota"],
            Some(request),
        )
        .await
    }

    pub async fn clear_namespace_quota(&self, namespace: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "quota"]).await
    }

    pub async fn delete_secret(&self, namespace: &str, name: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "secrets", name])
            .await
    }

    pub async fn delete_image_stream_tag(&self, namespace: &str, name: &str) -> ApiResult<Status> {
        self.delete(&["namespaces", namespace, "imagestreamtags", name])
            .await
    }

    pub async fn rollback_image_stream_tag(
        &self,
        namespace: &str,
        name: &str,
        generation: i64,
    ) -> ApiResult<ImageStreamTag> {
        let body = RollbackRequest {
            generation: Some(generation),
        };
        self.send(
            Method::POST,
            &["namespaces", namespace, "imagestreamtags", name, "rollback"],
            Some(&body),
        )
        .await
    }

    /// `NAME@DIGEST`.
    pub async fn get_image_stream_image(
        &self,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamImage> {
        self.get(&["namespaces", namespace, "imagestreamimages", name])
            .await
    }

    // --- the server

    pub async fn server_version(&self) -> ApiResult<ServerVersion> {
        self.get(&["version"]).await
    }

    // --- plumbing

    /// `<server>/api/v1/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> ApiResult<T> {
        self.execute(self.http.get(self.url(segments))).await
    }

    async fn delete(&self, segments: &[&str]) -> ApiResult<Status> {
        self.execute(self.http.delete(self.url(segments))).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> ApiResult<T> {
        let mut request = self.http.request(method, self.url(segments));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.execute(request).await
    }

    async fn execute<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> ApiResult<T> {
        let request = match &self.credentials {
            Credentials::Token(token) => request.bearer_auth(token),
            Credentials::Password { user, password } => request.basic_auth(user, Some(password)),
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| ClientError::Connect {
                server: self.server().to_owned(),
                error,
            })?;
        let status = response.status();
        let url = response.url().to_string();
        let body = response
            .bytes()
            .await
            .map_err(|error| ClientError::Connect {
                server: self.server().to_owned(),
                error,
            })?;
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Unexpected {
            url,
            status,
            detail: format!("{e}; the body was {}", snippet(&body)),
        })
    }
}

fn binding_path<'a>(
    scope: BindingScope<'a>,
    role: Option<&'a str>,
    action: Option<&'a str>,
) -> Vec<&'a str> {
    let mut path = match scope {
        BindingScope::Namespace(namespace) => vec!["namespaces", namespace, "rolebindings"],
        BindingScope::Cluster => vec!["clusterrolebindings"],
    };
    path.extend(role);
    path.extend(action);
    path
}

/// The error for a failed answer: its `Status` if it is one, else what
/// can be told from the HTTP status and the body.
fn error_from(status: StatusCode, body: &[u8]) -> ClientError {
    let reason_for = |status: StatusCode| {
        match status.as_u16() {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "AlreadyExists",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ if status.is_server_error() => "InternalError",
            _ => "Unknown",
        }
        .to_owned()
    };
    if let Ok(parsed) = serde_json::from_slice::<Status>(body)
        && !parsed.message.is_empty()
    {
        return ClientError::Api {
            code: if parsed.code == 0 {
                status.as_u16()
            } else {
                parsed.code
            },
            reason: parsed
                .reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| reason_for(status)),
            message: parsed.message,
        };
    }
    // The distribution API's errors: {"errors":[{"code":…,"message":…}]}.
    if let Ok(parsed) = serde_json::from_slice::<Value>(body)
        && let Some(message) = parsed["errors"][0]["message"].as_str()
    {
        return ClientError::Api {
            code: status.as_u16(),
            reason: reason_for(status),
            message: message.to_owned(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() || text.len() > 500 {
        status
            .canonical_reason()
            .unwrap_or("the server refused the request")
            .to_lowercase()
    } else {
        text.to_owned()
    };
    ClientError::Api {
        code: status.as_u16(),
        reason: reason_for(status),
        message,
    }
}

/// The innermost cause of a failed exchange, with a hint for the usual
/// mistakes: HTTP against HTTPS and back, an unknown certificate authority.
fn explain(server: &str, error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let cause = cause.to_string();
    if error.is_timeout() {
        return format!("timed out ({cause})");
    }
    let hint = if server.starts_with("http://") && cause.contains("invalid HTTP version") {
        " (the server seems to speak HTTPS: log in to https://…)"
    } else if server.starts_with("https://") && cause.contains("InvalidContentType") {
        " (the server seems to speak plain HTTP: log in to http://…)"
    } else if cause.contains("UnknownIssuer") || cause.contains("certificate") {
        " (give the server's CA with --certificate-authority FILE, or \
         --insecure-skip-tls-verify)"
    } else {
        ""
    };
    format!("{cause}{hint}")
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

fn read_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    crate::files::read_ca_certificates(path).map_err(|detail| ClientError::CertificateAuthority {
        path: path.to_owned(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_become_oc_style_errors() {
        let body = br#"{"apiVersion":"v1","kind":"Status","status":"Failure","message":"projects \"x\" is forbidden","reason":"Forbidden","code":403}"#;
        let error = error_from(StatusCode::FORBIDDEN, body);
        assert_eq!(
            error.to_string(),
            "Error from server (Forbidden): projects \"x\" is forbidden"
        );
        assert_eq!(error.code(), Some(403));

        let error = error_from(StatusCode::UNAUTHORIZED, b"");
        assert_eq!(
            error.to_string(),
            "Error from server (Unauthorized): unauthorized"
        );
        let error = error_from(
            StatusCode::UNAUTHORIZED,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        assert_eq!(
            error.to_string(),
            "Error from server (Unauthorized): authentication required"
        );
        let error = error_from(StatusCode::NOT_FOUND, b"404 page not found\n");
        assert_eq!(
            error.to_string(),
            "Error from server (NotFound): 404 page not found"
        );
    }

    #[test]
    fn connection_errors_get_hints() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // A port nobody listens on: refused, no hint.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let client = ApiClient::new(
            &server,
            &TlsOptions::default(),
            Credentials::Token("t".into()),
        )
        .unwrap();
        let error = runtime.block_on(client.whoami()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("unable to connect to the server {server}: ")),
            "{text}"
        );
        assert!(!text.contains("error sending request"), "{text}");
        assert_eq!(error.code(), None);
    }

    #[test]
    fn a_missing_certificate_authority_file_is_reported() {
        let error = ApiClient::new(
            "https://r.example.com",
            &TlsOptions {
                insecure_skip_verify: false,
                certificate_authority: Some("/nonexistent/ca.pem".into()),
            },
            Credentials::Token("t".into()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn service_account_user_names_become_service_account_subjects() {
        assert_eq!(
            Subject::user("system:serviceaccount:myproj:builder"),
            Subject::service_account("myproj", "builder")
        );
        assert_eq!(Subject::user("alice").kind, "User");
        assert_eq!(Subject::user("system:serviceaccount:broken").kind, "User");
    }

    #[test]
    fn urls_are_encoded_per_segment() {
        let client = ApiClient::new(
            "http://127.0.0.1:5000",
            &TlsOptions::default(),
            Credentials::Token("t".into()),
        )
        .unwrap();
        assert_eq!(
            client
                .url(&binding_path(
                    BindingScope::Namespace("p"),
                    Some("system:image-puller"),
                    Some("add-subjects")
                ))
                .as_str(),
            "http://127.0.0.1:5000/api/v1/namespaces/p/rolebindings/system:image-puller/add-subjects"
        );
        assert_eq!(
            client.url(&["users", "~"]).as_str(),
            "http://127.0.0.1:5000/api/v1/users/~"
        );
        assert_eq!(
            client.url(&["groups", "a/b c"]).as_str(),
            "http://127.0.0.1:5000/api/v1/groups/a%2Fb%20c"
        );
        assert_eq!(client.server(), "http://127.0.0.1:5000");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"apiVersion":"v1","kind":"Token","metadata":{"name":"t","namespace":"p","uid":"u","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"a":"b"}},"spec":{"subject":"system:serviceaccount:p:b","expirationTimestamp":null},"status":{"token":"berth_x"},"future":1}"#;
        let token: Token = serde_json::from_str(text).unwrap();
        assert_eq!(token.secret(), Some("berth_x"));
        let back = serde_json::to_value(&token).unwrap();
        assert_eq!(back["future"], 1);
        assert_eq!(back["metadata"]["labels"]["a"], "b");
        assert_eq!(back["spec"]["subject"], "system:serviceaccount:p:b");
    }
}
