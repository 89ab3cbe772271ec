//! Git sources, with real git and Docker: `run --source-version` builds one commit checked out
//! the cloud way (`.git` present, shallow with `--git-clone-depth`, the checkout deleted at the
//! end), an unknown version fails DOWNLOAD_SOURCE, and the default copy of a work tree leaves
//! out what git ignores unless `--all-files`.

use crate::harness::Build;

/// Prints the checked-out file, the version variables and whether `.git` is there and shallow.
const SHOW: &str = r#"version: 0.2
phases:
  build:
    commands:
      - echo "f=$(cat f.txt)"
      - echo "rev=$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - echo "ver=$CODEBUILD_SOURCE_VERSION url=$CODEBUILD_SOURCE_REPO_URL"
      - test -d .git && echo has-git
      - if test -f .git/shallow; then echo shallow; else echo full; fi
"#;

/// A repository with three commits of `f.txt`: `one` (tag `v1`), `two` (branch `feature`),
/// `three` (`main`), and an uncommitted change on top. `TMPDIR` is the build's own folder, so
/// that its checkout can be seen to go.
fn three_commits() -> (Build, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let b = Build::new(SHOW)
        .file("f.txt", "one")
        .commit("one")
        .with_git(&["tag", "v1"])
        .file("f.txt", "two")
        .commit("two")
        .with_git(&["branch", "feature"])
        .file("f.txt", "three")
        .commit("three")
        .file("f.txt", "uncommitted")
        .env("TMPDIR", tmp.path().to_str().unwrap());
    (b, tmp)
}

fn line(r: &crate::harness::Finished, cmd: &str) -> String {
    r.output_of(cmd).join("\n")
}

#[test]
fn source_version_builds_that_commit_with_git_present() {
    let (b, tmp) = three_commits();
    let url = std::fs::canonicalize(b.src()).unwrap();
    for (version, content, sha_of) in [
        ("v1", "one", "v1"),
        ("feature", "two", "feature"),
        (
            &b.git(&["rev-parse", "--short", "main"])[..],
            "three",
            "main",
        ),
    ] {
        let sha = b.git(&["rev-parse", &format!("{sha_of}^{{commit}}")]);
        let r = b.run_with(&["--source-version", version]);
        assert_eq!(r.code, 0, "{version}: {}{}", r.stdout, r.stderr);
        assert_eq!(line(&r, "echo \"f=$(cat f.txt)\""), format!("f={content}"));
        assert_eq!(
            line(&r, "echo \"rev=$CODEBUILD_RESOLVED_SOURCE_VERSION\""),
            format!("rev={sha}")
        );
        assert_eq!(
            line(
                &r,
                "echo \"ver=$CODEBUILD_SOURCE_VERSION url=$CODEBUILD_SOURCE_REPO_URL\""
            ),
            format!("ver={version} url={}", url.display())
        );
        assert_eq!(line(&r, "test -d .git && echo has-git"), "has-git");
        assert_eq!(
            line(
                &r,
                "if test -f .git/shallow; then echo shallow; else echo full; fi"
            ),
            "full"
        );
        assert_eq!(r.record["sourceVersion"], version);
        assert_eq!(r.record["resolvedSourceVersion"], sha.as_str());
        assert_eq!(r.record["source"]["type"], "GITHUB");
        assert_eq!(r.record["source"]["location"], url.to_str().unwrap());
        assert!(r.record["source"].get("gitCloneDepth").is_none());
        assert!(
            !r.stderr.contains("skipping files ignored by git"),
            "{}",
            r.stderr
        );
        // The checkout went with the build.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}

#[test]
fn git_clone_depth_makes_a_shallow_clone() {
    let (b, _tmp) = three_commits();
    let r = b
        .arg("--source-version")
        .arg("main")
        .arg("--git-clone-depth")
        .arg("1")
        .run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(line(&r, "echo \"f=$(cat f.txt)\""), "f=three");
    assert_eq!(
        line(
            &r,
            "if test -f .git/shallow; then echo shallow; else echo full; fi"
        ),
        "shallow"
    );
    assert_eq!(r.record["source"]["gitCloneDepth"], 1);
}

#[test]
fn an_unknown_version_fails_download_source_naming_it() {
    let (b, tmp) = three_commits();
    let r = b.arg("--source-version").arg("no-such-branch").run();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.status(), "FAILED");
    let (code, message) = r.context("DOWNLOAD_SOURCE");
    assert_eq!(code, "CLIENT_ERROR");
    assert!(message.contains("no-such-branch"), "{message}");
    assert!(r.phase("INSTALL").is_null(), "{:?}", r.phase_list());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn source_version_needs_a_git_repository() {
    let b = Build::new(SHOW);
    let r = b.arg("--source-version").arg("main").run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a git repository"), "{}", r.stderr);
}

/// Lists what reached the build.
const LIST: &str = r#"version: 0.2
phases:
  build:
    commands:
      - for f in .git tracked.txt sub/tracked.txt untracked.txt ignored.txt node_modules/x; do if test -e $f; then echo "yes $f"; else echo "no $f"; fi; done
      - readlink link
"#;

fn work_tree() -> Build {
    Build::new(LIST)
        .file(".gitignore", "node_modules/\nignored.txt\n")
        .file("tracked.txt", "t")
        .file("sub/tracked.txt", "t")
        .commit("tracked")
        .file("untracked.txt", "u")
        .file("ignored.txt", "i")
        .file("node_modules/x", "x")
}

#[test]
fn a_work_tree_is_copied_without_what_git_ignores() {
    let b = work_tree();
    std::os::unix::fs::symlink("/etc/hostname", b.src().join("link")).unwrap();
    let r = b.run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let cmd = LIST.lines().nth(4).unwrap().trim().trim_start_matches("- ");
    assert_eq!(
        r.output_of(cmd),
        [
            "yes .git",
            "yes tracked.txt",
            "yes sub/tracked.txt",
            "yes untracked.txt",
            "no ignored.txt",
            "no node_modules/x"
        ]
    );
    // An untracked symlink is copied as a link, never followed.
    assert_eq!(r.output_of("readlink link"), ["/etc/hostname"]);
    let notes: Vec<_> = r
        .stderr
        .lines()
        .filter(|l| l.contains("skipping files ignored by git"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", r.stderr);
    assert!(notes[0].contains("--all-files"), "{}", notes[0]);

    let r = b.run_with(&["--all-files"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of(cmd),
        [
            "yes .git",
            "yes tracked.txt",
            "yes sub/tracked.txt",
            "yes untracked.txt",
            "yes ignored.txt",
            "yes node_modules/x"
        ]
    );
    assert!(
        !r.stderr.contains("skipping files ignored by git"),
        "{}",
        r.stderr
    );
}
