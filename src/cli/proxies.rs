//! `berth create proxy NS --upstream URL`: a project caching an upstream
//! registry; `berth get proxies`, `berth delete proxy NS`.

use time::OffsetDateTime;

use super::client::{NameMeta, Proxy, ProxyRequest, ProxySpec};
use super::output::{OutputFormat, Printable, age, object_identity, print_created};
use super::session::Session;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The project NS is made (you become its registry-admin). A pull of \
NS/library/alpine:3.20 then fetches library/alpine:3.20 from the upstream \
and caches it; later pulls are served from berth, the tag is checked \
upstream again after --ttl, and served as it is when the upstream fails. \
Pushes into NS are refused. Credentials for the upstream come from a pull \
secret of NS (berth create secret docker-registry … -n NS): the one named \
by --secret, else the one matching the upstream's host.")]
pub struct CreateProxyArgs {
    /// The project to make.
    pub name: String,
    /// The upstream registry: https://HOST[:PORT] (http:// for plain HTTP).
    #[arg(long)]
    pub upstream: String,
    /// The pull secret of the project to reach the upstream with.
    #[arg(long)]
    pub secret: Option<String>,
    /// How long a tag is served before it is checked upstream again
    /// (24h, 90m, 1d). Default 24h.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Accept plain HTTP or an unverified certificate from the upstream.
    #[arg(long)]
    pub insecure: bool,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn create(args: CreateProxyArgs, session: &Session) -> anyhow::Result<()> {
    let request = ProxyRequest {
        metadata: NameMeta::named(&args.name),
        spec: ProxySpec {
            upstream: args.upstream,
            secret: args.secret,
            ttl: args.ttl,
            insecure: args.insecure,
            ..ProxySpec::default()
        },
    };
    let proxy = session.client()?.create_proxy(&request).await?;
    print_created(&proxy, args.output.as_ref())
}

impl Printable for Proxy {
    object_identity!("proxy");
    fn headers() -> &'static [&'static str] {
        &["NAME", "UPSTREAM", "TTL", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.spec.upstream.clone(),
            self.spec.ttl.clone().unwrap_or_default(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["SECRET"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![self.spec.secret.clone().unwrap_or_default()]
    }
}
