//! Storage usage and quotas: `berth adm top projects`, `berth adm top
//! images [-n NS]` and `berth set quota NS --bytes 10GiB --repositories 50
//! --tags 1000` (or `--clear`).

use anyhow::bail;
use time::OffsetDateTime;

use super::client::{
    List, NamespaceUsage, QuotaLimits, RepositoryUsage, ResourceQuotaRequest, ResourceQuotaSpec,
};
use super::output::{OutputFormat, Printable, object_identity, print_list};
use super::session::{Globals, Session};
use crate::size_text::{format_size, parse_size};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
STORAGE counts each blob and manifest once in the project, however many of \
its repositories hold it (a blob shared with another project counts in \
each); RAW sums each repository as if it shared nothing. SHARED is what an \
image holds that another repository holds too. The figures are summed from \
what is stored when asked: exact after pushes, mounts, deletes and garbage \
collection.")]
pub struct AdmTopArgs {
    #[command(subcommand)]
    pub what: TopCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopCommand {
    /// Every project's storage (cluster admins), largest first.
    Projects(TopProjectsArgs),
    /// Each repository's storage, largest first: of one project (-n), or
    /// of all (cluster admins).
    Images(TopImagesArgs),
}

#[derive(Debug, clap::Args)]
pub struct TopProjectsArgs {
    /// Output format instead of a table: json, yaml, name, or
    /// jsonpath=TEMPLATE.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
pub struct TopImagesArgs {
    /// The project (default: every project, which takes a cluster admin).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Sizes: 10GiB, 500MiB, 2GB, 1048576 (bytes). Binary units (KiB, MiB, GiB, \
TiB) are powers of 1024, decimal ones (KB, MB, GB, TB) of 1000.

Examples:
  berth set quota myproj --bytes 10GiB --repositories 50 --tags 1000
  berth set quota myproj --bytes 500MB
  berth set quota myproj --show
  berth set quota myproj --clear")]
pub struct QuotaArgs {
    /// The project.
    pub namespace: String,
    /// Most bytes the project may store, deduplicated.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub bytes: Option<u64>,
    /// Most repositories.
    #[arg(long, value_name = "N")]
    pub repositories: Option<u64>,
    /// Most tags, over all its repositories.
    #[arg(long, value_name = "N")]
    pub tags: Option<u64>,
    /// Remove the project's quota.
    #[arg(long, conflicts_with_all = ["bytes", "repositories", "tags", "show"])]
    pub clear: bool,
    /// Show the project's quota and what it uses of it.
    #[arg(long, conflicts_with_all = ["bytes", "repositories", "tags"])]
    pub show: bool,
}

pub async fn top(session: &Session, args: AdmTopArgs) -> anyhow::Result<()> {
    let client = session.client()?;
    match args.what {
        TopCommand::Projects(args) => {
            let mut list = client.namespace_usages().await?;
            if args.output.is_none() {
                largest_first(&mut list.items, |u| (u.usage.bytes, &u.metadata.name));
            }
            print_list(&list, args.output.as_ref(), None)
        }
        TopCommand::Images(args) => {
            let mut list: List<RepositoryUsage> =
                client.repository_usages(args.namespace.as_deref()).await?;
            if args.output.is_none() {
                largest_first(&mut list.items, |u| (u.usage.bytes, &u.metadata.name));
            }
            print_list(&list, args.output.as_ref(), args.namespace.as_deref())
        }
    }
}

pub async fn set_quota(args: QuotaArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    let client = session.client()?;
    let namespace = args.namespace.as_str();
    if args.clear {
        client.clear_namespace_quota(namespace).await?;
        println!("Quota of {namespace} cleared.");
        return Ok(());
    }
    if args.show {
        let quota = client.namespace_quota(namespace).await?;
        let used = quota.status.map(|s| s.used).unwrap_or_default();
        let hard = &quota.spec.hard;
        println!("RESOURCE\tUSED\tHARD");
        if let Some(bytes) = hard.bytes {
            println!("bytes\t{}\t{}", format_size(used.bytes), format_size(bytes));
        }
        if let Some(repositories) = hard.repositories {
            println!("repositories\t{}\t{repositories}", used.repositories);
        }
        if let Some(tags) = hard.tags {
            println!("tags\t{}\t{tags}", used.tags);
        }
        return Ok(());
    }
    if args.bytes.is_none() && args.repositories.is_none() && args.tags.is_none() {
        bail!(
            "which limits? berth set quota {namespace} --bytes 10GiB --repositories 50 --tags 1000 (or --show, --clear)"
        );
    }
    let request = ResourceQuotaRequest {
        spec: ResourceQuotaSpec {
            hard: QuotaLimits {
                bytes: args.bytes,
                repositories: args.repositories,
                tags: args.tags,
            },
        },
    };
    let quota = client.set_namespace_quota(namespace, &request).await?;
    println!(
        "Quota of {namespace} set: {}.",
        limits_text(&quota.spec.hard)
    );
    Ok(())
}

/// `bytes=10.0 GiB repositories=50 tags=1000`, or `<none>`.
fn limits_text(limits: &QuotaLimits) -> String {
    let mut parts = Vec::new();
    if let Some(bytes) = limits.bytes {
        parts.push(format!("bytes={}", format_size(bytes)));
    }
    if let Some(repositories) = limits.repositories {
        parts.push(format!("repositories={repositories}"));
    }
    if let Some(tags) = limits.tags {
        parts.push(format!("tags={tags}"));
    }
    if parts.is_empty() {
        "<none>".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The table's order: most bytes first, then by name.
fn largest_first<T>(items: &mut [T], bytes_and_name: impl Fn(&T) -> (u64, &String)) {
    items.sort_by(|a, b| {
        let ((a_bytes, a_name), (b_bytes, b_name)) = (bytes_and_name(a), bytes_and_name(b));
        b_bytes.cmp(&a_bytes).then(a_name.cmp(b_name))
    });
}

impl Printable for NamespaceUsage {
    object_identity!("namespaceusage");
    fn headers() -> &'static [&'static str] {
        &["NAME", "STORAGE", "RAW", "REPOSITORIES", "TAGS", "QUOTA"]
    }
    fn row(&self, _now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            format_size(self.usage.bytes),
            format_size(self.usage.raw_bytes),
            self.usage.repositories.to_string(),
            self.usage.tags.to_string(),
            self.quota
                .as_ref()
                .map(limits_text)
                .unwrap_or_else(|| "<none>".to_owned()),
        ]
    }
}

impl Printable for RepositoryUsage {
    object_identity!("repositoryusage");
    fn headers() -> &'static [&'static str] {
        &["NAME", "TAGS", "MANIFESTS", "SIZE", "SHARED"]
    }
    fn row(&self, _now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.usage.tags.to_string(),
            self.usage.manifests.to_string(),
            format_size(self.usage.bytes),
            format_size(self.usage.shared_bytes),
        ]
    }
}
