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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use crate::checkpoint::part::{decode, encode};
use crate::checkpoint::{Barrier, Snapshots, Step};
use crate::keyed::{key_group, worker_for_key};
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

struct Timers<K> {
    event: BTreeSet<(EventTime, K)>,
    processing: BTreeSet<(u64, K)>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Serialize, Deserialize)]
struct Keyed<S> {
    state: S,
    /// Event time of the key's last record, for the TTL.
    touched: EventTime,
}

/// Everything one key holds, as written to a checkpoint.
#[derive(Serialize, Deserialize)]
struct KeyImage<K, D, S> {
    key: K,
    keyed: Option<Keyed<S>>,
    pending: Vec<(EventTime, D)>,
    event_timers: Vec<EventTime>,
    processing_timers: Vec<u64>,
    ttl: Option<EventTime>,
}

/// The state of one worker's process operator.
struct ProcessState<K, D, S> {
    pending: BTreeMap<EventTime, Vec<(K, D)>>,
    states: HashMap<K, Keyed<S>>,
    timers: Timers<K>,
    ttl: BTreeSet<(EventTime, K)>,
    state_ttl_ms: Option<u64>,
}

impl<K, D, S> ProcessState<K, D, S>
where
    K: ExchangeData + Hash + Ord + Clone,
    D: ExchangeData + Ord,
    S: ExchangeData + Default,
{
    /// Handles records and timers in time order while their time is below
    /// `limit` (`None`: all of them).
    fn run<P>(
        &mut self,
        limit: Option<EventTime>,
        floor: EventTime,
        function: &mut P,
        outs: &mut Vec<(P::Out, EventTime)>,
        sides: &mut Vec<(P::Side, EventTime)>,
    ) where
        P: ProcessFunction<K, D, State = S>,
    {
        let ready = |t: EventTime| limit.is_none_or(|l| t < l);
        let mut watermark = floor;
        loop {
            // The next thing in time: records first, then timers.
            let next_record = self
                .pending
                .first_key_value()
                .map(|(t, _)| *t)
                .filter(|t| ready(*t));
            let next_timer = self
                .timers
                .event
                .first()
                .map(|(t, _)| *t)
                .filter(|t| ready(*t));
            let next_ttl = self.ttl.first().map(|(t, _)| *t).filter(|t| ready(*t));
            let Some(now) = [next_record, next_timer, next_ttl]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            watermark = watermark.max(now);
            if next_record == Some(now) {
                let mut batch = self.pending.remove(&now).unwrap_or_default();
                batch.sort();
                for (k, record) in batch {
                    let entry = self.states.entry(k.clone()).or_insert_with(|| Keyed {
                        state: S::default(),
                        touched: now,
                    });
                    if let Some(ttl_ms) = self.state_ttl_ms {
                        self.ttl
                            .remove(&(entry.touched.saturating_add(ttl_ms), k.clone()));
                        self.ttl.insert((now.saturating_add(ttl_ms), k.clone()));
                    }
                    entry.touched = now;
                    let mut ctx = ProcessContext {
                        key: &k,
                        time: now,
                        watermark,
                        out: outs,
                        side: sides,
                        timers: &mut self.timers,
                    };
                    function.process(record, &mut entry.state, &mut ctx);
                }
            } else if next_timer == Some(now) {
                let (_, k) = self.timers.event.pop_first().expect("a timer");
                let entry = self.states.entry(k.clone()).or_insert_with(|| Keyed {
                    state: S::default(),
                    touched: now,
                });
                let mut ctx = ProcessContext {
                    key: &k,
                    time: now,
                    watermark,
                    out: outs,
                    side: sides,
                    timers: &mut self.timers,
                };
                function.on_timer(&mut entry.state, &mut ctx);
            } else {
                let (_, k) = self.ttl.pop_first().expect("a ttl");
                self.states.remove(&k);
            }
        }
    }

    /// Fires the processing-time timers that are due; outputs at `time`.
    fn run_processing<P>(
        &mut self,
        time: EventTime,
        function: &mut P,
        outs: &mut Vec<(P::Out, EventTime)>,
        sides: &mut Vec<(P::Side, EventTime)>,
    ) where
        P: ProcessFunction<K, D, State = S>,
    {
        let now_ms = wall_ms();
        while self
            .timers
            .processing
            .first()
            .is_some_and(|(at, _)| *at <= now_ms)
        {
            let (_, k) = self.timers.processing.pop_first().expect("a timer");
            let entry = self.states.entry(k.clone()).or_insert_with(|| Keyed {
                state: S::default(),
                touched: time,
            });
            let mut ctx = ProcessContext {
                key: &k,
                time,
                watermark: time,
                out: outs,
                side: sides,
                timers: &mut self.timers,
            };
            function.on_processing_timer(&mut entry.state, &mut ctx);
        }
    }

    /// The least time of a pending record or event-time timer.
    fn oldest(&self) -> Option<EventTime> {
        [
            self.pending.first_key_value().map(|(t, _)| *t),
            self.timers.event.first().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Every key's state, pending records and timers, per key group.
    fn snapshot(&self) -> Vec<(u64, Vec<u8>)>
    where
        D: Clone,
        S: Clone,
    {
        fn image<'a, K: Ord + Clone, D, S>(
            keys: &'a mut BTreeMap<K, KeyImage<K, D, S>>,
            k: &K,
        ) -> &'a mut KeyImage<K, D, S> {
            keys.entry(k.clone()).or_insert_with(|| KeyImage {
                key: k.clone(),
                keyed: None,
                pending: Vec::new(),
                event_timers: Vec::new(),
                processing_timers: Vec::new(),
                ttl: None,
            })
        }
        let mut keys: BTreeMap<K, KeyImage<K, D, S>> = BTreeMap::new();
        for (k, keyed) in &self.states {
            image(&mut keys, k).keyed = Some(Keyed {
                state: keyed.state.clone(),
                touched: keyed.touched,
            });
        }
        for (t, records) in &self.pending {
            for (k, d) in records {
                image(&mut keys, k).pending.push((*t, d.clone()));
            }
        }
        for (t, k) in &self.timers.event {
            image(&mut keys, k).event_timers.push(*t);
        }
        for (at, k) in &self.timers.processing {
            image(&mut keys, k).processing_timers.push(*at);
        }
        for (t, k) in &self.ttl {
            image(&mut keys, k).ttl = Some(*t);
        }
        let mut groups: BTreeMap<u64, Vec<KeyImage<K, D, S>>> = BTreeMap::new();
        for (k, img) in keys {
            groups.entry(key_group(&k)).or_default().push(img);
        }
        groups
            .into_iter()
            .map(|(g, images)| (g, encode(&images)))
            .collect()
    }

    /// Adds one key group's keys from a snapshot.
    fn restore_group(&mut self, bytes: &[u8]) -> Result<(), crate::checkpoint::PartError> {
        let images: Vec<KeyImage<K, D, S>> = decode(bytes)?;
        for img in images {
            if let Some(keyed) = img.keyed {
                self.states.insert(img.key.clone(), keyed);
            }
            for (t, d) in img.pending {
                self.pending
                    .entry(t)
                    .or_default()
                    .push((img.key.clone(), d));
            }
            for t in img.event_timers {
                self.timers.event.insert((t, img.key.clone()));
            }
            for at in img.processing_timers {
                self.timers.processing.insert((at, img.key.clone()));
            }
            if let Some(t) = img.ttl {
                self.ttl.insert((t, img.key.clone()));
            }
        }
        Ok(())
    }
}

impl<'scope, D, K, F> KeyedStream<'scope, D, F>
where
    D: ExchangeData + Ord + Clone,
    K: ExchangeData + Hash + Ord + Clone,
    F: Fn(&D) -> K + Clone + 'static,
{
    /// Runs `function` per key.
    ///
    /// `state_ttl_ms`: a key's state is dropped once the watermark is this far
    /// past the key's last record (`None`: kept until the function resets it).
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
            let mut st: ProcessState<K, D, P::State> = ProcessState {
                pending: BTreeMap::new(),
                states: HashMap::new(),
                timers: Timers {
                    event: BTreeSet::new(),
                    processing: BTreeSet::new(),
                },
                ttl: BTreeSet::new(),
                state_ttl_ms,
            };
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
                        st.pending
                            .entry(time)
                            .or_default()
                            .push((key(&record), record));
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
                        if let Some((at, _)) = st.timers.processing.first() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Per key: the running sum, and a timer 300 ms after each record that
    /// emits it.
    struct Sum;

    impl ProcessFunction<u32, (u32, u64)> for Sum {
        type State = u64;
        type Out = (u32, u64);
        type Side = ();
        fn process(
            &mut self,
            r: (u32, u64),
            sum: &mut u64,
            ctx: &mut ProcessContext<'_, u32, (u32, u64), ()>,
        ) {
            *sum += r.1;
            ctx.register_event_timer(ctx.time() + 300);
        }
        fn on_timer(&mut self, sum: &mut u64, ctx: &mut ProcessContext<'_, u32, (u32, u64), ()>) {
            let key = *ctx.key();
            ctx.emit((key, *sum));
        }
    }

    type State = ProcessState<u32, (u32, u64), u64>;

    fn fresh(ttl: Option<u64>) -> State {
        ProcessState {
            pending: BTreeMap::new(),
            states: HashMap::new(),
            timers: Timers {
                event: BTreeSet::new(),
                processing: BTreeSet::new(),
            },
            ttl: BTreeSet::new(),
            state_ttl_ms: ttl,
        }
    }

    fn add(state: &mut State, records: &[(u32, u64, u64)]) {
        for &(k, v, t) in records {
            state.pending.entry(t).or_default().push((k, (k, v)));
        }
    }

    proptest! {
        /// Snapshot at an arbitrary C, with records and timers pending above
        /// it: the restored state continues exactly as the original.
        #[test]
        fn snapshot_restore_continues_identically(
            steps in prop::collection::vec((0u32..5, 0u64..50, 0u64..200), 1..60),
            split in 0usize..60,
            ttl in prop::option::of(100u64..2_000),
        ) {
            let mut clock = 0;
            let records: Vec<(u32, u64, u64)> = steps.into_iter().map(|(k, v, dt)| { clock += dt; (k, v, clock) }).collect();
            let split = split.min(records.len());
            let c = records.get(split).map_or(clock + 1, |r| r.2);
            let (mut outs, mut sides) = (Vec::new(), Vec::new());
            let mut original = fresh(ttl);
            // everything arrives; the snapshot at C processes what is below C
            add(&mut original, &records);
            original.run(Some(c), 0, &mut Sum, &mut outs, &mut sides);
            let mut restored = fresh(ttl);
            for (_, bytes) in original.snapshot() {
                restored.restore_group(&bytes).unwrap();
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            original.run(None, c, &mut Sum, &mut a, &mut sides);
            restored.run(None, c, &mut Sum, &mut b, &mut sides);
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }
    }
}
