//! The records the service writes itself, for builds the engine has not (yet) run: accepted
//! and QUEUED, stopped or refused before they reached the engine, and the acceptance time laid
//! over the engine's record (the build started when it was accepted, not when it left the queue).

use localbuild_engine::BuildRequest;
use localbuild_engine::record::{Build, BuildPhase, PhaseContext, PhaseType, Status};
use localbuild_engine::store::Place;
use std::path::Path;

/// The clock every record the service writes uses (the engine's).
pub fn now() -> f64 {
    localbuild_engine::record::epoch_now()
}

/// A build held in the queue: the engine's own submitted record, accepted at `at`, SUBMITTED
/// done and QUEUED open.
pub fn queued_record(req: &BuildRequest, uuid: &str, number: u64, log: &Path, at: f64) -> Build {
    let dir = log.parent().map(Path::to_path_buf).unwrap_or_default();
    let place = Place {
        number,
        log: log.to_path_buf(),
        artifacts: dir.join("artifacts"),
        reports: dir.join("reports"),
        dir,
    };
    let id = format!("{}:{uuid}", req.project);
    let mut build = localbuild_engine::new_record(req, &id, uuid, &place);
    build.start_time = at;
    build.current_phase = PhaseType::Queued;
    build.logs.deep_link = String::new();
    build.phases = queued_phases(at);
    build
}

/// SUBMITTED done and QUEUED open at `at`: a build the engine has not begun yet.
pub fn queued_phases(at: f64) -> Vec<BuildPhase> {
    vec![
        BuildPhase::open(PhaseType::Submitted, at).closed(Status::Succeeded, at),
        BuildPhase::open(PhaseType::Queued, at),
    ]
}

/// End a record that never reached the engine: QUEUED ends with `status` (and `message` as
/// its `CLIENT_ERROR` context).
pub fn end_record(r: &mut Build, status: Status, message: Option<String>) {
    let contexts = message.map(|m| vec![PhaseContext::new("CLIENT_ERROR", m)]);
    r.close_phase(status, contexts, now());
    r.complete(status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_time_is_the_time_since_acceptance() {
        let req = BuildRequest::new("demo", localbuild_engine::Source::None);
        let mut b = queued_record(&req, "u", 1, Path::new("/l"), 100.0);
        b.start_time = 130.0;
        b.phases[0].start_time = 130.0;
        b.phases[1].start_time = 130.0;
        b.phases[1].end_time = Some(131.5);
        b.accepted_at(100.0);
        assert_eq!(b.start_time, 100.0);
        assert_eq!(b.phases[0].end_time, Some(100.0));
        assert_eq!(b.phases[1].start_time, 100.0);
        assert_eq!(b.phases[1].duration_in_seconds, Some(31));
    }

    #[test]
    fn a_build_stopped_in_the_queue_ends_there() {
        let req = BuildRequest::new("demo", localbuild_engine::Source::None);
        let mut b = queued_record(&req, "u", 1, Path::new("/l"), 100.0);
        end_record(&mut b, Status::Stopped, Some("why".into()));
        assert!(b.build_complete);
        assert_eq!(b.build_status, Status::Stopped);
        let queued = &b.phases[1];
        assert_eq!(queued.phase_status, Some(Status::Stopped));
        assert_eq!(
            queued.contexts.as_ref().map(|c| c[0].message.as_str()),
            Some("why")
        );
    }
}
