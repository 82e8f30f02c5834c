//! A sweep's plots and summary table: x is the parameter with the most
//! values, one series per kernel and value of the others; the line is the
//! median swapoff duration, or the p99 of the merged fault latencies.

use std::collections::BTreeMap;
use std::path::Path;

use super::results::{Record, Whole};

impl Whole {
    /// Draw the plots into `dir` (PNG and SVG), leaving out the `broken`
    /// runs, and say where they are.
    pub(super) fn draw_plots(&self, dir: &Path, broken: usize) -> Result<(), String> {
        for plot in self.plots(broken) {
            let file = dir.join(plot.stem);
            let chart = report::Chart {
                title: &plot.title,
                x_label: &plot.x_label,
                y_label: plot.y_label,
                series: &plot.series,
                notes: &plot.notes,
            };
            report::line_plot(&file, &chart)?;
            println!("plot:     {}.png, {}.svg", file.display(), file.display());
        }
        Ok(())
    }

    /// The plots: x is the parameter with the most values (the first of
    /// those); one series per kernel and value of the other parameters.
    fn plots(&self, broken: usize) -> Vec<PlotSpec> {
        let Some(x_index) =
            (0..self.names.len()).rev().max_by_key(|&i| distinct(self.records.iter().map(|r| r.point[i].1)))
        else {
            return Vec::new();
        };
        let x_name = &self.names[x_index];
        let mut kernels: Vec<&str> = Vec::new();
        for r in &self.records {
            if !kernels.contains(&r.kernel.as_str()) {
                kernels.push(&r.kernel);
            }
        }
        let partial = if self.partial.is_some() { " (partial)" } else { "" };
        let title =
            |what: &str| format!("{what} vs {x_name}: {} ({}){partial}", kernels.join(", "), self.identity.scenario);
        let spec = |stem, what: &str, y_label, statistic: Statistic, line: &str| {
            let mut notes = vec![line.to_string(), "bar: min–max of the seeds".into(), "hollow: each seed".into()];
            notes.extend(notes_of(broken, self.partial));
            PlotSpec {
                stem,
                title: title(what),
                x_label: x_name.clone(),
                y_label,
                series: self.series(x_index, statistic),
                notes,
            }
        };
        vec![
            spec(
                "swapoff_time",
                "swapoff duration",
                "swapoff duration (ms, simulated)",
                Statistic::MedianSwapoff,
                "line: median of the seeds",
            ),
            spec(
                "fault_latency_p99",
                "page fault latency during swapoff, p99",
                "page fault latency during swapoff, p99 (ms, simulated)",
                Statistic::MergedFaultP99,
                "line: p99 of all the point's faults",
            ),
        ]
    }

    /// The runs by series (kernel and value of the parameters other than
    /// x, in grid order), then by x.
    fn groups(&self, x_index: usize) -> Vec<(String, BTreeMap<i64, Vec<&Record>>)> {
        let mut groups: Vec<(String, BTreeMap<i64, Vec<&Record>>)> = Vec::new();
        for r in &self.records {
            let others: Vec<String> = (0..r.point.len())
                .filter(|&i| i != x_index)
                .map(|i| format!("{}={}", r.point[i].0, r.point[i].1))
                .collect();
            let label = if others.is_empty() { r.kernel.clone() } else { format!("{} {}", r.kernel, others.join(" ")) };
            let at = match groups.iter().position(|(l, _)| *l == label) {
                Some(at) => at,
                None => {
                    groups.push((label, BTreeMap::new()));
                    groups.len() - 1
                }
            };
            groups[at].1.entry(r.point[x_index].1).or_default().push(r);
        }
        groups
    }

    /// One series per group; each point from the clean runs that have a
    /// value.
    fn series(&self, x_index: usize, statistic: Statistic) -> Vec<report::Series> {
        self.groups(x_index)
            .into_iter()
            .map(|(label, by_x)| {
                let mut series = report::Series { label, ..Default::default() };
                for (x, runs) in by_x {
                    if let Some((y, spread)) = statistic.of(&runs) {
                        series.points.push((x as f64, y));
                        series.spread.push(report::Spread { x: x as f64, ..spread });
                    }
                }
                series
            })
            .collect()
    }

    /// What the plots show, as a table: per series and x, the clean runs,
    /// the median swapoff duration and its range, the p99 of the merged
    /// faults and the range of the runs' own p99s (ms; "-" for none).
    pub(super) fn summary(&self) -> Option<report::Table> {
        let x_index =
            (0..self.names.len()).rev().max_by_key(|&i| distinct(self.records.iter().map(|r| r.point[i].1)))?;
        let x_name = self.names[x_index].as_str();
        let mut table = report::Table::new(&[
            "series",
            x_name,
            "clean runs",
            "swapoff ms, median",
            "seeds' min",
            "seeds' max",
            "fault p99 ms, all faults",
            "seeds' p99 min",
            "seeds' p99 max",
        ]);
        for (label, by_x) in self.groups(x_index) {
            for (x, runs) in by_x {
                let clean = runs.iter().filter(|r| r.row.clean()).count();
                let mut row = vec![label.clone(), x.to_string(), format!("{clean} of {}", runs.len())];
                for statistic in [Statistic::MedianSwapoff, Statistic::MergedFaultP99] {
                    match statistic.of(&runs) {
                        Some((y, spread)) => row.extend([ms(y), ms(spread.low), ms(spread.high)]),
                        None => row.extend(["-".to_string(), "-".to_string(), "-".to_string()]),
                    }
                }
                table.row(row);
            }
        }
        Some(table)
    }
}

/// Milliseconds with about four significant digits.
fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn notes_of(broken: usize, partial: Option<(usize, usize)>) -> Vec<String> {
    let mut notes = Vec::new();
    if broken > 0 {
        notes.push(format!("left out: {broken} runs that broke an invariant"));
    }
    if let Some((n, of)) = partial {
        notes.push(format!("PARTIAL: {n} of {of} runs"));
    }
    notes
}

struct PlotSpec {
    stem: &'static str,
    title: String,
    x_label: String,
    y_label: &'static str,
    series: Vec<report::Series>,
    notes: Vec<String>,
}

/// What a plot's line shows at a point.
#[derive(Clone, Copy, Debug)]
enum Statistic {
    /// The median over the runs of each run's mean swapoff duration.
    MedianSwapoff,
    /// The p99 (nearest rank) of every fault during swapoff of the point's
    /// runs together.
    MergedFaultP99,
}

impl Statistic {
    /// (the line's y, the spread of the runs' own values), in ms, from the
    /// clean runs that have a value; None when none has.
    fn of(self, runs: &[&Record]) -> Option<(f64, report::Spread)> {
        let clean: Vec<&Record> = runs.iter().copied().filter(|r| r.row.clean()).collect();
        let per_run: Vec<u64> = clean
            .iter()
            .filter_map(|r| match self {
                Statistic::MedianSwapoff => r.row.swapoff_ns_mean,
                Statistic::MergedFaultP99 => r.row.fault_ns_p99,
            })
            .collect();
        if per_run.is_empty() {
            return None;
        }
        let y = match self {
            Statistic::MedianSwapoff => median(&per_run),
            Statistic::MergedFaultP99 => {
                let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
                for r in &clean {
                    for (ns, n) in &r.row.fault_samples {
                        *merged.entry(*ns).or_default() += n;
                    }
                }
                histogram_rank(&merged, 99)? as f64
            }
        };
        let ms = |ns: f64| ns / 1e6;
        let values: Vec<f64> = per_run.iter().map(|&v| ms(v as f64)).collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((ms(y), report::Spread { x: 0.0, low, high, values }))
    }
}

/// The median (the mean of the middle two of an even count).
fn median(values: &[u64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    }
}

/// The nearest-rank percentile of samples given as value → count.
fn histogram_rank(histogram: &BTreeMap<u64, u64>, percent: u64) -> Option<u64> {
    let n: u64 = histogram.values().sum();
    if n == 0 {
        return None;
    }
    let rank = (percent * n).div_ceil(100).clamp(1, n);
    let mut seen = 0;
    histogram
        .iter()
        .find(|(_, count)| {
            seen += **count;
            seen >= rank
        })
        .map(|(ns, _)| *ns)
}

fn distinct(values: impl Iterator<Item = i64>) -> usize {
    let mut v: Vec<i64> = values.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::sweep::results::Row;

    /// A clean run with this swapoff duration and these fault latencies.
    fn record(run: usize, seed: u64, swapoff_ns: u64, faults: &[(u64, u64)]) -> Record {
        let n: u64 = faults.iter().map(|(_, c)| c).sum();
        let mut sorted: Vec<u64> = faults.iter().flat_map(|&(ns, c)| std::iter::repeat_n(ns, c as usize)).collect();
        sorted.sort_unstable();
        Record {
            run,
            point: vec![("pages".into(), 1024)],
            kernel: "patched".into(),
            seed,
            shard: "1/1".into(),
            row: Row {
                outcome: "clean".into(),
                swapoffs: 1,
                swapoff_ns_mean: Some(swapoff_ns),
                swapoff_ns_max: Some(swapoff_ns),
                faults_during_swapoff: n,
                fault_ns_p99: (n > 0).then(|| report::nearest_rank(&sorted, 99)),
                fault_samples: faults.to_vec(),
                ..Row::default()
            },
        }
    }

    #[test]
    fn the_p99_is_over_the_merged_samples_not_a_mean_of_p99s() {
        // The V of docs/results at 1 024 pages: one seed's p99 0.205 ms,
        // the other's 20.005 ms. The mean of the two (10.1 ms) is no
        // latency any fault had.
        let a = record(0, 1, 0, &[(2_280, 7_900), (205_380, 100)]);
        let b = record(1, 2, 0, &[(2_280, 7_900), (20_005_380, 100)]);
        assert_eq!((a.row.fault_ns_p99, b.row.fault_ns_p99), (Some(205_380), Some(20_005_380)));
        let (y, spread) = Statistic::MergedFaultP99.of(&[&a, &b]).unwrap();
        // 16 000 faults: the 99th percentile is rank 15 840, among the
        // 205 380 ns ones (ranks 15 801 to 15 900).
        assert_eq!(y, 0.20538);
        assert_eq!((spread.low, spread.high), (0.20538, 20.00538));
        assert_eq!(spread.values, vec![0.20538, 20.00538], "each seed's own p99, as markers");
        let many = record(1, 2, 0, &[(2_280, 100), (20_005_380, 100)]);
        assert_eq!(Statistic::MergedFaultP99.of(&[&a, &many]).unwrap().0, 20.00538);
    }

    #[test]
    fn the_line_is_the_median_of_the_runs_done() {
        // Ctrl-C after one of two seeds: the point is that seed's value,
        // not half of it.
        let a = record(0, 1, 40_000_000_000, &[]);
        let (y, spread) = Statistic::MedianSwapoff.of(&[&a]).unwrap();
        assert_eq!(y, 40_000.0);
        assert_eq!((spread.low, spread.high), (40_000.0, 40_000.0));
        let b = record(1, 2, 20_000_000_000, &[]);
        let c = record(2, 3, 90_000_000_000, &[]);
        assert_eq!(Statistic::MedianSwapoff.of(&[&a, &b, &c]).unwrap().0, 40_000.0, "the median, not the mean");
        assert_eq!(Statistic::MedianSwapoff.of(&[&a, &b]).unwrap().0, 30_000.0);
    }

    #[test]
    fn broken_runs_and_missing_values_are_left_out() {
        let a = record(0, 1, 2_000_000, &[(2_280, 10)]);
        let mut broken = record(1, 2, 900_000_000_000, &[(99_000_000, 10)]);
        broken.row.outcome = "violation".into();
        broken.row.invariant = "swapoff-completeness".into();
        let (y, spread) = Statistic::MedianSwapoff.of(&[&a, &broken]).unwrap();
        assert_eq!((y, spread.values.len()), (2.0, 1));
        assert_eq!(Statistic::MergedFaultP99.of(&[&a, &broken]).unwrap().0, 0.00228);
        // No sample at all: no point (not a 0).
        let none = record(2, 3, 2_000_000, &[]);
        assert!(Statistic::MergedFaultP99.of(&[&none]).is_none());
        assert!(Statistic::MedianSwapoff.of(&[&broken]).is_none());
    }

    #[test]
    fn histogram_ranks_match_the_sorted_samples() {
        let samples = [5u64, 1, 1, 9, 3, 3, 3, 7];
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let mut histogram = BTreeMap::new();
        for s in samples {
            *histogram.entry(s).or_insert(0) += 1;
        }
        for p in [1, 25, 50, 90, 99, 100] {
            assert_eq!(histogram_rank(&histogram, p), Some(report::nearest_rank(&sorted, p as u32)), "p{p}");
        }
        assert_eq!(histogram_rank(&BTreeMap::new(), 99), None);
    }
}
