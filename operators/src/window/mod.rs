//! Event-time windows: assigners (which windows a record belongs to),
//! aggregate functions (what a window computes), triggers, and the keyed
//! window operator that fires a window when the watermark passes its end.

mod aggregate;
mod assigner;
mod combine;
mod keyed;
mod operator;
mod processing_time;
mod sessions;
mod simple;
mod state;

pub use aggregate::{Aggregate, AggregateFn, Collect, Count, MaxAllBy};
pub use assigner::{
    GlobalWindows, SessionWindows, SlidingWindows, TumblingWindows, WindowAssigner,
};
pub use keyed::{KeyBy, KeyedStream, WindowedStream};
pub use operator::{WindowOutput, WindowUpdate};
pub use simple::WindowAggregate;

use serde::{Deserialize, Serialize};

use crate::EventTime;

/// A half-open window `[start, end)` of event time.
///
/// A window fires once the watermark reaches `end`; its result carries event
/// time [`Window::max_timestamp`], `end - 1`, as in Flink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in the window (clamped at 0 near the epoch).
    pub start: EventTime,
    /// First millisecond after the window.
    pub end: EventTime,
}

impl Window {
    /// The largest event time inside the window.
    pub fn max_timestamp(&self) -> EventTime {
        self.end - 1
    }
}
