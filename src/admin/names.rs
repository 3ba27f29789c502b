//! Names, passwords, e-mail addresses and durations as the administration
//! API accepts them.

use std::time::Duration;

use super::*;
use crate::auth::roles::{ROLES, verbs_of};

/// Longest project name (a DNS label, as in OpenShift).
pub const MAX_PROJECT_NAME: usize = 63;
/// Longest user, group, service account or token name.
pub const MAX_OBJECT_NAME: usize = 253;
/// Longest password accepted (argon2 takes any length; this bounds work).
pub const MAX_PASSWORD: usize = 1024;

// ---------------------------------------------------------------------------
// Names

/// `[a-z0-9]+([._-][a-z0-9]+)*`, at most 63 characters.
pub fn valid_project_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= MAX_PROJECT_NAME
        && !name.is_empty()
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.chars().all(alnum))
}

/// `[a-z0-9]([-a-z0-9._@]*[a-z0-9])?`, at most 253 characters: service
/// accounts, users, groups and tokens.
pub fn valid_object_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= MAX_OBJECT_NAME
                && alnum(first)
                && alnum(last)
                && bytes
                    .iter()
                    .all(|&b| alnum(b) || matches!(b, b'-' | b'.' | b'_' | b'@'))
        }
        _ => false,
    }
}

pub(super) fn require_object_name(what: &str, name: Option<&str>) -> AdminResult<String> {
    let name = name.ok_or_else(|| AdminError::Invalid("metadata.name: required".into()))?;
    if name.starts_with("system:") {
        return Err(AdminError::Invalid(format!(
            "{what} name {name:?} is invalid: system: names are built in and cannot be created"
        )));
    }
    if !valid_object_name(name) {
        return Err(AdminError::Invalid(format!(
            "{what} name {name:?} is invalid: lowercase letters, digits, '-', '.', '_' and '@', \
             starting and ending with a letter or digit, at most {MAX_OBJECT_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

pub(super) fn require_password(password: &str) -> AdminResult<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "password: must be 1 to {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

pub(super) fn require_email(email: Option<&str>) -> AdminResult<Option<String>> {
    match email {
        None | Some("") => Ok(None),
        Some(e)
            if e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                && !e.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(Some(e.to_owned()))
        }
        Some(e) => Err(AdminError::Invalid(format!(
            "email {e:?} is not an e-mail address"
        ))),
    }
}

/// A role name as given in a path: one of [`ROLES`], else 422.
pub fn require_role(role: &str) -> AdminResult<()> {
    if verbs_of(role).is_some() {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "role {role:?} does not exist; roles are {}",
            ROLES.join(", ")
        )))
    }
}

/// The units of a duration, as the OpenAPI document lists them.
const DURATION_UNITS: &[&str] = &[
    "nsec", "ns", "usec", "us", "msec", "ms", "seconds", "second", "sec", "s", "minutes", "minute",
    "min", "m", "hours", "hour", "hr", "h", "days", "day", "d", "weeks", "week", "w", "months",
    "month", "M", "years", "year", "y",
];

/// Whether `text` has the form the OpenAPI document gives for durations,
/// `^ *([0-9]{1,12} *UNIT *)+$`: humantime alone would also take fractions
/// and spaces inside numbers, which the document does not promise.
fn documented_duration(text: &str) -> bool {
    let mut rest = text.trim_start_matches(' ');
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if !(1..=12).contains(&digits) {
            return false;
        }
        rest = rest[digits..].trim_start_matches(' ');
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        if !DURATION_UNITS.contains(&&rest[..letters]) {
            return false;
        }
        rest = rest[letters..].trim_start_matches(' ');
    }
    true
}

/// `24h`, `90m`, `30d`: the lifetime of a new token.
pub fn parse_expires_in(text: &str) -> AdminResult<Duration> {
    let invalid = || {
        AdminError::Invalid(format!(
            "spec.expiresIn {text:?} is not a duration such as 24h, 90m or 30d"
        ))
    };
    if !documented_duration(text) {
        return Err(invalid());
    }
    let duration = humantime::parse_duration(text.trim_matches(' ')).map_err(|_| invalid())?;
    // Whole seconds at least, and no more than a century.
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(100 * 366 * 86_400) {
        return Err(invalid());
    }
    Ok(duration)
}
