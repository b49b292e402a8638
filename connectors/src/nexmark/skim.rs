//! Reading Nexmark events back from JSON lines without their free text.
//!
//! An event line (`{"Person":{...}}`, `{"Auction":{...}}` or `{"Bid":{...}}`,
//! as `tidewater generate --what events` writes them) is mostly padding and
//! free text: a person's e-mail address, credit card and `extra`, an
//! auction's item name, description and `extra`, a bid's channel, URL and
//! `extra`. Most queries read none of them; [`decode_skimmed`] (for a line)
//! and [`SkimmedEvent`] (for sources that decode through serde, such as a
//! Kafka topic of JSON events) pass over them without allocating (serde
//! ignores fields a struct does not name) and leave them empty, which took
//! about half of a join query's time. [`decode_kinds`] goes further for a
//! job that reads only some kinds of event (q3 and q8 read no bids, which
//! are 92% of the lines): it checks a line of another kind is well-formed
//! JSON and passes over it without decoding it.

use serde::{Deserialize, Deserializer};

use super::{Auction, Bid, Event, Person};
use crate::format::JsonScan;

/// The kinds of event a job reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds {
    /// Persons.
    pub persons: bool,
    /// Auctions.
    pub auctions: bool,
    /// Bids.
    pub bids: bool,
}

impl Kinds {
    /// Every kind.
    pub const ALL: Kinds = Kinds {
        persons: true,
        auctions: true,
        bids: true,
    };

    /// Whether a line tagged `tag` (its raw bytes, as in `{"Bid":...}`) is
    /// of a kind read; a tag that names no kind is read, so that decoding
    /// reports it.
    fn reads(&self, tag: &[u8]) -> bool {
        match tag {
            b"Person" => self.persons,
            b"Auction" => self.auctions,
            b"Bid" => self.bids,
            _ => true,
        }
    }
}

/// An event with its free-text fields left out.
#[derive(Deserialize)]
enum Skimmed {
    Person {
        id: usize,
        name: String,
        city: String,
        state: String,
        date_time: u64,
    },
    Auction {
        id: usize,
        initial_bid: usize,
        reserve: usize,
        date_time: u64,
        expires: u64,
        seller: usize,
        category: usize,
    },
    Bid {
        auction: usize,
        bidder: usize,
        price: usize,
        date_time: u64,
    },
}

/// An [`Event`] decoded without its free text (see [`decode_skimmed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkimmedEvent(pub Event);

impl<'de> Deserialize<'de> for SkimmedEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Skimmed::deserialize(deserializer).map(|s| SkimmedEvent(s.into()))
    }
}

/// Decodes one JSON event line, leaving persons' `email_address`,
/// `credit_card` and `extra`, auctions' `item_name`, `description` and
/// `extra`, and bids' `channel`, `url` and `extra` empty.
///
/// ```
/// use tidewater_connectors::nexmark::{decode_skimmed, Event};
///
/// let line = r#"{"Bid":{"auction":1000,"bidder":1001,"price":42,"channel":"Google","url":"https://x","date_time":1767225600000,"extra":"padding"}}"#;
/// let Event::Bid(bid) = decode_skimmed(line)? else { panic!("a bid") };
/// assert_eq!((bid.auction, bid.price, bid.date_time), (1000, 42, 1767225600000));
/// assert!(bid.channel.is_empty() && bid.extra.is_empty());
/// # Ok::<(), String>(())
/// ```
pub fn decode_skimmed(line: &str) -> Result<Event, String> {
    serde_json::from_str::<Skimmed>(line)
        .map(Event::from)
        .map_err(|e| e.to_string())
}

/// Decodes one JSON event line as [`decode_skimmed`] does if it is of one
/// of the `kinds`; a line of another kind is checked to be well-formed JSON
/// (its fields are not checked) and passed over (`Ok(None)`). A malformed
/// line is an error whatever its kind, so a job still reports every bad
/// line of its input.
///
/// ```
/// use tidewater_connectors::nexmark::{decode_kinds, Event, Kinds};
///
/// let no_bids = Kinds { bids: false, ..Kinds::ALL };
/// let bid = br#"{"Bid":{"auction":1000,"bidder":1001,"price":42,"date_time":1}}"#;
/// assert_eq!(decode_kinds(bid, no_bids)?, None);
/// assert!(matches!(decode_kinds(bid, Kinds::ALL)?, Some(Event::Bid(_))));
/// assert!(decode_kinds(br#"{"Bid":{"auction":1000,}}"#, no_bids).is_err());
/// # Ok::<(), String>(())
/// ```
pub fn decode_kinds(line: &[u8], kinds: Kinds) -> Result<Option<Event>, String> {
    let mut scan = JsonScan::new(line);
    let tag = scan.expect(b'{').and_then(|()| scan.string());
    if tag.is_err() || tag.is_ok_and(|tag| kinds.reads(tag)) {
        let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?;
        return decode_skimmed(line).map(Some);
    }
    scan.expect(b':')?;
    scan.value()?;
    scan.expect(b'}')?;
    scan.end()?;
    Ok(None)
}

impl From<Skimmed> for Event {
    fn from(skimmed: Skimmed) -> Event {
        match skimmed {
            Skimmed::Person {
                id,
                name,
                city,
                state,
                date_time,
            } => Event::Person(Person {
                id,
                name,
                email_address: String::new(),
                credit_card: String::new(),
                city,
                state,
                date_time,
                extra: String::new(),
            }),
            Skimmed::Auction {
                id,
                initial_bid,
                reserve,
                date_time,
                expires,
                seller,
                category,
            } => Event::Auction(Auction {
                id,
                item_name: String::new(),
                description: String::new(),
                initial_bid,
                reserve,
                date_time,
                expires,
                seller,
                category,
                extra: String::new(),
            }),
            Skimmed::Bid {
                auction,
                bidder,
                price,
                date_time,
            } => Event::Bid(Bid {
                auction,
                bidder,
                price,
                channel: String::new(),
                url: String::new(),
                date_time,
                extra: String::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of event, written as JSON and skimmed back, equals the
    /// event with its free text cleared; a malformed line is an error.
    #[test]
    fn skimmed_events_are_the_events_without_free_text() {
        let source = super::super::NexmarkSource {
            extra: true,
            channels: true,
            ..super::super::NexmarkSource::bounded(500)
        };
        let events: Vec<Event> = source.events_for(0, 1).map(|(_, e)| e).collect();
        assert!(events.iter().any(|e| matches!(e, Event::Person(_))));
        assert!(events.iter().any(|e| matches!(e, Event::Auction(_))));
        for event in events {
            let line = serde_json::to_string(&event).unwrap();
            let mut expected = event.clone();
            match &mut expected {
                Event::Person(p) => {
                    assert!(!p.extra.is_empty());
                    p.email_address.clear();
                    p.credit_card.clear();
                    p.extra.clear();
                }
                Event::Auction(a) => {
                    a.item_name.clear();
                    a.description.clear();
                    a.extra.clear();
                }
                Event::Bid(b) => {
                    b.channel.clear();
                    b.url.clear();
                    b.extra.clear();
                }
            }
            assert_eq!(decode_skimmed(&line).unwrap(), expected, "{line}");
            let through_serde: SkimmedEvent = serde_json::from_str(&line).unwrap();
            assert_eq!(through_serde.0, expected, "{line}");
        }
        assert!(decode_skimmed(r#"{"Bid":{"auction":1}}"#).is_err());
        assert!(decode_skimmed("not json").is_err());
    }

    /// A line of a kind read decodes as `decode_skimmed` decodes it; a
    /// well-formed line of another kind is passed over, a malformed one is
    /// an error whichever kinds are read.
    #[test]
    fn lines_of_kinds_not_read_are_checked_and_passed_over() {
        let events = super::super::NexmarkSource::bounded(500).events_for(0, 1);
        for (_, event) in events {
            let line = serde_json::to_string(&event).unwrap();
            let skimmed = decode_skimmed(&line).unwrap();
            for kinds in [0u8, 1, 2, 4, 7].map(|m| Kinds {
                persons: m & 1 != 0,
                auctions: m & 2 != 0,
                bids: m & 4 != 0,
            }) {
                let read = match &event {
                    Event::Person(_) => kinds.persons,
                    Event::Auction(_) => kinds.auctions,
                    Event::Bid(_) => kinds.bids,
                };
                let got = decode_kinds(line.as_bytes(), kinds).unwrap();
                assert_eq!(got, read.then(|| skimmed.clone()), "{kinds:?} {line}");
                let cut = &line.as_bytes()[..line.len() - 2];
                assert!(decode_kinds(cut, kinds).is_err(), "{kinds:?} {line}");
                let spaced = format!(" {} ", line.replacen(':', " : ", 1));
                let got = decode_kinds(spaced.as_bytes(), kinds).unwrap();
                assert_eq!(got, read.then(|| skimmed.clone()), "{kinds:?} {spaced}");
            }
        }
        let none = Kinds {
            persons: false,
            auctions: false,
            bids: false,
        };
        for bad in [
            &b"not json"[..],
            b"{\"Ask\":{}}",
            b"{\"Bid\":{}} {}",
            b"{\"Bid\":\"\xff\"}",
        ] {
            assert!(
                decode_kinds(bad, none).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
