//! `window_aggregate`: the one-call form of a keyed window aggregation, for
//! windows that fire once at the watermark (no lateness, no early triggers).

use std::hash::Hash;

use timely::dataflow::operators::vec::Map;
use timely::ExchangeData;

use super::{Aggregate, KeyBy, Window, WindowAssigner};
use crate::EventStream;

/// Keyed, event-time windowed aggregation in one call.
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
        A: Aggregate<D> + Clone,
        A::Out: ExchangeData + Clone + PartialEq;
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
        A: Aggregate<D> + Clone,
        A::Out: ExchangeData + Clone + PartialEq,
    {
        // Windows fire once and never update here: every diff is +1.
        self.key_by(key)
            .window(assigner)
            .pre_aggregate()
            .aggregate(aggregate)
            .updates
            .map(|(u, time)| ((u.window, u.key, u.value), time))
    }
}
