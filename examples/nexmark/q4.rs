//! q4, average closing price per category: the mean (integer) of the
//! winning prices (q9) of each category's closed auctions. A final result:
//! a global window per category, emitted when the input ends (the
//! continuously updated form is a differential aggregate, issue 4). Rows:
//! `category,avg_final_price`.

use tidewater::prelude::*;

use crate::q9::Row;

pub fn q4(winners: EventStream<'_, Row>) -> EventStream<'_, (u64, u64)> {
    let sum = AggregateFn::new(
        || (0u64, 0u64),
        |acc: &mut (u64, u64), w: &Row| {
            acc.0 += w.2;
            acc.1 += 1;
        },
        |acc: &mut (u64, u64), other: (u64, u64)| {
            acc.0 += other.0;
            acc.1 += other.1;
        },
    );
    winners
        .window_aggregate(GlobalWindows, |w: &Row| w.0 .2, sum)
        .map(|((_, category, (sum, n)), time)| ((category, sum / n), time))
}
