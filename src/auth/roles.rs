//! The one vocabulary of permissions: the [`Verb`]s a role allows, the
//! built-in roles, and the words the token protocol uses for the verbs
//! that apply to repositories (`pull`, `push`, `delete`).

use std::fmt;

/// Something a role can allow in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Read blobs, manifests and tag lists.
    Pull,
    /// Upload blobs, push manifests and tags.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
    /// List and inspect image streams and their tags.
    View,
    /// Manage the namespace's role bindings, service accounts and their tokens.
    Admin,
}

impl Verb {
    pub const ALL: [Verb; 5] = [
        Verb::Pull,
        Verb::Push,
        Verb::Delete,
        Verb::View,
        Verb::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Pull => "pull",
            Verb::Push => "push",
            Verb::Delete => "delete",
            Verb::View => "view",
            Verb::Admin => "admin",
        }
    }

    /// The verbs a request or a token scope applies to a repository.
    pub const ON_REPOSITORIES: [Verb; 3] = [Verb::Pull, Verb::Push, Verb::Delete];

    pub fn parse(text: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// A token scope's action (`repository:NAME:pull,push`): one of
    /// [`ON_REPOSITORIES`](Self::ON_REPOSITORIES), by its name.
    pub fn parse_repository_action(text: &str) -> Option<Verb> {
        Verb::ON_REPOSITORIES
            .into_iter()
            .find(|v| v.as_str() == text)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Verbs(u8);

impl Verbs {
    pub const NONE: Verbs = Verbs(0);

    pub fn of(verbs: &[Verb]) -> Verbs {
        Verbs(verbs.iter().fold(0, |acc, v| acc | v.bit()))
    }

    pub fn all() -> Verbs {
        Verbs::of(&Verb::ALL)
    }

    pub fn contains(self, verb: Verb) -> bool {
        self.0 & verb.bit() != 0
    }

    pub fn union(self, other: Verbs) -> Verbs {
        Verbs(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL.into_iter().filter(move |v| self.contains(*v))
    }
}

/// The role that, bound cluster-wide, makes a cluster admin.
pub const CLUSTER_ADMIN: &str = "cluster-admin";

/// Roles that can be bound, in the order they are listed to users.
pub const ROLES: [&str; 7] = [
    "system:image-puller",
    "system:image-pusher",
    "system:image-builder",
    "registry-viewer",
    "registry-editor",
    "registry-admin",
    "cluster-admin",
];

/// What `role` allows, or `None` if no such role exists.
pub fn verbs_of(role: &str) -> Option<Verbs> {
    use Verb::*;
    Some(match role {
        "system:image-puller" => Verbs::of(&[Pull]),
        "system:image-pusher" | "system:image-builder" => Verbs::of(&[Pull, Push]),
        "registry-viewer" => Verbs::of(&[Pull, View]),
        "registry-editor" => Verbs::of(&[Pull, Push, Delete, View]),
        "registry-admin" | "cluster-admin" => Verbs::all(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grow_as_the_table_says() {
        let puller = verbs_of("system:image-puller").unwrap();
        assert!(puller.contains(Verb::Pull) && !puller.contains(Verb::Push));
        let pusher = verbs_of("system:image-pusher").unwrap();
        assert_eq!(pusher, verbs_of("system:image-builder").unwrap());
        assert!(pusher.contains(Verb::Push) && !pusher.contains(Verb::Delete));
        let viewer = verbs_of("registry-viewer").unwrap();
        assert!(viewer.contains(Verb::View) && !viewer.contains(Verb::Push));
        let editor = verbs_of("registry-editor").unwrap();
        assert!(editor.contains(Verb::Delete) && !editor.contains(Verb::Admin));
        assert!(verbs_of("registry-admin").unwrap().contains(Verb::Admin));
        assert_eq!(verbs_of("cluster-admin"), Some(Verbs::all()));
        assert_eq!(verbs_of("system:image-nothing"), None);
        for role in ROLES {
            assert!(verbs_of(role).is_some(), "{role}");
        }
    }

    #[test]
    fn verb_sets() {
        let s = Verbs::of(&[Verb::Pull]).union(Verbs::of(&[Verb::Delete]));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Verb::Pull, Verb::Delete]);
        assert!(Verbs::NONE.is_empty());
        assert_eq!(Verb::parse("push"), Some(Verb::Push));
        assert_eq!(Verb::parse("fly"), None);
    }
}
