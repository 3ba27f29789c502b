//! Which manifest a client gets for what it says it accepts.
//!
//! A pull by digest gets exactly what it names. A pull by tag gets what the
//! tag points at, unless the client cannot take that media type and the tag
//! points at an index listing a linux/amd64 image the client can take: then
//! it gets that image, as registries always have done for clients that
//! predate indexes (an old Docker, say). Otherwise it gets what is stored,
//! and decides itself.

use super::manifest::essence;
use crate::oci::names::Reference;

/// The manifest media types a client accepts (its `Accept` headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// No list, or a wildcard: whatever is stored.
    Anything,
    /// Exactly these media types.
    Only(Vec<String>),
}

/// The platform chosen from an index for a client that cannot take one.
pub const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

impl Accepted {
    /// From the values of a request's `Accept` headers: media types
    /// separated by commas, with parameters (`;q=0.5`) ignored.
    pub fn from_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Accepted {
        let mut types = Vec::new();
        for value in values {
            for item in value.split(',') {
                let media_type = essence(item);
                if media_type == "*/*" || media_type == "application/*" {
                    return Accepted::Anything;
                }
                if !media_type.is_empty() {
                    types.push(media_type.to_owned());
                }
            }
        }
        if types.is_empty() {
            Accepted::Anything
        } else {
            Accepted::Only(types)
        }
    }

    pub fn admits(&self, media_type: &str) -> bool {
        match self {
            Accepted::Anything => true,
            Accepted::Only(types) => types.iter().any(|t| t == media_type),
        }
    }
}

/// Whether a client asking for `reference` should be offered something
/// other than the stored manifest of `media_type`: only a pull by tag, of a
/// media type the client does not accept.
pub fn look_for_another(reference: &Reference, accepted: &Accepted, media_type: &str) -> bool {
    matches!(reference, Reference::Tag(_)) && !accepted.admits(media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(Accepted::from_headers([]), Accepted::Anything);
        assert_eq!(
            Accepted::from_headers(["application/a, application/b;q=0.5", "application/c"]),
            Accepted::Only(vec![
                "application/a".into(),
                "application/b".into(),
                "application/c".into()
            ])
        );
        assert_eq!(
            Accepted::from_headers(["application/a", "*/*"]),
            Accepted::Anything
        );
        let only = Accepted::from_headers(["application/a"]);
        assert!(only.admits("application/a") && !only.admits("application/b"));
        assert!(Accepted::Anything.admits("anything/else"));
    }
}
