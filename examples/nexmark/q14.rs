//! q14, calculation: bids priced (in euros, `price * 908 / 1000`) strictly
//! between 1 000 000 and 50 000 000, with the time of day they were placed
//! (`dayTime` 8-18 h, `nightTime` up to 6 h or from 20 h, `otherTime`) and
//! how many `c`s their `extra` holds. Rows:
//! `auction,bidder,price,bid_time_type,date_time,c_counts`.

use tidewater::prelude::*;

use crate::calendar::hour;

/// One q14 result row.
pub type Row = (u64, u64, u64, &'static str, u64, u64);

pub fn q14(bids: EventStream<'_, Bid>) -> EventStream<'_, Row> {
    bids.flat_map(|(b, time)| {
        let price = b.price as u64 * 908 / 1000;
        (price > 1_000_000 && price < 50_000_000).then(|| {
            let kind = match hour(b.date_time) {
                8..=18 => "dayTime",
                h if h <= 6 || h >= 20 => "nightTime",
                _ => "otherTime",
            };
            let c_counts = b.extra.bytes().filter(|c| *c == b'c').count() as u64;
            let row = (
                b.auction as u64,
                b.bidder as u64,
                price,
                kind,
                b.date_time,
                c_counts,
            );
            (row, time)
        })
    })
}
