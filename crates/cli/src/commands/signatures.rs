//! `swapsim signatures`: the race signatures a violation is classified by,
//! in the order they are tried (docs/races.md § Signatures).

use std::process::ExitCode;

pub fn signatures() -> ExitCode {
    print!("{}", signatures_text());
    ExitCode::SUCCESS
}

/// One entry per signature: its bucket name, the race, the predicate.
fn signatures_text() -> String {
    let mut out = String::new();
    for sig in kernel::signatures::SIGNATURES {
        out += &format!("- `{}`: {}.\n  {}.\n", sig.name, sig.title, sig.predicate);
    }
    out += "- `unclassified: KEY`: none of the above; KEY is the invariant, the message's shape and the key \
            event of another task it followed.\n";
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_signature_is_listed_once_with_its_predicate() {
        let text = super::signatures_text();
        for sig in kernel::signatures::SIGNATURES {
            assert_eq!(text.matches(&format!("`{}`", sig.name)).count(), 1, "{}", sig.name);
            assert!(text.contains(sig.predicate), "{}", sig.name);
        }
    }
}
