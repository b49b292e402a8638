//! The windowed bid queries shared by `bid_windows` and the Nexmark driver
//! (`hot-items` is Nexmark q5, `max-bid` q7, `filter-map` q1+q2).
//!
//! A bid here is `(auction, bidder, price, date_time)`. Each program that
//! includes this file uses some of the queries.
#![allow(dead_code)]

use tidewater::prelude::*;

/// `(auction, bidder, price, date_time)`.
pub type BidTuple = (u64, u64, u64, u64);

/// A generated bid as a [`BidTuple`].
pub fn bid_tuple(b: &Bid) -> BidTuple {
    (
        b.auction as u64,
        b.bidder as u64,
        b.price as u64,
        b.date_time,
    )
}

/// Window size of every windowed query, in ms.
pub const WINDOW_MS: u64 = 10_000;
/// Slide of the sliding windows, in ms.
pub const SLIDE_MS: u64 = 2_000;

/// Bids per auction in tumbling windows: `(window_end, auction, count)`.
pub fn window_count(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64)> {
    bids.map(|(bid, time)| (bid.0, time))
        .window_aggregate(TumblingWindows::of_millis(WINDOW_MS), |a: &u64| *a, Count)
        .map(|((window, auction, count), time)| ((window.end, auction, count), time))
}

/// Per sliding window, the auction(s) with the most bids: `(window_end, auction, count)`.
///
/// Counted per auction in slide-sized panes first, then each sliding window
/// sums its five panes: one count update per bid instead of one per window
/// it falls in. (Flink's planner slices HOP windows this way by itself; the
/// window operator does not yet, so the query is written so.)
pub fn hot_items(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64)> {
    let sum = AggregateFn::new(
        || 0u64,
        |sum: &mut u64, pane: &(u64, u64)| *sum += pane.1,
        |sum: &mut u64, other: u64| *sum += other,
    );
    bids.map(|(bid, time)| (bid.0, time))
        .window_aggregate(TumblingWindows::of_millis(SLIDE_MS), |a: &u64| *a, Count)
        // A pane's count travels at `pane end - 1`, so it falls in exactly
        // the sliding windows that hold the pane.
        .map(|((_, auction, count), time)| ((auction, count), time))
        // Not pre-aggregated (the long form, without `.pre_aggregate()`):
        // a pane count is already one per auction, so folding them before
        // the exchange would only spread each into its five windows early.
        .key_by(|pane: &(u64, u64)| pane.0)
        .window(SlidingWindows::of_millis(WINDOW_MS, SLIDE_MS))
        .aggregate(sum)
        .updates
        .map(|(u, time)| ((u.window.end, u.key, u.value), time))
        // Each count carries event time `end - 1`: 1 ms windows keyed by the
        // window end gather exactly one sliding window's counts.
        .window_aggregate(
            TumblingWindows::of_millis(1),
            |row: &(u64, u64, u64)| row.0,
            MaxAllBy::new(|row: &(u64, u64, u64)| row.2),
        )
        .flat_map(|((_, _, rows), time)| rows.into_iter().map(move |row| (row, time)))
}

/// Per tumbling window, the bid(s) with the highest price:
/// `(window_end, auction, bidder, price)`.
///
/// One key for the whole stream: every worker folds the bids it reads into
/// each window's highest before the exchange (`window_aggregate`
/// pre-aggregates), so what is exchanged is one partial per window and
/// input batch, and the window's owner merges those.
pub fn max_bid(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64, u64)> {
    bids.map(|((auction, bidder, price, _), time)| ((auction, bidder, price), time))
        .window_aggregate(
            TumblingWindows::of_millis(WINDOW_MS),
            |_: &(u64, u64, u64)| (),
            MaxAllBy::new(|row: &(u64, u64, u64)| row.2),
        )
        .flat_map(|((window, (), rows), time)| {
            rows.into_iter()
                .map(move |(auction, bidder, price)| ((window.end, auction, bidder, price), time))
        })
}

/// Bids on every 123rd auction, price converted to euros:
/// `(auction, price * 908 / 1000, date_time)`.
pub fn filter_map(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64, u64)> {
    bids.flat_map(|((auction, _, price, date_time), time)| {
        (auction % 123 == 0).then_some(((auction, price * 908 / 1000, date_time), time))
    })
}
