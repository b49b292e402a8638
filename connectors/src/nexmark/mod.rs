//! The Nexmark generator as a source: persons, auctions and bids in the
//! reference 1:3:46 proportions, with hot auctions, bidders and sellers, from
//! RisingWave's faithful port of the reference generator (the `nexmark` crate).
//!
//! This wrapper fixes the crate's known defects: `base_time` is always set
//! (never the wall clock), the rate is constant, and event times are computed
//! in `f64` from the event number (the crate's `f32` arithmetic loses
//! millisecond precision after ~16 M events). Worker `i` of `n` generates
//! event numbers `i, i + n, i + 2n, ...`, so any worker count produces the
//! same set of events.

use nexmark::config::NexmarkConfig;
use nexmark::EventGenerator;
use tidewater_operators::{Context, EventTime};
use timely::dataflow::Scope;

use crate::source::{event_source, Batch, SourceConfig, SourceReader, SourceStreams};

pub use nexmark::event::{Auction, Bid, Event, Person};

/// What to generate.
#[derive(Clone, Debug)]
pub struct NexmarkSource {
    /// Total events over all workers; `None` is unbounded.
    pub events: Option<u64>,
    /// Event-time spacing: this many events per second of event time.
    pub event_rate: u64,
    /// Event time of the first event (ms since the epoch).
    pub base_time: EventTime,
}

impl Default for NexmarkSource {
    /// 10 000 events/s of event time from 2026-01-01T00:00:00Z, unbounded.
    fn default() -> Self {
        NexmarkSource {
            events: None,
            event_rate: 10_000,
            base_time: 1_767_225_600_000,
        }
    }
}

impl NexmarkSource {
    /// A bounded generator of `events` events.
    pub fn bounded(events: u64) -> Self {
        NexmarkSource {
            events: Some(events),
            ..Default::default()
        }
    }

    /// The generator's configuration.
    fn config(&self) -> NexmarkConfig {
        NexmarkConfig {
            base_time: self.base_time,
            first_rate: self.event_rate.max(1) as usize,
            next_rate: self.event_rate.max(1) as usize,
            ..Default::default()
        }
    }

    /// The event time of event number `n`.
    pub fn event_time(&self, n: u64) -> EventTime {
        let delay_us = 1_000_000.0 / self.event_rate.max(1) as f64;
        self.base_time + (n as f64 * delay_us / 1000.0).round() as u64
    }

    /// The events worker `index` of `peers` generates, in order, with their
    /// event numbers.
    pub fn events_for(&self, index: usize, peers: usize) -> impl Iterator<Item = (u64, Event)> {
        let generator = EventGenerator::new(self.config())
            .with_offset(index as u64)
            .with_step(peers as u64);
        let this = self.clone();
        let limit = self.events.unwrap_or(u64::MAX);
        (index as u64..limit)
            .step_by(peers)
            .zip(generator)
            .map(move |(n, event)| (n, this.retime(n, event)))
    }

    /// Sets the event's time from its number, in exact arithmetic.
    fn retime(&self, n: u64, mut event: Event) -> Event {
        let time = self.event_time(n);
        match &mut event {
            Event::Person(p) => p.date_time = time,
            Event::Auction(a) => {
                a.expires = a.expires - a.date_time + time;
                a.date_time = time;
            }
            Event::Bid(b) => b.date_time = time,
        }
        event
    }

    /// Builds the source on this worker's share of the events.
    pub fn build<'scope>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
    ) -> SourceStreams<'scope, Event> {
        let events = Box::new(self.events_for(scope.index(), scope.peers()));
        event_source(
            scope,
            "Nexmark",
            ctx,
            config,
            Generator {
                events,
                done: false,
            },
        )
    }
}

struct Generator {
    events: Box<dyn Iterator<Item = (u64, Event)>>,
    done: bool,
}

impl SourceReader for Generator {
    type Item = Event;

    fn partitions(&self) -> usize {
        1
    }

    fn read(&mut self, max: usize, batch: &mut Batch<Event>) -> bool {
        if self.done {
            return false;
        }
        batch
            .records
            .extend(self.events.by_ref().take(max).map(|(_, event)| {
                let time = event.timestamp();
                (0, event, time)
            }));
        if batch.records.len() < max {
            self.done = true;
            batch.finished.push(0);
        }
        !self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_match_the_crate_where_it_is_exact() {
        let source = NexmarkSource::bounded(5_000);
        let crate_events = EventGenerator::new(source.config()).take(5_000);
        for ((n, ours), theirs) in source.events_for(0, 1).zip(crate_events) {
            assert_eq!(ours.timestamp(), theirs.timestamp(), "event {n}");
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn times_stay_exact_late_in_the_stream() {
        let source = NexmarkSource::default();
        let n = 50_000_000;
        assert_eq!(source.event_time(n), source.base_time + n / 10);
        assert_eq!(source.event_time(n + 1), source.base_time + n / 10);
        assert_eq!(source.event_time(n + 10), source.base_time + n / 10 + 1);
    }

    #[test]
    fn bounded_split_covers_each_event_once() {
        let source = NexmarkSource::bounded(1_000);
        let mut numbers: Vec<u64> = (0..3)
            .flat_map(|i| source.events_for(i, 3).map(|(n, _)| n))
            .collect();
        numbers.sort();
        assert_eq!(numbers, (0..1_000).collect::<Vec<_>>());
    }
}
