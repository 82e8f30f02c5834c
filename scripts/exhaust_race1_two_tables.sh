#!/usr/bin/env bash
# The dfs exhaustion behind race1_fork_two_tables.lua's claim, too long for
# the test suite in a debug build: under the patch, every schedule with at
# most 2 preemptions holds; without its mmap_sem fix, and under pre4, dfs
# finds race 1 across the two page tables.
#
#   scripts/exhaust_race1_two_tables.sh
#
# Expected (release build): "explored all 32106 schedules with <= 2
# preemptions: no violation" under --kernel patched, and a violation in
# the other two.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/swapsim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
file=scenarios/race1_fork_two_tables.lua
for flags in "--kernel patched" "--kernel patched --no-fix mmap-sem" "--kernel pre4"; do
  echo "== $flags"
  # shellcheck disable=SC2086
  "$bin" explore "$file" $flags --strategy dfs --preemptions 2 --runs 1000000 --out "$out" | grep '^result:' || true
done
