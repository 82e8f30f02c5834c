//! `swapsim man` and `swapsim completions`: the man pages (clap_mangen)
//! and shell completion scripts (clap_complete), both made from the clap
//! definitions.

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim completions bash > ~/.local/share/bash-completion/completions/swapsim\n  swapsim completions zsh > ~/.zfunc/_swapsim\n  swapsim completions fish > ~/.config/fish/completions/swapsim.fish\n\nExit status: 0, or 2 for a shell it does not know."
)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim man > swapsim.1 && man ./swapsim.1\n  swapsim man sweep | man -l -\n\nExit status: 0, or 2 for a subcommand it does not know."
)]
pub struct ManArgs {
    /// The subcommand (default: swapsim itself).
    pub subcommand: Option<String>,
}

/// `swapsim completions SHELL`: the script on stdout.
pub fn completions(command: &mut clap::Command, args: &CompletionsArgs) -> ExitCode {
    clap_complete::generate(args.shell, command, "swapsim", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `swapsim man [SUBCOMMAND]`: the page in roff on stdout.
pub fn man(mut command: clap::Command, args: &ManArgs) -> ExitCode {
    let subcommand = args.subcommand.as_deref();
    command.build();
    let page = match subcommand {
        None => clap_mangen::Man::new(command),
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("swapsim-{name}")),
            None => {
                let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!("error: no subcommand {name:?}; the subcommands are {}", names.join(", "));
                return ExitCode::from(2);
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = page.render(&mut out) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(2);
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(&out);
    ExitCode::SUCCESS
}
