//! Recovery from checkpoints, with real processes killed by SIGKILL: the
//! supervisor restarts a two-process job killed at random moments; a job
//! killed mid-way resumes on other worker and process counts; a corrupted
//! newest checkpoint is skipped. Every final output must equal the
//! brute-force oracle (and so the failure-free run) exactly.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_rows_eq, example, generate_bids, kill_randomly, oracle, read_bids, read_rows, run_ok,
    sigkill, supervise, tidewater, Rng,
};

fn bid_windows(input: &Path, output: &Path, checkpoints: &Path, query: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--query".into(),
        query.into(),
        "--sorted".into(),
        "--input".into(),
    ];
    args.push(input.display().to_string());
    args.extend(["--output".into(), output.display().to_string()]);
    args.extend(["--checkpoint-dir".into(), checkpoints.display().to_string()]);
    args.extend(["--checkpoint-interval".into(), "200ms".into()]);
    args
}

#[test]
fn supervised_two_process_job_survives_random_sigkills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let bids = read_bids(&input);
    for query in ["window-count", "hot-items"] {
        let output = dir.path().join(format!("{query}.csv"));
        let checkpoints = dir.path().join(format!("ck-{query}"));
        let launcher = supervise("bid_windows", |c| {
            c.args(bid_windows(&input, &output, &checkpoints, query))
                .args(["--rate", "15000"])
                // every key group a shared blob: recovery through incremental checkpoints
                .args(["--checkpoint-inline-max", "0"]);
        });
        let result = kill_randomly(launcher, 3, &mut rng);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert!(
            stderr.contains("restart 3 of 10"),
            "three restarts: {stderr}"
        );
        assert_rows_eq(&read_rows(&output), &oracle::query(query, &bids), query);
    }
}

#[test]
fn supervised_nexmark_window_query_survives_random_sigkills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("q5.csv");
    let launcher = supervise("nexmark", |c| {
        c.args([
            "--query", "q5", "--events", "60000", "--rate", "15000", "--sorted", "--output",
        ])
        .arg(&output)
        .arg("--checkpoint-dir")
        .arg(dir.path().join("ck"))
        .args(["--checkpoint-interval", "200ms"]);
    });
    let result = kill_randomly(launcher, 3, &mut rng);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let bids: Vec<[u64; 4]> = tidewater::connectors::nexmark::NexmarkSource::bounded(60_000)
        .events_for(0, 1)
        .filter_map(|(_, e)| match e {
            tidewater::connectors::nexmark::Event::Bid(b) => Some([
                b.auction as u64,
                b.bidder as u64,
                b.price as u64,
                b.date_time,
            ]),
            _ => None,
        })
        .collect();
    assert_rows_eq(&read_rows(&output), &oracle::hot_items(&bids), "q5");
}

#[test]
fn processing_time_windows_count_every_bid_once_across_kills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("q12.csv");
    let launcher = supervise("nexmark", |c| {
        c.args([
            "--query", "q12", "--events", "40000", "--rate", "12000", "--sorted", "--output",
        ])
        .arg(&output)
        .arg("--checkpoint-dir")
        .arg(dir.path().join("ck"))
        .args(["--checkpoint-interval", "200ms"]);
    });
    let result = kill_randomly(launcher, 2, &mut rng);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // Processing-time windows split the bids differently each run, but each
    // bid is counted exactly once.
    let mut want = std::collections::BTreeMap::<u64, u64>::new();
    for (_, e) in tidewater::connectors::nexmark::NexmarkSource::bounded(40_000).events_for(0, 1) {
        if let tidewater::connectors::nexmark::Event::Bid(b) = e {
            *want.entry(b.bidder as u64).or_default() += 1;
        }
    }
    let mut got = std::collections::BTreeMap::<u64, u64>::new();
    for row in read_rows(&output) {
        let f: Vec<u64> = row.split(',').map(|x| x.parse().unwrap()).collect();
        *got.entry(f[0]).or_default() += f[1];
    }
    assert_eq!(got, want);
}

/// The long version: many kills. `cargo test --test recovery -- --ignored`.
#[test]
#[ignore = "soak: about a minute"]
fn soak_many_random_sigkills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 200_000);
    let output = dir.path().join("out.csv");
    let launcher = Command::new(tidewater())
        .args([
            "launch",
            "-n",
            "2",
            "-w",
            "2",
            "--max-restarts",
            "100",
            "--restart-delay",
            "50ms",
            "--",
        ])
        .arg(example("bid_windows"))
        .args(bid_windows(
            &input,
            &output,
            &dir.path().join("ck"),
            "hot-items",
        ))
        .args(["--rate", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let result = kill_randomly(launcher, 20, &mut rng);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_rows_eq(
        &read_rows(&output),
        &oracle::hot_items(&read_bids(&input)),
        "soak",
    );
}

/// Runs a job checkpointing under `root` and SIGKILLs it once `after` has
/// passed and it has completed `checkpoints` checkpoints of its own (on a
/// loaded machine the first may take longer than `after`). Panics if the
/// job ends first.
fn run_and_kill(command: &mut Command, root: &Path, after: Duration, checkpoints: usize) {
    let before = complete_checkpoints(root);
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        let new = complete_checkpoints(root)
            .into_iter()
            .filter(|c| !before.contains(c))
            .count();
        if started.elapsed() >= after && new >= checkpoints {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended after {} of {checkpoints} checkpoints, before it was killed",
            new
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint in 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sigkill(child.id() as i32);
    let _ = child.wait();
}

/// The complete checkpoints under `root`, oldest first.
fn complete_checkpoints(root: &Path) -> Vec<std::path::PathBuf> {
    let mut complete: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("MANIFEST").exists())
        .collect();
    complete.sort();
    complete
}

#[test]
fn resumes_on_other_worker_and_process_counts() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let output = dir.path().join("out.csv");
    let checkpoints = dir.path().join("ck");
    let mut args = bid_windows(&input, &output, &checkpoints, "max-bid");
    args.extend(["--checkpoint-inline-max".into(), "0".into()]);
    // -w 2 for a while, then killed
    run_and_kill(
        Command::new(example("bid_windows"))
            .args(&args)
            .args(["-w", "2", "--rate", "10000"]),
        &checkpoints,
        Duration::from_millis(900),
        1,
    );
    let newest = newest_checkpoint(&checkpoints);
    // from that checkpoint as a savepoint, at -w 3, killed again
    run_and_kill(
        Command::new(example("bid_windows"))
            .args(&args)
            .args(["-w", "3", "--rate", "10000", "--from-savepoint"])
            .arg(&newest),
        &checkpoints,
        Duration::from_millis(900),
        1,
    );
    assert!(
        newest_checkpoint(&checkpoints) > newest,
        "the -w 3 run took checkpoints of its own"
    );
    // and to the end as two processes of one worker
    run_ok(
        Command::new(tidewater())
            .args(["launch", "-n", "2", "--"])
            .arg(example("bid_windows"))
            .args(&args)
            .arg("--resume"),
    );
    assert_rows_eq(
        &read_rows(&output),
        &oracle::max_bid(&read_bids(&input)),
        "rescaled",
    );
}

fn newest_checkpoint(root: &Path) -> std::path::PathBuf {
    complete_checkpoints(root)
        .pop()
        .expect("a complete checkpoint")
}

#[test]
fn a_corrupt_newest_checkpoint_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let output = dir.path().join("out.csv");
    let checkpoints = dir.path().join("ck");
    let args = bid_windows(&input, &output, &checkpoints, "window-count");
    run_and_kill(
        Command::new(example("bid_windows"))
            .args(&args)
            .args(["--rate", "25000"]),
        &checkpoints,
        Duration::from_millis(1_500),
        2,
    );
    // flip a byte in one part of the newest checkpoint, truncate another
    let newest = newest_checkpoint(&checkpoints);
    let mut parts: Vec<_> = std::fs::read_dir(&newest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .collect();
    parts.sort();
    let mut bytes = std::fs::read(&parts[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&parts[0], bytes).unwrap();
    let listing = run_ok(
        Command::new(tidewater())
            .arg("checkpoints")
            .arg(&checkpoints),
    );
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("corrupt"), "{listing}");
    let resumed = run_ok(
        Command::new(example("bid_windows"))
            .args(&args)
            .arg("--resume"),
    );
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("skipping checkpoint"), "{stderr}");
    assert_rows_eq(
        &read_rows(&output),
        &oracle::window_count(&read_bids(&input)),
        "after corruption",
    );
}

/// Kills a random process of the job `kills` times, each time a moment
/// (0-300 ms) after a new checkpoint has completed, so that every restart
/// restores state; then waits for the launcher.
fn kill_after_checkpoints(
    mut launcher: std::process::Child,
    checkpoints: &Path,
    kills: usize,
    rng: &mut Rng,
) -> std::process::Output {
    let complete = || {
        std::fs::read_dir(checkpoints)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().join("MANIFEST").exists())
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for _ in 0..kills {
        let before = complete();
        while complete() <= before {
            assert!(std::time::Instant::now() < deadline, "no new checkpoint");
            assert!(
                launcher.try_wait().unwrap().is_none(),
                "the job ended before all kills"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        let kids = common::children(launcher.id());
        assert!(!kids.is_empty(), "the job ended before all kills");
        sigkill(kids[rng.below(kids.len() as u64) as usize]);
    }
    launcher.wait_with_output().unwrap()
}

/// The rows of a changelog written to a directory of part files, sorted.
fn changelog_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            rows.extend(read_rows(&path));
        }
    }
    rows.sort();
    rows
}

/// Continuous (differential) views under SIGKILLs of two supervised
/// processes: q4's changelog — every `+`/`-` change of its averages —
/// equals the failure-free run's, change for change (nothing lost, nothing
/// repeated); q9's restored arrangements (collection boundaries) and q18's
/// (an upsert boundary) give the same final views.
#[test]
fn supervised_relational_views_are_exactly_once_across_kills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    for (query, sorted) in [("q4", false), ("q9", true), ("q18", true)] {
        let args = [
            "--query",
            query,
            "--engine",
            "relational",
            "--events",
            "60000",
        ];
        let reference = dir.path().join(format!("reference-{query}"));
        let output = dir.path().join(query);
        let mut plain = Command::new(example("nexmark"));
        plain.args(args).arg("--output").arg(&reference);
        if sorted {
            plain.arg("--sorted");
        }
        run_ok(&mut plain);
        let launcher = supervise("nexmark", |c| {
            c.args(args)
                .args(["--rate", "8000", "--output"])
                .arg(&output)
                .arg("--checkpoint-dir")
                .arg(dir.path().join(format!("ck-{query}")))
                .args(["--checkpoint-interval", "200ms"]);
            if sorted {
                c.arg("--sorted");
            }
        });
        let result = kill_after_checkpoints(
            launcher,
            &dir.path().join(format!("ck-{query}")),
            3,
            &mut rng,
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert!(
            stderr.contains("restart 3 of 10"),
            "three restarts: {stderr}"
        );
        let (got, want) = if sorted {
            (read_rows(&output), read_rows(&reference))
        } else {
            (changelog_rows(&output), changelog_rows(&reference))
        };
        assert!(want.len() > 100, "{query}: {} rows", want.len());
        assert_eq!(got.len(), want.len(), "{query}: changes lost or repeated");
        assert_rows_eq(&got, &want, query);
    }
}
