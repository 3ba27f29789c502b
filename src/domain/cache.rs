//! A cache of what pulls read (manifests and tag lists), for registries whose
//! metadata no other process changes (the embedded database).
//!
//! Manifest reads are the bulk of registry traffic and each costs a database
//! round trip; with the cache, a repeated `GET`/`HEAD` of a manifest, or a
//! page of a repository's tags, costs a hash-map lookup. Every write that can
//! change what a repository's references resolve to invalidates that
//! repository. A generation counter closes the race between a read that
//! started before a write and finishes after it: what such a read found is
//! not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::metadata::StoredManifest;
use crate::oci::names::{Reference, RepositoryName};

/// Manifest bytes kept at most.
const BUDGET_BYTES: usize = 8 << 20;

/// Tag-name bytes kept at most, over all repositories.
const TAG_BUDGET_BYTES: usize = 4 << 20;

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
    fn bytes(&self) -> usize {
        match self {
            CachedTags::All(tags) => tags.iter().map(|t| t.len() + 24).sum(),
            CachedTags::TooMany => 0,
        }
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation.
    generation: u64,
    manifests: HashMap<(RepositoryName, String), StoredManifest>,
    bytes: usize,
    tags: HashMap<RepositoryName, CachedTags>,
    tag_bytes: usize,
}

pub struct PullCache {
    enabled: bool,
    state: Mutex<State>,
}

/// Where a read started, to decide whether its result may be cached.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

fn key(repo: &RepositoryName, reference: &Reference) -> (RepositoryName, String) {
    (repo.clone(), reference.to_string())
}

impl PullCache {
    pub fn new(enabled: bool) -> Self {
        PullCache {
            enabled,
            state: Mutex::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest, Ticket> {
        if !self.enabled {
            return Err(Ticket(0));
        }
        let state = self.state();
        match state.manifests.get(&key(repo, reference)) {
            Some(found) => Ok(found.clone()),
            None => Err(Ticket(state.generation)),
        }
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
        if !self.enabled {
            return;
        }
        let mut state = self.state();
        if state.generation != ticket.0 {
            return;
        }
        let size = manifest.content.len();
        if size > BUDGET_BYTES / 4 {
            return;
        }
        while state.bytes + size > BUDGET_BYTES {
            let Some(victim) = state.manifests.keys().next().cloned() else {
                break;
            };
            if let Some(evicted) = state.manifests.remove(&victim) {
                state.bytes -= evicted.content.len();
            }
        }
        if let Some(old) = state
            .manifests
            .insert(key(repo, reference), manifest.clone())
        {
            state.bytes -= old.content.len();
        }
        state.bytes += size;
    }

    pub fn tags(&self, repo: &RepositoryName) -> Result<CachedTags, Ticket> {
        if !self.enabled {
            return Err(Ticket(0));
        }
        let state = self.state();
        match state.tags.get(repo) {
            Some(found) => Ok(found.clone()),
            None => Err(Ticket(state.generation)),
        }
    }

    /// Keeps the tag list a read that began at `ticket` found, unless
    /// anything was invalidated meanwhile.
    pub fn put_tags(&self, ticket: Ticket, repo: &RepositoryName, tags: &CachedTags) {
        if !self.enabled {
            return;
        }
        let mut state = self.state();
        if state.generation != ticket.0 {
            return;
        }
        // A list too big to hold is remembered as such, so that its pages
        // are not each preceded by a read of the whole list.
        let (tags, size) = match tags.bytes() {
            size if size > TAG_BUDGET_BYTES / 4 => (CachedTags::TooMany, 0),
            size => (tags.clone(), size),
        };
        while state.tag_bytes + size > TAG_BUDGET_BYTES {
            let Some(victim) = state.tags.keys().next().cloned() else {
                break;
            };
            if let Some(evicted) = state.tags.remove(&victim) {
                state.tag_bytes -= evicted.bytes();
            }
        }
        if let Some(old) = state.tags.insert(repo.clone(), tags) {
            state.tag_bytes -= old.bytes();
        }
        state.tag_bytes += size;
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
        if !self.enabled {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        let mut freed_tags = 0;
        state.tags.retain(|r, tags| {
            let keep = !matches(r);
            if !keep {
                freed_tags += tags.bytes();
            }
            keep
        });
        state.tag_bytes -= freed_tags;
        let mut freed = 0;
        state.manifests.retain(|(r, _), m| {
            let keep = !matches(r);
            if !keep {
                freed += m.content.len();
            }
            keep
        });
        state.bytes -= freed;
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
        let cache = PullCache::new(true);
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
    fn a_namespace_is_forgotten_whole() {
        let cache = PullCache::new(true);
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
            cache.put_tags(ticket, r, &all_tags(&["v1"]));
        }
        cache.invalidate_namespace("team");
        for r in [&a, &deep, &solo] {
            assert!(cache.get(r, &tag("v1")).is_err(), "{r}");
            assert!(cache.tags(r).is_err(), "{r}");
        }
        assert_eq!(cache.get(&other, &tag("v1")).unwrap().content, "teammate/a");
        assert!(cache.tags(&other).is_ok());
        let state = cache.state();
        assert_eq!(state.bytes, "teammate/a".len());
        assert_eq!(state.tag_bytes, all_tags(&["v1"]).bytes());
    }

    #[test]
    fn a_read_overtaken_by_a_write_is_not_cached() {
        let cache = PullCache::new(true);
        let a = repo("ns/a");
        let ticket = cache.get(&a, &tag("v1")).unwrap_err();
        // A push moves the tag while the read is at the database.
        cache.invalidate(&a);
        cache.put(ticket, &a, &tag("v1"), &manifest("stale"));
        assert!(cache.get(&a, &tag("v1")).is_err());
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = PullCache::new(true);
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

    fn all_tags(names: &[&str]) -> CachedTags {
        CachedTags::All(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn tag_lists_are_forgotten_with_their_repository() {
        let cache = PullCache::new(true);
        let (a, b) = (repo("ns/a"), repo("ns/b"));
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &all_tags(&["v1", "v2"]));
        let ticket = cache.tags(&b).unwrap_err();
        cache.put_tags(ticket, &b, &all_tags(&["x"]));
        assert!(matches!(cache.tags(&a), Ok(CachedTags::All(t)) if t.len() == 2));
        cache.invalidate(&a);
        assert!(cache.tags(&a).is_err());
        assert!(matches!(cache.tags(&b), Ok(CachedTags::All(t)) if t.len() == 1));
        // A list read before a write finished is not kept.
        let ticket = cache.tags(&a).unwrap_err();
        cache.invalidate(&a);
        cache.put_tags(ticket, &a, &all_tags(&["stale"]));
        assert!(cache.tags(&a).is_err());
    }

    #[test]
    fn a_tag_list_too_big_to_hold_is_remembered_as_such() {
        let cache = PullCache::new(true);
        let a = repo("ns/a");
        let long = "t".repeat(120);
        let names: Vec<String> = (0..MAX_CACHED_TAGS).map(|i| format!("{long}{i}")).collect();
        let ticket = cache.tags(&a).unwrap_err();
        cache.put_tags(ticket, &a, &CachedTags::All(names.into()));
        assert!(matches!(cache.tags(&a), Ok(CachedTags::TooMany)));
        assert!(cache.state().tag_bytes <= TAG_BUDGET_BYTES);
    }

    #[test]
    fn disabled_cache_keeps_nothing() {
        let cache = PullCache::new(false);
        let ticket = cache.get(&repo("a"), &tag("v")).unwrap_err();
        cache.put(ticket, &repo("a"), &tag("v"), &manifest("m"));
        assert!(cache.get(&repo("a"), &tag("v")).is_err());
        let ticket = cache.tags(&repo("a")).unwrap_err();
        cache.put_tags(ticket, &repo("a"), &all_tags(&["v"]));
        assert!(cache.tags(&repo("a")).is_err());
    }
}
