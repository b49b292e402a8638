//! The Nexmark driver's windowed queries against brute-force oracles over
//! the same generated events, on one and three workers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::{assert_rows_eq, example, oracle, read_rows, run_ok};
use tidewater::connectors::nexmark::{Event, NexmarkSource};

const EVENTS: u64 = 30_000;

fn events() -> Vec<Event> {
    NexmarkSource::bounded(EVENTS)
        .events_for(0, 1)
        .map(|(_, e)| e)
        .collect()
}

fn bids(events: &[Event]) -> Vec<[u64; 4]> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some([
                b.auction as u64,
                b.bidder as u64,
                b.price as u64,
                b.date_time,
            ]),
            _ => None,
        })
        .collect()
}

fn q8(events: &[Event]) -> Vec<String> {
    let window = |t: u64| t / 10_000 * 10_000;
    let sellers: BTreeSet<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) => Some((a.seller as u64, window(a.date_time))),
            _ => None,
        })
        .collect();
    let mut rows: BTreeSet<(u64, String, u64)> = BTreeSet::new();
    for e in events {
        if let Event::Person(p) = e {
            let w = window(p.date_time);
            if sellers.contains(&(p.id as u64, w)) {
                rows.insert((p.id as u64, p.name.clone(), w));
            }
        }
    }
    rows.into_iter()
        .map(|(id, name, w)| format!("{id},{name},{w}"))
        .collect()
}

fn q11(bids: &[[u64; 4]]) -> Vec<String> {
    let mut by_bidder: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for [_, bidder, _, t] in bids {
        by_bidder.entry(*bidder).or_default().push(*t);
    }
    let mut rows = Vec::new();
    for (bidder, mut times) in by_bidder {
        times.sort();
        let (mut first, mut last, mut n) = (times[0], times[0], 0u64);
        for t in times {
            if t >= last + 10_000 {
                rows.push([bidder, n, first, last + 10_000]);
                (first, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        rows.push([bidder, n, first, last + 10_000]);
    }
    rows.sort();
    rows.iter()
        .map(|r| format!("{},{},{},{}", r[0], r[1], r[2], r[3]))
        .collect()
}

#[test]
fn windowed_queries_match_the_oracle() {
    let events = events();
    let bids = bids(&events);
    let dir = tempfile::tempdir().unwrap();
    for (query, want) in [
        ("q5", oracle::hot_items(&bids)),
        ("q7", oracle::max_bid(&bids)),
        ("q8", q8(&events)),
        ("q11", q11(&bids)),
    ] {
        assert!(!want.is_empty(), "{query}: empty oracle");
        for workers in ["1", "3"] {
            let output = dir.path().join(format!("{query}-{workers}.csv"));
            run_ok(
                Command::new(example("nexmark"))
                    .args([
                        "--query",
                        query,
                        "--events",
                        &EVENTS.to_string(),
                        "--sorted",
                        "-w",
                        workers,
                        "--output",
                    ])
                    .arg(&output),
            );
            assert_rows_eq(&read_rows(&output), &want, &format!("{query} -w {workers}"));
        }
    }
}

#[test]
fn processing_time_windows_count_every_bid_once() {
    let bids = bids(&events());
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    for [_, bidder, _, _] in &bids {
        *want.entry(*bidder).or_default() += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("q12.csv");
    run_ok(
        Command::new(example("nexmark"))
            .args([
                "--query",
                "q12",
                "--events",
                &EVENTS.to_string(),
                "--sorted",
                "-w",
                "2",
                "--output",
            ])
            .arg(&output),
    );
    let mut got: BTreeMap<u64, u64> = BTreeMap::new();
    for row in read_rows(&output) {
        let f: Vec<u64> = row.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[3] - f[2], 10_000, "window bounds in {row}");
        assert_eq!(f[2] % 10_000, 0, "alignment in {row}");
        *got.entry(f[0]).or_default() += f[1];
    }
    assert_eq!(got, want);
}
