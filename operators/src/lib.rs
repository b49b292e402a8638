//! Tidewater's operators: event time and watermarks, key groups, windows.
//!
//! Every stream here is a timely stream whose timestamp is **event time** in
//! milliseconds since the Unix epoch, and whose records carry their own event
//! time: `(data, event_time)`, sent in messages whose timely time is at or
//! below every record's event time. The input frontier of an operator is
//! therefore its watermark. See `../shared/DESIGN.md`, section 1.
//!
//! This crate owns the operator logic only; sources, sinks and formats live in
//! `tidewater-connectors`, worker launch in `tidewater`.

pub mod checkpoint;
pub mod context;
pub mod join;
pub mod keyed;
pub mod process;
pub mod relational;
pub mod time;
pub mod watermark;
pub mod window;

pub use context::{Context, Metrics};
pub use join::{IntervalJoin, TemporalJoin, WindowJoin};
pub use keyed::{key_group, worker_for_key, KEY_GROUPS};
pub use process::{ProcessContext, ProcessFunction, ProcessOutput};
pub use time::{EventStream, EventTime};
pub use watermark::{LatePolicy, Lateness, PartitionWatermark, WatermarkStrategy};
pub use window::{
    Aggregate, AggregateFn, Collect, Count, GlobalWindows, KeyBy, KeyedStream, MaxAllBy,
    SessionWindows, SlidingWindows, TumblingWindows, Window, WindowAggregate, WindowAssigner,
    WindowOutput, WindowUpdate, WindowedStream,
};
