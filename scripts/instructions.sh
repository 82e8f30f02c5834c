#!/usr/bin/env bash
# Instructions a run, counted by callgrind: the steady measure of the
# simulator's speed on a machine whose pace drifts (a shared VM). Runs
# explore over the two-task toy and race 1 under the patch, random walk,
# one job, and divides the instructions of the whole process by the runs
# (start-up included; with 4000 runs it is ~3% of race 1's figure).
#
#   scripts/instructions.sh [BIN] [RUNS]    (defaults: target/release/swapsim, 4000)
#
# Compare two builds by running it on each binary. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/swapsim}
RUNS=${2:-4000}
command -v valgrind >/dev/null || { echo "scripts/instructions.sh: valgrind is not installed" >&2; exit 2; }
if [ "$BIN" = target/release/swapsim ]; then cargo build --release -p cli --quiet; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/toy.lua" <<'LUA'
machine { cpus = 2, memory_pages = 64, swap_devices = { 16 } }
process("a", function() write(0x100000) end):map(0x100000, 1)
process("b", function() write(0x100000) end):map(0x100000, 1)
LUA
for case in toy race1; do
    if [ $case = toy ]; then scenario=$TMP/toy.lua; else scenario=scenarios/race1_fork.lua; fi
    valgrind --tool=callgrind --callgrind-out-file="$TMP/out" "$BIN" explore "$scenario" --kernel patched \
        --runs "$RUNS" --strategy random --jobs 1 >/dev/null 2>"$TMP/err"
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/err")
    printf '%-6s %10d instructions a run (%d runs)\n' "$case" $((total / RUNS)) "$RUNS"
done
