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
