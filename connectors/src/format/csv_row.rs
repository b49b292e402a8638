//! Decoding one CSV line into a typed record without a reader per line:
//! first straight from the line's fields ([`super::csv_fields`]), and where
//! that path declines (quotes, unusual types, errors) by splitting the line
//! into a reused `StringRecord` and deserializing it with the `csv` crate.

use std::marker::PhantomData;

use csv::StringRecord;
use serde::de::DeserializeOwned;

use super::csv_fields::Row;

/// A reusable CSV line decoder for records of type `T`.
pub struct CsvDecoder<T> {
    record: StringRecord,
    field: String,
    _type: PhantomData<T>,
}

impl<T: DeserializeOwned> CsvDecoder<T> {
    /// A new decoder.
    pub fn new() -> Self {
        CsvDecoder {
            record: StringRecord::new(),
            field: String::new(),
            _type: PhantomData,
        }
    }

    /// Decodes one line (RFC 4180 quoting; no embedded newlines).
    pub fn decode(&mut self, line: &str) -> Result<T, String> {
        self.decode_bytes(line.as_bytes())
    }

    /// Decodes one line of bytes; a line that is not UTF-8 is an error.
    pub fn decode_bytes(&mut self, line: &[u8]) -> Result<T, String> {
        let mut row = Row::new(line);
        match T::deserialize(&mut row) {
            Ok(record) if row.rest_is_utf8() => Ok(record),
            _ => {
                let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?;
                self.decode_general(line)
            }
        }
    }

    /// Decodes one line through the `csv` crate.
    fn decode_general(&mut self, line: &str) -> Result<T, String> {
        self.split(line)?;
        self.record.deserialize(None).map_err(|e| match e.kind() {
            csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                Some(field) => format!("field {}: {}", field + 1, err.kind()),
                None => err.kind().to_string(),
            },
            _ => e.to_string(),
        })
    }

    fn split(&mut self, line: &str) -> Result<(), String> {
        self.record.clear();
        if !line.contains('"') {
            for field in line.split(',') {
                self.record.push_field(field);
            }
            return Ok(());
        }
        let mut chars = line.chars().peekable();
        loop {
            self.field.clear();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            self.field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => self.field.push(c),
                        None => return Err("unterminated quoted field".into()),
                    }
                }
                match chars.next() {
                    None => {
                        self.record.push_field(&self.field);
                        return Ok(());
                    }
                    Some(',') => self.record.push_field(&self.field),
                    Some(c) => return Err(format!("unexpected '{c}' after quoted field")),
                }
            } else {
                loop {
                    match chars.next() {
                        Some(',') => break,
                        Some(c) => self.field.push(c),
                        None => {
                            self.record.push_field(&self.field);
                            return Ok(());
                        }
                    }
                }
                self.record.push_field(&self.field);
            }
        }
    }
}

impl<T: DeserializeOwned> Default for CsvDecoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields() {
        let mut decoder = CsvDecoder::<(String, u32, String)>::new();
        assert_eq!(
            decoder.decode(r#""a,b",7,"say ""hi""""#).unwrap(),
            ("a,b".to_string(), 7, "say \"hi\"".to_string())
        );
        assert_eq!(
            decoder.decode("x,8,").unwrap(),
            ("x".to_string(), 8, String::new())
        );
        assert!(decoder.decode(r#""open,1,2"#).is_err());
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Channel {
        Apple,
        Google,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Bid {
        auction: u64,
        _channel: serde::de::IgnoredAny,
        channel: Option<Channel>,
        name: String,
    }

    /// Checks that the fast path and the `csv` crate give the same value or
    /// the same error for `line`; true if the fast path decoded it.
    fn agree<T: DeserializeOwned + PartialEq + std::fmt::Debug>(line: &str) -> bool {
        let mut decoder = CsvDecoder::<T>::new();
        let general = decoder.decode_general(line);
        assert_eq!(decoder.decode(line), general, "line {line:?}");
        T::deserialize(&mut Row::new(line.as_bytes())).is_ok()
    }

    /// A line that is not UTF-8 is an error wherever the bad byte sits:
    /// in a text field, an ignored field or a field the record does not read.
    #[test]
    fn rejects_lines_that_are_not_utf8() {
        let mut decoder = CsvDecoder::<Bid>::new();
        assert_eq!(
            decoder.decode_bytes(b"7,x\xc3\xa9,Apple,n\xc3\xa9,\xc3\xa9"),
            Ok(Bid {
                auction: 7,
                _channel: serde::de::IgnoredAny,
                channel: Some(Channel::Apple),
                name: "n\u{e9}".into()
            })
        );
        for line in [
            &b"7,\xff,Apple,name"[..],
            b"7,x,Apple,n\xffme",
            b"7,x,Apple,name,\xff",
            b"\xff7,x,Apple,name",
            b"7,x,Ap\xffple,name",
        ] {
            let err = decoder.decode_bytes(line).unwrap_err();
            assert!(err.starts_with("invalid UTF-8"), "{line:?}: {err}");
        }
    }

    /// Every line of up to four fields from a vocabulary of numbers, words,
    /// empty and quoted fields, into rows of several shapes.
    #[test]
    fn agrees_with_the_csv_crate() {
        let words = [
            "0",
            "+5",
            "-3",
            "-9223372036854775808",
            "-",
            "18446744073709551616",
            "0x1f",
            "1.5",
            "1767225600001",
            "12345678",
            "99999999999999999999",
            "0123456789",
            "1234567:9",
            "12/4",
            "true",
            "",
            "x",
            "Apple",
            "\"a,b\"",
            "a\"b",
        ];
        let mut rows: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..4 {
            let longer: Vec<Vec<&str>> = rows
                .iter()
                .filter(|r| r.len() == rows.last().map_or(0, Vec::len))
                .flat_map(|r| words.iter().map(move |w| [r.clone(), vec![*w]].concat()))
                .collect();
            rows.extend(longer);
        }
        let lines: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
        let mut fast = [0usize; 5];
        for line in &lines {
            fast[0] += agree::<Bid>(line) as usize;
            fast[1] += agree::<(u64, String, Option<u32>)>(line) as usize;
            fast[2] += agree::<(i64, (u8, bool), String)>(line) as usize;
            fast[3] += agree::<Vec<Option<i32>>>(line) as usize;
            fast[4] += agree::<(char, f32, Option<Channel>)>(line) as usize;
        }
        // The fast path really ran (the nested tuple always falls back).
        assert!(
            fast[0] > 100 && fast[1] > 100 && fast[3] > 100 && fast[4] > 100,
            "{fast:?}"
        );
        assert_eq!(fast[2], 0);
    }
}
