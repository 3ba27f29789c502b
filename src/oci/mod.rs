//! The vocabulary every layer shares: repository names, tags and references
//! (`names`) and content digests (`digest`), with the grammar of the OCI
//! distribution spec. It depends on nothing else in berth, so storage and
//! metadata can use it without reaching up into the domain.

pub mod digest;
pub mod names;
pub mod tag_pattern;

/// `TryFrom<String>` by parsing: how the metadata store's rows
/// (`#[sqlx(try_from = "String")]`) read these types.
macro_rules! parsed_from_string {
    ($($type:ty),*) => {$(
        impl TryFrom<String> for $type {
            type Error = <$type as std::str::FromStr>::Err;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }
    )*};
}

parsed_from_string!(
    digest::Digest,
    digest::DigestAlgorithm,
    names::RepositoryName
);
