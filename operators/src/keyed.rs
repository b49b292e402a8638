//! Key groups: the fixed partitioning of the key space that keyed state and
//! snapshots are organised by (DESIGN.md, section 2).
//!
//! A key hashes to one of [`KEY_GROUPS`] groups with a hash that is stable
//! across processes and runs; a group maps to a worker by contiguous ranges,
//! as in Flink, so changing the worker count moves whole groups.

use std::hash::{Hash, Hasher};

/// Number of key groups (the maximum useful parallelism).
pub const KEY_GROUPS: u64 = 4096;

/// A stable 64-bit hash (FNV-1a over the key's `Hash` bytes, then mixed).
///
/// Unlike `RandomState`, it gives the same value in every process.
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = StableHasher(0xcbf2_9ce4_8422_2325);
    key.hash(&mut hasher);
    hasher.finish()
}

/// The key group of `key`.
///
/// ```
/// use tidewater_operators::{key_group, KEY_GROUPS};
/// assert!(key_group(&42u64) < KEY_GROUPS);
/// assert_eq!(key_group(&"a"), key_group(&"a"));
/// ```
pub fn key_group<K: Hash + ?Sized>(key: &K) -> u64 {
    stable_hash(key) % KEY_GROUPS
}

/// The worker (of `peers`) that owns key group `group`.
pub fn worker_for_group(group: u64, peers: usize) -> u64 {
    group * peers as u64 / KEY_GROUPS
}

/// The worker (of `peers`) that owns `key`: use as a timely exchange function.
pub fn worker_for_key<K: Hash + ?Sized>(key: &K, peers: usize) -> u64 {
    worker_for_group(key_group(key), peers)
}

struct StableHasher(u64);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        // splitmix64 finaliser: spreads FNV's weak low bits.
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_spread_over_workers_in_ranges() {
        for peers in 1..=7usize {
            let mut seen = vec![0u64; peers];
            for group in 0..KEY_GROUPS {
                let worker = worker_for_group(group, peers);
                assert!(worker < peers as u64);
                seen[worker as usize] += 1;
            }
            let min = *seen.iter().min().unwrap();
            let max = *seen.iter().max().unwrap();
            assert!(max - min <= 1, "unbalanced: {seen:?}");
        }
    }

    #[test]
    fn keys_spread_over_groups() {
        let mut groups = std::collections::HashSet::new();
        for key in 0..10_000u64 {
            groups.insert(key_group(&key));
        }
        assert!(groups.len() > 3500, "only {} groups used", groups.len());
    }
}
