//! Git sources (`CodeStarSourceConnection`, `GitHub` version 1, `CodeCommit`): the branch's head
//! (or the pinned commit) checked out under the git root and zipped as the output artifact.

use super::super::*;

/// Git sources.
pub(crate) struct GitSource;

#[async_trait::async_trait]
impl Provider for GitSource {
    async fn run(&self, job: Job) -> ActionResult {
        if let Some(arn) = job.action.config("ConnectionArn") {
            let known = job
                .ctx
                .exec
                .db
                .get_doc(CONNECTION_DOC, arn)
                .ok()
                .flatten()
                .is_some_and(|d| serde_json::from_str::<Value>(&d).is_ok());
            if !known {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Connection {arn} is not available"),
                );
            }
        }
        let roots = job.ctx.exec.roots.clone();
        let region = job.ctx.region.clone();
        tokio::task::spawn_blocking(move || job.source(&roots, &region))
            .await
            .unwrap_or_else(|e| ActionResult::failed("JobFailed", e.to_string()))
    }
}

impl Job {
    fn source(self, roots: &localbuild_sources::Roots, region: &str) -> ActionResult {
        let branch = self.action.branch().to_owned();
        let (_, location) = self.action.repository(region);
        let config = |k: &str| self.action.config(k).map(|v| (k.to_owned(), v.to_owned()));
        // The output variables of each provider besides the commit's.
        let mut vars: Vec<(String, String)> = match self.action.action_type_id.provider.as_str() {
            "CodeCommit" => config("RepositoryName").into_iter().collect(),
            "GitHub" => vec![],
            _ => [config("FullRepositoryId"), config("ConnectionArn")]
                .into_iter()
                .flatten()
                .collect(),
        };
        let repo = match repo_of(&self.action, roots, region) {
            Ok(r) => r,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        let tmp = match scratch(&self.ctx.exec) {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        let dest = tmp.path().join("src");
        let (branch, version) = match &self.pin {
            Some((b, c)) => (b.clone(), c.clone()),
            None => (branch.clone(), branch),
        };
        let co = match localbuild_sources::checkout(&repo, Some(&version), None, &dest) {
            Ok(c) => c,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Could not fetch branch {branch} of {location}: {e}"),
                );
            }
        };
        let (message, date) = commit_info(&co.dir);
        let Some(output) = self.action.outputs().next().map(str::to_owned) else {
            return ActionResult::failed(
                "JobFailed",
                "The source action has no output artifact".into(),
            );
        };
        let zip = match self.artifact_path(&output) {
            Ok(p) => p,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        if let Err(e) = zip_dir(&co.dir, &zip) {
            return ActionResult::failed(
                "JobFailed",
                format!("Could not write the artifact {}: {e}", zip.display()),
            );
        }
        vars.extend([
            ("CommitId".to_owned(), co.commit.clone()),
            ("CommitMessage".to_owned(), message.clone()),
            ("BranchName".to_owned(), branch.clone()),
            ("AuthorDate".to_owned(), date.clone()),
            ("CommitterDate".to_owned(), date),
        ]);
        if self.action.action_type_id.provider == "GitHub" {
            vars.extend([
                (
                    "CommitUrl".to_owned(),
                    format!("{location}/commit/{}", co.commit),
                ),
                (
                    "RepositoryName".to_owned(),
                    self.action.config("Repo").unwrap_or_default().to_owned(),
                ),
            ]);
        }
        ActionResult {
            ok: true,
            summary: Some(message.clone()),
            external_id: Some(co.commit.clone()),
            revision: Some(co.commit.clone()),
            outputs: vec![(output.clone(), zip)],
            variables: vars,
            source_revision: Some(json!({
                "actionName": self.action.name,
                "revisionId": co.commit,
                "revisionSummary": message,
            })),
            artifact_revision: Some(json!({
                "name": output,
                "revisionId": co.commit,
                "revisionSummary": message,
                "created": now(),
            })),
            ..Default::default()
        }
    }
}

/// The local repository a source action watches.
pub(crate) fn repo_of(
    action: &Action,
    roots: &localbuild_sources::Roots,
    region: &str,
) -> Result<PathBuf, String> {
    use localbuild_sources::Resolved;
    let (kind, location) = action.repository(region);
    match localbuild_sources::resolve(kind, &location, roots) {
        Ok(Resolved::Git { repo }) => Ok(repo),
        Ok(_) => Err(format!("{location} is not a git repository")),
        Err(e) => Err(e.to_string()),
    }
}

/// The head commit's message and author date (git's own CLI, no outside `GIT_*`).
pub(crate) fn commit_info(dir: &Path) -> (String, String) {
    let mut cmd = std::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%aI%n%B"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let (date, msg) = text.split_once('\n').unwrap_or((&text, ""));
            (msg.trim().to_owned(), date.trim().to_owned())
        }
        _ => (String::new(), String::new()),
    }
}
