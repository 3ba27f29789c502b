//! Repository names, tags and manifest references, validated by the grammar
//! of the OCI distribution spec.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// Longest repository name berth accepts; clients limit `host/name` to 255.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag the spec allows.
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "repository name {0:?} is invalid: components are lowercase alphanumerics separated by '.', '_', '__' or '-'"
    )]
    InvalidRepository(String),
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    RepositoryTooLong,
    #[error("tag {0:?} is invalid: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'")]
    InvalidTag(String),
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(Box<str>);

impl RepositoryName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace (OpenShift "project"): the first path component.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", followed by an alphanumeric.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= bytes.len() || !is_alnum(bytes[i]) {
            return false;
        }
    }
    true
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::RepositoryTooLong);
        }
        if s.split('/').all(valid_component) {
            Ok(RepositoryName(s.into()))
        } else {
            Err(NameError::InvalidRepository(s.to_owned()))
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Box<str>);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_TAG_LEN
            && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(Tag(s.into()))
        } else {
            Err(NameError::InvalidTag(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The `<tag-or-digest>` part of a manifest URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Tag(#[from] NameError),
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// A reference with a colon is a digest (tags cannot contain one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_names() {
        for ok in [
            "a",
            "library/ubuntu",
            "my-proj/my_app",
            "a/b/c/d",
            "a.b__c--d",
            "conformance/repo1",
            "a---b",
        ] {
            assert!(ok.parse::<RepositoryName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a._b",
            "a b",
            "a:b",
            "UPPER/case",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "a".repeat(256).parse::<RepositoryName>(),
            Err(NameError::RepositoryTooLong)
        );
    }

    #[test]
    fn namespace_is_first_component() {
        let n: RepositoryName = "proj/team/app".parse().unwrap();
        assert_eq!(n.namespace(), "proj");
        let n: RepositoryName = "solo".parse().unwrap();
        assert_eq!(n.namespace(), "solo");
    }

    #[test]
    fn tags() {
        for ok in ["latest", "1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"t".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }

    proptest! {
        #[test]
        fn generated_names_are_accepted(
            name in "[a-z0-9]{1,8}((\\.|_|__|-+)[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}((\\.|_|__|-+)[a-z0-9]{1,8}){0,2}){0,3}"
        ) {
            prop_assert!(name.parse::<RepositoryName>().is_ok());
        }

        #[test]
        fn names_with_foreign_characters_are_rejected(prefix in "[a-z]{1,5}", bad in "[A-Z:@ %#?]", suffix in "[a-z]{0,5}") {
            let name = format!("{prefix}{bad}{suffix}");
            prop_assert!(name.parse::<RepositoryName>().is_err());
        }

        #[test]
        fn generated_tags_are_accepted(tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
            prop_assert!(tag.parse::<Tag>().is_ok());
        }

        #[test]
        fn parsers_never_panic(s in ".*") {
            let _ = s.parse::<RepositoryName>();
            let _ = s.parse::<Tag>();
            let _ = s.parse::<Reference>();
        }
    }
}
