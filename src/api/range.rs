//! Parsing of the two range headers of the API: `Range` on blob GETs
//! (RFC 9110, single ranges) and `Content-Range` on upload chunks
//! (`<start>-<end>`, inclusive).

use std::ops::Range;

use crate::domain::registry::ChunkRange;

/// What a blob `Range` header asks for, against a blob of known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: serve the whole blob with 200.
    Whole,
    /// Serve these bytes with 206.
    Partial(Range<u64>),
    /// The range cannot be served: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header. Syntax the server does not handle (other
/// units, several ranges) is ignored, as RFC 9110 allows; a well-formed
/// range outside the blob, or one that ends before it starts, is 416.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial(size.saturating_sub(n)..size),
            None => ByteRange::Whole,
        },
        // bytes=A-: from A to the end.
        (false, true) => match number(first) {
            Some(a) if a < size => ByteRange::Partial(a..size),
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        },
        // bytes=A-B: inclusive, B clamped to the end.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b && a < size => ByteRange::Partial(a..(b + 1).min(size)),
            (Some(_), Some(_)) => ByteRange::Unsatisfiable,
            _ => ByteRange::Whole,
        },
        (true, true) => ByteRange::Whole,
    }
}

/// Parses an upload chunk's `Content-Range`. The spec's form is
/// `<start>-<end>`; `bytes=`/`bytes ` prefixes and a `/<total>` suffix, which
/// some clients send, are tolerated.
pub fn parse_content_range(header: &str) -> Option<ChunkRange> {
    let mut spec = header.trim();
    for prefix in ["bytes=", "bytes "] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            spec = rest.trim();
        }
    }
    let spec = spec.split('/').next().unwrap_or(spec);
    let (start, end) = spec.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(start) || !digits(end) {
        return None;
    }
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    (start <= end).then_some(ChunkRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blob_ranges_like_the_conformance_suite() {
        let size = 2048;
        assert_eq!(
            parse_range(Some("bytes=500-1499"), size),
            ByteRange::Partial(500..1500)
        );
        assert_eq!(
            parse_range(Some("bytes=500-"), size),
            ByteRange::Partial(500..2048)
        );
        assert_eq!(
            parse_range(Some("bytes=-500"), size),
            ByteRange::Partial(1548..2048)
        );
        assert_eq!(
            parse_range(Some("bytes=2000-5000"), size),
            ByteRange::Partial(2000..2048)
        );
        assert_eq!(
            parse_range(Some("bytes=500-0"), size),
            ByteRange::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=5000-10000"), size),
            ByteRange::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), size),
            ByteRange::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-5000"), size),
            ByteRange::Partial(0..2048)
        );
    }

    #[test]
    fn ignores_what_it_does_not_serve() {
        for h in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,4-5"),
            Some("bytes=x-y"),
            Some("bytes=-"),
            Some("bytes=5"),
        ] {
            assert_eq!(parse_range(h, 100), ByteRange::Whole, "{h:?}");
        }
    }

    #[test]
    fn empty_blob_has_no_satisfiable_range() {
        assert_eq!(parse_range(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("0-1023"),
            Some(ChunkRange {
                start: 0,
                end: 1023
            })
        );
        assert_eq!(
            parse_content_range("bytes=5-9"),
            Some(ChunkRange { start: 5, end: 9 })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/100"),
            Some(ChunkRange { start: 5, end: 9 })
        );
        for bad in ["", "5", "9-5", "-5", "a-b", "1-2-3", "+1-2"] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn partial_ranges_stay_inside_the_blob(header in "bytes=[0-9]{0,6}-[0-9]{0,6}", size in 0u64..100_000) {
            if let ByteRange::Partial(r) = parse_range(Some(&header), size) {
                prop_assert!(r.start < r.end);
                prop_assert!(r.end <= size);
            }
        }

        #[test]
        fn range_parser_never_panics(header in ".{0,40}", size in any::<u64>()) {
            let _ = parse_range(Some(&header), size);
            let _ = parse_content_range(&header);
        }

        #[test]
        fn content_range_round_trips(start in 0u64..1 << 40, len in 1u64..1 << 30) {
            let end = start + len - 1;
            prop_assert_eq!(parse_content_range(&format!("{start}-{end}")), Some(ChunkRange { start, end }));
        }
    }
}
