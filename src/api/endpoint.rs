//! The `/v2/` API as a typed endpoint, parsed from method and path.
//!
//! Repository names contain slashes and may even contain the words
//! `blobs`, `manifests` or `tags` as components, so a path is read from the
//! right: the last segments say which endpoint it is, everything before
//! them is the name. One catch-all route hands every `/v2/` request here.

use axum::http::Method;

use crate::error::RegistryError;
use crate::oci::names::RepositoryName;

/// What a `/v2/…` path addresses (method not yet considered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`: API version check.
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: RepositoryName },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        name: RepositoryName,
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        name: RepositoryName,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: RepositoryName },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: RepositoryName, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        name: RepositoryName,
        digest: String,
    },
}

impl Endpoint {
    /// Parses the part of the path after `/v2/`.
    ///
    /// Unknown shapes are `NotFound`; a known shape with an invalid name is
    /// `NameInvalid`, so clients learn what is wrong with their request.
    pub fn parse(path_after_v2: &str) -> Result<Endpoint, RegistryError> {
        if path_after_v2.is_empty() {
            return Ok(Endpoint::Base);
        }
        if path_after_v2 == "_catalog" {
            return Ok(Endpoint::Catalog);
        }
        let segments: Vec<&str> = path_after_v2.split('/').collect();
        let n = segments.len();
        let name_of = |end: usize| -> Result<RepositoryName, RegistryError> {
            if end == 0 {
                return Err(RegistryError::NotFound);
            }
            Ok(segments[..end].join("/").parse()?)
        };
        if n >= 3 && segments[n - 2] == "tags" && segments[n - 1] == "list" {
            return Ok(Endpoint::Tags {
                name: name_of(n - 2)?,
            });
        }
        // `/blobs/uploads/` (trailing slash) and `/blobs/uploads`.
        if n >= 4 && segments[n - 3] == "blobs" && segments[n - 2] == "uploads" {
            let id = segments[n - 1];
            let name = name_of(n - 3)?;
            return Ok(if id.is_empty() {
                Endpoint::UploadStart { name }
            } else {
                Endpoint::Upload {
                    name,
                    id: id.to_owned(),
                }
            });
        }
        if n >= 3 && segments[n - 2] == "blobs" && segments[n - 1] == "uploads" {
            return Ok(Endpoint::UploadStart {
                name: name_of(n - 2)?,
            });
        }
        if n >= 3 && !segments[n - 1].is_empty() {
            let last = segments[n - 1].to_owned();
            match segments[n - 2] {
                "manifests" => {
                    return Ok(Endpoint::Manifest {
                        name: name_of(n - 2)?,
                        reference: last,
                    });
                }
                "blobs" => {
                    return Ok(Endpoint::Blob {
                        name: name_of(n - 2)?,
                        digest: last,
                    });
                }
                "referrers" => {
                    return Ok(Endpoint::Referrers {
                        name: name_of(n - 2)?,
                        digest: last,
                    });
                }
                _ => {}
            }
        }
        Err(RegistryError::NotFound)
    }

    /// The repository addressed, if any.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match self {
            Endpoint::Base | Endpoint::Catalog => None,
            Endpoint::Tags { name }
            | Endpoint::Manifest { name, .. }
            | Endpoint::Blob { name, .. }
            | Endpoint::UploadStart { name }
            | Endpoint::Upload { name, .. }
            | Endpoint::Referrers { name, .. } => Some(name),
        }
    }

    /// A low-cardinality label for metrics and logs.
    pub fn route(&self, method: &Method) -> &'static str {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        match (self, write) {
            (Endpoint::Base, _) => "base",
            (Endpoint::Catalog, _) => "catalog",
            (Endpoint::Tags { .. }, _) => "tags",
            (Endpoint::Manifest { .. }, false) => "manifest_read",
            (Endpoint::Manifest { .. }, true) => "manifest_write",
            (Endpoint::Blob { .. }, false) => "blob_read",
            (Endpoint::Blob { .. }, true) => "blob_delete",
            (Endpoint::UploadStart { .. }, _) => "upload_start",
            (Endpoint::Upload { .. }, _) => "upload",
            (Endpoint::Referrers { .. }, _) => "referrers",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> RepositoryName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint() {
        let cases = [
            ("", Endpoint::Base),
            ("_catalog", Endpoint::Catalog),
            ("a/b/tags/list", Endpoint::Tags { name: name("a/b") }),
            (
                "a/manifests/latest",
                Endpoint::Manifest {
                    name: name("a"),
                    reference: "latest".into(),
                },
            ),
            (
                "a/b/c/blobs/sha256:abc",
                Endpoint::Blob {
                    name: name("a/b/c"),
                    digest: "sha256:abc".into(),
                },
            ),
            (
                "a/blobs/uploads/",
                Endpoint::UploadStart { name: name("a") },
            ),
            ("a/blobs/uploads", Endpoint::UploadStart { name: name("a") }),
            (
                "a/blobs/uploads/1234-5678",
                Endpoint::Upload {
                    name: name("a"),
                    id: "1234-5678".into(),
                },
            ),
            (
                "x/referrers/sha256:abc",
                Endpoint::Referrers {
                    name: name("x"),
                    digest: "sha256:abc".into(),
                },
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(Endpoint::parse(path).unwrap(), expected, "{path}");
        }
    }

    #[test]
    fn names_may_contain_endpoint_words() {
        assert_eq!(
            Endpoint::parse("blobs/manifests/tags/manifests/v1").unwrap(),
            Endpoint::Manifest {
                name: name("blobs/manifests/tags"),
                reference: "v1".into()
            }
        );
        assert_eq!(
            Endpoint::parse("uploads/blobs/uploads/id").unwrap(),
            Endpoint::Upload {
                name: name("uploads"),
                id: "id".into()
            }
        );
        assert_eq!(
            Endpoint::parse("tags/tags/list").unwrap(),
            Endpoint::Tags { name: name("tags") }
        );
    }

    #[test]
    fn rejects_unknown_and_invalid() {
        for path in [
            "nope",
            "a/b",
            "a/manifests/",
            "manifests/x",
            "tags/list",
            "a/foo/bar",
        ] {
            assert!(
                matches!(Endpoint::parse(path), Err(RegistryError::NotFound)),
                "{path}"
            );
        }
        assert!(matches!(
            Endpoint::parse("UPPER/manifests/latest"),
            Err(RegistryError::NameInvalid(_))
        ));
        assert!(matches!(
            Endpoint::parse("a//b/blobs/uploads/"),
            Err(RegistryError::NameInvalid(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(path in "[a-z/._:-]{0,40}") {
            let _ = Endpoint::parse(&path);
        }

        #[test]
        fn manifest_paths_round_trip(
            repo in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,3}",
            reference in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}",
        ) {
            let parsed = Endpoint::parse(&format!("{repo}/manifests/{reference}")).unwrap();
            prop_assert_eq!(parsed, Endpoint::Manifest { name: name(&repo), reference });
        }

        #[test]
        fn upload_paths_round_trip(repo in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,3}", id in "[a-f0-9-]{1,36}") {
            let parsed = Endpoint::parse(&format!("{repo}/blobs/uploads/{id}")).unwrap();
            prop_assert_eq!(parsed, Endpoint::Upload { name: name(&repo), id });
        }
    }
}
