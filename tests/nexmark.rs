//! The Nexmark driver's queries against brute-force oracles over the same
//! generated events, on one and three workers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::{assert_rows_eq, example, oracle, read_rows, run_ok};
use tidewater::connectors::file::compare_rows;
use tidewater::connectors::nexmark::{Auction, Bid, Event, NexmarkSource};

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

/// Runs each query on 1 and 3 workers and compares its sorted output with
/// the oracle's rows.
fn check<const N: usize>(queries: [(&str, Vec<String>); N]) {
    check_with(&[], queries)
}

/// As [`check`], with extra driver arguments.
fn check_with<const N: usize>(args: &[&str], queries: [(&str, Vec<String>); N]) {
    let dir = tempfile::tempdir().unwrap();
    for (query, want) in queries {
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
                    ])
                    .args(args)
                    .args(["-w", workers, "--output"])
                    .arg(&output),
            );
            assert_rows_eq(&read_rows(&output), &want, &format!("{query} -w {workers}"));
        }
    }
}

#[test]
fn windowed_queries_match_the_oracle() {
    let events = events();
    let bids = bids(&events);
    check([
        ("q5", oracle::hot_items(&bids)),
        ("q7", oracle::max_bid(&bids)),
        ("q8", q8(&events)),
        ("q11", q11(&bids)),
    ]);
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

fn full_bids(events: &[Event]) -> Vec<&Bid> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort_by(|a, b| compare_rows(a, b));
    rows
}

fn day_of(ms: u64) -> String {
    // 2026-01-01 is day 20 454 since the epoch; the test's events span hours
    let days = ms / 86_400_000;
    assert_eq!(days, 20_454, "the oracle knows only 2026-01-01");
    "2026-01-01".to_owned()
}

fn rank(price: u64) -> usize {
    if price < 10_000 {
        1
    } else if price < 1_000_000 {
        2
    } else {
        3
    }
}

fn q14(bids: &[&Bid]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in bids {
        let price = b.price as u64 * 908 / 1000;
        if !(1_000_000 < price && price < 50_000_000) {
            continue;
        }
        let h = (b.date_time / 3_600_000) % 24;
        let kind = if (8..=18).contains(&h) {
            "dayTime"
        } else if h <= 6 || h >= 20 {
            "nightTime"
        } else {
            "otherTime"
        };
        let c = b.extra.matches('c').count();
        rows.push(format!(
            "{},{},{price},{kind},{},{c}",
            b.auction, b.bidder, b.date_time
        ));
    }
    sorted(rows)
}

/// In total and per price rank: bids, distinct bidders, distinct auctions.
type DayStats = [(u64, BTreeSet<usize>, BTreeSet<usize>); 4];

fn count_bid(stats: &mut DayStats, b: &Bid) {
    for i in [0, rank(b.price as u64)] {
        stats[i].0 += 1;
        stats[i].1.insert(b.bidder);
        stats[i].2.insert(b.auction);
    }
}

/// `leading` columns, then the counts, bidders and auctions columns.
fn stats_row(mut fields: Vec<String>, s: &DayStats) -> String {
    fields.extend(s.iter().map(|x| x.0.to_string()));
    fields.extend(s.iter().map(|x| x.1.len().to_string()));
    fields.extend(s.iter().map(|x| x.2.len().to_string()));
    fields.join(",")
}

fn q15(bids: &[&Bid]) -> Vec<String> {
    let mut days: BTreeMap<String, DayStats> = BTreeMap::new();
    for b in bids {
        count_bid(days.entry(day_of(b.date_time)).or_default(), b);
    }
    sorted(
        days.into_iter()
            .map(|(day, s)| stats_row(vec![day], &s))
            .collect(),
    )
}

fn q16(bids: &[&Bid]) -> Vec<String> {
    let mut groups: BTreeMap<(String, String), (DayStats, u64)> = BTreeMap::new();
    for b in bids {
        let (stats, latest) = groups
            .entry((b.channel.clone(), day_of(b.date_time)))
            .or_default();
        *latest = (*latest).max(b.date_time);
        count_bid(stats, b);
    }
    let rows = groups
        .into_iter()
        .map(|((channel, day), (s, latest))| {
            let minute = format!("{:02}:{:02}", latest / 3_600_000 % 24, latest / 60_000 % 60);
            stats_row(vec![channel, day, minute], &s)
        })
        .collect();
    sorted(rows)
}

fn q18(bids: &[[u64; 4]]) -> Vec<String> {
    let mut last: BTreeMap<(u64, u64), [u64; 4]> = BTreeMap::new();
    for b in bids {
        let slot = last.entry((b[1], b[0])).or_insert(*b);
        // latest time, then highest price, then the rest of the row
        if (b[3], b[2], b[0], b[1]) > (slot[3], slot[2], slot[0], slot[1]) {
            *slot = *b;
        }
    }
    let rows = last
        .values()
        .map(|b| format!("{},{},{},{}", b[0], b[1], b[2], b[3]))
        .collect();
    sorted(rows)
}

fn q19(bids: &[[u64; 4]]) -> Vec<String> {
    let mut by_auction: BTreeMap<u64, Vec<[u64; 4]>> = BTreeMap::new();
    for b in bids {
        by_auction.entry(b[0]).or_default().push(*b);
    }
    let mut rows = Vec::new();
    for (_, mut all) in by_auction {
        all.sort_by_key(|b| (std::cmp::Reverse(b[2]), b[3], b[1]));
        for (i, b) in all.iter().take(10).enumerate() {
            rows.push(format!("{},{},{},{},{}", b[0], b[1], b[2], b[3], i + 1));
        }
    }
    sorted(rows)
}

/// Each auction with its winning bid: the highest placed between its start
/// and expiry (inclusive), the earliest and then the lowest bidder on ties.
fn winning(events: &[Event]) -> Vec<(&Auction, &Bid)> {
    let bids = full_bids(events);
    let mut out = Vec::new();
    for e in events {
        let Event::Auction(a) = e else { continue };
        let best = bids
            .iter()
            .filter(|b| b.auction == a.id && a.date_time <= b.date_time && b.date_time <= a.expires)
            .min_by_key(|b| (std::cmp::Reverse(b.price), b.date_time, b.bidder));
        if let Some(b) = best {
            out.push((a, *b));
        }
    }
    out
}

fn q9(events: &[Event]) -> Vec<String> {
    let rows = winning(events)
        .into_iter()
        .map(|(a, b)| {
            format!(
                "{},{},{},{},{},{},{},{},{},{}",
                a.id,
                a.seller,
                a.category,
                a.initial_bid,
                a.reserve,
                a.date_time,
                a.expires,
                b.bidder,
                b.price,
                b.date_time
            )
        })
        .collect();
    sorted(rows)
}

/// `(auction, seller, category, expires, winning price)` of q9's winners.
fn winners(events: &[Event]) -> Vec<(usize, usize, usize, u64, usize)> {
    winning(events)
        .into_iter()
        .map(|(a, b)| (a.id, a.seller, a.category, a.expires, b.price))
        .collect()
}

fn q3(events: &[Event]) -> Vec<String> {
    let mut rows = Vec::new();
    for e in events {
        let Event::Auction(a) = e else { continue };
        if a.category != 10 {
            continue;
        }
        for p in events {
            if let Event::Person(p) = p {
                let local = ["OR", "ID", "CA"].contains(&p.state.to_uppercase().as_str());
                if p.id == a.seller && local {
                    rows.push(format!("{},{},{},{}", p.name, p.city, p.state, a.id));
                }
            }
        }
    }
    sorted(rows)
}

fn q4(events: &[Event]) -> Vec<String> {
    let mut by_category: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for (_, _, category, _, price) in winners(events) {
        let slot = by_category.entry(category).or_default();
        slot.0 += price as u64;
        slot.1 += 1;
    }
    sorted(
        by_category
            .iter()
            .map(|(c, (sum, n))| format!("{c},{}", sum / n))
            .collect(),
    )
}

fn q6(events: &[Event]) -> Vec<String> {
    let mut by_seller: BTreeMap<usize, Vec<(u64, usize, usize)>> = BTreeMap::new();
    for (auction, seller, _, expires, price) in winners(events) {
        by_seller
            .entry(seller)
            .or_default()
            .push((expires, auction, price));
    }
    let mut rows = Vec::new();
    for (seller, mut closes) in by_seller {
        closes.sort();
        for i in 0..closes.len() {
            let last = &closes[i.saturating_sub(9)..=i];
            let avg = last.iter().map(|c| c.2 as u64).sum::<u64>() / last.len() as u64;
            rows.push(format!("{seller},{},{avg}", closes[i].1));
        }
    }
    sorted(rows)
}

fn q20(events: &[Event]) -> Vec<String> {
    let mut rows = Vec::new();
    let auctions: BTreeMap<usize, &Auction> = events
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) => Some((a.id, a)),
            _ => None,
        })
        .collect();
    for b in full_bids(events) {
        if let Some(a) = auctions.get(&b.auction).filter(|a| a.category == 10) {
            rows.push(format!(
                "{},{},{},{},{},{},{},{},{},{}",
                b.auction,
                b.bidder,
                b.price,
                b.date_time,
                a.seller,
                a.category,
                a.initial_bid,
                a.reserve,
                a.date_time,
                a.expires
            ));
        }
    }
    sorted(rows)
}

fn q10(bids: &[&Bid]) -> Vec<String> {
    let rows = bids
        .iter()
        .map(|b| {
            let (h, m) = (b.date_time / 3_600_000 % 24, b.date_time / 60_000 % 60);
            let mut extra = Vec::new();
            tidewater::connectors::format::Format::Csv
                .encode(&(&b.extra,), &mut extra)
                .unwrap();
            let extra = String::from_utf8(extra).unwrap();
            format!(
                "{},{},{},{},{},{},{h:02}:{m:02}",
                b.auction,
                b.bidder,
                b.price,
                b.date_time,
                extra.trim_end(),
                day_of(b.date_time)
            )
        })
        .collect();
    sorted(rows)
}

fn q17(bids: &[&Bid]) -> Vec<String> {
    let mut groups: BTreeMap<(usize, String), Vec<u64>> = BTreeMap::new();
    for b in bids {
        groups
            .entry((b.auction, day_of(b.date_time)))
            .or_default()
            .push(b.price as u64);
    }
    let rows = groups
        .into_iter()
        .map(|((auction, day), prices)| {
            let mut n = [prices.len(), 0, 0, 0];
            for p in &prices {
                n[rank(*p)] += 1;
            }
            let sum: u64 = prices.iter().sum();
            let (min, max) = (prices.iter().min().unwrap(), prices.iter().max().unwrap());
            let avg = sum / prices.len() as u64;
            format!(
                "{auction},{day},{},{},{},{},{min},{max},{avg},{sum}",
                n[0], n[1], n[2], n[3]
            )
        })
        .collect();
    sorted(rows)
}

fn q21(bids: &[&Bid]) -> Vec<String> {
    let re = regex::Regex::new("(&|^)channel_id=([^&]*)").unwrap();
    let mut rows = Vec::new();
    for b in bids {
        let id = match b.channel.to_lowercase().as_str() {
            "apple" => Some("0".to_owned()),
            "google" => Some("1".to_owned()),
            "facebook" => Some("2".to_owned()),
            "baidu" => Some("3".to_owned()),
            _ => re.captures(&b.url).map(|c| c[2].to_owned()),
        };
        if let Some(id) = id {
            rows.push(format!(
                "{},{},{},{},{id}",
                b.auction, b.bidder, b.price, b.channel
            ));
        }
    }
    sorted(rows)
}

fn q22(bids: &[&Bid]) -> Vec<String> {
    let rows = bids
        .iter()
        .map(|b| {
            let parts: Vec<&str> = b.url.split('/').collect();
            let part = |i: usize| parts.get(i).copied().unwrap_or("");
            format!(
                "{},{},{},{},{},{},{}",
                b.auction,
                b.bidder,
                b.price,
                b.channel,
                part(3),
                part(4),
                part(5)
            )
        })
        .collect();
    sorted(rows)
}

#[test]
fn winning_bids_per_bid_and_daily_queries_match_the_oracle() {
    let events = events();
    let bids = full_bids(&events);
    let tuples = self::bids(&events);
    check([
        ("q10", q10(&bids)),
        ("q3", q3(&events)),
        ("q4", q4(&events)),
        ("q6", q6(&events)),
        ("q9", q9(&events)),
        ("q20", q20(&events)),
        ("q14", q14(&bids)),
        ("q15", q15(&bids)),
        ("q16", q16(&bids)),
        ("q17", q17(&bids)),
        ("q18", q18(&tuples)),
        ("q19", q19(&tuples)),
        ("q21", q21(&bids)),
        ("q22", q22(&bids)),
    ]);
}

/// q6's final view: each seller's average over their last 10 closes.
fn q6_view(events: &[Event]) -> Vec<String> {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut closes: BTreeMap<usize, Vec<(u64, usize, usize)>> = BTreeMap::new();
    for (auction, seller, _, expires, price) in winners(events) {
        closes
            .entry(seller)
            .or_default()
            .push((expires, auction, price));
    }
    for (seller, mut closes) in closes {
        closes.sort();
        let recent = &closes[closes.len().saturating_sub(10)..];
        let avg = recent.iter().map(|c| c.2 as u64).sum::<u64>() / recent.len() as u64;
        last.insert(seller.to_string(), format!("{seller},{avg}"));
    }
    sorted(last.into_values().collect())
}

/// The continuous (differential) versions: their final views equal the
/// oracle's rows, and their changelogs sum to those views.
#[test]
fn relational_views_match_the_oracle() {
    let events = events();
    let queries = [
        ("q3", q3(&events)),
        ("q4", q4(&events)),
        ("q6", q6_view(&events)),
        ("q9", q9(&events)),
        ("q18", q18(&self::bids(&events))),
    ];
    check_with(&["--engine", "relational"], queries.clone());
    let dir = tempfile::tempdir().unwrap();
    for (query, want) in queries {
        let output = dir.path().join(query);
        run_ok(
            Command::new(example("nexmark"))
                .args(["--query", query, "--engine", "relational", "-w", "2"])
                .args(["--events", &EVENTS.to_string(), "--output"])
                .arg(&output),
        );
        let mut view: BTreeMap<String, i64> = BTreeMap::new();
        let mut changes = 0;
        for file in std::fs::read_dir(&output).unwrap() {
            for row in read_rows(&file.unwrap().path()) {
                let (row, diff) = row.rsplit_once(',').expect("a diff column");
                *view.entry(row.to_string()).or_default() += diff.parse::<i64>().unwrap();
                changes += 1;
            }
        }
        let got: Vec<String> = view
            .into_iter()
            .flat_map(|(row, n)| std::iter::repeat_n(row, n.max(0) as usize))
            .collect();
        assert_rows_eq(&sorted(got), &want, &format!("{query} changelog"));
        if query == "q4" || query == "q6" {
            assert!(
                changes > want.len(),
                "{query}: a view that never changed ({changes} changes)"
            );
        }
    }
}

#[test]
fn side_input_join_matches_the_oracle() {
    let events = events();
    let bids = full_bids(&events);
    let dir = tempfile::tempdir().unwrap();
    // every third key, with values of their own
    let side = dir.path().join("side.csv");
    let table: BTreeMap<usize, String> = (0..10_000)
        .step_by(3)
        .map(|k| (k, format!("v{}", k * 7)))
        .collect();
    let text: String = table.iter().map(|(k, v)| format!("{k},{v}\n")).collect();
    std::fs::write(&side, text).unwrap();
    let want = sorted(
        bids.iter()
            .filter_map(|b| {
                let v = table.get(&(b.auction % 10_000))?;
                Some(format!(
                    "{},{},{},{},{v}",
                    b.auction, b.bidder, b.price, b.date_time
                ))
            })
            .collect(),
    );
    assert!(!want.is_empty());
    for workers in ["1", "3"] {
        let output = dir.path().join(format!("q13-{workers}.csv"));
        run_ok(
            Command::new(example("nexmark"))
                .args([
                    "--query",
                    "q13",
                    "--events",
                    &EVENTS.to_string(),
                    "--sorted",
                    "-w",
                    workers,
                    "--side-input",
                ])
                .arg(&side)
                .arg("--output")
                .arg(&output),
        );
        assert_rows_eq(&read_rows(&output), &want, &format!("q13 -w {workers}"));
    }
    // a malformed side input fails at once, naming its line
    std::fs::write(&side, "1,a\nnot-a-key,b\n").unwrap();
    let out = Command::new(example("nexmark"))
        .args(["--query", "q13", "--events", "100", "--side-input"])
        .arg(&side)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("side.csv:2"), "{stderr}");
}
