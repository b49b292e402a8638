//! Decoding a file of JSON event lines for a query that reads some of their
//! fields of some of their kinds: [`EventLines`].
//!
//! q3 and q8 read no bids, which are 92% of the lines, and most queries read
//! no persons or auctions. A line of a kind not read is checked to be
//! well-formed JSON (a malformed line is still reported) and passed over;
//! checking it by the shape of the last line of its kind passed over
//! ([`JsonShape`]) costs a comparison per run of fixed text. A line of a
//! kind read is decoded a field at a time into what
//! [`decode_skimmed`] makes of it, serde deciding any line that way refuses.

use super::skim::Skimmed;
use super::{decode_skimmed, Event};
use crate::format::{JsonScan, JsonShape};

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

    /// Whether kind `kind` (see [`kind`]) is read.
    fn reads(&self, kind: usize) -> bool {
        [self.persons, self.auctions, self.bids][kind]
    }
}

/// The kind a line's tag names: 0 persons, 1 auctions, 2 bids.
fn kind(tag: &[u8]) -> Option<usize> {
    match tag {
        b"Person" => Some(0),
        b"Auction" => Some(1),
        b"Bid" => Some(2),
        _ => None,
    }
}

/// A decoder of JSON event lines (see the module's documentation), holding
/// the shape of the last line of each kind it passed over.
///
/// ```
/// use tidewater_connectors::nexmark::{Event, EventLines, Kinds};
///
/// let mut no_bids = EventLines::new(Kinds { bids: false, ..Kinds::ALL });
/// let bid = br#"{"Bid":{"auction":1000,"bidder":1001,"price":42,"date_time":1}}"#;
/// assert_eq!(no_bids.decode(bid)?, None);
/// assert!(no_bids.decode(br#"{"Bid":{"auction":1000,}}"#).is_err());
/// let mut all = EventLines::new(Kinds::ALL);
/// assert!(matches!(all.decode(bid)?, Some(Event::Bid(_))));
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug)]
pub struct EventLines {
    kinds: Kinds,
    shapes: [Option<JsonShape>; 3],
    /// The kind of the last line passed over.
    last: Option<usize>,
}

impl EventLines {
    /// A decoder for a query that reads `kinds`.
    pub fn new(kinds: Kinds) -> EventLines {
        EventLines {
            kinds,
            shapes: [None, None, None],
            last: None,
        }
    }

    /// Decodes one line into what [`decode_skimmed`] makes of it if it is of
    /// a kind read; a line of another kind is checked to be well-formed JSON
    /// (its fields are not checked) and passed over (`Ok(None)`). A
    /// malformed line is an error whatever its kind.
    pub fn decode(&mut self, line: &[u8]) -> Result<Option<Event>, String> {
        let whole = |line: &[u8]| {
            let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?;
            decode_skimmed(line).map(Some)
        };
        // Most lines are of the kind of the line before, and if that was
        // passed over its shape names the kind.
        if let Some(shape) = self.last.and_then(|kind| self.shapes[kind].as_ref()) {
            if shape.matches(line) {
                return Ok(None);
            }
        }
        let mut scan = JsonScan::new(line);
        let tag = scan.expect(b'{').and_then(|()| scan.string());
        let Some(kind) = tag.ok().and_then(kind) else {
            return whole(line);
        };
        if self.kinds.reads(kind) {
            // Field by field; serde decides any line this does not take.
            return fields(&mut scan, kind).map(Some).or_else(|_| whole(line));
        }
        self.last = Some(kind);
        if self.shapes[kind]
            .as_ref()
            .is_some_and(|shape| shape.matches(line))
        {
            return Ok(None);
        }
        scan.expect(b':')?;
        scan.value()?;
        scan.expect(b'}')?;
        scan.end()?;
        self.shapes[kind] = Some(JsonShape::of(line));
        Ok(None)
    }
}

/// Decodes the rest of a line of kind `kind` a field at a time, as
/// [`decode_skimmed`] would, at about half its cost: numbers are read in
/// place and strings are copied once. It refuses (with a terse error) what
/// it does not handle, such as an escaped key, leaving it to serde.
fn fields(scan: &mut JsonScan<'_>, kind: usize) -> Result<Event, String> {
    scan.expect(b':')?;
    let event = match kind {
        0 => {
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
        1 => {
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
        2 => {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The field-by-field decoder's verdict on a line.
    fn by_fields(line: &str) -> Result<Event, String> {
        let mut scan = JsonScan::new(line.as_bytes());
        scan.expect(b'{')?;
        let tag = scan.string()?;
        fields(&mut scan, kind(tag).ok_or("no such kind")?)
    }

    /// A line of a kind read decodes as `decode_skimmed` decodes it; a
    /// well-formed line of another kind is passed over, a malformed one is
    /// an error whichever kinds are read.
    #[test]
    fn lines_of_kinds_not_read_are_checked_and_passed_over() {
        let every = [0u8, 1, 2, 4, 7].map(|m| Kinds {
            persons: m & 1 != 0,
            auctions: m & 2 != 0,
            bids: m & 4 != 0,
        });
        // One decoder of each, over every line: after the first line of a
        // kind passed over, the next are checked by its shape.
        let mut decoders = every.map(EventLines::new);
        let events = super::super::NexmarkSource::bounded(500).events_for(0, 1);
        for (_, event) in events {
            let line = serde_json::to_string(&event).unwrap();
            let skimmed = decode_skimmed(&line).unwrap();
            assert_eq!(by_fields(&line), Ok(skimmed.clone()), "{line}");
            for lines in &mut decoders {
                let kinds = lines.kinds;
                let read = match &event {
                    Event::Person(_) => kinds.persons,
                    Event::Auction(_) => kinds.auctions,
                    Event::Bid(_) => kinds.bids,
                };
                let got = lines.decode(line.as_bytes()).unwrap();
                assert_eq!(got, read.then(|| skimmed.clone()), "{kinds:?} {line}");
                let cut = &line.as_bytes()[..line.len() - 2];
                assert!(lines.decode(cut).is_err(), "{kinds:?} {line}");
                let bad = line.replacen(',', ",,", 1);
                assert!(lines.decode(bad.as_bytes()).is_err(), "{kinds:?} {bad}");
                let spaced = format!(" {} ", line.replacen(':', " : ", 1));
                let got = lines.decode(spaced.as_bytes()).unwrap();
                assert_eq!(got, read.then(|| skimmed.clone()), "{kinds:?} {spaced}");
            }
        }
        let shaped = decoders
            .iter()
            .flat_map(|d| d.shapes.iter().flatten())
            .count();
        assert_eq!(shaped, 3 + 2 + 2 + 2, "a shape of each kind passed over");
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
            let ours = EventLines::new(Kinds::ALL).decode(case.as_bytes());
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
                EventLines::new(none).decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
