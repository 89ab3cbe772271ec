//! Where builds are kept on this machine, under one root (`$LOCALBUILD_HOME`):
//!
//! ```text
//! localbuild.db                          the history: projects, builds (record + indexed
//!                                        fields + owning process), other services' documents
//! builds/<project>/<number>/build.json   the record, rewritten at every phase change
//! builds/<project>/<number>/build.log    the build log
//! builds/<project>/<number>/artifacts/   default artifacts folder
//! builds/<project>/<number>/reports/     default reports folder
//! cache/<project>/<key>.tar              saved caches
//! batches/<project>/<number>/batch.json  a batch build's record (also in the database's
//!                                        documents, kind `build-batch`)
//! batches/<project>/<number>/artifacts/  its combined artifacts
//! ```
//!
//! [`HistoryStore`] is the store of every command and the server: build numbers come from the
//! database (one sequence per project, shared by every process), each record is written to the
//! database and to `build.json` at every phase change, and a build row names its owning process
//! so that a later process can finalise builds whose owner died ([`HistoryStore::recover`]).
//! A record the store could not write (a full disk) is kept in memory, newest per build, and
//! answered by [`HistoryStore::build`] / [`HistoryStore::unsaved`] until a later save of it
//! succeeds; every successful save also writes the other unsaved records, so space that
//! returns is used at once.
//! [`FolderStore`] is the same layout without the database (numbers are claimed by creating
//! the build's folder, which is atomic).
//! Project names reach this module only after the engine checked them (one safe path
//! component).

pub use localbuild_db::{BuildQuery, BuildRow, Db, DbError, ProjectSort};
use localbuild_engine::record::{
    Build, BuildBatch, PhaseContext, PhaseType, Status, epoch_now, whole_seconds,
};
use localbuild_engine::store::{BatchPlace, Place, Store, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The kind of the database documents that hold batch records.
const BATCH_DOC: &str = "build-batch";
/// The kind of the documents naming the process that runs an unfinished batch (`pid start`).
const BATCH_OWNER_DOC: &str = "build-batch-owner";

/// The history database and the build folders beside it.
#[derive(Clone)]
pub struct HistoryStore {
    root: PathBuf,
    db: Db,
    owner: (u32, u64),
    /// Records whose last save failed, by build id (shared by clones).
    unsaved: Arc<Mutex<HashMap<String, Build>>>,
}

impl HistoryStore {
    /// Open (or create) the history under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<HistoryStore, DbError> {
        let root = root.into();
        let db = Db::open(&root.join("localbuild.db"))?;
        Ok(HistoryStore {
            root,
            db,
            owner: localbuild_db::this_process(),
            unsaved: Arc::default(),
        })
    }

    /// The owning process of the builds this store creates, as `localbuild gc` reads it from
    /// a container's [`localbuild_engine::runtime::OWNER_LABEL`]: `<pid> <start token>`.
    pub fn owner_label(&self) -> String {
        let (pid, start) = self.owner;
        format!("{pid} {start}")
    }

    /// Is the build `id` still run by a live process? `owner` is its container's owner label
    /// (see [`HistoryStore::owner_label`]) if it has one; else the history's row says who
    /// owns it. A build this history does not know, or a finished one, is not running.
    pub fn is_running(&self, id: &str, owner: Option<&str>) -> Result<bool, DbError> {
        if let Some(owner) = owner {
            return Ok(owner_is_alive(owner));
        }
        Ok(self.db.get_build(id)?.is_some_and(|r| {
            !r.complete && localbuild_db::process_alive(r.owner_pid, r.owner_start)
        }))
    }

    /// The record of a build whose last save failed (what it is now, not what is on disk).
    pub fn unsaved(&self, id: &str) -> Option<Build> {
        lock(&self.unsaved).get(id).cloned()
    }

    /// Write the database row and `build.json` of one record.
    fn write(&self, build: &Build) -> Result<(), StoreError> {
        let dir = self.build_dir(&build.project_name, build.build_number);
        let json = serde_json::to_string(build).map_err(|e| StoreError {
            action: "serialise the record of",
            path: dir.clone(),
            source: std::io::Error::other(e),
        })?;
        // The database first: it is what every other process reads.
        let db = self.db.update_build(
            &build.id,
            build.build_status.as_str(),
            build.build_complete,
            &json,
        );
        let file = write_record(&dir, build).map_err(|source| StoreError {
            action: "write",
            path: dir.join("build.json"),
            source,
        });
        db.map_err(|e| db_error("update the build in", &self.root.join("localbuild.db"), e))?;
        file
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A stored build's record (the newest one, if its last save failed).
    pub fn build(&self, id: &str) -> Result<Option<Build>, DbError> {
        if let Some(build) = self.unsaved(id) {
            return Ok(Some(build));
        }
        let rows = self.db.get_builds(&[id.to_owned()])?;
        Ok(rows
            .first()
            .and_then(|r| serde_json::from_str(&r.json).ok()))
    }

    /// A stored batch's record.
    pub fn batch(&self, id: &str) -> Result<Option<BuildBatch>, DbError> {
        Ok(self
            .db
            .get_doc(BATCH_DOC, id)?
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Forget a batch's record (its folder stays); whether there was one.
    pub fn delete_batch(&self, id: &str) -> Result<bool, DbError> {
        self.db.delete_doc(BATCH_DOC, id)
    }

    /// The stored batches (of `project`, or all), newest first.
    pub fn batches(&self, project: Option<&str>) -> Result<Vec<BuildBatch>, DbError> {
        let prefix = project.map(|p| format!("{p}:")).unwrap_or_default();
        let mut batches: Vec<BuildBatch> = self
            .db
            .list_docs(BATCH_DOC, &prefix)?
            .into_iter()
            .filter_map(|(_, j)| serde_json::from_str(&j).ok())
            .collect();
        batches.sort_by(|a, b| {
            (b.start_time, b.build_batch_number)
                .partial_cmp(&(a.start_time, a.build_batch_number))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(batches)
    }

    /// Finalise the builds whose owning process is gone (killed with `kill -9`, or a crash):
    /// the phase they were in ends FAILED with a context saying localbuild stopped, the build
    /// is FAILED and complete. Returns their ids (the caller removes their containers). The
    /// batches such a process ran end FAILED the same way, with their unfinished tasks.
    pub fn recover(&self) -> Result<Vec<String>, DbError> {
        let mut ids = vec![];
        for row in self.db.orphans(localbuild_db::process_alive)? {
            let Ok(mut build) = serde_json::from_str::<Build>(&row.json) else {
                continue;
            };
            finalise_abandoned(&mut build);
            let json = serde_json::to_string(&build).unwrap_or_default();
            self.db
                .update_build(&row.id, build.build_status.as_str(), true, &json)?;
            let _ = write_record(
                &self.build_dir(&build.project_name, build.build_number),
                &build,
            );
            ids.push(row.id);
        }
        for (id, owner) in self.db.list_docs(BATCH_OWNER_DOC, "")? {
            let mut parts = owner.split(' ').map(str::parse::<u64>);
            let (Some(Ok(pid)), Some(Ok(start))) = (parts.next(), parts.next()) else {
                continue;
            };
            if localbuild_db::process_alive(pid as u32, start) {
                continue;
            }
            if let Some(mut batch) = self.batch(&id)? {
                finalise_abandoned_batch(&mut batch);
                let json = serde_json::to_string(&batch).unwrap_or_default();
                self.db.put_doc(BATCH_DOC, &id, &json)?;
                let dir = batch_dir(&self.root, &batch.project_name, batch.build_batch_number);
                let _ = write_batch(&dir, &batch);
            }
            self.db.delete_doc(BATCH_OWNER_DOC, &id)?;
        }
        Ok(ids)
    }

    fn build_dir(&self, project: &str, number: u64) -> PathBuf {
        self.root
            .join("builds")
            .join(project)
            .join(number.to_string())
    }
}

/// A build whose process died: its open phase ends FAILED, then FINALIZING and COMPLETED.
fn finalise_abandoned(build: &mut Build) {
    let at = build
        .phases
        .last()
        .map_or(build.start_time, |p| p.end_time.unwrap_or(p.start_time))
        .max(epoch_now());
    build.close_phase(
        Status::Failed,
        Some(vec![PhaseContext::new(
            "CLIENT_ERROR",
            "localbuild stopped before the build completed (its process ended); finalised by a later localbuild",
        )]),
        at,
    );
    build.begin_phase(PhaseType::Finalizing);
    build.close_phase(Status::Succeeded, Some(vec![PhaseContext::default()]), at);
    build.complete(Status::Failed);
}

/// A batch whose process died: its open phase ends FAILED, unfinished tasks are FAILED, and
/// the batch ends FAILED.
fn finalise_abandoned_batch(batch: &mut BuildBatch) {
    let now = epoch_now().max(batch.start_time);
    if let Some(p) = batch.phases.last_mut().filter(|p| p.end_time.is_none()) {
        p.phase_status = Some(Status::Failed);
        p.end_time = Some(now);
        p.duration_in_seconds = Some(whole_seconds(p.start_time, now));
        p.contexts = Some(vec![PhaseContext::new(
            "CLIENT_ERROR",
            "localbuild stopped before the batch completed (its process ended); finalised by a later localbuild",
        )]);
    }
    for g in &mut batch.build_groups {
        match &mut g.current_build_summary {
            Some(s) if s.build_status == Status::InProgress => s.build_status = Status::Failed,
            Some(_) => {}
            None => {
                g.current_build_summary = Some(localbuild_engine::record::BuildSummary {
                    arn: None,
                    requested_on: None,
                    build_status: Status::Failed,
                })
            }
        }
    }
    batch.phases.push(localbuild_engine::record::BatchPhase {
        phase_type: localbuild_engine::record::BatchPhaseType::Failed,
        phase_status: None,
        start_time: now,
        end_time: None,
        duration_in_seconds: None,
        contexts: None,
    });
    batch.current_phase = localbuild_engine::record::BatchPhaseType::Failed;
    batch.build_batch_status = Status::Failed;
    batch.complete = true;
    batch.end_time = Some(now);
}

fn write_record(dir: &Path, build: &Build) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(build).map_err(std::io::Error::other)?;
    // Write then rename: a reader (or a crash) never sees half a record.
    let tmp = dir.join(".build.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join("build.json"))
}

fn db_error(action: &'static str, path: &Path, e: DbError) -> StoreError {
    StoreError {
        action,
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl Store for HistoryStore {
    fn create(&self, project: &str, build_id: &str) -> Result<Place, StoreError> {
        let db_path = self.root.join("localbuild.db");
        loop {
            let new = localbuild_db::NewBuild {
                id: build_id.to_owned(),
                project: project.to_owned(),
                arn: String::new(),
                start_time: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_millis() as f64 / 1000.0),
                status: Status::InProgress.as_str().to_owned(),
                owner_pid: self.owner.0,
                owner_start: self.owner.1,
                log_path: None,
            };
            let number = self
                .db
                .insert_build(&new, |_| "{}".to_owned())
                .map_err(|e| db_error("record a new build in", &db_path, e))?;
            let dir = self.build_dir(project, number);
            let parent = dir.parent().unwrap_or(&self.root);
            std::fs::create_dir_all(parent).map_err(|source| StoreError {
                action: "create",
                path: parent.to_path_buf(),
                source,
            })?;
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(Place {
                        number,
                        log: dir.join("build.log"),
                        artifacts: dir.join("artifacts"),
                        reports: dir.join("reports"),
                        dir,
                    });
                }
                // A folder left by a store without the database: never reuse it, take the
                // next number (the row just made is replaced by the next attempt's).
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let _ = self.db.delete_builds(&[build_id.to_owned()]);
                }
                Err(source) => {
                    return Err(StoreError {
                        action: "create",
                        path: dir,
                        source,
                    });
                }
            }
        }
    }

    fn save(&self, build: &Build) -> Result<(), StoreError> {
        // Saves are serialised by this lock, so an older version of a record is never written
        // after a newer one.
        let mut unsaved = lock(&self.unsaved);
        if let Err(e) = self.write(build) {
            unsaved.insert(build.id.clone(), build.clone());
            return Err(e);
        }
        unsaved.remove(&build.id);
        // There is room again: the records that could not be written go now.
        unsaved.retain(|_, other| self.write(other).is_err());
        Ok(())
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        self.root.join("cache").join(project)
    }

    fn create_batch(&self, project: &str, _batch_id: &str) -> Result<BatchPlace, StoreError> {
        create_batch(&self.root, project)
    }

    fn reopen_batch(&self, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
        reopen_batch(&self.root, project, number)
    }

    fn save_batch(&self, batch: &BuildBatch) -> Result<(), StoreError> {
        let dir = batch_dir(&self.root, &batch.project_name, batch.build_batch_number);
        let json = serde_json::to_string(batch).map_err(|e| StoreError {
            action: "serialise the record of",
            path: dir.clone(),
            source: std::io::Error::other(e),
        })?;
        let owner = if batch.complete {
            self.db.delete_doc(BATCH_OWNER_DOC, &batch.id).map(drop)
        } else {
            let (pid, start) = self.owner;
            self.db
                .put_doc(BATCH_OWNER_DOC, &batch.id, &format!("{pid} {start}"))
        };
        let db = owner.and_then(|()| self.db.put_doc(BATCH_DOC, &batch.id, &json));
        let file = write_batch(&dir, batch);
        db.map_err(|e| db_error("record the batch in", &self.root.join("localbuild.db"), e))?;
        file
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Does the process an owner label names (`<pid> <start token>`, see
/// [`HistoryStore::owner_label`]) still run? A label that cannot be read counts as alive: a
/// live build must never lose its container.
pub fn owner_is_alive(label: &str) -> bool {
    let parsed = label
        .split_once(' ')
        .and_then(|(pid, start)| Some((pid.parse().ok()?, start.parse().ok()?)));
    parsed.is_none_or(|(pid, start)| localbuild_db::process_alive(pid, start))
}

fn batch_dir(root: &Path, project: &str, number: u64) -> PathBuf {
    root.join("batches").join(project).join(number.to_string())
}

/// Batch numbers are claimed by creating the batch's folder (atomic across processes).
fn create_batch(root: &Path, project: &str) -> Result<BatchPlace, StoreError> {
    let (number, dir) = claim_dir(&root.join("batches"), project).map_err(|source| StoreError {
        action: "create a batch folder under",
        path: root.join("batches").join(project),
        source,
    })?;
    Ok(BatchPlace {
        number,
        artifacts: dir.join("artifacts"),
        dir,
    })
}

fn reopen_batch(root: &Path, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
    let dir = batch_dir(root, project, number);
    std::fs::create_dir_all(&dir).map_err(|source| StoreError {
        action: "reopen the batch folder",
        path: dir.clone(),
        source,
    })?;
    Ok(BatchPlace {
        number,
        artifacts: dir.join("artifacts"),
        dir,
    })
}

fn write_batch(dir: &Path, batch: &BuildBatch) -> Result<(), StoreError> {
    let write = || -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(batch).map_err(std::io::Error::other)?;
        let tmp = dir.join("batch.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, dir.join("batch.json"))
    };
    write().map_err(|source| StoreError {
        action: "write",
        path: dir.join("batch.json"),
        source,
    })
}

/// The folder layout above.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> FolderStore {
        FolderStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn build_dir(&self, project: &str, number: u64) -> PathBuf {
        self.root
            .join("builds")
            .join(project)
            .join(number.to_string())
    }
}

impl Store for FolderStore {
    fn create(&self, project: &str, _build_id: &str) -> Result<Place, StoreError> {
        let (number, dir) = claim_build_dir(&self.root, project).map_err(|source| StoreError {
            action: "create a build folder under",
            path: self.root.join("builds").join(project),
            source,
        })?;
        Ok(Place {
            number,
            log: dir.join("build.log"),
            artifacts: dir.join("artifacts"),
            reports: dir.join("reports"),
            dir,
        })
    }

    fn save(&self, build: &Build) -> Result<(), StoreError> {
        let dir = self.build_dir(&build.project_name, build.build_number);
        write_record(&dir, build).map_err(|source| StoreError {
            action: "write",
            path: dir.join("build.json"),
            source,
        })
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        self.root.join("cache").join(project)
    }

    fn create_batch(&self, project: &str, _batch_id: &str) -> Result<BatchPlace, StoreError> {
        create_batch(&self.root, project)
    }

    fn reopen_batch(&self, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
        reopen_batch(&self.root, project, number)
    }

    fn save_batch(&self, batch: &BuildBatch) -> Result<(), StoreError> {
        let dir = batch_dir(&self.root, &batch.project_name, batch.build_batch_number);
        write_batch(&dir, batch)
    }
}

/// Claim the next build number of `project`; returns it and its (new, empty) folder.
fn claim_build_dir(root: &Path, project: &str) -> std::io::Result<(u64, PathBuf)> {
    claim_dir(&root.join("builds"), project)
}

fn refused(e: localbuild_confine::Refused) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string())
}

/// Claim the next number under `base/<project>/` by creating its folder.
fn claim_dir(base: &Path, project: &str) -> std::io::Result<(u64, PathBuf)> {
    let dir = localbuild_confine::Root::new(base)
        .confined(
            "project name",
            localbuild_confine::component("project name", project).map_err(refused)?,
        )
        .map_err(refused)?;
    std::fs::create_dir_all(&dir)?;
    let mut next = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    loop {
        let path = dir.join(next.to_string());
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok((next, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_numbers_count_per_project() {
        let root = tempfile::tempdir().unwrap();
        let store = FolderStore::new(root.path());
        assert_eq!(store.create("a", "a:1").unwrap().number, 1);
        assert_eq!(store.create("a", "a:2").unwrap().number, 2);
        assert_eq!(store.create("b", "b:1").unwrap().number, 1);
        let place = store.create("a", "a:3").unwrap();
        assert_eq!(place.number, 3);
        assert!(place.dir.ends_with("builds/a/3"));
        assert_eq!(place.log, place.dir.join("build.log"));
    }

    fn record(store: &HistoryStore, id: &str) -> Build {
        let place = store.create("a", id).unwrap();
        let req = localbuild_engine::BuildRequest::new("a", localbuild_engine::Source::None);
        localbuild_engine::new_record(&req, id, id, &place)
    }

    #[test]
    fn a_record_that_cannot_be_written_is_answered_from_memory_and_written_by_the_next_save() {
        let root = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(root.path()).unwrap();
        let mut stuck = record(&store, "a:1");
        let other = record(&store, "a:2");
        // Its folder is gone: `build.json` cannot be written.
        let dir = store.build_dir("a", stuck.build_number);
        std::fs::remove_dir(&dir).unwrap();
        stuck.build_status = Status::Failed;
        stuck.build_complete = true;
        let e = store.save(&stuck).unwrap_err();
        assert!(e.to_string().contains("build.json"), "{e}");
        assert_eq!(store.unsaved("a:1").as_ref(), Some(&stuck));
        // A clone (the server's view) answers it too.
        assert_eq!(store.clone().build("a:1").unwrap().as_ref(), Some(&stuck));
        // Room again: the next save of any build writes it.
        std::fs::create_dir(&dir).unwrap();
        store.save(&other).unwrap();
        assert_eq!(store.unsaved("a:1"), None);
        let on_disk: Build =
            serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
        assert_eq!(on_disk, stuck);
        let row = store.db().get_build("a:1").unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.complete), ("FAILED", true));
    }

    #[test]
    fn the_history_numbers_builds_and_skips_folders_it_did_not_make() {
        let root = tempfile::tempdir().unwrap();
        // A folder from before the database existed.
        std::fs::create_dir_all(root.path().join("builds/a/1")).unwrap();
        let store = HistoryStore::open(root.path()).unwrap();
        assert_eq!(store.create("a", "a:x").unwrap().number, 2);
        assert_eq!(store.create("a", "a:y").unwrap().number, 3);
        assert_eq!(store.create("b", "b:x").unwrap().number, 1);
        // Another process sees the same sequence.
        let other = HistoryStore::open(root.path()).unwrap();
        assert_eq!(other.create("a", "a:z").unwrap().number, 4);
    }
}
