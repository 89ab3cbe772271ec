//! The one place that maps outcomes to exit codes (decision U16).

use localbuild_engine::record::Status;

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
