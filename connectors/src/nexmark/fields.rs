//! The fields a skimmed event keeps of each kind, and decoding them without
//! serde: from an object's members in any order ([`Fields::from_members`]),
//! or from the holes of a line that has a known shape
//! ([`Fields::from_holes`], no key compared). Either refuses, with a terse
//! error, what it does not handle (an escaped key, a duplicate or missing
//! field, a number that is not an unsigned integer), for serde to decide.

use std::ops::Range;

use super::skim::Skimmed;
use super::Event;
use crate::format::{unsigned_value, Hole, JsonScan, JsonShape};

/// Where a kept field goes: the `i`-th number or text of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Number(usize),
    Text(usize),
}

/// The slot of field `key` of kind `kind` (0 persons, 1 auctions, 2 bids),
/// if the skimmed event keeps it (with `channels`, bids' channel and URL
/// too).
fn slot(kind: usize, key: &[u8], channels: bool) -> Option<Slot> {
    use Slot::{Number, Text};
    Some(match (kind, key) {
        (0, b"id") => Number(0),
        (0, b"date_time") => Number(1),
        (0, b"name") => Text(0),
        (0, b"city") => Text(1),
        (0, b"state") => Text(2),
        (1, b"id") => Number(0),
        (1, b"initial_bid") => Number(1),
        (1, b"reserve") => Number(2),
        (1, b"date_time") => Number(3),
        (1, b"expires") => Number(4),
        (1, b"seller") => Number(5),
        (1, b"category") => Number(6),
        (2, b"auction") => Number(0),
        (2, b"bidder") => Number(1),
        (2, b"price") => Number(2),
        (2, b"date_time") => Number(3),
        (2, b"channel") if channels => Text(0),
        (2, b"url") if channels => Text(1),
        _ => return None,
    })
}

/// The slot of each hole of `shape`, a line of kind `kind` that
/// [`Fields::from_members`] decoded, if every kept field is a hole of its
/// type, once.
pub(super) fn slots(shape: &JsonShape, kind: usize, channels: bool) -> Option<Vec<Option<Slot>>> {
    let mut seen = Vec::new();
    let mut slots = Vec::new();
    for (hole, key) in shape.holes() {
        let slot = key.and_then(|key| slot(kind, key, channels));
        match (slot, hole) {
            (None, _) => {}
            (Some(Slot::Number(_)), Hole::Number) | (Some(Slot::Text(_)), Hole::String) => {
                if seen.contains(&slot) {
                    return None;
                }
                seen.push(slot);
            }
            _ => return None,
        }
        slots.push(slot);
    }
    Some(slots)
}

/// The kept fields of one event, as they are found.
#[derive(Default)]
pub(super) struct Fields {
    numbers: [Option<u64>; 7],
    texts: [Option<String>; 3],
}

impl Fields {
    /// Decodes the members of the object at the cursor.
    pub(super) fn from_members(
        scan: &mut JsonScan<'_>,
        kind: usize,
        channels: bool,
    ) -> Result<Fields, String> {
        let mut fields = Fields::default();
        scan.members(|scan, key| match slot(kind, key, channels) {
            Some(Slot::Number(i)) => set(&mut fields.numbers[i], scan.unsigned()?),
            Some(Slot::Text(i)) => set(&mut fields.texts[i], scan.text()?.into_owned()),
            // An escaped key might spell a kept one.
            None if key.contains(&b'\\') => Err("an escaped key".into()),
            None => scan.value(),
        })?;
        Ok(fields)
    }

    /// Decodes the values at `holes` of `line`, whose slots are `slots`.
    pub(super) fn from_holes(
        line: &[u8],
        holes: &[Range<usize>],
        slots: &[Option<Slot>],
    ) -> Result<Fields, String> {
        let mut fields = Fields::default();
        for (at, slot) in holes.iter().zip(slots) {
            match *slot {
                Some(Slot::Number(i)) => {
                    let number = unsigned_value(&line[at.clone()]);
                    set(
                        &mut fields.numbers[i],
                        number.ok_or("not an unsigned integer")?,
                    )?;
                }
                Some(Slot::Text(i)) => {
                    let raw = &line[at.clone()];
                    let text = match raw.contains(&b'\\') {
                        // With its quotes, for serde to unescape.
                        true => serde_json::from_slice(&line[at.start - 1..at.end + 1])
                            .map_err(|e| e.to_string())?,
                        false => std::str::from_utf8(raw)
                            .map_err(|e| e.to_string())?
                            .to_owned(),
                    };
                    set(&mut fields.texts[i], text)?;
                }
                None => {}
            }
        }
        Ok(fields)
    }

    /// The skimmed event of kind `kind` these fields make (with
    /// `channels`, a bid's channel and URL too).
    pub(super) fn event(self, kind: usize, channels: bool) -> Result<Event, String> {
        let Fields { numbers, texts } = self;
        let n = |i: usize| need(numbers[i]);
        let index = |i: usize| usize::try_from(n(i)?).map_err(|e| e.to_string());
        let mut texts = texts.into_iter().map(need);
        // Taken in order: name, city, state; channel, url (struct fields
        // are evaluated as written).
        let mut text = || texts.next().expect("three texts");
        let skimmed = match kind {
            0 => Skimmed::Person {
                id: index(0)?,
                name: text()?,
                city: text()?,
                state: text()?,
                date_time: n(1)?,
            },
            1 => Skimmed::Auction {
                id: index(0)?,
                initial_bid: index(1)?,
                reserve: index(2)?,
                date_time: n(3)?,
                expires: n(4)?,
                seller: index(5)?,
                category: index(6)?,
            },
            _ => Skimmed::Bid {
                auction: index(0)?,
                bidder: index(1)?,
                price: index(2)?,
                date_time: n(3)?,
            },
        };
        let mut event = Event::from(skimmed);
        if let (Event::Bid(bid), true) = (&mut event, channels) {
            bid.channel = text()?;
            bid.url = text()?;
        }
        Ok(event)
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
