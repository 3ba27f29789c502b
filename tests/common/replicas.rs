//! Several berth replicas behind nginx, as users deploy them, and traffic
//! through them while a test breaks something:
//!
//! - [`Replicas`]: berth processes sharing one database and one blob store
//!   (whatever the environment given says), behind nginx as a round-robin
//!   load balancer, with the admin's client through it.
//! - [`pull_from`]: an image as one replica serves it, every byte checked
//!   against its digest.
//! - [`Traffic`]: pushers and pullers running through the load balancer
//!   until stopped, each answer sorted into success, a clean refusal
//!   (`503 UNAVAILABLE` with an OCI error body) or broken (anything else:
//!   a `500`, a body that is not an OCI error, wrong bytes, no answer within
//!   the bound), and every acknowledged image kept for the test to pull.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::assertions::{expect_status, header};
use super::client::{RegistryClient, SmallImage};
use super::cluster::Nginx;
use super::content::sha256;
use super::process::BerthProcess;

/// Replicas behind nginx.
pub struct Replicas {
    pub replicas: Vec<BerthProcess>,
    pub nginx: Nginx,
    /// The admin, through the load balancer.
    pub client: RegistryClient,
}

impl Replicas {
    /// `count` replicas (`replica-0`, … under `dir`) started together with
    /// the admin's `password` and `env` (the shared database and store),
    /// behind nginx. `None` (after a loud note) when nginx is missing.
    pub async fn start(
        dir: &Path,
        count: usize,
        password: &str,
        env: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> Option<Replicas> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        Replicas::start_each(dir, password, &vec![env; count], &[]).await
    }

    /// A replica per environment in `envs`, started together, behind nginx
    /// with replicas started elsewhere (`joining`: their addresses, first
    /// in nginx's list), as when a test's first replica is the real-client
    /// lab's own berth. They are numbered after those.
    pub async fn start_each(
        dir: &Path,
        password: &str,
        envs: &[Vec<(String, String)>],
        joining: &[SocketAddr],
    ) -> Option<Replicas> {
        let starts = envs.iter().enumerate().map(|(i, env)| {
            BerthProcess::serve(&dir.join(format!("replica-{}", joining.len() + i)))
                .admin_password(password)
                .envs(env)
                .start()
        });
        let replicas = futures::future::join_all(starts).await;
        let addrs: Vec<SocketAddr> = joining
            .iter()
            .copied()
            .chain(replicas.iter().map(|r| r.addr))
            .collect();
        let nginx = Nginx::round_robin(&addrs).await?;
        let client = RegistryClient::new(nginx.url.clone(), "admin", password);
        Some(Replicas {
            replicas,
            nginx,
            client,
        })
    }
}

/// What `client` (a replica, or the load balancer) serves for `repo:tag`:
/// the manifest's digest, once the config's and the layers' bytes have been
/// checked against their digests.
pub async fn pull_from(client: &RegistryClient, repo: &str, tag: &str) -> String {
    let response = expect_status(client.get_manifest(repo, tag).await, StatusCode::OK).await;
    let digest = header(&response, "docker-content-digest");
    let manifest: Value = response.json().await.expect("manifest JSON");
    for blob in blob_digests(&manifest) {
        let bytes = client.blob_bytes(repo, &blob).await;
        assert_eq!(
            sha256(&bytes),
            blob,
            "{repo}:{tag} from {}",
            client.base_url()
        );
    }
    digest
}

/// The config's and the layers' digests of an image manifest.
fn blob_digests(manifest: &Value) -> Vec<String> {
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .filter_map(|descriptor| descriptor["digest"].as_str())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------
// Traffic

/// How a request that did not succeed ended.
#[derive(Debug)]
enum Failure {
    /// `503 UNAVAILABLE`, with an OCI error body: what a registry whose
    /// database or store is away must answer.
    Refused,
    /// Anything else, described.
    Broken(String),
}

/// Pushes and pulls through one client (the load balancer) until
/// [`Traffic::stop`]: `pushers` tasks each pushing small images to `repo`
/// under tags of their own, `pullers` tasks each pulling an image already
/// acknowledged and checking every byte.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the traffic came to.
#[derive(Debug)]
pub struct TrafficReport {
    /// Images whose every request was answered with success: tag, digest.
    pub acknowledged: Vec<(String, String)>,
    pub push_attempts: usize,
    /// Pulls that got the acknowledged digest and every byte right.
    pub pulls: usize,
    /// Requests refused cleanly (`503 UNAVAILABLE`).
    pub refused: usize,
    /// Every other failure, described.
    pub broken: Vec<String>,
}

/// Counts so far, for a test to see that traffic went on at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub acknowledged: usize,
    pub pulls: usize,
    pub refused: usize,
}

#[derive(Default)]
struct Tally {
    acknowledged: Mutex<Vec<(String, String)>>,
    push_attempts: AtomicUsize,
    pulls: AtomicUsize,
    refused: AtomicUsize,
    broken: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, failure: Failure) {
        match failure {
            Failure::Refused => {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
            Failure::Broken(what) => self.broken.lock().expect("not poisoned").push(what),
        }
    }

    /// The `n`-th acknowledged image, cycling; `None` before the first.
    fn acknowledged_image(&self, n: usize) -> Option<(String, String)> {
        let acknowledged = self.acknowledged.lock().expect("not poisoned");
        (!acknowledged.is_empty()).then(|| acknowledged[n % acknowledged.len()].clone())
    }
}

impl Traffic {
    /// Starts the tasks. Every request must be answered within `bound`, or
    /// it counts as broken (a hang).
    pub fn start(
        client: &RegistryClient,
        repo: &str,
        pushers: usize,
        pullers: usize,
        bound: Duration,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut tasks = Vec::new();
        for worker in 0..pushers {
            let (client, repo, stop, tally) =
                (client.clone(), repo.to_owned(), stop.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let tag = format!("w{worker}-{n}");
                    n += 1;
                    tally.push_attempts.fetch_add(1, Ordering::SeqCst);
                    match push_image(&client, &repo, &tag, bound).await {
                        Ok(digest) => tally
                            .acknowledged
                            .lock()
                            .expect("not poisoned")
                            .push((tag, digest)),
                        Err(failure) => tally.record(failure),
                    }
                }
            }));
        }
        for worker in 0..pullers {
            let (client, repo, stop, tally) =
                (client.clone(), repo.to_owned(), stop.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = worker;
                while !stop.load(Ordering::SeqCst) {
                    n += 7;
                    let Some((tag, digest)) = tally.acknowledged_image(n) else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    match pull_image(&client, &repo, &tag, &digest, bound).await {
                        Ok(()) => {
                            tally.pulls.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(failure) => tally.record(failure),
                    }
                }
            }));
        }
        Traffic { stop, tally, tasks }
    }

    pub fn progress(&self) -> Progress {
        Progress {
            acknowledged: self.tally.acknowledged.lock().expect("not poisoned").len(),
            pulls: self.tally.pulls.load(Ordering::SeqCst),
            refused: self.tally.refused.load(Ordering::SeqCst),
        }
    }

    /// Stops the tasks once their requests in flight are answered.
    pub async fn stop(self) -> TrafficReport {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a traffic task");
        }
        let tally = Arc::try_unwrap(self.tally)
            .ok()
            .expect("the tasks are done");
        TrafficReport {
            acknowledged: tally.acknowledged.into_inner().expect("not poisoned"),
            push_attempts: tally.push_attempts.into_inner(),
            pulls: tally.pulls.into_inner(),
            refused: tally.refused.into_inner(),
            broken: tally.broken.into_inner().expect("not poisoned"),
        }
    }
}

/// An answer read whole.
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

/// `request` sent, and its answer read whole, within `bound`; a success
/// when the answer has `expected`, else a clean refusal or broken.
async fn exchange(
    request: RequestBuilder,
    what: &str,
    expected: StatusCode,
    bound: Duration,
) -> Result<bytes::Bytes, Failure> {
    let read = async {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>(Reply {
            status,
            headers,
            body,
        })
    };
    let reply = match tokio::time::timeout(bound, read).await {
        Err(_) => {
            return Err(Failure::Broken(format!(
                "{what}: no answer within {bound:?}"
            )));
        }
        Ok(Err(e)) => return Err(Failure::Broken(format!("{what}: {e}"))),
        Ok(Ok(reply)) => reply,
    };
    if reply.status == expected {
        return Ok(reply.body);
    }
    if is_clean_refusal(&reply) {
        return Err(Failure::Refused);
    }
    let shown = &reply.body[..reply.body.len().min(300)];
    Err(Failure::Broken(format!(
        "{what}: {} {}",
        reply.status,
        String::from_utf8_lossy(shown)
    )))
}

/// `503` with `Retry-After` and an OCI error body saying `UNAVAILABLE`.
fn is_clean_refusal(reply: &Reply) -> bool {
    let json = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let codes: Option<Vec<String>> =
        serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|error| {
                error["errors"]
                    .as_array()?
                    .iter()
                    .map(|e| e["code"].as_str().map(str::to_owned))
                    .collect()
            });
    reply.status == StatusCode::SERVICE_UNAVAILABLE
        && json
        && reply.headers.contains_key("retry-after")
        && codes.is_some_and(|codes| codes == ["UNAVAILABLE"])
}

/// The small image `RegistryClient::push_image` pushes: its digest if every
/// request succeeded.
async fn push_image(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    bound: Duration,
) -> Result<String, Failure> {
    let image = SmallImage::new(repo, tag);
    for content in [&image.config_bytes, &image.layer_bytes] {
        let digest = sha256(content);
        let what = format!("POST {repo} blob {digest}");
        let request = client
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(content.clone());
        exchange(request, &what, StatusCode::CREATED, bound).await?;
    }
    let what = format!("PUT {repo}:{tag}");
    let request = client
        .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
        .header("content-type", image.manifest.media_type.as_str())
        .body(image.manifest.bytes.clone());
    exchange(request, &what, StatusCode::CREATED, bound).await?;
    Ok(image.manifest.digest())
}

/// Pulls `repo:tag` and checks that it is `digest`, byte for byte, and
/// that its blobs hash to their digests.
async fn pull_image(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    digest: &str,
    bound: Duration,
) -> Result<(), Failure> {
    let what = format!("GET {repo}:{tag}");
    let request = client
        .request(Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json");
    let body = exchange(request, &what, StatusCode::OK, bound).await?;
    if sha256(&body) != digest {
        return Err(Failure::Broken(format!(
            "{what}: served {} for the acknowledged {digest}",
            sha256(&body)
        )));
    }
    let manifest: Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::Broken(format!("{what}: not JSON: {e}")))?;
    for blob in blob_digests(&manifest) {
        let what = format!("GET {repo} blob {blob}");
        let request = client.request(Method::GET, &format!("/v2/{repo}/blobs/{blob}"));
        let bytes = exchange(request, &what, StatusCode::OK, bound).await?;
        if sha256(&bytes) != blob {
            return Err(Failure::Broken(format!("{what}: wrong bytes")));
        }
    }
    Ok(())
}
