//! q8, monitor new users: people who registered and opened an auction in
//! the same tumbling 10 s window (a window join of persons and auctions on
//! person id = seller). Rows: `person_id,name,window_start_ms`, one per
//! person and window.

use tidewater::operators::WindowJoin;
use tidewater::prelude::*;

pub fn q8<'s>(
    persons: EventStream<'s, (u64, String)>,
    sellers: EventStream<'s, u64>,
) -> EventStream<'s, (u64, String, u64)> {
    let window = TumblingWindows::of_millis(10_000);
    persons
        .key_by(|p: &(u64, String)| p.0)
        .window_join(sellers.key_by(|s: &u64| *s), window, |_, w, p, _| {
            (p.0, p.1.clone(), w.start)
        })
        // one row per person and window, however many auctions they opened
        .window_aggregate(
            TumblingWindows::of_millis(1),
            |row: &(u64, String, u64)| row.clone(),
            Count,
        )
        .map(|((_, row, _), time)| (row, time))
}
