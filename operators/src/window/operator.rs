//! The keyed window operator: records (or, pre-aggregated, partial
//! accumulators from [`super::combine`]) are exchanged by key group, folded
//! into their windows' accumulators ([`WindowState`]), and fired when the
//! input frontier — the watermark — reaches a window's end, when a trigger
//! says so, or again when a late record updates a fired window.
//!
//! The operator holds one capability, at its input frontier, and emits
//! what fires under it: results travel in large containers, never one
//! message per window, and at most [`FIRE_BUDGET`] windows that firing
//! drops go out per activation (the operator activates itself for the
//! rest, keeping its capability until they are out). A result's event time is the
//! window's last millisecond (`end - 1`), or the frontier for updates that
//! come after it.
//!
//! With checkpoints (a [`Context`] with checkpointing installed on the worker
//! thread), the operator also reads a control stream: at a checkpoint `C` it
//! fires what `C` completes and writes its open windows, per key group,
//! having processed exactly the messages below `C`; a restored operator
//! starts from the windows of the key groups it now owns.

use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Concat;
use timely::ExchangeData;

use super::combine::{combine, Partial};
use super::state::{FireWhen, Triggers, WindowState};
use super::{Aggregate, Window, WindowAssigner};
use crate::checkpoint::{Barrier, Snapshots, Step};
use crate::keyed::worker_for_key;
use crate::{Context, EventStream, EventTime};

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

/// The most slots one activation fires where firing drops them (see
/// [`WindowState::advance_within`]): the results of 64 Ki windows (a few
/// MB) go out before the sink gets to write them.
const FIRE_BUDGET: usize = 1 << 16;

/// Extracts a record's own event time (default: the time it travels with).
pub(crate) type TimeFn<D> = Rc<dyn Fn(&D) -> EventTime>;

/// Builds the window operator. `finish` turns a window's accumulator into
/// its results. With `pre_aggregate` (and windows that do not merge),
/// records are first folded into partials on the worker that reads them
/// ([`super::combine`]) and the operator merges partials.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<'scope, D, K, KF, W, A, O, FF>(
    stream: EventStream<'scope, D>,
    key: KF,
    assigner: W,
    triggers: Triggers,
    fire_when: Option<FireWhen<A::Acc>>,
    event_time: Option<TimeFn<D>>,
    agg: A,
    finish: FF,
    pre_aggregate: bool,
) -> WindowOutput<'scope, K, O, D>
where
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    KF: Fn(&D) -> K + Clone + 'static,
    W: WindowAssigner,
    A: Aggregate<D> + Clone,
    A::Acc: ExchangeData,
    O: ExchangeData + Clone + PartialEq,
    FF: Fn(&K, &Window, &A::Acc) -> Vec<O> + 'static,
{
    let peers = stream.scope().peers();
    let merging = assigner.merging();
    if pre_aggregate && !merging {
        let lateness = triggers.allowed_lateness;
        let (partials, late) = combine(stream, key, assigner, lateness, event_time, agg.clone());
        let route = move |p: &Partial<K, A::Acc>| worker_for_key(&p.key, peers);
        let fold = move |state: &mut WindowState<K, A::Acc, O>, p: Partial<K, A::Acc>, _| {
            state.insert_partial(p, &agg);
            None
        };
        let out = operate(partials, route, triggers, merging, fire_when, finish, fold);
        return WindowOutput {
            updates: out.updates,
            late: out.late.concat(late),
        };
    }
    let route = key.clone();
    let route = move |record: &D| worker_for_key(&route(record), peers);
    let fold = move |state: &mut WindowState<K, A::Acc, O>, record: D, stream_time| {
        let k = key(&record);
        let time = event_time.as_ref().map_or(stream_time, |f| f(&record));
        let placed = state.insert(&k, &record, time, stream_time, &assigner, &agg);
        (!placed).then_some(record)
    };
    operate(stream, route, triggers, merging, fire_when, finish, fold)
}

/// The operator proper, over inputs of type `In` (records or partials):
/// `fold` adds one to the state and hands back a record that was late.
fn operate<'scope, In, D, K, Acc, O, FF>(
    stream: EventStream<'scope, In>,
    route: impl Fn(&In) -> u64 + 'static,
    triggers: Triggers,
    merging: bool,
    fire_when: Option<FireWhen<Acc>>,
    finish: FF,
    mut fold: impl FnMut(&mut WindowState<K, Acc, O>, In, EventTime) -> Option<D> + 'static,
) -> WindowOutput<'scope, K, O, D>
where
    In: ExchangeData,
    D: ExchangeData,
    K: ExchangeData + Hash + Eq + Clone,
    Acc: ExchangeData,
    O: ExchangeData + Clone + PartialEq,
    FF: Fn(&K, &Window, &Acc) -> Vec<O> + 'static,
{
    let scope = stream.scope();
    let pact = Exchange::new(move |(data, _): &(In, EventTime)| route(data));
    let (snapshots, control) =
        Snapshots::attach(Context::current().as_ref(), scope, "window").unzip();

    let mut builder = OperatorBuilder::new("Window".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address);
    let mut input = builder.new_input(stream, pact);
    let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
    let (updates_out, updates) = builder.new_output::<Vec<(WindowUpdate<K, O>, EventTime)>>();
    let (late_out, late) = builder.new_output::<Vec<(D, EventTime)>>();
    let mut updates_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(updates_out);
    let mut late_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(late_out);

    builder.build(move |mut capabilities| {
        let mut state: WindowState<K, Acc, O> = WindowState::new(triggers, merging);
        state.set_fire_when(fire_when);
        if let Some(snapshots) = &snapshots {
            if let Some(c) = snapshots.restored_at() {
                for bytes in snapshots.restored_groups() {
                    state
                        .restore_group(bytes)
                        .expect("a verified checkpoint part decodes");
                }
                state.set_fired_upto(c);
                for cap in capabilities.iter_mut() {
                    cap.downgrade(&c);
                }
            }
        }
        let mut capabilities = Some(capabilities);
        let mut barrier: Barrier<Vec<(In, EventTime)>> = Barrier::default();
        let every = triggers.every_ms.map(Duration::from_millis);
        let mut last_early = std::time::Instant::now();
        move |frontiers| {
            if let Some(control) = control_input.as_mut() {
                control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            }
            let Some(caps) = capabilities.as_mut() else {
                // Done: later checkpoints hold no windows, but still get a part.
                input.for_each(|_, _| {});
                if let Some(snapshots) = &snapshots {
                    snapshots.write_remaining(&mut barrier);
                }
                return;
            };
            let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
            let data_frontier = frontiers[0].frontier().first().copied();
            let mut updates_out = updates_out.activate();
            let mut late_out = late_out.activate();
            let cap_time = *caps[0].time();
            let done;
            {
                let mut late = late_out.session(&caps[1]);
                let mut session = updates_out.session(&caps[0]);
                let mut emit = |window: Window, k: &K, value: O, diff: i64| {
                    let time = window.max_timestamp().max(cap_time);
                    session.give((
                        WindowUpdate {
                            window,
                            key: k.clone(),
                            value,
                            diff,
                        },
                        time,
                    ));
                };
                let mut fold_batch =
                    |batch: Vec<(In, EventTime)>, state: &mut WindowState<K, Acc, O>| {
                        for (item, stream_time) in batch {
                            if let Some(record) = fold(state, item, stream_time) {
                                late.give((record, stream_time));
                            }
                        }
                    };
                input.for_each(|cap, data| {
                    let batch = std::mem::take(data);
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(batch) = barrier.accept(time, batch, control_frontier) {
                        fold_batch(batch, &mut state);
                    }
                });
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => {
                            batches.into_iter().for_each(|b| fold_batch(b, &mut state))
                        }
                        Step::Snapshot(c) => {
                            state.advance(Some(c), &finish, &mut emit);
                            if let Some(snapshots) = &snapshots {
                                snapshots.write(c, state.snapshot(), Vec::new());
                            }
                        }
                    }
                }
                let frontier = barrier.frontier(data_frontier, control_frontier);
                if every.is_some_and(|every| last_early.elapsed() >= every) {
                    last_early = std::time::Instant::now();
                    state.fire_changed(&finish, &mut emit);
                }
                done = state.advance_within(frontier, FIRE_BUDGET, &finish, &mut emit);
            }
            if !done {
                // The rest of what fires, in the next activation.
                activator.activate();
            }
            match barrier.frontier(data_frontier, control_frontier) {
                Some(f) => {
                    for cap in caps.iter_mut() {
                        if f > *cap.time() {
                            cap.downgrade(&f);
                        }
                    }
                    if let Some(every) = every {
                        if !state.is_empty() {
                            activator.activate_after(every);
                        }
                    }
                }
                None if done => capabilities = None,
                None => {}
            }
        }
    });
    WindowOutput { updates, late }
}
