//! Event-time joins of two CSV streams of `key,time_ms,value` rows.
//!
//! ```text
//! cargo run --release --example joins -- --join interval --lower -1000 --upper 1000 \
//!     --left clicks.csv --right purchases.csv --output joined.csv --sorted
//! ```
//!
//! - `interval`: each left row with every right row of the same key whose
//!   time is within `[left + lower, left + upper]`; rows
//!   `key,left_time,left_value,right_time,right_value`.
//! - `window`: rows of the same key in the same tumbling `--size` window;
//!   rows `window_end,key,left_time,left_value,right_time,right_value`.
//! - `temporal`: each left row with the right row of its key current at its
//!   time (the latest at or before it); rows
//!   `key,left_time,left_value,version_time,version_value` (0,0 if none).

use std::path::PathBuf;

use tidewater::operators::{IntervalJoin, TemporalJoin, WindowJoin};
use tidewater::prelude::*;

/// `(key, time, value)`.
type Row = (u64, u64, u64);

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Join {
    Interval,
    Window,
    Temporal,
}

/// Joins two CSV streams in event time.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// Which join.
    #[arg(long, value_enum)]
    join: Join,
    /// Left input: `key,time_ms,value` rows.
    #[arg(long)]
    left: PathBuf,
    /// Right input: `key,time_ms,value` rows.
    #[arg(long)]
    right: PathBuf,
    /// Interval join: lower bound of `right.time - left.time`, in ms.
    #[arg(long, default_value_t = -1_000, allow_hyphen_values = true)]
    lower: i64,
    /// Interval join: upper bound of `right.time - left.time`, in ms.
    #[arg(long, default_value_t = 1_000, allow_hyphen_values = true)]
    upper: i64,
    /// Window join: window size in ms.
    #[arg(long, default_value_t = 10_000)]
    size: u64,
    /// A directory of per-worker files, or with --sorted one file.
    #[arg(long)]
    output: PathBuf,
    /// Write exactly one sorted file at the end.
    #[arg(long)]
    sorted: bool,
    #[command(flatten)]
    source: SourceArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about("Joins two CSV streams in event time.");
    let job = cli.job;
    FileSource::new([&job.left, &job.right]).files()?;
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let job = job.clone();
        worker.dataflow(|scope| {
            let read = |path: &PathBuf| {
                FileSource::new([path]).format(Format::Csv).build(
                    scope,
                    ctx,
                    job.source.config(),
                    |r: &Row| r.1,
                )
            };
            let left = read(&job.left)?.records.key_by(|r: &Row| r.0);
            let right = read(&job.right)?.records.key_by(|r: &Row| r.0);
            let sink = FileSink::new(&job.output).sorted(job.sorted);
            match job.join {
                Join::Interval => sink.write(
                    left.interval_join(right, job.lower, job.upper, |k, a, b| {
                        (*k, a.1, a.2, b.1, b.2)
                    }),
                    ctx,
                ),
                Join::Window => sink.write(
                    left.window_join(right, TumblingWindows::of_millis(job.size), |k, w, a, b| {
                        (w.end, *k, a.1, a.2, b.1, b.2)
                    }),
                    ctx,
                ),
                Join::Temporal => sink.write(
                    left.temporal_join(right, |k, a, v| {
                        (*k, a.1, a.2, v.map_or(0, |v| v.1), v.map_or(0, |v| v.2))
                    }),
                    ctx,
                ),
            }
            Ok(())
        })
    })
}
