//! What a build is asked to do, and the checks the engine makes before accepting it.
//!
//! Callers (the CLI, the API server, a pipeline) build a [`BuildRequest`]; [`BuildRequest::check`]
//! applies CodeBuild's rules to it (project name, source identifiers, variable names, timeout)
//! with typed errors, so that no caller can submit what CodeBuild would refuse, and a project
//! name can never become a path outside the store.

use crate::secrets::SecretsFile;
use std::path::PathBuf;
use std::time::Duration;

/// The default build image, made from its recipe by the runtime the first time it is needed.
pub const DEFAULT_IMAGE: &str = "localbuild/standard:1.0";

/// The default account id in the ARNs localbuild makes (a local build belongs to no AWS
/// account); `--account-id` chooses another ([`check_account_id`]).
pub const ACCOUNT_ID: &str = "000000000000";

/// An account id AWS would accept: exactly 12 ASCII digits. The error names the value.
pub fn check_account_id(id: &str) -> Result<(), RequestError> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(RequestError::AccountId(id.to_owned()))
    }
}

/// Where the primary source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory of this machine, copied into the container (or bind-mounted). When it is a
    /// git work tree and [`BuildRequest::respect_gitignore`] is on, only the files git does not
    /// ignore are copied (and `.git`).
    Dir(PathBuf),
    /// One commit of a git repository of this machine, checked out the way CodeBuild clones
    /// (`.git` present, on the branch or detached) into a folder the build owns and deletes at
    /// its end, then copied like a directory. The buildspec is read from that checkout.
    Git {
        /// A work tree or bare repository.
        repo: PathBuf,
        /// CodeBuild's `sourceVersion`: branch, tag, commit (full or at least 4 hex digits),
        /// full reference, `pr/N` or `REF^{SHA}`; `None` is the repository's `HEAD`.
        version: Option<String>,
        /// `gitCloneDepth`: `None` or `Some(0)` clones the whole history.
        depth: Option<u32>,
        /// The source type shown in the record (`GITHUB`, `CODECOMMIT`, …; any CodeBuild git
        /// type).
        kind: String,
        /// The record's `source.location` and `CODEBUILD_SOURCE_REPO_URL`.
        location: String,
    },
    /// A zip file of this machine (an S3 source `BUCKET/KEY.zip`), extracted into a folder the
    /// build owns. `location` is the record's `source.location`.
    Zip { file: PathBuf, location: String },
    /// A CodePipeline input artifact, unpacked in `dir` and used like [`Source::Dir`]; the
    /// record's source is `CODEPIPELINE` at `location` (the artifact in the pipeline's artifact
    /// store, `arn:aws:s3:::BUCKET/KEY`), never the temporary folder.
    Pipeline { dir: PathBuf, location: String },
    /// A well-formed location that names nothing on this machine yet (CodeBuild accepts any
    /// well-formed location and fails the build when it downloads the source): the build fails
    /// DOWNLOAD_SOURCE with `CLIENT_ERROR` and `reason`, which names the local paths looked at
    /// and the setting that maps them. `kind` and `location` are the record's `source`.
    Unresolved {
        kind: String,
        location: String,
        reason: String,
    },
    /// `NO_SOURCE`: nothing is downloaded; the buildspec must be inline.
    None,
}

impl Source {
    /// A git source of type `GITHUB` whose location is the repository's path.
    pub fn git(repo: PathBuf, version: Option<String>, depth: Option<u32>) -> Source {
        Source::Git {
            location: repo.display().to_string(),
            repo,
            version,
            depth,
            kind: "GITHUB".to_owned(),
        }
    }
}

/// Where the buildspec comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildspecSource {
    /// `buildspec.yml` at the root of the primary source.
    Default,
    /// A file of this machine (`-b FILE`).
    File(PathBuf),
    /// A path relative to the primary source's root (a project's `source.buildspec`).
    InSource(String),
    /// The YAML text itself (the API's `buildspecOverride`).
    Inline(String),
}

/// Everything a build needs to start.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Project name: in the build id, the ARN, the log group and the number sequence.
    pub project: String,
    pub source: Source,
    /// Secondary sources: identifier and directory (`-s ID:DIR`), in declaration order.
    pub secondary_sources: Vec<(String, PathBuf)>,
    pub buildspec: BuildspecSource,
    pub image: String,
    /// Bind-mount the source instead of copying it (the build may then modify it).
    pub bind_mount: bool,
    /// Privileged mode: docker commands in the build reach a guarded Docker API (the
    /// runtime's filter in front of this machine's daemon).
    pub privileged: bool,
    /// With privileged mode: give the build this machine's Docker daemon itself (and a
    /// `--privileged` container), as before the guarded API; the build is then root on the
    /// host. `run --docker-host-access`, the user config's `docker-host-access`, serve's flag.
    pub docker_host_access: bool,
    pub timeout: Duration,
    /// Variables that override the buildspec's (highest precedence), in order.
    pub env_overrides: Vec<(String, String)>,
    /// `CODEBUILD_INITIATOR` and the record's `initiator`.
    pub initiator: String,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` and the region in ARNs.
    pub region: String,
    /// The account id in the build's ARNs (`CODEBUILD_BUILD_ARN`, …): 12 digits,
    /// [`ACCOUNT_ID`] unless `--account-id` chose another.
    pub account_id: String,
    /// Parameter Store and Secrets Manager values for `env.parameter-store` / `secrets-manager`.
    pub secrets: SecretsFile,
    /// More values to mask everywhere (e.g. a forwarded `AWS_SECRET_ACCESS_KEY`).
    pub mask: Vec<String>,
    /// A host folder mounted read-only at `/root/.aws` (`-c`).
    pub aws_dir: Option<PathBuf>,
    /// Where artifacts go (default: the store's place for the build).
    pub artifacts_dir: Option<PathBuf>,
    /// Where report files and summaries go (default: the store's place for the build).
    pub reports_dir: Option<PathBuf>,
    /// Package artifacts as zips instead of folders.
    pub zip: bool,
    /// Neither restore nor save the cache.
    pub no_cache: bool,
    /// Copy only the files git does not ignore (tracked, and untracked but not ignored, plus
    /// `.git`) of a directory source that is a git work tree; `false` copies everything.
    /// Secondary sources too; a bind mount always shows everything.
    pub respect_gitignore: bool,
    /// The record's `environment.computeType` (default `BUILD_GENERAL1_SMALL`; locally it
    /// changes nothing else).
    pub compute_type: Option<String>,
    /// Set when the build is one task of a batch build ([`crate::batch`]).
    pub batch: Option<BatchMember>,
    /// Pauses and a kept container, for a person to look inside the build ([`Debug`]).
    pub debug: Debug,
    /// A local AWS endpoint for the build's commands (`None`: none; e.g. with the host's
    /// credentials forwarded, the build talks to real AWS).
    pub local_aws: Option<crate::local_aws::LocalAwsHook>,
    /// The primary artifact goes to an S3 bucket folder, laid out as CodeBuild lays out
    /// artifacts of type S3 (`None`: the build's own folder or `artifacts_dir`).
    pub s3_artifact: Option<S3Artifact>,
    /// Secondary artifacts of type S3, by `artifactIdentifier` (a buildspec secondary artifact
    /// without an entry here goes to the build's own folder).
    pub s3_secondary_artifacts: Vec<(String, S3Artifact)>,
    /// A cache of type S3: saved and restored in that bucket folder instead of the local cache
    /// folder (`None`: the local cache).
    pub s3_cache: Option<S3Cache>,
    /// Where an image its own name cannot reach comes from (ECR references served by the local
    /// registry): asked in PROVISIONING; a located image is pulled from there and tagged `image`.
    pub image_source: Option<ImageSourceHook>,
}

/// CodeBuild's cache of type S3 (`location: bucket[/prefix]`): each saved cache is the object
/// `<prefix>/<key>.tar` (`default.tar` without a key) in the bucket, the same file the local
/// cache keeps under `cache/<project>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Cache {
    /// The bucket's folder joined with the prefix (already confined under the S3 root by the
    /// caller).
    pub dir: PathBuf,
    /// `bucket[/prefix]` as the project gives it (the record's `cache.location`).
    pub location: String,
}

/// Finds the registry copy of an image whose own name reaches no registry. `locate` may block
/// (the engine calls it on the blocking pool); `Ok(None)`: pull the image by its own name.
pub trait ImageSource: Send + Sync {
    fn locate(&self, image: &str) -> Result<Option<ImagePull>, String>;
}

/// A request's image source: `BuildRequest::image_source`.
#[derive(Clone)]
pub struct ImageSourceHook(pub std::sync::Arc<dyn ImageSource>);

impl ImageSourceHook {
    /// Pull `image` from where this source locates it (asked on the blocking pool), tagged
    /// `image`: the image to run (`image`, or the source's reference when it names a digest);
    /// `Ok(None)`: not this source's, pull `image` by its own name.
    pub async fn pull(
        &self,
        runtime: &dyn crate::runtime::Runtime,
        image: &str,
        progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<Option<String>, crate::runtime::RuntimeError> {
        let source = self.0.clone();
        let name = image.to_owned();
        let located = tokio::task::spawn_blocking(move || source.locate(&name))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|reason| crate::runtime::RuntimeError::ImageUnavailable {
                image: image.to_owned(),
                reason,
            })?;
        let Some(p) = located else {
            return Ok(None);
        };
        progress(&format!("Pulling image {image} from {}", p.from));
        let auth = Some((p.username.as_str(), p.password.as_str()));
        runtime
            .pull_as(&p.from, auth, image, progress)
            .await
            .map(Some)
    }
}

impl std::fmt::Debug for ImageSourceHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageSourceHook")
    }
}

/// Where a build image is pulled from when its own name reaches no registry: a local registry's
/// reference and the credentials it checks (never shown: `Debug` hides the password).
#[derive(Clone, PartialEq, Eq)]
pub struct ImagePull {
    /// `127.0.0.1:PORT/NAME:TAG` (or `@DIGEST`).
    pub from: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ImagePull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePull")
            .field("from", &self.from)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// CodeBuild's artifacts of type S3: the object is `<path>/<build uuid if namespaceType is
/// BUILD_ID>/<name>` in the bucket, a folder of files (packaging NONE) or one zip (ZIP), and
/// the record's `artifacts.location` is its S3 ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Artifact {
    /// The bucket's folder (already confined under the S3 root by the caller).
    pub bucket_dir: PathBuf,
    pub bucket: String,
    /// `path` (relative, may be empty).
    pub path: String,
    /// `namespaceType: BUILD_ID`.
    pub build_id_namespace: bool,
    /// The project's `artifacts.name`.
    pub name: String,
    /// `overrideArtifactName`: the buildspec's `artifacts.name` wins when it has one.
    pub override_name: bool,
    /// `packaging: ZIP`.
    pub zip: bool,
    /// `encryptionDisabled` (accepted and echoed in the record: the local store does not
    /// encrypt).
    pub encryption_disabled: bool,
}

/// How a build can be looked into while it runs and after (issue "debug a build where it
/// stops"). A pause is carried out in the container (see [`crate::shell`]): the build waits
/// in a command until `codebuild-resume` runs there; timeouts and stop still apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Debug {
    /// CodeBuild's `debugSessionEnabled`: a `codebuild-breakpoint` command pauses the build
    /// (without it the command does nothing).
    pub session: bool,
    /// Pause after a command fails, before its phase is marked failed
    /// (`--shell-on-failure`); `codebuild-resume --retry` runs the command again.
    pub on_failure: bool,
    /// Leave the build container running at the end (`--keep-container`); it keeps its
    /// label, so `localbuild gc` removes it.
    pub keep_container: bool,
}

impl Debug {
    /// Does the record get a `debugSession` (and the build a session target)?
    pub fn any(&self) -> bool {
        self.session || self.on_failure || self.keep_container
    }
}

/// A build's place in a batch: `CODEBUILD_BATCH_BUILD_IDENTIFIER`,
/// `CODEBUILD_BUILD_BATCH_TRIGGERED=true` and the record's `buildBatchArn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMember {
    pub batch_arn: String,
    pub identifier: String,
    /// The build's place in a build-fanout (what `codebuild-tests-run` splits by).
    pub shard: Option<crate::buildspec::batch::Shard>,
}

impl BuildRequest {
    /// A request with CodeBuild's defaults: the default image, 60 minutes, `us-east-1`, the
    /// source's `buildspec.yml`, no overrides, secrets, artifacts folder or cache changes.
    pub fn new(project: &str, source: Source) -> BuildRequest {
        BuildRequest {
            project: project.to_owned(),
            source,
            secondary_sources: vec![],
            buildspec: BuildspecSource::Default,
            image: DEFAULT_IMAGE.to_owned(),
            bind_mount: false,
            privileged: false,
            docker_host_access: false,
            timeout: Duration::from_secs(60 * 60),
            env_overrides: vec![],
            initiator: "localbuild".to_owned(),
            region: "us-east-1".to_owned(),
            account_id: ACCOUNT_ID.to_owned(),
            secrets: Default::default(),
            mask: vec![],
            aws_dir: None,
            artifacts_dir: None,
            reports_dir: None,
            zip: false,
            no_cache: false,
            respect_gitignore: true,
            compute_type: None,
            batch: None,
            debug: Debug::default(),
            local_aws: None,
            s3_artifact: None,
            s3_secondary_artifacts: vec![],
            s3_cache: None,
            image_source: None,
        }
    }

    /// The primary source directory of a [`Source::Dir`] (a git source's checkout is made by
    /// the build).
    pub fn source_dir(&self) -> Option<&std::path::Path> {
        match &self.source {
            Source::Dir(d) | Source::Pipeline { dir: d, .. } => Some(d),
            Source::Git { .. } | Source::Zip { .. } | Source::Unresolved { .. } | Source::None => {
                None
            }
        }
    }

    /// CodeBuild's rules for a request, checked before anything is created.
    pub fn check(&self) -> Result<(), RequestError> {
        check_project_name(&self.project)?;
        check_account_id(&self.account_id)?;
        let mut ids = std::collections::HashSet::new();
        for (id, _) in &self.secondary_sources {
            if id.is_empty()
                || id.len() > 128
                || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(RequestError::SourceIdentifier(id.clone()));
            }
            if !ids.insert(id) {
                return Err(RequestError::DuplicateSourceIdentifier(id.clone()));
            }
        }
        for (name, _) in &self.env_overrides {
            crate::secrets::check_name(name)
                .map_err(|m| RequestError::VariableName(name.clone(), m))?;
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(RequestError::Timeout);
        }
        if let Source::Git { kind, .. } = &self.source {
            let git = kind
                .parse::<localbuild_sources::SourceKind>()
                .is_ok_and(|k| k.is_git());
            if !git {
                return Err(RequestError::SourceType(kind.clone()));
            }
        }
        if self.source == Source::None
            && matches!(
                self.buildspec,
                BuildspecSource::Default | BuildspecSource::InSource(_)
            )
        {
            return Err(RequestError::NoBuildspec);
        }
        Ok(())
    }
}

/// CodeBuild's longest build timeout: 36 hours.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2160 * 60);

/// CodeBuild's project name rule: `[A-Za-z0-9][A-Za-z0-9\-_]{1,254}`. A name that passes is a
/// single safe path component.
pub fn check_project_name(name: &str) -> Result<(), RequestError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if first_ok && rest_ok && (2..=255).contains(&name.len()) {
        Ok(())
    } else {
        Err(RequestError::ProjectName(name.to_owned()))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error(
        "'{0}' is not a valid project name: 2 to 255 letters, digits, - and _, starting with a letter or digit"
    )]
    ProjectName(String),
    #[error("'{0}' is not a valid source identifier: letters, digits and _, at most 128")]
    SourceIdentifier(String),
    #[error("source identifier '{0}' is used twice")]
    DuplicateSourceIdentifier(String),
    #[error("invalid variable name '{0}': {1}")]
    VariableName(String, String),
    #[error("the timeout must be between 1 and 2160 minutes")]
    Timeout,
    #[error("a build without a source needs an inline buildspec")]
    NoBuildspec,
    #[error(
        "'{0}' is not a git source type: one of CODECOMMIT, GITHUB, GITHUB_ENTERPRISE, GITLAB, GITLAB_SELF_MANAGED, BITBUCKET"
    )]
    SourceType(String),
    #[error("{0:?} is not a valid account id: an AWS account id is exactly 12 digits")]
    AccountId(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BuildRequest {
        BuildRequest::new("demo", Source::Dir("/tmp".into()))
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        for ok in [ACCOUNT_ID, "123456789012"] {
            assert_eq!(check_account_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "../../etc/pa",
            "１２３456789012",
            "123456789012\n",
        ] {
            assert_eq!(
                check_account_id(bad),
                Err(RequestError::AccountId(bad.to_owned())),
                "{bad}"
            );
        }
        let mut req = request();
        req.account_id = "abc".into();
        assert_eq!(req.check(), Err(RequestError::AccountId("abc".into())));
    }

    #[test]
    fn project_names_follow_codebuild_and_never_make_paths() {
        for ok in ["demo", "a1", "my-app_2", "X9"] {
            assert_eq!(check_project_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "a", "-x", "_x", "../etc", "a/b", "a.b", ".hidden", "a b",
        ] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
        assert!(check_project_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn requests_are_checked_before_anything_runs() {
        assert_eq!(request().check(), Ok(()));
        let mut r = request();
        r.secondary_sources = vec![("s1".into(), "/a".into()), ("s1".into(), "/b".into())];
        assert_eq!(
            r.check(),
            Err(RequestError::DuplicateSourceIdentifier("s1".into()))
        );
        let mut r = request();
        r.secondary_sources = vec![("bad-id".into(), "/a".into())];
        assert!(matches!(r.check(), Err(RequestError::SourceIdentifier(_))));
        let mut r = request();
        r.env_overrides = vec![("CODEBUILD_X".into(), "1".into())];
        assert!(matches!(r.check(), Err(RequestError::VariableName(..))));
        let mut r = request();
        r.timeout = Duration::ZERO;
        assert_eq!(r.check(), Err(RequestError::Timeout));
        r.timeout = MAX_TIMEOUT + Duration::from_secs(1);
        assert_eq!(r.check(), Err(RequestError::Timeout));
        let mut r = request();
        r.source = Source::None;
        assert_eq!(r.check(), Err(RequestError::NoBuildspec));
        r.buildspec = BuildspecSource::Inline("version: 0.2".into());
        assert_eq!(r.check(), Ok(()));
        let mut r = request();
        r.source = Source::git("/repo".into(), Some("main".into()), None);
        assert_eq!(r.check(), Ok(()));
        if let Source::Git { kind, .. } = &mut r.source {
            *kind = "S3".into();
        }
        assert_eq!(r.check(), Err(RequestError::SourceType("S3".into())));
    }
}
