//! Avro records (the `apache-avro` crate) with a schema from a file: one
//! binary datum per Kafka message, optionally in the Confluent wire format
//! (a zero byte and the schema id as a big-endian `u32` before the datum).
//!
//! Records are serde types: a struct maps to a record by field names; a
//! tuple (the shape most results have, as CSV rows) maps to a record's
//! fields in order.

use std::path::Path;

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An Avro schema and how messages carry it.
#[derive(Clone, Debug)]
pub struct AvroCodec {
    schema: Schema,
    /// The Confluent wire format's schema id, if messages carry one.
    id: Option<u32>,
}

impl AvroCodec {
    /// The schema in the JSON file `path`; with `id`, messages are in the
    /// Confluent wire format with that schema id.
    pub fn load(path: &Path, id: Option<u32>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the Avro schema {}: {e}", path.display()))?;
        let schema = Schema::parse_str(&text)
            .map_err(|e| format!("{} is not an Avro schema: {e}", path.display()))?;
        Ok(AvroCodec { schema, id })
    }

    /// Decodes one message.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let mut datum = bytes;
        if let Some(want) = self.id {
            let (header, rest) = bytes
                .split_at_checked(5)
                .ok_or("shorter than the wire format's 5-byte header")?;
            if header[0] != 0 {
                return Err(format!("wire format magic byte {} is not 0", header[0]));
            }
            let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            if id != want {
                return Err(format!("schema id {id}, expected {want}"));
            }
            datum = rest;
        }
        let value = apache_avro::from_avro_datum(&self.schema, &mut datum, None)
            .map_err(|e| format!("invalid Avro: {e}"))?;
        if !datum.is_empty() {
            return Err(format!("{} bytes after the Avro datum", datum.len()));
        }
        apache_avro::from_value(&value).map_err(|e| format!("Avro record: {e}"))
    }

    /// Appends `record`'s message to `out`.
    pub fn encode<T: Serialize>(&self, record: &T, out: &mut Vec<u8>) -> Result<(), String> {
        let value = apache_avro::to_value(record).map_err(|e| e.to_string())?;
        let value = self.shape(value);
        let value = value
            .resolve(&self.schema)
            .map_err(|e| format!("the record does not fit the Avro schema: {e}"))?;
        let datum = apache_avro::to_avro_datum(&self.schema, value).map_err(|e| e.to_string())?;
        if let Some(id) = self.id {
            out.push(0);
            out.extend_from_slice(&id.to_be_bytes());
        }
        out.extend_from_slice(&datum);
        Ok(())
    }

    /// A tuple (an array of values) becomes the schema's record, field by
    /// field in order.
    fn shape(&self, value: Value) -> Value {
        match (value, &self.schema) {
            (Value::Array(items), Schema::Record(record)) if items.len() == record.fields.len() => {
                Value::Record(
                    record
                        .fields
                        .iter()
                        .map(|f| f.name.clone())
                        .zip(items)
                        .collect(),
                )
            }
            (value, _) => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Bid {
        auction: u64,
        price: u64,
        channel: String,
    }

    const SCHEMA: &str = r#"{"type": "record", "name": "Bid", "fields": [
        {"name": "auction", "type": "long"},
        {"name": "price", "type": "long"},
        {"name": "channel", "type": "string"}]}"#;

    fn codec(id: Option<u32>) -> AvroCodec {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bid.avsc");
        std::fs::write(&path, SCHEMA).unwrap();
        AvroCodec::load(&path, id).unwrap()
    }

    #[test]
    fn round_trips_structs_and_tuples_in_the_wire_format() {
        let c = codec(Some(7));
        let bid = Bid {
            auction: 3,
            price: 1_000,
            channel: "web".into(),
        };
        let mut out = Vec::new();
        c.encode(&bid, &mut out).unwrap();
        assert_eq!(&out[..5], &[0, 0, 0, 0, 7]);
        assert_eq!(c.decode::<Bid>(&out).unwrap(), bid);
        let mut tuple = Vec::new();
        c.encode(&(3u64, 1_000u64, "web"), &mut tuple).unwrap();
        assert_eq!(tuple, out, "a tuple is the record's fields in order");
        out[4] = 8;
        assert!(c.decode::<Bid>(&out).unwrap_err().contains("schema id 8"));
        assert!(codec(None).decode::<Bid>(b"\x02").is_err());
        let bad = c.encode(&(1u64, "x"), &mut Vec::new()).unwrap_err();
        assert!(bad.contains("does not fit"), "{bad}");
    }
}
