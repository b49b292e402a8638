//! Joins in event time: interval joins, window joins, and temporal
//! (versioned) lookup joins, all between keyed streams and all driven by the
//! frontiers of both inputs, which decide when state can be dropped.

mod interval;
mod temporal;
mod window_join;

pub use interval::IntervalJoin;
pub use temporal::TemporalJoin;
pub use window_join::WindowJoin;

use std::hash::Hash;

use timely::dataflow::channels::pact::Exchange;
use timely::ExchangeData;

use crate::keyed::worker_for_key;
use crate::EventTime;

/// A container from one of a join's two inputs, as its barrier stashes it.
pub(crate) enum Side<A, B> {
    /// From the first input.
    Left(Vec<A>),
    /// From the second input.
    Right(Vec<B>),
}

/// The exchange that sends a keyed record to its key's worker.
pub(crate) fn by_key<D, K, F>(
    key: F,
    peers: usize,
) -> Exchange<(D, EventTime), impl FnMut(&(D, EventTime)) -> u64>
where
    D: ExchangeData,
    K: Hash,
    F: Fn(&D) -> K + 'static,
{
    Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&key(data), peers))
}
