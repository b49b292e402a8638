//! q15, bidding statistics per day: bids, bidders and auctions, in total
//! and per price rank (rank 1 below 10 000, rank 2 below 1 000 000, rank 3
//! the rest). Tumbling one-day windows over all bids (one key: the whole
//! day's state lives on one worker, as in the reference query). Rows:
//! `day,total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,
//! rank1_bidders,rank2_bidders,rank3_bidders,total_auctions,rank1_auctions,
//! rank2_auctions,rank3_auctions`.

use rustc_hash::FxHashMap;

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;
use crate::calendar::day;

/// A day, in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// The price rank (1, 2 or 3) of a price.
pub fn rank(price: u64) -> usize {
    match price {
        0..10_000 => 1,
        10_000..1_000_000 => 2,
        _ => 3,
    }
}

/// Counts, distinct bidders and distinct auctions: in total (index 0) and
/// per rank (1-3). Each distinct bidder (and auction) is kept once, with a
/// bit for each rank it bid at: one hash-map update per bid for each
/// instead of inserts into the total's set and the rank's (the distinct
/// sets of q16's hot channels outgrow the caches, and their inserts were
/// a third of its time); the per-rank counts are counted when the window
/// fires. Hash maps, not B-trees: q16 keeps two per channel, for thousands
/// of channels, and inserting into that many B-trees was 43% of its time.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DayStats {
    bids: [u64; 4],
    /// Each bidder, with bit `r` set if it bid at rank `r`.
    bidders: FxHashMap<u64, u8>,
    /// Each auction, with bit `r` set if it was bid on at rank `r`.
    auctions: FxHashMap<u64, u8>,
    /// The latest bid time seen.
    latest: u64,
}

/// Distinct keys in total (index 0) and per rank (1-3) of a map of rank
/// bits.
fn distinct(ranks: &FxHashMap<u64, u8>) -> [u64; 4] {
    let mut counts = [ranks.len() as u64, 0, 0, 0];
    for bits in ranks.values() {
        for (r, count) in counts.iter_mut().enumerate().skip(1) {
            *count += u64::from(bits >> r & 1);
        }
    }
    counts
}

/// One q15 result row.
pub type Row = (String, [u64; 4], [u64; 4], [u64; 4]);

/// The q15 (and q16) aggregate.
#[derive(Clone, Copy)]
pub struct Stats;

/// Bids, distinct bidders and distinct auctions (each in total and per
/// rank), and the latest bid time.
pub type StatsOut = ([u64; 4], [u64; 4], [u64; 4], u64);

impl Aggregate<BidTuple> for Stats {
    type Acc = DayStats;
    type Out = StatsOut;
    fn create(&self) -> DayStats {
        DayStats::default()
    }
    fn add(&self, acc: &mut DayStats, &(auction, bidder, price, time): &BidTuple) {
        acc.latest = acc.latest.max(time);
        let rank = rank(price);
        acc.bids[0] += 1;
        acc.bids[rank] += 1;
        *acc.bidders.entry(bidder).or_default() |= 1 << rank;
        *acc.auctions.entry(auction).or_default() |= 1 << rank;
    }
    fn merge(&self, acc: &mut DayStats, other: DayStats) {
        acc.latest = acc.latest.max(other.latest);
        for i in 0..4 {
            acc.bids[i] += other.bids[i];
        }
        for (mine, theirs) in [
            (&mut acc.bidders, other.bidders),
            (&mut acc.auctions, other.auctions),
        ] {
            for (key, bits) in theirs {
                *mine.entry(key).or_default() |= bits;
            }
        }
    }
    fn result(&self, acc: &DayStats) -> Self::Out {
        (
            acc.bids,
            distinct(&acc.bidders),
            distinct(&acc.auctions),
            acc.latest,
        )
    }
}

pub fn q15(bids: EventStream<'_, BidTuple>) -> EventStream<'_, Row> {
    bids.window_aggregate(
        TumblingWindows::of_millis(DAY_MS),
        |_: &BidTuple| 0u8,
        Stats,
    )
    .map(|((window, _, (bids, bidders, auctions, _)), time)| {
        ((day(window.start), bids, bidders, auctions), time)
    })
}
