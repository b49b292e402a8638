//! Checking JSON without decoding it: [`JsonScan`] walks a line's bytes and
//! says whether they are well-formed JSON, many bytes a step inside
//! strings, so a source can pass over records its job does not read and
//! still report the malformed ones. It accepts what `std::str::from_utf8`
//! and then `serde_json` accept when a value is ignored (RFC 8259 JSON in
//! UTF-8), with two differences: it does not turn numbers into floats, so it
//! also accepts numbers too large for an `f64` (`1e400`), and it refuses
//! values nested more than 128 levels deep (the limit `serde_json` puts on
//! values it decodes).
//!
//! One loop walks a value, its nesting kept in the bits of a `u128`, and the
//! cursor stays in a local; strings go sixteen bytes a step (SSE2 on x86-64,
//! else eight) and digits eight. A walk of recursive calls that each loaded
//! and stored the cursor, a byte a step, cost over twice the time.

use super::digits::unsigned_at;

/// Nesting deeper than this is an error (as where `serde_json` decodes).
const MAX_DEPTH: u32 = 128;

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// A cursor over a JSON text; each step checks what it passes over.
///
/// ```
/// use tidewater_connectors::format::JsonScan;
///
/// assert!(JsonScan::check(br#"{"Bid":{"auction":1,"url":"https://x"}}"#).is_ok());
/// let error = JsonScan::check(br#"{"Bid":{"auction":1,}}"#).unwrap_err();
/// assert!(error.contains("column 21"), "{error}");
///
/// // A tagged line: look at the tag, then check the rest.
/// let mut scan = JsonScan::new(br#" {"Person": {"id": 7}} "#);
/// scan.expect(b'{')?;
/// assert_eq!(scan.string()?, b"Person");
/// scan.expect(b':')?;
/// scan.value()?;
/// scan.expect(b'}')?;
/// scan.end()?;
/// # Ok::<(), String>(())
/// ```
#[derive(Debug)]
pub struct JsonScan<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Where a text stops being JSON, and why.
pub(super) struct Fault {
    at: usize,
    what: &'static str,
}

#[cold]
fn fault<T>(at: usize, what: &'static str) -> Result<T, Fault> {
    Err(Fault { at, what })
}

impl<'a> JsonScan<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        JsonScan { bytes, pos: 0 }
    }

    /// Checks that `bytes` hold exactly one JSON value (with whitespace around it).
    pub fn check(bytes: &[u8]) -> Result<(), String> {
        let mut scan = JsonScan::new(bytes);
        scan.value()?;
        scan.end()
    }

    /// Moves the cursor to the end of a step, or describes its fault.
    fn step(&mut self, to: Result<usize, Fault>) -> Result<(), String> {
        match to {
            Ok(pos) => {
                self.pos = pos;
                Ok(())
            }
            Err(Fault { at, what }) => Err(format!("malformed JSON at column {}: {what}", at + 1)),
        }
    }

    /// Passes over whitespace and then `byte`.
    pub fn expect(&mut self, byte: u8) -> Result<(), String> {
        let mut pos = self.pos;
        match space(self.bytes, &mut pos) {
            Some(b) if b == byte => self.step(Ok(pos + 1)),
            _ => Err(format!(
                "malformed JSON at column {}: expected `{}`",
                pos + 1,
                byte as char
            )),
        }
    }

    /// Checks that only whitespace is left.
    pub fn end(&mut self) -> Result<(), String> {
        let mut pos = self.pos;
        let to = match space(self.bytes, &mut pos) {
            None => Ok(pos),
            Some(_) => fault(pos, "trailing characters"),
        };
        self.step(to)
    }

    /// Passes over whitespace and one string, returning its raw contents
    /// (escapes left as they are).
    pub fn string(&mut self) -> Result<&'a [u8], String> {
        self.expect(b'"')?;
        let start = self.pos;
        self.step(string_end(self.bytes, start))?;
        Ok(&self.bytes[start..self.pos - 1])
    }

    /// Passes over whitespace and one JSON value.
    pub fn value(&mut self) -> Result<(), String> {
        self.step(value_end(self.bytes, self.pos))
    }

    /// Passes over whitespace and one string, returning it unescaped.
    pub fn text(&mut self) -> Result<std::borrow::Cow<'a, str>, String> {
        self.expect(b'"')?;
        let quote = self.pos - 1;
        self.step(string_end(self.bytes, self.pos))?;
        let raw = &self.bytes[quote + 1..self.pos - 1];
        if raw.contains(&b'\\') {
            let quoted = &self.bytes[quote..self.pos];
            let text = serde_json::from_slice(quoted).map_err(|e| e.to_string())?;
            return Ok(std::borrow::Cow::Owned(text));
        }
        // Checked as it was passed over.
        let text = std::str::from_utf8(raw).map_err(|e| format!("invalid UTF-8: {e}"))?;
        Ok(std::borrow::Cow::Borrowed(text))
    }

    /// Passes over whitespace and one number that is a non-negative
    /// integer below 2^64.
    pub fn unsigned(&mut self) -> Result<u64, String> {
        let mut pos = self.pos;
        let at = match space(self.bytes, &mut pos) {
            Some(b'-' | b'0'..=b'9') => pos,
            _ => {
                return Err(format!(
                    "malformed JSON at column {}: expected a number",
                    pos + 1
                ))
            }
        };
        self.step(number_end(self.bytes, at))?;
        unsigned_at(self.bytes, at..self.pos)
            .ok_or_else(|| format!("column {}: not an unsigned 64-bit integer", at + 1))
    }

    /// Passes over whitespace and one object, calling `member` with the
    /// raw key of each member (escapes left as they are) and the cursor at
    /// its value, which `member` must pass over.
    ///
    /// ```
    /// use tidewater_connectors::format::JsonScan;
    ///
    /// let mut scan = JsonScan::new(br#"{"id": 7, "name": "a\u00e9", "tags": [1]}"#);
    /// let (mut id, mut name) = (0, String::new());
    /// scan.members(|scan, key| {
    ///     match key {
    ///         b"id" => id = scan.unsigned()?,
    ///         b"name" => name = scan.text()?.into_owned(),
    ///         _ => scan.value()?,
    ///     }
    ///     Ok(())
    /// })?;
    /// scan.end()?;
    /// assert_eq!((id, name.as_str()), (7, "aé"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a [u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(b'{')?;
        let mut pos = self.pos;
        if space(self.bytes, &mut pos) == Some(b'}') {
            self.pos = pos + 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            let mut pos = self.pos;
            match space(self.bytes, &mut pos) {
                Some(b',') => self.pos = pos + 1,
                Some(b'}') => {
                    self.pos = pos + 1;
                    return Ok(());
                }
                _ => {
                    let what =
                        format!("malformed JSON at column {}: expected `,` or `}}`", pos + 1);
                    return Err(what);
                }
            }
        }
    }
}

/// Passes over whitespace and returns the next byte, if any.
#[inline(always)]
fn space(bytes: &[u8], pos: &mut usize) -> Option<u8> {
    while let Some(&b) = bytes.get(*pos) {
        if b > b' ' || !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return Some(b);
        }
        *pos += 1;
    }
    None
}

/// The end of the value at `pos` (after whitespace).
fn value_end(bytes: &[u8], mut pos: usize) -> Result<usize, Fault> {
    // A stack of bits, the innermost level lowest: 1 for an object, 0 for
    // an array.
    let (mut objects, mut depth) = (0u128, 0u32);
    loop {
        // A value is due at `pos`.
        match space(bytes, &mut pos) {
            Some(b'"') => pos = string_end(bytes, pos + 1)?,
            Some(open_bracket @ (b'{' | b'[')) => {
                let (object, close) = match open_bracket {
                    b'{' => (true, b'}'),
                    _ => (false, b']'),
                };
                if depth == MAX_DEPTH {
                    return fault(pos, "nested too deeply");
                }
                pos += 1;
                if space(bytes, &mut pos) == Some(close) {
                    pos += 1;
                } else {
                    objects = objects << 1 | u128::from(object);
                    depth += 1;
                    if object {
                        pos = member_key(bytes, pos)?;
                    }
                    continue;
                }
            }
            Some(b'-' | b'0'..=b'9') => pos = number_end(bytes, pos)?,
            Some(b't') => pos = literal_end(bytes, pos, b"true")?,
            Some(b'f') => pos = literal_end(bytes, pos, b"false")?,
            Some(b'n') => pos = literal_end(bytes, pos, b"null")?,
            _ => return fault(pos, "expected a value"),
        }
        // After a value: close levels until another element is due.
        loop {
            if depth == 0 {
                return Ok(pos);
            }
            let object = objects & 1 == 1;
            match space(bytes, &mut pos) {
                Some(b',') => {
                    pos += 1;
                    if object {
                        pos = member_key(bytes, pos)?;
                    }
                    break;
                }
                Some(b'}') if object => (pos, objects, depth) = (pos + 1, objects >> 1, depth - 1),
                Some(b']') if !object => (pos, objects, depth) = (pos + 1, objects >> 1, depth - 1),
                _ if object => return fault(pos, "expected `,` or `}`"),
                _ => return fault(pos, "expected `,` or `]`"),
            }
        }
    }
}

/// The end of an object member's key and colon at `pos` (after whitespace).
#[inline(always)]
fn member_key(bytes: &[u8], mut pos: usize) -> Result<usize, Fault> {
    if space(bytes, &mut pos) != Some(b'"') {
        return fault(pos, "expected a key");
    }
    pos = string_end(bytes, pos + 1)?;
    match space(bytes, &mut pos) {
        Some(b':') => Ok(pos + 1),
        _ => fault(pos, "expected `:`"),
    }
}

/// The number of bytes at the start of `rest`, in whole eight-byte words,
/// before the first whose byte `marked` marks (a word's mark bits are the
/// high bits of its marked bytes; a false mark may only follow a true one).
#[inline(always)]
fn unmarked(rest: &[u8], marked: impl Fn(u64) -> u64) -> usize {
    let mut run = 0;
    for chunk in rest.chunks_exact(8) {
        let marks = marked(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        if marks != 0 {
            return run + (marks.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run
}

/// The high bit of each byte of `w` that a string cannot hold as it is: a
/// quote, a backslash, a control character or a byte of a multi-byte
/// character (a false mark may follow a true one).
#[inline(always)]
fn special(w: u64) -> u64 {
    const HIGH: u64 = splat(0x80);
    let zero = |w: u64| w.wrapping_sub(splat(0x01)) & !w & HIGH;
    (w.wrapping_sub(splat(0x20)) & !w & HIGH)
        | (w & HIGH)
        | zero(w ^ splat(b'"'))
        | zero(w ^ splat(b'\\'))
}

/// The end of a string whose contents start at `pos`: after its closing
/// quote. Many bytes a step (see [`plain_run`]), then one at a time from the
/// first [`special`] byte.
#[inline(always)]
pub(super) fn string_end(bytes: &[u8], mut pos: usize) -> Result<usize, Fault> {
    loop {
        pos += plain_run(bytes.get(pos..).unwrap_or_default());
        match bytes.get(pos) {
            Some(b'"') => return Ok(pos + 1),
            Some(b'\\') => pos = escape_end(bytes, pos)?,
            Some(0..=0x1f) => return fault(pos, "control character in a string"),
            Some(0x80..) => pos = multi_byte_end(bytes, pos)?,
            Some(_) => pos += 1,
            None => return fault(pos, "unterminated string"),
        }
    }
}

/// The number of bytes at the start of `rest` before the first [`special`]
/// one (or before its last few, up to seven, which are left to the caller):
/// sixteen a step with three SSE2 comparisons (SSE2 is part of every x86-64
/// processor; eight-byte words alone took twice the time), then eight.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn plain_run(rest: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut run = 0;
    for block in rest.chunks_exact(16) {
        // SAFETY: SSE2 is always available on x86-64, and the unaligned load
        // reads the sixteen bytes of `block`.
        let marks = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Signed: bytes at or above 0x80 are negative, so below 0x20 too.
            let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), low)) as u32
        };
        if marks != 0 {
            return run + marks.trailing_zeros() as usize;
        }
        run += 16;
    }
    run + unmarked(&rest[run..], special)
}

/// Elsewhere, eight bytes a step.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn plain_run(rest: &[u8]) -> usize {
    unmarked(rest, special)
}

/// The end of the escape sequence whose backslash is at `pos`.
fn escape_end(bytes: &[u8], pos: usize) -> Result<usize, Fault> {
    match bytes.get(pos + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 2),
        Some(b'u') => match bytes.get(pos + 2..pos + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(pos + 6),
            _ => fault(pos + 2, "invalid \\u escape"),
        },
        _ => fault(pos + 1, "invalid escape"),
    }
}

/// The end of the multi-byte UTF-8 character that starts at `pos`.
fn multi_byte_end(bytes: &[u8], pos: usize) -> Result<usize, Fault> {
    let width = match bytes[pos] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return fault(pos, "invalid UTF-8 in a string"),
    };
    match bytes.get(pos..pos + width).map(std::str::from_utf8) {
        Some(Ok(_)) => Ok(pos + width),
        _ => fault(pos, "invalid UTF-8 in a string"),
    }
}

/// The end of `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` at `pos`.
#[inline(always)]
pub(super) fn number_end(bytes: &[u8], mut pos: usize) -> Result<usize, Fault> {
    // A byte is not a digit if, less b'0', it is above 9.
    let not_digit = |w: u64| {
        let d = w ^ splat(b'0');
        (d.wrapping_add(splat(127 - 9)) | d) & splat(0x80)
    };
    let digits = |pos: usize| {
        let rest = bytes.get(pos..).unwrap_or_default();
        let run = unmarked(rest, not_digit);
        pos + run
            + rest[run..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
    };
    let some_digits = |pos: usize| match digits(pos) {
        end if end > pos => Ok(end),
        _ => fault(pos, "invalid number"),
    };
    if bytes[pos] == b'-' {
        pos += 1;
    }
    pos = match bytes.get(pos) {
        Some(b'0') => pos + 1,
        Some(b'1'..=b'9') => digits(pos),
        _ => return fault(pos, "invalid number"),
    };
    if bytes.get(pos) == Some(&b'.') {
        pos = some_digits(pos + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        pos = some_digits(pos)?;
    }
    Ok(pos)
}

/// The end of the literal `word` at `pos`.
fn literal_end(bytes: &[u8], pos: usize, word: &[u8]) -> Result<usize, Fault> {
    match bytes[pos..].starts_with(word) {
        true => Ok(pos + word.len()),
        false => fault(pos, "expected a value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `bytes` are UTF-8 that `serde_json` accepts as one ignored
    /// value, numbers too large for an `f64` allowed.
    fn serde_accepts(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes).is_ok()
            && serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .is_ok_or_else_contains("number out of range")
    }

    trait OutOfRange {
        fn is_ok_or_else_contains(&self, error: &str) -> bool;
    }

    impl<T> OutOfRange for Result<T, serde_json::Error> {
        fn is_ok_or_else_contains(&self, error: &str) -> bool {
            self.as_ref()
                .map_or_else(|e| e.to_string().contains(error), |_| true)
        }
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let cases: &[&[u8]] = &[
            b"{}",
            b" [ ] ",
            b"0",
            b"-0.5e+10",
            b"1e400",
            b"01",
            b"1.",
            b"1e",
            b"-",
            b".5",
            b"true",
            b"tru",
            b"nul",
            b"\"a\\u00e9\\n\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"tab\there\"",
            b"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
            b"\"\xc3\"",
            b"\"\xff\"",
            b"\"\xed\xa0\x80\"",
            b"\"unterminated",
            b"\"0123456\\\"89abcdef\"",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"[1,2",
            b"[1 2]",
            b"{\"a\":[{\"b\":null}]} x",
            b"",
            b"   ",
        ];
        for &case in cases {
            let ours = JsonScan::check(case);
            assert_eq!(
                ours.is_ok(),
                serde_accepts(case),
                "{:?}: {ours:?}",
                String::from_utf8_lossy(case)
            );
        }
        let deep = |n| "[".repeat(n) + &"]".repeat(n);
        assert!(JsonScan::check(deep(128).as_bytes()).is_ok());
        assert!(JsonScan::check(deep(129).as_bytes()).is_err());
    }

    /// JSON values with short strings of ASCII, escapes and multi-byte
    /// characters, printed by `serde_json`.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| n.into()),
            (-1e12f64..1e12).prop_map(|f| f.into()),
            "[ -~é€😀\"\\\\\n\t\u{1}]{0,20}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z\"é]{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Every printed value is accepted, and so is it with spaces around.
        #[test]
        fn accepts_what_serde_json_prints(value in json_value(), pretty in any::<bool>()) {
            let text = match pretty {
                true => serde_json::to_string_pretty(&value).unwrap(),
                false => serde_json::to_string(&value).unwrap(),
            };
            prop_assert!(JsonScan::check(text.as_bytes()).is_ok(), "{}", text);
            let spaced = format!(" \t{text}\r\n");
            prop_assert!(JsonScan::check(spaced.as_bytes()).is_ok(), "{}", spaced);
        }

        /// Cutting, dropping or changing one byte of a value: accepted
        /// exactly when serde_json accepts it.
        #[test]
        fn rejects_what_serde_json_rejects(
            value in json_value(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b','), Just(b'}'), Just(0x01u8), Just(0xc3u8), any::<u8>()],
            edit in 0..3u8,
        ) {
            let mut bytes = serde_json::to_vec(&value).unwrap();
            let i = at.index(bytes.len());
            match edit {
                0 => bytes.truncate(i),
                1 => { bytes.remove(i); }
                _ => bytes[i] = byte,
            }
            prop_assert_eq!(
                JsonScan::check(&bytes).is_ok(),
                serde_accepts(&bytes),
                "{:?}", String::from_utf8_lossy(&bytes)
            );
        }
    }
}
