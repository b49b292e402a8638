//! Benchmark: `bid_windows --query filter-map | window-count` over 10 M
//! generated bids with `-w 1` and `-w 2`, beside a hand-written timely
//! pipeline of the same query run in the same invocation.
//!
//! ```text
//! cargo bench --bench bid_windows            # 10 M bids
//! BIDS=2000000 cargo bench --bench bid_windows
//! ```
//!
//! Each run is a separate process; the table gives wall time, CPU seconds
//! (user + system), events per wall second and per CPU second, and peak RSS
//! (from `wait4`), then Tidewater's ratio to the baseline.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tidewater_connectors::nexmark::{Event, NexmarkSource};

#[path = "common/mod.rs"]
mod common;
use common::{build_example, cores, env_number, measure};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// `(auction, price, date_time)` bids into the baseline dataflow.
type BidInput = InputHandle<u64, CapacityContainerBuilder<Vec<(u64, u64, u64)>>>;

const QUERIES: [&str; 2] = ["filter-map", "window-count"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--baseline") {
        let query = &args[pos + 1];
        let input = PathBuf::from(&args[pos + 2]);
        let output = PathBuf::from(&args[pos + 3]);
        let workers: usize = args[pos + 4].parse().expect("workers");
        baseline(query, &input, &output, workers);
        return;
    }
    let bids = env_number("BIDS", 10_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data");
    std::fs::create_dir_all(&data).expect("bench data dir");
    let input = data.join(format!("bids-{bids}.csv"));
    if !input.exists() {
        eprintln!("generating {bids} bids into {}", input.display());
        generate(&input, bids);
    }
    let example = build_example(&root, "bid_windows");
    let me = std::env::current_exe().expect("bench path");
    let out = tempfile::tempdir().expect("temp dir");

    println!(
        "bid_windows over {bids} bids ({}), {} cores",
        input.display(),
        cores()
    );
    println!();
    println!("| query | -w | engine | wall s | CPU s | events/s | events/CPU-s | peak RSS MiB | CPU ratio to baseline |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for query in QUERIES {
        for workers in [1, 2] {
            let target = out.path().join(format!("{query}-{workers}"));
            let base = measure(
                Command::new(&me)
                    .args(["--baseline", query])
                    .arg(&input)
                    .arg(target.with_extension("base"))
                    .arg(workers.to_string()),
            );
            let ours = measure(
                Command::new(&example)
                    .args(["--query", query, "-w", &workers.to_string(), "--input"])
                    .arg(&input)
                    .arg("--output")
                    .arg(&target),
            );
            for (engine, m) in [("timely baseline", &base), ("tidewater", &ours)] {
                println!(
                    "| {query} | {workers} | {engine} | {} | {:.2}x |",
                    m.cells(bids),
                    m.cpu / base.cpu,
                );
            }
        }
    }
}

/// Writes the bids of the Nexmark events until there are `bids` of them.
fn generate(path: &Path, bids: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create bids file"));
    let mut written = 0;
    for (_, event) in NexmarkSource::default().events_for(0, 1) {
        if let Event::Bid(b) = event {
            writeln!(
                out,
                "{},{},{},{},{}",
                b.auction, b.bidder, b.price, b.channel, b.date_time
            )
            .expect("write bids");
            written += 1;
            if written == bids {
                break;
            }
        }
    }
    out.flush().expect("write bids");
}

/// The hand-written timely pipeline: read 1 MiB of lines at a time, parse by
/// hand, send under one capability at the watermark, exchange by auction,
/// count in a HashMap per window, write per-worker CSV.
fn baseline(query: &str, input: &Path, output: &Path, workers: usize) {
    let query = query.to_owned();
    let input = input.to_owned();
    let output = output.to_owned();
    std::fs::create_dir_all(&output).expect("output dir");
    timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut handle: BidInput = InputHandle::new();
        let probe = ProbeHandle::new();
        let path = output.join(format!("part-{index}.csv"));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).expect("part file"));
        let filter = query == "filter-map";
        worker.dataflow(|scope| {
            let bids = scope.input_from(&mut handle);
            if filter {
                bids.unary::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, "FilterMap", move |_, _| {
                    move |input, _output| {
                        input.for_each(|_, data| {
                            for (auction, price, time) in data.drain(..) {
                                if auction % 123 == 0 {
                                    writeln!(out, "{auction},{},{time}", price * 908 / 1000).expect("write");
                                }
                            }
                        });
                    }
                })
                .probe_with(&probe);
            } else {
                bids.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|x: &(u64, u64, u64)| x.0),
                    "WindowCount",
                    move |_, _| {
                        let mut windows: BTreeMap<u64, HashMap<u64, u64>> = BTreeMap::new();
                        move |(input, frontier), _output| {
                            input.for_each(|_, data| {
                                for (auction, _, time) in data.drain(..) {
                                    let end = (time / 10_000 + 1) * 10_000;
                                    *windows.entry(end).or_default().entry(auction).or_default() += 1;
                                }
                            });
                            let wm = frontier.frontier().first().copied().unwrap_or(u64::MAX);
                            while let Some(entry) = windows.first_entry() {
                                if *entry.key() > wm {
                                    break;
                                }
                                let (end, counts) = entry.remove_entry();
                                for (auction, count) in counts {
                                    writeln!(out, "{end},{auction},{count}").expect("write");
                                }
                            }
                            if frontier.is_empty() {
                                out.flush().expect("flush");
                            }
                        }
                    },
                )
                .probe_with(&probe);
            }
        });
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&input).expect("input"));
        let mut line = String::new();
        let (mut line_no, mut max_time, mut batch) = (0u64, 0u64, 0usize);
        loop {
            line.clear();
            if reader.read_line(&mut line).expect("read") == 0 {
                break;
            }
            line_no += 1;
            batch += line.len();
            if line_no % peers as u64 == index as u64 {
                let mut fields = line.trim_end().split(',');
                let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok());
                let auction = next();
                let _bidder = next();
                let price = next();
                let time = fields_last(&line);
                if let (Some(a), Some(p), Some(t)) = (auction, price, time) {
                    max_time = max_time.max(t);
                    handle.send((a, p, t));
                }
            }
            if batch >= 1 << 20 {
                batch = 0;
                let wm = max_time.saturating_sub(2_000);
                if wm > *handle.time() {
                    handle.advance_to(wm);
                }
                while probe.less_than(&handle.time().saturating_sub(10_000)) {
                    worker.step();
                }
                worker.step();
            }
        }
    })
    .expect("timely")
    .join()
    .into_iter()
    .for_each(|r| r.expect("worker"));
}

fn fields_last(line: &str) -> Option<u64> {
    line.trim_end()
        .rsplit(',')
        .next()
        .and_then(|f| f.parse().ok())
}
