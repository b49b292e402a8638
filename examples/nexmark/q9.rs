//! q9, winning bids: each auction's highest bid placed between its start
//! and its expiry (inclusive; equal prices: the earliest, then the lowest
//! bidder), emitted when the auction expires. A keyed process function per
//! auction holds the auction, the best bid so far and any bid that arrived
//! before its auction, with an event-time timer just after the expiry (as
//! the Beam and Flink DataStream versions do; the relational form over
//! differential arrangements is issue 4's). Auctions without a valid bid
//! produce nothing. Rows: `auction,seller,category,initial_bid,reserve,
//! date_time,expires,bidder,price,bid_date_time`.

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;

/// `(id, seller, category, initial_bid, reserve, date_time, expires)`.
pub type AuctionTuple = (u64, u64, u64, u64, u64, u64, u64);

/// A generated auction as an [`AuctionTuple`].
pub fn auction_tuple(a: &Auction) -> AuctionTuple {
    (
        a.id as u64,
        a.seller as u64,
        a.category as u64,
        a.initial_bid as u64,
        a.reserve as u64,
        a.date_time,
        a.expires,
    )
}

/// An auction or a bid, keyed by the auction id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Item {
    Auction(AuctionTuple),
    Bid(BidTuple),
}

impl Item {
    /// Its event time: the auction's start or the bid's time.
    pub fn time(&self) -> u64 {
        match self {
            Item::Auction(a) => a.5,
            Item::Bid(b) => b.3,
        }
    }

    fn auction(&self) -> u64 {
        match self {
            Item::Auction(a) => a.0,
            Item::Bid(b) => b.0,
        }
    }
}

/// One q9 result row: the auction and its winning bid's bidder, price and time.
pub type Row = (AuctionTuple, u64, u64, u64);

/// One auction id's state. A closed auction's state (every auction's, for
/// the TTL) is small: the open ones' is boxed.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum Open {
    /// Bids that came before their auction.
    Early(Vec<BidTuple>),
    /// The auction and its best valid bid so far.
    Live(Box<(AuctionTuple, Option<BidTuple>)>),
    /// The expiry timer has fired: later bids come after the expiry
    /// (records are handled in time order), so they are dropped, not kept
    /// as early ones until the TTL.
    Closed,
}

impl Default for Open {
    fn default() -> Self {
        Open::Early(Vec::new())
    }
}

/// Better: higher price, then earlier, then lower bidder.
fn better(b: &BidTuple, than: &BidTuple) -> bool {
    (std::cmp::Reverse(b.2), b.3, b.1) < (std::cmp::Reverse(than.2), than.3, than.1)
}

impl Open {
    fn offer(&mut self, b: BidTuple) {
        match self {
            Open::Early(bids) => bids.push(b),
            Open::Live(live) => {
                let (a, best) = &mut **live;
                let valid = a.5 <= b.3 && b.3 <= a.6;
                if valid && best.is_none_or(|best| better(&b, &best)) {
                    *best = Some(b);
                }
            }
            Open::Closed => {}
        }
    }
}

struct WinningBids;

impl ProcessFunction<u64, Item> for WinningBids {
    type State = Open;
    type Out = Row;
    type Side = ();

    fn process(&mut self, item: Item, open: &mut Open, ctx: &mut ProcessContext<'_, u64, Row, ()>) {
        match item {
            // An auction id comes once.
            Item::Auction(a) => {
                if let Open::Early(early) = open {
                    let early = std::mem::take(early);
                    *open = Open::Live(Box::new((a, None)));
                    ctx.register_event_timer(a.6 + 1);
                    for b in early {
                        open.offer(b);
                    }
                }
            }
            Item::Bid(b) => open.offer(b),
        }
    }

    fn on_timer(&mut self, open: &mut Open, ctx: &mut ProcessContext<'_, u64, Row, ()>) {
        if let Open::Live(live) = open {
            if let (a, Some(b)) = **live {
                ctx.emit((a, b.1, b.2, b.3));
            }
        }
        // The auction is over: later bids for it are not valid.
        *open = Open::Closed;
    }
}

pub fn q9(items: EventStream<'_, Item>) -> EventStream<'_, Row> {
    // Bids for an auction that never comes (or after it expired) are
    // dropped with the key's state a day after its last record.
    items
        .key_by(Item::auction)
        .process(Some(86_400_000), WinningBids)
        .output
}
