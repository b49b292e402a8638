//! Processing-time windows: records are grouped by the wall-clock time at
//! which they reach the operator, and a window fires when the wall clock
//! passes its end (or when the input ends).
//!
//! This is the explicit, non-deterministic alternative to event-time
//! windows: results depend on when records arrive, so two runs over the
//! same input may group them differently. Results are emitted at the
//! operator's current watermark. With checkpoints the open windows are
//! written like event-time windows'; after a restore they fire by the wall
//! clock as usual.

use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::state::{Triggers, WindowState};
use super::{Aggregate, KeyedStream, TumblingWindows, Window};
use crate::checkpoint::{Barrier, Snapshots, Step};
use crate::keyed::worker_for_key;
use crate::{Context, EventStream, EventTime};

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
        A::Out: ExchangeData + Clone + PartialEq,
    {
        let KeyedStream { stream, key } = self;
        let scope = stream.scope();
        let peers = scope.peers();
        let route = key.clone();
        let pact =
            Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&route(data), peers));
        let assigner = TumblingWindows::of(size);
        let (snapshots, control) =
            Snapshots::attach(Context::current().as_ref(), scope, "processing-window").unzip();
        let mut builder = OperatorBuilder::new("ProcessingTimeWindow".to_owned(), scope);
        let info = builder.operator_info();
        let activator = scope.activator_for(info.address);
        let mut input = builder.new_input(stream, pact);
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (output, results) = builder.new_output::<Vec<((Window, K, A::Out), EventTime)>>();
        let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);
        builder.build(move |mut capabilities| {
            let mut state: WindowState<K, A::Acc, A::Out> =
                WindowState::new(Triggers::default(), false);
            if let Some(snapshots) = &snapshots {
                if let Some(c) = snapshots.restored_at() {
                    for bytes in snapshots.restored_groups() {
                        state
                            .restore_group(bytes)
                            .expect("a verified checkpoint part decodes");
                    }
                    capabilities.iter_mut().for_each(|cap| cap.downgrade(&c));
                }
            }
            let mut capability = capabilities.pop();
            let mut barrier: Barrier<Vec<(D, EventTime)>> = Barrier::default();
            let agg = Rc::new(agg);
            let finisher = Rc::clone(&agg);
            let finish = move |_: &K, _: &Window, acc: &A::Acc| vec![finisher.result(acc)];
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
                let data_frontier = frontiers[0].frontier().first().copied();
                let now = wall_ms();
                let fold = |batch: Vec<(D, EventTime)>,
                            state: &mut WindowState<K, A::Acc, A::Out>| {
                    for (record, _) in batch {
                        let k = key(&record);
                        state.insert(&k, &record, now, 0, &assigner, &*agg);
                    }
                };
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(batch) =
                        barrier.accept(time, std::mem::take(data), control_frontier)
                    {
                        fold(batch, &mut state);
                    }
                });
                let Some(cap) = capability.as_mut() else {
                    if let Some(snapshots) = &snapshots {
                        snapshots.write_remaining(&mut barrier);
                    }
                    return;
                };
                let time = *cap.time();
                let mut output = output.activate();
                let mut session = output.session(cap);
                let mut emit = |w: Window, k: &K, v: A::Out, _diff: i64| {
                    session.give(((w, k.clone(), v), time))
                };
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => {
                            batches.into_iter().for_each(|b| fold(b, &mut state))
                        }
                        Step::Snapshot(c) => {
                            if let Some(snapshots) = &snapshots {
                                snapshots.write(c, state.snapshot(), Vec::new());
                            }
                        }
                    }
                }
                let watermark = barrier.frontier(data_frontier, control_frontier);
                // Fire by the wall clock; everything when the input ends.
                state.advance(watermark.map(|_| now), &finish, &mut emit);
                drop(session);
                match watermark {
                    Some(wm) => {
                        if wm > *cap.time() {
                            cap.downgrade(&wm);
                        }
                        if !state.is_empty() {
                            let next_end = (now / assigner.size_ms() + 1) * assigner.size_ms();
                            activator.activate_after(Duration::from_millis(next_end - now));
                        }
                    }
                    None => capability = None,
                }
            }
        });
        results
    }
}
