#!/usr/bin/env bash
# kafka_wordcount: lines of a file -> topic `lines` -> wordcount -> topic `counts`,
# against a broker this script starts (and stops) in a temporary directory.
#
#   examples/kafka/wordcount.sh [TEXT_FILE]      (default: README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
text=${1:-README.md}
dir=$(mktemp -d)
trap 'tests/kafka/broker stop "$dir/broker"; rm -rf "$dir"' EXIT

cargo build --release --quiet --example wordcount --bin tidewater
broker=$(tests/kafka/broker start "$dir/broker")
echo "broker at $broker" >&2
libs=${TIDEWATER_KAFKA_CACHE:-$HOME/.cache/tidewater/kafka-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/kafka/pom.xml)}/libs
kafka() { java -cp "$libs/*" "$@" 2>/dev/null; }

kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$broker" --create --topic lines --partitions 2 >&2
kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$broker" --create --topic counts --partitions 1 >&2
grep -v '^[[:space:]]*$' "$text" | kafka org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$broker" --topic lines

target/release/examples/wordcount -w 2 \
  --input "kafka://$broker/lines?format=text&bounded=true" --output "kafka://$broker/counts"

kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$broker" --topic counts \
  --from-beginning --timeout-ms 5000 | sort -t, -k2,2nr -k1,1 | head -20
