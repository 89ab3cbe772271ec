//! The `localbuild` command line: parses flags, calls the library, renders, picks exit codes.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(&args.command);
    std::process::ExitCode::from(cli::dispatch(args))
}
