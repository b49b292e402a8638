#!/usr/bin/env bash
# benches/peers.sh ENGINE QUERY FILE: one timed run of Tidewater (release bid_windows), Flink, Bytewax or
# Pathway (the runners in ../shared/peers, installed by their setup scripts into $VENVS, default /tmp/peers:
#   ../shared/peers/setup-flink.sh /tmp/peers/flink-venv; ../shared/peers/setup-bytewax.sh /tmp/peers/bytewax-venv;
#   ../shared/peers/setup-pathway.sh /tmp/peers/pathway-venv)
# on a bid CSV (`tidewater generate --events N --output FILE`), or, for the Nexmark queries q0-q5, q7-q9, q11-q13 and q15-q22,
# Tidewater (release nexmark) or Flink (benches/peers/flink_nexmark.py) on JSON-lines events
# (`tidewater generate --what events ...`).
# Prints engine,query,records,wall_s,process_cpu_s,machine_cpu_s,peak_rss_mib.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$root/../shared/peers}
venvs=${VENVS:-/tmp/peers}
engine=$1; query=$2; file=$3
[ -r "$file" ] || { echo "cannot read $file" >&2; exit 2; }
records=$(wc -l < "$file")
out=$(mktemp -d)
case $engine/$query in
  # Both engines drop the results (Flink's blackhole connector), which
  # otherwise are most of the work of the stateless queries.
  tidewater/q*) cmd=("$root/target/release/examples/nexmark" --query "$query" --input "$file" --output blackhole: -w 1) ;;
  flink/q*) cmd=("$venvs/flink-venv/bin/python" "$root/benches/peers/flink_nexmark.py" --query "$query" --input "$file" --parallelism 1 --sink blackhole) ;;
  tidewater/*) cmd=("$root/target/release/examples/bid_windows" --query "$query" --input "$file" --output "$out/o" -w 1) ;;
  flink/*) cmd=("$venvs/flink-venv/bin/python" "$peers/flink_bids.py" --query "$query" --input "$file" --parallelism 1 --sink blackhole) ;;
  bytewax/q*|pathway/q*) echo "no Nexmark $query runner for $engine (tidewater, flink)" >&2; exit 2 ;;
  bytewax/*) cmd=("$venvs/bytewax-venv/bin/python" "$peers/bytewax_bids.py" --query "$query" --input "$file" --parallelism 1 --sink blackhole) ;;
  pathway/*) cmd=("$venvs/pathway-venv/bin/python" "$peers/pathway_bids.py" --query "$query" --input "$file" --parallelism 1 --sink blackhole) ;;
  *) echo "unknown engine $engine (tidewater, flink, bytewax, pathway)" >&2; exit 2 ;;
esac
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
before=$(busy)
/usr/bin/time -f "TIME %e %U %S %M" "${cmd[@]}" > "$out/stdout" 2> "$out/stderr"
rc=$?
# PyFlink's JVM outlives its Python process by a few seconds, busy shutting
# down: its CPU is Flink's, not the next run's.
for _ in $(seq 60); do pgrep -f pyflink > /dev/null || break; sleep 1; done
after=$(busy)
machine_cpu=$(echo "scale=2; ($after - $before) / $(getconf CLK_TCK)" | bc)
read -r _ wall user sys rss < <(grep '^TIME' "$out/stderr")
jvm=$(grep -o 'jvm_peak_rss_mb=[0-9.]*' "$out/stdout" "$out/stderr" 2>/dev/null | head -1 | cut -d= -f2)
rss_mb=$(( rss / 1024 ))
[ -n "$jvm" ] && rss_mb=$jvm
cpu=$(echo "$user + $sys" | bc)
echo "$engine,$query,$records,$wall,$cpu,$machine_cpu,$rss_mb,rc=$rc"
rm -rf "$out"
