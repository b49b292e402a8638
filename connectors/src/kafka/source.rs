//! The Kafka source: the partitions of its topics, numbered in order (the
//! topics as listed, partitions ascending), are read by worker
//! `number % workers` — for one topic, partition `p` by worker
//! `p % workers` — through a consumer with a manual assignment (no group
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
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tidewater_operators::checkpoint::part::{decode, encode};
use tidewater_operators::{Context, EventTime};
use timely::dataflow::Scope;

use super::uri::{EventTimeFrom, KafkaUri, Start};
use crate::format::AvroCodec;
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
        let mut payloads = Payloads::for_uri(&self.uri)?;
        let decode = move |raw: &[u8]| payloads.decode(raw).map(Some);
        self.build_filtered(scope, ctx, config, decode, event_time)
    }

    /// Builds the source with a decoder of record values that may pass over
    /// a record: `Ok(None)` is a well-formed record the job does not read,
    /// neither a record nor a dead letter (such as
    /// [`EventLines`](crate::nexmark::EventLines)); the decoder is the
    /// format, so the URI's `format`, `avro` and `bytes` do not apply.
    pub fn build_filtered<'scope, T, D, F>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
        decode: D,
        event_time: F,
    ) -> Result<SourceStreams<'scope, T>, String>
    where
        T: 'static,
        D: FnMut(&[u8]) -> Result<Option<T>, String> + 'static,
        F: Fn(&T) -> EventTime + 'static,
    {
        let (index, peers) = (scope.index(), scope.peers());
        let reader = KafkaReader::open(&self.uri, index, peers, decode, event_time)?;
        Ok(event_source(scope, "KafkaSource", ctx, config, reader))
    }
}

struct Partition {
    topic: String,
    /// The topic's place in the URI's list (part of the checkpoint id).
    topic_index: u32,
    id: i32,
    /// The next offset to read (`None`: from the configured start).
    next: Option<i64>,
    /// Bounded mode: the end offset seen at start.
    end: Option<i64>,
    done: bool,
}

struct KafkaReader<T, D, F> {
    uri: KafkaUri,
    consumer: Arc<BaseConsumer>,
    partitions: Vec<Partition>,
    /// Each partition's own queue (parallel to `partitions`), once assigned.
    queues: Vec<Option<PartitionQueue<DefaultConsumerContext>>>,
    assigned: bool,
    committed_at_end: bool,
    decoder: D,
    event_time: F,
    record: std::marker::PhantomData<T>,
}

/// Decodes message values: lines of a line format, or Avro datums.
struct Payloads<T> {
    lines: crate::format::Decoder<T>,
    avro: Option<AvroCodec>,
    bytes: bool,
}

impl<T: serde::de::DeserializeOwned> Payloads<T> {
    /// The decoder `uri`'s options name.
    fn for_uri(uri: &KafkaUri) -> Result<Self, String> {
        Ok(Payloads {
            lines: uri.format.decoder(),
            avro: match &uri.avro {
                Some(spec) => Some(AvroCodec::load(&spec.schema, spec.id)?),
                None => None,
            },
            bytes: uri.bytes,
        })
    }

    fn decode(&mut self, raw: &[u8]) -> Result<T, String> {
        if let Some(avro) = &self.avro {
            return avro.decode(raw);
        }
        if self.bytes {
            return crate::format::bytes::decode(raw);
        }
        self.lines.decode_bytes(crate::format::trim_line_end(raw))
    }
}

impl<T, D, F> KafkaReader<T, D, F> {
    fn open(
        uri: &KafkaUri,
        index: usize,
        peers: usize,
        decoder: D,
        event_time: F,
    ) -> Result<Self, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &uri.bootstrap)
            .set("group.id", &uri.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            // Prefetch at most 8 MiB per partition (librdkafka: 64 MiB), and
            // fetch again soon once there is room (librdkafka waits 1 s).
            .set("queued.max.messages.kbytes", "8192")
            .set("fetch.queue.backoff.ms", "10")
            .create()
            .map_err(|e| format!("cannot create a Kafka consumer for {}: {e}", uri.bootstrap))?;
        let mut partitions = Vec::new();
        let mut number = 0;
        for (topic_index, name) in uri.topics.iter().enumerate() {
            let metadata = consumer
                .fetch_metadata(Some(name), TIMEOUT)
                .map_err(|e| format!("cannot read the metadata of topic {name}: {e}"))?;
            let topic = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .filter(|t| !t.partitions().is_empty())
                .ok_or_else(|| format!("topic {name} does not exist at {}", uri.bootstrap))?;
            let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            for p in ids {
                number += 1;
                if (number - 1) % peers != index {
                    continue;
                }
                let end = if uri.bounded {
                    let (_, high) = consumer
                        .fetch_watermarks(name, p, TIMEOUT)
                        .map_err(|e| format!("cannot read the end of {name}/{p}: {e}"))?;
                    Some(high)
                } else {
                    None
                };
                partitions.push(Partition {
                    topic: name.clone(),
                    topic_index: topic_index as u32,
                    id: p,
                    next: None,
                    end,
                    done: false,
                });
            }
        }
        Ok(KafkaReader {
            uri: uri.clone(),
            consumer: Arc::new(consumer),
            queues: Vec::new(),
            partitions,
            assigned: false,
            committed_at_end: false,
            decoder,
            event_time,
            record: std::marker::PhantomData,
        })
    }

    /// Assigns this worker's partitions at their positions (once, lazily, so
    /// that a restore can set the positions first).
    fn assign(&mut self) -> Result<(), String> {
        self.resolve_starts()?;
        let mut list = TopicPartitionList::new();
        for p in &mut self.partitions {
            let next = p.next.expect("resolved");
            list.add_partition_offset(&p.topic, p.id, Offset::Offset(next))
                .map_err(|e| e.to_string())?;
        }
        self.consumer.assign(&list).map_err(|e| {
            format!(
                "cannot assign partitions of {}: {e}",
                self.uri.topics.join(",")
            )
        })?;
        self.queues = self
            .partitions
            .iter()
            .map(|p| self.consumer.split_partition_queue(&p.topic, p.id))
            .collect();
        Ok(())
    }

    /// Turns the configured start into an offset for every partition that
    /// has no position yet (none restored), so that bounded partitions know
    /// at once whether anything is left to read.
    fn resolve_starts(&mut self) -> Result<(), String> {
        let fresh: Vec<usize> = (0..self.partitions.len())
            .filter(|&i| self.partitions[i].next.is_none())
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let mut found: Vec<Option<i64>> = vec![None; fresh.len()];
        let mut list = TopicPartitionList::new();
        for &i in &fresh {
            let offset = match self.uri.start {
                Start::Timestamp(ms) => Offset::Offset(ms),
                _ => Offset::Invalid,
            };
            let p = &self.partitions[i];
            list.add_partition_offset(&p.topic, p.id, offset)
                .map_err(|e| e.to_string())?;
        }
        let looked_up = match self.uri.start {
            Start::Timestamp(_) => Some(
                self.consumer
                    .offsets_for_times(list, TIMEOUT)
                    .map_err(|e| format!("cannot look up offsets by time: {e}"))?,
            ),
            Start::Committed => Some(
                self.consumer
                    .committed_offsets(list, TIMEOUT)
                    .map_err(|e| format!("cannot read group {}'s offsets: {e}", self.uri.group))?,
            ),
            Start::Earliest | Start::Latest => None,
        };
        for (slot, &i) in fresh.iter().enumerate() {
            let (topic, id) = (&self.partitions[i].topic, self.partitions[i].id);
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, id, TIMEOUT)
                .map_err(|e| format!("cannot read the offsets of {topic}/{id}: {e}"))?;
            let offset = looked_up
                .as_ref()
                .and_then(|l| l.find_partition(topic, id))
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            found[slot] = Some(match (self.uri.start, offset) {
                (Start::Earliest, _) => low,
                (Start::Latest, _) => high,
                // No record at or after the time: nothing yet.
                (Start::Timestamp(_), None) => high,
                // No committed offset: from the start.
                (Start::Committed, None) => low,
                (_, Some(o)) => o.clamp(low, high),
            });
        }
        for (slot, &i) in fresh.iter().enumerate() {
            self.partitions[i].next = found[slot];
        }
        Ok(())
    }
}

/// Takes one message of a partition into `batch` (or the dead letters, or
/// nowhere if the decoder passes over it).
#[allow(clippy::too_many_arguments)]
fn take<T>(
    message: &BorrowedMessage<'_>,
    local: usize,
    partition: &mut Partition,
    uri: &KafkaUri,
    decoder: &mut impl FnMut(&[u8]) -> Result<Option<T>, String>,
    event_time: &impl Fn(&T) -> EventTime,
    batch: &mut Batch<T>,
) {
    if partition.done {
        return;
    }
    if partition.end.is_some_and(|end| message.offset() >= end) {
        partition.done = true;
        batch.finished.push(local);
        return;
    }
    partition.next = Some(message.offset() + 1);
    let raw = message.payload().unwrap_or_default();
    let decoded = decoder(raw).and_then(|record| {
        let Some(record) = record else {
            return Ok(None);
        };
        let time = match uri.event_time {
            EventTimeFrom::Data => event_time(&record),
            EventTimeFrom::Record => message
                .timestamp()
                .to_millis()
                .filter(|ms| *ms >= 0)
                .ok_or("the record has no timestamp (event-time=record)")?
                as EventTime,
        };
        Ok(Some((record, time)))
    });
    match decoded {
        Ok(Some((record, time))) => batch.records.push((local, record, time)),
        Ok(None) => {}
        Err(error) => batch.dead_letters.push(DeadLetter {
            source: format!("{}/{}", partition.topic, message.partition()),
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

impl<T, D, F> SourceReader for KafkaReader<T, D, F>
where
    T: 'static,
    D: FnMut(&[u8]) -> Result<Option<T>, String> + 'static,
    F: Fn(&T) -> EventTime + 'static,
{
    type Item = T;

    fn partitions(&self) -> usize {
        self.partitions.len()
    }

    fn partition_id(&self, p: usize) -> u64 {
        let p = &self.partitions[p];
        (u64::from(p.topic_index) << 32) | p.id as u64
    }

    fn position(&self, p: usize) -> Vec<u8> {
        // The bounded end travels with the position: a restored bounded job
        // reads to where the original run would have, not to a later end.
        let p = &self.partitions[p];
        encode(&(p.next, p.end))
    }

    fn seek(&mut self, p: usize, position: &[u8]) -> Result<(), String> {
        let partition = &mut self.partitions[p];
        match decode::<(Option<i64>, Option<i64>)>(position) {
            Ok((next, end)) => {
                partition.next = next;
                if self.uri.bounded && end.is_some() {
                    partition.end = end;
                }
            }
            // Checkpoints from before the end was kept: the position alone.
            Err(_) => partition.next = decode(position).map_err(|e| e.to_string())?,
        }
        Ok(())
    }

    fn pause(&mut self, paused: bool) {
        let mut list = TopicPartitionList::new();
        for p in self.partitions.iter().filter(|p| !p.done) {
            list.add_partition(&p.topic, p.id);
        }
        let done = if paused {
            self.consumer.pause(&list)
        } else {
            self.consumer.resume(&list)
        };
        if let Err(e) = done {
            tracing::warn!(
                "kafka: cannot pause or resume {}: {e}",
                self.uri.topics.join(",")
            );
        }
    }

    fn snapshotted(&mut self) {
        self.commit(CommitMode::Async);
    }

    fn read(&mut self, max: usize, batch: &mut Batch<T>) -> bool {
        let got = self.poll(max, batch);
        let done = self.partitions.iter().all(|p| p.done);
        if done && !self.committed_at_end {
            // A bounded job's last positions (its output is complete).
            self.committed_at_end = true;
            self.commit(CommitMode::Sync);
        }
        got || done
    }
}

impl<T, D, F> KafkaReader<T, D, F>
where
    T: 'static,
    D: FnMut(&[u8]) -> Result<Option<T>, String> + 'static,
    F: Fn(&T) -> EventTime + 'static,
{
    /// Commits the partitions' positions to the group, for lag monitoring
    /// and `start=committed` (they are not what recovery uses: checkpoints
    /// are).
    fn commit(&self, mode: CommitMode) {
        let mut list = TopicPartitionList::new();
        for p in &self.partitions {
            if let Some(next) = p.next {
                let _ = list.add_partition_offset(&p.topic, p.id, Offset::Offset(next));
            }
        }
        if list.count() > 0 {
            if let Err(e) = self.consumer.commit(&list, mode) {
                tracing::warn!(
                    "kafka: cannot commit offsets of {} to group {}: {e}",
                    self.uri.topic,
                    self.uri.group
                );
            }
        }
    }

    /// Reads up to `max` records, an equal share from each partition.
    fn poll(&mut self, max: usize, batch: &mut Batch<T>) -> bool {
        if !self.assigned {
            if let Err(e) = self.assign() {
                // The broker may be briefly unreachable: try again later.
                tracing::warn!("kafka: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
                return false;
            }
            self.assigned = true;
            // Partitions that are empty (bounded) end at once.
            for (local, p) in self.partitions.iter_mut().enumerate() {
                if !p.done && p.end.is_some_and(|end| p.next.is_some_and(|n| n >= end)) {
                    p.done = true;
                    batch.finished.push(local);
                }
            }
        }
        let before = batch.records.len() + batch.dead_letters.len();
        // Serves librdkafka's events. Messages arrive on the partition
        // queues, except any fetched before the queues were split.
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            match polled {
                Ok(message) => {
                    let found = self
                        .partitions
                        .iter()
                        .position(|p| p.id == message.partition() && p.topic == message.topic());
                    if let Some(local) = found {
                        let partition = &mut self.partitions[local];
                        take(
                            &message,
                            local,
                            partition,
                            &self.uri,
                            &mut self.decoder,
                            &self.event_time,
                            batch,
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!("kafka: {e}");
                    break;
                }
            }
        }
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
                        &self.uri,
                        &mut self.decoder,
                        &self.event_time,
                        batch,
                    ),
                    Some(Err(e)) => {
                        tracing::warn!("kafka: {}/{}: {e}", partition.topic, partition.id);
                        break;
                    }
                    None => break,
                }
            }
        }
        self.finish_at_end(batch);
        batch.records.len() + batch.dead_letters.len() > before || !batch.finished.is_empty()
    }

    /// Bounded partitions whose read position reached their end are done,
    /// even when the last offsets are transaction markers that are never
    /// delivered as messages.
    fn finish_at_end(&mut self, batch: &mut Batch<T>) {
        if !self.partitions.iter().any(|p| !p.done && p.end.is_some()) {
            return;
        }
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for (local, p) in self.partitions.iter_mut().enumerate() {
            let Some(end) = p.end.filter(|_| !p.done) else {
                continue;
            };
            let at = positions
                .find_partition(&p.topic, p.id)
                .and_then(|e| e.offset().to_raw());
            if at.is_some_and(|at| at >= end) && self.queues[local].is_some() {
                p.done = true;
                p.next = Some(p.next.unwrap_or(0).max(end));
                batch.finished.push(local);
            }
        }
    }
}
