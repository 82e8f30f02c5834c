//! `swapsim kernels`: the kernel variants and the fixes that can be
//! switched alone.

use std::process::ExitCode;

pub fn kernels() -> ExitCode {
    print!("{}", kernels_text());
    ExitCode::SUCCESS
}

/// `swapsim kernels`: the variants, then each fix with what it changes and
/// which races it closes.
fn kernels_text() -> String {
    use kernel::{Variant, FIXES};
    let mut out = String::from("Kernel variants (--kernel NAME):\n");
    for variant in Variant::ALL {
        out += &format!("  {:<13} {}\n", variant.name(), variant.description());
    }
    out += "\nFixes (--fix NAME / --no-fix NAME, on top of pre4 or patched; the later designs take none):\n";
    for fix in &FIXES {
        out += &format!("  {:<13} {}\n  {:<13} closes race {}\n", fix.name, fix.change, "", fix.closes);
    }
    out
}
