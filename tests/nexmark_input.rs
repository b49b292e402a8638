//! The Nexmark driver reading events back from a JSON-lines file (as
//! `tidewater generate --what events` writes them, and as other engines are
//! fed): every query gives the same rows as from the in-process generator
//! (checked against oracles in `tests/nexmark.rs`), whether its input is
//! skimmed of free text or decoded whole; a malformed line is reported even
//! when it is of a kind the query passes over; and `--latency` counts the
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

/// Writes `EVENTS` events as JSON lines to `dir/events.json`.
fn generate_events(dir: &Path) -> std::path::PathBuf {
    let events = dir.join("events.json");
    run_ok(
        Command::new(tidewater())
            .args([
                "generate", "--what", "events", "--events", EVENTS, "--output",
            ])
            .arg(&events),
    );
    events
}

#[test]
fn queries_read_the_same_events_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = generate_events(dir.path());
    // q3 and q8 read persons and auctions, q20 and q9 auctions and bids as
    // tuples, q5 and q11 bids as tuples, q16 and q22 bids with their channel
    // and URL (skimmed input, lines of the other kinds passed over); q14
    // reads bids' `extra` (whole events).
    for query in ["q3", "q8", "q20", "q9", "q5", "q11", "q14", "q16", "q22"] {
        let generated = dir.path().join(format!("{query}-generated.csv"));
        nexmark(query, None, "1", &generated);
        let want = read_rows(&generated);
        assert!(!want.is_empty(), "{query}: no rows");
        let read = dir.path().join(format!("{query}-read.csv"));
        nexmark(query, Some(&events), "2", &read);
        assert_rows_eq(&read_rows(&read), &want, &format!("{query} from the file"));
    }
}

/// q3 reads no bids, so its file source checks bid lines without decoding
/// them: a malformed one is still counted and reported with its line, the
/// rows are those of the good lines, and `--fail-on-malformed` stops at it.
#[test]
fn a_malformed_line_of_a_kind_not_read_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let events = generate_events(dir.path());
    let generated = dir.path().join("q3-generated.csv");
    nexmark("q3", None, "1", &generated);
    let text = std::fs::read_to_string(&events).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let bad = (1000..lines.len())
        .find(|&i| lines[i].starts_with(r#"{"Bid":"#))
        .expect("a bid line");
    // A comma where a closing brace belongs: JSON no longer.
    lines[bad] = lines[bad].replacen("}}", ",}}", 1);
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();

    let read = dir.path().join("q3-read.csv");
    let mut command = Command::new(example("nexmark"));
    command.args(["--query", "q3", "--sorted", "-w", "2", "--output"]);
    let ran = run_ok(command.arg(&read).arg("--input").arg(&events));
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let position = format!("{}:{}: malformed JSON", events.display(), bad + 1);
    assert!(stderr.contains(&position), "{position} not in: {stderr}");
    assert_eq!(stderr.matches("malformed record").count(), 1, "{stderr}");
    assert_rows_eq(
        &read_rows(&read),
        &read_rows(&generated),
        "q3 past a bad bid",
    );

    let failed = Command::new(example("nexmark"))
        .args(["--query", "q3", "--fail-on-malformed", "--input"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        !failed.status.success(),
        "--fail-on-malformed ran to the end"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains(&position), "{position} not in: {stderr}");
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
