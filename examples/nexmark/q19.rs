//! q19, auction top-10 price: each auction's ten highest bids with their
//! rank (the reference's `ROW_NUMBER() ... ORDER BY price DESC <= 10`; equal
//! prices ordered by time, then bidder, so the result is deterministic).
//! A global window per auction: a final result, emitted when the input ends
//! (the continuous form is a differential top-N, issue 4). Rows:
//! `auction,bidder,price,date_time,rank_number`.

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;

const N: usize = 10;

/// The best `N` bids, best first.
#[derive(Clone, Copy)]
struct TopN;

/// Smaller is better: highest price, then earliest, then lowest bidder.
fn order(b: &BidTuple) -> (std::cmp::Reverse<u64>, u64, u64) {
    (std::cmp::Reverse(b.2), b.3, b.1)
}

impl Aggregate<BidTuple> for TopN {
    type Acc = Vec<BidTuple>;
    type Out = Vec<BidTuple>;
    fn create(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, record: &BidTuple) {
        let at = acc.partition_point(|b| order(b) <= order(record));
        if at < N {
            acc.insert(at, *record);
            acc.truncate(N);
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        for b in &other {
            self.add(acc, b);
        }
    }
    fn result(&self, acc: &Self::Acc) -> Self::Out {
        acc.clone()
    }
}

pub fn q19(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64, u64, u64)> {
    bids.window_aggregate(GlobalWindows, |b: &BidTuple| b.0, TopN)
        .flat_map(|((_, _, top), time)| {
            top.into_iter()
                .enumerate()
                .map(move |(i, b)| ((b.0, b.1, b.2, b.3, i as u64 + 1), time))
        })
}
