//! The data behind the console's build pages, read where the API's answers come from: a
//! build's record from the build service (live, else the history), lists from the history.
//! The builds list is one SQLite page (keyset) and never the whole history; a build page reads
//! the end of its log through the log's index (at most [`PAGE_LOG_LINES`] lines and
//! [`PAGE_LOG_BYTES`]). Blocking file and database reads; no HTTP.

use crate::pages::Listing;
use localbuild_engine::images::{ImageTracker, PhaseImages};
use localbuild_engine::logindex::LogIndex;
use localbuild_engine::record::{Build, BuildBatch, PhaseType};
use localbuild_service::BuildService;
use localbuild_service::projects::{ProjectError, ProjectSort, Projects};
use localbuild_store::{DbError, HistoryStore};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Builds per page of `/builds`.
pub const PAGE_SIZE: usize = 25;
/// The log lines a build page shows at most (the last ones).
pub const PAGE_LOG_LINES: u64 = 5000;
/// The most of its log a build page reads (its last lines that fit).
pub const PAGE_LOG_BYTES: u64 = 4 << 20;
/// The most of one line the images summary looks at (their lines are short).
const IMAGE_LINE_BYTES: usize = 64 << 10;
/// Batches the batches page shows (the newest).
const BATCHES_SHOWN: usize = 100;

/// A read the history could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request's own fault (a stale or forged page token): the history's message.
    #[error("{0}")]
    InvalidInput(String),
    #[error("the build history failed: {0}")]
    History(DbError),
}

impl From<DbError> for ReadError {
    fn from(e: DbError) -> ReadError {
        match e {
            DbError::InvalidInput(m) => ReadError::InvalidInput(m),
            e => ReadError::History(e),
        }
    }
}

/// The builds page's query: filters and the page token.
#[derive(Debug, Deserialize, Default)]
pub struct BuildsQuery {
    pub project: Option<String>,
    pub status: Option<String>,
    pub next: Option<String>,
}

/// One page of the builds list, straight from the history; a running build shows its live
/// record.
pub fn builds_listing(
    history: &HistoryStore,
    builds: &BuildService,
    projects: &Projects,
    q: &BuildsQuery,
) -> Result<Listing, ReadError> {
    let db = history.db();
    let query = localbuild_store::BuildQuery {
        project: q.project.clone().filter(|p| !p.is_empty()),
        status: q.status.clone().filter(|s| !s.is_empty()),
        descending: true,
        page_size: PAGE_SIZE,
        next_token: q.next.clone().filter(|n| !n.is_empty()),
    };
    let (ids, next) = db.list_builds(&query)?;
    let mut records: Vec<Build> = db
        .get_builds(&ids)?
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect();
    // A running build: the live record, fresher than the last saved phase.
    for b in &mut records {
        if !b.build_complete
            && let Some(live) = builds.record(&b.id)
        {
            *b = live;
        }
    }
    let projects = projects
        .list(ProjectSort::Name, false)
        .map_err(|e| match e {
            ProjectError::Db(e) => ReadError::from(e),
            e => ReadError::InvalidInput(e.to_string()),
        })?;
    Ok(Listing {
        paged: query.next_token.is_some(),
        builds: records,
        next,
        projects,
        project: query.project,
        status: query.status,
    })
}

/// Every project as CodeBuild's `Project` document, by name (unreadable ones left out).
pub fn projects(projects: &Projects) -> Vec<Value> {
    let names = projects.list(ProjectSort::Name, false).unwrap_or_default();
    projects
        .get_many(&names)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// The newest batches (what `ListBuildBatches` lists first), each as the build service has it
/// (live, else the history).
pub fn batches(history: &HistoryStore, builds: &BuildService) -> Vec<BuildBatch> {
    history
        .batches(None)
        .unwrap_or_default()
        .iter()
        .take(BATCHES_SHOWN)
        .filter_map(|b| builds.batch_record(&b.id))
        .collect()
}

/// A batch's id as the engine keeps it (ids may be ARNs, as in the API).
pub fn batch_id(id: &str) -> &str {
    id.split_once(":build-batch/").map_or(id, |(_, i)| i)
}

/// The folder of a build's log, reports and artifacts.
fn build_dir(build: &Build) -> Option<PathBuf> {
    let log = build.logs.local_path.as_ref()?;
    Path::new(log).parent().map(PathBuf::from)
}

/// What a build page shows besides the record: the end of the log, the images it tells of,
/// the reports and the artifacts.
#[derive(Debug, Default)]
pub struct BuildFiles {
    /// The log's complete lines (its last ones when it is long).
    pub lines: Vec<String>,
    /// How many lines come before `lines`.
    pub first: usize,
    /// The log's byte offset after `lines` (where the live stream goes on).
    pub offset: usize,
    pub images: Vec<PhaseImages>,
    /// `reports/<group>.json`, parsed.
    pub reports: Vec<Value>,
    /// Files under `artifacts/`, with their sizes.
    pub artifacts: Vec<(String, u64)>,
}

/// [`BuildFiles`] of `build`. Blocking.
pub fn build_files(build: &Build) -> BuildFiles {
    let (lines, first, offset, images) = page_log(build);
    let (reports, artifacts) = build_dir(build)
        .map(|d| reports_and_artifacts(&d))
        .unwrap_or_default();
    BuildFiles {
        lines,
        first,
        offset,
        images,
        reports,
        artifacts,
    }
}

/// The reports (`reports/<group>.json`, parsed) and artifacts (paths and sizes) in a build's
/// folder.
fn reports_and_artifacts(dir: &Path) -> (Vec<Value>, Vec<(String, u64)>) {
    let folder = localbuild_confine::Root::new(dir.join("reports"));
    let reports = files_under(folder.path(), 50)
        .into_iter()
        .filter(|(f, _)| f.ends_with(".json") && !f.contains('/'))
        .filter_map(|(f, _)| {
            let path = folder.confined("report", &f).ok()?;
            serde_json::from_slice(&std::fs::read(path).ok()?).ok()
        })
        .collect();
    (reports, files_under(&dir.join("artifacts"), 200))
}

/// The file of a build's artifact `path` (confined to the build's `artifacts` folder), if the
/// build is known.
pub fn artifact_file(builds: &BuildService, id: &str, path: &str) -> Option<PathBuf> {
    let dir = build_dir(&builds.record(id)?)?;
    localbuild_confine::Root::new(dir.join("artifacts"))
        .confined("artifact path", path)
        .ok()
}

/// The end of a build's log a page shows, read through the log's index: at most
/// [`PAGE_LOG_LINES`] lines and [`PAGE_LOG_BYTES`] bytes. Returns the lines, how many come
/// before them, the offset after them (where the live stream goes on) and the images the log
/// tells of (a walk over every line, one line in memory at a time). Blocking.
fn page_log(build: &Build) -> (Vec<String>, usize, usize, Vec<PhaseImages>) {
    build
        .logs
        .local_path
        .as_ref()
        .and_then(|p| LogIndex::open(Path::new(p), build.build_complete).ok())
        .and_then(|index| page_of(&index, build.build_complete).ok())
        .unwrap_or_default()
}

/// [`page_log`] over an opened log; `complete`: the build is over (its last line is whole).
fn page_of(
    index: &LogIndex,
    complete: bool,
) -> std::io::Result<(Vec<String>, usize, usize, Vec<PhaseImages>)> {
    let (n, len) = (index.lines(), index.log_len());
    let start = n
        .saturating_sub(PAGE_LOG_LINES)
        .max(index.line_at(len.saturating_sub(PAGE_LOG_BYTES))?);
    let from = if start < n {
        index.entry(start)?.offset
    } else {
        len
    };
    let (lines, used) = complete_lines(&index.bytes(from, len)?, complete);
    let mut reader = PhaseLines::default();
    index.scan(0, IMAGE_LINE_BYTES, |_, _, text| {
        let line = String::from_utf8_lossy(text);
        reader.line(line.trim_end_matches('\n').trim_end_matches('\r'));
        true
    })?;
    Ok((
        lines,
        start as usize,
        from as usize + used,
        reader.tracker.into_phases(),
    ))
}

/// The complete lines of a log, from byte `offset` on: the lines and the offset after them.
/// At the end of the build (`all`) the last line counts as complete with or without its
/// newline.
pub fn complete_lines(bytes: &[u8], all: bool) -> (Vec<String>, usize) {
    let end = if all {
        bytes.len()
    } else {
        bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    };
    let text = String::from_utf8_lossy(&bytes[..end]);
    let lines = text
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r').to_owned())
        .collect();
    (lines, end)
}

/// What a build did with images, read back from its log with the tracker behind the CLI's
/// summary: each line counts in the phase the agent last said it entered.
pub fn images_in_log(log: &str) -> Vec<PhaseImages> {
    let mut reader = PhaseLines::default();
    for line in log.lines() {
        reader.line(line);
    }
    reader.tracker.into_phases()
}

/// Log lines read one by one into an [`ImageTracker`], in the phase they belong to.
struct PhaseLines {
    tracker: ImageTracker,
    phase: PhaseType,
}

impl Default for PhaseLines {
    fn default() -> PhaseLines {
        PhaseLines {
            tracker: ImageTracker::new(),
            phase: PhaseType::Submitted,
        }
    }
}

impl PhaseLines {
    fn line(&mut self, line: &str) {
        let entered = line
            .strip_prefix("[Container] ")
            .and_then(|l| l.split_once(" Entering phase "))
            .and_then(|(_, p)| serde_json::from_value(Value::String(p.trim().to_owned())).ok());
        match entered {
            Some(p) => self.phase = p,
            None => self.tracker.line(self.phase, line),
        }
    }
}

fn files_under(root: &Path, limit: usize) -> Vec<(String, u64)> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file()
                && let Ok(rel) = e.path().strip_prefix(root)
            {
                out.push((rel.to_string_lossy().into_owned(), meta.len()));
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_read_back_from_the_log_by_phase() {
        let log = "[Container] 2026/11/28 02:22:48.123456 Entering phase BUILD\n\
            Successfully tagged app:1f3c\n\
            [Container] 2026/11/28 02:22:50.000000 Entering phase POST_BUILD\n\
            The push refers to repository [127.0.0.1:5000/web/app]\n\
            1f3c: digest: sha256:"
            .to_owned()
            + &"a".repeat(64)
            + " size: 528\n";
        let images = images_in_log(&log);
        assert_eq!(images.len(), 2, "{images:?}");
        assert_eq!(images[0].phase, PhaseType::Build);
        assert_eq!(images[0].built, vec!["app:1f3c".to_owned()]);
        assert_eq!(images[1].phase, PhaseType::PostBuild);
        assert_eq!(images[1].pushed.len(), 1);
        assert!(images_in_log("nothing here\n").is_empty());
    }

    /// A log and its index as the hub writes them.
    fn indexed(dir: &Path, text: &[u8]) -> LogIndex {
        let path = dir.join("build.log");
        let mut entries = vec![];
        localbuild_engine::logindex::Lines::default().entries(0, text, &mut entries);
        std::fs::write(&path, text).unwrap();
        std::fs::write(localbuild_engine::logindex::path_for(&path), entries).unwrap();
        LogIndex::open(&path, true).unwrap()
    }

    #[test]
    fn a_long_log_shows_its_last_lines_within_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..12_000).map(|i| format!("line {i}\n")).collect();
        let (lines, first, offset, _) =
            page_of(&indexed(dir.path(), text.as_bytes()), true).unwrap();
        assert_eq!((lines.len(), first), (5000, 7000));
        assert_eq!((lines[0].as_str(), offset), ("line 7000", text.len()));
        // Long lines: only what fits in the byte bound, whole lines.
        let long = "y".repeat(1 << 20);
        let text: String = (0..10).map(|i| format!("{i}{long}\n")).collect();
        let (lines, first, _, _) = page_of(&indexed(dir.path(), text.as_bytes()), true).unwrap();
        assert_eq!((lines.len(), first), (3, 7));
        // A running build's unfinished last line waits for the stream.
        let (lines, first, offset, _) =
            page_of(&indexed(dir.path(), b"a\nb\npart"), false).unwrap();
        assert_eq!(
            (lines, first, offset),
            (vec!["a".to_owned(), "b".to_owned()], 0, 4)
        );
        let images = page_of(&indexed(dir.path(), b"[Container] 2026/11/28 02:22:48.123456 Entering phase BUILD\nSuccessfully tagged app:1\n"), true).unwrap().3;
        assert_eq!(images.len(), 1);
    }

    #[test]
    fn log_lines_wait_for_their_newline_until_the_build_ends() {
        assert_eq!(
            complete_lines(b"a\nb\r\nc", false),
            (vec!["a".into(), "b".into()], 5)
        );
        assert_eq!(
            complete_lines(b"a\nb\r\nc", true),
            (vec!["a".into(), "b".into(), "c".into()], 6)
        );
        assert_eq!(complete_lines(b"", true), (vec![], 0));
    }

    #[test]
    fn batch_ids_may_be_arns() {
        assert_eq!(
            batch_id("arn:aws:codebuild:us-east-1:000000000000:build-batch/web:b1"),
            "web:b1"
        );
        assert_eq!(batch_id("web:b1"), "web:b1");
    }

    #[test]
    fn a_build_page_lists_its_reports_and_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(reports_and_artifacts(dir.path()), (vec![], vec![]));
        std::fs::create_dir_all(dir.path().join("artifacts/sub")).unwrap();
        std::fs::write(dir.path().join("artifacts/sub/b.txt"), b"bb").unwrap();
        std::fs::write(dir.path().join("artifacts/a.txt"), b"a").unwrap();
        std::fs::create_dir_all(dir.path().join("reports")).unwrap();
        std::fs::write(dir.path().join("reports/unit.json"), br#"{"name":"unit"}"#).unwrap();
        std::fs::write(dir.path().join("reports/notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("reports/bad.json"), b"{").unwrap();
        // A report that is a link out of the build's folder is not read.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host.json"), br#"{"name":"host"}"#).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("host.json"),
            dir.path().join("reports/link.json"),
        )
        .unwrap();
        let (reports, artifacts) = reports_and_artifacts(dir.path());
        assert_eq!(reports, vec![serde_json::json!({"name": "unit"})]);
        assert_eq!(
            artifacts,
            vec![("a.txt".to_owned(), 1), ("sub/b.txt".to_owned(), 2)]
        );
    }
}
