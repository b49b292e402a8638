//! Changelogs in and out: append streams into collections, collections
//! back into `+row`/`-row` changes or upserts that sinks can write.
//!
//! Out, each event time's changes are consolidated and emitted once, when
//! the watermark passes that time: a changelog never shows a row inserted
//! and retracted within the same time, and concatenating a changelog's
//! changes up to `t` gives the view as of `t`. Everything one activation
//! completes goes out under one capability, held at the oldest pending
//! time. With checkpoints, changelogs are the output boundary described in
//! [`super::checkpoint`].

use std::collections::{BTreeMap, HashMap};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, Hashable};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Capability;

use super::{checkpoint, Collection, Data, Diff};
use crate::checkpoint::{Barrier, Snapshots, Step};
use crate::{Context, EventStream, EventTime};

/// Append streams as collections.
pub trait ToCollection<'scope, D: Data> {
    /// Each record `(data, event_time)` becomes the insertion of `data` at
    /// `event_time`. With checkpoints, the collection's input boundary is
    /// snapshotted (see [`super::checkpoint`]).
    ///
    /// ```
    /// use timely::dataflow::operators::ToStream;
    /// use tidewater_operators::relational::{GroupBy, ToCollection};
    ///
    /// timely::example(|scope| {
    ///     // ((user, clicks), event time)
    ///     vec![((1u32, 3u64), 1_000u64), ((2, 5), 2_000), ((1, 4), 3_000)]
    ///         .to_stream(scope)
    ///         .to_collection()
    ///         .count_by_key()
    ///         .inspect(|update| println!("{update:?}"));
    /// });
    /// ```
    fn to_collection(self) -> Collection<'scope, D>;
}

impl<'scope, D: Data> ToCollection<'scope, D> for EventStream<'scope, D> {
    fn to_collection(self) -> Collection<'scope, D> {
        let collection = self.map(|(d, t)| (d, t, 1)).as_collection();
        checkpoint::input_boundary(collection)
    }
}

/// Collections as changelogs.
pub trait ToChangelog<'scope, D: Data> {
    /// The changes of the collection, `(row, diff)` at each event time,
    /// consolidated per time (each row's changes on one worker).
    fn changes(self) -> EventStream<'scope, (D, i64)>;

    /// The collection's contents once its input has ended (a bounded job's
    /// final view): each row as often as its multiplicity, at the last
    /// watermark before the end.
    fn final_view(self) -> EventStream<'scope, D>;
}

impl<'scope, D: Data> ToChangelog<'scope, D> for Collection<'scope, D> {
    fn changes(self) -> EventStream<'scope, (D, i64)> {
        changelog(
            self,
            |d: &D| d.hashed(),
            |time, updates, out| {
                out.extend(updates.into_iter().map(|(d, r)| ((d, r as i64), time)));
            },
        )
    }

    fn final_view(self) -> EventStream<'scope, D> {
        let route = Exchange::new(|(d, _, _): &(D, EventTime, Diff)| d.hashed());
        self.inner
            .unary_frontier::<CapacityContainerBuilder<Vec<(D, EventTime)>>, _, _, _>(
                route,
                "FinalView",
                |_, _| {
                    let mut view: HashMap<D, Diff> = HashMap::new();
                    let mut held: Option<Capability<EventTime>> = None;
                    move |(input, frontier), output| {
                        input.for_each(|cap, data| {
                            if held.is_none() {
                                held = cap.retain_least(0);
                            }
                            for (d, _, r) in data.drain(..) {
                                *view.entry(d).or_default() += r;
                            }
                        });
                        // The held capability follows the frontier, so that
                        // the view holds back neither flow control nor
                        // checkpoints downstream.
                        if let (Some(cap), Some(f)) = (held.as_mut(), frontier.frontier().first()) {
                            if f > cap.time() {
                                cap.downgrade(f);
                            }
                        }
                        if frontier.is_empty() {
                            if let Some(cap) = held.take() {
                                let time = *cap.time();
                                let rows = view.drain().flat_map(|(d, r)| {
                                    std::iter::repeat_n(d, r.max(0) as usize)
                                        .map(move |d| (d, time))
                                });
                                output.session(&cap).give_iterator(rows);
                            }
                        }
                    }
                },
            )
    }
}

/// Keyed collections as keyed changelogs.
pub trait ToKeyedChangelog<'scope, K: Data, V: Data> {
    /// The changes `(key, value, diff)` at each event time, each key's on
    /// one worker: the input of a Kafka changelog sink
    /// (`KafkaSink::write_changes`).
    fn changes_by_key(self) -> EventStream<'scope, (K, V, i64)>;

    /// Upserts `(key, Some(value))` for a key's new value at each event time
    /// and `(key, None)` for a key that has no value any more (a tombstone).
    /// A key with several values upserts the greatest.
    fn upserts(self) -> EventStream<'scope, (K, Option<V>)>;
}

impl<'scope, K: Data, V: Data> ToKeyedChangelog<'scope, K, V> for Collection<'scope, (K, V)> {
    fn changes_by_key(self) -> EventStream<'scope, (K, V, i64)> {
        changelog(
            self,
            |(k, _): &(K, V)| k.hashed(),
            |time, updates, out| {
                out.extend(
                    updates
                        .into_iter()
                        .map(|((k, v), r)| ((k, v, r as i64), time)),
                );
            },
        )
    }

    fn upserts(self) -> EventStream<'scope, (K, Option<V>)> {
        changelog(
            self,
            |(k, _): &(K, V)| k.hashed(),
            |time, updates, out| {
                // Consolidated and sorted: a key's changes are adjacent, values in order.
                let mut current: Option<(K, Option<V>)> = None;
                for ((k, v), r) in updates {
                    match &mut current {
                        Some((key, value)) if *key == k => {
                            if r > 0 {
                                *value = Some(v);
                            }
                        }
                        _ => {
                            out.extend(current.take().map(|kv| (kv, time)));
                            current = Some((k, (r > 0).then_some(v)));
                        }
                    }
                }
                out.extend(current.map(|kv| (kv, time)));
            },
        )
    }
}

type Emit<D, O> = fn(EventTime, Vec<(D, Diff)>, &mut Vec<(O, EventTime)>);

/// The consolidating changelog operator: buffers updates by event time and
/// emits each time's consolidated updates, through `emit`, once the
/// watermark (and, with checkpoints, every pending checkpoint and the
/// control frontier) has passed it.
fn changelog<'scope, D, O, H>(
    collection: Collection<'scope, D>,
    route: H,
    emit: Emit<D, O>,
) -> EventStream<'scope, O>
where
    D: Data,
    O: Clone + 'static,
    H: Fn(&D) -> u64 + 'static,
{
    let scope = collection.inner.scope();
    let (snapshots, control) =
        Snapshots::attach(Context::current().as_ref(), scope, "changelog").unzip();
    let mut builder = OperatorBuilder::new("Changelog".to_owned(), scope);
    let mut input = builder.new_input(
        collection.inner,
        Exchange::new(move |(d, _, _): &(D, EventTime, Diff)| route(d)),
    );
    let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
    let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);

    builder.build(move |_| {
        // A restored changelog drops the recomputed changes below C.
        let restored_below = snapshots.as_ref().and_then(Snapshots::restored_at);
        let mut pending: BTreeMap<EventTime, Vec<(D, Diff)>> = BTreeMap::new();
        let mut held: Option<Capability<EventTime>> = None;
        let mut barrier: Barrier<()> = Barrier::default();
        move |frontiers| {
            if let Some(control) = control_input.as_mut() {
                control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            }
            input.for_each(|cap, data| {
                let time: EventTime = *cap.least().expect("a message under a capability");
                if held
                    .as_ref()
                    .is_none_or(|h: &Capability<EventTime>| time < *h.time())
                {
                    held = cap.retain_least(0);
                }
                for (d, t, r) in data.drain(..) {
                    if restored_below.is_none_or(|c| t >= c) {
                        pending.entry(t).or_default().push((d, r));
                    }
                }
            });
            let data_frontier = frontiers[0].frontier().first().copied();
            let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
            for step in barrier.steps(data_frontier, control_frontier) {
                if let (Step::Snapshot(c), Some(snapshots)) = (step, &snapshots) {
                    flush(
                        &mut pending,
                        Some(c),
                        &mut held,
                        data_frontier,
                        &mut output,
                        emit,
                    );
                    snapshots.write(c, Vec::new(), Vec::new());
                }
            }
            let upto = barrier.frontier(data_frontier, control_frontier);
            flush(
                &mut pending,
                upto,
                &mut held,
                data_frontier,
                &mut output,
                emit,
            );
            if data_frontier.is_none() {
                if let Some(snapshots) = &snapshots {
                    snapshots.write_remaining(&mut barrier);
                }
            }
        }
    });
    stream
}

/// Emits the consolidated updates of every pending time below `upto`,
/// then moves the held capability up to the oldest pending time (or drops
/// it), so that nothing emitted later travels below a snapshot already
/// taken.
fn flush<D: Data, O: Clone + 'static>(
    pending: &mut BTreeMap<EventTime, Vec<(D, Diff)>>,
    upto: Option<EventTime>,
    held: &mut Option<Capability<EventTime>>,
    data_frontier: Option<EventTime>,
    output: &mut OutputBuilder<EventTime, CapacityContainerBuilder<Vec<(O, EventTime)>>>,
    emit: Emit<D, O>,
) {
    let ready: Vec<EventTime> = pending
        .keys()
        .copied()
        .take_while(|t| upto.is_none_or(|u| *t < u))
        .collect();
    if !ready.is_empty() {
        let cap = held.as_ref().expect("pending updates hold a capability");
        let mut out = Vec::new();
        for time in ready {
            let mut updates = pending.remove(&time).unwrap_or_default();
            consolidate(&mut updates);
            emit(time, updates, &mut out);
        }
        output.activate().session(cap).give_container(&mut out);
    }
    let Some(oldest) = pending.keys().next().copied() else {
        *held = None;
        return;
    };
    let next = data_frontier.map_or(oldest, |f| f.min(oldest));
    if let Some(cap) = held.as_mut().filter(|cap| next > *cap.time()) {
        cap.downgrade(&next);
    }
}
