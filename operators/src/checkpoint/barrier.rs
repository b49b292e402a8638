//! Keeping data at or above a checkpoint apart until the snapshot is taken.
//!
//! An operator's snapshot at `C` is its state after exactly the input
//! messages with times below `C`. A message at or above the earliest pending
//! checkpoint — or at or above the control frontier, where a checkpoint may
//! still be announced — is stashed, unprocessed, and released once the
//! snapshots before it are written.

use std::collections::{BTreeMap, BTreeSet};

use crate::EventTime;

/// What the operator does next, in order.
pub enum Step<C> {
    /// Process these stashed containers (their message time is below every
    /// remaining pending checkpoint).
    Data(Vec<C>),
    /// Every message below `C` has been processed: snapshot at `C`.
    Snapshot(EventTime),
}

/// The stash and pending checkpoints of one stateful operator.
pub struct Barrier<C> {
    pending: BTreeSet<EventTime>,
    stash: BTreeMap<EventTime, Vec<C>>,
}

impl<C> Default for Barrier<C> {
    fn default() -> Self {
        Barrier {
            pending: BTreeSet::new(),
            stash: BTreeMap::new(),
        }
    }
}

impl<C> Barrier<C> {
    /// Notes an announced checkpoint.
    pub fn announce(&mut self, checkpoint: EventTime) {
        self.pending.insert(checkpoint);
    }

    fn limit(&self, control: Option<EventTime>) -> Option<EventTime> {
        [self.pending.first().copied(), control]
            .into_iter()
            .flatten()
            .min()
    }

    /// Returns `data` if it may be processed now, or stashes it.
    pub fn accept(&mut self, time: EventTime, data: C, control: Option<EventTime>) -> Option<C> {
        if self.limit(control).is_some_and(|limit| time >= limit) {
            self.stash.entry(time).or_default().push(data);
            None
        } else {
            Some(data)
        }
    }

    /// The steps that the data frontier `data` (all messages below it have
    /// arrived) and the control frontier `control` allow. `None` is an
    /// empty frontier.
    pub fn steps(&mut self, data: Option<EventTime>, control: Option<EventTime>) -> Vec<Step<C>> {
        let mut steps = Vec::new();
        loop {
            let limit = self.limit(control);
            let released: Vec<EventTime> = self
                .stash
                .keys()
                .copied()
                .take_while(|t| limit.is_none_or(|l| *t < l))
                .collect();
            for time in released {
                steps.push(Step::Data(self.stash.remove(&time).unwrap_or_default()));
            }
            match self.pending.first().copied() {
                Some(c) if data.is_none_or(|f| f >= c) => {
                    self.pending.remove(&c);
                    steps.push(Step::Snapshot(c));
                }
                _ => break,
            }
        }
        steps
    }

    /// The frontier up to which the operator may fire and advance: below
    /// every pending checkpoint and the control frontier.
    pub fn frontier(
        &self,
        data: Option<EventTime>,
        control: Option<EventTime>,
    ) -> Option<EventTime> {
        [data, self.pending.first().copied(), control]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether anything is stashed or pending.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.stash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stashes_until_the_snapshot() {
        let mut b: Barrier<&str> = Barrier::default();
        assert_eq!(b.accept(5, "a", Some(100)), Some("a"));
        b.announce(10);
        assert_eq!(b.accept(12, "b", Some(100)), None);
        assert_eq!(b.accept(9, "c", Some(100)), Some("c"));
        assert_eq!(
            b.accept(150, "d", Some(100)),
            None,
            "at or above the control frontier"
        );
        // data frontier 9: the snapshot at 10 must wait
        assert!(b.steps(Some(9), Some(100)).is_empty());
        let steps = b.steps(Some(11), Some(200));
        let shape: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Data(d) => format!("data {d:?}"),
                Step::Snapshot(c) => format!("snapshot {c}"),
            })
            .collect();
        assert_eq!(shape, vec!["snapshot 10", "data [\"b\"]", "data [\"d\"]"]);
        assert!(b.is_idle());
        assert_eq!(b.frontier(Some(300), Some(200)), Some(200));
    }
}
