//! The keyed window operator: records are exchanged by key group, folded into
//! one accumulator per (window, key), and emitted when the input frontier —
//! the watermark — reaches the window's end.
//!
//! State is a map from window end to the accumulators of that window, so
//! firing is a range split and a fired window's state is released at once.
//! The operator holds a single capability at its input frontier and emits every
//! window that fires in one activation under it: results travel in large
//! containers, never one message per window.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hash};

use rustc_hash::FxHasher;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::ExchangeData;

use super::{Aggregate, Window, WindowAssigner};
use crate::keyed::worker_for_key;
use crate::{EventStream, EventTime};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Keyed, event-time windowed aggregation.
pub trait WindowAggregate<'scope, D> {
    /// Groups records by `key` and by the windows of `assigner`, folds each
    /// group with `aggregate`, and emits `(window, key, result)` at event time
    /// `window.end - 1` once the watermark reaches `window.end`.
    ///
    /// ```
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    /// use tidewater_operators::{Count, TumblingWindows, WindowAggregate};
    ///
    /// let captured = timely::example(|scope| {
    ///     // ((key, value), event time): one message at time 0 carries them all.
    ///     vec![(('a', 1), 1_000u64), (('a', 1), 9_999), (('b', 2), 10_000)]
    ///         .to_stream(scope)
    ///         .window_aggregate(TumblingWindows::of_millis(10_000), |(k, _)| *k, Count)
    ///         .capture()
    /// });
    /// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
    /// rows.sort();
    /// assert_eq!(rows.len(), 2);
    /// assert_eq!((rows[0].0.0.end, rows[0].0.1, rows[0].0.2), (10_000, 'a', 2));
    /// assert_eq!(rows[0].1, 9_999);
    /// ```
    fn window_aggregate<K, F, W, A>(
        self,
        assigner: W,
        key: F,
        aggregate: A,
    ) -> EventStream<'scope, (Window, K, A::Out)>
    where
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        W: WindowAssigner,
        A: Aggregate<D>;
}

impl<'scope, D: ExchangeData> WindowAggregate<'scope, D> for EventStream<'scope, D> {
    fn window_aggregate<K, F, W, A>(
        self,
        assigner: W,
        key: F,
        aggregate: A,
    ) -> EventStream<'scope, (Window, K, A::Out)>
    where
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        W: WindowAssigner,
        A: Aggregate<D>,
    {
        let peers = self.scope().peers();
        let route = key.clone();
        let pact = Exchange::new(move |(data, _time): &(D, EventTime)| {
            worker_for_key(&route(data), peers)
        });
        self.unary_frontier(pact, "WindowAggregate", move |capability, _info| {
            let mut capability = Some(capability);
            let mut windows: BTreeMap<EventTime, (Window, FxMap<K, A::Acc>)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for (record, time) in data.drain(..) {
                        let k = key(&record);
                        assigner.assign(time, |window| {
                            let (_, accs) = windows
                                .entry(window.end)
                                .or_insert_with(|| (window, FxMap::default()));
                            let acc = accs.entry(k.clone()).or_insert_with(|| aggregate.create());
                            aggregate.add(acc, &record);
                        });
                    }
                });
                let watermark = frontier.frontier().first().copied();
                // Windows with end <= watermark are complete.
                let pending = match watermark {
                    Some(wm) => windows.split_off(&(wm + 1)),
                    None => BTreeMap::new(),
                };
                let fired = std::mem::replace(&mut windows, pending);
                if let Some(cap) = capability.as_ref() {
                    if !fired.is_empty() {
                        // `cap` is at the previous watermark, at or below every
                        // fired window's `end - 1`.
                        let mut session = output.session(cap);
                        for (_, (window, accs)) in fired {
                            for (k, acc) in accs {
                                let result = aggregate.result(acc);
                                session.give(((window, k, result), window.max_timestamp()));
                            }
                        }
                    }
                }
                match watermark {
                    Some(wm) => {
                        if let Some(cap) = capability.as_mut() {
                            cap.downgrade(&wm);
                        }
                    }
                    None => capability = None,
                }
            }
        })
    }
}
