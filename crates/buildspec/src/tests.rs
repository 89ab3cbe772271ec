//! Unit tests of the buildspec rules, one `check` per rule.

use super::*;

/// Parse `yaml` and compare all diagnostics, in source order, as `L:C: severity: message`.
fn check(yaml: &str, expected: &[&str]) {
    let diags = match parse(yaml.as_bytes()) {
        Ok(p) => p.warnings,
        Err(i) => {
            assert!(!i.errors.is_empty());
            i.errors.into_iter().chain(i.warnings).collect()
        }
    };
    let mut got: Vec<(usize, usize, String)> = diags
        .iter()
        .map(|d| {
            let s = format!(
                "{}:{}: {}: {}",
                d.line,
                d.column,
                d.severity.as_str(),
                d.message
            );
            (d.line, d.column, s)
        })
        .collect();
    got.sort();
    let got: Vec<String> = got.into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(got, expected, "for YAML:\n{yaml}");
}

/// Parse `yaml`, which must be valid without warnings.
fn ok(yaml: &str) -> Buildspec {
    match parse(yaml.as_bytes()) {
        Ok(p) => {
            assert!(p.warnings.is_empty(), "warnings: {:?}", p.warnings);
            p.buildspec
        }
        Err(i) => panic!("unexpected errors: {:?}", i.errors),
    }
}

const V: &str = "version: 0.2\n";

#[test]
fn minimal() {
    let b = ok("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n");
    assert_eq!(b.version, Version::V0_2);
    assert_eq!(b.phases.build.unwrap().commands, vec!["echo hi"]);
    assert!(b.phases.install.is_none());
}

#[test]
fn version_forms() {
    assert_eq!(ok("version: 0.1\n").version, Version::V0_1);
    assert_eq!(ok("version: \"0.2\"\n").version, Version::V0_2);
    assert_eq!(ok("version: '0.1'\n").version, Version::V0_1);
    check(
        "version: 0.3\n",
        &["1:10: error: unsupported buildspec version '0.3': expected 0.1 or 0.2"],
    );
    check(
        "phases: {}\n",
        &["1:1: error: missing 'version': expected 0.1 or 0.2"],
    );
    check(
        "version: [0.2]\n",
        &["1:10: error: invalid 'version': expected 0.1 or 0.2, found a list"],
    );
}

#[test]
fn empty_and_non_mapping_documents() {
    check(
        "",
        &["1:1: error: empty buildspec: expected a mapping with 'version' and 'phases'"],
    );
    check(
        "- a\n",
        &["1:1: error: expected a mapping at the top of the buildspec, found a list"],
    );
}

#[test]
fn batch_only_without_version_is_a_warning() {
    let p = parse(b"batch:\n  build-list:\n    - identifier: a\n").unwrap();
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("batch-only"));
}

#[test]
fn unknown_phase_name() {
    check(
        "version: 0.2\nphases:\n  biuld:\n    commands: [ls]\n  postbuild:\n    commands: ls\n",
        &[
            "3:3: error: Invalid buildspec phase name: biuld. Expecting: build,install,post_build,pre_build",
            "5:3: error: Invalid buildspec phase name: postbuild. Expecting: build,install,post_build,pre_build",
        ],
    );
}

#[test]
fn nested_phase_is_an_error() {
    check(
        "version: 0.2\nphases:\n  build:\n    commands: [ls]\n    post_build:\n      commands: [ls]\n",
        &[
            "5:5: error: phase 'post_build' is nested under 'build': phases must be direct children of 'phases'",
        ],
    );
}

#[test]
fn unknown_keys_warn() {
    check(
        "version: 0.2\nenv:\n  x: 1\nfoo: bar\nphases:\n  build:\n    steps: []\n",
        &[
            "3:3: warning: unknown key 'x' in 'env'",
            "4:1: warning: unknown top-level key 'foo'",
            "7:5: warning: unknown key 'steps' in 'phases.build'",
        ],
    );
}

#[test]
fn env_values_keep_source_text() {
    let b = ok(&format!(
        "{V}env:\n  variables:\n    DOTNET_FRAMEWORK: 4.8\n    DEBUG: true\n    PORT: 8080\n    PY: 3.10\n    N: NO\n    E:\n    Q: \"yes\"\n"
    ));
    let vars: Vec<(&str, &str)> = b
        .env
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("DOTNET_FRAMEWORK", "4.8"),
            ("DEBUG", "true"),
            ("PORT", "8080"),
            ("PY", "3.10"),
            ("N", "NO"),
            ("E", ""),
            ("Q", "yes")
        ]
    );
}

#[test]
fn v01_names() {
    let b = ok("version: 0.1\nenvironment_variables:\n  plaintext:\n    A: b\n");
    assert_eq!(b.env.variables, vec![("A".to_owned(), "b".to_owned())]);
}

#[test]
fn reserved_env_names() {
    check(
        &format!(
            "{V}env:\n  variables:\n    CODEBUILD_X: 1\n  parameter-store:\n    CODEBUILD_Y: /p\n"
        ),
        &[
            "4:5: error: invalid environment variable name 'CODEBUILD_X': names starting with CODEBUILD_ are reserved",
            "6:5: error: invalid environment variable name 'CODEBUILD_Y': names starting with CODEBUILD_ are reserved",
        ],
    );
}

#[test]
fn commands_forms() {
    let b = ok(&format!(
        "{V}phases:\n  install:\n    commands: echo single\n  pre_build:\n    commands:\n  build:\n    commands:\n      - 8080\n      - 3.10\n      - |\n        a\n        b\n    finally:\n"
    ));
    assert_eq!(b.phases.install.unwrap().commands, vec!["echo single"]);
    assert!(b.phases.pre_build.unwrap().commands.is_empty());
    let build = b.phases.build.unwrap();
    assert_eq!(build.commands, vec!["8080", "3.10", "a\nb\n"]);
    assert!(build.finally.is_empty());
}

#[test]
fn mapping_command_uses_codebuild_wording() {
    check(
        &format!(
            "{V}phases:\n  build:\n    commands:\n      - ls\n      - echo \"a: b\"\n      - [x]\n"
        ),
        &[
            "6:9: error: Expected Commands[1] to be of string type: found subkeys instead at line 6, value of the key tag on line 5 might be empty",
            "7:9: error: Expected Commands[2] to be of string type: found a list instead at line 7",
        ],
    );
}

#[test]
fn on_failure_forms() {
    use OnFailure::*;
    let r = |c, p: Option<&str>| Retry {
        count: c,
        pattern: p.map(str::to_owned),
    };
    assert_eq!(parse_on_failure("ABORT"), Ok(Abort));
    assert_eq!(parse_on_failure("CONTINUE"), Ok(Continue));
    assert_eq!(parse_on_failure("RETRY"), Ok(r(3, None)));
    assert_eq!(parse_on_failure("RETRY-4"), Ok(r(4, None)));
    assert_eq!(parse_on_failure("RETRY-0"), Ok(r(0, None)));
    assert_eq!(
        parse_on_failure("RETRY-invalid+"),
        Ok(r(3, Some("invalid+")))
    );
    assert_eq!(
        parse_on_failure("RETRY-8-invalid+"),
        Ok(r(8, Some("invalid+")))
    );
    assert_eq!(
        parse_on_failure("Retry-.*Error: Unable.*"),
        Ok(r(3, Some(".*Error: Unable.*")))
    );
    assert_eq!(
        parse_on_failure("Retry-3-.*timed out.*"),
        Ok(r(3, Some(".*timed out.*")))
    );
    assert_eq!(parse_on_failure("RETRY-12abc"), Ok(r(3, Some("12abc"))));
    assert!(
        parse_on_failure("RETRY-101")
            .unwrap_err()
            .contains("not between 0 and 100")
    );
    assert!(
        parse_on_failure("RETRY-(")
            .unwrap_err()
            .contains("invalid retry pattern")
    );
    assert!(
        parse_on_failure("STOP")
            .unwrap_err()
            .contains("expected ABORT, CONTINUE")
    );
    check(
        &format!("{V}phases:\n  build:\n    on-failure: RETRY-200\n"),
        &[
            "4:17: error: invalid on-failure value 'RETRY-200': the retry count 200 is not between 0 and 100",
        ],
    );
}

#[test]
fn secret_refs() {
    let s = parse_secret_ref("prod/db:password:AWSCURRENT").unwrap();
    assert_eq!(s.secret_id, "prod/db");
    assert_eq!(s.json_key.as_deref(), Some("password"));
    assert_eq!(s.version_stage.as_deref(), Some("AWSCURRENT"));
    assert_eq!(s.version_id, None);
    let s =
        parse_secret_ref("arn:aws:secretsmanager:us-east-1:1:secret:x-AbC::AWSPREVIOUS").unwrap();
    assert_eq!(
        s.secret_id,
        "arn:aws:secretsmanager:us-east-1:1:secret:x-AbC"
    );
    assert_eq!(s.json_key, None);
    assert_eq!(s.version_stage.as_deref(), Some("AWSPREVIOUS"));
    assert!(parse_secret_ref(":key").is_none());
    assert!(parse_secret_ref("a:b:c:d:e").is_none());
}

#[test]
fn artifacts_and_cache_required_keys() {
    check(
        &format!("{V}artifacts:\n  name: x\ncache:\n  key: k\n"),
        &[
            "2:1: error: 'artifacts' requires 'files'",
            "4:1: error: 'cache' requires 'paths'",
        ],
    );
    check(
        &format!("{V}artifacts:\n  files: a\n  secondary-artifacts:\n    s1:\n      name: x\n"),
        &["5:5: error: 'artifacts.secondary-artifacts.s1' requires 'files'"],
    );
}

#[test]
fn artifacts_full() {
    let b = ok(&format!(
        "{V}artifacts:\n  files:\n    - '**/*'\n  discard-paths: yes\n  enable-symlinks: \"on\"\n  base-directory: out\n  exclude-paths: '**/.*'\n  secondary-artifacts:\n    two:\n      files: b\n"
    ));
    let a = b.artifacts.unwrap();
    assert_eq!(a.primary.files, vec!["**/*"]);
    assert!(a.primary.discard_paths && a.primary.enable_symlinks);
    assert_eq!(a.primary.exclude_paths, vec!["**/.*"]);
    assert_eq!(a.secondary[0].0, "two");
}

#[test]
fn report_formats() {
    let b = ok(&format!(
        "{V}reports:\n  g:\n    files: a.xml\n    file-format: cucumberjson\n"
    ));
    assert_eq!(b.reports[0].file_format, ReportFormat::CucumberJson);
    let b = ok(&format!("{V}reports:\n  g:\n    files: a.xml\n"));
    assert_eq!(b.reports[0].file_format, ReportFormat::JunitXml);
    check(
        &format!("{V}reports:\n  g:\n    files: a\n    file-format: JSON\n"),
        &[
            "5:18: error: invalid file-format 'JSON' in report group 'g': expected one of JUNITXML, CUCUMBERJSON, NUNITXML, NUNIT3XML, TESTNGXML, VISUALSTUDIOTRX, COBERTURAXML, JACOCOXML, CLOVERXML, SIMPLECOV",
        ],
    );
}

#[test]
fn booleans() {
    let b = ok(&format!(
        "{V}proxy:\n  upload-artifacts: yes\n  logs: \"TRUE\"\nenv:\n  git-credential-helper: on\n"
    ));
    assert!(b.proxy.upload_artifacts && b.proxy.logs && b.env.git_credential_helper);
    check(
        &format!("{V}proxy:\n  logs: no | yes\n"),
        &[
            "3:9: error: invalid value 'no | yes' for 'proxy.logs': expected yes or no (true or false)",
        ],
    );
}

#[test]
fn cache_settings() {
    let b = ok(&format!(
        "{V}cache:\n  paths: ['/root/.m2/**/*']\n  key: k-$(date)\n  fallback-keys: [k-]\n  action: restore\n"
    ));
    let c = b.cache.unwrap();
    assert_eq!(c.action, Some(CacheAction::Restore));
    assert_eq!(c.fallback_keys, vec!["k-"]);
    check(
        &format!("{V}cache:\n  paths: a\n  action: both\n"),
        &["4:11: error: invalid cache action 'both': expected restore or save"],
    );
}

#[test]
fn runtime_versions_and_run_as() {
    let b = ok(&format!(
        "{V}run-as: codebuild-user\nphases:\n  install:\n    run-as: root\n    runtime-versions:\n      python: 3.10\n      nodejs: 18.x\n"
    ));
    assert_eq!(b.run_as.as_deref(), Some("codebuild-user"));
    let i = b.phases.install.unwrap();
    assert_eq!(i.run_as.as_deref(), Some("root"));
    assert_eq!(
        i.runtime_versions,
        vec![
            ("python".into(), "3.10".into()),
            ("nodejs".into(), "18.x".into())
        ]
    );
}

#[test]
fn batch_kinds() {
    let b = ok(&format!(
        "{V}batch:\n  fast-fail: true\n  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n      env:\n        privileged-mode: true\n        variables:\n          X: 1\n"
    ));
    let batch = b.batch.unwrap();
    assert!(batch.fast_fail);
    let BatchKind::BuildGraph(ts) = batch.kind else {
        panic!("not a graph")
    };
    assert_eq!(ts[1].depend_on, vec!["a"]);
    assert_eq!(ts[1].env.privileged_mode, Some(true));
    check(
        &format!("{V}batch:\n  build-graph:\n    - identifier: a\n      depend-on: [z]\n"),
        &[
            "5:19: error: task 'a' depends on 'z', which is not an identifier in 'batch.build-graph'",
        ],
    );
    let b = ok(&format!(
        "{V}batch:\n  build-matrix:\n    dynamic:\n      env:\n        image: [i1, i2]\n        variables:\n          V: [1, 2, 3]\n"
    ));
    let BatchKind::BuildMatrix(m) = b.batch.unwrap().kind else {
        panic!("not a matrix")
    };
    assert_eq!(m.size(), 6);
    let b = ok(&format!("{V}batch:\n  build-fanout:\n    parallelism: 4\n"));
    assert!(matches!(
        b.batch.unwrap().kind,
        BatchKind::BuildFanout {
            parallelism: 4,
            ignore_failure: false
        }
    ));
    check(
        &format!(
            "{V}batch:\n  build-list:\n    - identifier: a\n  build-fanout:\n    parallelism: 2\n"
        ),
        &[
            "5:3: error: 'batch' may define only one of build-list, build-graph, build-matrix, build-fanout: 'build-fanout' follows 'build-list'",
        ],
    );
}

#[test]
fn merge_keys_expand() {
    let b = ok(&format!(
        "{V}env:\n  variables:\n    <<: &common\n      A: 1\n    B: 2\n"
    ));
    assert_eq!(b.env.variables.len(), 2);
}

#[test]
fn semantic_errors_collect() {
    let r = parse(format!("{V}phases:\n  x: {{}}\n  y: {{}}\nartifacts: {{}}\n").as_bytes());
    assert_eq!(r.unwrap_err().errors.len(), 3);
}

#[test]
fn syntax_errors_are_located() {
    check("a: 1\na: 2\n", &["2:1: error: duplicate mapping key: a"]);
    let e = parse(b"version: 0.2\nphases:\n\tbuild: x\n").unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].line >= 2);
}

#[test]
fn invalid_utf8_is_located() {
    let e = parse(b"version: 0.2\n# caf\xc3\xa9 \xff\n").unwrap_err();
    assert_eq!((e.errors[0].line, e.errors[0].column), (2, 8));
    assert!(e.errors[0].message.contains("0xFF"));
}

#[test]
fn bom_and_crlf() {
    let b = ok("\u{feff}version: 0.2\r\nphases:\r\n  build:\r\n    commands:\r\n      - ls\r\n");
    assert_eq!(b.phases.build.unwrap().commands, vec!["ls"]);
}

#[test]
fn render_caret() {
    let d = Diagnostic {
        severity: Severity::Error,
        line: 2,
        column: 3,
        message: "m".into(),
    };
    assert_eq!(
        d.render("f.yml", b"a: 1\nb: 2\n"),
        "f.yml:2:3: error: m\n  |\n2 | b: 2\n  |   ^\n"
    );
}
