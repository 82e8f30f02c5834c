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

/// Up to how many entries [`copy_map`] and [`copy_set`] insert anew.
const SMALL: usize = 32;

/// Make `into` a copy of `from` (the same entries in the same order)
/// without giving up its room. `IndexMap::clone_from` gives the index
/// table `from`'s size, so a map that every run grows past its set-up's
/// size (the point pairs, from empty) grew again in every run: a rehash or
/// two a run. A small `from` is inserted anew into the cleared `into`.
pub fn copy_map<K: Clone + std::hash::Hash + Eq, V: Clone>(into: &mut FastMap<K, V>, from: &FastMap<K, V>) {
    if from.len() <= SMALL {
        into.clear();
        into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
    } else {
        into.clone_from(from);
    }
}

/// [`copy_map`] for a set.
pub fn copy_set<K: Clone + std::hash::Hash + Eq>(into: &mut FastSet<K>, from: &FastSet<K>) {
    if from.len() <= SMALL {
        into.clear();
        into.extend(from.iter().cloned());
    } else {
        into.clone_from(from);
    }
}

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
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
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

/// A `&'static str` (a named point, a lock class) keyed by where it lives:
/// hashing and comparing it costs one word, not its bytes. Two copies of
/// one name at different addresses are two keys, so a set of these may
/// list a name twice: whoever reads it merges by content (the cli's
/// coverage and lockdep maps do). Only the hash depends on the address;
/// an `IndexMap` iterates in insertion order, so no output does.
#[derive(Clone, Copy, Debug)]
pub struct ByAddress(pub &'static str);

impl PartialEq for ByAddress {
    fn eq(&self, other: &ByAddress) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for ByAddress {}

impl std::hash::Hash for ByAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize);
        state.write_usize(self.0.len());
    }
}
