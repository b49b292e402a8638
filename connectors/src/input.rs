//! Inputs named by strings: paths are files (or directories of files),
//! `kafka://...` a topic — the twin of [`crate::output::Output`].

use serde::de::DeserializeOwned;
use tidewater_operators::{Context, EventTime};
use timely::dataflow::Scope;

use crate::file::FileSource;
use crate::format::Format;
use crate::kafka::{KafkaSource, KafkaUri};
use crate::source::{SourceConfig, SourceStreams};

/// Files or a topic, chosen by the inputs' names.
#[derive(Clone, Debug)]
pub enum Input {
    /// Files or directories, read in `format`.
    Files(Vec<String>, Format),
    /// A topic (the format is the URI's).
    Kafka(Box<KafkaUri>),
}

impl Input {
    /// One `kafka://` address, or paths (checked now, so that a bad input
    /// fails before any worker starts) read in `format`.
    pub fn parse(names: &[String], format: Format) -> Result<Input, String> {
        match names {
            [one] if KafkaUri::is_kafka(one) => Ok(Input::Kafka(Box::new(one.parse()?))),
            _ if names.iter().any(|n| KafkaUri::is_kafka(n)) => {
                Err("a topic is read on its own, not with other inputs".to_owned())
            }
            _ => {
                FileSource::new(names).files().map_err(|e| e.to_string())?;
                Ok(Input::Files(names.to_vec(), format))
            }
        }
    }

    /// Builds the source: records of type `T` with event time `event_time`.
    pub fn build<'scope, T, F>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
        event_time: F,
    ) -> Result<SourceStreams<'scope, T>, String>
    where
        T: DeserializeOwned + 'static,
        F: Fn(&T) -> EventTime + 'static,
    {
        match self {
            Input::Files(paths, format) => FileSource::new(paths)
                .format(format)
                .build(scope, ctx, config, event_time)
                .map_err(|e| e.to_string()),
            Input::Kafka(uri) => KafkaSource::new(*uri).build(scope, ctx, config, event_time),
        }
    }
}
