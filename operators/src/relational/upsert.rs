//! The upsert source: a stream of `(key, Some(value))` and `(key, None)`
//! records — a compacted topic, a CDC feed — as a table of each key's
//! latest value, a `None` (tombstone) deleting the key.
//!
//! Upserts apply in event-time order; of two upserts of one key at the same
//! time the greater `Option<V>` wins (a value beats a tombstone), as in
//! differential's `arrange_from_upsert`, which maintains the table.
//!
//! With checkpoints, the upserts pass through a boundary whose snapshot at
//! `C` holds, per key group, each key's value as of `C` and the upserts
//! at `C` and later that arrived before it: state bounded by the live
//! keys, not by the number of upserts. A restored boundary re-sends them
//! (the values as of `C` at `C - 1`) and the table is rebuilt from them.

use std::collections::{BTreeMap, HashMap};

use differential_dataflow::operators::arrange::upsert::arrange_from_upsert;
use differential_dataflow::trace::implementations::ValBuilder;
use differential_dataflow::Hashable;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Map;

use super::table::Spine;
use super::{Data, Table};
use crate::checkpoint::{by_key_group, Barrier, Snapshots, Step};
use crate::{Context, EventStream, EventTime};

/// Upsert streams as tables.
///
/// ```
/// use timely::dataflow::operators::ToStream;
/// use tidewater_operators::relational::UpsertStream;
///
/// timely::example(|scope| {
///     // ((order, status), event time): order 2 is deleted at 3 s
///     vec![((1u64, Some(10u8)), 1_000u64), ((1, Some(20)), 2_000), ((2, Some(10)), 2_000), ((2, None), 3_000)]
///         .to_stream(scope)
///         .upsert_table()
///         .to_collection()
///         .inspect(|update| println!("{update:?}")); // in the end: only (1, 20)
/// });
/// ```
pub trait UpsertStream<'scope, K: Data, V: Data> {
    /// The table of each key's latest value.
    fn upsert_table(self) -> Table<'scope, K, V>;
}

impl<'scope, K: Data, V: Data> UpsertStream<'scope, K, V> for EventStream<'scope, (K, Option<V>)> {
    fn upsert_table(self) -> Table<'scope, K, V> {
        let upserts = boundary(self).map(|((k, v), t)| (k, v, t));
        Table::from_arranged(arrange_from_upsert::<
            ValBuilder<K, V, EventTime, isize>,
            Spine<K, V>,
            K,
            V,
        >(upserts, "Upsert"))
    }
}

/// Each key's upserts by time, ties resolved as the table resolves them.
type Latest<K, V> = HashMap<K, BTreeMap<EventTime, Option<V>>>;
/// Upsert records as they travel.
type Upserts<K, V> = Vec<((K, Option<V>), EventTime)>;
/// A key's upserts as a snapshot holds them.
type Saved<K, V> = (K, Vec<(EventTime, Option<V>)>);

fn fold<K: Data, V: Data>(latest: &mut Latest<K, V>, batch: Upserts<K, V>) {
    for ((k, v), t) in batch {
        let slot = latest.entry(k).or_default().entry(t).or_insert(None);
        if v > *slot {
            *slot = v;
        }
    }
}

/// Keeps, per key, the value as of `c` (at `c - 1`; a tombstone is
/// dropped) and the upserts at `c` and later.
fn compact<K: Data, V: Data>(latest: &mut Latest<K, V>, c: EventTime) {
    latest.retain(|_, upserts| {
        let later = upserts.split_off(&c);
        let current = upserts.pop_last().and_then(|(_, v)| v);
        *upserts = later;
        if let Some(v) = current {
            upserts.insert(c.saturating_sub(1), Some(v));
        }
        !upserts.is_empty()
    });
}

/// The upsert boundary: routes upserts by key and, with checkpoints,
/// snapshots and restores them (see the module docs).
fn boundary<'scope, K: Data, V: Data>(
    upserts: EventStream<'scope, (K, Option<V>)>,
) -> EventStream<'scope, (K, Option<V>)> {
    let scope = upserts.scope();
    let Some((snapshots, control)) =
        Snapshots::attach(Context::current().as_ref(), scope, "upsert")
    else {
        return upserts;
    };
    let mut builder = OperatorBuilder::new("UpsertBoundary".to_owned(), scope);
    let route = Exchange::new(|((k, _), _): &((K, Option<V>), EventTime)| k.hashed());
    let mut input = builder.new_input(upserts, route);
    let mut control = builder.new_input(control, Pipeline);
    let (output, stream) = builder.new_output::<Upserts<K, V>>();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);

    builder.build(move |mut capabilities| {
        let mut latest: Latest<K, V> = HashMap::new();
        let mut restore = None;
        if let Some(c) = snapshots.restored_at() {
            let restored: Vec<Saved<K, V>> = snapshots
                .restored_entries()
                .expect("a verified checkpoint part decodes");
            for (k, upserts) in restored {
                latest.insert(k, upserts.into_iter().collect());
            }
            capabilities[0].downgrade(&c.saturating_sub(1));
            restore = Some(capabilities.pop().expect("one output"));
        }
        let mut barrier: Barrier<Upserts<K, V>> = Barrier::default();
        move |frontiers| {
            control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            let control_frontier = frontiers[1].frontier().first().copied();
            let data_frontier = frontiers[0].frontier().first().copied();
            let mut output = output.activate();
            if let Some(cap) = restore.take() {
                let mut restored: Vec<_> = latest
                    .iter()
                    .flat_map(|(k, upserts)| {
                        upserts
                            .iter()
                            .map(move |(t, v)| ((k.clone(), v.clone()), *t))
                    })
                    .collect();
                output.session(&cap).give_container(&mut restored);
            }
            input.for_each(|cap, data| {
                let time = *cap.least().expect("a message under a capability");
                if let Some(batch) = barrier.accept(time, data.clone(), control_frontier) {
                    fold(&mut latest, batch);
                }
                output.session(&cap).give_container(data);
            });
            for step in barrier.steps(data_frontier, control_frontier) {
                match step {
                    Step::Data(batches) => batches.into_iter().for_each(|b| fold(&mut latest, b)),
                    Step::Snapshot(c) => {
                        compact(&mut latest, c);
                        let entries = latest.iter().map(|(k, upserts)| {
                            (
                                k.clone(),
                                upserts
                                    .iter()
                                    .map(|(t, v)| (*t, v.clone()))
                                    .collect::<Vec<_>>(),
                            )
                        });
                        snapshots.write(c, by_key_group(entries), Vec::new());
                    }
                }
            }
        }
    });
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_keeps_the_value_as_of_the_checkpoint_and_later_upserts() {
        let mut latest: Latest<u32, u32> = HashMap::new();
        fold(
            &mut latest,
            vec![
                ((1, Some(10)), 5),
                ((1, Some(11)), 8),
                ((1, Some(12)), 12),
                ((2, Some(20)), 3),
                ((2, None), 9),
                ((3, None), 4),
                ((4, None), 7),
                ((4, Some(30)), 7),
            ],
        );
        compact(&mut latest, 10);
        let mut state: Vec<_> = latest
            .iter()
            .map(|(k, u)| (*k, u.iter().map(|(t, v)| (*t, *v)).collect::<Vec<_>>()))
            .collect();
        state.sort();
        assert_eq!(
            state,
            vec![
                (1, vec![(9, Some(11)), (12, Some(12))]),
                (4, vec![(9, Some(30))]),
            ]
        );
    }
}
