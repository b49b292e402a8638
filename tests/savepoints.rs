//! Savepoints: on demand against a running job (`tidewater savepoint`), and
//! stop-with-savepoint on SIGTERM through the launcher; a job resumed from
//! either finishes with exactly the oracle's output.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    assert_rows_eq, example, generate_bids, oracle, read_bids, read_rows, run_ok, sigkill,
    tidewater,
};

#[test]
fn savepoint_on_demand_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let output = dir.path().join("out.csv");
    let checkpoints = dir.path().join("ck");
    let job = |extra: &[&str]| {
        let mut c = Command::new(example("bid_windows"));
        c.args(["--query", "window-count", "--sorted", "-w", "2", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--checkpoint-dir")
            .arg(&checkpoints)
            .args([
                "--checkpoint-interval",
                "1h",
                "--checkpoint-inline-max",
                "0",
            ])
            .args(extra);
        c
    };
    // Slow enough (about 5 s) that a loaded machine still takes the
    // savepoint before the end of the input.
    let mut running = job(&["--rate", "10000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let answer = run_ok(Command::new(tidewater()).arg("savepoint").arg(&checkpoints));
    let savepoint = PathBuf::from(String::from_utf8_lossy(&answer.stdout).trim());
    assert!(
        savepoint.join("MANIFEST").exists(),
        "{}",
        savepoint.display()
    );
    sigkill(running.id() as i32);
    let _ = running.wait();
    assert!(!output.exists(), "the job was stopped before its end");
    run_ok(&mut job(&["--from-savepoint", savepoint.to_str().unwrap()]));
    assert_rows_eq(
        &read_rows(&output),
        &oracle::window_count(&read_bids(&input)),
        "resumed from savepoint",
    );
}

#[test]
fn sigterm_stops_with_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let output = dir.path().join("out.csv");
    let checkpoints = dir.path().join("ck");
    let args = |c: &mut Command| {
        c.args(["--query", "hot-items", "--sorted", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--checkpoint-dir")
            .arg(&checkpoints)
            .args(["--checkpoint-interval", "1h"]);
    };
    let mut launch = Command::new(tidewater());
    launch
        .args(["launch", "-n", "2", "--"])
        .arg(example("bid_windows"));
    args(&mut launch);
    let launcher = launch
        .args(["--rate", "20000", "--savepoint-on-sigterm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    // SAFETY: signals the launcher we started.
    unsafe {
        libc::kill(launcher.id() as i32, libc::SIGTERM);
    }
    let stopped = launcher.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(stopped.status.success(), "{stderr}");
    assert!(stderr.contains("stopped with savepoint"), "{stderr}");
    assert!(!output.exists(), "the job stopped before its end");
    let latest = std::fs::read_to_string(checkpoints.join("savepoints").join("LATEST")).unwrap();
    let mut resume = Command::new(example("bid_windows"));
    args(&mut resume);
    run_ok(resume.args(["-w", "3", "--from-savepoint", latest.trim()]));
    assert_rows_eq(
        &read_rows(&output),
        &oracle::hot_items(&read_bids(&input)),
        "after stop-with-savepoint",
    );
}
