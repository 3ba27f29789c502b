//! Assembling and running the registry: stores, access control, background
//! jobs, the HTTP listener, and graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::admission::Admission;
use crate::api::connections::{ConnectionGate, GatedAcceptor};
use crate::api::{self, App};
use crate::auth::address::TrustedProxies;
use crate::auth::lockout::LockoutPolicy;
use crate::auth::{AccessControl, AccessOptions, password};
use crate::config::{Bootstrap, Config, TlsMode};
use crate::domain::cache::Coherence;
use crate::domain::garbage::{GarbageCollector, GcSettings};
use crate::domain::image_streams::ImageStreams;
use crate::domain::imports::{ImportSettings, Importer};
use crate::domain::proxies::{self, Proxies};
use crate::domain::pruner::Pruner;
use crate::domain::pull_through::{PullThrough, PullThroughParts};
use crate::domain::registry::{Registry, RegistryOptions};
use crate::domain::secrets::{KeySettings, PullSecrets, load_keys};
use crate::domain::uploads::Uploads;
use crate::jobs;
use crate::metadata::access::User;
use crate::metadata::proxies::ProxyStore;
use crate::metadata::{
    AccessStore, DatabaseConfig, GarbageStore, ImageStreamStore, JobStore, MetadataStore,
    PrunerStore, SecretStore, SqlMetadataStore, now,
};
use crate::storage::BlobStore;
use crate::tls;
use crate::upstream::{UpstreamClient, UpstreamSettings};

/// Name of the super user created on first start.
pub const ADMIN_USER: &str = "admin";
/// File in the data directory holding a generated admin password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// A registry serving on a socket.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Whether the listener speaks TLS.
    pub tls: bool,
    shutdown: watch::Sender<bool>,
    serving: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish, stops
    /// background jobs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.serving.await??;
        for worker in self.workers {
            let _ = worker.await;
        }
        Ok(())
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await
    }
}

fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Opens the stores, bootstraps the admin user, binds and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let tls_mode = config.http.tls.mode()?;
    if tls_mode == TlsMode::Off
        && !config.http.addr.ip().is_loopback()
        && !config.http.insecure_http
    {
        bail!(
            "refusing to serve plain HTTP on {}, which is not a loopback address; \
             configure http.tls (certificate and key, or auto), or pass --insecure-http \
             (http.insecureHttp) if plain HTTP is really wanted",
            config.http.addr
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let database = match &config.database.url {
        Some(url) => DatabaseConfig::Postgres {
            url: url.clone(),
            max_connections: config.database.max_connections,
        },
        None => DatabaseConfig::Sqlite {
            path: config.data_dir.join("berth.db"),
        },
    };
    let store = Arc::new(
        SqlMetadataStore::connect(&database)
            .await
            .context("opening the metadata database")?,
    );
    let metadata: Arc<dyn MetadataStore> = store.clone();
    let job_store: Arc<dyn JobStore> = store.clone();
    let secret_store: Arc<dyn SecretStore> = store.clone();
    let stream_store: Arc<dyn ImageStreamStore> = store.clone();
    let proxy_store: Arc<dyn ProxyStore> = store.clone();
    let garbage_store: Arc<dyn GarbageStore> = store.clone();
    let pruner_store: Arc<dyn PrunerStore> = store.clone();
    let access_store: Arc<dyn AccessStore> = store;
    let blobs =
        BlobStore::open(&config.storage, &config.storage_root()).context("opening blob storage")?;
    match blobs.check().await {
        Ok(()) => tracing::info!(storage = %blobs.describe(), "blob storage answers"),
        // Not fatal: /readyz says not ready until it answers.
        Err(e) => tracing::warn!(
            storage = %blobs.describe(),
            error = %e,
            "blob storage does not answer yet"
        ),
    }

    if config.auth.bootstrap == Bootstrap::AdminPassword {
        bootstrap_admin(access_store.as_ref(), &config.data_dir).await?;
    }

    let uploads = Arc::new(Uploads::new(metadata.clone(), blobs.clone()));
    let registry = Arc::new(Registry::new(
        metadata.clone(),
        blobs,
        RegistryOptions {
            allow_missing_references: config.validation.manifests.allow_missing_references,
            // With PostgreSQL other replicas change manifests too: the
            // cache serves while the database's notifications of their
            // changes keep reaching this replica (started below).
            cache_pulls: match config.database.url {
                None => Coherence::Local,
                Some(_) => Coherence::Shared,
            },
            tag_expiration_default: config.tag_expiration.default,
        },
    ));
    let access = Arc::new(AccessControl::new(
        access_store.clone(),
        access_options(&config)?,
    ));
    access
        .bearer()
        .load_keys()
        .await
        .context("loading the keys that sign bearer tokens")?;
    let secrets = Arc::new(open_pull_secrets(&config, secret_store).await?);
    let replica = jobs::replica_id();
    tracing::info!(replica = %replica, "replica id (names this process in job leases)");
    let job_board = Arc::new(jobs::JobBoard::new(job_store));
    let garbage = Arc::new(GarbageCollector::new(
        garbage_store,
        registry.clone(),
        gc_settings(&config),
        replica.clone(),
    ));
    let pruner = Arc::new(Pruner::new(
        pruner_store,
        registry.clone(),
        garbage.clone(),
        Arc::new(jobs::CollectThroughJob::new(
            job_board.clone(),
            garbage.clone(),
        )),
        replica.clone(),
        config.database.url.is_some(),
    ));
    let image_streams = Arc::new(ImageStreams::new(registry.clone(), stream_store));
    let upstream = UpstreamClient::new(UpstreamSettings {
        ca_files: config.image_policy.additional_trusted_ca.clone(),
        ..UpstreamSettings::default()
    })
    .context("setting up the client of upstream registries (imagePolicy.additionalTrustedCA)")?;
    let importer = Arc::new(Importer {
        registry: registry.clone(),
        streams: image_streams.clone(),
        secrets: secrets.clone(),
        quotas: access_store.clone(),
        upstream: upstream.clone(),
        settings: import_settings(&config),
    });
    let proxies = Arc::new(
        Proxies::load(proxy_store)
            .await
            .context("reading the proxy namespaces")?,
    );
    let pull_through = Arc::new(PullThrough::new(PullThroughParts {
        registry: registry.clone(),
        uploads: uploads.clone(),
        streams: image_streams.clone(),
        secrets: secrets.clone(),
        importer: importer.clone(),
        proxies: proxies.clone(),
        upstream,
        spool_dir: config.data_dir.join("pull-through"),
    }));
    let app = Arc::new(App {
        registry: registry.clone(),
        uploads: uploads.clone(),
        access: access.clone(),
        public_url: config.http.host.clone(),
        tls: tls_mode != TlsMode::Off,
        bootstrap: config.auth.bootstrap,
        metrics: metrics_handle(),
        body_stall: config.http.timeouts.body_stall,
        read_only: config.read_only,
        redirect_blob_reads: !config.disable_redirect,
        admission: Admission::new(&config.requests),
        jobs: job_board.clone(),
        secrets,
        image_streams,
        importer: importer.clone(),
        pull_through,
        garbage: garbage.clone(),
        pruner: pruner.clone(),
    });

    let listener = std::net::TcpListener::bind(config.http.addr)
        .with_context(|| format!("binding {}", config.http.addr))?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);

    let mut jobs = jobs::Jobs::new(
        job_board,
        replica,
        job_settings(&config),
        shutdown.subscribe(),
    );
    // Shared state: one replica at a time.
    jobs.once_across_replicas(
        jobs::StaleUploads::new(uploads.clone(), config.uploads.stale_after),
        config.uploads.cleanup_interval,
    );
    jobs.once_across_replicas(
        jobs::GarbageCollection { collector: garbage },
        config.gc.interval,
    );
    jobs.once_across_replicas(jobs::ImagePruner { pruner }, config.pruner.check_interval);
    let key_check = (config.auth.signing_key_rotation / 4).max(std::time::Duration::from_secs(1));
    jobs.once_across_replicas(
        jobs::KeyRotation {
            access: access.clone(),
        },
        key_check,
    );
    jobs.once_across_replicas(
        jobs::ScheduledImports::new(
            importer,
            config.image_policy.max_scheduled_image_imports_per_host,
        ),
        jobs::ScheduledImports::poll_interval(&import_settings(&config)),
    );
    // This process's own upkeep: every replica.
    jobs.in_every_replica(
        jobs::KeyReload {
            access: access.clone(),
        },
        key_check,
    );
    jobs.in_every_replica(jobs::MemoryTrim, std::time::Duration::from_secs(10));
    jobs.in_every_replica(jobs::ProxyReload { proxies }, proxies::RELOAD_INTERVAL);
    if let Some(metrics) = &app.metrics {
        jobs.in_every_replica(
            jobs::MetricsUpkeep {
                handle: metrics.clone(),
            },
            std::time::Duration::from_secs(5),
        );
    }
    let mut workers = jobs.into_handles();
    if let Some(url) = &config.database.url {
        workers.push(tokio::spawn(crate::metadata::changes::follow(
            url.clone(),
            format!("berth changes {}", std::process::id()),
            registry.change_sink(),
            shutdown.subscribe(),
        )));
    }

    let certificate_files = match &tls_mode {
        TlsMode::Off => None,
        TlsMode::Files { certificate, key } => Some(tls::CertificateFiles {
            certificate: certificate.clone(),
            key: key.clone(),
        }),
        TlsMode::Auto => {
            let (names, hosts) = auto_tls_names(&config, local_addr);
            let auto = tls::auto(&config.data_dir, &names)?;
            if auto.ca_created {
                eprintln!("{}", tls::trust_instructions(&auto.ca_certificate, &hosts));
            }
            tracing::info!(ca = %auto.ca_certificate.display(), names = ?names, "TLS with berth's own CA");
            Some(auto.files)
        }
    };

    let handle = axum_server::Handle::new();
    let gate = ConnectionGate::new(config.http.max_connections, config.http.timeouts.send_stall);
    let timeouts = config.http.timeouts.clone();
    let service = api::router(app).into_make_service_with_connect_info::<SocketAddr>();
    let serving = match certificate_files {
        None => {
            let server = axum_server::from_tcp(listener)?
                .acceptor(api::sendfile::SendfileAcceptor(gate.clone()));
            let server = bounded(server, &timeouts, &handle);
            tokio::spawn(async move { server.serve(service).await })
        }
        Some(files) => {
            let (rustls, watcher) = tls::load_and_watch(files, shutdown.subscribe())?;
            workers.push(watcher);
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls)?.map(|tls| {
                tls.handshake_timeout(timeouts.request_headers)
                    .acceptor(GatedAcceptor(gate.clone()))
            });
            let server = bounded(server, &timeouts, &handle);
            tokio::spawn(async move { server.serve(service).await })
        }
    };
    let grace = config.http.shutdown_grace_period;
    workers.push(tokio::spawn(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        // Stop accepting; let in-flight requests finish, for so long.
        handle.graceful_shutdown(Some(grace));
    }));
    tracing::info!(addr = %local_addr, data_dir = %config.data_dir.display(), "berth is serving");
    Ok(RunningServer {
        local_addr,
        tls: tls_mode != TlsMode::Off,
        shutdown,
        serving,
        workers,
    })
}

/// The server with its timeouts and shutdown handle. Waiting for the next
/// request's headers on a kept-alive HTTP/1 connection is bounded by
/// `idle` (hyper's header timer runs from the moment it waits); HTTP/2 peers
/// that stop answering pings are dropped.
fn bounded<Acceptor>(
    mut server: axum_server::Server<SocketAddr, Acceptor>,
    timeouts: &crate::config::HttpTimeouts,
    handle: &axum_server::Handle<SocketAddr>,
) -> axum_server::Server<SocketAddr, Acceptor> {
    let builder = server.http_builder();
    builder
        .http1()
        .header_read_timeout(timeouts.idle)
        .max_buf_size(HTTP1_READ_BUFFER);
    builder
        .http2()
        .keep_alive_interval(Some(HTTP2_PING_INTERVAL))
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);
    server
        .handle(handle.clone())
        .first_request_timeout(timeouts.request_headers)
        .accept_error_handler(log_accept_error)
}

/// Largest read buffer of an HTTP/1 connection. hyper's default (about
/// 400 KiB) is kept for as long as a connection lives, even one whose
/// client has gone quiet mid-body.
const HTTP1_READ_BUFFER: usize = 64 * 1024;
const HTTP2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Failed accepts (out of descriptors, say) and refused or failed
/// handshakes, at most one line a second.
fn log_accept_error(peer: Option<&SocketAddr>, error: &std::io::Error) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    metrics::counter!("berth_http_accept_errors_total").increment(1);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1)) {
        *last = Some(std::time::Instant::now());
        tracing::warn!(peer = ?peer, %error, "connection not accepted");
    }
}

/// Names the `auto` certificate is valid for, and the `host:port` forms
/// clients use (for the trust instructions).
fn auto_tls_names(config: &Config, local: SocketAddr) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let public = config
        .http
        .host
        .as_deref()
        .and_then(|h| url::Url::parse(h).ok())
        .and_then(|u| {
            Some((
                u.host_str()?.trim_matches(['[', ']']).to_owned(),
                u.port_or_known_default(),
            ))
        });
    if let Some((host, _)) = &public {
        names.push(host.clone());
    }
    names.extend(config.http.hostnames.iter().cloned());
    if let Ok(hostname) = std::fs::read_to_string("/etc/hostname") {
        let hostname = hostname.trim();
        if !hostname.is_empty() {
            names.push(hostname.to_owned());
        }
    }
    names.extend([
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ]);
    if !local.ip().is_unspecified() {
        names.push(local.ip().to_string());
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));

    let mut hosts: Vec<String> = Vec::new();
    if let Some((host, port)) = &public {
        hosts.push(match port {
            Some(443) | None => host.clone(),
            Some(p) => format!("{host}:{p}"),
        });
    }
    for name in names.iter().filter(|n| *n != "::1") {
        let host = format!("{name}:{}", local.port());
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    (names, hosts)
}

fn gc_settings(config: &Config) -> GcSettings {
    let mut settings = GcSettings {
        blob_grace_period: config.gc.blob_grace_period,
        delete_untagged_manifests: config.gc.delete_untagged_manifests,
        batch_size: config.gc.batch_size,
        concurrency: usize::try_from(config.gc.concurrency).unwrap_or(1),
        busy_percent: config.gc.busy_percent,
        delete_window: crate::domain::garbage::DELETE_WINDOW,
    };
    let variable = crate::domain::garbage::TEST_DELETE_WINDOW_VARIABLE;
    if let Ok(text) = std::env::var(variable) {
        match humantime::parse_duration(&text) {
            Ok(window) => {
                tracing::warn!(
                    ?window,
                    "test setting {variable}: garbage collection's delete window"
                );
                settings.delete_window = window;
            }
            Err(e) => tracing::warn!("{variable}={text:?} is not a duration ({e}); ignored"),
        }
    }
    settings
}

fn job_settings(config: &Config) -> jobs::JobSettings {
    jobs::JobSettings {
        lease: config.jobs.lease,
        poll_interval: config.jobs.poll_interval,
        retry_backoff: config.jobs.retry_backoff,
        max_retry_backoff: config.jobs.max_retry_backoff,
    }
}

fn access_options(config: &Config) -> anyhow::Result<AccessOptions> {
    // The bootstrap admin is a super user by its database flag, not by name:
    // under `initialize` there may be no `admin`, or an ordinary one.
    let super_users = config.auth.super_users.clone();
    Ok(AccessOptions {
        service: config.auth.service.clone(),
        token_lifetime: config.auth.token_lifetime,
        key_rotation: config.auth.signing_key_rotation,
        super_users,
        auto_create_namespaces: config.auth.auto_create_namespaces,
        lockout: LockoutPolicy {
            per_user: config.auth.lockout.max_failures_per_user,
            per_address: config.auth.lockout.max_failures_per_address,
            window: config.auth.lockout.window,
            duration: config.auth.lockout.duration,
            slowdown: config.auth.lockout.slowdown,
        },
        trusted_proxies: TrustedProxies::new(config.http.trusted_proxy_networks()?),
    })
}

/// On the first start (no users at all) creates the `admin` super user.
/// Its password is `BERTH_ADMIN_PASSWORD` if set, else generated, printed
/// once and written to `<data-dir>/admin-password` (mode 0600).
async fn bootstrap_admin(store: &dyn AccessStore, data_dir: &Path) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let given = std::env::var("BERTH_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let generated = given.is_none();
    let secret = given.unwrap_or_else(|| password::random_secret(18));
    let hash = password::hash_bounded(secret.clone())
        .await
        .map_err(|e| anyhow::anyhow!("the admin password: {e}"))?;
    let created = store
        .create_user(&User {
            name: ADMIN_USER.into(),
            uid: uuid::Uuid::new_v4().to_string(),
            password_hash: Some(hash),
            email: None,
            super_user: true,
            created_at: now(),
            credential_epoch: 0,
        })
        .await?;
    if created && generated {
        let path = data_dir.join(ADMIN_PASSWORD_FILE);
        crate::files::write_synced(&path, format!("{secret}\n").as_bytes(), true)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "\nberth: created super user '{ADMIN_USER}' with password\n\n    {secret}\n\n\
             It is also in {} (readable by you only). It will not be shown again.\n",
            path.display()
        );
    } else if created {
        tracing::info!(
            user = ADMIN_USER,
            "created super user from BERTH_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

/// The pull secrets, under the keys `secrets` configures (a key file is
/// made on the first start), and the pass that re-encrypts under the
/// current key what an earlier key sealed. Several replicas may run the
/// pass at once: a secret is rewritten only if it is still as read. A
/// secret that cannot be decrypted is reported here, by name and key id,
/// and left as it is.
fn import_settings(config: &Config) -> ImportSettings {
    let policy = &config.image_policy;
    ImportSettings {
        max_bulk_tags: policy.max_images_bulk_imported_per_repository,
        scheduled_interval: std::time::Duration::from_secs(
            policy.scheduled_image_import_minimum_interval_seconds,
        ),
    }
}

async fn open_pull_secrets(
    config: &Config,
    store: Arc<dyn SecretStore>,
) -> anyhow::Result<PullSecrets> {
    let settings = KeySettings {
        encryption_key: config.secrets.encryption_key.as_ref().map(|k| k.0.clone()),
        previous_keys: config
            .secrets
            .previous_keys
            .iter()
            .map(|k| k.0.clone())
            .collect(),
        key_file: config.secrets.key_file.clone(),
    };
    let loaded = load_keys(&settings, &config.data_dir)
        .context("loading the keys that encrypt pull secrets")?;
    if let Some(file) = &loaded.created_file {
        if config.database.url.is_some() {
            tracing::warn!(
                file = %file.display(),
                key_id = %loaded.keys.current_id(),
                "made a key of this replica's own to encrypt pull secrets; replicas sharing \
                 the database need the same key: set secrets.encryptionKey, or secrets.keyFile \
                 on storage they share (README: Pull secrets: keys and rotation)"
            );
        } else {
            tracing::info!(
                file = %file.display(),
                key_id = %loaded.keys.current_id(),
                "made the key that encrypts pull secrets"
            );
        }
    }
    tracing::info!(
        key_id = %loaded.keys.current_id(),
        previous = ?loaded.keys.previous_ids(),
        "pull secrets are encrypted under key"
    );
    let secrets = PullSecrets::new(store, loaded.keys);
    match secrets.reencrypt().await {
        Ok(done) => {
            if done.resealed > 0 {
                tracing::info!(
                    resealed = done.resealed,
                    key_id = %secrets.keys().current_id(),
                    "re-encrypted pull secrets under the current key"
                );
            }
            for failure in &done.failed {
                tracing::error!(error = %failure, "a pull secret cannot be re-encrypted");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "re-encrypting pull secrets failed; retried at the next start")
        }
    }
    Ok(secrets)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
