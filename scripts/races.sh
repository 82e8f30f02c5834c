#!/usr/bin/env bash
# Regenerate docs/races.md from real runs: every race scenario under pre4,
# the patched kernel, the patch minus each fix, and the lookup-wait what-if.
#
#   scripts/races.sh [SEEDS]        (default 10000 seeds per cell)
#
# Each cell says whether the race's own signature (docs/races.md §
# Signatures: what happened, not which check noticed it) matched a run of
# seeds 1..SEEDS and, if so, in how many and first at which seed; the
# "other buckets" column lists what else broke under pre4 and the patch.
# Runs on every core.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-10000}"
cargo build --release --quiet
bin=target/release/swapsim
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# scenario | race | its signature (bucket) | the fixes the seed credits for it
races=(
  "race1_fork.lua|1 fork|race1-fork|--no-fix mmlist --no-fix mmap-sem"
  "race2_exit.lua|2 exit|race2-exit|--no-fix mmlist --no-fix mmap-sem"
  "race3_fault.lua|3 do_swap_page|race3-do-swap-page|--no-fix mmap-sem"
  "race4_shm.lua|4 shm delete|race4-shm-delete|--no-fix page-lock"
  "race5_munmap.lua|5 free_page_and_swap_cache|race5-free-page-and-swap-cache|--no-fix mmap-sem --no-fix page-lock --no-fix lookup-wait"
  "race6_readahead.lua|6 readahead|race6-readahead|--no-fix mmap-sem --no-fix no-readahead"
  "race6_kswapd.lua|6 kswapd|race6-kswapd|--no-fix no-new-refs"
  "race7_shm_nopage.lua|7 shm_nopage (open)|race7-shm-nopage|"
  "race1_fork_two_tables.lua|1 fork, one VMA across two page tables|race1-fork|--no-fix mmap-sem"
  "fork_enomem.lua|fork's -ENOMEM unwinding (not in the seed)|fork-enomem|--no-fix mmlist"
  "thread_exec.lua|exec of a threaded mm (not in the seed)|thread-exec|--no-fix mmlist --no-fix mmap-sem"
  "smp_munmap_walk.lua|unuse_pte and the VMA walk against munmap, SMP (not in the seed)|smp-munmap-walk|--no-fix mmap-sem"
  "shm_swap_window.lua|shm_swap's unpublished slot, SMP (not in the seed; open)|shm-swap-window|"
)
# column title | kernel flags
columns=(
  "pre4|--kernel pre4"
  "patched|--kernel patched"
  "−mmlist|--kernel patched --no-fix mmlist"
  "−mmap-sem|--kernel patched --no-fix mmap-sem"
  "−page-lock|--kernel patched --no-fix page-lock"
  "−no-readahead|--kernel patched --no-fix no-readahead"
  "−no-new-refs|--kernel patched --no-fix no-new-refs"
  "pre4 −lookup-wait|--kernel pre4 --no-fix lookup-wait"
  "patched −lookup-wait|--kernel patched --no-fix lookup-wait"
  "patched − the race's own fixes|OWN"
  "2.4.10 design|--kernel 2.4.10|ALL"
  "5.1 design|--kernel 5.1|ALL"
)

jobs="$work/jobs"
: > "$jobs"
for r in "${!races[@]}"; do
  for c in "${!columns[@]}"; do
    echo "$r $c" >> "$jobs"
  done
done

run_cell() {
  local r=$1 c=$2
  local file invariant own flags all
  IFS='|' read -r file _ invariant own <<< "${races[$r]}"
  IFS='|' read -r _ flags all <<< "${columns[$c]}"
  if [ "$flags" = OWN ]; then
    if [ -z "$own" ]; then
      echo "(none: open)" > "$work/cell.$r.$c"
      return
    fi
    flags="--kernel patched $own"
  fi
  # shellcheck disable=SC2086
  "$bin" run "scenarios/$file" $flags --seeds "1..$seeds" > "$work/out.$r.$c" || true
  # The summary's bucket lines: "  COUNT  first seed SEED  NAME".
  local buckets="$work/buckets.$r.$c"
  sed -n '/^buckets:/,/^first:/p' "$work/out.$r.$c" | grep '^  ' | sed -E 's/^ +([0-9]+) +first seed ([0-9]+) +/\1|\2|/' > "$buckets" || true
  local count first
  count=$(awk -F'|' -v s="$invariant" '$3 == s {print $1}' "$buckets")
  first=$(awk -F'|' -v s="$invariant" '$3 == s {print $2}' "$buckets")
  local other=""
  if [ "$all" = ALL ]; then
    # Later kernels: also say whether anything else broke.
    other=$(grep '^result:' "$work/out.$r.$c" | grep -o 'broke ([^)]*)' || true)
    [ -n "$other" ] && other="; any invariant: $other"
  fi
  if [ -n "$count" ]; then
    echo "**found** $count (first seed $first)$other" > "$work/cell.$r.$c"
  else
    echo "not found$other" > "$work/cell.$r.$c"
  fi
  # What else broke, for the "other buckets" column (pre4 and patched).
  awk -F'|' -v s="$invariant" '$3 != s {print $3 " " $1 " (seed " $2 ")"}' "$buckets" | paste -sd ';' | sed 's/;/; /g' > "$work/other.$r.$c"
}
export -f run_cell
export bin seeds work
export RACES="$(printf '%s\n' "${races[@]}")" COLUMNS_="$(printf '%s\n' "${columns[@]}")"
while read -r r c; do
  ( mapfile -t races <<< "$RACES"; mapfile -t columns <<< "$COLUMNS_"; run_cell "$r" "$c" ) &
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n; done
done < "$jobs"
wait

# The later races: scenario | title | signature | kernel before the fix | the fix.
pct_runs=$(( seeds < 3000 ? seeds : 3000 ))
later=(
  "later/unuse_max_tries.lua|SWAP_UNUSE_MAX_TRIES (dd862deb151a)|swap-unuse-max-tries|5.1-rc1|5.1"
  "later/eb085574_swapin.lua|do_swap_page vs teardown (eb085574a752)|eb085574-swapin|5.2|5.3"
  "later/2efa33fc_shmem_swapin.lua|shmem_swapin vs swapoff (2efa33fc7f6e)|2efa33fc-shmem-swapin|5.3|5.14"
  "later/82b1c07a_zap.lua|free_swap_and_cache vs swapoff (82b1c07a0af6)|82b1c07a-zap|5.14|6.9"
)
# One cell: the signature's count and first seed in a run's bucket lines.
count_of() {
  local file=$1 sig=$2
  local line
  line=$(sed -n '/^buckets:/,/^first:/p' "$file" | grep -E "^ +[0-9]+ +first (seed|run) [0-9]+ +$sig\$" || true)
  if [ -n "$line" ]; then
    echo "$line" | awk '{print "**found** " $1 " (first seed " $4 ")"}'
  else
    echo "not found"
  fi
}
: > "$work/later.md"
for row in "${later[@]}"; do
  IFS='|' read -r file title sig before after <<< "$row"
  for kernel in "$before" "$after"; do
    "$bin" run "scenarios/$file" --kernel "$kernel" --seeds "1..$seeds" > "$work/l.random" || true
    "$bin" run "scenarios/$file" --kernel "$kernel" --seeds "1..$seeds" --timed > "$work/l.timed" || true
    "$bin" explore "scenarios/$file" --kernel "$kernel" --strategy pct --runs "$pct_runs" --no-shrink \
      --out "$work/l.out" > "$work/l.pct" || true
    "$bin" explore "scenarios/$file" --kernel "$kernel" --strategy dfs --preemptions 1 --runs 20000 --no-shrink \
      --out "$work/l.out" > "$work/l.dfs" || true
    dfs=$(grep '^result:' "$work/l.dfs" | sed -E 's/^result: +//; s/: VIOLATION.*//; s/:.*no violation.*/: clean/')
    grep -q "^bucket: *$sig" "$work/l.dfs" || dfs="$dfs${dfs:+ }(not this signature)"
    grep -q "^bucket:" "$work/l.dfs" || dfs=$(grep '^result:' "$work/l.dfs" | sed -E 's/^result: +//')
    echo "| $title (\`$file\`) | $sig | $kernel | $(count_of "$work/l.random" "$sig") | $(count_of "$work/l.timed" "$sig") | $(count_of "$work/l.pct" "$sig") | $dfs |" >> "$work/later.md"
  done
done

out="$work/races.md"
{
  echo "# The races, the fixes, and what each fix closes"
  echo
  echo "Generated by \`scripts/races.sh $seeds\` from real runs of \`swapsim run --seeds 1..$seeds\`;"
  echo "do not edit by hand. A cell says whether the race's own **signature** matched"
  echo "in any of the $seeds seeds (how many seeds, and the first), under the kernel of"
  echo "its column: 2.3.99-pre4/5, the seed's patch, the patch with one fix switched"
  echo "off (\`--no-fix NAME\`), the lookup-wait what-if, and the later swapoff designs"
  echo "(\`--kernel 2.4.10\`, \`--kernel 5.1\`: docs/model.md § Later kernels). A"
  echo "signature is a predicate over the run's key events that says the race's mechanism"
  echo "happened (§ Signatures below): a run that breaks the race's invariant by another"
  echo "interleaving is not counted in the race's cell but in its bucket, and the last"
  echo "column lists those buckets under pre4 and the patch (\`unclassified\` ones are"
  echo "candidate new races). The later-design columns also say if anything broke."
  echo
  header="| race (scenario) | signature |"
  rule="|---|---|"
  for col in "${columns[@]}"; do
    header="$header ${col%%|*} |"
    rule="$rule---|"
  done
  header="$header other buckets: pre4 / patched |"
  rule="$rule---|"
  echo "$header"
  echo "$rule"
  for r in "${!races[@]}"; do
    IFS='|' read -r file race invariant own <<< "${races[$r]}"
    row="| $race (\`$file\`) | $invariant |"
    for c in "${!columns[@]}"; do
      row="$row $(cat "$work/cell.$r.$c") |"
    done
    pre4_other=$(cat "$work/other.$r.0"); patched_other=$(cat "$work/other.$r.1")
    row="$row pre4: ${pre4_other:-none} / patched: ${patched_other:-none} |"
    echo "$row"
  done
  echo
  echo "The last column switches off the fixes the seed credits for the race:"
  for r in "${!races[@]}"; do
    IFS='|' read -r file race invariant own <<< "${races[$r]}"
    [ -n "$own" ] && echo "- race $race: \`$own\`"
  done
  echo
  echo "Fixes: see \`swapsim kernels\`. What the table shows: docs/model.md."
  echo
  echo "## The later swapoff races (issue 18)"
  echo
  echo "Races found in Linux long after the seed, each modelled on the kernel just before"
  echo "its fix and on the fix (\`swapsim kernels\`; docs/model.md § The later races). A cell"
  echo "counts the race's own signature over seeds 1..$seeds of random runs, of"
  echo "\`--timed\` runs, and of $pct_runs pct runs (depth 3), and gives dfs at one"
  echo "preemption: the schedule that breaks, or the schedules it exhausts."
  echo
  echo "| race (scenario) | signature | kernel | random | timed | pct | dfs, 1 preemption |"
  echo "|---|---|---|---|---|---|---|"
  cat "$work/later.md"
  echo
  echo "## Signatures"
  echo
  echo "Every violation falls in one bucket: the first of these signatures it matches"
  echo "(crates/kernel/src/signatures.rs, in this order), or \`unclassified\` with a key"
  echo "(the invariant, the message's shape, the key event of another task it followed)."
  echo "\`swapsim run\`, \`explore\` and \`replay\` print it (\`bucket:\`), explore's CSV has"
  echo "a \`bucket\` column, and explore saves one shrunk schedule per bucket."
  echo
  "$bin" signatures

} > "$out"
mkdir -p docs
mv "$out" docs/races.md.tmp && mv docs/races.md.tmp docs/races.md
echo "wrote docs/races.md ($seeds seeds per cell)"
