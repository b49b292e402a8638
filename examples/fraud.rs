//! Fraud detection with a keyed process function and timers: flag a card
//! whose small transaction (under 1.00) is followed, as its very next
//! transaction and within one minute, by a large one (over 500.00).
//!
//! Input rows: `card,amount_cents,time_ms` (no header). Output rows:
//! `card,small_time_ms,large_time_ms,large_amount_cents`.
//!
//! ```text
//! cargo run --release --example fraud -- --input transactions.csv --output alerts.csv --sorted
//! ```
//!
//! Or from a topic of transactions to a topic of alerts
//! (`examples/kafka/fraud.sh` runs that against a local broker).
//!
//! Per card the state is the time of a pending small transaction; an
//! event-time timer one minute later clears it, so state lives only as long
//! as it can matter.

use tidewater::connectors::input::Input;
use tidewater::connectors::output::Output;
use tidewater::prelude::*;

const SMALL: u64 = 100;
const LARGE: u64 = 50_000;
const WINDOW_MS: u64 = 60_000;

/// A transaction: (card, amount in cents, time in ms).
type Txn = (u64, u64, u64);

/// Finds a small transaction followed by a large one within a minute.
struct SmallThenLarge;

impl ProcessFunction<u64, Txn> for SmallThenLarge {
    /// The time of the card's last transaction if it was small.
    type State = Option<u64>;
    /// (card, small time, large time, large amount)
    type Out = (u64, u64, u64, u64);
    type Side = ();

    fn process(
        &mut self,
        (card, amount, time): Txn,
        small_at: &mut Option<u64>,
        ctx: &mut ProcessContext<'_, u64, Self::Out, ()>,
    ) {
        if let Some(small) = small_at.take() {
            ctx.delete_event_timer(small + WINDOW_MS);
            if amount > LARGE && time - small <= WINDOW_MS {
                ctx.emit((card, small, time, amount));
            }
        }
        if amount < SMALL {
            *small_at = Some(time);
            ctx.register_event_timer(time + WINDOW_MS);
        }
    }

    fn on_timer(
        &mut self,
        small_at: &mut Option<u64>,
        _ctx: &mut ProcessContext<'_, u64, Self::Out, ()>,
    ) {
        // A minute without a transaction: the small one no longer matters.
        *small_at = None;
    }
}

/// Flags a small transaction followed by a large one within a minute.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// CSV file(s) of `card,amount_cents,time_ms`, or a topic of such rows
    /// (`kafka://HOST:PORT/TOPIC`).
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// Where alerts go: a directory of per-worker files, with --sorted one
    /// file, or a topic.
    #[arg(long)]
    output: String,
    /// Write exactly one sorted file at the end.
    #[arg(long)]
    sorted: bool,
    #[command(flatten)]
    source: SourceArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about(
        "Flags a small transaction followed by a large one within a minute.",
    );
    let job = cli.job;
    let input = Input::parse(&job.input, Format::Csv).map_err(anyhow::Error::msg)?;
    Output::parse(&job.output, job.sorted).map_err(anyhow::Error::msg)?;
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let (job, input) = (job.clone(), input.clone());
        worker.dataflow(|scope| {
            let txns = input
                .build(scope, ctx, job.source.config(), |t: &Txn| t.2)
                .map_err(anyhow::Error::msg)?;
            let alerts = txns
                .records
                .key_by(|t: &Txn| t.0)
                .process(None, SmallThenLarge)
                .output;
            Output::parse(&job.output, job.sorted)
                .map_err(anyhow::Error::msg)?
                .write(alerts, ctx);
            Ok(())
        })
    })
}
