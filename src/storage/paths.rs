//! Where things live in the object store. This is the only place that knows
//! the layout; everything else asks for a blob or an upload by identity.
//!
//! ```text
//! blobs/<algorithm>/<first two hex>/<hex>     content, written once, never modified
//! uploads/<upload id>                          an upload in progress, on the filesystem:
//!                                              one file its parts are appended to
//! uploads/<upload id>.compacted                its recorded parts copied together, when
//!                                              unrecorded bytes lie between them
//! uploads/<upload id>/parts/<n>-<token>        an upload in progress, on object stores:
//!                                              part n, one object per write
//! ```
//!
//! Blobs are fanned out by their first two hex digits so that no directory
//! (or object-store prefix) grows without bound.

use crate::oci::digest::Digest;

pub fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("blobs/{}/{}/{}", digest.algorithm(), &hex[..2], hex)
}

/// Where uploads in progress live.
pub const UPLOADS: &str = "uploads/";

/// The file of an upload on the filesystem.
pub fn upload(upload_id: &str) -> String {
    format!("uploads/{upload_id}")
}

/// The recorded parts of a filesystem upload, copied together at commit.
pub fn upload_compacted(upload_id: &str) -> String {
    format!("uploads/{upload_id}.compacted")
}

/// The upload a file name under `uploads/` belongs to.
pub fn upload_id_of(name: &str) -> &str {
    name.split_once('.').map_or(name, |(id, _)| id)
}

/// Everything of an upload on an object store.
pub fn upload_dir(upload_id: &str) -> String {
    format!("uploads/{upload_id}/")
}

/// Part `number` of an upload on an object store, as written under `token`.
pub fn upload_part(upload_id: &str, number: u32, token: &str) -> String {
    format!("uploads/{upload_id}/parts/{number}-{token}")
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
