//! Benchmark: what state costs the window operators on Nexmark: q5 with
//! checkpoints every second beside the same run without, the time from a
//! SIGKILL to the first committed output after an immediate `--resume`
//! (q7), and q5's peak RSS at growing sizes (flat: the window state is
//! bounded by the live windows). Throughput and latency of every query
//! beside a raw timely baseline: `cargo bench --bench nexmark`.
//!
//! ```text
//! cargo bench --bench nexmark_state
//! EVENTS=2000000 cargo bench --bench nexmark_state
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{build_example, env_number, measure};

fn main() {
    let events = env_number("EVENTS", 10_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = build_example(&root, "nexmark");
    let out = tempfile::tempdir().expect("temp dir");
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
