//! Command-line arguments (clap) and dispatch to one module per subcommand.
//!
//! Each subcommand module renders the library's typed results and returns the exit code.
//! Exit codes: 0 success, 1 failure (invalid buildspec, FAILED build), 2 usage error,
//! 3 FAULT (Docker unreachable, image unavailable), 124 TIMED_OUT, 130 STOPPED.

mod plan;
mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "localbuild",
    version,
    about = "Run AWS CodeBuild buildspecs locally in Docker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check buildspec files; print each problem as FILE:LINE:COLUMN: message
    Validate {
        /// Buildspec files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what a build would do, without Docker
    Plan(PlanArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Buildspec file (default: buildspec.yml in the source directory)
    #[arg(short = 'b', long = "buildspec")]
    pub buildspec: Option<PathBuf>,
    /// Primary source directory
    #[arg(short = 's', long = "source", default_value = ".")]
    pub source: PathBuf,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
}

/// Diagnostics of localbuild itself go to stderr, filtered by `LOCALBUILD_LOG` (default: warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCALBUILD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

/// Run the subcommand and return the process exit code.
pub fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Plan(args) => plan::run(&args),
    }
}
