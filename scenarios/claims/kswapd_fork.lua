-- The seed's remark on mm lists:
--
--   "MM lists are bound to become more important. For example, kswapd
--    should actually use mmlists too, else it misses scanning forked
--    (possibly large) children being created."
--
-- What it tries: kswapd reclaiming while a large process forks.
--   1. parent (P) has 24 dirty pages in two VMAs and forks: do_fork →
--      copy_mm → mm_alloc, dup_mmap, copy_page_range, which may sleep
--      (mm_alloc, each VMA's kmem_cache_alloc, pte_alloc): when it sleeps
--      for the second VMA, the child already maps the first VMA's 12
--      pages. The child is linked on the task list (SET_LINKS,
--      kernel/fork.c:734) only after copy_mm returns.
--   2. hog (H) faults 12 pages in until memory is at pages_low: kswapd runs
--      swap_out (mm/vmscan.c:324-400), which picks its victims from the
--      task list (for_each_task) — never the child being built, whose
--      copied ptes hold the same pages: unmapping the parent's ptes frees
--      none of them.
-- With the patch the child's mm is on the mm list from mm_alloc, but
-- kswapd does not use the list (the patch changes only swapoff), so the
-- remark is about a later design (2.4's swap_out walks init_mm.mmlist).
-- Expected: no invariant breaks under either kernel (a miss costs
-- reclaim, not correctness); the events show how often kswapd's swap_out
-- runs while a child is being copied (docs/claims.md).

machine { cpus = 2, memory_pages = 48, swap_devices = { 64 }, alloc_sleep = 0.2, kswapd = true }

local parent = process("parent", function()
  local child = fork(function() exit() end)
  waitpid(child)
end)
parent:map(0x10000, 12)                -- two VMAs: dup_mmap sleeps for the
parent:map(0x800000, 12)               -- second after copying the first's ptes
for i = 0, 11 do
  parent:write(0x10000 + i * 4096)
  parent:write(0x800000 + i * 4096)
end

local hog = process("hog", function()
  for i = 0, 11 do write(0x100000 + i * 4096) end   -- down to pages_low: wakes kswapd
end)
hog:map(0x100000, 12)
