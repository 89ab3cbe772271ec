//! ECS services on `localbuild serve`, driven by the real `aws` CLI: a pipeline's ECS deploy
//! action makes a service whose task is a real container; `aws ecs` lists and describes it
//! (running count, deployment, the address that answers HTTP), scales it to 0 and back, rolls
//! out a new task definition, and deletes it. The service outlives delete-pipeline and serve's
//! shutdown (which says so on stderr) and is still managed after a restart. Real Docker, real
//! images built from the busybox test image; bounded polling, no bare sleeps.

use crate::api::Serve;
use crate::pipeline::{wait_executions, write_json};
use crate::registry::TagGuard;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

/// Build a tiny web app image (busybox httpd on 8080 serving `page`), tagged `tag`.
fn app_image(tag: &str, page: &str) -> TagGuard {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), page).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM localbuild-test/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    TagGuard(tag.to_owned())
}

/// `s3://src/<key>`: a zip holding `imagedefinitions.json` for `image`.
fn put_source(s: &Serve, key: &str, image: &str) {
    let path = s.home.path().join(format!("{}.zip", uuid::Uuid::new_v4()));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file(
        "imagedefinitions.json",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(
        json!([{"name": "app", "imageUri": image}])
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    zip.finish().unwrap();
    let _ = s.aws(&["s3api", "create-bucket", "--bucket", "src"]);
    s.ok(&[
        "s3api",
        "put-object",
        "--bucket",
        "src",
        "--key",
        key,
        "--body",
        path.to_str().unwrap(),
    ]);
}

/// A pipeline: S3 source → ECS deploy to `cluster`/`service`.
fn deploy_pipeline(s: &Serve, name: &str, key: &str, cluster: &str, service: &str) {
    let declaration = json!({"pipeline": {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src", "S3ObjectKey": key, "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Defs"}]}]},
            {"name": "Deploy", "actions": [{"name": "Deploy",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
                "configuration": {"ClusterName": cluster, "ServiceName": service, "FileName": "imagedefinitions.json"},
                "inputArtifacts": [{"name": "Defs"}]}]},
        ],
    }});
    let file = write_json(s.home.path(), &declaration);
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
}

/// The service's containers (by the label every task carries), running or not.
fn containers(label: &str, running_only: bool) -> Vec<String> {
    let mut args = vec!["ps", "-q", "--filter"];
    let filter = format!("label=localbuild.ecs-service={label}");
    args.push(&filter);
    if !running_only {
        args.push("-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes the service's containers at the end, passed or not.
struct ContainersGuard(String);

impl Drop for ContainersGuard {
    fn drop(&mut self) {
        let ids = containers(&self.0, false);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Wait (at most 30 s) until the port serves a page containing `text`.
fn wait_serving(port: u16, text: &str) {
    crate::harness::eventually(
        &format!("port {port} to serve {text:?}"),
        Duration::from_secs(30),
        || http_get(port).is_some_and(|p| p.contains("200") && p.contains(text)),
    );
}

fn describe(s: &Serve, service: &str) -> Value {
    let out = s.ok(&[
        "ecs",
        "describe-services",
        "--cluster",
        "local",
        "--services",
        service,
    ]);
    assert_eq!(out["failures"], json!([]), "{out:#}");
    out["services"][0].clone()
}

/// The address DescribeServices' newest "has started" event names, as a port.
fn event_port(svc: &Value) -> u16 {
    let re = regex::Regex::new(r"has started 1 tasks: \(task (\w+)\)\. Address: http://127\.0\.0\.1:(\d+) \(container port 8080/tcp\)").unwrap();
    svc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| re.captures(e["message"].as_str()?)?[2].parse().ok())
        .unwrap_or_else(|| panic!("no address in the events: {svc:#}"))
}

/// The running task's (id, host port of 8080) from ListTasks + DescribeTasks.
fn task(s: &Serve, service: &str) -> (String, u16) {
    let arns = s.ok(&[
        "ecs",
        "list-tasks",
        "--cluster",
        "local",
        "--service-name",
        service,
    ])["taskArns"]
        .clone();
    assert_eq!(arns.as_array().unwrap().len(), 1, "{arns:#}");
    let arn = arns[0].as_str().unwrap();
    let t = &s.ok(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        "local",
        "--tasks",
        arn,
    ])["tasks"][0];
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(t["group"], format!("service:{service}"));
    let binding = &t["containers"][0]["networkBindings"][0];
    assert_eq!(binding["bindIP"], "127.0.0.1", "{t:#}");
    assert_eq!(binding["containerPort"], 8080, "{t:#}");
    (
        arn.rsplit('/').next().unwrap().to_owned(),
        binding["hostPort"].as_u64().unwrap() as u16,
    )
}

/// The service's row on the console's ECS services page.
fn console_row(s: &Serve, service: &str) -> String {
    let page = crate::api::get(&s.addr, "/ecs");
    assert_eq!(page.status, 200, "{}", page.body);
    let start = page
        .body
        .find(&format!("data-service=\"local/{service}\""))
        .unwrap_or_else(|| panic!("no row for {service}: {}", page.body));
    let row = &page.body[start..];
    row[..row.find("</tr>").unwrap()].to_owned()
}

fn error_of(s: &Serve, args: &[&str]) -> String {
    s.aws(args).expect_err(&format!("aws {args:?} should fail"))
}

#[test]
fn a_deployed_service_is_managed_with_aws_ecs_and_outlives_the_pipeline_and_serve() {
    let pid = std::process::id();
    let service = format!("web-{pid}");
    let label = format!("local/{service}");
    let _left = ContainersGuard(label.clone());
    let v1 = format!("localbuild-test/ecs-app:{pid}-one");
    let v2 = format!("localbuild-test/ecs-app:{pid}-two");
    let _v1 = app_image(&v1, "version one\n");
    let _v2 = app_image(&v2, "version two\n");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.stderr");
    let s = Serve::start_with_stderr(
        tempfile::tempdir().unwrap(),
        &[],
        std::fs::File::create(&log).unwrap(),
    );

    // The pipeline deploys: the service exists, its task runs and answers.
    put_source(&s, "app.zip", &v1);
    deploy_pipeline(&s, "ship", "app.zip", "local", &service);
    let execs = wait_executions(&s, "ship", 1);
    assert_eq!(
        execs[0]["status"],
        "Succeeded",
        "{:#}",
        s.ok(&["codepipeline", "get-pipeline-state", "--name", "ship"])
    );
    let clusters = s.ok(&["ecs", "list-clusters"]);
    assert_eq!(
        clusters["clusterArns"],
        json!(["arn:aws:ecs:us-east-1:000000000000:cluster/local"])
    );
    let c = &s.ok(&["ecs", "describe-clusters", "--clusters", "local"])["clusters"][0];
    assert_eq!(
        (&c["status"], &c["activeServicesCount"]),
        (&json!("ACTIVE"), &json!(1))
    );
    let listed = s.ok(&["ecs", "list-services", "--cluster", "local"]);
    assert_eq!(
        listed["serviceArns"],
        json!([format!(
            "arn:aws:ecs:us-east-1:000000000000:service/local/{service}"
        )])
    );
    let svc = describe(&s, &service);
    assert_eq!(svc["status"], "ACTIVE", "{svc:#}");
    assert_eq!(
        (&svc["desiredCount"], &svc["runningCount"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(svc["pendingCount"], 0);
    let d = &svc["deployments"][0];
    assert_eq!(
        (&d["status"], &d["rolloutState"]),
        (&json!("PRIMARY"), &json!("COMPLETED"))
    );
    assert!(d["id"].as_str().unwrap().starts_with("ecs-svc/"), "{d:#}");
    assert_eq!(
        svc["taskDefinition"],
        format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{service}:1")
    );
    let def = s.ok(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &service,
    ]);
    assert_eq!(
        def["taskDefinition"]["containerDefinitions"][0]["name"],
        "app"
    );
    assert_eq!(
        def["taskDefinition"]["containerDefinitions"][0]["image"],
        v1.as_str()
    );
    let port = event_port(&svc);
    let (first_task, task_port) = task(&s, &service);
    assert_eq!(port, task_port, "the event and the task name one address");
    wait_serving(port, "version one");
    let page = console_row(&s, &service);
    for text in [
        "<td>local</td>",
        &v1,
        "RUNNING",
        &format!("http://127.0.0.1:{port}"),
        "1/1",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", "ship"]);
    assert_eq!(
        state["stageStates"][1]["actionStates"][0]["latestExecution"]["externalExecutionUrl"],
        format!("http://127.0.0.1:{port}")
    );

    // Desired count 0 stops the container; 1 starts one again.
    let out = s.ok(&[
        "ecs",
        "update-service",
        "--cluster",
        "local",
        "--service",
        &service,
        "--desired-count",
        "0",
    ]);
    assert_eq!(
        (
            &out["service"]["desiredCount"],
            &out["service"]["runningCount"]
        ),
        (&json!(0), &json!(0))
    );
    assert!(
        containers(&label, false).is_empty(),
        "the task's container is gone"
    );
    assert!(http_get(port).is_none_or(|p| !p.contains("version one")));
    let svc = describe(&s, &service);
    assert_eq!(svc["runningCount"], 0);
    assert!(
        svc["events"][1]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("has stopped 1 running tasks: (task {first_task})")),
        "{svc:#}"
    );
    let tasks = s.ok(&["ecs", "list-tasks", "--cluster", "local"]);
    assert_eq!(tasks["taskArns"], json!([]));
    let page = console_row(&s, &service);
    assert!(page.contains("STOPPED") && page.contains("0/0"), "{page}");
    let out = s.ok(&[
        "ecs",
        "update-service",
        "--cluster",
        "local",
        "--service",
        &service,
        "--desired-count",
        "1",
    ]);
    assert_eq!(out["service"]["runningCount"], 1, "{out:#}");
    assert_eq!(containers(&label, true).len(), 1);
    let (second_task, port) = task(&s, &service);
    assert_ne!(first_task, second_task);
    wait_serving(port, "version one");

    // A new task definition revision with a new image rolls out a new deployment.
    let defs = json!([{"name": "app", "image": v2, "essential": true}]).to_string();
    let registered = s.ok(&[
        "ecs",
        "register-task-definition",
        "--family",
        &service,
        "--container-definitions",
        &defs,
    ]);
    assert_eq!(registered["taskDefinition"]["revision"], 2);
    let before = describe(&s, &service)["deployments"][0]["id"].clone();
    let out = s.ok(&[
        "ecs",
        "update-service",
        "--cluster",
        "local",
        "--service",
        &service,
        "--task-definition",
        &format!("{service}:2"),
    ]);
    let d = &out["service"]["deployments"][0];
    assert_ne!(d["id"], before);
    assert_eq!(d["rolloutState"], "COMPLETED", "{out:#}");
    assert!(
        d["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{service}:2"))
    );
    let (third_task, port) = task(&s, &service);
    assert_ne!(third_task, second_task);
    wait_serving(port, "version two");
    assert_eq!(
        containers(&label, false).len(),
        1,
        "the previous task is gone"
    );
    let out = s.ok(&[
        "ecs",
        "update-service",
        "--cluster",
        "local",
        "--service",
        &service,
        "--force-new-deployment",
    ]);
    assert_eq!(
        out["service"]["deployments"][0]["rolloutState"],
        "COMPLETED"
    );
    let (fourth_task, port) = task(&s, &service);
    assert_ne!(fourth_task, third_task);
    wait_serving(port, "version two");
    let listed = s.ok(&["ecs", "list-task-definitions", "--family-prefix", &service]);
    assert_eq!(
        listed["taskDefinitionArns"].as_array().unwrap().len(),
        2,
        "{listed:#}"
    );

    // ECS's errors: (the call, what the error must name).
    let svc = service.as_str();
    let refused: [(&[&str], &[&str]); 8] = [
        (
            &["list-services", "--cluster", "nope"],
            &["ClusterNotFoundException", "nope"],
        ),
        (
            &["describe-services", "--cluster", "nope", "--services", "x"],
            &["ClusterNotFoundException"],
        ),
        (
            &[
                "update-service",
                "--cluster",
                "local",
                "--service",
                "nope",
                "--desired-count",
                "1",
            ],
            &["ServiceNotFoundException", "nope"],
        ),
        (
            &[
                "update-service",
                "--cluster",
                "nope",
                "--service",
                svc,
                "--desired-count",
                "1",
            ],
            &["ClusterNotFoundException"],
        ),
        (
            &[
                "update-service",
                "--cluster",
                "local",
                "--service",
                svc,
                "--desired-count",
                "2",
            ],
            &["InvalidParameterException", "desiredCount"],
        ),
        (
            &[
                "update-service",
                "--cluster",
                "local",
                "--service",
                svc,
                "--task-definition",
                "nope:9",
            ],
            &["InvalidParameterException", "nope:9"],
        ),
        (
            &["delete-service", "--cluster", "local", "--service", svc],
            &["InvalidParameterException", "scaled above 0"],
        ),
        (
            &["describe-task-definition", "--task-definition", "nope"],
            &["ClientException"],
        ),
    ];
    for (call, names) in refused {
        let args: Vec<&str> = std::iter::once("ecs").chain(call.iter().copied()).collect();
        let e = error_of(&s, &args);
        assert!(names.iter().all(|n| e.contains(n)), "{args:?}: {e}");
    }
    let missing = s.ok(&[
        "ecs",
        "describe-services",
        "--cluster",
        "local",
        "--services",
        "nope",
    ]);
    assert_eq!(missing["failures"][0]["reason"], "MISSING", "{missing:#}");
    assert_eq!(containers(&label, true).len(), 1, "errors changed nothing");

    // The service outlives its pipeline and serve, which says so and how to remove it.
    s.ok(&["codepipeline", "delete-pipeline", "--name", "ship"]);
    assert_eq!(describe(&s, &service)["runningCount"], 1);
    let home = s.terminate();
    let said = std::fs::read_to_string(&log).unwrap();
    let note: Vec<&str> = said.lines().filter(|l| l.contains("ECS service")).collect();
    assert_eq!(note.len(), 1, "{said}");
    assert!(
        note[0].contains(&format!(
            "1 ECS service keeps running, as in AWS (local/{service})"
        )),
        "{said}"
    );
    assert!(
        note[0].contains(&format!(
            "aws ecs delete-service --force --cluster local --service {service}"
        )),
        "{said}"
    );
    assert_eq!(
        containers(&label, true).len(),
        1,
        "the task runs on after serve stopped"
    );
    wait_serving(port, "version two");

    // After a restart the service is still known and managed; delete-service removes it.
    let s = Serve::start_in(home, &[]);
    let svc = describe(&s, &service);
    assert_eq!(svc["runningCount"], 1, "{svc:#}");
    assert_eq!(task(&s, &service).0, fourth_task);
    let out = s.ok(&[
        "ecs",
        "delete-service",
        "--cluster",
        "local",
        "--service",
        &service,
        "--force",
    ]);
    assert_eq!(out["service"]["status"], "DRAINING");
    assert!(
        containers(&label, false).is_empty(),
        "delete-service removed the container"
    );
    assert_eq!(describe(&s, &service)["status"], "INACTIVE");
    let listed = s.ok(&["ecs", "list-services", "--cluster", "local"]);
    assert_eq!(listed["serviceArns"], json!([]));
    let e = error_of(
        &s,
        &[
            "ecs",
            "update-service",
            "--cluster",
            "local",
            "--service",
            &service,
            "--desired-count",
            "1",
        ],
    );
    assert!(e.contains("ServiceNotActiveException"), "{e}");
    let home = s.terminate();
    drop(home);
}

#[test]
fn hostile_ecs_names_and_images_are_refused_before_docker() {
    let s = Serve::start(&[]);
    let e = error_of(
        &s,
        &[
            "ecs",
            "register-task-definition",
            "--family",
            "../x",
            "--container-definitions",
            r#"[{"name":"app","image":"busybox"}]"#,
        ],
    );
    assert!(
        e.contains("InvalidParameterException") && e.contains("family"),
        "{e}"
    );
    for image in ["--privileged", "a b", "x;rm -rf /", "$(id)"] {
        let defs = json!([{"name": "app", "image": image}]).to_string();
        let e = error_of(
            &s,
            &[
                "ecs",
                "register-task-definition",
                "--family",
                "fam",
                "--container-definitions",
                &defs,
            ],
        );
        assert!(
            e.contains("InvalidParameterException") && e.contains("image"),
            "{image}: {e}"
        );
    }
    let e = error_of(
        &s,
        &[
            "ecs",
            "register-task-definition",
            "--family",
            "fam",
            "--container-definitions",
            r#"[{"name":"../app","image":"busybox"}]"#,
        ],
    );
    assert!(e.contains("containerDefinitions[0].name"), "{e}");

    // A deploy action with a hostile cluster name or image fails before any container exists.
    put_source(&s, "bad-image.zip", "--privileged");
    deploy_pipeline(&s, "bad-image", "bad-image.zip", "local", "svc");
    let execs = wait_executions(&s, "bad-image", 1);
    assert_eq!(execs[0]["status"], "Failed");
    put_source(&s, "ok.zip", "localbuild-test/busybox:1");
    deploy_pipeline(&s, "bad-cluster", "ok.zip", "../etc", "svc");
    let execs = wait_executions(&s, "bad-cluster", 1);
    assert_eq!(execs[0]["status"], "Failed");
    for (name, text) in [("bad-image", "imageUri"), ("bad-cluster", "ClusterName")] {
        let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", name]);
        let err = &state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]["message"];
        assert!(
            err.as_str().unwrap_or_default().contains(text),
            "{name}: {state:#}"
        );
    }
    assert_eq!(s.ok(&["ecs", "list-clusters"])["clusterArns"], json!([]));
    assert!(containers("local/svc", false).is_empty());
}
