//! Record formats: decoding a line into a typed record, encoding a record as
//! a line. CSV (no header) and JSON lines, both through serde; and Avro
//! messages ([`AvroCodec`]) for Kafka.

mod avro;
pub mod bytes;
mod csv_fields;
mod csv_row;
mod digits;
mod json_scan;
mod json_shape;
mod line_marks;
mod skeleton;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use avro::AvroCodec;
pub use csv_row::CsvDecoder;
pub(crate) use digits::unsigned_at;
pub use json_scan::JsonScan;
pub use json_shape::{Hole, JsonShape};

/// A line-oriented record format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Comma-separated values, no header; fields in declaration order.
    #[default]
    Csv,
    /// One JSON object (or value) per line.
    Json,
    /// The line itself, as UTF-8 text (for `String` records); written like CSV.
    Text,
}

impl Format {
    /// The format a path's extension names (`.json`/`.jsonl` is JSON, anything else CSV).
    pub fn from_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json" | "jsonl" | "ndjson") => Format::Json,
            _ => Format::Csv,
        }
    }

    /// The usual file extension.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "jsonl",
            Format::Text => "txt",
        }
    }

    /// A decoder for records of type `T`.
    pub fn decoder<T: DeserializeOwned>(&self) -> Decoder<T> {
        match self {
            Format::Csv => Decoder::Csv(CsvDecoder::new()),
            Format::Json => Decoder::Json(std::marker::PhantomData),
            Format::Text => Decoder::Text(std::marker::PhantomData),
        }
    }

    /// Appends `record` as one line (with its newline) to `out`.
    pub fn encode<T: Serialize>(&self, record: &T, out: &mut Vec<u8>) -> Result<(), String> {
        self.encode_all(std::iter::once(record), out)
    }

    /// Appends each record as one line (with its newline) to `out`.
    pub fn encode_all<'a, T: Serialize + 'a>(
        &self,
        records: impl IntoIterator<Item = &'a T>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Format::Csv | Format::Text => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(std::mem::take(out));
                let mut result = Ok(());
                for record in records {
                    result = writer.serialize(record).map_err(|e| e.to_string());
                    if result.is_err() {
                        break;
                    }
                }
                *out = writer.into_inner().map_err(|e| e.to_string())?;
                result
            }
            Format::Json => {
                for record in records {
                    serde_json::to_writer(&mut *out, record).map_err(|e| e.to_string())?;
                    out.push(b'\n');
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" | "jsonl" => Ok(Format::Json),
            "text" | "utf8" => Ok(Format::Text),
            other => Err(format!(
                "unknown format '{other}': expected csv, json or text"
            )),
        }
    }
}

/// `line` without its trailing `\n` and `\r` bytes.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut line = line;
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Decodes lines into records of type `T`.
pub enum Decoder<T> {
    /// CSV fields into `T`'s fields, in order.
    Csv(CsvDecoder<T>),
    /// A JSON document per line.
    Json(std::marker::PhantomData<T>),
    /// The line as text.
    Text(std::marker::PhantomData<T>),
}

impl<T: DeserializeOwned> Decoder<T> {
    /// Decodes one line of bytes (without its newline); a line that is not
    /// UTF-8 is an error.
    pub fn decode_bytes(&mut self, line: &[u8]) -> Result<T, String> {
        match self {
            Decoder::Csv(csv) => csv.decode_bytes(line),
            _ => self.decode(std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?),
        }
    }

    /// Decodes one line (without its newline).
    pub fn decode(&mut self, line: &str) -> Result<T, String> {
        match self {
            Decoder::Csv(csv) => csv.decode(line),
            Decoder::Json(_) => serde_json::from_str(line).map_err(|e| e.to_string()),
            Decoder::Text(_) => {
                let text = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(line);
                T::deserialize(text).map_err(|e| e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        a: u64,
        b: String,
    }

    #[test]
    fn round_trips() {
        for format in [Format::Csv, Format::Json] {
            let row = Row {
                a: 7,
                b: "x, \"y\"".into(),
            };
            let mut out = Vec::new();
            format.encode(&row, &mut out).unwrap();
            let line = String::from_utf8(out).unwrap();
            let back: Row = format.decoder().decode(line.trim_end()).unwrap();
            assert_eq!(back, row);
        }
    }

    #[test]
    fn text_is_the_line() {
        let line: String = Format::Text.decoder().decode("a, b \"c\"").unwrap();
        assert_eq!(line, "a, b \"c\"");
        assert_eq!("utf8".parse::<Format>(), Ok(Format::Text));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Format::Csv
            .decoder::<Row>()
            .decode("notanumber,x")
            .unwrap_err();
        assert!(
            err.starts_with("field 1:") && err.contains("invalid digit"),
            "{err}"
        );
        let err = Format::Csv.decoder::<Row>().decode("1").unwrap_err();
        assert!(err.contains("invalid length 1"), "{err}");
        assert!(Format::Json.decoder::<Row>().decode("{\"a\":1}").is_err());
    }
}
