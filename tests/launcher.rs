//! The launcher and the small examples, as real processes.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{example, read_rows, run_ok, tidewater};

#[test]
fn a_failing_process_stops_the_others_and_fails_the_launch() {
    // Process 1 fails at once; process 0 would sleep for a minute.
    let script =
        r#"case "$*" in *"-p 1"*) echo "process one fails" >&2; exit 3;; *) sleep 60;; esac"#;
    let start = Instant::now();
    let output = Command::new(tidewater())
        .args(["launch", "-n", "2", "--", "sh", "-c", script, "sh"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the launcher waited for the sleeper"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[p1] process one fails"), "{stderr}");
    assert!(stderr.contains("process 1 failed"), "{stderr}");
}

#[test]
fn the_launcher_passes_the_timely_flags() {
    let output =
        run_ok(Command::new(tidewater()).args(["launch", "-n", "3", "-w", "2", "--", "echo"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for p in 0..3 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("[p{p}] ")))
            .unwrap_or_else(|| panic!("no output from process {p}: {stdout}"));
        assert!(line.contains(&format!("-w 2 -n 3 -p {p} -h ")), "{line}");
    }
}

#[test]
fn wordcount_counts_words() {
    let dir = tempfile::tempdir().unwrap();
    let text = "the quick brown fox\njumps over the lazy dog\n\nThe end\n";
    let input = dir.path().join("text.txt");
    std::fs::write(&input, text.repeat(50)).unwrap();
    let output = dir.path().join("counts.csv");
    run_ok(
        Command::new(example("wordcount"))
            .args(["--sorted", "-w", "2", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let mut want: HashMap<String, u64> = HashMap::new();
    for word in text.repeat(50).split_whitespace() {
        *want.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut want: Vec<String> = want.into_iter().map(|(w, c)| format!("{w},{c}")).collect();
    want.sort();
    assert_eq!(read_rows(&output), want);
}
