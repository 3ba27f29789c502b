//! Durations in the configuration, written as people write them: `90s`,
//! `15m`, `24h` (`#[serde(with = "crate::duration_text")]`). A leaf, so
//! that every layer's settings can use it.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration such as 30s, 5m or 24h ({e})"
        ))
    })
}

/// A duration as people write it, with a unit: `30s`, `15m`, `4h`, `2d`,
/// `2w` (and combinations such as `1d 12h`). Zero is refused: what takes
/// one here (a tag's expiry) would be over as it starts.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 30s, 15m, 4h, 2d or 2w ({e})"))?;
    if duration.is_zero() {
        return Err(format!("{text:?}: a duration must be longer than zero"));
    }
    Ok(duration)
}

/// As [`parse`], zero allowed: for thresholds, where `0s` means none.
pub fn parse_or_zero(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 0s, 15m, 4h, 2d or 2w ({e})"))
}

/// For `Option<Duration>` fields (`#[serde(with = "crate::duration_text::optional")]`):
/// absent or `null` is `None`.
pub mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::parse(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_every_unit_from_seconds_to_weeks() {
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse(" 1d 12h "), Ok(Duration::from_secs(36 * 3600)));
        for bad in ["", "2", "two weeks", "2x", "0s", "-1d"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
