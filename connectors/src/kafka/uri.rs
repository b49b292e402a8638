//! `kafka://HOST:PORT/TOPIC?option=value&...` as a source or sink address.

use crate::format::Format;

/// Where a source starts reading a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The first offset kept.
    Earliest,
    /// After the last offset present at start.
    Latest,
    /// The first record at or after this timestamp (ms).
    Timestamp(i64),
    /// The consumer group's committed offset (earliest where there is none).
    Committed,
}

/// Where a source's records take their event time from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTimeFrom {
    /// The program's extractor, from the decoded record.
    Data,
    /// The Kafka record's timestamp (create or log-append time).
    Record,
}

/// What a sink promises about its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Everything before a completed checkpoint is acknowledged; a recovery
    /// may write some of it again.
    AtLeastOnce,
    /// Output becomes visible to `read_committed` readers, exactly once, in
    /// a transaction per completed checkpoint.
    ExactlyOnce,
}

/// `format=avro&schema=FILE[&schema-id=N]`: Avro messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSpec {
    /// The schema's JSON file.
    pub schema: std::path::PathBuf,
    /// The Confluent wire format's schema id, if messages carry one.
    pub id: Option<u32>,
}

/// A parsed `kafka://` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaUri {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    /// The topic (a sink's; a source's first).
    pub topic: String,
    /// Sources: every topic of `kafka://HOST:PORT/T1,T2,...`.
    pub topics: Vec<String>,
    /// `format=csv|json|text` (default csv): one row per record value.
    pub format: Format,
    /// `format=avro`: Avro messages with this schema (instead of `format`).
    pub avro: Option<AvroSpec>,
    /// `format=bytes`: a message value is the record, unchanged.
    pub bytes: bool,
    /// `bounded=true`: read up to the end offsets seen at start, then finish.
    pub bounded: bool,
    /// `start=earliest|latest|committed|<epoch-ms>` (default earliest).
    pub start: Start,
    /// Sources: `group=NAME` (default `tidewater-TOPIC`), the consumer group
    /// whose offsets are committed at every checkpoint (for lag monitoring
    /// and `start=committed`); partitions are still assigned by Tidewater.
    pub group: String,
    /// Sources: `event-time=data|record` (default data).
    pub event_time: EventTimeFrom,
    /// Sinks: `key=FIELD`, the message key: a 0-based CSV column or a JSON
    /// field name (default: no key).
    pub key: Option<String>,
    /// Change-stream sinks: `changelog=diff|upsert` (default diff).
    pub changelog: Option<super::record::Changelog>,
    /// Sinks: `partition=N`, every message to partition `N` (default: by the
    /// key's murmur2 hash, as Kafka's Java clients, or spread without a key).
    pub partition: Option<i32>,
    /// Sinks: `delivery=at-least-once|exactly-once` (default at-least-once).
    pub delivery: Delivery,
    /// Exactly-once sinks: `transactional-id=PREFIX` (default
    /// `tidewater-TOPIC`), the prefix of the producers' transactional ids.
    pub transactional_id: String,
    /// Exactly-once sinks: `commits=TOPIC` (default `TOPIC.tidewater-commits`),
    /// where each transaction records which checkpoint it commits.
    pub commits: String,
    /// Exactly-once sinks: `transaction-timeout-ms=MS` (default 60 000); it
    /// must exceed the checkpoint interval plus the time a checkpoint takes.
    pub transaction_timeout_ms: u64,
}

impl std::str::FromStr for KafkaUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("kafka://")
            .ok_or_else(|| format!("{s:?} is not a kafka:// address"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bootstrap, topic) = path
            .split_once('/')
            .filter(|(b, t)| !b.is_empty() && !t.is_empty())
            .ok_or_else(|| format!("{s:?}: expected kafka://HOST:PORT/TOPIC"))?;
        let topics: Vec<String> = topic.split(',').map(str::to_owned).collect();
        if topics.iter().any(String::is_empty) {
            return Err(format!("{s:?}: an empty topic name"));
        }
        let topic = topics[0].as_str();
        let mut uri = KafkaUri {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            topics: topics.clone(),
            format: Format::Csv,
            avro: None,
            bytes: false,
            bounded: false,
            start: Start::Earliest,
            group: format!("tidewater-{}", topics.join("+")),
            event_time: EventTimeFrom::Data,
            key: None,
            partition: None,
            changelog: None,
            delivery: Delivery::AtLeastOnce,
            transactional_id: format!("tidewater-{topic}"),
            commits: format!("{topic}.tidewater-commits"),
            transaction_timeout_ms: 60_000,
        };
        let (mut avro, mut schema, mut schema_id) = (false, None, None);
        for option in query.split('&').filter(|o| !o.is_empty()) {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("{s:?}: option {option:?} is not key=value"))?;
            match key {
                "format" if value == "avro" => avro = true,
                "format" if value == "bytes" => uri.bytes = true,
                "format" => uri.format = value.parse()?,
                "schema" if !value.is_empty() => schema = Some(std::path::PathBuf::from(value)),
                "schema-id" => {
                    schema_id = Some(
                        value
                            .parse()
                            .map_err(|_| format!("{s:?}: schema-id={value:?} is not a number"))?,
                    )
                }
                "bounded" => {
                    uri.bounded = value
                        .parse()
                        .map_err(|_| format!("{s:?}: bounded={value:?} is not true or false"))?
                }
                "start" => {
                    uri.start = match value {
                        "earliest" => Start::Earliest,
                        "latest" => Start::Latest,
                        "committed" => Start::Committed,
                        ms => Start::Timestamp(ms.parse().map_err(|_| {
                            format!(
                                "{s:?}: start={ms:?} is not earliest, latest, committed or epoch ms"
                            )
                        })?),
                    }
                }
                "delivery" => {
                    uri.delivery = match value {
                        "at-least-once" => Delivery::AtLeastOnce,
                        "exactly-once" => Delivery::ExactlyOnce,
                        _ => {
                            return Err(format!(
                                "{s:?}: delivery={value:?} is not at-least-once or exactly-once"
                            ))
                        }
                    }
                }
                "group" if !value.is_empty() => uri.group = value.into(),
                "event-time" => {
                    uri.event_time = match value {
                        "data" => EventTimeFrom::Data,
                        "record" => EventTimeFrom::Record,
                        _ => {
                            return Err(format!(
                                "{s:?}: event-time={value:?} is not data or record"
                            ))
                        }
                    }
                }
                "key" if !value.is_empty() => uri.key = Some(value.into()),
                "changelog" => {
                    uri.changelog = Some(match value {
                        "diff" => super::record::Changelog::Diff,
                        "upsert" => super::record::Changelog::Upsert,
                        _ => {
                            return Err(format!("{s:?}: changelog={value:?} is not diff or upsert"))
                        }
                    })
                }
                "partition" => {
                    uri.partition = Some(value.parse().map_err(|_| {
                        format!("{s:?}: partition={value:?} is not a partition number")
                    })?)
                }
                "transactional-id" if !value.is_empty() => uri.transactional_id = value.into(),
                "commits" if !value.is_empty() => uri.commits = value.into(),
                "transaction-timeout-ms" => {
                    uri.transaction_timeout_ms = value.parse().map_err(|_| {
                        format!("{s:?}: transaction-timeout-ms={value:?} is not a number")
                    })?
                }
                other => return Err(format!("{s:?}: unknown option {other:?}")),
            }
        }
        match (avro, schema) {
            (true, Some(schema)) => {
                uri.avro = Some(AvroSpec {
                    schema,
                    id: schema_id,
                })
            }
            (true, None) => return Err(format!("{s:?}: format=avro needs schema=FILE")),
            (false, Some(_)) => return Err(format!("{s:?}: schema= is for format=avro")),
            (false, None) => {}
        }
        Ok(uri)
    }
}

impl KafkaUri {
    /// Whether `s` names a Kafka topic rather than a file.
    pub fn is_kafka(s: &str) -> bool {
        s.starts_with("kafka://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_names_mistakes() {
        let uri: KafkaUri =
            "kafka://127.0.0.1:9092/bids?bounded=true&format=json&start=1700000000000"
                .parse()
                .unwrap();
        assert_eq!(uri.bootstrap, "127.0.0.1:9092");
        assert_eq!(uri.topic, "bids");
        assert!(uri.bounded);
        assert_eq!(uri.format, Format::Json);
        assert_eq!(uri.start, Start::Timestamp(1_700_000_000_000));
        assert_eq!(uri.delivery, Delivery::AtLeastOnce);
        assert_eq!(
            (uri.group.as_str(), uri.event_time),
            ("tidewater-bids", EventTimeFrom::Data)
        );
        let keyed: KafkaUri =
            "kafka://h:1/t?key=0&partition=2&event-time=record&start=committed&group=g"
                .parse()
                .unwrap();
        assert_eq!(
            (keyed.key.as_deref(), keyed.partition),
            (Some("0"), Some(2))
        );
        assert_eq!(
            (keyed.event_time, keyed.start, keyed.group.as_str()),
            (EventTimeFrom::Record, Start::Committed, "g")
        );
        assert!("kafka://h:1/t?partition=x"
            .parse::<KafkaUri>()
            .unwrap_err()
            .contains("partition=\"x\""));
        let eos: KafkaUri = "kafka://h:1/out?delivery=exactly-once&transactional-id=job7"
            .parse()
            .unwrap();
        assert_eq!(eos.delivery, Delivery::ExactlyOnce);
        assert_eq!(eos.transactional_id, "job7");
        assert_eq!(eos.commits, "out.tidewater-commits");
        let err = "kafka://h:1/t?delivery=twice"
            .parse::<KafkaUri>()
            .unwrap_err();
        assert!(err.contains("delivery=\"twice\""), "{err}");
        let err = "kafka://h:1/t?colour=blue".parse::<KafkaUri>().unwrap_err();
        assert!(err.contains("unknown option \"colour\""), "{err}");
        assert!("kafka://h:1"
            .parse::<KafkaUri>()
            .unwrap_err()
            .contains("HOST:PORT/TOPIC"));
        assert!("file.csv".parse::<KafkaUri>().is_err());
        let avro: KafkaUri = "kafka://h:1/t?format=avro&schema=s.avsc&schema-id=4"
            .parse()
            .unwrap();
        assert_eq!(
            avro.avro,
            Some(AvroSpec {
                schema: "s.avsc".into(),
                id: Some(4)
            })
        );
        assert!("kafka://h:1/t?format=avro"
            .parse::<KafkaUri>()
            .unwrap_err()
            .contains("needs schema"));
        let two: KafkaUri = "kafka://h:1/a,b".parse().unwrap();
        assert_eq!((two.topics.len(), two.group.as_str()), (2, "tidewater-a+b"));
        assert!("kafka://h:1/a,"
            .parse::<KafkaUri>()
            .unwrap_err()
            .contains("empty topic"));
    }
}
