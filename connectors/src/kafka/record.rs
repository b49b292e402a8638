//! How records become Kafka messages, for both sinks: their encoding (rows
//! of a line format, newline-terminated, or Avro datums, each framed by its
//! length), their key (a CSV column or a JSON field, `key=`), their
//! partition (`partition=`, or the producer's murmur2 partitioner over the
//! key, as Kafka's Java clients do), and sending while librdkafka's queue
//! is full.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use serde::Serialize;

use super::uri::KafkaUri;
use crate::format::{AvroCodec, Format};

/// Where a row's key is.
#[derive(Clone, Debug)]
enum KeyField {
    /// A 0-based CSV column.
    Column(usize),
    /// A top-level JSON field.
    Field(String),
}

/// Turns rows into messages for one topic.
#[derive(Clone, Debug)]
pub struct Messages {
    topic: String,
    format: Format,
    avro: Option<AvroCodec>,
    key: Option<KeyField>,
    partition: Option<i32>,
}

impl Messages {
    /// The messages a sink for `uri` sends; fails if `key=` does not fit the
    /// format.
    pub fn new(uri: &KafkaUri) -> Result<Self, String> {
        let avro = match &uri.avro {
            Some(spec) => Some(AvroCodec::load(&spec.schema, spec.id)?),
            None => None,
        };
        let key = match (&uri.key, uri.format) {
            (None, _) => None,
            (Some(_), _) if avro.is_some() => {
                return Err(format!("{}: key= needs format=csv or json", uri.topic))
            }
            (Some(k), Format::Csv) => Some(KeyField::Column(k.parse().map_err(|_| {
                format!(
                    "{}: key={k:?} must be a CSV column number (0-based)",
                    uri.topic
                )
            })?)),
            (Some(k), Format::Json) => Some(KeyField::Field(k.clone())),
            (Some(_), Format::Text) => {
                return Err(format!("{}: key= needs format=csv or json", uri.topic))
            }
        };
        Ok(Messages {
            topic: uri.topic.clone(),
            format: uri.format,
            avro,
            key,
            partition: uri.partition,
        })
    }

    /// The producer settings these messages need.
    pub fn configure(&self, config: &mut rdkafka::config::ClientConfig) {
        if self.key.is_some() {
            config.set("partitioner", "murmur2_random");
        }
    }

    /// Appends the messages of `records` to `out`.
    pub fn encode_all<'a, T: Serialize + 'a>(
        &self,
        records: impl IntoIterator<Item = &'a T>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Some(avro) = &self.avro else {
            return self.format.encode_all(records, out);
        };
        let mut datum = Vec::new();
        for record in records {
            datum.clear();
            avro.encode(record, &mut datum)?;
            out.extend_from_slice(&(datum.len() as u32).to_le_bytes());
            out.extend_from_slice(&datum);
        }
        Ok(())
    }

    /// The messages in `encoded` (from [`Messages::encode_all`]).
    fn split<'a>(&self, encoded: &'a [u8]) -> Vec<&'a [u8]> {
        if self.avro.is_none() {
            return encoded
                .split(|b| *b == b'\n')
                .filter(|r| !r.is_empty())
                .collect();
        }
        let (mut out, mut rest) = (Vec::new(), encoded);
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let (message, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
            out.push(message);
            rest = tail;
        }
        out
    }

    /// Sends each message of `rows` (from [`Messages::encode_all`]).
    pub fn send_rows(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        rows: &[u8],
    ) -> Result<(), String> {
        for row in self.split(rows) {
            let key = self.key(row)?;
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(row);
            if let Some(key) = &key {
                record = record.key(key.as_slice());
            }
            if let Some(p) = self.partition {
                record = record.partition(p);
            }
            send(producer, record).map_err(|e| format!("cannot send to {}: {e}", self.topic))?;
        }
        Ok(())
    }

    /// The key of one encoded row.
    fn key(&self, row: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let field = match &self.key {
            None => return Ok(None),
            Some(KeyField::Column(c)) => csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(row)
                .byte_records()
                .next()
                .and_then(Result::ok)
                .and_then(|r| r.get(*c).map(<[u8]>::to_vec)),
            Some(KeyField::Field(f)) => serde_json::from_slice::<serde_json::Value>(row)
                .ok()
                .and_then(|v| match v.get(f)? {
                    serde_json::Value::String(s) => Some(s.clone().into_bytes()),
                    other => Some(other.to_string().into_bytes()),
                }),
        };
        field.map(Some).ok_or_else(|| {
            format!(
                "{}: no key field {:?} in row {:?}",
                self.topic,
                self.key,
                String::from_utf8_lossy(row)
            )
        })
    }
}

/// Sends one record, waiting while librdkafka's queue is full.
pub fn send<K, P>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, K, P>,
) -> Result<(), KafkaError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_csv_columns_and_json_fields() {
        let csv = Messages::new(&"kafka://h:1/t?key=1".parse().unwrap()).unwrap();
        assert_eq!(csv.key(b"7,\"a,b\",9").unwrap(), Some(b"a,b".to_vec()));
        assert!(csv.key(b"7").unwrap_err().contains("no key field"));
        let json = Messages::new(&"kafka://h:1/t?format=json&key=id".parse().unwrap()).unwrap();
        assert_eq!(
            json.key(br#"{"id":12,"x":1}"#).unwrap(),
            Some(b"12".to_vec())
        );
        assert_eq!(json.key(br#"{"id":"k"}"#).unwrap(), Some(b"k".to_vec()));
        let bad = Messages::new(&"kafka://h:1/t?key=name".parse().unwrap()).unwrap_err();
        assert!(bad.contains("CSV column number"), "{bad}");
        let none = Messages::new(&"kafka://h:1/t".parse().unwrap()).unwrap();
        assert_eq!(none.key(b"1,2").unwrap(), None);
    }
}
