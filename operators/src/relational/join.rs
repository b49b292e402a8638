//! Equi-joins of `(key, value)` collections: inner and left outer, each
//! maintained incrementally with retractions.
//!
//! Both sides are arranged by key ([`Table`]); to join one side with
//! several others, or to join and reduce it, make it a table once and use
//! [`Table::join`] and [`Table::left_join`], which share the arrangement.

use super::{Collection, Data, Table};

/// Joins of a `(key, value)` collection.
///
/// ```
/// use differential_dataflow::input::Input;
/// use tidewater_operators::relational::Joins;
///
/// timely::example(|scope| {
///     let (_, orders) = scope.new_collection_from(vec![(1u64, 250u64), (2, 90)]);
///     let (_, names) = scope.new_collection_from(vec![(1u64, "ada".to_string())]);
///     // (1, (250, Some("ada"))) and (2, (90, None))
///     orders.left_join(names).inspect(|x| println!("{x:?}"));
/// });
/// ```
pub trait Joins<'scope, K: Data, V: Data> {
    /// Pairs of rows with equal keys.
    fn inner_join<W: Data>(
        self,
        other: Collection<'scope, (K, W)>,
    ) -> Collection<'scope, (K, (V, W))>;

    /// Pairs of rows with equal keys, and each row of `self` whose key has
    /// no row in `other`, paired with `None`.
    fn left_join<W: Data>(
        self,
        other: Collection<'scope, (K, W)>,
    ) -> Collection<'scope, (K, (V, Option<W>))>;
}

impl<'scope, K: Data, V: Data> Joins<'scope, K, V> for Collection<'scope, (K, V)> {
    fn inner_join<W: Data>(
        self,
        other: Collection<'scope, (K, W)>,
    ) -> Collection<'scope, (K, (V, W))> {
        Table::new(self).join(&Table::new(other))
    }

    fn left_join<W: Data>(
        self,
        other: Collection<'scope, (K, W)>,
    ) -> Collection<'scope, (K, (V, Option<W>))> {
        Table::new(self).left_join(&Table::new(other))
    }
}

impl<'scope, K: Data, V: Data> Table<'scope, K, V> {
    /// The left outer equi-join with `other`: matching pairs, and each row
    /// of this table whose key has no row in `other`, paired with `None`.
    pub fn left_join<W: Data>(
        &self,
        other: &Table<'scope, K, W>,
    ) -> Collection<'scope, (K, (V, Option<W>))> {
        let matched = self.join_map(other, |k, v, w| (k.clone(), (v.clone(), Some(w.clone()))));
        let keys = other.reduce("Keys", |_k, _values, out| out.push(((), 1)));
        let with_match = self.join_map(&keys, |k, v, _| (k.clone(), (v.clone(), None)));
        let all = self.to_collection().map(|(k, v)| (k, (v, None)));
        matched.concat(all).concat(with_match.negate())
    }
}
