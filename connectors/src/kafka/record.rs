//! How an encoded row becomes a Kafka message, for both sinks: its key (a
//! CSV column or a JSON field, `key=`), its partition (`partition=`, or the
//! producer's murmur2 partitioner over the key, as Kafka's Java clients
//! do), and sending it while librdkafka's queue is full.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::uri::KafkaUri;
use crate::format::Format;

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
    key: Option<KeyField>,
    partition: Option<i32>,
}

impl Messages {
    /// The messages a sink for `uri` sends; fails if `key=` does not fit the
    /// format.
    pub fn new(uri: &KafkaUri) -> Result<Self, String> {
        let key = match (&uri.key, uri.format) {
            (None, _) => None,
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

    /// Sends each newline-terminated row of `rows` as one message.
    pub fn send_rows(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        rows: &[u8],
    ) -> Result<(), String> {
        for row in rows.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
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
