//! Dead letters: records that could not be decoded, with where they came from,
//! and the sink that writes them.
//!
//! A malformed record is never dropped silently: the source counts it, logs it
//! and sends it here; [`DeadLetterSink`] writes one JSON line per record to
//! `DIR/part-<worker>.jsonl` (created only when there is something to write),
//! or one JSON message per record to a Kafka topic (at least once).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tidewater_operators::{Context, EventTime};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::Stream;

use crate::format::Format;
use crate::kafka::{KafkaSink, KafkaUri};

/// One undecodable record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it was read: a file path, or `topic/partition`.
    pub source: String,
    /// Its position there: a 1-based line number, or an offset.
    pub position: u64,
    /// Why it could not be decoded.
    pub error: String,
    /// The raw record (lossily decoded as UTF-8).
    pub raw: String,
}

impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {:?}",
            self.source, self.position, self.error, self.raw
        )
    }
}

/// Writes dead letters as JSON lines, one file per worker, or to a topic.
#[derive(Clone, Debug)]
pub struct DeadLetterSink {
    dir: PathBuf,
    topic: Option<KafkaUri>,
}

impl DeadLetterSink {
    /// Dead letters go to `dir/part-<worker>.jsonl`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DeadLetterSink {
            dir: dir.into(),
            topic: None,
        }
    }

    /// A directory, or with `kafka://HOST:PORT/TOPIC` a topic (one JSON
    /// message per dead letter, at least once).
    pub fn parse(name: &str) -> Result<Self, String> {
        if !KafkaUri::is_kafka(name) {
            return Ok(DeadLetterSink::new(name));
        }
        let mut uri: KafkaUri = name.parse()?;
        uri.format = Format::Json;
        Ok(DeadLetterSink {
            dir: PathBuf::new(),
            topic: Some(uri),
        })
    }

    /// Attaches the sink to a source's dead-letter stream.
    pub fn write(self, stream: Stream<'_, EventTime, Vec<DeadLetter>>, ctx: &Context) {
        if let Some(uri) = self.topic {
            // Dead letters have no event time of their own: 0 (sinks ignore it).
            KafkaSink::new(uri).write(stream.map(|dead| (dead, 0)), ctx);
            return;
        }
        let index = stream.scope().index();
        let path = self.dir.join(format!("part-{index:05}.jsonl"));
        let dir = self.dir;
        let fail = ctx.clone();
        let done = stream
            .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Pipeline,
                "DeadLetterSink",
                move |_cap, _info| {
                    let mut file: Option<BufWriter<File>> = None;
                    move |(input, frontier), _output| {
                        input.for_each(|_cap, data| {
                            if file.is_none() {
                                let opened =
                                    fs::create_dir_all(&dir).and_then(|()| File::create(&path));
                                match opened {
                                    Ok(f) => file = Some(BufWriter::new(f)),
                                    Err(e) => fail.fail(format!(
                                        "cannot create dead-letter file {}: {e}",
                                        path.display()
                                    )),
                                }
                            }
                            if let Some(file) = file.as_mut() {
                                for dead in data.drain(..) {
                                    let written = serde_json::to_writer(&mut *file, &dead)
                                        .map_err(std::io::Error::from)
                                        .and_then(|()| file.write_all(b"\n"));
                                    if let Err(e) = written {
                                        fail.fail(format!(
                                            "cannot write dead letter to {}: {e}",
                                            path.display()
                                        ));
                                    }
                                }
                                // Dead letters are rare: make each batch visible at once.
                                if let Err(e) = file.flush() {
                                    fail.fail(format!("cannot write {}: {e}", path.display()));
                                }
                            }
                        });
                        if frontier.is_empty() {
                            file = None;
                        }
                    }
                },
            );
        ctx.attach(done);
    }
}
