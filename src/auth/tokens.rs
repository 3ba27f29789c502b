//! Opaque tokens: random secrets that stand for a user or service account.
//! Only their SHA-256 is stored; a token is 256 random bits, so a fast hash
//! is as good as a slow one and keeps each request cheap.

use super::password::random_secret;
use crate::oci::digest::DigestAlgorithm;

/// Marks berth tokens so that they are told from passwords without a lookup,
/// and so that secret scanners can recognise them.
pub const TOKEN_PREFIX: &str = "berth_";

/// A new token secret: the prefix and 32 random bytes.
pub fn new_secret() -> String {
    format!("{TOKEN_PREFIX}{}", random_secret(32))
}

pub fn looks_like_token(secret: &str) -> bool {
    secret.starts_with(TOKEN_PREFIX)
}

/// What is stored for a secret.
pub fn secret_hash(secret: &str) -> String {
    DigestAlgorithm::Sha256
        .digest_of(secret.as_bytes())
        .hex()
        .to_owned()
}

/// A token name: `<prefix>-<5 random lowercase characters>`, like the
/// generated names OpenShift gives secrets.
pub fn generated_name(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = new_secret();
        assert!(looks_like_token(&a));
        assert!(!looks_like_token("hunter2"));
        assert_ne!(a, new_secret());
        assert_eq!(secret_hash(&a).len(), 64);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&new_secret()));
    }

    #[test]
    fn generated_names() {
        let n = generated_name("builder-token");
        assert!(n.starts_with("builder-token-"));
        assert_eq!(n.len(), "builder-token-".len() + 5);
    }
}
