//! Helpers for the end-to-end tests: locating the built programs, generating
//! input, and a brute-force oracle for the bid queries.
#![allow(dead_code)]

pub mod kafka;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `tidewater` binary.
pub fn tidewater() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tidewater"))
}

/// A built example (cargo builds examples before it runs integration tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        // `cargo test` builds the examples; `cargo test --test X` does not.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        run_ok(&mut build);
    }
    path
}

/// Runs a command, returning its output; panics with its stderr if it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `events` Nexmark events' bids as CSV to `dir/bids.csv`.
pub fn generate_bids(dir: &Path, events: u64) -> PathBuf {
    let path = dir.join("bids.csv");
    run_ok(
        Command::new(tidewater())
            .args(["generate", "--events", &events.to_string(), "--output"])
            .arg(&path),
    );
    path
}

/// `(auction, bidder, price, date_time)` of each well-formed row.
pub fn read_bids(path: &Path) -> Vec<[u64; 4]> {
    let bytes = std::fs::read(path).expect("bids file");
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                return None;
            }
            let n = |s: &str| s.parse::<u64>().ok();
            Some([n(f[0])?, n(f[1])?, n(f[2])?, n(f[4])?])
        })
        .collect()
}

/// The rows of a sorted output file.
pub fn read_rows(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Asserts two row lists are equal, reporting the first difference only.
#[track_caller]
pub fn assert_rows_eq(got: &[String], want: &[String], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(g, w)| g != w);
        panic!(
            "{what}: {} rows, expected {}; first difference at row {first:?}: got {:?}, expected {:?}",
            got.len(),
            want.len(),
            first.map(|i| &got[i]),
            first.map(|i| &want[i]),
        );
    }
}

fn rows<const N: usize>(mut rows: Vec<[u64; N]>) -> Vec<String> {
    rows.sort();
    rows.iter()
        .map(|r| r.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        .collect()
}

/// Brute-force answers to the `bid_windows` queries, straight from their
/// definitions (every bid is on time in generated input).
pub mod oracle {
    use super::*;

    const SIZE: u64 = 10_000;
    const SLIDE: u64 = 2_000;

    pub fn query(name: &str, bids: &[[u64; 4]]) -> Vec<String> {
        match name {
            "window-count" => window_count(bids),
            "hot-items" => hot_items(bids),
            "max-bid" => max_bid(bids),
            "filter-map" => filter_map(bids),
            other => panic!("no oracle for {other}"),
        }
    }

    pub fn window_count(bids: &[[u64; 4]]) -> Vec<String> {
        let mut counts: HashMap<(u64, u64), u64> = HashMap::new();
        for [auction, _, _, t] in bids {
            *counts.entry(((t / SIZE + 1) * SIZE, *auction)).or_default() += 1;
        }
        rows(
            counts
                .into_iter()
                .map(|((end, a), c)| [end, a, c])
                .collect(),
        )
    }

    pub fn hot_items(bids: &[[u64; 4]]) -> Vec<String> {
        let mut counts: HashMap<(u64, u64), u64> = HashMap::new();
        for [auction, _, _, t] in bids {
            // every end e = k * SLIDE with e - SIZE <= t < e
            let mut end = (t / SLIDE + 1) * SLIDE;
            while end - SIZE <= *t {
                *counts.entry((end, *auction)).or_default() += 1;
                end += SLIDE;
            }
        }
        let mut best: HashMap<u64, u64> = HashMap::new();
        for ((end, _), c) in &counts {
            let b = best.entry(*end).or_default();
            *b = (*b).max(*c);
        }
        rows(
            counts
                .into_iter()
                .filter(|((end, _), c)| best[end] == *c)
                .map(|((end, a), c)| [end, a, c])
                .collect(),
        )
    }

    pub fn max_bid(bids: &[[u64; 4]]) -> Vec<String> {
        let end = |t: u64| (t / SIZE + 1) * SIZE;
        let mut best: HashMap<u64, u64> = HashMap::new();
        for [_, _, price, t] in bids {
            let b = best.entry(end(*t)).or_default();
            *b = (*b).max(*price);
        }
        rows(
            bids.iter()
                .filter(|[_, _, price, t]| best[&end(*t)] == *price)
                .map(|[a, b, p, t]| [end(*t), *a, *b, *p])
                .collect(),
        )
    }

    pub fn filter_map(bids: &[[u64; 4]]) -> Vec<String> {
        rows(
            bids.iter()
                .filter(|[a, ..]| a % 123 == 0)
                .map(|[a, _, p, t]| [*a, p * 908 / 1000, *t])
                .collect(),
        )
    }
}

/// A small xorshift generator; the seed is printed for reproduction.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("random seed {seed}");
        Rng(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn children(pid: u32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub fn sigkill(pid: i32) {
    // SAFETY: sends a signal to a process of our own.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Kills the job's processes (the launcher's children) `kills` times at
/// random moments, then waits for the launcher.
pub fn kill_randomly(mut launcher: Child, kills: usize, rng: &mut Rng) -> std::process::Output {
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while done < kills && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300 + rng.below(600)));
        if launcher.try_wait().unwrap().is_some() {
            break;
        }
        let kids = children(launcher.id());
        if kids.is_empty() {
            continue; // between restarts
        }
        sigkill(kids[rng.below(kids.len() as u64) as usize]);
        done += 1;
    }
    assert_eq!(done, kills, "the job ended before all kills");
    launcher.wait_with_output().unwrap()
}

/// Starts example `program` as two processes under `tidewater launch`,
/// restarted (with `--resume`) up to ten times; `configure` adds its flags.
pub fn supervise(program: &str, configure: impl FnOnce(&mut Command)) -> Child {
    let mut command = Command::new(tidewater());
    command
        .args([
            "launch",
            "-n",
            "2",
            "--max-restarts",
            "10",
            "--restart-delay",
            "100ms",
            "--",
        ])
        .arg(example(program));
    configure(&mut command);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the launcher starts")
}

/// The folder of Kafka jars that `tests/kafka/broker` fetched.
pub fn kafka_libs() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/broker");
    let cache = std::env::var("TIDEWATER_KAFKA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let pom = std::fs::read_to_string(script.with_file_name("pom.xml"))
                .expect("tests/kafka/pom.xml");
            let version = pom
                .split("<kafka.version>")
                .nth(1)
                .and_then(|v| v.split('<').next())
                .expect("a kafka.version in the pom")
                .to_owned();
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(format!(".cache/tidewater/kafka-{version}"))
        });
    cache.join("libs")
}
