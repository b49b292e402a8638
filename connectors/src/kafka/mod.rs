//! Kafka, through `rdkafka` (its bundled librdkafka): a source whose
//! partitions are spread over every worker of every process, each with its
//! own watermark and its offsets in checkpoints, and an at-least-once sink
//! that flushes at every checkpoint. Inputs and outputs are named by URIs
//! (see [`KafkaUri`]).

mod sink;
mod source;
mod uri;

pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use uri::{KafkaUri, Start};
