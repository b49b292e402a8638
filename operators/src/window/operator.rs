//! The keyed window operator: records are exchanged by key group, folded
//! into their windows' accumulators ([`WindowState`]), and fired when the
//! input frontier — the watermark — reaches a window's end, when a trigger
//! says so, or again when a late record updates a fired window.
//!
//! The operator holds one capability, at its input frontier, and emits
//! everything that fires in one activation under it: results travel in large
//! containers, never one message per window. A result's event time is the
//! window's last millisecond (`end - 1`), or the frontier for updates that
//! come after it.

use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::ExchangeData;

use super::state::{Triggers, WindowState};
use super::{Aggregate, Window, WindowAssigner};
use crate::keyed::worker_for_key;
use crate::{EventStream, EventTime};

/// One change to a window's results: `diff` is `+1` for a new result and
/// `-1` for the retraction of an earlier one (early firings, late updates,
/// session merges). Summing the diffs per `(window, key, value)` gives the
/// final results.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowUpdate<K, O> {
    /// The window.
    pub window: Window,
    /// The key.
    pub key: K,
    /// One result of the window.
    pub value: O,
    /// `+1` or `-1`.
    pub diff: i64,
}

/// The outputs of a window operator.
pub struct WindowOutput<'scope, K, O, D> {
    /// Result updates.
    pub updates: EventStream<'scope, WindowUpdate<K, O>>,
    /// Records that arrived after every window they belong to was past its
    /// allowed lateness.
    pub late: EventStream<'scope, D>,
}

/// Extracts a record's own event time (default: the time it travels with).
pub(crate) type TimeFn<D> = Rc<dyn Fn(&D) -> EventTime>;

/// Builds the window operator. `finish` turns a window's accumulator into
/// its results.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<'scope, D, K, KF, W, A, O, FF>(
    stream: EventStream<'scope, D>,
    key: KF,
    assigner: W,
    triggers: Triggers,
    event_time: Option<TimeFn<D>>,
    agg: A,
    finish: FF,
) -> WindowOutput<'scope, K, O, D>
where
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    KF: Fn(&D) -> K + Clone + 'static,
    W: WindowAssigner,
    A: Aggregate<D>,
    O: Clone + PartialEq + 'static,
    FF: Fn(&K, &Window, &A::Acc) -> Vec<O> + 'static,
{
    let scope = stream.scope();
    let peers = scope.peers();
    let route = key.clone();
    let pact = Exchange::new(move |(data, _): &(D, EventTime)| worker_for_key(&route(data), peers));
    let mut builder = OperatorBuilder::new("Window".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address);
    let mut input = builder.new_input(stream, pact);
    let (updates_out, updates) = builder.new_output::<Vec<(WindowUpdate<K, O>, EventTime)>>();
    let (late_out, late) = builder.new_output::<Vec<(D, EventTime)>>();
    let mut updates_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(updates_out);
    let mut late_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(late_out);

    builder.build(move |capabilities| {
        let mut capabilities = Some(capabilities);
        let mut state: WindowState<K, A::Acc, O> = WindowState::new(triggers, assigner.merging());
        let every = triggers.every_ms.map(Duration::from_millis);
        let mut last_early = std::time::Instant::now();
        move |frontiers| {
            let Some(caps) = capabilities.as_mut() else {
                input.for_each(|_, _| {});
                return;
            };
            let mut updates_out = updates_out.activate();
            let mut late_out = late_out.activate();
            let cap_time = *caps[0].time();
            {
                let mut late = late_out.session(&caps[1]);
                input.for_each(|_cap, data| {
                    for (record, stream_time) in data.drain(..) {
                        let k = key(&record);
                        let time = event_time.as_ref().map_or(stream_time, |f| f(&record));
                        if !state.insert(&k, &record, time, stream_time, &assigner, &agg) {
                            late.give((record, stream_time));
                        }
                    }
                });
            }
            let frontier = frontiers[0].frontier().first().copied();
            {
                let mut session = updates_out.session(&caps[0]);
                let mut emit = |window: Window, k: &K, value: O, diff: i64| {
                    let time = window.max_timestamp().max(cap_time);
                    let update = WindowUpdate {
                        window,
                        key: k.clone(),
                        value,
                        diff,
                    };
                    session.give((update, time));
                };
                if every.is_some_and(|every| last_early.elapsed() >= every) {
                    last_early = std::time::Instant::now();
                    state.fire_changed(&finish, &mut emit);
                }
                state.advance(frontier, &finish, &mut emit);
            }
            match frontier {
                Some(f) => {
                    for cap in caps.iter_mut() {
                        cap.downgrade(&f);
                    }
                    if let Some(every) = every {
                        if !state.is_empty() {
                            activator.activate_after(every);
                        }
                    }
                }
                None => capabilities = None,
            }
        }
    });
    WindowOutput { updates, late }
}
