//! bid_windows over a real Kafka broker: bids in a three-partition topic,
//! read in bounded mode by two workers, results to a file and to a topic;
//! a malformed message lands in the dead-letter output with its coordinates;
//! Nexmark events as JSON in a topic give the generator's q7; a two-process
//! job killed at random moments resumes from the offsets in its checkpoints
//! with exact output.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kafka::{consume_all, numeric, produce, Broker};
use common::{
    assert_rows_eq, example, generate_bids, kill_randomly, oracle, read_bids, read_rows, run_ok,
    supervise, Rng,
};

#[test]
fn bid_windows_reads_and_writes_kafka() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = generate_bids(dir.path(), 30_000);
    let mut rows: Vec<String> = read_rows(&file);
    // one malformed record, third in partition 1
    rows.insert(4, "1000,1001,notaprice,channel,1767225600000".into());
    broker.create_topic("bids", 3);
    produce(&broker.address, "bids", &rows, 3);
    let input = format!("kafka://{}/bids?bounded=true", broker.address);
    let want = oracle::window_count(&read_bids(&file));

    // to a file
    let output = dir.path().join("counts.csv");
    let dead = dir.path().join("dead");
    run_ok(
        Command::new(example("bid_windows"))
            .args([
                "--query",
                "window-count",
                "--sorted",
                "-w",
                "2",
                "--input",
                &input,
                "--output",
            ])
            .arg(&output)
            .arg("--dead-letter")
            .arg(&dead),
    );
    assert_rows_eq(&read_rows(&output), &want, "from Kafka to a file");
    let letters: Vec<String> = std::fs::read_dir(&dead)
        .unwrap()
        .flat_map(|e| read_rows(&e.unwrap().path()))
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(letter["source"], "bids/1");
    assert_eq!(
        letter["position"], 1,
        "offset of the bad row in partition 1"
    );

    // to a topic, dead letters to a topic
    broker.create_topic("counts", 2);
    broker.create_topic("dead", 1);
    let topic_out = format!("kafka://{}/counts", broker.address);
    run_ok(
        Command::new(example("bid_windows"))
            .args([
                "--query",
                "window-count",
                "-w",
                "2",
                "--input",
                &input,
                "--output",
                &topic_out,
            ])
            .arg("--dead-letter")
            .arg(format!("kafka://{}/dead", broker.address)),
    );
    assert_rows_eq(
        &consume_all(&broker.address, "counts"),
        &want,
        "from Kafka to Kafka",
    );
    // the dead letter, as JSON in a topic
    let letters = consume_all(&broker.address, "dead");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(
        (letter["source"].as_str(), letter["position"].as_u64()),
        (Some("bids/1"), Some(1))
    );
    assert!(
        letter["raw"].as_str().unwrap().contains("notaprice"),
        "{letter}"
    );

    // Nexmark events as JSON from a topic, q7 results to a topic: the same
    // rows as q7 on the built-in generator
    let events = dir.path().join("events.jsonl");
    run_ok(
        Command::new(common::tidewater())
            .args([
                "generate", "--events", "30000", "--what", "events", "--output",
            ])
            .arg(&events),
    );
    broker.create_topic("events", 3);
    produce(&broker.address, "events", &read_rows(&events), 3);
    let generated = dir.path().join("q7.csv");
    run_ok(
        Command::new(example("nexmark"))
            .args(["--query", "q7", "--events", "30000", "--sorted", "--output"])
            .arg(&generated),
    );
    broker.create_topic("q7", 1);
    run_ok(Command::new(example("nexmark")).args([
        "--query",
        "q7",
        "-w",
        "2",
        "--input",
        &format!("kafka://{}/events?format=json&bounded=true", broker.address),
        "--output",
        &format!("kafka://{}/q7", broker.address),
    ]));
    assert_rows_eq(
        &consume_all(&broker.address, "q7"),
        &read_rows(&generated),
        "q7 via Kafka",
    );
    // q9 reads auctions and bids from the same topic (decoded as tuples):
    // the generator's rows
    let winners = |args: &[&str], out: &Path| {
        run_ok(
            Command::new(example("nexmark"))
                .args(["--query", "q9", "--sorted", "--output"])
                .arg(out)
                .args(args),
        );
        std::fs::read_to_string(out).unwrap()
    };
    let generated = winners(&["--events", "30000"], &dir.path().join("q9.csv"));
    let topic = format!("kafka://{}/events?format=json&bounded=true", broker.address);
    let read = winners(
        &["-w", "2", "--input", &topic],
        &dir.path().join("q9-kafka.csv"),
    );
    assert!(generated.lines().count() > 100, "{generated}");
    assert_eq!(read, generated, "q9 via Kafka");

    // text lines through wordcount, topic to topic
    let text: Vec<String> = (0..500)
        .map(|i| format!("the quick {} fox, said \"{}\"", i % 7, i % 3))
        .collect();
    broker.create_topic("lines", 2);
    broker.create_topic("words", 1);
    produce(&broker.address, "lines", &text, 2);
    run_ok(Command::new(example("wordcount")).args([
        "-w",
        "2",
        "--input",
        &format!("kafka://{}/lines?format=text&bounded=true", broker.address),
        "--output",
        &format!("kafka://{}/words", broker.address),
    ]));
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for word in text.iter().flat_map(|l| l.split_whitespace()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut got = consume_all(&broker.address, "words");
    got.sort();
    let mut want: Vec<String> = counts
        .iter()
        .map(|(w, c)| {
            let mut row = Vec::new();
            tidewater::connectors::format::Format::Csv
                .encode(&(w, c), &mut row)
                .unwrap();
            String::from_utf8(row).unwrap().trim().to_owned()
        })
        .collect();
    want.sort();
    assert_rows_eq(&got, &want, "wordcount through Kafka");

    // killed at random moments: offsets come back from the checkpoints
    let mut rng = Rng::new();
    let recovered = dir.path().join("recovered.csv");
    let launcher = supervise("bid_windows", |c| {
        c.args([
            "--query",
            "hot-items",
            "--sorted",
            "--rate",
            "8000",
            "--input",
            &input,
            "--output",
        ])
        .arg(&recovered)
        .arg("--dead-letter")
        .arg(dir.path().join("dead3"))
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
    assert_rows_eq(
        &read_rows(&recovered),
        &oracle::hot_items(&read_bids(&file)),
        "after kills",
    );
}

#[test]
fn an_idle_partition_does_not_stall_an_unbounded_job() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // 25 s of event time: two windows close before the last bids
    let file = generate_bids(dir.path(), 250_000);
    let rows = read_rows(&file);
    // three partitions, bids in two: partition 2 stays silent
    broker.create_topic("bids", 3);
    produce(&broker.address, "bids", &rows, 2);
    let output = dir.path().join("counts");
    // Not too short an idle timeout: while catching up, librdkafka delivers
    // partitions in bursts, and a live partition taken for idle would have
    // its records judged late (the one way processing time affects lateness).
    let mut job = Command::new(example("bid_windows"))
        .args([
            "--query",
            "window-count",
            "--idle-timeout-ms",
            "3000",
            "--input",
        ])
        .arg(format!("kafka://{}/bids", broker.address))
        .arg("--output")
        .arg(&output)
        .arg("--dead-letter")
        .arg(dir.path().join("dead"))
        .spawn()
        .unwrap();
    // Unbounded: the job runs on. Wait until its output stops growing.
    let part = output.join("part-00000.csv");
    let (mut last, mut stable) = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(60);
    while (last == 0 || stable.elapsed() < Duration::from_secs(3)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len != last {
            (last, stable) = (len, Instant::now());
        }
    }
    let _ = job.kill();
    let _ = job.wait();
    // Every window the live partitions' watermark passed has fired, exactly.
    let bids = read_bids(&file);
    let watermark = bids.iter().map(|b| b[3]).max().unwrap() - 2_000;
    let want: Vec<String> = oracle::window_count(&bids)
        .into_iter()
        .filter(|row| numeric(row)[0] <= watermark)
        .collect();
    assert!(!want.is_empty());
    let mut got = read_rows(&part);
    got.sort_by_key(|row| numeric(row));
    assert_rows_eq(&got, &want, "windows closed despite the idle partition");
}
