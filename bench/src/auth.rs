//! Parsing of `WWW-Authenticate` challenges and `Link` headers, and the
//! mapping from request paths to Docker token scopes.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme: "basic" or "bearer".
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses one challenge such as
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"`.
/// Quoted values may contain commas, which is why this is not a plain split.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((scheme, rest)) => (scheme, rest),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
            value = value.trim().to_owned();
        }
        params.insert(key, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The token scope a request needs, derived from its path, e.g.
/// `/v2/library/alpine/manifests/latest` -> `repository:library/alpine:pull,push`.
/// The benchmark always asks for push too, so one token serves a repository
/// for the whole run.
pub fn scope_for_path(path: &str) -> Option<String> {
    let rest = path.split_once("/v2/")?.1;
    if rest.starts_with("_catalog") {
        return Some("registry:catalog:*".to_owned());
    }
    // Repository names may contain '/', so look for the last API segment.
    ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|seg| rest.rfind(seg))
        .max()
        .map(|end| format!("repository:{}:pull,push", &rest[..end]))
}

/// Returns the `rel="next"` target of an RFC 8288 `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .is_some_and(|v| v.trim_matches('"') == "next")
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .expect("challenge");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn parses_basic_and_unquoted() {
        let c = parse_challenge(r#"Basic realm="basic-realm""#).expect("challenge");
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "basic-realm");
        let c = parse_challenge("Bearer realm=http://x/t, service=svc").expect("challenge");
        assert_eq!(c.params["realm"], "http://x/t");
        assert_eq!(c.params["service"], "svc");
        let c = parse_challenge(r#"Bearer realm="a\"b""#).expect("challenge");
        assert_eq!(c.params["realm"], "a\"b");
    }

    #[test]
    fn scopes() {
        let cases = [
            ("/v2/a/b/manifests/latest", Some("repository:a/b:pull,push")),
            ("/v2/x/blobs/uploads/123", Some("repository:x:pull,push")),
            // A repository whose name contains an API word still resolves correctly.
            ("/v2/tags/manifests/v1", Some("repository:tags:pull,push")),
            ("/v2/_catalog?n=100", Some("registry:catalog:*")),
            ("/v2/", None),
        ];
        for (path, scope) in cases {
            assert_eq!(scope_for_path(path).as_deref(), scope, "{path}");
        }
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=r1&n=100>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=r1&n=100")
        );
        assert_eq!(
            next_link(r#"<http://a/prev>; rel="prev", <http://a/next>; rel=next"#).as_deref(),
            Some("http://a/next")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
