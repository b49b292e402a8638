//! Aggregate functions for windows: an accumulator created per key and
//! window, fed each record, and turned into a result when the window fires
//! (Flink's `AggregateFunction`).

use timely::ExchangeData;

/// An incremental aggregation over records of type `D`.
pub trait Aggregate<D>: 'static {
    /// The running state per key and window (serializable: it is
    /// checkpointed).
    type Acc: ExchangeData;
    /// The result emitted when the window fires.
    type Out: 'static;
    /// A fresh accumulator.
    fn create(&self) -> Self::Acc;
    /// Folds one record into the accumulator.
    fn add(&self, acc: &mut Self::Acc, record: &D);
    /// Folds `other` into `acc` (when session windows merge).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result of the accumulator so far.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
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
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
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
/// assert_eq!(max.result(&acc), vec![(3, 'b'), (3, 'c')]);
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
    D: ExchangeData + Clone + Ord,
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
    fn merge(&self, acc: &mut Vec<D>, other: Vec<D>) {
        for record in &other {
            self.add(acc, record);
        }
    }
    fn result(&self, acc: &Vec<D>) -> Vec<D> {
        let mut result = acc.clone();
        result.sort();
        result
    }
}

/// A general aggregate from three closures: a fresh accumulator, a fold of
/// one record, a merge of two accumulators; the result is the accumulator.
///
/// ```
/// use tidewater_operators::{Aggregate, AggregateFn};
/// // (sum, count) of prices, for an average.
/// let avg = AggregateFn::new(
///     || (0u64, 0u64),
///     |acc: &mut (u64, u64), price: &u64| { acc.0 += price; acc.1 += 1; },
///     |acc: &mut (u64, u64), other: (u64, u64)| { acc.0 += other.0; acc.1 += other.1; },
/// );
/// let mut acc = avg.create();
/// avg.add(&mut acc, &10);
/// avg.add(&mut acc, &20);
/// assert_eq!(avg.result(&acc), (30, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AggregateFn<I, F, M> {
    init: I,
    fold: F,
    merge: M,
}

impl<I, F, M> AggregateFn<I, F, M> {
    /// An aggregate from `init`, `fold` and `merge`.
    pub fn new(init: I, fold: F, merge: M) -> Self {
        AggregateFn { init, fold, merge }
    }
}

impl<D, Acc, I, F, M> Aggregate<D> for AggregateFn<I, F, M>
where
    Acc: ExchangeData + Clone,
    I: Fn() -> Acc + 'static,
    F: Fn(&mut Acc, &D) + 'static,
    M: Fn(&mut Acc, Acc) + 'static,
{
    type Acc = Acc;
    type Out = Acc;
    fn create(&self) -> Acc {
        (self.init)()
    }
    #[inline]
    fn add(&self, acc: &mut Acc, record: &D) {
        (self.fold)(acc, record)
    }
    fn merge(&self, acc: &mut Acc, other: Acc) {
        (self.merge)(acc, other)
    }
    fn result(&self, acc: &Acc) -> Acc {
        acc.clone()
    }
}

/// Collects a window's records, for full-window process functions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Collect;

impl<D: ExchangeData + Clone> Aggregate<D> for Collect {
    type Acc = Vec<D>;
    type Out = Vec<D>;
    fn create(&self) -> Vec<D> {
        Vec::new()
    }
    #[inline]
    fn add(&self, acc: &mut Vec<D>, record: &D) {
        acc.push(record.clone());
    }
    fn merge(&self, acc: &mut Vec<D>, mut other: Vec<D>) {
        acc.append(&mut other);
    }
    fn result(&self, acc: &Vec<D>) -> Vec<D> {
        acc.clone()
    }
}
