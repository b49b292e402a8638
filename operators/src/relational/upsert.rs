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
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;

use super::checkpoint::{self, BoundaryState};
use super::table::Spine;
use super::{Data, Table};
use crate::checkpoint::{by_key_group, Snapshots};
use crate::keyed::worker_for_key;
use crate::{EventStream, EventTime};

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

impl<K: Data, V: Data> BoundaryState for Latest<K, V> {
    type Record = ((K, Option<V>), EventTime);

    fn restore(snapshots: &Snapshots, _c: EventTime) -> (Self, Upserts<K, V>) {
        let restored: Vec<Saved<K, V>> = snapshots
            .restored_entries()
            .expect("a verified checkpoint part decodes");
        let latest: Latest<K, V> = restored
            .into_iter()
            .map(|(k, upserts)| (k, upserts.into_iter().collect()))
            .collect();
        let records = latest
            .iter()
            .flat_map(|(k, upserts)| {
                upserts
                    .iter()
                    .map(move |(t, v)| ((k.clone(), v.clone()), *t))
            })
            .collect();
        (latest, records)
    }

    fn fold(&mut self, batch: Upserts<K, V>) {
        fold(self, batch)
    }

    fn snapshot(&mut self, c: EventTime) -> Vec<(u64, Vec<u8>)> {
        compact(self, c);
        by_key_group(self.iter().map(|(k, upserts)| {
            let upserts: Vec<(EventTime, Option<V>)> =
                upserts.iter().map(|(t, v)| (*t, v.clone())).collect();
            (k.clone(), upserts)
        }))
    }
}

/// The upsert boundary, with checkpoints: routes upserts by key group, so
/// that each key's upserts — before and after a restore, which hands each
/// worker the key groups it owns — meet in one worker's state, and
/// snapshots and restores them (see the module docs).
fn boundary<'scope, K: Data, V: Data>(
    upserts: EventStream<'scope, (K, Option<V>)>,
) -> EventStream<'scope, (K, Option<V>)> {
    let peers = upserts.scope().peers();
    let route =
        Exchange::new(move |((k, _), _): &((K, Option<V>), EventTime)| worker_for_key(k, peers));
    checkpoint::boundary::<Latest<K, V>, _>(upserts.clone(), route, "upsert").unwrap_or(upserts)
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
