//! Watermarks at the sources: bounded out-of-orderness per partition, the
//! minimum over a source's partitions with idleness, and the late-data policy.
//!
//! This module is pure logic (no timely): a source feeds it each record's
//! partition and event time and gets back what to do with the record and
//! where its capability may move. Keeping it pure is what lets the lateness
//! rules be property-tested against a model.

use std::time::{Duration, Instant};

use crate::EventTime;

/// How a source derives its watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkStrategy {
    /// Bounded out-of-orderness: per partition, watermark = max event time
    /// seen - `bound_ms`.
    pub bound_ms: u64,
    /// A partition that has sent nothing for this long no longer holds the
    /// source's watermark back. `None`: partitions never go idle.
    pub idle_timeout: Option<Duration>,
    /// What happens to records below their partition's watermark.
    pub late_policy: LatePolicy,
}

impl Default for WatermarkStrategy {
    /// 2 s bound, idleness after 5 s, late records dropped.
    fn default() -> Self {
        WatermarkStrategy {
            bound_ms: 2_000,
            idle_timeout: Some(Duration::from_secs(5)),
            late_policy: LatePolicy::Drop,
        }
    }
}

/// The per-source policy for late records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatePolicy {
    /// Drop the record; it is counted in the metrics.
    #[default]
    Drop,
    /// Send the record, with its original event time, to the late side output.
    SideOutput,
    /// Send the record on the main output with its event time set to the
    /// watermark, so that downstream windows see it as an update.
    Retime,
}

impl std::str::FromStr for LatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop" => Ok(LatePolicy::Drop),
            "side-output" | "side" => Ok(LatePolicy::SideOutput),
            "retime" => Ok(LatePolicy::Retime),
            other => Err(format!(
                "unknown late policy '{other}': expected drop, side-output or retime"
            )),
        }
    }
}

/// What a source does with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lateness {
    /// On time: send it on the main output at this event time.
    OnTime(EventTime),
    /// Late, re-timed: send it on the main output at this (the watermark).
    Retimed(EventTime),
    /// Late: send it to the late side output with its own event time.
    Routed(EventTime),
    /// Late: drop it.
    Dropped,
}

/// The watermark state of one source partition.
#[derive(Clone, Debug)]
pub struct PartitionWatermark {
    max_seen: Option<EventTime>,
    finished: bool,
    last_active: Option<Instant>,
}

impl PartitionWatermark {
    fn watermark(&self, bound_ms: u64) -> EventTime {
        self.max_seen.map_or(0, |max| max.saturating_sub(bound_ms))
    }
}

/// Watermarks of the partitions one source instance owns.
///
/// ```
/// use tidewater_operators::{LatePolicy, Lateness, WatermarkStrategy};
/// use tidewater_operators::watermark::SourceWatermarks;
///
/// let strategy = WatermarkStrategy { bound_ms: 10, idle_timeout: None, late_policy: LatePolicy::Drop };
/// let mut wm = SourceWatermarks::new(strategy, 1);
/// assert_eq!(wm.admit(0, 100), Lateness::OnTime(100));
/// assert_eq!(wm.admit(0, 95), Lateness::OnTime(95));   // within the bound
/// assert_eq!(wm.admit(0, 89), Lateness::Dropped);      // below 100 - 10
/// assert_eq!(wm.advance(), Some(90));
/// ```
#[derive(Clone, Debug)]
pub struct SourceWatermarks {
    strategy: WatermarkStrategy,
    partitions: Vec<PartitionWatermark>,
    emitted: EventTime,
    now: Option<Instant>,
}

impl SourceWatermarks {
    /// State for `partitions` partitions, none seen yet (watermark 0).
    pub fn new(strategy: WatermarkStrategy, partitions: usize) -> Self {
        let fresh = PartitionWatermark {
            max_seen: None,
            finished: false,
            last_active: None,
        };
        SourceWatermarks {
            strategy,
            partitions: vec![fresh; partitions],
            emitted: 0,
            now: None,
        }
    }

    /// The strategy in force.
    pub fn strategy(&self) -> &WatermarkStrategy {
        &self.strategy
    }

    /// Sets the processing time used for idleness (call once per batch).
    ///
    /// A partition not heard from yet counts as active from the first call.
    pub fn set_now(&mut self, now: Instant) {
        if self.now.is_none() {
            for part in &mut self.partitions {
                part.last_active = Some(now);
            }
        }
        self.now = Some(now);
    }

    /// Decides what to do with a record of `partition` at event time `time`.
    ///
    /// A record is late when it is below its partition's watermark, or below
    /// the watermark this source has already emitted (possible only for a
    /// partition that was idle and woke up behind the others).
    pub fn admit(&mut self, partition: usize, time: EventTime) -> Lateness {
        let bound = self.strategy.bound_ms;
        let part = &mut self.partitions[partition];
        part.last_active = self.now;
        let watermark = part.watermark(bound).max(self.emitted);
        if time >= watermark {
            part.max_seen = Some(part.max_seen.map_or(time, |max| max.max(time)));
            return Lateness::OnTime(time);
        }
        match self.strategy.late_policy {
            LatePolicy::Drop => Lateness::Dropped,
            LatePolicy::SideOutput => Lateness::Routed(time),
            LatePolicy::Retime => Lateness::Retimed(watermark),
        }
    }

    /// Marks a partition as exhausted: it no longer holds the watermark.
    pub fn finish(&mut self, partition: usize) {
        self.partitions[partition].finished = true;
    }

    /// Whether every partition is exhausted.
    pub fn all_finished(&self) -> bool {
        self.partitions.iter().all(|p| p.finished)
    }

    /// The watermark this source may emit now: the minimum over unfinished,
    /// non-idle partitions, never moving backwards. `None` once every
    /// partition is finished.
    pub fn advance(&mut self) -> Option<EventTime> {
        if self.all_finished() {
            return None;
        }
        let bound = self.strategy.bound_ms;
        let idle_cutoff = match (self.now, self.strategy.idle_timeout) {
            (Some(now), Some(timeout)) => now.checked_sub(timeout),
            _ => None,
        };
        let active = |p: &&PartitionWatermark| {
            !p.finished
                && match (idle_cutoff, p.last_active) {
                    (Some(cutoff), Some(last)) => last > cutoff,
                    _ => true,
                }
        };
        if let Some(min) = self
            .partitions
            .iter()
            .filter(active)
            .map(|p| p.watermark(bound))
            .min()
        {
            self.emitted = self.emitted.max(min);
        }
        Some(self.emitted)
    }

    /// The watermark emitted so far.
    pub fn emitted(&self) -> EventTime {
        self.emitted
    }

    /// A partition's state for a snapshot: (max event time seen, finished).
    pub fn partition_state(&self, partition: usize) -> (Option<EventTime>, bool) {
        let p = &self.partitions[partition];
        (p.max_seen, p.finished)
    }

    /// Restores a partition's state from a snapshot.
    pub fn restore_partition(
        &mut self,
        partition: usize,
        max_seen: Option<EventTime>,
        finished: bool,
    ) {
        let p = &mut self.partitions[partition];
        p.max_seen = max_seen;
        p.finished = finished;
    }

    /// Restores the emitted watermark from a snapshot.
    pub fn restore_emitted(&mut self, emitted: EventTime) {
        self.emitted = emitted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The model: a record is late iff it is below (max earlier time in its
    /// partition) - bound.
    fn model(records: &[(usize, u64)], bound: u64, policy: LatePolicy) -> Vec<Lateness> {
        let mut max: Vec<Option<u64>> = vec![None; 4];
        records
            .iter()
            .map(|&(p, t)| {
                let wm = max[p].map_or(0, |m| m.saturating_sub(bound));
                if t >= wm {
                    max[p] = Some(max[p].map_or(t, |m| m.max(t)));
                    Lateness::OnTime(t)
                } else {
                    match policy {
                        LatePolicy::Drop => Lateness::Dropped,
                        LatePolicy::SideOutput => Lateness::Routed(t),
                        LatePolicy::Retime => Lateness::Retimed(wm),
                    }
                }
            })
            .collect()
    }

    fn policies() -> impl Strategy<Value = LatePolicy> {
        prop_oneof![
            Just(LatePolicy::Drop),
            Just(LatePolicy::SideOutput),
            Just(LatePolicy::Retime)
        ]
    }

    proptest! {
        #[test]
        fn lateness_matches_model(
            // a drifting clock with jitter both within and beyond the bound
            steps in prop::collection::vec((0usize..4, 0u64..50, 0u64..120), 1..300),
            bound in 0u64..60,
            policy in policies(),
        ) {
            let mut clock = 1_000u64;
            let records: Vec<(usize, u64)> = steps
                .iter()
                .map(|&(p, advance, jitter)| {
                    clock += advance;
                    (p, clock.saturating_sub(jitter))
                })
                .collect();
            let strategy = WatermarkStrategy { bound_ms: bound, idle_timeout: None, late_policy: policy };
            let mut wm = SourceWatermarks::new(strategy, 4);
            let mut emitted = 0;
            let mut got = Vec::new();
            for &(p, t) in &records {
                let decision = wm.admit(p, t);
                // Whatever is sent on the main output is at or above the emitted watermark.
                if let Lateness::OnTime(time) | Lateness::Retimed(time) = decision {
                    prop_assert!(time >= emitted);
                }
                got.push(decision);
                let next = wm.advance().unwrap();
                prop_assert!(next >= emitted);
                emitted = next;
            }
            prop_assert_eq!(got, model(&records, bound, policy));
        }
    }

    #[test]
    fn idle_partition_does_not_hold_the_watermark() {
        let strategy = WatermarkStrategy {
            bound_ms: 0,
            idle_timeout: Some(Duration::from_secs(1)),
            late_policy: LatePolicy::SideOutput,
        };
        let mut wm = SourceWatermarks::new(strategy, 2);
        let start = Instant::now();
        wm.set_now(start);
        wm.admit(0, 10);
        wm.admit(1, 20);
        assert_eq!(wm.advance(), Some(10));
        // Partition 0 falls silent; partition 1 moves on.
        wm.set_now(start + Duration::from_secs(2));
        wm.admit(1, 50);
        assert_eq!(wm.advance(), Some(50));
        // Partition 0 wakes up behind the emitted watermark: its record is late.
        assert_eq!(wm.admit(0, 30), Lateness::Routed(30));
        wm.finish(0);
        wm.finish(1);
        assert_eq!(wm.advance(), None);
    }

    #[test]
    fn unseen_partition_holds_the_watermark_at_zero() {
        let strategy = WatermarkStrategy {
            idle_timeout: None,
            ..Default::default()
        };
        let mut wm = SourceWatermarks::new(strategy, 2);
        wm.admit(0, 100_000);
        assert_eq!(wm.advance(), Some(0));
        wm.finish(1);
        assert_eq!(wm.advance(), Some(98_000));
    }

    #[test]
    fn late_policy_parses() {
        assert_eq!("retime".parse::<LatePolicy>(), Ok(LatePolicy::Retime));
        assert!("later".parse::<LatePolicy>().unwrap_err().contains("later"));
    }
}
