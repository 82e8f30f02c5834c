//! The names the command line takes — kernels, fixes, invariants — as
//! clap possible values, so that `--help` lists them, a wrong one is a
//! usage error (exit 2) and shell completions offer them.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use kernel::{Variant, FIXES};

/// Every invariant a run can break (docs/invariants.md describes each).
pub const INVARIANTS: [&str; 13] = [
    "swapoff-completeness",
    "swap-count",
    "page-count",
    "swap-cache",
    "fault-result",
    "mm-existence",
    "accounting",
    "data-integrity",
    "use-after-free",
    "lock-discipline",
    "lock-held",
    "sleep-in-atomic",
    "scenario-expectation",
];

/// `--kernel`: pre4, patched, 2.4.10, 5.1.
pub fn kernel() -> impl TypedValueParser<Value = Variant> {
    let values = Variant::ALL.map(|v| PossibleValue::new(v.name()).help(v.description()));
    PossibleValuesParser::new(values).map(|name| Variant::from_name(&name).expect("a possible value"))
}

/// `--fix` and `--no-fix`: the fixes of the seed's patch.
pub fn fix() -> PossibleValuesParser {
    PossibleValuesParser::new(FIXES.map(|f| PossibleValue::new(f.name).help(f.change)))
}

/// `--invariant`.
pub fn invariant() -> PossibleValuesParser {
    PossibleValuesParser::new(INVARIANTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invariants_are_those_docs_invariants_md_describes() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/invariants.md")).unwrap();
        let documented: Vec<&str> =
            doc.lines().filter_map(|l| l.strip_prefix("## `").and_then(|rest| rest.strip_suffix('`'))).collect();
        assert_eq!(documented, INVARIANTS);
    }

    #[test]
    fn every_invariant_is_reported_somewhere_in_the_code() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut sources = String::new();
        for krate in ["engine", "kernel", "script"] {
            for entry in std::fs::read_dir(format!("{root}/crates/{krate}/src")).unwrap() {
                sources += &std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            }
        }
        for name in INVARIANTS {
            assert!(sources.contains(&format!("\"{name}\"")), "{name} is reported nowhere");
        }
    }
}
