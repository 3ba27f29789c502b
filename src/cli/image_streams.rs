//! Image streams on the command line, as `oc` users know them: `get is`,
//! `get istag`, `get isimage`, `describe is`, `tag`, `rollback istag`,
//! `set image-lookup` (and `create is`, `delete is|istag` through the
//! generic verbs).

use std::fmt::Write as _;

use anyhow::bail;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{
    ApiClient, ImageStream, ImageStreamImage, ImageStreamRequest, ImageStreamSpecRequest,
    ImageStreamTag, ImageStreamTagRequest, ImmutableTagPolicyRequest, List, LookupPolicyRequest,
    NameMeta, ObjectReference, TagImportPolicy, TagReferencePolicy, TagReferenceRequest,
};
use super::output::{
    OutputFormat, Printable, age, joined, object_identity, print_created, print_list, print_one,
};
use super::session::{Globals, Session};

// --- get

/// `berth get is|istag|isimage [NAME] [-A]`.
pub async fn get(
    client: &ApiClient,
    session: &Session,
    what: StreamResource,
    name: Option<&str>,
    namespace: Option<&str>,
    all_namespaces: bool,
    format: Option<&OutputFormat>,
) -> anyhow::Result<()> {
    match what {
        StreamResource::Streams => match name {
            Some(name) => {
                let ns = session.namespace(namespace)?;
                print_one(&client.get_image_stream(&ns, name).await?, format)
            }
            None if all_namespaces => {
                print_list(&client.list_image_streams(None).await?, format, None)
            }
            None => {
                let ns = session.namespace(namespace)?;
                print_list(
                    &client.list_image_streams(Some(&ns)).await?,
                    format,
                    Some(&ns),
                )
            }
        },
        StreamResource::Tags => {
            let ns = session.namespace(namespace)?;
            match name {
                Some(name) => print_one(&client.get_image_stream_tag(&ns, name).await?, format),
                None => {
                    // Every tag of every stream of the project, as `oc get istag`.
                    let streams = client.list_image_streams(Some(&ns)).await?;
                    let mut items = Vec::new();
                    for stream in &streams.items {
                        for tag in &stream.status.tags {
                            let name = format!("{}:{}", stream.metadata.name, tag.tag);
                            items.push(client.get_image_stream_tag(&ns, &name).await?);
                        }
                    }
                    let mut list = List::of("ImageStreamTag", items);
                    list.api_version = crate::wire::IMAGE_API_VERSION.into();
                    print_list(&list, format, Some(&ns))
                }
            }
        }
        StreamResource::Images => {
            let ns = session.namespace(namespace)?;
            let Some(name) = name else {
                bail!("give the image: berth get isimage NAME@sha256:…");
            };
            print_one(&client.get_image_stream_image(&ns, name).await?, format)
        }
    }
}

/// The image stream kinds `get` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamResource {
    Streams,
    Tags,
    Images,
}

fn ago(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    match timestamp {
        Some(_) => format!("{} ago", age(timestamp, now)),
        None => "<none>".into(),
    }
}

/// When the newest revision of any tag of `stream` was made.
fn last_updated(stream: &ImageStream) -> Option<&str> {
    stream
        .status
        .tags
        .iter()
        .filter_map(|t| t.items.first())
        .map(|item| item.created.as_str())
        .max()
}

impl Printable for ImageStream {
    object_identity!("imagestream");
    fn headers() -> &'static [&'static str] {
        &["NAME", "IMAGE REPOSITORY", "TAGS", "UPDATED"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.status.docker_image_repository.clone(),
            joined(self.status.tags.iter().map(|t| t.tag.as_str())),
            match last_updated(self) {
                Some(at) => ago(Some(at), now),
                None => String::new(),
            },
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["NAMESPACE", "GENERATION", "LOOKUP LOCAL"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.metadata.namespace.clone().unwrap_or_default(),
            self.generation().map(|g| g.to_string()).unwrap_or_default(),
            self.spec.lookup_policy.local.to_string(),
        ]
    }
}

impl Printable for ImageStreamTag {
    object_identity!("imagestreamtag");
    fn headers() -> &'static [&'static str] {
        &["NAME", "IMAGE REFERENCE", "UPDATED"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.image
                .as_ref()
                .map(|i| i.docker_image_reference.clone())
                .unwrap_or_default(),
            ago(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["IMAGE", "GENERATION"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.image
                .as_ref()
                .map(|i| i.metadata.name.clone())
                .unwrap_or_default(),
            self.generation.to_string(),
        ]
    }
}

impl Printable for ImageStreamImage {
    object_identity!("imagestreamimage");
    fn headers() -> &'static [&'static str] {
        &["NAME", "IMAGE REFERENCE", "CREATED"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.image.docker_image_reference.clone(),
            ago(self.image.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["MEDIA TYPE", "LAYERS"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.image.docker_image_manifest_media_type.clone(),
            self.image.docker_image_layers.len().to_string(),
        ]
    }
}

// --- create, delete

#[derive(Debug, clap::Args)]
pub struct CreateImageStreamArgs {
    pub name: String,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Let the stream's tags be used by their short names (`spec.lookupPolicy.local`).
    #[arg(long)]
    pub lookup_local: bool,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn create(args: CreateImageStreamArgs, session: &Session) -> anyhow::Result<()> {
    let ns = session.namespace(args.namespace.as_deref())?;
    let request = ImageStreamRequest {
        metadata: NameMeta::named(&args.name),
        spec: ImageStreamSpecRequest {
            lookup_policy: Some(LookupPolicyRequest {
                local: Some(args.lookup_local),
            }),
        },
    };
    let stream = session.client()?.create_image_stream(&ns, &request).await?;
    print_created(&stream, args.output.as_ref())
}

// --- describe

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// What to describe: is (imagestream), or is/NAME.
    pub resource: String,
    pub name: Option<String>,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

pub async fn describe(args: DescribeArgs, globals: &Globals) -> anyhow::Result<()> {
    let (kind, inline) = match args.resource.split_once('/') {
        Some((kind, name)) => (kind, Some(name.to_owned())),
        None => (args.resource.as_str(), None),
    };
    if !matches!(
        kind.to_ascii_lowercase().as_str(),
        "is" | "imagestream" | "imagestreams"
    ) {
        bail!("berth describe knows image streams only: berth describe is NAME");
    }
    let Some(name) = inline.or(args.name) else {
        bail!("which image stream? berth describe is NAME");
    };
    let session = Session::load(globals)?;
    let ns = session.namespace(args.namespace.as_deref())?;
    let stream = session.client()?.get_image_stream(&ns, &name).await?;
    print!("{}", describe_stream(&stream, OffsetDateTime::now_utc()));
    Ok(())
}

/// `oc describe is` for berth: the stream, then every tag with its spec,
/// its history (newest first, `*` the current one: when, by whom, from
/// where, why) and its conditions.
pub fn describe_stream(stream: &ImageStream, now: OffsetDateTime) -> String {
    let mut out = String::new();
    let when = |at: &str| {
        let exact = OffsetDateTime::parse(at, &Rfc3339)
            .map(|_| format!(" ({at})"))
            .unwrap_or_default();
        format!("{}{exact}", ago(Some(at), now))
    };
    let field = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "{:<18}{value}", format!("{label}:"));
    };
    field(&mut out, "Name", &stream.metadata.name);
    field(
        &mut out,
        "Namespace",
        stream.metadata.namespace.as_deref().unwrap_or(""),
    );
    if let Some(created) = &stream.metadata.creation_timestamp {
        field(&mut out, "Created", &when(created));
    }
    field(
        &mut out,
        "Generation",
        &stream
            .generation()
            .map(|g| g.to_string())
            .unwrap_or_default(),
    );
    field(
        &mut out,
        "Image Repository",
        &stream.status.docker_image_repository,
    );
    field(
        &mut out,
        "Image Lookup",
        &format!("local={}", stream.spec.lookup_policy.local),
    );
    let mut images: Vec<&str> = stream
        .status
        .tags
        .iter()
        .flat_map(|t| t.items.iter().map(|i| i.image.as_str()))
        .collect();
    images.sort_unstable();
    images.dedup();
    field(&mut out, "Unique Images", &images.len().to_string());
    let mut tags: Vec<&str> = stream
        .status
        .tags
        .iter()
        .map(|t| t.tag.as_str())
        .chain(stream.spec.tags.iter().map(|t| t.name.as_str()))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    field(&mut out, "Tags", &tags.len().to_string());
    for tag in tags {
        let _ = writeln!(out);
        let _ = writeln!(out, "{tag}");
        if let Some(spec) = stream.spec.tags.iter().find(|s| s.name == tag) {
            if let Some(from) = &spec.from {
                let source = match &from.namespace {
                    Some(ns) if from.kind != "DockerImage" => format!("{ns}/{}", from.name),
                    _ => from.name.clone(),
                };
                let _ = writeln!(out, "  tagged from {source} ({})", from.kind);
            }
            if spec.reference_policy.policy_type == "Local" {
                let _ = writeln!(
                    out,
                    "    prefer registry pullthrough when referencing this tag"
                );
            }
            if spec.import_policy.scheduled {
                let _ = writeln!(out, "    updates automatically from registry");
            }
            if spec.import_policy.insecure {
                let _ = writeln!(out, "    will use insecure HTTPS or HTTP connections");
            }
        }
        let Some(status) = stream.status.tags.iter().find(|t| t.tag == tag) else {
            let _ = writeln!(out, "  no image yet");
            continue;
        };
        let _ = writeln!(out);
        for (i, item) in status.items.iter().enumerate() {
            let mark = if i == 0 { "*" } else { " " };
            let _ = writeln!(out, "  {mark} {}", item.docker_image_reference);
            let mut how = format!("      {}", when(&item.created));
            if let Some(by) = &item.created_by {
                let _ = write!(how, " by {by}");
            }
            if let Some(address) = &item.client_address {
                let _ = write!(how, " from {address}");
            }
            let cause = item.cause.as_deref().unwrap_or("Push").to_ascii_lowercase();
            match &item.source {
                Some(source) => {
                    let _ = write!(
                        how,
                        " ({cause} of {source}, generation {})",
                        item.generation
                    );
                }
                None => {
                    let _ = write!(how, " ({cause}, generation {})", item.generation);
                }
            }
            let _ = writeln!(out, "{how}");
            if let Some(blobs) = &item.blobs_stored {
                let _ = if blobs.stored == blobs.total {
                    writeln!(out, "      blobs: all {} stored in berth", blobs.total)
                } else {
                    writeln!(
                        out,
                        "      blobs: {} of {} stored in berth (the others are fetched from the upstream when pulled)",
                        blobs.stored, blobs.total
                    )
                };
            }
        }
        for condition in &status.conditions {
            let _ = writeln!(
                out,
                "  ! {} {}: {} {}",
                condition.condition_type,
                condition.status,
                condition.reason.as_deref().unwrap_or(""),
                condition.message.as_deref().unwrap_or("")
            );
        }
    }
    out
}

// --- tag

#[derive(Debug, clap::Args)]
#[command(after_help = "\
SOURCE is an image stream tag (NAME:TAG or PROJECT/NAME:TAG), an image of a \
stream (NAME@sha256:… or PROJECT/NAME@sha256:…), or with --source=docker an \
image of another registry (REGISTRY/REPOSITORY[:TAG|@DIGEST]), recorded for \
import. Each DEST is NAME:TAG or PROJECT/NAME:TAG; its stream is made if \
needed. Tagging an earlier image of a tag (PROJECT/NAME@sha256:… NAME:TAG) \
rolls the tag back, as a new revision.

Examples:
  berth tag app:1.0 app:stable
  berth tag myproj/app@sha256:… app:latest
  berth tag app:latest app:current --alias
  berth tag --source=docker quay.io/org/img:1.0 img:1.0 --scheduled --reference-policy local
  berth tag app:1.0 app:preview --expires-after 2w")]
pub struct TagArgs {
    pub source: String,
    #[arg(required = true)]
    pub destinations: Vec<String>,
    /// The project of names without one (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Follow SOURCE (a tag of the same stream) from now on instead of
    /// taking its image once.
    #[arg(long)]
    pub alias: bool,
    /// What SOURCE is: imagestreamtag (istag), imagestreamimage (isimage)
    /// or docker; by default, a stream tag or image by its form.
    #[arg(long = "source", value_name = "KIND")]
    pub source_kind: Option<String>,
    /// Whether pulls are pointed at the source (source) or served by berth
    /// (local).
    #[arg(long, value_name = "source|local", default_value = "source")]
    pub reference_policy: String,
    /// Re-import the source periodically (--source=docker).
    #[arg(long)]
    pub scheduled: bool,
    /// The source registry may use plain HTTP or unverified TLS.
    #[arg(long)]
    pub insecure: bool,
    /// Legacy (one platform) or PreserveOriginal (the whole index).
    #[arg(
        long,
        value_name = "Legacy|PreserveOriginal",
        default_value = "PreserveOriginal"
    )]
    pub import_mode: String,
    /// Reference the source without importing it.
    #[arg(long)]
    pub reference: bool,
    /// The tag expires this long from now (30s, 12h, 2d, 2w), whatever the
    /// image's quay.expires-after label or the configured default say.
    #[arg(long, value_name = "DURATION")]
    pub expires_after: Option<String>,
}

/// `PROJECT/NAME…` as (project, rest); a name without `/` is in `default`.
fn split_project<'a>(text: &'a str, default: &'a str) -> (&'a str, &'a str) {
    match text.split_once('/') {
        Some((ns, rest)) => (ns, rest),
        None => (default, text),
    }
}

/// What SOURCE names, as the API takes it.
pub fn source_reference(
    source: &str,
    kind: Option<&str>,
    default_namespace: &str,
) -> anyhow::Result<ObjectReference> {
    let kind = kind.map(str::to_ascii_lowercase);
    if matches!(kind.as_deref(), Some("docker" | "dockerimage")) {
        return Ok(ObjectReference {
            kind: "DockerImage".into(),
            name: source.to_owned(),
            namespace: None,
        });
    }
    let (ns, name) = split_project(source, default_namespace);
    let by_form = if name.contains('@') {
        "ImageStreamImage"
    } else if name.contains(':') {
        "ImageStreamTag"
    } else {
        bail!(
            "{source:?} names no tag or image: write NAME:TAG, NAME@sha256:…, or an image of \
             another registry with --source=docker"
        );
    };
    let kind = match kind.as_deref() {
        None => by_form,
        Some("istag" | "imagestreamtag") if by_form == "ImageStreamTag" => by_form,
        Some("isimage" | "imagestreamimage") if by_form == "ImageStreamImage" => by_form,
        Some(other @ ("istag" | "imagestreamtag" | "isimage" | "imagestreamimage")) => {
            bail!("{source:?} is not an {other}")
        }
        Some(other) => bail!(
            "--source {other:?} is unknown: imagestreamtag (istag), imagestreamimage (isimage) \
             or docker"
        ),
    };
    Ok(ObjectReference {
        kind: kind.into(),
        name: name.to_owned(),
        namespace: Some(ns.to_owned()),
    })
}

pub async fn tag(args: TagArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    let default_ns = session.namespace(args.namespace.as_deref())?;
    let from = source_reference(&args.source, args.source_kind.as_deref(), &default_ns)?;
    if let Some(text) = &args.expires_after {
        // Said here, before anything is sent; the server checks it too.
        crate::duration_text::parse(text).map_err(|e| anyhow::anyhow!("--expires-after: {e}"))?;
    }
    let request = ImageStreamTagRequest {
        tag: Some(TagReferenceRequest {
            from: Some(from),
            reference: args.reference,
            reference_policy: Some(TagReferencePolicy {
                policy_type: capitalized(&args.reference_policy),
            }),
            import_policy: Some(TagImportPolicy {
                insecure: args.insecure,
                scheduled: args.scheduled,
                import_mode: Some(args.import_mode.clone()),
            }),
        }),
        alias: args.alias,
        expires_after: args.expires_after.clone(),
    };
    let client = session.client()?;
    for destination in &args.destinations {
        let (ns, name) = split_project(destination, &default_ns);
        if !name.contains(':') || name.contains('@') {
            bail!("{destination:?}: a destination is NAME:TAG or PROJECT/NAME:TAG");
        }
        let tagged = client.set_image_stream_tag(ns, name, &request).await?;
        let expiry = tagged
            .expires
            .as_deref()
            .map(|at| format!(" It expires at {at}."))
            .unwrap_or_default();
        match &tagged.image {
            Some(image) => println!(
                "Tag {name} set to {}.{expiry}",
                short_source(&args.source, &image.metadata.name)
            ),
            None => println!("Tag {name} set to import {}.", args.source),
        }
    }
    Ok(())
}

/// `Source`/`Local` from `source`/`local`; the server checks the value.
pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// What `oc tag` prints as the new target: the source, with the image it
/// resolved to when the source was a tag.
fn short_source(source: &str, digest: &str) -> String {
    if source.contains('@') {
        source.to_owned()
    } else {
        format!("{source} ({digest})")
    }
}

// --- rollback

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// istag (imagestreamtag), or istag/NAME:TAG.
    pub resource: String,
    /// NAME:TAG.
    pub name: Option<String>,
    /// The revision (generation, as `berth describe is` shows it) whose
    /// image the tag gets back.
    #[arg(long, value_name = "N")]
    pub to_generation: i64,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

pub async fn rollback(args: RollbackArgs, globals: &Globals) -> anyhow::Result<()> {
    let (kind, inline) = match args.resource.split_once('/') {
        Some((kind, name)) => (kind, Some(name.to_owned())),
        None => (args.resource.as_str(), None),
    };
    if !matches!(
        kind.to_ascii_lowercase().as_str(),
        "istag" | "imagestreamtag" | "imagestreamtags"
    ) {
        bail!(
            "berth rollback rolls back image stream tags: berth rollback istag NAME:TAG --to-generation N"
        );
    }
    let Some(name) = inline.or(args.name) else {
        bail!("which tag? berth rollback istag NAME:TAG --to-generation N");
    };
    let session = Session::load(globals)?;
    let ns = session.namespace(args.namespace.as_deref())?;
    let tag = session
        .client()?
        .rollback_image_stream_tag(&ns, &name, args.to_generation)
        .await?;
    let image = tag
        .image
        .as_ref()
        .map(|i| i.metadata.name.clone())
        .unwrap_or_default();
    println!(
        "Rolled back {name} to generation {} ({image}); it is now generation {}.",
        args.to_generation, tag.generation
    );
    Ok(())
}

// --- set image-lookup

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    #[command(subcommand)]
    pub what: SetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SetCommand {
    /// Let image streams' tags be used by their short names
    /// (`spec.lookupPolicy.local`).
    ImageLookup(ImageLookupArgs),
    /// Make the tags matching patterns immutable in a namespace or one of
    /// its repositories: never moved to another image nor deleted once
    /// pushed.
    #[command(after_help = "\
Patterns are globs over tag names: '*' is any characters, '?' one. Setting \
patterns replaces the policy's; a tag they cover loses any expiry. Setting \
and clearing take the admin role in the namespace.

Examples:
  berth set immutable-tags myproj 'v*' 'release-?'
  berth set immutable-tags myproj/app 'stable'
  berth set immutable-tags myproj --list
  berth set immutable-tags myproj/app --clear")]
    ImmutableTags(ImmutableTagsArgs),
    /// Set a project's quota (cluster admins): most bytes, repositories
    /// and tags; pushes past it are refused.
    Quota(super::quotas::QuotaArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImmutableTagsArgs {
    /// NS, or NS/REPO for one repository of it.
    pub scope: String,
    /// Tag patterns (replace the policy's).
    pub patterns: Vec<String>,
    /// Show the namespace's policies (its own and its repositories').
    #[arg(long, conflicts_with_all = ["patterns", "clear"])]
    pub list: bool,
    /// Remove the policy of NS or NS/REPO.
    #[arg(long, conflicts_with = "patterns")]
    pub clear: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImageLookupArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// false turns local lookup off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
}

pub async fn set(args: SetArgs, globals: &Globals) -> anyhow::Result<()> {
    let args = match args.what {
        SetCommand::ImageLookup(args) => args,
        SetCommand::ImmutableTags(args) => return immutable_tags(args, globals).await,
        SetCommand::Quota(args) => return super::quotas::set_quota(args, globals).await,
    };
    let session = Session::load(globals)?;
    let ns = session.namespace(args.namespace.as_deref())?;
    let client = session.client()?;
    for name in &args.names {
        let name = name.strip_prefix("is/").unwrap_or(name);
        client.set_image_lookup(&ns, name, args.enabled).await?;
        println!("imagestream.image.openshift.io/{name} image lookup updated");
    }
    Ok(())
}

async fn immutable_tags(args: ImmutableTagsArgs, globals: &Globals) -> anyhow::Result<()> {
    let (namespace, repository) = match args.scope.split_once('/') {
        Some((ns, repo)) => (ns, Some(repo)),
        None => (args.scope.as_str(), None),
    };
    if namespace.is_empty() || repository.is_some_and(str::is_empty) {
        bail!("{:?}: write NS or NS/REPO", args.scope);
    }
    let session = Session::load(globals)?;
    let client = session.client()?;
    if args.list {
        let policies = client.immutable_tag_policies(namespace).await?;
        if policies.items.is_empty() {
            println!("No immutable-tags policy in {namespace}.");
        }
        for policy in policies.items {
            println!(
                "{}\t{}",
                policy.metadata.name,
                policy.spec.patterns.join(" ")
            );
        }
        return Ok(());
    }
    if args.clear {
        client
            .clear_immutable_tag_policy(namespace, repository)
            .await?;
        println!("Immutable-tags policy of {} cleared.", args.scope);
        return Ok(());
    }
    if args.patterns.is_empty() {
        bail!(
            "which tags? berth set immutable-tags {} 'v*' … (or --list, --clear)",
            args.scope
        );
    }
    let request = ImmutableTagPolicyRequest {
        repository: repository.map(str::to_owned),
        patterns: args.patterns.clone(),
    };
    let policy = client.set_immutable_tag_policy(namespace, &request).await?;
    println!(
        "Tags of {} matching {} are immutable.",
        policy.metadata.name,
        policy.spec.patterns.join(" ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_form_and_flag() {
        let istag = source_reference("app:1.0", None, "p").unwrap();
        assert_eq!(
            (
                istag.kind.as_str(),
                istag.name.as_str(),
                istag.namespace.as_deref()
            ),
            ("ImageStreamTag", "app:1.0", Some("p"))
        );
        let isimage = source_reference("other/app@sha256:ab", None, "p").unwrap();
        assert_eq!(
            (isimage.kind.as_str(), isimage.namespace.as_deref()),
            ("ImageStreamImage", Some("other"))
        );
        let docker = source_reference("quay.io/org/img:1", Some("docker"), "p").unwrap();
        assert_eq!(
            (docker.kind.as_str(), docker.namespace),
            ("DockerImage", None)
        );
        assert!(source_reference("app", None, "p").is_err());
        assert!(source_reference("app:1", Some("isimage"), "p").is_err());
        assert!(source_reference("app:1", Some("git"), "p").is_err());
        assert_eq!(capitalized("local"), "Local");
        assert_eq!(capitalized("SOURCE"), "Source");
    }
}
