//! What can go wrong talking to an upstream registry, said so that a tag's
//! condition (or a puller's error) can show it as is.

use std::path::PathBuf;
use std::time::Duration;

use super::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// The upstream does not have it (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`,
    /// `NAME_UNKNOWN`, or a `404` without a body).
    #[error("{what} not found on upstream {upstream} ({code}{})", message_suffix(.message))]
    NotFound {
        upstream: String,
        what: &'static str,
        code: String,
        message: String,
    },

    /// The upstream refused the credentials, or wants some and was given
    /// none.
    #[error("upstream {host} refused access to {what}: {detail}")]
    Unauthorized {
        host: String,
        what: String,
        detail: String,
    },

    /// `429 Too Many Requests`.
    #[error("upstream {host} is rate-limiting requests (429){}", retry_after_suffix(.retry_after))]
    RateLimited {
        host: String,
        retry_after: Option<Duration>,
    },

    /// The upstream's certificate did not verify (or it speaks plain HTTP
    /// where HTTPS was expected).
    #[error(
        "TLS with upstream {host} failed: {detail} (configure its CA certificate, or import with --insecure to accept plain HTTP or an unverified certificate)"
    )]
    TlsVerification { host: String, detail: String },

    /// No connection could be made.
    #[error("upstream {host} is unreachable: {detail}")]
    Unreachable { host: String, detail: String },

    /// Connected, but the answer stalled.
    #[error("upstream {host} stopped answering: {detail}")]
    TimedOut { host: String, detail: String },

    #[error("{what} from upstream {upstream} is larger than the {limit}-byte limit{}", size_suffix(.size))]
    TooLarge {
        upstream: String,
        what: &'static str,
        limit: u64,
        size: Option<u64>,
    },

    #[error("{what} from upstream {upstream} has digest {actual}, not the {expected} asked for")]
    DigestMismatch {
        upstream: String,
        what: &'static str,
        expected: String,
        actual: String,
    },

    /// An answer berth cannot use: an unexpected status, a body that is not
    /// what the API says.
    #[error("upstream {host} answered {what} unexpectedly: {detail}")]
    Protocol {
        host: String,
        what: String,
        detail: String,
    },

    #[error("CA certificate file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },

    #[error("the upstream HTTP client could not be built: {0}")]
    Setup(String),
}

impl UpstreamError {
    /// How long the upstream asked to be left alone, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether trying again later may succeed without anyone changing
    /// anything (the upstream was down, slow or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Unreachable { .. }
                | UpstreamError::TimedOut { .. }
        ) || matches!(self, UpstreamError::Protocol { detail, .. } if detail.starts_with("status 5"))
    }

    /// A short machine-readable reason, for a condition's `reason` field.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Reference(_) => "InvalidReference",
            UpstreamError::NotFound { .. } => "NotFound",
            UpstreamError::Unauthorized { .. } => "Unauthorized",
            UpstreamError::RateLimited { .. } => "RateLimited",
            UpstreamError::TlsVerification { .. } => "TLSVerificationFailed",
            UpstreamError::Unreachable { .. } => "Unreachable",
            UpstreamError::TimedOut { .. } => "TimedOut",
            UpstreamError::TooLarge { .. } => "TooLarge",
            UpstreamError::DigestMismatch { .. } => "DigestMismatch",
            UpstreamError::Protocol { .. } => "InvalidResponse",
            UpstreamError::CaFile { .. } | UpstreamError::Setup(_) => "ClientConfiguration",
        }
    }
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("; retry after {}s", after.as_secs()),
        None => String::new(),
    }
}

fn size_suffix(size: &Option<u64>) -> String {
    match size {
        Some(size) => format!(" ({size} bytes)"),
        None => String::new(),
    }
}
