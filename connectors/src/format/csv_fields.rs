//! The fast path of CSV decoding: a serde deserializer straight over the
//! bytes of one unquoted line, parsing each field in place (no
//! `StringRecord`, no copy of the line, UTF-8 checked only in text fields).
//!
//! It handles what rows are made of: a struct, tuple or sequence of
//! scalar fields (integers, floats, `bool`, `char`, strings, `Option`s where
//! an empty field is `None`, unit enum variants by name, ignored fields).
//! Anything else, a quote anywhere in the line, or any error makes it answer
//! [`Fallback`], and [`super::CsvDecoder`] decodes the line again through the
//! `csv` crate, so values and error messages are the `csv` crate's whenever
//! this path does not succeed. Where it succeeds it yields the same value:
//! `tests::agrees_with_the_csv_crate` checks that on random lines.

use super::digits::{eight_digits, parse_eight};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// This line needs the general decoder.
#[derive(Debug)]
pub struct Fallback;

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not decodable on the fast path")
    }
}

impl std::error::Error for Fallback {}

impl de::Error for Fallback {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Fallback
    }
}

/// Deserializes a whole line as a row. The line is bytes, checked to be
/// UTF-8 as it is read: text fields by `str::from_utf8`, numbers by being
/// digits, ignored and unread fields by [`Row::rest_is_utf8`] and an inline
/// ASCII test first.
pub struct Row<'a> {
    /// The fields not yet consumed; `None` once the last one is.
    rest: Option<&'a [u8]>,
}

impl<'a> Row<'a> {
    /// A row over `line` (without its newline).
    pub fn new(line: &'a [u8]) -> Self {
        Row { rest: Some(line) }
    }

    /// Whether the fields not consumed are UTF-8.
    pub fn rest_is_utf8(&self) -> bool {
        self.rest.is_none_or(is_utf8)
    }

    /// Consumes the next field as text.
    fn next_text(&mut self) -> Result<&'a str, Fallback> {
        std::str::from_utf8(self.next_field()?).map_err(|_| Fallback)
    }

    /// Consumes the next field; the caller has checked that there is one.
    fn next_field(&mut self) -> Result<&'a [u8], Fallback> {
        let rest = self.rest.ok_or(Fallback)?;
        match rest.iter().position(|&b| b == b',' || b == b'"') {
            Some(i) if rest[i] == b'"' => Err(Fallback),
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Ok(&rest[..i])
            }
            None => {
                self.rest = None;
                Ok(rest)
            }
        }
    }

    /// Consumes the next field as a decimal integer (an optional sign, then
    /// digits), parsing while it scans for the comma; returns the magnitude
    /// and whether it was negative.
    fn next_integer(&mut self) -> Result<(u64, bool), Fallback> {
        let bytes = self.rest.ok_or(Fallback)?;
        let negative = bytes.first() == Some(&b'-');
        let start = usize::from(negative || bytes.first() == Some(&b'+'));
        // Eight digits at a time while there are, then one at a time; wraps
        // only past 19 digits, which are parsed again below.
        let mut end = start;
        let mut n: u64 = 0;
        while let Some(chunk) = bytes.get(end..end + 8) {
            let chunk = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !eight_digits(chunk) {
                break;
            }
            n = n.wrapping_mul(100_000_000).wrapping_add(parse_eight(chunk));
            end += 8;
        }
        while let Some(&b) = bytes.get(end) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            end += 1;
        }
        match bytes.get(end) {
            None => self.rest = None,
            Some(b',') => self.rest = Some(&bytes[end + 1..]),
            Some(_) => return Err(Fallback),
        }
        match end - start {
            0 => Err(Fallback),
            1..=19 => Ok((n, negative)),
            _ => {
                let digits = std::str::from_utf8(&bytes[start..end]).map_err(|_| Fallback)?;
                Ok((digits.parse().map_err(|_| Fallback)?, negative))
            }
        }
    }

    /// Whether the next field is empty (the caller has checked there is one).
    fn next_is_empty(&self) -> bool {
        self.rest
            .is_some_and(|r| r.is_empty() || r.starts_with(b","))
    }
}

/// Whether `bytes` are UTF-8, testing for ASCII (inline, cheap) first.
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

impl<'de, 'a> de::Deserializer<'de> for &mut Row<'a> {
    type Error = Fallback;

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_seq(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_seq(self)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_seq(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_seq(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_newtype_struct(self)
    }

    /// A row of one scalar, an enum or a map is the general decoder's.
    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Fallback> {
        Err(Fallback)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct map enum identifier ignored_any
    }
}

impl<'de, 'a> de::SeqAccess<'de> for Row<'a> {
    type Error = Fallback;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Fallback> {
        if self.rest.is_none() {
            return Ok(None);
        }
        seed.deserialize(Field(self)).map(Some)
    }
}

/// The next field of a row.
struct Field<'r, 'a>(&'r mut Row<'a>);

impl Field<'_, '_> {
    fn parse<T: std::str::FromStr>(&mut self) -> Result<T, Fallback> {
        self.0.next_text()?.parse().map_err(|_| Fallback)
    }

    fn unsigned<T: TryFrom<u64>>(&mut self) -> Result<T, Fallback> {
        match self.0.next_integer()? {
            (n, false) => T::try_from(n).map_err(|_| Fallback),
            (_, true) => Err(Fallback),
        }
    }

    fn signed<T: TryFrom<i64>>(&mut self) -> Result<T, Fallback> {
        let (n, negative) = self.0.next_integer()?;
        let n = i64::try_from(n).map_err(|_| Fallback)?;
        T::try_from(if negative { -n } else { n }).map_err(|_| Fallback)
    }
}

macro_rules! parsed {
    ($($method:ident => $visit:ident by $how:ident),*) => {
        $(fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Fallback> {
            visitor.$visit(self.$how()?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Field<'_, '_> {
    type Error = Fallback;

    parsed! {
        deserialize_bool => visit_bool by parse,
        deserialize_i8 => visit_i8 by signed, deserialize_i16 => visit_i16 by signed,
        deserialize_i32 => visit_i32 by signed, deserialize_i64 => visit_i64 by signed,
        deserialize_i128 => visit_i128 by parse,
        deserialize_u8 => visit_u8 by unsigned, deserialize_u16 => visit_u16 by unsigned,
        deserialize_u32 => visit_u32 by unsigned, deserialize_u64 => visit_u64 by unsigned,
        deserialize_u128 => visit_u128 by parse,
        deserialize_f32 => visit_f32 by parse, deserialize_f64 => visit_f64 by parse,
        deserialize_char => visit_char by parse
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_str(self.0.next_text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_str(self.0.next_text()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        if self.0.next_is_empty() {
            self.0.next_field()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        visitor.visit_enum(self.0.next_text()?.into_deserializer())
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        if !is_utf8(self.0.next_field()?) {
            return Err(Fallback);
        }
        visitor.visit_unit()
    }

    /// Everything else (nested rows, bytes, maps) is the general decoder's.
    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Fallback> {
        Err(Fallback)
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// An integer field reads as `str::parse` reads its digits, of any
        /// length, with what follows it left for the next field.
        #[test]
        fn integers_read_as_parsed(sign in "[+-]?", digits in "[0-9]{0,24}", rest in "(,[0-9a-z,]{0,12})?") {
            let line = format!("{sign}{digits}{rest}");
            let mut row = Row::new(line.as_bytes());
            let want = digits.parse::<u64>().ok().map(|n| (n, sign == "-"));
            prop_assert_eq!(row.next_integer().ok(), want, "{}", line);
            if want.is_some() {
                prop_assert_eq!(row.rest, rest.strip_prefix(',').map(str::as_bytes));
            }
        }
    }
}
