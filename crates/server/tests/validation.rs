//! API validation as a table, without Docker: each row is one bad request to the in-process
//! server (AWS JSON 1.1, as the aws CLI sends it) and the answer AWS gives — HTTP status, the
//! error's `__type`, and a word the message must hold (the field, or the name it refused).
//! The services with rows: CodeBuild, CodePipeline, CloudWatch Logs, CodeConnections, SSM
//! Parameter Store, Secrets Manager, ECR and ECS; the protocol's own
//! errors (unknown operation, malformed body) come first.

mod common;

use common::LocalServer;
use serde_json::{Value, json};

const CB: &str = "CodeBuild_20161006";
const CP: &str = "CodePipeline_20150709";
const LOGS: &str = "Logs_20140328";
const CONN: &str = "com.amazonaws.codeconnections.CodeConnections_20231201";
const SSM: &str = "AmazonSSM";
const SM: &str = "secretsmanager";
const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const ECR: &str = "AmazonEC2ContainerRegistry_V20150921";

/// One bad request and AWS's answer to it.
struct Row {
    target: &'static str,
    op: &'static str,
    input: Value,
    status: u16,
    aws_type: &'static str,
    /// What the message must name.
    names: &'static str,
}

fn row(
    target: &'static str,
    op: &'static str,
    input: Value,
    aws_type: &'static str,
    names: &'static str,
) -> Row {
    Row {
        target,
        op,
        input,
        status: 400,
        aws_type,
        names,
    }
}

fn project(name: &str) -> Value {
    json!({"name": name, "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
           "artifacts": {"type": "NO_ARTIFACTS"},
           "environment": {"type": "LINUX_CONTAINER", "image": "local",
                           "computeType": "BUILD_GENERAL1_SMALL"},
           "serviceRole": "arn:aws:iam::000000000000:role/any"})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn rows() -> Vec<Row> {
    vec![
        // The protocol.
        row(
            CB,
            "NoSuchThing",
            json!({}),
            "UnknownOperationException",
            "NoSuchThing",
        ),
        row(
            "Nope_2020",
            "ListBuilds",
            json!({}),
            "UnknownOperationException",
            "Nope_2020",
        ),
        row(
            CB,
            "BatchGetBuilds",
            json!({"ids": 5}),
            "SerializationException",
            "ids",
        ),
        row(
            CB,
            "StartBuild",
            json!({}),
            "SerializationException",
            "projectName",
        ),
        // CodeBuild projects.
        row(
            CB,
            "CreateProject",
            project("exists"),
            "ResourceAlreadyExistsException",
            "project/exists",
        ),
        row(
            CB,
            "CreateProject",
            project("bad name"),
            "InvalidInputException",
            "bad name",
        ),
        row(
            CB,
            "CreateProject",
            with(project("tt"), "timeoutInMinutes", json!(3)),
            "InvalidInputException",
            "timeoutInMinutes",
        ),
        row(
            CB,
            "CreateProject",
            with(project("ss"), "source", json!({"type": "FTP"})),
            "InvalidInputException",
            "FTP",
        ),
        row(
            CB,
            "UpdateProject",
            json!({"name": "missing"}),
            "ResourceNotFoundException",
            "missing",
        ),
        row(
            CB,
            "BatchGetProjects",
            json!({"names": ["not a name"]}),
            "InvalidInputException",
            "not a name",
        ),
        // CodeBuild builds.
        row(
            CB,
            "StartBuild",
            json!({"projectName": "nowhere"}),
            "ResourceNotFoundException",
            "project/nowhere",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "exists", "timeoutInMinutesOverride": 4}),
            "InvalidInputException",
            "timeoutInMinutesOverride",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "exists", "environmentVariablesOverride": [{"name": "A", "value": "b", "type": "SECRET"}]}),
            "InvalidInputException",
            "SECRET",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "exists", "environmentVariablesOverride": [{"name": "P", "value": "/no/such", "type": "PARAMETER_STORE"}]}),
            "InvalidInputException",
            "/no/such",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "exists", "artifactsOverride": {"type": "S3", "location": "../etc"}}),
            "InvalidInputException",
            "artifactsOverride",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "exists", "cacheOverride": {"type": "S3", "location": "b/../../x"}}),
            "InvalidInputException",
            "cacheOverride",
        ),
        row(
            CB,
            "StartBuild",
            json!({"projectName": "piped"}),
            "InvalidInputException",
            "ArtifactsOverride must be set when using artifacts type CodePipelines",
        ),
        row(
            CB,
            "BatchGetBuilds",
            json!({"ids": []}),
            "InvalidInputException",
            "build ID list",
        ),
        row(
            CB,
            "BatchGetBuilds",
            json!({"ids": ["no-colon"]}),
            "InvalidInputException",
            "Invalid build ID provided",
        ),
        row(
            CB,
            "StopBuild",
            json!({"id": "exists:0f1e2d3c-0000-4000-8000-000000000000"}),
            "ResourceNotFoundException",
            "exists:0f1e2d3c",
        ),
        row(
            CB,
            "RetryBuild",
            json!({"id": "exists:0f1e2d3c-0000-4000-8000-000000000000"}),
            "ResourceNotFoundException",
            "exists:0f1e2d3c",
        ),
        row(
            CB,
            "ListBuilds",
            json!({"sortOrder": "SIDEWAYS"}),
            "InvalidInputException",
            "sortOrder",
        ),
        row(
            CB,
            "StartBuildBatch",
            json!({"projectName": "nowhere"}),
            "ResourceNotFoundException",
            "project/nowhere",
        ),
        row(
            CB,
            "BatchGetBuildBatches",
            json!({"ids": ["no-colon"]}),
            "InvalidInputException",
            "Invalid build batch ID provided",
        ),
        // CodePipeline.
        row(
            CP,
            "GetPipeline",
            json!({"name": "nope"}),
            "PipelineNotFoundException",
            "nope",
        ),
        row(
            CP,
            "StartPipelineExecution",
            json!({"name": "nope"}),
            "PipelineNotFoundException",
            "nope",
        ),
        row(
            CP,
            "GetPipelineExecution",
            json!({"pipelineName": "nope", "pipelineExecutionId": "0f1e2d3c-0000-4000-8000-000000000000"}),
            "PipelineNotFoundException",
            "nope",
        ),
        row(
            CP,
            "CreatePipeline",
            json!({"pipeline": {"name": "p", "roleArn": "arn:aws:iam::000000000000:role/r", "artifactStore": {"type": "S3", "location": "../up"}, "stages": []}}),
            "ValidationException",
            "artifactStore.location",
        ),
        row(
            CP,
            "CreatePipeline",
            json!({"pipeline": {"name": "p", "roleArn": "arn:aws:iam::000000000000:role/r", "artifactStore": {"type": "S3", "location": "bucket"}, "stages": [{"name": "Only", "actions": []}]}}),
            "InvalidStructureException",
            "stage",
        ),
        row(
            CP,
            "DeletePipeline",
            json!({}),
            "SerializationException",
            "name",
        ),
        // CloudWatch Logs.
        row(
            LOGS,
            "GetLogEvents",
            json!({"logGroupName": "/aws/codebuild/none", "logStreamName": "x"}),
            "ResourceNotFoundException",
            "log",
        ),
        row(
            LOGS,
            "GetLogEvents",
            json!({"logGroupName": "/aws/codebuild/none", "logStreamName": "x", "limit": 0}),
            "InvalidParameterException",
            "limit",
        ),
        row(
            LOGS,
            "DescribeLogStreams",
            json!({"logGroupName": "/aws/codebuild/none", "orderBy": "Size"}),
            "InvalidParameterException",
            "orderBy",
        ),
        row(
            LOGS,
            "GetLogEvents",
            json!({"logStreamName": "x"}),
            "InvalidParameterException",
            "logGroupName",
        ),
        // CodeConnections.
        row(
            CONN,
            "GetConnection",
            json!({"ConnectionArn": "arn:aws:codeconnections:us-east-1:000000000000:connection/0f1e2d3c-0000-4000-8000-000000000000"}),
            "ResourceNotFoundException",
            "connection",
        ),
        // Parameter Store.
        row(
            SSM,
            "GetParameter",
            json!({"Name": "/no/such"}),
            "ParameterNotFound",
            "/no/such",
        ),
        row(
            SSM,
            "PutParameter",
            json!({"Name": "/a", "Value": "v", "Type": "Number"}),
            "ValidationException",
            "'type'",
        ),
        // Secrets Manager.
        row(
            SM,
            "GetSecretValue",
            json!({"SecretId": "app/missing"}),
            "ResourceNotFoundException",
            "secret",
        ),
        row(
            SM,
            "CreateSecret",
            json!({"Name": "x", "SecretString": "a", "SecretBinary": "YQ=="}),
            "InvalidParameterException",
            "SecretBinary",
        ),
        // ECR.
        row(
            ECR,
            "CreateRepository",
            json!({"repositoryName": "Bad/Name"}),
            "InvalidParameterException",
            "repositoryName",
        ),
        row(
            ECR,
            "CreateRepository",
            json!({"repositoryName": "../up"}),
            "InvalidParameterException",
            "repositoryName",
        ),
        row(
            ECR,
            "DescribeRepositories",
            json!({"repositoryNames": ["nope"]}),
            "RepositoryNotFoundException",
            "nope",
        ),
        row(
            ECR,
            "DeleteRepository",
            json!({"repositoryName": "nope"}),
            "RepositoryNotFoundException",
            "nope",
        ),
        // ECS.
        row(
            ECS,
            "DescribeServices",
            json!({"cluster": "nope", "services": ["s"]}),
            "ClusterNotFoundException",
            "Cluster",
        ),
        row(
            ECS,
            "RegisterTaskDefinition",
            json!({"family": "bad family!", "containerDefinitions": []}),
            "InvalidParameterException",
            "family",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_aws_error_type_and_a_message_naming_what_it_refused() {
    let s = LocalServer::start().await;
    s.ok("CreateProject", project("exists")).await;
    let piped = with(
        project("piped"),
        "artifacts",
        json!({"type": "CODEPIPELINE"}),
    );
    s.ok("CreateProject", piped).await;
    let mut wrong = vec![];
    for r in rows() {
        let target = format!("{}.{}", r.target, r.op);
        let (status, body) = s.call_target(&target, r.input.clone()).await;
        let message = body["message"]
            .as_str()
            .or(body["Message"].as_str())
            .unwrap_or_default();
        if status != r.status || body["__type"] != r.aws_type || !message.contains(r.names) {
            wrong.push(format!(
                "{target} {}\n  expected {} {} naming {:?}\n  got      {status} {body}",
                r.input, r.status, r.aws_type, r.names
            ));
        }
    }
    s.shut_down().await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
