//! The window API: `stream.key_by(..).window(assigner)`, options, then an
//! aggregate or a process function (as in Flink's `WindowedStream`).

use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use timely::ExchangeData;

use super::operator::{build, TimeFn, WindowOutput};
use super::state::{FireWhen, Triggers};
use super::{Aggregate, Collect, Window, WindowAssigner};
use crate::{EventStream, EventTime};

/// Keys a stream: `stream.key_by(|record| key)`.
pub trait KeyBy<'scope, D> {
    /// The stream keyed by `key`; state and windows are per key.
    fn key_by<K, F>(self, key: F) -> KeyedStream<'scope, D, F>
    where
        F: Fn(&D) -> K + Clone + 'static;
}

impl<'scope, D> KeyBy<'scope, D> for EventStream<'scope, D> {
    fn key_by<K, F>(self, key: F) -> KeyedStream<'scope, D, F>
    where
        F: Fn(&D) -> K + Clone + 'static,
    {
        KeyedStream { stream: self, key }
    }
}

/// A stream with a key function.
pub struct KeyedStream<'scope, D, F> {
    pub(crate) stream: EventStream<'scope, D>,
    pub(crate) key: F,
}

impl<'scope, D, F> KeyedStream<'scope, D, F> {
    /// Windows of `assigner` per key.
    pub fn window<W: WindowAssigner>(self, assigner: W) -> WindowedStream<'scope, D, F, W> {
        WindowedStream {
            keyed: self,
            assigner,
            triggers: Triggers::default(),
            fire_when: None,
            event_time: None,
            pre_aggregate: false,
        }
    }

    /// The underlying stream.
    pub fn into_stream(self) -> EventStream<'scope, D> {
        self.stream
    }
}

/// A keyed, windowed stream awaiting its computation.
///
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewater_operators::{Count, KeyBy, SessionWindows};
///
/// let captured = timely::example(|scope| {
///     // (user, click time): user 1 has two sessions, user 2 one.
///     vec![((1, 0u64), 0u64), ((1, 3_000), 3_000), ((1, 20_000), 20_000), ((2, 1_000), 1_000)]
///         .to_stream(scope)
///         .key_by(|click: &(u32, u64)| click.0)
///         .window(SessionWindows::with_gap_millis(5_000))
///         .aggregate(Count)
///         .updates
///         .capture()
/// });
/// let mut sessions: Vec<_> = captured.extract().into_iter()
///     .flat_map(|(_, v)| v)
///     .map(|(u, _)| (u.key, u.window.start, u.window.end, u.value, u.diff))
///     .collect();
/// sessions.sort();
/// assert_eq!(sessions, vec![(1, 0, 8_000, 2, 1), (1, 20_000, 25_000, 1, 1), (2, 1_000, 6_000, 1, 1)]);
/// ```
pub struct WindowedStream<'scope, D, F, W> {
    keyed: KeyedStream<'scope, D, F>,
    assigner: W,
    triggers: Triggers,
    fire_when: Option<AnyTrigger>,
    event_time: Option<TimeFn<D>>,
    pre_aggregate: bool,
}

/// A custom trigger before the aggregate (and so its accumulator type) is known.
type AnyTrigger = Box<dyn Fn(&dyn std::any::Any) -> bool>;

impl<'scope, D, K, F, W> WindowedStream<'scope, D, F, W>
where
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    F: Fn(&D) -> K + Clone + 'static,
    W: WindowAssigner,
{
    /// Keep each window's state `ms` after its end: records re-timed by the
    /// source's late policy that fall in it update its result (a retraction
    /// and a new result). Later records go to the late output.
    pub fn allowed_lateness(mut self, ms: u64) -> Self {
        self.triggers.allowed_lateness = ms;
        self
    }

    /// Also fire a window every `n` records (partial results, corrected by
    /// later firings).
    pub fn trigger_count(mut self, n: u64) -> Self {
        self.triggers.count = Some(n.max(1));
        self
    }

    /// Also fire changed windows every `interval` of processing time.
    pub fn trigger_every(mut self, interval: Duration) -> Self {
        self.triggers.every_ms = Some(interval.as_millis().max(1) as u64);
        self
    }

    /// A custom trigger: also fire a window when, after records were added,
    /// `fire(accumulator)` holds. The accumulator type must be the
    /// aggregate's (a mismatch panics at the first record). Like the count
    /// trigger it is checked as records are added and the window fires once
    /// the operator has taken in its current input, with the accumulator as it
    /// then is: one early result per activation at most.
    ///
    /// ```
    /// use timely::dataflow::operators::{Capture, Input, Probe};
    /// use timely::dataflow::operators::capture::Extract;
    /// use tidewater_operators::{Count, GlobalWindows, KeyBy};
    ///
    /// let captured = timely::execute_directly(|worker| {
    ///     let mut input = timely::dataflow::InputHandle::<u64, timely::container::CapacityContainerBuilder<Vec<(u64, u64)>>>::new();
    ///     let (probe, captured) = worker.dataflow(|scope| {
    ///         let (probe, updates) = scope
    ///             .input_from(&mut input)
    ///             .key_by(|_: &u64| ())
    ///             .window(GlobalWindows)
    ///             .trigger_when(|count: &u64| *count >= 2) // partial results from two on
    ///             .aggregate(Count)
    ///             .updates
    ///             .probe();
    ///         (probe, updates.capture())
    ///     });
    ///     for batch in [vec![1, 2], vec![3, 4, 5]] {
    ///         for t in batch { input.send((t, t)); }
    ///         input.advance_to(*input.time() + 10);
    ///         worker.step_while(|| probe.less_than(input.time()));
    ///     }
    ///     captured
    /// });
    /// let mut updates: Vec<_> = captured.extract().into_iter()
    ///     .flat_map(|(_, v)| v)
    ///     .map(|(u, _)| (u.value, u.diff))
    ///     .collect();
    /// updates.sort();
    /// // early results 2 then 5, each retracted by the next; 5 again at the end is no change
    /// assert_eq!(updates, vec![(2, -1), (2, 1), (5, 1)]);
    /// ```
    pub fn trigger_when<Acc: 'static>(mut self, fire: impl Fn(&Acc) -> bool + 'static) -> Self {
        self.fire_when = Some(Box::new(move |any: &dyn std::any::Any| {
            let acc = any
                .downcast_ref::<Acc>()
                .expect("trigger_when's accumulator type is not the aggregate's");
            fire(acc)
        }));
        self
    }

    /// Assign windows by the event time in the record itself rather than the
    /// time it travels with (they differ for records the source re-timed).
    pub fn event_time(mut self, time: impl Fn(&D) -> EventTime + 'static) -> Self {
        self.event_time = Some(Rc::new(time));
        self
    }

    /// Fold records into their windows' accumulators on the worker that
    /// reads them, before the exchange, and exchange the partial
    /// accumulators (Flink's local-global aggregation). The results are the
    /// same; the exchange and the window operator then handle one partial per
    /// key, window and input batch instead of one record each, which pays
    /// when a batch holds many records of the same key (hot keys, few keys)
    /// and costs a hash lookup per record when keys rarely repeat. Session
    /// windows ignore it (their windows depend on every record of the key).
    ///
    /// The combiner keeps no state between activations, so checkpoints,
    /// restores and rescaling are unchanged. The count trigger counts the
    /// records folded into a partial when the partial arrives; a custom
    /// trigger sees the accumulator after each partial.
    ///
    /// ```
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    /// use tidewater_operators::{Count, KeyBy, TumblingWindows};
    ///
    /// let captured = timely::example(|scope| {
    ///     (0..1_000u64)
    ///         .map(|i| (i % 3, i * 10))
    ///         .to_stream(scope)
    ///         .key_by(|k: &u64| *k)
    ///         .window(TumblingWindows::of_millis(5_000))
    ///         .pre_aggregate()
    ///         .aggregate(Count)
    ///         .updates
    ///         .capture()
    /// });
    /// let mut counts: Vec<_> = captured.extract().into_iter()
    ///     .flat_map(|(_, v)| v)
    ///     .map(|(u, _)| (u.window.end, u.key, u.value))
    ///     .collect();
    /// counts.sort();
    /// assert_eq!(counts[..3], [(5_000, 0, 167), (5_000, 1, 167), (5_000, 2, 166)]);
    /// assert_eq!(counts.iter().map(|c| c.2).sum::<u64>(), 1_000);
    /// ```
    pub fn pre_aggregate(mut self) -> Self {
        self.pre_aggregate = true;
        self
    }

    /// Incremental aggregation: one accumulator per key and window.
    pub fn aggregate<A>(self, agg: A) -> WindowOutput<'scope, K, A::Out, D>
    where
        A: Aggregate<D> + Clone,
        A::Out: ExchangeData + Clone + PartialEq,
    {
        let finisher = agg.clone();
        self.build(agg, move |_, _, acc| vec![finisher.result(acc)])
    }

    /// Incremental aggregation, then a function of the key, the window and
    /// the aggregate's result (Flink's aggregate + `ProcessWindowFunction`).
    pub fn aggregate_process<A, O, P>(self, agg: A, process: P) -> WindowOutput<'scope, K, O, D>
    where
        A: Aggregate<D> + Clone,
        O: ExchangeData + Clone + PartialEq,
        P: Fn(&K, &Window, A::Out) -> Vec<O> + 'static,
    {
        let finisher = agg.clone();
        self.build(agg, move |k, w, acc| process(k, w, finisher.result(acc)))
    }

    /// A full-window function: sees every record of the window (in arrival
    /// order) with its key and bounds, and returns the window's results.
    pub fn process<O, P>(self, process: P) -> WindowOutput<'scope, K, O, D>
    where
        D: Clone,
        O: ExchangeData + Clone + PartialEq,
        P: Fn(&K, &Window, &[D]) -> Vec<O> + 'static,
    {
        self.build(Collect, move |k, w, records: &Vec<D>| {
            process(k, w, records)
        })
    }

    fn build<A, O>(
        self,
        agg: A,
        finish: impl Fn(&K, &Window, &A::Acc) -> Vec<O> + 'static,
    ) -> WindowOutput<'scope, K, O, D>
    where
        A: Aggregate<D> + Clone,
        O: ExchangeData + Clone + PartialEq,
    {
        let fire_when = self.fire_when.map(|f| {
            let f: FireWhen<A::Acc> = Rc::new(move |acc: &A::Acc| f(acc));
            f
        });
        build(
            self.keyed.stream,
            self.keyed.key,
            self.assigner,
            self.triggers,
            fire_when,
            self.event_time,
            agg,
            finish,
            self.pre_aggregate,
        )
    }
}
