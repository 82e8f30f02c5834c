-- Four swapoff designs against the swap pages in use: the 2.3.99-pre4
-- task-list walk, the seed patch's mm-list crab, 2.4.10's start_mm walk
-- and 5.1's single pass ("mm: rid swapoff of quadratic complexity").
--
--   swapsim sweep scenarios/sweep_swapoff_algorithms.lua --out output/algorithms
--
-- The disk is a fast one (100 us a read, as on the machines of the 2019
-- rework) and allocations never wait, so the CPU work of try_to_unuse
-- shows: pre4 and patched scan
-- every mm's page tables for every slot (slots x ptes: quadratic); 2.4.10
-- starts each search at the mm where the last slot was found, which for
-- these processes' contiguous slots is the right one (slots x one mm's
-- ptes); 5.1 walks each mm's page tables once, reading ahead (linear).

sweep {
  params = { processes = { 16 }, pages = { 1024, 2048, 4096, 8192, 16384 } },
  kernels = { "pre4", "patched", "2.4.10", "5.1" },
  seeds = 1,   -- no allocation sleeps: timed runs do not depend on the seed
}

local PROCESSES = param("processes")
local PAGES = param("pages")                   -- swap pages in use, in all
local EACH = math.max(1, PAGES // PROCESSES)   -- each process's share

machine {
  cpus = 2,
  memory_pages = 2 * PAGES + 8192 + 2048,
  swap_devices = { PAGES + 64 },
  alloc_sleep = 0,
  step_budget = 50000000,
  costs = { disk_read = 100000, disk_write = 100000 },
}

swapoff_done = false

-- The holders: each maps twice its share, and has its share out on swap
-- (every other page), so a scan of its page tables looks at 2 x EACH ptes.
for n = 1, PROCESSES do
  local p = process("holder" .. n)
  p:map(0x100000, 2 * EACH)
  for i = 0, 2 * EACH - 1 do
    p:write(0x100000 + i * 4096)
    if i % 2 == 0 then p:swap_out(0x100000 + i * 4096) end
  end
end

-- A worker that takes a page fault every millisecond while swapoff runs,
-- on a fresh page each time. (It never unmaps: pre4's unlocked VMA walk
-- would meet munmap's use-after-free, which race5_munmap.lua shows.)
local worker = process("worker", function()
  local i = 0
  while not swapoff_done and i < 8192 do
    write(0x40000000 + i * 4096)
    i = i + 1
    sleep(1)
  end
end)
worker:map(0x40000000, 8192)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
  swapoff_done = true
end)
