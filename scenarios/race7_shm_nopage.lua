-- Race 7, the one the seed leaves open:
--
--   "One race that has still not been fixed is shm_nopage trying to page in
--    the swaphandle, when swapoff has already paged it in. We need a
--    sleeping lock in the shm code to handle this."
--
-- The interleaving, on one CPU:
--   1. shmuser (H) faults on the segment: shm_nopage snapshots SHM_ENTRY =
--      1:1 and drops the shm lock.
--   2. swapoff's shm_unuse installs its page in SHM_ENTRY and frees 1:1.
--   3. H, working from the stale 1:1, finds the page (still in the swap
--      cache: with the patch swapoff waits for H's mmap_sem before deleting
--      it), deletes it and frees 1:1 a second time: the count is one too
--      low ("VM: Bad swap entry", invariant swap-count).
-- Before the patch it also ends in a failed read and a killed task, or an
-- oops on the freed swap_map.

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local seg = shmget(1)
local shmuser = process("shmuser", function() read(0x40000000) end)
shmuser:shmat(seg, 0x40000000)
shmuser:write(0x40000000)
shmuser:swap_out(0x40000000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
