//! Named points where the process can be made to die, as if killed, for
//! the crash tests: `BERTH_TEST_CRASH_AT=<point>` makes berth abort (no
//! destructor, no flush, no rollback) the first time it reaches `<point>`.
//!
//! The points sit between the steps of a write whose order carries its
//! safety (a blob's data made durable, then named, then linked; a manifest's
//! rows written in one transaction), so that a test can kill berth at each
//! and check that what a restart finds is consistent. Unset, checking a
//! point costs one load of an initialised value.

use std::sync::OnceLock;

/// The variable naming the point to die at.
pub const VARIABLE: &str = "BERTH_TEST_CRASH_AT";

/// Every point, for the tests and for the warning below.
pub const POINTS: [&str; 7] = [
    BLOB_AFTER_FSYNC,
    BLOB_AFTER_RENAME,
    BLOB_AFTER_LINK,
    BLOB_AFTER_UPLOAD_ROW_DELETE,
    MANIFEST_INSIDE_TRANSACTION,
    GC_AFTER_MARK,
    PRUNE_AFTER_TRIM,
];

/// The upload's bytes are durable, not yet renamed to the blob's path.
pub const BLOB_AFTER_FSYNC: &str = "blob-after-fsync";
/// The blob is at its path (and its directory synced), not yet linked.
pub const BLOB_AFTER_RENAME: &str = "blob-after-rename";
/// The blob is linked into the repository; the upload row still exists.
pub const BLOB_AFTER_LINK: &str = "blob-after-link";
/// The upload row is gone; the client has not been answered.
pub const BLOB_AFTER_UPLOAD_ROW_DELETE: &str = "blob-after-upload-row-delete";
/// Inside the manifest transaction: manifest and references written, tags
/// not yet, nothing committed.
pub const MANIFEST_INSIDE_TRANSACTION: &str = "manifest-inside-transaction";
/// Garbage collection has committed a batch of blobs as being deleted
/// (their links gone); their bytes are not deleted yet.
pub const GC_AFTER_MARK: &str = "gc-after-mark";
/// The pruner has committed a batch of tag revisions removed; the garbage
/// collection that follows has not run.
pub const PRUNE_AFTER_TRIM: &str = "prune-after-trim";

fn configured() -> Option<&'static str> {
    static POINT: OnceLock<Option<&'static str>> = OnceLock::new();
    *POINT.get_or_init(|| {
        let wanted = std::env::var(VARIABLE).ok()?;
        let point = POINTS.into_iter().find(|p| *p == wanted);
        if point.is_none() {
            eprintln!("berth: {VARIABLE}={wanted:?} names no crash point; known: {POINTS:?}");
        }
        point
    })
}

/// Dies here if the tests asked for it.
pub fn reached(point: &'static str) {
    if configured() == Some(point) {
        eprintln!("berth: crashing at {point} ({VARIABLE})");
        std::process::abort();
    }
}
