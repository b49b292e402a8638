//! Top-N per key by a sort key, and keeping the first or last row per key
//! (deduplication by event time or any other order).

use std::cmp::Reverse;

use super::{Collection, Data, Diff, Table};

/// Ranking per key of a `(key, value)` collection.
///
/// ```
/// use differential_dataflow::input::Input;
/// use tidewater_operators::relational::TopN;
///
/// timely::example(|scope| {
///     // (auction, (price, bidder))
///     let (_, bids) = scope.new_collection_from(vec![(1u64, (30u64, 7u64)), (1, (50, 8)), (1, (40, 9))]);
///     // the two highest bids of each auction: (1, (50, 8)) and (1, (40, 9))
///     bids.clone().top_n_by(2, |&(price, _)| std::cmp::Reverse(price)).inspect(|x| println!("{x:?}"));
///     // the lowest bid of each auction
///     bids.keep_first_by(|&(price, _)| price).inspect(|x| println!("{x:?}"));
/// });
/// ```
pub trait TopN<'scope, K: Data, V: Data> {
    /// The `n` rows of each key that come first by `order` (ties by the
    /// value), duplicates counted.
    fn top_n_by<S: Ord + 'static>(
        self,
        n: usize,
        order: impl Fn(&V) -> S + 'static,
    ) -> Collection<'scope, (K, V)>;

    /// The first row of each key by `order` (for instance its event time:
    /// deduplication keeping the first row).
    fn keep_first_by<S: Ord + 'static>(
        self,
        order: impl Fn(&V) -> S + 'static,
    ) -> Collection<'scope, (K, V)>
    where
        Self: Sized,
    {
        self.top_n_by(1, order)
    }

    /// The last row of each key by `order` (deduplication keeping the
    /// latest row).
    fn keep_last_by<S: Ord + 'static>(
        self,
        order: impl Fn(&V) -> S + 'static,
    ) -> Collection<'scope, (K, V)>
    where
        Self: Sized,
    {
        self.top_n_by(1, move |v| Reverse(order(v)))
    }
}

impl<'scope, K: Data, V: Data> TopN<'scope, K, V> for Collection<'scope, (K, V)> {
    fn top_n_by<S: Ord + 'static>(
        self,
        n: usize,
        order: impl Fn(&V) -> S + 'static,
    ) -> Collection<'scope, (K, V)> {
        Table::new(self).top_n_by(n, order).to_collection()
    }
}

impl<'scope, K: Data, V: Data> Table<'scope, K, V> {
    /// The `n` rows of each key that come first by `order`, as a table.
    pub fn top_n_by<S: Ord + 'static>(
        &self,
        n: usize,
        order: impl Fn(&V) -> S + 'static,
    ) -> Table<'scope, K, V> {
        self.reduce("TopN", move |_k, values, out| {
            let mut ranked: Vec<(S, &V, Diff)> =
                values.iter().map(|(v, r)| (order(v), *v, *r)).collect();
            ranked.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            let mut left = n as Diff;
            for (_, v, r) in ranked {
                if left <= 0 {
                    break;
                }
                let take = r.min(left);
                out.push((v.clone(), take));
                left -= take;
            }
        })
    }
}
