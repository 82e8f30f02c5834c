-- A thread (clone with CLONE_VM) exits while another execs, on two CPUs.
--
--   1. exec_mmap (fs/exec.c:368) reads mm_users == 2, so it does not empty
--      the mm in place: it allocates a new one (mm_alloc may sleep).
--   2. Meanwhile the thread exits: its tsk->mm is NULL and its mmput only
--      takes mm_users to 1.
--   3. exec switches current->mm to the new mm and mmputs the old one
--      (fs/exec.c:387): the last user, so exit_mmap runs here, in exec,
--      without the big kernel lock, on an mm that no task points to.
--   4. swapoff on the other CPU cannot see the old mm: it forces 1:1 to 0,
--      and exit_mmap's zap frees it again ("VM: Bad count", invariant
--      swap-count; pre4 seed 108). A walk that was already on the old mm
--      reads vm_next of a VMA exit_mmap freed (use-after-free, seed 50).
--
-- With the patch the old mm stays on the mm list until __mmdrop and
-- exit_mmap holds its mmap_sem, so swapoff visits it before or after the
-- teardown.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local shell = process("shell", function()
  thread(function() exit() end)
  exec()
end)
shell:map(0x10000, 1)
shell:write(0x10000)
shell:swap_out(0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
