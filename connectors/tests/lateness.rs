//! Lateness through a real file source: out-of-order rows in a file, within
//! and beyond the watermark bound, under each late policy, on 1 and 3
//! workers, against a model of per-partition bounded out-of-orderness.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use tidewater_connectors::{FileSource, SourceConfig};
use tidewater_operators::{Context, LatePolicy, WatermarkStrategy};
use timely::dataflow::operators::Inspect;

const PARTITIONS: usize = 4;
const BOUND: u64 = 50;

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    /// (id, event time) on the main output
    on_time: Vec<(u64, u64)>,
    /// (id, event time) on the late output
    late: Vec<(u64, u64)>,
}

/// Line n (1-based) is in partition (n - 1) % PARTITIONS; a record is late if
/// it is below (max earlier time in its partition) - BOUND.
fn model(times: &[u64], policy: LatePolicy) -> Outcome {
    let mut max: HashMap<usize, u64> = HashMap::new();
    let mut out = Outcome::default();
    for (i, &t) in times.iter().enumerate() {
        let p = i % PARTITIONS;
        let wm = max.get(&p).map_or(0, |m| m.saturating_sub(BOUND));
        if t >= wm {
            max.insert(p, max.get(&p).map_or(t, |m| (*m).max(t)));
            out.on_time.push((i as u64, t));
        } else {
            match policy {
                LatePolicy::Drop => {}
                LatePolicy::SideOutput => out.late.push((i as u64, t)),
                LatePolicy::Retime => out.on_time.push((i as u64, wm)),
            }
        }
    }
    out.on_time.sort();
    out.late.sort();
    out
}

fn run(path: &std::path::Path, workers: usize, policy: LatePolicy) -> Outcome {
    let on_time = Arc::new(Mutex::new(Vec::new()));
    let late = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (Arc::clone(&on_time), Arc::clone(&late));
    let path = path.to_owned();
    timely::execute(timely::Config::process(workers), move |worker| {
        let ctx = Context::default();
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        let config = SourceConfig {
            watermarks: WatermarkStrategy {
                bound_ms: BOUND,
                idle_timeout: None,
                late_policy: policy,
            },
            batch: 7, // many small batches: the watermark moves between them
            ..SourceConfig::default()
        };
        worker.dataflow(|scope| {
            let streams = FileSource::new([&path])
                .partitions_per_file(PARTITIONS)
                .build::<(u64, u64), _>(scope, &ctx, config, |r| r.1)
                .unwrap();
            streams.records.inspect_core(move |event| {
                let Ok((stamp, data)) = event else { return };
                let cap = stamp.least().expect("a message under a capability");
                for ((id, orig), t) in data {
                    // The message's time is at or below every record's time.
                    assert!(*cap <= *t, "record at {t} sent at {cap}");
                    assert!(*t >= *orig || policy == LatePolicy::Retime);
                    a.lock().unwrap().push((*id, *t));
                }
            });
            streams
                .late
                .inspect(move |((id, _), t)| b.lock().unwrap().push((*id, *t)));
        });
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut out = Outcome {
        on_time: std::mem::take(&mut *on_time.lock().unwrap()),
        late: std::mem::take(&mut *late.lock().unwrap()),
    };
    out.on_time.sort();
    out.late.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn late_records_follow_the_policy(
        jitters in prop::collection::vec((0u64..20, 0u64..120), 1..200),
        policy in prop_oneof![Just(LatePolicy::Drop), Just(LatePolicy::SideOutput), Just(LatePolicy::Retime)],
    ) {
        let mut clock = 10_000u64;
        let times: Vec<u64> = jitters
            .iter()
            .map(|&(step, back)| { clock += step; clock - back })
            .collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for (id, t) in times.iter().enumerate() {
            writeln!(file, "{id},{t}").unwrap();
        }
        file.flush().unwrap();
        let want = model(&times, policy);
        prop_assert_eq!(run(file.path(), 1, policy), want);
        let want = model(&times, policy);
        prop_assert_eq!(run(file.path(), 3, policy), want);
    }
}
