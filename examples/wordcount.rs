//! Word count over text files: the smallest Tidewater program.
//!
//! ```text
//! cargo run --release --example wordcount -- --input README.md --output counts.csv --sorted
//! ```
//!
//! Text has no event time, so every line is read at event time 0: the whole
//! input is one instant, and its window fires when the input is exhausted.
//! Rows are `word,count`.

use std::path::PathBuf;

use tidewater::prelude::*;

/// Counts the words of text files.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// Text file(s) or directories.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// A directory of per-worker CSV files, or with --sorted one file.
    #[arg(long)]
    output: PathBuf,
    /// Write exactly one sorted file at the end.
    #[arg(long)]
    sorted: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about("Counts the words of text files.");
    let job = cli.job;
    FileSource::new(&job.input).files()?;
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let job = job.clone();
        worker.dataflow(|scope| {
            let lines = FileSource::new(&job.input).build_with(
                scope,
                ctx,
                SourceConfig::default(),
                |line| Ok(line.to_owned()),
                |_| 0,
            )?;
            let words = lines.records.flat_map(|(line, time)| {
                line.split_whitespace()
                    .map(|word| (word.to_lowercase(), time))
                    .collect::<Vec<_>>()
            });
            let counts = words
                .window_aggregate(TumblingWindows::of_millis(1), |w: &String| w.clone(), Count)
                .map(|((_, word, count), time)| ((word, count), time));
            FileSink::new(&job.output)
                .format(Format::Csv)
                .sorted(job.sorted)
                .write(counts, ctx);
            Ok(())
        })
    })
}
