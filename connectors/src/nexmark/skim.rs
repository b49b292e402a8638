//! Reading Nexmark events back from JSON lines without their free text.
//!
//! An event line (`{"Person":{...}}`, `{"Auction":{...}}` or `{"Bid":{...}}`,
//! as `tidewater generate --what events` writes them) is mostly padding and
//! free text: a person's e-mail address, credit card and `extra`, an
//! auction's item name, description and `extra`, a bid's channel, URL and
//! `extra`. Most queries read none of them; [`decode_skimmed`] passes over
//! them without allocating (serde ignores fields a struct does not name)
//! and leaves them empty, which took about half of a join query's time.
//! [`EventLines`](super::EventLines), for files and Kafka topics, goes
//! further and falls back on it for any line it does not take.

use serde::Deserialize;

use super::fields::BidTexts;
use super::{Auction, Bid, Event, Person};

/// An event with its free-text fields left out.
#[derive(Deserialize)]
pub(super) enum Skimmed {
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

/// A bid's channel and URL, which [`decode_skimmed`] leaves empty.
#[derive(Deserialize)]
enum Texts {
    Bid { channel: String, url: String },
}

/// [`decode_skimmed`], keeping the bid texts `keep` names.
pub(super) fn decode_skimmed_keeping(line: &str, keep: BidTexts) -> Result<Event, String> {
    let mut event = decode_skimmed(line)?;
    if let (Event::Bid(bid), true) = (&mut event, keep.channel || keep.url) {
        let Texts::Bid { channel, url } = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if keep.channel {
            bid.channel = channel;
        }
        if keep.url {
            bid.url = url;
        }
    }
    Ok(event)
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
        }
        assert!(decode_skimmed(r#"{"Bid":{"auction":1}}"#).is_err());
        assert!(decode_skimmed("not json").is_err());
    }
}
