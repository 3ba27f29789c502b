//! Tag patterns of immutable-tag policies: globs over tag names, `*` for
//! any run of characters (none included) and `?` for exactly one. Every
//! other character is one a tag may hold and matches itself.

use std::fmt;
use std::str::FromStr;

use super::names::MAX_TAG_LEN;

/// A valid pattern (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagPattern(Box<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tag pattern {0:?} is invalid: up to 128 of [A-Za-z0-9_.-], '*' (any characters) and '?' (one character)"
)]
pub struct PatternError(pub String);

impl TagPattern {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `tag` matches the whole pattern.
    pub fn matches(&self, tag: &str) -> bool {
        glob_matches(self.0.as_bytes(), tag.as_bytes())
    }
}

impl FromStr for TagPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= MAX_TAG_LEN
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'*' | b'?')
            });
        if valid {
            Ok(TagPattern(s.into()))
        } else {
            Err(PatternError(s.to_owned()))
        }
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative glob matching with one back-tracking point (the last `*`):
/// linear in practice, and never exponential whatever the pattern.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, tag: &str) -> bool {
        pattern.parse::<TagPattern>().unwrap().matches(tag)
    }

    #[test]
    fn globs_match_whole_tags() {
        assert!(matches("v*", "v1.0"));
        assert!(matches("v*", "v"));
        assert!(!matches("v*", "latest"));
        assert!(matches("release-?", "release-1"));
        assert!(!matches("release-?", "release-10"));
        assert!(matches("*-stable", "1.2-stable"));
        assert!(!matches("*-stable", "1.2-stable-rc"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("latest", "latest"));
        assert!(!matches("latest", "Latest"));
        assert!(!matches("1.0", "1x0"), "a dot is a dot, not any character");
    }

    #[test]
    fn patterns_hold_tag_characters_and_wildcards_only() {
        for bad in ["", "v[0-9]", "a/b", "v 1", "ü*", &"a".repeat(129)] {
            assert!(bad.parse::<TagPattern>().is_err(), "{bad:?}");
        }
        for good in ["*", "?", "v*", "_x.y-z*?"] {
            assert!(good.parse::<TagPattern>().is_ok(), "{good:?}");
        }
    }
}
