//! The kernel's state and the handle routines work through.

use std::cell::{Cell, RefCell, RefMut};
use std::rc::{Rc, Weak};

use engine::{LockId, LockKind, LockName, Sim, Task, TaskId};

use crate::fixes::Fixes;
use crate::tracked::{self, Arena, Map, Table, Whole};
use crate::types::*;
use crate::{KResult, Oops};

/// The machine a scenario describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub cpus: usize,
    /// Physical memory in 4 KiB pages.
    pub memory_pages: u32,
    /// Size in pages (header slot included) of each swap device, in order
    /// (swap_info[0], [1], ...). Devices start switched off.
    pub swap_devices: Vec<u32>,
    /// Faults the environment injects.
    pub faults: Faults,
    /// `max_threads`: fork fails with -EAGAIN beyond this many live tasks.
    pub max_threads: u32,
    /// What kernel work costs, in simulated ns.
    pub costs: KernelCosts,
}

/// Injected faults, deterministic by seed (each is a recorded choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Probability, in parts per million, that a page allocation fails
    /// outright (`__alloc_pages` returns NULL: the -ENOMEM paths).
    pub alloc_fail_ppm: u32,
    /// Fail exactly the Nth page allocation of the interleaved phase (1 is
    /// the first).
    pub alloc_fail_nth: Option<u64>,
    /// Probability, in parts per million, that a disk I/O takes ten times
    /// its usual latency.
    pub io_delay_ppm: u32,
    /// Probability, in parts per million, that a swap read fails (the page
    /// keeps garbage, which pre4-5 then maps: a data-integrity violation
    /// in any variant, since neither checks PG_uptodate).
    pub read_error_ppm: u32,
}

/// Simulated costs of kernel work, in ns (a ~500 MHz SMP box with an IDE
/// disk, year 2000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelCosts {
    /// Look at one pte.
    pub pte_scan: u64,
    /// Copy a 4 KiB page.
    pub page_copy: u64,
    /// Zero a 4 KiB page.
    pub page_zero: u64,
    /// A swap read from disk (seek + transfer).
    pub disk_read: u64,
    /// A swap write to disk.
    pub disk_write: u64,
    /// How long an allocation that blocks waits for memory.
    pub alloc_sleep: u64,
}

impl Default for KernelCosts {
    fn default() -> KernelCosts {
        KernelCosts {
            pte_scan: 20,
            page_copy: 4_000,
            page_zero: 2_000,
            disk_read: 8_000_000,
            disk_write: 8_000_000,
            alloc_sleep: 200_000,
        }
    }
}

/// Every kernel object, in arenas. Every field but the report's (`printk`,
/// `stats`) records its accesses for the step's footprint (`tracked.rs`).
pub struct World {
    pub mms: Arena<MmId, MmStruct, { tracked::MM }>,
    pub vmas: Arena<VmaId, Vma, { tracked::VMA }>,
    pub page_tables: Arena<PgdId, PageTable, { tracked::PAGE_TABLE }>,
    pub pages: Arena<PageId, Page, { tracked::PAGE }>,
    /// The swap cache: `(swapper_space, entry)` → page.
    pub swap_cache: Map<SwpEntry, PageId, { tracked::SWAP_CACHE }>,
    pub swap_info: Table<SwapInfo, { tracked::SWAP_INFO }>,
    /// `nr_swapfiles`: never decremented.
    pub nr_swapfiles: Whole<usize, { tracked::SWAP_LIST }, 0>,
    /// `swap_list.head` and `swap_list.next` (-1: empty).
    pub swap_list_head: Whole<i32, { tracked::SWAP_LIST }, 1>,
    pub swap_list_next: Whole<i32, { tracked::SWAP_LIST }, 2>,
    /// `nr_swap_pages`: free slots on WRITEOK devices.
    pub nr_swap_pages: Whole<i64, { tracked::SWAP_LIST }, 3>,
    /// `init_mm.mmlist`, in list order after init_mm: the patch's mm list,
    /// or a later kernel's mmlist (2.4.10: every mm; 5.1: mms that may
    /// hold swap entries).
    pub mmlist: Whole<Vec<MmId>, { tracked::MMLIST }>,
    /// Every task the kernel knows, by pid; `linked` says whether it is on
    /// the task list that `for_each_task` walks.
    pub procs: Map<Pid, Proc, { tracked::PROCS }>,
    /// The order of the task list (SET_LINKS appends).
    pub task_list: Whole<Vec<Pid>, { tracked::TASK_LIST }>,
    pub by_task: Map<TaskId, Pid, { tracked::BY_TASK }>,
    pub free_pages: Whole<u32, { tracked::MEMORY }, 0>,
    pub next_pid: Whole<Pid, { tracked::IDS }, 0>,
    pub next_mm_number: Whole<u32, { tracked::IDS }, 1>,
    pub next_page_number: Whole<u32, { tracked::IDS }, 2>,
    /// Contents versions: every user write makes a new one.
    pub next_data: Whole<u64, { tracked::IDS }, 3>,
    /// Page allocations so far (for `Faults::alloc_fail_nth`).
    pub allocations: Whole<u64, { tracked::MEMORY }, 1>,
    /// Whether faults are injected yet (not during boot and set-up).
    pub faults_armed: Whole<bool, { tracked::MEMORY }, 2>,
    /// The zone's `zone_wake_kswapd` and `low_on_memory` (mm/page_alloc.c):
    /// set by an allocation at or below `pages_low` / `pages_min`, cleared
    /// when a free takes the zone above `pages_high`.
    pub zone_wake_kswapd: Whole<bool, { tracked::MEMORY }, 3>,
    pub low_on_memory: Whole<bool, { tracked::MEMORY }, 4>,
    /// `nr_async_pages` (mm/page_io.c): asynchronous swap I/O in flight.
    pub nr_async_pages: Whole<u32, { tracked::MEMORY }, 5>,
    /// The tasks running with `PF_MEMALLOC` (kswapd, and a task inside
    /// try_to_free_pages): their allocations skip the watermarks.
    pub pf_memalloc: Whole<Vec<TaskId>, { tracked::MEMORY }, 6>,
    /// SysV shm segments, by id.
    pub shm_segs: Table<ShmSegment, { tracked::SHM }>,
    /// `shm_rss`, `shm_swp`, `shm_tot` (ipc/shm.c).
    pub shm_rss: Whole<i64, { tracked::SHM }, { tracked::SHAPE - 1 }>,
    pub shm_swp: Whole<i64, { tracked::SHM }, { tracked::SHAPE - 2 }>,
    pub shm_tot: Whole<i64, { tracked::SHM }, { tracked::SHAPE - 3 }>,
    /// Kernel messages (printk), in order.
    pub printk: Vec<String>,
    pub stats: Stats,
    /// The key events signatures classify a violation by
    /// (`crate::signatures`): observed, never read by the model.
    pub keys: Vec<crate::signatures::Keyed>,
}

// By hand, for `clone_from`: each run copies the set-up's world into the
// last run's (`Kernel::reset_to`), whose buffers have the room it needed.
impl Clone for World {
    fn clone(&self) -> World {
        World {
            mms: self.mms.clone(),
            vmas: self.vmas.clone(),
            page_tables: self.page_tables.clone(),
            pages: self.pages.clone(),
            swap_cache: self.swap_cache.clone(),
            swap_info: self.swap_info.clone(),
            nr_swapfiles: self.nr_swapfiles.clone(),
            swap_list_head: self.swap_list_head.clone(),
            swap_list_next: self.swap_list_next.clone(),
            nr_swap_pages: self.nr_swap_pages.clone(),
            mmlist: self.mmlist.clone(),
            procs: self.procs.clone(),
            task_list: self.task_list.clone(),
            by_task: self.by_task.clone(),
            free_pages: self.free_pages.clone(),
            next_pid: self.next_pid.clone(),
            next_mm_number: self.next_mm_number.clone(),
            next_page_number: self.next_page_number.clone(),
            next_data: self.next_data.clone(),
            allocations: self.allocations.clone(),
            faults_armed: self.faults_armed.clone(),
            zone_wake_kswapd: self.zone_wake_kswapd.clone(),
            low_on_memory: self.low_on_memory.clone(),
            nr_async_pages: self.nr_async_pages.clone(),
            pf_memalloc: self.pf_memalloc.clone(),
            shm_segs: self.shm_segs.clone(),
            shm_rss: self.shm_rss.clone(),
            shm_swp: self.shm_swp.clone(),
            shm_tot: self.shm_tot.clone(),
            printk: self.printk.clone(),
            stats: self.stats,
            keys: self.keys.clone(),
        }
    }

    fn clone_from(&mut self, source: &World) {
        // Every field named: a new one cannot be left out.
        let World {
            mms,
            vmas,
            page_tables,
            pages,
            swap_cache,
            swap_info,
            nr_swapfiles,
            swap_list_head,
            swap_list_next,
            nr_swap_pages,
            mmlist,
            procs,
            task_list,
            by_task,
            free_pages,
            next_pid,
            next_mm_number,
            next_page_number,
            next_data,
            allocations,
            faults_armed,
            zone_wake_kswapd,
            low_on_memory,
            nr_async_pages,
            pf_memalloc,
            shm_segs,
            shm_rss,
            shm_swp,
            shm_tot,
            printk,
            stats,
            keys,
        } = source;
        self.mms.clone_from(mms);
        self.vmas.clone_from(vmas);
        self.page_tables.clone_from(page_tables);
        self.pages.clone_from(pages);
        self.swap_cache.clone_from(swap_cache);
        self.swap_info.clone_from(swap_info);
        self.nr_swapfiles.clone_from(nr_swapfiles);
        self.swap_list_head.clone_from(swap_list_head);
        self.swap_list_next.clone_from(swap_list_next);
        self.nr_swap_pages.clone_from(nr_swap_pages);
        self.mmlist.clone_from(mmlist);
        self.procs.clone_from(procs);
        self.task_list.clone_from(task_list);
        self.by_task.clone_from(by_task);
        self.free_pages.clone_from(free_pages);
        self.next_pid.clone_from(next_pid);
        self.next_mm_number.clone_from(next_mm_number);
        self.next_page_number.clone_from(next_page_number);
        self.next_data.clone_from(next_data);
        self.allocations.clone_from(allocations);
        self.faults_armed.clone_from(faults_armed);
        self.zone_wake_kswapd.clone_from(zone_wake_kswapd);
        self.low_on_memory.clone_from(low_on_memory);
        self.nr_async_pages.clone_from(nr_async_pages);
        self.pf_memalloc.clone_from(pf_memalloc);
        self.shm_segs.clone_from(shm_segs);
        self.shm_rss.clone_from(shm_rss);
        self.shm_swp.clone_from(shm_swp);
        self.shm_tot.clone_from(shm_tot);
        self.printk.clone_from(printk);
        self.stats = *stats;
        self.keys.clone_from(keys);
    }
}

/// The page tables, as the kernel walks them: `pgd_offset` → `pmd_offset`
/// (folded) → `pte_offset`. Every routine that reads or writes a pte goes
/// through these.
impl World {
    /// The pte at `addr` of `mm`: `pte_none` where no page table maps it
    /// (`pmd_none`), or the mm is gone.
    pub fn pte(&self, mm: MmId, addr: u64) -> Pte {
        let Some(pgd) = self.mms.get(mm).and_then(|m| m.pgd) else { return Pte::None };
        let Some(table) = self.page_tables.get(pgd).and_then(|p| p.tables.get(&pgd_index(addr))) else {
            return Pte::None;
        };
        table.ptes.get(&pte_index(addr)).copied().unwrap_or(Pte::None)
    }

    /// Whether a page table maps `addr` (`!pmd_none(*pmd)`).
    pub fn pmd_present(&self, mm: MmId, addr: u64) -> bool {
        let Some(pgd) = self.mms.get(mm).and_then(|m| m.pgd) else { return false };
        self.page_tables.get(pgd).is_some_and(|p| p.tables.contains_key(&pgd_index(addr)))
    }

    /// `set_pte`. The page table must be there (`pte_alloc`), unless the
    /// pte is cleared: clearing a pte no table holds changes nothing.
    pub fn set_pte(&mut self, mm: MmId, addr: u64, pte: Pte) {
        let Some(pgd) = self.mms.get(mm).and_then(|m| m.pgd) else { return };
        let table = self.page_tables.get_mut(pgd).and_then(|p| p.tables.get_mut(&pgd_index(addr)));
        match (table, pte) {
            (Some(table), Pte::None) => {
                table.ptes.remove(&pte_index(addr));
            }
            (Some(table), pte) => {
                table.ptes.insert(pte_index(addr), pte);
            }
            (None, Pte::None) => {}
            (None, _) => panic!("set_pte at {addr:#x} with no page table: pte_alloc first"),
        }
    }

    /// The ptes of `mm` in `[start, end)` that are not none, in address
    /// order: the walk over the pgd entries and their page tables that
    /// zap_page_range, copy_page_range, swap_out and swapoff make.
    pub fn ptes_in(&self, mm: MmId, start: u64, end: u64) -> PteWalk<'_> {
        let pgd = self.mms.get(mm).and_then(|m| m.pgd).and_then(|pgd| self.page_tables.get(pgd));
        let tables = match (pgd, start < end) {
            (Some(pgd), true) => Some(pgd.tables.range(pgd_index(start)..=pgd_index(end - 1))),
            _ => None,
        };
        PteWalk { tables, table: None, start, end }
    }

    /// `set_pmd(pmd, _PAGE_TABLE + __pa(page))`: `page` becomes the page
    /// table that maps `addr`, with every pte none.
    pub fn pmd_populate(&mut self, mm: MmId, addr: u64, page: PageId) {
        let pgd = self.mms[mm].pgd.expect("a live mm has a pgd");
        let old = self.page_tables[pgd].tables.insert(pgd_index(addr), PteTable { page, ptes: Default::default() });
        assert!(old.is_none(), "pmd_populate over a present pgd entry");
    }

    /// `free_one_pmd`'s `pmd_clear`: take out the page tables of pgd entries
    /// `first..first + nr` and return the pages they occupied.
    pub fn pmd_clear(&mut self, mm: MmId, first: u64, nr: u64) -> Vec<PageId> {
        let Some(pgd) = self.mms.get(mm).and_then(|m| m.pgd) else { return Vec::new() };
        let tables = &mut self.page_tables[pgd].tables;
        let gone: Vec<u64> = tables.range(first..first.saturating_add(nr)).map(|(&i, _)| i).collect();
        gone.into_iter().filter_map(|i| tables.remove(&i)).map(|t| t.page).collect()
    }
}

/// `(addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)`: the pte's index in its table.
fn pte_index(addr: u64) -> u16 {
    ((addr / PAGE_SIZE) % PTRS_PER_PTE) as u16
}

/// Counters a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub forks: u64,
    pub exits: u64,
    pub faults: u64,
    pub swap_ins: u64,
    pub swap_outs: u64,
    pub swapoffs: u64,
    pub swapons: u64,
    pub undead: u64,
}

/// The kernel: its state, its global locks and the fix switches.
pub struct Kernel {
    pub sim: Rc<Sim>,
    pub fixes: Fixes,
    pub costs: KernelCosts,
    world: RefCell<World>,
    /// `tasklist_lock` (rwlock).
    pub tasklist_lock: LockId,
    /// `swaplock` (swap_list_lock).
    pub swaplock: LockId,
    /// `pagecache_lock`.
    pub pagecache_lock: LockId,
    /// The patch's `mm_lock` (mmlist_access_lock / mmlist_modify_lock).
    pub mm_lock: LockId,
    /// Later kernels' `mmlist_lock` (2.4.10, 5.1), guarding `World::mmlist`.
    pub mmlist_lock: LockId,
    /// `shm_ids.ary`: `shm_lock(id)` and `shm_lockall()` take this one
    /// spinlock in 2.3.99.
    pub shm_lock: LockId,
    /// `kswapd_wait`, the queue kswapd sleeps on.
    pub kswapd_wait: LockId,
    /// `shm_ids.sem` (ipc/shm.c): the semaphore of the shm id table.
    pub shm_ids_sem: LockId,
    /// The shm filesystem root's `i_sem` and `i_zombie` (lock_parent and
    /// vfs_unlink in shm_remove_name).
    pub shm_root_i_sem: LockId,
    pub shm_root_i_zombie: LockId,
    /// Number of tasks inside a system call or fault right now.
    in_kernel: Cell<u32>,
    /// Itself, for I/O completions that run later.
    me: Weak<Kernel>,
    /// Physical memory, in pages.
    pub memory_pages: u32,
    /// Faults to inject once armed.
    pub faults: Faults,
    /// `max_threads` (kernel/fork.c).
    pub max_threads: u32,
}

impl Kernel {
    pub fn new(sim: Rc<Sim>, machine: &Machine, fixes: Fixes) -> Rc<Kernel> {
        let swap_info = machine
            .swap_devices
            .iter()
            .enumerate()
            .map(|(i, &size)| SwapInfo {
                flags: 0,
                swap_map: None,
                inuse_pages: 0,
                max: 0,
                pages: 0,
                prio: -(i as i32) - 1,
                next: -1,
                lowest_bit: 0,
                highest_bit: 0,
                cluster_next: 1,
                cluster_nr: 0,
                sdev_lock: sim.new_lock(
                    LockKind::Spin,
                    "sdev_lock",
                    LockName::Numbered("swap_info[", i as u64, "].sdev_lock"),
                ),
                size,
                disk: vec![0; size as usize],
                device: crate::swap_device::DeviceState {
                    comp: fixes.later.get_swap_device.then(|| {
                        sim.new_lock(
                            LockKind::WaitQueue,
                            "swap_comp",
                            LockName::Numbered("swap_info[", i as u64, "].comp"),
                        )
                    }),
                    ..Default::default()
                },
            })
            .collect::<Vec<_>>();
        let world = World {
            mms: Arena::new(),
            vmas: Arena::new(),
            page_tables: Arena::new(),
            pages: Arena::new(),
            swap_cache: Map::new(),
            nr_swapfiles: Whole::new(swap_info.len()),
            swap_info: Table::new(swap_info),
            swap_list_head: Whole::new(-1),
            swap_list_next: Whole::new(-1),
            nr_swap_pages: Whole::new(0),
            mmlist: Whole::new(Vec::new()),
            procs: Map::new(),
            task_list: Whole::new(Vec::new()),
            by_task: Map::new(),
            free_pages: Whole::new(machine.memory_pages),
            next_pid: Whole::new(1),
            next_mm_number: Whole::new(1),
            next_page_number: Whole::new(1),
            next_data: Whole::new(1),
            allocations: Whole::new(0),
            faults_armed: Whole::new(false),
            zone_wake_kswapd: Whole::new(false),
            low_on_memory: Whole::new(false),
            nr_async_pages: Whole::new(0),
            pf_memalloc: Whole::new(Vec::new()),
            shm_segs: Table::new(Vec::new()),
            shm_rss: Whole::new(0),
            shm_swp: Whole::new(0),
            shm_tot: Whole::new(0),
            printk: Vec::new(),
            stats: Stats::default(),
            keys: Vec::new(),
        };
        Rc::new_cyclic(|me| Kernel {
            me: me.clone(),
            memory_pages: machine.memory_pages,
            faults: machine.faults,
            max_threads: machine.max_threads,
            tasklist_lock: sim.new_lock(LockKind::RwSpin, "tasklist_lock", "tasklist_lock".into()),
            swaplock: sim.new_lock(LockKind::Spin, "swaplock", "swaplock".into()),
            pagecache_lock: sim.new_lock(LockKind::Spin, "pagecache_lock", "pagecache_lock".into()),
            mm_lock: sim.new_lock(LockKind::Spin, "mm_lock", "mm_lock".into()),
            mmlist_lock: sim.new_lock(LockKind::Spin, "mmlist_lock", "mmlist_lock".into()),
            shm_lock: sim.new_lock(LockKind::Spin, "shm_lock", "shm_ids.ary".into()),
            kswapd_wait: sim.new_lock(LockKind::WaitQueue, "kswapd_wait", "kswapd_wait".into()),
            shm_ids_sem: sim.new_lock(LockKind::Semaphore, "shm_ids.sem", "shm_ids.sem".into()),
            shm_root_i_sem: sim.new_lock(LockKind::Semaphore, "i_sem", "shm_root.i_sem".into()),
            shm_root_i_zombie: sim.new_lock(LockKind::Semaphore, "i_zombie", "shm_root.i_zombie".into()),
            sim,
            fixes,
            costs: machine.costs,
            world: RefCell::new(world),
            in_kernel: Cell::new(0),
        })
    }

    /// A copy of this kernel on `sim`, a simulator restored from a snapshot
    /// of this kernel's own ([`Sim::snapshot`]), so that every lock id
    /// names the same lock: for starting runs after a set-up phase without
    /// running it again. Every field is named, so that a new one cannot be
    /// left out.
    pub fn copy_onto(&self, sim: Rc<Sim>) -> Rc<Kernel> {
        let Kernel {
            sim: _,
            fixes,
            costs,
            world,
            tasklist_lock,
            swaplock,
            pagecache_lock,
            mm_lock,
            mmlist_lock,
            shm_lock,
            kswapd_wait,
            shm_ids_sem,
            shm_root_i_sem,
            shm_root_i_zombie,
            in_kernel,
            me: _,
            memory_pages,
            faults,
            max_threads,
        } = self;
        let world = world.borrow().clone();
        Rc::new_cyclic(|me| Kernel {
            sim,
            fixes: *fixes,
            costs: *costs,
            world: RefCell::new(world),
            tasklist_lock: *tasklist_lock,
            swaplock: *swaplock,
            pagecache_lock: *pagecache_lock,
            mm_lock: *mm_lock,
            mmlist_lock: *mmlist_lock,
            shm_lock: *shm_lock,
            kswapd_wait: *kswapd_wait,
            shm_ids_sem: *shm_ids_sem,
            shm_root_i_sem: *shm_root_i_sem,
            shm_root_i_zombie: *shm_root_i_zombie,
            in_kernel: in_kernel.clone(),
            me: me.clone(),
            memory_pages: *memory_pages,
            faults: *faults,
            max_threads: *max_threads,
        })
    }

    /// Put this kernel in the state of `kept`, as `kept.copy_onto(sim)`
    /// would make it, but in this one's buffers (a search's runs then
    /// allocate little). This kernel's simulator must have been reset to
    /// the snapshot of the same set-up as `kept` (so every lock is the
    /// same): only the world and the in-kernel count change.
    pub fn reset_to(&self, kept: &Kernel) {
        let Kernel {
            sim: _,
            fixes,
            costs,
            world,
            tasklist_lock,
            swaplock,
            pagecache_lock,
            mm_lock,
            mmlist_lock,
            shm_lock,
            kswapd_wait,
            shm_ids_sem,
            shm_root_i_sem,
            shm_root_i_zombie,
            in_kernel,
            me: _,
            memory_pages,
            faults,
            max_threads,
        } = kept;
        let same_set_up = self.fixes == *fixes
            && self.costs == *costs
            && [
                self.tasklist_lock,
                self.swaplock,
                self.pagecache_lock,
                self.mm_lock,
                self.mmlist_lock,
                self.shm_lock,
                self.kswapd_wait,
                self.shm_ids_sem,
                self.shm_root_i_sem,
                self.shm_root_i_zombie,
            ] == [
                *tasklist_lock,
                *swaplock,
                *pagecache_lock,
                *mm_lock,
                *mmlist_lock,
                *shm_lock,
                *kswapd_wait,
                *shm_ids_sem,
                *shm_root_i_sem,
                *shm_root_i_zombie,
            ]
            && self.memory_pages == *memory_pages
            && self.faults == *faults
            && self.max_threads == *max_threads;
        assert!(same_set_up, "reset_to a kernel of another set-up");
        self.world.borrow_mut().clone_from(&world.borrow());
        self.in_kernel.set(in_kernel.get());
    }

    /// A strong handle to this kernel (for callbacks that run later).
    pub fn me(&self) -> Rc<Kernel> {
        self.me.upgrade().expect("the kernel outlives its routines")
    }

    /// The state. Never hold the borrow across an `.await`.
    pub fn w(&self) -> RefMut<'_, World> {
        self.world.borrow_mut()
    }

    /// Report a BUG()/oops: the run stops with this violation.
    pub fn oops(&self, t: &Task, invariant: &'static str, message: impl Into<String>) -> Oops {
        t.violation(invariant, message);
        Oops
    }

    /// `lockdep_assert_held`: where the C (or the patch) relies on `lock`
    /// being held by the caller, a run in which it is not is a violation
    /// (`lock-held`), even if no other task happens to race there.
    pub fn assert_held(&self, t: &Task, lock: engine::LockId, what: &str, point: &str) -> KResult<()> {
        if t.holds(lock) {
            return Ok(());
        }
        Err(self.oops(t, "lock-held", format!("{point}: {what} is not held here (lockdep_assert_held)")))
    }

    /// `printk`: a kernel message, kept in order and noted in the event log.
    pub fn printk(&self, t: &Task, point: engine::Point, message: impl Into<String>) {
        let message = message.into();
        t.note(point, || format!("printk: {message}"));
        self.w().printk.push(message);
    }

    /// The process a task runs as (`current`).
    pub fn current(&self, t: &Task) -> Pid {
        *self.w().by_task.get(&t.id()).expect("every kernel task is bound to a process")
    }

    /// Run `task` as process `pid` (a set-up step, or the process itself).
    pub fn bind(&self, task: TaskId, pid: Pid) {
        let mut w = self.w();
        w.by_task.insert(task, pid);
        if let Some(p) = w.procs.get_mut(&pid) {
            p.task.get_or_insert(task);
        }
    }

    pub fn enter_kernel(&self) {
        engine::footprint::touch(tracked::IN_KERNEL, 0, true);
        self.in_kernel.set(self.in_kernel.get() + 1);
    }

    /// Returns whether the kernel is now quiescent (no task inside it).
    pub fn leave_kernel(&self) -> bool {
        engine::footprint::touch(tracked::IN_KERNEL, 0, true);
        let n = self.in_kernel.get() - 1;
        self.in_kernel.set(n);
        n == 0
    }

    /// A kernel thread (kswapd): on the task list, with no mm of its own.
    pub fn create_kernel_thread(&self, name: &str) -> Pid {
        self.link_new_proc(name, None)
    }

    /// A fresh process with its own empty mm, on the task list (and on the
    /// mm list when the patch is in): what exec leaves behind. Boot-time
    /// construction, not an interleaved routine.
    pub fn create_process(&self, name: &str) -> Pid {
        let mm = self.new_mm(format!("pid {} ({name})", *self.w().next_pid));
        if self.fixes.era == crate::Era::Linux2_4_10 {
            // 2.4.10's exec_mmap: list_add(&mm->mmlist, &init_mm.mmlist).
            self.w().mmlist.insert(0, mm);
        }
        self.link_new_proc(name, Some(mm))
    }

    /// A task with the next pid, linked on the task list.
    fn link_new_proc(&self, name: &str, mm: Option<MmId>) -> Pid {
        let mut w = self.w();
        let pid = *w.next_pid;
        *w.next_pid += 1;
        let exit_wait = self.sim.new_lock(
            LockKind::WaitQueue,
            "wait_chldexit",
            LockName::Numbered("pid", pid.into(), ".wait_chldexit"),
        );
        w.procs.insert(
            pid,
            Proc {
                pid,
                name: name.to_string(),
                task: None,
                mm,
                active_mm: mm,
                linked: true,
                exited: false,
                kernel_thread: mm.is_none(),
                exit_wait,
            },
        );
        w.task_list.push(pid);
        pid
    }

    /// `mm_alloc`'s construction step (kernel/fork.c): counts at 1, a new
    /// mmap_sem and page_table_lock, a pgd. The patch adds it at the tail of
    /// the mm list; the caller does that under mm_lock.
    pub(crate) fn new_mm(&self, origin: String) -> MmId {
        let mut w = self.w();
        let number = *w.next_mm_number;
        *w.next_mm_number += 1;
        // 5.x's mmap_sem is an rw_semaphore (faults and unuse_mm read it).
        let kind = if self.fixes.later.teardown { LockKind::RwSem } else { LockKind::Semaphore };
        let mmap_sem = self.sim.new_lock(kind, "mmap_sem", LockName::Numbered("mm#", number.into(), ".mmap_sem"));
        let page_table_lock = self.sim.new_lock(
            LockKind::Spin,
            "page_table_lock",
            LockName::Numbered("mm#", number.into(), ".page_table_lock"),
        );
        let pgd = w.page_tables.insert(PageTable::default());
        let mm = w.mms.insert(MmStruct {
            number,
            mmap: Vec::new(),
            pgd: Some(pgd),
            mm_users: 1,
            mm_count: 1,
            mmap_sem,
            page_table_lock,
            mm_gone: false,
            rss: 0,
            origin,
            expected: Default::default(),
            swap_address: 0,
            swap_cnt: 0,
        });
        if self.fixes.mmlist {
            w.mmlist.push(mm);
        }
        mm
    }

    /// Add an anonymous private writable mapping of `pages` pages at
    /// `start` (what do_mmap leaves; boot-time construction).
    pub fn map_anonymous(&self, pid: Pid, start: u64, pages: u64) -> Result<(), String> {
        self.map_vma(pid, start, pages, None)
    }

    fn map_vma(&self, pid: Pid, start: u64, pages: u64, shm: Option<(ShmId, u64)>) -> Result<(), String> {
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(format!("mapping start {start:#x} is not page aligned"));
        }
        if pages == 0 {
            return Err("a mapping needs at least one page".into());
        }
        let end = start + pages * PAGE_SIZE;
        let mut w = self.w();
        let mm = w.procs.get(&pid).and_then(|p| p.mm).ok_or_else(|| format!("pid {pid} has no mm"))?;
        let overlaps = w.mms[mm].mmap.iter().any(|&v| w.vmas[v].start < end && start < w.vmas[v].end);
        if overlaps {
            return Err(format!("mapping {start:#x}..{end:#x} overlaps an existing one"));
        }
        let vma = w.vmas.insert(Vma { mm, start, end, writable: true, shm, vm_next_unlinked: None });
        let World { mms, vmas, .. } = &mut *w;
        let chain = &mut mms[mm].mmap;
        let at = chain.iter().position(|&v| vmas[v].start > start).unwrap_or(chain.len());
        chain.insert(at, vma);
        Ok(())
    }

    /// `shmget(IPC_PRIVATE, pages * PAGE_SIZE)`: a new segment with no
    /// pages yet (boot-time construction). Returns its id.
    pub fn shmget(&self, pages: usize) -> ShmId {
        let mut w = self.w();
        let id = w.shm_segs.len();
        let i_sem = self.sim.new_lock(LockKind::Semaphore, "i_sem", LockName::Numbered("shm", id as u64, ".i_sem"));
        w.shm_segs.push(ShmSegment {
            entries: vec![Pte::None; pages],
            i_sem,
            nattch: 0,
            dest: false,
            unlinked: false,
            deleted: false,
            expected: Default::default(),
        });
        *w.shm_tot += pages as i64;
        id
    }

    /// `shmat(id, addr)` (ipc/shm.c → do_mmap of the segment's file,
    /// MAP_SHARED): a VMA over the whole segment at `start`.
    pub fn shmat(&self, pid: Pid, seg: ShmId, start: u64) -> Result<(), String> {
        let pages =
            self.w().shm_segs.get(seg).map(|s| s.entries.len()).ok_or_else(|| format!("no shm segment {seg}"))?;
        self.map_vma(pid, start, pages as u64, Some((seg, 0)))?;
        self.w().shm_segs[seg].nattch += 1;
        Ok(())
    }

    /// A disk I/O's latency: `base_ns`, or ten times that when an injected
    /// delay hits.
    pub fn io_latency(&self, t: &engine::Task, point: engine::Point, base_ns: u64) -> u64 {
        if *self.w().faults_armed && t.inject(point, self.faults.io_delay_ppm) {
            base_ns * 10
        } else {
            base_ns
        }
    }

    /// `page_cluster` as `swap_setup` (mm/swap.c) sets it: 2 below 16 MB
    /// of memory, 3 below 32 MB, else 4.
    pub fn page_cluster(&self) -> u32 {
        const MB: u32 = 256; // pages per MB
        match self.memory_pages {
            n if n < 16 * MB => 2,
            n if n < 32 * MB => 3,
            _ => 4,
        }
    }

    /// The zone's `pages_min` (mm/page_alloc.c:583-590, free_area_init_core):
    /// memory/128, at least 10 and at most 255 (zone_balance_ratio, _min,
    /// _max), and — the model's machines being tiny — at most memory/6, so
    /// that `pages_high` stays below half of memory. At or below it an
    /// allocation runs direct reclaim.
    pub fn pages_min(&self) -> u32 {
        (self.memory_pages / 128).clamp(10, 255).min(self.memory_pages / 6)
    }

    /// `pages_low` = 2 × pages_min: at or below it an allocation wakes kswapd.
    pub fn pages_low(&self) -> u32 {
        2 * self.pages_min()
    }

    /// `pages_high` = 3 × pages_min: a free above it ends the zone's
    /// reclaim (zone_wake_kswapd and low_on_memory cleared).
    pub fn pages_high(&self) -> u32 {
        3 * self.pages_min()
    }

    /// A short description of an mm for messages.
    pub fn describe_mm(&self, mm: MmId) -> String {
        let w = self.w();
        match w.mms.get(mm) {
            Some(m) => format!("mm#{} of {}", m.number, m.origin),
            None => "a freed mm".to_string(),
        }
    }

    /// Look up a live mm or report a use-after-free.
    pub fn check_mm(&self, t: &Task, mm: MmId, point: &str) -> KResult<()> {
        if self.w().mms.contains_key(mm) {
            Ok(())
        } else {
            Err(self.oops(t, "use-after-free", format!("{point} used an mm_struct that was already freed")))
        }
    }

    /// Look up a live page or report a use-after-free.
    pub fn check_page(&self, t: &Task, page: PageId, point: &str) -> KResult<()> {
        if self.w().pages.contains_key(page) {
            Ok(())
        } else {
            Err(self.oops(t, "use-after-free", format!("{point} used a struct page that was already freed")))
        }
    }
}

/// The walk of [`World::ptes_in`]: the page tables in the range, and in
/// each the ptes that are not none, in address order. (A hand-written
/// pair of loops: `flat_map` over the two B-tree ranges cost twice as
/// much a pte.)
pub struct PteWalk<'a> {
    tables: Option<std::collections::btree_map::Range<'a, u64, PteTable>>,
    /// The table being walked: its base address and its ptes left.
    table: Option<(u64, std::collections::btree_map::Range<'a, u16, Pte>)>,
    start: u64,
    end: u64,
}

impl Iterator for PteWalk<'_> {
    type Item = (u64, Pte);

    fn next(&mut self) -> Option<(u64, Pte)> {
        loop {
            if let Some((base, ptes)) = &mut self.table {
                if let Some((&i, &pte)) = ptes.next() {
                    return Some((*base + u64::from(i) * PAGE_SIZE, pte));
                }
            }
            let (&dir, table) = self.tables.as_mut()?.next()?;
            // The first and last tables are walked from and to the range's ends.
            let first = if dir == pgd_index(self.start) { pte_index(self.start) } else { 0 };
            let last = if dir == pgd_index(self.end - 1) { pte_index(self.end - 1) } else { (PTRS_PER_PTE - 1) as u16 };
            self.table = Some((dir << PGDIR_SHIFT, table.ptes.range(first..=last)));
        }
    }
}
