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
use tidewater_operators::checkpoint::part::{decode, encode};
use tidewater_operators::checkpoint::{Barrier, Snapshots, Step};
use tidewater_operators::{Context, EventStream, EventTime, Metrics};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::Operator;
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
        let scope = stream.scope();
        let (index, peers) = (scope.index(), scope.peers());
        let (snapshots, control) = Snapshots::attach(Some(ctx), scope, "file-sink").unzip();
        let mut epochs = Epochs::new(
            self.path.clone(),
            index,
            self.format.extension(),
            snapshots.is_some(),
        );
        if let Some(c) = snapshots.as_ref().and_then(|s| s.restored_at()) {
            if let Err(e) = epochs.recover(c, index, peers) {
                ctx.fail(format!(
                    "cannot recover the output in {}: {e}",
                    self.path.display()
                ));
            }
        }
        let format = self.format;
        let fail = ctx.clone();
        let mut builder = OperatorBuilder::new("FileSink".to_owned(), scope);
        let info = builder.operator_info();
        let activator = scope.activator_for(info.address);
        let mut input = builder.new_input(stream, Pipeline);
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (_output, done) = builder.new_output::<Vec<()>>();
        // Stays scheduled while output awaits its checkpoint's completion.
        builder.build_reschedule(move |_caps| {
            let mut barrier: Barrier<Vec<(D, EventTime)>> = Barrier::default();
            let mut buffer = Vec::new();
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
                let data_frontier = frontiers[0].frontier().first().copied();
                let mut write = |batch: Vec<(D, EventTime)>, epochs: &mut Epochs| {
                    buffer.clear();
                    let written = format
                        .encode_all(batch.iter().map(|(d, _)| d), &mut buffer)
                        .and_then(|()| epochs.write(&buffer).map_err(|e| e.to_string()));
                    if let Err(e) = written {
                        fail.fail(format!("cannot write to {}: {e}", epochs.dir.display()));
                    }
                    Metrics::add(&fail.metrics().records_out, batch.len() as u64);
                };
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(batch) =
                        barrier.accept(time, std::mem::take(data), control_frontier)
                    {
                        write(batch, &mut epochs);
                    }
                });
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => {
                            batches.into_iter().for_each(|b| write(b, &mut epochs))
                        }
                        Step::Snapshot(c) => {
                            let result = epochs.precommit(c);
                            if let Some(snapshots) = &snapshots {
                                match result {
                                    Ok(()) => snapshots.write(c, Vec::new(), Vec::new()),
                                    Err(e) => fail.fail(format!(
                                        "cannot pre-commit output for checkpoint {c}: {e}"
                                    )),
                                }
                            }
                        }
                    }
                }
                if data_frontier.is_none() && control_frontier.is_none() && barrier.is_idle() {
                    if let Err(e) = epochs.finish() {
                        fail.fail(format!(
                            "cannot finish the output in {}: {e}",
                            epochs.dir.display()
                        ));
                    }
                } else if let Err(e) = epochs.flush() {
                    fail.fail(format!("cannot write to {}: {e}", epochs.dir.display()));
                }
                if let Some(snapshots) = &snapshots {
                    epochs.commit_complete(|c| snapshots.is_complete(c));
                    if epochs.has_pending() {
                        activator.activate_after(std::time::Duration::from_millis(20));
                    }
                }
                epochs.has_pending()
            }
        });
        ctx.attach(done);
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
        let scope = rows.scope();
        let index = scope.index();
        let (snapshots, control) = Snapshots::attach(Some(ctx), scope, "sorted-sink").unzip();
        let path = self.path;
        let fail = ctx.clone();
        let writer = index == 0;
        let mut builder = OperatorBuilder::new("SortedFileSink".to_owned(), scope);
        let mut input = builder.new_input(rows, Exchange::new(|_row: &String| 0));
        let mut control_input = control.map(|c| builder.new_input(c, Pipeline));
        let (_output, done) = builder.new_output::<Vec<()>>();
        builder.build(move |_caps| {
            let mut rows: Vec<String> = Vec::new();
            if let Some(snapshots) = &snapshots {
                if writer && snapshots.restored_at().is_some() {
                    for part in snapshots.restored_parts() {
                        match decode::<Vec<String>>(&part.global) {
                            Ok(mut restored) => rows.append(&mut restored),
                            Err(e) => fail.fail(format!("cannot restore the sorted sink: {e}")),
                        }
                    }
                }
            }
            let mut barrier: Barrier<Vec<String>> = Barrier::default();
            let mut written = false;
            move |frontiers| {
                if let Some(control) = control_input.as_mut() {
                    control.for_each(|_, data| data.drain(..).for_each(|c| barrier.announce(c)));
                }
                let control_frontier = frontiers.get(1).and_then(|f| f.frontier().first().copied());
                let data_frontier = frontiers[0].frontier().first().copied();
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a message under a capability");
                    if let Some(mut batch) =
                        barrier.accept(time, std::mem::take(data), control_frontier)
                    {
                        rows.append(&mut batch);
                    }
                });
                for step in barrier.steps(data_frontier, control_frontier) {
                    match step {
                        Step::Data(batches) => {
                            batches.into_iter().for_each(|mut b| rows.append(&mut b))
                        }
                        Step::Snapshot(c) => {
                            if let Some(snapshots) = &snapshots {
                                snapshots.write(c, Vec::new(), encode(&rows));
                            }
                        }
                    }
                }
                // The end: no data, no checkpoint to come, nothing stashed. A
                // worker's control streams end one by one, so results can
                // still be stashed here after the data frontier has gone.
                let ended =
                    data_frontier.is_none() && control_frontier.is_none() && barrier.is_idle();
                if ended && writer && !written {
                    written = true;
                    Metrics::add(&fail.metrics().records_out, rows.len() as u64);
                    if let Err(e) = write_sorted_file(&path, rows.clone()) {
                        fail.fail(format!("cannot write {}: {e}", path.display()));
                    }
                }
            }
        });
        ctx.attach(done);
    }
}

/// The output files of one worker of a per-worker file sink.
///
/// Without checkpoints: one file, `part-<worker>.<ext>`. With checkpoints:
/// records between two checkpoints go to `part-<worker>.<ext>.inprogress`;
/// at checkpoint `C` it is synced and renamed `part-<worker>-<C>.<ext>.pending`
/// and, once `C` is complete, `part-<worker>-<C>.<ext>`. The records after the
/// last checkpoint become `part-<worker>-final.<ext>` when the input ends.
struct Epochs {
    dir: PathBuf,
    index: usize,
    ext: &'static str,
    checkpointed: bool,
    file: Option<BufWriter<File>>,
    pending: Vec<EventTime>,
}

impl Epochs {
    fn new(dir: PathBuf, index: usize, ext: &'static str, checkpointed: bool) -> Self {
        Epochs {
            dir,
            index,
            ext,
            checkpointed,
            file: None,
            pending: Vec::new(),
        }
    }

    fn in_progress(&self) -> PathBuf {
        if self.checkpointed {
            self.dir
                .join(format!("part-{:05}.{}.inprogress", self.index, self.ext))
        } else {
            self.dir
                .join(format!("part-{:05}.{}", self.index, self.ext))
        }
    }

    fn committed(&self, c: EventTime) -> PathBuf {
        self.dir
            .join(format!("part-{:05}-{c:020}.{}", self.index, self.ext))
    }

    fn open(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        if self.file.is_none() {
            fs::create_dir_all(&self.dir)?;
            self.file = Some(BufWriter::with_capacity(
                1 << 20,
                File::create(self.in_progress())?,
            ));
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.open()?.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    /// Makes everything written so far durable as the output of checkpoint `c`.
    fn precommit(&mut self, c: EventTime) -> std::io::Result<()> {
        self.open()?;
        let file = self.file.take().expect("open");
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let mut pending = self.committed(c).into_os_string();
        pending.push(".pending");
        fs::rename(self.in_progress(), pending)?;
        self.pending.push(c);
        Ok(())
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes the output of complete checkpoints visible.
    fn commit_complete(&mut self, complete: impl Fn(EventTime) -> bool) {
        while let Some(&c) = self.pending.first() {
            if !complete(c) {
                break;
            }
            let target = self.committed(c);
            let mut pending = target.clone().into_os_string();
            pending.push(".pending");
            if let Err(e) = fs::rename(&pending, &target) {
                tracing::error!("cannot commit {}: {e}", target.display());
            }
            self.pending.remove(0);
        }
    }

    /// The input has ended: the rest of the output is final.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.file.is_none() && !self.checkpointed {
            self.open()?;
        }
        if let Some(file) = self.file.take() {
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            if self.checkpointed {
                let target = self
                    .dir
                    .join(format!("part-{:05}-final.{}", self.index, self.ext));
                fs::rename(self.in_progress(), target)?;
            }
        }
        Ok(())
    }

    /// After a restore from `c`: commits the pending output of checkpoints up
    /// to `c`, and removes everything written after `c`, for the old workers
    /// this worker stands in for (`old % peers == index`).
    fn recover(&mut self, c: EventTime, index: usize, peers: usize) -> std::io::Result<()> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(rest) = name.strip_prefix("part-") else {
                continue;
            };
            let Some(worker) = rest.get(..5).and_then(|w| w.parse::<usize>().ok()) else {
                continue;
            };
            if worker % peers != index {
                continue;
            }
            let epoch = rest.get(6..26).and_then(|e| e.parse::<EventTime>().ok());
            if name.ends_with(".inprogress") || rest[5..].starts_with("-final") {
                fs::remove_file(&path)?;
            } else if let Some(epoch) = epoch {
                if epoch > c {
                    fs::remove_file(&path)?;
                } else if let Some(target) = name.strip_suffix(".pending") {
                    fs::rename(&path, self.dir.join(target))?;
                }
            }
        }
        Ok(())
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
