-- fork's -ENOMEM unwinding (kernel/fork.c:404-417, copy_mm's free_pt),
-- which pre4 leaves to race 1.
--
--   1. The parent's page at 0x10000 is on swap (entry 1:1).
--   2. dup_mmap copies 1:1 into the child's mm, then sleeps allocating the
--      next vm_area_struct. The child is on no task list.
--   3. swapoff cannot see the child's mm: it forces 1:1 to 0 ("VM: Undead
--      swap entry").
--   4. The allocation fails (the fourth allocation of the run, after the
--      first VMA, the child's page table and swapoff's page;
--      faults.alloc_fail_nth = 4): dup_mmap returns -ENOMEM, copy_mm
--      mmputs the half-built mm, and exit_mmap's zap frees 1:1 again:
--      "VM: Bad swap entry" (invariant swap-count; pre4 seed 153). Without
--      the failure the same schedule is race 1.
--
-- With the patch, mm_alloc put the half-built mm on the mm list and
-- swapoff waits on the parent's mmap_sem until dup_mmap is done: it then
-- holds the child's mm (hold_mm), or finds it gone after __mmdrop took it
-- off the list.

machine {
  cpus = 1,
  memory_pages = 64,
  swap_devices = { 16 },
  alloc_sleep = 0.3,
  faults = { alloc_fail_nth = 4 },
}

local parent = process("parent", function()
  local pid = fork(function() read(0x10000) end)
  expect(pid > 0 or pid == -12, "fork returned " .. tostring(pid))
end)
parent:map(0x10000, 1)
parent:map(0x20000, 1)
parent:write(0x10000)
parent:write(0x20000)
parent:swap_out(0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0 or ret == -12, "swapoff(1) failed with " .. tostring(ret))
end)
