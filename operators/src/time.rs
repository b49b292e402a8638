//! The time model: event time as `u64` milliseconds, and the stream type that
//! carries records with their event time.

use timely::dataflow::Stream;

/// Event time: milliseconds since the Unix epoch.
pub type EventTime = u64;

/// A timely stream of records `(data, event_time)` in containers of type `Vec`.
///
/// Its timely timestamp is event time, and every message's time is at or below
/// the event time of each record it holds, so the frontier is a watermark.
pub type EventStream<'scope, D> = Stream<'scope, EventTime, Vec<(D, EventTime)>>;
