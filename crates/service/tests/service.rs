//! The build service's rules without Docker: a runtime whose images become available only when
//! the test opens a gate (and then fail to run), so each test decides when a build leaves
//! PROVISIONING. Queue order, tickets, stops in every stage, idempotency tokens and shutdown.

use async_trait::async_trait;
use localbuild_engine::record::{PhaseType, Status};
use localbuild_engine::runtime::{
    ContainerSpec, Removed, Runtime, RuntimeError, Session, StandIn, TarStream,
};
use localbuild_engine::{BuildRequest, Source};
use localbuild_service::{BuildService, BuildTicket, ServiceError, Stage, StartBuild};
use localbuild_store::HistoryStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

/// Images are "pulled" one per permit of `gate`, then refused: a build holds its slot in
/// PROVISIONING until the test lets it go on, and then fails there.
struct GatedRuntime {
    gate: Arc<Semaphore>,
}

fn no(action: &'static str) -> RuntimeError {
    RuntimeError::Api {
        action,
        reason: "the gated test runtime runs nothing".to_owned(),
    }
}

#[async_trait]
impl Runtime for GatedRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        _progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<Option<StandIn>, RuntimeError> {
        if let Ok(p) = self.gate.acquire().await {
            p.forget();
        }
        Err(RuntimeError::ImageUnavailable {
            image: image.to_owned(),
            reason: "the gate opened onto nothing".to_owned(),
        })
    }
    async fn image_entrypoint(&self, _image: &str) -> Result<Vec<String>, RuntimeError> {
        Ok(vec![])
    }
    async fn start_container(
        &self,
        _spec: &ContainerSpec,
    ) -> Result<(String, Option<Session>), RuntimeError> {
        Err(no("start a container"))
    }
    async fn start_session(
        &self,
        _container: &str,
        _cmd: Vec<String>,
        _user: Option<&str>,
        _working_dir: &str,
        _env: &[String],
    ) -> Result<Session, RuntimeError> {
        Err(no("start a session"))
    }
    async fn exec_status(&self, _container: &str, _cmd: Vec<String>) -> Result<i64, RuntimeError> {
        Err(no("run a command"))
    }
    async fn exec_exit_code(&self, _exec_id: &str) -> Option<i64> {
        None
    }
    async fn is_running(&self, _container: &str) -> bool {
        false
    }
    async fn wait_stopped(&self, _container: &str, _limit: Duration) -> bool {
        true
    }
    async fn upload_tar(&self, _container: &str, _tar: TarStream) -> Result<(), RuntimeError> {
        Err(no("upload"))
    }
    fn download_tar(&self, _container: &str, _path: &str) -> TarStream {
        Box::pin(tokio_stream::empty())
    }
    async fn remove_container(&self, _container: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn remove_build_resources(
        &self,
        _build_id: Option<&str>,
    ) -> Result<Removed, RuntimeError> {
        Ok(Removed::default())
    }
}

struct Fixture {
    service: Arc<BuildService>,
    gate: Arc<Semaphore>,
    _home: tempfile::TempDir,
}

fn service(max_concurrent_builds: usize) -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let history = HistoryStore::open(home.path()).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let runtime = Arc::new(GatedRuntime { gate: gate.clone() });
    Fixture {
        service: BuildService::new(runtime, history, max_concurrent_builds),
        gate,
        _home: home,
    }
}

fn build(project: &str, token: Option<&str>) -> StartBuild {
    let mut request = BuildRequest::new(project, Source::None);
    request.buildspec = localbuild_engine::BuildspecSource::Inline(
        "version: 0.2\nphases:\n  build:\n    commands: [true]\n".to_owned(),
    );
    StartBuild {
        request,
        project_limit: None,
        idempotency_token: token.map(str::to_owned),
    }
}

fn start(f: &Fixture, project: &str) -> BuildTicket {
    f.service
        .start(build(project, None), |_| Ok::<(), ServiceError>(()))
        .unwrap()
        .ticket
}

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {BOUND:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_is_queued_and_recorded_the_moment_it_is_accepted() {
    let f = service(1);
    let accepted = f
        .service
        .start(build("app", None), |record| {
            assert_eq!(record.current_phase, PhaseType::Queued);
            Ok::<(), ServiceError>(())
        })
        .unwrap();
    assert!(accepted.record.id.starts_with("app:"));
    assert_eq!(accepted.record.build_number, 1);
    let phases: Vec<_> = accepted
        .record
        .phases
        .iter()
        .map(|p| p.phase_type)
        .collect();
    assert_eq!(phases, [PhaseType::Submitted, PhaseType::Queued]);
    assert!(f.service.is_live(accepted.ticket.id()));
    assert!(f.service.record(accepted.ticket.id()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_acceptance_leaves_nothing_queued() {
    let f = service(1);
    #[derive(Debug)]
    enum Refused {
        NoDocument,
        Service,
    }
    impl From<ServiceError> for Refused {
        fn from(_: ServiceError) -> Refused {
            Refused::Service
        }
    }
    let refused = f
        .service
        .start(build("app", None), |_| Err(Refused::NoDocument));
    assert!(matches!(refused, Err(Refused::NoDocument)));
    let second = start(&f, "app");
    assert!(
        bounded("the next build runs", second.handle())
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_wait_for_a_slot_and_tickets_follow_them_without_polling() {
    let f = service(1);
    let first = start(&f, "app");
    let second = start(&f, "app");
    assert!(
        bounded("the first build runs", first.handle())
            .await
            .is_some()
    );
    assert!(matches!(second.stage(), Stage::Queued));
    f.gate.add_permits(1);
    let done = bounded("the first build ends", first.finished())
        .await
        .unwrap();
    assert!(done.outcome.is_some(), "the engine ran it");
    assert!(done.record.build_complete);
    assert_ne!(done.record.build_status, Status::Succeeded);
    assert!(
        bounded("the second build runs", second.handle())
            .await
            .is_some()
    );
    f.gate.add_permits(1);
    let done = bounded("the second build ends", second.finished())
        .await
        .unwrap();
    assert!(done.outcome.is_some());
    assert!(!f.service.is_live(second.id()));
    // The history has the final record, with the time the build was accepted.
    let kept = f.service.record(second.id()).unwrap();
    assert!(kept.build_complete);
    assert_eq!(kept.phases[0].phase_type, PhaseType::Submitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_stopped_in_the_queue_ends_stopped_without_running() {
    let f = service(1);
    let first = start(&f, "app");
    let second = start(&f, "app");
    bounded("the first build runs", first.handle()).await;
    bounded("the stop", f.service.stop(second.id())).await;
    let done = bounded("the stopped build ends", second.finished())
        .await
        .unwrap();
    assert!(done.outcome.is_none(), "the engine never had it");
    assert_eq!(done.record.build_status, Status::Stopped);
    let queued = done
        .record
        .phases
        .iter()
        .find(|p| p.phase_type == PhaseType::Queued);
    assert_eq!(queued.and_then(|p| p.phase_status), Some(Status::Stopped));
    assert!(
        done.record
            .phases
            .iter()
            .all(|p| p.phase_type != PhaseType::Provisioning),
        "it never reached the engine: {:?}",
        done.record.phases
    );
    assert!(
        bounded("a stopped build's handle", second.handle())
            .await
            .is_none()
    );
    f.gate.add_permits(1);
    bounded("the first build ends", first.finished()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_build_is_stopped_and_awaited() {
    let f = service(1);
    let ticket = start(&f, "app");
    bounded("the build runs", ticket.handle()).await;
    let stop = tokio::spawn({
        let service = f.service.clone();
        let id = ticket.id().to_owned();
        async move { service.stop(&id).await }
    });
    // The runtime is stuck pulling; the stop ends the build once the pull returns.
    f.gate.add_permits(1);
    bounded("the stop returns", stop).await.unwrap();
    let done = bounded("the build ends", ticket.finished()).await.unwrap();
    assert!(done.record.build_complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_token_names_the_same_build() {
    let f = service(1);
    let accepted = f
        .service
        .start(build("app", Some("t-1")), |_| Ok::<(), ServiceError>(()))
        .unwrap();
    let again = f.service.by_token("t-1").expect("the token names a build");
    assert_eq!(again.ticket.id(), accepted.ticket.id());
    assert!(f.service.by_token("t-2").is_none());
    f.gate.add_permits(1);
    bounded("the build ends", accepted.ticket.finished()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_queued_builds_and_refuses_new_ones() {
    let f = service(1);
    let running = start(&f, "app");
    let queued = start(&f, "app");
    bounded("the first build runs", running.handle()).await;
    let shutdown = tokio::spawn({
        let service = f.service.clone();
        async move { service.stop_all().await }
    });
    let stopped = bounded("the queued build ends", queued.finished())
        .await
        .unwrap();
    assert_eq!(stopped.record.build_status, Status::Stopped);
    f.gate.add_permits(1);
    bounded("shutdown", shutdown).await.unwrap();
    assert!(!f.service.is_live(running.id()));
    let refused = f
        .service
        .start(build("app", None), |_| Ok::<(), ServiceError>(()));
    assert!(matches!(refused, Err(ServiceError::ShuttingDown)));
}
