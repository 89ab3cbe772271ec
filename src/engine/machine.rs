//! CodeBuild's phase transitions (reference §2.3, §2.4, §2.9 and decisions U1–U4), as pure logic.
//!
//! The runner feeds each buildspec phase's outcome in and is told what comes next. No I/O:
//! every rule is unit-tested here without Docker.

use crate::buildspec::{OnFailure, PhaseName};

/// What the runner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Phase(PhaseName),
    UploadArtifacts,
    Finalize,
}

/// The transition state of one build.
#[derive(Debug, Default)]
pub struct Machine {
    failed: bool,
}

impl Machine {
    pub fn new() -> Machine {
        Machine::default()
    }

    /// The first step after DOWNLOAD_SOURCE succeeded.
    pub fn start(&self) -> Step {
        Step::Phase(PhaseName::Install)
    }

    /// Has any phase failed so far? (The build then ends FAILED.)
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The step after `phase` ended (`ok` = all its commands and finally commands succeeded;
    /// retries already exhausted).
    pub fn after(&mut self, phase: PhaseName, ok: bool, on_failure: Option<&OnFailure>) -> Step {
        let next = match phase {
            PhaseName::Install => Step::Phase(PhaseName::PreBuild),
            PhaseName::PreBuild => Step::Phase(PhaseName::Build),
            PhaseName::Build => Step::Phase(PhaseName::PostBuild),
            PhaseName::PostBuild => Step::UploadArtifacts,
        };
        if ok {
            return next;
        }
        self.failed = true;
        match on_failure {
            Some(OnFailure::Continue) => next,
            Some(OnFailure::Abort) => Step::Finalize,
            // Unset, or RETRY exhausted: the default rules.
            None | Some(OnFailure::Retry { .. }) => match phase {
                PhaseName::Install | PhaseName::PreBuild => Step::Finalize,
                PhaseName::Build | PhaseName::PostBuild => next,
            },
        }
    }
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
    use PhaseName::*;

    /// Run the machine over outcomes per phase and return the phases entered, plus whether
    /// UPLOAD_ARTIFACTS ran.
    fn check(
        outcomes: &[(PhaseName, bool)],
        on_failure: Option<OnFailure>,
    ) -> (Vec<PhaseName>, bool) {
        let mut m = Machine::new();
        let mut entered = vec![];
        let mut step = m.start();
        loop {
            match step {
                Step::Phase(p) => {
                    entered.push(p);
                    let ok = outcomes
                        .iter()
                        .find(|(q, _)| *q == p)
                        .is_none_or(|(_, ok)| *ok);
                    step = m.after(p, ok, on_failure.as_ref());
                }
                Step::UploadArtifacts => return (entered, true),
                Step::Finalize => return (entered, false),
            }
        }
    }

    #[test]
    fn all_phases_run_in_order_when_nothing_fails() {
        assert_eq!(
            check(&[], None),
            (vec![Install, PreBuild, Build, PostBuild], true)
        );
    }

    #[test]
    fn install_or_pre_build_failure_goes_to_finalizing() {
        assert_eq!(check(&[(Install, false)], None), (vec![Install], false));
        assert_eq!(
            check(&[(PreBuild, false)], None),
            (vec![Install, PreBuild], false)
        );
    }

    #[test]
    fn build_failure_still_runs_post_build_and_upload() {
        assert_eq!(
            check(&[(Build, false)], None),
            (vec![Install, PreBuild, Build, PostBuild], true)
        );
    }

    #[test]
    fn post_build_failure_still_uploads() {
        assert_eq!(
            check(&[(PostBuild, false)], None),
            (vec![Install, PreBuild, Build, PostBuild], true)
        );
    }

    #[test]
    fn abort_skips_everything_including_upload() {
        assert_eq!(
            check(&[(Build, false)], Some(OnFailure::Abort)),
            (vec![Install, PreBuild, Build], false)
        );
    }

    #[test]
    fn continue_goes_on_after_install_failure_and_the_build_fails() {
        let mut m = Machine::new();
        assert_eq!(
            m.after(Install, false, Some(&OnFailure::Continue)),
            Step::Phase(PreBuild)
        );
        assert!(m.failed());
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
