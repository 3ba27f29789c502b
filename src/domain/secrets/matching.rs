//! Which secret's credentials go to an upstream, as `oc import-image`
//! chooses: the secret's server must name the upstream's host (port
//! included), and may name a path prefix of the repository, whole
//! components at a time; where several match, the longest prefix wins.
//! Docker Hub answers to several names (`docker.io`, `index.docker.io`,
//! `registry-1.docker.io`), which are one host here, and a reference
//! without a host (`library/alpine`, `alpine`) is on Docker Hub.
//!
//! Servers are written as in an `auth.json`: `registry.example.com`,
//! `registry.example.com:5000/team`, `https://index.docker.io/v1/` (the
//! legacy form: a scheme, and an API version as the path, which restricts
//! nothing).

use std::fmt;
use std::str::FromStr;

/// The host every name of Docker Hub is taken for.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// `host[:port]` in lower case, Docker Hub's names made one.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_owned()
    } else {
        host
    }
}

/// `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`: letters, digits,
/// `.`, `-`, and a port of digits (1 to 65535) after the last `:`.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) => {
                if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(port) => ("x", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    name_ok && port_ok
}

fn valid_component(component: &str) -> bool {
    !component.is_empty()
        && component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Where a secret's credentials apply: a host and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPattern {
    host: String,
    path: Vec<String>,
}

impl ServerPattern {
    /// A server as an `auth.json` names it; `None` if it cannot name a
    /// registry.
    pub fn parse(server: &str) -> Option<ServerPattern> {
        if server.is_empty() || server.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let lower = server.to_ascii_lowercase();
        let scheme = ["https://", "http://"]
            .into_iter()
            .find(|scheme| lower.starts_with(*scheme));
        let (rest, had_scheme) = match scheme {
            Some(scheme) => (&server[scheme.len()..], true),
            None if server.contains("://") => return None,
            None => (server, false),
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_host(host) {
            return None;
        }
        let mut components: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if had_scheme && matches!(components.as_slice(), [v] if v == "v1" || v == "v2") {
            components.clear();
        }
        if !components.iter().all(|c| valid_component(c)) {
            return None;
        }
        Some(ServerPattern {
            host: canonical_host(host),
            path: components,
        })
    }

    /// How many path components of `upstream` this names, if it applies
    /// to it at all.
    pub fn specificity(&self, upstream: &UpstreamRepository) -> Option<usize> {
        (self.host == upstream.host && upstream.path.starts_with(&self.path))
            .then_some(self.path.len())
    }
}

/// An upstream repository: its host (canonical) and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRepository {
    host: String,
    path: Vec<String>,
}

impl UpstreamRepository {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `a/b/c`.
    pub fn path(&self) -> String {
        self.path.join("/")
    }
}

impl fmt::Display for UpstreamRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path())
    }
}

/// Why a text is not a reference to an upstream repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the reference is empty")]
    Empty,
    #[error("{0:?} is not a reference: it holds white space or control characters")]
    Spaces(String),
    #[error(
        "{0:?} is not a reference: write it without a scheme, as host[:port]/path[:tag|@digest]"
    )]
    Scheme(String),
    #[error("{0:?} has an invalid registry host")]
    Host(String),
    #[error("{0:?} names no repository after its host")]
    NoRepository(String),
    #[error("{0:?} has an invalid repository path")]
    Path(String),
}

impl FromStr for UpstreamRepository {
    type Err = ReferenceError;

    /// `host[:port]/path[:tag][@digest]`; without a host (no `.` or `:` in
    /// the first component, and not `localhost`), Docker Hub, where a
    /// single name is under `library/`.
    fn from_str(reference: &str) -> Result<UpstreamRepository, ReferenceError> {
        if reference.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ReferenceError::Spaces(reference.to_owned()));
        }
        if reference.contains("://") {
            return Err(ReferenceError::Scheme(reference.to_owned()));
        }
        let name = reference.split_once('@').map_or(reference, |(n, _)| n);
        // A tag follows the last '/', after a ':'.
        let name = match name.rfind('/') {
            Some(slash) => match name[slash..].find(':') {
                Some(colon) => &name[..slash + colon],
                None => name,
            },
            None => name.split_once(':').map_or(name, |(n, _)| n),
        };
        let mut components: Vec<&str> = name.split('/').collect();
        let first = components[0];
        let names_host = components.len() > 1
            && (first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.starts_with('['));
        let host = if names_host {
            if !valid_host(first) {
                return Err(ReferenceError::Host(reference.to_owned()));
            }
            components.remove(0);
            canonical_host(first)
        } else {
            DOCKER_HUB.to_owned()
        };
        if components.is_empty() || components == [""] {
            return Err(ReferenceError::NoRepository(reference.to_owned()));
        }
        if !components.iter().all(|c| valid_component(c)) {
            return Err(ReferenceError::Path(reference.to_owned()));
        }
        let mut path: Vec<String> = components.into_iter().map(str::to_owned).collect();
        if host == DOCKER_HUB && path.len() == 1 {
            path.insert(0, "library".to_owned());
        }
        Ok(UpstreamRepository { host, path })
    }
}

/// Of `candidates` (a server as written, and what it stands for), the one
/// whose server applies to `upstream` with the longest path; the first of
/// those in order when several tie. Servers that cannot name a registry
/// apply to nothing.
pub fn best_match<'a, T>(
    candidates: impl IntoIterator<Item = (&'a str, T)>,
    upstream: &UpstreamRepository,
) -> Option<T> {
    let mut best: Option<(usize, T)> = None;
    for (server, value) in candidates {
        let Some(length) = ServerPattern::parse(server).and_then(|p| p.specificity(upstream))
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| length > *b) {
            best = Some((length, value));
        }
    }
    best.map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(text: &str) -> UpstreamRepository {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn choose<'a>(servers: &[&'a str], reference: &str) -> Option<&'a str> {
        best_match(servers.iter().map(|s| (*s, *s)), &upstream(reference))
    }

    #[test]
    fn references_name_a_host_and_a_path() {
        let cases = [
            (
                "registry.example.com/myorg/myimage",
                "registry.example.com",
                "myorg/myimage",
            ),
            (
                "registry.example.com/myorg/myimage:1.0",
                "registry.example.com",
                "myorg/myimage",
            ),
            (
                "Registry.Example.COM:5000/a/b/c@sha256:abcd",
                "registry.example.com:5000",
                "a/b/c",
            ),
            (
                "registry.example.com:5000/a:tag@sha256:abcd",
                "registry.example.com:5000",
                "a",
            ),
            ("localhost/app", "localhost", "app"),
            ("localhost:5000/app:1", "localhost:5000", "app"),
            ("127.0.0.1:5000/ns/app", "127.0.0.1:5000", "ns/app"),
            ("[::1]:5000/ns/app", "[::1]:5000", "ns/app"),
            ("alpine", "docker.io", "library/alpine"),
            ("alpine:3.20", "docker.io", "library/alpine"),
            ("library/alpine", "docker.io", "library/alpine"),
            ("myorg/myimage", "docker.io", "myorg/myimage"),
            ("docker.io/alpine", "docker.io", "library/alpine"),
            ("index.docker.io/myorg/x", "docker.io", "myorg/x"),
            (
                "registry-1.docker.io/library/alpine",
                "docker.io",
                "library/alpine",
            ),
            ("quay.io/a/b", "quay.io", "a/b"),
        ];
        for (text, host, path) in cases {
            let repo = upstream(text);
            assert_eq!((repo.host(), repo.path().as_str()), (host, path), "{text}");
        }
        assert_eq!(upstream("quay.io/a/b:1").to_string(), "quay.io/a/b");
    }

    #[test]
    fn bad_references_are_refused() {
        let bad = [
            ("", ReferenceError::Empty),
            (" quay.io/a", ReferenceError::Spaces(" quay.io/a".into())),
            ("quay.io/a b", ReferenceError::Spaces("quay.io/a b".into())),
            ("quay.io/a\n", ReferenceError::Spaces("quay.io/a\n".into())),
            (
                "https://quay.io/a",
                ReferenceError::Scheme("https://quay.io/a".into()),
            ),
            ("quay.io/", ReferenceError::NoRepository("quay.io/".into())),
            (
                "quay.io:99999/a",
                ReferenceError::Host("quay.io:99999/a".into()),
            ),
            ("quay.io:/a", ReferenceError::Host("quay.io:/a".into())),
            ("qu_ay.io/a", ReferenceError::Host("qu_ay.io/a".into())),
            ("quay.io//a", ReferenceError::Path("quay.io//a".into())),
            ("quay.io/a/", ReferenceError::Path("quay.io/a/".into())),
            (
                "quay.io/a/%2e",
                ReferenceError::Path("quay.io/a/%2e".into()),
            ),
            (":tag", ReferenceError::NoRepository(":tag".into())),
            (
                "@sha256:x",
                ReferenceError::NoRepository("@sha256:x".into()),
            ),
        ];
        for (text, error) in bad {
            assert_eq!(text.parse::<UpstreamRepository>(), Err(error), "{text:?}");
        }
    }

    #[test]
    fn servers_parse_as_auth_files_write_them() {
        let cases = [
            ("registry.example.com", Some(("registry.example.com", 0))),
            ("REGISTRY.example.com", Some(("registry.example.com", 0))),
            ("registry.example.com/", Some(("registry.example.com", 0))),
            (
                "registry.example.com:5000/team",
                Some(("registry.example.com:5000", 1)),
            ),
            (
                "registry.example.com/team/sub/",
                Some(("registry.example.com", 2)),
            ),
            ("https://index.docker.io/v1/", Some(("docker.io", 0))),
            (
                "http://registry.example.com/v2",
                Some(("registry.example.com", 0)),
            ),
            // Without a scheme, v1 is a namespace like any other.
            ("registry.example.com/v1", Some(("registry.example.com", 1))),
            (
                "https://registry.example.com/team",
                Some(("registry.example.com", 1)),
            ),
            ("docker.io", Some(("docker.io", 0))),
            ("registry-1.docker.io", Some(("docker.io", 0))),
            ("localhost:5000", Some(("localhost:5000", 0))),
            ("[::1]:5000", Some(("[::1]:5000", 0))),
            ("", None),
            (" ", None),
            ("registry example.com", None),
            ("ftp://registry.example.com", None),
            ("registry.example.com:0", None),
            ("registry.example.com:x", None),
            ("registry..example.com", None),
            ("-/team", Some(("-", 1))),
            ("registry.example.com/te am", None),
            ("https://", None),
            ("[::1", None),
        ];
        for (server, expected) in cases {
            let parsed = ServerPattern::parse(server);
            let got = parsed.as_ref().map(|p| (p.host.as_str(), p.path.len()));
            assert_eq!(got, expected, "{server:?}");
        }
    }

    #[test]
    fn the_host_must_match_port_and_all() {
        let servers = ["registry.example.com", "other.example.com:5000"];
        assert_eq!(
            choose(&servers, "registry.example.com/a/b"),
            Some("registry.example.com")
        );
        assert_eq!(
            choose(&servers, "REGISTRY.example.com/a"),
            Some("registry.example.com")
        );
        assert_eq!(choose(&servers, "registry.example.com:5000/a"), None);
        assert_eq!(choose(&servers, "other.example.com/a"), None);
        assert_eq!(
            choose(&servers, "other.example.com:5000/a"),
            Some("other.example.com:5000")
        );
        assert_eq!(choose(&servers, "example.com/a"), None);
        assert_eq!(choose(&servers, "sub.registry.example.com/a"), None);
        assert_eq!(choose(&[], "registry.example.com/a"), None);
    }

    #[test]
    fn the_longest_path_prefix_wins_whole_components_only() {
        let servers = [
            "registry.example.com",
            "registry.example.com/team",
            "registry.example.com/team/app",
            "registry.example.com/teamwork",
        ];
        assert_eq!(
            choose(&servers, "registry.example.com/team/app"),
            Some("registry.example.com/team/app")
        );
        assert_eq!(
            choose(&servers, "registry.example.com/team/app2"),
            Some("registry.example.com/team")
        );
        assert_eq!(
            choose(&servers, "registry.example.com/team/app/sub:1"),
            Some("registry.example.com/team/app")
        );
        assert_eq!(
            choose(&servers, "registry.example.com/teamwork/x"),
            Some("registry.example.com/teamwork")
        );
        assert_eq!(
            choose(&servers, "registry.example.com/tea/x"),
            Some("registry.example.com")
        );
        // A prefix longer than the repository does not apply.
        assert_eq!(
            choose(
                &["registry.example.com/team/app"],
                "registry.example.com/team"
            ),
            None
        );
        // Order does not matter but for ties: then the first one.
        let mut reversed = servers;
        reversed.reverse();
        assert_eq!(
            choose(&reversed, "registry.example.com/team/app"),
            Some("registry.example.com/team/app")
        );
        let tied = best_match(
            [("quay.io/a", 1), ("https://quay.io/a/", 2)],
            &upstream("quay.io/a/b"),
        );
        assert_eq!(tied, Some(1));
    }

    #[test]
    fn docker_hub_has_many_names() {
        for server in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "DOCKER.IO",
        ] {
            for reference in [
                "alpine",
                "library/alpine:3",
                "docker.io/library/alpine",
                "index.docker.io/library/alpine",
                "registry-1.docker.io/library/alpine",
            ] {
                assert_eq!(
                    choose(&[server], reference),
                    Some(server),
                    "{server} {reference}"
                );
            }
        }
        assert_eq!(
            choose(&["docker.io/myorg", "docker.io"], "myorg/app"),
            Some("docker.io/myorg")
        );
        assert_eq!(choose(&["docker.io/myorg"], "alpine"), None);
        assert_eq!(choose(&["quay.io"], "alpine"), None);
    }

    #[test]
    fn servers_that_name_no_registry_match_nothing() {
        assert_eq!(
            choose(&["", "not a host", "ftp://quay.io", "quay.io"], "quay.io/a"),
            Some("quay.io")
        );
        assert_eq!(choose(&["", "bad host"], "quay.io/a"), None);
    }
}
