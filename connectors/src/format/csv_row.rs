//! Decoding one CSV line into a typed record without a reader per line:
//! split the line into a reused `StringRecord`, then deserialize it.

use std::marker::PhantomData;

use csv::StringRecord;
use serde::de::DeserializeOwned;

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
}
