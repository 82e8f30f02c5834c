-- Claim of the seed (its exit_mmap hunk):
--
--   "Execing mm's are still holdable."
--
-- exit_mmap marks an mm MM_GONE (mark_nonholdable) only when it has no
-- users left: exec_mmap, which empties an mm with one user in place and
-- keeps it, leaves it on the mm list and holdable, so swapoff's crab still
-- visits what the process maps after exec.
--
-- What it tries: swapoff holds the shell's mm (hold_mm, then sleeps in
-- unuse_mm: on its mmap_sem or in a read) while the shell execs, maps a
-- fresh page, writes it and pushes it out to slot 1 again (its own
-- swap_out, twice: the first visit only ages the young pte), before
-- swapoff clears SWP_WRITEOK or after.
--   - exec_mmap (fs/exec.c:368-392): mm_users == 1, so exit_mmap(old_mm)
--     in place, with no BKL; with the patch under the mm's mmap_sem.
--   - If the emptied mm were not holdable, the crab would skip it and
--     leave the shell's new entry behind (swapoff-completeness).
-- Expected under the patch: clean. Under pre4 exec's exit_mmap runs with
-- no BKL and no mmap_sem under swapoff's unlocked walk.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local shell = process("shell", function()
  exec()
  mmap(0x20000, 1)
  write(0x20000)
  swap_out(0x20000)
  swap_out(0x20000)
end)
shell:map(0x10000, 2)
shell:write(0x10000)
shell:swap_out(0x10000)
shell:write(0x11000)
shell:swap_out(0x11000)

local other = process("other")
other:map(0x10000, 1)
other:write(0x10000)
other:swap_out(0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
