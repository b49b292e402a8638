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
use tidewater_operators::EventTime;

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

/// How a sink encodes a batch of its records into `out`.
pub type Encode<D> = fn(&Messages, &[(D, EventTime)], &mut Vec<u8>) -> Result<(), String>;

/// How a change stream `(key, value, diff)` becomes messages
/// (`changelog=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changelog {
    /// One message per change, keyed by the key: the row `+,KEY...,VALUE...`
    /// for an insertion, `-,...` for a retraction.
    Diff,
    /// Keyed by the key, the value the key now has; a key whose value is
    /// retracted (and not replaced) gets a tombstone (no value), as Kafka's
    /// compacted topics and Flink's upsert-kafka expect.
    Upsert,
}

/// How encoded messages are laid out in a sink's buffer (and in the
/// exactly-once sink's checkpoint parts).
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// Newline-terminated rows; the key, if any, is taken from the row.
    Lines,
    /// Each payload after its `u32` length (binary formats).
    Sized,
    /// Key and payload, each after its `u32` length; `u32::MAX` as the
    /// payload's length is a tombstone.
    Keyed,
}

/// Turns records into messages for one topic.
#[derive(Clone, Debug)]
pub struct Messages {
    topic: String,
    format: Format,
    avro: Option<AvroCodec>,
    bytes: bool,
    key: Option<KeyField>,
    partition: Option<i32>,
    framing: Framing,
    changelog: Changelog,
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
            (Some(_), _) if avro.is_some() || uri.bytes => {
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
        if uri.changelog.is_some() {
            return Err(format!(
                "{}: changelog= is for change streams (write_changes)",
                uri.topic
            ));
        }
        Ok(Messages {
            topic: uri.topic.clone(),
            format: uri.format,
            bytes: uri.bytes,
            framing: if avro.is_some() || uri.bytes {
                Framing::Sized
            } else {
                Framing::Lines
            },
            avro,
            key,
            partition: uri.partition,
            changelog: Changelog::Diff,
        })
    }

    /// The messages a sink of changes for `uri` sends (`changelog=`,
    /// default diff): keyed by the change's key, in a line format.
    pub fn for_changes(uri: &KafkaUri) -> Result<Self, String> {
        if uri.avro.is_some() || uri.bytes || uri.format == Format::Text || uri.key.is_some() {
            return Err(format!(
                "{}: a changelog is written as csv or json, keyed by the change's key (no key=)",
                uri.topic
            ));
        }
        Ok(Messages {
            topic: uri.topic.clone(),
            format: uri.format,
            avro: None,
            bytes: false,
            key: None,
            partition: uri.partition,
            framing: Framing::Keyed,
            changelog: uri.changelog.unwrap_or(Changelog::Diff),
        })
    }

    /// Appends the messages of `changes` to `out`. Upserts are consolidated
    /// per key within the call: what a key holds after all of them.
    pub fn encode_changes<'a, K, V>(
        &self,
        changes: impl IntoIterator<Item = (&'a K, &'a V, i64)>,
        out: &mut Vec<u8>,
    ) -> Result<(), String>
    where
        K: Serialize + 'a,
        V: Serialize + 'a,
    {
        let line = |record: &dyn erased::Row, buffer: &mut Vec<u8>| -> Result<(), String> {
            buffer.clear();
            record.encode(self.format, buffer)?;
            while buffer.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buffer.pop();
            }
            Ok(())
        };
        let (mut key, mut payload) = (Vec::new(), Vec::new());
        // Upsert: each key once, in first-seen order, with its last state.
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut state: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
        for (k, v, diff) in changes {
            line(&k, &mut key)?;
            match self.changelog {
                Changelog::Diff => {
                    let op = if diff > 0 { "+" } else { "-" };
                    for _ in 0..diff.unsigned_abs() {
                        line(&(op, k, v), &mut payload)?;
                        frame(out, &key, Some(&payload));
                    }
                }
                Changelog::Upsert => {
                    line(&v, &mut payload)?;
                    let entry = state.entry(key.clone()).or_insert_with(|| {
                        order.push(key.clone());
                        None
                    });
                    if diff > 0 {
                        *entry = Some(payload.clone());
                    } else if entry.as_ref().is_none_or(|now| *now == payload) {
                        // Retracts what the key holds (a retraction of an
                        // older value than this call's insertion is moot).
                        *entry = None;
                    }
                }
            }
        }
        for k in order {
            frame(out, &k, state[&k].as_deref());
        }
        Ok(())
    }

    /// The producer settings these messages need.
    pub fn configure(&self, config: &mut rdkafka::config::ClientConfig) {
        // Keyed messages (by `key=`, or a changelog's keys) go to the
        // partition of the key's murmur2 hash.
        if self.key.is_some() || matches!(self.framing, Framing::Keyed) {
            config.set("partitioner", "murmur2_random");
        }
    }

    /// Appends the messages of `records` to `out`.
    pub fn encode_all<'a, T: Serialize + 'a>(
        &self,
        records: impl IntoIterator<Item = &'a T>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        if self.avro.is_none() && !self.bytes {
            return self.format.encode_all(records, out);
        }
        let mut datum = Vec::new();
        for record in records {
            datum.clear();
            match &self.avro {
                Some(avro) => avro.encode(record, &mut datum)?,
                None => crate::format::bytes::encode(record, &mut datum)?,
            }
            out.extend_from_slice(&(datum.len() as u32).to_le_bytes());
            out.extend_from_slice(&datum);
        }
        Ok(())
    }

    /// The `(key, payload)` of each message in `encoded`.
    fn split<'a>(&self, encoded: &'a [u8]) -> Result<Vec<Message<'a>>, String> {
        let mut out = Vec::new();
        match self.framing {
            Framing::Lines => {
                for row in rows(encoded, self.format).filter(|r| !r.is_empty()) {
                    out.push((self.key(row)?, Some(row)));
                }
            }
            Framing::Sized => {
                let mut rest = encoded;
                while let Some((payload, tail)) = take_sized(rest) {
                    out.push((None, payload));
                    rest = tail;
                }
            }
            Framing::Keyed => {
                let mut rest = encoded;
                while let Some((key, tail)) = take_sized(rest) {
                    let (payload, tail) = take_sized(tail).ok_or("a key without a payload")?;
                    out.push((key.map(<[u8]>::to_vec), payload));
                    rest = tail;
                }
            }
        }
        Ok(out)
    }

    /// Sends each message of `rows` (from [`Messages::encode_all`] or
    /// [`Messages::encode_changes`]).
    pub fn send_rows(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        rows: &[u8],
    ) -> Result<(), String> {
        for (key, payload) in self.split(rows)? {
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic);
            if let Some(payload) = payload {
                record = record.payload(payload);
            }
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

/// The rows of newline-terminated `encoded` text: a CSV field may hold a
/// newline inside its quotes (JSON escapes its newlines).
fn rows(encoded: &[u8], format: Format) -> impl Iterator<Item = &[u8]> {
    let mut in_quotes = false;
    let csv = format != Format::Json;
    encoded.split(move |b| {
        if csv && *b == b'"' {
            in_quotes = !in_quotes;
        }
        *b == b'\n' && !in_quotes
    })
}

/// A message's key and payload (`None`: a tombstone).
type Message<'a> = (Option<Vec<u8>>, Option<&'a [u8]>);

/// Appends a keyed frame (`None`: a tombstone).
fn frame(out: &mut Vec<u8>, key: &[u8], payload: Option<&[u8]>) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    match payload {
        Some(p) => {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// One length-prefixed piece (`None` for `u32::MAX`: a tombstone) and the rest.
fn take_sized(bytes: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    match u32::from_le_bytes(*len) {
        u32::MAX => Some((None, rest)),
        n => {
            let (piece, rest) = rest.split_at_checked(n as usize)?;
            Some((Some(piece), rest))
        }
    }
}

/// Serializing rows of any type through one closure.
mod erased {
    use crate::format::Format;

    /// A record a line format can encode.
    pub trait Row {
        fn encode(&self, format: Format, out: &mut Vec<u8>) -> Result<(), String>;
    }

    impl<T: serde::Serialize> Row for T {
        fn encode(&self, format: Format, out: &mut Vec<u8>) -> Result<(), String> {
            format.encode(self, out)
        }
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

    #[test]
    fn a_csv_row_with_a_newline_is_one_message() {
        let m = Messages::new(&"kafka://h:1/t".parse().unwrap()).unwrap();
        let mut out = Vec::new();
        m.encode_all([("a\nb", 1), ("c", 2)].iter(), &mut out)
            .unwrap();
        let got: Vec<_> = m
            .split(&out)
            .unwrap()
            .into_iter()
            .map(|(_, v)| v.unwrap().to_vec())
            .collect();
        assert_eq!(got, vec![b"\"a\nb\",1".to_vec(), b"c,2".to_vec()]);
    }

    #[test]
    fn upserts_keep_what_each_key_holds_after_the_batch() {
        let m = Messages::for_changes(&"kafka://h:1/t?changelog=upsert".parse().unwrap()).unwrap();
        let (old, new) = (1u64, 2u64);
        let mut out = Vec::new();
        // a retraction of the old value after the new one's insertion is moot
        let changes = [
            ("a", &new, 1),
            ("a", &old, -1),
            ("b", &old, 1),
            ("b", &old, -1),
        ];
        m.encode_changes(changes.iter().map(|(k, v, d)| (k, *v, *d)), &mut out)
            .unwrap();
        let got: Vec<(Option<Vec<u8>>, Option<_>)> = m
            .split(&out)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(b"a".to_vec()), Some(b"2".to_vec())),
                (Some(b"b".to_vec()), None)
            ]
        );
        let plain = "kafka://h:1/t?changelog=diff".parse().unwrap();
        assert!(Messages::new(&plain)
            .unwrap_err()
            .contains("change streams"));
    }
}
