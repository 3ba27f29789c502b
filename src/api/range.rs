//! Parsing of the two range headers of the API: `Range` on blob GETs
//! (RFC 9110, single ranges) and `Content-Range` on upload chunks
//! (`<start>-<end>`, inclusive).

use std::ops::Range;

use crate::domain::uploads::ChunkRange;

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
        // bytes=A-B: inclusive; a B at or past the end means "to the end".
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b && a < size => ByteRange::Partial(a..b.min(size - 1) + 1),
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
        use ByteRange::{Partial, Unsatisfiable};
        let cases = [
            ("bytes=500-1499", Partial(500..1500)),
            ("bytes=500-", Partial(500..2048)),
            ("bytes=-500", Partial(1548..2048)),
            ("bytes=2000-5000", Partial(2000..2048)),
            ("bytes=500-0", Unsatisfiable),
            ("bytes=5000-10000", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=-5000", Partial(0..2048)),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_range(Some(header), 2048), expected, "{header}");
        }
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

    /// The edges of a blob and of `u64`, for every form of range.
    #[test]
    fn boundaries() {
        let size = 22u64;
        let partial = |r: std::ops::Range<u64>| ByteRange::Partial(r);
        for (header, expected) in [
            ("bytes=0-0", partial(0..1)),
            ("bytes=0-21", partial(0..22)),
            ("bytes=0-22", partial(0..22)),
            ("bytes=21-21", partial(21..22)),
            ("bytes=21-", partial(21..22)),
            ("bytes=1-18446744073709551615", partial(1..22)),
            ("bytes=0-18446744073709551615", partial(0..22)),
            ("bytes=21-18446744073709551615", partial(21..22)),
            ("bytes=22-22", ByteRange::Unsatisfiable),
            ("bytes=22-", ByteRange::Unsatisfiable),
            ("bytes=22-18446744073709551615", ByteRange::Unsatisfiable),
            ("bytes=18446744073709551615-", ByteRange::Unsatisfiable),
            (
                "bytes=18446744073709551615-18446744073709551615",
                ByteRange::Unsatisfiable,
            ),
            ("bytes=-1", partial(21..22)),
            ("bytes=-22", partial(0..22)),
            ("bytes=-23", partial(0..22)),
            ("bytes=-18446744073709551615", partial(0..22)),
            ("bytes=-0", ByteRange::Unsatisfiable),
            // Numbers past u64 are not ranges berth can serve: ignored.
            ("bytes=0-18446744073709551616", ByteRange::Whole),
            // Several ranges are ignored (RFC 9110 allows it): 200, whole.
            ("bytes=0-0,21-21", ByteRange::Whole),
            ("bytes=22-30,40-50", ByteRange::Whole),
        ] {
            assert_eq!(parse_range(Some(header), size), expected, "{header}");
        }
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551615"), u64::MAX),
            partial(0..u64::MAX)
        );
        assert_eq!(
            parse_range(Some("bytes=-5"), u64::MAX),
            partial(u64::MAX - 5..u64::MAX)
        );
    }

    proptest! {
        /// Whatever the numbers, a range served is non-empty, inside the
        /// blob, and the one asked for where the blob has it.
        #[test]
        fn ranges_at_any_edge(size in prop_oneof![Just(0u64), Just(1), 1u64..1 << 20, Just(u64::MAX)],
                              first in prop_oneof![Just(0u64), any::<u64>()],
                              last in prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
                              offset in prop_oneof![Just(0u64), Just(1)]) {
            // First and last relative to the blob's edges as well as anywhere.
            let first = if offset == 1 { size.saturating_sub(1).min(first) } else { first };
            for header in [format!("bytes={first}-{last}"), format!("bytes={first}-"), format!("bytes=-{last}")] {
                match parse_range(Some(&header), size) {
                    ByteRange::Partial(r) => {
                        prop_assert!(r.start < r.end, "{header}: {r:?}");
                        prop_assert!(r.end <= size, "{header}: {r:?}");
                    }
                    ByteRange::Unsatisfiable => {}
                    ByteRange::Whole => prop_assert!(false, "{header} was ignored"),
                }
            }
            match parse_range(Some(&format!("bytes={first}-{last}")), size) {
                ByteRange::Partial(r) => {
                    prop_assert_eq!(r.start, first);
                    prop_assert_eq!(r.end - 1, last.min(size - 1));
                }
                ByteRange::Unsatisfiable => prop_assert!(first >= size || first > last),
                ByteRange::Whole => unreachable!(),
            }
            // Several ranges are ignored, whatever they say.
            prop_assert_eq!(parse_range(Some(&format!("bytes={first}-{last},0-0")), size), ByteRange::Whole);
        }

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
