//! q3, q4, q6 and q9 as continuous queries on differential arrangements
//! (`--engine relational`): materialized views maintained with
//! retractions, written as their changelog (`row...,diff`) or, with
//! `--sorted`, as the final view (the rows of the streaming versions).
//!
//! - q18: each bidder's last bid on each auction, as an upsert table
//!   keyed by (bidder, auction): a later bid replaces the earlier one; at
//!   one time the higher price wins (the upsert tie rule), as in the
//!   streaming q18.
//! - q3: local sellers' category-10 auctions, a filter on each side and
//!   an inner join of persons and auctions on the seller.
//! - q9: each closed auction with its winning bid. An auction enters the
//!   view at `expires + 1` (the watermark has passed its expiry), is joined
//!   with its bids placed between its start and its expiry, and the
//!   greatest bid (price, then the earliest, then the lowest bidder) is
//!   kept: a top-1 per auction.
//! - q4: the average winning price per category over q9's view.
//! - q6: per seller, the average winning price of the last 10 closed
//!   auctions (by expiry, then auction): a top-10 per seller by close, then
//!   an average.
//!
//! Unlike the streaming versions, every intermediate result is a view
//! that changes as data arrives: q4's averages are correct at every
//! watermark, not only at the end of the input. The state is the
//! arrangements: all persons and auctions (q3), all bids and closed
//! auctions (q9, q4, q6) — a regular join keeps its inputs.

use std::cmp::Reverse;

use tidewater::operators::relational::{
    Collection, GroupBy, Joins, Table, ToCollection, TopN, UpsertStream,
};
use tidewater::operators::EventStream;
use tidewater::prelude::{Map, Person};

use crate::bid_queries::BidTuple;
use crate::q9::{AuctionTuple, Row};

/// A person `(id, name, city, state)`.
pub type PersonTuple = (u64, String, String, String);

/// A generated person as a [`PersonTuple`].
pub fn person_tuple(p: Person) -> PersonTuple {
    (p.id as u64, p.name, p.city, p.state)
}

/// q3's rows: `(name, city, state, auction)`.
pub fn q3<'s>(
    persons: EventStream<'s, PersonTuple>,
    auctions: EventStream<'s, AuctionTuple>,
) -> Collection<'s, (String, String, String, u64)> {
    let local = persons
        .to_collection()
        .filter(|(_, _, _, state)| matches!(state.to_uppercase().as_str(), "OR" | "ID" | "CA"))
        .map(|(id, name, city, state)| (id, (name, city, state)));
    let auctions = auctions
        .to_collection()
        .filter(|a| a.2 == 10)
        .map(|a| (a.1, a.0));
    local
        .inner_join(auctions)
        .map(|(_, ((name, city, state), auction))| (name, city, state, auction))
}

/// q9's rows: each closed auction with its winning bid.
pub fn q9<'s>(
    auctions: EventStream<'s, AuctionTuple>,
    bids: EventStream<'s, BidTuple>,
) -> Collection<'s, Row> {
    // An auction is closed once the watermark passes its expiry.
    let closed = auctions
        .map(|(a, _)| (a, a.6 + 1))
        .to_collection()
        .map(|a| (a.0, a));
    let bids = bids
        .to_collection()
        .map(|(auction, bidder, price, time)| (auction, (price, time, bidder)));
    Table::new(closed)
        .join_flat_map(&Table::new(bids), |id, a, b| {
            (a.5 <= b.1 && b.1 <= a.6).then_some((*id, (*a, *b)))
        })
        .top_n_by(1, |(_, (price, time, bidder))| {
            (Reverse(*price), *time, *bidder)
        })
        .map(|(_, (a, (price, time, bidder)))| (a, bidder, price, time))
}

/// q4's rows: `(category, average winning price)`.
pub fn q4(winners: Collection<'_, Row>) -> Collection<'_, (u64, u64)> {
    winners
        .map(|(a, _, price, _)| (a.2, price))
        .avg_by_key(|price| *price as i64)
        .map(|(category, avg)| (category, (avg.sum / avg.count) as u64))
}

/// q6's rows: `(seller, average winning price of the last 10 closes)`.
pub fn q6(winners: Collection<'_, Row>) -> Collection<'_, (u64, u64)> {
    winners
        .map(|(a, _, price, _)| (a.1, (a.6, a.0, price)))
        .top_n_by(10, |close| Reverse(*close))
        .map(|(seller, (_, _, price))| (seller, price))
        .avg_by_key(|price| *price as i64)
        .map(|(seller, avg)| (seller, (avg.sum / avg.count) as u64))
}

/// q18's rows: `(auction, bidder, price, date_time)` of each bidder's last
/// bid on each auction.
pub fn q18(bids: EventStream<'_, BidTuple>) -> Collection<'_, BidTuple> {
    bids.map(|((auction, bidder, price, time), t)| (((bidder, auction), Some((price, time))), t))
        .upsert_table()
        .to_collection()
        .map(|((bidder, auction), (price, time))| (auction, bidder, price, time))
}
