//! The per-worker job context: flow control, metrics and the failure slot
//! shared by the sources, operators and sinks of one worker's dataflows.
//!
//! The runtime (`tidewater::execute`) makes one per worker and hands it to the
//! program; tests may make their own with [`Context::new`]. The context owns no
//! dataflow logic: it only carries what sources and sinks must agree on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Operator, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::scheduling::Activator;

use crate::checkpoint::{control_stream, Checkpointing};
use crate::EventTime;

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Shared state for one worker's dataflows. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    probe: ProbeHandle<EventTime>,
    max_lag_ms: u64,
    /// Sources waiting for the probe to move (see [`Context::wake_on_probe`]).
    waiting: Rc<RefCell<Vec<Rc<Activator>>>>,
    metrics: Rc<Metrics>,
    failure: Rc<RefCell<Option<String>>>,
    checkpointing: Option<Rc<Checkpointing>>,
}

impl Context {
    /// A context whose sources stay at most `max_lag_ms` of event time ahead
    /// of what the sinks (attached to [`Context::probe`]) have completed.
    pub fn new(max_lag_ms: u64) -> Self {
        Context {
            probe: ProbeHandle::new(),
            max_lag_ms,
            waiting: Rc::default(),
            metrics: Rc::default(),
            failure: Rc::default(),
            checkpointing: None,
        }
    }

    /// The same context, with checkpoints.
    pub fn with_checkpointing(mut self, checkpointing: Checkpointing) -> Self {
        self.checkpointing = Some(Rc::new(checkpointing));
        self
    }

    /// The checkpoint services, if this job takes checkpoints.
    pub fn checkpointing(&self) -> Option<&Rc<Checkpointing>> {
        self.checkpointing.as_ref()
    }

    /// A new control stream (checkpoint announcements) for one stateful
    /// operator, if this job takes checkpoints.
    pub fn control<'scope>(
        &self,
        scope: Scope<'scope, EventTime>,
    ) -> Option<Stream<'scope, EventTime, Vec<EventTime>>> {
        let checkpointing = self.checkpointing.as_ref()?;
        Some(control_stream(
            scope,
            Rc::clone(&checkpointing.coordinator),
            self.probe.clone(),
            Rc::clone(&checkpointing.store),
        ))
    }

    /// Makes this the context of the current worker thread, which operators
    /// built without an explicit context consult (see [`Context::current`]).
    pub fn install(&self) {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }

    /// The context installed on this worker thread, if any.
    pub fn current() -> Option<Context> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// The probe every sink attaches to; sources pace themselves against it.
    ///
    /// A dataflow with no probe attached has no flow control.
    pub fn probe(&self) -> &ProbeHandle<EventTime> {
        &self.probe
    }

    /// Attaches a sink's completion stream (empty, its frontier the
    /// sink's progress) to [`Context::probe`], and wakes the sources
    /// waiting on flow control ([`Context::wake_on_probe`]) whenever its
    /// frontier moves.
    ///
    /// ```
    /// use timely::container::CapacityContainerBuilder;
    /// use timely::dataflow::channels::pact::Pipeline;
    /// use timely::dataflow::operators::{Operator, ToStream};
    /// use tidewater_operators::Context;
    ///
    /// timely::execute_directly(|worker| {
    ///     let ctx = Context::new(10_000);
    ///     worker.dataflow::<u64, _, _>(|scope| {
    ///         // A sink: it consumes its input and outputs nothing.
    ///         let done = (0..10u64)
    ///             .to_stream(scope)
    ///             .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, "Sink", |_, _| {
    ///                 |input, _output| input.for_each(|_, data: &mut Vec<u64>| data.clear())
    ///             });
    ///         ctx.attach(done);
    ///     });
    ///     while worker.step() {}
    ///     assert!(ctx.probe().done());
    /// });
    /// ```
    pub fn attach(&self, done: Stream<'_, EventTime, Vec<()>>) {
        let waiting = Rc::clone(&self.waiting);
        done.probe_with(&self.probe)
            .sink(Pipeline, "FlowControl", move |(input, _frontier)| {
                input.for_each(|_, _| {});
                for source in waiting.borrow_mut().drain(..) {
                    source.activate();
                }
            });
    }

    /// Has `source`, which [`Context::must_wait`], activated as soon as the
    /// probe of a sink [`Context::attach`]ed moves: a timer would leave the
    /// worker idle after the dataflow has caught up (at `-w 2` q5's workers
    /// were idle 5-9% of the time, waking every millisecond).
    pub fn wake_on_probe(&self, source: &Rc<Activator>) {
        let mut waiting = self.waiting.borrow_mut();
        if !waiting.iter().any(|a| Rc::ptr_eq(a, source)) {
            waiting.push(Rc::clone(source));
        }
    }

    /// The allowed distance, in event-time milliseconds, between a source's
    /// watermark and the probe.
    pub fn max_lag_ms(&self) -> u64 {
        self.max_lag_ms
    }

    /// Whether a source at `watermark` must wait for the dataflow to catch up.
    pub fn must_wait(&self, watermark: EventTime) -> bool {
        watermark > self.max_lag_ms && self.probe.less_than(&(watermark - self.max_lag_ms))
    }

    /// This worker's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records a fatal error; the runtime stops the job with it.
    pub fn fail(&self, message: String) {
        tracing::error!("{message}");
        self.failure.borrow_mut().get_or_insert(message);
    }

    /// The first fatal error recorded, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }
}

impl Default for Context {
    /// A context with a 10 s event-time lag bound.
    fn default() -> Self {
        Context::new(10_000)
    }
}

/// Counters of one worker, updated by its sources and sinks.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Records read and sent on time.
    pub records_in: Cell<u64>,
    /// Late records dropped by the `drop` policy.
    pub late_dropped: Cell<u64>,
    /// Late records routed to a late-data side output.
    pub late_routed: Cell<u64>,
    /// Late records re-timed to the watermark.
    pub late_retimed: Cell<u64>,
    /// Malformed records sent to the dead-letter output.
    pub malformed: Cell<u64>,
    /// Records written by sinks.
    pub records_out: Cell<u64>,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &Cell<u64>, n: u64) {
        counter.set(counter.get() + n);
    }
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "in={} out={} late_dropped={} late_routed={} late_retimed={} malformed={}",
            self.records_in.get(),
            self.records_out.get(),
            self.late_dropped.get(),
            self.late_routed.get(),
            self.late_retimed.get(),
            self.malformed.get()
        )
    }
}
