//! Interval join: `a.key == b.key` and `b.time` in
//! `[a.time + lower, a.time + upper]`, emitted at the later of the two times.

use std::collections::HashMap;
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

/// Per key, the buffered records of each side with their times.
type Buffers<K, D1, D2> = HashMap<K, (Vec<(D1, EventTime)>, Vec<(D2, EventTime)>)>;

/// Drops what can no longer match: an `a` once no `b` at or below
/// `ta + upper` can come, a `b` once no `a` at or below `tb - lower` can.
fn evict<K, D1, D2>(
    sides: &mut Buffers<K, D1, D2>,
    f1: Option<EventTime>,
    f2: Option<EventTime>,
    lower: i64,
    upper: i64,
) {
    sides.retain(|_, (lefts, rights)| {
        lefts.retain(|(_, ta)| f2.is_some_and(|f| (*ta as i128 + upper as i128) >= f as i128));
        rights.retain(|(_, tb)| f1.is_some_and(|f| (*tb as i128 - lower as i128) >= f as i128));
        !lefts.is_empty() || !rights.is_empty()
    });
}

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
        let scope = self.stream.scope();
        let peers = scope.peers();
        let (key1, key2) = (self.key.clone(), other.key.clone());
        let (snapshots, control) =
            Snapshots::attach(Context::current().as_ref(), scope, "interval-join").unzip();
        let mut builder = OperatorBuilder::new("IntervalJoin".to_owned(), scope);
        let mut input1 = builder.new_input(self.stream, by_key(self.key, peers));
        let mut input2 = builder.new_input(other.stream, by_key(other.key, peers));
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (output, stream) = builder.new_output::<Vec<(O, EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut sides: Buffers<K, D1, D2> = HashMap::new();
            if let Some(snapshots) = &snapshots {
                if let Some(c) = snapshots.restored_at() {
                    sides.extend(
                        snapshots
                            .restored_entries()
                            .expect("a verified checkpoint part decodes"),
                    );
                    capabilities.iter_mut().for_each(|cap| cap.downgrade(&c));
                }
            }
            let mut capability = capabilities.pop();
            let mut barrier: Barrier<Side<(D1, EventTime), (D2, EventTime)>> = Barrier::default();
            let in_range = move |ta: EventTime, tb: EventTime| {
                let d = tb as i128 - ta as i128;
                d >= lower as i128 && d <= upper as i128
            };
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(2).and_then(|f| f.frontier().first().copied());
                let f1 = frontiers[0].frontier().first().copied();
                let f2 = frontiers[1].frontier().first().copied();
                let Some(cap) = capability.as_mut() else {
                    input1.for_each(|_, _| {});
                    input2.for_each(|_, _| {});
                    if let Some(snapshots) = &snapshots {
                        snapshots.write_remaining(&mut barrier);
                    }
                    return;
                };
                let mut output = output.activate();
                let mut session = output.session(cap);
                let mut handle =
                    |side: Side<(D1, EventTime), (D2, EventTime)>,
                     sides: &mut Buffers<K, D1, D2>| match side {
                        Side::Left(batch) => {
                            for (a, ta) in batch {
                                let k = key1(&a);
                                let entry = sides.entry(k.clone()).or_default();
                                for (b, tb) in &entry.1 {
                                    if in_range(ta, *tb) {
                                        session.give((join(&k, &a, b), ta.max(*tb)));
                                    }
                                }
                                entry.0.push((a, ta));
                            }
                        }
                        Side::Right(batch) => {
                            for (b, tb) in batch {
                                let k = key2(&b);
                                let entry = sides.entry(k.clone()).or_default();
                                for (a, ta) in &entry.0 {
                                    if in_range(*ta, tb) {
                                        session.give((join(&k, a, &b), (*ta).max(tb)));
                                    }
                                }
                                entry.1.push((b, tb));
                            }
                        }
                    };
                input1.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) =
                        barrier.accept(time, Side::Left(std::mem::take(data)), control_frontier)
                    {
                        handle(side, &mut sides);
                    }
                });
                input2.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(side) =
                        barrier.accept(time, Side::Right(std::mem::take(data)), control_frontier)
                    {
                        handle(side, &mut sides);
                    }
                });
                let data = [f1, f2].into_iter().flatten().min();
                for step in barrier.steps(data, control_frontier) {
                    match step {
                        Step::Data(items) => {
                            items.into_iter().for_each(|side| handle(side, &mut sides))
                        }
                        Step::Snapshot(c) => {
                            evict(&mut sides, Some(c), Some(c), lower, upper);
                            if let Some(snapshots) = &snapshots {
                                snapshots.write(c, by_key_group(sides.iter()), Vec::new());
                            }
                        }
                    }
                }
                drop(session);
                let f1 = barrier.frontier(f1, control_frontier);
                let f2 = barrier.frontier(f2, control_frontier);
                evict(&mut sides, f1, f2, lower, upper);
                match [f1, f2].into_iter().flatten().min() {
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
