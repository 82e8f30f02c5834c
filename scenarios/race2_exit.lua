-- Race 2 of the seed ("swapdeletion race fixes", linux-mm, 2000-04-21):
--
--   "Similarly, during exit, we might miss scanning a process because he
--    has unlinked his vma chain (kernel_lock is not enough, exit code might
--    sleep)."
--
-- The interleaving, on one CPU:
--   1. The exiting task's page at 0x20000 is on swap (entry 1:1).
--   2. do_exit clears tsk->mm (for_each_task skips it from now on), and
--      exit_mmap detaches the whole VMA chain, then tears the VMAs down one
--      by one. The first is a shm attach whose fput may sleep, dropping the
--      big kernel lock, before the VMA holding 1:1 is zapped.
--   3. swapoff runs whole meanwhile: it cannot see the mm, forces the count
--      of 1:1 to 0 ("VM: Undead swap entry") and returns 0.
--   4. exit resumes and zaps a pte that still holds 1:1 of a deleted device
--      ("Trying to free swap from unused swap-device").
--
-- With the patch, exit_mmap holds mmap_sem and the mm stays on the mm list
-- until __mmdrop, so swapoff scans it either before the teardown or after.

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local seg = shmget(1)
local exiter = process("exiter", function() exit() end)
exiter:shmat(seg, 0x10000)   -- first VMA: its fput may sleep during exit_mmap
exiter:map(0x20000, 1)       -- second VMA: holds the swap entry
exiter:write(0x20000)
exiter:swap_out(0x20000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
