//! Benchmark: the continuous-query layer (`tidewater_operators::relational`)
//! on Nexmark q3, q4 and q9 over 10 M generated events with `-w 1` and
//! `-w 2`, beside the same queries written directly in raw differential
//! dataflow in the same invocation (the same generator feeding the same
//! timely inputs); and an upsert view over a fixed key space at growing
//! update counts, to show that peak RSS stays flat (compaction follows the
//! frontier).
//!
//! ```text
//! cargo bench --bench relational
//! EVENTS=2000000 cargo bench --bench relational
//! ```

use std::cmp::Reverse;
use std::process::Command;

use differential_dataflow::operators::CountTotal;
use differential_dataflow::AsCollection;
use tidewater_connectors::nexmark::{Event, NexmarkSource};
use tidewater_operators::relational::changelog::ToKeyedChangelog;
use tidewater_operators::relational::{Collection, GroupBy, ToChangelog, UpsertStream};
use tidewater_operators::EventStream;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

#[path = "common/mod.rs"]
mod common;
use common::{cores, env_number, measure, Measurement};

#[path = "../examples/common/bid_queries.rs"]
mod bid_queries;
#[allow(dead_code)]
#[path = "../examples/nexmark/q9.rs"]
mod q9;
#[allow(dead_code)] // q6 is not benchmarked
#[path = "../examples/nexmark/relational.rs"]
mod relational;

use bid_queries::{bid_tuple, BidTuple};
use q9::{auction_tuple, AuctionTuple};
use relational::PersonTuple;

type In<D> = InputHandle<u64, CapacityContainerBuilder<Vec<(D, u64)>>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--run") {
        let events = args[pos + 3].parse().expect("events");
        let workers = args[pos + 4].parse().expect("workers");
        run(&args[pos + 1], &args[pos + 2], events, workers);
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--flat") {
        flat(args[pos + 1].parse().expect("updates"));
        return;
    }
    let events = env_number("EVENTS", 10_000_000);
    let me = std::env::current_exe().expect("bench path");
    println!(
        "Continuous queries over {events} Nexmark events, {} cores",
        cores()
    );
    println!();
    println!("| query | -w | engine | wall s | CPU s | events/s | events/CPU-s | peak RSS MiB | CPU vs raw differential |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for query in ["q3", "q4", "q9"] {
        for workers in [1, 2] {
            let mut raw = None;
            for engine in ["raw", "layer"] {
                let m = measure(Command::new(&me).args([
                    "--run",
                    engine,
                    query,
                    &events.to_string(),
                    &workers.to_string(),
                ]));
                let base = raw.get_or_insert(m.cpu);
                row(query, workers, engine, events, &m, m.cpu / *base);
            }
        }
    }
    println!();
    println!("Upsert view over 10 000 keys (upserts -> table -> count per value bucket), -w 1:");
    println!();
    println!("| upserts | wall s | CPU s | upserts/CPU-s | peak RSS MiB |");
    println!("|---|---|---|---|---|");
    for updates in [1_000_000u64, 4_000_000, 16_000_000] {
        let m = measure(Command::new(&me).args(["--flat", &updates.to_string()]));
        println!(
            "| {updates} | {:.2} | {:.2} | {:.2} M | {:.0} |",
            m.wall,
            m.cpu,
            updates as f64 / m.cpu / 1e6,
            m.peak_rss_kib as f64 / 1024.0
        );
    }
}

fn row(query: &str, workers: usize, engine: &str, events: u64, m: &Measurement, ratio: f64) {
    println!(
        "| {query} | {workers} | {engine} | {} | {ratio:.2} |",
        m.cells(events)
    );
}

/// One query on one engine: this worker's share of the generated events
/// into three inputs (persons, auctions, bids) under a capability at the
/// generator's time, paced against the output's probe.
fn run(engine: &str, query: &str, events: u64, workers: usize) {
    let (engine, query) = (engine.to_string(), query.to_string());
    timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut persons: In<PersonTuple> = InputHandle::new();
        let mut auctions: In<AuctionTuple> = InputHandle::new();
        let mut bids: In<BidTuple> = InputHandle::new();
        let probe = ProbeHandle::new();
        worker.dataflow(|scope| {
            let p = scope.input_from(&mut persons);
            let a = scope.input_from(&mut auctions);
            let b = scope.input_from(&mut bids);
            match engine.as_str() {
                "layer" => {
                    layer(&query, p, a, b).changes().probe_with(&probe);
                }
                _ => {
                    raw(&query, p, a, b).inner.probe_with(&probe);
                }
            }
        });
        let generator = NexmarkSource::bounded(events);
        for (sent, (_, event)) in generator.events_for(index, peers).enumerate() {
            match event {
                Event::Person(p) => {
                    let time = p.date_time;
                    persons.send((relational::person_tuple(p), time))
                }
                Event::Auction(a) => auctions.send((auction_tuple(&a), a.date_time)),
                Event::Bid(b) => bids.send((bid_tuple(&b), b.date_time)),
            }
            if sent % 4096 == 4095 {
                let now = generator.event_time((sent as u64 + 1) * peers as u64);
                if now > *bids.time() {
                    persons.advance_to(now);
                    auctions.advance_to(now);
                    bids.advance_to(now);
                }
                while probe.less_than(&bids.time().saturating_sub(10_000)) {
                    worker.step();
                }
            }
        }
    })
    .expect("timely")
    .join()
    .into_iter()
    .for_each(|r| r.expect("worker"));
}

/// The layer's queries (the driver's `--engine relational` code), as one
/// row type so that one changelog serves all three.
fn layer<'s>(
    query: &str,
    persons: EventStream<'s, PersonTuple>,
    auctions: EventStream<'s, AuctionTuple>,
    bids: EventStream<'s, BidTuple>,
) -> Collection<'s, (u64, u64)> {
    match query {
        "q3" => relational::q3(persons, auctions).map(|(_, _, _, auction)| (auction, 0)),
        "q4" => relational::q4(relational::q9(auctions, bids)),
        _ => relational::q9(auctions, bids).map(|(a, _, price, _)| (a.0, price)),
    }
}

/// The same queries in raw differential: collections from the streams,
/// `arrange_by_key`, `join_core`, `reduce`, `explode` and `count_total`.
fn raw<'s>(
    query: &str,
    persons: EventStream<'s, PersonTuple>,
    auctions: EventStream<'s, AuctionTuple>,
    bids: EventStream<'s, BidTuple>,
) -> Collection<'s, (u64, u64)> {
    if query == "q3" {
        let local = persons
            .map(|(p, t)| (p, t, 1isize))
            .as_collection()
            .filter(|p| matches!(p.3.to_uppercase().as_str(), "OR" | "ID" | "CA"))
            .map(|(id, name, city, state)| (id, (name, city, state)));
        let category = auctions
            .map(|(a, t)| (a, t, 1isize))
            .as_collection()
            .filter(|a| a.2 == 10)
            .map(|a| (a.1, a.0));
        return local.join(category).map(|(_, (_, auction))| (auction, 0));
    }
    let closed = auctions
        .map(|(a, _)| ((a.0, a), a.6 + 1, 1isize))
        .as_collection()
        .arrange_by_key();
    let bids = bids
        .map(|((auction, bidder, price, time), t)| ((auction, (price, time, bidder)), t, 1isize))
        .as_collection()
        .arrange_by_key();
    let winners = closed
        .join_core(bids, |id: &u64, a: &AuctionTuple, b: &(u64, u64, u64)| {
            (a.5 <= b.1 && b.1 <= a.6).then_some((*id, (*a, *b)))
        })
        .reduce(|_id, candidates, out| {
            let best = candidates
                .iter()
                .min_by_key(|((_, (price, time, bidder)), _)| (Reverse(*price), *time, *bidder))
                .expect("a non-empty group");
            out.push((*best.0, 1));
        });
    if query == "q4" {
        winners
            .explode(|(_, (a, (price, _, _)))| Some((a.2, (price as isize, 1isize))))
            .count_total()
            .map(|(category, (sum, n))| (category, (sum / n) as u64))
    } else {
        winners.map(|(id, (_, (price, _, _)))| (id, price))
    }
}

/// A fixed key space (10 000 keys) upserted `updates` times in event-time
/// order, 1 000 upserts per millisecond; the view counts keys per value
/// bucket. State must not grow with the upserts.
fn flat(updates: u64) {
    timely::execute(timely::Config::process(1), move |worker| {
        let mut input: In<(u64, Option<u64>)> = InputHandle::new();
        let probe = ProbeHandle::new();
        worker.dataflow(|scope| {
            scope
                .input_from(&mut input)
                .upsert_table()
                .to_collection()
                .map(|(key, value)| (value % 100, key))
                .count_by_key()
                .changes_by_key()
                .probe_with(&probe);
        });
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..updates {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let time = i / 1000;
            if time > *input.time() {
                input.advance_to(time);
                while probe.less_than(&time.saturating_sub(100)) {
                    worker.step();
                }
            }
            let value = (!x.is_multiple_of(7)).then_some(x >> 20);
            input.send(((x % 10_000, value), time));
        }
    })
    .expect("timely")
    .join()
    .into_iter()
    .for_each(|r| r.expect("worker"));
}
