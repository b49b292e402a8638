//! Windowed relational aggregates by temporal filters: a record enters the
//! collection at its event time and leaves it when its window ends, so a
//! group-by over `(window, key)` is the live windows' running aggregate
//! and state holds live windows only.
//!
//! Windows come from the window operators' assigners
//! ([`crate::TumblingWindows`], [`crate::SlidingWindows`]; merging session
//! windows are not expressible as a filter). A window's rows are retracted
//! at its end, so the changelog of an aggregate over windows shows each
//! window's result growing and then withdrawn once the watermark passes
//! the end; to keep the final results, use the window operators, whose
//! output becomes a collection with [`WindowResults::results_collection`].

use differential_dataflow::AsCollection;
use timely::dataflow::operators::vec::Map;

use super::{checkpoint, Collection, Data};
use crate::window::{Window, WindowUpdate};
use crate::{EventStream, EventTime, WindowAssigner};

/// Temporal filters on collections.
///
/// ```
/// use timely::dataflow::operators::ToStream;
/// use tidewater_operators::relational::{GroupBy, Temporal, ToCollection};
/// use tidewater_operators::TumblingWindows;
///
/// timely::example(|scope| {
///     // ((user, clicks), event time)
///     vec![((1u32, 1u64), 1_000u64), ((2, 1), 2_000), ((1, 1), 12_000)]
///         .to_stream(scope)
///         .to_collection()
///         .windowed(TumblingWindows::of_millis(10_000))
///         .map(|(window, (user, _))| ((window, user), ()))
///         .count_by_key()
///         .inspect(|update| println!("{update:?}"));
/// });
/// ```
pub trait Temporal<'scope, D: Data> {
    /// Each row, paired with each window of `assigner` containing its time,
    /// from that time until the window's end (a window reaching the end of
    /// time never retracts).
    ///
    /// # Panics
    /// If `assigner` merges windows (sessions).
    fn windowed<W: WindowAssigner>(self, assigner: W) -> Collection<'scope, (Window, D)>;

    /// Each row from its time until `duration_ms` later: the collection is
    /// always the rows of the last `duration_ms` of event time.
    fn retained_for(self, duration_ms: u64) -> Collection<'scope, D>;
}

impl<'scope, D: Data> Temporal<'scope, D> for Collection<'scope, D> {
    fn windowed<W: WindowAssigner>(self, assigner: W) -> Collection<'scope, (Window, D)> {
        assert!(
            !assigner.merging(),
            "merging windows cannot be temporal filters"
        );
        self.inner
            .flat_map(move |(d, t, r)| {
                let mut updates = Vec::new();
                assigner.assign(t, |w| {
                    updates.push(((w, d.clone()), t, r));
                    if w.end != EventTime::MAX {
                        updates.push(((w, d.clone()), w.end, -r));
                    }
                });
                updates
            })
            .as_collection()
    }

    fn retained_for(self, duration_ms: u64) -> Collection<'scope, D> {
        self.inner
            .flat_map(move |(d, t, r)| {
                let end = t.saturating_add(duration_ms);
                let retract = (end != EventTime::MAX).then(|| (d.clone(), end, -r));
                std::iter::once((d, t, r)).chain(retract)
            })
            .as_collection()
    }
}

/// Append streams as windowed collections.
pub trait WindowedCollection<'scope, D: Data> {
    /// The stream as a collection, each record paired with its windows
    /// ([`Temporal::windowed`]). With checkpoints, the input boundary comes
    /// after the filter, so its state holds live windows only.
    fn windowed_collection<W: WindowAssigner>(self, assigner: W)
        -> Collection<'scope, (Window, D)>;
}

impl<'scope, D: Data> WindowedCollection<'scope, D> for EventStream<'scope, D> {
    fn windowed_collection<W: WindowAssigner>(
        self,
        assigner: W,
    ) -> Collection<'scope, (Window, D)> {
        let collection = self
            .map(|(d, t)| (d, t, 1))
            .as_collection()
            .windowed(assigner);
        checkpoint::input_boundary(collection)
    }
}

/// The window operators' results as collections.
pub trait WindowResults<'scope, K: Data, O: Data> {
    /// Each result update as a change to the collection of
    /// `(window, key, result)` rows.
    fn results_collection(self) -> Collection<'scope, (Window, K, O)>;
}

impl<'scope, K: Data, O: Data> WindowResults<'scope, K, O>
    for EventStream<'scope, WindowUpdate<K, O>>
{
    fn results_collection(self) -> Collection<'scope, (Window, K, O)> {
        self.map(|(u, t)| ((u.window, u.key, u.value), t, u.diff as isize))
            .as_collection()
    }
}
