//! Interval join: `a.key == b.key` and `b.time` in
//! `[a.time + lower, a.time + upper]`, emitted at the later of the two times.

use std::collections::HashMap;
use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::by_key;
use crate::window::KeyedStream;
use crate::{EventStream, EventTime};

/// Interval joins of keyed streams.
pub trait IntervalJoin<'scope, D1, F1> {
    /// Joins each `a` with every `b` of the same key whose time lies in
    /// `[a_time + lower, a_time + upper]` (bounds in ms, may be negative),
    /// emitting `join(key, a, b)` at `max(a_time, b_time)`. A record is kept
    /// until the other input's watermark passes the last time it can match.
    ///
    /// ```
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    /// use tidewater_operators::{IntervalJoin, KeyBy};
    ///
    /// let captured = timely::example(|scope| {
    ///     let clicks = vec![((1u32, 'a'), 1_000u64)].to_stream(scope).key_by(|c: &(u32, char)| c.0);
    ///     let buys = vec![((1u32, 10u64), 1_500u64), ((1, 20), 9_000)].to_stream(scope).key_by(|b: &(u32, u64)| b.0);
    ///     // purchases within 5 s after a click
    ///     clicks.interval_join(buys, 0, 5_000, |_, click, buy| (click.1, buy.1)).capture()
    /// });
    /// let joined: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
    /// assert_eq!(joined, vec![(('a', 10), 1_500)]);
    /// ```
    fn interval_join<D2, F2, K, O, J>(
        self,
        other: KeyedStream<'scope, D2, F2>,
        lower: i64,
        upper: i64,
        join: J,
    ) -> EventStream<'scope, O>
    where
        D2: ExchangeData + Clone,
        F2: Fn(&D2) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F1: Fn(&D1) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D1, &D2) -> O + 'static;
}

impl<'scope, D1: ExchangeData + Clone, F1> IntervalJoin<'scope, D1, F1>
    for KeyedStream<'scope, D1, F1>
{
    fn interval_join<D2, F2, K, O, J>(
        self,
        other: KeyedStream<'scope, D2, F2>,
        lower: i64,
        upper: i64,
        join: J,
    ) -> EventStream<'scope, O>
    where
        D2: ExchangeData + Clone,
        F2: Fn(&D2) -> K + Clone + 'static,
        K: ExchangeData + Hash + Eq + Clone,
        F1: Fn(&D1) -> K + Clone + 'static,
        O: 'static,
        J: Fn(&K, &D1, &D2) -> O + 'static,
    {
        crate::checkpoint::refuse_unsupported("the interval join");
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (key1, key2) = (self.key.clone(), other.key.clone());
        let mut builder = OperatorBuilder::new("IntervalJoin".to_owned(), scope);
        let mut input1 = builder.new_input(self.stream, by_key(self.key, peers));
        let mut input2 = builder.new_input(other.stream, by_key(other.key, peers));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut capability = capabilities.pop();
            let mut lefts: HashMap<K, Vec<(D1, EventTime)>> = HashMap::new();
            let mut rights: HashMap<K, Vec<(D2, EventTime)>> = HashMap::new();
            let in_range = move |ta: EventTime, tb: EventTime| {
                let d = tb as i128 - ta as i128;
                d >= lower as i128 && d <= upper as i128
            };
            move |frontiers| {
                let Some(cap) = capability.as_mut() else {
                    input1.for_each(|_, _| {});
                    input2.for_each(|_, _| {});
                    return;
                };
                {
                    let mut output = output.activate();
                    let mut session = output.session(cap);
                    input1.for_each(|_, data| {
                        for (a, ta) in data.drain(..) {
                            let k = key1(&a);
                            for (b, tb) in rights.get(&k).into_iter().flatten() {
                                if in_range(ta, *tb) {
                                    session.give((join(&k, &a, b), ta.max(*tb)));
                                }
                            }
                            lefts.entry(k).or_default().push((a, ta));
                        }
                    });
                    input2.for_each(|_, data| {
                        for (b, tb) in data.drain(..) {
                            let k = key2(&b);
                            for (a, ta) in lefts.get(&k).into_iter().flatten() {
                                if in_range(*ta, tb) {
                                    session.give((join(&k, a, &b), (*ta).max(tb)));
                                }
                            }
                            rights.entry(k).or_default().push((b, tb));
                        }
                    });
                }
                let f1 = frontiers[0].frontier().first().copied();
                let f2 = frontiers[1].frontier().first().copied();
                // An `a` can still match while some `b` at <= ta + upper may come.
                lefts.retain(|_, list| {
                    list.retain(|(_, ta)| {
                        f2.is_some_and(|f| (*ta as i128 + upper as i128) >= f as i128)
                    });
                    !list.is_empty()
                });
                rights.retain(|_, list| {
                    list.retain(|(_, tb)| {
                        f1.is_some_and(|f| (*tb as i128 - lower as i128) >= f as i128)
                    });
                    !list.is_empty()
                });
                match [f1, f2].into_iter().flatten().min() {
                    Some(f) => cap.downgrade(&f),
                    None => capability = None,
                }
            }
        });
        stream
    }
}
