//! The continuous-query layer against brute-force oracles: random inserts
//! and retractions at random event times, on 1, 2 and 4 workers. At every
//! time, the view given by a query's changelog (its changes up to that
//! time) must equal the query recomputed from the whole input history up
//! to that time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use differential_dataflow::AsCollection;
use proptest::prelude::*;
use tidewater_operators::relational::changelog::ToKeyedChangelog;
use tidewater_operators::relational::{
    Collection, GroupBy, Joins, Table, Temporal, ToChangelog, TopN, UpsertStream,
};
use tidewater_operators::{EventStream, EventTime, TumblingWindows, Window};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;

type Row = (u8, u8);
type Update<D> = (D, EventTime, isize);
type Handle<D> = InputHandle<EventTime, CapacityContainerBuilder<Vec<Update<D>>>>;
type View<O> = BTreeMap<O, isize>;

/// Builds valid histories: each op inserts a row or retracts a live one,
/// at a non-decreasing time.
fn history(ops: &[(u8, u8, u8, bool)], keys: u8) -> Vec<Update<Row>> {
    let mut live: Vec<Row> = Vec::new();
    let mut time = 1;
    let mut out = Vec::new();
    for &(k, v, dt, retract) in ops {
        time += u64::from(dt % 4);
        if retract && !live.is_empty() {
            let row = live.swap_remove(usize::from(v) % live.len());
            out.push((row, time, -1));
        } else {
            let row = (k % keys, v % 6);
            live.push(row);
            out.push((row, time, 1));
        }
    }
    out
}

fn ops() -> impl Strategy<Value = Vec<(u8, u8, u8, bool)>> {
    prop::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::bool::weighted(0.3),
        ),
        1..60,
    )
}

/// The input's contents as of `t` (updates at or before `t`).
fn contents<D: Ord + Clone>(updates: &[Update<D>], t: EventTime) -> View<D> {
    let mut view = BTreeMap::new();
    for (d, time, r) in updates {
        if *time <= t {
            *view.entry(d.clone()).or_insert(0) += r;
        }
    }
    view.retain(|_, r| *r != 0);
    view
}

/// Runs `query` over `inputs` (each input's updates spread over the
/// workers) and returns its changelog.
fn run<D, O, Q>(inputs: Vec<Vec<Update<D>>>, workers: usize, query: Q) -> Vec<(O, EventTime, i64)>
where
    D: timely::ExchangeData + Clone + Sync,
    O: timely::ExchangeData + Clone,
    Q: for<'s> Fn(Vec<Collection<'s, D>>) -> EventStream<'s, (O, i64)> + Send + Sync + 'static,
{
    let results = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&results);
    timely::execute(timely::Config::process(workers), move |worker| {
        let sink = Arc::clone(&sink);
        let (index, peers) = (worker.index(), worker.peers());
        let mut handles: Vec<Handle<D>> = inputs.iter().map(|_| Handle::new()).collect();
        worker.dataflow(|scope| {
            let collections = handles
                .iter_mut()
                .map(|h| scope.input_from(h).as_collection())
                .collect();
            query(collections)
                .inspect(move |((o, r), t)| sink.lock().unwrap().push((o.clone(), *t, *r)));
        });
        let times: BTreeSet<EventTime> = inputs.iter().flatten().map(|u| u.1).collect();
        for time in times {
            for (input, handle) in inputs.iter().zip(handles.iter_mut()) {
                handle.advance_to(time);
                for (i, u) in input.iter().enumerate().filter(|(_, u)| u.1 == time) {
                    if i % peers == index {
                        handle.send(u.clone());
                    }
                }
            }
            worker.step();
        }
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let out = std::mem::take(&mut *results.lock().unwrap());
    out
}

/// Checks a changelog against `oracle` at every time up to `horizon`, and
/// that each time's changes are consolidated.
fn check_changelog<O: Ord + Clone + Debug>(
    changes: &[(O, EventTime, i64)],
    horizon: EventTime,
    oracle: impl Fn(EventTime) -> View<O>,
) -> Result<(), TestCaseError> {
    let mut per_time: BTreeMap<(EventTime, O), usize> = BTreeMap::new();
    for (o, t, r) in changes {
        prop_assert!(*r != 0, "a zero change");
        *per_time.entry((*t, o.clone())).or_default() += 1;
    }
    prop_assert!(
        per_time.values().all(|n| *n == 1),
        "a row changed twice at one time"
    );
    for t in 0..=horizon {
        let view = contents(
            &changes
                .iter()
                .map(|(o, t, r)| (o.clone(), *t, *r as isize))
                .collect::<Vec<_>>(),
            t,
        );
        prop_assert_eq!(view, oracle(t), "at time {}", t);
    }
    Ok(())
}

fn horizon(updates: &[Update<Row>]) -> EventTime {
    updates.iter().map(|u| u.1).max().unwrap_or(0) + 12
}

/// Groups a view's rows by key.
fn by_key(view: &View<Row>) -> BTreeMap<u8, Vec<(u8, isize)>> {
    let mut keys: BTreeMap<u8, Vec<(u8, isize)>> = BTreeMap::new();
    for ((k, v), r) in view {
        keys.entry(*k).or_default().push((*v, *r));
    }
    keys
}

fn per_key<O: Ord>(
    updates: &[Update<Row>],
    t: EventTime,
    f: impl Fn(&[(u8, isize)]) -> O,
) -> View<(u8, O)> {
    by_key(&contents(updates, t))
        .into_iter()
        .map(|(k, vals)| ((k, f(&vals)), 1))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn group_by_aggregates(ops in ops()) {
        let updates = history(&ops, 4);
        let h = horizon(&updates);
        for workers in [1, 2, 4] {
            let count = run(vec![updates.clone()], workers, |c| c[0].clone().count_by_key().changes());
            check_changelog(&count, h, |t| per_key(&updates, t, |v| v.iter().map(|x| x.1 as i64).sum::<i64>()))?;
            let sum = run(vec![updates.clone()], workers, |c| c[0].clone().sum_by_key(|v| i64::from(*v) - 2).changes());
            check_changelog(&sum, h, |t| per_key(&updates, t, |v| v.iter().map(|(x, r)| (i64::from(*x) - 2) * *r as i64).sum::<i64>()))?;
            let avg = run(vec![updates.clone()], workers, |c| c[0].clone().avg_by_key(|v| i64::from(*v)).changes());
            check_changelog(&avg, h, |t| per_key(&updates, t, |v| {
                let sum = v.iter().map(|(x, r)| i64::from(*x) * *r as i64).sum::<i64>();
                let count = v.iter().map(|x| x.1 as i64).sum::<i64>();
                tidewater_operators::relational::Avg { sum, count }
            }))?;
            let min = run(vec![updates.clone()], workers, |c| c[0].clone().min_by_key().changes());
            check_changelog(&min, h, |t| contents_min_max(&updates, t, false))?;
            let max = run(vec![updates.clone()], workers, |c| c[0].clone().max_by_key().changes());
            check_changelog(&max, h, |t| contents_min_max(&updates, t, true))?;
            let distinct = run(vec![updates.clone()], workers, |c| c[0].clone().count_distinct_by_key().changes());
            check_changelog(&distinct, h, |t| per_key(&updates, t, |v| v.len() as i64))?;
        }
    }

    #[test]
    fn joins(left in ops(), right in ops()) {
        let (left, right) = (history(&left, 5), history(&right, 5));
        let h = horizon(&left).max(horizon(&right));
        for workers in [1, 2, 4] {
            let inner = run(vec![left.clone(), right.clone()], workers, |c| c[0].clone().inner_join(c[1].clone()).changes());
            check_changelog(&inner, h, |t| join_oracle(&left, &right, t, false).into_iter()
                .filter_map(|((k, (v, w)), r)| w.map(|w| ((k, (v, w)), r))).collect())?;
            let outer = run(vec![left.clone(), right.clone()], workers, |c| c[0].clone().left_join(c[1].clone()).changes());
            check_changelog(&outer, h, |t| join_oracle(&left, &right, t, true))?;
        }
    }

    #[test]
    fn top_n_and_deduplication(ops in ops(), n in 1usize..4) {
        let updates = history(&ops, 3);
        let h = horizon(&updates);
        for workers in [1, 2, 4] {
            let top = run(vec![updates.clone()], workers, move |c| c[0].clone().top_n_by(n, |v| Reverse(*v)).changes());
            check_changelog(&top, h, |t| top_oracle(&updates, t, n, true))?;
            let first = run(vec![updates.clone()], workers, |c| c[0].clone().keep_first_by(|v| *v).changes());
            check_changelog(&first, h, |t| top_oracle(&updates, t, 1, false))?;
            let last = run(vec![updates.clone()], workers, |c| c[0].clone().keep_last_by(|v| *v).changes());
            check_changelog(&last, h, |t| top_oracle(&updates, t, 1, true))?;
        }
    }

    #[test]
    fn windowed_counts_and_retention(ops in ops(), size in 2u64..8) {
        let updates = history(&ops, 3);
        let h = horizon(&updates);
        for workers in [1, 2, 4] {
            let counts = run(vec![updates.clone()], workers, move |c| {
                c[0].clone()
                    .windowed(TumblingWindows::of_millis(size))
                    .map(|(w, (k, _))| ((w, k), ()))
                    .count_by_key()
                    .changes()
            });
            check_changelog(&counts, h, |t| {
                // Rows of the window containing t that arrived by t.
                let window = Window { start: t / size * size, end: t / size * size + size };
                let mut view = BTreeMap::new();
                for ((k, _), time, r) in &updates {
                    if *time <= t && *time >= window.start {
                        *view.entry((window, *k)).or_insert(0i64) += *r as i64;
                    }
                }
                view.into_iter().filter(|(_, n)| *n != 0).map(|(wk, n)| ((wk, n), 1)).collect()
            })?;
            let recent = run(vec![updates.clone()], workers, move |c| c[0].clone().retained_for(size).changes());
            check_changelog(&recent, h, |t| contents(
                &updates.iter().filter(|u| u.1 + size > t).cloned().collect::<Vec<_>>(), t))?;
        }
    }

    #[test]
    fn upsert_table_and_changelogs(ops in prop::collection::vec((0u8..4, prop::option::weighted(0.75, 0u8..5), 0u8..3), 1..50)) {
        let mut time = 1;
        let upserts: Vec<((u8, Option<u8>), EventTime)> = ops.iter().map(|&(k, v, dt)| {
            time += u64::from(dt);
            ((k, v), time)
        }).collect();
        let h = time + 2;
        // Each key's latest upsert at or before t; ties: the greater value.
        let oracle = |t: EventTime| -> BTreeMap<u8, u8> {
            let mut latest: BTreeMap<u8, (EventTime, Option<u8>)> = BTreeMap::new();
            for ((k, v), time) in &upserts {
                if *time <= t {
                    let e = latest.entry(*k).or_insert((*time, *v));
                    if (*time, *v) > *e { *e = (*time, *v); }
                }
            }
            latest.into_iter().filter_map(|(k, (_, v))| v.map(|v| (k, v))).collect()
        };
        for workers in [1, 2, 4] {
            let as_updates: Vec<Update<(u8, Option<u8>)>> = upserts.iter().map(|(kv, t)| (*kv, *t, 1)).collect();
            let changes = run(vec![as_updates.clone()], workers, |c| {
                let stream = timely::dataflow::operators::vec::Map::map(c[0].clone().inner, |(d, t, _)| (d, t));
                stream.upsert_table().to_collection().changes_by_key().map_changes()
            });
            check_changelog(&changes, h, |t| oracle(t).into_iter().map(|kv| (kv, 1)).collect())?;
            // The table's upsert changelog reproduces each key's latest value.
            let out = run(vec![as_updates], workers, |c| {
                let stream = timely::dataflow::operators::vec::Map::map(c[0].clone().inner, |(d, t, _)| (d, t));
                let upserts = stream.upsert_table().to_collection().upserts();
                timely::dataflow::operators::vec::Map::map(upserts, |(kv, t)| ((kv, 1), t))
            });
            for t in 0..=h {
                let mut latest: BTreeMap<u8, (EventTime, Option<u8>)> = BTreeMap::new();
                for ((k, v), time, _) in &out {
                    if *time <= t && latest.get(k).is_none_or(|e| e.0 < *time) {
                        latest.insert(*k, (*time, *v));
                    }
                }
                let view: BTreeMap<u8, u8> = latest.into_iter().filter_map(|(k, (_, v))| v.map(|v| (k, v))).collect();
                prop_assert_eq!(view, oracle(t), "upserts at {}", t);
            }
        }
    }
}

/// `(key, value, diff)` changes as `((key, value), diff)` changes.
trait MapChanges<'s> {
    fn map_changes(self) -> EventStream<'s, ((u8, u8), i64)>;
}

impl<'s> MapChanges<'s> for EventStream<'s, (u8, u8, i64)> {
    fn map_changes(self) -> EventStream<'s, ((u8, u8), i64)> {
        timely::dataflow::operators::vec::Map::map(self, |((k, v, r), t)| (((k, v), r), t))
    }
}

fn contents_min_max(updates: &[Update<Row>], t: EventTime, max: bool) -> View<Row> {
    by_key(&contents(updates, t))
        .into_iter()
        .map(|(k, vals)| {
            let v = if max { vals.last() } else { vals.first() };
            ((k, v.unwrap().0), 1)
        })
        .collect()
}

fn top_oracle(updates: &[Update<Row>], t: EventTime, n: usize, highest: bool) -> View<Row> {
    let mut view = BTreeMap::new();
    for (k, vals) in by_key(&contents(updates, t)) {
        let mut all: Vec<u8> = vals
            .iter()
            .flat_map(|(v, r)| std::iter::repeat_n(*v, *r as usize))
            .collect();
        all.sort();
        if highest {
            all.reverse();
        }
        for v in all.into_iter().take(n) {
            *view.entry((k, v)).or_insert(0) += 1;
        }
    }
    view
}

fn join_oracle(
    left: &[Update<Row>],
    right: &[Update<Row>],
    t: EventTime,
    outer: bool,
) -> View<(u8, (u8, Option<u8>))> {
    let (l, r) = (contents(left, t), contents(right, t));
    let mut view = BTreeMap::new();
    for ((k, v), a) in &l {
        let matches: Vec<_> = r.iter().filter(|((k2, _), _)| k2 == k).collect();
        if matches.is_empty() && outer {
            *view.entry((*k, (*v, None))).or_insert(0) += a;
        }
        for ((_, w), b) in matches {
            *view.entry((*k, (*v, Some(*w)))).or_insert(0) += a * b;
        }
    }
    view.retain(|_, r| *r != 0);
    view
}

/// A reader sees the table as of any time it held, and each key's rows on
/// the worker that owns it.
#[test]
fn table_reader_reads_as_of_a_held_time() {
    let updates = history(
        &(0..200u32)
            .map(|i| ((i * 7) as u8, (i * 13) as u8, (i % 3) as u8, i % 4 == 3))
            .collect::<Vec<_>>(),
        6,
    );
    let hold_at = updates[updates.len() / 2].1;
    for workers in [1, 2, 4] {
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new(), Vec::new())));
        let (input, sink) = (updates.clone(), Arc::clone(&seen));
        timely::execute(timely::Config::process(workers), move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let mut handle: Handle<Row> = Handle::new();
            let reader = worker.dataflow(|scope| {
                let table = Table::new(scope.input_from(&mut handle).as_collection());
                table.reader()
            });
            reader.hold(hold_at);
            let times: BTreeSet<EventTime> = input.iter().map(|u| u.1).collect();
            for time in times {
                handle.advance_to(time);
                for (i, u) in input.iter().enumerate().filter(|(_, u)| u.1 == time) {
                    if i % peers == index {
                        handle.send(*u);
                    }
                }
                worker.step();
            }
            handle.close();
            while worker.step_or_park(None) {}
            let mut out = sink.lock().unwrap();
            out.0.extend(reader.contents_at(hold_at).expect("held"));
            out.1.extend(reader.contents());
            for key in 0..6u8 {
                if reader.owns(&key) {
                    out.2
                        .extend(reader.get(&key).into_iter().map(|(v, r)| (key, v, r)));
                }
            }
        })
        .unwrap()
        .join()
        .into_iter()
        .for_each(|r| r.unwrap());
        let (at, now, looked_up) = std::mem::take(&mut *seen.lock().unwrap());
        let as_view = |rows: Vec<(u8, u8, isize)>| -> View<Row> {
            let mut view = BTreeMap::new();
            for (k, v, r) in rows {
                *view.entry((k, v)).or_insert(0) += r;
            }
            view
        };
        assert_eq!(
            as_view(at),
            contents(&updates, hold_at - 1),
            "as of {hold_at}, {workers} workers"
        );
        assert_eq!(
            as_view(now),
            contents(&updates, EventTime::MAX),
            "{workers} workers"
        );
        assert_eq!(
            as_view(looked_up),
            contents(&updates, EventTime::MAX),
            "look-ups, {workers} workers"
        );
    }
}
