//! The images localbuild makes from embedded recipes ([`Recipe`]), and the AWS image names they
//! stand in for.
//!
//! * [`SLIM`], the default build image `localbuild/standard:1.0` (`crates/docker/standard/`:
//!   bash, git, curl, zip, python3, a docker CLI; about a minute offline).
//! * [`CODEBUILD_STANDARD`], `localbuild/codebuild-standard:1.0`
//!   (`crates/docker/codebuild-standard/`): the runtimes of CodeBuild's standard images from
//!   Debian's packages, with its own `/codebuild/image/config/runtimes.yml`. It stands in for
//!   `aws/codebuild/standard:*` and `aws/codebuild/amazonlinux*` ([`stand_in_for`]), which
//!   cannot be pulled; a local image of that exact name always wins.
//!
//! Recipes are embedded at compile time; see each folder's README for the verified shell
//! equivalent. [`ensure_recipe_image`] builds an image only when it is missing. Its base is made
//! by pulling `debian:bookworm-slim` (bounded by a short timeout) and retagging it, or — when no
//! registry is reachable — by running `debootstrap` (needs root and the `debootstrap` package)
//! into a temporary directory, finishing it with the recipe's `install-packages.sh` in a chroot
//! (host network, private mount namespace) and importing that root filesystem as an image (the
//! API behind `docker import`).
//!
//! Progress goes to a caller-supplied callback one line at a time; no bollard type appears in
//! the public API except the `&Docker` handle.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::{body_full, body_try_stream};
use futures_util::StreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::io::ReaderStream;

/// The default build image.
pub const STANDARD_IMAGE: &str = localbuild_engine::DEFAULT_IMAGE;
/// The base image `crates/docker/standard/Dockerfile` starts from.
pub const DEBIAN_BASE_IMAGE: &str = "localbuild/debian-base:bookworm";
const DEBIAN_BASE_REPO: &str = "localbuild/debian-base";
const DEBIAN_BASE_TAG: &str = "bookworm";
/// Pulled (when a registry is reachable) and retagged as [`DEBIAN_BASE_IMAGE`].
pub const PULL_SOURCE: (&str, &str) = ("debian", "bookworm-slim");
/// How long the pull may take before falling back to debootstrap.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(30);
/// Debian suite and mirror for debootstrap (`LOCALBUILD_DEBIAN_MIRROR` overrides the mirror).
pub const DEBIAN_SUITE: &str = "bookworm";
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// Installed at debootstrap time (`--include`): build containers may have no network, so
/// the Dockerfile must not need any on the debootstrap base. `bash` and `dash` are
/// essential packages, always present in `minbase`. `crates/docker/standard/install-packages.sh`
/// lists these and installs the rest in the chroot (with the host's network): `awscli`, whose
/// python3-cryptography fails debootstrap's own configure step.
pub const DEBOOTSTRAP_PACKAGES: &[&str] = &[
    "git",
    "curl",
    "ca-certificates",
    "zip",
    "unzip",
    "python3",
    "less",
    "procps",
];

/// Installed by `install-packages.sh` in the chroot after debootstrap, not by debootstrap.
pub const CHROOT_PACKAGES: &[&str] = &["awscli"];

const DOCKERFILE: &str = include_str!("../standard/Dockerfile");
const INSTALL_PACKAGES_SH: &str = include_str!("../standard/install-packages.sh");
const SOURCES_LIST: &str = include_str!("../standard/sources.list");

/// An image localbuild makes itself: a base (debootstrap + the recipe's `install-packages.sh`,
/// or a pulled `debian:bookworm-slim`) and a Dockerfile on it.
#[derive(Debug)]
pub struct Recipe {
    /// The image made (`repo:tag`).
    pub image: &'static str,
    /// Its base, made first when missing (`repo`, `tag`).
    pub base: (&'static str, &'static str),
    /// `debootstrap --include` packages (the rest comes from `install-packages.sh`).
    pub debootstrap_packages: &'static [&'static str],
    /// `install-packages.sh`: run in the debootstrap chroot and again in the Dockerfile.
    pub install_script: &'static str,
    /// The build context: `(name, contents, mode)`, the Dockerfile first.
    pub context: &'static [(&'static str, &'static str, u32)],
    /// The `org.localbuild.image` label value.
    pub label: &'static str,
    /// What it has, for `localbuild image ls` and the stand-in line.
    pub summary: &'static str,
    /// The first build's duration, as measured here, for the progress line.
    pub build_time: &'static str,
    /// The AWS image names it stands in for (see [`stand_in_for`]), or `""`.
    pub stands_in_for: &'static str,
}

impl Recipe {
    /// The base image's `repo:tag`.
    pub fn base_image(&self) -> String {
        format!("{}:{}", self.base.0, self.base.1)
    }
}

/// The default build image: small, made in about a minute.
pub const SLIM: Recipe = Recipe {
    image: STANDARD_IMAGE,
    base: (DEBIAN_BASE_REPO, DEBIAN_BASE_TAG),
    debootstrap_packages: DEBOOTSTRAP_PACKAGES,
    install_script: INSTALL_PACKAGES_SH,
    context: &[
        ("Dockerfile", DOCKERFILE, 0o644),
        ("install-packages.sh", INSTALL_PACKAGES_SH, 0o755),
        ("sources.list", SOURCES_LIST, 0o644),
    ],
    label: "standard-1.0",
    summary: "Debian bookworm: bash, git, curl, zip, python3, docker CLI",
    build_time: "about a minute",
    stands_in_for: "",
};

const CB_INSTALL_PACKAGES_SH: &str = include_str!("../codebuild-standard/install-packages.sh");

/// The CodeBuild-like image with the usual runtimes, from Debian's packages.
pub const CODEBUILD_STANDARD: Recipe = Recipe {
    image: "localbuild/codebuild-standard:1.0",
    base: ("localbuild/codebuild-standard-base", "bookworm"),
    debootstrap_packages: DEBOOTSTRAP_PACKAGES,
    install_script: CB_INSTALL_PACKAGES_SH,
    context: &[
        (
            "Dockerfile",
            include_str!("../codebuild-standard/Dockerfile"),
            0o644,
        ),
        ("install-packages.sh", CB_INSTALL_PACKAGES_SH, 0o755),
    ],
    label: "codebuild-standard-1.0",
    summary: "Debian bookworm: Java corretto11/17 (OpenJDK), Python 3.9/3.11, Node.js 18/20/22/24, Go 1.19/1.21-1.26, Ruby 3.1, PHP 8.2, Maven, Gradle, yarn, gpg, xvfb, sudo, build-essential, docker CLI, runtimes.yml",
    build_time: "about 20 minutes and 4 GB",
    stands_in_for: AWS_NAMES,
};

/// Every recipe, the default first.
pub const RECIPES: [&Recipe; 2] = [&SLIM, &CODEBUILD_STANDARD];

/// The AWS image names [`CODEBUILD_STANDARD`] stands in for.
pub const AWS_NAMES: &str = "aws/codebuild/standard:*, aws/codebuild/amazonlinux*";

/// The recipe whose image stands in for `image`, an AWS CodeBuild image name that cannot be
/// pulled (`aws/codebuild/standard:7.0`, `aws/codebuild/amazonlinux2-x86_64-standard:5.0`).
pub fn stand_in_for(image: &str) -> Option<&'static Recipe> {
    let repo = image.split(['@', ':']).next().unwrap_or(image);
    (repo == "aws/codebuild/standard" || repo.starts_with("aws/codebuild/amazonlinux"))
        .then_some(&CODEBUILD_STANDARD)
}

/// The recipe that makes `image` itself, if any.
pub fn recipe_of(image: &str) -> Option<&'static Recipe> {
    RECIPES.into_iter().find(|r| r.image == image)
}

/// The build log's line when `recipe`'s image stands in for `image`.
pub fn stand_in_line(image: &str, recipe: &Recipe) -> String {
    format!(
        "Image {image} is not on this machine and cannot be pulled: the local stand-in {} runs \
         this build ({}). To use AWS's own image, build it from \
         github.com/aws/aws-codebuild-docker-images and tag it {image}: a local image of that \
         name is always used.",
        recipe.image, recipe.summary
    )
}

/// Lines of a failing child process's output kept for the error message.
const TAIL_LINES: usize = 25;

/// Why the standard image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The Docker API failed (connection, HTTP status, malformed response).
    #[error("Docker API error while {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `docker build` reported an error (e.g. a failing `RUN`).
    #[error("building {image} failed: {message}")]
    Build { image: String, message: String },
    /// No `debootstrap` on this machine, and no registry to pull the base from.
    #[error(
        "cannot make {base}: pulling {}:{} failed ({pull_error}) and debootstrap is \
         not installed; install it with `apt-get install debootstrap` (or make \
         debian:bookworm-slim available to the Docker daemon)",
        PULL_SOURCE.0, PULL_SOURCE.1
    )]
    DebootstrapMissing { base: String, pull_error: String },
    /// debootstrap needs root.
    #[error(
        "cannot make {base}: pulling {}:{} failed ({pull_error}) and debootstrap \
         must run as root (uid 0, this is uid {uid}); run localbuild once as root (with \
         debootstrap installed: `apt-get install debootstrap`) to create the image",
        PULL_SOURCE.0, PULL_SOURCE.1
    )]
    NotRoot {
        base: String,
        pull_error: String,
        uid: u32,
    },
    /// A child process (debootstrap, chroot, tar) failed.
    #[error("`{command}` failed ({status}); last output:\n{tail}")]
    Command {
        command: String,
        status: String,
        tail: String,
    },
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    fn docker(action: impl Into<String>, e: DockerError) -> Self {
        ImageError::Docker {
            action: action.into(),
            source: Box::new(e),
        }
    }

    fn io(context: impl Into<String>, source: io::Error) -> Self {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Make sure [`STANDARD_IMAGE`] exists, building it (and its base) if it does not.
pub async fn ensure_standard_image(
    client: &super::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    ensure_recipe_image(client, &SLIM, progress).await
}

/// Make sure `recipe`'s image exists, building it (and its base) if it does not.
pub async fn ensure_recipe_image(
    client: &super::Docker,
    recipe: &Recipe,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    if exists(client, recipe.image).await? {
        return Ok(());
    }
    progress(&format!(
        "{} is not on this machine yet: building it now from its recipe (once; {} offline, \
         longer when it first pulls its Debian base)",
        recipe.image, recipe.build_time
    ));
    build_recipe_image(client, recipe, progress).await
}

/// Build [`STANDARD_IMAGE`] from the embedded recipe, making [`DEBIAN_BASE_IMAGE`] first if
/// it is missing. Rebuilds even if the image exists.
pub async fn build_standard_image(
    client: &super::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    build_recipe_image(client, &SLIM, progress).await
}

/// Build `recipe`'s image, making its base first if it is missing. Rebuilds even if the
/// image exists.
pub async fn build_recipe_image(
    client: &super::Docker,
    recipe: &Recipe,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let docker = client.api();
    let image = recipe.image;
    ensure_base(client, recipe, progress).await?;
    progress(&format!("building {image}"));
    let context =
        build_context(recipe).map_err(|e| ImageError::io("creating the build context tar", e))?;
    let labels = HashMap::from([("org.localbuild.image", recipe.label)]);
    let opts = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(image)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    // Always pass a body: `build_image(.., None)` panics in bollard 0.21.
    let mut stream = docker.build_image(opts, None, Some(body_full(context.into())));
    let mut lines = LineSplitter::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    lines.feed(text, &mut *progress);
                }
                if let Some(status) = info.status.as_deref() {
                    progress(status);
                }
            }
            Err(DockerError::DockerStreamError { error }) => {
                lines.finish(&mut *progress);
                return Err(ImageError::Build {
                    image: image.into(),
                    message: error,
                });
            }
            Err(e) => return Err(ImageError::docker(format!("building {image}"), e)),
        }
    }
    lines.finish(&mut *progress);
    if !exists(client, image).await? {
        return Err(ImageError::Build {
            image: image.into(),
            message: "the build finished but the image is not there".into(),
        });
    }
    progress(&format!("built {image}"));
    Ok(())
}

/// Make sure [`DEBIAN_BASE_IMAGE`] exists: pull and retag, or debootstrap and import.
pub async fn ensure_debian_base(
    client: &super::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    ensure_base(client, &SLIM, progress).await
}

/// Make sure `recipe`'s base exists: pull and retag, or debootstrap and import.
async fn ensure_base(
    client: &super::Docker,
    recipe: &Recipe,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let docker = client.api();
    let base = recipe.base_image();
    if base_is_current(client, recipe).await? {
        return Ok(());
    }
    let (repo, tag) = PULL_SOURCE;
    progress(&format!("{base} not found; trying to pull {repo}:{tag}"));
    let mut quiet = |_: &str| {};
    let source = format!("{repo}:{tag}");
    let pulled = client.pull(&source, &mut quiet);
    let pull_error = match tokio::time::timeout(PULL_TIMEOUT, pulled).await {
        Ok(Ok(())) => {
            let opts = TagImageOptionsBuilder::default()
                .repo(recipe.base.0)
                .tag(recipe.base.1)
                .build();
            docker
                .tag_image(&format!("{repo}:{tag}"), Some(opts))
                .await
                .map_err(|e| ImageError::docker(format!("tagging {repo}:{tag}"), e))?;
            progress(&format!("tagged {repo}:{tag} as {base}"));
            return Ok(());
        }
        Ok(Err(super::DockerError::ImageUnavailable { reason, .. })) => reason,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}s", PULL_TIMEOUT.as_secs()),
    };
    progress(&format!(
        "pull failed ({pull_error}); making the base image with debootstrap"
    ));
    debootstrap_base(docker, recipe, pull_error, progress).await
}

/// A local image, for `localbuild image ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// `repo:tag`.
    pub name: String,
    /// Bytes.
    pub size: u64,
}

/// The local images named `reference` (Docker's `reference` filter: `aws/codebuild/*`, or one
/// exact `repo:tag`), sorted by name.
pub async fn local_images(
    client: &super::Docker,
    reference: &str,
) -> Result<Vec<LocalImage>, ImageError> {
    let filters = HashMap::from([("reference", vec![reference])]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = client
        .api()
        .list_images(Some(opts))
        .await
        .map_err(|e| ImageError::docker(format!("listing images {reference}"), e))?;
    let mut out: Vec<LocalImage> = list
        .into_iter()
        .flat_map(|i| {
            let size = i.size.max(0) as u64;
            i.repo_tags
                .into_iter()
                .map(move |name| LocalImage { name, size })
        })
        .filter(|i| i.name != "<none>:<none>")
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The recipe's fingerprint, kept in the imported base's comment: a base made from another
/// version of the recipe is made again (a Dockerfile on it cannot install packages offline).
pub fn recipe_hash(recipe: &Recipe) -> String {
    // FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = recipe
        .debootstrap_packages
        .iter()
        .copied()
        .chain([recipe.install_script]);
    for b in parts.flat_map(|p| p.bytes().chain([0])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The base exists and was made from this recipe (a pulled base, or one made before
/// fingerprints, counts as current).
async fn base_is_current(client: &super::Docker, recipe: &Recipe) -> Result<bool, ImageError> {
    let base = recipe.base_image();
    match client.api().inspect_image(&base).await {
        Ok(inspect) => {
            let comment = inspect.comment.unwrap_or_default();
            let stale = comment.contains("; recipe ")
                && !comment.ends_with(&format!("; recipe {}", recipe_hash(recipe)));
            Ok(!stale)
        }
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(ImageError::docker(format!("inspecting {base}"), e)),
    }
}

/// [`super::Docker::image_exists`], with this module's error.
async fn exists(client: &super::Docker, image: &str) -> Result<bool, ImageError> {
    client
        .image_exists(image)
        .await
        .map_err(|e| ImageError::Docker {
            action: format!("inspecting {image}"),
            source: Box::new(e),
        })
}

/// The Dockerfile and the files beside it, as an in-memory tar.
fn build_context(recipe: &Recipe) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for &(name, data, mode) in recipe.context {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_bytes())?;
    }
    tar.into_inner()
}

/// `debootstrap` into a temporary directory, finish it in a chroot, import it as an image.
async fn debootstrap_base(
    docker: &Docker,
    recipe: &Recipe,
    pull_error: String,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let Some(debootstrap) = find_program("debootstrap") else {
        return Err(ImageError::DebootstrapMissing {
            base: recipe.base_image(),
            pull_error,
        });
    };
    let uid = effective_uid();
    if uid != Some(0) {
        return Err(ImageError::NotRoot {
            base: recipe.base_image(),
            pull_error,
            uid: uid.unwrap_or(u32::MAX),
        });
    }
    let parent = std::env::var_os("LOCALBUILD_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let tmp = tempfile::Builder::new()
        .prefix("localbuild-debootstrap-")
        .tempdir_in(&parent)
        .map_err(|e| ImageError::io(format!("creating a temp dir in {}", parent.display()), e))?;
    let rootfs = tmp.path().join("rootfs");
    let mirror = std::env::var("LOCALBUILD_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_DEBIAN_MIRROR.to_owned());

    progress(&format!(
        "debootstrap {DEBIAN_SUITE} from {mirror} (takes about a minute)"
    ));
    let mut cmd = Command::new(&debootstrap);
    cmd.arg("--variant=minbase")
        .arg(format!(
            "--include={}",
            recipe.debootstrap_packages.join(",")
        ))
        .arg(DEBIAN_SUITE)
        .arg(&rootfs)
        .arg(&mirror);
    run_logged(cmd, "debootstrap", progress).await?;

    // The rest of the packages, the docker CLI (only /usr/bin/docker out of docker.io) and apt
    // cleanup, using the host's network through the chroot; the Dockerfile then needs none.
    // A private mount namespace: the /proc the script may mount vanishes with it.
    progress("installing packages and the docker CLI into the root filesystem (chroot)");
    let script = rootfs.join("tmp/localbuild-install-packages.sh");
    tokio::fs::write(&script, recipe.install_script)
        .await
        .map_err(|e| ImageError::io(format!("writing {}", script.display()), e))?;
    // pip in the chroot (registry packages of the recipe) trusts what the host trusts: the
    // host's CA bundle, for the build only (the script's cleanup removes /tmp).
    let host_ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if host_ca.is_file() {
        let _ = tokio::fs::copy(host_ca, rootfs.join("tmp/localbuild-host-ca.crt")).await;
    }
    let chroot = find_program("chroot").unwrap_or_else(|| "chroot".into());
    let mut cmd = match find_program("unshare") {
        Some(unshare) => {
            let mut c = Command::new(unshare);
            c.args(["--mount", "--fork"]).arg(chroot);
            c
        }
        None => Command::new(chroot),
    };
    cmd.arg(&rootfs)
        .args(["/bin/sh", "/tmp/localbuild-install-packages.sh"]);
    run_logged(cmd, "chroot install-packages.sh", progress).await?;

    let base = recipe.base_image();
    progress(&format!("importing the root filesystem as {base}"));
    let comment = format!(
        "localbuild: debootstrap --variant=minbase {DEBIAN_SUITE}; recipe {}",
        recipe_hash(recipe)
    );
    import_rootfs(docker, &rootfs, recipe.base, &comment).await?;
    progress(&format!(
        "imported {base}; removing the temporary root filesystem"
    ));
    // Removing ~15k files takes a while: keep it off the async worker threads.
    let _ = tokio::task::spawn_blocking(move || drop(tmp)).await;
    Ok(())
}

/// Stream `tar -C rootfs -c .` into `POST /images/create?fromSrc=-` (`docker import`).
///
/// The system tar keeps hard links, device nodes and ownership exactly; bollard's
/// `import_image` is `docker load` (an image archive), not this.
async fn import_rootfs(
    docker: &Docker,
    rootfs: &Path,
    (repo, tag): (&str, &str),
    comment: &str,
) -> Result<(), ImageError> {
    let mut child = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ImageError::io("starting tar", e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_task = tokio::spawn(async move {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.push(line);
        }
        lines
    });

    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .message(comment)
        .build();
    let body = body_try_stream(ReaderStream::new(stdout));
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    let mut api_result = Ok(());
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            api_result = Err(ImageError::docker(format!("importing {repo}:{tag}"), e));
            break;
        }
    }
    drop(stream);
    let status = child
        .wait()
        .await
        .map_err(|e| ImageError::io("waiting for tar", e))?;
    let tar_err = stderr_task.await.unwrap_or_default();
    if !status.success() {
        return Err(ImageError::Command {
            command: format!("tar -C {} -c .", rootfs.display()),
            status: status.to_string(),
            tail: tail(&tar_err),
        });
    }
    api_result
}

/// Run a child process, forwarding its stdout and stderr lines to `progress`; on failure the
/// error carries the last lines.
async fn run_logged(
    mut cmd: Command,
    name: &str,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| ImageError::io(format!("starting {name}"), e))?;
    let out = lines_of(child.stdout.take().expect("piped stdout"));
    let err = lines_of(child.stderr.take().expect("piped stderr"));
    let mut merged = futures_util::stream::select(out, err);
    let mut last: Vec<String> = Vec::new();
    while let Some(line) = merged.next().await {
        progress(&line);
        if last.len() == TAIL_LINES {
            last.remove(0);
        }
        last.push(line);
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ImageError::io(format!("waiting for {name}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(ImageError::Command {
            command: name.to_owned(),
            status: status.to_string(),
            tail: tail(&last),
        })
    }
}

fn lines_of(
    reader: impl AsyncRead + Unpin + Send + 'static,
) -> impl futures_util::Stream<Item = String> + Unpin {
    Box::pin(futures_util::stream::unfold(
        BufReader::new(reader).lines(),
        |mut l| async move {
            match l.next_line().await {
                Ok(Some(line)) => Some((line, l)),
                _ => None,
            }
        },
    ))
}

fn tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

/// `PATH` lookup that also tries the sbin directories (debootstrap and chroot live in
/// `/usr/sbin`, which is often not on a non-root `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

/// The effective uid, without `unsafe`: `/proc/self` is owned by it.
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Joins `stream` fragments of `docker build` output into lines (the `"\n"` often arrives
/// as a message of its own).
#[derive(Default)]
struct LineSplitter {
    pending: String,
}

impl LineSplitter {
    fn feed(&mut self, text: &str, progress: &mut (dyn FnMut(&str) + Send)) {
        self.pending.push_str(text);
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            let line = line.trim_end();
            if !line.is_empty() {
                progress(line);
            }
        }
    }

    fn finish(&mut self, progress: &mut (dyn FnMut(&str) + Send)) {
        let rest = std::mem::take(&mut self.pending);
        if !rest.trim().is_empty() {
            progress(rest.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_context_has_the_recipe() {
        let tar = build_context(&SLIM).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile", "install-packages.sh", "sources.list"]);
        assert!(DOCKERFILE.contains("FROM localbuild/debian-base:bookworm"));
    }

    /// Both images carry the aws CLI, and their `/usr/local/bin/aws` wrapper passes a build's
    /// `AWS_ENDPOINT_URL` as `--endpoint-url` (Debian's aws CLI predates the variable) and
    /// nothing without it. The wrapper is taken from each recipe and run under `/bin/sh` with
    /// a stand-in for `/usr/bin/aws` that prints its arguments.
    #[test]
    fn both_images_carry_the_aws_cli_and_its_endpoint_wrapper() {
        for (recipe, script) in [
            ("standard", INSTALL_PACKAGES_SH),
            ("codebuild-standard", CB_INSTALL_PACKAGES_SH),
        ] {
            let packages = script
                .lines()
                .find_map(|l| l.strip_prefix("PACKAGES=\""))
                .unwrap_or_else(|| panic!("{recipe}: a PACKAGES= line"));
            assert!(
                packages.split([' ', '"']).any(|p| p == "awscli"),
                "{recipe}: {packages}"
            );
            let wrapper = script
                .split("cat > /usr/local/bin/aws <<'AWS'\n")
                .nth(1)
                .and_then(|w| w.split("\nAWS\n").next())
                .unwrap_or_else(|| panic!("{recipe}: no /usr/local/bin/aws wrapper"));
            let dir = tempfile::tempdir().unwrap();
            let fake = dir.path().join("aws");
            std::fs::write(&fake, "#!/bin/sh\nprintf '%s|' \"$@\"\n").unwrap();
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let wrapper = wrapper.replace("/usr/bin/aws", fake.to_str().unwrap());
            let run = |endpoint: Option<&str>| {
                let mut c = std::process::Command::new("/bin/sh");
                c.arg("-c")
                    .arg(&wrapper)
                    .arg("aws")
                    .args(["s3", "ls", "s3://a b"])
                    .env_remove("AWS_ENDPOINT_URL");
                if let Some(e) = endpoint {
                    c.env("AWS_ENDPOINT_URL", e);
                }
                String::from_utf8(c.output().unwrap().stdout).unwrap()
            };
            assert_eq!(
                run(Some("http://172.18.0.1:40001")),
                "--endpoint-url|http://172.18.0.1:40001|s3|ls|s3://a b|",
                "{recipe}"
            );
            assert_eq!(run(None), "s3|ls|s3://a b|", "{recipe}");
        }
    }

    #[test]
    fn debootstrap_packages_match_the_install_script() {
        let line = INSTALL_PACKAGES_SH
            .lines()
            .find_map(|l| l.strip_prefix("PACKAGES=\""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("PACKAGES= line");
        let all: Vec<&str> = DEBOOTSTRAP_PACKAGES
            .iter()
            .chain(CHROOT_PACKAGES)
            .copied()
            .collect();
        assert_eq!(line.split(' ').collect::<Vec<_>>(), all);
    }

    #[test]
    fn aws_codebuild_image_names_have_the_codebuild_standard_stand_in() {
        for name in [
            "aws/codebuild/standard:7.0",
            "aws/codebuild/standard:5.0",
            "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "aws/codebuild/amazonlinux-x86_64-standard:5.0",
            "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
        ] {
            let r = stand_in_for(name).unwrap_or_else(|| panic!("{name} has no stand-in"));
            assert_eq!(r.image, "localbuild/codebuild-standard:1.0");
        }
        for name in [
            "localbuild/standard:1.0",
            "public.ecr.aws/codebuild/local-builds:latest",
            "aws/codebuild/standardx:1.0",
            "python:3.11",
            "myaws/codebuild/standard:7.0",
        ] {
            assert!(stand_in_for(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_stand_in_line_names_both_images_and_how_to_use_the_real_one() {
        let line = stand_in_line("aws/codebuild/standard:7.0", &CODEBUILD_STANDARD);
        assert!(line.contains("aws/codebuild/standard:7.0"), "{line}");
        assert!(line.contains("localbuild/codebuild-standard:1.0"), "{line}");
        assert!(line.contains("aws-codebuild-docker-images"), "{line}");
        assert!(!line.contains("  "), "{line}");
    }

    /// The versions the CodeBuild-like recipe carries (install-packages.sh's `VERSIONS`, one
    /// line each): CodeBuild's runtime names, each version one that aws/codebuild/standard:7.0
    /// selects (listed, or installed by its `default` entry), each runtime's packages known.
    #[test]
    fn the_standard_recipes_versions_are_ones_the_cloud_image_selects() {
        use localbuild_engine::buildspec::{cloud, runtimes};
        let script = CB_INSTALL_PACKAGES_SH;
        let table = script
            .split("VERSIONS=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .expect("a VERSIONS table");
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| !f.is_empty())
            .collect();
        assert!(lines.len() >= 17, "{lines:?}");
        let seven = cloud::image("aws/codebuild/standard:7.0").unwrap();
        let none = |_: &str| None;
        for f in &lines {
            let [runtime, version, source] = f[..] else {
                panic!("not `runtime version source`: {f:?}")
            };
            let req = [(runtime.to_owned(), version.to_owned())];
            runtimes::select(&seven.runtimes, &req, &none)
                .unwrap_or_else(|e| panic!("{runtime} {version}: {e}"));
            assert!(
                [
                    "bookworm",
                    "bookworm-backports",
                    "bullseye",
                    "trixie",
                    "trixie-backports",
                    "pypi"
                ]
                .contains(&source),
                "{f:?}: the script's sources.list has no {source}"
            );
            assert!(
                script.contains(&format!("        {runtime}) ")),
                "install-packages.sh has no packages for {runtime}"
            );
        }
        let dockerfile = CODEBUILD_STANDARD.context[0].1;
        for check in [
            "python3 --version | grep -q '^Python 3\\.11\\.'",
            "java -version 2>&1 | grep -q 'version \"17\\.",
            "node --version | grep -q '^v18\\.'",
        ] {
            assert!(dockerfile.contains(check), "the Dockerfile lacks {check}");
        }
        assert!(
            !dockerfile.contains("COPY runtimes.yml"),
            "runtimes.yml is written by the script"
        );
    }

    /// The small image's hints quote the CodeBuild-like image's first-build cost.
    #[test]
    fn the_hints_quote_the_standard_images_build_cost() {
        assert_eq!(
            localbuild_engine::hints::STANDARD_IMAGE_COST,
            CODEBUILD_STANDARD.build_time
        );
        assert!(stand_in_for(localbuild_engine::hints::SUGGESTED_IMAGE).is_some());
    }

    #[test]
    fn line_splitter_joins_fragments() {
        let mut got = Vec::new();
        let mut push = |l: &str| got.push(l.to_owned());
        let mut s = LineSplitter::default();
        s.feed("Step 1/2 : FROM x", &mut push);
        s.feed("\n", &mut push);
        s.feed(" ---> abc\nSucc", &mut push);
        s.finish(&mut push);
        assert_eq!(got, ["Step 1/2 : FROM x", " ---> abc", "Succ"]);
    }
}
