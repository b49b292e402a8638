//! What the bench binaries share: running a command as a measured child
//! process, and building the example it runs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Wall time, CPU time and peak RSS of one run.
pub struct Measurement {
    /// Wall-clock seconds.
    pub wall: f64,
    /// User + system CPU seconds.
    pub cpu: f64,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: i64,
}

impl Measurement {
    /// `wall s | CPU s | events/s | events/CPU-s | peak RSS MiB` as Markdown
    /// table cells, for a run over `events` events.
    pub fn cells(&self, events: u64) -> String {
        format!(
            "{:.2} | {:.2} | {:.2} M | {:.2} M | {:.0}",
            self.wall,
            self.cpu,
            events as f64 / self.wall / 1e6,
            events as f64 / self.cpu / 1e6,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// Runs a command to completion, measuring wall time, CPU time and peak RSS.
// The child is reaped by `wait4`, which std does not know about.
#[allow(clippy::zombie_processes)]
pub fn measure(command: &mut Command) -> Measurement {
    let start = Instant::now();
    let child = command
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we spawned; the pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed: {status}"
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measurement {
        wall: start.elapsed().as_secs_f64(),
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
    }
}

/// The number in environment variable `name`, or `default` when it is
/// unset; a value that is not a number stops the bench, naming the variable.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not '{value}'")),
        Err(_) => default,
    }
}

/// Cores of this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Builds `--example name` in release mode; returns its path.
pub fn build_example(root: &Path, name: &str) -> PathBuf {
    build(root, "--example", name);
    root.join("target/release/examples").join(name)
}

/// Builds `--bin name` in release mode; returns its path.
pub fn build_binary(root: &Path, name: &str) -> PathBuf {
    build(root, "--bin", name);
    root.join("target/release").join(name)
}

fn build(root: &Path, kind: &str, name: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", kind, name])
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building {name} failed");
}
