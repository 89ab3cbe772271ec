//! The build record: CodeBuild's `Build` object as `BatchGetBuilds` returns it (reference §6.3).
//!
//! One serde type, used for `--build-json`, the record kept with each build, and the API.
//! Times are epoch seconds with a millisecond fraction ([`epoch_now`], the one clock);
//! `durationInSeconds` is truncated ([`whole_seconds`]).
//!
//! **The record owns its transitions**: [`Build::begin_phase`], [`Build::close_phase`],
//! [`Build::end`] and [`Build::complete`] (and [`BuildPhase::open`] / [`BuildPhase::closed`]) are
//! how every writer (the engine, the build service's queue, the store's finaliser) opens and
//! closes phases, so phases stay contiguous and durations are computed one way;
//! [`Build::accepted_at`] moves SUBMITTED and QUEUED back to the time the build service
//! accepted the build.

use serde::{Deserialize, Serialize};

/// `BuildPhaseType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhaseType {
    Submitted,
    Queued,
    Provisioning,
    DownloadSource,
    Install,
    PreBuild,
    Build,
    PostBuild,
    UploadArtifacts,
    Finalizing,
    Completed,
}

/// The one clock of records: now, as epoch seconds to the millisecond.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}

/// `durationInSeconds` from `start` to `end`: whole seconds, truncated, never negative.
pub fn whole_seconds(start: f64, end: f64) -> i64 {
    (end - start).max(0.0).floor() as i64
}

impl PhaseType {
    /// Every phase, in the order a build goes through them.
    pub const ALL: [PhaseType; 11] = [
        PhaseType::Submitted,
        PhaseType::Queued,
        PhaseType::Provisioning,
        PhaseType::DownloadSource,
        PhaseType::Install,
        PhaseType::PreBuild,
        PhaseType::Build,
        PhaseType::PostBuild,
        PhaseType::UploadArtifacts,
        PhaseType::Finalizing,
        PhaseType::Completed,
    ];

    /// The buildspec phase this build phase runs, for the four that run one.
    pub fn buildspec_phase(self) -> Option<crate::buildspec::PhaseName> {
        use crate::buildspec::PhaseName as P;
        match self {
            PhaseType::Install => Some(P::Install),
            PhaseType::PreBuild => Some(P::PreBuild),
            PhaseType::Build => Some(P::Build),
            PhaseType::PostBuild => Some(P::PostBuild),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseType::Submitted => "SUBMITTED",
            PhaseType::Queued => "QUEUED",
            PhaseType::Provisioning => "PROVISIONING",
            PhaseType::DownloadSource => "DOWNLOAD_SOURCE",
            PhaseType::Install => "INSTALL",
            PhaseType::PreBuild => "PRE_BUILD",
            PhaseType::Build => "BUILD",
            PhaseType::PostBuild => "POST_BUILD",
            PhaseType::UploadArtifacts => "UPLOAD_ARTIFACTS",
            PhaseType::Finalizing => "FINALIZING",
            PhaseType::Completed => "COMPLETED",
        }
    }
}

impl From<crate::buildspec::PhaseName> for PhaseType {
    fn from(p: crate::buildspec::PhaseName) -> Self {
        use crate::buildspec::PhaseName as P;
        match p {
            P::Install => PhaseType::Install,
            P::PreBuild => PhaseType::PreBuild,
            P::Build => PhaseType::Build,
            P::PostBuild => PhaseType::PostBuild,
        }
    }
}

/// `StatusType`, for both `buildStatus` and `phaseStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    Fault,
    TimedOut,
    InProgress,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Fault => "FAULT",
            Status::TimedOut => "TIMED_OUT",
            Status::InProgress => "IN_PROGRESS",
            Status::Stopped => "STOPPED",
        }
    }
}

/// `PhaseContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseContext {
    pub status_code: String,
    pub message: String,
}

impl PhaseContext {
    pub fn new(status_code: &str, message: impl Into<String>) -> PhaseContext {
        PhaseContext {
            status_code: status_code.to_owned(),
            message: message.into(),
        }
    }
}

/// `BuildPhase`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildPhase {
    pub phase_type: PhaseType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_status: Option<Status>,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<PhaseContext>>,
}

/// `EnvironmentVariable` (also used for `exportedEnvironmentVariables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `ProjectSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    pub location: String,
    /// Set for git sources cloned with a depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_clone_depth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
}

/// `ProjectEnvironment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    #[serde(rename = "type")]
    pub kind: String,
    pub image: String,
    pub compute_type: String,
    pub environment_variables: Vec<EnvironmentVariable>,
    pub privileged_mode: bool,
    pub image_pull_credentials_type: String,
}

/// `CloudWatchLogsConfig` / `S3LogsConfig` status holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStatus {
    pub status: String,
}

/// `LogsLocation`; localbuild adds `localPath`, the log file on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    pub group_name: String,
    pub stream_name: String,
    pub deep_link: String,
    pub cloud_watch_logs: LogStatus,
    pub s3_logs: LogStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
}

/// `BuildArtifacts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_identifier: Option<String>,
    /// Echoed for artifacts of type S3, as CodeBuild's record does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_artifact_name: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_disabled: Option<bool>,
}

/// `ProjectCache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    #[serde(rename = "type")]
    pub kind: String,
    /// `bucket[/prefix]` of a cache of type S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// CodeBuild's `Build` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub id: String,
    pub arn: String,
    pub build_number: u64,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub current_phase: PhaseType,
    pub build_status: Status,
    /// The version asked for (for a git source; its commit when none was asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_source_version: Option<String>,
    pub project_name: String,
    pub phases: Vec<BuildPhase>,
    pub source: Source,
    pub secondary_sources: Vec<Source>,
    pub artifacts: Artifacts,
    pub secondary_artifacts: Vec<Artifacts>,
    pub cache: Cache,
    pub environment: Environment,
    pub logs: Logs,
    pub timeout_in_minutes: u64,
    pub queued_timeout_in_minutes: u64,
    pub build_complete: bool,
    pub initiator: String,
    pub encryption_key: String,
    pub exported_environment_variables: Vec<EnvironmentVariable>,
    pub report_arns: Vec<String>,
    /// The batch this build belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_batch_arn: Option<String>,
    /// CodeBuild's `debugSession`: present when the build can be paused or kept
    /// (`debugSessionEnabled`, `--shell-on-failure`, `--keep-container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_session: Option<DebugSession>,
}

/// CodeBuild's `DebugSession`. Locally the target is the build container's name: what
/// `localbuild attach` opens a shell in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugSession {
    pub session_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_target: Option<String>,
}

impl BuildPhase {
    /// `phase`, open from `at`.
    pub fn open(phase_type: PhaseType, at: f64) -> BuildPhase {
        BuildPhase {
            phase_type,
            phase_status: None,
            start_time: at,
            end_time: None,
            duration_in_seconds: None,
            contexts: None,
        }
    }

    /// Close this phase at `at` (never before it started) with `status`; returns the end.
    pub fn close(&mut self, status: Status, contexts: Option<Vec<PhaseContext>>, at: f64) -> f64 {
        let end = at.max(self.start_time);
        self.end_time = Some(end);
        self.duration_in_seconds = Some(whole_seconds(self.start_time, end));
        self.phase_status = Some(status);
        self.contexts = contexts;
        end
    }

    /// This phase, closed at `at` with `status` and no context.
    pub fn closed(mut self, status: Status, at: f64) -> BuildPhase {
        self.close(status, None, at);
        self
    }
}

impl Build {
    /// Open `phase` where the previous one ended (at the build's start for the first): phases
    /// are contiguous. Returns its start.
    pub fn begin_phase(&mut self, phase: PhaseType) -> f64 {
        let start = self
            .phases
            .last()
            .map_or(self.start_time, |p| p.end_time.unwrap_or(p.start_time));
        self.current_phase = phase;
        self.phases.push(BuildPhase::open(phase, start));
        start
    }

    /// Close the open phase, if there is one, at `at`; returns its end.
    pub fn close_phase(
        &mut self,
        status: Status,
        contexts: Option<Vec<PhaseContext>>,
        at: f64,
    ) -> Option<f64> {
        let p = self.phases.last_mut().filter(|p| p.end_time.is_none())?;
        Some(p.close(status, contexts, at))
    }

    /// The build is over with `status`: complete, ending where its last phase ended. Set
    /// before COMPLETED is announced; [`Build::complete`] also opens COMPLETED.
    pub fn end(&mut self, status: Status) {
        self.build_complete = true;
        self.build_status = status;
        self.end_time = Some(
            self.phases
                .last()
                .map_or(self.start_time, |p| p.end_time.unwrap_or(p.start_time)),
        );
    }

    /// [`Build::end`] and COMPLETED opened.
    pub fn complete(&mut self, status: Status) {
        self.end(status);
        self.begin_phase(PhaseType::Completed);
    }

    /// The build was accepted at `at`, before the engine had it (the build service's queue):
    /// it started then, SUBMITTED took no time and QUEUED lasted until the engine took it
    /// over. Nothing changes if the record already starts at or before `at`.
    pub fn accepted_at(&mut self, at: f64) {
        if self.start_time <= at {
            return;
        }
        self.start_time = at;
        for p in &mut self.phases {
            match p.phase_type {
                PhaseType::Submitted => {
                    p.start_time = at;
                    if p.end_time.is_some() {
                        p.end_time = Some(at);
                        p.duration_in_seconds = Some(whole_seconds(at, at));
                    }
                }
                PhaseType::Queued => {
                    p.start_time = at;
                    if let Some(end) = p.end_time {
                        p.duration_in_seconds = Some(whole_seconds(at, end));
                    }
                }
                _ => {}
            }
        }
    }

    /// The last phase with a status other than SUCCEEDED, if any (for summaries).
    pub fn failed_phase(&self) -> Option<&BuildPhase> {
        self.phases.iter().rev().find(|p| {
            matches!(p.phase_status, Some(s) if s != Status::Succeeded && s != Status::InProgress)
        })
    }
}

/// `BuildBatchPhaseType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchPhaseType {
    Submitted,
    DownloadBatchspec,
    InProgress,
    CombineArtifacts,
    Succeeded,
    Failed,
    Stopped,
}

impl BatchPhaseType {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchPhaseType::Submitted => "SUBMITTED",
            BatchPhaseType::DownloadBatchspec => "DOWNLOAD_BATCHSPEC",
            BatchPhaseType::InProgress => "IN_PROGRESS",
            BatchPhaseType::CombineArtifacts => "COMBINE_ARTIFACTS",
            BatchPhaseType::Succeeded => "SUCCEEDED",
            BatchPhaseType::Failed => "FAILED",
            BatchPhaseType::Stopped => "STOPPED",
        }
    }
}

/// `BuildBatchPhase`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPhase {
    pub phase_type: BatchPhaseType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_status: Option<Status>,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<PhaseContext>>,
}

/// `BuildSummary`: one build of a batch. A task that never started (a dependency failed, the
/// batch stopped) has no `arn` and no `requestedOn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_on: Option<f64>,
    pub build_status: Status,
}

/// `BuildGroup`: one task of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildGroup {
    pub identifier: String,
    pub depends_on: Vec<String>,
    pub ignore_failure: bool,
    /// `None` while the task waits (for a dependency or a free slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_build_summary: Option<BuildSummary>,
    /// The builds of earlier attempts (RetryBuildBatch), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior_build_summary_list: Vec<BuildSummary>,
}

/// `BatchRestrictions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRestrictions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_builds_allowed: Option<u32>,
}

/// `ProjectBuildBatchConfig` (the parts localbuild honours).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildBatchConfig {
    pub combine_artifacts: bool,
    pub restrictions: BatchRestrictions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_mins: Option<u64>,
}

/// CodeBuild's `BuildBatch` object, as `BatchGetBuildBatches` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildBatch {
    pub id: String,
    pub arn: String,
    pub build_batch_number: u64,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub current_phase: BatchPhaseType,
    pub build_batch_status: Status,
    pub project_name: String,
    pub phases: Vec<BatchPhase>,
    pub source: Source,
    pub artifacts: Artifacts,
    pub environment: Environment,
    pub build_timeout_in_minutes: u64,
    pub complete: bool,
    pub initiator: String,
    pub encryption_key: String,
    pub build_batch_config: BuildBatchConfig,
    pub build_groups: Vec<BuildGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Build {
        let place = crate::store::Place {
            number: 1,
            dir: "/b".into(),
            log: "/b/build.log".into(),
            artifacts: "/b/artifacts".into(),
            reports: "/b/reports".into(),
        };
        let req = crate::BuildRequest::new("p", crate::Source::None);
        let mut b = crate::execute::new_record(&req, "p:1", "1", &place);
        b.start_time = 100.0;
        b.phases.clear();
        b
    }

    #[test]
    fn phases_are_contiguous_and_durations_truncated() {
        let mut b = build();
        assert_eq!(b.begin_phase(PhaseType::Submitted), 100.0);
        assert_eq!(b.close_phase(Status::Succeeded, None, 101.9), Some(101.9));
        assert_eq!(b.begin_phase(PhaseType::Queued), 101.9);
        assert_eq!(b.phases[0].duration_in_seconds, Some(1));
        // A clock that went back never makes a phase end before it began.
        assert_eq!(b.close_phase(Status::Failed, None, 50.0), Some(101.9));
        assert_eq!(b.phases[1].duration_in_seconds, Some(0));
        assert_eq!(
            b.close_phase(Status::Failed, None, 200.0),
            None,
            "none open"
        );
        b.complete(Status::Failed);
        assert!(b.build_complete);
        assert_eq!(b.end_time, Some(101.9));
        assert_eq!(b.current_phase, PhaseType::Completed);
        let last = b.phases.last().unwrap();
        assert_eq!(
            (last.phase_type, last.start_time, last.end_time),
            (PhaseType::Completed, 101.9, None)
        );
    }

    #[test]
    fn all_phases_in_order() {
        let names: Vec<_> = PhaseType::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.first(), Some(&"SUBMITTED"));
        assert_eq!(names.last(), Some(&"COMPLETED"));
        assert_eq!(names.len(), 11);
    }
}
