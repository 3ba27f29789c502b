//! The one error type of the registry API and its mapping to OCI error codes.
//!
//! Every failure a client can see is a [`RegistryError`]. Lower layers return
//! their own typed errors ([`StorageError`], [`MetadataError`]); they convert
//! into `RegistryError::Internal`-like variants here, are logged once, and are
//! answered as `500 UNKNOWN` without leaking internals.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::oci::digest::{Digest, DigestError};
use crate::oci::names::{NameError, ReferenceError};
use crate::metadata::MetadataError;
use crate::storage::StorageError;

/// The error codes of the OCI distribution spec, plus `UNKNOWN` for server faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    Toomanyrequests,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Toomanyrequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The spec's short description, used as the `message` field.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "blob unknown to registry",
            ErrorCode::BlobUploadInvalid => "blob upload invalid",
            ErrorCode::BlobUploadUnknown => "blob upload unknown to registry",
            ErrorCode::DigestInvalid => "provided digest did not match uploaded content",
            ErrorCode::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            ErrorCode::ManifestInvalid => "manifest invalid",
            ErrorCode::ManifestUnknown => "manifest unknown to registry",
            ErrorCode::NameInvalid => "invalid repository name",
            ErrorCode::NameUnknown => "repository name not known to registry",
            ErrorCode::SizeInvalid => "provided length did not match content length",
            ErrorCode::Unauthorized => "authentication required",
            ErrorCode::Denied => "requested access to the resource is denied",
            ErrorCode::Unsupported => "the operation is unsupported",
            ErrorCode::Toomanyrequests => "too many requests",
            ErrorCode::Unavailable => "service unavailable",
            ErrorCode::Unknown => "unknown error",
        }
    }
}

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
    #[error("authentication required")]
    Unauthorized { challenge: HeaderValue },
    /// A bearer token not granting `scope`, which its holder may have: 403
    /// with the challenge (`error="insufficient_scope"`) to fetch one.
    #[error("the bearer token does not grant {scope}; ask the token service for it")]
    InsufficientScope {
        challenge: HeaderValue,
        scope: String,
    },
    #[error("access denied")]
    Denied,
    /// Denied, with a reason the caller may be told (it is the `message`).
    #[error("access denied: {0}")]
    DeniedBecause(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("no such endpoint")]
    NotFound,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("registry is read-only")]
    ReadOnly,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What a client is told when a write is refused for lack of space.
pub const STORAGE_FULL_MESSAGE: &str =
    "the registry's storage is full: writes are refused until space is freed (pulls still work)";

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
    /// database) is full: `507`, with a message saying so. Nothing was
    /// stored, and the write can be retried once space is freed.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            RegistryError::Storage(e) => e.is_out_of_space(),
            RegistryError::Metadata(MetadataError::StorageFull(_)) => true,
            _ => false,
        }
    }

    pub fn code(&self) -> ErrorCode {
        use RegistryError::*;
        if self.is_out_of_space() {
            return ErrorCode::Unavailable;
        }
        match self {
            BlobUnknown(_) => ErrorCode::BlobUnknown,
            BlobUploadInvalid(_) | UploadRangeInvalid { .. } | RangeNotSatisfiable { .. } => {
                ErrorCode::BlobUploadInvalid
            }
            BlobUploadUnknown => ErrorCode::BlobUploadUnknown,
            DigestInvalid(_) => ErrorCode::DigestInvalid,
            ManifestBlobUnknown(_) => ErrorCode::ManifestBlobUnknown,
            ManifestInvalid(_) => ErrorCode::ManifestInvalid,
            ManifestUnknown(_) => ErrorCode::ManifestUnknown,
            ManifestTooLarge { .. } | SizeInvalid(_) => ErrorCode::SizeInvalid,
            NameInvalid(_) => ErrorCode::NameInvalid,
            NameUnknown(_) => ErrorCode::NameUnknown,
            Unauthorized { .. } => ErrorCode::Unauthorized,
            Denied | DeniedBecause(_) | InsufficientScope { .. } => ErrorCode::Denied,
            Unsupported(_) | MethodNotAllowed | NotFound => ErrorCode::Unsupported,
            TooManyRequests { .. } => ErrorCode::Toomanyrequests,
            ReadOnly => ErrorCode::Unavailable,
            Storage(_) | Metadata(_) | Internal(_) => ErrorCode::Unknown,
        }
    }

    pub fn status(&self) -> StatusCode {
        use RegistryError::*;
        if self.is_out_of_space() {
            return StatusCode::INSUFFICIENT_STORAGE;
        }
        match self {
            BlobUnknown(_) | BlobUploadUnknown | ManifestUnknown(_) | NameUnknown(_) | NotFound => {
                StatusCode::NOT_FOUND
            }
            UploadRangeInvalid { .. } | RangeNotSatisfiable { .. } => {
                StatusCode::RANGE_NOT_SATISFIABLE
            }
            BlobUploadInvalid(_)
            | DigestInvalid(_)
            | ManifestBlobUnknown(_)
            | ManifestInvalid(_)
            | NameInvalid(_)
            | SizeInvalid(_)
            | Unsupported(_) => StatusCode::BAD_REQUEST,
            ManifestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Denied | DeniedBecause(_) | InsufficientScope { .. } => StatusCode::FORBIDDEN,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ReadOnly => StatusCode::SERVICE_UNAVAILABLE,
            Storage(_) | Metadata(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client sees in `detail`: specific for client errors, nothing
    /// for server faults (those are logged instead).
    /// The `message` field: the code's own, or a sentence that says more
    /// where the code alone would mislead.
    fn message(&self) -> std::borrow::Cow<'static, str> {
        if self.is_out_of_space() {
            return STORAGE_FULL_MESSAGE.into();
        }
        match self {
            RegistryError::ManifestTooLarge { limit } => {
                format!("manifest exceeds the registry's size limit of {limit} bytes").into()
            }
            // Refusals that say why carry it in the message.
            RegistryError::DeniedBecause(reason) => reason.clone().into(),
            RegistryError::InsufficientScope { .. } => self.to_string().into(),
            other => other.code().message().into(),
        }
    }

    fn detail(&self) -> Option<serde_json::Value> {
        use RegistryError::*;
        match self {
            Storage(_) | Metadata(_) | Internal(_) => None,
            BlobUnknown(d) | ManifestBlobUnknown(d) => {
                Some(serde_json::json!({ "digest": d.as_str() }))
            }
            Unauthorized { .. } | Denied | DeniedBecause(_) | InsufficientScope { .. } => None,
            other => Some(serde_json::Value::String(other.to_string())),
        }
    }

    fn extra_headers(&self, headers: &mut HeaderMap) {
        match self {
            RegistryError::Unauthorized { challenge }
            | RegistryError::InsufficientScope { challenge, .. } => {
                headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            RegistryError::UploadRangeInvalid { location, offset } => {
                if let Ok(v) = HeaderValue::from_str(location) {
                    headers.insert(header::LOCATION, v);
                }
                headers.insert(header::RANGE, upload_range_header(*offset));
            }
            RegistryError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            RegistryError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
    }
}

/// The `Range: 0-<last byte>` header of an upload holding `size` bytes. An
/// empty upload reports `0-0`, as every registry client expects.
pub fn upload_range_header(size: u64) -> HeaderValue {
    let end = size.saturating_sub(1);
    HeaderValue::try_from(format!("0-{end}")).unwrap_or(HeaderValue::from_static("0-0"))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    code: &'a str,
    message: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

pub static DOCKER_DISTRIBUTION_API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if self.is_out_of_space() {
            tracing::warn!(error = %self, "write refused: storage is full");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let code = self.code();
        let body = ErrorBody {
            errors: [ErrorEntry {
                code: code.as_str(),
                message: self.message(),
                detail: self.detail(),
            }],
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.extra_headers(headers);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_spec_error_body() {
        let digest = crate::oci::digest::DigestAlgorithm::Sha256.digest_of(b"x");
        let response = RegistryError::BlobUnknown(digest.clone()).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["detail"]["digest"], digest.as_str());
    }

    #[test]
    fn internal_errors_hide_details() {
        let e = RegistryError::Internal("secret path /var/x".into());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.detail().is_none());
    }

    #[test]
    fn empty_upload_range_is_zero_zero() {
        assert_eq!(upload_range_header(0), "0-0");
        assert_eq!(upload_range_header(10), "0-9");
    }
}
