//! `--latency`: how long results take to appear after the watermark passes
//! their time. Every worker records; worker 0 reports what it records when the sources' frontier (the watermark,
//! global across workers) first passes each time, and when each of its
//! result batches is emitted at a time; at the end it prints
//! `latency_ms p50=.. p99=.. max=.. batches=..` on standard error.
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
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
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

    /// Prints the percentiles of the latencies recorded.
    pub fn report(&self) {
        let mut ms: Vec<f64> = self
            .emitted
            .iter()
            .filter_map(|(t, at)| {
                let passed = self.passed(*t)?;
                Some(at.saturating_duration_since(passed).as_secs_f64() * 1e3)
            })
            .collect();
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

/// Records when each batch of `results` is emitted, passing it on, and
/// reports once the results end.
pub fn watch_results<'s, D: 'static>(
    results: EventStream<'s, D>,
    latency: Rc<RefCell<Latency>>,
) -> EventStream<'s, D> {
    let report = results.scope().index() == 0;
    results.unary_frontier::<CapacityContainerBuilder<Vec<(D, EventTime)>>, _, _, _>(
        Pipeline,
        "WatchResults",
        move |_, _| {
            let mut reported = false;
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    latency
                        .borrow_mut()
                        .emitted
                        .push((*cap.least().expect("a capability"), Instant::now()));
                    output.session(&cap).give_container(data);
                });
                if frontier.is_empty() && !reported {
                    reported = true;
                    if report {
                        latency.borrow().report();
                    }
                }
            }
        },
    )
}
