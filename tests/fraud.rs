//! The fraud-detection example (a keyed process function with state and
//! timers) against a brute-force oracle, on 1 and 3 workers.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{assert_rows_eq, example, kill_randomly, read_rows, run_ok, supervise, Rng};

/// (card, amount, time), times within the default 2 s watermark bound.
fn transactions(n: usize) -> Vec<(u64, u64, u64)> {
    // a small deterministic generator (xorshift)
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut clock = 1_767_225_600_000u64;
    (0..n)
        .map(|_| {
            clock += next() % 400;
            let card = next() % 50;
            let amount = match next() % 10 {
                0 | 1 => next() % 100,          // small
                2 => 50_001 + next() % 100_000, // large
                _ => 100 + next() % 49_900,     // ordinary
            };
            (card, amount, clock - next() % 1_500)
        })
        .collect()
}

fn oracle(txns: &[(u64, u64, u64)]) -> Vec<String> {
    let mut by_card: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for &(card, amount, time) in txns {
        by_card.entry(card).or_default().push((time, amount));
    }
    let mut alerts = Vec::new();
    for (card, mut list) in by_card {
        list.sort();
        for pair in list.windows(2) {
            let ((t1, a1), (t2, a2)) = (pair[0], pair[1]);
            if a1 < 100 && a2 > 50_000 && t2 - t1 <= 60_000 {
                alerts.push((card, t1, t2, a2));
            }
        }
    }
    alerts.sort();
    alerts
        .iter()
        .map(|(c, t1, t2, a)| format!("{c},{t1},{t2},{a}"))
        .collect()
}

#[test]
fn alerts_match_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let txns = transactions(20_000);
    let input = dir.path().join("txns.csv");
    let text: String = txns
        .iter()
        .map(|(c, a, t)| format!("{c},{a},{t}\n"))
        .collect();
    std::fs::write(&input, text).unwrap();
    let want = oracle(&txns);
    assert!(want.len() > 20, "too few alerts to test: {}", want.len());
    for workers in ["1", "3"] {
        let output = dir.path().join(format!("alerts-{workers}.csv"));
        run_ok(
            Command::new(example("fraud"))
                .args(["--sorted", "-w", workers, "--input"])
                .arg(&input)
                .arg("--output")
                .arg(&output),
        );
        assert_rows_eq(&read_rows(&output), &want, &format!("-w {workers}"));
    }
}

#[test]
fn checkpointed_process_function_survives_random_sigkills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let txns = transactions(20_000);
    let input = dir.path().join("txns.csv");
    let text: String = txns
        .iter()
        .map(|(c, a, t)| format!("{c},{a},{t}\n"))
        .collect();
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("alerts.csv");
    let launcher = supervise("fraud", |c| {
        c.args(["--sorted", "--rate", "5000", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--checkpoint-dir")
            .arg(dir.path().join("ck"))
            .args(["--checkpoint-interval", "200ms"]);
    });
    let result = kill_randomly(launcher, 3, &mut rng);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_rows_eq(&read_rows(&output), &oracle(&txns), "after kills");
}
