#!/usr/bin/env bash
# benches/peers-table.sh SMALL LARGE [QUERIES] [ENGINES]: every engine on two bid files of different sizes
# (`tidewater generate --events N --output FILE`), one run after another through benches/peers.sh, and a
# Markdown table of the marginal throughput: (bids in LARGE - bids in SMALL) / (CPU-s on LARGE - CPU-s on
# SMALL), which takes out start-up, planning and JIT (about 21 CPU-s for Flink). CPU is the whole machine's
# busy time during the run (the Flink JVM is a child `time` does not see), so run it on an idle machine.
# Defaults: QUERIES="window-count hot-items", ENGINES="tidewater flink pathway bytewax". Build first:
# cargo build --release --example bid_windows --example nexmark. The Nexmark queries (QUERIES="q0 q1 ... q22", not q6, q10 or q14,
# ENGINES="tidewater flink") read JSON-lines event files (`tidewater generate --what events ...`) instead,
# and "bids" are then events of every kind.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
small=$1; large=$2
queries=${3:-window-count hot-items}
engines=${4:-tidewater flink pathway bytewax}
echo "| query | engine | small: bids / wall s / CPU s | large: bids / wall s / CPU s | marginal bids per CPU-s | peak RSS MiB (large) | Tidewater's marginal rate over this |"
echo "|---|---|---|---|---|---|---|"
for q in $queries; do
  ours=""
  for e in $engines; do
    a=$("$here/peers.sh" "$e" "$q" "$small"); b=$("$here/peers.sh" "$e" "$q" "$large")
    IFS=, read -r _ _ n1 w1 _ c1 _ rc1 <<< "$a"; IFS=, read -r _ _ n2 w2 _ c2 r2 rc2 <<< "$b"
    if [ "$rc1" != rc=0 ] || [ "$rc2" != rc=0 ]; then
      # rc=137 is a SIGKILL, usually the kernel's out-of-memory killer.
      echo "| $q | $e | $n1 / $w1 / $c1 ($rc1) | $n2 / $w2 / $c2 ($rc2) | - | $r2 | - |"
      continue
    fi
    rate=$(echo "($n2 - $n1) / ($c2 - $c1)" | bc -l)
    [ -z "$ours" ] && ours=$rate
    printf "| %s | %s | %s / %s / %s | %s / %s / %s | %.2f M | %s | %.1fx |\n" \
      "$q" "$e" "$n1" "$w1" "$c1" "$n2" "$w2" "$c2" "$(echo "$rate / 1000000" | bc -l)" "$r2" \
      "$(echo "$ours / $rate" | bc -l)"
  done
done
