//! Decoding a file of JSON event lines for a query that reads some of their
//! fields of some of their kinds: [`EventLines`].
//!
//! q3 and q8 read no bids, which are 92% of the lines, and most queries read
//! no persons or auctions. A line of a kind not read is checked to be
//! well-formed JSON (a malformed line is still reported) and passed over;
//! checking it by the shape of the last line of its kind passed over
//! ([`JsonShape`]) costs a comparison per run of fixed text. A line of a
//! kind read is decoded into what [`decode_skimmed`](super::decode_skimmed) makes of it from the
//! holes of the last such line's shape, or else a member at a time (see
//! `fields.rs`), serde deciding any line both refuse.

use super::fields::{slots, BidNumbers, BidTexts, Fields, Slot};
use super::skim::decode_skimmed_keeping;
use super::Event;
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
    /// Of the kinds passed over, the last line's shape.
    shapes: [Option<JsonShape>; 3],
    /// The kind of the last line passed over.
    last: Option<usize>,
    /// Of the kinds read, the last line's shape and the slot of each hole.
    read: [Option<(JsonShape, Vec<Option<Slot>>)>; 3],
    /// Where the holes of the line being decoded are.
    holes: Vec<std::ops::Range<usize>>,
    /// Which of bids' texts are kept too.
    texts: BidTexts,
    /// The fields of the line being decoded by its shape.
    fields: Fields,
}

impl EventLines {
    /// A decoder for a query that reads `kinds`.
    pub fn new(kinds: Kinds) -> EventLines {
        EventLines {
            kinds,
            shapes: [None, None, None],
            last: None,
            read: [None, None, None],
            holes: Vec::new(),
            texts: BidTexts::default(),
            fields: Fields::default(),
        }
    }

    /// Also keeps bids' channel (q16, q21 and q22 read it), which
    /// [`decode_skimmed`](super::decode_skimmed) leaves empty.
    ///
    /// ```
    /// use tidewater_connectors::nexmark::{Event, EventLines, Kinds};
    ///
    /// let bid = br#"{"Bid":{"auction":1,"bidder":2,"price":3,"channel":"Google","url":"https://x","date_time":4,"extra":"e"}}"#;
    /// let mut lines = EventLines::new(Kinds::ALL).with_bid_channels();
    /// let Some(Event::Bid(b)) = lines.decode(bid)? else { panic!("a bid") };
    /// assert_eq!((b.channel.as_str(), b.url.as_str(), b.extra.as_str()), ("Google", "", ""));
    /// # Ok::<(), String>(())
    /// ```
    pub fn with_bid_channels(mut self) -> EventLines {
        self.texts.channel = true;
        self
    }

    /// Also keeps bids' URL (q21 and q22 read it), which
    /// [`decode_skimmed`](super::decode_skimmed) leaves empty.
    ///
    /// ```
    /// use tidewater_connectors::nexmark::{Event, EventLines, Kinds};
    ///
    /// let bid = br#"{"Bid":{"auction":1,"bidder":2,"price":3,"channel":"Google","url":"https://x","date_time":4,"extra":"e"}}"#;
    /// let mut lines = EventLines::new(Kinds::ALL).with_bid_urls();
    /// let Some(Event::Bid(b)) = lines.decode(bid)? else { panic!("a bid") };
    /// assert_eq!((b.channel.as_str(), b.url.as_str()), ("", "https://x"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn with_bid_urls(mut self) -> EventLines {
        self.texts.url = true;
        self
    }

    /// Decodes one line into what [`decode_skimmed`](super::decode_skimmed) makes of it if it is of
    /// a kind read; a line of another kind is checked to be well-formed JSON
    /// (its fields are not checked) and passed over (`Ok(None)`). A
    /// malformed line is an error whatever its kind.
    pub fn decode(&mut self, line: &[u8]) -> Result<Option<Event>, String> {
        self.decode_with(line, Some, |n| Some(Event::Bid(n.into())))
    }

    /// [`EventLines::decode`], then what `bid` makes of a bid's numbers
    /// where no bid text is kept, or else what `keep` makes of the event:
    /// for a query that keeps a few fields of most events. It is inlined
    /// where it is called, and a bid's numbers go to `bid` without
    /// an event made (copying events out of calls, and taking them apart
    /// again, was a tenth of q17's time).
    ///
    /// ```
    /// use tidewater_connectors::nexmark::{Event, EventLines, Kinds};
    ///
    /// let mut lines = EventLines::new(Kinds::ALL);
    /// let seller = |event: Event| match event {
    ///     Event::Auction(a) => Some(a.seller),
    ///     _ => None,
    /// };
    /// let bid = br#"{"Bid":{"auction":1000,"bidder":1001,"price":42,"date_time":1}}"#;
    /// assert_eq!(lines.decode_with(bid, seller, |b| Some(b.price))?, Some(42));
    /// assert_eq!(lines.decode_with(bid, seller, |b| Some(b.price))?, Some(42)); // by its shape
    /// # Ok::<(), String>(())
    /// ```
    #[inline(always)]
    pub fn decode_with<T>(
        &mut self,
        line: &[u8],
        keep: impl FnOnce(Event) -> Option<T>,
        bid: impl FnOnce(BidNumbers) -> Option<T>,
    ) -> Result<Option<T>, String> {
        let numbers_only = self.texts == BidTexts::default();
        // Most lines have the shape of the last line of their kind (a
        // shape's first fixed text, its tag's, tells most others apart at
        // once): passed over if the kind is not read, else decoded from the
        // shape's holes, bids (most lines) tried first.
        if let Some(shape) = self.last.and_then(|kind| self.shapes[kind].as_ref()) {
            if shape.matches(line) {
                return Ok(None);
            }
        }
        for kind in [2, 1, 0] {
            let Some((shape, slots)) = &self.read[kind] else {
                continue;
            };
            self.holes.clear();
            if !shape.fill(line, |at| self.holes.push(at)) {
                continue;
            }
            if self.fields.read_holes(line, &self.holes, slots).is_ok() {
                if kind == 2 && numbers_only {
                    if let Ok(numbers) = self.fields.bid_numbers() {
                        return Ok(bid(numbers));
                    }
                } else if let Ok(event) = self.fields.event(kind, self.texts) {
                    return Ok(keep(event));
                }
            }
            break;
        }
        Ok(match self.decode_afresh(line)? {
            Some(Event::Bid(b)) if numbers_only => bid(BidNumbers::of(&b)),
            Some(event) => keep(event),
            None => None,
        })
    }

    /// [`EventLines::decode`] of a line that has not the shape of the last
    /// line of its kind (or whose holes did not decode).
    fn decode_afresh(&mut self, line: &[u8]) -> Result<Option<Event>, String> {
        let texts = self.texts;
        let whole = |line: &[u8]| {
            let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8: {e}"))?;
            decode_skimmed_keeping(line, texts).map(Some)
        };
        let mut scan = JsonScan::new(line);
        let tag = scan.expect(b'{').and_then(|()| scan.string());
        let Some(kind) = tag.ok().and_then(kind) else {
            return whole(line);
        };
        if self.kinds.reads(kind) {
            // Member by member (learning this line's shape); serde decides
            // any line that refuses.
            return match fields(&mut scan, kind, texts) {
                Ok(event) => {
                    let shape = JsonShape::of(line);
                    self.read[kind] = slots(&shape, kind, texts).map(|slots| (shape, slots));
                    Ok(Some(event))
                }
                Err(_) => whole(line),
            };
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

/// Decodes the rest of a line of kind `kind` (after its tag) a member at a
/// time, as [`decode_skimmed`](super::decode_skimmed) would, at about half its cost.
fn fields(scan: &mut JsonScan<'_>, kind: usize, texts: BidTexts) -> Result<Event, String> {
    scan.expect(b':')?;
    let mut fields = Fields::from_members(scan, kind, texts)?;
    scan.expect(b'}')?;
    scan.end()?;
    fields.event(kind, texts)
}

#[cfg(test)]
mod tests {
    use super::super::decode_skimmed;
    use super::*;

    /// The field-by-field decoder's verdict on a line.
    fn by_fields(line: &str) -> Result<Event, String> {
        let mut scan = JsonScan::new(line.as_bytes());
        scan.expect(b'{')?;
        let tag = scan.string()?;
        fields(
            &mut scan,
            kind(tag).ok_or("no such kind")?,
            BidTexts::default(),
        )
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
        let both = BidTexts {
            channel: true,
            url: true,
        };
        let mut with_texts = EventLines::new(Kinds::ALL)
            .with_bid_channels()
            .with_bid_urls();
        let mut with_channels = EventLines::new(Kinds::ALL).with_bid_channels();
        let events = super::super::NexmarkSource::bounded(500).events_for(0, 1);
        for (_, event) in events {
            let line = serde_json::to_string(&event).unwrap();
            let skimmed = decode_skimmed(&line).unwrap();
            assert_eq!(by_fields(&line), Ok(skimmed.clone()), "{line}");
            // Keeping bids' channel and URL, or the channel alone: the
            // skimmed event with them.
            let (mut want, mut channel_only) = (skimmed.clone(), skimmed.clone());
            if let (Event::Bid(w), Event::Bid(c), Event::Bid(b)) =
                (&mut want, &mut channel_only, &event)
            {
                assert!(!b.channel.is_empty() && !b.url.is_empty(), "{line}");
                (w.channel, w.url) = (b.channel.clone(), b.url.clone());
                c.channel = b.channel.clone();
            }
            let got = with_texts.decode(line.as_bytes()).unwrap();
            assert_eq!(got, Some(want.clone()), "{line}");
            assert_eq!(decode_skimmed_keeping(&line, both), Ok(want), "{line}");
            let got = with_channels.decode(line.as_bytes()).unwrap();
            assert_eq!(got, Some(channel_only), "{line}");
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
        let shaped = decoders
            .iter()
            .flat_map(|d| d.read.iter().flatten())
            .count();
        assert_eq!(shaped, 1 + 1 + 1 + 3, "a shape of each kind read");
        // Channels and URLs are taken from the holes too, not by serde.
        assert_eq!(with_texts.read.iter().flatten().count(), 3);
        assert_eq!(with_channels.read.iter().flatten().count(), 3);
        // Lines of a known shape whose values the shape's holes do not take.
        let all = &mut decoders[4];
        let bid = r#"{"Bid":{"auction":1000,"bidder":1001,"price":PRICE,"channel":"","url":"","date_time":1,"extra":""}}"#;
        let with = |price: &str| bid.replace("PRICE", price);
        assert!(all.decode(with("7").as_bytes()).unwrap().is_some());
        assert!(all.decode(with("1.5").as_bytes()).is_err());
        assert!(all.decode(with("-1").as_bytes()).is_err());
        assert!(all.decode(with("-0").as_bytes()).is_err());
        assert!(all.decode(with("18446744073709551616").as_bytes()).is_err());
        let person = r#"{"Person":{"id":1,"name":"NAME","city":"c","state":"s","date_time":2}}"#;
        assert!(all.decode(person.as_bytes()).unwrap().is_some());
        let escaped = person.replace("NAME", r#"a\"b\u00e9"#);
        let Some(Event::Person(p)) = all.decode(escaped.as_bytes()).unwrap() else {
            panic!("a person")
        };
        assert_eq!(p.name, "a\"bé");
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
            let ours = EventLines::new(Kinds::ALL)
                .with_bid_channels()
                .with_bid_urls()
                .decode(case.as_bytes());
            let serde = decode_skimmed_keeping(case, both).map(Some);
            assert_eq!(ours, serde, "{case}");
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

    /// Where no bid text is kept, a bid's numbers go to `bid`, whichever
    /// way its line is decoded (the first of a shape member by member, the
    /// next by the shape, an escaped key by serde); with a text kept, the
    /// whole bid goes to `keep`. Persons and auctions go to `keep`.
    #[test]
    fn bid_numbers_go_to_bid_unless_a_text_is_kept() {
        let bid = r#"{"Bid":{"auction":1000,"bidder":1001,"price":42,"channel":"c","url":"u","date_time":7,"extra":""}}"#;
        let escaped = bid.replace("price", r#"pr\u0069ce"#);
        let auction = r#"{"Auction":{"id":1,"initial_bid":2,"reserve":3,"date_time":4,"expires":5,"seller":6,"category":7}}"#;
        let numbers = BidNumbers {
            auction: 1000,
            bidder: 1001,
            price: 42,
            date_time: 7,
        };
        #[derive(Debug, PartialEq)]
        enum Got {
            Numbers(BidNumbers),
            Event(Event),
        }
        let mut plain = EventLines::new(Kinds::ALL);
        let mut texts = EventLines::new(Kinds::ALL).with_bid_urls();
        for line in [bid, bid, &escaped, auction, bid] {
            let want = EventLines::new(Kinds::ALL).decode(line.as_bytes()).unwrap();
            let got = plain
                .decode_with(
                    line.as_bytes(),
                    |e| Some(Got::Event(e)),
                    |n| Some(Got::Numbers(n)),
                )
                .unwrap();
            match &want {
                Some(Event::Bid(b)) => {
                    assert_eq!(BidNumbers::of(b), numbers);
                    assert_eq!(got, Some(Got::Numbers(numbers)), "{line}");
                }
                other => assert_eq!(got, other.clone().map(Got::Event), "{line}"),
            }
            let got = texts
                .decode_with(
                    line.as_bytes(),
                    |e| Some(Got::Event(e)),
                    |n| Some(Got::Numbers(n)),
                )
                .unwrap();
            let Some(Got::Event(event)) = got else {
                panic!("{line}: {got:?}")
            };
            if let Event::Bid(b) = event {
                assert_eq!((BidNumbers::of(&b), b.url.as_str()), (numbers, "u"));
            }
        }
    }
}
