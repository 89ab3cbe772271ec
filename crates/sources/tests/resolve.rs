//! `resolve` mapping CodeBuild locations onto local roots.

mod common;

use std::path::{Path, PathBuf};

use common::{git, write};
use localbuild_sources::{Resolved, Roots, SourceError, SourceKind, resolve};
use tempfile::TempDir;

struct Env {
    _tmp: TempDir,
    roots: Roots,
}

fn env() -> Env {
    let tmp = TempDir::new().unwrap();
    let roots = Roots {
        git_root: tmp.path().join("git"),
        s3_root: tmp.path().join("s3"),
    };
    std::fs::create_dir_all(&roots.git_root).unwrap();
    std::fs::create_dir_all(&roots.s3_root).unwrap();
    Env { _tmp: tmp, roots }
}

fn init(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    git(path, &["init", "--quiet"]);
}

fn init_bare(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    git(path, &["init", "--quiet", "--bare"]);
}

fn git_repo(r: Resolved) -> PathBuf {
    match r {
        Resolved::Git { repo } => repo,
        other => panic!("expected a git repository, got {other:?}"),
    }
}

const HOSTED: [SourceKind; 5] = [
    SourceKind::Github,
    SourceKind::GithubEnterprise,
    SourceKind::Gitlab,
    SourceKind::GitlabSelfManaged,
    SourceKind::Bitbucket,
];

#[test]
fn hosted_owner_repo_is_preferred() {
    let e = env();
    let owned = e.roots.git_root.join("acme/app");
    init(&owned);
    init(&e.roots.git_root.join("app")); // the fallback exists too
    for kind in HOSTED {
        for loc in [
            "https://github.com/acme/app.git",
            "https://github.com/acme/app",
            "https://github.com/acme/app/",
            "http://ghe.example.com/acme/app.git",
            "https://user@bitbucket.org/acme/app.git",
        ] {
            assert_eq!(
                git_repo(resolve(kind, loc, &e.roots).unwrap()),
                owned,
                "{kind} {loc}"
            );
        }
    }
}

#[test]
fn hosted_falls_back_to_repo_name_and_bare_dot_git() {
    let e = env();
    let fallback = e.roots.git_root.join("app");
    init(&fallback);
    let r = resolve(
        SourceKind::Github,
        "https://github.com/acme/app.git",
        &e.roots,
    )
    .unwrap();
    assert_eq!(git_repo(r), fallback);

    // A bare repository named `<repo>.git`.
    let bare = e.roots.git_root.join("tool.git");
    init_bare(&bare);
    let r = resolve(SourceKind::Gitlab, "https://gitlab.com/acme/tool", &e.roots).unwrap();
    assert_eq!(git_repo(r), bare);

    // GitLab subgroups map to nested folders.
    let nested = e.roots.git_root.join("group/sub/lib");
    init_bare(&nested);
    let r = resolve(
        SourceKind::GitlabSelfManaged,
        "https://gitlab.example.com/group/sub/lib.git",
        &e.roots,
    )
    .unwrap();
    assert_eq!(git_repo(r), nested);
}

#[test]
fn unresolvable_git_location_lists_every_path_looked_at() {
    let e = env();
    // A plain folder with the right name is not a repository.
    std::fs::create_dir_all(e.roots.git_root.join("app")).unwrap();
    let loc = "https://github.com/acme/app.git";
    let err = resolve(SourceKind::Github, loc, &e.roots).unwrap_err();
    let root = &e.roots.git_root;
    let expected = [
        root.join("acme/app"),
        root.join("acme/app.git"),
        root.join("app"),
        root.join("app.git"),
    ];
    match &err {
        SourceError::Unresolved {
            looked,
            not_repositories,
            ..
        } => {
            assert_eq!(looked, &expected);
            assert_eq!(not_repositories, &[root.join("app")]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "source location {loc} resolves to no local repository: looked for {}, {}, {} and {} (set --git-root)",
            expected[0].display(),
            expected[1].display(),
            expected[2].display(),
            expected[3].display()
        )),
        "{msg}"
    );
    assert!(msg.contains("exists but is not a git repository"), "{msg}");
}

#[test]
fn codecommit() {
    let e = env();
    let repo = e.roots.git_root.join("my-repo");
    init(&repo);
    let loc = "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/my-repo";
    assert_eq!(
        git_repo(resolve(SourceKind::Codecommit, loc, &e.roots).unwrap()),
        repo
    );

    let err = resolve(
        SourceKind::Codecommit,
        "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/other",
        &e.roots,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&e.roots.git_root.join("other").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("(set --git-root)"), "{msg}");

    let err = resolve(
        SourceKind::Codecommit,
        "https://git-codecommit.eu-west-1.amazonaws.com/my-repo",
        &e.roots,
    )
    .unwrap_err();
    assert!(matches!(err, SourceError::InvalidLocation { .. }), "{err}");
}

#[test]
fn local_paths_and_file_urls_are_refused_naming_the_git_root() {
    let e = env();
    let repo = e._tmp.path().join("elsewhere/my repo");
    init(&repo);
    let abs = repo.to_str().unwrap().to_string();
    let url = format!("file://{}", abs.replace(' ', "%20"));
    for kind in [
        SourceKind::Github,
        SourceKind::Codecommit,
        SourceKind::Bitbucket,
    ] {
        for loc in [&abs, &url] {
            let err = resolve(kind, loc, &e.roots).unwrap_err();
            assert!(
                matches!(err, SourceError::OutsideGitRoot { .. }),
                "{kind} {loc}: {err}"
            );
            assert!(
                err.to_string()
                    .contains(&e.roots.git_root.display().to_string()),
                "{err}"
            );
        }
    }
}

#[test]
fn a_link_in_the_git_root_that_leads_out_is_refused() {
    let e = env();
    let repo = e._tmp.path().join("elsewhere/app");
    init(&repo);
    std::fs::create_dir_all(e.roots.git_root.join("acme")).unwrap();
    std::os::unix::fs::symlink(&repo, e.roots.git_root.join("acme/app")).unwrap();
    let err = resolve(
        SourceKind::Github,
        "https://github.com/acme/app.git",
        &e.roots,
    )
    .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn s3_zip_and_folder() {
    let e = env();
    let zip = e.roots.s3_root.join("bucket/path/src.zip");
    std::fs::create_dir_all(zip.parent().unwrap()).unwrap();
    std::fs::write(&zip, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    write(
        &e.roots.s3_root.join("bucket/folder/buildspec.yml"),
        "version: 0.2\n",
    );

    for loc in [
        "bucket/path/src.zip",
        "arn:aws:s3:::bucket/path/src.zip",
        "s3://bucket/path/src.zip",
    ] {
        assert_eq!(
            resolve(SourceKind::S3, loc, &e.roots).unwrap(),
            Resolved::Zip(zip.clone()),
            "{loc}"
        );
    }
    let folder = e.roots.s3_root.join("bucket/folder");
    for loc in [
        "bucket/folder/",
        "bucket/folder",
        "arn:aws:s3:::bucket/folder/",
    ] {
        assert_eq!(
            resolve(SourceKind::S3, loc, &e.roots).unwrap(),
            Resolved::Dir(folder.clone()),
            "{loc}"
        );
    }

    let err = resolve(SourceKind::S3, "bucket/missing.zip", &e.roots).unwrap_err();
    let msg = err.to_string();
    let want = e.roots.s3_root.join("bucket/missing.zip");
    assert!(
        msg.contains(&format!(
            "looked for {} (S3 locations map to the S3 store, $LOCALBUILD_HOME/s3/BUCKET/KEY)",
            want.display()
        )),
        "{msg}"
    );

    write(&e.roots.s3_root.join("bucket/notzip.zip"), "hello");
    let err = resolve(SourceKind::S3, "bucket/notzip.zip", &e.roots).unwrap_err();
    assert!(matches!(err, SourceError::InvalidLocation { .. }), "{err}");

    let err = resolve(SourceKind::S3, "arn:aws:s3:us-east-1::bucket/x", &e.roots).unwrap_err();
    assert!(matches!(err, SourceError::InvalidLocation { .. }), "{err}");
}

#[test]
fn dot_dot_is_rejected_everywhere() {
    let e = env();
    // Something that `..` would otherwise reach.
    init(&e._tmp.path().join("secret"));
    let cases = [
        (SourceKind::Github, "https://github.com/../secret"),
        (
            SourceKind::Github,
            "https://github.com/acme/../../secret.git",
        ),
        (SourceKind::Gitlab, "https://gitlab.com/a/./b"),
        (
            SourceKind::Codecommit,
            "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/..",
        ),
        (SourceKind::S3, "../secret"),
        (SourceKind::S3, "bucket/../../secret"),
        (SourceKind::S3, "arn:aws:s3:::bucket/../x.zip"),
    ];
    for (kind, loc) in cases {
        let err = resolve(kind, loc, &e.roots).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidLocation { .. }),
            "{kind} {loc}: {err}"
        );
        assert!(
            err.to_string().contains("path components are not allowed")
                || err.to_string().contains("component"),
            "{err}"
        );
    }
}

#[test]
fn malformed_locations() {
    let e = env();
    for (kind, loc) in [
        (SourceKind::Github, ""),
        (SourceKind::Github, "github.com/acme/app"),
        (SourceKind::Github, "git@github.com:acme/app.git"),
        (SourceKind::Github, "https://github.com/app"),
        (SourceKind::Github, "relative/path"),
        (SourceKind::S3, ""),
        (SourceKind::S3, "/"),
    ] {
        let err = resolve(kind, loc, &e.roots).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidLocation { .. }),
            "{kind} {loc:?}: {err}"
        );
    }
}

#[test]
fn no_source() {
    let e = env();
    assert_eq!(
        resolve(SourceKind::NoSource, "", &e.roots).unwrap(),
        Resolved::None
    );
    assert_eq!(
        resolve(SourceKind::NoSource, "anything", &e.roots).unwrap(),
        Resolved::None
    );
}

#[test]
fn kinds_parse_from_codebuild_strings() {
    assert_eq!("GITHUB".parse::<SourceKind>().unwrap(), SourceKind::Github);
    assert_eq!(
        "GITLAB_SELF_MANAGED".parse::<SourceKind>().unwrap(),
        SourceKind::GitlabSelfManaged
    );
    assert_eq!(
        "NO_SOURCE".parse::<SourceKind>().unwrap(),
        SourceKind::NoSource
    );
    assert!(matches!(
        "CODEPIPELINE".parse::<SourceKind>(),
        Err(SourceError::UnknownKind(_))
    ));
}

#[test]
fn resolved_repository_can_be_checked_out() {
    let e = env();
    let repo = e.roots.git_root.join("acme/app");
    init(&repo);
    write(&repo.join("f.txt"), "f\n");
    git(&repo, &["add", "f.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "f"]);
    let r = resolve(
        SourceKind::Github,
        "https://github.com/acme/app.git",
        &e.roots,
    )
    .unwrap();
    let dest = e._tmp.path().join("co");
    let co = localbuild_sources::checkout(&git_repo(r), None, Some(1), &dest).unwrap();
    assert_eq!(co.commit, git(&repo, &["rev-parse", "HEAD"]));
    assert!(dest.join("f.txt").is_file());
}
