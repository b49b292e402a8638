//! Keyed process functions: per-key state and timers, for event-driven
//! applications (Flink's `KeyedProcessFunction`).
//!
//! Records are exchanged by key and processed in event-time order once the
//! watermark passes their time, ties broken by key and record, so results do
//! not depend on arrival order. Event-time timers fire in timestamp order
//! when the watermark passes them, after the records of the same time.
//! Processing-time timers fire by the wall clock; when the input ends,
//! pending event-time timers fire and processing-time timers are dropped.
//!
//! Everything one activation produces goes out under one capability, held
//! at the oldest pending record or timer.

mod state;

use std::hash::Hash;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use crate::checkpoint::{Barrier, Snapshots, Step};
use crate::keyed::worker_for_key;
use crate::window::KeyedStream;
use crate::{Context, EventStream, EventTime};

/// What a [`ProcessFunction`] can do while it handles a record or a timer.
pub struct ProcessContext<'a, K, O, S> {
    key: &'a K,
    time: EventTime,
    watermark: EventTime,
    out: &'a mut Vec<(O, EventTime)>,
    side: &'a mut Vec<(S, EventTime)>,
    timers: &'a mut Timers<K>,
    clear: bool,
}

impl<K: Ord + Clone, O, S> ProcessContext<'_, K, O, S> {
    /// The event time of the record or timer being handled.
    pub fn time(&self) -> EventTime {
        self.time
    }

    /// The watermark: every record and timer below it has been handled.
    pub fn watermark(&self) -> EventTime {
        self.watermark
    }

    /// The key being handled.
    pub fn key(&self) -> &K {
        self.key
    }

    /// Emits `value` on the main output at the current time.
    pub fn emit(&mut self, value: O) {
        self.out.push((value, self.time));
    }

    /// Emits `value` on the side output at the current time.
    pub fn side(&mut self, value: S) {
        self.side.push((value, self.time));
    }

    /// Calls `on_timer` for this key when the watermark passes `time`
    /// (at once if it already has). One timer per key and time.
    pub fn register_event_timer(&mut self, time: EventTime) {
        self.timers
            .event
            .insert((time.max(self.watermark), self.key.clone()));
    }

    /// Cancels an event-time timer.
    pub fn delete_event_timer(&mut self, time: EventTime) {
        self.timers
            .event
            .remove(&(time.max(self.watermark), self.key.clone()));
    }

    /// Drops this key's state, and its TTL, once this call returns (Flink's
    /// `State::clear`): the key's next record starts from `Default`. Its
    /// timers stay.
    pub fn clear_state(&mut self) {
        self.clear = true;
    }

    /// Calls `on_processing_timer` for this key once the wall clock reaches
    /// `after` from now.
    pub fn register_processing_timer(&mut self, after: Duration) -> u64 {
        let at = wall_ms() + after.as_millis() as u64;
        self.timers.processing.insert((at, self.key.clone()));
        at
    }

    /// Cancels a processing-time timer by the value `register_processing_timer` returned.
    pub fn delete_processing_timer(&mut self, at: u64) {
        self.timers.processing.remove(&(at, self.key.clone()));
    }
}

/// A keyed, event-driven computation with per-key state of type `State`.
pub trait ProcessFunction<K, D>: 'static {
    /// Per-key state (a value, a list, a map, a struct of them), created by
    /// `Default` on a key's first record and dropped after the TTL;
    /// serializable, as checkpoints hold it.
    type State: Default + ExchangeData;
    /// Main output records.
    type Out: 'static;
    /// Side output records.
    type Side: 'static;

    /// Handles one record of `key`.
    fn process(
        &mut self,
        record: D,
        state: &mut Self::State,
        ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    );

    /// Handles an event-time timer of `ctx.key()` at `ctx.time()`.
    fn on_timer(
        &mut self,
        _state: &mut Self::State,
        _ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    ) {
    }

    /// Handles a processing-time timer of `ctx.key()`.
    fn on_processing_timer(
        &mut self,
        _state: &mut Self::State,
        _ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    ) {
    }
}

/// The outputs of a process function.
pub struct ProcessOutput<'scope, O, S> {
    /// Main output.
    pub output: EventStream<'scope, O>,
    /// Side output.
    pub side: EventStream<'scope, S>,
}

use state::{wall_ms, ProcessState, Timers};

impl<'scope, D, K, F> KeyedStream<'scope, D, F>
where
    D: ExchangeData + Ord + Clone,
    K: ExchangeData + Hash + Ord + Clone,
    F: Fn(&D) -> K + Clone + 'static,
{
    /// Runs `function` per key.
    ///
    /// `state_ttl_ms`: a key's state is dropped once the watermark is this far
    /// past the key's last record (`None`: kept until the function clears it with
    /// [`ProcessContext::clear_state`]).
    /// With checkpoints, per-key state, pending records and timers are
    /// written per key group.
    pub fn process<P>(
        self,
        state_ttl_ms: Option<u64>,
        mut function: P,
    ) -> ProcessOutput<'scope, P::Out, P::Side>
    where
        P: ProcessFunction<K, D>,
        P::State: Clone,
    {
        let KeyedStream { stream, key } = self;
        let scope = stream.scope();
        let peers = scope.peers();
        let route = key.clone();
        let pact =
            Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&route(data), peers));
        let (snapshots, control) =
            Snapshots::attach(Context::current().as_ref(), scope, "process").unzip();
        let mut builder = OperatorBuilder::new("Process".to_owned(), scope);
        let info = builder.operator_info();
        let activator = scope.activator_for(info.address);
        let mut input = builder.new_input(stream, pact);
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (out, output) = builder.new_output::<Vec<(P::Out, EventTime)>>();
        let (side_out, side) = builder.new_output::<Vec<(P::Side, EventTime)>>();
        let mut out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(out);
        let mut side_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(side_out);

        builder.build(move |mut caps| {
            let mut st: ProcessState<K, D, P::State> = ProcessState::new(state_ttl_ms);
            if let Some(snapshots) = &snapshots {
                if let Some(c) = snapshots.restored_at() {
                    for bytes in snapshots.restored_groups() {
                        st.restore_group(bytes)
                            .expect("a verified checkpoint part decodes");
                    }
                    for cap in caps.iter_mut() {
                        cap.downgrade(&c);
                    }
                }
            }
            let mut capabilities = Some(caps);
            let mut barrier: Barrier<Vec<(D, EventTime)>> = Barrier::default();
            let (mut outs, mut sides) = (Vec::new(), Vec::new());
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
                let data_frontier = frontiers[0].frontier().first().copied();
                let accept = |st: &mut ProcessState<K, D, P::State>, batch: Vec<(D, EventTime)>| {
                    for (record, time) in batch {
                        st.add(time, key(&record), record);
                    }
                };
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(batch) =
                        barrier.accept(time, std::mem::take(data), control_frontier)
                    {
                        accept(&mut st, batch);
                    }
                });
                let Some(caps) = capabilities.as_mut() else {
                    if let Some(snapshots) = &snapshots {
                        snapshots.write_remaining(&mut barrier);
                    }
                    return;
                };
                let floor = *caps[0].time();
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => batches.into_iter().for_each(|b| accept(&mut st, b)),
                        Step::Snapshot(c) => {
                            st.run(Some(c), floor, &mut function, &mut outs, &mut sides);
                            if let Some(snapshots) = &snapshots {
                                snapshots.write(c, st.snapshot(), Vec::new());
                            }
                        }
                    }
                }
                let frontier = barrier.frontier(data_frontier, control_frontier);
                st.run(frontier, floor, &mut function, &mut outs, &mut sides);
                st.run_processing(floor, &mut function, &mut outs, &mut sides);
                if !outs.is_empty() {
                    out.activate()
                        .session(&caps[0])
                        .give_iterator(outs.drain(..));
                }
                if !sides.is_empty() {
                    side_out
                        .activate()
                        .session(&caps[1])
                        .give_iterator(sides.drain(..));
                }
                // Hold the capability at the oldest pending record or timer.
                match [frontier, st.oldest()].into_iter().flatten().min() {
                    Some(t) => {
                        for cap in caps.iter_mut() {
                            cap.downgrade(&t.max(*cap.time()));
                        }
                        if let Some(at) = st.next_processing_timer() {
                            activator.activate_after(Duration::from_millis(
                                at.saturating_sub(wall_ms()),
                            ));
                        }
                    }
                    None => capabilities = None,
                }
            }
        });
        ProcessOutput { output, side }
    }
}
