//! `localbuild completions SHELL` and `localbuild man [SUBCOMMAND]`: generated from the clap
//! definitions in [`super::Cli`], so they never fall out of date.

use super::{Cli, exit};
use clap::CommandFactory;
use std::io::Write;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "localbuild", &mut out);
    write_out(&out)
}

/// The roff manual page of `localbuild` (or `localbuild-SUBCOMMAND`) on stdout.
pub fn man(subcommand: Option<&str>) -> u8 {
    let mut cmd = Cli::command();
    cmd.build();
    let man = match subcommand {
        None => clap_mangen::Man::new(cmd),
        Some(name) => match cmd.find_subcommand(name) {
            // The page is named like git's: localbuild-run(1).
            Some(sub) => {
                let title = format!("localbuild-{}", sub.get_name());
                clap_mangen::Man::new(sub.clone())
                    .title(title)
                    .source(format!("localbuild {}", env!("CARGO_PKG_VERSION")))
            }
            None => {
                eprintln!("error: no subcommand '{name}' (see `localbuild --help`)");
                return exit::USAGE;
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = man.render(&mut out) {
        eprintln!("error: cannot render the manual page: {e}");
        return exit::FAILURE;
    }
    write_out(&out)
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_out(bytes: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
    exit::SUCCESS
}
