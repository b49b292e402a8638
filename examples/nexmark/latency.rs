//! `--latency`: how long results take to appear after the watermark passes
//! their time. Every worker records when the sources' frontier (the
//! watermark, global across workers) first passes each time, and when each
//! of its result batches is emitted at a time. When its results end, each
//! worker sends its latencies to worker 0, which prints the percentiles of
//! all of them, `latency_ms p50=.. p99=.. max=.. batches=..`, on standard
//! error (a query whose results all land on one worker, like q7's single
//! key, is measured wherever they land).
//!
//! A result at time `t` (a window's results travel at or below its end) can
//! be emitted once the watermark has passed `t`; the latency is from that
//! moment to the batch reaching the sink. Results emitted when the input
//! ends count from the moment the frontier became empty.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use tidewater::prelude::*;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder};
use timely::dataflow::Stream;

/// The shared record of one worker's frontier advances and emissions.
#[derive(Default)]
pub struct Latency {
    /// `(frontier, when it was reached)`, in order; `None`: empty.
    advances: Vec<(Option<EventTime>, Instant)>,
    /// `(batch time, when emitted)`.
    emitted: Vec<(EventTime, Instant)>,
}

impl Latency {
    /// When the watermark first passed `t` (moved beyond it).
    fn passed(&self, t: EventTime) -> Option<Instant> {
        self.advances
            .iter()
            .find(|(f, _)| f.is_none_or(|f| f > t))
            .map(|(_, at)| *at)
    }

    /// This worker's latencies, in milliseconds.
    fn latencies(&self) -> Vec<f64> {
        self.emitted
            .iter()
            .filter_map(|(t, at)| {
                let passed = self.passed(*t)?;
                Some(at.saturating_duration_since(passed).as_secs_f64() * 1e3)
            })
            .collect()
    }
}

/// Prints the percentiles of `ms`.
fn report(mut ms: Vec<f64>) {
    if ms.is_empty() {
        eprintln!("latency_ms batches=0");
        return;
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "latency_ms p50={:.1} p99={:.1} max={:.1} batches={}",
        at(0.5),
        at(0.99),
        ms[ms.len() - 1],
        ms.len()
    );
}

/// Watches the frontier of `events` (the sources' output).
pub fn watch_watermark<'s, D: Clone + 'static>(
    events: &EventStream<'s, D>,
    latency: Rc<RefCell<Latency>>,
) {
    let _: Stream<'s, EventTime, Vec<()>> = events
        .clone()
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Pipeline,
            "WatchWatermark",
            move |_, _| {
                let mut last: Option<Option<EventTime>> = None;
                move |(input, frontier), _output| {
                    input.for_each(|_, _| {});
                    let now = frontier.frontier().first().copied();
                    if last != Some(now) {
                        last = Some(now);
                        latency.borrow_mut().advances.push((now, Instant::now()));
                    }
                }
            },
        );
}

/// Records when each batch of `results` is emitted, passing it on; once
/// the results end, sends this worker's latencies to worker 0, which
/// reports them all.
pub fn watch_results<'s, D: 'static>(
    results: EventStream<'s, D>,
    latency: Rc<RefCell<Latency>>,
) -> EventStream<'s, D> {
    let mut builder = OperatorBuilder::new("WatchResults".to_owned(), results.scope());
    let mut input = builder.new_input(results, Pipeline);
    let (passed_out, passed) = builder.new_output::<Vec<(D, EventTime)>>();
    let (samples_out, samples) = builder.new_output::<Vec<f64>>();
    let mut passed_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(passed_out);
    let mut samples_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(samples_out);
    builder.build(move |mut capabilities| {
        // The samples' capability (at the minimum time, on a stream no probe
        // watches) is held until the results end; the results' is not needed.
        let mut samples_cap = capabilities.pop();
        capabilities.clear();
        move |frontiers| {
            let mut passed_out = passed_out.activate();
            input.for_each(|cap, data| {
                latency
                    .borrow_mut()
                    .emitted
                    .push((*cap.least().expect("a capability"), Instant::now()));
                passed_out.session(&cap).give_container(data);
            });
            if frontiers[0].frontier().is_empty() {
                if let Some(cap) = samples_cap.take() {
                    let mut samples_out = samples_out.activate();
                    samples_out
                        .session(&cap)
                        .give_iterator(latency.borrow().latencies().into_iter());
                }
            }
        }
    });
    let reporter = samples.scope().index() == 0;
    let _: Stream<'s, EventTime, Vec<()>> = samples
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_: &f64| 0),
            "ReportLatency",
            move |_, _| {
                let mut all = Vec::new();
                let mut reported = false;
                move |(input, frontier), _output| {
                    input.for_each(|_, data| all.append(data));
                    if frontier.is_empty() && !reported {
                        reported = true;
                        if reporter {
                            report(std::mem::take(&mut all));
                        }
                    }
                }
            },
        );
    passed
}
