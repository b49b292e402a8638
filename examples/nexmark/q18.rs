//! q18, find last bid: each bidder's latest bid on each auction (the
//! reference's `ROW_NUMBER() ... ORDER BY dateTime DESC = 1`; among bids at
//! the same time the highest price, then the rest of the row, so the result
//! is deterministic). Computed in a global window per (bidder, auction), so
//! it is a final result: it is emitted when the input ends (the continuous,
//! retracting form is a differential top-1, issue 4). Rows:
//! `auction,bidder,price,date_time`.

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;

/// Keeps the latest bid.
#[derive(Clone, Copy)]
struct Last;

/// The order that picks the latest bid.
fn order(b: &BidTuple) -> (u64, u64, u64, u64) {
    (b.3, b.2, b.0, b.1)
}

impl Aggregate<BidTuple> for Last {
    type Acc = Option<BidTuple>;
    type Out = Option<BidTuple>;
    fn create(&self) -> Self::Acc {
        None
    }
    fn add(&self, acc: &mut Self::Acc, record: &BidTuple) {
        if acc.is_none_or(|a| order(record) > order(&a)) {
            *acc = Some(*record);
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        if let Some(b) = other {
            self.add(acc, &b);
        }
    }
    fn result(&self, acc: &Self::Acc) -> Self::Out {
        *acc
    }
}

pub fn q18(bids: EventStream<'_, BidTuple>) -> EventStream<'_, BidTuple> {
    bids.window_aggregate(GlobalWindows, |b: &BidTuple| (b.1, b.0), Last)
        .flat_map(|((_, _, last), time)| last.map(|b| (b, time)))
}
