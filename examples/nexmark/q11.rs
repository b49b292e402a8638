//! q11, user sessions: bids per bidder in session windows that close after
//! 10 s without a bid. Rows: `bidder,bids,session_start_ms,session_end_ms`.

use tidewater::prelude::*;

use crate::bid_queries::BidTuple;

pub fn q11(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64, u64)> {
    bids.key_by(|b: &BidTuple| b.1)
        .window(SessionWindows::with_gap_millis(10_000))
        .aggregate(Count)
        .updates
        // Without allowed lateness or early triggers a session fires once.
        .map(|(u, time)| {
            debug_assert_eq!(u.diff, 1);
            ((u.key, u.value, u.window.start, u.window.end), time)
        })
}
