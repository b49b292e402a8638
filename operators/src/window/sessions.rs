//! The state of a merging window operator (session windows): each key's
//! open sessions, kept with the key, and two queues of what falls due.
//!
//! A record extends its key's session in place: a hash lookup and a scan of
//! the key's few sessions. Nothing is moved between end-indexed buckets (the
//! aligned windows' layout in [`super::state`] would move every record's
//! session to a new bucket, since a record almost always pushes its
//! session's end later), and nothing is queued per record.
//!
//! Each session has one live entry in the `due` queue until it fires on
//! time, made when the session is (at the time it then ended), as Flink
//! keeps one timer per session. When the entry comes up and the session has grown since, the
//! entry goes back in at the session's end now; a session grows as long as
//! records arrive, so that happens about once per gap of its length, not once
//! per record. Entries of sessions merged into another are passed over (the
//! merged session keeps one of its parts' entries), as are `kept` entries of
//! sessions that grew after their on-time firing (they are due again).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::state::{fire, Slot};
use super::{Aggregate, Window};
use crate::EventTime;

/// A queue entry: the session of `key` that ends at `end` falls due at `at`.
struct Due<K> {
    at: EventTime,
    end: EventTime,
    key: K,
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl<K> Eq for Due<K> {}

impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Due<K> {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// One session and its entry in the `due` queue.
struct Session<Acc, O> {
    window: Window,
    slot: Slot<Acc, O>,
    /// The `at` of its `due` entry (`None`: not queued: fired on time).
    queued: Option<EventTime>,
}

impl<Acc, O> Session<Acc, O> {
    /// Whether a queue entry at `at` refers to this session: it lies in it
    /// (sessions only grow, and a key's sessions are disjoint).
    fn holds(&self, at: EventTime) -> bool {
        self.window.start < at && at <= self.window.end
    }
}

/// Each key's sessions and the queues of their ends.
pub(super) struct Sessions<K, Acc, O> {
    /// A key's sessions: disjoint, in order of start.
    by_key: FxHashMap<K, Vec<Session<Acc, O>>>,
    /// Sessions by end, for their on-time firing.
    due: BinaryHeap<Due<K>>,
    /// Sessions past their on-time firing, by end + allowed lateness, for
    /// their removal.
    kept: BinaryHeap<Due<K>>,
}

impl<K: Hash + Eq + Clone, Acc, O: Clone + PartialEq> Sessions<K, Acc, O> {
    pub(super) fn new() -> Self {
        Sessions {
            by_key: FxHashMap::default(),
            due: BinaryHeap::new(),
            kept: BinaryHeap::new(),
        }
    }

    /// Merges `window` (holding `record`) with the key's sessions it
    /// overlaps and returns the merged session (its end and slot), or `None` when `expired` and
    /// it overlaps none. Touching is not overlapping: records `gap` or more
    /// apart are separate sessions, so a session `[s, e)` is final once the
    /// frontier reaches `e` (a record at `e` or later cannot join it).
    pub(super) fn merge_into<D, A>(
        &mut self,
        key: &K,
        record: &D,
        window: Window,
        expired: bool,
        agg: &A,
    ) -> Option<(EventTime, &mut Slot<Acc, O>)>
    where
        A: Aggregate<D, Acc = Acc>,
    {
        if !self.by_key.contains_key(key) {
            if expired {
                return None;
            }
            self.by_key.insert(key.clone(), Vec::new());
        }
        let slots = self.by_key.get_mut(key).expect("inserted");
        // Disjoint and in order, so the overlapping ones are a run.
        let lo = slots.partition_point(|s| s.window.end <= window.start);
        let hi = lo + slots[lo..].partition_point(|s| s.window.start < window.end);
        if lo == hi {
            if expired {
                return None;
            }
            let slot = Slot::new(agg.create());
            slots.insert(
                lo,
                Session {
                    window,
                    slot,
                    queued: None,
                },
            );
        } else if hi - lo > 1 {
            for old in slots.drain(lo + 1..hi).collect::<Vec<_>>() {
                let merged = &mut slots[lo];
                merged.queued = merged.queued.max(old.queued);
                merged.window.end = old.window.end;
                let (merged, old) = (&mut merged.slot, old.slot);
                agg.merge(&mut merged.acc, old.acc);
                merged.emitted.extend(old.emitted);
                merged.since_fire.absorb(old.since_fire);
            }
        }
        let session = &mut slots[lo];
        let merged = &mut session.window;
        merged.start = merged.start.min(window.start);
        merged.end = merged.end.max(window.end);
        if session.queued.is_none() {
            session.queued = Some(merged.end);
            self.due.push(Due {
                at: merged.end,
                end: merged.end,
                key: key.clone(),
            });
        }
        agg.add(&mut session.slot.acc, record);
        Some((session.window.end, &mut session.slot))
    }

    /// The session of `key` that ends at `end`, if it still does: its
    /// window and slot.
    pub(super) fn get_mut(
        &mut self,
        key: &K,
        end: EventTime,
    ) -> Option<(Window, &mut Slot<Acc, O>)> {
        let mut sessions = self.by_key.get_mut(key)?.iter_mut();
        let session = sessions.find(|s| s.window.end == end)?;
        Some((session.window, &mut session.slot))
    }

    /// On-time firing of the sessions ending in `(fired_upto, frontier]`
    /// (`frontier` `None`: every session), keeping each for `lateness` after
    /// its end.
    pub(super) fn fire_due<F>(
        &mut self,
        frontier: Option<EventTime>,
        fired_upto: EventTime,
        lateness: u64,
        finish: &impl Fn(&K, &Window, &Acc) -> Vec<O>,
        emit: &mut F,
    ) where
        F: FnMut(Window, &K, O, i64),
    {
        let reached = |at: EventTime| frontier.is_none_or(|f| at <= f);
        while self.due.peek().is_some_and(|due| reached(due.at)) {
            let due = self.due.pop().expect("peeked");
            let Some(session) = self.by_key.get_mut(&due.key).and_then(|slots| {
                slots
                    .iter_mut()
                    .find(|s| s.holds(due.at) && s.queued == Some(due.at))
            }) else {
                continue;
            };
            let end = session.window.end;
            if end > due.at {
                session.queued = Some(end);
                self.due.push(Due {
                    at: end,
                    end,
                    ..due
                });
                continue;
            }
            session.queued = None;
            let keep_until = end.saturating_add(lateness);
            if end > fired_upto {
                fire(
                    &mut session.slot,
                    session.window,
                    &due.key,
                    finish,
                    emit,
                    !reached(keep_until),
                );
            }
            self.kept.push(Due {
                at: keep_until,
                ..due
            });
        }
    }

    /// Drops the sessions whose end + lateness `frontier` has passed
    /// (`None`: every session).
    pub(super) fn clean(&mut self, frontier: Option<EventTime>) {
        let Some(f) = frontier else {
            self.by_key.clear();
            self.due.clear();
            self.kept.clear();
            return;
        };
        while self.kept.peek().is_some_and(|kept| kept.at <= f) {
            let kept = self.kept.pop().expect("peeked");
            if let Some(slots) = self.by_key.get_mut(&kept.key) {
                slots.retain(|s| s.window.end != kept.end);
                if slots.is_empty() {
                    self.by_key.remove(&kept.key);
                }
            }
        }
    }

    /// Every open session: its key, window and slot.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, Window, &Slot<Acc, O>)> {
        (self.by_key.iter())
            .flat_map(|(key, slots)| slots.iter().map(move |s| (key, s.window, &s.slot)))
    }

    /// Every open session, to fire.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, Window, &mut Slot<Acc, O>)> {
        self.by_key.iter_mut().flat_map(|(key, slots)| {
            (slots.iter_mut()).map(move |s| (&*key, s.window, &mut s.slot))
        })
    }

    /// Adds a session read from a snapshot.
    pub(super) fn restore(&mut self, key: K, window: Window, slot: Slot<Acc, O>) {
        let end = window.end;
        let slots = self.by_key.entry(key.clone()).or_default();
        let at = slots.partition_point(|s| s.window.start < window.start);
        let queued = Some(end);
        let session = Session {
            window,
            slot,
            queued,
        };
        slots.insert(at, session);
        self.due.push(Due { at: end, end, key });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::super::state::{Triggers, WindowState};
    use crate::window::{Count, SessionWindows, Window};

    type Results = BTreeMap<(Window, u32, u64), i64>;

    /// Sessions by brute force: every key's sessions in a list, merged and
    /// dropped by the rules in words (a record whose window is past the
    /// allowed lateness and overlaps no kept session is dropped; a session
    /// is final once the watermark passes its end by the lateness). The
    /// watermark moves to a record's stream time before every `every`th
    /// record.
    fn oracle(arrivals: &[(u32, u64, u64)], gap: u64, lateness: u64, every: usize) -> Results {
        let mut open: Vec<(u32, Window, u64)> = Vec::new();
        let mut done = Vec::new();
        let mut close = |open: &mut Vec<(u32, Window, u64)>, f: u64| {
            let (closed, kept) = open
                .drain(..)
                .partition(|(_, w, _)| w.end.saturating_add(lateness) <= f);
            *open = kept;
            done.extend::<Vec<_>>(closed);
        };
        for (i, &(key, t, stream)) in arrivals.iter().enumerate() {
            if i % every == 0 {
                close(&mut open, stream);
            }
            let window = Window {
                start: t,
                end: t + gap,
            };
            let (mut hit, rest): (Vec<_>, Vec<_>) = open
                .drain(..)
                .partition(|(k, w, _)| *k == key && w.start < window.end && w.end > window.start);
            open = rest;
            if hit.is_empty() && window.end + lateness <= stream {
                continue;
            }
            hit.push((key, window, 1));
            let merged = hit.into_iter().reduce(|(k, a, n), (_, b, m)| {
                let w = Window {
                    start: a.start.min(b.start),
                    end: a.end.max(b.end),
                };
                (k, w, n + m)
            });
            open.extend(merged);
        }
        close(&mut open, u64::MAX);
        done.into_iter().map(|(k, w, n)| ((w, k, n), 1)).collect()
    }

    proptest! {
        /// Late records within and beyond the allowed lateness, count
        /// triggers, out-of-order times: the consolidated updates are the
        /// oracle's sessions.
        #[test]
        fn sessions_match_brute_force(
            steps in prop::collection::vec((0u32..3, 0u64..200, 0u64..600), 1..120),
            gap in 1u64..400,
            lateness in prop_oneof![Just(0u64), 0u64..800],
            count in prop::option::of(1u64..4),
            every in 1usize..6,
        ) {
            // The watermark climbs; a record's time may lie below it (late)
            // or above it by up to 600 ms.
            let mut watermark = 0;
            let arrivals: Vec<(u32, u64, u64)> = steps
                .iter()
                .map(|&(k, climb, ahead)| {
                    watermark += climb;
                    (k, (watermark + ahead).saturating_sub(300), watermark)
                })
                .collect();
            let triggers = Triggers { allowed_lateness: lateness, count, every_ms: None };
            let mut state: WindowState<u32, u64, u64> = WindowState::new(triggers, true);
            let assigner = SessionWindows::with_gap_millis(gap);
            let mut got = Results::new();
            let mut emit = |w: Window, k: &u32, v: u64, d: i64| *got.entry((w, *k, v)).or_default() += d;
            let finish = |_: &u32, _: &Window, n: &u64| vec![*n];
            for (i, &(k, t, stream)) in arrivals.iter().enumerate() {
                if i % every == 0 {
                    state.advance(Some(stream), &finish, &mut emit);
                }
                state.insert(&k, &(k, t), t, stream, &assigner, &Count);
            }
            state.advance(None, &finish, &mut emit);
            prop_assert!(state.is_empty());
            got.retain(|_, d| *d != 0);
            prop_assert_eq!(got, oracle(&arrivals, gap, lateness, every));
        }
    }
}
