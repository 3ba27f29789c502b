//! `WWW-Authenticate` as upstream registries send it (RFC 9110 §11.6.1):
//! one or more challenges, each a scheme and `name=value` parameters whose
//! values may be quoted.

/// How an upstream asks to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamChallenge {
    /// The Docker token protocol: get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// The challenges of a `WWW-Authenticate` value that berth can answer, in
/// the order given; schemes it cannot answer are left out.
pub fn parse_challenges(header: &str) -> Vec<UpstreamChallenge> {
    let mut challenges = Vec::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let token_len = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_len];
        let after = rest[token_len..].trim_start();
        if let Some(value_text) = after.strip_prefix('=') {
            let (value, remaining) = read_value(value_text.trim_start());
            // A parameter before any scheme is skipped.
            if let Some((_, params)) = current.as_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
            rest = remaining;
        } else {
            if let Some(done) = current.take() {
                challenges.extend(recognise(done));
            }
            current = Some((token.to_owned(), Vec::new()));
            rest = &rest[token_len..];
        }
    }
    if let Some(done) = current.take() {
        challenges.extend(recognise(done));
    }
    challenges
}

/// A parameter value: a quoted string (with `\` escapes) or a token.
fn read_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[at + 1..]),
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text.find(',').unwrap_or(text.len());
        (text[..end].trim().to_owned(), &text[end..])
    }
}

fn recognise((scheme, params): (String, Vec<(String, String)>)) -> Option<UpstreamChallenge> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(UpstreamChallenge::Bearer {
            realm: param("realm")?,
            service: param("service"),
            scope: param("scope"),
        })
    } else if scheme.eq_ignore_ascii_case("basic") {
        Some(UpstreamChallenge::Basic)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hubs_bearer_challenge() {
        let found = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(
            found,
            [UpstreamChallenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }]
        );
    }

    #[test]
    fn several_challenges_unquoted_values_and_escapes() {
        let found = parse_challenges(
            r#"Negotiate, Basic realm="a \"quoted\" realm", bearer realm=https://t.example/token , service = svc, error="insufficient_scope""#,
        );
        assert_eq!(
            found,
            [
                UpstreamChallenge::Basic,
                UpstreamChallenge::Bearer {
                    realm: "https://t.example/token".into(),
                    service: Some("svc".into()),
                    scope: None,
                }
            ]
        );
    }

    #[test]
    fn a_bearer_challenge_without_realm_is_unusable() {
        assert_eq!(parse_challenges(r#"Bearer service="x""#), []);
        assert_eq!(parse_challenges(""), []);
        assert_eq!(parse_challenges("=x, realm="), []);
        assert_eq!(parse_challenges("\n\r\x0b"), []);
    }
}
