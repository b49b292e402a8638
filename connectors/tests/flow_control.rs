//! Flow control: sources feeding a slow sink on another worker stay within
//! the configured event-time distance of it, so the records in flight (sent,
//! not yet consumed) stay bounded instead of growing with the input.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewater_connectors::nexmark::NexmarkSource;
use tidewater_connectors::SourceConfig;
use tidewater_operators::Context;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Inspect;

const EVENTS: u64 = 60_000;

/// The most records sent by the sources of two workers but not yet consumed
/// by one sink (on worker 0) that takes 40 µs per record.
fn max_in_flight(max_lag_ms: u64) -> u64 {
    let sent = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let (sent2, peak2) = (Arc::clone(&sent), Arc::clone(&peak));
    timely::execute(timely::Config::process(2), move |worker| {
        let ctx = Context::new(max_lag_ms);
        let (sent, sent2, peak) = (Arc::clone(&sent2), Arc::clone(&sent2), Arc::clone(&peak2));
        let config = SourceConfig {
            batch: 4096,
            ..SourceConfig::default()
        };
        worker.dataflow(|scope| {
            let done = NexmarkSource::bounded(EVENTS)
                .build(scope, &ctx, config)
                .records
                .inspect_core(move |event| {
                    if let Ok((_, data)) = event {
                        sent.fetch_add(data.len() as u64, Ordering::SeqCst);
                    }
                })
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|_| 0),
                    "SlowSink",
                    move |_, _| {
                        let mut consumed = 0u64;
                        move |input, _output| {
                            input.for_each(|_, data| {
                                let in_flight = sent2.load(Ordering::SeqCst) - consumed;
                                peak.fetch_max(in_flight, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_micros(40 * data.len() as u64));
                                consumed += data.len() as u64;
                            });
                        }
                    },
                );
            // The sink's progress moves the probe and wakes the waiting sources.
            ctx.attach(done);
        });
    })
    .unwrap()
    .join()
    .into_iter()
    .for_each(|r| r.unwrap());
    assert_eq!(sent.load(Ordering::SeqCst), EVENTS);
    peak.load(Ordering::SeqCst)
}

#[test]
fn sources_wait_for_a_slow_sink() {
    // 10 000 events per second of event time: 500 ms of lag is 5 000 events,
    // plus a batch of 4 096 per worker read before a source looks again.
    let bounded = max_in_flight(500);
    assert!(
        bounded < 20_000,
        "{bounded} records in flight with a 500 ms lag bound"
    );
    // Without the bound the sources run ahead through most of the input.
    let unbounded = max_in_flight(u64::MAX / 2);
    assert!(
        unbounded > 28_000,
        "only {unbounded} in flight without flow control"
    );
    eprintln!("in flight: {bounded} with flow control, {unbounded} without");
}
