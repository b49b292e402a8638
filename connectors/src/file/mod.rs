//! Files, the embedded default connector: CSV or JSON-lines sources split
//! across every worker of every process, and per-worker or sorted sinks.

mod reader;
mod sink;
mod source;

pub use sink::{compare_rows, FileSink};
pub use source::FileSource;
