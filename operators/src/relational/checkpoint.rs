//! How differential pipelines take part in checkpoints (DESIGN.md,
//! section 3).
//!
//! Differential operators are deterministic functions of their input
//! collections, so a pipeline's state is restored by restoring its
//! *inputs* and letting every arrangement, join and reduction recompute,
//! rather than by writing each arrangement:
//!
//! - **Input boundary** ([`input_boundary`], placed by
//!   [`super::ToCollection`] and [`super::Temporal::windowed_collection`]):
//!   its snapshot at `C` is every update that arrived in messages below `C`,
//!   consolidated, with the times below `C` merged into `C - 1` and later
//!   times (future retractions of temporal filters) kept, per key group.
//!   A restored boundary emits the updates of the key groups it now owns at
//!   `C - 1` and later, before the replayed sources' records at `>= C`.
//! - **Output boundary** (the changelogs of [`super::ToChangelog`]): emits
//!   an event time's changes only once the watermark, the pending
//!   checkpoints and the control frontier have passed it, so output below
//!   `C` is exactly the changes at times below `C`. It has no state to
//!   write: a restored changelog drops the recomputed changes below `C`
//!   (they were emitted before the checkpoint) and emits the rest.
//!
//! Restoring and replaying therefore produces exactly the changelog of a
//! run that never failed. The cost is recomputation at restore, and the
//! input boundary's state: the consolidated input, which for an append-only
//! input grows with it — window the input first
//! ([`super::Temporal::windowed_collection`]) to keep it bounded.

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::Stream;

use super::{Collection, Data, Diff};
use crate::checkpoint::{by_key_group, Barrier, Snapshots, Step};
use crate::{Context, EventTime};

type Update<D> = (D, EventTime, Diff);

/// What a boundary snapshots: the records of messages below each
/// checkpoint, folded into a bounded form.
pub(crate) trait BoundaryState: Sized + 'static {
    /// The records the boundary passes through.
    type Record: Clone + 'static;
    /// The state restored from `snapshots` at checkpoint `c`, and the
    /// records to re-send (at `c - 1`).
    fn restore(snapshots: &Snapshots, c: EventTime) -> (Self, Vec<Self::Record>);
    /// Takes in the records of a message below every pending checkpoint.
    fn fold(&mut self, batch: Vec<Self::Record>);
    /// The state as of `c`, per key group.
    fn snapshot(&mut self, c: EventTime) -> Vec<(u64, Vec<u8>)>;
}

/// The consolidated updates an input boundary has seen.
struct Folded<D> {
    updates: Vec<Update<D>>,
    /// Times below this are merged (the last snapshot's `C - 1`).
    merged_below: EventTime,
    consolidated_len: usize,
}

impl<D> Default for Folded<D> {
    fn default() -> Self {
        Folded {
            updates: Vec::new(),
            merged_below: 0,
            consolidated_len: 0,
        }
    }
}

impl<D: Data> Folded<D> {
    fn compact(&mut self) {
        let floor = self.merged_below;
        for (_, t, _) in self.updates.iter_mut() {
            *t = (*t).max(floor);
        }
        consolidate_updates(&mut self.updates);
        self.consolidated_len = self.updates.len();
    }
}

impl<D: Data> BoundaryState for Folded<D> {
    type Record = Update<D>;

    fn restore(snapshots: &Snapshots, c: EventTime) -> (Self, Vec<Update<D>>) {
        let restored: Vec<(D, (EventTime, Diff))> = snapshots
            .restored_entries()
            .expect("a verified checkpoint part decodes");
        let updates: Vec<Update<D>> = restored.into_iter().map(|(d, (t, r))| (d, t, r)).collect();
        let folded = Folded {
            updates: updates.clone(),
            merged_below: c.saturating_sub(1),
            consolidated_len: updates.len(),
        };
        (folded, updates)
    }

    fn fold(&mut self, batch: Vec<Update<D>>) {
        self.updates.extend(batch);
        if self.updates.len() > 2 * self.consolidated_len.max(1024) {
            self.compact();
        }
    }

    /// The state as of `c`: times below `c` merged into `c - 1`.
    fn snapshot(&mut self, c: EventTime) -> Vec<(u64, Vec<u8>)> {
        self.merged_below = c.saturating_sub(1);
        self.compact();
        by_key_group(self.updates.iter().map(|(d, t, r)| (d.clone(), (*t, *r))))
    }
}

/// Places an input boundary on `collection` if the worker's job takes
/// checkpoints (see the module docs); otherwise returns it unchanged.
pub(crate) fn input_boundary<'scope, D: Data>(
    collection: Collection<'scope, D>,
) -> Collection<'scope, D> {
    match boundary::<Folded<D>, _>(collection.inner.clone(), Pipeline, "collection") {
        Some(stream) => stream.as_collection(),
        None => collection,
    }
}

/// A boundary operator of `kind` on `stream`, if the worker's job takes
/// checkpoints: it passes every container through whole, folds a copy of
/// each message below every pending checkpoint into its state `S`, writes
/// the state at each checkpoint, and after a restore first re-sends the
/// restored records at `C - 1`.
pub(crate) fn boundary<'scope, S, P>(
    stream: Stream<'scope, EventTime, Vec<S::Record>>,
    pact: P,
    kind: &str,
) -> Option<Stream<'scope, EventTime, Vec<S::Record>>>
where
    S: BoundaryState + Default,
    P: ParallelizationContract<EventTime, Vec<S::Record>>,
{
    let scope = stream.scope();
    let (snapshots, control) = Snapshots::attach(Context::current().as_ref(), scope, kind)?;
    let mut builder = OperatorBuilder::new(format!("Boundary({kind})"), scope);
    let mut input = builder.new_input(stream, pact);
    let mut control = builder.new_input(control, Pipeline);
    let (output, stream) = builder.new_output::<Vec<S::Record>>();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);

    builder.build(move |mut capabilities| {
        let mut state = S::default();
        let mut restore = None;
        if let Some(c) = snapshots.restored_at() {
            let (restored, records) = S::restore(&snapshots, c);
            state = restored;
            capabilities[0].downgrade(&c.saturating_sub(1));
            restore = Some((capabilities.pop().expect("one output"), records));
        }
        let mut barrier: Barrier<Vec<S::Record>> = Barrier::default();
        move |frontiers| {
            control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            let control_frontier = frontiers[1].frontier().first().copied();
            let data_frontier = frontiers[0].frontier().first().copied();
            let mut output = output.activate();
            if let Some((cap, mut records)) = restore.take() {
                output.session(&cap).give_container(&mut records);
            }
            input.for_each(|cap, data| {
                let time = *cap.least().expect("a message under a capability");
                if let Some(batch) = barrier.accept(time, data.clone(), control_frontier) {
                    state.fold(batch);
                }
                output.session(&cap).give_container(data);
            });
            for step in barrier.steps(data_frontier, control_frontier) {
                match step {
                    Step::Data(batches) => batches.into_iter().for_each(|b| state.fold(b)),
                    Step::Snapshot(c) => snapshots.write(c, state.snapshot(c), Vec::new()),
                }
            }
        }
    });
    Some(stream)
}
