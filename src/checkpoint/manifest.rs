//! The manifest that makes a checkpoint complete, and reading checkpoints
//! back.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tidewater_operators::checkpoint::{Part, Restored};
use tidewater_operators::EventTime;

/// The manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// Names every part of a complete checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this file.
    pub version: u32,
    /// The checkpoint time `C`.
    pub checkpoint: EventTime,
    /// Workers (all processes) that wrote it.
    pub workers: usize,
    /// Operators that wrote parts, in build order.
    pub operators: Vec<String>,
    /// Each part file and its size in bytes.
    pub parts: Vec<(String, u64)>,
    /// When it completed (ms since the epoch, wall clock).
    pub completed_ms: u64,
    /// Milliseconds from its announcement to its completion.
    #[serde(default)]
    pub duration_ms: u64,
    /// Bytes this checkpoint wrote: its parts and the key-group blobs that
    /// were not stored already (incremental checkpoints).
    #[serde(default)]
    pub bytes_written: u64,
    /// Bytes of all the state it holds, blobs included.
    #[serde(default)]
    pub bytes_total: u64,
}

/// The directory of checkpoint `c`.
pub fn checkpoint_dir(root: &Path, c: EventTime) -> PathBuf {
    root.join(format!("chk-{c:020}"))
}

/// The file name of a part.
pub fn part_name(operator: &str, worker: usize) -> String {
    format!("{operator}-w{worker:05}.part")
}

impl Manifest {
    /// Writes the manifest atomically: temporary file, fsync, rename, fsync
    /// of the directory.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join("MANIFEST.tmp");
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join("MANIFEST"))
            .with_context(|| format!("cannot complete {}", dir.display()))?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Reads and checks a checkpoint directory: the manifest, then every
    /// part it names (size and checksum).
    pub fn load(dir: &Path) -> anyhow::Result<(Manifest, Restored)> {
        let path = dir.join("MANIFEST");
        let text = fs::read(&path).with_context(|| format!("no manifest in {}", dir.display()))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .with_context(|| format!("{} does not parse", path.display()))?;
        if manifest.version != MANIFEST_VERSION {
            bail!(
                "{}: manifest version {}, expected {MANIFEST_VERSION}",
                path.display(),
                manifest.version
            );
        }
        let mut restored = Restored {
            checkpoint: manifest.checkpoint,
            parts: Default::default(),
        };
        for (name, size) in &manifest.parts {
            let file = dir.join(name);
            let bytes =
                fs::read(&file).with_context(|| format!("missing part {}", file.display()))?;
            if bytes.len() as u64 != *size {
                bail!(
                    "part {} has {} bytes, the manifest says {size}",
                    file.display(),
                    bytes.len()
                );
            }
            let mut part =
                Part::decode(&bytes).with_context(|| format!("part {}", file.display()))?;
            // Blobs: beside a savepoint, or shared under the checkpoint root.
            let mut blob_dirs = vec![super::blobs::blob_dir(dir)];
            if let Some(root) = dir.parent() {
                blob_dirs.push(super::blobs::blob_dir(root));
            }
            super::blobs::internalize(&blob_dirs, &mut part)
                .with_context(|| format!("part {}", file.display()))?;
            let operator = name
                .rsplit_once("-w")
                .map(|(op, _)| op.to_owned())
                .with_context(|| format!("part name {name} has no worker"))?;
            restored.parts.entry(operator).or_default().push(part);
        }
        Ok((manifest, restored))
    }
}

/// One checkpoint directory, as `tidewater checkpoints` shows it.
#[derive(Debug)]
pub struct Listing {
    /// Its time `C`.
    pub checkpoint: EventTime,
    /// Its directory.
    pub dir: PathBuf,
    /// Total bytes of its files.
    pub bytes: u64,
    /// Number of part files.
    pub parts: usize,
    /// `complete`, `incomplete` (no manifest) or `corrupt: why`.
    pub status: String,
}

/// Every checkpoint under `root`, newest first.
pub fn list(root: &Path) -> anyhow::Result<Vec<Listing>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))?;
    for entry in entries {
        let dir = entry?.path();
        let Some(c) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("chk-"))
            .and_then(|c| c.parse::<EventTime>().ok())
        else {
            continue;
        };
        let mut bytes = 0;
        let mut parts = 0;
        for file in fs::read_dir(&dir)? {
            let file = file?;
            bytes += file.metadata()?.len();
            if file.path().extension().is_some_and(|e| e == "part") {
                parts += 1;
            }
        }
        let status = if !dir.join("MANIFEST").exists() {
            "incomplete".to_owned()
        } else {
            match Manifest::load(&dir) {
                Ok(_) => "complete".to_owned(),
                Err(e) => format!("corrupt: {e:#}"),
            }
        };
        out.push(Listing {
            checkpoint: c,
            dir,
            bytes,
            parts,
            status,
        });
    }
    out.sort_by_key(|l| std::cmp::Reverse(l.checkpoint));
    Ok(out)
}
