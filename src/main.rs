//! The `tidewater` command: `launch` runs a program as several local
//! processes; `generate` writes Nexmark data to files for benchmarks, other
//! engines and demos.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tidewater::launch::{launch, LaunchArgs};
use tidewater_connectors::nexmark::{Event, NexmarkSource};

/// Tidewater: event-time stream processing on timely dataflow.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a program as N local processes: `tidewater launch -n 2 -w 2 -- PROGRAM ARGS`.
    Launch(LaunchArgs),
    /// Write Nexmark events to a file.
    Generate(GenerateArgs),
    /// List the checkpoints in a checkpoint directory, newest first.
    Checkpoints {
        /// The --checkpoint-dir of a job.
        dir: PathBuf,
    },
    /// Ask the running job that checkpoints into DIR for a savepoint; prints its path.
    Savepoint {
        /// The job's --checkpoint-dir.
        dir: PathBuf,
    },
    /// Summarise the state in one checkpoint (a `chk-...` directory).
    Inspect {
        /// The checkpoint directory.
        checkpoint: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct GenerateArgs {
    /// Number of events to generate (all kinds; bids are 46 in 50).
    #[arg(long)]
    events: u64,
    /// The file to write.
    #[arg(long)]
    output: PathBuf,
    /// What to write: `bids` as CSV rows `auction,bidder,price,channel,date_time`
    /// (the `bid_windows` input), or all `events` as JSON lines.
    #[arg(long, value_enum, default_value_t = What::Bids)]
    what: What,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    event_rate: u64,
    /// Event time of the first event (ms since the epoch).
    #[arg(long, default_value_t = NexmarkSource::default().base_time)]
    base_time: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum What {
    Bids,
    Events,
}

fn main() -> anyhow::Result<()> {
    tidewater::execute::init_logging();
    match Cli::parse().command {
        Command::Launch(args) => launch(&args),
        Command::Generate(args) => generate(&args),
        Command::Checkpoints { dir } => checkpoints(&dir),
        Command::Inspect { checkpoint } => inspect(&checkpoint),
        Command::Savepoint { dir } => {
            println!("{}", tidewater::control::request_savepoint(&dir)?.display());
            Ok(())
        }
    }
}

fn checkpoints(dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "{:>20}  {:>10}  {:>5}  status",
        "checkpoint (C)", "bytes", "parts"
    );
    for entry in tidewater::checkpoint::list(dir)? {
        println!(
            "{:>20}  {:>10}  {:>5}  {}",
            entry.checkpoint, entry.bytes, entry.parts, entry.status
        );
    }
    Ok(())
}

fn inspect(checkpoint: &std::path::Path) -> anyhow::Result<()> {
    let (manifest, restored) = tidewater::checkpoint::Manifest::load(checkpoint)?;
    println!(
        "checkpoint C = {} written by {} workers",
        manifest.checkpoint, manifest.workers
    );
    println!(
        "{:<24} {:>7} {:>12} {:>12} {:>12}",
        "operator", "worker", "key groups", "keyed bytes", "other bytes"
    );
    for (operator, parts) in &restored.parts {
        for part in parts {
            let keyed: usize = part.groups.iter().map(|(_, b)| b.len()).sum();
            println!(
                "{:<24} {:>7} {:>12} {:>12} {:>12}",
                operator,
                part.worker,
                part.groups.len(),
                keyed,
                part.global.len()
            );
        }
    }
    Ok(())
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let source = NexmarkSource {
        events: Some(args.events),
        event_rate: args.event_rate,
        base_time: args.base_time,
        // Bid rows do not carry the `extra` padding.
        extra: matches!(args.what, What::Events),
        channels: true,
    };
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for (_, event) in source.events_for(0, 1) {
        match (args.what, &event) {
            (What::Bids, Event::Bid(b)) => writeln!(
                out,
                "{},{},{},{},{}",
                b.auction, b.bidder, b.price, b.channel, b.date_time
            )?,
            (What::Bids, _) => {}
            (What::Events, event) => {
                serde_json::to_writer(&mut out, event)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(())
}
