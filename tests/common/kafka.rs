//! A real Kafka broker for the tests (`tests/kafka/broker`), and producing
//! and consuming rows.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::run_ok;

/// A real Kafka broker started by `tests/kafka/broker`, stopped on drop.
pub struct Broker {
    dir: tempfile::TempDir,
    /// Its bootstrap address.
    pub address: String,
}

impl Broker {
    /// Starts a broker in a fresh directory.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let out = run_ok(Command::new(script()).arg("start").arg(dir.path()));
        let address = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Broker { dir, address }
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        run_ok(
            Command::new("java")
                .arg("-cp")
                .arg(format!("{}/*", super::kafka_libs().display()))
                .args([
                    "org.apache.kafka.tools.TopicCommand",
                    "--bootstrap-server",
                    &self.address,
                ])
                .args([
                    "--create",
                    "--topic",
                    topic,
                    "--partitions",
                    &partitions.to_string(),
                ]),
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// The broker harness script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/broker")
}

/// Sends `rows` to `topic`, round robin over `partitions`.
pub fn produce(address: &str, topic: &str, rows: &[String], partitions: i32) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", address)
        .create()
        .unwrap();
    for (i, row) in rows.iter().enumerate() {
        let mut record = BaseRecord::<(), str>::to(topic)
            .payload(row.as_str())
            .partition(i as i32 % partitions);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Every message of `topic` (all partitions from the start), until none
/// arrives for two seconds.
pub fn consume_all(address: &str, topic: &str) -> Vec<String> {
    consume_all_as(address, topic, "read_uncommitted")
}

/// Like [`consume_all`], with `isolation.level` set to `isolation`.
pub fn consume_all_as(address: &str, topic: &str, isolation: &str) -> Vec<String> {
    let mut rows: Vec<String> = read_all(&reader(address, topic, isolation))
        .into_iter()
        .map(|m| {
            String::from_utf8_lossy(&m.value.unwrap_or_default())
                .trim()
                .to_owned()
        })
        .collect();
    rows.sort_by_key(|row| numeric(row));
    rows
}

/// A consumer of every partition of `topic` from the start.
pub fn reader(address: &str, topic: &str, isolation: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        list.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    consumer
}

/// One message as read.
pub struct Received {
    /// Its partition.
    pub partition: i32,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
}

/// Everything `consumer` reads until nothing arrives for two seconds.
pub fn read_all(consumer: &BaseConsumer) -> Vec<Received> {
    let (mut out, mut quiet) = (Vec::new(), Instant::now());
    while quiet.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(Received {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            });
            quiet = Instant::now();
        }
    }
    out
}

/// A row's fields as numbers (0 where not one), for sorting.
pub fn numeric(row: &str) -> Vec<u64> {
    row.split(',').map(|f| f.parse().unwrap_or(0)).collect()
}
