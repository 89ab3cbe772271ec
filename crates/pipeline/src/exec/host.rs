//! What the executor needs from outside the pipeline crate, as small traits the server
//! implements: starting a CodeBuild build or batch for an action and awaiting it
//! ([`Builds`]: the build service's `BuildTicket` and the engine's `BatchHandle`), deploying
//! to an ECS service and pulling an image from the local ECR registry ([`Deploys`]). The
//! history documents are the store's `Db` itself (`localbuild-store`, as the build service
//! uses it); the executor's own state is [`Executor`](super::Executor).

use localbuild_engine::batch::BatchHandle;
use localbuild_service::BuildTicket;
use localbuild_service::projects::{EnvVar, PipelineSource};

/// A build a pipeline's CodeBuild action asks for, in the build service's types.
pub struct PipelineBuild {
    /// `ProjectName`.
    pub project: String,
    /// The unpacked input artifacts (the build's `CODEPIPELINE` sources) and the pipeline.
    pub source: PipelineSource,
    /// `EnvironmentVariables`.
    pub env: Vec<EnvVar>,
}

/// Why a build did not start: CodeBuild's error type and message, as StartBuild answers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub aws_type: String,
    pub message: String,
}

/// Builds for CodeBuild actions (the server: StartBuild's and StartBuildBatch's paths into
/// the build service).
#[async_trait::async_trait]
pub trait Builds: Send + Sync {
    /// Start a build (StartBuild's path, with the unpacked artifact as a `CODEPIPELINE`
    /// source); its ticket.
    fn start(&self, region: &str, build: PipelineBuild) -> Result<BuildTicket, StartError>;
    /// Start a batch build (`BatchEnabled`; StartBuildBatch's path).
    async fn start_batch(
        &self,
        region: &str,
        build: PipelineBuild,
        combine: bool,
    ) -> Result<BatchHandle, StartError>;
    /// Stop a build soon (an abandoned action's).
    fn stop_soon(&self, id: &str);
    /// Whether the server is shutting down (the watcher ends).
    fn shutting_down(&self) -> bool;
    /// A build's page (`externalExecutionUrl`).
    fn url(&self, id: &str) -> String;
}

/// An ECS deploy: `imagedefinitions.json`'s entries for one service.
pub struct EcsDeploy {
    pub cluster: String,
    pub service: String,
    /// (container name, image).
    pub images: Vec<(String, String)>,
    /// `codepipeline/<pipeline>`.
    pub by: String,
}

/// What an ECS deploy made.
pub struct EcsDeployed {
    /// The PRIMARY deployment's id.
    pub deployment: String,
    /// `family:revision`.
    pub task_definition: String,
    /// The task, unless the desired count is 0.
    pub task: Option<EcsTask>,
}

/// The task a deploy started.
pub struct EcsTask {
    pub id: String,
    /// The container's name.
    pub container: String,
    /// (container port as `8080/tcp`, host port on 127.0.0.1).
    pub ports: Vec<(String, u16)>,
    /// Where it answers (the first port's address).
    pub address: Option<String>,
}

/// ECS services and the local ECR registry (the server's `ecs::services` and `localbuild-aws`).
#[async_trait::async_trait]
pub trait Deploys: Send + Sync {
    /// Register a task definition revision with the images and roll it out.
    async fn deploy(&self, deploy: EcsDeploy) -> Result<EcsDeployed, String>;
    /// Pull `uri` from the local registry when it is an ECR URI of this account and region,
    /// tagged under `uri`: the image to run (`Ok(None)`: not such a URI, run it as named).
    async fn pull_from_local_ecr(&self, uri: &str) -> Result<Option<String>, String>;
}
