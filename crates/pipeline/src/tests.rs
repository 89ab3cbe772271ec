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
