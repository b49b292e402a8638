//! [`Table`]: keyed state as a shared differential arrangement, and
//! [`TableReader`]: reading it from outside the dataflow.
//!
//! A table arranges a collection of `(key, value)` rows by key once; every
//! join and reduction built on the table reads that one arrangement (arrange
//! once, join and reduce many times). Its logical compaction follows the
//! frontier, so it holds the consolidated rows of live keys, not the
//! history of updates.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::trace::TraceReader;
use differential_dataflow::Hashable;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::progress::Antichain;

use super::{Collection, Data, Diff};
use crate::EventTime;

/// The trace behind a [`Table`].
pub type Spine<K, V> = ValSpine<K, V, EventTime, Diff>;

/// Differential's arrangement type behind a [`Table`].
pub type Arrangement<'scope, K, V> = Arranged<'scope, TraceAgent<Spine<K, V>>>;

/// A collection of `(key, value)` rows arranged by key: shared keyed state.
///
/// ```
/// use differential_dataflow::input::Input;
/// use tidewater_operators::relational::Table;
///
/// timely::example(|scope| {
///     let (_, orders) = scope.new_collection_from(vec![(1u64, 250u64), (2, 90)]);
///     let (_, names) = scope.new_collection_from(vec![(1u64, "ada".to_string())]);
///     let orders = Table::new(orders);
///     // Both the join and the reduction read the one arrangement of `orders`.
///     let named = orders.join(&Table::new(names));
///     let biggest = orders.reduce("Biggest", |_k, vals, out| out.push((*vals.last().unwrap().0, 1)));
///     named.inspect(|x| println!("{x:?}"));
///     biggest.to_collection().inspect(|x| println!("{x:?}"));
/// });
/// ```
pub struct Table<'scope, K: Data, V: Data> {
    arranged: Arrangement<'scope, K, V>,
}

impl<K: Data, V: Data> Clone for Table<'_, K, V> {
    fn clone(&self) -> Self {
        Table {
            arranged: self.arranged.clone(),
        }
    }
}

impl<'scope, K: Data, V: Data> Table<'scope, K, V> {
    /// Arranges `rows` by key (exchanging them to the worker that owns the
    /// key).
    pub fn new(rows: Collection<'scope, (K, V)>) -> Self {
        Table {
            arranged: rows.arrange_by_key_named("Table"),
        }
    }

    /// A table over an arrangement built with raw differential.
    pub fn from_arranged(arranged: Arrangement<'scope, K, V>) -> Self {
        Table { arranged }
    }

    /// The arrangement, for raw differential operators.
    pub fn arranged(&self) -> &Arrangement<'scope, K, V> {
        &self.arranged
    }

    /// The rows, as a collection.
    pub fn to_collection(&self) -> Collection<'scope, (K, V)> {
        self.arranged
            .clone()
            .as_collection(|k: &K, v: &V| (k.clone(), v.clone()))
    }

    /// The inner equi-join with `other` on the key.
    pub fn join<W: Data>(&self, other: &Table<'scope, K, W>) -> Collection<'scope, (K, (V, W))> {
        self.join_map(other, |k, v, w| (k.clone(), (v.clone(), w.clone())))
    }

    /// The inner equi-join with `other`, each matching pair mapped by
    /// `logic`.
    pub fn join_map<W, D, L>(
        &self,
        other: &Table<'scope, K, W>,
        mut logic: L,
    ) -> Collection<'scope, D>
    where
        W: Data,
        D: Data,
        L: FnMut(&K, &V, &W) -> D + 'static,
    {
        self.join_flat_map(other, move |k, v, w| Some(logic(k, v, w)))
    }

    /// The inner equi-join with `other`, each matching pair mapped by
    /// `logic` to any number of rows: filters on the pair (a join with a
    /// non-equi condition) cost nothing for the pairs they drop.
    pub fn join_flat_map<W, I, L>(
        &self,
        other: &Table<'scope, K, W>,
        logic: L,
    ) -> Collection<'scope, I::Item>
    where
        W: Data,
        I: IntoIterator<Item: Data>,
        L: FnMut(&K, &V, &W) -> I + 'static,
    {
        self.arranged
            .clone()
            .join_core(other.arranged.clone(), logic)
    }

    /// A reduction per key: `logic` sees a key's values in order, with their
    /// (positive) multiplicities, and pushes the key's output values with
    /// theirs. Maintained incrementally: only keys whose input changed are
    /// recomputed. The result is itself a table (arranged by the same key).
    pub fn reduce<V2, L>(&self, name: &str, mut logic: L) -> Table<'scope, K, V2>
    where
        V2: Data,
        L: FnMut(&K, &[(&V, Diff)], &mut Vec<(V2, Diff)>) + 'static,
    {
        let arranged = self
            .arranged
            .clone()
            .reduce_abelian::<_, ValBuilder<K, V2, EventTime, Diff>, Spine<K, V2>, _, _>(
                name,
                move |k: &K, input: &[(&V, Diff)], output: &mut Vec<(V2, Diff)>| {
                    logic(k, input, output)
                },
                |buffer, key: &K, updates: &mut Vec<(V2, EventTime, Diff)>| {
                    buffer.clear();
                    buffer.extend(updates.drain(..).map(|(v, t, r)| ((key.clone(), v), t, r)));
                },
            );
        Table { arranged }
    }

    /// A reader of this table's contents from outside the dataflow (see
    /// [`TableReader`]). The reader follows the table's frontier: it never
    /// holds compaction back unless asked to with [`TableReader::hold`].
    pub fn reader(&self) -> TableReader<K, V> {
        let scope = self.arranged.stream.scope();
        let reader = TableReader {
            trace: Rc::new(RefCell::new(self.arranged.trace.clone())),
            frontier: Rc::new(Cell::new(Some(0))),
            held: Rc::new(Cell::new(None)),
            index: scope.index(),
            peers: scope.peers(),
        };
        let (trace, frontier, held) = (
            Rc::clone(&reader.trace),
            Rc::clone(&reader.frontier),
            Rc::clone(&reader.held),
        );
        self.arranged
            .stream
            .clone()
            .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Pipeline,
                "TableReader",
                move |_, _| {
                    move |(input, input_frontier), _output| {
                        input.for_each(|_, _| {});
                        let now = input_frontier.frontier().first().copied();
                        if now == frontier.get() {
                            return;
                        }
                        frontier.set(now);
                        let mut trace = trace.borrow_mut();
                        let upto = match (now, held.get()) {
                            (Some(f), Some(h)) => Some(f.min(h)),
                            (f, h) => f.or(h),
                        };
                        let compaction = upto.map_or_else(Antichain::new, Antichain::from_elem);
                        trace.set_logical_compaction(compaction.borrow());
                        trace.set_physical_compaction(compaction.borrow());
                    }
                },
            );
        reader
    }
}

/// Why a frontier-consistent read could not be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The table has not yet received every update below `at`.
    #[error("the table is complete only below {frontier:?}, not yet below {at}")]
    Incomplete {
        /// The time asked for.
        at: EventTime,
        /// The table's frontier (`None`: complete for all time).
        frontier: Option<EventTime>,
    },
    /// Updates below `at` have already been merged past it.
    #[error("the table is compacted up to {compacted}, past {at}: hold it first")]
    Compacted {
        /// The time asked for.
        at: EventTime,
        /// The compaction frontier.
        compacted: EventTime,
    },
}

/// Reads a [`Table`]'s contents on the worker that holds them, between
/// steps of the worker: point look-ups by key and frontier-consistent
/// reads of the whole table as of a time.
///
/// Each worker holds the keys differential routes to it; [`TableReader::owns`]
/// says which. A read sees every update below the reader's frontier; a
/// read *as of* `C` sees exactly the updates with time `< C`, which needs
/// compaction held at or below `C` before the frontier passes it
/// ([`TableReader::hold`]).
pub struct TableReader<K: Data, V: Data> {
    trace: Rc<RefCell<TraceAgent<Spine<K, V>>>>,
    frontier: Rc<Cell<Option<EventTime>>>,
    held: Rc<Cell<Option<EventTime>>>,
    index: usize,
    peers: usize,
}

impl<K: Data, V: Data> TableReader<K, V> {
    /// The table's frontier: every update below it is readable (`None`
    /// once the input has ended).
    pub fn frontier(&self) -> Option<EventTime> {
        self.frontier.get()
    }

    /// Whether this worker holds `key`'s rows.
    pub fn owns(&self, key: &K) -> bool {
        key.hashed() % self.peers as u64 == self.index as u64
    }

    /// Keeps updates distinguishable at times `>= at` until
    /// [`TableReader::release`], so that reads as of `at` stay possible.
    /// Call it before the frontier passes `at`.
    pub fn hold(&self, at: EventTime) {
        self.held.set(Some(at));
    }

    /// Lets compaction follow the frontier again.
    pub fn release(&self) {
        self.held.set(None);
    }

    /// `key`'s values and multiplicities now (as of the frontier).
    pub fn get(&self, key: &K) -> Vec<(V, Diff)> {
        self.read(None, Some(key))
            .into_iter()
            .map(|(_, v, r)| (v, r))
            .collect()
    }

    /// Every row this worker holds now (as of the frontier).
    pub fn contents(&self) -> Vec<(K, V, Diff)> {
        self.read(None, None)
    }

    /// Every row this worker holds as of `at`: the updates with time
    /// `< at`, none later.
    pub fn contents_at(&self, at: EventTime) -> Result<Vec<(K, V, Diff)>, ReadError> {
        if let Some(frontier) = self.frontier.get().filter(|f| *f < at) {
            return Err(ReadError::Incomplete {
                at,
                frontier: Some(frontier),
            });
        }
        let compacted = self
            .trace
            .borrow_mut()
            .get_logical_compaction()
            .first()
            .copied();
        if let Some(compacted) = compacted.filter(|c| *c > at) {
            return Err(ReadError::Compacted { at, compacted });
        }
        Ok(self.read(Some(at), None))
    }

    fn read(&self, before: Option<EventTime>, key: Option<&K>) -> Vec<(K, V, Diff)> {
        let mut trace = self.trace.borrow_mut();
        let batches = trace
            .batches_through(Antichain::new().borrow())
            .expect("a trace reads through the empty frontier");
        let (mut cursor, storage) = cursor_list(batches);
        let mut out = Vec::new();
        if let Some(key) = key {
            cursor.seek_key(&storage, key);
        }
        while let Some(k) = cursor.get_key(&storage) {
            if key.is_some_and(|key| key != k) {
                break;
            }
            while let Some(v) = cursor.get_val(&storage) {
                let mut sum: Diff = 0;
                cursor.map_times(&storage, |t, r| {
                    if before.is_none_or(|b| *t < b) {
                        sum += *r;
                    }
                });
                if sum != 0 {
                    out.push((k.clone(), v.clone(), sum));
                }
                cursor.step_val(&storage);
            }
            cursor.step_key(&storage);
        }
        out
    }
}
