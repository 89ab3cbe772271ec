//! `localbuild run --output json`: the build as JSON Lines on stdout, one object per event.
//!
//! [`Line`] is the one definition of every line's shape (internally tagged by `type`,
//! camelCase); the README documents it. Times are seconds since the Unix epoch as numbers,
//! like the record's `startTime`. The last line is always `{"type":"build",...}` with the
//! final `Build` record.
//!
//! `run --batch --output json` writes every task's lines with a `task` field (its identifier),
//! [`BatchLine`]s as tasks start and end, and last `{"type":"batch",...}` with the `BuildBatch`.

use localbuild_engine::Event;
use localbuild_engine::Outcome;
use localbuild_engine::record::{Build, BuildBatch, PhaseContext, PhaseType, Status};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use time::OffsetDateTime;

/// One line of `--output json`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Line<'a> {
    /// The build was accepted (SUBMITTED).
    #[serde(rename_all = "camelCase")]
    Started {
        id: &'a str,
        arn: &'a str,
        build_number: u64,
        project_name: &'a str,
        at: f64,
    },
    /// A phase began.
    PhaseStarted { phase: PhaseType, at: f64 },
    /// A phase ended: its status and contexts (`[]` when it has none).
    PhaseEnded {
        phase: PhaseType,
        status: Status,
        contexts: &'a [PhaseContext],
        at: f64,
    },
    /// An agent line (`[Container] …` in the text log), without the prefix.
    Agent { at: f64, text: &'a str },
    /// One line of command output (stdout or stderr), without its newline.
    Output { text: &'a str },
    /// localbuild's own progress and warnings (image pulls and builds, notes).
    Progress { text: &'a str },
    /// A line of the build log this reader fell behind on (read back from the log file).
    Lagged { text: &'a str },
    /// The build waits in its container (`why`: `breakpoint` or `failure`) until
    /// `codebuild-resume` runs in `localbuild attach`'s shell; `target` is the container.
    Paused {
        at: f64,
        why: &'a str,
        target: &'a str,
        command: &'a str,
    },
    /// The build goes on after a pause (`retry`: the failed command runs again).
    Resumed { at: f64, retry: bool },
    /// The last line: the final `Build` record, the build's folder and its artifacts.
    #[serde(rename_all = "camelCase")]
    Build {
        build: &'a Build,
        dir: &'a PathBuf,
        artifacts: &'a [PathBuf],
    },
}

/// The lines of `run --batch --output json` about the batch itself.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum BatchLine<'a> {
    /// A task's build was submitted; its own lines follow with `task` set.
    #[serde(rename_all = "camelCase")]
    TaskStarted { task: &'a str, build_id: &'a str },
    /// A task's build ended.
    TaskFinished { task: &'a str, status: Status },
    /// A task never started (a dependency failed, the batch stopped).
    TaskSkipped {
        task: &'a str,
        status: Status,
        reason: &'a str,
    },
    /// The last line: the final `BuildBatch` record and the batch's folder.
    Batch {
        batch: &'a BuildBatch,
        dir: &'a PathBuf,
    },
}

/// Write one [`BatchLine`].
pub fn write_batch_line(out: &mut impl Write, line: &BatchLine<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

fn seconds(at: OffsetDateTime) -> f64 {
    // Microseconds, as the agent line shows them.
    (at.unix_timestamp_nanos() / 1_000) as f64 / 1e6
}

/// Write the lines of one event (an output chunk can hold several lines).
pub fn write_event(out: &mut impl Write, event: &Event) -> std::io::Result<()> {
    write_task_event(out, None, event)
}

/// [`write_event`] for a task of a batch: every line carries `"task": identifier`.
pub fn write_task_event(
    out: &mut impl Write,
    task: Option<&str>,
    event: &Event,
) -> std::io::Result<()> {
    let write = |out: &mut _, line: &Line<'_>| write(out, task, line);
    match event {
        Event::Started(b) => write(
            out,
            &Line::Started {
                id: &b.id,
                arn: &b.arn,
                build_number: b.build_number,
                project_name: &b.project_name,
                at: b.start_time,
            },
        ),
        Event::PhaseStarted { phase, at } => write(
            out,
            &Line::PhaseStarted {
                phase: *phase,
                at: *at,
            },
        ),
        Event::PhaseEnded {
            phase,
            status,
            contexts,
            at,
        } => write(
            out,
            &Line::PhaseEnded {
                phase: *phase,
                status: *status,
                contexts: contexts.as_deref().unwrap_or_default(),
                at: *at,
            },
        ),
        Event::Agent { at, text } => write(
            out,
            &Line::Agent {
                at: seconds(*at),
                text,
            },
        ),
        Event::Output(bytes) => each_line(bytes, |text| write(out, &Line::Output { text })),
        Event::Lagged { log } => each_line(log, |text| write(out, &Line::Lagged { text })),
        Event::Progress(text) => write(out, &Line::Progress { text }),
        Event::Paused {
            at,
            why,
            target,
            command,
        } => write(
            out,
            &Line::Paused {
                at: seconds(*at),
                why: why.as_str(),
                target,
                command,
            },
        ),
        Event::Resumed { at, retry } => write(
            out,
            &Line::Resumed {
                at: seconds(*at),
                retry: *retry,
            },
        ),
        // The final record comes from the outcome, after every event: see `write_outcome`.
        Event::Finished(_) => Ok(()),
    }
}

/// The last line.
pub fn write_outcome(out: &mut impl Write, outcome: &Outcome) -> std::io::Result<()> {
    write_task_outcome(out, None, outcome)
}

/// [`write_outcome`] for a task of a batch.
pub fn write_task_outcome(
    out: &mut impl Write,
    task: Option<&str>,
    outcome: &Outcome,
) -> std::io::Result<()> {
    write(
        out,
        task,
        &Line::Build {
            build: &outcome.build,
            dir: &outcome.dir,
            artifacts: &outcome.artifacts,
        },
    )
}

fn each_line(bytes: &[u8], mut f: impl FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
    let text = String::from_utf8_lossy(bytes);
    for line in text.split_terminator('\n') {
        f(line.strip_suffix('\r').unwrap_or(line))?;
    }
    Ok(())
}

fn write(out: &mut impl Write, task: Option<&str>, line: &Line<'_>) -> std::io::Result<()> {
    match task {
        None => serde_json::to_writer(&mut *out, line),
        Some(task) => {
            let mut value = serde_json::to_value(line).map_err(std::io::Error::other)?;
            if let serde_json::Value::Object(fields) = &mut value {
                fields.insert("task".to_owned(), task.into());
            }
            serde_json::to_writer(&mut *out, &value)
        }
    }
    .map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(event: &Event) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        write_event(&mut out, event).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn phase_ended_shape() {
        let v = lines(&Event::PhaseEnded {
            phase: PhaseType::Build,
            status: Status::Failed,
            contexts: Some(vec![PhaseContext::new("COMMAND_EXECUTION_ERROR", "exit 1")]),
            at: 1.5,
        });
        assert_eq!(
            v[0],
            serde_json::json!({"type":"phaseEnded","phase":"BUILD","status":"FAILED",
                "contexts":[{"statusCode":"COMMAND_EXECUTION_ERROR","message":"exit 1"}],"at":1.5})
        );
    }

    #[test]
    fn output_is_one_line_per_line() {
        let v = lines(&Event::Output(bytes::Bytes::from_static(b"a\nb\r\n\n")));
        let texts: Vec<&str> = v.iter().map(|l| l["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["a", "b", ""]);
        assert!(v.iter().all(|l| l["type"] == "output"));
    }

    #[test]
    fn agent_time_in_seconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_832_568_123_456_789).unwrap();
        let v = lines(&Event::Agent {
            at,
            text: "Entering phase BUILD".into(),
        });
        assert_eq!(v[0]["type"], "agent");
        assert_eq!(v[0]["at"].as_f64().unwrap(), 1_795_832_568.123456);
        assert_eq!(v[0]["text"], "Entering phase BUILD");
    }
}
