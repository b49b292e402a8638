//! Reading the lines of the partitions one worker owns, decoding them, and
//! reporting malformed lines with their file and line number.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use tidewater_operators::EventTime;

use crate::source::{Batch, SourceReader};
use crate::DeadLetter;

struct OpenFile {
    path: String,
    reader: BufReader<File>,
    line_no: u64,
    /// For each of the file's partitions, its local index if this worker owns it.
    owned: Vec<Option<usize>>,
    done: bool,
}

/// The [`SourceReader`] of a file source.
pub struct FileReader<D, F> {
    files: Vec<OpenFile>,
    partitions: usize,
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
        let mut partitions = 0;
        for (f, path) in paths.iter().enumerate() {
            let owned: Vec<Option<usize>> = (0..per_file)
                .map(|p| {
                    ((f * per_file + p) % peers == index).then(|| {
                        partitions += 1;
                        partitions - 1
                    })
                })
                .collect();
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
        line_no: 0,
        owned,
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
        self.partitions
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
        // Lines scanned, ours or not, bound the work of one call.
        for _ in 0..max {
            self.line.clear();
            let read = file.reader.read_until(b'\n', &mut self.line);
            file.line_no += 1;
            match read {
                Ok(0) => {
                    file.done = true;
                    batch.finished.extend(file.owned.iter().flatten());
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    batch.dead_letters.push(DeadLetter {
                        source: file.path.clone(),
                        position: file.line_no,
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
