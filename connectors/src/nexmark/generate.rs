//! The Nexmark events themselves: the `nexmark` crate's `Person::new`,
//! `Auction::new` and `Bid::new` (and its channel table) written again with
//! the same random draws in the same order, so that event `n` is the
//! crate's event `n` field for field (`tests::yields_the_crates_events`
//! compares them), but faster: strings are built as bytes, the channel
//! table is built once per generator, [`EventMaker::without_extra`] skips
//! the `extra` padding (about 70 of a bid's 75 draws), which is always the
//! last field drawn, so every other field stays the same, and
//! [`EventMaker::without_channels`] leaves bids' channel and URL empty (the
//! draws are made; only the copies are not).
//!
//! The event times here are the crate's (`f32` arithmetic); the source
//! replaces them with exact ones afterwards.

use nexmark::config::NexmarkConfig;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{Auction, Bid, Event, Person};

/// Fraction of people/auctions which may be hot sellers, auctions, bidders: one in this many.
const HOT_RATIO: usize = 100;
/// Channels in the crate's channel table.
const CHANNELS: usize = 10_000;

/// Makes the crate's event `n` for any `n`.
pub struct EventMaker {
    cfg: NexmarkConfig,
    /// Persons + auctions + bids in one round of the proportions.
    denominator: usize,
    /// The crate's inter-event delay, µs.
    delay_us: f32,
    /// `(channel, url)` of the non-hot channels.
    channels: Vec<(String, String)>,
    extra: bool,
    bid_channels: bool,
}

impl EventMaker {
    /// A maker for the configuration (its rate must be constant).
    pub fn new(cfg: NexmarkConfig) -> Self {
        assert_eq!(cfg.first_rate, cfg.next_rate, "a constant rate");
        EventMaker {
            denominator: cfg.person_proportion + cfg.auction_proportion + cfg.bid_proportion,
            delay_us: cfg.us_per_unit as f32 / cfg.first_rate as f32
                * cfg.num_event_generators as f32,
            channels: (0..CHANNELS).map(channel).collect(),
            cfg,
            extra: true,
            bid_channels: true,
        }
    }

    /// Leaves bids' `channel` and `url` empty (nothing else changes).
    pub fn without_channels(mut self) -> Self {
        self.bid_channels = false;
        self
    }

    /// Leaves every event's `extra` empty (nothing else changes).
    pub fn without_extra(mut self) -> Self {
        self.extra = false;
        self
    }

    /// Event number `n`.
    pub fn event(&self, n: usize) -> Event {
        let id = self.cfg.first_event_id + n;
        let time = self.timestamp(n);
        let round = n % self.denominator;
        if round < self.cfg.person_proportion {
            Event::Person(self.person(id, time))
        } else if !self.is_bid(n) {
            Event::Auction(self.auction(n, id, time))
        } else {
            Event::Bid(self.bid(id, time))
        }
    }

    /// Whether event number `n` is a bid.
    pub fn is_bid(&self, n: usize) -> bool {
        n % self.denominator >= self.cfg.person_proportion + self.cfg.auction_proportion
    }

    /// Event number `n`, which must be a bid ([`EventMaker::is_bid`]).
    pub fn bid_number(&self, n: usize) -> Bid {
        debug_assert!(self.is_bid(n), "event {n} is not a bid");
        self.bid(self.cfg.first_event_id + n, self.timestamp(n))
    }

    /// The crate's event time of event number `n`.
    fn timestamp(&self, n: usize) -> u64 {
        self.cfg.base_time + ((n as f32 * self.delay_us) / 1000.0).round() as u64
    }

    fn person(&self, event_id: usize, time: u64) -> Person {
        let cfg = &self.cfg;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let id = self.last_person(event_id) + cfg.first_person_id;
        let name = format!(
            "{} {}",
            cfg.first_names.choose(rng).expect("first names"),
            cfg.last_names.choose(rng).expect("last names"),
        );
        let email_address = format!("{}@{}.com", letters(rng, 7), letters(rng, 5));
        let credit_card = format!(
            "{:04} {:04} {:04} {:04}",
            rng.gen_range(0..10000),
            rng.gen_range(0..10000),
            rng.gen_range(0..10000),
            rng.gen_range(0..10000)
        );
        let city = cfg.us_cities.choose(rng).expect("cities").clone();
        let state = cfg.us_states.choose(rng).expect("states").clone();
        let size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        Person {
            id,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: time,
            extra: self.extra(rng, size, cfg.avg_person_byte_size),
        }
    }

    fn auction(&self, n: usize, event_id: usize, time: u64) -> Auction {
        let cfg = &self.cfg;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let id = self.last_auction(event_id) + cfg.first_auction_id;
        let item_name = letters(rng, 20);
        let description = letters(rng, 100);
        let initial_bid = price(rng);
        let reserve = initial_bid + price(rng);
        let in_flight = (cfg.in_flight_auctions * self.denominator) / cfg.auction_proportion;
        let horizon = self.timestamp(n + in_flight) - time;
        let expires = time + 1 + rng.gen_range(0..(horizon * 2).max(1));
        let seller = if rng.gen_range(0..cfg.hot_seller_ratio) > 0 {
            (self.last_person(event_id) / HOT_RATIO) * HOT_RATIO
        } else {
            self.next_person(event_id, rng)
        } + cfg.first_person_id;
        let category = cfg.first_category_id + rng.gen_range(0..cfg.num_categories);
        let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        Auction {
            id,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: time,
            expires,
            seller,
            category,
            extra: self.extra(rng, size, cfg.avg_auction_byte_size),
        }
    }

    fn bid(&self, event_id: usize, time: u64) -> Bid {
        let cfg = &self.cfg;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let auction = if 0 < rng.gen_range(0..cfg.hot_auction_ratio) {
            (self.last_auction(event_id) / HOT_RATIO) * HOT_RATIO
        } else {
            self.next_auction(event_id, rng)
        };
        let bidder = if 0 < rng.gen_range(0..cfg.hot_bidder_ratio) {
            (self.last_person(event_id) / HOT_RATIO) * HOT_RATIO + 1
        } else {
            self.next_person(event_id, rng)
        };
        let price = price(rng);
        let (channel, url) = if rng.gen_range(0..cfg.hot_channel_ratio) > 0 {
            let index = rng.gen_range(0..cfg.hot_channels.len());
            (&cfg.hot_channels[index], &cfg.hot_urls[index])
        } else {
            let (channel, url) = self.channels.choose(rng).expect("channels");
            (channel, url)
        };
        let (channel, url) = match self.bid_channels {
            true => (channel.clone(), url.clone()),
            false => (String::new(), String::new()),
        };
        Bid {
            auction: auction + cfg.first_auction_id,
            bidder: bidder + cfg.first_person_id,
            price,
            date_time: time,
            channel,
            url,
            extra: self.extra(rng, 8 + 8 + 8 + 8, cfg.avg_bid_byte_size),
        }
    }

    /// The last person id (base 0) at this event.
    fn last_person(&self, event_id: usize) -> usize {
        let epoch = event_id / self.denominator;
        let offset = (event_id % self.denominator).min(self.cfg.person_proportion - 1);
        epoch * self.cfg.person_proportion + offset
    }

    /// A random recent person id (base 0).
    fn next_person(&self, event_id: usize, rng: &mut SmallRng) -> usize {
        let people = self.last_person(event_id) + 1;
        let active = people.min(self.cfg.active_people);
        people - active + rng.gen_range(0..active + self.cfg.person_id_lead)
    }

    /// The last auction id (base 0) at this event.
    fn last_auction(&self, event_id: usize) -> usize {
        let (persons, auctions) = (self.cfg.person_proportion, self.cfg.auction_proportion);
        let mut epoch = event_id / self.denominator;
        let mut offset = event_id % self.denominator;
        if offset < persons {
            epoch -= 1;
            offset = auctions - 1;
        } else if persons + auctions <= offset {
            offset = auctions - 1;
        } else {
            offset -= persons;
        }
        epoch * auctions + offset
    }

    /// A random in-flight auction id (base 0).
    fn next_auction(&self, event_id: usize, rng: &mut SmallRng) -> usize {
        let max = self.last_auction(event_id);
        let min = max.saturating_sub(self.cfg.in_flight_auctions);
        min + rng.gen_range(0..max - min + 1 + self.cfg.auction_id_lead)
    }

    /// The padding that brings an event to about `average` bytes.
    fn extra(&self, rng: &mut SmallRng, size: usize, average: usize) -> String {
        if !self.extra || size > average {
            return String::new();
        }
        let wanted = average - size;
        let delta = (wanted + 2) / 5;
        let length = wanted - delta
            + match delta {
                0 => 0,
                _ => rng.gen_range(0..2 * delta),
            };
        letters(rng, length)
    }
}

/// `length` random lowercase letters.
fn letters(rng: &mut SmallRng, length: usize) -> String {
    let bytes: Vec<u8> = (0..length).map(|_| rng.gen_range(b'a'..=b'z')).collect();
    String::from_utf8(bytes).expect("ASCII letters")
}

/// A random price in cents, 1 to 100 M, log-uniform.
fn price(rng: &mut SmallRng) -> usize {
    (10.0_f32.powf(rng.gen::<f32>() * 6.0) * 100.0).round() as usize
}

/// Channel `i` of the crate's table and its URL.
fn channel(i: usize) -> (String, String) {
    let mut url = base_url(i as u64);
    let mut rng = SmallRng::seed_from_u64(i as u64);
    if rng.gen_range(0..10) > 0 {
        url.push_str("&channel_id=");
        url.push_str(&i64::abs((i as i32).reverse_bits() as i64).to_string());
    }
    (format!("channel-{i}"), url)
}

/// The crate's item URL for a seed.
fn base_url(seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut part = || {
        let length = rng.gen_range(3..5usize);
        (0..length)
            .map(|_| match rng.gen_range(0..13) {
                0 => '_',
                _ => rng.gen_range(b'a'..=b'z') as char,
            })
            .collect::<String>()
    };
    let (a, b, c) = (part(), part(), part());
    format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmark::EventGenerator;

    fn config(rate: usize) -> NexmarkConfig {
        NexmarkConfig {
            base_time: 1_767_225_600_000,
            first_rate: rate,
            next_rate: rate,
            ..Default::default()
        }
    }

    /// Field for field the crate's events: the first 100 000, and runs far
    /// into the stream, at two rates, split across workers the crate's way.
    #[test]
    fn yields_the_crates_events() {
        for rate in [10_000, 1_000_000] {
            let ours = EventMaker::new(config(rate));
            let crate_events = EventGenerator::new(config(rate));
            for (n, theirs) in crate_events.take(100_000).enumerate() {
                assert_eq!(ours.event(n), theirs, "event {n} at rate {rate}");
            }
            for (start, step) in [(1_000_003, 3), (987_654_321, 16)] {
                let crate_events = EventGenerator::new(config(rate))
                    .with_offset(start)
                    .with_step(step);
                for (i, theirs) in crate_events.take(5_000).enumerate() {
                    let n = (start + i as u64 * step) as usize;
                    assert_eq!(ours.event(n), theirs, "event {n} at rate {rate}");
                }
            }
        }
    }

    /// Without `extra` or channels, every other field is the same.
    #[test]
    fn lean_events_differ_only_in_what_they_leave_out() {
        let full = EventMaker::new(config(10_000));
        let no_extra = EventMaker::new(config(10_000)).without_extra();
        let no_channels = EventMaker::new(config(10_000)).without_channels();
        for n in 0..5_000 {
            let mut event = full.event(n);
            if let Event::Bid(b) = &mut event {
                b.channel.clear();
                b.url.clear();
            }
            assert_eq!(no_channels.event(n), event, "event {n}");
            match &mut event {
                Event::Person(p) => p.extra.clear(),
                Event::Auction(a) => a.extra.clear(),
                Event::Bid(b) => b.extra.clear(),
            }
            let mut lean = no_extra.event(n);
            if let Event::Bid(b) = &mut lean {
                b.channel.clear();
                b.url.clear();
            }
            assert_eq!(lean, event, "event {n}");
        }
    }
}
