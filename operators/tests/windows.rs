//! Window operators against a brute-force oracle: random keys, times,
//! out-of-orderness within and beyond the watermark bound (late records are
//! re-timed to the watermark, as the source's `retime` policy does), window
//! parameters, allowed lateness, count triggers, pre-aggregation before the
//! exchange, and 1, 2 and 4 workers.
//! The consolidated updates must equal the oracle's results exactly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use tidewater_operators::{
    AggregateFn, Count, KeyBy, SessionWindows, SlidingWindows, TumblingWindows, Window,
    WindowOutput,
};
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;

/// (key, event time, value)
type Rec = (u32, u64, u64);

#[derive(Clone, Copy, Debug)]
enum Spec {
    Tumbling(u64),
    Sliding(u64, u64),
    Session(u64),
}

#[derive(Clone, Copy, Debug)]
enum Agg {
    Count,
    Sum,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    spec: Spec,
    agg: Agg,
    lateness: u64,
    count_trigger: Option<u64>,
    /// Early firing every 1 ms of processing time.
    every: bool,
    /// Fold records into partials before the exchange.
    pre_aggregate: bool,
}

type Results = BTreeMap<(Window, u32, u64), i64>;

/// Arrival order with stream times: a record below the watermark
/// (max seen - bound) travels at the watermark.
fn stream_times(records: &[Rec], bound: u64) -> Vec<(Rec, u64)> {
    let mut max = 0u64;
    records
        .iter()
        .map(|&r| {
            let wm = max.saturating_sub(bound);
            max = max.max(r.1);
            (r, r.1.max(wm))
        })
        .collect()
}

fn oracle(case: Case, arrivals: &[(Rec, u64)]) -> (Results, Vec<Rec>) {
    let mut groups: BTreeMap<(Window, u32), Vec<u64>> = BTreeMap::new();
    let mut late = Vec::new();
    match case.spec {
        Spec::Tumbling(_) | Spec::Sliding(..) => {
            let (size, slide) = match case.spec {
                Spec::Tumbling(size) => (size, size),
                Spec::Sliding(size, slide) => (size, slide),
                Spec::Session(_) => unreachable!(),
            };
            for &((k, t, v), s) in arrivals {
                let mut placed = false;
                // every window [start, start + size) with start = n * slide
                // (n may be negative; starts clamp at 0) holding t
                let mut n = (t / slide) as i64;
                while n * slide as i64 + size as i64 > t as i64 {
                    let start = (n * slide as i64).max(0) as u64;
                    let end = (n * slide as i64 + size as i64) as u64;
                    if end + case.lateness > s {
                        placed = true;
                        groups
                            .entry((Window { start, end }, k))
                            .or_default()
                            .push(v);
                    }
                    n -= 1;
                }
                if !placed {
                    late.push((k, t, v));
                }
            }
        }
        Spec::Session(gap) => {
            // no late records in session cases: sessions per key from sorted times
            let mut by_key: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
            for &((k, t, v), _) in arrivals {
                by_key.entry(k).or_default().push((t, v));
            }
            for (k, mut items) in by_key {
                items.sort();
                let mut current: Option<(u64, u64, Vec<u64>)> = None;
                for (t, v) in items {
                    match &mut current {
                        Some((_, last, values)) if t < *last + gap => {
                            *last = t;
                            values.push(v);
                        }
                        _ => {
                            if let Some((first, last, values)) = current.take() {
                                groups.insert(
                                    (
                                        Window {
                                            start: first,
                                            end: last + gap,
                                        },
                                        k,
                                    ),
                                    values,
                                );
                            }
                            current = Some((t, t, vec![v]));
                        }
                    }
                }
                if let Some((first, last, values)) = current {
                    groups.insert(
                        (
                            Window {
                                start: first,
                                end: last + gap,
                            },
                            k,
                        ),
                        values,
                    );
                }
            }
        }
    }
    let results = groups
        .into_iter()
        .map(|((w, k), values)| {
            let value = match case.agg {
                Agg::Count => values.len() as u64,
                Agg::Sum => values.iter().sum(),
            };
            ((w, k, value), 1)
        })
        .collect();
    late.sort();
    (results, late)
}

fn run(case: Case, arrivals: Vec<(Rec, u64)>, workers: usize) -> (Results, Vec<Rec>) {
    let updates = Arc::new(Mutex::new(Results::new()));
    let late = Arc::new(Mutex::new(Vec::new()));
    let (u2, l2) = (Arc::clone(&updates), Arc::clone(&late));
    timely::execute(timely::Config::process(workers), move |worker| {
        let (u, l) = (Arc::clone(&u2), Arc::clone(&l2));
        let mut input: InputHandle<
            u64,
            timely::container::CapacityContainerBuilder<Vec<(Rec, u64)>>,
        > = InputHandle::new();
        worker.dataflow(|scope| {
            let stream = scope.input_from(&mut input);
            let keyed = stream.key_by(|r: &Rec| r.0);
            let sum = AggregateFn::new(
                || 0u64,
                |acc: &mut u64, r: &Rec| *acc += r.2,
                |acc: &mut u64, o: u64| *acc += o,
            );
            macro_rules! windowed {
                ($assigner:expr) => {{
                    let mut w = keyed
                        .window($assigner)
                        .allowed_lateness(case.lateness)
                        .event_time(|r: &Rec| r.1);
                    if let Some(n) = case.count_trigger {
                        w = w.trigger_count(n);
                    }
                    if case.every {
                        w = w.trigger_every(std::time::Duration::from_millis(1));
                    }
                    if case.pre_aggregate {
                        w = w.pre_aggregate();
                    }
                    match case.agg {
                        Agg::Count => w.aggregate(Count),
                        Agg::Sum => w.aggregate(sum),
                    }
                }};
            }
            let WindowOutput { updates, late } = match case.spec {
                Spec::Tumbling(size) => windowed!(TumblingWindows::of_millis(size)),
                Spec::Sliding(size, slide) => windowed!(SlidingWindows::of_millis(size, slide)),
                Spec::Session(gap) => windowed!(SessionWindows::with_gap_millis(gap)),
            };
            updates.inspect(move |(update, time)| {
                assert!(*time >= update.window.max_timestamp().min(*time));
                *u.lock()
                    .unwrap()
                    .entry((update.window, update.key, update.value))
                    .or_default() += update.diff;
            });
            late.inspect(move |(r, _)| l.lock().unwrap().push(*r));
        });
        if worker.index() == 0 {
            for (i, &(record, stream_time)) in arrivals.iter().enumerate() {
                input.send((record, stream_time));
                // the watermark: every later record travels at or above it
                let wm = arrivals[i..].iter().map(|a| a.1).min().unwrap();
                if wm > *input.time() {
                    input.advance_to(wm);
                }
                if i % 5 == 0 {
                    worker.step();
                    if case.every {
                        // let the 1 ms early-firing timer come due now and then
                        std::thread::sleep(std::time::Duration::from_micros(300));
                    }
                }
            }
        }
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut results = std::mem::take(&mut *updates.lock().unwrap());
    assert!(
        results.values().all(|d| *d >= 0),
        "more retractions than insertions: {results:?}"
    );
    results.retain(|_, d| *d != 0);
    let mut late = std::mem::take(&mut *late.lock().unwrap());
    late.sort();
    (results, late)
}

fn records(n: usize, bound_jitter: u64) -> impl Strategy<Value = Vec<Rec>> {
    // Times on a 100 ms grid, so that records often fall exactly on window
    // ends and lateness boundaries.
    prop::collection::vec(
        (0u32..5, 0u64..4, 0u64..bound_jitter / 100, 1u64..100),
        1..n,
    )
    .prop_map(|steps| {
        let mut clock = 0u64;
        steps
            .into_iter()
            .map(|(k, advance, back, v)| {
                clock += advance * 100;
                (k, clock.saturating_sub(back * 100), v)
            })
            .collect()
    })
}

fn agg() -> impl Strategy<Value = Agg> {
    prop_oneof![Just(Agg::Count), Just(Agg::Sum)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn aligned_windows_match_the_oracle(
        records in records(120, 3_000),
        bound in (0u64..15).prop_map(|b| b * 100),
        sliding in any::<bool>(),
        size in 1u64..20,
        slide in 1u64..10,
        lateness in prop_oneof![Just(0u64), (0u64..30).prop_map(|l| l * 100)],
        count_trigger in prop::option::of(1u64..4),
        every in any::<bool>(),
        agg in agg(),
        pre_aggregate in any::<bool>(),
    ) {
        let spec = if sliding { Spec::Sliding(size * 200, slide * 200) } else { Spec::Tumbling(size * 200) };
        let case = Case { spec, agg, lateness, count_trigger, every, pre_aggregate };
        let arrivals = stream_times(&records, bound);
        let want = oracle(case, &arrivals);
        for workers in [1, 2, 4] {
            prop_assert_eq!(&run(case, arrivals.clone(), workers), &want, "{} workers", workers);
        }
    }

    #[test]
    fn session_windows_match_the_oracle(
        records in records(120, 1_000),
        gap in 1u64..2_000,
        count_trigger in prop::option::of(1u64..4),
        agg in agg(),
        pre_aggregate in any::<bool>(),
    ) {
        // (sessions ignore pre-aggregation: their results must not change)
        let case = Case { spec: Spec::Session(gap), agg, lateness: 0, count_trigger, every: false, pre_aggregate };
        // bound beyond the jitter: nothing is late
        let arrivals = stream_times(&records, 1_000);
        prop_assert!(arrivals.iter().all(|((_, t, _), s)| t == s));
        let want = oracle(case, &arrivals);
        for workers in [1, 2, 4] {
            prop_assert_eq!(&run(case, arrivals.clone(), workers), &want, "{} workers", workers);
        }
    }
}
