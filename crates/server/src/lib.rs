//! `localbuild serve`: a local CodeBuild and CloudWatch Logs endpoint for the unmodified
//! `aws` CLI and SDKs (`AWS_ENDPOINT_URL=http://127.0.0.1:4599`).
//!
//! * [`protocol`] — AWS JSON 1.1 (`POST /`, `X-Amz-Target`), dispatch by target prefix.
//! * [`error`] — the one mapping from typed errors to `{"__type", "message"}` and a status.
//! * [`auth`] — SigV4 verification with `--credentials`, else open.
//! * [`codebuild`] — projects and builds; [`queue`] — which queued build may start.
//! * [`batch`] — batch builds (StartBuildBatch and the other `*BuildBatch*` operations).
//! * [`aws`] — the local AWS services builds use (SSM, Secrets Manager, STS), here and on each
//!   build's own endpoint ([`aws::endpoint`]).
//! * [`logs`] — the build logs as CloudWatch Logs groups, streams and events.
//! * [`pipeline`] — CodePipeline (pipelines, executions, the executor and the branch watcher)
//!   and CodeStar Connections / CodeConnections.
//! * [`console`] — the web console: server-rendered pages (`GET`) on the same port.
//! * [`guard`] — what every request passes first (`Host`, head and body limits) and every
//!   answer gets (AWS error bodies, framing protection).
//!
//! The server owns the engine's store ([`ServerStore`], a thin layer over the history) so that
//! a build has its id and number the moment `StartBuild` answers, even while it waits in the
//! queue. This crate is the only one that depends on axum.

pub mod auth;
pub mod aws;
pub mod batch;
pub mod codebuild;
pub mod console;
pub mod error;
pub mod guard;
pub mod logs;
pub mod pipeline;
pub mod protocol;
pub mod queue;
pub mod tags;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use error::ApiError;
use localbuild_engine::record::Build;
use localbuild_engine::record::BuildBatch;
use localbuild_engine::runtime::Runtime;
use localbuild_engine::secrets::SecretsFile;
use localbuild_engine::store::{BatchPlace, Place, Store, StoreError};
use localbuild_engine::{BatchHandle, BuildHandle, BuildRequest, Engine};
use localbuild_sigv4::Credentials;
use localbuild_store::HistoryStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The default port: next to LocalStack's 4566 range without clashing with it.
pub const DEFAULT_PORT: u16 = 4599;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;

/// What the server needs to run.
pub struct Config {
    /// Where to listen (port 0: any free port; [`Server::addr`] says which).
    pub listen: SocketAddr,
    /// `None`: accept any request; else only requests signed with one of these keys.
    pub credentials: Option<Credentials>,
    /// Host names served besides localhost, 127.0.0.1, [::1] and the listen address
    /// (`--allowed-host`, as [`guard::allowed_host_name`] keeps them).
    pub allowed_hosts: Vec<String>,
    /// Values for PARAMETER_STORE and SECRETS_MANAGER variables.
    pub secrets: SecretsFile,
    /// Builds running at once; more wait QUEUED.
    pub max_concurrent_builds: usize,
    /// The region of ARNs for unsigned requests.
    pub region: String,
    pub runtime: Arc<dyn Runtime>,
    pub history: HistoryStore,
    /// Where repository locations resolve (`<git_root>/OWNER/REPO`, else `<git_root>/REPO`) and
    /// S3 locations (`<s3_root>/BUCKET/KEY`).
    pub roots: localbuild_sources::Roots,
    /// Privileged builds get this machine's Docker daemon itself instead of a guarded Docker
    /// API (`serve --docker-host-access`).
    pub docker_host_access: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The engine's store, as the server uses it: numbers are claimed when a build is accepted
/// (the engine then gets that place), and a queued build's record keeps its real SUBMITTED
/// time and QUEUED duration.
pub struct ServerStore {
    history: HistoryStore,
    claimed: Mutex<HashMap<String, Place>>,
    accepted_at: Mutex<HashMap<String, f64>>,
}

impl ServerStore {
    fn new(history: HistoryStore) -> ServerStore {
        ServerStore {
            history,
            claimed: Mutex::default(),
            accepted_at: Mutex::default(),
        }
    }

    /// Claim the build's number and folder now; the engine gets this place later.
    pub fn claim(&self, project: &str, id: &str, at: f64) -> Result<Place, StoreError> {
        let place = self.history.create(project, id)?;
        lock(&self.claimed).insert(id.to_owned(), place.clone());
        lock(&self.accepted_at).insert(id.to_owned(), at);
        Ok(place)
    }

    /// The record with the time the server accepted the build.
    pub fn restamp(&self, build: &Build) -> Build {
        let mut build = build.clone();
        if let Some(at) = lock(&self.accepted_at).get(&build.id) {
            codebuild::restamp(&mut build, *at);
        }
        build
    }

    /// The build is over: forget its bookkeeping.
    pub fn forget(&self, id: &str) {
        lock(&self.claimed).remove(id);
        lock(&self.accepted_at).remove(id);
    }
}

impl Store for ServerStore {
    fn create(&self, project: &str, build_id: &str) -> Result<Place, StoreError> {
        match lock(&self.claimed).remove(build_id) {
            Some(place) => Ok(place),
            None => self.history.create(project, build_id),
        }
    }

    fn save(&self, build: &Build) -> Result<(), StoreError> {
        self.history.save(&self.restamp(build))
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        self.history.cache_dir(project)
    }

    fn create_batch(&self, project: &str, batch_id: &str) -> Result<BatchPlace, StoreError> {
        self.history.create_batch(project, batch_id)
    }

    fn reopen_batch(&self, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
        self.history.reopen_batch(project, number)
    }

    fn save_batch(&self, batch: &BuildBatch) -> Result<(), StoreError> {
        self.history.save_batch(batch)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A build the server is responsible for right now.
pub(crate) enum Live {
    /// Accepted, not yet handed to the engine.
    Queued(Box<QueuedBuild>),
    Running(BuildHandle),
}

pub(crate) struct QueuedBuild {
    pub record: Build,
    pub request: BuildRequest,
    pub uuid: String,
    /// StopBuild arrived while the build was being handed to the engine.
    pub stop_requested: bool,
}

pub(crate) struct Inner {
    pub queue: queue::Queue,
    pub builds: HashMap<String, Live>,
    /// idempotencyToken → (when, build id).
    pub tokens: HashMap<String, (Instant, String)>,
    /// Batches running now, by batch id.
    pub batches: HashMap<String, BatchHandle>,
    /// StartBuildBatch's idempotencyToken → (when, batch id).
    pub batch_tokens: HashMap<String, (Instant, String)>,
    /// Batch builds waiting in `queue` for a slot: told when they have one.
    pub slot_waiters: HashMap<String, tokio::sync::oneshot::Sender<()>>,
    pub shutting_down: bool,
}

/// The server's state, shared by every request.
pub struct AppState {
    pub(crate) addr: SocketAddr,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) secrets: SecretsFile,
    pub(crate) region: String,
    pub(crate) engine: Engine,
    pub(crate) history: HistoryStore,
    pub(crate) store: Arc<ServerStore>,
    pub(crate) roots: localbuild_sources::Roots,
    pub(crate) docker_host_access: bool,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) pipelines: pipeline::Live,
    /// The console's sessions and CSRF tokens.
    pub(crate) console: console::Sessions,
    /// The local AWS services (SSM, Secrets Manager, STS), here and on builds' endpoints.
    pub(crate) aws: Arc<aws::Aws>,
}

impl AppState {
    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

/// One call's context: the shared state and the region its ARNs use.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) state: Arc<AppState>,
    pub(crate) region: String,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Bind the listening socket and set up the engine.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let store = Arc::new(ServerStore::new(config.history.clone()));
        let runtime = config.runtime.clone();
        let engine = Engine::new(config.runtime, store.clone());
        let aws = Arc::new(aws::Aws {
            s3: localbuild_aws::s3::S3::new(
                config.roots.s3_root.clone(),
                config.history.root().join("tmp").join("s3"),
            ),
            store: localbuild_aws::params::Store::new(
                config.history.db().clone(),
                config.secrets.clone(),
            ),
            ids: localbuild_aws::sts::Identities::new(
                config.credentials.clone().unwrap_or_default(),
            ),
            open: config.credentials.is_none(),
            region: config.region.clone(),
        });
        let state = Arc::new(AppState {
            aws,
            roots: config.roots.clone(),
            docker_host_access: config.docker_host_access,
            addr,
            credentials: config.credentials,
            allowed_hosts: config.allowed_hosts,
            secrets: config.secrets,
            region: config.region,
            engine,
            history: config.history,
            store,
            inner: Mutex::new(Inner {
                queue: queue::Queue::new(config.max_concurrent_builds),
                builds: HashMap::new(),
                tokens: HashMap::new(),
                batches: HashMap::new(),
                batch_tokens: HashMap::new(),
                slot_waiters: HashMap::new(),
                shutting_down: false,
            }),
            runtime,
            pipelines: pipeline::Live::default(),
            console: console::Sessions::default(),
        });
        Ok(Server { listener, state })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// Serve until `shutdown` completes; then stop every build, wait for them to be recorded
    /// STOPPED, and return.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let state = self.state.clone();
        // Executions a killed process left InProgress end Failed; then watching resumes.
        pipeline::exec::recover(&self.state);
        tokio::spawn(pipeline::exec::watch(self.state.clone()));
        let app = Router::new()
            .route("/", post(api).get(console::home))
            .merge(console::routes())
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                guard::guard,
            ))
            .with_state(self.state);
        use axum::serve::ListenerExt;
        // Small answers go out at once (no delayed-ACK stall between head and body).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            codebuild::stop_all(&state).await;
        })
        .await?;
        Ok(())
    }
}

/// Bind and serve until `shutdown` (see [`Server`] to learn the bound address first).
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Server::bind(config).await?.run(shutdown).await
}

async fn api(
    AxState(state): AxState<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // `guard` has read the body within the limit already.
    let body = match body {
        Ok(b) => b,
        Err(e) => return ApiError::Serialization(e.body_text()).into_response(),
    };
    if let Some(answer) = state.aws.call(&method, &uri, &headers, &body).await {
        return answer;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let region = match auth::check(
        state.credentials.as_ref(),
        &method,
        &uri,
        &headers,
        target.as_deref(),
        &body,
    ) {
        Ok(r) => r.unwrap_or_else(|| state.region.clone()),
        Err(e) => return e.into_response(),
    };
    protocol::call(Ctx { state, region }, target.as_deref(), &body).await
}
