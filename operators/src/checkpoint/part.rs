//! The on-disk form of one operator's part of a checkpoint.
//!
//! ```text
//! magic "TWPART\0\0" | format version u32 LE | payload length u64 LE | CRC-32 of payload u32 LE | payload
//! ```
//!
//! The payload is the bincode encoding of [`Part`]. A reader rejects a file
//! with the wrong magic, an unknown version, a short payload or a checksum
//! mismatch, so a torn or corrupted part is never loaded.

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"TWPART\0\0";
/// The part format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 4;

/// One worker's state of one operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The worker that wrote it, and how many workers there were.
    pub worker: usize,
    /// Total workers when it was written.
    pub peers: usize,
    /// Keyed state, one entry per key group (or per source partition), each
    /// encoded by the operator: a restoring worker takes the groups it owns.
    pub groups: Vec<(u64, Vec<u8>)>,
    /// State that belongs to no key (for example a source's watermark).
    pub global: Vec<u8>,
    /// Key groups stored apart, by content: `(group, 128-bit hash, length)`.
    /// Set and resolved by the store (incremental checkpoints); operators
    /// always see their groups in `groups`.
    pub blobs: Vec<(u64, [u64; 2], u64)>,
}

/// Why a part could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartError {
    /// Not a part file, or truncated before its header ends.
    #[error("not a checkpoint part (bad magic or short header)")]
    NotAPart,
    /// Written by an incompatible version.
    #[error("part format version {0}, this build reads version {FORMAT_VERSION}")]
    Version(u32),
    /// Shorter or longer than its header says.
    #[error("part is truncated: header says {expected} payload bytes, found {found}")]
    Length {
        /// From the header.
        expected: u64,
        /// On disk.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error("part checksum mismatch (corrupt)")]
    Checksum,
    /// The payload does not decode.
    #[error("part payload does not decode: {0}")]
    Decode(String),
}

impl Part {
    /// Encodes the part with its header.
    pub fn encode(&self) -> Vec<u8> {
        let payload = bincode::serialize(self).expect("parts are plain data");
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes and verifies a part.
    pub fn decode(bytes: &[u8]) -> Result<Part, PartError> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(PartError::NotAPart);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(PartError::Version(version));
        }
        let expected = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
        let payload = &bytes[HEADER..];
        if payload.len() as u64 != expected {
            return Err(PartError::Length {
                expected,
                found: payload.len() as u64,
            });
        }
        if crc32fast::hash(payload) != crc {
            return Err(PartError::Checksum);
        }
        bincode::deserialize(payload).map_err(|e| PartError::Decode(e.to_string()))
    }
}

/// Encodes a piece of operator state.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("operator state is plain data")
}

/// Decodes a piece of operator state written by [`encode`].
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, PartError> {
    bincode::deserialize(bytes).map_err(|e| PartError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Part {
        Part {
            worker: 1,
            peers: 3,
            groups: vec![(7, vec![1, 2, 3]), (4095, vec![])],
            global: b"watermark".to_vec(),
            blobs: vec![(9, [1, 2], 3)],
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(Part::decode(&sample().encode()), Ok(sample()));
    }

    #[test]
    fn rejects_damage() {
        let bytes = sample().encode();
        assert_eq!(
            Part::decode(&bytes[..bytes.len() - 1]),
            Err(PartError::Length {
                expected: (bytes.len() - HEADER) as u64,
                found: (bytes.len() - HEADER - 1) as u64
            })
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        assert_eq!(Part::decode(&flipped), Err(PartError::Checksum));
        let mut version = bytes.clone();
        version[8] = 9;
        assert_eq!(Part::decode(&version), Err(PartError::Version(9)));
        assert_eq!(Part::decode(b"garbage"), Err(PartError::NotAPart));
    }
}
