//! Content digests (`algorithm:hex`) and the streaming hashers that compute
//! them.
//!
//! berth accepts the two algorithms the OCI image spec registers, `sha256` and
//! `sha512`. [`Hasher`] uses aws-lc-rs, the fastest implementation available
//! on CPUs without SHA extensions. [`ResumableHasher`] (uploads) uses the
//! RustCrypto `sha2` crate, whose state can be written down at a chunk
//! boundary and taken up again by another process: an upload continued on
//! another replica is not hashed again from the start. On CPUs with SHA
//! extensions both hash at the same speed (docs/benchmarks.md).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest as lc;
use serde::{Deserialize, Serialize};

/// A hash algorithm berth can verify content with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding of a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn lc_algorithm(self) -> &'static lc::Algorithm {
        match self {
            DigestAlgorithm::Sha256 => &lc::SHA256,
            DigestAlgorithm::Sha512 => &lc::SHA512,
        }
    }

    pub fn hasher(self) -> Hasher {
        Hasher {
            algorithm: self,
            context: lc::Context::new(self.lc_algorithm()),
        }
    }

    /// Digest of an in-memory byte slice (manifests, small blobs).
    pub fn digest_of(self, bytes: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(DigestAlgorithm::Sha256),
            "sha512" => Ok(DigestAlgorithm::Sha512),
            other => Err(DigestError::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} is not of the form algorithm:hex")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported (sha256 and sha512 are)")]
    UnsupportedAlgorithm(String),
    #[error(
        "digest {0:?} has an encoded part of the wrong length or with characters other than lowercase hex"
    )]
    BadEncoding(String),
}

/// A validated digest such as `sha256:e3b0…`. Stored as the canonical string,
/// so it can be used as a key and printed without allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    text: Box<str>,
}

impl Digest {
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hex part after the colon.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        if algorithm.is_empty() || hex.is_empty() {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        let algorithm: DigestAlgorithm = algorithm.parse()?;
        let well_formed = hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(DigestError::BadEncoding(s.to_owned()));
        }
        Ok(Digest {
            algorithm,
            text: s.into(),
        })
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The raw 32-byte SHA-256 of `bytes`, for keys that are never shown.
pub fn sha256_raw(bytes: &[u8]) -> [u8; 32] {
    let out = lc::digest(&lc::SHA256, bytes);
    let mut key = [0u8; 32];
    key.copy_from_slice(out.as_ref());
    key
}

/// Incremental hasher; cloneable so an upload's state can be kept between
/// chunks without re-reading what was already received.
#[derive(Clone)]
pub struct Hasher {
    algorithm: DigestAlgorithm,
    context: lc::Context,
}

impl Hasher {
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
    }

    pub fn finish(self) -> Digest {
        let out = self.context.finish();
        let text = format!("{}:{}", self.algorithm, hex::encode(out.as_ref()));
        Digest {
            algorithm: self.algorithm,
            text: text.into(),
        }
    }
}

/// A hash whose state can be saved between two chunks of an upload and
/// restored in another process ([`ResumableHasher::state`],
/// [`ResumableHasher::resume`]).
#[derive(Clone)]
pub enum ResumableHasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// A saved hash state that cannot be taken up again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("saved {algorithm} hash state of {len} bytes is not valid")]
pub struct HashStateError {
    pub algorithm: DigestAlgorithm,
    pub len: usize,
}

impl ResumableHasher {
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        use sha2::Digest as _;
        match algorithm {
            DigestAlgorithm::Sha256 => ResumableHasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => ResumableHasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        match self {
            ResumableHasher::Sha256(_) => DigestAlgorithm::Sha256,
            ResumableHasher::Sha512(_) => DigestAlgorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            ResumableHasher::Sha256(h) => h.update(bytes),
            ResumableHasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        let (algorithm, out) = match self {
            ResumableHasher::Sha256(h) => (DigestAlgorithm::Sha256, h.finalize().to_vec()),
            ResumableHasher::Sha512(h) => (DigestAlgorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            text: format!("{algorithm}:{}", hex::encode(out)).into(),
        }
    }

    /// The state as bytes (104 for SHA-256, 208 for SHA-512): the chaining
    /// words, the count of blocks hashed and the bytes of the partial block.
    /// Its layout is sha2 0.11's; it is not authenticated, so it belongs
    /// next to the byte count it goes with, written together.
    pub fn state(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState as _;
        match self {
            ResumableHasher::Sha256(h) => h.serialize().to_vec(),
            ResumableHasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// Takes up a hash where [`ResumableHasher::state`] left it.
    pub fn resume(algorithm: DigestAlgorithm, state: &[u8]) -> Result<Self, HashStateError> {
        use sha2::digest::common::hazmat::{SerializableState, SerializedState};
        let invalid = || HashStateError {
            algorithm,
            len: state.len(),
        };
        match algorithm {
            DigestAlgorithm::Sha256 => {
                let saved =
                    SerializedState::<sha2::Sha256>::try_from(state).map_err(|_| invalid())?;
                sha2::Sha256::deserialize(&saved)
                    .map(ResumableHasher::Sha256)
                    .map_err(|_| invalid())
            }
            DigestAlgorithm::Sha512 => {
                let saved =
                    SerializedState::<sha2::Sha512>::try_from(state).map_err(|_| invalid())?;
                sha2::Sha512::deserialize(&saved)
                    .map(ResumableHasher::Sha512)
                    .map_err(|_| invalid())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A hash saved and resumed at any byte gives the digest of the whole.
    #[test]
    fn resumed_hashes_equal_one_shot() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            for cut in [0, 1, 63, 64, 65, 127, 128, 129, 4097, 299_999, 300_000] {
                let mut first = ResumableHasher::new(algorithm);
                first.update(&data[..cut]);
                let saved = first.state();
                let mut second = ResumableHasher::resume(algorithm, &saved).unwrap();
                second.update(&data[cut..]);
                assert_eq!(
                    second.finish(),
                    algorithm.digest_of(&data),
                    "{algorithm} cut at {cut}"
                );
            }
        }
        let saved = ResumableHasher::new(DigestAlgorithm::Sha256).state();
        assert_eq!(saved.len(), 104);
        assert!(ResumableHasher::resume(DigestAlgorithm::Sha512, &saved).is_err());
        assert!(ResumableHasher::resume(DigestAlgorithm::Sha256, &saved[1..]).is_err());
        assert!(ResumableHasher::resume(DigestAlgorithm::Sha256, &[0xff; 104]).is_err());
    }

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_empty_input() {
        assert_eq!(
            DigestAlgorithm::Sha256.digest_of(b"").as_str(),
            EMPTY_SHA256
        );
        assert_eq!(
            DigestAlgorithm::Sha512.digest_of(b"").as_str(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = DigestAlgorithm::Sha256.hasher();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(
            h.finish(),
            DigestAlgorithm::Sha256.digest_of(b"hello world")
        );
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} should be rejected");
        }
        assert!(EMPTY_SHA256.parse::<Digest>().is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = s.parse::<Digest>();
        }

        #[test]
        fn computed_digests_round_trip(data in proptest::collection::vec(any::<u8>(), 0..256), sha512 in any::<bool>()) {
            let algorithm = if sha512 { DigestAlgorithm::Sha512 } else { DigestAlgorithm::Sha256 };
            let digest = algorithm.digest_of(&data);
            let reparsed: Digest = digest.as_str().parse().unwrap();
            prop_assert_eq!(&reparsed, &digest);
            prop_assert_eq!(reparsed.hex().len(), algorithm.hex_len());
        }

        #[test]
        fn accepts_any_well_formed_hex(hex in "[0-9a-f]{64}") {
            let digest: Digest = format!("sha256:{hex}").parse().unwrap();
            prop_assert_eq!(digest.hex(), hex.as_str());
        }
    }
}
