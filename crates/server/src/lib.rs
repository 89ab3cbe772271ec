//! `localbuild serve`: a local CodeBuild, CloudWatch Logs, CodePipeline, CodeStar Connections
//! and ECS endpoint, plus the local AWS services and the web console, for the unmodified `aws`
//! CLI and SDKs (`AWS_ENDPOINT_URL=http://127.0.0.1:4599`). This crate is the wire protocols
//! only: routing, codecs, SigV4, the error map; the domains are `localbuild_service` (builds,
//! projects), `localbuild_pipeline`, `localbuild_aws` and `localbuild_console`.
//!
//! * [`protocol`] — AWS JSON 1.1 (`POST /`, `X-Amz-Target`), dispatch by target prefix.
//! * [`error`] — the one mapping from typed errors to `{"__type", "message"}` and a status.
//! * [`auth`] — SigV4 verification with `--credentials`, else open.
//! * [`codebuild`] — projects and builds: CodeBuild's JSON over the build service
//!   (`localbuild_service`: projects, queue, idempotency tokens, live builds).
//! * [`batch`] — batch builds (StartBuildBatch and the other `*BuildBatch*` operations).
//! * [`aws`] — the local AWS services builds use (S3, STS, IAM, SSM, Secrets Manager, ECR), here
//!   and on each build's own endpoint ([`aws::endpoint`]).
//! * [`tags`] — resource tag rules and CodePipeline's tag lists.
//! * [`logs`] — the build logs as CloudWatch Logs groups, streams and events.
//! * [`pipeline`] — CodePipeline's wire format over `localbuild_pipeline` (which holds the
//!   declarations, the executor and the source watcher), the executor's hooks, and CodeStar
//!   Connections / CodeConnections.
//! * [`ecs`] — ECS clusters, services and task definitions: the services the pipeline's ECS
//!   deploy action runs as containers, managed with `aws ecs`.
//! * [`console`] — the web console's HTTP side: its routes (`GET` pages on the same port), cookies
//!   and headers in, responses out, over `localbuild_console` (pages, sessions, buttons).
//! * [`guard`] — what every request passes first (`Host`, head and body limits) and every
//!   answer gets (AWS error bodies, framing protection).
//!
//! Builds go through one [`BuildService`] (its own crate), which gives a build its id and
//! number the moment `StartBuild` answers, even while it waits in the queue. This crate is
//! the only one that depends on axum.

pub mod auth;
pub mod aws;
pub mod batch;
pub mod codebuild;
pub mod console;
pub mod ecs;
pub mod error;
pub mod guard;
pub mod logs;
pub mod pipeline;
pub mod protocol;
pub mod tags;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use error::ApiError;
use localbuild_engine::runtime::Runtime;
use localbuild_engine::secrets::SecretsFile;
use localbuild_service::BuildService;
use localbuild_sigv4::Credentials;
use localbuild_store::HistoryStore;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// The account id in every ARN and message, and the one STS answers (12 digits,
    /// [`localbuild_engine::check_account_id`]; `serve --account-id`).
    pub account_id: String,
    pub runtime: Arc<dyn Runtime>,
    pub history: HistoryStore,
    /// Where repository locations resolve (`<git_root>/OWNER/REPO`, else `<git_root>/REPO`) and
    /// S3 locations (`<s3_root>/BUCKET/KEY`).
    pub roots: localbuild_sources::Roots,
    /// Privileged builds get this machine's Docker daemon itself instead of a guarded Docker
    /// API (`serve --docker-host-access`).
    pub docker_host_access: bool,
    /// ECR's repositories and local registry (`None`: no ECR), shared with the Docker runtime's
    /// registry map so a build's `docker push` of an ECR URI reaches the same registry.
    pub ecr: Option<Arc<localbuild_aws::ecr::Ecr>>,
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

/// The server's state, shared by every request.
pub struct AppState {
    pub(crate) addr: SocketAddr,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) region: String,
    /// The account of every ARN and message ([`Config::account_id`]).
    pub(crate) account_id: String,
    /// Queue, idempotency tokens, live builds and batches.
    pub(crate) builds: Arc<BuildService>,
    /// The projects, and the step from a project and overrides to a build's request.
    pub(crate) projects: localbuild_service::projects::Projects,
    pub(crate) history: HistoryStore,
    pub(crate) runtime: Arc<dyn Runtime>,
    /// The pipelines' executor (running executions, the watcher's wake-up).
    pub(crate) pipelines: Arc<localbuild_pipeline::exec::Executor>,
    /// The console's sessions and CSRF tokens.
    pub(crate) console: console::Sessions,
    /// The local AWS services (SSM, Secrets Manager, STS), here and on builds' endpoints.
    pub(crate) aws: Arc<aws::Aws>,
    /// ECS services: one change at a time.
    pub(crate) ecs: ecs::services::Ecs,
}

/// One call's context: the shared state and the region its ARNs use.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) state: Arc<AppState>,
    pub(crate) region: String,
}

impl Ctx {
    /// The account of this call's ARNs and messages.
    pub(crate) fn account(&self) -> &str {
        &self.state.account_id
    }
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
        let runtime = config.runtime.clone();
        let builds = BuildService::new(
            config.runtime,
            config.history.clone(),
            config.max_concurrent_builds,
        );
        let aws = Arc::new(aws::Aws {
            s3: localbuild_aws::s3::S3::new(
                config.roots.s3_root.clone(),
                config.history.root().join("tmp").join("s3"),
            ),
            store: localbuild_aws::params::Store::new(
                config.history.db().clone(),
                config.secrets.clone(),
            ),
            iam: localbuild_aws::iam::Iam::new(config.history.db().clone())
                .in_account(&config.account_id),
            ids: localbuild_aws::sts::Identities::new(
                config.credentials.clone().unwrap_or_default(),
            )
            .in_account(&config.account_id),
            open: config.credentials.is_none(),
            region: config.region.clone(),
            ecr: config.ecr.clone(),
        });
        if let Some(ecr) = aws.ecr.clone() {
            let _ = tokio::task::spawn_blocking(move || ecr.stop_stale()).await;
        }
        let ecs = ecs::services::Ecs::new(config.history.db().clone(), runtime.clone());
        let projects = localbuild_service::projects::Projects::new(
            config.history.clone(),
            localbuild_service::projects::ProjectsConfig {
                docker_host_access: config.docker_host_access,
                secrets_file: config.secrets,
                local_aws: Some(localbuild_engine::local_aws::LocalAwsHook(Arc::new(
                    aws::endpoint::BuildEndpoints::new(&aws),
                ))),
                ecr: aws.ecr.clone(),
                ..localbuild_service::projects::ProjectsConfig::new(
                    config.roots.clone(),
                    &config.account_id,
                    aws.store.clone(),
                )
            },
        );
        let state = Arc::new_cyclic(|weak| AppState {
            projects,
            pipelines: pipeline::executor(weak, &config.history, &config.roots),
            aws,
            addr,
            credentials: config.credentials,
            allowed_hosts: config.allowed_hosts,
            region: config.region,
            account_id: config.account_id,
            builds,
            history: config.history,
            runtime,
            console: console::Sessions::default(),
            ecs,
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
        let ecr = self.state.aws.ecr.clone();
        // Executions a killed process left InProgress end Failed; then watching resumes.
        pipeline::exec::recover(self.state.history.db());
        tokio::spawn(pipeline::exec::watch(self.state.pipelines.clone()));
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
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.builds.stop_all().await;
        })
        .await;
        // The registry ends with the server (a killed server's is stopped by the next start).
        if let Some(ecr) = ecr {
            let _ = tokio::task::spawn_blocking(move || ecr.shutdown()).await;
        }
        served?;
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
