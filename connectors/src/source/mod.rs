//! The event-time source operator shared by every connector.
//!
//! A connector implements [`SourceReader`]: it reads raw records from the
//! partitions this worker owns, decodes them, and reports each record's
//! partition and event time. [`event_source`] turns a reader into timely
//! streams. It decides lateness per partition ([`SourceWatermarks`]), sends
//! everything it reads in one batch under a single capability at the source's
//! watermark, paces itself against the context's probe (flow control) and an
//! optional rate limit, and routes malformed records to a dead-letter stream.

mod rate;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tidewater_operators::checkpoint::part::{decode, encode};
use tidewater_operators::checkpoint::{Part, Snapshots};
use tidewater_operators::watermark::SourceWatermarks;
use tidewater_operators::{Context, EventStream, EventTime, Lateness, Metrics, WatermarkStrategy};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};

use crate::DeadLetter;
pub use rate::RateLimiter;

/// Settings every source accepts.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Watermark bound, idleness and late policy.
    pub watermarks: WatermarkStrategy,
    /// Throttle: at most this many records per second over all workers.
    pub rate: Option<f64>,
    /// Fail the job on the first malformed record instead of routing it to
    /// the dead-letter output.
    pub fail_on_malformed: bool,
    /// Records read per activation at most (default 8 Ki).
    pub batch: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            watermarks: WatermarkStrategy::default(),
            rate: None,
            fail_on_malformed: false,
            batch: 8192,
        }
    }
}

/// What a reader produced in one call to [`SourceReader::read`].
pub struct Batch<D> {
    /// Decoded records: (local partition, record, event time).
    pub records: Vec<(usize, D, EventTime)>,
    /// Records that could not be decoded.
    pub dead_letters: Vec<DeadLetter>,
    /// Local partitions that are exhausted.
    pub finished: Vec<usize>,
}

impl<D> Default for Batch<D> {
    fn default() -> Self {
        Batch {
            records: Vec::new(),
            dead_letters: Vec::new(),
            finished: Vec::new(),
        }
    }
}

/// A connector's reading side: the partitions this worker owns.
pub trait SourceReader: 'static {
    /// The decoded record type.
    type Item;
    /// Number of partitions this worker owns (local indices `0..n`).
    fn partitions(&self) -> usize;
    /// The global id of local partition `p`: the same for the same
    /// partition whatever the number of workers (checkpoints use it).
    fn partition_id(&self, p: usize) -> u64;
    /// Where local partition `p` stands, for a checkpoint (opaque bytes).
    fn position(&self, p: usize) -> Vec<u8>;
    /// Continues local partition `p` from a checkpointed position.
    fn seek(&mut self, p: usize, position: &[u8]) -> Result<(), String>;
    /// Reads at most `max` records into `batch`. Returns `false` when there is
    /// nothing to read right now (an unbounded source waiting for data).
    fn read(&mut self, max: usize, batch: &mut Batch<Self::Item>) -> bool;
    /// The dataflow has been too far behind for a while (`true`) or has
    /// caught up (`false`): a reader that fetches in the background stops
    /// and restarts fetching.
    fn pause(&mut self, _paused: bool) {}
    /// The positions of a checkpoint were just taken (a reader may report
    /// them elsewhere, as the Kafka source commits them to its group).
    fn snapshotted(&mut self) {}
}

/// How long a source waits for the dataflow before it pauses its reader.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// The streams a source produces.
pub struct SourceStreams<'scope, D> {
    /// On-time (and re-timed) records.
    pub records: EventStream<'scope, D>,
    /// Late records, when the late policy routes them to a side output.
    pub late: EventStream<'scope, D>,
    /// Malformed records, with their position.
    pub dead_letters: Stream<'scope, EventTime, Vec<DeadLetter>>,
}

/// A partition in a source snapshot: reader position and watermark state.
#[derive(serde::Serialize, serde::Deserialize)]
struct PartitionImage {
    position: Vec<u8>,
    max_seen: Option<EventTime>,
    finished: bool,
}

/// Builds a source operator over `reader`.
///
/// With checkpoints, the source keeps its capability below its control
/// frontier, and when its capability moves to or past an announced
/// checkpoint `C` it writes every partition's position and watermark state
/// first: replaying from there re-sends exactly what it sent at `C` and
/// later, with the same lateness decisions. A restored source starts at `C`.
pub fn event_source<'scope, R>(
    scope: Scope<'scope, EventTime>,
    name: &str,
    ctx: &Context,
    config: SourceConfig,
    mut reader: R,
) -> SourceStreams<'scope, R::Item>
where
    R: SourceReader,
    R::Item: 'static,
{
    let peers = scope.peers();
    let (snapshots, control) = Snapshots::attach(Some(ctx), scope, "source").unzip();
    let source_id = ctx
        .checkpointing()
        .map(|c| c.coordinator.borrow_mut().register_source());

    let name = name.to_owned();
    let mut builder = OperatorBuilder::new(name.clone(), scope);
    let info = builder.operator_info();
    let activator = std::rc::Rc::new(scope.activator_for(info.address));
    let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
    let (records_out, records) = builder.new_output::<Vec<(R::Item, EventTime)>>();
    let (late_out, late) = builder.new_output::<Vec<(R::Item, EventTime)>>();
    let (dead_out, dead_letters) = builder.new_output::<Vec<DeadLetter>>();
    let mut records_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(records_out);
    let mut late_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(late_out);
    let mut dead_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(dead_out);

    let ctx = ctx.clone();
    builder.build(move |mut caps| {
        let mut watermarks = SourceWatermarks::new(config.watermarks, reader.partitions());
        if let Some(snapshots) = &snapshots {
            if let Some(c) = snapshots.restored_at() {
                restore(snapshots.restored_parts(), &mut reader, &mut watermarks, c)
                    .unwrap_or_else(|e| ctx.fail(format!("cannot restore source {name}: {e}")));
                for cap in caps.iter_mut() {
                    cap.downgrade(&c);
                }
            }
        }
        let mut capabilities = Some(caps);
        let mut pending: BTreeSet<EventTime> = BTreeSet::new();
        let mut limiter = config
            .rate
            .map(|rate| RateLimiter::new(rate / peers as f64));
        let mut batch = Batch::default();
        let (mut paused, mut waiting) = (false, None::<Instant>);
        let snapshot = move |c: EventTime, reader: &R, watermarks: &SourceWatermarks| {
            if let Some(snapshots) = &snapshots {
                let groups = (0..reader.partitions())
                    .map(|p| {
                        let (max_seen, finished) = watermarks.partition_state(p);
                        let image = PartitionImage {
                            position: reader.position(p),
                            max_seen,
                            finished,
                        };
                        (reader.partition_id(p), encode(&image))
                    })
                    .collect();
                snapshots.write(c, groups, encode(&watermarks.emitted()));
            }
        };
        let publish = {
            let coordinator = ctx
                .checkpointing()
                .map(|c| std::rc::Rc::clone(&c.coordinator));
            move |watermark: Option<EventTime>| {
                if let (Some(coordinator), Some(id)) = (&coordinator, source_id) {
                    coordinator.borrow_mut().publish(id, watermark);
                }
            }
        };
        move |frontiers| {
            if let Some(control) = control_input.as_mut() {
                control.for_each(|_, data| pending.extend(data.drain(..)));
            }
            let limit = frontiers
                .first()
                .map(|f| {
                    f.frontier()
                        .first()
                        .map_or(EventTime::MAX, |t| t.saturating_sub(1))
                })
                .unwrap_or(EventTime::MAX);
            let Some(caps) = capabilities.as_mut() else {
                // Finished: every later checkpoint holds the final positions.
                if !pending.is_empty() {
                    for c in std::mem::take(&mut pending) {
                        snapshot(c, &reader, &watermarks);
                    }
                    reader.snapshotted();
                }
                return;
            };
            // Move the capability up to the watermark, below the control frontier.
            let mut advance = |caps: &mut Vec<Capability<EventTime>>,
                               target: EventTime,
                               reader: &R,
                               watermarks: &SourceWatermarks|
             -> bool {
                let mut snapshotted = false;
                if target > *caps[0].time() {
                    let crossed: Vec<EventTime> = pending.range(..=target).copied().collect();
                    for c in crossed {
                        pending.remove(&c);
                        snapshot(c, reader, watermarks);
                        snapshotted = true;
                    }
                    for cap in caps.iter_mut() {
                        cap.downgrade(&target);
                    }
                }
                snapshotted
            };
            if advance(caps, watermarks.emitted().min(limit), &reader, &watermarks) {
                reader.snapshotted();
            }
            if ctx.must_wait(watermarks.emitted()) {
                // Flow control waits are short; a reader pauses only for a
                // stall (pausing a Kafka partition drops what was prefetched).
                let since = *waiting.get_or_insert_with(Instant::now);
                if !paused && since.elapsed() >= PAUSE_AFTER {
                    paused = true;
                    reader.pause(true);
                }
                // Woken when the probe moves; the timer is for dataflows
                // whose probe no sink moves.
                ctx.wake_on_probe(&activator);
                activator.activate_after(Duration::from_millis(10));
                return;
            }
            waiting = None;
            if paused {
                paused = false;
                reader.pause(false);
            }
            let mut budget = config.batch;
            if let Some(limiter) = limiter.as_mut() {
                budget = budget.min(limiter.available());
                if budget == 0 {
                    activator.activate_after(limiter.wait());
                    return;
                }
            }
            let progressed = reader.read(budget, &mut batch);
            watermarks.set_now(Instant::now());
            if let Some(limiter) = limiter.as_mut() {
                limiter.consume(batch.records.len() + batch.dead_letters.len());
            }
            emit_batch(
                &mut batch,
                &mut watermarks,
                &caps[..],
                &mut records_out,
                &mut late_out,
                ctx.metrics(),
            );
            if !batch.dead_letters.is_empty() {
                Metrics::add(&ctx.metrics().malformed, batch.dead_letters.len() as u64);
                if config.fail_on_malformed {
                    let first = &batch.dead_letters[0];
                    ctx.fail(format!("malformed record (failing fast): {first}"));
                    capabilities = None;
                    return;
                }
                for dead in &batch.dead_letters {
                    tracing::warn!("malformed record: {dead}");
                }
                let mut dead_out = dead_out.activate();
                dead_out
                    .session(&caps[2])
                    .give_iterator(batch.dead_letters.drain(..));
            }
            for partition in batch.finished.drain(..) {
                watermarks.finish(partition);
            }
            match watermarks.advance() {
                Some(watermark) => {
                    publish(Some(watermark));
                    if advance(caps, watermark.min(limit), &reader, &watermarks) {
                        reader.snapshotted();
                    }
                    if progressed {
                        activator.activate();
                    } else {
                        activator.activate_after(Duration::from_millis(10));
                    }
                }
                None => {
                    publish(None);
                    if !pending.is_empty() {
                        for c in std::mem::take(&mut pending) {
                            snapshot(c, &reader, &watermarks);
                        }
                        reader.snapshotted();
                    }
                    capabilities = None;
                }
            }
        }
    });
    SourceStreams {
        records,
        late,
        dead_letters,
    }
}

/// Sends a batch's records on the main and late outputs per the lateness rules.
fn emit_batch<D: 'static>(
    batch: &mut Batch<D>,
    watermarks: &mut SourceWatermarks,
    caps: &[Capability<EventTime>],
    records_out: &mut OutputBuilder<EventTime, CapacityContainerBuilder<Vec<(D, EventTime)>>>,
    late_out: &mut OutputBuilder<EventTime, CapacityContainerBuilder<Vec<(D, EventTime)>>>,
    metrics: &Metrics,
) {
    let mut records_out = records_out.activate();
    let mut late_out = late_out.activate();
    let mut on_time = records_out.session(&caps[0]);
    let mut routed = late_out.session(&caps[1]);
    let (mut sent, mut dropped, mut retimed, mut late) = (0, 0, 0, 0);
    for (partition, record, time) in batch.records.drain(..) {
        match watermarks.admit(partition, time) {
            Lateness::OnTime(time) => {
                sent += 1;
                on_time.give((record, time));
            }
            Lateness::Retimed(time) => {
                retimed += 1;
                on_time.give((record, time));
            }
            Lateness::Routed(time) => {
                late += 1;
                routed.give((record, time));
            }
            Lateness::Dropped => dropped += 1,
        }
    }
    Metrics::add(&metrics.records_in, sent);
    Metrics::add(&metrics.late_dropped, dropped);
    Metrics::add(&metrics.late_retimed, retimed);
    Metrics::add(&metrics.late_routed, late);
}

/// Restores a reader's positions and watermarks from a checkpoint's parts.
fn restore<R: SourceReader>(
    parts: &[Part],
    reader: &mut R,
    watermarks: &mut SourceWatermarks,
    checkpoint: EventTime,
) -> Result<(), String> {
    let mut images = std::collections::HashMap::new();
    let mut emitted: Option<EventTime> = None;
    for part in parts {
        let e: EventTime = decode(&part.global).map_err(|e| e.to_string())?;
        emitted = Some(emitted.map_or(e, |x| x.min(e)));
        for (id, bytes) in &part.groups {
            images.insert(*id, bytes);
        }
    }
    for p in 0..reader.partitions() {
        let id = reader.partition_id(p);
        let bytes = images
            .get(&id)
            .ok_or_else(|| format!("partition {id} is missing from the checkpoint"))?;
        let image: PartitionImage = decode(bytes).map_err(|e| e.to_string())?;
        reader.seek(p, &image.position)?;
        watermarks.restore_partition(p, image.max_seen, image.finished);
    }
    watermarks.restore_emitted(emitted.unwrap_or(checkpoint).max(checkpoint));
    Ok(())
}
