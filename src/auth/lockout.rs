//! The brute-force defence: failed logins counted per (user name, client
//! address), per user name and per client address.
//!
//! It must stop guessing without letting an attacker lock a real user out:
//!
//! - An address that failed too often for a user name is refused for that
//!   name (429 with `Retry-After`) until the lockout passes, right password
//!   or not. Other addresses are not: the same user logs in from elsewhere.
//! - A user name that failed too often, from whatever addresses, is under
//!   attack: password checks for it are slowed down (a short delay before
//!   each), never refused, so that guessing from many addresses is slow and
//!   the real user still gets in.
//! - An address that failed too often, whatever the names, is refused for
//!   everything until the lockout passes (one address spraying many users).
//! - Token logins (`berth_…` as the password, with any user name, or as a
//!   bearer token) are never keyed on the user name, which means nothing
//!   for them: guesses at a name do not stop its service accounts' tokens.
//!
//! The counts are kept in memory for the hot path, and shared by replicas
//! through the database (`AccessControl` writes each failure there and
//! adopts what other replicas counted, at most a second late): an attacker
//! spreading guesses over replicas meets the same limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failed password logins allowed per user name from one address
    /// within `window`; also, from all addresses together, the point at
    /// which the name is under attack and its logins are slowed down.
    pub per_user: u32,
    /// Failures allowed per client address within `window` (higher: many
    /// users may share an address).
    pub per_address: u32,
    pub window: Duration,
    /// How long an address over a limit is refused.
    pub duration: Duration,
    /// The delay before each password check of a user under attack.
    pub slowdown: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A user name from one address (`None`: address unknown).
    Pair(String, Option<IpAddr>),
    /// A user name from anywhere: never locked, only slowed down.
    User(String),
    Address(IpAddr),
}

impl Key {
    /// The key's name in the shared store. User names never contain a
    /// newline, so it separates the parts.
    pub fn encode(&self) -> String {
        match self {
            Key::Pair(user, Some(address)) => format!("pair\n{user}\n{address}"),
            Key::Pair(user, None) => format!("pair\n{user}\n-"),
            Key::User(user) => format!("user\n{user}"),
            Key::Address(address) => format!("address\n{address}"),
        }
    }

    pub fn decode(text: &str) -> Option<Key> {
        let mut parts = text.split('\n');
        let key = match (parts.next()?, parts.next()?, parts.next()) {
            ("pair", user, Some("-")) => Key::Pair(user.to_owned(), None),
            ("pair", user, Some(address)) => {
                Key::Pair(user.to_owned(), Some(address.parse().ok()?))
            }
            ("user", user, None) => Key::User(user.to_owned()),
            ("address", address, None) => Key::Address(address.parse().ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(key)
    }

    /// The user name whose failures the key counts.
    pub fn user(&self) -> Option<&str> {
        match self {
            Key::Pair(user, _) | Key::User(user) => Some(user),
            Key::Address(_) => None,
        }
    }
}

/// A key's state as the shared store has it: times in milliseconds since
/// the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct SharedFailures {
    pub count: u32,
    pub since: i64,
    pub locked_until: Option<i64>,
    pub now: i64,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// What to do with a login before its credentials are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the credentials now.
    Now,
    /// Check them after this delay (the user name is under attack).
    After(Duration),
    /// Refuse, whatever the credentials: retry after this long.
    Refused(Duration),
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

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a login may be checked: `user` is the name of a password
    /// login (`None` for token logins), `address` the client's.
    pub fn admit(&self, user: Option<&str>, address: Option<IpAddr>) -> Admission {
        let failures = self.failures();
        // The common case, on every authenticated request: nobody failing.
        if failures.is_empty() {
            return Admission::Now;
        }
        let now = Instant::now();
        let locked = |key: &Key| {
            failures
                .get(key)
                .and_then(|f| f.locked_until)
                .filter(|until| *until > now)
                .map(|until| until - now)
        };
        let mut keys = Vec::with_capacity(2);
        if let Some(address) = address {
            keys.push(Key::Address(address));
        }
        if let Some(user) = user {
            keys.push(Key::Pair(user.to_owned(), address));
        }
        if let Some(wait) = keys.iter().filter_map(locked).max() {
            return Admission::Refused(wait);
        }
        let under_attack = user.is_some_and(|user| {
            failures.get(&Key::User(user.to_owned())).is_some_and(|f| {
                f.since.elapsed() < self.policy.window && f.count >= self.policy.per_user
            })
        });
        if under_attack {
            Admission::After(self.policy.slowdown)
        } else {
            Admission::Now
        }
    }

    /// Counts a failed login: a password login's (`user` given) against the
    /// name from this address, the name, and the address; a token login's
    /// against the address only.
    pub fn record_failure(&self, user: Option<&str>, address: Option<IpAddr>) {
        let mut failures = self.failures();
        let now = Instant::now();
        if failures.len() >= MAX_TRACKED {
            let window = self.policy.window;
            failures.retain(|_, f| {
                f.since.elapsed() < window || f.locked_until.is_some_and(|u| u > now)
            });
        }
        for (key, limit) in self.failure_keys(user, address) {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                since: now,
                locked_until: None,
            });
            if entry.since.elapsed() >= self.policy.window
                && entry.locked_until.is_none_or(|u| u <= now)
            {
                *entry = Failures {
                    count: 0,
                    since: now,
                    locked_until: None,
                };
            }
            entry.count = entry.count.saturating_add(1);
            if limit.is_some_and(|limit| entry.count >= limit) {
                entry.locked_until = Some(now + self.policy.duration);
            }
        }
    }

    /// What a failed login counts against, with the count that locks each.
    pub fn failure_keys(
        &self,
        user: Option<&str>,
        address: Option<IpAddr>,
    ) -> Vec<(Key, Option<u32>)> {
        let mut keys = Vec::with_capacity(3);
        if let Some(address) = address {
            keys.push((Key::Address(address), Some(self.policy.per_address)));
        }
        if let Some(user) = user {
            keys.push((
                Key::Pair(user.to_owned(), address),
                Some(self.policy.per_user),
            ));
            keys.push((Key::User(user.to_owned()), None));
        }
        keys
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Takes a key's state from the shared store (which counts every
    /// replica's failures) in place of this replica's own.
    pub fn adopt(&self, key: Key, shared: SharedFailures) {
        let now = Instant::now();
        let at = |ms: i64| {
            let ago = Duration::from_millis(shared.now.saturating_sub(ms).max(0) as u64);
            let ahead = Duration::from_millis(ms.saturating_sub(shared.now).max(0) as u64);
            now.checked_sub(ago).unwrap_or(now) + ahead
        };
        let locked_until = shared.locked_until.filter(|u| *u > shared.now).map(at);
        let mut failures = self.failures();
        if shared.count == 0 && locked_until.is_none() {
            failures.remove(&key);
        } else {
            failures.insert(
                key,
                Failures {
                    count: shared.count,
                    since: at(shared.since),
                    locked_until,
                },
            );
        }
    }

    /// A successful password login clears the failures of its name from its
    /// address (not the address's, nor the name's elsewhere). Returns the
    /// key if there were any, to clear in the shared store too.
    pub fn record_success(&self, user: &str, address: Option<IpAddr>) -> Option<Key> {
        let key = Key::Pair(user.to_owned(), address);
        self.failures().remove(&key).map(|_| key)
    }

    /// Forgets every failure counted against `user` (an admin's unlock).
    /// Returns whether it was locked out anywhere or under attack.
    pub fn unlock(&self, user: &str) -> bool {
        let now = Instant::now();
        let window = self.policy.window;
        let mut was = false;
        self.failures().retain(|key, f| {
            let forget = match key {
                Key::Pair(name, _) | Key::User(name) => name == user,
                Key::Address(_) => false,
            };
            if forget {
                was |= f.locked_until.is_some_and(|u| u > now)
                    || (matches!(key, Key::User(_))
                        && f.since.elapsed() < window
                        && f.count >= self.policy.per_user);
            }
            !forget
        });
        was
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
            slowdown: Duration::from_millis(50),
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_guessing_a_user_is_refused_for_that_user_then_released() {
        let l = Lockout::new(policy());
        let here = ip("10.0.0.1");
        for _ in 0..2 {
            l.record_failure(Some("alice"), here);
            assert_eq!(l.admit(Some("alice"), here), Admission::Now);
        }
        l.record_failure(Some("alice"), here);
        let Admission::Refused(wait) = l.admit(Some("alice"), here) else {
            panic!("not refused")
        };
        assert!(wait <= Duration::from_millis(200));
        // Another user from the same address is not locked out.
        assert_eq!(l.admit(Some("bob"), here), Admission::Now);
        std::thread::sleep(Duration::from_millis(250));
        assert!(!matches!(
            l.admit(Some("alice"), here),
            Admission::Refused(_)
        ));
    }

    #[test]
    fn a_user_under_attack_elsewhere_is_slowed_down_not_refused() {
        let l = Lockout::new(policy());
        // Guesses from two addresses, under the per-address limits.
        for address in ["10.0.0.1", "10.0.0.2"] {
            l.record_failure(Some("alice"), ip(address));
            l.record_failure(Some("alice"), ip(address));
        }
        // alice, from an address that has not been failing.
        assert_eq!(
            l.admit(Some("alice"), ip("10.0.0.9")),
            Admission::After(Duration::from_millis(50))
        );
        assert_eq!(l.admit(Some("bob"), ip("10.0.0.9")), Admission::Now);
        // A token login is not keyed on the name at all.
        assert_eq!(l.admit(None, ip("10.0.0.9")), Admission::Now);
    }

    #[test]
    fn token_logins_are_not_refused_for_a_name_locked_at_their_address() {
        let l = Lockout::new(policy());
        let here = ip("10.0.0.3");
        for _ in 0..3 {
            l.record_failure(Some("bot"), here);
        }
        assert!(matches!(l.admit(Some("bot"), here), Admission::Refused(_)));
        assert_eq!(l.admit(None, here), Admission::Now);
    }

    #[test]
    fn an_address_spraying_many_users_is_refused_for_all() {
        let l = Lockout::new(policy());
        let here = ip("10.0.0.2");
        for i in 0..5 {
            l.record_failure(Some(&format!("user{i}")), here);
        }
        assert!(matches!(
            l.admit(Some("fresh"), here),
            Admission::Refused(_)
        ));
        assert!(matches!(l.admit(None, here), Admission::Refused(_)));
        assert_eq!(l.admit(Some("fresh"), ip("10.0.0.3")), Admission::Now);
        // Failed token logins count against the address too.
        let there = ip("10.0.0.4");
        for _ in 0..5 {
            l.record_failure(None, there);
        }
        assert!(matches!(l.admit(None, there), Admission::Refused(_)));
    }

    #[test]
    fn success_clears_the_pair_only() {
        let l = Lockout::new(policy());
        let here = ip("10.0.0.5");
        l.record_failure(Some("alice"), here);
        l.record_failure(Some("alice"), here);
        l.record_success("alice", here);
        l.record_failure(Some("alice"), here);
        // Not refused here, though three failures make her slowed down.
        assert_eq!(
            l.admit(Some("alice"), here),
            Admission::After(Duration::from_millis(50))
        );
    }

    #[test]
    fn unlock_forgets_a_user_everywhere_but_not_addresses() {
        let l = Lockout::new(LockoutPolicy {
            per_address: 4,
            ..policy()
        });
        let (a, b) = (ip("10.0.0.6"), ip("10.0.0.7"));
        for _ in 0..3 {
            l.record_failure(Some("alice"), a);
        }
        l.record_failure(Some("carol"), b);
        assert!(matches!(l.admit(Some("alice"), a), Admission::Refused(_)));
        assert!(l.unlock("alice"));
        assert_eq!(l.admit(Some("alice"), a), Admission::Now);
        assert_eq!(l.admit(Some("alice"), b), Admission::Now);
        assert!(!l.unlock("alice"), "nothing left to unlock");
        // One more failure from `a` reaches the address's own limit, which
        // unlocking a user does not lift.
        l.record_failure(Some("dave"), a);
        l.unlock("dave");
        assert!(matches!(l.admit(Some("alice"), a), Admission::Refused(_)));
    }
}
