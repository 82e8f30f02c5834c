//! The world's containers, recording every access for the step's
//! footprint (`engine::footprint`): the dfs search's sleep sets skip
//! schedules that only reorder steps with disjoint footprints, so an access
//! that escaped these types would make the search unsound. They offer only
//! the operations the kernel uses, each recorded: one object by its key, or
//! the whole space for whatever looks at every object (iteration, length)
//! or at the container's shape (inserting and removing move the order in
//! which later iterations see the objects, and which keys new objects get).
//!
//! Recording costs a thread-local flag test per access when off.

use std::hash::Hash;
use std::ops::{Deref, DerefMut, Index, IndexMut};

use engine::footprint::{touch, Space, ALL, FIRST_USER_SPACE};
use indexmap::map::Entry;
use slotmap::{Key, SlotMap};

use crate::types::{FastMap, SwpEntry};

/// `mm_struct`s, by key.
pub const MM: Space = FIRST_USER_SPACE;
/// `vm_area_struct`s.
pub const VMA: Space = FIRST_USER_SPACE + 1;
/// Page tables, one per mm.
pub const PAGE_TABLE: Space = FIRST_USER_SPACE + 2;
/// `struct page`s.
pub const PAGE: Space = FIRST_USER_SPACE + 3;
/// The swap cache, by swap entry.
pub const SWAP_CACHE: Space = FIRST_USER_SPACE + 4;
/// `swap_info[type]`, with its swap_map and disk.
pub const SWAP_INFO: Space = FIRST_USER_SPACE + 5;
/// The mm list (the patch's, or a later kernel's mmlist).
pub const MMLIST: Space = FIRST_USER_SPACE + 6;
/// Processes (`task_struct`), by pid.
pub const PROCS: Space = FIRST_USER_SPACE + 7;
/// The task list's order.
pub const TASK_LIST: Space = FIRST_USER_SPACE + 8;
/// Which process each engine task runs as.
pub const BY_TASK: Space = FIRST_USER_SPACE + 9;
/// Free memory and the allocation counters.
pub const MEMORY: Space = FIRST_USER_SPACE + 10;
/// `swap_list`, `nr_swapfiles`, `nr_swap_pages`.
pub const SWAP_LIST: Space = FIRST_USER_SPACE + 11;
/// The counters that name new objects: pids, mm numbers, contents versions.
pub const IDS: Space = FIRST_USER_SPACE + 12;
/// SysV shm segments, by id, and the shm counters (key [`ALL`]'s neighbour
/// [`SHAPE`]).
pub const SHM: Space = FIRST_USER_SPACE + 13;
/// How many tasks are inside the kernel (the quiescent-check trigger).
pub const IN_KERNEL: Space = FIRST_USER_SPACE + 14;
/// The scenario's Lua state (a process program running between calls).
pub const LUA: Space = FIRST_USER_SPACE + 15;

/// Note that the step reads every object of the kernel world (a check of
/// the whole state), as one access per space.
pub fn read_the_whole_world() {
    engine::footprint::touch_spaces(MM..=SHM);
}

/// The key that stands for a container's shape: which keys it holds and
/// in what order.
pub const SHAPE: u64 = ALL - 1;

#[inline(always)]
fn read(space: Space, key: u64) {
    touch(space, key, false);
}

#[inline(always)]
fn write(space: Space, key: u64) {
    touch(space, key, true);
}

#[inline(always)]
fn read_keyed(space: Space, key: impl FnOnce() -> u64) {
    engine::footprint::touch_keyed(space, key, false);
}

#[inline(always)]
fn write_keyed(space: Space, key: impl FnOnce() -> u64) {
    engine::footprint::touch_keyed(space, key, true);
}

/// A key as a footprint key.
pub trait TrackKey {
    fn track(&self) -> u64;
}

impl TrackKey for u32 {
    #[inline]
    fn track(&self) -> u64 {
        (*self).into()
    }
}

impl TrackKey for SwpEntry {
    #[inline]
    fn track(&self) -> u64 {
        ((self.type_ as u64) << 32) | u64::from(self.offset)
    }
}

impl TrackKey for engine::TaskId {
    #[inline]
    fn track(&self) -> u64 {
        self.0.into()
    }
}

/// A slotmap arena.
pub struct Arena<K: Key, V, const S: Space>(SlotMap<K, V>);

// By hand, for `clone_from`: a run's copy of the set-up state reuses the
// buffers of the last run's (see `Kernel::reset_to`).
impl<K: Key, V: Clone, const S: Space> Clone for Arena<K, V, S> {
    fn clone(&self) -> Self {
        Arena(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl<K: Key, V, const S: Space> Arena<K, V, S> {
    #[inline]
    pub fn new() -> Self {
        Arena(SlotMap::with_key())
    }

    #[inline]
    pub fn get(&self, key: K) -> Option<&V> {
        read_keyed(S, || key.data().as_ffi());
        self.0.get(key)
    }

    #[inline]
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        write_keyed(S, || key.data().as_ffi());
        self.0.get_mut(key)
    }

    #[inline]
    pub fn contains_key(&self, key: K) -> bool {
        read_keyed(S, || key.data().as_ffi());
        self.0.contains_key(key)
    }

    #[inline]
    pub fn insert(&mut self, value: V) -> K {
        write(S, SHAPE);
        let key = self.0.insert(value);
        write_keyed(S, || key.data().as_ffi());
        key
    }

    #[inline]
    pub fn remove(&mut self, key: K) -> Option<V> {
        write(S, SHAPE);
        write_keyed(S, || key.data().as_ffi());
        self.0.remove(key)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        read(S, ALL);
        self.0.is_empty()
    }

    #[inline]
    pub fn len(&self) -> usize {
        read(S, ALL);
        self.0.len()
    }

    #[inline]
    pub fn iter(&self) -> slotmap::basic::Iter<'_, K, V> {
        read(S, ALL);
        self.0.iter()
    }

    #[inline]
    pub fn values(&self) -> slotmap::basic::Values<'_, K, V> {
        read(S, ALL);
        self.0.values()
    }

    #[inline]
    pub fn keys(&self) -> slotmap::basic::Keys<'_, K, V> {
        read(S, ALL);
        self.0.keys()
    }
}

impl<K: Key, V, const S: Space> Default for Arena<K, V, S> {
    #[inline]
    fn default() -> Self {
        Arena::new()
    }
}

impl<'a, K: Key, V, const S: Space> IntoIterator for &'a Arena<K, V, S> {
    type Item = (K, &'a V);
    type IntoIter = slotmap::basic::Iter<'a, K, V>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Key, V, const S: Space> Index<K> for Arena<K, V, S> {
    type Output = V;
    #[inline]
    fn index(&self, key: K) -> &V {
        read_keyed(S, || key.data().as_ffi());
        &self.0[key]
    }
}

impl<K: Key, V, const S: Space> IndexMut<K> for Arena<K, V, S> {
    #[inline]
    fn index_mut(&mut self, key: K) -> &mut V {
        write_keyed(S, || key.data().as_ffi());
        &mut self.0[key]
    }
}

/// An insertion-ordered map.
pub struct Map<K, V, const S: Space>(FastMap<K, V>);

// By hand, for `clone_from` (see above).
impl<K: Clone + Hash + Eq, V: Clone, const S: Space> Clone for Map<K, V, S> {
    fn clone(&self) -> Self {
        Map(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        engine::fast_hash::copy_map(&mut self.0, &source.0);
    }
}

impl<K: Hash + Eq + TrackKey, V, const S: Space> Map<K, V, S> {
    #[inline]
    pub fn new() -> Self {
        Map(FastMap::default())
    }

    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        read_keyed(S, || key.track());
        self.0.get(key)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        write_keyed(S, || key.track());
        self.0.get_mut(key)
    }

    #[inline]
    pub fn contains_key(&self, key: &K) -> bool {
        read_keyed(S, || key.track());
        self.0.contains_key(key)
    }

    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        write(S, SHAPE);
        write_keyed(S, || key.track());
        self.0.insert(key, value)
    }

    #[inline]
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        write(S, SHAPE);
        write_keyed(S, || key.track());
        self.0.entry(key)
    }

    #[inline]
    pub fn shift_remove(&mut self, key: &K) -> Option<V> {
        write(S, SHAPE);
        write_keyed(S, || key.track());
        self.0.shift_remove(key)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        read(S, ALL);
        self.0.is_empty()
    }

    #[inline]
    pub fn len(&self) -> usize {
        read(S, ALL);
        self.0.len()
    }

    #[inline]
    pub fn iter(&self) -> indexmap::map::Iter<'_, K, V> {
        read(S, ALL);
        self.0.iter()
    }

    #[inline]
    pub fn keys(&self) -> indexmap::map::Keys<'_, K, V> {
        read(S, ALL);
        self.0.keys()
    }

    #[inline]
    pub fn values(&self) -> indexmap::map::Values<'_, K, V> {
        read(S, ALL);
        self.0.values()
    }
}

impl<K: Hash + Eq + TrackKey, V, const S: Space> Default for Map<K, V, S> {
    #[inline]
    fn default() -> Self {
        Map::new()
    }
}

impl<K: Hash + Eq + TrackKey, V, const S: Space> Index<&K> for Map<K, V, S> {
    type Output = V;
    #[inline]
    fn index(&self, key: &K) -> &V {
        read_keyed(S, || key.track());
        &self.0[key]
    }
}

impl<K: Hash + Eq + TrackKey, V, const S: Space> IndexMut<&K> for Map<K, V, S> {
    #[inline]
    fn index_mut(&mut self, key: &K) -> &mut V {
        write_keyed(S, || key.track());
        &mut self.0[key]
    }
}

impl<'a, K: Hash + Eq + TrackKey, V, const S: Space> IntoIterator for &'a Map<K, V, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = indexmap::map::Iter<'a, K, V>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A vector indexed by small numbers (swap types, shm ids).
pub struct Table<T, const S: Space>(Vec<T>);

// By hand, for `clone_from` (see above).
impl<T: Clone, const S: Space> Clone for Table<T, S> {
    fn clone(&self) -> Self {
        Table(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl<T, const S: Space> Table<T, S> {
    #[inline]
    pub fn new(items: Vec<T>) -> Self {
        Table(items)
    }

    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        read(S, index as u64);
        self.0.get(index)
    }

    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        write(S, index as u64);
        self.0.get_mut(index)
    }

    #[inline]
    pub fn push(&mut self, item: T) {
        write(S, SHAPE);
        write(S, self.0.len() as u64);
        self.0.push(item);
    }

    #[inline]
    pub fn len(&self) -> usize {
        read(S, SHAPE);
        self.0.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        read(S, SHAPE);
        self.0.is_empty()
    }

    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        read(S, ALL);
        self.0.iter()
    }
}

impl<'a, T, const S: Space> IntoIterator for &'a Table<T, S> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T, const S: Space> Index<usize> for Table<T, S> {
    type Output = T;
    #[inline]
    fn index(&self, index: usize) -> &T {
        read(S, index as u64);
        &self.0[index]
    }
}

impl<T, const S: Space> IndexMut<usize> for Table<T, S> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        write(S, index as u64);
        &mut self.0[index]
    }
}

/// A value read and written whole (a list, a counter), as object `K` of
/// space `S`.
pub struct Whole<T, const S: Space, const K: u64 = 0>(T);

// By hand, for `clone_from` (see above).
impl<T: Clone, const S: Space, const K: u64> Clone for Whole<T, S, K> {
    fn clone(&self) -> Self {
        Whole(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl<T, const S: Space, const K: u64> Whole<T, S, K> {
    #[inline]
    pub fn new(value: T) -> Self {
        Whole(value)
    }
}

impl<T, const S: Space, const K: u64> Deref for Whole<T, S, K> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        read(S, K);
        &self.0
    }
}

impl<T, const S: Space, const K: u64> DerefMut for Whole<T, S, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        write(S, K);
        &mut self.0
    }
}

impl<'a, T, const S: Space, const K: u64> IntoIterator for &'a Whole<T, S, K>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        read(S, K);
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::footprint::Footprint;

    slotmap::new_key_type! { struct Id; }

    /// The footprint of `f`, recorded by a dfs-like run of a tiny sim.
    fn footprint_of(f: impl FnOnce()) -> Footprint {
        engine::footprint::record(f)
    }

    #[test]
    fn an_arena_records_each_object_and_iteration_records_them_all() {
        let mut arena: Arena<Id, u32, MM> = Arena::new();
        let (a, b) = (arena.insert(1), arena.insert(2));
        let read_a = footprint_of(|| assert_eq!(arena[a], 1));
        let write_b = footprint_of(|| arena[b] += 1);
        let sum = footprint_of(|| assert_eq!(arena.values().sum::<u32>(), 4));
        let add = footprint_of(|| {
            arena.insert(9);
        });
        assert!(!read_a.conflicts(&write_b));
        assert!(sum.conflicts(&write_b) && sum.conflicts(&add));
        assert!(!add.conflicts(&read_a), "a new object changes no other");
        assert!(add.conflicts(&add), "two inserts in either order hand out different keys");
    }

    #[test]
    fn a_whole_value_is_one_object() {
        let mut list: Whole<Vec<u32>, MMLIST> = Whole::new(Vec::new());
        let push = footprint_of(|| list.push(1));
        let look = footprint_of(|| assert_eq!(list.len(), 1));
        assert!(push.conflicts(&look));
        assert!(!look.conflicts(&look));
    }

    #[test]
    fn nothing_is_recorded_outside_a_recording() {
        let mut table: Table<u32, SWAP_INFO> = Table::new(vec![0]);
        table[0] += 1;
        assert_eq!(footprint_of(|| ()), Footprint::default());
    }
}
