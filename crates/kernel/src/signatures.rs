//! Race signatures: which interleaving broke, not which check.
//!
//! A violation names the invariant that broke and where it was noticed,
//! which is often far from the race that caused it: race 1 leaves a child's
//! pte holding a dead entry, and the child's next fault oopses in
//! `valid_swaphandles`, a readahead check. To say which race happened, the
//! kernel keeps a short log of *key events* ([`KeyEvent`]) — a swap pte
//! written and by whom, swapoff's walk reaching an mm or a VMA, a slot
//! done, a fault starting on an entry, a swap-cache delete and its caller —
//! and [`classify`] matches the run's violation against each race's
//! signature, a predicate over that log and the final state, in the order
//! of [`SIGNATURES`]. A violation no signature explains is `unclassified`,
//! with a short key (the invariant, the message's shape, and the key event
//! of another task it followed).
//!
//! The log is observation only: no kernel routine reads it, so it is not
//! part of a step's footprint and costs a push per key event.

use std::fmt::Write as _;

use engine::{TaskId, Violation};

use crate::types::*;
use crate::{Kernel, World};

/// Past this many events the log stops growing (a long sweep run), and a
/// violation after that is classified as far as the log goes.
pub const KEY_LOG_LIMIT: usize = 1 << 20;

/// One key event, with the task that made it (None: set-up or boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyed {
    pub task: Option<TaskId>,
    pub event: KeyEvent,
}

/// The events a signature looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEvent {
    /// A swap entry was written into a pte: by `copy_page_range` (fork) or
    /// by the page stealer (`try_to_swap_out`), named by its point.
    SwapPteSet { mm: MmId, addr: u64, entry: SwpEntry, by: &'static str },
    /// try_to_unuse took slot `entry` (its temporary reference).
    SlotStart { entry: SwpEntry },
    /// try_to_unuse is done with slot `entry` (any count left forced to 0).
    SlotDone { entry: SwpEntry },
    /// swapoff's walk for `entry` reached `mm` (unuse_process / unuse_mm).
    WalkMm { entry: SwpEntry, mm: MmId },
    /// ... and scanned the ptes of the VMA `[start, end)` of it.
    WalkVma { entry: SwpEntry, mm: MmId, start: u64, end: u64 },
    /// unuse_pte replaced the pte's `entry` by the page.
    UnusePte { mm: MmId, addr: u64, entry: SwpEntry },
    /// unuse_pte's `set_pte(pte_mkdirty(pte))` of a present pte of `page`,
    /// written from the value it read with no lock.
    UnusePteDirty { mm: MmId, addr: u64, page: PageId },
    /// do_wp_page's break_cow mapped a copy in place of `old`.
    WpCopy { mm: MmId, addr: u64, old: PageId },
    /// do_swap_page started on the pte's `entry` ...
    FaultSwap { mm: MmId, addr: u64, entry: SwpEntry },
    /// ... and returned.
    FaultDone { mm: MmId, addr: u64 },
    /// zap_pte_range freed the swap entry a pte held.
    ZapSwap { mm: MmId, addr: u64, entry: SwpEntry },
    /// A page joined the swap cache for `entry`.
    SwapCacheAdd { entry: SwpEntry },
    /// swapin_readahead took a temporary reference on slot `entry` of the
    /// faulting entry's cluster in valid_swaphandles ...
    ReadaheadRef { entry: SwpEntry },
    /// ... and dropped it after read_swap_cache_async.
    ReadaheadDone { entry: SwpEntry },
    /// A caller decided to delete `page` (entry `entry`) from the swap
    /// cache: try_to_unuse, shm_nopage, free_page_and_swap_cache,
    /// do_wp_page, do_swap_page.
    SwapCacheDrop { page: PageId, entry: SwpEntry, by: &'static str },
    /// shm_nopage read SHM_ENTRY = `entry` and dropped the shm lock.
    ShmNopageSnap { seg: usize, idx: usize, entry: SwpEntry },
    /// A later kernel's shmem swap-in started on SHM_ENTRY = `entry`.
    ShmSwapin { seg: usize, idx: usize, entry: SwpEntry },
    /// shm_unuse replaced SHM_ENTRY `entry` by swapoff's page.
    ShmUnuse { seg: usize, idx: usize, entry: SwpEntry },
    /// shm_swap_preop took slot `entry` (count 2), not yet in the segment.
    ShmSwapPreop { entry: SwpEntry },
    /// shm_swap_core published `entry` in the segment.
    ShmSwapPublish { entry: SwpEntry },
    /// SET_LINKS: the task joined the task list.
    TaskLinked { pid: Pid },
    /// `__exit_mm`: the task's `tsk->mm` is NULL (for_each_task skips it).
    MmDropped { pid: Pid, mm: MmId },
    /// exec_mmap let go of `mm`: emptied it in place (the last user) or
    /// switched to a new mm and mmput the old one.
    Exec { mm: MmId },
    /// exit_mmap detached the VMA chain of `mm`.
    ChainDetached { mm: MmId },
    /// copy_mm's error path: fork failed after dup_mmap started on `mm`.
    ForkFailed { mm: MmId },
    /// munmap took the VMA `[start, end)` of `mm` off its chain.
    VmaUnlinked { mm: MmId, start: u64, end: u64 },
    /// 5.1-rc's try_to_unuse gave up with -EBUSY after `passes` passes
    /// (SWAP_UNUSE_MAX_TRIES).
    UnuseGaveUp { type_: usize, passes: u32 },
}

/// A race's signature.
pub struct Signature {
    /// The bucket name: `race1-fork`, `shm-swap-window`, ...
    pub name: &'static str,
    /// What it stands for, in the seed's words or ours.
    pub title: &'static str,
    /// The predicate, as the docs state it.
    pub predicate: &'static str,
    check: fn(&Ctx) -> Option<String>,
}

/// Every signature, in the order they are tried: a more specific mechanism
/// before the one it contains (fork's -ENOMEM unwinding before race 1, the
/// stale shm snapshot of race 7 after the double delete of race 4).
pub const SIGNATURES: &[Signature] = &[
    Signature {
        name: "swap-unuse-max-tries",
        title: "5.1-rc1..rc4: swapoff gives up with -EBUSY after SWAP_UNUSE_MAX_TRIES passes (fixed by dd862deb151a)",
        predicate: "try_to_unuse ended its third pass with slots still in use (an exiting mm still freeing its \
                    swap) and returned -EBUSY",
        check: unuse_max_tries,
    },
    Signature {
        name: "82b1c07a-zap",
        title: "free_swap_and_cache against swapoff (82b1c07a0af6, CVE-2024-26960)",
        predicate: "the breaking task was in zap_pte_range's free_swap_and_cache of an entry when it read device \
                    state (swap_map, the swap cache) that swapoff had freed",
        check: zap_82b1c07a,
    },
    Signature {
        name: "2efa33fc-shmem-swapin",
        title: "shmem_swapin against swapoff (2efa33fc7f6e, with 2799e77529c2 and 63d8620ecf93)",
        predicate: "the breaking task's shmem swap-in read device state (si->swap_file in its readahead, the swap \
                    cache) that swapoff had freed",
        check: shmem_swapin_2efa33fc,
    },
    Signature {
        name: "eb085574-swapin",
        title: "do_swap_page against swapoff's teardown (eb085574a752)",
        predicate: "the breaking task's do_swap_page, started on an entry, read device state (swap_map, the swap \
                    cache) that swapoff had freed meanwhile",
        check: swapin_eb085574,
    },
    Signature {
        name: "shm-swap-window",
        title: "shm_swap's unpublished slot (not in the seed; open)",
        predicate: "shm_swap_preop took slot E, then swapoff's try_to_unuse took E while shm_swap_core had not \
                    yet added its page: two pages for E in the swap cache",
        check: shm_swap_window,
    },
    Signature {
        name: "unuse-pte-stale-mkdirty",
        title: "unuse_pte's unlocked read against do_wp_page's copy (not in the seed; pre4, SMP)",
        predicate: "do_wp_page's break_cow replaced the pte's page P by a copy and dropped P, then unuse_pte's \
                    set_pte(pte_mkdirty(pte)), from the value it read before, mapped P again; P is then used after \
                    its free",
        check: unuse_pte_stale_mkdirty,
    },
    Signature {
        name: "race4-shm-delete",
        title: "race 4: shm and swapoff both delete the page from the swap cache",
        predicate: "shm_nopage and try_to_unuse each decided to delete the same page from the swap cache",
        check: race4,
    },
    Signature {
        name: "race5-free-page-and-swap-cache",
        title: "race 5: do_wp_page / free_page_and_swap_cache against swapoff's swap-cache delete",
        predicate: "free_page_and_swap_cache, do_wp_page or do_swap_page and try_to_unuse each decided to delete \
                    the same page from the swap cache",
        check: race5,
    },
    Signature {
        name: "race7-shm-nopage",
        title: "race 7: shm_nopage pages in a handle swapoff already paged in (open)",
        predicate: "a shm_nopage read SHM_ENTRY = E and dropped the shm lock, then shm_unuse replaced that \
                    entry: the fault goes on with the stale E (a break that names another entry is not this)",
        check: race7,
    },
    Signature {
        name: "race6-readahead",
        title: "race 6: swap-in readahead against swapoff (anonymous)",
        predicate: "valid_swaphandles took a temporary reference on slot X of the fault's cluster, then \
                    try_to_unuse finished X (forcing its count to 0) before the readahead dropped it; the break is \
                    about X",
        check: race6_readahead,
    },
    Signature {
        name: "race3-do-swap-page",
        title: "race 3: do_swap_page against swapoff's unuse_pte",
        predicate: "a do_swap_page (of the breaking task, or on the broken entry) started on the pte's E, then \
                    unuse_pte replaced that pte with no new E written in between: the fault goes on with an entry \
                    swapoff has dealt with, or unuse_pte overwrites what the fault mapped",
        check: race3,
    },
    Signature {
        name: "race6-kswapd",
        title: "race 6: the page stealer takes a new reference on a device being deleted",
        predicate: "the stale pte's entry was written by try_to_swap_out after swapoff's walk for that entry had \
                    replaced or scanned the pte",
        check: race6_kswapd,
    },
    Signature {
        name: "fork-enomem",
        title: "fork's -ENOMEM unwinding (not in the seed)",
        predicate: "the stale pte was copied by dup_mmap into a child mm that swapoff's walk never scanned, and \
                    the fork then failed",
        check: fork_enomem,
    },
    Signature {
        name: "race1-fork",
        title: "race 1: fork copies a swap entry into a child swapoff does not scan",
        predicate: "the stale pte was copied by dup_mmap, and swapoff's walk for that entry did not scan the child \
                    mm after the copy",
        check: race1,
    },
    Signature {
        name: "thread-exec",
        title: "exec of a threaded mm (not in the seed)",
        predicate: "exec dropped the mm holding the stale entry (or the object used after its free) while no task \
                    pointed at it, before swapoff's walk for that entry",
        check: thread_exec,
    },
    Signature {
        name: "race2-exit",
        title: "race 2: exit unlinks the VMA chain (or tsk->mm) before swapoff scans it",
        predicate: "the mm holding the stale entry dropped out of its task (tsk->mm = NULL) or had its VMA chain \
                    detached by exit before swapoff's walk for that entry scanned the pte",
        check: race2,
    },
    Signature {
        name: "smp-munmap-walk",
        title: "unuse_pte and the VMA walk against munmap, SMP (not in the seed)",
        predicate: "zap_pte_range freed a pte's entry between unuse_pte's unlocked read and its set_pte; or \
                    swapoff's walk scanned the mm but not the stale pte's VMA, which munmap took off the chain \
                    meanwhile; or the walk used a VMA or page table that munmap freed",
        check: smp_munmap_walk,
    },
];

/// Which bucket a violation falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The signature's name, or `unclassified: <key>`.
    pub name: String,
    /// What the log shows, in a sentence.
    pub evidence: String,
}

impl Bucket {
    pub fn is_unclassified(&self) -> bool {
        self.name.starts_with("unclassified")
    }
}

/// The signature's name for a bucket name (`unclassified` for any
/// unclassified key).
pub fn signature_of(bucket: &str) -> &str {
    if bucket.starts_with("unclassified") {
        "unclassified"
    } else {
        bucket
    }
}

/// Classify the violation that ended a run of `k`.
pub fn classify(k: &Kernel, v: &Violation) -> Bucket {
    let ctx = Ctx::new(k, v);
    for sig in SIGNATURES {
        if let Some(evidence) = (sig.check)(&ctx) {
            return Bucket { name: sig.name.to_string(), evidence };
        }
    }
    Bucket { name: format!("unclassified: {}", ctx.unclassified_key()), evidence: String::new() }
}

/// What a signature sees: the violation, the key log, the final state.
struct Ctx<'a> {
    k: &'a Kernel,
    v: &'a Violation,
    log: Vec<Keyed>,
}

/// Where a stale swap entry sat.
#[derive(Clone, Copy, Debug)]
struct StalePte {
    mm: MmId,
    addr: u64,
    entry: SwpEntry,
    /// Log index from which it counts: the fault's start for a fault's
    /// entry, the log's end for a pte left behind.
    at: usize,
}

impl<'a> Ctx<'a> {
    fn new(k: &'a Kernel, v: &'a Violation) -> Ctx<'a> {
        let log = k.w().keys.clone();
        Ctx { k, v, log }
    }

    fn events(&self) -> impl DoubleEndedIterator<Item = (usize, &KeyEvent)> + '_ {
        self.log.iter().enumerate().map(|(i, e)| (i, &e.event))
    }

    /// The events of the task that broke.
    fn mine(&self) -> impl DoubleEndedIterator<Item = (usize, &KeyEvent)> + '_ {
        let me = self.v.task;
        self.log.iter().enumerate().filter(move |(_, e)| me.is_some() && e.task == me).map(|(i, e)| (i, &e.event))
    }

    /// The stale entries the violation is about: the entry the breaking
    /// task's fault is working on, or the one its zap freed, or the one
    /// whose page a fault left in the swap cache after swapoff; and ptes of
    /// a switched-off device still holding its entries.
    fn stale_ptes(&self) -> Vec<StalePte> {
        let mut out = Vec::new();
        let fault = |task: Option<TaskId>, before: usize| {
            self.log[..before].iter().enumerate().rev().filter(|(_, e)| e.task == task).find_map(|(i, e)| {
                match e.event {
                    KeyEvent::FaultSwap { mm, addr, entry } => Some(Some(StalePte { mm, addr, entry, at: i })),
                    KeyEvent::FaultDone { .. } => Some(None),
                    _ => None,
                }
            })?
        };
        if let Some(p) = fault(self.v.task, self.log.len()) {
            out.push(p);
        }
        if self.v.message.starts_with("zap_pte_range") {
            if let Some((at, &KeyEvent::ZapSwap { mm, addr, entry })) =
                self.mine().rev().find(|(_, e)| matches!(e, KeyEvent::ZapSwap { .. }))
            {
                out.push(StalePte { mm, addr, entry, at });
            }
        }
        if self.v.invariant != "swapoff-completeness" {
            return out;
        }
        let w = self.k.w();
        let off: Vec<usize> = (0..w.swap_info.len()).filter(|&i| w.swap_info[i].swap_map.is_none()).collect();
        for mm in w.mms.keys() {
            for (addr, pte) in w.ptes_in(mm, 0, u64::MAX) {
                if let Pte::Swap(entry) = pte {
                    if off.contains(&entry.type_) {
                        out.push(StalePte { mm, addr, entry, at: self.log.len() });
                    }
                }
            }
        }
        // A page left in the swap cache: the fault of the task that added it.
        for &entry in w.swap_cache.keys().filter(|e| off.contains(&e.type_)) {
            let added = self.log.iter().enumerate().rev().find(|(_, e)| e.event == KeyEvent::SwapCacheAdd { entry });
            if let Some(p) = added.and_then(|(i, e)| fault(e.task, i)) {
                out.push(p);
            }
        }
        out
    }

    /// The task that made event `i`.
    fn task_at(&self, i: usize) -> Option<TaskId> {
        self.log.get(i).and_then(|e| e.task)
    }

    /// The last swap entry written into the pte before `at`.
    fn last_set(&self, p: &StalePte) -> Option<(usize, &'static str)> {
        let upto = p.at.min(self.log.len());
        self.log[..upto].iter().enumerate().rev().find_map(|(i, e)| match e.event {
            KeyEvent::SwapPteSet { mm, addr, entry, by } if mm == p.mm && addr == p.addr && entry == p.entry => {
                Some((i, by))
            }
            _ => None,
        })
    }

    /// Whether swapoff's walk for the entry scanned the pte in `(from, to)`.
    fn scanned(&self, p: &StalePte, from: usize, to: usize) -> bool {
        self.events().skip(from).take(to.saturating_sub(from)).any(|(_, e)| match *e {
            KeyEvent::WalkVma { entry, mm, start, end } => {
                entry == p.entry && mm == p.mm && start <= p.addr && p.addr < end
            }
            KeyEvent::UnusePte { mm, addr, entry } => entry == p.entry && mm == p.mm && addr == p.addr,
            _ => false,
        })
    }

    /// The index of the first event matching `f` in `(from, to)`.
    fn find(&self, from: usize, to: usize, f: impl Fn(&KeyEvent) -> bool) -> Option<usize> {
        self.events().skip(from).take(to.saturating_sub(from)).find(|(_, e)| f(e)).map(|(i, _)| i)
    }

    /// Where swapoff was done with the entry's slot (or the log's end).
    fn slot_done(&self, entry: SwpEntry, from: usize) -> usize {
        self.find(from, self.log.len(), |e| *e == KeyEvent::SlotDone { entry }).unwrap_or(self.log.len())
    }

    /// The unclassified key: the invariant, the message's shape, and the
    /// last key event of another task before the break.
    fn unclassified_key(&self) -> String {
        let mut key = format!("{}: {}", self.v.invariant, shape(&self.v.message));
        let other = self.log.iter().rev().find(|e| e.task.is_some() && e.task != self.v.task);
        if let Some(e) = other {
            let _ = write!(key, " (after {})", event_name(&e.event));
        }
        key
    }
}

/// A message with its numbers, entries and addresses left out, cut short:
/// runs of one mechanism share it.
fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_digit() || (in_number && (c == 'x' || c.is_ascii_hexdigit())) {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    const MAX: usize = 90;
    if out.chars().count() > MAX {
        out = out.chars().take(MAX).collect::<String>() + "...";
    }
    out
}

/// Whether `message` names `entry` ("1:4", not the start of "1:42").
fn mentions(message: &str, entry: SwpEntry) -> bool {
    let text = entry.to_string();
    message.match_indices(&text).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + text.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Whether `message` names some swap entry ("1:4").
fn names_an_entry(message: &str) -> bool {
    let b = message.as_bytes();
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b':' && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
}

/// A key event's kind, in a few words.
fn event_name(e: &KeyEvent) -> &'static str {
    match e {
        KeyEvent::SwapPteSet { by, .. } => by,
        KeyEvent::SlotStart { .. } => "try_to_unuse's slot",
        KeyEvent::SlotDone { .. } => "try_to_unuse's undead check",
        KeyEvent::WalkMm { .. } | KeyEvent::WalkVma { .. } => "swapoff's walk",
        KeyEvent::UnusePte { .. } | KeyEvent::UnusePteDirty { .. } => "unuse_pte",
        KeyEvent::WpCopy { .. } => "do_wp_page",
        KeyEvent::FaultSwap { .. } => "do_swap_page",
        KeyEvent::ReadaheadRef { .. } | KeyEvent::ReadaheadDone { .. } => "swapin_readahead",
        KeyEvent::SwapCacheDrop { by, .. } => by,
        KeyEvent::ShmNopageSnap { .. } => "shm_nopage",
        KeyEvent::ShmSwapin { .. } => "shmem_swapin",
        KeyEvent::ShmUnuse { .. } => "shm_unuse",
        KeyEvent::ShmSwapPreop { .. } => "shm_swap_preop",
        KeyEvent::ShmSwapPublish { .. } => "shm_swap_core",
        KeyEvent::TaskLinked { .. } => "SET_LINKS",
        KeyEvent::MmDropped { .. } => "__exit_mm",
        KeyEvent::Exec { .. } => "exec_mmap",
        KeyEvent::FaultDone { .. } => "do_swap_page's return",
        KeyEvent::ZapSwap { .. } => "zap_pte_range",
        KeyEvent::SwapCacheAdd { .. } => "add_to_swap_cache",
        KeyEvent::ChainDetached { .. } => "exit_mmap",
        KeyEvent::ForkFailed { .. } => "copy_mm's free_pt",
        KeyEvent::VmaUnlinked { .. } => "do_munmap",
        KeyEvent::UnuseGaveUp { .. } => "try_to_unuse's SWAP_UNUSE_MAX_TRIES",
    }
}

// ---- the signatures ----

fn unuse_max_tries(c: &Ctx) -> Option<String> {
    c.events().find_map(|(_, e)| match *e {
        KeyEvent::UnuseGaveUp { type_, passes } => {
            Some(format!("try_to_unuse of device {} gave up with -EBUSY after {passes} passes", type_ + 1))
        }
        _ => None,
    })
}

/// A read of device state that swapoff freed (swap_device.rs's messages):
/// the point that read it.
fn device_state_read<'a>(c: &'a Ctx) -> Option<&'a str> {
    let freed_by_swapoff = c.v.invariant == "use-after-free" && c.v.message.contains(", which swapoff");
    freed_by_swapoff.then(|| c.v.message.split_whitespace().next().unwrap_or(""))
}

fn zap_82b1c07a(c: &Ctx) -> Option<String> {
    let reader = device_state_read(c)?;
    let last = c.mine().next_back()?;
    let KeyEvent::ZapSwap { entry, .. } = *last.1 else { return None };
    Some(format!("zap_pte_range freed {entry}; its free_swap_and_cache then read at {reader} what swapoff freed"))
}

fn shmem_swapin_2efa33fc(c: &Ctx) -> Option<String> {
    let reader = device_state_read(c)?;
    let in_shmem = c.mine().any(|(_, e)| matches!(e, KeyEvent::ShmSwapin { .. }));
    (reader.starts_with("swap_cluster_readahead") || in_shmem)
        .then(|| format!("shmem swap-in read at {reader} what swapoff freed"))
}

fn swapin_eb085574(c: &Ctx) -> Option<String> {
    let reader = device_state_read(c)?;
    let fault = c.stale_ptes().into_iter().find(|p| c.log.get(p.at).is_some_and(|e| c.v.task == e.task))?;
    Some(format!("do_swap_page on {} read at {reader} what swapoff freed after the fault started", fault.entry))
}

fn shm_swap_window(c: &Ctx) -> Option<String> {
    if c.v.invariant != "swap-cache" || !c.v.message.contains("already has a page") {
        return None;
    }
    // shm_swap_preop took E, and swapoff's try_to_unuse took E too while
    // shm_swap's page for it was not yet (or only just) in the swap cache:
    // either add is the alias.
    c.events().find_map(|(i, e)| {
        let KeyEvent::ShmSwapPreop { entry } = *e else { return None };
        if !mentions(&c.v.message, entry) {
            return None;
        }
        c.find(i, c.log.len(), |e| *e == KeyEvent::SlotStart { entry })?;
        Some(format!(
            "shm_swap_preop took {entry}; swapoff's try_to_unuse took it too before shm_swap_core's page was in"
        ))
    })
}

fn unuse_pte_stale_mkdirty(c: &Ctx) -> Option<String> {
    // What breaks is the old page, mapped again and then freed.
    if c.v.invariant != "use-after-free" {
        return None;
    }
    c.events().find_map(|(i, e)| {
        let KeyEvent::WpCopy { mm, addr, old } = *e else { return None };
        c.find(i, c.log.len(), |e| *e == KeyEvent::UnusePteDirty { mm, addr, page: old })?;
        Some(format!(
            "do_wp_page copied the page at {addr:#x}; unuse_pte's stale set_pte then mapped the old page again"
        ))
    })
}

/// Two callers on different tasks decided to delete the same page, one of
/// them try_to_unuse and the other one of `others`.
fn double_delete(c: &Ctx, others: &[&str]) -> Option<String> {
    let drops: Vec<(Option<TaskId>, PageId, SwpEntry, &'static str)> = c
        .log
        .iter()
        .filter_map(|e| match e.event {
            KeyEvent::SwapCacheDrop { page, entry, by } => Some((e.task, page, entry, by)),
            _ => None,
        })
        .collect();
    for (i, a) in drops.iter().enumerate() {
        for b in &drops[i + 1..] {
            if a.1 != b.1 || a.0 == b.0 {
                continue;
            }
            let (unuse, other) = match (a.3, b.3) {
                ("try_to_unuse", o) | (o, "try_to_unuse") => ("try_to_unuse", o),
                _ => continue,
            };
            if others.contains(&other) {
                return Some(format!("{unuse} and {other} both deleted the swap-cache page of {}", a.2));
            }
        }
    }
    None
}

fn race4(c: &Ctx) -> Option<String> {
    double_delete(c, &["shm_nopage"])
}

fn race5(c: &Ctx) -> Option<String> {
    double_delete(c, &["free_page_and_swap_cache", "do_wp_page", "do_swap_page"])
}

fn race7(c: &Ctx) -> Option<String> {
    c.events().find_map(|(i, e)| {
        let KeyEvent::ShmNopageSnap { seg, idx, entry } = *e else { return None };
        // A break about another entry (a readahead neighbour's) is not this.
        if names_an_entry(&c.v.message) && !mentions(&c.v.message, entry) {
            return None;
        }
        c.find(i, c.log.len(), |e| *e == KeyEvent::ShmUnuse { seg, idx, entry })?;
        Some(format!("shm_nopage read shm{seg}[{idx}] = {entry}; shm_unuse then replaced it"))
    })
}

fn race6_readahead(c: &Ctx) -> Option<String> {
    c.events().find_map(|(i, e)| {
        let KeyEvent::ReadaheadRef { entry } = *e else { return None };
        let reader = c.log[i].task;
        let done = c.find(i, c.log.len(), |e| *e == KeyEvent::SlotDone { entry })?;
        let dropped = c.log[i..done].iter().any(|k| k.task == reader && k.event == KeyEvent::ReadaheadDone { entry });
        let about = mentions(&c.v.message, entry) || c.k.w().swap_cache.contains_key(&entry);
        (!dropped && about).then(|| format!("readahead held {entry} while try_to_unuse finished it"))
    })
}

fn race3(c: &Ctx) -> Option<String> {
    // A fault, of the breaking task or about the broken entry, still in
    // do_swap_page when unuse_pte replaced its pte.
    let faults = c.stale_ptes().into_iter().map(|p| p.at).chain(c.events().filter_map(|(i, e)| match *e {
        KeyEvent::FaultSwap { entry, .. } if mentions(&c.v.message, entry) => Some(i),
        _ => None,
    }));
    faults.into_iter().find_map(|at| {
        let KeyEvent::FaultSwap { mm, addr, entry } = c.log.get(at)?.event else { return None };
        let task = c.task_at(at);
        let replaced = c.find(at, c.log.len(), |e| *e == KeyEvent::UnusePte { mm, addr, entry })?;
        let set_again =
            c.find(at, replaced, |e| matches!(*e, KeyEvent::SwapPteSet { mm: m, addr: a, .. } if m == mm && a == addr));
        if set_again.is_some() {
            return None;
        }
        let done_first = c.log[at..replaced].iter().any(|e| {
            e.task == task && matches!(e.event, KeyEvent::FaultDone { mm: m, addr: a } if m == mm && a == addr)
        });
        Some(if done_first {
            format!("do_swap_page on {entry} at {addr:#x} mapped its page between unuse_pte's read and its set_pte")
        } else {
            format!("do_swap_page started on {entry} at {addr:#x}; unuse_pte then replaced that pte")
        })
    })
}

/// The stale ptes whose last swap entry was written by a point matching
/// `by`, with that write's index.
fn stale_set_by(c: &Ctx, by: impl Fn(&str) -> bool) -> Vec<(StalePte, usize)> {
    c.stale_ptes().into_iter().filter_map(|p| c.last_set(&p).filter(|(_, b)| by(b)).map(|(i, _)| (p, i))).collect()
}

fn race6_kswapd(c: &Ctx) -> Option<String> {
    stale_set_by(c, |b| b.starts_with("try_to_swap_out")).into_iter().find_map(|(p, set)| {
        c.scanned(&p, 0, set).then(|| {
            format!(
                "try_to_swap_out put {} back in the pte at {:#x} after swapoff's walk for it had passed",
                p.entry, p.addr
            )
        })
    })
}

/// A pte dup_mmap copied that swapoff's walk never scanned afterwards.
fn copied_unscanned(c: &Ctx) -> Vec<StalePte> {
    stale_set_by(c, |b| b.starts_with("copy_page_range"))
        .into_iter()
        .filter(|(p, set)| !c.scanned(p, *set, c.slot_done(p.entry, *set) + 1))
        .map(|(p, _)| p)
        .collect()
}

fn fork_enomem(c: &Ctx) -> Option<String> {
    copied_unscanned(c).into_iter().find_map(|p| {
        c.find(0, c.log.len(), |e| *e == KeyEvent::ForkFailed { mm: p.mm })?;
        Some(format!("dup_mmap copied {} into a child swapoff did not scan; the fork then failed", p.entry))
    })
}

fn race1(c: &Ctx) -> Option<String> {
    let p = copied_unscanned(c).into_iter().next()?;
    Some(format!(
        "dup_mmap copied {} into the child's pte at {:#x}; swapoff's walk for it did not scan the child",
        p.entry, p.addr
    ))
}

/// A mm event matching `f` before swapoff was done with the entry's slot,
/// for a stale pte the walk did not scan after its last write.
fn unscanned_after(c: &Ctx, f: impl Fn(&KeyEvent, MmId) -> bool) -> Option<StalePte> {
    c.stale_ptes().into_iter().find(|p| {
        let from = c.last_set(p).map_or(0, |(i, _)| i);
        let done = c.slot_done(p.entry, from);
        !c.scanned(p, from, done + 1) && c.find(0, done, |e| f(e, p.mm)).is_some()
    })
}

/// For a use-after-free by swapoff's walk: the mm it was walking, if its
/// VMA chain was detached (exit_mmap) after the walk reached it, and the
/// index of that walk's start.
fn walked_mm_torn_down(c: &Ctx) -> Option<(MmId, usize)> {
    if c.v.invariant != "use-after-free" || !c.v.message.starts_with("unuse_") {
        return None;
    }
    let (at, mm) = c.mine().rev().find_map(|(i, e)| match *e {
        KeyEvent::WalkMm { mm, .. } => Some((i, mm)),
        _ => None,
    })?;
    Some((mm, at))
}

fn thread_exec(c: &Ctx) -> Option<String> {
    if let Some((mm, at)) = walked_mm_torn_down(c) {
        c.find(0, c.log.len(), |e| *e == KeyEvent::Exec { mm })?;
        c.find(at, c.log.len(), |e| *e == KeyEvent::ChainDetached { mm })?;
        return Some("exec's exit_mmap tore down the mm swapoff's walk stood on".to_string());
    }
    let p = unscanned_after(c, |e, mm| *e == KeyEvent::Exec { mm })?;
    Some(format!("exec let go of the mm holding {} before swapoff's walk for it", p.entry))
}

fn race2(c: &Ctx) -> Option<String> {
    let exited = |e: &KeyEvent, mm: MmId| {
        matches!(*e, KeyEvent::MmDropped { mm: m, .. } if m == mm) || *e == KeyEvent::ChainDetached { mm }
    };
    if let Some((mm, at)) = walked_mm_torn_down(c) {
        c.find(0, c.log.len(), |e| matches!(*e, KeyEvent::MmDropped { mm: m, .. } if m == mm))?;
        c.find(at, c.log.len(), |e| *e == KeyEvent::ChainDetached { mm })?;
        return Some("exit's exit_mmap tore down the mm swapoff's walk stood on".to_string());
    }
    let p = unscanned_after(c, exited)?;
    Some(format!("the exiting mm holding {} at {:#x} left swapoff's reach before its walk for it", p.entry, p.addr))
}

fn smp_munmap_walk(c: &Ctx) -> Option<String> {
    // unuse_pte's unlocked read, then a zap of that pte, then its set_pte.
    let split = c.events().find_map(|(i, e)| {
        let KeyEvent::ZapSwap { mm, addr, entry } = *e else { return None };
        let set = c.find(i, c.log.len(), |e| *e == KeyEvent::UnusePte { mm, addr, entry })?;
        let reset =
            c.find(i, set, |e| matches!(*e, KeyEvent::SwapPteSet { mm: m, addr: a, .. } if m == mm && a == addr));
        reset
            .is_none()
            .then(|| format!("zap_pte_range freed {entry} at {addr:#x} between unuse_pte's read and its set_pte"))
    });
    if split.is_some() {
        return split;
    }
    if let Some((mm, at)) = walked_mm_torn_down(c) {
        c.find(at, c.log.len(), |e| matches!(*e, KeyEvent::VmaUnlinked { mm: m, .. } if m == mm))?;
        return Some("munmap freed what swapoff's walk stood on".to_string());
    }
    let p = unscanned_after(c, |e, mm| matches!(*e, KeyEvent::VmaUnlinked { mm: m, .. } if m == mm))?;
    Some(format!("munmap unlinked VMAs of the mm while swapoff's walk for {} passed it", p.entry))
}

/// Where the task `pid` owning `mm` stood when swapoff's walk for `entry`
/// passed (the walk over the task list in pre4, the mm list with the
/// patch), for the swapoff-completeness message: the task list when
/// swapoff returned says nothing about what the walk could see.
pub fn when_the_walk_passed(w: &World, pid: Pid, mm: MmId, entry: SwpEntry, mm_list: bool) -> String {
    let at = |f: &dyn Fn(&KeyEvent) -> bool| w.keys.iter().position(|k| f(&k.event));
    let Some(done) = at(&|e| *e == KeyEvent::SlotDone { entry }) else {
        return "and swapoff's walk for this entry left no record".to_string();
    };
    let start = at(&|e| *e == KeyEvent::SlotStart { entry }).unwrap_or(0);
    if w.keys[start..done].iter().any(|k| k.event == KeyEvent::WalkMm { entry, mm }) {
        return format!("whose mm swapoff's walk for {entry} did reach (the pte was not on the VMAs it scanned)");
    }
    let linked = at(&|e| *e == KeyEvent::TaskLinked { pid });
    let list = if mm_list { "the mm list" } else { "the task list" };
    match linked {
        None if !w.procs.get(&pid).is_some_and(|p| p.linked) => {
            format!("which was not on the task list when swapoff's walk for {entry} passed (do_fork had not reached SET_LINKS)")
        }
        Some(l) if l > done => {
            format!("which was not yet on the task list when swapoff's walk for {entry} passed (SET_LINKS came after)")
        }
        _ if w.keys[..done].iter().any(|k| matches!(k.event, KeyEvent::MmDropped { pid: p, .. } if p == pid)) => {
            format!("which had dropped its mm (tsk->mm = NULL) when swapoff's walk for {entry} passed")
        }
        _ => format!("and swapoff's walk over {list} for {entry} did not reach its mm"),
    }
}

impl Kernel {
    /// Log a key event of task `t` (None: boot or set-up).
    pub fn key(&self, t: &engine::Task, event: KeyEvent) {
        let mut w = self.w();
        if w.keys.len() < KEY_LOG_LIMIT {
            w.keys.push(Keyed { task: Some(t.id()), event });
        }
    }
}

impl Kernel {
    /// Log that `by` decided to delete `page` from the swap cache.
    pub(crate) fn key_swap_cache_drop(&self, t: &engine::Task, page: PageId, by: &'static str) {
        let entry = self.w().pages.get(page).and_then(|p| p.index);
        if let Some(entry) = entry {
            self.key(t, KeyEvent::SwapCacheDrop { page, entry, by });
        }
    }
}
