//! `runtime-versions` in DOWNLOAD_SOURCE, as CodeBuild does it (reference §1.8): the build
//! image's `/codebuild/image/config/runtimes.yml` is read from the container (a tar download
//! through the [`crate::runtime::Runtime`] seam, so any image and any runtime work), the
//! buildspec's selections are matched by [`crate::buildspec::runtimes::select`] (pure), logged
//! (`Selecting 'nodejs' runtime version '18' based on manual selections...`), and the selected
//! versions' commands run through the build's shell like buildspec commands (their `export`s
//! carry over to the phases). An image without the file gets CodeBuild's "not supported by this
//! build image" line (and, on the small default image, a hint naming the image to use).
//!
//! When the build names one of AWS's curated images (`aws/codebuild/standard:7.0`, run here by
//! its local stand-in), the cloud image's lists ([`crate::buildspec::cloud`]) decide first:
//! a version the cloud lacks fails with the cloud's message; one only the local image lacks
//! runs the local `default` entry (an install at build time) or fails saying the cloud has it
//! and this machine cannot get it offline.

use super::commands::CommandEnd;
use super::*;
use crate::buildspec::cloud;
use crate::buildspec::runtimes::{
    Images, RUNTIMES_FILE, RuntimesFile, Selected, select_for, shown_version,
};
use futures_util::StreamExt as _;

/// Largest `runtimes.yml` read (AWS's are under 10 KiB).
const MAX_FILE: usize = 1 << 20;

impl BuildExecution {
    /// Read the image's `runtimes.yml` and select the buildspec's runtimes. Logs the agent's
    /// lines; returns what to install once the shell runs (nothing without a selection or
    /// without the file), or the `YAML_FILE_ERROR` context.
    pub(super) async fn select_runtimes(
        &mut self,
        spec: &Buildspec,
    ) -> Result<Vec<Selected>, PhaseError> {
        let requested = spec
            .phases
            .install
            .as_ref()
            .map(|p| p.runtime_versions.clone())
            .unwrap_or_default();
        if requested.is_empty() {
            self.agent("No runtime version selected in buildspec.");
            return Ok(Vec::new());
        }
        let Some(text) = self.read_container_file(RUNTIMES_FILE).await else {
            self.agent("Skipping install of runtimes. Runtime version selection is not supported by this build image");
            let image = self.local_image().to_owned();
            if let Some(hint) = crate::hints::runtime_versions_hint(&image, &requested) {
                self.agent(&format!("Hint: {hint}"));
            }
            return Ok(Vec::new());
        };
        let failed = |m: String| PhaseError::Failed(PhaseContext::new("YAML_FILE_ERROR", m));
        let file = RuntimesFile::parse(&String::from_utf8_lossy(&text)).map_err(|e| {
            failed(format!(
                "the build image's {RUNTIMES_FILE} cannot be read: {e}"
            ))
        })?;
        let env = self.driver_env.clone();
        let lookup = move |name: &str| -> Option<String> {
            env.iter()
                .rev()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
        };
        for (name, version) in &requested {
            let shown = shown_version(version, &lookup);
            self.agent(&format!(
                "Selecting '{name}' runtime version '{shown}' based on manual selections..."
            ));
        }
        let cloud = cloud::image(&self.req.image);
        let images = Images {
            cloud: cloud.map(|c| (self.req.image.as_str(), &c.runtimes)),
            local: self.local_image(),
        };
        select_for(images, &file, &requested, &lookup).map_err(|e| failed(e.to_string()))
    }

    /// The image that runs the build: the stand-in, or the image asked for.
    fn local_image(&self) -> &str {
        self.stand_in
            .as_ref()
            .map_or(self.req.image.as_str(), |s| s.image.as_str())
    }

    /// Run the selected versions' commands, each logged like a buildspec command, as the
    /// default user. A failing one fails DOWNLOAD_SOURCE.
    pub(super) async fn install_runtimes(
        &mut self,
        spec: &Buildspec,
        selected: &[Selected],
    ) -> Result<(), PhaseError> {
        for s in selected {
            if let Some(version) = &s.custom {
                // The image's `default` entry installs `$VERSION`.
                let quoted = version.replace('\'', "'\\''");
                self.capture(spec, &format!("export VERSION='{quoted}'"))
                    .await;
            }
            for cmd in &s.commands {
                match self.run_command(spec, None, cmd).await {
                    CommandEnd::Ok => {}
                    CommandEnd::Failed { code, .. } => {
                        // A version the cloud image has that the local `default` entry could
                        // not install: say so, not only which command failed.
                        let context = match &s.if_failed {
                            Some(e) => PhaseContext::new("YAML_FILE_ERROR", e.to_string()),
                            None => PhaseContext::new(
                                "COMMAND_EXECUTION_ERROR",
                                format!(
                                    "Error while executing command: {cmd}. Reason: exit status {code}"
                                ),
                            ),
                        };
                        return Err(PhaseError::Failed(context));
                    }
                    CommandEnd::Interrupted(i) => return Err(PhaseError::Interrupted(i)),
                    CommandEnd::Fault(m) => {
                        return Err(PhaseError::Fault(PhaseContext::new(
                            "SINGLE_BUILD_CONTAINER_DEAD",
                            m,
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// A regular file of the build container, or `None` (absent, not a file, too large, or
    /// unreadable).
    async fn read_container_file(&self, path: &str) -> Option<Vec<u8>> {
        let mut stream = self.tar_of(path);
        let mut tar = Vec::new();
        while let Some(chunk) = self.guard(stream.next()).await.ok()? {
            match chunk {
                Ok(b) if tar.len() + b.len() <= MAX_FILE + 64 * 1024 => tar.extend_from_slice(&b),
                Ok(_) => return None,
                Err(e) => {
                    tracing::debug!("{path} not read from the container: {e}");
                    return None;
                }
            }
        }
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entry = archive.entries().ok()?.next()?.ok()?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return None;
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut out).ok()?;
        Some(out)
    }
}
