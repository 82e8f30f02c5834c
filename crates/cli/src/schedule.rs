//! Schedule files: a found interleaving as a small text file that
//! `swapsim replay` reproduces exactly, and (format 2) by its semantic
//! events when the scenario or the tool changed.
//!
//! ```text
//! swapsim-schedule 2
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
//! tasks 3                         (the tasks the events name: KEY NAME)
//! parent parent
//! swapoff swapoff
//! parent/1 parent.3
//! events 60                       (one per decision of the run: KIND TASK OCCURRENCE POINT)
//! run 0 1 start
//! sleep 0 1 do_fork:copy_files
//! timer 0 1 do_fork:copy_files
//! ...
//! ```
//!
//! The choices are the option index taken at each decision (trailing
//! defaults, 0, left out); they replay the run exactly in the same
//! scenario and tool. The events say what each decision was: `run` (a task
//! takes a step from a named point), `timer` (a timer fires: it wakes the
//! task asleep at the point, or completes an I/O the task started there),
//! `sleep` (an allocation of the task at the point decides whether it
//! sleeps) or `fault` (an injected fault), with the task as an index into
//! the task list and the occurrence of that (kind, task, point) in the
//! run, counting from 1. The point is the rest of the line. A task's key
//! is one word (`engine::TaskTag::key`: a process's name, `/N` for its
//! N-th child); its name (the rest of the line) is for reports. Event `i`'s
//! recorded value is choice `i` (0 past the end of the choices), so there
//! are at least as many events as choices.
//!
//! Format 1 files (the same without `tasks` and `events`; the choices run
//! to the end of the file) are still read: they replay by index only.

use engine::{EventClass, SemanticEvent};
use kernel::{Fixes, Variant};

pub const FORMAT: &str = "swapsim-schedule 2";
/// The first format: choices only.
pub const FORMAT_1: &str = "swapsim-schedule 1";

/// The semantic events of a format-2 schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Semantic {
    /// (key, name) of every task the events name, in order of first event.
    pub tasks: Vec<(String, String)>,
    /// One per decision of the recorded run.
    pub events: Vec<SemanticEvent>,
}

impl Semantic {
    /// The events of a run, with the names of the tasks they name.
    pub fn new(events: Vec<SemanticEvent>, task_keys: &[(String, String)]) -> Semantic {
        let mut tasks: Vec<(String, String)> = Vec::new();
        for event in &events {
            if !tasks.iter().any(|(key, _)| *key == event.task) {
                let name = task_keys.iter().find(|(key, _)| *key == event.task).map(|(_, n)| n.clone());
                tasks.push((event.task.clone(), name.unwrap_or_else(|| event.task.clone())));
            }
        }
        Semantic { tasks, events }
    }

    /// A task's name in the recording ("parent.3"), or its key.
    pub fn name<'a>(&'a self, key: &'a str) -> &'a str {
        self.tasks.iter().find(|(k, _)| k == key).map(|(_, n)| n.as_str()).unwrap_or(key)
    }
}

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
    /// The semantic events (format 2); `None` for a format-1 file.
    pub semantic: Option<Semantic>,
}

impl ScheduleFile {
    pub fn render(&self) -> String {
        let format = if self.semantic.is_some() { FORMAT } else { FORMAT_1 };
        let mut out = format!("{format}\n");
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
        if let Some(semantic) = &self.semantic {
            out += &format!("tasks {}\n", semantic.tasks.len());
            for (key, name) in &semantic.tasks {
                out += &format!("{key} {name}\n");
            }
            out += &format!("events {}\n", semantic.events.len());
            for e in &semantic.events {
                let task = semantic.tasks.iter().position(|(key, _)| *key == e.task).unwrap_or(0);
                out += &format!("{} {task} {} {}\n", e.class.name(), e.occurrence, e.point);
            }
        }
        out
    }

    /// Parse a schedule file; errors say `file:line: what is wrong`.
    pub fn parse(text: &str, file: &str) -> Result<ScheduleFile, String> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
        let bad = |line: usize, what: String| format!("{file}:{line}: {what}");
        let version = match lines.next() {
            Some((_, FORMAT)) => 2,
            Some((_, FORMAT_1)) => 1,
            Some((n, other)) => {
                return Err(bad(
                    n,
                    format!("not a swapsim schedule file (expected \"{FORMAT}\" or \"{FORMAT_1}\", got {other:?})"),
                ))
            }
            None => return Err(bad(1, "the file is empty".into())),
        };
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
        // Not allocated from the count: the file may announce any number.
        let mut choices = Vec::new();
        let semantic = if version == 2 {
            let choices_line = n;
            let mut last = n;
            while choices.len() < count {
                let Some((n, line)) = lines.next() else {
                    return Err(bad(
                        choices_line,
                        format!("{count} choices announced but the file ends after {} (truncated?)", choices.len()),
                    ));
                };
                last = n;
                if line.starts_with("tasks") {
                    return Err(bad(
                        n,
                        format!("{count} choices announced but {} found before \"tasks\"", choices.len()),
                    ));
                }
                for word in line.split_whitespace() {
                    if choices.len() == count {
                        return Err(bad(n, format!("more choices than the {count} announced")));
                    }
                    choices.push(parse_choice(word).map_err(|e| bad(n, e))?);
                }
            }
            Some(parse_semantic(&mut lines, last, count, file)?)
        } else {
            for (n, line) in lines {
                for word in line.split_whitespace() {
                    choices.push(parse_choice(word).map_err(|e| bad(n, e))?);
                }
            }
            if choices.len() != count {
                return Err(format!(
                    "{file}: {count} choices announced but {} found (truncated or edited?)",
                    choices.len()
                ));
            }
            None
        };
        Ok(ScheduleFile {
            tool,
            scenario,
            content_hash,
            variant,
            fixes,
            seed,
            strategy,
            violation,
            step,
            choices,
            semantic,
        })
    }

    /// The schedule's size: choices up to the last one that is not the
    /// default (0), and how many are not the default.
    pub fn size(choices: &[u32]) -> (usize, usize) {
        let len = choices.iter().rposition(|&c| c != 0).map(|p| p + 1).unwrap_or(0);
        (len, choices.iter().filter(|&&c| c != 0).count())
    }
}

/// The largest choice (an option index) a schedule may hold: a decision
/// never offers a million options.
pub const MAX_CHOICE: u32 = 999_999;

fn parse_choice(word: &str) -> Result<u32, String> {
    match word.parse::<u64>() {
        Ok(c) if c <= u64::from(MAX_CHOICE) => Ok(c as u32),
        Ok(c) => Err(format!("a choice is an option index from 0 to {MAX_CHOICE}, got {c}")),
        Err(_) => Err(format!("a choice is a non-negative integer, got {word:?}")),
    }
}

/// The `tasks` and `events` sections of a format-2 file, after `choices`
/// (`count` of them) and its numbers, which end on line `last`.
fn parse_semantic<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    last: usize,
    choices: usize,
    file: &str,
) -> Result<Semantic, String> {
    let bad = |line: usize, what: String| format!("{file}:{line}: {what}");
    let header = |name: &str,
                  last: usize,
                  lines: &mut dyn Iterator<Item = (usize, &'a str)>|
     -> Result<(usize, usize), String> {
        match lines.next() {
            Some((n, l)) => {
                match l.split_once(' ') {
                    Some((key, value)) if key == name => value.trim().parse().map(|count| (n, count)).map_err(|_| {
                        bad(n, format!("the {name} count is a non-negative integer, got {:?}", value.trim()))
                    }),
                    _ => Err(bad(n, format!("expected the field \"{name}\", got {l:?}"))),
                }
            }
            None => Err(bad(last, format!("the file ends after this line, before the field \"{name}\" (truncated?)"))),
        }
    };
    let (tasks_line, task_count) = header("tasks", last, lines)?;
    let mut tasks: Vec<(String, String)> = Vec::with_capacity(task_count.min(4096));
    for i in 0..task_count {
        let Some((n, line)) = lines.next() else {
            return Err(bad(
                tasks_line,
                format!("{task_count} tasks announced but the file ends after {i} (truncated?)"),
            ));
        };
        let Some((key, name)) = line.split_once(' ').filter(|(k, n)| !k.is_empty() && !n.trim().is_empty()) else {
            return Err(bad(n, format!("a task is \"KEY NAME\" (e.g. \"parent/1 parent.3\"), got {line:?}")));
        };
        // A task's name is never a number (a root task's name is its key).
        if key == "events" && name.trim().parse::<u64>().is_ok() {
            return Err(bad(n, format!("{task_count} tasks announced but {i} found before \"events\"")));
        }
        if tasks.iter().any(|(k, _)| k == key) {
            return Err(bad(n, format!("the task {key:?} is listed twice")));
        }
        tasks.push((key.to_string(), name.trim().to_string()));
    }
    let (events_line, event_count) = header("events", tasks_line + tasks.len(), lines)?;
    if event_count < choices {
        return Err(bad(
            events_line,
            format!("{event_count} events but {choices} choices: every choice is the value of one event (edited?)"),
        ));
    }
    let mut events = Vec::with_capacity(event_count.min(1 << 20));
    for i in 0..event_count {
        let Some((n, line)) = lines.next() else {
            return Err(bad(
                events_line,
                format!("{event_count} events announced but the file ends after {i} (truncated?)"),
            ));
        };
        let mut words = line.splitn(4, ' ');
        let (Some(kind), Some(task), Some(occurrence), Some(point)) =
            (words.next(), words.next(), words.next(), words.next().filter(|p| !p.trim().is_empty()))
        else {
            return Err(bad(
                n,
                format!(
                    "an event is \"KIND TASK OCCURRENCE POINT\" (e.g. \"run 0 1 do_fork:copy_files\"), got {line:?}"
                ),
            ));
        };
        let class = EventClass::from_name(kind)
            .ok_or_else(|| bad(n, format!("an event's kind is run, timer, sleep or fault, got {kind:?}")))?;
        let task = task.parse::<usize>().ok().filter(|&t| t < tasks.len()).ok_or_else(|| {
            let range = match tasks.len() {
                0 => "there are none".to_string(),
                k => format!("0 to {}", k - 1),
            };
            bad(n, format!("an event's task is an index into the {} tasks listed ({range}), got {task:?}", tasks.len()))
        })?;
        let occurrence = occurrence
            .parse::<u32>()
            .ok()
            .filter(|&o| o >= 1)
            .ok_or_else(|| bad(n, format!("an event's occurrence is a whole number from 1, got {occurrence:?}")))?;
        events.push(SemanticEvent { class, task: tasks[task].0.clone(), point: point.trim().to_string(), occurrence });
    }
    if let Some((n, line)) = lines.find(|(_, l)| !l.trim().is_empty()) {
        return Err(bad(n, format!("more lines than the {event_count} events announced: {line:?}")));
    }
    Ok(Semantic { tasks, events })
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
            semantic: None,
        }
    }

    fn sample_v2() -> ScheduleFile {
        let event = |class, task: &str, point: &str, occurrence| SemanticEvent {
            class,
            task: task.to_string(),
            point: point.to_string(),
            occurrence,
        };
        let events: Vec<SemanticEvent> = (0..80)
            .map(|i| match i % 4 {
                0 => event(EventClass::Run, "shmuser", "do_shmdt:down", i / 4 + 1),
                1 => event(EventClass::Sleep, "shmuser/1", "shm_nopage:alloc", i / 4 + 1),
                2 => event(EventClass::Timer, "swapoff", "rw_swap_page:read", i / 4 + 1),
                _ => event(EventClass::Fault, "swapoff", "read_swap_cache:read error", i / 4 + 1),
            })
            .collect();
        let names = [("shmuser/1".to_string(), "shmuser.3".to_string())];
        ScheduleFile { semantic: Some(Semantic::new(events, &names)), ..sample() }
    }

    #[test]
    fn a_schedule_round_trips() {
        let s = sample();
        assert_eq!(ScheduleFile::parse(&s.render(), "x").unwrap(), s);
        assert!(s.render().contains("fixes -page-lock\n"));
    }

    #[test]
    fn a_format_2_schedule_round_trips_with_its_events() {
        let s = sample_v2();
        let text = s.render();
        assert!(text.starts_with("swapsim-schedule 2\n"));
        assert!(
            text.contains("\ntasks 3\nshmuser shmuser\nshmuser/1 shmuser.3\nswapoff swapoff\nevents 80\n"),
            "{text}"
        );
        assert!(text.contains("\nfault 2 1 read_swap_cache:read error\n"), "points may hold spaces: {text}");
        assert_eq!(ScheduleFile::parse(&text, "x").unwrap(), s);
        assert_eq!(s.semantic.as_ref().unwrap().name("shmuser/1"), "shmuser.3");
    }

    #[test]
    fn malformed_format_2_sections_are_refused_with_a_line() {
        let text = sample_v2().render();
        let err = |edited: &str| ScheduleFile::parse(edited, "s").unwrap_err();
        // Line 12 starts the choices (75: 3 lines), 15 is "tasks 3", 19 "events 80".
        assert_eq!(
            err(&text.replace("events 80", "events 81")),
            "s:19: 81 events announced but the file ends after 80 (truncated?)"
        );
        assert_eq!(
            err(&text.replace("events 80", "events 70")),
            "s:19: 70 events but 75 choices: every choice is the value of one event (edited?)"
        );
        assert_eq!(err(&text.replace("tasks 3", "tasks 4")), "s:19: 4 tasks announced but 3 found before \"events\"");
        assert_eq!(
            err(&text.replace("\nswapoff swapoff\n", "\nshmuser again\n")),
            "s:18: the task \"shmuser\" is listed twice"
        );
        assert_eq!(
            err(&text.replace("\nrun 0 1 do_shmdt:down\n", "\nwalk 0 1 do_shmdt:down\n")),
            "s:20: an event's kind is run, timer, sleep or fault, got \"walk\""
        );
        assert_eq!(
            err(&text.replace("\nrun 0 1 do_shmdt:down\n", "\nrun 3 1 do_shmdt:down\n")),
            "s:20: an event's task is an index into the 3 tasks listed (0 to 2), got \"3\""
        );
        assert_eq!(
            err(&text.replace("\nrun 0 1 do_shmdt:down\n", "\nrun 0 0 do_shmdt:down\n")),
            "s:20: an event's occurrence is a whole number from 1, got \"0\""
        );
        assert!(err(&text.replace("\nrun 0 1 do_shmdt:down\n", "\nrun 0 1\n"))
            .starts_with("s:20: an event is \"KIND TASK OCCURRENCE POINT\""));
        assert_eq!(
            err(&format!("{text}run 0 21 do_shmdt:down\n")),
            "s:100: more lines than the 80 events announced: \"run 0 21 do_shmdt:down\""
        );
        assert_eq!(
            err(&text.replace("choices 75", "choices 76")),
            "s:15: 76 choices announced but 75 found before \"tasks\""
        );
        assert_eq!(err(&text.replace("choices 75", "choices 74")), "s:14: more choices than the 74 announced");
        assert_eq!(
            err(&text.replace("\nswapoff swapoff\n", "\nswapoff\n")),
            "s:18: a task is \"KEY NAME\" (e.g. \"parent/1 parent.3\"), got \"swapoff\""
        );
        let cut: String = text.lines().take(16).map(|l| format!("{l}\n")).collect();
        assert_eq!(err(&cut), "s:15: 3 tasks announced but the file ends after 1 (truncated?)");
        let cut: String = text.lines().take(13).map(|l| format!("{l}\n")).collect();
        assert_eq!(err(&cut), "s:11: 75 choices announced but the file ends after 60 (truncated?)");
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
        let wrong = text.replace(FORMAT_1, "swapsim-schedule 9");
        assert!(ScheduleFile::parse(&wrong, "s").unwrap_err().starts_with("s:1: not a swapsim schedule file"));
        assert!(ScheduleFile::parse("", "s").is_err());
    }

    #[test]
    fn size_counts_up_to_the_last_non_default_choice() {
        assert_eq!(ScheduleFile::size(&[0, 2, 0, 1, 0, 0]), (4, 2));
        assert_eq!(ScheduleFile::size(&[0, 0]), (0, 0));
    }
}
