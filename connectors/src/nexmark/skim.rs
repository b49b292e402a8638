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
//! JSON and passes over it without decoding it, and decodes the lines it
//! reads a field at a time instead of through serde (which still decides
//! any line the field-by-field decoder does not take).

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

/// Decodes one JSON event line into what [`decode_skimmed`] makes of it if
/// it is of one of the `kinds` (a field at a time, at about half serde's
/// cost, serde deciding any line that way refuses); a line of another kind
/// is checked to be well-formed JSON (its fields are not checked) and passed
/// over (`Ok(None)`). A malformed line is an error whatever its kind, so a
/// job still reports every bad line of its input.
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
    let whole = |line: &[u8]| {
        let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?;
        decode_skimmed(line).map(Some)
    };
    let mut scan = JsonScan::new(line);
    let Ok(tag) = scan.expect(b'{').and_then(|()| scan.string()) else {
        return whole(line);
    };
    if kinds.reads(tag) {
        // Field by field; serde decides any line this does not take.
        return fields(&mut scan, tag).map(Some).or_else(|_| whole(line));
    }
    scan.expect(b':')?;
    scan.value()?;
    scan.expect(b'}')?;
    scan.end()?;
    Ok(None)
}

/// Decodes the rest of a line tagged `tag` a field at a time, as
/// [`decode_skimmed`] would, at about half its cost: numbers are read in
/// place and strings are copied once. It refuses (with a terse error) what
/// it does not handle, such as an escaped key, leaving it to serde.
fn fields(scan: &mut JsonScan<'_>, tag: &[u8]) -> Result<Event, String> {
    scan.expect(b':')?;
    let event = match tag {
        b"Person" => {
            let [id, date_time] = [None; 2];
            let [name, city, state] = [None, None, None];
            let (mut numbers, mut texts) = ([id, date_time], [name, city, state]);
            scan.members(|scan, key| match key {
                b"id" => set(&mut numbers[0], scan.unsigned()?),
                b"date_time" => set(&mut numbers[1], scan.unsigned()?),
                b"name" => set(&mut texts[0], scan.text()?.into_owned()),
                b"city" => set(&mut texts[1], scan.text()?.into_owned()),
                b"state" => set(&mut texts[2], scan.text()?.into_owned()),
                key => other(scan, key),
            })?;
            let [id, date_time] = numbers;
            let [name, city, state] = texts.map(need);
            Skimmed::Person {
                id: index(id)?,
                name: name?,
                city: city?,
                state: state?,
                date_time: need(date_time)?,
            }
        }
        b"Auction" => {
            let mut n = [None; 7];
            scan.members(|scan, key| {
                let field = match key {
                    b"id" => 0,
                    b"initial_bid" => 1,
                    b"reserve" => 2,
                    b"date_time" => 3,
                    b"expires" => 4,
                    b"seller" => 5,
                    b"category" => 6,
                    key => return other(scan, key),
                };
                set(&mut n[field], scan.unsigned()?)
            })?;
            Skimmed::Auction {
                id: index(n[0])?,
                initial_bid: index(n[1])?,
                reserve: index(n[2])?,
                date_time: need(n[3])?,
                expires: need(n[4])?,
                seller: index(n[5])?,
                category: index(n[6])?,
            }
        }
        b"Bid" => {
            let mut n = [None; 4];
            scan.members(|scan, key| {
                let field = match key {
                    b"auction" => 0,
                    b"bidder" => 1,
                    b"price" => 2,
                    b"date_time" => 3,
                    key => return other(scan, key),
                };
                set(&mut n[field], scan.unsigned()?)
            })?;
            Skimmed::Bid {
                auction: index(n[0])?,
                bidder: index(n[1])?,
                price: index(n[2])?,
                date_time: need(n[3])?,
            }
        }
        _ => return Err("no such kind".into()),
    };
    scan.expect(b'}')?;
    scan.end()?;
    Ok(event.into())
}

/// A field the skimmed event does not keep: passed over, unless its key is
/// escaped (it might spell a kept one).
fn other(scan: &mut JsonScan<'_>, key: &[u8]) -> Result<(), String> {
    match key.contains(&b'\\') {
        true => Err("an escaped key".into()),
        false => scan.value(),
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), String> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err("a duplicate field".into()),
    }
}

fn need<T>(slot: Option<T>) -> Result<T, String> {
    slot.ok_or_else(|| "a missing field".into())
}

fn index(slot: Option<u64>) -> Result<usize, String> {
    usize::try_from(need(slot)?).map_err(|e| e.to_string())
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

    /// The field-by-field decoder's verdict on a line.
    fn by_fields(line: &str) -> Result<Event, String> {
        let mut scan = JsonScan::new(line.as_bytes());
        scan.expect(b'{')?;
        let tag = scan.string()?;
        fields(&mut scan, tag)
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
            assert_eq!(by_fields(&line), Ok(skimmed.clone()), "{line}");
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
        // Lines the field-by-field decoder may refuse: the verdict is serde's.
        let cases = [
            r#"{"Person":{"id":1,"name":"a\"b\u00e9","city":"c","state":"s","date_time":2}}"#,
            r#"{"Person":{"state":"s","date_time":2,"city":"c","name":"n","id":1,"x":[{}]}}"#,
            r#"{"Person":{"i\u0064":1,"name":"n","city":"c","state":"s","date_time":2}}"#,
            r#"{"Person":{"id":1,"id":1,"name":"n","city":"c","state":"s","date_time":2}}"#,
            r#"{"Person":{"id":1,"city":"c","state":"s","date_time":2}}"#,
            r#"{"Person":{"id":1,"name":null,"city":"c","state":"s","date_time":2}}"#,
            r#"{"Bid":{"auction":-0,"bidder":1,"price":2,"date_time":3}}"#,
            r#"{"Bid":{"auction":1.0,"bidder":1,"price":2,"date_time":3}}"#,
            r#"{"Bid":{"auction":18446744073709551616,"bidder":1,"price":2,"date_time":3}}"#,
            r#"{"Bid":[1,2,3,4]}"#,
            r#"{"Bid":{"auction":1,"bidder":1,"price":2,"date_time":3},"Bid":{}}"#,
            r#"{"Auction":{"id":1,"initial_bid":2,"reserve":3,"date_time":4,"expires":5,"seller":6,"category":7}}"#,
            r#"{"Auction":{"id":1,"initial_bid":2,"reserve":3,"date_time":4,"expires":5,"seller":6}}"#,
        ];
        // The first two are decoded a field at a time, the third by serde.
        assert!(by_fields(cases[0]).is_ok() && by_fields(cases[1]).is_ok());
        assert!(by_fields(cases[2]).is_err() && decode_skimmed(cases[2]).is_ok());
        for case in cases {
            let ours = decode_kinds(case.as_bytes(), Kinds::ALL);
            let serde = decode_skimmed(case).map(Some);
            assert_eq!(ours.is_ok(), serde.is_ok(), "{case}: {ours:?} {serde:?}");
            if let (Ok(ours), Ok(serde)) = (ours, serde) {
                assert_eq!(ours, serde, "{case}");
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
