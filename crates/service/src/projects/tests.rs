//! The project rules, without Docker: checks of settings and overrides (table-driven), S3
//! artifacts and caches confined under the S3 root, variable types, the CODEPIPELINE source,
//! and storage over a real history database.

use super::*;
use localbuild_engine::Source;
use serde_json::json;
use std::collections::BTreeMap;

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

/// A history in a temporary folder, a secrets file with one parameter and one secret.
struct Fixture {
    _home: tempfile::TempDir,
    s3_root: std::path::PathBuf,
    projects: Projects,
}

fn fixture() -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let history = HistoryStore::open(home.path().join("history")).unwrap();
    let secrets = SecretsFile {
        parameter_store: BTreeMap::from([("/app/token".to_owned(), "p4ram".to_owned())]),
        secrets_manager: BTreeMap::from([(
            "app/db".to_owned(),
            r#"{"password":"s3cret"}"#.to_owned(),
        )]),
    };
    let roots = localbuild_sources::Roots {
        git_root: home.path().join("git"),
        s3_root: home.path().join("s3"),
    };
    std::fs::create_dir_all(&roots.s3_root).unwrap();
    let store = localbuild_aws::params::Store::new(history.db().clone(), secrets);
    let config = ProjectsConfig::new(roots.clone(), ACCOUNT, store);
    Fixture {
        s3_root: roots.s3_root,
        projects: Projects::new(history, config),
        _home: home,
    }
}

impl Fixture {
    /// CreateProject with `doc` (checked as the API checks it).
    fn create(&self, doc: Value) -> Result<Value, ProjectError> {
        let input: ProjectInput = serde_json::from_value(doc.clone()).unwrap();
        input.check(true)?;
        input.check_rest()?;
        let Value::Object(map) = doc else {
            unreachable!()
        };
        self.projects.create(REGION, &input, map)
    }

    /// A project without source, with an inline buildspec and `extra` fields.
    fn project(&self, name: &str, extra: Value) {
        let mut doc = json!({
            "name": name,
            "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases: {}\n"},
            "artifacts": {"type": "NO_ARTIFACTS"},
            "environment": {"image": "alpine", "type": "LINUX_CONTAINER", "computeType": "BUILD_GENERAL1_SMALL"},
            "serviceRole": "role",
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        self.create(doc).unwrap();
    }

    fn prepare(&self, name: &str, o: &Overrides) -> Result<Prepared, ProjectError> {
        self.projects.prepare(REGION, name, o)
    }
}

/// The message of an `InvalidInputException` (a request is not printed: it holds secrets).
fn invalid<T>(r: Result<T, ProjectError>) -> String {
    match r {
        Err(ProjectError::InvalidInput(m)) => m,
        Err(e) => panic!("expected InvalidInput, got {e:?}"),
        Ok(_) => panic!("expected InvalidInput, got Ok"),
    }
}

#[test]
fn timeout_override_is_5_to_2160_minutes() {
    for (given, ok) in [
        (-1, false),
        (0, false),
        (4, false),
        (5, true),
        (60, true),
        (2160, true),
        (2161, false),
    ] {
        let r = checks::check_timeout_override(given);
        if ok {
            assert_eq!(r.unwrap(), given as u64);
        } else {
            assert_eq!(
                invalid(r),
                format!("Invalid timeoutInMinutesOverride: {given}. It must be between 5 and 2160")
            );
        }
    }
}

#[test]
fn project_input_rules_name_the_field() {
    let base = json!({
        "name": "app", "source": {"type": "NO_SOURCE"}, "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"image": "alpine"}, "serviceRole": "r"
    });
    let with = |k: &str, v: Value| {
        let mut d = base.clone();
        d[k] = v;
        serde_json::from_value::<ProjectInput>(d).unwrap()
    };
    for (input, message) in [
        (
            with("timeoutInMinutes", json!(4)),
            "Invalid timeoutInMinutes: 4. It must be between 5 and 2160",
        ),
        (
            with("timeoutInMinutes", json!(2161)),
            "Invalid timeoutInMinutes: 2161. It must be between 5 and 2160",
        ),
        (
            with("queuedTimeoutInMinutes", json!(481)),
            "Invalid queuedTimeoutInMinutes: 481. It must be between 5 and 480",
        ),
        (
            with("concurrentBuildLimit", json!(0)),
            "Invalid concurrentBuildLimit: 0. It must be at least 1",
        ),
        (
            with("source", json!({"type": "FTP"})),
            "Invalid source type: FTP",
        ),
        (
            with("name", json!("-x")),
            "Invalid project name: -x. The name must be 2 to 150 characters: letters, digits, - and _, starting with a letter or digit",
        ),
    ] {
        assert_eq!(invalid(input.check(true)), message);
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("serviceRole");
    let input: ProjectInput = serde_json::from_value(missing).unwrap();
    assert_eq!(
        invalid(input.check(true)),
        "Missing required parameter: serviceRole"
    );
    assert!(
        input.check(false).is_ok(),
        "UpdateProject needs no serviceRole"
    );
    let bad_id = with(
        "secondarySources",
        json!([{"type": "S3", "sourceIdentifier": "a-b"}]),
    );
    assert!(
        invalid(bad_id.check_rest())
            .starts_with("Invalid secondarySources sourceIdentifier: \"a-b\"")
    );
}

#[test]
fn artifacts_rules_refuse_hostile_and_malformed_values() {
    let s3 = |extra: Value| {
        let mut a = json!({"type": "S3", "location": "my-bucket"});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };
    for (a, message) in [
        (
            json!("S3"),
            "Invalid artifacts: expected a ProjectArtifacts structure",
        ),
        (
            s3(json!({"encryptionDisabled": "yes"})),
            "Invalid artifacts: encryptionDisabled must be a boolean",
        ),
        (
            json!({"type": "NO_ARTIFACTS", "encryptionDisabled": true}),
            "Invalid artifacts: encryptionDisabled is valid only for type S3",
        ),
        (
            json!({"type": "FTP"}),
            "Invalid artifacts: type Some(\"FTP\") is not one of NO_ARTIFACTS, S3, CODEPIPELINE",
        ),
        (
            json!({"type": "S3"}),
            "Invalid artifacts: location (the bucket) is required for type S3",
        ),
        (
            s3(json!({"namespaceType": "DATE"})),
            "Invalid artifacts: namespaceType \"DATE\" is not one of NONE, BUILD_ID",
        ),
        (
            s3(json!({"packaging": "TAR"})),
            "Invalid artifacts: packaging \"TAR\" is not one of NONE, ZIP",
        ),
    ] {
        assert_eq!(
            invalid(Artifacts::from_json(&a).check("artifacts")),
            message,
            "{a}"
        );
    }
    // Hostile buckets and keys: refused before they become a folder.
    for (a, field) in [
        (json!({"type": "S3", "location": ".."}), "location"),
        (json!({"type": "S3", "location": "../etc"}), "location"),
        (json!({"type": "S3", "location": "a/b"}), "location"),
        (json!({"type": "S3", "location": "/tmp"}), "location"),
        (s3(json!({"path": "../../outside"})), "path"),
        (s3(json!({"path": "a/../../b"})), "path"),
        (s3(json!({"name": "../x"})), "name"),
    ] {
        let m = invalid(Artifacts::from_json(&a).check("artifactsOverride"));
        assert!(
            m.starts_with(&format!("Invalid artifactsOverride: {field}: ")),
            "{a}: {m}"
        );
    }
}

#[test]
fn s3_artifacts_and_caches_are_folders_under_the_s3_root() {
    let root = std::path::Path::new("/srv/s3");
    let a = Artifacts::from_json(&json!({
        "type": "S3", "location": "out", "path": "/rel/", "name": "app.zip",
        "namespaceType": "BUILD_ID", "packaging": "ZIP"
    }));
    let art = checks::s3_artifact(root, "artifacts", "proj", &a)
        .unwrap()
        .unwrap();
    assert_eq!(art.bucket_dir, root.join("out"));
    assert_eq!((art.path.as_str(), art.name.as_str()), ("rel", "app.zip"));
    assert!(art.build_id_namespace && art.zip);
    let unnamed = Artifacts::from_json(&json!({"type": "S3", "location": "out"}));
    let art = checks::s3_artifact(root, "artifacts", "proj", &unnamed)
        .unwrap()
        .unwrap();
    assert_eq!(art.name, "proj", "the project's name by default");
    let none = Artifacts::from_json(&json!({"type": "NO_ARTIFACTS"}));
    assert!(
        checks::s3_artifact(root, "artifacts", "proj", &none)
            .unwrap()
            .is_none()
    );

    let c = Cache::from_json(&json!({"type": "S3", "location": "cache-bucket/a/b/"}));
    let cache = checks::s3_cache(root, "cache", &c).unwrap().unwrap();
    assert_eq!(cache.dir, root.join("cache-bucket/a/b"));
    assert_eq!(cache.location, "cache-bucket/a/b");
    for (location, message_start) in [
        ("..", "Invalid cacheOverride: location: "),
        (
            "cache-bucket/../../etc",
            "Invalid cacheOverride: location: ",
        ),
        ("cache-bucket//x", "Invalid cacheOverride: location: "),
        (
            "",
            "Invalid cacheOverride: location (bucket[/prefix]) is required for type S3",
        ),
    ] {
        let c = Cache::from_json(&json!({"type": "S3", "location": location}));
        let m = invalid(checks::s3_cache(root, "cacheOverride", &c));
        assert!(m.starts_with(message_start), "{location:?}: {m}");
    }
    for (c, message) in [
        (
            json!(["S3"]),
            "Invalid cache: expected a ProjectCache structure",
        ),
        (
            json!({"type": "EFS"}),
            "Invalid cache: type Some(\"EFS\") is not one of NO_CACHE, S3, LOCAL",
        ),
    ] {
        assert_eq!(invalid(Cache::from_json(&c).check("cache")), message);
    }
    assert!(
        Cache::from_json(&json!({"type": "LOCAL"}))
            .check("cache")
            .is_ok()
    );
}

#[test]
fn secondary_artifacts_need_distinct_identifiers_and_no_codepipeline() {
    let list = |v: Value| -> Vec<Artifacts> {
        v.as_array()
            .unwrap()
            .iter()
            .map(Artifacts::from_json)
            .collect()
    };
    let ok = list(json!([
        {"type": "S3", "location": "out-bucket", "artifactIdentifier": "one"},
        {"type": "NO_ARTIFACTS", "artifactIdentifier": "two"}
    ]));
    assert!(checks::check_secondary_artifacts("secondaryArtifacts", &ok).is_ok());
    let twice = list(json!([
        {"type": "NO_ARTIFACTS", "artifactIdentifier": "one"},
        {"type": "NO_ARTIFACTS", "artifactIdentifier": "one"}
    ]));
    assert_eq!(
        invalid(checks::check_secondary_artifacts(
            "secondaryArtifacts",
            &twice
        )),
        "Invalid secondaryArtifacts: artifactIdentifier \"one\" is used more than once"
    );
    let pipeline = list(json!([{"type": "CODEPIPELINE", "artifactIdentifier": "one"}]));
    assert_eq!(
        invalid(checks::check_secondary_artifacts(
            "secondaryArtifactsOverride",
            &pipeline
        )),
        "Invalid secondaryArtifactsOverride: type CODEPIPELINE is not supported for secondary artifacts (one)"
    );
    let no_id = list(json!([{"type": "NO_ARTIFACTS"}]));
    assert!(
        invalid(checks::check_secondary_artifacts(
            "secondaryArtifacts",
            &no_id
        ))
        .starts_with("Invalid secondaryArtifacts artifactIdentifier: \"\"")
    );
}

#[test]
fn variable_types_resolve_from_the_secret_store_and_are_masked() {
    let f = fixture();
    let var = |kind: Option<&str>, value: &str| EnvVar {
        name: "V".into(),
        value: value.into(),
        kind: kind.map(str::to_owned),
    };
    let secrets = f.projects.config().secret_store.snapshot().unwrap();
    for (v, want) in [
        (var(None, "plain"), Ok("plain".to_owned())),
        (var(Some("PLAINTEXT"), "plain"), Ok("plain".to_owned())),
        (var(Some("PARAMETER_STORE"), "/app/token"), Ok("p4ram".to_owned())),
        (var(Some("SECRETS_MANAGER"), "app/db:password"), Ok("s3cret".to_owned())),
        (
            var(Some("SECRETS_MANAGER"), ""),
            Err("Invalid Secrets Manager reference for V: ".to_owned()),
        ),
        (
            var(Some("VAULT"), "x"),
            Err("Invalid environment variable type VAULT for V: PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER".to_owned()),
        ),
    ] {
        let got = resolve_variable(&secrets, &v).map_err(|e| e.to_string());
        assert_eq!(got, want, "{v:?}");
    }
    assert!(
        resolve_variable(&secrets, &var(Some("PARAMETER_STORE"), "/missing"))
            .unwrap_err()
            .to_string()
            .contains("/missing")
    );

    f.project(
        "vars",
        json!({"environment": {"image": "alpine", "environmentVariables": [
            {"name": "TOKEN", "value": "/app/token", "type": "PARAMETER_STORE"},
            {"name": "MODE", "value": "debug"}
        ]}}),
    );
    let o = Overrides {
        environment_variables: vec![EnvVar {
            name: "MODE".into(),
            value: "release".into(),
            kind: None,
        }],
        ..Default::default()
    };
    let p = f.prepare("vars", &o).unwrap();
    assert_eq!(
        p.request.env_overrides,
        [
            ("TOKEN".to_owned(), "p4ram".to_owned()),
            ("MODE".to_owned(), "debug".to_owned()),
            ("MODE".to_owned(), "release".to_owned()),
        ],
        "the project's variables, then the overrides"
    );
    assert_eq!(p.request.mask, ["p4ram"], "only stored values are masked");
}

#[test]
fn prepare_takes_the_project_then_the_overrides() {
    let f = fixture();
    f.project(
        "app",
        json!({
            "timeoutInMinutes": 30,
            "concurrentBuildLimit": 2,
            "artifacts": {"type": "S3", "location": "out", "name": "app.zip"},
            "cache": {"type": "S3", "location": "caches/app"},
        }),
    );
    let p = f.prepare("app", &Overrides::default()).unwrap();
    assert_eq!(p.request.timeout, Duration::from_secs(30 * 60));
    assert_eq!(p.project_limit, Some(2));
    assert_eq!(p.request.image, "alpine");
    assert_eq!(p.request.account_id, ACCOUNT);
    assert_eq!(p.request.region, REGION);
    assert_eq!(p.source_type, "NO_SOURCE");
    let art = p.request.s3_artifact.unwrap();
    assert_eq!(art.bucket_dir, f.s3_root.join("out"));
    assert_eq!(
        p.request.s3_cache.unwrap().dir,
        f.s3_root.join("caches/app")
    );

    let o = Overrides {
        timeout_in_minutes: Some(5),
        image: Some("busybox".into()),
        privileged_mode: Some(true),
        artifacts: Some(Artifacts::from_json(&json!({"type": "NO_ARTIFACTS"}))),
        cache: Some(Cache::from_json(&json!({"type": "NO_CACHE"}))),
        ..Default::default()
    };
    let p = f.prepare("app", &o).unwrap();
    assert_eq!(p.request.timeout, Duration::from_secs(5 * 60));
    assert_eq!(p.request.image, "busybox");
    assert!(p.request.privileged);
    assert!(p.request.s3_artifact.is_none() && p.request.s3_cache.is_none());

    for (o, message_start) in [
        (
            Overrides {
                timeout_in_minutes: Some(2161),
                ..Default::default()
            },
            "Invalid timeoutInMinutesOverride: 2161",
        ),
        (
            Overrides {
                artifacts: Some(Artifacts::from_json(
                    &json!({"type": "S3", "location": "../up"}),
                )),
                ..Default::default()
            },
            "Invalid artifactsOverride: location: ",
        ),
        (
            Overrides {
                cache: Some(Cache::from_json(
                    &json!({"type": "S3", "location": "b/../../x"}),
                )),
                ..Default::default()
            },
            "Invalid cacheOverride: location: ",
        ),
        (
            Overrides {
                source_type: Some("FTP".into()),
                ..Default::default()
            },
            "Invalid source type: FTP",
        ),
        (
            Overrides {
                source_type: Some("S3".into()),
                source_location: Some("bucket/../../etc".into()),
                ..Default::default()
            },
            "invalid source location \"bucket/../../etc\"",
        ),
        (
            Overrides {
                source_type: Some("GITHUB".into()),
                source_location: Some("file:///etc".into()),
                ..Default::default()
            },
            "source location \"file:///etc\" names a path on this machine",
        ),
    ] {
        let m = invalid(f.prepare("app", &o));
        assert!(m.starts_with(message_start), "{message_start}: {m}");
    }
    match f.prepare("nope", &Overrides::default()) {
        Err(e @ ProjectError::NotFound { .. }) => assert_eq!(
            e.to_string(),
            format!("Project cannot be found: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/nope")
        ),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a project that does not exist"),
    }
}

#[test]
fn a_pipeline_source_is_codepipeline_and_keeps_artifacts_for_the_pipeline() {
    let f = fixture();
    f.project(
        "deploy",
        json!({"artifacts": {"type": "S3", "location": "out"},
               "secondaryArtifacts": [{"type": "S3", "location": "out", "artifactIdentifier": "extra"}]}),
    );
    let dir = f.s3_root.join("unpacked");
    let o = Overrides {
        pipeline: Some(PipelineSource {
            dir: dir.clone(),
            location: "arn:aws:s3:::artifacts/p/src.zip".into(),
            secondary: vec![("Other".into(), f.s3_root.join("other"))],
            pipeline: "release".into(),
        }),
        // A pipeline build's artifacts are the pipeline's: an override is not read.
        artifacts: Some(Artifacts::from_json(
            &json!({"type": "S3", "location": ".."}),
        )),
        ..Default::default()
    };
    let p = f.prepare("deploy", &o).unwrap();
    assert_eq!(p.source_type, "CODEPIPELINE");
    assert_eq!(
        p.source_location.as_deref(),
        Some("arn:aws:s3:::artifacts/p/src.zip")
    );
    assert_eq!(
        p.request.source,
        Source::Pipeline {
            dir,
            location: "arn:aws:s3:::artifacts/p/src.zip".into()
        }
    );
    assert_eq!(p.request.initiator, "codepipeline/release");
    assert_eq!(p.request.secondary_sources.len(), 1);
    assert!(p.request.s3_artifact.is_none());
    assert!(p.request.s3_secondary_artifacts.is_empty());

    let o = Overrides {
        pipeline: Some(PipelineSource {
            secondary: vec![("bad-id".into(), f.s3_root.join("x"))],
            ..o.pipeline.clone().unwrap()
        }),
        ..Default::default()
    };
    assert!(invalid(f.prepare("deploy", &o)).contains("bad-id"));
}

#[test]
fn projects_are_stored_as_sent_with_computed_fields() {
    let f = fixture();
    let doc = json!({
        "name": "stored", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
        "artifacts": {"type": "NO_ARTIFACTS"}, "environment": {"image": "alpine"},
        "serviceRole": "role", "description": "kept as sent"
    });
    let created = f.create(doc.clone()).unwrap();
    assert_eq!(created["description"], "kept as sent");
    assert_eq!(
        created["arn"],
        format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/stored")
    );
    assert_eq!(created["timeoutInMinutes"], 60);
    assert_eq!(
        created["environment"]["imagePullCredentialsType"],
        "CODEBUILD"
    );
    match f.create(doc) {
        Err(e @ ProjectError::AlreadyExists { .. }) => assert_eq!(
            e.to_string(),
            format!("Project already exists: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/stored")
        ),
        other => panic!("{other:?}"),
    }
    let update: ProjectInput =
        serde_json::from_value(json!({"name": "stored", "timeoutInMinutes": 90})).unwrap();
    let mut change = Map::new();
    change.insert("name".into(), json!("stored"));
    change.insert("timeoutInMinutes".into(), json!(90));
    let updated = f.projects.update(REGION, &update, change).unwrap();
    assert_eq!(updated["timeoutInMinutes"], 90);
    assert_eq!(updated["created"], created["created"]);
    assert_eq!(updated["description"], "kept as sent");
    let found = f
        .projects
        .get_many(&["stored".to_owned(), "absent".to_owned()])
        .unwrap();
    assert_eq!(found, [("stored".to_owned(), updated)]);
    assert_eq!(
        f.projects.list(ProjectSort::Name, false).unwrap(),
        ["stored"]
    );
    f.projects.delete("stored").unwrap();
    assert!(!f.projects.exists("stored").unwrap());
    let missing: ProjectInput = serde_json::from_value(json!({"name": "stored"})).unwrap();
    assert!(matches!(
        f.projects.update(REGION, &missing, Map::new()),
        Err(ProjectError::NotFound { .. })
    ));
}

#[test]
fn a_project_location_naming_this_machine_is_refused() {
    let f = fixture();
    let doc = json!({
        "name": "local", "source": {"type": "GITHUB", "location": "/etc"},
        "artifacts": {"type": "NO_ARTIFACTS"}, "environment": {"image": "alpine"},
        "serviceRole": "role"
    });
    invalid(f.create(doc));
    assert!(!f.projects.exists("local").unwrap());
}

#[test]
fn buildspecs_are_inline_or_paths() {
    assert_eq!(
        buildspec_source(None),
        localbuild_engine::BuildspecSource::Default
    );
    assert_eq!(
        buildspec_source(Some("")),
        localbuild_engine::BuildspecSource::Default
    );
    assert_eq!(
        buildspec_source(Some("ci/buildspec.yml")),
        localbuild_engine::BuildspecSource::InSource("ci/buildspec.yml".into())
    );
    assert!(matches!(
        buildspec_source(Some("version: 0.2\nphases: {}")),
        localbuild_engine::BuildspecSource::Inline(_)
    ));
    assert!(matches!(
        buildspec_source(Some("version: 0.2")),
        localbuild_engine::BuildspecSource::Inline(_)
    ));
}

#[test]
fn a_project_for_a_pipeline_started_directly_needs_an_artifacts_override() {
    let f = fixture();
    f.project("piped", json!({"artifacts": {"type": "CODEPIPELINE"}}));
    let refused = |o: &Overrides| match f.prepare("piped", o) {
        Err(ProjectError::InvalidInput(m)) => m,
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started without somewhere to put its artifacts"),
    };
    let message = "ArtifactsOverride must be set when using artifacts type CodePipelines";
    assert_eq!(refused(&Overrides::default()), message);
    let codepipeline = Overrides {
        artifacts: Some(Artifacts::from_json(&json!({"type": "CODEPIPELINE"}))),
        ..Default::default()
    };
    assert_eq!(refused(&codepipeline), message);
    let elsewhere = Overrides {
        artifacts: Some(Artifacts::from_json(&json!({"type": "NO_ARTIFACTS"}))),
        ..Default::default()
    };
    assert!(f.prepare("piped", &elsewhere).is_ok());
    // Its pipeline's builds take the pipeline's artifacts.
    let from_pipeline = Overrides {
        pipeline: Some(PipelineSource {
            dir: f.s3_root.join("unpacked"),
            location: "arn:aws:s3:::artifacts/p/src.zip".into(),
            secondary: vec![],
            pipeline: "release".into(),
        }),
        ..Default::default()
    };
    assert!(f.prepare("piped", &from_pipeline).is_ok());
}
