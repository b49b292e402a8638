//! Reading the lines of the partitions one worker owns, decoding them, and
//! reporting malformed lines with their file and line number.
//!
//! A partition's position is the byte offset and line number its file's scan
//! has reached. A restored reader starts each file at the least position of
//! its partitions there and skips, per partition, the lines before that
//! partition's own position (after a rescale they may differ).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tidewater_operators::checkpoint::part::{decode, encode};
use tidewater_operators::EventTime;

use crate::source::{Batch, SourceReader};
use crate::DeadLetter;

struct OpenFile {
    path: String,
    reader: BufReader<File>,
    /// Byte offset and number of the next line to read.
    offset: u64,
    line_no: u64,
    /// For each of the file's partitions, its local index if this worker owns it.
    owned: Vec<Option<usize>>,
    /// Per partition slot: lines up to this number were read before a restore.
    skip_until: Vec<u64>,
    /// Where to start after a restore, applied before the first read.
    start: Option<(u64, u64)>,
    done: bool,
}

/// The [`SourceReader`] of a file source.
pub struct FileReader<D, F> {
    files: Vec<OpenFile>,
    /// Local partition -> (file, slot, global id).
    partitions: Vec<(usize, usize, u64)>,
    current: usize,
    line: Vec<u8>,
    decode: D,
    event_time: F,
}

impl<T, D, F> FileReader<D, F>
where
    D: FnMut(&str) -> Result<T, String>,
    F: Fn(&T) -> EventTime,
{
    /// Opens the files that hold partitions owned by worker `index` of `peers`.
    pub fn open(
        paths: &[PathBuf],
        per_file: usize,
        index: usize,
        peers: usize,
        decode: D,
        event_time: F,
    ) -> Result<Self, (PathBuf, std::io::Error)> {
        let mut files = Vec::new();
        let mut partitions = Vec::new();
        for (f, path) in paths.iter().enumerate() {
            let mut owned = vec![None; per_file];
            for (slot, entry) in owned.iter_mut().enumerate() {
                let global = (f * per_file + slot) as u64;
                if global % peers as u64 == index as u64 {
                    *entry = Some(partitions.len());
                    partitions.push((files.len(), slot, global));
                }
            }
            if owned.iter().any(Option::is_some) {
                files.push(open(path, owned).map_err(|e| (path.clone(), e))?);
            }
        }
        if files.is_empty() {
            tracing::info!(
                worker = index,
                "no file partitions to read: more workers than {} partitions",
                paths.len() * per_file
            );
        }
        Ok(FileReader {
            files,
            partitions,
            current: 0,
            line: Vec::with_capacity(256),
            decode,
            event_time,
        })
    }
}

fn open(path: &Path, owned: Vec<Option<usize>>) -> std::io::Result<OpenFile> {
    Ok(OpenFile {
        path: path.display().to_string(),
        reader: BufReader::with_capacity(1 << 20, File::open(path)?),
        offset: 0,
        line_no: 0,
        skip_until: vec![0; owned.len()],
        owned,
        start: None,
        done: false,
    })
}

impl<T, D, F> SourceReader for FileReader<D, F>
where
    T: 'static,
    D: FnMut(&str) -> Result<T, String> + 'static,
    F: Fn(&T) -> EventTime + 'static,
{
    type Item = T;

    fn partitions(&self) -> usize {
        self.partitions.len()
    }

    fn partition_id(&self, p: usize) -> u64 {
        self.partitions[p].2
    }

    fn position(&self, p: usize) -> Vec<u8> {
        let file = &self.files[self.partitions[p].0];
        let (offset, line_no) = file.start.unwrap_or((file.offset, file.line_no));
        encode(&(
            offset,
            line_no.max(file.skip_until[self.partitions[p].1]),
            file.done,
        ))
    }

    fn seek(&mut self, p: usize, position: &[u8]) -> Result<(), String> {
        let (offset, line_no, done): (u64, u64, bool) =
            decode(position).map_err(|e| e.to_string())?;
        let (f, slot, _) = self.partitions[p];
        let file = &mut self.files[f];
        file.skip_until[slot] = line_no;
        if done {
            // Only lines past the end remain: nothing to read for this slot.
            file.skip_until[slot] = u64::MAX;
        }
        if file.start.is_none_or(|(o, _)| offset < o) {
            file.start = Some((offset, line_no));
        }
        let skip = &file.skip_until;
        if file
            .owned
            .iter()
            .enumerate()
            .all(|(slot, o)| o.is_none() || skip[slot] == u64::MAX)
        {
            file.done = true;
        }
        Ok(())
    }

    fn read(&mut self, max: usize, batch: &mut Batch<T>) -> bool {
        let n = self.files.len();
        let Some(next) = (0..n)
            .map(|i| (self.current + i) % n)
            .find(|&i| !self.files[i].done)
        else {
            return false;
        };
        self.current = next;
        let file = &mut self.files[next];
        if let Some((offset, line_no)) = file.start.take() {
            if let Err(e) = file.reader.seek(SeekFrom::Start(offset)) {
                batch.dead_letters.push(DeadLetter {
                    source: file.path.clone(),
                    position: line_no,
                    error: format!("cannot seek to the checkpointed offset {offset}: {e}"),
                    raw: String::new(),
                });
                file.done = true;
            }
            (file.offset, file.line_no) = (offset, line_no);
        }
        // Lines scanned, ours or not, bound the work of one call.
        for _ in 0..max {
            if file.done {
                break;
            }
            self.line.clear();
            let read = file.reader.read_until(b'\n', &mut self.line);
            match read {
                Ok(0) => {
                    file.done = true;
                    batch.finished.extend(file.owned.iter().flatten());
                    break;
                }
                Ok(n) => {
                    file.offset += n as u64;
                    file.line_no += 1;
                }
                Err(e) => {
                    batch.dead_letters.push(DeadLetter {
                        source: file.path.clone(),
                        position: file.line_no + 1,
                        error: format!("read error, rest of file skipped: {e}"),
                        raw: String::new(),
                    });
                    file.done = true;
                    batch.finished.extend(file.owned.iter().flatten());
                    break;
                }
            }
            let slot = ((file.line_no - 1) % file.owned.len() as u64) as usize;
            let Some(partition) = file.owned[slot] else {
                continue;
            };
            if file.line_no <= file.skip_until[slot] {
                continue;
            }
            let mut bytes = &self.line[..];
            while let [rest @ .., b'\n' | b'\r'] = bytes {
                bytes = rest;
            }
            if bytes.is_empty() {
                continue;
            }
            let decoded = std::str::from_utf8(bytes)
                .map_err(|e| format!("invalid UTF-8: {e}"))
                .and_then(|line| (self.decode)(line));
            match decoded {
                Ok(record) => {
                    let time = (self.event_time)(&record);
                    batch.records.push((partition, record, time));
                }
                Err(error) => batch.dead_letters.push(DeadLetter {
                    source: file.path.clone(),
                    position: file.line_no,
                    error,
                    raw: String::from_utf8_lossy(bytes).into_owned(),
                }),
            }
        }
        self.current = (self.current + 1) % n;
        self.files.iter().any(|f| !f.done)
    }
}
