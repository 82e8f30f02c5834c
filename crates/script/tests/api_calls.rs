//! What the scenario API's calls do, beyond their argument checks
//! (crates/cli/tests/it/bad_scenarios.rs): each one against the kernel
//! state it is meant to reach.

use engine::Outcome;
use kernel::Variant;
use script::{run::run, RunOptions};

fn events_with(report: &script::RunReport, text: &str) -> usize {
    report.events.iter().filter(|e| e.text.contains(text)).count()
}

/// `p:swap_out(addr, device)` puts the page on that device; without a
/// device the devices fill in order.
#[test]
fn swap_out_in_set_up_names_the_device() {
    let source = |device: &str| {
        format!(
            r#"
machine {{ cpus = 1, memory_pages = 64, swap_devices = {{ 8, 8, 8 }} }}
local p = process("p")
p:map(0x10000, 2)
p:write(0x10000)
p:write(0x11000)
p:swap_out(0x10000{device})
p:swap_out(0x11000)
process("off", function() for d = 1, 3 do expect(swapoff(d) == 0, "swapoff") end end)
"#
        )
    };
    let options = RunOptions::new(Variant::Patched.fixes(), 1);
    let named = run("device.lua", &source(", 3"), &options).unwrap();
    assert_eq!(named.outcome, Outcome::Finished);
    assert_eq!(events_with(&named, "swap entry 3:1 -> page"), 1, "the first page went to device 3");
    assert_eq!(events_with(&named, "swap entry 1:1 -> page"), 1, "the second to device 1, as before");
    let in_order = run("device.lua", &source(""), &options).unwrap();
    assert_eq!(events_with(&in_order, "swap entry 1:1 -> page"), 1);
    assert_eq!(events_with(&in_order, "swap entry 1:2 -> page"), 1);
    assert_eq!(events_with(&in_order, "swap entry 3:"), 0);
    // A page that goes back to its old slot cannot move: the step says so.
    let back = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 8, 8 } }
local p = process("p")
p:map(0x10000, 1)
p:write(0x10000)
p:swap_out(0x10000)
p:read(0x10000)
p:swap_out(0x10000, 2)
"#;
    let err = run("back.lua", back, &options).unwrap_err().to_string();
    assert_eq!(
        err,
        "back.lua:8: set-up step failed: the page at 0x10000 went out to 1:1, not to device 2: it goes back to the slot \
         it had (it was in the swap cache, or read in from that slot)"
    );
    // A full device: the page goes elsewhere, and the step says why.
    let full = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 2, 8 } }
local p = process("p")
p:map(0x10000, 2)
p:write(0x10000)
p:write(0x11000)
p:swap_out(0x10000, 1)
p:swap_out(0x11000, 1)
"#;
    let err = run("full.lua", full, &options).unwrap_err().to_string();
    assert_eq!(
        err,
        "full.lua:8: set-up step failed: the page at 0x11000 went out to 2:1, not to device 1: device 1 is full"
    );
}

/// `try_to_free_pages()` runs do_try_to_free_pages as direct reclaim does:
/// it reclaims swap-cache pages nobody maps (shrink_mmap), writes shm pages
/// out (shm_swap) and steals ptes (swap_out). `shm_swap()` writes one shm
/// page out.
#[test]
fn direct_reclaim_and_shm_swap_are_calls() {
    let source = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 64 }, alloc_sleep = 0 }
local seg = shmget(2)
local p = process("p", function()
  write(0x40000000)
  write(0x40001000)
  for i = 0, 7 do write(0x10000 + i * 4096) end
  munmap(0x40000000, 2)
  expect(shm_swap() == true, "shm_swap took a page")
  local freed = try_to_free_pages()
  expect(freed == false, "not 32 pages to free in so small a machine")
end)
p:map(0x10000, 8)
p:shmat(seg, 0x40000000)
"#;
    let options = RunOptions::new(Variant::Patched.fixes(), 1);
    let report = run("reclaim.lua", source, &options).unwrap();
    assert_eq!(report.outcome, Outcome::Finished, "{:?}", report.printk);
    // shm_swap's write, then reclaim's: the second shm page and the
    // anonymous pages swap_out aged and then took.
    assert!(events_with(&report, "shm_swap:shm_lockall") >= 2, "shm_swap ran from both calls");
    assert!(events_with(&report, "swap_out:lock_kernel") >= 1, "do_try_to_free_pages ran swap_out");
    assert!(report.stats.swap_outs >= 2, "{:?}", report.stats);
}
