//! The executor through its own API, without a server or Docker: a history database, S3 and
//! git roots in a temporary folder, and fakes of the traits the server implements.

use localbuild_engine::batch::BatchHandle;
use localbuild_pipeline::exec::{
    self, Builds, Ctx, Deploys, EcsDeploy, EcsDeployed, Executor, PIPELINE_DOC, PipelineBuild,
    StartError, Stored,
};
use localbuild_pipeline::machine::ExecStatus;
use localbuild_service::BuildTicket;
use localbuild_service::projects::EnvVar;
use localbuild_store::Db;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds the way a server answers that cannot start them: StartBuild's error. Remembers what
/// it was asked.
#[derive(Default)]
struct RefusingBuilds {
    asked: Mutex<Vec<Asked>>,
}

/// A start asked of [`RefusingBuilds`]: region, project, environment variables.
type Asked = (String, String, Vec<EnvVar>);

#[async_trait::async_trait]
impl Builds for RefusingBuilds {
    fn start(&self, region: &str, build: PipelineBuild) -> Result<BuildTicket, StartError> {
        assert!(
            build.source.dir.join("index.html").is_file(),
            "the input is unpacked"
        );
        self.asked
            .lock()
            .unwrap()
            .push((region.to_owned(), build.project.clone(), build.env));
        Err(StartError {
            aws_type: "ResourceNotFoundException".into(),
            message: format!("Project cannot be found: {}", build.project),
        })
    }
    async fn start_batch(
        &self,
        _: &str,
        _: PipelineBuild,
        _: bool,
    ) -> Result<BatchHandle, StartError> {
        unreachable!("no batch action here")
    }
    fn stop_soon(&self, _: &str) {}
    fn shutting_down(&self) -> bool {
        false
    }
    fn url(&self, id: &str) -> String {
        format!("http://localhost/builds/{id}")
    }
}

struct NoDeploys;

#[async_trait::async_trait]
impl Deploys for NoDeploys {
    async fn deploy(&self, _: EcsDeploy) -> Result<EcsDeployed, String> {
        Err("no ECS here".into())
    }
    async fn pull_from_local_ecr(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

fn site_zip(path: &Path, page: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file("index.html", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(page.as_bytes()).unwrap();
    z.finish().unwrap();
}

fn declare(db: &Db, raw: Value) {
    let (pipeline, decl) = localbuild_pipeline::normalise(&raw, 1).unwrap();
    let stored = Stored {
        pipeline,
        created: 0.0,
        updated: 0.0,
        region: "eu-west-1".into(),
    };
    db.put_doc(PIPELINE_DOC, &decl.name, &json!(stored).to_string())
        .unwrap();
}

fn action(category: &str, provider: &str, rest: Value) -> Value {
    let mut a = json!({"actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"}});
    a.as_object_mut()
        .unwrap()
        .extend(rest.as_object().unwrap().clone());
    a
}

/// The execution once it has ended (bounded wait).
async fn ended(x: &Executor, pipeline: &str, id: &str) -> exec::Execution {
    for _ in 0..500 {
        let e = exec::load_execution(&x.db, pipeline, id).unwrap().unwrap();
        if e.status.is_final() && !x.lock().contains_key(id) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("execution {id} did not end within 10 s");
}

#[tokio::test]
async fn an_s3_source_deploys_into_a_bucket_and_a_refused_build_fails_its_stage() {
    let home = tempfile::tempdir().unwrap();
    let roots = localbuild_sources::Roots {
        git_root: home.path().join("git"),
        s3_root: home.path().join("s3"),
    };
    site_zip(&roots.s3_root.join("src/site.zip"), "<h1>one</h1>");
    let db = Db::open(&home.path().join("localbuild.db")).unwrap();
    let builds = Arc::new(RefusingBuilds::default());
    let x = Arc::new(Executor::new(
        db.clone(),
        roots.clone(),
        home.path().join("tmp"),
        builds.clone(),
        Arc::new(NoDeploys),
    ));
    let ctx = Ctx {
        exec: x.clone(),
        region: "eu-west-1".into(),
    };
    let source = action(
        "Source",
        "S3",
        json!({"name": "Source", "namespace": "Src",
               "configuration": {"S3Bucket": "src", "S3ObjectKey": "site.zip"},
               "outputArtifacts": [{"name": "Site"}]}),
    );
    declare(
        &db,
        json!({"name": "site", "roleArn": "arn:aws:iam::000000000000:role/p",
               "artifactStore": {"type": "S3", "location": "artifacts"},
               "stages": [
                 {"name": "Source", "actions": [source.clone()]},
                 {"name": "Deploy", "actions": [action("Deploy", "S3", json!({
                     "name": "Publish", "inputArtifacts": [{"name": "Site"}],
                     "configuration": {"BucketName": "web", "Extract": "true"}}))]}]}),
    );
    let id = exec::start(&ctx, "site", "StartPipelineExecution", "", vec![]).unwrap();
    let e = ended(&x, "site", &id).await;
    assert_eq!(e.status, ExecStatus::Succeeded, "{:?}", e.status_summary);
    assert_eq!(
        std::fs::read_to_string(roots.s3_root.join("web/index.html")).unwrap(),
        "<h1>one</h1>"
    );
    assert!(
        e.variables.contains_key("Src.VersionId"),
        "{:?}",
        e.variables
    );

    declare(
        &db,
        json!({"name": "app", "roleArn": "arn:aws:iam::000000000000:role/p",
               "artifactStore": {"type": "S3", "location": "artifacts"},
               "stages": [
                 {"name": "Source", "actions": [source]},
                 {"name": "Build", "actions": [action("Build", "CodeBuild", json!({
                     "name": "Build", "inputArtifacts": [{"name": "Site"}],
                     "configuration": {"ProjectName": "app-#{Src.BucketName}",
                        "EnvironmentVariables": "[{\"name\":\"STAGE\",\"value\":\"beta\",\"type\":\"PLAINTEXT\"}]"}}))]}]}),
    );
    let id = exec::start(&ctx, "app", "StartPipelineExecution", "", vec![]).unwrap();
    let e = ended(&x, "app", &id).await;
    assert_eq!(e.status, ExecStatus::Failed);
    let (code, message) = e.stages[1].actions[0].error.clone().unwrap();
    assert_eq!(code, "JobFailed");
    assert!(
        message.starts_with("Error calling startBuild: Project cannot be found: app-src")
            && message.contains("Error Code: ResourceNotFoundException"),
        "{message}"
    );
    assert_eq!(
        *builds.asked.lock().unwrap(),
        [(
            "eu-west-1".to_owned(),
            "app-src".to_owned(),
            vec![EnvVar {
                name: "STAGE".to_owned(),
                value: "beta".to_owned(),
                kind: Some("PLAINTEXT".to_owned())
            }]
        )]
    );
    assert_eq!(exec::recover(&db), 0, "nothing is left in progress");
}
