//! Deploy `ECS`: `imagedefinitions.json`'s images become a new revision of the service's task
//! definition and a new deployment of the service (through [`Deploys`]: the server's
//! `ecs::services::deploy`), whose task
//! is a local, labelled container replacing the service's previous one. The service outlives
//! the pipeline, as in AWS; `aws ecs update-service` / `delete-service` manage it.
//! An ECR URI of the local account and region is pulled from the local registry first and
//! tagged under that URI.

use super::super::*;

/// Deploy `ECS`.
pub(crate) struct EcsDeploy;

#[async_trait::async_trait]
impl Provider for EcsDeploy {
    async fn run(&self, job: Job) -> ActionResult {
        job.deploy().await
    }
}

impl Job {
    async fn deploy(self) -> ActionResult {
        let cluster = self
            .action
            .config("ClusterName")
            .unwrap_or_default()
            .to_owned();
        let service = self
            .action
            .config("ServiceName")
            .unwrap_or_default()
            .to_owned();
        let file = self
            .action
            .config("FileName")
            .unwrap_or("imagedefinitions.json")
            .to_owned();
        let Some((name, zip)) = self.inputs.first().cloned() else {
            return ActionResult::failed(
                "JobFailed",
                "The deploy action has no input artifact".into(),
            );
        };
        let f = file.clone();
        let text = tokio::task::spawn_blocking(move || read_zip_entry(&zip, &f))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("The input artifact {name} has no {file}: {e}"),
                );
            }
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ImageDef {
            name: Option<String>,
            image_uri: String,
        }
        let mut images: Vec<(String, String)> = match serde_json::from_str::<Vec<ImageDef>>(&text) {
            Ok(defs) if !defs.is_empty() => defs
                .into_iter()
                .map(|d| (d.name.unwrap_or_default(), d.image_uri))
                .collect(),
            _ => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Invalid {file}: expected a JSON list of {{\"name\", \"imageUri\"}}"),
                );
            }
        };
        // An ECR URI of this account and region comes from the local registry.
        for (_, uri) in &mut images {
            match self.ctx.exec.deploys.pull_from_local_ecr(uri).await {
                Ok(Some(run)) => *uri = run,
                Ok(None) => {}
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Could not pull {uri} from the local ECR registry: {e}"),
                    );
                }
            }
        }
        let image = images[0].1.clone();
        let deployed = self
            .ctx
            .exec
            .deploys
            .deploy(crate::exec::EcsDeploy {
                cluster: cluster.clone(),
                service: service.clone(),
                images,
                by: format!("codepipeline/{}", self.pipeline),
            })
            .await;
        match deployed {
            Ok(v) => {
                let task = v.task.as_ref();
                let ports: Vec<String> = task
                    .map(|t| t.ports.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|(c, h)| format!("{c} on 127.0.0.1:{h}"))
                    .collect();
                let summary = match task {
                    Some(t) => format!(
                        "Deployed {image} to ECS service {cluster}/{service} (deployment {}, task {} as container {}){}",
                        v.deployment,
                        t.id,
                        t.container,
                        if ports.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", ports.join(", "))
                        }
                    ),
                    None => format!(
                        "Registered {} for ECS service {cluster}/{service}; its desired count is 0, so no task runs",
                        v.task_definition
                    ),
                };
                ActionResult {
                    ok: true,
                    summary: Some(summary),
                    external_id: Some(v.deployment.clone()),
                    external_url: task.and_then(|t| t.address.clone()),
                    ..Default::default()
                }
            }
            Err(e) => ActionResult::failed(
                "JobFailed",
                format!("Could not deploy {image} to ECS service {cluster}/{service}: {e}"),
            ),
        }
    }
}
