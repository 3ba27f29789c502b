//! Command-line value types: target specifications and byte sizes.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};

/// One registry under test, as given by `--target name=..,url=..,user=..,password=..,pid=..`.
#[derive(Clone)]
pub struct TargetSpec {
    pub name: String,
    pub url: reqwest::Url,
    pub credentials: Option<Credentials>,
    /// Process to sample for memory and CPU use; only meaningful when the
    /// registry runs on this machine.
    pub pid: Option<u32>,
}

#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

// Hand-written so that passwords never end up in logs or panic messages.
impl fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSpec")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("user", &self.credentials.as_ref().map(|c| &c.user))
            .field("pid", &self.pid)
            .finish()
    }
}

impl FromStr for TargetSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut name = None;
        let mut url = None;
        let mut user = None;
        let mut password = None;
        let mut pid = None;
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| anyhow!("target field {part:?} is not key=value"))?;
            match key.trim() {
                "name" => name = Some(value.to_owned()),
                "url" => {
                    let mut parsed = reqwest::Url::parse(value)
                        .with_context(|| format!("invalid target url {value:?}"))?;
                    // A trailing slash makes `Url::join("v2/...")` keep any path prefix.
                    if !parsed.path().ends_with('/') {
                        let path = format!("{}/", parsed.path());
                        parsed.set_path(&path);
                    }
                    url = Some(parsed);
                }
                "user" => user = Some(value.to_owned()),
                "password" => password = Some(value.to_owned()),
                "pid" => {
                    pid = Some(
                        value
                            .parse()
                            .with_context(|| format!("invalid pid {value:?}"))?,
                    )
                }
                other => bail!(
                    "unknown target field {other:?} (expected name, url, user, password, pid)"
                ),
            }
        }
        let url = url.ok_or_else(|| anyhow!("target {s:?} has no url="))?;
        let name = name.unwrap_or_else(|| url.authority().to_owned());
        let credentials = match (user, password) {
            (Some(user), Some(password)) => Some(Credentials { user, password }),
            (None, None) => None,
            _ => bail!("target {name}: user= and password= must be given together"),
        };
        Ok(TargetSpec {
            name,
            url,
            credentials,
            pid,
        })
    }
}

/// A byte count that parses `1GiB`, `256MiB`, `16M`, `4096`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let number: u64 = digits
            .parse()
            .with_context(|| format!("invalid size {s:?}"))?;
        // Sizes here are about memory and buffers, so K/M/G mean binary units.
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => bail!("unknown size unit {other:?} in {s:?}"),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| anyhow!("size {s:?} overflows"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{} {unit}", self.0 / size);
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!("1GiB".parse::<ByteSize>().ok(), Some(ByteSize(1 << 30)));
        assert_eq!("256MiB".parse::<ByteSize>().ok(), Some(ByteSize(256 << 20)));
        assert_eq!("16m".parse::<ByteSize>().ok(), Some(ByteSize(16 << 20)));
        assert_eq!("4096".parse::<ByteSize>().ok(), Some(ByteSize(4096)));
        assert!("12XB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(1 << 30).to_string(), "1 GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000 B");
    }

    #[test]
    fn parses_targets() -> anyhow::Result<()> {
        let t: TargetSpec =
            "name=berth,url=http://127.0.0.1:5000,user=admin,password=a=b,pid=42".parse()?;
        assert_eq!(t.name, "berth");
        assert_eq!(t.url.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(t.pid, Some(42));
        let creds = t.credentials.ok_or_else(|| anyhow!("no credentials"))?;
        assert_eq!(creds.user, "admin");
        // Only the first '=' separates key and value, so passwords may contain '='.
        assert_eq!(creds.password, "a=b");

        let anon: TargetSpec = "url=http://localhost:5001/prefix".parse()?;
        assert_eq!(anon.name, "localhost:5001");
        assert_eq!(anon.url.path(), "/prefix/");
        assert!(anon.credentials.is_none());

        assert!("name=x".parse::<TargetSpec>().is_err());
        assert!("url=http://a,user=x".parse::<TargetSpec>().is_err());
        Ok(())
    }
}
