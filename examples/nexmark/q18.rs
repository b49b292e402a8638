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
    /// The latest bid so far. A window's state starts as the all-zero
    /// tuple, the least in `order`, and is replaced by any other bid (an
    /// all-zero bid equals it): no `Option`, whose tag made each of the
    /// millions of (bidder, auction) slots 8 bytes larger.
    type Acc = BidTuple;
    type Out = BidTuple;
    fn create(&self) -> BidTuple {
        (0, 0, 0, 0)
    }
    fn add(&self, acc: &mut BidTuple, record: &BidTuple) {
        if order(record) > order(acc) {
            *acc = *record;
        }
    }
    fn merge(&self, acc: &mut BidTuple, other: BidTuple) {
        self.add(acc, &other);
    }
    fn result(&self, acc: &BidTuple) -> BidTuple {
        *acc
    }
}

pub fn q18(bids: EventStream<'_, BidTuple>) -> EventStream<'_, BidTuple> {
    bids.window_aggregate(GlobalWindows, |b: &BidTuple| (b.1, b.0), Last)
        .map(|((_, _, last), time)| (last, time))
}
