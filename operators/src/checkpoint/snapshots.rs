//! What a stateful operator needs to take part in checkpoints: its part
//! name, its control stream, the restored state it owns, and writing parts.

use std::rc::Rc;

use timely::dataflow::{Scope, Stream};

use super::{Barrier, Checkpointing, Part, Step};
use crate::keyed::worker_for_group;
use crate::{Context, EventTime};

/// One operator instance's handle on checkpoints.
pub struct Snapshots {
    checkpointing: Rc<Checkpointing>,
    name: String,
    index: usize,
    peers: usize,
}

impl Snapshots {
    /// Registers an operator of `kind` built in `scope` with the job's
    /// checkpoints, if `ctx` takes them; returns its handle and its control
    /// stream (the checkpoint announcements it must follow).
    pub fn attach<'scope>(
        ctx: Option<&Context>,
        scope: Scope<'scope, EventTime>,
        kind: &str,
    ) -> Option<(Snapshots, Stream<'scope, EventTime, Vec<EventTime>>)> {
        let ctx = ctx?;
        let checkpointing = Rc::clone(ctx.checkpointing()?);
        let control = ctx.control(scope)?;
        let name = checkpointing.register(kind);
        let snapshots = Snapshots {
            checkpointing,
            name,
            index: scope.index(),
            peers: scope.peers(),
        };
        Some((snapshots, control))
    }

    /// This operator's part name (`kind-N`), the same on every worker and
    /// in every run of the same program.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks for a final checkpoint once every source has ended (for sinks
    /// that make output visible only on completed checkpoints).
    pub fn want_final(&self) {
        self.checkpointing.coordinator.borrow_mut().want_final();
    }

    /// The checkpoint this job was restored from, if any.
    pub fn restored_at(&self) -> Option<EventTime> {
        self.checkpointing.restored_at()
    }

    /// Every restored part of this operator (all old workers').
    pub fn restored_parts(&self) -> &[Part] {
        self.checkpointing.restored_parts(&self.name)
    }

    /// The restored key groups this worker now owns, as their encoded state.
    pub fn restored_groups(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.restored_parts().iter().flat_map(move |part| {
            part.groups
                .iter()
                .filter(move |(group, _)| worker_for_group(*group, self.peers) == self.index as u64)
                .map(|(_, bytes)| bytes.as_slice())
        })
    }

    /// The restored keyed entries this worker now owns, from groups written
    /// with [`super::by_key_group`].
    pub fn restored_entries<K, V>(&self) -> Result<Vec<(K, V)>, super::PartError>
    where
        K: serde::de::DeserializeOwned,
        V: serde::de::DeserializeOwned,
    {
        let mut out = Vec::new();
        for bytes in self.restored_groups() {
            out.extend(super::part::decode::<Vec<(K, V)>>(bytes)?);
        }
        Ok(out)
    }

    /// Writes this worker's part of checkpoint `c`.
    pub fn write(&self, c: EventTime, groups: Vec<(u64, Vec<u8>)>, global: Vec<u8>) {
        let part = Part {
            worker: self.index,
            peers: self.peers,
            groups,
            global,
            blobs: Vec::new(),
        };
        self.checkpointing.store.write_part(c, &self.name, part);
    }

    /// Whether checkpoint `c` is complete (for sinks that commit then).
    pub fn is_complete(&self, c: EventTime) -> bool {
        self.checkpointing.store.is_complete(c)
    }

    /// A finished operator still owes an (empty) part for every checkpoint
    /// announced after it finished.
    pub fn write_remaining<C>(&self, barrier: &mut Barrier<C>) {
        for step in barrier.steps(None, None) {
            if let Step::Snapshot(c) = step {
                self.write(c, Vec::new(), Vec::new());
            }
        }
    }
}
