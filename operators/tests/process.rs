//! Keyed process functions: state TTL, side outputs and processing-time
//! timers, on 1 and 3 workers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidewater_operators::{KeyBy, ProcessContext, ProcessFunction};
use timely::dataflow::operators::{Inspect, ToStream};

/// (key, time)
type Rec = (u32, u64);

/// Counts each key's records; emits the count; sends every third record of
/// a key to the side output; asks for a processing-time timer on the first.
struct Counter;

impl ProcessFunction<u32, Rec> for Counter {
    type State = (u64, bool);
    type Out = (u32, u64, u64);
    type Side = (u32, u64);
    fn process(
        &mut self,
        r: Rec,
        state: &mut (u64, bool),
        ctx: &mut ProcessContext<'_, u32, Self::Out, Self::Side>,
    ) {
        state.0 += 1;
        ctx.emit((r.0, r.1, state.0));
        if state.0.is_multiple_of(3) {
            ctx.side(r);
        }
        if !state.1 {
            state.1 = true;
            ctx.register_processing_timer(Duration::from_millis(1));
        }
    }
    fn on_processing_timer(
        &mut self,
        _state: &mut (u64, bool),
        ctx: &mut ProcessContext<'_, u32, Self::Out, Self::Side>,
    ) {
        let key = *ctx.key();
        ctx.side((key, u64::MAX));
    }
}

type Outputs = (Vec<((u32, u64, u64), u64)>, Vec<((u32, u64), u64)>);

fn run(records: Vec<(Rec, u64)>, ttl: Option<u64>, workers: usize) -> Outputs {
    let main = Arc::new(Mutex::new(Vec::new()));
    let side = Arc::new(Mutex::new(Vec::new()));
    let (m, s) = (Arc::clone(&main), Arc::clone(&side));
    timely::execute(timely::Config::process(workers), move |worker| {
        let (m, s) = (Arc::clone(&m), Arc::clone(&s));
        let records = if worker.index() == 0 {
            records.clone()
        } else {
            Vec::new()
        };
        worker.dataflow(|scope| {
            let out = records
                .to_stream(scope)
                .key_by(|r: &Rec| r.0)
                .process(ttl, Counter);
            out.output.inspect(move |x| m.lock().unwrap().push(*x));
            out.side.inspect(move |x| s.lock().unwrap().push(*x));
        });
        // keep stepping a little so the 1 ms processing timers can come due
        let until = std::time::Instant::now() + Duration::from_millis(20);
        while std::time::Instant::now() < until {
            worker.step();
        }
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut main = std::mem::take(&mut *main.lock().unwrap());
    let mut side = std::mem::take(&mut *side.lock().unwrap());
    main.sort();
    side.sort();
    (main, side)
}

#[test]
fn state_ttl_side_output_and_processing_timers() {
    // key 1 at 0, 100, 200 then silent until 5_000; key 2 steadily every 1 000
    let mut records: Vec<(Rec, u64)> = vec![
        ((1, 0), 0),
        ((1, 100), 100),
        ((1, 200), 200),
        ((1, 5_000), 5_000),
    ];
    records.extend((0..6).map(|i| ((2, i * 1_000), i * 1_000)));
    for workers in [1, 3] {
        // Without a TTL the counts run on.
        let (main, _) = run(records.clone(), None, workers);
        assert!(main.contains(&((1, 5_000, 4), 5_000)), "{main:?}");
        // With a 2 s TTL key 1's state expires before 5 000 (last seen at 200);
        // key 2 is never idle that long.
        let (main, side) = run(records.clone(), Some(2_000), workers);
        assert!(main.contains(&((1, 5_000, 1), 5_000)), "{main:?}");
        assert!(main.contains(&((2, 5_000, 6), 5_000)), "{main:?}");
        // Every third record of a key went to the side output, at its time.
        assert!(side.contains(&((1, 200), 200)), "{side:?}");
        assert!(
            side.contains(&((2, 2_000), 2_000)) && side.contains(&((2, 5_000), 5_000)),
            "{side:?}"
        );
    }
}

#[test]
fn processing_timers_fire_while_the_input_is_open() {
    use timely::dataflow::operators::Input;
    let side = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&side);
    timely::execute(timely::Config::process(2), move |worker| {
        let s = Arc::clone(&s);
        let mut input = timely::dataflow::InputHandle::<
            u64,
            timely::container::CapacityContainerBuilder<Vec<(Rec, u64)>>,
        >::new();
        worker.dataflow(|scope| {
            let out = scope
                .input_from(&mut input)
                .key_by(|r: &Rec| r.0)
                .process(None, Counter);
            out.side.inspect(move |x| s.lock().unwrap().push(*x));
        });
        if worker.index() == 0 {
            input.send(((1, 10), 10));
            input.send(((2, 10), 10));
            input.send(((2, 20), 20));
        }
        input.advance_to(30);
        // The input stays open: only the wall clock can fire the timers.
        let until = std::time::Instant::now() + Duration::from_millis(200);
        while std::time::Instant::now() < until {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut fired: Vec<u32> = side
        .lock()
        .unwrap()
        .iter()
        .filter(|((_, t), _)| *t == u64::MAX)
        .map(|((k, _), _)| *k)
        .collect();
    fired.sort();
    assert_eq!(fired, vec![1, 2], "one processing timer per key");
}
