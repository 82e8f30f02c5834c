//! Steps that the C does not make atomic, and paths the model used to
//! lack (issue 12, points 5 and 6): each test pins a seed that breaks only
//! because the model now splits the step or takes the path as the C does.

use crate::swapsim;

/// Run one seed; return the whole report.
fn report(file: &str, flags: &[&str], seed: u32) -> String {
    let seed = seed.to_string();
    let mut args = vec!["run", file];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--seed", &seed]);
    let run = swapsim(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.stdout
}

/// Run a seed range; return the `result:` line.
fn range(file: &str, flags: &[&str], seeds: &str) -> String {
    let mut args = vec!["run", file];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--seeds", seeds]);
    let run = swapsim(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.stdout.lines().find(|l| l.starts_with("result:")).expect("a result line").to_string()
}

const PRE4: &[&str] = &["--kernel", "pre4"];
const PATCHED: &[&str] = &["--kernel", "patched"];
const NO_MMAP_SEM: &[&str] = &["--kernel", "patched", "--no-fix", "mmap-sem"];

#[test]
fn zap_page_range_runs_between_unuse_ptes_read_and_its_set_pte() {
    // mm/swapfile.c:258 reads the pte, :274 writes it: munmap's zap on
    // the other CPU frees the entry in between, unuse_pte frees it again.
    let out = report("scenarios/smp_munmap_walk.lua", PRE4, 7);
    assert!(out.contains("result:   VIOLATION swap-count"), "{out}");
    assert!(out.contains("swap_free(1:1) printed \"VM: Bad swap entry 1:1\""), "{out}");
}

#[test]
fn the_walk_follows_munmaps_free_list_and_misses_the_next_vma() {
    // mm/mmap.c:680 (mpnt->vm_next = free): the walk standing on the VMA
    // munmap unlinked first reads NULL and never reaches 0x30000.
    let out = report("scenarios/smp_munmap_walk.lua", PRE4, 32);
    assert!(out.contains("result:   VIOLATION swapoff-completeness"), "{out}");
    assert!(out.contains("the pte at 0x30000 of mm#1 (pid 1 (unmapper)) still holds swap entry 1:2"), "{out}");
    assert!(out.contains("VM: Undead swap entry 1:2"), "{out}");
    // And once unmap_fixup has freed that VMA, reading its vm_next is a
    // use-after-free.
    let out = report("scenarios/smp_munmap_walk.lua", PRE4, 1);
    assert!(out.contains("unuse_process read vm_next of a vm_area_struct that was freed under it"), "{out}");
}

#[test]
fn mmap_sem_closes_the_smp_windows_of_the_walk() {
    let line = range("scenarios/smp_munmap_walk.lua", PATCHED, "1..300");
    assert!(line.contains("none broke"), "{line}");
    let line = range("scenarios/smp_munmap_walk.lua", NO_MMAP_SEM, "1..300");
    assert!(line.contains("swapoff-completeness"), "{line}");
}
