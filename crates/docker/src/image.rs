//! The default build image, `localbuild/standard:1.0`.
//!
//! Recipe: `crates/docker/standard/` (Dockerfile, `install-packages.sh`, `sources.list`), embedded
//! at compile time; see `crates/docker/standard/README.md` for the verified shell equivalent.
//!
//! [`ensure_standard_image`] builds the image only when it is missing. Its base,
//! `localbuild/debian-base:bookworm`, is made by pulling `debian:bookworm-slim` (bounded by a
//! short timeout) and retagging it, or — when no registry is reachable — by running
//! `debootstrap` (needs root and the `debootstrap` package) into a temporary directory and
//! importing that root filesystem as an image (the API behind `docker import`).
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
/// essential packages, always present in `minbase`. Keep in sync with
/// `crates/docker/standard/install-packages.sh`.
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

const DOCKERFILE: &str = include_str!("../standard/Dockerfile");
const INSTALL_PACKAGES_SH: &str = include_str!("../standard/install-packages.sh");
const SOURCES_LIST: &str = include_str!("../standard/sources.list");

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
        "cannot make {DEBIAN_BASE_IMAGE}: pulling {}:{} failed ({pull_error}) and debootstrap is \
         not installed; install it with `apt-get install debootstrap` (or make \
         debian:bookworm-slim available to the Docker daemon)",
        PULL_SOURCE.0, PULL_SOURCE.1
    )]
    DebootstrapMissing { pull_error: String },
    /// debootstrap needs root.
    #[error(
        "cannot make {DEBIAN_BASE_IMAGE}: pulling {}:{} failed ({pull_error}) and debootstrap \
         must run as root (uid 0, this is uid {uid}); run localbuild once as root (with \
         debootstrap installed: `apt-get install debootstrap`) to create the image",
        PULL_SOURCE.0, PULL_SOURCE.1
    )]
    NotRoot { pull_error: String, uid: u32 },
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
    if exists(client, STANDARD_IMAGE).await? {
        return Ok(());
    }
    progress(&format!("{STANDARD_IMAGE} not found; building it"));
    build_standard_image(client, progress).await
}

/// Build [`STANDARD_IMAGE`] from the embedded recipe, making [`DEBIAN_BASE_IMAGE`] first if
/// it is missing. Rebuilds even if the image exists.
pub async fn build_standard_image(
    client: &super::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let docker = client.api();
    ensure_debian_base(client, progress).await?;
    progress(&format!("building {STANDARD_IMAGE}"));
    let context = standard_build_context()
        .map_err(|e| ImageError::io("creating the build context tar", e))?;
    let labels = HashMap::from([("org.localbuild.image", "standard-1.0")]);
    let opts = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(STANDARD_IMAGE)
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
                    image: STANDARD_IMAGE.into(),
                    message: error,
                });
            }
            Err(e) => return Err(ImageError::docker(format!("building {STANDARD_IMAGE}"), e)),
        }
    }
    lines.finish(&mut *progress);
    if !exists(client, STANDARD_IMAGE).await? {
        return Err(ImageError::Build {
            image: STANDARD_IMAGE.into(),
            message: "the build finished but the image is not there".into(),
        });
    }
    progress(&format!("built {STANDARD_IMAGE}"));
    Ok(())
}

/// Make sure [`DEBIAN_BASE_IMAGE`] exists: pull and retag, or debootstrap and import.
pub async fn ensure_debian_base(
    client: &super::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let docker = client.api();
    if exists(client, DEBIAN_BASE_IMAGE).await? {
        return Ok(());
    }
    let (repo, tag) = PULL_SOURCE;
    progress(&format!(
        "{DEBIAN_BASE_IMAGE} not found; trying to pull {repo}:{tag}"
    ));
    let mut quiet = |_: &str| {};
    let source = format!("{repo}:{tag}");
    let pulled = client.pull(&source, &mut quiet);
    let pull_error = match tokio::time::timeout(PULL_TIMEOUT, pulled).await {
        Ok(Ok(())) => {
            let opts = TagImageOptionsBuilder::default()
                .repo(DEBIAN_BASE_REPO)
                .tag(DEBIAN_BASE_TAG)
                .build();
            docker
                .tag_image(&format!("{repo}:{tag}"), Some(opts))
                .await
                .map_err(|e| ImageError::docker(format!("tagging {repo}:{tag}"), e))?;
            progress(&format!("tagged {repo}:{tag} as {DEBIAN_BASE_IMAGE}"));
            return Ok(());
        }
        Ok(Err(super::DockerError::ImageUnavailable { reason, .. })) => reason,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}s", PULL_TIMEOUT.as_secs()),
    };
    progress(&format!(
        "pull failed ({pull_error}); making the base image with debootstrap"
    ));
    debootstrap_base(docker, pull_error, progress).await
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
fn standard_build_context() -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", DOCKERFILE, 0o644),
        ("install-packages.sh", INSTALL_PACKAGES_SH, 0o755),
        ("sources.list", SOURCES_LIST, 0o644),
    ] {
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
    pull_error: String,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let Some(debootstrap) = find_program("debootstrap") else {
        return Err(ImageError::DebootstrapMissing { pull_error });
    };
    let uid = effective_uid();
    if uid != Some(0) {
        return Err(ImageError::NotRoot {
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
        .arg(format!("--include={}", DEBOOTSTRAP_PACKAGES.join(",")))
        .arg(DEBIAN_SUITE)
        .arg(&rootfs)
        .arg(&mirror);
    run_logged(cmd, "debootstrap", progress).await?;

    // The docker CLI (only /usr/bin/docker out of docker.io) and apt cleanup, using the host's
    // network through the chroot; the Dockerfile then needs none.
    progress("installing the docker CLI into the root filesystem (chroot)");
    let script = rootfs.join("tmp/localbuild-install-packages.sh");
    tokio::fs::write(&script, INSTALL_PACKAGES_SH)
        .await
        .map_err(|e| ImageError::io(format!("writing {}", script.display()), e))?;
    let mut cmd = Command::new(find_program("chroot").unwrap_or_else(|| "chroot".into()));
    cmd.arg(&rootfs)
        .args(["/bin/sh", "/tmp/localbuild-install-packages.sh"]);
    run_logged(cmd, "chroot install-packages.sh", progress).await?;

    progress(&format!(
        "importing the root filesystem as {DEBIAN_BASE_IMAGE}"
    ));
    import_rootfs(docker, &rootfs).await?;
    progress(&format!(
        "imported {DEBIAN_BASE_IMAGE}; removing the temporary root filesystem"
    ));
    // Removing ~15k files takes a while: keep it off the async worker threads.
    let _ = tokio::task::spawn_blocking(move || drop(tmp)).await;
    Ok(())
}

/// Stream `tar -C rootfs -c .` into `POST /images/create?fromSrc=-` (`docker import`).
///
/// The system tar keeps hard links, device nodes and ownership exactly; bollard's
/// `import_image` is `docker load` (an image archive), not this.
async fn import_rootfs(docker: &Docker, rootfs: &Path) -> Result<(), ImageError> {
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
        .repo(DEBIAN_BASE_REPO)
        .tag(DEBIAN_BASE_TAG)
        .message("localbuild: debootstrap --variant=minbase bookworm")
        .build();
    let body = body_try_stream(ReaderStream::new(stdout));
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    let mut api_result = Ok(());
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            api_result = Err(ImageError::docker(
                format!("importing {DEBIAN_BASE_IMAGE}"),
                e,
            ));
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
        let tar = standard_build_context().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile", "install-packages.sh", "sources.list"]);
        assert!(DOCKERFILE.contains("FROM localbuild/debian-base:bookworm"));
    }

    #[test]
    fn debootstrap_packages_match_the_install_script() {
        let line = INSTALL_PACKAGES_SH
            .lines()
            .find_map(|l| l.strip_prefix("PACKAGES=\""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("PACKAGES= line");
        assert_eq!(line.split(' ').collect::<Vec<_>>(), DEBOOTSTRAP_PACKAGES);
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
