//! Decimal digits eight at a time (D. Lemire, "Fast float parsing",
//! simdjson): whether eight bytes are all ASCII digits, their value, and an
//! unsigned integer's value from its text inside a line ([`unsigned_at`]),
//! which the JSON decoders call for every number they keep.

use std::ops::Range;

/// Eight `'0'` bytes.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Whether the eight bytes of `chunk` (little-endian) are all ASCII digits.
#[inline(always)]
pub(super) fn eight_digits(chunk: u64) -> bool {
    (chunk.wrapping_add(0x4646_4646_4646_4646) | chunk.wrapping_sub(ZEROS)) & 0x8080_8080_8080_8080
        == 0
}

/// The value of eight ASCII digits, the first in the lowest byte.
#[inline(always)]
pub(super) fn parse_eight(chunk: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = chunk.wrapping_sub(ZEROS);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    ((v & MASK).wrapping_mul(MUL1)).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2)) >> 32
        & 0xFFFF_FFFF
}

/// What `str::parse::<u64>` makes of `line[at]`, if it is digits only (no
/// sign): up to 19 digits eight at a time from the right, each word loaded
/// from the line itself with the bytes before the digits taken as `'0'`
/// (so `at` must lie in `line`). Anything longer, or digits within eight
/// bytes of the line's start, one at a time.
///
/// ```text
/// line = {"Bid":{"auction":1000,  at = the four digits
/// word = `ion":1000` minus its first byte, `ion":` masked to `00000`
/// ```
#[inline(always)]
pub(crate) fn unsigned_at(line: &[u8], at: Range<usize>) -> Option<u64> {
    if at.is_empty() || at.len() > 19 || at.start < 8 {
        return unsigned_value(&line[at]);
    }
    let (mut n, mut scale) = (0u64, 1u64);
    let (mut end, mut left) = (at.end, at.len());
    while left > 0 {
        let take = left.min(8);
        let word = u64::from_le_bytes(line[end - 8..end].try_into().expect("eight bytes"));
        // The digits are the word's high `take` bytes.
        let keep = !0u64 << (8 * (8 - take));
        let word = (word & keep) | (ZEROS & !keep);
        if !eight_digits(word) {
            return None;
        }
        n += parse_eight(word) * scale;
        scale = scale.wrapping_mul(100_000_000);
        (end, left) = (end - take, left - take);
    }
    Some(n)
}

/// The value of a number's text if it is a non-negative integer below
/// 2^64: what `str::parse::<u64>` makes of it, a digit at a time.
#[inline]
pub(crate) fn unsigned_value(number: &[u8]) -> Option<u64> {
    if number.is_empty() {
        return None;
    }
    number.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// On a number's text, what `str::parse::<u64>` makes of it.
        #[test]
        fn unsigned_values_are_parsed_ones(n in any::<u64>(), wide in any::<u128>(), f in any::<f64>()) {
            for text in [n.to_string(), wide.to_string(), format!("-{n}"), serde_json::to_string(&f).unwrap()] {
                prop_assert_eq!(unsigned_value(text.as_bytes()), text.parse::<u64>().ok(), "{}", text);
            }
        }

        /// Inside a line, whatever stands before and after it, the same:
        /// every length up to 24 digits (and leading zeros), any byte in
        /// them, at any distance from the line's start.
        #[test]
        fn unsigned_at_is_parse(
            before in "[ -~]{0,20}",
            digits in "[0-9]{0,24}",
            flip in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
            after in "[ -~]{0,10}",
        ) {
            let mut number = digits.into_bytes();
            if let (Some((i, b)), false) = (flip, number.is_empty()) {
                let i = i.index(number.len());
                number[i] = b;
            }
            let line = [before.as_bytes(), &number, after.as_bytes()].concat();
            let at = before.len()..before.len() + number.len();
            let want = std::str::from_utf8(&number).ok().and_then(|s| s.parse::<u64>().ok());
            prop_assert_eq!(unsigned_at(&line, at), want, "{:?}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn edges_of_u64() {
        let at = |text: &str| {
            let line = format!("{{\"price\":{text}}}");
            unsigned_at(line.as_bytes(), 9..9 + text.len())
        };
        assert_eq!(at("18446744073709551615"), Some(u64::MAX));
        assert_eq!(at("18446744073709551616"), None);
        assert_eq!(at("9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(at("0000000000000000001"), Some(1));
        assert_eq!(at("1767225600000"), Some(1_767_225_600_000));
        assert_eq!(at("12345678"), Some(12_345_678));
        assert_eq!(at("1234567+"), None);
    }
}
