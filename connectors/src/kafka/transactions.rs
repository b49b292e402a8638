//! Kafka transactions for the exactly-once sink: the transactional ids, the
//! commits topic, recovery after a restart, and the committer thread that
//! owns the producer.
//!
//! - **Transactional ids.** Worker `w` of sink operator `OP` writes with
//!   `transactional.id = PREFIX.OP.w` (`PREFIX` from the URI's
//!   `transactional-id=`, default `tidewater-TOPIC`). Initialising a producer
//!   with an id bumps its epoch at the broker, which aborts that id's open
//!   transaction and fences every older producer holding it (a zombie's
//!   next send or commit fails with "fenced").
//! - **Commit markers.** Each transaction also writes one record to the
//!   commits topic (`commits=`, default `TOPIC.tidewater-commits`, one
//!   compacted partition): key the transactional id, value `JOB,C` — the
//!   writer's job id and the checkpoint whose output the transaction holds.
//!   The marker commits or aborts with the output, so a `read_committed`
//!   reader of the commits topic knows exactly which checkpoints' output is
//!   in the topic.
//! - **Recovery.** librdkafka cannot resume a transaction after a restart, so
//!   the sink's checkpoint part holds the rows of every checkpoint whose
//!   commit it has not seen confirmed (a write-ahead copy). A restored worker
//!   first initialises the ids of every old worker it stands in for (fencing
//!   them), then reads the commits topic and writes, in one new transaction
//!   per old worker, the rows of the restored checkpoints after that worker's
//!   last marker. Output after the restored checkpoint was never committed
//!   (it is committed only once a later checkpoint completes) and is
//!   replayed by the sources.
//!
//! This module talks to the broker only through standard Kafka APIs
//! (transactions, `CreateTopics`, fetch): nothing in it is specific to
//! Apache Kafka.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tidewater_operators::EventTime;

use super::record::{send, Messages};
use super::uri::KafkaUri;

const TIMEOUT: Duration = Duration::from_secs(60);

/// What one worker's part of a checkpoint holds: its job id (the marker
/// values it writes) and the rows of every checkpoint it has not seen
/// committed, oldest first.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct SinkImage {
    /// The job id in this worker's commit markers.
    pub job: u64,
    /// `(C, rows)`: newline-terminated encoded rows, one message each.
    pub epochs: Vec<(EventTime, Vec<u8>)>,
}

/// Names the transactional ids of one sink operator.
#[derive(Clone, Debug)]
pub struct Ids {
    prefix: String,
}

impl Ids {
    /// The ids of sink operator `operator` writing per `uri`.
    pub fn new(uri: &KafkaUri, operator: &str) -> Self {
        Ids {
            prefix: format!("{}.{operator}", uri.transactional_id),
        }
    }

    /// Worker `w`'s transactional id.
    pub fn of(&self, w: usize) -> String {
        format!("{}.{w}", self.prefix)
    }
}

/// What the sink operator asks of its committer thread, in order.
pub enum Command {
    /// Rows for the open transaction (one is begun if none is open).
    Rows(Vec<u8>),
    /// Commit the open transaction as the output of checkpoint `C`.
    Commit(EventTime),
}

/// The worker's handle on its committer thread.
pub struct Committer {
    commands: Option<mpsc::Sender<Command>>,
    committed: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
    /// This worker's job id (in its markers and parts).
    pub job: u64,
}

impl Committer {
    /// Recovers the restored checkpoints' output of the old workers in
    /// `taken` (fencing them first), fences `own`'s id, and starts the
    /// thread that writes worker `own`'s transactions. Blocks until recovery
    /// is done, so that no new output is written before the old.
    pub fn start(
        uri: &KafkaUri,
        messages: Messages,
        ids: Ids,
        own: usize,
        taken: Vec<(usize, SinkImage)>,
    ) -> Result<Committer, String> {
        ensure_commits_topic(uri)?;
        let mut producers = HashMap::new();
        for w in taken.iter().map(|(w, _)| *w).chain([own]) {
            if let std::collections::hash_map::Entry::Vacant(slot) = producers.entry(w) {
                slot.insert(transactional_producer(uri, &messages, &ids.of(w))?);
            }
        }
        let markers = read_markers(uri)?;
        let mut job = None;
        for (w, image) in &taken {
            let id = ids.of(*w);
            let done = markers
                .get(&id)
                .filter(|(j, _)| *j == image.job)
                .map_or(0, |(_, c)| *c);
            let todo: Vec<&(EventTime, Vec<u8>)> =
                image.epochs.iter().filter(|(c, _)| *c > done).collect();
            if let Some(last) = todo.last().map(|(c, _)| *c) {
                let producer = &producers[w];
                let mut txn = Transaction::begin(producer, uri, &messages, &id)?;
                for (_, rows) in &todo {
                    txn.send_rows(rows)?;
                }
                txn.commit(image.job, last)?;
                tracing::info!(
                    transactional_id = %id,
                    checkpoints = todo.len(),
                    "recovered output committed"
                );
            }
            if *w == own {
                job = Some(image.job);
            }
        }
        let producer = producers.remove(&own).expect("own producer");
        drop(producers);
        let job = job.unwrap_or_else(new_job_id);
        let (commands, receiver) = mpsc::channel();
        let committed = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let thread = {
            let (uri, id) = (uri.clone(), ids.of(own));
            let (committed, error) = (Arc::clone(&committed), Arc::clone(&error));
            std::thread::Builder::new()
                .name(format!("kafka-txn-{own}"))
                .spawn(move || {
                    let sink = Sink {
                        producer: &producer,
                        uri: &uri,
                        messages: &messages,
                        id: &id,
                    };
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(&sink, job, &receiver, &committed)
                    }));
                    let failed = match ran {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(_) => Some(format!("{id}: the committer thread panicked")),
                    };
                    if failed.is_some() {
                        *error.lock().expect("not poisoned") = failed;
                    }
                })
                .map_err(|e| format!("cannot start the Kafka committer thread: {e}"))?
        };
        Ok(Committer {
            commands: Some(commands),
            committed,
            error,
            thread: Some(thread),
            job,
        })
    }

    /// Hands a command to the thread.
    pub fn send(&self, command: Command) {
        if let Some(commands) = &self.commands {
            // A closed channel means the thread failed: `error` says why.
            let _ = commands.send(command);
        }
    }

    /// The newest checkpoint whose output is committed (0: none yet).
    pub fn committed(&self) -> EventTime {
        self.committed.load(Ordering::Acquire)
    }

    /// The thread's error, if it failed.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("not poisoned").clone()
    }

    /// Stops the thread once it has done everything handed to it.
    pub fn finish(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What the committer thread writes with.
struct Sink<'a> {
    producer: &'a ThreadedProducer<DefaultProducerContext>,
    uri: &'a KafkaUri,
    messages: &'a Messages,
    id: &'a str,
}

/// The committer thread: rows into the open transaction, commits on demand.
fn run(
    sink: &Sink<'_>,
    job: u64,
    commands: &mpsc::Receiver<Command>,
    committed: &AtomicU64,
) -> Result<(), String> {
    let mut open: Option<Transaction<'_>> = None;
    for command in commands {
        match command {
            Command::Rows(rows) => {
                if open.is_none() {
                    open = Some(Transaction::begin(
                        sink.producer,
                        sink.uri,
                        sink.messages,
                        sink.id,
                    )?);
                }
                open.as_mut().expect("open").send_rows(&rows)?;
            }
            Command::Commit(c) => {
                if let Some(txn) = open.take() {
                    txn.commit(job, c)?;
                }
                committed.store(c, Ordering::Release);
            }
        }
    }
    if let Some(txn) = open.take() {
        txn.abort();
    }
    Ok(())
}

/// One open transaction of `producer`.
struct Transaction<'p> {
    producer: &'p ThreadedProducer<DefaultProducerContext>,
    uri: &'p KafkaUri,
    messages: &'p Messages,
    id: &'p str,
}

impl<'p> Transaction<'p> {
    fn begin(
        producer: &'p ThreadedProducer<DefaultProducerContext>,
        uri: &'p KafkaUri,
        messages: &'p Messages,
        id: &'p str,
    ) -> Result<Self, String> {
        producer
            .begin_transaction()
            .map_err(|e| format!("{id}: cannot begin a transaction: {e}"))?;
        Ok(Transaction {
            producer,
            uri,
            messages,
            id,
        })
    }

    /// Sends newline-terminated rows, one message each.
    fn send_rows(&mut self, rows: &[u8]) -> Result<(), String> {
        self.messages
            .send_rows(self.producer, rows)
            .map_err(|e| format!("{}: {e}", self.id))
    }

    /// Writes the marker `job,c` and commits.
    fn commit(self, job: u64, c: EventTime) -> Result<(), String> {
        let marker = format!("{job},{c}");
        send(
            self.producer,
            BaseRecord::to(&self.uri.commits)
                .key(self.id)
                .payload(&marker)
                .partition(0),
        )
        .map_err(|e| format!("{}: cannot write the commit marker: {e}", self.id))?;
        self.producer.commit_transaction(TIMEOUT).map_err(|e| {
            format!(
                "{}: cannot commit the output of checkpoint {c} to {}: {e}",
                self.id, self.uri.topic
            )
        })
    }

    fn abort(self) {
        if let Err(e) = self.producer.abort_transaction(TIMEOUT) {
            tracing::warn!("{}: cannot abort the open transaction: {e}", self.id);
        }
    }
}

/// A producer with transactional id `id`, initialised: any older producer
/// with the same id is fenced and its open transaction aborted.
fn transactional_producer(
    uri: &KafkaUri,
    messages: &Messages,
    id: &str,
) -> Result<ThreadedProducer<DefaultProducerContext>, String> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &uri.bootstrap)
        .set("transactional.id", id)
        .set(
            "transaction.timeout.ms",
            uri.transaction_timeout_ms.to_string(),
        )
        .set("linger.ms", "5");
    messages.configure(&mut config);
    let producer: ThreadedProducer<DefaultProducerContext> = config
        .create()
        .map_err(|e| format!("cannot create a Kafka producer for {}: {e}", uri.bootstrap))?;
    producer
        .init_transactions(TIMEOUT)
        .map_err(|e| format!("{id}: cannot initialise transactions: {e}"))?;
    Ok(producer)
}

/// Creates the commits topic (one compacted partition) unless it exists.
fn ensure_commits_topic(uri: &KafkaUri) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &uri.bootstrap)
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client: {e}"))?;
    let topic = NewTopic::new(&uri.commits, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures_executor(admin.create_topics([&topic], &options))
        .map_err(|e| format!("cannot create the commits topic {}: {e}", uri.commits))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(format!("cannot create the commits topic {topic}: {code}"))
            }
        }
    }
    Ok(())
}

/// Runs a future to completion on this thread (the admin client's calls are
/// futures; the sink has no async runtime).
fn futures_executor<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(10)),
        }
    }
}

/// The newest committed marker of every transactional id: `(job, C)`.
fn read_markers(uri: &KafkaUri) -> Result<HashMap<String, (u64, EventTime)>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &uri.bootstrap)
        .set("group.id", format!("tidewater-{}", uri.commits))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    // The topic may have just been created: wait until its partition answers.
    let end = loop {
        match consumer.fetch_watermarks(&uri.commits, 0, Duration::from_secs(5)) {
            Ok((_, high)) => break high,
            Err(e) if Instant::now() > deadline => {
                return Err(format!("cannot read the end of {}: {e}", uri.commits))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut markers = HashMap::new();
    if end == 0 {
        return Ok(markers);
    }
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&uri.commits, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&list).map_err(|e| e.to_string())?;
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.map_err(|e| format!("cannot read {}: {e}", uri.commits))?;
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            match parse_marker(&value) {
                Some(marker) => {
                    markers.insert(key, marker);
                }
                None => tracing::warn!(
                    "{}: ignoring a marker that is not JOB,C at offset {}",
                    uri.commits,
                    message.offset()
                ),
            }
        }
        // Under read_committed the position passes the transactions' control
        // records too, so it reaches the end once everything is read.
        let position = consumer
            .position()
            .ok()
            .and_then(|p| p.find_partition(&uri.commits, 0).map(|e| e.offset()))
            .and_then(|offset| offset.to_raw());
        if position.is_some_and(|p| p >= end) {
            return Ok(markers);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "cannot read {} to its end (offset {end}) within {TIMEOUT:?}",
                uri.commits
            ));
        }
    }
}

fn parse_marker(value: &str) -> Option<(u64, EventTime)> {
    let (job, c) = value.split_once(',')?;
    Some((job.parse().ok()?, c.parse().ok()?))
}

/// A job id no earlier run of the same ids is likely to have used.
fn new_job_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 of the clock and the process id
    let mut z = nanos ^ ((std::process::id() as u64) << 32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_ids() {
        assert_eq!(parse_marker("17,1767225600000"), Some((17, 1767225600000)));
        assert_eq!(parse_marker("17"), None);
        assert_eq!(parse_marker("x,1"), None);
        let uri: KafkaUri = "kafka://h:1/out?delivery=exactly-once".parse().unwrap();
        assert_eq!(
            Ids::new(&uri, "kafka-sink-0").of(3),
            "tidewater-out.kafka-sink-0.3"
        );
        assert_ne!(new_job_id(), 0);
    }
}
