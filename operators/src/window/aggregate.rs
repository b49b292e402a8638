//! Aggregate functions for windows: an accumulator created per key and
//! window, fed each record, and turned into a result when the window fires
//! (Flink's `AggregateFunction`).

/// An incremental aggregation over records of type `D`.
pub trait Aggregate<D>: 'static {
    /// The running state per key and window.
    type Acc: 'static;
    /// The result emitted when the window fires.
    type Out: 'static;
    /// A fresh accumulator.
    fn create(&self) -> Self::Acc;
    /// Folds one record into the accumulator.
    fn add(&self, acc: &mut Self::Acc, record: &D);
    /// The result of a finished accumulator.
    fn result(&self, acc: Self::Acc) -> Self::Out;
}

/// Counts records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<D> Aggregate<D> for Count {
    type Acc = u64;
    type Out = u64;
    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _record: &D) {
        *acc += 1;
    }
    fn result(&self, acc: u64) -> u64 {
        acc
    }
}

/// Keeps every record whose key (by `F`) is the largest; ties are all kept,
/// sorted, so the result does not depend on arrival order.
///
/// ```
/// use tidewater_operators::{Aggregate, MaxAllBy};
/// let max = MaxAllBy::new(|x: &(u32, char)| x.0);
/// let mut acc = max.create();
/// for x in [(1, 'a'), (3, 'c'), (3, 'b'), (2, 'z')] { max.add(&mut acc, &x); }
/// assert_eq!(max.result(acc), vec![(3, 'b'), (3, 'c')]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MaxAllBy<F> {
    key: F,
}

impl<F> MaxAllBy<F> {
    /// Keeps the records with the largest `key(record)`.
    pub fn new(key: F) -> Self {
        MaxAllBy { key }
    }
}

impl<D, K, F> Aggregate<D> for MaxAllBy<F>
where
    D: Clone + Ord + 'static,
    K: Ord,
    F: Fn(&D) -> K + 'static,
{
    type Acc = Vec<D>;
    type Out = Vec<D>;
    fn create(&self) -> Vec<D> {
        Vec::new()
    }
    #[inline]
    fn add(&self, acc: &mut Vec<D>, record: &D) {
        match acc
            .first()
            .map(|best| (self.key)(record).cmp(&(self.key)(best)))
        {
            None | Some(std::cmp::Ordering::Equal) => acc.push(record.clone()),
            Some(std::cmp::Ordering::Greater) => {
                acc.clear();
                acc.push(record.clone());
            }
            Some(std::cmp::Ordering::Less) => {}
        }
    }
    fn result(&self, mut acc: Vec<D>) -> Vec<D> {
        acc.sort();
        acc
    }
}
