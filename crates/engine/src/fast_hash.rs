//! A fixed, cheap hash for the simulator's and the kernel's maps.

use std::hash::{BuildHasherDefault, Hasher};

use indexmap::{IndexMap, IndexSet};

/// An insertion-ordered map with a fixed, cheap hash for the kernel's small
/// keys (pids, task ids, swap entries, point names). An `IndexMap` iterates in insertion
/// order whatever its hasher, so the hasher changes no output; the default
/// one (SipHash, keyed per map from the thread's random state) cost a few
/// percent of a run in lookups alone.
pub type FastMap<K, V> = IndexMap<K, V, BuildHasherDefault<FastHasher>>;

/// The same, as an insertion-ordered set.
pub type FastSet<K> = IndexSet<K, BuildHasherDefault<FastHasher>>;

/// FxHash's mixing step (rustc's hasher): a rotate, a xor and a multiply
/// per word.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(n.into());
    }

    fn write_u16(&mut self, n: u16) {
        self.add(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
