//! Benchmark: Kafka -> Nexmark query -> Kafka against a real broker that
//! the bench starts (`tests/kafka/broker`), beside the raw consume
//! throughput of the same topic with the same client settings, measured in
//! the same invocation; at-least-once against exactly-once output, and the
//! checkpoints' own share. q5 (hot items) writes little; q0 (pass-through)
//! writes every bid, so it shows what transactions cost per output message.
//!
//! ```text
//! cargo bench --bench kafka
//! EVENTS=500000 cargo bench --bench kafka
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

#[path = "common/mod.rs"]
mod common;
use common::{build_binary, build_example, cores, env_number, measure, Measurement};

const PARTITIONS: i32 = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--consume") {
        consume(
            &args[pos + 1],
            &args[pos + 2],
            args[pos + 3].parse().expect("n"),
        );
        return;
    }
    let events = env_number("EVENTS", 2_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let nexmark = build_example(&root, "nexmark");
    let tidewater = build_binary(&root, "tidewater");
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(&root, dir.path());
    let address = broker.address.clone();

    let file = dir.path().join("events.jsonl");
    let status = Command::new(&tidewater)
        .args([
            "generate",
            "--what",
            "events",
            "--events",
            &events.to_string(),
            "--output",
        ])
        .arg(&file)
        .status()
        .expect("generate");
    assert!(status.success());
    let started = Instant::now();
    let messages = produce(&address, "events", &file);
    eprintln!(
        "produced {messages} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    println!(
        "Kafka -> query -> Kafka over {events} Nexmark events (JSON, {PARTITIONS} partitions), {} cores, broker on the same machine",
        cores()
    );
    println!();
    println!("| run | -w | wall s | CPU s | events/s | events/CPU-s | peak RSS MiB | CPU vs raw consume |");
    println!("|---|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().expect("bench path");
    for workers in [1, 2] {
        // One consumer, one thread, whatever -w is: the client's ceiling.
        let raw = measure(Command::new(&me).args([
            "--consume",
            &address,
            "events",
            &messages.to_string(),
        ]));
        row(
            "raw consume (rdkafka, 1 thread)",
            workers,
            events,
            &raw,
            &raw,
        );
        for (query, delivery, checkpoints) in [
            ("q5", "at-least-once", false),
            ("q5", "at-least-once", true),
            ("q5", "exactly-once", true),
            ("q0", "at-least-once", true),
            ("q0", "exactly-once", true),
        ] {
            let topic = format!("{query}-{delivery}-{checkpoints}-{workers}");
            let mut command = Command::new(&nexmark);
            command
                .args(["--query", query, "-w", &workers.to_string(), "--input"])
                .arg(format!("kafka://{address}/events?format=json&bounded=true"))
                .arg("--output")
                .arg(format!("kafka://{address}/{topic}?delivery={delivery}"));
            if checkpoints {
                command
                    .arg("--checkpoint-dir")
                    .arg(dir.path().join(&topic))
                    .args(["--checkpoint-interval", "1s"]);
            }
            let ours = measure(&mut command);
            let name = format!(
                "{query} {delivery}{}",
                if checkpoints { ", checkpoints 1 s" } else { "" }
            );
            row(&name, workers, events, &ours, &raw);
        }
    }
}

fn row(name: &str, workers: usize, events: u64, m: &Measurement, raw: &Measurement) {
    let n = events as f64;
    println!(
        "| {name} | {workers} | {:.2} | {:.2} | {:.2} M | {:.2} M | {:.0} | {:.2} |",
        m.wall,
        m.cpu,
        n / m.wall / 1e6,
        n / m.cpu / 1e6,
        m.peak_rss_kib as f64 / 1024.0,
        m.cpu / raw.cpu
    );
}

/// Reads `n` messages of every partition of `topic` with the source's
/// client settings (manual assignment, read_committed).
fn consume(address: &str, topic: &str, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let (mut seen, mut bytes) = (0u64, 0usize);
    while seen < n {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("message");
            bytes += rdkafka::Message::payload(&message).map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    eprintln!("raw consume: {seen} messages, {bytes} bytes");
}

/// Sends every line of `file` to `topic`, round robin over the partitions.
fn produce(address: &str, topic: &str, file: &Path) -> u64 {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .create()
        .expect("producer");
    // Line by line: a large buffer here would count in every child's peak
    // RSS (Linux reports the RSS a child had when forked, before exec).
    let reader = std::io::BufReader::new(std::fs::File::open(file).expect("events file"));
    let mut n = 0u64;
    for line in std::io::BufRead::lines(reader) {
        let line = line.expect("events file");
        let mut record = BaseRecord::<(), str>::to(topic)
            .payload(line.as_str())
            .partition((n % PARTITIONS as u64) as i32);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(1));
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    n
}

struct Broker {
    script: PathBuf,
    dir: PathBuf,
    address: String,
}

impl Broker {
    fn start(root: &Path, dir: &Path) -> Broker {
        let script = root.join("tests/kafka/broker");
        let dir = dir.join("broker");
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .output()
            .expect("broker script");
        assert!(
            out.status.success(),
            "broker: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let status = Command::new(&script)
            .arg("topic")
            .arg(&dir)
            .args(["events", &PARTITIONS.to_string()])
            .status()
            .expect("broker script");
        assert!(status.success(), "cannot create the events topic");
        Broker {
            script,
            dir,
            address,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}
