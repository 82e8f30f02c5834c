//! Schedule files: a found interleaving as a small text file that
//! `swapsim replay` reproduces exactly.
//!
//! ```text
//! swapsim-schedule 1
//! tool 0.1.0
//! scenario scenarios/race1_fork.lua
//! content-fnv1a f771b534cea98569
//! kernel pre4
//! fixes +mmlist -page-lock        (only switches that differ from the variant)
//! seed 3
//! strategy random
//! violation swapoff-completeness
//! step 44
//! choices 57
//! 0 1 0 0 2 ...                   (the choices, 30 to a line)
//! ```

use kernel::{Fixes, Variant};

pub const FORMAT: &str = "swapsim-schedule 1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleFile {
    pub tool: String,
    pub scenario: String,
    pub content_hash: u64,
    pub variant: Variant,
    pub fixes: Fixes,
    pub seed: u64,
    pub strategy: String,
    pub violation: String,
    pub step: u64,
    pub choices: Vec<u32>,
}

impl ScheduleFile {
    pub fn render(&self) -> String {
        let mut out = format!("{FORMAT}\n");
        out += &format!("tool {}\n", self.tool);
        out += &format!("scenario {}\n", self.scenario);
        out += &format!("content-fnv1a {:016x}\n", self.content_hash);
        out += &format!("kernel {}\n", self.variant);
        out += &format!("fixes {}\n", self.fixes.diff(&self.variant.fixes()).join(" "));
        out += &format!("seed {}\n", self.seed);
        out += &format!("strategy {}\n", self.strategy);
        out += &format!("violation {}\n", self.violation);
        out += &format!("step {}\n", self.step);
        out += &format!("choices {}\n", self.choices.len());
        for line in self.choices.chunks(30) {
            let numbers: Vec<String> = line.iter().map(|c| c.to_string()).collect();
            out += &numbers.join(" ");
            out.push('\n');
        }
        out
    }

    /// Parse a schedule file; errors say `file:line: what is wrong`.
    pub fn parse(text: &str, file: &str) -> Result<ScheduleFile, String> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
        let bad = |line: usize, what: String| format!("{file}:{line}: {what}");
        match lines.next() {
            Some((_, FORMAT)) => {}
            Some((n, other)) => {
                return Err(bad(n, format!("not a swapsim schedule file (expected \"{FORMAT}\", got {other:?})")))
            }
            None => return Err(bad(1, "the file is empty".into())),
        }
        let mut field = |name: &str| -> Result<(usize, String), String> {
            match lines.next() {
                Some((n, l)) => match l.split_once(' ') {
                    Some((key, value)) if key == name => Ok((n, value.trim().to_string())),
                    _ if l == name => Ok((n, String::new())),
                    _ => Err(bad(n, format!("expected the field \"{name}\", got {l:?}"))),
                },
                None => Err(format!("{file}: the file ends before the field \"{name}\" (truncated?)")),
            }
        };
        let (_, tool) = field("tool")?;
        let (_, scenario) = field("scenario")?;
        let (n, hash) = field("content-fnv1a")?;
        let content_hash = u64::from_str_radix(&hash, 16)
            .map_err(|_| bad(n, format!("the content hash is 16 hexadecimal digits, got {hash:?}")))?;
        let (n, kernel) = field("kernel")?;
        let variant = Variant::from_name(&kernel).ok_or_else(|| bad(n, format!("unknown kernel {kernel:?}")))?;
        let (n, switches) = field("fixes")?;
        let mut fixes = variant.fixes();
        for switch in switches.split_whitespace() {
            let (on, name) = match switch.split_at(1) {
                ("+", name) => (true, name),
                ("-", name) => (false, name),
                _ => return Err(bad(n, format!("a fix switch is +NAME or -NAME, got {switch:?}"))),
            };
            fixes.set(name, on).map_err(|e| bad(n, e))?;
        }
        let (n, seed) = field("seed")?;
        let seed =
            seed.parse().map_err(|_| bad(n, format!("the seed is an integer from 0 to 2^64-1, got {seed:?}")))?;
        let (_, strategy) = field("strategy")?;
        let (_, violation) = field("violation")?;
        let (n, step) = field("step")?;
        let step = step.parse().map_err(|_| bad(n, format!("the step is a non-negative integer, got {step:?}")))?;
        let (n, count) = field("choices")?;
        let count: usize =
            count.parse().map_err(|_| bad(n, format!("the choice count is a non-negative integer, got {count:?}")))?;
        let mut choices = Vec::with_capacity(count);
        for (n, line) in lines {
            for word in line.split_whitespace() {
                choices.push(
                    word.parse().map_err(|_| bad(n, format!("a choice is a non-negative integer, got {word:?}")))?,
                );
            }
        }
        if choices.len() != count {
            return Err(format!(
                "{file}: {count} choices announced but {} found (truncated or edited?)",
                choices.len()
            ));
        }
        Ok(ScheduleFile { tool, scenario, content_hash, variant, fixes, seed, strategy, violation, step, choices })
    }

    /// The schedule's size: choices up to the last one that is not the
    /// default (0), and how many are not the default.
    pub fn size(choices: &[u32]) -> (usize, usize) {
        let len = choices.iter().rposition(|&c| c != 0).map(|p| p + 1).unwrap_or(0);
        (len, choices.iter().filter(|&&c| c != 0).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScheduleFile {
        let mut fixes = Variant::Patched.fixes();
        fixes.set("page-lock", false).unwrap();
        ScheduleFile {
            tool: "0.1.0".into(),
            scenario: "scenarios/race4_shm.lua".into(),
            content_hash: 0xf771b534cea98569,
            variant: Variant::Patched,
            fixes,
            seed: 230,
            strategy: "random".into(),
            violation: "swap-cache".into(),
            step: 44,
            choices: (0..75).map(|i| i % 3).collect(),
        }
    }

    #[test]
    fn a_schedule_round_trips() {
        let s = sample();
        assert_eq!(ScheduleFile::parse(&s.render(), "x").unwrap(), s);
        assert!(s.render().contains("fixes -page-lock\n"));
    }

    #[test]
    fn truncated_and_edited_files_are_refused_with_a_line() {
        let text = sample().render();
        let cut: String = text.lines().take(8).collect::<Vec<_>>().join("\n");
        assert!(ScheduleFile::parse(&cut, "s").unwrap_err().contains("truncated"));
        let short = text.rsplit_once('\n').unwrap().0.rsplit_once('\n').unwrap().0;
        assert!(ScheduleFile::parse(short, "s").unwrap_err().contains("75 choices announced"));
        let edited = text.replace("seed 230", "seed two");
        assert_eq!(
            ScheduleFile::parse(&edited, "s").unwrap_err(),
            "s:7: the seed is an integer from 0 to 2^64-1, got \"two\""
        );
        let wrong = text.replace(FORMAT, "swapsim-schedule 9");
        assert!(ScheduleFile::parse(&wrong, "s").unwrap_err().starts_with("s:1: not a swapsim schedule file"));
        assert!(ScheduleFile::parse("", "s").is_err());
    }

    #[test]
    fn size_counts_up_to_the_last_non_default_choice() {
        assert_eq!(ScheduleFile::size(&[0, 2, 0, 1, 0, 0]), (4, 2));
        assert_eq!(ScheduleFile::size(&[0, 0]), (0, 0));
    }
}
