//! Local pre-aggregation for the window operator (Flink's local-global
//! aggregation): on the worker that reads them, records are folded into one
//! accumulator per (window, key) before the exchange, so the exchange and
//! the window operator see one partial per window and key instead of one
//! message per record.
//!
//! The combiner keeps nothing between activations: what it folds in one
//! activation it emits in that activation, grouped by the stamp the records
//! arrived under and sent under that same stamp. A checkpoint barrier at `C`
//! therefore sees exactly the messages below `C` it would have seen without
//! the combiner, and the combiner has no state to snapshot. Records whose
//! every window is past its allowed lateness are not folded; they leave on
//! the late output as they came.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::operator::TimeFn;
use super::state::past_lateness;
use super::{Aggregate, Window, WindowAssigner};
use crate::{EventStream, EventTime};

/// The fold of some records of one key in one window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Partial<K, Acc> {
    pub(crate) window: Window,
    pub(crate) key: K,
    pub(crate) acc: Acc,
    /// How many records were folded (for count triggers).
    pub(crate) records: u64,
}

/// Folds `stream` into partials per (window, key); returns the partials and
/// the records that were already late.
pub(crate) fn combine<'scope, D, K, KF, W, A>(
    stream: EventStream<'scope, D>,
    key: KF,
    assigner: W,
    allowed_lateness: u64,
    event_time: Option<TimeFn<D>>,
    agg: A,
) -> (
    EventStream<'scope, Partial<K, A::Acc>>,
    EventStream<'scope, D>,
)
where
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    KF: Fn(&D) -> K + 'static,
    W: WindowAssigner,
    A: Aggregate<D>,
{
    let scope = stream.scope();
    let mut builder = OperatorBuilder::new("WindowCombine".to_owned(), scope);
    let mut input = builder.new_input(stream, Pipeline);
    let (partials_out, partials) = builder.new_output::<Vec<(Partial<K, A::Acc>, EventTime)>>();
    let (late_out, late) = builder.new_output::<Vec<(D, EventTime)>>();
    let mut partials_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(partials_out);
    let mut late_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(late_out);

    builder.build(move |_capabilities| {
        // Reused across activations; always drained before an activation ends.
        let mut folded: FxHashMap<(EventTime, K), (Window, A::Acc, u64)> = FxHashMap::default();
        move |_frontiers| {
            let mut partials_out = partials_out.activate();
            let mut late_out = late_out.activate();
            input.for_each_stamp(|cap, containers| {
                let Some(&message_time) = cap.least() else {
                    return;
                };
                let mut late = late_out.session(&cap);
                for container in containers {
                    for (record, stream_time) in container.drain(..) {
                        let time = event_time.as_ref().map_or(stream_time, |f| f(&record));
                        let k = key(&record);
                        let mut placed = false;
                        assigner.assign(time, |window| {
                            if past_lateness(&window, allowed_lateness, stream_time) {
                                return;
                            }
                            placed = true;
                            let (_, acc, records) = folded
                                .entry((window.end, k.clone()))
                                .or_insert_with(|| (window, agg.create(), 0));
                            agg.add(acc, &record);
                            *records += 1;
                        });
                        if !placed {
                            late.give((record, stream_time));
                        }
                    }
                }
                partials_out.session(&cap).give_iterator(folded.drain().map(
                    |((_, key), (window, acc, records))| {
                        let partial = Partial {
                            window,
                            key,
                            acc,
                            records,
                        };
                        (partial, message_time)
                    },
                ));
            });
        }
    });
    (partials, late)
}
