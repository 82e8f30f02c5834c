//! `explore --strategy dfs`: bounded depth-first search of the schedules.

use std::process::ExitCode;

use engine::Outcome;
use script::{RunOptions, RunReport};

use super::save::save_schedule;
use super::{ExploreArgs, ReductionName};
use crate::args::KernelChoice;
use crate::commands::violation;
use crate::output::error;

/// Bounded depth-first search (CHESS, Musuvathi and Qadeer, PLDI 2007):
/// run the schedule with no preemption, then every schedule that differs
/// from an explored one at a single later decision, as long as it has at
/// most `--preemptions` preemptions; stop at the first violation, or when
/// all are explored (or `--runs` is reached). With sleep sets (the
/// default) a schedule that only reorders independent steps of one
/// explored before is cut short; with `--reduction dpor` only the decisions
/// where conflicting steps could go the other way branch (source-DPOR).
pub(super) fn dfs(args: &ExploreArgs, kernel: &KernelChoice, path: &str, source: &str) -> ExitCode {
    let bound = args.preemption_bound();
    let dpor = args.reduction == ReductionName::Dpor;
    let sleep_sets = !args.no_sleep_sets;
    let limit = if bound == u32::MAX { "no preemption bound".to_string() } else { format!("<= {bound} preemptions") };
    println!(
        "strategy: dfs, {} (allocation sleeps count as preemptions){}",
        if bound == u32::MAX { "no preemption bound".to_string() } else { format!("at most {bound} preemptions") },
        if dpor {
            ", source-DPOR with sleep sets"
        } else if sleep_sets {
            ", sleep sets"
        } else {
            ""
        }
    );
    let runner = match script::run::Runner::new(path, source, Default::default()) {
        Ok(runner) => runner,
        Err(e) => return error(e),
    };
    let progress = crate::output::progress::Progress::new(args.runs());
    let mut plan = match args.shard {
        Some(shard) => {
            println!("shard:    {}/{} of the search's subtrees (by schedule prefix)", shard.index, shard.count);
            engine::DfsPlan::sharded(sleep_sets, (shard.index - 1) as u32, shard.count as u32)
        }
        None if dpor => engine::DfsPlan::dpor(bound),
        None => engine::DfsPlan { sleep_sets, ..Default::default() },
    };
    let mut explored = 0u64;
    let mut pruned = 0u64;
    let mut exhausted = false;
    let mut found: Option<(Vec<u32>, RunReport)> = None;
    let mut order = crate::lockdep::LockOrder::default();
    while explored + pruned < args.runs() && !crate::interrupt::interrupted() {
        let options = RunOptions {
            record_events: false,
            lock_order: true,
            dfs: Some(plan.clone()),
            ..RunOptions::new(kernel.fixes, args.seed)
        };
        let report = match runner.run(&options) {
            Ok(report) => report,
            Err(e) => return error(e),
        };
        let run = std::mem::take(&mut *plan.log.borrow_mut());
        if !plan.owned() {
            // Another shard's subtree: its first schedule only finds the next.
            match plan.next(&run, bound) {
                Some(next) => plan = next,
                None => {
                    exhausted = true;
                    break;
                }
            }
            continue;
        }
        progress.inc(!run.pruned && report.outcome.is_failure());
        // A dfs witness is its schedule's number in the search.
        order.add_run(explored + pruned + 1, &report.lock_order);
        if run.pruned {
            pruned += 1;
        } else {
            explored += 1;
            let wanted = match &report.outcome {
                Outcome::Violation(v) => args.invariant.as_ref().is_none_or(|name| name == v.invariant),
                Outcome::Finished => false,
                _ => args.invariant.is_none(),
            };
            if wanted {
                found = Some((run.records.iter().map(|r| r.rank).collect(), report));
                break;
            }
        }
        match plan.next(&run, bound) {
            Some(next) => plan = next,
            None => {
                exhausted = true;
                break;
            }
        }
    }
    progress.finish();
    if sleep_sets {
        println!("sleep sets: {pruned} more schedules cut short (they only reorder independent steps of one explored)");
    }
    if let Some(tree) = &plan.dpor {
        let tree = tree.borrow();
        println!("dpor:     {} races reversed, {} backtrack points added", tree.races, tree.added);
    }
    let witness = |n: u64| {
        format!(
            "swapsim explore {path} {} --strategy dfs --preemptions {}{} --seed {} --runs {n} --no-shrink \
             (schedule {n} is the search's last)",
            kernel.flags(),
            args.preemptions_flag(),
            if dpor {
                " --reduction dpor"
            } else if sleep_sets {
                ""
            } else {
                " --no-sleep-sets"
            },
            args.seed
        )
    };
    if let Err(code) = crate::output::run_files::lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    let Some((ranks, report)) = found else {
        if exhausted {
            println!("result:   explored all {explored} schedules with {limit}: no violation");
            return ExitCode::SUCCESS;
        }
        println!("result:   {explored} schedules explored, not all (raise --runs): no violation so far");
        return if crate::interrupt::interrupted() { ExitCode::from(130) } else { ExitCode::SUCCESS };
    };
    println!("result:   schedule {explored} breaks: {}", script::run::describe(&report.outcome));
    if let Some(bucket) = crate::output::tally::bucket_of(&report) {
        println!("bucket:   {bucket}");
    }
    let Some((invariant, step)) = violation(&report) else { return ExitCode::from(1) };
    // Record the raw choices of that schedule for the schedule file (a plain
    // replay of its ranks: the sleep sets only ever cut a run short).
    let replay = engine::DfsPlan { prefix: ranks, ..Default::default() };
    let options = RunOptions { dfs: Some(replay), ..RunOptions::new(kernel.fixes, args.seed) };
    let Ok(recorded) = runner.run(&options) else { return ExitCode::from(1) };
    save_schedule(args, kernel, path, source, args.seed, &format!("dfs{explored}"), invariant, step, &recorded.choices)
}
