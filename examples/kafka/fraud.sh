#!/usr/bin/env bash
# kafka_fraud: generated card transactions -> topic `transactions` -> the fraud
# example (a keyed process function with timers) -> topic `alerts`, against a
# broker this script starts (and stops) in a temporary directory.
#
#   examples/kafka/fraud.sh [TRANSACTIONS]      (default: 50000)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50000}
dir=$(mktemp -d)
trap 'tests/kafka/broker stop "$dir/broker"; rm -rf "$dir"' EXIT

cargo build --release --quiet --example fraud
broker=$(tests/kafka/broker start "$dir/broker")
echo "broker at $broker" >&2
libs=${TIDEWATER_KAFKA_CACHE:-$HOME/.cache/tidewater/kafka-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/kafka/pom.xml)}/libs
kafka() { java -cp "$libs/*" "$@" 2>/dev/null; }

kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$broker" --create --topic transactions --partitions 3 >&2
kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$broker" --create --topic alerts --partitions 1 >&2
# card,amount_cents,time_ms: 500 cards, a tenth of the amounts small, a tenth large
python3 - "$n" <<'PY' | kafka org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$broker" --topic transactions
import random, sys
random.seed(1)
t = 1767225600000
for _ in range(int(sys.argv[1])):
    t += random.randint(0, 400)
    r = random.random()
    amount = random.randint(0, 99) if r < 0.1 else random.randint(50001, 150000) if r < 0.2 else random.randint(100, 49999)
    print(f"{random.randint(0, 499)},{amount},{t}")
PY

target/release/examples/fraud -w 2 \
  --input "kafka://$broker/transactions?bounded=true" --output "kafka://$broker/alerts"

echo "alerts (card,small_time_ms,large_time_ms,large_amount_cents):" >&2
kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$broker" --topic alerts \
  --from-beginning --timeout-ms 5000 | sort -t, -k2,2n | head -20
