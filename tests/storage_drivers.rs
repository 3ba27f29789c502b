//! The one test suite every storage backend must pass, the way the metadata
//! suite runs on SQLite and PostgreSQL: each case runs against berth's
//! [`BlobStore`] on the filesystem, on S3 (SeaweedFS, `weed mini`) and on
//! Azure Blob Storage (Azurite), each configured as an operator would
//! configure it (`storage.filesystem`, `storage.s3`, `storage.azure`).
//!
//! What the stores hold is read back through berth's own interface and,
//! where it matters, independently ([`S3Client`] speaks S3 to SeaweedFS by
//! itself). A missing engine skips the case loudly, or fails it with
//! `BERTH_REQUIRE_OBJECT_STORES=1` (scripts/test.sh sets it).

mod common;

use std::ops::Range;
use std::time::Duration;

use berth::config::{AzureStorage, S3Storage, StorageConfig};
use berth::oci::digest::{Digest, DigestAlgorithm};
use berth::storage::{BlobStore, UploadPart};
use bytes::Bytes;
use common::*;
use futures::TryStreamExt;

/// The object store `config` names (of kind `name`), checked as berth
/// checks it at start.
fn object_store(name: &str, config: &StorageConfig) -> BlobStore {
    config
        .validate()
        .unwrap_or_else(|e| panic!("a valid {name} configuration: {e}"));
    BlobStore::open(config, std::path::Path::new("/nonexistent"))
        .unwrap_or_else(|e| panic!("{name} store: {e}"))
}

/// A store under test, with what keeps its engine running.
struct Driver {
    name: &'static str,
    store: BlobStore,
    /// Whether the backend signs URLs for reads.
    presigns: bool,
    /// For looking at a SeaweedFS bucket without berth.
    s3: Option<(S3Client, String)>,
    _engine: Engine,
}

#[allow(dead_code)]
enum Engine {
    Filesystem(tempfile::TempDir),
    Seaweed(SeaweedMini),
    Azurite(Azurite),
}

impl Driver {
    async fn filesystem() -> Option<Driver> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = BlobStore::open(&StorageConfig::default(), &dir.path().join("storage"))
            .expect("filesystem store");
        Some(Driver {
            name: "filesystem",
            store,
            presigns: false,
            s3: None,
            _engine: Engine::Filesystem(dir),
        })
    }

    async fn s3() -> Option<Driver> {
        let mini = SeaweedMini::start().await?;
        let config = StorageConfig {
            s3: Some(S3Storage {
                bucket: mini.bucket.clone(),
                region_endpoint: Some(mini.endpoint.clone()),
                access_key: Some(mini.access_key.clone()),
                secret_key: Some(mini.secret_key.clone()),
                // The smallest parts S3 allows, so that a few MiB make
                // several.
                chunk_size_mib: 5,
                root_directory: Some("registry".into()),
                ..S3Storage::default()
            }),
            ..StorageConfig::default()
        };
        Some(Driver {
            name: "s3",
            store: object_store("s3", &config),
            presigns: true,
            s3: Some((mini.s3.clone(), mini.bucket.clone())),
            _engine: Engine::Seaweed(mini),
        })
    }

    async fn azure() -> Option<Driver> {
        let azurite = Azurite::start().await?;
        let config = StorageConfig {
            azure: Some(AzureStorage {
                account_name: azurite.account.clone(),
                account_key: Some(azurite.key.clone()),
                container: azurite.container.clone(),
                endpoint: Some(azurite.endpoint.clone()),
                root_directory: Some("registry".into()),
                ..AzureStorage::default()
            }),
            ..StorageConfig::default()
        };
        Some(Driver {
            name: "azure",
            store: object_store("azure", &config),
            // OpenDAL signs Azure URLs only with a SAS token configured.
            presigns: false,
            s3: None,
            _engine: Engine::Azurite(azurite),
        })
    }

    /// Writes `content` as part `number` of `upload`, in pieces of `piece`
    /// bytes.
    async fn part(&self, upload: &str, number: u32, content: &[u8], piece: usize) -> UploadPart {
        let mut writer = self
            .store
            .write_part(upload, number)
            .await
            .unwrap_or_else(|e| panic!("{}: opening part {number}: {e}", self.name));
        for chunk in content.chunks(piece.max(1)) {
            writer
                .write(Bytes::copy_from_slice(chunk))
                .await
                .unwrap_or_else(|e| panic!("{}: writing part {number}: {e}", self.name));
        }
        let part = writer
            .close()
            .await
            .unwrap_or_else(|e| panic!("{}: closing part {number}: {e}", self.name));
        assert_eq!(part.number, number);
        assert_eq!(
            part.size,
            content.len() as u64,
            "{}: part {number}",
            self.name
        );
        part
    }

    /// `content` stored as the blob it is, through an upload of parts cut
    /// at `cuts`.
    async fn blob_of_parts(&self, upload: &str, content: &[u8], cuts: &[usize]) -> Digest {
        let mut parts = Vec::new();
        let mut start = 0;
        for (number, &end) in (1..).zip(cuts.iter().chain([&content.len()])) {
            parts.push(
                self.part(upload, number, &content[start..end], 64 * 1024)
                    .await,
            );
            start = end;
        }
        let digest = DigestAlgorithm::Sha256.digest_of(content);
        self.store
            .commit_upload(upload, &parts, &digest)
            .await
            .unwrap_or_else(|e| panic!("{}: committing {upload}: {e}", self.name));
        digest
    }

    async fn read(&self, digest: &Digest, range: Range<u64>) -> Vec<u8> {
        let stream = self
            .store
            .read_blob(digest, range.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("{}: reading {digest} {range:?}: {e}", self.name));
        let chunks: Vec<Bytes> = stream
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{}: reading {digest} {range:?}: {e}", self.name));
        chunks.concat()
    }

    async fn upload_ids(&self) -> Vec<String> {
        self.store.list_upload_ids().await.expect("listing uploads")
    }
}

macro_rules! driver_tests {
    ($($case:ident),* $(,)?) => {
        driver_tests!(@on filesystem: $($case),*);
        driver_tests!(@on s3: $($case),*);
        driver_tests!(@on azure: $($case),*);
    };
    // The cases as a module named after the driver, run on it.
    (@on $driver:ident: $($case:ident),*) => {
        mod $driver {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(driver) = super::Driver::$driver().await {
                        super::$case(&driver).await;
                    }
                }
            )*
        }
    };
}

driver_tests!(
    a_blob_of_several_parts_reads_whole_and_in_ranges,
    parts_straddling_the_stores_part_size_keep_their_order,
    one_part_and_no_part_make_blobs,
    a_part_never_recorded_is_left_out,
    an_aborted_part_leaves_nothing_that_counts,
    a_cancelled_upload_leaves_nothing,
    the_same_blob_committed_twice_is_one_blob,
    deleted_blobs_are_gone,
    recorded_parts_read_back_in_order,
    presigned_urls_read_the_blob_where_the_store_signs_them,
    the_store_answers_its_check,
);

/// Parts of uneven sizes, some smaller and some larger than an object
/// store's part size (5 MiB here), committed into one blob, read back
/// whole, at every part boundary and at its ends.
async fn a_blob_of_several_parts_reads_whole_and_in_ranges(driver: &Driver) {
    let content = blob_content("several parts", 13 * MIB + 321);
    let cuts = [1, 5 * MIB + 3, 6 * MIB, 12 * MIB + 7];
    let digest = driver.blob_of_parts("several", &content, &cuts).await;
    let size = content.len() as u64;
    assert_eq!(
        driver.store.blob_size(&digest).await.unwrap(),
        Some(size),
        "{}",
        driver.name
    );
    assert!(
        driver.read(&digest, 0..size).await == content,
        "{}: the blob's bytes",
        driver.name
    );
    let mut ranges: Vec<Range<u64>> = vec![0..1, size - 1..size, 0..size - 1, 1..size];
    for cut in cuts {
        let cut = cut as u64;
        ranges.extend([cut - 1..cut + 1, cut..cut + 1, cut - 1..cut, cut..size]);
    }
    ranges.push(3 * MIB as u64..11 * MIB as u64 + 5);
    for range in ranges {
        let expected = &content[range.start as usize..range.end as usize];
        assert!(
            driver.read(&digest, range.clone()).await == expected,
            "{}: range {range:?}",
            driver.name
        );
    }
    assert!(
        driver.upload_ids().await.is_empty(),
        "{}: the committed upload is gone",
        driver.name
    );
    if let Some((s3, bucket)) = &driver.s3 {
        // Independently of berth's client: the object is the blob.
        let key = format!(
            "registry/blobs/sha256/{}/{}",
            &digest.hex()[..2],
            digest.hex()
        );
        let object = s3.get_object(bucket, &key).await;
        object.expect_status(200, "the blob's object");
        assert!(object.body == content, "the object's bytes");
    }
}

/// Parts longer than an object store's part size (5 MiB here) that start
/// in the middle of one: the store copies their whole parts itself and
/// berth streams the pieces around them, which must land in order.
async fn parts_straddling_the_stores_part_size_keep_their_order(driver: &Driver) {
    let content = blob_content("straddling", 30 * MIB + 2);
    let cuts = [2 * MIB, 14 * MIB, 19 * MIB, 29 * MIB + 1];
    let digest = driver.blob_of_parts("straddling", &content, &cuts).await;
    let read = driver.read(&digest, 0..content.len() as u64).await;
    let first_difference = read.iter().zip(&content).position(|(a, b)| a != b);
    assert_eq!(
        (read.len(), first_difference),
        (content.len(), None),
        "{}: the blob's bytes",
        driver.name
    );
}

/// An upload of one part (a copy by the store) and one of none (the empty
/// blob).
async fn one_part_and_no_part_make_blobs(driver: &Driver) {
    let content = blob_content("one part", 6 * MIB + 1);
    let digest = driver.blob_of_parts("single", &content, &[]).await;
    assert!(
        driver.read(&digest, 0..content.len() as u64).await == content,
        "{}",
        driver.name
    );
    let small = driver.blob_of_parts("small", b"tiny", &[]).await;
    assert_eq!(driver.read(&small, 0..4).await, b"tiny", "{}", driver.name);

    let empty = DigestAlgorithm::Sha256.digest_of(b"");
    driver
        .store
        .commit_upload("empty", &[], &empty)
        .await
        .unwrap_or_else(|e| panic!("{}: the empty blob: {e}", driver.name));
    assert_eq!(
        driver.store.blob_size(&empty).await.unwrap(),
        Some(0),
        "{}",
        driver.name
    );
    assert!(driver.upload_ids().await.is_empty(), "{}", driver.name);
}

/// A part stored but never recorded (its writer killed before recording,
/// or beaten to it by another replica) does not reach the blob, whether a
/// recorded part follows it or not.
async fn a_part_never_recorded_is_left_out(driver: &Driver) {
    let first = driver.part("lost", 1, b"recorded-one|", 7).await;
    let _lost = driver.part("lost", 2, b"LOST-LOST-LOST", 5).await;
    let second = driver.part("lost", 2, b"recorded-two|", 3).await;
    let _lost_too = driver.part("lost", 3, b"TAIL", 2).await;
    let content = b"recorded-one|recorded-two|";
    let digest = DigestAlgorithm::Sha256.digest_of(content);
    driver
        .store
        .commit_upload("lost", &[first, second], &digest)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", driver.name));
    assert_eq!(
        driver.read(&digest, 0..content.len() as u64).await,
        content,
        "{}",
        driver.name
    );
    assert!(
        driver.upload_ids().await.is_empty(),
        "{}: the unrecorded parts went with the upload",
        driver.name
    );
}

/// A part given up midway counts for nothing; the next write of the same
/// part does.
async fn an_aborted_part_leaves_nothing_that_counts(driver: &Driver) {
    let first = driver.part("aborted", 1, b"kept ", 2).await;
    let mut writer = driver.store.write_part("aborted", 2).await.unwrap();
    writer
        .write(Bytes::from(blob_content("abandoned", 6 * MIB)))
        .await
        .unwrap();
    writer.abort().await;
    let second = driver.part("aborted", 2, b"and kept", 3).await;
    let digest = DigestAlgorithm::Sha256.digest_of(b"kept and kept");
    driver
        .store
        .commit_upload("aborted", &[first, second], &digest)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", driver.name));
    assert_eq!(
        driver.read(&digest, 0..13).await,
        b"kept and kept",
        "{}",
        driver.name
    );
}

/// Cancelling removes every part, recorded or not; other uploads stay.
async fn a_cancelled_upload_leaves_nothing(driver: &Driver) {
    driver
        .part("cancelled", 1, &blob_content("c1", MIB), MIB)
        .await;
    driver.part("cancelled", 2, b"more", 4).await;
    driver.part("kept", 1, b"another upload", 4).await;
    let mut ids = driver.upload_ids().await;
    ids.sort();
    assert_eq!(ids, ["cancelled", "kept"], "{}", driver.name);
    driver.store.delete_upload("cancelled").await.unwrap();
    assert_eq!(driver.upload_ids().await, ["kept"], "{}", driver.name);
    // Cancelling what is gone is no error.
    driver.store.delete_upload("cancelled").await.unwrap();
    driver.store.delete_upload("never-existed").await.unwrap();
}

/// Two uploads of the same content (two clients at once): the second
/// commit finds the blob and only removes its upload.
async fn the_same_blob_committed_twice_is_one_blob(driver: &Driver) {
    let content = blob_content("twice", 2 * MIB + 9);
    let digest = driver.blob_of_parts("first", &content, &[MIB]).await;
    let again = driver.blob_of_parts("second", &content, &[7]).await;
    assert_eq!(digest, again);
    assert!(
        driver.read(&digest, 0..content.len() as u64).await == content,
        "{}",
        driver.name
    );
    assert!(driver.upload_ids().await.is_empty(), "{}", driver.name);
}

async fn deleted_blobs_are_gone(driver: &Driver) {
    let digest = driver.blob_of_parts("deleted", b"short-lived", &[5]).await;
    assert_eq!(driver.store.blob_size(&digest).await.unwrap(), Some(11));
    driver.store.delete_blob(&digest).await.unwrap();
    assert_eq!(
        driver.store.blob_size(&digest).await.unwrap(),
        None,
        "{}",
        driver.name
    );
    let read = match driver.store.read_blob(&digest, 0..11, None).await {
        Ok(stream) => stream.try_collect::<Vec<Bytes>>().await.map(drop).err(),
        Err(e) => {
            assert!(e.is_not_found(), "{}: {e}", driver.name);
            None
        }
    };
    if let Some(e) = read {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::NotFound,
            "{}: {e}",
            driver.name
        );
    }
    // Deleting what is gone is no error.
    driver.store.delete_blob(&digest).await.unwrap();
}

/// The bytes of recorded parts, in order, for hashing again with another
/// algorithm.
async fn recorded_parts_read_back_in_order(driver: &Driver) {
    let one = driver.part("reread", 1, b"first ", 2).await;
    let _lost = driver.part("reread", 2, b"xxx", 2).await;
    let two = driver
        .part("reread", 2, &blob_content("second", MIB + 5), MIB)
        .await;
    let stream = driver
        .store
        .read_upload("reread", &[one.clone(), two.clone()])
        .await
        .unwrap();
    let read: Vec<Bytes> = stream.try_collect().await.unwrap();
    let mut expected = b"first ".to_vec();
    expected.extend(blob_content("second", MIB + 5));
    assert!(read.concat() == expected, "{}", driver.name);
    driver.store.delete_upload("reread").await.unwrap();
}

/// Where the store signs URLs, one reads the blob with no credentials
/// (what a client redirected by berth does); where it cannot, there is
/// none.
async fn presigned_urls_read_the_blob_where_the_store_signs_them(driver: &Driver) {
    let content = blob_content("presigned", MIB + 77);
    let digest = driver.blob_of_parts("presign", &content, &[100]).await;
    let url = driver
        .store
        .presign_read(&digest, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("{}: presigning: {e}", driver.name));
    match (url, driver.presigns) {
        (Some(url), true) => {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let response = client.get(url.as_str()).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "GET {url}");
            let body = response.bytes().await.unwrap();
            assert!(
                body == content,
                "{}: the presigned URL's bytes",
                driver.name
            );
            // A range, as clients resuming a pull ask for.
            let response = client
                .get(url.as_str())
                .header("range", "bytes=100-199")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 206);
            assert!(response.bytes().await.unwrap() == content[100..200]);
            // Tampering with the signature is refused.
            let forged = url
                .as_str()
                .replace("X-Amz-Signature=", "X-Amz-Signature=0");
            let response = client.get(forged).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 403, "a forged signature");
        }
        (None, false) => {}
        (url, presigns) => panic!(
            "{}: presign_read gave {url:?} where the backend {} sign",
            driver.name,
            if presigns { "should" } else { "should not" }
        ),
    }
}

async fn the_store_answers_its_check(driver: &Driver) {
    driver
        .store
        .check()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", driver.name));
    assert!(!driver.store.describe().is_empty());
}
