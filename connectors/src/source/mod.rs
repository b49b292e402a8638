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

use std::time::{Duration, Instant};

use tidewater_operators::watermark::SourceWatermarks;
use tidewater_operators::{Context, EventStream, EventTime, Lateness, Metrics, WatermarkStrategy};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
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
    /// Reads at most `max` records into `batch`. Returns `false` when there is
    /// nothing to read right now (an unbounded source waiting for data).
    fn read(&mut self, max: usize, batch: &mut Batch<Self::Item>) -> bool;
}

/// The streams a source produces.
pub struct SourceStreams<'scope, D> {
    /// On-time (and re-timed) records.
    pub records: EventStream<'scope, D>,
    /// Late records, when the late policy routes them to a side output.
    pub late: EventStream<'scope, D>,
    /// Malformed records, with their position.
    pub dead_letters: Stream<'scope, EventTime, Vec<DeadLetter>>,
}

/// Builds a source operator over `reader`.
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
    let mut builder = OperatorBuilder::new(name.to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address);
    let (records_out, records) = builder.new_output::<Vec<(R::Item, EventTime)>>();
    let (late_out, late) = builder.new_output::<Vec<(R::Item, EventTime)>>();
    let (dead_out, dead_letters) = builder.new_output::<Vec<DeadLetter>>();
    let mut records_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(records_out);
    let mut late_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(late_out);
    let mut dead_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(dead_out);

    let ctx = ctx.clone();
    let peers = scope.peers();
    builder.build(move |capabilities| {
        let mut capabilities = Some(capabilities);
        let mut watermarks = SourceWatermarks::new(config.watermarks, reader.partitions());
        let mut limiter = config
            .rate
            .map(|rate| RateLimiter::new(rate / peers as f64));
        let mut batch = Batch::default();
        move |_frontiers| {
            let Some(caps) = capabilities.as_mut() else {
                return;
            };
            if ctx.must_wait(watermarks.emitted()) {
                activator.activate_after(Duration::from_millis(1));
                return;
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
            let metrics = ctx.metrics();
            {
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
            if !batch.dead_letters.is_empty() {
                Metrics::add(&metrics.malformed, batch.dead_letters.len() as u64);
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
                    for cap in caps.iter_mut() {
                        cap.downgrade(&watermark);
                    }
                    if progressed {
                        activator.activate();
                    } else {
                        activator.activate_after(Duration::from_millis(10));
                    }
                }
                None => capabilities = None,
            }
        }
    });
    SourceStreams {
        records,
        late,
        dead_letters,
    }
}
