//! Group-by aggregates over `(key, value)` collections: count, sum, min,
//! max, average and distinct count per key, each maintained incrementally
//! with retractions.
//!
//! Count, sum and average fold values into the update's multiplicity
//! (differential's `explode`), so a change costs one update, not a pass
//! over the key's values; min and max keep the key's values arranged.

use differential_dataflow::operators::CountTotal;

use super::{Collection, Data, Diff, Table};

/// Sum and count of a key's values; [`Avg::value`] is their mean.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Avg {
    /// The sum of the values.
    pub sum: i64,
    /// How many values.
    pub count: i64,
}

impl Avg {
    /// The mean (`sum / count`).
    pub fn value(&self) -> f64 {
        self.sum as f64 / self.count as f64
    }
}

/// Aggregates per key of a `(key, value)` collection.
///
/// ```
/// use differential_dataflow::input::Input;
/// use tidewater_operators::relational::GroupBy;
///
/// timely::example(|scope| {
///     // (category, price)
///     let (_, prices) = scope.new_collection_from(vec![(1u32, 12u64), (1, 30), (2, 7)]);
///     prices.clone().count_by_key().inspect(|x| println!("count {x:?}"));
///     prices.clone().sum_by_key(|p| *p as i64).inspect(|x| println!("sum {x:?}"));
///     prices.clone().max_by_key().inspect(|x| println!("max {x:?}"));
///     prices.avg_by_key(|p| *p as i64).inspect(|x| println!("avg {x:?}"));
/// });
/// ```
pub trait GroupBy<'scope, K: Data, V: Data> {
    /// The number of rows per key (keys with rows only).
    fn count_by_key(self) -> Collection<'scope, (K, i64)>;
    /// The sum of `value(v)` per key.
    fn sum_by_key(self, value: impl Fn(&V) -> i64 + 'static) -> Collection<'scope, (K, i64)>;
    /// The sum and count of `value(v)` per key.
    fn avg_by_key(self, value: impl Fn(&V) -> i64 + 'static) -> Collection<'scope, (K, Avg)>;
    /// The least value per key.
    fn min_by_key(self) -> Collection<'scope, (K, V)>;
    /// The greatest value per key.
    fn max_by_key(self) -> Collection<'scope, (K, V)>;
    /// The number of distinct values per key.
    fn count_distinct_by_key(self) -> Collection<'scope, (K, i64)>;
}

impl<'scope, K: Data, V: Data> GroupBy<'scope, K, V> for Collection<'scope, (K, V)> {
    fn count_by_key(self) -> Collection<'scope, (K, i64)> {
        self.map(|(k, _)| k)
            .count_total()
            .map(|(k, n)| (k, n as i64))
    }

    fn sum_by_key(self, value: impl Fn(&V) -> i64 + 'static) -> Collection<'scope, (K, i64)> {
        self.avg_by_key(value).map(|(k, avg)| (k, avg.sum))
    }

    fn avg_by_key(self, value: impl Fn(&V) -> i64 + 'static) -> Collection<'scope, (K, Avg)> {
        self.explode(move |(k, v)| Some((k, (value(&v) as Diff, 1 as Diff))))
            .count_total()
            .map(|(k, (sum, count))| {
                let (sum, count) = (sum as i64, count as i64);
                (k, Avg { sum, count })
            })
    }

    fn min_by_key(self) -> Collection<'scope, (K, V)> {
        Table::new(self).min_by_key().to_collection()
    }

    fn max_by_key(self) -> Collection<'scope, (K, V)> {
        Table::new(self).max_by_key().to_collection()
    }

    fn count_distinct_by_key(self) -> Collection<'scope, (K, i64)> {
        self.distinct().count_by_key()
    }
}

impl<'scope, K: Data, V: Data> Table<'scope, K, V> {
    /// The least value per key, as a table.
    pub fn min_by_key(&self) -> Table<'scope, K, V> {
        self.reduce("Min", |_k, values, out| out.push((values[0].0.clone(), 1)))
    }

    /// The greatest value per key, as a table.
    pub fn max_by_key(&self) -> Table<'scope, K, V> {
        self.reduce("Max", |_k, values, out| {
            out.push((values[values.len() - 1].0.clone(), 1))
        })
    }
}
