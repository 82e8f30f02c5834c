-- The shm_swap window (not in the seed; KERNEL.md section 4, "Other
-- window"): shm_swap_preop takes a fresh slot with a count of 2 under the
-- BKL and drops it; only then do shm_lockall and shm_swap_core publish the
-- slot in the segment and add the page to the swap cache, with no BKL.
-- kswapd holds no BKL of its own (do_try_to_free_pages takes none), so on
-- SMP swapoff, which holds the BKL, can reach the slot inside the window.
-- The seed says "swapoff is already protected against vmscan by virtue of
-- kernel_lock"; for shm_swap it is not, and the patch changes neither
-- shm_swap nor that order.
--
-- The interleaving, on two CPUs:
--   1. The swapoff process faults in 48 pages: memory falls to pages_low
--      and the allocation wakes kswapd. kswapd drops those clean pages,
--      finds no other mm to page out, and at priority 0 calls shm_swap.
--   2. shm_swap_preop takes slot 1:1 (count 2) and drops the BKL.
--   3. swapoff, spinning for the BKL, gets it, clears SWP_WRITEOK and
--      try_to_unuse reaches 1:1 (count 2, in no structure): both lookups
--      miss, it adds its own page Q for 1:1 to the swap cache and sleeps in
--      the read of a slot nobody wrote.
--   4. kswapd's shm_swap_core publishes 1:1 in the segment and adds the
--      segment's page P for 1:1 too: two pages for one entry in the swap
--      cache (the C does not check; the model reports it as a swap-cache
--      alias). Had it gone on, shm_unuse would install Q's stale contents
--      in the segment and P would stay cached for a dead slot.
-- In the other order (kswapd adds P between swapoff's second lookup and
-- its add_to_swap_cache) swapoff's add is the alias.
--
--   swapsim explore scenarios/shm_swap_window.lua --kernel pre4 --strategy pct --runs 5000
--   swapsim explore scenarios/shm_swap_window.lua --kernel patched --strategy pct --runs 5000

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0, kswapd = true }

local seg = shmget(1)
local shmuser = process("shmuser", function()
  swap_out(0x40000000)      -- drop the pte: only the segment holds the page now
end)
shmuser:shmat(seg, 0x40000000)
shmuser:write(0x40000000)

local swapoff_task = process("swapoff", function()
  for i = 0, 47 do read(0x100000 + i * 4096) end   -- down to pages_low: wakes kswapd
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
swapoff_task:map(0x100000, 48)
