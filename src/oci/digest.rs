//! Content digests (`algorithm:hex`) and the streaming hasher that computes them.
//!
//! berth accepts the two algorithms the OCI image spec registers, `sha256` and
//! `sha512`. Hashing uses aws-lc-rs, the fastest implementation available on
//! CPUs without SHA extensions; a push is bounded by this hash, so it matters.

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
