//! What a build leaves behind: artifacts, reports and the cache (UPLOAD_ARTIFACTS, and the cache
//! restore in DOWNLOAD_SOURCE).
//!
//! The source directory is read from the container as one tar stream (never held in memory),
//! listed, selected with [`crate::artifacts`], then streamed again and only the selected entries
//! are written: into folders with [`safe_create`] (no `..`, no absolute names, never through a
//! symlink, never over an existing file) or into zips. Symlinks made by the build are data: kept
//! as links inside zips when `enable-symlinks: yes`, otherwise resolved *inside the container*
//! (`readlink -f`, then the target file's content is downloaded); links to folders or dangling
//! links are skipped with a warning. Cache archives are tars kept under
//! `<store>/cache/<project>/<key>.tar`, restored by extracting them at `/` in the container.

use super::*;
use crate::artifacts::{self, Entry, Kind, Rules, Selected};
use crate::buildspec::{ArtifactSet, CacheAction};
use crate::reports::{self, Report};
use crate::store::{cache_file_name, safe_file_name};
use futures_util::Stream;
use std::io::Read;
use std::path::Path;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Results kept for the [`Outcome`].
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub reports: Vec<Report>,
    /// Where the artifacts were written (folders or zips).
    pub artifacts: Vec<PathBuf>,
    /// The evaluated cache key (from the restore), reused by the save.
    cache_key: Option<String>,
}

/// Where selected entries go.
enum Sink {
    Dir(PathBuf),
    Zip {
        writer: Box<zip::ZipWriter<std::fs::File>>,
        symlinks: bool,
    },
}

/// Sinks, and for each source entry the (sink, name) pairs it is written to.
#[derive(Default)]
struct Plan {
    sinks: Vec<Sink>,
    targets: HashMap<String, Vec<(usize, String)>>,
    warnings: Vec<String>,
}

impl Plan {
    pub(super) fn add(&mut self, sink: usize, files: &[Selected]) {
        for f in files {
            self.targets
                .entry(f.src.clone())
                .or_default()
                .push((sink, f.dest.clone()));
        }
    }
}

/// A rules view of an artifact definition.
fn rules(a: &ArtifactSet) -> Rules {
    Rules {
        files: a.files.clone(),
        base_directory: a.base_directory.clone(),
        discard_paths: a.discard_paths,
        exclude_paths: a.exclude_paths.clone(),
    }
}

/// `'…'` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A relative name is safe when it has only normal components.
fn safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A name refused by the confinement rule, as the I/O error that fails UPLOAD_ARTIFACTS.
fn refused(e: localbuild_confine::Refused) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string())
}

/// Create `root/rel` as a new file. Refuses unsafe names, parents that are not real folders
/// (symlinks included) and existing files (`O_EXCL`: a symlink at the final name is not followed).
pub(crate) fn safe_create(root: &Path, rel: &str, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("refusing to write {rel}: {why}"),
        )
    };
    if !safe_rel(rel) {
        return Err(refuse("not a plain relative path"));
    }
    let comps: Vec<&str> = rel.split('/').collect();
    let mut p = root.to_path_buf();
    for c in &comps[..comps.len() - 1] {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refuse("a parent is not a folder")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&p)?,
            Err(e) => return Err(e),
        }
    }
    p.push(comps[comps.len() - 1]);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777 | 0o600)
        .open(&p)
}

/// Write one entry's content to a sink.
fn write_to(sink: &mut Sink, dest: &str, mode: u32, data: &mut dyn Read) -> std::io::Result<()> {
    match sink {
        Sink::Dir(root) => {
            let mut f = safe_create(root, dest, mode)?;
            std::io::copy(data, &mut f)?;
        }
        Sink::Zip { writer, .. } => {
            if !safe_rel(dest) {
                return Err(std::io::Error::other(format!("refusing to zip {dest}")));
            }
            let opts = zip::write::SimpleFileOptions::default()
                .unix_permissions(mode & 0o777)
                .large_file(true);
            writer
                .start_file(dest, opts)
                .map_err(std::io::Error::other)?;
            std::io::copy(data, writer)?;
        }
    }
    Ok(())
}

/// Tar entry name → path relative to the downloaded folder (its first component removed).
fn rel_name(raw: &Path) -> Option<String> {
    let s = raw.to_str()?.trim_start_matches("./");
    let (_, rest) = s.split_once('/')?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || !safe_rel(rest) {
        return None;
    }
    Some(rest.to_owned())
}

type TarStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Run `f` over the tar stream on a blocking thread.
async fn with_archive<T: Send + 'static>(
    stream: TarStream,
    f: impl FnOnce(&mut tar::Archive<SyncIoBridge<StreamReader<TarStream, Bytes>>>) -> T
    + Send
    + 'static,
) -> std::io::Result<T> {
    let bridge = SyncIoBridge::new(StreamReader::new(stream));
    tokio::task::spawn_blocking(move || {
        let mut archive = tar::Archive::new(bridge);
        f(&mut archive)
    })
    .await
    .map_err(std::io::Error::other)
}

fn kind_of(t: tar::EntryType) -> Option<Kind> {
    match t {
        tar::EntryType::Regular | tar::EntryType::Continuous => Some(Kind::File),
        tar::EntryType::Directory => Some(Kind::Dir),
        tar::EntryType::Symlink => Some(Kind::Symlink),
        _ => None,
    }
}

/// How cache archives name entries under the source folder.
const SRC_PREFIX: &str = "@src/";

/// A copy of a cache archive with `@src/` names moved under `src_dir`, ready to extract at `/`.
fn relocate(cache: &Path, src_dir: &str) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    let mut archive = tar::Archive::new(std::fs::File::open(cache)?);
    let mut out = tar::Builder::new(tempfile::tempfile()?);
    let src = src_dir.trim_start_matches('/');
    for e in archive.entries()? {
        let mut e = e?;
        let raw = e.path()?.to_string_lossy().into_owned();
        if raw.split('/').any(|c| c == "..") {
            continue;
        }
        let name = match raw.strip_prefix(SRC_PREFIX) {
            Some(rel) => format!("{src}/{rel}"),
            None => raw,
        };
        let mut h = e.header().clone();
        if e.header().entry_type() == tar::EntryType::Symlink {
            if let Some(t) = e.link_name()? {
                out.append_link(&mut h, &name, t)?;
            }
        } else {
            out.append_data(&mut h, &name, &mut e)?;
        }
    }
    let mut f = out.into_inner()?;
    f.rewind()?;
    Ok(f)
}

impl BuildExecution {
    pub(super) fn tar_of(&self, path: &str) -> TarStream {
        let container = self.container.clone().unwrap_or_default();
        self.runtime.download_tar(&container, path)
    }

    /// Run `cmd` silently with the build's shell (default user) and return its stdout, or
    /// `None` if it failed.
    pub(super) async fn capture_stdout(&mut self, spec: &Buildspec, cmd: &str) -> Option<String> {
        let (code, out) = self
            .capture(spec, &format!("{{ {cmd}\n}} 2>/dev/null"))
            .await?;
        if code != 0 {
            return None;
        }
        let mut s = String::from_utf8_lossy(&out).into_owned();
        if s.ends_with('\n') {
            s.pop();
        }
        Some(s)
    }

    /// Evaluate `text` with the build's shell semantics (`$VAR`, `$(cmd)`).
    pub(super) async fn evaluate(&mut self, spec: &Buildspec, text: &str) -> Option<String> {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        self.capture_stdout(spec, &format!("printf '%s' \"{escaped}\""))
            .await
    }

    /// The source directory's entries, relative to it.
    pub(super) async fn list_source(&self) -> std::io::Result<Vec<Entry>> {
        let stream = self.tar_of(&self.src_dir);
        with_archive(stream, |archive| -> std::io::Result<Vec<Entry>> {
            let mut out = vec![];
            for e in archive.entries()? {
                let e = e?;
                let (Some(kind), Some(path)) =
                    (kind_of(e.header().entry_type()), rel_name(&e.path()?))
                else {
                    continue;
                };
                out.push(Entry { path, kind });
            }
            Ok(out)
        })
        .await?
    }

    /// Stream the source once more and write every planned entry. Returns the symlinks that
    /// still need resolving.
    async fn extract(
        &self,
        plan: Plan,
    ) -> std::io::Result<(Plan, Vec<(String, Vec<(usize, String)>)>)> {
        let stream = self.tar_of(&self.src_dir);
        with_archive(stream, move |archive| {
            let mut plan = plan;
            let mut links = vec![];
            for e in archive.entries()? {
                let mut e = e?;
                let Some(path) = rel_name(&e.path()?) else {
                    continue;
                };
                let Some(targets) = plan.targets.get(&path).cloned() else {
                    continue;
                };
                let mode = e.header().mode().unwrap_or(0o644);
                match kind_of(e.header().entry_type()) {
                    Some(Kind::File) => {
                        if let [(sink, dest)] = targets.as_slice() {
                            if let Err(err) = write_to(&mut plan.sinks[*sink], dest, mode, &mut e) {
                                plan.warnings.push(format!("{path}: {err}"));
                            }
                        } else {
                            // Several destinations: spool once to a temporary file.
                            let mut tmp = tempfile::tempfile()?;
                            std::io::copy(&mut e, &mut tmp)?;
                            for (sink, dest) in &targets {
                                use std::io::Seek;
                                tmp.rewind()?;
                                if let Err(err) =
                                    write_to(&mut plan.sinks[*sink], dest, mode, &mut tmp)
                                {
                                    plan.warnings.push(format!("{path}: {err}"));
                                }
                            }
                        }
                    }
                    Some(Kind::Symlink) => {
                        let link = e.link_name()?.map(|l| l.to_string_lossy().into_owned());
                        let mut rest = vec![];
                        for (sink, dest) in targets {
                            match (&mut plan.sinks[sink], &link) {
                                (
                                    Sink::Zip {
                                        writer,
                                        symlinks: true,
                                    },
                                    Some(l),
                                ) => {
                                    let opts = zip::write::SimpleFileOptions::default();
                                    if let Err(err) = writer.add_symlink(&dest, l, opts) {
                                        plan.warnings.push(format!("{path}: {err}"));
                                    }
                                }
                                _ => rest.push((sink, dest)),
                            }
                        }
                        if !rest.is_empty() {
                            links.push((path, rest));
                        }
                    }
                    _ => {}
                }
            }
            Ok((plan, links))
        })
        .await?
    }

    /// Resolve a symlink inside the container and write its target's content.
    async fn resolve_link(
        &mut self,
        spec: &Buildspec,
        plan: Plan,
        src: &str,
        targets: Vec<(usize, String)>,
    ) -> Plan {
        let abs = format!("{}/{src}", self.src_dir);
        let real = self
            .capture_stdout(
                spec,
                &format!(
                    "f=$(readlink -f {}) && [ -f \"$f\" ] && printf '%s' \"$f\"",
                    quote(&abs)
                ),
            )
            .await
            .filter(|r| r.starts_with('/'));
        let Some(real) = real else {
            let mut plan = plan;
            plan.warnings.push(format!(
                "{src}: symbolic link to a folder or to nothing; skipped"
            ));
            return plan;
        };
        let stream = self.tar_of(&real);
        let result = with_archive(stream, move |archive| -> std::io::Result<Plan> {
            let mut plan = plan;
            if let Some(e) = archive.entries()?.next() {
                let mut e = e?;
                if kind_of(e.header().entry_type()) == Some(Kind::File) {
                    let mode = e.header().mode().unwrap_or(0o644);
                    let mut tmp = tempfile::tempfile()?;
                    std::io::copy(&mut e, &mut tmp)?;
                    for (sink, dest) in &targets {
                        use std::io::Seek;
                        tmp.rewind()?;
                        if let Err(err) = write_to(&mut plan.sinks[*sink], dest, mode, &mut tmp) {
                            plan.warnings.push(format!("{dest}: {err}"));
                        }
                    }
                }
            }
            Ok(plan)
        })
        .await;
        match result {
            Ok(Ok(p)) => p,
            _ => Plan {
                warnings: vec![format!("{src}: cannot read the link's target; skipped")],
                ..Plan::default()
            },
        }
    }

    /// Add an artifact's sink; returns its index and path. `s3`: the primary artifact of an
    /// S3 artifact (its own root, packaging and name rules).
    fn artifact_sink(
        &self,
        plan: &mut Plan,
        name: &str,
        symlinks: bool,
        s3: Option<&crate::request::S3Artifact>,
    ) -> std::io::Result<(usize, PathBuf)> {
        let root = match s3 {
            Some(a) => a.bucket_dir.clone(),
            None => self
                .req
                .artifacts_dir
                .clone()
                .unwrap_or_else(|| self.place.artifacts.clone()),
        };
        std::fs::create_dir_all(&root)?;
        let mut path = localbuild_confine::Root::new(root)
            .confined("artifact name", name)
            .map_err(refused)?;
        let zip = s3.map_or(self.req.zip, |a| a.zip);
        if zip {
            // CodeBuild names an S3 zip exactly as the artifact is named.
            if s3.is_none() && !name.ends_with(".zip") {
                path.set_extension(match path.extension() {
                    Some(e) => format!("{}.zip", e.to_string_lossy()),
                    None => "zip".to_owned(),
                });
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if std::fs::symlink_metadata(&path).is_ok() {
                std::fs::remove_file(&path)?;
            }
            let file = std::fs::File::create_new(&path)?;
            plan.sinks.push(Sink::Zip {
                writer: Box::new(zip::ZipWriter::new(file)),
                symlinks,
            });
        } else {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
                Ok(_) => std::fs::remove_file(&path)?,
                Err(_) => {}
            }
            std::fs::create_dir_all(&path)?;
            plan.sinks.push(Sink::Dir(path.clone()));
        }
        Ok((plan.sinks.len() - 1, path))
    }

    /// An S3 artifact's key in its bucket: `path`, the build's uuid (namespace BUILD_ID) and
    /// the project's name, or the buildspec's `artifacts.name` with `overrideArtifactName`.
    async fn s3_object_name(
        &mut self,
        spec: &Buildspec,
        set: &ArtifactSet,
        a: &crate::request::S3Artifact,
    ) -> String {
        let name = match (a.override_name, &set.name) {
            (true, Some(_)) => self.artifact_name(spec, set).await,
            _ => a.name.clone(),
        };
        let uuid = self
            .build_id
            .rsplit(':')
            .next()
            .unwrap_or(&self.build_id)
            .to_owned();
        [
            a.path.trim_matches('/'),
            if a.build_id_namespace { &uuid } else { "" },
            &name,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
    }

    /// The artifact name: `name` evaluated in the container, or `primary`.
    pub(super) async fn artifact_name(&mut self, spec: &Buildspec, set: &ArtifactSet) -> String {
        let Some(name) = &set.name else {
            return "primary".to_owned();
        };
        match self.evaluate(spec, name).await {
            Some(n) => {
                let n = n.trim_matches('/').to_owned();
                if safe_rel(&n) {
                    return n;
                }
                self.agent(&format!(
                    "Artifact name {n:?} is not a plain relative path; using primary"
                ));
            }
            None => {
                self.agent(&format!(
                    "Cannot evaluate artifact name {name}; using primary"
                ));
            }
        }
        "primary".to_owned()
    }

    /// UPLOAD_ARTIFACTS: artifacts, secondary artifacts, reports, then the cache.
    pub(super) async fn upload_outputs(&mut self, spec: &Buildspec) -> Result<(), PhaseError> {
        let mut failure = None;
        if spec.artifacts.is_some() || !spec.reports.is_empty() {
            match self.write_outputs(spec).await {
                Ok(f) => failure = f,
                Err(e) => {
                    failure = Some(PhaseContext::new(
                        "CLIENT_ERROR",
                        format!("cannot write artifacts: {e}"),
                    ))
                }
            }
        }
        self.save_cache(spec).await;
        match failure {
            Some(ctx) => Err(PhaseError::Failed(ctx)),
            None => Ok(()),
        }
    }

    pub(super) async fn write_outputs(
        &mut self,
        spec: &Buildspec,
    ) -> std::io::Result<Option<PhaseContext>> {
        let entries = self.list_source().await?;
        let mut plan = Plan::default();
        let mut failure = None;
        let mut artifact_paths: Vec<(Option<String>, usize, PathBuf, Artifacts)> = vec![];
        if let Some(a) = &spec.artifacts {
            let mut sets: Vec<(Option<String>, ArtifactSet)> = vec![(None, a.primary.clone())];
            sets.extend(
                a.secondary
                    .iter()
                    .map(|(id, s)| (Some(id.clone()), s.clone())),
            );
            for (id, set) in sets {
                if let Some(id) = &id {
                    self.agent(&format!("Preparing to copy secondary artifacts {id}"));
                }
                let sel = artifacts::select(&rules(&set), &entries);
                for line in &sel.lines {
                    self.agent(line);
                }
                if sel.files.is_empty() {
                    failure.get_or_insert_with(|| {
                        PhaseContext::new("CLIENT_ERROR", "no matching artifact paths found")
                    });
                    continue;
                }
                let s3 = match &id {
                    None => self.req.s3_artifact.clone(),
                    Some(id) => self
                        .req
                        .s3_secondary_artifacts
                        .iter()
                        .find(|(i, _)| i == id)
                        .map(|(_, a)| a.clone()),
                };
                let name = match (&id, &s3) {
                    (_, Some(a)) => self.s3_object_name(spec, &set, a).await,
                    (Some(id), None) => id.clone(),
                    (None, None) => self.artifact_name(spec, &set).await,
                };
                let (sink, path) =
                    self.artifact_sink(&mut plan, &name, set.enable_symlinks, s3.as_ref())?;
                plan.add(sink, &sel.files);
                let record = Artifacts {
                    location: match &s3 {
                        Some(a) => format!("arn:aws:s3:::{}/{name}", a.bucket),
                        None => path.display().to_string(),
                    },
                    artifact_identifier: id.clone(),
                    override_artifact_name: s3.as_ref().map(|a| a.override_name),
                    encryption_disabled: s3.as_ref().map(|a| a.encryption_disabled),
                };
                artifact_paths.push((id, sink, path, record));
            }
        }
        if failure.is_some() {
            // CodeBuild uploads nothing when a definition matches nothing.
            for (_, _, p, _) in &artifact_paths {
                let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
            }
            plan = Plan::default();
            artifact_paths.clear();
        }
        let reports_root = self
            .req
            .reports_dir
            .clone()
            .unwrap_or_else(|| self.place.reports.clone());
        let mut groups = vec![];
        for group in &spec.reports {
            let r = Rules {
                files: group.files.clone(),
                base_directory: group.base_directory.clone(),
                discard_paths: group.discard_paths,
                exclude_paths: vec![],
            };
            let sel = artifacts::select(&r, &entries);
            for line in &sel.lines {
                self.agent(line);
            }
            let dir = localbuild_confine::Root::new(&reports_root)
                .confined("report group name", &safe_file_name(&group.name))
                .map_err(refused)?;
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir)?,
                Ok(_) => std::fs::remove_file(&dir)?,
                Err(_) => {}
            }
            std::fs::create_dir_all(&dir)?;
            plan.sinks.push(Sink::Dir(dir.clone()));
            plan.add(plan.sinks.len() - 1, &sel.files);
            groups.push((group.clone(), dir, sel.files));
        }
        let (mut plan, links) = self.extract(plan).await?;
        for (src, targets) in links {
            plan = self.resolve_link(spec, plan, &src, targets).await;
        }
        for w in std::mem::take(&mut plan.warnings) {
            self.agent(&format!("Warning: {w}"));
        }
        for sink in plan.sinks {
            if let Sink::Zip { writer, .. } = sink {
                writer.finish().map_err(std::io::Error::other)?;
            }
        }
        for (id, _, path, record) in artifact_paths {
            match id {
                None => self.build.artifacts = record,
                Some(_) => self.build.secondary_artifacts.push(record),
            }
            self.outputs.artifacts.push(path);
        }
        for (group, dir, files) in groups {
            self.report(&group, &dir, &files, &reports_root).await;
        }
        Ok(failure)
    }

    /// Parse one report group's files and write its JSON summary.
    pub(super) async fn report(
        &mut self,
        group: &buildspec::ReportGroup,
        dir: &Path,
        files: &[Selected],
        root: &Path,
    ) {
        let region = &self.req.region;
        let project = &self.req.project;
        let account = &self.req.account_id;
        let group_arn = if group.name.starts_with("arn:") {
            group.name.clone()
        } else {
            format!(
                "arn:aws:codebuild:{region}:{account}:report-group/{project}-{}",
                group.name
            )
        };
        let short = group.name.rsplit('/').next().unwrap_or(&group.name);
        let arn = format!(
            "arn:aws:codebuild:{region}:{account}:report/{project}-{short}:{}",
            uuid::Uuid::new_v4()
        );
        let mut report = Report::new(
            group.file_format,
            &group.name,
            arn.clone(),
            group_arn,
            self.build.arn.clone(),
        );
        for f in files {
            let bytes = match std::fs::read(dir.join(&f.dest)) {
                Ok(b) => b,
                Err(e) => {
                    report.warnings.push(format!("{}: {e}", f.src));
                    continue;
                }
            };
            match reports::parse(group.file_format, &bytes) {
                Ok(p) => report.add(&f.src, p),
                Err(e) => report.warnings.push(format!(
                    "{}: not a valid {} file: {e}",
                    f.src,
                    group.file_format.as_str()
                )),
            }
        }
        // Test names and messages are localbuild's output too: no secret in them.
        for case in &mut report.test_cases {
            case.name = self.hub.mask(&case.name);
            case.message = case.message.as_deref().map(|m| self.hub.mask(m));
        }
        for w in report.warnings.clone() {
            self.agent(&format!("Warning: report group {}: {w}", group.name));
        }
        if let Ok(json) = serde_json::to_vec_pretty(&report) {
            let _ = std::fs::write(
                root.join(format!("{}.json", safe_file_name(&group.name))),
                json,
            );
        }
        self.build.report_arns.push(arn);
        self.outputs.reports.push(report);
    }

    // ---------- cache ----------

    /// Where the caches are kept: the project's local cache folder, or the S3 cache's bucket
    /// folder (a cache of type S3).
    pub(super) fn cache_dir(&self) -> PathBuf {
        match &self.req.s3_cache {
            Some(c) => c.dir.clone(),
            None => self.store.cache_dir(&self.req.project),
        }
    }

    /// A cache file as the log names it: its path, or for a cache of type S3 its `s3://` URL.
    fn cache_shown(&self, file: &Path) -> String {
        match &self.req.s3_cache {
            Some(c) => format!(
                "s3://{}/{}",
                c.location.trim_end_matches('/'),
                file.file_name().unwrap_or_default().to_string_lossy()
            ),
            None => file.display().to_string(),
        }
    }

    /// Restore the cache in DOWNLOAD_SOURCE (decision U12).
    pub(super) async fn restore_outputs_cache(&mut self, spec: &Buildspec) {
        let Some(cache) = spec.cache.clone() else {
            self.agent("Cache is not defined in the buildspec");
            self.agent("Skip cache due to: no paths specified to be cached");
            return;
        };
        if self.req.no_cache {
            self.agent("Skip cache due to: --no-cache");
            return;
        }
        let key = match &cache.key {
            Some(k) => match self
                .evaluate(spec, k)
                .await
                .filter(|k| !safe_file_name(k).is_empty())
            {
                Some(v) => Some(v),
                None => {
                    self.agent(&format!("Skip cache due to: cannot evaluate cache key {k}"));
                    return;
                }
            },
            None => None,
        };
        self.outputs.cache_key = key.clone();
        if cache.action == Some(CacheAction::Save) {
            self.agent("Cache action is save: not restoring");
            return;
        }
        let dir = self.cache_dir();
        let found = match &key {
            None => Some(dir.join(cache_file_name(None))).filter(|p| p.is_file()),
            Some(k) => {
                let exact = dir.join(cache_file_name(Some(k)));
                if exact.is_file() {
                    Some(exact)
                } else {
                    let mut hit = None;
                    for fb in cache.fallback_keys.clone() {
                        let Some(prefix) = self.evaluate(spec, &fb).await else {
                            continue;
                        };
                        let prefix = safe_file_name(&prefix);
                        let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
                        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                            let name = e.file_name().to_string_lossy().into_owned();
                            if name.starts_with(&prefix) && name.ends_with(".tar") {
                                let t = e.metadata().and_then(|m| m.modified()).ok();
                                let t = t.unwrap_or(std::time::UNIX_EPOCH);
                                if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                                    best = Some((t, e.path()));
                                }
                            }
                        }
                        if let Some((_, p)) = best {
                            self.agent(&format!(
                                "Cache key {k} not found; using fallback key {fb}"
                            ));
                            hit = Some(p);
                            break;
                        }
                    }
                    hit
                }
            }
        };
        let shown = key.clone().unwrap_or_else(|| "default".to_owned());
        let Some(file) = found else {
            self.agent(&format!("Cache miss for key {shown}; nothing restored"));
            return;
        };
        self.agent(&format!("Restoring cache from {}", self.cache_shown(&file)));
        let container = self.container.clone().unwrap_or_default();
        let src_dir = self.src_dir.clone();
        let relocated = tokio::task::spawn_blocking(move || relocate(&file, &src_dir))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        let restored = match relocated {
            Ok(f) => {
                let f = tokio::fs::File::from_std(f);
                let stream = tokio_util::io::ReaderStream::new(f);
                self.runtime
                    .upload_tar(&container, Box::pin(stream))
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match restored {
            Ok(()) => self.agent(&format!("Cache restored for key {shown}")),
            Err(e) => self.agent(&format!("Warning: cache restore failed: {e}")),
        }
    }

    /// Save the cache at the end of UPLOAD_ARTIFACTS. Failures are warnings.
    pub(super) async fn save_cache(&mut self, spec: &Buildspec) {
        let Some(cache) = spec.cache.clone() else {
            return;
        };
        if self.req.no_cache || cache.action == Some(CacheAction::Restore) {
            return;
        }
        let dir = self.cache_dir();
        let file = match &self.outputs.cache_key {
            Some(k) => dir.join(cache_file_name(Some(k))),
            None => dir.join(cache_file_name(None)),
        };
        let shown = self
            .outputs
            .cache_key
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        if self.outputs.cache_key.is_some() && file.exists() {
            self.agent(&format!("Cache for key {shown} already exists; not saving"));
            return;
        }
        self.agent(&format!("Saving cache for key {shown}"));
        match self.write_cache(spec, &cache.paths, &dir, &file).await {
            Ok(n) => self.agent(&format!(
                "Cache saved: {n} entries in {}",
                self.cache_shown(&file)
            )),
            Err(e) => self.agent(&format!("Warning: cache not saved: {e}")),
        }
    }

    pub(super) async fn write_cache(
        &mut self,
        spec: &Buildspec,
        paths: &[String],
        dir: &Path,
        file: &Path,
    ) -> std::io::Result<usize> {
        std::fs::create_dir_all(dir)?;
        // Written beside the local cache and renamed into place: an S3 cache's folder never
        // shows a half-written object.
        let staging = self.store.cache_dir(&self.req.project);
        std::fs::create_dir_all(&staging)?;
        let tmp = tempfile::NamedTempFile::new_in(&staging)?;
        let mut builder = tar::Builder::new(tmp);
        let mut count = 0;
        for p in paths {
            let abs = if p.starts_with('/') {
                p.trim_end_matches('/').to_owned()
            } else {
                format!("{}/{}", self.src_dir, artifacts::normalize(p))
            };
            let comps: Vec<&str> = abs.split('/').collect();
            let lit = comps
                .iter()
                .take_while(|c| !c.contains(['*', '?', '[', '{']))
                .count();
            let root = comps[..lit].join("/");
            if root.is_empty() {
                continue;
            }
            if self
                .capture_stdout(spec, &format!("test -e {}", quote(&root)))
                .await
                .is_none()
            {
                self.agent(&format!("Skipping cache path {p}: {root} does not exist"));
                continue;
            }
            let glob = (lit < comps.len())
                .then(|| artifacts::glob_set(std::slice::from_ref(&abs)).ok())
                .flatten();
            let src_dir = self.src_dir.clone();
            let parent = root
                .rsplit_once('/')
                .map(|(a, _)| a.to_owned())
                .unwrap_or_default();
            let stream = self.tar_of(&root);
            let result = with_archive(
                stream,
                move |archive| -> std::io::Result<(tar::Builder<tempfile::NamedTempFile>, usize)> {
                    let mut n = 0;
                    for e in archive.entries()? {
                        let mut e = e?;
                        let raw = e.path()?.to_string_lossy().trim_end_matches('/').to_owned();
                        if raw.split('/').any(|c| c == "..") {
                            continue;
                        }
                        let full = format!("{parent}/{raw}");
                        let keep = match &glob {
                            Some(g) => g.is_match(&full),
                            None => full == root || full.starts_with(&format!("{root}/")),
                        };
                        if !keep {
                            continue;
                        }
                        // Paths under the source folder are kept relative to it (`@src/…`):
                        // the next build's source folder has another name.
                        let name = match full.strip_prefix(&format!("{src_dir}/")) {
                            Some(rel) => format!("{SRC_PREFIX}{rel}"),
                            None => full.trim_start_matches('/').to_owned(),
                        };
                        let mut h = e.header().clone();
                        match e.header().entry_type() {
                            tar::EntryType::Symlink => {
                                if let Some(t) = e.link_name()? {
                                    builder.append_link(&mut h, &name, t)?;
                                }
                            }
                            tar::EntryType::Regular
                            | tar::EntryType::Directory
                            | tar::EntryType::Continuous => {
                                builder.append_data(&mut h, &name, &mut e)?;
                            }
                            _ => continue,
                        }
                        n += 1;
                    }
                    Ok((builder, n))
                },
            )
            .await?;
            match result {
                Ok((b, n)) => {
                    builder = b;
                    count += n;
                }
                Err(e) => {
                    self.agent(&format!("Skipping cache path {p}: {e}"));
                    return Err(e);
                }
            }
        }
        let tmp = builder.into_inner()?;
        if self.outputs.cache_key.is_some() {
            tmp.persist_noclobber(file).map_err(|e| e.error)?;
        } else {
            tmp.persist(file).map_err(|e| e.error)?;
        }
        Ok(count)
    }
}
