//! The exactly-once Kafka sink operator: output below checkpoint `C` is
//! written in a Kafka transaction that commits only once `C` is complete
//! (two-phase commit, DESIGN.md section 3). The transactions themselves, the
//! id scheme and recovery are in [`super::transactions`].
//!
//! The operator splits its input into epochs at the checkpoints (the
//! barrier releases exactly the messages below `C` before the snapshot at
//! `C`). The oldest epoch not yet handed for commit streams into the open
//! transaction as it arrives, so `read_uncommitted` readers see it at once;
//! later epochs wait in memory until the ones before them are committed,
//! since a producer has one transaction at a time. Each snapshot holds the
//! rows of every epoch whose commit is not yet confirmed, for recovery.
//! The job takes a final checkpoint when its sources end, so the output of
//! a bounded job's tail is committed the same way.

use std::collections::VecDeque;
use std::time::Duration;

use tidewater_operators::checkpoint::part;
use tidewater_operators::checkpoint::{Barrier, Snapshots, Step};
use tidewater_operators::{Context, EventStream, EventTime, Metrics};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::record::{Encode, Messages};
use super::transactions::{Command, Committer, Ids, SinkImage};
use super::uri::KafkaUri;

/// Rows between two checkpoints.
struct Epoch {
    /// The checkpoint that closed it (`None`: still open).
    checkpoint: Option<EventTime>,
    rows: Vec<u8>,
    /// How many bytes of `rows` went to the committer.
    streamed: usize,
    /// Whether its commit has been asked for.
    handed: bool,
}

impl Epoch {
    fn open() -> Self {
        Epoch {
            checkpoint: None,
            rows: Vec::new(),
            streamed: 0,
            handed: false,
        }
    }
}

/// The epochs not yet confirmed committed, oldest first; the last is open.
struct Epochs {
    queue: VecDeque<Epoch>,
}

impl Epochs {
    fn new() -> Self {
        Epochs {
            queue: VecDeque::from([Epoch::open()]),
        }
    }

    fn current(&mut self) -> &mut Epoch {
        self.queue.back_mut().expect("an open epoch")
    }

    /// Closes the open epoch at `c`; returns the image to snapshot.
    fn seal(&mut self, c: EventTime, job: u64) -> SinkImage {
        self.current().checkpoint = Some(c);
        self.queue.push_back(Epoch::open());
        SinkImage {
            job,
            epochs: self
                .queue
                .iter()
                .filter_map(|e| Some((e.checkpoint?, e.rows.clone())))
                .collect(),
        }
    }

    /// Streams what the open transaction may take and asks for the commits
    /// that completed checkpoints allow; forgets confirmed epochs.
    fn pump(&mut self, committer: &Committer, complete: impl Fn(EventTime) -> bool) {
        let committed = committer.committed();
        while self.queue.front().is_some_and(|e| {
            e.handed && e.checkpoint.is_some_and(|c| c <= committed) && self.queue.len() > 1
        }) {
            self.queue.pop_front();
        }
        for epoch in self.queue.iter_mut().filter(|e| !e.handed) {
            if epoch.streamed < epoch.rows.len() {
                committer.send(Command::Rows(epoch.rows[epoch.streamed..].to_vec()));
                epoch.streamed = epoch.rows.len();
            }
            match epoch.checkpoint {
                Some(c) if complete(c) => {
                    committer.send(Command::Commit(c));
                    epoch.handed = true;
                }
                _ => break,
            }
        }
    }

    /// Whether every sealed epoch is confirmed committed.
    fn settled(&self, committer: &Committer) -> bool {
        let committed = committer.committed();
        self.queue
            .iter()
            .all(|e| e.checkpoint.is_none_or(|c| c <= committed))
    }
}

/// Attaches an exactly-once sink for `uri` to `stream`.
pub(super) fn write<D: 'static>(
    uri: KafkaUri,
    stream: EventStream<'_, D>,
    ctx: &Context,
    messages: Messages,
    encode: Encode<D>,
) {
    let scope = stream.scope();
    let (index, peers) = (scope.index(), scope.peers());
    let Some((snapshots, control)) = Snapshots::attach(Some(ctx), scope, "kafka-sink") else {
        ctx.fail(format!(
            "{}: delivery=exactly-once needs --checkpoint-dir (output is committed as checkpoints complete)",
            uri.topic
        ));
        return;
    };
    snapshots.want_final();
    let mut taken = Vec::new();
    for p in snapshots.restored_parts() {
        if p.worker % peers != index {
            continue;
        }
        match part::decode::<SinkImage>(&p.global) {
            Ok(image) => taken.push((p.worker, image)),
            Err(e) => {
                ctx.fail(format!(
                    "cannot restore the Kafka sink of {}: {e}",
                    uri.topic
                ));
                return;
            }
        }
    }
    let ids = Ids::new(&uri, snapshots.name());
    let restored_at = snapshots.restored_at();
    let mut committer = match Committer::start(&uri, messages.clone(), ids, index, taken) {
        Ok(committer) => committer,
        Err(e) => {
            ctx.fail(format!("exactly-once sink for {}: {e}", uri.topic));
            return;
        }
    };
    let (topic, fail) = (uri.topic.clone(), ctx.clone());
    let mut builder = OperatorBuilder::new("KafkaExactlyOnceSink".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let mut input = builder.new_input(stream, Pipeline);
    let mut control_input = builder.new_input(control, Pipeline);
    let (_output, done) = builder.new_output::<Vec<()>>();
    // Stays scheduled until every epoch's commit is confirmed.
    builder.build_reschedule(move |_caps| {
        let mut barrier: Barrier<Vec<(D, EventTime)>> = Barrier::default();
        let mut epochs = Epochs::new();
        let mut finished = false;
        let mut hold = restored_at;
        move |frontiers| {
            control_input.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            let control_frontier = frontiers[1].frontier().first().copied();
            let data_frontier = frontiers[0].frontier().first().copied();
            let add = |batch: Vec<(D, EventTime)>, epochs: &mut Epochs| {
                let rows = &mut epochs.current().rows;
                if let Err(e) = encode(&messages, &batch, rows) {
                    fail.fail(format!("cannot encode a record for {topic}: {e}"));
                }
                Metrics::add(&fail.metrics().records_out, batch.len() as u64);
            };
            input.for_each(|cap, data| {
                let time = *cap.least().expect("a message under a capability");
                if let Some(batch) = barrier.accept(time, std::mem::take(data), control_frontier) {
                    add(batch, &mut epochs);
                }
            });
            for step in barrier.steps(data_frontier, control_frontier) {
                match step {
                    Step::Data(batches) => batches.into_iter().for_each(|b| add(b, &mut epochs)),
                    Step::Snapshot(c) => {
                        let image = epochs.seal(c, committer.job);
                        snapshots.write(c, Vec::new(), part::encode(&image));
                    }
                }
            }
            // After a restore, new output waits until every worker has
            // recovered (the frontier cannot pass the restored checkpoint
            // before every worker has built its dataflow, and each worker
            // recovers before it builds), so that it follows the recovered
            // output of the keys that moved between workers in a rescale.
            if hold.is_some_and(|c| data_frontier.is_none_or(|f| f > c)) {
                hold = None;
            }
            if hold.is_none() {
                epochs.pump(&committer, |c| snapshots.is_complete(c));
            }
            if let Some(e) = committer.error() {
                fail.fail(format!("exactly-once sink for {topic}: {e}"));
                return false;
            }
            let ended = data_frontier.is_none() && control_frontier.is_none() && barrier.is_idle();
            if ended && !finished {
                if !epochs.current().rows.is_empty() {
                    fail.fail(format!(
                        "{topic}: output after the final checkpoint cannot be committed"
                    ));
                }
                if epochs.settled(&committer) {
                    finished = true;
                    committer.finish();
                    return false;
                }
            }
            if hold.is_some() || !epochs.settled(&committer) {
                activator.activate_after(Duration::from_millis(10));
            }
            !finished
        }
    });
    ctx.attach(done);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_keeps_every_unconfirmed_epoch() {
        let mut epochs = Epochs::new();
        epochs.current().rows.extend_from_slice(b"a\n");
        let first = epochs.seal(10, 7);
        assert_eq!(first.epochs, vec![(10, b"a\n".to_vec())]);
        epochs.current().rows.extend_from_slice(b"b\n");
        let second = epochs.seal(20, 7);
        assert_eq!(
            second.epochs,
            vec![(10, b"a\n".to_vec()), (20, b"b\n".to_vec())],
            "10 is not confirmed yet"
        );
        assert_eq!(second.job, 7);
    }
}
