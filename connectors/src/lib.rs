//! Tidewater's edges: sources that assign event time and hold their
//! capability at the watermark, sinks, record formats and the dead-letter
//! output.
//!
//! Each connector lives in its own folder (`file/`, `nexmark/`); the event-time
//! source machinery they share is in [`source`], formats in [`format`].
//! Operators come from `tidewater-operators`; worker launch from `tidewater`.

pub mod blackhole;
pub mod dead_letter;
pub mod file;
pub mod format;
pub mod input;
pub mod kafka;
pub mod nexmark;
pub mod output;
pub mod source;
pub mod stdout;

pub use dead_letter::{DeadLetter, DeadLetterSink};
pub use file::{FileSink, FileSource};
pub use format::Format;
pub use source::{SourceConfig, SourceStreams};
