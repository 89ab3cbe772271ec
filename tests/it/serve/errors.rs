//! The API's answers to bad requests (CodeBuild's error types and texts), signatures, and
//! response shapes against botocore's model.

use super::*;

#[test]
fn serve_answers_errors_as_codebuild() {
    let s = Serve::start(&[]);
    s.create_project("serve-err", &["true"]);
    let err = s
        .aws(&[
            "codebuild",
            "create-project",
            "--name",
            "serve-err",
            "--source",
            "type=NO_SOURCE,buildspec=version: 0.2",
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            "type=LINUX_CONTAINER,image=x,computeType=BUILD_GENERAL1_SMALL",
            "--service-role",
            "r",
        ])
        .unwrap_err();
    assert!(err.contains("ResourceAlreadyExistsException"), "{err}");
    assert!(
        err.contains(
            "Project already exists: arn:aws:codebuild:us-east-1:000000000000:project/serve-err"
        ),
        "{err}"
    );
    let err = s
        .aws(&["codebuild", "start-build", "--project-name", "nope"])
        .unwrap_err();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(
        err.contains(
            "Project cannot be found: arn:aws:codebuild:us-east-1:000000000000:project/nope"
        ),
        "{err}"
    );

    let (status, body) = s.post(Some("CodeBuild_20161006.BatchGetBuilds"), b"{not json");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException");
    let (status, body) = s.post(Some("CodeBuild_20161006.BatchGetBuilds"), br#"{"ids": 5}"#);
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException");
    assert!(body["message"].as_str().unwrap().contains("ids"), "{body}");
    let (status, body) = s.post(Some("CodeBuild_20161006.NoSuchThing"), b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, body) = s.post(Some("Nope_2020.ListBuilds"), b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, body) = s.post(None, b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let big = vec![b' '; 7 * 1024 * 1024];
    let (status, body) = s.post(Some("CodeBuild_20161006.ListBuilds"), &big);
    assert_eq!(status, 413);
    assert_eq!(body["__type"], "RequestEntityTooLargeException");
}

/// BatchGetBuilds, BatchGetBuildBatches and BatchGetProjects refuse a malformed id or name with
/// CodeBuild's `InvalidInputException`, naming the entry; a well-formed one that names nothing
/// is "not found", as in the cloud.
#[test]
fn malformed_ids_in_batch_gets_are_invalid_input() {
    let s = Serve::start(&[]);
    let refused = |args: &[&str], needle: &str| {
        let err = s.aws(args).unwrap_err();
        assert!(err.contains("InvalidInputException"), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    for bad in [
        "no-colon",
        "bad name:1234",
        "arn:aws:codebuild:us-east-1:000000000000:project/app",
    ] {
        refused(
            &["codebuild", "batch-get-builds", "--ids", bad],
            "Invalid build ID provided",
        );
        refused(
            &["codebuild", "batch-get-builds", "--ids", "app:1", bad],
            bad,
        );
        refused(
            &["codebuild", "batch-get-build-batches", "--ids", bad],
            "Invalid build batch ID provided",
        );
    }
    let out = s.ok(&[
        "codebuild",
        "batch-get-builds",
        "--ids",
        "app:0f1e2d3c-0000-4000-8000-000000000000",
        "arn:aws:codebuild:us-east-1:000000000000:build/app:1",
    ]);
    assert_eq!(
        out["buildsNotFound"],
        json!(["app:0f1e2d3c-0000-4000-8000-000000000000", "app:1"]),
        "{out:#}"
    );
    let out = s.ok(&["codebuild", "batch-get-build-batches", "--ids", "app:1"]);
    assert_eq!(out["buildBatchesNotFound"], json!(["app:1"]), "{out:#}");

    s.create_project("app", &["true"]);
    refused(
        &[
            "codebuild",
            "batch-get-projects",
            "--names",
            "app",
            "not a name",
        ],
        "not a name",
    );
    refused(
        &[
            "codebuild",
            "batch-get-projects",
            "--names",
            "arn:aws:codebuild:us-east-1:000000000000:build/app:1",
        ],
        "Invalid project name or ARN",
    );
    let out = s.ok(&[
        "codebuild",
        "batch-get-projects",
        "--names",
        "arn:aws:codebuild:us-east-1:000000000000:project/app",
        "missing",
    ]);
    assert_eq!(out["projects"][0]["name"], "app", "{out:#}");
    assert_eq!(out["projectsNotFound"], json!(["missing"]), "{out:#}");
}

#[test]
fn serve_checks_signatures_with_credentials() {
    let mut s = Serve::with_credentials("AKIDLOCAL", "s3cret");
    assert_eq!(s.ok(&["codebuild", "list-projects"])["projects"], json!([]));
    s.keys = ("AKIDOTHER".into(), "s3cret".into());
    let err = s.aws(&["codebuild", "list-projects"]).unwrap_err();
    assert!(err.contains("UnrecognizedClientException"), "{err}");
    s.keys = ("AKIDLOCAL".into(), "wrong".into());
    let err = s.aws(&["codebuild", "list-projects"]).unwrap_err();
    assert!(err.contains("InvalidSignatureException"), "{err}");

    // Without credentials, only loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--credentials"));
}

/// A build whose buildspec names Parameter Store parameters or Secrets Manager secrets that the
/// secrets file (`serve --secrets-file`) does not hold fails in DOWNLOAD_SOURCE with CodeBuild's
/// own status code and text for each service, naming every missing reference at once, the first
/// in the buildspec first.
#[test]
fn missing_parameters_and_secrets_are_named_all_at_once_with_codebuilds_texts() {
    let home = tempfile::tempdir().unwrap();
    let secrets = home.path().join("secrets.yml");
    std::fs::write(
        &secrets,
        "parameter-store:\n  /app/present: here\nsecrets-manager:\n  app/db: '{\"user\": \"u\"}'\n",
    )
    .unwrap();
    let s = Serve::start_in(home, &["--secrets-file", secrets.to_str().unwrap()]);
    let project = |name: &str, env: &str| {
        let buildspec = format!(
            "version: 0.2\nenv:\n{env}phases:\n  build:\n    commands:\n      - echo should-not-run\n"
        );
        s.project(name, no_source(&buildspec)).create();
        let id = s.start_build(name)["id"].as_str().unwrap().to_owned();
        let b = s.wait_complete(&id);
        assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
        let download = phase(&b, "DOWNLOAD_SOURCE");
        assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
        assert!(!phases(&b).contains(&"BUILD".to_owned()), "{b:#}");
        (
            download["contexts"][0]["statusCode"]
                .as_str()
                .unwrap()
                .to_owned(),
            download["contexts"][0]["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };

    // Secrets Manager: every missing secret, in the buildspec's order.
    let mut env = "  secrets-manager:\n".to_owned();
    for i in 1..=22 {
        env.push_str(&format!("    S{i}: app/missing-{i}\n"));
    }
    env.push_str("    USER: app/db:user\n");
    let (code, message) = project("sm", &env);
    assert_eq!(code, "Secrets Manager Error");
    assert!(
        message.starts_with("ResourceNotFoundException: Secrets Manager can't find the specified secret: app/missing-1 (variable S1), app/missing-2 (variable S2)"),
        "{message}"
    );
    assert!(
        message.contains("app/missing-22 (variable S22)"),
        "{message}"
    );
    assert!(!message.contains("app/db"), "{message}");
    assert!(message.contains("--secrets-file"), "{message}");

    // Parameter Store: CodeBuild's `parameter does not exist`, every name.
    let (code, message) = project(
        "ps",
        "  parameter-store:\n    A: /app/absent-a\n    P: /app/present\n    B: /app/absent-b\n",
    );
    assert_eq!(code, "Decrypted Variables Error");
    assert!(
        message.starts_with(
            "parameter does not exist: /app/absent-a (variable A), /app/absent-b (variable B)"
        ),
        "{message}"
    );
}

/// Every response and error the server gives, through boto3, checked against botocore's own
/// service models (`tests/api/check_shapes.py`).
#[test]
fn serve_responses_match_botocores_model() {
    let s = Serve::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/walk_codebuild.py");
    let out = Command::new(crate::util::client_tool("python3"))
        .arg(script)
        .arg(IMAGE)
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("walked"), "{stdout}");
}

/// The model checker's own rules (`tests/api/test_check_shapes.py`): what the walkers above
/// trust to find a wrong shape finds one.
#[test]
fn the_model_checker_finds_what_it_claims_to() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api");
    let out = Command::new(crate::util::client_tool("python3"))
        .args(["-m", "unittest", "test_check_shapes"])
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
