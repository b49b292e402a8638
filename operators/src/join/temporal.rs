//! Temporal (versioned) lookup join: each probe record meets the version of
//! its key's value that was current at the probe's event time.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::{by_key, Side};
use crate::checkpoint::{by_key_group, Barrier, Snapshots, Step};
use crate::window::KeyedStream;
use crate::{Context, EventStream, EventTime};

/// A key's pending probes `(time, probe)` and table versions `(time, version)`.
type KeyImage<D, V> = (Vec<(EventTime, D)>, Vec<(EventTime, V)>);

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
        V: ExchangeData + Ord + Clone,
        FV: Fn(&V) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D, Option<&V>) -> O + 'static;
}

impl<'scope, D: ExchangeData + Clone, F> TemporalJoin<'scope, D, F> for KeyedStream<'scope, D, F> {
    fn temporal_join<V, FV, K, O, J>(
        self,
        table: KeyedStream<'scope, V, FV>,
        join: J,
    ) -> EventStream<'scope, O>
    where
        V: ExchangeData + Ord + Clone,
        FV: Fn(&V) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F: Fn(&D) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D, Option<&V>) -> O + 'static,
    {
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (probe_key, table_key) = (self.key.clone(), table.key.clone());
        let (snapshots, control) =
            Snapshots::attach(Context::current().as_ref(), scope, "temporal-join").unzip();
        let mut builder = OperatorBuilder::new("TemporalJoin".to_owned(), scope);
        let mut probes_in = builder.new_input(self.stream, by_key(self.key, peers));
        let mut table_in = builder.new_input(table.stream, by_key(table.key, peers));
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut probes: BTreeMap<EventTime, Vec<D>> = BTreeMap::new();
            let mut versions: HashMap<K, BTreeMap<EventTime, V>> = HashMap::new();
            if let Some(snapshots) = &snapshots {
                if let Some(c) = snapshots.restored_at() {
                    let entries: Vec<(K, KeyImage<D, V>)> = snapshots
                        .restored_entries()
                        .expect("a verified checkpoint part decodes");
                    for (k, (pending, history)) in entries {
                        for (t, probe) in pending {
                            probes.entry(t).or_default().push(probe);
                        }
                        versions.insert(k, history.into_iter().collect());
                    }
                    capabilities.iter_mut().for_each(|cap| cap.downgrade(&c));
                }
            }
            let mut capability = capabilities.pop();
            let mut barrier: Barrier<Side<(D, EventTime), (V, EventTime)>> = Barrier::default();
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(2).and_then(|f| f.frontier().first().copied());
                let probe_frontier = frontiers[0].frontier().first().copied();
                let table_frontier = frontiers[1].frontier().first().copied();
                let Some(cap) = capability.as_mut() else {
                    probes_in.for_each(|_, _| {});
                    table_in.for_each(|_, _| {});
                    if let Some(snapshots) = &snapshots {
                        snapshots.write_remaining(&mut barrier);
                    }
                    return;
                };
                let add =
                    |side: Side<(D, EventTime), (V, EventTime)>,
                     probes: &mut BTreeMap<EventTime, Vec<D>>,
                     versions: &mut HashMap<K, BTreeMap<EventTime, V>>| {
                        match side {
                            Side::Left(batch) => {
                                for (probe, time) in batch {
                                    probes.entry(time).or_default().push(probe);
                                }
                            }
                            Side::Right(batch) => {
                                for (version, time) in batch {
                                    let history = versions.entry(table_key(&version)).or_default();
                                    match history.get(&time) {
                                        Some(existing) if *existing >= version => {}
                                        _ => {
                                            history.insert(time, version);
                                        }
                                    }
                                }
                            }
                        }
                    };
                probes_in.for_each(|cap, d| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) =
                        barrier.accept(time, Side::Left(std::mem::take(d)), control_frontier)
                    {
                        add(side, &mut probes, &mut versions);
                    }
                });
                table_in.for_each(|cap, d| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) =
                        barrier.accept(time, Side::Right(std::mem::take(d)), control_frontier)
                    {
                        add(side, &mut probes, &mut versions);
                    }
                });
                let mut output = output.activate();
                let mut session = output.session(cap);
                // Probes strictly below `complete` meet their version.
                let mut answer = |probes: &mut BTreeMap<EventTime, Vec<D>>,
                                  versions: &HashMap<K, BTreeMap<EventTime, V>>,
                                  complete: Option<EventTime>| {
                    let ready = match complete {
                        Some(f) => {
                            let later = probes.split_off(&f);
                            std::mem::replace(probes, later)
                        }
                        None => std::mem::take(probes),
                    };
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
                };
                let data = [probe_frontier, table_frontier].into_iter().flatten().min();
                for step in barrier.steps(data, control_frontier) {
                    match step {
                        Step::Data(items) => items
                            .into_iter()
                            .for_each(|side| add(side, &mut probes, &mut versions)),
                        Step::Snapshot(c) => {
                            answer(&mut probes, &versions, Some(c));
                            if let Some(snapshots) = &snapshots {
                                let mut per_key: HashMap<K, KeyImage<D, V>> = HashMap::new();
                                for (t, batch) in &probes {
                                    for probe in batch {
                                        per_key
                                            .entry(probe_key(probe))
                                            .or_default()
                                            .0
                                            .push((*t, probe.clone()));
                                    }
                                }
                                for (k, history) in &versions {
                                    per_key.entry(k.clone()).or_default().1 =
                                        history.iter().map(|(t, v)| (*t, v.clone())).collect();
                                }
                                snapshots.write(c, by_key_group(per_key), Vec::new());
                            }
                        }
                    }
                }
                let table_complete = barrier.frontier(table_frontier, control_frontier);
                answer(&mut probes, &versions, table_complete);
                drop(session);
                // Versions older than the newest one at or below every future
                // probe's time can no longer be looked up.
                let probe_complete = barrier.frontier(probe_frontier, control_frontier);
                let horizon = [probe_complete, probes.first_key_value().map(|(t, _)| *t)]
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
                let hold = [horizon, table_complete].into_iter().flatten().min();
                match (hold, probe_complete.is_none() && probes.is_empty()) {
                    (_, true) => capability = None,
                    (Some(t), false) => {
                        if t > *cap.time() {
                            cap.downgrade(&t);
                        }
                    }
                    (None, false) => {}
                }
            }
        });
        stream
    }
}
