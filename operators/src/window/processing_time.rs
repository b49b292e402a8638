//! Processing-time windows: records are grouped by the wall-clock time at
//! which they reach the operator, and a window fires when the wall clock
//! passes its end (or when the input ends).
//!
//! This is the explicit, non-deterministic alternative to event-time
//! windows: results depend on when records arrive, so two runs over the
//! same input may group them differently. Results are emitted at the
//! operator's current watermark.

use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::ExchangeData;

use super::state::{Triggers, WindowState};
use super::{Aggregate, KeyedStream, TumblingWindows, Window};
use crate::keyed::worker_for_key;
use crate::{EventStream, EventTime};

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<'scope, D, K, F> KeyedStream<'scope, D, F>
where
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    F: Fn(&D) -> K + Clone + 'static,
{
    /// Aggregates each key's records in tumbling windows of `size` of
    /// processing (wall-clock) time, aligned to the epoch; emits
    /// `(window, key, result)` when the wall clock passes a window's end.
    pub fn processing_time_aggregate<A>(
        self,
        size: Duration,
        agg: A,
    ) -> EventStream<'scope, (Window, K, A::Out)>
    where
        A: Aggregate<D>,
        A::Out: Clone + PartialEq,
    {
        crate::checkpoint::refuse_unsupported("a processing-time window");
        let KeyedStream { stream, key } = self;
        let scope = stream.scope();
        let peers = scope.peers();
        let route = key.clone();
        let pact =
            Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&route(data), peers));
        let assigner = TumblingWindows::of(size);
        stream.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(
            pact,
            "ProcessingTimeWindow",
            move |capability, info| {
                let activator = scope.activator_for(info.address);
                let mut capability = Some(capability);
                let mut state: WindowState<K, A::Acc, A::Out> =
                    WindowState::new(Triggers::default(), false);
                let agg = Rc::new(agg);
                let finisher = Rc::clone(&agg);
                let finish = move |_: &K, _: &Window, acc: &A::Acc| vec![finisher.result(acc)];
                move |(input, frontier), output| {
                    let now = wall_ms();
                    input.for_each(|_, data| {
                        for (record, _) in data.drain(..) {
                            let k = key(&record);
                            state.insert(&k, &record, now, 0, &assigner, &*agg);
                        }
                    });
                    let Some(cap) = capability.as_mut() else {
                        return;
                    };
                    let watermark = frontier.frontier().first().copied();
                    let time = *cap.time();
                    {
                        let mut session = output.session(cap);
                        let fire_upto = watermark.map(|_| now);
                        state.advance(fire_upto, &finish, &mut |w, k: &K, v, _diff| {
                            session.give(((w, k.clone(), v), time));
                        });
                    }
                    match watermark {
                        Some(wm) => {
                            cap.downgrade(&wm);
                            if !state.is_empty() {
                                let next_end = (now / assigner.size_ms() + 1) * assigner.size_ms();
                                activator.activate_after(Duration::from_millis(next_end - now));
                            }
                        }
                        None => capability = None,
                    }
                }
            },
        )
    }
}
