//! Password hashing with argon2id. Hashes are PHC strings, so parameters
//! can change later without invalidating stored hashes.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A valid hash of a random secret, verified against when a user does not
/// exist so that failures take the same time either way.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YmVydGgtZHVtbXktc2FsdA$0O7GyBLgr2lQ0Zfj8L0QGxPvxZbcJYbQ5Jq3QfvN8yI";

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Constant-time verification (inside argon2) of `password` against a PHC hash.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random secret of `bytes` bytes, URL-safe base64 (for generated passwords).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn dummy_hash_parses_and_matches_nothing_obvious() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("", DUMMY_HASH));
        assert!(!verify("admin", DUMMY_HASH));
    }

    #[test]
    fn secrets_are_random() {
        assert_ne!(random_secret(24), random_secret(24));
        assert_eq!(random_secret(24).len(), 32);
    }
}
