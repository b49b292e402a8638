//! The file sink: one file per worker, or one merged file sorted at the end
//! of a bounded job.
//!
//! Per-worker mode writes `DIR/part-<worker>.<ext>` as results arrive. Sorted
//! mode encodes rows on every worker, sends them to worker 0 (of all
//! processes), and when the input is exhausted writes them, sorted column by
//! column (numerically where both values are numbers), to one file via a
//! temporary name and a rename. Sorted mode suits bounded jobs only: it holds
//! the whole result until the end.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tidewater_operators::{Context, EventStream, EventTime, Metrics};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::Stream;

use crate::format::Format;

/// Writes a stream's records (not their event times) to files.
#[derive(Clone, Debug)]
pub struct FileSink {
    path: PathBuf,
    format: Format,
    sorted: bool,
}

impl FileSink {
    /// Writes to `path`: a directory of per-worker files, or with
    /// [`FileSink::sorted`] one file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        FileSink {
            format: Format::from_path(&path),
            path,
            sorted: false,
        }
    }

    /// The format (default: by extension, CSV unless `.json`/`.jsonl`).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// One file holding the whole result, sorted, written at the end.
    pub fn sorted(mut self, sorted: bool) -> Self {
        self.sorted = sorted;
        self
    }

    /// Attaches the sink to `stream`; the sink reports progress to `ctx`'s probe.
    pub fn write<D: Serialize + 'static>(self, stream: EventStream<'_, D>, ctx: &Context) {
        if self.sorted {
            self.write_sorted(stream, ctx)
        } else {
            self.write_parts(stream, ctx)
        }
    }

    fn write_parts<D: Serialize + 'static>(self, stream: EventStream<'_, D>, ctx: &Context) {
        let index = stream.scope().index();
        let path = self
            .path
            .join(format!("part-{index:05}.{}", self.format.extension()));
        let format = self.format;
        let dir = self.path;
        let ctx2 = ctx.clone();
        stream
            .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Pipeline,
                "FileSink",
                move |_cap, _info| {
                    let mut file = fs::create_dir_all(&dir)
                        .and_then(|()| File::create(&path))
                        .map(|f| BufWriter::with_capacity(1 << 20, f))
                        .map_err(|e| ctx2.fail(format!("cannot create {}: {e}", path.display())))
                        .ok();
                    let mut buffer = Vec::new();
                    move |(input, frontier), _output| {
                        let Some(out) = file.as_mut() else {
                            input.for_each(|_, _| {});
                            return;
                        };
                        let mut wrote = false;
                        input.for_each(|_cap, data| {
                            buffer.clear();
                            let encoded = format
                                .encode_all(data.iter().map(|(d, _)| d), &mut buffer)
                                .and_then(|()| out.write_all(&buffer).map_err(|e| e.to_string()));
                            if let Err(e) = encoded {
                                ctx2.fail(format!("cannot write {}: {e}", path.display()));
                            }
                            Metrics::add(&ctx2.metrics().records_out, data.len() as u64);
                            wrote = true;
                        });
                        if wrote || frontier.is_empty() {
                            if let Err(e) = out.flush() {
                                ctx2.fail(format!("cannot write {}: {e}", path.display()));
                            }
                        }
                    }
                },
            )
            .probe_with(ctx.probe());
    }

    fn write_sorted<D: Serialize + 'static>(self, stream: EventStream<'_, D>, ctx: &Context) {
        let format = self.format;
        let encoder = ctx.clone();
        let rows: Stream<'_, EventTime, Vec<String>> = stream
            .unary::<CapacityContainerBuilder<Vec<String>>, _, _, _>(
                Pipeline,
                "EncodeRows",
                move |_cap, _info| {
                    let mut buffer = Vec::new();
                    move |input, output| {
                        input.for_each(|cap, data| {
                            buffer.clear();
                            if let Err(e) =
                                format.encode_all(data.iter().map(|(d, _)| d), &mut buffer)
                            {
                                encoder.fail(format!("cannot encode a result row: {e}"));
                            }
                            let text = String::from_utf8_lossy(&buffer);
                            output
                                .session(&cap)
                                .give_iterator(text.lines().map(str::to_owned));
                        });
                    }
                },
            );
        let path = self.path;
        let ctx2 = ctx.clone();
        let writer = rows.scope().index() == 0;
        rows.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_row: &String| 0),
            "SortedFileSink",
            move |_cap, _info| {
                let mut rows: Vec<String> = Vec::new();
                let mut done = false;
                move |(input, frontier), _output| {
                    input.for_each(|_cap, data| rows.append(data));
                    if frontier.is_empty() && !done && writer {
                        done = true;
                        Metrics::add(&ctx2.metrics().records_out, rows.len() as u64);
                        if let Err(e) = write_sorted_file(&path, std::mem::take(&mut rows)) {
                            ctx2.fail(format!("cannot write {}: {e}", path.display()));
                        }
                    }
                }
            },
        )
        .probe_with(ctx.probe());
    }
}

/// Sorts rows column by column and writes them to `path` atomically.
fn write_sorted_file(path: &Path, mut rows: Vec<String>) -> std::io::Result<()> {
    rows.sort_unstable_by(|a, b| compare_rows(a, b));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp-sorting");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        for row in &rows {
            out.write_all(row.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Compares two CSV rows field by field: numerically where both fields are
/// numbers, as text otherwise.
pub fn compare_rows(a: &str, b: &str) -> Ordering {
    let mut left = a.split(',');
    let mut right = b.split(',');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<i128>(), y.parse::<i128>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => match (x.parse::<f64>(), y.parse::<f64>()) {
                        (Ok(x), Ok(y)) => x.total_cmp(&y),
                        _ => x.cmp(y),
                    },
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sort_numerically_column_by_column() {
        let mut rows = vec!["10,2", "9,30", "9,4", "a,1", "-1,0", "9,4.5"];
        rows.sort_by(|a, b| compare_rows(a, b));
        assert_eq!(rows, vec!["-1,0", "9,4", "9,4.5", "9,30", "10,2", "a,1"]);
    }
}
