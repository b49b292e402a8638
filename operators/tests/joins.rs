//! Interval, window and temporal joins, and the keyed process function,
//! against brute-force oracles on random keys and out-of-order times, for
//! 1, 2 and 4 workers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use tidewater_operators::{
    IntervalJoin, KeyBy, ProcessContext, ProcessFunction, TemporalJoin, TumblingWindows, WindowJoin,
};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;

/// (key, event time, value)
type Rec = (u32, u64, u64);
type Handle = InputHandle<u64, CapacityContainerBuilder<Vec<(Rec, u64)>>>;

#[derive(Clone, Copy, Debug)]
enum Op {
    Interval(i64, i64),
    Window(u64),
    Temporal,
    /// A process function: per key, the running sum of values in time
    /// order, and a timer `delay` after each record that emits the sum.
    Process(u64),
}

/// Sends both inputs from worker 0, holding each input's time at the least
/// time still to come on it; returns the outputs as sorted `(value, time)`.
fn run(op: Op, left: &[Rec], right: &[Rec], workers: usize) -> Vec<(Vec<u64>, u64)> {
    let results = Arc::new(Mutex::new(Vec::new()));
    let (left, right, sink) = (left.to_vec(), right.to_vec(), Arc::clone(&results));
    timely::execute(timely::Config::process(workers), move |worker| {
        let sink = Arc::clone(&sink);
        let mut in1 = Handle::new();
        let mut in2 = Handle::new();
        worker.dataflow(|scope| {
            let a = scope.input_from(&mut in1).key_by(|r: &Rec| r.0);
            let b = scope.input_from(&mut in2).key_by(|r: &Rec| r.0);
            let out = match op {
                Op::Interval(lower, upper) => a.interval_join(b, lower, upper, |_, x, y| {
                    vec![x.0 as u64, x.1, x.2, y.1, y.2]
                }),
                Op::Window(size) => {
                    a.window_join(b, TumblingWindows::of_millis(size), |_, w, x, y| {
                        vec![w.end, x.0 as u64, x.1, x.2, y.1, y.2]
                    })
                }
                Op::Temporal => a.temporal_join(b, |k, x, y| {
                    vec![
                        *k as u64,
                        x.1,
                        x.2,
                        y.map_or(0, |y| y.1),
                        y.map_or(0, |y| y.2),
                    ]
                }),
                Op::Process(delay) => a.process(None, RunningSum(delay)).output,
            };
            out.inspect(move |(v, t)| sink.lock().unwrap().push((v.clone(), *t)));
        });
        if worker.index() == 0 {
            feed(worker, &mut in1, &left, &mut in2, &right);
        }
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut out = std::mem::take(&mut *results.lock().unwrap());
    out.sort();
    out
}

fn feed(
    worker: &mut timely::worker::Worker,
    in1: &mut Handle,
    left: &[Rec],
    in2: &mut Handle,
    right: &[Rec],
) {
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        // alternate irregularly between the inputs
        let take_left = j >= right.len() || (i < left.len() && (i + j) % 3 != 0);
        if take_left {
            in1.send((left[i], left[i].1));
            i += 1;
        } else {
            in2.send((right[j], right[j].1));
            j += 1;
        }
        if let Some(min) = left[i..].iter().map(|r| r.1).min() {
            if min > *in1.time() {
                in1.advance_to(min);
            }
        }
        if let Some(min) = right[j..].iter().map(|r| r.1).min() {
            if min > *in2.time() {
                in2.advance_to(min);
            }
        }
        if (i + j) % 4 == 0 {
            worker.step();
        }
    }
}

struct RunningSum(u64);

impl ProcessFunction<u32, Rec> for RunningSum {
    type State = u64;
    type Out = Vec<u64>;
    type Side = ();
    fn process(&mut self, r: Rec, sum: &mut u64, ctx: &mut ProcessContext<'_, u32, Vec<u64>, ()>) {
        *sum += r.2;
        ctx.emit(vec![0, r.0 as u64, *sum]);
        ctx.register_event_timer(r.1 + self.0);
    }
    fn on_timer(&mut self, sum: &mut u64, ctx: &mut ProcessContext<'_, u32, Vec<u64>, ()>) {
        let key = *ctx.key() as u64;
        ctx.emit(vec![1, key, *sum]);
    }
}

fn oracle(op: Op, left: &[Rec], right: &[Rec]) -> Vec<(Vec<u64>, u64)> {
    let mut out = Vec::new();
    match op {
        Op::Interval(lower, upper) => {
            for x in left {
                for y in right {
                    let d = y.1 as i64 - x.1 as i64;
                    if x.0 == y.0 && d >= lower && d <= upper {
                        out.push((vec![x.0 as u64, x.1, x.2, y.1, y.2], x.1.max(y.1)));
                    }
                }
            }
        }
        Op::Window(size) => {
            for x in left {
                for y in right {
                    if x.0 == y.0 && x.1 / size == y.1 / size {
                        let end = (x.1 / size + 1) * size;
                        out.push((vec![end, x.0 as u64, x.1, x.2, y.1, y.2], end - 1));
                    }
                }
            }
        }
        Op::Temporal => {
            for x in left {
                // greatest time <= probe time, then greatest record
                let version = right
                    .iter()
                    .filter(|y| y.0 == x.0 && y.1 <= x.1)
                    .max_by_key(|y| (y.1, y.2));
                out.push((
                    vec![
                        x.0 as u64,
                        x.1,
                        x.2,
                        version.map_or(0, |y| y.1),
                        version.map_or(0, |y| y.2),
                    ],
                    x.1,
                ));
            }
        }
        Op::Process(delay) => {
            // events per key in (time, record) order; timers after the records of their time
            let mut by_key: BTreeMap<u32, Vec<Rec>> = BTreeMap::new();
            for r in left {
                by_key.entry(r.0).or_default().push(*r);
            }
            for (k, mut recs) in by_key {
                recs.sort_by_key(|r| (r.1, *r));
                let mut timers: Vec<u64> = recs.iter().map(|r| r.1 + delay).collect();
                timers.sort();
                timers.dedup();
                let mut sum = 0;
                let (mut i, mut j) = (0, 0);
                while i < recs.len() || j < timers.len() {
                    if j >= timers.len() || (i < recs.len() && recs[i].1 <= timers[j]) {
                        sum += recs[i].2;
                        out.push((vec![0, k as u64, sum], recs[i].1));
                        i += 1;
                    } else {
                        out.push((vec![1, k as u64, sum], timers[j]));
                        j += 1;
                    }
                }
            }
        }
    }
    out.sort();
    out
}

fn records(max: usize) -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((0u32..4, 0u64..5, 0u64..6, 0u64..50), 0..max).prop_map(|steps| {
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

fn ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-10i64..10, 0i64..10).prop_map(|(l, w)| Op::Interval(l * 100, (l + w) * 100)),
        (1u64..10).prop_map(|s| Op::Window(s * 100)),
        Just(Op::Temporal),
        (0u64..10).prop_map(|d| Op::Process(d * 100)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn joins_and_process_functions_match_the_oracle(
        op in ops(),
        left in records(60),
        right in records(60),
    ) {
        let want = oracle(op, &left, &right);
        for workers in [1, 2, 4] {
            prop_assert_eq!(&run(op, &left, &right, workers), &want, "{:?} on {} workers", op, workers);
        }
    }
}
