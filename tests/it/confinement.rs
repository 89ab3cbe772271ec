//! Untrusted input never names a host path outside localbuild's folders (issue 21, items 1-4).
//!
//! Every input field that becomes a host path is listed in [`FIELDS`] with the test that
//! tries a hostile value through the real CLI or the real aws CLI. A canary folder outside
//! every root must survive each of them.

use crate::api::{Serve, get, no_source};
use crate::harness::Build;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Every input field that becomes a host path, and the test below that tries to escape with it.
/// (Paths are made by `localbuild_confine::Root::confined` only; fields are validated first.)
const FIELDS: &[(&str, &str)] = &[
    (
        "buildspec artifacts.secondary-artifacts identifier",
        "secondary_artifact_identifiers_are_validated_before_anything_is_written",
    ),
    (
        "buildspec artifacts.name",
        "an_artifact_name_that_evaluates_to_an_escape_stays_in_the_build",
    ),
    (
        "buildspec batch identifiers (combined artifacts, reports)",
        "batch_identifiers_are_validated_under_run_and_serve",
    ),
    (
        "buildspec reports group name",
        "report_group_and_cache_key_names_stay_in_their_folders",
    ),
    (
        "buildspec cache key",
        "report_group_and_cache_key_names_stay_in_their_folders",
    ),
    (
        "buildspec path (default buildspec.yml, buildspecOverride) incl. links",
        "a_buildspec_that_links_out_of_the_source_is_not_read",
    ),
    (
        "project name, secondary source identifiers, git and S3 locations",
        "api_fields_that_name_paths_are_refused_as_codebuild_refuses_them",
    ),
    (
        "pipeline artifactStore.location, S3 action buckets and keys",
        "api_fields_that_name_paths_are_refused_as_codebuild_refuses_them",
    ),
    (
        "artifacts, secondaryArtifacts, their StartBuild overrides and cache of type S3 (bucket, path, name, location; the buildspec's name with overrideArtifactName)",
        "s3_artifact_and_cache_fields_stay_in_the_s3_store",
    ),
    (
        "console artifact download path",
        "api_fields_that_name_paths_are_refused_as_codebuild_refuses_them",
    ),
    (
        "docker bind mounts of a privileged build (guarded Docker API), incl. links",
        "a_privileged_builds_docker_bind_mounts_stay_in_its_source",
    ),
];

/// A folder outside every root, with a file in it, that no hostile input may touch.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new() -> Canary {
        let dir = std::env::temp_dir().join(format!("localbuild-canary-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), "precious").unwrap();
        Canary { dir }
    }

    /// `../` enough times to reach `/` from any folder, then this canary.
    fn escape(&self) -> String {
        format!(
            "{}{}",
            "../".repeat(24),
            self.dir.display().to_string().trim_start_matches('/')
        )
    }

    fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            vec!["keep".to_owned()],
            "the canary folder was written to"
        );
        assert_eq!(
            std::fs::read_to_string(self.dir.join("keep")).unwrap(),
            "precious"
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_field_table_names_existing_tests() {
    let me = include_str!("confinement.rs");
    for (field, test) in FIELDS {
        assert!(
            me.contains(&format!("fn {test}()")),
            "{field}: no test {test}"
        );
    }
}

#[test]
fn a_privileged_builds_docker_bind_mounts_stay_in_its_source() {
    let canary = Canary::new();
    let canary_dir = canary.dir.display().to_string();
    let inner = "localbuild-test/busybox:1";
    // With -m the source is a host folder: a link in it, `..`, and the canary's own path.
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - ln -s {canary_dir} out\n      - docker run --rm -v $(pwd)/out:/c {inner} sh -c 'echo bad > /c/keep' || echo refused-link\n      - docker run --rm -v $(pwd)/{escape}:/c {inner} sh -c 'echo bad > /c/keep' || echo refused-dots\n      - docker run --rm --mount type=bind,source={canary_dir},target=/c {inner} sh -c 'echo bad > /c/keep' || echo refused-path\n      - rm out\n",
        escape = canary.escape(),
    );
    let r = Build::new(&spec)
        .image("localbuild-test/docker:1")
        .args(&["-d", "-m"])
        .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for line in ["refused-link", "refused-dots", "refused-path"] {
        assert!(
            r.stdout.contains(&format!("\n{line}\n")),
            "{line}: {}",
            r.stdout
        );
    }
    canary.assert_untouched();
}

#[test]
fn secondary_artifact_identifiers_are_validated_before_anything_is_written() {
    let canary = Canary::new();
    let yaml = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\nartifacts:\n  files: [out.txt]\n  secondary-artifacts:\n    \"{}\":\n      files: [out.txt]\n",
        canary.escape()
    );
    // `localbuild validate` says where, as for any buildspec error.
    let b = Build::new(&yaml);
    let (code, _, err) = b.cli(&["validate", b.src().join("buildspec.yml").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("buildspec.yml:9:5: error: invalid secondary artifact identifier"),
        "{err}"
    );
    // A build fails in DOWNLOAD_SOURCE like any other buildspec error.
    let r = b.run();
    assert_eq!(r.status(), "FAILED");
    assert_eq!(r.context("DOWNLOAD_SOURCE").0, "YAML_FILE_ERROR");
    canary.assert_untouched();

    // The same buildspec inline in a project of `serve`.
    let s = Serve::start(&[]);
    s.project("escape", no_source(&yaml)).create();
    let id = s.start_build("escape")["id"].as_str().unwrap().to_owned();
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "FAILED");
    let dl = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "DOWNLOAD_SOURCE")
        .unwrap()
        .clone();
    assert_eq!(dl["contexts"][0]["statusCode"], "YAML_FILE_ERROR", "{dl:#}");
    canary.assert_untouched();
}

#[test]
fn an_artifact_name_that_evaluates_to_an_escape_stays_in_the_build() {
    let canary = Canary::new();
    let yaml = format!(
        "version: 0.2\nenv:\n  variables:\n    WHERE: \"{}\"\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\nartifacts:\n  files: [out.txt]\n  name: $WHERE\n",
        canary.escape()
    );
    let r = Build::new(&yaml).run();
    assert_eq!(r.status(), "SUCCEEDED", "{}", r.stdout);
    let location = r.record["artifacts"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(Path::new(&location).starts_with(&r.home), "{location}");
    canary.assert_untouched();
}

#[test]
fn batch_identifiers_are_validated_under_run_and_serve() {
    let canary = Canary::new();
    for id in [canary.dir.display().to_string(), canary.escape()] {
        let yaml = format!(
            "version: 0.2\nbatch:\n  build-list:\n    - identifier: \"{id}\"\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\nartifacts:\n  files: [out.txt]\n"
        );
        let b = Build::new(&yaml);
        let (code, _, err) = b.cli(&["validate", b.src().join("buildspec.yml").to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(":4:19: error: invalid 'batch.build-list' identifier"),
            "{err}"
        );
        let r = b.run_with(&["--batch"]);
        assert_ne!(r.code, 0, "{}", r.stdout);
        canary.assert_untouched();

        let s = Serve::start(&[]);
        s.create_batch_project("esc", &yaml);
        let err = s
            .aws(&[
                "codebuild",
                "start-build-batch",
                "--project-name",
                "esc",
                "--build-batch-config-override",
                "combineArtifacts=true,serviceRole=arn:aws:iam::000000000000:role/any",
            ])
            .unwrap_err();
        assert!(err.contains("InvalidInputException"), "{err}");
        assert!(err.contains("identifier"), "{err}");
        canary.assert_untouched();
    }
}

#[test]
fn report_group_and_cache_key_names_stay_in_their_folders() {
    let canary = Canary::new();
    let esc = canary.escape();
    let yaml = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p c && echo cached > c/f\n      - printf '<testsuite name=\"s\" tests=\"1\"><testcase name=\"t\"/></testsuite>' > r.xml\nreports:\n  \"{esc}\":\n    files: [r.xml]\ncache:\n  key: \"{esc}\"\n  paths: ['c/**/*']\n"
    );
    let r = Build::new(&yaml).run();
    assert_eq!(r.status(), "SUCCEEDED", "{}", r.stdout);
    canary.assert_untouched();
}

#[test]
fn a_buildspec_that_links_out_of_the_source_is_not_read() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("not-for-builds.yml");
    std::fs::write(&secret, "host-secret-line: 42\n").unwrap();
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n");
    std::fs::remove_file(b.src().join("buildspec.yml")).unwrap();
    std::os::unix::fs::symlink(&secret, b.src().join("buildspec.yml")).unwrap();
    let r = b.run();
    assert_eq!(r.status(), "FAILED");
    assert_eq!(r.context("DOWNLOAD_SOURCE").0, "YAML_FILE_ERROR");
    assert!(!r.stdout.contains("host-secret-line"), "{}", r.stdout);
    assert!(!r.stderr.contains("host-secret-line"), "{}", r.stderr);
}

#[test]
fn api_fields_that_name_paths_are_refused_as_codebuild_refuses_them() {
    let canary = Canary::new();
    let s = Serve::start(&[]);
    let project = |name: &str, source: serde_json::Value, extra: &[&str]| {
        extra
            .iter()
            .fold(s.project(name, source), |p, a| p.arg(a))
            .try_create()
    };
    let repo = tempfile::tempdir().unwrap();
    crate::util::git(repo.path(), &["init", "-q"]);
    let git_root = s.home.path().join("git");
    let canary_s3 = canary.escape();
    let table: Vec<(&str, Result<serde_json::Value, String>, &str)> = vec![
        (
            "an absolute git location",
            project(
                "abs",
                json!({"type": "GITHUB", "location": repo.path()}),
                &[],
            ),
            "InvalidInputException",
        ),
        (
            "a file:// git location",
            project(
                "fileurl",
                json!({"type": "GITHUB", "location": format!("file://{}", repo.path().display())}),
                &[],
            ),
            "InvalidInputException",
        ),
        (
            "a git location with ..",
            project(
                "dots",
                json!({"type": "GITHUB", "location": "https://github.com/acme/../../../x.git"}),
                &[],
            ),
            "InvalidInputException",
        ),
        (
            "an S3 location with ..",
            project(
                "s3dots",
                json!({"type": "S3", "location": format!("bucket/{canary_s3}")}),
                &[],
            ),
            "InvalidInputException",
        ),
        (
            "a project name with ..",
            project(
                "../x",
                json!({"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [ls]\n"}),
                &[],
            ),
            "InvalidInputException",
        ),
        (
            "a secondary source identifier with ..",
            project(
                "secid",
                json!({"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [ls]\n"}),
                &[
                    "--secondary-sources",
                    &json!([{"type": "S3", "location": "b/k.zip", "sourceIdentifier": "../x"}])
                        .to_string(),
                ],
            ),
            "InvalidInputException",
        ),
    ];
    for (what, result, expected) in table {
        let err = result.expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
    }
    // The git refusal names the git root and what to do.
    let err = project(
        "abs2",
        json!({"type": "GITHUB", "location": repo.path()}),
        &[],
    )
    .unwrap_err();
    assert!(err.contains(&git_root.display().to_string()), "{err}");
    assert!(err.contains("--git-root"), "{err}");

    // A pipeline's artifact store is a bucket name, not a path.
    let pipeline = json!({"pipeline": {
        "name": "esc",
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": canary.dir},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Deploy", "actions": [{"name": "Deploy",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"BucketName": "out", "Extract": "true"},
                "inputArtifacts": [{"name": "Src"}]}]},
        ],
    }});
    let file = crate::pipeline::write_json(s.home.path(), &pipeline);
    let err = s
        .aws(&["codepipeline", "create-pipeline", "--cli-input-json", &file])
        .unwrap_err();
    assert!(err.contains("ValidationException"), "{err}");
    assert!(err.contains("pipeline.artifactStore.location"), "{err}");
    let mut bad_key = pipeline.clone();
    bad_key["pipeline"]["artifactStore"]["location"] = json!("artifacts");
    bad_key["pipeline"]["stages"][0]["actions"][0]["configuration"]["S3ObjectKey"] =
        json!(canary_s3);
    let file = crate::pipeline::write_json(s.home.path(), &bad_key);
    let err = s
        .aws(&["codepipeline", "create-pipeline", "--cli-input-json", &file])
        .unwrap_err();
    assert!(err.contains("InvalidActionDeclarationException"), "{err}");

    // The console serves a build's artifacts only from inside its artifacts folder.
    // NO_ARTIFACTS: the build's folder (type S3 goes to the S3 store, tests/it/local_aws.rs).
    let b = s
        .project("art", no_source("version: 0.2\nphases:\n  build:\n    commands: [echo hi > a.txt]\nartifacts:\n  files: [a.txt]\n"))
        .create();
    assert_eq!(b["project"]["name"], "art");
    let id = s.start_build("art")["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_complete(&id)["buildStatus"], "SUCCEEDED");
    for path in [
        "primary/a.txt",
        "..%2F..%2F..%2Fbuild.json",
        "../../build.json",
        "%2Fetc%2Fhostname",
    ] {
        let status = get(&s.addr, &format!("/builds/{id}/artifacts/{path}")).status;
        let expected = if path == "primary/a.txt" { 200 } else { 404 };
        assert_eq!(status, expected, "{path}");
    }
    canary.assert_untouched();
}

#[test]
fn s3_artifact_and_cache_fields_stay_in_the_s3_store() {
    let canary = Canary::new();
    let s = Serve::start(&[]);
    let escape = canary.escape();
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"}).to_string();
    // The buildspec's name evaluates to an escape; overrideArtifactName lets it name the object.
    let buildspec = format!(
        "version: 0.2\nenv:\n  variables:\n    WHERE: \"{escape}\"\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\nartifacts:\n  files: [out.txt]\n  name: $WHERE\n  secondary-artifacts:\n    second:\n      files: [out.txt]\n      name: $WHERE\ncache:\n  paths: [out.txt]\n"
    );
    let source = json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
    let project = |name: &str, artifacts: serde_json::Value, extra: &[&str]| {
        let artifacts = artifacts.to_string();
        let mut args = vec![
            "codebuild",
            "create-project",
            "--name",
            name,
            "--source",
            &source,
            "--artifacts",
            &artifacts,
            "--environment",
            &env,
            "--service-role",
            "arn:aws:iam::000000000000:role/any",
        ];
        args.extend_from_slice(extra);
        s.aws(&args)
    };
    let refused = [
        (
            "a path with ..",
            project(
                "p1",
                json!({"type": "S3", "location": "ok-bucket", "path": escape}),
                &[],
            ),
        ),
        (
            "a name with ..",
            project(
                "p2",
                json!({"type": "S3", "location": "ok-bucket", "name": escape}),
                &[],
            ),
        ),
        (
            "a bucket that is a path",
            project("p3", json!({"type": "S3", "location": escape}), &[]),
        ),
        (
            "a secondary artifact's path with ..",
            project(
                "p4",
                json!({"type": "NO_ARTIFACTS"}),
                &[
                    "--secondary-artifacts",
                    &json!([{"type": "S3", "artifactIdentifier": "second", "location": "ok-bucket", "path": escape}]).to_string(),
                ],
            ),
        ),
        (
            "a cache prefix with ..",
            project(
                "p5",
                json!({"type": "NO_ARTIFACTS"}),
                &[
                    "--cache",
                    &json!({"type": "S3", "location": format!("ok-bucket/{escape}")}).to_string(),
                ],
            ),
        ),
    ];
    for (what, result) in refused {
        let err = result.expect_err(what);
        assert!(err.contains("InvalidInputException"), "{what}: {err}");
    }
    project(
        "named",
        json!({"type": "S3", "location": "ok-bucket", "overrideArtifactName": true}),
        &[
            "--secondary-artifacts",
            &json!([{"type": "S3", "artifactIdentifier": "second", "location": "ok-bucket", "path": "sec", "overrideArtifactName": true}]).to_string(),
            "--cache",
            "type=S3,location=ok-bucket/cache",
        ],
    )
    .unwrap();
    let id = s.start_build("named")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["artifacts"]["location"], "arn:aws:s3:::ok-bucket/primary");
    assert_eq!(
        b["secondaryArtifacts"][0]["location"],
        "arn:aws:s3:::ok-bucket/sec/primary"
    );
    assert!(
        s.home
            .path()
            .join("s3/ok-bucket/cache/default.tar")
            .is_file()
    );
    canary.assert_untouched();
}
