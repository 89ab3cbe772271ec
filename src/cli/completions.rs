//! `localbuild completions SHELL` and `localbuild man [SUBCOMMAND]`: generated from the clap
//! definitions in [`super::Cli`], so they never fall out of date.

use super::error::CliError;
use super::{Cli, exit};
use clap::CommandFactory;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "localbuild", &mut out);
    super::out::print(&out)?;
    Ok(exit::SUCCESS)
}

/// The roff manual page of `localbuild` (or `localbuild-SUBCOMMAND`) on stdout.
pub fn man(subcommand: Option<&str>) -> Result<u8, CliError> {
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
                return Err(CliError::Usage(format!(
                    "no subcommand '{name}' (see `localbuild --help`)"
                )));
            }
        },
    };
    let mut out = Vec::new();
    man.render(&mut out)
        .map_err(|e| CliError::Failed(format!("cannot render the manual page: {e}")))?;
    super::out::print(&out)?;
    Ok(exit::SUCCESS)
}
