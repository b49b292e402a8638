//! Window join: records of two keyed streams in the same window, paired
//! when the watermark of both inputs passes the window's end.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::by_key;
use crate::window::{KeyedStream, Window, WindowAssigner};
use crate::{EventStream, EventTime};

type Sides<K, D1, D2> = HashMap<K, (Vec<D1>, Vec<D2>)>;

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
        crate::checkpoint::refuse_unsupported("the window join");
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (key1, key2) = (self.key.clone(), other.key.clone());
        let mut builder = OperatorBuilder::new("WindowJoin".to_owned(), scope);
        let mut input1 = builder.new_input(self.stream, by_key(self.key, peers));
        let mut input2 = builder.new_input(other.stream, by_key(other.key, peers));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut capability = capabilities.pop();
            let mut windows: BTreeMap<EventTime, (Window, Sides<K, D1, D2>)> = BTreeMap::new();
            move |frontiers| {
                input1.for_each(|_, data| {
                    for (a, ta) in data.drain(..) {
                        let k = key1(&a);
                        assigner.assign(ta, |w| {
                            let (_, sides) =
                                windows.entry(w.end).or_insert_with(|| (w, HashMap::new()));
                            sides.entry(k.clone()).or_default().0.push(a.clone());
                        });
                    }
                });
                input2.for_each(|_, data| {
                    for (b, tb) in data.drain(..) {
                        let k = key2(&b);
                        assigner.assign(tb, |w| {
                            let (_, sides) =
                                windows.entry(w.end).or_insert_with(|| (w, HashMap::new()));
                            sides.entry(k.clone()).or_default().1.push(b.clone());
                        });
                    }
                });
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                let frontier = [
                    frontiers[0].frontier().first(),
                    frontiers[1].frontier().first(),
                ]
                .into_iter()
                .flatten()
                .min()
                .copied();
                let pending = match frontier {
                    Some(f) => windows.split_off(&(f + 1)),
                    None => BTreeMap::new(),
                };
                let complete = std::mem::replace(&mut windows, pending);
                if !complete.is_empty() {
                    let mut output = output.activate();
                    let mut session = output.session(cap);
                    for (_, (window, sides)) in complete {
                        for (k, (lefts, rights)) in sides {
                            for a in &lefts {
                                for b in &rights {
                                    session.give((join(&k, &window, a, b), window.max_timestamp()));
                                }
                            }
                        }
                    }
                }
                match frontier {
                    Some(f) => cap.downgrade(&f),
                    None => capability = None,
                }
            }
        });
        stream
    }
}
