//! The Nexmark driver reading events back from a JSON-lines file (as
//! `tidewater generate --what events` writes them, and as other engines are
//! fed): every query gives the same rows as from the in-process generator
//! (checked against oracles in `tests/nexmark.rs`), whether its input is
//! skimmed of free text or decoded whole; and `--latency` counts the
//! results of every worker.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_rows_eq, example, read_rows, run_ok, tidewater};

const EVENTS: &str = "30000";

fn nexmark(query: &str, input: Option<&Path>, workers: &str, output: &Path) {
    let mut command = Command::new(example("nexmark"));
    command.args(["--query", query, "--sorted", "-w", workers, "--output"]);
    command.arg(output);
    match input {
        Some(file) => command.arg("--input").arg(file),
        None => command.args(["--events", EVENTS]),
    };
    run_ok(&mut command);
}

#[test]
fn queries_read_the_same_events_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    run_ok(
        Command::new(tidewater())
            .args([
                "generate", "--what", "events", "--events", EVENTS, "--output",
            ])
            .arg(&events),
    );
    // q3, q8 and q20 read persons' and auctions' fields (skimmed input), q5
    // bids; q14 reads bids' `extra` and q22 their URLs (whole events).
    for query in ["q3", "q8", "q20", "q5", "q14", "q22"] {
        let generated = dir.path().join(format!("{query}-generated.csv"));
        nexmark(query, None, "1", &generated);
        let want = read_rows(&generated);
        assert!(!want.is_empty(), "{query}: no rows");
        let read = dir.path().join(format!("{query}-read.csv"));
        nexmark(query, Some(&events), "2", &read);
        assert_rows_eq(&read_rows(&read), &want, &format!("{query} from the file"));
    }
}

#[test]
fn latency_counts_the_results_of_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    // q7 has one key: at -w 2 every window's result is on one worker, not
    // necessarily worker 0, which reports.
    let ran = run_ok(
        Command::new(example("nexmark"))
            .args([
                "--query",
                "q7",
                "--events",
                "200000",
                "--latency",
                "-w",
                "2",
            ])
            .arg("--output")
            .arg(dir.path().join("q7.csv")),
    );
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("latency_ms"))
        .collect();
    assert_eq!(reports.len(), 1, "one report, from worker 0: {stderr}");
    let batches: usize = reports[0]
        .rsplit("batches=")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no batch count in {:?}", reports[0]));
    // 200 000 events are 20 s of event time: two 10 s windows at least.
    assert!(batches >= 2, "{}", reports[0]);
}
