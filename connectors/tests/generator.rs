//! The Nexmark source produces the same events for any number of workers.

use std::sync::{Arc, Mutex};

use tidewater_connectors::nexmark::NexmarkSource;
use tidewater_connectors::SourceConfig;
use tidewater_operators::Context;
use timely::dataflow::operators::Inspect;

/// Every event (as its Debug text) with its event time, sorted.
fn events(workers: usize, total: u64) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    timely::execute(timely::Config::process(workers), move |worker| {
        let ctx = Context::default();
        let sink = Arc::clone(&sink);
        worker.dataflow(|scope| {
            NexmarkSource::bounded(total)
                .build(scope, &ctx, SourceConfig::default())
                .records
                .inspect(move |(event, time)| {
                    assert_eq!(event.timestamp(), *time);
                    sink.lock().unwrap().push(format!("{event:?}"));
                });
        });
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    let mut all = std::mem::take(&mut *seen.lock().unwrap());
    all.sort();
    all
}

#[test]
fn same_events_for_one_two_and_four_workers() {
    let one = events(1, 20_000);
    assert_eq!(one.len(), 20_000);
    let bids = one.iter().filter(|e| e.starts_with("Bid")).count();
    let people = one.iter().filter(|e| e.starts_with("Person")).count();
    assert_eq!((people, bids), (400, 18_400), "1:3:46 proportions");
    assert_eq!(events(2, 20_000), one);
    assert_eq!(events(4, 20_000), one);
}
