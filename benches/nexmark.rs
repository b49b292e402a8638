//! The Nexmark benchmark driver: runs the chosen queries of the `nexmark`
//! example at a fixed event count and worker counts, each a separate
//! process, beside a raw timely baseline run in the same invocation (the
//! same generator split across workers, without the `extra` padding and
//! bid channels as the driver runs it for the queries that do not read them, bids exchanged by auction, a
//! hand-written `HashMap` count per tumbling 10 s window), then runs each
//! query again throttled to a steady `--rate` (well below capacity) for
//! the latency from the watermark passing a result's time to the
//! result reaching the sink (the driver's `--latency`, p50/p99 of every
//! worker's result batches, gathered on worker 0).
//!
//! Prints a Markdown table and writes it with a CSV of the same rows to
//! `target/bench-data/nexmark.{md,csv}`.
//!
//! ```text
//! cargo bench --bench nexmark
//! QUERIES=q0,q5,q7 EVENTS=2000000 WORKERS=1,2 cargo bench --bench nexmark
//! RATE=200000 LATENCY_EVENTS=1000000 cargo bench --bench nexmark   # the latency runs
//! LATENCY_EVENTS=0 cargo bench --bench nexmark                      # throughput only
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use tidewater_connectors::nexmark::NexmarkSource;

#[path = "common/mod.rs"]
mod common;
use common::{build_example, cores, env_number, measure, Measurement};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// Every query the driver runs.
const ALL: [&str; 23] = [
    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14",
    "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22",
];

/// `(auction, time)` bids into the baseline dataflow.
type BidInput = InputHandle<u64, CapacityContainerBuilder<Vec<(u64, u64)>>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--baseline") {
        let events: u64 = args[pos + 1].parse().expect("events");
        let workers: usize = args[pos + 2].parse().expect("workers");
        baseline(events, workers);
        return;
    }
    let events = env_number("EVENTS", 10_000_000);
    let rate = env_number("RATE", 200_000);
    let latency_events = env_number("LATENCY_EVENTS", 1_000_000);
    let queries: Vec<String> = match std::env::var("QUERIES") {
        Ok(list) => list.split(',').map(|q| q.trim().to_lowercase()).collect(),
        Err(_) => ALL.iter().map(|q| q.to_string()).collect(),
    };
    if let Some(unknown) = queries.iter().find(|q| !ALL.contains(&q.as_str())) {
        panic!("QUERIES: unknown query '{unknown}' (expected q0..q22)");
    }
    let workers: Vec<usize> = std::env::var("WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|w| w.trim().parse().expect("WORKERS: a list of numbers"))
        .collect();

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = build_example(&root, "nexmark");
    let me = std::env::current_exe().expect("bench path");
    let out = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for &w in &workers {
        let base =
            measure(Command::new(&me).args(["--baseline", &events.to_string(), &w.to_string()]));
        rows.push(Row::new(
            "raw timely count",
            w,
            "timely baseline",
            events,
            &base,
            &base,
        ));
        for query in &queries {
            let dir = out.path().join(format!("{query}-{w}"));
            let ours = measure(&mut driver(&example, query, events, w, &dir));
            let mut row = Row::new(query, w, "tidewater", events, &ours, &base);
            if latency_events > 0 {
                row.latency = latency(&example, query, latency_events, rate, w, out.path());
            }
            rows.push(row);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let table = markdown(&rows, events, rate, latency_events);
    println!("{table}");
    let dir = root.join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench-data dir");
    std::fs::write(dir.join("nexmark.md"), &table).expect("write the table");
    std::fs::write(dir.join("nexmark.csv"), csv(&rows)).expect("write the CSV");
    println!("(also in {})", dir.join("nexmark.{md,csv}").display());
}

/// The driver running `query` over `events` with `workers`, writing per-worker files under `dir`.
fn driver(example: &Path, query: &str, events: u64, workers: usize, dir: &Path) -> Command {
    let mut command = Command::new(example);
    command
        .args(["--query", query, "--events", &events.to_string()])
        .args(["-w", &workers.to_string(), "--output"])
        .arg(dir);
    command
}

/// p50 and p99 ms of `query` at a steady `rate` (events per wall second;
/// event time keeps the generator's 10 000 events per second, so it runs
/// `rate / 10 000` times faster than wall time and windows close often).
fn latency(
    example: &Path,
    query: &str,
    events: u64,
    rate: u64,
    workers: usize,
    out: &Path,
) -> Option<(String, String)> {
    let dir = out.join(format!("{query}-{workers}-latency"));
    let run = driver(example, query, events, workers, &dir)
        .args(["--latency", "--rate", &rate.to_string()])
        .output()
        .expect("the driver runs");
    assert!(run.status.success(), "{query} --latency failed");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let line = stderr.lines().find(|l| l.starts_with("latency_ms"))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .map(str::to_owned)
    };
    Some((field("p50=")?, field("p99=")?))
}

/// One measured run.
struct Row {
    query: String,
    workers: usize,
    engine: &'static str,
    events: u64,
    run: Measurement,
    baseline_cpu: f64,
    /// p50 and p99 ms at the steady rate.
    latency: Option<(String, String)>,
}

impl Row {
    fn new(
        query: &str,
        workers: usize,
        engine: &'static str,
        events: u64,
        run: &Measurement,
        base: &Measurement,
    ) -> Row {
        Row {
            query: query.to_string(),
            workers,
            engine,
            events,
            run: Measurement { ..*run },
            baseline_cpu: base.cpu,
            latency: None,
        }
    }

    fn per_second(&self) -> f64 {
        self.events as f64 / self.run.wall
    }

    /// Events per second per core used (`-w` beyond the cores share them).
    fn per_core(&self) -> f64 {
        self.per_second() / self.workers.min(cores()) as f64
    }
}

fn markdown(rows: &[Row], events: u64, rate: u64, latency_events: u64) -> String {
    let mut text = format!(
        "Nexmark, {events} events per run, {} cores; latency at {rate} events/s \
         ({latency_events} events)\n\n\
         | query | -w | engine | wall s | CPU s | events/s | events/s per core | events/CPU-s \
         | peak RSS MiB | CPU vs baseline | latency p50 ms | p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        cores()
    );
    for r in rows {
        let (p50, p99) = r.latency.clone().unwrap_or(("-".into(), "-".into()));
        text.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} M | {:.2} M | {:.2} M | {:.0} | {:.2}x | {p50} | {p99} |\n",
            r.query,
            r.workers,
            r.engine,
            r.run.wall,
            r.run.cpu,
            r.per_second() / 1e6,
            r.per_core() / 1e6,
            r.events as f64 / r.run.cpu / 1e6,
            r.run.peak_rss_kib as f64 / 1024.0,
            r.run.cpu / r.baseline_cpu,
        ));
    }
    text
}

fn csv(rows: &[Row]) -> String {
    let mut text = String::from(
        "query,workers,engine,events,wall_s,cpu_s,events_per_s,events_per_s_per_core,peak_rss_kib,baseline_cpu_s,latency_p50_ms,latency_p99_ms\n",
    );
    for r in rows {
        let (p50, p99) = r.latency.clone().unwrap_or_default();
        text.push_str(&format!(
            "{},{},{},{},{:.3},{:.3},{:.0},{:.0},{},{:.3},{p50},{p99}\n",
            r.query,
            r.workers,
            r.engine,
            r.events,
            r.run.wall,
            r.run.cpu,
            r.per_second(),
            r.per_core(),
            r.run.peak_rss_kib,
            r.baseline_cpu
        ));
    }
    text
}

/// The raw timely pipeline: this worker's share of the generated events,
/// bids sent under one capability at the latest time, exchanged by auction,
/// counted per tumbling 10 s window in a `HashMap`.
fn baseline(events: u64, workers: usize) {
    timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut input: BidInput = InputHandle::new();
        let probe = ProbeHandle::new();
        worker.dataflow(|scope| {
            scope
                .input_from(&mut input)
                .unary_frontier::<CapacityContainerBuilder<Vec<(u64, u64, u64)>>, _, _, _>(
                    Exchange::new(|x: &(u64, u64)| x.0),
                    "WindowCount",
                    |cap, _| {
                        let mut cap = Some(cap);
                        let mut windows: BTreeMap<u64, HashMap<u64, u64>> = BTreeMap::new();
                        move |(input, frontier), output| {
                            input.for_each(|_, data| {
                                for (auction, time) in data.drain(..) {
                                    let end = (time / 10_000 + 1) * 10_000;
                                    *windows.entry(end).or_default().entry(auction).or_default() +=
                                        1;
                                }
                            });
                            let wm = frontier.frontier().first().copied();
                            if let Some(c) = cap.as_mut() {
                                let mut session = output.session(c);
                                while let Some(entry) = windows.first_entry() {
                                    if wm.is_some_and(|wm| *entry.key() > wm) {
                                        break;
                                    }
                                    let (end, counts) = entry.remove_entry();
                                    session.give_iterator(
                                        counts.into_iter().map(|(a, n)| (end, a, n)),
                                    );
                                }
                            }
                            match wm {
                                Some(wm) => cap.as_mut().expect("held").downgrade(&wm),
                                None => cap = None,
                            }
                        }
                    },
                )
                .probe_with(&probe);
        });
        let mut sent = 0;
        // The generator as the driver runs it for queries that read neither
        // `extra` nor channels.
        let source = NexmarkSource {
            extra: false,
            channels: false,
            ..NexmarkSource::bounded(events)
        };
        // Only the bids are made, as the driver's bid queries have them.
        for (n, b) in source.bids_for(index, peers) {
            input.send((b.auction as u64, b.date_time));
            sent += 1;
            if sent % 4096 == 0 {
                let now = NexmarkSource::default().event_time(n);
                if now > *input.time() {
                    input.advance_to(now);
                }
                while probe.less_than(&input.time().saturating_sub(10_000)) {
                    worker.step();
                }
            }
        }
    })
    .expect("timely")
    .join()
    .into_iter()
    .for_each(|r| r.expect("worker"));
}
