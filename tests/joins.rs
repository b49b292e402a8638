//! The joins example (interval, window and temporal joins over two file
//! sources) against brute-force oracles: on three workers, and as two
//! processes killed at random moments and restored from checkpoints.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_rows_eq, example, kill_randomly, read_rows, run_ok, supervise, Rng};

type Row = (u64, u64, u64);

fn rows(rng: &mut Rng, n: usize) -> Vec<Row> {
    let mut clock = 1_767_225_600_000u64;
    (0..n)
        .map(|_| {
            clock += rng.below(200);
            (rng.below(40), clock - rng.below(1_500), rng.below(1_000))
        })
        .collect()
}

fn write(path: &Path, rows: &[Row]) {
    let text: String = rows
        .iter()
        .map(|(k, t, v)| format!("{k},{t},{v}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn oracle(join: &str, left: &[Row], right: &[Row]) -> Vec<String> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    for a in left {
        match join {
            "interval" => out.extend(
                right
                    .iter()
                    .filter(|b| b.0 == a.0 && b.1 + 1_000 >= a.1 && b.1 <= a.1 + 1_000)
                    .map(|b| vec![a.0, a.1, a.2, b.1, b.2]),
            ),
            "window" => out.extend(
                right
                    .iter()
                    .filter(|b| b.0 == a.0 && b.1 / 10_000 == a.1 / 10_000)
                    .map(|b| vec![(a.1 / 10_000 + 1) * 10_000, a.0, a.1, a.2, b.1, b.2]),
            ),
            _ => {
                let version = right
                    .iter()
                    .filter(|b| b.0 == a.0 && b.1 <= a.1)
                    .max_by_key(|b| (b.1, b.2));
                out.push(vec![
                    a.0,
                    a.1,
                    a.2,
                    version.map_or(0, |b| b.1),
                    version.map_or(0, |b| b.2),
                ]);
            }
        }
    }
    out.sort();
    out.iter()
        .map(|r| r.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn joins_match_the_oracle_and_survive_random_sigkills() {
    let mut rng = Rng::new();
    let dir = tempfile::tempdir().unwrap();
    let (left, right) = (rows(&mut rng, 3_000), rows(&mut rng, 3_000));
    let (lpath, rpath) = (dir.path().join("left.csv"), dir.path().join("right.csv"));
    write(&lpath, &left);
    write(&rpath, &right);
    for join in ["interval", "window", "temporal"] {
        let want = oracle(join, &left, &right);
        assert!(
            want.len() > 100,
            "{join}: too few rows to test ({})",
            want.len()
        );
        let args = |output: &Path| {
            let mut a: Vec<String> = ["--join", join, "--sorted", "--left"]
                .map(String::from)
                .to_vec();
            a.push(lpath.display().to_string());
            a.push("--right".into());
            a.push(rpath.display().to_string());
            a.push("--output".into());
            a.push(output.display().to_string());
            a
        };
        let plain = dir.path().join(format!("{join}.csv"));
        run_ok(
            Command::new(example("joins"))
                .args(args(&plain))
                .args(["-w", "3"]),
        );
        assert_rows_eq(&read_rows(&plain), &want, &format!("{join} -w 3"));

        let recovered = dir.path().join(format!("{join}-recovered.csv"));
        let launcher = supervise("joins", |c| {
            c.args(args(&recovered))
                .args([
                    "--rate",
                    "1000",
                    "--checkpoint-interval",
                    "200ms",
                    "--checkpoint-dir",
                ])
                .arg(dir.path().join(format!("ck-{join}")));
        });
        let result = kill_randomly(launcher, 2, &mut rng);
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        assert_rows_eq(
            &read_rows(&recovered),
            &want,
            &format!("{join} after kills"),
        );
    }
}
