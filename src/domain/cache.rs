//! A cache of what pulls read (manifests and tag lists).
//!
//! Manifest reads are the bulk of registry traffic and each costs a database
//! round trip; with the cache, a repeated `GET`/`HEAD` of a manifest, or a
//! page of a repository's tags, costs a hash-map lookup. Every write that can
//! change what a repository's references resolve to invalidates that
//! repository. A generation counter closes the race between a read that
//! started before a write and finishes after it: what such a read found is
//! not cached.
//!
//! On the embedded database this process makes every write
//! ([`Coherence::Local`]). On PostgreSQL other replicas write too
//! ([`Coherence::Shared`]): their writes reach the cache through
//! [`crate::metadata::changes`] (the database notifies every listening
//! replica as a write commits), and the cache serves only while that
//! listener has caught up with the database within [`STALENESS_BOUND`]. So
//! a change acknowledged by any replica is never served stale by another
//! more than [`STALENESS_BOUND`] later (typically a few milliseconds later),
//! and while the listener is disconnected the cache holds nothing and every
//! pull reads the database. Entries also expire after [`SHARED_TTL`], in
//! case a change reaches the database some way its triggers do not see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metadata::changes::{ChangeSink, HEARTBEAT};
use crate::metadata::{StoredManifest, Timestamp, now};
use crate::oci::names::{Reference, RepositoryName};

/// Memory the cached manifests may take, entries and all.
const BUDGET_BYTES: usize = 8 << 20;

/// Memory the cached tag lists may take, over all repositories.
const TAG_BUDGET_BYTES: usize = 4 << 20;

/// What the allocator adds to each heap block (glibc: 16 bytes on 64-bit).
const BLOCK_HEADER: usize = 16;

/// How far behind the database a shared cache may be and still serve: the
/// listener confirms it has caught up every [`HEARTBEAT`], so this allows
/// four heartbeats to be late before the cache steps aside.
pub const STALENESS_BOUND: Duration = HEARTBEAT.saturating_mul(5);

/// How long a shared cache keeps an entry, whatever it is told.
pub const SHARED_TTL: Duration = Duration::from_secs(10);

type ManifestKey = (RepositoryName, String);

/// A cached value and when it was read from the database.
#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    read_at: Instant,
    /// When a tag it depends on expires (milliseconds since the epoch):
    /// past it the entry is not served, whatever else holds.
    until: Option<Timestamp>,
}

impl<T> Entry<T> {
    fn expired(&self) -> bool {
        self.until.is_some_and(|until| until <= now())
    }
}

/// What one cached manifest costs beyond the bytes it holds: the map's slot,
/// with its share of the empty slots (the map is at most 7/8 full), the
/// allocator's header of each of its heap blocks (the repository name, the
/// reference, the digest, the media type, the manifest bytes) and the
/// manifest bytes' shared header.
const MANIFEST_ENTRY_OVERHEAD: usize = size_of::<(ManifestKey, Entry<StoredManifest>)>() * 8 / 7
    + 5 * BLOCK_HEADER
    + 32
    + BLOCK_HEADER;

/// What one cached tag list costs beyond its tags: the map's slot (as
/// above), the repository name's block header and the list's shared
/// allocation.
const TAG_ENTRY_OVERHEAD: usize =
    size_of::<(RepositoryName, Entry<CachedTags>)>() * 8 / 7 + BLOCK_HEADER + 16 + BLOCK_HEADER;

/// The memory a cached manifest takes: counting its bytes alone let small
/// manifests take several times the budget.
fn manifest_entry_bytes(key: &ManifestKey, manifest: &StoredManifest) -> usize {
    MANIFEST_ENTRY_OVERHEAD
        + key.0.as_str().len()
        + key.1.len()
        + manifest.meta.digest.as_str().len()
        + manifest.meta.media_type.len()
        + manifest.content.len()
}

/// The memory a cached tag list takes.
/// Puts `entry` under `key` in a map whose entries cost `bytes` in all
/// (each as `cost` counts it), replacing what the key held and evicting
/// other entries until they fit in `budget`.
fn insert_within<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, Entry<V>>,
    bytes: &mut usize,
    budget: usize,
    key: K,
    entry: Entry<V>,
    cost: fn(&K, &V) -> usize,
) {
    let size = cost(&key, &entry.value);
    if let Some(old) = map.remove(&key) {
        *bytes -= cost(&key, &old.value);
    }
    while *bytes + size > budget {
        let Some(victim) = map.keys().next().cloned() else {
            break;
        };
        if let Some(evicted) = map.remove(&victim) {
            *bytes -= cost(&victim, &evicted.value);
        }
    }
    map.insert(key, entry);
    *bytes += size;
}

fn tag_entry_bytes(repo: &RepositoryName, tags: &CachedTags) -> usize {
    TAG_ENTRY_OVERHEAD + repo.as_str().len() + tags.bytes()
}

/// Repositories with more tags than this are listed from the database, page
/// by page, instead of being held whole.
pub const MAX_CACHED_TAGS: u32 = 10_000;

/// What the cache knows of a repository's tags.
#[derive(Debug, Clone)]
pub enum CachedTags {
    /// Every tag, sorted bytewise (the database's order).
    All(Arc<[String]>),
    /// More than [`MAX_CACHED_TAGS`]: not held.
    TooMany,
}

impl CachedTags {
    /// The tags' memory: each name's block and its slot in the list.
    fn bytes(&self) -> usize {
        match self {
            CachedTags::All(tags) => tags
                .iter()
                .map(|t| t.len() + BLOCK_HEADER + size_of::<String>())
                .sum(),
            CachedTags::TooMany => 0,
        }
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation.
    generation: u64,
    manifests: HashMap<ManifestKey, Entry<StoredManifest>>,
    bytes: usize,
    tags: HashMap<RepositoryName, Entry<CachedTags>>,
    tag_bytes: usize,
}

/// Who else changes what the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coherence {
    /// Nothing is cached.
    Off,
    /// Only this process: it forgets what it changes as it writes.
    Local,
    /// Other processes too; their changes arrive as a [`ChangeSink`].
    Shared,
}

pub struct PullCache {
    coherence: Coherence,
    state: Mutex<State>,
    /// When the change listener last caught up (nanoseconds after `origin`
    /// plus one; 0: it has not since it was last lost). Shared only.
    caught_up: AtomicU64,
    origin: Instant,
}

/// Where a read started, to decide whether its result may be cached.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

fn key(repo: &RepositoryName, reference: &Reference) -> ManifestKey {
    (repo.clone(), reference.to_string())
}

impl PullCache {
    pub fn new(coherence: Coherence) -> Self {
        PullCache {
            coherence,
            state: Mutex::new(State::default()),
            caught_up: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.coherence != Coherence::Off
    }

    /// Whether what is held may be served now: always for a local cache; for
    /// a shared one, while the listener caught up within [`STALENESS_BOUND`].
    fn current(&self) -> bool {
        match self.coherence {
            Coherence::Off => false,
            Coherence::Local => true,
            Coherence::Shared => match self.caught_up.load(Ordering::Acquire) {
                0 => false,
                at => {
                    let age = self.origin.elapsed().as_nanos() as u64;
                    age.saturating_sub(at - 1) <= STALENESS_BOUND.as_nanos() as u64
                }
            },
        }
    }

    /// Whether an entry read at `read_at` is still young enough.
    fn young(&self, read_at: Instant) -> bool {
        self.coherence != Coherence::Shared || read_at.elapsed() < SHARED_TTL
    }

    /// Where a read that began at `ticket` keeps what it found, and when it
    /// is kept from; `None` (keep nothing) if the cache is behind the
    /// database or anything was invalidated since.
    fn to_keep(&self, ticket: Ticket) -> Option<(Instant, std::sync::MutexGuard<'_, State>)> {
        if !self.current() {
            return None;
        }
        let read_at = Instant::now();
        let state = self.state();
        (state.generation == ticket.0).then_some((read_at, state))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest, Ticket> {
        self.fresh(|state| state.manifests.get(&key(repo, reference)))
    }

    /// Keeps what a read that began at `ticket` found, unless anything was
    /// invalidated meanwhile.
    pub fn put(
        &self,
        ticket: Ticket,
        repo: &RepositoryName,
        reference: &Reference,
        manifest: &StoredManifest,
    ) {
        let Some((read_at, mut state)) = self.to_keep(ticket) else {
            return;
        };
        let key = key(repo, reference);
        if manifest_entry_bytes(&key, manifest) > BUDGET_BYTES / 4 {
            return;
        }
        let entry = Entry {
            value: manifest.clone(),
            read_at,
            until: manifest.expires_at,
        };
        let State {
            manifests, bytes, ..
        } = &mut *state;
        insert_within(
            manifests,
            bytes,
            BUDGET_BYTES,
            key,
            entry,
            manifest_entry_bytes,
        );
    }

    pub fn tags(&self, repo: &RepositoryName) -> Result<CachedTags, Ticket> {
        self.fresh(|state| state.tags.get(repo))
    }

    /// The entry `find` picks, if it may be served: the cache is on and
    /// current, and the entry young and not expired. Otherwise the ticket
    /// a read that fills the cache takes.
    fn fresh<V: Clone>(&self, find: impl FnOnce(&State) -> Option<&Entry<V>>) -> Result<V, Ticket> {
        if !self.enabled() {
            return Err(Ticket(0));
        }
        let current = self.current();
        let state = self.state();
        match find(&state) {
            Some(found) if current && self.young(found.read_at) && !found.expired() => {
                Ok(found.value.clone())
            }
            _ => Err(Ticket(state.generation)),
        }
    }

    /// Keeps the tag list a read that began at `ticket` found, unless
    /// anything was invalidated meanwhile, until `until` (when the first
    /// of its tags expires) at most.
    pub fn put_tags(
        &self,
        ticket: Ticket,
        repo: &RepositoryName,
        tags: &CachedTags,
        until: Option<Timestamp>,
    ) {
        let Some((read_at, mut state)) = self.to_keep(ticket) else {
            return;
        };
        // A list too big to hold is remembered as such, so that its pages
        // are not each preceded by a read of the whole list.
        let tags = match tag_entry_bytes(repo, tags) {
            size if size > TAG_BUDGET_BYTES / 4 => CachedTags::TooMany,
            _ => tags.clone(),
        };
        let entry = Entry {
            value: tags,
            read_at,
            until,
        };
        let State {
            tags, tag_bytes, ..
        } = &mut *state;
        insert_within(
            tags,
            tag_bytes,
            TAG_BUDGET_BYTES,
            repo.clone(),
            entry,
            tag_entry_bytes,
        );
    }

    /// Forgets everything cached for `repo`; call after any change to its
    /// manifests or tags.
    pub fn invalidate(&self, repo: &RepositoryName) {
        self.invalidate_matching(|r| r == repo);
    }

    /// Forgets everything cached for the repositories of `namespace`; call
    /// after deleting them with their project.
    pub fn invalidate_namespace(&self, namespace: &str) {
        self.invalidate_matching(|r| r.namespace() == namespace);
    }

    fn invalidate_matching(&self, matches: impl Fn(&RepositoryName) -> bool) {
        if !self.enabled() {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        let mut freed_tags = 0;
        state.tags.retain(|r, tags| {
            let keep = !matches(r);
            if !keep {
                freed_tags += tag_entry_bytes(r, &tags.value);
            }
            keep
        });
        state.tag_bytes -= freed_tags;
        let mut freed = 0;
        state.manifests.retain(|key, m| {
            let keep = !matches(&key.0);
            if !keep {
                freed += manifest_entry_bytes(key, &m.value);
            }
            keep
        });
        state.bytes -= freed;
    }

    /// Forgets everything, and reads that began before are not kept.
    fn invalidate_all(&self) {
        let mut state = self.state();
        let generation = state.generation + 1;
        *state = State {
            generation,
            ..State::default()
        };
    }
}

impl ChangeSink for PullCache {
    fn changed(&self, repository: &str) {
        // A name that does not parse names nothing cached.
        if let Ok(repo) = repository.parse::<RepositoryName>() {
            self.invalidate(&repo);
        }
    }

    fn lost(&self) {
        self.caught_up.store(0, Ordering::Release);
        self.invalidate_all();
    }

    fn caught_up(&self, as_of: Instant) {
        let at = as_of.saturating_duration_since(self.origin).as_nanos() as u64 + 1;
        self.caught_up.fetch_max(at, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ManifestMeta;
    use crate::oci::digest::DigestAlgorithm;
    use bytes::Bytes;

    fn manifest(body: &str) -> StoredManifest {
        StoredManifest {
            meta: ManifestMeta {
                digest: DigestAlgorithm::Sha256.digest_of(body.as_bytes()),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: body.len() as u64,
            },
            content: Bytes::from(body.to_owned()),
            expires_at: None,
        }
    }

    fn repo(name: &str) -> RepositoryName {
        name.parse().unwrap()
    }

    fn tag(name: &str) -> Reference {
        Reference::Tag(name.parse().unwrap())
    }

    #[test]
    fn caches_until_the_repository_changes() {
        let cache = PullCache::new(Coherence::Local);
        let (a, b) = (repo("ns/a"), repo("ns/b"));
        let ticket = cache.get(&a, &tag("v1")).unwrap_err();
        cache.put(ticket, &a, &tag("v1"), &manifest("one"));
        let ticket = cache.get(&b, &tag("v1")).unwrap_err();
        cache.put(ticket, &b, &tag("v1"), &manifest("bee"));
        assert_eq!(cache.get(&a, &tag("v1")).unwrap().content, "one");
        cache.invalidate(&a);
        assert!(cache.get(&a, &tag("v1")).is_err());
        assert_eq!(cache.get(&b, &tag("v1")).unwrap().content, "bee");
    }

    #[test]
    fn entries_are_not_served_past_a_tag_expiry() {
        let cache = PullCache::new(Coherence::Local);
        let a = repo("ns/a");
        let soon = now() + 150;
        let mut expiring = manifest("one");
        expiring.expires_at = Some(soon);
        let ticket = cache.get(&a, &tag("v1")).unwrap_err();
        cache.put(ticket, &a, &tag("v1"), &expiring);
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &all_tags(&["v1", "v2"]), Some(soon));
        assert_eq!(cache.get(&a, &tag("v1")).unwrap().content, "one");
        assert!(cache.tags(&a).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            cache.get(&a, &tag("v1")).is_err(),
            "an expired tag's manifest is read again (and found gone)"
        );
        assert!(cache.tags(&a).is_err(), "the list is read again without it");
    }

    #[test]
    fn a_namespace_is_forgotten_whole() {
        let cache = PullCache::new(Coherence::Local);
        let (a, deep, solo, other) = (
            repo("team/a"),
            repo("team/x/y"),
            repo("team"),
            repo("teammate/a"),
        );
        for r in [&a, &deep, &solo, &other] {
            let ticket = cache.get(r, &tag("v1")).unwrap_err();
            cache.put(ticket, r, &tag("v1"), &manifest(r.as_str()));
            let ticket = cache.tags(r).unwrap_err();
            cache.put_tags(ticket, r, &all_tags(&["v1"]), None);
        }
        cache.invalidate_namespace("team");
        for r in [&a, &deep, &solo] {
            assert!(cache.get(r, &tag("v1")).is_err(), "{r}");
            assert!(cache.tags(r).is_err(), "{r}");
        }
        assert_eq!(cache.get(&other, &tag("v1")).unwrap().content, "teammate/a");
        assert!(cache.tags(&other).is_ok());
        let state = cache.state();
        let key = (other.clone(), "v1".to_owned());
        assert_eq!(
            state.bytes,
            manifest_entry_bytes(&key, &manifest("teammate/a"))
        );
        assert_eq!(state.tag_bytes, tag_entry_bytes(&other, &all_tags(&["v1"])));
    }

    #[test]
    fn a_read_overtaken_by_a_write_is_not_cached() {
        let cache = PullCache::new(Coherence::Local);
        let a = repo("ns/a");
        let ticket = cache.get(&a, &tag("v1")).unwrap_err();
        // A push moves the tag while the read is at the database.
        cache.invalidate(&a);
        cache.put(ticket, &a, &tag("v1"), &manifest("stale"));
        assert!(cache.get(&a, &tag("v1")).is_err());
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = PullCache::new(Coherence::Local);
        let big = "x".repeat(BUDGET_BYTES / 5);
        for i in 0..20 {
            let ticket = cache
                .get(&repo("ns/a"), &tag(&format!("t{i}")))
                .unwrap_err();
            cache.put(
                ticket,
                &repo("ns/a"),
                &tag(&format!("t{i}")),
                &manifest(&big),
            );
        }
        assert!(cache.state().bytes <= BUDGET_BYTES);
        assert!(!cache.state().manifests.is_empty());
    }

    #[test]
    fn small_entries_count_with_what_holding_them_costs() {
        // 100,000 one-byte manifests are 100 KB of content, but each entry
        // holds its key, digest, media type and a slot of the map: the
        // slots alone must fit in the budget.
        let cache = PullCache::new(Coherence::Local);
        let a = repo("ns/a");
        for i in 0..100_000 {
            let reference = tag(&format!("t{i}"));
            let ticket = cache.get(&a, &reference).unwrap_err();
            cache.put(ticket, &a, &reference, &manifest("x"));
        }
        let state = cache.state();
        let slot = size_of::<(ManifestKey, Entry<StoredManifest>)>();
        assert!(
            state.manifests.len() * slot <= BUDGET_BYTES,
            "{} entries of {slot} bytes each",
            state.manifests.len()
        );
        assert!(state.bytes <= BUDGET_BYTES);
        let counted: usize = state
            .manifests
            .iter()
            .map(|(key, m)| manifest_entry_bytes(key, &m.value))
            .sum();
        assert_eq!(state.bytes, counted);
    }

    #[test]
    fn tag_lists_count_with_what_holding_them_costs() {
        let cache = PullCache::new(Coherence::Local);
        for i in 0..200_000 {
            let r = repo(&format!("ns/r{i}"));
            let ticket = cache.tags(&r).unwrap_err();
            cache.put_tags(ticket, &r, &all_tags(&["v"]), None);
        }
        let state = cache.state();
        let slot = size_of::<(RepositoryName, Entry<CachedTags>)>();
        assert!(state.tags.len() * slot <= TAG_BUDGET_BYTES);
        assert!(state.tag_bytes <= TAG_BUDGET_BYTES);
        let counted: usize = state
            .tags
            .iter()
            .map(|(r, tags)| tag_entry_bytes(r, &tags.value))
            .sum();
        assert_eq!(state.tag_bytes, counted);
    }

    fn all_tags(names: &[&str]) -> CachedTags {
        CachedTags::All(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn tag_lists_are_forgotten_with_their_repository() {
        let cache = PullCache::new(Coherence::Local);
        let (a, b) = (repo("ns/a"), repo("ns/b"));
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &all_tags(&["v1", "v2"]), None);
        let ticket = cache.tags(&b).unwrap_err();
        cache.put_tags(ticket, &b, &all_tags(&["x"]), None);
        assert!(matches!(cache.tags(&a), Ok(CachedTags::All(t)) if t.len() == 2));
        cache.invalidate(&a);
        assert!(cache.tags(&a).is_err());
        assert!(matches!(cache.tags(&b), Ok(CachedTags::All(t)) if t.len() == 1));
        // A list read before a write finished is not kept.
        let ticket = cache.tags(&a).unwrap_err();
        cache.invalidate(&a);
        cache.put_tags(ticket, &a, &all_tags(&["stale"]), None);
        assert!(cache.tags(&a).is_err());
    }

    #[test]
    fn a_tag_list_too_big_to_hold_is_remembered_as_such() {
        let cache = PullCache::new(Coherence::Local);
        let a = repo("ns/a");
        let long = "t".repeat(120);
        let names: Vec<String> = (0..MAX_CACHED_TAGS).map(|i| format!("{long}{i}")).collect();
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &CachedTags::All(names.into()), None);
        assert!(matches!(cache.tags(&a), Ok(CachedTags::TooMany)));
        assert!(cache.state().tag_bytes <= TAG_BUDGET_BYTES);
    }

    fn cached(cache: &PullCache, r: &RepositoryName, t: &str, body: &str) {
        let ticket = cache.get(r, &tag(t)).unwrap_err();
        cache.put(ticket, r, &tag(t), &manifest(body));
    }

    #[test]
    fn a_shared_cache_serves_only_while_its_listener_has_caught_up() {
        let cache = PullCache::new(Coherence::Shared);
        let a = repo("ns/a");
        // Not caught up yet: nothing is kept.
        cached(&cache, &a, "v1", "one");
        assert!(cache.get(&a, &tag("v1")).is_err());
        cache.caught_up(Instant::now());
        cached(&cache, &a, "v1", "one");
        assert_eq!(cache.get(&a, &tag("v1")).unwrap().content, "one");
        // The listener falls behind: the entry is held but not served.
        std::thread::sleep(STALENESS_BOUND + Duration::from_millis(50));
        assert!(cache.get(&a, &tag("v1")).is_err());
        cache.caught_up(Instant::now());
        assert_eq!(cache.get(&a, &tag("v1")).unwrap().content, "one");
    }

    #[test]
    fn a_shared_cache_forgets_what_it_is_told_changed() {
        let cache = PullCache::new(Coherence::Shared);
        cache.caught_up(Instant::now());
        let (a, b) = (repo("ns/a"), repo("ns/b"));
        cached(&cache, &a, "v1", "one");
        cached(&cache, &b, "v1", "bee");
        cache.changed("ns/a");
        assert!(cache.get(&a, &tag("v1")).is_err());
        assert_eq!(cache.get(&b, &tag("v1")).unwrap().content, "bee");
        cache.changed("not a name!");
        assert_eq!(cache.get(&b, &tag("v1")).unwrap().content, "bee");
    }

    #[test]
    fn a_lost_listener_empties_a_shared_cache_until_it_catches_up_again() {
        let cache = PullCache::new(Coherence::Shared);
        cache.caught_up(Instant::now());
        let a = repo("ns/a");
        cached(&cache, &a, "v1", "one");
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &all_tags(&["v1"]), None);
        // A read that began before the loss finishes after it.
        let overtaken = cache.get(&a, &tag("v2")).unwrap_err();
        cache.lost();
        cache.put(overtaken, &a, &tag("v2"), &manifest("stale"));
        assert!(cache.get(&a, &tag("v1")).is_err());
        assert!(cache.tags(&a).is_err());
        cache.caught_up(Instant::now());
        assert!(cache.get(&a, &tag("v1")).is_err(), "forgotten, not hidden");
        assert!(cache.get(&a, &tag("v2")).is_err());
        assert!(cache.tags(&a).is_err());
        let state = cache.state();
        assert_eq!((state.bytes, state.tag_bytes), (0, 0));
    }

    #[test]
    fn disabled_cache_keeps_nothing() {
        let cache = PullCache::new(Coherence::Off);
        let ticket = cache.get(&repo("a"), &tag("v")).unwrap_err();
        cache.put(ticket, &repo("a"), &tag("v"), &manifest("m"));
        assert!(cache.get(&repo("a"), &tag("v")).is_err());
        let ticket = cache.tags(&repo("a")).unwrap_err();
        cache.put_tags(ticket, &repo("a"), &all_tags(&["v"]), None);
        assert!(cache.tags(&repo("a")).is_err());
    }
}
