//! Latencies of the programs' system calls.

use std::collections::BTreeMap;

use script::RunReport;

use crate::table::{micros, Table};

/// The latency distribution of one kind of call, in simulated ns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// The call: "fault", "fork", "exit", "swapoff", "read", ...
    pub name: &'static str,
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// The latency (`end_ns - start_ns`) of every completed call in
/// `report.calls`, grouped by call name, one entry per name present, sorted
/// by name. Percentiles are nearest-rank: the p-th percentile of n sorted
/// samples is the sample of rank ⌈p·n/100⌉ (from 1).
pub fn latencies(report: &RunReport) -> Vec<Latency> {
    latencies_of(&report.calls)
}

/// [`latencies`] of any calls (those of many runs together).
pub fn latencies_of(calls: &[script::run::CallRecord]) -> Vec<Latency> {
    let mut by_name: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for call in calls {
        by_name.entry(call.name).or_default().push(call.end_ns.saturating_sub(call.start_ns));
    }
    by_name
        .into_iter()
        .map(|(name, mut samples)| {
            samples.sort_unstable();
            Latency {
                name,
                count: samples.len() as u64,
                min: samples[0],
                p50: nearest_rank(&samples, 50),
                p90: nearest_rank(&samples, 90),
                p99: nearest_rank(&samples, 99),
                max: samples[samples.len() - 1],
            }
        })
        .collect()
}

/// The `percent`-th percentile of the non-empty `sorted` samples, by the
/// nearest-rank method.
pub fn nearest_rank(sorted: &[u64], percent: u32) -> u64 {
    let n = sorted.len() as u64;
    let rank = (u64::from(percent) * n).div_ceil(100).clamp(1, n);
    sorted[(rank - 1) as usize]
}

/// `latencies` as a fixed-width table: a title line, a header, one row per
/// call; times in µs with three decimals.
pub fn render_latencies(latencies: &[Latency]) -> String {
    let mut table = Table::new(&["call", "count", "min", "p50", "p90", "p99", "max"]);
    for l in latencies {
        let mut row = vec![l.name.to_string(), l.count.to_string()];
        row.extend([l.min, l.p50, l.p90, l.p99, l.max].into_iter().map(micros));
        table.row(row);
    }
    format!("call latencies (times in µs)\n{}", table.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::report_of;
    use script::run::CallRecord;

    fn call(name: &'static str, start_ns: u64, end_ns: u64) -> CallRecord {
        CallRecord { task: "p".to_string(), name, start_ns, end_ns }
    }

    fn hand_built() -> RunReport {
        let mut report = report_of(&["p"], Vec::new());
        // fault: 1..=10 µs, listed out of order.
        for i in [7u64, 3, 10, 1, 5, 9, 2, 8, 4, 6] {
            report.calls.push(call("fault", 100, 100 + i * 1_000));
        }
        report.calls.push(call("swapoff", 0, 2_500_000));
        report.calls.push(call("fork", 10, 1_510));
        report.calls.push(call("fork", 20, 3_020));
        report
    }

    #[test]
    fn grouped_sorted_with_nearest_rank_percentiles() {
        let l = latencies(&hand_built());
        assert_eq!(
            l,
            vec![
                Latency { name: "fault", count: 10, min: 1_000, p50: 5_000, p90: 9_000, p99: 10_000, max: 10_000 },
                Latency { name: "fork", count: 2, min: 1_500, p50: 1_500, p90: 3_000, p99: 3_000, max: 3_000 },
                Latency {
                    name: "swapoff",
                    count: 1,
                    min: 2_500_000,
                    p50: 2_500_000,
                    p90: 2_500_000,
                    p99: 2_500_000,
                    max: 2_500_000
                },
            ]
        );
        assert!(latencies(&report_of(&[], Vec::new())).is_empty());
    }

    #[test]
    fn nearest_rank_method() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&samples, 50), 50);
        assert_eq!(nearest_rank(&samples, 99), 99);
        assert_eq!(nearest_rank(&[15, 20, 35, 40, 50], 30), 20);
        assert_eq!(nearest_rank(&[15, 20, 35, 40, 50], 40), 20);
        assert_eq!(nearest_rank(&[15, 20, 35, 40, 50], 50), 35);
        assert_eq!(nearest_rank(&[15, 20, 35, 40, 50], 100), 50);
        assert_eq!(nearest_rank(&[7], 0), 7);
    }

    #[test]
    fn rendered_table() {
        let expected = "\
call latencies (times in µs)
call     count       min       p50       p90       p99       max
fault       10     1.000     5.000     9.000    10.000    10.000
fork         2     1.500     1.500     3.000     3.000     3.000
swapoff      1  2500.000  2500.000  2500.000  2500.000  2500.000
";
        assert_eq!(render_latencies(&latencies(&hand_built())), expected);
    }
}
