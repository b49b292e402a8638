//! Windowed queries over a CSV file of bids, the embedded-default pipeline.
//!
//! Input rows are `auction,bidder,price,channel,date_time` (no header;
//! `date_time` is the event time in epoch milliseconds). Queries:
//!
//! - `window-count`: bids per auction in tumbling 10 s windows -> `window_end_ms,auction,count`
//! - `hot-items`: sliding 10 s windows every 2 s; per window the auction(s)
//!   with the most bids -> `window_end_ms,auction,count`
//! - `max-bid`: tumbling 10 s windows; per window the bid(s) with the highest
//!   price -> `window_end_ms,auction,bidder,price`
//! - `filter-map`: bids with `auction % 123 == 0` -> `auction,price*908/1000,date_time`
//!
//! Run it on a generated file:
//!
//! ```text
//! cargo run --release -- generate --events 1000000 --output bids.csv
//! cargo run --release --example bid_windows -- --input bids.csv --query window-count --output counts.csv --sorted
//! ```
//!
//! and as two processes of two workers each:
//!
//! ```text
//! cargo build --release --example bid_windows
//! target/release/tidewater launch -n 2 -w 2 -- target/release/examples/bid_windows \
//!     --input bids.csv --query hot-items --output hot.csv --sorted
//! ```
//!
//! Malformed rows are counted, logged with file and line, and written to
//! `OUTPUT.dead-letters/` (or `--fail-on-malformed` stops the job).

use std::path::PathBuf;

use serde::Deserialize;
use tidewater::connectors::input::Input;
use tidewater::connectors::kafka::KafkaUri;
use tidewater::connectors::output::Output;
use tidewater::prelude::*;

#[path = "common/bid_queries.rs"]
mod bid_queries;
use bid_queries::{filter_map, hot_items, max_bid, window_count};

/// One bid row.
#[derive(Clone, Debug, Deserialize)]
struct BidRow {
    auction: u64,
    bidder: u64,
    price: u64,
    /// Present in the input, unused by the queries.
    #[serde(rename = "channel")]
    _channel: serde::de::IgnoredAny,
    date_time: u64,
}

impl BidRow {
    fn tuple(&self) -> bid_queries::BidTuple {
        (self.auction, self.bidder, self.price, self.date_time)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Query {
    WindowCount,
    HotItems,
    MaxBid,
    FilterMap,
}

/// Windowed queries over a CSV file of bids.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// Input file(s) or directories of CSV bid rows, or a topic
    /// (`kafka://HOST:PORT/TOPIC?bounded=true`).
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// The query to run.
    #[arg(long, value_enum)]
    query: Query,
    /// Where to write the result: a directory of per-worker CSV files, with
    /// --sorted one sorted CSV file, or a topic (`kafka://HOST:PORT/TOPIC`).
    #[arg(long)]
    output: PathBuf,
    /// Write exactly one file, sorted, at the end.
    #[arg(long)]
    sorted: bool,
    /// Where malformed rows go: a directory or a kafka:// topic (default:
    /// OUTPUT.dead-letters).
    #[arg(long)]
    dead_letter: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about("Windowed queries over bids from CSV files or Kafka.");
    let job = cli.job;
    // Fail fast on unreadable input or a bad address, before any worker starts.
    let input = Input::parse(&job.input, Format::Csv).map_err(anyhow::Error::msg)?;
    Output::parse(&job.output.to_string_lossy(), job.sorted).map_err(anyhow::Error::msg)?;
    if let Some(dead) = &job.dead_letter {
        DeadLetterSink::parse(dead).map_err(anyhow::Error::msg)?;
    }
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let (job, input) = (job.clone(), input.clone());
        worker.dataflow(|scope| {
            let source = input
                .build(scope, ctx, job.source.config(), |bid: &BidRow| {
                    bid.date_time
                })
                .map_err(anyhow::Error::msg)?;
            // Beside a file output, or in the working directory for a topic.
            let base = if KafkaUri::is_kafka(&job.output.to_string_lossy()) {
                PathBuf::from("bid_windows")
            } else {
                job.output.clone()
            };
            let dead_letters = match &job.dead_letter {
                Some(name) => DeadLetterSink::parse(name).map_err(anyhow::Error::msg)?,
                None => DeadLetterSink::new(with_suffix(&base, ".dead-letters")),
            };
            dead_letters.write(source.dead_letters, ctx);
            if job.source.late_policy == LatePolicy::SideOutput {
                FileSink::new(with_suffix(&base, ".late"))
                    .format(Format::Csv)
                    .write(source.late.map(|(b, time)| (b.tuple(), time)), ctx);
            }
            let sink = Output::parse(&job.output.to_string_lossy(), job.sorted)
                .map_err(anyhow::Error::msg)?;
            // Keep what the queries need; the channel string stays behind.
            let bids = source.records.map(|(b, time)| (b.tuple(), time));
            match job.query {
                Query::WindowCount => sink.write(window_count(bids), ctx),
                Query::HotItems => sink.write(hot_items(bids), ctx),
                Query::MaxBid => sink.write(max_bid(bids), ctx),
                Query::FilterMap => sink.write(filter_map(bids), ctx),
            }
            Ok(())
        })
    })
}

fn with_suffix(path: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
