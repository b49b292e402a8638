//! Temporal (versioned) lookup join: each probe record meets the version of
//! its key's value that was current at the probe's event time.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::by_key;
use crate::window::KeyedStream;
use crate::{EventStream, EventTime};

/// Temporal lookup joins of a keyed stream against a keyed table of versions.
pub trait TemporalJoin<'scope, D, F> {
    /// Emits `join(key, probe, version)` for each probe record at its own
    /// event time, where `version` is the table record of the same key with
    /// the greatest time at or below the probe's (`None` if there is none;
    /// of equal-time versions the greatest by `Ord` wins). A probe waits until
    /// the table's watermark passes its time.
    ///
    /// ```
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    /// use tidewater_operators::{KeyBy, TemporalJoin};
    ///
    /// let captured = timely::example(|scope| {
    ///     // (currency, rate) versions and (currency, amount) orders
    ///     let rates = vec![(('€', 90u64), 0u64), (('€', 95), 10)].to_stream(scope).key_by(|r: &(char, u64)| r.0);
    ///     let orders = vec![(('€', 2u64), 5u64), (('€', 3), 12)].to_stream(scope).key_by(|o: &(char, u64)| o.0);
    ///     orders.temporal_join(rates, |_, order, rate| order.1 * rate.map_or(0, |r| r.1)).capture()
    /// });
    /// let mut joined: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
    /// joined.sort();
    /// assert_eq!(joined, vec![(180, 5), (285, 12)]);
    /// ```
    fn temporal_join<V, FV, K, O, J>(
        self,
        table: KeyedStream<'scope, V, FV>,
        join: J,
    ) -> EventStream<'scope, O>
    where
        V: ExchangeData + Ord,
        FV: Fn(&V) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D, Option<&V>) -> O + 'static;
}

impl<'scope, D: ExchangeData, F> TemporalJoin<'scope, D, F> for KeyedStream<'scope, D, F> {
    fn temporal_join<V, FV, K, O, J>(
        self,
        table: KeyedStream<'scope, V, FV>,
        join: J,
    ) -> EventStream<'scope, O>
    where
        V: ExchangeData + Ord,
        FV: Fn(&V) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D, Option<&V>) -> O + 'static,
    {
        crate::checkpoint::refuse_unsupported("the temporal join");
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (probe_key, table_key) = (self.key.clone(), table.key.clone());
        let mut builder = OperatorBuilder::new("TemporalJoin".to_owned(), scope);
        let mut probes_in = builder.new_input(self.stream, by_key(self.key, peers));
        let mut table_in = builder.new_input(table.stream, by_key(table.key, peers));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut capability = capabilities.pop();
            let mut probes: BTreeMap<EventTime, Vec<D>> = BTreeMap::new();
            let mut versions: HashMap<K, BTreeMap<EventTime, V>> = HashMap::new();
            move |frontiers| {
                probes_in.for_each(|_, data| {
                    for (probe, time) in data.drain(..) {
                        probes.entry(time).or_default().push(probe);
                    }
                });
                table_in.for_each(|_, data| {
                    for (version, time) in data.drain(..) {
                        let history = versions.entry(table_key(&version)).or_default();
                        match history.get(&time) {
                            Some(existing) if *existing >= version => {}
                            _ => {
                                history.insert(time, version);
                            }
                        }
                    }
                });
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                let table_frontier = table_in_frontier(&frontiers[1]);
                let ready = match table_frontier {
                    // probes strictly below the table's watermark are complete
                    Some(f) => {
                        let later = probes.split_off(&f);
                        std::mem::replace(&mut probes, later)
                    }
                    None => std::mem::take(&mut probes),
                };
                if !ready.is_empty() {
                    let mut output = output.activate();
                    let mut session = output.session(cap);
                    for (time, batch) in ready {
                        for probe in batch {
                            let k = probe_key(&probe);
                            let version = versions
                                .get(&k)
                                .and_then(|h| h.range(..=time).next_back())
                                .map(|(_, v)| v);
                            session.give((join(&k, &probe, version), time));
                        }
                    }
                }
                // Versions older than the newest one at or below every future
                // probe's time can no longer be looked up.
                let probe_frontier = frontiers[0].frontier().first().copied();
                let horizon = [probe_frontier, probes.first_key_value().map(|(t, _)| *t)]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(horizon) = horizon {
                    for history in versions.values_mut() {
                        if let Some((&current, _)) = history.range(..=horizon).next_back() {
                            let kept = history.split_off(&current);
                            *history = kept;
                        }
                    }
                }
                let hold = [horizon, table_frontier].into_iter().flatten().min();
                match (hold, probe_frontier.is_none() && probes.is_empty()) {
                    (_, true) => capability = None,
                    (Some(t), false) => cap.downgrade(&t.max(*cap.time())),
                    (None, false) => {}
                }
            }
        });
        stream
    }
}

fn table_in_frontier(
    frontier: &timely::progress::frontier::MutableAntichain<EventTime>,
) -> Option<EventTime> {
    frontier.frontier().first().copied()
}
