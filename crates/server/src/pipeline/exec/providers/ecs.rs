//! Deploy `ECS`: the image named by `imagedefinitions.json` runs as a local, labelled container
//! replacing the service's previous one. An ECR URI of the local account and region is pulled
//! from the local registry first and tagged under that URI.

use super::super::*;

impl Job {
    pub(crate) async fn deploy(self) -> ActionResult {
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
            #[allow(dead_code)]
            name: Option<String>,
            image_uri: String,
        }
        let mut image = match serde_json::from_str::<Vec<ImageDef>>(&text) {
            Ok(defs) if !defs.is_empty() => defs[0].image_uri.clone(),
            _ => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Invalid {file}: expected a JSON list of {{\"name\", \"imageUri\"}}"),
                );
            }
        };
        // An ECR URI of this account and region comes from the local registry.
        if let Some(ecr) = self.ctx.state.aws.ecr.clone() {
            let source = localbuild_aws::ecr::EcrImages {
                ecr,
                region: self.ctx.state.aws.region.clone(),
            };
            let uri = image.clone();
            let located = tokio::task::spawn_blocking(move || {
                localbuild_engine::request::ImageSource::locate(&source, &uri)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            let pulled = match located {
                Ok(Some(p)) => self
                    .ctx
                    .state
                    .runtime
                    .pull_as(
                        &p.from,
                        Some((p.username.as_str(), p.password.as_str())),
                        &image,
                        &mut |_| {},
                    )
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string()),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            match pulled {
                Ok(Some(run)) => image = run,
                Ok(None) => {}
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Could not pull {image} from the local ECR registry: {e}"),
                    );
                }
            }
        }
        let label = format!("{cluster}/{service}");
        let safe: String = format!("{cluster}-{service}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let short: String = self.execution.chars().take(8).collect();
        let container = format!("localbuild-ecs-{safe}-{short}");
        match self
            .ctx
            .state
            .runtime
            .run_service(&image, &container, &label)
            .await
        {
            Ok(run) => {
                let ports: Vec<String> = run
                    .ports
                    .iter()
                    .map(|(c, h)| format!("{c} on 127.0.0.1:{h}"))
                    .collect();
                ActionResult {
                    ok: true,
                    summary: Some(format!(
                        "Deployed {image} to {label} as container {container}{}",
                        if ports.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", ports.join(", "))
                        }
                    )),
                    external_id: Some(run.id),
                    external_url: run
                        .ports
                        .first()
                        .map(|(_, h)| format!("http://127.0.0.1:{h}")),
                    ..Default::default()
                }
            }
            Err(e) => ActionResult::failed("JobFailed", format!("Could not deploy {image}: {e}")),
        }
    }
}
