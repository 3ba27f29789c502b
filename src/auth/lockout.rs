//! Limits on failed logins, per user name and per client address. A client
//! over either limit is refused (429 with `Retry-After`) until the lockout
//! passes, whether or not its next attempt would have been right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures allowed per user name within `window`.
    pub per_user: u32,
    /// Failures allowed per client address within `window` (higher: many
    /// users may share an address).
    pub per_address: u32,
    pub window: Duration,
    /// How long a client over a limit is refused.
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Entries kept at most; beyond this, expired ones are dropped.
const MAX_TRACKED: usize = 100_000;

pub struct Lockout {
    policy: LockoutPolicy,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: Option<&str>, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
        user.map(|u| Key::User(u.to_owned()))
            .into_iter()
            .chain(address.map(Key::Address))
    }

    /// `Err(retry after)` if the user or the address is locked out.
    pub fn check(&self, user: Option<&str>, address: Option<IpAddr>) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let wait = Self::keys(user, address)
            .filter_map(|k| failures.get(&k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, user: Option<&str>, address: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if failures.len() >= MAX_TRACKED {
            let window = self.policy.window;
            failures.retain(|_, f| {
                f.since.elapsed() < window || f.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in Self::keys(user, address) {
            let limit = match key {
                Key::User(_) => self.policy.per_user,
                Key::Address(_) => self.policy.per_address,
            };
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                since: now,
                locked_until: None,
            });
            if entry.since.elapsed() >= self.policy.window {
                *entry = Failures {
                    count: 0,
                    since: now,
                    locked_until: None,
                };
            }
            entry.count += 1;
            if entry.count >= limit {
                entry.locked_until = Some(now + self.policy.duration);
            }
        }
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn record_success(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Key::User(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            per_user: 3,
            per_address: 5,
            window: Duration::from_secs(60),
            duration: Duration::from_millis(200),
        }
    }

    #[test]
    fn locks_a_user_after_repeated_failures_then_releases() {
        let l = Lockout::new(policy());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            l.record_failure(Some("alice"), Some(ip));
            assert!(l.check(Some("alice"), Some(ip)).is_ok());
        }
        l.record_failure(Some("alice"), Some(ip));
        let wait = l.check(Some("alice"), None).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        // Another user from the same address is not yet locked.
        assert!(l.check(Some("bob"), Some(ip)).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check(Some("alice"), Some(ip)).is_ok());
    }

    #[test]
    fn locks_an_address_spraying_many_users() {
        let l = Lockout::new(policy());
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..5 {
            l.record_failure(Some(&format!("user{i}")), Some(ip));
        }
        assert!(l.check(Some("fresh"), Some(ip)).is_err());
        assert!(
            l.check(Some("fresh"), Some("10.0.0.3".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn success_clears_user_failures() {
        let l = Lockout::new(policy());
        l.record_failure(Some("alice"), None);
        l.record_failure(Some("alice"), None);
        l.record_success("alice");
        l.record_failure(Some("alice"), None);
        assert!(l.check(Some("alice"), None).is_ok());
    }
}
