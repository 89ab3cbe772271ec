//! Unit tests of the declaration rules and definition files (no I/O).

use crate::*;
use serde_json::{Value, json};

#[test]
fn globs_match_like_git() {
    assert!(glob("main", "main"));
    assert!(!glob("main", "mainline"));
    assert!(glob("release/*", "release/1.2"));
    assert!(!glob("release/*", "release/1/2"));
    assert!(glob("release/**", "release/1/2"));
    assert!(glob("**/*.md", "docs/a/b.md"));
    assert!(glob("**/*.md", "b.md"));
    assert!(glob("src/**", "src/x/y.rs"));
    assert!(glob("v?", "v1"));
    assert!(!glob("*.md", "docs/a.md"));
    let p = Patterns {
        includes: Some(vec!["src/**".into()]),
        excludes: Some(vec!["src/**/*.md".into()]),
    };
    assert!(p.admits("src/app/main.rs"));
    assert!(!p.admits("src/app/README.md"));
    assert!(!p.admits("docs/x.rs"));
    assert!(Patterns::default().admits("anything"));
}

const SOURCE: &str = r#"{"name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS",
        "provider": "CodeCommit", "version": "1"}, "configuration": {"RepositoryName": "app",
        "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}"#;

fn definition(stages: &str) -> String {
    format!(
        r#"{{"name": "app", "roleArn": "arn:aws:iam::000000000000:role/p",
  "artifactStore": {{"type": "S3", "location": "bucket"}},
  "stages": [{stages}]}}"#
    )
}

#[test]
fn a_definition_file_is_read_in_either_form() {
    let bare = definition(&format!(
        r#"{{"name": "Source", "actions": [{SOURCE}]}}, {{"name": "Approve", "actions": [
            {{"name": "Ok", "actionTypeId": {{"category": "Approval", "owner": "AWS",
            "provider": "Manual", "version": "1"}}}}]}}"#
    ));
    let body = read_definition(&bare).unwrap();
    assert_eq!(body["pipeline"]["name"], "app");
    let wrapped = format!(r#"{{"pipeline": {bare}, "tags": []}}"#);
    assert_eq!(read_definition(&wrapped).unwrap()["tags"], json!([]));
}

#[test]
fn a_definition_error_says_where_and_what() {
    let e = read_definition("{\n  \"name\": \"app\",\n  \"stages\": [,]\n}").unwrap_err();
    assert_eq!(e.at, Some((3, 14)));
    assert!(
        matches!(e.error, DeclarationError::Serialization(_)),
        "{:?}",
        e.error
    );

    let wrong_type = definition(r#"{"name": "Source", "actions": 7}"#);
    let e = read_definition(&wrong_type).unwrap_err();
    assert_eq!(e.at.map(|(line, _)| line), Some(3));
    assert!(
        e.error.to_string().contains("'pipeline.stages[0].actions'"),
        "{}",
        e.error
    );

    // One stage only: CodePipeline wants at least two.
    let e = read_definition(&definition(&format!(
        r#"{{"name": "Source", "actions": [{SOURCE}]}}"#
    )))
    .unwrap_err();
    assert_eq!(e.at, None);
    assert!(
        matches!(e.error, DeclarationError::InvalidStructure(_)),
        "{:?}",
        e.error
    );
}

/// One declaration rule per row: a change to a valid two-stage pipeline, and the
/// CodePipeline exception it must give.
#[test]
fn declaration_rules_as_codepipeline_applies_them() {
    type Change = fn(&mut Value);
    type Expected = fn(&DeclarationError) -> bool;
    let rows: &[(&str, Change, Expected)] = &[
        ("valid", |_| {}, |_| false),
        (
            "pipeline name pattern",
            |p| p["name"] = json!("a b"),
            |e| matches!(e, DeclarationError::Validation(m) if m.contains("pipeline.name")),
        ),
        (
            "artifact store is a path",
            |p| p["artifactStore"]["location"] = json!("/tmp/x"),
            |e| matches!(e, DeclarationError::Validation(m) if m.contains("pipeline.artifactStore.location")),
        ),
        (
            "artifact store is ..",
            |p| p["artifactStore"]["location"] = json!(".."),
            |e| matches!(e, DeclarationError::Validation(_)),
        ),
        (
            "artifact store with a slash",
            |p| p["artifactStore"]["location"] = json!("a/b"),
            |e| matches!(e, DeclarationError::Validation(_)),
        ),
        (
            "no artifact store",
            |p| {
                p.as_object_mut().unwrap().remove("artifactStore");
            },
            |e| matches!(e, DeclarationError::InvalidStructure(_)),
        ),
        (
            "one stage",
            |p| {
                p["stages"].as_array_mut().unwrap().truncate(1);
            },
            |e| matches!(e, DeclarationError::InvalidStructure(_)),
        ),
        (
            "unknown provider",
            |p| p["stages"][1]["actions"][0]["actionTypeId"]["provider"] = json!("Lambda"),
            |e| matches!(e, DeclarationError::InvalidActionDeclaration(_)),
        ),
        (
            "input from nowhere",
            |p| p["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nope"}]),
            |e| matches!(e, DeclarationError::InvalidStructure(_)),
        ),
        (
            "bad executionMode",
            |p| p["executionMode"] = json!("SOMETIMES"),
            |e| matches!(e, DeclarationError::Validation(_)),
        ),
    ];
    let base: Value = serde_json::from_str(&definition(&format!(
        r#"{{"name": "Source", "actions": [{SOURCE}]}}, {{"name": "Build", "actions": [
            {{"name": "Build", "actionTypeId": {{"category": "Build", "owner": "AWS",
            "provider": "CodeBuild", "version": "1"}}, "configuration": {{"ProjectName": "p"}},
            "inputArtifacts": [{{"name": "Src"}}]}}]}}"#
    )))
    .unwrap();
    for (what, change, expected) in rows {
        let mut p = base.clone();
        change(&mut p);
        match normalise(&p, 1) {
            Ok(_) => assert_eq!(*what, "valid", "{what}: accepted"),
            Err(e) => assert!(expected(&e), "{what}: {e:?}"),
        }
    }
}

/// The exception a declaration error answers with, by name.
fn exception(e: &DeclarationError) -> (&'static str, &str) {
    match e {
        DeclarationError::Validation(m) => ("Validation", m),
        DeclarationError::InvalidStructure(m) => ("InvalidStructure", m),
        DeclarationError::InvalidActionDeclaration(m) => ("InvalidActionDeclaration", m),
        DeclarationError::InvalidStageDeclaration(m) => ("InvalidStageDeclaration", m),
        DeclarationError::Serialization(m) => ("Serialization", m),
    }
}

/// Every rule of `check`, one row each: a change to a valid V2 pipeline (a CodeStar source, a
/// CodeBuild stage, an S3 deploy stage), the exception, and what the message must name.
#[test]
fn every_declaration_rule_refuses_with_its_exception_and_names_the_culprit() {
    type Change = fn(&mut Value);
    let source = json!({"name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS",
        "provider": "CodeStarSourceConnection", "version": "1"},
        "configuration": {"ConnectionArn": "arn:aws:codestar-connections:us-east-1:000000000000:connection/x",
            "FullRepositoryId": "me/app", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}]});
    let build = json!({"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS",
        "provider": "CodeBuild", "version": "1"}, "configuration": {"ProjectName": "p"},
        "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Out"}]});
    let deploy = json!({"name": "Deploy", "actionTypeId": {"category": "Deploy", "owner": "AWS",
        "provider": "S3", "version": "1"},
        "configuration": {"BucketName": "site", "Extract": "true"},
        "inputArtifacts": [{"name": "Out"}]});
    let base = json!({"name": "app", "roleArn": "arn:aws:iam::000000000000:role/p",
        "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "bucket"},
        "stages": [{"name": "Source", "actions": [source]},
                   {"name": "Build", "actions": [build]},
                   {"name": "Deploy", "actions": [deploy]}]});
    fn action(p: &mut Value, stage: usize) -> &mut Value {
        &mut p["stages"][stage]["actions"][0]
    }
    let rows: &[(&str, Change, &str, &str)] = &[
        (
            "a pipeline name over 100 characters",
            |p| p["name"] = json!("a".repeat(101)),
            "Validation",
            "pipeline.name",
        ),
        (
            "artifactStore and artifactStores",
            |p| p["artifactStores"] = json!({"us-east-1": {"type": "S3", "location": "other"}}),
            "InvalidStructure",
            "artifactStores",
        ),
        (
            "an artifact store of two characters",
            |p| p["artifactStore"]["location"] = json!("ab"),
            "Validation",
            "pipeline.artifactStore.location",
        ),
        (
            "an artifact store ending with a dash",
            |p| p["artifactStore"]["location"] = json!("bucket-"),
            "Validation",
            "pipeline.artifactStore.location",
        ),
        (
            "an artifact store that is not S3",
            |p| p["artifactStore"]["type"] = json!("EFS"),
            "InvalidStructure",
            "type must be S3",
        ),
        (
            "variables in a V1 pipeline",
            |p| {
                p["pipelineType"] = json!("V1");
                p["variables"] = json!([{"name": "v"}]);
            },
            "Validation",
            "V2",
        ),
        (
            "a variable name with a dot",
            |p| p["variables"] = json!([{"name": "a.b"}]),
            "Validation",
            "'a.b'",
        ),
        (
            "a variable declared twice",
            |p| p["variables"] = json!([{"name": "v"}, {"name": "v"}]),
            "InvalidStructure",
            "'v'",
        ),
        (
            "a trigger in a V1 pipeline",
            |p| {
                p["pipelineType"] = json!("V1");
                p["triggers"] = json!([{"providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": "Source"}}]);
            },
            "Validation",
            "Triggers",
        ),
        (
            "a trigger naming no source action",
            |p| {
                p["triggers"] = json!([{"providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": "Elsewhere"}}]);
            },
            "InvalidStructure",
            "'Elsewhere'",
        ),
        (
            "a trigger filtering on tags",
            |p| {
                p["triggers"] = json!([{"providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": "Source",
                        "push": [{"tags": {"includes": ["v*"]}}]}}]);
            },
            "Validation",
            "tag",
        ),
        (
            "a trigger on pull requests",
            |p| {
                p["triggers"] = json!([{"providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": "Source",
                        "pullRequest": [{"events": ["OPEN"]}]}}]);
            },
            "Validation",
            "pull request",
        ),
        (
            "a stage name with a space",
            |p| p["stages"][1]["name"] = json!("Build it"),
            "InvalidStageDeclaration",
            "'Build it'",
        ),
        (
            "two stages of one name",
            |p| p["stages"][2]["name"] = json!("Build"),
            "InvalidStructure",
            "'Build'",
        ),
        (
            "a stage without actions",
            |p| p["stages"][2]["actions"] = json!([]),
            "InvalidStructure",
            "'Deploy'",
        ),
        (
            "an action name with a slash",
            |p| action(p, 1)["name"] = json!("a/b"),
            "InvalidActionDeclaration",
            "'a/b'",
        ),
        (
            "two actions of one name in a stage",
            |p| {
                let mut twin = action(p, 1).clone();
                twin["outputArtifacts"] = json!([]);
                p["stages"][1]["actions"].as_array_mut().unwrap().push(twin);
            },
            "InvalidStructure",
            "'Build'",
        ),
        (
            "runOrder 0",
            |p| action(p, 1)["runOrder"] = json!(0),
            "InvalidActionDeclaration",
            "runOrder 0",
        ),
        (
            "runOrder 1000",
            |p| action(p, 1)["runOrder"] = json!(1000),
            "InvalidActionDeclaration",
            "runOrder 1000",
        ),
        (
            "a build action in the first stage",
            |p| {
                let b = action(p, 1).clone();
                p["stages"][0]["actions"].as_array_mut().unwrap().push(b);
            },
            "InvalidStructure",
            "first stage",
        ),
        (
            "a source action in a later stage",
            |p| {
                let mut s = action(p, 0).clone();
                s["name"] = json!("Again");
                s["outputArtifacts"] = json!([{"name": "Src2"}]);
                p["stages"][1]["actions"].as_array_mut().unwrap().push(s);
            },
            "InvalidStructure",
            "'Again'",
        ),
        (
            "a provider localbuild cannot run",
            |p| action(p, 2)["actionTypeId"]["provider"] = json!("CloudFormation"),
            "InvalidActionDeclaration",
            "CloudFormation",
        ),
        (
            "a CodeStar source without its branch",
            |p| {
                action(p, 0)["configuration"]
                    .as_object_mut()
                    .unwrap()
                    .remove("BranchName");
            },
            "InvalidActionDeclaration",
            "'BranchName'",
        ),
        (
            "a CodeBuild action without its project",
            |p| action(p, 1)["configuration"]["ProjectName"] = json!(""),
            "InvalidActionDeclaration",
            "'ProjectName'",
        ),
        (
            "an S3 deploy bucket that is a path",
            |p| action(p, 2)["configuration"]["BucketName"] = json!("a/b"),
            "InvalidActionDeclaration",
            "BucketName",
        ),
        (
            "an S3 deploy object key through ..",
            |p| {
                action(p, 2)["configuration"]["Extract"] = json!("false");
                action(p, 2)["configuration"]["ObjectKey"] = json!("../out.zip");
            },
            "InvalidActionDeclaration",
            "ObjectKey",
        ),
        (
            "an S3 deploy that does not extract and names no object",
            |p| action(p, 2)["configuration"]["Extract"] = json!("false"),
            "InvalidActionDeclaration",
            "'ObjectKey'",
        ),
        (
            "timeoutInMinutes on a build action",
            |p| action(p, 1)["timeoutInMinutes"] = json!(10),
            "InvalidActionDeclaration",
            "timeoutInMinutes",
        ),
        (
            "an approval timeout under 5 minutes",
            |p| {
                p["stages"][2]["actions"] = json!([{"name": "Approve", "actionTypeId":
                    {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                    "timeoutInMinutes": 4}]);
            },
            "InvalidActionDeclaration",
            "timeoutInMinutes 4",
        ),
        (
            "a CodeBuild action with no input",
            |p| action(p, 1)["inputArtifacts"] = json!([]),
            "InvalidActionDeclaration",
            "0 input artifact(s)",
        ),
        (
            "a source action with two outputs",
            |p| action(p, 0)["outputArtifacts"] = json!([{"name": "Src"}, {"name": "More"}]),
            "InvalidActionDeclaration",
            "2 output artifact(s)",
        ),
        (
            "a CodeBuild action with two inputs and no PrimarySource",
            |p| {
                action(p, 0)["outputArtifacts"] = json!([{"name": "Src"}]);
                action(p, 2)["inputArtifacts"] = json!([{"name": "Out"}]);
                let more = json!({"name": "Other", "actionTypeId": {"category": "Source",
                    "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                    "configuration": {"RepositoryName": "lib", "BranchName": "main"},
                    "outputArtifacts": [{"name": "Lib"}]});
                p["stages"][0]["actions"].as_array_mut().unwrap().push(more);
                action(p, 1)["inputArtifacts"] = json!([{"name": "Src"}, {"name": "Lib"}]);
            },
            "InvalidActionDeclaration",
            "'PrimarySource'",
        ),
        (
            "EnvironmentVariables that are not a list",
            |p| action(p, 1)["configuration"]["EnvironmentVariables"] = json!("{\"a\": 1}"),
            "InvalidActionDeclaration",
            "EnvironmentVariables",
        ),
        (
            "an input no earlier stage makes",
            |p| action(p, 2)["inputArtifacts"] = json!([{"name": "Later"}]),
            "InvalidStructure",
            "'Later'",
        ),
        (
            "an output artifact name with a dot",
            |p| action(p, 1)["outputArtifacts"] = json!([{"name": "out.zip"}]),
            "InvalidActionDeclaration",
            "'out.zip'",
        ),
        (
            "one output artifact name twice",
            |p| action(p, 1)["outputArtifacts"] = json!([{"name": "Src"}]),
            "InvalidStructure",
            "'Src'",
        ),
    ];
    normalise(&base, 1).expect("the base pipeline is valid");
    for (what, change, kind, names) in rows {
        let mut p = base.clone();
        change(&mut p);
        let e = normalise(&p, 1).expect_err(what);
        let (got, message) = exception(&e);
        assert_eq!(got, *kind, "{what}: {message}");
        assert!(
            message.contains(names),
            "{what}: the message should name {names:?}: {message}"
        );
    }
}
