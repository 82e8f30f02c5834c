// The named points of the model's source text: every string literal of the
// shape `"function:where"`, comments skipped. Shared, by `include!`, by the
// fidelity drift test (crates/kernel/tests/fidelity.rs) and by the script
// crate's build.rs (the point list `point(name)` checks against).

/// Whether `s` has the shape of a named point: `function:where`, an
/// identifier on both sides (`do_swap_page:UnlockPage` keeps the C's name).
fn is_point(s: &str) -> bool {
    let ident = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match s.split_once(':') {
        Some((function, place)) => ident(function) && ident(place),
        None => false,
    }
}

/// Every string literal of the source text that is a named point. Comments
/// are skipped: they may quote points of the C or of other routines.
fn points_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut literal: Option<String> = None;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (&mut literal, c) {
                (None, '/') if chars.peek() == Some(&'/') => break,
                (None, '"') => literal = Some(String::new()),
                (None, _) => {}
                (Some(_), '\\') => {
                    chars.next();
                }
                (Some(s), '"') => {
                    if is_point(s) {
                        found.push(std::mem::take(s));
                    }
                    literal = None;
                }
                (Some(s), c) => s.push(c),
            }
        }
    }
    found
}
