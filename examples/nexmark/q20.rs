//! q20, expand bid with auction: every bid on an auction in category 10,
//! with its auction's fields. A regular join as a keyed process function
//! per auction (bids that come before their auction wait for it). Rows:
//! `auction,bidder,price,bid_date_time,seller,category,initial_bid,reserve,
//! date_time,expires`.

use tidewater::prelude::*;

use crate::q9::{AuctionTuple, Item};

/// One q20 result row.
pub type Row = (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);

/// What is known of an auction: not yet seen (bids wait), or seen.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub enum Known {
    #[default]
    Unseen,
    Waiting(Vec<crate::bid_queries::BidTuple>),
    Seen(AuctionTuple),
}

struct Expand;

impl ProcessFunction<u64, Item> for Expand {
    type State = Known;
    type Out = Row;
    type Side = ();

    fn process(
        &mut self,
        item: Item,
        known: &mut Known,
        ctx: &mut ProcessContext<'_, u64, Row, ()>,
    ) {
        let row = |b: crate::bid_queries::BidTuple, a: AuctionTuple| {
            (b.0, b.1, b.2, b.3, a.1, a.2, a.3, a.4, a.5, a.6)
        };
        match item {
            Item::Auction(a) => {
                if let Known::Waiting(bids) = std::mem::take(known) {
                    if a.2 == 10 {
                        bids.into_iter().for_each(|b| ctx.emit(row(b, a)));
                    }
                }
                *known = Known::Seen(a);
            }
            Item::Bid(b) => match known {
                Known::Seen(a) if a.2 == 10 => ctx.emit(row(b, *a)),
                Known::Seen(_) => {}
                Known::Waiting(bids) => bids.push(b),
                Known::Unseen => *known = Known::Waiting(vec![b]),
            },
        }
    }
}

pub fn q20(items: EventStream<'_, Item>) -> EventStream<'_, Row> {
    items
        .key_by(|i: &Item| match i {
            Item::Auction(a) => a.0,
            Item::Bid(b) => b.0,
        })
        .process(None, Expand)
        .output
}
