//! Source `S3` (a zip in the S3 store, copied as the output artifact) and Deploy `S3` (the input
//! artifact unpacked or copied into a bucket).

use super::super::*;

/// Source `S3`.
pub(crate) struct S3Source;

/// Deploy `S3`.
pub(crate) struct S3Deploy;

#[async_trait::async_trait]
impl Provider for S3Source {
    async fn run(&self, job: Job) -> ActionResult {
        let s3 = job.ctx.exec.roots.s3_root.clone();
        tokio::task::spawn_blocking(move || job.s3_source(&s3))
            .await
            .unwrap_or_else(|e| ActionResult::failed("JobFailed", e.to_string()))
    }
}

#[async_trait::async_trait]
impl Provider for S3Deploy {
    async fn run(&self, job: Job) -> ActionResult {
        let s3 = job.ctx.exec.roots.s3_root.clone();
        tokio::task::spawn_blocking(move || job.s3_deploy(&s3))
            .await
            .unwrap_or_else(|e| ActionResult::failed("JobFailed", e.to_string()))
    }
}

impl Job {
    fn s3_source(self, s3: &Path) -> ActionResult {
        let bucket = self.action.config("S3Bucket").unwrap_or_default();
        let key = self.action.config("S3ObjectKey").unwrap_or_default();
        let Some(path) = s3_path(s3, bucket, Some(key)) else {
            return ActionResult::failed(
                "JobFailed",
                format!("Invalid object s3://{bucket}/{key}"),
            );
        };
        let Some(version) = s3_version(&path) else {
            return ActionResult::failed(
                "JobFailed",
                format!(
                    "The object s3://{bucket}/{key} does not exist (localbuild looks for {})",
                    path.display()
                ),
            );
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return ActionResult::failed("JobFailed", format!("{}: {e}", path.display())),
        };
        if zip::ZipArchive::new(std::io::Cursor::new(&bytes)).is_err() {
            return ActionResult::failed(
                "JobFailed",
                format!("The object s3://{bucket}/{key} is not a zip file"),
            );
        }
        let Some(output) = self.action.outputs().next().map(str::to_owned) else {
            return ActionResult::failed(
                "JobFailed",
                "The source action has no output artifact".into(),
            );
        };
        let dest = match self.artifact_path(&output) {
            Ok(p) => p,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        let written = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&dest, &bytes));
        if let Err(e) = written {
            return ActionResult::failed("JobFailed", format!("{}: {e}", dest.display()));
        }
        let etag = format!("{:016x}", fnv64(&bytes));
        let summary = format!("Object s3://{bucket}/{key} (version {version})");
        ActionResult {
            ok: true,
            summary: Some(summary.clone()),
            external_id: Some(version.clone()),
            revision: Some(version.clone()),
            outputs: vec![(output.clone(), dest)],
            variables: vec![
                ("ETag".to_owned(), etag),
                ("VersionId".to_owned(), version.clone()),
                ("BucketName".to_owned(), bucket.to_owned()),
                ("ObjectKey".to_owned(), key.to_owned()),
            ],
            source_revision: Some(json!({
                "actionName": self.action.name,
                "revisionId": version,
                "revisionSummary": summary,
            })),
            artifact_revision: Some(json!({
                "name": output,
                "revisionId": version,
                "revisionSummary": summary,
                "created": now(),
            })),
            ..Default::default()
        }
    }

    fn s3_deploy(self, s3: &Path) -> ActionResult {
        let bucket = self.action.config("BucketName").unwrap_or_default();
        let extract = !self
            .action
            .config("Extract")
            .is_some_and(|e| e.eq_ignore_ascii_case("false"));
        let key = self.action.config("ObjectKey").filter(|k| !k.is_empty());
        let Some((name, zip)) = self.inputs.first().cloned() else {
            return ActionResult::failed(
                "JobFailed",
                "The deploy action has no input artifact".into(),
            );
        };
        let Some(dest) = s3_path(s3, bucket, key) else {
            return ActionResult::failed("JobFailed", format!("Invalid bucket {bucket} or key"));
        };
        let done = if extract {
            scratch(&self.ctx.exec).and_then(|tmp| unzip_replacing(&zip, &dest, tmp.path()))
        } else {
            dest.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::copy(&zip, &dest).map(drop))
        };
        match done {
            Ok(()) => ActionResult {
                ok: true,
                summary: Some(format!(
                    "Deployed {name} to s3://{bucket}/{} ({})",
                    key.unwrap_or(""),
                    if extract {
                        "extracted"
                    } else {
                        "as one object"
                    }
                )),
                external_url: Some(format!("file://{}", dest.display())),
                ..Default::default()
            },
            Err(e) => ActionResult::failed(
                "JobFailed",
                format!("Could not deploy {name} to {}: {e}", dest.display()),
            ),
        }
    }
}
