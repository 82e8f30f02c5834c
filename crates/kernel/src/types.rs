//! The kernel's objects: mm_struct, vm_area_struct, page tables, struct
//! page, swap entries and swap_info_struct. They live in slotmap arenas, so
//! a stale key — a pointer to a freed object — is detected, not followed.

use engine::{LockId, TaskId};
use std::collections::BTreeMap;
use std::fmt;

pub const PAGE_SIZE: u64 = 4096;
/// `PGDIR_SHIFT` (include/asm-i386/pgtable-2level.h): one pgd entry, and
/// so one page table, maps 4 MB.
pub const PGDIR_SHIFT: u32 = 22;
/// `PGDIR_SIZE`.
pub const PGDIR_SIZE: u64 = 1 << PGDIR_SHIFT;
/// `PTRS_PER_PTE` (pgtable-2level.h): the ptes of one page table.
pub const PTRS_PER_PTE: u64 = 1024;
/// `MAX_SWAPFILES` in include/linux/swap.h.
pub const MAX_SWAPFILES: usize = 8;
/// `SWAP_MAP_MAX`: a sticky overflow count.
pub const SWAP_MAP_MAX: u16 = 0x7fff;
/// `SWAP_MAP_BAD`: a bad slot (slot 0 holds the header).
pub const SWAP_MAP_BAD: u16 = 0x8000;
/// `SWP_USED`: the slot of swap_info is in use.
pub const SWP_USED: u8 = 1;
/// `SWP_WRITEOK`: used and open for new allocations.
pub const SWP_WRITEOK: u8 = 3;

slotmap::new_key_type! {
    pub struct MmId;
    pub struct VmaId;
    pub struct PgdId;
    pub struct PageId;
}

/// A process id, as the scenario sees it.
pub type Pid = u32;

/// `swp_entry_t`: a device (`SWP_TYPE`) and a slot (`SWP_OFFSET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwpEntry {
    pub type_: usize,
    pub offset: u32,
}

impl fmt::Display for SwpEntry {
    /// Devices are numbered from 1 for users (`swapoff(1)` is swap_info[0]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_ + 1, self.offset)
    }
}

/// A page-table entry: none, a present page, or a swap entry. `young` is
/// `_PAGE_ACCESSED`: on i386 every `vm_page_prot` (PAGE_COPY, PAGE_SHARED,
/// PAGE_READONLY: include/asm-i386/pgtable.h:164-166) includes it, so a pte
/// made by `mk_pte` is young; the MMU sets it on every access, and the page
/// stealer clears it (`pte_mkold`) before it may take the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pte {
    None,
    Present { page: PageId, write: bool, dirty: bool, young: bool },
    Swap(SwpEntry),
}

/// `struct mm_struct`.
#[derive(Clone)]
pub struct MmStruct {
    /// Small number for messages: mm#3.
    pub number: u32,
    /// `mmap`: the VMA chain, sorted by address; empty once exit_mmap detached it.
    pub mmap: Vec<VmaId>,
    pub pgd: Option<PgdId>,
    pub mm_users: i32,
    pub mm_count: i32,
    pub mmap_sem: LockId,
    pub page_table_lock: LockId,
    /// `def_flags & MM_GONE` (the patch): hold_mm must fail.
    pub mm_gone: bool,
    pub rss: i64,
    /// Who made it, for messages: "pid 2 (parent)", "child of pid 2 by fork".
    pub origin: String,
    /// What each written address should read back (data integrity).
    pub expected: BTreeMap<u64, u64>,
    /// `swap_address`: where the page stealer's next scan starts.
    pub swap_address: u64,
    /// `swap_cnt`: swap_out's "shadow rss", refilled from rss when no mm
    /// has any left, cleared when a scan of the mm finds nothing.
    pub swap_cnt: i64,
}

/// `struct vm_area_struct`: an anonymous private mapping, or a shared
/// attach of a SysV shm segment (`vm_ops = shm_vm_ops`, a `vm_file`).
#[derive(Clone)]
pub struct Vma {
    pub mm: MmId,
    pub start: u64,
    pub end: u64,
    pub writable: bool,
    /// The shm segment and the index of its first page, for an attach.
    pub shm: Option<(ShmId, u64)>,
    /// `vm_next` as whoever took the VMA off `mm->mmap` left it: munmap's
    /// private free list (`mpnt->vm_next = free`: the VMA unlinked before
    /// it) or exit_mmap's detached chain. Read only while the VMA is off
    /// the chain, by a walker that was standing on it (unuse_process).
    pub vm_next_unlinked: Option<VmaId>,
}

/// A SysV shm segment id (`shmid`), numbered from 0 in creation order.
pub type ShmId = usize;

/// `struct shmid_kernel`: the segment's own array of pte-like entries
/// (`SHM_ENTRY`): none, a present page (one page reference), or a swap
/// entry (one swap_map reference).
#[derive(Clone)]
pub struct ShmSegment {
    pub entries: Vec<Pte>,
    /// The segment inode's `i_sem`, which shm_nopage holds.
    pub i_sem: LockId,
    pub nattch: u32,
    /// `SHM_DEST` (IPC_RMID or the unlink): the segment goes when its last
    /// attach does.
    pub dest: bool,
    /// `shm_unlinked`: its name is gone (shm_unlink), so the last dput of
    /// its dentry deletes the inode (shm_delete).
    pub unlinked: bool,
    /// Deleted (shm_delete → seg_free): no longer in shm_ids.
    pub deleted: bool,
    /// What each page should read back (data integrity, shared by all attaches).
    pub expected: BTreeMap<u64, u64>,
}

/// `pgd_index(addr)` (include/asm-i386/pgtable.h): which pgd entry, and so
/// which page table, maps `addr`. (Not masked to 1024 entries: a scenario
/// address above 4 GB gets its own entry rather than an alias.)
pub fn pgd_index(addr: u64) -> u64 {
    addr >> PGDIR_SHIFT
}

/// One page table: a page of `PTRS_PER_PTE` ptes mapping 4 MB
/// (`pte_offset`). Only the ptes that are not `pte_none` are stored.
#[derive(Clone)]
pub struct PteTable {
    /// The page it occupies (`get_pte_slow`'s `__get_free_page`), held by
    /// the pgd entry until `clear_page_tables` frees it.
    pub page: PageId,
    /// By index in the table, `(addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)`.
    pub ptes: BTreeMap<u16, Pte>,
}

/// `mm->pgd`, i386 two-level paging: the pmd level is folded into the pgd
/// (pgtable-2level.h: `PTRS_PER_PMD` 1, `pmd_offset` returns the pgd entry
/// itself), so an entry is either none (`pmd_none`) or one page table.
/// Read and write ptes through `World::pte`, `World::set_pte` and
/// `World::ptes_in`.
#[derive(Clone, Default)]
pub struct PageTable {
    /// The present entries, by `pgd_index`.
    pub tables: BTreeMap<u64, PteTable>,
}

/// `struct page`.
#[derive(Clone)]
pub struct Page {
    pub number: u32,
    /// `page->count`.
    pub count: i32,
    /// PG_locked, as an engine lock (sleeping bit lock).
    pub lock: LockId,
    /// PG_swap_cache, with `mapping == &swapper_space`.
    pub swap_cache: bool,
    /// `page->index`: the swap entry while in the swap cache (and, with
    /// PG_swap_entry, the old slot after leaving it).
    pub index: Option<SwpEntry>,
    /// PG_swap_entry (pre4-5 only).
    pub swap_entry: bool,
    /// The page's contents, as a version number.
    pub data: u64,
    /// PG_dirty, kept for the later kernels only: set where they
    /// SetPageDirty a page that leaves the swap cache while ptes map it
    /// clean, so that their page stealer writes it out (the 2.3.99 world
    /// goes by the pte's dirty bit).
    pub dirty: bool,
}

/// `struct swap_info_struct`.
#[derive(Clone)]
pub struct SwapInfo {
    pub flags: u8,
    /// `swap_map`: None after swapoff's vfree (and before swapon).
    pub swap_map: Option<Vec<u16>>,
    /// `si->inuse_pages` (a later kernels' counter, kept for every variant):
    /// slots of `swap_map` in use, not counting the bad header slot.
    pub inuse_pages: u32,
    /// `max`: not reset by the pre4-5 swapoff.
    pub max: u32,
    /// Good pages.
    pub pages: u32,
    pub prio: i32,
    pub next: i32,
    pub lowest_bit: u32,
    pub highest_bit: u32,
    pub cluster_next: u32,
    pub cluster_nr: u32,
    /// `sdev_lock` (swap_device_lock).
    pub sdev_lock: LockId,
    /// Size of the device in pages, slot 0 included (the scenario's disk).
    pub size: u32,
    /// The disk: the contents written to each slot.
    pub disk: Vec<u64>,
    /// The 5.x device state swapoff frees at its end (`swap_device.rs`).
    pub device: crate::swap_device::DeviceState,
}

/// A task as the kernel sees it (`struct task_struct`, the parts that matter).
#[derive(Clone)]
pub struct Proc {
    pub pid: Pid,
    pub name: String,
    pub task: Option<TaskId>,
    pub mm: Option<MmId>,
    pub active_mm: Option<MmId>,
    /// On the task list (`SET_LINKS` done, not yet unhashed).
    pub linked: bool,
    pub exited: bool,
    /// A kernel thread (kswapd): no mm, never counted as a user task.
    pub kernel_thread: bool,
    /// Where a parent in wait4 sleeps until this task exits.
    pub exit_wait: LockId,
}

pub type Procs = FastMap<Pid, Proc>;

pub use engine::fast_hash::{FastHasher, FastMap};
