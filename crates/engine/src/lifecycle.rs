//! CodeBuild's build lifecycle as one pure state machine (reference §2.3, §2.4, §2.9, §8 and
//! decisions U1–U4, U9).
//!
//! The executor (`execute`) carries out a phase and reports how it ended; [`Lifecycle::ended`]
//! says which status the phase gets and what comes next: the next phase, a retry of the same
//! phase, or the end. It also decides the build's final status. All eleven phases go through
//! it, including stop, timeout and fault. No I/O: every rule is unit-tested here.

use crate::buildspec::{OnFailure, PhaseName};
use crate::record::{PhaseType, Status};

/// How one attempt at a phase ended, as the executor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Succeeded,
    /// A command failed, or the phase's own work failed (a buildspec error, an upload error).
    Failed,
    /// The build container could not be provisioned or died: the build is a FAULT.
    Fault,
    /// `StopBuild`, Ctrl-C, SIGTERM.
    Stopped,
    /// The build timeout passed.
    TimedOut,
    /// The build cannot go on because what it produces cannot be kept (its record or log could
    /// not be written, e.g. a full disk): the phase FAILED, then straight to FINALIZING (no
    /// later phase, no UPLOAD_ARTIFACTS, no retry), and the build FAILED.
    Aborted,
}

/// What the executor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Enter this phase.
    Enter(PhaseType),
    /// Run the same buildspec phase again (decision U1): attempt `attempt` of `of` retries.
    Retry { attempt: u32, of: u32 },
    /// The build is over (after COMPLETED).
    Done,
}

/// The verdict on a phase attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The phase's status; `None` when it is retried (it has not ended yet).
    pub status: Option<Status>,
    pub next: Next,
}

/// The transition state of one build.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// A phase failed: the build ends FAILED unless `forced`.
    failed: bool,
    /// FAULT, STOPPED or TIMED_OUT: the build's status whatever the phases say.
    forced: Option<Status>,
    /// Retries made of the current buildspec phase.
    retries: u32,
    /// An ABORT, or an INSTALL / PRE_BUILD failure, skips UPLOAD_ARTIFACTS.
    skip_upload: bool,
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// Every build starts here.
    pub const FIRST: PhaseType = PhaseType::Submitted;

    /// `phase` ended as `how`. `on_failure` is the buildspec phase's setting and `texts` the
    /// failure's context message and output (for `RETRY-N-regex`); both matter only for the
    /// four buildspec phases.
    pub fn ended(
        &mut self,
        phase: PhaseType,
        how: Ended,
        on_failure: Option<&OnFailure>,
        texts: &[&str],
    ) -> Decision {
        use PhaseType as P;
        let end = |status, next| Decision {
            status: Some(status),
            next,
        };
        // FINALIZING always succeeds and COMPLETED never ends: nothing interrupts them.
        match phase {
            P::Finalizing => return end(Status::Succeeded, Next::Enter(P::Completed)),
            P::Completed => {
                return Decision {
                    status: None,
                    next: Next::Done,
                };
            }
            _ => {}
        }
        let finalize = Next::Enter(P::Finalizing);
        match how {
            Ended::Stopped | Ended::TimedOut => {
                let status = match how {
                    Ended::Stopped => Status::Stopped,
                    _ => Status::TimedOut,
                };
                self.forced = Some(status);
                return end(status, finalize);
            }
            Ended::Fault => {
                self.forced = Some(Status::Fault);
                return end(Status::Failed, finalize);
            }
            Ended::Aborted => {
                self.failed = true;
                self.skip_upload = true;
                return end(Status::Failed, finalize);
            }
            Ended::Succeeded | Ended::Failed => {}
        }
        let ok = how == Ended::Succeeded;
        let Some(name) = phase.buildspec_phase() else {
            // The lifecycle's own phases: a failure goes straight to FINALIZING.
            let next = match phase {
                P::Submitted => P::Queued,
                P::Queued => P::Provisioning,
                P::Provisioning => P::DownloadSource,
                P::DownloadSource => P::Install,
                _ => P::Finalizing,
            };
            if ok {
                return end(Status::Succeeded, Next::Enter(next));
            }
            self.failed = true;
            // PROVISIONING cannot fail without the build being a FAULT (decision U4).
            if phase == P::Provisioning {
                self.forced = Some(Status::Fault);
            }
            return end(Status::Failed, finalize);
        };
        if !ok && should_retry(on_failure, self.retries, texts) {
            self.retries += 1;
            let of = match on_failure {
                Some(OnFailure::Retry { count, .. }) => *count,
                _ => 0,
            };
            return Decision {
                status: None,
                next: Next::Retry {
                    attempt: self.retries,
                    of,
                },
            };
        }
        self.retries = 0;
        let following = match name {
            PhaseName::Install => Next::Enter(P::PreBuild),
            PhaseName::PreBuild => Next::Enter(P::Build),
            PhaseName::Build => Next::Enter(P::PostBuild),
            PhaseName::PostBuild if self.skip_upload => finalize,
            PhaseName::PostBuild => Next::Enter(P::UploadArtifacts),
        };
        if ok {
            return end(Status::Succeeded, following);
        }
        self.failed = true;
        let next = match on_failure {
            Some(OnFailure::Continue) => {
                // Decision U2: goes on, but UPLOAD_ARTIFACTS only if nothing else skipped it.
                following
            }
            Some(OnFailure::Abort) => {
                self.skip_upload = true;
                finalize
            }
            // Unset, or RETRY exhausted: the default rules.
            None | Some(OnFailure::Retry { .. }) => match name {
                PhaseName::Install | PhaseName::PreBuild => {
                    self.skip_upload = true;
                    finalize
                }
                PhaseName::Build | PhaseName::PostBuild => following,
            },
        };
        end(Status::Failed, next)
    }

    /// Did any phase fail so far?
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The build's status once it is COMPLETED: FAULT, STOPPED or TIMED_OUT when one happened,
    /// else FAILED if any phase failed, else SUCCEEDED.
    pub fn build_status(&self) -> Status {
        match (self.forced, self.failed) {
            (Some(forced), _) => forced,
            (None, true) => Status::Failed,
            (None, false) => Status::Succeeded,
        }
    }
}

/// Is this phase one whose end the agent logs ("Phase complete: … State: …" and a context
/// line)? PROVISIONING and the bookkeeping phases are not in the build log.
pub fn is_logged(phase: PhaseType) -> bool {
    matches!(
        phase,
        PhaseType::DownloadSource
            | PhaseType::Install
            | PhaseType::PreBuild
            | PhaseType::Build
            | PhaseType::PostBuild
            | PhaseType::UploadArtifacts
    )
}

/// Decision U1: may a failed phase be run again? `attempt` counts retries already made;
/// `texts` are the context message and the failing command's output.
pub fn should_retry(on_failure: Option<&OnFailure>, attempt: u32, texts: &[&str]) -> bool {
    let Some(OnFailure::Retry { count, pattern }) = on_failure else {
        return false;
    };
    if attempt >= *count {
        return false;
    }
    match pattern {
        None => true,
        Some(p) => match regex::Regex::new(p) {
            Ok(re) => texts.iter().any(|t| re.is_match(t)),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PhaseType::*;

    /// Drive a whole build: `outcome(phase, attempt)` says how each attempt ends. Returns the
    /// phases with their statuses (a retried attempt appears as `None`) and the build status.
    fn drive(
        on_failure: Option<OnFailure>,
        outcome: impl Fn(PhaseType, u32) -> Ended,
    ) -> (Vec<(PhaseType, Option<Status>)>, Status) {
        let mut lc = Lifecycle::new();
        let mut phase = Lifecycle::FIRST;
        let mut seen = vec![];
        let mut attempt = 0;
        loop {
            let how = match phase {
                Completed | Finalizing => Ended::Succeeded,
                p => outcome(p, attempt),
            };
            let d = lc.ended(phase, how, on_failure.as_ref(), &["msg", "output"]);
            seen.push((phase, d.status));
            match d.next {
                Next::Enter(p) => {
                    phase = p;
                    attempt = 0;
                }
                Next::Retry { .. } => attempt += 1,
                Next::Done => return (seen, lc.build_status()),
            }
        }
    }

    fn fails_in(phase: PhaseType) -> impl Fn(PhaseType, u32) -> Ended {
        move |p, _| {
            if p == phase {
                Ended::Failed
            } else {
                Ended::Succeeded
            }
        }
    }

    fn phases(seen: &[(PhaseType, Option<Status>)]) -> Vec<PhaseType> {
        seen.iter().map(|(p, _)| *p).collect()
    }

    fn status_of(seen: &[(PhaseType, Option<Status>)], phase: PhaseType) -> Option<Status> {
        seen.iter()
            .rev()
            .find(|(p, _)| *p == phase)
            .and_then(|s| s.1)
    }

    const ALL: [PhaseType; 11] = [
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
    ];

    #[test]
    fn all_eleven_phases_run_in_order_when_nothing_fails() {
        let (seen, status) = drive(None, |_, _| Ended::Succeeded);
        assert_eq!(phases(&seen), ALL);
        assert_eq!(status, Status::Succeeded);
        // COMPLETED has no status; every other phase SUCCEEDED.
        assert_eq!(status_of(&seen, Completed), None);
        assert!(
            seen[..10]
                .iter()
                .all(|(_, s)| *s == Some(Status::Succeeded))
        );
    }

    #[test]
    fn provisioning_failure_is_a_fault_and_goes_to_finalizing() {
        let (seen, status) = drive(None, fails_in(Provisioning));
        assert_eq!(
            phases(&seen),
            [Submitted, Queued, Provisioning, Finalizing, Completed]
        );
        assert_eq!(status_of(&seen, Provisioning), Some(Status::Failed));
        assert_eq!(status, Status::Fault);
    }

    #[test]
    fn download_source_failure_fails_the_build_and_skips_every_phase() {
        let (seen, status) = drive(None, fails_in(DownloadSource));
        assert_eq!(
            phases(&seen),
            [
                Submitted,
                Queued,
                Provisioning,
                DownloadSource,
                Finalizing,
                Completed
            ]
        );
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn install_or_pre_build_failure_goes_to_finalizing() {
        for failing in [Install, PreBuild] {
            let (seen, status) = drive(None, fails_in(failing));
            let entered = phases(&seen);
            assert_eq!(entered.last(), Some(&Completed));
            assert!(!entered.contains(&Build), "{failing:?}");
            assert!(!entered.contains(&UploadArtifacts), "{failing:?}");
            assert_eq!(status, Status::Failed);
        }
    }

    #[test]
    fn build_failure_still_runs_post_build_and_upload() {
        let (seen, status) = drive(None, fails_in(Build));
        assert_eq!(phases(&seen), ALL);
        assert_eq!(status_of(&seen, Build), Some(Status::Failed));
        assert_eq!(status_of(&seen, PostBuild), Some(Status::Succeeded));
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn post_build_failure_still_uploads() {
        let (seen, status) = drive(None, fails_in(PostBuild));
        assert_eq!(phases(&seen), ALL);
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn upload_failure_fails_the_build() {
        let (seen, status) = drive(None, fails_in(UploadArtifacts));
        assert_eq!(phases(&seen), ALL);
        assert_eq!(status_of(&seen, UploadArtifacts), Some(Status::Failed));
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn abort_skips_everything_including_upload() {
        let (seen, status) = drive(Some(OnFailure::Abort), fails_in(Build));
        assert_eq!(
            phases(&seen),
            [
                Submitted,
                Queued,
                Provisioning,
                DownloadSource,
                Install,
                PreBuild,
                Build,
                Finalizing,
                Completed
            ]
        );
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn continue_goes_on_after_install_failure_and_the_build_fails() {
        let (seen, status) = drive(Some(OnFailure::Continue), fails_in(Install));
        assert_eq!(phases(&seen), ALL);
        assert_eq!(status_of(&seen, Install), Some(Status::Failed));
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn retry_reruns_the_phase_until_it_succeeds() {
        let retry = OnFailure::Retry {
            count: 2,
            pattern: None,
        };
        // BUILD fails on its first attempt only.
        let (seen, status) = drive(Some(retry), |p, attempt| {
            if p == Build && attempt == 0 {
                Ended::Failed
            } else {
                Ended::Succeeded
            }
        });
        let builds: Vec<_> = seen.iter().filter(|(p, _)| *p == Build).collect();
        assert_eq!(
            builds,
            [&(Build, None), &(Build, Some(Status::Succeeded))],
            "one retry, then the phase ends once"
        );
        assert_eq!(status, Status::Succeeded);
    }

    #[test]
    fn retry_exhausted_falls_back_to_the_default_rules() {
        let retry = OnFailure::Retry {
            count: 2,
            pattern: None,
        };
        let (seen, status) = drive(Some(retry), fails_in(PreBuild));
        let attempts = seen.iter().filter(|(p, _)| *p == PreBuild).count();
        assert_eq!(attempts, 3, "the first run and two retries");
        assert!(!phases(&seen).contains(&Build));
        assert_eq!(status, Status::Failed);
    }

    #[test]
    fn retry_reports_its_attempt_number() {
        let retry = OnFailure::Retry {
            count: 3,
            pattern: None,
        };
        let mut lc = Lifecycle::new();
        let d = lc.ended(Build, Ended::Failed, Some(&retry), &[]);
        assert_eq!(d.next, Next::Retry { attempt: 1, of: 3 });
        let d = lc.ended(Build, Ended::Failed, Some(&retry), &[]);
        assert_eq!(d.next, Next::Retry { attempt: 2, of: 3 });
    }

    #[test]
    fn stop_and_timeout_in_any_phase_end_it_and_the_build() {
        for (how, status) in [
            (Ended::Stopped, Status::Stopped),
            (Ended::TimedOut, Status::TimedOut),
        ] {
            for phase in &ALL[..9] {
                let (seen, build) = drive(
                    None,
                    |p, _| {
                        if p == *phase { how } else { Ended::Succeeded }
                    },
                );
                assert_eq!(status_of(&seen, *phase), Some(status), "{phase:?}");
                assert_eq!(&phases(&seen)[seen.len() - 2..], [Finalizing, Completed]);
                assert_eq!(build, status, "{phase:?}");
            }
        }
    }

    #[test]
    fn a_dead_container_in_a_buildspec_phase_is_a_fault() {
        let (seen, status) = drive(None, |p, _| {
            if p == Build {
                Ended::Fault
            } else {
                Ended::Succeeded
            }
        });
        assert_eq!(status_of(&seen, Build), Some(Status::Failed));
        assert!(!phases(&seen).contains(&PostBuild));
        assert_eq!(status, Status::Fault);
    }

    #[test]
    fn a_build_whose_output_cannot_be_kept_ends_failed_in_any_phase_without_retry_or_upload() {
        let retry = OnFailure::Retry {
            count: 3,
            pattern: None,
        };
        for phase in &ALL[..9] {
            let (seen, status) = drive(Some(retry.clone()), |p, _| {
                if p == *phase {
                    Ended::Aborted
                } else {
                    Ended::Succeeded
                }
            });
            assert_eq!(status_of(&seen, *phase), Some(Status::Failed), "{phase:?}");
            assert_eq!(
                seen.iter().filter(|(p, _)| p == phase).count(),
                1,
                "{phase:?} is not retried"
            );
            let after: Vec<_> = phases(&seen)
                .into_iter()
                .skip_while(|p| p != phase)
                .skip(1)
                .collect();
            assert_eq!(after, [Finalizing, Completed], "{phase:?}");
            assert_eq!(status, Status::Failed, "{phase:?}");
        }
    }

    #[test]
    fn a_stop_after_a_failure_is_still_stopped() {
        let (_, status) = drive(None, |p, _| match p {
            Build => Ended::Failed,
            PostBuild => Ended::Stopped,
            _ => Ended::Succeeded,
        });
        assert_eq!(status, Status::Stopped);
    }

    #[test]
    fn only_the_agents_phases_are_logged() {
        let logged: Vec<_> = ALL.into_iter().filter(|p| is_logged(*p)).collect();
        assert_eq!(
            logged,
            [
                DownloadSource,
                Install,
                PreBuild,
                Build,
                PostBuild,
                UploadArtifacts
            ]
        );
    }

    #[test]
    fn retry_honours_count_and_pattern() {
        let any = OnFailure::Retry {
            count: 2,
            pattern: None,
        };
        assert!(should_retry(Some(&any), 0, &["x"]));
        assert!(should_retry(Some(&any), 1, &["x"]));
        assert!(!should_retry(Some(&any), 2, &["x"]));
        let pat = OnFailure::Retry {
            count: 3,
            pattern: Some("timed out".into()),
        };
        assert!(should_retry(Some(&pat), 0, &["", "connection timed out"]));
        assert!(!should_retry(Some(&pat), 0, &["refused"]));
        assert!(!should_retry(None, 0, &["x"]));
        assert!(!should_retry(Some(&OnFailure::Abort), 0, &["x"]));
    }
}
