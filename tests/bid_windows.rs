//! End-to-end runs of the `bid_windows` example as real processes: one
//! process of three workers, and two processes through `tidewater launch`;
//! both must equal a brute-force oracle.

mod common;

use std::process::Command;

use common::{
    assert_rows_eq, example, generate_bids, oracle, read_bids, read_rows, run_ok, tidewater,
};

const QUERIES: [&str; 4] = ["window-count", "hot-items", "max-bid", "filter-map"];

#[test]
fn three_workers_and_two_processes_match_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 60_000);
    let bids = read_bids(&input);
    assert!(bids.len() > 50_000);
    for query in QUERIES {
        let want = oracle::query(query, &bids);
        assert!(!want.is_empty(), "{query}: empty oracle");

        let threads = dir.path().join(format!("{query}-w3.csv"));
        run_ok(
            Command::new(example("bid_windows"))
                .args(["--query", query, "--sorted", "-w", "3", "--input"])
                .arg(&input)
                .arg("--output")
                .arg(&threads),
        );
        assert_rows_eq(&read_rows(&threads), &want, &format!("{query} with -w 3"));

        let processes = dir.path().join(format!("{query}-n2.csv"));
        run_ok(
            Command::new(tidewater())
                .args(["launch", "-n", "2", "-w", "1", "--"])
                .arg(example("bid_windows"))
                .args(["--query", query, "--sorted", "--input"])
                .arg(&input)
                .arg("--output")
                .arg(&processes),
        );
        assert_rows_eq(&read_rows(&processes), &want, &format!("{query} with -n 2"));
    }
}

#[test]
fn per_worker_files_hold_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 20_000);
    let out = dir.path().join("parts");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "window-count", "-w", "2", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&out),
    );
    let mut rows: Vec<[u64; 3]> = Vec::new();
    for worker in 0..2 {
        let part = out.join(format!("part-{worker:05}.csv"));
        for row in read_rows(&part) {
            let f: Vec<u64> = row.split(',').map(|x| x.parse().unwrap()).collect();
            rows.push([f[0], f[1], f[2]]);
        }
    }
    rows.sort();
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{},{},{}", r[0], r[1], r[2]))
        .collect();
    assert_rows_eq(
        &got,
        &oracle::window_count(&read_bids(&input)),
        "per-worker files",
    );
}

#[test]
fn malformed_rows_go_to_the_dead_letter_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate_bids(dir.path(), 5_000);
    let mut bytes = std::fs::read(&input).unwrap();
    // Insert bad rows at known lines: bad number, missing fields, not CSV,
    // invalid UTF-8.
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    lines.pop(); // after the final newline
    let bad: [(usize, &[u8]); 4] = [
        (10, b"1000,1001,notaprice,channel-1,1767225600001"),
        (200, b"1000,1001"),
        (1_000, b"{\"json\": true}"),
        (3_000, b"1000,1001,5,\xff\xfe,1767225600001"),
    ];
    for (line, row) in bad {
        lines.insert(line - 1, row.to_vec());
    }
    bytes = lines.join(&b'\n');
    bytes.push(b'\n');
    let input = dir.path().join("dirty.csv");
    std::fs::write(&input, &bytes).unwrap();

    let output = dir.path().join("counts.csv");
    let dead = dir.path().join("dead");
    let result = run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "window-count", "--sorted", "-w", "2", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--dead-letter")
            .arg(&dead),
    );
    // The good rows are all processed.
    assert_rows_eq(
        &read_rows(&output),
        &oracle::window_count(&read_bids(&input)),
        "good rows",
    );
    // The bad ones are written with their line numbers, and counted.
    let mut letters: Vec<(u64, String)> = Vec::new();
    for entry in std::fs::read_dir(&dead).unwrap() {
        for line in read_rows(&entry.unwrap().path()) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["source"].as_str().unwrap(), input.to_str().unwrap());
            letters.push((
                v["position"].as_u64().unwrap(),
                v["error"].as_str().unwrap().to_owned(),
            ));
        }
    }
    letters.sort();
    let positions: Vec<u64> = letters.iter().map(|l| l.0).collect();
    assert_eq!(positions, vec![10, 200, 1_000, 3_000]);
    assert!(letters[0].1.contains("field 3"), "{:?}", letters[0]);
    assert!(letters[3].1.contains("UTF-8"), "{:?}", letters[3]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(&format!("{}:200", input.display())),
        "{stderr}"
    );

    // Failing fast instead: a non-zero exit naming the first bad row.
    let failed = Command::new(example("bid_windows"))
        .args(["--query", "window-count", "--fail-on-malformed", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("never.csv"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!("{}:10", input.display())),
        "{stderr}"
    );
}

#[test]
fn bad_flags_fail_fast_with_a_message() {
    let cases: [(&[&str], &str); 4] = [
        (&["-w", "0"], "--workers"),
        (&["-n", "2", "-p", "5"], "--process 5 is out of range"),
        (
            &["-n", "2", "-h", "/no/such/hostfile"],
            "cannot read hostfile /no/such/hostfile",
        ),
        (&["--input", "/no/such/bids.csv"], "/no/such/bids.csv"),
    ];
    for (args, message) in cases {
        let mut command = Command::new(example("bid_windows"));
        command.args(["--query", "window-count", "--output", "/tmp/unused.csv"]);
        if !args.contains(&"--input") {
            command.args(["--input", "Cargo.toml"]);
        }
        let output = command.args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
