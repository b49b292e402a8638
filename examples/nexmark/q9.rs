//! q9, winning bids: each auction's highest bid placed between its start
//! and its expiry (inclusive; equal prices: the earliest, then the lowest
//! bidder), emitted when the auction expires. A keyed process function per
//! open auction holds the auction and the best bid so far, with an
//! event-time timer just after the expiry (as the Beam and Flink DataStream
//! versions do; the relational form over differential arrangements is
//! issue 4's). Auctions without a valid bid produce nothing. Rows:
//! `auction,seller,category,initial_bid,reserve,date_time,expires,bidder,
//! price,bid_date_time`.

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

/// One auction's state while it is open: the auction and its best valid
/// bid so far. Records are handled in time order (at equal times auctions
/// first), so a bid with no open auction can never count: it came before
/// its auction's start or after its expiry, and its key's state is cleared
/// at once, as a closed auction's is. The state held is the open auctions.
pub type Open = Option<Box<(AuctionTuple, Option<BidTuple>)>>;

/// Better: higher price, then earlier, then lower bidder.
fn better(b: &BidTuple, than: &BidTuple) -> bool {
    (std::cmp::Reverse(b.2), b.3, b.1) < (std::cmp::Reverse(than.2), than.3, than.1)
}

struct WinningBids;

impl ProcessFunction<u64, Item> for WinningBids {
    type State = Open;
    type Out = Row;
    type Side = ();

    fn process(&mut self, item: Item, open: &mut Open, ctx: &mut ProcessContext<'_, u64, Row, ()>) {
        match (item, open) {
            // An auction id comes once.
            (Item::Auction(a), open @ None) => {
                ctx.register_event_timer(a.6.saturating_add(1));
                *open = Some(Box::new((a, None)));
            }
            (Item::Auction(_), Some(_)) => {}
            (Item::Bid(b), Some(live)) => {
                let (a, best) = &mut **live;
                let valid = a.5 <= b.3 && b.3 <= a.6;
                if valid && best.is_none_or(|best| better(&b, &best)) {
                    *best = Some(b);
                }
            }
            (Item::Bid(_), None) => ctx.clear_state(),
        }
    }

    fn on_timer(&mut self, open: &mut Open, ctx: &mut ProcessContext<'_, u64, Row, ()>) {
        if let Some(live) = open {
            if let (a, Some(b)) = **live {
                ctx.emit((a, b.1, b.2, b.3));
            }
        }
        // The auction is over: later bids for it are not valid.
        ctx.clear_state();
    }
}

pub fn q9(items: EventStream<'_, Item>) -> EventStream<'_, Row> {
    // Every open auction's state is cleared at its expiry: no TTL.
    items
        .key_by(Item::auction)
        .process(None, WinningBids)
        .output
}
