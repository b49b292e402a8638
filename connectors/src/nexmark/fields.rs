//! The fields a skimmed event keeps of each kind, and decoding them without
//! serde: from an object's members in any order ([`Fields::from_members`]),
//! or from the holes of a line that has a known shape
//! ([`Fields::from_holes`], no key compared). Either refuses, with a terse
//! error, what it does not handle (an escaped key, a duplicate or missing
//! field, a number that is not an unsigned integer), for serde to decide.

use std::ops::Range;

use super::skim::Skimmed;
use super::Event;
use crate::format::{unsigned_at, Hole, JsonScan, JsonShape};

/// Where a kept field goes: the `i`-th number or text of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Number(usize),
    Text(usize),
}

/// Which of a bid's texts are kept besides what a skimmed event keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct BidTexts {
    pub(super) channel: bool,
    pub(super) url: bool,
}

/// The slot of field `key` of kind `kind` (0 persons, 1 auctions, 2 bids),
/// if the skimmed event keeps it or `texts` names it.
fn slot(kind: usize, key: &[u8], texts: BidTexts) -> Option<Slot> {
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
        (2, b"channel") if texts.channel => Text(0),
        (2, b"url") if texts.url => Text(1),
        _ => return None,
    })
}

/// The slot of each hole of `shape`, a line of kind `kind` that
/// [`Fields::from_members`] decoded, if every kept field is a hole of its
/// type, once.
pub(super) fn slots(shape: &JsonShape, kind: usize, texts: BidTexts) -> Option<Vec<Option<Slot>>> {
    let mut seen = Vec::new();
    let mut slots = Vec::new();
    for (hole, key) in shape.holes() {
        let slot = key.and_then(|key| slot(kind, key, texts));
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
        texts: BidTexts,
    ) -> Result<Fields, String> {
        let mut fields = Fields::default();
        scan.members(|scan, key| match slot(kind, key, texts) {
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
                    let number = unsigned_at(line, at.clone());
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

    /// The skimmed event of kind `kind` these fields make, with the bid
    /// texts `keep` names.
    pub(super) fn event(self, kind: usize, keep: BidTexts) -> Result<Event, String> {
        let Fields { numbers, texts } = self;
        let n = |i: usize| need(numbers[i]);
        let index = |i: usize| usize::try_from(n(i)?).map_err(|e| e.to_string());
        let [t0, t1, t2] = texts;
        let skimmed = match kind {
            0 => Skimmed::Person {
                id: index(0)?,
                name: need(t0)?,
                city: need(t1)?,
                state: need(t2)?,
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
            _ => {
                let mut event = Event::from(Skimmed::Bid {
                    auction: index(0)?,
                    bidder: index(1)?,
                    price: index(2)?,
                    date_time: n(3)?,
                });
                if let Event::Bid(bid) = &mut event {
                    if keep.channel {
                        bid.channel = need(t0)?;
                    }
                    if keep.url {
                        bid.url = need(t1)?;
                    }
                }
                return Ok(event);
            }
        };
        Ok(skimmed.into())
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
