//! The directory store: a background thread writes parts (temporary name,
//! fsync, rename), worker 0 writes a checkpoint's manifest once all parts
//! of all workers are there, and prunes old checkpoints.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tidewater_operators::checkpoint::{Checkpointing, Part, Restored, SnapshotStore};
use tidewater_operators::EventTime;

use super::blobs;
use super::manifest::{checkpoint_dir, list, part_name, Manifest, MANIFEST_VERSION};

struct Write_ {
    dir: PathBuf,
    name: String,
    part: Part,
}

/// A checkpoint store in a directory (local, or a mount shared by all hosts).
///
/// One per process, shared by its workers; cheap to clone.
#[derive(Clone)]
pub struct DirStore {
    root: PathBuf,
    worker: usize,
    writer: Sender<Write_>,
    complete: Arc<Mutex<BTreeSet<EventTime>>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl DirStore {
    /// A store under `root`, with its background writer; key groups larger
    /// than `inline_max` bytes are stored as shared blobs.
    pub fn new(root: &Path, inline_max: usize) -> anyhow::Result<DirStore> {
        fs::create_dir_all(root)
            .with_context(|| format!("cannot create checkpoint directory {}", root.display()))?;
        let (writer, jobs) = channel::<Write_>();
        let failure = Arc::new(Mutex::new(None));
        let failed = Arc::clone(&failure);
        let blob_root = root.to_owned();
        std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || {
                for job in jobs {
                    if let Err(e) = write_part_durably(&blob_root, job, inline_max) {
                        let message = format!("cannot write a checkpoint part: {e:#}");
                        tracing::error!("{message}");
                        failed.lock().expect("not poisoned").get_or_insert(message);
                    }
                }
            })
            .context("cannot start the checkpoint writer")?;
        Ok(DirStore {
            root: root.to_owned(),
            worker: 0,
            writer,
            complete: Arc::default(),
            failure,
        })
    }

    /// This store as seen by one worker.
    pub fn for_worker(&self, worker: usize) -> DirStore {
        DirStore {
            worker,
            ..self.clone()
        }
    }

    /// A failure of the background writer, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("not poisoned").clone()
    }

    /// Worker 0: writes the manifest of every announced checkpoint whose
    /// parts are all durable, then prunes to the newest `retain` complete
    /// checkpoints. Returns the checkpoints it completed.
    pub fn complete_checkpoints(
        &self,
        checkpointing: &Checkpointing,
        peers: usize,
        retain: usize,
    ) -> anyhow::Result<Vec<EventTime>> {
        let announced: Vec<EventTime> = checkpointing.coordinator.borrow().announced().to_vec();
        let operators = checkpointing.operators.borrow().clone();
        let mut done = Vec::new();
        for c in announced {
            if self.complete.lock().expect("not poisoned").contains(&c) {
                continue;
            }
            let dir = checkpoint_dir(&self.root, c);
            let mut parts = Vec::new();
            let (mut bytes_written, mut bytes_total) = (0, 0);
            for operator in &operators {
                for worker in 0..peers {
                    let name = part_name(operator, worker);
                    match fs::metadata(dir.join(&name)) {
                        Ok(meta) => {
                            let stats = blobs::read_stats(&dir.join(format!("{name}.refs")));
                            bytes_written += meta.len() + stats.new_blob_bytes;
                            bytes_total += meta.len() + stats.blob_bytes;
                            parts.push((name, meta.len()));
                        }
                        Err(_) => break,
                    }
                }
            }
            if parts.len() < operators.len() * peers {
                break; // in order: a later checkpoint cannot complete first
            }
            let start = Instant::now();
            Manifest {
                version: MANIFEST_VERSION,
                checkpoint: c,
                workers: peers,
                operators: operators.clone(),
                parts,
                completed_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                duration_ms: checkpointing
                    .coordinator
                    .borrow()
                    .age(c)
                    .map_or(0, |d| d.as_millis() as u64),
                bytes_written,
                bytes_total,
            }
            .write(&dir)?;
            tracing::info!(
                checkpoint = c,
                "checkpoint complete (manifest in {:?})",
                start.elapsed()
            );
            self.complete.lock().expect("not poisoned").insert(c);
            done.push(c);
        }
        if !done.is_empty() {
            self.prune(retain)?;
        }
        Ok(done)
    }

    /// Keeps the newest `retain` complete checkpoints; removes older ones and
    /// incomplete ones older than the newest complete.
    fn prune(&self, retain: usize) -> anyhow::Result<()> {
        let listing = list(&self.root)?;
        let mut complete_seen = 0;
        for entry in listing {
            let complete = entry.dir.join("MANIFEST").exists();
            if complete {
                complete_seen += 1;
            }
            let keep = if complete {
                complete_seen <= retain
            } else {
                complete_seen == 0
            };
            if !keep {
                fs::remove_dir_all(&entry.dir)
                    .with_context(|| format!("cannot remove {}", entry.dir.display()))?;
            }
        }
        blobs::collect_garbage(&self.root, Duration::from_secs(60))?;
        Ok(())
    }
}

impl SnapshotStore for DirStore {
    fn write_part(&self, checkpoint: EventTime, operator: &str, part: Part) {
        let job = Write_ {
            dir: checkpoint_dir(&self.root, checkpoint),
            name: part_name(operator, self.worker),
            part,
        };
        if self.writer.send(job).is_err() {
            self.failure
                .lock()
                .expect("not poisoned")
                .get_or_insert_with(|| "the checkpoint writer has stopped".to_owned());
        }
    }

    fn is_complete(&self, checkpoint: EventTime) -> bool {
        if self
            .complete
            .lock()
            .expect("not poisoned")
            .contains(&checkpoint)
        {
            return true;
        }
        let done = checkpoint_dir(&self.root, checkpoint)
            .join("MANIFEST")
            .exists();
        if done {
            self.complete
                .lock()
                .expect("not poisoned")
                .insert(checkpoint);
        }
        done
    }
}

/// Stores large key groups as blobs (only those not stored already), then
/// the list of blobs the part refers to with the bytes written, then the
/// part itself (temporary name, fsync, rename).
fn write_part_durably(root: &Path, mut job: Write_, inline_max: usize) -> anyhow::Result<()> {
    let Write_ { dir, name, part } = &mut job;
    fs::create_dir_all(&*dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written = blobs::externalize(root, part, inline_max)?;
    blobs::write_refs(&dir.join(format!("{name}.refs")), part, written)?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&part.encode())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(&*name))
        .with_context(|| format!("cannot write {}/{name}", dir.display()))?;
    Ok(())
}

/// The newest complete, intact checkpoint under `root`, if any; damaged or
/// incomplete ones are skipped with a warning.
pub fn load_newest(root: &Path) -> anyhow::Result<Option<Restored>> {
    if !root.exists() {
        return Ok(None);
    }
    for entry in list(root)? {
        match Manifest::load(&entry.dir) {
            Ok((_, restored)) => return Ok(Some(restored)),
            Err(e) => tracing::warn!("skipping checkpoint {}: {e:#}", entry.dir.display()),
        }
    }
    Ok(None)
}

/// A specific checkpoint or savepoint directory.
pub fn load_from(dir: &Path) -> anyhow::Result<Restored> {
    Manifest::load(dir).map(|(_, restored)| restored)
}
