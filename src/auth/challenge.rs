//! Challenges: what a client that lacks credentials (or scope) is told to
//! do, rendered by the HTTP layer as `WWW-Authenticate`.

use std::fmt;

/// Where and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Ask the token service at `realm` for a token (the Docker token
    /// protocol): `Bearer realm=…,service=…[,scope=…][,error=…]`. With
    /// `insufficient_scope` (RFC 6750), the token presented did not grant
    /// `scope`, and the client should ask for one that does.
    Bearer {
        realm: String,
        service: String,
        scope: Option<String>,
        insufficient_scope: bool,
    },
    /// The token service itself asks for a password: `Basic realm=…`.
    Basic { realm: String },
}

impl Challenge {
    /// The scope the request needed, if the challenge names one.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Challenge::Bearer { scope, .. } => scope.as_deref(),
            Challenge::Basic { .. } => None,
        }
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Challenge::Bearer {
                realm,
                service,
                scope,
                insufficient_scope,
            } => {
                write!(f, "Bearer realm=\"{realm}\",service=\"{service}\"")?;
                if let Some(scope) = scope {
                    write!(f, ",scope=\"{scope}\"")?;
                }
                if *insufficient_scope {
                    f.write_str(",error=\"insufficient_scope\"")?;
                }
                Ok(())
            }
            Challenge::Basic { realm } => write!(f, "Basic realm=\"{realm}\""),
        }
    }
}
