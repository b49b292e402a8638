//! q12, processing-time windows: bids per bidder in tumbling 10 s windows of
//! wall-clock time. Rows: `bidder,bids,window_start_ms,window_end_ms`.
//!
//! Processing time makes the grouping depend on when bids arrive, so this
//! query is not deterministic: the total count per bidder is, the split into
//! windows is not. To run it reproducibly, compare totals per bidder, or run
//! it with `--rate` so that arrival follows a fixed schedule.

use std::time::Duration;

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;

pub fn q12(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64, u64)> {
    // Only the bidder travels to its window's worker.
    bids.map(|(b, time)| (b.1, time))
        .key_by(|bidder: &u64| *bidder)
        .processing_time_aggregate(Duration::from_secs(10), Count)
        .map(|((w, bidder, count), time)| ((bidder, count, w.start, w.end), time))
}
