//! The JSON shapes of the administration API (`/api/v1`, docs/rest-api.md):
//! objects as OpenShift shapes them (`apiVersion`, `kind`, `metadata`),
//! lists, `Status`, and request bodies. One set of types, written by the
//! server (`api::admin`) and read by the CLI (`cli::client`), so that the two
//! cannot drift apart.
//!
//! Objects keep the fields a reader has no type for (`extra`): the CLI shows
//! with `-o json` what the server sent even when the server is newer. The
//! server never fills `extra`.
//!
//! Request bodies: every field is optional to the parser; the service says
//! which are required (422 Invalid). An optional field that is present must
//! hold a value of its type: `null` is refused ([`present`]), as the OpenAPI
//! document says, rather than taken for "absent".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `apiVersion` of every object.
pub const API_VERSION: &str = "v1";

/// The prefix of a service account's user name.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Fields of an object that the reader has no type for.
pub type Extra = Map<String, Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Empty (and left out) only for what is not kept, such as a dry
    /// run's answer: there is nothing to get by that name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ObjectMeta {
    pub fn named(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.to_owned(),
            ..ObjectMeta::default()
        }
    }
}

/// `{"apiVersion":"v1","kind":"<Kind>List","items":[…]}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl<T> List<T> {
    /// A list of objects of `kind`.
    pub fn of(kind: &str, items: Vec<T>) -> List<T> {
        List {
            api_version: API_VERSION.into(),
            kind: format!("{kind}List"),
            items,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    pub name: String,
    pub kind: String,
}

/// The `Status` object: errors, and the answer to deletions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default)]
    pub code: u16,
}

impl Status {
    pub fn failure(code: u16, reason: &str, message: String) -> Status {
        Status {
            api_version: API_VERSION.into(),
            kind: "Status".into(),
            status: "Failure".into(),
            message,
            reason: Some(reason.to_owned()),
            details: None,
            code,
        }
    }

    /// `200 {"status":"Success"}` after deleting `kind` `name`.
    pub fn deleted(kind: &str, name: &str) -> Status {
        Status {
            api_version: API_VERSION.into(),
            kind: "Status".into(),
            status: "Success".into(),
            message: format!("{kind} \"{name}\" deleted"),
            reason: None,
            details: Some(StatusDetails {
                name: name.to_owned(),
                kind: kind.to_owned(),
            }),
            code: 200,
        }
    }
}

// --- projects

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    #[serde(default)]
    pub phase: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- service accounts

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- tokens

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: TokenSpec,
    /// Holds the secret, only in the answer to a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Token {
    /// The secret, present only in the answer to a create.
    pub fn secret(&self) -> Option<&str> {
        self.status.as_ref()?.token.as_deref()
    }
}

// --- role bindings

/// A user, group or service account in a role binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Subject {
    /// A user; `system:serviceaccount:NS:NAME` is the service account.
    pub fn user(name: &str) -> Subject {
        if let Some((namespace, account)) = name
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        {
            return Subject::service_account(namespace, account);
        }
        Subject::of("User", name, None)
    }

    pub fn group(name: &str) -> Subject {
        Subject::of("Group", name, None)
    }

    pub fn service_account(namespace: &str, name: &str) -> Subject {
        Subject::of("ServiceAccount", name, Some(namespace))
    }

    fn of(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
        Subject {
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default)]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<RoleRef>,
    #[serde(default)]
    pub subjects: Vec<Subject>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl RoleBinding {
    /// `RoleBinding`, or `ClusterRoleBinding` for cluster-wide bindings.
    pub fn kind_for(cluster: bool) -> &'static str {
        if cluster {
            "ClusterRoleBinding"
        } else {
            "RoleBinding"
        }
    }

    /// The bound role: `roleRef.name`, else the binding's name.
    pub fn role(&self) -> &str {
        self.role_ref
            .as_ref()
            .map_or(self.metadata.name.as_str(), |r| r.name.as_str())
    }
}

/// The answer of `who-can`: `ResourceAccessReviewResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReview {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub verb: String,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- users and groups

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub super_user: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- jobs

/// A background job that runs on one replica at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: JobStatus,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a job stands. Times are RFC 3339, by the database's clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The replica running it now (`hostname-pid-random`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// When the holder's lease runs out unless renewed; past it, another
    /// replica takes the job over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expiry_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completion_time: Option<String>,
    /// `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The replica that started the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_replica: Option<String>,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- image streams (OpenShift's image.openshift.io/v1 field names)

/// `apiVersion` of image streams and the objects that view them.
pub const IMAGE_API_VERSION: &str = "image.openshift.io/v1";

/// A repository as an image stream: its spec (what was asked of its tags)
/// and its status (every tag's history, newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStream {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// `metadata.generation` is in `metadata.extra`.
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImageStreamSpec,
    #[serde(default)]
    pub status: ImageStreamStatus,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageStream {
    /// `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.metadata
            .extra
            .get("generation")
            .and_then(Value::as_i64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    #[serde(default)]
    pub lookup_policy: ImageLookupPolicy,
    #[serde(default)]
    pub tags: Vec<TagReference>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageLookupPolicy {
    #[serde(default)]
    pub local: bool,
}

/// A spec tag: where a tag takes its image from, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    #[serde(default)]
    pub reference: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default)]
    pub import_policy: TagImportPolicy,
    #[serde(default)]
    pub reference_policy: TagReferencePolicy,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{"kind":"ImageStreamImage","name":"app@sha256:…","namespace":"ns"}`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectReference {
    pub kind: String,
    pub name: String,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TagImportPolicy {
    pub insecure: bool,
    pub scheduled: bool,
    /// `Legacy` or `PreserveOriginal`.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagReferencePolicy {
    /// `Source` or `Local`.
    #[serde(rename = "type", default)]
    pub policy_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    /// Where the stream is pulled from: `HOST/NS/NAME`.
    #[serde(default)]
    pub docker_image_repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_docker_image_repository: Option<String>,
    #[serde(default)]
    pub tags: Vec<NamedTagEventList>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tag's history (newest first) and conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedTagEventList {
    pub tag: String,
    /// When the tag expires (berth's; RFC 3339), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default)]
    pub items: Vec<TagEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

/// A revision of a tag. `createdBy`, `clientAddress`, `cause` (`Push`,
/// `Tag`, `Rollback`, `Import`) and `source` are berth's: who made it,
/// from where, why, and from what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub docker_image_reference: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Of the blobs the image needs, how many berth stores (imports with
    /// reference policy Local fetch the rest when pulled). Only in a
    /// single stream's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs_stored: Option<BlobsStored>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobsStored {
    pub stored: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagEventCondition {
    #[serde(rename = "type", default)]
    pub condition_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub generation: i64,
}

/// A tag of a stream with the image it points at now (`NAME:TAG`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamTag {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagReference>,
    #[serde(default)]
    pub generation: i64,
    #[serde(default)]
    pub lookup_policy: ImageLookupPolicy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// When the tag expires (berth's; RFC 3339), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image of a stream by digest (`NAME@sha256:…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamImage {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub image: Image,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image: a manifest by digest, with its config's and layers' facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// `name` is the digest; `creationTimestamp` the config's `created`.
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub docker_image_reference: String,
    #[serde(default)]
    pub docker_image_manifest_media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_metadata: Option<DockerImageMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_metadata_version: Option<String>,
    #[serde(default)]
    pub docker_image_layers: Vec<ImageLayer>,
    /// For an index: its manifests, with their platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_image_manifests: Vec<ImageManifest>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What the image config says, in OpenShift's `DockerImage` spelling
/// (`Id` is the config's digest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerImageMetadata {
    #[serde(default)]
    pub kind: String,
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(rename = "Id", default)]
    pub id: String,
    #[serde(rename = "Created", default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(rename = "Os", default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(
        rename = "Architecture",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub architecture: Option<String>,
    #[serde(rename = "Variant", default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "Size", default)]
    pub size: u64,
    #[serde(rename = "Config", default)]
    pub config: DockerImageConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerImageConfig {
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A layer: `name` is its digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageLayer {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub media_type: String,
}

/// A child manifest of an index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub digest: String,
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub manifest_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `{"local":true}`: `spec.lookupPolicy` of a stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LookupPolicyRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageStreamSpecRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub lookup_policy: Option<LookupPolicyRequest>,
}

/// `{"metadata":{"name":"app"},"spec":{"lookupPolicy":{"local":true}}}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageStreamRequest {
    pub metadata: NameMeta,
    pub spec: ImageStreamSpecRequest,
}

/// The tag to set, as `PUT …/imagestreamtags/NAME:TAG` takes it:
/// `{"tag":{"from":{"kind":"ImageStreamImage","name":"app@sha256:…"},
/// "referencePolicy":{"type":"Local"},"importPolicy":{"scheduled":true}},
/// "alias":false}`. `alias` (berth's) makes a tag follow an
/// `ImageStreamTag` source of its own stream instead of taking its image
/// once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageStreamTagRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagReferenceRequest>,
    pub alias: bool,
    /// How long the tag lives from now (`2w`, `12h`): before the image's
    /// `quay.expires-after` label and the configured default.
    #[serde(rename = "expiresAfter", skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TagReferenceRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    pub reference: bool,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub reference_policy: Option<TagReferencePolicy>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub import_policy: Option<TagImportPolicy>,
}

/// A garbage collection run, or a dry run (`POST /api/v1/garbagecollections`,
/// `berth adm gc`). Runs are named by their id; a dry run is `dry-run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GarbageCollection {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GarbageCollectionSpec,
    #[serde(default)]
    pub status: GarbageCollectionStatus,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GarbageCollectionSpec {
    /// Only say what would be removed.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a run stands, and what it removed. Times are RFC 3339, UTC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GarbageCollectionStatus {
    /// What it is doing: `resuming`, `manifests`, `blobs`, `blob-links`,
    /// `done`.
    #[serde(default)]
    pub phase: String,
    /// `Succeeded`, `Failed`, `Interrupted`; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The replica that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default)]
    pub manifests_examined: u64,
    #[serde(default)]
    pub manifests_removed: u64,
    #[serde(default)]
    pub blobs_examined: u64,
    #[serde(default)]
    pub blobs_removed: u64,
    #[serde(default)]
    pub blob_links_removed: u64,
    #[serde(default)]
    pub bytes_freed: u64,
    /// The first thousand things removed (or that would be).
    #[serde(default)]
    pub removed: Vec<RemovedObject>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A manifest unlinked from a repository, a blob deleted, or a blob's link
/// into a repository removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedObject {
    /// `Manifest`, `Blob` or `BlobLink`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `{"dryRun":true}`: what `POST /api/v1/garbagecollections` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GarbageCollectionRequest {
    pub dry_run: bool,
}

/// `/api/v1/imagepruners/cluster`: the image pruner (OpenShift's
/// `ImagePruner` named `cluster`): its rules and schedule, its conditions
/// and its latest runs. `PATCH` changes the fields given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruner {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImagePrunerSpec,
    #[serde(default)]
    pub status: ImagePrunerStatus,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePrunerSpec {
    /// Cron, five fields, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tag_revisions: Option<u32>,
    /// A duration: `60m`, `2d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_younger_than_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_invalid_image_references: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePrunerStatus {
    /// `Available`, `Scheduled`, `Failed`.
    #[serde(default)]
    pub conditions: Vec<TagEventCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_time: Option<String>,
    /// The latest runs, newest first (as many as the history limits keep).
    #[serde(default)]
    pub runs: Vec<ImagePrune>,
}

/// `/api/v1/imagepruners/cluster/prunes`: one run of the pruner, or a dry
/// run (`spec.dryRun`, the default when asked for by hand).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePrune {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImagePruneSpec,
    #[serde(default)]
    pub status: ImagePruneStatus,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The rules of a run; those not given are the pruner's. A dry run unless
/// said otherwise, whatever is left out (no body, no `spec`, no `dryRun`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruneSpec {
    #[serde(default = "yes")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tag_revisions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_younger_than_duration: Option<String>,
    /// Only this namespace's tag histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_invalid_image_references: Option<bool>,
}

fn yes() -> bool {
    true
}

impl Default for ImagePruneSpec {
    fn default() -> Self {
        ImagePruneSpec {
            dry_run: true,
            keep_tag_revisions: None,
            keep_younger_than_duration: None,
            namespace: None,
            ignore_invalid_image_references: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruneStatus {
    /// `expired-tags`, `trimming`, `collecting`, `done`.
    #[serde(default)]
    pub phase: String,
    /// `Succeeded`, `Failed`, `Interrupted`; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `Schedule` or `Manual`.
    #[serde(default)]
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default)]
    pub revisions_removed: u64,
    #[serde(default)]
    pub tags_removed: u64,
    #[serde(default)]
    pub manifests_removed: u64,
    #[serde(default)]
    pub blobs_removed: u64,
    #[serde(default)]
    pub bytes_freed: u64,
    /// The garbage collection run that followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage_collection: Option<String>,
    /// The first thousand revisions removed (or that would be).
    #[serde(default)]
    pub revisions: Vec<PrunedRevision>,
    /// For a dry run: the first thousand manifests, blobs and links the
    /// collection would then remove.
    #[serde(default)]
    pub removed: Vec<RemovedObject>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrunedRevision {
    pub repository: String,
    pub tag: String,
    pub generation: i64,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// `{"generation":3}`: roll a tag back to its revision of generation 3.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RollbackRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// `POST …/imagestreamimports`: OpenShift's ImageStreamImport, what
/// `berth import-image` sends and gets back. `spec.import` false only looks
/// (fetches and checks, records nothing). `spec.images` names upstream
/// images, each for one tag (`to.name`); `spec.repository` a whole upstream
/// repository, each of its tags (up to the configured cap, newest first)
/// for a tag of the same name. The answer's `status` says for each tag
/// whether it was imported (`status.images`, `status.repository.images`),
/// and holds the stream as it is now (`status.import`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageStreamImport {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub metadata: NameMeta,
    pub spec: ImageStreamImportSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ImageStreamImportStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageStreamImportSpec {
    pub import: bool,
    pub images: Vec<ImageImportSpec>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryImportSpec>,
}

/// One upstream image (`from`, kind `DockerImage`) for the tag `to.name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageImportSpec {
    pub from: ObjectReference,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub to: Option<LocalObjectReference>,
    pub import_policy: TagImportPolicy,
    pub reference_policy: TagReferencePolicy,
}

/// Every tag of the upstream repository `from` (kind `DockerImage`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RepositoryImportSpec {
    pub from: ObjectReference,
    pub import_policy: TagImportPolicy,
    pub reference_policy: TagReferencePolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalObjectReference {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageStreamImportStatus {
    /// The stream after the import (absent when only looking).
    #[serde(rename = "import", skip_serializing_if = "Option::is_none")]
    pub stream: Option<ImageStream>,
    pub images: Vec<ImageImportStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryImportStatus>,
}

/// How one tag's import went: `status.status` is `Success` or `Failure`
/// (with `reason` and `message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageImportStatus {
    pub tag: String,
    pub status: ImportStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RepositoryImportStatus {
    pub status: ImportStatus,
    pub images: Vec<ImageImportStatus>,
    /// Upstream tags left out by `imagePolicy.maxImagesBulkImportedPerRepository`.
    pub additional_tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportStatus {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub version: String,
    #[serde(flatten)]
    pub extra: Extra,
}

// --- pull secrets

/// A pull secret: `kubernetes.io/dockerconfigjson`. Never holds a password,
/// `auth` string or token: berth has no answer that does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(rename = "type", default)]
    pub secret_type: String,
    /// The servers it has credentials for, with their user names; only
    /// for callers who may manage the project's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<Vec<SecretRegistry>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One server of a [`Secret`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRegistry {
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{"metadata":{"name":"regcreds"},"type":"kubernetes.io/dockerconfigjson",
/// "data":{".dockerconfigjson":"<base64 of an auth.json>"}}`, or the
/// auth.json's text under `stringData`. `data` and `stringData` are kept
/// as JSON values so that a malformed one is reported by the service
/// without its content being quoted back.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecretRequest {
    pub metadata: NameMeta,
    #[serde(
        rename = "type",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_type: Option<String>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub string_data: Option<Value>,
}

/// Shows which fields are present, never what `data` or `stringData` hold.
impl std::fmt::Debug for SecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRequest")
            .field("metadata", &self.metadata)
            .field("secret_type", &self.secret_type)
            .field("data", &self.data.as_ref().map(|_| "…"))
            .field("string_data", &self.string_data.as_ref().map(|_| "…"))
            .finish()
    }
}

// --- request bodies

/// For `Option` fields (with `#[serde(default)]`): absent is `None`, a
/// value is `Some`, and `null` is an error, so that
/// `{"metadata":{"name":null}}` is not read as "no name given".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NameMeta {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl NameMeta {
    pub fn named(name: &str) -> NameMeta {
        NameMeta {
            name: Some(name.to_owned()),
        }
    }
}

/// `{"metadata":{"name":"…"}}`: projects and service accounts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedBody {
    pub metadata: NameMeta,
}

impl NamedBody {
    pub fn named(name: &str) -> NamedBody {
        NamedBody {
            metadata: NameMeta::named(name),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TokenRequestSpec {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// `{"metadata":{"name":"laptop"},"spec":{"expiresIn":"720h"}}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    pub metadata: NameMeta,
    pub spec: TokenRequestSpec,
}

impl TokenRequest {
    pub fn new(name: Option<&str>, expires_in: Option<&str>) -> TokenRequest {
        TokenRequest {
            metadata: NameMeta {
                name: name.map(str::to_owned),
            },
            spec: TokenRequestSpec {
                expires_in: expires_in.map(str::to_owned),
            },
        }
    }
}

/// `{"subjects":[…]}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectsBody {
    pub subjects: Vec<Subject>,
}

/// `{"metadata":{"name":"alice"},"password":"…","email":"…","superUser":false}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UserRequest {
    pub metadata: NameMeta,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub super_user: bool,
}

/// `{"password":"…"}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `{"metadata":{"name":"devs"},"users":["alice"]}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupRequest {
    pub metadata: NameMeta,
    /// Optional to create (no members); required to replace, so that an
    /// empty `PUT` does not empty the group.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
}

/// `{"username":"admin","password":"…","email":"…","access_token":true}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InitializeRequest {
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub access_token: bool,
}

/// `{"username":"admin","email":"…","access_token":"berth_…"}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitializeResponse {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a newer server adds survives a round trip through the types.
    #[test]
    fn unknown_fields_are_kept() {
        let text = r#"{"apiVersion":"v1","kind":"User","metadata":{"name":"a","future":1},"groups":[],"superUser":false,"shiny":true}"#;
        let user: User = serde_json::from_str(text).unwrap();
        assert_eq!(user.extra["shiny"], true);
        assert_eq!(user.metadata.extra["future"], 1);
        let back: Value = serde_json::to_value(&user).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn null_is_not_absent() {
        assert!(serde_json::from_str::<NamedBody>(r#"{"metadata":{"name":null}}"#).is_err());
        let absent: NamedBody = serde_json::from_str(r#"{"metadata":{}}"#).unwrap();
        assert_eq!(absent.metadata.name, None);
        let request = TokenRequest::new(None, Some("24h"));
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"metadata": {}, "spec": {"expiresIn": "24h"}})
        );
    }
}

// --- proxy namespaces

/// A namespace caching an upstream registry (`/api/v1/proxies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ProxySpec,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// `https://host[:port]` of the upstream registry.
    #[serde(default)]
    pub upstream: String,
    /// The namespace's pull secret to reach the upstream with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long a tag is served before it is checked upstream (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Plain HTTP or an unverified certificate accepted.
    #[serde(default)]
    pub insecure: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What `POST /api/v1/proxies` takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyRequest {
    pub metadata: NameMeta,
    pub spec: ProxySpec,
}

/// An immutable-tags policy of a namespace or of one of its repositories
/// (`/api/v1/namespaces/NS/immutabletagpolicies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmutableTagPolicy {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// `name`: `NS` or `NS/REPO`, the policy's scope.
    pub metadata: ObjectMeta,
    pub spec: ImmutableTagPolicySpec,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmutableTagPolicySpec {
    /// The repository within the namespace; absent for the whole namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Tag globs (`*`, `?`).
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// What `PUT /api/v1/namespaces/NS/immutabletagpolicies` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImmutableTagPolicyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub patterns: Vec<String>,
}

/// Limits of a namespace's quota; an absent one does not limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaLimits {
    /// Deduplicated bytes (blobs and manifests once each in the namespace,
    /// plus uploads in progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<u64>,
}

/// What a namespace uses of what a quota limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUsed {
    pub bytes: u64,
    pub repositories: u64,
    pub tags: u64,
}

/// A namespace's quota (`/api/v1/namespaces/NS/quota`), shaped as a
/// Kubernetes `ResourceQuota`: `spec.hard` the limits, `status.used`
/// the usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuota {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ResourceQuotaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResourceQuotaStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceQuotaSpec {
    pub hard: QuotaLimits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuotaStatus {
    pub hard: QuotaLimits,
    pub used: QuotaUsed,
}

/// What `PUT /api/v1/namespaces/NS/quota` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceQuotaRequest {
    pub spec: ResourceQuotaSpec,
}

/// What a namespace holds (`/api/v1/namespaces/NS/usage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageFigures {
    /// Deduplicated: each blob and manifest once in the namespace.
    pub bytes: u64,
    /// Each repository's bytes summed, as if none shared anything.
    pub raw_bytes: u64,
    /// Received by uploads in progress.
    pub uploading_bytes: u64,
    pub repositories: u64,
    pub tags: u64,
    pub manifests: u64,
    pub blobs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceUsage {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// `name`: the namespace.
    pub metadata: ObjectMeta,
    pub usage: UsageFigures,
    /// The namespace's quota; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaLimits>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What one repository holds (`/api/v1/namespaces/NS/repositoryusages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryFigures {
    /// Its blobs and manifests: what it would cost alone.
    pub bytes: u64,
    /// Of those, held by another repository too.
    pub shared_bytes: u64,
    pub tags: u64,
    pub manifests: u64,
    pub blobs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryUsage {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// `name`: the repository (`NS/app`); `namespace`: its namespace.
    pub metadata: ObjectMeta,
    pub usage: RepositoryFigures,
    #[serde(flatten)]
    pub extra: Extra,
}
