//! The control stream: checkpoint announcements from worker 0 to every
//! worker, and the coordinator that decides them.
//!
//! Worker 0's control operators hold a capability at the coordinator's time
//! `t`; sources keep their own capability below their control frontier, so
//! no data can pass `t` before the coordinator has decided whether `t` is a
//! checkpoint. The coordinator moves `t` just past worker 0's sources'
//! watermark (or, with no local sources, in growing steps whenever the
//! dataflow has caught up with it), and every checkpoint interval announces
//! `C = t`. Timely delivers an announcement sent at `t` before any frontier
//! downstream passes `t`, so every operator learns of `C` in time.
//!
//! A job whose sinks commit only on completed checkpoints (Kafka
//! transactions) asks for a **final checkpoint** ([`Coordinator::want_final`]):
//! when every source has ended, the coordinator announces [`FINAL`], after
//! every event time, so that the output of the end of the input belongs to a
//! checkpoint too, and ends the control streams only once it is complete.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::SnapshotStore;
use crate::EventTime;

/// The final checkpoint's time: after every event time, so that windows,
/// timers and joins have fired everything before it is taken.
pub const FINAL: EventTime = EventTime::MAX;

/// The decisions shared by one worker's control operators.
#[derive(Debug)]
pub struct Coordinator {
    leader: bool,
    t: EventTime,
    step: u64,
    interval: Duration,
    last: Instant,
    announced: Vec<EventTime>,
    /// When each announcement was made, for checkpoint durations.
    announced_at: BTreeMap<EventTime, Instant>,
    requested: bool,
    done: bool,
    /// Uncapped watermarks of this worker's sources, by source.
    desired: BTreeMap<usize, EventTime>,
    next_source: usize,
    /// A final checkpoint is wanted, and whether it has been taken.
    final_wanted: bool,
    final_taken: bool,
}

impl Coordinator {
    /// A coordinator; only the leader (worker 0) decides. `start` is the
    /// restored checkpoint time, if any.
    pub fn new(leader: bool, interval: Duration, start: Option<EventTime>) -> Self {
        Coordinator {
            leader,
            t: start.map_or(1, |c| c.saturating_add(1)),
            step: 1,
            interval,
            last: Instant::now(),
            announced: Vec::new(),
            announced_at: BTreeMap::new(),
            requested: false,
            done: false,
            desired: BTreeMap::new(),
            next_source: 0,
            final_wanted: false,
            // Restored from the final checkpoint: nothing is left to take.
            final_taken: start == Some(FINAL),
        }
    }

    /// Asks for a final checkpoint at [`FINAL`] once every source has ended
    /// (for sinks that commit output only on completed checkpoints).
    pub fn want_final(&mut self) {
        self.final_wanted = true;
    }

    /// The time sources stay below.
    pub fn time(&self) -> EventTime {
        self.t
    }

    /// Every checkpoint announced so far, oldest first.
    pub fn announced(&self) -> &[EventTime] {
        &self.announced
    }

    /// How long ago checkpoint `c` was announced.
    pub fn age(&self, c: EventTime) -> Option<Duration> {
        self.announced_at.get(&c).map(Instant::elapsed)
    }

    /// Whether the control streams have ended.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Asks for a checkpoint as soon as possible (a savepoint).
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// A new source on this worker; it reports its watermark with
    /// [`Coordinator::publish`].
    pub fn register_source(&mut self) -> usize {
        self.next_source += 1;
        self.next_source - 1
    }

    /// A local source's uncapped watermark (`None` once it is finished).
    pub fn publish(&mut self, source: usize, watermark: Option<EventTime>) {
        match watermark {
            Some(w) => {
                self.desired.insert(source, w);
            }
            None => {
                self.desired.remove(&source);
            }
        }
    }

    /// Moves `t` and announces checkpoints; `probe` is the dataflow's
    /// frontier (the sinks'), `complete` tells whether a checkpoint is
    /// complete.
    pub fn tick(&mut self, probe: Option<EventTime>, complete: impl Fn(EventTime) -> bool) {
        if !self.leader || self.done {
            return;
        }
        // Nothing below `t` but the control streams: every source has ended.
        if probe.is_none_or(|p| p >= self.t) {
            if self.final_wanted && !self.final_taken {
                self.final_taken = true;
                self.t = FINAL;
                self.announced.push(FINAL);
                self.announced_at.insert(FINAL, Instant::now());
            } else if self.announced.last() != Some(&FINAL) || complete(FINAL) {
                self.done = true;
            }
            return;
        }
        let caught_up = probe.is_some_and(|p| p + 1 >= self.t);
        if let Some(&desired) = self.desired.values().min() {
            self.t = self.t.max(desired.saturating_add(1));
        } else if caught_up {
            self.t = self.t.saturating_add(self.step);
            self.step = self.step.saturating_mul(2).min(1 << 40);
        }
        let due = self.requested || self.last.elapsed() >= self.interval;
        if due && self.announced.last() != Some(&self.t) {
            self.announced.push(self.t);
            self.announced_at.insert(self.t, Instant::now());
            self.last = Instant::now();
            self.requested = false;
        }
    }
}

/// A control stream for one operator: the announced checkpoint times, on
/// every worker, at (or below) their own times.
pub fn control_stream<'scope>(
    scope: Scope<'scope, EventTime>,
    coordinator: Rc<std::cell::RefCell<Coordinator>>,
    probe: ProbeHandle<EventTime>,
    store: Rc<dyn SnapshotStore>,
) -> Stream<'scope, EventTime, Vec<EventTime>> {
    let peers = scope.peers();
    let leader = scope.index() == 0;
    source::<_, CapacityContainerBuilder<Vec<(usize, EventTime)>>, _, _>(
        scope,
        "CheckpointControl",
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = leader.then_some(capability);
            let mut sent = 0;
            move |output| {
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                let mut coordinator = coordinator.borrow_mut();
                coordinator.tick(probe.with_frontier(|f| f.first().copied()), |c| {
                    store.is_complete(c)
                });
                let announced = &coordinator.announced()[sent..];
                if !announced.is_empty() {
                    let mut session = output.session(cap);
                    for c in announced {
                        session.give_iterator((0..peers).map(|w| (w, *c)));
                    }
                    sent += announced.len();
                }
                if coordinator.done() {
                    capability = None;
                    return;
                }
                if coordinator.time() > *cap.time() {
                    cap.downgrade(&coordinator.time());
                }
                activator.activate_after(Duration::from_millis(1));
            }
        },
    )
    .unary::<CapacityContainerBuilder<Vec<EventTime>>, _, _, _>(
        Exchange::new(|(w, _): &(usize, EventTime)| *w as u64),
        "ControlBroadcast",
        |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    output
                        .session(&cap)
                        .give_iterator(data.drain(..).map(|(_, c)| c));
                });
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_local_sources_and_announces_on_the_interval() {
        let mut c = Coordinator::new(true, Duration::ZERO, None);
        let s = c.register_source();
        c.publish(s, Some(1_000));
        c.tick(Some(0), |_| false);
        assert_eq!(c.time(), 1_001);
        assert_eq!(c.announced(), &[1_001]);
        c.tick(Some(500), |_| false);
        assert_eq!(
            c.announced(),
            &[1_001],
            "no second announcement at the same time"
        );
        c.publish(s, Some(2_000));
        c.tick(Some(1_000), |_| false);
        assert_eq!((c.time(), c.announced()), (2_001, &[1_001, 2_001][..]));
        // every source finished and the dataflow caught up: done
        c.publish(s, None);
        c.tick(Some(2_001), |_| false);
        assert!(c.done());
    }

    #[test]
    fn a_final_checkpoint_after_every_event_time_ends_the_job() {
        let mut c = Coordinator::new(true, Duration::from_secs(3600), None);
        c.want_final();
        let s = c.register_source();
        c.publish(s, Some(1_000));
        c.tick(Some(0), |_| false);
        c.publish(s, None);
        c.tick(Some(1_001), |_| false);
        assert_eq!((c.time(), c.announced()), (FINAL, &[FINAL][..]));
        assert!(!c.done());
        c.tick(Some(FINAL), |_| false);
        assert!(!c.done(), "waits until the final checkpoint is complete");
        c.tick(Some(FINAL), |t| t == FINAL);
        assert!(c.done());
        // restored from it: nothing more to take
        let mut r = Coordinator::new(true, Duration::from_secs(3600), Some(FINAL));
        r.want_final();
        r.tick(None, |_| false);
        assert!(r.done() && r.announced().is_empty());
    }

    #[test]
    fn steps_without_local_sources_when_caught_up() {
        let mut c = Coordinator::new(true, Duration::from_secs(3600), Some(100));
        assert_eq!(c.time(), 101);
        c.tick(Some(50), |_| false);
        assert_eq!(c.time(), 101, "waits while the dataflow is behind");
        c.tick(Some(100), |_| false);
        assert_eq!(c.time(), 102);
        c.tick(Some(101), |_| false);
        assert_eq!(c.time(), 104);
        assert!(c.announced().is_empty());
        c.request();
        c.tick(Some(50), |_| false);
        assert_eq!(c.announced(), &[104]);
    }
}
