//! `/api/v1/…/imagestreams`, `…/imagestreamtags` and `…/imagestreamimages`:
//! image streams with OpenShift's `image.openshift.io/v1` shapes.
//!
//! Stream names may hold `/` (`team/app` in `ns/team/app`): in a path
//! they are one segment, the slash written `%2F`.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError, rfc3339};
use crate::api::AppState;
use crate::domain::image_streams::{
    DOCKER_IMAGE, IMAGE_STREAM_IMAGE, IMAGE_STREAM_TAG, ImageDescription, StreamError, TagRequest,
    Tagged, repository_of, split_stream_image, split_stream_tag,
};
use crate::domain::imports::{
    ImageImport, ImportFailure, ImportPolicy, ImportRequest, RepositoryImport, TagImport,
};
use crate::error::RegistryError;
use crate::metadata::image_streams::{
    Revision, RevisionCause, RevisionOrigin, SpecTag, StoredStream, TagCondition, TagSource,
};
use crate::oci::names::RepositoryName;
use crate::wire::{
    self, Extra, IMAGE_API_VERSION, ImageStreamRequest, ImageStreamTagRequest, List,
    LookupPolicyRequest, NameMeta, ObjectMeta, RollbackRequest, Status,
};

impl From<StreamError> for AdminError {
    fn from(e: StreamError) -> AdminError {
        match e {
            StreamError::NotFound(m) => AdminError::NotFound(m),
            StreamError::AlreadyExists(m) => AdminError::AlreadyExists(m),
            StreamError::Invalid(m) => AdminError::Invalid(m),
            // The message names the tag, the policy and its pattern.
            StreamError::Immutable(refusal) => AdminError::Forbidden(refusal.to_string()),
            // The message names the quota and the usage.
            StreamError::Registry(RegistryError::QuotaExceeded(refusal)) => {
                AdminError::Forbidden(refusal.to_string())
            }
            StreamError::Metadata(e) => AdminError::Store(e),
            StreamError::Storage(e) => AdminError::Internal(e.to_string()),
            StreamError::Registry(e) => AdminError::Internal(e.to_string()),
        }
    }
}

/// The client's address, for the history of the tags it moves.
pub(super) struct ClientAddress(Option<String>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AdminError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddress(
            app.access
                .client_address(&parts.headers, peer)
                .map(|a| a.to_string()),
        ))
    }
}

/// Where this registry's streams are pulled from: `HOST[:PORT]` as the
/// request reached it (or the configured public URL), and whether that is
/// the configured public one.
fn registry_host(app: &AppState, headers: &HeaderMap) -> (String, bool) {
    let base = app.base_url(headers);
    let host = base
        .split_once("://")
        .map_or(base.as_str(), |(_, host)| host)
        .to_owned();
    (host, app.public_url.is_some())
}

fn stream_name(repo: &RepositoryName) -> &str {
    repo.as_str()
        .split_once('/')
        .map_or(repo.as_str(), |(_, name)| name)
}

fn origin(
    caller: &crate::auth::Caller,
    address: ClientAddress,
    cause: RevisionCause,
) -> RevisionOrigin {
    RevisionOrigin {
        cause,
        by: Some(caller.principal.name()),
        address: address.0,
        source: None,
    }
}

fn tag_event(revision: &Revision, repo: &RepositoryName, host: &str) -> wire::TagEvent {
    wire::TagEvent {
        created: rfc3339(revision.created_at),
        docker_image_reference: revision
            .docker_image_reference
            .clone()
            .unwrap_or_else(|| format!("{host}/{repo}@{}", revision.digest)),
        image: revision.digest.to_string(),
        generation: revision.generation,
        created_by: revision.origin.by.clone(),
        client_address: revision.origin.address.clone(),
        cause: Some(revision.origin.cause.as_str().to_owned()),
        source: revision.origin.source.clone(),
        blobs_stored: None,
    }
}

fn condition(c: &TagCondition) -> wire::TagEventCondition {
    wire::TagEventCondition {
        condition_type: c.condition_type.clone(),
        status: c.status.clone(),
        last_transition_time: Some(rfc3339(c.last_transition_at)),
        reason: c.reason.clone(),
        message: c.message.clone(),
        generation: c.generation,
    }
}

fn tag_reference(spec: &SpecTag) -> wire::TagReference {
    wire::TagReference {
        name: spec.name.clone(),
        from: spec.from.as_ref().map(|f| wire::ObjectReference {
            kind: f.kind.clone(),
            name: f.name.clone(),
            namespace: f.namespace.clone(),
        }),
        reference: spec.reference,
        generation: Some(spec.generation),
        import_policy: wire::TagImportPolicy {
            insecure: spec.import_insecure,
            scheduled: spec.import_scheduled,
            import_mode: Some(spec.import_mode.clone()),
        },
        reference_policy: wire::TagReferencePolicy {
            policy_type: spec.reference_policy.clone(),
        },
        extra: Extra::new(),
    }
}

fn stream_meta(stream: &StoredStream, name: String) -> ObjectMeta {
    let mut extra = Extra::new();
    extra.insert("generation".into(), json!(stream.generation));
    ObjectMeta {
        name,
        namespace: Some(stream.repository.namespace().to_owned()),
        uid: Some(stream.uid.clone()),
        creation_timestamp: Some(rfc3339(stream.created_at)),
        annotations: Default::default(),
        extra,
    }
}

fn image_stream(stream: &StoredStream, host: &str, public: bool) -> wire::ImageStream {
    let repo = &stream.repository;
    // An expired tag is gone from the status (its history stays, for the
    // pruner and for a rollback).
    let tags: BTreeSet<&str> = stream
        .history
        .iter()
        .map(|r| r.tag.as_str())
        .chain(stream.conditions.iter().map(|c| c.tag.as_str()))
        .filter(|tag| !stream.is_gone(tag))
        .collect();
    let status_tags = tags
        .into_iter()
        .map(|tag| wire::NamedTagEventList {
            tag: tag.to_owned(),
            expires: stream.expiry_of(tag).map(rfc3339),
            items: stream
                .history_of(tag)
                .map(|r| tag_event(r, repo, host))
                .collect(),
            conditions: stream
                .conditions
                .iter()
                .filter(|c| c.tag == tag)
                .map(condition)
                .collect(),
        })
        .collect();
    let repository = format!("{host}/{repo}");
    wire::ImageStream {
        api_version: IMAGE_API_VERSION.into(),
        kind: "ImageStream".into(),
        metadata: stream_meta(stream, stream_name(repo).to_owned()),
        spec: wire::ImageStreamSpec {
            lookup_policy: wire::ImageLookupPolicy {
                local: stream.lookup_local,
            },
            tags: stream
                .spec_tags
                .iter()
                .filter(|spec| !stream.is_gone(&spec.name))
                .map(tag_reference)
                .collect(),
            extra: Extra::new(),
        },
        status: wire::ImageStreamStatus {
            public_docker_image_repository: public.then(|| repository.clone()),
            docker_image_repository: repository,
            tags: status_tags,
            extra: Extra::new(),
        },
        extra: Extra::new(),
    }
}

fn image(description: &ImageDescription, reference: String) -> wire::Image {
    let mut metadata = ObjectMeta::named(description.digest.as_str());
    metadata.creation_timestamp = description.created.clone();
    wire::Image {
        api_version: IMAGE_API_VERSION.into(),
        kind: "Image".into(),
        metadata,
        docker_image_reference: reference,
        docker_image_manifest_media_type: description.media_type.clone(),
        docker_image_metadata: description.config.as_ref().map(|config| {
            wire::DockerImageMetadata {
                kind: "DockerImage".into(),
                api_version: "image.openshift.io/1.0".into(),
                id: config.digest.clone(),
                created: description.created.clone(),
                os: description.os.clone(),
                architecture: description.architecture.clone(),
                variant: description.variant.clone(),
                size: description.size(),
                config: wire::DockerImageConfig {
                    labels: description.labels.clone(),
                },
            }
        }),
        docker_image_metadata_version: description.config.as_ref().map(|_| "1.0".to_owned()),
        docker_image_layers: description
            .layers
            .iter()
            .map(|l| wire::ImageLayer {
                name: l.digest.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect(),
        docker_image_manifests: description
            .manifests
            .iter()
            .map(|m| wire::ImageManifest {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                manifest_size: m.size,
                os: m.os.clone(),
                architecture: m.architecture.clone(),
                variant: m.variant.clone(),
            })
            .collect(),
        extra: Extra::new(),
    }
}

fn image_stream_tag(
    stream: &StoredStream,
    tag: &str,
    description: Option<&ImageDescription>,
    host: &str,
) -> wire::ImageStreamTag {
    let repo = &stream.repository;
    let newest = stream.current_of(tag);
    let reference = newest.map(|r| tag_event(r, repo, host).docker_image_reference);
    let mut metadata = stream_meta(stream, format!("{}:{tag}", stream_name(repo)));
    metadata.extra.remove("generation");
    if let Some(newest) = newest {
        metadata.creation_timestamp = Some(rfc3339(newest.created_at));
    }
    wire::ImageStreamTag {
        api_version: IMAGE_API_VERSION.into(),
        kind: "ImageStreamTag".into(),
        metadata,
        tag: stream.spec_tag(tag).map(tag_reference),
        generation: newest.map_or(stream.generation, |r| r.generation),
        lookup_policy: wire::ImageLookupPolicy {
            local: stream.lookup_local,
        },
        conditions: stream
            .conditions
            .iter()
            .filter(|c| c.tag == tag)
            .map(condition)
            .collect(),
        image: description.zip(reference).map(|(d, r)| image(d, r)),
        expires: stream.expiry_of(tag).map(rfc3339),
        extra: Extra::new(),
    }
}

// --- image streams

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_view_streams(&ns)
        .await?;
    let (host, public) = registry_host(&app, &headers);
    let streams = app.image_streams.list(Some(&ns)).await?;
    let items = streams
        .iter()
        .map(|s| image_stream(s, &host, public))
        .collect();
    Ok(Json(stream_list(items)).into_response())
}

fn stream_list(items: Vec<wire::ImageStream>) -> List<wire::ImageStream> {
    let mut list = List::of("ImageStream", items);
    list.api_version = IMAGE_API_VERSION.into();
    list
}

/// `GET /imagestreams`: every namespace's streams the caller may read.
pub(super) async fn list_all(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let visible = Admin::new(&app.access, &caller)
        .namespaces_with_streams_visible()
        .await?;
    let (host, public) = registry_host(&app, &headers);
    let visible: BTreeSet<String> = visible.into_iter().collect();
    let streams = app.image_streams.list(None).await?;
    let items = streams
        .iter()
        .filter(|s| visible.contains(s.repository.namespace()))
        .map(|s| image_stream(s, &host, public))
        .collect();
    Ok(Json(stream_list(items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ImageStreamRequest>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_tag(&ns, "create imagestreams")
        .await?;
    let name = required_name(body.metadata.name)?;
    let repo = repository_of(&ns, &name)?;
    let local = body
        .spec
        .lookup_policy
        .and_then(|l| l.local)
        .unwrap_or(false);
    // A stream is a repository: held to the project's repository quota.
    let quota = app.access.policy().await?.quota(&ns).cloned();
    crate::domain::quotas::admit_repository(
        app.registry.metadata().as_ref(),
        quota.as_ref(),
        &repo,
    )
    .await
    .map_err(StreamError::from)?;
    let stream = app.image_streams.create(&repo, local).await?;
    let (host, public) = registry_host(&app, &headers);
    Ok((
        StatusCode::CREATED,
        Json(image_stream(&stream, &host, public)),
    )
        .into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_view_streams(&ns)
        .await?;
    let repo = existing_stream(&ns, &name)?;
    let stream = app.image_streams.get(&repo).await?;
    let (host, public) = registry_host(&app, &headers);
    let mut answer = image_stream(&stream, &host, public);
    count_stored_blobs(&app, &repo, &mut answer).await?;
    Ok(Json(answer).into_response())
}

/// Says for each revision how many of its image's blobs berth stores.
async fn count_stored_blobs(
    app: &AppState,
    repo: &RepositoryName,
    stream: &mut wire::ImageStream,
) -> Result<(), AdminError> {
    let mut counted: std::collections::HashMap<String, Option<wire::BlobsStored>> =
        std::collections::HashMap::new();
    for tag in stream.status.tags.iter_mut() {
        for item in tag.items.iter_mut() {
            if !counted.contains_key(&item.image) {
                let stored = match item.image.parse::<crate::oci::digest::Digest>() {
                    Ok(digest) => app
                        .registry
                        .blobs_stored(repo, &digest)
                        .await
                        .map_err(|e| AdminError::Internal(e.to_string()))?
                        .map(|(stored, total)| wire::BlobsStored {
                            stored: stored as u64,
                            total: total as u64,
                        }),
                    Err(_) => None,
                };
                counted.insert(item.image.clone(), stored);
            }
            item.blobs_stored = counted.get(&item.image).cloned().flatten();
        }
    }
    Ok(())
}

/// A stream name that cannot exist is one that does not.
fn existing_stream(ns: &str, name: &str) -> Result<RepositoryName, AdminError> {
    repository_of(ns, name)
        .map_err(|_| AdminError::NotFound(format!("imagestreams \"{name}\" not found")))
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_delete_streams(&ns, "delete imagestreams")
        .await?;
    let repo = existing_stream(&ns, &name)?;
    app.image_streams.delete(&repo).await?;
    tracing::info!(stream = %repo, by = %caller.principal.name(), "image stream deleted");
    Ok(Json(Status::deleted("imagestreams", &name)).into_response())
}

pub(super) async fn set_lookup_policy(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LookupPolicyRequest>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_tag(&ns, "update imagestreams")
        .await?;
    let local = body
        .local
        .ok_or_else(|| AdminError::Invalid("local: required".into()))?;
    let repo = existing_stream(&ns, &name)?;
    let stream = app.image_streams.set_lookup_policy(&repo, local).await?;
    let (host, public) = registry_host(&app, &headers);
    Ok(Json(image_stream(&stream, &host, public)).into_response())
}

// --- image stream tags

/// `NAME:TAG` of a path, as the stream's repository and the tag; a name
/// that cannot exist is not found.
/// The ImageStreamTag a read, a tag or a rollback answers with: the tag as
/// it is after the change.
async fn tag_as_it_is_now(
    app: &AppState,
    headers: &HeaderMap,
    repo: &RepositoryName,
    tag: &crate::oci::names::Tag,
) -> Result<wire::ImageStreamTag, AdminError> {
    let (stream, description) = app.image_streams.stream_tag(repo, tag).await?;
    let (host, _) = registry_host(app, headers);
    Ok(image_stream_tag(
        &stream,
        tag.as_str(),
        description.as_ref(),
        &host,
    ))
}

fn stream_tag_of(
    ns: &str,
    name: &str,
) -> Result<(RepositoryName, crate::oci::names::Tag), AdminError> {
    let not_found = || AdminError::NotFound(format!("imagestreamtags \"{name}\" not found"));
    let (stream, tag) = split_stream_tag(name).map_err(|_| not_found())?;
    let repo = repository_of(ns, stream).map_err(|_| not_found())?;
    Ok((repo, tag))
}

pub(super) async fn get_tag(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_view_streams(&ns)
        .await?;
    let (repo, tag) = stream_tag_of(&ns, &name)?;
    Ok(Json(tag_as_it_is_now(&app, &headers, &repo, &tag).await?).into_response())
}

/// `PUT …/imagestreamtags/NAME:TAG`: `berth tag`.
pub(super) async fn put_tag(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
    address: ClientAddress,
    JsonBody(body): JsonBody<ImageStreamTagRequest>,
) -> Result<Response, AdminError> {
    let admin = Admin::new(&app.access, &caller);
    admin.may_tag(&ns, "tag images").await?;
    let (split_name, tag) = split_stream_tag(&name)?;
    let repo = repository_of(&ns, split_name)?;
    let requested = body
        .tag
        .ok_or_else(|| AdminError::Invalid("tag: required".into()))?;
    let from = requested
        .from
        .ok_or_else(|| AdminError::Invalid("tag.from: required".into()))?;
    if from.name.is_empty() {
        return Err(AdminError::Invalid("tag.from.name: required".into()));
    }
    if matches!(from.kind.as_str(), IMAGE_STREAM_TAG | IMAGE_STREAM_IMAGE) {
        let source_ns = from.namespace.as_deref().unwrap_or(&ns);
        if source_ns != ns {
            admin.may_pull_from(source_ns).await?;
        }
    }
    let import_policy = requested.import_policy.unwrap_or_default();
    let request = TagRequest {
        from: TagSource {
            kind: from.kind.clone(),
            namespace: from.namespace.clone(),
            name: from.name.clone(),
        },
        alias: body.alias,
        reference: requested.reference,
        reference_policy: requested
            .reference_policy
            .map(|p| p.policy_type)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "Source".into()),
        import_scheduled: import_policy.scheduled,
        import_insecure: import_policy.insecure,
        import_mode: import_policy
            .import_mode
            .unwrap_or_else(|| "PreserveOriginal".into()),
        expires_after: body
            .expires_after
            .as_deref()
            .map(|text| {
                crate::duration_text::parse(text)
                    .map_err(|e| AdminError::BadRequest(format!("expiresAfter: {e}")))
            })
            .transpose()?,
    };
    // A new tag (and the stream it may make) counts toward the project's
    // quotas, as on a push (the quota from the policy snapshot: no query
    // without one).
    let quota = app.access.policy().await?.quota(&ns).cloned();
    let metadata = app.registry.metadata().as_ref();
    crate::domain::quotas::admit_repository(metadata, quota.as_ref(), &repo)
        .await
        .map_err(StreamError::from)?;
    crate::domain::quotas::admit_tags(metadata, quota.as_ref(), &repo, std::slice::from_ref(&tag))
        .await
        .map_err(StreamError::from)?;
    let tagged = app
        .image_streams
        .tag(
            &repo,
            &tag,
            &request,
            &origin(&caller, address, RevisionCause::Tag),
        )
        .await?;
    tracing::info!(stream = %repo, tag = %tag, from = %from.name, outcome = ?tagged, by = %caller.principal.name(), "image stream tag set");
    let status = match tagged {
        Tagged::Unchanged => StatusCode::OK,
        Tagged::Moved { .. } | Tagged::SpecOnly { .. } => StatusCode::CREATED,
    };
    let answer = tag_as_it_is_now(&app, &headers, &repo, &tag).await?;
    Ok((status, Json(answer)).into_response())
}

pub(super) async fn delete_tag(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_delete_streams(&ns, "delete imagestreamtags")
        .await?;
    let (repo, tag) = stream_tag_of(&ns, &name)?;
    app.image_streams.delete_tag(&repo, tag.as_str()).await?;
    tracing::info!(stream = %repo, tag = %tag, by = %caller.principal.name(), "image stream tag deleted");
    Ok(Json(Status::deleted("imagestreamtags", &name)).into_response())
}

/// `POST …/imagestreamtags/NAME:TAG/rollback`: `berth rollback istag`.
pub(super) async fn rollback(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
    address: ClientAddress,
    JsonBody(body): JsonBody<RollbackRequest>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_tag(&ns, "roll back imagestreamtags")
        .await?;
    let generation = body
        .generation
        .ok_or_else(|| AdminError::Invalid("generation: required".into()))?;
    let (repo, tag) = stream_tag_of(&ns, &name)?;
    let rolled = app
        .image_streams
        .rollback(
            &repo,
            &tag,
            generation,
            &origin(&caller, address, RevisionCause::Rollback),
        )
        .await?;
    tracing::info!(stream = %repo, tag = %tag, generation, outcome = ?rolled, by = %caller.principal.name(), "image stream tag rolled back");
    Ok(Json(tag_as_it_is_now(&app, &headers, &repo, &tag).await?).into_response())
}

// --- image stream images

pub(super) async fn get_image(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_view_streams(&ns)
        .await?;
    let not_found = || AdminError::NotFound(format!("imagestreamimages \"{name}\" not found"));
    let (stream, digest) = split_stream_image(&name).map_err(|_| not_found())?;
    let repo = repository_of(&ns, stream).map_err(|_| not_found())?;
    let description = app.image_streams.image(&repo, &digest).await?;
    let (host, _) = registry_host(&app, &headers);
    let reference = format!("{host}/{repo}@{digest}");
    let mut metadata = ObjectMeta::named(&name);
    metadata.namespace = Some(ns.clone());
    metadata.creation_timestamp = description.created.clone();
    Ok(Json(wire::ImageStreamImage {
        api_version: IMAGE_API_VERSION.into(),
        kind: "ImageStreamImage".into(),
        metadata,
        image: image(&description, reference),
        extra: Extra::new(),
    })
    .into_response())
}

// --- imports

/// `POST …/imagestreamimports`: `berth import-image`.
pub(super) async fn import(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    headers: HeaderMap,
    address: ClientAddress,
    JsonBody(body): JsonBody<wire::ImageStreamImport>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .may_tag(&ns, "create imagestreamimports")
        .await?;
    let name = required_name(body.metadata.name)?;
    let repo = repository_of(&ns, &name)?;
    let spec = body.spec;
    if spec.images.is_empty() && spec.repository.is_none() {
        return Err(AdminError::Invalid(
            "spec: name spec.images or spec.repository to import".into(),
        ));
    }
    let mut images = Vec::with_capacity(spec.images.len());
    for (n, image) in spec.images.iter().enumerate() {
        let from = docker_image(&image.from, &format!("spec.images[{n}].from"))?;
        let tag = image
            .to
            .as_ref()
            .map(|to| to.name.as_str())
            .filter(|name| !name.is_empty())
            .unwrap_or(crate::upstream::reference::DEFAULT_TAG);
        let tag = tag
            .parse()
            .map_err(|e| AdminError::Invalid(format!("spec.images[{n}].to.name: {e}")))?;
        images.push(ImageImport {
            tag,
            from,
            policy: import_policy(&image.import_policy, &image.reference_policy),
        });
    }
    let repository = match &spec.repository {
        Some(repository) => Some(RepositoryImport {
            from: docker_image(&repository.from, "spec.repository.from")?,
            policy: import_policy(&repository.import_policy, &repository.reference_policy),
        }),
        None => None,
    };
    let request = ImportRequest {
        repo: repo.clone(),
        images,
        repository,
        record: spec.import,
    };
    let outcome = app
        .importer
        .import(&request, &origin(&caller, address, RevisionCause::Import))
        .await?;
    let failed = outcome
        .images
        .iter()
        .chain(outcome.repository.iter().flat_map(|r| r.images.iter()))
        .filter(|i| i.result.is_err())
        .count();
    tracing::info!(stream = %repo, record = spec.import, failed, by = %caller.principal.name(), "image stream import");
    let (host, public) = registry_host(&app, &headers);
    // A stream exists unless nothing was recorded (only looking, or an
    // upstream repository whose tags could not be listed).
    let stream = match app.image_streams.get(&repo).await {
        Ok(stream) if spec.import => Some(image_stream(&stream, &host, public)),
        Ok(_) | Err(StreamError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let repository = outcome
        .repository
        .map(|listing| wire::RepositoryImportStatus {
            status: match &listing.failure {
                Some(failure) => failure_status(failure),
                None => success_status(),
            },
            images: listing.images.iter().map(import_status).collect(),
            additional_tags: listing.left_out,
        });
    Ok((
        StatusCode::CREATED,
        Json(wire::ImageStreamImport {
            api_version: IMAGE_API_VERSION.into(),
            kind: "ImageStreamImport".into(),
            metadata: NameMeta::named(&name),
            spec: wire::ImageStreamImportSpec {
                import: spec.import,
                images: spec.images,
                repository: spec.repository,
            },
            status: Some(wire::ImageStreamImportStatus {
                stream,
                images: outcome.images.iter().map(import_status).collect(),
                repository,
            }),
        }),
    )
        .into_response())
}

fn required_name(name: Option<String>) -> Result<String, AdminError> {
    name.ok_or_else(|| AdminError::Invalid("metadata.name: required".into()))
}

/// An import's `from`: a `DockerImage` reference.
fn docker_image(from: &wire::ObjectReference, field: &str) -> Result<String, AdminError> {
    if !from.kind.is_empty() && from.kind != DOCKER_IMAGE {
        return Err(AdminError::Invalid(format!(
            "{field}.kind {:?} is invalid: imports are from DockerImage references",
            from.kind
        )));
    }
    if from.name.is_empty() {
        return Err(AdminError::Invalid(format!("{field}.name: required")));
    }
    Ok(from.name.clone())
}

fn import_policy(
    import: &wire::TagImportPolicy,
    reference: &wire::TagReferencePolicy,
) -> ImportPolicy {
    let defaults = ImportPolicy::default();
    ImportPolicy {
        scheduled: import.scheduled,
        insecure: import.insecure,
        reference_policy: Some(reference.policy_type.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or(defaults.reference_policy),
        import_mode: import
            .import_mode
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or(defaults.import_mode),
        secret: None,
    }
}

fn success_status() -> wire::ImportStatus {
    wire::ImportStatus {
        status: "Success".into(),
        reason: None,
        message: None,
    }
}

fn failure_status(failure: &ImportFailure) -> wire::ImportStatus {
    wire::ImportStatus {
        status: "Failure".into(),
        reason: Some(failure.reason.clone()),
        message: Some(failure.message.clone()),
    }
}

fn import_status(import: &TagImport) -> wire::ImageImportStatus {
    match &import.result {
        Ok(imported) => wire::ImageImportStatus {
            tag: import.tag.as_str().to_owned(),
            status: success_status(),
            image: Some(image(
                &imported.description,
                imported.docker_image_reference.clone(),
            )),
        },
        Err(failure) => wire::ImageImportStatus {
            tag: import.tag.as_str().to_owned(),
            status: failure_status(failure),
            image: None,
        },
    }
}
