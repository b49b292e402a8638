//! The Nexmark driver: runs a Nexmark query on the built-in generator.
//!
//! ```text
//! cargo run --release --example nexmark -- --query q5 --events 1000000
//! cargo run --release --example nexmark -- --query q7 --events 1000000 --output q7.csv --sorted -w 2
//! ```
//!
//! Queries so far: q0 (pass-through), q1 (currency conversion), q2
//! (selection), q3 (local item suggestion: a person-auction join), q4
//! (average closing price per category), q5 (hot items: sliding 10 s windows every 2 s, the auctions
//! with the most bids), q7 (highest bid per tumbling 10 s window), q8 (new
//! users: a window join of persons and auctions), q9 (winning bids: a keyed
//! process function with timers at each auction's expiry; q4 and q6 build
//! on it), q6 (average selling price of a seller's last 10 auctions), q10
//! (bids with their day and minute), q13 (a bounded side-input join; see
//! `--side-input`), q11 (user sessions:
//! session windows of bids per bidder), q12 (bids per bidder in
//! processing-time windows; see `q12.rs` on determinism), q14 (calculation:
//! price filter, time of day, character count), q15, q16 and q17 (bidding,
//! channel and auction statistics per day), q18 (last bid per bidder and
//! auction), q19 (top-10 bids per auction), q20 (bids with their auction,
//! category 10), q21 (channel ids) and q22 (URL directories). Each module's doc gives its rows. Without `--output`,
//! results go to standard output as CSV.

use tidewater::connectors::format::trim_line_end;
use tidewater::connectors::kafka::{KafkaSource, KafkaUri};
use tidewater::connectors::nexmark::{BidNumbers, EventLines, Kinds};
use tidewater::connectors::output::Output;
use tidewater::prelude::*;

#[path = "../common/bid_queries.rs"]
mod bid_queries;
mod calendar;
mod latency;
mod q10;
mod q11;
mod q12;
mod q13;
mod q14;
mod q15;
mod q16;
mod q17;
mod q18;
mod q19;
mod q20;
mod q21;
mod q22;
mod q3;
mod q4;
mod q6;
mod q8;
mod q9;
mod relational;

use bid_queries::{bid_tuple, hot_items, max_bid, BidTuple};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Query {
    Q0,
    Q1,
    Q2,
    Q3,
    Q4,
    Q5,
    Q6,
    Q7,
    Q8,
    Q9,
    Q10,
    Q11,
    Q12,
    Q13,
    Q14,
    Q15,
    Q16,
    Q17,
    Q18,
    Q19,
    Q20,
    Q21,
    Q22,
}

/// How a query is computed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// Windows, joins and process functions on timely streams.
    Streaming,
    /// Continuous queries on differential arrangements (q3, q4, q6, q9, q18).
    Relational,
}

/// Runs a Nexmark query on the built-in generator.
#[derive(clap::Args, Debug, Clone)]
struct Job {
    /// The query.
    #[arg(long, value_enum)]
    query: Query,
    /// Events to generate over all workers (persons, auctions and bids).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per second of event time (spacing of the generated timestamps).
    #[arg(long, default_value_t = 10_000)]
    event_rate: u64,
    /// Read the events from here instead of generating them: JSON lines of
    /// events (`tidewater generate --what events`) in files or a topic
    /// (`kafka://HOST:PORT/TOPIC?format=json&bounded=true`).
    #[arg(long)]
    input: Option<String>,
    /// Write results here (a directory of per-worker files, one file with
    /// --sorted, or a topic `kafka://HOST:PORT/TOPIC`) instead of standard
    /// output.
    #[arg(long)]
    output: Option<String>,
    /// Write exactly one sorted file at the end.
    #[arg(long, requires = "output")]
    sorted: bool,
    /// q13's side input: a CSV file of `key,value` rows (default: keys
    /// 0-9999, each its own value).
    #[arg(long)]
    side_input: Option<std::path::PathBuf>,
    /// Measure how long results take after the watermark passes their time
    /// (every worker's results; worker 0 prints `latency_ms p50=.. p99=..` on standard error).
    #[arg(long)]
    latency: bool,
    /// How to compute the query: `relational` maintains q3, q4, q6, q9 or q18
    /// as a view on differential arrangements and writes its changelog
    /// (`row...,diff`), or with --sorted its final view.
    #[arg(long, value_enum, default_value_t = Engine::Streaming)]
    engine: Engine,
    #[command(flatten)]
    source: SourceArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::<Job>::parse_about("Runs a Nexmark query on the built-in generator.");
    let job = cli.job;
    if let Some(output) = &job.output {
        Output::parse(output, job.sorted).map_err(anyhow::Error::msg)?;
    }
    if job.engine == Engine::Relational
        && !matches!(
            job.query,
            Query::Q3 | Query::Q4 | Query::Q6 | Query::Q9 | Query::Q18
        )
    {
        anyhow::bail!(
            "--engine relational runs q3, q4, q6, q9 and q18, not {:?}",
            job.query
        );
    }
    // Loaded once, before any worker starts, so that a bad file fails fast.
    let side = match job.query {
        Query::Q13 => q13::side_input(job.side_input.as_deref())?,
        _ => Default::default(),
    };
    tidewater::execute(&cli.runtime, move |worker, ctx| {
        let (job, side) = (job.clone(), side.clone());
        worker.dataflow(|scope| -> anyhow::Result<()> {
            let config = job.source.config();
            let generator = NexmarkSource {
                events: Some(job.events),
                event_rate: job.event_rate,
                // Only q10 and q14 read the events' `extra` padding.
                extra: matches!(job.query, Query::Q10 | Query::Q14),
                channels: bid_texts(job.query) != (false, false),
                ..NexmarkSource::default()
            };
            // Queries of bids alone take them straight from the generator,
            // projected as they are made (the persons and auctions are not
            // made, and no whole event is built or moved).
            if job.input.is_none() && job.engine == Engine::Streaming {
                match reads(job.query) {
                    Reads::BidTuples => {
                        let bids = generator.build_bids(scope, ctx, config, |b| bid_tuple(&b));
                        watch(&job, &bids.records);
                        bid_queries(&job, bids.records, ctx);
                        return Ok(());
                    }
                    Reads::Bids => {
                        let bids = generator.build_bids(scope, ctx, config, |b| b);
                        watch(&job, &bids.records);
                        full_bid_queries(&job, bids.records, side, ctx);
                        return Ok(());
                    }
                    Reads::Events => {}
                }
            }
            // Most queries read no free text: skim it (see decode_skimmed;
            // bids' channels and URLs are kept for the queries that read
            // them).
            let skim = !generator.extra;
            let input = job.input.as_deref().map(Input::of).transpose()?;
            // Queries of bids (as tuples or whole), and of auctions and
            // bids as numbers (q4, q6, q9, q20), read from JSON lines (a
            // file or a topic) get them from the decoder, as from the
            // generator: no whole event is batched or moved (lines of
            // other kinds are only checked).
            if let (Some(Input::Lines(lines)), true, Engine::Streaming) = (&input, skim, job.engine)
            {
                if matches!(reads(job.query), Reads::BidTuples) {
                    let bids = event_tuples(
                        &job,
                        lines,
                        scope,
                        ctx,
                        config,
                        (bid_tuple_of, numbers),
                        |b| b.3,
                    )?;
                    watch(&job, &bids);
                    bid_queries(&job, bids, ctx);
                    return Ok(());
                }
                if matches!(reads(job.query), Reads::Bids) {
                    let bids = event_tuples(
                        &job,
                        lines,
                        scope,
                        ctx,
                        config,
                        (bid_of, |n| Some(n.into())),
                        |b| b.date_time,
                    )?;
                    watch(&job, &bids);
                    full_bid_queries(&job, bids, side, ctx);
                    return Ok(());
                }
                if matches!(job.query, Query::Q4 | Query::Q6 | Query::Q9 | Query::Q20) {
                    let items = event_tuples(
                        &job,
                        lines,
                        scope,
                        ctx,
                        config,
                        (item_of, item_numbers),
                        q9::Item::time,
                    )?;
                    watch(&job, &items);
                    item_queries(&job, items, ctx);
                    return Ok(());
                }
            }
            let events = match input {
                None => generator.build(scope, ctx, config).records,
                Some(Input::Lines(lines)) if skim => {
                    let keep: (Keep<Event>, _) = (Some, |n: BidNumbers| Some(Event::Bid(n.into())));
                    event_tuples(&job, &lines, scope, ctx, config, keep, Event::timestamp)?
                }
                Some(Input::Lines(Lines::File(path))) => {
                    FileSource::new([path])
                        .format(Format::Json)
                        .build(scope, ctx, config, Event::timestamp)?
                        .records
                }
                Some(Input::Lines(Lines::Topic(uri)) | Input::Topic(uri)) => {
                    KafkaSource::new(*uri)
                        .build(scope, ctx, config, Event::timestamp)
                        .map_err(anyhow::Error::msg)?
                        .records
                }
            };
            watch(&job, &events);
            if job.engine == Engine::Relational {
                relational_query(&job, events, ctx);
                return Ok(());
            }
            if let Query::Q8 = job.query {
                let persons = events.clone().flat_map(|(event, time)| match event {
                    Event::Person(p) => Some(((p.id as u64, p.name), time)),
                    _ => None,
                });
                let sellers = events.flat_map(|(event, time)| match event {
                    Event::Auction(a) => Some((a.seller as u64, time)),
                    _ => None,
                });
                emit(&job, q8::q8(persons, sellers), ctx);
                return Ok(());
            }
            match job.query {
                Query::Q3 => emit(&job, q3::q3(persons_and_auctions(events)), ctx),
                Query::Q4 | Query::Q6 | Query::Q9 | Query::Q20 => {
                    item_queries(&job, kept(events, item_of), ctx)
                }
                _ => match reads(job.query) {
                    Reads::Bids => full_bid_queries(&job, kept(events, bid_of), side, ctx),
                    _ => bid_queries(&job, kept(events, bid_tuple_of), ctx),
                },
            }
            Ok(())
        })
    })
}

/// q3, q4, q6, q9 or q18 on differential arrangements: the changelog, or with
/// `--sorted` the final view.
fn relational_query(job: &Job, events: EventStream<'_, Event>, ctx: &Context) {
    use tidewater::operators::relational::{Data, ToChangelog};

    fn write<'s, D: Data + serde::Serialize>(
        job: &Job,
        view: tidewater::operators::relational::Collection<'s, D>,
        ctx: &Context,
    ) {
        if job.sorted {
            emit(job, view.final_view(), ctx);
        } else {
            emit(job, view.changes(), ctx);
        }
    }
    let auctions = events.clone().flat_map(|(event, time)| match event {
        Event::Auction(a) => Some((q9::auction_tuple(&a), time)),
        _ => None,
    });
    if let Query::Q3 = job.query {
        let persons = events.flat_map(|(event, time)| match event {
            Event::Person(p) => Some((relational::person_tuple(p), time)),
            _ => None,
        });
        return write(job, relational::q3(persons, auctions), ctx);
    }
    let bids = events.flat_map(|(event, time)| match event {
        Event::Bid(b) => Some((bid_tuple(&b), time)),
        _ => None,
    });
    if let Query::Q18 = job.query {
        return write(job, relational::q18(bids), ctx);
    }
    let winners = relational::q9(auctions, bids);
    match job.query {
        Query::Q4 => write(job, relational::q4(winners), ctx),
        Query::Q6 => write(job, relational::q6(winners), ctx),
        _ => write(job, winners, ctx),
    }
}

/// Persons and auctions, for q3.
fn persons_and_auctions(events: EventStream<'_, Event>) -> EventStream<'_, q3::Item> {
    events.flat_map(|(event, time)| match event {
        Event::Person(p) => Some((q3::Item::Person(p.id as u64, p.name, p.city, p.state), time)),
        Event::Auction(a) => Some((
            q3::Item::Auction(a.id as u64, a.seller as u64, a.category as u64),
            time,
        )),
        Event::Bid(_) => None,
    })
}

/// Where a job's events come from.
enum Input {
    /// JSON lines, which the event decoders read straight from their bytes.
    Lines(Lines),
    /// A topic of another format (Avro, bytes, CSV).
    Topic(Box<KafkaUri>),
}

/// A file or a topic of JSON-lines events.
enum Lines {
    File(String),
    Topic(Box<KafkaUri>),
}

impl Input {
    /// `--input`: a file, or a `kafka://` address.
    fn of(input: &str) -> anyhow::Result<Input> {
        if !KafkaUri::is_kafka(input) {
            return Ok(Input::Lines(Lines::File(input.to_owned())));
        }
        let uri: Box<KafkaUri> = Box::new(input.parse().map_err(anyhow::Error::msg)?);
        let json = uri.format == Format::Json && uri.avro.is_none() && !uri.bytes;
        Ok(if json {
            Input::Lines(Lines::Topic(uri))
        } else {
            Input::Topic(uri)
        })
    }
}

/// What `keep` makes of JSON-lines events, and `bid` of a bid's numbers
/// where the query keeps no bid text, decoded straight from their bytes
/// (lines of kinds the query does not read are only checked).
fn event_tuples<'s, T: Clone + 'static>(
    job: &Job,
    lines: &Lines,
    scope: Scope<'s, EventTime>,
    ctx: &Context,
    config: SourceConfig,
    (keep, bid): (Keep<T>, impl Fn(BidNumbers) -> Option<T> + Copy + 'static),
    event_time: fn(&T) -> EventTime,
) -> anyhow::Result<EventStream<'s, T>> {
    let mut decoder = EventLines::new(kinds(job.query));
    let (channels, urls) = bid_texts(job.query);
    if channels {
        decoder = decoder.with_bid_channels();
    }
    if urls {
        decoder = decoder.with_bid_urls();
    }
    let mut decode = move |line: &[u8]| decoder.decode_with(line, keep, bid);
    Ok(match lines {
        Lines::File(path) => {
            FileSource::new([path])
                .build_filtered(scope, ctx, config, decode, event_time)?
                .records
        }
        Lines::Topic(uri) => {
            let decode = move |raw: &[u8]| decode(trim_line_end(raw));
            KafkaSource::new(uri.as_ref().clone())
                .build_filtered(scope, ctx, config, decode, event_time)
                .map_err(anyhow::Error::msg)?
                .records
        }
    })
}

/// q4, q6, q9 or q20 from the auctions and bids.
fn item_queries(job: &Job, items: EventStream<'_, q9::Item>, ctx: &Context) {
    match job.query {
        Query::Q4 => emit(job, q4::q4(q9::q9(items)), ctx),
        Query::Q6 => emit(job, q6::q6(q9::q9(items)), ctx),
        Query::Q9 => emit(job, q9::q9(items), ctx),
        Query::Q20 => emit(job, q20::q20(items), ctx),
        _ => unreachable!("not a query of auctions and bids"),
    }
}

/// An event's auction or bid, for q4, q6, q9 and q20.
fn item_of(event: Event) -> Option<q9::Item> {
    match event {
        Event::Auction(a) => Some(q9::Item::Auction(q9::auction_tuple(&a))),
        Event::Bid(b) => Some(q9::Item::Bid(bid_tuple(&b))),
        Event::Person(_) => None,
    }
}

/// An event's bid, whole.
fn bid_of(event: Event) -> Option<Bid> {
    match event {
        Event::Bid(b) => Some(b),
        _ => None,
    }
}

/// An event's bid as `(auction, bidder, price, date_time)`.
fn bid_tuple_of(event: Event) -> Option<BidTuple> {
    bid_of(event).map(|b| bid_tuple(&b))
}

/// A bid's numbers as `(auction, bidder, price, date_time)`.
fn numbers(n: BidNumbers) -> Option<BidTuple> {
    Some((
        n.auction as u64,
        n.bidder as u64,
        n.price as u64,
        n.date_time,
    ))
}

/// A bid's numbers as an item of q4, q6, q9 and q20.
fn item_numbers(n: BidNumbers) -> Option<q9::Item> {
    numbers(n).map(q9::Item::Bid)
}

/// What a query keeps of an event.
type Keep<T> = fn(Event) -> Option<T>;

/// What `keep` makes of the events (the decoders of JSON lines take the
/// same projections).
fn kept<T: Clone + 'static>(events: EventStream<'_, Event>, keep: Keep<T>) -> EventStream<'_, T> {
    events.flat_map(move |(event, time)| keep(event).map(|x| (x, time)))
}

/// What a query reads of the events.
enum Reads {
    /// Bids as `(auction, bidder, price, date_time)`.
    BidTuples,
    /// Whole bids.
    Bids,
    /// Persons or auctions too.
    Events,
}

fn reads(query: Query) -> Reads {
    match query {
        Query::Q0
        | Query::Q1
        | Query::Q2
        | Query::Q5
        | Query::Q7
        | Query::Q11
        | Query::Q12
        | Query::Q15
        | Query::Q17
        | Query::Q18
        | Query::Q19 => Reads::BidTuples,
        Query::Q10 | Query::Q13 | Query::Q14 | Query::Q16 | Query::Q21 | Query::Q22 => Reads::Bids,
        Query::Q3 | Query::Q4 | Query::Q6 | Query::Q8 | Query::Q9 | Query::Q20 => Reads::Events,
    }
}

/// The kinds of event a query reads (by either engine).
fn kinds(query: Query) -> Kinds {
    let only = |persons, auctions, bids| Kinds {
        persons,
        auctions,
        bids,
    };
    match (query, reads(query)) {
        (Query::Q3 | Query::Q8, _) => only(true, true, false),
        (_, Reads::BidTuples | Reads::Bids) => only(false, false, true),
        (Query::Q4 | Query::Q6 | Query::Q9 | Query::Q20, _) => only(false, true, true),
        (_, Reads::Events) => Kinds::ALL,
    }
}

/// Whether the query reads bids' channels (q16, q21, q22) and URLs (q21,
/// q22).
fn bid_texts(query: Query) -> (bool, bool) {
    (
        matches!(query, Query::Q16 | Query::Q21 | Query::Q22),
        matches!(query, Query::Q21 | Query::Q22),
    )
}

/// With `--latency`, watches the watermark of the query's input.
fn watch<D: Clone + 'static>(job: &Job, input: &EventStream<'_, D>) {
    if job.latency {
        let watch = std::rc::Rc::new(std::cell::RefCell::new(latency::Latency::default()));
        latency::watch_watermark(input, std::rc::Rc::clone(&watch));
        WATCH.with(|w| *w.borrow_mut() = Some(watch));
    }
}

/// The queries over whole bids.
fn full_bid_queries(
    job: &Job,
    bids: EventStream<'_, Bid>,
    side: std::collections::HashMap<u64, String>,
    ctx: &Context,
) {
    match job.query {
        Query::Q10 => emit(job, q10::q10(bids), ctx),
        Query::Q13 => emit(job, q13::q13(bids, side), ctx),
        Query::Q14 => emit(job, q14::q14(bids), ctx),
        Query::Q16 => emit(job, q16::q16(bids), ctx),
        Query::Q21 => emit(job, q21::q21(bids), ctx),
        Query::Q22 => emit(job, q22::q22(bids), ctx),
        _ => unreachable!("{:?} reads more than bids", job.query),
    }
}

/// The queries over bids as `(auction, bidder, price, date_time)`.
fn bid_queries(job: &Job, bids: EventStream<'_, BidTuple>, ctx: &Context) {
    match job.query {
        Query::Q0 => emit(job, bids, ctx),
        Query::Q1 => emit(job, q1(bids), ctx),
        Query::Q2 => emit(job, q2(bids), ctx),
        Query::Q5 => emit(job, hot_items(bids), ctx),
        Query::Q7 => emit(job, max_bid(bids), ctx),
        Query::Q11 => emit(job, q11::q11(bids), ctx),
        Query::Q12 => emit(job, q12::q12(bids), ctx),
        Query::Q15 => emit(job, q15::q15(bids), ctx),
        Query::Q17 => emit(job, q17::q17(bids), ctx),
        Query::Q18 => emit(job, q18::q18(bids), ctx),
        Query::Q19 => emit(job, q19::q19(bids), ctx),
        _ => unreachable!("{:?} reads more than bid tuples", job.query),
    }
}

/// q1: prices in euros.
fn q1(bids: EventStream<'_, BidTuple>) -> EventStream<'_, BidTuple> {
    bids.map(|((auction, bidder, price, date_time), time)| {
        ((auction, bidder, price * 908 / 1000, date_time), time)
    })
}

/// q2: bids on a few auctions.
fn q2(bids: EventStream<'_, BidTuple>) -> EventStream<'_, (u64, u64)> {
    bids.flat_map(|((auction, _, price, _), time)| {
        (auction % 123 == 0).then_some(((auction, price), time))
    })
}

thread_local! {
    /// This worker's latency record, with `--latency`.
    static WATCH: std::cell::RefCell<Option<std::rc::Rc<std::cell::RefCell<latency::Latency>>>> =
        const { std::cell::RefCell::new(None) };
}

fn emit<D: serde::Serialize + 'static>(job: &Job, results: EventStream<'_, D>, ctx: &Context) {
    let results = match WATCH.with(|w| w.borrow().clone()) {
        Some(watch) => latency::watch_results(results, watch),
        None => results,
    };
    match &job.output {
        Some(output) => match Output::parse(output, job.sorted) {
            Ok(sink) => sink.write(results, ctx),
            Err(e) => ctx.fail(e),
        },
        None => write_stdout(results, ctx, Format::Csv),
    }
}
