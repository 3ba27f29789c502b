//! How `/v2/` and the token service answer a [`RegistryError`]: one table
//! ([`describe`]) giving each error its OCI error code, HTTP status and
//! message, as distribution's error-code registry does; the
//! `{"errors":[…]}` body; and the headers some errors carry (a challenge,
//! `Retry-After`, the upload's `Range`).
//!
//! Also the one mapping of a failed authentication to the client's answer,
//! for every API ([`refuse_authentication`]).

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{AuthFailure, Challenge};
use crate::error::{
    DATABASE_UNREACHABLE_MESSAGE, RegistryError, STORAGE_FULL_MESSAGE, STORAGE_UNAVAILABLE_MESSAGE,
    UNAVAILABLE_RETRY_AFTER_SECS,
};
use crate::metadata::MetadataError;

pub static DOCKER_DISTRIBUTION_API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");

/// The error codes of the OCI distribution spec, plus distribution's
/// `UNAVAILABLE` and `UNKNOWN` for what the spec has no code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The code's name and the spec's short description of it.
    pub fn text(self) -> (&'static str, &'static str) {
        use ErrorCode::*;
        match self {
            BlobUnknown => ("BLOB_UNKNOWN", "blob unknown to registry"),
            BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", "blob upload invalid"),
            BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"),
            DigestInvalid => (
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            ),
            ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                "manifest references a manifest or blob unknown to registry",
            ),
            ManifestInvalid => ("MANIFEST_INVALID", "manifest invalid"),
            ManifestUnknown => ("MANIFEST_UNKNOWN", "manifest unknown to registry"),
            NameInvalid => ("NAME_INVALID", "invalid repository name"),
            NameUnknown => ("NAME_UNKNOWN", "repository name not known to registry"),
            SizeInvalid => (
                "SIZE_INVALID",
                "provided length did not match content length",
            ),
            Unauthorized => ("UNAUTHORIZED", "authentication required"),
            Denied => ("DENIED", "requested access to the resource is denied"),
            Unsupported => ("UNSUPPORTED", "the operation is unsupported"),
            Toomanyrequests => ("TOOMANYREQUESTS", "too many requests"),
            Unavailable => ("UNAVAILABLE", "service unavailable"),
            Unknown => ("UNKNOWN", "unknown error"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.text().0
    }
}

/// One row of the table: what the client is told.
#[derive(Debug)]
pub struct Described {
    pub code: ErrorCode,
    pub status: StatusCode,
    pub message: Cow<'static, str>,
}

/// The table: each error's code, status and message. The message is the
/// code's own unless the error says more that the client should hear.
pub fn describe(error: &RegistryError) -> Described {
    use ErrorCode as C;
    use RegistryError::*;
    use StatusCode as S;
    let row = |code: ErrorCode, status: StatusCode| Described {
        code,
        status,
        message: Cow::Borrowed(code.text().1),
    };
    if error.is_out_of_space() {
        return Described {
            message: Cow::Borrowed(STORAGE_FULL_MESSAGE),
            ..row(C::Unavailable, S::INSUFFICIENT_STORAGE)
        };
    }
    if error.is_database_unreachable() {
        return Described {
            message: Cow::Borrowed(DATABASE_UNREACHABLE_MESSAGE),
            ..row(C::Unavailable, S::SERVICE_UNAVAILABLE)
        };
    }
    if error.is_storage_unavailable() {
        return Described {
            message: Cow::Borrowed(STORAGE_UNAVAILABLE_MESSAGE),
            ..row(C::Unavailable, S::SERVICE_UNAVAILABLE)
        };
    }
    match error {
        BlobUnknown(_) => row(C::BlobUnknown, S::NOT_FOUND),
        BlobUploadInvalid(_) => row(C::BlobUploadInvalid, S::BAD_REQUEST),
        BlobUploadUnknown => row(C::BlobUploadUnknown, S::NOT_FOUND),
        UploadRangeInvalid { .. } => row(C::BlobUploadInvalid, S::RANGE_NOT_SATISFIABLE),
        RangeNotSatisfiable { .. } => row(C::BlobUploadInvalid, S::RANGE_NOT_SATISFIABLE),
        DigestInvalid(_) => row(C::DigestInvalid, S::BAD_REQUEST),
        ManifestBlobUnknown(_) => row(C::ManifestBlobUnknown, S::BAD_REQUEST),
        ManifestInvalid(_) => row(C::ManifestInvalid, S::BAD_REQUEST),
        ManifestUnknown(_) => row(C::ManifestUnknown, S::NOT_FOUND),
        ManifestTooLarge { limit } => Described {
            message: format!("manifest exceeds the registry's size limit of {limit} bytes").into(),
            ..row(C::SizeInvalid, S::PAYLOAD_TOO_LARGE)
        },
        NameInvalid(_) => row(C::NameInvalid, S::BAD_REQUEST),
        NameUnknown(_) => row(C::NameUnknown, S::NOT_FOUND),
        SizeInvalid(_) => row(C::SizeInvalid, S::BAD_REQUEST),
        Unauthorized { .. } => row(C::Unauthorized, S::UNAUTHORIZED),
        // Refusals that say why carry it in the message.
        InsufficientScope { .. } => Described {
            message: error.to_string().into(),
            ..row(C::Denied, S::FORBIDDEN)
        },
        Denied => row(C::Denied, S::FORBIDDEN),
        DeniedBecause(reason) => Described {
            message: reason.clone().into(),
            ..row(C::Denied, S::FORBIDDEN)
        },
        TagImmutable(_) | QuotaExceeded(_) => Described {
            message: error.to_string().into(),
            ..row(C::Denied, S::FORBIDDEN)
        },
        Unsupported(_) => row(C::Unsupported, S::BAD_REQUEST),
        MethodNotAllowed => row(C::Unsupported, S::METHOD_NOT_ALLOWED),
        // As the reference registry in read-only mode: the write methods
        // are not allowed, and the message says why.
        ReadOnly => Described {
            message: error.to_string().into(),
            ..row(C::Unsupported, S::METHOD_NOT_ALLOWED)
        },
        NotFound => row(C::Unsupported, S::NOT_FOUND),
        TooManyRequests { .. } => row(C::Toomanyrequests, S::TOO_MANY_REQUESTS),
        // Pull-through failures say which upstream and what it did.
        UpstreamBlobUnknown { .. } => Described {
            message: error.to_string().into(),
            ..row(C::BlobUnknown, S::NOT_FOUND)
        },
        UpstreamManifestUnknown { .. } => Described {
            message: error.to_string().into(),
            ..row(C::ManifestUnknown, S::NOT_FOUND)
        },
        UpstreamUnavailable { rate_limited, .. } => Described {
            message: error.to_string().into(),
            ..if *rate_limited {
                row(C::Toomanyrequests, S::TOO_MANY_REQUESTS)
            } else {
                row(C::Unavailable, S::SERVICE_UNAVAILABLE)
            }
        },
        BlobBeingDeleted(_) => Described {
            message: error.to_string().into(),
            ..row(C::Unavailable, S::SERVICE_UNAVAILABLE)
        },
        Storage(_) | Metadata(_) | Internal(_) => row(C::Unknown, S::INTERNAL_SERVER_ERROR),
    }
}

/// What the client sees in `detail`: specific for client errors, nothing
/// for server faults (those are logged instead) or refusals.
fn detail(error: &RegistryError) -> Option<serde_json::Value> {
    use RegistryError::*;
    match error {
        Storage(_) | Metadata(_) | Internal(_) => None,
        BlobUnknown(d) | ManifestBlobUnknown(d) | UpstreamBlobUnknown { digest: d, .. } => {
            Some(serde_json::json!({ "digest": d.as_str() }))
        }
        Unauthorized { .. } | Denied | DeniedBecause(_) | InsufficientScope { .. } => None,
        QuotaExceeded(refusal) => {
            let (used, limit) = refusal.usage();
            let mut detail = serde_json::json!({
                "namespace": refusal.namespace(),
                "quota": refusal.quota(),
                "limit": limit,
                "used": used,
            });
            if let crate::error::QuotaRefusal::Bytes { needed, .. } = refusal.as_ref() {
                detail["needed"] = serde_json::json!(needed);
            }
            Some(detail)
        }
        TagImmutable(refusal) => Some(serde_json::json!({
            "tag": refusal.tag,
            "policy": match &refusal.policy_repository {
                Some(repo) => format!("{}/{repo}", refusal.policy_namespace),
                None => refusal.policy_namespace.clone(),
            },
            "pattern": refusal.pattern,
        })),
        other => Some(serde_json::Value::String(other.to_string())),
    }
}

fn extra_headers(error: &RegistryError, headers: &mut HeaderMap) {
    match error {
        RegistryError::Unauthorized { challenge }
        | RegistryError::InsufficientScope { challenge } => {
            if let Ok(value) = HeaderValue::try_from(challenge.to_string()) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
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
        RegistryError::TooManyRequests { retry_after_secs }
        | RegistryError::UpstreamUnavailable {
            retry_after_secs: Some(retry_after_secs),
            ..
        } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        RegistryError::BlobBeingDeleted(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        error if error.is_storage_unavailable() || error.is_database_unreachable() => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
            );
        }
        _ => {}
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
    message: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let described = describe(&self);
        if self.is_out_of_space() {
            tracing::warn!(error = %self, "write refused: storage is full");
        } else if self.is_database_unreachable() {
            tracing::warn!(error = %self, "request refused: the database cannot be reached");
        } else if self.is_storage_unavailable() {
            tracing::warn!(error = %self, "request refused: blob storage unavailable");
        } else if described.status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            errors: [ErrorEntry {
                code: described.code.as_str(),
                message: described.message,
                detail: detail(&self),
            }],
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
        let mut response = (described.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        extra_headers(&self, headers);
        response
    }
}

/// How every API answers a failed authentication: wrong or unknown
/// credentials get `challenge`, a locked-out client `429` with when to try
/// again, store faults an internal error.
pub fn refuse_authentication(failure: AuthFailure, challenge: Challenge) -> Refusal {
    match failure {
        AuthFailure::BadCredentials => Refusal::Unauthorized(challenge),
        AuthFailure::LockedOut(wait) => Refusal::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
        },
        AuthFailure::Store(e) => Refusal::Store(e),
        AuthFailure::Bearer(e) => Refusal::Internal(e.to_string()),
    }
}

/// A failed authentication's answer, before it takes the shape of one API's
/// errors (`RegistryError` on `/v2/` and `/auth/token`, `AdminError` on
/// `/api/v1`).
#[derive(Debug)]
pub enum Refusal {
    Unauthorized(Challenge),
    TooManyRequests { retry_after_secs: u64 },
    Store(MetadataError),
    Internal(String),
}

impl From<Refusal> for RegistryError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthorized(challenge) => RegistryError::Unauthorized { challenge },
            Refusal::TooManyRequests { retry_after_secs } => {
                RegistryError::TooManyRequests { retry_after_secs }
            }
            Refusal::Store(e) => e.into(),
            Refusal::Internal(e) => RegistryError::Internal(e),
        }
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
        assert_eq!(v["errors"][0]["message"], "blob unknown to registry");
        assert_eq!(v["errors"][0]["detail"]["digest"], digest.as_str());
    }

    #[test]
    fn internal_errors_hide_details() {
        let e = RegistryError::Internal("secret path /var/x".into());
        assert_eq!(describe(&e).status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(detail(&e).is_none());
    }

    #[test]
    fn challenges_go_in_www_authenticate() {
        let challenge = Challenge::Bearer {
            realm: "https://r.example/auth/token".into(),
            service: "berth".into(),
            scope: Some("repository:ns/app:pull,push".into()),
            insufficient_scope: true,
        };
        let response = RegistryError::InsufficientScope { challenge }.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"https://r.example/auth/token\",service=\"berth\",\
             scope=\"repository:ns/app:pull,push\",error=\"insufficient_scope\""
        );
    }

    #[test]
    fn empty_upload_range_is_zero_zero() {
        assert_eq!(upload_range_header(0), "0-0");
        assert_eq!(upload_range_header(10), "0-9");
    }
}
