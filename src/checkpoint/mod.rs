//! Checkpoints on disk: the store (parts written in the background,
//! manifests written atomically once every part is durable), recovery of the
//! newest complete checkpoint, retention, and listing.
//!
//! Layout of `--checkpoint-dir DIR`:
//!
//! ```text
//! DIR/chk-<C, 20 digits>/<operator>-w<worker, 5 digits>.part   one per operator and worker
//! DIR/chk-<C>/MANIFEST                                          JSON, written last
//! ```
//!
//! A part is the versioned, checksummed encoding of
//! `tidewater_operators::checkpoint::Part` (its keyed state split by key
//! group, so any number of workers can restore it). A checkpoint without a
//! `MANIFEST`, or with a part that is missing or fails its checksum, is
//! skipped with a warning and never loaded.

pub mod blobs;
mod manifest;
mod store;

pub use manifest::{checkpoint_dir, list, Listing, Manifest};
pub use store::{load_from, load_newest, DirStore};
