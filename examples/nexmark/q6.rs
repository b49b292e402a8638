//! q6, average selling price per seller: each time one of a seller's
//! auctions closes with a winner (q9), the mean (integer) of the winning
//! prices of that seller's last 10 closed auctions. Closes are taken in
//! event-time order (then by row). Rows: `seller,auction,avg_price`.

use std::collections::VecDeque;

use tidewater::prelude::*;

use crate::q9::Row;

const LAST: usize = 10;

struct LastTen;

impl ProcessFunction<u64, Row> for LastTen {
    type State = VecDeque<u64>;
    type Out = (u64, u64, u64);
    type Side = ();

    fn process(
        &mut self,
        (auction, _, price, _): Row,
        prices: &mut VecDeque<u64>,
        ctx: &mut ProcessContext<'_, u64, Self::Out, ()>,
    ) {
        prices.push_back(price);
        if prices.len() > LAST {
            prices.pop_front();
        }
        let avg = prices.iter().sum::<u64>() / prices.len() as u64;
        ctx.emit((*ctx.key(), auction.0, avg));
    }
}

pub fn q6(winners: EventStream<'_, Row>) -> EventStream<'_, (u64, u64, u64)> {
    winners
        .key_by(|w: &Row| w.0 .1)
        .process(None, LastTen)
        .output
}
