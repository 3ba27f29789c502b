//! `berth import-image`: import images of other registries into an image
//! stream, as `oc import-image` does.

use anyhow::bail;
use time::OffsetDateTime;

use super::AlreadyReported;
use super::client::{ClientError, ObjectReference, TagImportPolicy, TagReferencePolicy};
use super::image_streams::{capitalized, describe_stream};
use super::output::{OutputFormat, write_structured};
use super::session::{Globals, Session};
use crate::wire::{
    ImageImportSpec, ImageImportStatus, ImageStream, ImageStreamImport, ImageStreamImportSpec,
    LocalObjectReference, NameMeta, RepositoryImportSpec,
};

#[derive(Debug, clap::Args)]
pub struct ImportImageArgs {
    /// The stream, and the tag to import into (default: latest).
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
    /// The upstream image, REGISTRY/REPO[:TAG|@DIGEST] (with --all,
    /// REGISTRY/REPO). Without it, the stream's tags are imported again
    /// from where they were imported.
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<String>,
    /// Create the stream if it does not exist.
    #[arg(long)]
    pub confirm: bool,
    /// Import every tag of the upstream repository (up to the server's cap,
    /// the newest first).
    #[arg(long)]
    pub all: bool,
    /// Check the upstream periodically and import what changed.
    #[arg(long)]
    pub scheduled: bool,
    /// The upstream may use plain HTTP or an unverified certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Whether pulls are pointed at the upstream (source) or served by
    /// berth (local).
    #[arg(long, value_name = "source|local", default_value = "source")]
    pub reference_policy: String,
    /// PreserveOriginal (a multi-arch index whole) or Legacy (one platform,
    /// linux/amd64).
    #[arg(
        long,
        value_name = "Legacy|PreserveOriginal",
        default_value = "PreserveOriginal"
    )]
    pub import_mode: String,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// json or yaml: the whole ImageStreamImport answer.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

impl ImportImageArgs {
    fn import_policy(&self) -> TagImportPolicy {
        TagImportPolicy {
            insecure: self.insecure,
            scheduled: self.scheduled,
            import_mode: Some(self.import_mode.clone()),
        }
    }

    fn reference_policy(&self) -> TagReferencePolicy {
        TagReferencePolicy {
            policy_type: capitalized(&self.reference_policy),
        }
    }
}

fn docker_image(name: &str) -> ObjectReference {
    ObjectReference {
        kind: "DockerImage".into(),
        name: name.to_owned(),
        namespace: None,
    }
}

pub async fn import_image(args: ImportImageArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    let ns = session.namespace(args.namespace.as_deref())?;
    let client = session.client()?;
    let (stream_name, tag) = match args.name.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (args.name.as_str(), None),
    };
    if args.all && tag.is_some() {
        bail!("--all imports every tag: name the stream without a tag");
    }
    let existing = match client.get_image_stream(&ns, stream_name).await {
        Ok(stream) => Some(stream),
        Err(ClientError::Api { code: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let spec = match (&args.from, &existing) {
        (Some(from), _) if args.all => ImageStreamImportSpec {
            import: true,
            images: Vec::new(),
            repository: Some(RepositoryImportSpec {
                from: docker_image(from),
                import_policy: args.import_policy(),
                reference_policy: args.reference_policy(),
            }),
        },
        (Some(from), _) => ImageStreamImportSpec {
            import: true,
            images: vec![ImageImportSpec {
                from: docker_image(from),
                to: Some(LocalObjectReference {
                    name: tag.unwrap_or("latest").to_owned(),
                }),
                import_policy: args.import_policy(),
                reference_policy: args.reference_policy(),
            }],
            repository: None,
        },
        (None, Some(stream)) => again(stream, tag)?,
        (None, None) => bail!(
            "no image stream named \"{stream_name}\" exists in project \"{ns}\": give --from \
             and --confirm to create it and import"
        ),
    };
    if existing.is_none() && !args.confirm {
        bail!(
            "no image stream named \"{stream_name}\" exists in project \"{ns}\": pass --confirm \
             to create it and import"
        );
    }
    let request = ImageStreamImport {
        metadata: NameMeta::named(stream_name),
        spec,
        ..ImageStreamImport::default()
    };
    let answer = client.import_image(&ns, &request).await?;
    if let Some(format) = &args.output {
        write_structured(&mut std::io::stdout(), format, &answer)?;
        return if failures(&answer).is_empty() {
            Ok(())
        } else {
            Err(AlreadyReported.into())
        };
    }
    report(&answer, stream_name)
}

/// The stream's own imported tags again (all of them, or `tag`), each
/// from where its spec tag says.
fn again(stream: &ImageStream, tag: Option<&str>) -> anyhow::Result<ImageStreamImportSpec> {
    let images: Vec<ImageImportSpec> = stream
        .spec
        .tags
        .iter()
        .filter(|t| tag.is_none_or(|wanted| t.name == wanted))
        .filter_map(|t| {
            let from = t.from.as_ref().filter(|f| f.kind == "DockerImage")?;
            Some(ImageImportSpec {
                from: docker_image(&from.name),
                to: Some(LocalObjectReference {
                    name: t.name.clone(),
                }),
                import_policy: t.import_policy.clone(),
                reference_policy: t.reference_policy.clone(),
            })
        })
        .collect();
    if images.is_empty() {
        match tag {
            Some(tag) => bail!(
                "tag {tag} of image stream \"{}\" is not imported from another registry: give \
                 --from",
                stream.metadata.name
            ),
            None => bail!(
                "image stream \"{}\" has no tags imported from another registry: give --from",
                stream.metadata.name
            ),
        }
    }
    Ok(ImageStreamImportSpec {
        import: true,
        images,
        repository: None,
    })
}

fn failures(answer: &ImageStreamImport) -> Vec<&ImageImportStatus> {
    let Some(status) = &answer.status else {
        return Vec::new();
    };
    status
        .images
        .iter()
        .chain(status.repository.iter().flat_map(|r| r.images.iter()))
        .filter(|i| i.status.status != "Success")
        .collect()
}

/// As `oc import-image`: what happened, then the stream described.
fn report(answer: &ImageStreamImport, name: &str) -> anyhow::Result<()> {
    let Some(status) = &answer.status else {
        bail!("the server's answer has no status");
    };
    let failed = failures(answer);
    let mut listing_failed = false;
    if let Some(repository) = &status.repository {
        if repository.status.status != "Success" {
            listing_failed = true;
            eprintln!(
                "error: the tags of the upstream repository could not be listed: {}",
                repository
                    .status
                    .message
                    .as_deref()
                    .unwrap_or("no reason given")
            );
        }
        if !repository.additional_tags.is_empty() {
            let imported = repository.images.len();
            let total = imported + repository.additional_tags.len();
            println!(
                "info: the upstream repository has {total} tags; the newest {imported} were \
                 imported (the server imports at most {imported} at once: \
                 imagePolicy.maxImagesBulkImportedPerRepository); left out: {}",
                repository.additional_tags.join(", ")
            );
        }
    }
    if failed.is_empty() && !listing_failed {
        println!("imagestream.image.openshift.io/{name} imported");
    } else {
        println!("imagestream.image.openshift.io/{name} imported with errors");
    }
    if let Some(stream) = &status.stream {
        println!();
        print!("{}", describe_stream(stream, OffsetDateTime::now_utc()));
    }
    for failure in &failed {
        eprintln!(
            "error: tag {} failed: {}",
            failure.tag,
            failure
                .status
                .message
                .as_deref()
                .unwrap_or("no reason given")
        );
    }
    if failed.is_empty() && !listing_failed {
        Ok(())
    } else {
        Err(AlreadyReported.into())
    }
}
