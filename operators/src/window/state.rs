//! The state of a keyed window operator, free of timely: accumulators per
//! (window end, key) for aligned windows, the sessions of merging ones
//! ([`super::sessions`]), and the rules for firing, late updates and
//! clean-up. [`super::operator`] drives it.
//!
//! Every emission is an update: the previous result of a window (if any) is
//! retracted and the new one inserted, so early firings, late records within
//! the allowed lateness and session merges all correct what was emitted
//! before. Consolidating the updates gives the final results.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::ops::Bound;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thin_vec::ThinVec;

use super::combine::Partial;
use super::sessions::Sessions;
use super::{Aggregate, Window, WindowAssigner};
use crate::checkpoint::part::{decode, encode, PartError};
use crate::keyed::key_group;
use crate::EventTime;

/// Whether a record at `stream_time` is too late for `window`: past its end
/// by the allowed lateness or more. The one rule for the window operator and
/// its combiner ([`super::combine`]).
pub(crate) fn past_lateness(
    window: &Window,
    allowed_lateness: u64,
    stream_time: EventTime,
) -> bool {
    window.end.saturating_add(allowed_lateness) <= stream_time
}

/// When windows fire besides the watermark passing their end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Triggers {
    /// Keep a window's state this long (event time) after its end; late
    /// records in that time update it.
    pub allowed_lateness: u64,
    /// Fire early after this many records since the last firing.
    pub count: Option<u64>,
    /// Fire early (windows that changed) every this many ms of processing time.
    pub every_ms: Option<u64>,
}

/// One key's state in one window: as small as it can be, for there is one
/// per key and window (q18's 5.9 M slots of 112 bytes with their keys were
/// most of its memory). The window is kept beside it, once per window for
/// aligned ones ([`Aligned`]) and per session for merging ones.
pub(super) struct Slot<Acc, O> {
    pub(super) acc: Acc,
    /// What was emitted for this state and not retracted yet: one word
    /// while empty, as it stays where windows fire once.
    pub(super) emitted: ThinVec<(Window, O)>,
    pub(super) since_fire: SinceFire,
}

impl<Acc, O> Slot<Acc, O> {
    pub(super) fn new(acc: Acc) -> Self {
        Slot {
            acc,
            emitted: ThinVec::new(),
            since_fire: SinceFire::default(),
        }
    }
}

/// Records added to a slot since it last fired, and whether it changed
/// since: a count below 2^63 and a flag in one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SinceFire(u64);

impl SinceFire {
    const CHANGED: u64 = 1 << 63;

    fn of(records: u64, changed: bool) -> SinceFire {
        SinceFire(records.min(!Self::CHANGED) | if changed { Self::CHANGED } else { 0 })
    }

    /// The records added since the last firing.
    pub(super) fn records(self) -> u64 {
        self.0 & !Self::CHANGED
    }

    /// Whether the slot changed since its last firing.
    pub(super) fn changed(self) -> bool {
        self.0 & Self::CHANGED != 0
    }

    /// `records` more, changed (the count saturates).
    pub(super) fn add(&mut self, records: u64) {
        *self = SinceFire::of(self.records().saturating_add(records), true);
    }

    /// The records of `other` too (a session merged into this one's).
    pub(super) fn absorb(&mut self, other: SinceFire) {
        let records = self.records().saturating_add(other.records());
        *self = SinceFire::of(records, self.changed() || other.changed());
    }
}

/// A slot as written to a snapshot.
#[derive(Serialize)]
struct SlotRef<'a, K, Acc, O> {
    key: &'a K,
    window: Window,
    acc: &'a Acc,
    emitted: &'a [(Window, O)],
    since_fire: u64,
    changed: bool,
}

/// A slot as read back (the same fields, owned).
#[derive(Deserialize)]
struct SlotOwned<K, Acc, O> {
    key: K,
    window: Window,
    acc: Acc,
    emitted: Vec<(Window, O)>,
    since_fire: u64,
    changed: bool,
}

/// The keys' slots of one aligned window (one window per end: the
/// assigners that do not merge make windows of one size).
struct Aligned<K, Acc, O> {
    window: Window,
    slots: FxHashMap<K, Slot<Acc, O>>,
}

impl<K, Acc, O> Aligned<K, Acc, O> {
    fn new(window: Window) -> Self {
        let slots = FxHashMap::default();
        Aligned { window, slots }
    }
}

/// Accumulators of every open window of one worker.
pub(crate) struct WindowState<K, Acc, O> {
    triggers: Triggers,
    /// Aligned windows: end -> key -> state (empty for merging assigners).
    windows: BTreeMap<EventTime, Aligned<K, Acc, O>>,
    /// Merging assigners' sessions.
    sessions: Option<Sessions<K, Acc, O>>,
    /// Windows with `end <= fired_upto` have had their on-time firing.
    fired_upto: EventTime,
    /// Fired windows updated since, and windows whose count trigger fired.
    dirty: Vec<(EventTime, K)>,
    /// A custom trigger: fire a window when its accumulator satisfies this.
    fire_when: Option<FireWhen<Acc>>,
}

/// A custom trigger on a window's accumulator.
pub(crate) type FireWhen<Acc> = std::rc::Rc<dyn Fn(&Acc) -> bool>;

impl<K: Hash + Eq + Clone, Acc, O: Clone + PartialEq> WindowState<K, Acc, O> {
    pub(crate) fn new(triggers: Triggers, merging: bool) -> Self {
        WindowState {
            triggers,
            windows: BTreeMap::new(),
            sessions: merging.then(Sessions::new),
            fired_upto: 0,
            dirty: Vec::new(),
            fire_when: None,
        }
    }

    /// Fires a window early whenever `fire_when(accumulator)` holds after a
    /// record was added.
    pub(crate) fn set_fire_when(&mut self, fire_when: Option<FireWhen<Acc>>) {
        self.fire_when = fire_when;
    }

    /// Adds `record` (at event time `time`, carried at stream time
    /// `stream_time`) to its windows. Returns `false` if every window it
    /// belongs to is already past its allowed lateness.
    pub(crate) fn insert<D, A, W>(
        &mut self,
        key: &K,
        record: &D,
        time: EventTime,
        stream_time: EventTime,
        assigner: &W,
        agg: &A,
    ) -> bool
    where
        A: Aggregate<D, Acc = Acc>,
        W: WindowAssigner,
    {
        let mut placed = false;
        let (fired_upto, triggers) = (self.fired_upto, &self.triggers);
        let (dirty, fire_when) = (&mut self.dirty, &self.fire_when);
        let mut touch = |end: EventTime, slot: &mut Slot<Acc, O>| {
            placed = true;
            Self::touched(fired_upto, triggers, fire_when, dirty, key, end, slot, 1);
        };
        assigner.assign(time, |window| {
            let expired = past_lateness(&window, triggers.allowed_lateness, stream_time);
            match &mut self.sessions {
                Some(sessions) => {
                    if let Some((end, slot)) =
                        sessions.merge_into(key, record, window, expired, agg)
                    {
                        touch(end, slot);
                    }
                }
                None if expired => {}
                None => {
                    // Looked up by reference: the key is cloned for a new
                    // slot only.
                    let end = window.end;
                    let aligned = self.windows.entry(end);
                    let slots = &mut aligned.or_insert_with(|| Aligned::new(window)).slots;
                    if let Some(slot) = slots.get_mut(key) {
                        agg.add(&mut slot.acc, record);
                        touch(end, slot);
                    } else {
                        let mut slot = Slot::new(agg.create());
                        agg.add(&mut slot.acc, record);
                        touch(end, slots.entry(key.clone()).or_insert(slot));
                    }
                }
            }
        });
        placed
    }

    /// Merges a partial accumulator (records folded elsewhere, none of them
    /// past the window's allowed lateness) into its window. Not for merging
    /// assigners.
    pub(crate) fn insert_partial<D, A>(&mut self, partial: Partial<K, Acc>, agg: &A)
    where
        A: Aggregate<D, Acc = Acc>,
    {
        let Partial {
            window,
            key,
            acc,
            records,
        } = partial;
        let aligned = self.windows.entry(window.end);
        let slots = &mut aligned.or_insert_with(|| Aligned::new(window)).slots;
        let mut touch = |slot: &mut Slot<Acc, O>| {
            Self::touched(
                self.fired_upto,
                &self.triggers,
                &self.fire_when,
                &mut self.dirty,
                &key,
                window.end,
                slot,
                records,
            );
        };
        // Looked up by reference: the key is cloned for a new slot only.
        match slots.get_mut(&key) {
            Some(slot) => {
                agg.merge(&mut slot.acc, acc);
                touch(slot);
            }
            None => touch(slots.entry(key.clone()).or_insert(Slot::new(acc))),
        }
    }

    /// Marks `slot` (of the window ending at `end`) changed by `records`
    /// more records, and dirty if it fired before, its count trigger is due
    /// or `fire_when` holds.
    #[allow(clippy::too_many_arguments)]
    fn touched(
        fired_upto: EventTime,
        triggers: &Triggers,
        fire_when: &Option<FireWhen<Acc>>,
        dirty: &mut Vec<(EventTime, K)>,
        key: &K,
        end: EventTime,
        slot: &mut Slot<Acc, O>,
        records: u64,
    ) {
        slot.since_fire.add(records);
        let late = end <= fired_upto;
        let counted = triggers
            .count
            .is_some_and(|n| slot.since_fire.records() >= n);
        let custom = fire_when.as_ref().is_some_and(|f| f(&slot.acc));
        if late || counted || custom {
            dirty.push((end, key.clone()));
        }
    }

    /// Fires what the watermark `frontier` (`None`: the input has ended)
    /// completes, re-emits updated windows, and drops state past its
    /// allowed lateness. `emit` gets `(window, key, value, diff)`.
    pub(crate) fn advance<F>(
        &mut self,
        frontier: Option<EventTime>,
        finish: &impl Fn(&K, &Window, &Acc) -> Vec<O>,
        emit: &mut F,
    ) where
        F: FnMut(Window, &K, O, i64),
    {
        let done = self.advance_within(frontier, usize::MAX, finish, emit);
        debug_assert!(done, "no budget to run out of");
    }

    /// [`WindowState::advance`], firing at most `budget` of the slots that
    /// firing drops (those past their allowed lateness, the end of the
    /// input's all): false if some wait for another call. Results of a
    /// window of millions of keys (q18's global window at the end of its
    /// input) all emitted at once held as much memory again as the state;
    /// a budget at a time, the sink writes them out in between.
    pub(crate) fn advance_within<F>(
        &mut self,
        frontier: Option<EventTime>,
        mut budget: usize,
        finish: &impl Fn(&K, &Window, &Acc) -> Vec<O>,
        emit: &mut F,
    ) -> bool
    where
        F: FnMut(Window, &K, O, i64),
    {
        let lateness = self.triggers.allowed_lateness;
        // On-time firings: ends in (fired_upto, frontier].
        match &mut self.sessions {
            Some(sessions) => sessions.fire_due(frontier, self.fired_upto, lateness, finish, emit),
            None if frontier.is_none_or(|f| f > self.fired_upto) => {
                let upper = match frontier {
                    Some(f) => Bound::Included(f),
                    None => Bound::Unbounded,
                };
                let range = (Bound::Excluded(self.fired_upto), upper);
                for (&end, Aligned { window, slots }) in self.windows.range_mut(range) {
                    let keep = frontier.is_some_and(|f| end.saturating_add(lateness) > f);
                    if keep {
                        for (key, slot) in slots.iter_mut() {
                            fire(slot, *window, key, finish, emit, true);
                        }
                        continue;
                    }
                    // Dropped as they fire, so a window part fired keeps
                    // the rest. Windows kept end after those dropped: the
                    // windows before this one are done.
                    let fired = slots.extract_if(|_, _| true).take(budget);
                    for (key, mut slot) in fired {
                        fire(&mut slot, *window, &key, finish, emit, false);
                        budget -= 1;
                    }
                    if !slots.is_empty() {
                        self.fired_upto = self.fired_upto.max(end.saturating_sub(1));
                        return false;
                    }
                }
            }
            None => {}
        }
        for (end, key) in std::mem::take(&mut self.dirty) {
            let slot = match &mut self.sessions {
                Some(sessions) => sessions.get_mut(&key, end),
                None => (self.windows.get_mut(&end))
                    .and_then(|a| Some((a.window, a.slots.get_mut(&key)?))),
            };
            if let Some((window, slot)) = slot.filter(|(_, slot)| slot.since_fire.changed()) {
                fire(slot, window, &key, finish, emit, true);
            }
        }
        self.fired_upto = self.fired_upto.max(frontier.unwrap_or(EventTime::MAX));
        // Clean-up: windows whose end + lateness the watermark has passed.
        match (&mut self.sessions, frontier) {
            (Some(sessions), _) => sessions.clean(frontier),
            (None, Some(f)) if f > lateness => {
                self.windows = self.windows.split_off(&(f - lateness).saturating_add(1));
            }
            (None, Some(_)) => {}
            (None, None) => self.windows.clear(),
        }
        true
    }

    /// Early firing of every open window that changed since its last firing.
    pub(crate) fn fire_changed<F>(
        &mut self,
        finish: &impl Fn(&K, &Window, &Acc) -> Vec<O>,
        emit: &mut F,
    ) where
        F: FnMut(Window, &K, O, i64),
    {
        let aligned = (self.windows.values_mut())
            .flat_map(|a| a.slots.iter_mut().map(|(key, slot)| (key, a.window, slot)));
        let sessions = self.sessions.iter_mut().flat_map(|s| s.iter_mut());
        for (key, window, slot) in aligned.chain(sessions) {
            if slot.since_fire.changed() {
                fire(slot, window, key, finish, emit, true);
            }
        }
    }

    /// Whether no window is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.sessions.as_ref().is_none_or(|s| s.is_empty())
    }

    /// The open windows, encoded per key group.
    pub(crate) fn snapshot(&self) -> Vec<(u64, Vec<u8>)>
    where
        K: Hash + Serialize,
        Acc: Serialize,
        O: Serialize,
    {
        let mut groups: BTreeMap<u64, Vec<SlotRef<'_, K, Acc, O>>> = BTreeMap::new();
        let aligned = (self.windows.values())
            .flat_map(|a| a.slots.iter().map(|(key, slot)| (key, a.window, slot)));
        let sessions = self.sessions.iter().flat_map(|s| s.iter());
        for (key, window, slot) in aligned.chain(sessions) {
            groups.entry(key_group(key)).or_default().push(SlotRef {
                key,
                window,
                acc: &slot.acc,
                emitted: &slot.emitted,
                since_fire: slot.since_fire.records(),
                changed: slot.since_fire.changed(),
            });
        }
        groups
            .into_iter()
            .map(|(group, slots)| (group, encode(&slots)))
            .collect()
    }

    /// Adds the windows of one key group from a snapshot.
    pub(crate) fn restore_group(&mut self, bytes: &[u8]) -> Result<(), PartError>
    where
        K: DeserializeOwned,
        Acc: DeserializeOwned,
        O: DeserializeOwned,
    {
        let slots: Vec<SlotOwned<K, Acc, O>> = decode(bytes)?;
        for s in slots {
            let slot = Slot {
                acc: s.acc,
                emitted: s.emitted.into(),
                since_fire: SinceFire::of(s.since_fire, s.changed),
            };
            match &mut self.sessions {
                Some(sessions) => sessions.restore(s.key, s.window, slot),
                None => {
                    let aligned = self.windows.entry(s.window.end);
                    let aligned = aligned.or_insert_with(|| Aligned::new(s.window));
                    aligned.slots.insert(s.key, slot);
                }
            }
        }
        Ok(())
    }

    /// After a restore from checkpoint `c`: windows ending at or before `c`
    /// have fired.
    pub(crate) fn set_fired_upto(&mut self, c: EventTime) {
        self.fired_upto = c;
    }
}

/// Emits a window's new result, retracting what it emitted before.
pub(super) fn fire<K, Acc, O: Clone + PartialEq, F>(
    slot: &mut Slot<Acc, O>,
    window: Window,
    key: &K,
    finish: &impl Fn(&K, &Window, &Acc) -> Vec<O>,
    emit: &mut F,
    keep: bool,
) where
    F: FnMut(Window, &K, O, i64),
{
    let results = finish(key, &window, &slot.acc);
    slot.since_fire = SinceFire::default();
    let unchanged = slot.emitted.len() == results.len()
        && slot
            .emitted
            .iter()
            .zip(&results)
            .all(|((w, old), new)| *w == window && old == new);
    if unchanged {
        return;
    }
    for (w, old) in slot.emitted.drain(..) {
        emit(w, key, old, -1);
    }
    if keep {
        slot.emitted = results.iter().map(|o| (window, o.clone())).collect();
    }
    for result in results {
        emit(window, key, result, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{Count, GlobalWindows, SessionWindows, TumblingWindows};
    use proptest::prelude::*;

    type State = WindowState<u32, u64, u64>;
    type Out = Vec<(Window, u32, u64, i64)>;

    fn finish(_: &u32, _: &Window, acc: &u64) -> Vec<u64> {
        vec![*acc]
    }

    fn feed<W: WindowAssigner>(
        state: &mut State,
        records: &[(u32, u64)],
        assigner: &W,
        out: &mut Out,
    ) {
        for &(k, t) in records {
            state.insert(&k, &(k, t), t, t, assigner, &Count);
        }
        let frontier = records.iter().map(|r| r.1).max();
        state.advance(frontier, &finish, &mut |w, k, v, d| out.push((w, *k, v, d)));
    }

    fn round_trip<W: WindowAssigner>(
        assigner: W,
        triggers: Triggers,
        records: Vec<(u32, u64)>,
        split: usize,
    ) {
        let (before, after) = records.split_at(split.min(records.len()));
        let c = before.iter().map(|r| r.1).max().unwrap_or(0);
        // records arrive in time order; everything after the split is at or above `c`
        let mut original = State::new(triggers, assigner.merging());
        let mut ignored = Vec::new();
        feed(&mut original, before, &assigner, &mut ignored);
        original.advance(Some(c), &finish, &mut |w, k, v, d| {
            ignored.push((w, *k, v, d))
        });
        let mut restored = State::new(triggers, assigner.merging());
        for (_, bytes) in original.snapshot() {
            restored.restore_group(&bytes).unwrap();
        }
        restored.set_fired_upto(c);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for state_out in [(&mut original, &mut a), (&mut restored, &mut b)] {
            let (state, out) = state_out;
            feed(state, after, &assigner, out);
            state.advance(None, &finish, &mut |w, k, v, d| out.push((w, *k, v, d)));
            out.sort();
        }
        assert_eq!(a, b);
    }

    #[test]
    fn since_fire_counts_and_flags_in_one_word() {
        let mut a = SinceFire::default();
        assert_eq!((a.records(), a.changed()), (0, false));
        a.add(3);
        assert_eq!((a.records(), a.changed()), (3, true));
        let mut b = SinceFire::of(u64::MAX, false);
        assert_eq!((b.records(), b.changed()), ((1 << 63) - 1, false));
        b.absorb(a);
        assert_eq!((b.records(), b.changed()), ((1 << 63) - 1, true));
        a.absorb(SinceFire::of(4, false));
        assert_eq!((a.records(), a.changed()), (7, true));
    }

    /// Each record, then one `advance_within` of `budget` at its time (so
    /// records arrive while firings wait), then calls at the end of the
    /// input until one is done: the updates, sorted.
    fn fire_within<W: WindowAssigner>(
        assigner: &W,
        triggers: Triggers,
        records: &[(u32, u64)],
        budget: usize,
    ) -> Out {
        let mut state = State::new(triggers, assigner.merging());
        let mut out = Vec::new();
        let mut emit = |w, k: &u32, v, d| out.push((w, *k, v, d));
        for &(k, t) in records {
            state.insert(&k, &(k, t), t, t, assigner, &Count);
            state.advance_within(Some(t), budget, &finish, &mut emit);
        }
        let mut calls = 0;
        while !state.advance_within(None, budget, &finish, &mut emit) {
            calls += 1;
        }
        assert!(state.is_empty());
        assert!(calls <= records.len() / budget + 1, "{calls} calls");
        out.sort();
        out
    }

    proptest! {
        /// Firing a budget of slots at a time emits what firing them all
        /// at once does, with the allowed lateness, and for the global
        /// window at the end of the input.
        #[test]
        fn a_budget_at_a_time_fires_the_same(
            steps in prop::collection::vec((0u32..6, 0u64..400), 1..80),
            budget in 1usize..4,
            lateness in 0u64..1_000,
            global in any::<bool>(),
        ) {
            let mut clock = 0;
            let records: Vec<(u32, u64)> = steps.into_iter().map(|(k, dt)| { clock += dt; (k, clock) }).collect();
            let triggers = Triggers { allowed_lateness: lateness, count: None, every_ms: None };
            let (all, some) = match global {
                true => (fire_within(&GlobalWindows, triggers, &records, usize::MAX), fire_within(&GlobalWindows, triggers, &records, budget)),
                false => {
                    let tumbling = TumblingWindows::of_millis(1_000);
                    (fire_within(&tumbling, triggers, &records, usize::MAX), fire_within(&tumbling, triggers, &records, budget))
                }
            };
            prop_assert!(!all.is_empty());
            prop_assert_eq!(all, some);
        }

        #[test]
        fn snapshot_restore_continues_identically(
            steps in prop::collection::vec((0u32..4, 0u64..300), 1..80),
            split in 0usize..80,
            lateness in 0u64..1_000,
            count in prop::option::of(1u64..4),
            sessions in any::<bool>(),
        ) {
            let mut clock = 0;
            let records: Vec<(u32, u64)> = steps.into_iter().map(|(k, dt)| { clock += dt; (k, clock) }).collect();
            let triggers = Triggers { allowed_lateness: lateness, count, every_ms: None };
            if sessions {
                round_trip(SessionWindows::with_gap_millis(500), Triggers { allowed_lateness: 0, ..triggers }, records, split);
            } else {
                round_trip(TumblingWindows::of_millis(1_000), triggers, records, split);
            }
        }
    }
}
