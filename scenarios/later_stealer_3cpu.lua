-- The later kernels (--kernel 2.4.10, --kernel 5.1) against a page stealer,
-- on three CPUs: a fork copies a swap entry, swapoff brings it back in, the
-- parent and the child write to it, and the page stealer keeps pushing the
-- parent's page out again, onto the second device.
--
-- Two false alarms of the transplant lived here (issue 12, point 8):
--   a. The stealer checked the page lock, then added the page to the swap
--      cache while a do_swap_page, which had found it in the cache before
--      swapoff took it out, had locked it meanwhile ("add_to_swap_cache:
--      page#N was locked by someone else"). 2.4's try_to_swap_out takes the
--      page lock itself at its top (TryLockPage) and holds it throughout.
--   b. A write fault took the page out of the swap cache on a count read
--      before swapoff took its reference; the stealer then put it in the
--      cache of device 2, and swapoff hit 2.4's own BUG() ("count 0 but the
--      page is in the swap cache"). 2.4's do_swap_page never deletes on a
--      write fault, and remove_exclusive_swap_page rechecks the page count
--      under pagecache_lock.
-- Both later kernels must run it clean; the pre4 and patched kernels are
-- the 2.3.99 world, where it finds the seed's races.

machine { cpus = 3, memory_pages = 64, swap_devices = { 16, 16 }, alloc_sleep = 0.2 }

local owner = process("owner", function()
  fork(function()
    write(0x10000)
    read(0x11000)
    exit()
  end)
  write(0x10000)
  read(0x11000)
end)
owner:map(0x10000, 2)
owner:write(0x10000)
owner:write(0x11000)
owner:swap_out(0x10000)
owner:swap_out(0x11000)

-- The page stealer, aimed at the owner's two pages.
process("stealer", function()
  for i = 1, 6 do
    swap_out(0x10000, owner.pid)
    swap_out(0x11000, owner.pid)
  end
end)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
