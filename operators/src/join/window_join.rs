//! Window join: records of two keyed streams in the same window, paired
//! when the watermark of both inputs passes the window's end.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::{by_key, Side};
use crate::checkpoint::{by_key_group, Barrier, Snapshots, Step};
use crate::window::{KeyedStream, Window, WindowAssigner};
use crate::{Context, EventStream, EventTime};

type Sides<K, D1, D2> = HashMap<K, (Vec<D1>, Vec<D2>)>;

/// One key's windows as a checkpoint holds them: `(window, lefts, rights)`.
type KeyWindows<D1, D2> = Vec<(Window, Vec<D1>, Vec<D2>)>;

/// Window joins of keyed streams.
pub trait WindowJoin<'scope, D1, F1> {
    /// For every window of `assigner` and key, emits `join(key, window, a,
    /// b)` for each pair of an `a` and a `b` in it, at the window's last
    /// millisecond, once both inputs' watermarks reach the window's end.
    fn window_join<D2, F2, K, W, O, J>(
        self,
        other: KeyedStream<'scope, D2, F2>,
        assigner: W,
        join: J,
    ) -> EventStream<'scope, O>
    where
        D2: ExchangeData + Clone,
        F2: Fn(&D2) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F1: Fn(&D1) -> K + Clone + 'static,
        W: WindowAssigner,
        O: 'static,
        J: Fn(&K, &Window, &D1, &D2) -> O + 'static;
}

impl<'scope, D1: ExchangeData + Clone, F1> WindowJoin<'scope, D1, F1>
    for KeyedStream<'scope, D1, F1>
{
    fn window_join<D2, F2, K, W, O, J>(
        self,
        other: KeyedStream<'scope, D2, F2>,
        assigner: W,
        join: J,
    ) -> EventStream<'scope, O>
    where
        D2: ExchangeData + Clone,
        F2: Fn(&D2) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F1: Fn(&D1) -> K + Clone + 'static,
        W: WindowAssigner,
        O: 'static,
        J: Fn(&K, &Window, &D1, &D2) -> O + 'static,
    {
        assert!(!assigner.merging(), "window joins need non-merging windows");
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (key1, key2) = (self.key.clone(), other.key.clone());
        let (snapshots, control) =
            Snapshots::attach(Context::current().as_ref(), scope, "window-join").unzip();
        let mut builder = OperatorBuilder::new("WindowJoin".to_owned(), scope);
        let mut input1 = builder.new_input(self.stream, by_key(self.key, peers));
        let mut input2 = builder.new_input(other.stream, by_key(other.key, peers));
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut windows: BTreeMap<EventTime, (Window, Sides<K, D1, D2>)> = BTreeMap::new();
            if let Some(snapshots) = &snapshots {
                if let Some(c) = snapshots.restored_at() {
                    let entries: Vec<(K, KeyWindows<D1, D2>)> =
                        snapshots.restored_entries().expect("a verified checkpoint part decodes");
                    for (k, list) in entries {
                        for (w, lefts, rights) in list {
                            let (_, sides) = windows.entry(w.end).or_insert_with(|| (w, HashMap::new()));
                            sides.insert(k.clone(), (lefts, rights));
                        }
                    }
                    capabilities.iter_mut().for_each(|cap| cap.downgrade(&c));
                }
            }
            let mut capability = capabilities.pop();
            let mut barrier: Barrier<Side<(D1, EventTime), (D2, EventTime)>> = Barrier::default();
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(2).and_then(|f| f.frontier().first().copied());
                let data = [frontiers[0].frontier().first(), frontiers[1].frontier().first()]
                    .into_iter()
                    .flatten()
                    .min()
                    .copied();
                let Some(cap) = capability.as_mut() else {
                    input1.for_each(|_, _| {});
                    input2.for_each(|_, _| {});
                    if let Some(snapshots) = &snapshots {
                        snapshots.write_remaining(&mut barrier);
                    }
                    return;
                };
                let add = |side: Side<(D1, EventTime), (D2, EventTime)>, windows: &mut BTreeMap<EventTime, (Window, Sides<K, D1, D2>)>| match side {
                    Side::Left(batch) => {
                        for (a, ta) in batch {
                            let k = key1(&a);
                            assigner.assign(ta, |w| {
                                let (_, sides) = windows.entry(w.end).or_insert_with(|| (w, HashMap::new()));
                                sides.entry(k.clone()).or_default().0.push(a.clone());
                            });
                        }
                    }
                    Side::Right(batch) => {
                        for (b, tb) in batch {
                            let k = key2(&b);
                            assigner.assign(tb, |w| {
                                let (_, sides) = windows.entry(w.end).or_insert_with(|| (w, HashMap::new()));
                                sides.entry(k.clone()).or_default().1.push(b.clone());
                            });
                        }
                    }
                };
                input1.for_each(|cap, d| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) = barrier.accept(time, Side::Left(std::mem::take(d)), control_frontier) {
                        add(side, &mut windows);
                    }
                });
                input2.for_each(|cap, d| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) = barrier.accept(time, Side::Right(std::mem::take(d)), control_frontier) {
                        add(side, &mut windows);
                    }
                });
                let mut output = output.activate();
                let mut session = output.session(cap);
                let mut fire = |windows: &mut BTreeMap<EventTime, (Window, Sides<K, D1, D2>)>, upto: Option<EventTime>| {
                    let pending = match upto {
                        Some(f) => windows.split_off(&f.saturating_add(1)),
                        None => BTreeMap::new(),
                    };
                    for (_, (window, sides)) in std::mem::replace(windows, pending) {
                        for (k, (lefts, rights)) in sides {
                            for a in &lefts {
                                for b in &rights {
                                    session.give((join(&k, &window, a, b), window.max_timestamp()));
                                }
                            }
                        }
                    }
                };
                for step in barrier.steps(data, control_frontier) {
                    match step {
                        Step::Data(items) => items.into_iter().for_each(|side| add(side, &mut windows)),
                        Step::Snapshot(c) => {
                            fire(&mut windows, Some(c));
                            if let Some(snapshots) = &snapshots {
                                #[allow(clippy::type_complexity)] // borrowed twin of KeyWindows
                                let mut per_key: HashMap<&K, Vec<(Window, &Vec<D1>, &Vec<D2>)>> = HashMap::new();
                                for (window, sides) in windows.values() {
                                    for (k, (lefts, rights)) in sides {
                                        per_key.entry(k).or_default().push((*window, lefts, rights));
                                    }
                                }
                                snapshots.write(c, by_key_group(per_key), Vec::new());
                            }
                        }
                    }
                }
                let frontier = barrier.frontier(data, control_frontier);
                fire(&mut windows, frontier);
                drop(session);
                match frontier {
                    Some(f) => {
                        if f > *cap.time() {
                            cap.downgrade(&f);
                        }
                    }
                    None => capability = None,
                }
            }
        });
        stream
    }
}
