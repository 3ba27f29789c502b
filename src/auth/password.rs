//! Password hashing with argon2id. Hashes are PHC strings, so parameters
//! can change later without invalidating stored hashes.
//!
//! A hash holds 19 MiB of memory while it runs (argon2's `m=19456`), and
//! anyone can make berth compute one (a wrong password, for any user name).
//! Requests therefore hash through [`hash_bounded`] and [`verify_bounded`],
//! which run at most one hash per core at once: more would not finish
//! sooner, only hold more memory (measured: 16 wrong passwords at once took
//! a fresh server from 14 to over 300 MiB resident).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashes allowed to run at once: one per core.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(hashing_limit()));

/// Hashes running now, and the most that ever ran at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many hashes may run at once: the number of cores berth may use.
pub fn hashing_limit() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most hashes that ran at once since berth started.
#[cfg(test)]
fn most_hashes_at_once() -> usize {
    MOST_RUNNING.load(Ordering::Relaxed)
}

/// Why a bounded hash did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("hashing a password: {0}")]
    Hash(#[from] argon2::password_hash::Error),
    #[error("the password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("password hashing is shut down")]
    Closed(#[from] tokio::sync::AcquireError),
}

/// Runs `work` on a blocking thread once a hashing permit is free. The
/// permit goes with the work: a request dropped while its hash runs does
/// not free the permit before the hash (and its memory) is done.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashingError> {
    let permit = HASHING.acquire().await?;
    // The permit is forgotten here and added back by the blocking task when
    // the hash is done, so that it is held for exactly as long as the hash
    // runs, whatever happens to the request.
    permit.forget();
    let task = tokio::task::spawn_blocking(move || {
        let running = RUNNING.fetch_add(1, Ordering::Relaxed) + 1;
        MOST_RUNNING.fetch_max(running, Ordering::Relaxed);
        let result = work();
        RUNNING.fetch_sub(1, Ordering::Relaxed);
        HASHING.add_permits(1);
        result
    });
    Ok(task.await?)
}

/// [`hash`] on a blocking thread, at most [`hashing_limit`] at once.
pub async fn hash_bounded(password: String) -> Result<String, HashingError> {
    Ok(bounded(move || hash(&password)).await??)
}

/// [`verify`] on a blocking thread, at most [`hashing_limit`] at once.
pub async fn verify_bounded(password: String, phc: String) -> Result<bool, HashingError> {
    bounded(move || verify(&password, &phc)).await
}

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_run_at_most_one_per_core_at_once() {
        let h = hash_bounded("right".into()).await.unwrap();
        let limit = hashing_limit();
        let checks = (0..4 * limit + 2).map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let password = if i % 2 == 0 { "right" } else { "wrong" };
                (i, verify_bounded(password.into(), h).await.unwrap())
            })
        });
        for check in futures::future::join_all(checks).await {
            let (i, matched) = check.unwrap();
            assert_eq!(matched, i % 2 == 0);
        }
        let most = most_hashes_at_once();
        assert!(
            most >= 1 && most <= limit,
            "{most} hashes ran at once, limit {limit}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_keeps_its_permit_until_its_hash_is_done() {
        // Requests given up on at once (a client that disconnects) must not
        // let more hashes run than the limit.
        for _ in 0..3 * hashing_limit() {
            let abandoned = tokio::spawn(verify_bounded("x".into(), DUMMY_HASH.into()));
            tokio::task::yield_now().await;
            abandoned.abort();
        }
        // Every permit comes back: a leak would leave this waiting forever.
        let after = verify_bounded("x".into(), DUMMY_HASH.into());
        let after = tokio::time::timeout(std::time::Duration::from_secs(60), after).await;
        assert!(matches!(after, Ok(Ok(false))));
        assert!(most_hashes_at_once() <= hashing_limit());
    }

    #[test]
    fn secrets_are_random() {
        assert_ne!(random_secret(24), random_secret(24));
        assert_eq!(random_secret(24).len(), 32);
    }
}
