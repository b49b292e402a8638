//! Frontier-consistent snapshots: the protocol operators follow (DESIGN.md,
//! section 3). The runtime (`tidewater::checkpoint`) owns storage; this
//! module owns what every stateful operator must agree on:
//!
//! - [`part`]: the versioned, checksummed encoding of one operator's part.
//! - [`control`]: the control stream. Worker 0's coordinator holds a
//!   capability at `t` and announces checkpoint times `C` on a broadcast
//!   stream before it lets its frontier pass `C`. Every stateful operator
//!   reads its own control stream; a time at or above the control frontier
//!   may still become a checkpoint.
//! - [`barrier`]: keeps data that arrives at or above a pending (or possible)
//!   checkpoint apart from folded state until the snapshot is written.
//! - [`Checkpointing`]: the per-worker services (store, coordinator state,
//!   restore) reached through the worker's [`crate::Context`].

pub mod barrier;
pub mod control;
pub mod part;
mod snapshots;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub use barrier::{Barrier, Step};
pub use control::{control_stream, Coordinator};
pub use part::{Part, PartError};
pub use snapshots::Snapshots;

use crate::EventTime;

/// Durable storage of checkpoint parts, implemented by the runtime.
pub trait SnapshotStore {
    /// Persists `part` as this worker's part of `operator` in checkpoint
    /// `checkpoint`. May return before the part is durable (writes are
    /// asynchronous); the checkpoint completes only when every part is.
    fn write_part(&self, checkpoint: EventTime, operator: &str, part: Part);

    /// Whether checkpoint `checkpoint` is complete (its manifest written).
    fn is_complete(&self, checkpoint: EventTime) -> bool;
}

/// What a restored job starts from.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The checkpoint time `C`.
    pub checkpoint: EventTime,
    /// Every part of every operator, by operator name (all old workers').
    pub parts: BTreeMap<String, Vec<Part>>,
}

/// The checkpoint services of one worker.
pub struct Checkpointing {
    /// Where parts go.
    pub store: Rc<dyn SnapshotStore>,
    /// The shared decision state of this worker's control streams.
    pub coordinator: Rc<RefCell<Coordinator>>,
    /// The checkpoint this job was restored from.
    pub restored: Option<Restored>,
    /// Names of the operators that write parts, in build order.
    pub operators: RefCell<Vec<String>>,
}

impl Checkpointing {
    /// Registers a snapshotting operator and returns its unique name:
    /// `kind` plus a number, the same on every worker and in every run of
    /// the same program.
    pub fn register(&self, kind: &str) -> String {
        let mut operators = self.operators.borrow_mut();
        let n = operators.iter().filter(|o| o.starts_with(kind)).count();
        let name = format!("{kind}-{n}");
        operators.push(name.clone());
        name
    }

    /// The restored parts of `operator` (empty for a fresh start).
    pub fn restored_parts(&self, operator: &str) -> &[Part] {
        self.restored
            .as_ref()
            .and_then(|r| r.parts.get(operator))
            .map_or(&[], Vec::as_slice)
    }

    /// The checkpoint restored from, if any.
    pub fn restored_at(&self) -> Option<EventTime> {
        self.restored.as_ref().map(|r| r.checkpoint)
    }
}

/// Encodes keyed entries per key group, for a part's `groups`.
pub fn by_key_group<K, V, I>(entries: I) -> Vec<(u64, Vec<u8>)>
where
    K: std::hash::Hash + serde::Serialize,
    V: serde::Serialize,
    I: IntoIterator<Item = (K, V)>,
{
    let mut groups: BTreeMap<u64, Vec<(K, V)>> = BTreeMap::new();
    for (k, v) in entries {
        groups.entry(crate::key_group(&k)).or_default().push((k, v));
    }
    groups
        .into_iter()
        .map(|(g, entries)| (g, part::encode(&entries)))
        .collect()
}
