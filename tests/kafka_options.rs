//! Kafka options against a real broker: message keys and partitions in the
//! sink (murmur2, as Kafka's Java clients), record timestamps as event
//! time, consumer-group offsets (committed by one job, where the next one
//! starts with `start=committed`), one source over two topics, Avro in the
//! Confluent wire format in and out, change streams as `+`/`-` and upsert
//! changelogs, and raw bytes (`format=bytes`) through unchanged.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kafka::{produce, read_all, reader, Broker};
use common::{assert_rows_eq, example, generate_bids, oracle, read_bids, read_rows, run_ok};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    let m: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> 24;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^ (h >> 15)
}

/// `(partition, key, value)` of every message of `topic`.
fn messages(address: &str, topic: &str) -> Vec<(i32, Option<String>, String)> {
    all_messages(address, topic)
        .into_iter()
        .map(|(p, k, v)| (p, k, v.expect("a value")))
        .collect()
}

/// `(partition, key, value)` of every message of `topic`; `None`: a tombstone.
fn all_messages(address: &str, topic: &str) -> Vec<(i32, Option<String>, Option<String>)> {
    let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    read_all(&reader(address, topic, "read_uncommitted"))
        .into_iter()
        .map(|m| (m.partition, text(m.key), text(m.value)))
        .collect()
}

/// The raw values of every message of `topic`.
fn messages_bytes(address: &str, topic: &str) -> Vec<Vec<u8>> {
    read_all(&reader(address, topic, "read_uncommitted"))
        .into_iter()
        .map(|m| m.value.unwrap_or_default())
        .collect()
}

fn bid_windows(query: &str, input: &str, output: &str, dir: &std::path::Path) {
    run_ok(
        Command::new(example("bid_windows"))
            .args([
                "--query", query, "-w", "2", "--input", input, "--output", output,
            ])
            .arg("--dead-letter")
            .arg(dir.join("dead")),
    );
}

#[test]
fn keys_timestamps_and_group_offsets() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = generate_bids(dir.path(), 20_000);
    let rows = read_rows(&file);
    let bids = read_bids(&file);
    broker.create_topic("bids", 2);
    produce(&broker.address, "bids", &rows, 2);
    let input = format!("kafka://{}/bids?bounded=true", broker.address);

    // keyed by the auction (column 0): murmur2 picks the partition
    broker.create_topic("keyed", 3);
    let keyed = format!("kafka://{}/keyed?key=0", broker.address);
    bid_windows("filter-map", &input, &keyed, dir.path());
    let got = messages(&broker.address, "keyed");
    assert_eq!(got.len(), oracle::filter_map(&bids).len());
    for (partition, key, value) in &got {
        let key = key.as_deref().expect("a key");
        assert_eq!(Some(key), value.split(',').next(), "{value}");
        assert_eq!(
            *partition as u32,
            (murmur2(key.as_bytes()) & 0x7fff_ffff) % 3,
            "{key}"
        );
    }
    // or all to one partition
    broker.create_topic("pinned", 3);
    let pinned = format!("kafka://{}/pinned?partition=2", broker.address);
    bid_windows("filter-map", &input, &pinned, dir.path());
    let got = messages(&broker.address, "pinned");
    assert!(!got.is_empty() && got.iter().all(|(p, k, _)| *p == 2 && k.is_none()));

    // record timestamps as event time: an hour after the rows' own times
    broker.create_topic("stamped", 2);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    for (row, bid) in rows.iter().zip(&bids) {
        let record = BaseRecord::<(), str>::to("stamped")
            .payload(row.as_str())
            .timestamp(bid[3] as i64 + 3_600_000);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let out = dir.path().join("stamped.csv");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "window-count", "--sorted", "--input"])
            .arg(format!(
                "kafka://{}/stamped?bounded=true&event-time=record",
                broker.address
            ))
            .arg("--output")
            .arg(&out),
    );
    let shifted: Vec<[u64; 4]> = bids
        .iter()
        .map(|b| [b[0], b[1], b[2], b[3] + 3_600_000])
        .collect();
    assert_rows_eq(
        &read_rows(&out),
        &oracle::window_count(&shifted),
        "record time",
    );

    // group offsets: the first job commits where it ended, the second
    // starts there and reads only what came since
    broker.create_topic("more", 2);
    let (first, second) = rows.split_at(rows.len() / 2);
    produce(&broker.address, "more", first, 2);
    let grouped = |start: &str| {
        format!(
            "kafka://{}/more?bounded=true&group=g1{start}",
            broker.address
        )
    };
    let out1 = dir.path().join("first.csv");
    bid_windows(
        "filter-map",
        &grouped(""),
        &format!("{}", out1.display()),
        dir.path(),
    );
    produce(&broker.address, "more", second, 2);
    let out2 = dir.path().join("second.csv");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "filter-map", "--sorted", "--input"])
            .arg(grouped("&start=committed"))
            .arg("--output")
            .arg(&out2)
            .arg("--dead-letter")
            .arg(dir.path().join("dead2")),
    );
    let second_bids: Vec<[u64; 4]> = bids[first.len()..].to_vec();
    assert_rows_eq(
        &read_rows(&out2),
        &oracle::filter_map(&second_bids),
        "from the committed offsets",
    );
    // nothing new: a bounded job from the committed offsets ends at once
    let out3 = dir.path().join("third.csv");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "filter-map", "--sorted", "--input"])
            .arg(grouped("&start=committed"))
            .arg("--output")
            .arg(&out3)
            .arg("--dead-letter")
            .arg(dir.path().join("dead3")),
    );
    assert!(read_rows(&out3).is_empty());

    // two topics as one source (2 + 3 partitions over 2 workers)
    broker.create_topic("a", 2);
    broker.create_topic("b", 3);
    produce(&broker.address, "a", first, 2);
    produce(&broker.address, "b", second, 3);
    let out4 = dir.path().join("two.csv");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "window-count", "--sorted", "-w", "2", "--input"])
            .arg(format!("kafka://{}/a,b?bounded=true", broker.address))
            .arg("--output")
            .arg(&out4),
    );
    assert_rows_eq(
        &read_rows(&out4),
        &oracle::window_count(&bids),
        "two topics",
    );
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AvroBid {
    auction: u64,
    bidder: u64,
    price: u64,
    channel: String,
    date_time: u64,
}

#[derive(serde::Deserialize)]
struct AvroCount {
    window_end: u64,
    auction: u64,
    count: u64,
}

#[test]
fn avro_in_and_out_in_the_wire_format() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = generate_bids(dir.path(), 10_000);
    let bids = read_bids(&file);
    let long = |name: &str| format!(r#"{{"name": "{name}", "type": "long"}}"#);
    let bid_schema = format!(
        r#"{{"type": "record", "name": "Bid", "fields": [{}, {}, {}, {{"name": "channel", "type": "string"}}, {}]}}"#,
        long("auction"),
        long("bidder"),
        long("price"),
        long("date_time")
    );
    let count_schema = format!(
        r#"{{"type": "record", "name": "Count", "fields": [{}, {}, {}]}}"#,
        long("window_end"),
        long("auction"),
        long("count")
    );
    std::fs::write(dir.path().join("bid.avsc"), &bid_schema).unwrap();
    std::fs::write(dir.path().join("count.avsc"), &count_schema).unwrap();
    let schema = apache_avro::Schema::parse_str(&bid_schema).unwrap();
    let wire = |id: u8, bid: &AvroBid| {
        let value = apache_avro::to_value(bid)
            .unwrap()
            .resolve(&schema)
            .unwrap();
        let mut message = vec![0, 0, 0, 0, id];
        message.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
        message
    };
    broker.create_topic("avro-bids", 2);
    broker.create_topic("avro-counts", 2);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    for (i, b) in bids.iter().enumerate() {
        let bid = AvroBid {
            auction: b[0],
            bidder: b[1],
            price: b[2],
            channel: "web".into(),
            date_time: b[3],
        };
        // the fourth message of partition 0 carries another schema id
        let id = if i == 6 { 8 } else { 7 };
        let message = wire(id, &bid);
        let record = BaseRecord::<(), [u8]>::to("avro-bids")
            .payload(&message)
            .partition(i as i32 % 2);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let dead = dir.path().join("dead");
    run_ok(
        Command::new(example("bid_windows"))
            .args(["--query", "window-count", "-w", "2", "--input"])
            .arg(format!(
                "kafka://{}/avro-bids?format=avro&schema={}&schema-id=7&bounded=true",
                broker.address,
                dir.path().join("bid.avsc").display()
            ))
            .arg("--output")
            .arg(format!(
                "kafka://{}/avro-counts?format=avro&schema={}&schema-id=9",
                broker.address,
                dir.path().join("count.avsc").display()
            ))
            .arg("--dead-letter")
            .arg(&dead),
    );
    let count_schema = apache_avro::Schema::parse_str(&count_schema).unwrap();
    let mut got: Vec<String> = messages_bytes(&broker.address, "avro-counts")
        .iter()
        .map(|m| {
            assert_eq!(&m[..5], &[0, 0, 0, 0, 9], "wire format header");
            let value = apache_avro::from_avro_datum(&count_schema, &mut &m[5..], None).unwrap();
            let c: AvroCount = apache_avro::from_value(&value).unwrap();
            format!("{},{},{}", c.window_end, c.auction, c.count)
        })
        .collect();
    got.sort_by_key(|row| common::kafka::numeric(row));
    let letters: Vec<String> = std::fs::read_dir(&dead)
        .unwrap()
        .flat_map(|e| read_rows(&e.unwrap().path()))
        .collect();
    assert_eq!(letters.len(), 1, "{:?}", letters.first());
    assert!(
        letters[0].contains("schema id 8, expected 7"),
        "{}",
        letters[0]
    );
    assert!(
        letters[0].contains(r#""source":"avro-bids/0","position":3"#),
        "{}",
        letters[0]
    );
    let mut kept = bids.clone();
    kept.remove(6);
    assert_rows_eq(&got, &oracle::window_count(&kept), "Avro in and out");
}

/// Writes `changes` (one worker, one batch) with `KafkaSink::write_changes`.
fn write_changes(uri: &str, changes: Vec<((String, u64, i64), u64)>) {
    let uri: tidewater::connectors::kafka::KafkaUri = uri.parse().unwrap();
    timely::execute_directly(move |worker| {
        let ctx = tidewater::operators::Context::default();
        worker.dataflow(|scope| {
            use timely::dataflow::operators::ToStream;
            let stream = changes.clone().to_stream(scope);
            tidewater::connectors::kafka::KafkaSink::new(uri.clone()).write_changes(stream, &ctx);
        });
        while worker.step() {}
        assert_eq!(ctx.failure(), None);
    });
}

#[test]
fn changelogs_and_raw_bytes() {
    let broker = Broker::start();
    let change = |k: &str, v: u64, diff: i64| ((k.to_owned(), v, diff), 0u64);
    // a: 1 then replaced by 2; b: 1; c: 5 then retracted
    let changes = vec![
        change("a", 1, 1),
        change("b", 1, 1),
        change("a", 1, -1),
        change("a", 2, 1),
        change("c", 5, 1),
        change("c", 5, -1),
    ];
    broker.create_topic("diffs", 1);
    write_changes(
        &format!("kafka://{}/diffs", broker.address),
        changes.clone(),
    );
    let got: Vec<(Option<String>, Option<String>)> = all_messages(&broker.address, "diffs")
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect();
    let want: Vec<(Option<String>, Option<String>)> = [
        ("a", "+,a,1"),
        ("b", "+,b,1"),
        ("a", "-,a,1"),
        ("a", "+,a,2"),
        ("c", "+,c,5"),
        ("c", "-,c,5"),
    ]
    .iter()
    .map(|(k, v)| (Some(k.to_string()), Some(v.to_string())))
    .collect();
    assert_eq!(got, want, "one +/- row per change, keyed");

    broker.create_topic("upserts", 1);
    write_changes(
        &format!(
            "kafka://{}/upserts?changelog=upsert&format=json",
            broker.address
        ),
        changes,
    );
    let got: Vec<(Option<String>, Option<String>)> = all_messages(&broker.address, "upserts")
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect();
    let want = vec![
        (Some("\"a\"".to_owned()), Some("2".to_owned())),
        (Some("\"b\"".to_owned()), Some("1".to_owned())),
        (Some("\"c\"".to_owned()), None),
    ];
    assert_eq!(got, want, "each key's value now; a tombstone for c");

    // raw bytes, newlines and invalid UTF-8 included, through unchanged
    broker.create_topic("raw-in", 2);
    broker.create_topic("raw-out", 1);
    let values: Vec<Vec<u8>> = (0..200u32)
        .map(|i| [b"\xff\n".as_slice(), &i.to_le_bytes(), b"\r\n\x00"].concat())
        .collect();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        let record = BaseRecord::<(), [u8]>::to("raw-in")
            .payload(v.as_slice())
            .partition(i as i32 % 2);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let (input, output) = (
        format!(
            "kafka://{}/raw-in?format=bytes&bounded=true",
            broker.address
        ),
        format!("kafka://{}/raw-out?format=bytes", broker.address),
    );
    timely::execute_directly(move |worker| {
        let ctx = tidewater::operators::Context::default();
        worker.dataflow(|scope| {
            let source = tidewater::connectors::kafka::KafkaSource::new(input.parse().unwrap())
                .build(scope, &ctx, Default::default(), |_: &Vec<u8>| 0)
                .unwrap();
            tidewater::connectors::kafka::KafkaSink::new(output.parse().unwrap())
                .write(source.records, &ctx);
        });
        while worker.step() {}
        assert_eq!(ctx.failure(), None);
    });
    let mut got = messages_bytes(&broker.address, "raw-out");
    got.sort();
    let mut want = values;
    want.sort();
    assert_eq!(got, want, "bytes in, the same bytes out");
}
