//! The fields a skimmed event keeps of each kind, and decoding them without
//! serde: from an object's members in any order ([`Fields::from_members`]),
//! or from the holes of a line that has a known shape
//! ([`Fields::from_holes`], no key compared). Either refuses, with a terse
//! error, what it does not handle (an escaped key, a duplicate or missing
//! field, a number that is not an unsigned integer), for serde to decide.

use std::ops::Range;

use super::skim::Skimmed;
use super::{Bid, Event};
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

/// A bid's numbers: what most queries keep of the most common event, which
/// [`EventLines::decode_with`](super::EventLines::decode_with) hands over
/// without making an [`Event`] where no bid text is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BidNumbers {
    /// The auction bid on.
    pub auction: usize,
    /// The bidder.
    pub bidder: usize,
    /// The price.
    pub price: usize,
    /// The event time, in milliseconds since the epoch.
    pub date_time: u64,
}

impl BidNumbers {
    /// A bid's numbers.
    pub fn of(bid: &Bid) -> BidNumbers {
        BidNumbers {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
        }
    }
}

impl From<BidNumbers> for Bid {
    /// The bid, its texts empty (as a skimmed event's).
    fn from(n: BidNumbers) -> Bid {
        Bid {
            auction: n.auction,
            bidder: n.bidder,
            price: n.price,
            channel: String::new(),
            url: String::new(),
            date_time: n.date_time,
            extra: String::new(),
        }
    }
}

/// The kept fields of one event, as they are found: bit `i` of `seen` for
/// number `i`, bit `8 + i` for text `i`. One is kept by each decoder and
/// filled in place, line after line (returned, it was copied out of each
/// call).
#[derive(Clone, Debug, Default)]
pub(super) struct Fields {
    numbers: [u64; 7],
    texts: [String; 3],
    seen: u16,
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
            Some(slot @ Slot::Number(_)) => fields.set(slot, scan.unsigned()?, String::new()),
            Some(slot @ Slot::Text(_)) => fields.set(slot, 0, scan.text()?.into_owned()),
            // An escaped key might spell a kept one.
            None if key.contains(&b'\\') => Err("an escaped key".into()),
            None => scan.value(),
        })?;
        Ok(fields)
    }

    /// Decodes the values at `holes` of `line`, whose slots are `slots`,
    /// in place of what was there.
    #[inline(always)]
    pub(super) fn read_holes(
        &mut self,
        line: &[u8],
        holes: &[Range<usize>],
        slots: &[Option<Slot>],
    ) -> Result<(), String> {
        self.seen = 0;
        for (at, slot) in holes.iter().zip(slots) {
            match *slot {
                Some(slot @ Slot::Number(_)) => {
                    let number = unsigned_at(line, at.clone()).ok_or("not an unsigned integer")?;
                    self.set(slot, number, String::new())?;
                }
                Some(slot @ Slot::Text(_)) => {
                    let raw = &line[at.clone()];
                    let text = match raw.contains(&b'\\') {
                        // With its quotes, for serde to unescape.
                        true => serde_json::from_slice(&line[at.start - 1..at.end + 1])
                            .map_err(|e| e.to_string())?,
                        false => std::str::from_utf8(raw)
                            .map_err(|e| e.to_string())?
                            .to_owned(),
                    };
                    self.set(slot, 0, text)?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Sets `slot` to `number` or `text` (whichever it takes), if it is not set.
    #[inline(always)]
    fn set(&mut self, slot: Slot, number: u64, text: String) -> Result<(), String> {
        let bit = match slot {
            Slot::Number(i) => i,
            Slot::Text(i) => 8 + i,
        };
        if self.seen & 1 << bit != 0 {
            return Err("a duplicate field".into());
        }
        self.seen |= 1 << bit;
        match slot {
            Slot::Number(i) => self.numbers[i] = number,
            Slot::Text(i) => self.texts[i] = text,
        }
        Ok(())
    }

    /// Number `i`, if it was found.
    #[inline(always)]
    fn number(&self, i: usize) -> Result<u64, String> {
        match self.seen & 1 << i {
            0 => Err("a missing field".into()),
            _ => Ok(self.numbers[i]),
        }
    }

    /// Number `i` as a `usize`, if it was found.
    #[inline(always)]
    fn index(&self, i: usize) -> Result<usize, String> {
        usize::try_from(self.number(i)?).map_err(|e| e.to_string())
    }

    /// Text `i`, taken, if it was found.
    fn text(&mut self, i: usize) -> Result<String, String> {
        match self.seen & 1 << (8 + i) {
            0 => Err("a missing field".into()),
            _ => Ok(std::mem::take(&mut self.texts[i])),
        }
    }

    /// The numbers of the bid these fields are.
    #[inline(always)]
    pub(super) fn bid_numbers(&self) -> Result<BidNumbers, String> {
        Ok(BidNumbers {
            auction: self.index(0)?,
            bidder: self.index(1)?,
            price: self.index(2)?,
            date_time: self.number(3)?,
        })
    }

    /// The skimmed event of kind `kind` these fields make, with the bid
    /// texts `keep` names (taken from the fields).
    pub(super) fn event(&mut self, kind: usize, keep: BidTexts) -> Result<Event, String> {
        let skimmed = match kind {
            0 => Skimmed::Person {
                id: self.index(0)?,
                name: self.text(0)?,
                city: self.text(1)?,
                state: self.text(2)?,
                date_time: self.number(1)?,
            },
            1 => Skimmed::Auction {
                id: self.index(0)?,
                initial_bid: self.index(1)?,
                reserve: self.index(2)?,
                date_time: self.number(3)?,
                expires: self.number(4)?,
                seller: self.index(5)?,
                category: self.index(6)?,
            },
            _ => {
                let mut bid = Bid::from(self.bid_numbers()?);
                if keep.channel {
                    bid.channel = self.text(0)?;
                }
                if keep.url {
                    bid.url = self.text(1)?;
                }
                return Ok(Event::Bid(bid));
            }
        };
        Ok(skimmed.into())
    }
}
