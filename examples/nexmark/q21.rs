//! q21, add channel id: bids from a known channel (`apple`, `google`,
//! `facebook`, `baidu`, any case) get its number (`0`-`3`); others the
//! `channel_id` parameter of their URL (Flink's `REGEXP_EXTRACT(url,
//! '(&|^)channel_id=([^&]*)', 2)`), and bids with neither are dropped.
//! Rows: `auction,bidder,price,channel,channel_id`.

use tidewater::prelude::*;

/// One q21 result row.
pub type Row = (u64, u64, u64, String, String);

/// The value of the first `channel_id=` parameter that starts the string
/// or follows a `&`.
fn channel_id(url: &str) -> Option<&str> {
    url.match_indices("channel_id=")
        .find(|(i, _)| *i == 0 || url.as_bytes()[i - 1] == b'&')
        .map(|(i, key)| {
            let rest = &url[i + key.len()..];
            rest.split('&').next().unwrap_or_default()
        })
}

pub fn q21(bids: EventStream<'_, Bid>) -> EventStream<'_, Row> {
    bids.flat_map(|(b, time)| {
        let known = match b.channel.to_lowercase().as_str() {
            "apple" => Some("0"),
            "google" => Some("1"),
            "facebook" => Some("2"),
            "baidu" => Some("3"),
            _ => None,
        };
        let id = known.or_else(|| channel_id(&b.url))?.to_owned();
        Some((
            (
                b.auction as u64,
                b.bidder as u64,
                b.price as u64,
                b.channel,
                id,
            ),
            time,
        ))
    })
}
