//! The Kafka sink. Each record becomes one message (its CSV or JSON row as
//! the value). At least once (the default): at every checkpoint the sink
//! waits until everything before it is acknowledged by the broker before it
//! writes its part, so a completed checkpoint never loses output (a recovery
//! may send some again). (No idempotent producer: at least once does not
//! need it, and it adds a producer-id handshake with the transaction
//! coordinator at start.) Exactly once (`delivery=exactly-once`): see
//! [`super::exactly_once`].

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use serde::Serialize;
use tidewater_operators::checkpoint::{Barrier, Snapshots, Step};
use tidewater_operators::{Context, EventStream, EventTime, Metrics};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::record::{Encode, Messages};
use super::uri::{Delivery, KafkaUri};

const FLUSH: Duration = Duration::from_secs(30);

/// Writes a stream's records to a topic.
#[derive(Clone, Debug)]
pub struct KafkaSink {
    uri: KafkaUri,
}

impl KafkaSink {
    /// Writes to the topic `uri` names.
    pub fn new(uri: KafkaUri) -> Self {
        KafkaSink { uri }
    }

    /// Attaches the sink to `stream`: one message per record.
    pub fn write<D: Serialize + 'static>(self, stream: EventStream<'_, D>, ctx: &Context) {
        let messages = Messages::new(&self.uri);
        self.attach(stream, ctx, messages, |m, batch, out| {
            m.encode_all(batch.iter().map(|(d, _)| d), out)
        });
    }

    /// Attaches the sink to a stream of changes `(key, value, diff)` — a
    /// continuous result's updates, such as windows with allowed lateness
    /// retracting and replacing results — written as a changelog keyed by
    /// the key (`changelog=diff`, the default: `+`/`-` rows; or
    /// `changelog=upsert`: the key's value, a tombstone once retracted).
    ///
    /// ```no_run
    /// # use tidewater_connectors::kafka::KafkaSink;
    /// # fn build(stream: tidewater_operators::EventStream<'_, (u64, u64, i64)>, ctx: &tidewater_operators::Context) {
    /// let uri = "kafka://127.0.0.1:9092/counts?changelog=upsert".parse().unwrap();
    /// KafkaSink::new(uri).write_changes(stream, ctx);
    /// # }
    /// ```
    pub fn write_changes<K, V>(self, stream: EventStream<'_, (K, V, i64)>, ctx: &Context)
    where
        K: Serialize + 'static,
        V: Serialize + 'static,
    {
        let messages = Messages::for_changes(&self.uri);
        self.attach(stream, ctx, messages, |m, batch, out| {
            m.encode_changes(batch.iter().map(|((k, v, diff), _)| (k, v, *diff)), out)
        });
    }

    fn attach<D: 'static>(
        self,
        stream: EventStream<'_, D>,
        ctx: &Context,
        messages: Result<Messages, String>,
        encode: Encode<D>,
    ) {
        let messages = match messages {
            Ok(messages) => messages,
            Err(e) => return ctx.fail(e),
        };
        match self.uri.delivery {
            Delivery::AtLeastOnce => self.write_at_least_once(stream, ctx, messages, encode),
            Delivery::ExactlyOnce => {
                super::exactly_once::write(self.uri, stream, ctx, messages, encode)
            }
        }
    }

    fn write_at_least_once<D: 'static>(
        self,
        stream: EventStream<'_, D>,
        ctx: &Context,
        messages: Messages,
        encode: Encode<D>,
    ) {
        let scope = stream.scope();
        let (snapshots, control) = Snapshots::attach(Some(ctx), scope, "kafka-sink").unzip();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.uri.bootstrap)
            .set("acks", "all")
            .set("linger.ms", "5");
        messages.configure(&mut config);
        let producer: Result<ThreadedProducer<DefaultProducerContext>, _> = config.create();
        let producer = match producer {
            Ok(p) => Some(p),
            Err(e) => {
                ctx.fail(format!(
                    "cannot create a Kafka producer for {}: {e}",
                    self.uri.bootstrap
                ));
                None
            }
        };
        let (topic, fail) = (self.uri.topic.clone(), ctx.clone());
        let mut builder = OperatorBuilder::new("KafkaSink".to_owned(), scope);
        let mut input = builder.new_input(stream, Pipeline);
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (_output, done) = builder.new_output::<Vec<()>>();
        // Stays scheduled until everything is flushed at the end.
        builder.build_reschedule(move |_caps| {
            let mut barrier: Barrier<Vec<(D, EventTime)>> = Barrier::default();
            let mut buffer = Vec::new();
            let mut flushed_at_end = false;
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let Some(producer) = producer.as_ref() else {
                    input.for_each(|_, _| {});
                    return false;
                };
                let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
                let data_frontier = frontiers[0].frontier().first().copied();
                let mut send = |batch: Vec<(D, EventTime)>| {
                    buffer.clear();
                    if let Err(e) = encode(&messages, &batch, &mut buffer) {
                        fail.fail(format!("cannot encode a record for {topic}: {e}"));
                        return;
                    }
                    if let Err(e) = messages.send_rows(producer, &buffer) {
                        fail.fail(e);
                        return;
                    }
                    Metrics::add(&fail.metrics().records_out, batch.len() as u64);
                };
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(batch) =
                        barrier.accept(time, std::mem::take(data), control_frontier)
                    {
                        send(batch);
                    }
                });
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => batches.into_iter().for_each(&mut send),
                        Step::Snapshot(c) => match producer.flush(FLUSH) {
                            Ok(()) => {
                                if let Some(snapshots) = &snapshots {
                                    snapshots.write(c, Vec::new(), Vec::new());
                                }
                            }
                            Err(e) => fail
                                .fail(format!("cannot flush to {topic} for checkpoint {c}: {e}")),
                        },
                    }
                }
                // Only once nothing is stashed behind a control stream that
                // has not ended yet (they end one by one).
                let ended =
                    data_frontier.is_none() && control_frontier.is_none() && barrier.is_idle();
                if ended && !flushed_at_end {
                    flushed_at_end = true;
                    let flushed = producer
                        .flush(FLUSH)
                        .map_err(|e| e.to_string())
                        .and_then(|()| match producer.in_flight_count() {
                            0 => Ok(()),
                            n => Err(format!("{n} messages still unacknowledged")),
                        });
                    if let Err(e) = flushed {
                        fail.fail(format!("cannot flush to {topic}: {e}"));
                    }
                }
                !flushed_at_end
            }
        });
        ctx.attach(done);
    }
}
