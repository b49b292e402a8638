//! The Kafka test harness: `tests/kafka/broker start DIR` brings up a real
//! Apache Kafka broker (fetching it from Maven Central on first use) and
//! prints its address; topics can be created on it; `stop` ends it.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn broker() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/broker")
}

#[test]
fn starts_answers_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let started = Command::new(broker())
        .arg("start")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let address = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    let topics = Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", common::kafka_libs().display()))
        .args([
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server",
            &address,
        ])
        .args(["--create", "--topic", "bids", "--partitions", "3"])
        .output()
        .unwrap();
    let stopped = Command::new(broker())
        .arg("stop")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(
        topics.status.success(),
        "{}",
        String::from_utf8_lossy(&topics.stderr)
    );
    assert!(String::from_utf8_lossy(&topics.stdout).contains("Created topic bids"));
    assert!(stopped.success());
    let pid = dir.path().join("broker.pid");
    assert!(!pid.exists(), "stop removes the pid file");
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "the broker is gone"
    );
}
