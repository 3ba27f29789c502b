//! Which manifests of a repository nothing keeps: the roots are the
//! manifests a tag or a tag's history names and those within the grace
//! period; an index keeps its child manifests, a manifest its referrers
//! (the manifests whose `subject` it is). What no root reaches is garbage,
//! returned parents first, the order in which the store can remove it
//! (it re-checks each removal against what still exists).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::metadata::garbage::RepositoryGraph;
use crate::oci::digest::Digest;

/// The repository's unreachable manifests, each after every unreachable
/// manifest that keeps it.
pub fn garbage_in_order(graph: &RepositoryGraph) -> Vec<Digest> {
    let linked: HashSet<&Digest> = graph.links.iter().map(|(d, _)| d).collect();
    let mut children: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for (parent, child) in &graph.edges {
        if linked.contains(parent) && linked.contains(child) {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut kept: HashSet<&Digest> = HashSet::new();
    let mut pending: VecDeque<&Digest> = graph
        .links
        .iter()
        .filter(|(_, young)| *young)
        .map(|(d, _)| d)
        .chain(graph.named.iter().filter(|d| linked.contains(d)))
        .collect();
    while let Some(digest) = pending.pop_front() {
        if kept.insert(digest) {
            pending.extend(children.get(digest).into_iter().flatten().copied());
        }
    }
    let garbage: Vec<&Digest> = graph
        .links
        .iter()
        .map(|(d, _)| d)
        .filter(|d| !kept.contains(d))
        .collect();
    // Parents first (Kahn's order over the garbage alone). Content
    // addressing rules out cycles; were there one, its members come last
    // and the store's re-check keeps whichever is still held.
    let in_garbage: HashSet<&Digest> = garbage.iter().copied().collect();
    let mut parents: HashMap<&Digest, usize> = garbage.iter().map(|d| (*d, 0)).collect();
    for digest in &garbage {
        for child in children.get(digest).into_iter().flatten() {
            if in_garbage.contains(child) {
                *parents.entry(child).or_default() += 1;
            }
        }
    }
    let mut ready: VecDeque<&Digest> = garbage
        .iter()
        .copied()
        .filter(|d| parents.get(d) == Some(&0))
        .collect();
    let mut ordered = Vec::with_capacity(garbage.len());
    let mut placed = HashSet::new();
    while let Some(digest) = ready.pop_front() {
        if !placed.insert(digest) {
            continue;
        }
        ordered.push(digest.clone());
        for child in children.get(digest).into_iter().flatten() {
            if let Some(count) = parents.get_mut(child) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push_back(child);
                }
            }
        }
    }
    ordered.extend(garbage.into_iter().filter(|d| !placed.contains(d)).cloned());
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::DigestAlgorithm;

    fn d(name: &str) -> Digest {
        DigestAlgorithm::Sha256.digest_of(name.as_bytes())
    }

    fn graph(links: &[(&str, bool)], named: &[&str], edges: &[(&str, &str)]) -> RepositoryGraph {
        RepositoryGraph {
            id: 1,
            name: "ns/app".into(),
            links: links.iter().map(|(n, young)| (d(n), *young)).collect(),
            named: named.iter().map(|n| d(n)).collect(),
            edges: edges.iter().map(|(p, c)| (d(p), d(c))).collect(),
        }
    }

    fn names(found: &[Digest], all: &[&str]) -> Vec<String> {
        found
            .iter()
            .map(|digest| {
                all.iter()
                    .find(|n| d(n) == *digest)
                    .map_or_else(|| digest.to_string(), |n| n.to_string())
            })
            .collect()
    }

    const ALL: &[&str] = &[
        "tagged",
        "child",
        "index",
        "orphan",
        "young",
        "sig",
        "sig-of-orphan",
        "history",
        "sub",
    ];

    #[test]
    fn what_tags_histories_and_young_links_reach_is_kept() {
        let g = graph(
            &[
                ("tagged", false),
                ("child", false),
                ("index", false),
                ("orphan", false),
                ("young", true),
                ("sig", false),
                ("sig-of-orphan", false),
                ("history", false),
            ],
            // "gone" is named but not linked here: it keeps nothing.
            &["index", "history", "gone"],
            &[
                ("index", "child"),
                ("index", "tagged"),
                // Referrers hang from their subject.
                ("child", "sig"),
                ("orphan", "sig-of-orphan"),
            ],
        );
        assert_eq!(
            names(&garbage_in_order(&g), ALL),
            ["orphan", "sig-of-orphan"]
        );
    }

    #[test]
    fn garbage_comes_parents_first() {
        // index -> sub -> child, and child's referrer; none is kept.
        let g = graph(
            &[
                ("sig", false),
                ("child", false),
                ("sub", false),
                ("index", false),
            ],
            &[],
            &[("index", "sub"), ("sub", "child"), ("child", "sig")],
        );
        assert_eq!(
            names(&garbage_in_order(&g), ALL),
            ["index", "sub", "child", "sig"]
        );
    }

    #[test]
    fn a_child_shared_with_a_kept_index_is_kept() {
        let g = graph(
            &[("index", false), ("orphan", false), ("child", false)],
            &["index"],
            &[("index", "child"), ("orphan", "child")],
        );
        assert_eq!(names(&garbage_in_order(&g), ALL), ["orphan"]);
    }

    #[test]
    fn an_empty_repository_has_no_garbage() {
        assert!(garbage_in_order(&RepositoryGraph::default()).is_empty());
    }
}
