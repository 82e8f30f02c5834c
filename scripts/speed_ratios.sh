#!/usr/bin/env bash
# Issue 17's speed targets: each figure beside its target, swapsim and the peer
# checkers (shuttle, from ../shared/peers) measured in the same run, each case
# in its own process on one CPU (taskset -c 0 where it exists).
#
#   scripts/speed_ratios.sh [PEERS_DIR]     (default: ../shared/peers from the repository root)
#
# It builds swapsim in release, runs the peers' run.sh (which builds them and
# prints `peer.<tool>.<case>.<metric> = <value>` lines), and the bench's quick
# section for the bench loop's pace and stress_make_j4. Wall clock is read
# here only to report speed.
#
# Below the targets it splits each pace ratio in two: decisions a run (how
# many scheduling decisions each model makes: swapsim's steps, shuttle's
# calls of its scheduler, counted by scripts/peer_decisions/main.rs built in
# a copy of the peers' crate) and the pace per decision.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${1:-../shared/peers}
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
cargo build --release -p cli --quiet
BIN=target/release/swapsim
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Runs per second of a command that makes $RUNS runs (stdout dropped), whole
# process.
timed() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" -v n="$RUNS" 'BEGIN { printf "%.0f", n / (b - a) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The peers: every figure they print.
"$PEERS/run.sh" >"$TMP/peers.txt"
peer() { awk -F' = ' -v k="$1" '$1 == k { print $2 }' "$TMP/peers.txt"; }
# One more run of a peer case (run.sh built the binary): its executions/s.
PEER_BIN="$PEERS/target/release/swapsim-peers"
peer_rate() { "${PIN[@]}" "$PEER_BIN" "$@" 2>/dev/null | awk -F' = ' '$1 ~ /iters_per_s$/ { print $2; exit }'; }
# The median of column $1 of file $2 (five lines).
median() { awk -v c="$1" '{ print $c }' "$2" | sort -g | sed -n 3p; }
# The median of each column of FILE (five rows), on one line.
medians() {
    local c line=""
    for c in $(seq 1 "$(awk '{ print NF; exit }' "$1")"); do line="$line $(median "$c" "$1")"; done
    echo $line
}

# The machine's pace drifts by 10-30% from one minute to the next, so each
# swapsim figure is measured five times, each time right beside what it is
# compared with, and a ratio is the median of the five pairs' ratios.
explore_rate() { timed "${PIN[@]}" "$BIN" explore "$1" --kernel patched --runs "$RUNS" --strategy random --jobs 1; }

# 1. explore race 1 under the patch, random, one job, whole process; beside
#    it the bench loop (the same runs, no search around them) and shuttle
#    on the peers' race-1 model (the clean patched case of run.sh).
RUNS=100000
for i in 1 2 3 4 5; do
    explore=$(explore_rate scenarios/race1_fork.lua)
    "${PIN[@]}" cargo bench -p cli --quiet -- quick race1 >"$TMP/loop$i.txt" 2>/dev/null
    loop_rate=$(awk '$1 == "patched" && $2 == "off" && $3 == "reused" { print $6 }' "$TMP/loop$i.txt")
    shuttle=$(peer_rate race1-shuttle-clean random 100000)
    awk -v e="$explore" -v l="$loop_rate" -v s="$shuttle" \
        'BEGIN { printf "%s %s %s %.4f %.4f\n", e, l, s, l / e - 1, e / s }' >>"$TMP/race1.txt"
done
read -r race1 loop shuttle_race1 overhead race1_ratio < <(medians "$TMP/race1.txt")

# 2. The two-task toy (the bench's toy: two processes writing one page each).
cat >"$TMP/toy.lua" <<'EOF'
machine { cpus = 2, memory_pages = 64, swap_devices = { 16 } }
process("a", function() write(0x100000) end):map(0x100000, 1)
process("b", function() write(0x100000) end):map(0x100000, 1)
EOF
for i in 1 2 3 4 5; do
    explore=$(explore_rate "$TMP/toy.lua")
    shuttle=$(peer_rate toy-shuttle 20000)
    awk -v e="$explore" -v s="$shuttle" 'BEGIN { printf "%s %s %.4f\n", e, s, e / s }' >>"$TMP/toy.txt"
done
read -r toy shuttle_toy toy_ratio < <(medians "$TMP/toy.txt")

# 3. --jobs 2 against --jobs 1 (the same search), and beside it what this
#    machine gives two processes that share nothing: the same runs as two
#    --jobs 1 searches of half the seeds each, side by side. (Two vCPUs of a
#    VM may be one core's two hyperthreads; then no program scales 2x.)
#    Each of the five rounds runs all three: one job, two jobs, two
#    processes.
HALF=$((RUNS / 2))
side_by_side() {
    "$BIN" explore scenarios/race1_fork.lua --kernel patched --runs $HALF --strategy random --jobs 1 >/dev/null &
    "$BIN" explore scenarios/race1_fork.lua --kernel patched --runs $HALF --seed $((HALF + 1)) --strategy random \
        --jobs 1 >/dev/null
    wait
}
for i in 1 2 3 4 5; do
    one=$(timed "$BIN" explore scenarios/race1_fork.lua --kernel patched --runs $RUNS --strategy random --jobs 1)
    two=$(timed "$BIN" explore scenarios/race1_fork.lua --kernel patched --runs $RUNS --strategy random --jobs 2)
    apart=$(timed side_by_side)
    awk -v o="$one" -v t="$two" -v a="$apart" 'BEGIN { printf "%s %s %s %.4f %.4f\n", o, t, a, t / o, a / o }' \
        >>"$TMP/jobs.txt"
done
read -r race1_j1 race1_j2 race1_2p jobs_ratio apart_ratio < <(medians "$TMP/jobs.txt")

# 4. Schedules: dfs on race 1 under the patch at two preemptions, beside
#    loom's DPOR on its smaller race-1 model at the same bound.
REDUCTION=()
if "$BIN" explore --help | grep -q -- '--reduction'; then REDUCTION=(--reduction dpor); fi
dfs_out=$("$BIN" explore scenarios/race1_fork.lua --kernel patched --strategy dfs --preemptions 2 "${REDUCTION[@]}")
schedules=$(printf '%s\n' "$dfs_out" | sed -n 's/.*explored all \([0-9]*\) schedules.*/\1/p')
loom_pb2=$(peer peer.loom.race1_patched.pb2.iters)

# 5. stress_make_j4 (and the toy's steps a run, for 6). Three times, the
#    median (like the explore figures, the machine's pace drifts by 10-20%
#    from one minute to the next).
for i in 1 2 3; do
    "${PIN[@]}" cargo bench -p cli --quiet -- quick race1 toy stress >"$TMP/bench$i.txt" 2>/dev/null
done
stress=$(awk '/^stress_make_j4 \(patched/ { for (i = 1; i <= NF; i++) if ($i == "steps/s;") print $(i - 1) }' \
    "$TMP"/bench?.txt | sort -n | sed -n 2p)

# 6. Decisions a run: swapsim's steps (the bench's runs are explore's
#    seeds), shuttle's scheduler calls on the peers' own models and seed.
steps_race1=$(awk '$1 == "patched" && $2 == "off" && $3 == "reused" { printf "%.1f", $5 / $4; exit }' "$TMP/bench1.txt")
steps_toy=$(awk '/^toy \(/ { for (i = 1; i <= NF; i++) if ($i == "steps,") { printf "%.1f", $(i - 1) / $(i - 3); exit } }' \
    "$TMP/bench1.txt")
mkdir -p "$TMP/decisions/src"
cp "$PEERS/Cargo.toml" "$PEERS/Cargo.lock" "$TMP/decisions/"
cp "$PEERS/src/race1.rs" "$PEERS/src/toy.rs" "$TMP/decisions/src/"
cp scripts/peer_decisions/main.rs "$TMP/decisions/src/main.rs"
DECISIONS_TARGET="$PEERS/target/decisions"
if ! (cd "$TMP/decisions" && CARGO_TARGET_DIR="$DECISIONS_TARGET" cargo build --release --locked --offline --quiet \
    2>"$TMP/decisions.log"); then
    echo "speed_ratios.sh: the peers' decision counter did not build:" >&2
    cat "$TMP/decisions.log" >&2
    exit 1
fi
"$DECISIONS_TARGET/release/swapsim-peers" race1 20000 >>"$TMP/peers.txt"
"$DECISIONS_TARGET/release/swapsim-peers" toy 20000 >>"$TMP/peers.txt"
shuttle_steps_race1=$(peer peer.shuttle.patched.random.decisions_per_iter)
shuttle_steps_toy=$(peer peer.shuttle.toy.random.decisions_per_iter)
per_decision() { awk -v r="$1" -v d="$2" 'BEGIN { printf "%.0f", r * d }'; }

echo "Each figure: the median of five runs; a pace ratio: the median of five ratios, each of a"
echo "swapsim run and the peer's run right after it (the columns are the medians of each side)."
printf '%-44s %14s %14s %8s  %s\n' figure swapsim peer/base ratio target
printf '%-44s %14s %14s %8s  %s\n' "explore race 1 patched (runs/s)" "$race1" "$shuttle_race1" \
    "$(printf '%.2f' "$race1_ratio")" ">= 1.0x shuttle race 1"
printf '%-44s %14s %14s %8s  %s\n' "explore toy (runs/s)" "$toy" "$shuttle_toy" \
    "$(printf '%.2f' "$toy_ratio")" ">= 1.0x shuttle toy"
printf '%-44s %14s %14s %8s  %s\n' "bench loop / explore (runs/s, paired)" "$race1" "$loop" \
    "$(awk -v o="$overhead" 'BEGIN { printf "%.0f%%", o * 100 }')" "explore's overhead <= 10%"
printf '%-44s %14s %14s %8s  %s\n' "stress_make_j4 (steps/s)" "$stress" "10000000" \
    "$(ratio "$stress" 10000000)" ">= 1.0 (10 M steps/s)"
printf '%-44s %14s %14s %8s  %s\n' "explore race 1 --jobs 2 / --jobs 1 (runs/s)" "$race1_j2" "$race1_j1" \
    "$(printf '%.2f' "$jobs_ratio")" ">= 1.8x"
printf '%-44s %14s %14s %8s  %s\n' "  two --jobs 1 processes side by side / one" "$race1_2p" "$race1_j1" \
    "$(printf '%.2f' "$apart_ratio")" "(the machine's own scaling)"
printf '%-44s %14s %14s %8s  %s\n' "dfs race 1 patched, 2 preemptions (schedules)" "${schedules:-?}" "${loom_pb2:-?}" \
    "$(ratio "${schedules:-nan}" "${loom_pb2:-nan}")" "<= 3000 schedules (loom: its smaller model)"
echo "(dfs: ${REDUCTION[*]:-sleep sets only})"
echo
echo "The pace ratios split: a run's decisions (the model's size) times the pace of one."
printf '%-44s %14s %14s %8s\n' "race 1 patched: decisions a run" "$steps_race1" "$shuttle_steps_race1" \
    "$(ratio "$steps_race1" "${shuttle_steps_race1:-nan}")"
printf '%-44s %14s %14s %8s\n' "race 1 patched: decisions/s" "$(per_decision "$race1" "$steps_race1")" \
    "$(per_decision "${shuttle_race1:-0}" "${shuttle_steps_race1:-0}")" \
    "$(awk -v r="$race1_ratio" -v a="$steps_race1" -v b="${shuttle_steps_race1:-nan}" 'BEGIN { printf "%.2f", r * a / b }')"
printf '%-44s %14s %14s %8s\n' "toy: decisions a run" "$steps_toy" "$shuttle_steps_toy" \
    "$(ratio "$steps_toy" "${shuttle_steps_toy:-nan}")"
printf '%-44s %14s %14s %8s\n' "toy: decisions/s" "$(per_decision "$toy" "$steps_toy")" \
    "$(per_decision "${shuttle_toy:-0}" "${shuttle_steps_toy:-0}")" \
    "$(awk -v r="$toy_ratio" -v a="$steps_toy" -v b="${shuttle_steps_toy:-nan}" 'BEGIN { printf "%.2f", r * a / b }')"
