-- Race 4 of the seed:
--
--   "shm might delete a page from the swapcache at the same time swapoff
--    does the same, there needs to be some synchronization between the two."
--
-- The interleaving, on two CPUs:
--   1. swapoff (S) reads 1:1 into page Pg, in the swap cache.
--   2. shmuser (H) faults on the segment: shm_nopage snapshots SHM_ENTRY =
--      1:1, drops the shm lock and finds Pg in the swap cache.
--   3. S's shm_unuse makes SHM_ENTRY the page and frees 1:1; S tests
--      PageSwapCache(Pg) with no lock: set.
--   4. H's delete_from_swap_cache takes the page lock and removes Pg; S's
--      lock_page waits, then S deletes Pg a second time: BUG() in
--      remove_from_swap_cache (invariant swap-cache).
--
-- With the patch, try_to_unuse locks the page before it tests
-- PageSwapCache. Under the patch this scenario still finds race 7, the one
-- the seed leaves open: shm_nopage frees the handle a second time.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2 }

local seg = shmget(1)
local shmuser = process("shmuser", function() read(0x40000000) end)
shmuser:shmat(seg, 0x40000000)
shmuser:write(0x40000000)
shmuser:swap_out(0x40000000)   -- unmap the pte, then shm_swap writes it out

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
