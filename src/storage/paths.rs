//! Where things live in the object store. This is the only place that knows
//! the layout; everything else asks for a blob or an upload by identity.
//!
//! ```text
//! blobs/<algorithm>/<first two hex>/<hex>     content, written once, never modified
//! uploads/<upload id>                          bytes of an upload in progress
//! ```
//!
//! Blobs are fanned out by their first two hex digits so that no directory
//! (or object-store prefix) grows without bound.

use crate::oci::digest::Digest;

pub fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("blobs/{}/{}/{}", digest.algorithm(), &hex[..2], hex)
}

pub fn upload(upload_id: &str) -> String {
    format!("uploads/{upload_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::DigestAlgorithm;

    #[test]
    fn blob_paths_fan_out_by_prefix() {
        let d = DigestAlgorithm::Sha256.digest_of(b"");
        assert_eq!(
            blob(&d),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let d = DigestAlgorithm::Sha512.digest_of(b"");
        assert!(blob(&d).starts_with("blobs/sha512/cf/cf83e135"));
    }
}
