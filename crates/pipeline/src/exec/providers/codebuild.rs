//! Build / Test `CodeBuild`: a build (or, with `BatchEnabled`, a batch) of `ProjectName` through
//! the StartBuild path into the build service, awaited on its ticket (no polling), its input artifacts as sources, its artifacts stored as output artifacts.

use super::super::*;
use localbuild_engine::record::Status;
use localbuild_service::projects::{EnvVar, PipelineSource};

/// Build / Test `CodeBuild`.
pub(crate) struct CodeBuild;

#[async_trait::async_trait]
impl Provider for CodeBuild {
    async fn run(&self, job: Job) -> ActionResult {
        job.build().await
    }
}

impl Job {
    async fn build(self) -> ActionResult {
        let primary = self
            .action
            .config("PrimarySource")
            .map(str::to_owned)
            .or_else(|| self.action.inputs().next().map(str::to_owned))
            .unwrap_or_default();
        if !self.inputs.iter().any(|(n, _)| *n == primary) {
            return ActionResult::failed(
                "JobFailed",
                format!("The input artifact {primary} is missing"),
            );
        }
        let tmp = match scratch(&self.ctx.exec) {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        // Every input artifact unpacked: the primary as the source, the others as secondary
        // sources named after their artifact (`CODEBUILD_SRC_DIR_<name>`), as CodeBuild does.
        let mut dir = tmp.path().join("src");
        let mut location = String::new();
        let mut secondary = vec![];
        for (i, (name, zip)) in self.inputs.iter().enumerate() {
            let d = tmp.path().join(format!("input-{i}"));
            if *name == primary {
                dir = d.clone();
                // The artifact in the store, as CodeBuild names a pipeline build's source.
                location = match zip.strip_prefix(&self.ctx.exec.roots.s3_root) {
                    Ok(key) => format!("arn:aws:s3:::{}", key.display()),
                    Err(_) => zip.display().to_string(),
                };
            } else {
                secondary.push((name.clone(), d.clone()));
            }
            let z = zip.clone();
            match tokio::task::spawn_blocking(move || unzip(&z, &d)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot unpack {}: {e}", zip.display()),
                    );
                }
                Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
            }
        }
        let env: Vec<EnvVar> = self
            .action
            .config("EnvironmentVariables")
            .and_then(|e| serde_json::from_str::<Vec<EnvVarDecl>>(e).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| EnvVar {
                name: v.name,
                value: v.value,
                kind: v.kind,
            })
            .collect();
        let project = self
            .action
            .config("ProjectName")
            .unwrap_or_default()
            .to_owned();
        let source = PipelineBuild {
            project,
            source: PipelineSource {
                dir,
                location,
                secondary,
                pipeline: self.pipeline.clone(),
            },
            env,
        };
        let flag = |k| {
            self.action
                .config(k)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        if flag("BatchEnabled") {
            let combine = flag("CombineArtifacts");
            // `tmp` (the unpacked input) lives until the batch has ended.
            return self.batch_build(source, combine).await;
        }
        let ticket = match self.ctx.exec.builds.start(&self.ctx.region, source) {
            Ok(t) => t,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Error calling startBuild: {e} (Service: AWSCodeBuild; Status Code: 400; Error Code: {}; Request ID: {})",
                        e.aws_type,
                        uuid::Uuid::new_v4()
                    ),
                );
            }
        };
        let id = ticket.id().to_owned();
        let _ = self.tx.send(Msg::Build(self.at, id.clone()));
        let Some(finished) = ticket.finished().await else {
            return ActionResult::failed("JobFailed", format!("Build {id} vanished"));
        };
        let (build, outcome) = (finished.record, finished.outcome);
        let url = self.ctx.exec.builds.url(&id);
        let mut result = ActionResult {
            external_id: Some(id.clone()),
            external_url: Some(url),
            ..Default::default()
        };
        if build.build_status != Status::Succeeded {
            let mut message = format!(
                "Build terminated with state: {}",
                build.build_status.as_str()
            );
            if let Some(p) = build.phases.iter().find(|p| {
                matches!(
                    p.phase_status,
                    Some(Status::Failed | Status::Fault | Status::TimedOut | Status::Stopped)
                )
            }) {
                let ctx = p.contexts.iter().flatten().next();
                message.push_str(&format!(
                    ". Phase: {}, Code: {}, Message: {}",
                    p.phase_type.as_str(),
                    ctx.map(|c| c.status_code.as_str()).unwrap_or_default(),
                    ctx.map(|c| c.message.as_str()).unwrap_or_default()
                ));
            }
            result.summary = Some(message.clone());
            result.error = Some(("JobFailed".into(), message));
            return result;
        }
        result.ok = true;
        result.summary = Some(format!("Build {id} succeeded"));
        result.variables = build
            .exported_environment_variables
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        // One output artifact is the build's primary artifacts; several are its secondary
        // artifacts whose identifiers are their names.
        let outputs: Vec<String> = self.action.outputs().map(str::to_owned).collect();
        for output in &outputs {
            let made = if outputs.len() == 1 {
                outcome.as_ref().and_then(|o| o.artifacts.first().cloned())
            } else {
                build
                    .secondary_artifacts
                    .iter()
                    .find(|a| a.artifact_identifier.as_deref() == Some(output))
                    .map(|a| PathBuf::from(&a.location))
            };
            let Some(made) = made else {
                let needs = if outputs.len() == 1 {
                    "the buildspec needs an artifacts section".to_owned()
                } else {
                    format!(
                        "with several output artifacts, the buildspec needs a secondary-artifacts entry named {output}"
                    )
                };
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Build {id} produced no artifacts for the output artifact {output} ({needs})"
                    ),
                );
            };
            let dest = match self.artifact_path(output) {
                Ok(p) => p,
                Err(e) => return ActionResult::failed("JobFailed", e),
            };
            match store_artifact(made, dest.clone()).await {
                Ok(()) => result.outputs.push((output.clone(), dest)),
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the build's artifact: {e}"),
                    );
                }
            }
        }
        result
    }

    /// `BatchEnabled`: a batch build (StartBuildBatch's path). The output artifact is the
    /// combined artifacts with `CombineArtifacts`, else the artifacts of the task whose
    /// identifier is the output artifact's name.
    async fn batch_build(&self, input: PipelineBuild, combine: bool) -> ActionResult {
        let handle = match self
            .ctx
            .exec
            .builds
            .start_batch(&self.ctx.region, input, combine)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Error calling startBuildBatch: {e} (Service: AWSCodeBuild; Status Code: 400; Error Code: {}; Request ID: {})",
                        e.aws_type,
                        uuid::Uuid::new_v4()
                    ),
                );
            }
        };
        let id = handle.id.clone();
        let _ = self.tx.send(Msg::Build(self.at, id.clone()));
        let outcome = handle.outcome().await;
        let name = |st: Status| st.as_str();
        let status = name(outcome.batch.build_batch_status);
        let mut result = ActionResult {
            external_id: Some(id.clone()),
            external_url: Some(format!(
                "https://console.aws.amazon.com/codesuite/codebuild/projects/{}/batch/{id}",
                outcome.batch.project_name
            )),
            ..Default::default()
        };
        if status != "SUCCEEDED" {
            let mut message = format!("Build batch terminated with state: {status}");
            if let Some(t) = outcome
                .tasks
                .iter()
                .find(|t| !t.ignore_failure && t.status != Status::Succeeded)
            {
                message.push_str(&format!(
                    ". Build: {}, Status: {}",
                    t.identifier,
                    name(t.status)
                ));
            }
            result.summary = Some(message.clone());
            result.error = Some(("JobFailed".into(), message));
            return result;
        }
        result.ok = true;
        result.summary = Some(format!("Build batch {id} succeeded"));
        for output in self.action.outputs().map(str::to_owned).collect::<Vec<_>>() {
            let made = if combine {
                outcome.artifacts.clone()
            } else {
                outcome
                    .tasks
                    .iter()
                    .find(|t| t.identifier == output)
                    .and_then(|t| t.outcome.as_ref()?.artifacts.first().cloned())
            };
            let Some(made) = made else {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Build batch {id} produced no artifacts for the output artifact {output} (with CombineArtifacts false, an output artifact takes the artifacts of the build whose identifier is its name)"
                    ),
                );
            };
            let dest = match self.artifact_path(&output) {
                Ok(p) => p,
                Err(e) => return ActionResult::failed("JobFailed", e),
            };
            match store_artifact(made, dest.clone()).await {
                Ok(()) => result.outputs.push((output, dest)),
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the batch's artifact: {e}"),
                    );
                }
            }
        }
        result
    }
}
