//! Continuous queries on differential dataflow: keyed state as arrangements,
//! materialized views maintained with retractions, and changelogs in and
//! out.
//!
//! A [`Collection`] is a differential collection over event time: each
//! update `(data, time, diff)` carries its event time, in a message whose
//! timely time is at or below it, so frontiers stay watermarks (DESIGN.md,
//! section 1). The operators here are extension traits over collections,
//! one family per module:
//!
//! - [`changelog`]: append streams into collections ([`ToCollection`]) and
//!   collections back into changelogs ([`ToChangelog`]): `+row`/`-row`
//!   per time, or upserts by key, consolidated so each event time's change
//!   is emitted once.
//! - [`upsert`]: an upsert source (key → latest value, deletes on
//!   tombstones) for compacted topics and CDC inputs.
//! - [`table`]: [`Table`], an arrangement by key shared by every join and
//!   reduction over the same key, and [`TableReader`], point look-ups and
//!   frontier-consistent reads of its contents from outside the dataflow.
//! - [`aggregate`]: group-by aggregates ([`GroupBy`]): count, sum, min, max,
//!   average, distinct count.
//! - [`join`]: inner and left outer equi-joins ([`Joins`]).
//! - [`rank`]: top-N per key by a sort key, and first/last per key
//!   ([`TopN`]).
//! - [`temporal`]: windowed relational aggregates by temporal filters
//!   ([`Temporal`]): a record is inserted at its event time and retracted
//!   when its window ends, so state holds live windows only.
//! - [`checkpoint`]: how these pipelines take part in checkpoints.
//!
//! Nothing here hides differential: [`Collection`] is differential's own
//! `VecCollection`, and [`Table::arranged`] is the arrangement, so a
//! program can mix these operators with raw differential freely.
//!
//! Logical compaction follows the frontier: once the watermark passes `t`,
//! updates at or below `t` are merged, so an arrangement holds one
//! consolidated entry per live `(key, value)`, not the history of updates.

pub mod aggregate;
pub mod changelog;
pub mod checkpoint;
pub mod join;
pub mod rank;
pub mod table;
pub mod temporal;
pub mod upsert;

pub use aggregate::{Avg, GroupBy};
pub use changelog::{ToChangelog, ToCollection};
pub use join::Joins;
pub use rank::TopN;
pub use table::{Table, TableReader};
pub use temporal::Temporal;
pub use upsert::UpsertStream;

use crate::EventTime;

/// The multiplicity change of an update: `+1` inserts a row, `-1` retracts
/// it.
pub type Diff = isize;

/// A differential collection over event time with integer multiplicities.
pub type Collection<'scope, D> = differential_dataflow::VecCollection<'scope, EventTime, D, Diff>;

/// What a row of a collection must be: exchangeable between workers,
/// ordered (differential consolidates by sorting) and hashable (rows are
/// routed by key).
pub trait Data: differential_dataflow::ExchangeData + std::hash::Hash {}
impl<T: differential_dataflow::ExchangeData + std::hash::Hash> Data for T {}
