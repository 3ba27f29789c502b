//! Scopes of token requests: `repository:<name>:<action>[,<action>…]` and
//! `registry:catalog:*` (docker token spec, "Token Scope Documentation").

use super::bearer::AccessEntry;
use super::roles::Verb;

/// Parses one `scope` value. Several scopes may share one value, separated
/// by spaces. Unparseable entries are skipped: a token service grants what
/// it can and never fails a request for a scope it does not know.
pub fn parse_scopes(value: &str) -> Vec<AccessEntry> {
    value.split_whitespace().filter_map(parse_one).collect()
}

fn parse_one(scope: &str) -> Option<AccessEntry> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    // A resource class may follow the type: `repository(plugin)`.
    let kind = kind.split('(').next().unwrap_or(kind);
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let actions: Vec<String> = actions
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    Some(AccessEntry {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions,
    })
}

/// The scope a client needs to do `verb` to repository `name`: a push
/// needs pull as well (clients check what is there before they upload).
pub fn scope_for(name: &str, verb: Verb) -> String {
    match verb {
        Verb::Push => repository_scope(name, &["pull", "push"]),
        other => repository_scope(name, &[other.as_str()]),
    }
}

/// The scope a challenge names for `actions` on repository `name`.
pub fn repository_scope(name: &str, actions: &[&str]) -> String {
    format!("repository:{name}:{}", actions.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_docker_scopes() {
        let s = parse_scopes(
            "repository:ns/app:pull,push registry:catalog:* repository(plugin):x/y:pull",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].kind, "repository");
        assert_eq!(s[0].name, "ns/app");
        assert_eq!(s[0].actions, vec!["pull", "push"]);
        assert_eq!(s[1].kind, "registry");
        assert_eq!(s[1].name, "catalog");
        assert_eq!(s[1].actions, vec!["*"]);
        assert_eq!(s[2].kind, "repository");
        assert!(parse_scopes("garbage").is_empty());
        assert!(parse_scopes("repository::pull").is_empty());
        assert_eq!(
            parse_scopes("repository:a:")
                .first()
                .map(|e| e.actions.len()),
            Some(0)
        );
    }

    proptest! {
        #[test]
        fn round_trips(name in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}", actions in proptest::sample::subsequence(vec!["pull", "push", "delete", "*"], 1..4)) {
            let parsed = parse_scopes(&repository_scope(&name, &actions));
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].name, &name);
            prop_assert_eq!(parsed[0].actions.iter().map(String::as_str).collect::<Vec<_>>(), actions);
        }

        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = parse_scopes(&s);
        }
    }
}
