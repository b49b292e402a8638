//! Kafka, through `rdkafka` (its bundled librdkafka): a source whose
//! partitions are spread over every worker of every process, each with its
//! own watermark and its offsets in checkpoints, and a sink that is at least
//! once (flushes at every checkpoint) or exactly once (a Kafka transaction
//! per completed checkpoint). Inputs and outputs are named by URIs (see
//! [`KafkaUri`]).

mod exactly_once;
mod record;
mod sink;
mod source;
pub mod transactions;
mod uri;

pub use record::Changelog;
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use uri::{AvroSpec, Delivery, EventTimeFrom, KafkaUri, Start};
