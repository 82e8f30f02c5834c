-- Race 1 of the seed ("swapdeletion race fixes", Kanoj Sarcar, linux-mm, 2000-04-21):
--
--   "While forking, a parent might copy a swap handle into the child, but we
--    might entirely miss scanning the child because he is not on the process
--    list (kernel_lock is not enough, forking code might sleep)."
--
-- The interleaving , on a single CPU:
--   1. The parent's page at 0x10000 is out on swap: its pte holds entry 1:1.
--   2. The parent forks. dup_mmap copies that pte into the child
--      (swap_duplicate: count 2), then sleeps allocating the next VMA; the
--      sleep drops the big kernel lock.
--   3. swapoff runs whole meanwhile: for_each_task does not see the child
--      (SET_LINKS comes at the end of do_fork), so only the parent's pte is
--      replaced; the count left over is forced to 0 ("VM: Undead swap
--      entry") and swapoff returns 0, its swap_map freed.
--   4. The child's pte still holds 1:1, an entry of a device that is gone.
--
-- Under --kernel patched the child's mm is on the mm list (after the
-- parent's) from mm_alloc on, and swapoff waits for the parent's mmap_sem
-- before it scans, so it visits the child after dup_mmap is done.

machine {
  cpus = 1,
  memory_pages = 64,
  swap_devices = { 16 },
  -- How often an allocation that may sleep does sleep, in random runs.
  alloc_sleep = 0.3,
}

-- The parent forks a child; the child touches the page it inherited.
local parent = process("parent", function()
  fork(function()
    read(0x10000)
    exit()
  end)
  exit()
end)

-- Two mappings: the swap pte is in the first, so dup_mmap may sleep in
-- kmem_cache_alloc for the second after copying it.
parent:map(0x10000, 1)
parent:map(0x20000, 1)
parent:write(0x10000)
parent:write(0x20000)
parent:swap_out(0x10000)

-- Another task switches the swap device off.
process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
