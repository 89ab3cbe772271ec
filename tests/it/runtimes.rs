//! `runtime-versions` as CodeBuild does it: the image's `/codebuild/image/config/runtimes.yml`
//! (`localbuild-test/runtimes:1`, the busybox image with `docker/test-busybox/runtimes.yml`)
//! decides what a selection runs, in DOWNLOAD_SOURCE, with CodeBuild's lines and errors.

use crate::harness::Build;

const RUNTIMES_IMAGE: &str = "localbuild-test/runtimes:1";

fn on_runtimes_image(install: &str, build: &str) -> Build {
    Build::new(&format!(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n{install}  build:\n    commands:\n      - {build}\n"
    ))
    .image(RUNTIMES_IMAGE)
}

/// The index of the first log line equal to `line`.
fn at(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{}", lines.join("\n")))
}

#[test]
fn selected_versions_run_the_images_commands_before_install_and_their_exports_carry_over() {
    let r = on_runtimes_image(
        "      python: 3.x\n      nodejs: 18\n",
        "echo \"python=$TEST_PYTHON node=$TEST_NODE\"",
    )
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let lines = r.log_lines();
    let selecting_python = at(
        &lines,
        "Selecting 'python' runtime version '3.x' based on manual selections...",
    );
    let selecting_node = at(
        &lines,
        "Selecting 'nodejs' runtime version '18' based on manual selections...",
    );
    // `3.x` is the highest 3.* the image has; both selections are logged before any command.
    let python = at(
        &lines,
        "Running command echo \"Installing Python version 3.12 ...\"",
    );
    let node = at(
        &lines,
        "Running command echo \"Installing Node.js version 18 ...\"",
    );
    let moving = lines
        .iter()
        .position(|l| l.starts_with("Moving to directory "))
        .unwrap();
    let install = at(&lines, "Entering phase INSTALL");
    assert!(at(&lines, "Processing environment variables") < selecting_python);
    assert!(selecting_python < selecting_node && selecting_node < python);
    assert!(python < node && node < moving && moving < install);
    assert_eq!(
        r.output_of("echo \"Installing Python version 3.12 ...\""),
        ["Installing Python version 3.12 ..."]
    );
    assert_eq!(
        r.output_of("echo \"python=$TEST_PYTHON node=$TEST_NODE\""),
        ["python=3.12 node=18"]
    );
    assert!(!r.stdout.contains("not supported by this build image"));
    r.assert_nothing_left_behind();
}

#[test]
fn latest_and_a_variable_choose_the_version() {
    let r = on_runtimes_image(
        "      nodejs: latest\n      python: $PY\n      java: corretto17.x\n",
        "echo \"$TEST_NODE $TEST_PYTHON $JAVA_HOME\"",
    )
    .arg("--env")
    .arg("PY=3.11")
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let lines = r.log_lines();
    at(
        &lines,
        "Selecting 'python' runtime version '3.11' based on manual selections...",
    );
    assert_eq!(
        r.output_of("echo \"$TEST_NODE $TEST_PYTHON $JAVA_HOME\""),
        ["20 3.11 /usr/lib/jvm/test-17"]
    );
}

#[test]
fn an_unknown_runtime_fails_download_source_listing_the_images_runtimes() {
    let r = on_runtimes_image("      java: corretto17\n      docker: 20\n", "echo never").run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        (
            "YAML_FILE_ERROR".to_owned(),
            "Unknown runtime named 'docker'. This build image has the following runtimes: broken, java, nodejs, python".to_owned()
        )
    );
    // As in CodeBuild's log: every selection is logged, then the phase fails; nothing runs.
    let lines = r.log_lines();
    at(
        &lines,
        "Selecting 'docker' runtime version '20' based on manual selections...",
    );
    assert!(!r.stdout.contains("Installing Java"), "{}", r.stdout);
    assert!(!r.stdout.contains("Entering phase INSTALL"), "{}", r.stdout);
    r.assert_nothing_left_behind();
}

#[test]
fn an_unknown_version_fails_download_source_listing_the_runtimes_versions() {
    let r = on_runtimes_image("      python: 3.8\n", "echo never").run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        (
            "YAML_FILE_ERROR".to_owned(),
            "Unknown runtime version named '3.8' of python. This build image has the following versions: 3.11, 3.12".to_owned()
        )
    );
    assert_eq!(
        r.phase_list(),
        [
            "SUBMITTED:SUCCEEDED",
            "QUEUED:SUCCEEDED",
            "PROVISIONING:SUCCEEDED",
            "DOWNLOAD_SOURCE:FAILED",
            "FINALIZING:SUCCEEDED",
            "COMPLETED"
        ]
    );
}

#[test]
fn a_failing_runtime_command_fails_download_source() {
    let r = on_runtimes_image("      broken: 1\n", "echo never").run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        (
            "COMMAND_EXECUTION_ERROR".to_owned(),
            "Error while executing command: exit 3. Reason: exit status 3".to_owned()
        )
    );
    assert!(
        r.log_lines()
            .contains(&"Command did not exit successfully exit 3 exit status 3".to_owned())
    );
}

#[test]
fn an_image_without_runtimes_yml_skips_the_selection_as_codebuild_says() {
    let r = Build::new(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.11\n  build:\n    commands:\n      - echo built\n",
    )
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    at(
        &r.log_lines(),
        "Skipping install of runtimes. Runtime version selection is not supported by this build image",
    );
}

/// Removes a docker tag when dropped (also when the test fails).
struct Tag(String);

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", &self.0])
            .output();
    }
}

#[test]
fn a_local_image_with_an_aws_name_is_used_as_is_with_its_own_runtimes() {
    let b = on_runtimes_image("      nodejs: 20\n", "echo \"node=$TEST_NODE\"");
    const NAME: &str = "aws/codebuild/standard:localbuild-test";
    let tagged = std::process::Command::new("docker")
        .args(["tag", RUNTIMES_IMAGE, NAME])
        .status()
        .unwrap();
    assert!(tagged.success());
    let _tag = Tag(NAME.to_owned());
    let r = b.image(NAME).run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("stand-in"), "{}", r.stdout);
    assert_eq!(r.output_of("echo \"node=$TEST_NODE\""), ["node=20"]);
    assert_eq!(r.record["environment"]["image"], NAME);
}

/// The runtimes test image under a name of AWS's standard:7.0 (a dated tag of it, as CodeBuild
/// has: `7.0-localbuild-test-<test>`, one per test), so that the cloud image's lists apply; the
/// tag is removed when the [`Tag`] drops.
fn on_7_0(test: &str, install: &str, build: &str) -> (Build, Tag) {
    let name = format!("aws/codebuild/standard:7.0-localbuild-test-{test}");
    let tagged = std::process::Command::new("docker")
        .args(["tag", RUNTIMES_IMAGE, &name])
        .status()
        .unwrap();
    assert!(tagged.success());
    (on_runtimes_image(install, build).image(&name), Tag(name))
}

#[test]
fn on_a_curated_image_name_a_version_the_cloud_lacks_fails_with_the_clouds_lists() {
    let (b, _tag) = on_7_0("lacks", "      python: 2.x\n", "echo never");
    let r = b.run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        (
            "YAML_FILE_ERROR".to_owned(),
            "Unknown runtime version named '2.x' of python. This build image has the following versions: 3.9, 3.10, 3.11, 3.12, 3.13, 3.14".to_owned()
        )
    );
    let (b, _tag) = on_7_0("lacks", "      broken: 1\n", "echo never");
    let r = b.run();
    assert_eq!(
        r.context("DOWNLOAD_SOURCE").1,
        "Unknown runtime named 'broken'. This build image has the following runtimes: dotnet, golang, java, nodejs, php, python, ruby"
    );
}

#[test]
fn on_a_curated_image_name_a_version_only_the_local_image_lacks_says_the_cloud_has_it() {
    let (b, tag) = on_7_0("only-local", "      python: 3.13\n", "echo never");
    let n = tag.0.clone();
    let r = b.run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        (
            "YAML_FILE_ERROR".to_owned(),
            format!(
                "{n} has python 3.13; the local image {n} does not have it and cannot \
                 get it offline (its python versions: 3.11, 3.12). Select a version it has, or \
                 build an image with python 3.13 and tag it {n} (a local image of that \
                 name is always used)"
            )
        )
    );
    assert!(!r.stdout.contains("Installing Python"), "{}", r.stdout);
}

#[test]
fn on_a_curated_image_name_versions_both_have_run_as_before() {
    let (b, _tag) = on_7_0(
        "both",
        "      python: 3.x\n      nodejs: 20\n",
        "echo \"python=$TEST_PYTHON node=$TEST_NODE\"",
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of("echo \"python=$TEST_PYTHON node=$TEST_NODE\""),
        ["python=3.12 node=20"]
    );
}

#[test]
fn the_default_entry_without_network_fails_saying_the_cloud_has_the_version() {
    let (b, tag) = on_7_0("default", "      nodejs: 22\n", "echo never");
    let n = tag.0.clone();
    let r = b.run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // The local `default` entry ran (as the cloud's would, to install it) and could not.
    assert_eq!(
        r.output_of("echo \"Installing custom Node.js version $VERSION ...\""),
        ["Installing custom Node.js version 22 ..."]
    );
    let (kind, message) = r.context("DOWNLOAD_SOURCE");
    assert_eq!(kind, "YAML_FILE_ERROR");
    assert!(
        message.starts_with(&format!(
            "{n} has nodejs 22; the local image {n} does not have it and cannot get it offline (its nodejs versions: 18, 20)"
        )),
        "{message}"
    );
    assert!(!r.stdout.contains("Entering phase INSTALL"), "{}", r.stdout);
    // A version the cloud itself installs at build time says that.
    let (b, _same_tag) = on_7_0("default", "      nodejs: 16.20.2\n", "echo never");
    let (_, message) = b.run().context("DOWNLOAD_SOURCE");
    assert!(
        message.starts_with(&format!("{n} would install nodejs 16.20.2 at build time;")),
        "{message}"
    );
}
