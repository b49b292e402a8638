//! Checking a JSON line by the shape of one before it: [`JsonShape`] is a
//! line's fixed text (brackets, keys, separators, whitespace) with holes
//! where its string and number values were. A later line that fills the
//! same text's holes with other well-formed strings and numbers is
//! well-formed JSON too, and matching it takes a comparison per run of
//! fixed text instead of a step per token: machine-written JSON lines (every
//! line of `tidewater generate --what events`, most producers' lines) repeat
//! their keys in the same order.
//!
//! Why a match is enough: JSON's tokens do not depend on what surrounds
//! them but for being inside a string or not, and the fixed text leaves a
//! matching line in the same state as the shape's line at every hole. A
//! number hole takes the longest number there, which the fixed text after it
//! (a `,`, `}`, `]` or space in the shape's line) must then follow.

use super::json_scan::{number_end, string_end};
use super::line_marks::LineMarks;
use super::skeleton::Skeleton;

/// A run of a shape's fixed text (a range of its `text`) and the hole after
/// it, if any (the last run has none).
type Step = (std::ops::Range<usize>, Option<Hole>);

/// What a hole in a shape takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hole {
    /// A string: its contents and closing quote (the opening quote is fixed).
    String,
    /// A number.
    Number,
}

/// The shape of a well-formed JSON line (see the module's documentation).
///
/// ```
/// use tidewater_connectors::format::{JsonScan, JsonShape};
///
/// let first = br#"{"Bid":{"auction":1000,"url":"https://x","extra":"ab"}}"#;
/// JsonScan::check(first)?;
/// let shape = JsonShape::of(first);
/// assert!(shape.matches(br#"{"Bid":{"auction":7,"url":"h\"i","extra":""}}"#));
/// assert!(!shape.matches(br#"{"Bid":{"auction":7,"url":"h\"i","extra":""}"#));
/// assert!(!shape.matches(br#"{"Bid":{"auction":07,"url":"","extra":""}}"#));
/// assert!(!shape.matches(br#"{"Bid":{"bidder":7,"url":"","extra":""}}"#));
///
/// // Where the values are, and whose.
/// let keys: Vec<_> = shape.holes().map(|(_, key)| key.unwrap()).collect();
/// assert_eq!(keys, [&b"auction"[..], b"url", b"extra"]);
/// let line = br#"{"Bid":{"auction":7,"url":"h","extra":""}}"#;
/// let mut values = Vec::new();
/// assert!(shape.fill(line, |at| values.push(&line[at])));
/// assert_eq!(values, [&b"7"[..], b"h", b""]);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonShape {
    text: Vec<u8>,
    steps: Vec<Step>,
    /// Each hole, and the range of `text` that is its key, if any.
    holes: Vec<(Hole, Option<std::ops::Range<usize>>)>,
    /// The line's skeleton, if it is plain, its numbers are integers and
    /// the processor can cut one (see `skeleton.rs`).
    skeleton: Option<Skeleton>,
}

impl JsonShape {
    /// The shape of `line`, which must be well-formed JSON (check it with
    /// [`JsonScan::check`](super::JsonScan::check) first: a shape taken from
    /// anything else matches nothing reliably).
    pub fn of(line: &[u8]) -> JsonShape {
        let mut shape = JsonShape {
            text: Vec::with_capacity(line.len()),
            steps: Vec::new(),
            holes: Vec::new(),
            skeleton: None,
        };
        let mut start = 0;
        let mut pos = 0;
        // For the skeleton: the quotes so far, those of hole strings, and
        // whether every number is an integer.
        let (mut quotes, mut hole_quotes, mut integers) = (0u32, 0u64, true);
        // The key before the next value, while only `:` and spaces follow it.
        let mut key = None;
        while let Some(&b) = line.get(pos) {
            match b {
                b'"' => {
                    let end = string_end(line, pos + 1).unwrap_or(line.len());
                    let after = line[end..].iter().find(|b| !b.is_ascii_whitespace());
                    if after == Some(&b':') {
                        // A key: fixed text.
                        let at = shape.text.len() + 1;
                        key = Some(at..at + end - pos - 2);
                        shape.text.extend_from_slice(&line[pos..end]);
                    } else {
                        shape.text.push(b'"');
                        shape.hole(&mut start, Hole::String, key.take());
                        hole_quotes |= 3u64.checked_shl(quotes).unwrap_or(0);
                    }
                    quotes += 2;
                    pos = end;
                }
                b'-' | b'0'..=b'9' => {
                    shape.hole(&mut start, Hole::Number, key.take());
                    let end = number_end(line, pos).unwrap_or(line.len());
                    let digits = line[pos..end].strip_prefix(b"-").unwrap_or(&line[pos..end]);
                    integers &= digits.iter().all(u8::is_ascii_digit);
                    pos = end;
                }
                _ => {
                    if !matches!(b, b':' | b' ' | b'\t' | b'\n' | b'\r') {
                        key = None;
                    }
                    shape.text.push(b);
                    pos += 1;
                }
            }
        }
        let end = shape.text.len();
        shape.steps.push((start..end, None));
        if integers && quotes <= 64 {
            shape.skeleton = Skeleton::of(line, hole_quotes);
        }
        shape
    }

    /// Ends the fixed text that began at `start` and adds a hole after it,
    /// the value of `key` if that is given.
    fn hole(&mut self, start: &mut usize, hole: Hole, key: Option<std::ops::Range<usize>>) {
        let end = self.text.len();
        self.steps.push((*start..end, Some(hole)));
        self.holes.push((hole, key));
        *start = end;
    }

    /// The holes, in order: what each takes, and the raw key (escapes left
    /// as they are) whose value it is, if it is an object member's value.
    pub fn holes(&self) -> impl Iterator<Item = (Hole, Option<&[u8]>)> {
        (self.holes.iter()).map(|(hole, key)| (*hole, key.clone().map(|k| &self.text[k])))
    }

    /// Whether `line` has this shape, so that it is well-formed JSON.
    ///
    /// A plain line (see [`JsonShape::fill`]) is first compared by its
    /// skeleton, where the processor can cut one (x86-64 with AVX-512 VBMI2):
    /// the line less its hole strings' contents and with each number cut to
    /// one digit, a few vector instructions per 64 bytes (see `skeleton.rs`
    /// for why an equal skeleton is a match); any other line is matched
    /// value by value.
    pub fn matches(&self, line: &[u8]) -> bool {
        // As in `fill`: most lines of another shape differ from the start.
        self.fixed_at(line, 0, &self.steps[0].0)
            && ((self.skeleton.as_ref()).is_some_and(|s| s.matches(line))
                || self.fill(line, |_| {}))
    }

    /// Whether `line` has this shape, calling `hole` with where each hole's
    /// value lies in it, in order (a string's contents, without its quotes).
    ///
    /// A line of at most 1 024 bytes with no backslash, control
    /// character or multi-byte character (most machine-written lines) has its
    /// quotes and digits marked 64 bytes a step first (`line_marks.rs`), and
    /// each value's end found by a bit search; any other line is scanned
    /// value by value. Both take the same lines (proptest).
    #[inline]
    pub fn fill(&self, line: &[u8], hole: impl FnMut(std::ops::Range<usize>)) -> bool {
        // A line of another shape (a line of another kind of event, say)
        // most often differs in its first fixed text: not classified.
        if !self.fixed_at(line, 0, &self.steps[0].0) {
            return false;
        }
        match LineMarks::of(line) {
            Some(marks) => self.fill_plain(line, &marks, hole),
            None => self.fill_scanned(line, hole),
        }
    }

    /// [`JsonShape::fill`] of a line without bytes to look at closer, whose
    /// `marks` say where its strings and digits end.
    #[inline(always)]
    fn fill_plain(
        &self,
        line: &[u8],
        marks: &LineMarks,
        mut hole: impl FnMut(std::ops::Range<usize>),
    ) -> bool {
        let mut pos = 0;
        for (fixed, value) in &self.steps {
            if !self.fixed_at(line, pos, fixed) {
                return false;
            }
            pos += fixed.len();
            match value {
                None => {}
                Some(Hole::String) => {
                    let end = marks.quote_at(pos);
                    if end >= line.len() {
                        return false;
                    }
                    hole(pos..end);
                    pos = end + 1;
                }
                Some(Hole::Number) => {
                    let start = pos;
                    if line.get(pos) == Some(&b'-') {
                        pos += 1;
                    }
                    pos = match line.get(pos) {
                        Some(b'0') => pos + 1,
                        Some(b'1'..=b'9') => marks.other(pos + 1).min(line.len()),
                        _ => return false,
                    };
                    // A fraction or an exponent: scanned.
                    if let Some(b'.' | b'e' | b'E') = line.get(pos) {
                        match number_end(line, start) {
                            Ok(end) => pos = end,
                            Err(_) => return false,
                        }
                    }
                    hole(start..pos);
                }
            }
        }
        pos == line.len()
    }

    /// [`JsonShape::fill`] of any line, a value at a time.
    fn fill_scanned(&self, line: &[u8], mut hole: impl FnMut(std::ops::Range<usize>)) -> bool {
        let mut pos = 0;
        for (fixed, value) in &self.steps {
            if !self.fixed_at(line, pos, fixed) {
                return false;
            }
            pos += fixed.len();
            pos = match value {
                None => pos,
                Some(Hole::String) => match string_end(line, pos) {
                    Ok(end) => {
                        hole(pos..end - 1);
                        end
                    }
                    Err(_) => return false,
                },
                Some(Hole::Number) => match line.get(pos) {
                    Some(b'-' | b'0'..=b'9') => match number_end(line, pos) {
                        Ok(end) => {
                            hole(pos..end);
                            end
                        }
                        Err(_) => return false,
                    },
                    _ => return false,
                },
            };
        }
        pos == line.len()
    }

    /// Whether `line` holds the fixed text `fixed` at `pos`.
    #[inline(always)]
    fn fixed_at(&self, line: &[u8], pos: usize, fixed: &std::ops::Range<usize>) -> bool {
        let fixed = &self.text[fixed.clone()];
        line.get(pos..pos + fixed.len())
            .is_some_and(|bytes| same(bytes, fixed))
    }
}

/// Whether two slices of the same length are equal: in words, the last
/// one overlapping the one before, inline (the short runs of fixed text
/// spent more in calls to `memcmp`, and then in a byte loop for the tail).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    let u64_at = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8"));
    let u32_at = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4"));
    match n {
        8.. => {
            let mut i = 0;
            while i + 8 < n {
                if u64_at(a, i) != u64_at(b, i) {
                    return false;
                }
                i += 8;
            }
            u64_at(a, n - 8) == u64_at(b, n - 8)
        }
        4.. => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        _ => a.iter().zip(b).all(|(x, y)| x == y),
    }
}

#[cfg(test)]
mod tests {
    use super::super::JsonScan;
    use super::*;
    use proptest::prelude::*;

    /// Flat and nested objects of strings and numbers, as a JSON-lines
    /// writer prints them: one shape, many values.
    fn record() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        record_of("[ -~é\"\\\\\n]{0,24}", false)
    }

    /// The same with strings of the characters `strings` matches, and
    /// numbers that are counts (`u64`) if `counts`.
    fn record_of(strings: &'static str, counts: bool) -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        let number = match counts {
            true => any::<u64>().prop_map(|n| n.to_string()).boxed(),
            false => prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (-1e9f64..1e9).prop_map(|f| serde_json::to_string(&f).unwrap()),
            ]
            .boxed(),
        };
        let string = strings
            .prop_map(|s| serde_json::to_string(&s).unwrap())
            .boxed();
        let null = Just("null".to_string()).boxed();
        let line = |values: Vec<String>| {
            let members: Vec<String> = (values.iter().enumerate())
                .map(|(i, v)| format!("\"k{i}\":{v}"))
                .collect();
            let members = members.join(",");
            format!("{{\"Tag\":{{{members}}}, \"n\": [1, {{}}]}}").into_bytes()
        };
        prop::collection::vec(0..3u8, 1..8).prop_flat_map(move |kinds| {
            let values: Vec<BoxedStrategy<String>> = (kinds.iter())
                .map(|kind| [&number, &string, &null][*kind as usize].clone())
                .collect();
            (values.clone(), values).prop_map(move |(a, b)| (line(a), line(b)))
        })
    }

    proptest! {
        /// A line of the same shape matches; any one-byte change that
        /// still matches is well-formed JSON.
        #[test]
        fn matching_lines_are_json((first, second) in record(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            prop_assert!(JsonScan::check(&first).is_ok());
            let shape = JsonShape::of(&first);
            prop_assert!(shape.matches(&first));
            prop_assert!(shape.matches(&second), "{}", String::from_utf8_lossy(&second));
            let mut changed = second.clone();
            let i = at.index(changed.len());
            changed[i] = byte;
            if shape.matches(&changed) {
                prop_assert!(JsonScan::check(&changed).is_ok(), "{}", String::from_utf8_lossy(&changed));
            }
            changed.remove(i);
            if shape.matches(&changed) {
                prop_assert!(JsonScan::check(&changed).is_ok(), "{}", String::from_utf8_lossy(&changed));
            }
        }
    }

    /// `first`, `second`, and `second` with the byte at `at` changed to
    /// `byte`, cut, or with `byte` inserted there.
    fn variants(first: &[u8], second: &[u8], at: prop::sample::Index, byte: u8) -> [Vec<u8>; 5] {
        let i = at.index(second.len());
        let mut changed = second.to_vec();
        changed[i] = byte;
        let mut cut = second.to_vec();
        cut.remove(i);
        let mut longer = second.to_vec();
        longer.insert(i, byte);
        [first.to_vec(), second.to_vec(), changed, cut, longer]
    }

    proptest! {
        /// Lines classified first and lines scanned value by value match
        /// alike, with the same holes: printable ASCII lines, as they are
        /// and with a byte changed, cut or inserted.
        #[test]
        fn plain_lines_fill_as_scanned_ones((first, second) in record_of("[ -~]{0,24}", false), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let shape = JsonShape::of(&first);
            for line in &variants(&first, &second, at, byte) {
                let Some(marks) = LineMarks::of(line) else {
                    continue;
                };
                let (mut plain, mut scanned) = (Vec::new(), Vec::new());
                let by_marks = shape.fill_plain(line, &marks, |at| plain.push(at));
                let by_scan = shape.fill_scanned(line, |at| scanned.push(at));
                prop_assert_eq!(by_marks, by_scan, "{}", String::from_utf8_lossy(line));
                if by_scan {
                    prop_assert_eq!(plain, scanned);
                }
            }
        }
    }

    proptest! {
        /// A plain line whose skeleton is the shape's matches it value by
        /// value too; a line of the same shape with other strings and
        /// counts has the shape's skeleton (where the processor cuts them).
        #[test]
        fn equal_skeletons_match((first, second) in record_of("[ -~]{0,24}", true), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let shape = JsonShape::of(&first);
            let Some(skeleton) = &shape.skeleton else {
                return Ok(());
            };
            if LineMarks::of(&second).is_some() {
                prop_assert!(skeleton.matches(&second), "{}", String::from_utf8_lossy(&second));
            }
            for line in &variants(&first, &second, at, byte) {
                if skeleton.matches(line) {
                    prop_assert!(shape.fill(line, |_| {}), "{}", String::from_utf8_lossy(line));
                }
            }
        }
    }

    #[test]
    fn skeletons_of_bid_lines() {
        let bid = br#"{"Bid":{"auction":1000,"bidder":1001,"price":73134520,"channel":"channel-7568","url":"https://x/item.htm?query=1","date_time":1767225600000,"extra":"tjegpem"}}"#;
        let shape = JsonShape::of(bid);
        let Some(skeleton) = &shape.skeleton else {
            return; // The processor cannot cut skeletons.
        };
        let ok = |line: &[u8]| skeleton.matches(line);
        assert!(ok(bid));
        assert!(ok(br#"{"Bid":{"auction":7,"bidder":0,"price":10,"channel":"","url":"h","date_time":9,"extra":"a:1,b:2"}}"#));
        for bad in [
            &br#"{"Bid":{"auction":07,"bidder":0,"price":10,"channel":"","url":"h","date_time":9,"extra":""}}"#[..],
            br#"{"Bid":{"auction":7,"bidder":0,"price":1.5,"channel":"","url":"h","date_time":9,"extra":""}}"#,
            br#"{"Bid":{"auction":7,"bidder":0,"price":-1,"channel":"","url":"h","date_time":9,"extra":""}}"#,
            br#"{"Bid":{"auctiom":7,"bidder":0,"price":1,"channel":"","url":"h","date_time":9,"extra":""}}"#,
            br#"{"Bid":{"auction":7,"bidder":0,"price":1,"channel":"","url":"h","date_time":9,"extra":""}"#,
            br#"{"Bid":{"auction":7,"bidder":0,"price":1,"channel":"","url":"h","date_time":9,"extra":"",}}"#,
            br#"{"Bid":{"auction":7,"bidder":0,"price":1,"channel":"","url":"h","date_time":9,"extra":"x"}} "#,
            br#"{"Bid":{"auction":7,"bidder":0,"price":1,"channel":"","url":"h","date_time":,"extra":"x"}}"#,
        ] {
            assert!(!ok(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn same_compares_every_byte() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!same(&a, &b), "{n} bytes, byte {i} changed");
            }
        }
    }

    #[test]
    fn keys_and_spaces_are_fixed_values_are_holes() {
        let shape = JsonShape::of(br#" {"a" : "x", "b":[1, -2.5e3, true]} "#);
        assert!(shape.matches(br#" {"a" : "yy\u00e9", "b":[0, 7, true]} "#));
        assert!(!shape.matches(br#" {"a" : "x", "b":[1, 2, false]} "#));
        assert!(!shape.matches(br#" {"a": "x", "b":[1, 2, true]} "#));
        assert!(!shape.matches(br#" {"a" : "x", "b":[1, 2, true]}"#));
        assert!(!shape.matches(br#" {"a" : 1, "b":[1, 2, true]} "#));
        assert!(!shape.matches(br#" {"a" : "x", "b":["1", 2, true]} "#));
        assert!(!shape.matches(b" {\"a\" : \"\x01\", \"b\":[1, 2, true]} "));
        assert!(!shape.matches(br#" {"a" : "x", "b":[1., 2, true]} "#));
        // Only a member's own value is that key's; array elements are no one's.
        let holes: Vec<_> = shape.holes().collect();
        let a = Some(&b"a"[..]);
        assert_eq!(
            holes,
            [
                (Hole::String, a),
                (Hole::Number, None),
                (Hole::Number, None)
            ]
        );
        let line = br#" {"a" : "y\"", "b":[10, -1, true]} "#;
        let mut values = Vec::new();
        assert!(shape.fill(line, |at| values.push(&line[at])));
        assert_eq!(values, [&br#"y\""#[..], b"10", b"-1"]);
    }
}
