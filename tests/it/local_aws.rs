//! AWS from inside the build: the real aws CLI in a build container (`localbuild-test/awscli:1`)
//! calls STS, Parameter Store and Secrets Manager on the build's own endpoint, under `run` and
//! under `serve`, with values from the secrets file and from earlier API calls.

use crate::api::{Serve, no_source};
use crate::harness::Build;
use serde_json::json;

const AWSCLI: &str = "localbuild-test/awscli:1";

const SECRETS: &str = "parameter-store:\n  /app/db: postgres://db.local\nsecrets-manager:\n  app/token: tok-from-file-123\n";

fn with_secrets(buildspec: &str) -> Build {
    let b = Build::new(buildspec)
        .image(AWSCLI)
        .file("secrets.yml", SECRETS);
    let path = b.src().join("secrets.yml");
    b.arg("--secrets-file").arg(path.to_str().unwrap())
}

#[test]
fn the_aws_cli_in_a_run_build_gets_its_identity_parameters_and_secrets() {
    let b = with_secrets(
        r#"version: 0.2
env:
  parameter-store:
    DB_URL: /app/db
phases:
  build:
    commands:
      - aws sts get-caller-identity --query Arn --output text
      - aws ssm get-parameter --name /app/db --with-decryption --query Parameter.Value --output text
      - aws secretsmanager get-secret-value --secret-id app/token --query SecretString --output text
      - aws ssm put-parameter --name /app/new --value written-in-build --type SecureString --query Version --output text
      - aws secretsmanager create-secret --name app/made --secret-string made-in-build --query Name --output text
      - echo "$AWS_ENDPOINT_URL" | grep -Eq '^http://[0-9.]+:[0-9]+$' && echo endpoint ok
      - echo "$AWS_ACCESS_KEY_ID" | cut -c1-4
"#,
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = r.record["id"].as_str().unwrap();
    let uuid = id.rsplit(':').next().unwrap();
    assert_eq!(
        r.output_of("aws sts get-caller-identity --query Arn --output text"),
        [format!(
            "arn:aws:sts::000000000000:assumed-role/codebuild-it-service-role/AWSCodeBuild-{uuid}"
        )]
    );
    // A value the build also has as a secret variable is masked in the log, as CodeBuild does.
    assert_eq!(
        r.output_of(
            "aws ssm get-parameter --name /app/db --with-decryption --query Parameter.Value --output text"
        ),
        ["***"]
    );
    assert_eq!(
        r.output_of(
            "aws secretsmanager get-secret-value --secret-id app/token --query SecretString --output text"
        ),
        ["tok-from-file-123"]
    );
    assert_eq!(
        r.output_of(
            "echo \"$AWS_ENDPOINT_URL\" | grep -Eq '^http://[0-9.]+:[0-9]+$' && echo endpoint ok"
        ),
        ["endpoint ok"]
    );
    assert_eq!(
        r.output_of("echo \"$AWS_ACCESS_KEY_ID\" | cut -c1-4"),
        ["ASIA"]
    );

    // What the first build wrote is in the history: the next build reads it, through the API
    // and through env.parameter-store / env.secrets-manager.
    let b2 = Build::new(
        r#"version: 0.2
env:
  parameter-store:
    NEW: /app/new
  secrets-manager:
    MADE: app/made
phases:
  build:
    commands:
      - test "$NEW" = written-in-build && test "$MADE" = made-in-build && echo from the store
      - aws ssm get-parameters --names /app/new /app/nope --query InvalidParameters --output text
"#,
    )
    .image(AWSCLI);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["run", "-i", AWSCLI, "-s"])
        .arg(b2.src())
        .args(["--project", "it2"])
        .env("LOCALBUILD_HOME", &r.home)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", r.home.join("config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("\nfrom the store\n"), "{stdout}");
    assert!(stdout.contains("\n/app/nope\n"), "{stdout}");
}

#[test]
fn the_build_endpoint_refuses_other_keys_and_a_missing_token() {
    let r = Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - AWS_SECRET_ACCESS_KEY=wrong aws sts get-caller-identity 2>&1 | grep -o SignatureDoesNotMatch
      - AWS_SESSION_TOKEN= aws sts get-caller-identity 2>&1 | grep -o InvalidClientTokenId
      - AWS_ACCESS_KEY_ID=AKIAOTHER aws ssm get-parameter --name /x 2>&1 | grep -o UnrecognizedClientException
      - aws ssm get-parameter --name /missing 2>&1 | grep -o ParameterNotFound
      - aws secretsmanager get-secret-value --secret-id missing 2>&1 | grep -o ResourceNotFoundException
      - aws ssm put-parameter --name 'bad name' --value v 2>&1 | grep -o ValidationException
"#,
    )
    .image(AWSCLI)
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for (cmd, expected) in [
        (
            "AWS_SECRET_ACCESS_KEY=wrong aws sts get-caller-identity 2>&1 | grep -o SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
        ),
        (
            "AWS_SESSION_TOKEN= aws sts get-caller-identity 2>&1 | grep -o InvalidClientTokenId",
            "InvalidClientTokenId",
        ),
        (
            "AWS_ACCESS_KEY_ID=AKIAOTHER aws ssm get-parameter --name /x 2>&1 | grep -o UnrecognizedClientException",
            "UnrecognizedClientException",
        ),
        (
            "aws ssm get-parameter --name /missing 2>&1 | grep -o ParameterNotFound",
            "ParameterNotFound",
        ),
        (
            "aws secretsmanager get-secret-value --secret-id missing 2>&1 | grep -o ResourceNotFoundException",
            "ResourceNotFoundException",
        ),
        (
            "aws ssm put-parameter --name 'bad name' --value v 2>&1 | grep -o ValidationException",
            "ValidationException",
        ),
    ] {
        assert_eq!(r.output_of(cmd), [expected], "{cmd}");
    }
    // No network is made for a build (none is left).
    let nets = std::process::Command::new("docker")
        .args(["network", "ls", "-q", "--filter"])
        .arg(format!(
            "label=localbuild.build-id={}",
            r.record["id"].as_str().unwrap()
        ))
        .output()
        .unwrap();
    assert!(
        nets.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&nets.stdout)
    );
}

#[test]
fn with_the_hosts_credentials_no_local_endpoint_is_injected() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"${AWS_ENDPOINT_URL:-none} ${AWS_SESSION_TOKEN:-none}\"\n",
    )
    .arg("-c")
    .env("AWS_ENDPOINT_URL", "")
    .env("AWS_SESSION_TOKEN", "")
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of("echo \"${AWS_ENDPOINT_URL:-none} ${AWS_SESSION_TOKEN:-none}\""),
        ["none none"]
    );
}

#[test]
fn serve_builds_reach_the_same_store_the_api_writes() {
    let s = Serve::start(&[]);
    s.ok(&[
        "ssm",
        "put-parameter",
        "--name",
        "/svc/url",
        "--value",
        "svc.local:8080",
        "--type",
        "String",
    ]);
    let created = s.ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "svc/key",
        "--secret-string",
        "key-from-api",
    ]);
    assert!(
        created["ARN"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:svc/key-"),
        "{created:#}"
    );
    let me = s.ok(&["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], "000000000000");
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - aws ssm get-parameter --name /svc/url --query Parameter.Value --output text\n      - aws secretsmanager get-secret-value --secret-id svc/key --query SecretString --output text\n      - aws sts get-caller-identity --query Arn --output text\n";
    s.project("inside", no_source(buildspec))
        .image(AWSCLI)
        .create();
    let id = s.start_build("inside")["id"].as_str().unwrap().to_owned();
    let done = s.wait(&id, 180, "buildComplete", |b| b["buildComplete"] == true);
    let log = std::fs::read_to_string(s.home.path().join("builds/inside/1/build.log")).unwrap();
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{log}");
    assert!(log.contains("\nsvc.local:8080\n"), "{log}");
    assert!(log.contains("\nkey-from-api\n"), "{log}");
    assert!(
        log.contains("assumed-role/codebuild-inside-service-role/AWSCodeBuild-"),
        "{log}"
    );
}

#[test]
fn aws_s3_in_a_build_lands_in_the_store_the_host_lists() {
    let s = Serve::start(&[]);
    let r = Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p site/sub && echo one > site/a.txt && echo two > site/sub/b.txt
      - head -c 9000000 /dev/urandom > big.bin
      - aws s3 mb s3://out-bucket
      - aws s3 cp --no-progress big.bin s3://out-bucket/big/big.bin
      - aws s3 sync --no-progress site s3://out-bucket/site/
      - aws s3 ls s3://out-bucket/site/
      - aws s3 cp --no-progress s3://out-bucket/big/big.bin back.bin && cmp big.bin back.bin && echo same
      - aws s3api get-object --bucket out-bucket --key site/sub/b.txt --range bytes=1-2 part.txt >/dev/null && cat part.txt
      - aws s3 rm s3://out-bucket/site/a.txt
      - aws s3api put-object --bucket out-bucket --key ../escape --body big.bin 2>&1 | grep -o InvalidArgument
      - aws s3 ls s3://no-such-bucket 2>&1 | grep -o NoSuchBucket
"#,
    )
    .image(AWSCLI)
    .env("LOCALBUILD_HOME", s.home.path().to_str().unwrap())
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let listed = r.output_of("aws s3 ls s3://out-bucket/site/");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].trim() == "PRE sub/", "{listed:?}");
    assert!(listed[1].ends_with(" 4 a.txt"), "{listed:?}");
    assert_eq!(
        r.output_of(
            "aws s3 cp --no-progress s3://out-bucket/big/big.bin back.bin && cmp big.bin back.bin && echo same"
        )
        .last()
        .map(String::as_str),
        Some("same")
    );
    assert_eq!(
        r.output_of("aws s3api get-object --bucket out-bucket --key site/sub/b.txt --range bytes=1-2 part.txt >/dev/null && cat part.txt"),
        ["wo"]
    );
    assert_eq!(
        r.output_of("aws s3api put-object --bucket out-bucket --key ../escape --body big.bin 2>&1 | grep -o InvalidArgument"),
        ["InvalidArgument"]
    );
    assert!(!s.home.path().join("s3/escape").exists());
    assert_eq!(
        r.output_of("aws s3 ls s3://no-such-bucket 2>&1 | grep -o NoSuchBucket"),
        ["NoSuchBucket"]
    );
    // The host's aws CLI, against serve on the same LOCALBUILD_HOME, sees what the build wrote.
    let objects = s.ok(&["s3api", "list-objects-v2", "--bucket", "out-bucket"]);
    let keys: Vec<(&str, u64)> = objects["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["Key"].as_str().unwrap(), o["Size"].as_u64().unwrap()))
        .collect();
    assert_eq!(keys, [("big/big.bin", 9_000_000), ("site/sub/b.txt", 4)]);
    assert_eq!(
        std::fs::metadata(s.home.path().join("s3/out-bucket/big/big.bin"))
            .unwrap()
            .len(),
        9_000_000
    );
    // No multipart leftovers.
    let parts = s.home.path().join("tmp/s3/multipart");
    assert!(
        std::fs::read_dir(&parts).map_or(true, |mut d| d.next().is_none()),
        "{parts:?}"
    );
}

/// Every operation of the local AWS services through boto3 on the host; the JSON services'
/// bodies checked against botocore's model (`tests/api/walk_local_aws.py`).
#[test]
fn boto3_walks_every_local_aws_operation() {
    // Open (any key), and with --credentials: every signature checked (S3's path as sent,
    // keys with spaces and '+', AssumeRole sessions with their tokens).
    for s in [
        Serve::start(&[]),
        Serve::with_credentials("AKIDLOCALBUILDTEST", "localbuild-test-secret"),
    ] {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/walk_local_aws.py");
        let out = std::process::Command::new(crate::util::client_tool("python3"))
            .arg(script)
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
}

/// A project's artifacts of type S3 land in the S3 store as CodeBuild lays them out
/// (`path/<build uuid>/name`, a folder or a zip), the record's location is the S3 ARN, and the
/// host's `aws s3` lists them.
#[test]
fn s3_artifacts_are_laid_out_as_codebuild_lays_them_out() {
    let s = Serve::start(&[]);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out/sub && echo app > out/app.txt && echo lib > out/sub/lib.txt\nartifacts:\n  name: from-buildspec.zip\n  base-directory: out\n  files:\n    - '**/*'\n";
    let source = no_source(buildspec);
    let project = |name: &str, artifacts: serde_json::Value| {
        s.project(name, source.clone())
            .artifacts(artifacts)
            .try_create()
    };
    project(
        "folder",
        json!({"type": "S3", "location": "art-bucket", "path": "releases", "namespaceType": "BUILD_ID", "name": "site", "packaging": "NONE"}),
    )
    .unwrap();
    project(
        "zipped",
        json!({"type": "S3", "location": "art-bucket", "path": "zips", "name": "ignored.zip", "packaging": "ZIP", "overrideArtifactName": true}),
    )
    .unwrap();
    let bad = project(
        "bad",
        json!({"type": "S3", "location": "Not_A_Bucket", "name": "x"}),
    )
    .unwrap_err();
    assert!(
        bad.contains("InvalidInputException") && bad.contains("location"),
        "{bad}"
    );

    let folder = s.start_build("folder")["id"].as_str().unwrap().to_owned();
    let zipped = s.start_build("zipped")["id"].as_str().unwrap().to_owned();
    let uuid = folder.rsplit(':').next().unwrap().to_owned();
    let b = s.wait_complete(&folder);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(
        b["artifacts"]["location"],
        format!("arn:aws:s3:::art-bucket/releases/{uuid}/site")
    );
    let z = s.wait_complete(&zipped);
    assert_eq!(z["buildStatus"], "SUCCEEDED", "{z:#}");
    assert_eq!(
        z["artifacts"]["location"],
        "arn:aws:s3:::art-bucket/zips/from-buildspec.zip"
    );
    let listed = s.ok(&["s3api", "list-objects-v2", "--bucket", "art-bucket"]);
    let keys: Vec<&str> = listed["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    let site = format!("releases/{uuid}/site");
    assert_eq!(
        keys,
        [
            format!("{site}/app.txt").as_str(),
            format!("{site}/sub/lib.txt").as_str(),
            "zips/from-buildspec.zip"
        ]
    );
    let zip = std::fs::read(s.home.path().join("s3/art-bucket/zips/from-buildspec.zip")).unwrap();
    assert_eq!(&zip[..2], b"PK", "a zip");
}

/// A pipeline's CodeBuild action gets the same local AWS: its build writes to S3 and reads a
/// parameter put through the API beforehand.
#[test]
fn a_pipeline_build_reaches_the_local_aws() {
    use crate::pipeline::{connection, plain_repo, staged, wait_executions, write_json};
    let s = Serve::start(&[]);
    s.ok(&[
        "ssm",
        "put-parameter",
        "--name",
        "/pipe/greeting",
        "--value",
        "hello-pipe",
        "--type",
        "String",
    ]);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - aws s3 mb s3://pipe-out\n      - aws sts get-caller-identity --query Arn --output text > who.txt\n      - aws ssm get-parameter --name /pipe/greeting --query Parameter.Value --output text >> who.txt\n      - aws s3 cp --no-progress who.txt s3://pipe-out/who.txt\n";
    s.project(
        "pipe-build",
        json!({"type": "CODEPIPELINE", "buildspec": buildspec}),
    )
    .artifacts(json!({"type": "CODEPIPELINE"}))
    .image(AWSCLI)
    .create();
    let conn = connection(&s);
    plain_repo(&s, "aws-repo");
    let file = write_json(
        s.home.path(),
        &staged("awspipe", &conn, "aws-repo", "pipe-build", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let runs = wait_executions(&s, "awspipe", 1);
    assert_eq!(runs[0]["status"], "Succeeded", "{runs:#?}");
    let who = std::fs::read_to_string(s.home.path().join("s3/pipe-out/who.txt")).unwrap();
    let lines: Vec<&str> = who.lines().collect();
    assert!(
        lines[0].starts_with(
            "arn:aws:sts::000000000000:assumed-role/codebuild-pipe-build-service-role/AWSCodeBuild-"
        ),
        "{who}"
    );
    assert_eq!(lines[1], "hello-pipe");
}

/// An upload whose body is not the one its signature declares is refused and leaves nothing,
/// small (read whole) or large (streamed to disk).
#[test]
fn s3_refuses_a_body_that_is_not_the_signed_one() {
    use std::io::{Read, Write};
    let s = Serve::start(&[]);
    s.ok(&["s3api", "create-bucket", "--bucket", "hashes"]);
    let put = |key: &str, body: &[u8]| {
        let stamp = "20260101T000000Z";
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        let head = format!(
            "PUT /hashes/{key} HTTP/1.1\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDANY/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}\r\nx-amz-date: {stamp}\r\nx-amz-content-sha256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.addr,
            "0".repeat(64),
            "ab".repeat(32),
            body.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(body).unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer
    };
    for (key, size) in [("small", 10), ("large", 3 * 1024 * 1024)] {
        let answer = put(key, &vec![b'x'; size]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(
            answer.contains("<Code>XAmzContentSHA256Mismatch</Code>"),
            "{answer}"
        );
        assert!(!s.home.path().join("s3/hashes").join(key).exists(), "{key}");
    }
    let staged = std::fs::read_dir(s.home.path().join("tmp/s3"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name() != "multipart")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(staged, 0, "no staged upload is left");
}

/// Secondary artifacts of type S3 and StartBuild's `artifactsOverride` /
/// `secondaryArtifactsOverride` land in the S3 store as CodeBuild lays them out; the record
/// names each by its S3 ARN and echoes `overrideArtifactName` / `encryptionDisabled`; bad
/// overrides are refused naming the field.
#[test]
fn secondary_s3_artifacts_and_start_build_overrides_are_laid_out_as_codebuild_does() {
    let s = Serve::start(&[]);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out docs && echo app > out/app.txt && echo doc > docs/guide.txt\nartifacts:\n  files:\n    - out/app.txt\n  secondary-artifacts:\n    docs:\n      name: docs-$CODEBUILD_BUILD_NUMBER\n      base-directory: docs\n      files:\n        - '**/*'\n    plain:\n      files:\n        - out/app.txt\n";
    let source = json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"})
        .to_string();
    let secondary = json!([
        {"type": "S3", "artifactIdentifier": "docs", "location": "second-bucket", "path": "d", "namespaceType": "BUILD_ID", "packaging": "ZIP", "overrideArtifactName": true, "encryptionDisabled": true},
        {"type": "S3", "artifactIdentifier": "plain", "location": "second-bucket", "name": "plain-out"}
    ]);
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "multi",
        "--source",
        &source,
        "--artifacts",
        &json!({"type": "S3", "location": "first-bucket", "name": "main"}).to_string(),
        "--secondary-artifacts",
        &secondary.to_string(),
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let id = s.start_build("multi")["id"].as_str().unwrap().to_owned();
    let uuid = id.rsplit(':').next().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["artifacts"]["location"], "arn:aws:s3:::first-bucket/main");
    let second = b["secondaryArtifacts"].as_array().unwrap();
    let by_id = |want: &str| {
        second
            .iter()
            .find(|a| a["artifactIdentifier"] == want)
            .unwrap_or_else(|| panic!("{want} in {second:#?}"))
    };
    assert_eq!(
        by_id("docs")["location"],
        format!("arn:aws:s3:::second-bucket/d/{uuid}/docs-1")
    );
    assert_eq!(by_id("docs")["overrideArtifactName"], true);
    assert_eq!(by_id("docs")["encryptionDisabled"], true);
    assert_eq!(
        by_id("plain")["location"],
        "arn:aws:s3:::second-bucket/plain-out"
    );
    let keys = |bucket: &str| -> Vec<String> {
        s.ok(&["s3api", "list-objects-v2", "--bucket", bucket])["Contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["Key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys("first-bucket"), ["main/out/app.txt"]);
    assert_eq!(
        keys("second-bucket"),
        [
            format!("d/{uuid}/docs-1"),
            "plain-out/out/app.txt".to_owned()
        ]
    );
    let zip = std::fs::read(
        s.home
            .path()
            .join(format!("s3/second-bucket/d/{uuid}/docs-1")),
    )
    .unwrap();
    assert_eq!(&zip[..2], b"PK", "packaging ZIP is one zip object");

    // The overrides replace the project's settings for one build.
    let out = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "multi",
        "--artifacts-override",
        &json!({"type": "S3", "location": "over-bucket", "path": "p", "name": "o", "packaging": "ZIP"}).to_string(),
        "--secondary-artifacts-override",
        &json!([{"type": "S3", "artifactIdentifier": "plain", "location": "over-bucket", "name": "second"}]).to_string(),
    ]);
    let id = out["build"]["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["artifacts"]["location"], "arn:aws:s3:::over-bucket/p/o");
    assert_eq!(
        keys("over-bucket"),
        ["p/o".to_owned(), "second/out/app.txt".to_owned()]
    );
    // `docs` has no override: it goes to the build's own folder, not to S3.
    let docs = b["secondaryArtifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["artifactIdentifier"] == "docs")
        .unwrap()["location"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!docs.starts_with("arn:aws:s3"), "{docs}");

    for (flag, value, field) in [
        (
            "--artifacts-override",
            json!({"type": "S3", "location": "Bad_Bucket"}),
            "artifactsOverride",
        ),
        (
            "--artifacts-override",
            json!({"type": "S3", "location": "ok-bucket", "path": "../../etc"}),
            "artifactsOverride",
        ),
        (
            "--secondary-artifacts-override",
            json!([{"type": "S3", "artifactIdentifier": "x", "location": "ok-bucket", "name": "/etc/passwd/../.."}]),
            "secondaryArtifactsOverride",
        ),
        (
            "--cache-override",
            json!({"type": "S3", "location": "ok-bucket/../../../etc"}),
            "cacheOverride",
        ),
        ("--cache-override", json!({"type": "S3"}), "cacheOverride"),
        (
            "--artifacts-override",
            json!({"type": "NO_ARTIFACTS", "encryptionDisabled": true}),
            "encryptionDisabled",
        ),
        (
            "--secondary-artifacts-override",
            json!([{"type": "CODEPIPELINE", "artifactIdentifier": "x"}]),
            "CODEPIPELINE",
        ),
        (
            "--secondary-artifacts-override",
            json!([{"type": "NO_ARTIFACTS", "artifactIdentifier": "x"}, {"type": "NO_ARTIFACTS", "artifactIdentifier": "x"}]),
            "more than once",
        ),
    ] {
        let err = s
            .aws(&[
                "codebuild",
                "start-build",
                "--project-name",
                "multi",
                flag,
                &value.to_string(),
            ])
            .unwrap_err();
        assert!(
            err.contains("InvalidInputException") && err.contains(field),
            "{value}: {err}"
        );
    }
    assert!(!s.home.path().join("s3/ok-bucket").exists());
}

/// A cache of type S3: the buildspec's `cache.paths` are saved to `bucket/prefix` after the
/// build and restored from there before INSTALL in the next build; the host's `aws s3 ls`
/// lists the saved cache.
#[test]
fn an_s3_cache_is_saved_to_and_restored_from_its_bucket() {
    let s = Serve::start(&[]);
    let buildspec = "version: 0.2\nphases:\n  install:\n    commands:\n      - cat /root/deps/stamp.txt || echo no-cache-yet\n  build:\n    commands:\n      - mkdir -p /root/deps && echo \"from-build-$CODEBUILD_BUILD_NUMBER\" > /root/deps/stamp.txt\ncache:\n  paths:\n    - /root/deps/**/*\n";
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"})
        .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "cached",
        "--source",
        &json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--cache",
        "type=S3,location=cache-bucket/team/cached",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let bad = s
        .aws(&[
            "codebuild",
            "update-project",
            "--name",
            "cached",
            "--cache",
            "type=S3,location=Bad_Bucket/x",
        ])
        .unwrap_err();
    assert!(
        bad.contains("InvalidInputException") && bad.contains("cache"),
        "{bad}"
    );
    let first = s.start_build("cached")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&first);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["cache"]["type"], "S3");
    assert_eq!(b["cache"]["location"], "cache-bucket/team/cached");
    let log1 = std::fs::read_to_string(s.home.path().join("builds/cached/1/build.log")).unwrap();
    assert!(log1.contains("\nno-cache-yet\n"), "{log1}");
    assert!(
        log1.contains("in s3://cache-bucket/team/cached/default.tar"),
        "{log1}"
    );
    let listed = s.ok(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        "cache-bucket",
        "--prefix",
        "team/cached/",
    ]);
    assert_eq!(listed["Contents"][0]["Key"], "team/cached/default.tar");
    assert!(
        !s.home.path().join("cache/cached/default.tar").exists(),
        "the S3 cache is not also kept locally"
    );

    let second = s.start_build("cached")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&second);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    let log2 = std::fs::read_to_string(s.home.path().join("builds/cached/2/build.log")).unwrap();
    assert!(
        log2.contains("Restoring cache from s3://cache-bucket/team/cached/default.tar"),
        "{log2}"
    );
    assert!(log2.contains("\nfrom-build-1\n"), "{log2}");
}

/// `docker ARGS`: exit code and stdout + stderr.
fn docker(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Who may call a build's endpoint is decided by its keys, not by the network (ARCHITECTURE,
/// `local_aws`): another container on this machine reaches the address, as it would any
/// bridge's gateway, but without the build's session (made-up keys, no token, unsigned) it is
/// refused; with the keys (read here from the container, as root on the host can) it is the
/// build. Once the build ends, nothing answers there any more.
#[test]
fn another_container_is_refused_by_a_build_endpoint_without_the_builds_keys() {
    let b = Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - echo "endpoint $AWS_ENDPOINT_URL of $CODEBUILD_BUILD_ID"
      - i=0; while [ ! -f /tmp/go ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done; test -f /tmp/go
"#,
    )
    .image(AWSCLI);
    let mut running = b.spawn();
    let line = running.wait_for_line(|l| l.contains("endpoint http://"));
    let rest = line.trim_end().split("endpoint http://").nth(1).unwrap();
    let (addr, build_id) = rest.split_once(" of ").unwrap();
    let url = format!("http://{addr}");
    let (code, container) = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=localbuild.build-id={build_id}"),
    ]);
    assert_eq!(code, 0, "{container}");
    let container = container.trim().to_owned();
    let (_, env) = docker(&["exec", &container, "env"]);
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {env}"))
            .to_owned()
    };
    let (key, secret, token) = (
        var("AWS_ACCESS_KEY_ID"),
        var("AWS_SECRET_ACCESS_KEY"),
        var("AWS_SESSION_TOKEN"),
    );
    // Another container (the default bridge) calls the endpoint with the given variables.
    let call = |vars: &[(&str, &str)], args: &[&str]| {
        let mut argv = vec!["run".to_owned(), "--rm".to_owned()];
        for (k, v) in [
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ]
        .iter()
        .chain(vars)
        {
            argv.extend(["-e".to_owned(), format!("{k}={v}")]);
        }
        argv.extend([
            AWSCLI.to_owned(),
            "aws".to_owned(),
            "--endpoint-url".to_owned(),
        ]);
        argv.push(url.clone());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        docker(&argv).1
    };
    let whoami = [
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ];
    let made_up = call(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAOTHER"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ],
        &whoami,
    );
    assert!(made_up.contains("InvalidClientTokenId"), "{made_up}");
    let no_token = call(
        &[
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
        &whoami,
    );
    assert!(no_token.contains("InvalidClientTokenId"), "{no_token}");
    let wrong_secret = call(
        &[
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
            ("AWS_SESSION_TOKEN", &token),
        ],
        &whoami,
    );
    assert!(
        wrong_secret.contains("SignatureDoesNotMatch"),
        "{wrong_secret}"
    );
    let unsigned = call(&[], &["s3", "ls", "--no-sign-request"]);
    assert!(
        unsigned.contains("AuthorizationHeaderMalformed"),
        "{unsigned}"
    );
    let with_keys = call(
        &[
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("AWS_SESSION_TOKEN", &token),
        ],
        &whoami,
    );
    assert!(
        with_keys.trim_end().ends_with(&format!(
            "AWSCodeBuild-{}",
            build_id.rsplit(':').next().unwrap()
        )),
        "{with_keys}"
    );

    let (code, out) = docker(&["exec", &container, "touch", "/tmp/go"]);
    assert_eq!(code, 0, "{out}");
    let r = running.finish();
    assert_eq!(r.code, 0, "{}", r.stdout);
    // The endpoint went with the build: nothing listens there now.
    let (host, port) = addr.split_once(':').unwrap();
    let (_, after) = docker(&[
        "run",
        "--rm",
        crate::harness::IMAGE,
        "sh",
        "-c",
        &format!("echo | nc -w 2 {host} {port} && echo open || echo closed"),
    ]);
    assert!(after.lines().any(|l| l == "closed"), "{after}");
}

/// A running build of `serve`'s: its endpoint and its keys (read from its container, as root
/// on this machine could).
struct Held {
    url: String,
    container: String,
    keys: [(String, String); 3],
}

fn held_build(s: &Serve, project: &str) -> Held {
    s.project(
        project,
        no_source(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"endpoint $AWS_ENDPOINT_URL\"\n      - i=0; while [ ! -f /tmp/go ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done\n",
        ),
    )
    .image(AWSCLI)
    .create();
    let id = s.start_build(project)["id"].as_str().unwrap().to_owned();
    let log = s.home.path().join(format!("builds/{project}/1/build.log"));
    let url = crate::harness::eventually(
        "the build's endpoint",
        std::time::Duration::from_secs(120),
        || {
            let text = std::fs::read_to_string(&log).ok()?;
            let line = text.lines().find(|l| l.starts_with("endpoint http://"))?;
            Some(line.trim_start_matches("endpoint ").trim().to_owned())
        },
    );
    let (_, container) = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=localbuild.build-id={id}"),
    ]);
    let container = container.trim().to_owned();
    let (_, env) = docker(&["exec", &container, "env"]);
    let var = |k: &str| {
        let v = env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {env}"));
        (k.to_owned(), v.to_owned())
    };
    Held {
        url,
        container,
        keys: [
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY"),
            var("AWS_SESSION_TOKEN"),
        ],
    }
}

/// `aws` in another container on the default bridge, against `url`, with `vars`.
fn from_another_container(url: &str, vars: &[(String, String)], args: &[&str]) -> String {
    let mut argv: Vec<String> = [
        "run",
        "--rm",
        "-e",
        "AWS_DEFAULT_REGION=us-east-1",
        "-e",
        "AWS_MAX_ATTEMPTS=1",
    ]
    .map(str::to_owned)
    .to_vec();
    for (k, v) in vars {
        argv.extend(["-e".to_owned(), format!("{k}={v}")]);
    }
    argv.extend([AWSCLI, "aws", "--endpoint-url", url].map(str::to_owned));
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    docker(&argv).1
}

/// Under `serve` without `--credentials` (open on loopback), a build's endpoint — reachable from
/// every container here — still serves only signed requests by a key localbuild issued, and not
/// another build's key or a session assumed with one: its own build's keys work, nothing else
/// does.
#[test]
fn a_build_endpoint_of_an_open_serve_refuses_strangers_and_other_builds_keys() {
    let s = Serve::start(&[]);
    s.ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/db",
        "--secret-string",
        "hunter2",
    ]);
    let a = held_build(&s, "endpoint-a");
    let b = held_build(&s, "endpoint-b");
    let read = [
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "app/db",
        "--query",
        "SecretString",
        "--output",
        "text",
    ];

    let unsigned = from_another_container(&a.url, &[], &["s3", "ls", "--no-sign-request"]);
    assert!(
        unsigned.contains("AuthorizationHeaderMalformed"),
        "{unsigned}"
    );
    let made_up = [
        ("AWS_ACCESS_KEY_ID".to_owned(), "AKIAOTHER".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "x".to_owned()),
    ];
    let stranger = from_another_container(&a.url, &made_up, &read);
    assert!(stranger.contains("UnrecognizedClient"), "{stranger}");
    assert!(!stranger.contains("hunter2"), "{stranger}");
    let other_build = from_another_container(&a.url, &b.keys, &read);
    assert!(
        other_build.contains("AccessDenied") && other_build.contains("belongs to another build"),
        "{other_build}"
    );
    // A session B assumed with its keys is B's too.
    let assumed = from_another_container(
        &b.url,
        &b.keys,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/deploy",
            "--role-session-name",
            "from-b",
            "--output",
            "json",
        ],
    );
    let assumed: serde_json::Value =
        serde_json::from_str(&assumed).unwrap_or_else(|e| panic!("{e}: {assumed}"));
    let c = &assumed["Credentials"];
    let b_session = [
        ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
        ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
        ("AWS_SESSION_TOKEN", "SessionToken"),
    ]
    .map(|(var, field)| (var.to_owned(), c[field].as_str().unwrap().to_owned()));
    let at_a = from_another_container(&a.url, &b_session, &read);
    assert!(at_a.contains("AccessDenied"), "{at_a}");
    assert_eq!(
        from_another_container(&b.url, &b_session, &read).trim(),
        "hunter2"
    );
    let own = from_another_container(&a.url, &a.keys, &read);
    assert_eq!(own.trim(), "hunter2");
    let own_b = from_another_container(&b.url, &b.keys, &read);
    assert_eq!(own_b.trim(), "hunter2");

    for held in [&a, &b] {
        let (code, out) = docker(&["exec", &held.container, "touch", "/tmp/go"]);
        assert_eq!(code, 0, "{out}");
    }
}
