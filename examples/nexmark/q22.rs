//! q22, get URL directories: each bid with the 3rd, 4th and 5th parts of
//! its URL split at `/` (Flink's `SPLIT_INDEX(url, '/', 3..5)`; empty where
//! the URL has fewer parts). Rows: `auction,bidder,price,channel,dir1,dir2,dir3`.

use tidewater::prelude::*;

/// One q22 result row.
pub type Row = (u64, u64, u64, String, String, String, String);

pub fn q22(bids: EventStream<'_, Bid>) -> EventStream<'_, Row> {
    bids.map(|(b, time)| {
        let parts: Vec<&str> = b.url.split('/').collect();
        let part = |i: usize| parts.get(i).copied().unwrap_or_default().to_owned();
        let row = (
            b.auction as u64,
            b.bidder as u64,
            b.price as u64,
            b.channel.clone(),
            part(3),
            part(4),
            part(5),
        );
        (row, time)
    })
}
