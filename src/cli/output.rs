//! Printing objects: aligned tables like `oc get` (`-o wide`: with more
//! columns), or JSON, YAML, `kind/name` or a JSONPath template for scripts.

use std::fmt::Write as _;
use std::io::Write;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::jsonpath::Template;

/// `-o/--output`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Json,
    Yaml,
    /// `kind/name`, one a line.
    Name,
    /// The table, with more columns.
    Wide,
    /// `jsonpath=TEMPLATE`, kubectl's JSONPath template ([`Template`]).
    JsonPath(Template),
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<OutputFormat, String> {
        match text {
            "json" => Ok(OutputFormat::Json),
            "yaml" => Ok(OutputFormat::Yaml),
            "name" => Ok(OutputFormat::Name),
            "wide" => Ok(OutputFormat::Wide),
            _ => match text.strip_prefix("jsonpath=") {
                Some(template) => template
                    .parse()
                    .map(OutputFormat::JsonPath)
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "unknown output format {text:?}: use json, yaml, name, wide or \
                     jsonpath=TEMPLATE"
                )),
            },
        }
    }
}

/// A column-aligned table. Columns are separated by three spaces, the last
/// one is not padded.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut rendered = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                if i + 1 == columns {
                    rendered.push_str(cell);
                } else {
                    let _ = write!(rendered, "{cell:<width$}   ");
                }
            }
            text.push_str(rendered.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Pretty JSON with four-space indentation, as `oc … -o json` prints it.
pub fn to_json(value: &impl Serialize) -> anyhow::Result<String> {
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    value.serialize(&mut serializer)?;
    buffer.push(b'\n');
    Ok(String::from_utf8(buffer)?)
}

pub fn to_yaml(value: &impl Serialize) -> anyhow::Result<String> {
    // Through serde_json::Value so that flattened unknown fields and
    // optional ones serialise exactly as they do in JSON.
    let value = serde_json::to_value(value)?;
    let mut text =
        serde_saphyr::to_string(&value).map_err(|e| anyhow::anyhow!("formatting YAML: {e}"))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Writes `value` as JSON, YAML or through a JSONPath template (`Name` and
/// `Wide` are the caller's business; here they write YAML).
pub fn write_structured(
    out: &mut impl Write,
    format: &OutputFormat,
    value: &impl Serialize,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => to_json(value)?,
        OutputFormat::Yaml | OutputFormat::Name | OutputFormat::Wide => to_yaml(value)?,
        OutputFormat::JsonPath(template) => template.render(&serde_json::to_value(value)?),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// How long ago `timestamp` (RFC 3339) was, as `oc get` shows ages:
/// `45s`, `12m`, `5h`, `3d`, `2y`; `<unknown>` if missing or unreadable.
pub fn age(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    let Some(then) = timestamp.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
        return "<unknown>".into();
    };
    let seconds = (now - then).whole_seconds().max(0);
    short_duration(seconds)
}

/// Seconds as `oc` shows durations, coarsening as they grow.
pub fn short_duration(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;
    // `5h`, or `5h3m`: whole `units`, then the whole `smaller` units left,
    // if any.
    let two = |s: i64, (unit, u): (i64, &str), (smaller, v): (i64, &str)| {
        let rest = (s % unit) / smaller;
        if rest == 0 {
            format!("{}{u}", s / unit)
        } else {
            format!("{}{u}{rest}{v}", s / unit)
        }
    };
    let (second, minute, hour, day) = ((1, "s"), (MINUTE, "m"), (HOUR, "h"), (DAY, "d"));
    match seconds {
        s if s < 2 * MINUTE => format!("{s}s"),
        s if s < 10 * MINUTE => two(s, minute, second),
        s if s < 3 * HOUR => format!("{}m", s / MINUTE),
        s if s < 8 * HOUR => two(s, hour, minute),
        s if s < 2 * DAY => format!("{}h", s / HOUR),
        s if s < 8 * DAY => two(s, day, hour),
        s if s < 2 * YEAR => format!("{}d", s / DAY),
        s => format!("{}y", s / YEAR),
    }
}

/// When `timestamp` (RFC 3339) comes, relative to now: `in 23h`, or
/// `expired`; `never` when there is none.
pub fn expires(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    until(timestamp, now, "never", "expired")
}

/// When `timestamp` (RFC 3339) comes, relative to now: `in 23h`; `past`
/// once it has come, `none` when there is no timestamp, the text itself
/// when it is not RFC 3339.
pub fn until(timestamp: Option<&str>, now: OffsetDateTime, none: &str, past: &str) -> String {
    let Some(text) = timestamp else {
        return none.into();
    };
    let Ok(then) = OffsetDateTime::parse(text, &Rfc3339) else {
        return text.to_owned();
    };
    let seconds = (then - now).whole_seconds();
    if seconds <= 0 {
        past.into()
    } else {
        format!("in {}", short_duration(seconds))
    }
}

/// Items joined by commas, as `oc` shows lists in a cell.
pub fn joined<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An API object that `get` and `create` can print.
pub trait Printable: Serialize {
    /// Lower-case kind, as in `-o name` and messages: `serviceaccount`.
    fn kind(&self) -> String;
    fn name(&self) -> &str;
    fn headers() -> &'static [&'static str];
    fn row(&self, now: OffsetDateTime) -> Vec<String>;
    /// The columns `-o wide` adds after those of [`Printable::headers`].
    fn wide_headers() -> &'static [&'static str] {
        &[]
    }
    /// The cells of [`Printable::wide_headers`].
    fn wide_cells(&self) -> Vec<String> {
        Vec::new()
    }
}

/// [`Printable::kind`] and [`Printable::name`] for a wire type with a
/// `kind` and `metadata.name`, as every `/api/v1` object has:
/// `object_identity!("project")`.
macro_rules! object_identity {
    ($kind:literal) => {
        fn kind(&self) -> String {
            $crate::cli::output::kind_or(&self.kind, $kind)
        }
        fn name(&self) -> &str {
            &self.metadata.name
        }
    };
}
pub(crate) use object_identity;

/// The table of `items`, with the wide columns if `wide`.
fn table_of<'a, T: Printable + 'a>(items: impl IntoIterator<Item = &'a T>, wide: bool) -> Table {
    let now = OffsetDateTime::now_utc();
    let mut headers = T::headers().to_vec();
    if wide {
        headers.extend_from_slice(T::wide_headers());
    }
    let mut table = Table::new(&headers);
    for item in items {
        let mut cells = item.row(now);
        if wide {
            // Padded so that the wide cells land under their headers.
            cells.resize(T::headers().len(), String::new());
            cells.extend(item.wide_cells());
        }
        table.row(cells);
    }
    table
}

/// Lower-case form of an object's `kind`, or `fallback` when it has none.
pub fn kind_or(kind: &str, fallback: &str) -> String {
    if kind.is_empty() {
        fallback.to_owned()
    } else {
        kind.to_ascii_lowercase()
    }
}

/// Prints a list as a table (or in `format`). An empty list prints "No
/// resources found" (with `namespace`) on standard error, as `oc` does.
pub fn print_list<T: Printable>(
    list: &super::client::List<T>,
    format: Option<&OutputFormat>,
    namespace: Option<&str>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Some(OutputFormat::Name) => {
            for item in &list.items {
                writeln!(out, "{}/{}", item.kind(), item.name())?;
            }
        }
        None | Some(OutputFormat::Wide) if list.items.is_empty() => match namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found"),
        },
        None | Some(OutputFormat::Wide) => {
            let wide = format.is_some();
            out.write_all(table_of(&list.items, wide).render().as_bytes())?;
        }
        Some(format) => write_structured(&mut out, format, list)?,
    }
    Ok(())
}

/// Prints one object as a one-row table (or in `format`).
pub fn print_one<T: Printable>(item: &T, format: Option<&OutputFormat>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Some(OutputFormat::Name) => writeln!(out, "{}/{}", item.kind(), item.name())?,
        None | Some(OutputFormat::Wide) => {
            let wide = format.is_some();
            out.write_all(table_of([item], wide).render().as_bytes())?;
        }
        Some(format) => write_structured(&mut out, format, item)?,
    }
    Ok(())
}

/// After a create: the object in `format`, else `kind/name created`.
pub fn print_created<T: Printable>(item: &T, format: Option<&OutputFormat>) -> anyhow::Result<()> {
    match format {
        None => {
            println!("{}/{} created", item.kind(), item.name());
            Ok(())
        }
        Some(_) => print_one(item, format),
    }
}

/// An RFC 3339 timestamp as `-o wide` shows it, or `<none>`.
pub fn timestamp_cell(timestamp: Option<&str>) -> String {
    timestamp.unwrap_or("<none>").to_owned()
}

/// The time an RFC 3339 text says, for the tests of what prints times.
#[cfg(test)]
pub(crate) fn datetime(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_pad_the_last_column() {
        let mut table = Table::new(&["NAME", "ROLE", "USERS"]);
        table.row(vec![
            "system:image-puller".into(),
            "x".into(),
            "alice, bob".into(),
        ]);
        table.row(vec!["admin".into(), "registry-admin".into(), "".into()]);
        assert_eq!(
            table.render(),
            "NAME                  ROLE             USERS\n\
             system:image-puller   x                alice, bob\n\
             admin                 registry-admin\n"
        );
        assert!(!table.is_empty());
        assert!(Table::new(&["NAME"]).is_empty());
    }

    #[test]
    fn short_rows_are_padded_with_empty_cells() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x".into()]);
        assert_eq!(table.render(), "A   B\nx\n");
    }

    #[test]
    fn ages_look_like_oc() {
        let now = datetime("2026-11-22T10:00:00Z");
        let at = |secs: i64| {
            let t = now - time::Duration::seconds(secs);
            age(Some(&t.format(&Rfc3339).unwrap()), now)
        };
        assert_eq!(at(5), "5s");
        assert_eq!(at(119), "119s");
        assert_eq!(at(150), "2m30s");
        assert_eq!(at(600), "10m");
        assert_eq!(at(4 * 3600 + 120), "4h2m");
        assert_eq!(at(30 * 3600), "30h");
        assert_eq!(at(3 * 86400), "3d");
        assert_eq!(at(100 * 86400), "100d");
        assert_eq!(at(800 * 86400), "2y");
        assert_eq!(at(-30), "0s");
        assert_eq!(age(None, now), "<unknown>");
        assert_eq!(age(Some("yesterday"), now), "<unknown>");
    }

    #[test]
    fn expiry() {
        let now = datetime("2026-11-22T10:00:00Z");
        assert_eq!(expires(Some("2026-11-23T09:00:00Z"), now), "in 23h");
        assert_eq!(expires(Some("2026-11-22T09:00:00Z"), now), "expired");
        assert_eq!(expires(None, now), "never");
    }

    #[test]
    fn json_and_yaml() {
        let value = serde_json::json!({"kind": "Project", "metadata": {"name": "p"}, "items": []});
        let json = to_json(&value).unwrap();
        assert!(json.contains("\n    \"kind\": \"Project\""), "{json}");
        assert!(json.ends_with("}\n"));
        let yaml = to_yaml(&value).unwrap();
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, value);
        assert!(yaml.contains("kind: Project"), "{yaml}");
    }

    #[test]
    fn output_formats() {
        assert_eq!("json".parse(), Ok(OutputFormat::Json));
        assert_eq!("wide".parse(), Ok(OutputFormat::Wide));
        assert!(matches!(
            "jsonpath={.items[*].metadata.name}".parse(),
            Ok(OutputFormat::JsonPath(_))
        ));
        let error = "jsonpath={.items".parse::<OutputFormat>().unwrap_err();
        assert!(error.contains("not closed"), "{error}");
        let error = "table".parse::<OutputFormat>().unwrap_err();
        assert!(error.contains("jsonpath=TEMPLATE"), "{error}");
    }

    #[test]
    fn joined_cells() {
        assert_eq!(joined(["a", "b"]), "a, b");
        assert_eq!(joined(Vec::<String>::new()), "");
    }
}
