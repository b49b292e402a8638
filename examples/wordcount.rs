//! Word count over text: the smallest Tidewater program.
//!
//! ```text
//! cargo run --release --example wordcount -- --input README.md --output counts.csv --sorted
//! ```
//!
//! The input may also be a topic of text lines and the output a topic
//! (`examples/kafka/wordcount.sh` runs it against a local broker):
//!
//! ```text
//! wordcount --input 'kafka://127.0.0.1:9092/lines?format=text&bounded=true' --output kafka://127.0.0.1:9092/counts
//! ```
//!
//! Text has no event time, so every line is read at event time 0: the whole
//! input is one instant, and its window fires when the input is exhausted.
//! Rows are `word,count`.

use tidewater::connectors::input::Input;
use tidewater::connectors::output::Output;
use tidewater::prelude::*;

/// Counts the words of text files.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// Text file(s) or directories, or a topic of lines
    /// (`kafka://HOST:PORT/TOPIC?format=text&bounded=true`).
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// A directory of per-worker CSV files, with --sorted one file, or a
    /// topic (`kafka://HOST:PORT/TOPIC`).
    #[arg(long)]
    output: String,
    /// Write exactly one sorted file at the end.
    #[arg(long)]
    sorted: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about("Counts the words of text files or a topic of lines.");
    let job = cli.job;
    let input = Input::parse(&job.input, Format::Text).map_err(anyhow::Error::msg)?;
    Output::parse(&job.output, job.sorted).map_err(anyhow::Error::msg)?;
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let (job, input) = (job.clone(), input.clone());
        worker.dataflow(|scope| {
            let lines = input
                .build(scope, ctx, SourceConfig::default(), |_: &String| 0)
                .map_err(anyhow::Error::msg)?;
            let words = lines.records.flat_map(|(line, time)| {
                line.split_whitespace()
                    .map(|word| (word.to_lowercase(), time))
                    .collect::<Vec<_>>()
            });
            let counts = words
                .window_aggregate(TumblingWindows::of_millis(1), |w: &String| w.clone(), Count)
                .map(|((_, word, count), time)| ((word, count), time));
            Output::parse(&job.output, job.sorted)
                .map_err(anyhow::Error::msg)?
                .write(counts, ctx);
            Ok(())
        })
    })
}
