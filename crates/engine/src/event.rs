//! What a build reports while it runs: typed values, rendered by whoever consumes them.
//!
//! The `[Container] …` text of an agent line is made by [`crate::log::agent_line`] in the
//! consumers that print it (the log writer, the CLI, an API), never here.

use crate::record::{Build, PhaseContext, PhaseType, Status};
use bytes::Bytes;
use time::OffsetDateTime;

/// One thing that happened in a build. Secret values are already masked.
#[derive(Debug, Clone)]
pub enum Event {
    /// The build was accepted: its record as SUBMITTED.
    Started(Box<Build>),
    /// A phase began (phases are contiguous: it began when the previous one ended).
    PhaseStarted { phase: PhaseType, at: f64 },
    /// A phase ended with its status and contexts (none for SUBMITTED and QUEUED).
    PhaseEnded {
        phase: PhaseType,
        status: Status,
        contexts: Option<Vec<PhaseContext>>,
        at: f64,
    },
    /// A line of the agent's log (without the `[Container] <time>` prefix).
    Agent { at: OffsetDateTime, text: String },
    /// One or more complete lines of command output (stdout and stderr), each ending in `\n`.
    Output(Bytes),
    /// localbuild's own progress and warnings (image pulls, buildspec warnings); not part of
    /// the build log.
    Progress(String),
    /// This subscriber fell behind and the events it missed are gone from memory: `log` is the
    /// build log text they wrote (agent lines and output), read back from the log file.
    Lagged { log: Bytes },
    /// The build waits in its container until `codebuild-resume` runs there (or a stop or
    /// its timeout): `localbuild attach <build id>` opens a shell in `target`.
    Paused {
        at: OffsetDateTime,
        why: Pause,
        /// The container (its name) the shell opens in.
        target: String,
        /// The command at which the build waits (the breakpoint, or the command that failed).
        command: String,
    },
    /// The build goes on after a pause; `retry`: the failed command runs again.
    Resumed { at: OffsetDateTime, retry: bool },
    /// The build is over: its final record.
    Finished(Box<Build>),
}

/// Why a build paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// A `codebuild-breakpoint` command, with session debugging on.
    Breakpoint,
    /// A command failed, with `--shell-on-failure`.
    Failure,
}

impl Pause {
    pub fn as_str(self) -> &'static str {
        match self {
            Pause::Breakpoint => "breakpoint",
            Pause::Failure => "failure",
        }
    }
}

impl Event {
    /// What this event adds to the build log, if anything.
    pub fn log_text(&self) -> Option<Bytes> {
        match self {
            Event::Agent { at, text } => {
                let mut line = crate::log::agent_line(*at, text);
                line.push('\n');
                Some(Bytes::from(line))
            }
            Event::Output(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }

    /// Roughly how much memory the event holds (for the replay buffer's budget).
    pub(crate) fn weight(&self) -> usize {
        match self {
            Event::Output(b) | Event::Lagged { log: b } => b.len() + 32,
            Event::Agent { text, .. } | Event::Progress(text) => text.len() + 48,
            Event::Started(_) | Event::Finished(_) => 2048,
            Event::PhaseStarted { .. } | Event::PhaseEnded { .. } => 128,
            Event::Paused { command, .. } => command.len() + 128,
            Event::Resumed { .. } => 64,
        }
    }
}
