-- Race 2 of the seed ("swapdeletion race fixes", linux-mm, 2000-04-21):
--
--   "Similarly, during exit, we might miss scanning a process because he
--    has unlinked his vma chain (kernel_lock is not enough, exit code might
--    sleep)."
--
-- do_exit holds the big kernel lock through exit_mmap and swapoff holds it
-- for its whole call, so the two meet only where the exiting task sleeps.
-- Of exit_mmap's teardown, only the last attach of a shm segment marked for
-- destruction (IPC_RMID) can sleep: shm_close -> shm_remove_name ->
-- shm_unlink's down(&shm_ids.sem), and fput -> shm_delete's. The
-- interleaving, on three CPUs:
--   1. The exiter's page at 0x20000 is on swap (entry 1:1) and, after its
--      own swap_out, still in the swap cache: swapoff will not need a read.
--   2. The exiter removes its segment (shmctl IPC_RMID: SHM_DEST, it has
--      one attach) and exits: do_exit clears tsk->mm (for_each_task skips
--      it from now on) and exit_mmap detaches the whole VMA chain.
--   3. The attach at 0x10000 goes first: shm_close sees the last attach of
--      a SHM_DEST segment and removes its name. shm_unlink's
--      down(&shm_ids.sem) finds the semaphore held by "ipc", whose own
--      shmctl calls take it without the BKL: the exiter sleeps, and
--      schedule() drops the BKL.
--   4. swapoff, spinning for the BKL, gets it and runs whole without a
--      sleep: it cannot see the mm, forces the count of 1:1 to 0
--      ("VM: Undead swap entry") and returns 0 while the detached VMA at
--      0x20000 still holds 1:1.
--
-- With the patch, exit_mmap holds mmap_sem and the mm stays on the mm list
-- until __mmdrop, so swapoff waits for the teardown on the mm's mmap_sem.

machine { cpus = 3, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0 }

local seg = shmget(1)
local other = shmget(1)

local exiter = process("exiter", function()
  shmctl(seg, "IPC_RMID")   -- the segment goes with its last attach: ours
  swap_out(0x20000)         -- the page stealer's first visit only ages the pte,
  swap_out(0x20000)         -- the second: it takes 1:1 again; the page stays cached
  exit()
end)
exiter:shmat(seg, 0x10000)  -- first VMA: the last attach of a SHM_DEST segment
exiter:map(0x20000, 1)      -- second VMA: holds the swap entry
exiter:write(0x20000)
exiter:swap_out(0x20000)
exiter:read(0x20000)        -- back in memory, still in the swap cache

-- Another SysV IPC user: each shmctl holds shm_ids.sem for a moment.
local ipc = process("ipc", function()
  for _ = 1, 6 do shmctl(other, "IPC_RMID") end
end)
ipc:shmat(other, 0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
