//! The state of one worker's process operator, free of timely: pending
//! records by time, per-key state, timers and TTLs; running them in time
//! order; and their snapshot per key group.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::ExchangeData;

use super::{ProcessContext, ProcessFunction};
use crate::checkpoint::part::{decode, encode};
use crate::keyed::key_group;
use crate::EventTime;

pub(crate) struct Timers<K> {
    pub(crate) event: BTreeSet<(EventTime, K)>,
    pub(crate) processing: BTreeSet<(u64, K)>,
}

pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Serialize, Deserialize)]
struct Keyed<S> {
    state: S,
    /// Event time of the key's last record, for the TTL.
    touched: EventTime,
    /// Where the key's entry in the expiry queue is (with a TTL).
    #[serde(skip)]
    queued: EventTime,
}

/// When keys expire: every key with state has one entry `(at, key)` in
/// `queue`, at or before its expiry (`touched` + the TTL). A record only
/// moves `touched`; when the entry comes up and the key was touched since,
/// it goes back in at the key's expiry now, so a key is queued about once
/// per TTL, not once per record.
struct Expiry<K> {
    ttl_ms: Option<u64>,
    queue: BTreeSet<(EventTime, K)>,
}

/// A key's state, created (at `now`, with its expiry queued) on first use.
fn keyed<'a, K: Hash + Ord + Clone, S: Default>(
    states: &'a mut FxHashMap<K, Keyed<S>>,
    expiry: &mut Expiry<K>,
    key: &K,
    now: EventTime,
) -> &'a mut Keyed<S> {
    states.entry(key.clone()).or_insert_with(|| {
        let queued = now.saturating_add(expiry.ttl_ms.unwrap_or(0));
        if expiry.ttl_ms.is_some() {
            expiry.queue.insert((queued, key.clone()));
        }
        Keyed {
            state: S::default(),
            touched: now,
            queued,
        }
    })
}

/// Where a call's records go, with their times.
type Outputs<'a, T> = &'a mut Vec<(T, EventTime)>;

/// Everything one key holds, as written to a checkpoint.
#[derive(Serialize, Deserialize)]
struct KeyImage<K, D, S> {
    key: K,
    keyed: Option<Keyed<S>>,
    pending: Vec<(EventTime, D)>,
    event_timers: Vec<EventTime>,
    processing_timers: Vec<u64>,
    pub(crate) ttl: Option<EventTime>,
}

/// The state of one worker's process operator.
pub(crate) struct ProcessState<K, D, S> {
    /// Records waiting for the watermark, as they came, and their least
    /// time.
    pending: Vec<(EventTime, K, D)>,
    pending_min: Option<EventTime>,
    states: FxHashMap<K, Keyed<S>>,
    timers: Timers<K>,
    expiry: Expiry<K>,
}

impl<K, D, S> ProcessState<K, D, S>
where
    K: ExchangeData + Hash + Ord + Clone,
    D: ExchangeData + Ord,
    S: ExchangeData + Default,
{
    /// Empty state; keys expire `state_ttl_ms` after their last record.
    pub(crate) fn new(state_ttl_ms: Option<u64>) -> Self {
        ProcessState {
            pending: Vec::new(),
            pending_min: None,
            states: FxHashMap::default(),
            timers: Timers {
                event: BTreeSet::new(),
                processing: BTreeSet::new(),
            },
            expiry: Expiry {
                ttl_ms: state_ttl_ms,
                queue: BTreeSet::new(),
            },
        }
    }

    /// A record of `key` to handle once the watermark passes `time`.
    pub(crate) fn add(&mut self, time: EventTime, key: K, record: D) {
        self.pending.push((time, key, record));
        self.pending_min = Some(self.pending_min.map_or(time, |t| t.min(time)));
    }

    /// When the next processing-time timer is due (wall-clock ms).
    pub(crate) fn next_processing_timer(&self) -> Option<u64> {
        self.timers.processing.first().map(|(at, _)| *at)
    }

    /// Handles records and timers in time order while their time is below
    /// `limit` (`None`: all of them).
    pub(crate) fn run<P>(
        &mut self,
        limit: Option<EventTime>,
        floor: EventTime,
        function: &mut P,
        outs: &mut Vec<(P::Out, EventTime)>,
        sides: &mut Vec<(P::Side, EventTime)>,
    ) where
        P: ProcessFunction<K, D, State = S>,
    {
        let ready = |t: EventTime| limit.is_none_or(|l| t < l);
        // The records due, in (time, key, record) order: a total order, so
        // equal elements are the same.
        let mut records = Vec::new();
        if self.pending_min.is_some_and(ready) {
            records.extend(self.pending.extract_if(.., |(t, _, _)| ready(*t)));
            self.pending_min = self.pending.iter().map(|(t, _, _)| *t).min();
            records.sort_unstable();
        }
        let mut records = records.into_iter().peekable();
        let mut watermark = floor;
        loop {
            // The next thing in time: records first, then timers.
            let next_record = records.peek().map(|(t, _, _)| *t);
            let first = |queue: &BTreeSet<(EventTime, K)>| {
                queue.first().map(|(t, _)| *t).filter(|t| ready(*t))
            };
            let (next_timer, next_ttl) = (first(&self.timers.event), first(&self.expiry.queue));
            let Some(now) = [next_record, next_timer, next_ttl]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            watermark = watermark.max(now);
            if next_record == Some(now) {
                while let Some((_, k, record)) = records.next_if(|(t, _, _)| *t == now) {
                    self.call(&k, (now, watermark), true, (outs, sides), |state, ctx| {
                        function.process(record, state, ctx)
                    });
                }
            } else if next_timer == Some(now) {
                let (_, k) = self.timers.event.pop_first().expect("a timer");
                self.call(&k, (now, watermark), false, (outs, sides), |state, ctx| {
                    function.on_timer(state, ctx)
                });
            } else {
                let (_, k) = self.expiry.queue.pop_first().expect("a ttl");
                let ttl_ms = self.expiry.ttl_ms.unwrap_or(0);
                match self.states.get_mut(&k) {
                    Some(keyed) if keyed.touched.saturating_add(ttl_ms) > now => {
                        keyed.queued = keyed.touched.saturating_add(ttl_ms);
                        self.expiry.queue.insert((keyed.queued, k));
                    }
                    _ => {
                        self.states.remove(&k);
                    }
                }
            }
        }
    }

    /// Calls `f` with `key`'s state (made on first use; `touch`ed: a
    /// record's) and a context at `(time, watermark)`, then drops the state
    /// and its expiry if `f` cleared it.
    fn call<O, Sd>(
        &mut self,
        key: &K,
        (time, watermark): (EventTime, EventTime),
        touch: bool,
        (out, side): (Outputs<'_, O>, Outputs<'_, Sd>),
        f: impl FnOnce(&mut S, &mut ProcessContext<'_, K, O, Sd>),
    ) {
        let entry = keyed(&mut self.states, &mut self.expiry, key, time);
        if touch {
            entry.touched = time;
        }
        let mut ctx = ProcessContext {
            key,
            time,
            watermark,
            out,
            side,
            timers: &mut self.timers,
            clear: false,
        };
        f(&mut entry.state, &mut ctx);
        if ctx.clear {
            if let Some(gone) = self.states.remove(key) {
                self.expiry.queue.remove(&(gone.queued, key.clone()));
            }
        }
    }

    /// Fires the processing-time timers that are due; outputs at `time`.
    pub(crate) fn run_processing<P>(
        &mut self,
        time: EventTime,
        function: &mut P,
        outs: &mut Vec<(P::Out, EventTime)>,
        sides: &mut Vec<(P::Side, EventTime)>,
    ) where
        P: ProcessFunction<K, D, State = S>,
    {
        let now_ms = wall_ms();
        while self
            .timers
            .processing
            .first()
            .is_some_and(|(at, _)| *at <= now_ms)
        {
            let (_, k) = self.timers.processing.pop_first().expect("a timer");
            self.call(&k, (time, time), false, (outs, sides), |state, ctx| {
                function.on_processing_timer(state, ctx)
            });
        }
    }

    /// The least time of a pending record or event-time timer.
    pub(crate) fn oldest(&self) -> Option<EventTime> {
        [self.pending_min, self.timers.event.first().map(|(t, _)| *t)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Every key's state, pending records and timers, per key group.
    pub(crate) fn snapshot(&self) -> Vec<(u64, Vec<u8>)>
    where
        D: Clone,
        S: Clone,
    {
        fn image<'a, K: Ord + Clone, D, S>(
            keys: &'a mut BTreeMap<K, KeyImage<K, D, S>>,
            k: &K,
        ) -> &'a mut KeyImage<K, D, S> {
            keys.entry(k.clone()).or_insert_with(|| KeyImage {
                key: k.clone(),
                keyed: None,
                pending: Vec::new(),
                event_timers: Vec::new(),
                processing_timers: Vec::new(),
                ttl: None,
            })
        }
        let mut keys: BTreeMap<K, KeyImage<K, D, S>> = BTreeMap::new();
        for (k, keyed) in &self.states {
            image(&mut keys, k).keyed = Some(Keyed {
                state: keyed.state.clone(),
                touched: keyed.touched,
                queued: keyed.queued,
            });
        }
        for (t, k, d) in &self.pending {
            image(&mut keys, k).pending.push((*t, d.clone()));
        }
        for (t, k) in &self.timers.event {
            image(&mut keys, k).event_timers.push(*t);
        }
        for (at, k) in &self.timers.processing {
            image(&mut keys, k).processing_timers.push(*at);
        }
        for (t, k) in &self.expiry.queue {
            image(&mut keys, k).ttl = Some(*t);
        }
        let mut groups: BTreeMap<u64, Vec<KeyImage<K, D, S>>> = BTreeMap::new();
        for (k, img) in keys {
            groups.entry(key_group(&k)).or_default().push(img);
        }
        groups
            .into_iter()
            .map(|(g, images)| (g, encode(&images)))
            .collect()
    }

    /// Adds one key group's keys from a snapshot.
    pub(crate) fn restore_group(
        &mut self,
        bytes: &[u8],
    ) -> Result<(), crate::checkpoint::PartError> {
        let images: Vec<KeyImage<K, D, S>> = decode(bytes)?;
        for img in images {
            if let Some(mut keyed) = img.keyed {
                // Every key with state has its expiry queued (a snapshot
                // may predate that rule for keys a timer made).
                if let Some(ttl_ms) = self.expiry.ttl_ms {
                    keyed.queued = img.ttl.unwrap_or(keyed.touched.saturating_add(ttl_ms));
                    self.expiry.queue.insert((keyed.queued, img.key.clone()));
                }
                self.states.insert(img.key.clone(), keyed);
            }
            for (t, d) in img.pending {
                self.add(t, img.key.clone(), d);
            }
            for t in img.event_timers {
                self.timers.event.insert((t, img.key.clone()));
            }
            for at in img.processing_timers {
                self.timers.processing.insert((at, img.key.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{ProcessContext, ProcessFunction};
    use proptest::prelude::*;

    /// Per key: the running sum, and a timer 300 ms after each record that
    /// emits it.
    struct Sum;

    impl ProcessFunction<u32, (u32, u64)> for Sum {
        type State = u64;
        type Out = (u32, u64);
        type Side = ();
        fn process(
            &mut self,
            r: (u32, u64),
            sum: &mut u64,
            ctx: &mut ProcessContext<'_, u32, (u32, u64), ()>,
        ) {
            *sum += r.1;
            ctx.register_event_timer(ctx.time() + 300);
        }
        fn on_timer(&mut self, sum: &mut u64, ctx: &mut ProcessContext<'_, u32, (u32, u64), ()>) {
            let key = *ctx.key();
            ctx.emit((key, *sum));
        }
    }

    /// Per key: how many records it has seen, emitted with each record; the
    /// count is cleared when it reaches `.0`.
    struct Seen(u64);

    impl ProcessFunction<u32, (u32, u64)> for Seen {
        type State = u64;
        type Out = (u64, u32, u64, u64);
        type Side = ();
        fn process(
            &mut self,
            r: (u32, u64),
            seen: &mut u64,
            ctx: &mut ProcessContext<'_, u32, (u64, u32, u64, u64), ()>,
        ) {
            *seen += 1;
            ctx.emit((ctx.time(), r.0, r.1, *seen));
            if *seen == self.0 {
                ctx.clear_state();
            }
        }
    }

    type State = ProcessState<u32, (u32, u64), u64>;

    fn fresh(ttl: Option<u64>) -> State {
        ProcessState::new(ttl)
    }

    fn add(state: &mut State, records: &[(u32, u64, u64)]) {
        for &(k, v, t) in records {
            state.add(t, k, (k, v));
        }
    }

    proptest! {
        /// A key's state is dropped `ttl` after its last record (a record
        /// exactly then still sees it), or when the function clears it,
        /// however often the state is run; each key with state has one
        /// expiry entry.
        #[test]
        fn keys_expire_a_ttl_after_their_last_record(
            steps in prop::collection::vec((0u32..4, 0u64..3, 0u64..120), 1..80),
            ttl in 1u64..300,
            clear_at in 1u64..6,
            runs in prop::collection::vec(0u64..3_000, 0..6),
        ) {
            let mut clock = 0;
            let records: Vec<(u32, u64, u64)> = steps.into_iter().map(|(k, v, dt)| { clock += dt; (k, v, clock) }).collect();
            let mut state: ProcessState<u32, (u32, u64), u64> = ProcessState::new(Some(ttl));
            add(&mut state, &records);
            let (mut got, mut sides) = (Vec::new(), Vec::new());
            let mut floor = 0;
            let mut limits = runs;
            limits.sort();
            for limit in limits {
                state.run(Some(limit), floor, &mut Seen(clear_at), &mut got, &mut sides);
                floor = floor.max(limit);
                prop_assert_eq!(state.expiry.queue.len(), state.states.len());
            }
            state.run(None, floor, &mut Seen(clear_at), &mut got, &mut sides);
            prop_assert_eq!(state.expiry.queue.len(), state.states.len());
            let mut got: Vec<_> = got.into_iter().map(|(row, _)| row).collect();
            got.sort();
            // Brute force: in (time, key, value) order, a key's count starts
            // again after a gap longer than the TTL or once it reached
            // `clear_at`.
            let mut sorted: Vec<(u64, u32, u64)> = records.iter().map(|&(k, v, t)| (t, k, v)).collect();
            sorted.sort();
            let mut last: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            let mut want = Vec::new();
            for (t, k, v) in sorted {
                let seen = match last.get(&k) {
                    Some(&(at, n)) if t <= at + ttl && n < clear_at => n + 1,
                    _ => 1,
                };
                last.insert(k, (t, seen));
                want.push((t, k, v, seen));
            }
            want.sort();
            prop_assert_eq!(got, want);
        }

        /// Snapshot at an arbitrary C, with records and timers pending above
        /// it: the restored state continues exactly as the original.
        #[test]
        fn snapshot_restore_continues_identically(
            steps in prop::collection::vec((0u32..5, 0u64..50, 0u64..200), 1..60),
            split in 0usize..60,
            ttl in prop::option::of(100u64..2_000),
        ) {
            let mut clock = 0;
            let records: Vec<(u32, u64, u64)> = steps.into_iter().map(|(k, v, dt)| { clock += dt; (k, v, clock) }).collect();
            let split = split.min(records.len());
            let c = records.get(split).map_or(clock + 1, |r| r.2);
            let (mut outs, mut sides) = (Vec::new(), Vec::new());
            let mut original = fresh(ttl);
            // everything arrives; the snapshot at C processes what is below C
            add(&mut original, &records);
            original.run(Some(c), 0, &mut Sum, &mut outs, &mut sides);
            let mut restored = fresh(ttl);
            for (_, bytes) in original.snapshot() {
                restored.restore_group(&bytes).unwrap();
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            original.run(None, c, &mut Sum, &mut a, &mut sides);
            restored.run(None, c, &mut Sum, &mut b, &mut sides);
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }
    }
}
