#!/usr/bin/env python3
"""Nexmark queries q0-q5, q7-q9, q11-q13 and q15-q22 on Apache Flink (PyFlink), over the JSON-lines
events that `tidewater generate --what events` writes (one externally tagged
`{"Person": {...}}`, `{"Auction": {...}}` or `{"Bid": {...}}` object a line).

Same interface as ../shared/peers/flink_bids.py:
--sink file      : batch mode (streaming for q11), result written to --out as one sorted CSV (it must
                   equal `nexmark --query Q --input FILE --sorted` byte for byte)
--sink blackhole : streaming mode, time the pipeline alone

The queries are Flink's own Nexmark SQL (github.com/nexmark/nexmark) with the
rows Tidewater's examples/nexmark writes:
- q0: every bid (pass-through). Rows: auction,bidder,price,date_time.
- q1: prices in euros (integer: price * 908 / 1000). Rows as q0.
- q2: bids on every 123rd auction. Rows: auction,price.
- q3: sellers in Oregon, Idaho or California with their category-10 auctions, a
  regular join; the generator writes states in lower case, so they are matched
  in lower case. Rows: name,city,state,auction.
- q4: the average (integer) winning price per category, the winning price of
  an auction being its highest bid between its start and its expiry
  (inclusive), a join of auctions and bids and two aggregations. Rows:
  category,avg_final_price.
- q5: hot items: per sliding window (10 s, every 2 s) the auction(s) with
  the most bids. Rows: window_end_ms,auction,count.
- q7: per tumbling 10 s window the bid(s) with the highest price. Rows:
  window_end_ms,auction,bidder,price.
- q8: people who registered and opened an auction in the same tumbling 10 s
  window, a window join of two window aggregations. Rows:
  person_id,name,window_start_ms.
- q9: each auction's winning bid (highest price, then earliest, then lowest
  bidder) between its start and its expiry, a join and a top-1 rank. Rows:
  auction,seller,category,initial_bid,reserve,date_time,expires,bidder,price,bid_date_time.
- q11: bids per bidder in session windows with a 10 s gap (a session runs
  from its first bid to 10 s after its last, so its start and end are read
  off its bids' times). Rows: bidder,bids,session_start_ms,session_end_ms.
- q12: bids per bidder in tumbling 10 s windows of processing time
  (PROCTIME()), streaming mode only. Not deterministic: the totals per
  bidder equal Tidewater's, the windows do not. Rows: bidder,bids,
  window_start_ms,window_end_ms.
- q13: each bid with the value of `auction % 10000` in a bounded side
  input (keys 0-9999, the key as the value, as Tidewater's default), a
  regular join (Flink's Nexmark q13 is a lookup join; the filesystem
  connector cannot look up, and over a bounded table the rows are the
  same). Rows: auction,bidder,price,date_time,value.
- q15: bids, bidders and auctions per day, in total and per price rank (below
  10 000, below 1 000 000, the rest), with distinct counts. Rows: day,
  total_bids, rank1-3_bids, total_bidders, rank1-3_bidders, total_auctions,
  rank1-3_auctions.
- q16: q15's figures per channel and day, with the latest bid's HH:mm. Rows:
  channel,day,minute,... (as q15).
- q17: per auction and day, the bids in total and per rank, and the lowest,
  highest, mean (integer) and summed price.
- q18: each bidder's latest bid on each auction (equal times: the highest
  price). Rows: auction,bidder,price,date_time.
- q19: each auction's ten highest bids (equal prices: the earliest, then the
  lowest bidder) and their rank. Rows: auction,bidder,price,date_time,rank.
- q20: every bid on an auction of category 10 with its auction's fields, a
  regular join. Rows: auction,bidder,price,bid_date_time,seller,category,
  initial_bid,reserve,date_time,expires.
- q21: bids from a known channel with its number, others with their URL's
  channel_id, bids with neither dropped. Rows: auction,bidder,price,
  channel,channel_id.
- q22: each bid with the 3rd-5th parts of its URL split at `/`. Rows:
  auction,bidder,price,channel,dir1,dir2,dir3.
Throughput settings as in flink_bids.py (object reuse, mini-batch, two-phase
aggregation); --untuned for Flink's defaults.
"""
import argparse, csv, functools, os, shutil, tempfile, time
from pyflink.table import EnvironmentSettings, TableEnvironment

WSTART = "CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 1000"
WEND = WSTART.replace("window_start", "window_end")

QUERIES = {
    "q0": "SELECT auction, bidder, price, date_time FROM bid",
    "q1": "SELECT auction, bidder, price * 908 / 1000, date_time FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q5": f"""
        SELECT a.we, a.auction, a.cnt FROM (
          SELECT window_start, window_end, {WEND} AS we, auction, COUNT(*) AS cnt
          FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
          GROUP BY window_start, window_end, auction) a
        JOIN (
          SELECT ws, wend, MAX(cnt) AS maxc FROM (
            SELECT window_start AS ws, window_end AS wend, COUNT(*) AS cnt
            FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
            GROUP BY window_start, window_end, auction) GROUP BY ws, wend) m
        ON a.window_start = m.ws AND a.window_end = m.wend AND a.cnt >= m.maxc""",
    "q7": f"""
        SELECT b.we, b.auction, b.bidder, b.price FROM (
          SELECT window_start, window_end, {WEND} AS we, auction, bidder, price
          FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))) b
        JOIN (
          SELECT window_start, window_end, MAX(price) AS maxp
          FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))
          GROUP BY window_start, window_end) m
        ON b.window_start = m.window_start AND b.window_end = m.window_end AND b.price = m.maxp""",
    "q12": """
        SELECT bidder, COUNT(*) AS bids,
          UNIX_TIMESTAMP(CAST(window_start AS STRING)) * 1000, UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000
        FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
        GROUP BY bidder, window_start, window_end""",
    "q13": """
        SELECT B.auction, B.bidder, B.price, B.date_time, S.`value`
        FROM bid AS B JOIN side_input AS S ON MOD(B.auction, 10000) = S.key""",
    "q21": """
        SELECT auction, bidder, price, channel,
          CASE LOWER(channel) WHEN 'apple' THEN '0' WHEN 'google' THEN '1' WHEN 'facebook' THEN '2'
            WHEN 'baidu' THEN '3' ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END AS channel_id
        FROM bid
        WHERE LOWER(channel) IN ('apple', 'google', 'facebook', 'baidu')
          OR REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) IS NOT NULL""",
    "q22": """
        SELECT auction, bidder, price, channel,
          SPLIT_INDEX(url, '/', 3), SPLIT_INDEX(url, '/', 4), SPLIT_INDEX(url, '/', 5)
        FROM bid""",
    "q3": """
        SELECT P.name, P.city, P.state, A.id
        FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
        WHERE A.category = 10 AND (LOWER(P.state) = 'or' OR LOWER(P.state) = 'id' OR LOWER(P.state) = 'ca')""",
    "q8": f"""
        SELECT P.id, P.name, {WSTART.replace('window_start', 'P.window_start')} AS starttime
        FROM (
          SELECT id, name, window_start, window_end
          FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(ts), INTERVAL '10' SECOND))
          GROUP BY id, name, window_start, window_end) P
        JOIN (
          SELECT seller, window_start, window_end
          FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(ts), INTERVAL '10' SECOND))
          GROUP BY seller, window_start, window_end) A
        ON P.id = A.seller AND P.window_start = A.window_start AND P.window_end = A.window_end""",
    "q4": """
        SELECT Q.category, AVG(Q.final)
        FROM (
          SELECT MAX(B.price) AS final, A.category
          FROM auction AS A, bid AS B
          WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
          GROUP BY A.id, A.category) Q
        GROUP BY Q.category""",
    "q9": """
        SELECT id, seller, category, initial_bid, reserve, date_time, expires, bidder, price, bid_date_time
        FROM (
          SELECT A.id, A.seller, A.category, A.initial_bid, A.reserve, A.date_time, A.expires,
            B.bidder, B.price, B.date_time AS bid_date_time,
            ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC, B.bidder ASC) AS rownum
          FROM auction AS A, bid AS B
          WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires)
        WHERE rownum <= 1""",
    "q11": """
        SELECT bidder, COUNT(*) AS bids, MIN(date_time) AS session_start, MAX(date_time) + 10000 AS session_end
        FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(ts), INTERVAL '10' SECOND))
        GROUP BY bidder, window_start, window_end""",
}

DAY = "DATE_FORMAT(CAST(ts AS TIMESTAMP(3)), 'yyyy-MM-dd')"
RANKS = ("price < 10000", "price >= 10000 AND price < 1000000", "price >= 1000000")


def ranked(count):
    """`count` in total and filtered by each price rank."""
    return ", ".join([count] + [f"{count} FILTER (WHERE {r})" for r in RANKS])


DAY_STATS = ", ".join(ranked(c) for c in ("COUNT(*)", "COUNT(DISTINCT bidder)", "COUNT(DISTINCT auction)"))
QUERIES.update({
    "q15": f"SELECT {DAY} AS `day`, {DAY_STATS} FROM bid GROUP BY {DAY}",
    "q16": f"""
        SELECT channel, {DAY} AS `day`, MAX(DATE_FORMAT(CAST(ts AS TIMESTAMP(3)), 'HH:mm')) AS `minute`, {DAY_STATS}
        FROM bid GROUP BY channel, {DAY}""",
    "q17": f"""
        SELECT auction, {DAY} AS `day`, {ranked("COUNT(*)")}, MIN(price), MAX(price), AVG(price), SUM(price)
        FROM bid GROUP BY auction, {DAY}""",
    "q18": """
        SELECT auction, bidder, price, date_time FROM (
          SELECT auction, bidder, price, date_time,
            ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC, price DESC) AS rownum
          FROM bid)
        WHERE rownum <= 1""",
    "q19": """
        SELECT auction, bidder, price, date_time, rank_number FROM (
          SELECT auction, bidder, price, date_time,
            ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, date_time ASC, bidder ASC) AS rank_number
          FROM bid)
        WHERE rank_number <= 10""",
    "q20": """
        SELECT B.auction, B.bidder, B.price, B.date_time AS bid_date_time, A.seller, A.category,
          A.initial_bid, A.reserve, A.date_time, A.expires
        FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
        WHERE A.category = 10""",
})

# Queries Flink cannot run in batch mode (unaligned windows).
STREAMING_ONLY = {"q11", "q12"}

# The bid and auction fields each query reads (Flink's JSON format converts
# nothing else).
WINNING_BIDS = "auction BIGINT, bidder BIGINT, price BIGINT, date_time BIGINT"
TEXTS = WINNING_BIDS + ", channel STRING, url STRING"
BID_FIELDS = {"q0": WINNING_BIDS, "q1": WINNING_BIDS, "q2": "auction BIGINT, price BIGINT, date_time BIGINT",
              "q5": "auction BIGINT, date_time BIGINT", "q7": WINNING_BIDS, "q12": "bidder BIGINT, date_time BIGINT",
              "q13": WINNING_BIDS, "q21": TEXTS, "q22": TEXTS,
              "q3": "date_time BIGINT", "q4": WINNING_BIDS, "q8": "date_time BIGINT", "q9": WINNING_BIDS,
              "q11": "bidder BIGINT, date_time BIGINT", "q15": WINNING_BIDS, "q16": WINNING_BIDS + ", channel STRING",
              "q17": "auction BIGINT, price BIGINT, date_time BIGINT", "q18": WINNING_BIDS, "q19": WINNING_BIDS,
              "q20": WINNING_BIDS}
AUCTIONS = "id BIGINT, date_time BIGINT, seller BIGINT, category BIGINT"
CLOSING = AUCTIONS + ", initial_bid BIGINT, reserve BIGINT, expires BIGINT"
AUCTION_FIELDS = {"q4": CLOSING, "q9": CLOSING, "q20": CLOSING}

TUNED = {
    "pipeline.object-reuse": "true",
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "1 s",
    "table.exec.mini-batch.size": "5000",
    "table.optimizer.agg-phase-strategy": "TWO_PHASE",
}

# Only the fields the queries read are declared (Flink's JSON format then
# converts nothing else), as Tidewater skims the free text (decode_skimmed).
EVENTS = """
    CREATE TABLE events (
      Person ROW<id BIGINT, name STRING, city STRING, state STRING, date_time BIGINT>,
      Auction ROW<{auction}>,
      Bid ROW<{bid}>,
      ts AS TO_TIMESTAMP_LTZ(COALESCE(Person.date_time, Auction.date_time, Bid.date_time), 3),{proctime}
      WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
    ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')"""

PERSON_VIEW = """CREATE VIEW person AS SELECT Person.id AS id, Person.name AS name, Person.city AS city,
    Person.state AS state, ts FROM events WHERE Person.id IS NOT NULL"""


def view(name, row, fields, proctime=False):
    """A view of one kind of event with the fields declared for it."""
    names = [f.split()[0] for f in fields.split(",")]
    cols = ", ".join(f"{row}.{n} AS {n}" for n in names)
    more = ", p_time" if proctime else ""
    return f"CREATE VIEW {name} AS SELECT {cols}, ts{more} FROM events WHERE {row}.date_time IS NOT NULL"


def side_input(te, directory):
    """q13's side input: keys 0-9999, each with itself as the value (Tidewater's default)."""
    path = os.path.join(directory, "side_input.csv")
    with open(path, "w") as f:
        f.writelines(f"{k},{k}\n" for k in range(10000))
    te.execute_sql(f"""CREATE TABLE side_input (key BIGINT, `value` STRING)
        WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')""")


def compare_rows(a, b):
    """Tidewater's `--sorted` order (connectors/src/file/sink.rs, compare_rows):
    field by field, as numbers where both fields are numbers, as text otherwise."""
    for x, y in zip(a.split(","), b.split(",")):
        try:
            x, y = float(x), float(y)
        except ValueError:
            pass
        if x != y:
            return -1 if x < y else 1
    return (a.count(",") > b.count(",")) - (a.count(",") < b.count(","))


def jvm_peak_rss_mb():
    """Peak RSS of the PyFlink JVM (a child that Python never reaps, so `time -v` misses it)."""
    peak = 0
    try:
        kids = " ".join(open(f"/proc/self/task/{t}/children").read() for t in os.listdir("/proc/self/task")).split()
        for pid in kids:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM"):
                    peak = max(peak, int(line.split()[1]) // 1024)
    except OSError:
        pass
    return peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--query", required=True, choices=sorted(QUERIES))
    ap.add_argument("--input", required=True)
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--sink", choices=["file", "blackhole"], default="file")
    ap.add_argument("--out")
    ap.add_argument("--untuned", action="store_true", help="Flink defaults, without TUNED")
    a = ap.parse_args()
    t0 = time.time()
    # Flink runs session windows and processing time in streaming mode only:
    # q11's and q12's file output comes from a streaming job too (its file
    # sink commits at the input's end).
    batch = a.sink == "file" and a.query not in STREAMING_ONLY
    te = TableEnvironment.create(
        EnvironmentSettings.in_batch_mode() if batch else EnvironmentSettings.in_streaming_mode())
    cfg = te.get_config()
    cfg.set("parallelism.default", str(a.parallelism))
    cfg.set("table.local-time-zone", "UTC")
    if not a.untuned:
        for k, v in TUNED.items():
            cfg.set(k, v)
    bids, auctions = BID_FIELDS[a.query], AUCTION_FIELDS.get(a.query, AUCTIONS)
    proctime = a.query == "q12"
    te.execute_sql(EVENTS.format(path=os.path.abspath(a.input), bid=bids, auction=auctions,
                                 proctime="\n      p_time AS PROCTIME()," if proctime else ""))
    te.execute_sql(PERSON_VIEW)
    te.execute_sql(view("auction", "Auction", auctions))
    te.execute_sql(view("bid", "Bid", bids, proctime))
    scratch = tempfile.mkdtemp()
    if a.query == "q13":
        side_input(te, scratch)
    q = QUERIES[a.query]
    schema = te.sql_query(q).get_schema()
    decl = ", ".join(f"`{c}` {t}" for c, t in zip(schema.get_field_names(), schema.get_field_data_types()))
    if a.sink == "blackhole":
        te.execute_sql(f"CREATE TABLE sink ({decl}) WITH ('connector' = 'blackhole')")
        t1 = time.time()
        te.execute_sql(f"INSERT INTO sink {q}").wait()
        t2 = time.time()
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"query={a.query} p={a.parallelism} setup_s={t1-t0:.2f} run_s={t2-t1:.2f} jvm_peak_rss_mb={jvm_peak_rss_mb()}")
        return
    outdir = os.path.abspath(a.out) + ".parts"
    te.execute_sql(f"CREATE TABLE sink ({decl}) WITH ('connector' = 'filesystem', 'path' = '{outdir}', 'format' = 'csv')")
    t1 = time.time()
    te.execute_sql(f"INSERT INTO sink {q}").wait()
    t2 = time.time()
    rows = []
    for root, _, files in os.walk(outdir):
        for fn in files:
            if not fn.startswith("."):
                with open(os.path.join(root, fn), newline="") as f:
                    # Flink quotes fields with spaces; Tidewater writes them bare
                    rows += [",".join(r) for r in csv.reader(f) if r]
    rows.sort(key=functools.cmp_to_key(compare_rows))
    with open(a.out, "w") as f:
        f.writelines(r + "\n" for r in rows)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"query={a.query} p={a.parallelism} rows={len(rows)} run_s={t2-t1:.2f} jvm_peak_rss_mb={jvm_peak_rss_mb()}")


if __name__ == "__main__":
    main()
