//! The file source: lists its input files, splits them into partitions, and
//! builds an [`event_source`](crate::source::event_source) over the
//! partitions this worker owns.
//!
//! Partitioning does not depend on the number of workers, so neither do the
//! lateness decisions: line `n` (1-based) of file `f` belongs to partition
//! `(f, (n - 1) % P)` with `P = partitions_per_file`, and global partition
//! `f * P + p` is owned by worker `(f * P + p) % peers`. Each worker scans the
//! files it owns partitions of and decodes only its own lines, so all
//! partitions advance through event time together and the frontier moves
//! smoothly even over one large file.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use tidewater_operators::{Context, EventTime};
use timely::dataflow::Scope;

use super::reader::FileReader;
use crate::format::Format;
use crate::source::{event_source, SourceConfig, SourceStreams};

/// Errors in a file source's configuration.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    /// An input path could not be read.
    #[error("cannot read input {path}: {source}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The inputs hold no files.
    #[error("no input files in {0:?}")]
    Empty(Vec<PathBuf>),
}

/// A bounded source over one or more files (or directories of files).
///
/// ```no_run
/// use tidewater_connectors::{FileSource, SourceConfig};
/// use tidewater_operators::Context;
///
/// #[derive(serde::Deserialize)]
/// struct Bid { auction: u64, bidder: u64, price: u64, channel: String, date_time: u64 }
///
/// timely::execute_directly(|worker| {
///     let ctx = Context::default();
///     worker.dataflow(|scope| {
///         let bids = FileSource::new(["bids.csv"])
///             .build::<Bid, _>(scope, &ctx, SourceConfig::default(), |b| b.date_time)
///             .expect("readable input");
///         // bids.records: (Bid, event time) under the watermark
///     });
/// });
/// ```
#[derive(Clone, Debug)]
pub struct FileSource {
    paths: Vec<PathBuf>,
    format: Option<Format>,
    partitions_per_file: usize,
}

impl FileSource {
    /// Reads the given files; a directory stands for the files in it.
    pub fn new<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Self {
        FileSource {
            paths: paths.into_iter().map(|p| p.as_ref().to_owned()).collect(),
            format: None,
            partitions_per_file: 16,
        }
    }

    /// The format of every file (default: by extension, CSV unless `.json`/`.jsonl`).
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Logical partitions per file (default 16): the unit of watermarking and
    /// the most workers that can share one file.
    pub fn partitions_per_file(mut self, partitions: usize) -> Self {
        self.partitions_per_file = partitions.max(1);
        self
    }

    /// The input files, directories expanded, in a fixed order.
    pub fn files(&self) -> Result<Vec<PathBuf>, FileSourceError> {
        let mut files = Vec::new();
        for path in &self.paths {
            let unreadable = |source| FileSourceError::Unreadable {
                path: path.clone(),
                source,
            };
            let meta = std::fs::metadata(path).map_err(unreadable)?;
            if meta.is_dir() {
                let mut inside = Vec::new();
                for entry in std::fs::read_dir(path).map_err(unreadable)? {
                    let entry = entry.map_err(unreadable)?;
                    if entry.file_type().map_err(unreadable)?.is_file() {
                        inside.push(entry.path());
                    }
                }
                inside.sort();
                files.extend(inside);
            } else {
                files.push(path.clone());
            }
        }
        if files.is_empty() {
            return Err(FileSourceError::Empty(self.paths.clone()));
        }
        Ok(files)
    }

    /// Builds the source, decoding each line as a `T` in the configured
    /// format, with event time `event_time(&record)`.
    pub fn build<'scope, T, F>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
        event_time: F,
    ) -> Result<SourceStreams<'scope, T>, FileSourceError>
    where
        T: DeserializeOwned + 'static,
        F: Fn(&T) -> EventTime + 'static,
    {
        let files = self.files()?;
        let format = self.format.unwrap_or_else(|| Format::from_path(&files[0]));
        let mut decoder = format.decoder::<T>();
        self.build_filtered(
            scope,
            ctx,
            config,
            move |line| decoder.decode_bytes(line).map(Some),
            event_time,
        )
    }

    /// Builds the source with a decoder of line bytes that may pass over a
    /// line: `Ok(None)` is a well-formed line the job does not read, neither
    /// a record nor a dead letter (a projection pushed into the source, such
    /// as [`EventLines`](crate::nexmark::EventLines)); the decoder is the
    /// format, so [`format`](Self::format) does not apply.
    pub fn build_filtered<'scope, T, D, F>(
        self,
        scope: Scope<'scope, EventTime>,
        ctx: &Context,
        config: SourceConfig,
        decode: D,
        event_time: F,
    ) -> Result<SourceStreams<'scope, T>, FileSourceError>
    where
        T: 'static,
        D: FnMut(&[u8]) -> Result<Option<T>, String> + 'static,
        F: Fn(&T) -> EventTime + 'static,
    {
        let files = self.files()?;
        let reader = FileReader::open(
            &files,
            self.partitions_per_file,
            scope.index(),
            scope.peers(),
            decode,
            event_time,
        )
        .map_err(|(path, source)| FileSourceError::Unreadable { path, source })?;
        Ok(event_source(scope, "FileSource", ctx, config, reader))
    }
}
