//! Tidewater: a stateful, event-time stream processing runtime on timely
//! dataflow and differential dataflow.
//!
//! A Tidewater program is a timely dataflow whose timestamps are event time
//! and whose frontiers are watermarks. This crate is the program's entry
//! point: flags ([`RuntimeArgs`], [`SourceArgs`]), [`execute`] (one process of
//! `-w` worker threads, one of `-n` processes), and the `tidewater` binary's
//! multi-process [`launch`]er. Operators and connectors are re-exported, so
//! `use tidewater::prelude::*;` is all a program needs.
//!
//! ```no_run
//! use clap::Parser;
//! use tidewater::prelude::*;
//!
//! #[derive(clap::Args)]
//! struct Job {
//!     #[arg(long)]
//!     events: u64,
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     let cli = tidewater::Cli::<Job>::parse();
//!     let events = cli.job.events;
//!     tidewater::execute(&cli.runtime, move |worker, ctx| {
//!         worker.dataflow(|scope| {
//!             let bids = NexmarkSource::bounded(events)
//!                 .build(scope, ctx, SourceConfig::default())
//!                 .records
//!                 .flat_map(|(event, time)| match event {
//!                     Event::Bid(bid) => Some(((bid.auction, bid.price), time)),
//!                     _ => None,
//!                 });
//!             write_stdout(bids, ctx, Format::Csv);
//!         });
//!         Ok(())
//!     })
//! }
//! ```

pub mod checkpoint;
pub mod control;
pub mod execute;
pub mod flags;
pub mod launch;

pub use execute::execute;
pub use flags::{Cli, FlagError, RuntimeArgs, SourceArgs};

pub use tidewater_connectors as connectors;
pub use tidewater_operators as operators;

/// Everything a typical program uses.
pub mod prelude {
    pub use crate::{Cli, RuntimeArgs, SourceArgs};
    pub use tidewater_connectors::dead_letter::{DeadLetter, DeadLetterSink};
    pub use tidewater_connectors::file::{FileSink, FileSource};
    pub use tidewater_connectors::format::Format;
    pub use tidewater_connectors::nexmark::{Auction, Bid, Event, NexmarkSource, Person};
    pub use tidewater_connectors::source::{SourceConfig, SourceStreams};
    pub use tidewater_connectors::stdout::write_stdout;
    pub use tidewater_operators::{
        Aggregate, AggregateFn, Context, Count, EventStream, EventTime, GlobalWindows, KeyBy,
        LatePolicy, MaxAllBy, ProcessContext, ProcessFunction, SessionWindows, SlidingWindows,
        TumblingWindows, WatermarkStrategy, Window, WindowAggregate, WindowAssigner, WindowUpdate,
    };
    pub use timely::dataflow::operators::vec::{Filter, Map};
    pub use timely::dataflow::operators::{Concat, Inspect, Probe};
    pub use timely::dataflow::Scope;
}

/// The README's examples compile as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
