//! q13, bounded side input join: each bid with the value its auction's
//! `auction % 10000` has in a side-input table: a CSV file of `key,value`
//! rows given with `--side-input` (bids whose key is not in the table are
//! dropped, as in an inner join), or without it the reference's generated
//! table of keys 0-9999 with the key as the value. Every worker loads the
//! whole table (it is bounded and small). Rows:
//! `auction,bidder,price,date_time,value`.

use std::collections::HashMap;
use std::path::Path;

use tidewater::prelude::*;

/// Keys of the side input: `auction % KEYS`.
const KEYS: u64 = 10_000;

/// One q13 result row.
pub type Row = (u64, u64, u64, u64, String);

/// The side input from `path`, or the generated default.
pub fn side_input(path: Option<&Path>) -> anyhow::Result<HashMap<u64, String>> {
    use anyhow::Context as _;
    let Some(path) = path else {
        return Ok((0..KEYS).map(|k| (k, k.to_string())).collect());
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .with_context(|| format!("cannot read the side input {}", path.display()))?;
    let mut table = HashMap::new();
    for (line, row) in reader.deserialize::<(u64, String)>().enumerate() {
        let (key, value) =
            row.with_context(|| format!("{}:{}: not key,value", path.display(), line + 1))?;
        table.insert(key, value);
    }
    Ok(table)
}

pub fn q13(bids: EventStream<'_, Bid>, table: HashMap<u64, String>) -> EventStream<'_, Row> {
    bids.flat_map(move |(b, time)| {
        let value = table.get(&(b.auction as u64 % KEYS))?.clone();
        Some((
            (
                b.auction as u64,
                b.bidder as u64,
                b.price as u64,
                b.date_time,
                value,
            ),
            time,
        ))
    })
}
