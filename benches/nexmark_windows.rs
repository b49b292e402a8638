//! Benchmark: the window operators on Nexmark q5, q7 and q11 over 10 M
//! generated events with `-w 1` and `-w 2`, beside a raw timely baseline
//! run in the same invocation (the same generator, the same exchange by
//! key, and a hand-written `HashMap` count per 10 s window), plus q5 at
//! growing sizes to show that peak RSS stays flat, and the latency from
//! the watermark passing a result's time to the result reaching the sink
//! (p50/p99, the driver's `--latency`). The throughput rows are also
//! written as CSV to `target/bench-data/nexmark_windows.csv`.
//!
//! ```text
//! cargo bench --bench nexmark_windows
//! EVENTS=2000000 cargo bench --bench nexmark_windows
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tidewater_connectors::nexmark::{Event, NexmarkSource};

#[path = "common/mod.rs"]
mod common;
use common::{build_example, cores, measure, Measurement};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

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
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(10_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = build_example(&root, "nexmark");
    let me = std::env::current_exe().expect("bench path");
    let out = tempfile::tempdir().expect("temp dir");

    println!(
        "Nexmark window queries over {events} events, {} cores",
        cores()
    );
    println!();
    println!("| query | -w | engine | wall s | CPU s | events/s | events/CPU-s | peak RSS MiB | throughput vs baseline (CPU) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for workers in [1, 2] {
        let base = measure(Command::new(&me).args([
            "--baseline",
            &events.to_string(),
            &workers.to_string(),
        ]));
        row(
            "raw timely count",
            workers,
            "timely baseline",
            events,
            &base,
            &base,
        );
        for query in ["q5", "q7", "q11"] {
            let ours = measure(
                Command::new(&example)
                    .args([
                        "--query",
                        query,
                        "--events",
                        &events.to_string(),
                        "-w",
                        &workers.to_string(),
                        "--output",
                    ])
                    .arg(out.path().join(format!("{query}-{workers}"))),
            );
            row(query, workers, "tidewater", events, &ours, &base);
        }
    }
    println!();
    println!(
        "Latency from the watermark passing a result's time to the sink (worker 0's results):"
    );
    println!();
    println!("| query | -w | p50 ms | p99 ms | max ms | result batches |");
    println!("|---|---|---|---|---|---|");
    for workers in [1, 2] {
        for query in ["q5", "q7", "q11"] {
            let run = Command::new(&example)
                .args([
                    "--query",
                    query,
                    "--latency",
                    "--events",
                    &events.to_string(),
                ])
                .args(["-w", &workers.to_string(), "--output"])
                .arg(out.path().join(format!("{query}-{workers}-latency")))
                .output()
                .expect("the driver runs");
            assert!(run.status.success(), "{query} --latency failed");
            let stderr = String::from_utf8_lossy(&run.stderr);
            let line = stderr
                .lines()
                .find(|l| l.starts_with("latency_ms"))
                .unwrap_or("");
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .unwrap_or("-")
                    .to_owned()
            };
            println!(
                "| {query} | {workers} | {} | {} | {} | {} |",
                field("p50="),
                field("p99="),
                field("max="),
                field("batches=")
            );
        }
    }
    write_csv(&root);
    println!();
    println!("q5 (-w 1) with checkpoints every second, beside the same run without:");
    println!();
    println!("| run | wall s | CPU s | events/CPU-s | peak RSS MiB | checkpoints | mean duration ms | mean size KiB |");
    println!("|---|---|---|---|---|---|---|---|");
    let plain = measure(
        Command::new(&example)
            .args(["--query", "q5", "--events", &events.to_string(), "--output"])
            .arg(out.path().join("q5-plain")),
    );
    let checkpoints = out.path().join("ck");
    let checkpointed = measure(
        Command::new(&example)
            .args([
                "--query",
                "q5",
                "--events",
                &events.to_string(),
                "--retain-checkpoints",
                "1000",
                "--checkpoint-interval",
                "1s",
                "--output",
            ])
            .arg(out.path().join("q5-ck"))
            .arg("--checkpoint-dir")
            .arg(&checkpoints),
    );
    let (count, duration, size) = checkpoint_stats(&checkpoints);
    for (name, m) in [
        ("no checkpoints", &plain),
        ("checkpoint every 1 s", &checkpointed),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} M | {:.0} | {} | {} | {} |",
            m.wall,
            m.cpu,
            events as f64 / m.cpu / 1e6,
            m.peak_rss_kib as f64 / 1024.0,
            if name.starts_with("no") {
                "-".to_string()
            } else {
                count.to_string()
            },
            if name.starts_with("no") {
                "-".to_string()
            } else {
                format!("{duration:.0}")
            },
            if name.starts_with("no") {
                "-".to_string()
            } else {
                format!("{:.0}", size / 1024.0)
            },
        );
    }
    println!();
    println!(
        "Checkpoint overhead: {:+.1}% CPU",
        100.0 * (checkpointed.cpu / plain.cpu - 1.0)
    );
    println!();
    recovery_time(&example, out.path());
    println!();
    println!("Peak RSS of q5 (-w 1) as the input grows:");
    println!();
    println!("| events | peak RSS MiB |");
    println!("|---|---|");
    for n in [events / 4, events / 2, events] {
        let m = measure(
            Command::new(&example)
                .args(["--query", "q5", "--events", &n.to_string(), "--output"])
                .arg(out.path().join(format!("q5-rss-{n}"))),
        );
        println!("| {n} | {:.0} |", m.peak_rss_kib as f64 / 1024.0);
    }
}

thread_local! {
    /// The throughput rows as CSV lines.
    static CSV: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn write_csv(root: &Path) {
    let dir = root.join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench-data dir");
    let mut text =
        String::from("query,workers,engine,events,wall_s,cpu_s,peak_rss_kib,baseline_cpu_s\n");
    CSV.with(|rows| rows.borrow().iter().for_each(|r| text.push_str(r)));
    std::fs::write(dir.join("nexmark_windows.csv"), text).expect("write the CSV");
}

fn row(
    query: &str,
    workers: usize,
    engine: &str,
    events: u64,
    m: &Measurement,
    base: &Measurement,
) {
    CSV.with(|rows| {
        rows.borrow_mut().push(format!(
            "{query},{workers},{engine},{events},{:.3},{:.3},{},{:.3}\n",
            m.wall, m.cpu, m.peak_rss_kib, base.cpu
        ))
    });
    println!(
        "| {query} | {workers} | {engine} | {:.2} | {:.2} | {:.2} M | {:.2} M | {:.0} | {:.0}% |",
        m.wall,
        m.cpu,
        events as f64 / m.wall / 1e6,
        events as f64 / m.cpu / 1e6,
        m.peak_rss_kib as f64 / 1024.0,
        100.0 * base.cpu / m.cpu,
    );
}

/// Kills a checkpointing q7 job (per-worker output, exactly-once) with
/// SIGKILL, restarts it at once with `--resume`, and reports the time from
/// the kill to the first newly committed output file.
fn recovery_time(example: &Path, dir: &Path) {
    let output = dir.join("q7-recovery");
    let checkpoints = dir.join("q7-ck");
    let job = |extra: &[&str]| {
        let mut c = Command::new(example);
        c.args([
            "--query",
            "q7",
            "--events",
            "100000000",
            "--rate",
            "200000",
            "-w",
            "2",
            "--output",
        ])
        .arg(&output)
        .arg("--checkpoint-dir")
        .arg(&checkpoints)
        .args(["--checkpoint-interval", "500ms"])
        .args(extra)
        .stdout(std::process::Stdio::null());
        c
    };
    let committed = || {
        std::fs::read_dir(&output)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".csv"))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut first = job(&[]).spawn().expect("start q7");
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: signals our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    let killed = Instant::now();
    let _ = first.wait();
    let before = committed();
    let mut second = job(&["--resume"]).spawn().expect("restart q7");
    while committed() <= before && killed.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let elapsed = killed.elapsed();
    // SAFETY: signals our own child.
    unsafe { libc::kill(second.id() as i32, libc::SIGKILL) };
    let _ = second.wait();
    println!(
        "Kill to first committed output after an immediate `--resume` (q7, -w 2, checkpoints every 500 ms): {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
}

/// Count, mean duration (ms) and mean size (bytes) of the complete checkpoints under `root`.
fn checkpoint_stats(root: &Path) -> (usize, f64, f64) {
    let (mut count, mut duration, mut size) = (0usize, 0f64, 0f64);
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let manifest = entry.path().join("MANIFEST");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
        count += 1;
        duration += json["duration_ms"].as_f64().unwrap_or(0.0);
        size += json["parts"].as_array().map_or(0.0, |parts| {
            parts.iter().map(|p| p[1].as_f64().unwrap_or(0.0)).sum()
        });
    }
    let n = count.max(1) as f64;
    (count, duration / n, size / n)
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
        for (_, event) in NexmarkSource::bounded(events).events_for(index, peers) {
            if let Event::Bid(b) = event {
                input.send((b.auction as u64, b.date_time));
            }
            sent += 1;
            if sent % 4096 == 0 {
                let now = NexmarkSource::default().event_time(sent as u64 * peers as u64);
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
