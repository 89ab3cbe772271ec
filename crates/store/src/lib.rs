//! Where builds are kept on this machine, under one root (`$LOCALBUILD_HOME`):
//!
//! ```text
//! builds/<project>/<number>/build.json   the record, rewritten at every phase change
//! builds/<project>/<number>/build.log    the build log
//! builds/<project>/<number>/artifacts/   default artifacts folder
//! builds/<project>/<number>/reports/     default reports folder
//! cache/<project>/<key>.tar              saved caches
//! ```
//!
//! Build numbers count per project from 1; a number is claimed by creating its folder, which is
//! atomic, so concurrent builds of one project (even from several processes) never share one.
//! Project names reach this module only after the engine checked them (one safe path
//! component).

use localbuild_engine::record::Build;
use localbuild_engine::store::{Place, Store, StoreError};
use std::path::{Path, PathBuf};

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
        let path = dir.join("build.json");
        let json = serde_json::to_vec_pretty(build).map_err(|e| StoreError {
            action: "serialise the record for",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        // Write then rename: a reader (or a crash) never sees half a record.
        let tmp = dir.join(".build.json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| StoreError {
                action: "write",
                path,
                source,
            })
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        self.root.join("cache").join(project)
    }
}

/// Claim the next build number of `project`; returns it and its (new, empty) folder.
fn claim_build_dir(root: &Path, project: &str) -> std::io::Result<(u64, PathBuf)> {
    let dir = root.join("builds").join(project);
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
}
