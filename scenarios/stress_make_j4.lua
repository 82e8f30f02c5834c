-- The seed's own test: "Patch testing has been done on pre4-5 by running
-- constant swapoff's to one of three swap devices, on a 4 cpu 24Mb system
-- running make -j4 on the kernel source."
--
-- Four make jobs keep forking compiler processes. Each compiler maps a
-- private heap, fills it, reads a shared header cache (a SysV shm segment
-- every job attaches), reads its heap back, unmaps half and exits. Their
-- combined heaps exceed memory, so kswapd and direct reclaim swap pages
-- out to the three devices all the time. Meanwhile one task swaps device
-- 2 off and back on, 200 times.
--
--   swapsim run scenarios/stress_make_j4.lua --kernel patched   # survives
--   swapsim run scenarios/stress_make_j4.lua --kernel pre4      # breaks

machine {
  cpus = 4,
  memory_pages = 6144,                  -- 24 MB of 4 KiB pages
  swap_devices = { 2048, 2048, 2048 },  -- three 8 MB swap devices
  kswapd = true,
  alloc_sleep = 0.05,
  step_budget = 200000000,
}

local CYCLES = 200          -- swapoff/swapon cycles
local HEAP = 0x100000       -- a compiler's private heap
local HEAP_PAGES = 2048     -- 8 MB each: four of them exceed memory
local HEADERS = 0x40000000  -- the shared header cache
local HEADER_PAGES = 64

-- Shared by every program (one Lua state): the jobs stop once the last
-- swapoff cycle is done; each cycle waits for one more compile to finish,
-- so that the build keeps putting pages on the device between cycles.
cycles_done = 0
compiles_done = 0

local headers = shmget(HEADER_PAGES)

local function compiler()
  mmap(HEAP, HEAP_PAGES)
  for i = 0, HEAP_PAGES - 1 do write(HEAP + i * 4096) end
  for i = 0, HEADER_PAGES - 1, 8 do read(HEADERS + i * 4096) end
  for i = 0, HEAP_PAGES - 1, 4 do read(HEAP + i * 4096) end
  munmap(HEAP + (HEAP_PAGES // 2) * 4096, HEAP_PAGES // 2)
  exit()
end

for j = 1, 4 do
  local job = process("make" .. j, function()
    while cycles_done < CYCLES do
      waitpid(fork(compiler))
      compiles_done = compiles_done + 1
      -- make reads its own state between jobs.
      read(0x10000)
    end
  end)
  job:map(0x10000, 1)
  job:write(0x10000)
  job:shmat(headers, HEADERS)
end
-- The first job fills the header cache before the build starts.
local first = process("headers")
first:shmat(headers, HEADERS)
for i = 0, HEADER_PAGES - 1 do first:write(HEADERS + i * 4096) end

process("swapoffer", function()
  for cycle = 1, CYCLES do
    local ret = swapoff(2)
    expect(ret == 0, "swapoff(2) failed with " .. tostring(ret) .. " in cycle " .. cycle)
    expect(swapon(2) == 0, "swapon(2) failed in cycle " .. cycle)
    cycles_done = cycle
    local target = compiles_done + 1
    while compiles_done < target do sleep(10) end
  end
end)
