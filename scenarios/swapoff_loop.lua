-- A swapoff/swapon loop against a process that keeps writing, swapping
-- out and reading back its pages, on two CPUs.
--
-- Under --kernel pre4 this finds race 3 of the seed ("do_swap_page() might
-- return failure even when swapoff has replaced a swaphandle with a
-- in-memory page") and its variant where the fault frees the swap entry a
-- second time ("VM: Bad swap entry"). Under --kernel patched swapoff takes
-- each mm's mmap_sem, which a fault holds, and every seed runs clean.
--
--   swapsim run scenarios/swapoff_loop.lua --kernel pre4 --seeds 1..50
--   swapsim run scenarios/swapoff_loop.lua --kernel patched --seeds 1..50

machine { cpus = 2, memory_pages = 256, swap_devices = { 64 }, alloc_sleep = 0.1 }
-- p cycles 8 pages through memory and swap, 200 times. The page stealer
-- visits each page twice: the first visit only clears the accessed bit
-- that the writes set.
local p = process("p", function()
  for round = 1, 200 do
    for i = 0, 7 do write(0x100000 + i * 4096) end
    for i = 0, 7 do swap_out(0x100000 + i * 4096) end
    for i = 0, 7 do swap_out(0x100000 + i * 4096) end
    for i = 0, 7 do read(0x100000 + i * 4096) end
  end
end)
p:map(0x100000, 8)
-- q switches the swap device off and on again, 50 times.
process("q", function()
  for round = 1, 50 do swapoff(1); swapon(1) end
end)
