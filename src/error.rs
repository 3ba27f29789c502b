//! The one error type of the registry service, [`RegistryError`]: every
//! failure a client of `/v2/` can see. It says what went wrong in the
//! registry's terms and carries no HTTP: `api::errors` maps each variant to
//! its OCI error code, status and message, in one table.
//!
//! Lower layers return their own typed errors ([`StorageError`],
//! [`MetadataError`]); they convert into the `Storage` and `Metadata`
//! variants, are logged once, and are answered without leaking internals.

use crate::auth::Challenge;
use crate::metadata::MetadataError;
use crate::metadata::tag_policies::ImmutableTag;
use crate::oci::digest::{Digest, DigestError};
use crate::oci::names::{NameError, ReferenceError};
use crate::size_text::format_size;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob {0} unknown")]
    BlobUnknown(Digest),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown")]
    BlobUploadUnknown,
    /// A chunk that does not start where the upload ends (416).
    #[error("chunk out of order: upload is at offset {offset}")]
    UploadRangeInvalid { location: String, offset: u64 },
    /// A `Range` on a blob GET that the blob cannot satisfy (416).
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("{0}")]
    DigestInvalid(String),
    #[error("manifest references {0}, which is not in the repository")]
    ManifestBlobUnknown(Digest),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest {0} unknown")]
    ManifestUnknown(String),
    #[error("manifest is larger than the {limit} byte limit")]
    ManifestTooLarge { limit: usize },
    #[error("{0}")]
    NameInvalid(String),
    #[error("repository {0} unknown")]
    NameUnknown(String),
    #[error("{0}")]
    SizeInvalid(String),
    /// Credentials are needed (401); the challenge says where to get them.
    #[error("authentication required")]
    Unauthorized { challenge: Challenge },
    /// A bearer token not granting what its holder may have: 403 with the
    /// challenge (`error="insufficient_scope"`) to fetch one that does.
    #[error("the bearer token does not grant {}; ask the token service for it", challenge.scope().unwrap_or("this"))]
    InsufficientScope { challenge: Challenge },
    #[error("access denied")]
    Denied,
    /// Denied, with a reason the caller may be told (it is the `message`).
    #[error("access denied: {0}")]
    DeniedBecause(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A write while the registry runs with `readOnly: true`.
    #[error("the registry is read-only: pulls are served, pushes and deletes are refused")]
    ReadOnly,
    #[error("no such endpoint")]
    NotFound,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// Pull-through: the upstream the blob comes from does not have it (it
    /// was deleted or garbage-collected there), or the tag does not let
    /// berth fetch it. The message names the upstream.
    #[error("{message}")]
    UpstreamBlobUnknown { digest: Digest, message: String },
    /// Pull-through: the upstream a proxy namespace caches has no such
    /// manifest or tag.
    #[error("{message}")]
    UpstreamManifestUnknown { message: String },
    /// Pull-through: the upstream could not be used (down, stalled,
    /// refused berth's credentials, rate-limiting, or sent bytes that did
    /// not match their digest). Nothing was stored.
    #[error("{message}")]
    UpstreamUnavailable {
        message: String,
        retry_after_secs: Option<u64>,
        rate_limited: bool,
    },
    /// Garbage collection is deleting an earlier copy of this blob: the
    /// upload is intact, and completing it again shortly succeeds.
    #[error(
        "blob {0} is being removed by garbage collection right now; retry completing the upload shortly"
    )]
    BlobBeingDeleted(Digest),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An immutable-tags policy refuses moving or deleting the tag; the
    /// message names the tag, the policy and its pattern.
    #[error("{0}")]
    TagImmutable(Box<ImmutableTag>),
    /// A namespace's quota (bytes, repositories or tags) refuses the
    /// write; nothing was stored. The message says which quota, the usage
    /// and what the write needed.
    #[error("{0}")]
    QuotaExceeded(Box<QuotaRefusal>),
    #[error(transparent)]
    Metadata(MetadataError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<MetadataError> for RegistryError {
    fn from(e: MetadataError) -> Self {
        match e {
            // A refusal the client is told, not a fault of the store.
            MetadataError::TagImmutable(refusal) => RegistryError::TagImmutable(refusal),
            other => RegistryError::Metadata(other),
        }
    }
}

/// Which quota of a namespace refused a write, with the usage it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// The write needs `needed` more bytes than the `limit` leaves
    /// beside the `used` (stored, deduplicated, plus uploads in progress).
    Bytes {
        namespace: String,
        used: u64,
        limit: u64,
        needed: u64,
    },
    /// The namespace has `used` of its `limit` repositories: `repository`
    /// would be one more.
    Repositories {
        namespace: String,
        used: u64,
        limit: u64,
        repository: String,
    },
    /// The namespace has `used` of its `limit` tags: `tag` of
    /// `repository` would be one more.
    Tags {
        namespace: String,
        used: u64,
        limit: u64,
        repository: String,
        tag: String,
    },
}

impl QuotaRefusal {
    pub fn namespace(&self) -> &str {
        match self {
            QuotaRefusal::Bytes { namespace, .. }
            | QuotaRefusal::Repositories { namespace, .. }
            | QuotaRefusal::Tags { namespace, .. } => namespace,
        }
    }

    /// `bytes`, `repositories` or `tags`: the limit's name in the API.
    pub fn quota(&self) -> &'static str {
        match self {
            QuotaRefusal::Bytes { .. } => "bytes",
            QuotaRefusal::Repositories { .. } => "repositories",
            QuotaRefusal::Tags { .. } => "tags",
        }
    }

    /// The refusal's message, naming in a `Bytes` refusal `needer`, the
    /// write that asks for the bytes (an upload, an import).
    pub fn message_for(&self, needer: &str) -> String {
        match self {
            QuotaRefusal::Bytes {
                namespace,
                used,
                limit,
                needed,
            } => format!(
                "namespace \"{namespace}\" is over its storage quota: {} used of {} allowed, \
                 {needer} needs {} more",
                format_size(*used),
                format_size(*limit),
                format_size(*needed)
            ),
            other => other.to_string(),
        }
    }

    /// `(used, limit)`.
    pub fn usage(&self) -> (u64, u64) {
        match self {
            QuotaRefusal::Bytes { used, limit, .. }
            | QuotaRefusal::Repositories { used, limit, .. }
            | QuotaRefusal::Tags { used, limit, .. } => (*used, *limit),
        }
    }
}

impl std::fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaRefusal::Bytes { .. } => f.write_str(&self.message_for("this upload")),
            QuotaRefusal::Repositories {
                namespace,
                used,
                limit,
                repository,
            } => write!(
                f,
                "namespace \"{namespace}\" is at its quota of {limit} repositories ({used} used): \
                 repository \"{repository}\" cannot be created"
            ),
            QuotaRefusal::Tags {
                namespace,
                used,
                limit,
                repository,
                tag,
            } => write!(
                f,
                "namespace \"{namespace}\" is at its quota of {limit} tags ({used} used): \
                 tag \"{tag}\" of \"{repository}\" cannot be created"
            ),
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What a client is told when the database is down or unreachable.
pub const DATABASE_UNREACHABLE_MESSAGE: &str =
    "the registry's database cannot be reached: nothing was changed; retry shortly";

/// What a client is told when a write is refused for lack of space.
pub const STORAGE_FULL_MESSAGE: &str =
    "the registry's storage is full: writes are refused until space is freed (pulls still work)";

/// What a client is told when the blob store cannot be reached or keeps
/// refusing (throttling), after berth's retries.
pub const STORAGE_UNAVAILABLE_MESSAGE: &str = "the registry's blob storage is not answering or \
     is refusing requests for now (it may be throttling); try again shortly";

/// How long a client told [`STORAGE_UNAVAILABLE_MESSAGE`] or
/// [`DATABASE_UNREACHABLE_MESSAGE`] should wait (`Retry-After`).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl From<DigestError> for RegistryError {
    fn from(e: DigestError) -> Self {
        RegistryError::DigestInvalid(e.to_string())
    }
}

impl From<NameError> for RegistryError {
    fn from(e: NameError) -> Self {
        match e {
            NameError::InvalidTag(_) => RegistryError::ManifestInvalid(e.to_string()),
            other => RegistryError::NameInvalid(other.to_string()),
        }
    }
}

impl From<ReferenceError> for RegistryError {
    fn from(e: ReferenceError) -> Self {
        match e {
            ReferenceError::Digest(d) => d.into(),
            ReferenceError::Tag(t) => RegistryError::ManifestInvalid(t.to_string()),
        }
    }
}

impl RegistryError {
    /// A write refused because the registry's storage (blob store or
    /// database) is full. Nothing was stored, and the write can be retried
    /// once space is freed.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            RegistryError::Storage(e) => e.is_out_of_space(),
            RegistryError::Metadata(MetadataError::StorageFull(_)) => true,
            _ => false,
        }
    }

    /// A request that failed because the database cannot be reached;
    /// it may be retried once it is back.
    pub fn is_database_unreachable(&self) -> bool {
        matches!(self, RegistryError::Metadata(e) if e.is_unreachable())
    }

    /// The blob store could not be reached, or kept refusing (throttling),
    /// through every retry: the request may succeed later as it is.
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, RegistryError::Storage(e) if e.is_unavailable())
    }
}
