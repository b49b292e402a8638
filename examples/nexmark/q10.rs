//! q10, log to file system: every bid with the day and the `HH:mm` it was
//! placed, the columns the reference partitions its files by (`dt`, `hm`).
//! The rows are written as the driver's output; a sink that splits files
//! by column values is not built. Rows: `auction,bidder,price,date_time,
//! extra,dt,hm`.

use tidewater::prelude::*;

use crate::calendar::{day, hour};

/// One q10 result row.
pub type Row = (u64, u64, u64, u64, String, String, String);

pub fn q10(bids: EventStream<'_, Bid>) -> EventStream<'_, Row> {
    bids.map(|(b, time)| {
        let hm = format!("{:02}:{:02}", hour(b.date_time), b.date_time / 60_000 % 60);
        let row = (
            b.auction as u64,
            b.bidder as u64,
            b.price as u64,
            b.date_time,
            b.extra,
            day(b.date_time),
            hm,
        );
        (row, time)
    })
}
