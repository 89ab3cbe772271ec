//! The server's side of the executor's traits (`localbuild_pipeline::exec::{Builds,
//! Deploys}`): a CodeBuild action's build through StartBuild's path
//! (`codebuild::start_for_pipeline`) or StartBuildBatch's (`batch::start_for_pipeline`), the
//! ECS deploy through `ecs::services::deploy`, ECR images pulled from the local registry.
//! They hold the server's state weakly (the state owns the executor).

use crate::codebuild;
use crate::ecs::services::{self, DeployInput};
use crate::error::ApiError;
use crate::{AppState, Ctx};
use localbuild_engine::batch::BatchHandle;
use localbuild_pipeline::exec::{
    Builds, Deploys, EcsDeploy, EcsDeployed, EcsTask, PipelineBuild, StartError,
};
use localbuild_service::BuildTicket;
use std::sync::{Arc, Weak};

/// The server, as the executor sees it.
pub(crate) struct Hooks(pub Weak<AppState>);

impl Hooks {
    fn state(&self) -> Result<Arc<AppState>, String> {
        self.0
            .upgrade()
            .ok_or_else(|| "the server has stopped".to_owned())
    }

    fn ctx(&self, region: &str) -> Result<Ctx, StartError> {
        let state = self.state().map_err(|message| StartError {
            aws_type: "ServiceUnavailableException".into(),
            message,
        })?;
        Ok(Ctx {
            state,
            region: region.to_owned(),
        })
    }
}

fn start_error(e: ApiError) -> StartError {
    StartError {
        aws_type: e.aws_type().to_owned(),
        message: e.to_string(),
    }
}

#[async_trait::async_trait]
impl Builds for Hooks {
    fn start(&self, region: &str, build: PipelineBuild) -> Result<BuildTicket, StartError> {
        let ctx = self.ctx(region)?;
        codebuild::start_for_pipeline(&ctx, &build.project, build.source, build.env)
            .map_err(start_error)
    }

    async fn start_batch(
        &self,
        region: &str,
        build: PipelineBuild,
        combine: bool,
    ) -> Result<BatchHandle, StartError> {
        let ctx = self.ctx(region)?;
        crate::batch::start_for_pipeline(&ctx, &build.project, build.source, build.env, combine)
            .await
            .map_err(start_error)
    }

    fn stop_soon(&self, id: &str) {
        if let Ok(state) = self.state() {
            state.builds.stop_soon(id);
        }
    }

    fn shutting_down(&self) -> bool {
        self.state().map_or(true, |s| s.builds.shutting_down())
    }

    fn url(&self, id: &str) -> String {
        match self.state() {
            Ok(state) => crate::console::build_url(state.addr, id),
            Err(_) => String::new(),
        }
    }
}

#[async_trait::async_trait]
impl Deploys for Hooks {
    async fn deploy(&self, deploy: EcsDeploy) -> Result<EcsDeployed, String> {
        let state = self.state()?;
        let v = services::deploy(
            &state.ecs,
            DeployInput {
                cluster: &deploy.cluster,
                service: &deploy.service,
                images: deploy.images,
                by: deploy.by,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(EcsDeployed {
            deployment: v.service.deployment.id.clone(),
            task_definition: v.service.task_definition.clone(),
            task: v.service.task.as_ref().map(|t| EcsTask {
                id: t.id.clone(),
                container: t.container.clone(),
                ports: t.ports.clone(),
                address: t.address(),
            }),
        })
    }

    async fn pull_from_local_ecr(&self, uri: &str) -> Result<Option<String>, String> {
        let state = self.state()?;
        let Some(ecr) = state.aws.ecr.clone() else {
            return Ok(None);
        };
        localbuild_aws::ecr::EcrImages::hook(ecr, &state.aws.region)
            .pull(state.runtime.as_ref(), uri, &mut |_| {})
            .await
            .map_err(|e| e.to_string())
    }
}
