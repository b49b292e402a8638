//! The Kafka source: partition `p` of the topic is read by worker
//! `p % workers`, through a consumer with a manual assignment (no group
//! rebalancing, so the assignment is the same in every run and after a
//! rescale). A partition's position is the next offset to read; in bounded
//! mode a partition ends at the end offset seen at start.
//!
//! Each partition has its own librdkafka queue, and a read takes an equal
//! share from each: librdkafka's one consumer queue would hand over one
//! partition's whole backlog before the next, and a partition waiting
//! behind another's backlog would look idle and then be late.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tidewater_operators::checkpoint::part::{decode, encode};
use tidewater_operators::{Context, EventTime};
use timely::dataflow::Scope;

use super::uri::{KafkaUri, Start};
use crate::source::{event_source, Batch, SourceConfig, SourceReader, SourceStreams};
use crate::DeadLetter;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A topic as a source.
#[derive(Clone, Debug)]
pub struct KafkaSource {
    uri: KafkaUri,
}

impl KafkaSource {
    /// Reads the topic `uri` names.
    pub fn new(uri: KafkaUri) -> Self {
        KafkaSource { uri }
    }

    /// Builds the source, decoding each record value as a `T` in the URI's
    /// format, with event time `event_time(&record)`.
    pub fn build<'scope, T, F>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
        event_time: F,
    ) -> Result<SourceStreams<'scope, T>, String>
    where
        T: serde::de::DeserializeOwned + 'static,
        F: Fn(&T) -> EventTime + 'static,
    {
        let reader = KafkaReader::open(&self.uri, scope.index(), scope.peers(), event_time)?;
        Ok(event_source(scope, "KafkaSource", ctx, config, reader))
    }
}

struct Partition {
    id: i32,
    /// The next offset to read (`None`: from the configured start).
    next: Option<i64>,
    /// Bounded mode: the end offset seen at start.
    end: Option<i64>,
    done: bool,
}

struct KafkaReader<T, F> {
    uri: KafkaUri,
    consumer: Arc<BaseConsumer>,
    partitions: Vec<Partition>,
    /// Each partition's own queue (parallel to `partitions`), once assigned.
    queues: Vec<Option<PartitionQueue<DefaultConsumerContext>>>,
    assigned: bool,
    decoder: crate::format::Decoder<T>,
    event_time: F,
}

impl<T: serde::de::DeserializeOwned, F> KafkaReader<T, F> {
    fn open(uri: &KafkaUri, index: usize, peers: usize, event_time: F) -> Result<Self, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &uri.bootstrap)
            .set("group.id", format!("tidewater-{}", uri.topic))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| format!("cannot create a Kafka consumer for {}: {e}", uri.bootstrap))?;
        let metadata = consumer
            .fetch_metadata(Some(&uri.topic), TIMEOUT)
            .map_err(|e| format!("cannot read the metadata of topic {}: {e}", uri.topic))?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == uri.topic)
            .filter(|t| !t.partitions().is_empty())
            .ok_or_else(|| format!("topic {} does not exist at {}", uri.topic, uri.bootstrap))?;
        let mut partitions = Vec::new();
        for p in topic.partitions().iter().map(|p| p.id()) {
            if p as usize % peers != index {
                continue;
            }
            let end = if uri.bounded {
                let (_, high) = consumer
                    .fetch_watermarks(&uri.topic, p, TIMEOUT)
                    .map_err(|e| format!("cannot read the end of {}/{p}: {e}", uri.topic))?;
                Some(high)
            } else {
                None
            };
            partitions.push(Partition {
                id: p,
                next: None,
                end,
                done: false,
            });
        }
        Ok(KafkaReader {
            uri: uri.clone(),
            consumer: Arc::new(consumer),
            queues: Vec::new(),
            partitions,
            assigned: false,
            decoder: uri.format.decoder(),
            event_time,
        })
    }

    /// Assigns this worker's partitions at their positions (once, lazily, so
    /// that a restore can set the positions first).
    fn assign(&mut self) -> Result<(), String> {
        let mut list = TopicPartitionList::new();
        for p in &mut self.partitions {
            let offset = match (p.next, self.uri.start) {
                (Some(next), _) => Offset::Offset(next),
                (None, Start::Earliest) => Offset::Beginning,
                (None, Start::Latest) => Offset::End,
                (None, Start::Timestamp(_)) => Offset::Beginning,
            };
            if p.end
                .is_some_and(|end| p.next.unwrap_or(0) >= end && p.next.is_some())
            {
                p.done = true;
            }
            list.add_partition_offset(&self.uri.topic, p.id, offset)
                .map_err(|e| e.to_string())?;
        }
        if let Start::Timestamp(ms) = self.uri.start {
            let mut times = TopicPartitionList::new();
            for p in self.partitions.iter().filter(|p| p.next.is_none()) {
                times
                    .add_partition_offset(&self.uri.topic, p.id, Offset::Offset(ms))
                    .map_err(|e| e.to_string())?;
            }
            if times.count() > 0 {
                let found = self
                    .consumer
                    .offsets_for_times(times, TIMEOUT)
                    .map_err(|e| e.to_string())?;
                for element in found.elements() {
                    list.set_partition_offset(
                        &self.uri.topic,
                        element.partition(),
                        element.offset(),
                    )
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        self.consumer
            .assign(&list)
            .map_err(|e| format!("cannot assign partitions of {}: {e}", self.uri.topic))?;
        self.queues = self
            .partitions
            .iter()
            .map(|p| self.consumer.split_partition_queue(&self.uri.topic, p.id))
            .collect();
        Ok(())
    }
}

/// Takes one message of a partition into `batch` (or the dead letters).
fn take<T: serde::de::DeserializeOwned>(
    message: &BorrowedMessage<'_>,
    local: usize,
    partition: &mut Partition,
    topic: &str,
    decoder: &mut crate::format::Decoder<T>,
    event_time: &impl Fn(&T) -> EventTime,
    batch: &mut Batch<T>,
) {
    if partition.done || partition.end.is_some_and(|end| message.offset() >= end) {
        return;
    }
    partition.next = Some(message.offset() + 1);
    let raw = message.payload().unwrap_or_default();
    let decoded = std::str::from_utf8(raw)
        .map_err(|e| format!("invalid UTF-8: {e}"))
        .and_then(|line| decoder.decode(line.trim_end_matches(['\n', '\r'])));
    match decoded {
        Ok(record) => {
            let time = event_time(&record);
            batch.records.push((local, record, time));
        }
        Err(error) => batch.dead_letters.push(DeadLetter {
            source: format!("{topic}/{}", message.partition()),
            position: message.offset() as u64,
            error,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }),
    }
    if partition.end.is_some_and(|end| message.offset() + 1 >= end) {
        partition.done = true;
        batch.finished.push(local);
    }
}

impl<T, F> SourceReader for KafkaReader<T, F>
where
    T: serde::de::DeserializeOwned + 'static,
    F: Fn(&T) -> EventTime + 'static,
{
    type Item = T;

    fn partitions(&self) -> usize {
        self.partitions.len()
    }

    fn partition_id(&self, p: usize) -> u64 {
        self.partitions[p].id as u64
    }

    fn position(&self, p: usize) -> Vec<u8> {
        encode(&self.partitions[p].next)
    }

    fn seek(&mut self, p: usize, position: &[u8]) -> Result<(), String> {
        self.partitions[p].next = decode(position).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn read(&mut self, max: usize, batch: &mut Batch<T>) -> bool {
        if !self.assigned {
            self.assigned = true;
            if let Err(e) = self.assign() {
                batch.dead_letters.push(DeadLetter {
                    source: self.uri.topic.clone(),
                    position: 0,
                    error: e,
                    raw: String::new(),
                });
            }
            // Partitions that are empty (bounded) end at once.
            for (local, p) in self.partitions.iter_mut().enumerate() {
                if !p.done
                    && p.end
                        .is_some_and(|end| end <= p.next.unwrap_or(0) || end == 0)
                {
                    p.done = true;
                    batch.finished.push(local);
                }
            }
        }
        // Serves librdkafka's events; messages all arrive on partition queues.
        if let Some(Err(e)) = self.consumer.poll(Duration::ZERO) {
            tracing::warn!("kafka: {e}");
        }
        let before = batch.records.len() + batch.dead_letters.len();
        let share = (max / self.partitions.len().max(1)).max(1);
        for (local, partition) in self.partitions.iter_mut().enumerate() {
            let Some(queue) = self.queues.get(local).and_then(Option::as_ref) else {
                continue;
            };
            for _ in 0..share {
                if partition.done {
                    break;
                }
                match queue.poll(Duration::ZERO) {
                    Some(Ok(message)) => take(
                        &message,
                        local,
                        partition,
                        &self.uri.topic,
                        &mut self.decoder,
                        &self.event_time,
                        batch,
                    ),
                    Some(Err(e)) => {
                        tracing::warn!("kafka: {}/{}: {e}", self.uri.topic, partition.id);
                        break;
                    }
                    None => break,
                }
            }
        }
        let got =
            batch.records.len() + batch.dead_letters.len() > before || !batch.finished.is_empty();
        got || self.partitions.iter().all(|p| p.done)
    }
}
