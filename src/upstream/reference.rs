//! Upstream image references: `REGISTRY/REPO[:TAG|@DIGEST]`, as
//! `oc import-image --from` and `podman pull` take them.
//!
//! The first component names the registry when it looks like a host (it
//! has a `.` or a `:`, or is `localhost`); otherwise the reference is on
//! Docker Hub, as clients assume. Docker Hub is contacted at
//! `registry-1.docker.io`, and its single-component names live under
//! `library/`.

use std::fmt;
use std::str::FromStr;

use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};

/// The name people write for Docker Hub.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag a reference without one means.
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference {0:?} is empty")]
    Empty(String),
    #[error("image reference {reference:?}: registry {registry:?} is not a host[:port]")]
    Registry { reference: String, registry: String },
    #[error("image reference {reference:?}: {detail}")]
    Repository { reference: String, detail: String },
    #[error("image reference {reference:?}: {detail}")]
    TagOrDigest { reference: String, detail: String },
}

/// An upstream registry: the name it is known by and the `host[:port]`
/// its API answers at (they differ only for Docker Hub).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryHost {
    name: String,
    api_host: String,
}

impl RegistryHost {
    /// `host[:port]`, lowercased; `docker.io` (and `index.docker.io`) mean
    /// Docker Hub.
    pub fn new(host: &str) -> Result<RegistryHost, ReferenceError> {
        let lowered = host.to_ascii_lowercase();
        if !valid_host(&lowered) {
            return Err(ReferenceError::Registry {
                reference: host.to_owned(),
                registry: host.to_owned(),
            });
        }
        Ok(match lowered.as_str() {
            DOCKER_HUB | "index.docker.io" | DOCKER_HUB_API_HOST => RegistryHost {
                name: DOCKER_HUB.to_owned(),
                api_host: DOCKER_HUB_API_HOST.to_owned(),
            },
            _ => RegistryHost {
                name: lowered.clone(),
                api_host: lowered,
            },
        })
    }

    /// The name as references show it (`docker.io`, `quay.io`, `host:5000`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where requests go (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        &self.api_host
    }

    pub fn is_docker_hub(&self) -> bool {
        self.name == DOCKER_HUB
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// `host`, `host:port`, an IPv4 address, or `[v6]:port`.
fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    port_ok && name_ok
}

/// An image in an upstream registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamReference {
    pub registry: RegistryHost,
    pub repository: RepositoryName,
    pub reference: Reference,
}

impl UpstreamReference {
    /// The same repository at `digest` (a child of an index, say).
    pub fn at_digest(&self, digest: Digest) -> UpstreamReference {
        UpstreamReference {
            reference: Reference::Digest(digest),
            ..self.clone()
        }
    }

    /// The same repository at `tag`.
    pub fn at_tag(&self, tag: Tag) -> UpstreamReference {
        UpstreamReference {
            reference: Reference::Tag(tag),
            ..self.clone()
        }
    }

    /// The digest it names, if it names one.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.reference {
            Reference::Digest(digest) => Some(digest),
            Reference::Tag(_) => None,
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn repository_path(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for UpstreamReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.repository),
            Reference::Digest(digest) => {
                write!(f, "{}/{}@{digest}", self.registry, self.repository)
            }
        }
    }
}

impl FromStr for UpstreamReference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty(text.to_owned()));
        }
        let (name, digest) = match trimmed.split_once('@') {
            Some((name, digest)) => {
                let digest: Digest =
                    digest
                        .parse()
                        .map_err(|e: crate::oci::digest::DigestError| {
                            ReferenceError::TagOrDigest {
                                reference: text.to_owned(),
                                detail: e.to_string(),
                            }
                        })?;
                (name, Some(digest))
            }
            None => (trimmed, None),
        };
        // A tag follows the last colon after the last slash (a colon before
        // it is the registry's port).
        let last_slash = name.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(at) => {
                let at = last_slash + at;
                (&name[..at], Some(&name[at + 1..]))
            }
            None => (name, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, rest.to_owned())
            }
            _ => (DOCKER_HUB, name.to_owned()),
        };
        let registry = RegistryHost::new(registry).map_err(|_| ReferenceError::Registry {
            reference: text.to_owned(),
            registry: registry.to_owned(),
        })?;
        let path = if registry.is_docker_hub() && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let repository: RepositoryName = path.parse().map_err(
            |e: crate::oci::names::NameError| ReferenceError::Repository {
                reference: text.to_owned(),
                detail: e.to_string(),
            },
        )?;
        let reference = match (digest, tag) {
            // `name:tag@digest`: the digest decides, as clients do.
            (Some(digest), _) => Reference::Digest(digest),
            (None, tag) => Reference::Tag(tag.unwrap_or(DEFAULT_TAG).parse().map_err(
                |e: crate::oci::names::NameError| ReferenceError::TagOrDigest {
                    reference: text.to_owned(),
                    detail: e.to_string(),
                },
            )?),
        };
        Ok(UpstreamReference {
            registry,
            repository,
            reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> UpstreamReference {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} parses: {e}"))
    }

    #[test]
    fn a_registry_is_a_host_with_a_dot_a_port_or_localhost() {
        let r = parse("quay.io/org/app:1.0");
        assert_eq!(r.registry.name(), "quay.io");
        assert_eq!(r.registry.api_host(), "quay.io");
        assert_eq!(r.repository.as_str(), "org/app");
        assert_eq!(r.to_string(), "quay.io/org/app:1.0");

        let r = parse("127.0.0.1:5000/a/b/c");
        assert_eq!(r.registry.api_host(), "127.0.0.1:5000");
        assert_eq!(r.repository.as_str(), "a/b/c");
        assert_eq!(r.reference, Reference::Tag("latest".parse().unwrap()));

        let r = parse(&format!("localhost/app@sha256:{}", "a".repeat(64)));
        assert_eq!(r.registry.name(), "localhost");
        assert!(r.digest().is_some());
    }

    #[test]
    fn docker_hub_names_get_its_api_host_and_library() {
        for text in [
            "alpine",
            "docker.io/alpine",
            "index.docker.io/library/alpine",
        ] {
            let r = parse(text);
            assert_eq!(r.registry.name(), "docker.io", "{text}");
            assert_eq!(r.registry.api_host(), "registry-1.docker.io", "{text}");
            assert_eq!(r.repository.as_str(), "library/alpine", "{text}");
        }
        let r = parse("bitnami/redis:7");
        assert_eq!(r.repository.as_str(), "bitnami/redis");
        assert_eq!(r.to_string(), "docker.io/bitnami/redis:7");
    }

    #[test]
    fn a_port_is_not_a_tag_and_a_digest_wins_over_a_tag() {
        let r = parse("host:5000/app");
        assert_eq!(r.to_string(), "host:5000/app:latest");
        let digest = format!("sha256:{}", "b".repeat(64));
        let r = parse(&format!("host:5000/app:v1@{digest}"));
        assert_eq!(r.digest().map(Digest::as_str), Some(digest.as_str()));
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for bad in [
            "",
            "quay.io/Org/app",
            "quay.io/app:-bad",
            "quay.io/app@sha256:zz",
            "bad host.io/app",
            "host:99999/app",
        ] {
            assert!(bad.parse::<UpstreamReference>().is_err(), "{bad:?}");
        }
    }
}
