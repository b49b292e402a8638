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

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use crate::keyed::worker_for_key;
use crate::window::KeyedStream;
use crate::{EventStream, EventTime};

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
    /// `Default` on a key's first record and dropped by setting it back to
    /// the default... or after the TTL.
    type State: Default + 'static;
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

struct Keyed<S> {
    state: S,
    /// Event time of the key's last record, for the TTL.
    touched: EventTime,
}

impl<'scope, D, K, F> KeyedStream<'scope, D, F>
where
    D: ExchangeData + Ord,
    K: ExchangeData + Hash + Ord + Clone,
    F: Fn(&D) -> K + Clone + 'static,
{
    /// Runs `function` per key.
    ///
    /// `state_ttl_ms`: a key's state is dropped once the watermark is this far
    /// past the key's last record (`None`: kept until the function resets it).
    pub fn process<P>(
        self,
        state_ttl_ms: Option<u64>,
        mut function: P,
    ) -> ProcessOutput<'scope, P::Out, P::Side>
    where
        P: ProcessFunction<K, D>,
    {
        crate::checkpoint::refuse_unsupported("a keyed process function");
        let KeyedStream { stream, key } = self;
        let scope = stream.scope();
        let peers = scope.peers();
        let route = key.clone();
        let pact =
            Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&route(data), peers));
        let mut builder = OperatorBuilder::new("Process".to_owned(), scope);
        let info = builder.operator_info();
        let activator = scope.activator_for(info.address);
        let mut input = builder.new_input(stream, pact);
        let (out, output) = builder.new_output::<Vec<(P::Out, EventTime)>>();
        let (side_out, side) = builder.new_output::<Vec<(P::Side, EventTime)>>();
        let mut out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(out);
        let mut side_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(side_out);

        builder.build(move |capabilities| {
            let mut capabilities = Some(capabilities);
            let mut pending: BTreeMap<EventTime, Vec<(K, D)>> = BTreeMap::new();
            let mut states: HashMap<K, Keyed<P::State>> = HashMap::new();
            let mut timers = Timers {
                event: BTreeSet::new(),
                processing: BTreeSet::new(),
            };
            let mut ttl: BTreeSet<(EventTime, K)> = BTreeSet::new();
            let (mut outs, mut sides) = (Vec::new(), Vec::new());
            move |frontiers| {
                input.for_each(|_, data| {
                    for (record, time) in data.drain(..) {
                        pending
                            .entry(time)
                            .or_default()
                            .push((key(&record), record));
                    }
                });
                let Some(caps) = capabilities.as_mut() else {
                    return;
                };
                let frontier = frontiers[0].frontier().first().copied();
                let ready = |t: EventTime| frontier.is_none_or(|f| t < f);
                let mut watermark = *caps[0].time();
                loop {
                    // The next thing in time: records first, then timers.
                    let next_record = pending
                        .first_key_value()
                        .map(|(t, _)| *t)
                        .filter(|t| ready(*t));
                    let next_timer = timers.event.first().map(|(t, _)| *t).filter(|t| ready(*t));
                    let next_ttl = ttl.first().map(|(t, _)| *t).filter(|t| ready(*t));
                    let Some(now) = [next_record, next_timer, next_ttl]
                        .into_iter()
                        .flatten()
                        .min()
                    else {
                        break;
                    };
                    watermark = watermark.max(now);
                    if next_record == Some(now) {
                        let mut batch = pending.remove(&now).unwrap_or_default();
                        batch.sort();
                        for (k, record) in batch {
                            let entry = states.entry(k.clone()).or_insert_with(|| Keyed {
                                state: P::State::default(),
                                touched: now,
                            });
                            if let Some(ttl_ms) = state_ttl_ms {
                                ttl.remove(&(entry.touched.saturating_add(ttl_ms), k.clone()));
                                ttl.insert((now.saturating_add(ttl_ms), k.clone()));
                            }
                            entry.touched = now;
                            let mut ctx = ProcessContext {
                                key: &k,
                                time: now,
                                watermark,
                                out: &mut outs,
                                side: &mut sides,
                                timers: &mut timers,
                            };
                            function.process(record, &mut entry.state, &mut ctx);
                        }
                    } else if next_timer == Some(now) {
                        let (_, k) = timers.event.pop_first().expect("a timer");
                        let entry = states.entry(k.clone()).or_insert_with(|| Keyed {
                            state: P::State::default(),
                            touched: now,
                        });
                        let mut ctx = ProcessContext {
                            key: &k,
                            time: now,
                            watermark,
                            out: &mut outs,
                            side: &mut sides,
                            timers: &mut timers,
                        };
                        function.on_timer(&mut entry.state, &mut ctx);
                    } else {
                        let (_, k) = ttl.pop_first().expect("a ttl");
                        states.remove(&k);
                    }
                }
                let now_ms = wall_ms();
                while timers
                    .processing
                    .first()
                    .is_some_and(|(at, _)| *at <= now_ms)
                {
                    let (_, k) = timers.processing.pop_first().expect("a timer");
                    let entry = states.entry(k.clone()).or_insert_with(|| Keyed {
                        state: P::State::default(),
                        touched: watermark,
                    });
                    let mut ctx = ProcessContext {
                        key: &k,
                        time: watermark,
                        watermark,
                        out: &mut outs,
                        side: &mut sides,
                        timers: &mut timers,
                    };
                    function.on_processing_timer(&mut entry.state, &mut ctx);
                }
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
                let hold = [
                    frontier,
                    pending.first_key_value().map(|(t, _)| *t),
                    timers.event.first().map(|(t, _)| *t),
                ]
                .into_iter()
                .flatten()
                .min();
                match hold {
                    Some(t) => {
                        for cap in caps.iter_mut() {
                            cap.downgrade(&t.max(*cap.time()));
                        }
                        if let Some((at, _)) = timers.processing.first() {
                            activator
                                .activate_after(Duration::from_millis(at.saturating_sub(now_ms)));
                        }
                    }
                    None => capabilities = None,
                }
            }
        });
        ProcessOutput { output, side }
    }
}
