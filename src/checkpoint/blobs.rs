//! Incremental checkpoints: large key groups are stored once, by content.
//!
//! A key group whose encoded state is larger than [`INLINE_MAX`] bytes goes
//! to `DIR/blobs/<128-bit hash>` instead of into its part, and the part keeps
//! a reference (group, hash, length). A group that has not changed since an
//! earlier checkpoint hashes the same, so it is not written again: a
//! checkpoint writes only the key groups that changed. Loading reads each
//! referenced blob back and checks its length and hash.
//!
//! Blobs no part refers to are collected after a grace period. A writer that
//! reuses a blob first refreshes its modification time (or, if it is gone,
//! writes it again) and only then writes the part that refers to it; the
//! collector moves an unreferenced blob aside, and puts it back if it was
//! refreshed within the grace period. So a blob is never taken from under a
//! part being written.

use std::collections::HashSet;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use tidewater_operators::checkpoint::Part;

/// By default, groups up to this size stay inside their part.
pub const INLINE_MAX: usize = 4096;

/// The blobs folder of a checkpoint root.
pub fn blob_dir(root: &Path) -> PathBuf {
    root.join("blobs")
}

fn file_name(hash: [u64; 2]) -> String {
    format!("{:016x}{:016x}", hash[0], hash[1])
}

/// A 128-bit content hash (two independent SipHash-1-3 runs).
pub fn content_hash(bytes: &[u8]) -> [u64; 2] {
    let mut out = [0u64; 2];
    for (salt, slot) in out.iter_mut().enumerate() {
        let mut hasher = DefaultHasher::new();
        (salt as u64).hash(&mut hasher);
        bytes.hash(&mut hasher);
        *slot = hasher.finish();
    }
    out
}

/// What externalising one part wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of blobs written anew.
    pub new_blob_bytes: u64,
    /// Bytes of all blobs the part refers to.
    pub blob_bytes: u64,
}

/// Moves the large groups of `part` to blobs under `root`, writing only
/// those not stored already.
pub fn externalize(root: &Path, part: &mut Part, inline_max: usize) -> anyhow::Result<Written> {
    let dir = blob_dir(root);
    fs::create_dir_all(&dir)?;
    let mut written = Written::default();
    let mut inline = Vec::with_capacity(part.groups.len());
    for (group, bytes) in part.groups.drain(..) {
        if bytes.len() <= inline_max {
            inline.push((group, bytes));
            continue;
        }
        let hash = content_hash(&bytes);
        let path = dir.join(file_name(hash));
        let refreshed = fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .is_ok();
        if !refreshed {
            // Synced all at once below: one syncfs, not one fsync per blob.
            let tmp = dir.join(format!("{}.tmp", file_name(hash)));
            fs::File::create(&tmp)?.write_all(&bytes)?;
            fs::rename(&tmp, &path)?;
            written.new_blob_bytes += bytes.len() as u64;
        }
        written.blob_bytes += bytes.len() as u64;
        part.blobs.push((group, hash, bytes.len() as u64));
    }
    part.groups = inline;
    if written.new_blob_bytes > 0 {
        sync_filesystem(&dir)?;
    }
    Ok(written)
}

/// Makes every write to the file system holding `dir` durable.
fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = fs::File::open(dir)?;
    // SAFETY: syncfs takes a valid open descriptor, which `handle` holds.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts a part's blobs back into its groups, looking in each of `dirs`.
pub fn internalize(dirs: &[PathBuf], part: &mut Part) -> anyhow::Result<()> {
    for (group, hash, len) in part.blobs.drain(..) {
        let name = file_name(hash);
        let Some(path) = dirs.iter().map(|d| d.join(&name)).find(|p| p.exists()) else {
            bail!("blob {name} (key group {group}) is missing");
        };
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() as u64 != len || content_hash(&bytes) != hash {
            bail!("blob {} is corrupt", path.display());
        }
        part.groups.push((group, bytes));
    }
    Ok(())
}

/// The blob names a part refers to, as written beside it (`<part>.refs`),
/// after a first line `# new=<bytes> blobs=<bytes>`.
pub fn write_refs(path: &Path, part: &Part, written: Written) -> anyhow::Result<()> {
    let mut text = format!(
        "# new={} blobs={}\n",
        written.new_blob_bytes, written.blob_bytes
    );
    for (_, hash, _) in &part.blobs {
        text.push_str(&file_name(*hash));
        text.push('\n');
    }
    let mut file = fs::File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The byte counts recorded in a `<part>.refs` file (zero if absent).
pub fn read_stats(path: &Path) -> Written {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut written = Written::default();
    if let Some(header) = text.lines().next().and_then(|l| l.strip_prefix("# ")) {
        for field in header.split_whitespace() {
            match field.split_once('=') {
                Some(("new", n)) => written.new_blob_bytes = n.parse().unwrap_or(0),
                Some(("blobs", n)) => written.blob_bytes = n.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    written
}

/// Removes blobs that no `*.refs` under `root` names and that nobody has
/// refreshed for `grace`. Returns how many it removed.
pub fn collect_garbage(root: &Path, grace: Duration) -> anyhow::Result<usize> {
    let dir = blob_dir(root);
    let Ok(blobs) = fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut referenced = HashSet::new();
    for chk in fs::read_dir(root)?.flatten() {
        let Ok(files) = fs::read_dir(chk.path()) else {
            continue;
        };
        for file in files.flatten() {
            if file.path().extension().is_some_and(|e| e == "refs") {
                for name in fs::read_to_string(file.path()).unwrap_or_default().lines() {
                    if !name.starts_with('#') {
                        referenced.insert(name.to_owned());
                    }
                }
            }
        }
    }
    let mut removed = 0;
    for blob in blobs.flatten() {
        let name = blob.file_name().to_string_lossy().into_owned();
        if name.contains('.') || referenced.contains(&name) {
            continue;
        }
        let trash = dir.join(format!("{name}.trash"));
        if fs::rename(blob.path(), &trash).is_err() {
            continue;
        }
        let fresh = fs::metadata(&trash)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() < grace)
            .unwrap_or(true);
        if fresh {
            fs::rename(&trash, blob.path())?;
        } else {
            fs::remove_file(&trash)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(groups: Vec<(u64, Vec<u8>)>) -> Part {
        Part {
            worker: 0,
            peers: 1,
            groups,
            global: Vec::new(),
            blobs: Vec::new(),
        }
    }

    #[test]
    fn unchanged_groups_are_not_written_again() {
        let root = tempfile::tempdir().unwrap();
        let big = vec![7u8; 10_000];
        let small = vec![1u8; 10];
        let mut first = part(vec![
            (1, big.clone()),
            (2, small.clone()),
            (3, vec![9u8; 5_000]),
        ]);
        let w = externalize(root.path(), &mut first, INLINE_MAX).unwrap();
        assert_eq!(
            w,
            Written {
                new_blob_bytes: 15_000,
                blob_bytes: 15_000
            }
        );
        assert_eq!(first.groups, vec![(2, small.clone())]);
        // group 3 changed, group 1 did not
        let mut second = part(vec![
            (1, big.clone()),
            (2, small.clone()),
            (3, vec![8u8; 5_000]),
        ]);
        let w = externalize(root.path(), &mut second, INLINE_MAX).unwrap();
        assert_eq!(
            w,
            Written {
                new_blob_bytes: 5_000,
                blob_bytes: 15_000
            }
        );
        internalize(&[blob_dir(root.path())], &mut second).unwrap();
        second.groups.sort();
        assert_eq!(
            second.groups,
            vec![(1, big), (2, small), (3, vec![8u8; 5_000])]
        );
    }

    #[test]
    fn damaged_or_missing_blobs_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut p = part(vec![(1, vec![3u8; 9_000])]);
        externalize(root.path(), &mut p, INLINE_MAX).unwrap();
        let path = blob_dir(root.path()).join(file_name(p.blobs[0].1));
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = internalize(&[blob_dir(root.path())], &mut p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupt"), "{err}");
        fs::remove_file(&path).unwrap();
        let err = internalize(&[blob_dir(root.path())], &mut p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn garbage_is_collected_after_the_grace_period_only() {
        let root = tempfile::tempdir().unwrap();
        let mut kept = part(vec![(1, vec![1u8; 5_000])]);
        let mut dropped = part(vec![(2, vec![2u8; 5_000])]);
        externalize(root.path(), &mut kept, INLINE_MAX).unwrap();
        externalize(root.path(), &mut dropped, INLINE_MAX).unwrap();
        let chk = root.path().join("chk-1");
        fs::create_dir_all(&chk).unwrap();
        write_refs(
            &chk.join("window-0-w00000.part.refs"),
            &kept,
            Written::default(),
        )
        .unwrap();
        // within the grace period nothing goes
        assert_eq!(
            collect_garbage(root.path(), Duration::from_secs(60)).unwrap(),
            0
        );
        // past it, only the unreferenced blob goes
        assert_eq!(collect_garbage(root.path(), Duration::ZERO).unwrap(), 1);
        internalize(&[blob_dir(root.path())], &mut kept).unwrap();
        assert!(internalize(&[blob_dir(root.path())], &mut dropped).is_err());
    }
}
