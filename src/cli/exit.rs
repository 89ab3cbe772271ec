//! The one place that maps outcomes to exit codes (decision U16), and the one place that
//! prints a command's error ([`finish`]).

use super::error::CliError;
use localbuild_engine::record::Status;
use std::io::Write;

pub const SUCCESS: u8 = 0;
/// An invalid buildspec, a FAILED build, a failed operation.
pub const FAILURE: u8 = 1;
/// A bad flag or argument (clap uses 2 as well).
pub const USAGE: u8 = 2;
/// A FAULT: Docker unreachable, image unavailable, the build container died.
pub const FAULT: u8 = 3;
/// TIMED_OUT, as `timeout(1)`.
pub const TIMED_OUT: u8 = 124;
/// STOPPED, as a shell reports SIGINT.
pub const STOPPED: u8 = 130;
/// stdout's reader went away (`| head`): the reader chose to stop, nothing failed; exit 0
/// quietly, as ripgrep does (a `set -o pipefail` pipeline stays green).
pub const CLOSED: u8 = SUCCESS;

/// A command's result as the process's exit code: an outcome's own code, or the error's,
/// after printing the error on stderr (nothing for a closed stdout).
pub fn finish(result: Result<u8, CliError>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            // A closed stderr is no reason to panic either.
            let _ = std::io::stderr().lock().write_all(e.render().as_bytes());
            e.code()
        }
    }
}

/// The exit status of a finished build.
pub fn for_status(status: Status) -> u8 {
    match status {
        Status::Succeeded => SUCCESS,
        Status::Failed | Status::InProgress => FAILURE,
        Status::Fault => FAULT,
        Status::TimedOut => TIMED_OUT,
        Status::Stopped => STOPPED,
    }
}
