//! q17, auction statistics per day: per auction and day, the bids in total
//! and per price rank (as q15), and the lowest, highest, mean (integer) and
//! summed price. Tumbling one-day windows keyed by auction. Rows:
//! `auction,day,total_bids,rank1_bids,rank2_bids,rank3_bids,min_price,
//! max_price,avg_price,sum_price`.

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;
use crate::calendar::day;
use crate::q15::{rank, DAY_MS};

/// One q17 result row.
pub type Row = (u64, String, [u64; 4], u64, u64, u64, u64);

/// Bids per rank (0: all), lowest, highest and summed price.
type Acc = ([u64; 4], u64, u64, u64);

#[derive(Clone, Copy)]
struct Stats;

impl Aggregate<BidTuple> for Stats {
    type Acc = Acc;
    type Out = Acc;
    fn create(&self) -> Acc {
        ([0; 4], u64::MAX, 0, 0)
    }
    fn add(&self, acc: &mut Acc, &(_, _, price, _): &BidTuple) {
        acc.0[0] += 1;
        acc.0[rank(price)] += 1;
        acc.1 = acc.1.min(price);
        acc.2 = acc.2.max(price);
        acc.3 += price;
    }
    fn merge(&self, acc: &mut Acc, other: Acc) {
        for i in 0..4 {
            acc.0[i] += other.0[i];
        }
        acc.1 = acc.1.min(other.1);
        acc.2 = acc.2.max(other.2);
        acc.3 += other.3;
    }
    fn result(&self, acc: &Acc) -> Acc {
        *acc
    }
}

pub fn q17(bids: EventStream<'_, BidTuple>) -> EventStream<'_, Row> {
    bids.window_aggregate(
        TumblingWindows::of_millis(DAY_MS),
        |b: &BidTuple| b.0,
        Stats,
    )
    .map(|((window, auction, (n, min, max, sum)), time)| {
        (
            (auction, day(window.start), n, min, max, sum / n[0], sum),
            time,
        )
    })
}
