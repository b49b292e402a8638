#!/usr/bin/env bash
# kafka_nexmark: the Nexmark generator's events -> topic `events` (JSON lines)
# -> q5 (hot items) and q7 (highest bid) in event time -> topics `q5`, `q7`,
# exactly once (Kafka transactions committed with checkpoints; read with
# read_committed), against a broker this script starts (and stops) in a
# temporary directory.
#
#   examples/kafka/nexmark.sh [EVENTS]      (default: 200000)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200000}
dir=$(mktemp -d)
trap 'tests/kafka/broker stop "$dir/broker"; rm -rf "$dir"' EXIT

cargo build --release --quiet --example nexmark --bin tidewater
broker=$(tests/kafka/broker start "$dir/broker")
echo "broker at $broker" >&2
libs=${TIDEWATER_KAFKA_CACHE:-$HOME/.cache/tidewater/kafka-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/kafka/pom.xml)}/libs
kafka() { java -cp "$libs/*" "$@" 2>/dev/null; }

for topic in events q5 q7; do
  kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$broker" --create --topic "$topic" --partitions 3 >&2
done
target/release/tidewater generate --events "$n" --what events --output "$dir/events.jsonl"
kafka org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$broker" --topic events < "$dir/events.jsonl"

for query in q5 q7; do
  target/release/examples/nexmark --query "$query" -w 2 \
    --input "kafka://$broker/events?format=json&bounded=true" \
    --output "kafka://$broker/$query?delivery=exactly-once" \
    --checkpoint-dir "$dir/ck-$query" --checkpoint-interval 1s
  echo "$query (first rows by window):" >&2
  kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$broker" --topic "$query" \
    --isolation-level read_committed --from-beginning --timeout-ms 5000 | sort -t, -k1,1n | head -5
done
