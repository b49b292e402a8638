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
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;

use super::{Collection, Data, Diff};
use crate::checkpoint::{by_key_group, Barrier, Snapshots, Step};
use crate::{Context, EventTime};

type Update<D> = (D, EventTime, Diff);

/// The consolidated updates an input boundary has seen.
struct Folded<D> {
    updates: Vec<Update<D>>,
    /// Times below this are merged (the last snapshot's `C - 1`).
    merged_below: EventTime,
    consolidated_len: usize,
}

impl<D: Data> Folded<D> {
    fn fold(&mut self, batch: Vec<Update<D>>) {
        self.updates.extend(batch);
        if self.updates.len() > 2 * self.consolidated_len.max(1024) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let floor = self.merged_below;
        for (_, t, _) in self.updates.iter_mut() {
            *t = (*t).max(floor);
        }
        consolidate_updates(&mut self.updates);
        self.consolidated_len = self.updates.len();
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
    let scope = collection.inner.scope();
    let Some((snapshots, control)) =
        Snapshots::attach(Context::current().as_ref(), scope, "collection")
    else {
        return collection;
    };
    let mut builder = OperatorBuilder::new("InputBoundary".to_owned(), scope);
    let mut input = builder.new_input(collection.inner, Pipeline);
    let mut control = builder.new_input(control, Pipeline);
    let (output, stream) = builder.new_output::<Vec<Update<D>>>();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(output);

    builder.build(move |mut capabilities| {
        let mut folded = Folded {
            updates: Vec::new(),
            merged_below: 0,
            consolidated_len: 0,
        };
        let mut restore = None;
        if let Some(c) = snapshots.restored_at() {
            let restored: Vec<(D, (EventTime, Diff))> = snapshots
                .restored_entries()
                .expect("a verified checkpoint part decodes");
            folded.merged_below = c.saturating_sub(1);
            folded.updates = restored.into_iter().map(|(d, (t, r))| (d, t, r)).collect();
            capabilities[0].downgrade(&folded.merged_below);
            restore = Some(capabilities.pop().expect("one output"));
        }
        let mut barrier: Barrier<Vec<Update<D>>> = Barrier::default();
        move |frontiers| {
            control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
            let control_frontier = frontiers[1].frontier().first().copied();
            let data_frontier = frontiers[0].frontier().first().copied();
            let mut output = output.activate();
            if let Some(cap) = restore.take() {
                let mut restored = folded.updates.clone();
                output.session(&cap).give_container(&mut restored);
            }
            input.for_each(|cap, data| {
                let time = *cap.least().expect("a message under a capability");
                if let Some(batch) = barrier.accept(time, data.clone(), control_frontier) {
                    folded.fold(batch);
                }
                output.session(&cap).give_container(data);
            });
            for step in barrier.steps(data_frontier, control_frontier) {
                match step {
                    Step::Data(batches) => batches.into_iter().for_each(|b| folded.fold(b)),
                    Step::Snapshot(c) => snapshots.write(c, folded.snapshot(c), Vec::new()),
                }
            }
        }
    });
    stream.as_collection()
}
