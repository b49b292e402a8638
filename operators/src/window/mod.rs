//! Event-time windows: assigners (which windows a record belongs to),
//! aggregate functions (what a window computes), and the keyed window
//! operator that fires a window when the watermark passes its end.

mod aggregate;
mod assigner;
mod operator;

pub use aggregate::{Aggregate, Count, MaxAllBy};
pub use assigner::{SlidingWindows, TumblingWindows, WindowAssigner};
pub use operator::WindowAggregate;

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
