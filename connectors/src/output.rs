//! Outputs named by a string: a path is a file sink, `kafka://...` a topic,
//! `blackhole:` nothing (the records are counted and dropped).

use serde::Serialize;
use tidewater_operators::{Context, EventStream};

use crate::blackhole::{write_blackhole, BLACKHOLE};
use crate::file::FileSink;
use crate::kafka::{KafkaSink, KafkaUri};

/// A file or Kafka sink, chosen by the output's name.
pub enum Output {
    /// A file sink.
    File(FileSink),
    /// A topic.
    Kafka(Box<KafkaSink>),
    /// Nowhere: records are counted and dropped (for benchmarks).
    Blackhole,
}

impl Output {
    /// `kafka://HOST:PORT/TOPIC?...` is a topic, `blackhole:` nothing;
    /// anything else a file sink (one sorted file with `sorted`, which
    /// neither of the others takes).
    ///
    /// ```
    /// use tidewater_connectors::output::Output;
    ///
    /// assert!(matches!(Output::parse("blackhole:", false), Ok(Output::Blackhole)));
    /// assert!(Output::parse("blackhole:", true).is_err());
    /// assert!(matches!(Output::parse("out/q5", true), Ok(Output::File(_))));
    /// ```
    pub fn parse(name: &str, sorted: bool) -> Result<Output, String> {
        if name == BLACKHOLE {
            if sorted {
                return Err(format!("--sorted writes a file, not {BLACKHOLE}"));
            }
            return Ok(Output::Blackhole);
        }
        if KafkaUri::is_kafka(name) {
            if sorted {
                return Err(format!("--sorted writes a file, not the topic {name}"));
            }
            let uri: KafkaUri = name.parse()?;
            if uri.topics.len() > 1 {
                return Err(format!("{name}: a sink writes one topic"));
            }
            return Ok(Output::Kafka(Box::new(KafkaSink::new(uri))));
        }
        Ok(Output::File(FileSink::new(name).sorted(sorted)))
    }

    /// Attaches the sink to `stream`.
    pub fn write<D: Serialize + 'static>(self, stream: EventStream<'_, D>, ctx: &Context) {
        match self {
            Output::File(sink) => sink.write(stream, ctx),
            Output::Kafka(sink) => sink.write(stream, ctx),
            Output::Blackhole => write_blackhole(stream, ctx),
        }
    }
}
